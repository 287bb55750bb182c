//! TLS to the collector (feature `tls`): rustls with the `ring` provider.

use std::fmt;
use std::io;
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use super::SinkError;
use super::deadline::{Deadline, Timed};

/// Where Linux distributions keep the system CA bundle.
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// How a sink verifies its collector's certificate.
///
/// ```no_run
/// # fn main() -> Result<(), observe_runtime::sink::SinkError> {
/// use observe_runtime::sink::{TcpSink, TlsConfig};
///
/// let tls = TlsConfig::with_ca_file("/etc/observe/ca.pem")?.server_name("logstash.internal");
/// let sink = TcpSink::builder("10.0.0.5:5044").tls(tls).build()?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct TlsConfig {
    config: Arc<ClientConfig>,
    server_name: Option<String>,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl TlsConfig {
    /// Trusts the CA certificates in `pem` (one or more `CERTIFICATE`
    /// blocks), and only those.
    ///
    /// # Errors
    ///
    /// If `pem` holds no certificate or one that cannot be parsed.
    pub fn with_ca_pem(pem: &[u8]) -> Result<Self, SinkError> {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| SinkError::tls("bad CA PEM", e))?;
            roots
                .add(cert)
                .map_err(|e| SinkError::tls("bad CA certificate", e))?;
        }
        Self::with_roots(roots)
    }

    /// Trusts the CA certificates in the PEM file at `path`.
    ///
    /// # Errors
    ///
    /// If the file cannot be read or holds no valid certificate.
    pub fn with_ca_file(path: impl AsRef<Path>) -> Result<Self, SinkError> {
        let path = path.as_ref();
        let pem = std::fs::read(path)
            .map_err(|e| SinkError::io(format!("cannot read {}", path.display()), e))?;
        Self::with_ca_pem(&pem)
    }

    /// Trusts the system's CA bundle (`SSL_CERT_FILE`, else the usual
    /// Linux locations).
    ///
    /// # Errors
    ///
    /// If no bundle is found or none of its certificates parse.
    pub fn system() -> Result<Self, SinkError> {
        let env = std::env::var_os("SSL_CERT_FILE");
        let candidates = env
            .iter()
            .map(Path::new)
            .chain(SYSTEM_BUNDLES.iter().map(Path::new));
        for path in candidates {
            if let Ok(pem) = std::fs::read(path) {
                let mut roots = RootCertStore::empty();
                // Bundles may hold certificates rustls cannot use; skip them.
                for cert in CertificateDer::pem_slice_iter(&pem).flatten() {
                    let _ = roots.add(cert);
                }
                if !roots.is_empty() {
                    return Self::with_roots(roots);
                }
            }
        }
        Err(SinkError::config(
            "no system CA bundle found; set SSL_CERT_FILE or use TlsConfig::with_ca_file",
        ))
    }

    /// Uses a rustls configuration as is (client certificates, custom
    /// verifiers, another crypto provider).
    #[must_use]
    pub fn from_rustls(config: Arc<ClientConfig>) -> Self {
        Self {
            config,
            server_name: None,
        }
    }

    /// Verifies the certificate against `name` instead of the host the
    /// sink connects to (e.g. when connecting by IP address).
    #[must_use]
    pub fn server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }

    fn with_roots(roots: RootCertStore) -> Result<Self, SinkError> {
        if roots.is_empty() {
            return Err(SinkError::config("no CA certificate given"));
        }
        // An explicit provider: relying on the process default panics
        // when several providers are compiled in.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| SinkError::tls("TLS configuration", e))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self::from_rustls(Arc::new(config)))
    }

    /// Runs the handshake on `tcp`, so a certificate problem shows at
    /// connect time rather than as a failed write.
    /// The handshake ends before `deadline`: a server that stalls it (or
    /// drips it) cannot hold the connect longer.
    pub(crate) fn handshake(
        &self,
        host: &str,
        mut tcp: TcpStream,
        deadline: Deadline,
    ) -> io::Result<StreamOwned<ClientConnection, TcpStream>> {
        let name = self.server_name.as_deref().unwrap_or(host);
        let name = ServerName::try_from(name.to_owned())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let mut conn = ClientConnection::new(Arc::clone(&self.config), name)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        while conn.is_handshaking() {
            conn.complete_io(&mut Timed {
                io: &mut tcp,
                deadline,
            })?;
        }
        Ok(StreamOwned::new(conn, tcp))
    }
}
