//! Where formatted log lines go.
//!
//! The JSON layer formats each line once and hands it to a [`Sink`]. A sink
//! must never panic and should never block the caller for long; every line
//! it cannot deliver is counted in `log_lines_dropped_total{sink}`.
//!
//! Every sink here but the capture ([`StdoutSink`], [`FileSink`],
//! [`TcpSink`], [`UdpSink`], [`ElasticsearchSink`]) never makes the caller
//! wait: a line is copied into a bounded queue (capacity in bytes) and a
//! background worker per sink batches it to its destination, reconnecting with capped exponential
//! backoff. A full queue drops the newest line. Each sink counts in
//! `log_lines_sent_total{sink}` and `log_lines_dropped_total{sink}`, and
//! its `stats()` tell where every line is: sent, dropped or queued.
//! `flush(timeout)` (and dropping the install guard) waits for the queues
//! to drain, then counts what is left as dropped.

mod capture;
mod elasticsearch;
mod file;
mod options;
mod queue;
mod stdout;
mod tcp;
mod udp;
pub(crate) mod worker;

pub(crate) use crate::log::count_dropped;
pub use crate::log::line::{JsonLine, NotALine};
pub use crate::log::sink::{FanOut, Sink};
pub use crate::net::SinkError;
#[cfg(feature = "tls")]
pub use crate::net::TlsConfig;
pub use capture::CaptureSink;
pub use elasticsearch::{DEFAULT_INDEX_PATTERN, ElasticsearchSink, ElasticsearchSinkBuilder};
pub use file::{DEFAULT_MAX_FILE_BYTES, DEFAULT_MAX_FILES, FileSink, FileSinkBuilder};
pub use options::{DEFAULT_CAPACITY_BYTES, SinkStats};
pub use stdout::{StdoutSink, StdoutSinkBuilder};
pub use tcp::{TcpSink, TcpSinkBuilder};
pub use udp::{MAX_UDP_DATAGRAM, UdpSink, UdpSinkBuilder};

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn a_fan_out_hands_json_lines_to_every_sink() {
        let (a, b) = (CaptureSink::new(), CaptureSink::new());
        let fan = FanOut::new(vec![Arc::new(a.clone()), Arc::new(b.clone())]);
        fan.write_json_line(JsonLine::written("{\"a\":1}\n", 0, "svc"));
        fan.write_json_line(JsonLine::new("{\"b\":2}\n").unwrap());
        for sink in [a, b] {
            assert_eq!(sink.lines(), vec!["{\"a\":1}", "{\"b\":2}"]);
        }
    }
}
