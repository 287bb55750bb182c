//! `#[fastrace::trace]` with a root span per call, every span recorded and
//! reported (to a reporter that discards them).

mod common;

use std::hint::black_box;

use common::{run, work};
use criterion::Criterion;
use fastrace::collector::{Config, Reporter, SpanRecord};
use fastrace::prelude::*;

struct Discard;

impl Reporter for Discard {
    fn report(&mut self, spans: Vec<SpanRecord>) {
        black_box(spans);
    }
}

#[fastrace::trace]
fn traced(x: u64) -> u64 {
    work(x)
}

#[fastrace::trace]
async fn traced_async(x: u64) -> u64 {
    work(x)
}

fn anchors(c: &mut Criterion) {
    fastrace::set_reporter(Discard, Config::default());
    let mut g = c.benchmark_group("fastrace");
    g.bench_function("reported/sync", |b| {
        b.iter(|| {
            let root = Span::root("bench", SpanContext::random());
            let _guard = root.set_local_parent();
            traced(black_box(1))
        });
    });
    g.bench_function("reported/async", |b| {
        b.iter(|| {
            let root = Span::root("bench", SpanContext::random());
            run(traced_async(black_box(1)).in_span(root))
        });
    });
    g.finish();
    fastrace::flush();
}

common::bench_main!(anchors);
