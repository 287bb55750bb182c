//! Service level objectives attached to operations, and the Prometheus
//! rules that watch them.
//!
//! An [`Objective`] names a target for the calls of the operations it is
//! attached to: a share of calls that succeed, a share that finish within
//! a latency threshold, or both. Attaching one adds no label to the
//! operation's series: the exposition carries one more series per
//! operation, `operation_objective_info{service,operation,objective} 1`
//! ([`INFO_METRIC`]), and the rules from [`prometheus_rules`] join the
//! operation metrics to it. An operation has at most one objective; an
//! objective may cover many operations, whose calls then count together.
//!
//! The rules record, per service and objective, the error ratio and the
//! slow-call ratio over 5m, 30m, 1h, 2h, 6h, 1d and 3d, and alert on the
//! multi-window, multi-burn-rate pairs of the Google SRE workbook
//! (chapter 5), for a 30-day budget period:
//!
//! | severity | burn rate | long window | short window |
//! |---|---|---|---|
//! | page | 14.4 | 1h | 5m |
//! | page | 6 | 6h | 30m |
//! | ticket | 3 | 1d | 2h |
//! | ticket | 1 | 3d | 6h |
//!
//! `docs/prometheus/slo_rules.yml` is such a file, with its unit tests in
//! `docs/prometheus/slo_rules_test.yml`.

mod declared;
mod error;
mod objective;
mod rules;
mod spec;

#[doc(hidden)]
pub use declared::DeclaredObjective;
pub use declared::declared;
pub use error::ObjectiveError;
pub use objective::Objective;
pub use rules::prometheus_rules;

/// The info series that attaches an objective to an operation:
/// `operation_objective_info{service="…",operation="…",objective="…"} 1`,
/// one per operation that has an objective.
pub const INFO_METRIC: &str = "operation_objective_info";

/// Label of [`INFO_METRIC`] (and of the recorded rules) holding the
/// objective's name.
pub const LABEL_OBJECTIVE: &str = "objective";
