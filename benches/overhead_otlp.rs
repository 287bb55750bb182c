//! What a call costs when its span, its log record and its metrics go out
//! over OTLP/HTTP to a local collector, beside two rows of the same run:
//!
//! - `observe/otlp/{sync,async}`: `#[monitor_performance]` with observe's
//!   OTLP exporter pointed at the drain, logging at `INFO` (each call's line
//!   becomes a log record) and metrics on;
//! - `observe/full_json_queued/{sync,async}`: the same setup as
//!   `overhead_observe_full`, the JSON line queued to the TCP sink;
//! - `tracing_otel/{sync,async}`: `#[tracing::instrument]` with
//!   tracing-opentelemetry, the SDK's batch span processor (its own
//!   thread, no async runtime) and an exporter that encodes each batch with
//!   opentelemetry-proto and POSTs it to the same kind of drain.
//!
//! Each setup installs process-wide state (a global subscriber, a global
//! recorder), so the binary runs each in a child process of its own. The
//! machines this runs on change speed by up to 2x from one minute to the
//! next, so one child per setup would compare whatever speeds each child
//! happened to get: the setups run in interleaved rounds instead
//! (`OVERHEAD_OTLP_ROUNDS`, default 5; each round starts with another
//! setup). Each row is the median of its rounds' criterion medians, and
//! each target is judged on the median of the ratios taken within each
//! round. Rounds, medians and ratios are printed, and go to
//! `$CARGO_TARGET_DIR/observe-extra/overhead_otlp.json` for `bench_report`.

mod common;

use std::collections::BTreeMap;
use std::hint::black_box;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use common::{observed, observed_async, run, traced, traced_async};
use criterion::Criterion;
use observe::Observe;
use observe::sink::TcpSink;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use prost::Message as _;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt as _;

/// Names the setup a child process runs.
const ROW_VAR: &str = "OVERHEAD_OTLP_SETUP";

/// A local OTLP/HTTP collector: reads each request whole (by its
/// `Content-Length`) and answers `200 OK` with an empty protobuf body,
/// counting requests and body bytes.
struct OtlpDrain {
    addr: SocketAddr,
    requests: Arc<AtomicU64>,
    bytes: Arc<AtomicU64>,
}

impl OtlpDrain {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind drain");
        let addr = listener.local_addr().expect("addr");
        let requests = Arc::new(AtomicU64::new(0));
        let bytes = Arc::new(AtomicU64::new(0));
        let (r, b) = (Arc::clone(&requests), Arc::clone(&bytes));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (r, b) = (Arc::clone(&r), Arc::clone(&b));
                std::thread::spawn(move || serve(stream, &r, &b));
            }
        });
        Self {
            addr,
            requests,
            bytes,
        }
    }

    fn report(&self) {
        println!(
            "drain: {} requests, {} body bytes",
            self.requests.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed)
        );
    }
}

/// Answers the requests of one kept-alive connection until it closes.
fn serve(stream: TcpStream, requests: &AtomicU64, bytes: &AtomicU64) {
    let Ok(mut out) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    while let Ok(Some((_, len))) = read_message(&mut reader) {
        requests.fetch_add(1, Ordering::Relaxed);
        bytes.fetch_add(len as u64, Ordering::Relaxed);
        let answer =
            "HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n";
        if out.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

/// Reads one HTTP/1.1 message whose body has a `Content-Length` and
/// discards the body: its first line and body length, or `None` at a clean
/// end of the connection.
fn read_message(r: &mut BufReader<TcpStream>) -> std::io::Result<Option<(String, usize)>> {
    let mut first = String::new();
    if r.read_line(&mut first)? == 0 {
        return Ok(None);
    }
    let mut len = 0;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                len = value
                    .trim()
                    .parse()
                    .map_err(|_| std::io::Error::other("bad Content-Length"))?;
            }
        }
    }
    std::io::copy(&mut r.by_ref().take(len as u64), &mut std::io::sink())?;
    Ok(Some((first.trim_end().to_owned(), len)))
}

/// The anchor's exporter: each batch encoded with opentelemetry-proto's
/// transform and POSTed on one kept-alive connection, as an OTLP/HTTP
/// exporter does, without the async HTTP client.
#[derive(Debug)]
struct DrainExporter {
    addr: SocketAddr,
    conn: Mutex<Option<BufReader<TcpStream>>>,
    resource: ResourceAttributesWithSchema,
    /// Spans delivered: the processor drops what its queue cannot hold.
    exported: Arc<AtomicU64>,
}

impl DrainExporter {
    fn new(addr: SocketAddr, exported: Arc<AtomicU64>) -> Self {
        Self {
            addr,
            conn: Mutex::new(None),
            resource: (&Resource::builder_empty().build()).into(),
            exported,
        }
    }

