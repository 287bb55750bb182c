//! What a collector or a file received: its lines, waited for, and parsed.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The lines of `path` (empty if it does not exist yet).
pub(crate) fn read_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .map(|s| s.lines().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// Waits until `path` has at least `expected` lines, or its count has not
/// changed for `quiet` (or `limit` has passed), and returns them. Tests
/// assert on what arrived, not on how long it took.
pub(crate) fn wait_for_lines(
    path: &Path,
    expected: usize,
    quiet: Duration,
    limit: Duration,
) -> Vec<String> {
    let start = Instant::now();
    let mut last = usize::MAX;
    let mut last_change = Instant::now();
    loop {
        let lines = read_lines(path);
        if lines.len() >= expected || start.elapsed() > limit {
            return lines;
        }
        if lines.len() != last {
            last = lines.len();
            last_change = Instant::now();
        } else if last_change.elapsed() > quiet {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Parses every line as a JSON object; panics naming the first that is not.
pub(crate) fn parse_all(lines: &[String]) -> Vec<Value> {
    lines
        .iter()
        .map(|l| {
            let v: Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
            assert!(v.is_object(), "not an object: {l}");
            v
        })
        .collect()
}
