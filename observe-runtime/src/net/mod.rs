//! The network clients the sinks and the metrics push share: a TCP
//! connection (plain or TLS), and the small HTTP/1.1 client the `_bulk`
//! sink and the InfluxDB push speak.

pub(crate) mod conn;
pub(crate) mod deadline;
mod error;
pub(crate) mod http;
#[cfg(feature = "tls")]
mod tls;

pub use error::SinkError;
#[cfg(feature = "tls")]
pub use tls::TlsConfig;
