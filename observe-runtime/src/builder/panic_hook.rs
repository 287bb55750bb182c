//! A panic hook that gets a panic's line out of the process.
//!
//! With `panic = "abort"` a panicking monitored call never unwinds: its
//! guard writes no line, the install guard never drops, and the lines
//! still queued die with the process. The hook runs before the abort, so
//! it writes one `ERROR` line for the panic and flushes the sinks, bounded,
//! then hands over to the hook that was installed before it (the default
//! one prints the message to stderr).

use std::panic;
use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::base::supervise;
use crate::log::Sink;

/// Longest the hook waits for the sinks: a panicking process should end
/// promptly, whatever the flush timeout.
pub(super) const MAX_PANIC_FLUSH: Duration = Duration::from_secs(2);

/// Chains the hook in front of the current one. It holds the sink weakly:
/// once the install guard is dropped it does nothing but call on.
pub(super) fn install(sink: &Arc<dyn Sink>, timeout: Duration) {
    let sink: Weak<dyn Sink> = Arc::downgrade(sink);
    let timeout = timeout.min(MAX_PANIC_FLUSH);
    let previous = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        // A panic in a sink's own worker must not wait on that worker;
        // those are caught, counted and reported by their supervisor.
        if !supervise::on_own_thread() {
            if let Some(sink) = sink.upgrade() {
                let thread = std::thread::current();
                let thread = thread.name().unwrap_or("unnamed");
                let message = supervise::panic_message(info.payload());
                let location = info
                    .location()
                    .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
                    .unwrap_or_default();
                // With `panic = "abort"` the request's root never ends:
                // its held lines go out now, before the panic's own.
                crate::log::hold::close(|| true);
                tracing::error!(
                    target: "observe::panic",
                    thread,
                    location,
                    "thread '{thread}' panicked: {message}"
                );
                sink.flush(timeout);
            }
        }
        previous(info);
    }));
}
