//! TCP json_lines: Logstash `tcp` input with the `json_lines` codec,
//! Vector `socket`, Fluent Bit `tcp`, syslog-ng `network()`.

use std::io::{self, Write};

use super::SinkError;
use super::options::{net_options, queue_options, queued_sink};
use super::worker::{Batch, Failure, Fate, Options, Pipe, Transport};
use crate::net::conn::{Conn, Endpoint, NetOptions};

/// Sends lines over one TCP connection, newline-delimited, from a
/// background worker: logging never waits for the collector.
///
/// The collector may be absent at start, die or restart: the worker
/// reconnects with capped exponential backoff while lines wait in the
/// bounded queue, and lines that do not fit are dropped and counted in
/// `log_lines_dropped_total{sink}`. Delivered lines are counted in
/// `log_lines_sent_total{sink}`.
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use observe_runtime::Observe;
/// use observe_runtime::sink::TcpSink;
///
/// let logstash = TcpSink::builder("127.0.0.1:5000").name("logstash").build()?;
/// let _guard = Observe::builder("ingestor").sink(logstash.clone()).install()?;
/// tracing::info!("shipped");
/// println!("{:?}", logstash.stats());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct TcpSink {
    pipe: Pipe,
}

/// Configures a [`TcpSink`]; made by [`TcpSink::builder`].
#[derive(Debug, Clone)]
#[must_use = "the sink is made by `build()`"]
pub struct TcpSinkBuilder {
    addr: String,
    opts: Options,
    net: NetOptions,
}

impl TcpSink {
    /// Starts configuring a sink to `addr` (`HOST:PORT`).
    pub fn builder(addr: impl Into<String>) -> TcpSinkBuilder {
        TcpSinkBuilder {
            addr: addr.into(),
            opts: Options::new("tcp", 256 * 1024),
            net: NetOptions::default(),
        }
    }

    /// A sink to `addr` (`HOST:PORT`) with the default options.
    ///
    /// # Errors
    ///
    /// See [`TcpSinkBuilder::build`].
    pub fn new(addr: impl Into<String>) -> Result<Self, SinkError> {
        Self::builder(addr).build()
    }
}

queue_options!(TcpSinkBuilder);
net_options!(TcpSinkBuilder);

impl TcpSinkBuilder {
    /// Starts the sink's worker. It connects in the background: an
    /// unreachable collector is not an error.
    ///
    /// # Errors
    ///
    /// If the address is not `HOST:PORT`, an option is zero, or the worker
    /// thread cannot be started.
    pub fn build(self) -> Result<TcpSink, SinkError> {
        let endpoint = Endpoint::parse(&self.addr)?;
        let transport = TcpTransport {
            endpoint,
            net: self.net,
            conn: None,
        };
        Ok(TcpSink {
            pipe: Pipe::start(&self.opts, transport)?,
        })
    }
}

queued_sink!(TcpSink);

struct TcpTransport {
    endpoint: Endpoint,
    net: NetOptions,
    conn: Option<Conn>,
}

impl Transport for TcpTransport {
    fn is_connected(&self) -> bool {
        self.conn.is_some()
    }

    fn connect(&mut self) -> io::Result<()> {
        self.conn = Some(Conn::open(&self.endpoint, &self.net)?);
        Ok(())
    }

    fn send(&mut self, batch: &mut Batch) -> Result<(), Failure> {
        let Some(conn) = self.conn.as_mut() else {
            return Err(Failure::Connection(io::ErrorKind::NotConnected.into()));
        };
        if conn.peer_closed() {
            return Err(Failure::Connection(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "the collector closed the connection",
            )));
        }
        let data = batch.pending();
        let mut written = 0;
        let result = loop {
            if written == data.len() {
                break conn.flush();
            }
            match conn.write(&data[written..]) {
                Ok(0) => break Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        // Lines wholly accepted by the socket are sent; a line cut by the
        // error is sent again, whole, on the next connection.
        let whole = data[..written]
            .iter()
            .rposition(|&c| c == b'\n')
            .map_or(0, |i| i + 1);
        batch.resolve_prefix(whole, Fate::Sent);
        result.map_err(Failure::Connection)
    }

    fn disconnect(&mut self) {
        self.conn = None;
    }

    fn close(&mut self) {
        if let Some(mut conn) = self.conn.take() {
            conn.close();
        }
    }
}
