//! The operation metrics over OTLP: a periodic export of what the
//! Prometheus exposition shows, from the same native store.
//!
//! Every export carries cumulative values (everything counted so far), so
//! a lost or late export costs resolution, never counts: the next one
//! carries everything the lost one did. That is why a failed export is
//! counted and not retried, and why an export still running at the next
//! tick may be given up on (its deadline is that tick).
//!
//! Names follow the OpenTelemetry-Prometheus compatibility rules, so a
//! collector or Prometheus's OTLP receiver turns them back into exactly
//! the names `/metrics` shows:
//!
//! | Prometheus                   | OTLP                                                |
//! |------------------------------|-----------------------------------------------------|
//! | `operation_calls_total`      | `operation_calls`, monotonic cumulative Sum, unit `{call}` (`_total` is added back for a monotonic sum) |
//! | `operation_duration_seconds` | same name, cumulative explicit-bucket Histogram, unit `s` (the `_seconds` suffix is already there) |
//! | `operation_in_flight`        | same name, Gauge, unit `{call}` (a unit in braces adds no suffix) |
//!
//! Data point attributes are the Prometheus labels, the global ones
//! (`service`, ...) included, in the same order; histogram bounds are the
//! configured buckets and bucket counts are per bucket, as OTLP wants
//! them (Prometheus shows them cumulative).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Exemplar, Gauge, Histogram, HistogramDataPoint, Metric,
    NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, exemplar, metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message as _;

use crate::base::supervise::{self, Supervised};
use crate::base::{Background, clock, names};
use crate::recorder::{HistogramValue, NativeMetrics, NativeSnapshot, SeriesSnapshot};

/// The `signal` label value of this exporter's counters.
const SIGNAL: &str = "metrics";
/// The name of the exporter's thread, and of the component in
/// `observe_component_restarts_total`.
const THREAD_NAME: &str = "observe-otlp-metrics";
const COMPONENT: &str = "otlp metrics export";

/// The operation metrics in `native` as one OTLP request: resource
/// `resource`, scope `observe`, every series a data point from
/// `start_unix_nanos` (when the cumulative values started) to
/// `now_unix_nanos`. The values are those the Prometheus exposition shows
/// at the same instant.
pub(crate) fn encode(
    native: &NativeMetrics,
    resource: &Resource,
    start_unix_nanos: u64,
    now_unix_nanos: u64,
) -> ExportMetricsServiceRequest {
    encode_snapshot(
        &native.snapshot(),
        resource,
        start_unix_nanos,
        now_unix_nanos,
    )
}

fn encode_snapshot(
    snap: &NativeSnapshot,
    resource: &Resource,
    start: u64,
    now: u64,
) -> ExportMetricsServiceRequest {
    let mut metrics = Vec::with_capacity(3);
    let cumulative = AggregationTemporality::Cumulative as i32;
    if !snap.calls.series.is_empty() {
        let data_points = snap
            .calls
            .series
            .iter()
            .map(|s| NumberDataPoint {
                attributes: attributes(s),
                start_time_unix_nano: start,
                time_unix_nano: now,
                value: Some(number_data_point::Value::AsInt(
                    i64::try_from(s.value).unwrap_or(i64::MAX),
                )),
                ..NumberDataPoint::default()
            })
            .collect();
        metrics.push(Metric {
            // A monotonic sum's name carries no `_total`: translation
            // to Prometheus adds it back.
            name: otlp_sum_name(snap.calls.name).to_owned(),
            description: snap.calls.description.clone().unwrap_or_default(),
            unit: "{call}".to_owned(),
            data: Some(metric::Data::Sum(Sum {
                data_points,
                aggregation_temporality: cumulative,
                is_monotonic: true,
            })),
            ..Metric::default()
        });
    }
    if !snap.durations.series.is_empty() {
        let data_points = snap
            .durations
            .series
            .iter()
            .map(|s| histogram_point(s, &snap.bounds, start, now))
            .collect();
        metrics.push(Metric {
            name: snap.durations.name.to_owned(),
            description: snap.durations.description.clone().unwrap_or_default(),
            unit: "s".to_owned(),
            data: Some(metric::Data::Histogram(Histogram {
                data_points,
                aggregation_temporality: cumulative,
            })),
            ..Metric::default()
        });
    }
    if !snap.in_flight.series.is_empty() {
        let data_points = snap
            .in_flight
            .series
            .iter()
            .map(|s| NumberDataPoint {
                attributes: attributes(s),
                // A gauge has no start; the field is ignored.
                time_unix_nano: now,
                value: Some(number_data_point::Value::AsDouble(s.value)),
                ..NumberDataPoint::default()
            })
            .collect();
        metrics.push(Metric {
            name: snap.in_flight.name.to_owned(),
            description: snap.in_flight.description.clone().unwrap_or_default(),
            unit: "{call}".to_owned(),
            data: Some(metric::Data::Gauge(Gauge { data_points })),
            ..Metric::default()
        });
    }
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(resource.clone()),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: "observe".to_owned(),
                    version: env!("CARGO_PKG_VERSION").to_owned(),
                    ..InstrumentationScope::default()
                }),
                metrics,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

