//! observe's own OTLP exporter, end to end: monitored services (child
//! processes of this binary) export to rotel, and the tests read back what
//! reached Kafka.

use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Parser as _;
use serde_json::{Value, json};

use crate::chain::{Chain, ChildProcess, get, samples};
use crate::pipeline::{LogRecord, MetricPoint, Pipeline, Span};
use crate::{ha_ingestor, random_u64};

/// SpanKind values.
const INTERNAL: i64 = 1;
const SERVER: i64 = 2;
/// Status code ERROR.
const ERROR: i64 = 2;

/// Which service fails request `n` (`none`: it succeeds).
fn failure_of(n: u64) -> &'static str {
    match n % 4 {
        1 => "stock",
        3 => "orders",
        _ => "none",
    }
}

/// The operations request `n` runs, each with its parent, in call order.
fn expected_calls(fail: &str) -> Vec<(&'static str, Option<&'static str>)> {
    let mut calls = vec![
        ("gateway.handle", None),
        ("gateway.call_orders", Some("gateway.handle")),
        ("orders.handle", Some("gateway.call_orders")),
    ];
    if fail != "orders" {
        calls.extend([
            ("orders.call_stock", Some("orders.handle")),
            ("stock.handle", Some("orders.call_stock")),
            ("stock.lookup", Some("stock.handle")),
        ]);
    }
    calls
}

/// `operation_calls_total` of each service, by its full label set, as its
/// Prometheus exposition shows it.
fn prometheus_calls(expositions: &[(String, String)]) -> BTreeMap<String, BTreeMap<String, f64>> {
    expositions
        .iter()
        .map(|(service, text)| {
            let calls = samples(text, "operation_calls_total")
                .into_iter()
                .map(|(labels, v)| (label_key(labels.iter()), v))
                .collect();
            (service.clone(), calls)
        })
        .collect()
}

/// `log_lines_{sent,dropped}_total{sink}` of one exposition.
fn sink_counts(exposition: &str, sink: &str) -> (f64, f64) {
    let of = |name: &str| {
        samples(exposition, name)
            .into_iter()
            .filter(|(l, _)| l.get("sink").is_some_and(|s| s == sink))
            .map(|(_, v)| v)
            .sum()
    };
    (of("log_lines_sent_total"), of("log_lines_dropped_total"))
}

/// A label set as one comparable string.
fn label_key<'a>(labels: impl Iterator<Item = (&'a String, &'a String)>) -> String {
    let sorted: BTreeMap<&String, &String> = labels.collect();
    sorted
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The newest exported value of each series of `name` whose resource is
/// `service`, by label set.
fn latest_points(points: &[MetricPoint], service: &str, name: &str) -> BTreeMap<String, f64> {
    let mut latest: BTreeMap<String, (u64, f64)> = BTreeMap::new();
    for p in points.iter().filter(|p| {
        p.name == name && p.resource.get("service.name").and_then(Value::as_str) == Some(service)
    }) {
        let labels: BTreeMap<String, String> = p
            .attributes
            .iter()
            .map(|(k, v)| {
                let v = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                (k.clone(), v)
            })
            .collect();
        let value = p.value.or(p.count.map(|c| c as f64)).unwrap_or(f64::NAN);
        let entry = latest.entry(label_key(labels.iter())).or_insert((0, value));
        if p.time_unix_nanos >= entry.0 {
            *entry = (p.time_unix_nanos, value);
        }
    }
    latest.into_iter().map(|(k, (_, v))| (k, v)).collect()
}

fn service_of(span: &Span) -> &str {
    span.resource
        .get("service.name")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_default()
}

fn median(xs: &[Duration]) -> Duration {
    let mut xs = xs.to_vec();
    xs.sort();
    xs.get(xs.len() / 2).copied().unwrap_or_default()
}

/// Sends request `n` through the chain with correlation ID `cid`; checks
/// the answer is what `failure_of(n)` says.
fn request(chain: &Chain, n: u64, cid: &str) -> Duration {
    let fail = failure_of(n);
    let reply = get(
        chain.gateway(),
        &format!("/work/{n}/{fail}"),
        &[("x-correlation-id", cid)],
    );
    let want = if fail == "none" { 200 } else { 500 };
    assert_eq!(reply.status, want, "request {n}: {}", reply.body);
    reply.took
}

