//! With the collector down and the queue full, memory stays bounded by the
//! configured capacity; when outages repeat, by twice the capacity (the
//! queue's two buffers may each have held a full queue). RSS is
//! process-wide, so this binary holds a single test.

#[path = "sink/logging.rs"]
mod logging;
#[path = "support/free_port.rs"]
mod support;

use std::io::Read as _;
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use logging::{dispatch, log_in_threads};
use observe::sink::{Sink as _, TcpSink};
use support::free_port;

#[test]
fn a_full_queue_with_the_collector_down_holds_no_more_than_its_capacity() {
    const CAPACITY: usize = 16 * 1024 * 1024;
    const THREADS: u64 = 4;
    const PER_THREAD: u64 = 150_000;
    // Nothing listens on this port (until the second outage below).
    let port = free_port();
    let sink = TcpSink::builder(format!("127.0.0.1:{port}"))
        .name("tcp-memory")
        .capacity_bytes(CAPACITY)
        .backoff(Duration::from_millis(50), Duration::from_millis(200))
        .build()
        .expect("sink");
    let d = dispatch("sink-memory", sink.clone());
    // Warm up the formatting path so its buffers are not counted.
    tracing::dispatcher::with_default(&d, || tracing::info!(seq = 0u64, "warm-up"));
    let before = rss_bytes();

    let fill = || {
        log_in_threads(&d, THREADS, PER_THREAD, |t, seq| {
            tracing::info!(thread = t, seq, "a line nobody will receive, number {seq}");
        });
    };
    fill();
    let after = rss_bytes();
    let full = sink.stats();
    let logged = THREADS * PER_THREAD + 1;
    let line_bytes = full.queued_bytes / full.queued.max(1);
    println!(
        "memory: {logged} lines (~{} MiB) logged with the collector down; RSS {} MiB -> {} MiB (+{} MiB) with a {} MiB queue; {full:?}",
        (logged * line_bytes) >> 20,
        before >> 20,
        after >> 20,
        after.saturating_sub(before) >> 20,
        CAPACITY >> 20
    );

    assert_eq!(full.sent, 0);
    assert_eq!(full.queued + full.dropped, logged);
    assert!(full.queued_bytes <= CAPACITY as u64);
    assert!(
        full.queued_bytes > CAPACITY as u64 / 2,
        "the queue filled up"
    );
    // The ring is at most CAPACITY resident bytes; allow 8 MiB for thread
    // stacks and allocator slack.
    assert!(
        after.saturating_sub(before) <= CAPACITY as u64 + 8 * 1024 * 1024,
        "RSS grew {} bytes with a {CAPACITY}-byte queue",
        after - before
    );

    // What is still queued at the flush deadline is dropped and counted.
    assert!(!sink.flush(Duration::from_millis(100)));
    let end = sink.stats();
    assert_eq!((end.sent, end.queued, end.dropped), (0, 0, logged));

    // The collector comes up, takes the backlog, and goes away again, and
    // the queue fills once more; a few times, since which of the queue's
    // two buffers is the ring when an outage starts varies. However many
    // outages, memory stays below two full queues.
    let mut sent = 0;
    for cycle in 1..=3 {
        let collector = Collector::start(port);
        tracing::dispatcher::with_default(&d, || {
            for seq in 0..PER_THREAD {
                tracing::info!(seq, "a line the collector receives, number {seq}");
            }
        });
        assert!(sink.flush(Duration::from_secs(60)), "{:?}", sink.stats());
        collector.stop();
        fill();
        let again = rss_bytes();
        let stats = sink.stats();
        println!(
            "memory after outage {}: RSS {} MiB (+{} MiB from the start); {stats:?}",
            cycle + 1,
            again >> 20,
            again.saturating_sub(before) >> 20
        );
        assert!(stats.sent > sent, "the collector received lines");
        sent = stats.sent;
        assert!(
            stats.queued_bytes > CAPACITY as u64 / 2,
            "the queue filled up again"
        );
        // Two full queues and the same slack as above.
        assert!(
            again.saturating_sub(before) <= 2 * CAPACITY as u64 + 8 * 1024 * 1024,
            "RSS grew {} bytes over {} outages with a {CAPACITY}-byte queue",
            again - before,
            cycle + 1
        );
        assert!(!sink.flush(Duration::from_millis(100)));
    }
}

/// A collector on `port` that reads and discards, until stopped; stopping
/// closes its connections, so the sink sees the collector go away.
struct Collector {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Collector {
    fn start(port: u16) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind the collector");
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut streams = Vec::new();
            let mut buf = vec![0u8; 1 << 16];
            while !flag.load(Ordering::Relaxed) {
                if let Ok((s, _)) = listener.accept() {
                    s.set_nonblocking(true).expect("nonblocking");
                    streams.push(s);
                }
                let mut idle = true;
                for s in &mut streams {
                    while let Ok(n) = s.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        idle = false;
                    }
                }
                if idle {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            for s in streams {
                let _ = s.shutdown(std::net::Shutdown::Both);
            }
        });
        Self { stop, thread }
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("collector thread");
    }
}

/// Resident set size of this process, in bytes.
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}
