//! One background thread per sink: takes batches from the queue, hands them
//! to a [`Transport`], reconnects with capped exponential backoff, and
//! accounts for every line as sent or dropped.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use super::queue::{Queue, Wait};
use super::{SinkError, SinkStats};
use crate::base::supervise;

/// How many times a batch the destination answered but partly refused
/// (e.g. `_bulk` items rejected with 429) is retried before the rest is
/// dropped; a destination that is down is retried without limit.
pub(crate) const MAX_PARTIAL_RETRIES: u32 = 5;

/// Settings shared by every queued sink.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) name: String,
    pub(crate) capacity_bytes: usize,
    pub(crate) max_batch_bytes: usize,
    pub(crate) backoff_initial: Duration,
    pub(crate) backoff_max: Duration,
}

impl Options {
    pub(crate) fn new(name: &str, max_batch_bytes: usize) -> Self {
        Self {
            name: name.to_owned(),
            capacity_bytes: super::DEFAULT_CAPACITY_BYTES,
            max_batch_bytes,
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
        }
    }

    fn validate(&self) -> Result<(), SinkError> {
        if self.name.is_empty() {
            return Err(SinkError::config("the sink name is empty"));
        }
        if self.capacity_bytes == 0 {
            return Err(SinkError::config("the queue capacity is 0 bytes"));
        }
        if self.max_batch_bytes == 0 {
            return Err(SinkError::config("the batch size is 0 bytes"));
        }
        Ok(())
    }
}

/// Why a [`Transport::send`] stopped before the batch was resolved.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The connection is unusable: reconnect, then resend what is left.
    Connection(io::Error),
    /// The destination answered but cannot take the lines now (HTTP 429 or
    /// 5xx): retry what is left after a backoff, on the same connection.
    Busy(String),
    /// As `Busy`, and the destination said when to come back (HTTP
    /// `Retry-After`, checked and capped by the transport): the worker
    /// waits at least that long.
    #[cfg_attr(not(feature = "otlp"), allow(dead_code))]
    BusyFor(String, Duration),
}

/// Moves lines to one destination; runs only on the worker thread.
pub(crate) trait Transport: Send + 'static {
    fn is_connected(&self) -> bool;
    /// Opens the connection (or file).
    fn connect(&mut self) -> io::Result<()>;
    /// Delivers as much of `batch` as it can, resolving lines as it goes.
    /// `Ok` with lines left means some were refused for now and are to be
    /// retried.
    fn send(&mut self, batch: &mut Batch) -> Result<(), Failure>;
    /// Drops a connection that failed.
    fn disconnect(&mut self);
    /// Ends a healthy connection politely (TLS `close_notify`).
    fn close(&mut self) {
        self.disconnect();
    }
}

/// What happened to one line of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fate {
    Sent,
    /// Refused by the destination in a way retrying cannot fix.
    Rejected,
    /// Not delivered yet: keep for the next attempt.
    Keep,
}

/// Lines the worker holds: newline-terminated, back to back. Lines before
/// `start` are resolved; the counts wait to be settled with the queue.
///
/// The worker takes every queued line at once; its transport sees them a
/// window at a time (`start..end`), each at most the sink's batch size
/// (or one longer line), so the queue's lock is never held for a copy.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    data: Vec<u8>,
    start: usize,
    /// End of the window the transport is given.
    end: usize,
    /// Unresolved lines in the window.
    lines: u64,
    /// Lines after the window.
    rest: u64,
    /// Bumped for every new window, so a transport can tell a retry of the
    /// same lines from new ones.
    generation: u64,
    attempts: u32,
    sent: u64,
    dropped: u64,
    rejected: u64,
    resolved_bytes: u64,
    note: Option<String>,
}

impl Batch {
    /// The unresolved lines of the window, each ending in `\n`.
    pub(crate) fn pending(&self) -> &[u8] {
        &self.data[self.start..self.end]
    }

    /// Whether the window is resolved (lines may still wait after it).
    pub(crate) fn is_empty(&self) -> bool {
        self.lines == 0
    }

    /// Holds the `lines` lines just taken into `data` and opens their
    /// first window.
    fn load(&mut self, lines: u64, max_bytes: usize) {
        self.start = 0;
        self.end = 0;
        self.lines = 0;
        self.rest = lines;
        self.next_window(max_bytes);
    }

