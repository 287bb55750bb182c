//! One loopback server that plays any hostile behaviour, for any of the
//! protocols observe speaks as a client, and turns sane on the same port
//! when told: then it records what it receives, so a test can check that
//! lines logged afterwards arrive.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::lock;

/// What the peer does with a connection (or, for HTTP, a request).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Behaviour {
    /// Answers as a real collector would, and records what it got.
    Sane,
    /// `SSH-2.0-x` instead of an HTTP status line (or a TLS record).
    GarbageStatus,
    /// A chunk of 128 MiB, over the client's 64 MiB body limit.
    OversizedChunk,
    /// A chunk size of `-5`.
    NegativeChunk,
    /// A chunk size of `zz`.
    NonHexChunk,
    /// A chunk size of `ffffffffffffffff`.
    OverflowingChunk,
    /// A status line, then header lines as fast as possible, forever.
    EndlessHeaders,
    /// `100 Continue` after `100 Continue`, forever.
    EndlessInterim,
    /// One byte every 200 ms (written as an HTTP server, read as a
    /// collector).
    Drip,
    /// A `Content-Length` far over any limit, then endless bytes.
    HugeBody,
    /// Half of the announced body (or of what the client sends), then
    /// close.
    CloseMidBody,
    /// Closes with the client's bytes unread, which makes the kernel
    /// answer with a TCP reset.
    Reset,
    /// Accepts and never reads: the client's writes fill the buffers.
    AcceptNeverRead,
    /// Bound, but its backlog is never accepted.
    NeverAccept,
    /// Random bytes in answer to a TLS ClientHello.
    TlsGarbage,
}

impl Behaviour {
    /// Every behaviour but `Sane`, in matrix order.
    pub(crate) const HOSTILE: [Self; 14] = [
        Self::GarbageStatus,
        Self::OversizedChunk,
        Self::NegativeChunk,
        Self::NonHexChunk,
        Self::OverflowingChunk,
        Self::EndlessHeaders,
        Self::EndlessInterim,
        Self::Drip,
        Self::HugeBody,
        Self::CloseMidBody,
        Self::Reset,
        Self::AcceptNeverRead,
        Self::NeverAccept,
        Self::TlsGarbage,
    ];
}

/// The protocol the sane peer speaks.
#[derive(Clone)]
pub(crate) enum Protocol {
    /// Elasticsearch `_bulk`: `200` with `errors: false` and an item per
    /// document, kept alive.
    Bulk,
    /// InfluxDB `/write` (v1) and `/api/v2/write`: `204`.
    Influx,
    /// json_lines over plain TCP.
    Lines,
    /// json_lines over TLS with this server configuration.
    #[cfg(feature = "tls")]
    TlsLines(Arc<rustls::ServerConfig>),
}

/// A hostile exchange gives up after this long even if the client never
/// does, so a broken client ends the test instead of hanging it.
const HOSTILE_LIMIT: Duration = Duration::from_secs(30);

#[derive(Default)]
struct Shared {
    behaviour: Mutex<Option<Behaviour>>,
    stop: AtomicBool,
    /// `context.seq` of every line or document a sane peer received.
    seqs: Mutex<BTreeSet<u64>>,
    /// Every InfluxDB body a sane peer accepted.
    bodies: Mutex<Vec<String>>,
    /// Connections accepted.
    contacts: AtomicUsize,
}

