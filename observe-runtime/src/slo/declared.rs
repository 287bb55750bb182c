//! Objectives declared in code by `#[monitor_performance(objective = ...)]`:
//! each expansion registers its operation and objective at link time, so
//! [`install`](crate::ObserveBuilder::install) can check and publish every
//! one of them before the first call.

use super::Objective;

/// One operation's objective, as its attribute declared it. Made by the
/// `monitor_performance` expansion.
#[doc(hidden)]
#[derive(Debug)]
pub struct DeclaredObjective {
    operation: &'static str,
    objective: &'static Objective,
}

impl DeclaredObjective {
    /// Used by the `__objective!` expansion.
    #[doc(hidden)]
    #[must_use]
    pub const fn new(operation: &'static str, objective: &'static Objective) -> Self {
        Self {
            operation,
            objective,
        }
    }
}

inventory::collect!(DeclaredObjective);

/// The objectives the program's `#[monitor_performance]` attributes
/// declare, as `(operation, objective)`, sorted by operation. An
/// operation declared by several functions appears once per function.
///
/// ```
/// for (operation, objective) in observe_runtime::slo::declared() {
///     println!("{operation}: {}", objective.name());
/// }
/// ```
#[must_use]
pub fn declared() -> Vec<(&'static str, &'static Objective)> {
    let mut all: Vec<_> = inventory::iter::<DeclaredObjective>
        .into_iter()
        .map(|d| (d.operation, d.objective))
        .collect();
    all.sort_by(|a, b| a.0.cmp(b.0).then_with(|| a.1.name().cmp(b.1.name())));
    all
}

/// Registers `operation`'s objective, held in the `static` named.
///
/// `__objective!("op", STATIC);`
#[doc(hidden)]
#[macro_export]
macro_rules! __objective {
    ($op:literal, $objective:ident) => {
        $crate::__private::inventory::submit! {
            $crate::__private::DeclaredObjective::new($op, &$objective)
        }
    };
}
