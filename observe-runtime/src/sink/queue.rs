//! The bounded queue between the threads that log and a sink's worker.
//!
//! Each thread appends its lines to its own *lane* (one per thread slot,
//! see [`thread_slot`](crate::base::thread_slot)), back to back, each
//! ending in `\n`: a caller's `push` locks a mutex no other caller takes
//! (threads beyond the slot count share lane 0), takes the line's room
//! from the lane's credit and copies the line. With one queue-wide mutex,
//! two threads logging at full speed spent a third of their time on it (a
//! profile of `benches/scaling.rs`' `observe/json_file` row:
//! `Queue::push` and the contended lock were 37 % of the samples); with a
//! shared byte count updated per line instead, that one atomic add was
//! the most expensive instruction of a push. A lane tops its credit up
//! from the queue's free room a chunk at a time and gives it back when
//! the worker takes the lane, so the shared count moves about once per
//! chunk, and the room lanes hold unused is at most a chunk each (an
//! eighth of the capacity in all).
//!
//! The worker takes one lane at a time, in turn, by swapping the lane's
//! buffer for its spent one: no copy on either side (copying the lanes
//! into one buffer made the worker the bottleneck of two threads logging
//! to TCP, `sink_throughput`'s `2_threads` row). Lines of one thread keep
//! their order; lines of different threads arrive lane by lane.
//!
//! The capacity bounds every line held, queued or in the batch the worker
//! is sending, however long the destination is away. When the next line
//! does not fit, it is dropped (the newest line, so what is already
//! queued keeps its order) and counted. Lane buffers grow as lines reach
//! them (only touched pages become resident), and a buffer swapped into a
//! lane is cut back to twice what that lane last held, so resident memory
//! stays below twice the capacity (tested over four outages in
//! `tests/sink_memory.rs`).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, Once, PoisonError};
use std::time::{Duration, Instant};

use super::SinkStats;
use crate::base::names;
use crate::base::thread_slot;

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

/// Capacity a buffer swapped into a lane keeps at least.
const LANE_KEEP_BYTES: usize = 64 * 1024;

/// A bounded byte queue of newline-terminated lines, with the sink's counters.
pub(crate) struct Queue {
    name: Box<str>,
    capacity: usize,
    /// Room not held by a line or a lane's credit: the capacity minus the
    /// lines queued or taken by the worker and not yet settled, minus the
    /// lanes' credit.
    free: AtomicUsize,
    /// Credit a lane takes beyond the line it needs room for.
    chunk: usize,
    /// Every handle to the sink is gone: the worker delivers what it can
    /// and stops. Read by callers under their lane's lock.
    closed: AtomicBool,
    /// The worker is waiting for lines: the next push must wake it.
    worker_idle: AtomicBool,
    /// The worker is between two polls (see [`POLL`]): only a queue a
    /// quarter full wakes it early.
    polling: AtomicBool,
    /// Some lane has dropped lines not yet counted: the next
    /// [`publish`](Self::publish) gathers them.
    lane_drops: AtomicBool,
    lanes: Box<[Lane]>,
    state: Mutex<State>,
    /// The worker waits here for lines or for the queue to close.
    work: Condvar,
    /// `flush` waits here for the queue and the worker's batch to drain.
    drained: Condvar,
    counters: Counters,
}

/// One thread slot's queued lines, on cache lines of its own.
#[repr(align(128))]
struct Lane(Mutex<LaneState>);

#[derive(Default)]
struct LaneState {
    buf: Vec<u8>,
    /// Lines in `buf`.
    lines: u64,
    /// Room taken from the queue's free room and not yet used.
    credit: usize,
    /// Lines dropped here and not yet added to the queue's counters: a
    /// full queue costs its callers no write to a shared cache line (the
    /// two counters' atomic adds were a third of a dropping push).
    dropped: u64,
}

/// Most credit a lane takes beyond a line: about a hundred lines.
const MAX_CHUNK: usize = 16 * 1024;

