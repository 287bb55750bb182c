//! The log line: context values, redaction, escaping, levels and the line
//! cap, asserted on parsed JSON.

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use observe::log::{JsonLayer, LogValidator};
use observe::monitor_performance;
use observe::sink::CaptureSink;
use observe::testing;
use tracing_subscriber::layer::SubscriberExt as _;

struct Event {
    entity_id: String,
    attempt: u32,
}

#[monitor_performance("process_event", context(entity_id = event.entity_id.as_str(), attempt = event.attempt, api_token = "s3cret", kind = ?event.attempt))]
fn process_event(event: &Event) -> u32 {
    tracing::info!(
        password = "hunter2",
        rows = 3u64,
        ratio = 0.25,
        ok = true,
        "stored"
    );
    event.attempt
}

#[monitor_performance(level = "debug")]
fn quiet() {}

#[monitor_performance]
fn nasty_error() -> Result<(), String> {
    Err("line one\nline two \"quoted\" \\ back\u{0}slash \u{2028}".to_owned())
}

#[test]
fn context_values_and_redaction() {
    let e = Event {
        entity_id: "sensor.kitchen".into(),
        attempt: 2,
    };
    let c = testing::capture(|| process_event(&e));
    assert_eq!(c.lines.len(), 2, "{:#?}", c.raw_lines);
    let user = &c.lines[0];
    assert_eq!(user["message"], "stored");
    assert_eq!(user["context"]["password"], "[REDACTED]");
    assert_eq!(user["context"]["rows"], 3);
    assert_eq!(user["context"]["ratio"], 0.25);
    assert_eq!(user["context"]["ok"], true);
    assert_eq!(user["performance"], serde_json::json!({}));

    let done = &c.lines[1];
    assert_eq!(done["context"]["entity_id"], "sensor.kitchen");
    assert_eq!(done["context"]["attempt"], 2);
    assert_eq!(done["context"]["api_token"], "[REDACTED]");
    assert_eq!(done["context"]["kind"], "2");
    for raw in &c.raw_lines {
        assert!(
            !raw.contains("hunter2") && !raw.contains("s3cret"),
            "secret leaked: {raw}"
        );
        LogValidator::validate_line(raw).expect("valid line");
    }
}

#[test]
fn success_level_is_configurable() {
    let c = testing::capture(quiet);
    assert_eq!(c.lines[0]["level"], "DEBUG");
}

#[test]
fn every_string_is_escaped() {
    let c = testing::capture(nasty_error);
    assert_eq!(c.raw_lines.len(), 1);
    let raw = &c.raw_lines[0];
    assert!(
        !raw.contains('\n') && !raw.contains('\u{2028}'),
        "line split: {raw:?}"
    );
    assert_eq!(
        c.lines[0]["message"],
        "nasty_error failed: line one\nline two \"quoted\" \\ back\u{0}slash \u{2028}"
    );
    LogValidator::validate_line(raw).expect("valid line");
}

#[test]
fn user_fields_cannot_forge_top_level_fields() {
    let c = testing::capture(|| {
        tracing::info!(
            level = "ERROR",
            service = "evil",
            correlation_id = "x",
            "hello"
        );
    });
    let l = &c.lines[0];
    assert_eq!(l["level"], "INFO");
    assert_eq!(l["service"], testing::SERVICE);
    assert_eq!(l["context"]["service"], "evil");
    assert_ne!(l["correlation_id"], "x");
}

#[test]
fn long_lines_are_truncated_and_marked() {
    let sink = CaptureSink::new();
    let subscriber = tracing_subscriber::registry().with(
        JsonLayer::new("svc")
            .with_sink(sink.clone())
            .with_max_line_bytes(2048),
    );
    let big = "é\"".repeat(5000);
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!(payload = big.as_str(), "{big}");
    });
    let lines = sink.lines();
    assert_eq!(lines.len(), 1);
    assert!(lines[0].len() <= 2048, "line is {} bytes", lines[0].len());
    LogValidator::validate_line(&lines[0]).expect("still a valid line");
    let v: serde_json::Value = serde_json::from_str(&lines[0]).expect("json");
    assert_eq!(v["context"]["truncated"], true);
    assert!(v["context"]["original_bytes"].as_u64().expect("number") > 20_000);
    let message = v["message"].as_str().expect("message");
    let kept = message.strip_suffix("...").expect("marked as cut");
    assert!(big.starts_with(kept));
    // The cut keeps what fits: each kept char is 4 bytes once escaped.
    assert!(
        kept.len() * 4 / 3 > 1_500,
        "kept {} bytes: {message:?}",
        kept.len()
    );
}

#[monitor_performance("probe")]
fn probe(snapshotter: &Snapshotter) -> Option<f64> {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .find_map(|(key, _, _, value)| {
            let is_gauge = key.key().name() == "operation_in_flight";
            match value {
                DebugValue::Gauge(v) if is_gauge => Some(v.into_inner()),
                _ => None,
            }
        })
}

#[test]
fn in_flight_is_one_during_the_call_and_zero_after() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let during = metrics::with_local_recorder(&recorder, || probe(&snapshotter));
    assert_eq!(during, Some(1.0));
    let after = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .find_map(|(key, _, _, value)| match value {
            DebugValue::Gauge(v) if key.key().name() == "operation_in_flight" => {
                Some(v.into_inner())
            }
            _ => None,
        });
    // Debugging snapshots report changes since the last snapshot: the call's
    // end took the gauge from 1 back down by one.
    assert_eq!(after, Some(-1.0));
}
