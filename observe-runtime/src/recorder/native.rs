//! The operation metrics, kept by observe instead of the exporter.
//!
//! `metrics-exporter-prometheus` stores every histogram sample with a
//! timestamp in a lock-free bucket and buckets it at scrape time: a clock
//! read, an epoch pin and three atomic operations per sample, the largest
//! share of a monitored call's metrics cost. Every monitored call records
//! exactly one duration, always into the same configured buckets, so this
//! histogram is kept here as what the exposition needs (cumulative bucket
//! counts, an exact sum of nanoseconds): one bucket increment and one sum
//! increment per sample. The exporter also updates a generation count
//! beside every counter and gauge value (for its idle timeout), a second
//! atomic operation per update that `operation_calls_total` and
//! `operation_in_flight` would pay on every call; they are kept here as
//! one atomic per series. [`NativeRecorder`] wraps observe's Prometheus
//! recorder and takes over the registration of these three names;
//! [`MetricsHandle::render`] appends them to the exporter's text.
//!
//! Recorders that wrap observe's (like the InfluxDB aggregator) still see
//! every update through the handle they wrap.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use metrics::{
    Counter, Gauge, Histogram, HistogramFn, Key, KeyName, Label, Metadata, Recorder, SharedString,
    Unit,
};
use metrics_exporter_prometheus::PrometheusHandle;

use super::calls::{Bounds, InFlightHandle, OperationCells, StatusHandle};
use super::exemplar::Exemplar;
use super::openmetrics::{self, Format};
use crate::base::{Status, names};

/// One label set's histogram.
#[derive(Debug)]
struct Buckets {
    /// Upper bounds, ascending.
    bounds: Arc<[f64]>,
    /// One count per bound, then the overflow (`+Inf`) count.
    counts: Box<[AtomicU64]>,
    sum_nanos: AtomicU64,
}