impl Lane {
    fn lock(&self) -> MutexGuard<'_, LaneState> {
        // As for the state: nothing panics while holding it.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What the worker and flushes share; callers take this lock only to wake
/// the worker.
struct State {
    /// Lines the worker took and has not yet sent or dropped.
    in_flight: u64,
    in_flight_bytes: u64,
    /// Polls in a row that found nothing.
    quiet_polls: u32,
    /// The lane the next take looks at first.
    next_lane: usize,
    /// The last take left lines in other lanes.
    more: bool,
    /// Threads inside `flush`.
    flushers: usize,
    /// Lines of the worker's batch a flush counted as dropped when it ran
    /// out of time, still to be settled by the worker; they are not
    /// counted again, whatever their fate. While there are any, the worker
    /// drops its batch instead of retrying it.
    counted_early: u64,
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
            free: AtomicUsize::new(capacity),
            // A small queue is not split among lanes: each line takes
            // exactly its room.
            chunk: MAX_CHUNK.min(capacity / (8 * (thread_slot::slot_count() + 1))),
            closed: AtomicBool::new(false),
            worker_idle: AtomicBool::new(false),
            polling: AtomicBool::new(false),
            lane_drops: AtomicBool::new(false),
            lanes: (0..=thread_slot::slot_count())
                .map(|_| Lane(Mutex::new(LaneState::default())))
                .collect(),
            state: Mutex::new(State {
                in_flight: 0,
                in_flight_bytes: 0,
                quiet_polls: 0,
                next_lane: 0,
                more: false,
                flushers: 0,
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

    /// The calling thread's lane.
    #[inline]
    fn lane(&self) -> &Lane {
        let slot = thread_slot::slot() as usize;
        self.lanes.get(slot).unwrap_or(&self.lanes[0])
    }

    /// Lines and bytes queued in the lanes, and lines dropped there and
    /// not yet gathered.
    fn in_lanes(&self) -> (u64, usize, u64) {
        self.lanes
            .iter()
            .fold((0, 0, 0), |(lines, bytes, dropped), lane| {
                let l = lane.lock();
                (lines + l.lines, bytes + l.buf.len(), dropped + l.dropped)
            })
    }

    fn queued_lines(&self) -> u64 {
        self.in_lanes().0
    }

    /// Tops `credit` up to at least `need` from the free room (plus a
    /// chunk when there is room for it); returns the free room left, or
    /// `None` when the room is not there.
    fn reserve(&self, credit: &mut usize, need: usize) -> Option<usize> {
        let short = need - *credit;
        let mut free = self.free.load(Ordering::Relaxed);
        loop {
            if free < short {
                return None;
            }
            let take = short.saturating_add(self.chunk).min(free);
            match self.free.compare_exchange_weak(
                free,
                free - take,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    *credit += take;
                    return Some(free - take);
                }
                Err(now) => free = now,
            }
        }
    }

    /// Whether the queue is closed or a flush gave up on the worker's
    /// batch.
    fn giving_up(&self, st: &State) -> bool {
        self.closed.load(Ordering::SeqCst) || st.counted_early > 0
    }

    /// Empties every lane; returns the lines dropped from them.
    fn clear_lanes(&self) -> u64 {
        let mut lines = 0;
        for lane in &*self.lanes {
            let mut l = lane.lock();
            lines += std::mem::take(&mut l.lines);
            let room = l.buf.len() + std::mem::take(&mut l.credit);
            l.buf.clear();
            drop(l);
            self.release(room);
        }
        lines
    }

    /// Gives back room that lines (or credit) no longer hold.
    fn release(&self, bytes: usize) {
        if bytes > 0 {
            self.free.fetch_add(bytes, Ordering::Relaxed);
        }
    }

    /// Wakes the worker (the only thread waiting on `work`). The lock is
    /// taken first: a worker about to wait holds it until it waits, so the
    /// notification cannot fall between its last look at the lanes and its
    /// wait.
    fn wake_worker(&self) {
        drop(self.lock());
        self.work.notify_one();
    }

    /// Queues `prefix` and `line` (with or without its trailing `\n`) as
    /// one line, or drops and counts it when it does not fit. Never blocks
    /// on the destination. Neither holds another newline: lines come as
    /// [`JsonLine`](super::JsonLine)s, which are checked when made, so
    /// they are not scanned here.
    pub(crate) fn push(&self, prefix: &[u8], line: &str) {
        let body = line.strip_suffix('\n').unwrap_or(line);
        let need = prefix.len() + body.len() + 1;
        let lane = self.lane();
        let mut l = lane.lock();
        // Read with the lane locked: the worker's last sweep locks every
        // lane after the queue closed, so a line is either in that sweep or
        // sees the close.
        let room = if self.closed.load(Ordering::SeqCst) {
            None
        } else if l.credit >= need {
            Some(None)
        } else {
            self.reserve(&mut l.credit, need).map(Some)
        };
        let Some(free_left) = room else {
            l.dropped += 1;
            drop(l);
            // Read first, so a caller of a full queue only reads the flag
            // (its line stays in every cache until the worker gathers).
            if !self.lane_drops.load(Ordering::Relaxed) {
                self.lane_drops.store(true, Ordering::Release);
            }
            return;
        };
        l.credit -= need;
        l.buf.extend_from_slice(prefix);
        l.buf.extend_from_slice(body.as_bytes());
        l.buf.push(b'\n');
        l.lines += 1;
        drop(l);
        // A sleeping worker needs the first line: it raises the flag before
        // its last look at the lanes, under their locks, so either it sees
        // this line or this load sees the flag. A polling worker comes back
        // on its own; only a queue filling up faster than it polls is worth
        // a wake-up (one per poll), looked at when a lane takes room from
        // the queue, so the usual push reads no shared count here.
        let idle = self.worker_idle.load(Ordering::SeqCst)
            && self.worker_idle.swap(false, Ordering::SeqCst);
        let filling = free_left.is_some_and(|free| free <= self.capacity / 4 * 3)
            && self.polling.load(Ordering::Relaxed)
            && self.polling.swap(false, Ordering::Relaxed);
        if idle || filling {
            self.wake_worker();
        }
    }

    /// Waits (a while) for lines to be queued: polls while they keep
    /// coming, sleeps until woken once they stop.
    pub(crate) fn wait(&self) -> Wait {
        let mut st = self.lock();
        loop {
            let (lines, queued_bytes, _) = self.in_lanes();
            let closed = self.closed.load(Ordering::SeqCst);
            let hurry = queued_bytes >= self.batch_bytes() || closed || st.flushers > 0 || st.more;
            if lines > 0 && hurry {
                st.quiet_polls = 0;
                return Wait::Ready;
            }
            if closed {
                // Looked at under every lane's lock: final.
                return if lines == 0 {
                    Wait::Closed
                } else {
                    Wait::Ready
                };
            }
            if st.quiet_polls < QUIET_POLLS {
                st = self.sleep(st, &self.polling, false, POLL);
                if self.queued_lines() > 0 {
                    st.quiet_polls = 0;
                    return Wait::Ready;
                }
                st.quiet_polls += 1;
                continue;
            }
            st = self.sleep(st, &self.worker_idle, true, IDLE_WAKE);
            if self.queued_lines() == 0 {
                if self.closed.load(Ordering::SeqCst) {
                    continue;
                }
                return Wait::Idle;
            }
            // Woken by the first line after a quiet spell: poll once, so
            // it goes out with the lines right behind it.
            st.quiet_polls = 0;
        }
    }

    /// The worker waits for work at most `timeout` with `flag` raised, so
    /// callers can tell whether (and why) to wake it. Polls (`idle` false)
    /// wait out their time whatever arrives, so lines gather into batches.
    fn sleep<'a>(
        &self,
        st: MutexGuard<'a, State>,
        flag: &AtomicBool,
        idle: bool,
        timeout: Duration,
    ) -> MutexGuard<'a, State> {
        flag.store(true, Ordering::SeqCst);
        // Looked at after raising the flag, under each lane's lock: a line
        // queued before this is seen here, one queued after sees the flag
        // and wakes the worker.
        if idle && (self.queued_lines() > 0 || self.closed.load(Ordering::SeqCst)) {
            flag.store(false, Ordering::SeqCst);
            return st;
        }
        let st = self
            .work
            .wait_timeout(st, timeout)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
        flag.store(false, Ordering::SeqCst);
        st
    }

