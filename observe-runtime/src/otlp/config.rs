//! What the exporter is told: where each signal goes, with which headers,
//! timeout and compression, which calls become spans, and the standard
//! `OTEL_*` variables that say the same.

use std::fmt;
use std::time::Duration;

use super::OtlpError;
use crate::base::setting::{self, Shown, boolean};
use crate::net::conn::NetOptions;
use crate::net::http::{self, Target};

/// The endpoint the OpenTelemetry specification gives as the default.
pub const DEFAULT_ENDPOINT: &str = "http://localhost:4318";
/// How long one export request may take, from connecting to the last
/// byte of the answer.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often metrics are exported.
pub const DEFAULT_METRIC_EXPORT_INTERVAL: Duration = Duration::from_secs(60);
/// The shortest metrics interval taken: a shorter one (zero included)
/// would have the exporter encode and post back to back.
pub const MIN_METRIC_EXPORT_INTERVAL: Duration = Duration::from_millis(100);
/// The shortest export timeout taken: a zero one could never connect.
pub const MIN_TIMEOUT: Duration = Duration::from_millis(1);

/// One of the three kinds of telemetry, each with its own URL path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signal {
    Traces,
    Logs,
    Metrics,
}

impl Signal {
    pub(crate) const ALL: [Signal; 3] = [Self::Traces, Self::Logs, Self::Metrics];

    pub(crate) const fn index(self) -> usize {
        match self {
            Self::Traces => 0,
            Self::Logs => 1,
            Self::Metrics => 2,
        }
    }

    /// The path appended to a base endpoint.
    pub(crate) const fn path(self) -> &'static str {
        match self {
            Self::Traces => "/v1/traces",
            Self::Logs => "/v1/logs",
            Self::Metrics => "/v1/metrics",
        }
    }

    /// The signal's part of a variable name: `OTEL_EXPORTER_OTLP_{this}_ENDPOINT`.
    const fn env(self) -> &'static str {
        match self {
            Self::Traces => "TRACES",
            Self::Logs => "LOGS",
            Self::Metrics => "METRICS",
        }
    }

    pub(crate) const fn name(self) -> &'static str {
        match self {
            Self::Traces => "traces",
            Self::Logs => "logs",
            Self::Metrics => "metrics",
        }
    }
}

/// Whether request bodies are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Compression {
    /// Sent as they are.
    #[default]
    None,
    /// `Content-Encoding: gzip`.
    Gzip,
}

/// Which monitored calls become spans.
///
/// The decision is a function of the trace ID alone (for the root of a
/// trace) or of the inbound `traceparent`'s sampled flag (`ParentBased*`,
/// for a request that came with one), so every call of one request, in
/// every service, is kept or dropped together.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Sampler {
    /// Every call.
    AlwaysOn,
    /// No call.
    AlwaysOff,
    /// This fraction of traces (0.0 to 1.0), by trace ID.
    TraceIdRatio(f64),
    /// The inbound parent's decision, else every call.
    ParentBasedAlwaysOn,
    /// The inbound parent's decision, else no call.
    ParentBasedAlwaysOff,
    /// The inbound parent's decision, else this fraction of traces.
    ParentBasedTraceIdRatio(f64),
}

impl Default for Sampler {
    /// `ParentBasedAlwaysOn`, the specification's default.
    fn default() -> Self {
        Self::ParentBasedAlwaysOn
    }
}

/// Where and how the OTLP/HTTP exporter sends traces, logs and metrics.
///
/// A base [`endpoint`](Self::endpoint) gets `/v1/traces`, `/v1/logs` and
/// `/v1/metrics` appended; a per-signal endpoint
/// ([`traces_endpoint`](Self::traces_endpoint) and the like) is used as
/// it is. Requests are protobuf (`application/x-protobuf`), each with one
/// deadline, the [`timeout`](Self::timeout).
///
/// ```
/// use std::time::Duration;
///
/// use observe_runtime::otlp::{Compression, OtlpConfig, Sampler};
///
/// let config = OtlpConfig::new("http://collector.internal:4318")
///     .header("x-api-key", "secret")
///     .compression(Compression::Gzip)
///     .timeout(Duration::from_secs(5))
///     .sampler(Sampler::ParentBasedTraceIdRatio(0.25))
///     .metrics(false);
/// let _guard = observe_runtime::Observe::builder("billing").otlp_config(config);
/// ```
///
/// [`from_env`](Self::from_env) reads the same from the standard `OTEL_*`
/// variables.
#[derive(Clone)]
#[must_use]
pub struct OtlpConfig {
    pub(crate) endpoint: String,
    pub(crate) signal_endpoints: [Option<String>; 3],
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) signal_headers: [Option<Vec<(String, String)>>; 3],
    pub(crate) timeout: Duration,
    pub(crate) signal_timeouts: [Option<Duration>; 3],
    pub(crate) compression: Compression,
    pub(crate) signal_compression: [Option<Compression>; 3],
    pub(crate) metric_export_interval: Duration,
    pub(crate) sampler: Sampler,
    pub(crate) signals: [bool; 3],
    pub(crate) disabled: bool,
    pub(crate) resource: Vec<(String, String)>,
    pub(crate) capacity_bytes: usize,
    pub(crate) backoff: (Duration, Duration),
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<crate::net::TlsConfig>,
}