    /// Opens the window after a resolved one: whole lines, at most
    /// `max_bytes` (or the first line, if it alone is longer). `false`
    /// when no line is left.
    fn next_window(&mut self, max_bytes: usize) -> bool {
        debug_assert_eq!(self.lines, 0, "the window is resolved");
        if self.rest == 0 {
            return false;
        }
        let rest = &self.data[self.end..];
        let cut = cut_point(rest, max_bytes);
        // Usually the whole take fits: no scan to count its lines.
        let lines = if cut == rest.len() {
            self.rest
        } else {
            count_lines(&rest[..cut])
        };
        self.start = self.end;
        self.end += cut;
        self.lines = lines;
        self.rest -= lines;
        self.attempts = 0;
        self.generation += 1;
        true
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// Iterates over the unresolved lines, without their `\n`.
    pub(crate) fn lines(&self) -> impl Iterator<Item = &[u8]> {
        self.pending()
            .split_inclusive(|&c| c == b'\n')
            .map(|l| l.strip_suffix(b"\n").unwrap_or(l))
    }

    /// Reports a problem with some lines (shown as the sink's last error).
    pub(crate) fn note(&mut self, note: String) {
        self.note = Some(note);
    }

    /// Resolves the first `bytes` pending bytes (whole lines) as `fate`.
    pub(crate) fn resolve_prefix(&mut self, bytes: usize, fate: Fate) {
        let pending = self.pending().len();
        let bytes = bytes.min(pending);
        // A batch sent whole (the usual case) is not read again to count
        // its lines: the worker shares the machine with the callers.
        let lines = if bytes == pending {
            self.lines
        } else {
            count_lines(&self.pending()[..bytes])
        };
        self.start += bytes;
        self.lines -= lines;
        self.resolved_bytes += bytes as u64;
        self.count(fate, lines);
    }

    /// Resolves each pending line by `fates` (in order; lines past its end
    /// are kept), keeping only the `Keep` lines.
    pub(crate) fn resolve_each(&mut self, fates: &[Fate]) {
        let mut kept: Vec<std::ops::Range<usize>> = Vec::new();
        let mut counts = [0u64; 2];
        let mut resolved = 0;
        let mut at = self.start;
        for (i, line) in self.lines().enumerate() {
            let len = line.len() + 1;
            let fate = fates.get(i).copied().unwrap_or(Fate::Keep);
            match fate {
                Fate::Keep => kept.push(at..at + len),
                Fate::Sent => counts[0] += 1,
                Fate::Rejected => counts[1] += 1,
            }
            if fate != Fate::Keep {
                resolved += len as u64;
            }
            at += len;
        }
        self.resolved_bytes += resolved;
        self.count(Fate::Sent, counts[0]);
        self.count(Fate::Rejected, counts[1]);
        self.lines -= counts[0] + counts[1];
        // The kept lines move, in order, to the end of the window, next to
        // the lines after it: in place, so a refusal never copies (or
        // allocates) the whole take. Last first, so no line is overwritten
        // before it moves.
        let mut to = self.end;
        for line in kept.into_iter().rev() {
            to -= line.len();
            self.data.copy_within(line, to);
        }
        self.start = to;
    }

    /// Gives up on the window's unresolved lines; the lines after it get
    /// their own attempts.
    fn drop_window(&mut self) {
        let len = self.end - self.start;
        self.dropped += self.lines;
        self.start = self.end;
        self.lines = 0;
        self.resolved_bytes += len as u64;
    }

    /// Gives up on every line held, in the window and after it (the queue
    /// is closed and its destination gone, or a flush gave up on them).
    fn drop_all(&mut self) {
        self.drop_window();
        let len = self.data.len() - self.end;
        self.dropped += self.rest;
        self.start = self.data.len();
        self.end = self.start;
        self.rest = 0;
        self.resolved_bytes += len as u64;
    }

    fn count(&mut self, fate: Fate, lines: u64) {
        match fate {
            Fate::Sent => self.sent += lines,
            Fate::Rejected => {
                self.dropped += lines;
                self.rejected += lines;
            }
            Fate::Keep => {}
        }
    }

    /// Hands the resolved counts to the queue.
    fn settle(&mut self, queue: &Queue) {
        if let Some(note) = self.note.take() {
            queue.set_error(note);
        }
        queue.settle(self.sent, self.dropped, self.rejected, self.resolved_bytes);
        self.sent = 0;
        self.dropped = 0;
        self.rejected = 0;
        self.resolved_bytes = 0;
    }

    /// Whether lines were delivered since the last settle.
    fn progressed(&self) -> bool {
        self.sent > 0
    }
}

/// Where to cut `data` (whole lines, each ending in `\n`) for a window:
/// after the last `\n` within `max` bytes, or after the first `\n` if the
/// first line alone is longer.
fn cut_point(data: &[u8], max: usize) -> usize {
    if data.len() <= max {
        return data.len();
    }
    memchr::memrchr(b'\n', &data[..max])
        .or_else(|| memchr::memchr(b'\n', data))
        .map_or(data.len(), |i| i + 1)
}

/// Lines in a batch: SIMD search, as the worker counts every batch it
/// resolves and shares the machine with the callers.
fn count_lines(bytes: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', bytes).count() as u64
}

/// Capped exponential backoff with jitter: after the `n`th consecutive
/// failure the worker waits between half and all of
/// `min(initial * 2^(n-1), max)`, never more than `max`.
#[derive(Debug)]
pub(crate) struct Backoff {
    initial: Duration,
    max: Duration,
    failures: u32,
    rng: u64,
}

impl Backoff {
    pub(crate) fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max: max.max(initial),
            failures: 0,
            rng: crate::correlation::random_u64() | 1,
        }
    }

    pub(crate) fn fail(&mut self) {
        self.failures = self.failures.saturating_add(1);
    }

    pub(crate) fn reset(&mut self) {
        self.failures = 0;
    }

    /// The wait before the next attempt; zero after a success.
    pub(crate) fn delay(&mut self) -> Duration {
        if self.failures == 0 {
            return Duration::ZERO;
        }
        let exp = (self.failures - 1).min(31);
        let full = self.initial.saturating_mul(1 << exp).min(self.max);
        // Equal jitter: services restarted together do not reconnect in step.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let half = full / 2;
        let frac = (self.rng >> 11) as f64 / (1u64 << 53) as f64;
        half + half.mul_f64(frac)
    }
}

