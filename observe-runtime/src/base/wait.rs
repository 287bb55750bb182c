//! Tests' polling: waits for something another thread does, with the
//! patience of a loaded machine.

use std::time::{Duration, Instant};

/// Polls `done` every 5 ms until it holds; panics naming `what` after
/// 10 s.
pub(crate) fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}