impl Buckets {
    fn new(bounds: Arc<[f64]>) -> Self {
        let counts = (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect();
        Self {
            bounds,
            counts,
            sum_nanos: AtomicU64::new(0),
        }
    }
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

/// One metric family kept here: a value per label set, and the family's
/// description.
#[derive(Debug)]
struct Family<T> {
    name: &'static str,
    /// `counter`, `gauge` or `histogram`.
    kind: &'static str,
    series: Mutex<HashMap<Key, Arc<T>>>,
    description: Mutex<Option<SharedString>>,
}

impl<T> Family<T> {
    fn new(name: &'static str, kind: &'static str) -> Self {
        Self {
            name,
            kind,
            series: Mutex::new(HashMap::new()),
            description: Mutex::new(None),
        }
    }

    /// The value of `key`'s series, made by `make` on first use.
    fn value(&self, key: &Key, make: impl FnOnce() -> T) -> Arc<T> {
        let mut series = self.series.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(
            series
                .entry(key.clone())
                .or_insert_with(|| Arc::new(make())),
        )
    }

    fn describe(&self, description: SharedString) {
        *self
            .description
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(description);
    }

    /// The family's series, copied out of the lock and sorted by labels.
    fn series(&self) -> Vec<(Key, Arc<T>)> {
        let mut series: Vec<(Key, Arc<T>)> = self
            .series
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(k, v)| (k.clone(), Arc::clone(v)))
            .collect();
        series.sort_by(|a, b| a.0.labels().cmp(b.0.labels()));
        series
    }

    /// Appends the family's `# HELP` (when described) and `# TYPE` lines.
    fn head(&self, out: &mut String, format: Format) {
        let name = openmetrics::family_name(self.name, self.kind, format);
        if let Some(d) = &*self
            .description
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
        {
            let _ = writeln!(out, "# HELP {name} {}", escape_help(d));
        }
        let _ = writeln!(out, "# TYPE {name} {}", self.kind);
    }
}

impl Family<AtomicU64> {
    /// The values of the family's series (`f64` bits for a gauge).
    fn values(&self) -> Vec<(Key, u64)> {
        self.series()
            .into_iter()
            .map(|(k, v)| (k, v.load(Ordering::Relaxed)))
            .collect()
    }
}

/// Whether a series is shown from its first call: `rate()` over a series
/// that appears only with its first error misses that error, so `success`
/// and `error` exist from the start; other outcomes are rare, and appear
/// when they first happen.
fn always_shown(key: &Key) -> bool {
    key.labels()
        .find(|l| l.key() == names::LABEL_STATUS)
        .is_none_or(|l| matches!(l.value(), "success" | "error"))
}

/// The key of an operation's series in the family `name`.
fn operation_key(name: &'static str, operation: &str, status: Option<Status>) -> Key {
    let mut labels = vec![Label::new(names::LABEL_OPERATION, operation.to_owned())];
    labels.extend(status.map(|s| Label::from_static_parts(names::LABEL_STATUS, s.as_str())));
    Key::from_parts(name, labels)
}

/// The operation whose series `key` is, when its labels are exactly those
/// the guard uses (`operation`, then `status` when `with_status`): such
/// series are kept in [`OperationCells`], every other label set in the
/// family's own map.
fn guard_labels(key: &Key, with_status: bool) -> Option<(&str, Option<Status>)> {
    let mut labels = key.labels();
    let operation = labels
        .next()
        .filter(|l| l.key() == names::LABEL_OPERATION)?;
    let status = if with_status {
        let l = labels.next().filter(|l| l.key() == names::LABEL_STATUS)?;
        Some(Status::ALL.into_iter().find(|s| s.as_str() == l.value())?)
    } else {
        None
    };
    labels
        .next()
        .is_none()
        .then_some((operation.value(), status))
}

/// The series of the operation families as they are shown now: what
/// the exposition renders and a push exporter sends, decided once.
struct Shown {
    calls: Vec<(Key, u64)>,
    in_flight: Vec<(Key, f64)>,
    durations: Vec<(Key, HistogramValue)>,
}

/// A constant series with value 1 whose labels say something about the
/// process (`observe_build_info`, `operation_objective_info`).
#[derive(Debug, Clone)]
pub(crate) struct InfoSeries {
    pub(crate) name: &'static str,
    pub(crate) help: &'static str,
    pub(crate) labels: Vec<(String, String)>,
}

/// The operation families kept here, and how to render them.
#[derive(Debug)]
pub(crate) struct NativeMetrics {
    bounds: Arc<Bounds>,
    /// `name="value"` pairs put before each series' own labels.
    global_labels: Vec<(String, String)>,
    /// The series with the guard's label sets, per operation.
    operations: Mutex<HashMap<String, Arc<OperationCells>>>,
    durations: Family<Buckets>,
    calls: Family<AtomicU64>,
    in_flight: Family<AtomicU64>,
    /// Whether the guard's path keeps exemplars.
    exemplars: bool,
    infos: Mutex<Vec<InfoSeries>>,
}

impl NativeMetrics {
    /// `bounds` are the configured buckets (sorted and deduplicated here).
    pub(crate) fn new(bounds: &[f64], global_labels: Vec<(String, String)>) -> Self {
        Self {
            bounds: Arc::new(Bounds::new(bounds)),
            global_labels,
            operations: Mutex::new(HashMap::new()),
            durations: Family::new(names::OPERATION_DURATION_SECONDS, "histogram"),
            calls: Family::new(names::OPERATION_CALLS_TOTAL, "counter"),
            in_flight: Family::new(names::OPERATION_IN_FLIGHT, "gauge"),
            exemplars: true,
            infos: Mutex::new(Vec::new()),
        }
    }

    /// Leaves the histogram without exemplars: no call offers one.
    #[must_use]
    pub(crate) fn without_exemplars(mut self) -> Self {
        self.exemplars = false;
        self
    }

    /// Adds a constant series, rendered with value 1 after the others; a
    /// series with the same name and labels is kept once.
    pub(crate) fn add_info(&self, info: InfoSeries) {
        let mut infos = self.infos.lock().unwrap_or_else(PoisonError::into_inner);
        if !infos
            .iter()
            .any(|i| i.name == info.name && i.labels == info.labels)
        {
            infos.push(info);
        }
    }

