//! The HA-ingestor example's pipeline, run for a few seconds: seven services,
//! each its own process (this test binary started with `--role NAME`, so
//! the test has its own `main`: `harness = false`). Checks, on the lines the
//! services wrote: every line passes `LogValidator`; every event's lines in
//! all services share one correlation ID, for the events rejected on purpose
//! too; the merged metrics count what the lines say.

#[path = "../examples/ha_ingestor.rs"]
#[allow(dead_code, unreachable_pub)]
mod ha_ingestor;
#[path = "support/single_test.rs"]
mod support;

use std::collections::{BTreeMap, BTreeSet};

use clap::Parser as _;
use observe::log::LogValidator;

fn main() -> std::process::ExitCode {
    if std::env::args().any(|a| a == "--role") {
        // A child service of the pipeline below.
        return ha_ingestor::main();
    }
    support::run_single_test(
        "pipeline_lines_validate_and_share_one_correlation_id_per_event",
        pipeline_lines_validate_and_share_one_correlation_id_per_event,
    )
}

fn pipeline_lines_validate_and_share_one_correlation_id_per_event() {
    let args = ha_ingestor::Args::parse_from([
        "ha_ingestor",
        "--duration",
        "3",
        "--events-per-sec",
        "20",
        "--retention-max-events",
        "10",
        "--quiet",
    ]);
    let report = ha_ingestor::run_pipeline(&args).expect("the pipeline runs and stops cleanly");

    for (line, raw) in report.lines.iter().zip(&report.raw) {
        if let Err(e) = LogValidator::validate_line(raw) {
            panic!("invalid line ({e}): {raw}");
        }
        assert!(LogValidator::validate_value(line).is_ok());
    }
    let services: BTreeSet<&str> = report
        .lines
        .iter()
        .filter_map(|l| l["service"].as_str())
        .collect();
    for s in [
        "generator",
        "websocket-ingestion",
        "enrichment-pipeline",
        "weather-api",
        "data-retention",
        "admin-api",
        "health-dashboard",
    ] {
        assert!(services.contains(s), "no lines from {s}: {services:?}");
    }

    // The generator's line of each event: its correlation ID and outcome.
    let sent: BTreeMap<&str, (&str, &str)> = report
        .lines
        .iter()
        .filter(|l| l["performance"]["operation"] == "generator.send_event")
        .map(|l| {
            (
                l["context"]["event_id"].as_str().expect("event_id"),
                (
                    l["correlation_id"].as_str().expect("correlation_id"),
                    l["performance"]["status"].as_str().expect("status"),
                ),
            )
        })
        .collect();
    assert!(sent.len() >= 20, "only {} events sent", sent.len());

    // Every line naming an event carries that event's correlation ID.
    for l in &report.lines {
        if let Some(event) = l["context"]["event_id"].as_str() {
            let (id, _) = sent
                .get(event)
                .unwrap_or_else(|| panic!("{event} was never sent: {l}"));
            assert_eq!(
                l["correlation_id"], *id,
                "{event} changed correlation ID: {l}"
            );
        }
    }
    let mut rejected = 0;
    for (event, (id, status)) in &sent {
        let n: u64 = event.trim_start_matches("evt-").parse().expect("evt-N");
        let lines: Vec<_> = report
            .lines
            .iter()
            .filter(|l| l["correlation_id"] == *id)
            .collect();
        let by: BTreeSet<&str> = lines.iter().filter_map(|l| l["service"].as_str()).collect();
        if n % 10 == 3 || n % 10 == 7 {
            // Malformed on purpose: rejected by ingestion, with the ID.
            rejected += 1;
            assert_eq!(*status, "error", "{event}");
            assert_eq!(
                by,
                BTreeSet::from(["generator", "websocket-ingestion"]),
                "{event}"
            );
            assert!(
                lines
                    .iter()
                    .any(|l| l["performance"]["operation"] == "ingestion.validate"
                        && l["performance"]["status"] == "error"
                        && l["level"] == "ERROR"),
                "{event}: no failed validation line"
            );
        } else {
            assert_eq!(*status, "success", "{event}");
            assert_eq!(
                by,
                BTreeSet::from([
                    "generator",
                    "websocket-ingestion",
                    "enrichment-pipeline",
                    "weather-api",
                    "data-retention"
                ]),
                "{event}: its lines are not in every service"
            );
        }
    }
    assert!(rejected >= 2, "no event was rejected");

    // Retention was enforced (10 events kept).
    assert!(
        report
            .lines
            .iter()
            .any(|l| l["performance"]["operation"] == "retention.enforce")
    );

    // admin-api's merged metrics agree with the lines.
    let stats = ha_ingestor::operation_stats(&report.exposition);
    let generator = &stats[&("generator".to_owned(), "generator.send_event".to_owned())];
    assert_eq!(generator.calls as usize, sent.len());
    assert_eq!(generator.errors as usize, rejected);
    assert!(generator.quantile(0.99).is_some_and(|q| q > 0.0));
    let validate = &stats[&(
        "websocket-ingestion".to_owned(),
        "ingestion.validate".to_owned(),
    )];
    assert_eq!(validate.errors as usize, rejected);
    assert!(report.health.contains("\"healthy\""), "{}", report.health);

    // Under OpenMetrics, as Prometheus scrapes it: what runs, which
    // objective each operation serves, and exemplars naming calls whose
    // lines this run wrote (admin.metrics logs at debug, so it has none).
    let om = &report.openmetrics;
    assert!(om.ends_with("# EOF\n"), "{om}");
    assert!(
        om.lines().any(|l| l
            .starts_with("observe_build_info{service=\"websocket-ingestion\",version=\"")
            && l.ends_with("} 1")),
        "{om}"
    );
    assert!(
        om.contains(
            "operation_objective_info{service=\"websocket-ingestion\",operation=\"ingestion.receive\",objective=\"ingestion\"} 1\n"
        ),
        "{om}"
    );
    let logged: BTreeSet<&str> = report
        .lines
        .iter()
        .filter_map(|l| l["correlation_id"].as_str())
        .collect();
    let exemplars: Vec<&str> = om
        .lines()
        .filter(|l| {
            l.starts_with("operation_duration_seconds_bucket{")
                && !l.contains("operation=\"admin.metrics\"")
        })
        .filter_map(|l| {
            l.split_once(" # {")?
                .1
                .split_once("correlation_id=\"")?
                .1
                .split('"')
                .next()
        })
        .collect();
    assert!(exemplars.len() >= 5, "{om}");
    for id in &exemplars {
        assert!(
            logged.contains(id),
            "exemplar {id} names no line of the run"
        );
    }
    assert!(report.example_request().is_some());
}
