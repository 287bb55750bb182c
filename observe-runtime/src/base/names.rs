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
/// Log lines a sink handed to its destination, by `sink`.
pub const LOG_LINES_SENT_TOTAL: &str = "log_lines_sent_total";

/// Background components (a sink's worker, the InfluxDB push, the system
/// sampler, the `/metrics` listener, the Prometheus upkeep) restarted after
/// a panic, by `component`.
pub const COMPONENT_RESTARTS_TOTAL: &str = "observe_component_restarts_total";

/// Inbound correlation IDs discarded as invalid, by `header`.
pub const CORRELATION_IDS_REJECTED_TOTAL: &str = "correlation_ids_rejected_total";

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

/// Values of [`MetricsCollector`](crate::metrics::MetricsCollector) folded into a
/// metric's overflow series because it reached its label-set cap, by `metric`.
pub const METRIC_LABEL_SETS_OVERFLOW_TOTAL: &str = "metric_label_sets_overflow_total";
/// Values [`MetricsCollector`](crate::metrics::MetricsCollector) refused
/// because they named a new metric past its cap on metric names.
pub const METRIC_NAMES_OVERFLOW_TOTAL: &str = "metric_names_overflow_total";
/// Values [`MetricsCollector`](crate::metrics::MetricsCollector) recorded
/// with a tag cut to the length limit or tags left out past the count
/// limit, by `metric`.
pub const METRIC_TAGS_CUT_TOTAL: &str = "metric_tags_cut_total";
/// Points the InfluxDB push delivered.
pub const INFLUXDB_POINTS_WRITTEN_TOTAL: &str = "influxdb_points_written_total";
/// Points the InfluxDB push gave up on, by `reason` (`buffer_full`,
/// `rejected`, `shutdown`, `invalid`).
pub const INFLUXDB_POINTS_DROPPED_TOTAL: &str = "influxdb_points_dropped_total";

/// OTLP exports that failed or were given up on, by `signal` (`metrics`,
/// ...): the periodic metrics export counts each request it could not
/// deliver.
pub const OTLP_EXPORTS_FAILED_TOTAL: &str = "otlp_exports_failed_total";

/// Whole-machine CPU usage, 0-100.
pub const SYSTEM_CPU_USAGE_PERCENT: &str = "system_cpu_usage_percent";
/// Memory in use, in bytes.
pub const SYSTEM_MEMORY_USED_BYTES: &str = "system_memory_used_bytes";
/// Memory in use, 0-100.
pub const SYSTEM_MEMORY_USAGE_PERCENT: &str = "system_memory_usage_percent";
/// Space available to unprivileged users, in bytes, by `mount`.
pub const SYSTEM_DISK_FREE_BYTES: &str = "system_disk_free_bytes";
/// Share of a file system's size unavailable to unprivileged users, 0-100,
/// by `mount`: blocks reserved for root count as in use.
pub const SYSTEM_DISK_USAGE_PERCENT: &str = "system_disk_usage_percent";
/// Bytes received since boot, by `interface`.
pub const SYSTEM_NETWORK_RECEIVE_BYTES_TOTAL: &str = "system_network_receive_bytes_total";
/// Bytes sent since boot, by `interface`.
pub const SYSTEM_NETWORK_TRANSMIT_BYTES_TOTAL: &str = "system_network_transmit_bytes_total";
/// Resident memory of this process, in bytes.
pub const PROCESS_RESIDENT_MEMORY_BYTES: &str = "process_resident_memory_bytes";
/// CPU time this process used, user and system, in whole seconds rounded
/// down (the `metrics` facade's counters are integers).
pub const PROCESS_CPU_SECONDS_TOTAL: &str = "process_cpu_seconds_total";

/// Label holding a metric's name (overflow counter, Influx `metric` tag).
pub const LABEL_METRIC: &str = "metric";
/// Label of the overflow series: `overflow="true"`.
pub const LABEL_OVERFLOW: &str = "overflow";
/// Label holding why something was dropped.
pub const LABEL_REASON: &str = "reason";
/// Label holding a background component's name (`sink stdout`,
/// `influxdb push`, ...).
pub const LABEL_COMPONENT: &str = "component";
/// Label holding an OpenTelemetry signal: `traces`, `logs` or `metrics`.
pub const LABEL_SIGNAL: &str = "signal";
/// Label holding a file system's mount point.
pub const LABEL_MOUNT: &str = "mount";
/// Label holding a network interface's name.
pub const LABEL_INTERFACE: &str = "interface";

/// `[a-zA-Z_][a-zA-Z0-9_.:-]*`, the names `#[monitor_performance]` accepts.
#[doc(hidden)]
#[must_use]
pub const fn is_valid_operation(name: &str) -> bool {
    let b = name.as_bytes();
    if b.is_empty() || !(b[0].is_ascii_alphabetic() || b[0] == b'_') {
        return false;
    }
    let mut i = 1;
    while i < b.len() {
        let c = b[i];
        if !(c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b':' | b'-')) {
            return false;
        }
        i += 1;
    }
    true
}
