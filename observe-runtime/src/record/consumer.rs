//! How a record reaches its consumers: through the current subscriber.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tracing_core::field::Value;
use tracing_core::{Event, dispatcher};

use super::CallRecord;

/// Reads every finished monitored call of the subscriber it is part of.
///
/// Called on the thread that ran the call, inside its correlation scope,
/// right after the call's metrics are recorded. It must not block: a
/// consumer that ships data hands it to a queue.
pub trait CallConsumer: Send + Sync + 'static {
    /// One finished call.
    fn on_call(&self, call: &CallRecord<'_>);

    /// Whether this consumer also reads calls whose line is not written
    /// (held back by a level filter, sampling or a rate limit); such calls
    /// have [`CallRecord::is_logged`] false. A span exporter wants them:
    /// every call is a span, logged or not. While any consumer of any
    /// layer wants them, every monitored call is recorded.
    fn wants_unlogged_calls(&self) -> bool {
        false
    }
}

/// Whether some layer has a consumer of unlogged calls: set once, never
/// cleared (a guard only reads it where nothing else made it record).
static UNLOGGED_WANTED: AtomicBool = AtomicBool::new(false);

/// Whether finished calls whose line is not written are still wanted.
#[inline]
pub(crate) fn unlogged_wanted() -> bool {
    UNLOGGED_WANTED.load(Ordering::Relaxed)
}

/// The consumers of one subscriber. The layer that holds them answers
/// `downcast_raw` for this type, so a guard finds them in whatever
/// subscriber is current (global, thread-scoped, or a test's), with no
/// registry of its own.
#[derive(Clone)]
pub(crate) struct Consumers {
    all: Arc<[Arc<dyn CallConsumer>]>,
    /// Those of `all` that also read unlogged calls.
    unlogged: Arc<[Arc<dyn CallConsumer>]>,
}

impl Consumers {
    pub(crate) fn new(consumers: Vec<Arc<dyn CallConsumer>>) -> Self {
        let unlogged: Arc<[_]> = consumers
            .iter()
            .filter(|c| c.wants_unlogged_calls())
            .cloned()
            .collect();
        if !unlogged.is_empty() {
            UNLOGGED_WANTED.store(true, Ordering::Relaxed);
        }
        Self {
            all: consumers.into(),
            unlogged,
        }
    }

    fn deliver(&self, call: &CallRecord<'_>) {
        let consumers = if call.logged {
            &self.all
        } else {
            &self.unlogged
        };
        for c in consumers.iter() {
            c.on_call(call);
        }
    }
}

impl fmt::Debug for Consumers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{} call consumer(s)]", self.all.len())
    }
}

/// Hands a call whose line is not written to the consumers of the current
/// subscriber that want such calls; no `tracing` event is dispatched.
#[cold]
#[inline(never)]
pub(crate) fn emit_unlogged(call: &CallRecord<'_>) {
    dispatcher::get_default(|current| {
        if let Some(consumers) = current.downcast_ref::<Consumers>() {
            consumers.deliver(call);
        }
    });
}

/// Hands `call` to the current subscriber's consumers, then dispatches it
/// as a `tracing` event for every other layer. The caller has checked that
/// the event's level is enabled.
pub(crate) fn emit(call: &CallRecord<'_>) {
    let meta = call.meta;
    let fields = meta.fields();
    let mut it = fields.iter();
    let (
        Some(f_message),
        Some(f_operation),
        Some(f_status),
        Some(f_duration),
        Some(f_error_type),
        Some(f_context),
        Some(f_threshold),
    ) = (
        it.next(),
        it.next(),
        it.next(),
        it.next(),
        it.next(),
        it.next(),
        it.next(),
    )
    else {
        return;
    };
    let message = tracing_core::field::display(call.message());
    let status = call.status.as_str();
    let error_type = call.error.as_ref().map(|e| e.type_name);
    let values: [(&tracing_core::Field, Option<&dyn Value>); 7] = [
        (&f_message, Some(&message)),
        (&f_operation, Some(&call.operation)),
        (&f_status, Some(&status)),
        (&f_duration, Some(&call.duration_ns)),
        (&f_error_type, error_type.as_ref().map(|v| v as &dyn Value)),
        (&f_context, call.context.as_ref().map(|v| v as &dyn Value)),
        (
            &f_threshold,
            call.slow_threshold_ns.as_ref().map(|v| v as &dyn Value),
        ),
    ];
    let values = fields.value_set(&values);
    dispatcher::get_default(|current| {
        if let Some(consumers) = current.downcast_ref::<Consumers>() {
            consumers.deliver(call);
        }
        current.event(&Event::new(meta, &values));
    });
}
