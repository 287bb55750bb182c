//! Turns criterion's estimates from the overhead benches into the table in
//! `benches/RESULTS.md`: ns per call (median) and each observe mode's
//! ratio to the anchors it is measured against.
//!
//! ```text
//! cargo bench --bench overhead --bench overhead_metrics --bench overhead_tracing_json \
//!     --bench overhead_fastrace --bench overhead_observe_metrics_only --bench overhead_observe_full \
//!     --bench overhead_observe_formatted --bench overhead_observe_metrics_no_exemplars \
//!     --bench overhead_otlp
//! cargo run --example bench_report            # writes benches/RESULTS.md
//! ```
//!
//! Criterion's output folder is `$CARGO_TARGET_DIR/criterion` (default
//! `target/criterion`); pass another as the first argument. The benches
//! that are not criterion's (`sink_throughput`, the percentiles of
//! `sink_backpressure`, `scaling`, `benches/compile_time/run.sh`) leave JSON rows in
//! `observe-extra/` beside it; those present are reported too.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// One measured function: `group/function`, median ns per call.
type Medians = BTreeMap<String, f64>;

fn read_medians(dir: &Path, out: &mut Medians) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if !path.is_dir() {
            continue;
        }
        let bench = path.join("new").join("benchmark.json");
        let estimates = path.join("new").join("estimates.json");
        if bench.is_file() && estimates.is_file() {
            let b: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&bench)?)?;
            let e: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&estimates)?)?;
            if let (Some(id), Some(median)) = (
                b["full_id"].as_str(),
                e["median"]["point_estimate"].as_f64(),
            ) {
                out.insert(id.to_owned(), median);
            }
        } else {
            read_medians(&path, out)?;
        }
    }
    Ok(())
}

/// The rows of the table, in reading order: (id, what it measures).
const ROWS: &[(&str, &str)] = &[
    ("baseline/sync", "no instrumentation"),
    ("baseline/async", "no instrumentation"),
    ("clock/std_pair", "two `std::time::Instant::now()` reads"),
    ("clock/quanta_pair", "two `quanta` clock reads"),
    (
        "metrics/with_recorder",
        "the body and `metrics::with_recorder` with no recorder set: the question every monitored call asks",
    ),
    (
        "tracing/no_subscriber/sync",
        "`#[tracing::instrument]`, no subscriber",
    ),
    (
        "tracing/no_subscriber/async",
        "`#[tracing::instrument]`, no subscriber",
    ),
    (
        "tracing/json_sink/sync",
        "`#[tracing::instrument(err)]` + one `info!`, `fmt().json()` into `io::sink`",
    ),
    (
        "tracing/json_sink/async",
        "`#[tracing::instrument(err)]` + one `info!`, `fmt().json()` into `io::sink`",
    ),
    (
        "metrics/macros/sync",
        "`histogram!` + `counter!` with literal keys, std clock, Prometheus recorder",
    ),
    (
        "metrics/handles/sync",
        "the same with handles registered once",
    ),
    (
        "autometrics/sync",
        "`#[autometrics]` (metrics 0.24 backend, Prometheus recorder)",
    ),
    (
        "autometrics/async",
        "`#[autometrics]` (metrics 0.24 backend, Prometheus recorder)",
    ),
    (
        "fastrace/reported/sync",
        "`#[fastrace::trace]` under a root span, every span reported",
    ),
    (
        "fastrace/reported/async",
        "`#[fastrace::trace]` under a root span, every span reported",
    ),
    (
        "hand_written/sync",
        "hand-written: 3 clock reads, cached handles, one `serde_json` line into a reused buffer",
    ),
    (
        "observe/disabled/sync",
        "`#[monitor_performance]`, nothing installed",
    ),
    (
        "observe/disabled/async",
        "`#[monitor_performance]`, nothing installed",
    ),
    (
        "observe/metrics_only/sync",
        "`#[monitor_performance]`, success line filtered out, Prometheus metrics",
    ),
    (
        "observe/metrics_only/async",
        "`#[monitor_performance]`, success line filtered out, Prometheus metrics",
    ),
    (
        "observe/metrics_only_no_exemplars/sync",
        "the same with exemplars off (`.exemplars(false)`)",
    ),
    (
        "observe/metrics_only_no_exemplars/async",
        "the same with exemplars off (`.exemplars(false)`)",
    ),
    (
        "observe/full_json_queued/sync",
        "`#[monitor_performance]`, JSON line queued to the TCP sink, metrics",
    ),
    (
        "observe/full_json_queued/async",
        "`#[monitor_performance]`, JSON line queued to the TCP sink, metrics",
    ),
    (
        "observe/full_json_sampled_out/sync",
        "`#[monitor_performance(sample = 0.0)]`, the same setup: each success line sampled out by its correlation ID",
    ),
    (
        "observe/full_json_sampled_out/async",
        "`#[monitor_performance(sample = 0.0)]`, the same setup: each success line sampled out by its correlation ID",
    ),
    (
        "observe/full_json_filtered/sync",
        "`#[monitor_performance(level = \"debug\")]`, the same setup: each success line below the level",
    ),
    (
        "observe/full_json_filtered/async",
        "`#[monitor_performance(level = \"debug\")]`, the same setup: each success line below the level",
    ),
    (
        "observe/full_json_discarded/sync",
        "the same line handed to a sink that discards it (not a target row: the caller's share)",
    ),
    (
        "observe/full_json_discarded/async",
        "the same line handed to a sink that discards it (not a target row: the caller's share)",
    ),
    (
        "tracing_otel/sync",
        "`#[tracing::instrument]`, tracing-opentelemetry, the SDK's batch span processor, OTLP/HTTP protobuf to a local drain",
    ),
    (
        "tracing_otel/async",
        "`#[tracing::instrument]`, tracing-opentelemetry, the SDK's batch span processor, OTLP/HTTP protobuf to a local drain",
    ),
    (
        "observe/otlp/sync",
        "`#[monitor_performance]`, span, log record and metrics over OTLP/HTTP to a local drain",
    ),
    (
        "observe/otlp/async",
        "`#[monitor_performance]`, span, log record and metrics over OTLP/HTTP to a local drain",
    ),
    (
        "correlation/generate",
        "one `req_{unix}_{8 hex}` correlation ID",
    ),
    ("correlation/generate_uuid_v7", "one UUID v7 correlation ID"),
];

