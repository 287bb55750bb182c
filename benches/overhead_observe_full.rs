//! `#[monitor_performance]` with observe fully installed: every call's JSON
//! line is formatted and handed to the non-blocking TCP sink (whose worker
//! ships it to a local drain), plus the Prometheus metrics. Beside it, the
//! same with `sample = 0.0`: each success line is enabled, then sampled out
//! by its correlation ID.

mod common;

use std::io::Read;
use std::net::TcpListener;

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
    common::observe_pair(c, "full_json_queued", observed, observed_async);
    common::observe_pair(c, "full_json_sampled_out", sampled_out, sampled_out_async);
}

common::bench_main!(anchors);
