//! One operation's call metrics (calls and durations per status, the
//! in-flight gauge) in per-thread shards.
//!
//! A monitored call writes only its own thread's block: the in-flight
//! step, the call count, one bucket and the sum of nanoseconds of its
//! status. Calls that panic or are cancelled are rare, so their cells live
//! only in the shared block and every thread's block holds just the
//! in-flight gauge and the `success` and `error` cells. Readers add the
//! blocks up at render time; the sums are exact.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use metrics::{CounterFn, GaugeFn, HistogramFn};

use super::exemplar::{Exemplar, Exemplars};
use super::shard::{Sharded, Writer};
use crate::base::Status;

/// Histogram bounds, in seconds as configured and in whole nanoseconds
/// for the hot path, which never converts a duration to floating point.
#[derive(Debug)]
pub(crate) struct Bounds {
    /// Finite upper bounds, ascending, deduplicated.
    seconds: Arc<[f64]>,
    /// Per bound, the largest duration in nanoseconds that falls in it;
    /// `None` for a negative bound, which no duration falls in.
    nanos: Box<[Option<u64>]>,
    /// Index of the first bound with a duration in it.
    first: usize,
}

impl Bounds {
    pub(crate) fn new(bounds: &[f64]) -> Self {
        let mut seconds: Vec<f64> = bounds.iter().copied().filter(|b| b.is_finite()).collect();
        seconds.sort_by(f64::total_cmp);
        seconds.dedup();
        let nanos: Box<[Option<u64>]> = seconds.iter().map(|&b| largest_nanos_within(b)).collect();
        let first = nanos
            .iter()
            .position(Option::is_some)
            .unwrap_or(nanos.len());
        Self {
            seconds: seconds.into(),
            nanos,
            first,
        }
    }

    /// The bounds in seconds.
    pub(crate) fn seconds(&self) -> &Arc<[f64]> {
        &self.seconds
    }

    /// Number of buckets, the overflow (`+Inf`) bucket included.
    pub(crate) fn buckets(&self) -> usize {
        self.nanos.len() + 1
    }

    /// The bucket of a duration of `nanos`: the first bound it does not
    /// exceed, or the overflow bucket.
    #[inline]
    pub(crate) fn bucket(&self, nanos: u64) -> usize {
        let tail = &self.nanos[self.first..];
        self.first
            + tail
                .iter()
                .position(|&b| b.is_some_and(|b| nanos <= b))
                .unwrap_or(tail.len())
    }
}

/// The largest `n` whose `n * 1e-9` seconds is at most `bound`, so that a
/// duration lands in the same bucket as `seconds <= bound` puts it.
#[allow(clippy::cast_precision_loss)]
fn largest_nanos_within(bound: f64) -> Option<u64> {
    if bound < 0.0 {
        return None;
    }
    let within = |n: u64| n as f64 * 1e-9 <= bound;
    if within(u64::MAX) {
        return Some(u64::MAX);
    }
    // `within` holds up to some `n` and not after it (the conversion and
    // the multiply are monotonic): a binary search finds that `n` in 64
    // steps, whatever the bound.
    let (mut lo, mut hi) = (0u64, u64::MAX);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if within(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Some(lo)
}

/// Cell of the in-flight gauge, in whole steps (two's complement).
const IN_FLIGHT: usize = 0;

/// One operation's cells.
pub(crate) struct OperationCells {
    operation: String,
    bounds: Arc<Bounds>,
    cells: Sharded,
    /// Whether the call counters were registered (the guard's path counts
    /// as both): `success` and `error` are shown from then on.
    counters_shown: AtomicBool,
    /// Whether the gauge was registered: shown from then on.
    gauge_shown: AtomicBool,
    /// Recent calls per bucket, offered by the guard's path; `None` when
    /// exemplars are off.
    exemplars: Option<Exemplars>,
}

impl std::fmt::Debug for OperationCells {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OperationCells")
            .field("operation", &self.operation)
            .field("cells", &self.cells)
            .finish_non_exhaustive()
    }
}

/// What rendering needs of one status.
#[derive(Debug)]
pub(crate) struct StatusSnapshot {
    pub(crate) calls: u64,
    /// Per bucket, not cumulative; the overflow bucket last.
    pub(crate) buckets: Vec<u64>,
    pub(crate) sum_nanos: u64,
}

impl OperationCells {
    pub(crate) fn new(operation: &str, bounds: Arc<Bounds>, exemplars: bool) -> Self {
        // Per status: the call count, the buckets, the sum.
        let per_status = bounds.buckets() + 2;
        let exclusive = 1 + 2 * per_status;
        Self {
            operation: operation.to_owned(),
            cells: Sharded::new(1 + Status::ALL.len() * per_status, exclusive),
            exemplars: exemplars.then(|| Exemplars::new(bounds.buckets())),
            bounds,
            counters_shown: AtomicBool::new(false),
            gauge_shown: AtomicBool::new(false),
        }
    }