impl Shared {
    fn now(&self) -> Behaviour {
        lock(&self.behaviour).unwrap_or(Behaviour::Sane)
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Waits while the peer is to accept and never read; the behaviour
    /// that follows.
    fn past_never_read(&self) -> Behaviour {
        loop {
            let b = self.now();
            if b != Behaviour::AcceptNeverRead || self.stopped() {
                return b;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A loopback peer; stops its threads (soon) when dropped.
pub(crate) struct Peer {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl Peer {
    pub(crate) fn start(protocol: Protocol, behaviour: Behaviour) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let shared = Arc::new(Shared::default());
        *lock(&shared.behaviour) = Some(behaviour);
        let s = Arc::clone(&shared);
        std::thread::spawn(move || accept_loop(&listener, &protocol, &s));
        Self { addr, shared }
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub(crate) fn set(&self, behaviour: Behaviour) {
        *lock(&self.shared.behaviour) = Some(behaviour);
    }

    /// The `seq` of every line a sane peer received.
    pub(crate) fn seqs(&self) -> BTreeSet<u64> {
        lock(&self.shared.seqs).clone()
    }

    /// The InfluxDB bodies a sane peer accepted.
    pub(crate) fn bodies(&self) -> Vec<String> {
        lock(&self.shared.bodies).clone()
    }

    /// Connections accepted so far.
    pub(crate) fn contacts(&self) -> usize {
        self.shared.contacts.load(Ordering::Relaxed)
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
    }
}

fn accept_loop(listener: &TcpListener, protocol: &Protocol, shared: &Arc<Shared>) {
    while !shared.stopped() {
        if shared.now() == Behaviour::NeverAccept {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        match listener.accept() {
            Ok((stream, _)) => {
                shared.contacts.fetch_add(1, Ordering::Relaxed);
                let (protocol, shared) = (protocol.clone(), Arc::clone(shared));
                std::thread::spawn(move || {
                    if stream.set_nonblocking(false).is_err() {
                        return;
                    }
                    // A client that stops reading must not hold a hostile
                    // writer forever.
                    let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
                    serve(stream, &protocol, &shared);
                });
            }
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

fn serve(stream: TcpStream, protocol: &Protocol, shared: &Shared) {
    match protocol {
        Protocol::Bulk => serve_http(stream, true, shared),
        Protocol::Influx => serve_http(stream, false, shared),
        Protocol::Lines => serve_lines(stream, shared),
        #[cfg(feature = "tls")]
        Protocol::TlsLines(config) => serve_tls(stream, config, shared),
    }
}

/// Closes `stream` once the client has sent something, leaving it unread:
/// Linux then sends a reset instead of a FIN.
fn reset(stream: TcpStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = stream.peek(&mut [0u8; 1]);
    drop(stream);
}

// ---------------------------------------------------------------- HTTP

/// Reads one request head and body; `None` once the client is gone.
fn read_request(reader: &mut impl BufRead) -> Option<Vec<u8>> {
    let mut length = 0;
    let mut first = true;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if line == "\r\n" && !first {
            break;
        }
        first = false;
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(body)
}

fn serve_http(stream: TcpStream, bulk: bool, shared: &Shared) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut w = stream;
    loop {
        let b = shared.past_never_read();
        if shared.stopped() {
            return;
        }
        if b == Behaviour::Reset && reader.buffer().is_empty() {
            drop(reader);
            reset(w);
            return;
        }
        let Some(body) = read_request(&mut reader) else {
            return;
        };
        match shared.now() {
            Behaviour::Sane if bulk => {
                if w.write_all(bulk_answer(&body, shared).as_bytes()).is_err() {
                    return;
                }
            }
            Behaviour::Sane => {
                lock(&shared.bodies).push(String::from_utf8_lossy(&body).into_owned());
                let _ = w.write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
                return;
            }
            b => {
                misbehave(&mut w, b, shared);
                return;
            }
        }
    }
}

/// The sane answer to a `_bulk` body; records the documents' `seq`.
fn bulk_answer(body: &[u8], shared: &Shared) -> String {
    let mut docs = 0;
    for line in String::from_utf8_lossy(body).lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let action = ["index", "create"]
            .iter()
            .any(|k| v.get(k).is_some() && v.as_object().is_some_and(|o| o.len() == 1));
        if action {
            continue;
        }
        docs += 1;
        if let Some(seq) = v["context"]["seq"].as_u64() {
            lock(&shared.seqs).insert(seq);
        }
    }
    let items = vec![r#"{"index":{"status":201}}"#; docs].join(",");
    let answer = format!(r#"{{"errors":false,"items":[{items}]}}"#);
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{answer}",
        answer.len()
    )
}

/// Writes `block` again and again until the client hangs up, the peer
/// stops, or [`HOSTILE_LIMIT`].
fn endless(w: &mut impl Write, block: &[u8], gap: Duration, shared: &Shared) {
    let start = Instant::now();
    while !shared.stopped() && start.elapsed() < HOSTILE_LIMIT {
        if w.write_all(block).is_err() || w.flush().is_err() {
            return;
        }
        if !gap.is_zero() {
            std::thread::sleep(gap);
        }
    }
}

/// Bytes that are nothing in particular (xorshift).
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Answers an HTTP request as `b` says, until done or the client hangs up.
fn misbehave(w: &mut TcpStream, b: Behaviour, shared: &Shared) {
    const CHUNKED: &[u8] =
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
    let filler = vec![b' '; 64 * 1024];
    let none = Duration::ZERO;
    let _ = match b {
        Behaviour::Sane
        | Behaviour::Reset
        | Behaviour::AcceptNeverRead
        | Behaviour::NeverAccept => Ok(()),
        Behaviour::GarbageStatus => w.write_all(b"SSH-2.0-x\r\n"),
        Behaviour::OversizedChunk => w
            .write_all(CHUNKED)
            .and_then(|()| w.write_all(b"8000000\r\n"))
            .map(|()| endless(w, &filler, none, shared)),
        Behaviour::NegativeChunk => w
            .write_all(CHUNKED)
            .and_then(|()| w.write_all(b"-5\r\nhello\r\n0\r\n\r\n")),
        Behaviour::NonHexChunk => w
            .write_all(CHUNKED)
            .and_then(|()| w.write_all(b"zz\r\nhello\r\n0\r\n\r\n")),
        Behaviour::OverflowingChunk => w
            .write_all(CHUNKED)
            .and_then(|()| w.write_all(b"2\r\n{}\r\nffffffffffffffff\r\n"))
            .map(|()| endless(w, &filler, none, shared)),
        Behaviour::EndlessHeaders => w.write_all(b"HTTP/1.1 200 OK\r\n").map(|()| {
            endless(w, "X-Flood: 1\r\n".repeat(1000).as_bytes(), none, shared);
        }),
        Behaviour::EndlessInterim => {
            endless(
                w,
                "HTTP/1.1 100 Continue\r\n\r\n".repeat(100).as_bytes(),
                none,
                shared,
            );
            Ok(())
        }
        Behaviour::Drip => {
            let head = b"HTTP/1.1 200 OK\r\n".iter();
            let start = Instant::now();
            for &byte in head.chain(b"X-Drip: 1\r\n".iter().cycle()) {
                if shared.stopped()
                    || start.elapsed() > HOSTILE_LIMIT
                    || w.write_all(&[byte]).is_err()
                {
                    break;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            Ok(())
        }
        Behaviour::HugeBody => w
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n")
            .map(|()| endless(w, &filler, none, shared)),
        Behaviour::CloseMidBody => {
            w.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n{\"errors\":")
        }
        Behaviour::TlsGarbage => w.write_all(&noise(4096, 0x5eed)),
    };
    let _ = w.flush();
}

// ---------------------------------------------------------- json_lines

/// Takes the complete lines out of `pending` and records their `seq`.
fn record_lines(pending: &mut Vec<u8>, shared: &Shared) {
    let Some(end) = pending.iter().rposition(|&b| b == b'\n') else {
        return;
    };
    let complete: Vec<u8> = pending.drain(..=end).collect();
    let mut seqs = lock(&shared.seqs);
    for line in complete.split(|&b| b == b'\n') {
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(line) {
            if let Some(seq) = v["context"]["seq"].as_u64() {
                seqs.insert(seq);
            }
        }
    }
}

/// Reads json_lines from `r` (whose reads time out every 100 ms) as the
/// current behaviour says, until the client hangs up or the peer stops.
fn read_lines(r: &mut impl Read, shared: &Shared) {
    let mut pending = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    while !shared.stopped() {
        match shared.now() {
            Behaviour::AcceptNeverRead => {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            Behaviour::Drip => {
                // The dripped bytes are lost: the first line after them is
                // a fragment, which does not parse and is not recorded.
                pending.clear();
                match r.read(&mut buf[..1]) {
                    Ok(0) => return,
                    Ok(_) => std::thread::sleep(Duration::from_millis(200)),
                    Err(e) if is_timeout(&e) => {}
                    Err(_) => return,
                }
                continue;
            }
            _ => {}
        }
        match r.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                pending.extend_from_slice(&buf[..n]);
                record_lines(&mut pending, shared);
            }
            Err(e) if is_timeout(&e) => {}
            Err(_) => return,
        }
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// The misbehaviours that end a json_lines connection at once; whether
/// the connection is done.
fn hang_up(stream: &mut TcpStream, b: Behaviour) -> bool {
    match b {
        Behaviour::Reset => {
            if let Ok(s) = stream.try_clone() {
                reset(s);
            }
            true
        }
        Behaviour::GarbageStatus => {
            let _ = stream.write_all(b"SSH-2.0-x\r\n");
            true
        }
        Behaviour::TlsGarbage => {
            let _ = stream.read(&mut [0u8; 512]);
            let _ = stream.write_all(&noise(4096, 0x7157));
            true
        }
        Behaviour::CloseMidBody => {
            let _ = stream.read(&mut [0u8; 512]);
            true
        }
        _ => false,
    }
}

fn serve_lines(mut stream: TcpStream, shared: &Shared) {
    let b = shared.past_never_read();
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if hang_up(&mut stream, b) {
        return;
    }
    let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
    read_lines(&mut stream, shared);
}

#[cfg(feature = "tls")]
fn serve_tls(mut stream: TcpStream, config: &Arc<rustls::ServerConfig>, shared: &Shared) {
    let b = shared.past_never_read();
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if hang_up(&mut stream, b) {
        return;
    }
    if b == Behaviour::Drip {
        // The handshake, a byte every 200 ms; the bytes are lost, so the
        // connection is closed once the peer turns sane.
        let start = Instant::now();
        let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
        while shared.now() == Behaviour::Drip
            && !shared.stopped()
            && start.elapsed() < HOSTILE_LIMIT
        {
            match stream.read(&mut [0u8; 1]) {
                Ok(0) => return,
                Ok(_) => std::thread::sleep(Duration::from_millis(200)),
                Err(e) if is_timeout(&e) => {}
                Err(_) => return,
            }
        }
        return;
    }
    let Ok(conn) = rustls::ServerConnection::new(Arc::clone(config)) else {
        return;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
    let mut tls = rustls::StreamOwned::new(conn, stream);
    read_lines(&mut tls, shared);
}
