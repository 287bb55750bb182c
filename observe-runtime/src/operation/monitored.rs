//! The future of one monitored `async fn` call.
//!
//! It owns the call's guard and its correlation slot: every poll, the
//! finish of the call and the drop of an unfinished call run inside that
//! slot, so the guard, the body and a "cancelled" line share one ID however
//! the executor moves the future. Where nothing can log, no slot is opened
//! and a poll costs one flag test over the body's own.

use std::future::Future;
use std::mem::ManuallyDrop;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::Callsite;
use super::guard::{Guard, Hint};
use super::interop;
use crate::correlation::{self, Slot};
use crate::log::hold::{self, Parked};

pin_project_lite::pin_project! {
    /// A monitored call's body with its guard. Made by the
    /// `monitor_performance` expansion through [`monitored`].
    #[doc(hidden)]
    #[must_use = "futures do nothing unless polled"]
    pub struct Monitored<F, Fin> {
        #[pin]
        body: F,
        call: Call,
        // `None` once finished.
        finish: Option<Fin>,
    }
}

/// The guard and the correlation slot it records in.
///
/// The slot and the parked parts are `ManuallyDrop`, as is the guard's
/// context, so that dropping the call of an idle guard, which holds none
/// of them, is a few flag tests with no drop glue per field.
struct Call {
    /// Holds the context fields until the first poll starts it.
    guard: Guard,
    slot: ManuallyDrop<Slot>,
    /// The request's held lines between polls, when this call is the root
    /// of a request that holds them; only ever non-empty while the guard
    /// is not idle.
    held: ManuallyDrop<Parked>,
    /// The call's `tracing` span, when interop with `tracing` is on; like
    /// `held`, only ever present while the guard is not idle.
    traced: ManuallyDrop<interop::Parked>,
    // Whether the first poll has started the guard.
    started: bool,
}

// The call's handles into the recorder and the callsite are shared and
// not unwind safe by type, but a caught panic leaves nothing of theirs half
// updated: the guard records it as the call's outcome. Without these, a
// monitored future could not go through `catch_unwind` as its body can.
impl std::panic::UnwindSafe for Call {}
impl std::panic::RefUnwindSafe for Call {}

impl Drop for Call {
    #[inline(always)]
    fn drop(&mut self) {
        if self.guard.holds_context() || !self.guard.is_idle() || matches!(*self.slot, Slot::Id(_))
        {
            self.release();
        }
    }
}

impl Call {
    /// An unfinished call logs "cancelled" (or "panicked") as its guard
    /// closes: in its own scope, like its other lines. Then what the call
    /// holds is freed.
    #[inline(never)]
    fn release(&mut self) {
        if !self.guard.is_idle() && self.guard.wants_scope() {
            let guard = &mut self.guard;
            let held = &mut *self.held;
            let _traced = self.traced.reenter();
            let span = guard.span_id();
            correlation::in_slot(&mut self.slot, span, || {
                let _held = guard.holds().then(|| hold::enter(held));
                guard.close();
            });
        }
        drop(ManuallyDrop::into_inner(std::mem::take(&mut self.traced)));
        drop(ManuallyDrop::into_inner(std::mem::take(&mut self.held)));
        // A call never polled, or never started, still holds its context.
        self.guard.free_context();
        drop(ManuallyDrop::into_inner(std::mem::replace(
            &mut self.slot,
            ManuallyDrop::new(Slot::Empty),
        )));
    }
}

impl<F, Fin> std::fmt::Debug for Monitored<F, Fin> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitored")
            .field("guard", &self.call.guard)
            .finish_non_exhaustive()
    }
}

/// Wraps one async call: `callsite` is the function's, `context` its
/// rendered context fields ([`Guard::async_context`]), `body` the
/// function's own future, and `finish` classifies its output and finishes
/// the guard. `hint` ties the body's output to the function's return type
/// before the body is checked.
#[doc(hidden)]
#[inline(always)]
pub fn monitored<R, F, Fin>(
    hint: Hint<R>,
    callsite: &'static Callsite,
    context: Option<String>,
    body: F,
    finish: Fin,
) -> Monitored<F, Fin>
where
    F: Future<Output = R>,
    Fin: FnOnce(&R, &mut Guard),
{
    let _ = hint;
    Monitored {
        body,
        call: Call {
            guard: Guard::new_async(callsite, context),
            slot: ManuallyDrop::new(Slot::Empty),
            held: ManuallyDrop::new(Parked::default()),
            traced: ManuallyDrop::new(interop::Parked::default()),
            started: false,
        },
        finish: Some(finish),
    }
}

