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
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs, SeverityNumber};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message as _;

use super::resource::{self, flatten_into, hex_id};
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

/// Whether a queued line is a log record's (its time first); spans are
/// JSON objects.
pub(crate) fn is_record_line(line: &[u8]) -> bool {
    line.first().is_some_and(u8::is_ascii_digit)
}

/// Builds one `ExportLogsServiceRequest` per window of lines.
pub(crate) struct LogEncoder {
    resource: Resource,
}

impl LogEncoder {
    pub(crate) fn new(resource: Resource) -> Self {
        Self { resource }
    }
}

impl Encode for LogEncoder {
    fn encode(&mut self, lines: &[&[u8]], fates: &mut [Fate], out: &mut Vec<u8>) {
        let mut records = Vec::with_capacity(lines.len());
        for (line, fate) in lines.iter().zip(fates.iter_mut()) {
            match record(line) {
                Some(r) => records.push(r),
                None => *fate = Fate::Rejected,
            }
        }
        let request = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(self.resource.clone()),
                scope_logs: vec![ScopeLogs {
                    scope: Some(resource::scope()),
                    log_records: records,
                    ..ScopeLogs::default()
                }],
                ..ResourceLogs::default()
            }],
        };
        request.encode(out).unwrap_or_default();
    }
}

/// One queued entry (`{nanos} {line}`) as a log record; `None` if it is
/// not one.
///
/// The line is read in one pass, member by member, into the record: no
/// tree of the whole line is built (that was most of the worker's time).
pub(crate) fn record(entry: &[u8]) -> Option<LogRecord> {
    let at = memchr::memchr(b' ', entry)?;
    let nanos: u64 = std::str::from_utf8(&entry[..at]).ok()?.parse().ok()?;
    let mut de = serde_json::Deserializer::from_slice(&entry[at + 1..]);
    let LineRecord(mut r) = serde::Deserialize::deserialize(&mut de).ok()?;
    de.end().ok()?;
    r.time_unix_nano = nanos;
    r.observed_time_unix_nano = nanos;
    Some(r)
}

/// A JSON line read straight into a [`LogRecord`].
struct LineRecord(LogRecord);

impl<'de> serde::Deserialize<'de> for LineRecord {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(LineVisitor)
    }
}

struct LineVisitor;

impl<'de> serde::de::Visitor<'de> for LineVisitor {
    type Value = LineRecord;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON log line")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<LineRecord, A::Error> {
        use std::borrow::Cow;
        let mut r = LogRecord::default();
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            match &*key {
                "timestamp" | "service" => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
                "level" => {
                    let level = map.next_value::<Cow<'de, str>>()?;
                    r.severity_number = severity(&level) as i32;
                    r.severity_text = level.into_owned();
                }
                "message" => {
                    r.body = Some(resource::from_json(map.next_value()?));
                }
                "trace_id" | "span_id" => {
                    let value = map.next_value::<serde_json::Value>()?;
                    let id = match (&*key, value.as_str()) {
                        ("trace_id", Some(hex)) => hex_id::<16>(hex).map(|id| id.to_vec()),
                        (_, Some(hex)) => hex_id::<8>(hex).map(|id| id.to_vec()),
                        _ => None,
                    };
                    match (id, &*key) {
                        (Some(id), "trace_id") => r.trace_id = id,
                        (Some(id), _) => r.span_id = id,
                        (None, _) => r.attributes.push(attribute(key.into_owned(), value)),
                    }
                }
                "context" => flatten_into(&mut r.attributes, "context.", map.next_value()?),
                "performance" => {
                    flatten_into(&mut r.attributes, "performance.", map.next_value()?);
                }
                _ => {
                    let value = map.next_value()?;
                    r.attributes.push(attribute(key.into_owned(), value));
                }
            }
        }
        Ok(LineRecord(r))
    }
}

fn attribute(key: String, value: serde_json::Value) -> KeyValue {
    KeyValue {
        key,
        value: Some(resource::from_json(value)),
        ..KeyValue::default()
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
