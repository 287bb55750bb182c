//! Opt-in interop with `tracing`: each monitored call also opens a
//! `tracing` span, so a subscriber that turns spans into traces (such as
//! tracing-opentelemetry) sees monitored calls as children of the
//! application's own `#[instrument]` spans, and their callees as theirs.
//!
//! Off by default, and then nothing here runs: the guard tests one flag
//! in code that is already out of line. A sync call enters its span for
//! its whole run and keeps it on a per-thread stack (sync calls nest); an
//! async call keeps its span in its future and enters it for each poll,
//! as `tracing::Instrumented` does.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};

use tracing::span::EnteredSpan;

use super::Callsite;
use crate::correlation;

/// The name of every call's span; tracing-opentelemetry names the exported
/// span after its `otel.name` field, the operation.
pub const TRACING_SPAN_NAME: &str = "observe.call";

static ENABLED: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// The entered spans of the sync calls running on this thread,
    /// innermost last.
    static ENTERED: RefCell<Vec<EnteredSpan>> = const { RefCell::new(Vec::new()) };
}

/// Makes every monitored call that can log also open a `tracing` span
/// named [`TRACING_SPAN_NAME`] (level `INFO`), with the fields `otel.name` and
/// `operation` (the operation) and `correlation_id`. The span is current
/// while the call runs (an async call's while it is polled), so it is a
/// child of the span current where the call starts, and spans opened
/// inside the call are its children.
///
/// Process-wide, for a subscriber assembled by hand around
/// [`JsonLayer`](crate::log::JsonLayer); with
/// [`install`](crate::ObserveBuilder::install) use
/// [`ObserveBuilder::tracing_spans`](crate::ObserveBuilder::tracing_spans)
/// or `OBSERVE_TRACING_SPANS`. Calls already running keep what they had.
pub fn set_tracing_spans(enabled: bool) {
    ENABLED.store(enabled, Ordering::Relaxed);
}

/// The span of one call of `cs`, a child of the current span; made inside
/// the call's correlation scope, whose ID it carries.
fn span(cs: &Callsite) -> tracing::Span {
    let operation = cs.operation();
    let span = tracing::info_span!(
        TRACING_SPAN_NAME,
        otel.name = operation,
        operation,
        correlation_id = tracing::field::Empty,
    );
    if !span.is_disabled() {
        if let Some(id) = correlation::current() {
            span.record("correlation_id", tracing::field::display(&id));
        }
    }
    span
}

/// Opens and enters the span of a sync call of `cs`; `false` if it could
/// not be kept (the thread is exiting), and then the call has none.
#[cold]
#[inline(never)]
pub(crate) fn enter_sync(cs: &Callsite) -> bool {
    let entered = span(cs).entered();
    // Pushed outside the subscriber's code: dropping the span on failure
    // runs it after the borrow ends.
    let mut entered = Some(entered);
    let kept = ENTERED
        .try_with(|stack| match stack.try_borrow_mut() {
            Ok(mut s) => {
                s.extend(entered.take());
                true
            }
            Err(_) => false,
        })
        .unwrap_or(false);
    drop(entered);
    kept
}

/// Exits and closes the span [`enter_sync`] entered.
#[cold]
#[inline(never)]
pub(crate) fn exit_sync() {
    // Dropped after the borrow: closing a span runs the subscriber, which
    // may itself make monitored calls.
    let top = ENTERED
        .try_with(|stack| stack.try_borrow_mut().ok().and_then(|mut s| s.pop()))
        .ok()
        .flatten();
    drop(top);
}

/// An async call's span between polls: none until its first traced poll.
#[derive(Debug, Default)]
pub(crate) struct Parked(Option<Box<tracing::Span>>);

impl Parked {
    /// Enters the call's span for one poll, opening it on the first.
    #[inline(never)]
    pub(crate) fn enter(&mut self, cs: &Callsite) -> tracing::span::Entered<'_> {
        self.0.get_or_insert_with(|| Box::new(span(cs))).enter()
    }

    /// Enters the call's span, if it has one, while its unfinished call
    /// is recorded as it is dropped.
    pub(crate) fn reenter(&self) -> Option<tracing::span::Entered<'_>> {
        self.0.as_deref().map(tracing::Span::enter)
    }

    /// Closes the span of a finished call.
    pub(crate) fn close(&mut self) {
        self.0 = None;
    }
}

/// Whether monitored calls open `tracing` spans: the one check a call
/// that can log pays, out of line.
#[inline(always)]
pub(crate) fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}
