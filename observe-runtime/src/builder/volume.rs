//! Builder methods for the log volume of operations (sampling, rate
//! limits, level floors), applied when observe is installed.

use tracing_core::Level;

use super::ObserveBuilder;
use crate::log::hold::Bounds;
use crate::volume::Setting;

impl ObserveBuilder {
    /// Writes a share `rate` (0 to 1) of `operation`'s success lines,
    /// keeping or dropping each request whole by its correlation ID
    /// (`*`: every operation without its own; also `OBSERVE_SAMPLE`).
    /// Error, panic, cancellation and slow lines are always written, and
    /// metrics count every call. See [`volume`](crate::volume).
    ///
    /// ```no_run
    /// let _guard = observe_runtime::Observe::builder("ingestion")
    ///     .sample("ingestion.receive", 0.01)
    ///     .rate_limit("*", 1000)
    ///     .install()?;
    /// # Ok::<(), observe_runtime::InstallError>(())
    /// ```
    pub fn sample(mut self, operation: impl Into<String>, rate: f64) -> Self {
        self.volume.push((
            operation.into(),
            Setting::Sample(Some(rate.clamp(0.0, 1.0))),
        ));
        self
    }

    /// Writes at most `lines_per_second` of `operation`'s lines (a burst
    /// of as many), counting the rest in `log_lines_suppressed_total` and
    /// summarising them in one WARN line when lines flow again (`*`: every
    /// operation without its own; also `OBSERVE_RATE_LIMIT`). 0 means no
    /// limit.
    pub fn rate_limit(mut self, operation: impl Into<String>, lines_per_second: u32) -> Self {
        let limit = (lines_per_second > 0).then_some(lines_per_second);
        self.volume
            .push((operation.into(), Setting::RateLimit(limit)));
        self
    }

    /// Holds each request's lines in memory until its root call (the
    /// outermost monitored call) ends, then writes them all, in order, if
    /// any is WARN or more severe (an error, panic, cancellation or slow
    /// call), and otherwise keeps or drops them together by the root
    /// operation's [`sample`](Self::sample) share for the request's
    /// correlation ID (all kept when no sampling is set). A failure keeps
    /// its whole story, while successes are sampled whole. Also
    /// `OBSERVE_HOLD=64KiB,16MiB`.
    ///
    /// At most `per_request_bytes` are held for one request and
    /// `total_bytes` over all of them; a request that would pass either
    /// has its lines written at once and holds no more, counted in
    /// `log_lines_hold_overflow_total` and said in one WARN line (at most
    /// one a second). Either bound 0 turns holding off. Lines are held
    /// per thread of the request's root: a thread or task the request
    /// spawns holds its own monitored calls' lines separately (sampled by
    /// the same correlation ID).
    ///
    /// ```no_run
    /// let _guard = observe_runtime::Observe::builder("ingestion")
    ///     .sample("*", 0.01)
    ///     .hold_until_root(64 * 1024, 16 * 1024 * 1024)
    ///     .install()?;
    /// # Ok::<(), observe_runtime::InstallError>(())
    /// ```
    pub fn hold_until_root(mut self, per_request_bytes: usize, total_bytes: usize) -> Self {
        self.hold = Bounds::new(per_request_bytes, total_bytes);
        self
    }

    /// Writes only `operation`'s lines at `level` or more severe (`*`:
    /// every operation without its own; also `OBSERVE_LEVELS`). It can
    /// quiet an operation, not make it louder than the filter.
    pub fn operation_level(mut self, operation: impl Into<String>, level: Level) -> Self {
        self.volume
            .push((operation.into(), Setting::Level(Some(level))));
        self
    }
}
