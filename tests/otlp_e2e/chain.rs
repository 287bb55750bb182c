//! Three monitored HTTP services, each its own process (this test binary
//! started with `--role chain ...`), calling one another:
//!
//! ```text
//! test --GET /work/N/FAIL--> gateway --> orders --> stock
//! ```
//!
//! Each service is installed with `Observe::builder(name).otlp_config(..)`,
//! writes its JSON lines to standard output (read by the test) and serves
//! its Prometheus exposition at `/metrics`. Every hop is a monitored call
//! that sends the request (`gateway.call_orders`, `orders.call_stock`),
//! carrying the correlation ID and `traceparent` with
//! `correlation::http::inject`; the receiving side runs its handler
//! (`orders.handle`, `stock.handle`) in `CorrelationLayer`'s scope. `FAIL`
//! names the service that fails the request (`orders` or `stock`, `none`
//! for a request that succeeds); the failure travels back as HTTP 500 and
//! fails every call on the way.
//!
//! The test side: [`Chain::start`] runs the three processes, [`get`] sends
//! requests, [`Chain::stop`] closes their standard input (each drains its
//! server and drops its guard) and collects their lines.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, ChildStdin, Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::routing::get as route_get;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use observe::correlation::tower::CorrelationLayer;
use observe::metrics::MetricsHandle;
use observe::{Observe, monitor_performance};

use crate::pipeline::free_port;
use observe_runtime::otlp::OtlpConfig;

/// The services, upstream first, and the operation each one's request
/// handler runs.
pub(crate) const SERVICES: [&str; 3] = ["gateway", "orders", "stock"];

/// How often the services export their metrics: the test waits for an
/// export after its last request.
pub(crate) const METRIC_INTERVAL: Duration = Duration::from_secs(1);

type HttpClient = Client<HttpConnector, Empty<Bytes>>;

// ---------------------------------------------------------------------------
// The service side (`--role chain ROLE SERVICE PORT NEXT_PORT|- ENDPOINT`).
// ---------------------------------------------------------------------------

/// A failed call: the message travels back as the HTTP body.
#[derive(Debug)]
pub(crate) struct ChainError(String);

impl std::fmt::Display for ChainError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ChainError {}

#[derive(Clone)]
struct Ctx {
    role: &'static str,
    client: HttpClient,
    next: Option<SocketAddr>,
    prometheus: MetricsHandle,
}

#[monitor_performance("gateway.handle", context(item = n))]
async fn gateway_handle(ctx: &Ctx, n: u64, fail: &str) -> Result<String, ChainError> {
    tracing::info!(item = n, "order received");
    gateway_call_orders(ctx, n, fail).await
}

#[monitor_performance("gateway.call_orders", context(item = n))]
async fn gateway_call_orders(ctx: &Ctx, n: u64, fail: &str) -> Result<String, ChainError> {
    forward(ctx, n, fail).await
}

#[monitor_performance("orders.handle", context(item = n))]
async fn orders_handle(ctx: &Ctx, n: u64, fail: &str) -> Result<String, ChainError> {
    if fail == "orders" {
        return Err(ChainError(format!("order {n} refused")));
    }
    tracing::info!(item = n, "order checked");
    orders_call_stock(ctx, n, fail).await
}

#[monitor_performance("orders.call_stock", context(item = n))]
async fn orders_call_stock(ctx: &Ctx, n: u64, fail: &str) -> Result<String, ChainError> {
    forward(ctx, n, fail).await
}

#[monitor_performance("stock.handle", context(item = n))]
async fn stock_handle(n: u64, fail: &str) -> Result<String, ChainError> {
    let left = stock_lookup(n, fail).await?;
    tracing::info!(item = n, left, "stock reserved");
    Ok(format!("item {n}: {left} left"))
}

#[monitor_performance("stock.lookup", context(item = n))]
async fn stock_lookup(n: u64, fail: &str) -> Result<u64, ChainError> {
    if fail == "stock" {
        return Err(ChainError(format!("item {n} out of stock")));
    }
    Ok(100 - n % 100)
}

/// GETs the same path from the next service, in the current call's
/// trace; its 500 is this call's error.
async fn forward(ctx: &Ctx, n: u64, fail: &str) -> Result<String, ChainError> {
    let next = ctx
        .next
        .ok_or_else(|| ChainError("no next service".into()))?;
    let mut req = http::Request::get(format!("http://{next}/work/{n}/{fail}"))
        .body(Empty::new())
        .map_err(|e| ChainError(e.to_string()))?;
    observe::correlation::http::inject(req.headers_mut());
    let res = ctx
        .client
        .request(req)
        .await
        .map_err(|e| ChainError(format!("{next}: {e}")))?;
    let status = res.status();
    let body = res
        .into_body()
        .collect()
        .await
        .map_err(|e| ChainError(e.to_string()))?
        .to_bytes();
    let body = String::from_utf8_lossy(&body).into_owned();
    if status.is_success() {
        Ok(body)
    } else {
        Err(ChainError(format!(
            "{} answered {status}: {body}",
            next.port()
        )))
    }
}

