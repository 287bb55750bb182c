//! One finished monitored call as typed data, and the one interface its
//! consumers read it through.
//!
//! When a monitored call ends and its line is enabled, its guard builds a
//! [`CallRecord`] (operation, status, level, duration, start and end time,
//! correlation ID, context fields, error type and text) and hands it to the
//! [`CallConsumer`]s of the current subscriber. The JSON line writer of
//! [`JsonLayer`](crate::log::JsonLayer) is one; a consumer added with
//! [`JsonLayer::with_call_consumer`](crate::log::JsonLayer::with_call_consumer)
//! reads the same record. A record is never re-derived from a formatted line
//! or from `tracing` field names.
//!
//! The same call is also dispatched as an ordinary `tracing` event named
//! [`EVENT_NAME`], so other layers (a `fmt` layer, a test's own layer) see
//! monitored calls as before; the JSON layer writes calls from their
//! records and skips those events.
//!
//! ```
//! use std::sync::{Arc, Mutex};
//!
//! use observe_runtime::log::JsonLayer;
//! use observe_runtime::record::{CallConsumer, CallRecord};
//! use observe_runtime::sink::CaptureSink;
//! use tracing_subscriber::layer::SubscriberExt;
//!
//! /// Keeps the operation and status of every finished call.
//! #[derive(Debug, Default)]
//! struct Outcomes(Mutex<Vec<String>>);
//!
//! impl CallConsumer for Outcomes {
//!     fn on_call(&self, call: &CallRecord<'_>) {
//!         let mut seen = self.0.lock().unwrap();
//!         seen.push(format!("{} {}", call.operation(), call.status()));
//!     }
//! }
//!
//! let outcomes = Arc::new(Outcomes::default());
//! let layer = JsonLayer::new("billing")
//!     .with_sink(CaptureSink::new())
//!     .with_call_consumer(outcomes.clone());
//! let _subscriber = tracing_subscriber::registry().with(layer);
//! // Every monitored call run under `_subscriber` now also reaches
//! // `outcomes`.
//! ```

mod call;
mod consumer;
#[cfg(feature = "otlp")]
mod site;

pub(crate) use call::Message;
pub use call::{CallError, CallRecord};
pub use consumer::CallConsumer;
pub(crate) use consumer::{Consumers, emit, emit_unlogged, unlogged_wanted};
#[cfg(feature = "otlp")]
pub(crate) use site::{SiteInfo, SiteNumber, catch_up as catch_up_sites};

/// Name of the `tracing` event a monitored call dispatches for other
/// layers; the JSON layer writes calls from their records instead.
pub const EVENT_NAME: &str = "observe operation";

/// Field names of the `tracing` event of a call, in the order its guard
/// fills them.
#[doc(hidden)]
pub const FIELDS: &[&str] = &[
    "message",
    "operation",
    "status",
    "duration_ns",
    "error_type",
    "context",
    "threshold_ns",
];
