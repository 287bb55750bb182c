//! TLS to the collector (feature `tls`): a local rustls endpoint with a
//! certificate chain generated here by rcgen (`tests/support/tls.rs`).
#![cfg(feature = "tls")]

use std::io::{BufRead, BufReader};
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

use crate::logging::dispatch;
use crate::tls_ca::TestCa;
use observe::sink::{Sink as _, TcpSink, TlsConfig};

/// A TLS json_lines endpoint on 127.0.0.1: every line received, and every
/// failed handshake as `Err`.
fn tls_collector(ca: &TestCa) -> (String, Receiver<Result<String, String>>) {
    let (tx, rx) = mpsc::channel();
    let addr = ca.endpoint(move |tls| {
        let mut reader = BufReader::new(tls);
        let mut line = String::new();
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) => return,
                Ok(_) => {
                    if tx.send(Ok(line.trim_end().to_owned())).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e.to_string()));
                    return;
                }
            }
        }
    });
    (addr.to_string(), rx)
}

#[test]
fn lines_arrive_over_tls_verified_with_a_custom_ca() {
    let ca = TestCa::new();
    let (addr, received) = tls_collector(&ca);
    let tls = ca.client();
    for (name, tls) in [
        ("by-ip", tls.clone()),
        ("by-name", tls.server_name("localhost")),
    ] {
        let sink = TcpSink::builder(addr.clone())
            .name(name)
            .tls(tls)
            .build()
            .expect("sink");
        let d = dispatch("sink-tls", sink.clone());
        tracing::dispatcher::with_default(&d, || {
            for seq in 0..500u64 {
                tracing::info!(seq, "over tls");
            }
        });
        assert!(sink.flush(Duration::from_secs(30)), "{:?}", sink.stats());
        let stats = sink.stats();
        assert_eq!(
            (stats.sent, stats.dropped, stats.connects),
            (500, 0, 1),
            "{stats:?}"
        );
        for seq in 0..500u64 {
            let line = received
                .recv_timeout(Duration::from_secs(30))
                .expect("a line")
                .expect("no TLS error");
            let v: serde_json::Value = serde_json::from_str(&line).expect("JSON");
            assert_eq!(v["context"]["seq"], seq);
        }
    }
}

#[test]
fn a_certificate_from_another_ca_is_refused() {
    let (addr, received) = tls_collector(&TestCa::new());
    let other_ca = TestCa::new();
    let sink = TcpSink::builder(addr)
        .name("tls-untrusted")
        .tls(other_ca.client())
        .backoff(Duration::from_millis(20), Duration::from_millis(100))
        .build()
        .expect("sink");
    let d = dispatch("sink-tls", sink.clone());
    tracing::dispatcher::with_default(&d, || tracing::info!("never delivered"));
    let refused = received
        .recv_timeout(Duration::from_secs(30))
        .expect("a handshake");
    assert!(refused.is_err(), "the handshake must fail: {refused:?}");
    assert!(crate::common::wait_until(Duration::from_secs(30), || sink
        .stats()
        .last_error
        .is_some()));
    assert!(!sink.flush(Duration::from_millis(200)));
    let stats = sink.stats();
    assert_eq!((stats.sent, stats.dropped, stats.connects), (0, 1, 0));
    let error = stats.last_error.expect("error");
    assert!(error.contains("certificate"), "{error}");
}

#[test]
fn invalid_ca_pem_is_an_error() {
    assert!(TlsConfig::with_ca_pem(b"not a certificate").is_err());
    assert!(TlsConfig::with_ca_file("/nonexistent/ca.pem").is_err());
}
