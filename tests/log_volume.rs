//! Log volume end to end. Sampling: with `sample = 0.01`, 20,000
//! successful calls write about 1 % of their lines, every error line is
//! written, and `operation_calls_total` counts every call; a child process
//! (this binary with `--role child`) sampling the same correlation IDs keeps
//! exactly the same requests. Rate limit: 100 lines/s over a 10 s flood of
//! about 10,000 calls/s writes about 1,000 lines, counts the rest in
//! `log_lines_suppressed_total`, and sums them up once the flood is over.
//! Installs globally: one test, `harness = false`.

#[path = "support/single_test.rs"]
mod support;

use std::collections::BTreeSet;
use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use observe::correlation::{self, CorrelationId};
use observe::sink::CaptureSink;
use observe::{Observe, monitor_performance};

#[monitor_performance("volume.sampled", sample = 0.01)]
fn sampled(i: u64) -> Result<u64, String> {
    if i % 100 == 7 {
        Err(format!("bad {i}"))
    } else {
        Ok(i)
    }
}

/// Sampled at 10 % by the builder, here and in the child.
#[monitor_performance("volume.request")]
fn request(i: u64) -> u64 {
    i
}

#[monitor_performance("volume.limited")]
fn limited(i: u64) -> u64 {
    i
}

fn main() -> std::process::ExitCode {
    if std::env::args().any(|a| a == "--role") {
        child();
        return std::process::ExitCode::SUCCESS;
    }
    support::run_single_test(
        "sampling_keeps_whole_requests_and_the_rate_limit_counts_what_it_suppresses",
        sampling_keeps_whole_requests_and_the_rate_limit_counts_what_it_suppresses,
    )
}

/// Reads correlation IDs on stdin, one request each; its lines go to
/// stdout (the default sink).
fn child() {
    let _guard = Observe::builder("volume-child")
        .sample("volume.request", 0.1)
        .install()
        .expect("install");
    for line in std::io::stdin().lock().lines() {
        let Ok(id) = line.expect("stdin").parse::<CorrelationId>() else {
            continue;
        };
        correlation::scope(id, || request(1));
    }
}

fn ids_of(lines: &[String], operation: &str) -> Vec<String> {
    lines
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l["performance"]["operation"] == operation)
        .filter_map(|l| l["correlation_id"].as_str().map(str::to_owned))
        .collect()
}

fn counter(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

fn sampling_keeps_whole_requests_and_the_rate_limit_counts_what_it_suppresses() {
    let lines = CaptureSink::new();
    let guard = Observe::builder("volume")
        .sink(lines.clone())
        .sample("volume.request", 0.1)
        .rate_limit("volume.limited", 100)
        .install()
        .expect("install");

    // --- sample = 0.01 on the attribute; each call its own request.
    for i in 0..20_000 {
        let _ = sampled(i);
    }
    let written = lines.take();
    let statuses: Vec<String> = written
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l["performance"]["operation"] == "volume.sampled")
        .filter_map(|l| l["performance"]["status"].as_str().map(str::to_owned))
        .collect();
    let errors = statuses.iter().filter(|s| *s == "error").count();
    let successes = statuses.iter().filter(|s| *s == "success").count();
    println!("sample = 0.01: {successes} of 19800 success lines, {errors} of 200 error lines");
    assert_eq!(errors, 200, "every error line is written");
    assert!(
        (100..=300).contains(&successes),
        "{successes} success lines"
    );
    let text = guard.render().expect("prometheus is on");
    let calls = counter(
        &text,
        "operation_calls_total{service=\"volume\",operation=\"volume.sampled\",status=\"success\"}",
    ) + counter(
        &text,
        "operation_calls_total{service=\"volume\",operation=\"volume.sampled\",status=\"error\"}",
    );
    assert_eq!(calls, 20_000.0, "metrics count every call");

    // --- The same requests in two processes: the same ones are kept.
    let mut child = Command::new(std::env::current_exe().expect("exe"))
        .arg("--role")
        .arg("child")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the child");
    let ids: Vec<CorrelationId> = (0..2_000).map(|_| CorrelationId::generate()).collect();
    {
        let mut stdin = child.stdin.take().expect("stdin");
        for id in &ids {
            correlation::scope(id.clone(), || request(1));
            writeln!(stdin, "{id}").expect("to the child");
        }
    }
    let out = BufReader::new(child.stdout.take().expect("stdout"))
        .lines()
        .map(|l| l.expect("a line"))
        .collect::<Vec<_>>();
    assert!(child.wait().expect("child").success());
    let here: BTreeSet<String> = ids_of(&lines.take(), "volume.request")
        .into_iter()
        .collect();
    let there: BTreeSet<String> = ids_of(&out, "volume.request").into_iter().collect();
    println!(
        "10 % sampling of 2000 requests in two processes: {} kept here, {} there",
        here.len(),
        there.len()
    );
    assert!((100..=300).contains(&here.len()), "{}", here.len());
    assert_eq!(here, there, "both processes keep the same requests");

    // --- 100 lines/s over a 10 s flood.
    let start = Instant::now();
    let mut calls = 0u64;
    while start.elapsed() < Duration::from_secs(10) {
        for i in 0..100 {
            limited(i);
        }
        calls += 100;
        std::thread::sleep(Duration::from_millis(10));
    }
    // Quiet for a second, then one more call: the flood is over.
    std::thread::sleep(Duration::from_millis(1_100));
    limited(0);
    calls += 1;
    let flood = lines.take();
    let written = ids_of(&flood, "volume.limited").len() as u64;
    let summaries: Vec<&String> = flood
        .iter()
        .filter(|l| l.contains("lines suppressed in the last"))
        .collect();
    let text = guard.render().expect("prometheus is on");
    let suppressed = counter(
        &text,
        "log_lines_suppressed_total{service=\"volume\",operation=\"volume.limited\"}",
    ) as u64;
    println!(
        "rate limit 100/s over {:.1} s: {calls} calls, {written} lines, {suppressed} suppressed, summaries: {summaries:?}",
        start.elapsed().as_secs_f64()
    );
    assert_eq!(written + suppressed, calls, "every line written or counted");
    assert!((900..=1_300).contains(&written), "{written} lines written");
    // One summary when the flood is over; more mid-flood if this thread
    // stalled for a second (the bucket filled up meanwhile). Either
    // way the summaries account for every suppressed line.
    assert!((1..=3).contains(&summaries.len()), "{summaries:?}");
    let summarised: u64 = summaries
        .iter()
        .map(|l| {
            let (_, after) = l
                .split_once("volume.limited: ")
                .unwrap_or_else(|| panic!("{l}"));
            let n = after.split(' ').next().unwrap_or_default();
            n.parse::<u64>()
                .unwrap_or_else(|e| panic!("{n:?}: {e} in {l}"))
        })
        .sum();
    assert_eq!(summarised, suppressed, "{summaries:?}");
}
