//! Metrics through the `metrics` facade: names, per-callsite handles, and
//! the Prometheus recorder.

mod collector;
mod handles;
pub use crate::base::names;
mod native;
mod tee;

#[cfg(feature = "prometheus-listener")]
pub use crate::export::{DEFAULT_LISTEN_ADDR, MetricsListener};
#[cfg(feature = "influxdb")]
pub use crate::export::{influxdb, line_protocol};
pub use collector::MetricsCollector;
pub use native::MetricsHandle;
pub use tee::Tee;

pub(crate) use handles::{Handles, Mode, finish, note_global_recorder, start};
pub(crate) use native::{NativeMetrics, NativeRecorder};
