//! The correlation ID value: how it is generated, parsed, printed and compared.

use std::cell::Cell;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::base::json;

/// Longest inbound correlation ID accepted, in bytes.
pub const MAX_LEN: usize = 128;

/// An identifier that ties together every log line one request causes.
///
/// Generated IDs have the form `req_{unix_seconds}_{8 lowercase hex}` and are
/// stored unformatted (no allocation, `Copy`-cheap clones); IDs parsed from
/// outside (for example an inbound `X-Correlation-ID` header) are shared
/// behind an `Arc<str>`, so cloning never copies the text.
///
/// ```
/// use observe_runtime::correlation::CorrelationId;
///
/// let id: CorrelationId = "abc-123".parse().unwrap();
/// assert_eq!(id.to_string(), "abc-123");
///
/// let fresh = CorrelationId::generate();
/// assert!(fresh.to_string().starts_with("req_"));
///
/// assert!("has space".parse::<CorrelationId>().is_err());
/// ```
#[derive(Clone)]
pub struct CorrelationId(Repr);

#[derive(Clone)]
enum Repr {
    /// `req_{secs}_{rand:08x}`: formatted on demand.
    Generated { secs: u64, rand: u32 },
    /// A UUID v7, formatted hyphenated on demand.
    Uuid(u128),
    /// Validated text from outside the process.
    Shared(Arc<str>),
    /// Validated text from outside, and the W3C trace the same request
    /// carried, which outbound calls continue. Only HTTP extraction
    /// (feature `http`) makes one.
    #[cfg_attr(not(feature = "http"), allow(dead_code))]
    SharedInTrace(Arc<InTrace>),
    /// A W3C trace-id, formatted as 32 lowercase hex digits on demand,
    /// with the rest of the trace context it came with.
    Trace(TraceContext),
}

#[cfg_attr(not(feature = "http"), allow(dead_code))]
struct InTrace {
    text: Arc<str>,
    trace: TraceContext,
}

/// The W3C trace a request arrived in: what an outbound `traceparent`
/// carries on, and the caller's span its first monitored call is a child
/// of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TraceContext {
    pub(crate) trace_id: u128,
    /// The inbound `traceparent`'s parent-id; 0 when there was none.
    pub(crate) parent_span: u64,
    pub(crate) flags: u8,
}

/// Which form new correlation IDs take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum IdFormat {
    /// `req_{unix_seconds}_{8 lowercase hex}`, the default.
    #[default]
    Request,
    /// A UUID version 7 (time-ordered), hyphenated.
    UuidV7,
}

impl CorrelationId {
    /// Generates a new ID in the process-wide [`IdFormat`] (see
    /// [`set_id_format`](crate::correlation::set_id_format)).
    ///
    /// The random part comes from a per-thread generator seeded once, so no
    /// system call is made per ID.
    #[must_use]
    pub fn generate() -> Self {
        Self::generate_at(crate::base::clock::unix_nanos())
    }

    /// [`generate`](Self::generate) for an ID made at `unix_nanos`.
    pub(crate) fn generate_at(unix_nanos: u64) -> Self {
        match crate::correlation::id_format() {
            IdFormat::Request => Self::request_at(unix_nanos),
            IdFormat::UuidV7 => Self::uuid_v7_at(unix_nanos),
        }
    }

    /// Generates a `req_{unix_seconds}_{8 lowercase hex}` ID.
    #[must_use]
    pub fn generate_request() -> Self {
        Self::request_at(crate::base::clock::unix_nanos())
    }

    fn request_at(unix_nanos: u64) -> Self {
        let secs = unix_nanos / 1_000_000_000;
        // Truncation keeps the upper, best-mixed half of the generator's output.
        #[allow(clippy::cast_possible_truncation)]
        let rand = (random_u64() >> 32) as u32;
        Self(Repr::Generated { secs, rand })
    }

    /// Generates a UUID v7 ID (48-bit millisecond timestamp, 74 random bits).
    #[must_use]
    pub fn generate_uuid_v7() -> Self {
        Self::uuid_v7_at(crate::base::clock::unix_nanos())
    }

    fn uuid_v7_at(unix_nanos: u64) -> Self {
        let millis = u128::from(unix_nanos / 1_000_000);
        let random = (u128::from(random_u64()) << 64) | u128::from(random_u64());
        let bytes =
            ((millis & 0xFFFF_FFFF_FFFF) << 80 | (random & ((1u128 << 80) - 1))).to_be_bytes();
        let uuid = uuid::Builder::from_bytes(bytes)
            .with_version(uuid::Version::SortRand)
            .with_variant(uuid::Variant::RFC4122)
            .into_uuid();
        Self(Repr::Uuid(uuid.as_u128()))
    }

