//! OTLP end to end, against a real collector: rotel receives OTLP/HTTP and
//! forwards every export request to a Kafka-compatible broker (tansu), whose
//! topics the tests read back (`support/otlp_pipeline.rs`).
//!
//! The requests here are encoded by hand from `opentelemetry-proto`'s prost
//! messages and POSTed over a plain TCP connection, proving the pipeline
//! itself: what goes in as protobuf comes out of Kafka with the same IDs
//! and values, and a collector that is killed and restarted on its port
//! takes requests again. Tests of observe's exporter run monitored
//! services as child processes of this binary (`otlp_e2e --role NAME`,
//! as `tests/ha_ingestor.rs` does), pointed at
//! [`Pipeline::otlp_endpoint`], and assert on the same readers; so the
//! binary has its own `main` (`harness = false`) with a small runner.

#[path = "support/otlp_pipeline.rs"]
mod pipeline;

use std::collections::BTreeMap;
use std::hash::BuildHasher as _;
use std::process::ExitCode;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
    Sum, metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    ResourceSpans, ScopeSpans, Span, Status, span, status,
};
use pipeline::{Pipeline, post_protobuf};
use prost::Message as _;
use serde_json::json;

/// The tests of this binary, run one after the other.
const TESTS: &[(&str, fn())] = &[
    (
        "protobuf_traces_logs_and_metrics_arrive_in_kafka",
        protobuf_traces_logs_and_metrics_arrive_in_kafka,
    ),
    (
        "collector_killed_and_restarted_on_its_port",
        collector_killed_and_restarted_on_its_port,
    ),
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(i) = args.iter().position(|a| a == "--role") {
        return run_role(args.get(i + 1).map_or("", String::as_str));
    }
    run_tests(&args)
}

/// A monitored service of a test, running as a child process of this
/// binary. None is defined yet; the exporter's tests add theirs here.
fn run_role(name: &str) -> ExitCode {
    eprintln!("otlp_e2e: no role {name:?}");
    ExitCode::FAILURE
}

/// libtest's command line, as far as `cargo test` uses it: `--list`, a
/// name filter (substring, or whole name with `--exact`), `--skip NAME`.
fn run_tests(args: &[String]) -> ExitCode {
    if args.iter().any(|a| a == "--list") {
        for (name, _) in TESTS {
            println!("{name}: test");
        }
        return ExitCode::SUCCESS;
    }
    let exact = args.iter().any(|a| a == "--exact");
    let mut filters = Vec::new();
    let mut skips = Vec::new();
    let mut rest = args.iter();
    while let Some(a) = rest.next() {
        match a.as_str() {
            "--skip" => skips.extend(rest.next()),
            // Flags with a value, which is not a filter.
            "--test-threads" | "--color" | "--format" | "--logfile" | "-Z" => {
                rest.next();
            }
            _ if a.starts_with('-') => {}
            _ => filters.push(a.as_str()),
        }
    }
    let selected = |name: &str| {
        let hit = |f: &str| if exact { name == f } else { name.contains(f) };
        (filters.is_empty() || filters.iter().any(|f| hit(f)))
            && !skips.iter().any(|s| name.contains(s.as_str()))
    };
    let (mut passed, mut failed, mut filtered) = (0, Vec::new(), 0);
    println!();
    for (name, test) in TESTS {
        if !selected(name) {
            filtered += 1;
            continue;
        }
        let started = Instant::now();
        let outcome = std::panic::catch_unwind(test);
        let secs = started.elapsed().as_secs_f64();
        if outcome.is_ok() {
            println!("test {name} ... ok ({secs:.1} s)");
            passed += 1;
        } else {
            println!("test {name} ... FAILED ({secs:.1} s)");
            failed.push(*name);
        }
    }
    let result = if failed.is_empty() { "ok" } else { "FAILED" };
    println!(
        "\ntest result: {result}. {passed} passed; {} failed; {filtered} filtered out\n",
        failed.len()
    );
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        for name in failed {
            println!("    {name}");
        }
        ExitCode::FAILURE
    }
}

