//! `#[monitor_performance]` with observe fully installed: every call's JSON
//! line is formatted and handed to the non-blocking TCP sink (whose worker
//! ships it to a local drain), plus the Prometheus metrics. Beside it, the
//! same with `sample = 0.0`: each success line is enabled, then sampled out
//! by its correlation ID; and, for the sampled-out rows to be compared
//! with in the same process, a function whose success line is below the
//! subscriber's level (filtered, as in `overhead_observe_metrics_only`).

mod common;

use common::{observed, observed_async, work};
use criterion::Criterion;
use observe::sink::TcpSink;
use observe::{Observe, monitor_performance};

#[monitor_performance(sample = 0.0)]
fn sampled_out(x: u64) -> u64 {
    work(x)
}

#[monitor_performance(sample = 0.0)]
async fn sampled_out_async(x: u64) -> u64 {
    work(x)
}

#[monitor_performance(level = "debug")]
fn filtered(x: u64) -> u64 {
    work(x)
}

#[monitor_performance(level = "debug")]
async fn filtered_async(x: u64) -> u64 {
    work(x)
}

fn anchors(c: &mut Criterion) {
    let sink = TcpSink::new(common::discard_drain().to_string()).expect("tcp sink");
    let _guard = Observe::builder("bench")
        .sink(sink)
        .install()
        .expect("install");
    common::observe_pair(c, "full_json_queued", observed, observed_async);
    common::observe_pair(c, "full_json_sampled_out", sampled_out, sampled_out_async);
    common::observe_pair(c, "full_json_filtered", filtered, filtered_async);
}

common::bench_main!(anchors);
