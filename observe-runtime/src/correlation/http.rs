//! Correlation across services over HTTP: `X-Correlation-ID` and W3C
//! `traceparent`.
//!
//! Inbound, a valid `X-Correlation-ID` wins, else the `traceparent`
//! trace-id, else a new ID. Inbound values are untrusted: anything but
//! 1..=128 characters of `[A-Za-z0-9._:-]` is discarded, counted in
//! `correlation_ids_rejected_total{header}`, and never logged. Outbound, both
//! headers are written: the ID, and a `traceparent` with a fresh span id per
//! call in the request's trace: the inbound `traceparent`'s trace-id and
//! flags when the request came with one (also when its `X-Correlation-ID`
//! won), else a trace-id derived from the ID, sampled.

use http::header::{HeaderMap, HeaderName, HeaderValue};

use super::id::{TraceContext, lower_hex};
use super::{CorrelationId, current};
use crate::base::names;

/// The default correlation header, `x-correlation-id`.
pub const X_CORRELATION_ID: HeaderName = HeaderName::from_static("x-correlation-id");
/// The W3C trace context header, `traceparent`.
pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// Reads and writes correlation headers; the correlation header's name is
/// configurable.
///
/// ```
/// use http::HeaderMap;
/// use observe_runtime::correlation::http::Propagator;
///
/// let mut inbound = HeaderMap::new();
/// inbound.insert("x-correlation-id", "abc-123".parse().unwrap());
/// let id = Propagator::default().extract(&inbound);
/// assert_eq!(id.to_string(), "abc-123");
///
/// let mut outbound = HeaderMap::new();
/// Propagator::default().inject_id(&id, &mut outbound);
/// assert_eq!(outbound["x-correlation-id"], "abc-123");
/// assert!(outbound.contains_key("traceparent"));
/// ```
#[derive(Debug, Clone)]
pub struct Propagator {
    header: HeaderName,
}

impl Default for Propagator {
    fn default() -> Self {
        Self {
            header: X_CORRELATION_ID,
        }
    }
}

/// Where an inbound ID came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Source {
    /// The correlation header.
    Header,
    /// The `traceparent` trace-id.
    TraceParent,
    /// Neither was usable: the ID is new.
    Generated,
}

impl Propagator {
    /// A propagator using `header` instead of `x-correlation-id`.
    #[must_use]
    pub fn new(header: HeaderName) -> Self {
        Self { header }
    }

    /// The correlation header's name.
    #[must_use]
    pub fn header(&self) -> &HeaderName {
        &self.header
    }

    /// The request's correlation ID: see the module docs for the order.
    #[must_use]
    pub fn extract(&self, headers: &HeaderMap) -> CorrelationId {
        self.extract_with_source(headers).0
    }

