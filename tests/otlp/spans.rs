//! A span per monitored call: names, IDs, parents, status and attributes
//! as a collector decodes them, and the same IDs as the JSON lines.

use std::time::Duration;

use observe::monitor_performance;
use observe::sink::{CaptureSink, Sink as _};
use observe_runtime::otlp::{Compression, Sampler};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;

use crate::receiver::Receiver;
use crate::{attr, config, dispatch, exporter, hex, lines};

#[derive(Debug)]
struct Refused;

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the ledger refused the entry")
    }
}

impl std::error::Error for Refused {}

#[monitor_performance("otlp.outer", context(order = order))]
fn outer(order: u64) -> Result<u64, Refused> {
    inner()?;
    Ok(order)
}

#[monitor_performance("otlp.inner")]
fn inner() -> Result<(), Refused> {
    Ok(())
}

#[monitor_performance("otlp.fails")]
fn fails() -> Result<(), Refused> {
    Err(Refused)
}

#[monitor_performance("otlp.panics")]
fn panics() {
    panic!("the disk caught fire");
}

fn by_name<'a>(spans: &'a [Span], name: &str) -> &'a Span {
    spans
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no span {name} in {spans:?}"))
}

#[test]
fn nested_calls_arrive_as_parent_and_child_with_the_lines_ids() {
    let r = Receiver::start();
    let exporter = exporter(&config(&r).logs(false));
    let capture = CaptureSink::new();
    tracing::dispatcher::with_default(&dispatch(&exporter, &capture), || {
        assert_eq!(outer(7).expect("ok"), 7);
    });
    assert!(r.wait(Duration::from_secs(10), |got| got.spans.len() == 2));
    r.with(|got| {
        let (o, i) = (
            by_name(&got.spans, "otlp.outer"),
            by_name(&got.spans, "otlp.inner"),
        );
        assert_eq!((o.trace_id.len(), o.span_id.len()), (16, 8));
        assert_eq!(o.trace_id, i.trace_id, "one trace");
        assert_ne!(o.span_id, i.span_id);
        assert!(o.parent_span_id.is_empty(), "the outer call is the root");
        assert_eq!(i.parent_span_id, o.span_id, "the inner call is its child");
        assert_eq!(o.kind, SpanKind::Internal as i32);
        assert!(o.start_time_unix_nano <= i.start_time_unix_nano);
        assert!(i.end_time_unix_nano <= o.end_time_unix_nano);
        assert!(
            o.status
                .as_ref()
                .is_none_or(|s| s.code == StatusCode::Unset as i32)
        );
        assert_eq!(attr(&o.attributes, "order"), Some(&Value::IntValue(7)));
        let Some(Value::StringValue(file)) = attr(&o.attributes, "code.filepath") else {
            panic!("no code.filepath in {:?}", o.attributes);
        };
        assert!(file.ends_with("spans.rs"), "{file}");
        assert!(attr(&o.attributes, "code.lineno").is_some());
        assert!(attr(&o.attributes, "code.namespace").is_some());
        // The JSON lines name the same trace and spans.
        let lines = lines(&capture);
        let line = |op: &str| {
            lines
                .iter()
                .find(|l| l["performance"]["operation"] == op)
                .unwrap_or_else(|| panic!("no line of {op}"))
        };
        for (span, op) in [(o, "otlp.outer"), (i, "otlp.inner")] {
            let l = line(op);
            assert_eq!(l["trace_id"], hex(&span.trace_id), "{l}");
            assert_eq!(l["span_id"], hex(&span.span_id), "{l}");
            assert_eq!(
                attr(&span.attributes, "correlation_id"),
                Some(&Value::StringValue(
                    l["correlation_id"].as_str().unwrap().to_owned()
                ))
            );
        }
        assert_eq!(line("otlp.inner")["parent_span_id"], hex(&o.span_id));
        // The resource names the service.
        let resource = &got.resources[0];
        assert_eq!(
            attr(&resource.attributes, "service.name"),
            Some(&Value::StringValue("otlp-test".into()))
        );
        assert_eq!(
            attr(&resource.attributes, "service.version"),
            Some(&Value::StringValue("1.2.3".into()))
        );
    });
    // The worker settles its counts after the collector's answer.
    assert!(crate::harness::wait_until(Duration::from_secs(10), || {
        exporter.stats().expect("traces on").sent == 2
    }));
    assert_eq!(exporter.stats().expect("traces on").dropped, 0);
}

