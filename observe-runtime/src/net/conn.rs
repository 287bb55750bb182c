//! A TCP connection to a collector, plain or (feature `tls`) over rustls.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use super::SinkError;
use super::deadline::{self, Deadline, Socket};
#[cfg(feature = "tls")]
use super::tls::TlsConfig;

/// Timeouts of network sinks.
#[derive(Debug, Clone)]
pub(crate) struct NetOptions {
    /// Longest resolving, connecting and the TLS handshake may take
    /// together.
    pub(crate) connect_timeout: Duration,
    /// Longest a single write or read may block: a collector that stops
    /// reading is then treated as gone, so a flush deadline holds.
    pub(crate) io_timeout: Duration,
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<TlsConfig>,
}

impl Default for NetOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(3),
            io_timeout: Duration::from_secs(10),
            #[cfg(feature = "tls")]
            tls: None,
        }
    }
}

/// `host:port`, checked when the sink is built but resolved at each
/// connect, so a collector whose address changes is followed.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    pub(crate) host: String,
    pub(crate) port: u16,
}

impl Endpoint {
    pub(crate) fn parse(addr: &str) -> Result<Self, SinkError> {
        let bad = || SinkError::config(format!("expected HOST:PORT, got {addr:?}"));
        let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
        let port: u16 = port.parse().map_err(|_| bad())?;
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if host.is_empty() || port == 0 {
            return Err(bad());
        }
        Ok(Self {
            host: host.to_owned(),
            port,
        })
    }

    /// Opens a TCP connection to the first address that answers, name
    /// resolution included, before `deadline`.
    pub(crate) fn connect_tcp(&self, deadline: Deadline) -> io::Result<TcpStream> {
        deadline::connect(&self.host, self.port, deadline)
    }
}

/// An open connection.
pub(crate) enum Conn {
    Plain(TcpStream),
    #[cfg(feature = "tls")]
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Conn {
    /// Connects, with TLS when `net.tls` is set: resolving, connecting
    /// and the handshake together take at most `net.connect_timeout`.
    /// Later reads and writes each wait at most `net.io_timeout`.
    pub(crate) fn open(endpoint: &Endpoint, net: &NetOptions) -> io::Result<Self> {
        Self::open_until(
            endpoint,
            net,
            Deadline::after(net.connect_timeout),
            net.io_timeout,
        )
    }

    /// Connects (and shakes hands) before `deadline`; later reads and
    /// writes each wait at most `io_timeout` unless given a deadline of
    /// their own ([`Timed`](super::deadline::Timed)).
    pub(crate) fn open_until(
        endpoint: &Endpoint,
        net: &NetOptions,
        deadline: Deadline,
        io_timeout: Duration,
    ) -> io::Result<Self> {
        let tcp = endpoint.connect_tcp(deadline)?;
        tcp.set_nodelay(true)?;
        #[cfg(feature = "tls")]
        let conn = match &net.tls {
            Some(tls) => Self::Tls(Box::new(tls.handshake(&endpoint.host, tcp, deadline)?)),
            None => Self::Plain(tcp),
        };
        #[cfg(not(feature = "tls"))]
        let conn = {
            let _ = net;
            Self::Plain(tcp)
        };
        // A zero timeout is refused by the socket: at least 1 ms.
        let io_timeout = io_timeout.max(Duration::from_millis(1));
        conn.socket().set_write_timeout(Some(io_timeout))?;
        conn.socket().set_read_timeout(Some(io_timeout))?;
        Ok(conn)
    }

    /// Ends the connection cleanly: TLS peers otherwise see a truncation.
    pub(crate) fn close(&mut self) {
        #[cfg(feature = "tls")]
        if let Self::Tls(s) = self {
            s.conn.send_close_notify();
            let _ = s.flush();
        }
        let _ = self.socket().shutdown(std::net::Shutdown::Write);
    }

    /// Whether the peer has closed or reset the connection.
    ///
    /// A json_lines collector never sends anything, so a readable socket
    /// means end of stream. Checking before each batch means a restarted
    /// collector costs at most the batch being written when it died,
    /// instead of every batch the kernel accepts until the reset arrives.
    pub(crate) fn peer_closed(&mut self) -> bool {
        if self.socket().set_nonblocking(true).is_err() {
            return true;
        }
        let mut buf = [0u8; 512];
        let mut closed = false;
        // Bounded: a peer that keeps sending is alive.
        for _ in 0..16 {
            match self.read(&mut buf) {
                Ok(0) => {
                    closed = true;
                    break;
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    closed = true;
                    break;
                }
            }
        }
        self.socket().set_nonblocking(false).is_err() || closed
    }
}

impl Socket for Conn {
    fn socket(&self) -> &TcpStream {
        match self {
            Self::Plain(s) => s,
            #[cfg(feature = "tls")]
            Self::Tls(s) => s.get_ref(),
        }
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.read(buf),
            #[cfg(feature = "tls")]
            Self::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.write(buf),
            #[cfg(feature = "tls")]
            Self::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Plain(s) => s.flush(),
            #[cfg(feature = "tls")]
            Self::Tls(s) => s.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_hosts_and_ports() {
        let e = Endpoint::parse("127.0.0.1:5000").unwrap();
        assert_eq!((e.host.as_str(), e.port), ("127.0.0.1", 5000));
        let e = Endpoint::parse("[::1]:5000").unwrap();
        assert_eq!((e.host.as_str(), e.port), ("::1", 5000));
        let e = Endpoint::parse("logstash.internal:5000").unwrap();
        assert_eq!(e.host, "logstash.internal");
        for bad in ["", "logstash", ":5000", "host:", "host:0", "host:99999"] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
    }
}
