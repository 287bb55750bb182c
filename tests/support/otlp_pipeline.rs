//! A real OTLP pipeline for end-to-end tests: rotel (the OTLP/HTTP
//! collector, `.ci/services/rotel.sh`) exporting to tansu (a
//! Kafka-compatible broker, `.ci/services/tansu.sh`), and readers that take
//! the topics back as spans, log records and metric points.
//!
//! Both servers run on free loopback ports and are stopped by PID when the
//! [`Pipeline`] is dropped. Before the collector starts, a child process
//! (`kafka_topics.py follow`; kafka-python, installed on first use) creates
//! the topics and from then on hands over every message from offset 0 as
//! it arrives; the readers wait on what it has handed over, so a test sees
//! data about a second after sending it.
//!
//! # What rotel writes to Kafka
//!
//! With `--kafka-exporter-format json`, rotel 0.0.1-alpha10 writes one
//! Kafka message per batch it exports, to `otlp_traces`, `otlp_logs` and
//! `otlp_metrics`; requests that arrive within its batch timeout (200 ms)
//! share one message. A message is a JSON **array** of the batch's
//! `ResourceSpans` / `ResourceLogs` / `ResourceMetrics`, one per resource
//! of each request (not the `{"resourceSpans": [...]}` object of
//! OTLP/JSON), in proto3 JSON mapping with camelCase names and every field
//! present, e.g. for a span:
//!
//! ```json
//! [{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"svc"}}],
//!               "droppedAttributesCount":0},
//!   "scopeSpans":[{"scope":{"name":"observe","version":"","attributes":[],"droppedAttributesCount":0},
//!     "spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174",
//!               "traceState":"","parentSpanId":"0102030405060708","flags":0,"name":"op",
//!               "kind":1,"startTimeUnixNano":"1796436000000000000","endTimeUnixNano":"1796436000001000000",
//!               "attributes":[{"key":"n","value":{"intValue":"7"}},{"key":"b","value":{"boolValue":true}},
//!                             {"key":"d","value":{"doubleValue":1.5}}],
//!               "droppedAttributesCount":0,"events":[],"droppedEventsCount":0,"links":[],
//!               "droppedLinksCount":0,"status":{"message":"boom","code":2}}],
//!     "schemaUrl":""}],
//!   "schemaUrl":""}]
//! ```
//!
//! - `traceId`, `spanId`, `parentSpanId` are lowercase hex (32, 16, 16
//!   digits), as in OTLP/JSON, not base64; an absent parent is `""`.
//! - Timestamps (`*UnixNano`) and attributes' `intValue` are decimal
//!   strings, but a point's `asInt`, a histogram's `count` and
//!   `bucketCounts` are JSON numbers; `kind`, `status.code`,
//!   `severityNumber`, `aggregationTemporality` are numbers (enum values),
//!   not names. (The readers take either form everywhere.)
//! - Attribute values are `{"stringValue": s}`, `{"intValue": "n"}`,
//!   `{"boolValue": b}`, `{"doubleValue": x}`, `{"arrayValue": {"values": [..]}}`,
//!   `{"kvlistValue": {"values": [..]}}`, `{"bytesValue": base64}`.
//! - A resource, scope or status that was not sent is `null`.
//! - Log records: `timeUnixNano`, `observedTimeUnixNano`, `severityNumber`,
//!   `severityText`, `body` (an attribute value, `{"stringValue": ..}`),
//!   `attributes`, `flags`, `traceId`, `spanId` (hex, `""` when absent),
//!   `eventName`.
//! - Metrics: `{"name", "description", "unit", "metadata", "sum" | "gauge" |
//!   "histogram" | ...}`; a sum or gauge has `dataPoints` of `{"attributes",
//!   "startTimeUnixNano", "timeUnixNano", "exemplars", "flags", "asInt" |
//!   "asDouble"}`; a sum also `aggregationTemporality` (2 = cumulative) and
//!   `isMonotonic`. A histogram point has `count`, `sum`, `bucketCounts`,
//!   `explicitBounds`, `min`, `max` (`null` when not sent), e.g.
//!   `{"count":41,"sum":0.5,"bucketCounts":[40,1,0],"explicitBounds":[0.005,0.01],"min":null,...}`.
//!
//! Send protobuf (`application/x-protobuf`, as observe does): rotel's
//! OTLP/JSON *receiver* lost histograms and the `asInt` values written as
//! strings (as OTLP/JSON has them) in a hand test.

