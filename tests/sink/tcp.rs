//! The TCP json_lines sink against a real syslog-ng collector: volume and
//! order, a collector absent at start, and one killed mid-stream.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::common::{assert_counters_match, counter_reaching, recorder, wait_until};
use crate::logging::{dispatch, log_in_threads};
use crate::received::{parse_all, read_lines, wait_for_lines, wait_for_whole_lines};
use crate::support::{Service, free_port};
use observe::metrics::names::LOG_LINES_SENT_TOTAL;
use observe::sink::{JsonLine, Sink as _, TcpSink};

const LIMIT: Duration = Duration::from_secs(120);

#[test]
fn hundred_thousand_lines_from_four_threads_arrive_once_and_in_order() {
    const THREADS: u64 = 4;
    const PER_THREAD: u64 = 25_000;
    recorder();
    let Some(collector) = Service::start_or_skip("syslog-ng", &[]) else {
        return;
    };
    // Room for every line: this test is about delivery, not dropping.
    let sink = TcpSink::builder(collector.addr())
        .name("tcp-volume")
        .capacity_bytes(64 * 1024 * 1024)
        .build()
        .expect("sink");
    let d = dispatch("sink-volume", sink.clone());

    let start = Instant::now();
    log_in_threads(&d, THREADS, PER_THREAD, |t, seq| {
        tracing::info!(thread = t, seq, "volume line {seq} of thread {t}");
    });
    let logged = start.elapsed();
    assert!(sink.flush(Duration::from_secs(60)), "{:?}", sink.stats());
    let flushed = start.elapsed();

    let total = (THREADS * PER_THREAD) as usize;
    let received = wait_for_lines(&collector.dir().join("received.log"), total, LIMIT);
    let arrived = start.elapsed();
    let stats = sink.stats();
    println!(
        "tcp: {total} lines logged in {logged:?} ({:.0} lines/s), flushed to the socket at {flushed:?} ({:.0} lines/s), all received at {arrived:?} ({:.0} lines/s); {stats:?}",
        total as f64 / logged.as_secs_f64(),
        total as f64 / flushed.as_secs_f64(),
        total as f64 / arrived.as_secs_f64(),
    );

    assert_eq!(
        (stats.sent, stats.dropped, stats.queued),
        (total as u64, 0, 0)
    );
    assert_eq!(received.len(), total);
    let mut next = vec![0u64; THREADS as usize];
    for line in parse_all(&received) {
        assert_eq!(line["service"], "sink-volume");
        let t = line["context"]["thread"].as_u64().expect("thread") as usize;
        let seq = line["context"]["seq"].as_u64().expect("seq");
        assert_eq!(seq, next[t], "thread {t} out of order or duplicated");
        next[t] += 1;
    }
    assert!(next.iter().all(|&n| n == PER_THREAD));
    assert_eq!(
        counter_reaching(LOG_LINES_SENT_TOTAL, "tcp-volume", total as u64),
        total as u64
    );
}

