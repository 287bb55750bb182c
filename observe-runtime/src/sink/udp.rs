//! UDP json_lines: one line per datagram, for Logstash `udp` inputs and
//! the like.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs, UdpSocket};

use super::SinkError;
use super::options::{queue_options, queued_sink};
use super::worker::{Batch, Failure, Fate, Options, Pipe, Transport};
use crate::net::conn::Endpoint;

/// The largest UDP payload over IPv4.
pub const MAX_UDP_DATAGRAM: usize = 65_507;

/// Sends each line (with its `\n`, which json_lines decoders need) as one
/// datagram, from a background worker.
///
/// UDP says nothing about delivery: `sent` counts datagrams the kernel
/// took. Lines longer than the datagram limit are dropped and counted as
/// rejected. When the collector's port is closed the kernel reports it on
/// a later send; the worker then backs off and keeps the line.
///
/// ```no_run
/// # fn main() -> Result<(), observe_runtime::sink::SinkError> {
/// use observe_runtime::sink::UdpSink;
///
/// let sink = UdpSink::builder("127.0.0.1:5000").max_datagram_bytes(8192).build()?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct UdpSink {
    pipe: Pipe,
}

/// Configures a [`UdpSink`]; made by [`UdpSink::builder`].
#[derive(Debug, Clone)]
#[must_use = "the sink is made by `build()`"]
pub struct UdpSinkBuilder {
    addr: String,
    opts: Options,
    max_datagram: usize,
}

impl UdpSink {
    /// Starts configuring a sink to `addr` (`HOST:PORT`).
    pub fn builder(addr: impl Into<String>) -> UdpSinkBuilder {
        UdpSinkBuilder {
            addr: addr.into(),
            opts: Options::new("udp", 256 * 1024),
            max_datagram: MAX_UDP_DATAGRAM,
        }
    }

    /// A sink to `addr` (`HOST:PORT`) with the default options.
    ///
    /// # Errors
    ///
    /// See [`UdpSinkBuilder::build`].
    pub fn new(addr: impl Into<String>) -> Result<Self, SinkError> {
        Self::builder(addr).build()
    }
}

queue_options!(UdpSinkBuilder);

impl UdpSinkBuilder {
    /// Drops lines (newline included) longer than `bytes` (default and
    /// maximum [`MAX_UDP_DATAGRAM`]); collectors often accept less, e.g.
    /// syslog-ng's default 64 KiB message size.
    pub fn max_datagram_bytes(mut self, bytes: usize) -> Self {
        self.max_datagram = bytes.min(MAX_UDP_DATAGRAM);
        self
    }

    /// Starts the sink's worker.
    ///
    /// # Errors
    ///
    /// If the address is not `HOST:PORT`, an option is zero, or the worker
    /// thread cannot be started.
    pub fn build(self) -> Result<UdpSink, SinkError> {
        if self.max_datagram == 0 {
            return Err(SinkError::config("the datagram limit is 0 bytes"));
        }
        let transport = UdpTransport {
            endpoint: Endpoint::parse(&self.addr)?,
            max_datagram: self.max_datagram,
            socket: None,
        };
        Ok(UdpSink {
            pipe: Pipe::start(&self.opts, transport)?,
        })
    }
}

queued_sink!(UdpSink);

struct UdpTransport {
    endpoint: Endpoint,
    max_datagram: usize,
    socket: Option<UdpSocket>,
}

impl Transport for UdpTransport {
    fn is_connected(&self) -> bool {
        self.socket.is_some()
    }

    fn connect(&mut self) -> io::Result<()> {
        let addr = (self.endpoint.host.as_str(), self.endpoint.port)
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "the host has no address"))?;
        let local: SocketAddr = match addr {
            SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let socket = UdpSocket::bind(local)?;
        // Connected, so the kernel reports a closed port (ICMP) to us.
        socket.connect(addr)?;
        self.socket = Some(socket);
        Ok(())
    }

    fn send(&mut self, batch: &mut Batch) -> Result<(), Failure> {
        let Some(socket) = self.socket.as_ref() else {
            return Err(Failure::Connection(io::ErrorKind::NotConnected.into()));
        };
        while !batch.is_empty() {
            let pending = batch.pending();
            let len = pending
                .iter()
                .position(|&c| c == b'\n')
                .map_or(pending.len(), |i| i + 1);
            if len > self.max_datagram {
                batch.resolve_prefix(len, Fate::Rejected);
                continue;
            }
            match send_datagram(socket, &pending[..len]) {
                Ok(()) => batch.resolve_prefix(len, Fate::Sent),
                // The path allows less than the configured limit.
                Err(e) if is_too_long(&e) => {
                    batch.resolve_prefix(len, Fate::Rejected);
                }
                Err(e) => return Err(Failure::Connection(e)),
            }
        }
        Ok(())
    }

    fn disconnect(&mut self) {
        self.socket = None;
    }
}

/// Sends one datagram. A refusal reported now is about an earlier one, so
/// this one is tried once more before the collector is taken to be gone.
fn send_datagram(socket: &UdpSocket, datagram: &[u8]) -> io::Result<()> {
    let mut refused = false;
    loop {
        match socket.send(datagram) {
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused && !refused => refused = true,
            Err(e) => return Err(e),
        }
    }
}

/// Whether `e` is `EMSGSIZE`, which `std` does not name.
fn is_too_long(e: &io::Error) -> bool {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    const EMSGSIZE: i32 = 90;
    #[cfg(windows)]
    const EMSGSIZE: i32 = 10040;
    #[cfg(not(any(target_os = "linux", target_os = "android", windows)))]
    const EMSGSIZE: i32 = 40;
    e.raw_os_error() == Some(EMSGSIZE)
}
