//! A recorder that keeps per-interval aggregates of everything recorded and
//! turns them into the `service_*` InfluxDB measurements.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};
use metrics_util::storage::Summary;

use crate::base::names;
use crate::export::line_protocol::{self, FieldValue, Point};

/// Timings of monitored calls, by service, operation and status.
pub const SERVICE_PERFORMANCE: &str = "service_performance";
/// Counters: the increase over the interval (`value`) and the running total.
pub const SERVICE_COUNTERS: &str = "service_counters";
/// Gauges: the value at the end of the interval.
pub const SERVICE_GAUGES: &str = "service_gauges";
/// Histograms other than call durations: count, mean, p50, p95, p99, max.
pub const SERVICE_HISTOGRAMS: &str = "service_histograms";

/// Per-interval state of every metric recorded through an
/// [`AggregatingRecorder`]. Cheap to update from many threads: counters and
/// gauges are atomics, a histogram takes its own short lock.
#[derive(Debug, Default)]
pub(crate) struct Aggregator {
    counters: Mutex<HashMap<Key, Arc<CounterCell>>>,
    gauges: Mutex<HashMap<Key, Arc<GaugeCell>>>,
    histograms: Mutex<HashMap<Key, Arc<HistogramCell>>>,
}

#[derive(Debug, Default)]
struct CounterCell {
    total: AtomicU64,
    /// The total at the last collection; only the collector touches it.
    reported: AtomicU64,
}

impl CounterFn for CounterCell {
    fn increment(&self, value: u64) {
        self.total.fetch_add(value, Ordering::Relaxed);
    }

    fn absolute(&self, value: u64) {
        self.total.fetch_max(value, Ordering::Relaxed);
    }
}

#[derive(Debug, Default)]
struct GaugeCell {
    bits: AtomicU64,
    touched: AtomicBool,
}

impl GaugeCell {
    fn update(&self, f: impl Fn(f64) -> f64) {
        let mut current = self.bits.load(Ordering::Relaxed);
        loop {
            let next = f(f64::from_bits(current)).to_bits();
            match self.bits.compare_exchange_weak(
                current,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(seen) => current = seen,
            }
        }
        self.touched.store(true, Ordering::Relaxed);
    }
}

impl GaugeFn for GaugeCell {
    fn increment(&self, value: f64) {
        self.update(|v| v + value);
    }

    fn decrement(&self, value: f64) {
        self.update(|v| v - value);
    }

    fn set(&self, value: f64) {
        self.bits.store(value.to_bits(), Ordering::Relaxed);
        self.touched.store(true, Ordering::Relaxed);
    }
}

#[derive(Debug, Default)]
struct HistogramCell {
    interval: Mutex<Interval>,
}

/// Values of one histogram since the last collection. The sketch bounds
/// memory however many values arrive; count, sum and max are exact.
#[derive(Debug, Default)]
struct Interval {
    sketch: Option<Summary>,
    count: u64,
    sum: f64,
    max: f64,
}

impl HistogramFn for HistogramCell {
    fn record(&self, value: f64) {
        if !value.is_finite() {
            return;
        }
        let mut i = self.interval.lock().unwrap_or_else(PoisonError::into_inner);
        i.sketch
            .get_or_insert_with(Summary::with_defaults)
            .add(value);
        i.max = if i.count == 0 {
            value
        } else {
            i.max.max(value)
        };
        i.count += 1;
        i.sum += value;
    }
}

fn cell<T: Default>(map: &Mutex<HashMap<Key, Arc<T>>>, key: &Key) -> Arc<T> {
    let mut map = map.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(c) = map.get(key) {
        return Arc::clone(c);
    }
    Arc::clone(map.entry(key.clone()).or_default())
}

fn all<T>(map: &Mutex<HashMap<Key, Arc<T>>>) -> Vec<(Key, Arc<T>)> {
    map.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .map(|(k, v)| (k.clone(), Arc::clone(v)))
        .collect()
}

