//! The demo's service level objectives, shared by the examples that
//! attach them and by `slo_rules`, which prints their Prometheus rules
//! (`docs/prometheus/slo_rules.yml`).

use std::time::Duration;

use observe::slo::Objective;

/// Event ingestion: 99.9 % of calls succeed, 99 % finish within 250 ms.
pub(crate) const INGESTION: Objective = Objective::new("ingestion")
    .success_rate(99.9)
    .latency(Duration::from_millis(250), 99.0);

/// Administrative calls: 99 % succeed; no latency target.
pub(crate) const ADMIN: Objective = Objective::new("admin").success_rate(99.0);

/// Every objective above, in the order the rule file lists them.
pub(crate) const ALL: &[&Objective] = &[&INGESTION, &ADMIN];
