//! How many lines per second the TCP sink's worker ships into a local
//! drain (a listener on 127.0.0.1 that reads, counts newlines and discards).
//!
//! Producers write 1,000,000 JSON lines of about 300 bytes, with
//! `Sink::write_json_line` from 1 and from 2 threads, and through
//! `#[monitor_performance]` calls (a `JsonLayer` dispatch) from 1 thread.
//! A round ends when every line is sent or dropped and the drain has read
//! every sent line; its rate is lines received over the time from the first
//! write to the drain's last read. Three rounds per case, the median is
//! reported, with MB/s and dropped lines. Results also go to
//! `$CARGO_TARGET_DIR/observe-extra/sink_throughput.json` (default
//! `target/`).
//!
//! ```text
//! cargo bench --bench sink_throughput
//! ```
//!
//! Without `--bench` (as `cargo test --benches` runs it) or with `--test`,
//! it only checks that each case works, on a few lines, and writes nothing.

mod common;

use std::hint::black_box;
use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use observe::log::JsonLayer;
use observe::monitor_performance;
use observe::sink::{JsonLine, Sink, TcpSink};
use tracing::Dispatch;
use tracing_subscriber::layer::SubscriberExt as _;

const ROUNDS: usize = 3;
const LINES: u64 = 1_000_000;
/// Enough for every line of a round, so a worker slower than its producers
/// shows up as time, not drops. Pages are only touched as the queue fills.
const CAPACITY_BYTES: usize = 512 * 1024 * 1024;
/// A round that has not drained by then is reported as a failure.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(120);

const ENTITIES: [&str; 8] = [
    "sensor.kitchen_temperature",
    "sensor.living_room_humidity",
    "binary_sensor.front_door",
    "light.hallway_ceiling",
    "switch.garage_heater",
    "sensor.energy_meter_total",
    "climate.bedroom_thermostat",
    "sensor.outdoor_pm25",
];

#[monitor_performance("ingest.process_event", context(entity_id = entity))]
fn process_event(entity: &str, value: u64) -> u64 {
    black_box(value).wrapping_mul(3)
}

/// Lines shaped like the JSON layer's, varied so no two neighbours are
/// identical; producers cycle through them so formatting costs nothing.
fn sample_lines() -> Vec<String> {
    (0..1024u64)
        .map(|i| {
            let entity = ENTITIES[i as usize % ENTITIES.len()];
            format!(
                concat!(
                    r#"{{"timestamp":"2026-11-30T01:22:{:02}.{:06}Z","level":"INFO","#,
                    r#""service":"websocket-ingestion","message":"process_event completed","#,
                    r#""correlation_id":"req_1764465729_{:08x}","context":{{"entity_id":"{}","#,
                    r#""state":"{}.{}"}},"performance":{{"duration_ms":{}.{:03},"#,
                    r#""operation":"process_event","status":"success"}}}}"#,
                    "\n"
                ),
                i % 60,
                (i * 7919) % 1_000_000,
                i.wrapping_mul(0x9e37_79b9) & 0xffff_ffff,
                entity,
                20 + i % 7,
                i % 10,
                i % 3,
                (i * 37) % 1000,
            )
        })
        .collect()
}

