//! The JSON line writer: one path from a line's parts to its text, shared by
//! call records and ordinary `tracing` events.

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tracing_core::{Event, Level};

use super::layer::DEFAULT_MAX_LINE_BYTES;
use super::redact::mask_escaped;
use super::timestamp;
use super::visitor::Fields;
use super::{JsonLine, Sink, redactor};
use crate::base::json;
use crate::correlation::{self, TraceContext};
use crate::record::{CallConsumer, CallRecord};

/// Writes lines of one service to one sink.
#[derive(Debug, Clone)]
pub(crate) struct LineWriter {
    /// Per level, what follows the timestamp up to the message:
    /// `","level":"INFO","service":"svc","message":` (one copy per line).
    middles: [String; 5],
    /// The service, for sinks that file lines by it.
    service: Arc<str>,
    pub(crate) sink: Arc<dyn Sink>,
    pub(crate) max_line_bytes: usize,
}

/// What one line holds besides its fixed members, written straight into
/// the line.
trait Parts {
    fn level(&self) -> Level;
    /// The line's time, in Unix nanoseconds.
    fn at_nanos(&self) -> u64;
    /// The message as a JSON string, quotes included. Returns how many
    /// (escaped) bytes of the line's values were cut while being written,
    /// so a truncated line can say how long it would have been.
    fn message(&self, out: &mut String) -> usize;
    /// Writes the correlation ID; returns its trace.
    fn correlation_id(&self, out: &mut String) -> TraceContext;
    /// The line's span and its parent (0: none), given the request's
    /// trace.
    fn spans(&self, trace: &TraceContext) -> (u64, u64);
    /// The members of the `context` object.
    fn context(&self, out: &mut String);
    /// The members of the `performance` object.
    fn performance(&self, out: &mut String);
}

/// A finished call's line, and the line cap its error text is bounded by.
struct CallParts<'r, 'a>(&'r CallRecord<'a>, usize);

impl Parts for CallParts<'_, '_> {
    fn level(&self) -> Level {
        self.0.level()
    }

    fn at_nanos(&self) -> u64 {
        self.0.end_unix_nanos()
    }

    fn message(&self, out: &mut String) -> usize {
        match self.0.quoted_message() {
            Some(quoted) => {
                out.push_str(quoted);
                0
            }
            // `"{op} failed: {error}"`: the error text is the caller's, so
            // it is bounded and masked like any rendered value.
            None => write_rendered(out, self.0.message(), self.1.saturating_add(CUT_MARGIN)),
        }
    }

    fn correlation_id(&self, out: &mut String) -> TraceContext {
        self.0.write_correlation_id(out)
    }

    fn spans(&self, trace: &TraceContext) -> (u64, u64) {
        (self.0.span_id(), self.0.parent_in(trace).0)
    }

    fn context(&self, out: &mut String) {
        let members = self.0.context_json();
        if let Some(e) = self.0.error() {
            // The guard's own key: needs no escaping.
            out.push_str("\"error_type\":");
            json::write_escaped(out, e.type_name());
            if !members.is_empty() {
                out.push(',');
            }
        }
        out.push_str(members);
    }

    /// `operation`, `status`, `duration_ms`, `threshold_ms`, with fixed
    /// keys and punctuation as whole pieces.
    fn performance(&self, out: &mut String) {
        out.push_str("\"operation\":\"");
        // Checked at compile time to need no escaping.
        out.push_str(self.0.operation());
        out.push_str("\",\"status\":\"");
        out.push_str(self.0.status().as_str());
        out.push_str("\",\"duration_ms\":");
        write_millis(out, self.0.duration_nanos());
        if let Some(t) = self.0.slow_threshold() {
            out.push_str(",\"threshold_ms\":");
            write_millis(out, u64::try_from(t.as_nanos()).unwrap_or(u64::MAX));
        }
    }
}

/// An ordinary event's line, from its visited fields.
struct EventParts<'a> {
    level: Level,
    at_nanos: u64,
    fields: &'a Fields,
}

