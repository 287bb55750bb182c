//! `MetricsCollector`: the `record_timing` / `record_counter` /
//! `record_gauge` API with tags that services ported from Python call, as
//! a thin layer over the `metrics` facade, so they reach whatever recorder
//! is installed (Prometheus, the InfluxDB push) like the attribute's own
//! metrics do.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use metrics::{Key, Label};

use crate::base::names;

static METADATA: metrics::Metadata<'static> =
    metrics::Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

/// Records timings, counters and gauges with tags from anywhere.
///
/// Tags often come from user input, so each metric keeps at most
/// [`max_label_sets`](Self::with_max_label_sets) distinct tag sets; the
/// values of further sets go to the metric's overflow series
/// (`overflow="true"`) and count in
/// `metric_label_sets_overflow_total{metric}`. Clones share the record of
/// tag sets seen: make one collector and clone it where needed.
///
/// ```
/// use std::time::Duration;
/// use observe_runtime::metrics::MetricsCollector;
///
/// let metrics = MetricsCollector::new();
/// let captured = observe_runtime::testing::capture(|| {
///     metrics.record_timing(
///         "process_event",
///         Duration::from_millis(12),
///         &[("status", "error"), ("event_type", "state_changed")],
///     );
///     metrics.record_counter("events_failed", 1, &[]);
///     metrics.record_gauge("queue_depth", 17.0, &[("queue", "ingest")]);
/// });
/// let m = &captured.metrics;
/// assert_eq!(
///     m.counter(
///         "operation_calls_total",
///         &[("operation", "process_event"), ("status", "error"), ("event_type", "state_changed")],
///     ),
///     Some(1)
/// );
/// assert_eq!(m.counter("events_failed_total", &[]), Some(1));
/// assert_eq!(m.gauge("queue_depth", &[("queue", "ingest")]), Some(17.0));
/// ```
#[derive(Debug, Clone)]
pub struct MetricsCollector {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    max_label_sets: usize,
    /// Tag sets admitted so far, by metric name.
    seen: Mutex<HashMap<String, Seen>>,
}

#[derive(Debug, Default)]
struct Seen {
    sets: HashSet<Vec<(String, String)>>,
    overflowed: bool,
}

/// What kind of metric a name is, for its description.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Counter,
    Gauge,
    Timing,
}

impl Default for MetricsCollector {
    fn default() -> Self {
        Self::new()
    }
}

impl MetricsCollector {
    /// Distinct tag sets kept per metric by [`MetricsCollector::new`].
    pub const DEFAULT_MAX_LABEL_SETS: usize = 1000;

    /// A collector keeping [`DEFAULT_MAX_LABEL_SETS`](Self::DEFAULT_MAX_LABEL_SETS)
    /// tag sets per metric.
    #[must_use]
    pub fn new() -> Self {
        Self::with_max_label_sets(Self::DEFAULT_MAX_LABEL_SETS)
    }

