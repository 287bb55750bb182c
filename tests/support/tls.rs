//! A certificate authority made here by rcgen, and the rustls configuration
//! of a loopback endpoint whose certificate it signed (feature `tls`).
#![cfg(feature = "tls")]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;

use observe::sink::TlsConfig;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

/// A fresh CA and a server certificate it signed for `localhost` and
/// `127.0.0.1`.
pub(crate) struct TestCa {
    ca_pem: String,
    /// The server end, presenting the signed certificate.
    pub(crate) server: Arc<ServerConfig>,
}

impl TestCa {
    pub(crate) fn new() -> Self {
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "observe test CA");
        let ca_cert = ca.self_signed(&ca_key).expect("CA cert");
        let key = KeyPair::generate().expect("server key");
        let cert = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .expect("params")
            .signed_by(&key, &ca_cert, &ca_key)
            .expect("server cert");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server = Arc::new(
            ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("versions")
                .with_no_client_auth()
                .with_single_cert(
                    vec![cert.der().clone()],
                    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
                )
                .expect("server config"),
        );
        Self {
            ca_pem: ca_cert.pem(),
            server,
        }
    }

    /// A client end that trusts this CA (and no other).
    pub(crate) fn client(&self) -> TlsConfig {
        TlsConfig::with_ca_pem(self.ca_pem.as_bytes()).expect("CA")
    }

    /// A TLS endpoint on 127.0.0.1: its address. Each connection goes to
    /// `serve` on a thread of its own, the handshake still to come (it
    /// happens on the first read or write).
    #[allow(dead_code, reason = "the hostile-peer matrix has its own peer")]
    pub(crate) fn endpoint<F>(&self, serve: F) -> SocketAddr
    where
        F: Fn(StreamOwned<ServerConnection, TcpStream>) + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (config, serve) = (Arc::clone(&self.server), Arc::new(serve));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let (config, serve) = (Arc::clone(&config), Arc::clone(&serve));
                std::thread::spawn(move || {
                    let conn = ServerConnection::new(config).expect("server connection");
                    serve(StreamOwned::new(conn, stream));
                });
            }
        });
        addr
    }
}
