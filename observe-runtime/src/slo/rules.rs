//! The Prometheus rule file for a set of objectives, written as YAML by
//! hand: its shape is fixed and small, and every string in it is either
//! ours or an objective name restricted to `[a-zA-Z_][a-zA-Z0-9_]*`.

use std::fmt::Write as _;

use super::error::ObjectiveError;
use super::objective::{Objective, fmt_duration};
use super::{INFO_METRIC, LABEL_OBJECTIVE};
use crate::base::names::{
    LABEL_OPERATION, LABEL_SERVICE, LABEL_STATUS, OPERATION_CALLS_TOTAL, OPERATION_DURATION_SECONDS,
};

/// The windows every ratio is recorded over: the long and short windows
/// of the alerts below.
const WINDOWS: [&str; 7] = ["5m", "30m", "1h", "2h", "6h", "1d", "3d"];

/// One multi-window burn-rate alert: it fires when both windows spend the
/// budget `rate` times faster than a 30-day period allows.
struct Burn {
    severity: &'static str,
    rate: &'static str,
    long: &'static str,
    short: &'static str,
    /// How long a 30-day budget lasts at `rate`.
    lasts: &'static str,
}

/// The SRE workbook's pairs (chapter 5, "Multiwindow, Multi-Burn-Rate
/// Alerts"): 2 % of a 30-day budget spent in an hour, 5 % in six hours,
/// 10 % in a day, 10 % in three days.
const BURNS: [Burn; 4] = [
    Burn {
        severity: "page",
        rate: "14.4",
        long: "1h",
        short: "5m",
        lasts: "about 2 days",
    },
    Burn {
        severity: "page",
        rate: "6",
        long: "6h",
        short: "30m",
        lasts: "5 days",
    },
    Burn {
        severity: "ticket",
        rate: "3",
        long: "1d",
        short: "2h",
        lasts: "10 days",
    },
    Burn {
        severity: "ticket",
        rate: "1",
        long: "3d",
        short: "6h",
        lasts: "30 days",
    },
];

/// Labels each process's operation series and its info series share: the
/// scrape target's (`job`, `instance`) and the operation's. Joining on
/// them counts a replica's calls only for the objectives that replica
/// declares, and keeps two replicas from matching each other's series.
const TARGET_OPERATION: &str = "job, instance, service, operation";

/// Recording rules and multi-window, multi-burn-rate alerts for
/// `objectives`, as a Prometheus rule file (YAML), one group per
/// objective.
///
/// For each objective, per `service` label and `objective`:
/// - `objective:operation_success:target` and
///   `objective:operation_latency:target`: the targets as ratios (0.999
///   for 99.9 %), for dashboards (budget remaining is
///   `1 - ratio / (1 - target)`);
/// - `service_objective:operation_errors:ratio_rate<w>`: calls ending in
///   `error` or `panic` over calls that ended (`cancelled` left out), for
///   a success target;
/// - `service_objective:operation_slow_calls:ratio_rate<w>`: calls slower
///   than the threshold over all calls, every status, for a latency
///   target;
/// - alerts `ObjectiveErrorBudgetBurn` and `ObjectiveLatencyBudgetBurn`,
///   labelled `severity` (`page` or `ticket`), `window` (the long window),
///   `service` and `objective`; their value is the long window's burn
///   rate.
///
/// `<w>` is each of 5m, 30m, 1h, 2h, 6h, 1d and 3d. The rules join the
/// operation metrics to the info series ([`INFO_METRIC`](super::INFO_METRIC))
/// per scrape target, so every replica counts once and only for the
/// objectives it declares.
///
/// ```
/// use std::time::Duration;
/// use observe_runtime::slo::{Objective, prometheus_rules};
///
/// const API: Objective = Objective::new("api")
///     .success_rate(99.9)
///     .latency(Duration::from_millis(250), 99.0);
///
/// let yaml = prometheus_rules(&[&API])?;
/// assert!(yaml.contains("record: service_objective:operation_errors:ratio_rate1h"));
/// assert!(yaml.contains(r#"operation_duration_seconds_bucket{le="0.25"}"#));
/// assert!(yaml.contains("alert: ObjectiveLatencyBudgetBurn"));
/// // Write it where Prometheus reads its `rule_files`.
/// # Ok::<(), observe_runtime::slo::ObjectiveError>(())
/// ```
///
/// # Errors
/// The first objective that fails [`Objective::validate`], or
/// [`ObjectiveError::Conflict`] for a name given twice with different
/// targets (given twice with the same targets, it is written once).
pub fn prometheus_rules(objectives: &[&Objective]) -> Result<String, ObjectiveError> {
    let mut unique: Vec<&Objective> = Vec::with_capacity(objectives.len());
    for &o in objectives {
        o.validate()?;
        match unique.iter().find(|u| u.name() == o.name()) {
            Some(u) if *u != o => {
                return Err(ObjectiveError::Conflict {
                    objective: o.name().to_owned(),
                });
            }
            Some(_) => {}
            None => unique.push(o),
        }
    }

    let mut out = String::new();
    header(&unique, &mut out);
    if unique.is_empty() {
        out.push_str("groups: []\n");
        return Ok(out);
    }
    out.push_str("groups:\n");
    for o in unique {
        group(o, &mut out);
    }
    Ok(out)
}

