//! Log records: every JSON line the layer writes, queued as it is (behind
//! its time) and turned into an OTLP `LogRecord` on the worker.
//!
//! The mapping: `time_unix_nano` and `observed_time_unix_nano` are the
//! line's time; `severity_number` and `severity_text` come from `level`;
//! the body is `message`; `trace_id` and `span_id` are the line's own
//! (hex to bytes); `context` and `performance` are flattened into
//! `context.<key>` and `performance.<key>` attributes, and every other
//! field but `timestamp` and `service` (the resource says it) is an
//! attribute of its own name.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs, SeverityNumber};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message as _;
use serde::de::DeserializeSeed;

use super::fill::{Attributes, Flatten, Recycler, Scalar, Text, set_hex_id, set_text};
use super::resource;
use super::transport::Encode;
use crate::sink::JsonLine;
use crate::sink::worker::{Fate, Pipe};

/// Queues `line` behind its time in Unix nanoseconds and a space, so the
/// worker needs no clock and no timestamp parser.
pub(crate) fn push(pipe: &Pipe, line: JsonLine<'_>) {
    let mut buf = [0u8; 21];
    let mut digits = itoa::Buffer::new();
    let nanos = digits.format(line.unix_nanos()).as_bytes();
    buf[..nanos.len()].copy_from_slice(nanos);
    buf[nanos.len()] = b' ';
    pipe.push_prefixed(&buf[..=nanos.len()], line.as_str());
}

/// Whether a queued line is a log record's (its time first); spans start
/// with `S`.
pub(crate) fn is_record_line(line: &[u8]) -> bool {
    line.first().is_some_and(u8::is_ascii_digit)
}

/// Builds one `ExportLogsServiceRequest` per window of lines, over the
/// records of the last one.
pub(crate) struct LogEncoder {
    request: ExportLogsServiceRequest,
    recycler: Recycler<LogRecord>,
}

impl LogEncoder {
    pub(crate) fn new(resource: Resource) -> Self {
        let request = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(resource),
                scope_logs: vec![ScopeLogs {
                    scope: Some(resource::scope()),
                    ..ScopeLogs::default()
                }],
                ..ResourceLogs::default()
            }],
        };
        Self {
            request,
            recycler: Recycler::new(),
        }
    }
}

impl Encode for LogEncoder {
    fn encode(&mut self, lines: &[&[u8]], fates: &mut [Fate], out: &mut Vec<u8>) {
        // Built with one resource and one scope in `new`.
        let records = &mut self.request.resource_logs[0].scope_logs[0].log_records;
        self.recycler.refill(records, lines, fates, fill_record);
        // A `Vec` grows as needed: encoding into it cannot fail.
        let _ = self.request.encode(out);
    }
}

/// One queued entry (`{nanos} {line}`) as a log record; `None` if it is
/// not one.
#[cfg(test)]
pub(crate) fn record(entry: &[u8]) -> Option<LogRecord> {
    let mut r = LogRecord::default();
    fill_record(&mut r, entry).then_some(r)
}

/// Writes the queued `entry` over `record`; `false` (and `record` only fit
/// to be written over again) if it is not a log record's.
///
/// The line is read in one pass, member by member, into the record: no
/// tree of the whole line is built (that was most of the worker's time).
fn fill_record(record: &mut LogRecord, entry: &[u8]) -> bool {
    let Some(at) = memchr::memchr(b' ', entry) else {
        return false;
    };
    let Some(nanos) = std::str::from_utf8(&entry[..at])
        .ok()
        .and_then(|n| n.parse::<u64>().ok())
    else {
        return false;
    };
    let mut de = serde_json::Deserializer::from_slice(&entry[at + 1..]);
    if LineSeed(record).deserialize(&mut de).is_err() || de.end().is_err() {
        return false;
    }
    record.time_unix_nano = nanos;
    record.observed_time_unix_nano = nanos;
    true
}

/// Reads a JSON line over the record it holds.
struct LineSeed<'a>(&'a mut LogRecord);

impl<'de> DeserializeSeed<'de> for LineSeed<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for LineSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON log line")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let r = self.0;
        // Only members written here ever hold anything: each one a line may
        // lack is emptied first (the body at the end).
        r.severity_number = 0;
        r.severity_text.clear();
        r.trace_id.clear();
        r.span_id.clear();
        let mut attrs = Attributes::over(&mut r.attributes);
        let mut has_body = false;
        while let Some(key) = map.next_key::<Text<'de>>()? {
            match &*key {
                "timestamp" | "service" => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
                "level" => {
                    let level = map.next_value::<Text<'de>>()?;
                    r.severity_number = severity(&level) as i32;
                    set_text(&mut r.severity_text, &level);
                }
                "message" => {
                    map.next_value::<Scalar<'de>>()?.set(&mut r.body);
                    has_body = true;
                }
                "trace_id" | "span_id" => {
                    let value = map.next_value::<Scalar<'de>>()?;
                    let hex = value.as_str().unwrap_or_default();
                    let id = if &*key == "trace_id" {
                        set_hex_id::<16>(&mut r.trace_id, hex)
                    } else {
                        set_hex_id::<8>(&mut r.span_id, hex)
                    };
                    if !id {
                        value.set(attrs.slot("", &key));
                    }
                }
                "context" => map.next_value_seed(Flatten {
                    prefix: "context.",
                    into: &mut attrs,
                })?,
                "performance" => map.next_value_seed(Flatten {
                    prefix: "performance.",
                    into: &mut attrs,
                })?,
                _ => map.next_value::<Scalar<'de>>()?.set(attrs.slot("", &key)),
            }
        }
        attrs.finish();
        if !has_body {
            r.body = None;
        }
        Ok(())
    }
}

