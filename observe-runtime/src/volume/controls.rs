//! The per-operation settings as atomics, read on the line path, and the
//! process-wide registry that hands them out and changes them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use tracing_core::Level;

use crate::base::Status;
use crate::correlation::CorrelationId;

/// `sample` not set here: the next source decides.
const UNSET: u64 = 0;
/// A sampling threshold that keeps every line; stored as `threshold + 1`
/// so that [`UNSET`] stays free.
const KEEP_ALL: u64 = u64::MAX;

/// One operation's settings (or the `*` defaults), read without a lock.
#[derive(Debug, Default)]
pub(crate) struct OperationControls {
    /// Sampling threshold + 1 (a line is kept when its ID hashes below the
    /// threshold), or [`UNSET`].
    sample: AtomicU64,
    /// Lines per second, 0 for none.
    rate: AtomicU32,
    /// Least severe level written: 0 unset, else 1 (ERROR) to 5 (TRACE).
    level: AtomicU8,
    /// Token bucket: whole tokens scaled by [`SCALE`], refilled at each
    /// admission from the elapsed wall time.
    tokens: AtomicU64,
    refilled_at_ms: AtomicU64,
    /// Lines suppressed since the last summary, and since when.
    suppressed: AtomicU64,
    suppressed_since_ms: AtomicU64,
}

/// Token fixed-point scale.
const SCALE: u64 = 1_000;

/// How often a flood that does not end is summarised.
const SUMMARY_EVERY_MS: u64 = 60_000;

/// What to do with a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admit {
    /// Write it.
    Write,
    /// Write it, after a summary of `suppressed` lines over `seconds`.
    WriteAfterSummary { suppressed: u64, seconds: u64 },
    /// Sampled out or below the level floor: skip it, quietly.
    Skip,
    /// Over the rate limit: skip it, counted.
    Suppress,
}

fn level_rank(level: Level) -> u8 {
    match level {
        Level::ERROR => 1,
        Level::WARN => 2,
        Level::INFO => 3,
        Level::DEBUG => 4,
        Level::TRACE => 5,
    }
}

impl OperationControls {
    // Each setter says whether the value changed, so that a reload that
    // repeats a setting neither logs it again nor refills a bucket.

    pub(crate) fn set_sample(&self, rate: Option<f64>) -> bool {
        let new = rate.map_or(UNSET, sample_threshold);
        self.sample.swap(new, Ordering::Relaxed) != new
    }

    pub(crate) fn set_rate(&self, per_second: Option<u32>) -> bool {
        let rate = per_second.unwrap_or(0);
        if self.rate.swap(rate, Ordering::Relaxed) == rate {
            return false;
        }
        // A new limit starts with a full burst.
        self.tokens
            .store(u64::from(rate) * SCALE, Ordering::Relaxed);
        self.refilled_at_ms.store(now_ms(), Ordering::Relaxed);
        true
    }

    pub(crate) fn set_level(&self, level: Option<Level>) -> bool {
        let new = level.map_or(0, level_rank);
        self.level.swap(new, Ordering::Relaxed) != new
    }

    /// Decides a line of `status` at `level` of a call whose ID is `id`;
    /// `slow` lines count as failures for sampling. `attribute_sample` is
    /// the callsite's own threshold + 1 (or [`UNSET`]). A `held` line
    /// belongs to a request whose lines are held until its root ends: its
    /// sampling is decided then, for the whole request, not here.
    pub(crate) fn admit(
        &self,
        status: Status,
        slow: bool,
        level: Level,
        attribute_sample: u64,
        held: bool,
        id: impl FnOnce() -> Option<CorrelationId>,
    ) -> Admit {
        let defaults = defaults();
        let floor = match self.level.load(Ordering::Relaxed) {
            0 => defaults.level.load(Ordering::Relaxed),
            l => l,
        };
        if floor != 0 && level_rank(level) > floor {
            return Admit::Skip;
        }
        if status == Status::Success && !slow && !held && !self.keeps(attribute_sample, id) {
            return Admit::Skip;
        }
        let own_rate = self.rate.load(Ordering::Relaxed);
        let (bucket, rate) = if own_rate != 0 {
            (self, own_rate)
        } else {
            (defaults, defaults.rate.load(Ordering::Relaxed))
        };
        if rate == 0 {
            return Admit::Write;
        }
        let Some(was_full) = bucket.take_token(rate) else {
            if self.suppressed.fetch_add(1, Ordering::Relaxed) == 0 {
                self.suppressed_since_ms.store(now_ms(), Ordering::Relaxed);
            }
            return Admit::Suppress;
        };
        if self.suppressed.load(Ordering::Relaxed) == 0 {
            return Admit::Write;
        }
        // The summary comes when the flood is over (the bucket filled up
        // again: demand stayed under the limit for a second), or once per
        // [`SUMMARY_EVERY_MS`] while it lasts.
        let since = self.suppressed_since_ms.load(Ordering::Relaxed);
        let elapsed = now_ms().saturating_sub(since);
        if !was_full && elapsed < SUMMARY_EVERY_MS {
            return Admit::Write;
        }
        match self.suppressed.swap(0, Ordering::Relaxed) {
            0 => Admit::Write,
            suppressed => Admit::WriteAfterSummary {
                suppressed,
                seconds: (elapsed + 500) / 1000,
            },
        }
    }

