//! Objectives end to end: an attribute declares one, `install()` checks it
//! against the duration buckets (refusing a threshold between bounds and
//! installing nothing), and the exposition joins it to its operation with
//! one `operation_objective_info` series from install on, before any
//! call. Installs globally, so this binary holds a single test.

use std::time::Duration;

use observe::sink::CaptureSink;
use observe::slo::{self, Objective};
use observe::{InstallError, Observe, monitor_performance};

const API: Objective = Objective::new("api")
    .success_rate(99.9)
    .latency(Duration::from_millis(250), 99.0);

#[monitor_performance("api.get", objective = API)]
fn get(x: u64) -> u64 {
    x + 1
}

struct Store;

#[monitor_performance(objective = API)]
impl Store {
    fn put(&self, x: u64) -> u64 {
        x
    }

    #[monitor_performance(skip)]
    fn len(&self) -> usize {
        0
    }
}

#[test]
fn declared_objectives_are_checked_at_install_and_exposed_before_any_call() {
    let declared: Vec<(&str, &str)> = slo::declared()
        .into_iter()
        .map(|(op, o)| (op, o.name()))
        .collect();
    assert_eq!(declared, [("Store.put", "api"), ("api.get", "api")]);

    // 250 ms is no bound of these buckets: refused, naming the operation
    // and the bounds around the threshold, and nothing is installed.
    let refused = Observe::builder("objectives")
        .sink(CaptureSink::new())
        .histogram_buckets("operation_duration_seconds", &[0.1, 0.5, 1.0])
        .install()
        .err();
    let Some(e @ InstallError::Objective { operation, .. }) = &refused else {
        panic!("expected an objective error, got {refused:?}");
    };
    assert_eq!(operation, "Store.put");
    assert!(e.to_string().contains("0.1s and 0.5s"), "{e}");
    assert!(!tracing::dispatcher::has_been_set());

    // The environment names an objective declared in code for one more
    // operation.
    let guard = Observe::builder("objectives")
        .sink(CaptureSink::new())
        .from_env_vars([("OBSERVE_OBJECTIVES", "batch.run=api")])
        .install()
        .expect("install");
    let text = guard.render().expect("prometheus is on");
    let info: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("operation_objective_info{"))
        .collect();
    assert_eq!(
        info,
        [
            "operation_objective_info{service=\"objectives\",operation=\"Store.put\",objective=\"api\"} 1",
            "operation_objective_info{service=\"objectives\",operation=\"api.get\",objective=\"api\"} 1",
            "operation_objective_info{service=\"objectives\",operation=\"batch.run\",objective=\"api\"} 1",
        ],
        "{text}"
    );
    // No operation series carries the objective.
    assert_eq!(get(1) + Store.put(1), 3);
    assert_eq!(Store.len(), 0);
    let text = guard.render().expect("prometheus is on");
    assert!(
        text.lines()
            .filter(|l| l.starts_with("operation_calls_total"))
            .all(|l| !l.contains("objective=")),
        "{text}"
    );
}
