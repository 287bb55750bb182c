//! A monitored call's cost when its line goes to a TCP sink whose collector
//! is down and whose queue is full, against the same call whose line is
//! formatted and handed to a sink that discards it (the no-sink case).
//! The target: within 2x. Prints ns/call and the ratio at the end.
//!
//! ```text
//! cargo bench --bench sink_backpressure
//! ```

use std::hint::black_box;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use criterion::Criterion;
use observe::log::JsonLayer;
use observe::monitor_performance;
use observe::sink::{Sink, TcpSink};
use tracing::Dispatch;
use tracing_subscriber::layer::SubscriberExt as _;

#[monitor_performance("bench.call", context(entity_id = entity))]
fn call(entity: &str, n: u64) -> u64 {
    black_box(n).wrapping_mul(3)
}

/// Formats nothing further and keeps nothing: the no-sink baseline.
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

fn dispatch(sink: impl Sink) -> Dispatch {
    Dispatch::new(tracing_subscriber::registry().with(JsonLayer::new("bench").with_sink(sink)))
}

/// A TCP sink to a port nothing listens on, its 1 MiB queue filled.
fn full_sink() -> (TcpSink, Dispatch) {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let sink = TcpSink::builder(format!("127.0.0.1:{port}"))
        .capacity_bytes(1024 * 1024)
        .backoff(Duration::from_secs(5), Duration::from_secs(5))
        .build()
        .expect("sink");
    let d = dispatch(sink.clone());
    tracing::dispatcher::with_default(&d, || {
        while sink.stats().dropped == 0 {
            call("sensor.kitchen", 1);
        }
    });
    (sink, d)
}

fn per_call(d: &Dispatch, iters: u32) -> f64 {
    tracing::dispatcher::with_default(d, || {
        let start = Instant::now();
        for i in 0..iters {
            black_box(call(black_box("sensor.kitchen"), u64::from(i)));
        }
        start.elapsed().as_nanos() as f64 / f64::from(iters)
    })
}

fn main() {
    let baseline = dispatch(Discard);
    let (sink, full) = full_sink();

    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    let mut group = c.benchmark_group("sink_backpressure");
    group.bench_function("no_sink", |b| {
        tracing::dispatcher::with_default(&baseline, || {
            b.iter(|| call(black_box("sensor.kitchen"), black_box(7)))
        });
    });
    group.bench_function("tcp_collector_down_queue_full", |b| {
        tracing::dispatcher::with_default(&full, || {
            b.iter(|| call(black_box("sensor.kitchen"), black_box(7)))
        });
    });
    group.finish();
    c.final_summary();

    // A plain summary, best of three rounds each.
    let best = |d: &Dispatch| {
        (0..3)
            .map(|_| per_call(d, 200_000))
            .fold(f64::MAX, f64::min)
    };
    let (no_sink, full_queue) = (best(&baseline), best(&full));
    let stats = sink.stats();
    println!(
        "summary: no sink {no_sink:.0} ns/call, collector down + queue full {full_queue:.0} ns/call, ratio {:.2}x (target <= 2x); queue {} / {} bytes, {} lines dropped",
        full_queue / no_sink,
        stats.queued_bytes,
        stats.capacity_bytes,
        stats.dropped
    );
}
