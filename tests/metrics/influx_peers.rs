//! The InfluxDB push against small hostile servers on 127.0.0.1, then the
//! same server turned sane: no panic, stopping returns on time, every point
//! is written or counted, and the push delivers again. Also the push over
//! `https://` (feature `tls`) and its secrets kept out of error texts.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::eventually;
use crate::hostile_http::{HostileServer, Play, lock, misbehave, read_request};
use observe::metrics::influxdb::{AggregatingRecorder, InfluxConfig, InfluxPush, InfluxStats};

/// A loopback write endpoint playing a [`Play`] (switchable), keeping
/// the bodies it accepted.
struct Peer {
    url: String,
    server: HostileServer,
    bodies: Arc<Mutex<Vec<String>>>,
}

impl Peer {
    fn start(play: Play) -> Self {
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&bodies);
        let server = HostileServer::start(play, move |stream, play| {
            answer(stream, *lock(play), &kept);
        });
        Self {
            url: server.url.clone(),
            server,
            bodies,
        }
    }

    fn set(&self, play: Play) {
        self.server.set(play);
    }

    fn bodies(&self) -> Vec<String> {
        lock(&self.bodies).clone()
    }
}

/// Reads one request and answers it as `play` says (until the client
/// hangs up). An accepted body is kept before the answer goes out, so a
/// client that has seen its write succeed finds the body kept.
fn answer(stream: TcpStream, play: Play, kept: &Mutex<Vec<String>>) {
    let Some(mut reader) = stream.try_clone().ok().map(BufReader::new) else {
        return;
    };
    let Some(body) = read_text(&mut reader) else {
        return;
    };
    let mut w = stream;
    if play == Play::Sane {
        lock(kept).push(body);
        let _ = w.write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
        return;
    }
    misbehave(&mut w, play, "400 Bad Request");
}

/// One request's body as text.
fn read_text(reader: &mut impl BufRead) -> Option<String> {
    String::from_utf8(read_request(reader)?).ok()
}

/// A push that collects only when told to, with a 1 s deadline per write.
fn push(url: &str) -> (InfluxPush, AggregatingRecorder) {
    let recorder = AggregatingRecorder::default();
    let config = InfluxConfig::v1(url, "metrics")
        .interval(Duration::from_secs(3600))
        .timeout(Duration::from_secs(1))
        .retry_backoff(Duration::from_millis(20), Duration::from_millis(100));
    let push = InfluxPush::start("peers", config, &recorder).expect("start");
    (push, recorder)
}

fn record(recorder: &AggregatingRecorder, n: u64) {
    metrics::with_local_recorder(recorder, || {
        metrics::counter!("peer_ticks_total", "n" => n.to_string()).increment(1);
    });
}

/// Every point queued is written, dropped (by reason) or still buffered.
fn accounted(s: &InfluxStats) -> bool {
    s.points_queued
        == s.points_written
            + s.dropped_buffer_full
            + s.dropped_rejected
            + s.dropped_shutdown
            + s.buffered
}

fn hostile_then_sane(play: Play) {
    let peer = Peer::start(play);
    let (push, recorder) = push(&peer.url);
    record(&recorder, 1);
    push.collect_now();
    let s = eventually(&format!("{play:?}: a failed or refused write"), || {
        let s = push.stats();
        Ok((s.failed_requests + s.dropped_rejected > 0).then_some(s))
    });
    assert_eq!(s.points_written, 0, "{play:?}: {s:?}");
    peer.set(Play::Sane);
    record(&recorder, 2);
    push.collect_now();
    // The first point may still be retried when the second is collected,
    // so wait for the second's body, not for any write.
    eventually(
        &format!("{play:?}: the second point delivered once sane"),
        || {
            let bodies = peer.bodies();
            let seen = bodies
                .iter()
                .any(|b| b.contains("peer_ticks_total") && b.contains("n=2"));
            if seen {
                Ok(Some(()))
            } else {
                Err(format!("{bodies:?}"))
            }
        },
    );
    let s = eventually(&format!("{play:?}: nothing left buffered"), || {
        let s = push.stats();
        Ok((s.buffered == 0 && s.points_written >= 1).then_some(s))
    });
    assert!(accounted(&s), "{play:?}: {s:?}");
    let start = Instant::now();
    let s = push.stop(Duration::from_secs(5));
    assert!(start.elapsed() < Duration::from_secs(6));
    assert!(accounted(&s), "{play:?}: {s:?}");
}

#[test]
fn an_overflowing_chunk_size_neither_panics_nor_stops_the_push() {
    hostile_then_sane(Play::OverflowingChunk);
}

#[test]
fn endless_interim_answers_end_in_an_error() {
    hostile_then_sane(Play::EndlessInterim);
}

#[test]
fn a_body_past_the_limit_ends_in_an_error() {
    hostile_then_sane(Play::EndlessBody);
}

#[test]
fn a_connection_closed_mid_body_is_retried() {
    hostile_then_sane(Play::CloseMidBody);
}

