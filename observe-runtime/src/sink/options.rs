//! What every queued sink shares: its counters and the builder options
//! for its queue, worker and connection.

/// Default queue capacity of a queued sink: 8 MiB, some 30,000 typical
/// lines, or a minute of a busy service's logs while its collector restarts.
pub const DEFAULT_CAPACITY_BYTES: usize = 8 * 1024 * 1024;

/// A queued sink's counts since it was built.
///
/// Every line handed to the sink is, at any moment, in exactly one of
/// `sent`, `dropped` and `queued`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SinkStats {
    /// Lines handed to the destination: written to the file, accepted by
    /// the socket, or acknowledged by `_bulk`. A TCP collector that dies
    /// loses what was still in the kernel's socket buffers.
    pub sent: u64,
    /// Lines given up: queue full, too large for a datagram, refused by the
    /// destination, or still queued or being written at a flush deadline
    /// (a write that completes after the deadline does not count them
    /// again, as sent).
    pub dropped: u64,
    /// Of `dropped`, the lines the destination refused (per-item `_bulk`
    /// errors, datagrams over the size limit).
    pub rejected: u64,
    /// Lines waiting, including the batch the worker is sending.
    pub queued: u64,
    /// Bytes of `queued`, and of lines given up at a flush deadline that the
    /// worker's blocked write still holds.
    pub queued_bytes: u64,
    /// The queue's capacity in bytes.
    pub capacity_bytes: u64,
    /// Connections (or file opens) made, first one included.
    pub connects: u64,
    /// The latest connect, send or destination error.
    pub last_error: Option<String>,
}

/// The queue and worker options of a sink builder with an `opts` field.
macro_rules! queue_options {
    ($builder:ty) => {
        impl $builder {
            /// Names the sink: the `sink` label of its metrics and the name
            /// of its worker thread.
            pub fn name(mut self, name: impl Into<String>) -> Self {
                self.opts.name = name.into();
                self
            }

            /// Bounds the queue at `bytes` of lines (default
            /// [`DEFAULT_CAPACITY_BYTES`](crate::sink::DEFAULT_CAPACITY_BYTES));
            /// a line that does not fit is dropped and counted. The queue's
            /// two buffers are reserved at this size, and only the pages
            /// lines reach become resident: at most the capacity during one
            /// outage, below twice it over repeated ones.
            pub fn capacity_bytes(mut self, bytes: usize) -> Self {
                self.opts.capacity_bytes = bytes;
                self
            }

            /// The most bytes the worker writes in one batch (a single
            /// longer line is still sent whole).
            pub fn max_batch_bytes(mut self, bytes: usize) -> Self {
                self.opts.max_batch_bytes = bytes;
                self
            }

            /// Waits `initial` after the first failed attempt, doubling up
            /// to `max` (defaults 100 ms and 5 s), with jitter.
            pub fn backoff(
                mut self,
                initial: std::time::Duration,
                max: std::time::Duration,
            ) -> Self {
                self.opts.backoff_initial = initial;
                self.opts.backoff_max = max;
                self
            }
        }
    };
}

/// The connection options of a sink builder with a `net` field.
macro_rules! net_options {
    ($builder:ty) => {
        impl $builder {
            /// Gives up on a connection attempt after `timeout` (default 3 s).
            pub fn connect_timeout(mut self, timeout: std::time::Duration) -> Self {
                self.net.connect_timeout = timeout;
                self
            }

            /// Treats the connection as broken when one write or read blocks
            /// longer than `timeout` (default 10 s).
            pub fn io_timeout(mut self, timeout: std::time::Duration) -> Self {
                self.net.io_timeout = timeout;
                self
            }

            /// Connects with TLS, verifying the collector's certificate.
            #[cfg(feature = "tls")]
            pub fn tls(mut self, config: crate::sink::TlsConfig) -> Self {
                self.net.tls = Some(config);
                self
            }
        }
    };
}

/// A sink over a [`Pipe`](super::worker::Pipe) (its `pipe` field): its
/// `stats()` and its `Sink` implementation, the same for every queued sink.
macro_rules! queued_sink {
    ($sink:ty) => {
        impl $sink {
            /// The sink's counts so far.
            #[must_use]
            pub fn stats(&self) -> crate::sink::SinkStats {
                self.pipe.stats()
            }
        }

        impl crate::sink::Sink for $sink {
            fn name(&self) -> &str {
                self.pipe.name()
            }

            fn write_json_line(&self, line: crate::sink::JsonLine<'_>) {
                self.pipe.push(line.as_str());
            }

            fn flush(&self, timeout: std::time::Duration) -> bool {
                self.pipe.flush(timeout)
            }
        }
    };
}

pub(crate) use {net_options, queue_options, queued_sink};