/// The OTLP name of a Prometheus counter.
fn otlp_sum_name(prometheus: &str) -> &str {
    prometheus.strip_suffix("_total").unwrap_or(prometheus)
}

fn histogram_point(
    s: &SeriesSnapshot<HistogramValue>,
    bounds: &[f64],
    start: u64,
    now: u64,
) -> HistogramDataPoint {
    let exemplars = s
        .value
        .exemplars
        .iter()
        .flatten()
        .map(|e| {
            #[allow(clippy::cast_precision_loss)]
            let seconds = e.nanos as f64 / 1e9;
            Exemplar {
                filtered_attributes: vec![string_attribute(
                    "correlation_id",
                    e.correlation_id.to_string(),
                )],
                time_unix_nano: e.unix_nanos,
                trace_id: e
                    .trace_id
                    .map(|t| t.to_be_bytes().to_vec())
                    .unwrap_or_default(),
                value: Some(exemplar::Value::AsDouble(seconds)),
                ..Exemplar::default()
            }
        })
        .collect();
    HistogramDataPoint {
        attributes: attributes(s),
        start_time_unix_nano: start,
        time_unix_nano: now,
        count: s.value.count(),
        sum: Some(s.value.sum_seconds()),
        bucket_counts: s.value.counts.clone(),
        explicit_bounds: bounds.to_vec(),
        exemplars,
        ..HistogramDataPoint::default()
    }
}

fn attributes<V>(s: &SeriesSnapshot<V>) -> Vec<KeyValue> {
    s.labels
        .iter()
        .map(|(k, v)| string_attribute(k, v.clone()))
        .collect()
}

fn string_attribute(key: &str, value: String) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value)),
        }),
        ..KeyValue::default()
    }
}

/// Where encoded exports go: the OTLP/HTTP transport, or a test's
/// collector. Called on the exporter's own thread, one export at a time.
pub(crate) trait MetricsPost: Send + 'static {
    /// Delivers one protobuf-encoded `ExportMetricsServiceRequest`,
    /// giving up at `deadline`: past it the export is
    /// superseded by the next one, or the exporter is being stopped.
    ///
    /// # Errors
    ///
    /// Why the export was not delivered; it is counted as failed.
    fn post(&mut self, body: Vec<u8>, deadline: Instant) -> Result<(), String>;
}

impl<F> MetricsPost for F
where
    F: FnMut(Vec<u8>, Instant) -> Result<(), String> + Send + 'static,
{
    fn post(&mut self, body: Vec<u8>, deadline: Instant) -> Result<(), String> {
        self(body, deadline)
    }
}

/// What an exporter has done so far (outside tests, the same counts are
/// read from `otlp_exports_failed_total`).
#[cfg(test)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct MetricsExportStats {
    /// Exports delivered.
    pub(crate) exported: u64,
    /// Exports that failed, panicked or found no time left at shutdown.
    pub(crate) failed: u64,
}

#[derive(Debug, Default)]
struct Counts {
    exported: AtomicU64,
    failed: AtomicU64,
}