impl Parts for EventParts<'_> {
    fn level(&self) -> Level {
        self.level
    }

    fn at_nanos(&self) -> u64 {
        self.at_nanos
    }

    fn message(&self, out: &mut String) -> usize {
        if self.fields.message.is_empty() {
            out.push_str("\"\"");
        } else {
            out.push_str(&self.fields.message);
        }
        self.fields.dropped
    }

    fn correlation_id(&self, out: &mut String) -> TraceContext {
        correlation::write_current_or_fresh_at(out, self.at_nanos)
    }

    /// An event's span is the monitored call it happens in; its parent is
    /// that call's, not written.
    fn spans(&self, _trace: &TraceContext) -> (u64, u64) {
        (correlation::span::current(), 0)
    }

    fn context(&self, out: &mut String) {
        out.push_str(&self.fields.context);
    }

    fn performance(&self, _: &mut String) {}
}

/// Per-thread scratch space, reused so a line costs no allocation once
/// the buffers have grown.
struct Buffers {
    line: String,
    /// An ordinary event's fields.
    fields: Fields,
    /// A cut line's message.
    cut: String,
}

impl Buffers {
    const EMPTY: Self = Self {
        line: String::new(),
        fields: Fields::EMPTY,
        cut: String::new(),
    };

    /// Gives back the memory of an outlier line: a buffer that grew past
    /// [`retained_bytes`] is emptied and released, so one huge line does
    /// not pin its size in every thread that ever logged one.
    #[inline]
    fn trim(&mut self, max_line_bytes: usize) {
        // Every line pays this check: four loads and compares, no loop.
        let largest = self
            .line
            .capacity()
            .max(self.cut.capacity())
            .max(self.fields.message.capacity())
            .max(self.fields.context.capacity());
        if largest > retained_bytes(max_line_bytes) {
            self.release(retained_bytes(max_line_bytes));
        }
    }

    #[cold]
    #[inline(never)]
    fn release(&mut self, keep: usize) {
        for buf in [
            &mut self.line,
            &mut self.cut,
            &mut self.fields.message,
            &mut self.fields.context,
        ] {
            if buf.capacity() > keep {
                buf.clear();
                buf.shrink_to(0);
            }
        }
    }
}

/// The most capacity a per-thread buffer keeps between lines: 64 KiB, or
/// twice the line cap when that is larger. Ordinary lines (up to the cap,
/// plus a cut field's margin) never reach it, so they never reallocate.
pub(super) fn retained_bytes(max_line_bytes: usize) -> usize {
    (64 * 1024).max(max_line_bytes.saturating_mul(2))
}

thread_local! {
    // Const-initialised, so no access checks a lazy-init state.
    static BUFFERS: RefCell<Buffers> = const { RefCell::new(Buffers::EMPTY) };
}

/// Runs `f` on this thread's buffers. A sink that itself logs re-enters
/// here, and a thread-local's destructor may log after the buffers are
/// gone: both get fresh buffers rather than a panic (which would abort the
/// process).
fn with_buffers(f: impl FnOnce(&mut Buffers)) {
    let mut f = Some(f);
    let _ = BUFFERS.try_with(|b| {
        if let Ok(mut buf) = b.try_borrow_mut() {
            if let Some(f) = f.take() {
                f(&mut buf);
            }
        }
    });
    if let Some(f) = f {
        let mut fresh = Buffers::EMPTY;
        f(&mut fresh);
    }
}

impl LineWriter {
    /// Changes the line cap. Context values are rendered before it is
    /// known which writer gets their line, so they are bounded by the
    /// largest cap of any writer: it grows with this one.
    pub(crate) fn set_max_line_bytes(&mut self, bytes: usize) {
        self.max_line_bytes = bytes;
        FIELD_LIMIT.fetch_max(bytes, Ordering::Relaxed);
    }

    pub(crate) fn new(service: &str, sink: Arc<dyn Sink>, max_line_bytes: usize) -> Self {
        let mut service_json = String::new();
        json::write_escaped(&mut service_json, service);
        let middles = LEVELS.map(|level| {
            format!(
                "\",\"level\":\"{}\",\"service\":{service_json},\"message\":",
                level.as_str()
            )
        });
        FIELD_LIMIT.fetch_max(max_line_bytes, Ordering::Relaxed);
        Self {
            middles,
            service: service.into(),
            sink,
            max_line_bytes,
        }
    }