/// The lines of one collection, and how many points could not be encoded.
#[derive(Debug, Default)]
pub(crate) struct Collected {
    pub(crate) lines: Vec<String>,
    pub(crate) invalid: u64,
}

impl Aggregator {
    /// Takes the aggregates of the interval that ends now and starts the
    /// next one. `timestamp_ms` stamps every point.
    pub(crate) fn collect(&self, service: &str, timestamp_ms: i64) -> Collected {
        let mut out = Collected::default();
        // Handles are cloned out first, so registrations never wait for
        // encoding.
        for (key, cell) in all(&self.histograms) {
            let taken =
                std::mem::take(&mut *cell.interval.lock().unwrap_or_else(PoisonError::into_inner));
            if taken.count == 0 {
                continue;
            }
            out.push(histogram_point(service, &key, &taken, timestamp_ms));
        }
        for (key, cell) in all(&self.counters) {
            let total = cell.total.load(Ordering::Relaxed);
            let reported = cell.reported.swap(total, Ordering::Relaxed);
            if total == reported {
                continue;
            }
            let value = FieldValue::Integer(saturating_i64(total.saturating_sub(reported)));
            let total = FieldValue::Integer(saturating_i64(total));
            out.push(
                metric_point(SERVICE_COUNTERS, service, &key, &[])
                    .field("value", value)
                    .field("total", total)
                    .timestamp(timestamp_ms)
                    .to_line(),
            );
        }
        for (key, cell) in all(&self.gauges) {
            if !cell.touched.load(Ordering::Relaxed) {
                continue;
            }
            let value = f64::from_bits(cell.bits.load(Ordering::Relaxed));
            out.push(
                metric_point(SERVICE_GAUGES, service, &key, &[])
                    .field("value", FieldValue::Float(value))
                    .timestamp(timestamp_ms)
                    .to_line(),
            );
        }
        out
    }
}

impl Collected {
    fn push(&mut self, line: Result<String, line_protocol::Error>) {
        match line {
            Ok(l) => self.lines.push(l),
            Err(_) => self.invalid += 1,
        }
    }
}

fn saturating_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A point of `measurement` tagged `service`, `metric` (the key's name)
/// unless the measurement is `service_performance`, and the key's labels;
/// `fixed` labels come first and a label never overrides one already set.
fn metric_point<'a>(
    measurement: &'a str,
    service: &'a str,
    key: &'a Key,
    fixed: &[(&'a str, &'a str)],
) -> Point<'a> {
    let mut taken: Vec<&str> = vec![names::LABEL_SERVICE];
    let mut p = Point::new(measurement).tag(names::LABEL_SERVICE, service);
    if measurement != SERVICE_PERFORMANCE {
        p = p.tag(names::LABEL_METRIC, key.name());
        taken.push(names::LABEL_METRIC);
    }
    for (k, v) in fixed {
        p = p.tag(k, v);
        taken.push(k);
    }
    for l in key.labels() {
        if !taken.contains(&l.key()) {
            p = p.tag(l.key(), l.value());
            taken.push(l.key());
        }
    }
    p
}

fn histogram_point(
    service: &str,
    key: &Key,
    i: &Interval,
    timestamp_ms: i64,
) -> Result<String, line_protocol::Error> {
    let durations = key.name() == names::OPERATION_DURATION_SECONDS;
    // Call durations are recorded in seconds and reported in milliseconds,
    // as the `duration_ms_*` field names say.
    let scale = if durations { 1000.0 } else { 1.0 };
    let q = |q: f64| {
        i.sketch
            .as_ref()
            .and_then(|s| s.quantile(q))
            .map_or(f64::NAN, |v| v * scale)
    };
    #[allow(clippy::cast_precision_loss)]
    let mean = i.sum / i.count as f64 * scale;
    let names: [&str; 5] = if durations {
        [
            "duration_ms_mean",
            "duration_ms_p50",
            "duration_ms_p95",
            "duration_ms_p99",
            "duration_ms_max",
        ]
    } else {
        ["mean", "p50", "p95", "p99", "max"]
    };
    let measurement = if durations {
        SERVICE_PERFORMANCE
    } else {
        SERVICE_HISTOGRAMS
    };
    metric_point(measurement, service, key, &[])
        .field("count", FieldValue::Integer(saturating_i64(i.count)))
        .field(names[0], FieldValue::Float(mean))
        .field(names[1], FieldValue::Float(q(0.5)))
        .field(names[2], FieldValue::Float(q(0.95)))
        .field(names[3], FieldValue::Float(q(0.99)))
        .field(names[4], FieldValue::Float(i.max * scale))
        .timestamp(timestamp_ms)
        .to_line()
}

