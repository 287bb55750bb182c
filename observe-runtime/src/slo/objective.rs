//! The objective itself: its name, its targets, and their checks.

use std::borrow::Cow;
use std::time::Duration;

use super::error::ObjectiveError;

/// A service level objective: the share of calls that must succeed, the
/// share that must finish within a latency threshold, or both, over a
/// 30-day budget period.
///
/// Built in a `const` for objectives known at compile time, or with
/// [`Objective::named`] and [`Objective::parse`] at run time. Builders do
/// not check their input; [`Objective::validate`] does, and
/// [`prometheus_rules`](super::prometheus_rules) calls it.
///
/// ```
/// use std::time::Duration;
/// use observe_runtime::slo::Objective;
///
/// // 99.9 % of calls succeed; 99 % finish within 250 ms.
/// const API: Objective = Objective::new("api")
///     .success_rate(99.9)
///     .latency(Duration::from_millis(250), 99.0);
///
/// assert_eq!(API.name(), "api");
/// assert_eq!(API.success_target(), Some(99.9));
/// assert_eq!(API.latency_target(), Some((Duration::from_millis(250), 99.0)));
/// API.validate()?;
///
/// // The same, from a configuration string.
/// assert_eq!(Objective::parse("api", "success=99.9, latency=250ms@99")?, API);
/// # Ok::<(), observe_runtime::slo::ObjectiveError>(())
/// ```
///
/// Failed calls are those that end in `error` or `panic`; a `cancelled`
/// call (its future dropped by the caller) is left out of the success
/// target, neither good nor bad, but counts for latency with the time its
/// caller waited. The latency target reads the calls of every status, and
/// its threshold must be a bound of the duration histogram's buckets
/// (250 ms is one of the defaults; see [`Objective::check_bounds`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Objective {
    name: Cow<'static, str>,
    success: Option<f64>,
    latency: Option<(Duration, f64)>,
}

impl Objective {
    /// An objective with no target yet, named `name`
    /// (`[a-zA-Z_][a-zA-Z0-9_]*`).
    #[must_use]
    pub const fn new(name: &'static str) -> Self {
        Self {
            name: Cow::Borrowed(name),
            success: None,
            latency: None,
        }
    }

