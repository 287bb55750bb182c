//! The `tracing_subscriber::Layer` that turns events into JSON lines.

use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;

use tracing_core::field::{Field, Visit};
use tracing_core::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

use super::prepared::{self, LayerCount, write_millis};
use super::{REDACTED, json, redactor, timestamp};
use crate::correlation;
use crate::sink::{JsonLine, Sink, StdoutSink};

/// Default cap on one line's length, in bytes; collectors commonly split
/// or refuse lines past 64 KiB.
pub const DEFAULT_MAX_LINE_BYTES: usize = 32 * 1024;

/// Formats every event as one JSON line of the observe schema and hands it
/// to a [`Sink`].
///
/// ```
/// use observe_runtime::log::JsonLayer;
/// use observe_runtime::sink::CaptureSink;
/// use tracing_subscriber::layer::SubscriberExt;
///
/// let capture = CaptureSink::new();
/// let subscriber = tracing_subscriber::registry()
///     .with(JsonLayer::new("billing").with_sink(capture.clone()));
/// tracing::subscriber::with_default(subscriber, || {
///     tracing::info!(invoice = 42, "invoice sent");
/// });
/// let line: serde_json::Value = serde_json::from_str(&capture.lines()[0]).unwrap();
/// assert_eq!(line["service"], "billing");
/// assert_eq!(line["message"], "invoice sent");
/// assert_eq!(line["context"]["invoice"], 42);
/// ```
#[derive(Debug, Clone)]
pub struct JsonLayer {
    /// Per level, what follows the timestamp up to the message:
    /// `","level":"INFO","service":"svc","message":` (one copy per line).
    middles: Arc<[String; 5]>,
    /// Handed to the sink with each line.
    service: Arc<str>,
    sink: Arc<dyn Sink>,
    max_line_bytes: usize,
    /// Tells monitored calls that a layer can use their prepared members.
    _count: LayerCount,
}

impl JsonLayer {
    /// A layer for `service` writing to standard output.
    #[must_use]
    pub fn new(service: &str) -> Self {
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
            middles: Arc::new(middles),
            service: service.into(),
            sink: Arc::new(StdoutSink),
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            _count: LayerCount::new(),
        }
    }

    /// Sends lines to `sink` instead of standard output.
    #[must_use]
    pub fn with_sink(mut self, sink: impl Sink) -> Self {
        self.sink = Arc::new(sink);
        self
    }

    /// Sends lines to a shared sink.
    #[must_use]
    pub fn with_shared_sink(mut self, sink: Arc<dyn Sink>) -> Self {
        self.sink = sink;
        self
    }

    /// Caps each line at `bytes` (at least 1024); longer lines keep their
    /// schema but have their message cut and their context replaced by
    /// `{"truncated":true,"original_bytes":N}`.
    #[must_use]
    pub fn with_max_line_bytes(mut self, bytes: usize) -> Self {
        self.max_line_bytes = bytes.max(1024);
        self
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

    /// The sink lines go to.
    #[must_use]
    pub fn sink(&self) -> &Arc<dyn Sink> {
        &self.sink
    }

    /// Formats `event` into `buf`, which the caller has cleared; returns
    /// the line's time.
    fn format(&self, event: &Event<'_>, buf: &mut Buffers) -> u64 {
        let meta = event.metadata();
        let level = *meta.level();
        // An operation event whose members its guard prepared (they are
        // keyed by the event's metadata, which only that guard dispatches):
        // written straight from them, with no visit and no intermediate
        // copy.
        if let Some(at_nanos) = prepared::with(meta, |p| {
            write_line(
                &mut buf.line,
                self.middle(level),
                p.at_nanos,
                p.message(),
                &p.context,
                |out| p.performance.write_members(out),
            );
            if buf.line.len() > self.max_line_bytes {
                buf.message.push_str(p.message());
                buf.context.push_str(&p.context);
                p.performance.write_members(&mut buf.performance);
                self.truncate_buffers(buf, level, p.at_nanos);
            }
            p.at_nanos
        }) {
            return at_nanos;
        }
        let ours = crate::operation::is_emitting(meta);
        event.record(&mut Visitor {
            buf: &mut *buf,
            ours,
        });
        let at_nanos = crate::clock::unix_nanos();
        write_line(
            &mut buf.line,
            self.middle(level),
            at_nanos,
            &buf.message,
            &buf.context,
            |out| out.push_str(&buf.performance),
        );
        if buf.line.len() > self.max_line_bytes {
            self.truncate_buffers(buf, level, at_nanos);
        }
        at_nanos
    }

    fn truncate_buffers(&self, buf: &mut Buffers, level: Level, at_nanos: u64) {
        let Buffers {
            line,
            message,
            context,
            performance,
        } = buf;
        self.truncate(line, level, at_nanos, message, context, performance);
    }

    fn truncate(
        &self,
        line: &mut String,
        level: Level,
        at_nanos: u64,
        message: &mut String,
        context: &mut String,
        performance: &str,
    ) {
        let original = line.len();
        let old_context = context.len();
        context.clear();
        context.push_str("\"truncated\":true,\"original_bytes\":");
        json::write_u64(context, original as u64);
        // Room left for the message once everything else is written.
        let fixed = original - message.len() - old_context + context.len() + 16;
        let room = self.max_line_bytes.saturating_sub(fixed);
        let mut cut = String::with_capacity(room + 16);
        cut.push('"');
        // The message is already escaped: cut it where no character or
        // escape sequence is split.
        let inner = message
            .strip_prefix('"')
            .and_then(|m| m.strip_suffix('"'))
            .unwrap_or("");
        cut.push_str(json::truncate_escaped(inner, room));
        cut.push_str("...\"");
        *message = cut;
        write_line(
            line,
            self.middle(level),
            at_nanos,
            message,
            context,
            |out| out.push_str(performance),
        );
    }
}

