//! Each outcome's log line and metrics, asserted on parsed JSON and on a
//! metrics snapshot.

use std::time::Duration;

use observe::monitor_performance;
use observe::testing::{self, Captured};
use serde_json::Value;

#[derive(Debug)]
struct StoreError(&'static str);

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "store rejected: {}", self.0)
    }
}

impl std::error::Error for StoreError {}

#[monitor_performance("store.put")]
fn put(ok: bool) -> Result<u32, StoreError> {
    if ok {
        Ok(7)
    } else {
        Err(StoreError("disk full"))
    }
}

#[monitor_performance]
fn explode() -> u8 {
    panic!("boom")
}

#[monitor_performance("slow.op", slow = "1ms")]
fn sleepy() {
    std::thread::sleep(Duration::from_millis(5));
}

#[monitor_performance("pending.op")]
async fn pending_forever() -> u8 {
    std::future::pending::<()>().await;
    1
}

fn only_line(c: &Captured<impl Sized>) -> &Value {
    assert_eq!(c.lines.len(), 1, "lines: {:#?}", c.raw_lines);
    for raw in &c.raw_lines {
        observe::log::LogValidator::validate_line(raw).expect("schema-valid line");
    }
    &c.lines[0]
}

fn labels<'a>(op: &'a str, status: &'a str) -> [(&'a str, &'a str); 2] {
    [("operation", op), ("status", status)]
}

#[test]
fn success_logs_info_and_counts() {
    let c = testing::capture(|| put(true));
    assert_eq!(c.output.as_ref().ok(), Some(&7));
    let line = only_line(&c);
    assert_eq!(line["level"], "INFO");
    assert_eq!(line["message"], "store.put completed");
    assert_eq!(line["service"], testing::SERVICE);
    assert_eq!(line["performance"]["status"], "success");
    assert_eq!(line["performance"]["operation"], "store.put");
    assert!(line["performance"]["duration_ms"].is_number());
    assert_eq!(
        c.metrics
            .counter("operation_calls_total", &labels("store.put", "success")),
        Some(1)
    );
    let hist = c.metrics.histogram(
        "operation_duration_seconds",
        &labels("store.put", "success"),
    );
    assert_eq!(hist.map(<[f64]>::len), Some(1), "{:?}", c.metrics.keys());
    assert_eq!(
        c.metrics
            .gauge("operation_in_flight", &[("operation", "store.put")]),
        Some(0.0)
    );
}

#[test]
fn error_logs_error_with_type_and_message() {
    let c = testing::capture(|| put(false));
    assert!(c.output.is_err());
    let line = only_line(&c);
    assert_eq!(line["level"], "ERROR");
    assert_eq!(
        line["message"],
        "store.put failed: store rejected: disk full"
    );
    assert_eq!(line["context"]["error_type"], "StoreError");
    assert_eq!(line["performance"]["status"], "error");
    assert_eq!(
        c.metrics
            .counter("operation_calls_total", &labels("store.put", "error")),
        Some(1)
    );
    assert_eq!(
        c.metrics.counter(
            "operation_errors_total",
            &[("operation", "store.put"), ("error_type", "StoreError")]
        ),
        Some(1)
    );
    assert_eq!(
        c.metrics
            .gauge("operation_in_flight", &[("operation", "store.put")]),
        Some(0.0)
    );
}

/// One ERROR "panicked" line for `op`, counted as a panic, and the call
/// out of the in-flight gauge; the panic itself propagated.
fn assert_panicked<T>(c: &Captured<std::thread::Result<T>>, op: &str) {
    assert!(c.output.is_err(), "the panic must propagate");
    let line = only_line(c);
    assert_eq!(line["level"], "ERROR");
    assert_eq!(line["message"], format!("{op} panicked"));
    assert_eq!(line["performance"]["status"], "panic");
    assert_eq!(
        c.metrics
            .counter("operation_calls_total", &labels(op, "panic")),
        Some(1)
    );
    assert_eq!(
        c.metrics.gauge("operation_in_flight", &[("operation", op)]),
        Some(0.0)
    );
}

#[test]
fn panic_is_recorded_and_propagates() {
    let c = testing::capture(|| std::panic::catch_unwind(explode));
    assert_panicked(&c, "explode");
}

#[test]
fn dropped_future_is_cancelled() {
    let c = testing::capture(|| {
        let mut fut = Box::pin(pending_forever());
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        assert!(fut.as_mut().poll(&mut cx).is_pending());
        drop(fut);
    });
    let line = only_line(&c);
    assert_eq!(line["level"], "WARN");
    assert_eq!(line["message"], "pending.op cancelled");
    assert_eq!(line["performance"]["status"], "cancelled");
    assert_eq!(
        c.metrics
            .counter("operation_calls_total", &labels("pending.op", "cancelled")),
        Some(1)
    );
    assert_eq!(
        c.metrics
            .gauge("operation_in_flight", &[("operation", "pending.op")]),
        Some(0.0)
    );
}

#[test]
fn slow_call_logs_warn() {
    let c = testing::capture(sleepy);
    let line = only_line(&c);
    assert_eq!(line["level"], "WARN");
    assert_eq!(line["message"], "slow.op slow");
    assert_eq!(line["performance"]["status"], "success");
    assert!(line["performance"]["duration_ms"].as_f64().expect("number") >= 5.0);
    assert_eq!(line["performance"]["threshold_ms"], 1.0);
}

#[monitor_performance(context(first = readings[0]))]
fn first_reading(readings: &[u32]) -> u32 {
    readings.iter().sum()
}

#[test]
fn a_context_value_that_panics_is_the_call_s_panic() {
    let c = testing::capture(|| std::panic::catch_unwind(|| first_reading(&[])));
    assert_panicked(&c, "first_reading");
}
