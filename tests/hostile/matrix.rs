//! The matrix: each network path against each behaviour that applies to
//! it. Every cell checks that no observe thread panicked or restarted, that
//! the logging thread never waited, that flushes and stops returned within
//! their timeout plus a little slack, that every line or point is accounted for,
//! and that what is logged once the peer is sane arrives.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::listener::{CLIENT_TRICKS, HostileClients, scrape};
use crate::peer::{Behaviour, Peer, Protocol};
use crate::{all_panics, dispatch, lock, panics_of, restarts, wait_until};
use observe::metrics::MetricsListener;
use observe::metrics::influxdb::{AggregatingRecorder, InfluxConfig, InfluxPush, InfluxStats};
use observe::sink::{ElasticsearchSink, Sink, SinkStats, TcpSink, UdpSink};

/// Lines logged while the peer misbehaves, and once it is sane.
const HOSTILE_LINES: u64 = 2000;
const SANE_LINES: u64 = 100;
/// The bound on logging 1000 lines: the calling thread never waits. A
/// caller held by a peer would wait out write timeouts, batch after
/// batch; the bound leaves room for a loaded machine's stalls.
const PER_THOUSAND: Duration = Duration::from_millis(1000);
/// The flush while the peer misbehaves, and the one once it is sane.
const FLUSH: Duration = Duration::from_secs(1);
const SANE_FLUSH: Duration = Duration::from_secs(15);
/// Room past a deadline for a loaded machine's stalls.
const SLACK: Duration = Duration::from_secs(3);
/// Cells run at once (the machine may have two cores, and some peers
/// spin).
const PARALLEL: usize = 3;
/// How long a client may take to reach its peer.
const MEETING: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Path {
    Bulk,
    InfluxV1,
    InfluxV2,
    Tcp,
    Tls,
    Udp,
    Listener,
}

impl Path {
    const ALL: [Self; 7] = [
        Self::Bulk,
        Self::InfluxV1,
        Self::InfluxV2,
        Self::Tcp,
        Self::Tls,
        Self::Udp,
        Self::Listener,
    ];

    fn title(self) -> &'static str {
        match self {
            Self::Bulk => "_bulk",
            Self::InfluxV1 => "InfluxDB v1",
            Self::InfluxV2 => "InfluxDB v2",
            Self::Tcp => "TCP json_lines",
            Self::Tls => "TLS json_lines",
            Self::Udp => "UDP",
            Self::Listener => "/metrics (hostile client)",
        }
    }

    /// The behaviours that mean something on this path. Chunk sizes,
    /// headers and interim answers are HTTP; a json_lines client reads
    /// nothing, so only how the peer takes (or refuses) its bytes matters;
    /// UDP can only meet a closed port or a socket that never reads; the
    /// listener meets clients, not servers.
    fn applicable(self) -> Vec<Behaviour> {
        use Behaviour as B;
        const LINES: [Behaviour; 6] = [
            B::GarbageStatus,
            B::Drip,
            B::CloseMidBody,
            B::Reset,
            B::AcceptNeverRead,
            B::NeverAccept,
        ];
        match self {
            Self::Bulk | Self::InfluxV1 | Self::InfluxV2 => B::HOSTILE
                .into_iter()
                .filter(|b| *b != B::TlsGarbage)
                .collect(),
            Self::Tcp => LINES.to_vec(),
            Self::Tls if cfg!(feature = "tls") => {
                LINES.into_iter().chain([B::TlsGarbage]).collect()
            }
            Self::Tls => Vec::new(),
            Self::Udp => vec![B::AcceptNeverRead, B::NeverAccept],
            Self::Listener => CLIENT_TRICKS.to_vec(),
        }
    }
}

fn slug(b: Behaviour) -> String {
    format!("{b:?}").to_ascii_lowercase()
}

type Outcome = Result<(), String>;

fn ensure(ok: bool, why: impl FnOnce() -> String) -> Outcome {
    if ok { Ok(()) } else { Err(why()) }
}

fn timed<T>(f: impl FnOnce() -> T) -> (Duration, T) {
    let start = Instant::now();
    let out = f();
    (start.elapsed(), out)
}

