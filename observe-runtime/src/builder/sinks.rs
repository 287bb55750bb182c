//! Builder shortcuts for the shipping sinks.

use super::{InstallError, ObserveBuilder};
use crate::sink::{ElasticsearchSink, FileSink, Sink, SinkError, StdoutSink, TcpSink, UdpSink};

/// Adds `sink`, or makes `install()` fail with the error it could not be
/// built with as its source (the builder's setters cannot return errors).
fn add(
    builder: ObserveBuilder,
    component: &str,
    sink: Result<impl Sink, SinkError>,
) -> ObserveBuilder {
    match sink {
        Ok(sink) => builder.sink(sink),
        Err(e) => {
            let e = InstallError::component(component, e);
            builder.on_install(move |_| Err(e))
        }
    }
}

impl ObserveBuilder {
    /// Ships lines to a Logstash `tcp` input with the `json_lines` codec
    /// (or any newline-delimited JSON collector) at `addr` (`HOST:PORT`),
    /// as a [`TcpSink`] named `logstash`. For other options build the sink
    /// and pass it to [`sink`](Self::sink).
    ///
    /// Like every sink added, it replaces standard output; add
    /// [`stdout`](Self::stdout) to keep both.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), observe_runtime::InstallError> {
    /// let _guard = observe_runtime::Observe::builder("ingestor")
    ///     .logstash("127.0.0.1:5000")
    ///     .file("/var/log/ingestor/ingestor.log")
    ///     .install()?;
    /// # Ok(()) }
    /// ```
    pub fn logstash(self, addr: impl Into<String>) -> Self {
        let sink = TcpSink::builder(addr).name("logstash").build();
        add(self, "logstash sink", sink)
    }

    /// Writes lines to standard output (from a queue, like every sink) next
    /// to the sinks added: without any, standard output is the default.
    pub fn stdout(self) -> Self {
        add(self, "stdout sink", StdoutSink::new())
    }

    /// Ships lines as UDP datagrams to `addr` (`HOST:PORT`), as a
    /// [`UdpSink`] named `udp`.
    pub fn udp(self, addr: impl Into<String>) -> Self {
        add(self, "udp sink", UdpSink::new(addr))
    }

    /// Indexes lines in Elasticsearch or OpenSearch at `url` with `_bulk`,
    /// into `{service}-logs-%Y.%m.%d`, as an [`ElasticsearchSink`] named
    /// `elasticsearch`.
    pub fn elasticsearch(self, url: impl Into<String>) -> Self {
        add(self, "elasticsearch sink", ElasticsearchSink::new(url))
    }

    /// Appends lines to the file at `path`, rotated at 100 MB keeping 5
    /// files, as a [`FileSink`] named `file`.
    pub fn file(self, path: impl Into<std::path::PathBuf>) -> Self {
        add(self, "file sink", FileSink::new(path))
    }
}
