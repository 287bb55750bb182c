//! The series policy on a real exposition: an operation that only ever
//! succeeds exposes at most 24 `operation_*` lines; `success` and `error`
//! call counters exist from the first call; other label sets appear on
//! first use. Sums stay exact with many threads writing. The builder
//! installs globally, so this binary holds a single test.

#[path = "support/promtool.rs"]
mod support;

use observe::sink::CaptureSink;
use observe::{Observe, monitor_performance};

#[monitor_performance("series.ok")]
fn always_ok(x: u64) -> u64 {
    x + 1
}

#[monitor_performance("series.flaky")]
fn flaky(x: u64) -> Result<u64, String> {
    if x % 10 == 0 {
        Err("bad".into())
    } else {
        Ok(x)
    }
}

/// The lines of `exposition` that are samples of `operation`.
fn samples<'a>(exposition: &'a str, operation: &str) -> Vec<&'a str> {
    let label = format!("operation=\"{operation}\"");
    exposition
        .lines()
        .filter(|l| l.starts_with("operation_") && l.contains(&label))
        .collect()
}

fn value(exposition: &str, series: &str) -> Option<f64> {
    exposition
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn an_always_successful_operation_exposes_at_most_24_lines() {
    let guard = Observe::builder("series")
        .sink(CaptureSink::new())
        .install()
        .expect("install");
    const THREADS: u64 = 4;
    const CALLS: u64 = 25_000;
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                for i in 0..CALLS {
                    std::hint::black_box(always_ok(i));
                    let _ = flaky(i);
                }
            });
        }
    });
    let text = guard.render().expect("prometheus is on");

    let ok = samples(&text, "series.ok");
    // Two call counters, 16 buckets + `+Inf` + sum + count, the gauge.
    assert_eq!(ok.len(), 22, "{ok:#?}");
    let calls = |op: &str, status: &str| {
        value(
            &text,
            &format!(
                "operation_calls_total{{service=\"series\",operation=\"{op}\",status=\"{status}\"}}"
            ),
        )
    };
    // Exact counts from four threads.
    assert_eq!(
        calls("series.ok", "success"),
        Some((THREADS * CALLS) as f64)
    );
    assert_eq!(
        calls("series.ok", "error"),
        Some(0.0),
        "error counter from the start"
    );
    assert_eq!(
        calls("series.ok", "panic"),
        None,
        "panic appears on first use"
    );
    assert_eq!(calls("series.ok", "cancelled"), None);
    let count = |op: &str, status: &str| {
        value(
            &text,
            &format!(
                "operation_duration_seconds_count{{service=\"series\",operation=\"{op}\",status=\"{status}\"}}"
            ),
        )
    };
    assert_eq!(
        count("series.ok", "success"),
        Some((THREADS * CALLS) as f64)
    );
    assert_eq!(
        count("series.ok", "error"),
        None,
        "no error histogram before an error"
    );
    assert_eq!(
        value(
            &text,
            "operation_in_flight{service=\"series\",operation=\"series.ok\"}"
        ),
        Some(0.0)
    );

    // An operation that fails gets its error histogram with the first error.
    let errors = THREADS * CALLS / 10;
    assert_eq!(calls("series.flaky", "error"), Some(errors as f64));
    assert_eq!(count("series.flaky", "error"), Some(errors as f64));
    assert_eq!(
        count("series.flaky", "success"),
        Some((THREADS * CALLS - errors) as f64)
    );

    assert_eq!(support::promtool_check(&text), "", "promtool check metrics");
}
