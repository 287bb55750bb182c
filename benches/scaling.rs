//! Throughput of one monitored function called in a loop from 1, 2, 4 and
//! 8 threads (4 and 8 over-subscribe a 2-core machine), for observe and the
//! anchors, in one run: calls per second and the ratios to 1 and 2 threads.
//!
//! Each row runs in a child process of this binary (observe, the `metrics`
//! recorder and autometrics each install process-wide state). In a child,
//! the thread counts are measured in interleaved rounds (1, 2, 4, 8, 1, ...)
//! of a fixed window each, and the median of the rounds is reported. The
//! JSON rows flush their sink between windows, so each window starts with
//! an empty queue, and report the lines dropped (the queues are sized so
//! that none are).
//!
//! ```text
//! cargo bench --bench scaling
//! ```
//!
//! Results also go to `$CARGO_TARGET_DIR/observe-extra/scaling.json`
//! (default `target/`), where `bench_report` reads them. Without `--bench`
//! (as `cargo test --benches` runs it) each row runs one short window only
//! and nothing is written.

mod common;

use std::hint::black_box;
use std::io::Read;
use std::net::TcpListener;
use std::process::Command;
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{traced, work};
use observe::Observe;
use observe::sink::{FileSink, Sink, SinkStats, TcpSink};

const THREADS: [usize; 4] = [1, 2, 4, 8];
const ROUNDS: usize = 5;
const WINDOW: Duration = Duration::from_millis(300);
/// Room for every line of a window, so no line is dropped.
const CAPACITY_BYTES: usize = 1 << 30;
const ROW_VAR: &str = "OBSERVE_SCALING_ROW";

/// Rows in the order they are printed: (name, what it measures).
const ROWS: [(&str, &str); 7] = [
    ("observe/metrics_only", "observe, success line filtered out"),
    ("observe/json_file", "observe, JSON line to the file sink"),
    (
        "observe/json_tcp",
        "observe, JSON line to the TCP sink (local drain)",
    ),
    (
        "anchor/metrics_handles",
        "metrics handles + quanta, Prometheus recorder",
    ),
    ("anchor/autometrics", "#[autometrics], Prometheus recorder"),
    ("anchor/shared_atomic", "one shared AtomicU64 increment"),
    (
        "anchor/tracing_no_subscriber",
        "#[tracing::instrument], no subscriber",
    ),
];

#[autometrics::autometrics]
fn auto(x: u64) -> u64 {
    work(x)
}

static SHARED: AtomicU64 = AtomicU64::new(0);

/// Calls per second of `call` from `threads` threads over one window.
fn measure(threads: usize, window: Duration, call: &(impl Fn(u64) + Sync)) -> f64 {
    let stop = AtomicBool::new(false);
    let start = Barrier::new(threads + 1);
    let total = AtomicU64::new(0);
    let elapsed = std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                start.wait();
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    for i in 0..64 {
                        call(black_box(i));
                    }
                    n += 64;
                }
                total.fetch_add(n, Ordering::Relaxed);
            });
        }
        start.wait();
        let t0 = Instant::now();
        std::thread::sleep(window);
        stop.store(true, Ordering::Relaxed);
        t0.elapsed()
    });
    total.load(Ordering::Relaxed) as f64 / elapsed.as_secs_f64()
}

/// `rounds` interleaved rounds over [`THREADS`] of `call`, each window
/// followed by `settle`: the samples per thread count.
fn rounds_of(
    rounds: usize,
    window: Duration,
    settle: impl Fn(),
    call: impl Fn(u64) + Sync,
) -> Vec<Vec<f64>> {
    let mut samples = vec![Vec::new(); THREADS.len()];
    for _ in 0..rounds {
        for (i, &threads) in THREADS.iter().enumerate() {
            samples[i].push(measure(threads, window, &call));
            settle();
        }
    }
    samples
}

