//! The bounded queue between the threads that log and a sink's worker.
//!
//! Lines are stored back to back, each ending in `\n`, in a ring buffer
//! reserved at its full capacity: a caller's `push` is a lock, a bounds
//! check and a `memcpy`, never an allocation. The worker takes the whole
//! ring, whatever its size, by swapping it for its spent batch buffer
//! (reserved the same way), and cuts it into batches for its destination
//! after releasing the lock, so callers never wait while lines are copied
//! or counted. Cutting a batch under the lock, whenever more than a batch
//! was queued, made a thread logging in a tight loop (like
//! `overhead_observe_full`'s) block on it thousands of times a second, and
//! each logged call measurably slower. Only pages that lines
//! reach become resident. Either buffer may be the ring when the
//! destination goes away, so after repeated outages both may have held a
//! full queue: resident memory stays below twice the capacity (tested over
//! four outages in `tests/sink_memory.rs`). Copying out of one ring instead
//! bounds it at the capacity plus a batch, but makes callers wait behind
//! every copy: when that was tried, the `overhead_observe_full` bench
//! measured logged calls clearly slower than with the swap.
//!
//! The capacity bounds every line held, queued or in the batch the worker
//! is sending, however long the destination is away. When the next line
//! does not fit, it is dropped (the newest line, so what is already
//! queued keeps its order) and counted.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, Once, PoisonError};
use std::time::{Duration, Instant};

use super::SinkStats;
use crate::base::names;

/// How often an idle worker wakes to publish counters it has not published.
const IDLE_WAKE: Duration = Duration::from_secs(1);

/// While lines keep coming, the worker looks for them this often on its own
/// timer instead of being woken by the callers that queue them: a wake-up
/// is a system call (and, on virtual machines, an interrupt to the other
/// core) paid on a caller's thread. Polling made a logged call to a TCP
/// sink cheaper (a loop like `overhead_observe_full`'s, over interleaved
/// runs) than waking the worker per 64 KiB batch. A
/// line queued while the worker polls is taken at its next look, this long
/// (plus the timer's slack) at most after the last; one queued while it
/// sends waits for that send first.
const POLL: Duration = Duration::from_micros(100);

/// After this many polls in a row find nothing, the worker sleeps until a
/// caller wakes it with the next line (2 ms of quiet).
const QUIET_POLLS: u32 = 20;

/// At or above this many queued bytes (or a quarter of the capacity) the
/// worker sends at once instead of waiting for its next poll.
const BATCH_BYTES: usize = 64 * 1024;

/// A bounded byte queue of newline-terminated lines, with the sink's counters.
pub(crate) struct Queue {
    name: Box<str>,
    capacity: usize,
    state: Mutex<State>,
    /// The worker waits here for lines or for the queue to close.
    work: Condvar,
    /// `flush` waits here for the queue and the worker's batch to drain.
    drained: Condvar,
    counters: Counters,
}

struct State {
    buf: VecDeque<u8>,
    /// Lines in `buf`.
    lines: u64,
    /// Lines the worker took and has not yet sent or dropped.
    in_flight: u64,
    in_flight_bytes: u64,
    /// The worker is waiting for lines: the next push must wake it.
    worker_idle: bool,
    /// The worker is between two polls (see [`POLL`]): only a queue a
    /// quarter full wakes it early.
    polling: bool,
    /// Polls in a row that found nothing.
    quiet_polls: u32,
    /// Threads inside `flush`.
    flushers: usize,
    /// Every handle to the sink is gone: the worker delivers what it can
    /// and stops.
    closed: bool,
    /// Lines of the worker's batch a flush counted as dropped when it ran
    /// out of time, still to be settled by the worker; they are not
    /// counted again, whatever their fate. While there are any, the worker
    /// drops its batch instead of retrying it.
    counted_early: u64,
}

