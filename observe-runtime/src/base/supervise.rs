//! Background threads that survive their own panics.
//!
//! A sink worker, the InfluxDB push, the system sampler and the `/metrics`
//! listener each run on a thread of their own, talking to peers that may be
//! broken or hostile. A bug that a peer's answer reaches must cost at most
//! what the thread held at that moment, not the component for the rest of
//! the process: a dead sink worker would make every later flush wait its
//! whole timeout and drop every line. So each runs under [`spawn`]: a panic
//! is caught, counted in `observe_component_restarts_total{component}`,
//! written once to stderr and as an `ERROR` event, and the body runs again.
//! The body waits out [`restart_delay`] itself, with whatever primitive
//! its stop signal uses, so a component being stopped is never held up by
//! a backoff.
//!
//! The thread's end is signalled separately from its `JoinHandle`, so a
//! stop can wait for it with a deadline ([`Supervised::join_until`]): a
//! thread stuck in a peer's exchange past that deadline is left behind
//! instead of holding up the process's exit.

use std::any::Any;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::names;

/// First wait before a restart; doubles per consecutive panic.
const FIRST_RESTART_DELAY: Duration = Duration::from_millis(100);
/// Longest wait before a restart.
const MAX_RESTART_DELAY: Duration = Duration::from_secs(10);

/// The wait before the `restarts`th restart (1-based): 100 ms doubling to
/// at most 10 s, so a body that panics at once every time costs one short
/// burst, then a panic every ten seconds.
pub(crate) fn restart_delay(restarts: u32) -> Duration {
    let exp = restarts.saturating_sub(1).min(16);
    FIRST_RESTART_DELAY
        .saturating_mul(1 << exp)
        .min(MAX_RESTART_DELAY)
}

/// Set when the thread's body has returned (or the thread is gone).
#[derive(Debug, Default)]
struct Done {
    ended: Mutex<bool>,
    cond: Condvar,
}

impl Done {
    fn set(&self) {
        *self.ended.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.cond.notify_all();
    }
}

/// Marks the thread ended when dropped, whichever way the thread ends.
struct EndMark(Arc<Done>);

impl Drop for EndMark {
    fn drop(&mut self) {
        self.0.set();
    }
}

/// A supervised background thread.
#[derive(Debug)]
pub(crate) struct Supervised {
    handle: JoinHandle<()>,
    done: Arc<Done>,
}

impl Supervised {
    /// Waits for the thread to end, at most until `deadline`; `true` if it
    /// ended (and was joined). A thread still running then is detached.
    pub(crate) fn join_until(self, deadline: Option<Instant>) -> bool {
        let mut ended = self
            .done
            .ended
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        while !*ended {
            let left = match deadline {
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => left,
                    _ => return false,
                },
                None => Duration::from_secs(1),
            };
            ended = self
                .done
                .cond
                .wait_timeout(ended, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        drop(ended);
        let _ = self.handle.join();
        true
    }
}

/// Starts `body` on a thread named `thread_name`, restarting it after a
/// panic. `body` gets the number of restarts so far (0 on the first run):
/// on a restart it recovers what it held and waits out
/// [`restart_delay`]. The thread ends when `body` returns.
pub(crate) fn spawn<F>(
    thread_name: String,
    component: String,
    mut body: F,
) -> io::Result<Supervised>
where
    F: FnMut(u32) + Send + 'static,
{
    let done = Arc::new(Done::default());
    let mark = EndMark(Arc::clone(&done));
    let handle = std::thread::Builder::new()
        .name(thread_name)
        .spawn(move || {
            let _mark = mark;
            run(&component, &mut body);
        })?;
    Ok(Supervised { handle, done })
}

/// Runs `body` until it returns normally.
pub(crate) fn run(component: &str, body: &mut dyn FnMut(u32)) {
    let mut restarts = 0u32;
    loop {
        match panic::catch_unwind(AssertUnwindSafe(|| body(restarts))) {
            Ok(()) => return,
            Err(payload) => {
                restarts = restarts.saturating_add(1);
                report(component, restarts, payload.as_ref());
            }
        }
    }
}

/// The text a panic was raised with.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a panic without a message")
}

/// Whether the current thread is one of observe's own background threads.
pub(crate) fn on_own_thread() -> bool {
    std::thread::current()
        .name()
        .is_some_and(|n| n.starts_with(THREAD_PREFIX))
}

/// The prefix of every background thread observe starts.
pub(crate) const THREAD_PREFIX: &str = "observe-";

/// Counts and reports a panic `component` caught and recovered from; the
/// `restarts`th.
pub(crate) fn report(component: &str, restarts: u32, payload: &(dyn Any + Send)) {
    let why = panic_message(payload);
    metrics::counter!(names::COMPONENT_RESTARTS_TOTAL, names::LABEL_COMPONENT => component.to_owned())
        .increment(1);
    // The event may go nowhere (no subscriber, or the panicking component
    // is the sink it would reach), so stderr has it too. Reporting must
    // not panic itself: it is what runs after a panic.
    let _ = panic::catch_unwind(|| {
        eprintln!("observe: the {component} panicked ({why}); restarting it (restart {restarts})");
        tracing::error!(
            component,
            restarts,
            "observe {component} panicked: {why}; restarting"
        );
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn delays_grow_to_a_cap() {
        assert_eq!(restart_delay(1), Duration::from_millis(100));
        assert_eq!(restart_delay(2), Duration::from_millis(200));
        assert_eq!(restart_delay(8), MAX_RESTART_DELAY);
        assert_eq!(restart_delay(u32::MAX), MAX_RESTART_DELAY);
    }

    #[test]
    fn a_panicking_body_runs_again_and_its_restarts_are_counted() {
        let recorder = metrics_util::debugging::DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let runs = Arc::new(AtomicU32::new(0));
        let seen = Arc::clone(&runs);
        metrics::with_local_recorder(&recorder, || {
            run("test worker", &mut |restarts| {
                assert_eq!(restarts, seen.fetch_add(1, Ordering::SeqCst));
                if restarts < 2 {
                    panic!("peer sent nonsense");
                }
            });
        });
        assert_eq!(runs.load(Ordering::SeqCst), 3);
        let restarts: Vec<_> = snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .filter(|(key, ..)| key.key().name() == names::COMPONENT_RESTARTS_TOTAL)
            .map(|(key, _, _, value)| {
                (
                    key.key()
                        .labels()
                        .map(|l| l.value().to_owned())
                        .collect::<Vec<_>>(),
                    value,
                )
            })
            .collect();
        assert_eq!(
            restarts,
            vec![(
                vec!["test worker".to_owned()],
                metrics_util::debugging::DebugValue::Counter(2)
            )]
        );
    }

    #[test]
    fn join_until_gives_up_on_a_stuck_thread_and_joins_an_ended_one() {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let stuck = spawn("stuck".into(), "test".into(), move |_| {
            let _ = rx.recv();
        })
        .unwrap();
        let start = Instant::now();
        assert!(!stuck.join_until(Instant::now().checked_add(Duration::from_millis(50))));
        assert!(start.elapsed() < Duration::from_secs(5));
        drop(tx);
        let quick = spawn("quick".into(), "test".into(), |_| {}).unwrap();
        assert!(quick.join_until(None));
    }
}
