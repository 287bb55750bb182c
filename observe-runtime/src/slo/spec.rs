//! An objective written as text, for configuration from the environment:
//! `success=99.9,latency=250ms@99`.

use super::error::ObjectiveError;
use super::objective::Objective;
use crate::base::duration;

impl Objective {
    /// Reads an objective named `name` from `spec`: comma-separated
    /// targets, either or both of `success=PERCENT` and
    /// `latency=DURATION@PERCENT`, with whitespace allowed around every
    /// part and an optional `%` after a percent. Durations are a number
    /// and a unit, `ms`, `s` or `m` (`250ms`, `1.5s`).
    ///
    /// ```
    /// use std::time::Duration;
    /// use observe_runtime::slo::Objective;
    ///
    /// let admin = Objective::parse("admin", "success=99%")?;
    /// assert_eq!(admin, Objective::new("admin").success_rate(99.0));
    /// let fast = Objective::parse("fast", " latency = 1.5s @ 99.5 ")?;
    /// assert_eq!(fast.latency_target(), Some((Duration::from_millis(1500), 99.5)));
    /// # Ok::<(), observe_runtime::slo::ObjectiveError>(())
    /// ```
    ///
    /// # Errors
    /// [`ObjectiveError::Spec`] naming the part that does not parse (an
    /// unknown or repeated key, a malformed percent or duration), or what
    /// [`Objective::validate`] finds wrong with the result.
    pub fn parse(name: &str, spec: &str) -> Result<Self, ObjectiveError> {
        let mut objective = Self::named(name);
        let refuse = |part: &str, expected| ObjectiveError::Spec {
            objective: name.to_owned(),
            part: part.trim().to_owned(),
            expected,
        };
        let (mut success, mut latency) = (false, false);
        for part in spec.split(',') {
            if part.trim().is_empty() {
                // `success=99.9,` or an empty specification: the check
                // below reports a missing target.
                continue;
            }
            let Some((key, value)) = part.split_once('=') else {
                return Err(refuse(
                    part,
                    "`success=PERCENT` or `latency=DURATION@PERCENT`",
                ));
            };
            match key.trim() {
                "success" if !success => {
                    success = true;
                    let p = percent(value).ok_or_else(|| refuse(part, "a percent, like `99.9`"))?;
                    objective = objective.success_rate(p);
                }
                "latency" if !latency => {
                    latency = true;
                    let expected = "a duration and a percent, like `250ms@99`";
                    let (d, p) = value
                        .split_once('@')
                        .ok_or_else(|| refuse(part, expected))?;
                    let d = duration::parse(d.trim()).ok_or_else(|| refuse(part, expected))?;
                    let p = percent(p).ok_or_else(|| refuse(part, expected))?;
                    objective = objective.latency(d, p);
                }
                "success" | "latency" => return Err(refuse(part, "each target at most once")),
                _ => return Err(refuse(part, "`success` or `latency` before `=`")),
            }
        }
        objective.validate()?;
        Ok(objective)
    }
}

/// `99.9`, `99.9%`, ` 99 `: a plain decimal number. Range checks are
/// [`Objective::validate`]'s, so that they read the same for code and
/// configuration.
fn percent(v: &str) -> Option<f64> {
    let v = v.trim();
    let v = v.strip_suffix('%').unwrap_or(v).trim_end();
    // `f64::from_str` also takes `inf`, `NaN` and `1e2`; a percent in a
    // configuration is digits and at most one point.
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    v.parse().ok()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn either_part_whitespace_and_percent_signs() {
        let both = Objective::new("api")
            .success_rate(99.9)
            .latency(Duration::from_millis(250), 99.0);
        for spec in [
            "success=99.9,latency=250ms@99",
            " latency = 250ms @ 99 , success = 99.9% ",
            "success=99.9,latency=0.25s@99%,",
        ] {
            assert_eq!(Objective::parse("api", spec), Ok(both.clone()), "{spec:?}");
        }
        assert_eq!(
            Objective::parse("admin", "success=99"),
            Ok(Objective::new("admin").success_rate(99.0))
        );
        assert_eq!(
            Objective::parse("fast", "latency=2m@90"),
            Ok(Objective::new("fast").latency(Duration::from_secs(120), 90.0))
        );
    }

    #[test]
    fn a_part_that_does_not_parse_is_named() {
        let spec_error = |spec: &str| match Objective::parse("api", spec) {
            Err(ObjectiveError::Spec {
                objective, part, ..
            }) => {
                assert_eq!(objective, "api");
                part
            }
            other => panic!("{spec:?}: {other:?}"),
        };
        assert_eq!(spec_error("success"), "success");
        assert_eq!(spec_error("success=high"), "success=high");
        assert_eq!(spec_error("success=1e2"), "success=1e2");
        assert_eq!(spec_error("success=NaN"), "success=NaN");
        assert_eq!(spec_error("success=-5"), "success=-5");
        assert_eq!(spec_error("success=99,success=98"), "success=98");
        assert_eq!(spec_error("latency=250ms"), "latency=250ms");
        assert_eq!(spec_error("latency=250@99"), "latency=250@99");
        assert_eq!(spec_error("latency=250ms@"), "latency=250ms@");
        assert_eq!(spec_error("latency=1h@99"), "latency=1h@99");
        assert_eq!(spec_error("availability=99"), "availability=99");
        assert_eq!(spec_error(" errors = 1 "), "errors = 1");
    }

    #[test]
    fn the_result_is_validated() {
        assert_eq!(
            Objective::parse("api", ""),
            Err(ObjectiveError::NoTarget {
                objective: "api".into()
            })
        );
        assert_eq!(
            Objective::parse("api", " , "),
            Err(ObjectiveError::NoTarget {
                objective: "api".into()
            })
        );
        assert!(matches!(
            Objective::parse("api", "success=100"),
            Err(ObjectiveError::SuccessRate { .. })
        ));
        assert!(matches!(
            Objective::parse("api", "latency=0ms@99"),
            Err(ObjectiveError::LatencyThreshold { .. })
        ));
        assert!(matches!(
            Objective::parse("api-v2", "success=99"),
            Err(ObjectiveError::Name { .. })
        ));
    }

    #[test]
    fn errors_read_well() {
        let e = Objective::parse("api", "latency=250@99").expect_err("refused");
        assert_eq!(
            e.to_string(),
            "objective \"api\": cannot read \"latency=250@99\": expected a duration and a percent, like `250ms@99`"
        );
    }
}