fn severity(level: &str) -> SeverityNumber {
    match level {
        "TRACE" => SeverityNumber::Trace,
        "DEBUG" => SeverityNumber::Debug,
        "INFO" => SeverityNumber::Info,
        "WARN" => SeverityNumber::Warn,
        "ERROR" => SeverityNumber::Error,
        _ => SeverityNumber::Unspecified,
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::common::v1::any_value::Value;

    use super::*;

    fn attr<'a>(r: &'a LogRecord, key: &str) -> Option<&'a Value> {
        r.attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.as_ref()?.value.as_ref())
    }

    #[test]
    fn a_line_becomes_a_record() {
        let line = br#"7 {"timestamp":"x","level":"WARN","service":"svc","message":"slow","correlation_id":"req_1","trace_id":"0af7651916cd43dd8448eb211c80319c","span_id":"b7ad6b7169203331","parent_span_id":"00f067aa0ba902b7","context":{"entity":"s1","n":2},"performance":{"operation":"op","duration_ms":1.5}}"#;
        let r = record(line).expect("a record");
        assert_eq!((r.time_unix_nano, r.observed_time_unix_nano), (7, 7));
        assert_eq!(r.severity_number, SeverityNumber::Warn as i32);
        assert_eq!(r.severity_text, "WARN");
        assert_eq!(
            r.body.clone().and_then(|b| b.value),
            Some(Value::StringValue("slow".into()))
        );
        assert_eq!(
            r.trace_id,
            [
                0x0a, 0xf7, 0x65, 0x19, 0x16, 0xcd, 0x43, 0xdd, 0x84, 0x48, 0xeb, 0x21, 0x1c, 0x80,
                0x31, 0x9c
            ]
        );
        assert_eq!(r.span_id, [0xb7, 0xad, 0x6b, 0x71, 0x69, 0x20, 0x33, 0x31]);
        assert_eq!(
            attr(&r, "correlation_id"),
            Some(&Value::StringValue("req_1".into()))
        );
        assert_eq!(
            attr(&r, "context.entity"),
            Some(&Value::StringValue("s1".into()))
        );
        assert_eq!(attr(&r, "context.n"), Some(&Value::IntValue(2)));
        assert_eq!(
            attr(&r, "performance.duration_ms"),
            Some(&Value::DoubleValue(1.5))
        );
        assert!(attr(&r, "parent_span_id").is_some());
        assert!(attr(&r, "service").is_none() && attr(&r, "timestamp").is_none());
    }

    #[test]
    fn unreadable_entries_are_refused_and_bad_ids_kept_as_attributes() {
        for bad in [&b""[..], b"{}", b"x {}", b"1 not json", b"1 [1]", b"-1 {}"] {
            assert!(record(bad).is_none(), "{:?}", String::from_utf8_lossy(bad));
        }
        let r = record(br#"1 {"trace_id":"nope","span_id":"0000000000000000"}"#).unwrap();
        assert!(r.trace_id.is_empty() && r.span_id.is_empty());
        assert!(attr(&r, "trace_id").is_some() && attr(&r, "span_id").is_some());
    }

    #[test]
    fn a_record_written_over_keeps_nothing_of_the_last() {
        let mut enc = LogEncoder::new(resource::build("svc", None, &[]));
        let full: &[u8] = br#"7 {"level":"WARN","message":"slow","trace_id":"0af7651916cd43dd8448eb211c80319c","span_id":"b7ad6b7169203331","context":{"entity":"s1"},"performance":{"operation":"op"}}"#;
        let mut out = Vec::new();
        enc.encode(&[full, full], &mut [Fate::Sent; 2], &mut out);
        out.clear();
        let bare: &[u8] = br#"9 {"trace_id":"nope"}"#;
        enc.encode(&[bare], &mut [Fate::Sent], &mut out);
        let req = ExportLogsServiceRequest::decode(out.as_slice()).unwrap();
        let records = &req.resource_logs[0].scope_logs[0].log_records;
        assert_eq!(records.len(), 1);
        assert_eq!(records[0], record(bare).unwrap());
        let r = &records[0];
        assert!(r.body.is_none() && r.severity_text.is_empty() && r.severity_number == 0);
        assert!(r.trace_id.is_empty() && r.span_id.is_empty());
        assert_eq!(r.attributes.len(), 1);
        assert_eq!(r.time_unix_nano, 9);
    }

    #[test]
    fn a_window_is_one_request_without_the_unreadable_lines() {
        let mut enc = LogEncoder::new(resource::build("svc", None, &[]));
        let lines: [&[u8]; 3] = [br#"1 {"message":"a"}"#, b"garbage", br#"2 {"message":"b"}"#];
        let mut fates = [Fate::Sent; 3];
        let mut out = Vec::new();
        enc.encode(&lines, &mut fates, &mut out);
        assert_eq!(fates, [Fate::Sent, Fate::Rejected, Fate::Sent]);
        let req = ExportLogsServiceRequest::decode(out.as_slice()).unwrap();
        let scope = &req.resource_logs[0].scope_logs[0];
        assert_eq!(scope.scope.as_ref().unwrap().name, "observe");
        assert_eq!(scope.log_records.len(), 2);
    }
}