    /// The request's correlation ID and where it came from.
    #[must_use]
    pub fn extract_with_source(&self, headers: &HeaderMap) -> (CorrelationId, Source) {
        let mut rejections: [Option<(HeaderName, &'static str)>; 2] = [None, None];
        let mut found = None;
        if let Some(value) = headers.get(&self.header) {
            match value.to_str().ok().map(str::parse::<CorrelationId>) {
                Some(Ok(id)) => found = Some((id, Source::Header)),
                Some(Err(_)) => {
                    rejections[0] = Some((
                        self.header.clone(),
                        "not 1..=128 characters of [A-Za-z0-9._:-]",
                    ))
                }
                None => rejections[0] = Some((self.header.clone(), "not visible ASCII")),
            }
        }
        if let Some(value) = headers.get(&TRACEPARENT) {
            let parsed = value.to_str().ok().and_then(TraceParent::parse);
            found = match (found, parsed) {
                // The header's ID names the request; its trace goes on
                // with it, so outbound calls stay in the caller's trace.
                (Some((id, source)), Some(tp)) => Some((id.with_trace(tp.context()), source)),
                (None, Some(tp)) => Some((tp.correlation_id(), Source::TraceParent)),
                (None, None) => {
                    rejections[1] = Some((TRACEPARENT, "not a valid W3C traceparent"));
                    None
                }
                // Unused, so not reported.
                (found @ Some(_), None) => found,
            };
        }
        let (id, source) = found.unwrap_or_else(|| (CorrelationId::generate(), Source::Generated));
        // Reported under the ID the request ends up with, so the line joins
        // the request's other lines.
        for (header, reason) in rejections.into_iter().flatten() {
            super::scope(id.clone(), || rejected(&header, reason));
        }
        (id, source)
    }

    /// Writes the current correlation ID (a new one outside every scope)
    /// and a `traceparent` into outgoing headers, replacing any there.
    pub fn inject(&self, headers: &mut HeaderMap) {
        let id = current().unwrap_or_else(CorrelationId::generate);
        self.inject_id(&id, headers);
    }

    /// Writes `id` and a matching `traceparent` into outgoing headers: the
    /// trace the ID's request arrived in (its trace-id and flags), else one
    /// derived from the ID, sampled.
    pub fn inject_id(&self, id: &CorrelationId, headers: &mut HeaderMap) {
        // Every form of ID is visible ASCII, so this cannot fail.
        if let Ok(v) = HeaderValue::from_str(&id.to_string()) {
            headers.insert(self.header.clone(), v);
        }
        let flags = id.trace_context().map_or(1, |t| t.flags);
        // The next service's first call is a child of the call making this
        // request; outside every monitored call, of a span of its own.
        let parent_id = match super::span::current() {
            0 => super::span::fresh(),
            span => span,
        };
        let tp = TraceParent {
            trace_id: id.trace_id(),
            parent_id,
            flags,
        };
        if let Ok(v) = HeaderValue::from_str(&tp.to_string()) {
            headers.insert(TRACEPARENT, v);
        }
    }
}

/// [`Propagator::extract`] with the default header.
#[must_use]
pub fn extract(headers: &HeaderMap) -> CorrelationId {
    Propagator::default().extract(headers)
}

/// [`Propagator::inject`] with the default header.
pub fn inject(headers: &mut HeaderMap) {
    Propagator::default().inject(headers);
}

fn rejected(header: &HeaderName, reason: &'static str) {
    metrics::counter!(names::CORRELATION_IDS_REJECTED_TOTAL, "header" => header.as_str().to_owned()).increment(1);
    // The value itself is never logged: it is untrusted input.
    tracing::debug!(
        header = header.as_str(),
        reason,
        "inbound correlation id rejected"
    );
}

/// A parsed W3C `traceparent` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    /// The 128-bit trace-id (never zero).
    pub trace_id: u128,
    /// The 64-bit parent (span) id (never zero).
    pub parent_id: u64,
    /// The trace flags (bit 0: sampled).
    pub flags: u8,
}

impl TraceParent {
    /// Parses `version-traceid-parentid-flags`; `None` for anything the W3C
    /// Trace Context spec does not accept. Never panics.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim_matches(|c| c == ' ' || c == '\t');
        let b = s.as_bytes();
        // Byte slicing below needs ASCII; the spec allows nothing else.
        if b.len() < 55 || !s.is_ascii() {
            return None;
        }
        let version = lower_hex(&s[0..2])?;
        // Version ff is forbidden; version 00 has exactly four fields, later
        // versions may append fields after a `-`.
        if version == 0xff || (version == 0 && b.len() != 55) || (b.len() > 55 && b[55] != b'-') {
            return None;
        }
        if b[2] != b'-' || b[35] != b'-' || b[52] != b'-' {
            return None;
        }
        let trace_id = lower_hex(&s[3..35])?;
        let parent_id = u64::try_from(lower_hex(&s[36..52])?).ok()?;
        let flags = u8::try_from(lower_hex(&s[53..55])?).ok()?;
        (trace_id != 0 && parent_id != 0).then_some(Self {
            trace_id,
            parent_id,
            flags,
        })
    }

    /// The trace-id as a correlation ID: its 32 lowercase hex digits. The
    /// ID keeps the trace's flags for outbound calls.
    #[must_use]
    pub fn correlation_id(&self) -> CorrelationId {
        CorrelationId::in_trace(self.context())
    }

    fn context(&self) -> TraceContext {
        TraceContext {
            trace_id: self.trace_id,
            parent_span: self.parent_id,
            flags: self.flags,
        }
    }
}

