//! "HA Ingestor": a Home Assistant event pipeline of seven monitored
//! services (six pipeline services plus the generator), each its own process with
//! its own service name, on 127.0.0.1.
//!
//! ```text
//! generator --POST /events--> websocket-ingestion --POST /enrich--> enrichment-pipeline
//!                                                                     |-- GET /weather/{area} --> weather-api
//!                                                                     `-- POST /store --> data-retention (file, retention limit)
//! admin-api: GET /health (asks every service) and GET /metrics (every service's metrics, merged)
//! health-dashboard: GET / (admin-api's /health, refreshed every second)
//! ```
//!
//! ```text
//! cargo run --example ha_ingestor                           # 10 s, nothing external needed
//! cargo run --example ha_ingestor -- --duration 30 --events-per-sec 50 \
//!     --logstash 127.0.0.1:5000 --elasticsearch http://127.0.0.1:9200 \
//!     --influxdb http://127.0.0.1:8086 --prometheus 127.0.0.1:9464 --log-file /tmp/ha.log \
//!     --otlp http://127.0.0.1:4318
//! ```
//!
//! The example starts each service as a child process of itself
//! (`--role NAME`), relays their JSON lines to its standard output, and
//! stops them (by closing their standard input) at the end. The generator
//! plays Home Assistant's websocket API: `state_changed` events with
//! `entity_id`, `old_state` and `new_state`; one in five is malformed on
//! purpose (a bad `entity_id` or a missing `new_state`) and rejected by
//! websocket-ingestion, and the weather-api has no data for the garage. The correlation ID the generator's call starts
//! travels in `X-Correlation-ID` / `traceparent` over every hop, so one
//! event's lines in all services share it. At the end, the summary (on
//! standard error) is a per-operation table from the merged histograms and
//! one request's lines across all services, found by its correlation ID.

// `ALL` is for the rule printer, `slo_rules`.
#[allow(dead_code)]
#[path = "support/objectives.rs"]
mod objectives;
// The tests that include this file load `ports` through their support
// module too.
#[allow(clippy::duplicate_mod)]
#[path = "../tests/support/ports.rs"]
mod ports;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpListener as StdListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use clap::Parser;
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use observe::correlation::tower::CorrelationLayer;
use observe::metrics::MetricsHandle;
use observe::metrics::influxdb::InfluxConfig;
use observe::{Observe, monitor_performance};
use observe_runtime::otlp::OtlpConfig;

/// The services, in start order (the generator last).
const SERVICES: [&str; 7] = [
    "weather-api",
    "data-retention",
    "enrichment-pipeline",
    "websocket-ingestion",
    "admin-api",
    "health-dashboard",
    "generator",
];

/// What the generator prints when it has sent its last event.
const FINISHED: &str = "generator finished";

