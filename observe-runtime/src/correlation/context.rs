//! The current correlation ID of this thread, and scopes that set it.
//!
//! The state is one thread-local slot. A monitored root call opens a scope
//! whose ID is generated lazily, the first time something asks for it, so a
//! call that logs nothing never pays for an ID.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::CorrelationId;

/// What the current scope knows about its ID.
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

thread_local! {
    static CURRENT: Cell<Slot> = const { Cell::new(Slot::Empty) };
}

/// Puts `slot` in the thread's slot and returns what was there.
pub(crate) fn swap(slot: Slot) -> Slot {
    CURRENT.with(|c| c.replace(slot))
}

/// Whether a scope is open on this thread.
pub(crate) fn in_scope() -> bool {
    CURRENT.with(|c| {
        let s = c.take();
        let open = !matches!(s, Slot::Empty);
        c.set(s);
        open
    })
}

/// The current ID, made now if the open scope had none yet. `None` outside
/// every scope.
#[must_use]
pub fn current() -> Option<CorrelationId> {
    CURRENT.with(|c| match c.take() {
        Slot::Empty => None,
        Slot::Lazy => {
            let id = CorrelationId::generate();
            c.set(Slot::Id(id.clone()));
            Some(id)
        }
        Slot::Id(id) => {
            c.set(Slot::Id(id.clone()));
            Some(id)
        }
    })
}

/// The current ID, or a fresh one (not stored) outside every scope; this is
/// what a log line outside any request carries.
pub(crate) fn current_or_fresh() -> CorrelationId {
    current().unwrap_or_else(CorrelationId::generate)
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
    f()
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
    }
}

impl<F> WithCorrelation<F> {
    pub(crate) fn new(inner: F, slot: Slot) -> Self {
        Self { inner, slot }
    }
}

impl<F: Future> Future for WithCorrelation<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let prev = swap(std::mem::take(this.slot));
        // Takes back the (maybe now materialised) ID even if the poll panics,
        // so the next poll and the caller's scope both stay intact.
        let _restore = PollRestore {
            slot: this.slot,
            prev: Some(prev),
        };
        this.inner.poll(cx)
    }
}

struct PollRestore<'a> {
    slot: &'a mut Slot,
    prev: Option<Slot>,
}

impl Drop for PollRestore<'_> {
    fn drop(&mut self) {
        if let Some(prev) = self.prev.take() {
            *self.slot = swap(prev);
        }
    }
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
        WithCorrelation::new(self, Slot::Id(id))
    }

    /// Runs every poll of this future with the caller's current correlation ID
    /// (made now if the caller's scope had none yet). Outside every scope the
    /// future runs with no ID, so its first monitored call starts one.
    fn in_current_correlation(self) -> WithCorrelation<Self> {
        let slot = current().map_or(Slot::Empty, Slot::Id);
        WithCorrelation::new(self, slot)
    }
}

impl<F: Future> FutureExt for F {}
