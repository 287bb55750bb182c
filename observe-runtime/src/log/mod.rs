//! Structured JSON logs: the `tracing` layer that writes the line schema,
//! its validator, and key redaction.
//!
//! Every event that reaches [`JsonLayer`] becomes one line:
//!
//! ```json
//! {"timestamp":"2026-11-30T01:22:09.123456Z","level":"INFO","service":"websocket-ingestion",
//!  "message":"process_event completed","correlation_id":"req_1764465729_1a2b3c4d",
//!  "context":{"entity_id":"sensor.kitchen"},
//!  "performance":{"operation":"process_event","status":"success","duration_ms":0.412}}
//! ```

pub(crate) mod hold;
mod layer;
pub(crate) mod line;
mod redact;
pub(crate) mod sink;
pub(crate) mod stdout;
pub(crate) mod timestamp;
mod validator;
mod visitor;
mod writer;

#[cfg(all(test, feature = "otlp"))]
pub(crate) use writer::{CALL_FRAME_BYTES, LineWriter};

use std::sync::{PoisonError, RwLock, RwLockReadGuard};

pub use layer::{DEFAULT_MAX_LINE_BYTES, JsonLayer};
// Published by `crate::sink`, their one public path.
pub(crate) use line::JsonLine;
pub use redact::{REDACTED, Redactor};
pub(crate) use sink::{Sink, count_dropped};
pub(crate) use stdout::DirectStdout;
pub use validator::{LogValidator, ValidationError, ValidationErrorKind};
#[cfg(feature = "otlp")]
pub(crate) use writer::write_rendered;
#[cfg(feature = "otlp")]
pub(crate) use writer::{LEVELS, level_index};
pub(crate) use writer::{write_context_str, write_context_value};

static REDACTOR: RwLock<Option<Redactor>> = RwLock::new(None);

/// Sets the process-wide [`Redactor`]: whatever list it holds
/// ([`Redactor::new`] keeps the defaults and adds to them,
/// [`Redactor::replacing`] drops them).
pub fn set_redactor(redactor: Redactor) {
    *REDACTOR.write().unwrap_or_else(PoisonError::into_inner) = Some(redactor);
}

/// The process-wide redactor (the default list until [`set_redactor`]).
pub(crate) fn redactor() -> RedactorRef {
    RedactorRef(REDACTOR.read().unwrap_or_else(PoisonError::into_inner))
}

/// A read handle on the process-wide redactor.
pub(crate) struct RedactorRef(RwLockReadGuard<'static, Option<Redactor>>);

impl RedactorRef {
    pub(crate) fn is_secret(&self, key: &str) -> bool {
        match &*self.0 {
            Some(r) => r.is_secret(key),
            None => default_redactor().is_secret(key),
        }
    }
}

fn default_redactor() -> &'static Redactor {
    static DEFAULT: std::sync::OnceLock<Redactor> = std::sync::OnceLock::new();
    DEFAULT.get_or_init(Redactor::default)
}
