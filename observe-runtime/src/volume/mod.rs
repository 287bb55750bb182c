//! Log volume per operation, changeable at run time: sampling of success
//! lines that keeps or drops a request whole, a rate limit that counts
//! what it suppresses, and a level floor.
//!
//! Metrics always count every call; these settings only decide which of
//! an operation's lines are written.
//!
//! - **Sampling** (`sample`): a share of *success* lines is written; error,
//!   panic, cancellation and slow lines always are. Whether a line is kept
//!   is a function of its correlation ID alone, so every service that sees
//!   a request keeps all of its lines, or none.
//! - **Rate limit** (`rate_limit`): at most N lines a second per operation
//!   (a token bucket with a burst of N); lines beyond it are counted in
//!   `log_lines_suppressed_total{operation}`. When the flood is over (the
//!   first line after a second under the limit), and once a minute while
//!   it lasts, one WARN line sums it up:
//!   `process_event: 148940 lines suppressed in the last 60 s`.
//! - **Level** (`level`): the least severe level an operation's lines may
//!   have (`warn` keeps only the WARN and ERROR lines of a busy operation).
//!   It can only quiet an operation: the subscriber's filter still applies.
//!
//! - **Hold until root** (opt-in, process-wide; the builder's
//!   `hold_until_root` or `OBSERVE_HOLD`): a request's lines wait in
//!   memory until its root call (the outermost monitored call) ends. If
//!   any of them is WARN or more severe (an error, panic, cancellation or
//!   slow call, or a user's `warn!`), all of them are written, in order;
//!   otherwise they are kept or dropped together by the root operation's
//!   sampling decision for the request's correlation ID (kept when no
//!   sampling applies). So a failure keeps its whole story, from every
//!   nested call, success lines included, while successes are sampled
//!   whole. Memory is bounded per request and in total: a request that
//!   would pass a bound has its lines written at once and holds no more,
//!   counted in `log_lines_hold_overflow_total` and said in one WARN line
//!   (at most one a second). `log_lines_held_bytes` shows what is held.
//!
//! Each is set per operation, or for every operation without its own with
//! `*`, from the attribute (`sample = 0.01`), the builder, the environment
//! (`OBSERVE_SAMPLE`, `OBSERVE_RATE_LIMIT`, `OBSERVE_LEVELS`: comma-separated
//! `operation=value`), or at run time through [`apply`] (which the reload
//! channels use). Every change is logged once.
//!
//! ```
//! use observe_runtime::volume;
//!
//! volume::apply([("OBSERVE_SAMPLE", "ingestion.receive=0.01,*=0.5")])?;
//! volume::apply([("OBSERVE_RATE_LIMIT", "ingestion.receive=100")])?;
//! # Ok::<(), volume::VolumeError>(())
//! ```

mod controls;
mod reload;
mod settings;

#[doc(hidden)]
pub use controls::sample_threshold;
pub(crate) use controls::{Admit, OperationControls, active, controls_for};
#[cfg(unix)]
pub(crate) use reload::SighupReload;
#[cfg(feature = "prometheus-listener")]
pub(crate) use reload::apply_text;
pub(crate) use reload::read_file_at_install;
pub(crate) use settings::{Setting, parse, set};
pub use settings::{VolumeError, apply};

pub use crate::log::hold::{LOG_LINES_HELD_BYTES, LOG_LINES_HOLD_OVERFLOW_TOTAL};

/// Bytes of log lines held right now, over every request that holds its
/// lines until its root ends (for tests; the gauge
/// [`LOG_LINES_HELD_BYTES`] is updated when a request ends).
#[doc(hidden)]
#[must_use]
pub fn held_bytes() -> usize {
    crate::log::hold::held_bytes()
}

/// The counter of lines a rate limit suppressed, by `operation`.
pub const LOG_LINES_SUPPRESSED_TOTAL: &str = "log_lines_suppressed_total";
