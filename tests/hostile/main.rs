//! The hostile-peer matrix: every network path of observe (the `_bulk`
//! sink, the InfluxDB push v1 and v2, TCP and TLS json_lines, UDP, and the
//! `/metrics` listener) against one loopback peer playing each misbehaviour
//! it can meet, then turning sane on the same port.
//!
//! One test, [`matrix::hostile_peer_matrix`], runs every cell (a few at a
//! time), prints the matrix and, when `OBSERVE_MATRIX_OUT` names a file,
//! writes it there as a markdown table.
//!
//! The binary installs a global debugging recorder (the workers publish
//! their counters and `observe_component_restarts_total` to it) and a panic
//! hook that remembers every panic of an `observe*` thread: a panic in a
//! background thread fails no test on its own, and a supervised worker
//! would restart silently.

#[path = "../support/harness.rs"]
mod harness;
mod listener;
mod matrix;
mod peer;
// Empty without the `tls` feature (the module gates itself).
#[path = "../support/tls.rs"]
mod tls_ca;

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Instant;

use harness::recorder;
pub(crate) use harness::wait_until;
use metrics_util::debugging::DebugValue;
use observe::log::JsonLayer;
use observe::metrics::names::COMPONENT_RESTARTS_TOTAL;
use observe::sink::Sink;
use tracing::Dispatch;
use tracing_subscriber::layer::SubscriberExt as _;

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A subscriber writing JSON lines of `service` to `sink`.
pub(crate) fn dispatch(service: &str, sink: impl Sink) -> Dispatch {
    Dispatch::new(tracing_subscriber::registry().with(JsonLayer::new(service).with_sink(sink)))
}

/// The panics of `observe*` threads so far: thread name and when.
static PANICS: Mutex<Vec<(String, Instant)>> = Mutex::new(Vec::new());

/// Installs the panic hook and the debugging recorder; call first.
pub(crate) fn install() {
    static HOOK: OnceLock<()> = OnceLock::new();
    HOOK.get_or_init(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if let Some(name) = std::thread::current().name() {
                if name.starts_with("observe") {
                    lock(&PANICS).push((name.to_owned(), Instant::now()));
                }
            }
            previous(info);
        }));
    });
    recorder();
}

/// Panics of threads named `thread` since `since`.
pub(crate) fn panics_of(thread: &str, since: Instant) -> usize {
    lock(&PANICS)
        .iter()
        .filter(|(name, at)| name == thread && *at >= since)
        .count()
}

/// Every panic of an `observe*` thread in this process.
pub(crate) fn all_panics() -> Vec<String> {
    lock(&PANICS).iter().map(|(n, _)| n.clone()).collect()
}

/// `observe_component_restarts_total` by component, summed over the whole
/// run (a snapshot resets the debugging recorder's counters).
pub(crate) fn restarts() -> HashMap<String, u64> {
    static TOTALS: Mutex<Option<HashMap<String, u64>>> = Mutex::new(None);
    let mut totals = lock(&TOTALS);
    let totals = totals.get_or_insert_with(HashMap::new);
    for (key, _, _, value) in recorder().snapshot().into_vec() {
        let k = key.key();
        if k.name() != COMPONENT_RESTARTS_TOTAL {
            continue;
        }
        if let DebugValue::Counter(v) = value {
            let component = k
                .labels()
                .find(|l| l.key() == "component")
                .map_or_else(String::new, |l| l.value().to_owned());
            *totals.entry(component).or_insert(0) += v;
        }
    }
    totals.clone()
}
