//! The body every variant wraps, a tiny executor for async variants, and
//! the pieces every overhead bench binary repeats, shared so their numbers
//! compare.
#![allow(dead_code, unused_macros, unused_imports)] // each bench binary uses a part

use std::future::Future;
use std::hint::black_box;
use std::io::Read;
use std::net::TcpListener;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

/// The trivial body: a few arithmetic instructions the optimiser cannot
/// remove.
#[inline(always)]
pub(crate) fn work(x: u64) -> u64 {
    black_box(x).wrapping_mul(31).wrapping_add(7)
}

/// The monitored function of the installed observe rows.
#[observe::monitor_performance("bench")]
pub(crate) fn observed(x: u64) -> u64 {
    work(x)
}

/// Its async twin.
#[observe::monitor_performance("bench_async")]
pub(crate) async fn observed_async(x: u64) -> u64 {
    work(x)
}

/// The `#[tracing::instrument]` anchors' function.
#[tracing::instrument]
pub(crate) fn traced(x: u64) -> u64 {
    work(x)
}

/// Its async twin.
#[tracing::instrument]
pub(crate) async fn traced_async(x: u64) -> u64 {
    work(x)
}

/// Polls a future that completes without waiting, as an executor would.
#[inline(always)]
pub(crate) fn run<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

/// A sink that takes every line and keeps none.
#[derive(Debug)]
pub(crate) struct Discard;

impl observe::sink::Sink for Discard {
    fn name(&self) -> &str {
        "discard"
    }

    fn write_json_line(&self, line: observe::sink::JsonLine<'_>) {
        black_box(line);
    }
}

/// A local collector that accepts connections and discards what they
/// send: where the TCP sink of the queued-line rows delivers.
pub(crate) fn discard_drain() -> std::net::SocketAddr {
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

/// Benches one observe mode, `observe/{mode}/sync` and
/// `observe/{mode}/async`; taken as generic functions, so they inline as
/// they would at a call site.
pub(crate) fn observe_pair<S, A, F>(c: &mut criterion::Criterion, mode: &str, sync: S, asynch: A)
where
    S: Fn(u64) -> u64,
    A: Fn(u64) -> F,
    F: Future<Output = u64>,
{
    let mut g = c.benchmark_group("observe");
    g.bench_function(format!("{mode}/sync"), |b| b.iter(|| sync(black_box(1))));
    g.bench_function(format!("{mode}/async"), |b| {
        b.iter(|| run(asynch(black_box(1))))
    });
    g.finish();
}

/// The `main` of a criterion bench binary running `targets` with
/// [`criterion`]'s settings.
macro_rules! bench_main {
    ($($target:path),+ $(,)?) => {
        criterion::criterion_group! {
            name = benches;
            config = common::criterion();
            targets = $($target),+
        }
        criterion::criterion_main!(benches);
    };
}
pub(crate) use bench_main;

/// Criterion settings for nanosecond-scale functions on a noisy machine.
pub(crate) fn criterion() -> criterion::Criterion {
    criterion::Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2))
        .sample_size(50)
        .configure_from_args()
}

/// Writes the rows of a bench that is not criterion's to
/// `$CARGO_TARGET_DIR/observe-extra/{bench}.json` (default `target/`), where
/// `bench_report` reads them; returns the path.
pub(crate) fn write_results(bench: &str, rows: Vec<serde_json::Value>) -> std::path::PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .filter(|d| !d.is_empty())
        .map_or_else(
            || std::path::PathBuf::from("target"),
            std::path::PathBuf::from,
        );
    let path = target.join("observe-extra").join(format!("{bench}.json"));
    std::fs::create_dir_all(path.parent().expect("a parent")).expect("create the results folder");
    let json = serde_json::to_string_pretty(&serde_json::json!({ "rows": rows })).expect("json");
    std::fs::write(&path, json + "\n").expect("write the results");
    path
}
