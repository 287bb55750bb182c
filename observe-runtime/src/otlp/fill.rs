//! Spans and log records filled in place: the worker keeps the messages of
//! its last request and writes the next lines over them, so their strings,
//! ID bytes and attribute lists are reused: a stream of lines of one
//! shape (the same members, as one operation's successes have) allocates
//! nothing once warm (`a_steady_stream_of_one_shape_allocates_nothing`),
//! and a message written over in another shape allocates only what the
//! new shape has more of (allocating and freeing every key and value was
//! a third of the worker's time). What is kept is bounded: the messages of
//! one request (one window of lines, at most a megabyte of them) and spare
//! ones holding at most [`MAX_SPARE_BYTES`] in all, each at most
//! [`MAX_KEPT_BYTES`] (a message that once held a long line is let go, not
//! kept at its size).
//!
//! The lines are read member by member with serde; a member's value is a
//! [`Scalar`] borrowed from the line, and only an array or an object nested
//! in a context field becomes a tree of its own.

use std::borrow::Cow;
use std::fmt;

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::trace::v1::Span;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use super::resource::{from_json, hex_id};
use crate::sink::worker::Fate;

/// Most heap the messages kept beyond the last request's may hold.
const MAX_SPARE_BYTES: usize = 4 * 1024 * 1024;

/// Most heap a message kept for reuse may hold: a few long lines' worth.
const MAX_KEPT_BYTES: usize = 8 * 1024;

/// A message that can be written over.
pub(crate) trait Reusable: Default {
    /// About how many heap bytes it holds (its buffers' room, not what
    /// they hold now).
    fn heap_bytes(&self) -> usize;
}

impl Reusable for Span {
    fn heap_bytes(&self) -> usize {
        self.name.capacity()
            + self.trace_id.capacity()
            + self.span_id.capacity()
            + self.parent_span_id.capacity()
            + self.status.as_ref().map_or(0, |s| s.message.capacity())
            + attributes_bytes(&self.attributes)
    }
}

impl Reusable for LogRecord {
    fn heap_bytes(&self) -> usize {
        self.severity_text.capacity()
            + self.trace_id.capacity()
            + self.span_id.capacity()
            + self.body.as_ref().map_or(0, value_bytes)
            + attributes_bytes(&self.attributes)
    }
}

fn attributes_bytes(list: &[KeyValue]) -> usize {
    list.iter()
        .map(|kv| {
            std::mem::size_of::<KeyValue>()
                + kv.key.capacity()
                + kv.value.as_ref().map_or(0, value_bytes)
        })
        .sum()
}

/// A string's room; arrays and lists (rare, and of any size) count as too
/// big to keep.
fn value_bytes(v: &AnyValue) -> usize {
    match &v.value {
        Some(Value::StringValue(s)) => s.capacity(),
        Some(Value::ArrayValue(_) | Value::KvlistValue(_) | Value::BytesValue(_)) => {
            MAX_KEPT_BYTES + 1
        }
        _ => 0,
    }
}

/// The messages of one request and the ones kept for the next.
pub(crate) struct Recycler<T> {
    /// Each with its heap bytes as counted when kept.
    spare: Vec<(T, usize)>,
    /// The sum of those.
    bytes: usize,
}

impl<T: Reusable> Recycler<T> {
    pub(crate) const fn new() -> Self {
        Self {
            spare: Vec::new(),
            bytes: 0,
        }
    }

    /// Writes `lines` over the messages of `live` (the last request's) by
    /// `fill`, keeping those it fills; a line it refuses is marked
    /// [`Fate::Rejected`].
    pub(crate) fn refill(
        &mut self,
        live: &mut Vec<T>,
        lines: &[&[u8]],
        fates: &mut [Fate],
        mut fill: impl FnMut(&mut T, &[u8]) -> bool,
    ) {
        for m in live.drain(..) {
            self.keep(m);
        }
        for (line, fate) in lines.iter().zip(fates.iter_mut()) {
            let mut m = match self.spare.pop() {
                Some((m, bytes)) => {
                    self.bytes -= bytes;
                    m
                }
                None => T::default(),
            };
            if fill(&mut m, line) {
                live.push(m);
            } else {
                self.keep(m);
                *fate = Fate::Rejected;
            }
        }
    }