/// Logs `seqs` through `sink` (each line ~0.7 KiB); how long it took.
fn log(sink: &(impl Sink + Clone), seqs: std::ops::Range<u64>) -> Duration {
    let d = dispatch("hostile", sink.clone());
    let pad = "p".repeat(512);
    timed(|| {
        tracing::dispatcher::with_default(&d, || {
            for seq in seqs {
                tracing::info!(seq, pad = pad.as_str(), "line {seq}");
            }
        });
    })
    .0
}

fn logging_never_waits(took: Duration, lines: u64) -> Outcome {
    let bound = PER_THOUSAND * u32::try_from(lines.div_ceil(1000)).unwrap_or(u32::MAX);
    ensure(took < bound, || {
        format!("logging {lines} lines took {took:?}")
    })
}

/// No panic in `thread` since `since`, and no restart of `component`.
fn unhurt(thread: &str, component: &str, since: Instant) -> Outcome {
    let panics = panics_of(thread, since);
    ensure(panics == 0, || format!("{panics} panic(s) in {thread}"))?;
    let restarted = restarts().get(component).copied().unwrap_or(0);
    ensure(restarted == 0, || {
        format!("{component} restarted {restarted}x")
    })
}

/// The common course of a sink cell: log while `peer` misbehaves, flush,
/// turn the peer sane with `sane()`, log, flush, check the counts and that
/// the later lines arrived (`arrived()`).
fn sink_course<S: Sink + Clone>(
    name: &str,
    sink: &S,
    stats: impl Fn(&S) -> SinkStats,
    met: impl Fn() -> bool,
    sane: impl FnOnce(),
    arrived: impl Fn() -> BTreeSet<u64>,
    paced: bool,
) -> Outcome {
    let since = Instant::now();
    logging_never_waits(log(sink, 0..HOSTILE_LINES), HOSTILE_LINES)?;
    // The cell means nothing unless the sink met the misbehaviour (a
    // peer that never accepts, or a UDP port, is never met: `met` says so).
    let met = wait_until(MEETING, met);
    ensure(met, || {
        format!("the sink never reached the peer: {:?}", stats(sink))
    })?;
    let (took, _) = timed(|| sink.flush(FLUSH));
    ensure(took < FLUSH + SLACK, || {
        format!("hostile flush took {took:?}")
    })?;
    sane();
    let total = HOSTILE_LINES + SANE_LINES;
    if paced {
        // UDP has no flow control: a burst larger than the receiver's
        // socket buffer is lost by design, not by the sink. Ten lines at
        // a time, each batch handed to the kernel before the next.
        std::thread::sleep(Duration::from_millis(200));
        for start in (HOSTILE_LINES..total).step_by(10) {
            logging_never_waits(log(sink, start..start + 10), 10)?;
            sink.flush(SANE_FLUSH);
            std::thread::sleep(Duration::from_millis(20));
        }
    } else {
        logging_never_waits(log(sink, HOSTILE_LINES..total), SANE_LINES)?;
    }
    let (took, flushed) = timed(|| sink.flush(SANE_FLUSH));
    ensure(took < SANE_FLUSH + SLACK, || {
        format!("sane flush took {took:?}")
    })?;
    let s = stats(sink);
    ensure(flushed, || format!("no flush once sane: {s:?}"))?;
    ensure(s.queued == 0 && s.sent + s.dropped == total, || {
        format!("sent + dropped != {total}: {s:?}")
    })?;
    let want = HOSTILE_LINES..total;
    let all_arrived = wait_until(Duration::from_secs(30), || {
        let got = arrived();
        want.clone().all(|seq| got.contains(&seq))
    });
    ensure(all_arrived, || {
        let got = arrived();
        let missing = want.clone().filter(|s| !got.contains(s)).count();
        format!("{missing} of the lines logged once sane never arrived: {s:?}")
    })?;
    unhurt(
        &format!("observe-sink-{name}"),
        &format!("sink {name}"),
        since,
    )
}

/// [`sink_course`] against `peer`, playing `b` until it turns sane.
fn peer_course<S: Sink + Clone>(
    name: &str,
    sink: &S,
    stats: impl Fn(&S) -> SinkStats,
    peer: &Peer,
    b: Behaviour,
) -> Outcome {
    sink_course(
        name,
        sink,
        stats,
        || peer.contacts() > 0 || b == Behaviour::NeverAccept,
        || peer.set(Behaviour::Sane),
        || peer.seqs(),
        false,
    )
}

