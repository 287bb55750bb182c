//! Spans: one per monitored call, sampled on the caller's thread, queued
//! as one short line and turned into an OTLP `Span` on the worker.
//!
//! The caller pays for the sampling decision and, when sampled, for one
//! line of a few hundred bytes written with the JSON helpers and copied
//! into the queue; parsing and protobuf encoding happen on the worker.
//!
//! The mapping: name = operation; kind `SERVER` for a call whose parent is
//! the inbound `traceparent`, else `INTERNAL`; start and end times; status
//! `ERROR` with the call's message for an error or a panic (unset
//! otherwise); attributes = the context fields, `error.type`,
//! `correlation_id`, `code.namespace`, `code.filepath`, `code.lineno`,
//! `observe.status`, and `observe.cancelled=true` for a cancelled call.

use std::cell::RefCell;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use prost::Message as _;

use serde::de::DeserializeSeed;

use super::config::Sampler;
use super::fill::{Attributes, Flatten, Recycler, Text, set_hex_id, set_text};
use super::resource::{self, hex_id};
use super::transport::Encode;
use crate::base::Status as CallStatus;
use crate::base::json;
use crate::record::{CallConsumer, CallRecord};
use crate::sink::worker::{Fate, Pipe};

/// `W3C trace flags`: sampled.
const FLAG_SAMPLED: u32 = 0x01;
/// `SpanFlags`: whether the parent is remote is known...
const FLAG_HAS_IS_REMOTE: u32 = 0x100;
/// ...and it is.
const FLAG_IS_REMOTE: u32 = 0x200;

/// The sampling decision, made cheap: a bound on the trace ID's low 56
/// bits, and whether an inbound parent's flag decides first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Decision {
    parent_based: bool,
    /// A trace is sampled when its ID's low 56 bits are below this.
    bound: u64,
}

/// 2^56: the trace IDs' random part, as the specification's
/// `TraceIdRatioBased` reads it.
const RANDOM_SPAN: u64 = 1 << 56;

impl Decision {
    pub(crate) fn new(sampler: Sampler) -> Self {
        let ratio = |r: f64| {
            // The ratio is clamped to [0, 1]: the product is in [0, 2^56].
            #[allow(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                clippy::cast_precision_loss
            )]
            let bound = (r.clamp(0.0, 1.0) * RANDOM_SPAN as f64).round() as u64;
            if r.is_nan() { 0 } else { bound }
        };
        let (parent_based, bound) = match sampler {
            Sampler::AlwaysOn => (false, RANDOM_SPAN),
            Sampler::AlwaysOff => (false, 0),
            Sampler::TraceIdRatio(r) => (false, ratio(r)),
            Sampler::ParentBasedAlwaysOn => (true, RANDOM_SPAN),
            Sampler::ParentBasedAlwaysOff => (true, 0),
            Sampler::ParentBasedTraceIdRatio(r) => (true, ratio(r)),
        };
        Self {
            parent_based,
            bound,
        }
    }

    /// Whether any call can become a span: an inbound parent's flag, or
    /// a ratio above zero.
    pub(crate) fn may_sample(self) -> bool {
        self.parent_based || self.bound > 0
    }

    /// Whether the call of trace `trace_id` becomes a span; `remote` is the
    /// inbound `traceparent`'s sampled flag, when the request had one.
    ///
    /// A local child needs no flag of its own: its root decided on the
    /// same trace ID, so both agree.
    #[inline]
    pub(crate) fn sampled(self, trace_id: u128, remote: Option<bool>) -> bool {
        match remote {
            Some(flag) if self.parent_based => flag,
            _ => (trace_id as u64) & (RANDOM_SPAN - 1) < self.bound,
        }
    }
}

/// Queues one line per sampled call for the traces worker.
#[derive(Debug)]
pub(crate) struct SpanConsumer {
    pipe: Pipe,
    decision: Decision,
}

impl SpanConsumer {
    pub(crate) fn new(pipe: Pipe, sampler: Sampler) -> Self {
        Self {
            pipe,
            decision: Decision::new(sampler),
        }
    }
}

thread_local! {
    /// Each thread's line buffer: a call costs no allocation once it has
    /// grown to the longest line.
    static LINE: RefCell<String> = const { RefCell::new(String::new()) };
}

