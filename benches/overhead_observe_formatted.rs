//! `#[monitor_performance]` with observe fully installed, but its lines
//! handed to a sink that discards them: what a logged call costs its caller
//! before the hand-off to a delivering sink.
//!
//! Not a target row: `overhead_observe_full` is. Set beside it, it shows
//! how much of that row is the queue push and the delivering worker's
//! activity, which on a two-core machine shares the cores with the caller.

mod common;

use std::hint::black_box;

use common::{run, work};
use criterion::{Criterion, criterion_group, criterion_main};
use observe::sink::Sink;
use observe::{Observe, monitor_performance};

#[monitor_performance("bench")]
fn observed(x: u64) -> u64 {
    work(x)
}

#[monitor_performance("bench_async")]
async fn observed_async(x: u64) -> u64 {
    work(x)
}

/// Takes every line and keeps none.
#[derive(Debug)]
struct Discard;

impl Sink for Discard {
    fn name(&self) -> &str {
        "discard"
    }

    fn write_line(&self, line: &str) {
        black_box(line);
    }
}

fn anchors(c: &mut Criterion) {
    let _guard = Observe::builder("bench")
        .sink(Discard)
        .install()
        .expect("install");
    let mut g = c.benchmark_group("observe");
    g.bench_function("full_json_discarded/sync", |b| {
        b.iter(|| observed(black_box(1)))
    });
    g.bench_function("full_json_discarded/async", |b| {
        b.iter(|| run(observed_async(black_box(1))))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = anchors
}
criterion_main!(benches);