impl fmt::Debug for OtlpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Header values are often API keys, URLs may hold a password.
        let masked = |h: &[(String, String)]| -> Vec<String> {
            h.iter().map(|(k, _)| format!("{k}: ***")).collect()
        };
        f.debug_struct("OtlpConfig")
            .field("endpoint", &http::mask_url(&self.endpoint))
            .field(
                "signal_endpoints",
                &self
                    .signal_endpoints
                    .iter()
                    .map(|e| e.as_deref().map(http::mask_url))
                    .collect::<Vec<_>>(),
            )
            .field("headers", &masked(&self.headers))
            .field("timeout", &self.timeout)
            .field("compression", &self.compression)
            .field("metric_export_interval", &self.metric_export_interval)
            .field("sampler", &self.sampler)
            .field("signals", &self.signals)
            .field("disabled", &self.disabled)
            .field("resource", &self.resource)
            .finish_non_exhaustive()
    }
}

impl Default for OtlpConfig {
    /// Every signal to [`DEFAULT_ENDPOINT`].
    fn default() -> Self {
        Self::new(DEFAULT_ENDPOINT)
    }
}

impl OtlpConfig {
    /// Every signal to the collector at `endpoint`
    /// (`http[s]://host:port[/prefix]`, https with the `tls` feature).
    /// The URL is checked when the exporter starts.
    pub fn new(endpoint: impl Into<String>) -> Self {
        Self {
            endpoint: endpoint.into(),
            signal_endpoints: Default::default(),
            headers: Vec::new(),
            signal_headers: Default::default(),
            timeout: DEFAULT_TIMEOUT,
            signal_timeouts: [None; 3],
            compression: Compression::None,
            signal_compression: [None; 3],
            metric_export_interval: DEFAULT_METRIC_EXPORT_INTERVAL,
            sampler: Sampler::default(),
            signals: [true; 3],
            disabled: false,
            resource: Vec::new(),
            capacity_bytes: crate::sink::DEFAULT_CAPACITY_BYTES,
            backoff: (Duration::from_millis(100), Duration::from_secs(5)),
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// The base endpoint: each signal's path is appended to it.
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = endpoint.into();
        self
    }

    /// Where spans go, used as it is (no path appended).
    pub fn traces_endpoint(mut self, url: impl Into<String>) -> Self {
        self.signal_endpoints[Signal::Traces.index()] = Some(url.into());
        self
    }

    /// Where log records go, used as it is.
    pub fn logs_endpoint(mut self, url: impl Into<String>) -> Self {
        self.signal_endpoints[Signal::Logs.index()] = Some(url.into());
        self
    }

    /// Where metrics go, used as it is.
    pub fn metrics_endpoint(mut self, url: impl Into<String>) -> Self {
        self.signal_endpoints[Signal::Metrics.index()] = Some(url.into());
        self
    }

    /// Adds a header to every request (an API key, a tenant). Names and
    /// values are checked when the exporter starts.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Longest one export may take, connecting included (default
    /// [`DEFAULT_TIMEOUT`], at least [`MIN_TIMEOUT`]).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Compresses request bodies (default none).
    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// How often metrics are exported (default
    /// [`DEFAULT_METRIC_EXPORT_INTERVAL`], at least
    /// [`MIN_METRIC_EXPORT_INTERVAL`]).
    pub fn metric_export_interval(mut self, interval: Duration) -> Self {
        self.metric_export_interval = interval;
        self
    }

    /// Which calls become spans (default [`Sampler::ParentBasedAlwaysOn`]).
    pub fn sampler(mut self, sampler: Sampler) -> Self {
        self.sampler = sampler;
        self
    }

    /// Exports a span per monitored call (default `true`).
    pub fn traces(mut self, on: bool) -> Self {
        self.signals[Signal::Traces.index()] = on;
        self
    }

    /// Exports a log record per line (default `true`).
    pub fn logs(mut self, on: bool) -> Self {
        self.signals[Signal::Logs.index()] = on;
        self
    }

    /// Exports the metrics (default `true`).
    pub fn metrics(mut self, on: bool) -> Self {
        self.signals[Signal::Metrics.index()] = on;
        self
    }

    /// Turns the whole exporter off (as `OTEL_SDK_DISABLED=true` does).
    pub fn disabled(mut self, disabled: bool) -> Self {
        self.disabled = disabled;
        self
    }

    /// Adds an attribute to the resource every signal is sent with (the
    /// builder adds `service.name`, `service.version` and
    /// `OTEL_RESOURCE_ATTRIBUTES`).
    pub fn resource_attribute(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.resource.push((key.into(), value.into()));
        self
    }

    /// Bounds each signal's queue at `bytes` (default
    /// [`DEFAULT_CAPACITY_BYTES`](crate::sink::DEFAULT_CAPACITY_BYTES));
    /// what does not fit is dropped and counted.
    pub fn capacity_bytes(mut self, bytes: usize) -> Self {
        self.capacity_bytes = bytes;
        self
    }

    /// Waits `initial` after the first failed export, doubling up to
    /// `max` (defaults 100 ms and 5 s), with jitter. A `Retry-After` the
    /// collector sends is honoured, up to [`MAX_RETRY_AFTER`](super::MAX_RETRY_AFTER).
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.backoff = (initial, max);
        self
    }

