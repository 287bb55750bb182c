//! `#[monitor_performance]` with observe fully installed: every call's JSON
//! line is formatted and handed to the non-blocking TCP sink (whose worker
//! ships it to a local drain), plus the Prometheus metrics.

mod common;

use std::hint::black_box;
use std::io::Read;
use std::net::TcpListener;

use common::{run, work};
use criterion::{Criterion, criterion_group, criterion_main};
use observe::sink::TcpSink;
use observe::{Observe, monitor_performance};

#[monitor_performance("bench")]
fn observed(x: u64) -> u64 {
    work(x)
}

#[monitor_performance("bench_async")]
async fn observed_async(x: u64) -> u64 {
    work(x)
}

/// Accepts connections and discards what they send.
fn drain() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind drain");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut stream = stream;
                let mut buf = vec![0u8; 1 << 16];
                while matches!(stream.read(&mut buf), Ok(n) if n > 0) {}
            });
        }
    });
    addr
}

fn anchors(c: &mut Criterion) {
    let sink = TcpSink::new(drain().to_string()).expect("tcp sink");
    let _guard = Observe::builder("bench")
        .sink(sink)
        .install()
        .expect("install");
    let mut g = c.benchmark_group("observe");
    g.bench_function("full_json_queued/sync", |b| {
        b.iter(|| observed(black_box(1)))
    });
    g.bench_function("full_json_queued/async", |b| {
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