/// The targets: (observe row, anchor row, limit as text, passes?).
fn targets(m: &Medians, x: &Extra) -> Vec<(String, String, String, Option<bool>)> {
    let get = |k: &str| m.get(k).copied();
    // A ratio `overhead_otlp` took within each of its rounds: their median.
    let round_ratio = |a: &str, b: &str| x.get(&format!("round_ratio/{a}|{b}")).map(|r| r.1);
    let mut rows = Vec::new();
    let mut check = |obs: &str, anchor: &str, rule: String, ok: Option<bool>| {
        rows.push((obs.to_owned(), anchor.to_owned(), rule, ok));
    };
    for mode in ["sync", "async"] {
        let d = format!("observe/disabled/{mode}");
        let mo = format!("observe/metrics_only/{mode}");
        let full = format!("observe/full_json_queued/{mode}");
        if mode == "sync" {
            check(
                &d,
                "baseline/sync",
                "within 4 ns".into(),
                get(&d).zip(get("baseline/sync")).map(|(a, b)| a - b <= 4.0),
            );
        } else {
            check(
                &d,
                "tracing/no_subscriber/async",
                "at most 2x".into(),
                get(&d)
                    .zip(get("tracing/no_subscriber/async"))
                    .map(|(a, b)| a <= 2.0 * b),
            );
        }
        check(
            &mo,
            "clock/quanta_pair",
            "at most 3x".into(),
            get(&mo)
                .zip(get("clock/quanta_pair"))
                .map(|(a, b)| a <= 3.0 * b),
        );
        let plain = format!("observe/metrics_only_no_exemplars/{mode}");
        check(
            &mo,
            &plain,
            "exemplars add at most 10%".into(),
            get(&mo).zip(get(&plain)).map(|(a, b)| a <= 1.1 * b),
        );
        // Both rows from one process: the metrics-only row runs in
        // another, and this machine's speed can change between the two.
        let sampled = format!("observe/full_json_sampled_out/{mode}");
        let filtered = format!("observe/full_json_filtered/{mode}");
        check(
            &sampled,
            &filtered,
            "at most 1.5x (a sampled-out line costs about a filtered one)".into(),
            get(&sampled).zip(get(&filtered)).map(|(a, b)| a <= 1.5 * b),
        );
        let auto = format!("autometrics/{mode}");
        check(
            &mo,
            &auto,
            "at most 1/10".into(),
            get(&mo).zip(get(&auto)).map(|(a, b)| a * 10.0 <= b),
        );
        let json = format!("tracing/json_sink/{mode}");
        check(
            &full,
            &json,
            "at most 1/8".into(),
            get(&full).zip(get(&json)).map(|(a, b)| a * 8.0 <= b),
        );
        check(
            &full,
            "hand_written/sync",
            "at most 1/2".into(),
            get(&full)
                .zip(get("hand_written/sync"))
                .map(|(a, b)| a * 2.0 <= b),
        );
        let otlp = format!("observe/otlp/{mode}");
        check(
            &otlp,
            &full,
            "at most 1.5x".into(),
            round_ratio(&otlp, &full)
                .or_else(|| get(&otlp).zip(get(&full)).map(|(a, b)| a / b))
                .map(|r| r <= 1.5),
        );
        let otel = format!("tracing_otel/{mode}");
        check(
            &otlp,
            &otel,
            "at most 1/5".into(),
            round_ratio(&otlp, &otel)
                .or_else(|| get(&otlp).zip(get(&otel)).map(|(a, b)| a / b))
                .map(|r| r * 5.0 <= 1.0),
        );
    }
    for m_ in ["disabled", "metrics_only", "full_json_queued"] {
        let s = format!("observe/{m_}/sync");
        let a = format!("observe/{m_}/async");
        check(
            &a,
            &s,
            "at most 1.5x".into(),
            get(&a).zip(get(&s)).map(|(x, y)| x <= 1.5 * y),
        );
    }
    rows
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines().next().map(|l| {
                l.split_whitespace()
                    .nth(1)
                    .unwrap_or("0")
                    .parse::<u64>()
                    .unwrap_or(0)
            })
        })
        .map_or_else(String::new, |kb| format!(", {} GiB", kb / 1024 / 1024));
    format!("{cpu}, {cores} cores{mem}")
}

