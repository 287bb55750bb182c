//! A tiny blocking HTTP listener serving the Prometheus exposition on
//! `GET /metrics`, with no async runtime: scrapes are rare and small, and
//! the exporter's own listener would bring hyper and tokio for the same
//! job. Each connection gets its own short-lived thread, capped in number
//! and in time, so one slow or stuck client cannot hold up a scrape.
//!
//! Opt-in, the same listener takes `POST /config`: new log volume settings
//! as `KEY=VALUE` lines, under the same caps and deadlines, behind a
//! bearer token when one is configured. What the body means is the
//! builder's business: the listener only hands it on.

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::base::Background;
use crate::base::clock;
use crate::base::supervise::{self, Supervised};
use crate::recorder::{MetricsHandle, TEXT_CONTENT_TYPE};

/// `127.0.0.1:9000`: loopback only unless told otherwise, on the
/// exporter's customary port.
pub const DEFAULT_LISTEN_ADDR: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 9000));

/// Time for a client to send its whole request head. A deadline for the
/// whole head, not per read: a client dribbling a byte at a time would
/// otherwise keep its connection (and a slot) for as long as it likes.
/// Scrapers send the head in one packet, so this is generous.
const REQUEST_DEADLINE: Duration = Duration::from_secs(3);
/// Time to write the answer. Prometheus' own scrape timeout defaults to
/// 10 s, so a reader slower than this has given up anyway.
const RESPONSE_DEADLINE: Duration = Duration::from_secs(10);
/// Longest request head read.
const MAX_REQUEST: usize = 8 * 1024;
/// Longest `POST /config` body: a settings file is a few lines.
const MAX_BODY: usize = 8 * 1024;
/// Connections served at once. A few concurrent scrapers (an HA pair, a
/// curl) fit; beyond that a flood gets 503 rather than a thread each, and
/// connections that have not sent their request give their slot to a
/// newcomer.
const MAX_CONNECTIONS: usize = 8;
/// The answer when every place is taken, and when to try again.
const BUSY: &str = "503 Service Unavailable";
const RETRY_AFTER: (&str, &str) = ("Retry-After", "1");
/// How long [`MetricsListener::stop`] and dropping wait for requests in
/// progress. A normal request takes milliseconds; a slow client is left to
/// its deadline on its own thread rather than holding up shutdown.
const STOP_GRACE: Duration = Duration::from_secs(1);

/// Renders the exposition for a request's `Accept` header value: its
/// `Content-Type` and body.
type Render = Arc<dyn Fn(&str) -> (&'static str, String) + Send + Sync>;

/// Applies a `POST /config` body: the answer's text, or why nothing was
/// applied.
pub(crate) type Reconfigure = Arc<dyn Fn(&str) -> Result<String, String> + Send + Sync>;

/// `POST /config`: what applies its body, and the bearer token it needs,
/// if any. Off unless given to the listener.
#[derive(Clone)]
pub(crate) struct ConfigEndpoint {
    apply: Reconfigure,
    token: Option<String>,
}

impl ConfigEndpoint {
    pub(crate) fn new(apply: Reconfigure, token: Option<String>) -> Self {
        Self { apply, token }
    }
}

impl fmt::Debug for ConfigEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigEndpoint")
            .field("token", &self.token.as_ref().map(|_| "***"))
            .finish_non_exhaustive()
    }
}

/// Serves `render()` on `GET /metrics` (and `HEAD`) until stopped.
///
/// Each connection is served on its own thread, at most a handful at once
/// (more are answered `503 Service Unavailable`), and must send its
/// request within a few seconds, so a slow or stuck client delays no one
/// else. A connection that has sent nothing yet gives its place to a new
/// one when all are taken, so idle connections cannot starve a scrape.
///
/// [`ObserveBuilder::metrics_listener`](crate::ObserveBuilder::metrics_listener)
/// starts one for the Prometheus recorder; use it directly to serve any
/// exposition:
///
/// ```
/// use std::io::{Read, Write};
/// use observe_runtime::metrics::MetricsListener;
///
/// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
/// let server = MetricsListener::serve(listener, || "up 1\n".to_owned())?;
/// let mut client = std::net::TcpStream::connect(server.local_addr())?;
/// client.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")?;
/// let mut response = String::new();
/// client.read_to_string(&mut response)?;
/// assert!(response.starts_with("HTTP/1.1 200 OK\r\n"));
/// assert!(response.ends_with("\r\n\r\nup 1\n"));
/// server.stop();
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct MetricsListener {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<Supervised>,
    active: Arc<Active>,
}