impl CallConsumer for SpanConsumer {
    fn on_call(&self, call: &CallRecord<'_>) {
        let _ = LINE.try_with(|cell| match cell.try_borrow_mut() {
            Ok(mut line) => {
                line.clear();
                if write_line(&mut line, call, self.decision) {
                    self.pipe.push(&line);
                }
            }
            // A call finished inside another's formatting (an error's
            // `Display` running a monitored call): a buffer of its own.
            Err(_) => {
                let mut line = String::new();
                if write_line(&mut line, call, self.decision) {
                    self.pipe.push(&line);
                }
            }
        });
    }

    /// Every call is a span, logged or not; but a sampler that keeps
    /// nothing should not make every call be recorded for nothing.
    fn wants_unlogged_calls(&self) -> bool {
        self.decision.may_sample()
    }
}

/// Writes the queued form of `call`'s span into `out` if `decision`
/// samples it; `false` (and `out` to be discarded) if not.
///
/// The form is a JSON object with short keys: `i` correlation ID, `t`
/// trace ID, `s` span ID, `p` parent span ID, `r` the parent is remote,
/// `b` the start (Unix ns) and `d` the duration (ns), `st` status, `o` operation, `m`
/// message (errors and panics), `x` error type, `c` the context members,
/// `n` module, `f` file, `l` line.
pub(crate) fn write_line(out: &mut String, call: &CallRecord<'_>, decision: Decision) -> bool {
    // The correlation ID first: writing it yields its trace, as the JSON
    // line's writer gets it, so both name the same trace, even for a
    // call outside every scope.
    out.push_str("{\"i\":\"");
    let trace = call.write_correlation_id(out);
    let remote_parent = trace.parent_span != 0;
    let remote_sampled = remote_parent.then_some(trace.flags & 1 == 1);
    if !decision.sampled(trace.trace_id, remote_sampled) {
        return false;
    }
    out.push_str("\",\"t\":\"");
    json::write_hex32(out, trace.trace_id);
    out.push_str("\",\"s\":\"");
    json::write_hex16(out, call.span_id());
    out.push('"');
    let parent = match call.parent_span {
        0 => trace.parent_span,
        local => local,
    };
    if parent != 0 {
        out.push_str(",\"p\":\"");
        json::write_hex16(out, parent);
        out.push('"');
        if call.parent_span == 0 {
            out.push_str(",\"r\":1");
        }
    }
    out.push_str(",\"b\":");
    json::write_u64(out, call.start_unix_nanos());
    out.push_str(",\"d\":");
    json::write_u64(out, call.duration_nanos());
    out.push_str(",\"st\":\"");
    out.push_str(call.status().as_str());
    // Operation names are checked at compile time to need no escaping.
    out.push_str("\",\"o\":\"");
    out.push_str(call.operation());
    out.push('"');
    if matches!(call.status(), CallStatus::Error | CallStatus::Panic) {
        out.push_str(",\"m\":");
        // Bounded and masked like the line's own message.
        crate::log::write_context_value(out, call.message());
    }
    if let Some(e) = call.error() {
        out.push_str(",\"x\":");
        json::write_escaped(out, e.type_name());
    }
    let context = call.context_json();
    if !context.is_empty() {
        out.push_str(",\"c\":{");
        out.push_str(context);
        out.push('}');
    }
    let meta = call.metadata();
    if let Some(module) = meta.module_path() {
        out.push_str(",\"n\":");
        json::write_escaped(out, module);
    }
    if let Some(file) = meta.file() {
        out.push_str(",\"f\":");
        json::write_escaped(out, file);
    }
    if let Some(line) = meta.line() {
        out.push_str(",\"l\":");
        json::write_u64(out, u64::from(line));
    }
    out.push('}');
    true
}

/// Whether a queued line is a span's (a JSON object); log records are
/// queued behind their time, a number.
pub(crate) fn is_span_line(line: &[u8]) -> bool {
    line.first() == Some(&b'{')
}

/// Builds one `ExportTraceServiceRequest` per window of lines, over the
/// spans of the last one.
pub(crate) struct SpanEncoder {
    request: ExportTraceServiceRequest,
    recycler: Recycler<Span>,
}

