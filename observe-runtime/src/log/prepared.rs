//! The members of an operation event, rendered by its guard before the
//! event is dispatched.
//!
//! A monitored call knows its message, status, duration and context as
//! typed values; sending them through `tracing`'s field visitor only to
//! match field names and re-render them cost more than the rest of the
//! line. So when a [`JsonLayer`](super::JsonLayer) exists, the guard writes
//! them here first, and the layer copies them when the event it formats is
//! the one they were prepared for. The event still carries every field, so
//! other layers see it unchanged; when preparing is not possible (no JSON
//! layer, or a line logged from inside a sink) the layer visits the fields
//! as for any event, with the same result.

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::base::json;

/// How many [`JsonLayer`](super::JsonLayer)s exist: with none, nothing is
/// prepared.
static LAYERS: AtomicUsize = AtomicUsize::new(0);

/// Counts one layer for as long as it lives (clones included).
#[derive(Debug)]
pub(crate) struct LayerCount(());

impl LayerCount {
    pub(crate) fn new() -> Self {
        LAYERS.fetch_add(1, Ordering::Relaxed);
        Self(())
    }
}

impl Clone for LayerCount {
    fn clone(&self) -> Self {
        Self::new()
    }
}

impl Drop for LayerCount {
    fn drop(&mut self) {
        LAYERS.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One operation event's members, as the layer writes them.
pub(crate) struct Members {
    /// Address of the event's metadata; 0 when nothing is prepared.
    meta: usize,
    /// When the call ended, in Unix nanoseconds: the line's timestamp, and
    /// the time of a correlation ID made for it.
    pub(crate) at_nanos: u64,
    /// A fixed message as a JSON string, quotes included (`"op completed"`,
    /// made at compile time); empty when `message` holds the message.
    fixed_message: &'static str,
    /// A rendered message as a JSON string, quotes included.
    message: String,
    /// The members of the context object.
    pub(crate) context: String,
    /// The performance object, written by the layer straight into the
    /// line: rendering it here first would copy it twice.
    pub(crate) performance: Performance,
}

/// The members of an operation line's `performance` object, as values.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Performance {
    /// Checked at compile time to need no escaping.
    pub(crate) operation: &'static str,
    /// A constant.
    pub(crate) status: &'static str,
    pub(crate) duration_ns: u64,
    pub(crate) threshold_ns: Option<u64>,
}

impl Performance {
    /// Appends the members in the order the visitor writes them
    /// (`operation`, `status`, `duration_ms`, `threshold_ms`), fixed keys
    /// and punctuation as whole pieces.
    pub(crate) fn write_members(&self, out: &mut String) {
        out.push_str("\"operation\":\"");
        out.push_str(self.operation);
        out.push_str("\",\"status\":\"");
        out.push_str(self.status);
        out.push_str("\",\"duration_ms\":");
        write_millis(out, self.duration_ns);
        if let Some(t) = self.threshold_ns {
            out.push_str(",\"threshold_ms\":");
            write_millis(out, t);
        }
    }
}

thread_local! {
    // Const-initialised, so no access checks a lazy-init state.
    static PREPARED: RefCell<Members> = const { RefCell::new(Members::EMPTY) };
}

fn addr(meta: &tracing_core::Metadata<'_>) -> usize {
    std::ptr::from_ref(meta) as usize
}

/// Renders the members of the event about to be dispatched with `meta`,
/// unless no JSON layer exists or this thread is already inside one.
/// Returns whether they were prepared (then [`clear`] after dispatching).
#[inline]
pub(crate) fn prepare(
    meta: &'static tracing_core::Metadata<'static>,
    f: impl FnOnce(&mut Members),
) -> bool {
    if LAYERS.load(Ordering::Relaxed) == 0 {
        return false;
    }
    PREPARED
        .try_with(|p| {
            let Ok(mut p) = p.try_borrow_mut() else {
                return false;
            };
            p.fixed_message = "";
            p.message.clear();
            p.context.clear();
            f(&mut p);
            p.meta = addr(meta);
            true
        })
        .unwrap_or(false)
}

/// Forgets what [`prepare`] wrote.
#[inline]
pub(crate) fn clear() {
    let _ = PREPARED.try_with(|p| {
        if let Ok(mut p) = p.try_borrow_mut() {
            p.meta = 0;
        }
    });
}

/// Runs `f` on the members prepared for the event of `meta`, if any.
#[inline]
pub(crate) fn with<R>(
    meta: &tracing_core::Metadata<'_>,
    f: impl FnOnce(&Members) -> R,
) -> Option<R> {
    PREPARED
        .try_with(|p| match p.try_borrow() {
            Ok(p) if p.meta == addr(meta) => Some(f(&p)),
            _ => None,
        })
        .ok()
        .flatten()
}

impl Members {
    const EMPTY: Self = Self {
        meta: 0,
        at_nanos: 0,
        fixed_message: "",
        message: String::new(),
        context: String::new(),
        performance: Performance {
            operation: "",
            status: "",
            duration_ns: 0,
            threshold_ns: None,
        },
    };

