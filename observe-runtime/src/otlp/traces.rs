//! Spans: one per monitored call, sampled on the caller's thread, queued
//! as the call's short form (`call_line`) behind `S` and turned into an
//! OTLP `Span` on the worker.
//!
//! The caller pays for the sampling decision and, when sampled, for one
//! form of about 150 bytes copied into the queue (written once when the
//! call's log record goes out too); the worker reads the numbers by
//! position, looks the site's operation and code location up, and encodes
//! the protobuf. The first form, a JSON object carrying the operation,
//! module and file path, escaped both paths on every call and cost the
//! worker a JSON parse per span; the numbers made `overhead_otlp`'s
//! `observe/otlp/sync` row 10 to 15 % cheaper in interleaved rounds.
//!
//! The mapping: name = operation; kind `SERVER` for a call whose parent is
//! the inbound `traceparent`, else `INTERNAL`; start and end times; status
//! `ERROR` with the call's message for an error or a panic (unset
//! otherwise); attributes = the context fields, `error.type`,
//! `correlation_id`, `code.namespace`, `code.filepath`, `code.lineno`,
//! `observe.status`, and `observe.cancelled=true` for a cancelled call.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use prost::Message as _;

use super::call_line::{self, CallLine};
use super::config::Sampler;
use super::fill::{Attributes, Recycler, set_bytes, set_text};
use super::resource;
use super::transport::Encode;
use crate::base::Status as CallStatus;
use crate::record::{CallConsumer, CallRecord, SiteInfo};
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

impl CallConsumer for SpanConsumer {
    fn on_call(&self, call: &CallRecord<'_>) {
        let decision = self.decision;
        call_line::queue_traced(
            call,
            |trace| {
                let remote = (trace.parent_span != 0).then_some(trace.flags & 1 == 1);
                decision.sampled(trace.trace_id, remote)
            },
            |form| self.pipe.push_prefixed(b"S", form),
        );
    }

    /// Every call is a span, logged or not; but a sampler that keeps
    /// nothing should not make every call be recorded for nothing.
    fn wants_unlogged_calls(&self) -> bool {
        self.decision.may_sample()
    }
}

/// Whether a queued line is a span's; log records are queued behind their
/// time (a number) or, a call's, behind `L`.
pub(crate) fn is_span_line(line: &[u8]) -> bool {
    line.first() == Some(&b'S')
}

/// Builds one `ExportTraceServiceRequest` per window of lines, over the
/// spans of the last one.
pub(crate) struct SpanEncoder {
    request: ExportTraceServiceRequest,
    recycler: Recycler<Span>,
    /// The call sites numbered so far, as far as this encoder has met them.
    sites: Vec<SiteInfo>,
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
            sites: Vec::new(),
        }
    }
}

impl Encode for SpanEncoder {
    fn encode(&mut self, lines: &[&[u8]], fates: &mut [Fate], out: &mut Vec<u8>) {
        // Built with one resource and one scope in `new`.
        let spans = &mut self.request.resource_spans[0].scope_spans[0].spans;
        let sites = &mut self.sites;
        self.recycler.refill(spans, lines, fates, |span, line| {
            fill_span(span, line, sites)
        });
        // A `Vec` grows as needed: encoding into it cannot fail.
        let _ = self.request.encode(out);
    }
}

/// `n` queued span lines of two shapes, for tests of the encoder.
#[cfg(test)]
pub(crate) fn test_lines(n: usize) -> Vec<Vec<u8>> {
    tests::sample(n)
}

/// One queued line as a span; `None` if it is not one.
#[cfg(test)]
pub(crate) fn span(line: &[u8]) -> Option<Span> {
    let mut s = Span::default();
    fill_span(&mut s, line, &mut Vec::new()).then_some(s)
}