    fn middle(&self, level: Level) -> &str {
        &self.middles[level_index(level)]
    }

    /// Writes an ordinary event's line.
    pub(crate) fn write_event(&self, event: &Event<'_>) {
        with_buffers(|buf| {
            buf.fields.visit(event, self.max_line_bytes);
            let parts = EventParts {
                level: *event.metadata().level(),
                at_nanos: crate::base::clock::unix_nanos(),
                fields: &buf.fields,
            };
            self.write(&parts, &mut buf.line, &mut buf.cut);
            buf.trim(self.max_line_bytes);
        });
    }

    /// Writes a finished call's line, or hands the call to a sink that
    /// takes calls as they are (unless lines are being held, which needs
    /// their text).
    pub(crate) fn write_call(&self, call: &CallRecord<'_>) {
        if !super::hold::enabled() {
            let frame =
                CALL_FRAME_BYTES + self.middle(call.level()).len() + 2 * call.operation().len();
            let room = self.max_line_bytes.saturating_sub(frame);
            if self.sink.write_call(call, room, super::sink::INTERNAL) {
                return;
            }
        }
        with_buffers(|buf| {
            let parts = CallParts(call, self.max_line_bytes);
            self.write(&parts, &mut buf.line, &mut buf.cut);
            buf.trim(self.max_line_bytes);
        });
    }

    /// The one way a line is made and handed to the sink.
    fn write(&self, parts: &impl Parts, line: &mut String, cut: &mut String) {
        let middle = self.middle(parts.level());
        let written = write_line(
            line,
            middle,
            parts,
            |out| parts.message(out),
            |out| {
                parts.context(out);
            },
        );
        if line.len() > self.max_line_bytes || written.dropped > 0 {
            self.truncate(line, middle, parts, &written, cut);
        }
        // Held while a request that holds is running: one load otherwise.
        if super::hold::enabled()
            && super::hold::hold(
                line,
                parts.at_nanos(),
                parts.level(),
                &self.sink,
                &self.service,
            )
        {
            return;
        }
        self.sink
            .write_json_line(JsonLine::written(line, parts.at_nanos(), &self.service));
    }

    /// Rewrites an over-long `line`: its context becomes
    /// `{"truncated":true,"original_bytes":N}` and its message is cut where
    /// no character or escape sequence is split; the rest stays whole.
    fn truncate(
        &self,
        line: &mut String,
        middle: &str,
        parts: &impl Parts,
        written: &Written,
        cut: &mut String,
    ) {
        // What was cut while written counts: this is the line's length had
        // nothing been cut (a lower bound past `json::MEASURED_BYTES`).
        let original = line.len().saturating_add(written.dropped);
        let mut context = String::from("\"truncated\":true,\"original_bytes\":");
        json::write_u64(&mut context, original as u64);
        // Room left for the message once everything else is written.
        let fixed = line.len() - written.message.len() - written.context + context.len() + 16;
        let room = self.max_line_bytes.saturating_sub(fixed);
        // The message is already escaped: cut it where no character or
        // escape sequence is split.
        let inner = line[written.message.clone()]
            .strip_prefix('"')
            .and_then(|m| m.strip_suffix('"'))
            .unwrap_or("");
        cut.clear();
        cut.push('"');
        cut.push_str(json::truncate_escaped(inner, room));
        cut.push_str("...\"");
        write_line(
            line,
            middle,
            parts,
            |out| {
                out.push_str(cut);
                0
            },
            |out| {
                out.push_str(&context);
            },
        );
    }
}

/// Where a line's message stands, how long its context members are, and
/// how many bytes of its values were cut while they were written.
struct Written {
    message: Range<usize>,
    context: usize,
    dropped: usize,
}