    /// Whether the request with the ID `id` (asked only when sampling
    /// applies) is in the share this operation keeps: its own `sample`,
    /// else the `*` default, else the attribute's `attribute_sample`;
    /// everything when none is set.
    pub(crate) fn keeps(
        &self,
        attribute_sample: u64,
        id: impl FnOnce() -> Option<CorrelationId>,
    ) -> bool {
        let sample = [&self.sample, &defaults().sample]
            .iter()
            .map(|s| s.load(Ordering::Relaxed))
            .find(|&s| s != UNSET)
            .unwrap_or(attribute_sample);
        sample == UNSET || sample == KEEP_ALL || id().is_some_and(|id| kept(&id, sample))
    }

    /// Takes one token of a bucket refilled at `rate` per second with a
    /// burst of `rate`; `Some(whether it was full)` if there was one.
    fn take_token(&self, rate: u32) -> Option<bool> {
        let now = now_ms();
        let last = self.refilled_at_ms.load(Ordering::Relaxed);
        let cap = u64::from(rate) * SCALE;
        if now > last
            && self
                .refilled_at_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            // Tokens per ms are rate / 1000, scaled by SCALE: rate per ms.
            let add = (now - last).saturating_mul(u64::from(rate));
            let _ = self
                .tokens
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| {
                    Some(t.saturating_add(add).min(cap))
                });
        }
        self.tokens
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| {
                t.checked_sub(SCALE)
            })
            .ok()
            .map(|before| before >= cap)
    }
}

/// `threshold + 1` for keeping a share `rate` (clamped to [0, 1]) of IDs;
/// the `sample = ...` expansion calls it in a `static`.
#[doc(hidden)]
#[must_use]
#[allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_precision_loss
)]
pub const fn sample_threshold(rate: f64) -> u64 {
    if rate.is_nan() || rate >= 1.0 {
        KEEP_ALL
    } else if rate <= 0.0 {
        1
    } else {
        // Rounded down to even first: the product may round up to 2^64,
        // which the cast saturates to `u64::MAX`, and the `+ 1` must not
        // overflow.
        (rate * u64::MAX as f64) as u64 / 2 * 2 + 1
    }
}

/// Whether the request with `id` is in the kept share: its trace-id,
/// which every service of the request derives alike (see
/// [`CorrelationId`]'s trace), read as the OpenTelemetry `TraceIdRatio`
/// sampler reads it (its low 56 bits), below the threshold. So a request
/// is kept or dropped whole, in every service, and the lines kept at a
/// rate are those of the traces a span sampler keeps at the same rate.
fn kept(id: &CorrelationId, sample: u64) -> bool {
    // The low 56 bits, scaled to the threshold's 64.
    #[allow(clippy::cast_possible_truncation)]
    let h = (id.trace_id() as u64) << 8;
    h < sample - 1
}

/// Whether any volume setting was ever made: until then a line needs no
/// look at the settings at all.
static ANY_SET: AtomicBool = AtomicBool::new(false);

/// Whether lines must go through [`OperationControls::admit`]: a setting
/// was made somewhere, or the callsite's attribute samples.
#[inline(always)]
pub(crate) fn active(attribute_sample: u64) -> bool {
    attribute_sample != UNSET || ANY_SET.load(Ordering::Relaxed)
}

fn now_ms() -> u64 {
    crate::base::clock::unix_nanos() / 1_000_000
}

/// The registry: per operation, and the `*` defaults.
struct Registry {
    operations: Mutex<HashMap<String, Arc<OperationControls>>>,
    defaults: OperationControls,
}

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| Registry {
        operations: Mutex::new(HashMap::new()),
        defaults: OperationControls::default(),
    })
}

fn defaults() -> &'static OperationControls {
    &registry().defaults
}

/// The settings of `operation` (`*`: the defaults), made on first use.
pub(crate) fn controls_for(operation: &str) -> Arc<OperationControls> {
    let mut ops = registry()
        .operations
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    Arc::clone(ops.entry(operation.to_owned()).or_default())
}