impl SpanEncoder {
    pub(crate) fn new(resource: Resource) -> Self {
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(resource),
                scope_spans: vec![ScopeSpans {
                    scope: Some(resource::scope()),
                    ..ScopeSpans::default()
                }],
                ..ResourceSpans::default()
            }],
        };
        Self {
            request,
            recycler: Recycler::new(),
        }
    }
}

impl Encode for SpanEncoder {
    fn encode(&mut self, lines: &[&[u8]], fates: &mut [Fate], out: &mut Vec<u8>) {
        // Built with one resource and one scope in `new`.
        let spans = &mut self.request.resource_spans[0].scope_spans[0].spans;
        self.recycler.refill(spans, lines, fates, fill_span);
        // A `Vec` grows as needed: encoding into it cannot fail.
        let _ = self.request.encode(out);
    }
}

/// One queued line as a span; `None` if it is not one.
#[cfg(test)]
pub(crate) fn span(line: &[u8]) -> Option<Span> {
    let mut s = Span::default();
    fill_span(&mut s, line).then_some(s)
}

/// Writes the queued `line` over `span`; `false` (and `span` only fit to
/// be written over again) if the line is not a span's.
///
/// Read in one pass, member by member, straight into the span: no tree of
/// the line is built.
fn fill_span(span: &mut Span, line: &[u8]) -> bool {
    let mut de = serde_json::Deserializer::from_slice(line);
    SpanSeed(span).deserialize(&mut de).unwrap_or(false) && de.end().is_ok()
}

/// Reads a queued span line over the span it holds.
struct SpanSeed<'a>(&'a mut Span);