    fn batch_bytes(&self) -> usize {
        BATCH_BYTES.min(self.capacity / 4)
    }

    /// Moves the lines of the next lane that has any into `out` (which it
    /// replaces); returns how many. The lane's buffer and `out`'s are
    /// swapped under the lane's lock, never copied, so a caller queueing a
    /// line never waits behind a batch, and the worker copies nothing: it
    /// cuts the buffer into batches its transport can take (see
    /// [`Batch`](super::worker::Batch)) after the locks are released.
    /// Lanes are taken in turn; while other lanes still hold lines, the
    /// next [`wait`](Self::wait) returns at once.
    pub(crate) fn take(&self, out: &mut Vec<u8>) -> u64 {
        out.clear();
        // Under the state lock, so a flush never sees the lines neither
        // queued nor in flight.
        let mut st = self.lock();
        let n = self.lanes.len();
        let first = st.next_lane % n;
        let mut taken = None;
        st.more = false;
        for k in 0..n {
            let i = (first + k) % n;
            let mut l = self.lanes[i].lock();
            if l.lines == 0 {
                continue;
            }
            if taken.is_some() {
                st.more = true;
                break;
            }
            // Room for twice what the lane holds, so a steady stream never
            // reallocates on the caller's side, and a burst's size is let
            // go at the lane's next turn.
            out.shrink_to(LANE_KEEP_BYTES.max(l.buf.len().saturating_mul(2)));
            std::mem::swap(&mut l.buf, out);
            let credit = std::mem::take(&mut l.credit);
            taken = Some(std::mem::take(&mut l.lines));
            drop(l);
            // Unused credit goes back, so a lane that stops logging holds no
            // room after its next turn.
            self.release(credit);
            st.next_lane = i + 1;
        }
        let lines = taken.unwrap_or(0);
        st.in_flight += lines;
        st.in_flight_bytes += out.len() as u64;
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
        let bytes = bytes.min(st.in_flight_bytes);
        st.in_flight_bytes -= bytes;
        // Counted before the lock goes: a flush that starts once the lines
        // have left `in_flight` must find them in the counts too.
        let c = &self.counters;
        c.sent.fetch_add(sent, Ordering::Relaxed);
        c.unpublished_sent.fetch_add(sent, Ordering::Relaxed);
        c.rejected.fetch_add(rejected, Ordering::Relaxed);
        self.count_dropped(dropped);
        let wake = st.flushers > 0;
        drop(st);
        #[allow(clippy::cast_possible_truncation)]
        self.release(bytes as usize);
        if wake {
            self.drained.notify_all();
        }
    }