/// Command-line flags.
#[derive(Debug, Clone, Parser)]
#[command(about = "HA Ingestor: a monitored six-service pipeline on 127.0.0.1")]
pub struct Args {
    /// How long the generator sends events, in seconds.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Events the generator sends per second.
    #[arg(long, default_value_t = 20)]
    events_per_sec: u32,
    /// Ship every service's lines to a Logstash `tcp` input (json_lines) at HOST:PORT.
    #[arg(long, value_name = "HOST:PORT")]
    logstash: Option<String>,
    /// Index every service's lines in Elasticsearch/OpenSearch at URL.
    #[arg(long, value_name = "URL")]
    elasticsearch: Option<String>,
    /// Push every service's metrics to InfluxDB 1.x at URL.
    #[arg(long, value_name = "URL")]
    influxdb: Option<String>,
    /// Export every service's spans, log records and metrics to the OTLP/HTTP collector at URL.
    #[arg(long, value_name = "URL")]
    otlp: Option<String>,
    /// The InfluxDB database (with --influxdb).
    #[arg(long, default_value = "ha_ingestor")]
    influx_db: String,
    /// Serve admin-api (/metrics of all services, /health) on ADDR for a Prometheus to scrape.
    #[arg(long, value_name = "ADDR")]
    prometheus: Option<SocketAddr>,
    /// Also append every service's lines to this file.
    #[arg(long, value_name = "PATH")]
    log_file: Option<PathBuf>,
    /// Events data-retention keeps in its file.
    #[arg(long, default_value_t = 100)]
    retention_max_events: usize,
    /// Print neither the services' lines nor the summary.
    #[arg(long)]
    quiet: bool,
    /// Internal: run as this service (the example starts its children so).
    #[arg(long, hide = true)]
    role: Option<String>,
    /// Internal: NAME=PORT of every service.
    #[arg(long = "peer", hide = true)]
    peers: Vec<String>,
    /// Internal: where data-retention writes.
    #[arg(long, hide = true)]
    data_dir: Option<PathBuf>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// Runs the pipeline, or one of its services with `--role NAME`.
pub fn main() -> ExitCode {
    let args = Args::parse();
    let result = match args.role.clone() {
        Some(role) => run_service(&role, &args),
        None => run_pipeline(&args).map(|report| {
            if !args.quiet {
                eprint!("{}", report.summary());
            }
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ha_ingestor: {e}");
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------------------
// The orchestrator: starts the services, relays their lines, summarises.
// ---------------------------------------------------------------------------

/// What a run of the pipeline produced.
#[derive(Debug)]
pub struct Report {
    /// Every JSON line of every service, parsed, in the order relayed.
    pub lines: Vec<serde_json::Value>,
    /// The same lines as the services wrote them.
    pub raw: Vec<String>,
    /// admin-api's merged Prometheus exposition at the end of the run.
    pub exposition: String,
    /// The same in OpenMetrics, with exemplars, as Prometheus scrapes it.
    pub openmetrics: String,
    /// admin-api's `/health` answer at the end of the run.
    pub health: String,
    /// Wall time of the run.
    pub elapsed: Duration,
}

/// Lines relayed so far, and progress counters.
#[derive(Debug, Default)]
struct Relay {
    lines: Vec<serde_json::Value>,
    raw: Vec<String>,
    sent: u64,
    rejected: u64,
}

/// A child service; killed if still running when dropped.
struct ServiceProcess {
    name: &'static str,
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// A port for a service to listen on, none of `taken`: found free here
/// and bound by the service a moment later, so drawn from below the
/// ephemeral range (see `ports`).
fn free_port(taken: &[u16]) -> std::io::Result<u16> {
    let free = |port: u16| !taken.contains(&port) && StdListener::bind(("127.0.0.1", port)).is_ok();
    match ports::below_ephemeral(free) {
        Some(port) => Ok(port),
        None => Ok(StdListener::bind("127.0.0.1:0")?.local_addr()?.port()),
    }
}

/// Runs the whole pipeline: starts every service as a child process of
/// the current executable (`--role NAME`), relays their lines to standard
/// output, stops them when the generator is done, and returns what it saw.
///
/// # Errors
/// A service that does not start or exits early.
pub fn run_pipeline(args: &Args) -> Result<Report, BoxError> {
    let started = Instant::now();
    let mut ports = BTreeMap::new();
    for name in SERVICES {
        let port = match (name, args.prometheus) {
            ("admin-api", Some(addr)) => addr.port(),
            _ => free_port(&ports.values().copied().collect::<Vec<_>>())?,
        };
        ports.insert(name, port);
    }
    let admin_addr = match args.prometheus {
        Some(addr) => addr,
        None => SocketAddr::from(([127, 0, 0, 1], ports["admin-api"])),
    };
    let data_dir = std::env::temp_dir().join(format!("ha_ingestor-{}", std::process::id()));
    std::fs::create_dir_all(&data_dir)?;

    let relay = Arc::new(Mutex::new(Relay::default()));
    let (finished_tx, finished_rx) = mpsc::channel::<()>();
    let exe = std::env::current_exe()?;
    let mut children: Vec<ServiceProcess> = Vec::new();
    let mut relays = Vec::new();
    for name in SERVICES {
        let mut cmd = Command::new(&exe);
        cmd.args(["--role", name])
            .arg("--duration")
            .arg(args.duration.to_string())
            .arg("--events-per-sec")
            .arg(args.events_per_sec.to_string())
            .arg("--retention-max-events")
            .arg(args.retention_max_events.to_string())
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--influx-db")
            .arg(&args.influx_db);
        for (peer, port) in &ports {
            cmd.arg("--peer").arg(format!("{peer}={port}"));
        }
        if let Some(a) = &args.prometheus {
            cmd.arg("--prometheus").arg(a.to_string());
        }
        for (flag, value) in [
            ("--logstash", &args.logstash),
            ("--elasticsearch", &args.elasticsearch),
            ("--influxdb", &args.influxdb),
            ("--otlp", &args.otlp),
        ] {
            if let Some(v) = value {
                cmd.arg(flag).arg(v);
            }
        }
        if let Some(p) = &args.log_file {
            cmd.arg("--log-file").arg(p);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {name}: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let stdin = child.stdin.take();
        let relay = Arc::clone(&relay);
        let finished = finished_tx.clone();
        let echo = !args.quiet;
        relays.push(std::thread::spawn(move || {
            relay_lines(stdout, echo, &relay, &finished)
        }));
        let mut process = ServiceProcess { name, child, stdin };
        let addr = if name == "admin-api" {
            admin_addr
        } else {
            SocketAddr::from(([127, 0, 0, 1], ports[name]))
        };
        let ready = wait_until_listening(name, addr, &mut process.child);
        children.push(process);
        ready?;
    }
    drop(finished_tx);

    let progress = indicatif::ProgressBar::with_draw_target(
        None,
        indicatif::ProgressDrawTarget::stderr_with_hz(4),
    );
    progress.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {elapsed} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    let limit = Duration::from_secs_f64(args.duration.max(0.0)) + Duration::from_secs(30);
    loop {
        match finished_rx.recv_timeout(Duration::from_millis(250)) {
            Ok(()) => break,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err("the generator stopped before finishing".into());
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if started.elapsed() > limit {
            return Err("the generator did not finish in time".into());
        }
        if let Ok(r) = relay.lock() {
            progress.set_message(format!(
                "events sent {} (rejected {}), lines {}",
                r.sent,
                r.rejected,
                r.lines.len()
            ));
        }
        progress.tick();
    }
    progress.finish_and_clear();

    let health =
        http_get(admin_addr, "/health", None).unwrap_or_else(|e| format!("unavailable: {e}"));
    let exposition = http_get(admin_addr, "/metrics", None)?;
    let openmetrics = http_get(admin_addr, "/metrics", Some(OPENMETRICS))?;

    // Closing their standard input stops the services gracefully: each
    // drains its server and drops its guard, which flushes its sinks.
    for c in &mut children {
        c.stdin.take();
    }
    for c in &mut children {
        let deadline = Instant::now() + Duration::from_secs(15);
        while matches!(c.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        match c.child.try_wait() {
            Ok(Some(status)) if status.success() => {}
            Ok(Some(status)) => return Err(format!("{} exited with {status}", c.name).into()),
            _ => return Err(format!("{} did not stop", c.name).into()),
        }
    }
    drop(children);
    for r in relays {
        let _ = r.join();
    }
    let _ = std::fs::remove_dir_all(&data_dir);
    let mut relay = relay.lock().map_err(|_| "relay poisoned")?;
    Ok(Report {
        lines: std::mem::take(&mut relay.lines),
        raw: std::mem::take(&mut relay.raw),
        exposition,
        openmetrics,
        health,
        elapsed: started.elapsed(),
    })
}

/// Copies a child's lines to standard output and keeps them parsed.
fn relay_lines(
    stdout: std::process::ChildStdout,
    echo: bool,
    relay: &Mutex<Relay>,
    finished: &mpsc::Sender<()>,
) {
    let out = std::io::stdout();
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        if echo {
            let _ = writeln!(out.lock(), "{line}");
        }
        let Ok(value) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if value["message"] == FINISHED {
            let _ = finished.send(());
        }
        let Ok(mut r) = relay.lock() else { break };
        if value["performance"]["operation"] == "generator.send_event" {
            r.sent += 1;
            if value["performance"]["status"] != "success" {
                r.rejected += 1;
            }
        }
        r.lines.push(value);
        r.raw.push(line);
    }
}

fn wait_until_listening(name: &str, addr: SocketAddr, child: &mut Child) -> Result<(), BoxError> {
    let deadline = Instant::now() + Duration::from_secs(15);
    while TcpStream::connect(addr).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("{name} exited during start-up: {status}").into());
        }
        if Instant::now() > deadline {
            return Err(format!("{name} did not start listening on {addr}").into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// A blocking `GET` over HTTP/1.1 with `Connection: close`; the body.
/// What Prometheus asks for: OpenMetrics, with exemplars.
const OPENMETRICS: &str = "application/openmetrics-text;version=1.0.0";

fn http_get(addr: SocketAddr, path: &str, accept: Option<&str>) -> Result<String, BoxError> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let accept = accept.map_or_else(String::new, |a| format!("Accept: {a}\r\n"));
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{accept}Connection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("GET {path}: malformed response"))?;
    if !head.starts_with("HTTP/1.1 200") {
        return Err(format!("GET {path}: {}", head.lines().next().unwrap_or("")).into());
    }
    Ok(body.to_owned())
}

// ---------------------------------------------------------------------------
// The summary.
// ---------------------------------------------------------------------------

/// One operation's row of the summary table.
#[derive(Debug, Default, Clone)]
pub struct OperationStats {
    /// Calls, all outcomes.
    pub calls: f64,
    /// Calls whose outcome was not `success`.
    pub errors: f64,
    /// Cumulative histogram buckets `(le, count)`, all outcomes.
    pub buckets: BTreeMap<OrderedF64, f64>,
}

/// An `f64` bucket bound that sorts (`+Inf` last).
#[derive(Debug, Clone, Copy)]
pub struct OrderedF64(pub f64);

impl PartialEq for OrderedF64 {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for OrderedF64 {}

impl PartialOrd for OrderedF64 {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for OrderedF64 {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

impl OperationStats {
    /// The `q` quantile in seconds, interpolated within its bucket as
    /// PromQL's `histogram_quantile` does.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.buckets.iter().next_back().map(|(_, c)| *c)?;
        if total <= 0.0 {
            return None;
        }
        let rank = q * total;
        let mut prev_le = 0.0;
        let mut prev_count = 0.0;
        for (le, count) in &self.buckets {
            if *count >= rank {
                if le.0.is_infinite() {
                    return Some(prev_le);
                }
                let in_bucket = count - prev_count;
                let frac = if in_bucket > 0.0 {
                    (rank - prev_count) / in_bucket
                } else {
                    1.0
                };
                return Some(prev_le + (le.0 - prev_le) * frac);
            }
            prev_le = le.0;
            prev_count = *count;
        }
        Some(prev_le)
    }
}

/// Parses one exposition sample line: name, labels, value.
pub fn parse_sample(line: &str) -> Option<(&str, BTreeMap<String, String>, f64)> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let (name, rest) = match line.find('{') {
        Some(i) => (&line[..i], &line[i + 1..]),
        None => {
            let (n, v) = line.split_once(' ')?;
            return Some((n, BTreeMap::new(), parse_value(v)?));
        }
    };
    let mut labels = BTreeMap::new();
    let mut chars = rest.char_indices().peekable();
    loop {
        let start = chars.peek()?.0;
        if rest[start..].starts_with('}') {
            let value = rest[start + 1..].trim();
            return Some((name, labels, parse_value(value)?));
        }
        let eq = rest[start..].find('=')? + start;
        let key = rest[start..eq].trim_start_matches(',').trim().to_owned();
        while chars.peek()?.0 <= eq + 1 {
            chars.next();
        }
        let mut value = String::new();
        loop {
            let (_, c) = chars.next()?;
            match c {
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                '"' => break,
                c => value.push(c),
            }
        }
        labels.insert(key, value);
        if chars.peek().is_some_and(|(_, c)| *c == ',') {
            chars.next();
        }
    }
}

fn parse_value(v: &str) -> Option<f64> {
    let v = v.split_whitespace().next()?;
    match v {
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        v => v.parse().ok(),
    }
}

/// Per `(service, operation)` statistics from an exposition.
pub fn operation_stats(exposition: &str) -> BTreeMap<(String, String), OperationStats> {
    let mut stats: BTreeMap<(String, String), OperationStats> = BTreeMap::new();
    for line in exposition.lines() {
        let Some((name, labels, value)) = parse_sample(line) else {
            continue;
        };
        let (Some(service), Some(op)) = (labels.get("service"), labels.get("operation")) else {
            continue;
        };
        let key = (service.clone(), op.clone());
        match name {
            "operation_calls_total" => {
                let s = stats.entry(key).or_default();
                s.calls += value;
                if labels.get("status").is_some_and(|s| s != "success") {
                    s.errors += value;
                }
            }
            "operation_duration_seconds_bucket" => {
                let Some(le) = labels.get("le").and_then(|l| parse_value(l)) else {
                    continue;
                };
                *stats
                    .entry(key)
                    .or_default()
                    .buckets
                    .entry(OrderedF64(le))
                    .or_default() += value;
            }
            _ => {}
        }
    }
    stats.retain(|_, s| s.calls > 0.0);
    stats
}

impl Report {
    /// The lines of one successful event (one that reached every service),
    /// ordered by timestamp.
    pub fn example_request(&self) -> Option<(String, Vec<&str>)> {
        let mut services: HashMap<&str, Vec<&str>> = HashMap::new();
        for l in &self.lines {
            if let (Some(id), Some(s)) = (l["correlation_id"].as_str(), l["service"].as_str()) {
                let v = services.entry(id).or_default();
                if !v.contains(&s) {
                    v.push(s);
                }
            }
        }
        let id = self
            .lines
            .iter()
            .filter(|l| l["performance"]["operation"] == "generator.send_event")
            .filter(|l| l["performance"]["status"] == "success")
            .filter_map(|l| l["correlation_id"].as_str())
            .find(|id| services.get(id).is_some_and(|s| s.len() >= 5))?;
        let mut lines: Vec<_> = self
            .lines
            .iter()
            .zip(&self.raw)
            .filter(|(l, _)| l["correlation_id"] == id)
            .collect();
        lines.sort_by(|a, b| a.0["timestamp"].as_str().cmp(&b.0["timestamp"].as_str()));
        Some((
            id.to_owned(),
            lines.into_iter().map(|(_, raw)| raw.as_str()).collect(),
        ))
    }

    /// The table and the example request, as printed at the end.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let stats = operation_stats(&self.exposition);
        let ms =
            |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |s| format!("{:.2}", s * 1000.0));
        out.push_str(&format!(
            "\nHA Ingestor: {} lines from {} services in {:.1} s; admin-api /health: {}\n\n",
            self.lines.len(),
            SERVICES.len(),
            self.elapsed.as_secs_f64(),
            self.health.trim()
        ));
        out.push_str(
            "per operation, from admin-api's merged /metrics (quantiles interpolated within histogram buckets):\n",
        );
        out.push_str(&format!(
            "{:<20} {:<26} {:>6} {:>6} {:>9} {:>9} {:>9}\n",
            "service", "operation", "calls", "errors", "p50 ms", "p95 ms", "p99 ms"
        ));
        for ((service, op), s) in &stats {
            out.push_str(&format!(
                "{:<20} {:<26} {:>6} {:>6} {:>9} {:>9} {:>9}\n",
                service,
                op,
                s.calls,
                s.errors,
                ms(s.quantile(0.5)),
                ms(s.quantile(0.95)),
                ms(s.quantile(0.99))
            ));
        }
        if let Some((id, lines)) = self.example_request() {
            out.push_str(&format!(
                "\none request across all services, correlation_id {id}:\n"
            ));
            for l in lines {
                out.push_str(&format!("{l}\n"));
            }
        }
        out
    }
}

// ---------------------------------------------------------------------------
// The services.
// ---------------------------------------------------------------------------

/// What every service's handlers share.
#[derive(Clone)]
struct Ctx {
    client: HttpClient,
    peers: Arc<BTreeMap<String, u16>>,
    prometheus: MetricsHandle,
    admin_addr: SocketAddr,
    store: Arc<Mutex<Store>>,
    /// health-dashboard: admin-api's last `/health` answer.
    dashboard: Arc<Mutex<String>>,
}

impl Ctx {
    fn peer(&self, name: &str) -> Result<SocketAddr, ServiceError> {
        if name == "admin-api" {
            return Ok(self.admin_addr);
        }
        self.peers
            .get(name)
            .map(|p| SocketAddr::from(([127, 0, 0, 1], *p)))
            .ok_or_else(|| ServiceError::Upstream(format!("no address for {name}")))
    }

    /// Sends a request to a peer with the current correlation ID; the
    /// status and the body.
    async fn call(
        &self,
        method: http::Method,
        peer: &str,
        path: &str,
        body: Vec<u8>,
    ) -> Result<(http::StatusCode, Bytes), ServiceError> {
        self.request(method, peer, path, body, None).await
    }

    /// `peer`'s `/metrics` in the format `accept` asks for.
    async fn get_metrics(
        &self,
        peer: &str,
        accept: &str,
    ) -> Result<(http::StatusCode, Bytes), ServiceError> {
        self.request(
            http::Method::GET,
            peer,
            "/metrics",
            Vec::new(),
            Some(accept),
        )
        .await
    }

    async fn request(
        &self,
        method: http::Method,
        peer: &str,
        path: &str,
        body: Vec<u8>,
        accept: Option<&str>,
    ) -> Result<(http::StatusCode, Bytes), ServiceError> {
        let addr = self.peer(peer)?;
        let mut req = http::Request::builder()
            .method(method)
            .uri(format!("http://{addr}{path}"))
            .header(http::header::CONTENT_TYPE, "application/json");
        if let Some(accept) = accept {
            req = req.header(http::header::ACCEPT, accept);
        }
        let mut req = req
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| ServiceError::Upstream(e.to_string()))?;
        // Carries the current correlation ID to the next service.
        observe::correlation::http::inject(req.headers_mut());
        let res = tokio::time::timeout(Duration::from_secs(5), self.client.request(req))
            .await
            .map_err(|_| ServiceError::Upstream(format!("{peer} timed out")))?
            .map_err(|e| ServiceError::Upstream(format!("{peer}: {e}")))?;
        let status = res.status();
        let body = res
            .into_body()
            .collect()
            .await
            .map_err(|e| ServiceError::Upstream(format!("{peer}: {e}")))?
            .to_bytes();
        Ok((status, body))
    }
}

/// Why a request failed.
#[derive(Debug)]
enum ServiceError {
    /// The event is malformed (answered 422).
    Invalid(String),
    /// A downstream service failed (answered 502).
    Upstream(String),
    /// No data for the request (answered 404).
    NotFound(String),
    /// The service itself failed (answered 500).
    Internal(String),
}

impl std::fmt::Display for ServiceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Invalid(e) => write!(f, "invalid event: {e}"),
            Self::Upstream(e) => write!(f, "upstream failed: {e}"),
            Self::NotFound(e) => write!(f, "not found: {e}"),
            Self::Internal(e) => write!(f, "internal error: {e}"),
        }
    }
}

impl std::error::Error for ServiceError {}

impl axum::response::IntoResponse for ServiceError {
    fn into_response(self) -> axum::response::Response {
        let status = match &self {
            Self::Invalid(_) => http::StatusCode::UNPROCESSABLE_ENTITY,
            Self::Upstream(_) => http::StatusCode::BAD_GATEWAY,
            Self::NotFound(_) => http::StatusCode::NOT_FOUND,
            Self::Internal(_) => http::StatusCode::INTERNAL_SERVER_ERROR,
        };
        (status, self.to_string()).into_response()
    }
}

fn parse_json(body: &[u8]) -> Result<serde_json::Value, ServiceError> {
    serde_json::from_slice(body).map_err(|e| ServiceError::Invalid(e.to_string()))
}

/// The event id the generator gave an event, for the log context.
fn event_id(event: &serde_json::Value) -> String {
    event["id"]
        .as_u64()
        .map_or_else(|| "?".to_owned(), |n| format!("evt-{n}"))
}

// websocket-ingestion ------------------------------------------------------

#[monitor_performance(
    "ingestion.receive",
    objective = objectives::INGESTION,
    context(event_id = %event_id(&event)))]
