//! A TCP connection to a collector, plain or (feature `tls`) over rustls.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use super::SinkError;
#[cfg(feature = "tls")]
use super::tls::TlsConfig;

/// Timeouts of network sinks.
#[derive(Debug, Clone)]
pub(crate) struct NetOptions {
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

    /// Opens a TCP connection to the first address that answers.
    pub(crate) fn connect_tcp(&self, timeout: Duration) -> io::Result<TcpStream> {
        let mut last = None;
        for addr in (self.host.as_str(), self.port).to_socket_addrs()? {
            match TcpStream::connect_timeout(&addr, timeout) {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last
            .unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "the host has no address")))
    }
}

/// An open connection.
pub(crate) enum Conn {
    Plain(TcpStream),
    #[cfg(feature = "tls")]
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Conn {
    /// Connects, with TLS when `net.tls` is set.
    pub(crate) fn open(endpoint: &Endpoint, net: &NetOptions) -> io::Result<Self> {
        let tcp = endpoint.connect_tcp(net.connect_timeout)?;
        tcp.set_nodelay(true)?;
        tcp.set_write_timeout(Some(net.io_timeout))?;
        tcp.set_read_timeout(Some(net.io_timeout))?;
        #[cfg(feature = "tls")]
        if let Some(tls) = &net.tls {
            return tls
                .handshake(&endpoint.host, tcp)
                .map(|s| Self::Tls(Box::new(s)));
        }
        Ok(Self::Plain(tcp))
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

    fn socket(&self) -> &TcpStream {
        match self {
            Self::Plain(s) => s,
            #[cfg(feature = "tls")]
            Self::Tls(s) => s.get_ref(),
        }
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
