//! Metrics anchors with the Prometheus recorder installed globally: the
//! `metrics` macros with literal keys, the same with cached handles,
//! `#[autometrics]`, and a hand-written wrapper (three clock reads, cached
//! handles, one `serde_json` line into a reused buffer).

mod common;

use std::cell::RefCell;
use std::hint::black_box;
use std::time::{Instant, SystemTime};

use common::{run, work};
use criterion::Criterion;

#[autometrics::autometrics]
fn auto(x: u64) -> u64 {
    work(x)
}

#[autometrics::autometrics]
async fn auto_async(x: u64) -> u64 {
    work(x)
}

#[derive(serde::Serialize)]
struct Line<'a> {
    timestamp: u128,
    level: &'a str,
    service: &'a str,
    message: &'a str,
    correlation_id: &'a str,
    context: Context,
    performance: Performance<'a>,
}

#[derive(serde::Serialize)]
struct Context {}

#[derive(serde::Serialize)]
struct Performance<'a> {
    duration_ms: f64,
    operation: &'a str,
    status: &'a str,
}

thread_local! {
    static BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

fn install() {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets(&[0.000_1, 0.001, 0.01, 0.1, 1.0])
        .expect("buckets")
        .build_recorder();
    metrics::set_global_recorder(recorder).expect("first recorder");
}

fn anchors(c: &mut Criterion) {
    install();
    let mut g = c.benchmark_group("metrics");
    g.bench_function("macros/sync", |b| {
        b.iter(|| {
            let start = Instant::now();
            let v = work(black_box(1));
            metrics::histogram!("bench_duration_seconds", "operation" => "bench", "status" => "success")
                .record(start.elapsed().as_secs_f64());
            metrics::counter!("bench_calls_total", "operation" => "bench", "status" => "success").increment(1);
            v
        });
    });
    let hist = metrics::histogram!("bench_cached_duration_seconds", "operation" => "bench", "status" => "success");
    let calls = metrics::counter!("bench_cached_calls_total", "operation" => "bench", "status" => "success");
    g.bench_function("handles/sync", |b| {
        b.iter(|| {
            let start = Instant::now();
            let v = work(black_box(1));
            hist.record(start.elapsed().as_secs_f64());
            calls.increment(1);
            v
        });
    });
    g.finish();

    let mut g = c.benchmark_group("autometrics");
    g.bench_function("sync", |b| b.iter(|| auto(black_box(1))));
    g.bench_function("async", |b| b.iter(|| run(auto_async(black_box(1)))));
    g.finish();

    let mut g = c.benchmark_group("hand_written");
    g.bench_function("sync", |b| {
        b.iter(|| {
            let start = Instant::now();
            let v = work(black_box(1));
            let elapsed = start.elapsed();
            hist.record(elapsed.as_secs_f64());
            calls.increment(1);
            let now = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_micros());
            BUF.with(|buf| {
                let mut buf = buf.borrow_mut();
                buf.clear();
                let line = Line {
                    timestamp: now,
                    level: "INFO",
                    service: "bench",
                    message: "bench completed",
                    correlation_id: "req_1764465729_1a2b3c4d",
                    context: Context {},
                    performance: Performance {
                        duration_ms: elapsed.as_secs_f64() * 1e3,
                        operation: "bench",
                        status: "success",
                    },
                };
                let _ = serde_json::to_writer(&mut *buf, &line);
                buf.push(b'\n');
                black_box(buf.len());
            });
            v
        });
    });
    g.finish();
}

common::bench_main!(anchors);