/// Writes the whole line: the parts' time, level, correlation ID and
/// performance members, and the given message and context members.
fn write_line(
    line: &mut String,
    middle: &str,
    parts: &impl Parts,
    message: impl FnOnce(&mut String) -> usize,
    context: impl FnOnce(&mut String),
) -> Written {
    line.clear();
    line.push_str("{\"timestamp\":\"");
    timestamp::write_unix_nanos(line, parts.at_nanos());
    line.push_str(middle);
    let message_start = line.len();
    let dropped = message(line);
    let message_end = line.len();
    line.push_str(",\"correlation_id\":\"");
    let trace = parts.correlation_id(line);
    line.push_str("\",\"trace_id\":\"");
    json::write_hex32(line, trace.trace_id);
    let (span, parent) = parts.spans(&trace);
    if span != 0 {
        line.push_str("\",\"span_id\":\"");
        json::write_hex16(line, span);
    }
    if parent != 0 {
        line.push_str("\",\"parent_span_id\":\"");
        json::write_hex16(line, parent);
    }
    line.push_str("\",\"context\":{");
    let context_start = line.len();
    context(line);
    let context_len = line.len() - context_start;
    line.push_str("},\"performance\":{");
    parts.performance(line);
    line.push_str("}}\n");
    Written {
        message: message_start..message_end,
        context: context_len,
        dropped,
    }
}

/// The levels, least severe first: what a level's index names.
pub(crate) const LEVELS: [Level; 5] = [
    Level::TRACE,
    Level::DEBUG,
    Level::INFO,
    Level::WARN,
    Level::ERROR,
];

/// `level`'s place in [`LEVELS`].
pub(crate) fn level_index(level: Level) -> usize {
    match level {
        Level::TRACE => 0,
        Level::DEBUG => 1,
        Level::INFO => 2,
        Level::WARN => 3,
        Level::ERROR => 4,
    }
}

/// The most a call's JSON line holds besides the level's middle part,
/// twice the operation name (in a fixed message and in `performance`)
/// and the call's own text (its correlation ID, message, error type and
/// context members): the keys and punctuation of `write_line` and
/// `CallParts` (184 bytes), a timestamp (27), three IDs (64), a status
/// (9), two durations in milliseconds (21 each) and a fixed message's
/// other words and quotes (12), 338 in all, with room to spare.
/// `the_frame_bound_holds_for_the_longest_members` holds it to that.
pub(crate) const CALL_FRAME_BYTES: usize = 448;

/// What a cut value keeps beyond the room left in its line: enough that
/// the line is over its cap (its fixed members are longer than this), so it
/// is truncated and marked as any over-long line is, whatever a cut escape
/// sequence lost.
pub(super) const CUT_MARGIN: usize = 16;

/// The largest line cap of any writer made so far: the bound of values
/// rendered before it is known which writer gets them (a call's
/// `context(..)`, rendered when the call starts).
static FIELD_LIMIT: AtomicUsize = AtomicUsize::new(DEFAULT_MAX_LINE_BYTES);

/// A rendered (`%`/`?`) value or message, as an escaped JSON string: cut
/// while it is formatted once it passes `limit` bytes, and with secret
/// pairs, URL passwords and secret query parameters masked.
///
/// Returns how many escaped bytes were cut.
///
/// The redactor is only consulted after the value is formatted: user code
/// that logs from its `Display` cannot meet a held lock.
pub(crate) fn write_rendered(out: &mut String, value: impl fmt::Display, limit: usize) -> usize {
    out.push('"');
    let start = out.len();
    let mut escaper = json::BoundedEscaper::new(out, limit);
    let _ = write!(escaper, "{value}");
    let dropped = escaper.dropped();
    let redactor = redactor();
    mask_escaped(out, start, |key| redactor.is_secret(key));
    out.push('"');
    dropped
}

/// Appends a call's `context(key = %value)` or `?value` to the context
/// members `out` holds so far, like [`write_rendered`], bounded by what is
/// left of the largest line cap.
///
/// A cut here is not measured into the line's `original_bytes`: the
/// context is rendered long before its line.
pub(crate) fn write_context_value(out: &mut String, value: impl fmt::Display) {
    let room = FIELD_LIMIT
        .load(Ordering::Relaxed)
        .saturating_sub(out.len());
    let _ = write_rendered(out, value, room.saturating_add(CUT_MARGIN));
}