async fn ingest(ctx: &Ctx, event: serde_json::Value) -> Result<String, ServiceError> {
    validate(&event)?;
    let (status, body) = ctx
        .call(
            http::Method::POST,
            "enrichment-pipeline",
            "/enrich",
            event.to_string().into_bytes(),
        )
        .await?;
    if !status.is_success() {
        return Err(ServiceError::Upstream(format!(
            "enrichment-pipeline answered {status}"
        )));
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// Checks a `state_changed` event the way Home Assistant shapes them.
#[monitor_performance(
    "ingestion.validate",
    objective = objectives::INGESTION,
    context(event_id = %event_id(event)))]
fn validate(event: &serde_json::Value) -> Result<(), ServiceError> {
    if event["event_type"] != "state_changed" {
        return Err(ServiceError::Invalid(
            "event_type is not state_changed".into(),
        ));
    }
    let data = &event["data"];
    let entity = data["entity_id"]
        .as_str()
        .ok_or_else(|| ServiceError::Invalid("entity_id missing".into()))?;
    if !entity.contains('.') {
        return Err(ServiceError::Invalid(format!(
            "entity_id {entity:?} has no domain"
        )));
    }
    if !data["new_state"].is_object() {
        return Err(ServiceError::Invalid("new_state missing".into()));
    }
    Ok(())
}

