//! Runtime support for [`observe`](https://docs.rs/observe): everything the
//! `#[monitor_performance]` expansion calls, and every sink.
//!
//! Most users depend on the `observe` facade crate instead, which re-exports
//! this crate together with the attribute.
//!
//! - [`correlation`]: the correlation ID, its scopes and future adapters.
//! - [`record`]: one finished call as typed data, and its consumers.
//! - [`log`]: the JSON `tracing` layer, validator and redaction.
//! - [`sink`]: where lines go (stdout, files, collectors, in-memory capture).
//! - [`metrics`]: metric names, the Prometheus exposition and the
//!   metrics back-ends.
//! - `otlp` (feature `otlp`): spans, log records and metrics over
//!   OTLP/HTTP to an OpenTelemetry collector.
//! - [`slo`]: service level objectives and the Prometheus rules that watch
//!   them.
//! - [`testing`]: run code and get its parsed lines and a metrics snapshot.
//! - [`Observe`]: the builder that installs it all.
//!
//! Inside, each folder imports only from folders below it (`base` at the
//! bottom, the builder and the test kit on top); `tests/architecture.rs`
//! holds the order and checks it.

mod base;
pub mod builder;
pub mod correlation;
mod export;
pub mod log;
mod net;
mod operation;
#[cfg(feature = "otlp")]
pub mod otlp;
pub mod record;
mod recorder;
pub mod sink;
pub mod slo;
#[cfg(feature = "system-metrics")]
pub mod system;
pub mod testing;
pub mod volume;

pub mod metrics {
    //! Metrics through the `metrics` facade: the metric [`names`], the
    //! [`MetricsHandle`] that renders the Prometheus exposition, the
    //! [`MetricsCollector`] API, the [`Tee`] recorder, and the back-ends:
    //! the `/metrics` listener (feature `prometheus-listener`) and the
    //! InfluxDB push with its line protocol (feature `influxdb`).

    pub use crate::base::names;
    #[cfg(feature = "prometheus-listener")]
    pub use crate::export::{DEFAULT_LISTEN_ADDR, MetricsListener};
    #[cfg(feature = "influxdb")]
    pub use crate::export::{influxdb, line_protocol};
    pub use crate::recorder::{MetricsCollector, MetricsHandle, Tee};
}

#[doc(hidden)]
pub mod __private;

pub use base::{Background, Status};
pub use builder::{InstallContext, InstallError, Observe, ObserveBuilder, ObserveGuard};
pub use correlation::CorrelationId;
pub use operation::{TRACING_SPAN_NAME, set_tracing_spans};