    /// The ID spelled as a W3C trace-id (32 lowercase hex digits).
    #[must_use]
    pub fn from_trace_id(trace_id: u128) -> Self {
        Self::in_trace(TraceContext {
            trace_id,
            parent_span: 0,
            flags: 1,
        })
    }

    /// The trace's own ID, for a request whose `traceparent` is all it has.
    pub(crate) fn in_trace(trace: TraceContext) -> Self {
        Self(Repr::Trace(trace))
    }

    /// This (inbound) ID, remembering the trace its request arrived in;
    /// other forms already are, or have, their own trace.
    #[cfg(feature = "http")]
    #[must_use]
    pub(crate) fn with_trace(self, trace: TraceContext) -> Self {
        match self.0 {
            Repr::Shared(text) => Self(Repr::SharedInTrace(Arc::new(InTrace { text, trace }))),
            other => Self(other),
        }
    }

    /// The trace the ID's request arrived in, if it came with one.
    pub(crate) fn trace_context(&self) -> Option<TraceContext> {
        match &self.0 {
            Repr::SharedInTrace(t) => Some(t.trace),
            Repr::Trace(t) => Some(*t),
            _ => None,
        }
    }

    /// Text from outside the process, when the ID is that.
    fn shared_text(&self) -> Option<&str> {
        match &self.0 {
            Repr::Shared(s) => Some(s),
            Repr::SharedInTrace(t) => Some(&t.text),
            _ => None,
        }
    }

    /// Whether the ID keeps text from outside alive (the other forms are
    /// plain numbers).
    pub(crate) fn holds_memory(&self) -> bool {
        self.shared_text().is_some()
    }

    /// Writes the ID's text to `out` without allocating.
    pub(crate) fn write_to(&self, out: &mut String) {
        match &self.0 {
            Repr::Generated { secs, rand } => write_request_id(out, *secs, *rand),
            Repr::Uuid(v) => {
                let mut buf = uuid::Uuid::encode_buffer();
                out.push_str(
                    uuid::Uuid::from_u128(*v)
                        .hyphenated()
                        .encode_lower(&mut buf),
                );
            }
            Repr::Shared(s) => out.push_str(s),
            Repr::SharedInTrace(t) => out.push_str(&t.text),
            Repr::Trace(TraceContext { trace_id, .. }) => json::write_hex32(out, *trace_id),
        }
    }
}

impl CorrelationId {
    /// The trace-id of the ID's request: the trace it arrived in; for an
    /// ID this process made, one derived from its numbers (a UUID is its
    /// own); else one derived from its text (see [`text_trace_id`]), so
    /// that every service a request reaches with only its ID finds the
    /// same trace. A made ID travels with a `traceparent` naming its
    /// trace, so the next service need not derive it.
    #[must_use]
    pub(crate) fn trace_id(&self) -> u128 {
        match &self.0 {
            Repr::Generated { secs, rand } => generated_trace_id(*secs, *rand),
            // 122 bits of time and randomness, never all zero.
            Repr::Uuid(v) => *v,
            Repr::Shared(text) => text_trace_id(text),
            Repr::SharedInTrace(t) => t.trace.trace_id,
            Repr::Trace(t) => t.trace_id,
        }
    }

    /// [`write_to`](Self::write_to), returning the ID's trace: the one it
    /// arrived in, else one with the [`trace_id`](Self::trace_id), no
    /// parent and sampled.
    pub(crate) fn write_traced(&self, out: &mut String) -> TraceContext {
        self.write_to(out);
        self.trace_context().unwrap_or_else(|| TraceContext {
            trace_id: self.trace_id(),
            parent_span: 0,
            flags: 1,
        })
    }
}

/// Mixes a 64-bit word (the fold of its 128-bit product with an odd
/// constant): the step of both trace-id derivations.
fn mix(x: u64) -> u64 {
    let m = u128::from(x) * 0x9e37_79b9_7f4a_7c15;
    // Folding keeps both halves of the product.
    #[allow(clippy::cast_possible_truncation)]
    let folded = (m >> 64) as u64 ^ m as u64;
    folded
}

