//! A call's queued form, shared by its span and its log record: written
//! once on the caller's thread, queued behind `S` for the traces lane and
//! behind `L` for the logs lane, and read back by position on the worker.
//!
//! The form is the correlation ID (which holds no space), a space, a
//! fixed-width part of [`FIXED`] bytes and, for an error, a panic or
//! context fields, a JSON tail: `m` the message, `x` the error type, `c`
//! the context members. The fixed part is the trace ID (32 hex digits);
//! the span ID, the parent span ID (0 for none), the start (Unix ns) and
//! the duration (ns), 16 each; the site's number (8); one digit each for
//! the status' index, whether the parent is remote and the line's level;
//! and the slow threshold the call crossed (16, 0 for none).
//!
//! The caller copies little and escapes nothing of its own: the worker
//! looks the operation, code location and fixed messages up by the site's
//! number. A call whose span and log record both go out is written once:
//! the form is kept in a per-thread buffer, stamped with the call's span
//! ID and end time, and the span's consumer queues it again instead of
//! writing it a second time.

use std::cell::RefCell;

use serde::de::DeserializeSeed;
use tracing_core::Level;

use super::fill::{Attributes, Flatten, Text};
use super::resource::{fixed_hex, hex_id};
use crate::base::Status;
use crate::base::json;
use crate::correlation::TraceContext;
use crate::log::{LEVELS, level_index};
use crate::record::{CallRecord, SiteInfo};

/// Most capacity the per-thread form keeps between calls.
const MAX_KEPT_BYTES: usize = 64 * 1024;

/// Bytes of the fixed-width part.
pub(crate) const FIXED: usize = 32 + 4 * 16 + 8 + 3 + 16;

/// A status' or a level's digit in the fixed part: its index, as the
/// worker reads it back through `Status::ALL` or `LEVELS`.
const DIGITS: &[u8; 10] = b"0123456789";
const _: () = assert!(Status::ALL.len() <= DIGITS.len() && LEVELS.len() <= DIGITS.len());

/// How much of a failed call's message a form may hold.
#[derive(Debug, Clone, Copy)]
pub(crate) enum MessageRoom {
    /// As much as a rendered context value: a span's.
    Field,
    /// At most this many escaped bytes: a log record's, bounded by what its
    /// JSON line could hold.
    Bytes(usize),
}

/// Appends the correlation ID and the space after it; returns the call's
/// trace, as the JSON line's writer gets it, so both name the same trace,
/// even for a call outside every scope.
pub(crate) fn write_head(out: &mut String, call: &CallRecord<'_>) -> TraceContext {
    let trace = call.write_correlation_id(out);
    out.push(' ');
    trace
}

/// Appends the fixed part and the tail of `call` in `trace` (after
/// [`write_head`]); returns how many escaped bytes of the message were
/// cut to `room`.
pub(crate) fn write_rest(
    out: &mut String,
    call: &CallRecord<'_>,
    trace: &TraceContext,
    room: MessageRoom,
) -> usize {
    json::write_hex32(out, trace.trace_id);
    json::write_hex16(out, call.span_id());
    let (parent, remote) = call.parent_in(trace);
    json::write_hex16(out, parent);
    json::write_hex16(out, call.start_unix_nanos());
    json::write_hex16(out, call.duration_nanos());
    json::write_hex8(out, call.site_number());
    let status = call.status();
    json::push_ascii(
        out,
        &[
            DIGITS[status.index()],
            b"01"[usize::from(remote)],
            DIGITS[level_index(call.level())],
        ],
    );
    json::write_hex16(out, call.slow_threshold_ns.unwrap_or(0));
    let failed = matches!(status, Status::Error | Status::Panic);
    let context = call.context_json();
    if !failed && call.error().is_none() && context.is_empty() {
        return 0;
    }
    let mut cut = 0;
    let mut sep = '{';
    if failed {
        out.push_str("{\"m\":");
        // Bounded and masked like the line's own message.
        cut = match room {
            MessageRoom::Field => {
                crate::log::write_context_value(out, call.message());
                0
            }
            MessageRoom::Bytes(n) => crate::log::write_rendered(out, call.message(), n),
        };
        sep = ',';
    }
    if let Some(e) = call.error() {
        out.push(sep);
        out.push_str("\"x\":");
        json::write_escaped(out, e.type_name());
        sep = ',';
    }
    if !context.is_empty() {
        out.push(sep);
        out.push_str("\"c\":{");
        out.push_str(context);
        out.push('}');
    }
    out.push('}');
    cut
}

