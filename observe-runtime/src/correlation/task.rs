//! Spawning that keeps the correlation ID (published as
//! `correlation::spawn`, `correlation::spawn_blocking` and
//! `correlation::thread::spawn`).
//!
//! A new thread or task starts with no correlation scope: a bare
//! `std::thread::spawn` or `tokio::spawn` **does not** inherit the caller's
//! ID, so its lines would carry a new one. These helpers take the caller's
//! current ID (making it now if the caller's scope had none yet) and enter
//! it in the child. They also carry the caller's `tracing` dispatcher, so a
//! thread-scoped subscriber (such as [`crate::testing`]'s) sees the child's
//! lines too.

#[cfg(feature = "tokio")]
use std::future::Future;

use tracing::Dispatch;

use super::{CorrelationId, current, scope};

/// What a child inherits from the code that spawns it.
#[derive(Debug, Clone)]
struct Inherited {
    id: Option<CorrelationId>,
    /// The spawner's monitored call: the child's calls are its children.
    span: u64,
    dispatch: Dispatch,
}

impl Inherited {
    fn capture() -> Self {
        Self {
            id: current(),
            span: super::span::current(),
            dispatch: tracing::dispatcher::get_default(Dispatch::clone),
        }
    }

    fn run<R>(self, f: impl FnOnce() -> R) -> R {
        let span = self.span;
        tracing::dispatcher::with_default(&self.dispatch, || match self.id {
            Some(id) => scope(id, || super::span::within(span, f)),
            None => super::span::within(span, f),
        })
    }
}

/// Threads that inherit the spawner's correlation ID.
pub mod thread {
    use super::Inherited;

    /// Like [`std::thread::spawn`], but the new thread runs in the caller's
    /// correlation scope.
    ///
    /// ```
    /// use observe_runtime::correlation::{self, CorrelationId};
    ///
    /// let id: CorrelationId = "batch-9".parse().unwrap();
    /// let seen = correlation::scope(id.clone(), || {
    ///     correlation::thread::spawn(correlation::current).join().unwrap()
    /// });
    /// assert_eq!(seen, Some(id));
    /// ```
    ///
    /// # Panics
    ///
    /// If the OS cannot create a thread, as [`std::thread::spawn`] does.
    pub fn spawn<F, T>(f: F) -> std::thread::JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let inherited = Inherited::capture();
        std::thread::spawn(move || inherited.run(f))
    }

    /// Like [`std::thread::Builder::spawn`], in the caller's correlation
    /// scope.
    ///
    /// # Errors
    ///
    /// If the OS cannot create the thread.
    pub fn spawn_with<F, T>(
        builder: std::thread::Builder,
        f: F,
    ) -> std::io::Result<std::thread::JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let inherited = Inherited::capture();
        builder.spawn(move || inherited.run(f))
    }
}

/// Like [`tokio::spawn`], but the task runs every poll in the caller's
/// correlation scope (and with the caller's `tracing` dispatcher).
///
/// A bare `tokio::spawn` does not inherit the ID: use this instead.
///
/// # Panics
///
/// Outside a Tokio runtime, as [`tokio::spawn`] does.
#[cfg(feature = "tokio")]
pub fn spawn<F>(future: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    use tracing::instrument::WithSubscriber as _;
    let Inherited { id, span, dispatch } = Inherited::capture();
    let slot = id.map_or(super::Slot::Empty, super::Slot::Id);
    tokio::spawn(super::WithCorrelation::new(future, slot, span).with_subscriber(dispatch))
}

/// Like [`tokio::task::spawn_blocking`], in the caller's correlation scope.
///
/// # Panics
///
/// Outside a Tokio runtime, as [`tokio::task::spawn_blocking`] does.
#[cfg(feature = "tokio")]
pub fn spawn_blocking<F, R>(f: F) -> tokio::task::JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let inherited = Inherited::capture();
    tokio::task::spawn_blocking(move || inherited.run(f))
}