/// One row a non-criterion bench wrote: id, what, value, unit.
type Extra = BTreeMap<String, (String, f64, String)>;

fn read_extras(dir: &Path) -> Extra {
    let mut out = Extra::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for path in entries.flatten().map(|e| e.path()) {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
            eprintln!("skipping {}: not JSON", path.display());
            continue;
        };
        for row in v["rows"].as_array().into_iter().flatten() {
            if let (Some(id), Some(value)) = (row["id"].as_str(), row["value"].as_f64()) {
                let what = row["what"].as_str().unwrap_or("").to_owned();
                let unit = row["unit"].as_str().unwrap_or("").to_owned();
                out.insert(id.to_owned(), (what, value, unit));
            }
        }
    }
    out
}

fn value(v: f64, unit: &str) -> String {
    match unit {
        "ns" => ns(v),
        "lines/s" => format!("{:.0}k lines/s", v / 1000.0),
        "s" => format!("{v:.2} s"),
        _ => format!("{v:.2} {unit}"),
    }
}

/// The sink and compile-time sections, from whatever rows exist.
fn extra_sections(md: &mut String, x: &Extra) -> std::fmt::Result {
    let get = |id: &str| x.get(id).map(|(_, v, _)| *v);
    let tput: Vec<_> = x
        .iter()
        .filter(|(id, _)| id.starts_with("sink/tcp_throughput"))
        .collect();
    if !tput.is_empty() {
        section(
            md,
            "TCP sink throughput (`cargo bench --bench sink_throughput`)",
        )?;
        table_head(md, &["case", "what", "median"])?;
        for (id, (what, v, unit)) in tput {
            writeln!(md, "| `{id}` | {what} | {} |", value(*v, unit))?;
        }
    }
    if get("sink/backpressure/p99/no_sink").is_some() {
        section(
            md,
            "Latency with the collector down and the queue full (`cargo bench --bench sink_backpressure`)",
        )?;
        table_head(
            md,
            &["per call", "no sink", "collector down, queue full", "ratio"],
        )?;
        for stat in ["mean", "p50", "p99", "p999"] {
            let a = get(&format!("sink/backpressure/{stat}/no_sink"));
            let b = get(&format!("sink/backpressure/{stat}/collector_down"));
            if let (Some(a), Some(b)) = (a, b) {
                writeln!(md, "| {stat} | {} | {} | {:.2}x |", ns(a), ns(b), b / a)?;
            }
        }
    }
    scaling_section(md, x)?;
    if get("compile/plain/dev").is_some() {
        section(
            md,
            "Compile time of 200 annotated functions (`benches/compile_time/run.sh`)",
        )?;
        writeln!(
            md,
            "Clean build of that crate only, dependencies built; median seconds."
        )?;
        writeln!(md)?;
        table_head(
            md,
            &["attribute", "dev", "over plain", "release", "over plain"],
        )?;
        for (name, label) in [
            ("plain", "none"),
            ("observe", "`#[monitor_performance]`"),
            ("tracing", "`#[tracing::instrument]`"),
        ] {
            let cell = |profile: &str| {
                let v = get(&format!("compile/{name}/{profile}"));
                let base = get(&format!("compile/plain/{profile}"));
                match (v, base) {
                    (Some(v), Some(b)) => (format!("{v:.2} s"), format!("+{:.2} s", v - b)),
                    _ => ("-".into(), "-".into()),
                }
            };
            let (dev, dev_over) = cell("dev");
            let (rel, rel_over) = cell("release");
            writeln!(md, "| {label} | {dev} | {dev_over} | {rel} | {rel_over} |")?;
        }
    }
    Ok(())
}

