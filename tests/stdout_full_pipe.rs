//! Standard output that nobody reads (a pager left open, a collector that
//! stopped reading its pipe) must not stop the program: the default sink
//! queues, and lines that do not fit are dropped and counted.
//!
//! The test runs itself again as a child whose standard output is a pipe
//! the parent never reads.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHILD: &str = "OBSERVE_TEST_STDOUT_CHILD";
const LINES: u64 = 100_000;

#[test]
fn a_full_stdout_pipe_never_blocks_the_caller() {
    if std::env::var_os(CHILD).is_some() {
        child();
    }
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "a_full_stdout_pipe_never_blocks_the_caller",
            "--nocapture",
        ])
        .env(CHILD, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("child");
    // Held open and never read: the pipe fills after 64 KiB.
    let _unread = child.stdout.take();
    let until = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > until {
            let _ = child.kill();
            panic!("logging blocked on a full standard output");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err)
        .expect("read");
    assert!(status.success(), "{err}");
    let counts = err
        .lines()
        .find_map(|l| l.strip_prefix("counts "))
        .unwrap_or_else(|| panic!("no counts in {err:?}"));
    let n: Vec<u64> = counts
        .split(' ')
        .map(|n| n.parse().expect("number"))
        .collect();
    let (sent, dropped, queued) = (n[0], n[1], n[2]);
    assert_eq!(
        sent + dropped + queued,
        LINES,
        "every line is accounted for"
    );
    assert!(dropped > 0, "a full pipe drops lines: {counts}");
}

fn child() -> ! {
    let stdout = observe::sink::StdoutSink::builder()
        .capacity_bytes(1 << 20)
        .build()
        .expect("sink");
    let guard = observe::Observe::builder("stdout-full")
        .sink(stdout.clone())
        .prometheus(false)
        .flush_timeout(Duration::from_millis(500))
        .install()
        .expect("install");
    for i in 0..LINES {
        tracing::info!(i, "a line nobody reads");
    }
    let dropped_at = Instant::now();
    drop(guard);
    assert!(
        dropped_at.elapsed() < Duration::from_secs(4),
        "the guard waits at most its flush timeout"
    );
    let s = stdout.stats();
    eprintln!("counts {} {} {}", s.sent, s.dropped, s.queued);
    // The test harness would print its summary to the full pipe.
    std::process::exit(0)
}