/// This thread's last written form, and which call it is of.
struct Kept {
    form: String,
    /// The call's span ID and end time; `None` while `form` is of no call.
    of: Option<(u64, u64)>,
    trace: TraceContext,
}

impl Kept {
    const EMPTY: Self = Self {
        form: String::new(),
        of: None,
        trace: TraceContext {
            trace_id: 0,
            parent_span: 0,
            flags: 0,
        },
    };

    /// Gives back the memory of an outlier form (a call with a huge
    /// context), as the line writer's buffers do: forms of ordinary calls
    /// stay far below this.
    fn trim(&mut self) {
        if self.form.capacity() > MAX_KEPT_BYTES {
            self.form = String::new();
            self.of = None;
        }
    }

    /// Writes `call`'s head over the form; returns its trace.
    fn restart(&mut self, call: &CallRecord<'_>) -> TraceContext {
        self.form.clear();
        self.of = None;
        self.trace = write_head(&mut self.form, call);
        self.trace
    }
}

thread_local! {
    /// A call costs no allocation once the buffer has grown to the longest
    /// form.
    static KEPT: RefCell<Kept> = const { RefCell::new(Kept::EMPTY) };
}

/// What tells a call's form from another's: its span ID (random, and
/// never 0 for a call that gets a form) and end time.
fn stamp(call: &CallRecord<'_>) -> (u64, u64) {
    (call.span_id(), call.end_unix_nanos())
}

/// Runs `f` on this thread's kept form, or on a fresh one when it is in
/// use (a call finished inside another's formatting: an error's `Display`
/// running a monitored call) or gone (a thread-local's destructor).
fn with_kept<R>(mut f: impl FnMut(&mut Kept) -> R) -> R {
    KEPT.try_with(|k| k.try_borrow_mut().ok().map(|mut k| f(&mut k)))
        .ok()
        .flatten()
        .unwrap_or_else(|| {
            let mut fresh = Kept::EMPTY;
            f(&mut fresh)
        })
}

/// Writes `call`'s form with its message bounded to `room` bytes and hands
/// it to `queue`, unless the message was cut or the form is longer than
/// `room`: then nothing is queued and `false` returned. A form whose
/// message is whole is kept for the span of the same call, even when it
/// was refused for its length (the error's `Display` then runs once more,
/// for the JSON line, not twice). One with its message cut is not: a span
/// holds its message to a context field's limit, not to a log line's room.
///
/// A call without a span ID (one that started while nothing could log,
/// and whose line a filter changed since let through) is refused too: a
/// log record names its span, and its JSON line says it has none.
pub(crate) fn queue_logged(
    call: &CallRecord<'_>,
    room: usize,
    mut queue: impl FnMut(&str),
) -> bool {
    if call.span_id() == 0 || call.context_json().len() > room {
        return false;
    }
    with_kept(|k| {
        let trace = k.restart(call);
        let cut = write_rest(&mut k.form, call, &trace, MessageRoom::Bytes(room));
        k.of = (cut == 0).then(|| stamp(call));
        let fits = cut == 0 && k.form.len() <= room;
        if fits {
            queue(&k.form);
        }
        k.trim();
        fits
    })
}

/// Hands `call`'s form to `queue` if `wanted` says yes to its trace: the
/// form kept by [`queue_logged`] when it is this call's, else one written
/// now (the correlation ID first, so a trace `wanted` refuses costs no
/// more). A call without a span ID has no span.
pub(crate) fn queue_traced(
    call: &CallRecord<'_>,
    mut wanted: impl FnMut(&TraceContext) -> bool,
    mut queue: impl FnMut(&str),
) {
    if call.span_id() == 0 {
        return;
    }
    with_kept(|k| {
        if k.of == Some(stamp(call)) {
            if wanted(&k.trace) {
                queue(&k.form);
            }
            return;
        }
        let trace = k.restart(call);
        if wanted(&trace) {
            write_rest(&mut k.form, call, &trace, MessageRoom::Field);
            queue(&k.form);
            k.of = Some(stamp(call));
        }
        k.trim();
    });
}

