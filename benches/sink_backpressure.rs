//! A monitored call's cost when its line goes to a TCP sink whose collector
//! is down and whose queue is full, against the same call whose line is
//! formatted and handed to a sink that discards it (the no-sink case).
//! The target: within 2x. Prints ns/call and the ratio at the end.
//!
//! Then it times 200,000 single calls of each case (interleaved in chunks,
//! so drift on a busy machine hits both alike) with `quanta::Instant`, less
//! the median cost of an empty pair of clock reads, and prints p50, p99,
//! p99.9 and max and the p99 ratio. Means and percentiles also go to
//! `$CARGO_TARGET_DIR/observe-extra/sink_backpressure.json` (default
//! `target/`), except in criterion's test mode (`-- --test`, or run without
//! `--bench`), which samples a few calls and writes nothing.
//!
//! ```text
//! cargo bench --bench sink_backpressure
//! ```

mod common;

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

/// Latency samples per case, and chunks they are taken in.
const SAMPLES: usize = 200_000;
const CHUNKS: usize = 10;

/// The median cost of two back-to-back clock reads, taken off each sample.
fn clock_pair_ns() -> u64 {
    let mut pairs: Vec<u64> = (0..100_000)
        .map(|_| {
            let t0 = quanta::Instant::now();
            let t1 = quanta::Instant::now();
            (t1 - t0).as_nanos() as u64
        })
        .collect();
    pairs.sort_unstable();
    pairs[pairs.len() / 2]
}

/// Times `calls` single calls under `d`, appending their latencies in ns.
fn sample(d: &Dispatch, calls: usize, clock_ns: u64, out: &mut Vec<u64>) {
    tracing::dispatcher::with_default(d, || {
        for i in 0..calls {
            let t0 = quanta::Instant::now();
            black_box(call(black_box("sensor.kitchen"), i as u64));
            let t1 = quanta::Instant::now();
            out.push(((t1 - t0).as_nanos() as u64).saturating_sub(clock_ns));
        }
    });
}

#[derive(Debug, Clone, Copy)]
struct Latency {
    p50: u64,
    p99: u64,
    p999: u64,
    max: u64,
}

impl Latency {
    fn of(mut samples: Vec<u64>) -> Self {
        samples.sort_unstable();
        // Nearest rank: the smallest sample at or above that share of all.
        let rank = |p: f64| {
            let r = (p * samples.len() as f64).ceil() as usize;
            samples[r.clamp(1, samples.len()) - 1]
        };
        Self {
            p50: rank(0.50),
            p99: rank(0.99),
            p999: rank(0.999),
            max: samples[samples.len() - 1],
        }
    }
}

fn main() {
    let baseline = dispatch(common::Discard);
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

    // Criterion's rule for test mode, which it does not expose.
    let args: Vec<String> = std::env::args().collect();
    let has = |flag: &str| args.iter().any(|a| a == flag);
    if has("--list") {
        return;
    }
    let quick = has("--test") || !has("--bench");
    let samples = if quick { 2_000 } else { SAMPLES };

    let clock_ns = clock_pair_ns();
    let dropped_before = sink.stats().dropped;
    let (mut base, mut down) = (Vec::with_capacity(samples), Vec::with_capacity(samples));
    for _ in 0..CHUNKS {
        sample(&baseline, samples / CHUNKS, clock_ns, &mut base);
        sample(&full, samples / CHUNKS, clock_ns, &mut down);
    }
    // Every sampled line must have met a full queue, or the case is not
    // the one measured.
    let dropped = sink.stats().dropped - dropped_before;
    assert!(
        dropped >= down.len() as u64,
        "only {dropped} of {} sampled lines were dropped",
        down.len()
    );
    let (base, down) = (Latency::of(base), Latency::of(down));
    for (name, l) in [("no sink", base), ("collector down + queue full", down)] {
        println!(
            "latency: {name:<28} p50 {:>6} ns  p99 {:>6} ns  p99.9 {:>6} ns  max {:>8} ns",
            l.p50, l.p99, l.p999, l.max
        );
    }
    println!(
        "latency: p99 ratio {:.2}x; {samples} calls per case, quanta::Instant, {clock_ns} ns clock-pair cost taken off",
        down.p99 as f64 / base.p99.max(1) as f64
    );

    if quick {
        return;
    }
    let row = |id: String, what: String, value: f64| serde_json::json!({ "id": id, "what": what, "value": value, "unit": "ns" });
    let cases = [
        ("no_sink", "line formatted and discarded"),
        (
            "collector_down",
            "line to a TCP sink whose collector is down and queue full",
        ),
    ];
    let mut rows = Vec::new();
    for ((case, what), mean) in cases.iter().zip([no_sink, full_queue]) {
        rows.push(row(
            format!("sink/backpressure/mean/{case}"),
            format!("mean ns per monitored call, best of 3 rounds of 200000 calls: {what}"),
            mean,
        ));
    }
    for (pct, base_ns, down_ns) in [
        ("p50", base.p50, down.p50),
        ("p99", base.p99, down.p99),
        ("p999", base.p999, down.p999),
    ] {
        for ((case, what), ns) in cases.iter().zip([base_ns, down_ns]) {
            rows.push(row(
                format!("sink/backpressure/{pct}/{case}"),
                format!(
                    "{pct} latency of a monitored call, {samples} calls timed singly with quanta::Instant, clock-pair cost taken off: {what}"
                ),
                ns as f64,
            ));
        }
    }
    let path = common::write_results("sink_backpressure", rows);
    println!("results: {}", path.display());
}