pub(crate) fn one_request_is_one_trace_across_three_services(pipeline: &Pipeline) {
    let run = format!("{:06x}", random_u64() & 0xff_ffff);
    let chain = Chain::start(&pipeline.otlp_endpoint(), &run);
    let names: Vec<String> = chain.services.iter().map(|s| s.0.clone()).collect();
    let requests: Vec<(u64, String)> = (0..12).map(|n| (n, format!("req-{run}-{n}"))).collect();
    for (n, cid) in &requests {
        request(&chain, *n, cid);
    }

    let expositions = chain.expositions();
    let prometheus = prometheus_calls(&expositions);
    let histogram_counts: BTreeMap<String, BTreeMap<String, f64>> = expositions
        .iter()
        .map(|(s, text)| {
            let counts = samples(text, "operation_duration_seconds_count")
                .into_iter()
                .map(|(l, v)| (label_key(l.iter()), v))
                .collect();
            (s.clone(), counts)
        })
        .collect();
    // Metric points by status equal the Prometheus counts of the same
    // run, taken after the last call: the next periodic export (every
    // second) carries them, before any service stops.
    let waited = Instant::now();
    let points = pipeline.metric_points_until(
        "operation_calls points equal to each service's Prometheus counts",
        |points| {
            names.iter().all(|s| {
                latest_points(points, s, "operation_calls") == prometheus[s]
                    && latest_points(points, s, "operation_duration_seconds") == histogram_counts[s]
            })
        },
    );
    let metrics_after = waited.elapsed();
    for s in &names {
        let by_status: BTreeMap<String, f64> = latest_points(&points, s, "operation_calls");
        assert!(
            by_status.keys().any(|k| k.contains("status=error"))
                && by_status.keys().any(|k| k.contains("status=success")),
            "{s}: {by_status:#?}"
        );
    }

    let lines = chain.stop();
    let total_calls: f64 = prometheus.values().flat_map(|m| m.values()).sum();
    let ours = |s: &Span| names.iter().any(|n| n == service_of(s));
    let spans: Vec<Span> = pipeline
        .spans_until(&format!("{total_calls} spans of {names:?}"), |spans| {
            spans.iter().filter(|s| ours(s)).count() as f64 >= total_calls
        })
        .into_iter()
        .filter(ours)
        .collect();
    let ids: BTreeSet<&str> = spans.iter().map(|s| s.span_id.as_str()).collect();
    assert_eq!(ids.len(), spans.len(), "a span arrived twice");
    assert_eq!(spans.len() as f64, total_calls, "every call is one span");

    let mut trace_ids = BTreeSet::new();
    for (n, cid) in &requests {
        let fail = failure_of(*n);
        let of_request: Vec<&Value> = lines
            .iter()
            .filter(|l| l["correlation_id"] == cid.as_str())
            .collect();
        // The trace ID of the gateway's own line finds the request's spans.
        let first = of_request
            .iter()
            .find(|l| l["performance"]["operation"] == "gateway.handle")
            .unwrap_or_else(|| panic!("{cid}: no gateway.handle line in {of_request:#?}"));
        let trace = str_of(first, "trace_id");
        assert_eq!(trace.len(), 32, "{first}");
        assert!(
            trace_ids.insert(trace.to_owned()),
            "{cid}: trace {trace} reused"
        );
        for l in &of_request {
            assert_eq!(
                str_of(l, "trace_id"),
                trace,
                "{cid}: a line of another trace: {l}"
            );
        }
        let trace_spans: Vec<&Span> = spans.iter().filter(|s| s.trace_id == trace).collect();
        let by_name: BTreeMap<&str, &Span> =
            trace_spans.iter().map(|s| (s.name.as_str(), *s)).collect();
        let expected = expected_calls(fail);
        assert_eq!(
            trace_spans.len(),
            expected.len(),
            "{cid} ({fail}): {trace_spans:#?}"
        );
        for (name, parent) in &expected {
            let span = by_name
                .get(name)
                .unwrap_or_else(|| panic!("{cid}: no span {name}: {trace_spans:#?}"));
            let service = format!("{}-{run}", name.split('.').next().unwrap_or_default());
            assert_eq!(service_of(span), service, "{span:#?}");
            assert_eq!(span.resource["service.version"], "1.2.3");
            assert_eq!(
                span.parent_span_id.as_deref(),
                parent.map(|p| by_name[p].span_id.as_str()),
                "{cid}: the parent of {name}"
            );
            // A service's first span continues the caller's traceparent.
            let remote = matches!(*name, "orders.handle" | "stock.handle");
            assert_eq!(
                span.kind,
                if remote { SERVER } else { INTERNAL },
                "{span:#?}"
            );
            assert_eq!(span.attributes["correlation_id"], cid.as_str(), "{span:#?}");
            assert_eq!(span.attributes["item"], json!(n), "{span:#?}");
            assert!(span.end_unix_nanos >= span.start_unix_nanos, "{span:#?}");
            if let Some(p) = parent.map(|p| by_name[p]) {
                if service_of(p) == service_of(span) {
                    assert!(
                        p.start_unix_nanos <= span.start_unix_nanos
                            && span.end_unix_nanos <= p.end_unix_nanos,
                        "{cid}: {name} outside its parent: {trace_spans:#?}"
                    );
                }
            }
            let cause = match fail {
                "stock" => format!("item {n} out of stock"),
                "orders" => format!("order {n} refused"),
                _ => String::new(),
            };
            if cause.is_empty() {
                assert_ne!(span.status_code, ERROR, "{span:#?}");
            } else {
                assert_eq!(span.status_code, ERROR, "{span:#?}");
                assert!(
                    span.status_message.contains(&cause),
                    "{cid}: {name}'s status message lacks {cause:?}: {span:#?}"
                );
                assert_eq!(span.attributes["error.type"], "ChainError", "{span:#?}");
            }
            // The call's own JSON line names the span.
            let line = of_request
                .iter()
                .find(|l| l["performance"]["operation"] == *name)
                .unwrap_or_else(|| panic!("{cid}: no line of {name}"));
            assert_eq!(str_of(line, "span_id"), span.span_id, "{line}");
            assert_eq!(
                line["parent_span_id"].as_str(),
                span.parent_span_id.as_deref(),
                "{line}"
            );
            assert_eq!(str_of(line, "service"), service, "{line}");
        }
    }

    // Log records: one per line, with the line's trace and span IDs.
    let line_count = lines.len();
    let records = pipeline
        .log_records_until(&format!("{line_count} records of {names:?}"), |r| {
            r.iter()
                .filter(|r| {
                    names
                        .iter()
                        .any(|n| r.resource.get("service.name") == Some(&json!(n)))
                })
                .count()
                >= line_count
        })
        .into_iter()
        .filter(|r| {
            names
                .iter()
                .any(|n| r.resource.get("service.name") == Some(&json!(n)))
        })
        .collect::<Vec<_>>();
    assert_eq!(records.len(), line_count, "one record per line");
    for line in &lines {
        let Some(cid) = line["correlation_id"].as_str() else {
            continue;
        };
        if !cid.starts_with(&format!("req-{run}-")) {
            continue;
        }
        let record = records
            .iter()
            .find(|r| {
                r.trace_id.as_deref() == line["trace_id"].as_str()
                    && r.span_id.as_deref() == line["span_id"].as_str()
                    && r.body == line["message"]
            })
            .unwrap_or_else(|| panic!("no log record for {line}"));
        assert_eq!(record.resource["service.name"], line["service"]);
        let trace = record.trace_id.as_deref().unwrap_or_default();
        let trace_spans: BTreeSet<&str> = spans
            .iter()
            .filter(|s| s.trace_id == trace)
            .map(|s| s.span_id.as_str())
            .collect();
        assert!(
            record
                .span_id
                .as_deref()
                .is_some_and(|s| trace_spans.contains(s)),
            "{record:#?} names no span of its trace {trace_spans:?}"
        );
    }

    // One failed request, as it arrived.
    let (n, cid) = &requests[1];
    let trace = spans
        .iter()
        .find(|s| s.attributes.get("correlation_id") == Some(&json!(cid)))
        .map(|s| s.trace_id.clone())
        .unwrap_or_default();
    eprintln!(
        "otlp_e2e: {} requests, {} spans, {} log records; metric points equal to Prometheus {} ms after the last call; request {n} ({cid}, failing at {}) is trace {trace}:\n{}",
        requests.len(),
        spans.len(),
        records.len(),
        metrics_after.as_millis(),
        failure_of(*n),
        show_trace(spans.iter().filter(|s| s.trace_id == trace)),
    );
}

