//! The error of building a sink or its connection.

use std::fmt;
use std::io;

/// Why a sink could not be built.
#[derive(Debug)]
#[non_exhaustive]
pub enum SinkError {
    /// An option is invalid (address, URL, size).
    Config(String),
    /// An I/O operation failed: opening the file, starting the worker.
    Io {
        /// What was being done.
        context: String,
        /// The error.
        source: io::Error,
    },
    /// The TLS configuration was refused: a CA certificate that does not
    /// parse, protocol versions the crypto provider lacks.
    Tls {
        /// What was being done.
        context: String,
        /// The TLS library's error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl SinkError {
    pub(crate) fn config(msg: impl Into<String>) -> Self {
        Self::Config(msg.into())
    }

    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }

    #[cfg(feature = "tls")]
    pub(crate) fn tls(
        context: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Tls {
            context: context.into(),
            source: Box::new(source),
        }
    }
}

impl fmt::Display for SinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config(msg) => f.write_str(msg),
            Self::Io { context, source } => write!(f, "{context}: {source}"),
            Self::Tls { context, source } => write!(f, "{context}: {source}"),
        }
    }
}

impl std::error::Error for SinkError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Config(_) => None,
            Self::Io { source, .. } => Some(source),
            Self::Tls { source, .. } => Some(source.as_ref()),
        }
    }
}
