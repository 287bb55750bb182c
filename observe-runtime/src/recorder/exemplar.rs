//! Exemplars of one operation's duration histogram: per status and bucket,
//! a recent call's correlation ID (and trace ID when its request came with
//! one), its duration and when it ended.
//!
//! Offering an exemplar is one load and one compare on the caller's path:
//! each bucket takes a new exemplar at most once per [`INTERVAL`], so the
//! store is written (and its cache lines move between cores) a few times a
//! second at most, however many calls there are. A bucket's first call
//! after a quiet spell is always taken, so rare slow calls are the ones
//! that show up.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::base::Status;
use crate::base::clock;
use crate::correlation::{self, CorrelationId};

/// How long a bucket keeps its exemplar before a newer call replaces it.
pub(crate) const INTERVAL: Duration = Duration::from_millis(100);

/// OpenMetrics caps an exemplar's label names and values at 128
/// characters together; a longer set is rejected with the whole scrape.
const MAX_LABEL_CHARS: usize = 128;

/// One call, as a histogram bucket shows it.
#[derive(Debug, Clone)]
pub(crate) struct Exemplar {
    pub(crate) correlation_id: CorrelationId,
    pub(crate) trace_id: Option<u128>,
    pub(crate) nanos: u64,
    pub(crate) unix_nanos: u64,
}

impl Exemplar {
    /// Appends ` # {labels} value timestamp` (OpenMetrics), or nothing
    /// when the labels cannot fit the format's limit.
    pub(crate) fn write_openmetrics(&self, out: &mut String) {
        use std::fmt::Write as _;
        let id = self.correlation_id.to_string();
        let trace = self.trace_id.map(|t| format!("{t:032x}"));
        let trace_chars = trace.as_ref().map_or(0, |t| "trace_id".len() + t.len());
        let id_chars = "correlation_id".len() + id.chars().count();
        let with_id = trace_chars + id_chars <= MAX_LABEL_CHARS;
        if !with_id && trace.is_none() {
            return;
        }
        out.push_str(" # {");
        if let Some(t) = &trace {
            let _ = write!(out, "trace_id=\"{t}\"");
        }
        if with_id {
            if trace.is_some() {
                out.push(',');
            }
            out.push_str("correlation_id=\"");
            super::native::escape_label_value(&id, out);
            out.push('"');
        }
        #[allow(clippy::cast_precision_loss)]
        let seconds = self.nanos as f64 / 1e9;
        let _ = write!(
            out,
            "}} {seconds} {}.{:09}",
            self.unix_nanos / 1_000_000_000,
            self.unix_nanos % 1_000_000_000
        );
    }
}

/// The exemplars of one operation: a slot per status and bucket.
#[derive(Debug)]
pub(crate) struct Exemplars {
    buckets: usize,
    /// Per slot, the raw clock reading from which it takes a new exemplar.
    due: Box<[AtomicU64]>,
    /// The buckets that have one, by slot: most calls of an operation
    /// land in a few buckets, so a sparse list keeps the memory per
    /// operation small. Taken with `try_lock` only by callers, who never
    /// wait for a scrape.
    kept: Mutex<Vec<(usize, Exemplar)>>,
    interval_ticks: u64,
}

impl Exemplars {
    pub(crate) fn new(buckets: usize) -> Self {
        let slots = Status::ALL.len() * buckets;
        Self {
            buckets,
            due: (0..slots).map(|_| AtomicU64::new(0)).collect(),
            kept: Mutex::new(Vec::new()),
            interval_ticks: clock::ticks_in(INTERVAL),
        }
    }

    /// Offers the call that just ended (raw clock reading `end`) in
    /// `bucket` of `status`.
    #[inline(always)]
    pub(crate) fn offer(&self, status: Status, bucket: usize, nanos: u64, end: u64) {
        let slot = status.index() * self.buckets + bucket;
        if let Some(due) = self.due.get(slot) {
            let at = due.load(Ordering::Relaxed);
            if end >= at {
                self.take(slot, at, nanos, end);
            }
        }
    }

