//! Call records: what a consumer of finished calls receives, and that
//! other layers still see each call as a `tracing` event.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use observe::Status;
use observe::correlation::{self, CorrelationId};
use observe::log::JsonLayer;
use observe::monitor_performance;
use observe::record::{CallConsumer, CallRecord, EVENT_NAME};
use observe::sink::CaptureSink;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};

/// What a consumer copied out of each record.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    operation: String,
    status: Status,
    level: tracing::Level,
    message: String,
    error: Option<(String, String)>,
    context: String,
    correlation_id: String,
    duration: Duration,
    start: u64,
    end: u64,
    slow_threshold: Option<Duration>,
    module: Option<String>,
}

/// How far the calls' derived wall time may stray from the system clock.
const SKEW: u64 = 5_000_000;

fn unix_nanos_now() -> u64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    u64::try_from(since.as_nanos()).unwrap()
}

#[derive(Debug, Default)]
struct Keep(Mutex<Vec<Seen>>);

impl CallConsumer for Keep {
    fn on_call(&self, call: &CallRecord<'_>) {
        let seen = Seen {
            operation: call.operation().to_owned(),
            status: call.status(),
            level: call.level(),
            message: call.message().to_string(),
            error: call
                .error()
                .map(|e| (e.type_name().to_owned(), e.to_string())),
            context: call.context_json().to_owned(),
            correlation_id: call.correlation_id().to_string(),
            duration: call.duration(),
            start: call.start_unix_nanos(),
            end: call.end_unix_nanos(),
            slow_threshold: call.slow_threshold(),
            module: call.metadata().module_path().map(str::to_owned),
        };
        self.0.lock().unwrap().push(seen);
    }
}

/// Counts the `tracing` events of monitored calls another layer sees.
#[derive(Debug, Default, Clone)]
struct CountCallEvents(Arc<Mutex<Vec<String>>>);

impl<S: tracing::Subscriber> Layer<S> for CountCallEvents {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        if event.metadata().name() == EVENT_NAME {
            self.0
                .lock()
                .unwrap()
                .push(event.metadata().level().to_string());
        }
    }
}

#[derive(Debug)]
struct Refused;

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("quota \"exceeded\"")
    }
}

#[monitor_performance("rec.store", context(entity = entity))]
fn store(entity: &str) -> Result<u32, Refused> {
    if entity.is_empty() {
        Err(Refused)
    } else {
        Ok(1)
    }
}

#[monitor_performance("rec.slow", slow = "1ms")]
fn slow() {
    std::thread::sleep(Duration::from_millis(3));
}