async fn ingestion_handler(State(ctx): State<Ctx>, body: Bytes) -> Result<String, ServiceError> {
    let event = parse_json(&body)?;
    ingest(&ctx, event).await
}

// enrichment-pipeline ------------------------------------------------------

#[monitor_performance("enrichment.enrich", context(event_id = %event_id(&event)))]
async fn enrich(ctx: &Ctx, mut event: serde_json::Value) -> Result<String, ServiceError> {
    let area = event["data"]["new_state"]["attributes"]["area"]
        .as_str()
        .unwrap_or("outside")
        .to_owned();
    // Enrichment is best effort: without weather the event is still stored.
    if let Ok(weather) = fetch_weather(ctx, &area, &event_id(&event)).await {
        event["weather"] = weather;
    }
    let (status, body) = ctx
        .call(
            http::Method::POST,
            "data-retention",
            "/store",
            event.to_string().into_bytes(),
        )
        .await?;
    if !status.is_success() {
        return Err(ServiceError::Upstream(format!(
            "data-retention answered {status}"
        )));
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

#[monitor_performance("enrichment.fetch_weather", context(event_id = event_id, area = area))]
async fn fetch_weather(
    ctx: &Ctx,
    area: &str,
    event_id: &str,
) -> Result<serde_json::Value, ServiceError> {
    let (status, body) = ctx
        .call(
            http::Method::GET,
            "weather-api",
            &format!("/weather/{area}"),
            Vec::new(),
        )
        .await?;
    if !status.is_success() {
        return Err(ServiceError::Upstream(format!(
            "weather-api answered {status} for {area}"
        )));
    }
    serde_json::from_slice(&body).map_err(|e| ServiceError::Upstream(e.to_string()))
}

async fn enrichment_handler(State(ctx): State<Ctx>, body: Bytes) -> Result<String, ServiceError> {
    let event = parse_json(&body)?;
    enrich(&ctx, event).await
}

// weather-api --------------------------------------------------------------

#[monitor_performance("weather.current", context(area = area))]
async fn current_weather(area: &str) -> Result<String, ServiceError> {
    tokio::time::sleep(Duration::from_millis(1)).await;
    let temp = match area {
        "kitchen" => 21.5,
        "living_room" => 20.0,
        "bedroom" => 18.5,
        "outside" => 7.0,
        other => {
            return Err(ServiceError::NotFound(format!(
                "no weather station in {other}"
            )));
        }
    };
    Ok(serde_json::json!({"temperature_c": temp, "source": "weather-api"}).to_string())
}

async fn weather_handler(Path(area): Path<String>) -> Result<String, ServiceError> {
    current_weather(&area).await
}

// data-retention -----------------------------------------------------------

/// The newest events, mirrored in a file capped at `max` events.
struct Store {
    path: PathBuf,
    max: usize,
    kept: VecDeque<String>,
    appended: usize,
}

#[monitor_performance("retention.store", context(event_id = %event_id(&event)))]
fn store_event(store: &Mutex<Store>, event: serde_json::Value) -> Result<usize, ServiceError> {
    let mut s = store
        .lock()
        .map_err(|_| ServiceError::Internal("store poisoned".into()))?;
    let line = event.to_string();
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&s.path)
        .map_err(|e| ServiceError::Internal(format!("{}: {e}", s.path.display())))?;
    writeln!(file, "{line}").map_err(|e| ServiceError::Internal(e.to_string()))?;
    s.kept.push_back(line);
    s.appended += 1;
    if s.kept.len() > s.max {
        s.kept.pop_front();
    }
    // The file may grow to twice the limit before it is cut back.
    if s.appended >= s.max {
        enforce_retention(&mut s)?;
    }
    Ok(s.kept.len())
}

#[monitor_performance("retention.enforce", context(max_events = store.max))]
fn enforce_retention(store: &mut Store) -> Result<(), ServiceError> {
    let tmp = store.path.with_extension("tmp");
    let mut data = String::new();
    for l in &store.kept {
        data.push_str(l);
        data.push('\n');
    }
    std::fs::write(&tmp, data).map_err(|e| ServiceError::Internal(e.to_string()))?;
    std::fs::rename(&tmp, &store.path).map_err(|e| ServiceError::Internal(e.to_string()))?;
    store.appended = 0;
    tracing::info!(kept = store.kept.len(), "retention enforced");
    Ok(())
}

async fn retention_handler(State(ctx): State<Ctx>, body: Bytes) -> Result<String, ServiceError> {
    let event = parse_json(&body)?;
    let kept = store_event(&ctx.store, event)?;
    Ok(format!("{{\"stored\":true,\"kept\":{kept}}}"))
}

// admin-api ----------------------------------------------------------------

#[monitor_performance("admin.health", objective = objectives::ADMIN)]
async fn pipeline_health(ctx: &Ctx) -> Result<String, ServiceError> {
    let mut statuses = serde_json::Map::new();
    let mut all_up = true;
    for name in SERVICES.iter().filter(|s| **s != "admin-api") {
        let up = matches!(ctx.call(http::Method::GET, name, "/health", Vec::new()).await, Ok((s, _)) if s.is_success());
        all_up &= up;
        statuses.insert((*name).to_owned(), (if up { "up" } else { "down" }).into());
    }
    let status = if all_up { "healthy" } else { "degraded" };
    Ok(serde_json::json!({"status": status, "services": statuses}).to_string())
}

async fn admin_health(State(ctx): State<Ctx>) -> Result<String, ServiceError> {
    pipeline_health(&ctx).await
}

/// Every service's exposition merged into one, in the format `accept`
/// asks for: one `# HELP` / `# TYPE` per metric family, the samples of all
/// services (they differ in the `service` label) under it.
#[monitor_performance("admin.metrics", level = "debug")]
async fn merged_metrics(ctx: &Ctx, accept: &str) -> Result<(&'static str, String), ServiceError> {
    let (content_type, own) = ctx.prometheus.render_for_accept(accept);
    let mut expositions = vec![own];
    for name in SERVICES.iter().filter(|s| **s != "admin-api") {
        if let Ok((status, body)) = ctx.get_metrics(name, accept).await {
            if status.is_success() {
                expositions.push(String::from_utf8_lossy(&body).into_owned());
            }
        }
    }
    let openmetrics = content_type.starts_with("application/openmetrics-text");
    Ok((content_type, merge_expositions(&expositions, openmetrics)))
}

/// Merges Prometheus text (or, with `openmetrics`, OpenMetrics)
/// expositions by metric family.
pub fn merge_expositions(expositions: &[String], openmetrics: bool) -> String {
    let mut order: Vec<String> = Vec::new();
    let mut families: HashMap<String, (Vec<String>, Vec<String>)> = HashMap::new();
    for text in expositions {
        let mut family = String::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            if let Some(rest) = line
                .strip_prefix("# HELP ")
                .or_else(|| line.strip_prefix("# TYPE "))
            {
                family = rest.split_whitespace().next().unwrap_or("").to_owned();
                let entry = families.entry(family.clone()).or_insert_with(|| {
                    order.push(family.clone());
                    (Vec::new(), Vec::new())
                });
                let kind = &line[..7];
                if !entry.0.iter().any(|h| h.starts_with(kind)) {
                    entry.0.push(line.to_owned());
                }
            } else if !line.starts_with('#') {
                if family.is_empty() {
                    family = line.split(['{', ' ']).next().unwrap_or("").to_owned();
                }
                let entry = families.entry(family.clone()).or_insert_with(|| {
                    order.push(family.clone());
                    (Vec::new(), Vec::new())
                });
                entry.1.push(line.to_owned());
            }
        }
    }
    let mut out = String::new();
    for name in order {
        if let Some((head, samples)) = families.get(&name) {
            for l in head.iter().chain(samples) {
                out.push_str(l);
                out.push('\n');
            }
            // OpenMetrics allows no blank line.
            if !openmetrics {
                out.push('\n');
            }
        }
    }
    if openmetrics {
        out.push_str("# EOF\n");
    }
    out
}

