//! The OTLP exporter against a local OTLP/HTTP receiver: spans and log
//! records as a collector decodes them, gzip, retries and refusals, a
//! collector that comes late or never, and the `OTEL_*` variables.
//!
//! Each test logs through a dispatch of its own (`with_default`) into an
//! exporter and a receiver of its own, so tests run in parallel in one
//! process; the one test that installs observe globally does it in a child
//! process.

mod delivery;
#[path = "../support/harness.rs"]
mod harness;
mod install;
mod logs;
mod receiver;
mod spans;

use std::sync::Arc;
use std::time::Duration;

use observe::log::JsonLayer;
use observe::sink::{CaptureSink, FanOut};
use observe_runtime::otlp::{OtlpConfig, OtlpExporter};
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use tracing_subscriber::layer::SubscriberExt as _;

use receiver::Receiver;

/// Spans and records to `r`, metrics off, quick retries.
pub(crate) fn config(r: &Receiver) -> OtlpConfig {
    OtlpConfig::new(r.url())
        .metrics(false)
        .backoff(Duration::from_millis(10), Duration::from_millis(200))
}

/// A dispatch whose JSON lines go to `capture` and, as log records, to
/// `exporter`, and whose calls become its spans.
pub(crate) fn dispatch(exporter: &OtlpExporter, capture: &CaptureSink) -> tracing::Dispatch {
    let fan = FanOut::new(vec![Arc::new(capture.clone()), Arc::new(exporter.clone())]);
    let mut layer = JsonLayer::new("otlp-test").with_sink(fan);
    if let Some(spans) = exporter.call_consumer() {
        layer = layer.with_call_consumer(spans);
    }
    tracing::Dispatch::new(tracing_subscriber::registry().with(layer))
}

/// Starts an exporter for `config`.
pub(crate) fn exporter(config: &OtlpConfig) -> OtlpExporter {
    OtlpExporter::start("otlp-test", Some("1.2.3"), config).expect("the exporter starts")
}

/// The attribute `key` of `attrs`.
pub(crate) fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a Value> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
}

/// `bytes` as lowercase hex, as the JSON lines write IDs.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The parsed JSON lines of `capture`.
pub(crate) fn lines(capture: &CaptureSink) -> Vec<serde_json::Value> {
    capture
        .lines()
        .iter()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}