#[test]
fn a_consumer_receives_each_finished_call_as_typed_data() {
    let keep = Arc::new(Keep::default());
    let events = CountCallEvents::default();
    let capture = CaptureSink::new();
    let subscriber = tracing_subscriber::registry().with(events.clone()).with(
        JsonLayer::new("rec")
            .with_sink(capture.clone())
            .with_call_consumer(keep.clone()),
    );
    let id: CorrelationId = "req-rec".parse().unwrap();
    let before = unix_nanos_now();
    tracing::subscriber::with_default(subscriber, || {
        correlation::scope(id, || {
            let _ = store("sensor.kitchen");
            let _ = store("");
            slow();
        });
    });
    let after = unix_nanos_now();
    let seen = keep.0.lock().unwrap().clone();
    assert_eq!(seen.len(), 3, "{seen:#?}");
    let [ok, failed, slow] = [&seen[0], &seen[1], &seen[2]];
    assert_eq!(ok.operation, "rec.store");
    assert_eq!(ok.status, Status::Success);
    assert_eq!(ok.level, tracing::Level::INFO);
    assert_eq!(ok.message, "rec.store completed");
    assert_eq!(ok.error, None);
    assert_eq!(ok.context, r#""entity":"sensor.kitchen""#);
    assert_eq!(ok.module.as_deref(), Some(module_path!()));
    assert_eq!(failed.status, Status::Error);
    assert_eq!(failed.level, tracing::Level::ERROR);
    assert_eq!(failed.message, r#"rec.store failed: quota "exceeded""#);
    assert_eq!(
        failed.error,
        Some(("Refused".to_owned(), r#"quota "exceeded""#.to_owned()))
    );
    assert_eq!(failed.context, r#""entity":"""#);
    assert_eq!(slow.level, tracing::Level::WARN);
    assert_eq!(slow.message, "rec.slow slow");
    assert_eq!(slow.slow_threshold, Some(Duration::from_millis(1)));
    assert!(
        slow.duration >= Duration::from_millis(3),
        "{:?}",
        slow.duration
    );
    for s in &seen {
        assert_eq!(s.correlation_id, "req-rec");
        // Wall time derived from the call's clock, which stays within a
        // few milliseconds of the system clock.
        assert!(s.start >= before - SKEW && s.end <= after + SKEW, "{s:?}");
        assert!(s.start <= s.end, "{s:?}");
    }
    // The JSON layer wrote one line per call, from the same records.
    let lines = capture.lines();
    assert_eq!(lines.len(), 3, "{lines:#?}");
    let failed_line: serde_json::Value = serde_json::from_str(&lines[1]).unwrap();
    assert_eq!(failed_line["message"], failed.message);
    assert_eq!(failed_line["context"]["error_type"], "Refused");
    // Another layer saw each call as an ordinary event.
    assert_eq!(*events.0.lock().unwrap(), ["INFO", "ERROR", "WARN"]);
}

#[test]
fn without_a_json_layer_calls_still_reach_other_layers() {
    let events = CountCallEvents::default();
    let subscriber = tracing_subscriber::registry().with(events.clone());
    tracing::subscriber::with_default(subscriber, || {
        let _ = store("a");
    });
    assert_eq!(*events.0.lock().unwrap(), ["INFO"]);
}

/// `(operation, logged, span, parent, trace)` of one call.
type SpanSeen = (String, bool, u64, Option<u64>, u128);

/// Keeps what it saw of every call, logged or not.
#[derive(Debug, Default)]
struct EveryCall(Mutex<Vec<SpanSeen>>);

impl CallConsumer for EveryCall {
    fn on_call(&self, call: &CallRecord<'_>) {
        self.0.lock().unwrap().push((
            call.operation().to_owned(),
            call.is_logged(),
            call.span_id(),
            call.parent_span_id(),
            call.trace_id(),
        ));
    }

    fn wants_unlogged_calls(&self) -> bool {
        true
    }
}

#[monitor_performance("record.parent")]
fn parent_call() {
    child_call();
}

#[monitor_performance("record.child")]
fn child_call() {}

#[test]
fn a_consumer_of_unlogged_calls_sees_calls_whose_lines_are_filtered_out() {
    let every = Arc::new(EveryCall::default());
    let only_logged = Arc::new(Keep::default());
    let sink = CaptureSink::new();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_subscriber::filter::LevelFilter::WARN)
        .with(
            JsonLayer::new("svc")
                .with_sink(sink.clone())
                .with_call_consumer(every.clone())
                .with_call_consumer(only_logged.clone()),
        );
    tracing::subscriber::with_default(subscriber, parent_call);
    // Success lines are INFO: filtered out, so not written and not handed
    // to the ordinary consumer.
    assert!(sink.take().is_empty());
    assert!(only_logged.0.lock().unwrap().is_empty());
    let seen = every.0.lock().unwrap().clone();
    let [
        (child, false, child_span, child_parent, child_trace),
        (parent, false, parent_span, None, parent_trace),
    ] = seen.as_slice()
    else {
        panic!("{seen:?}");
    };
    assert_eq!(
        (child.as_str(), parent.as_str()),
        ("record.child", "record.parent")
    );
    assert_eq!(*child_parent, Some(*parent_span));
    assert_ne!(*child_span, 0);
    assert_eq!(child_trace, parent_trace);
}

#[test]
fn a_record_s_trace_is_the_one_its_line_shows() {
    let every = Arc::new(EveryCall::default());
    let sink = CaptureSink::new();
    let subscriber = tracing_subscriber::registry().with(
        JsonLayer::new("svc")
            .with_sink(sink.clone())
            .with_call_consumer(every.clone()),
    );
    let id: CorrelationId = "order-77".parse().unwrap();
    tracing::subscriber::with_default(subscriber, || correlation::scope(id, parent_call));
    let lines: Vec<serde_json::Value> = sink
        .take()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let seen = every.0.lock().unwrap().clone();
    assert_eq!(lines.len(), seen.len());
    for (line, (op, logged, span, parent, trace)) in lines.iter().zip(&seen) {
        assert!(*logged);
        assert_eq!(line["performance"]["operation"], op.as_str());
        assert_eq!(line["trace_id"], format!("{trace:032x}"));
        assert_eq!(line["span_id"], format!("{span:016x}"));
        assert_eq!(
            line["parent_span_id"].as_str().map(str::to_owned),
            parent.map(|p| format!("{p:016x}"))
        );
    }
}
