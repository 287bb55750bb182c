//! The per-call guard: started when a monitored call starts, it times the
//! call, keeps its correlation scope, and on the way out records exactly
//! one outcome in logs and metrics, whichever way the call ends.
//!
//! A guard finished by [`Guard::success`] or [`Guard::error`] records that
//! outcome. A guard dropped unfinished records `panic` if the thread is
//! unwinding, and `cancelled` otherwise (its future was dropped mid-call).

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant};

use tracing_core::field::Value;
use tracing_core::{Event, Level};

use super::callsite::{Callsite, LogSite};
use super::context::ContextWriter;
use super::outcome::{ErrorInfo, Status};
use crate::correlation::{self, CorrelationId, Restore, Slot, WithCorrelation};
use crate::metrics::{self, Mode};

thread_local! {
    /// Address of the metadata of the operation event being dispatched on
    /// this thread, so the JSON layer can trust that event's `context` field
    /// as JSON it need not re-escape; 0 when none.
    static EMITTING: Cell<usize> = const { Cell::new(0) };
}

/// Whether `meta` is the metadata of the operation event this thread is
/// dispatching right now.
pub(crate) fn is_emitting(meta: &tracing_core::Metadata<'_>) -> bool {
    EMITTING.with(|e| e.get() == std::ptr::from_ref(meta) as usize)
}

/// Runs `f` once. The expansion calls bodies through it so that `return`
/// and `?` inside them end the body, not the wrapper, and so that the
/// closure is `FnOnce` (it may move out of, or return borrows of, its
/// captures). `hint` carries the function's return type, fixed before the
/// body is type-checked, so type errors point into the body.
#[doc(hidden)]
#[inline(always)]
pub fn call_once<R>(hint: &Option<R>, f: impl FnOnce() -> R) -> R {
    let _ = hint;
    f()
}

/// How the guard relates to the thread's correlation scope.
enum Scope {
    /// A synchronous root call: restores the previous (empty) slot on drop.
    SyncRoot { _restore: Restore },
    /// A synchronous nested call: the enclosing scope is left alone.
    SyncNested,
    /// An async call: its future re-enters this slot on every poll.
    Async(Slot),
}

/// Times one monitored call and records its outcome. Made by the
/// `monitor_performance` expansion.
#[doc(hidden)]
#[must_use = "a guard records the call when it is finished or dropped"]
pub struct Guard {
    callsite: &'static Callsite,
    /// `None` when nothing would be recorded (no recorder, no subscriber).
    start: Option<Instant>,
    metrics: Mode,
    context: Option<String>,
    // Declared last so it is dropped after `Drop::drop` has logged.
    scope: Scope,
    finished: bool,
}

impl fmt::Debug for Guard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guard")
            .field("operation", &self.callsite.operation())
            .field("active", &self.start.is_some())
            .finish_non_exhaustive()
    }
}

impl Guard {
    /// Starts a synchronous call.
    #[inline]
    pub fn enter(callsite: &'static Callsite) -> Self {
        Self::start(callsite, false, None::<fn(&mut ContextWriter)>)
    }

    /// Starts a synchronous call whose lines carry context fields.
    #[inline]
    pub fn enter_with(
        callsite: &'static Callsite,
        context: impl FnOnce(&mut ContextWriter),
    ) -> Self {
        Self::start(callsite, false, Some(context))
    }

    /// Starts an async call (at its first poll).
    #[inline]
    pub fn enter_async(callsite: &'static Callsite) -> Self {
        Self::start(callsite, true, None::<fn(&mut ContextWriter)>)
    }

    /// Starts an async call whose lines carry context fields.
    #[inline]
    pub fn enter_async_with(
        callsite: &'static Callsite,
        context: impl FnOnce(&mut ContextWriter),
    ) -> Self {
        Self::start(callsite, true, Some(context))
    }

    #[inline]
    fn start(
        callsite: &'static Callsite,
        is_async: bool,
        context: Option<impl FnOnce(&mut ContextWriter)>,
    ) -> Self {
        let metrics = metrics::start(callsite);
        let may_log = callsite.may_log();
        let context = match context {
            Some(f) if may_log => {
                let mut w = ContextWriter::default();
                f(&mut w);
                w.into_json()
            }
            _ => None,
        };
        let scope = if is_async {
            async_scope(may_log)
        } else {
            sync_scope()
        };
        let active = may_log || !matches!(metrics, Mode::Off);
        Self {
            callsite,
            start: active.then(Instant::now),
            metrics,
            context,
            scope,
            finished: false,
        }
    }

    /// Wraps an async body so every poll runs in this call's correlation
    /// scope; `hint` carries the return type, as for [`call_once`].
    pub fn instrument<R, F: Future<Output = R>>(
        &self,
        hint: &Option<R>,
        body: F,
    ) -> WithCorrelation<F> {
        let _ = hint;
        let slot = match &self.scope {
            Scope::Async(slot) => slot.clone(),
            _ => Slot::Lazy,
        };
        WithCorrelation::new(body, slot)
    }

    /// Records a call that returned normally, and not an `Err`.
    #[inline]
    pub fn success(mut self) {
        self.finished = true;
        self.record(Status::Success, None);
    }

    /// Records a call that returned `Err`.
    pub fn error(mut self, error: ErrorInfo<'_>) {
        self.finished = true;
        self.record(Status::Error, Some(&error));
    }

