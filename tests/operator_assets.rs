//! The operator's kit against the real toolkit: every series selector in
//! the PromQL of `docs/prometheus/rules.yml`, of the objectives' rules
//! (`docs/prometheus/slo_rules.yml`) and of the Grafana dashboard
//! matches a series in the exposition of a running instance (with the
//! system sampler on and a sink that drops lines and one that delivers):
//! its metric name, and its label matchers on fixed values, so a misspelt
//! `status` or `le` fails as a misspelt name does. The rules pass
//! `promtool check rules` and `promtool test rules`. The builder installs
//! globally, so only one test here installs.

use std::collections::{BTreeMap, BTreeSet};
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

/// Every PromQL expression of the dashboard's panels and annotations, and
/// the metric its template variables read (`label_values(metric, label)`).
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
    for a in dashboard["annotations"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        exprs.push(
            a["expr"]
                .as_str()
                .expect("an annotation has an expr")
                .to_owned(),
        );
    }
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

/// A label matcher on a fixed value: `label="value"` (`equal`) or
/// `label!="value"`.
#[derive(Debug, PartialEq)]
struct Matcher {
    label: String,
    equal: bool,
    value: String,
}

impl Matcher {
    /// Whether a series with these labels passes (a missing label is "").
    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.label).map_or("", String::as_str);
        (value == self.value) == self.equal
    }
}

/// A series selector of a PromQL expression: the metric name and its
/// matchers on fixed values. Regular-expression matchers (`=~`, `!~`) and
/// values holding a Grafana variable (`$service`) say nothing fixed and
/// are left out.
#[derive(Debug, PartialEq)]
struct Selector {
    name: String,
    matchers: Vec<Matcher>,
}

/// Reads a `"..."` string starting at `chars[*i]` (the quote), unescaped;
/// leaves `*i` after the closing quote.
fn quoted(chars: &[char], i: &mut usize) -> String {
    let quote = chars[*i];
    let mut out = String::new();
    *i += 1;
    while *i < chars.len() && chars[*i] != quote {
        if chars[*i] == '\\' && *i + 1 < chars.len() {
            *i += 1;
            out.push(match chars[*i] {
                'n' => '\n',
                c => c,
            });
        } else {
            out.push(chars[*i]);
        }
        *i += 1;
    }
    *i += 1;
    out
}

/// The matchers of a `{...}` label list starting at `chars[i]` (the
/// brace), fixed-value ones only (see [`Selector`]).
fn fixed_matchers(chars: &[char], mut i: usize) -> Vec<Matcher> {
    let mut matchers = Vec::new();
    i += 1;
    loop {
        while i < chars.len() && (chars[i].is_whitespace() || chars[i] == ',') {
            i += 1;
        }
        if i >= chars.len() || chars[i] == '}' {
            return matchers;
        }
        let start = i;
        while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
            i += 1;
        }
        let label: String = chars[start..i].iter().collect();
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        let op_start = i;
        while i < chars.len() && matches!(chars[i], '=' | '!' | '~') {
            i += 1;
        }
        let op: String = chars[op_start..i].iter().collect();
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        if label.is_empty() || i >= chars.len() || !matches!(chars[i], '"' | '\'' | '`') {
            panic!(
                "a label matcher this test cannot read: {:?}",
                chars.iter().collect::<String>()
            );
        }
        let value = quoted(chars, &mut i);
        if (op == "=" || op == "!=") && !value.contains('$') {
            matchers.push(Matcher {
                label,
                equal: op == "=",
                value,
            });
        }
    }
}

/// The metric names a PromQL expression reads: identifiers that are not
/// functions, keywords, label names (in `{...}` or after `by`/`on`...),
/// durations, strings, numbers or Grafana variables (`$x`).
fn metric_names(expr: &str) -> BTreeSet<String> {
    selectors(expr).into_iter().map(|s| s.name).collect()
}