    /// The cells of `operation`, made on first use.
    pub(crate) fn operation(&self, operation: &str) -> Arc<OperationCells> {
        let mut ops = self
            .operations
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(cells) = ops.get(operation) {
            return Arc::clone(cells);
        }
        let cells = Arc::new(OperationCells::new(
            operation,
            Arc::clone(&self.bounds),
            self.exemplars,
        ));
        ops.insert(operation.to_owned(), Arc::clone(&cells));
        cells
    }

    fn operations(&self) -> Vec<Arc<OperationCells>> {
        self.operations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }

    fn histogram(&self, key: &Key) -> Histogram {
        if let Some((operation, Some(status))) = guard_labels(key, true) {
            return Histogram::from_arc(Arc::new(StatusHandle {
                cells: self.operation(operation),
                status,
            }));
        }
        Histogram::from_arc(
            self.durations
                .value(key, || Buckets::new(Arc::clone(self.bounds.seconds()))),
        )
    }

    fn counter(&self, key: &Key) -> Counter {
        if let Some((operation, Some(status))) = guard_labels(key, true) {
            let cells = self.operation(operation);
            cells.show_counters();
            return Counter::from_arc(Arc::new(StatusHandle { cells, status }));
        }
        Counter::from_arc(self.calls.value(key, || AtomicU64::new(0)))
    }

    fn gauge(&self, key: &Key) -> Gauge {
        if let Some((operation, None)) = guard_labels(key, false) {
            let cells = self.operation(operation);
            cells.show_gauge();
            return Gauge::from_arc(Arc::new(InFlightHandle(cells)));
        }
        Gauge::from_arc(self.in_flight.value(key, || AtomicU64::new(0)))
    }

    /// Appends the families in `format`; the values of every operation
    /// are merged from its shards here. Exemplars are shown in
    /// OpenMetrics only: the Prometheus text format has no place for them.
    pub(crate) fn render_into(&self, out: &mut String, format: Format) {
        let Shown {
            calls,
            in_flight,
            durations,
        } = self.shown(format == Format::OpenMetrics);
        self.render_values(&self.calls, calls, out, format);
        self.render_histograms(durations, out, format);
        self.render_values(&self.in_flight, in_flight, out, format);
        self.render_infos(out);
    }

    /// Every series of the operation families that is shown now, with
    /// each bucket's exemplar if `with_exemplars`: the counters of
    /// `success` and `error` from an operation's first call, other
    /// statuses and label sets from their first sample.
    fn shown(&self, with_exemplars: bool) -> Shown {
        let ops: Vec<_> = self
            .operations()
            .into_iter()
            .map(|op| {
                let snapshots = Status::ALL.map(|s| {
                    let exemplars = if with_exemplars {
                        op.exemplars(s)
                    } else {
                        None
                    };
                    (op.snapshot(s), exemplars.unwrap_or_default())
                });
                (op, snapshots)
            })
            .collect();
        let mut calls: Vec<(Key, u64)> = self
            .calls
            .values()
            .into_iter()
            .filter(|(k, v)| *v > 0 || always_shown(k))
            .collect();
        let mut in_flight: Vec<(Key, f64)> = self
            .in_flight
            .values()
            .into_iter()
            .map(|(k, bits)| (k, f64::from_bits(bits)))
            .collect();
        let mut durations: Vec<(Key, HistogramValue)> = self
            .durations
            .series()
            .into_iter()
            .map(|(key, b)| {
                let value = HistogramValue {
                    counts: b.counts.iter().map(|c| c.load(Ordering::Relaxed)).collect(),
                    sum_nanos: b.sum_nanos.load(Ordering::Relaxed),
                    exemplars: Vec::new(),
                };
                (key, value)
            })
            .collect();
        for (op, snapshots) in ops {
            for (status, (snap, exemplars)) in Status::ALL.into_iter().zip(snapshots) {
                let shown = matches!(status, Status::Success | Status::Error);
                if op.counters_shown() && (shown || snap.calls > 0) {
                    calls.push((
                        operation_key(self.calls.name, op.operation(), Some(status)),
                        snap.calls,
                    ));
                }
                durations.push((
                    operation_key(self.durations.name, op.operation(), Some(status)),
                    HistogramValue {
                        counts: snap.buckets,
                        sum_nanos: snap.sum_nanos,
                        exemplars,
                    },
                ));
            }
            if op.gauge_shown() {
                #[allow(clippy::cast_precision_loss)]
                let value = op.in_flight() as f64;
                in_flight.push((
                    operation_key(self.in_flight.name, op.operation(), None),
                    value,
                ));
            }
        }
        // A label set appears with its first sample.
        durations.retain(|(_, h)| h.counts.iter().any(|&c| c > 0));
        Shown {
            calls,
            in_flight,
            durations,
        }
    }

