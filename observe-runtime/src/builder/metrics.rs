//! Builder methods for the metrics back-ends: the `/metrics` listener, the
//! InfluxDB push and the system sampler, each started at install (so a
//! failure fails `install()`) and stopped by the guard.

#[cfg(feature = "system-metrics")]
use std::time::Duration;

#[cfg(any(
    feature = "prometheus-listener",
    feature = "influxdb",
    feature = "system-metrics"
))]
use {
    super::{InstallError, ObserveBuilder},
    crate::base::Background,
};

#[cfg(feature = "prometheus-listener")]
impl ObserveBuilder {
    /// Serves the Prometheus exposition on `GET http://{addr}/metrics`
    /// while installed (feature `prometheus-listener`). Use
    /// [`DEFAULT_LISTEN_ADDR`](crate::metrics::DEFAULT_LISTEN_ADDR)
    /// (`127.0.0.1:9000`) unless the scraper is on another host.
    ///
    /// [`install`](Self::install) fails with [`InstallError::Component`]
    /// if the address is in use, or if Prometheus is off.
    ///
    /// ```no_run
    /// let _guard = observe_runtime::Observe::builder("websocket-ingestion")
    ///     .metrics_listener("127.0.0.1:9464".parse().expect("an address"))
    ///     .install()?;
    /// # Ok::<(), observe_runtime::InstallError>(())
    /// ```
    pub fn metrics_listener(self, addr: std::net::SocketAddr) -> Self {
        self.on_install(move |ctx| {
            let handle = prometheus_handle(ctx)?;
            let config = super::reload::config_endpoint(ctx, addr)?;
            std::net::TcpListener::bind(addr)
                .and_then(|l| crate::export::MetricsListener::serve_metrics_with(l, handle, config))
                .map(|l| Box::new(l) as Box<dyn Background>)
                .map_err(|e| listener_error(addr, e))
        })
    }

    /// As [`metrics_listener`](Self::metrics_listener), on a listener you
    /// bound yourself (e.g. to port 0, reading the port chosen first).
    pub fn metrics_listener_on(self, listener: std::net::TcpListener) -> Self {
        self.on_install(move |ctx| {
            let handle = prometheus_handle(ctx)?;
            let addr = listener.local_addr();
            let config = match &addr {
                Ok(a) => super::reload::config_endpoint(ctx, *a)?,
                Err(_) => None,
            };
            crate::export::MetricsListener::serve_metrics_with(listener, handle, config)
                .map(|l| Box::new(l) as Box<dyn Background>)
                .map_err(|e| match addr {
                    Ok(a) => listener_error(a, e),
                    Err(_) => InstallError::component("prometheus listener", e),
                })
        })
    }
}

#[cfg(feature = "prometheus-listener")]
fn prometheus_handle(
    ctx: &super::InstallContext<'_>,
) -> Result<crate::recorder::MetricsHandle, InstallError> {
    ctx.prometheus.cloned().ok_or_else(|| {
        InstallError::component(
            "prometheus listener",
            "Prometheus is off (`.prometheus(false)`): there is nothing to serve",
        )
    })
}

#[cfg(feature = "prometheus-listener")]
fn listener_error(addr: std::net::SocketAddr, source: std::io::Error) -> InstallError {
    InstallError::component("prometheus listener", ListenError { addr, source })
}

/// The listener could not bind or serve its address.
#[cfg(feature = "prometheus-listener")]
#[derive(Debug)]
struct ListenError {
    addr: std::net::SocketAddr,
    source: std::io::Error,
}

#[cfg(feature = "prometheus-listener")]
impl std::fmt::Display for ListenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let addr = self.addr;
        if self.source.kind() == std::io::ErrorKind::AddrInUse {
            write!(f, "address {addr} in use")
        } else {
            write!(f, "cannot listen on {addr}: {}", self.source)
        }
    }
}

#[cfg(feature = "prometheus-listener")]
impl std::error::Error for ListenError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

#[cfg(feature = "influxdb")]
impl ObserveBuilder {
    /// Pushes per-interval aggregates of every metric to InfluxDB while
    /// installed (feature `influxdb`; see [`crate::metrics::influxdb`]).
    /// The installed recorder is wrapped so that the push sees exactly what
    /// the Prometheus recorder sees; dropping the guard flushes it.
    ///
    /// [`install`](Self::install) fails with [`InstallError::Component`]
    /// if the URL is invalid or Prometheus is off (nothing would feed the
    /// push then: use [`InfluxPush`](crate::metrics::influxdb::InfluxPush)
    /// with your own recorder).
    pub fn influxdb(self, config: crate::export::influxdb::InfluxConfig) -> Self {
        use crate::export::influxdb::{AggregatingRecorder, InfluxPush};
        use crate::recorder::Tee;

        let recorder = AggregatingRecorder::default();
        let layer = recorder.clone();
        self.wrap_recorder(move |inner| Box::new(Tee::new(inner, layer)))
            .on_install(move |ctx| {
                if ctx.prometheus.is_none() {
                    return Err(InstallError::component(
                        "influxdb push",
                        "it reads the recorder observe installs, which is off with `.prometheus(false)`",
                    ));
                }
                InfluxPush::start(ctx.service, config, &recorder)
                    .map(|p| Box::new(p) as Box<dyn Background>)
                    .map_err(|e| InstallError::component("influxdb push", e))
            })
    }
}

#[cfg(feature = "system-metrics")]
impl ObserveBuilder {
    /// Samples the `system_*` and `process_*` metrics every `interval`
    /// (30 s is [`DEFAULT_INTERVAL`](crate::system::DEFAULT_INTERVAL))
    /// while installed (feature `system-metrics`; see [`crate::system`]).
    pub fn system_metrics(self, interval: Duration) -> Self {
        self.on_install(move |_| {
            crate::system::SystemSampler::new()
                .spawn(interval)
                .map(|t| Box::new(t) as Box<dyn Background>)
                .map_err(|e| InstallError::component("system sampler", e))
        })
    }
}