/// A listener that reads and discards, one connection at a time (the sink
/// holds one), counting lines and bytes and when it last read.
struct Drain {
    addr: SocketAddr,
    origin: Instant,
    lines: Arc<AtomicU64>,
    bytes: Arc<AtomicU64>,
    last_read_ns: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drain {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind drain");
        let addr = listener.local_addr().expect("drain address");
        let origin = Instant::now();
        let lines = Arc::new(AtomicU64::new(0));
        let bytes = Arc::new(AtomicU64::new(0));
        let last_read_ns = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (lines, bytes, last, stop) = (
                Arc::clone(&lines),
                Arc::clone(&bytes),
                Arc::clone(&last_read_ns),
                Arc::clone(&stop),
            );
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 1 << 16];
                for stream in listener.incoming() {
                    if stop.load(Ordering::Acquire) {
                        break;
                    }
                    let Ok(mut stream) = stream else { continue };
                    while let Ok(n @ 1..) = stream.read(&mut buf) {
                        let newlines = buf[..n].iter().filter(|&&b| b == b'\n').count();
                        // Stamped before publishing the count, so a reader
                        // that sees the last line also sees its time.
                        last.store(origin.elapsed().as_nanos() as u64, Ordering::Release);
                        bytes.fetch_add(n as u64, Ordering::Release);
                        lines.fetch_add(newlines as u64, Ordering::Release);
                    }
                }
            })
        };
        Self {
            addr,
            origin,
            lines,
            bytes,
            last_read_ns,
            stop,
            thread: Some(thread),
        }
    }

    fn lines(&self) -> u64 {
        self.lines.load(Ordering::Acquire)
    }

    fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Acquire)
    }

    fn last_read(&self) -> Instant {
        self.origin + Duration::from_nanos(self.last_read_ns.load(Ordering::Acquire))
    }
}

impl Drop for Drain {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // Wakes the accept; the sink's own connection is closed by now.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Producer {
    WriteLine,
    Monitored,
}

#[derive(Debug, Clone, Copy)]
struct Case {
    id: &'static str,
    what: &'static str,
    producer: Producer,
    threads: usize,
}

const CASES: [Case; 3] = [
    Case {
        id: "sink/tcp_throughput/1_thread",
        what: "TCP sink worker into a local drain: Sink::write_json_line from 1 thread, ~300 B JSON lines, median of 3 rounds",
        producer: Producer::WriteLine,
        threads: 1,
    },
    Case {
        id: "sink/tcp_throughput/2_threads",
        what: "TCP sink worker into a local drain: Sink::write_json_line from 2 threads, ~300 B JSON lines, median of 3 rounds",
        producer: Producer::WriteLine,
        threads: 2,
    },
    Case {
        id: "sink/tcp_throughput_monitored/1_thread",
        what: "TCP sink worker into a local drain: #[monitor_performance] calls through a JsonLayer dispatch from 1 thread, median of 3 rounds",
        producer: Producer::Monitored,
        threads: 1,
    },
];

#[derive(Debug, Clone, Copy)]
struct Round {
    received: u64,
    bytes: u64,
    dropped: u64,
    secs: f64,
    /// When the last producer finished: close to `secs` means the
    /// producers, not the worker, set the pace.
    produce_secs: f64,
}

impl Round {
    fn lines_per_sec(&self) -> f64 {
        self.received as f64 / self.secs
    }

    fn mb_per_sec(&self) -> f64 {
        self.bytes as f64 / self.secs / 1e6
    }
}