#[path = "service.rs"]
mod service;

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpStream, ToSocketAddrs as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde_json::Value;
#[allow(unused_imports)] // not every test crate starts other servers
pub(crate) use service::{Service, free_port};

/// The Kafka topics rotel's Kafka exporter writes to by default.
pub(crate) const TOPICS: [&str; 3] = ["otlp_traces", "otlp_logs", "otlp_metrics"];

/// How long a reader waits for what it expects: far more than the
/// pipeline needs (about a second from the POST), since a loaded machine only makes
/// the test slower, never wrong.
pub(crate) const DELIVERY: Duration = Duration::from_secs(30);

/// How long the topic reader may take to start: kafka-python may be
/// installed on first use.
const READER_START: Duration = Duration::from_secs(120);

/// rotel exporting to tansu, both running, and a reader of the topics.
#[derive(Debug)]
pub(crate) struct Pipeline {
    reader: Reader,
    collector: Service,
    broker: Service,
}

impl Pipeline {
    /// Starts the broker, creates the topics and starts reading them,
    /// then starts the collector exporting to them; `None` (the test is to
    /// return at once, skipped, with the reason on stderr) if rotel, tansu
    /// or kafka-python cannot be installed here. Under `CI` nothing is
    /// skipped.
    ///
    /// # Panics
    /// If a server does not start or the topics cannot be read.
    pub(crate) fn start_or_skip() -> Option<Self> {
        let started = Instant::now();
        let broker = Service::start_or_skip("tansu", &[])?;
        let reader = match Reader::start(&broker) {
            Ok(reader) => reader,
            Err(Topics::Missing(why)) if std::env::var_os("CI").is_none() => {
                skip_note(&format!(
                    "skipped: kafka-python is not installed and cannot be installed here ({why}); set CI=1 to make this a failure"
                ));
                return None;
            }
            Err(Topics::Missing(why) | Topics::Failed(why)) => {
                panic!("reading the topics of {}: {why}", broker.addr())
            }
        };
        let export = format!(
            "--exporter kafka --kafka-exporter-brokers {} --kafka-exporter-format json",
            broker.addr()
        );
        let grpc = free_port().to_string();
        let collector = Service::start_with_env_or_skip(
            "rotel",
            &[("ROTEL_EXPORT_ARGS", &export), ("GRPC_PORT", &grpc)],
            &[],
        )?;
        eprintln!(
            "otlp pipeline: tansu on {}, rotel on {}, ready in {} ms",
            broker.addr(),
            collector.addr(),
            started.elapsed().as_millis()
        );
        Some(Self {
            reader,
            collector,
            broker,
        })
    }

    /// The collector's OTLP/HTTP base URL, `http://127.0.0.1:PORT`: what
    /// an exporter is configured with (signals go to `/v1/traces`,
    /// `/v1/logs`, `/v1/metrics`).
    pub(crate) fn otlp_endpoint(&self) -> String {
        format!("http://{}", self.collector.addr())
    }

    /// The broker's `127.0.0.1:PORT`.
    #[allow(dead_code)] // for tests that read the topics with their own client
    pub(crate) fn broker(&self) -> String {
        self.broker.addr()
    }