/// The shared part of every queued sink: clones share one queue and one
/// worker, which stops once the last clone is dropped and the queue drained.
#[derive(Clone)]
pub(crate) struct Pipe {
    owner: Arc<Owner>,
}

struct Owner {
    queue: Arc<Queue>,
}

impl Drop for Owner {
    fn drop(&mut self) {
        self.queue.close();
    }
}

impl fmt::Debug for Pipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pipe")
            .field("name", &self.name())
            .field("stats", &self.stats())
            .finish()
    }
}

impl Pipe {
    /// Validates `opts`, then starts the worker thread.
    pub(crate) fn start(opts: &Options, transport: impl Transport) -> Result<Self, SinkError> {
        opts.validate()?;
        let queue = Arc::new(Queue::new(&opts.name, opts.capacity_bytes));
        let mut worker = Worker {
            queue: Arc::clone(&queue),
            max_batch_bytes: opts.max_batch_bytes,
            backoff: Backoff::new(opts.backoff_initial, opts.backoff_max),
        };
        let mut transport = transport;
        supervise::spawn(
            format!("observe-sink-{}", opts.name),
            format!("sink {}", opts.name),
            move |restarts| {
                if restarts > 0 && !worker.recover(&mut transport, restarts) {
                    return;
                }
                worker.run(&mut transport);
            },
        )
        .map_err(|e| SinkError::io("cannot start the sink's worker thread", e))?;
        Ok(Self {
            owner: Arc::new(Owner { queue }),
        })
    }

    pub(crate) fn name(&self) -> &str {
        self.owner.queue.name()
    }

    /// Queues `line` (one line, with or without its `\n`).
    pub(crate) fn push(&self, line: &str) {
        self.owner.queue.push(b"", line);
    }

    /// Queues `line` behind `prefix` (which holds no newline), as one
    /// entry of the batch the transport gets.
    pub(crate) fn push_prefixed(&self, prefix: &[u8], line: &str) {
        self.owner.queue.push(prefix, line);
    }

    pub(crate) fn flush(&self, timeout: Duration) -> bool {
        self.owner.queue.flush(timeout)
    }

    pub(crate) fn stats(&self) -> SinkStats {
        self.owner.queue.stats()
    }
}

