//! Objectives at install: the ones attributes declare, replaced per
//! operation by the builder's and the environment's, each checked against
//! the duration buckets and published as `operation_objective_info`.

use std::collections::BTreeMap;

use super::{InstallError, ObserveBuilder};
use crate::base::names;
use crate::recorder::{InfoSeries, NativeMetrics};
use crate::slo::{self, Objective, ObjectiveError};

/// What the builder attaches to an operation.
#[derive(Debug, Clone)]
pub(crate) enum Attached {
    /// This objective.
    Objective(Objective),
    /// The objective of this name declared elsewhere (in code, or for
    /// another operation), from `OBSERVE_OBJECTIVES`' `op=name` form.
    Named(String),
}

/// The builder's attachments, in the order given; a later one for the
/// same operation wins.
#[derive(Debug, Default)]
pub(crate) struct Configured(pub(crate) Vec<(String, Attached)>);

impl ObserveBuilder {
    /// Attaches `objective` to `operation`, replacing the one its
    /// attribute declares, if any (also `OBSERVE_OBJECTIVES`).
    /// [`install`](Self::install) checks it and fails with
    /// [`InstallError::Objective`] naming the operation if the objective
    /// is invalid, if its latency threshold is not a bound of the duration
    /// buckets, or if two objectives of one name differ.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use observe_runtime::slo::Objective;
    ///
    /// let _guard = observe_runtime::Observe::builder("websocket-ingestion")
    ///     .objective(
    ///         "process_event",
    ///         Objective::named("ingestion")
    ///             .success_rate(99.9)
    ///             .latency(Duration::from_millis(250), 99.0),
    ///     )
    ///     .install()?;
    /// # Ok::<(), observe_runtime::InstallError>(())
    /// ```
    pub fn objective(mut self, operation: impl Into<String>, objective: Objective) -> Self {
        self.objectives
            .0
            .push((operation.into(), Attached::Objective(objective)));
        self
    }
}

/// Reads `OBSERVE_OBJECTIVES`: `;`-separated `operation=name(targets)`
/// (an objective with its targets, e.g.
/// `process_event=ingestion(success=99.9,latency=250ms@99)`) or
/// `operation=name` (an objective declared elsewhere by that name).
pub(crate) fn parse_env(text: &str) -> Result<Vec<(String, Attached)>, ObjectiveError> {
    let malformed = |part: &str| ObjectiveError::Spec {
        objective: String::new(),
        part: part.trim().to_owned(),
        expected: "operation=name(targets) or operation=name, separated by `;`",
    };
    let mut out = Vec::new();
    for part in text.split(';').filter(|p| !p.trim().is_empty()) {
        let (op, rest) = part.split_once('=').ok_or_else(|| malformed(part))?;
        let (op, rest) = (op.trim(), rest.trim());
        if !crate::base::names::is_valid_operation(op) {
            return Err(malformed(part));
        }
        let attached = match rest.split_once('(') {
            Some((name, spec)) => {
                let spec = spec.strip_suffix(')').ok_or_else(|| malformed(part))?;
                Attached::Objective(Objective::parse(name.trim(), spec)?)
            }
            None if !rest.is_empty() => Attached::Named(rest.to_owned()),
            None => return Err(malformed(part)),
        };
        out.push((op.to_owned(), attached));
    }
    Ok(out)
}

/// Every operation's objective, by operation: declared ones replaced by
/// configured ones, all checked against `bounds` (the duration buckets in
/// seconds).
pub(crate) fn resolve(
    configured: &Configured,
    bounds: &[f64],
) -> Result<BTreeMap<String, Objective>, InstallError> {
    let refused = |operation: &str, source| InstallError::Objective {
        operation: operation.to_owned(),
        source,
    };
    let mut by_op: BTreeMap<String, Objective> = BTreeMap::new();
    for (op, objective) in slo::declared() {
        match by_op.get(op) {
            Some(seen) if seen != objective => {
                return Err(refused(
                    op,
                    ObjectiveError::Conflict {
                        objective: format!("{} / {}", seen.name(), objective.name()),
                    },
                ));
            }
            _ => {
                by_op.insert(op.to_owned(), objective.clone());
            }
        }
    }
    // Names the `op=name` form can refer to: every objective in code or
    // given with its targets.
    let mut known: Vec<Objective> = by_op.values().cloned().collect();
    known.extend(configured.0.iter().filter_map(|(_, a)| match a {
        Attached::Objective(o) => Some(o.clone()),
        Attached::Named(_) => None,
    }));
    for (op, attached) in &configured.0 {
        let objective = match attached {
            Attached::Objective(o) => o.clone(),
            Attached::Named(name) => known
                .iter()
                .find(|o| o.name() == name)
                .cloned()
                .ok_or_else(|| {
                    refused(
                        op,
                        ObjectiveError::Spec {
                            objective: name.clone(),
                            part: name.clone(),
                            expected: "the name of an objective declared in code, or name(targets)",
                        },
                    )
                })?,
        };
        by_op.insert(op.clone(), objective);
    }
    let mut by_name: BTreeMap<&str, &Objective> = BTreeMap::new();
    for (op, objective) in &by_op {
        objective.validate().map_err(|e| refused(op, e))?;
        objective.check_bounds(bounds).map_err(|e| refused(op, e))?;
        if let Some(seen) = by_name.insert(objective.name(), objective) {
            if seen != objective {
                return Err(refused(
                    op,
                    ObjectiveError::Conflict {
                        objective: objective.name().to_owned(),
                    },
                ));
            }
        }
    }
    Ok(by_op)
}

