//! Prints the Prometheus recording and alerting rules for the objectives
//! of `examples/support/objectives.rs`. Its output is
//! `docs/prometheus/slo_rules.yml`:
//!
//! ```text
//! cargo run --example slo_rules > docs/prometheus/slo_rules.yml
//! ```

#[path = "support/objectives.rs"]
mod objectives;

fn main() -> Result<(), observe::slo::ObjectiveError> {
    print!("{}", observe::slo::prometheus_rules(objectives::ALL)?);
    Ok(())
}
