//! The builder installs globally, so this binary holds a single test that
//! owns the process's subscriber and recorder.

use std::time::Duration;

use observe::sink::CaptureSink;
use observe::{InstallError, Observe, monitor_performance};

#[monitor_performance("ingest", context(batch = batch))]
fn ingest(batch: u32) -> Result<u32, std::io::Error> {
    if batch % 4 == 0 {
        Err(std::io::Error::other("queue full"))
    } else {
        Ok(batch)
    }
}

#[monitor_performance("ingest.async")]
async fn ingest_async(batch: u32) -> u32 {
    tokio::task::yield_now().await;
    batch
}

#[monitor_performance]
fn early() -> Result<(), std::fmt::Error> {
    Ok(())
}

/// One sample line of the exposition: `name{labels} value`.
fn sample(exposition: &str, name: &str, labels: &[&str]) -> Option<f64> {
    exposition
        .lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (n, rest) = series.split_once('{').unwrap_or((series, ""));
            (n == name && labels.iter().all(|lab| rest.contains(lab)))
                .then(|| value.parse().ok())?
        })
}

#[test]
fn install_records_logs_and_prometheus_metrics_and_refuses_a_second_install() {
    // Before install there is no recorder: nothing may be cached as a no-op.
    assert!(early().is_ok());

    // A component that cannot start fails the install, and nothing global
    // is left behind.
    let failed = Observe::builder("ingestor")
        .on_install(|_| Err(InstallError::component("test listener", "port in use")))
        .install();
    assert_eq!(
        failed.err().map(|e| e.to_string()),
        Some("cannot start the test listener: port in use".to_owned())
    );
    assert!(!tracing::dispatcher::has_been_set());

    let capture = CaptureSink::new();
    let guard = Observe::builder("ingestor")
        // No limit: the guard's deadline arithmetic saturates.
        .flush_timeout(Duration::MAX)
        .sink(capture.clone())
        .install()
        .expect("first install succeeds");

    assert!(early().is_ok());
    // A thread-scoped recorder sees its own calls even with a global one.
    let local = observe::testing::capture(early);
    assert_eq!(
        local.metrics.counter(
            "operation_calls_total",
            &[("operation", "early"), ("status", "success")]
        ),
        Some(1)
    );
    assert_eq!(local.lines.len(), 1);

    for batch in 1..=8 {
        let _ = ingest(batch);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let handles: Vec<_> = (0..3).map(|b| tokio::spawn(ingest_async(b))).collect();
        for h in handles {
            h.await.expect("task");
        }
    });

    // Logs: one schema-valid line per call, with the service name.
    let lines = capture.lines();
    assert_eq!(lines.len(), 12, "{lines:#?}");
    for l in &lines {
        observe::log::LogValidator::validate_line(l).expect("valid line");
        let v: serde_json::Value = serde_json::from_str(l).expect("json");
        assert_eq!(v["service"], "ingestor");
    }

    // Metrics: counts per status, errors by type, histogram buckets, the
    // service label, in-flight back at zero.
    let text = guard.render().expect("prometheus is on by default");
    let op = r#"operation="ingest""#;
    assert_eq!(
        sample(&text, "operation_calls_total", &[op, r#"status="success""#]),
        Some(6.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "operation_calls_total", &[op, r#"status="error""#]),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &text,
            "operation_errors_total",
            &[op, r#"error_type="Error""#]
        ),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &text,
            "operation_calls_total",
            &[r#"operation="ingest.async""#, r#"status="success""#]
        ),
        Some(3.0)
    );
    assert_eq!(sample(&text, "operation_in_flight", &[op]), Some(0.0));
    assert_eq!(
        sample(
            &text,
            "operation_duration_seconds_count",
            &[op, r#"status="success""#]
        ),
        Some(6.0)
    );
    assert!(
        sample(
            &text,
            "operation_duration_seconds_bucket",
            &[op, r#"le="0.001""#]
        )
        .is_some(),
        "histogram buckets are set: {text}"
    );
    assert!(text.contains(r#"service="ingestor""#), "{text}");
    // Exactly the one call made after install and outside the capture.
    assert_eq!(
        sample(
            &text,
            "operation_calls_total",
            &[r#"operation="early""#, r#"status="success""#]
        ),
        Some(1.0)
    );
    assert!(text.contains("# HELP operation_calls_total"), "{text}");

    // A second install is an error value, not a panic.
    let again = Observe::builder("other").install();
    assert!(
        matches!(again, Err(InstallError::SubscriberAlreadySet)),
        "{:?}",
        again.err()
    );

    assert!(guard.flush(Duration::from_secs(1)));
    let dropping = std::time::Instant::now();
    drop(guard);
    assert!(
        dropping.elapsed() < Duration::from_secs(5),
        "nothing was left to wait for"
    );
}