/// Appends a plain string context value (`context(key = value)` with a
/// `&str`, `String`, ...), bounded like [`write_context_value`]: one that
/// fits is escaped as it is, a longer one is cut while it is escaped, so a
/// huge string is never copied whole into the line buffer first. Plain
/// strings are redacted by their key only, as before.
pub(crate) fn write_context_str(out: &mut String, value: &str) {
    let room = FIELD_LIMIT
        .load(Ordering::Relaxed)
        .saturating_sub(out.len())
        .saturating_add(CUT_MARGIN);
    if value.len() <= room {
        json::write_escaped(out, value);
        return;
    }
    out.push('"');
    let mut escaper = json::BoundedEscaper::new(out, room);
    let _ = fmt::Write::write_str(&mut escaper, value);
    out.push('"');
}

/// Appends a duration given in nanoseconds as milliseconds with six
/// decimals (`0.412345`): exact, and far cheaper than float formatting.
fn write_millis(out: &mut String, nanos: u64) {
    let whole = nanos / 1_000_000;
    // Below 10^6, so the narrowing cast is lossless.
    #[allow(clippy::cast_possible_truncation)]
    let frac = json::six_digits((nanos % 1_000_000) as u32);
    if whole < 10 {
        // The common case, a call under 10 ms, is one append.
        let head = (u64::from(b'0') + whole) | (u64::from(b'.') << 8);
        json::push_word(out, head | frac << 16, 8);
    } else {
        json::write_u64(out, whole);
        json::push_word(out, u64::from(b'.') | frac << 8, 7);
    }
}

impl CallConsumer for LineWriter {
    fn on_call(&self, call: &CallRecord<'_>) {
        self.write_call(call);
    }
}

#[cfg(test)]
mod tests {
    use std::fmt;
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::layer::SubscriberExt as _;

    use super::super::{JsonLayer, JsonLine, Sink};
    use super::{BUFFERS, Buffers, json, retained_bytes, write_millis};

    /// Keeps the lines it is handed.
    #[derive(Debug, Default, Clone)]
    struct Lines(Arc<Mutex<Vec<String>>>);

    impl Sink for Lines {
        fn name(&self) -> &str {
            "lines"
        }

        fn write_json_line(&self, line: JsonLine<'_>) {
            self.0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(line.as_str().to_owned());
        }
    }

