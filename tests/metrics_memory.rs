//! What the operation metrics cost in memory: 10,000 operations, each
//! recorded from two threads (so each has its shared block and two
//! per-thread blocks), grow the resident set by a bounded amount, and the
//! exposition still renders every one. The builder installs globally, so
//! this binary holds a single test.

use std::time::Duration;

use observe::Observe;
use observe::sink::CaptureSink;

const OPERATIONS: usize = 10_000;

/// Resident set size in bytes, from `/proc/self/statm` (Linux).
fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

#[test]
fn ten_thousand_operations_from_two_threads_stay_within_their_budget() {
    let guard = Observe::builder("memory")
        .sink(CaptureSink::new())
        .install()
        .expect("install");
    let names: Vec<String> = (0..OPERATIONS).map(|i| format!("op{i:05}")).collect();
    // The label sets a monitored call records, through the `metrics`
    // facade as any recorder user would.
    let record = |name: &str| {
        let labels = [
            ("operation", name.to_owned()),
            ("status", "success".to_owned()),
        ];
        metrics::counter!("operation_calls_total", &labels).increment(1);
        metrics::histogram!("operation_duration_seconds", &labels)
            .record(Duration::from_millis(3).as_secs_f64());
    };
    // Warm up what is allocated once, before the first reading.
    record("warm");
    let before = rss_bytes();
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                for name in &names {
                    record(name);
                }
            });
        }
    });
    let after = rss_bytes();
    let text = guard.render().expect("prometheus is on");
    let counts = text
        .lines()
        .filter(|l| l.starts_with("operation_duration_seconds_count{") && l.ends_with(" 2"))
        .count();
    assert_eq!(counts, OPERATIONS, "every operation has both calls");
    if let (Some(before), Some(after)) = (before, after) {
        let grown = after.saturating_sub(before);
        let per_operation = grown / OPERATIONS as u64;
        // Printed for the record (docs/operations.md quotes it); the bound
        // is the cells (a 640-byte shared block, the slot table and two
        // 384-byte thread blocks) plus the recorder's map entry, with room
        // for the allocator.
        eprintln!(
            "rss grew {} KiB for {OPERATIONS} operations: {per_operation} bytes each",
            grown / 1024
        );
        assert!(
            per_operation < 8 * 1024,
            "{per_operation} bytes per operation"
        );
    }
}
