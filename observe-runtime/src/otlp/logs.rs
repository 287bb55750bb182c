//! Log records: every line the layer writes, turned into an OTLP
//! `LogRecord` on the worker. A monitored call's line is queued in the
//! call's short form (`call_line`) behind `L` when the exporter is the
//! layer's only sink: the caller formats no JSON, and its span reuses the
//! form. Every other line is queued as its JSON text, behind its time.
//!
//! The mapping (the same record either way, as
//! `a_call_s_form_becomes_the_record_of_its_json_line` checks):
//! `time_unix_nano` and `observed_time_unix_nano` are the line's time;
//! `severity_number` and `severity_text` come from `level`; the body is
//! `message`; `trace_id` and `span_id` are the line's own (hex to bytes);
//! `context` and `performance` are flattened into `context.<key>` and
//! `performance.<key>` attributes, and every other field but `timestamp`
//! and `service` (the resource says it) is an attribute of its own name.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs, SeverityNumber};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message as _;
use serde::de::DeserializeSeed;

use opentelemetry_proto::tonic::common::v1::any_value::Value;

use super::call_line::{self, CallLine};
use super::fill::{
    Attributes, Flatten, Recycler, Scalar, Text, set_bytes, set_hex_id, set_str, set_text,
};
use super::resource;
use super::transport::Encode;
use crate::operation::Message;
use crate::record::{CallRecord, SiteInfo};
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

/// Queues a monitored call's line as the call's form behind `L`, if its
/// JSON line would hold all of it: `false` (nothing queued) if the form
/// is longer than `room` bytes or its message had to be cut, so the JSON
/// line is written, and cut as any over-long line is.
pub(crate) fn push_call(pipe: &Pipe, call: &CallRecord<'_>, room: usize) -> bool {
    call_line::queue_logged(call, room, |form| pipe.push_prefixed(b"L", form))
}

/// Whether a queued line is a log record's: a JSON line behind its time,
/// or a call's form behind `L`; spans start with `S`.
pub(crate) fn is_record_line(line: &[u8]) -> bool {
    line.first()
        .is_some_and(|b| b.is_ascii_digit() || *b == b'L')
}

/// Builds one `ExportLogsServiceRequest` per window of lines, over the
/// records of the last one.
pub(crate) struct LogEncoder {
    request: ExportLogsServiceRequest,
    recycler: Recycler<LogRecord>,
    /// The call sites numbered so far, as far as this encoder has met them.
    sites: Vec<SiteInfo>,
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
            sites: Vec::new(),
        }
    }
}

impl Encode for LogEncoder {
    fn encode(&mut self, lines: &[&[u8]], fates: &mut [Fate], out: &mut Vec<u8>) {
        // Built with one resource and one scope in `new`.
        let records = &mut self.request.resource_logs[0].scope_logs[0].log_records;
        let sites = &mut self.sites;
        self.recycler
            .refill(records, lines, fates, |r, line| fill_record(r, line, sites));
        // A `Vec` grows as needed: encoding into it cannot fail.
        let _ = self.request.encode(out);
    }
}

/// One queued entry (`{nanos} {line}`) as a log record; `None` if it is
/// not one.
#[cfg(test)]
pub(crate) fn record(entry: &[u8]) -> Option<LogRecord> {
    let mut r = LogRecord::default();
    fill_record(&mut r, entry, &mut Vec::new()).then_some(r)
}