impl std::fmt::Display for TraceParent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "00-{:032x}-{:016x}-{:02x}",
            self.trace_id, self.parent_id, self.flags
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_spec_example() {
        let tp = TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
            .expect("valid");
        assert_eq!(tp.trace_id, 0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736);
        assert_eq!(tp.parent_id, 0x00f0_67aa_0ba9_02b7);
        assert_eq!(tp.flags, 1);
        assert_eq!(
            tp.to_string(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        );
        assert_eq!(
            tp.correlation_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
    }

    #[test]
    fn rejects_invalid_traceparents() {
        for bad in [
            "",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",
            "0é-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad}");
        }
        assert!(
            TraceParent::parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future")
                .is_some()
        );
    }

    #[test]
    fn header_wins_then_traceparent_then_new() {
        let p = Propagator::default();
        let mut h = HeaderMap::new();
        h.insert(
            TRACEPARENT,
            HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        );
        assert_eq!(p.extract_with_source(&h).1, Source::TraceParent);
        h.insert(X_CORRELATION_ID, HeaderValue::from_static("abc-123"));
        let (id, source) = p.extract_with_source(&h);
        assert_eq!(
            (id.to_string().as_str(), source),
            ("abc-123", Source::Header)
        );
        h.insert(X_CORRELATION_ID, HeaderValue::from_static("has\"quote"));
        assert_eq!(p.extract_with_source(&h).1, Source::TraceParent);
        assert_eq!(
            p.extract_with_source(&HeaderMap::new()).1,
            Source::Generated
        );
    }

    #[test]
    fn outbound_traceparent_keeps_the_trace_and_changes_the_span() {
        let id: CorrelationId = "abc-123".parse().expect("valid");
        let (mut a, mut b) = (HeaderMap::new(), HeaderMap::new());
        Propagator::default().inject_id(&id, &mut a);
        Propagator::default().inject_id(&id, &mut b);
        let ta = TraceParent::parse(a[TRACEPARENT].to_str().expect("ascii")).expect("valid");
        let tb = TraceParent::parse(b[TRACEPARENT].to_str().expect("ascii")).expect("valid");
        assert_eq!(ta.trace_id, tb.trace_id);
        assert_ne!(ta.parent_id, tb.parent_id);
        // A trace-id ID round-trips as itself.
        let from_trace = ta.correlation_id();
        let mut c = HeaderMap::new();
        Propagator::default().inject_id(&from_trace, &mut c);
        let tc = TraceParent::parse(c[TRACEPARENT].to_str().expect("ascii")).expect("valid");
        assert_eq!(tc.trace_id, ta.trace_id);
    }

    /// The `traceparent` one hop sends on, for a request with `inbound`.
    fn next_hop(inbound: &[(HeaderName, &'static str)]) -> (CorrelationId, TraceParent) {
        let mut h = HeaderMap::new();
        for (name, value) in inbound {
            h.insert(name, HeaderValue::from_static(value));
        }
        let id = extract(&h);
        // Carried through the request's scope, as a handler's calls see it.
        let out = crate::correlation::scope(id.clone(), || {
            let mut out = HeaderMap::new();
            inject(&mut out);
            out
        });
        let tp = TraceParent::parse(out[TRACEPARENT].to_str().expect("ascii")).expect("valid");
        (id, tp)
    }

    #[test]
    fn outbound_traceparent_continues_the_inbound_trace_and_its_flags() {
        const INBOUND: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
        let inbound = TraceParent::parse(INBOUND).expect("valid");
        // Both headers: the ID is the header's, the trace is the caller's.
        let (id, tp) = next_hop(&[(X_CORRELATION_ID, "abc-123"), (TRACEPARENT, INBOUND)]);
        assert_eq!(id, "abc-123".parse().expect("valid"));
        assert_eq!((tp.trace_id, tp.flags), (inbound.trace_id, 0));
        assert_ne!(tp.parent_id, inbound.parent_id);
        // Only the trace: its flags go on too ("not sampled" stays so).
        let (id, tp) = next_hop(&[(TRACEPARENT, INBOUND)]);
        assert_eq!(id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!((tp.trace_id, tp.flags), (inbound.trace_id, 0));
        // Only the ID: a trace derived from it, sampled, as before.
        let (_, tp) = next_hop(&[(X_CORRELATION_ID, "abc-123")]);
        assert_eq!((tp.trace_id, tp.flags), (id_of("abc-123").trace_id(), 1));
        assert_ne!(tp.trace_id, inbound.trace_id);
        // An invalid traceparent next to a valid ID changes nothing.
        let (id, tp) = next_hop(&[(X_CORRELATION_ID, "abc-123"), (TRACEPARENT, "00-zz")]);
        assert_eq!(id.to_string(), "abc-123");
        assert_eq!(tp.trace_id, id_of("abc-123").trace_id());
    }

    fn id_of(s: &str) -> CorrelationId {
        s.parse().expect("valid")
    }

    #[test]
    fn rejections_are_counted_by_header() {
        let recorder = metrics_util::debugging::DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::with_local_recorder(&recorder, || {
            let mut h = HeaderMap::new();
            h.insert(X_CORRELATION_ID, HeaderValue::from_static("a b"));
            h.insert(TRACEPARENT, HeaderValue::from_static("garbage"));
            assert_eq!(
                Propagator::default().extract_with_source(&h).1,
                Source::Generated
            );
        });
        let mut counts: Vec<(String, u64)> = snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .filter_map(|(key, _, _, value)| match value {
                metrics_util::debugging::DebugValue::Counter(n) => {
                    let header = key
                        .key()
                        .labels()
                        .find(|l| l.key() == "header")?
                        .value()
                        .to_owned();
                    Some((header, n))
                }
                _ => None,
            })
            .collect();
        counts.sort();
        assert_eq!(
            counts,
            [
                ("traceparent".to_owned(), 1),
                ("x-correlation-id".to_owned(), 1)
            ]
        );
    }

    #[test]
    fn custom_header_name() {
        let p = Propagator::new(HeaderName::from_static("x-request-id"));
        let mut h = HeaderMap::new();
        h.insert("x-request-id", HeaderValue::from_static("r-1"));
        assert_eq!(p.extract(&h).to_string(), "r-1");
    }
}