    /// Keeps `m` for reuse if it is small enough and there is room.
    fn keep(&mut self, m: T) {
        let bytes = m.heap_bytes();
        if bytes <= MAX_KEPT_BYTES && self.bytes + bytes <= MAX_SPARE_BYTES {
            self.bytes += bytes;
            self.spare.push((m, bytes));
        }
    }
}

/// `text` into `buf`, reusing its room.
pub(crate) fn set_text(buf: &mut String, text: &str) {
    buf.clear();
    buf.push_str(text);
}

/// `bytes` into `buf`, reusing its room.
pub(crate) fn set_bytes(buf: &mut Vec<u8>, bytes: &[u8]) {
    buf.clear();
    buf.extend_from_slice(bytes);
}

/// The lowercase hex ID of `N` bytes into `buf`; `false` (and `buf` left
/// as it was) if `hex` is not one.
pub(crate) fn set_hex_id<const N: usize>(buf: &mut Vec<u8>, hex: &str) -> bool {
    hex_id::<N>(hex.as_bytes()).is_some_and(|id| {
        set_bytes(buf, &id);
        true
    })
}

/// A string value, reusing the string `slot` already holds.
pub(crate) fn set_str(slot: &mut Option<AnyValue>, text: &str) {
    if let Some(AnyValue {
        value: Some(Value::StringValue(s)),
    }) = slot
    {
        set_text(s, text);
    } else {
        *slot = Some(AnyValue {
            value: Some(Value::StringValue(text.to_owned())),
        });
    }
}

/// A value with no buffer of its own to reuse.
pub(crate) fn set_value(slot: &mut Option<AnyValue>, value: Value) {
    *slot = Some(AnyValue { value: Some(value) });
}

/// A JSON value as read from a line: a string borrowed from it where it
/// has no escapes; arrays and objects (rare in a context field) as trees.
#[derive(Debug)]
pub(crate) enum Scalar<'de> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Cow<'de, str>),
    Tree(serde_json::Value),
}

impl Scalar<'_> {
    /// An unsigned number: beyond `i64`, as [`from_json`] has it, a double.
    fn uint(u: u64) -> Self {
        #[allow(clippy::cast_precision_loss)]
        i64::try_from(u).map_or(Self::Float(u as f64), Self::Int)
    }

    /// The text, when a string.
    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Self::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Into `slot`, as [`from_json`] maps the same value.
    pub(crate) fn set(self, slot: &mut Option<AnyValue>) {
        match self {
            Self::Null => *slot = Some(AnyValue { value: None }),
            Self::Bool(b) => set_value(slot, Value::BoolValue(b)),
            Self::Int(i) => set_value(slot, Value::IntValue(i)),
            Self::Float(f) => set_value(slot, Value::DoubleValue(f)),
            Self::Str(s) => set_str(slot, &s),
            Self::Tree(t) => *slot = Some(from_json(t)),
        }
    }
}

impl<'de> de::Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Null)
    }

    fn visit_none<E>(self) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Null)
    }

    fn visit_bool<E>(self, b: bool) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Bool(b))
    }

    fn visit_i64<E>(self, i: i64) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Int(i))
    }

    fn visit_u64<E>(self, u: u64) -> Result<Scalar<'de>, E> {
        Ok(Scalar::uint(u))
    }

    fn visit_f64<E>(self, f: f64) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Float(f))
    }

    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Str(Cow::Borrowed(s)))
    }

    fn visit_str<E>(self, s: &str) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Str(Cow::Owned(s.to_owned())))
    }

    fn visit_string<E>(self, s: String) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Str(Cow::Owned(s)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Scalar<'de>, A::Error> {
        let tree = de::Deserialize::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
        Ok(Scalar::Tree(tree))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Scalar<'de>, A::Error> {
        let tree = de::Deserialize::deserialize(de::value::MapAccessDeserializer::new(map))?;
        Ok(Scalar::Tree(tree))
    }
}