/// The `Accept` header of a request, or nothing.
fn accept_of(headers: &http::HeaderMap) -> &str {
    headers
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

async fn admin_metrics(
    State(ctx): State<Ctx>,
    headers: http::HeaderMap,
) -> Result<([(http::HeaderName, &'static str); 1], String), ServiceError> {
    let (content_type, body) = merged_metrics(&ctx, accept_of(&headers)).await?;
    Ok(([(http::header::CONTENT_TYPE, content_type)], body))
}

// health-dashboard -----------------------------------------------------------

/// Asks admin-api for the pipeline's health and keeps the answer.
#[monitor_performance("dashboard.refresh")]
async fn refresh_dashboard(ctx: &Ctx) -> Result<(), ServiceError> {
    let (status, body) = ctx
        .call(http::Method::GET, "admin-api", "/health", Vec::new())
        .await?;
    if !status.is_success() {
        return Err(ServiceError::Upstream(format!(
            "admin-api answered {status}"
        )));
    }
    let body = String::from_utf8_lossy(&body).into_owned();
    *ctx.dashboard
        .lock()
        .map_err(|_| ServiceError::Internal("dashboard poisoned".into()))? = body;
    Ok(())
}

/// Refreshes every second until `stop` changes.
async fn run_dashboard(ctx: Ctx, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                let _ = refresh_dashboard(&ctx).await;
            }
            // Only ever set to `true`, or the sender is gone: stop.
            _ = stop.changed() => return,
        }
    }
}

