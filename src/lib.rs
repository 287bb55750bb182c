//! observe: one attribute gives a function timing, correlation-ID
//! propagation, structured JSON logs and Prometheus metrics.

pub use observe_macros::monitor_performance;
pub use observe_runtime::{
    CorrelationId, InstallError, Observe, ObserveBuilder, ObserveGuard, Status, correlation, log, metrics,
    operation, sink, testing,
};

#[doc(hidden)]
pub mod __private {
    pub use observe_runtime::__private::*;
}
