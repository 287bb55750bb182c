//! `#[monitor_performance]` with observe installed (Prometheus recorder on)
//! and the success line filtered out: metrics only.

mod common;

use std::hint::black_box;

use common::{run, work};
use criterion::{Criterion, criterion_group, criterion_main};
use observe::{Observe, monitor_performance};

#[monitor_performance("bench")]
fn observed(x: u64) -> u64 {
    work(x)
}

#[monitor_performance("bench_async")]
async fn observed_async(x: u64) -> u64 {
    work(x)
}

fn anchors(c: &mut Criterion) {
    let _guard = Observe::builder("bench")
        .level(tracing_subscriber::filter::LevelFilter::WARN)
        .install()
        .expect("install");
    let mut g = c.benchmark_group("observe");
    g.bench_function("metrics_only/sync", |b| b.iter(|| observed(black_box(1))));
    g.bench_function("metrics_only/async", |b| {
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
