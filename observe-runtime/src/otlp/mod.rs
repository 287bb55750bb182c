//! OpenTelemetry over OTLP/HTTP (feature `otlp`): a span per monitored
//! call, a log record per line, and the metrics, sent as protobuf to any
//! OTLP collector (rotel, the OpenTelemetry Collector, a vendor's
//! endpoint).
//!
//! Spans and log records travel like lines to a sink: one bounded queue
//! for both, drained by one background worker (a request per signal) that
//! never makes a caller wait, retries with backoff on HTTP 429, 502, 503
//! and 504 (honouring `Retry-After`), reconnects when the collector is
//! away, and counts every item it gives up in
//! `log_lines_dropped_total{sink="otlp"}`. Dropping the install guard
//! flushes them within the flush timeout.
//!
//! Most services turn it on with
//! [`ObserveBuilder::otlp`](crate::ObserveBuilder::otlp) or the standard
//! `OTEL_EXPORTER_OTLP_ENDPOINT`; [`OtlpExporter`] is the same exporter
//! for a subscriber assembled by hand.

mod call_line;
mod config;
mod fill;
mod logs;
mod metrics;
mod resource;
mod traces;
mod transport;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

pub use config::{
    Compression, DEFAULT_ENDPOINT, DEFAULT_METRIC_EXPORT_INTERVAL, DEFAULT_TIMEOUT,
    MIN_METRIC_EXPORT_INTERVAL, MIN_TIMEOUT, OtlpConfig, Sampler,
};
pub(crate) use config::{OtlpEnv, Signal};
use transport::{Client, Outcome};

use crate::base::Background;
use crate::log::sink::Internal;
use crate::net::SinkError;
use crate::net::deadline::Deadline;
use crate::record::{CallConsumer, CallRecord};
use crate::recorder::MetricsHandle;
use crate::sink::worker::{Options, Pipe};
use crate::sink::{JsonLine, Sink, SinkStats};

/// The longest wait a collector's `Retry-After` can ask for; a longer one
/// is cut to this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// The `sink` label of the counters of spans and log records (one queue
/// holds both).
pub const SINK: &str = "otlp";

/// Lines of one request, at most: a collector's default limit is 4 MiB
/// of protobuf, which is smaller than the lines it was made from.
const MAX_BATCH_BYTES: usize = 1024 * 1024;

/// Why the OTLP exporter cannot start.
#[derive(Debug)]
#[non_exhaustive]
pub enum OtlpError {
    /// An `OTEL_*` variable holds a value that does not parse.
    Env {
        /// The variable.
        var: String,
        /// Its value, as far as it can be shown (headers never are).
        value: String,
        /// The form expected.
        expected: &'static str,
    },
    /// A signal's endpoint cannot be used.
    Endpoint {
        /// `traces`, `logs` or `metrics`.
        signal: &'static str,
        /// What is wrong with it.
        source: SinkError,
    },
    /// A configured header has a name or value no request can carry.
    Header {
        /// The header's name.
        name: String,
    },
    /// A worker could not start.
    Start(SinkError),
}

impl fmt::Display for OtlpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Env {
                var,
                value,
                expected,
            } => write!(f, "{var}={value:?} is not {expected}"),
            Self::Endpoint { signal, source } => write!(f, "the {signal} endpoint: {source}"),
            Self::Header { name } => write!(
                f,
                "header {name:?}: expected a token name and a value without control characters"
            ),
            Self::Start(e) => write!(f, "cannot start the OTLP exporter: {e}"),
        }
    }
}

impl std::error::Error for OtlpError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Endpoint { source, .. } | Self::Start(source) => Some(source),
            Self::Env { .. } | Self::Header { .. } => None,
        }
    }
}