impl fmt::Debug for MetricsListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricsListener")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl MetricsListener {
    /// Binds `addr` and serves `render()`.
    ///
    /// # Errors
    ///
    /// The bind error, e.g. `AddrInUse`, or failing to spawn the thread.
    pub fn bind(
        addr: SocketAddr,
        render: impl Fn() -> String + Send + Sync + 'static,
    ) -> io::Result<Self> {
        Self::serve(TcpListener::bind(addr)?, render)
    }

    /// Serves `render()` on an already bound listener (e.g. bound to port 0
    /// to let the system choose).
    ///
    /// # Errors
    ///
    /// Reading the listener's address or spawning the thread failed.
    pub fn serve(
        listener: TcpListener,
        render: impl Fn() -> String + Send + Sync + 'static,
    ) -> io::Result<Self> {
        Self::start(
            listener,
            Arc::new(move |_| (TEXT_CONTENT_TYPE, render())),
            None,
        )
    }

    /// Serves everything `handle` holds on an already bound listener: the
    /// Prometheus text format, or OpenMetrics with exemplars to a scraper
    /// whose `Accept` header lists `application/openmetrics-text` (as
    /// Prometheus' does).
    ///
    /// # Errors
    ///
    /// Reading the listener's address or spawning the thread failed.
    pub fn serve_metrics(listener: TcpListener, handle: MetricsHandle) -> io::Result<Self> {
        Self::serve_metrics_with(listener, handle, None)
    }

    /// As [`serve_metrics`](Self::serve_metrics), also taking `POST
    /// /config` when `config` is given.
    pub(crate) fn serve_metrics_with(
        listener: TcpListener,
        handle: MetricsHandle,
        config: Option<ConfigEndpoint>,
    ) -> io::Result<Self> {
        Self::start(
            listener,
            Arc::new(move |accept| handle.render_for_accept(accept)),
            config.map(Arc::new),
        )
    }

    fn start(
        listener: TcpListener,
        render: Render,
        config: Option<Arc<ConfigEndpoint>>,
    ) -> io::Result<Self> {
        let addr = listener.local_addr()?;
        listener.set_nonblocking(false)?;
        let stop = Arc::new(AtomicBool::new(false));
        let active = Arc::new(Active::default());
        let (flag, slots) = (Arc::clone(&stop), Arc::clone(&active));
        let thread = supervise::spawn(
            "observe-metrics-listener".into(),
            COMPONENT.into(),
            move |restarts| {
                if restarts > 0 {
                    std::thread::sleep(supervise::restart_delay(restarts));
                }
                accept_loop(&listener, &flag, &slots, &render, config.as_ref());
            },
        )?;
        Ok(Self {
            addr,
            stop,
            thread: Some(thread),
            active,
        })
    }

    /// The address it listens on.
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting and waits briefly (about a second at most) for the
    /// requests in progress.
    pub fn stop(mut self) {
        self.shut_down(STOP_GRACE);
    }

    fn shut_down(&mut self, grace: Duration) {
        self.stop.store(true, Ordering::SeqCst);
        let Some(thread) = self.thread.take() else {
            return;
        };
        // Wake the blocking accept with a connection of our own.
        let mut wake = self.addr;
        if wake.ip().is_unspecified() {
            wake.set_ip(match wake {
                SocketAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        if TcpStream::connect_timeout(&wake, Duration::from_secs(1)).is_ok() {
            let _ = thread.join_until(Some(clock::deadline_after(grace)));
        }
        // Otherwise the thread exits at its next connection; never hang.
        self.active.wait_idle(grace);
    }
}

impl Drop for MetricsListener {
    fn drop(&mut self) {
        self.shut_down(STOP_GRACE);
    }
}

impl Background for MetricsListener {
    fn stop(mut self: Box<Self>, timeout: Duration) {
        self.shut_down(timeout);
    }
}

/// Connections open, so that the accept loop can cap them and shutdown can
/// wait for them.
#[derive(Default)]
struct Active {
    state: Mutex<Slots>,
    idle: Condvar,
}

#[derive(Default)]
struct Slots {
    next_id: u64,
    /// Connections whose request head has not arrived yet, oldest first
    /// (at most [`MAX_WAITING`]).
    waiting: VecDeque<Waiting>,
    /// Connections past their request head, being answered (at most
    /// [`MAX_CONNECTIONS`]).
    serving: usize,
}

/// A connection still waiting for its request head.
struct Waiting {
    id: u64,
    accepted: Instant,
    /// A handle to look at it and shut it down.
    stream: TcpStream,
}

/// A connection is accepted before its client's first bytes arrive: a
/// silent one is given this long before it counts as idle.
const FRESH: Duration = Duration::from_millis(50);

/// A connection this long without its whole request head is no scraper:
/// scrapers send it in one packet right after connecting.
const SLOW_HEAD: Duration = Duration::from_millis(250);

/// Connections that may wait for their request head at once. Waiting
/// costs a parked thread and a socket, not a render, so this is well above
/// [`MAX_CONNECTIONS`]: a few dozen clients that connect and stall leave
/// room for a scrape without anyone being cut off.
const MAX_WAITING: usize = 32;

impl Waiting {
    /// Whether a newcomer may take this connection's place: it has sent
    /// nothing since [`FRESH`], or not its whole request within
    /// [`SLOW_HEAD`]. A scrape just accepted, whose request is on its way
    /// or already in the socket but not yet read by its thread, is
    /// neither.
    fn evictable(&self) -> bool {
        let age = self.accepted.elapsed();
        age >= SLOW_HEAD || (age >= FRESH && self.silent())
    }

    /// Nothing has arrived on the connection yet.
    fn silent(&self) -> bool {
        // The accept thread must never wait on a client. Non-blocking is
        // one flag of a socket shared with the connection's thread, which
        // clears it as it starts: the short timeout bounds a peek that
        // raced that.
        if self
            .stream
            .set_read_timeout(Some(Duration::from_millis(1)))
            .is_err()
            || self.stream.set_nonblocking(true).is_err()
        {
            return false;
        }
        let mut byte = [0u8; 1];
        let silent = matches!(
            self.stream.peek(&mut byte),
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
        );
        // The connection's thread reads with timeouts, which need a
        // blocking socket, and sets its own before each read; a read that
        // raced this sees `WouldBlock` or a timeout and retries.
        let _ = self.stream.set_nonblocking(false);
        silent
    }
}

impl Active {
    fn lock(&self) -> std::sync::MutexGuard<'_, Slots> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A place for `stream` among the connections waiting for their
    /// request, or `None` (503) if there is none.
    ///
    /// When [`MAX_WAITING`] connections wait already, the oldest that has
    /// sent nothing, or not its whole request within [`SLOW_HEAD`], is
    /// shut down and its place goes to the newcomer: clients that connect
    /// and stall cannot starve scrapes, which send their request at once.
    fn admit(self: &Arc<Self>, stream: &TcpStream) -> Option<Slot> {
        let handle = stream.try_clone().ok()?;
        let mut st = self.lock();
        if st.waiting.len() >= MAX_WAITING {
            let at = st.waiting.iter().position(Waiting::evictable)?;
            let evicted = st.waiting.remove(at)?;
            // Its thread ends at once (its read returns).
            let _ = evicted.stream.shutdown(Shutdown::Both);
        }
        st.next_id += 1;
        let id = st.next_id;
        st.waiting.push_back(Waiting {
            id,
            accepted: Instant::now(),
            stream: handle,
        });
        Some(Slot {
            active: Arc::clone(self),
            id,
            serving: false,
        })
    }

    fn wait_idle(&self, grace: Duration) {
        let st = self.lock();
        let _ = self
            .idle
            .wait_timeout_while(st, grace, |st| !st.waiting.is_empty() || st.serving > 0)
            .unwrap_or_else(PoisonError::into_inner);
    }
}

/// One connection's place, waiting or serving, given back on drop, so
/// also when `render` panics on the connection's thread.
struct Slot {
    active: Arc<Active>,
    id: u64,
    /// Past its request head, holding one of [`MAX_CONNECTIONS`].
    serving: bool,
}

impl Slot {
    /// The request head arrived: the connection stops waiting and takes
    /// one of the [`MAX_CONNECTIONS`] places that render, if one is free
    /// (`false`: answer 503).
    fn head_received(&mut self) -> bool {
        let mut st = self.active.lock();
        st.waiting.retain(|w| w.id != self.id);
        if st.serving >= MAX_CONNECTIONS {
            return false;
        }
        st.serving += 1;
        self.serving = true;
        true
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut st = self.active.lock();
        st.waiting.retain(|w| w.id != self.id);
        if self.serving {
            st.serving = st.serving.saturating_sub(1);
        }
        if st.waiting.is_empty() && st.serving == 0 {
            self.active.idle.notify_all();
        }
    }
}

/// The component name in `observe_component_restarts_total`.
const COMPONENT: &str = "metrics listener";

fn accept_loop(
    listener: &TcpListener,
    stop: &AtomicBool,
    active: &Arc<Active>,
    render: &Render,
    config: Option<&Arc<ConfigEndpoint>>,
) {
    static PANICS: AtomicU32 = AtomicU32::new(0);
    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        match conn {
            Ok(stream) => match active.admit(&stream) {
                Some(mut slot) => {
                    let render = Arc::clone(render);
                    let config = config.cloned();
                    // If the thread cannot be spawned the closure is dropped,
                    // closing the connection and freeing the slot.
                    let _ = std::thread::Builder::new()
                        .name("observe-metrics-conn".into())
                        .spawn(move || {
                            // A panicking `render` costs its own request
                            // (the client sees the connection close), and
                            // is counted like a component's restart.
                            let served = panic::catch_unwind(AssertUnwindSafe(|| {
                                handle(stream, &mut slot, &render, config.as_deref())
                            }));
                            if let Err(payload) = served {
                                let n = PANICS.fetch_add(1, Ordering::Relaxed) + 1;
                                supervise::report(COMPONENT, n, payload.as_ref());
                            }
                        });
                }
                None => refuse_busy(&stream),
            },
            // E.g. out of file descriptors: wait rather than spin.
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// Answers 503 on the accept thread, which must never wait on a client.
fn refuse_busy(stream: &TcpStream) {
    // A short head fits in any fresh socket's send buffer, so a
    // non-blocking write goes through at once; if it doesn't, the client
    // just sees the connection close.
    if stream.set_nonblocking(true).is_err() {
        return;
    }
    let head = response_head(BUSY, &[RETRY_AFTER], 0);
    let mut out = stream;
    let _ = out.write_all(head.as_bytes());
    let _ = stream.shutdown(Shutdown::Write);
    // Closing with unread request bytes sends a reset, which can destroy
    // the 503 before the client reads it; read what has already arrived.
    let mut sink = [0u8; 1024];
    let mut input = stream;
    for _ in 0..MAX_REQUEST / sink.len() {
        match input.read(&mut sink) {
            Ok(n) if n > 0 => {}
            _ => break,
        }
    }
}

fn handle(
    mut stream: TcpStream,
    slot: &mut Slot,
    render: &Render,
    config: Option<&ConfigEndpoint>,
) -> io::Result<()> {
    // Accepted sockets inherit non-blocking mode on some systems; the
    // timeouts below only work on a blocking one.
    stream.set_nonblocking(false)?;
    let request_deadline = clock::deadline_after(REQUEST_DEADLINE);
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let mut scanned = 0;
    loop {
        if buf.len() > MAX_REQUEST {
            return respond(
                &mut stream,
                "431 Request Header Fields Too Large",
                &[],
                "",
                true,
            );
        }
        let Some(left) = remaining(request_deadline) else {
            return respond(&mut stream, "408 Request Timeout", &[], "", true);
        };
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut chunk) {
            Ok(0) => return Ok(()),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            // A timed-out read is caught by the deadline check above.
            Err(e) if is_retryable(&e) => continue,
            Err(e) => return Err(e),
        }
        // Rescan only the new bytes (and the three before, for a `\r\n\r\n`
        // split across reads): a dribbling client must not cost quadratic time.
        if buf[scanned..].windows(4).any(|w| w == b"\r\n\r\n") {
            if !slot.head_received() {
                return respond(&mut stream, BUSY, &[RETRY_AFTER], "", true);
            }
            break;
        }
        scanned = buf.len().saturating_sub(3);
    }
    // Bytes past the head are the start of a body.
    let head_end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(buf.len());
    let head = String::from_utf8_lossy(&buf[..head_end]);
    let mut lines = head.lines();
    let mut parts = lines.next().unwrap_or("").split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let headers: Vec<(&str, &str)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(name, value)| (name.trim(), value.trim()))
        .collect();
    let accept = header(&headers, "accept").unwrap_or("");
    match (method, path, config) {
        ("POST", "/config", Some(config)) => {
            let started = buf.get(head_end + 4..).unwrap_or_default();
            configure(&mut stream, config, &headers, started, request_deadline)
        }
        (_, "/config", Some(_)) => respond(
            &mut stream,
            "405 Method Not Allowed",
            &[("Allow", "POST")],
            "",
            true,
        ),
        _ => route_metrics(&mut stream, method, path, accept, render),
    }
}

/// `GET /metrics`, and what is not found.
fn route_metrics(
    stream: &mut TcpStream,
    method: &str,
    path: &str,
    accept: &str,
    render: &Render,
) -> io::Result<()> {
    match (method, path) {
        ("GET" | "HEAD", "/metrics") => {
            let (content_type, body) = render(accept);
            respond(
                stream,
                "200 OK",
                &[("Content-Type", content_type)],
                &body,
                method == "GET",
            )
        }
        (_, "/metrics") => respond(
            stream,
            "405 Method Not Allowed",
            &[("Allow", "GET, HEAD")],
            "",
            true,
        ),
        _ => respond(
            stream,
            "404 Not Found",
            &[],
            "metrics are at /metrics\n",
            true,
        ),
    }
}

/// The value of the first header named `wanted`.
fn header<'a>(headers: &[(&str, &'a str)], wanted: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(wanted))
        .map(|(_, value)| *value)
}

