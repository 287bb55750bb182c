//! `#[tracing::instrument(err)]` plus one `info!`, with tracing-subscriber's
//! `fmt().json()` writing into `io::sink` as the global subscriber.

mod common;

use std::hint::black_box;

use common::{run, work};
use criterion::Criterion;

#[tracing::instrument(err)]
fn traced(x: u64) -> Result<u64, std::io::Error> {
    tracing::info!("bench completed");
    Ok(work(x))
}

#[tracing::instrument(err)]
async fn traced_async(x: u64) -> Result<u64, std::io::Error> {
    tracing::info!("bench completed");
    Ok(work(x))
}

fn anchors(c: &mut Criterion) {
    tracing_subscriber::fmt()
        .json()
        .with_writer(std::io::sink)
        .init();
    let mut g = c.benchmark_group("tracing");
    g.bench_function("json_sink/sync", |b| b.iter(|| traced(black_box(1))));
    g.bench_function("json_sink/async", |b| {
        b.iter(|| run(traced_async(black_box(1))))
    });
    g.finish();
}

common::bench_main!(anchors);