impl<F: Future, Fin: FnOnce(&F::Output, &mut Guard)> Future for Monitored<F, Fin> {
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let call = this.call;
        if !call.started {
            call.started = true;
            // Started in place: the guard is timed from the first poll.
            call.guard.enter_async();
            if call.guard.wants_scope() {
                *call.slot = correlation::join_slot();
                // The outermost monitored call of the request, as far as
                // this thread can tell, holds its lines.
                if hold::enabled() && !hold::is_open() {
                    call.guard.hold_root();
                }
            }
        }
        if !call.guard.wants_scope() {
            let out = std::task::ready!(this.body.poll(cx));
            if let Some(finish) = this.finish.take() {
                finish(&out, &mut call.guard);
            }
            return Poll::Ready(out);
        }
        let body = this.body;
        let guard = &mut call.guard;
        let finish = this.finish;
        if guard.polls_cold() {
            let (slot, held, traced) = (&mut call.slot, &mut call.held, &mut call.traced);
            return poll_cold(body, guard, finish, slot, held, traced, cx);
        }
        // The call's span is current while its body runs, so calls it
        // makes are its children (put back with the slot, also if the
        // body panics). A finished call's slot is not used again.
        let span = guard.span_id();
        correlation::in_slot_then(
            &mut call.slot,
            span,
            || poll_body(body, guard, finish, cx),
            Poll::is_pending,
        )
    }
}

/// One poll of the body in the call's scope; a finished call is recorded
/// and its guard closed while the scope is in place, so dropping the call
/// has nothing left to do.
#[inline(always)]
fn poll_body<F: Future, Fin: FnOnce(&F::Output, &mut Guard)>(
    body: Pin<&mut F>,
    guard: &mut Guard,
    finish: &mut Option<Fin>,
    cx: &mut Context<'_>,
) -> Poll<F::Output> {
    let out = std::task::ready!(body.poll(cx));
    if let Some(finish) = finish.take() {
        finish(&out, guard);
        guard.close();
    }
    Poll::Ready(out)
}

/// [`poll_body`] for the root of a request whose lines are held (its
/// buffer is in place for the poll) or for a call with a `tracing` span
/// (entered for the poll, opened at the first, closed with the call). Out
/// of line, so that the poll of every other call stays as small as without
/// either.
#[cold]
#[inline(never)]
fn poll_cold<F: Future, Fin: FnOnce(&F::Output, &mut Guard)>(
    body: Pin<&mut F>,
    guard: &mut Guard,
    finish: &mut Option<Fin>,
    slot: &mut Slot,
    held: &mut Parked,
    traced: &mut interop::Parked,
    cx: &mut Context<'_>,
) -> Poll<F::Output> {
    let traces = guard.traces();
    let callsite = guard.callsite();
    let span = guard.span_id();
    let out = correlation::in_slot_then(
        slot,
        span,
        || {
            let _held = guard.holds().then(|| hold::enter(held));
            let _traced = traces.then(|| traced.enter(callsite));
            poll_body(body, guard, finish, cx)
        },
        Poll::is_pending,
    );
    if out.is_ready() {
        traced.close();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::alloc_count::counted;

    crate::__callsite!(
        CALLSITE,
        "monitored.test",
        INFO,
        0u64,
        file!(),
        line!(),
        0u64
    );

    fn call(context: Option<String>) -> impl Future<Output = u8> {
        monitored(
            Hint::new(),
            &CALLSITE,
            context,
            async { 1u8 },
            |_: &u8, guard: &mut Guard| guard.success(),
        )
    }

    #[test]
    fn a_call_dropped_before_its_first_poll_frees_its_context() {
        // Made outside the count: only what dropping it does is counted.
        let unpolled = call(Some(r#""entity":"s1""#.to_owned()));
        let freed = counted(|| drop(unpolled));
        assert_eq!((freed.allocs, freed.frees), (0, 1));
        let bare = call(None);
        assert_eq!(counted(|| drop(bare)).frees, 0);
    }
}