/// Random bits, different in every call and every run, so one run's data
/// is told apart from another's.
fn random_u64() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    std::hash::RandomState::new().hash_one(N.fetch_add(1, Ordering::Relaxed))
}

fn trace_id() -> [u8; 16] {
    let mut id = [0; 16];
    id[..8].copy_from_slice(&random_u64().to_be_bytes());
    id[8..].copy_from_slice(&random_u64().to_be_bytes());
    id
}

fn span_id() -> [u8; 8] {
    random_u64().to_be_bytes()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn now_nanos() -> u64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
}

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn string(s: &str) -> any_value::Value {
    any_value::Value::StringValue(s.to_owned())
}

fn resource(service: &str) -> Option<Resource> {
    Some(Resource {
        attributes: vec![
            kv("service.name", string(service)),
            kv("service.version", string("0.1.0")),
        ],
        ..Default::default()
    })
}

fn scope() -> Option<InstrumentationScope> {
    Some(InstrumentationScope {
        name: "observe".to_owned(),
        version: "0.1.0".to_owned(),
        ..Default::default()
    })
}

fn traces(service: &str, spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource(service),
            scope_spans: vec![ScopeSpans {
                scope: scope(),
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// An internal span of 1.5 ms, ending now.
fn span(trace: [u8; 16], id: [u8; 8], parent: Option<[u8; 8]>, name: &str) -> Span {
    let end = now_nanos();
    Span {
        trace_id: trace.to_vec(),
        span_id: id.to_vec(),
        parent_span_id: parent.map(|p| p.to_vec()).unwrap_or_default(),
        name: name.to_owned(),
        kind: span::SpanKind::Internal as i32,
        start_time_unix_nano: end - 1_500_000,
        end_time_unix_nano: end,
        ..Default::default()
    }
}

/// POSTs `request` to the collector's `path`, which must take it.
fn export(pipeline: &Pipeline, path: &str, request: &impl prost::Message) {
    let reply = post_protobuf(&pipeline.otlp_endpoint(), path, &request.encode_to_vec())
        .unwrap_or_else(|e| panic!("POST {path}: {e}"));
    assert_eq!(
        reply.status,
        200,
        "POST {path}: {}\n{}",
        String::from_utf8_lossy(&reply.body),
        pipeline.diagnostics()
    );
}

fn protobuf_traces_logs_and_metrics_arrive_in_kafka() {
    let Some(pipeline) = Pipeline::start_or_skip() else {
        return;
    };
    let service = format!("e2e-{:x}", random_u64());
    let trace = trace_id();
    let (root, child) = (span_id(), span_id());

    // A request handled by `gateway.handle`, which called `inventory.lookup`
    // that failed.
    let mut failed = span(trace, child, Some(root), "inventory.lookup");
    failed.status = Some(Status {
        code: status::StatusCode::Error as i32,
        message: "inventory unreachable".to_owned(),
    });
    failed.attributes = vec![
        kv("sku", string("sku-1")),
        kv("attempt", any_value::Value::IntValue(3)),
        kv("cached", any_value::Value::BoolValue(false)),
        kv("ratio", any_value::Value::DoubleValue(0.25)),
        kv("error.type", string("UpstreamError")),
    ];
    let mut handled = span(trace, root, None, "gateway.handle");
    handled.kind = span::SpanKind::Server as i32;
    handled.attributes = vec![kv("correlation_id", string("abc-123"))];

    let sent = Instant::now();
    export(
        &pipeline,
        "/v1/traces",
        &traces(&service, vec![failed, handled]),
    );

    let log = |id: [u8; 8], severity: i32, text: &str, body: &str| LogRecord {
        time_unix_nano: now_nanos(),
        severity_number: severity,
        severity_text: text.to_owned(),
        body: Some(AnyValue {
            value: Some(string(body)),
        }),
        attributes: vec![kv("correlation_id", string("abc-123"))],
        trace_id: trace.to_vec(),
        span_id: id.to_vec(),
        ..Default::default()
    };
    export(
        &pipeline,
        "/v1/logs",
        &ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: resource(&service),
                scope_logs: vec![ScopeLogs {
                    scope: scope(),
                    log_records: vec![
                        log(child, 17, "ERROR", "inventory unreachable"),
                        log(root, 9, "INFO", "request handled"),
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        },
    );

    let now = now_nanos();
    let labels = |status: &str| {
        vec![
            kv("operation", string("inventory.lookup")),
            kv("status", string(status)),
        ]
    };
    let count = |status: &str, n: i64| NumberDataPoint {
        attributes: labels(status),
        start_time_unix_nano: now - 10_000_000_000,
        time_unix_nano: now,
        value: Some(number_data_point::Value::AsInt(n)),
        ..Default::default()
    };
    let metrics = vec![
        Metric {
            name: "operation_calls_total".to_owned(),
            data: Some(metric::Data::Sum(Sum {
                data_points: vec![count("success", 41), count("error", 1)],
                aggregation_temporality: 2,
                is_monotonic: true,
            })),
            ..Default::default()
        },
        Metric {
            name: "operation_duration_seconds".to_owned(),
            unit: "s".to_owned(),
            data: Some(metric::Data::Histogram(Histogram {
                data_points: vec![HistogramDataPoint {
                    attributes: labels("success"),
                    start_time_unix_nano: now - 10_000_000_000,
                    time_unix_nano: now,
                    count: 41,
                    sum: Some(0.5),
                    bucket_counts: vec![40, 1, 0],
                    explicit_bounds: vec![0.005, 0.01],
                    ..Default::default()
                }],
                aggregation_temporality: 2,
            })),
            ..Default::default()
        },
        Metric {
            name: "operation_in_flight".to_owned(),
            data: Some(metric::Data::Gauge(Gauge {
                data_points: vec![NumberDataPoint {
                    attributes: labels("success"),
                    time_unix_nano: now,
                    value: Some(number_data_point::Value::AsDouble(2.0)),
                    ..Default::default()
                }],
            })),
            ..Default::default()
        },
    ];
    export(
        &pipeline,
        "/v1/metrics",
        &ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: resource(&service),
                scope_metrics: vec![ScopeMetrics {
                    scope: scope(),
                    metrics,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        },
    );
    let posted = sent.elapsed();

    let spans = pipeline.spans(2);
    let spans_read = sent.elapsed();
    assert_eq!(spans.len(), 2, "{spans:#?}");
    let by_name: BTreeMap<&str, &pipeline::Span> =
        spans.iter().map(|s| (s.name.as_str(), s)).collect();
    let (lookup, handle) = (&by_name["inventory.lookup"], &by_name["gateway.handle"]);
    assert_eq!(lookup.trace_id, hex(&trace));
    assert_eq!(handle.trace_id, hex(&trace));
    assert_eq!(handle.span_id, hex(&root));
    assert_eq!(handle.parent_span_id, None);
    assert_eq!(lookup.span_id, hex(&child));
    assert_eq!(lookup.parent_span_id.as_deref(), Some(hex(&root).as_str()));
    assert_eq!(lookup.status_code, 2);
    assert_eq!(lookup.status_message, "inventory unreachable");
    assert_eq!(handle.status_code, 0);
    assert_eq!(lookup.kind, 1);
    assert_eq!(handle.kind, 2);
    assert_eq!(lookup.end_unix_nanos - lookup.start_unix_nanos, 1_500_000);
    assert_eq!(
        lookup.attributes,
        BTreeMap::from([
            ("sku".to_owned(), json!("sku-1")),
            ("attempt".to_owned(), json!(3)),
            ("cached".to_owned(), json!(false)),
            ("ratio".to_owned(), json!(0.25)),
            ("error.type".to_owned(), json!("UpstreamError")),
        ])
    );
    assert_eq!(handle.attributes["correlation_id"], "abc-123");
    assert_eq!(lookup.resource["service.name"], json!(service));
    assert_eq!(lookup.resource["service.version"], "0.1.0");

    let records = pipeline.log_records(2);
    assert_eq!(records.len(), 2, "{records:#?}");
    for (record, id, severity, body) in [
        (&records[0], child, 17, "inventory unreachable"),
        (&records[1], root, 9, "request handled"),
    ] {
        assert_eq!(record.trace_id.as_deref(), Some(hex(&trace).as_str()));
        assert_eq!(record.span_id.as_deref(), Some(hex(&id).as_str()));
        assert_eq!(record.severity_number, severity);
        assert_eq!(record.body, json!(body));
        assert_eq!(record.attributes["correlation_id"], "abc-123");
        assert_eq!(record.resource["service.name"], json!(service));
    }

    let points = pipeline.metric_points(4);
    let all_read = sent.elapsed();
    assert_eq!(points.len(), 4, "{points:#?}");
    let calls: BTreeMap<&str, f64> = points
        .iter()
        .filter(|p| p.name == "operation_calls_total")
        .map(|p| {
            assert_eq!(
                (p.kind.as_str(), p.temporality, p.monotonic),
                ("sum", Some(2), Some(true))
            );
            (
                p.attributes["status"].as_str().unwrap_or_default(),
                p.value.unwrap_or(-1.0),
            )
        })
        .collect();
    assert_eq!(calls, BTreeMap::from([("success", 41.0), ("error", 1.0)]));
    let histogram = points
        .iter()
        .find(|p| p.name == "operation_duration_seconds")
        .unwrap_or_else(|| panic!("no histogram: {points:#?}"));
    assert_eq!(histogram.kind, "histogram");
    assert_eq!(histogram.count, Some(41));
    assert_eq!(histogram.sum, Some(0.5));
    assert_eq!(histogram.bucket_counts, [40, 1, 0]);
    assert_eq!(histogram.explicit_bounds, [0.005, 0.01]);
    assert_eq!(histogram.attributes["operation"], "inventory.lookup");
    let gauge = points
        .iter()
        .find(|p| p.name == "operation_in_flight")
        .unwrap_or_else(|| panic!("no gauge: {points:#?}"));
    assert_eq!((gauge.kind.as_str(), gauge.value), ("gauge", Some(2.0)));

    eprintln!(
        "otlp_e2e: 3 requests posted in {} ms; spans read back after {} ms, all three signals after {} ms",
        posted.as_millis(),
        spans_read.as_millis(),
        all_read.as_millis()
    );
}

fn collector_killed_and_restarted_on_its_port() {
    let Some(pipeline) = Pipeline::start_or_skip() else {
        return;
    };
    let service = format!("e2e-{:x}", random_u64());
    let endpoint = pipeline.otlp_endpoint();
    let trace = trace_id();
    let request = |name: &str| traces(&service, vec![span(trace, span_id(), None, name)]);

    export(&pipeline, "/v1/traces", &request("before.kill"));
    // Delivered before the crash, so the topic holds it afterwards.
    pipeline.spans_until("the span sent before the kill", |s| {
        s.iter().any(|s| s.name == "before.kill")
    });

    pipeline.kill_collector();
    let body = request("while.down").encode_to_vec();
    match post_protobuf(&endpoint, "/v1/traces", &body) {
        Err(e) => assert_eq!(
            e.kind(),
            std::io::ErrorKind::ConnectionRefused,
            "POST to a killed collector: {e}"
        ),
        Ok(reply) => panic!("a killed collector answered {}", reply.status),
    }

    let down = Instant::now();
    pipeline.restart_collector();
    let restarted = down.elapsed();
    export(&pipeline, "/v1/traces", &request("after.restart"));
    let spans = pipeline.spans_until("the span sent after the restart", |s| {
        s.iter().any(|s| s.name == "after.restart")
    });
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["before.kill", "after.restart"], "{spans:#?}");
    assert!(spans.iter().all(|s| s.trace_id == hex(&trace)));
    eprintln!(
        "otlp_e2e: collector restarted in {} ms; delivered again after {} ms",
        restarted.as_millis(),
        down.elapsed().as_millis()
    );
}
