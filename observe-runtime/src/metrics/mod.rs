//! Metrics through the `metrics` facade: names, per-callsite handles, and
//! the Prometheus recorder.

mod builder_ext;
mod collector;
mod handles;
#[cfg(feature = "influxdb")]
pub mod influxdb;
#[cfg(feature = "influxdb")]
pub mod line_protocol;
#[cfg(feature = "prometheus-listener")]
mod listener;
pub use crate::base::names;
mod native;
mod tee;

pub use collector::MetricsCollector;
#[cfg(feature = "prometheus-listener")]
pub use listener::{DEFAULT_LISTEN_ADDR, MetricsListener};
pub use native::MetricsHandle;
pub use tee::Tee;

pub(crate) use handles::{Handles, Mode, finish, note_global_recorder, start};
pub(crate) use native::{NativeMetrics, NativeRecorder};