    fn post(&self, body: &[u8]) -> std::io::Result<()> {
        let mut conn = self.conn.lock().expect("exporter lock");
        if conn.is_none() {
            *conn = Some(BufReader::new(TcpStream::connect(self.addr)?));
        }
        let result = (|| {
            let r = conn.as_mut().expect("connected above");
            let head = format!(
                "POST /v1/traces HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-protobuf\r\nContent-Length: {}\r\n\r\n",
                self.addr,
                body.len()
            );
            let w = r.get_mut();
            w.write_all(head.as_bytes())?;
            w.write_all(body)?;
            match read_message(r)? {
                Some((status, _)) if status.starts_with("HTTP/1.1 200") => Ok(()),
                Some((status, _)) => Err(std::io::Error::other(status)),
                None => Err(std::io::ErrorKind::UnexpectedEof.into()),
            }
        })();
        if result.is_err() {
            *conn = None;
        }
        result
    }
}

impl SpanExporter for DrainExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let spans = batch.len() as u64;
        let request = ExportTraceServiceRequest {
            resource_spans: group_spans_by_resource_and_scope(batch, &self.resource),
        };
        self.post(&request.encode_to_vec())
            .map_err(|e| OTelSdkError::InternalFailure(e.to_string()))?;
        self.exported.fetch_add(spans, Ordering::Relaxed);
        Ok(())
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.resource = resource.into();
    }
}

/// `tracing_otel/{sync,async}`.
fn tracing_otel(c: &mut Criterion) {
    let drain = OtlpDrain::start();
    let exported = Arc::new(AtomicU64::new(0));
    let provider = SdkTracerProvider::builder()
        .with_resource(Resource::builder().with_service_name("bench").build())
        .with_batch_exporter(DrainExporter::new(drain.addr, Arc::clone(&exported)))
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("bench")));
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
    let mut g = c.benchmark_group("tracing_otel");
    // Counted to say how many spans the processor dropped: one uncontended
    // atomic add, noise beside a span.
    let calls = AtomicU64::new(0);
    g.bench_function("sync", |b| {
        b.iter(|| {
            calls.fetch_add(1, Ordering::Relaxed);
            traced(black_box(1))
        })
    });
    g.bench_function("async", |b| {
        b.iter(|| {
            calls.fetch_add(1, Ordering::Relaxed);
            run(traced_async(black_box(1)))
        })
    });
    g.finish();
    if let Err(e) = provider.shutdown() {
        println!("tracer provider shutdown: {e}");
    }
    println!(
        "spans exported: {} of {} calls (the batch processor drops what its queue cannot hold)",
        exported.load(Ordering::Relaxed),
        calls.load(Ordering::Relaxed)
    );
    drain.report();
}

/// `observe/full_json_queued/{sync,async}`, as in `overhead_observe_full`.
fn full_json_queued(c: &mut Criterion) {
    let sink = TcpSink::new(common::discard_drain().to_string()).expect("tcp sink");
    let _guard = Observe::builder("bench")
        .sink(sink)
        .level(LevelFilter::INFO)
        .install()
        .expect("install");
    common::observe_pair(c, "full_json_queued", observed, observed_async);
}

/// `observe/otlp/{sync,async}`: spans, log records (standing in for the
/// standard output default) and metrics to the drain, logging at `INFO`.
/// Metrics go out once a second, so their export is inside the
/// measurement too.
fn observe_otlp(c: &mut Criterion) {
    let drain = OtlpDrain::start();
    let config = observe_runtime::otlp::OtlpConfig::new(format!("http://{}", drain.addr))
        .metric_export_interval(Duration::from_secs(1));
    let guard = Observe::builder("bench")
        .otlp_config(config)
        .level(LevelFilter::INFO)
        .install()
        .expect("install");
    let started = std::time::Instant::now();
    common::observe_pair(c, "otlp", observed, observed_async);
    // What the worker delivered while the callers ran flat out: the
    // counters its batches have published so far.
    let text = guard.render().unwrap_or_default();
    let count = |family: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with(family) && l.contains("sink=\"otlp\""))
            .find_map(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or(0.0)
    };
    let (sent, dropped) = (
        count("log_lines_sent_total"),
        count("log_lines_dropped_total"),
    );
    let secs = started.elapsed().as_secs_f64();
    println!(
        "otlp worker: {sent} spans and log records sent, {dropped} dropped (queue full) in {secs:.1} s: {:.0} k items/s delivered",
        sent / secs / 1e3
    );
    drop(guard);
    drain.report();
}

/// Benches the rows of one setup.
type Setup = fn(&mut Criterion);

/// The setups, in the order they run: (name, bench).
const SETUPS: &[(&str, Setup)] = &[
    ("tracing_otel", tracing_otel),
    ("full_json_queued", full_json_queued),
    ("otlp", observe_otlp),
];

