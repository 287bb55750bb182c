//! A test kit: run code with a private subscriber and metrics recorder and
//! get back the parsed JSON lines and a metrics snapshot.
//!
//! Nothing global is touched: the subscriber and recorder are scoped to the
//! current thread (and, for futures, to each poll), so tests using it can
//! run in parallel in one test binary.
//!
//! ```
//! use observe_runtime::testing;
//!
//! let captured = testing::capture(|| tracing::info!(user = "ada", "signed in"));
//! assert_eq!(captured.lines.len(), 1);
//! assert_eq!(captured.lines[0]["message"], "signed in");
//! assert_eq!(captured.lines[0]["context"]["user"], "ada");
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use tracing::Dispatch;
use tracing_subscriber::layer::SubscriberExt;

use crate::log::JsonLayer;
use crate::sink::CaptureSink;

/// Service name of the lines the kit captures.
pub const SERVICE: &str = "test";

/// What a captured run produced.
#[derive(Debug)]
pub struct Captured<T> {
    /// The closure's or future's output.
    pub output: T,
    /// Every line written, parsed.
    pub lines: Vec<serde_json::Value>,
    /// Every line written, as text (without the trailing newline).
    pub raw_lines: Vec<String>,
    /// The metrics recorded.
    pub metrics: Snapshot,
}

/// A snapshot of recorded metrics, looked up by name and labels.
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    entries: Vec<Entry>,
}

#[derive(Debug, Clone)]
struct Entry {
    name: String,
    labels: Vec<(String, String)>,
    value: Value,
}

#[derive(Debug, Clone)]
enum Value {
    Counter(u64),
    Gauge(f64),
    Histogram(Vec<f64>),
}

impl Snapshot {
    fn find(&self, name: &str, labels: &[(&str, &str)]) -> Option<&Value> {
        self.entries
            .iter()
            .find(|e| {
                e.name == name
                    && e.labels.len() == labels.len()
                    && labels
                        .iter()
                        .all(|(k, v)| e.labels.iter().any(|(ek, ev)| ek == k && ev == v))
            })
            .map(|e| &e.value)
    }

    /// The counter with exactly these labels.
    #[must_use]
    pub fn counter(&self, name: &str, labels: &[(&str, &str)]) -> Option<u64> {
        match self.find(name, labels)? {
            Value::Counter(v) => Some(*v),
            _ => None,
        }
    }

    /// The gauge with exactly these labels.
    #[must_use]
    pub fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        match self.find(name, labels)? {
            Value::Gauge(v) => Some(*v),
            _ => None,
        }
    }

    /// The samples of the histogram with exactly these labels.
    #[must_use]
    pub fn histogram(&self, name: &str, labels: &[(&str, &str)]) -> Option<&[f64]> {
        match self.find(name, labels)? {
            Value::Histogram(v) => Some(v),
            _ => None,
        }
    }

    /// Names and labels of every metric recorded, for failure messages.
    #[must_use]
    pub fn keys(&self) -> Vec<String> {
        self.entries
            .iter()
            .map(|e| {
                let labels: Vec<String> =
                    e.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!("{}{{{}}}", e.name, labels.join(","))
            })
            .collect()
    }

    fn take(snapshotter: &Snapshotter) -> Self {
        let entries = snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .map(|(key, _, _, value)| {
                let (_, key) = key.into_parts();
                let (name, labels) = key.into_parts();
                Entry {
                    name: name.as_str().to_owned(),
                    labels: labels
                        .into_iter()
                        .map(|l| (l.key().to_owned(), l.value().to_owned()))
                        .collect(),
                    value: match value {
                        DebugValue::Counter(v) => Value::Counter(v),
                        DebugValue::Gauge(v) => Value::Gauge(v.into_inner()),
                        DebugValue::Histogram(v) => {
                            Value::Histogram(v.into_iter().map(|x| x.into_inner()).collect())
                        }
                    },
                }
            })
            .collect();
        Self { entries }
    }
}

/// The private subscriber and recorder of one capture.
struct Kit {
    sink: CaptureSink,
    dispatch: Dispatch,
    recorder: Arc<DebuggingRecorder>,
    snapshotter: Snapshotter,
}

impl Kit {
    fn new() -> Self {
        let sink = CaptureSink::new();
        let subscriber =
            tracing_subscriber::registry().with(JsonLayer::new(SERVICE).with_sink(sink.clone()));
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        Self {
            sink,
            dispatch: Dispatch::new(subscriber),
            recorder: Arc::new(recorder),
            snapshotter,
        }
    }

    fn run<R>(&self, f: impl FnOnce() -> R) -> R {
        tracing::dispatcher::with_default(&self.dispatch, || {
            metrics::with_local_recorder(&*self.recorder, f)
        })
    }

    fn finish<T>(self, output: T) -> Captured<T> {
        let raw_lines = self.sink.take();
        let lines = raw_lines
            .iter()
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| {
                    serde_json::Value::String(format!("invalid JSON line ({e}): {l}"))
                })
            })
            .collect();
        Captured {
            output,
            lines,
            raw_lines,
            metrics: Snapshot::take(&self.snapshotter),
        }
    }
}

/// Runs `f` with a private JSON layer and metrics recorder on this thread.
///
/// A line that is not valid JSON appears in `lines` as a JSON string
/// starting with `invalid JSON line`, so assertions on it fail loudly.
pub fn capture<R>(f: impl FnOnce() -> R) -> Captured<R> {
    let kit = Kit::new();
    let output = kit.run(f);
    kit.finish(output)
}

/// Runs `future` with a private JSON layer and metrics recorder set on
/// every poll, on whichever thread polls it.
///
/// Work the future hands to other tasks or threads is not captured.
pub async fn capture_async<F: Future>(future: F) -> Captured<F::Output> {
    let kit = Kit::new();
    let output = Scoped {
        kit: &kit,
        inner: future,
    }
    .await;
    kit.finish(output)
}

pin_project_lite::pin_project! {
    struct Scoped<'a, F> {
        kit: &'a Kit,
        #[pin]
        inner: F,
    }
}

impl<F: Future> Future for Scoped<'_, F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let inner = this.inner;
        this.kit.run(|| inner.poll(cx))
    }
}