/// What the file holds and why it is built the way it is.
fn header(objectives: &[&Objective], out: &mut String) {
    out.push_str(
        "# Service level objectives: recording and alerting rules generated by\n\
         # observe::slo::prometheus_rules. Generate them again rather than\n\
         # editing them.\n\
         #\n\
         # Objectives:\n",
    );
    if objectives.is_empty() {
        out.push_str("#   (none)\n");
    }
    for o in objectives {
        let _ = writeln!(out, "#   {}: {}", o.name(), describe(o));
    }
    out.push_str(
        "#\n\
         # - An operation carries no objective label. Each process exposes\n\
         #   operation_objective_info{service,operation,objective} 1 for an\n\
         #   operation with an objective, and every ratio joins the operation's\n\
         #   rates to it per scrape target (job, instance, service, operation)\n\
         #   before summing the replicas: a replica counts only for the\n\
         #   objectives it declares. The info series is read with\n\
         #   last_over_time over the ratio's window, so the calls of a replica\n\
         #   that went away during the window still count.\n\
         # - Error ratio: calls that ended in error or panic over calls that\n\
         #   ended. A cancelled call (its future dropped by the caller) never\n\
         #   ended: whether it would have succeeded is unknown, and dropping a\n\
         #   losing or timed-out future is ordinary use, so it is neither good\n\
         #   nor bad here.\n\
         # - Slow-call ratio: 1 - calls within the threshold's bucket over all\n\
         #   calls, every status summed, cancelled included: the threshold is\n\
         #   about how long callers wait, and a cancelled call's duration is how\n\
         #   long its caller waited. The threshold is a bucket bound (le) of\n\
         #   operation_duration_seconds.\n\
         # - A window without calls has no ratio (neither 0 nor NaN), so it\n\
         #   cannot alert.\n\
         # - Alerts: multi-window, multi-burn-rate (Google SRE workbook,\n\
         #   chapter 5) for a 30-day budget period. An alert fires while both\n\
         #   its windows spend the budget faster than its burn rate; its value\n\
         #   is the long window's burn rate:\n\
         #     page    14.4x over 1h and 5m   (2 % of the budget in 1h)\n\
         #     page    6x    over 6h and 30m  (5 % of the budget in 6h)\n\
         #     ticket  3x    over 1d and 2h   (10 % of the budget in 1d)\n\
         #     ticket  1x    over 3d and 6h   (10 % of the budget in 3d)\n\
         # - objective:operation_success:target and\n\
         #   objective:operation_latency:target hold the targets (0.999 for\n\
         #   99.9 %): the budget left over a window is 1 - ratio / (1 - target).\n",
    );
}