/// The trace-id of a generated `req_{secs}_{rand}` ID, from its numbers.
fn generated_trace_id(secs: u64, rand: u32) -> u128 {
    let a = mix(secs ^ 0x243f_6a88_85a3_08d3);
    let b = mix(u64::from(rand) ^ a.rotate_left(29) ^ 0x1319_8a2e_0370_7344);
    (u128::from(mix(a ^ b)) << 64 | u128::from(b)).max(1)
}

/// The trace-id of a correlation ID's text: the text itself when it is 32
/// lowercase hex digits (a trace-id used as the ID), else a 128-bit hash
/// of it. The hash is fixed (no random key), so every process derives the
/// same trace from the same ID; it reads eight bytes a step, because every
/// line of a request without a `traceparent` pays for it.
pub(crate) fn text_trace_id(text: &str) -> u128 {
    if let Some(v) = hex_trace_id(text).or_else(|| made_trace_id(text)) {
        return v;
    }
    let bytes = text.as_bytes();
    let mut a = 0x243f_6a88_85a3_08d3 ^ bytes.len() as u64;
    let mut b = 0x1319_8a2e_0370_7344_u64;
    for chunk in bytes.chunks(8) {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        let v = u64::from_le_bytes(word);
        a = mix(a ^ v);
        b = mix(b.wrapping_add(v) ^ a.rotate_left(23));
    }
    (u128::from(mix(a ^ b)) << 64 | u128::from(mix(b ^ 0xa409_3822_299f_31d0))).max(1)
}

/// The trace of the text of an ID a process made (`req_{secs}_{8 hex}`,
/// or a lowercase hyphenated UUID), as the ID itself has it: a service
/// that gets only the text finds the trace the maker had.
fn made_trace_id(text: &str) -> Option<u128> {
    if text.len() == 36 {
        let mut buf = uuid::Uuid::encode_buffer();
        return uuid::Uuid::try_parse(text)
            .ok()
            .filter(|u| u.hyphenated().encode_lower(&mut buf) == text)
            .map(|u| u.as_u128());
    }
    let (secs, rand) = text.strip_prefix("req_")?.split_once('_')?;
    // Written as `write_request_id` writes them, or it is other text.
    let canonical_secs = !secs.is_empty()
        && secs.len() <= 20
        && secs.bytes().all(|b| b.is_ascii_digit())
        && (secs == "0" || !secs.starts_with('0'));
    if !canonical_secs || rand.len() != 8 {
        return None;
    }
    let secs = secs.parse().ok()?;
    let rand = u32::try_from(lower_hex(rand)?).ok()?;
    Some(generated_trace_id(secs, rand))
}

/// 32 lowercase hex digits, not all zero, as a trace-id.
fn hex_trace_id(text: &str) -> Option<u128> {
    (text.len() == 32)
        .then(|| lower_hex(text))
        .flatten()
        .filter(|v| *v != 0)
}

/// 1 to 32 lowercase hex digits (as W3C trace context spells every
/// field), as a number.
pub(crate) fn lower_hex(s: &str) -> Option<u128> {
    let lower = |c: u8| c.is_ascii_digit() || (b'a'..=b'f').contains(&c);
    if s.is_empty() || s.len() > 32 || !s.bytes().all(lower) {
        return None;
    }
    u128::from_str_radix(s, 16).ok()
}

/// `req_{secs}_{rand:08x}`; every line of a root call carries one, so the
/// usual ten-digit seconds and the hex go in as whole words.
fn write_request_id(out: &mut String, secs: u64, rand: u32) {
    out.push_str("req_");
    if (1_000_000_000..10_000_000_000).contains(&secs) {
        let (digits, last_two) = json::ten_digits(secs);
        json::push_word(out, digits, 8);
        json::push_word(out, last_two | u64::from(b'_') << 16, 3);
    } else {
        json::write_u64(out, secs);
        out.push('_');
    }
    json::write_hex8(out, rand);
}

thread_local! {
    static RNG: Cell<u64> = const { Cell::new(0) };
}

/// wyrand: a fast, well-distributed generator; the state is seeded once per
/// thread from std's randomly keyed hasher (itself seeded from the OS once).
/// The crate's one random source: IDs, sink document IDs, backoff jitter.
pub(crate) fn random_u64() -> u64 {
    RNG.with(|state| {
        let mut s = state.get();
        if s == 0 {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u64(
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as u64),
            );
            s = h.finish() | 1;
        }
        s = s.wrapping_add(0xa076_1d64_78bd_642f);
        state.set(s);
        let t = u128::from(s) * u128::from(s ^ 0xe703_7ed1_a0b4_28db);
        #[allow(clippy::cast_possible_truncation)]
        let folded = (t >> 64) as u64 ^ t as u64;
        folded
    })
}