/// Runs one row in this process: the median calls per second per thread
/// count, and the lines its sink dropped.
fn run_row(name: &str, quick: bool) -> serde_json::Value {
    let (rounds, window) = if quick {
        (1, Duration::from_millis(20))
    } else {
        (ROUNDS, WINDOW)
    };
    let mut keep = Vec::new();
    let sink: Option<Box<dyn Fn() -> (u64, u64)>> = match name {
        "observe/metrics_only" => {
            keep.push(install_metrics_only());
            None
        }
        "observe/json_file" => {
            let dir = std::env::temp_dir().join(format!("observe-scaling-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("temp dir");
            let file = FileSink::builder(dir.join("lines.log"))
                .max_file_bytes(256 * 1024 * 1024)
                .max_files(2)
                .capacity_bytes(CAPACITY_BYTES)
                .build()
                .expect("file sink");
            keep.push(install_with(file.clone()));
            Some(settle(file, FileSink::stats))
        }
        "observe/json_tcp" => {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind drain");
            let addr = listener.local_addr().expect("drain address");
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 1 << 16];
                for mut stream in listener.incoming().flatten() {
                    while let Ok(1..) = stream.read(&mut buf) {}
                }
            });
            let tcp = TcpSink::builder(addr.to_string())
                .capacity_bytes(CAPACITY_BYTES)
                .build()
                .expect("tcp sink");
            keep.push(install_with(tcp.clone()));
            Some(settle(tcp, TcpSink::stats))
        }
        "anchor/metrics_handles" | "anchor/autometrics" => {
            let recorder = metrics_exporter_prometheus::PrometheusBuilder::new()
                .set_buckets(observe::metrics::names::DEFAULT_DURATION_BUCKETS)
                .expect("buckets")
                .build_recorder();
            metrics::set_global_recorder(recorder).expect("first recorder");
            None
        }
        _ => None,
    };
    let clock = quanta::Clock::new();
    let hist = metrics::histogram!("scaling_duration_seconds", "operation" => "bench", "status" => "success");
    let calls =
        metrics::counter!("scaling_calls_total", "operation" => "bench", "status" => "success");
    // The row's body is chosen here, once: a `match` on the row's name inside
    // the loop would add a string comparison to every measured call.
    let settle = || {
        if let Some(settle) = &sink {
            settle();
        }
    };
    let samples = match name {
        "observe/metrics_only" | "observe/json_file" | "observe/json_tcp" => {
            rounds_of(rounds, window, settle, |x| {
                black_box(common::observed(x));
            })
        }
        "anchor/metrics_handles" => rounds_of(rounds, window, settle, |x| {
            let start = clock.raw();
            let v = work(x);
            hist.record(clock.delta_as_nanos(start, clock.raw()) as f64 * 1e-9);
            calls.increment(1);
            black_box(v);
        }),
        "anchor/autometrics" => rounds_of(rounds, window, settle, |x| {
            black_box(auto(x));
        }),
        "anchor/shared_atomic" => rounds_of(rounds, window, settle, |x| {
            SHARED.fetch_add(work(x), Ordering::Relaxed);
        }),
        "anchor/tracing_no_subscriber" => rounds_of(rounds, window, settle, |x| {
            black_box(traced(x));
        }),
        other => panic!("unknown row {other}"),
    };
    let (sent, dropped) = sink.as_ref().map_or((0, 0), |s| s());
    drop(keep);
    let medians: Vec<f64> = samples
        .into_iter()
        .map(|mut s| {
            s.sort_by(f64::total_cmp);
            s[s.len() / 2]
        })
        .collect();
    serde_json::json!({
        "row": name,
        "threads": THREADS,
        "calls_per_sec": medians,
        "lines_sent": sent,
        "lines_dropped": dropped,
    })
}

/// Waits for `sink` to drain, then reads its (sent, dropped) counts.
fn settle<S: Sink>(sink: S, stats: fn(&S) -> SinkStats) -> Box<dyn Fn() -> (u64, u64)> {
    Box::new(move || {
        let _ = sink.flush(Duration::from_secs(60));
        let s = stats(&sink);
        (s.sent, s.dropped)
    })
}

/// Installs observe with success lines going to `sink`.
fn install_with(sink: impl Sink) -> observe::ObserveGuard {
    Observe::builder("bench")
        .flush_timeout(Duration::from_secs(60))
        .sink(sink)
        .level(tracing_subscriber::filter::LevelFilter::INFO)
        .install()
        .expect("install")
}

/// Installs observe logging only WARN and above: metrics only.
fn install_metrics_only() -> observe::ObserveGuard {
    Observe::builder("bench")
        .level(tracing_subscriber::filter::LevelFilter::WARN)
        .install()
        .expect("install")
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = !args.iter().any(|a| a == "--bench") || args.iter().any(|a| a == "--test");
    if let Ok(row) = std::env::var(ROW_VAR) {
        println!("{}", run_row(&row, quick));
        return;
    }
    let exe = std::env::current_exe().expect("own path");
    let mut results = Vec::new();
    for (name, _) in ROWS {
        let out = Command::new(&exe)
            .args(&args[1..])
            .env(ROW_VAR, name)
            .output()
            .expect("run a row");
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let row: serde_json::Value = text
            .lines()
            .rev()
            .find_map(|l| serde_json::from_str(l).ok())
            .unwrap_or_else(|| panic!("{name} printed no result: {text}"));
        results.push(row);
    }
    println!(
        "{:<30} {:>12} {:>12} {:>12} {:>12} {:>6} {:>6} {:>6}  dropped",
        "row (calls/s)", "1 thread", "2 threads", "4 threads", "8 threads", "2/1", "4/2", "8/2"
    );
    for (row, (_, what)) in results.iter_mut().zip(ROWS) {
        let r: Vec<f64> = row["calls_per_sec"]
            .as_array()
            .map(|a| a.iter().filter_map(serde_json::Value::as_f64).collect())
            .unwrap_or_default();
        let [one, two, four, eight] = [r[0], r[1], r[2], r[3]];
        println!(
            "{:<30} {:>12.0} {:>12.0} {:>12.0} {:>12.0} {:>6.2} {:>6.2} {:>6.2}  {}",
            row["row"].as_str().unwrap_or_default(),
            one,
            two,
            four,
            eight,
            two / one,
            four / two,
            eight / two,
            row["lines_dropped"]
        );
        row["what"] = (*what).into();
        row["ratio_2_1"] = (two / one).into();
        row["ratio_4_2"] = (four / two).into();
        row["ratio_8_2"] = (eight / two).into();
    }
    if !quick {
        // One row per (row, thread count), in the shape `bench_report` reads.
        let rows = results
            .iter()
            .flat_map(|r| {
                let name = r["row"].as_str().unwrap_or_default().to_owned();
                let what = r["what"].as_str().unwrap_or_default().to_owned();
                let rates = r["calls_per_sec"].as_array().cloned().unwrap_or_default();
                THREADS.iter().zip(rates).map(move |(n, rate)| {
                    serde_json::json!({
                        "id": format!("scaling/{name}/{n}"),
                        "what": what,
                        "value": rate,
                        "unit": "calls/s",
                    })
                })
            })
            .collect();
        let path = common::write_results("scaling", rows);
        println!("results: {}", path.display());
    }
}