async fn dashboard_page(State(ctx): State<Ctx>) -> String {
    ctx.dashboard.lock().map(|s| s.clone()).unwrap_or_default()
}

// generator ----------------------------------------------------------------

const ENTITIES: [(&str, &str); 6] = [
    ("sensor.kitchen_temperature", "kitchen"),
    ("light.living_room", "living_room"),
    ("binary_sensor.bedroom_window", "bedroom"),
    ("sensor.outdoor_humidity", "outside"),
    ("cover.garage_door", "garage"),
    ("switch.coffee_maker", "kitchen"),
];

/// A `state_changed` event as Home Assistant's websocket API sends it;
/// one in five is malformed on purpose, in one of two ways.
fn make_event(n: u64) -> serde_json::Value {
    let (entity, area) = ENTITIES[(n % ENTITIES.len() as u64) as usize];
    let value = format!("{:.1}", 15.0 + (n % 17) as f64 * 0.5);
    let mut event = serde_json::json!({
        "id": n,
        "type": "event",
        "event_type": "state_changed",
        "data": {
            "entity_id": entity,
            "old_state": {"entity_id": entity, "state": "unknown", "attributes": {"area": area}},
            "new_state": {"entity_id": entity, "state": value, "attributes": {"area": area}},
        },
    });
    match n % 10 {
        3 => event["data"]["entity_id"] = "kitchen_light".into(),
        7 => event["data"]["new_state"] = serde_json::Value::Null,
        _ => {}
    }
    event
}

