//! TLS to the collector (feature `tls`): a local rustls endpoint with a
//! certificate chain generated here by rcgen.
#![cfg(feature = "tls")]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

use crate::logging::dispatch;
use observe::sink::{Sink as _, TcpSink, TlsConfig};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

/// A CA and a server certificate for `localhost` and `127.0.0.1`.
struct Pki {
    ca_pem: String,
    server_cert: CertificateDer<'static>,
    server_key: Vec<u8>,
}

fn pki() -> Pki {
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "observe test CA");
    let ca_cert = ca.self_signed(&ca_key).expect("CA cert");
    let key = KeyPair::generate().expect("server key");
    let params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .expect("params");
    let cert = params
        .signed_by(&key, &ca_cert, &ca_key)
        .expect("server cert");
    Pki {
        ca_pem: ca_cert.pem(),
        server_cert: cert.der().clone(),
        server_key: key.serialize_der(),
    }
}

/// A TLS json_lines endpoint on 127.0.0.1: every line received, and every
/// failed handshake as `Err`.
fn tls_collector(pki: &Pki) -> (String, Receiver<Result<String, String>>) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.server_key.clone()));
    let config = Arc::new(
        ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(vec![pki.server_cert.clone()], key)
            .expect("server config"),
    );
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let (config, tx) = (Arc::clone(&config), tx.clone());
            std::thread::spawn(move || {
                let conn = ServerConnection::new(config).expect("server connection");
                let mut reader = BufReader::new(StreamOwned::new(conn, stream));
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
        }
    });
    (addr, rx)
}

#[test]
fn lines_arrive_over_tls_verified_with_a_custom_ca() {
    let pki = pki();
    let (addr, received) = tls_collector(&pki);
    let tls = TlsConfig::with_ca_pem(pki.ca_pem.as_bytes()).expect("CA");
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
    let (addr, received) = tls_collector(&pki());
    let other_ca = pki().ca_pem;
    let sink = TcpSink::builder(addr)
        .name("tls-untrusted")
        .tls(TlsConfig::with_ca_pem(other_ca.as_bytes()).expect("CA"))
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
