//! Runtime support for [`observe`](https://docs.rs/observe): everything the
//! `#[monitor_performance]` expansion calls, and every sink.
//!
//! Most users depend on the `observe` facade crate instead, which re-exports
//! this crate together with the attribute.
//!
//! - [`correlation`]: the correlation ID, its scopes and future adapters.
//! - [`operation`]: per-callsite metadata, the call guard, outcomes.
//! - [`log`]: the JSON `tracing` layer, validator and redaction.
//! - [`sink`]: where lines go (stdout, in-memory capture).
//! - [`metrics`]: metric names and per-callsite handles.
//! - [`testing`]: run code and get its parsed lines and a metrics snapshot.
//! - [`Observe`]: the builder that installs it all.

mod base;
pub mod builder;
pub mod correlation;
mod export;
pub mod log;
pub mod metrics;
mod net;
pub mod operation;
pub mod sink;
#[cfg(feature = "system-metrics")]
pub mod system;
pub mod testing;

#[doc(hidden)]
pub mod __private;

pub use base::{Background, Status};
pub use builder::{InstallContext, InstallError, Observe, ObserveBuilder, ObserveGuard};
pub use correlation::CorrelationId;
