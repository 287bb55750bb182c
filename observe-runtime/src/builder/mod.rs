//! `Observe::builder(service)...install()`: one call in `main` that wires
//! the JSON log layer, its sinks and the Prometheus recorder.
//!
//! Every builder method lives here, whatever it configures: the sinks'
//! shortcuts in `sinks.rs`, the metrics back-ends in `metrics.rs`, the
//! environment in `env.rs`. The components themselves know nothing of the
//! builder.

mod build_info;
mod env;
// Shadows the `metrics` crate in this file, which therefore says `::metrics`.
mod metrics;
mod objectives;
mod otlp;
mod panic_hook;
mod reload;
mod sinks;
mod volume;

use std::fmt;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;

use crate::base::supervise::{self, Supervised};
use crate::base::{Background, clock, names};
use crate::correlation::{self, IdFormat};
use crate::log::{self, JsonLayer, Redactor};
use crate::recorder::{self as observe_metrics, MetricsHandle, NativeMetrics, NativeRecorder};
use crate::sink::{FanOut, Sink, StdoutSink};

/// How long dropping the [`ObserveGuard`] waits for sinks to drain.
pub const DEFAULT_FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// Entry point: `Observe::builder("my-service")`.
#[derive(Debug, Clone, Copy)]
pub struct Observe;

impl Observe {
    /// Starts configuring observability for `service`.
    ///
    /// ```no_run
    /// let _guard = observe_runtime::Observe::builder("websocket-ingestion")
    ///     .install()
    ///     .expect("nothing else installed a subscriber or recorder");
    /// ```
    pub fn builder(service: impl Into<String>) -> ObserveBuilder {
        ObserveBuilder {
            service: service.into(),
            sinks: Vec::new(),
            filter: None,
            prometheus: true,
            buckets: vec![(
                names::OPERATION_DURATION_SECONDS.to_owned(),
                names::DEFAULT_DURATION_BUCKETS.to_vec(),
            )],
            max_line_bytes: log::DEFAULT_MAX_LINE_BYTES,
            redactor: None,
            id_format: IdFormat::default(),
            flush_timeout: DEFAULT_FLUSH_TIMEOUT,
            flush_on_panic: cfg!(panic = "abort"),
            starters: Starters::default(),
            recorder_layers: RecorderLayers::default(),
            build_info: build_info::BuildInfo::default(),
            exemplars: true,
            objectives: objectives::Configured::default(),
            volume: Vec::new(),
            hold: None,
            reload_file: None,
            reload_endpoint: None,
            otlp: otlp::Settings::default(),
            tracing_spans: false,
        }
    }
}

/// What a component started by [`ObserveBuilder::on_install`] may use.
#[derive(Debug)]
#[non_exhaustive]
pub struct InstallContext<'a> {
    /// The service name.
    pub service: &'a str,
    /// Renders the Prometheus exposition, when Prometheus is on.
    pub prometheus: Option<&'a MetricsHandle>,
    /// `POST /config`, for the metrics listener to serve, when asked for.
    #[cfg_attr(not(feature = "prometheus-listener"), allow(dead_code))]
    reload_endpoint: Option<&'a reload::ReloadEndpoint>,
}

type Starter =
    Box<dyn FnOnce(&InstallContext<'_>) -> Result<Box<dyn Background>, InstallError> + Send>;

/// Components to start at install, in the order they were added.
#[derive(Default)]
struct Starters(Vec<Starter>);

impl fmt::Debug for Starters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{} component(s)]", self.0.len())
    }
}

/// The recorder observe installs, as [`ObserveBuilder::wrap_recorder`]
/// hands it to a wrapper.
pub type BoxedRecorder = Box<dyn ::metrics::Recorder + Send + Sync>;

type RecorderLayer = Box<dyn FnOnce(BoxedRecorder) -> BoxedRecorder + Send>;

/// Wrappers of the installed recorder, innermost first.
#[derive(Default)]
struct RecorderLayers(Vec<RecorderLayer>);

impl fmt::Debug for RecorderLayers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{} layer(s)]", self.0.len())
    }
}