struct Worker {
    queue: Arc<Queue>,
    max_batch_bytes: usize,
    backoff: Backoff,
}

/// Restarts after a panic while the queue is closed before the worker
/// gives up on what is left: a sink being dropped must not spin.
const RESTARTS_WHEN_CLOSED: u32 = 3;

impl Worker {
    /// After a panic: the batch it held is dropped and counted, the
    /// connection (whatever state the panic left it in) is closed, and the
    /// worker waits out its restart delay. `false` if it should stop.
    fn recover(&mut self, transport: &mut impl Transport, restarts: u32) -> bool {
        // The batch went with the panic; the queue knows how many lines
        // it held.
        self.queue.abandon_in_flight();
        self.queue
            .set_error("the worker panicked; the lines it held were dropped".to_owned());
        self.queue.publish();
        transport.disconnect();
        let closing = self.queue.pause(supervise::restart_delay(restarts));
        if closing && self.queue.is_closed() && restarts > RESTARTS_WHEN_CLOSED {
            self.queue.discard_queued();
            self.queue.publish();
            return false;
        }
        true
    }

    fn run(&mut self, transport: &mut impl Transport) {
        let mut batch = Batch::default();
        loop {
            if batch.is_empty() && !batch.next_window(self.max_batch_bytes) {
                match self.queue.wait() {
                    Wait::Ready => {}
                    Wait::Idle => {
                        self.queue.publish();
                        continue;
                    }
                    Wait::Closed => break,
                }
                // Connect before taking lines: while the destination is
                // away they stay in the queue, where a flush deadline can
                // count them at once.
                if !transport.is_connected() && !self.connect(transport) {
                    if self.queue.is_closed() {
                        self.queue.discard_queued();
                        break;
                    }
                    continue;
                }
                let n = self.queue.take(&mut batch.data);
                if n == 0 {
                    continue;
                }
                batch.load(n, self.max_batch_bytes);
            }
            if !transport.is_connected() && !self.connect(transport) {
                if self.queue.give_up() {
                    batch.drop_all();
                    batch.settle(&self.queue);
                }
                continue;
            }
            match transport.send(&mut batch) {
                Ok(()) => {
                    self.backoff.reset();
                    if !batch.is_empty() {
                        self.partial(&mut batch);
                    }
                }
                Err(Failure::Connection(e)) => {
                    transport.disconnect();
                    self.queue.set_error(format!("send failed: {e}"));
                    if batch.progressed() {
                        self.backoff.reset();
                    } else if self.queue.give_up() {
                        // Do not spin on a destination that accepts
                        // connections and then fails.
                        batch.drop_all();
                    }
                    self.backoff.fail();
                }
                Err(Failure::Busy(why)) => self.busy(&mut batch, why, Duration::ZERO),
                Err(Failure::BusyFor(why, at_least)) => self.busy(&mut batch, why, at_least),
            }
            batch.settle(&self.queue);
            self.queue.publish();
        }
        transport.close();
        self.queue.publish();
    }

    /// The destination cannot take the lines now: wait (the backoff, or
    /// `at_least` if longer) and retry them, unless the queue is closing.
    fn busy(&mut self, batch: &mut Batch, why: String, at_least: Duration) {
        self.queue.set_error(why);
        self.backoff.fail();
        if self.queue.pause(self.backoff.delay().max(at_least)) {
            batch.drop_window();
        }
    }

    /// Waits out the backoff, then connects; `false` if it failed.
    fn connect(&mut self, transport: &mut impl Transport) -> bool {
        // Closing cuts the wait short: one last attempt, then give up.
        let _closed = self.queue.pause(self.backoff.delay());
        match transport.connect() {
            Ok(()) => {
                self.queue.count_connect();
                true
            }
            Err(e) => {
                self.queue.set_error(format!("connect failed: {e}"));
                self.backoff.fail();
                false
            }
        }
    }

    /// Some lines were refused for now: retry them a few times, then drop.
    fn partial(&mut self, batch: &mut Batch) {
        batch.attempts += 1;
        if batch.attempts > MAX_PARTIAL_RETRIES {
            self.queue
                .set_error("lines still refused after retries; dropped".to_owned());
            batch.drop_window();
            return;
        }
        let mut b = Backoff::new(self.backoff.initial, self.backoff.max);
        b.failures = batch.attempts;
        if self.queue.pause(b.delay()) {
            batch.drop_window();
        }
    }
}