    /// Appends the constant series, one gauge family per name.
    fn render_infos(&self, out: &mut String) {
        let mut infos = self
            .infos
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        infos.sort_by(|a, b| (a.name, &a.labels).cmp(&(b.name, &b.labels)));
        let mut last = "";
        for info in &infos {
            if info.name != last {
                let _ = writeln!(out, "# HELP {} {}", info.name, escape_help(info.help));
                let _ = writeln!(out, "# TYPE {} gauge", info.name);
                last = info.name;
            }
            let mut labels = String::new();
            let pairs = self
                .global_labels
                .iter()
                .chain(&info.labels)
                .map(|(k, v)| (k.as_str(), v.as_str()));
            write_labels(pairs, &mut labels);
            let _ = writeln!(out, "{}{{{}}} 1", info.name, labels.trim_end_matches(','));
        }
    }

    /// Appends counter or gauge values in the Prometheus text format, as
    /// the exporter writes them, sorted by labels.
    fn render_values<V: std::fmt::Display>(
        &self,
        family: &Family<AtomicU64>,
        mut values: Vec<(Key, V)>,
        out: &mut String,
        format: Format,
    ) {
        if values.is_empty() {
            return;
        }
        values.sort_by(|a, b| a.0.labels().cmp(b.0.labels()));
        family.head(out, format);
        for (key, value) in values {
            let labels = self.labels(&key);
            let labels = labels.trim_end_matches(',');
            let _ = writeln!(out, "{}{{{labels}}} {value}", family.name);
        }
    }

