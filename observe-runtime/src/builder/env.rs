//! Configuration from the environment: every builder setting as an
//! `OBSERVE_*` variable, so a service can be configured without code. The
//! table is on [`ObserveBuilder::from_env`] and in `docs/operations.md`.
//!
//! Durations are a number with a unit: `ms`, `s` or `m`. Booleans are
//! `true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`. Empty variables count
//! as unset. A value that does not parse makes [`ObserveBuilder::install`]
//! fail with [`InstallError::Component`] naming the variable, rather than
//! being ignored.

use std::time::Duration;

use tracing_subscriber::filter::Targets;

use super::{InstallError, Observe, ObserveBuilder};
use crate::base::duration::parse as duration;
use crate::base::setting::{self, Shown, boolean};
use crate::correlation::IdFormat;
use crate::log::Redactor;

/// The prefix of every variable.
const PREFIX: &str = "OBSERVE_";

impl Observe {
    /// A builder configured entirely from the environment: the service
    /// name from `OBSERVE_SERVICE` (else the executable's file name), the
    /// rest as [`ObserveBuilder::from_env`] reads it.
    ///
    /// ```no_run
    /// // OBSERVE_SERVICE=websocket-ingestion OBSERVE_LOGSTASH=127.0.0.1:5000 ./ingestor
    /// let _guard = observe_runtime::Observe::from_env().install()?;
    /// # Ok::<(), observe_runtime::InstallError>(())
    /// ```
    pub fn from_env() -> ObserveBuilder {
        let vars: Vec<(String, String)> = std::env::vars().filter(|(k, _)| read_here(k)).collect();
        let named = |name: &str| {
            vars.iter()
                .find(|(k, v)| k == name && !v.trim().is_empty())
                .map(|(_, v)| v.trim().to_owned())
        };
        let service = named("OBSERVE_SERVICE")
            .or_else(|| named("OTEL_SERVICE_NAME"))
            .or_else(executable_name)
            .unwrap_or_else(|| "service".to_owned());
        Observe::builder(service).from_env_vars(vars)
    }
}

/// Whether the builder reads the variable `name`.
fn read_here(name: &str) -> bool {
    name.starts_with(PREFIX) || name.starts_with("OTEL_")
}

fn executable_name() -> Option<String> {
    let exe = std::env::current_exe().ok()?;
    Some(exe.file_stem()?.to_str()?.to_owned())
}

