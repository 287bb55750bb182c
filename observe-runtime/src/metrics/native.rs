//! The `operation_duration_seconds` histogram, kept as bucket counts.
//!
//! `metrics-exporter-prometheus` stores every histogram sample with a
//! timestamp in a lock-free bucket and buckets it at scrape time: a clock
//! read, an epoch pin and three atomic operations per sample, the largest
//! share of a monitored call's metrics cost. Every monitored call records
//! exactly one duration, always into the same configured buckets, so this
//! histogram is kept here as what the exposition needs (cumulative bucket
//! counts, an exact sum of nanoseconds): one bucket increment and one sum
//! increment per sample. [`NativeRecorder`] wraps observe's Prometheus
//! recorder and takes over the registration of that one metric name;
//! [`MetricsHandle::render`] appends it to the exporter's text.
//!
//! Recorders that wrap observe's (like the InfluxDB aggregator) still see
//! every sample through the handle they wrap.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use metrics::{
    Counter, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder, SharedString, Unit,
};
use metrics_exporter_prometheus::PrometheusHandle;

use super::names;

/// One label set's histogram.
#[derive(Debug)]
struct Buckets {
    /// Upper bounds, ascending.
    bounds: Arc<[f64]>,
    /// One count per bound, then the overflow (`+Inf`) count.
    counts: Box<[AtomicU64]>,
    sum_nanos: AtomicU64,
}

impl HistogramFn for Buckets {
    fn record(&self, seconds: f64) {
        // NaN and negative durations count as zero rather than vanish.
        let seconds = if seconds > 0.0 { seconds } else { 0.0 };
        let i = self
            .bounds
            .iter()
            .position(|&b| seconds <= b)
            .unwrap_or(self.bounds.len());
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        // Rounded to the nearest nanosecond by adding a half before the
        // truncating cast (`seconds` is not negative here), which costs no
        // libm call; the cast saturates, so a duration past 584 years cannot
        // overflow the sum into nonsense.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let nanos = (seconds * 1e9 + 0.5) as u64;
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }
}

/// Every label set of the native histogram, and how to render them.
#[derive(Debug)]
pub(crate) struct NativeHistograms {
    bounds: Arc<[f64]>,
    /// `name="value"` pairs put before each series' own labels.
    global_labels: Vec<(String, String)>,
    series: Mutex<HashMap<Key, Arc<Buckets>>>,
    description: Mutex<Option<SharedString>>,
}

impl NativeHistograms {
    /// `bounds` are the configured buckets (sorted and deduplicated here).
    pub(crate) fn new(bounds: &[f64], global_labels: Vec<(String, String)>) -> Self {
        let mut bounds: Vec<f64> = bounds.iter().copied().filter(|b| b.is_finite()).collect();
        bounds.sort_by(f64::total_cmp);
        bounds.dedup();
        Self {
            bounds: bounds.into(),
            global_labels,
            series: Mutex::new(HashMap::new()),
            description: Mutex::new(None),
        }
    }

    fn histogram(&self, key: &Key) -> Histogram {
        let mut series = self.series.lock().unwrap_or_else(PoisonError::into_inner);
        let buckets = series.entry(key.clone()).or_insert_with(|| {
            Arc::new(Buckets {
                bounds: Arc::clone(&self.bounds),
                counts: (0..=self.bounds.len()).map(|_| AtomicU64::new(0)).collect(),
                sum_nanos: AtomicU64::new(0),
            })
        });
        Histogram::from_arc(Arc::clone(buckets))
    }

    /// Appends the histogram family in the Prometheus text format.
    pub(crate) fn render_into(&self, out: &mut String) {
        let mut series: Vec<(Key, Arc<Buckets>)> = self
            .series
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(k, b)| (k.clone(), Arc::clone(b)))
            .collect();
        if series.is_empty() {
            return;
        }
        series.sort_by(|a, b| a.0.labels().cmp(b.0.labels()));
        let name = names::OPERATION_DURATION_SECONDS;
        if let Some(d) = &*self
            .description
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
        {
            let _ = writeln!(out, "# HELP {name} {}", escape_help(d));
        }
        let _ = writeln!(out, "# TYPE {name} histogram");
        for (key, b) in series {
            let labels = self.labels(&key);
            let mut total = 0u64;
            for (i, bound) in b.bounds.iter().enumerate() {
                total += b.counts[i].load(Ordering::Relaxed);
                let _ = writeln!(out, "{name}_bucket{{{labels}le=\"{bound}\"}} {total}");
            }
            total += b.counts[b.bounds.len()].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels}le=\"+Inf\"}} {total}");
            #[allow(clippy::cast_precision_loss)]
            let sum = b.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
            let labels = labels.trim_end_matches(',');
            let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
            let _ = writeln!(out, "{name}_count{{{labels}}} {total}");
        }
    }

    /// `a="x",b="y",` (global labels first), escaped.
    fn labels(&self, key: &Key) -> String {
        let mut s = String::new();
        let pairs = self
            .global_labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain(key.labels().map(|l| (l.key(), l.value())));
        for (k, v) in pairs {
            s.push_str(k);
            s.push_str("=\"");
            for c in v.chars() {
                match c {
                    '\\' => s.push_str("\\\\"),
                    '"' => s.push_str("\\\""),
                    '\n' => s.push_str("\\n"),
                    c => s.push(c),
                }
            }
            s.push_str("\",");
        }
        s
    }
}

fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

/// Wraps observe's Prometheus recorder: the duration histogram is recorded
/// in [`NativeHistograms`], everything else by the wrapped recorder.
pub(crate) struct NativeRecorder<R> {
    inner: R,
    native: Arc<NativeHistograms>,
}

impl<R> NativeRecorder<R> {
    pub(crate) fn new(inner: R, native: Arc<NativeHistograms>) -> Self {
        Self { inner, native }
    }
}

fn is_native(name: &str) -> bool {
    name == names::OPERATION_DURATION_SECONDS
}

impl<R: Recorder> Recorder for NativeRecorder<R> {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner.describe_counter(key, unit, description);
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner.describe_gauge(key, unit, description);
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        if is_native(key.as_str()) {
            *self
                .native
                .description
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(description);
        } else {
            self.inner.describe_histogram(key, unit, description);
        }
    }

    fn register_counter(&self, key: &Key, metadata: &Metadata<'_>) -> Counter {
        self.inner.register_counter(key, metadata)
    }

    fn register_gauge(&self, key: &Key, metadata: &Metadata<'_>) -> Gauge {
        self.inner.register_gauge(key, metadata)
    }

    fn register_histogram(&self, key: &Key, metadata: &Metadata<'_>) -> Histogram {
        if is_native(key.name()) {
            self.native.histogram(key)
        } else {
            self.inner.register_histogram(key, metadata)
        }
    }
}

/// Renders everything observe's Prometheus recorder holds: the exporter's
/// metrics and the operation duration histogram. Cheap to clone.
#[derive(Debug, Clone)]
pub struct MetricsHandle {
    prometheus: PrometheusHandle,
    native: Arc<NativeHistograms>,
}

impl MetricsHandle {
    pub(crate) fn new(prometheus: PrometheusHandle, native: Arc<NativeHistograms>) -> Self {
        Self { prometheus, native }
    }

    /// The Prometheus text exposition of every metric: what `/metrics`
    /// serves.
    #[must_use]
    pub fn render(&self) -> String {
        let mut text = self.prometheus.render();
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        self.native.render_into(&mut text);
        text
    }

    /// The exporter's own handle (its upkeep, its rendering of every
    /// metric except `operation_duration_seconds`, which
    /// [`render`](Self::render) adds).
    #[must_use]
    pub fn prometheus(&self) -> &PrometheusHandle {
        &self.prometheus
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use metrics::Label;

    fn key(op: &'static str, status: &'static str) -> Key {
        Key::from_parts(
            names::OPERATION_DURATION_SECONDS,
            vec![
                Label::new(names::LABEL_OPERATION, op),
                Label::new(names::LABEL_STATUS, status),
            ],
        )
    }

    #[test]
    fn renders_cumulative_buckets_an_exact_sum_and_the_count() {
        let h = NativeHistograms::new(
            &[0.01, 0.001, 0.1, 0.01],
            vec![("service".into(), "svc \"a\"".into())],
        );
        let hist = h.histogram(&key("db.query", "success"));
        for s in [0.0005, 0.002, 0.002, 0.05, 7.0, -1.0, f64::NAN] {
            hist.record(s);
        }
        *h.description.lock().unwrap() = Some("Durations.".into());
        let mut out = String::new();
        h.render_into(&mut out);
        let l = r#"service="svc \"a\"",operation="db.query",status="success""#;
        let expected = format!(
            "# HELP operation_duration_seconds Durations.\n\
             # TYPE operation_duration_seconds histogram\n\
             operation_duration_seconds_bucket{{{l},le=\"0.001\"}} 3\n\
             operation_duration_seconds_bucket{{{l},le=\"0.01\"}} 5\n\
             operation_duration_seconds_bucket{{{l},le=\"0.1\"}} 6\n\
             operation_duration_seconds_bucket{{{l},le=\"+Inf\"}} 7\n\
             operation_duration_seconds_sum{{{l}}} 7.0545\n\
             operation_duration_seconds_count{{{l}}} 7\n"
        );
        assert_eq!(out, expected);
    }

    #[test]
    fn the_same_key_shares_one_series() {
        let h = NativeHistograms::new(&[1.0], Vec::new());
        h.histogram(&key("a", "success")).record(0.5);
        h.histogram(&key("a", "success")).record(0.5);
        h.histogram(&key("a", "error")).record(2.0);
        let mut out = String::new();
        h.render_into(&mut out);
        assert!(
            out.contains(
                "operation_duration_seconds_count{operation=\"a\",status=\"success\"} 2\n"
            ),
            "{out}"
        );
        assert!(
            out.contains(
                "operation_duration_seconds_bucket{operation=\"a\",status=\"error\",le=\"1\"} 0\n"
            ),
            "{out}"
        );
        assert!(!out.contains("HELP"), "no description was given: {out}");
    }
}
