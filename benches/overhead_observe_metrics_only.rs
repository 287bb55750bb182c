//! `#[monitor_performance]` with observe installed (Prometheus recorder on)
//! and the success line filtered out: metrics only.

mod common;

use common::{observed, observed_async};
use criterion::Criterion;
use observe::Observe;

fn anchors(c: &mut Criterion) {
    let _guard = Observe::builder("bench")
        .level(tracing_subscriber::filter::LevelFilter::WARN)
        .install()
        .expect("install");
    common::observe_pair(c, "metrics_only", observed, observed_async);
}

common::bench_main!(anchors);