/// A string member or key, borrowed from the line unless it has escapes
/// (serde's own `Cow<str>` always copies).
pub(crate) struct Text<'de>(pub(crate) Cow<'de, str>);

impl std::ops::Deref for Text<'_> {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'de> de::Deserialize<'de> for Text<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // A string member read as any value is: borrowed where it can be.
        match d.deserialize_str(ScalarVisitor)? {
            Scalar::Str(s) => Ok(Text(s)),
            _ => Err(de::Error::custom("expected a string")),
        }
    }
}

/// Attributes written over a message's old ones, in order; those left
/// over are dropped by [`finish`](Self::finish).
pub(crate) struct Attributes<'a> {
    list: &'a mut Vec<KeyValue>,
    len: usize,
}

impl<'a> Attributes<'a> {
    pub(crate) fn over(list: &'a mut Vec<KeyValue>) -> Self {
        Self { list, len: 0 }
    }

    /// The value slot of the next attribute, named `prefix` then `key`.
    pub(crate) fn slot(&mut self, prefix: &str, key: &str) -> &mut Option<AnyValue> {
        if self.len == self.list.len() {
            self.list.push(KeyValue::default());
        }
        let kv = &mut self.list[self.len];
        self.len += 1;
        kv.key.clear();
        kv.key.push_str(prefix);
        kv.key.push_str(key);
        &mut kv.value
    }

    pub(crate) fn str(&mut self, key: &str, value: &str) {
        set_str(self.slot("", key), value);
    }

    pub(crate) fn value(&mut self, key: &str, value: Value) {
        set_value(self.slot("", key), value);
    }

    /// Drops the old attributes not written over.
    pub(crate) fn finish(self) {
        self.list.truncate(self.len);
    }
}

/// A JSON object read into attributes named `prefix` then the member's
/// key; a value that is not an object becomes one attribute named
/// `prefix` without its final dot.
pub(crate) struct Flatten<'a, 'b> {
    pub(crate) prefix: &'static str,
    pub(crate) into: &'a mut Attributes<'b>,
}

impl<'de> DeserializeSeed<'de> for Flatten<'_, '_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl Flatten<'_, '_> {
    fn one(self, value: Scalar<'_>) {
        let name = self.prefix.strip_suffix('.').unwrap_or(self.prefix);
        value.set(self.into.slot(name, ""));
    }
}