    /// Kills the collector with SIGKILL, as a crash: what it held is lost,
    /// and its port refuses connections until
    /// [`restart_collector`](Self::restart_collector).
    pub(crate) fn kill_collector(&self) {
        let out = Command::new("bash")
            .arg(services_dir().join("rotel.sh"))
            .arg("kill")
            .arg(self.collector.dir())
            .output()
            .expect("run rotel.sh kill");
        assert!(
            out.status.success(),
            "rotel.sh kill: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Stops the collector gracefully (SIGTERM; it forwards what it holds
    /// first).
    #[allow(dead_code)] // the kill test needs the crash, not the shutdown
    pub(crate) fn stop_collector(&self) {
        self.collector.stop();
    }

    /// Starts the collector again on the same port, exporting to the same
    /// broker (whose topics keep what they held).
    ///
    /// # Panics
    /// If it does not start.
    pub(crate) fn restart_collector(&self) {
        self.collector.launch(&[]);
    }

    /// The end of the collector's own log (its debug exporter prints every
    /// item it receives) and of the topic reader's, for a failing test's
    /// message.
    pub(crate) fn diagnostics(&self) -> String {
        let tail = |path: PathBuf| {
            let log = std::fs::read_to_string(&path).unwrap_or_default();
            let lines: Vec<&str> = log.lines().rev().take(40).collect();
            let lines: Vec<&str> = lines.into_iter().rev().collect();
            format!("{} (tail):\n{}", path.display(), lines.join("\n"))
        };
        format!(
            "{}\n{}",
            tail(self.collector.dir().join("log")),
            tail(self.reader.log.clone())
        )
    }

    /// Every span on `otlp_traces` once there are at least `min`.
    ///
    /// # Panics
    /// If fewer than `min` arrived within [`DELIVERY`].
    #[allow(dead_code)] // not every test reads every signal
    pub(crate) fn spans(&self, min: usize) -> Vec<Span> {
        self.spans_until(&format!("at least {min} spans"), |s| s.len() >= min)
    }

    /// Every span on `otlp_traces` once `done` holds for them.
    ///
    /// # Panics
    /// If `done` does not hold within [`DELIVERY`].
    #[allow(dead_code)] // not every test reads every signal
    pub(crate) fn spans_until(&self, what: &str, done: impl Fn(&[Span]) -> bool) -> Vec<Span> {
        self.read_until("otlp_traces", what, parse_spans, done)
    }

    /// Every log record on `otlp_logs` once there are at least `min`.
    ///
    /// # Panics
    /// If fewer than `min` arrived within [`DELIVERY`].
    #[allow(dead_code)] // not every test reads every signal
    pub(crate) fn log_records(&self, min: usize) -> Vec<LogRecord> {
        self.log_records_until(&format!("at least {min} log records"), |l| l.len() >= min)
    }

    /// Every log record on `otlp_logs` once `done` holds for them.
    ///
    /// # Panics
    /// If `done` does not hold within [`DELIVERY`].
    #[allow(dead_code)] // not every test reads every signal
    pub(crate) fn log_records_until(
        &self,
        what: &str,
        done: impl Fn(&[LogRecord]) -> bool,
    ) -> Vec<LogRecord> {
        self.read_until("otlp_logs", what, parse_log_records, done)
    }

    /// Every metric point on `otlp_metrics` once there are at least `min`.
    ///
    /// # Panics
    /// If fewer than `min` arrived within [`DELIVERY`].
    #[allow(dead_code)] // not every test reads every signal
    pub(crate) fn metric_points(&self, min: usize) -> Vec<MetricPoint> {
        self.metric_points_until(&format!("at least {min} metric points"), |m| m.len() >= min)
    }

    /// Every metric point on `otlp_metrics` once `done` holds for them.
    ///
    /// # Panics
    /// If `done` does not hold within [`DELIVERY`].
    #[allow(dead_code)] // not every test reads every signal
    pub(crate) fn metric_points_until(
        &self,
        what: &str,
        done: impl Fn(&[MetricPoint]) -> bool,
    ) -> Vec<MetricPoint> {
        self.read_until("otlp_metrics", what, parse_metric_points, done)
    }

    /// The raw messages read from `topic` so far (each one JSON array, see
    /// the module documentation), waiting for none.
    #[allow(dead_code)] // for a test that wants the JSON itself
    pub(crate) fn messages(&self, topic: &str) -> Vec<Value> {
        self.reader
            .state()
            .messages
            .get(topic)
            .cloned()
            .unwrap_or_default()
    }

    fn read_until<T: std::fmt::Debug>(
        &self,
        topic: &str,
        what: &str,
        parse: fn(&Value) -> Vec<T>,
        done: impl Fn(&[T]) -> bool,
    ) -> Vec<T> {
        let started = Instant::now();
        let deadline = started + DELIVERY;
        let mut state = self.reader.state();
        loop {
            let items: Vec<T> = state
                .messages
                .get(topic)
                .into_iter()
                .flatten()
                .flat_map(parse)
                .collect();
            if done(&items) {
                return items;
            }
            let now = Instant::now();
            if now >= deadline || state.ended.is_some() {
                let ended = state.ended.clone().unwrap_or_default();
                drop(state);
                panic!(
                    "{topic}: not {what} after {:?}{ended}; read {} item(s): {items:#?}\n{}",
                    started.elapsed(),
                    items.len(),
                    self.diagnostics()
                );
            }
            state = self
                .reader
                .shared
                .1
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// `kafka_topics.py follow`, a child process printing every message of
/// the topics as it arrives, and the thread collecting them.
#[derive(Debug)]
struct Reader {
    child: Child,
    shared: Arc<(Mutex<Received>, Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// The reader's stderr.
    log: PathBuf,
}

/// What the reader has printed.
#[derive(Debug, Default)]
struct Received {
    ready: bool,
    /// Each topic's messages, in offset order.
    messages: BTreeMap<String, Vec<Value>>,
    /// Why the reader stopped reading, once it has.
    ended: Option<String>,
}

impl Reader {
    /// Creates the topics on `broker` and reads them from offset 0.
    fn start(broker: &Service) -> Result<Self, Topics> {
        let log = broker.dir().join("reader.log");
        let stderr = std::fs::File::create(&log)
            .map_err(|e| Topics::Failed(format!("{}: {e}", log.display())))?;
        let mut child = Command::new("python3")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/kafka_topics.py"))
            .arg("follow")
            .arg(broker.addr())
            .args(TOPICS)
            // Closed when this process ends, however it ends: the reader
            // then exits.
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .map_err(|e| Topics::Missing(format!("cannot run python3: {e}")))?;
        let stdout = child.stdout.take().expect("piped stdout");
        let shared = Arc::new((Mutex::new(Received::default()), Condvar::new()));
        let thread = {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || collect(stdout, &shared))
        };
        let mut reader = Self {
            child,
            shared,
            thread: Some(thread),
            log,
        };
        let deadline = Instant::now() + READER_START;
        let mut state = reader.state();
        while !state.ready && state.ended.is_none() && Instant::now() < deadline {
            state = reader
                .shared
                .1
                .wait_timeout(state, deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        let ready = state.ready;
        drop(state);
        if ready {
            return Ok(reader);
        }
        let _ = reader.child.kill();
        let code = reader.child.wait().ok().and_then(|s| s.code());
        let said = std::fs::read_to_string(&reader.log).unwrap_or_default();
        let said = format!("kafka_topics.py follow: {}", said.trim());
        // Exit code 3: kafka-python is missing and could not be installed.
        Err(if code == Some(3) {
            Topics::Missing(said)
        } else {
            Topics::Failed(said)
        })
    }

    fn state(&self) -> MutexGuard<'_, Received> {
        self.shared.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Reads the reader's lines (`ready`, then `TOPIC<TAB>JSON`) into `shared`.
fn collect(stdout: std::process::ChildStdout, shared: &(Mutex<Received>, Condvar)) {
    let mut ended = "the reader exited".to_owned();
    for line in BufReader::new(stdout).lines() {
        let line = match line {
            Ok(line) => line,
            Err(e) => {
                ended = format!("reading the reader's output: {e}");
                break;
            }
        };
        let mut state = shared.0.lock().unwrap_or_else(PoisonError::into_inner);
        match line.split_once('\t') {
            None if line == "ready" => state.ready = true,
            Some((topic, json)) => {
                let value = serde_json::from_str(json)
                    .unwrap_or_else(|e| Value::String(format!("not JSON ({e}): {json}")));
                state
                    .messages
                    .entry(topic.to_owned())
                    .or_default()
                    .push(value);
            }
            None => {}
        }
        drop(state);
        shared.1.notify_all();
    }
    let mut state = shared.0.lock().unwrap_or_else(PoisonError::into_inner);
    state.ended = Some(format!(" ({ended})"));
    drop(state);
    shared.1.notify_all();
}

impl Reader {
    fn stop(&mut self) {
        // Our own child, by its handle.
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        self.reader.stop();
        // Each server takes about two seconds to stop: side by side, a test
        // waits for that once. (The services' own drops find them stopped.)
        std::thread::scope(|s| {
            s.spawn(|| self.collector.stop());
            self.broker.stop();
        });
    }
}

/// One span as rotel forwarded it.
#[derive(Debug, Clone, PartialEq)]
#[allow(dead_code)] // tests read the fields they check
pub(crate) struct Span {
    /// 32 lowercase hex digits.
    pub(crate) trace_id: String,
    /// 16 lowercase hex digits.
    pub(crate) span_id: String,
    /// 16 lowercase hex digits; `None` for a root span.
    pub(crate) parent_span_id: Option<String>,
    pub(crate) name: String,
    /// The SpanKind value (1 internal, 2 server, 3 client, ...).
    pub(crate) kind: i64,
    /// The status code (0 unset, 1 ok, 2 error).
    pub(crate) status_code: i64,
    pub(crate) status_message: String,
    pub(crate) start_unix_nanos: u64,
    pub(crate) end_unix_nanos: u64,
    /// The span's attributes, values unwrapped (see [`attribute_value`]).
    pub(crate) attributes: BTreeMap<String, Value>,
    /// The resource's attributes (`service.name`, ...).
    pub(crate) resource: BTreeMap<String, Value>,
}

/// One log record as rotel forwarded it.
#[derive(Debug, Clone, PartialEq)]
#[allow(dead_code)] // tests read the fields they check
pub(crate) struct LogRecord {
    /// The body, unwrapped (a string body is a JSON string).
    pub(crate) body: Value,
    /// 32 lowercase hex digits; `None` when the record has none.
    pub(crate) trace_id: Option<String>,
    /// 16 lowercase hex digits; `None` when the record has none.
    pub(crate) span_id: Option<String>,
    pub(crate) severity_number: i64,
    pub(crate) severity_text: String,
    pub(crate) time_unix_nanos: u64,
    pub(crate) attributes: BTreeMap<String, Value>,
    pub(crate) resource: BTreeMap<String, Value>,
}

/// One data point of a metric as rotel forwarded it.
#[derive(Debug, Clone, PartialEq)]
#[allow(dead_code)] // tests read the fields they check
pub(crate) struct MetricPoint {
    /// The metric's name.
    pub(crate) name: String,
    /// `"sum"`, `"gauge"`, `"histogram"`, ... (the metric's data field).
    pub(crate) kind: String,
    /// The point's attributes, values unwrapped.
    pub(crate) attributes: BTreeMap<String, Value>,
    /// A sum's or gauge's value (`asInt` or `asDouble`).
    pub(crate) value: Option<f64>,
    /// A histogram's count.
    pub(crate) count: Option<u64>,
    /// A histogram's sum.
    pub(crate) sum: Option<f64>,
    /// A histogram's bucket counts (one more than the bounds).
    pub(crate) bucket_counts: Vec<u64>,
    /// A histogram's explicit bounds.
    pub(crate) explicit_bounds: Vec<f64>,
    /// A sum's or histogram's temporality (2 = cumulative).
    pub(crate) temporality: Option<i64>,
    /// A sum's `isMonotonic`.
    pub(crate) monotonic: Option<bool>,
    pub(crate) time_unix_nanos: u64,
    pub(crate) resource: BTreeMap<String, Value>,
}

/// The `ResourceX` entries of one message: rotel writes a JSON array, but
/// the OTLP/JSON object `{"resourceSpans": [...]}` is taken too.
fn resources<'a>(message: &'a Value, key: &str) -> &'a [Value] {
    match message {
        Value::Array(entries) => entries,
        Value::Object(o) => o
            .get(key)
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice),
        _ => &[],
    }
}

/// `(resource attributes, item)` for each item under
/// `resource.{scopes}[].{items}[]`.
fn items<'a>(
    message: &'a Value,
    resource_key: &str,
    scopes: &str,
    list: &str,
) -> Vec<(BTreeMap<String, Value>, &'a Value)> {
    let mut out = Vec::new();
    for r in resources(message, resource_key) {
        let resource = attributes(&r["resource"]["attributes"]);
        for scope in r[scopes].as_array().into_iter().flatten() {
            for item in scope[list].as_array().into_iter().flatten() {
                out.push((resource.clone(), item));
            }
        }
    }
    out
}

fn parse_spans(message: &Value) -> Vec<Span> {
    items(message, "resourceSpans", "scopeSpans", "spans")
        .into_iter()
        .map(|(resource, s)| Span {
            trace_id: hex_id(&s["traceId"]).unwrap_or_default(),
            span_id: hex_id(&s["spanId"]).unwrap_or_default(),
            parent_span_id: hex_id(&s["parentSpanId"]),
            name: text(&s["name"]),
            kind: int(&s["kind"]).unwrap_or_default(),
            status_code: int(&s["status"]["code"]).unwrap_or_default(),
            status_message: text(&s["status"]["message"]),
            start_unix_nanos: uint(&s["startTimeUnixNano"]).unwrap_or_default(),
            end_unix_nanos: uint(&s["endTimeUnixNano"]).unwrap_or_default(),
            attributes: attributes(&s["attributes"]),
            resource,
        })
        .collect()
}

fn parse_log_records(message: &Value) -> Vec<LogRecord> {
    items(message, "resourceLogs", "scopeLogs", "logRecords")
        .into_iter()
        .map(|(resource, l)| LogRecord {
            body: attribute_value(&l["body"]),
            trace_id: hex_id(&l["traceId"]),
            span_id: hex_id(&l["spanId"]),
            severity_number: int(&l["severityNumber"]).unwrap_or_default(),
            severity_text: text(&l["severityText"]),
            time_unix_nanos: uint(&l["timeUnixNano"]).unwrap_or_default(),
            attributes: attributes(&l["attributes"]),
            resource,
        })
        .collect()
}

fn parse_metric_points(message: &Value) -> Vec<MetricPoint> {
    let mut out = Vec::new();
    for (resource, metric) in items(message, "resourceMetrics", "scopeMetrics", "metrics") {
        let Some(obj) = metric.as_object() else {
            continue;
        };
        for kind in [
            "sum",
            "gauge",
            "histogram",
            "exponentialHistogram",
            "summary",
        ] {
            let Some(data) = obj.get(kind) else { continue };
            for p in data["dataPoints"].as_array().into_iter().flatten() {
                let value = match (&p["asInt"], &p["asDouble"]) {
                    (Value::Null, d) => float(d),
                    (i, _) => int(i).map(|i| i as f64),
                };
                out.push(MetricPoint {
                    name: text(&metric["name"]),
                    kind: kind.to_owned(),
                    attributes: attributes(&p["attributes"]),
                    value,
                    count: uint(&p["count"]),
                    sum: float(&p["sum"]),
                    bucket_counts: p["bucketCounts"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(uint)
                        .collect(),
                    explicit_bounds: p["explicitBounds"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(float)
                        .collect(),
                    temporality: int(&data["aggregationTemporality"]),
                    monotonic: data["isMonotonic"].as_bool(),
                    time_unix_nanos: uint(&p["timeUnixNano"]).unwrap_or_default(),
                    resource: resource.clone(),
                });
            }
        }
    }
    out
}

/// `[{"key": k, "value": {"stringValue": v}}, ...]` as `{k: v}`.
fn attributes(list: &Value) -> BTreeMap<String, Value> {
    list.as_array()
        .into_iter()
        .flatten()
        .map(|kv| (text(&kv["key"]), attribute_value(&kv["value"])))
        .collect()
}

/// An OTLP `AnyValue` as plain JSON: `{"stringValue": "x"}` is `"x"`,
/// `{"intValue": "7"}` is `7`, `{"boolValue": true}` is `true`,
/// `{"doubleValue": 1.5}` is `1.5`, an array or key-value list is a JSON
/// array or object of the same; anything else (bytes, empty) as it came.
pub(crate) fn attribute_value(v: &Value) -> Value {
    let Some(obj) = v.as_object() else {
        return v.clone();
    };
    if let Some(s) = obj.get("stringValue") {
        return s.clone();
    }
    if let Some(i) = obj.get("intValue") {
        return int(i).map_or_else(|| i.clone(), Value::from);
    }
    if let Some(b) = obj.get("boolValue") {
        return b.clone();
    }
    if let Some(d) = obj.get("doubleValue") {
        return d.clone();
    }
    if let Some(a) = obj.get("arrayValue") {
        return Value::Array(
            a["values"]
                .as_array()
                .into_iter()
                .flatten()
                .map(attribute_value)
                .collect(),
        );
    }
    if let Some(kv) = obj.get("kvlistValue") {
        return Value::Object(attributes(&kv["values"]).into_iter().collect());
    }
    v.clone()
}

/// A hex ID as rotel writes it; `None` for `""`, all zeros or absent.
fn hex_id(v: &Value) -> Option<String> {
    let s = v.as_str()?.to_ascii_lowercase();
    (!s.is_empty() && s.bytes().any(|b| b != b'0')).then_some(s)
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

/// A 64-bit integer, written as a decimal string or a number.
fn int(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| v.as_str()?.parse().ok())
}

fn uint(v: &Value) -> Option<u64> {
    v.as_u64().or_else(|| v.as_str()?.parse().ok())
}

fn float(v: &Value) -> Option<f64> {
    v.as_f64().or_else(|| v.as_str()?.parse().ok())
}

/// The reply to an HTTP request.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
}

/// POSTs an OTLP protobuf `body` to `endpoint` + `path` (e.g.
/// `"/v1/traces"`) over a plain HTTP/1.1 connection; the error of the
/// connection when the collector is not there.
pub(crate) fn post_protobuf(endpoint: &str, path: &str, body: &[u8]) -> std::io::Result<Reply> {
    let authority = endpoint.strip_prefix("http://").unwrap_or(endpoint);
    let authority = authority.trim_end_matches('/');
    let addr = authority
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::other(format!("{authority} resolves to nothing")))?;
    let mut conn = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    conn.set_write_timeout(Some(Duration::from_secs(10)))?;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/x-protobuf\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes())?;
    conn.write_all(body)?;
    let mut reply = Vec::new();
    conn.read_to_end(&mut reply)?;
    let split = reply
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no end of HTTP head"))?;
    let head = String::from_utf8_lossy(&reply[..split]);
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no HTTP status in {head:?}")))?;
    Ok(Reply {
        status,
        body: reply[split + 4..].to_vec(),
    })
}

/// Why the topic reader did not start.
enum Topics {
    /// kafka-python is missing and could not be installed.
    Missing(String),
    /// Anything else.
    Failed(String),
}

fn services_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/services")
}

/// Says why a test is skipped, past the test harness's capture.
fn skip_note(note: &str) {
    match std::fs::OpenOptions::new().append(true).open("/dev/stderr") {
        Ok(mut stderr) => {
            let _ = writeln!(stderr, "{note}");
        }
        Err(_) => eprintln!("{note}"),
    }
}