impl State {
    /// The queue is closed or a flush gave up on the worker's batch.
    fn giving_up(&self) -> bool {
        self.closed || self.counted_early > 0
    }
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    dropped: AtomicU64,
    rejected: AtomicU64,
    connects: AtomicU64,
    /// Counts not yet added to the `metrics` counters: whoever publishes
    /// swaps them to zero, so any thread may publish.
    unpublished_sent: AtomicU64,
    unpublished_dropped: AtomicU64,
    last_error: Mutex<Option<String>>,
}

/// What the worker found in [`Queue::wait`].
pub(crate) enum Wait {
    /// Lines are queued.
    Ready,
    /// Nothing arrived for a while.
    Idle,
    /// The queue is closed and empty: the worker can stop.
    Closed,
}

impl Queue {
    pub(crate) fn new(name: &str, capacity: usize) -> Self {
        Self {
            name: name.into(),
            capacity,
            state: Mutex::new(State {
                // Allocated once at full size: growing would copy and, for a
                // moment, hold twice the bound. Pages are only touched (and
                // resident) once lines reach them.
                buf: VecDeque::with_capacity(capacity),
                lines: 0,
                in_flight: 0,
                in_flight_bytes: 0,
                worker_idle: false,
                polling: false,
                quiet_polls: 0,
                flushers: 0,
                closed: false,
                counted_early: 0,
            }),
            work: Condvar::new(),
            drained: Condvar::new(),
            counters: Counters::default(),
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock; if something did, the byte
        // counts are still consistent, so carry on.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `prefix` and `line` (with or without its trailing `\n`) as
    /// one line, or drops and counts it when it does not fit. Never blocks
    /// on the destination. Neither holds another newline: lines come as
    /// [`JsonLine`](super::JsonLine)s, which are checked when made, so
    /// they are not scanned here.
    pub(crate) fn push(&self, prefix: &[u8], line: &str) {
        let body = line.strip_suffix('\n').unwrap_or(line);
        let need = prefix.len() + body.len() + 1;
        let mut st = self.lock();
        // The worker's batch counts too: the bound is on every line held.
        let held = st.buf.len() + st.in_flight_bytes as usize;
        if st.closed || held + need > self.capacity {
            drop(st);
            self.count_dropped(1);
            return;
        }
        if !prefix.is_empty() {
            st.buf.extend(prefix);
        }
        st.buf.extend(body.as_bytes());
        st.buf.push_back(b'\n');
        st.lines += 1;
        // A sleeping worker needs the first line. A polling worker comes
        // back on its own; only a queue filling up faster than it polls is
        // worth a wake-up (one per poll).
        let filling = st.polling && st.buf.len() >= self.capacity / 4;
        if filling {
            st.polling = false;
        }
        let wake = std::mem::replace(&mut st.worker_idle, false) || filling;
        drop(st);
        if wake {
            self.work.notify_one();
        }
    }

    /// Waits (a while) for lines to be queued: polls while they keep
    /// coming, sleeps until woken once they stop.
    pub(crate) fn wait(&self) -> Wait {
        let mut st = self.lock();
        loop {
            let hurry = st.buf.len() >= self.batch_bytes() || st.closed || st.flushers > 0;
            if st.lines > 0 && hurry {
                st.quiet_polls = 0;
                return Wait::Ready;
            }
            if st.lines == 0 && st.closed {
                return Wait::Closed;
            }
            if st.quiet_polls < QUIET_POLLS {
                st = self.sleep(st, |s| &mut s.polling, POLL);
                if st.lines > 0 {
                    st.quiet_polls = 0;
                    return Wait::Ready;
                }
                st.quiet_polls += 1;
                continue;
            }
            st = self.sleep(st, |s| &mut s.worker_idle, IDLE_WAKE);
            if st.lines == 0 {
                return if st.closed { Wait::Closed } else { Wait::Idle };
            }
            // Woken by the first line after a quiet spell: poll once, so
            // it goes out with the lines right behind it.
            st.quiet_polls = 0;
        }
    }

    /// The worker waits for work at most `timeout` with `flag` raised, so
    /// callers can tell whether (and why) to wake it.
    fn sleep<'a>(
        &self,
        mut st: MutexGuard<'a, State>,
        flag: fn(&mut State) -> &mut bool,
        timeout: Duration,
    ) -> MutexGuard<'a, State> {
        *flag(&mut st) = true;
        let mut st = self
            .work
            .wait_timeout(st, timeout)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
        *flag(&mut st) = false;
        st
    }