    /// Verifies the collector's certificate with `config` instead of the
    /// system's CA bundle (feature `tls`).
    #[cfg(feature = "tls")]
    pub fn tls(mut self, config: crate::net::TlsConfig) -> Self {
        self.tls = Some(config);
        self
    }

    /// The configuration the `OTEL_*` variables of the process environment
    /// give, over the defaults; see [`from_env_vars`](Self::from_env_vars).
    ///
    /// # Errors
    ///
    /// [`OtlpError::Env`] naming the first variable whose value does not
    /// parse.
    pub fn from_env() -> Result<Self, OtlpError> {
        Self::from_env_vars(std::env::vars())
    }

    /// The configuration the given `OTEL_*` pairs give, over the defaults:
    ///
    /// | variable | meaning |
    /// |---|---|
    /// | `OTEL_EXPORTER_OTLP_ENDPOINT` | base URL (`/v1/{signal}` appended) |
    /// | `OTEL_EXPORTER_OTLP_{TRACES,LOGS,METRICS}_ENDPOINT` | one signal's URL, used as is |
    /// | `OTEL_EXPORTER_OTLP_[{SIGNAL}_]HEADERS` | `key=value,key2=value2`, values percent-encoded |
    /// | `OTEL_EXPORTER_OTLP_[{SIGNAL}_]TIMEOUT` | milliseconds |
    /// | `OTEL_EXPORTER_OTLP_[{SIGNAL}_]COMPRESSION` | `none` or `gzip` |
    /// | `OTEL_EXPORTER_OTLP_[{SIGNAL}_]PROTOCOL` | `http/protobuf` (the only one spoken) |
    /// | `OTEL_{TRACES,LOGS,METRICS}_EXPORTER` | `otlp` or `none` |
    /// | `OTEL_METRIC_EXPORT_INTERVAL` | milliseconds |
    /// | `OTEL_TRACES_SAMPLER` | `always_on`, `always_off`, `traceidratio`, `parentbased_always_on`, `parentbased_always_off`, `parentbased_traceidratio` |
    /// | `OTEL_TRACES_SAMPLER_ARG` | the ratio, 0 to 1 (default 1) |
    /// | `OTEL_SDK_DISABLED` | `true` turns the exporter off |
    ///
    /// Empty values count as unset; other names are ignored.
    ///
    /// # Errors
    ///
    /// [`OtlpError::Env`] naming the first variable whose value does not
    /// parse, with the form expected.
    pub fn from_env_vars<I, K, V>(vars: I) -> Result<Self, OtlpError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        Ok(OtlpEnv::parse(vars)?.apply(Self::default()))
    }

    /// Whether `signal` is to be exported at all.
    pub(crate) fn exports(&self, signal: Signal) -> bool {
        !self.disabled && self.signals[signal.index()]
    }

    /// The metrics interval used: the one set, at least
    /// [`MIN_METRIC_EXPORT_INTERVAL`].
    pub(crate) fn metric_interval(&self) -> Duration {
        self.metric_export_interval.max(MIN_METRIC_EXPORT_INTERVAL)
    }

    /// Where and how `signal` is sent, checked.
    pub(crate) fn resolve(&self, signal: Signal) -> Result<Destination, OtlpError> {
        let i = signal.index();
        let (url, path) = match &self.signal_endpoints[i] {
            Some(url) => (url.as_str(), ""),
            None => (self.endpoint.as_str(), signal.path()),
        };
        let bad = |source| OtlpError::Endpoint {
            signal: signal.name(),
            source,
        };
        let target = Target::parse(url).map_err(bad)?;
        // A per-signal URL without a path posts to the root.
        let path = if path.is_empty() && target.prefix.is_empty() {
            "/"
        } else {
            path
        };
        #[cfg(not(feature = "tls"))]
        if target.tls {
            return Err(bad(crate::net::SinkError::config(format!(
                "invalid URL {:?}: https:// needs observe's `tls` feature",
                http::mask_url(url)
            ))));
        }
        let timeout = self.signal_timeouts[i]
            .unwrap_or(self.timeout)
            .max(MIN_TIMEOUT);
        let net = NetOptions {
            connect_timeout: timeout,
            io_timeout: timeout,
            #[cfg(feature = "tls")]
            tls: match (&self.tls, target.tls) {
                (_, false) => None,
                (Some(tls), true) => Some(tls.clone()),
                (None, true) => Some(crate::net::TlsConfig::system().map_err(bad)?),
            },
        };
        let headers = self.signal_headers[i].as_ref().unwrap_or(&self.headers);
        let mut rendered = String::new();
        for (name, value) in headers {
            if !valid_header(name, value) {
                return Err(OtlpError::Header { name: name.clone() });
            }
            rendered.push_str(name);
            rendered.push_str(": ");
            rendered.push_str(value);
            rendered.push_str("\r\n");
        }
        Ok(Destination {
            signal,
            target,
            path: path.to_owned(),
            net,
            headers: rendered,
            compression: self.signal_compression[i].unwrap_or(self.compression),
        })
    }
}

