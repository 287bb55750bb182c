//! A log record per line, with the line's trace and span IDs.

use std::time::Duration;

use observe::monitor_performance;
use observe::sink::CaptureSink;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::logs::v1::SeverityNumber;

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
