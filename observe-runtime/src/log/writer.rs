//! The JSON line writer: one path from a line's parts to its text, shared by
//! call records and ordinary `tracing` events.

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::ops::Range;
use std::sync::Arc;

use tracing_core::{Event, Level};

use super::timestamp;
use super::visitor::Fields;
use super::{JsonLine, Sink};
use crate::base::json;
use crate::correlation;
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
    /// The message as a JSON string, quotes included.
    fn message(&self, out: &mut String);
    fn correlation_id(&self, out: &mut String);
    /// The members of the `context` object.
    fn context(&self, out: &mut String);
    /// The members of the `performance` object.
    fn performance(&self, out: &mut String);
}

/// A finished call's line.
struct CallParts<'r, 'a>(&'r CallRecord<'a>);

impl Parts for CallParts<'_, '_> {
    fn level(&self) -> Level {
        self.0.level()
    }

    fn at_nanos(&self) -> u64 {
        self.0.end_unix_nanos()
    }

    fn message(&self, out: &mut String) {
        match self.0.quoted_message() {
            Some(quoted) => out.push_str(quoted),
            None => write_display(out, self.0.message()),
        }
    }

    fn correlation_id(&self, out: &mut String) {
        self.0.write_correlation_id(out);
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

    fn message(&self, out: &mut String) {
        if self.fields.message.is_empty() {
            out.push_str("\"\"");
        } else {
            out.push_str(&self.fields.message);
        }
    }

    fn correlation_id(&self, out: &mut String) {
        correlation::write_current_or_fresh_at(out, self.at_nanos);
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
    pub(crate) fn new(service: &str, sink: Arc<dyn Sink>, max_line_bytes: usize) -> Self {
        let mut service_json = String::new();
        json::write_escaped(&mut service_json, service);
        let middles = [
            Level::TRACE,
            Level::DEBUG,
            Level::INFO,
            Level::WARN,
            Level::ERROR,
        ]
        .map(|level| {
            format!(
                "\",\"level\":\"{}\",\"service\":{service_json},\"message\":",
                level_name(level)
            )
        });
        Self {
            middles,
            service: service.into(),
            sink,
            max_line_bytes,
        }
    }

    fn middle(&self, level: Level) -> &str {
        let i = match level {
            Level::TRACE => 0,
            Level::DEBUG => 1,
            Level::INFO => 2,
            Level::WARN => 3,
            Level::ERROR => 4,
        };
        &self.middles[i]
    }

    /// Writes an ordinary event's line.
    pub(crate) fn write_event(&self, event: &Event<'_>) {
        with_buffers(|buf| {
            buf.fields.visit(event);
            let parts = EventParts {
                level: *event.metadata().level(),
                at_nanos: crate::base::clock::unix_nanos(),
                fields: &buf.fields,
            };
            self.write(&parts, &mut buf.line, &mut buf.cut);
        });
    }

    /// Writes a finished call's line.
    pub(crate) fn write_call(&self, call: &CallRecord<'_>) {
        with_buffers(|buf| self.write(&CallParts(call), &mut buf.line, &mut buf.cut));
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
        if line.len() > self.max_line_bytes {
            self.truncate(line, middle, parts, &written, cut);
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
        let original = line.len();
        let mut context = String::from("\"truncated\":true,\"original_bytes\":");
        json::write_u64(&mut context, original as u64);
        // Room left for the message once everything else is written.
        let fixed = original - written.message.len() - written.context + context.len() + 16;
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
            |out| out.push_str(cut),
            |out| {
                out.push_str(&context);
            },
        );
    }
}

/// Where a line's message stands, and how long its context members are.
struct Written {
    message: Range<usize>,
    context: usize,
}

/// Writes the whole line: the parts' time, level, correlation ID and
/// performance members, and the given message and context members.
fn write_line(
    line: &mut String,
    middle: &str,
    parts: &impl Parts,
    message: impl FnOnce(&mut String),
    context: impl FnOnce(&mut String),
) -> Written {
    line.clear();
    line.push_str("{\"timestamp\":\"");
    timestamp::write_unix_nanos(line, parts.at_nanos());
    line.push_str(middle);
    let message_start = line.len();
    message(line);
    let message_end = line.len();
    line.push_str(",\"correlation_id\":\"");
    parts.correlation_id(line);
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
    }
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::TRACE => "TRACE",
        Level::DEBUG => "DEBUG",
        Level::INFO => "INFO",
        Level::WARN => "WARN",
        Level::ERROR => "ERROR",
    }
}

/// A value rendered through `Display`, as an escaped JSON string.
pub(super) fn write_display(out: &mut String, value: impl fmt::Display) {
    out.push('"');
    let _ = write!(json::Escaper(out), "{value}");
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
    use super::write_millis;

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