impl ObserveBuilder {
    /// Applies the `OBSERVE_*` variables of the process environment
    /// (`OBSERVE_SERVICE` is read by [`Observe::from_env`] only). Call it
    /// after code-set options to let the environment override them, or
    /// before to let code win.
    ///
    /// | variable | builder call | example |
    /// |---|---|---|
    /// | `OBSERVE_SERVICE` | the service name ([`Observe::from_env`]) | `websocket-ingestion` |
    /// | `OBSERVE_LOG` | [`filter`](ObserveBuilder::filter) | `info,hyper=warn` |
    /// | `OBSERVE_LOGSTASH` | [`logstash`](ObserveBuilder::logstash) | `127.0.0.1:5000` |
    /// | `OBSERVE_UDP` | [`udp`](ObserveBuilder::udp) | `127.0.0.1:5001` |
    /// | `OBSERVE_ELASTICSEARCH` | [`elasticsearch`](ObserveBuilder::elasticsearch) | `http://127.0.0.1:9200` |
    /// | `OBSERVE_LOG_FILE` | [`file`](ObserveBuilder::file) | `/var/log/ingestor/ingestor.log` |
    /// | `OBSERVE_STDOUT` | also [`StdoutSink`](crate::sink::StdoutSink) next to the sinks above | `true` |
    /// | `OBSERVE_PROMETHEUS` | [`prometheus`](ObserveBuilder::prometheus) | `false` |
    /// | `OBSERVE_METRICS_ADDR` | `metrics_listener` (feature `prometheus-listener`) | `127.0.0.1:9464` |
    /// | `OBSERVE_INFLUXDB` | `influxdb` (feature `influxdb`): the URL (`http://` only) | `http://127.0.0.1:8086` |
    /// | `OBSERVE_INFLUXDB_DB` | InfluxDB 1.x database (v1 API) | `observe` |
    /// | `OBSERVE_INFLUXDB_ORG`, `OBSERVE_INFLUXDB_BUCKET`, `OBSERVE_INFLUXDB_TOKEN` | InfluxDB 2.x (v2 API; all three) | `acme`, `metrics`, `…` |
    /// | `OBSERVE_INFLUXDB_INTERVAL` | push interval | `10s` |
    /// | `OBSERVE_SYSTEM_METRICS` | `system_metrics` (feature `system-metrics`): the interval, or `off` | `30s` |
    /// | `OBSERVE_MAX_LINE_BYTES` | [`max_line_bytes`](ObserveBuilder::max_line_bytes) (at least 1024) | `32768` |
    /// | `OBSERVE_REDACT` | [`redact`](ObserveBuilder::redact): comma-separated keys, added to the defaults (replacing them takes [`redact_only`](ObserveBuilder::redact_only) in code) | `ssn,iban` |
    /// | `OBSERVE_ID_FORMAT` | [`id_format`](ObserveBuilder::id_format): `req` or `uuidv7` | `uuidv7` |
    /// | `OBSERVE_FLUSH_TIMEOUT` | [`flush_timeout`](ObserveBuilder::flush_timeout) | `5s` |
    /// | `OBSERVE_VERSION`, `OBSERVE_COMMIT` | [`version`](ObserveBuilder::version), [`commit`](ObserveBuilder::commit) | `1.4.2`, `9f3c2e1` |
    /// | `OTEL_RESOURCE_ATTRIBUTES` | its `service.version`, unless `OBSERVE_VERSION` is set | `service.version=1.4.2` |
    /// | `OBSERVE_EXEMPLARS` | [`exemplars`](ObserveBuilder::exemplars) | `false` |
    /// | `OBSERVE_TRACING_SPANS` | [`tracing_spans`](ObserveBuilder::tracing_spans) | `true` |
    /// | `OBSERVE_SAMPLE` | [`sample`](ObserveBuilder::sample): comma-separated `operation=rate`, `*` for every operation | `ingestion.receive=0.01,*=0.5` |
    /// | `OBSERVE_RATE_LIMIT` | [`rate_limit`](ObserveBuilder::rate_limit): `operation=lines_per_second` | `*=1000` |
    /// | `OBSERVE_LEVELS` | [`operation_level`](ObserveBuilder::operation_level): `operation=level` | `admin.health=warn` |
    /// | `OBSERVE_HOLD` | [`hold_until_root`](ObserveBuilder::hold_until_root): bytes per request and in total (`KiB`, `MiB`, `GiB`), or `off` | `64KiB,16MiB` |
    /// | `OBSERVE_RELOAD_FILE` | `reload_file` (unix): the file of `OBSERVE_SAMPLE` / `OBSERVE_RATE_LIMIT` / `OBSERVE_LEVELS` lines re-read on SIGHUP | `/etc/ingestor/volume.env` |
    /// | `OBSERVE_RELOAD_TOKEN` | `reload_endpoint` (feature `prometheus-listener`): turns on `POST /config` on the metrics listener, requiring this bearer token | `…` |
    /// | `OTEL_SERVICE_NAME` | the service name when `OBSERVE_SERVICE` is unset ([`Observe::from_env`]) | `websocket-ingestion` |
    /// | `OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_{TRACES,LOGS,METRICS}_ENDPOINT` | `otlp` (feature `otlp`): turns the exporter on | `http://127.0.0.1:4318` |
    /// | the other `OTEL_*` exporter variables | their meaning on `OtlpConfig::from_env_vars`, over a configuration set in code; `OTEL_SDK_DISABLED=true` turns the exporter off | `OTEL_TRACES_SAMPLER=parentbased_traceidratio` |
    /// | `OBSERVE_OBJECTIVES` | [`objective`](ObserveBuilder::objective): `;`-separated `operation=name(targets)`, or `operation=name` for an objective declared in code | `process_event=ingestion(success=99.9,latency=250ms@99)` |
    ///
    ///
    /// Durations are a number with a unit: `ms`, `s` or `m`. Booleans are
    /// `true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`. Empty variables
    /// count as unset. A value that does not parse makes
    /// [`install`](Self::install) fail with [`InstallError::Component`]
    /// naming the variable, rather than being ignored.
    pub fn from_env(self) -> Self {
        self.from_env_vars(std::env::vars().filter(|(k, _)| read_here(k)))
    }

    /// As [`from_env`](Self::from_env), from the given `(name, value)`
    /// pairs instead of the process environment (for tests, or a config
    /// file read into pairs).
    pub fn from_env_vars<I, K, V>(self, vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        match EnvConfig::from_vars(vars) {
            Ok(config) => config.apply(self),
            Err(e) => self.on_install(move |_| {
                Err(InstallError::component(
                    "configuration from the environment",
                    e,
                ))
            }),
        }
    }
}

/// A variable whose value does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EnvError {
    var: String,
    value: String,
    expected: &'static str,
}

impl std::fmt::Display for EnvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={:?} is not {}", self.var, self.value, self.expected)
    }
}

impl std::error::Error for EnvError {}

/// The InfluxDB settings read from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
enum InfluxEnv {
    V1 {
        url: String,
        db: String,
    },
    V2 {
        url: String,
        org: String,
        bucket: String,
        token: String,
    },
}

