//! Under `panic = "abort"` a panic ends the process before any guard
//! drops: the panic hook must get the panic's line, and the lines queued
//! before it, out first.
//!
//! The child process stands in for an aborting build: a hook installed
//! before observe's aborts the process as soon as observe's hook hands
//! over to it, exactly where `panic = "abort"` would.

use std::process::Command;

const CHILD: &str = "OBSERVE_TEST_PANIC_CHILD";
const FILE: &str = "OBSERVE_TEST_PANIC_FILE";

fn run_child() -> Vec<serde_json::Value> {
    let path = std::env::temp_dir().join(format!("observe-panic-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let out = Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "child", "--nocapture"])
        .env(CHILD, "1")
        .env(FILE, &path)
        .output()
        .expect("child");
    assert!(
        !out.status.success(),
        "the child aborts: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let _ = std::fs::remove_file(&path);
    text.lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

#[test]
fn the_panic_hook_writes_the_panic_line_and_flushes_before_an_abort() {
    let lines = run_child();
    let messages: Vec<&str> = lines
        .iter()
        .map(|l| l["message"].as_str().unwrap_or(""))
        .collect();
    assert!(
        messages.contains(&"queued before the panic"),
        "{messages:?}"
    );
    let panic_line = lines
        .iter()
        .find(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.contains("disk on fire"))
        })
        .unwrap_or_else(|| panic!("no panic line in {messages:?}"));
    assert_eq!(panic_line["level"], "ERROR");
    assert_eq!(panic_line["correlation_id"], "req-panic-1");
    assert!(
        panic_line["context"]["location"]
            .as_str()
            .is_some_and(|l| l.contains("panic_abort.rs")),
        "{panic_line}"
    );
}

#[test]
fn child() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let path = std::env::var(FILE).expect("file");
    std::panic::set_hook(Box::new(|_| std::process::abort()));
    let file = observe::sink::FileSink::new(path).expect("file sink");
    let _guard = observe::Observe::builder("panic-abort")
        .sink(file)
        .prometheus(false)
        .flush_on_panic(true)
        .install()
        .expect("install");
    let id: observe::correlation::CorrelationId = "req-panic-1".parse().expect("id");
    observe::correlation::scope(id, || {
        tracing::info!("queued before the panic");
        panic!("disk on fire");
    });
}
