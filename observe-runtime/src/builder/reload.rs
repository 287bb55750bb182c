//! Builder methods for live reload of the log volume settings: a file
//! re-read on SIGHUP (unix), and `POST /config` on the metrics listener.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};

use super::{InstallError, ObserveBuilder};

/// `POST /config` on the metrics listener, asked for with
/// [`ObserveBuilder::reload_endpoint`].
pub(crate) struct ReloadEndpoint {
    pub(super) token: Option<String>,
    /// Set when a metrics listener took it, so that install can refuse an
    /// endpoint nothing serves.
    pub(super) served: AtomicBool,
}

impl fmt::Debug for ReloadEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReloadEndpoint")
            .field("token", &self.token.as_ref().map(|_| "***"))
            .finish()
    }
}

impl ObserveBuilder {
    /// Re-reads the log volume settings from the file at `path` on each
    /// SIGHUP (unix only; also `OBSERVE_RELOAD_FILE`).
    ///
    /// The file holds `OBSERVE_SAMPLE`, `OBSERVE_RATE_LIMIT` and
    /// `OBSERVE_LEVELS` lines as the environment takes them (`#` comments
    /// and blank lines are skipped, other variables ignored, so the
    /// service's environment file can serve). A reload applies the
    /// process environment's values of these variables, then the file's,
    /// all or nothing, and logs each change once (`log volume changed:
    /// ...`). A process's environment cannot be changed from outside, so
    /// the file is what an operator edits. A file that cannot be read or
    /// parsed is one ERROR line naming it and the bad part; nothing is
    /// applied and the service runs on.
    ///
    /// The file is also read at install, after the settings made in code
    /// and by the environment; it may not exist yet, but if it does and
    /// cannot be parsed, [`install`](Self::install) fails. After the guard
    /// drops, SIGHUP is ignored rather than ending the process.
    ///
    /// ```no_run
    /// // echo 'OBSERVE_SAMPLE=ingestion.receive=0.01' > /etc/ingestor/volume.env
    /// // kill -HUP $(pidof ingestor)
    /// let _guard = observe_runtime::Observe::builder("ingestor")
    ///     .reload_file("/etc/ingestor/volume.env")
    ///     .install()?;
    /// # Ok::<(), observe_runtime::InstallError>(())
    /// ```
    #[cfg(unix)]
    pub fn reload_file(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.reload_file = Some(path.into());
        self
    }

    /// Adds `POST /config` to the metrics listener (feature
    /// `prometheus-listener`; off by default; also `OBSERVE_RELOAD_TOKEN`,
    /// which sets the token and turns it on).
    ///
    /// The body is the same `KEY=VALUE` lines as a
    /// [`reload_file`](Self::reload_file) (variables other than the three
    /// volume settings are refused), at most 8 KiB, under the listener's
    /// deadlines. With a token, requests must carry `Authorization: Bearer
    /// <token>` (compared in constant time) or get `401`. A body that does
    /// not parse gets `400` with the reason and changes nothing; otherwise
    /// `200` lists the changes, each also logged once.
    ///
    /// Without a token the listener must be on a loopback address (its
    /// default), else [`install`](Self::install) fails; it also fails
    /// when no [`metrics_listener`](Self::metrics_listener) is configured.
    ///
    /// ```no_run
    /// // curl -X POST -H "Authorization: Bearer $TOKEN" \
    /// //      --data-binary 'OBSERVE_LEVELS=admin.health=warn' http://127.0.0.1:9000/config
    /// let _guard = observe_runtime::Observe::builder("ingestor")
    ///     .metrics_listener(observe_runtime::metrics::DEFAULT_LISTEN_ADDR)
    ///     .reload_endpoint(std::env::var("RELOAD_TOKEN").ok())
    ///     .install()?;
    /// # Ok::<(), observe_runtime::InstallError>(())
    /// ```
    #[cfg(feature = "prometheus-listener")]
    pub fn reload_endpoint(mut self, token: Option<String>) -> Self {
        self.reload_endpoint = Some(ReloadEndpoint {
            token: token.filter(|t| !t.is_empty()),
            served: AtomicBool::new(false),
        });
        self
    }

    /// The reload file's settings, read before anything is installed so
    /// that a bad file fails install; none without a file.
    pub(super) fn reload_file_settings(
        &self,
    ) -> Result<Vec<(String, crate::volume::Setting)>, InstallError> {
        let Some(path) = &self.reload_file else {
            return Ok(Vec::new());
        };
        crate::volume::read_file_at_install(path).map_err(|e| {
            InstallError::component(
                "reload on SIGHUP",
                format!("reload file {}: {e}", path.display()),
            )
        })
    }

    /// Queues the SIGHUP handler among the components install starts.
    #[cfg(unix)]
    pub(super) fn start_sighup_reload(&mut self) {
        use crate::base::Background;
        if let Some(path) = self.reload_file.clone() {
            self.starters.0.push(Box::new(move |_| {
                crate::volume::SighupReload::start(path)
                    .map(|r| Box::new(r) as Box<dyn Background>)
                    .map_err(|e| InstallError::component("reload on SIGHUP", e))
            }));
        }
    }

    #[cfg(not(unix))]
    pub(super) fn start_sighup_reload(&mut self) {}

    /// Refuses a reload endpoint that no metrics listener took.
    pub(super) fn check_reload_served(&self) -> Result<(), InstallError> {
        match &self.reload_endpoint {
            Some(e) if !e.served.load(Ordering::Relaxed) => Err(InstallError::component(
                "reload endpoint",
                "POST /config is served by the metrics listener: add `.metrics_listener(addr)` \
                 (or OBSERVE_METRICS_ADDR)",
            )),
            _ => Ok(()),
        }
    }
}

/// `POST /config` for a metrics listener on `addr`, if asked for.
///
/// # Errors
/// Asked for without a token on an address other than loopback.
#[cfg(feature = "prometheus-listener")]
pub(super) fn config_endpoint(
    ctx: &super::InstallContext<'_>,
    addr: std::net::SocketAddr,
) -> Result<Option<crate::export::ConfigEndpoint>, InstallError> {
    let Some(endpoint) = ctx.reload_endpoint else {
        return Ok(None);
    };
    if endpoint.token.is_none() && !addr.ip().is_loopback() {
        return Err(InstallError::component(
            "prometheus listener",
            format!(
                "POST /config without a token is only served on a loopback address, not {addr}: \
                 set a token (`.reload_endpoint(Some(token))` or OBSERVE_RELOAD_TOKEN)"
            ),
        ));
    }
    endpoint.served.store(true, Ordering::Relaxed);
    let apply = |body: &str| match crate::volume::apply_text(body) {
        Ok(changes) if changes.is_empty() => Ok("no change\n".to_owned()),
        Ok(changes) => Ok(changes.iter().map(|c| format!("{c}\n")).collect()),
        Err(e) => Err(e.to_string()),
    };
    Ok(Some(crate::export::ConfigEndpoint::new(
        std::sync::Arc::new(apply),
        endpoint.token.clone(),
    )))
}
