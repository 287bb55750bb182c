//! The operator's kit against the real toolkit: every metric named in the
//! PromQL of `docs/prometheus/rules.yml` and of the Grafana dashboard is in
//! the exposition of a running instance (with the system sampler on and a
//! sink that drops lines and one that delivers), and the rules pass `promtool check rules` and
//! `promtool test rules`. The builder installs globally, so only one test
//! here installs.

use std::collections::BTreeSet;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use observe::sink::TcpSink;
use observe::{Observe, monitor_performance};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The `expr:` values of a Prometheus rules file (single-line or `|`
/// blocks), and the names its `record:` rules define.
fn rules_expressions(yaml: &str) -> (Vec<String>, BTreeSet<String>) {
    let mut exprs = Vec::new();
    let mut records = BTreeSet::new();
    let lines: Vec<&str> = yaml.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim_start().trim_start_matches("- ");
        if let Some(name) = trimmed.strip_prefix("record:") {
            records.insert(name.trim().to_owned());
        }
        if let Some(rest) = trimmed.strip_prefix("expr:") {
            let rest = rest.trim();
            if rest == "|" || rest == ">" {
                let indent = line.len() - line.trim_start().len();
                let mut block = String::new();
                while i + 1 < lines.len() {
                    let next = lines[i + 1];
                    let next_indent = next.len() - next.trim_start().len();
                    if !next.trim().is_empty() && next_indent <= indent {
                        break;
                    }
                    block.push_str(next.trim());
                    block.push(' ');
                    i += 1;
                }
                exprs.push(block);
            } else {
                exprs.push(rest.to_owned());
            }
        }
        i += 1;
    }
    (exprs, records)
}

/// Every PromQL expression of the dashboard's panels, and the metric its
/// template variables read (`label_values(metric, label)`).
fn dashboard_expressions(dashboard: &serde_json::Value) -> Vec<String> {
    let mut exprs = Vec::new();
    fn walk(panels: &serde_json::Value, exprs: &mut Vec<String>) {
        for p in panels.as_array().into_iter().flatten() {
            for t in p["targets"].as_array().into_iter().flatten() {
                exprs.push(t["expr"].as_str().expect("a target has an expr").to_owned());
            }
            walk(&p["panels"], exprs);
        }
    }
    walk(&dashboard["panels"], &mut exprs);
    for v in dashboard["templating"]["list"]
        .as_array()
        .expect("templating")
    {
        if let Some(def) = v["definition"].as_str() {
            let inner = def
                .strip_prefix("label_values(")
                .and_then(|d| d.split(',').next())
                .expect("label_values(metric, label)");
            exprs.push(inner.trim().to_owned());
        }
    }
    exprs
}

/// Aggregation operators: followed by `by (...)` or `(`, never metrics.
const AGGREGATIONS: &[&str] = &[
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
];

const KEYWORDS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "inf",
    "nan",
];

/// The metric names a PromQL expression reads: identifiers that are not
/// functions, keywords, label names (in `{...}` or after `by`/`on`...),
/// durations, strings, numbers or Grafana variables (`$x`).
fn metric_names(expr: &str) -> BTreeSet<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    let mut skip_label_list = false;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' | '\'' | '`' => {
                i += 1;
                while i < chars.len() && chars[i] != c {
                    if chars[i] == '\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
            }
            '{' | '[' => {
                let close = if c == '{' { '}' } else { ']' };
                while i < chars.len() && chars[i] != close {
                    if chars[i] == '"' {
                        i += 1;
                        while i < chars.len() && chars[i] != '"' {
                            i += 1;
                        }
                    }
                    i += 1;
                }
                i += 1;
            }
            '(' if skip_label_list => {
                while i < chars.len() && chars[i] != ')' {
                    i += 1;
                }
                skip_label_list = false;
                i += 1;
            }
            '$' => {
                i += 1;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
            }
            c if c.is_ascii_digit() || c == '.' => {
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                    i += 1;
                }
            }
            c if c.is_ascii_alphabetic() || c == '_' || c == ':' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
                {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let mut j = i;
                while j < chars.len() && chars[j] == ' ' {
                    j += 1;
                }
                let is_call = chars.get(j) == Some(&'(');
                let lower = word.to_ascii_lowercase();
                if KEYWORDS.contains(&lower.as_str()) {
                    skip_label_list = matches!(
                        lower.as_str(),
                        "by" | "without" | "on" | "ignoring" | "group_left" | "group_right"
                    );
                } else if !is_call && !AGGREGATIONS.contains(&lower.as_str()) {
                    names.insert(word);
                }
            }
            _ => i += 1,
        }
    }
    names
}