    /// [`Objective::new`] with a name known only at run time.
    #[must_use]
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: Cow::Owned(name.into()),
            success: None,
            latency: None,
        }
    }

    /// `percent` of calls succeed (e.g. `99.9`): at most `100 - percent`
    /// percent end in `error` or `panic`.
    #[must_use]
    pub const fn success_rate(mut self, percent: f64) -> Self {
        self.success = Some(percent);
        self
    }

    /// `percent` of calls (e.g. `99.0`) finish within `threshold`, which
    /// must be a bound of the duration histogram's buckets.
    #[must_use]
    pub const fn latency(mut self, threshold: Duration, percent: f64) -> Self {
        self.latency = Some((threshold, percent));
        self
    }

    /// The objective's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The percent of calls that must succeed, if the objective has a
    /// success target.
    #[must_use]
    pub const fn success_target(&self) -> Option<f64> {
        self.success
    }

    /// The latency threshold and the percent of calls that must finish
    /// within it, if the objective has a latency target.
    #[must_use]
    pub const fn latency_target(&self) -> Option<(Duration, f64)> {
        self.latency
    }

    /// Checks the objective: the name is `[a-zA-Z_][a-zA-Z0-9_]*`, each
    /// percent is finite and strictly between 0 and 100, the latency
    /// threshold is above zero, and there is at least one target.
    ///
    /// # Errors
    /// The first of those that fails, naming the objective and the field.
    pub fn validate(&self) -> Result<(), ObjectiveError> {
        if !valid_name(&self.name) {
            return Err(ObjectiveError::Name {
                name: self.name.to_string(),
            });
        }
        let objective = || self.name.to_string();
        if self.success.is_none() && self.latency.is_none() {
            return Err(ObjectiveError::NoTarget {
                objective: objective(),
            });
        }
        if let Some(percent) = self.success {
            if !valid_percent(percent) {
                return Err(ObjectiveError::SuccessRate {
                    objective: objective(),
                    percent,
                });
            }
        }
        if let Some((threshold, percent)) = self.latency {
            if threshold.is_zero() {
                return Err(ObjectiveError::LatencyThreshold {
                    objective: objective(),
                    threshold,
                });
            }
            if !valid_percent(percent) {
                return Err(ObjectiveError::LatencyPercent {
                    objective: objective(),
                    percent,
                });
            }
        }
        Ok(())
    }

    /// Checks that the latency threshold, in seconds, is one of `bounds`
    /// (the duration histogram's bucket bounds in seconds, as the
    /// recorder is given them): the rules select the calls within the
    /// threshold by the bucket's `le` label, and a threshold between two
    /// bounds would select none. An objective without a latency target
    /// passes.
    ///
    /// ```
    /// use std::time::Duration;
    /// use observe_runtime::metrics::names::DEFAULT_DURATION_BUCKETS;
    /// use observe_runtime::slo::Objective;
    ///
    /// let fast = Objective::new("fast").latency(Duration::from_millis(250), 99.0);
    /// assert!(fast.check_bounds(DEFAULT_DURATION_BUCKETS).is_ok());
    /// let odd = Objective::new("odd").latency(Duration::from_millis(300), 99.0);
    /// assert!(odd.check_bounds(DEFAULT_DURATION_BUCKETS).is_err());
    /// ```
    ///
    /// # Errors
    /// [`ObjectiveError::NotABucketBound`] if the threshold is not a bound.
    pub fn check_bounds(&self, bounds: &[f64]) -> Result<(), ObjectiveError> {
        match self.latency {
            Some((threshold, _)) if !bounds.contains(&threshold.as_secs_f64()) => {
                let t = threshold.as_secs_f64();
                let finite = || bounds.iter().copied().filter(|b| b.is_finite());
                Err(ObjectiveError::NotABucketBound {
                    objective: self.name.to_string(),
                    threshold,
                    below: finite().filter(|b| *b < t).max_by(f64::total_cmp),
                    above: finite().filter(|b| *b > t).min_by(f64::total_cmp),
                })
            }
            _ => Ok(()),
        }
    }

    /// The `le` label of the bucket holding the calls within the latency
    /// threshold: the bound in seconds as the exposition writes it
    /// (`f64`'s `Display`: `0.25`, `1`).
    pub(super) fn latency_le(&self) -> Option<String> {
        self.latency.map(|(t, _)| t.as_secs_f64().to_string())
    }
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`: a Prometheus label value that every tool and
/// rule file takes without quoting trouble, and a readable alert label.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Finite and strictly inside (0, 100): 100 % leaves no budget to burn,
/// and 0 % has nothing to watch.
fn valid_percent(p: f64) -> bool {
    p.is_finite() && p > 0.0 && p < 100.0
}

/// `250ms`, `1.5s`, `0.1ms`: the grammar [`Objective::parse`] reads, in
/// the unit a reader expects.
pub(super) fn fmt_duration(d: Duration) -> String {
    // From whole nanoseconds, so 100 µs prints as 0.1, not as
    // 0.1 plus a rounding error of the seconds' binary fraction.
    #[allow(clippy::cast_precision_loss)]
    let nanos = d.as_nanos() as f64;
    if nanos >= 1e9 {
        format!("{}s", nanos / 1e9)
    } else {
        format!("{}ms", nanos / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOTH: Objective = Objective::new("api")
        .success_rate(99.9)
        .latency(Duration::from_millis(250), 99.0);

    #[test]
    fn a_const_objective_keeps_its_targets() {
        assert_eq!(BOTH.name(), "api");
        assert_eq!(BOTH.success_target(), Some(99.9));
        assert_eq!(
            BOTH.latency_target(),
            Some((Duration::from_millis(250), 99.0))
        );
        assert_eq!(BOTH.validate(), Ok(()));
        assert_eq!(
            Objective::named(String::from("api"))
                .success_rate(99.9)
                .latency(Duration::from_millis(250), 99.0),
            BOTH
        );
    }

    #[test]
    fn names_follow_the_label_grammar() {
        for good in ["a", "_", "api_v2", "Ingestion", "_x9"] {
            assert_eq!(Objective::named(good).success_rate(99.0).validate(), Ok(()));
        }
        for bad in ["", "9a", "api-v2", "a.b", "a b", "é", "a\"b"] {
            assert_eq!(
                Objective::named(bad).success_rate(99.0).validate(),
                Err(ObjectiveError::Name { name: bad.into() }),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn percents_are_strictly_inside_0_and_100() {
        for bad in [0.0, 100.0, -1.0, 100.5, f64::NAN, f64::INFINITY] {
            let e = Objective::new("o").success_rate(bad).validate();
            assert!(
                matches!(e, Err(ObjectiveError::SuccessRate { ref objective, percent })
                    if objective == "o" && (percent == bad || bad.is_nan())),
                "{bad}: {e:?}"
            );
            let e = Objective::new("o")
                .latency(Duration::from_millis(5), bad)
                .validate();
            assert!(
                matches!(e, Err(ObjectiveError::LatencyPercent { .. })),
                "{bad}: {e:?}"
            );
        }
        for good in [0.001, 50.0, 99.999] {
            assert_eq!(Objective::new("o").success_rate(good).validate(), Ok(()));
        }
    }

    #[test]
    fn a_zero_threshold_or_no_target_is_refused() {
        assert_eq!(
            Objective::new("o").latency(Duration::ZERO, 99.0).validate(),
            Err(ObjectiveError::LatencyThreshold {
                objective: "o".into(),
                threshold: Duration::ZERO
            })
        );
        assert_eq!(
            Objective::new("o").validate(),
            Err(ObjectiveError::NoTarget {
                objective: "o".into()
            })
        );
    }

    #[test]
    fn errors_name_the_objective_and_the_field() {
        let e = Objective::new("api").success_rate(100.0).validate();
        let said = e.expect_err("refused").to_string();
        assert!(
            said.contains("\"api\"") && said.contains("success rate 100"),
            "{said}"
        );
        let said = Objective::new("api")
            .latency(Duration::from_millis(250), 0.0)
            .validate()
            .expect_err("refused")
            .to_string();
        assert!(
            said.contains("\"api\"") && said.contains("latency percent 0"),
            "{said}"
        );
        let said = Objective::new("api")
            .latency(Duration::from_millis(300), 99.0)
            .check_bounds(&[0.25, 0.5])
            .expect_err("refused")
            .to_string();
        assert!(said.contains("\"api\"") && said.contains("300ms"), "{said}");
    }

    #[test]
    fn the_threshold_must_be_a_bucket_bound() {
        let bounds = crate::base::names::DEFAULT_DURATION_BUCKETS;
        for ms in [1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000] {
            let o = Objective::new("o").latency(Duration::from_millis(ms), 99.0);
            assert_eq!(o.check_bounds(bounds), Ok(()), "{ms} ms");
        }
        let o = Objective::new("o").latency(Duration::from_micros(100), 99.0);
        assert_eq!(o.check_bounds(bounds), Ok(()));
        let o = Objective::new("o").latency(Duration::from_millis(300), 99.0);
        assert!(o.check_bounds(bounds).is_err());
        assert_eq!(
            Objective::new("o").success_rate(99.0).check_bounds(&[]),
            Ok(())
        );
    }

    #[test]
    fn the_le_label_is_the_bound_as_the_exposition_writes_it() {
        let le = |d| {
            Objective::new("o")
                .latency(d, 99.0)
                .latency_le()
                .expect("a latency target")
        };
        assert_eq!(le(Duration::from_millis(250)), "0.25");
        assert_eq!(le(Duration::from_secs(1)), "1");
        assert_eq!(le(Duration::from_millis(2500)), "2.5");
        assert_eq!(le(Duration::from_micros(100)), "0.0001");
        assert_eq!(Objective::new("o").success_rate(99.0).latency_le(), None);
    }

    #[test]
    fn durations_print_in_the_grammar_they_are_read_in() {
        assert_eq!(fmt_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(fmt_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(fmt_duration(Duration::from_secs(2)), "2s");
        assert_eq!(fmt_duration(Duration::from_micros(100)), "0.1ms");
    }
}
