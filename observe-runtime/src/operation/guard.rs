//! The per-call guard: started when a monitored call starts, it times the
//! call, keeps its correlation scope, and on the way out records exactly
//! one outcome in logs and metrics, whichever way the call ends.
//!
//! A guard finished by [`Guard::success`] or [`Guard::error`] records that
//! outcome. A guard dropped unfinished records `panic` if the thread is
//! unwinding, and `cancelled` otherwise (its future was dropped mid-call).

use std::fmt;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::time::Duration;

use tracing_core::Level;

use super::callsite::{Callsite, Message};
use super::context::ContextWriter;
use super::interop;
use super::outcome::ErrorInfo;
use crate::base::Status;
use crate::base::clock::{self, Start};
use crate::correlation;
use crate::log::hold;
use crate::record::{self, CallError, CallRecord};
use crate::recorder::{self as metrics, Mode};
use crate::volume::{self, Admit};

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

/// `Guard::flags`: something is recorded when the call ends.
const ACTIVE: u8 = 1;
/// `Guard::flags`: this call opened the thread's correlation scope and
/// closes it on drop.
const ROOT: u8 = 2;
/// `Guard::flags`: something can log, so an async call runs in a
/// correlation scope (its [`Monitored`](super::Monitored) future opens it).
const SCOPED: u8 = 4;
/// `Guard::flags`: this call is the root of a request whose lines are held
/// (the buffer is in place when it closes) and releases them on close.
const HOLD: u8 = 8;
/// `Guard::flags`: this (sync) call made its span the thread's current one
/// and puts its parent back on close.
const SPAN: u8 = 16;
/// `Guard::flags`: this sync call entered a `tracing` span and exits it on
/// close (interop with `tracing` is on).
const TRACING_SYNC: u8 = 32;
/// `Guard::flags`: this async call's future keeps a `tracing` span and
/// enters it for each poll.
const TRACING_ASYNC: u8 = 64;

/// Times one monitored call and records its outcome. Made by the
/// `monitor_performance` expansion.
///
/// With nothing installed, starting and dropping a guard is a few loads
/// and one flag test, all inline; the rest lives out of line.
#[doc(hidden)]
#[must_use = "a guard records the call when it is finished or dropped"]
pub struct Guard {
    callsite: &'static Callsite,
    start: Start,
    metrics: Mode,
    /// Present on an active guard, freed by [`Guard::close`]; and on an
    /// async call's guard before its first poll, freed by its future if it
    /// never starts. So the inline drop of an idle guard has nothing to
    /// free.
    context: ManuallyDrop<Option<String>>,
    /// The call's span id; 0 while no line or span can come of the call.
    span: u64,
    /// The enclosing monitored call's span id, 0 for none.
    parent: u64,
    flags: u8,
    finished: bool,
}

impl fmt::Debug for Guard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guard")
            .field("operation", &self.callsite.operation())
            .field("active", &(self.flags & ACTIVE != 0))
            .finish_non_exhaustive()
    }
}

impl Guard {
    /// An idle guard for one call of `callsite`; the expansion starts it
    /// in place, so the guard is never moved on the way in.
    #[inline(always)]
    pub const fn new(callsite: &'static Callsite) -> Self {
        Self {
            callsite,
            start: Start::ZERO,
            metrics: Mode::Off,
            context: ManuallyDrop::new(None),
            span: 0,
            parent: 0,
            flags: 0,
            finished: false,
        }
    }

    /// Starts a sync call.
    #[inline(always)]
    pub fn enter(&mut self) {
        self.start(true, false, || None);
    }

    /// Starts a sync call whose lines carry context fields.
    #[inline(always)]
    pub fn enter_with(&mut self, context: impl FnOnce(&mut ContextWriter)) {
        self.start(true, false, || render(context));
    }

    /// Renders an async call's context fields when its call starts, before
    /// its body takes the arguments they borrow; `None` when no line of
    /// the call can be written.
    #[inline(always)]
    pub fn async_context(
        callsite: &'static Callsite,
        context: impl FnOnce(&mut ContextWriter),
    ) -> Option<String> {
        if super::callsite::logging_possible() && callsite.may_log() {
            render(context)
        } else {
            None
        }
    }

    /// An idle guard for an async call of `callsite`, holding the call's
    /// context fields ([`Guard::async_context`]) until its first poll
    /// starts it: in the guard's own field, so the call's future carries
    /// one slot for them, not two.
    #[inline(always)]
    pub(crate) fn new_async(callsite: &'static Callsite, context: Option<String>) -> Self {
        let mut guard = Self::new(callsite);
        guard.context = ManuallyDrop::new(context);
        guard
    }

    /// Starts an async call at its first poll, in place inside its
    /// [`Monitored`](super::Monitored) future, which owns the correlation
    /// scope, with the context it was made with.
    #[inline(always)]
    pub(crate) fn enter_async(&mut self) {
        let context = std::mem::take(&mut *self.context);
        // Rendered context means its lines could be written a moment ago,
        // in this same poll: no need to ask the filters again.
        let known_to_log = context.is_some();
        self.start(false, known_to_log, || context);
    }