    #[cold]
    #[inline(never)]
    fn take(&self, slot: usize, at: u64, nanos: u64, end: u64) {
        // One caller per interval wins the slot; the others go on.
        let next = end.saturating_add(self.interval_ticks);
        if self.due[slot]
            .compare_exchange(at, next, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        // Only a call inside a correlation scope has an ID a log line
        // could show; a call outside every scope leaves no exemplar.
        let Some(correlation_id) = correlation::current() else {
            return;
        };
        let exemplar = Exemplar {
            trace_id: Some(correlation_id.trace_id()),
            correlation_id,
            nanos,
            unix_nanos: clock::unix_nanos_at(end),
        };
        if let Ok(mut kept) = self.kept.try_lock() {
            match kept.iter_mut().find(|(s, _)| *s == slot) {
                Some((_, old)) => *old = exemplar,
                None => kept.push((slot, exemplar)),
            }
        }
    }

    /// The exemplar of each bucket of `status`, the overflow bucket last.
    pub(crate) fn snapshot(&self, status: Status) -> Vec<Option<Exemplar>> {
        let kept = self
            .kept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let from = status.index() * self.buckets;
        let mut buckets = vec![None; self.buckets];
        for (slot, exemplar) in kept.iter() {
            if let Some(b) = slot.checked_sub(from).filter(|b| *b < self.buckets) {
                buckets[b] = Some(exemplar.clone());
            }
        }
        buckets
    }

    /// Bytes held on the heap.
    #[cfg(test)]
    pub(crate) fn heap_bytes(&self) -> usize {
        let kept = self.kept.lock().map_or(0, |k| k.capacity());
        self.due.len() * std::mem::size_of::<AtomicU64>()
            + kept * std::mem::size_of::<(usize, Exemplar)>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exemplar(id: &str, trace: Option<u128>) -> Exemplar {
        Exemplar {
            correlation_id: id.parse().expect("a valid id"),
            trace_id: trace,
            nanos: 1_500_000,
            unix_nanos: 1_700_000_000_123_000_000,
        }
    }

    #[test]
    fn writes_ids_value_and_timestamp() {
        let mut out = String::new();
        exemplar("req-1", Some(0xabc)).write_openmetrics(&mut out);
        assert_eq!(
            out,
            " # {trace_id=\"00000000000000000000000000000abc\",correlation_id=\"req-1\"} \
             0.0015 1700000000.123000000"
        );
    }

    #[test]
    fn an_id_too_long_for_the_limit_is_left_out() {
        let long = "x".repeat(100);
        let mut out = String::new();
        exemplar(&long, Some(1)).write_openmetrics(&mut out);
        assert!(out.starts_with(" # {trace_id=\""), "{out}");
        assert!(!out.contains("correlation_id"), "{out}");
        let mut out = String::new();
        exemplar(&"y".repeat(120), None).write_openmetrics(&mut out);
        assert_eq!(out, "", "no labels that fit: no exemplar");
    }

    #[test]
    fn a_bucket_takes_one_exemplar_per_interval_inside_a_scope() {
        let ex = Exemplars::new(3);
        let id: CorrelationId = "req-a".parse().expect("valid");
        let t0 = clock::ticks_in(Duration::from_secs(3600));
        correlation::scope(id, || {
            ex.offer(Status::Success, 1, 10, t0);
            ex.offer(Status::Success, 1, 20, t0 + 1);
        });
        let kept = ex.snapshot(Status::Success);
        let first = kept[1].as_ref().expect("the first call is taken");
        assert_eq!(first.nanos, 10, "the second, within the interval, is not");
        assert!(kept[0].is_none() && kept[2].is_none());
        assert!(ex.snapshot(Status::Error).iter().all(Option::is_none));

        let later = t0 + clock::ticks_in(INTERVAL) + 1;
        correlation::scope("req-b".parse().expect("valid"), || {
            ex.offer(Status::Success, 1, 30, later);
        });
        let kept = ex.snapshot(Status::Success);
        let next = kept[1].as_ref().expect("taken after the interval");
        assert_eq!(
            (next.nanos, next.correlation_id.to_string().as_str()),
            (30, "req-b")
        );
    }

    #[test]
    fn calls_outside_every_scope_leave_none() {
        let ex = Exemplars::new(2);
        ex.offer(Status::Success, 0, 10, 1);
        assert!(ex.snapshot(Status::Success).iter().all(Option::is_none));
    }
}
