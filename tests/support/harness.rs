//! Polling, and the global debugging recorder that sink workers and
//! supervised threads publish their counters to.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use metrics_util::debugging::{DebuggingRecorder, Snapshotter};

/// Polls `f` every 20 ms until it is true or `limit` passes; returns
/// whether it became true.
pub(crate) fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

/// Installs (once per test binary) a global debugging recorder. Its
/// snapshots reset its counters: callers keep running totals.
pub(crate) fn recorder() -> &'static Snapshotter {
    static SNAPSHOTTER: OnceLock<Snapshotter> = OnceLock::new();
    SNAPSHOTTER.get_or_init(|| {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::set_global_recorder(recorder).expect("no other recorder in this binary");
        snapshotter
    })
}