/// Why a string is not a valid correlation ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseCorrelationIdError {
    /// The input is empty.
    Empty,
    /// The input is longer than [`MAX_LEN`] bytes.
    TooLong {
        /// Length of the rejected input, in bytes.
        len: usize,
    },
    /// The input holds a character outside `[A-Za-z0-9._:-]`.
    InvalidChar {
        /// Byte offset of the first offending character.
        at: usize,
    },
}

impl fmt::Display for ParseCorrelationIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("correlation id is empty"),
            Self::TooLong { len } => {
                write!(
                    f,
                    "correlation id is {len} bytes long; at most {MAX_LEN} are allowed"
                )
            }
            Self::InvalidChar { at } => write!(
                f,
                "correlation id has an invalid character at byte {at}; allowed are A-Z a-z 0-9 . _ : -"
            ),
        }
    }
}

impl std::error::Error for ParseCorrelationIdError {}

impl FromStr for CorrelationId {
    type Err = ParseCorrelationIdError;

    /// Accepts 1..=128 bytes of `[A-Za-z0-9._:-]`; anything else could split a
    /// log line or explode an index, so it is refused.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(ParseCorrelationIdError::Empty);
        }
        if s.len() > MAX_LEN {
            return Err(ParseCorrelationIdError::TooLong { len: s.len() });
        }
        if let Some(at) = s
            .bytes()
            .position(|b| !(b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-')))
        {
            return Err(ParseCorrelationIdError::InvalidChar { at });
        }
        Ok(Self(Repr::Shared(Arc::from(s))))
    }
}

impl fmt::Display for CorrelationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.shared_text() {
            Some(s) => f.write_str(s),
            None => {
                let mut s = String::with_capacity(40);
                self.write_to(&mut s);
                f.write_str(&s)
            }
        }
    }
}

impl serde::Serialize for CorrelationId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.shared_text() {
            Some(s) => serializer.serialize_str(s),
            None => {
                let mut s = String::with_capacity(40);
                self.write_to(&mut s);
                serializer.serialize_str(&s)
            }
        }
    }
}

impl<'de> serde::Deserialize<'de> for CorrelationId {
    /// Accepts exactly what [`FromStr`] accepts.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl fmt::Debug for CorrelationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CorrelationId")
            .field(&self.to_string())
            .finish()
    }
}

impl PartialEq for CorrelationId {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (Repr::Generated { secs: a, rand: b }, Repr::Generated { secs: c, rand: d }) => {
                a == c && b == d
            }
            (Repr::Uuid(a), Repr::Uuid(b)) => a == b,
            (Repr::Trace(a), Repr::Trace(b)) => a.trace_id == b.trace_id,
            _ if self.shared_text().is_some() && other.shared_text().is_some() => {
                self.shared_text() == other.shared_text()
            }
            // Different representations can still spell the same text.
            _ => self.to_string() == other.to_string(),
        }
    }
}

impl Eq for CorrelationId {}