/// The running exporter of spans and log records: a [`Sink`] that ships
/// every line as a log record (when logs are on) and whose
/// [`flush`](Sink::flush) drains both signals, and a [`CallConsumer`]
/// ([`call_consumer`](Self::call_consumer)) that turns calls into spans.
/// Clones share the workers, which stop once the last clone is dropped.
///
/// The builder wires it in; by hand, give the consumer and the sink to the
/// [`JsonLayer`](crate::log::JsonLayer):
///
/// ```no_run
/// use std::sync::Arc;
///
/// use observe_runtime::log::JsonLayer;
/// use observe_runtime::otlp::{OtlpConfig, OtlpExporter};
/// use tracing_subscriber::layer::SubscriberExt;
///
/// let exporter = OtlpExporter::start("billing", None, &OtlpConfig::new("http://127.0.0.1:4318"))?;
/// let mut layer = JsonLayer::new("billing").with_sink(exporter.clone());
/// if let Some(spans) = exporter.call_consumer() {
///     layer = layer.with_call_consumer(spans);
/// }
/// let subscriber = tracing_subscriber::registry().with(layer);
/// # drop(subscriber);
/// # Ok::<(), observe_runtime::otlp::OtlpError>(())
/// ```
#[derive(Clone)]
pub struct OtlpExporter {
    traces: Option<Arc<traces::SpanConsumer>>,
    /// The queue and worker of spans and log records, when either is on.
    pipe: Option<Pipe>,
    logs: bool,
}

impl fmt::Debug for OtlpExporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtlpExporter")
            .field("traces", &self.traces.is_some())
            .field("logs", &self.logs)
            .field("pipe", &self.pipe)
            .finish()
    }
}

impl OtlpExporter {
    /// Starts the worker of the spans and log records `config` asks for,
    /// for `service` at `version`: one queue and one thread for both. It
    /// connects in the background: a collector that is not there yet is
    /// not an error. A disabled configuration starts nothing.
    ///
    /// # Errors
    ///
    /// An endpoint that is not an `http[s]://` URL (https needs the `tls`
    /// feature and a usable CA), a header no request can carry, a zero
    /// queue capacity, or a worker thread that cannot start.
    pub fn start(
        service: &str,
        version: Option<&str>,
        config: &OtlpConfig,
    ) -> Result<Self, OtlpError> {
        let resource = resource::build(service, version, &config.resource);
        let mut lanes = Vec::new();
        let traces = config.exports(Signal::Traces);
        if traces {
            let client = Client::new(config.resolve(Signal::Traces)?);
            let encoder = traces::SpanEncoder::new(resource.clone());
            lanes.push(transport::Lane::new(client, encoder, traces::is_span_line));
        }
        let logs = config.exports(Signal::Logs);
        if logs {
            let client = Client::new(config.resolve(Signal::Logs)?);
            let encoder = logs::LogEncoder::new(resource);
            lanes.push(transport::Lane::new(client, encoder, logs::is_record_line));
        }
        let pipe = if lanes.is_empty() {
            None
        } else {
            let mut opts = Options::new(SINK, MAX_BATCH_BYTES);
            opts.capacity_bytes = config.capacity_bytes;
            (opts.backoff_initial, opts.backoff_max) = config.backoff;
            let transport = transport::LineTransport::new(lanes);
            Some(Pipe::start(&opts, transport).map_err(OtlpError::Start)?)
        };
        Ok(Self {
            traces: pipe
                .clone()
                .filter(|_| traces)
                .map(|p| Arc::new(traces::SpanConsumer::new(p, config.sampler))),
            pipe,
            logs,
        })
    }

    /// The consumer that makes spans, when traces are on.
    #[must_use]
    pub fn call_consumer(&self) -> Option<Arc<dyn CallConsumer>> {
        self.traces.clone().map(|c| c as Arc<dyn CallConsumer>)
    }

    /// The counts of spans and log records (each is a line of the one
    /// queue), when either is on.
    #[must_use]
    pub fn stats(&self) -> Option<SinkStats> {
        self.pipe.as_ref().map(Pipe::stats)
    }

    /// Whether log records are exported.
    #[must_use]
    pub fn exports_logs(&self) -> bool {
        self.logs
    }
}

impl Sink for OtlpExporter {
    fn name(&self) -> &str {
        "otlp"
    }

    fn write_json_line(&self, line: JsonLine<'_>) {
        if let (true, Some(pipe)) = (self.logs, &self.pipe) {
            logs::push(pipe, line);
        }
    }

    /// A call's log record is queued in the call's short form, which its
    /// span then reuses: no JSON is formatted for it.
    fn write_call(&self, call: &CallRecord<'_>, room: usize, _: Internal) -> bool {
        match (self.logs, &self.pipe) {
            (true, Some(pipe)) => logs::push_call(pipe, call, room),
            // Lines go nowhere: nothing to format.
            _ => true,
        }
    }

    /// Flushes spans and log records: the whole flush takes at most
    /// `timeout`.
    fn flush(&self, timeout: Duration) -> bool {
        self.pipe.as_ref().is_none_or(|p| p.flush(timeout))
    }
}

