//! Builder methods for the OTLP exporter (feature `otlp`), and how
//! `install()` wires it: the spans' consumer on the JSON layer, the log
//! records' sink next to the other sinks, the metrics exporter among the
//! components. Without the feature the wiring passes everything through.

use std::sync::Arc;

use super::{InstallError, ObserveBuilder};
use crate::base::Background;
use crate::log::JsonLayer;
use crate::recorder::MetricsHandle;
use crate::sink::Sink;
#[cfg(feature = "otlp")]
use crate::{
    otlp::{OtlpConfig, OtlpEnv, OtlpExporter},
    sink::FanOut,
};

/// What the builder was told about OTLP.
#[derive(Debug, Default)]
pub(super) struct Settings {
    #[cfg(feature = "otlp")]
    config: Option<OtlpConfig>,
    /// `OTEL_RESOURCE_ATTRIBUTES`.
    #[cfg_attr(not(feature = "otlp"), allow(dead_code))]
    resource: Vec<(String, String)>,
}

#[cfg(feature = "otlp")]
impl ObserveBuilder {
    /// Exports a span per monitored call, a log record per line and the
    /// metrics to the OTLP/HTTP collector at `endpoint`
    /// (`http://host:4318`; `/v1/traces`, `/v1/logs` and `/v1/metrics`
    /// are appended), with the default [`OtlpConfig`] otherwise (feature
    /// `otlp`).
    ///
    /// The log records are a sink like the others: they replace the
    /// standard output default ([`stdout`](Self::stdout) keeps both) and
    /// go beside any sink added. Dropping the guard flushes spans and
    /// records with the lines, within the flush timeout.
    ///
    /// ```no_run
    /// let _guard = observe_runtime::Observe::builder("websocket-ingestion")
    ///     .otlp("http://127.0.0.1:4318")
    ///     .install()?;
    /// # Ok::<(), observe_runtime::InstallError>(())
    /// ```
    pub fn otlp(self, endpoint: impl Into<String>) -> Self {
        self.otlp_config(OtlpConfig::new(endpoint))
    }

    /// As [`otlp`](Self::otlp), with every option of `config` (feature
    /// `otlp`). [`install`](Self::install) fails with
    /// [`InstallError::Otlp`] if an endpoint or header cannot be used.
    /// `OTEL_SDK_DISABLED=true` read by [`from_env`](Self::from_env)
    /// after this call turns it off.
    pub fn otlp_config(mut self, config: OtlpConfig) -> Self {
        self.otlp.config = Some(config);
        self
    }
}

/// The exporter started at install.
#[derive(Debug)]
pub(super) struct Started {
    #[cfg(feature = "otlp")]
    exporter: Option<OtlpExporter>,
}

/// Starts what the builder was told to export: the traces and logs
/// workers, and the metrics exporter (returned among the components).
pub(super) fn start(
    b: &ObserveBuilder,
    prometheus: Option<&MetricsHandle>,
) -> Result<(Started, Option<Box<dyn Background>>), InstallError> {
    #[cfg(feature = "otlp")]
    {
        let Some(config) = b.otlp.config.as_ref().filter(|c| !c.disabled) else {
            return Ok((Started { exporter: None }, None));
        };
        let mut config = config.clone();
        for (k, v) in &b.otlp.resource {
            config = config.resource_attribute(k.clone(), v.clone());
        }
        let version = b.build_info.version.as_deref();
        let exporter =
            OtlpExporter::start(&b.service, version, &config).map_err(InstallError::Otlp)?;
        let metrics = crate::otlp::start_metrics(&config, &b.service, version, prometheus)
            .map_err(InstallError::Otlp)?;
        Ok((
            Started {
                exporter: Some(exporter),
            },
            metrics,
        ))
    }
    #[cfg(not(feature = "otlp"))]
    {
        let _ = (b, prometheus);
        Ok((Started {}, None))
    }
}

impl Started {
    /// The sink lines go to: `configured` (the sinks the builder was
    /// given, `None` for none) with the exporter beside it, whose flush
    /// also drains the spans. OTLP log records stand in for the standard
    /// output default, as any sink does (`.stdout()` keeps both); with
    /// log records off, standard output stays the default.
    pub(super) fn sink(
        &self,
        configured: Option<Arc<dyn Sink>>,
        stdout: impl FnOnce() -> Result<Arc<dyn Sink>, InstallError>,
    ) -> Result<Arc<dyn Sink>, InstallError> {
        #[cfg(feature = "otlp")]
        if let Some(e) = &self.exporter {
            let exporter: Arc<dyn Sink> = Arc::new(e.clone());
            let others = match configured {
                Some(s) => Some(s),
                None if e.exports_logs() => None,
                None => Some(stdout()?),
            };
            return Ok(match others {
                Some(s) => Arc::new(FanOut::new(vec![s, exporter])),
                None => exporter,
            });
        }
        match configured {
            Some(s) => Ok(s),
            None => stdout(),
        }
    }