/// Calls per second of one operation from 1, 2, 4 and 8 threads, and the
/// ratios that say how it scales (`scaling/{row}/{threads}` rows).
fn scaling_section(md: &mut String, x: &Extra) -> std::fmt::Result {
    let mut rows: Vec<(&str, &str)> = Vec::new();
    for (id, (what, _, _)) in x {
        if let Some(row) = id.strip_prefix("scaling/").and_then(|r| r.rsplit_once('/')) {
            if !rows.iter().any(|(r, _)| *r == row.0) {
                rows.push((row.0, what));
            }
        }
    }
    if rows.is_empty() {
        return Ok(());
    }
    // Observe's rows first, then the anchors, as the bench prints them.
    rows.sort_by_key(|(r, _)| !r.starts_with("observe/"));
    section(
        md,
        "Scaling: one operation from several threads (`cargo bench --bench scaling`)",
    )?;
    writeln!(
        md,
        "Calls per second, median of interleaved rounds; 4 and 8 threads over-subscribe the cores."
    )?;
    writeln!(md)?;
    table_head(
        md,
        &["row", "what", "1", "2", "4", "8", "2/1", "4/2", "8/2"],
    )?;
    for (row, what) in rows {
        let rate = |n: u32| x.get(&format!("scaling/{row}/{n}")).map(|(_, v, _)| *v);
        let (Some(one), Some(two), Some(four), Some(eight)) = (rate(1), rate(2), rate(4), rate(8))
        else {
            continue;
        };
        let m = |v: f64| format!("{:.2} M", v / 1e6);
        writeln!(
            md,
            "| `{row}` | {what} | {} | {} | {} | {} | {:.2} | {:.2} | {:.2} |",
            m(one),
            m(two),
            m(four),
            m(eight),
            two / one,
            four / two,
            eight / two
        )?;
    }
    Ok(())
}

/// `## title`, set off by blank lines.
fn section(md: &mut String, title: &str) -> std::fmt::Result {
    writeln!(md)?;
    writeln!(md, "## {title}")?;
    writeln!(md)
}

/// A table's header row and its separator row.
fn table_head(md: &mut String, columns: &[&str]) -> std::fmt::Result {
    writeln!(md, "| {} |", columns.join(" | "))?;
    writeln!(md, "|{}", "---|".repeat(columns.len()))
}