/// Every setting the environment can give, parsed and checked.
#[derive(Debug, Default)]
pub(crate) struct EnvConfig {
    filter: Option<Targets>,
    logstash: Option<String>,
    udp: Option<String>,
    elasticsearch: Option<String>,
    log_file: Option<String>,
    stdout: Option<bool>,
    prometheus: Option<bool>,
    metrics_addr: Option<std::net::SocketAddr>,
    influxdb: Option<InfluxEnv>,
    influxdb_interval: Option<Duration>,
    /// `Some(None)` is `off`.
    system_metrics: Option<Option<Duration>>,
    max_line_bytes: Option<usize>,
    redact: Option<Vec<String>>,
    id_format: Option<IdFormat>,
    flush_timeout: Option<Duration>,
    version: Option<String>,
    /// `service.version` of `OTEL_RESOURCE_ATTRIBUTES`.
    resource_version: Option<String>,
    commit: Option<String>,
    exemplars: Option<bool>,
    tracing_spans: Option<bool>,
    objectives: Option<Vec<(String, super::objectives::Attached)>>,
    volume: Vec<(String, crate::volume::Setting)>,
    /// `Some(None)` is `off`.
    hold: Option<Option<crate::log::hold::Bounds>>,
    reload_file: Option<String>,
    reload_token: Option<String>,
    /// `OTEL_RESOURCE_ATTRIBUTES`, every pair.
    resource: Vec<(String, String)>,
    otlp: super::otlp::FromEnv,
}