    /// The message as a JSON string, quotes included.
    pub(crate) fn message(&self) -> &str {
        if self.fixed_message.is_empty() {
            &self.message
        } else {
            self.fixed_message
        }
    }

    /// A fixed message, already quoted (`"{op} completed"` and the like):
    /// operation names are checked at compile time to need no escaping.
    pub(crate) fn fixed_message(&mut self, quoted: &'static str) {
        self.fixed_message = quoted;
    }

    /// A message rendered from `Display`, escaped.
    pub(crate) fn display_message(&mut self, message: impl fmt::Display) {
        write_display(&mut self.message, message);
    }

    /// A context member whose key needs no escaping (the guard's own).
    pub(crate) fn context_str(&mut self, key: &str, value: &str) {
        let out = context_member(&mut self.context);
        out.push('"');
        out.push_str(key);
        out.push_str("\":");
        json::write_escaped(out, value);
    }

    /// The call's context members, already rendered.
    pub(crate) fn context_json(&mut self, members: &str) {
        append_context_json(&mut self.context, members);
    }
}

/// `"message"` for a fixed message.
pub(super) fn write_fixed_message(out: &mut String, message: &str) {
    out.push('"');
    out.push_str(message);
    out.push('"');
}

/// A value rendered through `Display` (or `Debug`, by the caller's
/// choice), as an escaped JSON string.
pub(super) fn write_display(out: &mut String, value: impl fmt::Display) {
    out.push('"');
    let _ = write!(json::Escaper(out), "{value}");
    out.push('"');
}

/// Starts the member `key` of a performance object; its keys are fixed
/// and need no escaping.
pub(super) fn performance_member<'a>(performance: &'a mut String, key: &str) -> &'a mut String {
    if !performance.is_empty() {
        performance.push(',');
    }
    performance.push('"');
    performance.push_str(key);
    performance.push_str("\":");
    performance
}

/// Starts one more member of a context object.
pub(super) fn context_member(context: &mut String) -> &mut String {
    if !context.is_empty() {
        context.push(',');
    }
    context
}

/// Appends already rendered context members.
pub(super) fn append_context_json(context: &mut String, members: &str) {
    if !context.is_empty() && !members.is_empty() {
        context.push(',');
    }
    context.push_str(members);
}

/// Appends a duration given in nanoseconds as milliseconds with six
/// decimals (`0.412345`): exact, and far cheaper than float formatting.
pub(super) fn write_millis(out: &mut String, nanos: u64) {
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

/// Runs `f` while the prepared members are borrowed, so nothing can be
/// prepared and every operation event is visited.
#[cfg(test)]
pub(crate) fn while_busy<T>(f: impl FnOnce() -> T) -> T {
    PREPARED.with(|p| {
        let _busy = p.borrow();
        f()
    })
}
