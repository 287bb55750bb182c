//! Delivery: retries honouring `Retry-After`, refusals dropped and
//! counted, a collector that comes late, and one that never comes.

use std::time::{Duration, Instant};

use observe::monitor_performance;
use observe::sink::{CaptureSink, Sink as _};

use crate::receiver::Receiver;
use crate::{config, dispatch, exporter};

#[monitor_performance("otlp.delivery.call")]
fn call(n: u64) -> u64 {
    n
}

fn calls(exporter: &observe_runtime::otlp::OtlpExporter, n: u64) {
    let capture = CaptureSink::new();
    tracing::dispatcher::with_default(&dispatch(exporter, &capture), || {
        for i in 0..n {
            call(i);
        }
    });
}

#[test]
fn a_503_with_retry_after_is_retried_after_it_and_delivered() {
    let r = Receiver::start();
    r.answer_next(503, &[("Retry-After", "1")]);
    let exporter = exporter(&config(&r).logs(false));
    calls(&exporter, 3);
    assert!(exporter.flush(Duration::from_secs(10)));
    assert!(r.wait(Duration::from_secs(10), |got| got.spans.len() == 3));
    r.with(|got| {
        let q = &got.requests;
        assert_eq!((q[0].status, q[1].status), (503, 200), "{q:?}");
        let waited = q[1].at - q[0].at;
        assert!(
            waited >= Duration::from_millis(950) && waited < Duration::from_secs(3),
            "{waited:?}"
        );
    });
    let stats = exporter.stats().expect("on");
    assert_eq!((stats.sent, stats.dropped), (3, 0));
}

#[test]
fn a_400_drops_the_request_counted_as_rejected() {
    let r = Receiver::start();
    r.answer_next(400, &[]);
    let exporter = exporter(&config(&r).logs(false));
    calls(&exporter, 4);
    assert!(exporter.flush(Duration::from_secs(10)));
    let stats = exporter.stats().expect("on");
    // The first request's spans were refused; any sent after it arrived.
    let arrived = r.with(|got| got.spans.len() as u64);
    assert!(stats.rejected >= 1, "{stats:?}");
    assert_eq!(stats.dropped, stats.rejected, "{stats:?}");
    assert_eq!(
        (stats.sent, stats.sent + stats.dropped),
        (arrived, 4),
        "{stats:?}"
    );
    assert!(stats.last_error.is_some_and(|e| e.contains("400")));
    // The next request is taken (the first calls may have gone out in
    // more than one request, the later ones taken).
    calls(&exporter, 1);
    assert!(r.wait(Duration::from_secs(10), |got| got.spans.len() as u64
        == arrived + 1));
}

#[test]
fn a_collector_that_starts_late_gets_everything() {
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let config = observe_runtime::otlp::OtlpConfig::new(format!("http://{addr}"))
        .metrics(false)
        .backoff(Duration::from_millis(10), Duration::from_millis(100));
    let exporter = exporter(&config);
    calls(&exporter, 5);
    std::thread::sleep(Duration::from_millis(300));
    let r = Receiver::start_at(addr);
    assert!(exporter.flush(Duration::from_secs(10)));
    assert!(r.wait(Duration::from_secs(10), |got| got.spans.len() == 5
        && got.logs.len() == 5));
    // Spans and log records share one queue: five of each.
    let stats = exporter.stats().expect("on");
    assert_eq!((stats.sent, stats.dropped), (10, 0));
    assert_eq!(r.addr(), addr);
}

#[test]
fn with_the_collector_down_calls_never_wait_and_the_flush_counts_everything() {
    // A port nothing listens on.
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let config = observe_runtime::otlp::OtlpConfig::new(format!("http://{addr}")).metrics(false);
    let exporter = exporter(&config);
    let start = Instant::now();
    calls(&exporter, 2_000);
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    let start = Instant::now();
    assert!(!exporter.flush(Duration::from_millis(500)));
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "{:?}",
        start.elapsed()
    );
    // A span and a log record per call, in one queue.
    {
        let stats = exporter.stats().expect("on");
        assert_eq!(
            (stats.sent, stats.dropped, stats.queued),
            (0, 4_000, 0),
            "{stats:?}"
        );
    }
}
