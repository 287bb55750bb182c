//! What runs: the version and commit behind `observe_build_info`, and
//! whether the duration histogram keeps exemplars.

use super::ObserveBuilder;
use crate::recorder::{InfoSeries, NativeMetrics};

/// The name of the build info series.
pub(crate) const BUILD_INFO: &str = "observe_build_info";

/// The version and commit as configured; unset ones show as `unknown`.
#[derive(Debug, Default, Clone)]
pub(crate) struct BuildInfo {
    pub(crate) version: Option<String>,
    pub(crate) commit: Option<String>,
}

impl BuildInfo {
    /// Adds `observe_build_info{version, commit, observe_version} 1` (and
    /// the global `service` label) to `native`.
    pub(crate) fn publish(&self, native: &NativeMetrics) {
        let shown = |v: &Option<String>| v.clone().unwrap_or_else(|| "unknown".to_owned());
        native.add_info(InfoSeries {
            name: BUILD_INFO,
            help: "The running build: service version and commit, and observe's version.",
            labels: vec![
                ("version".to_owned(), shown(&self.version)),
                ("commit".to_owned(), shown(&self.commit)),
                (
                    "observe_version".to_owned(),
                    env!("CARGO_PKG_VERSION").to_owned(),
                ),
            ],
        });
    }
}

impl ObserveBuilder {
    /// Sets the service's version, shown by `observe_build_info` (also
    /// `OBSERVE_VERSION`, or `service.version` in
    /// `OTEL_RESOURCE_ATTRIBUTES`).
    ///
    /// ```no_run
    /// let _guard = observe_runtime::Observe::builder("websocket-ingestion")
    ///     .version(env!("CARGO_PKG_VERSION"))
    ///     .commit(option_env!("GIT_COMMIT").unwrap_or("unknown"))
    ///     .install()?;
    /// # Ok::<(), observe_runtime::InstallError>(())
    /// ```
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.build_info.version = Some(version.into());
        self
    }

    /// Sets the commit the service was built from, shown by
    /// `observe_build_info` (also `OBSERVE_COMMIT`).
    pub fn commit(mut self, commit: impl Into<String>) -> Self {
        self.build_info.commit = Some(commit.into());
        self
    }

    /// Whether the operation duration histogram keeps a recent call per
    /// bucket as its exemplar, shown to scrapers that ask for OpenMetrics
    /// (default `true`; also `OBSERVE_EXEMPLARS`). A call offers one with
    /// a load and a compare; a bucket takes a new one at most every
    /// 100 ms.
    pub fn exemplars(mut self, enabled: bool) -> Self {
        self.exemplars = enabled;
        self
    }
}