async fn work(
    State(ctx): State<Ctx>,
    Path((n, fail)): Path<(u64, String)>,
) -> (http::StatusCode, String) {
    let result = match ctx.role {
        "gateway" => gateway_handle(&ctx, n, &fail).await,
        "orders" => orders_handle(&ctx, n, &fail).await,
        _ => stock_handle(n, &fail).await,
    };
    match result {
        Ok(body) => (http::StatusCode::OK, body),
        Err(e) => (http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// `--role chain ROLE SERVICE PORT NEXT_PORT|- ENDPOINT`: runs one service
/// until its standard input closes.
pub(crate) fn run(args: &[String]) -> ExitCode {
    match serve(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("otlp_e2e chain {args:?}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let [role, service, port, next, endpoint] = args else {
        return Err("expected ROLE SERVICE PORT NEXT_PORT|- ENDPOINT".into());
    };
    let role = SERVICES
        .into_iter()
        .find(|r| r == role)
        .ok_or("unknown role")?;
    let next = match next.as_str() {
        "-" => None,
        p => Some(SocketAddr::from(([127, 0, 0, 1], p.parse::<u16>()?))),
    };
    let config = OtlpConfig::new(endpoint.clone())
        .metric_export_interval(METRIC_INTERVAL)
        // Back within half a second of a collector's return.
        .backoff(Duration::from_millis(50), Duration::from_millis(500));
    let guard = Observe::builder(service.clone())
        .version("1.2.3")
        .otlp_config(config)
        // The test reads the lines there too.
        .stdout()
        .install()?;
    let ctx = Ctx {
        role,
        client: Client::builder(TokioExecutor::new()).build_http(),
        next,
        prometheus: guard
            .prometheus_handle()
            .cloned()
            .ok_or("prometheus is off")?,
    };
    let app = Router::new()
        .route("/work/{n}/{fail}", route_get(work))
        .route(
            "/metrics",
            route_get(|State(ctx): State<Ctx>| async move { ctx.prometheus.render() }),
        )
        .with_state(ctx)
        .layer(CorrelationLayer::default());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let port: u16 = port.parse()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
        // The test closes our standard input to stop us.
        std::thread::spawn(move || {
            let _ = std::io::stdin().read_to_end(&mut Vec::new());
            let _ = stop_tx.send(true);
        });
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop_rx.wait_for(|s| *s).await;
            })
            .await
    })?;
    drop(rt);
    let dropping = Instant::now();
    drop(guard);
    eprintln!(
        "otlp_e2e: {service} dropped its guard in {} ms",
        dropping.elapsed().as_millis()
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// The test side.
// ---------------------------------------------------------------------------

/// A child process of the test, its standard output collected line by
/// line; killed if still running when dropped.
pub(crate) struct ChildProcess {
    pub(crate) name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl ChildProcess {
    /// Starts this test binary with `args`.
    pub(crate) fn spawn(name: &str, args: &[String]) -> Self {
        let mut child = Command::new(std::env::current_exe().expect("the test binary"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let reader = {
            let lines = Arc::clone(&lines);
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    lines
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(line);
                }
            })
        };
        Self {
            name: name.to_owned(),
            stdin: child.stdin.take(),
            child,
            lines,
            reader: Some(reader),
        }
    }

    /// Waits until something listens on `port`.
    ///
    /// # Panics
    /// If the process exits first, or nothing listens within 15 s.
    pub(crate) fn wait_listening(&mut self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{} exited during start-up: {status}", self.name);
            }
            assert!(
                Instant::now() < deadline,
                "{} does not listen on {port}",
                self.name
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The lines it has written so far.
    pub(crate) fn line_count(&self) -> usize {
        self.lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Closes its standard input, waits for it to exit (killing it after
    /// `patience`) and returns its lines and whether it exited by itself
    /// with success.
    pub(crate) fn finish(mut self, patience: Duration) -> (Vec<String>, bool) {
        self.stdin.take();
        let deadline = Instant::now() + patience;
        let mut ok = false;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    ok = status.success();
                    break;
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break;
                }
            }
        }
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        let lines = std::mem::take(&mut *self.lines.lock().unwrap_or_else(PoisonError::into_inner));
        (lines, ok)
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// The three services of one test, running.
pub(crate) struct Chain {
    /// `(service name, port, process)`, upstream first.
    pub(crate) services: Vec<(String, u16, ChildProcess)>,
}

impl Chain {
    /// Starts gateway, orders and stock, exporting to `endpoint`; their
    /// service names are the roles with `suffix` appended, so each test's
    /// data is told apart in the shared topics.
    pub(crate) fn start(endpoint: &str, suffix: &str) -> Self {
        let ports: Vec<u16> = SERVICES.iter().map(|_| free_port()).collect();
        let mut services = Vec::new();
        for (i, role) in SERVICES.iter().enumerate() {
            let service = format!("{role}-{suffix}");
            let next = ports
                .get(i + 1)
                .map_or_else(|| "-".to_owned(), ToString::to_string);
            let args = [
                "--role",
                "chain",
                role,
                &service,
                &ports[i].to_string(),
                &next,
                endpoint,
            ]
            .map(str::to_owned);
            services.push((
                service.clone(),
                ports[i],
                ChildProcess::spawn(&service, &args),
            ));
        }
        for (_, port, process) in &mut services {
            process.wait_listening(*port);
        }
        Self { services }
    }

    /// The gateway's port.
    pub(crate) fn gateway(&self) -> u16 {
        self.services[0].1
    }

    /// Each service's name and Prometheus exposition.
    pub(crate) fn expositions(&self) -> Vec<(String, String)> {
        self.services
            .iter()
            .map(|(name, port, _)| {
                let reply = get(*port, "/metrics", &[]);
                assert_eq!(reply.status, 200, "{name} /metrics: {}", reply.body);
                (name.clone(), reply.body)
            })
            .collect()
    }

    /// The lines each service has written so far.
    pub(crate) fn line_counts(&self) -> BTreeMap<String, usize> {
        self.services
            .iter()
            .map(|(name, _, p)| (name.clone(), p.line_count()))
            .collect()
    }

    /// Stops the services (each drops its guard) and returns every JSON
    /// line they wrote, parsed, with the service that wrote it.
    ///
    /// # Panics
    /// If a service does not exit by itself with success within 15 s or
    /// writes a line that is not JSON.
    pub(crate) fn stop(self) -> Vec<serde_json::Value> {
        let mut all = Vec::new();
        let stopping: Vec<_> = self
            .services
            .into_iter()
            .map(|(name, _, p)| {
                std::thread::spawn(move || (name, p.finish(Duration::from_secs(15))))
            })
            .collect();
        for s in stopping {
            let (name, (lines, ok)) = s.join().expect("stopping a service");
            assert!(ok, "{name} did not exit cleanly");
            for line in lines {
                let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| {
                    panic!("{name} wrote a line that is not JSON ({e}): {line}")
                });
                all.push(v);
            }
        }
        all
    }
}

/// An HTTP reply and how long it took.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) body: String,
    pub(crate) took: Duration,
}

/// A blocking `GET` to `127.0.0.1:port` over HTTP/1.1 with
/// `Connection: close`.
///
/// # Panics
/// If the service does not answer.
pub(crate) fn get(port: u16, path: &str, headers: &[(&str, &str)]) -> Reply {
    let started = Instant::now();
    let mut conn = TcpStream::connect(("127.0.0.1", port))
        .unwrap_or_else(|e| panic!("connect to {port}: {e}"));
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut head =
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    conn.write_all(head.as_bytes()).expect("send the request");
    let mut reply = String::new();
    conn.read_to_string(&mut reply)
        .unwrap_or_else(|e| panic!("GET {path} from {port}: {e}"));
    let took = started.elapsed();
    let (head, body) = reply.split_once("\r\n\r\n").unwrap_or((&reply, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("GET {path} from {port}: no status in {head:?}"));
    Reply {
        status,
        body: body.to_owned(),
        took,
    }
}

/// The samples of a Prometheus text exposition named `name`: labels and
/// value.
pub(crate) fn samples(exposition: &str, name: &str) -> Vec<(BTreeMap<String, String>, f64)> {
    exposition
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?;
            let (labels, value) = match rest.strip_prefix('{') {
                Some(r) => {
                    let (labels, value) = parse_labels(r)?;
                    (labels, value)
                }
                None if rest.starts_with(' ') => (BTreeMap::new(), rest),
                None => return None,
            };
            let value = value.split_whitespace().next()?.parse().ok()?;
            Some((labels, value))
        })
        .collect()
}

/// `k="v",k2="v2"} rest` as the labels and `rest`.
fn parse_labels(mut s: &str) -> Option<(BTreeMap<String, String>, &str)> {
    let mut labels = BTreeMap::new();
    loop {
        s = s.trim_start_matches(',');
        if let Some(rest) = s.strip_prefix('}') {
            return Some((labels, rest));
        }
        let (key, rest) = s.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next()? {
                (i, '"') => break i,
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                (_, c) => value.push(c),
            }
        };
        labels.insert(key.to_owned(), value);
        s = &rest[end + 1..];
    }
}
