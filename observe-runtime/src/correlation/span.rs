//! The span of the innermost monitored call running on this thread.
//!
//! Every monitored call that records anything is a span of its request's
//! trace, with a 64-bit id. The id of the call running now is kept in one
//! `Copy` cell, so a nested call finds its parent, a log line its span and
//! an outbound `traceparent` its parent-id with one load. Sync calls set
//! the cell for their whole run; async calls for each poll; a new
//! correlation scope (a new request) starts with no span, and the spawn
//! helpers carry the spawner's span into the child.

use std::cell::Cell;

thread_local! {
    /// 0: no monitored call is running (span ids are never 0).
    static CURRENT: Cell<u64> = const { Cell::new(0) };
}

/// The span id of the innermost monitored call on this thread; 0 outside
/// every call.
#[inline]
pub(crate) fn current() -> u64 {
    CURRENT.with(Cell::get)
}

/// Makes `span` the current span (0: none); returns the one it replaces,
/// for [`exit`].
#[inline]
pub(crate) fn enter(span: u64) -> u64 {
    CURRENT.with(|c| c.replace(span))
}

/// Puts back the span [`enter`] replaced.
#[inline]
pub(crate) fn exit(previous: u64) {
    CURRENT.with(|c| c.set(previous));
}

/// A new span id: random and never 0.
#[inline]
pub(crate) fn fresh() -> u64 {
    // All 64 bits random; 0 means "no span".
    super::random_u64().max(1)
}

/// Runs `f` with `span` current, restoring the previous span afterwards,
/// also while unwinding.
#[inline]
pub(crate) fn within<R>(span: u64, f: impl FnOnce() -> R) -> R {
    struct Restore(u64);
    impl Drop for Restore {
        fn drop(&mut self) {
            exit(self.0);
        }
    }
    let _restore = Restore(enter(span));
    f()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_nest_and_restore_also_when_unwinding() {
        assert_eq!(current(), 0);
        let outer = fresh();
        assert_ne!(outer, 0);
        within(outer, || {
            assert_eq!(current(), outer);
            let inner = fresh();
            let prev = enter(inner);
            assert_eq!((prev, current()), (outer, inner));
            exit(prev);
            let caught = std::panic::catch_unwind(|| within(inner, || panic!("boom")));
            assert!(caught.is_err());
            assert_eq!(current(), outer);
        });
        assert_eq!(current(), 0);
    }
}