impl EnvConfig {
    /// Parses the `OBSERVE_*` pairs; other names are ignored, unknown
    /// `OBSERVE_*` names too (they may belong to a newer version).
    pub(crate) fn from_vars<I, K, V>(vars: I) -> Result<Self, EnvError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut c = Self::default();
        let mut influx: [Option<String>; 5] = Default::default();
        let mut otel = Vec::new();
        for (k, v) in vars {
            let (k, raw) = (k.as_ref(), v.as_ref());
            let v = raw.trim();
            if v.is_empty() {
                continue;
            }
            let err = |expected| EnvError {
                var: k.to_owned(),
                value: shown(k, raw),
                expected,
            };
            match k {
                "OBSERVE_LOG" => {
                    c.filter = Some(
                        v.parse()
                            .map_err(|_| err("a filter like `info,my_crate=debug`"))?,
                    );
                }
                "OBSERVE_LOGSTASH" => {
                    c.logstash = Some(host_port(v).ok_or_else(|| err("HOST:PORT"))?)
                }
                "OBSERVE_UDP" => c.udp = Some(host_port(v).ok_or_else(|| err("HOST:PORT"))?),
                "OBSERVE_ELASTICSEARCH" => {
                    if !(v.starts_with("http://") || v.starts_with("https://")) {
                        return Err(err("an http:// or https:// URL"));
                    }
                    c.elasticsearch = Some(v.to_owned());
                }
                "OBSERVE_LOG_FILE" => c.log_file = Some(v.to_owned()),
                "OBSERVE_STDOUT" => c.stdout = Some(boolean(v).ok_or_else(|| err("a boolean"))?),
                "OBSERVE_PROMETHEUS" => {
                    c.prometheus = Some(boolean(v).ok_or_else(|| err("a boolean"))?);
                }
                "OBSERVE_METRICS_ADDR" => {
                    c.metrics_addr = Some(v.parse().map_err(|_| err("an IP:PORT socket address"))?);
                }
                "OBSERVE_INFLUXDB" => {
                    // https needs the `tls` feature; say so here rather
                    // than at install.
                    let https = v.starts_with("https://");
                    if !(v.starts_with("http://") || https) {
                        return Err(err("an http:// or https:// URL"));
                    }
                    if https && !cfg!(feature = "tls") {
                        return Err(err(
                            "an http:// URL (https:// needs observe's `tls` feature)",
                        ));
                    }
                    influx[0] = Some(v.to_owned());
                }
                "OBSERVE_INFLUXDB_DB" => influx[1] = Some(v.to_owned()),
                "OBSERVE_INFLUXDB_ORG" => influx[2] = Some(v.to_owned()),
                "OBSERVE_INFLUXDB_BUCKET" => influx[3] = Some(v.to_owned()),
                "OBSERVE_INFLUXDB_TOKEN" => influx[4] = Some(v.to_owned()),
                "OBSERVE_INFLUXDB_INTERVAL" => {
                    c.influxdb_interval =
                        Some(positive_duration(v).ok_or_else(|| err("a duration like `10s`"))?);
                }
                "OBSERVE_SYSTEM_METRICS" => {
                    c.system_metrics = Some(match boolean(v) {
                        Some(false) => None,
                        Some(true) => Some(Duration::from_secs(30)),
                        None => Some(
                            positive_duration(v)
                                .ok_or_else(|| err("a duration like `30s`, or `off`"))?,
                        ),
                    });
                }
                "OBSERVE_MAX_LINE_BYTES" => {
                    c.max_line_bytes = Some(
                        v.parse::<usize>()
                            .ok()
                            .filter(|n| *n > 0)
                            .ok_or_else(|| err("a positive number of bytes"))?,
                    );
                }
                "OBSERVE_REDACT" => {
                    c.redact = Some(
                        v.split(',')
                            .map(str::trim)
                            .filter(|s| !s.is_empty())
                            .map(str::to_owned)
                            .collect(),
                    );
                }
                "OBSERVE_ID_FORMAT" => {
                    c.id_format = Some(match v.to_ascii_lowercase().as_str() {
                        "req" | "request" => IdFormat::Request,
                        "uuidv7" | "uuid_v7" | "uuid-v7" | "uuid" => IdFormat::UuidV7,
                        _ => return Err(err("`req` or `uuidv7`")),
                    });
                }
                "OBSERVE_FLUSH_TIMEOUT" => {
                    c.flush_timeout = Some(duration(v).ok_or_else(|| err("a duration like `5s`"))?);
                }
                "OBSERVE_VERSION" => c.version = Some(v.to_owned()),
                "OBSERVE_COMMIT" => c.commit = Some(v.to_owned()),
                "OBSERVE_EXEMPLARS" => {
                    c.exemplars = Some(boolean(v).ok_or_else(|| err("a boolean"))?);
                }
                "OBSERVE_TRACING_SPANS" => {
                    c.tracing_spans = Some(boolean(v).ok_or_else(|| err("a boolean"))?);
                }
                "OBSERVE_SAMPLE" | "OBSERVE_RATE_LIMIT" | "OBSERVE_LEVELS" => {
                    c.volume
                        .extend(crate::volume::parse([(k, v)]).map_err(|e| EnvError {
                            var: k.to_owned(),
                            value: shown(k, raw),
                            expected: e.expected(),
                        })?);
                }
                "OBSERVE_HOLD" => {
                    c.hold = Some(crate::log::hold::Bounds::parse(v).ok_or_else(|| {
                        err("two sizes, per request and in total, like `64KiB,16MiB`, or `off`")
                    })?);
                }
                "OBSERVE_RELOAD_FILE" => c.reload_file = Some(v.to_owned()),
                "OBSERVE_RELOAD_TOKEN" => c.reload_token = Some(v.to_owned()),
                "OBSERVE_OBJECTIVES" => {
                    c.objectives = Some(super::objectives::parse_env(v).map_err(|_| {
                        err("`operation=name(success=99.9,latency=250ms@99)` or `operation=name` entries separated by `;`")
                    })?);
                }
                "OTEL_RESOURCE_ATTRIBUTES" => {
                    c.resource = crate::base::percent::pairs(v).map_err(err)?;
                    c.resource_version = c
                        .resource
                        .iter()
                        .find_map(|(k, v)| (k == "service.version").then(|| v.clone()));
                }
                _ if k.starts_with("OTEL_") => otel.push((k.to_owned(), raw.to_owned())),
                _ => {}
            }
        }
        c.otlp = super::otlp::FromEnv::parse(&otel).map_err(|(var, value, expected)| EnvError {
            var,
            value,
            expected,
        })?;
        let [url, db, org, bucket, token] = influx;
        c.influxdb = match (url, db, org, bucket, token) {
            (None, ..) => None,
            (Some(url), _, Some(org), Some(bucket), Some(token)) => Some(InfluxEnv::V2 {
                url,
                org,
                bucket,
                token,
            }),
            (Some(url), Some(db), None, None, None) => Some(InfluxEnv::V1 { url, db }),
            (Some(url), ..) => {
                return Err(EnvError {
                    var: "OBSERVE_INFLUXDB".to_owned(),
                    value: crate::net::http::mask_url(&url),
                    expected: "complete: set OBSERVE_INFLUXDB_DB (v1), or all of OBSERVE_INFLUXDB_ORG, OBSERVE_INFLUXDB_BUCKET and OBSERVE_INFLUXDB_TOKEN (v2)",
                });
            }
        };
        Ok(c)
    }

    /// Applies the settings to `builder`.
    fn apply(self, mut b: ObserveBuilder) -> ObserveBuilder {
        if let Some(f) = self.filter {
            b = b.filter(f);
        }
        let mut shipping = false;
        if let Some(a) = self.logstash {
            b = b.logstash(a);
            shipping = true;
        }
        if let Some(a) = self.udp {
            b = b.udp(a);
            shipping = true;
        }
        if let Some(u) = self.elasticsearch {
            b = b.elasticsearch(u);
            shipping = true;
        }
        if let Some(p) = self.log_file {
            b = b.file(p);
            shipping = true;
        }
        // Without other sinks, standard output is the default anyway.
        if shipping && self.stdout == Some(true) {
            b = b.stdout();
        }
        if let Some(p) = self.prometheus {
            b = b.prometheus(p);
        }
        if let Some(n) = self.max_line_bytes {
            b = b.max_line_bytes(n);
        }
        if let Some(keys) = self.redact {
            // Added to the defaults: a variable naming one more key must not
            // silently stop the redaction of `password`.
            b = b.redact(Redactor::new(keys));
        }
        if let Some(f) = self.id_format {
            b = b.id_format(f);
        }
        if let Some(t) = self.flush_timeout {
            b = b.flush_timeout(t);
        }
        if let Some(v) = self.version.or(self.resource_version) {
            b = b.version(v);
        }
        if let Some(c) = self.commit {
            b = b.commit(c);
        }
        if let Some(e) = self.exemplars {
            b = b.exemplars(e);
        }
        if let Some(t) = self.tracing_spans {
            b = b.tracing_spans(t);
        }
        if let Some(list) = self.objectives {
            b.objectives.0.extend(list);
        }
        b.volume.extend(self.volume);
        if let Some(h) = self.hold {
            b.hold = h;
        }
        b = apply_reload(b, self.reload_file, self.reload_token);
        if let (Some(var), false) = (self.otlp.asked_by, cfg!(feature = "otlp")) {
            b = missing_feature(b, var, "otlp");
        }
        b = super::otlp::apply_env(b, self.otlp, self.resource);
        b = apply_metrics_addr(b, self.metrics_addr);
        b = apply_influxdb(b, self.influxdb, self.influxdb_interval);
        apply_system_metrics(b, self.system_metrics.flatten())
    }
}