impl<'de> DeserializeSeed<'de> for SpanSeed<'_> {
    /// Whether the line had every member a span needs.
    type Value = bool;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for SpanSeed<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a queued span line")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        let span = self.0;
        // Only members written here ever hold anything: each is written
        // below or, if the line may lack it, emptied first.
        span.parent_span_id.clear();
        let mut attrs = Attributes::over(&mut span.attributes);
        let (mut trace, mut id, mut named, mut remote) = (false, false, false, false);
        let mut parent = None;
        let (mut start, mut duration) = (None, None);
        let (mut status, mut message) = (None::<Text<'de>>, None::<Text<'de>>);
        let text = |map: &mut A| map.next_value::<Text<'de>>();
        while let Some(key) = map.next_key::<Text<'de>>()? {
            match &*key {
                "t" => trace = set_hex_id::<16>(&mut span.trace_id, &text(&mut map)?),
                "s" => id = set_hex_id::<8>(&mut span.span_id, &text(&mut map)?),
                "p" => parent = hex_id::<8>(&text(&mut map)?),
                "r" => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                    remote = true;
                }
                "b" => start = Some(map.next_value::<u64>()?),
                "d" => duration = Some(map.next_value::<u64>()?),
                "st" => status = Some(text(&mut map)?),
                "o" => {
                    set_text(&mut span.name, &text(&mut map)?);
                    named = true;
                }
                "m" => message = Some(text(&mut map)?),
                "x" => attrs.str("error.type", &text(&mut map)?),
                "i" => attrs.str("correlation_id", &text(&mut map)?),
                "n" => attrs.str("code.namespace", &text(&mut map)?),
                "f" => attrs.str("code.filepath", &text(&mut map)?),
                "l" => attrs.value("code.lineno", Value::IntValue(map.next_value()?)),
                "c" => map.next_value_seed(Flatten {
                    prefix: "",
                    into: &mut attrs,
                })?,
                _ => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        let (Some(start), Some(duration), Some(status), true) =
            (start, duration, status, trace && id && named)
        else {
            return Ok(false);
        };
        attrs.str("observe.status", &status);
        if *status == *CallStatus::Cancelled.as_str() {
            attrs.value("observe.cancelled", Value::BoolValue(true));
        }
        attrs.finish();
        span.start_time_unix_nano = start;
        span.end_time_unix_nano = start.saturating_add(duration);
        if [CallStatus::Error, CallStatus::Panic]
            .map(CallStatus::as_str)
            .contains(&&*status)
        {
            let s = span.status.get_or_insert_with(Status::default);
            set_text(&mut s.message, message.as_deref().unwrap_or_default());
            s.code = StatusCode::Error as i32;
        } else {
            span.status = None;
        }
        let remote = remote && parent.is_some();
        span.flags = FLAG_SAMPLED;
        if let Some(p) = parent {
            span.parent_span_id.extend_from_slice(&p);
            span.flags |= FLAG_HAS_IS_REMOTE;
            if remote {
                span.flags |= FLAG_IS_REMOTE;
            }
        }
        span.kind = if remote {
            SpanKind::Server
        } else {
            SpanKind::Internal
        } as i32;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_bound_the_low_56_bits() {
        let on = Decision::new(Sampler::AlwaysOn);
        let off = Decision::new(Sampler::AlwaysOff);
        let half = Decision::new(Sampler::TraceIdRatio(0.5));
        for id in [0u128, 1, u128::MAX, (1 << 55) - 1, 1 << 55, 0xffu128 << 56] {
            assert!(on.sampled(id, Some(false)), "{id:x}");
            assert!(!off.sampled(id, Some(true)), "{id:x}");
        }
        assert!(half.sampled((1 << 55) - 1, None));
        assert!(!half.sampled(1 << 55, None));
        // The high bits play no part.
        assert!(half.sampled(u128::MAX << 56, None));
        assert!(!Decision::new(Sampler::TraceIdRatio(0.0)).sampled(0, None));
        assert!(Decision::new(Sampler::TraceIdRatio(1.0)).sampled(u128::MAX, None));
        assert!(!Decision::new(Sampler::TraceIdRatio(f64::NAN)).sampled(0, None));
        // About the ratio, over many random IDs.
        let quarter = Decision::new(Sampler::TraceIdRatio(0.25));
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        let kept = (0..10_000)
            .filter(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                quarter.sampled(u128::from(x), None)
            })
            .count();
        assert!((2_200..2_800).contains(&kept), "{kept}");
    }

    #[test]
    fn only_a_sampler_that_keeps_nothing_may_not_sample() {
        assert!(!Decision::new(Sampler::AlwaysOff).may_sample());
        assert!(!Decision::new(Sampler::TraceIdRatio(0.0)).may_sample());
        for s in [
            Sampler::AlwaysOn,
            Sampler::TraceIdRatio(1e-9),
            Sampler::ParentBasedAlwaysOff,
            Sampler::ParentBasedTraceIdRatio(0.0),
        ] {
            assert!(Decision::new(s).may_sample(), "{s:?}");
        }
    }

    #[test]
    fn parent_based_samplers_follow_the_inbound_flag() {
        let on = Decision::new(Sampler::ParentBasedAlwaysOn);
        let off = Decision::new(Sampler::ParentBasedAlwaysOff);
        let ratio = Decision::new(Sampler::ParentBasedTraceIdRatio(0.0));
        assert!(on.sampled(1, None) && !on.sampled(1, Some(false)));
        assert!(!off.sampled(1, None) && off.sampled(1, Some(true)));
        assert!(!ratio.sampled(1, None) && ratio.sampled(1, Some(true)));
    }

    #[test]
    fn a_queued_line_becomes_a_span() {
        let line = br#"{"t":"0af7651916cd43dd8448eb211c80319c","s":"b7ad6b7169203331","p":"00f067aa0ba902b7","r":1,"b":10,"d":15,"st":"error","o":"db.query","m":"db.query failed: gone","x":"IoError","c":{"table":"users","rows":3},"i":"req_1","n":"app::db","f":"src/db.rs","l":42}"#;
        let s = span(line).expect("a span");
        assert_eq!(s.name, "db.query");
        assert_eq!(s.trace_id.len(), 16);
        assert_eq!(s.span_id, [0xb7, 0xad, 0x6b, 0x71, 0x69, 0x20, 0x33, 0x31]);
        assert_eq!(
            s.parent_span_id,
            [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7]
        );
        assert_eq!(s.kind, SpanKind::Server as i32);
        assert_eq!(s.flags, FLAG_SAMPLED | FLAG_HAS_IS_REMOTE | FLAG_IS_REMOTE);
        assert_eq!((s.start_time_unix_nano, s.end_time_unix_nano), (10, 25));
        let status = s.status.as_ref().expect("a status");
        assert_eq!(status.code, StatusCode::Error as i32);
        assert_eq!(status.message, "db.query failed: gone");
        let attr = |k: &str| {
            s.attributes
                .iter()
                .find(|kv| kv.key == k)
                .and_then(|kv| kv.value.clone()?.value)
        };
        assert_eq!(attr("table"), Some(Value::StringValue("users".into())));
        assert_eq!(attr("rows"), Some(Value::IntValue(3)));
        assert_eq!(
            attr("error.type"),
            Some(Value::StringValue("IoError".into()))
        );
        assert_eq!(
            attr("correlation_id"),
            Some(Value::StringValue("req_1".into()))
        );
        assert_eq!(
            attr("code.namespace"),
            Some(Value::StringValue("app::db".into()))
        );
        assert_eq!(
            attr("code.filepath"),
            Some(Value::StringValue("src/db.rs".into()))
        );
        assert_eq!(attr("code.lineno"), Some(Value::IntValue(42)));
        assert_eq!(attr("observe.cancelled"), None);
    }

    #[test]
    fn roots_successes_and_cancellations() {
        let root = br#"{"t":"0af7651916cd43dd8448eb211c80319c","s":"b7ad6b7169203331","b":10,"d":0,"st":"cancelled","o":"op","i":"x"}"#;
        let s = span(root).expect("a span");
        assert!(s.parent_span_id.is_empty());
        assert_eq!((s.kind, s.flags), (SpanKind::Internal as i32, FLAG_SAMPLED));
        assert!(s.status.is_none());
        assert_eq!(
            s.end_time_unix_nano, 10,
            "a call shorter than the clock's tick"
        );
        assert!(s.attributes.iter().any(|kv| kv.key == "observe.cancelled"));
    }

    #[test]
    fn a_span_written_over_keeps_nothing_of_the_last() {
        let mut enc = SpanEncoder::new(resource::build("svc", None, &[]));
        let full = br#"{"t":"0af7651916cd43dd8448eb211c80319c","s":"b7ad6b7169203331","p":"00f067aa0ba902b7","r":1,"b":10,"d":15,"st":"error","o":"db.query","m":"gone","x":"IoError","c":{"table":"users"},"i":"req_1","n":"app::db","f":"src/db.rs","l":42}"#;
        let bare = br#"{"t":"1af7651916cd43dd8448eb211c80319c","s":"c7ad6b7169203331","b":1,"d":2,"st":"success","o":"op"}"#;
        let mut out = Vec::new();
        enc.encode(&[full, full], &mut [Fate::Sent; 2], &mut out);
        out.clear();
        let mut fates = [Fate::Sent; 2];
        enc.encode(&[b"{}", bare], &mut fates, &mut out);
        assert_eq!(fates, [Fate::Rejected, Fate::Sent]);
        let req = ExportTraceServiceRequest::decode(out.as_slice()).unwrap();
        let spans = &req.resource_spans[0].scope_spans[0].spans;
        assert_eq!(spans.len(), 1);
        assert_eq!(spans[0], span(bare).unwrap());
        let keys: Vec<&str> = spans[0].attributes.iter().map(|kv| &*kv.key).collect();
        assert_eq!(keys, ["observe.status"]);
        assert!(spans[0].parent_span_id.is_empty() && spans[0].status.is_none());
        assert_eq!(spans[0].kind, SpanKind::Internal as i32);
    }

    #[test]
    fn unreadable_lines_are_refused() {
        for bad in [
            &b""[..],
            b"[]",
            b"{}",
            br#"{"t":"00000000000000000000000000000000","s":"b7ad6b7169203331","b":1,"d":1,"st":"success","o":"op"}"#,
            br#"{"t":"0af7651916cd43dd8448eb211c80319c","s":"b7ad","b":1,"d":1,"st":"success","o":"op"}"#,
            br#"{"t":"0af7651916cd43dd8448eb211c80319c","s":"b7ad6b7169203331","b":-1,"d":1,"st":"success","o":"op"}"#,
        ] {
            assert!(span(bad).is_none(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
