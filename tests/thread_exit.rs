//! Logging from a thread-local's destructor, while the thread exits: the
//! library's own thread-locals may already be gone by then. Installs
//! globally, so this binary holds a single test.

use std::cell::RefCell;

use observe::sink::CaptureSink;
use observe::{Observe, monitor_performance};

#[monitor_performance("pool.close")]
fn close_pool(connections: usize) -> usize {
    tracing::info!(connections, "pool closing");
    connections
}

/// A per-thread resource whose `Drop` logs, as a connection pool might.
struct Pool(usize);

impl Drop for Pool {
    fn drop(&mut self) {
        // Twice: the first line may find the thread's state half torn
        // down and the second must still get through.
        close_pool(self.0);
        close_pool(self.0 + 1);
    }
}

thread_local! {
    static POOL: RefCell<Option<Pool>> = const { RefCell::new(None) };
}

#[test]
fn logging_from_a_thread_local_destructor_writes_lines_and_does_not_abort() {
    let capture = CaptureSink::new();
    let guard = Observe::builder("pool-service")
        .sink(capture.clone())
        .prometheus(false)
        .install()
        .expect("install");

    std::thread::spawn(|| {
        // The pool's destructor is registered first, so it runs after the
        // destructors of every thread-local first used below.
        POOL.with(|p| *p.borrow_mut() = Some(Pool(3)));
        close_pool(1);
        observe::correlation::scope("req-exit".parse().expect("valid id"), || {
            close_pool(2);
        });
    })
    .join()
    .expect("the thread exits cleanly");

    drop(guard);
    let lines = capture.lines();
    let completed = |n: usize| {
        lines
            .iter()
            .filter(|l| {
                l.contains("\"message\":\"pool closing\"")
                    && l.contains(&format!("\"connections\":{n}"))
            })
            .count()
    };
    // Every call logged its event, the destructor's two included.
    for n in 1..=4 {
        assert_eq!(completed(n), 1, "connections={n} in {lines:#?}");
    }
    let operation_lines = lines
        .iter()
        .filter(|l| l.contains("\"message\":\"pool.close completed\""))
        .count();
    assert_eq!(operation_lines, 4, "{lines:#?}");
    assert!(
        lines.iter().all(|l| l.contains("\"correlation_id\":\"")),
        "{lines:#?}"
    );
}