/// Headers the client writes itself: one configured beside them would
/// frame or label the request twice.
const OWN_HEADERS: [&str; 7] = [
    "accept",
    "content-length",
    "host",
    "transfer-encoding",
    "content-type",
    "content-encoding",
    "connection",
];

/// A header a request can carry: a token for a name (RFC 9110), not one
/// the client writes, and a value of visible characters and spaces, so no
/// header can smuggle another.
fn valid_header(name: &str, value: &str) -> bool {
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    !name.is_empty()
        && name.bytes().all(token)
        && !OWN_HEADERS.iter().any(|h| name.eq_ignore_ascii_case(h))
        && value
            .bytes()
            .all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

/// One signal's destination, resolved and checked.
#[derive(Clone)]
pub(crate) struct Destination {
    pub(crate) signal: Signal,
    pub(crate) target: Target,
    /// Appended to the target's prefix.
    pub(crate) path: String,
    pub(crate) net: NetOptions,
    /// `Name: value\r\n` lines.
    pub(crate) headers: String,
    pub(crate) compression: Compression,
}

impl fmt::Debug for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Destination")
            .field("signal", &self.signal)
            .field("target", &self.target)
            .field("path", &self.path)
            .field("compression", &self.compression)
            .finish_non_exhaustive()
    }
}

/// An `OTEL_*` variable whose value does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadValue {
    pub(crate) var: String,
    /// As far as it may be shown.
    pub(crate) value: String,
    pub(crate) expected: &'static str,
}

impl From<BadValue> for OtlpError {
    fn from(b: BadValue) -> Self {
        Self::Env {
            var: b.var,
            value: b.value,
            expected: b.expected,
        }
    }
}