    /// A collector keeping at most `max` distinct tag sets per metric
    /// (0 sends everything to the overflow series).
    #[must_use]
    pub fn with_max_label_sets(max: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                max_label_sets: max,
                seen: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Records one timed call of `operation`, as a monitored function
    /// would: `operation_duration_seconds` and `operation_calls_total`,
    /// labelled `operation`, `status` (the `status` tag, `success` without
    /// one) and the other tags. Both metrics share one tag-set cap, counted
    /// under `operation_duration_seconds`.
    pub fn record_timing(&self, operation: &str, duration: Duration, tags: &[(&str, &str)]) {
        let status = tags
            .iter()
            .find(|(k, v)| *k == names::LABEL_STATUS && !v.is_empty())
            .map_or("success", |(_, v)| *v);
        let fixed = [
            (names::LABEL_OPERATION, operation),
            (names::LABEL_STATUS, status),
        ];
        let labels = self.admit(
            names::OPERATION_DURATION_SECONDS,
            Kind::Timing,
            labels(&fixed, tags),
        );
        metrics::with_recorder(|r| {
            r.register_histogram(&key(names::OPERATION_DURATION_SECONDS, &labels), &METADATA)
                .record(duration.as_secs_f64());
            r.register_counter(&key(names::OPERATION_CALLS_TOTAL, &labels), &METADATA)
                .increment(1);
        });
    }

    /// Adds `value` to the counter `name` (with `_total` appended when
    /// missing, as Prometheus expects of counters).
    pub fn record_counter(&self, name: &str, value: u64, tags: &[(&str, &str)]) {
        let mut name = metric_name(name);
        if !name.ends_with("_total") {
            name.push_str("_total");
        }
        let labels = self.admit(&name, Kind::Counter, labels(&[], tags));
        metrics::with_recorder(|r| {
            r.register_counter(&key(&name, &labels), &METADATA)
                .increment(value);
        });
    }

    /// Sets the gauge `name` to `value`.
    pub fn record_gauge(&self, name: &str, value: f64, tags: &[(&str, &str)]) {
        let name = metric_name(name);
        let labels = self.admit(&name, Kind::Gauge, labels(&[], tags));
        metrics::with_recorder(|r| {
            r.register_gauge(&key(&name, &labels), &METADATA).set(value);
        });
    }

    /// The labels to record under: `labels` if the metric has room for
    /// them, else the overflow series.
    ///
    /// Each newly admitted set and the first overflow also (re)describe
    /// the metric, so that its `# HELP` reaches whichever recorder is
    /// current (Prometheus tooling flags metrics without one).
    fn admit(
        &self,
        metric: &str,
        kind: Kind,
        labels: Vec<(String, String)>,
    ) -> Vec<(String, String)> {
        let first_overflow = {
            let mut seen = self
                .inner
                .seen
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let state = match seen.get_mut(metric) {
                Some(state) => state,
                None => seen.entry(metric.to_owned()).or_default(),
            };
            if state.sets.contains(&labels) {
                return labels;
            }
            if state.sets.len() < self.inner.max_label_sets {
                state.sets.insert(labels.clone());
                drop(seen);
                describe(metric, kind);
                return labels;
            }
            !std::mem::replace(&mut state.overflowed, true)
        };
        if first_overflow {
            describe(metric, kind);
            metrics::describe_counter!(
                names::METRIC_LABEL_SETS_OVERFLOW_TOTAL,
                metrics::Unit::Count,
                "Values recorded into a metric's overflow series because it reached its label-set cap."
            );
        }
        let overflow_key = Key::from_parts(
            names::METRIC_LABEL_SETS_OVERFLOW_TOTAL,
            vec![Label::new(names::LABEL_METRIC, metric.to_owned())],
        );
        metrics::with_recorder(|r| r.register_counter(&overflow_key, &METADATA).increment(1));
        vec![(names::LABEL_OVERFLOW.to_owned(), "true".to_owned())]
    }
}

fn describe(metric: &str, kind: Kind) {
    let name = metric.to_owned();
    match kind {
        Kind::Counter => {
            metrics::describe_counter!(name, "Counted through MetricsCollector::record_counter.");
        }
        Kind::Gauge => {
            metrics::describe_gauge!(name, "Set through MetricsCollector::record_gauge.");
        }
        // The builder describes the operation metrics themselves.
        Kind::Timing => {}
    }
}

fn key(name: &str, labels: &[(String, String)]) -> Key {
    Key::from_parts(
        name.to_owned(),
        labels
            .iter()
            .map(|(k, v)| Label::new(k.clone(), v.clone()))
            .collect::<Vec<_>>(),
    )
}

/// `fixed` labels, then the tags sorted by key: names made valid, the
/// global `service` label, empty keys, fixed keys and repeated keys left
/// out (the first of a repeated key wins), so that no two label sets differ
/// only in order and no exposition gets a label twice.
fn labels(fixed: &[(&str, &str)], tags: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = fixed
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let mut extra: Vec<(String, String)> = Vec::with_capacity(tags.len());
    for (k, v) in tags {
        let Some(k) = label_name(k) else { continue };
        if k == names::LABEL_SERVICE
            || out.iter().any(|(f, _)| *f == k)
            || extra.iter().any(|(e, _)| *e == k)
        {
            continue;
        }
        extra.push((k, (*v).to_owned()));
    }
    extra.sort();
    out.extend(extra);
    out
}

/// A Prometheus label name: `[a-zA-Z_][a-zA-Z0-9_]*`, other characters as
/// `_`, and not starting with the reserved `__`.
fn label_name(raw: &str) -> Option<String> {
    if raw.is_empty() {
        return None;
    }
    let mut s: String = raw
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if c.is_ascii_alphabetic() || c == '_' || (i > 0 && c.is_ascii_digit()) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.starts_with("__") {
        s.insert_str(0, "tag");
    }
    Some(s)
}

/// A Prometheus metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`, other characters
/// as `_`.
fn metric_name(raw: &str) -> String {
    if raw.is_empty() {
        return "unnamed".to_owned();
    }
    raw.chars()
        .enumerate()
        .map(|(i, c)| {
            if c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit()) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    #[test]
    fn tags_are_sanitised_sorted_and_deduplicated() {
        assert_eq!(
            labels(
                &[("operation", "op")],
                &[
                    ("z", "1"),
                    ("a-b", "2"),
                    ("a_b", "3"),
                    ("operation", "x"),
                    ("service", "s"),
                    ("", "e"),
                    ("9x", "4"),
                    ("__r", "5"),
                ]
            ),
            vec![
                ("operation".to_owned(), "op".to_owned()),
                ("_x".to_owned(), "4".to_owned()),
                ("a_b".to_owned(), "2".to_owned()),
                ("tag__r".to_owned(), "5".to_owned()),
                ("z".to_owned(), "1".to_owned()),
            ]
        );
        assert_eq!(metric_name("events processed.v2"), "events_processed_v2");
        assert_eq!(metric_name("1st"), "_st");
    }

    #[test]
    fn tag_sets_beyond_the_cap_fold_into_one_overflow_series() {
        let collector = MetricsCollector::with_max_label_sets(3);
        let c = testing::capture(|| {
            for i in 0..10 {
                let user = format!("u{i}");
                collector.record_counter("logins", 1, &[("user", &user)]);
            }
            // An admitted set keeps recording under its own labels.
            collector.record_counter("logins", 1, &[("user", "u0")]);
        });
        let m = &c.metrics;
        assert_eq!(m.counter("logins_total", &[("user", "u0")]), Some(2));
        assert_eq!(m.counter("logins_total", &[("user", "u2")]), Some(1));
        assert_eq!(m.counter("logins_total", &[("user", "u3")]), None);
        assert_eq!(m.counter("logins_total", &[("overflow", "true")]), Some(7));
        assert_eq!(
            m.counter(
                "metric_label_sets_overflow_total",
                &[("metric", "logins_total")]
            ),
            Some(7)
        );
    }

    #[test]
    fn timings_default_to_success_and_share_one_cap() {
        let collector = MetricsCollector::with_max_label_sets(1);
        let c = testing::capture(|| {
            collector.record_timing("a", Duration::from_millis(5), &[]);
            collector.record_timing("b", Duration::from_millis(5), &[("status", "error")]);
        });
        let m = &c.metrics;
        assert_eq!(
            m.counter(
                "operation_calls_total",
                &[("operation", "a"), ("status", "success")]
            ),
            Some(1)
        );
        assert_eq!(
            m.counter("operation_calls_total", &[("overflow", "true")]),
            Some(1)
        );
        assert_eq!(
            m.counter(
                "metric_label_sets_overflow_total",
                &[("metric", "operation_duration_seconds")]
            ),
            Some(1)
        );
    }
}