    fn batch_bytes(&self) -> usize {
        BATCH_BYTES.min(self.capacity / 4)
    }

    /// Moves every queued line into `out` (which it replaces); returns how
    /// many. The ring is swapped for `out`'s buffer, never copied, so a
    /// caller queueing a line never waits behind a batch: the worker cuts
    /// the lines into batches its transport can take (see
    /// [`Batch`](super::worker::Batch)) after the lock is released.
    pub(crate) fn take(&self, out: &mut Vec<u8>) -> u64 {
        out.clear();
        // The ring this buffer becomes; reserved here, outside the lock, so
        // pushes never allocate.
        let mut spare = VecDeque::from(std::mem::take(out));
        spare.reserve_exact(self.capacity);
        let mut st = self.lock();
        if st.lines == 0 {
            drop(st);
            *out = Vec::from(spare);
            return 0;
        }
        let taken = std::mem::replace(&mut st.buf, spare);
        let lines = std::mem::take(&mut st.lines);
        st.in_flight += lines;
        st.in_flight_bytes += taken.len() as u64;
        drop(st);
        // Contiguous (the ring is only ever appended to after a swap), so
        // this is a move, not a copy.
        *out = Vec::from(taken);
        lines
    }

    /// Records the outcome of lines the worker took: `sent` delivered,
    /// `dropped` given up (of which `rejected` refused by the destination).
    pub(crate) fn settle(&self, sent: u64, dropped: u64, rejected: u64, bytes: u64) {
        if sent + dropped == 0 {
            return;
        }
        let mut st = self.lock();
        // The batch's lines a flush already counted come first: the worker
        // holds one take at a time, and these are its lines.
        let early = st.counted_early.min(sent + dropped);
        st.counted_early -= early;
        let early_dropped = early.min(dropped);
        let (sent, dropped) = (sent - (early - early_dropped), dropped - early_dropped);
        let rejected = rejected.min(dropped);
        st.in_flight = st.in_flight.saturating_sub(sent + dropped);
        st.in_flight_bytes = st.in_flight_bytes.saturating_sub(bytes);
        let wake = st.flushers > 0;
        drop(st);
        let c = &self.counters;
        c.sent.fetch_add(sent, Ordering::Relaxed);
        c.unpublished_sent.fetch_add(sent, Ordering::Relaxed);
        c.rejected.fetch_add(rejected, Ordering::Relaxed);
        self.count_dropped(dropped);
        if wake {
            self.drained.notify_all();
        }
    }

    /// Counts every line the worker took and has not settled as dropped:
    /// its batch was lost to a panic.
    pub(crate) fn abandon_in_flight(&self) {
        let mut st = self.lock();
        let lines = std::mem::take(&mut st.in_flight);
        st.in_flight_bytes = 0;
        // Lines a flush already counted left `in_flight` when it did.
        st.counted_early = 0;
        let wake = st.flushers > 0;
        drop(st);
        self.count_dropped(lines);
        if wake {
            self.drained.notify_all();
        }
    }

    /// Drops everything still queued (the worker is giving up: the sink is
    /// closed and its destination unreachable).
    pub(crate) fn discard_queued(&self) {
        let mut st = self.lock();
        let lines = std::mem::take(&mut st.lines);
        st.buf.clear();
        let wake = st.flushers > 0;
        drop(st);
        self.count_dropped(lines);
        if wake {
            self.drained.notify_all();
        }
    }