/// The `OTEL_*` variables, parsed and checked: what they set, and only
/// that, so they can go over a configuration made in code.
#[derive(Debug, Clone, Default)]
pub(crate) struct OtlpEnv {
    endpoint: Option<String>,
    signal_endpoints: [Option<String>; 3],
    headers: Option<Vec<(String, String)>>,
    signal_headers: [Option<Vec<(String, String)>>; 3],
    timeout: Option<Duration>,
    signal_timeouts: [Option<Duration>; 3],
    compression: Option<Compression>,
    signal_compression: [Option<Compression>; 3],
    exporters: [Option<bool>; 3],
    interval: Option<Duration>,
    sampler: Option<SamplerName>,
    sampler_arg: Option<f64>,
    disabled: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SamplerName {
    AlwaysOn,
    AlwaysOff,
    Ratio,
    ParentOn,
    ParentOff,
    ParentRatio,
}

impl OtlpEnv {
    /// Parses the `OTEL_*` pairs the exporter reads; other names are
    /// ignored.
    pub(crate) fn parse<I, K, V>(vars: I) -> Result<Self, BadValue>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut e = Self::default();
        for (k, v) in vars {
            let (k, raw) = (k.as_ref(), v.as_ref());
            let v = raw.trim();
            if v.is_empty() {
                continue;
            }
            let err = |expected| BadValue {
                var: k.to_owned(),
                value: shown(k, raw),
                expected,
            };
            let Some(rest) = k.strip_prefix("OTEL_") else {
                continue;
            };
            match rest {
                "SDK_DISABLED" => {
                    e.disabled = Some(boolean(v).ok_or_else(|| err("`true` or `false`"))?)
                }
                "METRIC_EXPORT_INTERVAL" => {
                    e.interval =
                        Some(millis(v).ok_or_else(|| err("a positive number of milliseconds"))?);
                }
                "TRACES_SAMPLER" => {
                    e.sampler = Some(match v.to_ascii_lowercase().as_str() {
                        "always_on" => SamplerName::AlwaysOn,
                        "always_off" => SamplerName::AlwaysOff,
                        "traceidratio" => SamplerName::Ratio,
                        "parentbased_always_on" => SamplerName::ParentOn,
                        "parentbased_always_off" => SamplerName::ParentOff,
                        "parentbased_traceidratio" => SamplerName::ParentRatio,
                        _ => {
                            return Err(err(
                                "one of always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off, parentbased_traceidratio",
                            ));
                        }
                    });
                }
                "TRACES_SAMPLER_ARG" => {
                    e.sampler_arg = Some(
                        v.parse::<f64>()
                            .ok()
                            .filter(|r| (0.0..=1.0).contains(r))
                            .ok_or_else(|| err("a ratio from 0 to 1, like `0.25`"))?,
                    );
                }
                "TRACES_EXPORTER" | "LOGS_EXPORTER" | "METRICS_EXPORTER" => {
                    let signal = match rest {
                        "TRACES_EXPORTER" => Signal::Traces,
                        "LOGS_EXPORTER" => Signal::Logs,
                        _ => Signal::Metrics,
                    };
                    e.exporters[signal.index()] = Some(match v.to_ascii_lowercase().as_str() {
                        "otlp" => true,
                        "none" => false,
                        _ => return Err(err("`otlp` or `none`")),
                    });
                }
                _ => {
                    let Some(setting) = rest.strip_prefix("EXPORTER_OTLP_") else {
                        continue;
                    };
                    let (signal, setting) = match Signal::ALL
                        .into_iter()
                        .find_map(|s| Some((s, setting.strip_prefix(s.env())?.strip_prefix('_')?)))
                    {
                        Some((s, setting)) => (Some(s), setting),
                        None => (None, setting),
                    };
                    e.set(signal, setting, v, err)?;
                }
            }
        }
        Ok(e)
    }

