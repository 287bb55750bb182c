//! The builder's shipping shortcuts, installed globally: this binary holds
//! a single test that owns the process's subscriber and recorder.

#[path = "sink/received.rs"]
mod received;
#[path = "support/service.rs"]
mod support;

use std::error::Error;
use std::io;
use std::time::Duration;

use observe::sink::SinkError;
use observe::{InstallError, Observe, monitor_performance};
use received::{parse_all, read_lines, wait_for_lines};
use support::Service;

#[monitor_performance("ship", context(n = n))]
fn ship(n: u32) -> Result<u32, std::io::Error> {
    if n % 5 == 0 {
        Err(std::io::Error::other("collector said no"))
    } else {
        Ok(n)
    }
}

/// The value of `name{sink="..."}` in a Prometheus exposition.
fn sample(exposition: &str, name: &str, sink: &str) -> Option<f64> {
    let label = format!("sink=\"{sink}\"");
    exposition
        .lines()
        .filter(|l| l.starts_with(name) && l.contains(&label))
        .find_map(|l| l.rsplit_once(' ')?.1.parse().ok())
}

#[test]
fn logstash_and_file_shortcuts_ship_count_and_flush_on_drop() {
    a_file_sink_that_cannot_open_fails_install_down_to_the_io_error();
    // A sink that cannot be built fails the install, naming it.
    let err = Observe::builder("sink-install")
        .logstash("no port")
        .install()
        .expect_err("bad address");
    assert!(
        matches!(&err, InstallError::Component { component, .. } if component == "logstash sink"),
        "{err}"
    );

    let Some(collector) = Service::start_or_skip("syslog-ng", &[]) else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("observe-sink-install-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("install.log");
    let guard = Observe::builder("sink-install")
        .logstash(collector.addr())
        .file(&file)
        .install()
        .expect("install");

    for n in 0..500 {
        let _ = ship(n);
    }
    assert!(guard.flush(Duration::from_secs(30)));
    let exposition = guard.render().expect("prometheus on");
    for sink in ["logstash", "file"] {
        assert_eq!(
            sample(&exposition, "log_lines_sent_total", sink),
            Some(500.0),
            "{sink}\n{exposition}"
        );
        // The series exists from the start, at zero: nothing was dropped.
        assert_eq!(
            sample(&exposition, "log_lines_dropped_total", sink),
            Some(0.0),
            "{sink}"
        );
    }
    let received = wait_for_lines(
        &collector.dir().join("received.log"),
        500,
        Duration::from_secs(60),
    );
    assert_eq!(received.len(), 500);
    let errors = parse_all(&received)
        .iter()
        .filter(|l| l["level"] == "ERROR")
        .count();
    assert_eq!(errors, 100);
    assert_eq!(
        read_lines(&file),
        received,
        "both sinks got the same lines, in order"
    );

    // Dropping the guard flushes what is still queued.
    for n in 500..600 {
        let _ = ship(n);
    }
    drop(guard);
    assert_eq!(read_lines(&file).len(), 600);
    let received = wait_for_lines(
        &collector.dir().join("received.log"),
        600,
        Duration::from_secs(60),
    );
    assert_eq!(received.len(), 600);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Run first: a file sink that cannot open fails `install()` with the
/// `io::Error` at the end of its `source()` chain. Components start before
/// anything global is set, so this leaves the process as it was.
fn a_file_sink_that_cannot_open_fails_install_down_to_the_io_error() {
    let err = Observe::builder("sink-file")
        .file("/nonexistent-observe-dir/app.log")
        .install()
        .expect_err("no such directory");
    let InstallError::Component { component, source } = &err else {
        panic!("expected a component error, got {err:?}");
    };
    assert_eq!(component, "file sink");
    assert!(
        err.to_string()
            .starts_with("cannot start the file sink: cannot open"),
        "{err}"
    );
    // InstallError -> SinkError -> io::Error.
    let sink = err.source().and_then(|e| e.downcast_ref::<SinkError>());
    assert!(matches!(sink, Some(SinkError::Io { .. })), "{source:?}");
    assert_eq!(
        io_cause(&err).map(io::Error::kind),
        Some(io::ErrorKind::NotFound)
    );
}

/// The `io::Error` at the end of `err`'s `source()` chain.
fn io_cause<'a>(err: &'a (dyn Error + 'static)) -> Option<&'a io::Error> {
    let mut at = Some(err);
    while let Some(e) = at {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            return Some(io);
        }
        at = e.source();
    }
    None
}
