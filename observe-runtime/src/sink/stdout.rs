//! Standard output, the default sink.

use std::io::{self, Write};

use super::SinkError;
use super::options::{queue_options, queued_sink};
use super::worker::{Batch, Failure, Fate, Options, Pipe, Transport};

/// Writes lines to standard output from a background worker, like the
/// other queued sinks: a caller never waits on a full pipe (a `| less`
/// left on screen, a log collector that stopped reading). Lines that do
/// not fit the bounded queue meanwhile are dropped and counted in
/// `log_lines_dropped_total{sink="stdout"}`.
///
/// Each batch goes out in whole lines under the lock of `std::io::stdout()`,
/// so lines never interleave with each other or with the program's own
/// `println!`s. Those are not ordered with the lines, though: call
/// [`ObserveGuard::flush`](crate::ObserveGuard::flush) before printing
/// something that must come after the lines logged so far.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use observe_runtime::Observe;
/// use observe_runtime::sink::StdoutSink;
///
/// let stdout = StdoutSink::builder().capacity_bytes(1 << 20).build()?;
/// let guard = Observe::builder("ingestor").sink(stdout.clone()).install()?;
/// tracing::info!("to standard output");
/// guard.flush(std::time::Duration::from_secs(1));
/// assert_eq!(stdout.stats().queued, 0);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct StdoutSink {
    pipe: Pipe,
}

/// Configures a [`StdoutSink`]; made by [`StdoutSink::builder`].
#[derive(Debug, Clone)]
#[must_use = "the sink is made by `build()`"]
pub struct StdoutSinkBuilder {
    opts: Options,
}

impl StdoutSink {
    /// Starts configuring a sink to standard output.
    pub fn builder() -> StdoutSinkBuilder {
        StdoutSinkBuilder {
            opts: Options::new("stdout", 256 * 1024),
        }
    }

    /// A sink to standard output with the default options.
    ///
    /// # Errors
    ///
    /// See [`StdoutSinkBuilder::build`].
    pub fn new() -> Result<Self, SinkError> {
        Self::builder().build()
    }
}

queue_options!(StdoutSinkBuilder);

impl StdoutSinkBuilder {
    /// Starts the sink's worker.
    ///
    /// # Errors
    ///
    /// If an option is zero or the worker thread cannot be started.
    pub fn build(self) -> Result<StdoutSink, SinkError> {
        Ok(StdoutSink {
            pipe: Pipe::start(&self.opts, StdoutTransport)?,
        })
    }
}

queued_sink!(StdoutSink);

struct StdoutTransport;

impl Transport for StdoutTransport {
    fn is_connected(&self) -> bool {
        true
    }

    fn connect(&mut self) -> io::Result<()> {
        Ok(())
    }

    fn send(&mut self, batch: &mut Batch) -> Result<(), Failure> {
        let data = batch.pending();
        let mut out = io::stdout().lock();
        match out.write_all(data).and_then(|()| out.flush()) {
            Ok(()) => {
                batch.resolve_prefix(data.len(), Fate::Sent);
                Ok(())
            }
            // Standard output does not come back once closed (`EPIPE`):
            // the lines are dropped, counted, rather than retried.
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                batch.note(format!("standard output is closed: {e}"));
                batch.resolve_prefix(usize::MAX, Fate::Rejected);
                Ok(())
            }
            Err(e) => Err(Failure::Connection(e)),
        }
    }

    fn disconnect(&mut self) {}
}