    /// One `OTEL_EXPORTER_OTLP_[{signal}_]{setting}` variable.
    fn set(
        &mut self,
        signal: Option<Signal>,
        setting: &str,
        v: &str,
        err: impl Fn(&'static str) -> BadValue,
    ) -> Result<(), BadValue> {
        match setting {
            "ENDPOINT" => {
                check_url(v).map_err(&err)?;
                match signal {
                    Some(s) => self.signal_endpoints[s.index()] = Some(v.to_owned()),
                    None => self.endpoint = Some(v.to_owned()),
                }
            }
            "HEADERS" => {
                let headers = parse_headers(v).map_err(err)?;
                match signal {
                    Some(s) => self.signal_headers[s.index()] = Some(headers),
                    None => self.headers = Some(headers),
                }
            }
            "TIMEOUT" => {
                let t = millis(v).ok_or_else(|| err("a positive number of milliseconds"))?;
                match signal {
                    Some(s) => self.signal_timeouts[s.index()] = Some(t),
                    None => self.timeout = Some(t),
                }
            }
            "COMPRESSION" => {
                let c = match v.to_ascii_lowercase().as_str() {
                    "none" => Compression::None,
                    "gzip" => Compression::Gzip,
                    _ => return Err(err("`none` or `gzip`")),
                };
                match signal {
                    Some(s) => self.signal_compression[s.index()] = Some(c),
                    None => self.compression = Some(c),
                }
            }
            "PROTOCOL" if v != "http/protobuf" => {
                return Err(err("`http/protobuf` (the one protocol observe speaks)"));
            }
            _ => {}
        }
        Ok(())
    }

    /// Whether an endpoint variable is set: the environment asks for the
    /// exporter.
    pub(crate) fn sets_endpoint(&self) -> bool {
        self.endpoint.is_some() || self.signal_endpoints.iter().any(Option::is_some)
    }

    /// `config` with what the variables set put over it.
    pub(crate) fn apply(self, mut c: OtlpConfig) -> OtlpConfig {
        if let Some(e) = self.endpoint {
            c.endpoint = e;
        }
        for i in 0..3 {
            if let Some(e) = self.signal_endpoints[i].clone() {
                c.signal_endpoints[i] = Some(e);
            }
            if let Some(h) = self.signal_headers[i].clone() {
                c.signal_headers[i] = Some(h);
            }
            if let Some(t) = self.signal_timeouts[i] {
                c.signal_timeouts[i] = Some(t);
            }
            if let Some(x) = self.signal_compression[i] {
                c.signal_compression[i] = Some(x);
            }
            if let Some(on) = self.exporters[i] {
                c.signals[i] = on;
            }
        }
        if let Some(h) = self.headers {
            c.headers = h;
        }
        if let Some(t) = self.timeout {
            c.timeout = t;
        }
        if let Some(x) = self.compression {
            c.compression = x;
        }
        if let Some(i) = self.interval {
            c.metric_export_interval = i;
        }
        let ratio = self.sampler_arg.unwrap_or(1.0);
        if let Some(s) = self.sampler {
            c.sampler = match s {
                SamplerName::AlwaysOn => Sampler::AlwaysOn,
                SamplerName::AlwaysOff => Sampler::AlwaysOff,
                SamplerName::Ratio => Sampler::TraceIdRatio(ratio),
                SamplerName::ParentOn => Sampler::ParentBasedAlwaysOn,
                SamplerName::ParentOff => Sampler::ParentBasedAlwaysOff,
                SamplerName::ParentRatio => Sampler::ParentBasedTraceIdRatio(ratio),
            };
        }
        if let Some(d) = self.disabled {
            c.disabled = d;
        }
        c
    }
}

/// An endpoint URL the exporter can use: `http://`, or `https://` with the
/// `tls` feature.
fn check_url(v: &str) -> Result<(), &'static str> {
    let expected = "an http:// or https:// URL like `http://collector:4318`";
    let target = Target::parse(v).map_err(|_| expected)?;
    if target.tls && !cfg!(feature = "tls") {
        return Err("an http:// URL (https:// needs observe's `tls` feature)");
    }
    Ok(())
}

/// `key=value,key2=value2` (W3C baggage style), values percent-decoded.
fn parse_headers(v: &str) -> Result<Vec<(String, String)>, &'static str> {
    const EXPECTED: &str =
        "comma-separated key=value pairs, values percent-encoded, like `api-key=abc%20123`";
    let pairs = crate::base::percent::pairs(v).map_err(|_| EXPECTED)?;
    if pairs.iter().any(|(k, value)| !valid_header(k, value)) {
        return Err(
            "key=value pairs with header names (letters, digits, `-`) and values without control characters",
        );
    }
    Ok(pairs)
}

/// A positive whole number of milliseconds.
fn millis(v: &str) -> Option<Duration> {
    if !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse::<u64>()
        .ok()
        .filter(|n| *n > 0)
        .map(Duration::from_millis)
}