    /// Whether the guard holds context fields: an async call's before its
    /// first poll, or a started call's that may log.
    #[inline(always)]
    pub(crate) fn holds_context(&self) -> bool {
        self.context.is_some()
    }

    /// Frees the context fields the guard holds.
    pub(crate) fn free_context(&mut self) {
        drop(ManuallyDrop::into_inner(std::mem::replace(
            &mut self.context,
            ManuallyDrop::new(None),
        )));
    }

    #[inline(always)]
    fn start(&mut self, sync: bool, known_to_log: bool, context: impl FnOnce() -> Option<String>) {
        let metrics = metrics::start(&self.callsite.metrics);
        // Where nothing can log, no line needs checking and no one can
        // read an ID, so no scope is opened either.
        let logging = super::callsite::logging_possible();
        if logging || !matches!(metrics, Mode::Off) {
            self.metrics = metrics;
            self.begin(logging, sync, known_to_log, context);
        }
    }

    /// Starts a call that records something.
    #[inline(never)]
    fn begin(
        &mut self,
        logging: bool,
        sync: bool,
        known_to_log: bool,
        context: impl FnOnce() -> Option<String>,
    ) {
        let may_log = logging && (known_to_log || self.callsite.may_log());
        if logging {
            // Where a line can be written, the call is a span of its
            // request's trace (its lines carry the id, a consumer may
            // export it). An async call's span is the current one only
            // while it is polled (its future enters it).
            self.span = correlation::span::fresh();
            if sync {
                self.parent = correlation::span::enter(self.span);
                self.flags |= SPAN;
            } else {
                self.parent = correlation::span::current();
            }
            if !sync {
                self.flags |= SCOPED;
            } else if correlation::open_root() {
                self.flags |= ROOT;
            }
            if sync && hold::enabled() && hold::open() {
                self.flags |= HOLD;
            }
            if interop::enabled() {
                self.open_tracing_span(sync);
            }
        }
        if may_log || !matches!(self.metrics, Mode::Off) || (logging && record::unlogged_wanted()) {
            self.flags |= ACTIVE;
        }
        self.start = clock::now();
        // Rendered last, once the guard is active and timing: a context
        // value that panics is then recorded as the call's panic, and
        // counted out of the in-flight gauge. Kept only by a guard that
        // will log, whose close frees it.
        if may_log {
            *self.context = context();
        }
    }

    /// Opens the call's `tracing` span, inside its correlation scope: a
    /// sync call's now, an async call's at its future's poll.
    #[cold]
    #[inline(never)]
    fn open_tracing_span(&mut self, sync: bool) {
        if !sync {
            self.flags |= TRACING_ASYNC;
        } else if interop::enter_sync(self.callsite) {
            self.flags |= TRACING_SYNC;
        }
    }

    /// Makes this (async) call the root of a held request: its future
    /// keeps the buffer and puts it in place for each poll and the close.
    #[inline]
    pub(crate) fn hold_root(&mut self) {
        self.flags |= HOLD;
    }

    /// Whether this call is the root of a held request.
    #[inline(always)]
    pub(crate) fn holds(&self) -> bool {
        self.flags & HOLD != 0
    }

    /// Whether this (async) call's future enters a `tracing` span.
    #[inline(always)]
    pub(crate) fn traces(&self) -> bool {
        self.flags & TRACING_ASYNC != 0
    }

    /// Whether a poll of this (async) call takes the cold path: its
    /// request's lines are held or it has a `tracing` span.
    #[inline(always)]
    pub(crate) fn polls_cold(&self) -> bool {
        self.flags & (HOLD | TRACING_ASYNC) != 0
    }