/// `at_nanos` is the line's time (Unix nanoseconds); `performance` writes
/// the members of the performance object.
fn write_line(
    line: &mut String,
    middle: &str,
    at_nanos: u64,
    message: &str,
    context: &str,
    performance: impl FnOnce(&mut String),
) {
    line.clear();
    line.push_str("{\"timestamp\":\"");
    timestamp::write_unix_nanos(line, at_nanos);
    line.push_str(middle);
    if message.is_empty() {
        line.push_str("\"\"");
    } else {
        line.push_str(message);
    }
    line.push_str(",\"correlation_id\":\"");
    correlation::write_current_or_fresh_at(line, at_nanos);
    line.push_str("\",\"context\":{");
    line.push_str(context);
    line.push_str("},\"performance\":{");
    performance(line);
    line.push_str("}}\n");
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

/// Per-thread scratch space, reused so a line costs no allocation once
/// the buffers have grown.
struct Buffers {
    line: String,
    /// The message as a JSON string, quotes included; empty if none.
    message: String,
    /// The members of the context object.
    context: String,
    /// The members of the performance object.
    performance: String,
}

impl Buffers {
    const EMPTY: Self = Self {
        line: String::new(),
        message: String::new(),
        context: String::new(),
        performance: String::new(),
    };

    fn clear(&mut self) {
        self.line.clear();
        self.message.clear();
        self.context.clear();
        self.performance.clear();
    }
}

thread_local! {
    // Const-initialised, so no access checks a lazy-init state.
    static BUFFERS: RefCell<Buffers> = const { RefCell::new(Buffers::EMPTY) };
}

impl<S: Subscriber> Layer<S> for JsonLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let emit = |buf: &mut Buffers| {
            buf.clear();
            let at_nanos = self.format(event, buf);
            let line = JsonLine::written(&buf.line, at_nanos, &self.service);
            self.sink.write_json_line(line);
        };
        // A sink that itself logs re-enters here, and a thread-local's
        // destructor may log after these buffers are gone: both get fresh
        // buffers rather than a panic (which would abort the process).
        let reused = BUFFERS.try_with(|b| match b.try_borrow_mut() {
            Ok(mut buf) => {
                emit(&mut buf);
                true
            }
            Err(_) => false,
        });
        if reused != Ok(true) {
            let mut fresh = Buffers::EMPTY;
            emit(&mut fresh);
        }
    }
}

struct Visitor<'a> {
    buf: &'a mut Buffers,
    /// The event is an operation event of this thread's guard.
    ours: bool,
}

impl Visitor<'_> {
    /// Writes a member of an operation event's `performance` object; its
    /// keys are fixed and need no escaping.
    fn performance(&mut self, key: &str) -> &mut String {
        prepared::performance_member(&mut self.buf.performance, key)
    }

    /// Where a field other than `message` goes, and under which key.
    fn member(&mut self, field: &Field) -> Option<&mut String> {
        let name = field.name();
        let target = prepared::context_member(&mut self.buf.context);
        json::write_escaped(target, name);
        target.push(':');
        if !self.ours && redactor().is_secret(name) {
            json::write_escaped(target, REDACTED);
            return None;
        }
        Some(target)
    }
}

impl Visit for Visitor<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        if let Some(out) = self.member(field) {
            json::write_f64(out, value);
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if let Some(out) = self.member(field) {
            json::write_i64(out, value);
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if self.ours {
            match field.name() {
                "duration_ns" => return write_millis(self.performance("duration_ms"), value),
                "threshold_ns" => return write_millis(self.performance("threshold_ms"), value),
                _ => {}
            }
        }
        if let Some(out) = self.member(field) {
            json::write_u64(out, value);
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        if let Some(out) = self.member(field) {
            json::write_bool(out, value);
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if self.ours && field.name() == "message" {
            // A fixed message, "{op} completed" and the like: the operation
            // name is checked at compile time to need no escaping.
            self.buf.message.clear();
            prepared::write_fixed_message(&mut self.buf.message, value);
            return;
        }
        if field.name() == "message" {
            self.buf.message.clear();
            json::write_escaped(&mut self.buf.message, value);
            return;
        }
        if self.ours {
            match field.name() {
                "context" => {
                    // Rendered and redacted by the guard at call start.
                    prepared::append_context_json(&mut self.buf.context, value);
                    return;
                }
                key @ ("operation" | "status") => {
                    // Checked at compile time, or a constant: no escaping.
                    let out = self.performance(key);
                    out.push('"');
                    out.push_str(value);
                    out.push('"');
                    return;
                }
                _ => {}
            }
        }
        if let Some(out) = self.member(field) {
            json::write_escaped(out, value);
        }
    }

    fn record_bytes(&mut self, field: &Field, value: &[u8]) {
        if let Some(out) = self.member(field) {
            json::write_escaped_bytes(out, value);
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.record_debug(field, &format_args!("{value}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let out = if field.name() == "message" {
            self.buf.message.clear();
            &mut self.buf.message
        } else {
            match self.member(field) {
                Some(out) => out,
                None => return,
            }
        };
        prepared::write_display(out, format_args!("{value:?}"));
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