    fn record(&mut self, status: Status, error: Option<&ErrorInfo<'_>>) {
        let Some(start) = self.start else { return };
        let elapsed = start.elapsed();
        let error_type = error.map(ErrorInfo::short_type_name);
        metrics::finish(
            self.metrics,
            self.callsite,
            status,
            elapsed,
            error_type.as_deref(),
        );
        self.log(status, elapsed, error, error_type.as_deref());
    }

    fn log(
        &mut self,
        status: Status,
        elapsed: Duration,
        error: Option<&ErrorInfo<'_>>,
        error_type: Option<&str>,
    ) {
        let cs = self.callsite;
        let slow = cs.slow_nanos() != 0 && elapsed.as_nanos() > u128::from(cs.slow_nanos());
        let site = match status {
            Status::Success if slow => cs.site(Level::WARN),
            Status::Success => cs.success_site(),
            Status::Cancelled => cs.site(Level::WARN),
            Status::Error | Status::Panic => cs.site(Level::ERROR),
        };
        if !site.enabled() {
            return;
        }
        let op = cs.operation();
        let message = Message {
            operation: op,
            status,
            slow,
            error,
        };
        // Milliseconds with nanosecond resolution; exact in an f64.
        #[allow(clippy::cast_precision_loss)]
        let duration_ms = elapsed.as_nanos() as f64 / 1e6;
        #[allow(clippy::cast_precision_loss)]
        let threshold_ms = slow.then(|| cs.slow_nanos() as f64 / 1e6);
        let record = Line {
            site,
            message: tracing_core::field::display(message),
            operation: op,
            status: status.as_str(),
            duration_ms,
            error_type,
            context: self.context.as_deref(),
            threshold_ms,
        };
        match &mut self.scope {
            // An async call logs from outside its polls: enter its ID.
            Scope::Async(slot) => {
                let id = match std::mem::take(slot) {
                    Slot::Id(id) => id,
                    _ => CorrelationId::generate(),
                };
                correlation::scope(id, || record.dispatch());
            }
            Scope::SyncRoot { .. } | Scope::SyncNested => record.dispatch(),
        }
    }
}

/// An async call's scope. Its future keeps its own copy of the slot, so
/// an ID this call will log must exist before the copy is made: a child
/// takes its parent's (made now if the parent's was lazy), a logging root
/// makes one, and only a root that logs nothing stays lazy.
fn async_scope(may_log: bool) -> Scope {
    Scope::Async(match correlation::current() {
        Some(id) => Slot::Id(id),
        None if may_log => Slot::Id(CorrelationId::generate()),
        None => Slot::Lazy,
    })
}

fn sync_scope() -> Scope {
    if correlation::in_scope() {
        Scope::SyncNested
    } else {
        Scope::SyncRoot {
            _restore: Restore(Some(correlation::swap(Slot::Lazy))),
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if !self.finished {
            let status = if std::thread::panicking() {
                Status::Panic
            } else {
                Status::Cancelled
            };
            self.record(status, None);
        }
    }
}

/// The text of an operation line, written straight into the line.
struct Message<'a> {
    operation: &'static str,
    status: Status,
    slow: bool,
    error: Option<&'a ErrorInfo<'a>>,
}

impl fmt::Display for Message<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = self.operation;
        match (self.status, self.error) {
            (Status::Success, _) if self.slow => write!(f, "{op} slow"),
            (Status::Success, _) => write!(f, "{op} completed"),
            (Status::Error, Some(e)) => write!(f, "{op} failed: {e}"),
            (Status::Error, None) => write!(f, "{op} failed"),
            (Status::Panic, _) => write!(f, "{op} panicked"),
            (Status::Cancelled, _) => write!(f, "{op} cancelled"),
        }
    }
}

/// One operation event, ready to dispatch.
struct Line<'a> {
    site: LogSite,
    message: tracing_core::field::DisplayValue<Message<'a>>,
    operation: &'static str,
    status: &'static str,
    duration_ms: f64,
    error_type: Option<&'a str>,
    context: Option<&'a str>,
    threshold_ms: Option<f64>,
}

impl Line<'_> {
    fn dispatch(&self) {
        let meta = self.site.meta;
        let fields = meta.fields();
        let mut it = fields.iter();
        let (
            Some(f_message),
            Some(f_operation),
            Some(f_status),
            Some(f_duration),
            Some(f_error_type),
            Some(f_context),
            Some(f_threshold),
        ) = (
            it.next(),
            it.next(),
            it.next(),
            it.next(),
            it.next(),
            it.next(),
            it.next(),
        )
        else {
            return;
        };
        let values: [(&tracing_core::Field, Option<&dyn Value>); 7] = [
            (&f_message, Some(&self.message)),
            (&f_operation, Some(&self.operation)),
            (&f_status, Some(&self.status)),
            (&f_duration, Some(&self.duration_ms)),
            (
                &f_error_type,
                self.error_type.as_ref().map(|v| v as &dyn Value),
            ),
            (&f_context, self.context.as_ref().map(|v| v as &dyn Value)),
            (
                &f_threshold,
                self.threshold_ms.as_ref().map(|v| v as &dyn Value),
            ),
        ];
        let value_set = fields.value_set(&values);
        let prev = EMITTING.with(|e| e.replace(std::ptr::from_ref(meta) as usize));
        Event::dispatch(meta, &value_set);
        EMITTING.with(|e| e.set(prev));
    }
}