    /// The call's callsite.
    #[inline(always)]
    pub(crate) fn callsite(&self) -> &'static Callsite {
        self.callsite
    }

    /// The call's span id (0 if it has none), which its future makes
    /// current while it is polled.
    #[inline(always)]
    pub(crate) fn span_id(&self) -> u64 {
        self.span
    }

    /// Whether this (async) call runs in a correlation scope.
    #[inline(always)]
    pub(crate) fn wants_scope(&self) -> bool {
        self.flags & SCOPED != 0
    }

    /// Records a call that returned normally, and not an `Err`.
    #[inline(always)]
    pub fn success(&mut self) {
        // An inactive guard records nothing, finished or not: its idle
        // path stays one flag test, with no store.
        if self.flags & ACTIVE != 0 {
            self.finished = true;
            self.record(Status::Success, None);
        }
    }

    /// Records a call that returned `Err`.
    pub fn error(&mut self, error: ErrorInfo<'_>) {
        self.finished = true;
        self.record(Status::Error, Some(&error));
    }

    #[inline(never)]
    fn record(&mut self, status: Status, error: Option<&ErrorInfo<'_>>) {
        if self.flags & ACTIVE == 0 {
            return;
        }
        let (elapsed, end) = self.start.elapsed();
        let error_type = error.map(ErrorInfo::short_type_name);
        metrics::finish(
            self.metrics,
            &self.callsite.metrics,
            status,
            elapsed,
            end,
            error_type.as_deref(),
        );
        self.log(status, elapsed, end, error, error_type.as_deref());
    }

    /// `end` is the clock's raw reading at the end of the call: the line's
    /// time, with no further clock read.
    fn log(
        &mut self,
        status: Status,
        elapsed: Duration,
        end: u64,
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
        let logged = site.enabled()
            && (!volume::active(cs.sample())
                || admitted(cs, status, slow, *site.meta.level(), end));
        if !logged && !record::unlogged_wanted() {
            return;
        }
        let message = match Message::for_outcome(status, slow) {
            Some(m) => {
                let m = cs.message(m);
                record::Message::Fixed {
                    text: m.text,
                    quoted: m.quoted,
                }
            }
            None => record::Message::Failed,
        };
        let call = CallRecord {
            meta: site.meta,
            operation: cs.operation(),
            #[cfg(feature = "otlp")]
            site: &cs.number,
            #[cfg(feature = "otlp")]
            messages: cs.messages(),
            status,
            message,
            duration_ns: u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX),
            end_unix_nanos: clock::unix_nanos_at(end),
            error: error.zip(error_type).map(|(e, t)| CallError {
                type_name: t,
                message: e,
            }),
            context: (*self.context).as_deref(),
            slow_threshold_ns: slow.then(|| cs.slow_nanos()),
            span: self.span,
            parent_span: self.parent,
            logged,
            trace: std::cell::Cell::new(None),
        };
        if logged {
            record::emit(&call);
        } else {
            record::emit_unlogged(&call);
        }
    }
}

impl Drop for Guard {
    #[inline(always)]
    fn drop(&mut self) {
        if self.flags != 0 {
            self.close();
        } else {
            // An idle guard's context is its future's to free.
            debug_assert!(self.context.is_none(), "an idle guard dropped its context");
        }
    }
}

impl Guard {
    /// The end of an active or root guard: an unfinished call is recorded
    /// (a panic or a dropped future), then the scope closes. Runs once: the
    /// guard is idle afterwards.
    #[inline(never)]
    pub(crate) fn close(&mut self) {
        if self.flags & ACTIVE != 0 && !self.finished {
            self.unfinished();
        }
        self.free_context();
        if self.flags & HOLD != 0 {
            self.release_held();
        }
        // After logging, which needed the scope's ID and the span.
        if self.flags & ROOT != 0 {
            correlation::close_root();
        }
        if self.flags & SPAN != 0 {
            correlation::span::exit(self.parent);
        }
        if self.flags & TRACING_SYNC != 0 {
            interop::exit_sync();
        }
        self.flags = 0;
    }

    /// The held lines go out (or not) as a whole, the root's line
    /// included; sampling reads the scope's ID. Out of line and cold, so
    /// the close every call pays stays small when nothing is held.
    #[cold]
    #[inline(never)]
    fn release_held(&self) {
        let cs = self.callsite;
        hold::close(|| cs.controls().keeps(cs.sample(), correlation::current));
    }

    /// Whether dropping this guard has anything to do.
    #[inline(always)]
    pub(crate) fn is_idle(&self) -> bool {
        self.flags == 0
    }

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

/// Whether the log volume settings let a line of `cs` at `level` through:
/// sampled out or under the level floor is no; over the rate limit is no,
/// counted; the first line after a flood comes with its summary. An ID
/// made for the decision takes the call's end (raw clock reading `end`)
/// as its time, as the line would.
#[inline(never)]
fn admitted(cs: &Callsite, status: Status, slow: bool, level: Level, end: u64) -> bool {
    match cs.controls().admit(
        status,
        slow,
        level,
        cs.sample(),
        hold::enabled() && hold::is_open(),
        || correlation::current_at(|| clock::unix_nanos_at(end)),
    ) {
        Admit::Write => true,
        Admit::Skip => false,
        Admit::Suppress => {
            ::metrics::counter!(
                volume::LOG_LINES_SUPPRESSED_TOTAL,
                crate::base::names::LABEL_OPERATION => cs.operation()
            )
            .increment(1);
            false
        }
        Admit::WriteAfterSummary {
            suppressed,
            seconds,
        } => {
            tracing::warn!(
                target: "observe::volume",
                operation = cs.operation(),
                suppressed,
                "{}: {suppressed} lines suppressed in the last {seconds} s",
                cs.operation()
            );
            true
        }
    }
}

/// A call's context fields as the members of a JSON object.
fn render(context: impl FnOnce(&mut ContextWriter)) -> Option<String> {
    let mut w = ContextWriter::default();
    context(&mut w);
    w.into_json()
}