impl std::hash::Hash for CorrelationId {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.to_string().hash(state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_made_id_s_text_leads_to_the_trace_the_id_has() {
        for _ in 0..100 {
            for id in [
                CorrelationId::generate_request(),
                CorrelationId::generate_uuid_v7(),
            ] {
                let text: CorrelationId = id.to_string().parse().expect("valid");
                assert_eq!(text, id);
                assert_eq!(text.trace_id(), id.trace_id(), "{id}");
            }
        }
        let far = CorrelationId(Repr::Generated {
            secs: 7,
            rand: 0x0a,
        });
        assert_eq!(far.to_string(), "req_7_0000000a");
        let text: CorrelationId = far.to_string().parse().expect("valid");
        assert_eq!(text.trace_id(), far.trace_id());
        // Other spellings of the same numbers are other text.
        for other in [
            "req_07_0000000a",
            "req_7_0000000A",
            "req_7_a",
            "REQ_7_0000000a",
        ] {
            assert_ne!(text_trace_id(other), far.trace_id(), "{other}");
        }
    }

    #[test]
    fn generated_ids_have_the_plan_format() {
        let id = CorrelationId::generate_request().to_string();
        let rest = id.strip_prefix("req_").expect("prefix");
        let (secs, hex) = rest.split_once('_').expect("separator");
        assert!(secs.parse::<u64>().expect("seconds") > 1_700_000_000);
        assert_eq!(hex.len(), 8);
        assert!(
            hex.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
    }

    #[test]
    fn request_ids_spell_any_seconds_like_the_formatter() {
        for (secs, rand) in [
            (1_764_465_729, 0x1a2b_3c4d),
            (1_000_000_000, 0),
            (9_999_999_999, u32::MAX),
            (999_999_999, 7),
            (10_000_000_000, 0xf),
            (0, 1),
            (u64::MAX, 0x8000_0000),
        ] {
            let id = CorrelationId(Repr::Generated { secs, rand });
            assert_eq!(id.to_string(), format!("req_{secs}_{rand:08x}"));
        }
    }

    #[test]
    fn generated_ids_differ() {
        // The form has 32 random bits per second, so among 10,000 IDs of
        // one second a repeat has a chance of about 1.2 %; three or more
        // (about 2 in a million) would mean the bits are not random.
        let ids: std::collections::HashSet<String> = (0..10_000)
            .map(|_| CorrelationId::generate_request().to_string())
            .collect();
        assert!(ids.len() >= 9_998, "{} repeats", 10_000 - ids.len());
    }

    #[test]
    fn uuid_v7_ids_parse_as_uuid_v7() {
        let id = CorrelationId::generate_uuid_v7().to_string();
        let parsed = uuid::Uuid::parse_str(&id).expect("uuid");
        assert_eq!(parsed.get_version_num(), 7);
        assert!(id.parse::<CorrelationId>().is_ok());
    }

    #[test]
    fn parse_rules() {
        assert_eq!(
            "".parse::<CorrelationId>(),
            Err(ParseCorrelationIdError::Empty)
        );
        assert_eq!(
            "a\nb".parse::<CorrelationId>(),
            Err(ParseCorrelationIdError::InvalidChar { at: 1 })
        );
        let long = "a".repeat(129);
        assert_eq!(
            long.parse::<CorrelationId>(),
            Err(ParseCorrelationIdError::TooLong { len: 129 })
        );
        assert!("a".repeat(128).parse::<CorrelationId>().is_ok());
        assert!("Abc.def_1:2-3".parse::<CorrelationId>().is_ok());
    }

    #[test]
    fn serde_round_trip_and_validation() {
        let id = CorrelationId::generate_request();
        let json = serde_json::to_string(&id).expect("serialize");
        assert_eq!(json, format!("\"{id}\""));
        let back: CorrelationId = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, id);
        assert!(serde_json::from_str::<CorrelationId>("\"a b\"").is_err());
    }

    #[test]
    fn every_id_has_a_stable_trace_and_made_ids_need_no_text_for_it() {
        let a = CorrelationId(Repr::Generated {
            secs: 1_796_000_000,
            rand: 7,
        });
        let b = CorrelationId(Repr::Generated {
            secs: 1_796_000_000,
            rand: 8,
        });
        assert_eq!(a.trace_id(), a.clone().trace_id());
        assert_ne!(a.trace_id(), b.trace_id());
        assert_ne!(a.trace_id(), 0);
        let uuid = CorrelationId::generate_uuid_v7();
        let Repr::Uuid(v) = uuid.0 else {
            panic!("a uuid")
        };
        assert_eq!(uuid.trace_id(), v);
        let text: CorrelationId = "order-77".parse().unwrap();
        assert_eq!(text.trace_id(), text_trace_id("order-77"));
        // Writing an ID yields the same trace as asking for it.
        for id in [a, uuid, text] {
            let mut out = String::new();
            assert_eq!(id.write_traced(&mut out).trace_id, id.trace_id());
            assert_eq!(out, id.to_string());
        }
        assert_eq!(
            text_trace_id("4bf92f3577b34da6a3ce929d0e0e4736"),
            0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736
        );
    }

    #[test]
    fn trace_ids_print_as_32_hex_digits() {
        let id = CorrelationId::from_trace_id(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736);
        assert_eq!(id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(
            id,
            "4bf92f3577b34da6a3ce929d0e0e4736".parse().expect("valid")
        );
    }

    #[test]
    fn generated_round_trips_through_text() {
        let id = CorrelationId::generate_request();
        let again: CorrelationId = id.to_string().parse().expect("valid");
        assert_eq!(id, again);
    }
}