/// Starts the metrics exporter `config` asks for, reading the store
/// behind `metrics`; `None` when it is off, or not built in.
///
/// # Errors
///
/// The metrics endpoint cannot be used, or its thread cannot start.
pub(crate) fn start_metrics(
    config: &OtlpConfig,
    service: &str,
    version: Option<&str>,
    metrics: Option<&MetricsHandle>,
) -> Result<Option<Box<dyn Background>>, OtlpError> {
    if !config.exports(Signal::Metrics) {
        return Ok(None);
    }
    // Without a recorder there are no operation metrics to export.
    let Some(handle) = metrics else {
        return Ok(None);
    };
    let resource = resource::build(service, version, &config.resource);
    let mut client = Client::new(config.resolve(Signal::Metrics)?);
    // Runs on the exporter's thread: one attempt, within the export
    // timeout and before the deadline the exporter gives (the next
    // export, or the end of its stop). A failed export is not retried:
    // the next one carries everything it did.
    let post = move |body: Vec<u8>, deadline: std::time::Instant| {
        let deadline = Deadline::at(deadline).min_after(client.timeout());
        match client.export(&body, deadline) {
            Ok(Outcome::Accepted { rejected: 0, .. }) => Ok(()),
            Ok(Outcome::Accepted { rejected, message }) => Err(format!(
                "the collector refused {rejected} data points: {}",
                message.unwrap_or_default()
            )),
            Ok(Outcome::Rejected { why } | Outcome::Retry { why, .. }) => Err(why),
            Err(e) => Err(e.to_string()),
        }
    };
    let exporter = metrics::start(
        Arc::clone(handle.native()),
        resource,
        config.metric_interval(),
        post,
    )
    .map_err(|e| OtlpError::Start(SinkError::io("cannot start the OTLP metrics thread", e)))?;
    Ok(Some(Box::new(exporter)))
}

#[cfg(test)]
mod tests {
    use super::transport::Encode;
    use super::*;
    use crate::base::alloc_count::counted;
    use crate::sink::worker::Fate;

    /// Allocations `f` makes on this thread.
    fn allocations(f: impl FnOnce()) -> u64 {
        counted(f).allocs
    }

    /// Encodes `lines` four times over; the allocations of the last time.
    fn steady(encoder: &mut impl Encode, lines: &[&[u8]]) -> u64 {
        let mut out = Vec::new();
        let mut fates = vec![Fate::Sent; lines.len()];
        for _ in 0..3 {
            out.clear();
            encoder.encode(lines, &mut fates, &mut out);
        }
        assert!(fates.iter().all(|f| *f == Fate::Sent), "{fates:?}");
        out.clear();
        allocations(|| encoder.encode(lines, &mut fates, &mut out))
    }

    #[test]
    fn a_steady_stream_of_one_shape_allocates_nothing() {
        let resource = resource::build("svc", None, &[]);
        let record = br#"7 {"timestamp":"x","level":"INFO","service":"svc","message":"op completed","correlation_id":"req_1","trace_id":"0af7651916cd43dd8448eb211c80319c","span_id":"b7ad6b7169203331","context":{"entity":"s1","n":2},"performance":{"operation":"op","duration_ms":1.5,"status":"success"}}"#;
        let records: Vec<&[u8]> = vec![record; 200];
        let mut logs = logs::LogEncoder::new(resource.clone());
        assert_eq!(steady(&mut logs, &records), 0, "log records");

        // Failed calls (a message, an error type, context fields) and
        // successes, each a stream of its own.
        let spans = traces::test_lines(400);
        for (shape, first) in [("failed calls' spans", 0), ("successes' spans", 1)] {
            let one: Vec<&[u8]> = spans
                .iter()
                .skip(first)
                .step_by(2)
                .map(Vec::as_slice)
                .collect();
            let mut encoder = traces::SpanEncoder::new(resource.clone());
            assert_eq!(steady(&mut encoder, &one), 0, "{shape}");
            // The same calls' log records, from the same forms behind `L`.
            let records: Vec<Vec<u8>> =
                one.iter().map(|span| [b"L", &span[1..]].concat()).collect();
            let records: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
            let mut logs = logs::LogEncoder::new(resource.clone());
            assert_eq!(steady(&mut logs, &records), 0, "{shape} as log records");
        }
    }
}
