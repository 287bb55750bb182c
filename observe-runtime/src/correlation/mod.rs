//! Correlation IDs: one ID ties together every log line a request causes.
//!
//! The outermost monitored call with no current ID starts a scope whose ID
//! is generated on first use; nested calls, also across `.await`, share it.
//! Where no subscriber enables any level at all, monitored calls open no
//! scope (no line could carry the ID); an explicit [`scope`] always works.
//! [`scope`] sets an ID for synchronous code and
//! [`FutureExt::with_correlation`] for a future.
//!
//! A bare `std::thread::spawn` or `tokio::spawn` does **not** inherit the
//! current ID: use [`thread::spawn`] and (feature `tokio`) `spawn` /
//! `spawn_blocking`, which do; or capture it with [`current`] and enter it
//! with [`scope`] or [`FutureExt::with_correlation`].
//!
//! Across services (feature `http`), `http::extract` and `http::inject`
//! read and write `X-Correlation-ID` and W3C `traceparent`; the `tower`
//! feature adds a server layer that does both per request.

mod context;
#[cfg(feature = "http")]
pub mod http;
mod id;
pub(crate) mod span;
mod task;
#[cfg(feature = "tower")]
pub mod tower;

use std::sync::atomic::{AtomicU8, Ordering};

pub use context::{FutureExt, WithCorrelation, current, scope};
pub(crate) use context::{
    Slot, close_root, current_at, current_or_fresh_at, current_trace_at, in_slot, in_slot_then,
    join_slot, open_root, write_current_or_fresh_at, write_current_text_at,
};
pub(crate) use id::TraceContext;
#[cfg(feature = "otlp")]
pub(crate) use id::lower_hex;
pub(crate) use id::random_u64;
#[cfg(test)]
pub(crate) use id::text_trace_id;
pub use id::{CorrelationId, IdFormat, MAX_LEN, ParseCorrelationIdError};
pub use task::thread;
#[cfg(feature = "tokio")]
pub use task::{spawn, spawn_blocking};

static ID_FORMAT: AtomicU8 = AtomicU8::new(0);

/// Sets the form of every correlation ID generated from now on, process-wide.
pub fn set_id_format(format: IdFormat) {
    let v = match format {
        IdFormat::Request => 0,
        IdFormat::UuidV7 => 1,
    };
    ID_FORMAT.store(v, Ordering::Relaxed);
}

/// The form new correlation IDs take.
#[must_use]
pub fn id_format() -> IdFormat {
    match ID_FORMAT.load(Ordering::Relaxed) {
        1 => IdFormat::UuidV7,
        _ => IdFormat::Request,
    }
}