    /// Appends the histograms that have samples, sorted by labels.
    fn render_histograms(
        &self,
        mut shown: Vec<(Key, HistogramValue)>,
        out: &mut String,
        format: Format,
    ) {
        if shown.is_empty() {
            return;
        }
        shown.sort_by(|a, b| a.0.labels().cmp(b.0.labels()));
        let name = self.durations.name;
        let bounds = self.bounds.seconds();
        self.durations.head(out, format);
        for (key, series) in shown {
            let labels = self.labels(&key);
            let exemplar = |i: usize, out: &mut String| {
                if let Some(Some(e)) = series.exemplars.get(i) {
                    e.write_openmetrics(out);
                }
            };
            let mut total = 0u64;
            for (i, (bound, count)) in bounds.iter().zip(&series.counts).enumerate() {
                total += count;
                let _ = write!(out, "{name}_bucket{{{labels}le=\"{bound}\"}} {total}");
                exemplar(i, out);
                out.push('\n');
            }
            total += series.counts[bounds.len()];
            let _ = write!(out, "{name}_bucket{{{labels}le=\"+Inf\"}} {total}");
            exemplar(bounds.len(), out);
            out.push('\n');
            #[allow(clippy::cast_precision_loss)]
            let sum = series.sum_nanos as f64 / 1e9;
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
        write_labels(pairs, &mut s);
        s
    }
}

/// The operation families at one instant, as the Prometheus exposition
/// shows them: the same series with the same values and labels, without
/// the text. For exporters that push instead of being scraped.
#[cfg(any(feature = "otlp", test))]
#[derive(Debug, Clone)]
pub(crate) struct NativeSnapshot {
    /// The histogram's finite upper bounds, ascending: the configured
    /// buckets, sorted and deduplicated.
    pub(crate) bounds: Arc<[f64]>,
    /// `operation_calls_total`.
    pub(crate) calls: FamilySnapshot<u64>,
    /// `operation_duration_seconds`: the series with at least one sample.
    pub(crate) durations: FamilySnapshot<HistogramValue>,
    /// `operation_in_flight`.
    pub(crate) in_flight: FamilySnapshot<f64>,
}

/// One family of a [`NativeSnapshot`].
#[cfg(any(feature = "otlp", test))]
#[derive(Debug, Clone)]
pub(crate) struct FamilySnapshot<V> {
    /// The Prometheus name.
    pub(crate) name: &'static str,
    /// The `# HELP` text, when the family was described.
    pub(crate) description: Option<String>,
    /// Sorted by the series' own labels, as rendered.
    pub(crate) series: Vec<SeriesSnapshot<V>>,
}

/// One series of a [`FamilySnapshot`].
#[cfg(any(feature = "otlp", test))]
#[derive(Debug, Clone)]
pub(crate) struct SeriesSnapshot<V> {
    /// Name and raw (unescaped) value of each label, the global labels
    /// first, as rendered.
    pub(crate) labels: Vec<(String, String)>,
    pub(crate) value: V,
}

/// One histogram series as shown.
#[derive(Debug, Clone)]
pub(crate) struct HistogramValue {
    /// Per bucket, NOT cumulative: one count per bound, then the overflow
    /// (`+Inf`) count.
    pub(crate) counts: Vec<u64>,
    /// The exact sum of the samples in nanoseconds.
    pub(crate) sum_nanos: u64,
    /// Per bucket (overflow last), a recent call's exemplar; empty when
    /// the series keeps none.
    pub(crate) exemplars: Vec<Option<Exemplar>>,
}

#[cfg(any(feature = "otlp", test))]
impl HistogramValue {
    /// The number of samples (the `_count` line).
    pub(crate) fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The sum in seconds, computed as the `_sum` line is.
    pub(crate) fn sum_seconds(&self) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let sum = self.sum_nanos as f64 / 1e9;
        sum
    }
}

#[cfg(any(feature = "otlp", test))]
impl NativeMetrics {
    /// The operation families as [`render_into`](Self::render_into) would
    /// show them now: the same series (the same ones left out), values and
    /// label order, with every bucket's exemplar.
    pub(crate) fn snapshot(&self) -> NativeSnapshot {
        let Shown {
            calls,
            in_flight,
            durations,
        } = self.shown(true);
        NativeSnapshot {
            bounds: Arc::clone(self.bounds.seconds()),
            calls: self.family_snapshot(&self.calls, calls),
            durations: self.family_snapshot(&self.durations, durations),
            in_flight: self.family_snapshot(&self.in_flight, in_flight),
        }
    }

    /// `values` sorted as rendered, with the global labels put first.
    fn family_snapshot<T, V>(
        &self,
        family: &Family<T>,
        mut values: Vec<(Key, V)>,
    ) -> FamilySnapshot<V> {
        values.sort_by(|a, b| a.0.labels().cmp(b.0.labels()));
        let series = values
            .into_iter()
            .map(|(key, value)| SeriesSnapshot {
                labels: self
                    .global_labels
                    .iter()
                    .cloned()
                    .chain(
                        key.labels()
                            .map(|l| (l.key().to_owned(), l.value().to_owned())),
                    )
                    .collect(),
                value,
            })
            .collect();
        FamilySnapshot {
            name: family.name,
            description: family
                .description
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .as_ref()
                .map(|d| d.to_string()),
            series,
        }
    }
}

/// Appends `a="x",b="y",`, values escaped.
fn write_labels<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>, out: &mut String) {
    for (k, v) in pairs {
        out.push_str(k);
        out.push_str("=\"");
        escape_label_value(v, out);
        out.push_str("\",");
    }
}

