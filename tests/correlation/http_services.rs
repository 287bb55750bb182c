//! Two HTTP services in one process, each with its own service name, behind
//! the tower layer: the correlation ID crosses the hop, is echoed back, and
//! untrusted inbound values never reach the logs.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use observe::correlation::http::{Propagator, TRACEPARENT, X_CORRELATION_ID};
use observe::correlation::tower::CorrelationLayer;
use observe::log::JsonLayer;
use observe::monitor_performance;
use observe::sink::CaptureSink;
use serde_json::Value;
use tracing_subscriber::layer::SubscriberExt as _;

type HttpClient =
    Client<hyper_util::client::legacy::connect::HttpConnector, Empty<axum::body::Bytes>>;

#[monitor_performance("inventory.lookup")]
async fn lookup() -> &'static str {
    tracing::info!("looking up");
    "42"
}

#[monitor_performance("gateway.handle")]
async fn gateway(State((client, downstream)): State<(Arc<HttpClient>, SocketAddr)>) -> String {
    let mut req = http::Request::get(format!("http://{downstream}/item"))
        .body(Empty::new())
        .expect("request");
    observe::correlation::http::inject(req.headers_mut());
    let res = client.request(req).await.expect("downstream answers");
    let body = res.into_body().collect().await.expect("body").to_bytes();
    String::from_utf8_lossy(&body).into_owned()
}

/// Runs a service on its own thread and runtime, with a thread-scoped
/// subscriber naming `service`, writing into `sink`.
fn serve(
    service: &'static str,
    sink: CaptureSink,
    app: impl FnOnce() -> Router + Send + 'static,
) -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let subscriber = tracing_subscriber::registry()
            .with(tracing_subscriber::filter::LevelFilter::INFO)
            .with(JsonLayer::new(service).with_sink(sink));
        let _default = tracing::subscriber::set_default(subscriber);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            tx.send(listener.local_addr().expect("addr"))
                .expect("send addr");
            axum::serve(listener, app().layer(CorrelationLayer::default()))
                .await
                .expect("serve");
        });
    });
    rx.recv().expect("service started")
}

struct Services {
    gateway: SocketAddr,
    sink: CaptureSink,
    client: HttpClient,
    rt: tokio::runtime::Runtime,
}

impl Services {
    fn start() -> Self {
        let sink = CaptureSink::new();
        let downstream = serve("inventory", sink.clone(), || {
            Router::new().route("/item", get(lookup))
        });
        let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
        let shared = (Arc::new(client.clone()), downstream);
        let gateway = serve("gateway", sink.clone(), move || {
            Router::new().route("/", get(gateway)).with_state(shared)
        });
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        Self {
            gateway,
            sink,
            client,
            rt,
        }
    }

    /// Sends a request with `headers`; returns the echoed ID and the lines
    /// both services wrote for it.
    fn request(&self, headers: &[(&str, &[u8])]) -> (Option<String>, Vec<Value>) {
        let mut req = http::Request::get(format!("http://{}/", self.gateway));
        for (k, v) in headers {
            req = req.header(*k, http::HeaderValue::from_bytes(v).expect("header value"));
        }
        let res = self
            .rt
            .block_on(
                self.client
                    .request(req.body(Empty::new()).expect("request")),
            )
            .expect("response");
        assert!(res.status().is_success());
        let echoed = res
            .headers()
            .get(X_CORRELATION_ID)
            .map(|v| v.to_str().expect("ascii").to_owned());
        let lines = self
            .sink
            .take()
            .iter()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect();
        (echoed, lines)
    }
}

fn ids_and_services(lines: &[Value]) -> (Vec<&str>, Vec<&str>) {
    let mut ids: Vec<&str> = lines
        .iter()
        .map(|l| l["correlation_id"].as_str().expect("id"))
        .collect();
    let mut services: Vec<&str> = lines
        .iter()
        .map(|l| l["service"].as_str().expect("service"))
        .collect();
    ids.dedup();
    services.sort_unstable();
    services.dedup();
    (ids, services)
}

#[test]
fn an_inbound_id_crosses_the_hop_and_is_echoed() {
    let s = Services::start();
    let (echoed, lines) = s.request(&[("x-correlation-id", b"abc-123")]);
    assert_eq!(echoed.as_deref(), Some("abc-123"));
    // inventory: "looking up" + completion; gateway: completion.
    assert_eq!(lines.len(), 3, "{lines:#?}");
    let (ids, services) = ids_and_services(&lines);
    assert_eq!(ids, ["abc-123"]);
    assert_eq!(services, ["gateway", "inventory"]);
}

#[test]
fn a_traceparent_alone_gives_its_trace_id() {
    let s = Services::start();
    let (echoed, lines) = s.request(&[(
        "traceparent",
        b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    )]);
    assert_eq!(echoed.as_deref(), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
    let (ids, services) = ids_and_services(&lines);
    assert_eq!(ids, ["4bf92f3577b34da6a3ce929d0e0e4736"]);
    assert_eq!(services, ["gateway", "inventory"]);
}

#[test]
fn without_headers_one_new_id_spans_both_services() {
    let s = Services::start();
    let (echoed, lines) = s.request(&[]);
    let (ids, services) = ids_and_services(&lines);
    assert_eq!(ids.len(), 1);
    assert_eq!(echoed.as_deref(), Some(ids[0]));
    assert!(ids[0].starts_with("req_"));
    assert_eq!(services.len(), 2);
}

#[test]
fn untrusted_inbound_values_are_replaced_and_never_logged() {
    let s = Services::start();
    let long = "a".repeat(10_000);
    let cases: [&[u8]; 4] = [b"evil\"quote", long.as_bytes(), b"tab\there", b"caf\xe9"];
    for raw in cases {
        let (echoed, lines) = s.request(&[("x-correlation-id", raw)]);
        let (ids, _) = ids_and_services(&lines);
        assert_eq!(ids.len(), 1, "one fresh id for the whole request");
        assert!(ids[0].starts_with("req_"), "{}", ids[0]);
        assert_eq!(echoed.as_deref(), Some(ids[0]));
        let text: String = lines.iter().map(Value::to_string).collect();
        let needle = String::from_utf8_lossy(&raw[..raw.len().min(64)]).into_owned();
        assert!(
            !text.contains(&needle) && !text.contains("evil"),
            "raw value leaked: {text}"
        );
    }
    // A newline cannot even be carried in an HTTP header value.
    assert!(http::HeaderValue::from_bytes(b"a\nb").is_err());
    let _ = (Propagator::default(), TRACEPARENT);
}