/// A value as an error may quote it: headers (API keys) not at all, URLs
/// masked, nothing longer than a line.
fn shown(var: &str, raw: &str) -> String {
    if var.ends_with("_HEADERS") {
        setting::shown(raw, Shown::Secret)
    } else if var.ends_with("_ENDPOINT") {
        http::mask_url(raw)
    } else {
        setting::shown(raw, Shown::Plain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_times_are_raised_to_their_floor() {
        let c = OtlpConfig::new("http://h:4318")
            .timeout(Duration::ZERO)
            .metric_export_interval(Duration::ZERO);
        assert_eq!(c.metric_interval(), MIN_METRIC_EXPORT_INTERVAL);
        let d = c.resolve(Signal::Metrics).unwrap();
        assert_eq!(d.net.io_timeout, MIN_TIMEOUT);
        assert_eq!(d.net.connect_timeout, MIN_TIMEOUT);
    }

    #[test]
    fn headers_the_client_writes_itself_are_refused() {
        for name in OWN_HEADERS
            .iter()
            .copied()
            .chain(["Transfer-Encoding", "HOST"])
        {
            assert!(!valid_header(name, "x"), "{name}");
        }
        assert!(valid_header("x-api-key", "k-123"));
    }

    fn env(pairs: &[(&str, &str)]) -> Result<OtlpConfig, OtlpError> {
        OtlpConfig::from_env_vars(pairs.iter().copied())
    }

    fn url(c: &OtlpConfig, s: Signal) -> String {
        let d = c.resolve(s).expect("resolves");
        format!(
            "{}://{}{}{}",
            if d.target.tls { "https" } else { "http" },
            d.target.host_header,
            d.target.prefix,
            d.path
        )
    }

    #[test]
    fn defaults_follow_the_specification() {
        let c = OtlpConfig::default();
        assert_eq!(url(&c, Signal::Traces), "http://localhost:4318/v1/traces");
        assert_eq!(c.timeout, Duration::from_secs(10));
        assert_eq!(c.metric_export_interval, Duration::from_secs(60));
        assert_eq!(c.sampler, Sampler::ParentBasedAlwaysOn);
        assert_eq!(c.compression, Compression::None);
        assert!(Signal::ALL.iter().all(|s| c.exports(*s)));
        assert!(!c.clone().disabled(true).exports(Signal::Logs));
    }

    #[test]
    fn base_endpoints_get_the_signal_path_and_signal_endpoints_are_used_as_is() {
        let c = OtlpConfig::new("http://collector:4318/otel/")
            .logs_endpoint("http://logs:9000/ingest/logs")
            .metrics_endpoint("http://metrics:9000");
        assert_eq!(
            url(&c, Signal::Traces),
            "http://collector:4318/otel/v1/traces"
        );
        assert_eq!(url(&c, Signal::Logs), "http://logs:9000/ingest/logs");
        assert_eq!(url(&c, Signal::Metrics), "http://metrics:9000/");
    }

    #[test]
    fn every_variable_is_read() {
        let c = env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://otel:4318"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://traces:1/t"),
            ("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "http://logs:2/l"),
            ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://metrics:3/m"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "api-key=a%20b,tenant=t1"),
            ("OTEL_EXPORTER_OTLP_LOGS_HEADERS", "x=1"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
            ("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "700"),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
            ("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "none"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_METRIC_EXPORT_INTERVAL", "15000"),
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
            ("OTEL_LOGS_EXPORTER", "none"),
            ("OTEL_SDK_DISABLED", "false"),
            ("OTEL_SOMETHING_ELSE", "x"),
            ("PATH", "/bin"),
        ])
        .expect("valid");
        assert_eq!(c.endpoint, "http://otel:4318");
        assert_eq!(url(&c, Signal::Traces), "http://traces:1/t");
        assert_eq!(url(&c, Signal::Logs), "http://logs:2/l");
        assert_eq!(url(&c, Signal::Metrics), "http://metrics:3/m");
        assert_eq!(
            c.headers,
            vec![
                ("api-key".to_owned(), "a b".to_owned()),
                ("tenant".to_owned(), "t1".to_owned())
            ]
        );
        assert_eq!(c.resolve(Signal::Logs).unwrap().headers, "x: 1\r\n");
        assert_eq!(
            c.resolve(Signal::Traces).unwrap().headers,
            "api-key: a b\r\ntenant: t1\r\n"
        );
        assert_eq!(c.timeout, Duration::from_millis(2500));
        let m = c.resolve(Signal::Metrics).unwrap();
        assert_eq!(m.net.io_timeout, Duration::from_millis(700));
        assert_eq!(c.compression, Compression::Gzip);
        assert_eq!(
            c.resolve(Signal::Traces).unwrap().compression,
            Compression::None
        );
        assert_eq!(
            c.resolve(Signal::Logs).unwrap().compression,
            Compression::Gzip
        );
        assert_eq!(c.metric_export_interval, Duration::from_secs(15));
        assert_eq!(c.sampler, Sampler::ParentBasedTraceIdRatio(0.25));
        assert!(!c.exports(Signal::Logs) && c.exports(Signal::Traces));
        assert!(!c.disabled);
    }

    #[test]
    fn samplers_by_name() {
        for (name, arg, sampler) in [
            ("always_on", None, Sampler::AlwaysOn),
            ("always_off", None, Sampler::AlwaysOff),
            ("traceidratio", Some("0.5"), Sampler::TraceIdRatio(0.5)),
            ("traceidratio", None, Sampler::TraceIdRatio(1.0)),
            ("parentbased_always_on", None, Sampler::ParentBasedAlwaysOn),
            (
                "PARENTBASED_ALWAYS_OFF",
                None,
                Sampler::ParentBasedAlwaysOff,
            ),
            (
                "parentbased_traceidratio",
                Some("0"),
                Sampler::ParentBasedTraceIdRatio(0.0),
            ),
        ] {
            let mut vars = vec![("OTEL_TRACES_SAMPLER", name)];
            if let Some(a) = arg {
                vars.push(("OTEL_TRACES_SAMPLER_ARG", a));
            }
            assert_eq!(env(&vars).expect(name).sampler, sampler, "{name}");
        }
    }

    #[test]
    fn the_sdk_can_be_disabled_and_empty_values_are_unset() {
        assert!(env(&[("OTEL_SDK_DISABLED", "TRUE")]).unwrap().disabled);
        let c = env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", " "),
            ("OTEL_SDK_DISABLED", ""),
        ])
        .unwrap();
        assert_eq!(c.endpoint, DEFAULT_ENDPOINT);
        assert!(!c.disabled);
    }

    #[test]
    fn bad_values_name_the_variable_and_the_form() {
        for (var, value) in [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "ftp://x"),
            ("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "http://h:port"),
            ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://h/?q=1"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "novalue"),
            ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "a=%zz"),
            ("OTEL_EXPORTER_OTLP_LOGS_HEADERS", "a=b%0d%0aX-Injected: 1"),
            ("OTEL_EXPORTER_OTLP_METRICS_HEADERS", "bad name=1"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "10s"),
            ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "0"),
            ("OTEL_EXPORTER_OTLP_LOGS_TIMEOUT", "-5"),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "zstd"),
            ("OTEL_EXPORTER_OTLP_METRICS_COMPRESSION", "deflate"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_METRIC_EXPORT_INTERVAL", "1m"),
            ("OTEL_TRACES_SAMPLER", "jaeger_remote"),
            ("OTEL_TRACES_SAMPLER_ARG", "1.5"),
            ("OTEL_TRACES_SAMPLER_ARG", "half"),
            ("OTEL_TRACES_EXPORTER", "zipkin"),
            ("OTEL_SDK_DISABLED", "maybe"),
        ] {
            let e = env(&[(var, value)]).expect_err(var);
            let text = e.to_string();
            assert!(text.starts_with(&format!("{var}=")), "{text}");
            assert!(text.contains(" is not "), "{text}");
        }
        #[cfg(not(feature = "tls"))]
        assert!(
            env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "https://x:4318")])
                .unwrap_err()
                .to_string()
                .contains("tls")
        );
    }

    #[test]
    fn secrets_stay_out_of_errors_and_debug() {
        let e = env(&[("OTEL_EXPORTER_OTLP_HEADERS", "api-key=s3cret,broken")]).unwrap_err();
        assert!(!e.to_string().contains("s3cret"), "{e}");
        let e = env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "ftp://u:s3cret@h")]).unwrap_err();
        assert!(!e.to_string().contains("s3cret"), "{e}");
        let c = OtlpConfig::new("http://u:s3cret@h:4318").header("api-key", "s3cret");
        assert!(!format!("{c:?}").contains("s3cret"));
    }

    #[test]
    fn headers_set_in_code_are_checked_when_resolved() {
        let c = OtlpConfig::default().header("x-evil", "a\r\nHost: other");
        assert!(matches!(
            c.resolve(Signal::Traces),
            Err(OtlpError::Header { .. })
        ));
        let c = OtlpConfig::default().header("", "v");
        assert!(c.resolve(Signal::Logs).is_err());
        let c = OtlpConfig::new("http://h:port");
        let e = c.resolve(Signal::Logs).unwrap_err().to_string();
        assert!(e.contains("logs"), "{e}");
    }
}