fn bulk_cell(b: Behaviour) -> Outcome {
    let name = format!("hx-bulk-{}", slug(b));
    let peer = Peer::start(Protocol::Bulk, b);
    let sink = ElasticsearchSink::builder(peer.url())
        .name(name.clone())
        .backoff(Duration::from_millis(20), Duration::from_millis(200))
        .connect_timeout(Duration::from_millis(500))
        .io_timeout(Duration::from_millis(500))
        .build()
        .map_err(|e| e.to_string())?;
    peer_course(&name, &sink, ElasticsearchSink::stats, &peer, b)
}

fn tcp_cell(b: Behaviour, tls: Option<&Tls>) -> Outcome {
    let kind = if tls.is_some() { "tls" } else { "tcp" };
    let name = format!("hx-{kind}-{}", slug(b));
    #[cfg(feature = "tls")]
    let protocol = match tls {
        Some(t) => Protocol::TlsLines(Arc::clone(&t.server)),
        None => Protocol::Lines,
    };
    #[cfg(not(feature = "tls"))]
    let protocol = Protocol::Lines;
    let peer = Peer::start(protocol, b);
    let builder = TcpSink::builder(peer.addr().to_string())
        .name(name.clone())
        .backoff(Duration::from_millis(20), Duration::from_millis(200))
        .connect_timeout(Duration::from_millis(500))
        .io_timeout(Duration::from_millis(500));
    #[cfg(feature = "tls")]
    let builder = match tls {
        Some(t) => builder.tls(t.client.clone()),
        None => builder,
    };
    let sink = builder.build().map_err(|e| e.to_string())?;
    peer_course(&name, &sink, TcpSink::stats, &peer, b)
}

/// A UDP collector on `port` that records what it reads once sane.
struct UdpPeer {
    seqs: Arc<Mutex<BTreeSet<u64>>>,
    stop: Arc<AtomicBool>,
}

impl UdpPeer {
    fn start(socket: UdpSocket) -> Self {
        let seqs = Arc::new(Mutex::new(BTreeSet::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, flag) = (Arc::clone(&seqs), Arc::clone(&stop));
        let _ = socket.set_read_timeout(Some(Duration::from_millis(100)));
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 70_000];
            while !flag.load(Ordering::Relaxed) {
                if let Ok(n) = socket.recv(&mut buf) {
                    let v = serde_json::from_slice::<serde_json::Value>(&buf[..n]);
                    if let Some(seq) = v.ok().and_then(|v| v["context"]["seq"].as_u64()) {
                        lock(&s).insert(seq);
                    }
                }
            }
        });
        Self { seqs, stop }
    }
}

impl Drop for UdpPeer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn udp_cell(b: Behaviour) -> Outcome {
    let name = format!("hx-udp-{}", slug(b));
    let bound = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let addr = bound.local_addr().map_err(|e| e.to_string())?;
    // A closed port answers with ICMP; a socket that never reads lets
    // its buffer fill and the kernel drop the rest.
    let mut held = match b {
        Behaviour::NeverAccept => {
            drop(bound);
            None
        }
        _ => Some(bound),
    };
    let sink = UdpSink::builder(addr.to_string())
        .name(name.clone())
        .backoff(Duration::from_millis(20), Duration::from_millis(200))
        .build()
        .map_err(|e| e.to_string())?;
    let peer = Mutex::new(None);
    sink_course(
        &name,
        &sink,
        UdpSink::stats,
        || true,
        || {
            let socket = match held.take() {
                Some(s) => Ok(s),
                None => UdpSocket::bind(addr),
            };
            if let Ok(socket) = socket {
                *lock(&peer) = Some(UdpPeer::start(socket));
            }
        },
        || {
            lock(&peer)
                .as_ref()
                .map(|p| lock(&p.seqs).clone())
                .unwrap_or_default()
        },
        true,
    )
}

