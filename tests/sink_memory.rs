//! With the collector down and the queue full, memory stays bounded by the
//! configured capacity. RSS is process-wide, so this binary holds a single
//! test.

mod sink_common;
mod support;

use std::time::Duration;

use observe::sink::{Sink as _, TcpSink};
use sink_common::{dispatch, rss_bytes};
use support::free_port;

#[test]
fn a_full_queue_with_the_collector_down_holds_no_more_than_its_capacity() {
    const CAPACITY: usize = 16 * 1024 * 1024;
    const THREADS: u64 = 4;
    const PER_THREAD: u64 = 150_000;
    // Nothing listens on this port.
    let sink = TcpSink::builder(format!("127.0.0.1:{}", free_port()))
        .name("tcp-memory")
        .capacity_bytes(CAPACITY)
        .backoff(Duration::from_millis(50), Duration::from_millis(200))
        .build()
        .expect("sink");
    let d = dispatch("sink-memory", sink.clone());
    // Warm up the formatting path so its buffers are not counted.
    tracing::dispatcher::with_default(&d, || tracing::info!(seq = 0u64, "warm-up"));
    let before = rss_bytes();

    std::thread::scope(|s| {
        for t in 0..THREADS {
            let d = d.clone();
            s.spawn(move || {
                tracing::dispatcher::with_default(&d, || {
                    for seq in 0..PER_THREAD {
                        tracing::info!(thread = t, seq, "a line nobody will receive, number {seq}");
                    }
                });
            });
        }
    });
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
}
