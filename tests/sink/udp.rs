//! The UDP json_lines sink against a real syslog-ng collector.

use std::time::Duration;

use crate::common::{counter_reaching, recorder};
use crate::logging::dispatch;
use crate::received::{parse_all, wait_for_lines};
use crate::support::Service;
use observe::metrics::names::LOG_LINES_DROPPED_TOTAL;
use observe::sink::{Sink as _, UdpSink};

#[test]
fn lines_arrive_as_datagrams_and_oversized_ones_are_dropped_and_counted() {
    recorder();
    let Some(collector) = Service::start_or_skip("syslog-ng", &[]) else {
        return;
    };
    let sink = UdpSink::builder(collector.addr())
        .name("udp-test")
        .max_datagram_bytes(4096)
        .build()
        .expect("sink");
    let d = dispatch("sink-udp", sink.clone());
    // A burst well under the collector's socket buffer: loopback UDP does
    // not lose datagrams the receiver has room for.
    const LINES: u64 = 200;
    let big = "z".repeat(5000);
    tracing::dispatcher::with_default(&d, || {
        for seq in 0..LINES {
            tracing::info!(seq, "datagram {seq}");
            if seq % 50 == 0 {
                tracing::warn!(big = big.as_str(), "too large for one datagram");
            }
        }
    });
    assert!(sink.flush(Duration::from_secs(10)));
    let stats = sink.stats();
    let received = parse_all(&wait_for_lines(
        &collector.dir().join("received.log"),
        LINES as usize,
        Duration::from_secs(3),
        Duration::from_secs(30),
    ));
    println!("udp: {stats:?}, received {}", received.len());
    assert_eq!((stats.sent, stats.dropped, stats.rejected), (LINES, 4, 4));
    let seqs: Vec<u64> = received
        .iter()
        .map(|l| l["context"]["seq"].as_u64().expect("seq"))
        .collect();
    assert_eq!(seqs, (0..LINES).collect::<Vec<_>>());
    assert_eq!(counter_reaching(LOG_LINES_DROPPED_TOTAL, "udp-test", 4), 4);
}
