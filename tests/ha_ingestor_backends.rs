//! The HA-ingestor pipeline with every flag set, against the real servers
//! of `.ci/services/`: syslog-ng (the Logstash-style json_lines collector),
//! osmem-server (the Elasticsearch `_bulk`/`_search` API), Prometheus
//! (scraping admin-api's merged `/metrics`) and InfluxDB 1.x (the push).
//! An event's lines are found in the collector, in `_search` and in the log
//! file by its correlation ID; its metrics in Prometheus and InfluxDB. The
//! services are this test binary started with `--role NAME`, so the test has
//! its own `main` (`harness = false`).

#[path = "../examples/ha_ingestor.rs"]
#[allow(dead_code, unreachable_pub)]
mod ha_ingestor;
#[path = "metrics/common.rs"]
mod metrics_common;
#[path = "support/single_test.rs"]
mod single_test;
#[path = "support/http.rs"]
mod support;

use std::collections::BTreeSet;

use clap::Parser as _;
use metrics_common::{create_database, eventually, get, influxql, post, promql};
use observe::log::LogValidator;
use support::{Service, free_port};

const DB: &str = "ha_ingestor";

fn main() -> std::process::ExitCode {
    if std::env::args().any(|a| a == "--role") {
        return ha_ingestor::main();
    }
    single_test::run_single_test(
        "pipeline_with_all_flags_reaches_every_back_end",
        pipeline_with_all_flags_reaches_every_back_end,
    )
}

/// `(service, message)` of each line: what identifies a line across stores.
fn keys<'a>(lines: impl IntoIterator<Item = &'a serde_json::Value>) -> BTreeSet<(String, String)> {
    lines
        .into_iter()
        .map(|l| {
            (
                l["service"].as_str().unwrap_or_default().to_owned(),
                l["message"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn pipeline_with_all_flags_reaches_every_back_end() {
    let Some(collector) = Service::start_or_skip("syslog-ng", &[]) else {
        return;
    };
    let Some(es) = Service::start_or_skip("osmem-server", &[]) else {
        return;
    };
    let Some(influx) = Service::start_or_skip("influxdb", &[]) else {
        return;
    };
    create_database(&influx.url(), DB);
    let admin = format!("127.0.0.1:{}", free_port());
    let Some(prometheus) = Service::start_or_skip("prometheus", &[&admin]) else {
        return;
    };
    // Prometheus applies its targets a few seconds after start; scrape
    // from the pipeline's first second.
    eventually("Prometheus has its target", || {
        let body = get(&format!("{}/api/v1/targets", prometheus.url()), &[])?;
        Ok(body.contains(&admin).then_some(()))
    });
    let log_file = std::env::temp_dir().join(format!("ha_ingestor-{}.log", std::process::id()));

    let args = ha_ingestor::Args::parse_from([
        "ha_ingestor",
        "--duration",
        "4",
        "--events-per-sec",
        "10",
        "--logstash",
        &collector.addr(),
        "--elasticsearch",
        &es.url(),
        "--influxdb",
        &influx.url(),
        "--influx-db",
        DB,
        "--prometheus",
        &admin,
        "--log-file",
        log_file.to_str().expect("utf-8 path"),
        "--quiet",
    ]);
    let report = ha_ingestor::run_pipeline(&args).expect("the pipeline runs with every back-end");
    let total = report.lines.len();
    assert!(total > 100, "{total} lines");

    // One accepted and one rejected event, by their generator lines.
    let event = |status: &str| -> String {
        report
            .lines
            .iter()
            .find(|l| {
                l["performance"]["operation"] == "generator.send_event"
                    && l["performance"]["status"] == status
            })
            .and_then(|l| l["correlation_id"].as_str())
            .expect("an event with that outcome")
            .to_owned()
    };
    let ids = [event("success"), event("error")];

    // The log file: every line of every service (they append to one file).
    let file: Vec<serde_json::Value> = std::fs::read_to_string(&log_file)
        .expect("the log file")
        .lines()
        .map(|l| {
            LogValidator::validate_line(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            serde_json::from_str(l).expect("json")
        })
        .collect();
    assert_eq!(file.len(), total, "the file holds every line");
    let _ = std::fs::remove_file(&log_file);

    // The collector: every line (the sinks were flushed when each service stopped).
    let received = eventually("every line at the collector", || {
        let text =
            std::fs::read_to_string(collector.dir().join("received.log")).unwrap_or_default();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        Ok((lines.len() >= total).then_some(lines))
    });
    assert_eq!(received.len(), total);

    for id in &ids {
        let expected = keys(report.lines.iter().filter(|l| l["correlation_id"] == **id));
        assert!(expected.len() >= 2, "{id}: {expected:?}");
        let at_collector = keys(received.iter().filter(|l| l["correlation_id"] == **id));
        assert_eq!(at_collector, expected, "{id} at the collector");
        let in_file = keys(file.iter().filter(|l| l["correlation_id"] == **id));
        assert_eq!(in_file, expected, "{id} in the file");
        let body = serde_json::json!({"query": {"term": {"correlation_id": id}}, "size": 1000});
        let (status, hits) = post(
            &format!("{}/*-logs-*/_search", es.url()),
            body.to_string().as_bytes(),
            &["Content-Type: application/json"],
        )
        .expect("_search answers");
        assert_eq!(status, 200, "{hits}");
        let hits: serde_json::Value = serde_json::from_str(&hits).expect("json");
        let found = keys(
            hits["hits"]["hits"]
                .as_array()
                .expect("hits")
                .iter()
                .map(|h| &h["_source"]),
        );
        assert_eq!(found, expected, "{id} in _search");
    }

    // Prometheus scraped admin-api's merged exposition: every service.
    // The target is gone now (its series are stale), hence last_over_time.
    // Polled: the last scrape may still be on its way into the store.
    let services = [
        "generator",
        "websocket-ingestion",
        "enrichment-pipeline",
        "weather-api",
        "data-retention",
    ];
    eventually("every service in Prometheus", || {
        let up = promql(&prometheus.url(), "max_over_time(up[10m])")?;
        if !up.iter().any(|(_, v)| *v == 1.0) {
            return Err(format!("admin-api was never scraped: {up:?}"));
        }
        let scraped: BTreeSet<String> = promql(
            &prometheus.url(),
            "sum by (service) (last_over_time(operation_calls_total[10m]))",
        )?
        .into_iter()
        .filter_map(|(labels, v)| {
            (v > 0.0)
                .then(|| labels["service"].as_str().map(str::to_owned))
                .flatten()
        })
        .collect();
        match services.iter().find(|s| !scraped.contains(**s)) {
            Some(s) => Err(format!("{s} not in Prometheus: {scraped:?}")),
            None => Ok(Some(())),
        }
    });

    // InfluxDB got every generator call (the push flushes when a service stops).
    let sent = report
        .lines
        .iter()
        .filter(|l| l["performance"]["operation"] == "generator.send_event")
        .count() as f64;
    let pushed = eventually("generator calls in InfluxDB", || {
        let series = influxql(
            &influx.url(),
            DB,
            r#"SELECT sum("count") FROM "service_performance" WHERE "operation" = 'generator.send_event' AND "service" = 'generator'"#,
        )?;
        let n = series
            .first()
            .and_then(|s| s["values"][0][1].as_f64())
            .unwrap_or(0.0);
        Ok((n >= sent).then_some(n))
    });
    assert_eq!(pushed, sent);
}
