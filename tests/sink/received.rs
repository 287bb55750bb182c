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

/// The lines of `path` up to its last newline: a line still being
/// written is not counted, nor parsed, until it is whole.
fn whole_lines(path: &Path) -> Vec<String> {
    let mut bytes = std::fs::read(path).unwrap_or_default();
    let end = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    bytes.truncate(end);
    String::from_utf8_lossy(&bytes)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Waits until `path` has at least `expected` whole lines (or `limit` has
/// passed), and returns them. Tests assert on what arrived, not on how
/// long it took: a collector that pauses is waited for.
pub(crate) fn wait_for_lines(path: &Path, expected: usize, limit: Duration) -> Vec<String> {
    wait_for_whole_lines(path, limit, |lines| lines.len() >= expected)
}

/// Waits until the whole lines of `path` satisfy `done` (or `limit` has
/// passed), and returns them.
pub(crate) fn wait_for_whole_lines(
    path: &Path,
    limit: Duration,
    done: impl Fn(&[String]) -> bool,
) -> Vec<String> {
    let start = Instant::now();
    loop {
        let lines = whole_lines(path);
        if done(&lines) || start.elapsed() > limit {
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