#[cfg(test)]
impl Batch {
    /// A batch of `data` (whole lines) in one window, as the worker would
    /// take it.
    pub(crate) fn from_lines(data: &[u8]) -> Self {
        Self::taken(data, usize::MAX)
    }

    /// A batch of `data` (whole lines) cut into windows of `max_bytes`.
    fn taken(data: &[u8], max_bytes: usize) -> Self {
        let mut batch = Self {
            data: data.to_vec(),
            ..Self::default()
        };
        batch.load(count_lines(data), max_bytes);
        batch
    }

    /// Sent, dropped and rejected lines not yet settled.
    pub(crate) fn counts(&self) -> (u64, u64, u64) {
        (self.sent, self.dropped, self.rejected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Panics on its first `panics` sends, then delivers.
    struct Flaky {
        panics: u32,
        delivered: Arc<std::sync::Mutex<Vec<u8>>>,
    }

    impl Transport for Flaky {
        fn is_connected(&self) -> bool {
            true
        }

        fn connect(&mut self) -> io::Result<()> {
            Ok(())
        }

        fn send(&mut self, batch: &mut Batch) -> Result<(), Failure> {
            if self.panics > 0 {
                self.panics -= 1;
                panic!("the peer's answer broke the transport");
            }
            self.delivered
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .extend_from_slice(batch.pending());
            batch.resolve_prefix(usize::MAX, Fate::Sent);
            Ok(())
        }

        fn disconnect(&mut self) {}
    }

    #[test]
    fn a_worker_that_panics_drops_its_batch_counted_and_delivers_again() {
        let delivered = Arc::new(std::sync::Mutex::new(Vec::new()));
        let pipe = Pipe::start(
            &Options::new("flaky", 1024),
            Flaky {
                panics: 2,
                delivered: Arc::clone(&delivered),
            },
        )
        .unwrap();
        pipe.push("first");
        let until = std::time::Instant::now() + Duration::from_secs(10);
        while pipe.stats().dropped == 0 {
            assert!(std::time::Instant::now() < until, "{:?}", pipe.stats());
            std::thread::sleep(Duration::from_millis(5));
        }
        pipe.push("second");
        while pipe.stats().dropped < 2 {
            assert!(std::time::Instant::now() < until, "{:?}", pipe.stats());
            std::thread::sleep(Duration::from_millis(5));
        }
        pipe.push("third");
        assert!(pipe.flush(Duration::from_secs(10)), "{:?}", pipe.stats());
        let stats = pipe.stats();
        assert_eq!((stats.sent, stats.dropped, stats.queued), (1, 2, 0));
        assert!(
            stats.last_error.is_some_and(|e| e.contains("panicked")),
            "the sink says why lines went"
        );
        assert_eq!(
            *delivered
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
            b"third\n"
        );
    }

    #[test]
    fn backoff_grows_and_stays_under_the_cap() {
        let cap = Duration::from_millis(800);
        let mut b = Backoff::new(Duration::from_millis(100), cap);
        assert_eq!(b.delay(), Duration::ZERO);
        let mut last_full = Duration::ZERO;
        for n in 1..40 {
            b.fail();
            let d = b.delay();
            let full = Duration::from_millis(100)
                .saturating_mul(1 << (n - 1).min(31))
                .min(cap);
            assert!(d <= full && d >= full / 2, "{n}: {d:?} vs {full:?}");
            assert!(full >= last_full);
            last_full = full;
        }
        b.reset();
        assert_eq!(b.delay(), Duration::ZERO);
    }

    #[test]
    fn batch_resolves_prefixes_and_individual_lines() {
        let mut batch = Batch::from_lines(b"a\nbb\nccc\ndddd\n");
        batch.resolve_prefix(2, Fate::Sent);
        assert_eq!(batch.pending(), b"bb\nccc\ndddd\n");
        batch.resolve_each(&[Fate::Keep, Fate::Rejected, Fate::Sent]);
        assert_eq!(batch.pending(), b"bb\n");
        assert_eq!((batch.sent, batch.dropped, batch.rejected), (2, 1, 1));
        assert_eq!(batch.lines, 1);
        assert_eq!(batch.lines().collect::<Vec<_>>(), vec![&b"bb"[..]]);
        batch.drop_all();
        assert!(batch.is_empty());
        assert_eq!(batch.dropped, 2);
        assert_eq!(batch.resolved_bytes, 14);
    }

    #[test]
    fn cut_keeps_whole_lines() {
        assert_eq!(cut_point(b"ab\ncd\n", 4), 3);
        assert_eq!(cut_point(b"ab\ncd\n", 6), 6);
        assert_eq!(cut_point(b"ab\ncd\n", 5), 3);
        assert_eq!(cut_point(b"abcdef\nx\n", 2), 7);
        assert_eq!(cut_point(b"ab\n", 10), 3);
        assert_eq!(cut_point(b"", 10), 0);
    }

    #[test]
    fn a_take_larger_than_a_batch_goes_out_a_window_at_a_time() {
        let mut batch = Batch::taken(b"a\nbb\nccc\ndddd\nee\n", 6);
        assert_eq!(batch.pending(), b"a\nbb\n");
        let first = batch.generation();
        batch.resolve_prefix(usize::MAX, Fate::Sent);
        assert!(batch.is_empty());
        assert!(batch.next_window(6));
        assert!(batch.generation() > first, "a window is new lines");
        // A line longer than the batch size is a window of its own.
        assert_eq!(batch.pending(), b"ccc\n");
        batch.resolve_prefix(usize::MAX, Fate::Sent);
        assert!(batch.next_window(3));
        assert_eq!(batch.pending(), b"dddd\n");
        // Refusing lines keeps them, and what follows, in order.
        batch.resolve_each(&[Fate::Keep]);
        assert_eq!(batch.pending(), b"dddd\n");
        batch.resolve_each(&[Fate::Rejected]);
        assert!(batch.next_window(100));
        assert_eq!(batch.pending(), b"ee\n");
        batch.resolve_prefix(usize::MAX, Fate::Sent);
        assert!(!batch.next_window(100));
        assert_eq!(batch.counts(), (4, 1, 1));
        assert_eq!(batch.resolved_bytes, 17);
    }

    #[test]
    fn lines_kept_from_a_window_stay_in_order_before_the_lines_after_it() {
        let mut batch = Batch::taken(b"a\nbb\nccc\ndddd\nee\n", 14);
        assert_eq!(batch.pending(), b"a\nbb\nccc\ndddd\n");
        batch.resolve_each(&[Fate::Keep, Fate::Sent, Fate::Keep, Fate::Rejected]);
        assert_eq!(batch.pending(), b"a\nccc\n");
        assert_eq!(batch.lines().collect::<Vec<_>>(), vec![&b"a"[..], b"ccc"]);
        batch.resolve_each(&[Fate::Sent]);
        assert_eq!(batch.pending(), b"ccc\n");
        batch.resolve_prefix(usize::MAX, Fate::Sent);
        assert!(batch.next_window(14));
        assert_eq!(batch.pending(), b"ee\n");
        assert_eq!(batch.counts(), (3, 1, 1));
        assert_eq!(batch.resolved_bytes, 14);
    }

    #[test]
    fn dropping_a_window_leaves_the_lines_after_it_and_dropping_all_does_not() {
        let mut batch = Batch::taken(b"a\nbb\nccc\ndd\ne\n", 5);
        assert_eq!(batch.pending(), b"a\nbb\n");
        batch.resolve_prefix(2, Fate::Sent);
        batch.drop_window();
        assert!(batch.is_empty());
        assert!(batch.next_window(5));
        assert_eq!(batch.pending(), b"ccc\n");
        assert_eq!((batch.counts(), batch.resolved_bytes), ((1, 1, 0), 5));
        batch.drop_all();
        assert!(batch.is_empty());
        assert!(!batch.next_window(100));
        assert_eq!((batch.counts(), batch.resolved_bytes), ((1, 4, 0), 14));
    }

    #[test]
    fn a_batch_resolved_whole_counts_every_line() {
        let mut batch = Batch::from_lines(b"a\nbb\nccc\n");
        batch.resolve_prefix(2, Fate::Sent);
        batch.resolve_prefix(usize::MAX, Fate::Sent);
        assert!(batch.is_empty());
        assert!(batch.pending().is_empty());
        assert_eq!((batch.sent, batch.resolved_bytes), (3, 9));
    }
}