/// Configures and installs observe; made by [`Observe::builder`].
#[derive(Debug)]
#[must_use = "nothing is installed until `install()` is called"]
pub struct ObserveBuilder {
    service: String,
    sinks: Vec<Arc<dyn Sink>>,
    filter: Option<Targets>,
    prometheus: bool,
    buckets: Vec<(String, Vec<f64>)>,
    max_line_bytes: usize,
    redactor: Option<Redactor>,
    id_format: IdFormat,
    flush_timeout: Duration,
    flush_on_panic: bool,
    starters: Starters,
    recorder_layers: RecorderLayers,
    build_info: build_info::BuildInfo,
    exemplars: bool,
    objectives: objectives::Configured,
    /// Log volume settings, applied at install in order.
    volume: Vec<(String, crate::volume::Setting)>,
    /// Hold-until-root bounds; `None`: lines are written as they come.
    hold: Option<crate::log::hold::Bounds>,
    /// Read at install and on each SIGHUP.
    reload_file: Option<std::path::PathBuf>,
    /// `POST /config` on the metrics listener.
    reload_endpoint: Option<reload::ReloadEndpoint>,
    otlp: otlp::Settings,
    /// Whether monitored calls also open `tracing` spans.
    tracing_spans: bool,
}

impl ObserveBuilder {
    /// Starts a component during [`install`](Self::install), before anything
    /// global is installed; if any component fails, the ones already started
    /// are stopped and nothing is installed. The returned [`Background`] is
    /// stopped when the guard drops, after the sinks are flushed; what it
    /// logs while stopping is flushed after it, within the flush timeout.
    pub fn on_install<F>(mut self, start: F) -> Self
    where
        F: FnOnce(&InstallContext<'_>) -> Result<Box<dyn Background>, InstallError>
            + Send
            + 'static,
    {
        self.starters.0.push(Box::new(start));
        self
    }

    /// Wraps the Prometheus recorder before it is installed, e.g. in a
    /// fan-out that also feeds another back-end, so both see the same
    /// data. Wrappers apply in the order added (the last is outermost);
    /// with Prometheus off nothing is installed and they are not called.
    pub fn wrap_recorder<F>(mut self, wrap: F) -> Self
    where
        F: FnOnce(BoxedRecorder) -> BoxedRecorder + Send + 'static,
    {
        self.recorder_layers.0.push(Box::new(wrap));
        self
    }

    /// Adds a sink. Without any, lines go to standard output.
    pub fn sink(mut self, sink: impl Sink) -> Self {
        self.sinks.push(Arc::new(sink));
        self
    }

    /// Logs events at `level` and above (default: `INFO`, or the
    /// `OBSERVE_LOG` / `RUST_LOG` environment variable when set).
    pub fn level(mut self, level: LevelFilter) -> Self {
        self.filter = Some(Targets::new().with_default(level));
        self
    }

    /// Filters events by target, e.g. `"info,my_crate::db=warn"` parsed
    /// as a [`Targets`].
    pub fn filter(mut self, targets: Targets) -> Self {
        self.filter = Some(targets);
        self
    }

    /// Installs the Prometheus recorder (default `true`). Without it, the
    /// metrics facade is left alone for another recorder.
    pub fn prometheus(mut self, enabled: bool) -> Self {
        self.prometheus = enabled;
        self
    }

    /// Sets the histogram buckets of the metric named `metric`.
    ///
    /// Empty bucket lists are ignored: a histogram without buckets would be
    /// exported as a summary, which cannot be aggregated across instances.
    pub fn histogram_buckets(mut self, metric: &str, buckets: &[f64]) -> Self {
        if !buckets.is_empty() {
            self.buckets.retain(|(m, _)| m != metric);
            self.buckets.push((metric.to_owned(), buckets.to_vec()));
        }
        self
    }

    /// Caps each log line at `bytes` (default 32 KiB; values below 1024
    /// count as 1024, so a cut line still has room for its schema).
    pub fn max_line_bytes(mut self, bytes: usize) -> Self {
        self.max_line_bytes = bytes;
        self
    }

    /// Sets which keys count as secret: context values under them, and the
    /// values of such `key=value` pairs inside rendered values and error
    /// texts, are written as `"[REDACTED]"`.
    ///
    /// [`Redactor::new`] adds keys to the defaults (`password`, `token`,
    /// `session`, ... see [`Redactor`]), which is what is usually wanted:
    ///
    /// ```
    /// use observe_runtime::Observe;
    /// use observe_runtime::log::Redactor;
    ///
    /// let builder = Observe::builder("billing").redact(Redactor::new(["ssn", "iban"]));
    /// # drop(builder);
    /// ```
    ///
    /// Dropping the defaults takes [`redact_only`](Self::redact_only).
    pub fn redact(mut self, redactor: Redactor) -> Self {
        self.redactor = Some(redactor);
        self
    }

    /// Makes exactly `keys` secret, dropping the defaults: the explicit way
    /// to stop redacting `password`, `token` and the rest of the built-in
    /// list. Short for `redact(Redactor::replacing(keys))`.
    ///
    /// ```
    /// use observe_runtime::Observe;
    ///
    /// // Only `ssn` is redacted; a `password` field would be logged.
    /// let builder = Observe::builder("billing").redact_only(["ssn"]);
    /// # drop(builder);
    /// ```
    pub fn redact_only<I, S>(self, keys: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.redact(Redactor::replacing(keys))
    }

    /// Chooses the form of generated correlation IDs.
    pub fn id_format(mut self, format: IdFormat) -> Self {
        self.id_format = format;
        self
    }

    /// How long dropping the guard may take (default 5 s): the sinks
    /// drain, then each component stops (the InfluxDB push delivers its
    /// last interval, the listener finishes its requests), all within this
    /// one deadline. Lines and points still undelivered then are counted as
    /// dropped, and a thread still in an exchange with a peer is left to
    /// that exchange's own deadline rather than waited for. Any duration is
    /// accepted: `Duration::MAX` means no limit.
    pub fn flush_timeout(mut self, timeout: Duration) -> Self {
        self.flush_timeout = timeout;
        self
    }

    /// Installs a panic hook that writes an `ERROR` line for the panic
    /// (thread, message, location, with the correlation ID of the scope it
    /// happened in) and flushes the sinks, for at most the flush timeout or
    /// 2 s, before the hook installed before it runs.
    ///
    /// On by default when the program is built with `panic = "abort"`:
    /// there a panic ends the process at once, so without the hook neither
    /// the panic's line nor the lines still queued would leave it. With
    /// unwinding, the monitored call's own `"{op} panicked"` line and the
    /// guard's drop cover it, and the hook is off unless asked for.
    ///
    /// ```no_run
    /// let _guard = observe_runtime::Observe::builder("ingestor")
    ///     .flush_on_panic(true)
    ///     .install()?;
    /// # Ok::<(), observe_runtime::InstallError>(())
    /// ```
    pub fn flush_on_panic(mut self, enabled: bool) -> Self {
        self.flush_on_panic = enabled;
        self
    }

    /// Makes each monitored call also open a `tracing` span (default
    /// `false`; also `OBSERVE_TRACING_SPANS`), current while the call
    /// runs, so layers that build traces from spans (tracing-opentelemetry)
    /// see monitored calls as children of the application's own
    /// `#[instrument]` spans. See [`set_tracing_spans`](crate::set_tracing_spans)
    /// for the span's name and fields. Off, a call pays nothing for it.
    pub fn tracing_spans(mut self, enabled: bool) -> Self {
        self.tracing_spans = enabled;
        self
    }

    /// Installs the global `tracing` subscriber and (unless disabled) the
    /// global Prometheus recorder.
    ///
    /// # Errors
    ///
    /// Fails, installing nothing and stopping every component it started,
    /// if a global subscriber or (with Prometheus on) a global metrics
    /// recorder is already installed, if the histogram buckets are invalid,
    /// or if a component cannot start. (Only another thread installing a
    /// subscriber in the instant between observe's check and its own
    /// install could leave the recorder installed without the subscriber.)
    pub fn install(mut self) -> Result<ObserveGuard, InstallError> {
        if tracing_core::dispatcher::has_been_set() {
            return Err(InstallError::SubscriberAlreadySet);
        }
        if self.prometheus && global_recorder_set() {
            return Err(InstallError::RecorderAlreadySet);
        }
        let objectives = objectives::resolve(&self.objectives, self.duration_buckets())?;
        let reloaded = self.reload_file_settings()?;
        self.start_sighup_reload();
        let prometheus = if self.prometheus {
            Some(self.build_prometheus(&objectives)?)
        } else {
            None
        };
        let mut background = self.start_components(prometheus.as_ref().map(|(_, h)| h))?;
        let otlp = match otlp::start(&self, prometheus.as_ref().map(|(_, h)| h)) {
            Ok((otlp, metrics)) => {
                background.extend(metrics);
                otlp
            }
            Err(e) => {
                stop_all(background);
                return Err(e);
            }
        };
        if let Err(e) = self.check_reload_served() {
            stop_all(background);
            return Err(e);
        }

        // The recorder goes first: its check above cannot see every
        // recorder (a zero-sized one looks like none), and a refused
        // recorder must leave no subscriber behind, which cannot be undone.
        let handle = match prometheus {
            Some((recorder, handle)) => {
                let installed = if self.recorder_layers.0.is_empty() {
                    let installed = ::metrics::set_global_recorder(recorder).is_ok();
                    if installed {
                        // Nothing wraps it: calls may write its store directly.
                        observe_metrics::note_native_store(handle.native());
                    }
                    installed
                } else {
                    let wrapped = std::mem::take(&mut self.recorder_layers.0)
                        .into_iter()
                        .fold(Box::new(recorder) as BoxedRecorder, |r, wrap| wrap(r));
                    let installed = ::metrics::set_global_recorder(wrapped).is_ok();
                    if installed {
                        observe_metrics::note_exemplar_store(handle.native());
                    }
                    installed
                };
                if !installed {
                    stop_all(background);
                    return Err(InstallError::RecorderAlreadySet);
                }
                Some(handle)
            }
            None => None,
        };

        let configured: Option<Arc<dyn Sink>> = match self.sinks.len() {
            0 => None,
            1 => Some(Arc::clone(&self.sinks[0])),
            _ => Some(Arc::new(FanOut::new(self.sinks.clone()))),
        };
        let stdout = || match StdoutSink::new() {
            Ok(stdout) => Ok(Arc::new(stdout) as Arc<dyn Sink>),
            Err(e) => Err(InstallError::component("stdout sink", e)),
        };
        let sink = match otlp.sink(configured, stdout) {
            Ok(sink) => sink,
            Err(e) => {
                stop_all(background);
                return Err(e);
            }
        };
        let filter = self.filter.clone().unwrap_or_else(filter_from_env);
        let layer = otlp.layer(
            JsonLayer::new(&self.service)
                .with_shared_sink(Arc::clone(&sink))
                .with_max_line_bytes(self.max_line_bytes),
        );
        let subscriber = tracing_subscriber::registry().with(filter).with(layer);
        if tracing::subscriber::set_global_default(subscriber).is_err() {
            stop_all(background);
            return Err(InstallError::SubscriberAlreadySet);
        }

        if let Some(r) = self.redactor {
            log::set_redactor(r);
        }
        if self.flush_on_panic {
            panic_hook::install(&sink, self.flush_timeout);
        }
        correlation::set_id_format(self.id_format);
        crate::operation::set_tracing_spans(self.tracing_spans);
        crate::base::clock::warm_up();
        // Code and environment first, then the reload file over them, as
        // a reload applies it.
        for (operation, setting) in self.volume.iter().chain(&reloaded) {
            crate::volume::set(operation, setting);
        }
        crate::log::hold::configure(self.hold);

        let upkeep = handle.as_ref().map(|handle| {
            observe_metrics::note_global_recorder();
            describe_metrics();
            Upkeep::start(handle.prometheus().clone())
        });
        Ok(ObserveGuard {
            prometheus: handle,
            sink,
            upkeep,
            background,
            flush_timeout: self.flush_timeout,
        })
    }

    /// Starts every component; on a failure stops those already started.
    fn start_components(
        &mut self,
        prometheus: Option<&MetricsHandle>,
    ) -> Result<Vec<Box<dyn Background>>, InstallError> {
        let ctx = InstallContext {
            service: &self.service,
            prometheus,
            reload_endpoint: self.reload_endpoint.as_ref(),
        };
        let mut started: Vec<Box<dyn Background>> = Vec::new();
        for start in std::mem::take(&mut self.starters.0) {
            match start(&ctx) {
                Ok(b) => started.push(b),
                Err(e) => {
                    stop_all(started);
                    return Err(e);
                }
            }
        }
        Ok(started)
    }

    /// The bounds of `operation_duration_seconds`, in seconds.
    fn duration_buckets(&self) -> &[f64] {
        self.buckets
            .iter()
            .find(|(m, _)| m == names::OPERATION_DURATION_SECONDS)
            .map_or(names::DEFAULT_DURATION_BUCKETS, |(_, b)| b.as_slice())
    }

    /// The Prometheus recorder, wrapped so the operation duration
    /// histogram is kept natively, and the handle that renders both.
    fn build_prometheus(
        &self,
        objectives: &std::collections::BTreeMap<String, crate::slo::Objective>,
    ) -> Result<
        (
            NativeRecorder<metrics_exporter_prometheus::PrometheusRecorder>,
            MetricsHandle,
        ),
        InstallError,
    > {
        let mut builder =
            PrometheusBuilder::new().add_global_label(names::LABEL_SERVICE, &self.service);
        for (metric, buckets) in &self.buckets {
            builder = builder
                .set_buckets_for_metric(Matcher::Full(metric.clone()), buckets)
                .map_err(|e| InstallError::Prometheus(Box::new(e)))?;
        }
        let mut native = NativeMetrics::new(
            self.duration_buckets(),
            vec![(names::LABEL_SERVICE.to_owned(), self.service.clone())],
        );
        if !self.exemplars {
            native = native.without_exemplars();
        }
        self.build_info.publish(&native);
        objectives::publish(objectives, &native);
        let native = Arc::new(native);
        let recorder = builder.build_recorder();
        let handle = MetricsHandle::new(recorder.handle(), Arc::clone(&native));
        Ok((NativeRecorder::new(recorder, native), handle))
    }
}

/// Stops components an install started before it failed, newest first.
fn stop_all(started: Vec<Box<dyn Background>>) {
    for b in started.into_iter().rev() {
        b.stop(Duration::ZERO);
    }
}

/// Reads `OBSERVE_LOG`, then `RUST_LOG`, as a [`Targets`] filter; `INFO`
/// when neither is set or parses.
fn filter_from_env() -> Targets {
    ["OBSERVE_LOG", "RUST_LOG"]
        .iter()
        .find_map(|v| std::env::var(v).ok()?.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(LevelFilter::INFO))
}

fn global_recorder_set() -> bool {
    // A fresh thread sees the global recorder, not a thread-local one.
    std::thread::spawn(|| ::metrics::with_recorder(|r| std::mem::size_of_val(r) != 0))
        .join()
        .unwrap_or(false)
}

fn describe_metrics() {
    use ::metrics::Unit;
    ::metrics::describe_counter!(
        names::OPERATION_CALLS_TOTAL,
        Unit::Count,
        "Calls of monitored operations by outcome."
    );
    ::metrics::describe_histogram!(
        names::OPERATION_DURATION_SECONDS,
        Unit::Seconds,
        "Duration of monitored calls, first poll to completion for async calls."
    );
    ::metrics::describe_counter!(
        names::OPERATION_ERRORS_TOTAL,
        Unit::Count,
        "Monitored calls that returned an error, by error type."
    );
    ::metrics::describe_gauge!(
        names::OPERATION_IN_FLIGHT,
        Unit::Count,
        "Monitored calls currently running."
    );
    ::metrics::describe_counter!(
        names::LOG_LINES_DROPPED_TOTAL,
        Unit::Count,
        "Log lines a sink could not deliver."
    );
    ::metrics::describe_counter!(
        names::COMPONENT_RESTARTS_TOTAL,
        Unit::Count,
        "Background components (sink workers, InfluxDB push, system sampler, metrics listener, Prometheus upkeep) restarted after a panic."
    );
}

/// Why [`ObserveBuilder::install`] failed.
///
/// The underlying error, where there is one (a sink's [`SinkError`](crate::sink::SinkError),
/// the listener's `io::Error`), is the [`source`](std::error::Error::source).
#[derive(Debug)]
#[non_exhaustive]
pub enum InstallError {
    /// A global `tracing` subscriber was already installed.
    SubscriberAlreadySet,
    /// A global `metrics` recorder was already installed.
    RecorderAlreadySet,
    /// The Prometheus recorder could not be built (e.g. invalid buckets).
    Prometheus(Box<dyn std::error::Error + Send + Sync>),
    /// A component added with [`ObserveBuilder::on_install`] could not start.
    Component {
        /// What the component is, e.g. `prometheus listener`.
        component: String,
        /// Why it could not start, e.g. `address 127.0.0.1:9090 in use`
        /// (a message converts with `.into()`).
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// An operation's objective cannot be used: invalid, its latency
    /// threshold not a bucket bound, or two objectives of one name differ.
    Objective {
        /// The operation the objective is attached to.
        operation: String,
        /// What is wrong with it.
        source: crate::slo::ObjectiveError,
    },
    /// The OTLP exporter cannot start: an endpoint or header it cannot
    /// use (feature `otlp`).
    #[cfg(feature = "otlp")]
    Otlp(crate::otlp::OtlpError),
}

impl InstallError {
    /// A component that could not start: `component` names it, `source`
    /// says why (an error, or a message).
    ///
    /// ```
    /// use observe_runtime::InstallError;
    ///
    /// let e = InstallError::component("test listener", "port in use");
    /// assert_eq!(e.to_string(), "cannot start the test listener: port in use");
    /// ```
    pub fn component(
        component: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::Component {
            component: component.into(),
            source: source.into(),
        }
    }
}

impl fmt::Display for InstallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SubscriberAlreadySet => f.write_str(
                "a global tracing subscriber is already installed; observe must be installed once, before any other subscriber",
            ),
            Self::RecorderAlreadySet => f.write_str(
                "a global metrics recorder is already installed; install observe with .prometheus(false) to keep it",
            ),
            Self::Prometheus(e) => write!(f, "cannot build the Prometheus recorder: {e}"),
            Self::Component { component, source } => {
                write!(f, "cannot start the {component}: {source}")
            }
            Self::Objective { operation, source } => {
                write!(f, "operation `{operation}`: {source}")
            }
            #[cfg(feature = "otlp")]
            Self::Otlp(e) => write!(f, "OTLP exporter: {e}"),
        }
    }
}

