//! End to end against the real servers: monitored calls with known
//! outcomes, served on `/metrics` and scraped by Prometheus, pushed to
//! InfluxDB 1.6 (v1 API) and VictoriaMetrics (v2 API with a token), with
//! the system sampler on; every back-end reads back the same counts.
//! Prometheus scrapes OpenMetrics with exemplar storage on: the duration
//! buckets' exemplars name calls whose log lines the same run wrote. The
//! builder installs globally, so no other test of this binary installs.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::time::Duration;

use crate::common::{create_database, eventually, get, influxql, promql};
use crate::support::Service;
use observe::metrics::MetricsCollector;
use observe::metrics::influxdb::InfluxConfig;
use observe::sink::CaptureSink;
use observe::{InstallError, Observe, monitor_performance};

const SERVICE: &str = "checkout-service";
const DB: &str = "observe";

#[derive(Debug)]
struct Declined;

impl std::fmt::Display for Declined {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("card declined")
    }
}

#[monitor_performance("checkout")]
fn checkout(attempt: u32) -> Result<u32, Declined> {
    match attempt {
        0..7 => Ok(attempt),
        7..10 => Err(Declined),
        _ => panic!("checkout {attempt} exploded"),
    }
}

/// The `correlation_id` and series `status` of each exemplar Prometheus
/// stored for `selector` in the last hour.
fn exemplar_ids(prom: &str, selector: &str) -> Result<Vec<(String, String)>, String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs();
    let (start, end) = ((now - 3600).to_string(), (now + 60).to_string());
    let body = get(
        &format!("{prom}/api/v1/query_exemplars"),
        &[("query", selector), ("start", &start), ("end", &end)],
    )?;
    let v: serde_json::Value = serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))?;
    if v["status"] != "success" {
        return Err(body);
    }
    let mut ids = Vec::new();
    for series in v["data"].as_array().into_iter().flatten() {
        let status = series["seriesLabels"]["status"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        for e in series["exemplars"].as_array().into_iter().flatten() {
            let id = e["labels"]["correlation_id"]
                .as_str()
                .ok_or_else(|| format!("an exemplar without correlation_id: {e}"))?;
            ids.push((id.to_owned(), status.clone()));
        }
    }
    Ok(ids)
}

/// `{status: value}` of a PromQL result grouped by status, without the
/// zeros (a callsite registers a series for every status up front).
fn by_status(series: &[(serde_json::Value, f64)]) -> BTreeMap<String, f64> {
    series
        .iter()
        .filter(|(_, v)| *v != 0.0)
        .filter_map(|(labels, v)| Some((labels["status"].as_str()?.to_owned(), *v)))
        .collect()
}

fn expected() -> BTreeMap<String, f64> {
    [("error", 3.0), ("panic", 1.0), ("success", 7.0)]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
}