/// The series selectors of a PromQL expression, one per metric name read
/// (see [`metric_names`]).
fn selectors(expr: &str) -> Vec<Selector> {
    let chars: Vec<char> = expr.chars().collect();
    let mut names = Vec::new();
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
                    let matchers = if chars.get(j) == Some(&'{') {
                        fixed_matchers(&chars, j)
                    } else {
                        Vec::new()
                    };
                    names.push(Selector {
                        name: word,
                        matchers,
                    });
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

#[test]
fn the_promql_tokenizer_reads_fixed_matchers_only() {
    let found = selectors(
        r#"1 - (sum(rate(operation_duration_seconds_bucket{service=~"$service", status="success",le="0.25"}[5m])) / (sum(rate(operation_calls_total{status!="success",service="$service"}[5m])) > 0))"#,
    );
    let matcher = |label: &str, equal, value: &str| Matcher {
        label: label.to_owned(),
        equal,
        value: value.to_owned(),
    };
    assert_eq!(
        found,
        [
            Selector {
                name: "operation_duration_seconds_bucket".to_owned(),
                matchers: vec![
                    matcher("status", true, "success"),
                    matcher("le", true, "0.25")
                ],
            },
            Selector {
                name: "operation_calls_total".to_owned(),
                matchers: vec![matcher("status", false, "success")],
            },
        ]
    );
}

/// The check catches a label value no series has, and takes `!=` as
/// "some series with another value".
#[test]
fn a_selector_must_match_an_exported_series() {
    let exposition = "# TYPE operation_calls_total counter\n\
        operation_calls_total{service=\"s\",operation=\"a\",status=\"success\"} 3\n\
        operation_calls_total{service=\"s\",operation=\"a\",status=\"error\"} 0\n\
        operation_duration_seconds_bucket{service=\"s\",operation=\"a\",status=\"success\",le=\"0.25\"} 3\n";
    let exported = exported_series(exposition);
    let names = |expr: &str| -> Vec<String> {
        unmatched(&selectors(expr), &exported)
            .into_iter()
            .map(|s| format!("{s:?}"))
            .collect()
    };
    assert!(names(r#"operation_calls_total{status!="success"}"#).is_empty());
    assert!(names(r#"operation_duration_seconds_bucket{le="0.25"}"#).is_empty());
    assert_eq!(
        names(r#"operation_duration_seconds_bucket{le="0.250"}"#).len(),
        1
    );
    assert_eq!(names(r#"operation_calls_total{status="panic"}"#).len(), 1);
    assert_eq!(names(r#"operation_duration_seconds_count"#).len(), 1);
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

/// The name and labels of every sample line of an exposition.
fn exported_series(exposition: &str) -> Vec<(String, BTreeMap<String, String>)> {
    exposition
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let chars: Vec<char> = l.chars().collect();
            let end = chars
                .iter()
                .position(|&c| c == '{' || c == ' ')
                .unwrap_or(chars.len());
            let name: String = chars[..end].iter().collect();
            let mut labels = BTreeMap::new();
            let mut i = end;
            if chars.get(i) == Some(&'{') {
                i += 1;
                while i < chars.len() && chars[i] != '}' {
                    let start = i;
                    while i < chars.len() && chars[i] != '=' {
                        i += 1;
                    }
                    let key: String = chars[start..i].iter().collect();
                    i += 1;
                    let value = quoted(&chars, &mut i);
                    labels.insert(key, value);
                    if chars.get(i) == Some(&',') {
                        i += 1;
                    }
                }
            }
            (name, labels)
        })
        .collect()
}

/// The selectors no exported series satisfies: a metric that is not
/// there, or a fixed label value no series of it has (`le="0.250"`,
/// `status="sucess"`).
fn unmatched<'a>(
    selectors: &'a [Selector],
    exported: &[(String, BTreeMap<String, String>)],
) -> Vec<&'a Selector> {
    selectors
        .iter()
        .filter(|s| {
            !exported.iter().any(|(name, labels)| {
                *name == s.name && s.matchers.iter().all(|m| m.matches(labels))
            })
        })
        .collect()
}

#[test]
fn every_metric_in_the_rules_and_the_dashboard_is_exported() {
    let rules =
        std::fs::read_to_string(root().join("docs/prometheus/rules.yml")).expect("rules.yml");
    let slo_rules = std::fs::read_to_string(root().join("docs/prometheus/slo_rules.yml"))
        .expect("slo_rules.yml");
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("docs/grafana/observe-dashboard.json"))
            .expect("dashboard"),
    )
    .expect("the dashboard is valid JSON");
    let (mut rule_exprs, mut records) = rules_expressions(&rules);
    let (slo_exprs, slo_records) = rules_expressions(&slo_rules);
    assert!(slo_exprs.len() >= 20, "{slo_exprs:?}");
    rule_exprs.extend(slo_exprs);
    records.extend(slo_records);
    let dash_exprs = dashboard_expressions(&dashboard);
    assert!(rule_exprs.len() >= 10, "{rule_exprs:?}");
    assert!(dash_exprs.len() >= 15, "{dash_exprs:?}");
    // The dashboard's structure: unique panel ids, a grid position each.
    let panels = dashboard["panels"].as_array().expect("panels");
    let ids: BTreeSet<u64> = panels.iter().filter_map(|p| p["id"].as_u64()).collect();
    assert_eq!(ids.len(), panels.len(), "panel ids are unique");
    assert!(panels.iter().all(|p| p["gridPos"]["w"].as_u64().is_some()));

    // Every selector, less those of names only Prometheus or these rules
    // define, and the objectives' info series: the instance below attaches
    // no objective, so it has none.
    let used: Vec<Selector> = rule_exprs
        .iter()
        .chain(&dash_exprs)
        .flat_map(|e| selectors(e))
        .filter(|s| {
            s.name != "up" && s.name != observe::slo::INFO_METRIC && !records.contains(&s.name)
        })
        .collect();
    assert!(
        used.iter().all(|s| !s.name.contains(':')),
        "a recorded name no rule defines: {used:?}"
    );

    // A running instance: successful and failed calls (a panic or a
    // cancellation would add series that nothing here names), the system
    // sampler, and a sink to a dead collector with a tiny queue so that it
    // drops lines.
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
        let exported = exported_series(&scrape(addr));
        let missing = unmatched(&used, &exported);
        if missing.is_empty() || Instant::now() > deadline {
            break missing;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    drop(guard);
    let _ = std::fs::remove_file(&log_file);
    assert!(
        missing.is_empty(),
        "read by the rules or the dashboard but not exported: {missing:?}"
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