    /// Logs what `f` logs through a JSON layer capped at `max`, on this
    /// thread, and returns the lines parsed.
    fn logged(max: usize, f: impl FnOnce()) -> Vec<serde_json::Value> {
        let lines = Lines::default();
        let layer = JsonLayer::new("svc")
            .with_sink(lines.clone())
            .with_max_line_bytes(max);
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), f);
        let texts = lines.0.lock().map(|l| l.clone()).unwrap_or_default();
        texts
            .iter()
            .map(|t| {
                assert!(t.len() <= max.max(1024), "{} bytes over the cap", t.len());
                serde_json::from_str(t).unwrap_or_else(|e| panic!("{t}: {e}"))
            })
            .collect()
    }

    /// A `Display` that writes `total` bytes in 10-byte pieces, ignoring
    /// errors as a careless impl would, and counts the bytes accepted.
    struct Flood {
        total: usize,
        accepted: std::cell::Cell<usize>,
    }

    impl Flood {
        fn new(total: usize) -> Self {
            Self {
                total,
                accepted: std::cell::Cell::new(0),
            }
        }
    }

    impl fmt::Display for Flood {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            for _ in 0..self.total / 10 {
                if f.write_str("0123456789").is_ok() {
                    self.accepted.set(self.accepted.get() + 10);
                }
            }
            Ok(())
        }
    }

    fn capacities() -> [usize; 4] {
        BUFFERS.with(|b| {
            let b = b.borrow();
            [
                b.line.capacity(),
                b.cut.capacity(),
                b.fields.message.capacity(),
                b.fields.context.capacity(),
            ]
        })
    }

    #[test]
    fn a_huge_plain_string_context_value_is_cut_while_it_is_escaped() {
        use super::{CUT_MARGIN, FIELD_LIMIT, write_context_str};
        use std::sync::atomic::Ordering;

        let limit = FIELD_LIMIT.load(Ordering::Relaxed);
        let huge = "x".repeat(limit + (8 << 20));
        let mut out = String::new();
        write_context_str(&mut out, &huge);
        assert!(
            out.len() <= limit + CUT_MARGIN + 16,
            "{} bytes for a limit of {limit}",
            out.len()
        );
        assert!(out.starts_with("\"xxx") && out.ends_with('"'));
        let mut small = String::new();
        write_context_str(&mut small, "sensor.kitchen \"a\"");
        assert_eq!(small, r#""sensor.kitchen \"a\"""#);
    }

    #[test]
    fn a_huge_rendered_value_is_cut_while_it_is_formatted() {
        let flood = Flood::new(100_000_000);
        let message = Flood::new(100_000_000);
        let lines = logged(4096, || {
            tracing::info!(big = %flood, "start");
            tracing::info!("{message}");
        });
        // Kept: the cap; measured for `original_bytes`: a bounded stretch
        // more; refused: the rest of the 100 MB.
        for accepted in [flood.accepted.get(), message.accepted.get()] {
            assert!(
                accepted <= 4096 + json::MEASURED_BYTES + 64,
                "{accepted} bytes accepted"
            );
        }
        assert_eq!(lines.len(), 2);
        for line in &lines {
            assert_eq!(line["context"]["truncated"], true, "{line}");
            assert!(line["context"]["original_bytes"].as_u64() > Some(4096));
        }
        assert!(
            lines[1]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("0123456789"))
        );
        assert!(
            capacities().iter().all(|&c| c <= 64 * 1024),
            "{:?}",
            capacities()
        );
    }

    #[test]
    fn buffers_shrink_back_after_an_outlier() {
        let big = "x".repeat(10_000_000);
        let lines = logged(32 * 1024, || {
            tracing::info!(body = big.as_str(), bytes = big.as_bytes(), "{}", big);
            tracing::info!(small = 1, "after");
        });
        assert_eq!(lines[0]["context"]["truncated"], true);
        assert_eq!(lines[1]["message"], "after");
        assert!(
            capacities().iter().all(|&c| c <= 64 * 1024),
            "{:?}",
            capacities()
        );

        // Whatever grows a buffer past what is retained is given back.
        let mut buffers = Buffers::EMPTY;
        buffers.line.reserve(5_000_000);
        buffers.fields.context.reserve(100);
        buffers.trim(32 * 1024);
        assert!(buffers.line.capacity() <= retained_bytes(32 * 1024));
        assert!(buffers.fields.context.capacity() >= 100);
        assert_eq!(retained_bytes(32 * 1024), 64 * 1024);
        assert_eq!(retained_bytes(1 << 20), 2 << 20);
    }

    #[test]
    fn rendered_values_and_messages_are_masked() {
        #[derive(Debug)]
        #[allow(dead_code)]
        struct Login {
            user: &'static str,
            password: &'static str,
        }
        let login = Login {
            user: "a",
            password: "hunter2",
        };
        let lines = logged(32 * 1024, || {
            tracing::info!(req = ?login, url = %"https://u:pa55@h/?access_token=t0k&x=1", "dsn=postgres://u:pw@db token: abc");
            tracing::info!(privateKey = "k", session_id = 7, entity = "e", "plain");
        });
        let text = lines[0].to_string();
        for leak in ["hunter2", "pa55", "t0k", "pw@", "abc"] {
            assert!(!text.contains(leak), "{leak} in {text}");
        }
        assert_eq!(
            lines[0]["context"]["req"],
            "Login { user: \"a\", password: \"[REDACTED]\" }"
        );
        assert_eq!(lines[1]["context"]["privateKey"], "[REDACTED]");
        assert_eq!(lines[1]["context"]["session_id"], "[REDACTED]");
        assert_eq!(lines[1]["context"]["entity"], "e");
    }

    #[test]
    fn millis_are_exact_decimals() {
        for (nanos, text) in [
            (0, "0.000000"),
            (412_345, "0.412345"),
            (1_000_000, "1.000000"),
            (31_406_475, "31.406475"),
            (u64::MAX, "18446744073709.551615"),
        ] {
            let mut s = String::new();
            write_millis(&mut s, nanos);
            assert_eq!(s, text);
            assert!(serde_json::from_str::<f64>(&s).is_ok());
        }
    }
}