#[test]
fn errors_and_panics_are_error_spans_with_their_message() {
    let r = Receiver::start();
    let exporter = exporter(&config(&r).logs(false));
    let capture = CaptureSink::new();
    tracing::dispatcher::with_default(&dispatch(&exporter, &capture), || {
        assert!(fails().is_err());
        assert!(std::panic::catch_unwind(panics).is_err());
    });
    assert!(r.wait(Duration::from_secs(10), |got| got.spans.len() == 2));
    r.with(|got| {
        let failed = by_name(&got.spans, "otlp.fails");
        let status = failed.status.as_ref().expect("a status");
        assert_eq!(status.code, StatusCode::Error as i32);
        assert_eq!(
            status.message,
            "otlp.fails failed: the ledger refused the entry"
        );
        assert_eq!(
            attr(&failed.attributes, "error.type"),
            Some(&Value::StringValue("Refused".into()))
        );
        let panicked = by_name(&got.spans, "otlp.panics");
        let status = panicked.status.as_ref().expect("a status");
        assert_eq!(status.code, StatusCode::Error as i32);
        assert_eq!(status.message, "otlp.panics panicked");
        assert_eq!(
            attr(&panicked.attributes, "observe.status"),
            Some(&Value::StringValue("panic".into()))
        );
    });
}

#[test]
fn gzip_bodies_arrive_whole() {
    let r = Receiver::start();
    let exporter = exporter(&config(&r).compression(Compression::Gzip));
    let capture = CaptureSink::new();
    tracing::dispatcher::with_default(&dispatch(&exporter, &capture), || {
        for order in 0..20 {
            outer(order).expect("ok");
        }
    });
    assert!(r.wait(Duration::from_secs(10), |got| got.spans.len() == 40
        && got.logs.len() == 40));
    r.with(|got| {
        assert!(got.requests.iter().all(|q| q.gzip), "{:?}", got.requests);
        assert!(
            got.requests
                .iter()
                .all(|q| q.content_type == "application/x-protobuf")
        );
    });
}

#[test]
fn the_sampler_keeps_whole_traces_or_none() {
    let r = Receiver::start();
    let exporter = exporter(&config(&r).logs(false).sampler(Sampler::AlwaysOff));
    let capture = CaptureSink::new();
    tracing::dispatcher::with_default(&dispatch(&exporter, &capture), || {
        outer(1).expect("ok");
    });
    assert!(exporter.flush(Duration::from_secs(5)));
    assert_eq!(exporter.stats().expect("on").sent, 0);
    assert_eq!(
        lines(&capture).len(),
        2,
        "the lines are written all the same"
    );
}

#[test]
fn headers_reach_the_collector() {
    let r = Receiver::start();
    let exporter = exporter(&config(&r).logs(false).header("x-api-key", "k-123"));
    let capture = CaptureSink::new();
    tracing::dispatcher::with_default(&dispatch(&exporter, &capture), || {
        inner().expect("ok");
    });
    assert!(r.wait(Duration::from_secs(10), |got| got.spans.len() == 1));
    r.with(|got| {
        let q = &got.requests[0];
        assert_eq!(q.path, "/v1/traces");
        assert!(
            q.headers
                .iter()
                .any(|(k, v)| k == "x-api-key" && v == "k-123"),
            "{:?}",
            q.headers
        );
        let accept: Vec<&str> = q
            .headers
            .iter()
            .filter(|(k, _)| k == "accept")
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(
            accept,
            ["application/x-protobuf"],
            "the answer is asked for in the request's encoding"
        );
    });
}

/// Runs `outer(3)` in the request of an inbound `traceparent`, then
/// `after` outside it, all exported to a fresh receiver.
fn under_traceparent(
    traceparent: &'static str,
    after: impl FnOnce(),
) -> (Receiver, observe_runtime::otlp::OtlpExporter) {
    let r = Receiver::start();
    let exporter = exporter(&config(&r).logs(false));
    let capture = CaptureSink::new();
    let mut headers = http::HeaderMap::new();
    headers.insert("traceparent", http::HeaderValue::from_static(traceparent));
    let id = observe::correlation::http::extract(&headers);
    tracing::dispatcher::with_default(&dispatch(&exporter, &capture), || {
        observe::correlation::scope(id, || outer(3).expect("ok"));
        after();
    });
    (r, exporter)
}

#[test]
fn a_call_under_an_inbound_traceparent_is_a_server_span_of_that_trace() {
    let (r, _exporter) = under_traceparent(
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        || {},
    );
    assert!(r.wait(Duration::from_secs(10), |got| got.spans.len() == 2));
    r.with(|got| {
        let (o, i) = (
            by_name(&got.spans, "otlp.outer"),
            by_name(&got.spans, "otlp.inner"),
        );
        assert_eq!(hex(&o.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(hex(&o.parent_span_id), "00f067aa0ba902b7");
        assert_eq!(o.kind, SpanKind::Server as i32);
        assert_eq!(o.flags & 0x300, 0x300, "the parent is remote");
        assert_eq!(i.parent_span_id, o.span_id);
        assert_eq!(
            (i.kind, i.flags & 0x300),
            (SpanKind::Internal as i32, 0x100)
        );
    });
}

#[test]
fn an_unsampled_inbound_parent_turns_its_trace_off() {
    let (r, exporter) = under_traceparent(
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
        || {
            inner().expect("ok");
        },
    );
    assert!(exporter.flush(Duration::from_secs(10)));
    r.with(|got| {
        assert_eq!(got.spans.len(), 1, "only the call outside the request");
        assert_ne!(
            hex(&got.spans[0].trace_id),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
    });
}