/// `99.9 % of calls succeed; 99 % finish within 250ms`.
fn describe(o: &Objective) -> String {
    let mut parts = Vec::new();
    if let Some(p) = o.success_target() {
        parts.push(format!("{p} % of calls succeed"));
    }
    if let Some((t, p)) = o.latency_target() {
        parts.push(format!("{p} % finish within {}", fmt_duration(t)));
    }
    parts.join("; ")
}

/// One objective's group: its targets, its ratios over every window, its
/// alerts. Recording rules come first: Prometheus evaluates a group's
/// rules in order, so the alerts read ratios of the same evaluation.
fn group(o: &Objective, out: &mut String) {
    let name = o.name();
    let _ = writeln!(out, "  - name: observe.slo.{name}");
    out.push_str("    rules:\n");
    if let Some(p) = o.success_target() {
        target(out, "objective:operation_success:target", name, p, None);
    }
    if let (Some((_, p)), Some(le)) = (o.latency_target(), o.latency_le()) {
        target(
            out,
            "objective:operation_latency:target",
            name,
            p,
            Some(&le),
        );
    }
    if o.success_target().is_some() {
        out.push_str("      # Calls that ended in error or panic over calls that ended.\n");
        for w in WINDOWS {
            let failed = format!(r#"{OPERATION_CALLS_TOTAL}{{{LABEL_STATUS}=~"error|panic"}}"#);
            let ended = format!(r#"{OPERATION_CALLS_TOTAL}{{{LABEL_STATUS}!="cancelled"}}"#);
            let expr = ratio(&joined(&failed, name, w), &joined(&ended, name, w));
            record(out, &format!("{ERRORS}{w}"), name, &expr);
        }
    }
    if let Some(le) = o.latency_le() {
        out.push_str("      # Calls slower than the threshold over all calls, every status.\n");
        for w in WINDOWS {
            let fast = format!(r#"{OPERATION_DURATION_SECONDS}_bucket{{le="{le}"}}"#);
            let all = format!("{OPERATION_DURATION_SECONDS}_count");
            let fast_share = ratio(&joined(&fast, name, w), &joined(&all, name, w));
            let expr = format!("1 - (\n{}\n)", indent(&fast_share, 2));
            record(out, &format!("{SLOW}{w}"), name, &expr);
        }
    }
    let mut slis = Vec::new();
    if let Some(p) = o.success_target() {
        let budget = Budget::of(p);
        slis.push(Sli {
            alert: "ObjectiveErrorBudgetBurn",
            ratio: ERRORS,
            what: "error budget",
            target: format!(
                "{p} % of calls succeed, so {} % may end in error or panic",
                budget.percent
            ),
            budget,
        });
    }
    if let Some((t, p)) = o.latency_target() {
        let budget = Budget::of(p);
        slis.push(Sli {
            alert: "ObjectiveLatencyBudgetBurn",
            ratio: SLOW,
            what: "latency budget",
            target: format!(
                "{p} % of calls finish within {}, so {} % may take longer",
                fmt_duration(t),
                budget.percent
            ),
            budget,
        });
    }
    for sli in &slis {
        for burn in &BURNS {
            alert(out, name, sli, burn);
        }
    }
}

/// One indicator of an objective, as its alerts name and describe it.
struct Sli {
    alert: &'static str,
    /// The recorded ratio's name, less its window.
    ratio: &'static str,
    what: &'static str,
    /// The target in words, with what it leaves as budget.
    target: String,
    budget: Budget,
}

/// The recorded error ratio's name, less its window.
const ERRORS: &str = "service_objective:operation_errors:ratio_rate";
/// The recorded slow-call ratio's name, less its window.
const SLOW: &str = "service_objective:operation_slow_calls:ratio_rate";

/// `selector`'s per-second rate over `window`, summed per service for the
/// operations of objective `name`: joined to the info series per scrape
/// target and operation, then summed over targets and operations.
fn joined(selector: &str, name: &str, window: &str) -> String {
    format!(
        "sum by ({LABEL_SERVICE}, {LABEL_OBJECTIVE}) (\n\
         \x20 sum by ({TARGET_OPERATION}) (rate({selector}[{window}]))\n\
         \x20   * on ({TARGET_OPERATION}) group_left ({LABEL_OBJECTIVE})\n\
         \x20 max by ({TARGET_OPERATION}, {LABEL_OBJECTIVE}) (last_over_time({INFO_METRIC}{{{LABEL_OBJECTIVE}=\"{name}\"}}[{window}]))\n\
         )"
    )
}

/// `numerator / denominator`, kept only where the denominator is above 0:
/// a window without calls has no ratio rather than a NaN.
fn ratio(numerator: &str, denominator: &str) -> String {
    format!("{numerator}\n  /\n({denominator} > 0)")
}

/// `text` with every non-empty line moved right by `by` spaces.
fn indent(text: &str, by: usize) -> String {
    let pad = " ".repeat(by);
    text.lines()
        .map(|l| {
            if l.is_empty() {
                String::new()
            } else {
                format!("{pad}{l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A recording rule of objective `name` whose expression spans lines (a
/// `|` block). The `objective` label is on the result already; writing it
/// as the rule's label as well tells apart the rules of two objectives,
/// which otherwise look the same to `promtool check rules`.
fn record(out: &mut String, record: &str, name: &str, expr: &str) {
    let _ = writeln!(out, "      - record: {record}");
    out.push_str("        expr: |\n");
    out.push_str(&indent(expr, 10));
    out.push('\n');
    out.push_str("        labels:\n");
    let _ = writeln!(out, "          {LABEL_OBJECTIVE}: {}", quote(name));
}

/// A target as a constant series labelled with its objective (and, for
/// latency, the threshold's bucket bound).
fn target(out: &mut String, record: &str, name: &str, percent: f64, le: Option<&str>) {
    let _ = writeln!(out, "      - record: {record}");
    let _ = writeln!(out, "        expr: vector({})", Budget::of(percent).target);
    out.push_str("        labels:\n");
    let _ = writeln!(out, "          {LABEL_OBJECTIVE}: {}", quote(name));
    if let Some(le) = le {
        let _ = writeln!(out, "          threshold_seconds: {}", quote(le));
    }
}

/// One burn-rate alert of one indicator of objective `name`.
fn alert(out: &mut String, name: &str, sli: &Sli, burn: &Burn) {
    let Sli {
        alert,
        ratio,
        what,
        target,
        budget,
    } = sli;
    let Burn {
        severity,
        rate,
        long,
        short,
        lasts,
    } = burn;
    let allowed = &budget.ratio;
    let _ = writeln!(out, "      - alert: {alert}");
    out.push_str("        expr: |\n");
    let _ = writeln!(
        out,
        "          {ratio}{long}{{{LABEL_OBJECTIVE}=\"{name}\"}} / {allowed} > {rate}"
    );
    out.push_str("            and\n");
    let _ = writeln!(
        out,
        "          {ratio}{short}{{{LABEL_OBJECTIVE}=\"{name}\"}} / {allowed} > {rate}"
    );
    out.push_str("        labels:\n");
    let _ = writeln!(out, "          severity: {}", quote(severity));
    let _ = writeln!(out, "          window: {}", quote(long));
    let _ = writeln!(out, "          {LABEL_OBJECTIVE}: {}", quote(name));
    out.push_str("        annotations:\n");
    let summary = format!(
        "{{{{ $labels.{LABEL_SERVICE} }}}}: objective {name} burns its {what} ({} %) {{{{ $value | humanize }}}}x as fast as 30 days allow",
        budget.percent
    );
    let _ = writeln!(out, "          summary: {}", quote(&summary));
    let description = format!(
        "Objective {name} ({target}) has spent its {what} at more than {rate}x the sustainable pace over both the last {long} and the last {short}; at {rate}x, a 30-day budget lasts {lasts}. The operations it covers: {INFO_METRIC}{{{LABEL_SERVICE}=\"{{{{ $labels.{LABEL_SERVICE} }}}}\",{LABEL_OBJECTIVE}=\"{name}\"}}; their calls: {OPERATION_CALLS_TOTAL} by {LABEL_OPERATION} and {LABEL_STATUS}."
    );
    let _ = writeln!(out, "          description: {}", quote(&description));
}

/// A percent target written exactly as decimals: 99.9 gives a target of
/// `0.999`, a budget of `0.001` and `0.1` %, not the binary fractions
/// `100 - 99.9` leaves.
struct Budget {
    target: String,
    ratio: String,
    percent: String,
}

impl Budget {
    fn of(percent: f64) -> Self {
        // The decimals the percent was written with, as `Display` gives
        // them back; rounding to those (plus two for a ratio) drops the
        // binary noise and nothing else.
        let shown = percent.to_string();
        let decimals = shown.split_once('.').map_or(0, |(_, d)| d.len()).min(18);
        Self {
            target: fixed(percent / 100.0, decimals + 2),
            ratio: fixed((100.0 - percent) / 100.0, decimals + 2),
            percent: fixed(100.0 - percent, decimals),
        }
    }
}

/// `v` with `decimals` decimals, less trailing zeros.
fn fixed(v: f64, decimals: usize) -> String {
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}

/// A YAML double-quoted scalar.
fn quote(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            '\n' => q.push_str("\\n"),
            '\t' => q.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(q, "\\u{:04x}", u32::from(c));
            }
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const INGESTION: Objective = Objective::new("ingestion")
        .success_rate(99.9)
        .latency(Duration::from_millis(250), 99.0);
    const ADMIN: Objective = Objective::new("admin").success_rate(99.0);

    #[test]
    fn every_window_is_recorded_for_each_target() {
        let yaml = prometheus_rules(&[&INGESTION, &ADMIN]).expect("valid");
        for w in WINDOWS {
            let errors = format!("record: {ERRORS}{w}\n");
            let slow = format!("record: {SLOW}{w}\n");
            // Both objectives have a success target, only one a latency
            // target.
            assert_eq!(yaml.matches(&errors).count(), 2, "{errors}");
            assert_eq!(yaml.matches(&slow).count(), 1, "{slow}");
            assert!(yaml.contains(&format!("[{w}]))")), "{w}");
        }
        assert_eq!(
            yaml.matches("record: objective:operation_success:target\n")
                .count(),
            2
        );
        assert_eq!(
            yaml.matches("record: objective:operation_latency:target\n")
                .count(),
            1
        );
        assert!(yaml.contains("expr: vector(0.999)\n"));
        assert!(yaml.contains("expr: vector(0.99)\n"));
        assert!(yaml.contains(r#"operation_duration_seconds_bucket{le="0.25"}[1h]"#));
        assert!(yaml.contains(r#"operation_objective_info{objective="admin"}[3d]"#));
    }

    #[test]
    fn every_burn_pair_alerts_for_each_target() {
        let yaml = prometheus_rules(&[&INGESTION, &ADMIN]).expect("valid");
        assert_eq!(yaml.matches("alert: ObjectiveErrorBudgetBurn\n").count(), 8);
        assert_eq!(
            yaml.matches("alert: ObjectiveLatencyBudgetBurn\n").count(),
            4
        );
        for (long, short, rate, severity) in [
            ("1h", "5m", "14.4", "page"),
            ("6h", "30m", "6", "page"),
            ("1d", "2h", "3", "ticket"),
            ("3d", "6h", "1", "ticket"),
        ] {
            let pair = format!(
                "{ERRORS}{long}{{objective=\"ingestion\"}} / 0.001 > {rate}\n            and\n          {ERRORS}{short}{{objective=\"ingestion\"}} / 0.001 > {rate}\n        labels:\n          severity: \"{severity}\"\n          window: \"{long}\"\n          objective: \"ingestion\"\n"
            );
            assert!(yaml.contains(&pair), "{pair}\n{yaml}");
            let pair = format!(
                "{SLOW}{long}{{objective=\"ingestion\"}} / 0.01 > {rate}\n            and\n          {SLOW}{short}{{objective=\"ingestion\"}} / 0.01 > {rate}\n"
            );
            assert!(yaml.contains(&pair), "{pair}");
            let pair = format!("{ERRORS}{long}{{objective=\"admin\"}} / 0.01 > {rate}\n");
            assert!(yaml.contains(&pair), "{pair}");
        }
        assert!(yaml.contains(
            "summary: \"{{ $labels.service }}: objective ingestion burns its error budget (0.1 %) {{ $value | humanize }}x as fast as 30 days allow\""
        ));
    }

    #[test]
    fn the_yaml_has_the_shape_prometheus_reads() {
        let yaml = prometheus_rules(&[&INGESTION]).expect("valid");
        let mut groups = 0;
        for line in yaml.lines() {
            assert!(!line.contains('\t'), "{line:?}");
            assert_eq!(line.trim_end(), line, "trailing space: {line:?}");
            if line.starts_with("  - name: ") {
                groups += 1;
            }
            if !line.starts_with('#') && !line.is_empty() {
                let indent = line.len() - line.trim_start().len();
                assert!(
                    indent % 2 == 0 || line.trim_start().starts_with('*'),
                    "{line:?}"
                );
            }
        }
        assert_eq!(groups, 1);
        assert!(yaml.starts_with("# Service level objectives"));
        assert!(yaml.contains("\ngroups:\n  - name: observe.slo.ingestion\n    rules:\n"));
        assert_eq!(
            prometheus_rules(&[]).expect("empty").lines().last(),
            Some("groups: []")
        );
    }

    #[test]
    fn objectives_are_validated_and_must_not_conflict() {
        let bad = Objective::new("bad").success_rate(100.0);
        assert!(matches!(
            prometheus_rules(&[&INGESTION, &bad]),
            Err(ObjectiveError::SuccessRate { .. })
        ));
        let other = Objective::new("ingestion").success_rate(99.0);
        assert_eq!(
            prometheus_rules(&[&INGESTION, &other]),
            Err(ObjectiveError::Conflict {
                objective: "ingestion".into()
            })
        );
        // The same objective twice is written once.
        assert_eq!(
            prometheus_rules(&[&INGESTION, &INGESTION.clone()]),
            prometheus_rules(&[&INGESTION])
        );
    }

    #[test]
    fn targets_are_written_as_the_decimals_they_were_given_in() {
        for (p, target, ratio, percent) in [
            (99.9, "0.999", "0.001", "0.1"),
            (99.0, "0.99", "0.01", "1"),
            (99.95, "0.9995", "0.0005", "0.05"),
            (90.0, "0.9", "0.1", "10"),
            (99.999, "0.99999", "0.00001", "0.001"),
            (12.5, "0.125", "0.875", "87.5"),
        ] {
            let b = Budget::of(p);
            assert_eq!(
                (b.target.as_str(), b.ratio.as_str(), b.percent.as_str()),
                (target, ratio, percent),
                "{p}"
            );
        }
    }

    #[test]
    fn yaml_strings_are_quoted() {
        assert_eq!(quote("a \"b\" \\ c"), r#""a \"b\" \\ c""#);
        assert_eq!(quote("x\ny\u{1}"), r#""x\ny\u0001""#);
        assert_eq!(quote("{{ $value }}: 1 %"), r#""{{ $value }}: 1 %""#);
    }
}