#[cfg(test)]
mod call_sinks {
    use std::sync::{Arc, Mutex, PoisonError};

    use tracing_core::Metadata;
    use tracing_core::callsite::DefaultCallsite;

    use super::super::sink::{FanOut, Internal};
    use super::super::{JsonLine, Sink};
    use super::{CALL_FRAME_BYTES, LineWriter};
    use crate::base::Status;
    use crate::record::{CallRecord, Message};

    static META: Metadata<'static> = tracing_core::metadata!(
        name: "call sinks test",
        target: "app",
        level: tracing_core::Level::INFO,
        fields: &[],
        callsite: &CALLSITE,
        kind: tracing_core::metadata::Kind::EVENT,
    );
    static CALLSITE: DefaultCallsite = DefaultCallsite::new(&META);
    #[cfg(feature = "otlp")]
    static SITE: crate::record::SiteNumber = crate::record::SiteNumber::new();

    fn call() -> CallRecord<'static> {
        CallRecord {
            meta: &META,
            operation: "op",
            #[cfg(feature = "otlp")]
            site: &SITE,
            #[cfg(feature = "otlp")]
            messages: &["\"op completed\"", "", "", ""],
            status: Status::Success,
            message: Message::Fixed {
                text: "op completed",
                quoted: "\"op completed\"",
            },
            duration_ns: 1,
            end_unix_nanos: 1_764_465_729_000_000_000,
            error: None,
            context: None,
            slow_threshold_ns: None,
            span: 7,
            parent_span: 0,
            logged: true,
            trace: std::cell::Cell::new(None),
        }
    }

    /// Takes calls as they are (or refuses them), keeping the room each
    /// was offered, and keeps the JSON lines it is handed.
    #[derive(Debug, Clone)]
    struct Takes {
        take: bool,
        rooms: Arc<Mutex<Vec<usize>>>,
        lines: Arc<Mutex<Vec<String>>>,
    }

    impl Takes {
        fn new(take: bool) -> Self {
            Self {
                take,
                rooms: Arc::default(),
                lines: Arc::default(),
            }
        }

        fn seen(&self) -> (Vec<usize>, usize) {
            let rooms = self.rooms.lock().unwrap_or_else(PoisonError::into_inner);
            let lines = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
            (rooms.clone(), lines.len())
        }
    }

    impl Sink for Takes {
        fn name(&self) -> &str {
            "takes"
        }

        fn write_json_line(&self, line: JsonLine<'_>) {
            self.lines
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(line.as_str().to_owned());
        }

        fn write_call(&self, _: &CallRecord<'_>, room: usize, _: Internal) -> bool {
            self.rooms
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(room);
            self.take
        }
    }

    #[test]
    fn a_sink_that_takes_calls_gets_them_instead_of_json_lines() {
        let max = 4096;
        let middle = r#"","level":"INFO","service":"svc","message":"#.len();
        let room = max - CALL_FRAME_BYTES - middle - 2 * "op".len();
        for (take, lines) in [(true, 0), (false, 1)] {
            let sink = Takes::new(take);
            let writer = LineWriter::new("svc", Arc::new(sink.clone()), max);
            writer.write_call(&call());
            assert_eq!(sink.seen(), (vec![room], lines), "take: {take}");
        }
        // A fan-out takes no calls: its sinks get the JSON line.
        let sink = Takes::new(true);
        let fan = FanOut::new(vec![Arc::new(sink.clone())]);
        LineWriter::new("svc", Arc::new(fan), max).write_call(&call());
        assert_eq!(sink.seen(), (vec![], 1));
    }
}