/// Appends `value` escaped for a label value (both text formats agree).
pub(crate) fn escape_label_value(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

/// Wraps observe's Prometheus recorder: the operation families are kept in
/// [`NativeMetrics`], everything else by the wrapped recorder.
pub(crate) struct NativeRecorder<R> {
    inner: R,
    native: Arc<NativeMetrics>,
}

impl<R> NativeRecorder<R> {
    pub(crate) fn new(inner: R, native: Arc<NativeMetrics>) -> Self {
        Self { inner, native }
    }
}

impl<R: Recorder> Recorder for NativeRecorder<R> {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        if key.as_str() == self.native.calls.name {
            self.native.calls.describe(description);
        } else {
            self.inner.describe_counter(key, unit, description);
        }
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        if key.as_str() == self.native.in_flight.name {
            self.native.in_flight.describe(description);
        } else {
            self.inner.describe_gauge(key, unit, description);
        }
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        if key.as_str() == names::OPERATION_DURATION_SECONDS {
            self.native.durations.describe(description);
        } else {
            self.inner.describe_histogram(key, unit, description);
        }
    }

    fn register_counter(&self, key: &Key, metadata: &Metadata<'_>) -> Counter {
        if key.name() == self.native.calls.name {
            self.native.counter(key)
        } else {
            self.inner.register_counter(key, metadata)
        }
    }

    fn register_gauge(&self, key: &Key, metadata: &Metadata<'_>) -> Gauge {
        if key.name() == self.native.in_flight.name {
            self.native.gauge(key)
        } else {
            self.inner.register_gauge(key, metadata)
        }
    }

    fn register_histogram(&self, key: &Key, metadata: &Metadata<'_>) -> Histogram {
        if key.name() == names::OPERATION_DURATION_SECONDS {
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
    native: Arc<NativeMetrics>,
}

impl MetricsHandle {
    pub(crate) fn new(prometheus: PrometheusHandle, native: Arc<NativeMetrics>) -> Self {
        Self { prometheus, native }
    }

    pub(crate) fn native(&self) -> &Arc<NativeMetrics> {
        &self.native
    }

    /// The Prometheus text exposition (format 0.0.4) of every metric:
    /// what `/metrics` serves unless the scraper asks for OpenMetrics.
    #[must_use]
    pub fn render(&self) -> String {
        let mut text = self.prometheus.render();
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        self.native.render_into(&mut text, Format::Text);
        text
    }

    /// The OpenMetrics 1.0 exposition of every metric, with the latest
    /// calls' exemplars on the operation duration buckets: what `/metrics`
    /// serves to a scraper that accepts `application/openmetrics-text`.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let observe = observe_runtime::Observe::builder("docs").install()?;
    /// let handle = observe.prometheus_handle().expect("prometheus is on");
    /// assert!(handle.render_openmetrics().ends_with("# EOF\n"));
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn render_openmetrics(&self) -> String {
        let mut text = openmetrics::from_text(&self.prometheus.render());
        self.native.render_into(&mut text, Format::OpenMetrics);
        text.push_str("# EOF\n");
        text
    }

    /// The exposition a scraper asks for with the `Accept` header value
    /// `accept`, and its `Content-Type`: OpenMetrics with exemplars when
    /// `application/openmetrics-text` is accepted, the 0.0.4 text format
    /// otherwise. For serving `/metrics` from your own HTTP server.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let observe = observe_runtime::Observe::builder("docs").install()?;
    /// let handle = observe.prometheus_handle().expect("prometheus is on");
    /// let (content_type, body) = handle.render_for_accept("application/openmetrics-text");
    /// assert!(content_type.starts_with("application/openmetrics-text"));
    /// assert!(body.ends_with("# EOF\n"));
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn render_for_accept(&self, accept: &str) -> (&'static str, String) {
        let format = Format::negotiate(accept);
        let body = match format {
            Format::Text => self.render(),
            Format::OpenMetrics => self.render_openmetrics(),
        };
        (format.content_type(), body)
    }

    /// The exporter's own handle (its upkeep, its rendering of every
    /// metric except `operation_calls_total`, `operation_duration_seconds`
    /// and `operation_in_flight`, which [`render`](Self::render) adds).
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
        let h = NativeMetrics::new(
            &[0.01, 0.001, 0.1, 0.01],
            vec![("service".into(), "svc \"a\"".into())],
        );
        let hist = h.histogram(&key("db.query", "success"));
        for s in [0.0005, 0.002, 0.002, 0.05, 7.0, -1.0, f64::NAN] {
            hist.record(s);
        }
        h.durations.describe("Durations.".into());
        let mut out = String::new();
        h.render_into(&mut out, Format::Text);
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
    fn openmetrics_shows_each_buckets_exemplar_and_the_info_series() {
        let h = NativeMetrics::new(&[0.001, 0.1], vec![("service".into(), "svc".into())]);
        h.add_info(InfoSeries {
            name: "observe_build_info",
            help: "Build.",
            labels: vec![("version".into(), "1.2.3".into())],
        });
        let cells = h.operation("op");
        cells.show_all();
        let id: crate::correlation::CorrelationId = "req-7".parse().expect("valid");
        crate::correlation::scope(id, || {
            cells.enter();
            cells.finish(Status::Success, 2_000_000, 1);
        });
        cells.enter();
        cells.finish(Status::Error, 500, 1);

        let mut text = String::new();
        h.render_into(&mut text, Format::Text);
        assert!(!text.contains(" # {"), "no exemplars in 0.0.4: {text}");
        assert!(
            text.contains("# TYPE operation_calls_total counter\n"),
            "{text}"
        );

        let mut om = String::new();
        h.render_into(&mut om, Format::OpenMetrics);
        assert!(om.contains("# TYPE operation_calls counter\n"), "{om}");
        let bucket = |le: &str| {
            let prefix = format!(
                "operation_duration_seconds_bucket{{service=\"svc\",operation=\"op\",status=\"success\",le=\"{le}\"}}"
            );
            om.lines()
                .find(|l| l.starts_with(&prefix))
                .unwrap_or_else(|| panic!("{prefix} in {om}"))
                .to_owned()
        };
        // Every request has a trace: the one derived from its ID.
        let trace = crate::correlation::text_trace_id("req-7");
        assert!(
            bucket("0.1").starts_with(&format!(
                "operation_duration_seconds_bucket{{service=\"svc\",operation=\"op\",status=\"success\",le=\"0.1\"}} 1 # {{trace_id=\"{trace:032x}\",correlation_id=\"req-7\"}} 0.002 "
            )),
            "{om}"
        );
        assert!(
            !bucket("0.001").contains('#'),
            "an empty bucket has none: {om}"
        );
        assert!(
            !om.contains("status=\"error\",le=\"0.001\"} 1 #"),
            "a call outside every scope leaves none: {om}"
        );
        assert!(
            om.ends_with(
                "# HELP observe_build_info Build.\n# TYPE observe_build_info gauge\n\
                 observe_build_info{service=\"svc\",version=\"1.2.3\"} 1\n"
            ),
            "{om}"
        );
    }

    #[test]
    fn the_snapshot_holds_what_the_text_shows() {
        let h = NativeMetrics::new(&[0.1, 0.001], vec![("service".into(), "svc".into())]);
        let cells = h.operation("op");
        cells.show_all();
        let id: crate::correlation::CorrelationId = "req-9".parse().expect("valid");
        crate::correlation::scope(id, || {
            cells.enter();
            cells.finish(Status::Success, 2_000_000, 1);
        });
        cells.enter();
        cells.finish(Status::Success, 500, 1);
        cells.enter();
        h.histogram(&Key::from_parts(
            names::OPERATION_DURATION_SECONDS,
            vec![Label::new("other", "x")],
        ))
        .record(5.0);
        h.calls.describe("Calls.".into());
        let snap = h.snapshot();
        assert_eq!(snap.calls.description.as_deref(), Some("Calls."));
        assert_eq!(snap.durations.description, None);
        assert_eq!(&*snap.bounds, &[0.001, 0.1]);

        let labels = |status: Option<&str>| {
            let mut l = vec![
                ("service".to_owned(), "svc".to_owned()),
                ("operation".to_owned(), "op".to_owned()),
            ];
            l.extend(status.map(|s| ("status".to_owned(), s.to_owned())));
            l
        };
        // Sorted as rendered; rare outcomes without calls left out.
        let calls: Vec<_> = snap
            .calls
            .series
            .iter()
            .map(|s| (s.labels.clone(), s.value))
            .collect();
        assert_eq!(
            calls,
            vec![(labels(Some("error")), 0), (labels(Some("success")), 2)]
        );
        assert_eq!(snap.calls.name, names::OPERATION_CALLS_TOTAL);

        // Only series with samples; per-bucket counts, the overflow last.
        let durations: Vec<_> = snap
            .durations
            .series
            .iter()
            .map(|s| (s.labels.clone(), s.value.counts.clone(), s.value.sum_nanos))
            .collect();
        assert_eq!(
            durations,
            vec![
                (labels(Some("success")), vec![1, 1, 0], 2_000_500),
                (
                    vec![
                        ("service".to_owned(), "svc".to_owned()),
                        ("other".to_owned(), "x".to_owned())
                    ],
                    vec![0, 0, 1],
                    5_000_000_000
                ),
            ]
        );
        let success = &snap.durations.series[0].value;
        assert_eq!((success.count(), success.sum_seconds()), (2, 0.0020005));
        let exemplar = success.exemplars[1].as_ref().expect("the scoped call's");
        assert_eq!(exemplar.correlation_id.to_string(), "req-9");
        assert!(success.exemplars[0].is_none(), "a call outside every scope");

        let in_flight: Vec<_> = snap
            .in_flight
            .series
            .iter()
            .map(|s| (s.labels.clone(), s.value))
            .collect();
        assert_eq!(in_flight, vec![(labels(None), 1.0)]);
    }

    #[test]
    fn the_same_key_shares_one_series() {
        let h = NativeMetrics::new(&[1.0], Vec::new());
        h.histogram(&key("a", "success")).record(0.5);
        h.histogram(&key("a", "success")).record(0.5);
        h.histogram(&key("a", "error")).record(2.0);
        let mut out = String::new();
        h.render_into(&mut out, Format::Text);
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

    #[test]
    fn calls_and_in_flight_are_kept_here_and_render_like_the_exporter() {
        static META: Metadata<'static> = Metadata::new(module_path!(), metrics::Level::INFO, None);
        let native = Arc::new(NativeMetrics::new(
            &[1.0],
            vec![("service".into(), "svc".into())],
        ));
        let recorder = NativeRecorder::new(metrics::NoopRecorder, Arc::clone(&native));
        recorder.describe_counter(names::OPERATION_CALLS_TOTAL.into(), None, "Calls.".into());
        let labels = |status: Option<&'static str>| {
            let mut l = vec![Label::new(names::LABEL_OPERATION, "a")];
            l.extend(status.map(|s| Label::new(names::LABEL_STATUS, s)));
            l
        };
        let calls = |status| {
            recorder.register_counter(
                &Key::from_parts(names::OPERATION_CALLS_TOTAL, labels(Some(status))),
                &META,
            )
        };
        calls("success").increment(2);
        calls("error").increment(1);
        calls("success").increment(1);
        let in_flight = recorder.register_gauge(
            &Key::from_parts(names::OPERATION_IN_FLIGHT, labels(None)),
            &META,
        );
        in_flight.increment(1.0);
        in_flight.increment(1.0);
        in_flight.decrement(1.0);
        // Other names go to the wrapped recorder, not here.
        recorder
            .register_counter(&Key::from_name("other_total"), &META)
            .increment(5);
        let mut out = String::new();
        native.render_into(&mut out, Format::Text);
        assert_eq!(
            out,
            "# HELP operation_calls_total Calls.\n\
             # TYPE operation_calls_total counter\n\
             operation_calls_total{service=\"svc\",operation=\"a\",status=\"error\"} 1\n\
             operation_calls_total{service=\"svc\",operation=\"a\",status=\"success\"} 3\n\
             # TYPE operation_in_flight gauge\n\
             operation_in_flight{service=\"svc\",operation=\"a\"} 1\n"
        );
    }
}
