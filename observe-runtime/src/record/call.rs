//! The record of one finished call.

use std::cell::Cell;
use std::fmt;
use std::time::Duration;

use tracing_core::{Level, Metadata};

#[cfg(feature = "otlp")]
use super::SiteNumber;
use crate::base::Status;
use crate::correlation::{self, CorrelationId};

/// One finished monitored call, as its guard saw it.
///
/// Handed to each [`CallConsumer`](super::CallConsumer) while the call's
/// correlation scope is still current, and only borrowed: a consumer copies
/// what it keeps.
pub struct CallRecord<'a> {
    pub(crate) meta: &'static Metadata<'static>,
    pub(crate) operation: &'static str,
    /// The number of the call's site (its operation and code location).
    #[cfg(feature = "otlp")]
    pub(crate) site: &'static SiteNumber,
    /// The site's fixed messages, for its entry in the site table.
    #[cfg(feature = "otlp")]
    pub(crate) messages: &'static [&'static str; 4],
    pub(crate) status: Status,
    pub(crate) message: Message,
    pub(crate) duration_ns: u64,
    pub(crate) end_unix_nanos: u64,
    pub(crate) error: Option<CallError<'a>>,
    pub(crate) context: Option<&'a str>,
    pub(crate) slow_threshold_ns: Option<u64>,
    /// The call's span id.
    pub(crate) span: u64,
    /// The enclosing monitored call's span id; 0 for none.
    pub(crate) parent_span: u64,
    /// Whether the call's line is written.
    pub(crate) logged: bool,
    /// The request's trace, once a consumer has derived it (deriving it
    /// hashes the correlation ID's text).
    pub(crate) trace: Cell<Option<correlation::TraceContext>>,
}

/// How a record's message is made.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Message {
    /// A fixed message (`"{op} completed"` and the like), and the same as a
    /// JSON string with its quotes: operation names are checked at compile
    /// time to need no escaping.
    Fixed {
        text: &'static str,
        quoted: &'static str,
    },
    /// `"{op} failed: {error}"`, rendered when written.
    Failed,
}

/// The error a failed call returned.
#[derive(Clone, Copy)]
pub struct CallError<'a> {
    pub(crate) type_name: &'a str,
    pub(crate) message: &'a dyn fmt::Display,
}

impl CallError<'_> {
    /// The error's short type name (`io::Error` is `Error`,
    /// `my::E<alloc::string::String>` is `E<String>`): the log's
    /// `context.error_type` and the metrics' `error_type` label.
    #[must_use]
    pub fn type_name(&self) -> &str {
        self.type_name
    }
}

impl fmt::Display for CallError<'_> {
    /// The error's `Display`, else its `Debug`, else its short type name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.message.fmt(f)
    }
}

impl fmt::Debug for CallError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallError")
            .field("type_name", &self.type_name)
            .field("message", &format_args!("{}", self.message))
            .finish()
    }
}