    pub(crate) fn operation(&self) -> &str {
        &self.operation
    }

    /// First cell of `status`: its call count, then its buckets and sum.
    #[inline(always)]
    fn base(&self, status: Status) -> usize {
        1 + status.index() * (self.bounds.buckets() + 2)
    }

    /// Marks a call of the operation as started (the guard's path).
    #[inline]
    pub(crate) fn enter(&self) {
        self.cells.writer().add(IN_FLIGHT, 1);
    }

    /// Marks a started call as finished with `status` after `nanos`, at
    /// raw clock reading `end`: the gauge, the call count, the histogram
    /// and the bucket's exemplar in one go.
    #[inline]
    pub(crate) fn finish(&self, status: Status, nanos: u64, end: u64) {
        let own = self.cells.writer();
        own.add(IN_FLIGHT, u64::MAX);
        let w = self.status_writer(own, status);
        w.add(self.base(status), 1);
        let bucket = self.observe_into(w, status, nanos);
        if let Some(ex) = &self.exemplars {
            ex.offer(status, bucket, nanos, end);
        }
    }

    /// Offers a call recorded elsewhere (through a wrapping recorder) as
    /// its bucket's exemplar.
    pub(crate) fn offer_exemplar(&self, status: Status, nanos: u64, end: u64) {
        if let Some(ex) = &self.exemplars {
            ex.offer(status, self.bounds.bucket(nanos), nanos, end);
        }
    }

    /// Where `status`'s cells are written: the thread's own block for
    /// `success` and `error`, the shared block for the rare outcomes.
    #[inline(always)]
    fn status_writer<'a>(&'a self, own: Writer<'a>, status: Status) -> Writer<'a> {
        if matches!(status, Status::Success | Status::Error) {
            own
        } else {
            self.cells.shared()
        }
    }

    /// Adds one sample of `nanos` to `status`'s histogram; returns its
    /// bucket.
    #[inline(always)]
    fn observe_into(&self, w: Writer<'_>, status: Status, nanos: u64) -> usize {
        let base = self.base(status);
        let bucket = self.bounds.bucket(nanos);
        w.add(base + 1 + bucket, 1);
        w.add(base + 1 + self.bounds.buckets(), nanos);
        bucket
    }

    /// Marks the call counters and the gauge as shown: the guard's path
    /// registers neither.
    pub(crate) fn show_all(&self) {
        self.show_counters();
        self.show_gauge();
    }

    pub(crate) fn show_counters(&self) {
        self.counters_shown.store(true, Ordering::Relaxed);
    }

    pub(crate) fn show_gauge(&self) {
        self.gauge_shown.store(true, Ordering::Relaxed);
    }

    fn add_calls(&self, status: Status, n: u64) {
        self.status_writer(self.cells.writer(), status)
            .add(self.base(status), n);
    }

    fn observe(&self, status: Status, nanos: u64) {
        let _ = self.observe_into(
            self.status_writer(self.cells.writer(), status),
            status,
            nanos,
        );
    }

    fn add_in_flight(&self, steps: i64) {
        #[allow(clippy::cast_sign_loss)]
        self.cells.writer().add(IN_FLIGHT, steps as u64);
    }

    /// The gauge's value.
    pub(crate) fn in_flight(&self) -> i64 {
        #[allow(clippy::cast_possible_wrap)]
        let v = self.cells.sum(IN_FLIGHT) as i64;
        v
    }

    pub(crate) fn counters_shown(&self) -> bool {
        self.counters_shown.load(Ordering::Relaxed)
    }

    pub(crate) fn gauge_shown(&self) -> bool {
        self.gauge_shown.load(Ordering::Relaxed)
    }

    /// The merged values of `status`.
    pub(crate) fn snapshot(&self, status: Status) -> StatusSnapshot {
        let base = self.base(status);
        let n = self.bounds.buckets();
        StatusSnapshot {
            calls: self.cells.sum(base),
            buckets: (0..n).map(|i| self.cells.sum(base + 1 + i)).collect(),
            sum_nanos: self.cells.sum(base + 1 + n),
        }
    }

    /// The exemplar of each bucket of `status` (overflow bucket last), or
    /// `None` when exemplars are off.
    pub(crate) fn exemplars(&self, status: Status) -> Option<Vec<Option<Exemplar>>> {
        self.exemplars.as_ref().map(|e| e.snapshot(status))
    }

    /// Bytes this operation holds on the heap.
    #[cfg(test)]
    pub(crate) fn heap_bytes(&self) -> usize {
        self.cells.heap_bytes()
            + self.operation.len()
            + self.exemplars.as_ref().map_or(0, Exemplars::heap_bytes)
    }
}

