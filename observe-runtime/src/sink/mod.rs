//! Where formatted log lines go.
//!
//! The JSON layer formats each line once and hands it to a [`Sink`]. A sink
//! must never panic and should never block the caller for long; every line
//! it cannot deliver is counted in `log_lines_dropped_total{sink}`.

mod capture;
mod stdout;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

pub use capture::CaptureSink;
pub use stdout::StdoutSink;

/// A destination for complete JSON log lines.
pub trait Sink: Send + Sync + fmt::Debug + 'static {
    /// The sink's name, used as the `sink` label of its metrics.
    fn name(&self) -> &str;

    /// Delivers one line; `line` ends with `\n`.
    fn write_line(&self, line: &str);

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

    fn write_line(&self, line: &str) {
        for s in &self.sinks {
            s.write_line(line);
        }
    }

    fn flush(&self, timeout: Duration) -> bool {
        let mut all = true;
        for s in &self.sinks {
            all &= s.flush(timeout);
        }
        all
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