/// A queued form, read back.
#[derive(Debug)]
pub(crate) struct CallLine<'a> {
    /// The correlation ID.
    pub(crate) id: &'a str,
    pub(crate) trace: [u8; 16],
    pub(crate) span: [u8; 8],
    /// 0 for none.
    pub(crate) parent: u64,
    /// The parent's 16 hex digits.
    pub(crate) parent_hex: &'a str,
    pub(crate) start: u64,
    pub(crate) duration: u64,
    pub(crate) site: SiteInfo,
    pub(crate) status: Status,
    /// Whether the parent is the inbound `traceparent`'s span.
    pub(crate) remote: bool,
    pub(crate) level: Level,
    /// The slow threshold the call crossed, in ns; 0 for none.
    pub(crate) threshold: u64,
    /// The JSON tail; empty for none.
    pub(crate) tail: &'a [u8],
}

impl<'a> CallLine<'a> {
    /// Reads `form` (without its `S` or `L`), looking its site up in
    /// `sites` (caught up when the form names one past its end); `None`
    /// if it is not a call's form.
    pub(crate) fn read(form: &'a [u8], sites: &mut Vec<SiteInfo>) -> Option<Self> {
        let space = memchr::memchr(b' ', form)?;
        let (id, rest) = (&form[..space], &form[space + 1..]);
        let (fixed, tail) = rest.split_at_checked(FIXED)?;
        let field = |at: usize, len: usize| &fixed[at..at + len];
        let number = |at: usize| fixed_hex(field(at, 16), 16).and_then(|v| u64::try_from(v).ok());
        let digit = |at: usize, of: usize| {
            fixed[at]
                .checked_sub(b'0')
                .map(usize::from)
                .filter(|d| *d < of)
        };
        let remote = match fixed[105] {
            b'0' => false,
            b'1' => true,
            _ => return None,
        };
        let site = fixed_hex(field(96, 8), 8).and_then(|v| u32::try_from(v).ok())?;
        Some(Self {
            id: std::str::from_utf8(id).ok()?,
            trace: hex_id::<16>(field(0, 32))?,
            span: hex_id::<8>(field(32, 16))?,
            parent: number(48)?,
            // Read as a number above, so ASCII.
            parent_hex: std::str::from_utf8(field(48, 16)).ok()?,
            start: number(64)?,
            duration: number(80)?,
            status: Status::ALL[digit(104, Status::ALL.len())?],
            remote,
            level: LEVELS[digit(106, LEVELS.len())?],
            threshold: number(107)?,
            site: site_at(sites, site)?,
            tail,
        })
    }

    /// The end time, in Unix ns.
    pub(crate) fn end(&self) -> u64 {
        self.start.saturating_add(self.duration)
    }

    /// Reads the tail into `attrs` (the error type as `error_key`, the
    /// context members behind `context_prefix`); returns the message it
    /// holds, if any. `None` if the tail does not read.
    pub(crate) fn read_tail(
        &self,
        attrs: &mut Attributes<'_>,
        error_key: &'static str,
        context_prefix: &'static str,
    ) -> Option<Option<Text<'a>>> {
        let mut message = None;
        if self.tail.is_empty() {
            return Some(message);
        }
        let mut de = serde_json::Deserializer::from_slice(self.tail);
        TailSeed {
            attrs,
            message: &mut message,
            error_key,
            context_prefix,
        }
        .deserialize(&mut de)
        .ok()?;
        de.end().ok()?;
        Some(message)
    }
}

/// The site `number` of `sites`, catching up once if it is past the end.
fn site_at(sites: &mut Vec<SiteInfo>, number: u32) -> Option<SiteInfo> {
    let at = usize::try_from(number).ok()?;
    if at >= sites.len() {
        crate::record::catch_up_sites(sites);
    }
    sites.get(at).copied()
}

/// Reads a form's JSON tail: its message, error type and context members.
struct TailSeed<'a, 'b, 'de> {
    attrs: &'a mut Attributes<'b>,
    message: &'a mut Option<Text<'de>>,
    error_key: &'static str,
    context_prefix: &'static str,
}

impl<'de> DeserializeSeed<'de> for TailSeed<'_, '_, 'de> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for TailSeed<'_, '_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a queued call's message, error type and context")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<Text<'de>>()? {
            match &*key {
                "m" => *self.message = Some(map.next_value()?),
                "x" => self
                    .attrs
                    .str(self.error_key, &map.next_value::<Text<'de>>()?),
                "c" => map.next_value_seed(Flatten {
                    prefix: self.context_prefix,
                    into: self.attrs,
                })?,
                _ => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// The fixed messages of the `db.query` sites the tests number.
#[cfg(test)]
pub(crate) static TEST_MESSAGES: crate::operation::Messages = [
    "\"db.query completed\"",
    "\"db.query panicked\"",
    "\"db.query cancelled\"",
    "\"db.query slow\"",
];
