//! The `_bulk` sink against small hostile servers on 127.0.0.1: each
//! misbehaves for a while, then turns sane on the same port. The sink
//! must not panic, its flush must return on time, every logged line must
//! end up sent or dropped (counted), and once the server is sane the
//! lines logged afterwards must arrive.

use std::collections::BTreeSet;
use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::common::wait_until;
use crate::hostile_http::{HostileServer, Play, lock, misbehave, read_request};
use crate::logging::dispatch;
use observe::sink::{ElasticsearchSink, Sink as _};

/// A loopback `_bulk` server playing a [`Play`] (switchable) and
/// recording the `seq` of every line a sane answer acknowledged, and how
/// long each hostile exchange lasted before the client gave up.
pub(crate) struct Peer {
    pub(crate) url: String,
    server: HostileServer,
    indexed: Arc<Mutex<Vec<u64>>>,
    hostile: Arc<Mutex<Vec<Duration>>>,
}

impl Peer {
    pub(crate) fn start(play: Play) -> Self {
        let (indexed, hostile) = (Arc::default(), Arc::default());
        let (i, h) = (Arc::clone(&indexed), Arc::clone(&hostile));
        let server = HostileServer::start(play, move |stream, play| serve(stream, play, &i, &h));
        Self {
            url: server.url.clone(),
            server,
            indexed,
            hostile,
        }
    }

    pub(crate) fn set(&self, play: Play) {
        self.server.set(play);
    }

    pub(crate) fn indexed(&self) -> Vec<u64> {
        lock(&self.indexed).clone()
    }

    /// How long each hostile answer went on before the client hung up.
    pub(crate) fn hostile_exchanges(&self) -> Vec<Duration> {
        lock(&self.hostile).clone()
    }
}

fn serve(
    stream: TcpStream,
    play: &Mutex<Play>,
    indexed: &Mutex<Vec<u64>>,
    hostile: &Mutex<Vec<Duration>>,
) {
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut w = stream;
    while let Some(body) = read_request(&mut reader) {
        let play = *lock(play);
        if play == Play::Sane {
            let seqs = String::from_utf8_lossy(&body)
                .lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .filter_map(|v| v["context"]["seq"].as_u64())
                .collect::<Vec<_>>();
            lock(indexed).extend(seqs);
            let answer = r#"{"errors":false}"#;
            let reply = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{answer}",
                answer.len()
            );
            if w.write_all(reply.as_bytes()).is_err() {
                return;
            }
            continue;
        }
        let start = Instant::now();
        misbehave(&mut w, play, "200 OK");
        lock(hostile).push(start.elapsed());
        return;
    }
}

/// Panics of the sink worker threads, by thread name: a panic in a
/// background thread fails no test on its own.
fn worker_panics(thread: &str) -> usize {
    static PANICS: OnceLock<Arc<Mutex<Vec<String>>>> = OnceLock::new();
    let panics = PANICS.get_or_init(|| {
        let panics = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&panics);
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if let Some(name) = std::thread::current().name() {
                lock(&seen).push(name.to_owned());
            }
            previous(info);
        }));
        panics
    });
    lock(panics).iter().filter(|n| *n == thread).count()
}

fn log(sink: &ElasticsearchSink, seqs: std::ops::Range<u64>) {
    let d = dispatch("http-peers", sink.clone());
    tracing::dispatcher::with_default(&d, || {
        for seq in seqs {
            tracing::info!(seq, "line {seq}");
        }
    });
}