#[test]
fn dripping_headers_cannot_stretch_a_write_or_the_stop() {
    hostile_then_sane(Play::DripHeaders);
    // Against a server that drips for good, stopping returns within its
    // timeout plus the deadline of the write in flight (1 s) plus slack.
    let peer = Peer::start(Play::DripHeaders);
    let (push, recorder) = push(&peer.url);
    record(&recorder, 1);
    push.collect_now();
    std::thread::sleep(Duration::from_millis(300));
    let timeout = Duration::from_secs(2);
    let (tx, rx) = std::sync::mpsc::channel();
    let start = Instant::now();
    std::thread::spawn(move || {
        let _ = tx.send(push.stop(timeout));
    });
    let s = rx
        .recv_timeout(timeout + Duration::from_secs(30))
        .expect("stop returned");
    let took = start.elapsed();
    assert!(
        took < timeout + Duration::from_secs(4),
        "stop took {took:?}"
    );
    assert_eq!(s.points_written, 0, "{s:?}");
    assert_eq!(s.dropped_shutdown, 1, "{s:?}");
    assert!(accounted(&s), "{s:?}");
}

#[test]
fn secrets_stay_out_of_errors_and_debug() {
    let recorder = AggregatingRecorder::default();
    for config in [
        InfluxConfig::v1("http://admin:pw-s3cret@influx:port", "db"),
        InfluxConfig::v2("http://influx/?token=s3cret", "o", "b", "tok-s3cret"),
        InfluxConfig::v2("ftp://admin:pw-s3cret@influx", "o", "b", "tok-s3cret"),
    ] {
        let debug = format!("{config:?}");
        assert!(!debug.contains("s3cret"), "{debug}");
        let e = InfluxPush::start("secrets", config, &recorder).expect_err("bad URL");
        let text = format!("{e} {e:?}");
        assert!(!text.contains("s3cret"), "{text}");
    }
}

#[cfg(feature = "tls")]
mod tls {
    use std::io::BufReader;
    use std::sync::mpsc;
    use std::time::Duration;

    use crate::tls_ca::TestCa;
    use observe::metrics::influxdb::{AggregatingRecorder, InfluxConfig, InfluxPush};

    /// A TLS write endpoint for `127.0.0.1` signed by a CA made here: the
    /// CA, the URL, and each request's target and body.
    fn tls_endpoint() -> (TestCa, String, mpsc::Receiver<(String, String)>) {
        let ca = TestCa::new();
        let (tx, rx) = mpsc::channel();
        let addr = ca.endpoint(move |mut tls| {
            let mut reader = BufReader::new(&mut tls);
            let mut head = String::new();
            if std::io::BufRead::read_line(&mut reader, &mut head).is_err() {
                return;
            }
            let Some(body) = super::read_text(&mut reader) else {
                return;
            };
            let target = head.split(' ').nth(1).unwrap_or("").to_owned();
            let _ = std::io::Write::write_all(
                &mut tls,
                b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n",
            );
            tls.conn.send_close_notify();
            let _ = std::io::Write::flush(&mut tls);
            let _ = tx.send((target, body));
        });
        let url = format!("https://{addr}");
        (ca, url, rx)
    }

    #[test]
    fn the_push_writes_over_https() {
        let (ca, url, received) = tls_endpoint();
        let recorder = AggregatingRecorder::default();
        let config = InfluxConfig::v1(&url, "metrics")
            .interval(Duration::from_secs(3600))
            .tls(ca.client());
        let push = InfluxPush::start("over-tls", config, &recorder).expect("start");
        metrics::with_local_recorder(&recorder, || {
            metrics::counter!("tls_ticks_total").increment(3);
        });
        let s = push.stop(Duration::from_secs(30));
        assert_eq!((s.points_written, s.failed_requests), (1, 0), "{s:?}");
        let (target, body) = received
            .recv_timeout(Duration::from_secs(30))
            .expect("a write");
        assert_eq!(target, "/write?db=metrics&precision=ms");
        assert!(
            body.starts_with("service_counters,metric=tls_ticks_total,service=over-tls value=3i"),
            "{body}"
        );
    }

    #[test]
    fn a_server_from_another_ca_is_refused() {
        let (_, url, received) = tls_endpoint();
        let other_ca = TestCa::new();
        let recorder = AggregatingRecorder::default();
        let config = InfluxConfig::v1(&url, "metrics")
            .interval(Duration::from_secs(3600))
            .tls(other_ca.client());
        let push = InfluxPush::start("untrusted", config, &recorder).expect("start");
        metrics::with_local_recorder(&recorder, || {
            metrics::counter!("tls_ticks_total").increment(1);
        });
        let s = push.stop(Duration::from_secs(1));
        assert_eq!((s.points_written, s.dropped_shutdown), (0, 1), "{s:?}");
        assert!(received.try_recv().is_err(), "nothing reached the server");
    }
}