/// One line per span, by start time: offset and duration, service, name,
/// ID, kind, status (with its message) and parent.
fn show_trace<'a>(spans: impl Iterator<Item = &'a Span>) -> String {
    let mut spans: Vec<&Span> = spans.collect();
    spans.sort_by_key(|s| s.start_unix_nanos);
    let by_id: BTreeMap<&str, &Span> = spans.iter().map(|s| (s.span_id.as_str(), *s)).collect();
    let t0 = spans.first().map_or(0, |s| s.start_unix_nanos);
    let mut out = String::new();
    for s in &spans {
        let parent = s.parent_span_id.as_deref().map_or_else(
            || "(root)".to_owned(),
            |p| {
                by_id.get(p).map_or_else(
                    || format!("{p} (not in the trace)"),
                    |ps| format!("{p} {}/{}", service_of(ps), ps.name),
                )
            },
        );
        let status = match s.status_code {
            ERROR => format!("ERROR {:?}", s.status_message),
            1 => "OK".to_owned(),
            _ => "unset".to_owned(),
        };
        let kind = match s.kind {
            SERVER => "server",
            INTERNAL => "internal",
            _ => "other",
        };
        out.push_str(&format!(
            "  +{:>7.3} ms {:>7.3} ms  {:<20} {:<24} span {} {kind:<8} {status}  parent {parent}\n",
            s.start_unix_nanos.saturating_sub(t0) as f64 / 1e6,
            s.end_unix_nanos.saturating_sub(s.start_unix_nanos) as f64 / 1e6,
            service_of(s),
            s.name,
            s.span_id,
        ));
    }
    out
}