enum Command {
    /// Export once more unless `deadline` has passed, then end.
    Stop(Instant),
}

/// The periodic export of the operation metrics, on a supervised thread
/// of its own. Stopped (with a last export) by [`stop`](Self::stop) or
/// through [`Background`]; a drop closes its channel, which ends it
/// without a last export and without waiting.
#[derive(Debug)]
pub(crate) struct MetricsExporter {
    commands: mpsc::Sender<Command>,
    thread: Option<Supervised>,
    #[cfg_attr(not(test), allow(dead_code))]
    counts: Arc<Counts>,
}

/// Starts exporting the operation metrics in `native` every `interval`
/// (from now; the first export one interval from now) to `post`, with
/// `resource` on every request. The cumulative values are reported as
/// starting now.
///
/// # Errors
///
/// The error of spawning the thread.
pub(crate) fn start<P: MetricsPost>(
    native: Arc<NativeMetrics>,
    resource: Resource,
    interval: Duration,
    post: P,
) -> std::io::Result<MetricsExporter> {
    let counts = Arc::new(Counts::default());
    let mut worker = Worker {
        native,
        resource,
        start_unix_nanos: clock::unix_nanos(),
        interval,
        post,
        counts: Arc::clone(&counts),
        exporting: false,
        failing: false,
        stopped: false,
    };
    let (commands, rx) = mpsc::channel();
    let thread = supervise::spawn(THREAD_NAME.into(), COMPONENT.into(), move |restarts| {
        worker.body(&rx, restarts);
    })?;
    Ok(MetricsExporter {
        commands,
        thread: Some(thread),
        counts,
    })
}

impl MetricsExporter {
    /// What the exporter has done so far.
    #[cfg(test)]
    pub(crate) fn stats(&self) -> MetricsExportStats {
        MetricsExportStats {
            exported: self.counts.exported.load(Ordering::Relaxed),
            failed: self.counts.failed.load(Ordering::Relaxed),
        }
    }

    /// Exports once more and stops, returning within `timeout` even if
    /// the export is stuck (its thread is then left to end by itself, and
    /// the export is counted when it ends).
    #[cfg(test)]
    pub(crate) fn stop(mut self, timeout: Duration) -> MetricsExportStats {
        self.shut_down(timeout);
        self.stats()
    }

    fn shut_down(&mut self, timeout: Duration) {
        let deadline = clock::deadline_after(timeout);
        let _ = self.commands.send(Command::Stop(deadline));
        if let Some(t) = self.thread.take() {
            let _ = t.join_until(Some(deadline));
        }
    }
}

impl Background for MetricsExporter {
    fn stop(mut self: Box<Self>, timeout: Duration) {
        self.shut_down(timeout);
    }
}

/// The exporter thread's state; it outlives a panic of the body.
struct Worker<P> {
    native: Arc<NativeMetrics>,
    resource: Resource,
    start_unix_nanos: u64,
    interval: Duration,
    post: P,
    counts: Arc<Counts>,
    /// Set while an export is encoded and posted: a panic then lost it.
    exporting: bool,
    /// Whether the last export failed (its warning is written once).
    failing: bool,
    /// Whether a stop was received.
    stopped: bool,
}