/// Where criterion writes its estimates, as criterion finds it (short of
/// asking `cargo metadata`).
fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    std::env::var_os("CARGO_TARGET_DIR")
        .filter(|d| !d.is_empty())
        .map_or_else(|| PathBuf::from("target"), PathBuf::from)
        .join("criterion")
}

/// The median of `id` (`group/function`) in ns, if criterion wrote it
/// after `since`.
fn median(id: &str, since: SystemTime) -> Option<f64> {
    let (group, function) = id.split_once('/')?;
    let path = criterion_dir()
        .join(group)
        .join(function.replace('/', "_"))
        .join("new")
        .join("estimates.json");
    if std::fs::metadata(&path).ok()?.modified().ok()? < since {
        return None;
    }
    let estimates: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    estimates["median"]["point_estimate"].as_f64()
}

fn main() {
    if let Ok(name) = std::env::var(ROW_VAR) {
        let (_, bench) = SETUPS
            .iter()
            .find(|(n, _)| *n == name)
            .expect("a known setup");
        let mut c = common::criterion();
        bench(&mut c);
        c.final_summary();
        return;
    }
    let rounds: usize = std::env::var("OVERHEAD_OTLP_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .filter(|r| *r > 0)
        .unwrap_or(5);
    let exe = std::env::current_exe().expect("own path");
    // Row id -> its median in each round (`None`: not measured then).
    let mut seen: BTreeMap<String, Vec<Option<f64>>> = BTreeMap::new();
    for round in 0..rounds {
        for k in 0..SETUPS.len() {
            let (name, _) = SETUPS[(round + k) % SETUPS.len()];
            let since = SystemTime::now() - Duration::from_secs(1);
            let status = Command::new(&exe)
                .args(std::env::args_os().skip(1))
                .env(ROW_VAR, name)
                .status()
                .expect("run a setup");
            assert!(status.success(), "setup {name} failed: {status}");
            for mode in ["sync", "async"] {
                let id = match name {
                    "tracing_otel" => format!("tracing_otel/{mode}"),
                    setup => format!("observe/{setup}/{mode}"),
                };
                let each = seen.entry(id.clone()).or_insert_with(|| vec![None; rounds]);
                each[round] = median(&id, since);
            }
        }
    }
    let mut rows = Vec::new();
    println!("medians of each round, ns (the row's value is their median):");
    for (id, each) in &seen {
        let values: Vec<f64> = each.iter().flatten().copied().collect();
        let m = median_of(&values);
        println!("  {id:<32} {} -> {m:.0}", spelled(each, 0));
        rows.push(serde_json::json!({
            "id": format!("rounds/{id}"),
            "what": format!("median of {} interleaved rounds", values.len()),
            "value": m,
            "unit": "ns",
        }));
    }
    // Each round's setups run within a minute of each other, so a ratio
    // taken within a round compares like with like more often than one
    // of medians taken over all rounds; the target is judged on the
    // median of the rounds' ratios.
    println!("ratios of each round (the target is judged on their median):");
    for mode in ["sync", "async"] {
        let otlp = format!("observe/otlp/{mode}");
        for (anchor, limit) in [
            (format!("observe/full_json_queued/{mode}"), 1.5),
            (format!("tracing_otel/{mode}"), 0.2),
        ] {
            let (Some(a), Some(b)) = (seen.get(&otlp), seen.get(&anchor)) else {
                println!("  {otlp} / {anchor}: not measured in this run");
                continue;
            };
            let each: Vec<Option<f64>> =
                a.iter().zip(b).map(|(x, y)| Some((*x)? / (*y)?)).collect();
            let values: Vec<f64> = each.iter().flatten().copied().collect();
            let m = median_of(&values);
            let met = values.iter().filter(|r| **r <= limit).count();
            println!(
                "  {otlp} / {anchor}: {} -> {m:.2}x (target at most {limit}x: {}; {met} of {} rounds)",
                spelled(&each, 2),
                if m <= limit { "met" } else { "not met" },
                values.len(),
            );
            rows.push(serde_json::json!({
                "id": format!("round_ratio/{otlp}|{anchor}"),
                "what": format!(
                    "median of the ratios of {} interleaved rounds ({}); {met} met the target",
                    values.len(),
                    spelled(&each, 2)
                ),
                "value": m,
                "unit": "x",
            }));
        }
    }
    let path = common::write_results("overhead_otlp", rows);
    println!("results: {}", path.display());
}

/// Values with `decimals` digits after the point, `-` for a missing one.
fn spelled(values: &[Option<f64>], decimals: usize) -> String {
    values
        .iter()
        .map(|v| v.map_or_else(|| "-".into(), |v| format!("{v:.decimals$}")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The median of `values` (the mean of the middle two for an even count).
fn median_of(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}
