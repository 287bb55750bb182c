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
use std::marker::PhantomData;
use std::time::Duration;

use tracing_core::field::Value;
use tracing_core::{Event, Level};

use super::callsite::{Callsite, LogSite, Message};
use super::context::ContextWriter;
use super::outcome::{ErrorInfo, Status};
use crate::clock::{self, Start};
use crate::correlation::{self, CallScope};
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

/// Carries a function's return type `R` through the expansion. It is
/// returned on a dead branch (`if false { return hint.never(); }`) so `R`
/// is fixed before the body is type-checked, and it is `Copy`, `Send` and
/// `Sync` whatever `R` is, so capturing it changes nothing about a future.
#[doc(hidden)]
pub struct Hint<R>(PhantomData<fn() -> R>);

impl<R> Clone for Hint<R> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<R> Copy for Hint<R> {}

impl<R> Default for Hint<R> {
    fn default() -> Self {
        Self::new()
    }
}

impl<R> fmt::Debug for Hint<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Hint")
    }
}

impl<R> Hint<R> {
    /// A hint of an inferred type.
    #[must_use]
    #[inline(always)]
    pub const fn new() -> Self {
        Self(PhantomData)
    }

    /// Only ever called on a branch that never runs.
    ///
    /// # Panics
    ///
    /// Always: reaching it would be a bug in the expansion.
    #[inline(always)]
    pub fn never(self) -> R {
        unreachable!("observe: a type hint was evaluated")
    }
}

/// Wraps one async call in its correlation scope; `hint` ties the
/// future's output to the function's return type.
#[doc(hidden)]
#[inline(always)]
pub fn call_scope<R, F: Future<Output = R>>(hint: Hint<R>, f: F) -> CallScope<F> {
    let _ = hint;
    CallScope::new(f)
}

/// Returns `f` unchanged, typed by `hint` (the async body's result type is
/// then known before the body is checked).
#[doc(hidden)]
#[inline(always)]
pub fn typed<R, F: Future<Output = R>>(hint: Hint<R>, f: F) -> F {
    let _ = hint;
    f
}

/// Runs `f` once. The expansion calls bodies through it so that `return`
/// and `?` inside them end the body, not the wrapper, and so that the
/// closure is `FnOnce` (it may move out of, or return borrows of, its
/// captures). `hint` carries the function's return type, fixed before the
/// body is type-checked, so type errors point into the body.
#[doc(hidden)]
#[inline(always)]
pub fn call_once<R>(hint: Hint<R>, f: impl FnOnce() -> R) -> R {
    let _ = hint;
    f()
}

/// How the guard relates to the thread's correlation scope.
enum Scope {
    /// A root call: closes the scope it opened on drop.
    Root,
    /// A nested call (or one where nothing can log): the enclosing scope
    /// is left alone.
    Nested,
}

/// Times one monitored call and records its outcome. Made by the
/// `monitor_performance` expansion.
#[doc(hidden)]
#[must_use = "a guard records the call when it is finished or dropped"]
pub struct Guard {
    callsite: &'static Callsite,
    /// `None` when nothing would be recorded (no recorder, no subscriber).
    start: Option<Start>,
    metrics: Mode,
    context: Option<String>,
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
    /// Starts a call (an async one at its first poll, inside its
    /// [`CallScope`]).
    #[inline]
    pub fn enter(callsite: &'static Callsite) -> Self {
        Self::start(callsite, None::<fn(&mut ContextWriter)>)
    }

    /// Starts a call whose lines carry context fields.
    #[inline]
    pub fn enter_with(
        callsite: &'static Callsite,
        context: impl FnOnce(&mut ContextWriter),
    ) -> Self {
        Self::start(callsite, Some(context))
    }