#[test]
fn prometheus_influxdb_and_victoria_metrics_read_back_the_same_counts() {
    // A port in use is a clear error from install(), and leaves nothing
    // installed.
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken_addr = taken.local_addr().expect("addr");
    let refused = Observe::builder(SERVICE)
        .metrics_listener(taken_addr)
        .install()
        .err();
    let Some(InstallError::Component { component, source }) = &refused else {
        panic!("expected a component error, got {refused:?}");
    };
    assert_eq!(component, "prometheus listener");
    assert_eq!(source.to_string(), format!("address {taken_addr} in use"));
    // The cause is still there, below the message.
    let io = source
        .source()
        .and_then(|e| e.downcast_ref::<std::io::Error>())
        .expect("an io::Error beneath");
    assert_eq!(io.kind(), std::io::ErrorKind::AddrInUse);
    assert!(!tracing::dispatcher::has_been_set());
    drop(taken);

    // The listener's port is known before Prometheus starts to scrape it.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let target = listener.local_addr().expect("addr").to_string();
    let servers = std::thread::scope(|s| {
        let prometheus = s.spawn(|| {
            Service::start_with_env_or_skip(
                "prometheus",
                &[("PROM_ARGS", "--enable-feature=exemplar-storage")],
                &[&target],
            )
        });
        let influx = s.spawn(|| Service::start_or_skip("influxdb", &[]));
        let victoria = s.spawn(|| Service::start_or_skip("victoria-metrics", &[]));
        (
            prometheus.join().expect("prometheus"),
            influx.join().expect("influxdb"),
            victoria.join().expect("victoria-metrics"),
        )
    });
    let (Some(prometheus), Some(influx), Some(victoria)) = servers else {
        return;
    };
    create_database(&influx.url(), DB);

    let push = Duration::from_millis(500);
    let lines = CaptureSink::new();
    let guard = Observe::builder(SERVICE)
        .version("1.4.2")
        .commit("9f3c2e1")
        .sink(lines.clone())
        .metrics_listener_on(listener)
        .system_metrics(Duration::from_secs(1))
        .influxdb(InfluxConfig::v1(&influx.url(), DB).interval(push))
        .influxdb(
            InfluxConfig::v2(
                &victoria.url(),
                "observe-org",
                "observe-bucket",
                "test-token",
            )
            .interval(push),
        )
        .install()
        .expect("install");

    // 7 successes, 3 errors, 1 panic.
    for attempt in 0..11 {
        let _ = std::panic::catch_unwind(|| checkout(attempt));
    }
    let collector = MetricsCollector::new();
    collector.record_counter("events_processed", 5, &[("event_type", "state_changed")]);
    collector.record_gauge("queue_depth", 17.0, &[("queue", "ingest")]);

    // --- Prometheus scrapes the listener; PromQL reads the counts back.
    let prom = prometheus.url();
    let counts = eventually("operation_calls_total in Prometheus", || {
        let got = by_status(&promql(
            &prom,
            r#"operation_calls_total{operation="checkout"}"#,
        )?);
        if got == expected() {
            Ok(Some(got))
        } else {
            let targets = get(&format!("{prom}/api/v1/targets"), &[])?;
            Err(format!("{got:?}; targets: {targets}"))
        }
    });
    println!("PromQL operation_calls_total{{operation=\"checkout\"}} by status: {counts:?}");
    let labels = promql(
        &prom,
        r#"operation_calls_total{operation="checkout",status="success"}"#,
    )
    .expect("query");
    assert_eq!(labels[0].0["service"], SERVICE, "{labels:?}");

    let p99 = promql(
        &prom,
        r#"histogram_quantile(0.99, sum by (le) (operation_duration_seconds_bucket{operation="checkout"}))"#,
    )
    .expect("query");
    assert_eq!(p99.len(), 1, "{p99:?}");
    assert!(p99[0].1.is_finite() && p99[0].1 > 0.0, "{p99:?}");
    println!(
        "PromQL histogram_quantile(0.99, ...checkout): {} s",
        p99[0].1
    );

    for gauge in [
        "system_cpu_usage_percent",
        "system_memory_used_bytes",
        "system_memory_usage_percent",
        "system_disk_free_bytes",
        "system_disk_usage_percent",
        "system_network_receive_bytes_total",
        "system_network_transmit_bytes_total",
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
    ] {
        let series = eventually(gauge, || {
            let s = promql(&prom, gauge)?;
            Ok((!s.is_empty()).then_some(s))
        });
        println!(
            "PromQL {gauge}: {} series, first {}",
            series.len(),
            series[0].1
        );
    }
    let events = promql(
        &prom,
        r#"events_processed_total{event_type="state_changed"}"#,
    )
    .expect("query");
    assert_eq!(events.first().map(|e| e.1), Some(5.0), "{events:?}");

    let build = promql(&prom, "observe_build_info").expect("query");
    assert_eq!(build.len(), 1, "{build:?}");
    assert_eq!(
        (
            &build[0].0["service"],
            &build[0].0["version"],
            &build[0].0["commit"]
        ),
        (
            &serde_json::json!(SERVICE),
            &serde_json::json!("1.4.2"),
            &serde_json::json!("9f3c2e1")
        ),
        "{build:?}"
    );

    // --- Exemplars: each names a call that wrote a line in this run.
    let logged: std::collections::BTreeSet<String> = lines
        .lines()
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l["performance"]["operation"] == "checkout")
        .filter_map(|l| l["correlation_id"].as_str().map(str::to_owned))
        .collect();
    let exemplars = eventually("exemplars of checkout in Prometheus", || {
        let found = exemplar_ids(
            &prom,
            r#"operation_duration_seconds_bucket{operation="checkout"}"#,
        )?;
        Ok((!found.is_empty()).then_some(found))
    });
    println!("Prometheus exemplars of checkout: {exemplars:?}");
    for (id, status) in &exemplars {
        assert!(
            logged.contains(id),
            "exemplar {id} ({status}) is not in the log lines: {logged:?}"
        );
    }

    // --- The exposition passes promtool's checks.
    let exposition = get(&format!("http://{target}/metrics"), &[]).expect("GET /metrics");
    assert!(
        exposition.contains("operation_calls_total{"),
        "{exposition}"
    );
    assert_eq!(
        crate::promtool::promtool_check(&exposition),
        "",
        "promtool check metrics"
    );

    // --- Dropping the guard flushes both pushes.
    drop(guard);

    let perf = influxql(
        &influx.url(),
        DB,
        r#"SELECT sum("count") FROM "service_performance" WHERE "operation" = 'checkout' GROUP BY "status", "service""#,
    )
    .expect("influxql");
    let influx_counts: BTreeMap<String, f64> = perf
        .iter()
        .filter_map(|s| {
            assert_eq!(s["tags"]["service"], SERVICE, "{s}");
            Some((
                s["tags"]["status"].as_str()?.to_owned(),
                s["values"][0][1].as_f64()?,
            ))
        })
        .collect();
    println!("InfluxQL sum(count) of service_performance by status: {influx_counts:?}");
    assert_eq!(influx_counts, expected(), "{perf:?}");

    let p = influxql(
        &influx.url(),
        DB,
        r#"SELECT max("duration_ms_max"), max("duration_ms_p99") FROM "service_performance" WHERE "operation" = 'checkout' AND "status" = 'success'"#,
    )
    .expect("influxql");
    let (max, p99) = (
        p[0]["values"][0][1].as_f64().unwrap_or(f64::NAN),
        p[0]["values"][0][2].as_f64().unwrap_or(f64::NAN),
    );
    assert!(max > 0.0 && p99 > 0.0 && p99 <= max * 1.01, "{p:?}");

    let counters = influxql(
        &influx.url(),
        DB,
        r#"SELECT sum("value") FROM "service_counters" WHERE "metric" = 'events_processed_total' GROUP BY "event_type""#,
    )
    .expect("influxql");
    assert_eq!(
        counters[0]["tags"]["event_type"], "state_changed",
        "{counters:?}"
    );
    assert_eq!(counters[0]["values"][0][1], 5, "{counters:?}");
    let gauges = influxql(
        &influx.url(),
        DB,
        r#"SELECT last("value") FROM "service_gauges" WHERE "metric" = 'system_memory_used_bytes'"#,
    )
    .expect("influxql");
    assert!(
        gauges[0]["values"][0][1].as_f64().unwrap_or(0.0) > 0.0,
        "{gauges:?}"
    );
    println!(
        "InfluxQL events_processed_total: {}, system_memory_used_bytes: {}",
        counters[0]["values"][0][1], gauges[0]["values"][0][1]
    );

    // --- VictoriaMetrics got the v2 writes: `measurement_field` series.
    let vm = victoria.url();
    let vm_counts = eventually("service_performance_count in VictoriaMetrics", || {
        let _ = get(&format!("{vm}/internal/force_flush"), &[]);
        let got = by_status(&promql(
            &vm,
            &format!(
                r#"sum by (status) (sum_over_time(service_performance_count{{operation="checkout",service="{SERVICE}"}}[1h]))"#
            ),
        )?);
        Ok((got == expected()).then_some(got))
    });
    println!("VictoriaMetrics sum_over_time(service_performance_count) by status: {vm_counts:?}");
    let vm_events = eventually("service_counters_value in VictoriaMetrics", || {
        let s = promql(
            &vm,
            r#"sum(sum_over_time(service_counters_value{metric="events_processed_total",event_type="state_changed"}[1h]))"#,
        )?;
        Ok(s.first().map(|e| e.1).filter(|v| *v == 5.0))
    });
    assert_eq!(vm_events, 5.0);
}
