//! The exporter through the builder: `OTEL_*` variables, bad values that
//! fail `install()`, and the install guard with the collector down.
//!
//! Each test runs in a child process of its own: `install()` refuses to
//! run where any dispatch was ever set, as the other tests here set them.

use std::process::Command;
use std::time::{Duration, Instant};

use metrics_util::debugging::DebugValue;
use observe::{InstallError, Observe, monitor_performance};

const CHILD: &str = "OBSERVE_OTLP_INSTALL_TEST_CHILD";

/// Runs `test` in a child process running only the test `name`.
fn in_child(name: &str, test: fn()) {
    if std::env::var_os(CHILD).is_some() {
        test();
        return;
    }
    let out = Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", &format!("install::{name}"), "--nocapture"])
        .env(CHILD, "1")
        .output()
        .expect("run the child");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "child failed:\n{text}");
    assert!(text.contains("1 passed"), "the child ran the test:\n{text}");
}

#[test]
fn bad_otel_values_fail_install_naming_the_variable() {
    in_child("bad_otel_values_fail_install_naming_the_variable", || {
        for (var, value) in [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "ftp://collector"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "no-equals-sign"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "10s"),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "brotli"),
            ("OTEL_METRIC_EXPORT_INTERVAL", "-1"),
            ("OTEL_TRACES_SAMPLER", "sometimes"),
            ("OTEL_TRACES_SAMPLER_ARG", "2"),
            ("OTEL_SDK_DISABLED", "perhaps"),
            ("OTEL_RESOURCE_ATTRIBUTES", "novalue"),
        ] {
            let err = Observe::builder("svc")
                .prometheus(false)
                .from_env_vars([(var, value)])
                .install()
                .expect_err(var);
            let message = err.to_string();
            assert!(message.contains(&format!("{var}=")), "{var}: {message}");
        }
    });
}

#[test]
fn a_bad_endpoint_in_code_fails_install() {
    in_child("a_bad_endpoint_in_code_fails_install", || {
        let err = Observe::builder("svc")
            .prometheus(false)
            .otlp("collector:4318")
            .install()
            .expect_err("no scheme");
        assert!(matches!(err, InstallError::Otlp(_)), "{err:?}");
        assert!(err.to_string().contains("traces endpoint"), "{err}");
    });
}

#[monitor_performance("otlp.install.call")]
fn call(n: u64) -> u64 {
    n
}

#[test]
fn dropping_the_guard_with_the_collector_down_returns_within_the_flush_timeout() {
    in_child(
        "dropping_the_guard_with_the_collector_down_returns_within_the_flush_timeout",
        || {
            let snapshotter = crate::harness::recorder();
            // A port nothing listens on.
            let addr = std::net::TcpListener::bind("127.0.0.1:0")
                .expect("bind")
                .local_addr()
                .expect("addr");
            let guard = Observe::builder("otlp-child")
                .prometheus(false)
                .sink(observe::sink::CaptureSink::new())
                .flush_timeout(Duration::from_millis(800))
                .from_env_vars([("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{addr}"))])
                .install()
                .expect("install");
            let start = Instant::now();
            for i in 0..500 {
                call(i);
            }
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "{:?}",
                start.elapsed()
            );
            let start = Instant::now();
            drop(guard);
            let took = start.elapsed();
            assert!(took < Duration::from_millis(4_000), "{took:?}");
            // One snapshot: taking one resets the counters.
            let counts = snapshotter.snapshot().into_vec();
            let count = |name: &str, sink: &str| {
                counts
                    .iter()
                    .filter(|(k, ..)| {
                        k.key().name() == name
                            && k.key()
                                .labels()
                                .any(|l| l.key() == "sink" && l.value() == sink)
                    })
                    .map(|(.., v)| match v {
                        DebugValue::Counter(n) => *n,
                        _ => 0,
                    })
                    .sum::<u64>()
            };
            // A span and a log record per call, in one queue.
            assert_eq!(count("log_lines_dropped_total", "otlp"), 1_000);
            assert_eq!(count("log_lines_sent_total", "otlp"), 0);
        },
    );
}

#[test]
fn otel_sdk_disabled_turns_the_exporter_off() {
    in_child("otel_sdk_disabled_turns_the_exporter_off", || {
        let r = crate::receiver::Receiver::start();
        let guard = Observe::builder("otlp-child")
            .prometheus(false)
            .sink(observe::sink::CaptureSink::new())
            .otlp(r.url())
            .from_env_vars([("OTEL_SDK_DISABLED", "true")])
            .install()
            .expect("install");
        call(1);
        drop(guard);
        assert!(r.with(|got| got.requests.is_empty()));
    });
}

#[test]
fn the_builder_exports_spans_and_records_with_the_resource() {
    in_child(
        "the_builder_exports_spans_and_records_with_the_resource",
        || {
            let r = crate::receiver::Receiver::start();
            let guard = Observe::builder("otlp-child")
                .prometheus(false)
                .sink(observe::sink::CaptureSink::new())
                .version("4.5.6")
                .from_env_vars([
                    ("OTEL_EXPORTER_OTLP_ENDPOINT", r.url().as_str()),
                    ("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test"),
                    ("OTEL_METRICS_EXPORTER", "none"),
                ])
                .install()
                .expect("install");
            call(1);
            drop(guard);
            r.with(|got| {
                assert_eq!(
                    (got.spans.len(), got.logs.len()),
                    (1, 1),
                    "{:?}",
                    got.requests
                );
                for resource in &got.resources {
                    let attr = |k: &str| crate::attr(&resource.attributes, k).cloned();
                    use opentelemetry_proto::tonic::common::v1::any_value::Value;
                    assert_eq!(
                        attr("service.name"),
                        Some(Value::StringValue("otlp-child".into()))
                    );
                    assert_eq!(
                        attr("service.version"),
                        Some(Value::StringValue("4.5.6".into()))
                    );
                    assert_eq!(
                        attr("deployment.environment"),
                        Some(Value::StringValue("test".into()))
                    );
                }
            });
        },
    );
}