#[cfg(feature = "prometheus-listener")]
fn apply_metrics_addr(b: ObserveBuilder, addr: Option<std::net::SocketAddr>) -> ObserveBuilder {
    match addr {
        Some(a) => b.metrics_listener(a),
        None => b,
    }
}

#[cfg(not(feature = "prometheus-listener"))]
fn apply_metrics_addr(b: ObserveBuilder, addr: Option<std::net::SocketAddr>) -> ObserveBuilder {
    match addr {
        Some(_) => missing_feature(b, "OBSERVE_METRICS_ADDR", "prometheus-listener"),
        None => b,
    }
}

fn apply_reload(
    mut b: ObserveBuilder,
    file: Option<String>,
    token: Option<String>,
) -> ObserveBuilder {
    if let Some(path) = file {
        #[cfg(unix)]
        {
            b = b.reload_file(path);
        }
        #[cfg(not(unix))]
        {
            let _ = path;
            b = b.on_install(|_| {
                Err(InstallError::component(
                    "configuration from the environment",
                    "OBSERVE_RELOAD_FILE is set but reloading on SIGHUP needs a unix system",
                ))
            });
        }
    }
    if let Some(t) = token {
        #[cfg(feature = "prometheus-listener")]
        {
            b = b.reload_endpoint(Some(t));
        }
        #[cfg(not(feature = "prometheus-listener"))]
        {
            let _ = t;
            b = missing_feature(b, "OBSERVE_RELOAD_TOKEN", "prometheus-listener");
        }
    }
    b
}

#[cfg(feature = "influxdb")]
fn apply_influxdb(
    b: ObserveBuilder,
    influx: Option<InfluxEnv>,
    interval: Option<Duration>,
) -> ObserveBuilder {
    use crate::export::influxdb::InfluxConfig;
    let Some(influx) = influx else { return b };
    let mut config = match &influx {
        InfluxEnv::V1 { url, db } => InfluxConfig::v1(url, db),
        InfluxEnv::V2 {
            url,
            org,
            bucket,
            token,
        } => InfluxConfig::v2(url, org, bucket, token),
    };
    if let Some(i) = interval {
        config = config.interval(i);
    }
    b.influxdb(config)
}

#[cfg(not(feature = "influxdb"))]
fn apply_influxdb(
    b: ObserveBuilder,
    influx: Option<InfluxEnv>,
    _interval: Option<Duration>,
) -> ObserveBuilder {
    match influx {
        Some(_) => missing_feature(b, "OBSERVE_INFLUXDB", "influxdb"),
        None => b,
    }
}

#[cfg(feature = "system-metrics")]
fn apply_system_metrics(b: ObserveBuilder, interval: Option<Duration>) -> ObserveBuilder {
    match interval {
        Some(i) => b.system_metrics(i),
        None => b,
    }
}