/// Runs `f` on the settings `operation` names: `*` for the defaults.
pub(crate) fn with_controls<R>(operation: &str, f: impl FnOnce(&OperationControls) -> R) -> R {
    ANY_SET.store(true, Ordering::Relaxed);
    if operation == "*" {
        f(defaults())
    } else {
        f(&controls_for(operation))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_keeps_the_requests_a_trace_id_ratio_sampler_keeps() {
        // OpenTelemetry's TraceIdRatioBased: the low 56 bits below
        // ratio * 2^56.
        let threshold = sample_threshold(0.25);
        let mut agree = 0;
        for _ in 0..10_000 {
            let id = CorrelationId::generate();
            let otel = (id.trace_id() as u64) & ((1 << 56) - 1) < 1 << 54;
            assert_eq!(kept(&id, threshold), otel, "{id}");
            agree += usize::from(otel);
        }
        assert!((2_200..2_800).contains(&agree), "{agree}");
    }

    fn id(n: u32) -> CorrelationId {
        format!("req-{n}").parse().expect("valid")
    }

    #[test]
    fn sampling_keeps_about_the_share_asked_and_always_the_same_ids() {
        let threshold = sample_threshold(0.01);
        let kept_ids: Vec<u32> = (0..100_000).filter(|&n| kept(&id(n), threshold)).collect();
        assert!(
            (700..1300).contains(&kept_ids.len()),
            "{} of 100000",
            kept_ids.len()
        );
        let again: Vec<u32> = (0..100_000).filter(|&n| kept(&id(n), threshold)).collect();
        assert_eq!(kept_ids, again);
        assert_eq!(sample_threshold(1.0), KEEP_ALL);
        assert_eq!(sample_threshold(f64::NAN), KEEP_ALL);
        assert!(!(0..1000).any(|n| kept(&id(n), sample_threshold(0.0))));
    }

    #[test]
    fn failures_and_slow_calls_are_never_sampled_out() {
        let c = OperationControls::default();
        assert!(c.set_sample(Some(0.0)));
        assert!(!c.set_sample(Some(0.0)));
        let none = || Some(id(1));
        assert_eq!(
            c.admit(Status::Success, false, Level::INFO, UNSET, false, none),
            Admit::Skip
        );
        for (status, slow) in [
            (Status::Error, false),
            (Status::Panic, false),
            (Status::Cancelled, false),
            (Status::Success, true),
        ] {
            assert_eq!(
                c.admit(status, slow, Level::WARN, UNSET, false, none),
                Admit::Write
            );
        }
    }

    #[test]
    fn a_held_line_waits_for_its_request_to_be_sampled() {
        let c = OperationControls::default();
        c.set_sample(Some(0.0));
        assert_eq!(
            c.admit(Status::Success, false, Level::INFO, UNSET, true, || None),
            Admit::Write
        );
        assert!(!c.keeps(UNSET, || Some(id(1))));
        c.set_sample(Some(1.0));
        assert!(c.keeps(UNSET, || panic!("no ID needed to keep all")));
        c.set_sample(None);
        assert!(c.keeps(sample_threshold(1.0), || None));
    }

    #[test]
    fn the_level_floor_quiets_less_severe_lines() {
        let c = OperationControls::default();
        assert!(c.set_level(Some(Level::WARN)));
        let none = || None;
        assert_eq!(
            c.admit(Status::Success, false, Level::INFO, UNSET, false, none),
            Admit::Skip
        );
        assert_eq!(
            c.admit(Status::Error, false, Level::ERROR, UNSET, false, none),
            Admit::Write
        );
    }

    #[test]
    fn the_rate_limit_suppresses_beyond_the_burst_and_summarises_once() {
        let c = OperationControls::default();
        assert!(c.set_rate(Some(5)));
        let mut written = 0;
        let mut suppressed = 0;
        for _ in 0..50 {
            match c.admit(Status::Error, false, Level::ERROR, UNSET, false, || None) {
                Admit::Write => written += 1,
                Admit::Suppress => suppressed += 1,
                other => panic!("{other:?}"),
            }
        }
        assert!((5..=6).contains(&written), "{written}");
        assert_eq!(written + suppressed, 50);
        // Lines flow again, still over the limit: no summary yet.
        std::thread::sleep(std::time::Duration::from_millis(250));
        assert_eq!(
            c.admit(Status::Error, false, Level::ERROR, UNSET, false, || None),
            Admit::Write
        );
        // Quiet for over a second: the bucket is full, the flood is over.
        std::thread::sleep(std::time::Duration::from_millis(1100));
        match c.admit(Status::Error, false, Level::ERROR, UNSET, false, || None) {
            Admit::WriteAfterSummary { suppressed: n, .. } => assert_eq!(n, suppressed),
            other => panic!("{other:?}"),
        }
    }
}
