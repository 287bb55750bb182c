//! `Observe::from_env()` against the real process environment: the test
//! re-runs itself as a child process with `OBSERVE_*` variables set (so no
//! test races on this process's environment), and the child installs from
//! them, makes a call, and checks its own `/metrics` listener.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::process::Command;

use observe::log::LogValidator;
use observe::{Observe, monitor_performance};

const CHILD: &str = "OBSERVE_ENV_CONFIG_TEST_CHILD";

#[monitor_performance("env.work", context(secret_token = "hunter2"))]
fn work() -> Result<(), std::io::Error> {
    Ok(())
}

fn child() {
    let guard = Observe::from_env()
        .install()
        .expect("install from the environment");
    work().expect("work");
    let addr = std::env::var("OBSERVE_METRICS_ADDR").expect("set by the parent");
    let mut s = TcpStream::connect(&addr).expect("the /metrics listener from OBSERVE_METRICS_ADDR");
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut body = String::new();
    s.read_to_string(&mut body).expect("read");
    let sample = body
        .lines()
        .find(|l| l.starts_with("operation_calls_total{") && l.contains(r#"status="success""#))
        .unwrap_or_else(|| panic!("no success count in {body}"));
    assert!(
        sample.contains(r#"service="env-svc""#)
            && sample.contains(r#"operation="env.work""#)
            && sample.ends_with(" 1"),
        "{sample}"
    );
    drop(guard);
}

#[test]
fn from_env_reads_the_process_environment() {
    if std::env::var_os(CHILD).is_some() {
        child();
        return;
    }
    let log = std::env::temp_dir().join(format!("observe-env-config-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&log);
    let port = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let out = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "from_env_reads_the_process_environment",
            "--nocapture",
        ])
        .env(CHILD, "1")
        .env("OBSERVE_SERVICE", "env-svc")
        .env("OBSERVE_LOG_FILE", &log)
        .env("OBSERVE_METRICS_ADDR", format!("127.0.0.1:{port}"))
        .env("OBSERVE_REDACT", "token")
        .env("OBSERVE_ID_FORMAT", "uuidv7")
        .env("OBSERVE_LOG", "info")
        .output()
        .expect("run the child");
    assert!(
        out.status.success(),
        "child failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&log).expect("the log file from OBSERVE_LOG_FILE");
    let _ = std::fs::remove_file(&log);
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| {
            LogValidator::validate_line(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            serde_json::from_str(l).expect("json")
        })
        .collect();
    assert_eq!(lines.len(), 1, "{text}");
    let line = &lines[0];
    assert_eq!(line["service"], "env-svc");
    assert_eq!(line["performance"]["operation"], "env.work");
    assert_eq!(line["context"]["secret_token"], "[REDACTED]");
    // A UUID v7 (36 characters, version nibble 7), not `req_...`.
    let id = line["correlation_id"].as_str().expect("id");
    assert_eq!(id.len(), 36, "{id}");
    assert_eq!(id.as_bytes()[14], b'7', "{id}");
}

#[test]
fn a_bad_variable_fails_install_naming_it() {
    let err = Observe::builder("svc")
        .from_env_vars([("OBSERVE_LOGSTASH", "no-port-here")])
        .install()
        .expect_err("a bad variable fails install");
    let message = err.to_string();
    assert!(
        message.contains("OBSERVE_LOGSTASH=\"no-port-here\""),
        "{message}"
    );
}