#[cfg(not(feature = "system-metrics"))]
fn apply_system_metrics(b: ObserveBuilder, interval: Option<Duration>) -> ObserveBuilder {
    match interval {
        Some(_) => missing_feature(b, "OBSERVE_SYSTEM_METRICS", "system-metrics"),
        None => b,
    }
}

/// A variable set for a back-end this build does not include: `install()`
/// says so instead of silently doing nothing.
#[allow(dead_code)] // unused with every back-end feature on
fn missing_feature(b: ObserveBuilder, var: &'static str, feature: &'static str) -> ObserveBuilder {
    b.on_install(move |_| {
        Err(InstallError::component(
            "configuration from the environment",
            format!("{var} is set but observe was built without the `{feature}` feature"),
        ))
    })
}

/// A value as an error may quote it: URLs without their userinfo and
/// query, tokens not at all, and nothing longer than a line.
fn shown(var: &str, raw: &str) -> String {
    match var {
        "OBSERVE_INFLUXDB_TOKEN" | "OBSERVE_RELOAD_TOKEN" => setting::shown(raw, Shown::Secret),
        "OBSERVE_ELASTICSEARCH" | "OBSERVE_INFLUXDB" => crate::net::http::mask_url(raw),
        _ => setting::shown(raw, Shown::Plain),
    }
}

fn host_port(v: &str) -> Option<String> {
    let (host, port) = v.rsplit_once(':')?;
    (!host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)).then(|| v.to_owned())
}