#[test]
fn the_promql_tokenizer_finds_metric_names_only() {
    let names = metric_names(
        r#"histogram_quantile(0.95, sum by (service, le) (rate(operation_duration_seconds_bucket{service=~"$service",le="0.25"}[$__rate_interval]))) / on (service) x:y:rate5m > (14.4 * 0.01) and up == 0"#,
    );
    let expected: BTreeSet<String> = ["operation_duration_seconds_bucket", "x:y:rate5m", "up"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(names, expected);
}

#[derive(Debug)]
struct Refused;

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("refused")
    }
}

#[monitor_performance("assets.work")]
fn work(ok: bool) -> Result<u8, Refused> {
    if ok { Ok(1) } else { Err(Refused) }
}

fn scrape(addr: SocketAddr) -> String {
    let mut s = TcpStream::connect(addr).expect("the listener accepts");
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut response = String::new();
    s.read_to_string(&mut response).expect("read");
    response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default()
}

fn exported_names(exposition: &str) -> BTreeSet<String> {
    exposition
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_metric_in_the_rules_and_the_dashboard_is_exported() {
    let rules =
        std::fs::read_to_string(root().join("docs/prometheus/rules.yml")).expect("rules.yml");
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("docs/grafana/observe-dashboard.json"))
            .expect("dashboard"),
    )
    .expect("the dashboard is valid JSON");
    let (rule_exprs, records) = rules_expressions(&rules);
    let dash_exprs = dashboard_expressions(&dashboard);
    assert!(rule_exprs.len() >= 10, "{rule_exprs:?}");
    assert!(dash_exprs.len() >= 15, "{dash_exprs:?}");
    // The dashboard's structure: unique panel ids, a grid position each.
    let panels = dashboard["panels"].as_array().expect("panels");
    let ids: BTreeSet<u64> = panels.iter().filter_map(|p| p["id"].as_u64()).collect();
    assert_eq!(ids.len(), panels.len(), "panel ids are unique");
    assert!(panels.iter().all(|p| p["gridPos"]["w"].as_u64().is_some()));

    let mut used = BTreeSet::new();
    for e in rule_exprs.iter().chain(&dash_exprs) {
        used.extend(metric_names(e));
    }
    // Names only Prometheus or these rules define.
    used.remove("up");
    for r in &records {
        used.remove(r);
    }
    assert!(
        used.iter().all(|n| !n.contains(':')),
        "a recorded name no rule defines: {used:?}"
    );

    // A running instance: calls of every outcome kind we can cause, the
    // system sampler, and a sink to a dead collector with a tiny queue so
    // that it drops lines.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let dead = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr");
    let sink = TcpSink::builder(dead.to_string())
        .name("logstash")
        .capacity_bytes(256)
        .build()
        .expect("sink");
    // ... and one that delivers.
    let log_file = std::env::temp_dir().join(format!("observe-assets-{}.log", std::process::id()));
    let guard = Observe::builder("operator-assets")
        .sink(sink)
        .file(&log_file)
        .metrics_listener_on(listener)
        .system_metrics(Duration::from_millis(100))
        .install()
        .expect("install");
    for i in 0..50 {
        let _ = work(i % 5 != 0);
    }

    let deadline = Instant::now() + Duration::from_secs(30);
    let missing = loop {
        let _ = guard.flush(Duration::from_millis(50));
        let exported = exported_names(&scrape(addr));
        let missing: Vec<&String> = used.iter().filter(|n| !exported.contains(*n)).collect();
        if missing.is_empty() || Instant::now() > deadline {
            break missing.into_iter().cloned().collect::<Vec<_>>();
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    drop(guard);
    let _ = std::fs::remove_file(&log_file);
    assert!(
        missing.is_empty(),
        "named in the rules or the dashboard but not exported: {missing:?}"
    );
}

/// `promtool check rules` and `promtool test rules` (`.ci/run` installs
/// promtool).
#[test]
fn promtool_checks_and_tests_the_rules() {
    for args in [
        ["check", "rules", "docs/prometheus/rules.yml"],
        ["test", "rules", "docs/prometheus/rules_test.yml"],
    ] {
        let out = Command::new("promtool")
            .args(args)
            .current_dir(root())
            .output()
            .expect("promtool is installed (.ci/run installs it)");
        assert!(
            out.status.success(),
            "promtool {args:?}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
