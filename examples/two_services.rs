//! Two HTTP services, each its own process with its own service name: a
//! `gateway` that calls an `inventory` service. Both are monitored; the
//! correlation ID crosses the hop in `X-Correlation-ID` / `traceparent`, so
//! each request's lines share one `correlation_id` across both services.
//!
//! ```text
//! cargo run --example two_services
//! ```
//!
//! The example starts `inventory` as a child process of itself, sends three
//! requests to `gateway` (one with `X-Correlation-ID: abc-123`, one with
//! only a `traceparent`, one with neither), then stops the child and exits.

use std::net::{SocketAddr, TcpListener as StdListener};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::get;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use observe::correlation::tower::CorrelationLayer;
use observe::{Observe, monitor_performance};

type HttpClient = Client<HttpConnector, Empty<Bytes>>;

#[monitor_performance("inventory.lookup", context(sku = "sku-1"))]
async fn lookup() -> &'static str {
    tokio::time::sleep(Duration::from_millis(2)).await;
    tracing::info!(stock = 42, "stock read");
    "42"
}

#[derive(Debug)]
struct UpstreamError(String);

impl std::fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "inventory unreachable: {}", self.0)
    }
}

impl axum::response::IntoResponse for UpstreamError {
    fn into_response(self) -> axum::response::Response {
        (http::StatusCode::BAD_GATEWAY, self.to_string()).into_response()
    }
}

#[monitor_performance("gateway.handle")]
async fn handle(
    State((client, inventory)): State<(HttpClient, SocketAddr)>,
) -> Result<String, UpstreamError> {
    let mut req = http::Request::get(format!("http://{inventory}/stock"))
        .body(Empty::new())
        .map_err(|e| UpstreamError(e.to_string()))?;
    // Carries the current correlation ID to the next service.
    observe::correlation::http::inject(req.headers_mut());
    let res = client
        .request(req)
        .await
        .map_err(|e| UpstreamError(e.to_string()))?;
    let body = res
        .into_body()
        .collect()
        .await
        .map_err(|e| UpstreamError(e.to_string()))?
        .to_bytes();
    Ok(format!("stock: {}", String::from_utf8_lossy(&body)))
}

async fn serve(listener: StdListener, app: Router) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    axum::serve(listener, app.layer(CorrelationLayer::default())).await
}

/// Kills the child service however the parent leaves.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_until_listening(addr: SocketAddr) -> Result<(), Box<dyn std::error::Error>> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(addr).is_err() {
        if Instant::now() > deadline {
            return Err(format!("inventory did not start on {addr}").into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    if let Some(port) = args
        .iter()
        .position(|a| a == "--inventory-port")
        .and_then(|i| args.get(i + 1))
    {
        // The child process: the inventory service.
        let _guard = Observe::builder("inventory").install()?;
        let listener = StdListener::bind(("127.0.0.1", port.parse::<u16>()?))?;
        rt.block_on(serve(listener, Router::new().route("/stock", get(lookup))))?;
        return Ok(());
    }

    let _guard = Observe::builder("gateway").install()?;
    let inventory_listener = StdListener::bind("127.0.0.1:0")?;
    let inventory = inventory_listener.local_addr()?;
    drop(inventory_listener);
    let _child = ChildGuard(
        Command::new(std::env::current_exe()?)
            .args(["--inventory-port", &inventory.port().to_string()])
            .spawn()?,
    );
    wait_until_listening(inventory)?;

    let gateway_listener = StdListener::bind("127.0.0.1:0")?;
    let gateway = gateway_listener.local_addr()?;
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let app = Router::new()
        .route("/", get(handle))
        .with_state((client.clone(), inventory));
    rt.spawn(serve(gateway_listener, app));

    rt.block_on(async {
        let requests: [&[(&str, &str)]; 3] = [
            &[("x-correlation-id", "abc-123")],
            &[(
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            )],
            &[],
        ];
        for headers in requests {
            let mut req = http::Request::get(format!("http://{gateway}/"));
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            let res = client.request(req.body(Empty::new())?).await?;
            let echoed = res.headers().get("x-correlation-id").cloned();
            res.into_body().collect().await?;
            eprintln!("request {headers:?} -> x-correlation-id: {echoed:?}");
        }
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;
    Ok(())
}