    /// Waits until every queued line is sent or dropped, at most `timeout`;
    /// lines still queued then are dropped and counted. Returns `true` if
    /// nothing was left.
    pub(crate) fn flush(&self, timeout: Duration) -> bool {
        let deadline = Instant::now().checked_add(timeout);
        let mut st = self.lock();
        st.flushers += 1;
        if st.polling {
            // Send now rather than at the next poll.
            self.work.notify_all();
        }
        let done = loop {
            if st.lines == 0 && st.in_flight == 0 {
                break true;
            }
            let now = Instant::now();
            let left = match deadline {
                Some(d) if d <= now => break false,
                Some(d) => d - now,
                None => IDLE_WAKE,
            };
            st = self
                .drained
                .wait_timeout(st, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        };
        st.flushers -= 1;
        let left = if done {
            0
        } else {
            // The worker drops the batch it holds when its current attempt
            // ends, without waiting out a backoff; but that attempt may be
            // a write blocked for the connection's whole timeout, past the
            // process's exit. Its lines are counted as dropped now (even
            // if that write completes after all), so the counts a final
            // metrics push or the caller reads are whole.
            let in_write = std::mem::take(&mut st.in_flight);
            st.counted_early += in_write;
            st.buf.clear();
            std::mem::take(&mut st.lines) + in_write
        };
        drop(st);
        if !done {
            self.work.notify_all();
        }
        self.count_dropped(left);
        self.publish();
        done
    }

    /// Closes the queue: lines pushed from now on are dropped, and the
    /// worker stops once it has delivered (or given up on) the rest.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.work.notify_all();
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Whether the worker should stop retrying the batch it holds: the
    /// queue is closed or a flush gave up on it.
    pub(crate) fn give_up(&self) -> bool {
        self.lock().giving_up()
    }

    /// Sleeps for `pause`, waking early if the queue closes or a flush
    /// abandons the worker's batch; returns `true` in those cases.
    pub(crate) fn pause(&self, pause: Duration) -> bool {
        let deadline = Instant::now().checked_add(pause);
        let mut st = self.lock();
        loop {
            if st.giving_up() {
                return true;
            }
            let now = Instant::now();
            let left = match deadline {
                Some(d) if d <= now => return false,
                Some(d) => d - now,
                None => IDLE_WAKE,
            };
            st = self
                .work
                .wait_timeout(st, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    pub(crate) fn count_dropped(&self, lines: u64) {
        if lines > 0 {
            self.counters.dropped.fetch_add(lines, Ordering::Relaxed);
            self.counters
                .unpublished_dropped
                .fetch_add(lines, Ordering::Relaxed);
        }
    }

    pub(crate) fn count_connect(&self) {
        self.counters.connects.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn set_error(&self, error: String) {
        *self
            .counters
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(error);
    }

    /// Adds the counts not yet published to `log_lines_sent_total{sink}`
    /// and `log_lines_dropped_total{sink}` of the current recorder.
    ///
    /// Callers only touch atomics; publishing from the worker (or a flush)
    /// keeps the metrics registry lookup off the logging path.
    pub(crate) fn publish(&self) {
        let sent = self.counters.unpublished_sent.swap(0, Ordering::Relaxed);
        let dropped = self.counters.unpublished_dropped.swap(0, Ordering::Relaxed);
        static DESCRIBE: Once = Once::new();
        DESCRIBE.call_once(|| {
            metrics::describe_counter!(
                names::LOG_LINES_SENT_TOTAL,
                metrics::Unit::Count,
                "Log lines a sink handed to its destination."
            );
        });
        // Published even at zero (the worker publishes at least once a
        // second), so the series exist before the first drop and
        // `increase()` sees it.
        metrics::counter!(names::LOG_LINES_SENT_TOTAL, "sink" => self.name.to_string())
            .increment(sent);
        super::count_dropped(&self.name, dropped);
    }

    pub(crate) fn stats(&self) -> SinkStats {
        let (queued, queued_bytes) = {
            let st = self.lock();
            (
                st.lines + st.in_flight,
                st.buf.len() as u64 + st.in_flight_bytes,
            )
        };
        let c = &self.counters;
        SinkStats {
            sent: c.sent.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            rejected: c.rejected.load(Ordering::Relaxed),
            queued,
            queued_bytes,
            capacity_bytes: self.capacity as u64,
            connects: c.connects.load(Ordering::Relaxed),
            last_error: c
                .last_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn take_all(q: &Queue) -> (Vec<u8>, u64) {
        let mut out = Vec::new();
        let n = q.take(&mut out);
        (out, n)
    }

    #[test]
    fn a_full_queue_drops_the_newest_line_and_counts_it() {
        let q = Queue::new("t", 10);
        q.push(b"", "aaaa\n");
        q.push(b"", "bbbb");
        q.push(b"", "c\n");
        let s = q.stats();
        assert_eq!((s.queued, s.queued_bytes, s.dropped), (2, 10, 1));
        let (out, n) = take_all(&q);
        assert_eq!((out.as_slice(), n), (&b"aaaa\nbbbb\n"[..], 2));
        q.settle(2, 0, 0, 10);
        assert_eq!(q.stats().sent, 2);
        assert!(q.flush(Duration::ZERO));
    }

    #[test]
    fn a_prefix_is_queued_with_its_line_and_counts_toward_the_capacity() {
        let q = Queue::new("t", 12);
        q.push(b"idx ", "{\"a\":1}\n");
        q.push(b"i ", "{}");
        let (out, n) = take_all(&q);
        assert_eq!((out.as_slice(), n), (&b"idx {\"a\":1}\n"[..], 1));
        assert_eq!(q.stats().dropped, 1);
    }

    #[test]
    fn flush_at_the_deadline_counts_the_worker_s_lines_once() {
        let q = Queue::new("t", 100);
        q.push(b"", "a\n");
        q.push(b"", "b\n");
        q.push(b"", "c\n");
        assert_eq!(take_all(&q).1, 3);
        q.push(b"", "d\n");
        // The worker is stuck writing its three lines: all four are given
        // up, and counted, when the flush runs out of time.
        assert!(!q.flush(Duration::from_millis(1)));
        let s = q.stats();
        assert_eq!((s.queued, s.sent, s.dropped), (0, 0, 4));
        assert!(q.give_up(), "the worker drops the rest of its batch");
        // Its write ends: one line went through, then the batch is dropped.
        // Neither is counted again.
        q.settle(1, 0, 0, 2);
        assert!(q.give_up(), "two of the batch's lines are still held");
        q.settle(0, 2, 1, 4);
        let s = q.stats();
        assert_eq!((s.sent, s.dropped, s.rejected), (0, 4, 0));
        assert!(!q.give_up());
        // Later lines count as usual.
        q.push(b"", "e\n");
        assert_eq!(take_all(&q).1, 1);
        q.settle(1, 0, 0, 2);
        assert_eq!((q.stats().sent, q.stats().dropped), (1, 4));
        assert!(q.flush(Duration::ZERO));
    }

    #[test]
    fn flush_at_the_deadline_drops_what_is_queued() {
        let q = Queue::new("t", 100);
        q.push(b"", "a\n");
        q.push(b"", "b\n");
        assert!(!q.flush(Duration::from_millis(1)));
        let s = q.stats();
        assert_eq!((s.queued, s.dropped), (0, 2));
    }

    #[test]
    fn a_closed_queue_refuses_lines_and_reports_closed_once_empty() {
        let q = Queue::new("t", 100);
        q.push(b"", "a\n");
        q.close();
        q.push(b"", "b\n");
        assert_eq!(q.stats().dropped, 1);
        assert!(matches!(take_all(&q), (_, 1)));
        assert!(matches!(q.wait(), Wait::Closed));
    }
}
