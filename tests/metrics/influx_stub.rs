//! The InfluxDB push against a local stub HTTP server that answers with
//! scripted statuses: 5xx is retried with backoff until delivered, 4xx is
//! dropped and counted without a retry, the v1 and v2 requests carry the
//! right path and token, and stopping flushes the last interval.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::eventually;
use observe::metrics::influxdb::{AggregatingRecorder, InfluxConfig, InfluxPush, InfluxStats};

/// One request the stub received.
#[derive(Debug, Clone)]
struct Request {
    target: String,
    authorization: Option<String>,
    body: String,
}

/// Answers each request with the next scripted status (204 once the
/// script is used up) and keeps what it received.
struct Stub {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<Request>>>,
}

impl Stub {
    fn start(script: &[u16]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&received);
        let mut script: VecDeque<u16> = script.iter().copied().collect();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let status = script.pop_front().unwrap_or(204);
                serve(stream, status, &log);
            }
        });
        Self { addr, received }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn requests(&self) -> Vec<Request> {
        self.received.lock().expect("lock").clone()
    }
}

/// Reads one request, keeps it in `log`, then answers `status`: kept
/// first, so a client that has its answer finds the request logged.
fn serve(mut stream: TcpStream, status: u16, log: &Mutex<Vec<Request>>) -> Option<()> {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let header = |name: &str| {
        head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    };
    let length: usize = header("content-length")?.parse().ok()?;
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    log.lock().expect("lock").push(Request {
        target: head.split(' ').nth(1)?.to_owned(),
        authorization: header("authorization"),
        body: String::from_utf8_lossy(&buf[head_end..head_end + length]).into_owned(),
    });
    let body = if status == 204 {
        ""
    } else {
        r#"{"error":"scripted"}"#
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status} Scripted\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    Some(())
}

/// A push that only collects when told to.
fn push(config: InfluxConfig) -> (InfluxPush, AggregatingRecorder) {
    let recorder = AggregatingRecorder::default();
    let config = config
        .interval(Duration::from_secs(3600))
        .retry_backoff(Duration::from_millis(20), Duration::from_millis(80));
    let push = InfluxPush::start("stubbed", config, &recorder).expect("start");
    (push, recorder)
}

fn stats_until(push: &InfluxPush, what: &str, done: impl Fn(&InfluxStats) -> bool) -> InfluxStats {
    eventually(what, || {
        let s = push.stats();
        Ok(done(&s).then_some(s))
    })
}

#[test]
fn server_errors_are_retried_with_backoff_until_delivered() {
    let stub = Stub::start(&[503, 500, 502]);
    let (push, recorder) = push(InfluxConfig::v2(&stub.url(), "my org", "metrics", "s3cret"));
    metrics::with_local_recorder(&recorder, || {
        metrics::counter!("events_processed_total", "source" => "ws").increment(5);
    });
    push.collect_now();
    let s = stats_until(&push, "delivery after three 5xx", |s| s.points_written == 1);
    assert_eq!(s.failed_requests, 3);
    assert_eq!(s.dropped_rejected + s.dropped_buffer_full, 0);

    let requests = stub.requests();
    assert_eq!(requests.len(), 4, "{requests:#?}");
    for r in &requests {
        assert_eq!(
            r.target,
            "/api/v2/write?org=my%20org&bucket=metrics&precision=ms"
        );
        assert_eq!(r.authorization.as_deref(), Some("Token s3cret"));
        // The same batch each time.
        assert_eq!(r.body, requests[0].body);
    }
    assert!(
        requests[0].body.starts_with(
            "service_counters,metric=events_processed_total,service=stubbed,source=ws value=5i,total=5i "
        ),
        "{}",
        requests[0].body
    );
    assert_eq!(push.stop(Duration::from_secs(5)).dropped_shutdown, 0);
}

#[test]
fn client_errors_drop_the_batch_without_retrying_and_count_it() {
    let stub = Stub::start(&[400]);
    let (push, recorder) = push(InfluxConfig::v1(&stub.url(), "metrics"));
    metrics::with_local_recorder(&recorder, || {
        metrics::gauge!("queue_depth", "queue" => "a").set(3.0);
        metrics::gauge!("queue_depth", "queue" => "b").set(4.0);
    });
    push.collect_now();
    let s = stats_until(&push, "the rejected batch counted", |s| {
        s.dropped_rejected == 2
    });
    assert_eq!(s.points_written, 0);
    assert_eq!(s.failed_requests, 0, "a 4xx is not retried");

    // The next interval goes through: the rejection did not wedge the push.
    push.collect_now();
    let s = stats_until(&push, "the next batch delivered", |s| s.points_written == 2);
    assert_eq!(s.dropped_rejected, 2);
    let requests = stub.requests();
    assert_eq!(requests.len(), 2, "{requests:#?}");
    assert_eq!(requests[0].target, "/write?db=metrics&precision=ms");
    assert_eq!(requests[0].authorization, None);
    // Stopping reports the gauges once more: they are state, sent each
    // interval.
    assert_eq!(push.stop(Duration::from_secs(5)).points_written, 4);
}

#[test]
fn stopping_delivers_the_last_interval() {
    let stub = Stub::start(&[]);
    let (push, recorder) = push(InfluxConfig::v1(&stub.url(), "metrics").batch_size(2));
    metrics::with_local_recorder(&recorder, || {
        for op in ["a", "b", "c"] {
            metrics::histogram!("operation_duration_seconds", "operation" => op, "status" => "success")
                .record(0.25);
        }
    });
    // Never collected before: stop must collect it and send it, in two
    // batches of at most two lines.
    let s = push.stop(Duration::from_secs(10));
    assert_eq!(s.points_written, 3, "{s:?}");
    assert_eq!(s.dropped_shutdown, 0);
    let requests = stub.requests();
    assert_eq!(requests.len(), 2);
    let lines: Vec<&str> = requests.iter().flat_map(|r| r.body.lines()).collect();
    assert_eq!(lines.len(), 3);
    for l in lines {
        assert!(
            l.starts_with("service_performance,operation=")
                && l.contains(",service=stubbed,status=success count=1i,duration_ms_mean=250,"),
            "{l}"
        );
    }
}

#[test]
fn an_unreachable_server_costs_buffer_space_not_the_application() {
    // A port with nothing listening: every write is refused.
    let closed = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let recorder = AggregatingRecorder::default();
    let config = InfluxConfig::v1(&format!("http://{closed}"), "metrics")
        .interval(Duration::from_secs(3600))
        .buffer_capacity(3)
        .retry_backoff(Duration::from_millis(10), Duration::from_millis(20));
    let push = InfluxPush::start("offline", config, &recorder).expect("start");
    for i in 0..5 {
        metrics::with_local_recorder(&recorder, || {
            metrics::counter!("ticks_total", "i" => i.to_string()).increment(1);
        });
        push.collect_now();
    }
    let s = stats_until(&push, "failed writes", |s| s.failed_requests >= 2);
    assert_eq!(s.points_queued, 5);
    assert_eq!(s.buffered, 3);
    assert_eq!(s.dropped_buffer_full, 2);
    let s = push.stop(Duration::from_millis(100));
    assert_eq!(s.points_written, 0);
    assert_eq!(s.dropped_shutdown, 3);
    assert_eq!(
        s.dropped_buffer_full + s.dropped_shutdown,
        s.points_queued,
        "every point is delivered or counted"
    );
}
