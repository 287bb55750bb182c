//! A log record per line, with the line's trace and span IDs.

use std::time::Duration;

use observe::log::JsonLayer;
use observe::monitor_performance;
use observe::sink::CaptureSink;
use observe_runtime::otlp::{OtlpConfig, OtlpExporter};
use opentelemetry_proto::tonic::common::v1::AnyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::logs::v1::{LogRecord, SeverityNumber};
use tracing_subscriber::layer::SubscriberExt as _;

use crate::receiver::Receiver;
use crate::{attr, config, dispatch, exporter, hex, lines};

#[monitor_performance("otlp.logs.work", context(entity = "sensor.kitchen"))]
fn work() -> Result<(), std::io::Error> {
    tracing::warn!(attempt = 2, "retrying the write");
    Ok(())
}

#[test]
fn records_carry_the_lines_trace_and_span_ids() {
    let r = Receiver::start();
    let exporter = exporter(&config(&r).traces(false));
    let capture = CaptureSink::new();
    tracing::dispatcher::with_default(&dispatch(&exporter, &capture), || {
        work().expect("ok");
        tracing::info!("outside every call");
    });
    assert!(r.wait(Duration::from_secs(10), |got| got.logs.len() == 3));
    let lines = lines(&capture);
    assert_eq!(lines.len(), 3);
    r.with(|got| {
        for (record, line) in got.logs.iter().zip(&lines) {
            let Some(Value::StringValue(body)) =
                record.body.as_ref().and_then(|b| b.value.as_ref())
            else {
                panic!("no body: {record:?}");
            };
            assert_eq!(body, line["message"].as_str().unwrap());
            assert_eq!(
                hex(&record.trace_id),
                line["trace_id"].as_str().unwrap(),
                "{line}"
            );
            match line.get("span_id") {
                Some(id) => assert_eq!(hex(&record.span_id), id.as_str().unwrap(), "{line}"),
                None => assert!(record.span_id.is_empty(), "{line}"),
            }
            assert!(record.time_unix_nano > 0);
            assert_eq!(record.time_unix_nano, record.observed_time_unix_nano);
            assert_eq!(
                attr(&record.attributes, "correlation_id"),
                Some(&Value::StringValue(
                    line["correlation_id"].as_str().unwrap().to_owned()
                ))
            );
        }
        let warn = &got.logs[0];
        assert_eq!(warn.severity_number, SeverityNumber::Warn as i32);
        assert_eq!(warn.severity_text, "WARN");
        assert_eq!(
            attr(&warn.attributes, "context.attempt"),
            Some(&Value::IntValue(2))
        );
        let call = &got.logs[1];
        assert_eq!(call.severity_number, SeverityNumber::Info as i32);
        assert_eq!(
            attr(&call.attributes, "context.entity"),
            Some(&Value::StringValue("sensor.kitchen".into()))
        );
        assert_eq!(
            attr(&call.attributes, "performance.operation"),
            Some(&Value::StringValue("otlp.logs.work".into()))
        );
        assert_eq!(warn.span_id, call.span_id, "the event is inside the call");
    });
}

#[monitor_performance("otlp.logs.fail", context(entity = "sensor.kitchen", attempt = 3))]
fn fail() -> Result<(), std::io::Error> {
    Err(std::io::Error::other("disk \"full\""))
}

/// What a record says apart from its times and IDs (which differ from
/// run to run): severity, body and every attribute but the IDs and the
/// duration, in order.
type Said = (
    i32,
    String,
    Option<AnyValue>,
    Vec<(String, Option<AnyValue>)>,
);

fn said(r: &LogRecord) -> Said {
    let attrs = r
        .attributes
        .iter()
        .filter(|kv| {
            !matches!(
                kv.key.as_str(),
                "correlation_id" | "parent_span_id" | "performance.duration_ms"
            )
        })
        .map(|kv| (kv.key.clone(), kv.value.clone()))
        .collect();
    (
        r.severity_number,
        r.severity_text.clone(),
        r.body.clone(),
        attrs,
    )
}

/// With the exporter as the only sink a call's line is never formatted
/// as JSON: its record comes from the call's short form, which its span
/// is made from too. It must say what the JSON line's record says.
#[test]
fn a_call_s_record_is_the_same_without_its_json_line() {
    let run = |alone: bool| {
        let r = Receiver::start();
        let exporter = exporter(&config(&r));
        let dispatch = if alone {
            alone_dispatch(&exporter)
        } else {
            dispatch(&exporter, &CaptureSink::new())
        };
        tracing::dispatcher::with_default(&dispatch, || {
            work().expect("ok");
            fail().expect_err("fails");
        });
        assert!(r.wait(Duration::from_secs(10), |got| got.logs.len() == 3
            && got.spans.len() == 2));
        r.with(|got| (got.logs.clone(), got.spans.clone()))
    };
    let (json_logs, _) = run(false);
    let (form_logs, spans) = run(true);
    let json: Vec<_> = json_logs.iter().map(said).collect();
    let form: Vec<_> = form_logs.iter().map(said).collect();
    assert_eq!(form, json);
    assert_eq!(form_logs[2].severity_text, "ERROR");
    assert_eq!(
        attr(&form_logs[2].attributes, "context.error_type"),
        Some(&Value::StringValue("Error".into()))
    );
    // Each call's record and span name the same span, trace and ID.
    for (record, span) in form_logs[1..].iter().zip(&spans) {
        assert_eq!(
            (&record.trace_id, &record.span_id),
            (&span.trace_id, &span.span_id)
        );
        assert_eq!(
            attr(&record.attributes, "correlation_id"),
            attr(&span.attributes, "correlation_id")
        );
        assert_eq!(record.time_unix_nano, span.end_time_unix_nano);
    }

    // And the exporter alone took the call as its form, not as a JSON
    // line: with no collector to send to, a failed call leaves one line
    // in its queue, and it is much shorter than the one queued beside a
    // capture sink, which is the call's JSON line behind its time.
    let queued_by = |alone: bool| {
        let config = OtlpConfig::new("http://127.0.0.1:9")
            .traces(false)
            .metrics(false);
        let exporter = exporter(&config);
        let capture = CaptureSink::new();
        let dispatch = if alone {
            alone_dispatch(&exporter)
        } else {
            dispatch(&exporter, &capture)
        };
        tracing::dispatcher::with_default(&dispatch, || {
            fail().expect_err("fails");
        });
        let stats = exporter.stats().expect("log records are on");
        let line = capture.take().pop().map_or(0, |l| l.len());
        (stats.queued, stats.queued_bytes, line)
    };
    let (lines, json_bytes, json_line) = queued_by(false);
    assert_eq!(lines, 1);
    // `{19-digit time} {line}\n`.
    assert_eq!(json_bytes, json_line as u64 + 21);
    let (lines, form_bytes, _) = queued_by(true);
    assert_eq!(lines, 1);
    assert!(
        form_bytes + 100 < json_bytes,
        "{form_bytes} bytes queued alone, {json_bytes} beside a capture"
    );
}

/// A dispatch whose only sink is `exporter`, which also makes its spans.
fn alone_dispatch(exporter: &OtlpExporter) -> tracing::Dispatch {
    let mut layer = JsonLayer::new("otlp-test").with_sink(exporter.clone());
    if let Some(spans) = exporter.call_consumer() {
        layer = layer.with_call_consumer(spans);
    }
    tracing::Dispatch::new(tracing_subscriber::registry().with(layer))
}
