//! Metric and label names: the contract dashboards and alerts are built on.

/// Calls of a monitored operation, by `operation` and `status`.
pub const OPERATION_CALLS_TOTAL: &str = "operation_calls_total";
/// Duration of monitored calls in seconds (a histogram), by `operation` and `status`.
pub const OPERATION_DURATION_SECONDS: &str = "operation_duration_seconds";
/// Calls that returned `Err`, by `operation` and `error_type`.
pub const OPERATION_ERRORS_TOTAL: &str = "operation_errors_total";
/// Monitored calls currently running, by `operation`.
pub const OPERATION_IN_FLIGHT: &str = "operation_in_flight";
/// Log lines a sink could not deliver, by `sink`.
pub const LOG_LINES_DROPPED_TOTAL: &str = "log_lines_dropped_total";

/// Label holding the operation name.
pub const LABEL_OPERATION: &str = "operation";
/// Label holding the call's outcome (`success`, `error`, `panic`, `cancelled`).
pub const LABEL_STATUS: &str = "status";
/// Label holding the short type name of a returned error.
pub const LABEL_ERROR_TYPE: &str = "error_type";
/// Global label holding the service name.
pub const LABEL_SERVICE: &str = "service";

/// Default histogram buckets for `operation_duration_seconds`: 100 µs to 10 s,
/// dense where in-process operations usually fall.
pub const DEFAULT_DURATION_BUCKETS: &[f64] = &[
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];