impl<P: MetricsPost> Worker<P> {
    fn body(&mut self, rx: &mpsc::Receiver<Command>, restarts: u32) {
        if restarts > 0 {
            if std::mem::take(&mut self.exporting) {
                self.failed("the export panicked");
            }
            if self.stopped {
                return;
            }
            match rx.recv_timeout(supervise::restart_delay(restarts)) {
                Ok(Command::Stop(deadline)) => return self.last_export(deadline),
                Err(RecvTimeoutError::Disconnected) => return,
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
        self.run(rx);
    }

    fn run(&mut self, rx: &mpsc::Receiver<Command>) {
        let mut next_tick = clock::deadline_after(self.interval);
        loop {
            match rx.recv_timeout(next_tick.saturating_duration_since(Instant::now())) {
                Ok(Command::Stop(deadline)) => return self.last_export(deadline),
                Err(RecvTimeoutError::Disconnected) => return,
                Err(RecvTimeoutError::Timeout) => {}
            }
            let now = Instant::now();
            if now >= next_tick {
                next_tick = next_tick.checked_add(self.interval).unwrap_or(next_tick);
                if next_tick <= now {
                    // Fell behind (a slow export): skip ticks, do not burst.
                    next_tick = clock::deadline_after(self.interval);
                }
                self.export(next_tick);
            }
        }
    }

    fn last_export(&mut self, deadline: Instant) {
        self.stopped = true;
        if Instant::now() < deadline {
            self.export(deadline);
        } else {
            self.failed("no time left at shutdown");
        }
    }

    fn export(&mut self, deadline: Instant) {
        self.exporting = true;
        let request = encode(
            &self.native,
            &self.resource,
            self.start_unix_nanos,
            clock::unix_nanos(),
        );
        let sent = self.post.post(request.encode_to_vec(), deadline);
        self.exporting = false;
        match sent {
            Ok(()) => {
                self.counts.exported.fetch_add(1, Ordering::Relaxed);
                if std::mem::take(&mut self.failing) {
                    tracing::info!(
                        target: "observe::otlp",
                        "otlp metrics export: exports succeed again"
                    );
                }
            }
            Err(why) => self.failed(&why),
        }
    }

    fn failed(&mut self, why: &str) {
        // Described here, not at start: the exporter starts before the
        // recorder is installed, and a description then reaches none.
        describe();
        self.counts.failed.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(names::OTLP_EXPORTS_FAILED_TOTAL, names::LABEL_SIGNAL => SIGNAL)
            .increment(1);
        if !std::mem::replace(&mut self.failing, true) {
            tracing::warn!(
                target: "observe::otlp",
                error = why,
                "otlp metrics export failed; the next export carries its values"
            );
        }
    }
}

fn describe() {
    metrics::describe_counter!(
        names::OTLP_EXPORTS_FAILED_TOTAL,
        metrics::Unit::Count,
        "OTLP exports that failed or were given up on, by signal."
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::Status;
    use crate::base::wait::wait_for;
    use crate::recorder::Format;
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    const CALLS: &str = "operation_calls";
    const DURATION: &str = names::OPERATION_DURATION_SECONDS;
    const IN_FLIGHT: &str = names::OPERATION_IN_FLIGHT;

    /// The store after some calls: guard-path calls of two operations
    /// (one with every status), a series with an extra label recorded
    /// through the `metrics` facade, a label value that needs escaping.
    fn busy_store() -> Arc<NativeMetrics> {
        let native = Arc::new(NativeMetrics::new(
            &[0.01, 0.001, 0.1],
            vec![("service".into(), "svc \"q\"".into())],
        ));
        let a = native.operation("db.query");
        a.show_all();
        for (status, nanos) in [
            (Status::Success, 500_000),
            (Status::Success, 2_000_000),
            (Status::Success, 7_000_000_000),
            (Status::Error, 50_000_000),
            (Status::Panic, 3),
            (Status::Cancelled, 10_000_000),
        ] {
            a.enter();
            a.finish(status, nanos, 1);
        }
        a.enter();
        let b = native.operation("cache.get");
        b.show_all();
        b.enter();
        b.finish(Status::Success, 123_456, 1);

        static META: metrics::Metadata<'static> =
            metrics::Metadata::new(module_path!(), metrics::Level::INFO, None);
        let recorder =
            crate::recorder::NativeRecorder::new(metrics::NoopRecorder, Arc::clone(&native));
        use metrics::Recorder as _;
        let extra = vec![
            metrics::Label::new(names::LABEL_OPERATION, "custom"),
            metrics::Label::new(names::LABEL_STATUS, "success"),
            metrics::Label::new("region", "eu"),
        ];
        recorder
            .register_counter(
                &metrics::Key::from_parts(names::OPERATION_CALLS_TOTAL, extra.clone()),
                &META,
            )
            .increment(4);
        recorder
            .register_histogram(
                &metrics::Key::from_parts(names::OPERATION_DURATION_SECONDS, extra),
                &META,
            )
            .record(0.05);
        recorder.describe_counter(names::OPERATION_CALLS_TOTAL.into(), None, "Calls.".into());
        native
    }

    fn resource() -> Resource {
        Resource {
            attributes: vec![string_attribute("service.name", "svc".into())],
            ..Resource::default()
        }
    }

    fn metrics_of(req: &ExportMetricsServiceRequest) -> &[Metric] {
        &req.resource_metrics[0].scope_metrics[0].metrics
    }

    fn find<'a>(req: &'a ExportMetricsServiceRequest, name: &str) -> &'a Metric {
        metrics_of(req)
            .iter()
            .find(|m| m.name == name)
            .unwrap_or_else(|| panic!("{name} in {req:?}"))
    }

    fn escape(v: &str) -> String {
        v.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
    }

    /// `name{a="x",...}` with the attributes in order, escaped as the
    /// text format does.
    fn series_key(name: &str, attrs: &[KeyValue], extra: Option<String>) -> String {
        let mut labels: Vec<String> = attrs
            .iter()
            .map(|kv| {
                let v = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                    Some(any_value::Value::StringValue(s)) => s.clone(),
                    other => panic!("string attribute, got {other:?}"),
                };
                format!("{}=\"{}\"", kv.key, escape(&v))
            })
            .collect();
        labels.extend(extra);
        format!("{name}{{{}}}", labels.join(","))
    }

