//! Overhead anchors that need nothing installed: the bare body, clock
//! reads, the `metrics` facade's "is a recorder set?" question,
//! `#[tracing::instrument]` without a subscriber, observe with nothing
//! installed, and correlation ID generation.
//!
//! Variants needing a global subscriber or recorder live in their own
//! bench binaries (`overhead_*`) so they cannot disturb these.

mod common;

use std::hint::black_box;

use common::{run, traced, traced_async, work};
use criterion::Criterion;
use observe::monitor_performance;

#[monitor_performance]
fn observed(x: u64) -> u64 {
    work(x)
}

#[monitor_performance]
async fn observed_async(x: u64) -> u64 {
    work(x)
}

async fn plain_async(x: u64) -> u64 {
    work(x)
}

fn anchors(c: &mut Criterion) {
    let mut g = c.benchmark_group("baseline");
    g.bench_function("sync", |b| b.iter(|| work(black_box(1))));
    g.bench_function("async", |b| b.iter(|| run(plain_async(black_box(1)))));
    g.finish();

    let mut g = c.benchmark_group("clock");
    g.bench_function("std_pair", |b| {
        b.iter(|| {
            let start = std::time::Instant::now();
            let v = work(black_box(1));
            black_box(start.elapsed());
            v
        });
    });
    let clock = quanta::Clock::new();
    g.bench_function("quanta_pair", |b| {
        b.iter(|| {
            let start = clock.now();
            let v = work(black_box(1));
            black_box(clock.now() - start);
            v
        });
    });
    g.finish();

    // What every monitored call asks the facade, even with nothing
    // installed: the floor of the idle row.
    let mut g = c.benchmark_group("metrics");
    g.bench_function("with_recorder", |b| {
        b.iter(|| {
            let v = work(black_box(1));
            black_box(metrics::with_recorder(|r| std::mem::size_of_val(r)));
            v
        });
    });
    g.finish();

    let mut g = c.benchmark_group("tracing");
    g.bench_function("no_subscriber/sync", |b| b.iter(|| traced(black_box(1))));
    g.bench_function("no_subscriber/async", |b| {
        b.iter(|| run(traced_async(black_box(1))))
    });
    g.finish();

    let mut g = c.benchmark_group("observe");
    g.bench_function("disabled/sync", |b| b.iter(|| observed(black_box(1))));
    g.bench_function("disabled/async", |b| {
        b.iter(|| run(observed_async(black_box(1))))
    });
    g.finish();

    let mut g = c.benchmark_group("correlation");
    g.bench_function("generate", |b| {
        b.iter(observe::CorrelationId::generate_request)
    });
    g.bench_function("generate_uuid_v7", |b| {
        b.iter(observe::CorrelationId::generate_uuid_v7)
    });
    g.finish();
}

common::bench_main!(anchors);
