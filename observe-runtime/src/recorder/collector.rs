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
/// Tags often come from user input, so what the collector keeps, and every
/// exposition renders, is bounded:
///
/// - each metric keeps at most
///   [`max_label_sets`](Self::with_max_label_sets) distinct tag sets, and
///   all metrics together at most
///   [`DEFAULT_MAX_TOTAL_LABEL_SETS`](Self::DEFAULT_MAX_TOTAL_LABEL_SETS);
///   the values of further sets go to the metric's overflow series
///   (`overflow="true"`) and count in
///   `metric_label_sets_overflow_total{metric}`;
/// - at most [`DEFAULT_MAX_METRICS`](Self::DEFAULT_MAX_METRICS) metric
///   names; a value for a further name is not recorded and counts in
///   `metric_names_overflow_total`;
/// - a tag value (and the operation of a timing) longer than
///   [`MAX_TAG_VALUE_BYTES`](Self::MAX_TAG_VALUE_BYTES) is cut there and
///   ends in `…`, names and tag keys are cut at
///   [`MAX_NAME_BYTES`](Self::MAX_NAME_BYTES), and tags past the first
///   [`MAX_TAGS`](Self::MAX_TAGS) are left out; a value recorded so counts
///   in `metric_tags_cut_total{metric}`.
///
/// Clones share the record of tag sets seen: make one collector and clone
/// it where needed.
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
    limits: Limits,
    seen: Mutex<State>,
}

#[derive(Debug, Clone, Copy)]
struct Limits {
    label_sets: usize,
    total_label_sets: usize,
    metrics: usize,
}

/// Tag sets admitted so far.
#[derive(Debug, Default)]
struct State {
    by_metric: HashMap<String, Seen>,
    /// Sets admitted over all metrics.
    total_sets: usize,
    /// Whether a metric name was refused yet (its counter is described
    /// then).
    names_overflowed: bool,
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

/// Labels made from tags, and whether any tag was cut or left out.
struct Labels {
    labels: Vec<(String, String)>,
    cut: bool,
}

impl Default for MetricsCollector {
    fn default() -> Self {
        Self::new()
    }
}

impl MetricsCollector {
    /// Distinct tag sets kept per metric by [`MetricsCollector::new`].
    pub const DEFAULT_MAX_LABEL_SETS: usize = 1000;
    /// Distinct tag sets kept over all metrics of one collector.
    pub const DEFAULT_MAX_TOTAL_LABEL_SETS: usize = 10_000;
    /// Metric names one collector records.
    pub const DEFAULT_MAX_METRICS: usize = 1000;
    /// Longest tag value (or timed operation) kept whole, in bytes: longer
    /// ones are cut at a character boundary below it and end in `…`.
    pub const MAX_TAG_VALUE_BYTES: usize = 128;
    /// Longest metric name or tag key, in bytes (after invalid characters
    /// became `_`); longer ones are cut.
    pub const MAX_NAME_BYTES: usize = 128;
    /// Tags kept per value, the first ones given; the rest are left out.
    pub const MAX_TAGS: usize = 16;

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
        Self::with_limits(Limits {
            label_sets: max,
            total_label_sets: Self::DEFAULT_MAX_TOTAL_LABEL_SETS,
            metrics: Self::DEFAULT_MAX_METRICS,
        })
    }