/// The plain-text answers of `POST /config`.
const TEXT: (&str, &str) = ("Content-Type", "text/plain; charset=utf-8");

/// `POST /config`: checks the length and the token before reading the
/// body (within the request's deadline), then hands it on.
fn configure(
    stream: &mut TcpStream,
    config: &ConfigEndpoint,
    headers: &[(&str, &str)],
    started: &[u8],
    deadline: Instant,
) -> io::Result<()> {
    let header = |name| header(headers, name);
    let length = match (header("content-length"), header("transfer-encoding")) {
        (Some(n), None) => n.parse::<usize>().ok(),
        _ => None,
    };
    let Some(length) = length else {
        respond(
            stream,
            "411 Length Required",
            &[TEXT],
            "a body with a Content-Length is required\n",
            true,
        )?;
        return drain(stream, deadline);
    };
    if length > MAX_BODY {
        respond(
            stream,
            "413 Content Too Large",
            &[TEXT],
            &format!("the body may have at most {MAX_BODY} bytes\n"),
            true,
        )?;
        return drain(stream, deadline);
    }
    if let Some(token) = &config.token {
        let given = header("authorization")
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map_or("", |(_, t)| t.trim());
        if !same_token(given.as_bytes(), token.as_bytes()) {
            respond(
                stream,
                "401 Unauthorized",
                &[("WWW-Authenticate", "Bearer"), TEXT],
                "a valid bearer token is required\n",
                true,
            )?;
            return drain(stream, deadline);
        }
    }
    let mut body = started.get(..length).unwrap_or(started).to_vec();
    if body.len() < length
        && header("expect").is_some_and(|e| e.eq_ignore_ascii_case("100-continue"))
    {
        write_all_by(stream, b"HTTP/1.1 100 Continue\r\n\r\n", deadline)?;
    }
    let mut chunk = [0u8; 1024];
    while body.len() < length {
        let Some(left) = remaining(deadline) else {
            return respond(stream, "408 Request Timeout", &[], "", true);
        };
        stream.set_read_timeout(Some(left))?;
        let want = (length - body.len()).min(chunk.len());
        match stream.read(&mut chunk[..want]) {
            // The client gave up before its body was complete.
            Ok(0) => return Ok(()),
            Ok(n) => body.extend_from_slice(&chunk[..n]),
            Err(e) if is_retryable(&e) => {}
            Err(e) => return Err(e),
        }
    }
    let Ok(text) = std::str::from_utf8(&body) else {
        return respond(
            stream,
            "400 Bad Request",
            &[TEXT],
            "the body is not UTF-8 text\n",
            true,
        );
    };
    match (config.apply)(text) {
        Ok(answer) => respond(stream, "200 OK", &[TEXT], &answer, true),
        Err(why) => respond(
            stream,
            "400 Bad Request",
            &[TEXT],
            &format!("{why}\n"),
            true,
        ),
    }
}

