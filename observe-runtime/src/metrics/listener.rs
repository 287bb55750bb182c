//! A tiny blocking HTTP listener serving the Prometheus exposition on
//! `GET /metrics`: one thread, one short request at a time, no async
//! runtime. Scrapes are rare and small; the exporter's own listener would
//! bring hyper and tokio for the same job.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::builder::Background;

/// `127.0.0.1:9000`: loopback only unless told otherwise, on the
/// exporter's customary port.
pub const DEFAULT_LISTEN_ADDR: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 9000));

/// How long one client may take to send its request or read the answer.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest request head read.
const MAX_REQUEST: usize = 8 * 1024;

type Render = Arc<dyn Fn() -> String + Send + Sync>;

/// Serves `render()` on `GET /metrics` (and `HEAD`) until stopped.
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
    thread: Option<JoinHandle<()>>,
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
        let addr = listener.local_addr()?;
        listener.set_nonblocking(false)?;
        let stop = Arc::new(AtomicBool::new(false));
        let render: Render = Arc::new(render);
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("observe-metrics-listener".into())
            .spawn(move || accept_loop(&listener, &flag, &render))?;
        Ok(Self {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// The address it listens on.
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting and waits for the request in progress.
    pub fn stop(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
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
            let _ = thread.join();
        }
        // Otherwise the thread exits at its next connection; never hang.
    }
}

impl Drop for MetricsListener {
    fn drop(&mut self) {
        self.shut_down();
    }
}

impl Background for MetricsListener {
    fn stop(mut self: Box<Self>, _timeout: Duration) {
        self.shut_down();
    }
}

fn accept_loop(listener: &TcpListener, stop: &AtomicBool, render: &Render) {
    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        match conn {
            Ok(stream) => {
                let _ = handle(stream, render);
            }
            // E.g. out of file descriptors: wait rather than spin.
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

fn handle(mut stream: TcpStream, render: &Render) -> io::Result<()> {
    stream.set_read_timeout(Some(CLIENT_TIMEOUT))?;
    stream.set_write_timeout(Some(CLIENT_TIMEOUT))?;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        if buf.len() > MAX_REQUEST {
            return respond(
                &mut stream,
                "431 Request Header Fields Too Large",
                &[],
                "",
                true,
            );
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&buf);
    let mut parts = head.lines().next().unwrap_or("").split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    match (method, path) {
        ("GET" | "HEAD", "/metrics") => respond(
            &mut stream,
            "200 OK",
            &[("Content-Type", "text/plain; version=0.0.4; charset=utf-8")],
            &render(),
            method == "GET",
        ),
        (_, "/metrics") => respond(
            &mut stream,
            "405 Method Not Allowed",
            &[("Allow", "GET, HEAD")],
            "",
            true,
        ),
        _ => respond(
            &mut stream,
            "404 Not Found",
            &[],
            "metrics are at /metrics\n",
            true,
        ),
    }
}

fn respond(
    stream: &mut TcpStream,
    status: &str,
    headers: &[(&str, &str)],
    body: &str,
    send_body: bool,
) -> io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(k);
        head.push_str(": ");
        head.push_str(v);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    if send_body {
        stream.write_all(body.as_bytes())?;
    }
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(
            TcpStream::connect(a).is_err(),
            "stopped listeners free the port"
        );
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
