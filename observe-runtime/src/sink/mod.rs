//! Where formatted log lines go.
//!
//! The JSON layer formats each line once and hands it to a [`Sink`]. A sink
//! must never panic and should never block the caller for long; every line
//! it cannot deliver is counted in `log_lines_dropped_total{sink}`.
//!
//! The shipping sinks ([`FileSink`], [`TcpSink`], [`UdpSink`],
//! [`ElasticsearchSink`]) never make the caller wait: a line is copied into
//! a bounded queue (capacity in bytes) and a background worker per sink
//! batches it to its destination, reconnecting with capped exponential
//! backoff. A full queue drops the newest line. Each sink counts in
//! `log_lines_sent_total{sink}` and `log_lines_dropped_total{sink}`, and
//! its `stats()` tell where every line is: sent, dropped or queued.
//! `flush(timeout)` (and dropping the install guard) waits for the queues
//! to drain, then counts what is left as dropped.

mod builder_ext;
mod capture;
pub(crate) mod conn;
mod elasticsearch;
mod file;
pub(crate) mod http;
mod line;
mod options;
mod queue;
mod stdout;
mod tcp;
#[cfg(feature = "tls")]
mod tls;
mod udp;
mod worker;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

pub use capture::CaptureSink;
pub use elasticsearch::{DEFAULT_INDEX_PATTERN, ElasticsearchSink, ElasticsearchSinkBuilder};
pub use file::{DEFAULT_MAX_FILE_BYTES, DEFAULT_MAX_FILES, FileSink, FileSinkBuilder};
pub use line::{JsonLine, NotALine};
pub use options::{DEFAULT_CAPACITY_BYTES, SinkError, SinkStats};
pub use stdout::StdoutSink;
pub use tcp::{TcpSink, TcpSinkBuilder};
#[cfg(feature = "tls")]
pub use tls::TlsConfig;
pub use udp::{MAX_UDP_DATAGRAM, UdpSink, UdpSinkBuilder};

/// A destination for complete JSON log lines.
pub trait Sink: Send + Sync + fmt::Debug + 'static {
    /// The sink's name, used as the `sink` label of its metrics.
    fn name(&self) -> &str;

    /// Delivers one line, with what its writer knew about it.
    ///
    /// The only way in: a [`JsonLine`] is already known to be one line, so
    /// no sink scans for newlines, and it carries the line's time and
    /// service, so no sink searches the text for them. The name says what
    /// it takes and cannot be confused with `io::Write::write` on a sink
    /// that also implements that trait.
    fn write_json_line(&self, line: JsonLine<'_>);

    /// Delivers everything buffered, waiting at most `timeout`.
    ///
    /// Returns `true` if nothing is left undelivered.
    fn flush(&self, timeout: Duration) -> bool {
        let _ = timeout;
        true
    }
}

/// Several sinks fed the same lines.
#[derive(Debug, Clone, Default)]
pub struct FanOut {
    sinks: Vec<Arc<dyn Sink>>,
}

impl FanOut {
    /// A fan-out over `sinks`.
    #[must_use]
    pub fn new(sinks: Vec<Arc<dyn Sink>>) -> Self {
        Self { sinks }
    }
}

impl Sink for FanOut {
    fn name(&self) -> &str {
        "fanout"
    }

    fn write_json_line(&self, line: JsonLine<'_>) {
        for s in &self.sinks {
            s.write_json_line(line);
        }
    }

    /// Flushes every sink at once, so one dead collector cannot eat the
    /// others' time: the whole flush takes at most `timeout`.
    fn flush(&self, timeout: Duration) -> bool {
        match self.sinks.as_slice() {
            [] => true,
            [one] => one.flush(timeout),
            many => std::thread::scope(|scope| {
                let flushes: Vec<_> = many
                    .iter()
                    .map(|s| scope.spawn(move || s.flush(timeout)))
                    .collect();
                // Every flush is waited for; one whose thread panicked has
                // not delivered everything.
                let done: Vec<bool> = flushes
                    .into_iter()
                    .map(|f| f.join().unwrap_or(false))
                    .collect();
                done.into_iter().all(|ok| ok)
            }),
        }
    }
}

/// Counts one line `sink` could not deliver.
pub(crate) fn count_dropped(sink: &str, lines: u64) {
    metrics::counter!(
        crate::metrics::names::LOG_LINES_DROPPED_TOTAL,
        "sink" => sink.to_owned()
    )
    .increment(lines);
}

#[cfg(test)]
mod tests {
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
