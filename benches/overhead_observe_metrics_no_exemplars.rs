//! `overhead_observe_metrics_only` with exemplars off: the difference
//! between the two is what offering each call as its bucket's exemplar
//! costs.

mod common;

use common::{observed, observed_async};
use criterion::Criterion;
use observe::Observe;

fn anchors(c: &mut Criterion) {
    let _guard = Observe::builder("bench")
        .level(tracing_subscriber::filter::LevelFilter::WARN)
        .exemplars(false)
        .install()
        .expect("install");
    common::observe_pair(c, "metrics_only_no_exemplars", observed, observed_async);
}

common::bench_main!(anchors);