pub(crate) fn collector_down_killed_and_restarted_while_services_run(pipeline: &Pipeline) {
    let run = format!("{:06x}", random_u64() & 0xff_ffff);
    let chain = Chain::start(&pipeline.otlp_endpoint(), &run);
    let names: Vec<String> = chain.services.iter().map(|s| s.0.clone()).collect();
    let ours = |s: &Span| names.iter().any(|n| n == service_of(s));
    let ours_record = |r: &LogRecord| {
        names
            .iter()
            .any(|n| r.resource.get("service.name") == Some(&json!(n)))
    };
    let calls_so_far = |chain: &Chain| -> f64 {
        prometheus_calls(&chain.expositions())
            .values()
            .flat_map(|m| m.values())
            .sum()
    };
    let phase = |range: std::ops::Range<u64>| -> Vec<Duration> {
        range
            .map(|n| {
                // Every request succeeds here: only the collector fails.
                let n = n * 4;
                request(&chain, n, &format!("down-{run}-{n}"))
            })
            .collect()
    };

    let up = phase(0..15);
    // Nothing is left in the collector when it is killed: every span and
    // log record sent so far has reached the topics.
    // The counts are read again on each look: a service's last lines may
    // reach its stdout after their records reached the collector.
    pipeline.spans_until("the spans sent before the kill", |s| {
        s.iter().filter(|s| ours(s)).count() as f64 >= calls_so_far(&chain)
    });
    pipeline.log_records_until("the log records sent before the kill", |r| {
        r.iter().filter(|r| ours_record(r)).count() >= chain.line_counts().values().sum::<usize>()
    });

    pipeline.kill_collector();
    let killed = Instant::now();
    let down = phase(15..30);
    // The exporters meet the dead collector (and back off) before it
    // returns.
    std::thread::sleep(Duration::from_millis(700));
    pipeline.restart_collector();
    let down_for = killed.elapsed();
    let after = phase(30..45);

    // Every span and log record (one queue holds both) is delivered or
    // counted as dropped: per service, sent + dropped = calls + lines,
    // twice in a row (the lines reach the test a moment after the queue).
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut previous = Vec::new();
    let counts = loop {
        let lines = chain.line_counts();
        let expositions = chain.expositions();
        let calls = prometheus_calls(&expositions);
        let counts: Vec<(String, f64, usize, f64, f64)> = expositions
            .iter()
            .map(|(s, text)| {
                let (sent, dropped) = sink_counts(text, observe_runtime::otlp::SINK);
                (s.clone(), calls[s].values().sum(), lines[s], sent, dropped)
            })
            .collect();
        let settled = counts.iter().all(|(_, c, l, s, d)| s + d == c + *l as f64);
        if settled && counts == previous {
            break counts;
        }
        assert!(
            Instant::now() < deadline,
            "items neither sent nor counted as dropped: (service, calls, lines, sent, dropped) {counts:?}"
        );
        previous = counts;
        std::thread::sleep(Duration::from_millis(200));
    };
    let sent: f64 = counts.iter().map(|c| c.3).sum();
    let dropped: f64 = counts.iter().map(|c| c.4).sum();
    let total_calls: f64 = counts.iter().map(|c| c.1).sum();
    let total_lines: usize = counts.iter().map(|c| c.2).sum();
    // What has reached the topics so far, until it is all that was sent.
    let deadline = Instant::now() + crate::pipeline::DELIVERY;
    let (spans, records) = loop {
        let spans: Vec<Span> = pipeline
            .spans_until("", |_| true)
            .into_iter()
            .filter(ours)
            .collect();
        let records: Vec<LogRecord> = pipeline
            .log_records_until("", |_| true)
            .into_iter()
            .filter(|r| ours_record(r))
            .collect();
        if (spans.len() + records.len()) as f64 >= sent || Instant::now() > deadline {
            break (spans, records);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let ids: BTreeSet<&str> = spans.iter().map(|s| s.span_id.as_str()).collect();
    assert_eq!(ids.len(), spans.len(), "a span arrived twice");
    assert_eq!(
        (spans.len() + records.len()) as f64,
        sent,
        "every span and record sent reached the topics (none was in the collector when it died)"
    );
    // After the restart new spans arrive: every request of the last phase
    // is a whole trace.
    let per_trace = expected_calls("none").len();
    for n in 30..45 {
        let cid = format!("down-{run}-{}", n * 4);
        let of_request = spans
            .iter()
            .filter(|s| s.attributes.get("correlation_id") == Some(&json!(cid)))
            .count();
        assert_eq!(of_request, per_trace, "{cid} after the restart");
    }

    // The calls did not wait for the collector. The bounds leave room for
    // a loaded machine's stalls; a call waiting out an exchange would take
    // its whole timeout (10 s), far past them.
    let (m_up, m_down, m_after) = (median(&up), median(&down), median(&after));
    let slowest_down = down.iter().max().copied().unwrap_or_default();
    assert!(
        m_down <= m_up * 3 + Duration::from_millis(200),
        "requests while the collector was down took {m_down:?} (median) against {m_up:?} before"
    );
    assert!(
        slowest_down < Duration::from_secs(3),
        "a request while the collector was down took {slowest_down:?}"
    );
    chain.stop();
    eprintln!(
        "otlp_e2e: collector down {} ms; request latency median up {m_up:?}, down {m_down:?} (slowest {slowest_down:?}), after restart {m_after:?}; {total_calls} spans and {total_lines} log records: {sent} sent and in Kafka, {dropped} dropped",
        down_for.as_millis()
    );
}

/// What the `drop` role reports on its last line.
fn run_dropper(endpoint: &str, flush: Duration, calls: u32) -> Value {
    let args = [
        "--role".to_owned(),
        "drop".to_owned(),
        endpoint.to_owned(),
        flush.as_millis().to_string(),
        calls.to_string(),
    ];
    let process = ChildProcess::spawn("dropper", &args);
    let (lines, ok) = process.finish(Duration::from_secs(30));
    assert!(ok, "the dropper failed: {:?}", lines.last());
    let report = lines
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("DROPPED "))
        .unwrap_or_else(|| panic!("no report: {:?}", lines.last()));
    let mut report: Value = serde_json::from_str(report).expect("the report is JSON");
    report["json_lines"] = json!(lines.len() - 1);
    report
}

pub(crate) fn dropping_the_guard_with_the_collector_down_returns_within_the_flush_timeout() {
    let flush = Duration::from_millis(1000);
    let calls = 300;
    // Nothing listening; then a collector that takes connections and never
    // answers.
    let refused = format!("http://127.0.0.1:{}", crate::pipeline::free_port());
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
    let silent_url = format!("http://{}", silent.local_addr().expect("addr"));
    let stop = Arc::new(AtomicBool::new(false));
    let holder = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut held = Vec::new();
            let _ = silent.set_nonblocking(true);
            while !stop.load(Ordering::Relaxed) {
                match silent.accept() {
                    Ok((conn, _)) => held.push(conn),
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        })
    };
    for (what, endpoint) in [("refused", refused), ("silent", silent_url)] {
        let r = run_dropper(&endpoint, flush, calls);
        let took = Duration::from_millis(r["drop_ms"].as_u64().unwrap_or(u64::MAX));
        eprintln!("otlp_e2e: collector {what}: {r}");
        // Slack for a loaded machine only: a drop that waited on the
        // silent collector would take the exchange's timeout (10 s).
        assert!(
            took <= flush + Duration::from_millis(1500),
            "collector {what}: dropping the guard took {took:?}, the flush timeout is {flush:?}"
        );
        let f = |k: &str| r[k].as_f64().unwrap_or(f64::NAN);
        assert_eq!(f("calls"), f64::from(calls), "{r}");
        // One queue holds a span per call and a record per line.
        assert_eq!(
            f("sent") + f("dropped"),
            f("calls") + f("json_lines"),
            "collector {what}: spans and log records do not add up: {r}"
        );
        assert_eq!(f("sent"), 0.0, "{r}");
        assert!(
            f("slowest_call_us") < 500_000.0,
            "collector {what}: a call took {} µs",
            f("slowest_call_us")
        );
    }
    stop.store(true, Ordering::Relaxed);
    let _ = holder.join();
}

