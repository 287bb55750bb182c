//! Logging through a sink from test threads: the JSON layer over a sink as
//! a dispatch that any thread can set as its default.

use observe::log::JsonLayer;
use observe::sink::Sink;
use tracing::Dispatch;
use tracing_subscriber::layer::SubscriberExt as _;

/// A subscriber writing JSON lines of `service` to `sink`, for
/// `tracing::dispatcher::with_default` on any thread.
pub(crate) fn dispatch(service: &str, sink: impl Sink) -> Dispatch {
    Dispatch::new(tracing_subscriber::registry().with(JsonLayer::new(service).with_sink(sink)))
}

/// Logs from `threads` threads at once, each running `log(thread, seq)` for
/// `seq` in `0..per_thread` with `d` as its dispatcher.
pub(crate) fn log_in_threads(
    d: &Dispatch,
    threads: u64,
    per_thread: u64,
    log: impl Fn(u64, u64) + Sync,
) {
    std::thread::scope(|s| {
        for t in 0..threads {
            let (d, log) = (d.clone(), &log);
            s.spawn(move || {
                tracing::dispatcher::with_default(&d, || {
                    for seq in 0..per_thread {
                        log(t, seq);
                    }
                });
            });
        }
    });
}