    /// Counts every line the worker took and has not settled as dropped:
    /// its batch was lost to a panic.
    pub(crate) fn abandon_in_flight(&self) {
        let mut st = self.lock();
        let lines = std::mem::take(&mut st.in_flight);
        let bytes = std::mem::take(&mut st.in_flight_bytes);
        // Lines a flush already counted left `in_flight` when it did.
        st.counted_early = 0;
        self.count_dropped(lines);
        let wake = st.flushers > 0;
        drop(st);
        #[allow(clippy::cast_possible_truncation)]
        self.release(bytes as usize);
        if wake {
            self.drained.notify_all();
        }
    }

    /// Drops everything still queued (the worker is giving up: the sink is
    /// closed and its destination unreachable).
    pub(crate) fn discard_queued(&self) {
        let st = self.lock();
        let lines = self.clear_lanes();
        // Counted under the lock, as in `settle`.
        self.count_dropped(lines);
        let wake = st.flushers > 0;
        drop(st);
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
        if self.polling.load(Ordering::SeqCst) {
            // Send now rather than at the next poll.
            self.work.notify_all();
        }
        let done = loop {
            if self.queued_lines() == 0 && st.in_flight == 0 {
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
            self.clear_lanes() + in_write
        };
        // Counted under the lock, as in `settle`.
        self.count_dropped(left);
        drop(st);
        if !done {
            self.work.notify_all();
        }
        self.publish();
        done
    }

    /// Closes the queue: lines pushed from now on are dropped, and the
    /// worker stops once it has delivered (or given up on) the rest.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.wake_worker();
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Whether the worker should stop retrying the batch it holds: the
    /// queue is closed or a flush gave up on it.
    pub(crate) fn give_up(&self) -> bool {
        self.giving_up(&self.lock())
    }

    /// Sleeps for `pause`, waking early if the queue closes or a flush
    /// abandons the worker's batch; returns `true` in those cases.
    pub(crate) fn pause(&self, pause: Duration) -> bool {
        let deadline = Instant::now().checked_add(pause);
        let mut st = self.lock();
        loop {
            if self.giving_up(&st) {
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
        // A drop raises the flag after counting in its lane, under the
        // lane's lock: one this misses raises it again for the next call.
        // Moved under the state lock, so `stats` never sees a count in
        // both places or in neither.
        if self.lane_drops.load(Ordering::Relaxed) && self.lane_drops.swap(false, Ordering::Acquire)
        {
            let _st = self.lock();
            let dropped = self
                .lanes
                .iter()
                .map(|lane| std::mem::take(&mut lane.lock().dropped))
                .sum();
            self.count_dropped(dropped);
        }
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
        let c = &self.counters;
        // One moment's counts: lines leave `in_flight` and join `sent`
        // (or `dropped`) under the lock.
        let (queued, queued_bytes, sent, dropped, rejected) = {
            let st = self.lock();
            let (lines, bytes, in_lanes) = self.in_lanes();
            (
                lines + st.in_flight,
                bytes as u64 + st.in_flight_bytes,
                c.sent.load(Ordering::Relaxed),
                c.dropped.load(Ordering::Relaxed) + in_lanes,
                c.rejected.load(Ordering::Relaxed),
            )
        };
        SinkStats {
            sent,
            dropped,
            rejected,
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
    fn drops_counted_in_lanes_are_gathered_by_publish_and_counted_once() {
        let q = Queue::new("t", 4);
        q.push(b"", "aaa");
        for _ in 0..3 {
            q.push(b"", "b");
        }
        assert_eq!(q.stats().dropped, 3);
        assert_eq!(
            q.counters.dropped.load(Ordering::Relaxed),
            0,
            "kept in the lane"
        );
        q.publish();
        assert_eq!(q.counters.dropped.load(Ordering::Relaxed), 3);
        assert_eq!(q.counters.unpublished_dropped.load(Ordering::Relaxed), 0);
        assert_eq!(q.stats().dropped, 3);
        q.push(b"", "c");
        q.publish();
        assert_eq!(q.stats().dropped, 4);
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

    /// A worker taking and settling until the queue reports closed:
    /// returns the lines it took and the most bytes it saw held.
    fn drain(q: &Queue) -> (u64, u64) {
        let (mut taken, mut most) = (0, 0);
        let mut out = Vec::new();
        loop {
            most = most.max(q.stats().queued_bytes);
            match q.wait() {
                Wait::Closed => return (taken, most),
                Wait::Idle => continue,
                Wait::Ready => {}
            }
            let n = q.take(&mut out);
            assert_eq!(out.iter().filter(|&&b| b == b'\n').count() as u64, n);
            taken += n;
            q.settle(n, 0, 0, out.len() as u64);
        }
    }

    #[test]
    fn threads_pushing_at_once_lose_no_line_and_never_pass_the_capacity() {
        // Its threads take lanes' slots, which slot-counting tests count on.
        let _slots = crate::base::thread_slot::TEST_SLOTS
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        const THREADS: u64 = 6;
        const LINES: u64 = 20_000;
        let q = Queue::new("t", 64 * 1024);
        let line = "x".repeat(99);
        let (taken, most) = std::thread::scope(|s| {
            let worker = s.spawn(|| drain(&q));
            let pushers: Vec<_> = (0..THREADS)
                .map(|_| {
                    s.spawn(|| {
                        for _ in 0..LINES {
                            q.push(b"", &line);
                        }
                    })
                })
                .collect();
            for p in pushers {
                p.join().expect("pusher");
            }
            q.close();
            worker.join().expect("worker")
        });
        let s = q.stats();
        assert_eq!(taken + s.dropped, THREADS * LINES, "{s:?}");
        assert_eq!(s.queued, 0);
        assert!(most <= 64 * 1024, "{most} bytes held");
        assert!(taken > 0);
    }

    #[test]
    fn lines_pushed_while_the_queue_closes_are_taken_or_counted() {
        // Its threads take lanes' slots, which slot-counting tests count on.
        let _slots = crate::base::thread_slot::TEST_SLOTS
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for _ in 0..20 {
            let q = Queue::new("t", 1 << 20);
            let pushed = AtomicU64::new(0);
            let taken = std::thread::scope(|s| {
                let worker = s.spawn(|| drain(&q).0);
                for _ in 0..3 {
                    s.spawn(|| {
                        for _ in 0..2_000 {
                            q.push(b"", "line");
                            pushed.fetch_add(1, Ordering::Relaxed);
                        }
                    });
                }
                std::thread::sleep(Duration::from_micros(300));
                q.close();
                worker.join().expect("worker")
            });
            let s = q.stats();
            assert_eq!(taken + s.dropped, pushed.load(Ordering::Relaxed), "{s:?}");
            assert_eq!(
                s.queued, 0,
                "a line was left behind after the worker stopped"
            );
        }
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