impl std::error::Error for InstallError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::SubscriberAlreadySet | Self::RecorderAlreadySet => None,
            Self::Prometheus(e) => Some(e.as_ref()),
            Self::Component { source, .. } => Some(source.as_ref()),
            Self::Objective { source, .. } => Some(source),
            #[cfg(feature = "otlp")]
            Self::Otlp(e) => Some(e),
        }
    }
}

/// Keeps observe installed; dropping it flushes every sink (bounded by the
/// flush timeout) and stops background work.
#[must_use = "dropping the guard at once flushes and stops background work"]
pub struct ObserveGuard {
    prometheus: Option<MetricsHandle>,
    sink: Arc<dyn Sink>,
    upkeep: Option<Upkeep>,
    background: Vec<Box<dyn Background>>,
    flush_timeout: Duration,
}

impl fmt::Debug for ObserveGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObserveGuard")
            .field("prometheus", &self.prometheus.is_some())
            .field("sink", &self.sink)
            .field("background", &self.background)
            .finish_non_exhaustive()
    }
}

impl ObserveGuard {
    /// The Prometheus text exposition of every metric, or `None` when the
    /// Prometheus recorder is off.
    #[must_use]
    pub fn render(&self) -> Option<String> {
        self.prometheus.as_ref().map(MetricsHandle::render)
    }