    fn with_limits(limits: Limits) -> Self {
        Self {
            inner: Arc::new(Inner {
                limits,
                seen: Mutex::new(State::default()),
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
        let Some(labels) = self.admit(
            names::OPERATION_DURATION_SECONDS,
            Kind::Timing,
            labels(&fixed, tags),
        ) else {
            return;
        };
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
        let Some(labels) = self.admit(&name, Kind::Counter, labels(&[], tags)) else {
            return;
        };
        metrics::with_recorder(|r| {
            r.register_counter(&key(&name, &labels), &METADATA)
                .increment(value);
        });
    }

    /// Sets the gauge `name` to `value`.
    pub fn record_gauge(&self, name: &str, value: f64, tags: &[(&str, &str)]) {
        let name = metric_name(name);
        let Some(labels) = self.admit(&name, Kind::Gauge, labels(&[], tags)) else {
            return;
        };
        metrics::with_recorder(|r| {
            r.register_gauge(&key(&name, &labels), &METADATA).set(value);
        });
    }

    /// The labels to record under: `labels` if the metric has room for
    /// them, else the overflow series; `None` (counted) if the metric is
    /// new and the collector has no room for another name.
    ///
    /// Each newly admitted set and the first overflow also (re)describe
    /// the metric, so that its `# HELP` reaches whichever recorder is
    /// current (Prometheus tooling flags metrics without one).
    fn admit(&self, metric: &str, kind: Kind, labels: Labels) -> Option<Vec<(String, String)>> {
        let Labels { labels, cut } = labels;
        let admission = self.admission(metric, &labels);
        // The counters are recorded after the lock is released: the
        // recorder has locks of its own.
        if let Admission::Refused { first } = admission {
            names_overflow(first);
            return None;
        }
        if cut {
            tags_cut(metric);
        }
        let first_overflow = match admission {
            Admission::Refused { .. } | Admission::Known => return Some(labels),
            Admission::New => {
                describe(metric, kind);
                return Some(labels);
            }
            Admission::Overflow { first } => first,
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
        Some(vec![(names::LABEL_OVERFLOW.to_owned(), "true".to_owned())])
    }

    /// Where `labels` of `metric` go, admitting them if there is room.
    fn admission(&self, metric: &str, labels: &[(String, String)]) -> Admission {
        let limits = self.inner.limits;
        let mut guard = self
            .inner
            .seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let state = &mut *guard;
        if !state.by_metric.contains_key(metric) && state.by_metric.len() >= limits.metrics {
            return Admission::Refused {
                first: !std::mem::replace(&mut state.names_overflowed, true),
            };
        }
        let seen = state.by_metric.entry(metric.to_owned()).or_default();
        if seen.sets.contains(labels) {
            return Admission::Known;
        }
        if seen.sets.len() < limits.label_sets && state.total_sets < limits.total_label_sets {
            seen.sets.insert(labels.to_vec());
            state.total_sets += 1;
            return Admission::New;
        }
        Admission::Overflow {
            first: !std::mem::replace(&mut seen.overflowed, true),
        }
    }
}

/// Where a value goes.
#[derive(Debug, Clone, Copy)]
enum Admission {
    /// Nowhere: a new metric name past the cap (`first` such value).
    Refused { first: bool },
    /// Its labels, admitted before.
    Known,
    /// Its labels, admitted now.
    New,
    /// The metric's overflow series (`first` such value).
    Overflow { first: bool },
}

/// Counts a value refused for a new metric name past the cap.
fn names_overflow(first: bool) {
    if first {
        metrics::describe_counter!(
            names::METRIC_NAMES_OVERFLOW_TOTAL,
            metrics::Unit::Count,
            "Values not recorded because they named a new metric past the collector's cap on metric names."
        );
    }
    let key = Key::from_static_name(names::METRIC_NAMES_OVERFLOW_TOTAL);
    metrics::with_recorder(|r| r.register_counter(&key, &METADATA).increment(1));
}

/// Counts a value recorded with a tag cut or left out. Described every
/// time (it is rare): a recorder installed later still gets the
/// description.
fn tags_cut(metric: &str) {
    metrics::describe_counter!(
        names::METRIC_TAGS_CUT_TOTAL,
        metrics::Unit::Count,
        "Values recorded with a tag value or key cut to the length limit, or tags left out past the count limit."
    );
    let key = Key::from_parts(
        names::METRIC_TAGS_CUT_TOTAL,
        vec![Label::new(names::LABEL_METRIC, metric.to_owned())],
    );
    metrics::with_recorder(|r| r.register_counter(&key, &METADATA).increment(1));
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
/// only in order and no exposition gets a label twice. Values and keys are
/// cut to their limits and tags past [`MetricsCollector::MAX_TAGS`] left
/// out.
fn labels(fixed: &[(&str, &str)], tags: &[(&str, &str)]) -> Labels {
    let mut cut = false;
    let mut value = |v: &str| {
        let (v, was_cut) = cut_value(v);
        cut |= was_cut;
        v
    };
    let mut out: Vec<(String, String)> = fixed
        .iter()
        .map(|(k, v)| ((*k).to_owned(), value(v)))
        .collect();
    let mut extra: Vec<(String, String)> =
        Vec::with_capacity(tags.len().min(MetricsCollector::MAX_TAGS));
    for (k, v) in tags {
        let Some(k) = label_name(k) else { continue };
        if k == names::LABEL_SERVICE
            || out.iter().any(|(f, _)| *f == k)
            || extra.iter().any(|(e, _)| *e == k)
        {
            continue;
        }
        if extra.len() == MetricsCollector::MAX_TAGS {
            cut = true;
            break;
        }
        extra.push((k, value(v)));
    }
    extra.sort();
    out.extend(extra);
    // A key cut to the limit is flagged here, not in `label_name`, which
    // returns only the name.
    cut |= tags
        .iter()
        .take(MetricsCollector::MAX_TAGS)
        .any(|(k, _)| k.chars().count() > MetricsCollector::MAX_NAME_BYTES);
    Labels { labels: out, cut }
}

/// `v` cut to at most [`MetricsCollector::MAX_TAG_VALUE_BYTES`] bytes at a
/// character boundary, then `…`; and whether it was cut.
fn cut_value(v: &str) -> (String, bool) {
    let max = MetricsCollector::MAX_TAG_VALUE_BYTES;
    if v.len() <= max {
        return (v.to_owned(), false);
    }
    let end = (0..=max)
        .rev()
        .find(|&i| v.is_char_boundary(i))
        .unwrap_or(0);
    let mut out = String::with_capacity(end + '…'.len_utf8());
    out.push_str(&v[..end]);
    out.push('…');
    (out, true)
}

/// A Prometheus label name: `[a-zA-Z_][a-zA-Z0-9_]*`, other characters as
/// `_`, and not starting with the reserved `__`; at most
/// [`MetricsCollector::MAX_NAME_BYTES`] bytes.
fn label_name(raw: &str) -> Option<String> {
    if raw.is_empty() {
        return None;
    }
    let mut s: String = raw
        .chars()
        .take(MetricsCollector::MAX_NAME_BYTES)
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
        s.truncate(MetricsCollector::MAX_NAME_BYTES);
    }
    Some(s)
}

/// A Prometheus metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`, other characters
/// as `_`; at most [`MetricsCollector::MAX_NAME_BYTES`] bytes.
fn metric_name(raw: &str) -> String {
    if raw.is_empty() {
        return "unnamed".to_owned();
    }
    raw.chars()
        .take(MetricsCollector::MAX_NAME_BYTES)
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
            )
            .labels,
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

    /// 1,000 distinct tag values of 8 KiB each, on a timing, a counter and
    /// a gauge, through the Prometheus recorder: the exposition stays a few
    /// MiB (it was some 160 MB when values were kept whole).
    #[test]
    fn a_thousand_distinct_8_kib_tag_values_render_under_4_mib() {
        const BOUND: usize = 4 * 1024 * 1024;
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let collector = MetricsCollector::new();
        metrics::with_local_recorder(&recorder, || {
            for i in 0..1000 {
                // Distinct in their first bytes, so each is its own series.
                let value = format!("{i:04}{}", "x".repeat(8 * 1024 - 4));
                let tags = [("user", value.as_str())];
                collector.record_timing("login", Duration::from_millis(3), &tags);
                collector.record_counter("logins", 1, &tags);
                collector.record_gauge("session_age", 1.0, &tags);
            }
        });
        let text = handle.render();
        assert!(text.len() < BOUND, "{} bytes", text.len());
        println!("1,000 x 8 KiB tag values: {} bytes rendered", text.len());
        // Every value is still there, each in its own series.
        let series = text
            .lines()
            .filter(|l| l.starts_with("logins_total{"))
            .count();
        assert_eq!(series, 1000);
        assert!(text.contains("metric_tags_cut_total{metric=\"logins_total\"} 1000"));
    }

    #[test]
    fn long_tags_are_cut_with_a_marker_and_counted() {
        let collector = MetricsCollector::new();
        // Two bytes a character: the cut falls on a character boundary.
        let long = "é".repeat(4096);
        let long_key = "k".repeat(4096);
        let many: Vec<(String, String)> = (0..40)
            .map(|i| (format!("t{i:02}"), i.to_string()))
            .collect();
        let many: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let c = testing::capture(|| {
            collector.record_counter("a", 1, &[("user", &long)]);
            collector.record_counter("a", 1, &[("user", &long)]);
            collector.record_counter("b", 1, &[(&long_key, "v")]);
            collector.record_counter("c", 1, &many);
            collector.record_timing(&long, Duration::from_millis(1), &[]);
            collector.record_counter("d", 1, &[("user", "short")]);
        });
        let m = &c.metrics;
        let cut = format!("{}…", "é".repeat(64));
        assert_eq!(
            m.counter("a_total", &[("user", &cut)]),
            Some(2),
            "{:?}",
            m.keys()
        );
        let key = "k".repeat(MetricsCollector::MAX_NAME_BYTES);
        assert_eq!(
            m.counter("b_total", &[(&key, "v")]),
            Some(1),
            "{:?}",
            m.keys()
        );
        let kept: Vec<(&str, &str)> = many[..MetricsCollector::MAX_TAGS].to_vec();
        assert_eq!(m.counter("c_total", &kept), Some(1), "{:?}", m.keys());
        assert_eq!(
            m.counter(
                "operation_calls_total",
                &[("operation", &cut), ("status", "success")]
            ),
            Some(1)
        );
        for (metric, n) in [
            ("a_total", 2),
            ("b_total", 1),
            ("c_total", 1),
            ("operation_duration_seconds", 1),
        ] {
            assert_eq!(
                m.counter("metric_tags_cut_total", &[("metric", metric)]),
                Some(n),
                "{metric}"
            );
        }
        assert_eq!(
            m.counter("metric_tags_cut_total", &[("metric", "d_total")]),
            None
        );
    }

    #[test]
    fn metric_names_past_the_cap_are_refused_and_counted() {
        let collector = MetricsCollector::new();
        let names: Vec<String> = (0..MetricsCollector::DEFAULT_MAX_METRICS + 500)
            .map(|i| format!("m{i}"))
            .collect();
        let c = testing::capture(|| {
            for name in &names {
                collector.record_gauge(name, 1.0, &[]);
            }
            // A known name keeps recording.
            collector.record_gauge("m0", 2.0, &[]);
        });
        let m = &c.metrics;
        assert_eq!(m.gauge("m0", &[]), Some(2.0));
        let last_kept = format!("m{}", MetricsCollector::DEFAULT_MAX_METRICS - 1);
        assert_eq!(m.gauge(&last_kept, &[]), Some(1.0));
        let first_refused = format!("m{}", MetricsCollector::DEFAULT_MAX_METRICS);
        assert_eq!(m.gauge(&first_refused, &[]), None);
        assert_eq!(m.counter("metric_names_overflow_total", &[]), Some(500));
        let gauges = m.keys().iter().filter(|k| k.starts_with('m')).count();
        assert!(
            gauges <= MetricsCollector::DEFAULT_MAX_METRICS + 1,
            "{gauges}"
        );
    }

    #[test]
    fn label_sets_are_capped_over_all_metrics_too() {
        let collector = MetricsCollector::with_limits(Limits {
            label_sets: 10,
            total_label_sets: 25,
            metrics: 100,
        });
        let c = testing::capture(|| {
            for metric in ["m0", "m1", "m2", "m3"] {
                for i in 0..10 {
                    collector.record_counter(metric, 1, &[("user", &i.to_string())]);
                }
            }
        });
        let m = &c.metrics;
        let overflow =
            |metric: &str| m.counter("metric_label_sets_overflow_total", &[("metric", metric)]);
        assert_eq!(overflow("m1_total"), None);
        assert_eq!(m.counter("m2_total", &[("user", "4")]), Some(1));
        assert_eq!(m.counter("m2_total", &[("user", "5")]), None);
        assert_eq!(overflow("m2_total"), Some(5));
        assert_eq!(overflow("m3_total"), Some(10));
        assert_eq!(m.counter("m3_total", &[("overflow", "true")]), Some(10));
    }
}