#[monitor_performance("generator.send_event", context(event_id = %event_id(&event)))]
async fn send_event(ctx: &Ctx, event: serde_json::Value) -> Result<(), ServiceError> {
    let (status, body) = ctx
        .call(
            http::Method::POST,
            "websocket-ingestion",
            "/events",
            event.to_string().into_bytes(),
        )
        .await?;
    match status.as_u16() {
        200..=299 => Ok(()),
        422 => Err(ServiceError::Invalid(
            String::from_utf8_lossy(&body).into_owned(),
        )),
        _ => Err(ServiceError::Upstream(format!(
            "websocket-ingestion answered {status}"
        ))),
    }
}

async fn generate(ctx: Ctx, duration: Duration, per_sec: u32) {
    let period = Duration::from_secs_f64(1.0 / f64::from(per_sec.max(1)));
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let end = tokio::time::Instant::now() + duration;
    let mut n = 0u64;
    let mut tasks = tokio::task::JoinSet::new();
    while tokio::time::Instant::now() < end {
        ticker.tick().await;
        let ctx = ctx.clone();
        let event = make_event(n);
        n += 1;
        // A fresh task per event: each starts its own correlation ID.
        tasks.spawn(async move {
            let _ = send_event(&ctx, event).await;
        });
    }
    while tasks.join_next().await.is_some() {}
    tracing::info!(events = n, "{FINISHED}");
}

