//! The current correlation ID of this thread, and scopes that set it.
//!
//! A monitored root call opens a scope whose ID is generated lazily, the
//! first time something asks for it, so a call that logs nothing never pays
//! for an ID.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::CorrelationId;
use super::id::TraceContext;
use super::span;

/// What a scope knows about its ID; the state of a [`WithCorrelation`]
/// future between polls.
#[derive(Debug, Clone, Default)]
pub(crate) enum Slot {
    /// No scope is open.
    #[default]
    Empty,
    /// A scope is open; its ID is made on first use.
    Lazy,
    /// A scope is open with this ID.
    Id(CorrelationId),
}

/// The thread's state, split so the hot path touches only a `Copy` cell:
/// opening and closing a lazy scope (what every monitored root call does)
/// never moves or drops an ID.
const CLOSED: u8 = 0;
const LAZY: u8 = 1;
const WITH_ID: u8 = 2;

thread_local! {
    static STATE: Cell<u8> = const { Cell::new(CLOSED) };
    /// The ID, present exactly when `STATE` is `WITH_ID`.
    static ID: RefCell<Option<CorrelationId>> = const { RefCell::new(None) };
}

#[inline]
fn state() -> u8 {
    STATE.with(Cell::get)
}

#[inline]
fn set_state(s: u8) {
    STATE.with(|c| c.set(s));
}

// `ID` holds memory, so it is destroyed when its thread exits, and a
// thread-local's destructor that logs may run after that: every access
// goes through `try_with`, and a gone cell reads as "no ID here" (a panic
// there would abort the process). `STATE` has no destructor.

#[inline]
fn take_id() -> Option<CorrelationId> {
    ID.try_with(|c| c.borrow_mut().take()).ok().flatten()
}

/// Stores `id`; `false` if the thread's cell is already gone.
#[inline]
fn put_id(id: CorrelationId) -> bool {
    ID.try_with(|c| *c.borrow_mut() = Some(id)).is_ok()
}

/// Takes the thread's whole state out, leaving no scope open.
#[inline]
fn take_slot() -> Slot {
    match state() {
        LAZY => {
            set_state(CLOSED);
            Slot::Lazy
        }
        WITH_ID => {
            set_state(CLOSED);
            take_id().map_or(Slot::Lazy, Slot::Id)
        }
        _ => Slot::Empty,
    }
}

/// Makes `slot` the thread's state (which the caller has taken out).
#[inline]
fn put_slot(slot: Slot) {
    match slot {
        Slot::Empty => set_state(CLOSED),
        Slot::Lazy => set_state(LAZY),
        // A scope stays open even where its ID can no longer be kept.
        Slot::Id(id) => set_state(if put_id(id) { WITH_ID } else { LAZY }),
    }
}

/// Puts `slot` in the thread's state and returns what was there.
#[inline]
pub(crate) fn swap(slot: Slot) -> Slot {
    let prev = take_slot();
    put_slot(slot);
    prev
}

/// Opens a lazy scope if none is open; `true` if this call opened it (and
/// must close it with [`close_root`]).
#[inline]
pub(crate) fn open_root() -> bool {
    STATE.with(|c| {
        let closed = c.get() == CLOSED;
        if closed {
            c.set(LAZY);
        }
        closed
    })
}

/// Closes the scope [`open_root`] opened.
#[inline]
pub(crate) fn close_root() {
    if STATE.with(|c| c.replace(CLOSED)) == WITH_ID {
        clear_id_memory();
    }
}

/// After the state went back to `CLOSED`: only an ID holding memory is
/// worth clearing now, since the state says there is none and the next
/// `put_id` replaces it. (Moving or overwriting the whole value reads back
/// the bytes `current` just wrote, which stalls store forwarding on every
/// root call.)
#[inline]
fn clear_id_memory() {
    let _ = ID.try_with(|c| {
        let mut id = c.borrow_mut();
        if id.as_ref().is_some_and(CorrelationId::holds_memory) {
            *id = None;
        }
    });
}

/// The current ID, made now if the open scope had none yet. `None` outside
/// every scope.
#[must_use]
pub fn current() -> Option<CorrelationId> {
    current_at(crate::base::clock::unix_nanos)
}

/// [`current`], taking the time for an ID it makes from `now` (a call's
/// end, already read: no clock read of its own).
pub(crate) fn current_at(now: impl FnOnce() -> u64) -> Option<CorrelationId> {
    match state() {
        LAZY => {
            let id = CorrelationId::generate_at(now());
            if put_id(id.clone()) {
                set_state(WITH_ID);
            }
            Some(id)
        }
        WITH_ID => ID.try_with(|c| c.borrow().clone()).ok().flatten(),
        _ => None,
    }
}