/// Whether `given` is `expected`, in a time that depends on the length of
/// `expected` only: how much of a guess matched must not show in how long
/// the answer took.
fn same_token(given: &[u8], expected: &[u8]) -> bool {
    let mut diff = u8::from(given.len() != expected.len());
    for (i, e) in expected.iter().enumerate() {
        diff |= e ^ given.get(i).copied().unwrap_or(0);
    }
    std::hint::black_box(diff) == 0
}

/// Reads what the client still sends after an answer that did not read
/// its body, until it closes or the deadline: closing with unread bytes
/// resets the connection, which can destroy the answer before it is read.
fn drain(stream: &mut TcpStream, deadline: Instant) -> io::Result<()> {
    stream.shutdown(Shutdown::Write)?;
    let mut sink = [0u8; 1024];
    for _ in 0..(MAX_REQUEST + MAX_BODY) / sink.len() {
        let Some(left) = remaining(deadline) else {
            break;
        };
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut sink) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if is_retryable(&e) => {}
            Err(_) => break,
        }
    }
    Ok(())
}

/// Time left before `deadline`, or `None` once it has passed (a zero
/// timeout is an error for the socket calls).
fn remaining(deadline: Instant) -> Option<Duration> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|left| !left.is_zero())
}

fn is_retryable(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

fn response_head(status: &str, headers: &[(&str, &str)], body_len: usize) -> String {
    let mut head =
        format!("HTTP/1.1 {status}\r\nContent-Length: {body_len}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(k);
        head.push_str(": ");
        head.push_str(v);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    head
}

fn respond(
    stream: &mut TcpStream,
    status: &str,
    headers: &[(&str, &str)],
    body: &str,
    send_body: bool,
) -> io::Result<()> {
    let deadline = clock::deadline_after(RESPONSE_DEADLINE);
    let head = response_head(status, headers, body.len());
    write_all_by(stream, head.as_bytes(), deadline)?;
    if send_body {
        write_all_by(stream, body.as_bytes(), deadline)?;
    }
    stream.flush()
}

/// `write_all` against one deadline for the whole answer, not per write,
/// so a client reading a byte at a time cannot keep its thread forever.
fn write_all_by(stream: &mut TcpStream, mut bytes: &[u8], deadline: Instant) -> io::Result<()> {
    while !bytes.is_empty() {
        let left = remaining(deadline).ok_or(io::ErrorKind::TimedOut)?;
        stream.set_write_timeout(Some(left))?;
        match stream.write(bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = bytes.get(n..).unwrap_or_default(),
            Err(e) if is_retryable(&e) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::wait::wait_for;

    fn request(addr: SocketAddr, raw: &str) -> String {
        let mut c = TcpStream::connect(addr).expect("connect");
        c.write_all(raw.as_bytes()).expect("write");
        let mut out = String::new();
        c.read_to_string(&mut out).expect("read");
        out
    }

    #[test]
    fn serves_metrics_and_refuses_the_rest() {
        let l = MetricsListener::bind("127.0.0.1:0".parse().expect("addr"), || "a 1\n".into())
            .expect("bind");
        let a = l.local_addr();
        let ok = request(a, "GET /metrics?x=1 HTTP/1.1\r\n\r\n");
        assert!(ok.starts_with("HTTP/1.1 200 OK"), "{ok}");
        assert!(ok.contains("Content-Length: 4\r\n"), "{ok}");
        assert!(ok.ends_with("a 1\n"), "{ok}");
        let head = request(a, "HEAD /metrics HTTP/1.1\r\n\r\n");
        assert!(
            head.starts_with("HTTP/1.1 200 OK") && head.ends_with("\r\n\r\n"),
            "{head}"
        );
        assert!(request(a, "POST /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405"));
        assert!(request(a, "GET / HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
        assert!(request(a, "garbage\r\n\r\n").starts_with("HTTP/1.1 404"));
        l.stop();
        // A late accept thread lets go of the socket once it runs. Polled
        // by binding, not connecting: a connection would wake it itself.
        wait_for("the listening socket to close", || {
            TcpListener::bind(a).is_ok()
        });
        assert!(
            TcpStream::connect(a).is_err(),
            "stopped listeners free the port"
        );
    }

    #[test]
    fn connections_that_send_nothing_cannot_starve_a_scrape() {
        let l = MetricsListener::bind("127.0.0.1:0".parse().expect("addr"), || "a 1\n".into())
            .expect("bind");
        let a = l.local_addr();
        // More than may wait at once: the oldest give way.
        let idle: Vec<TcpStream> = (0..MAX_WAITING + 8)
            .map(|_| TcpStream::connect(a).expect("connect"))
            .collect();
        // The accept thread may be late on a loaded machine: the places
        // are all taken before the wait that makes their holders idle.
        wait_for("every place taken", || {
            l.active.lock().waiting.len() == MAX_WAITING
        });
        std::thread::sleep(FRESH * 2);
        let ok = request(a, "GET /metrics HTTP/1.1\r\n\r\n");
        assert!(ok.starts_with("HTTP/1.1 200 OK"), "{ok}");
        drop(idle);
        l.stop();
    }

    #[test]
    fn openmetrics_is_served_to_a_scraper_that_accepts_it() {
        let prometheus = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let native = Arc::new(crate::recorder::NativeMetrics::new(&[0.1], Vec::new()));
        let handle = MetricsHandle::new(prometheus.handle(), native);
        let l =
            MetricsListener::serve_metrics(TcpListener::bind("127.0.0.1:0").expect("bind"), handle)
                .expect("serve");
        let a = l.local_addr();
        let om = request(
            a,
            "GET /metrics HTTP/1.1\r\nAccept: application/openmetrics-text;version=1.0.0,\
             text/plain;version=0.0.4;q=0.5\r\n\r\n",
        );
        assert!(
            om.contains("Content-Type: application/openmetrics-text; version=1.0.0"),
            "{om}"
        );
        assert!(om.ends_with("# EOF\n"), "{om}");
        let text = request(a, "GET /metrics HTTP/1.1\r\naccept: text/plain\r\n\r\n");
        assert!(
            text.contains("Content-Type: text/plain; version=0.0.4"),
            "{text}"
        );
        assert!(!text.contains("# EOF"), "{text}");
        l.stop();
    }

    #[test]
    fn requests_beyond_the_cap_get_503_without_waiting() {
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let held = Arc::clone(&gate);
        let l = MetricsListener::bind("127.0.0.1:0".parse().expect("addr"), move || {
            let (open, cond) = &*held;
            let open = open.lock().unwrap_or_else(PoisonError::into_inner);
            let _open = cond
                .wait_timeout_while(open, Duration::from_secs(20), |open| !*open)
                .unwrap_or_else(PoisonError::into_inner);
            "a 1\n".into()
        })
        .expect("bind");
        let a = l.local_addr();
        let serving: Vec<_> = (0..MAX_CONNECTIONS)
            .map(|_| std::thread::spawn(move || request(a, "GET /metrics HTTP/1.1\r\n\r\n")))
            .collect();
        // Every slot is serving a request once its head has arrived.
        wait_for("every slot serving", || {
            l.active.lock().serving == MAX_CONNECTIONS
        });
        let busy = request(a, "GET /metrics HTTP/1.1\r\n\r\n");
        assert!(busy.starts_with("HTTP/1.1 503 "), "{busy}");
        assert!(busy.contains("Retry-After: 1\r\n"), "{busy}");
        *gate.0.lock().unwrap_or_else(PoisonError::into_inner) = true;
        gate.1.notify_all();
        for s in serving {
            let ok = s.join().expect("client");
            assert!(ok.starts_with("HTTP/1.1 200 OK"), "{ok}");
        }
        l.stop();
    }

    #[test]
    fn a_panicking_render_costs_its_request_only() {
        let calls = Arc::new(AtomicU32::new(0));
        let seen = Arc::clone(&calls);
        let l = MetricsListener::bind("127.0.0.1:0".parse().expect("addr"), move || {
            if seen.fetch_add(1, Ordering::SeqCst) == 0 {
                panic!("render failed");
            }
            "a 1\n".into()
        })
        .expect("bind");
        let a = l.local_addr();
        let mut c = TcpStream::connect(a).expect("connect");
        c.write_all(b"GET /metrics HTTP/1.1\r\n\r\n")
            .expect("write");
        let mut lost = Vec::new();
        let _ = c.read_to_end(&mut lost);
        assert!(lost.is_empty(), "{}", String::from_utf8_lossy(&lost));
        let ok = request(a, "GET /metrics HTTP/1.1\r\n\r\n");
        assert!(ok.starts_with("HTTP/1.1 200 OK"), "{ok}");
        l.stop();
    }

    /// A listener with `POST /config` whose hook records what it applied
    /// and refuses bodies that do not start with `OBSERVE_`.
    fn with_config(token: Option<&str>) -> (MetricsListener, Arc<Mutex<Vec<String>>>) {
        let applied = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&applied);
        let apply: Reconfigure = Arc::new(move |body: &str| {
            if !body.starts_with("OBSERVE_") {
                return Err("line 1: cannot read it".to_owned());
            }
            seen.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(body.to_owned());
            Ok("x: sample 0\n".to_owned())
        });
        let l = MetricsListener::start(
            TcpListener::bind("127.0.0.1:0").expect("bind"),
            Arc::new(|_| (TEXT_CONTENT_TYPE, "a 1\n".to_owned())),
            Some(Arc::new(ConfigEndpoint::new(
                apply,
                token.map(str::to_owned),
            ))),
        )
        .expect("serve");
        (l, applied)
    }

    fn post(addr: SocketAddr, headers: &str, body: &str) -> String {
        request(
            addr,
            &format!(
                "POST /config HTTP/1.1\r\nContent-Length: {}\r\n{headers}\r\n{body}",
                body.len()
            ),
        )
    }

    #[test]
    fn config_needs_the_token_when_one_is_set() {
        let (l, applied) = with_config(Some("s3cret"));
        let a = l.local_addr();
        let body = "OBSERVE_SAMPLE=x=0\n";
        let ok = post(a, "Authorization: Bearer s3cret\r\n", body);
        assert!(ok.starts_with("HTTP/1.1 200 OK"), "{ok}");
        assert!(ok.ends_with("\r\n\r\nx: sample 0\n"), "{ok}");
        let scheme = post(a, "authorization: bearer s3cret\r\n", body);
        assert!(scheme.starts_with("HTTP/1.1 200 OK"), "{scheme}");
        for headers in [
            "",
            "Authorization: Bearer s3cre\r\n",
            "Authorization: Bearer s3cret2\r\n",
            "Authorization: Basic s3cret\r\n",
            "Authorization: s3cret\r\n",
        ] {
            let refused = post(a, headers, body);
            assert!(refused.starts_with("HTTP/1.1 401 "), "{headers}: {refused}");
            assert!(
                refused.contains("WWW-Authenticate: Bearer\r\n"),
                "{refused}"
            );
        }
        assert_eq!(
            applied.lock().unwrap_or_else(PoisonError::into_inner).len(),
            2,
            "only the authorised requests were applied"
        );
        // The metrics are still served, without a token.
        let metrics = request(a, "GET /metrics HTTP/1.1\r\n\r\n");
        assert!(metrics.starts_with("HTTP/1.1 200 OK"), "{metrics}");
        l.stop();
    }

    #[test]
    fn config_refuses_big_bad_and_unsized_bodies() {
        let (l, applied) = with_config(None);
        let a = l.local_addr();
        let big = format!("OBSERVE_SAMPLE={}", "x".repeat(MAX_BODY));
        let too_big = post(a, "", &big);
        assert!(too_big.starts_with("HTTP/1.1 413 "), "{too_big}");
        let bad = post(a, "", "nonsense");
        assert!(bad.starts_with("HTTP/1.1 400 "), "{bad}");
        assert!(bad.ends_with("line 1: cannot read it\n"), "{bad}");
        let no_length = request(a, "POST /config HTTP/1.1\r\n\r\nOBSERVE_SAMPLE=x=0");
        assert!(no_length.starts_with("HTTP/1.1 411 "), "{no_length}");
        let chunked = request(
            a,
            "POST /config HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        );
        assert!(chunked.starts_with("HTTP/1.1 411 "), "{chunked}");
        let mut c = TcpStream::connect(a).expect("connect");
        c.write_all(b"POST /config HTTP/1.1\r\nContent-Length: 2\r\n\r\n\xff\xfe")
            .expect("write");
        let mut binary = String::new();
        c.read_to_string(&mut binary).expect("read");
        assert!(binary.starts_with("HTTP/1.1 400 "), "{binary}");
        let get = request(a, "GET /config HTTP/1.1\r\n\r\n");
        assert!(get.starts_with("HTTP/1.1 405 "), "{get}");
        assert!(get.contains("Allow: POST\r\n"), "{get}");
        assert!(
            applied
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .is_empty()
        );
        l.stop();
    }

    #[test]
    fn config_bodies_may_arrive_in_pieces_within_the_deadline() {
        let (l, applied) = with_config(None);
        let mut c = TcpStream::connect(l.local_addr()).expect("connect");
        c.write_all(b"POST /config HTTP/1.1\r\nContent-Length: 20\r\nExpect: 100-continue\r\n\r\n")
            .expect("head");
        let mut cont = [0u8; 25];
        c.read_exact(&mut cont).expect("100 Continue");
        assert_eq!(&cont, b"HTTP/1.1 100 Continue\r\n\r\n");
        c.write_all(b"OBSERVE_SAMPLE").expect("part");
        std::thread::sleep(Duration::from_millis(50));
        c.write_all(b"=x=0\n\n").expect("rest");
        let mut out = String::new();
        c.read_to_string(&mut out).expect("read");
        assert!(out.starts_with("HTTP/1.1 200 OK"), "{out}");
        assert_eq!(
            *applied.lock().unwrap_or_else(PoisonError::into_inner),
            ["OBSERVE_SAMPLE=x=0\n\n"]
        );
        l.stop();
    }

    #[test]
    fn config_is_not_found_unless_enabled() {
        let l = MetricsListener::bind("127.0.0.1:0".parse().expect("addr"), || "a 1\n".into())
            .expect("bind");
        let off = post(l.local_addr(), "", "OBSERVE_SAMPLE=x=0");
        assert!(off.starts_with("HTTP/1.1 404 "), "{off}");
        l.stop();
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(same_token(b"abc", b"abc"));
        assert!(!same_token(b"", b"abc"));
        assert!(!same_token(b"ab", b"abc"));
        assert!(!same_token(b"abcd", b"abc"));
        assert!(!same_token(b"abd", b"abc"));
        assert!(!same_token(b"abc\0", b"abc"));
    }

    #[test]
    fn a_port_in_use_is_an_error() {
        let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
        let err = MetricsListener::bind(taken.local_addr().expect("addr"), String::new)
            .err()
            .map(|e| e.kind());
        assert_eq!(err, Some(io::ErrorKind::AddrInUse));
    }
}