/// The single values go through [`ScalarVisitor`], so both read a value
/// the same way.
impl<'de> Visitor<'de> for Flatten<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<Text<'de>>()? {
            let value: Scalar<'de> = map.next_value()?;
            value.set(self.into.slot(self.prefix, &key));
        }
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        self.one(Scalar::Null);
        Ok(())
    }

    fn visit_none<E>(self) -> Result<(), E> {
        self.one(Scalar::Null);
        Ok(())
    }

    fn visit_bool<E>(self, b: bool) -> Result<(), E> {
        self.one(Scalar::Bool(b));
        Ok(())
    }

    fn visit_i64<E>(self, i: i64) -> Result<(), E> {
        self.one(Scalar::Int(i));
        Ok(())
    }

    fn visit_u64<E>(self, u: u64) -> Result<(), E> {
        self.one(Scalar::uint(u));
        Ok(())
    }

    fn visit_f64<E>(self, f: f64) -> Result<(), E> {
        self.one(Scalar::Float(f));
        Ok(())
    }

    fn visit_str<E>(self, s: &str) -> Result<(), E> {
        self.one(Scalar::Str(Cow::Borrowed(s)));
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        self.one(ScalarVisitor.visit_seq(seq)?);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(json: &str) -> Vec<KeyValue> {
        let mut list = vec![
            KeyValue {
                key: "stale".into(),
                ..KeyValue::default()
            };
            5
        ];
        let mut attrs = Attributes::over(&mut list);
        let mut de = serde_json::Deserializer::from_str(json);
        Flatten {
            prefix: "context.",
            into: &mut attrs,
        }
        .deserialize(&mut de)
        .unwrap();
        attrs.finish();
        list
    }

    #[test]
    fn json_values_keep_their_types() {
        let list = read(
            r#"{"i":-3,"u":18446744073709551615,"f":1.5,"s":"x\n","b":true,"n":null,"a":[1],"o":{"k":"v"}}"#,
        );
        let get = |k: &str| {
            list.iter()
                .find(|kv| kv.key == k)
                .and_then(|kv| kv.value.clone())
                .and_then(|v| v.value)
        };
        assert_eq!(list.len(), 8);
        assert_eq!(get("context.i"), Some(Value::IntValue(-3)));
        assert!(matches!(get("context.u"), Some(Value::DoubleValue(_))));
        assert_eq!(get("context.f"), Some(Value::DoubleValue(1.5)));
        assert_eq!(get("context.s"), Some(Value::StringValue("x\n".into())));
        assert_eq!(get("context.b"), Some(Value::BoolValue(true)));
        assert!(list.iter().any(|kv| kv.key == "context.n"));
        assert_eq!(get("context.n"), None);
        assert!(matches!(get("context.a"), Some(Value::ArrayValue(_))));
        assert!(matches!(get("context.o"), Some(Value::KvlistValue(_))));
    }

    #[test]
    fn a_single_value_is_one_attribute_and_stale_ones_go() {
        let list = read("7");
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].key, "context");
        assert_eq!(
            list[0].value,
            Some(AnyValue {
                value: Some(Value::IntValue(7))
            })
        );
        assert!(read("{}").is_empty());
    }

    #[test]
    fn text_is_borrowed_unless_escaped() {
        let mut de = serde_json::Deserializer::from_slice(br#"["plain", "esc\"aped"]"#);
        let [plain, escaped]: [Text<'_>; 2] = de::Deserialize::deserialize(&mut de).unwrap();
        assert!(matches!(plain.0, Cow::Borrowed("plain")));
        assert!(matches!(escaped.0, Cow::Owned(ref s) if s == "esc\"aped"));
    }

    #[test]
    fn strings_are_written_over_in_place() {
        let mut slot = None;
        set_str(&mut slot, "a long first value");
        let before = match &slot {
            Some(AnyValue {
                value: Some(Value::StringValue(s)),
            }) => s.as_ptr(),
            other => panic!("{other:?}"),
        };
        set_str(&mut slot, "short");
        match &slot {
            Some(AnyValue {
                value: Some(Value::StringValue(s)),
            }) => assert_eq!((s.as_str(), s.as_ptr()), ("short", before)),
            other => panic!("{other:?}"),
        }
    }

    impl Reusable for String {
        fn heap_bytes(&self) -> usize {
            self.capacity()
        }
    }

    #[test]
    fn the_spare_messages_are_bounded() {
        let mut r = Recycler::<String>::new();
        let mut live = vec!["z".repeat(1024); MAX_SPARE_BYTES / 1024 + 10];
        let fill = |s: &mut String, line: &[u8]| {
            s.clear();
            s.push_str(std::str::from_utf8(line).unwrap());
            !s.is_empty()
        };
        let mut fates = [Fate::Sent; 2];
        r.refill(&mut live, &[b"", b"x"], &mut fates, fill);
        assert_eq!(live, ["x"]);
        assert_eq!(fates, [Fate::Rejected, Fate::Sent]);
        assert_eq!(r.spare.len(), MAX_SPARE_BYTES / 1024 - 1);
        assert_eq!(r.bytes, MAX_SPARE_BYTES - 1024);
        // One that held a long line is let go.
        let mut r = Recycler::<String>::new();
        let mut live = vec!["x".repeat(MAX_KEPT_BYTES + 1), "short".to_owned()];
        r.refill(&mut live, &[], &mut [], fill);
        assert_eq!(r.spare, [("short".to_owned(), 5)]);
        let record = LogRecord {
            body: Some(AnyValue {
                value: Some(Value::StringValue("y".repeat(MAX_KEPT_BYTES + 1))),
            }),
            ..LogRecord::default()
        };
        assert!(record.heap_bytes() > MAX_KEPT_BYTES);
    }
}