/// Writes the queued `entry` over `record`, looking a call's site up in
/// `sites`; `false` (and `record` only fit to be written over again) if
/// it is not a log record's.
///
/// A JSON line is read in one pass, member by member, into the record: no
/// tree of the whole line is built (that was most of the worker's time).
fn fill_record(record: &mut LogRecord, entry: &[u8], sites: &mut Vec<SiteInfo>) -> bool {
    if let Some(form) = entry.strip_prefix(b"L") {
        return fill_call(record, form, sites);
    }
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

/// Writes a call's form over `r`: the record its JSON line would have
/// made, member for member and in the same order.
fn fill_call(r: &mut LogRecord, form: &[u8], sites: &mut Vec<SiteInfo>) -> bool {
    let Some(call) = CallLine::read(form, sites) else {
        return false;
    };
    let end = call.end();
    r.time_unix_nano = end;
    r.observed_time_unix_nano = end;
    let level = call.level.as_str();
    r.severity_number = severity(level) as i32;
    set_text(&mut r.severity_text, level);
    set_bytes(&mut r.trace_id, &call.trace);
    set_bytes(&mut r.span_id, &call.span);
    let mut attrs = Attributes::over(&mut r.attributes);
    attrs.str("correlation_id", call.id);
    if call.parent != 0 {
        attrs.str("parent_span_id", call.parent_hex);
    }
    let Some(message) = call.read_tail(&mut attrs, "context.error_type", "context.") else {
        return false;
    };
    let site = call.site;
    attrs.str("performance.operation", site.operation);
    attrs.str("performance.status", call.status.as_str());
    attrs.value(
        "performance.duration_ms",
        Value::DoubleValue(millis(call.duration)),
    );
    if call.threshold != 0 {
        attrs.value(
            "performance.threshold_ms",
            Value::DoubleValue(millis(call.threshold)),
        );
    }
    attrs.finish();
    match (
        message,
        Message::for_outcome(call.status, call.threshold != 0),
    ) {
        (Some(m), _) => set_str(&mut r.body, &m),
        (None, Some(f)) => set_str(&mut r.body, f.in_messages(site.messages).text),
        // A failed call's message is always in its tail.
        (None, None) => return false,
    }
    true
}

/// Nanoseconds as milliseconds, as a JSON line's `duration_ms` reads back
/// (its six decimals are exact).
#[allow(clippy::cast_precision_loss)]
fn millis(nanos: u64) -> f64 {
    nanos as f64 / 1e6
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

    mod calls {
        use std::sync::Arc;

        use tracing_core::Metadata;
        use tracing_core::callsite::DefaultCallsite;

        use super::*;
        use crate::base::Status;
        use crate::correlation::{self, CorrelationId};
        use crate::log::DEFAULT_MAX_LINE_BYTES;
        use crate::log::{CALL_FRAME_BYTES, LineWriter};
        use crate::otlp::call_line::TEST_MESSAGES as MESSAGES;
        use crate::record::{CallError, SiteNumber};
        use crate::sink::CaptureSink;

        macro_rules! meta {
            ($meta:ident, $callsite:ident, $level:ident) => {
                static $meta: Metadata<'static> = tracing_core::metadata!(
                    name: "calls test",
                    target: "app::db",
                    level: tracing_core::Level::$level,
                    fields: &[],
                    callsite: &$callsite,
                    kind: tracing_core::metadata::Kind::EVENT,
                );
                static $callsite: DefaultCallsite = DefaultCallsite::new(&$meta);
            };
        }
        meta!(INFO, INFO_SITE, INFO);
        meta!(WARN, WARN_SITE, WARN);
        meta!(ERROR, ERROR_SITE, ERROR);
        meta!(DEBUG, DEBUG_SITE, DEBUG);
        static SITE: SiteNumber = SiteNumber::new();

        /// A finished `db.query` call of `status`, on `meta`'s level.
        fn call<'a>(
            meta: &'static Metadata<'static>,
            status: Status,
            error: Option<CallError<'a>>,
            context: Option<&'a str>,
        ) -> CallRecord<'a> {
            let slow = status == Status::Success && meta == &WARN;
            let message = match Message::for_outcome(status, slow) {
                None => crate::record::Message::Failed,
                Some(m) => {
                    let m = m.in_messages(&MESSAGES);
                    crate::record::Message::Fixed {
                        text: m.text,
                        quoted: m.quoted,
                    }
                }
            };
            CallRecord {
                meta,
                operation: "db.query",
                site: &SITE,
                messages: &MESSAGES,
                status,
                message,
                duration_ns: 412_345,
                end_unix_nanos: 1_764_465_729_123_456_789,
                error,
                context,
                slow_threshold_ns: (status == Status::Success && meta == &WARN).then_some(250_000),
                span: 0xb7ad_6b71_6920_3331,
                parent_span: 0x00f0_67aa_0ba9_02b7,
                logged: true,
                trace: std::cell::Cell::new(None),
            }
        }

        /// The record of `call`'s JSON line, and its JSON line.
        fn from_json_line(call: &CallRecord<'_>) -> (LogRecord, String) {
            let capture = CaptureSink::new();
            let writer = LineWriter::new("svc", Arc::new(capture.clone()), DEFAULT_MAX_LINE_BYTES);
            writer.write_call(call);
            let line = capture.take().pop().expect("a JSON line");
            let entry = format!("{} {line}", call.end_unix_nanos());
            (record(entry.as_bytes()).expect("a record"), line)
        }

        /// `call`'s queued form, if it fits in `room`.
        fn form(call: &CallRecord<'_>, room: usize) -> Option<String> {
            let mut form = None;
            call_line::queue_logged(call, room, |f| form = Some(format!("L{f}"))).then_some(())?;
            form
        }

        #[test]
        fn a_call_s_form_becomes_the_record_of_its_json_line() {
            let err = std::io::Error::other("disk \"full\" password=hunter2");
            let failure = || {
                Some(CallError {
                    type_name: "IoError",
                    message: &err,
                })
            };
            let context = Some(r#""table":"users","rows":3,"ok":true,"ratio":0.5"#);
            let calls = [
                ("success", call(&INFO, Status::Success, None, None)),
                (
                    "success with context",
                    call(&INFO, Status::Success, None, context),
                ),
                ("slow", call(&WARN, Status::Success, None, None)),
                ("error", call(&ERROR, Status::Error, failure(), context)),
                ("panic", call(&ERROR, Status::Panic, None, None)),
                ("cancelled", call(&WARN, Status::Cancelled, None, context)),
                (
                    "a root at DEBUG, over 10 ms",
                    CallRecord {
                        parent_span: 0,
                        duration_ns: 12_345_678_901,
                        ..call(&DEBUG, Status::Success, None, None)
                    },
                ),
            ];
            correlation::scope(CorrelationId::generate(), || {
                for (what, call) in &calls {
                    let (expected, line) = from_json_line(call);
                    let form = form(call, 4096).expect("a form");
                    let r = record(form.as_bytes()).expect("a record");
                    assert_eq!(r, expected, "{what}:\n{line}\n{form}");
                }
            });
            // Each record carries what its line said.
            let (error, line) =
                correlation::scope(CorrelationId::generate(), || from_json_line(&calls[3].1));
            assert!(!line.contains("hunter2"), "{line}");
            assert_eq!(error.severity_text, "ERROR");
            assert!(
                error
                    .attributes
                    .iter()
                    .any(|kv| kv.key == "context.error_type"),
                "{error:?}"
            );
        }

        #[test]
        fn a_form_its_json_line_could_not_hold_is_refused() {
            let long = format!(r#""blob":"{}""#, "x".repeat(3000));
            let call = call(&INFO, Status::Success, None, Some(&long));
            correlation::scope(CorrelationId::generate(), || {
                assert!(form(&call, 2000).is_none());
                assert!(form(&call, 4000).is_some());
                // A message cut to the room is refused too.
                let err = std::io::Error::other("e".repeat(3000));
                let failed = CallRecord {
                    error: Some(CallError {
                        type_name: "Error",
                        message: &err,
                    }),
                    ..call_with(&ERROR, Status::Error)
                };
                assert!(form(&failed, 2000).is_none());
                assert!(form(&failed, 8000).is_some());
            });
        }

        fn call_with(meta: &'static Metadata<'static>, status: Status) -> CallRecord<'static> {
            call(meta, status, None, None)
        }

        /// The writer's frame bound holds: for the longest of every fixed
        /// member, a call's JSON line less the call's own text is within
        /// `CALL_FRAME_BYTES` (with the level's part and twice the
        /// operation), and a form exactly as long as its room has a JSON
        /// line that is not cut.
        #[test]
        fn the_frame_bound_holds_for_the_longest_members() {
            let max = 1024;
            let capture = CaptureSink::new();
            let writer = LineWriter::new("svc", Arc::new(capture.clone()), max);
            let err = std::io::Error::other("e");
            let middle = "\",\"level\":\"WARN\",\"service\":\"svc\",\"message\":";
            let frame = CALL_FRAME_BYTES + middle.len() + 2 * "db.query".len();
            correlation::scope(CorrelationId::generate(), || {
                // A cancelled status, the largest durations, a parent, an
                // error type.
                let base = CallRecord {
                    duration_ns: u64::MAX / 2,
                    slow_threshold_ns: Some(u64::MAX),
                    error: Some(CallError {
                        type_name: "Error",
                        message: &err,
                    }),
                    ..call_with(&WARN, Status::Cancelled)
                };
                writer.write_call(&base);
                let line = capture.take().pop().expect("a JSON line");
                let id = correlation::current().map(|id| id.to_string());
                let own = id.map_or(0, |id| id.len()) + r#""Error""#.len();
                let used = line.len() - own;
                assert!(used <= frame, "{used} > {frame}: {line}");
                // Not a loose bound: the fixed members are most of it.
                assert!(used + 120 > frame, "{used} far below {frame}: {line}");

                let room = max - frame;
                let bare = form(&base, room).expect("a form").len() - 1;
                let pad = room - bare - r#","c":{"k":""}"#.len();
                let context = format!(r#""k":"{}""#, "x".repeat(pad));
                let full = CallRecord {
                    context: Some(&context),
                    ..base
                };
                let at_room = form(&full, room).expect("a form as long as its room");
                assert_eq!(at_room.len() - 1, room);
                assert!(form(&full, room - 1).is_none());
                writer.write_call(&full);
                let line = capture.take().pop().expect("a JSON line");
                assert!(line.len() <= max, "{} bytes: {line}", line.len());
                assert!(!line.contains("truncated"), "{line}");
            });
        }

        /// The exporter takes a call as its form, queued as one line; with
        /// log records off it takes it and queues nothing; a call whose
        /// form does not fit is left to its JSON line.
        #[test]
        fn the_exporter_queues_a_call_as_its_form() {
            use crate::log::sink::{INTERNAL, Sink as _};
            use crate::otlp::{OtlpConfig, OtlpExporter};

            // Nothing listens there: the lines stay queued.
            let config = OtlpConfig::new("http://127.0.0.1:9")
                .traces(false)
                .metrics(false);
            let queued = |e: &OtlpExporter| e.stats().map_or(0, |s| s.queued);
            let call = call_with(&INFO, Status::Success);
            correlation::scope(CorrelationId::generate(), || {
                let exporter = OtlpExporter::start("svc", None, &config).expect("starts");
                assert!(exporter.write_call(&call, 4096, INTERNAL));
                assert_eq!(queued(&exporter), 1);
                assert!(!exporter.write_call(&call, 10, INTERNAL));
                assert_eq!(queued(&exporter), 1);
                let quiet =
                    OtlpExporter::start("svc", None, &config.clone().logs(false)).expect("starts");
                assert!(quiet.write_call(&call, 4096, INTERNAL));
                assert!(quiet.stats().is_none());
            });
        }

        /// A call that started while nothing could log has no span ID: no
        /// form for it (its JSON line says it has no span), and no span.
        #[test]
        fn a_call_without_a_span_id_has_no_form() {
            let call = CallRecord {
                span: 0,
                parent_span: 0,
                ..call_with(&INFO, Status::Success)
            };
            correlation::scope(CorrelationId::generate(), || {
                assert!(form(&call, 4096).is_none());
                let mut spans = 0;
                call_line::queue_traced(&call, |_| true, |_| spans += 1);
                assert_eq!(spans, 0);
                let (r, line) = from_json_line(&call);
                assert!(r.span_id.is_empty(), "{line}");
            });
        }
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
