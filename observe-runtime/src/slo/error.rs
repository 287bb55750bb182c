//! Why an objective was refused.

use std::fmt;
use std::time::Duration;

use super::objective::fmt_duration;

/// An objective that cannot be used: a bad name, a target outside its
/// range, a specification that does not parse, or two objectives of one
/// name that disagree. Each variant names the objective and the field at
/// fault.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ObjectiveError {
    /// The name is not `[a-zA-Z_][a-zA-Z0-9_]*`.
    Name {
        /// The name as given.
        name: String,
    },
    /// Neither a success rate nor a latency target.
    NoTarget {
        /// The objective's name.
        objective: String,
    },
    /// The success rate is not a percent strictly between 0 and 100.
    SuccessRate {
        /// The objective's name.
        objective: String,
        /// The percent as given.
        percent: f64,
    },
    /// The share of calls that must be fast is not a percent strictly
    /// between 0 and 100.
    LatencyPercent {
        /// The objective's name.
        objective: String,
        /// The percent as given.
        percent: f64,
    },
    /// The latency threshold is zero.
    LatencyThreshold {
        /// The objective's name.
        objective: String,
        /// The threshold as given.
        threshold: Duration,
    },
    /// The latency threshold is not a bound of the duration histogram, so
    /// no `le` bucket counts the calls within it.
    NotABucketBound {
        /// The objective's name.
        objective: String,
        /// The threshold as given.
        threshold: Duration,
        /// The nearest bound below it, in seconds, if any.
        below: Option<f64>,
        /// The nearest bound above it, in seconds, if any.
        above: Option<f64>,
    },
    /// A specification (`success=99.9,latency=250ms@99`) that does not
    /// parse.
    Spec {
        /// The objective's name.
        objective: String,
        /// The part of the specification at fault.
        part: String,
        /// What was expected there.
        expected: &'static str,
    },
    /// Two objectives of the same name with different targets.
    Conflict {
        /// The objective's name.
        objective: String,
    },
}

impl fmt::Display for ObjectiveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Name { name } => {
                write!(f, "objective name {name:?} is not [a-zA-Z_][a-zA-Z0-9_]*")
            }
            Self::NoTarget { objective } => write!(
                f,
                "objective {objective:?} has no target: give a success rate, a latency target or both"
            ),
            Self::SuccessRate { objective, percent } => write!(
                f,
                "objective {objective:?}: success rate {percent} is not a percent strictly between 0 and 100"
            ),
            Self::LatencyPercent { objective, percent } => write!(
                f,
                "objective {objective:?}: latency percent {percent} is not a percent strictly between 0 and 100"
            ),
            Self::LatencyThreshold { objective, .. } => write!(
                f,
                "objective {objective:?}: latency threshold is zero; it must be above zero"
            ),
            Self::NotABucketBound {
                objective,
                threshold,
                below,
                above,
            } => {
                write!(
                    f,
                    "objective {objective:?}: latency threshold {} is not a bound of the duration histogram's buckets, so no bucket counts the calls within it",
                    fmt_duration(*threshold)
                )?;
                let near: Vec<String> = [below, above]
                    .into_iter()
                    .flatten()
                    .map(|b| format!("{b}s"))
                    .collect();
                if near.is_empty() {
                    Ok(())
                } else {
                    write!(
                        f,
                        "; the nearest bounds are {} (use one, or add the threshold with histogram_buckets)",
                        near.join(" and ")
                    )
                }
            }
            Self::Spec {
                objective,
                part,
                expected,
            } => write!(
                f,
                "objective {objective:?}: cannot read {part:?}: expected {expected}"
            ),
            Self::Conflict { objective } => write!(
                f,
                "objective {objective:?} is declared twice with different targets"
            ),
        }
    }
}

impl std::error::Error for ObjectiveError {}