    /// Every sample line of the OTLP request, keyed as the Prometheus
    /// text keys it.
    fn otlp_samples(req: &ExportMetricsServiceRequest) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        for m in metrics_of(req) {
            match &m.data {
                Some(metric::Data::Sum(sum)) => {
                    assert_eq!(m.name, CALLS);
                    for p in &sum.data_points {
                        let Some(number_data_point::Value::AsInt(v)) = p.value else {
                            panic!("an integer sum: {p:?}");
                        };
                        #[allow(clippy::cast_precision_loss)]
                        let v = v as f64;
                        let key = series_key(names::OPERATION_CALLS_TOTAL, &p.attributes, None);
                        assert!(out.insert(key, v).is_none());
                    }
                }
                Some(metric::Data::Gauge(g)) => {
                    for p in &g.data_points {
                        let Some(number_data_point::Value::AsDouble(v)) = p.value else {
                            panic!("a double gauge: {p:?}");
                        };
                        out.insert(series_key(&m.name, &p.attributes, None), v);
                    }
                }
                Some(metric::Data::Histogram(h)) => {
                    for p in &h.data_points {
                        let mut total = 0;
                        let les = p
                            .explicit_bounds
                            .iter()
                            .map(ToString::to_string)
                            .chain(["+Inf".to_owned()]);
                        assert_eq!(p.bucket_counts.len(), p.explicit_bounds.len() + 1);
                        for (le, n) in les.zip(&p.bucket_counts) {
                            total += n;
                            #[allow(clippy::cast_precision_loss)]
                            let cumulative = total as f64;
                            out.insert(
                                series_key(
                                    &format!("{}_bucket", m.name),
                                    &p.attributes,
                                    Some(format!("le=\"{le}\"")),
                                ),
                                cumulative,
                            );
                        }
                        assert_eq!(total, p.count);
                        let sum = p.sum.expect("a sum");
                        out.insert(
                            series_key(&format!("{}_sum", m.name), &p.attributes, None),
                            sum,
                        );
                        #[allow(clippy::cast_precision_loss)]
                        let count = p.count as f64;
                        out.insert(
                            series_key(&format!("{}_count", m.name), &p.attributes, None),
                            count,
                        );
                    }
                }
                other => panic!("unexpected data {other:?}"),
            }
        }
        out
    }

    fn prometheus_samples(text: &str) -> BTreeMap<String, f64> {
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(|l| {
                let (key, value) = l.rsplit_once(' ').expect("a sample line");
                (key.to_owned(), value.parse().expect("a number"))
            })
            .collect()
    }

    #[test]
    fn every_count_and_sum_equals_the_prometheus_exposition() {
        let native = busy_store();
        let mut text = String::new();
        native.render_into(&mut text, Format::Text);
        let req = encode(&native, &resource(), 10, 20);
        let prometheus = prometheus_samples(&text);
        assert!(prometheus.len() > 30, "{text}");
        assert_eq!(otlp_samples(&req), prometheus, "{text}");
        assert_eq!(find(&req, CALLS).description, "Calls.");
    }

    #[test]
    fn kinds_temporality_units_times_and_resource() {
        let native = busy_store();
        let req = encode(&native, &resource(), 10, 20);
        assert_eq!(req.resource_metrics[0].resource, Some(resource()));
        let scope = req.resource_metrics[0].scope_metrics[0].scope.as_ref();
        assert_eq!(scope.map(|s| s.name.as_str()), Some("observe"));
        let cumulative = AggregationTemporality::Cumulative as i32;

        let calls = find(&req, CALLS);
        assert_eq!(calls.unit, "{call}");
        let Some(metric::Data::Sum(sum)) = &calls.data else {
            panic!("a sum: {calls:?}");
        };
        assert!(sum.is_monotonic);
        assert_eq!(sum.aggregation_temporality, cumulative);
        assert!(
            sum.data_points
                .iter()
                .all(|p| (p.start_time_unix_nano, p.time_unix_nano) == (10, 20))
        );

        let durations = find(&req, DURATION);
        assert_eq!(durations.unit, "s");
        let Some(metric::Data::Histogram(h)) = &durations.data else {
            panic!("a histogram: {durations:?}");
        };
        assert_eq!(h.aggregation_temporality, cumulative);
        assert!(
            h.data_points
                .iter()
                .all(|p| (p.start_time_unix_nano, p.time_unix_nano) == (10, 20))
        );

        let gauge = find(&req, IN_FLIGHT);
        let Some(metric::Data::Gauge(g)) = &gauge.data else {
            panic!("a gauge: {gauge:?}");
        };
        assert!(g.data_points.iter().all(|p| p.time_unix_nano == 20));
        // The OTLP names map back to the Prometheus ones.
        assert_eq!(format!("{CALLS}_total"), names::OPERATION_CALLS_TOTAL);
    }

    #[test]
    fn histogram_bounds_are_the_configured_buckets() {
        let native = NativeMetrics::new(names::DEFAULT_DURATION_BUCKETS, Vec::new());
        let cells = native.operation("op");
        cells.enter();
        cells.finish(Status::Success, 1_000, 1);
        let req = encode(&native, &Resource::default(), 0, 1);
        let Some(metric::Data::Histogram(h)) = &find(&req, DURATION).data else {
            panic!("a histogram");
        };
        assert_eq!(h.data_points.len(), 1);
        let p = &h.data_points[0];
        assert_eq!(p.explicit_bounds, names::DEFAULT_DURATION_BUCKETS);
        assert_eq!(
            p.bucket_counts.len(),
            names::DEFAULT_DURATION_BUCKETS.len() + 1
        );
        assert_eq!(p.bucket_counts[0], 1, "1 µs is in the first bucket");
    }

    #[test]
    fn values_are_cumulative_across_exports() {
        let native = NativeMetrics::new(&[1.0], Vec::new());
        let cells = native.operation("op");
        cells.show_all();
        let success_calls = |req: &ExportMetricsServiceRequest| {
            let Some(metric::Data::Sum(sum)) = &find(req, CALLS).data else {
                panic!("a sum");
            };
            sum.data_points
                .iter()
                .find(|p| {
                    p.attributes.iter().any(|a| {
                        a.value.as_ref().and_then(|v| v.value.as_ref())
                            == Some(&any_value::Value::StringValue("success".into()))
                    })
                })
                .and_then(|p| p.value)
        };
        let histogram_count = |req: &ExportMetricsServiceRequest| {
            let Some(metric::Data::Histogram(h)) = &find(req, DURATION).data else {
                panic!("a histogram");
            };
            (h.data_points[0].count, h.data_points[0].sum)
        };
        for _ in 0..2 {
            cells.enter();
            cells.finish(Status::Success, 250_000_000, 1);
        }
        let first = encode(&native, &Resource::default(), 5, 6);
        cells.enter();
        cells.finish(Status::Success, 500_000_000, 1);
        let second = encode(&native, &Resource::default(), 5, 7);
        assert_eq!(
            success_calls(&first),
            Some(number_data_point::Value::AsInt(2))
        );
        assert_eq!(
            success_calls(&second),
            Some(number_data_point::Value::AsInt(3))
        );
        assert_eq!(histogram_count(&first), (2, Some(0.5)));
        assert_eq!(histogram_count(&second), (3, Some(1.0)));
    }

    #[test]
    fn a_bucket_exemplar_carries_the_call_its_value_and_time() {
        let native = NativeMetrics::new(&[0.001, 0.1], Vec::new());
        let cells = native.operation("op");
        let id: crate::correlation::CorrelationId = "req-3".parse().expect("valid");
        crate::correlation::scope(id, || {
            cells.enter();
            cells.finish(Status::Success, 2_000_000, 1);
        });
        let req = encode(&native, &Resource::default(), 0, 1);
        let Some(metric::Data::Histogram(h)) = &find(&req, DURATION).data else {
            panic!("a histogram");
        };
        let e = &h.data_points[0].exemplars;
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].value, Some(exemplar::Value::AsDouble(0.002)));
        assert_eq!(
            e[0].filtered_attributes,
            vec![string_attribute("correlation_id", "req-3".into())]
        );
        assert!(e[0].time_unix_nano > 0);
        assert!(e[0].span_id.is_empty());
    }

    #[test]
    fn an_empty_store_exports_no_metrics() {
        let native = NativeMetrics::new(&[1.0], Vec::new());
        let req = encode(&native, &Resource::default(), 0, 1);
        assert!(metrics_of(&req).is_empty());
    }

    /// Collects the decoded requests it is given.
    fn collecting() -> (
        impl MetricsPost,
        Arc<Mutex<Vec<ExportMetricsServiceRequest>>>,
    ) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        let post = move |body: Vec<u8>, _deadline: Instant| {
            let req =
                ExportMetricsServiceRequest::decode(body.as_slice()).map_err(|e| e.to_string())?;
            sink.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(req);
            Ok(())
        };
        (post, seen)
    }

    #[test]
    fn exports_every_interval_and_once_more_on_stop() {
        let native = Arc::new(NativeMetrics::new(&[1.0], Vec::new()));
        let cells = native.operation("op");
        cells.show_all();
        let (post, seen) = collecting();
        let exporter = start(
            Arc::clone(&native),
            Resource::default(),
            Duration::from_millis(20),
            post,
        )
        .expect("spawned");
        let count = || seen.lock().map_or(0, |s| s.len());
        wait_for("two exports", || count() >= 2);
        cells.enter();
        cells.finish(Status::Error, 1, 1);
        let stats = exporter.stop(Duration::from_secs(5));
        let seen = seen.lock().expect("not poisoned");
        assert_eq!(stats.exported, seen.len() as u64);
        assert_eq!(stats.failed, 0);
        let last = seen.last().expect("a last export");
        let Some(metric::Data::Sum(sum)) = &find(last, CALLS).data else {
            panic!("a sum");
        };
        assert!(
            sum.data_points
                .iter()
                .any(|p| p.value == Some(number_data_point::Value::AsInt(1))),
            "the last export has the error call: {last:?}"
        );
        let start = sum.data_points[0].start_time_unix_nano;
        assert!(
            seen.iter().all(|r| {
                let Some(metric::Data::Sum(s)) = &find(r, CALLS).data else {
                    return false;
                };
                s.data_points
                    .iter()
                    .all(|p| p.start_time_unix_nano == start && p.time_unix_nano >= start)
            }),
            "every export starts at the exporter's start"
        );
    }

    #[test]
    fn stop_returns_within_the_timeout_when_the_post_blocks() {
        let native = Arc::new(NativeMetrics::new(&[1.0], Vec::new()));
        let (release, blocked) = mpsc::channel::<()>();
        let blocked = Mutex::new(blocked);
        let calls = Arc::new(AtomicU64::new(0));
        let seen = Arc::clone(&calls);
        let post = move |_body: Vec<u8>, _deadline: Instant| {
            seen.fetch_add(1, Ordering::SeqCst);
            // Ignores its deadline, like a broken transport would.
            let _ = blocked.lock().map(|rx| rx.recv());
            Err("blocked".to_owned())
        };
        let exporter =
            start(native, Resource::default(), Duration::from_millis(10), post).expect("spawned");
        wait_for("the post to block", || calls.load(Ordering::SeqCst) >= 1);
        let begun = Instant::now();
        let stats = exporter.stop(Duration::from_millis(100));
        let took = begun.elapsed();
        assert!(took < Duration::from_secs(3), "stop took {took:?}");
        assert!(took >= Duration::from_millis(90), "stop waited: {took:?}");
        assert_eq!(stats.exported, 0);
        drop(release);
    }

    #[test]
    fn a_panicking_post_is_counted_and_survived() {
        let native = Arc::new(NativeMetrics::new(&[1.0], Vec::new()));
        let calls = Arc::new(AtomicU64::new(0));
        let seen = Arc::clone(&calls);
        let post = move |_body: Vec<u8>, _deadline: Instant| {
            if seen.fetch_add(1, Ordering::SeqCst) == 0 {
                panic!("transport bug");
            }
            Ok(())
        };
        let exporter =
            start(native, Resource::default(), Duration::from_millis(10), post).expect("spawned");
        // The first restart waits 100 ms, then exports resume.
        wait_for("an export after the panic", || {
            exporter.stats().exported >= 1
        });
        let stats = exporter.stop(Duration::from_secs(5));
        assert_eq!(stats.failed, 1, "{stats:?}");
        assert!(stats.exported >= 2, "{stats:?}");
        assert_eq!(calls.load(Ordering::SeqCst), stats.exported + 1);
    }

    #[test]
    fn failed_exports_are_counted_and_a_stop_without_time_counts_its_export() {
        let native = Arc::new(NativeMetrics::new(&[1.0], Vec::new()));
        let post = |_body: Vec<u8>, _deadline: Instant| Err("refused".to_owned());
        let exporter =
            start(native, Resource::default(), Duration::from_millis(10), post).expect("spawned");
        wait_for("a failed export", || exporter.stats().failed >= 2);
        let stats = exporter.stop(Duration::from_secs(5));
        assert_eq!(stats.exported, 0);
        assert!(stats.failed >= 3, "{stats:?}");

        let native = Arc::new(NativeMetrics::new(&[1.0], Vec::new()));
        let (post, seen) = collecting();
        let exporter =
            start(native, Resource::default(), Duration::from_secs(60), post).expect("spawned");
        let stats = exporter.stop(Duration::ZERO);
        // The thread may not have got to the stop before the zero timeout.
        assert!(stats.failed <= 1);
        assert!(seen.lock().map_or(0, |s| s.len()) == 0);
    }

    #[test]
    fn failures_reach_the_counter() {
        let recorder = metrics_util::debugging::DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let mut worker = Worker {
            native: Arc::new(NativeMetrics::new(&[1.0], Vec::new())),
            resource: Resource::default(),
            start_unix_nanos: 0,
            interval: crate::otlp::DEFAULT_METRIC_EXPORT_INTERVAL,
            post: |_body: Vec<u8>, _deadline: Instant| Err("refused".to_owned()),
            counts: Arc::new(Counts::default()),
            exporting: false,
            failing: false,
            stopped: false,
        };
        metrics::with_local_recorder(&recorder, || {
            worker.export(Instant::now());
            worker.export(Instant::now());
        });
        let counted: Vec<_> = snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .filter(|(k, ..)| k.key().name() == names::OTLP_EXPORTS_FAILED_TOTAL)
            .map(|(k, _, _, v)| {
                let labels: Vec<_> = k
                    .key()
                    .labels()
                    .map(|l| (l.key().to_owned(), l.value().to_owned()))
                    .collect();
                (labels, v)
            })
            .collect();
        assert_eq!(
            counted,
            vec![(
                vec![("signal".to_owned(), "metrics".to_owned())],
                metrics_util::debugging::DebugValue::Counter(2)
            )]
        );
    }
}
