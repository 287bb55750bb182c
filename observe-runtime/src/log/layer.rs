//! The `tracing_subscriber::Layer` that turns events and finished calls
//! into JSON lines.

use std::any::TypeId;
use std::fmt;
use std::sync::Arc;

use tracing_core::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

use super::writer::LineWriter;
use super::{DirectStdout, Sink};
use crate::record::{self, CallConsumer, Consumers};

/// Default cap on one line's length, in bytes; collectors commonly split
/// or refuse lines past 64 KiB.
pub const DEFAULT_MAX_LINE_BYTES: usize = 32 * 1024;

/// Formats every event, and every finished monitored call, as one JSON line
/// of the observe schema and hands it to a [`Sink`].
///
/// Monitored calls reach the layer as [call records](crate::record): it is
/// their first [`CallConsumer`]. One `JsonLayer` per subscriber receives
/// them (the outermost); to write lines to several places, give it a
/// [`FanOut`](crate::sink::FanOut).
///
/// ```
/// use observe_runtime::log::JsonLayer;
/// use observe_runtime::sink::CaptureSink;
/// use tracing_subscriber::layer::SubscriberExt;
///
/// let capture = CaptureSink::new();
/// let subscriber = tracing_subscriber::registry()
///     .with(JsonLayer::new("billing").with_sink(capture.clone()));
/// tracing::subscriber::with_default(subscriber, || {
///     tracing::info!(invoice = 42, "invoice sent");
/// });
/// let line: serde_json::Value = serde_json::from_str(&capture.lines()[0]).unwrap();
/// assert_eq!(line["service"], "billing");
/// assert_eq!(line["message"], "invoice sent");
/// assert_eq!(line["context"]["invoice"], 42);
/// ```
#[derive(Clone)]
pub struct JsonLayer {
    writer: Arc<LineWriter>,
    /// Consumers added with [`with_call_consumer`](Self::with_call_consumer).
    others: Vec<Arc<dyn CallConsumer>>,
    /// The writer, then the others: what a monitored call finds.
    consumers: Consumers,
}

impl fmt::Debug for JsonLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonLayer")
            .field("writer", &self.writer)
            .field("consumers", &self.consumers)
            .finish()
    }
}

impl JsonLayer {
    /// A layer for `service` writing to standard output, directly from the
    /// logging thread; give it a queued
    /// [`StdoutSink`](crate::sink::StdoutSink) with `with_sink` so that a
    /// full pipe never makes a caller wait (the builder does).
    #[must_use]
    pub fn new(service: &str) -> Self {
        let writer = LineWriter::new(service, Arc::new(DirectStdout), DEFAULT_MAX_LINE_BYTES);
        Self::assemble(writer, Vec::new())
    }

    fn assemble(writer: LineWriter, others: Vec<Arc<dyn CallConsumer>>) -> Self {
        let writer = Arc::new(writer);
        let mut all: Vec<Arc<dyn CallConsumer>> = vec![writer.clone()];
        all.extend(others.iter().cloned());
        Self {
            writer,
            others,
            consumers: Consumers::new(all),
        }
    }

    /// The same layer with its writer's settings changed by `f`.
    fn map_writer(self, f: impl FnOnce(&mut LineWriter)) -> Self {
        let mut writer = (*self.writer).clone();
        f(&mut writer);
        Self::assemble(writer, self.others)
    }

    /// Sends lines to `sink` instead of standard output.
    #[must_use]
    pub fn with_sink(self, sink: impl Sink) -> Self {
        self.with_shared_sink(Arc::new(sink))
    }

    /// Sends lines to a shared sink.
    #[must_use]
    pub fn with_shared_sink(self, sink: Arc<dyn Sink>) -> Self {
        self.map_writer(|w| w.sink = sink)
    }

    /// Caps each line at `bytes` (at least 1024); longer lines keep their
    /// schema but have their message cut and their context replaced by
    /// `{"truncated":true,"original_bytes":N}`.
    #[must_use]
    pub fn with_max_line_bytes(self, bytes: usize) -> Self {
        self.map_writer(|w| w.set_max_line_bytes(bytes.max(1024)))
    }

    /// Also hands every finished monitored call to `consumer`, after the
    /// layer has written its line.
    #[must_use]
    pub fn with_call_consumer(mut self, consumer: Arc<dyn CallConsumer>) -> Self {
        self.others.push(consumer);
        Self::assemble(Arc::unwrap_or_clone(self.writer), self.others)
    }

    /// The sink lines go to.
    #[must_use]
    pub fn sink(&self) -> &Arc<dyn Sink> {
        &self.writer.sink
    }
}

impl<S: Subscriber> Layer<S> for JsonLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        // A monitored call's event: its line was written from its record.
        if event.metadata().name() == record::EVENT_NAME {
            return;
        }
        self.writer.write_event(event);
    }

    // `downcast_raw` is how a subscriber hands out its parts by type (as
    // `tracing-opentelemetry` hands out its context); it is an `unsafe fn`
    // in the trait. This implementation only returns pointers to `self` and
    // to a field of `self`, which live as long as the layer, as the trait
    // requires.
    #[allow(unsafe_code)]
    unsafe fn downcast_raw(&self, id: TypeId) -> Option<*const ()> {
        if id == TypeId::of::<Self>() {
            Some(std::ptr::from_ref(self).cast())
        } else if id == TypeId::of::<Consumers>() {
            Some(std::ptr::from_ref(&self.consumers).cast())
        } else {
            None
        }
    }
}
