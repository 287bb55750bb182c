//! The body every variant wraps, and a tiny executor for async variants,
//! shared by the overhead benches so their numbers compare.
#![allow(dead_code)] // each bench binary uses a part

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

/// The trivial body: a few arithmetic instructions the optimiser cannot
/// remove.
#[inline(always)]
pub(crate) fn work(x: u64) -> u64 {
    black_box(x).wrapping_mul(31).wrapping_add(7)
}

/// Polls a future that completes without waiting, as an executor would.
#[inline(always)]
pub(crate) fn run<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

/// Criterion settings for nanosecond-scale functions on a noisy machine.
pub(crate) fn criterion() -> criterion::Criterion {
    criterion::Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2))
        .sample_size(50)
        .configure_from_args()
}