/// The ID a line written at `unix_nanos` carries: the current one, made
/// now with that time if the open scope had none yet, or a fresh one (not
/// stored) outside every scope.
pub(crate) fn current_or_fresh_at(unix_nanos: u64) -> CorrelationId {
    current_at(|| unix_nanos).unwrap_or_else(|| CorrelationId::generate_at(unix_nanos))
}

/// Appends the ID a log line written at `unix_nanos` carries: the current
/// one, made now (with that time, no clock read) if the open scope had none
/// yet, or a fresh one (not stored) outside every scope. Written in place:
/// returning a copy would clone an inbound ID's `Arc` per line. Returns
/// the ID's trace ([`CorrelationId::write_traced`]).
pub(crate) fn write_current_or_fresh_at(out: &mut String, unix_nanos: u64) -> TraceContext {
    write_with(out, unix_nanos, CorrelationId::write_traced)
}

/// [`write_current_or_fresh_at`] for a caller that knows the ID's trace
/// already: the text only.
pub(crate) fn write_current_text_at(out: &mut String, unix_nanos: u64) {
    write_with(out, unix_nanos, CorrelationId::write_to);
}

fn write_with<T>(
    out: &mut String,
    unix_nanos: u64,
    write: impl Fn(&CorrelationId, &mut String) -> T,
) -> T {
    match state() {
        WITH_ID => {
            let written = ID.try_with(|c| match &*c.borrow() {
                Some(id) => write(id, out),
                None => write(&CorrelationId::generate_at(unix_nanos), out),
            });
            written.unwrap_or_else(|_| write(&CorrelationId::generate_at(unix_nanos), out))
        }
        LAZY => {
            let id = CorrelationId::generate_at(unix_nanos);
            let written = write(&id, out);
            if put_id(id) {
                set_state(WITH_ID);
            }
            written
        }
        _ => write(&CorrelationId::generate_at(unix_nanos), out),
    }
}

/// The trace context of the current ID (made now, at the time `now`
/// gives, if the open scope had none yet): its trace-id and the inbound
/// trace it came with, if any. `None` outside every scope.
pub(crate) fn current_trace_at(now: impl FnOnce() -> u64) -> Option<(u128, Option<TraceContext>)> {
    let traced = |id: &CorrelationId| (id.trace_id(), id.trace_context());
    match state() {
        WITH_ID => ID
            .try_with(|c| c.borrow().as_ref().map(traced))
            .ok()
            .flatten(),
        LAZY => current_at(now).as_ref().map(traced),
        _ => None,
    }
}

/// Runs `f` with `id` as the current correlation ID, restoring the previous
/// state afterwards (also when `f` panics).
///
/// ```
/// use observe_runtime::correlation::{self, CorrelationId};
///
/// let id: CorrelationId = "job-42".parse().unwrap();
/// correlation::scope(id.clone(), || {
///     assert_eq!(correlation::current(), Some(id));
/// });
/// assert_eq!(correlation::current(), None);
/// ```
pub fn scope<R>(id: CorrelationId, f: impl FnOnce() -> R) -> R {
    let _restore = Restore(Some(swap(Slot::Id(id))));
    // A new scope is a new request: no call of another one is its parent.
    span::within(0, f)
}

/// Restores the thread's previous slot when dropped, also while unwinding.
#[derive(Debug)]
pub(crate) struct Restore(pub(crate) Option<Slot>);

impl Drop for Restore {
    fn drop(&mut self) {
        if let Some(prev) = self.0.take() {
            swap(prev);
        }
    }
}

pin_project_lite::pin_project! {
    /// A future that runs every poll of its inner future inside a correlation
    /// scope, so the ID survives `.await` points and moves between threads.
    ///
    /// Made by [`FutureExt::with_correlation`] and
    /// [`FutureExt::in_current_correlation`], and by monitored `async fn`s.
    #[derive(Debug)]
    #[must_use = "futures do nothing unless polled"]
    pub struct WithCorrelation<F> {
        #[pin]
        inner: F,
        slot: Slot,
        // The monitored call the future's calls are children of; 0 for a
        // new request.
        span: u64,
    }
}

impl<F> WithCorrelation<F> {
    pub(crate) fn new(inner: F, slot: Slot, span: u64) -> Self {
        Self { inner, slot, span }
    }
}

