//! One deadline for a whole network exchange, and the socket I/O that
//! honours it.
//!
//! A per-read timeout does not bound an exchange: a peer that sends one
//! byte just before each timeout keeps it going forever. Instead every
//! read and write is given, as its socket timeout, only the time left
//! before the exchange's deadline.

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::base::clock;

/// A point in time after which an exchange has failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Deadline(Instant);

impl Deadline {
    /// `timeout` from now; saturates instead of overflowing, so
    /// `Duration::MAX` means "practically never".
    pub(crate) fn after(timeout: Duration) -> Self {
        Self(clock::deadline_after(timeout))
    }

    /// The instant `at`.
    #[cfg(feature = "otlp")]
    pub(crate) fn at(at: Instant) -> Self {
        Self(at)
    }

    /// The earlier of `self` and `timeout` from now.
    pub(crate) fn min_after(self, timeout: Duration) -> Self {
        self.min(Self::after(timeout))
    }

    /// Time left, or `TimedOut` once the deadline has passed. Never zero:
    /// a zero socket timeout is refused by the standard library.
    pub(crate) fn remaining(&self) -> io::Result<Duration> {
        let left = self.0.saturating_duration_since(Instant::now());
        if left.is_zero() {
            Err(timed_out())
        } else {
            Ok(left.max(Duration::from_millis(1)))
        }
    }
}

pub(crate) fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "deadline passed")
}

/// Resolves `host:port` before `deadline`.
///
/// The system resolver has no timeout of its own, so a name is resolved on
/// a short-lived thread and waited for; when the deadline passes first,
/// that thread is left to finish (and its answer dropped). An IP literal
/// needs no lookup.
pub(crate) fn resolve(host: &str, port: u16, deadline: Deadline) -> io::Result<Vec<SocketAddr>> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let left = deadline.remaining()?;
    let (tx, rx) = mpsc::channel();
    let name = host.to_owned();
    std::thread::Builder::new()
        .name("observe-resolve".into())
        .spawn(move || {
            let r = (name.as_str(), port)
                .to_socket_addrs()
                .map(Iterator::collect::<Vec<_>>);
            let _ = tx.send(r);
        })?;
    match rx.recv_timeout(left) {
        Ok(r) => r,
        Err(mpsc::RecvTimeoutError::Timeout) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("resolving {host} took too long"),
        )),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(io::Error::other("the resolver failed")),
    }
}

/// Connects to the first address of `host:port` that answers, resolution
/// included, before `deadline`.
pub(crate) fn connect(host: &str, port: u16, deadline: Deadline) -> io::Result<TcpStream> {
    let mut last = None;
    for addr in resolve(host, port, deadline)? {
        match TcpStream::connect_timeout(&addr, deadline.remaining()?) {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "the host has no address")))
}

/// Gives the socket under `io` the time left as its read and write
/// timeouts before every operation, so no single call outlives the
/// deadline.
pub(crate) struct Timed<'a, T> {
    pub(crate) io: &'a mut T,
    pub(crate) deadline: Deadline,
}

/// Something that reads and writes through one TCP socket.
pub(crate) trait Socket {
    fn socket(&self) -> &TcpStream;
}

impl Socket for TcpStream {
    fn socket(&self) -> &TcpStream {
        self
    }
}

impl<T: Socket> Timed<'_, T> {
    fn arm(&self) -> io::Result<()> {
        let left = self.deadline.remaining()?;
        let socket = self.io.socket();
        // Both directions: a TLS read may have to write, and back.
        socket.set_read_timeout(Some(left))?;
        socket.set_write_timeout(Some(left))
    }
}

/// Turns the socket's own timeout errors into `TimedOut` once the deadline
/// has passed.
fn after_io<R>(r: io::Result<R>, deadline: Deadline) -> io::Result<R> {
    match r {
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            deadline.remaining()?;
            Err(e)
        }
        r => r,
    }
}

impl<T: Read + Socket> Read for Timed<'_, T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.arm()?;
        after_io(self.io.read(buf), self.deadline)
    }
}

impl<T: Write + Socket> Write for Timed<'_, T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.arm()?;
        after_io(self.io.write(buf), self.deadline)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.arm()?;
        after_io(self.io.flush(), self.deadline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_timeouts_saturate() {
        let d = Deadline::after(Duration::MAX);
        assert!(d.remaining().is_ok());
        assert!(d.min_after(Duration::ZERO).remaining().is_err());
        assert!(Deadline::after(Duration::ZERO).remaining().is_err());
    }

    #[test]
    fn ip_literals_resolve_without_a_lookup() {
        let d = Deadline::after(Duration::from_secs(1));
        assert_eq!(
            resolve("::1", 9, d).unwrap(),
            vec![SocketAddr::from(([0u16, 0, 0, 0, 0, 0, 0, 1], 9))]
        );
        assert!(resolve("localhost", 9, Deadline::after(Duration::ZERO)).is_err());
    }

    #[test]
    fn a_dripping_peer_cannot_extend_the_deadline() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            for _ in 0..100 {
                if s.write_all(b"x").is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        let start = Instant::now();
        let deadline = Deadline::after(Duration::from_millis(500));
        let mut tcp = connect("127.0.0.1", addr.port(), deadline).unwrap();
        let mut timed = Timed {
            io: &mut tcp,
            deadline,
        };
        let mut sink = Vec::new();
        let err = timed.read_to_end(&mut sink).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(start.elapsed() < Duration::from_secs(5));
    }
}
