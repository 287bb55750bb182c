//! Live reload of the log volume: a changed reload file takes effect on
//! SIGHUP, and a `POST /config` with the right token takes effect at once,
//! each applied promptly and each change logged once; a wrong token
//! changes nothing, and neither does a bad file. Installs globally, so
//! this binary holds a single test.
#![cfg(unix)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use observe::sink::CaptureSink;
use observe::{Observe, monitor_performance};

#[path = "support/harness.rs"]
#[allow(dead_code)] // its recorder is not used here
mod harness;

use harness::wait_until;

const TOKEN: &str = "reload-test-token";

#[monitor_performance("reload.work")]
fn work() {}

/// Lines of `reload.work` calls so far.
fn work_lines(capture: &CaptureSink) -> usize {
    capture
        .lines()
        .iter()
        .filter(|l| l.contains("\"operation\":\"reload.work\""))
        .count()
}

/// Whether a call of `work` writes its line.
fn writes_a_line(capture: &CaptureSink) -> bool {
    let before = work_lines(capture);
    work();
    work_lines(capture) > before
}

/// Whether `check` comes to hold while polling. The patience is for a
/// loaded machine: the signal thread applies a reload within milliseconds.
fn soon(check: impl FnMut() -> bool) -> bool {
    wait_until(Duration::from_secs(10), check)
}

/// Lines whose message contains `text`.
fn logged(capture: &CaptureSink, text: &str) -> usize {
    capture
        .lines()
        .iter()
        .filter(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .ok()
                .and_then(|v| v["message"].as_str().map(|m| m.contains(text)))
                .unwrap_or(false)
        })
        .count()
}

fn post_config(addr: SocketAddr, token: Option<&str>, body: &str) -> String {
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let mut c = TcpStream::connect(addr).expect("connect");
    write!(
        c,
        "POST /config HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n{auth}\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut out = String::new();
    c.read_to_string(&mut out).expect("read");
    out
}

fn hang_up(file: &Path, contents: &str) {
    std::fs::write(file, contents).expect("write the reload file");
    signal_hook::low_level::raise(signal_hook::consts::SIGHUP).expect("raise SIGHUP");
}

#[test]
fn a_reload_by_sighup_and_by_post_changes_the_volume_soon() {
    let dir = std::env::temp_dir().join(format!("observe-reload-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("volume.env");

    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let capture = CaptureSink::new();
    let guard = Observe::builder("reload-test")
        .sink(capture.clone())
        .metrics_listener_on(listener)
        // The file does not exist yet: install reads nothing from it.
        .reload_file(&file)
        .reload_endpoint(Some(TOKEN.to_owned()))
        .install()
        .expect("install");

    assert!((0..3).all(|_| writes_a_line(&capture)), "every call writes");

    // SIGHUP: the file's sampling of 0 quiets the success lines.
    hang_up(
        &file,
        "# written by the test\n\nOBSERVE_SAMPLE=reload.work=0\nOBSERVE_LOG=debug\n",
    );
    assert!(
        soon(|| !writes_a_line(&capture)),
        "the reload file applies on SIGHUP"
    );
    assert!((0..5).all(|_| !writes_a_line(&capture)));
    assert!(soon(|| logged(
        &capture,
        "log volume changed: reload.work: sample 0"
    ) == 1));

    // A wrong or missing token is refused and changes nothing.
    for token in [Some("not-the-token"), None] {
        let refused = post_config(addr, token, "OBSERVE_SAMPLE=reload.work=1\n");
        assert!(refused.starts_with("HTTP/1.1 401 "), "{refused}");
    }
    assert!((0..5).all(|_| !writes_a_line(&capture)));

    // POST /config with the token: the lines come back.
    let ok = post_config(addr, Some(TOKEN), "OBSERVE_SAMPLE=reload.work=1\n");
    assert!(ok.starts_with("HTTP/1.1 200 OK"), "{ok}");
    assert!(ok.ends_with("\r\n\r\nreload.work: sample 1\n"), "{ok}");
    assert!(
        soon(|| writes_a_line(&capture)),
        "the posted settings apply"
    );
    let bad = post_config(addr, Some(TOKEN), "OBSERVE_SAMPLE=reload.work=2\n");
    assert!(bad.starts_with("HTTP/1.1 400 "), "{bad}");
    assert!(bad.contains("reload.work=2"), "{bad}");

    // A bad file: one ERROR line naming it and the bad part, nothing
    // applied, and SIGHUP is still handled afterwards.
    hang_up(
        &file,
        "OBSERVE_SAMPLE=reload.work=0\nOBSERVE_LEVELS=reload.work=loud\n",
    );
    let named = format!("reload file {}", file.display());
    assert!(soon(|| logged(&capture, &named) == 1));
    let error = capture
        .lines()
        .into_iter()
        .find(|l| l.contains(&named))
        .expect("the error line");
    assert!(error.contains("\"level\":\"ERROR\""), "{error}");
    assert!(error.contains("reload.work=loud"), "{error}");
    assert!((0..3).all(|_| writes_a_line(&capture)), "nothing applied");

    hang_up(&file, "OBSERVE_SAMPLE=reload.work=0\n");
    assert!(soon(|| !writes_a_line(&capture)));

    // Each change was logged once. The signal thread logs a change after
    // applying it.
    assert!(soon(|| logged(&capture, "log volume changed") >= 3));
    assert_eq!(
        logged(&capture, "log volume changed: reload.work: sample 0"),
        2
    );
    assert_eq!(
        logged(&capture, "log volume changed: reload.work: sample 1"),
        1
    );
    assert_eq!(logged(&capture, "log volume changed"), 3);

    // The SIGHUP thread stops promptly with the guard.
    let stopping = Instant::now();
    drop(guard);
    assert!(
        stopping.elapsed() < Duration::from_secs(5),
        "{:?}",
        stopping.elapsed()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
