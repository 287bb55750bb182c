//! The collector's cardinality cap, through the real Prometheus recorder:
//! 100,000 distinct tag values give at most cap + 1 series. The builder
//! installs globally, so this binary holds a single test.

#[path = "support/promtool.rs"]
mod support;

use std::time::Duration;

use observe::Observe;
use observe::metrics::MetricsCollector;
use observe::sink::CaptureSink;

const CAP: usize = 50;
const DISTINCT: usize = 100_000;

/// The series of `name` in the exposition: `name{...} value` lines.
fn series<'a>(exposition: &'a str, name: &str) -> Vec<&'a str> {
    exposition
        .lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .collect()
}

fn value(line: &str) -> f64 {
    line.rsplit_once(' ')
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(f64::NAN)
}

#[test]
fn a_hundred_thousand_tag_values_give_at_most_cap_plus_one_series() {
    let guard = Observe::builder("cardinality")
        .sink(CaptureSink::new())
        .install()
        .expect("install");
    let metrics = MetricsCollector::with_max_label_sets(CAP);
    for i in 0..DISTINCT {
        let user = format!("user-{i}");
        metrics.record_counter("logins", 1, &[("user", &user)]);
        metrics.record_gauge("session_age_seconds", 1.0, &[("user", &user)]);
        metrics.record_timing(
            "authenticate",
            Duration::from_micros(300),
            &[("user", &user)],
        );
    }
    let text = guard.render().expect("prometheus is on");

    let logins = series(&text, "logins_total");
    assert_eq!(logins.len(), CAP + 1, "{logins:#?}");
    let overflow: Vec<_> = logins
        .iter()
        .filter(|l| l.contains(r#"overflow="true""#))
        .collect();
    assert_eq!(overflow.len(), 1, "{logins:#?}");
    // Nothing is lost: every value is in an admitted series or the overflow.
    let total: f64 = logins.iter().map(|l| value(l)).sum();
    assert_eq!(total, DISTINCT as f64);
    assert_eq!(value(overflow[0]), (DISTINCT - CAP) as f64);

    assert_eq!(series(&text, "session_age_seconds").len(), CAP + 1);
    assert_eq!(
        series(&text, "operation_calls_total").len(),
        CAP + 1,
        "timings are capped too"
    );
    assert_eq!(
        series(&text, "operation_duration_seconds_count").len(),
        CAP + 1
    );

    // And the cap says so, once per capped metric.
    let said = series(&text, "metric_label_sets_overflow_total");
    assert_eq!(said.len(), 3, "{said:#?}");
    for l in &said {
        assert_eq!(value(l), (DISTINCT - CAP) as f64, "{l}");
    }

    // The exposition stays valid for Prometheus.
    assert_eq!(support::promtool_check(&text), "", "promtool check metrics");
}