/// Plays `play` until the sink has met it, then turns sane: checks the
/// outcome every cell of the matrix must have.
fn hostile_then_sane(name: &str, play: Play) -> Peer {
    worker_panics("");
    let peer = Peer::start(play);
    let sink = ElasticsearchSink::builder(peer.url.clone())
        .name(name)
        .backoff(Duration::from_millis(20), Duration::from_millis(200))
        .connect_timeout(Duration::from_secs(1))
        .io_timeout(Duration::from_secs(2))
        .build()
        .expect("sink");
    log(&sink, 0..20);
    assert!(
        wait_until(Duration::from_secs(30), || !peer
            .hostile_exchanges()
            .is_empty()
            || sink.stats().last_error.is_some()),
        "{name}: the sink never met the server"
    );
    // A flush during the misbehaviour returns on time, lines undelivered.
    let flush = Duration::from_millis(500);
    let start = Instant::now();
    let flushed = sink.flush(flush);
    assert!(
        start.elapsed() < flush + Duration::from_secs(1),
        "{name}: flush took {:?}",
        start.elapsed()
    );
    assert!(!flushed, "{name}");
    peer.set(Play::Sane);
    log(&sink, 20..40);
    assert!(
        sink.flush(Duration::from_secs(30)),
        "{name}: {:?}",
        sink.stats()
    );
    let stats = sink.stats();
    assert_eq!(stats.sent + stats.dropped, 40, "{name}: {stats:?}");
    assert_eq!(stats.queued, 0, "{name}: {stats:?}");
    let indexed: BTreeSet<u64> = peer.indexed().into_iter().collect();
    assert!(
        (20..40).all(|s| indexed.contains(&s)),
        "{name}: lines logged once the server is sane arrive: {indexed:?}"
    );
    assert!(
        indexed.len() as u64 >= stats.sent,
        "{name}: {indexed:?} {stats:?}"
    );
    assert_eq!(
        worker_panics(&format!("observe-sink-{name}")),
        0,
        "{name}: the worker panicked"
    );
    // Every hostile exchange ended by the client's deadline (2 s) and
    // not, say, by the server's own bound.
    for took in peer.hostile_exchanges() {
        assert!(took < Duration::from_secs(5), "{name}: {took:?}");
    }
    peer
}

#[test]
fn an_overflowing_chunk_size_neither_panics_nor_kills_the_worker() {
    hostile_then_sane("peer-overflow", Play::OverflowingChunk);
}

#[test]
fn dripping_headers_cannot_stretch_an_exchange_past_its_deadline() {
    let peer = hostile_then_sane("peer-drip", Play::DripHeaders);
    assert!(!peer.hostile_exchanges().is_empty());
}

#[test]
fn endless_interim_answers_end_in_an_error() {
    hostile_then_sane("peer-interim", Play::EndlessInterim);
}

#[test]
fn a_body_past_the_limit_ends_in_an_error() {
    hostile_then_sane("peer-huge-body", Play::EndlessBody);
}

#[test]
fn a_connection_closed_mid_body_is_retried() {
    hostile_then_sane("peer-mid-body", Play::CloseMidBody);
}

#[test]
fn lines_survive_a_credential_rotation() {
    let peer = Peer::start(Play::Unauthorized);
    let sink = ElasticsearchSink::builder(peer.url.clone())
        .name("peer-rotation")
        // The refused lines are retried a few times with this backoff
        // (several seconds in all) before being dropped.
        .backoff(Duration::from_millis(300), Duration::from_secs(3))
        .build()
        .expect("sink");
    log(&sink, 0..20);
    assert!(wait_until(Duration::from_secs(30), || !peer
        .hostile_exchanges()
        .is_empty()));
    peer.set(Play::Sane);
    assert!(sink.flush(Duration::from_secs(30)), "{:?}", sink.stats());
    let stats = sink.stats();
    assert_eq!((stats.sent, stats.dropped), (20, 0), "{stats:?}");
    let indexed: BTreeSet<u64> = peer.indexed().into_iter().collect();
    assert_eq!(indexed, (0..20).collect());
}

#[test]
fn lines_refused_for_good_by_authentication_are_dropped_and_counted() {
    let peer = Peer::start(Play::Unauthorized);
    let sink = ElasticsearchSink::builder(peer.url.clone())
        .name("peer-unauthorized")
        .backoff(Duration::from_millis(10), Duration::from_millis(50))
        .build()
        .expect("sink");
    log(&sink, 0..20);
    assert!(sink.flush(Duration::from_secs(30)), "{:?}", sink.stats());
    let stats = sink.stats();
    assert_eq!((stats.sent, stats.dropped), (0, 20), "{stats:?}");
    let error = stats.last_error.expect("an error");
    assert!(!error.is_empty());
    assert!(
        peer.hostile_exchanges().len() > 1,
        "retried before being dropped"
    );
}

#[test]
fn timeouts_of_duration_max_mean_no_limit_and_do_not_panic() {
    let peer = Peer::start(Play::Sane);
    let sink = ElasticsearchSink::builder(peer.url.clone())
        .name("peer-max-timeouts")
        .connect_timeout(Duration::MAX)
        .io_timeout(Duration::MAX)
        .build()
        .expect("sink");
    log(&sink, 0..5);
    assert!(sink.flush(Duration::from_secs(30)), "{:?}", sink.stats());
    assert_eq!(sink.stats().sent, 5);
    assert_eq!(peer.indexed().len(), 5);
}