// Running one service --------------------------------------------------------

/// Runs one service until its standard input closes.
fn run_service(role: &str, args: &Args) -> Result<(), BoxError> {
    if !SERVICES.contains(&role) {
        return Err(format!("unknown role {role:?}; one of {SERVICES:?}").into());
    }
    let peers: BTreeMap<String, u16> = args
        .peers
        .iter()
        .filter_map(|p| {
            let (name, port) = p.split_once('=')?;
            Some((name.to_owned(), port.parse().ok()?))
        })
        .collect();
    let port = *peers
        .get(role)
        .ok_or_else(|| format!("no port for {role}"))?;
    let admin_addr = match args.prometheus {
        Some(a) => a,
        None => SocketAddr::from((
            [127, 0, 0, 1],
            *peers.get("admin-api").ok_or("no admin-api port")?,
        )),
    };

    let mut builder = Observe::builder(role).version(env!("CARGO_PKG_VERSION"));
    // Every sink (OTLP's log records too) replaces standard output, which
    // the orchestrator relays: keep it.
    let shipping = args.logstash.is_some()
        || args.elasticsearch.is_some()
        || args.log_file.is_some()
        || args.otlp.is_some();
    if let Some(a) = &args.logstash {
        builder = builder.logstash(a.clone());
    }
    if let Some(u) = &args.elasticsearch {
        builder = builder.elasticsearch(u.clone());
    }
    if let Some(p) = &args.log_file {
        builder = builder.file(p.clone());
    }
    if shipping {
        builder = builder.stdout();
    }
    if let Some(u) = &args.influxdb {
        builder =
            builder.influxdb(InfluxConfig::v1(u, &args.influx_db).interval(Duration::from_secs(1)));
    }
    if let Some(u) = &args.otlp {
        // Metrics every second, as the InfluxDB push: a short run shows
        // several points.
        builder = builder
            .otlp_config(OtlpConfig::new(u.clone()).metric_export_interval(Duration::from_secs(1)));
    }
    if role == "admin-api" {
        builder = builder.system_metrics(Duration::from_secs(2));
    }
    let guard = builder.install()?;
    let prometheus = guard
        .prometheus_handle()
        .cloned()
        .ok_or("prometheus is off")?;

    let data_dir = args.data_dir.clone().unwrap_or_else(std::env::temp_dir);
    let ctx = Ctx {
        client: Client::builder(TokioExecutor::new()).build_http(),
        peers: Arc::new(peers),
        prometheus,
        admin_addr,
        store: Arc::new(Mutex::new(Store {
            path: data_dir.join("events.jsonl"),
            max: args.retention_max_events.max(1),
            kept: VecDeque::new(),
            appended: 0,
        })),
        dashboard: Arc::new(Mutex::new("{}".to_owned())),
    };
    let own_metrics = {
        let ctx = ctx.clone();
        move |headers: http::HeaderMap| {
            let ctx = ctx.clone();
            async move {
                let (content_type, body) = ctx.prometheus.render_for_accept(accept_of(&headers));
                ([(http::header::CONTENT_TYPE, content_type)], body)
            }
        }
    };
    let base = Router::new().route("/health", get(|| async { "ok" }));
    let app = match role {
        "websocket-ingestion" => base
            .route("/events", post(ingestion_handler))
            .route("/metrics", get(own_metrics)),
        "enrichment-pipeline" => base
            .route("/enrich", post(enrichment_handler))
            .route("/metrics", get(own_metrics)),
        "weather-api" => base
            .route("/weather/{area}", get(weather_handler))
            .route("/metrics", get(own_metrics)),
        "data-retention" => base
            .route("/store", post(retention_handler))
            .route("/metrics", get(own_metrics)),
        "health-dashboard" => base
            .route("/", get(dashboard_page))
            .route("/metrics", get(own_metrics)),
        "admin-api" => Router::new()
            .route("/health", get(admin_health))
            .route("/metrics", get(admin_metrics)),
        _ => base.route("/metrics", get(own_metrics)),
    }
    .with_state(ctx.clone())
    .layer(CorrelationLayer::default());

    let bind = if role == "admin-api" {
        admin_addr
    } else {
        SocketAddr::from(([127, 0, 0, 1], port))
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(bind)
            .await
            .map_err(|e| format!("{role} cannot listen on {bind}: {e}"))?;
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        // The orchestrator closes our standard input to stop us.
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut sink);
            let _ = stop_tx.send(true);
        });
        let mut server_stop = stop_rx.clone();
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = server_stop.wait_for(|s| *s).await;
                })
                .await
        });
        let dashboard =
            (role == "health-dashboard").then(|| tokio::spawn(run_dashboard(ctx.clone(), stop_rx)));
        if role == "generator" {
            generate(
                ctx,
                Duration::from_secs_f64(args.duration.max(0.0)),
                args.events_per_sec,
            )
            .await;
        }
        server.await.map_err(|e| e.to_string())??;
        if let Some(d) = dashboard {
            d.await.map_err(|e| e.to_string())?;
        }
        Ok::<_, BoxError>(())
    })?;
    drop(rt);
    drop(guard);
    Ok(())
}
