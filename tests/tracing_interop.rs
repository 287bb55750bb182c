//! Interop with `tracing`: with `set_tracing_spans(true)`, monitored calls
//! are `tracing` spans, so tracing-opentelemetry exports them inside the
//! application's own `#[instrument]` spans, parent links and all; off, it
//! sees none of them.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};

use observe::log::JsonLayer;
use observe::monitor_performance;
use observe::sink::CaptureSink;
use opentelemetry::trace::{SpanId, TraceId, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tracing_subscriber::layer::SubscriberExt as _;

/// The switch is process-wide: tests that set it take turns.
static SWITCH: Mutex<()> = Mutex::new(());

/// Pending once, then ready: makes a call span more than one poll.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

/// Polls `f` to completion on this thread. (futures' `block_on` refuses to
/// run inside itself, which the simple span processor does as a span ends
/// within a poll.)
fn run<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = Context::from_waker(std::task::Waker::noop());
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

#[monitor_performance("interop.sync_leaf")]
fn sync_leaf(x: u64) -> u64 {
    x + 1
}

#[monitor_performance("interop.sync_parent")]
fn sync_parent(x: u64) -> u64 {
    sync_leaf(x) * 2
}

#[monitor_performance("interop.async_leaf")]
async fn async_leaf(x: u64) -> u64 {
    YieldOnce(false).await;
    x * 3
}

#[monitor_performance("interop.async_parent")]
async fn async_parent(x: u64) -> u64 {
    YieldOnce(false).await;
    let y = async_leaf(x).await;
    YieldOnce(false).await;
    y + 1
}

#[monitor_performance("interop.panics")]
fn panics() -> u64 {
    panic!("on purpose")
}

#[tracing::instrument]
fn outer() -> u64 {
    let a = sync_parent(1);
    let b = run(async_parent(2));
    a + b
}

#[tracing::instrument]
fn outer_with_failures() -> u64 {
    let caught = std::panic::catch_unwind(panics);
    assert!(caught.is_err());
    // Polled once, then dropped mid-call.
    let mut cancelled = Box::pin(async_leaf(5));
    let mut cx = Context::from_waker(std::task::Waker::noop());
    assert!(cancelled.as_mut().poll(&mut cx).is_pending());
    drop(cancelled);
    sync_leaf(7)
}

/// Runs `f` with tracing spans `on` or off, under a subscriber with
/// tracing-opentelemetry (simple processor, in-memory exporter) beside
/// observe's JSON layer; the finished spans by name.
fn exported(on: bool, f: impl FnOnce()) -> HashMap<String, SpanData> {
    let _turn = SWITCH
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")))
        .with(JsonLayer::new("interop").with_sink(CaptureSink::new()));
    observe::set_tracing_spans(on);
    tracing::subscriber::with_default(subscriber, f);
    observe::set_tracing_spans(false);
    provider.force_flush().expect("flush");
    let spans = exporter.get_finished_spans().expect("spans");
    let mut by_name = HashMap::new();
    for span in spans {
        let name = span.name.to_string();
        assert!(
            by_name.insert(name.clone(), span).is_none(),
            "one span named {name}"
        );
    }
    by_name
}

fn attribute(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.to_string())
}

fn span_id(spans: &HashMap<String, SpanData>, name: &str) -> SpanId {
    spans[name].span_context.span_id()
}

#[test]
fn monitored_calls_are_spans_inside_the_application_spans() {
    let spans = exported(true, || assert_eq!(outer(), 4 + 7));
    let mut names: Vec<&str> = spans.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "interop.async_leaf",
            "interop.async_parent",
            "interop.sync_leaf",
            "interop.sync_parent",
            "outer",
        ]
    );
    for (child, parent) in [
        ("interop.sync_parent", "outer"),
        ("interop.sync_leaf", "interop.sync_parent"),
        ("interop.async_parent", "outer"),
        ("interop.async_leaf", "interop.async_parent"),
    ] {
        assert_eq!(
            spans[child].parent_span_id,
            span_id(&spans, parent),
            "{child} is a child of {parent}"
        );
    }
    assert_eq!(spans["outer"].parent_span_id, SpanId::INVALID);
    let trace = spans["outer"].span_context.trace_id();
    assert_ne!(trace, TraceId::INVALID);
    for (name, span) in &spans {
        assert_eq!(span.span_context.trace_id(), trace, "{name} in one trace");
    }

    for name in names.iter().filter(|n| n.starts_with("interop.")) {
        let span = &spans[*name];
        assert_eq!(attribute(span, "operation").as_deref(), Some(*name));
        assert!(
            attribute(span, "correlation_id").is_some_and(|id| !id.is_empty()),
            "{name} carries its correlation ID"
        );
    }
    // A nested call shares its parent's request.
    assert_eq!(
        attribute(&spans["interop.sync_leaf"], "correlation_id"),
        attribute(&spans["interop.sync_parent"], "correlation_id")
    );
    assert_eq!(
        attribute(&spans["interop.async_leaf"], "correlation_id"),
        attribute(&spans["interop.async_parent"], "correlation_id")
    );
    // A call starts inside its parent and ends before it.
    for (child, parent) in [
        ("interop.sync_leaf", "interop.sync_parent"),
        ("interop.async_leaf", "interop.async_parent"),
    ] {
        assert!(spans[child].start_time >= spans[parent].start_time);
        assert!(spans[child].end_time <= spans[parent].end_time);
    }
}

#[test]
fn a_panicking_or_dropped_call_closes_its_span() {
    let spans = exported(true, || assert_eq!(outer_with_failures(), 8));
    let outer = span_id(&spans, "outer_with_failures");
    for name in ["interop.panics", "interop.async_leaf", "interop.sync_leaf"] {
        assert_eq!(
            spans[name].parent_span_id, outer,
            "{name} is a child of the application's span"
        );
    }
}

#[test]
fn off_no_span_is_opened_for_monitored_calls() {
    let spans = exported(false, || assert_eq!(outer(), 4 + 7));
    let names: Vec<&str> = spans.keys().map(String::as_str).collect();
    assert_eq!(names, ["outer"]);
}