fn round(case: Case, lines: &[String], n: u64) -> Round {
    let drain = Drain::start();
    let sink = TcpSink::builder(drain.addr.to_string())
        .name("throughput")
        .capacity_bytes(CAPACITY_BYTES)
        .build()
        .expect("sink");

    // Made (and checked) before the clock starts, as the JSON layer hands
    // its lines over ready-made.
    let lines: Vec<JsonLine<'_>> = lines
        .iter()
        .map(|l| JsonLine::new(l).expect("one line"))
        .collect();
    // One line first, so the connection is up before the clock starts.
    sink.write_json_line(lines[0]);
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    while drain.lines() < 1 {
        assert!(Instant::now() < deadline, "the sink never connected");
        std::thread::sleep(Duration::from_millis(1));
    }
    let (lines0, bytes0) = (drain.lines(), drain.bytes());

    let dispatch = Dispatch::new(
        tracing_subscriber::registry().with(JsonLayer::new("bench").with_sink(sink.clone())),
    );
    let barrier = Barrier::new(case.threads);
    let spans: Vec<(Instant, Instant)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..case.threads)
            .map(|t| {
                let share =
                    n / case.threads as u64 + u64::from((t as u64) < n % case.threads as u64);
                let (sink, dispatch, barrier, lines) = (&sink, &dispatch, &barrier, &lines);
                scope.spawn(move || {
                    barrier.wait();
                    let start = Instant::now();
                    match case.producer {
                        Producer::WriteLine => {
                            for i in 0..share as usize {
                                sink.write_json_line(lines[(i + t * 512) % lines.len()]);
                            }
                        }
                        Producer::Monitored => tracing::dispatcher::with_default(dispatch, || {
                            for i in 0..share {
                                let entity = ENTITIES[i as usize % ENTITIES.len()];
                                black_box(process_event(entity, i));
                            }
                        }),
                    }
                    (start, Instant::now())
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("producer"))
            .collect()
    });
    let start = spans.iter().map(|s| s.0).min().expect("a producer");
    let produced_at = spans.iter().map(|s| s.1).max().expect("a producer");

    let produced = n + 1;
    let stats = loop {
        let s = sink.stats();
        if s.sent + s.dropped == produced && drain.lines() == s.sent {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "not drained: {s:?}, drain read {} lines",
            drain.lines()
        );
        std::thread::sleep(Duration::from_millis(1));
    };
    assert_eq!(stats.sent + stats.dropped, produced, "{stats:?}");
    let received = drain.lines() - lines0;
    let secs = drain
        .last_read()
        .saturating_duration_since(start)
        .as_secs_f64();
    Round {
        received,
        bytes: drain.bytes() - bytes0,
        dropped: stats.dropped,
        secs,
        produce_secs: (produced_at - start).as_secs_f64(),
    }
}

fn main() {
    // Criterion's convention: `cargo bench` passes `--bench`; anything
    // else (`cargo test --benches`, `-- --test`) is a quick check. Other
    // arguments (filters, criterion options) are ignored.
    let args: Vec<String> = std::env::args().skip(1).collect();
    let has = |flag: &str| args.iter().any(|a| a == flag);
    if has("--list") {
        return;
    }
    let quick = has("--test") || !has("--bench");
    let (rounds, n) = if quick { (1, 10_000) } else { (ROUNDS, LINES) };

    let lines = sample_lines();
    let avg_line = lines.iter().map(String::len).sum::<usize>() / lines.len();
    println!(
        "sink_throughput: {n} lines per round (write_json_line lines ~{avg_line} B), {rounds} round(s), queue {} MiB",
        CAPACITY_BYTES >> 20
    );

    let mut rows = Vec::new();
    for case in CASES {
        let mut rounds: Vec<Round> = (0..rounds).map(|_| round(case, &lines, n)).collect();
        for r in &rounds {
            println!(
                "  {:<40} {:>12.0} lines/s {:>8.1} MB/s  {:.3} s (producers done at {:.3} s)  received {} dropped {}",
                case.id,
                r.lines_per_sec(),
                r.mb_per_sec(),
                r.secs,
                r.produce_secs,
                r.received,
                r.dropped
            );
        }
        rounds.sort_by(|a, b| a.lines_per_sec().total_cmp(&b.lines_per_sec()));
        let median = rounds[rounds.len() / 2];
        let dropped: u64 = rounds.iter().map(|r| r.dropped).sum();
        println!(
            "{:<42} median {:>12.0} lines/s {:>8.1} MB/s ({} B/line), dropped {dropped} over {} round(s)",
            case.id,
            median.lines_per_sec(),
            median.mb_per_sec(),
            median.bytes / median.received.max(1),
            rounds.len()
        );
        if dropped > 0 {
            println!("  warning: lines were dropped; the queue did not hold a whole round");
        }
        rows.push(serde_json::json!({
            "id": case.id,
            "what": case.what,
            "value": median.lines_per_sec(),
            "unit": "lines/s",
        }));
    }

    if quick {
        return;
    }
    let path = common::write_results("sink_throughput", rows);
    println!("results: {}", path.display());
}
