//! Every kind of line, byte for byte. The only parts of a line that depend
//! on the clock (the timestamp and the measured duration) are checked for
//! their form and then replaced by placeholders at their exact positions;
//! everything else must equal the expected text exactly.

use std::time::Duration;

use observe::correlation::{self, CorrelationId};
use observe::log::JsonLayer;
use observe::monitor_performance;
use observe::sink::CaptureSink;
use tracing_subscriber::layer::SubscriberExt as _;

#[derive(Debug)]
struct StoreError(&'static str);

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

#[derive(Debug)]
struct DebugOnly;

#[monitor_performance("fmt.success", context(entity = entity, count = 3u64, ratio = %0.5f64, token = "s3cret"))]
fn success(entity: &str) -> u32 {
    7
}

#[monitor_performance("fmt.error", context(entity = "a"))]
fn error() -> Result<(), StoreError> {
    Err(StoreError("disk \"full\"\tnow\n\u{1}"))
}

#[monitor_performance("fmt.error_debug")]
fn error_debug() -> Result<(), DebugOnly> {
    Err(DebugOnly)
}

#[monitor_performance("fmt.io")]
fn io_error() -> std::io::Result<()> {
    Err(std::io::Error::other("gone"))
}

#[monitor_performance("fmt.slow", slow = "1ms")]
fn slow() {
    std::thread::sleep(Duration::from_millis(3));
}

#[monitor_performance("fmt.quiet", level = "warn")]
fn warn_level() {}

#[monitor_performance("fmt.panic")]
fn panics() {
    panic!("boom");
}

#[monitor_performance("fmt.cancel")]
async fn pending_forever() {
    std::future::pending::<()>().await;
}

#[monitor_performance("fmt.long", context(payload = payload))]
fn long(payload: &str) {}

#[monitor_performance("fmt.outer")]
fn outer() {
    tracing::info!(
        password = "hunter2",
        rows = 3u64,
        ratio = 0.25,
        ok = true,
        name = "x\"y",
        "stored"
    );
    tracing::warn!(err = ?DebugOnly, "no message fields");
    tracing::error!("plain");
    inner();
}

#[monitor_performance("fmt.inner")]
fn inner() {}

/// Runs every kind of call in one correlation scope, with lines capped at
/// `max_line_bytes`, and returns the raw lines.
fn lines(max_line_bytes: usize, calls: impl FnOnce()) -> Vec<String> {
    let capture = CaptureSink::new();
    let subscriber = tracing_subscriber::registry().with(
        JsonLayer::new("fmt-svc")
            .with_sink(capture.clone())
            .with_max_line_bytes(max_line_bytes),
    );
    let id: CorrelationId = "req-fixed".parse().expect("valid ID");
    tracing::subscriber::with_default(subscriber, || correlation::scope(id, calls));
    capture.lines()
}

/// Checks that `line` has exactly one value of `key` of the expected form
/// at the given place and replaces it with `placeholder`.
fn mask(line: &str, key: &str, is_value: impl Fn(&str) -> bool, placeholder: &str) -> String {
    let start = line
        .find(key)
        .unwrap_or_else(|| panic!("no {key} in {line}"))
        + key.len();
    let end = start
        + line[start..]
            .find([',', '}'])
            .unwrap_or_else(|| panic!("{key} not closed in {line}"));
    let value = &line[start..end];
    assert!(is_value(value), "{key}{value} has the wrong form in {line}");
    format!("{}{placeholder}{}", &line[..start], &line[end..])
}

fn is_timestamp(v: &str) -> bool {
    let b = v.as_bytes();
    b.len() == 29
        && b[0] == b'"'
        && b[28] == b'"'
        && &v[11..12] == "T"
        && &v[27..28] == "Z"
        && v[21..27].bytes().all(|c| c.is_ascii_digit())
}

fn is_millis(v: &str) -> bool {
    let (whole, frac) = v.split_once('.').unwrap_or(("", ""));
    !whole.is_empty()
        && whole.bytes().all(|c| c.is_ascii_digit())
        && frac.len() == 6
        && frac.bytes().all(|c| c.is_ascii_digit())
}

fn is_span_id(v: &str) -> bool {
    v.len() == 18
        && v.starts_with('"')
        && v.ends_with('"')
        && v[1..17]
            .bytes()
            .all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

fn masked(lines: Vec<String>) -> Vec<String> {
    lines
        .into_iter()
        .map(|l| {
            let mut l = mask(&l, "\"timestamp\":", is_timestamp, "\"T\"");
            // Span ids are random: their form is checked, then masked.
            for (key, placeholder) in [("\"span_id\":", "\"S\""), ("\"parent_span_id\":", "\"P\"")]
            {
                if l.contains(key) {
                    l = mask(&l, key, is_span_id, placeholder);
                }
            }
            if l.contains("\"duration_ms\":") {
                mask(&l, "\"duration_ms\":", is_millis, "D")
            } else {
                l
            }
        })
        .collect()
}

fn assert_lines(actual: Vec<String>, expected: &[&str]) {
    let actual = masked(actual);
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        assert_eq!(a, e, "line {i} differs");
    }
    assert_eq!(actual.len(), expected.len(), "{actual:#?}");
}

#[test]
fn every_outcome_writes_its_line_exactly() {
    let actual = lines(observe::log::DEFAULT_MAX_LINE_BYTES, || {
        success("sensor \"kitchen\"\n");
        let _ = error();
        let _ = error_debug();
        let _ = io_error();
        slow();
        warn_level();
        let _ = std::panic::catch_unwind(panics);
        {
            let mut fut = Box::pin(pending_forever());
            let waker = std::task::Waker::noop();
            let pending = fut
                .as_mut()
                .poll(&mut std::task::Context::from_waker(waker));
            assert!(pending.is_pending());
        }
        outer();
    });
    assert_lines(
        actual,
        &[
            r#"{"timestamp":"T","level":"INFO","service":"fmt-svc","message":"fmt.success completed","correlation_id":"req-fixed","trace_id":"6f4d074fd798caa45385a8e3739f7e49","span_id":"S","context":{"entity":"sensor \"kitchen\"\n","count":3,"ratio":"0.5","token":"[REDACTED]"},"performance":{"operation":"fmt.success","status":"success","duration_ms":D}}"#,
            r#"{"timestamp":"T","level":"ERROR","service":"fmt-svc","message":"fmt.error failed: disk \"full\"\tnow\n\u0001","correlation_id":"req-fixed","trace_id":"6f4d074fd798caa45385a8e3739f7e49","span_id":"S","context":{"error_type":"StoreError","entity":"a"},"performance":{"operation":"fmt.error","status":"error","duration_ms":D}}"#,
            r#"{"timestamp":"T","level":"ERROR","service":"fmt-svc","message":"fmt.error_debug failed: DebugOnly","correlation_id":"req-fixed","trace_id":"6f4d074fd798caa45385a8e3739f7e49","span_id":"S","context":{"error_type":"DebugOnly"},"performance":{"operation":"fmt.error_debug","status":"error","duration_ms":D}}"#,
            r#"{"timestamp":"T","level":"ERROR","service":"fmt-svc","message":"fmt.io failed: gone","correlation_id":"req-fixed","trace_id":"6f4d074fd798caa45385a8e3739f7e49","span_id":"S","context":{"error_type":"Error"},"performance":{"operation":"fmt.io","status":"error","duration_ms":D}}"#,
            r#"{"timestamp":"T","level":"WARN","service":"fmt-svc","message":"fmt.slow slow","correlation_id":"req-fixed","trace_id":"6f4d074fd798caa45385a8e3739f7e49","span_id":"S","context":{},"performance":{"operation":"fmt.slow","status":"success","duration_ms":D,"threshold_ms":1.000000}}"#,
            r#"{"timestamp":"T","level":"WARN","service":"fmt-svc","message":"fmt.quiet completed","correlation_id":"req-fixed","trace_id":"6f4d074fd798caa45385a8e3739f7e49","span_id":"S","context":{},"performance":{"operation":"fmt.quiet","status":"success","duration_ms":D}}"#,
            r#"{"timestamp":"T","level":"ERROR","service":"fmt-svc","message":"fmt.panic panicked","correlation_id":"req-fixed","trace_id":"6f4d074fd798caa45385a8e3739f7e49","span_id":"S","context":{},"performance":{"operation":"fmt.panic","status":"panic","duration_ms":D}}"#,
            r#"{"timestamp":"T","level":"WARN","service":"fmt-svc","message":"fmt.cancel cancelled","correlation_id":"req-fixed","trace_id":"6f4d074fd798caa45385a8e3739f7e49","span_id":"S","context":{},"performance":{"operation":"fmt.cancel","status":"cancelled","duration_ms":D}}"#,
            r#"{"timestamp":"T","level":"INFO","service":"fmt-svc","message":"stored","correlation_id":"req-fixed","trace_id":"6f4d074fd798caa45385a8e3739f7e49","span_id":"S","context":{"password":"[REDACTED]","rows":3,"ratio":0.25,"ok":true,"name":"x\"y"},"performance":{}}"#,
            r#"{"timestamp":"T","level":"WARN","service":"fmt-svc","message":"no message fields","correlation_id":"req-fixed","trace_id":"6f4d074fd798caa45385a8e3739f7e49","span_id":"S","context":{"err":"DebugOnly"},"performance":{}}"#,
            r#"{"timestamp":"T","level":"ERROR","service":"fmt-svc","message":"plain","correlation_id":"req-fixed","trace_id":"6f4d074fd798caa45385a8e3739f7e49","span_id":"S","context":{},"performance":{}}"#,
            r#"{"timestamp":"T","level":"INFO","service":"fmt-svc","message":"fmt.inner completed","correlation_id":"req-fixed","trace_id":"6f4d074fd798caa45385a8e3739f7e49","span_id":"S","parent_span_id":"P","context":{},"performance":{"operation":"fmt.inner","status":"success","duration_ms":D}}"#,
            r#"{"timestamp":"T","level":"INFO","service":"fmt-svc","message":"fmt.outer completed","correlation_id":"req-fixed","trace_id":"6f4d074fd798caa45385a8e3739f7e49","span_id":"S","context":{},"performance":{"operation":"fmt.outer","status":"success","duration_ms":D}}"#,
        ],
    );
}

#[test]
fn long_lines_are_cut_exactly() {
    let payload = "x\"y".repeat(700);
    let actual = lines(1024, || {
        long(&payload);
        tracing::info!(payload = payload.as_str(), "{}", "m\"".repeat(600));
    });
    let cut_call = r#"{"timestamp":"T","level":"INFO","service":"fmt-svc","message":"fmt.long completed...","correlation_id":"req-fixed","trace_id":"6f4d074fd798caa45385a8e3739f7e49","span_id":"S","context":{"truncated":true,"original_bytes":ORIGINAL},"performance":{"operation":"fmt.long","status":"success","duration_ms":D}}"#;
    let event_prefix = r#"{"timestamp":"T","level":"INFO","service":"fmt-svc","message":""#;
    assert_eq!(actual.len(), 2, "{actual:#?}");
    // The uncut line's length counts the duration's digits: 3112 bytes
    // besides them.
    let digits = actual[0]
        .split_once("\"duration_ms\":")
        .and_then(|(_, d)| d.split_once('}'))
        .map_or(0, |(d, _)| d.len());
    let cut_call = cut_call.replace("ORIGINAL", &(3112 + digits).to_string());
    let actual = masked(actual);
    assert_eq!(actual[0], cut_call);
    let event = &actual[1];
    assert!(event.starts_with(event_prefix), "{event}");
    let rest = &event[event_prefix.len()..];
    let (message, tail) = rest.split_once(r#"...","#).expect("cut message");
    assert!(message.len() > 700, "kept only {} bytes", message.len());
    assert!(r#"m\""#.repeat(600).starts_with(message), "{message}");
    assert_eq!(
        tail,
        r#""correlation_id":"req-fixed","trace_id":"6f4d074fd798caa45385a8e3739f7e49","context":{"truncated":true,"original_bytes":4809},"performance":{}}"#
    );
}
