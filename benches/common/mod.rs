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

/// Writes the rows of a bench that is not criterion's to
/// `$CARGO_TARGET_DIR/observe-extra/{bench}.json` (default `target/`), where
/// `bench_report` reads them; returns the path.
pub(crate) fn write_results(bench: &str, rows: Vec<serde_json::Value>) -> std::path::PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .filter(|d| !d.is_empty())
        .map_or_else(
            || std::path::PathBuf::from("target"),
            std::path::PathBuf::from,
        );
    let path = target.join("observe-extra").join(format!("{bench}.json"));
    std::fs::create_dir_all(path.parent().expect("a parent")).expect("create the results folder");
    let json = serde_json::to_string_pretty(&serde_json::json!({ "rows": rows })).expect("json");
    std::fs::write(&path, json + "\n").expect("write the results");
    path
}
