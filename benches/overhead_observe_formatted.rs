//! `#[monitor_performance]` with observe fully installed, but its lines
//! handed to a sink that discards them: what a logged call costs its caller
//! before the hand-off to a delivering sink.
//!
//! Not a target row: `overhead_observe_full` is. Set beside it, it shows
//! how much of that row is the queue push and the delivering worker's
//! activity, which on a two-core machine shares the cores with the caller.

mod common;

use common::{observed, observed_async};
use criterion::Criterion;
use observe::Observe;

fn anchors(c: &mut Criterion) {
    let _guard = Observe::builder("bench")
        .sink(common::Discard)
        .install()
        .expect("install");
    common::observe_pair(c, "full_json_discarded", observed, observed_async);
}

common::bench_main!(anchors);