impl<F: Future> Future for WithCorrelation<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        // The slot comes back even if the poll panics, so the next poll and
        // the caller's scope both stay intact.
        let inner = this.inner;
        in_slot(this.slot, *this.span, || inner.poll(cx))
    }
}

/// Leaves the scope [`in_slot`] entered lazily: the thread is back outside
/// every scope and the slot keeps an ID made meanwhile.
struct LazyRestore<'a> {
    slot: &'a mut Slot,
    /// Whether the slot is used again; if not, a generated ID is left in
    /// place as [`close_root`] leaves it.
    keep: bool,
    /// The span that was current before.
    span: u64,
}

impl Drop for LazyRestore<'_> {
    #[inline]
    fn drop(&mut self) {
        span::exit(self.span);
        if STATE.with(|c| c.replace(CLOSED)) == WITH_ID {
            if self.keep {
                if let Some(id) = take_id() {
                    *self.slot = Slot::Id(id);
                }
            } else {
                clear_id_memory();
            }
        }
    }
}

struct PollRestore<'a> {
    slot: &'a mut Slot,
    prev: Option<Slot>,
    /// The span that was current before.
    span: u64,
}

impl Drop for PollRestore<'_> {
    fn drop(&mut self) {
        span::exit(self.span);
        if let Some(prev) = self.prev.take() {
            *self.slot = swap(prev);
        }
    }
}

/// The slot a monitored async call runs in, taken at its first poll: a
/// child shares its parent's ID (made now if still lazy, because the two
/// scopes separate after this poll); a root call gets a lazy scope.
pub(crate) fn join_slot() -> Slot {
    match state() {
        CLOSED => Slot::Lazy,
        _ => current().map_or(Slot::Lazy, Slot::Id),
    }
}

/// Runs `f` with `slot` as the thread's state and `span` as its current
/// span (0: none), then takes the (maybe now materialised) slot back and
/// puts the previous span back, also when `f` panics.
#[inline]
pub(crate) fn in_slot<T>(slot: &mut Slot, span: u64, f: impl FnOnce() -> T) -> T {
    in_slot_then(slot, span, f, |_| true)
}

/// [`in_slot`], where `keep` says from `f`'s result whether the slot will
/// be used again (a finished call's will not, so an ID made during its
/// last poll need not be moved back into it).
#[inline]
pub(crate) fn in_slot_then<T>(
    slot: &mut Slot,
    span: u64,
    f: impl FnOnce() -> T,
    keep: impl FnOnce(&T) -> bool,
) -> T {
    // The span goes in and out with the slot, under the same guard.
    let span = span::enter(span);
    // The commonest case, a root async call polled outside every scope,
    // only flips the state byte: moving whole slots in and out reads back
    // bytes just written in pieces, which stalls store forwarding.
    if matches!(slot, Slot::Lazy) && state() == CLOSED {
        set_state(LAZY);
        let mut restore = LazyRestore {
            slot,
            keep: true,
            span,
        };
        let out = f();
        restore.keep = keep(&out);
        return out;
    }
    let prev = swap(std::mem::take(slot));
    let _restore = PollRestore {
        slot,
        prev: Some(prev),
        span,
    };
    f()
}

/// Adapters that run a future inside a correlation scope.
pub trait FutureExt: Future + Sized {
    /// Runs every poll of this future with `id` as the current correlation ID.
    ///
    /// ```
    /// use observe_runtime::correlation::{self, CorrelationId, FutureExt};
    ///
    /// let id: CorrelationId = "req-7".parse().unwrap();
    /// let seen = futures_lite_block_on(async { correlation::current() }.with_correlation(id.clone()));
    /// assert_eq!(seen, Some(id));
    /// # fn futures_lite_block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     use std::task::{Context, Poll, Waker};
    /// #     let mut f = std::pin::pin!(f);
    /// #     let mut cx = Context::from_waker(Waker::noop());
    /// #     loop { if let Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } }
    /// # }
    /// ```
    fn with_correlation(self, id: CorrelationId) -> WithCorrelation<Self> {
        WithCorrelation::new(self, Slot::Id(id), 0)
    }

    /// Runs every poll of this future with the caller's current correlation ID
    /// (made now if the caller's scope had none yet). Outside every scope the
    /// future runs with no ID, so its first monitored call starts one.
    fn in_current_correlation(self) -> WithCorrelation<Self> {
        let slot = current().map_or(Slot::Empty, Slot::Id);
        WithCorrelation::new(self, slot, span::current())
    }
}

impl<F: Future> FutureExt for F {}