/// Every point queued is written, dropped (by reason) or still buffered.
fn accounted(s: &InfluxStats) -> Outcome {
    let out = s.points_written
        + s.dropped_buffer_full
        + s.dropped_rejected
        + s.dropped_invalid
        + s.dropped_shutdown
        + s.buffered;
    ensure(out == s.points_queued, || {
        format!("points unaccounted: {s:?}")
    })
}

fn influx_cell(b: Behaviour, v2: bool) -> Outcome {
    let since = Instant::now();
    let peer = Peer::start(Protocol::Influx, b);
    let config = || {
        let c = if v2 {
            InfluxConfig::v2(&peer.url(), "org", "bucket", "tok")
        } else {
            InfluxConfig::v1(&peer.url(), "hostile")
        };
        c.interval(Duration::from_millis(200))
            .timeout(Duration::from_millis(500))
            .retry_backoff(Duration::from_millis(20), Duration::from_millis(200))
    };
    let record = |recorder: &AggregatingRecorder, name: &'static str| {
        timed(|| {
            metrics::with_local_recorder(recorder, || {
                for i in 0..1000u32 {
                    metrics::counter!(name, "i" => (i % 10).to_string()).increment(1);
                }
            });
        })
        .0
    };
    let service = format!("hx-influx-{}", slug(b));
    let start = |service: &str| {
        let recorder = AggregatingRecorder::default();
        InfluxPush::start(service, config(), &recorder)
            .map(|p| (p, recorder))
            .map_err(|e| e.to_string())
    };

    // A push stopped while the peer misbehaves.
    let (stopped, rec) = start(&service)?;
    logging_never_waits(record(&rec, "hostile_stopped_total"), 1000)?;
    std::thread::sleep(Duration::from_millis(400));
    let (took, s) = timed(|| stopped.stop(FLUSH));
    ensure(took < FLUSH + SLACK, || {
        format!("stop while hostile took {took:?}")
    })?;
    accounted(&s)?;

    // A push that meets the misbehaviour, then the sane peer.
    let (push, rec) = start(&service)?;
    logging_never_waits(record(&rec, "hostile_before_total"), 1000)?;
    let met = wait_until(MEETING, || {
        peer.contacts() > 0 || b == Behaviour::NeverAccept
    });
    ensure(met, || {
        format!("the push never reached the peer: {:?}", push.stats())
    })?;
    peer.set(Behaviour::Sane);
    logging_never_waits(record(&rec, "hostile_after_total"), 1000)?;
    let arrived = wait_until(Duration::from_secs(15), || {
        peer.bodies()
            .iter()
            .any(|body| body.contains("hostile_after_total"))
    });
    let (took, s) = timed(|| push.stop(FLUSH));
    ensure(took < FLUSH + SLACK, || format!("stop took {took:?}"))?;
    ensure(arrived, || format!("nothing arrived once sane: {s:?}"))?;
    ensure(s.points_written > 0, || format!("{s:?}"))?;
    accounted(&s)?;
    unhurt("observe-influxdb-push", "influxdb push", since)
}

fn listener_cell(trick: Behaviour) -> Outcome {
    let since = Instant::now();
    let bound = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let server =
        MetricsListener::serve(bound, || "up 1\n".to_owned()).map_err(|e| e.to_string())?;
    let addr: SocketAddr = server.local_addr();
    let check = |when: &str| -> Outcome {
        let limit = Duration::from_secs(3);
        let (took, answer) = timed(|| scrape(addr, limit));
        let answer = answer.map_err(|e| format!("scrape {when}: {e} after {took:?}"))?;
        ensure(!answer.is_empty(), || {
            format!("scrape {when}: closed with no answer after {took:?}")
        })?;
        ensure(
            answer.starts_with("HTTP/1.1 200 ") && answer.ends_with("up 1\n"),
            || format!("scrape {when}: {answer:?}"),
        )?;
        ensure(took < limit, || format!("scrape {when} took {took:?}"))
    };
    let clients = HostileClients::start(addr, trick);
    std::thread::sleep(Duration::from_millis(300));
    let during = (0..5).try_for_each(|_| check("during the attack"));
    drop(clients);
    during?;
    check("after the attack")?;
    // A stop gives its threads a second's grace, then a second to go
    // idle; the bound stays under a dribbling client's request deadline
    // (3 s), which a stop must not wait out.
    let (took, ()) = timed(|| server.stop());
    ensure(took < Duration::from_millis(2_900), || {
        format!("stop took {took:?}")
    })?;
    unhurt("observe-metrics-listener", "metrics listener", since)?;
    unhurt("observe-metrics-conn", "metrics listener", since)
}

