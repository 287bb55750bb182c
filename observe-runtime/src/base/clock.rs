//! The clock monitored calls are timed with.
//!
//! `std::time::Instant::now()` is a vDSO call; the CPU's invariant
//! time-stamp counter, read through `quanta`, costs a fraction of that
//! (`clock/*` in `benches/RESULTS.md`), and two reads bracket every call.
//! `quanta` falls back to the monotonic clock where the TSC is not
//! trustworthy. Calibration (up to 200 ms, once per process) happens at
//! install, or on the first timed call.

use std::cell::Cell;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

static CLOCK: OnceLock<quanta::Clock> = OnceLock::new();

fn clock() -> &'static quanta::Clock {
    CLOCK.get_or_init(quanta::Clock::new)
}

/// Calibrates the clock now, so no monitored call pays for it.
pub(crate) fn warm_up() {
    let _ = clock().raw();
}

/// A point in time, in raw counter ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Start(u64);

impl Start {
    /// A start never read: the guard of a call that records nothing.
    pub(crate) const ZERO: Self = Self(0);
}

/// Reads the clock.
#[inline]
pub(crate) fn now() -> Start {
    Start(clock().raw())
}

impl Start {
    /// Time from this start to now, and now's raw reading (which
    /// [`unix_nanos_at`] turns into wall time without reading again).
    #[inline]
    pub(crate) fn elapsed(self) -> (Duration, u64) {
        let c = clock();
        let end = c.raw();
        (Duration::from_nanos(c.delta_as_nanos(self.0, end)), end)
    }
}

/// The instant `after` from now, saturating: a timeout of `Duration::MAX`
/// (or any too large for the platform's clock) means "as late as the
/// clock can say", never a panic.
pub(crate) fn deadline_after(after: Duration) -> std::time::Instant {
    let now = std::time::Instant::now();
    now.checked_add(after).unwrap_or_else(|| {
        // A century is later than any process lives and fits every clock.
        now.checked_add(Duration::from_secs(100 * 365 * 86_400))
            .unwrap_or(now)
    })
}

/// How long a thread trusts wall time derived from the counter before it
/// reads the system clock again (so clock steps show up within this).
const RESYNC: Duration = Duration::from_secs(1);

thread_local! {
    /// (counter at sync, unix nanoseconds at sync, counter when stale).
    static WALL: Cell<(u64, u64, u64)> = const { Cell::new((0, 0, 0)) };
}

/// Wall-clock time as nanoseconds since the Unix epoch, derived from the
/// counter and re-synchronised with the system clock every second, so a
/// log line's timestamp costs a counter read instead of a system call.
pub(crate) fn unix_nanos() -> u64 {
    unix_nanos_at(clock().raw())
}

/// [`unix_nanos`] at an earlier raw reading of this thread's clock.
pub(crate) fn unix_nanos_at(raw: u64) -> u64 {
    let c = clock();
    WALL.with(|w| {
        let (base_raw, base_nanos, stale_at) = w.get();
        if base_raw != 0 && raw >= base_raw && raw < stale_at {
            return base_nanos + c.delta_as_nanos(base_raw, raw);
        }
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        let ticks = ticks_per_resync(c);
        w.set((raw, nanos, raw.saturating_add(ticks)));
        nanos
    })
}

/// Counter ticks in one [`RESYNC`] interval.
fn ticks_per_resync(c: &quanta::Clock) -> u64 {
    static TICKS: OnceLock<u64> = OnceLock::new();
    *TICKS.get_or_init(|| ticks_in_with(c, RESYNC))
}

/// Counter ticks in `d`, to compare against raw readings (at least 1).
pub(crate) fn ticks_in(d: Duration) -> u64 {
    ticks_in_with(clock(), d)
}

fn ticks_in_with(c: &quanta::Clock, d: Duration) -> u64 {
    const PROBE: u64 = 1 << 30;
    let nanos = c.delta_as_nanos(0, PROBE).max(1);
    let ticks = u128::from(PROBE) * d.as_nanos() / u128::from(nanos);
    u64::try_from(ticks).unwrap_or(u64::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_wall_time_stays_close_to_the_system_clock() {
        // Bounds for the units, not the precision: a thread paused between
        // two clock reads (a loaded machine) must not fail it.
        let slack = Duration::from_millis(50);
        for _ in 0..50 {
            let before = SystemTime::now();
            let derived = UNIX_EPOCH + Duration::from_nanos(unix_nanos());
            let after = SystemTime::now();
            assert!(
                derived + slack >= before && derived <= after + slack,
                "derived wall time {derived:?} outside {before:?}..{after:?}"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    #[test]
    fn elapsed_tracks_real_time() {
        // The reference interval holds the measured one.
        let wall = std::time::Instant::now();
        let start = now();
        std::thread::sleep(Duration::from_millis(20));
        let (measured, _) = start.elapsed();
        let reference = wall.elapsed();
        assert!(measured >= Duration::from_millis(19), "{measured:?}");
        // Generous bound: the point is the unit, not the precision.
        assert!(
            measured <= reference + Duration::from_millis(5),
            "{measured:?} vs {reference:?}"
        );
    }
}