    #[inline]
    fn start(
        callsite: &'static Callsite,
        context: Option<impl FnOnce(&mut ContextWriter)>,
    ) -> Self {
        let metrics = metrics::start(callsite);
        // Where nothing can log, no line needs checking and no one can
        // read an ID, so no scope is opened either.
        let logging = super::callsite::logging_possible();
        let may_log = logging && callsite.may_log();
        let context = match context {
            Some(f) if may_log => {
                let mut w = ContextWriter::default();
                f(&mut w);
                w.into_json()
            }
            _ => None,
        };
        let scope = if logging && correlation::open_root() {
            Scope::Root
        } else {
            Scope::Nested
        };
        let active = may_log || !matches!(metrics, Mode::Off);
        Self {
            callsite,
            start: active.then(clock::now),
            metrics,
            context,
            scope,
            finished: false,
        }
    }

    /// Records a call that returned normally, and not an `Err`.
    #[inline]
    pub fn success(mut self) {
        self.finished = true;
        if self.start.is_some() {
            self.record(Status::Success, None);
        }
    }

    /// Records a call that returned `Err`.
    pub fn error(mut self, error: ErrorInfo<'_>) {
        self.finished = true;
        self.record(Status::Error, Some(&error));
    }

    #[inline(never)]
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
        let fixed = match status {
            Status::Success if slow => Some(Message::Slow),
            Status::Success => Some(Message::Completed),
            Status::Panic => Some(Message::Panicked),
            Status::Cancelled => Some(Message::Cancelled),
            Status::Error => None,
        };
        let failed;
        let message: &dyn Value = match fixed {
            Some(m) => &cs.message(m),
            None => {
                failed = tracing_core::field::display(Failed {
                    operation: op,
                    error,
                });
                &failed
            }
        };
        let record = Line {
            site,
            message,
            operation: op,
            status: status.as_str(),
            duration_ns: u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX),
            error_type,
            context: self.context.as_deref(),
            threshold_ns: slow.then(|| cs.slow_nanos()),
        };
        record.dispatch();
    }
}

impl Drop for Guard {
    #[inline]
    fn drop(&mut self) {
        if !self.finished {
            self.unfinished();
        }
        // After logging, which needed the scope's ID.
        if matches!(self.scope, Scope::Root) {
            correlation::close_root();
        }
    }
}

impl Guard {
    /// The call ended without returning: a panic or a dropped future.
    #[cold]
    #[inline(never)]
    fn unfinished(&mut self) {
        let status = if std::thread::panicking() {
            Status::Panic
        } else {
            Status::Cancelled
        };
        self.record(status, None);
    }
}

/// The message of a failed call: `"{op} failed: {error}"`.
struct Failed<'a> {
    operation: &'static str,
    error: Option<&'a ErrorInfo<'a>>,
}

impl fmt::Display for Failed<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.error {
            Some(e) => write!(f, "{} failed: {e}", self.operation),
            None => write!(f, "{} failed", self.operation),
        }
    }
}

/// One operation event, ready to dispatch.
struct Line<'a> {
    site: LogSite,
    message: &'a dyn Value,
    operation: &'static str,
    status: &'static str,
    duration_ns: u64,
    error_type: Option<&'a str>,
    context: Option<&'a str>,
    threshold_ns: Option<u64>,
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
            (&f_message, Some(self.message)),
            (&f_operation, Some(&self.operation)),
            (&f_status, Some(&self.status)),
            (&f_duration, Some(&self.duration_ns)),
            (
                &f_error_type,
                self.error_type.as_ref().map(|v| v as &dyn Value),
            ),
            (&f_context, self.context.as_ref().map(|v| v as &dyn Value)),
            (
                &f_threshold,
                self.threshold_ns.as_ref().map(|v| v as &dyn Value),
            ),
        ];
        let value_set = fields.value_set(&values);
        let prev = EMITTING.with(|e| e.replace(std::ptr::from_ref(meta) as usize));
        Event::dispatch(meta, &value_set);
        EMITTING.with(|e| e.set(prev));
    }
}