#[observe::monitor_performance("dropper.work", context(i = i))]
fn dropper_work(i: u32) -> Result<u32, std::fmt::Error> {
    if i % 10 == 0 {
        return Err(std::fmt::Error);
    }
    Ok(i)
}

/// `--role drop ENDPOINT FLUSH_MS CALLS`: makes `CALLS` monitored calls,
/// drops the guard and prints, after its JSON lines, `DROPPED {json}`
/// with how long the drop took and the exporter's counts.
pub(crate) fn run_drop_role(args: &[String]) -> std::process::ExitCode {
    let [endpoint, flush_ms, calls] = args else {
        eprintln!("otlp_e2e drop: expected ENDPOINT FLUSH_MS CALLS");
        return std::process::ExitCode::FAILURE;
    };
    let flush = Duration::from_millis(flush_ms.parse().unwrap_or(1000));
    let calls: u32 = calls.parse().unwrap_or(100);
    let config = observe_runtime::otlp::OtlpConfig::new(endpoint.clone())
        .metric_export_interval(Duration::from_millis(500));
    let guard = match observe::Observe::builder("dropper")
        .flush_timeout(flush)
        .otlp_config(config)
        .stdout()
        .install()
    {
        Ok(g) => g,
        Err(e) => {
            eprintln!("otlp_e2e drop: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let Some(handle) = guard.prometheus_handle().cloned() else {
        eprintln!("otlp_e2e drop: prometheus is off");
        return std::process::ExitCode::FAILURE;
    };
    let mut slowest = Duration::ZERO;
    for i in 0..calls {
        let t = Instant::now();
        let _ = dropper_work(i);
        slowest = slowest.max(t.elapsed());
        if i % 100 == 99 {
            // Time for the exporters to meet the collector.
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let calls_counted: f64 = samples(&handle.render(), "operation_calls_total")
        .iter()
        .map(|(_, v)| v)
        .sum();
    let dropping = Instant::now();
    drop(guard);
    let took = dropping.elapsed();
    let text = handle.render();
    let (sent, dropped) = sink_counts(&text, observe_runtime::otlp::SINK);
    println!(
        "DROPPED {}",
        json!({
            "drop_ms": took.as_millis() as u64,
            "calls": calls_counted,
            "slowest_call_us": slowest.as_micros() as u64,
            "sent": sent,
            "dropped": dropped,
        })
    );
    std::process::ExitCode::SUCCESS
}

pub(crate) fn demo_trace_id_from_a_json_line_finds_its_spans(pipeline: &Pipeline) {
    let args = ha_ingestor::Args::parse_from([
        "ha_ingestor",
        "--duration",
        "3",
        "--events-per-sec",
        "10",
        "--otlp",
        &pipeline.otlp_endpoint(),
        "--quiet",
    ]);
    let report = ha_ingestor::run_pipeline(&args).expect("the demo runs with --otlp");
    let line = report
        .lines
        .iter()
        .find(|l| {
            l["performance"]["operation"] == "generator.send_event"
                && l["performance"]["status"] == "success"
        })
        .expect("an accepted event's line");
    let trace = str_of(line, "trace_id").to_owned();
    let cid = str_of(line, "correlation_id").to_owned();
    let pipeline_services = [
        "generator",
        "websocket-ingestion",
        "enrichment-pipeline",
        "weather-api",
        "data-retention",
    ];
    let spans: Vec<Span> = pipeline
        .spans_until(
            &format!("the spans of trace {trace} in every service"),
            |s| {
                let seen: BTreeSet<&str> = s
                    .iter()
                    .filter(|s| s.trace_id == trace)
                    .map(service_of)
                    .collect();
                pipeline_services.iter().all(|p| seen.contains(p))
            },
        )
        .into_iter()
        .filter(|s| s.trace_id == trace)
        .collect();
    let by_id: BTreeMap<&str, &Span> = spans.iter().map(|s| (s.span_id.as_str(), s)).collect();

    let mut evidence = format!(
        "otlp_e2e: the demo's JSON line\n  {}\nhas trace_id {trace}; its spans in Kafka (topic otlp_traces, via rotel):\n",
        serde_json::to_string(line).unwrap_or_default()
    );
    evidence.push_str(&show_trace(spans.iter()));
    eprint!("{evidence}");

    // One root, the generator's call of the line; every other span's
    // parent is in the trace; every span carries the event's ID.
    let roots: Vec<&Span> = spans
        .iter()
        .filter(|s| s.parent_span_id.is_none())
        .collect();
    assert_eq!(roots.len(), 1, "{evidence}");
    assert_eq!(roots[0].name, "generator.send_event");
    assert_eq!(roots[0].span_id, str_of(line, "span_id"));
    for s in &spans {
        if let Some(p) = &s.parent_span_id {
            let parent = by_id.get(p.as_str()).unwrap_or_else(|| {
                panic!("{}'s parent {p} is not in the trace\n{evidence}", s.name)
            });
            if service_of(parent) != service_of(s) {
                assert_eq!(s.kind, SERVER, "{s:#?}");
            }
        }
        assert_eq!(s.attributes["correlation_id"], cid.as_str(), "{s:#?}");
    }
    // The trace's lines of every service are log records of the trace.
    let of_trace: Vec<&Value> = report
        .lines
        .iter()
        .filter(|l| l["trace_id"] == trace.as_str())
        .collect();
    assert!(of_trace.len() >= pipeline_services.len(), "{of_trace:#?}");
    let records = pipeline.log_records_until(
        &format!("{} log records of trace {trace}", of_trace.len()),
        |r| {
            r.iter()
                .filter(|r| r.trace_id.as_deref() == Some(trace.as_str()))
                .count()
                >= of_trace.len()
        },
    );
    for l in &of_trace {
        assert!(
            records
                .iter()
                .any(|r| r.trace_id.as_deref() == Some(trace.as_str())
                    && r.span_id.as_deref() == l["span_id"].as_str()
                    && r.body == l["message"]),
            "no log record for {l}"
        );
    }
    // And the metrics: the generator's last export counts every event.
    let sent = report
        .lines
        .iter()
        .filter(|l| l["performance"]["operation"] == "generator.send_event")
        .count() as f64;
    pipeline.metric_points_until(
        &format!("generator.send_event counted {sent} times over OTLP"),
        |points| {
            let calls: f64 = latest_points(points, "generator", "operation_calls")
                .iter()
                .filter(|(k, _)| k.contains("operation=generator.send_event"))
                .map(|(_, v)| v)
                .sum();
            calls == sent
        },
    );
}