    /// The handle that renders the exposition, to serve `/metrics` from
    /// your own server.
    #[must_use]
    pub fn prometheus_handle(&self) -> Option<&MetricsHandle> {
        self.prometheus.as_ref()
    }

    /// Delivers every buffered line, waiting at most `timeout`; `true` if
    /// nothing is left undelivered.
    pub fn flush(&self, timeout: Duration) -> bool {
        self.sink.flush(timeout)
    }
}

impl Drop for ObserveGuard {
    fn drop(&mut self) {
        // One deadline for everything: the sinks, then each component,
        // then the lines components wrote while stopping (a push's last
        // failure), each get what the ones before left.
        let deadline = clock::deadline_after(self.flush_timeout);
        let left = || deadline.saturating_duration_since(Instant::now());
        self.sink.flush(left());
        for b in std::mem::take(&mut self.background).into_iter().rev() {
            b.stop(left());
        }
        self.sink.flush(left());
        if let Some(u) = self.upkeep.take() {
            u.stop(deadline);
        }
    }
}

/// Drains the Prometheus recorder's histogram buffers periodically, so
/// they stay bounded even when nothing scrapes.
struct Upkeep {
    stop: mpsc::Sender<()>,
    /// `None` if the thread could not start: rendering still drains the
    /// buffers.
    thread: Option<Supervised>,
}

impl Upkeep {
    const INTERVAL: Duration = Duration::from_secs(5);

    fn start(handle: PrometheusHandle) -> Self {
        let (stop, rx) = mpsc::channel::<()>();
        let thread = supervise::spawn(
            "observe-prometheus-upkeep".into(),
            "prometheus upkeep".into(),
            move |restarts| {
                let mut wait = Self::INTERVAL;
                if restarts > 0 {
                    wait = supervise::restart_delay(restarts);
                }
                while let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(wait) {
                    handle.run_upkeep();
                    wait = Self::INTERVAL;
                }
            },
        )
        .ok();
        Self { stop, thread }
    }

    fn stop(self, deadline: Instant) {
        let _ = self.stop.send(());
        if let Some(thread) = self.thread {
            let _ = thread.join_until(Some(deadline));
        }
    }
}