/// The TLS configurations of both ends, from a CA made here.
struct Tls {
    #[cfg(feature = "tls")]
    server: Arc<rustls::ServerConfig>,
    #[cfg(feature = "tls")]
    client: observe::sink::TlsConfig,
}

#[cfg(feature = "tls")]
fn tls() -> Tls {
    let ca = crate::tls_ca::TestCa::new();
    Tls {
        server: Arc::clone(&ca.server),
        client: ca.client(),
    }
}

#[cfg(not(feature = "tls"))]
fn tls() -> Tls {
    Tls {}
}

fn run(path: Path, b: Behaviour, tls: &Tls) -> Outcome {
    match path {
        Path::Bulk => bulk_cell(b),
        Path::InfluxV1 => influx_cell(b, false),
        Path::InfluxV2 => influx_cell(b, true),
        Path::Tcp => tcp_cell(b, None),
        Path::Tls => tcp_cell(b, Some(tls)),
        Path::Udp => udp_cell(b),
        Path::Listener => listener_cell(b),
    }
}

/// The matrix as a markdown table: behaviours down, paths across.
fn table(outcomes: &BTreeMap<(Path, Behaviour), String>) -> String {
    let mut out = String::from("| behaviour |");
    for p in Path::ALL {
        out.push_str(&format!(" {} |", p.title()));
    }
    out.push_str("\n|---|");
    out.push_str(&"---|".repeat(Path::ALL.len()));
    out.push('\n');
    for b in Behaviour::HOSTILE {
        out.push_str(&format!("| {b:?} |"));
        for p in Path::ALL {
            let cell = outcomes.get(&(p, b)).map_or("n/a", String::as_str);
            out.push_str(&format!(
                " {} |",
                cell.replace('|', "\\|").replace('\n', " ")
            ));
        }
        out.push('\n');
    }
    out
}

#[test]
fn hostile_peer_matrix() {
    crate::install();
    let tls = tls();
    let cells: Vec<(Path, Behaviour)> = Path::ALL
        .into_iter()
        .flat_map(|p| p.applicable().into_iter().map(move |b| (p, b)))
        .collect();
    let queue = Mutex::new(cells.into_iter());
    let outcomes = Mutex::new(BTreeMap::new());
    let started = Instant::now();
    std::thread::scope(|s| {
        for i in 0..PARALLEL {
            let (queue, outcomes, tls) = (&queue, &outcomes, &tls);
            std::thread::Builder::new()
                .name(format!("cell-runner-{i}"))
                .spawn_scoped(s, move || {
                    loop {
                        let next = lock(queue).next();
                        let Some((p, b)) = next else { return };
                        let (took, outcome) = timed(|| run(p, b, tls));
                        let text = match outcome {
                            Ok(()) => "ok".to_owned(),
                            Err(e) => e,
                        };
                        eprintln!("{} x {b:?}: {text} ({took:.1?})", p.title());
                        lock(outcomes).insert((p, b), text);
                    }
                })
                .expect("spawn a cell runner");
        }
    });
    let outcomes = outcomes.into_inner().unwrap_or_else(|e| e.into_inner());
    let table = table(&outcomes);
    eprintln!("hostile-peer matrix ({:.0?}):\n{table}", started.elapsed());
    if let Ok(file) = std::env::var("OBSERVE_MATRIX_OUT") {
        std::fs::write(&file, &table).expect("write the matrix");
    }
    let panics = all_panics();
    assert!(panics.is_empty(), "observe threads panicked: {panics:?}");
    let restarted: Vec<_> = restarts().into_iter().filter(|(_, n)| *n > 0).collect();
    assert!(restarted.is_empty(), "components restarted: {restarted:?}");
    let failed: Vec<_> = outcomes.iter().filter(|(_, o)| *o != "ok").collect();
    assert!(failed.is_empty(), "failing cells: {failed:?}");
}