impl<'a> CallRecord<'a> {
    /// The operation name.
    #[must_use]
    pub fn operation(&self) -> &'static str {
        self.operation
    }

    /// How the call ended.
    #[must_use]
    pub fn status(&self) -> Status {
        self.status
    }

    /// The level of the call's line: the success level, WARN for a slow or
    /// cancelled call, ERROR for an error or a panic.
    #[must_use]
    pub fn level(&self) -> Level {
        *self.meta.level()
    }

    /// The `tracing` metadata of the call's line: its level, and the
    /// annotated function's module, file and line.
    #[must_use]
    pub fn metadata(&self) -> &'static Metadata<'static> {
        self.meta
    }

    /// The call's message: `"{op} completed"`, `"{op} failed: {error}"`,
    /// `"{op} panicked"`, `"{op} cancelled"` or `"{op} slow"`.
    #[must_use]
    pub fn message(&self) -> impl fmt::Display + '_ {
        MessageText(self)
    }

    /// How long the call took (async calls: from first poll to the end).
    #[must_use]
    pub fn duration(&self) -> Duration {
        Duration::from_nanos(self.duration_ns)
    }

    /// The call's duration in nanoseconds.
    #[must_use]
    pub fn duration_nanos(&self) -> u64 {
        self.duration_ns
    }

    /// When the call ended, in nanoseconds since the Unix epoch (also the
    /// time of its log line).
    #[must_use]
    pub fn end_unix_nanos(&self) -> u64 {
        self.end_unix_nanos
    }

    /// When the call started, in nanoseconds since the Unix epoch.
    #[must_use]
    pub fn start_unix_nanos(&self) -> u64 {
        self.end_unix_nanos.saturating_sub(self.duration_ns)
    }

    /// The error of a call that returned `Err`.
    #[must_use]
    pub fn error(&self) -> Option<&CallError<'a>> {
        self.error.as_ref()
    }

    /// The call's `context(..)` fields as the members of a JSON object
    /// (`"entity_id":"sensor.kitchen","attempt":2`), secret-looking keys
    /// already redacted; empty when it has none. `error_type` is not among
    /// them: see [`error`](Self::error).
    #[must_use]
    pub fn context_json(&self) -> &str {
        self.context.unwrap_or_default()
    }

    /// The slow threshold a successful call crossed; `None` unless this is
    /// a "slow" line.
    #[must_use]
    pub fn slow_threshold(&self) -> Option<Duration> {
        self.slow_threshold_ns.map(Duration::from_nanos)
    }

    /// The correlation ID the call ran under (made now, with the call's end
    /// time, if its scope had none yet).
    #[must_use]
    pub fn correlation_id(&self) -> CorrelationId {
        correlation::current_or_fresh_at(self.end_unix_nanos)
    }

    /// Appends the correlation ID without copying it; returns its trace,
    /// derived once per record.
    pub(crate) fn write_correlation_id(&self, out: &mut String) -> correlation::TraceContext {
        if let Some(trace) = self.trace.get() {
            correlation::write_current_text_at(out, self.end_unix_nanos);
            return trace;
        }
        let trace = correlation::write_current_or_fresh_at(out, self.end_unix_nanos);
        self.trace.set(Some(trace));
        trace
    }

    /// The trace-id of the call's request: the inbound `traceparent`'s, else
    /// derived from the correlation ID, so it is the same in every service
    /// the request passes through.
    #[must_use]
    pub fn trace_id(&self) -> u128 {
        self.trace().0
    }

    /// The number of the call's site, for [`SiteInfo`](super::SiteInfo) lookups on
    /// another thread.
    #[cfg(feature = "otlp")]
    pub(crate) fn site_number(&self) -> u32 {
        self.site.get(|| super::SiteInfo {
            operation: self.operation,
            meta: self.meta,
            messages: self.messages,
        })
    }

    /// The call's span id (never 0 for a call recorded in a scope).
    #[must_use]
    pub fn span_id(&self) -> u64 {
        self.span
    }

    /// The span id of the call's parent: the enclosing monitored call, else
    /// (for the request's first call) the caller's span named by the
    /// inbound `traceparent`. `None` for the root of a trace.
    #[must_use]
    pub fn parent_span_id(&self) -> Option<u64> {
        match self.parent_span {
            0 => self.trace().1.map(|t| t.parent_span).filter(|p| *p != 0),
            local => Some(local),
        }
    }

    /// The call's parent in `trace` (its request's, as writing the
    /// correlation ID yields it) and whether that parent is remote: the
    /// enclosing monitored call, else the inbound `traceparent`'s span;
    /// 0 for the root of a trace.
    pub(crate) fn parent_in(&self, trace: &correlation::TraceContext) -> (u64, bool) {
        match self.parent_span {
            0 => (trace.parent_span, trace.parent_span != 0),
            local => (local, false),
        }
    }

    /// Whether the parent of the call is in another process (the inbound
    /// `traceparent`'s span) rather than an enclosing monitored call.
    #[must_use]
    pub fn has_remote_parent(&self) -> bool {
        self.parent_span == 0 && self.parent_span_id().is_some()
    }

    /// The inbound `traceparent`'s sampled flag, when the request came
    /// with one.
    #[must_use]
    pub fn remote_sampled(&self) -> Option<bool> {
        self.trace().1.map(|t| t.flags & 1 == 1)
    }

    /// Whether the call's JSON line is written. A consumer that asked for
    /// unlogged calls ([`CallConsumer::wants_unlogged_calls`]) also sees
    /// calls whose line a level filter, sampling or a rate limit held back.
    ///
    /// [`CallConsumer::wants_unlogged_calls`]: super::CallConsumer::wants_unlogged_calls
    #[must_use]
    pub fn is_logged(&self) -> bool {
        self.logged
    }

    fn trace(&self) -> (u128, Option<correlation::TraceContext>) {
        let end = self.end_unix_nanos;
        let (id, inbound) = correlation::current_trace_at(|| end).unwrap_or_else(|| {
            let id = correlation::current_or_fresh_at(end);
            (id.trace_id(), None)
        });
        if self.trace.get().is_none() {
            self.trace
                .set(Some(inbound.unwrap_or(correlation::TraceContext {
                    trace_id: id,
                    parent_span: 0,
                    flags: 1,
                })));
        }
        (id, inbound)
    }

    /// The message as a JSON string with its quotes, when it is fixed.
    pub(crate) fn quoted_message(&self) -> Option<&'static str> {
        match self.message {
            Message::Fixed { quoted, .. } => Some(quoted),
            Message::Failed => None,
        }
    }
}

impl fmt::Debug for CallRecord<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallRecord")
            .field("operation", &self.operation)
            .field("status", &self.status)
            .field("level", self.meta.level())
            .field("duration", &self.duration())
            .field("end_unix_nanos", &self.end_unix_nanos)
            .field("error", &self.error)
            .field("context", &self.context_json())
            .field("slow_threshold", &self.slow_threshold())
            .field("span_id", &format_args!("{:016x}", self.span))
            .field("logged", &self.logged)
            .finish_non_exhaustive()
    }
}

/// A record's message, rendered on demand.
struct MessageText<'r, 'a>(&'r CallRecord<'a>);

impl fmt::Display for MessageText<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.0;
        match (r.message, &r.error) {
            (Message::Fixed { text, .. }, _) => f.write_str(text),
            (Message::Failed, Some(e)) => write!(f, "{} failed: {e}", r.operation),
            (Message::Failed, None) => write!(f, "{} failed", r.operation),
        }
    }
}