/// `250ms`, `5s`, `1.5s`, `2m`.
fn positive_duration(v: &str) -> Option<Duration> {
    duration(v).filter(|d| !d.is_zero())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<EnvConfig, EnvError> {
        EnvConfig::from_vars(pairs.iter().copied())
    }

    #[test]
    fn every_variable_is_read() {
        let c = parse(&[
            ("OBSERVE_LOG", "debug,hyper=warn"),
            ("OBSERVE_LOGSTASH", "127.0.0.1:5000"),
            ("OBSERVE_UDP", "logs.internal:5001"),
            ("OBSERVE_ELASTICSEARCH", "http://127.0.0.1:9200"),
            ("OBSERVE_LOG_FILE", "/var/log/x.log"),
            ("OBSERVE_STDOUT", "yes"),
            ("OBSERVE_PROMETHEUS", "true"),
            ("OBSERVE_METRICS_ADDR", "127.0.0.1:9464"),
            ("OBSERVE_INFLUXDB", "http://127.0.0.1:8086"),
            ("OBSERVE_INFLUXDB_DB", "observe"),
            ("OBSERVE_INFLUXDB_INTERVAL", "10s"),
            ("OBSERVE_SYSTEM_METRICS", "1500ms"),
            ("OBSERVE_MAX_LINE_BYTES", "4096"),
            ("OBSERVE_REDACT", "password, session ,"),
            ("OBSERVE_ID_FORMAT", "uuidv7"),
            ("OBSERVE_FLUSH_TIMEOUT", "2m"),
            ("OBSERVE_RELOAD_FILE", "/etc/svc/volume.env"),
            ("OBSERVE_RELOAD_TOKEN", "s3cret"),
            ("OBSERVE_TRACING_SPANS", "on"),
            ("PATH", "/usr/bin"),
            ("OBSERVE_SOMETHING_NEWER", "x"),
        ])
        .expect("valid");
        assert_eq!(
            c.filter.map(|f| f.to_string()),
            Some("hyper=warn,debug".to_owned())
        );
        assert_eq!(c.logstash.as_deref(), Some("127.0.0.1:5000"));
        assert_eq!(c.udp.as_deref(), Some("logs.internal:5001"));
        assert_eq!(c.elasticsearch.as_deref(), Some("http://127.0.0.1:9200"));
        assert_eq!(c.log_file.as_deref(), Some("/var/log/x.log"));
        assert_eq!(c.stdout, Some(true));
        assert_eq!(c.prometheus, Some(true));
        assert_eq!(
            c.metrics_addr,
            Some("127.0.0.1:9464".parse().expect("addr"))
        );
        assert_eq!(
            c.influxdb,
            Some(InfluxEnv::V1 {
                url: "http://127.0.0.1:8086".into(),
                db: "observe".into()
            })
        );
        assert_eq!(c.influxdb_interval, Some(Duration::from_secs(10)));
        assert_eq!(c.system_metrics, Some(Some(Duration::from_millis(1500))));
        assert_eq!(c.max_line_bytes, Some(4096));
        assert_eq!(
            c.redact,
            Some(vec!["password".to_owned(), "session".to_owned()])
        );
        assert_eq!(c.id_format, Some(IdFormat::UuidV7));
        assert_eq!(c.flush_timeout, Some(Duration::from_secs(120)));
        assert_eq!(c.reload_file.as_deref(), Some("/etc/svc/volume.env"));
        assert_eq!(c.reload_token.as_deref(), Some("s3cret"));
        assert_eq!(c.tracing_spans, Some(true));
    }

    #[test]
    #[cfg(all(unix, feature = "prometheus-listener"))]
    fn the_reload_settings_reach_the_builder_and_the_token_stays_hidden() {
        let b = Observe::builder("svc").from_env_vars([
            ("OBSERVE_RELOAD_FILE", "/etc/svc/volume.env"),
            ("OBSERVE_RELOAD_TOKEN", "s3cret"),
        ]);
        assert_eq!(
            b.reload_file.as_deref(),
            Some(std::path::Path::new("/etc/svc/volume.env"))
        );
        let debug = format!("{b:?}");
        assert!(debug.contains("ReloadEndpoint"), "{debug}");
        assert!(!debug.contains("s3cret"), "{debug}");
    }

    #[test]
    fn nothing_set_is_all_defaults_and_empty_counts_as_unset() {
        let c = parse(&[("OBSERVE_LOGSTASH", "  "), ("HOME", "/root")]).expect("valid");
        assert!(c.logstash.is_none() && c.filter.is_none() && c.influxdb.is_none());
        assert!(c.system_metrics.is_none() && c.metrics_addr.is_none());
    }

    #[test]
    fn influxdb_v2_needs_org_bucket_and_token() {
        let c = parse(&[
            ("OBSERVE_INFLUXDB", "http://influx:8086"),
            ("OBSERVE_INFLUXDB_ORG", "acme"),
            ("OBSERVE_INFLUXDB_BUCKET", "metrics"),
            ("OBSERVE_INFLUXDB_TOKEN", "t0k"),
        ])
        .expect("valid");
        assert!(matches!(c.influxdb, Some(InfluxEnv::V2 { ref org, .. }) if org == "acme"));
        let e = parse(&[
            ("OBSERVE_INFLUXDB", "http://influx:8086"),
            ("OBSERVE_INFLUXDB_ORG", "acme"),
        ])
        .expect_err("incomplete");
        assert_eq!(e.var, "OBSERVE_INFLUXDB");
    }

    #[test]
    fn system_metrics_off_and_on() {
        assert_eq!(
            parse(&[("OBSERVE_SYSTEM_METRICS", "off")])
                .expect("ok")
                .system_metrics,
            Some(None)
        );
        assert_eq!(
            parse(&[("OBSERVE_SYSTEM_METRICS", "true")])
                .expect("ok")
                .system_metrics,
            Some(Some(Duration::from_secs(30)))
        );
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (var, value) in [
            ("OBSERVE_LOGSTASH", "no-port"),
            ("OBSERVE_UDP", "host:99999"),
            ("OBSERVE_ELASTICSEARCH", "127.0.0.1:9200"),
            ("OBSERVE_METRICS_ADDR", "localhost"),
            ("OBSERVE_STDOUT", "maybe"),
            ("OBSERVE_MAX_LINE_BYTES", "0"),
            ("OBSERVE_ID_FORMAT", "ulid"),
            ("OBSERVE_FLUSH_TIMEOUT", "5 parsecs"),
            ("OBSERVE_SYSTEM_METRICS", "0s"),
            ("OBSERVE_INFLUXDB_INTERVAL", "soon"),
            ("OBSERVE_INFLUXDB", "influx:8086"),
            ("OBSERVE_HOLD", "64KiB"),
        ] {
            let e = parse(&[(var, value)]).expect_err(var);
            assert_eq!((e.var.as_str(), e.value.as_str()), (var, value));
            assert!(e.to_string().starts_with(&format!("{var}=")), "{e}");
        }
    }

    #[test]
    fn env_errors_never_quote_a_password_or_token() {
        for (var, value) in [
            ("OBSERVE_ELASTICSEARCH", "ftp://elastic:hunter2@es:9200"),
            ("OBSERVE_INFLUXDB", "ftp://admin:hunter2@influx:8086"),
        ] {
            let e = parse(&[(var, value)]).expect_err(var);
            assert!(!e.to_string().contains("hunter2"), "{e}");
        }
        let e = parse(&[
            ("OBSERVE_INFLUXDB", "http://admin:hunter2@influx:8086"),
            ("OBSERVE_INFLUXDB_TOKEN", "hunter2"),
        ])
        .expect_err("incomplete");
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }

    #[test]
    fn a_bad_value_fails_install_with_the_reason() {
        let b = Observe::builder("svc").from_env_vars([("OBSERVE_METRICS_ADDR", "nowhere")]);
        // The failure is a component that refuses to start; install runs
        // the components before anything global is set.
        let err = b.install().expect_err("a bad variable fails install");
        match err {
            InstallError::Component { component, source } => {
                assert_eq!(component, "configuration from the environment");
                let reason = source.to_string();
                assert!(
                    reason.contains("OBSERVE_METRICS_ADDR=\"nowhere\""),
                    "{reason}"
                );
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn observe_redact_adds_to_the_defaults() {
        let b = Observe::builder("svc").from_env_vars([("OBSERVE_REDACT", "ssn, iban")]);
        let r = b.redactor.expect("a redactor");
        for key in [
            "ssn",
            "customer_iban",
            "password",
            "privateKey",
            "session_id",
        ] {
            assert!(r.is_secret(key), "{key}");
        }
        assert!(!r.is_secret("entity_id"));
        // Replacing them is the builder's separate call.
        let only = Observe::builder("svc").redact_only(["ssn"]).redactor;
        assert_eq!(only, Some(Redactor::replacing(["ssn"])));
        assert!(!Redactor::replacing(["ssn"]).is_secret("password"));
    }

    #[test]
    fn the_builder_gets_the_sinks() {
        let b = Observe::builder("svc").from_env_vars([
            (
                "OBSERVE_LOG_FILE",
                std::env::temp_dir()
                    .join("observe-env-test.log")
                    .to_string_lossy()
                    .as_ref(),
            ),
            ("OBSERVE_STDOUT", "1"),
        ]);
        let debug = format!("{b:?}");
        assert!(debug.contains("FileSink"), "{debug}");
        assert!(debug.contains("StdoutSink"), "{debug}");
    }

    #[test]
    fn durations() {
        assert_eq!(duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(duration("5"), None);
        assert_eq!(duration("ms"), None);
    }
}

/// Arbitrary values for every variable: parsing never panics, and a value
/// it refuses is reported under its own variable.
#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::EnvConfig;

    const VARS: &[&str] = &[
        "OBSERVE_LOG",
        "OBSERVE_LOGSTASH",
        "OBSERVE_UDP",
        "OBSERVE_ELASTICSEARCH",
        "OBSERVE_LOG_FILE",
        "OBSERVE_STDOUT",
        "OBSERVE_PROMETHEUS",
        "OBSERVE_METRICS_ADDR",
        "OBSERVE_INFLUXDB",
        "OBSERVE_INFLUXDB_DB",
        "OBSERVE_INFLUXDB_ORG",
        "OBSERVE_INFLUXDB_BUCKET",
        "OBSERVE_INFLUXDB_TOKEN",
        "OBSERVE_INFLUXDB_INTERVAL",
        "OBSERVE_SYSTEM_METRICS",
        "OBSERVE_MAX_LINE_BYTES",
        "OBSERVE_REDACT",
        "OBSERVE_ID_FORMAT",
        "OBSERVE_FLUSH_TIMEOUT",
        "OBSERVE_HOLD",
        "OBSERVE_TRACING_SPANS",
    ];

    /// The sink variables open files and start workers as the builder
    /// reads them; the builder test leaves them to the parser test above.
    const SINK_VARS: &[&str] = &[
        "OBSERVE_LOGSTASH",
        "OBSERVE_UDP",
        "OBSERVE_ELASTICSEARCH",
        "OBSERVE_LOG_FILE",
    ];

    /// Values near what the variables take: numbers with units, booleans,
    /// addresses, URLs, filters, and anything at all.
    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            "[0-9.eE+-]{0,30}(ms|s|m|h|)",
            "[a-z0-9.:\\[\\]]{0,40}:[0-9]{0,6}",
            "[0-9.:\\[\\]a-f]{0,45}",
            "https?://[a-z0-9.:@/]{0,40}",
            "(true|false|yes|no|on|off|1|0|TRUE|Off|req|uuidv7)",
            "[a-z_:=,]{0,40}",
            any::<String>(),
        ]
    }

    proptest! {
        #[test]
        fn every_variable_parses_or_names_itself(var in 0..VARS.len(), v in value()) {
            let var = VARS[var];
            if let Err(e) = EnvConfig::from_vars([(var, v.as_str())]) {
                // An InfluxDB setting alone is incomplete: reported under
                // the URL's variable.
                let named = e.var == var || e.var == "OBSERVE_INFLUXDB";
                prop_assert!(named, "{} for {}", e, var);
                prop_assert!(e.to_string().starts_with(&e.var));
            }
        }

        #[test]
        fn several_variables_never_panic_the_builder(
            values in proptest::collection::vec((0..VARS.len(), value()), 1..6),
        ) {
            let vars = values
                .iter()
                .map(|(i, v)| (VARS[*i], v.as_str()))
                .filter(|(var, _)| !SINK_VARS.contains(var));
            let builder = super::Observe::builder("parsers").from_env_vars(vars);
            // Debug shows what it holds without starting anything.
            let debug = format!("{builder:?}");
            prop_assert!(debug.contains("parsers"));
        }
    }
}
