//! The recorder side of metrics: the native store of the operation
//! duration histogram and the handle that renders the exposition, each
//! callsite's cached handles, the seed-style collector and the `Tee`
//! recorder. The public `metrics` module (in `lib.rs`) publishes these
//! together with the metric names from `base` and the back-ends from
//! `export`, which sit above this module.

mod calls;
mod collector;
mod exemplar;
mod handles;
mod native;
mod openmetrics;
mod shard;
mod tee;

pub use collector::MetricsCollector;
pub use native::MetricsHandle;
pub use tee::Tee;

pub(crate) use handles::{
    Mode, Site, finish, note_exemplar_store, note_global_recorder, note_native_store, start,
};
#[cfg(feature = "otlp")]
pub(crate) use native::{HistogramValue, NativeSnapshot, SeriesSnapshot};
pub(crate) use native::{InfoSeries, NativeMetrics, NativeRecorder};
#[cfg(test)]
pub(crate) use openmetrics::Format;
#[cfg(feature = "prometheus-listener")]
pub(crate) use openmetrics::TEXT_CONTENT_TYPE;