fn ns(v: f64) -> String {
    if v >= 1000.0 {
        format!("{:.2} µs", v / 1000.0)
    } else if v >= 10.0 {
        format!("{v:.0} ns")
    } else {
        format!("{v:.1} ns")
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).map_or_else(
        || {
            PathBuf::from(std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into()))
                .join("criterion")
        },
        PathBuf::from,
    );
    let mut m = Medians::new();
    read_medians(&dir, &mut m).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    if m.is_empty() {
        return Err(format!(
            "no criterion results under {}: run the benches first",
            dir.display()
        )
        .into());
    }
    let extras = dir
        .parent()
        .map(|p| read_extras(&p.join("observe-extra")))
        .unwrap_or_default();
    // `overhead_otlp` runs its setups in interleaved rounds; its rows are
    // the medians of those rounds, not the last round criterion kept.
    let mut from_rounds = Vec::new();
    for (id, (_, v, _)) in &extras {
        if let Some(row) = id.strip_prefix("rounds/") {
            m.insert(row.to_owned(), *v);
            from_rounds.push(row.to_owned());
        }
    }
    let mut md = String::new();
    writeln!(md, "# Overhead per call")?;
    writeln!(md)?;
    writeln!(
        md,
        "Machine: {}. Criterion medians, one run of every overhead bench binary;",
        machine()
    )?;
    writeln!(
        md,
        "the body is a few arithmetic instructions. Reproduce with the commands in the README."
    )?;
    if !from_rounds.is_empty() {
        writeln!(
            md,
            "Rows from `overhead_otlp` ({}) are medians of its interleaved rounds.",
            from_rounds
                .iter()
                .map(|r| format!("`{r}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )?;
    }
    writeln!(md)?;
    table_head(&mut md, &["variant", "what", "ns/call"])?;
    for (id, what) in ROWS {
        let v = m.get(*id).map_or_else(|| "not measured".into(), |v| ns(*v));
        writeln!(md, "| `{id}` | {what} | {v} |")?;
    }
    section(&mut md, "Targets (ratios within this run)")?;
    table_head(&mut md, &["observe", "anchor", "target", "measured", "met"])?;
    for (obs, anchor, rule, ok) in targets(&m, &extras) {
        let rounds = extras.get(&format!("round_ratio/{obs}|{anchor}"));
        let measured = match (m.get(&obs), m.get(&anchor), rounds) {
            (Some(a), Some(b), Some((what, r, _))) => {
                format!("{} / {}; {r:.2}x, the {what}", ns(*a), ns(*b))
            }
            (Some(a), Some(b), None) if rule.starts_with("within") => {
                format!("{} vs {} (+{:.1} ns)", ns(*a), ns(*b), a - b)
            }
            (Some(a), Some(b), None) => format!("{} / {} = {:.2}x", ns(*a), ns(*b), a / b),
            _ => "not measured".into(),
        };
        let met = match ok {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "-",
        };
        writeln!(md, "| `{obs}` | `{anchor}` | {rule} | {measured} | {met} |")?;
    }
    writeln!(md)?;
    writeln!(
        md,
        "The idle row (`observe/disabled/sync`) may cost up to 4 ns over the bare body. \
         With nothing installed, a monitored call still asks the `metrics` facade whether a \
         recorder is set (`metrics::with_recorder`, which checks a thread-local recorder before the \
         global one: +3.3 to +3.8 ns where this target was set); observe cannot skip that question \
         without a registry of its own beside the facade's, so the target is that floor plus \
         rounding, not a number observe alone decides."
    )?;
    if let (Some(asked), Some(bare), Some(idle)) = (
        m.get("metrics/with_recorder"),
        m.get("baseline/sync"),
        m.get("observe/disabled/sync"),
    ) {
        writeln!(md)?;
        writeln!(
            md,
            "In this run the question alone (`metrics/with_recorder`) costs {:+.1} ns over the \
             bare body, and the idle row {:+.1} ns: observe's own share is {:+.1} ns.",
            asked - bare,
            idle - bare,
            idle - asked
        )?;
    }
    extra_sections(&mut md, &extras)?;
    let out = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("benches")
        .join("RESULTS.md");
    std::fs::write(&out, &md)?;
    print!("{md}");
    eprintln!("written to {}", out.display());
    Ok(())
}
