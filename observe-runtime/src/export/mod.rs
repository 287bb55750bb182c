//! Metrics back-ends that take what the recorder holds elsewhere: the
//! `/metrics` listener that serves the Prometheus exposition, and the
//! InfluxDB push with its line-protocol encoder.

#[cfg(feature = "influxdb")]
pub mod influxdb;
#[cfg(feature = "influxdb")]
pub mod line_protocol;
#[cfg(feature = "prometheus-listener")]
mod listener;

#[cfg(feature = "prometheus-listener")]
pub(crate) use listener::ConfigEndpoint;
#[cfg(feature = "prometheus-listener")]
pub use listener::{DEFAULT_LISTEN_ADDR, MetricsListener};