/// Nanoseconds of `seconds` for the `metrics` handles, rounded to the
/// nearest; NaN and negative durations count as zero rather than vanish,
/// and the cast saturates.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn nanos_of(seconds: f64) -> u64 {
    let seconds = if seconds > 0.0 { seconds } else { 0.0 };
    (seconds * 1e9 + 0.5) as u64
}

/// A `metrics` handle on one status of an operation: its call counter or
/// its histogram, as registered.
#[derive(Debug)]
pub(crate) struct StatusHandle {
    pub(crate) cells: Arc<OperationCells>,
    pub(crate) status: Status,
}

impl CounterFn for StatusHandle {
    fn increment(&self, value: u64) {
        self.cells.add_calls(self.status, value);
    }

    /// Raises the counter to `value` if it is below (counters never go
    /// down).
    fn absolute(&self, value: u64) {
        let now = self.cells.cells.sum(self.cells.base(self.status));
        if value > now {
            self.cells.add_calls(self.status, value - now);
        }
    }
}

impl HistogramFn for StatusHandle {
    fn record(&self, seconds: f64) {
        self.cells.observe(self.status, nanos_of(seconds));
    }
}

/// A `metrics` handle on an operation's in-flight gauge, kept in whole
/// steps: the gauge only ever moves by one, and whole steps add up exactly
/// across shards (a fractional step is rounded).
#[derive(Debug)]
pub(crate) struct InFlightHandle(pub(crate) Arc<OperationCells>);

#[allow(clippy::cast_possible_truncation)]
fn steps(value: f64) -> i64 {
    value.round() as i64
}

impl GaugeFn for InFlightHandle {
    fn increment(&self, value: f64) {
        self.0.add_in_flight(steps(value));
    }

    fn decrement(&self, value: f64) {
        self.0.add_in_flight(steps(-value));
    }

    /// Moves the gauge to `value` by adding the difference in this
    /// thread's shard.
    #[allow(clippy::cast_precision_loss)]
    fn set(&self, value: f64) {
        let now = self.0.in_flight() as f64;
        self.0.add_in_flight(steps(value - now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nanosecond_buckets_agree_with_comparing_seconds() {
        let bounds = Bounds::new(crate::base::names::DEFAULT_DURATION_BUCKETS);
        let odd = Bounds::new(&[-1.0, 0.0, 1e-9, 0.1 + 0.2, 3.3e-7, 1.844_674_4e10, 1e30]);
        for b in [&bounds, &odd] {
            for &s in b.seconds.iter() {
                let n = largest_nanos_within(s).unwrap_or(0);
                for v in [
                    0,
                    1,
                    n.saturating_sub(1),
                    n,
                    n.saturating_add(1),
                    n.saturating_mul(3),
                ] {
                    #[allow(clippy::cast_precision_loss)]
                    let secs = v as f64 * 1e-9;
                    let by_seconds = b
                        .seconds
                        .iter()
                        .position(|&x| secs <= x)
                        .unwrap_or(b.seconds.len());
                    assert_eq!(b.bucket(v), by_seconds, "{v} ns against {:?}", b.seconds);
                }
            }
        }
        assert_eq!(bounds.bucket(u64::MAX), bounds.buckets() - 1);
    }

    #[test]
    fn finish_counts_the_call_the_bucket_the_sum_and_the_gauge() {
        let cells = OperationCells::new("op", Arc::new(Bounds::new(&[0.001, 0.01])), false);
        cells.enter();
        cells.enter();
        cells.finish(Status::Success, 500_000, 0);
        cells.enter();
        cells.finish(Status::Panic, 20_000_000, 0);
        let ok = cells.snapshot(Status::Success);
        assert_eq!(
            (ok.calls, ok.buckets.as_slice(), ok.sum_nanos),
            (1, &[1, 0, 0][..], 500_000)
        );
        let panic = cells.snapshot(Status::Panic);
        assert_eq!(panic.buckets, [0, 0, 1]);
        assert_eq!(cells.snapshot(Status::Error).calls, 0);
        assert_eq!(cells.in_flight(), 1);
    }

    #[test]
    fn bytes_per_operation_at_the_slot_count() {
        let _slots = crate::base::thread_slot::TEST_SLOTS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let cells = OperationCells::new(
            "op",
            Arc::new(Bounds::new(crate::base::names::DEFAULT_DURATION_BUCKETS)),
            false,
        );
        let idle = cells.heap_bytes();
        std::thread::scope(|s| {
            s.spawn(|| cells.enter());
        });
        let one = cells.heap_bytes();
        // 16 bounds: 77 cells shared (640 bytes), 39 per thread (384).
        assert_eq!(one - idle, 384);
        assert!(
            idle < 640 + (crate::base::thread_slot::MAX_SLOTS + 1) * 32,
            "{idle}"
        );
    }
}