#[test]
fn collector_absent_at_start_then_started() {
    recorder();
    let port = free_port();
    let sink = TcpSink::builder(format!("127.0.0.1:{port}"))
        .name("tcp-absent")
        .capacity_bytes(64 * 1024)
        .backoff(Duration::from_millis(50), Duration::from_millis(500))
        .build()
        .expect("a collector that is not there is not an error");
    let d = dispatch("sink-absent", sink.clone());
    let log = |phase: &str, seqs: std::ops::Range<u64>| {
        tracing::dispatcher::with_default(&d, || {
            for seq in seqs {
                tracing::info!(phase, seq, "while {phase}");
            }
        });
    };

    // Nothing listens: the first 64 KiB of lines wait, the rest is dropped.
    log("down", 0..1_000);
    let down = sink.stats();
    assert_eq!(down.sent, 0);
    assert_eq!(down.queued + down.dropped, 1_000);
    assert!(down.dropped > 0 && down.queued > 0, "{down:?}");
    assert!(down.queued_bytes <= 64 * 1024);
    // The worker reports its failed connect once it has tried (a loaded
    // machine may not have scheduled it yet).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while sink.stats().last_error.is_none() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(sink.stats().last_error.is_some(), "{:?}", sink.stats());

    let Some(collector) = Service::start_on_or_skip("syslog-ng", port, &[]) else {
        return;
    };
    // The queued lines go out once the worker reconnects.
    assert!(sink.flush(Duration::from_secs(30)), "{:?}", sink.stats());
    // Chunks that fit the queue: none of these may be dropped.
    for chunk in 0..10 {
        log("up", chunk * 100..(chunk + 1) * 100);
        assert!(sink.flush(Duration::from_secs(30)), "{:?}", sink.stats());
    }

    let stats = sink.stats();
    let expected = stats.sent as usize;
    let received = parse_all(&wait_for_lines(
        &collector.dir().join("received.log"),
        expected,
        LIMIT,
    ));
    let up: Vec<u64> = received
        .iter()
        .filter(|l| l["context"]["phase"] == "up")
        .map(|l| l["context"]["seq"].as_u64().expect("seq"))
        .collect();
    let down_received = received.len() - up.len();
    println!(
        "absent at start: logged 2000, received {} ({down_received} queued while down, {} after it was up), dropped {}; {stats:?}",
        received.len(),
        up.len(),
        stats.dropped
    );
    assert_eq!(
        up,
        (0..1_000).collect::<Vec<_>>(),
        "every line logged after it was up arrives, in order"
    );
    assert_eq!(
        down_received as u64, down.queued,
        "what was queued while down arrives"
    );
    assert_eq!(stats.sent, received.len() as u64);
    assert_eq!(
        stats.dropped,
        2_000 - received.len() as u64,
        "dropped = what could not be delivered"
    );
    assert_counters_match("tcp-absent", &stats);
}

/// The most lines a SIGKILL can take with it after the sink handed them to
/// the kernel: the socket buffers on both sides (at their autotuning
/// maximum) and syslog-ng's own window and queue (`log_iw_size(10000)`,
/// `log_fifo_size(20000)` in its recipe).
fn kill_loss_bound(min_line: usize) -> u64 {
    let max_of = |f: &str| {
        std::fs::read_to_string(f)
            .ok()
            .and_then(|s| s.split_whitespace().last()?.parse::<u64>().ok())
            .unwrap_or(8 * 1024 * 1024)
    };
    let kernel = max_of("/proc/sys/net/ipv4/tcp_wmem") + max_of("/proc/sys/net/ipv4/tcp_rmem");
    kernel / min_line as u64 + 30_000
}