    /// `layer`, handing its calls to the spans' consumer too.
    pub(super) fn layer(&self, layer: JsonLayer) -> JsonLayer {
        #[cfg(feature = "otlp")]
        if let Some(c) = self.exporter.as_ref().and_then(OtlpExporter::call_consumer) {
            return layer.with_call_consumer(c);
        }
        layer
    }
}

/// The variables that ask for the OTLP exporter.
const ENDPOINT_VARS: [&str; 4] = [
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
];

/// The `OTEL_*` variables, parsed by the environment step.
#[derive(Debug, Default)]
pub(super) struct FromEnv {
    #[cfg(feature = "otlp")]
    env: Option<OtlpEnv>,
    /// The endpoint variable that asks for the exporter, unless
    /// `OTEL_SDK_DISABLED` turns it off.
    pub(super) asked_by: Option<&'static str>,
}

impl FromEnv {
    /// Parses the `OTEL_*` pairs; a bad value is `(variable, value as it
    /// may be shown, the form expected)`.
    pub(super) fn parse(vars: &[(String, String)]) -> Result<Self, (String, String, &'static str)> {
        let set = |name: &str| {
            vars.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.trim())
                .filter(|v| !v.is_empty())
        };
        let disabled =
            set("OTEL_SDK_DISABLED").and_then(crate::base::setting::boolean) == Some(true);
        let asked_by = ENDPOINT_VARS
            .into_iter()
            .find(|name| !disabled && set(name).is_some());
        #[cfg(feature = "otlp")]
        {
            let env = OtlpEnv::parse(vars.iter().map(|(k, v)| (k, v)))
                .map_err(|bad| (bad.var, bad.value, bad.expected))?;
            Ok(Self {
                env: Some(env),
                asked_by,
            })
        }
        #[cfg(not(feature = "otlp"))]
        Ok(Self { asked_by })
    }
}

/// Applies the variables: an endpoint variable turns the exporter on, the
/// others change a configuration made in code, and `resource` is added to
/// the resource of whatever is exported.
pub(super) fn apply_env(
    mut b: ObserveBuilder,
    env: FromEnv,
    resource: Vec<(String, String)>,
) -> ObserveBuilder {
    b.otlp.resource.extend(resource);
    #[cfg(feature = "otlp")]
    if let Some(env) = env.env {
        if env.sets_endpoint() || b.otlp.config.is_some() {
            let base = b.otlp.config.take().unwrap_or_default();
            b.otlp.config = Some(env.apply(base));
        }
    }
    #[cfg(not(feature = "otlp"))]
    let _ = env;
    b
}

#[cfg(all(test, feature = "otlp"))]
mod tests {
    use super::super::Observe;
    use super::*;

    #[test]
    fn the_environment_turns_the_exporter_on_and_off() {
        let b = Observe::builder("svc")
            .from_env_vars([("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")]);
        let c = b.otlp.config.as_ref().expect("on");
        assert_eq!(c.endpoint, "http://127.0.0.1:9");
        let b = Observe::builder("svc")
            .otlp("http://127.0.0.1:9")
            .from_env_vars([
                ("OTEL_SDK_DISABLED", "true"),
                ("OTEL_EXPORTER_OTLP_TIMEOUT", "5"),
            ]);
        let c = b.otlp.config.as_ref().expect("configured");
        assert!(c.disabled);
        assert_eq!(c.timeout, std::time::Duration::from_millis(5));
        let b = Observe::builder("svc").from_env_vars([("OTEL_EXPORTER_OTLP_TIMEOUT", "5")]);
        assert!(b.otlp.config.is_none(), "no endpoint, nothing to export");
        let (started, metrics) = start(
            &Observe::builder("svc")
                .otlp("http://127.0.0.1:9")
                .from_env_vars([("OTEL_SDK_DISABLED", "true")]),
            None,
        )
        .expect("starts");
        assert!(started.exporter.is_none() && metrics.is_none());
    }

    #[test]
    fn a_bad_endpoint_fails_install() {
        let e = Observe::builder("svc")
            .otlp("collector:4318")
            .prometheus(false)
            .install()
            .expect_err("a bad endpoint");
        assert!(matches!(e, InstallError::Otlp(_)), "{e:?}");
        assert!(e.to_string().contains("traces endpoint"), "{e}");
    }
}

#[cfg(test)]
mod env_tests {
    use super::FromEnv;

    fn asked_by(vars: &[(&str, &str)]) -> Option<&'static str> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        FromEnv::parse(&vars).expect("valid").asked_by
    }

    #[test]
    fn only_the_otlp_endpoint_variables_ask_for_the_exporter() {
        assert_eq!(
            asked_by(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://h:4318/t")]),
            Some("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        );
        assert_eq!(
            asked_by(&[("OTEL_EXPORTER_ZIPKIN_ENDPOINT", "http://h:9411")]),
            None
        );
        assert_eq!(asked_by(&[("OTEL_EXPORTER_OTLP_ENDPOINT", " ")]), None);
        assert_eq!(
            asked_by(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://h:4318"),
                ("OTEL_SDK_DISABLED", "true"),
            ]),
            None
        );
    }
}
