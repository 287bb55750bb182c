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

/// The span ids of one request's lines: `(service, operation or message,
/// trace_id, span_id, parent_span_id)`.
fn spans(lines: &[Value]) -> Vec<(String, String, String, String, Option<String>)> {
    lines
        .iter()
        .map(|l| {
            let text = |v: &Value| v.as_str().map(str::to_owned);
            (
                text(&l["service"]).expect("service"),
                text(&l["performance"]["operation"])
                    .or_else(|| text(&l["message"]))
                    .expect("what"),
                text(&l["trace_id"]).expect("every line has a trace id"),
                text(&l["span_id"]).expect("every line here is inside a call"),
                text(&l["parent_span_id"]),
            )
        })
        .collect()
}

#[test]
fn one_request_is_one_trace_whose_spans_link_across_the_hop() {
    let s = Services::start();
    let inbound_parent = "00f067aa0ba902b7";
    let (_, lines) = s.request(&[(
        "traceparent",
        format!("00-4bf92f3577b34da6a3ce929d0e0e4736-{inbound_parent}-01").as_bytes(),
    )]);
    let spans = spans(&lines);
    let find = |what: &str| {
        spans
            .iter()
            .find(|s| s.1 == what)
            .unwrap_or_else(|| panic!("no line for {what}: {spans:#?}"))
    };
    let gateway = find("gateway.handle");
    let lookup = find("inventory.lookup");
    let looking = find("looking up");
    for s in &spans {
        assert_eq!(s.2, "4bf92f3577b34da6a3ce929d0e0e4736", "{s:?}");
    }
    // The gateway's call is a child of the caller's span; the downstream
    // call a child of the gateway's call, through the outbound traceparent.
    assert_eq!(gateway.4.as_deref(), Some(inbound_parent));
    assert_eq!(lookup.4.as_deref(), Some(gateway.3.as_str()));
    // A line inside a call carries that call's span, and no parent.
    assert_eq!((&looking.3, &looking.4), (&lookup.3, &None));
    assert_ne!(gateway.3, lookup.3);
}

#[test]
fn without_a_traceparent_both_services_derive_one_trace_from_the_id() {
    let s = Services::start();
    let (_, lines) = s.request(&[("x-correlation-id", b"abc-123")]);
    let spans = spans(&lines);
    let traces: std::collections::BTreeSet<_> = spans.iter().map(|s| s.2.clone()).collect();
    assert_eq!(traces.len(), 1, "{spans:#?}");
    let gateway = spans
        .iter()
        .find(|s| s.1 == "gateway.handle")
        .expect("gateway");
    let lookup = spans
        .iter()
        .find(|s| s.1 == "inventory.lookup")
        .expect("lookup");
    assert_eq!(gateway.4, None, "the root of the trace has no parent");
    assert_eq!(lookup.4.as_deref(), Some(gateway.3.as_str()));
}
