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
    // UDP has no flow control: a datagram the collector's socket buffer
    // has no room for is lost in the kernel, unseen by any sender. On a
    // busy machine the collector may not read for a while, so the lines go
    // in bursts of 25, each received before the next is sent; what is
    // tested is the sink, not how long the collector sleeps.
    const LINES: u64 = 200;
    const BURST: u64 = 25;
    let big = "z".repeat(5000);
    let log = collector.dir().join("received.log");
    let mut received = Vec::new();
    for burst in 0..LINES / BURST {
        tracing::dispatcher::with_default(&d, || {
            for seq in burst * BURST..(burst + 1) * BURST {
                tracing::info!(seq, "datagram {seq}");
                if seq % 50 == 0 {
                    tracing::warn!(big = big.as_str(), "too large for one datagram");
                }
            }
        });
        assert!(sink.flush(Duration::from_secs(10)));
        let expected = usize::try_from((burst + 1) * BURST).expect("small");
        received = wait_for_lines(&log, expected, Duration::from_secs(30));
    }
    let stats = sink.stats();
    let received = parse_all(&received);
    println!("udp: {stats:?}, received {}", received.len());
    assert_eq!((stats.sent, stats.dropped, stats.rejected), (LINES, 4, 4));
    let seqs: Vec<u64> = received
        .iter()
        .map(|l| l["context"]["seq"].as_u64().expect("seq"))
        .collect();
    assert_eq!(seqs, (0..LINES).collect::<Vec<_>>());
    assert_eq!(counter_reaching(LOG_LINES_DROPPED_TOTAL, "udp-test", 4), 4);
}