/// Adds `operation_objective_info{operation, objective} 1` per operation.
pub(crate) fn publish(objectives: &BTreeMap<String, Objective>, native: &NativeMetrics) {
    for (op, objective) in objectives {
        native.add_info(InfoSeries {
            name: slo::INFO_METRIC,
            help: "The service level objective each operation is held to; the objective rules join on it.",
            labels: vec![
                (names::LABEL_OPERATION.to_owned(), op.clone()),
                (slo::LABEL_OBJECTIVE.to_owned(), objective.name().to_owned()),
            ],
        });
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const BOUNDS: &[f64] = &[0.1, 0.25, 0.5];

    fn configured(list: Vec<(&str, Attached)>) -> Configured {
        Configured(list.into_iter().map(|(o, a)| (o.to_owned(), a)).collect())
    }

    fn api() -> Objective {
        Objective::named("api").latency(Duration::from_millis(250), 99.0)
    }

    #[test]
    fn configured_objectives_are_checked_and_named_ones_found() {
        let got = resolve(
            &configured(vec![
                ("a", Attached::Objective(api())),
                ("b", Attached::Named("api".into())),
            ]),
            BOUNDS,
        )
        .expect("valid");
        assert_eq!(got.get("a"), Some(&api()));
        assert_eq!(got.get("b"), Some(&api()));
    }

    #[test]
    fn a_threshold_between_bounds_names_the_operation_and_the_nearest_bounds() {
        let odd = Objective::named("odd").latency(Duration::from_millis(300), 99.0);
        let e = resolve(
            &configured(vec![("op.x", Attached::Objective(odd))]),
            BOUNDS,
        )
        .expect_err("300ms is no bound");
        let text = e.to_string();
        assert!(text.contains("operation `op.x`"), "{text}");
        assert!(text.contains("0.25s and 0.5s"), "{text}");
    }

    #[test]
    fn unknown_names_invalid_targets_and_conflicts_are_refused() {
        for bad in [
            vec![("a", Attached::Named("nope".into()))],
            vec![(
                "a",
                Attached::Objective(Objective::named("x").success_rate(100.0)),
            )],
            vec![
                ("a", Attached::Objective(api())),
                (
                    "b",
                    Attached::Objective(Objective::named("api").success_rate(99.0)),
                ),
            ],
        ] {
            assert!(
                matches!(
                    resolve(&configured(bad.clone()), BOUNDS),
                    Err(InstallError::Objective { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_environment_form_defines_or_names_objectives() {
        let got = parse_env(" a = api(latency=250ms@99) ; b.c=api ;").expect("valid");
        assert!(matches!(&got[0], (op, Attached::Objective(o)) if op == "a" && *o == api()));
        assert!(matches!(&got[1], (op, Attached::Named(n)) if op == "b.c" && n == "api"));
        for bad in [
            "a",
            "a=",
            "=api",
            "a=api(success=99",
            "a=api(success=101)",
            "bad op=api",
        ] {
            assert!(parse_env(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn published_as_one_info_series_per_operation() {
        let native = NativeMetrics::new(BOUNDS, Vec::new());
        let objectives =
            resolve(&configured(vec![("a", Attached::Objective(api()))]), BOUNDS).expect("valid");
        publish(&objectives, &native);
        let mut out = String::new();
        native.render_into(&mut out, crate::recorder::Format::Text);
        assert!(
            out.contains("operation_objective_info{operation=\"a\",objective=\"api\"} 1\n"),
            "{out}"
        );
    }
}