/// A [`Recorder`] feeding an InfluxDB push's per-interval aggregates.
///
/// [`ObserveBuilder::influxdb`](crate::ObserveBuilder::influxdb) installs
/// it next to the Prometheus recorder; use it directly (e.g. in a
/// [`Tee`](crate::metrics::Tee) with your own recorder) when observe does
/// not install the recorder. Clones feed the same push.
#[derive(Clone, Default)]
pub struct AggregatingRecorder {
    pub(crate) aggregator: Arc<Aggregator>,
}

impl fmt::Debug for AggregatingRecorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AggregatingRecorder")
            .finish_non_exhaustive()
    }
}

impl Recorder for AggregatingRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(cell(&self.aggregator.counters, key))
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(cell(&self.aggregator.gauges, key))
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(cell(&self.aggregator.histograms, key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_interval_becomes_the_plans_measurements() {
        let rec = AggregatingRecorder::default();
        metrics::with_local_recorder(&rec, || {
            for ms in [10.0, 20.0, 30.0, 40.0] {
                metrics::histogram!(
                    "operation_duration_seconds",
                    "operation" => "db query",
                    "status" => "success"
                )
                .record(ms / 1000.0);
            }
            metrics::counter!("operation_calls_total", "operation" => "q", "status" => "error")
                .increment(3);
            metrics::gauge!("queue_depth", "queue" => "a").set(2.5);
            // Registered but never set: not reported.
            let _ = metrics::gauge!("never_set", "queue" => "a");
        });
        let c = rec.aggregator.collect("svc", 1000);
        assert_eq!(c.invalid, 0);
        let perf = c
            .lines
            .iter()
            .find(|l| l.starts_with("service_performance,"))
            .expect("a performance line");
        assert!(
            perf.starts_with(
                "service_performance,operation=db\\ query,service=svc,status=success count=4i,duration_ms_mean=25,"
            ),
            "{perf}"
        );
        assert!(perf.contains(",duration_ms_max=40 1000"), "{perf}");
        let p50: f64 = field(perf, "duration_ms_p50");
        assert!((p50 - 20.0).abs() < 0.1, "{perf}");
        assert!(c.lines.contains(
            &"service_counters,metric=operation_calls_total,operation=q,service=svc,status=error value=3i,total=3i 1000".to_owned()
        ), "{:?}", c.lines);
        assert!(c.lines.contains(
            &"service_gauges,metric=queue_depth,queue=a,service=svc value=2.5 1000".to_owned()
        ));
        assert_eq!(c.lines.len(), 3, "{:?}", c.lines);

        // The next interval: nothing new but the gauge's current value.
        let next = rec.aggregator.collect("svc", 2000);
        assert_eq!(
            next.lines,
            vec!["service_gauges,metric=queue_depth,queue=a,service=svc value=2.5 2000".to_owned()]
        );
    }

    #[test]
    fn unencodable_points_are_counted_not_sent() {
        let rec = AggregatingRecorder::default();
        metrics::with_local_recorder(&rec, || {
            metrics::gauge!("g").set(f64::NAN);
            metrics::counter!("c", "k" => "ends with \\").increment(1);
        });
        let c = rec.aggregator.collect("svc", 1);
        assert!(c.lines.is_empty(), "{:?}", c.lines);
        assert_eq!(c.invalid, 2);
    }

    fn field(line: &str, name: &str) -> f64 {
        line.split([' ', ','])
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN)
    }
}