#[test]
fn collector_killed_mid_stream_and_restarted() {
    recorder();
    let Some(collector) = Service::start_or_skip("syslog-ng", &[]) else {
        return;
    };
    let received_log = collector.dir().join("received.log");
    let backoff_cap = Duration::from_millis(500);
    let sink = TcpSink::builder(collector.addr())
        .name("tcp-kill")
        .capacity_bytes(1024 * 1024)
        .backoff(Duration::from_millis(50), backoff_cap)
        .build()
        .expect("sink");
    let d = dispatch("sink-kill", sink.clone());

    let stop = Arc::new(AtomicBool::new(false));
    let produced = Arc::new(AtomicU64::new(0));
    let writer = {
        let (stop, produced) = (Arc::clone(&stop), Arc::clone(&produced));
        std::thread::spawn(move || {
            tracing::dispatcher::with_default(&d, || {
                let mut seq = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    tracing::info!(seq, "steady line {seq}");
                    seq += 1;
                    produced.store(seq, Ordering::Relaxed);
                    // ~10,000 lines/s, well under what syslog-ng takes.
                    if seq % 10 == 0 {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
            });
        })
    };

    assert!(
        wait_until(LIMIT, || read_lines(&received_log).len() >= 5_000),
        "stream never started"
    );
    collector.kill();
    let killed_at = produced.load(Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(300));
    let restarting = Instant::now();
    collector.restart(&[]);
    assert!(
        wait_until(LIMIT, || sink.stats().connects >= 2),
        "never reconnected: {:?}",
        sink.stats()
    );
    let reconnect = restarting.elapsed();
    let reconnected_at = produced.load(Ordering::Relaxed);
    // The backlog drains faster than lines come: from then on none is dropped.
    assert!(wait_until(LIMIT, || sink.stats().queued_bytes < 512 * 1024));
    let drained_at = produced.load(Ordering::Relaxed);
    // Keep streaming on the new connection for a while.
    let target = drained_at + 5_000;
    assert!(wait_until(LIMIT, || produced.load(Ordering::Relaxed) >= target));
    stop.store(true, Ordering::Relaxed);
    writer.join().expect("writer");
    assert!(sink.flush(Duration::from_secs(30)), "{:?}", sink.stats());

    let produced = produced.load(Ordering::Relaxed);
    let stats = sink.stats();
    // Some lines may be lost in the kill, so the count may never reach
    // `sent`; the order is kept, so the last line logged arrives last.
    let last = produced.saturating_sub(1);
    let lines = wait_for_whole_lines(&received_log, LIMIT, |lines| {
        lines.last().is_some_and(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .is_ok_and(|v| v["context"]["seq"].as_u64() == Some(last))
        })
    });
    let received = parse_all(&lines);
    let seqs: Vec<u64> = received
        .iter()
        .map(|l| l["context"]["seq"].as_u64().expect("seq"))
        .collect();
    let unique: HashSet<u64> = seqs.iter().copied().collect();
    let min_line = lines.iter().map(String::len).min().unwrap_or(1) + 1;
    let bound = kill_loss_bound(min_line);
    let lost = stats.sent - received.len() as u64;
    println!(
        "killed mid-stream: produced {produced}, sent {}, received {}, dropped {}, lost in the kill {lost} (bound {bound}); killed at line ~{killed_at}, reconnected {reconnect:?} after the restart began, syslog-ng's startup included (backoff cap {backoff_cap:?}) at line ~{reconnected_at}, backlog drained at line ~{drained_at}; connects {}",
        stats.sent,
        received.len(),
        stats.dropped,
        stats.connects
    );

    assert_eq!(unique.len(), seqs.len(), "no line arrives twice");
    assert_eq!(stats.queued, 0);
    assert_eq!(
        stats.sent + stats.dropped,
        produced,
        "every line is sent or dropped"
    );
    assert!(received.len() as u64 <= stats.sent);
    assert!(lost <= bound, "lost {lost} > bound {bound}");
    assert!(
        (drained_at..produced).all(|s| unique.contains(&s)),
        "every line logged once the backlog drained arrives"
    );
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "order is kept across the reconnect"
    );
    assert_counters_match("tcp-kill", &stats);
}

#[test]
fn a_collector_that_stops_reading_has_every_line_counted_at_the_flush_deadline() {
    // Accepts, then never reads: the worker's write blocks once the
    // socket buffers fill, for the connection's whole I/O timeout.
    let stalled = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = stalled.local_addr().expect("addr");
    let held = std::thread::spawn(move || stalled.accept().map(|(conn, _)| conn));
    let sink = TcpSink::builder(addr.to_string())
        .name("tcp-stalled")
        .capacity_bytes(64 * 1024 * 1024)
        .io_timeout(Duration::from_secs(60))
        .build()
        .expect("sink");
    const LINES: u64 = 100_000;
    let pad = "x".repeat(300);
    for n in 0..LINES {
        let line = format!("{{\"n\":{n},\"pad\":\"{pad}\"}}\n");
        sink.write_json_line(JsonLine::new(&line).expect("a line"));
    }
    let start = Instant::now();
    assert!(!sink.flush(Duration::from_secs(1)), "{:?}", sink.stats());
    let waited = start.elapsed();
    let stats = sink.stats();
    // Nothing is left uncounted, although the worker's write is still
    // blocked (and will be for up to a minute).
    assert_eq!(stats.queued, 0, "{stats:?}");
    assert_eq!(stats.sent + stats.dropped, LINES, "{stats:?}");
    assert!(stats.dropped > 0, "{stats:?}");
    assert!(waited < Duration::from_secs(30), "flush took {waited:?}");
    drop(held);
}