/// Writes the queued `line` over `span`, looking its site up in `sites`
/// (caught up when the line names one past its end); `false` (and `span`
/// only fit to be written over again) if the line is not a span's.
fn fill_span(span: &mut Span, line: &[u8], sites: &mut Vec<SiteInfo>) -> bool {
    let Some(call) = line
        .strip_prefix(b"S")
        .and_then(|form| CallLine::read(form, sites))
    else {
        return false;
    };
    set_bytes(&mut span.trace_id, &call.trace);
    set_bytes(&mut span.span_id, &call.span);
    set_text(&mut span.name, call.site.operation);
    let mut attrs = Attributes::over(&mut span.attributes);
    attrs.str("correlation_id", call.id);
    let Some(message) = call.read_tail(&mut attrs, "error.type", "") else {
        return false;
    };
    let meta = call.site.meta;
    if let Some(module) = meta.module_path() {
        attrs.str("code.namespace", module);
    }
    if let Some(file) = meta.file() {
        attrs.str("code.filepath", file);
    }
    if let Some(line) = meta.line() {
        attrs.value("code.lineno", Value::IntValue(i64::from(line)));
    }
    let status = call.status;
    attrs.str("observe.status", status.as_str());
    if status == CallStatus::Cancelled {
        attrs.value("observe.cancelled", Value::BoolValue(true));
    }
    attrs.finish();
    span.start_time_unix_nano = call.start;
    span.end_time_unix_nano = call.end();
    if matches!(status, CallStatus::Error | CallStatus::Panic) {
        let s = span.status.get_or_insert_with(Status::default);
        set_text(&mut s.message, message.as_deref().unwrap_or_default());
        s.code = StatusCode::Error as i32;
    } else {
        span.status = None;
    }
    let parent = (call.parent != 0).then_some(call.parent);
    let remote = call.remote && parent.is_some();
    span.flags = FLAG_SAMPLED;
    span.parent_span_id.clear();
    if let Some(p) = parent {
        span.parent_span_id.extend_from_slice(&p.to_be_bytes());
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
    true
}

#[cfg(test)]
mod tests {
    use tracing_core::Metadata;

    use super::*;
    use crate::otlp::call_line::TEST_MESSAGES as MESSAGES;
    use crate::record::SiteNumber;

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

    static META: Metadata<'static> = Metadata::new(
        "span test",
        "app::db",
        tracing_core::Level::INFO,
        Some("src/db.rs"),
        Some(42),
        Some("app::db"),
        tracing_core::field::FieldSet::new(&[], tracing_core::callsite::Identifier(&CALLSITE)),
        tracing_core::metadata::Kind::EVENT,
    );
    static CALLSITE: tracing_core::callsite::DefaultCallsite =
        tracing_core::callsite::DefaultCallsite::new(&META);
    static QUERY: SiteNumber = SiteNumber::new();
    static OP: SiteNumber = SiteNumber::new();

    /// The site `operation` at `META`.
    fn site(number: &'static SiteNumber, operation: &'static str) -> u32 {
        number.get(|| SiteInfo {
            operation,
            meta: &META,
            messages: &MESSAGES,
        })
    }

    /// A queued span line: `S{id} {fixed part}{tail}`, `flags` the
    /// status, remote and level digits, and no slow threshold.
    pub(super) fn line(
        id: &str,
        ids: &str,
        times: (u64, u64),
        site: u32,
        flags: &str,
        tail: &str,
    ) -> Vec<u8> {
        let (start, duration) = times;
        format!(
            "S{id} {ids}{start:016x}{duration:016x}{site:08x}{flags}{:016x}{tail}",
            0
        )
        .into_bytes()
    }

    /// `n` queued spans, failed ones with a tail and successes without.
    pub(super) fn sample(n: usize) -> Vec<Vec<u8>> {
        let query = site(&QUERY, "db.query");
        let tail = r#"{"m":"db.query failed: gone","x":"IoError","c":{"table":"users","rows":3}}"#;
        (0..n)
            .map(|i| match i % 2 {
                0 => line("req_1", IDS, (10, 15), query, "112", tail),
                _ => line("req_1", ROOT, (10, 15), query, "302", ""),
            })
            .collect()
    }

    const IDS: &str = concat!(
        "0af7651916cd43dd8448eb211c80319c",
        "b7ad6b7169203331",
        "00f067aa0ba902b7"
    );
    const ROOT: &str = concat!(
        "1af7651916cd43dd8448eb211c80319c",
        "c7ad6b7169203331",
        "0000000000000000"
    );

    fn attr(s: &Span, k: &str) -> Option<Value> {
        s.attributes
            .iter()
            .find(|kv| kv.key == k)
            .and_then(|kv| kv.value.clone()?.value)
    }

    #[test]
    fn a_queued_line_becomes_a_span() {
        let query = site(&QUERY, "db.query");
        let tail = r#"{"m":"db.query failed: gone","x":"IoError","c":{"table":"users","rows":3}}"#;
        let s = span(&line("req_1", IDS, (10, 15), query, "112", tail)).expect("a span");
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
        let text = |v: &str| Some(Value::StringValue(v.into()));
        assert_eq!(attr(&s, "table"), text("users"));
        assert_eq!(attr(&s, "rows"), Some(Value::IntValue(3)));
        assert_eq!(attr(&s, "error.type"), text("IoError"));
        assert_eq!(attr(&s, "correlation_id"), text("req_1"));
        assert_eq!(attr(&s, "code.namespace"), text("app::db"));
        assert_eq!(attr(&s, "code.filepath"), text("src/db.rs"));
        assert_eq!(attr(&s, "code.lineno"), Some(Value::IntValue(42)));
        assert_eq!(attr(&s, "observe.status"), text("error"));
        assert_eq!(attr(&s, "observe.cancelled"), None);
    }

    /// A failed `db.query` call with `err`, its context and IDs.
    fn failed_call(err: &dyn std::fmt::Display) -> CallRecord<'_> {
        CallRecord {
            meta: &META,
            operation: "db.query",
            site: &QUERY,
            messages: &MESSAGES,
            status: CallStatus::Error,
            message: crate::record::Message::Failed,
            duration_ns: 15,
            end_unix_nanos: 25,
            error: Some(crate::record::CallError {
                type_name: "Error",
                message: err,
            }),
            context: Some(r#""table":"users","rows":3"#),
            slow_threshold_ns: None,
            span: 0xb7ad_6b71_6920_3331,
            parent_span: 0x00f0_67aa_0ba9_02b7,
            logged: true,
            trace: std::cell::Cell::new(None),
        }
    }

    #[test]
    fn a_call_s_line_reads_back_as_its_span() {
        let err = std::io::Error::other("gone");
        let call = || failed_call(&err);
        let queued = |sampler| {
            let mut out = None;
            call_line::queue_traced(
                &call(),
                |t| Decision::new(sampler).sampled(t.trace_id, None),
                |form| out = Some(format!("S{form}")),
            );
            out
        };
        assert_eq!(queued(Sampler::AlwaysOff), None);
        let out = queued(Sampler::AlwaysOn).expect("a sampled span");
        let s = span(out.as_bytes()).unwrap_or_else(|| panic!("not a span: {out}"));
        assert_eq!(s.name, "db.query");
        assert_eq!((s.start_time_unix_nano, s.end_time_unix_nano), (10, 25));
        assert_eq!(s.span_id, 0xb7ad_6b71_6920_3331_u64.to_be_bytes());
        assert_eq!(s.parent_span_id, 0x00f0_67aa_0ba9_02b7_u64.to_be_bytes());
        assert_eq!(
            (s.kind, s.flags),
            (SpanKind::Internal as i32, FLAG_SAMPLED | FLAG_HAS_IS_REMOTE)
        );
        let status = s.status.as_ref().expect("a status");
        assert_eq!(status.message, "db.query failed: gone");
        let text = |v: &str| Some(Value::StringValue(v.into()));
        assert_eq!(attr(&s, "error.type"), text("Error"));
        assert_eq!(attr(&s, "table"), text("users"));
        assert_eq!(attr(&s, "rows"), Some(Value::IntValue(3)));
        assert_eq!(attr(&s, "code.lineno"), Some(Value::IntValue(42)));
        // The ID the call ran under (made for it: it had no scope) and the
        // trace both come from one look at it.
        let Some(Value::StringValue(id)) = attr(&s, "correlation_id") else {
            panic!("no correlation_id: {out}");
        };
        let id: crate::correlation::CorrelationId = id.parse().expect("an ID");
        assert_eq!(s.trace_id, id.trace_id().to_be_bytes());
    }

    /// A log record's form whose message was cut to the record's room is
    /// not the span's: the span writes its own, with the message whole to
    /// a context field's limit.
    #[test]
    fn a_span_keeps_the_message_its_log_record_had_cut() {
        let long = "x".repeat(600);
        let err = std::io::Error::other(long.clone());
        let call = failed_call(&err);
        assert!(!call_line::queue_logged(&call, 400, |f| panic!(
            "a form with its message cut was queued: {f}"
        )));
        let mut out = None;
        call_line::queue_traced(&call, |_| true, |form| out = Some(format!("S{form}")));
        let out = out.expect("a span");
        let s = span(out.as_bytes()).unwrap_or_else(|| panic!("not a span: {out}"));
        let status = s.status.expect("a status");
        assert_eq!(status.message, format!("db.query failed: {long}"));
    }

    #[test]
    fn roots_successes_and_cancellations() {
        let op = site(&OP, "op");
        let s = span(&line("x", ROOT, (10, 0), op, "302", "")).expect("a span");
        assert!(s.parent_span_id.is_empty());
        assert_eq!((s.kind, s.flags), (SpanKind::Internal as i32, FLAG_SAMPLED));
        assert!(s.status.is_none());
        assert_eq!(
            s.end_time_unix_nano, 10,
            "a call shorter than the clock's tick"
        );
        assert_eq!(attr(&s, "observe.cancelled"), Some(Value::BoolValue(true)));
        // A parent in this process is a local one.
        let local = span(&line("x", IDS, (10, 1), op, "002", "")).expect("a span");
        assert_eq!(local.kind, SpanKind::Internal as i32);
        assert_eq!(local.flags, FLAG_SAMPLED | FLAG_HAS_IS_REMOTE);
        // A remote flag without a parent names no remote parent.
        let orphan = span(&line("x", ROOT, (10, 1), op, "012", "")).expect("a span");
        assert_eq!(
            (orphan.kind, orphan.flags),
            (SpanKind::Internal as i32, FLAG_SAMPLED)
        );
    }

    #[test]
    fn a_span_written_over_keeps_nothing_of_the_last() {
        let (query, op) = (site(&QUERY, "db.query"), site(&OP, "op"));
        let mut enc = SpanEncoder::new(resource::build("svc", None, &[]));
        let tail = r#"{"m":"gone","x":"IoError","c":{"table":"users"}}"#;
        let full = line("req_1", IDS, (10, 15), query, "112", tail);
        let bare = line("r", ROOT, (1, 2), op, "002", "");
        let mut out = Vec::new();
        enc.encode(&[&full, &full], &mut [Fate::Sent; 2], &mut out);
        out.clear();
        let mut fates = [Fate::Sent; 2];
        enc.encode(&[b"S{}", &bare], &mut fates, &mut out);
        assert_eq!(fates, [Fate::Rejected, Fate::Sent]);
        let req = ExportTraceServiceRequest::decode(out.as_slice()).unwrap();
        let spans = &req.resource_spans[0].scope_spans[0].spans;
        assert_eq!(spans.len(), 1);
        assert_eq!(spans[0], span(&bare).unwrap());
        let keys: Vec<&str> = spans[0].attributes.iter().map(|kv| &*kv.key).collect();
        assert_eq!(
            keys,
            [
                "correlation_id",
                "code.namespace",
                "code.filepath",
                "code.lineno",
                "observe.status"
            ]
        );
        assert!(spans[0].parent_span_id.is_empty() && spans[0].status.is_none());
        assert_eq!(spans[0].kind, SpanKind::Internal as i32);
    }

    #[test]
    fn unreadable_lines_are_refused() {
        let op = site(&OP, "op");
        let good = line("x", ROOT, (1, 1), op, "002", "");
        assert!(span(&good).is_some());
        let zero_trace = format!("{}{}", "0".repeat(32), &ROOT[32..]);
        let zero_span = format!("{}{}{}", &ROOT[..32], "0".repeat(16), &ROOT[48..]);
        let mut not_utf8 = good.clone();
        not_utf8[1] = 0xff;
        // `Sx `, then the threshold after the status, remote and level
        // digits.
        let mut bad_threshold = good.clone();
        bad_threshold[3 + 107] = b'g';
        let bad = [
            Vec::new(),
            b"S".to_vec(),
            b"Sx".to_vec(),
            b"Sx ".to_vec(),
            good[..good.len() - 1].to_vec(),
            line("x", &zero_span, (1, 1), op, "002", ""),
            line("x", &zero_trace, (1, 1), op, "002", ""),
            line("x", &ROOT.replacen('c', "+", 1), (1, 1), op, "002", ""),
            line("x", ROOT, (1, 1), u32::MAX, "002", ""),
            line("x", ROOT, (1, 1), op, "402", ""),
            line("x", ROOT, (1, 1), op, "022", ""),
            line("x", ROOT, (1, 1), op, "005", ""),
            bad_threshold,
            line("x", ROOT, (1, 1), op, "002", "{"),
            line("x", ROOT, (1, 1), op, "002", "{}x"),
            line("x", ROOT, (1, 1), op, "002", r#"{"x":5}"#),
            line("x", &ROOT.to_uppercase(), (1, 1), op, "002", ""),
            not_utf8,
        ];
        for bad in bad {
            assert!(span(&bad).is_none(), "{}", String::from_utf8_lossy(&bad));
        }
    }
}
