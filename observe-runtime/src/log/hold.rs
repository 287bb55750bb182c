//! Hold-until-root: a request's lines wait in memory until its root call
//! ends, then go to the sink together, or not at all.
//!
//! The outermost monitored call of a request (its root) opens a buffer;
//! every line the JSON writer makes while the buffer is in place is
//! appended to it instead of going to the sink. The buffer lives where the
//! request's scope lives: in a thread-local for a sync root, and in the
//! root's future between polls for an async root (which puts it back in
//! the thread-local for each poll), so it follows the request across
//! `.await` and work-stealing. When the root ends, the buffer is written
//! whole if any line in it is WARN or more severe, and otherwise kept or
//! dropped whole by the root operation's sampling decision.
//!
//! Memory is bounded twice: per request, and in total over every request
//! of the process. A request that would pass either bound has its lines
//! written at once, in order, and holds nothing more; such requests are
//! counted in [`LOG_LINES_HOLD_OVERFLOW_TOTAL`] and said in a WARN line
//! (at most one a second). Bytes are counted as allocated: the capacity of
//! a buffer's text and of its index of lines.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use tracing_core::Level;

use super::{JsonLine, Sink};

/// The counter of requests whose held lines passed a bound and were
/// written early.
pub const LOG_LINES_HOLD_OVERFLOW_TOTAL: &str = "log_lines_hold_overflow_total";

/// The gauge of bytes held, over every request, when a request last ended
/// or overflowed.
pub const LOG_LINES_HELD_BYTES: &str = "log_lines_held_bytes";

/// How much may be held: per request and in total, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bounds {
    pub(crate) per_request: usize,
    pub(crate) total: usize,
}

impl Bounds {
    /// The bounds, or `None` (holding off) if either is 0.
    pub(crate) fn new(per_request: usize, total: usize) -> Option<Self> {
        (per_request > 0 && total > 0).then_some(Self { per_request, total })
    }

    /// `PER_REQUEST,TOTAL` as sizes (`64KiB,16MiB`), or `off`:
    /// `Some(None)`. `None` if it does not parse or a size is 0.
    pub(crate) fn parse(v: &str) -> Option<Option<Self>> {
        let v = v.trim();
        if v.eq_ignore_ascii_case("off") {
            return Some(None);
        }
        let (per_request, total) = v.split_once(',')?;
        Self::new(size(per_request)?, size(total)?).map(Some)
    }
}

/// `65536`, `64KiB`, `16MiB`, `1GiB` (binary units), `64KB`, `16MB`
/// (decimal ones), `B` for bytes; a space before the unit is allowed.
fn size(v: &str) -> Option<usize> {
    let v = v.trim();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (n, unit) = v.split_at(split);
    let n: usize = n.parse().ok()?;
    let scale: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" | "k" => 1 << 10,
        "mib" | "m" => 1 << 20,
        "gib" | "g" => 1 << 30,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        _ => return None,
    };
    n.checked_mul(scale)
}

/// The process's holding settings and what is held in total.
#[derive(Debug)]
pub(crate) struct Pool {
    enabled: AtomicBool,
    per_request: AtomicUsize,
    total: AtomicUsize,
    /// Bytes charged by every buffer alive.
    held: AtomicUsize,
}

impl Pool {
    const fn new() -> Self {
        Self {
            enabled: AtomicBool::new(false),
            per_request: AtomicUsize::new(0),
            total: AtomicUsize::new(0),
            held: AtomicUsize::new(0),
        }
    }

    fn set(&self, bounds: Option<Bounds>) {
        if let Some(b) = bounds {
            self.per_request.store(b.per_request, Ordering::Relaxed);
            self.total.store(b.total, Ordering::Relaxed);
        }
        self.enabled.store(bounds.is_some(), Ordering::Relaxed);
    }

    /// Adds `bytes` to what is held if the total stays within its bound.
    fn try_charge(&self, bytes: usize) -> bool {
        let bound = self.total.load(Ordering::Relaxed);
        self.held
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |held| {
                held.checked_add(bytes).filter(|&t| t <= bound)
            })
            .is_ok()
    }

    fn uncharge(&self, bytes: usize) {
        if bytes > 0 {
            self.held.fetch_sub(bytes, Ordering::Relaxed);
        }
    }
}

static POOL: Pool = Pool::new();

/// Requests that overflowed since the last WARN line said so.
static UNSAID: AtomicU64 = AtomicU64::new(0);
/// When that line was last written, in Unix milliseconds.
static SAID_AT_MS: AtomicU64 = AtomicU64::new(0);

/// Whether holding is on: the one check the line path pays.
#[inline(always)]
pub(crate) fn enabled() -> bool {
    POOL.enabled.load(Ordering::Relaxed)
}

/// Turns holding on with `bounds`, or off with `None`. Buffers already
/// open are still released when their roots end.
pub(crate) fn configure(bounds: Option<Bounds>) {
    POOL.set(bounds);
}

/// Bytes held right now over every request.
pub(crate) fn held_bytes() -> usize {
    POOL.held.load(Ordering::Relaxed)
}

/// One held line: where it ends in the text, and its time.
#[derive(Debug, Clone, Copy)]
struct Entry {
    end: usize,
    unix_nanos: u64,
}

/// What became of a line offered to a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Offer {
    /// Held.
    Held,
    /// Not held: the caller writes it (holding stopped for the request, or
    /// the line is for another sink).
    Refused,
    /// Past a bound: the held lines and this one were written now, and
    /// the buffer holds nothing more.
    Overflowed,
}

/// One request's held lines.
#[derive(Debug)]
pub(crate) struct Held {
    text: String,
    entries: Vec<Entry>,
    /// The sink and service of the first line held; lines for another
    /// sink (another subscriber) are not held.
    sink: Option<(Arc<dyn Sink>, Arc<str>)>,
    /// Whether a held line is WARN or more severe.
    severe: bool,
    overflowed: bool,
    /// Bytes charged to the pool: the capacities of `text` and `entries`.
    charged: usize,
    pool: &'static Pool,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.pool.uncharge(self.charged);
    }
}

/// Smallest text allocation of a buffer.
const MIN_TEXT: usize = 1024;
/// Smallest index allocation of a buffer, in lines.
const MIN_ENTRIES: usize = 8;

/// The capacity to grow to from `cap` for `needed`: doubling, at least
/// `min`, and no more than `room` unless `needed` itself is more.
fn grown(cap: usize, needed: usize, min: usize, room: usize) -> usize {
    if needed <= cap {
        return cap;
    }
    needed.max(cap.saturating_mul(2).max(min).min(room))
}

impl Held {
    const fn new(pool: &'static Pool) -> Self {
        Self {
            text: String::new(),
            entries: Vec::new(),
            sink: None,
            severe: false,
            overflowed: false,
            charged: 0,
            pool,
        }
    }

    /// Nothing held and nothing happened: not worth keeping in a box.
    fn is_pristine(&self) -> bool {
        self.entries.is_empty() && !self.overflowed && self.charged == 0
    }

    fn offer(
        &mut self,
        line: &str,
        unix_nanos: u64,
        level: Level,
        sink: &Arc<dyn Sink>,
        service: &Arc<str>,
    ) -> Offer {
        if self.overflowed {
            return Offer::Refused;
        }
        if let Some((held_sink, _)) = &self.sink {
            if !std::ptr::addr_eq(Arc::as_ptr(held_sink), Arc::as_ptr(sink)) {
                return Offer::Refused;
            }
        }
        let per_request = self.pool.per_request.load(Ordering::Relaxed);
        let entry_size = std::mem::size_of::<Entry>();
        let entries_cap = grown(
            self.entries.capacity(),
            self.entries.len() + 1,
            MIN_ENTRIES,
            usize::MAX,
        );
        let room = per_request.saturating_sub(entries_cap.saturating_mul(entry_size));
        let text_cap = grown(
            self.text.capacity(),
            self.text.len().saturating_add(line.len()),
            MIN_TEXT,
            room,
        );
        let footprint = text_cap.saturating_add(entries_cap.saturating_mul(entry_size));
        let extra = footprint.saturating_sub(self.charged);
        if footprint > per_request || !self.pool.try_charge(extra) {
            self.overflow(line, unix_nanos, sink, service);
            return Offer::Overflowed;
        }
        self.charged += extra;
        self.text.reserve_exact(text_cap - self.text.len());
        self.entries.reserve_exact(entries_cap - self.entries.len());
        self.text.push_str(line);
        self.entries.push(Entry {
            end: self.text.len(),
            unix_nanos,
        });
        self.severe |= level == Level::WARN || level == Level::ERROR;
        if self.sink.is_none() {
            self.sink = Some((Arc::clone(sink), Arc::clone(service)));
        }
        Offer::Held
    }

    /// Writes what is held, then `line`, and stops holding.
    #[cold]
    fn overflow(&mut self, line: &str, unix_nanos: u64, sink: &Arc<dyn Sink>, service: &str) {
        self.write_all();
        self.text = String::new();
        self.entries = Vec::new();
        self.pool.uncharge(std::mem::take(&mut self.charged));
        self.overflowed = true;
        sink.write_json_line(JsonLine::written(line, unix_nanos, service));
        UNSAID.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(LOG_LINES_HOLD_OVERFLOW_TOTAL).increment(1);
        publish_gauge();
    }

    /// Hands every held line to the sink, in order.
    fn write_all(&self) {
        let Some((sink, service)) = &self.sink else {
            return;
        };
        let mut start = 0;
        for e in &self.entries {
            sink.write_json_line(JsonLine::written(
                &self.text[start..e.end],
                e.unix_nanos,
                service,
            ));
            start = e.end;
        }
    }

    /// The end of the request: written whole if a line was WARN or worse
    /// or `keep` says so (asked only then), else dropped. Returns whether
    /// the request overflowed.
    fn finish(self, keep: impl FnOnce() -> bool) -> bool {
        if !self.entries.is_empty() && (self.severe || keep()) {
            self.write_all();
        }
        self.overflowed
    }
}

thread_local! {
    /// The buffer of the request running on this thread, if it holds.
    static OPEN: RefCell<Option<Held>> = const { RefCell::new(None) };
}

/// Opens a buffer for a sync root if none is in place; `true` if this
/// call opened it (and must [`close`] it). Out of line and cold: a call
/// pays for it only with holding on, and the guard's start stays small.
#[cold]
#[inline(never)]
pub(crate) fn open() -> bool {
    OPEN.try_with(|o| match o.try_borrow_mut() {
        Ok(mut o) if o.is_none() => {
            *o = Some(Held::new(&POOL));
            true
        }
        _ => false,
    })
    .unwrap_or(false)
}

/// Whether a buffer is in place on this thread: lines written now belong
/// to a held request, whose sampling is decided when its root ends.
pub(crate) fn is_open() -> bool {
    OPEN.try_with(|o| o.try_borrow().is_ok_and(|o| o.is_some()))
        .unwrap_or(false)
}

/// Offers a finished line to the buffer in place; `true` if the line is
/// taken care of (held, or written with the rest of an overflowing
/// request), `false` if the caller writes it.
pub(crate) fn hold(
    line: &str,
    unix_nanos: u64,
    level: Level,
    sink: &Arc<dyn Sink>,
    service: &Arc<str>,
) -> bool {
    // A sink that logs while an overflow writes through it finds the
    // buffer borrowed, and writes its line directly.
    OPEN.try_with(|o| match o.try_borrow_mut() {
        Ok(mut o) => o.as_mut().is_some_and(|held| {
            held.offer(line, unix_nanos, level, sink, service) != Offer::Refused
        }),
        Err(_) => false,
    })
    .unwrap_or(false)
}

/// Ends the request whose buffer is in place: its lines are written if
/// one is WARN or worse or `keep` (the sampling decision) says so, and
/// dropped otherwise. Called by the root, inside its correlation scope.
pub(crate) fn close(keep: impl FnOnce() -> bool) {
    let held = OPEN
        .try_with(|o| o.try_borrow_mut().ok().and_then(|mut o| o.take()))
        .ok()
        .flatten();
    let Some(held) = held else { return };
    if held.is_pristine() {
        return;
    }
    let overflowed = held.finish(keep);
    publish_gauge();
    if overflowed {
        say_overflow();
    }
}

fn publish_gauge() {
    #[allow(clippy::cast_precision_loss)]
    metrics::gauge!(LOG_LINES_HELD_BYTES).set(held_bytes() as f64);
}

/// One WARN line, at most once a second, for the requests that overflowed
/// since the last one. Written from the root's end, outside the writer:
/// an event dispatched from inside the subscriber would go nowhere.
fn say_overflow() {
    let now = crate::base::clock::unix_nanos() / 1_000_000;
    let last = SAID_AT_MS.load(Ordering::Relaxed);
    if now < last.saturating_add(1000)
        || SAID_AT_MS
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
    {
        return;
    }
    let requests = UNSAID.swap(0, Ordering::Relaxed);
    if requests == 0 {
        return;
    }
    let per_request = POOL.per_request.load(Ordering::Relaxed);
    let total = POOL.total.load(Ordering::Relaxed);
    tracing::warn!(
        target: "observe::hold",
        requests,
        per_request_bytes = per_request,
        total_bytes = total,
        "log hold: {requests} request(s) passed the hold bound ({per_request} bytes per request, {total} in total); their lines were written early, unsampled"
    );
}

/// An async root's buffer between polls; empty until it holds a line.
#[derive(Debug, Default)]
pub(crate) struct Parked(Option<Box<Held>>);

/// An async root's buffer in place for one poll; dropping it (also while
/// unwinding) parks the buffer again and restores what was in place.
#[derive(Debug)]
pub(crate) struct Entered<'a> {
    parked: &'a mut Parked,
    prev: Option<Held>,
}

/// Puts `parked` in place for one poll of its root. Out of line and cold,
/// with the drop that undoes it: every async poll holds the code that
/// could call them, so it must stay small when nothing is held.
#[cold]
#[inline(never)]
pub(crate) fn enter(parked: &mut Parked) -> Entered<'_> {
    let held = match parked.0.as_deref_mut() {
        Some(h) => std::mem::replace(h, Held::new(&POOL)),
        None => Held::new(&POOL),
    };
    let prev = OPEN
        .try_with(|o| o.try_borrow_mut().ok().and_then(|mut o| o.replace(held)))
        .ok()
        .flatten();
    Entered { parked, prev }
}

impl Drop for Entered<'_> {
    #[inline(never)]
    fn drop(&mut self) {
        let prev = self.prev.take();
        let held = OPEN
            .try_with(|o| {
                o.try_borrow_mut()
                    .ok()
                    .and_then(|mut o| std::mem::replace(&mut *o, prev))
            })
            .ok()
            .flatten();
        match held {
            Some(h) if !h.is_pristine() => match self.parked.0.as_deref_mut() {
                Some(slot) => *slot = h,
                None => self.parked.0 = Some(Box::new(h)),
            },
            // Nothing held yet: no need for a box, but one already made
            // is kept for the next poll.
            Some(_) => {}
            // Closed during the poll: nothing is left to park.
            None => self.parked.0 = None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::CaptureSink;

    fn sink() -> (CaptureSink, Arc<dyn Sink>, Arc<str>) {
        let lines = CaptureSink::new();
        let sink: Arc<dyn Sink> = Arc::new(lines.clone());
        (lines, sink, "svc".into())
    }

    /// The lines written so far, as they were handed over (with their
    /// newline, which the capture strips).
    fn taken(lines: &CaptureSink) -> Vec<String> {
        lines.take().into_iter().map(|l| l + "\n").collect()
    }

    fn pool(per_request: usize, total: usize) -> &'static Pool {
        let pool: &'static Pool = Box::leak(Box::new(Pool::new()));
        pool.set(Bounds::new(per_request, total));
        pool
    }

    fn line(n: usize, len: usize) -> String {
        let mut l = format!("{{\"n\":{n},\"pad\":\"");
        while l.len() < len - 3 {
            l.push('x');
        }
        l.push_str("\"}\n");
        l
    }

    #[test]
    fn lines_wait_and_go_out_in_order_when_kept_or_severe() {
        let (lines, s, svc) = sink();
        let pool = pool(64 * 1024, 1 << 20);
        let mut held = Held::new(pool);
        for n in 0..3 {
            assert_eq!(
                held.offer(&line(n, 100), 1, Level::INFO, &s, &svc),
                Offer::Held
            );
        }
        assert!(taken(&lines).is_empty());
        assert!(pool.held.load(Ordering::Relaxed) >= 300);
        assert!(!held.finish(|| true));
        let out = taken(&lines);
        assert_eq!(out, (0..3).map(|n| line(n, 100)).collect::<Vec<_>>());
        assert_eq!(pool.held.load(Ordering::Relaxed), 0, "dropped, uncharged");

        // Not kept: dropped whole, and `keep` was asked.
        let mut held = Held::new(pool);
        held.offer(&line(0, 100), 1, Level::INFO, &s, &svc);
        let mut asked = false;
        held.finish(|| {
            asked = true;
            false
        });
        assert!(asked);
        assert!(taken(&lines).is_empty());

        // A WARN line keeps the whole request, sampling unasked.
        let mut held = Held::new(pool);
        held.offer(&line(0, 100), 1, Level::INFO, &s, &svc);
        held.offer(&line(1, 100), 1, Level::WARN, &s, &svc);
        held.finish(|| panic!("not asked"));
        assert_eq!(taken(&lines).len(), 2);
        assert_eq!(pool.held.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_request_past_its_bound_is_written_early_and_holds_no_more() {
        let (lines, s, svc) = sink();
        let pool = pool(4096, 1 << 20);
        let mut held = Held::new(pool);
        let mut offers = Vec::new();
        for n in 0..60 {
            offers.push(held.offer(&line(n, 100), 1, Level::INFO, &s, &svc));
            assert!(held.charged <= 4096, "{}", held.charged);
        }
        let first = offers
            .iter()
            .position(|o| *o == Offer::Overflowed)
            .expect("overflows");
        assert!(first > 20, "{first}: the bound is used, not just doubled");
        assert!(offers[first + 1..].iter().all(|o| *o == Offer::Refused));
        assert_eq!(
            taken(&lines),
            (0..=first).map(|n| line(n, 100)).collect::<Vec<_>>(),
            "held lines and the overflowing one, in order"
        );
        assert_eq!(pool.held.load(Ordering::Relaxed), 0);
        assert!(held.finish(|| true), "says it overflowed");
        assert!(taken(&lines).is_empty());
    }

    #[test]
    fn the_total_bound_holds_across_requests() {
        let (lines, s, svc) = sink();
        let pool = pool(8192, 10_000);
        let mut requests: Vec<Held> = (0..10).map(|_| Held::new(pool)).collect();
        let mut overflowed = 0;
        for round in 0..20 {
            for held in &mut requests {
                if held.offer(&line(round, 200), 1, Level::INFO, &s, &svc) == Offer::Overflowed {
                    overflowed += 1;
                }
                assert!(pool.held.load(Ordering::Relaxed) <= 10_000);
            }
        }
        assert!(overflowed > 0);
        let written = taken(&lines).len();
        let held: usize = requests.iter().map(|h| h.entries.len()).sum();
        let refused: usize = 10 * 20 - written - held;
        assert!(written > 0 && held > 0, "{written} {held} {refused}");
        drop(requests);
        assert_eq!(pool.held.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn lines_for_another_sink_are_not_held() {
        let (_, s, svc) = sink();
        let (_, other, _) = sink();
        let mut held = Held::new(pool(4096, 8192));
        assert_eq!(
            held.offer(&line(0, 50), 1, Level::INFO, &s, &svc),
            Offer::Held
        );
        assert_eq!(
            held.offer(&line(1, 50), 1, Level::INFO, &other, &svc),
            Offer::Refused
        );
    }

    #[test]
    fn bounds_read_sizes_and_off() {
        assert_eq!(
            Bounds::parse("64KiB,16MiB"),
            Some(Bounds::new(64 << 10, 16 << 20))
        );
        assert_eq!(
            Bounds::parse(" 65536 , 1 GiB "),
            Some(Bounds::new(65536, 1 << 30))
        );
        assert_eq!(
            Bounds::parse("64kb,16mb"),
            Some(Bounds::new(64_000, 16_000_000))
        );
        assert_eq!(Bounds::parse("OFF"), Some(None));
        for bad in ["", "64KiB", "0,16MiB", "64KiB,16XB", "-1,2", "1.5MiB,2MiB"] {
            assert_eq!(Bounds::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn growth_doubles_within_the_room_left() {
        assert_eq!(grown(0, 10, 1024, 4096), 1024);
        assert_eq!(grown(1024, 1500, 1024, 4096), 2048);
        assert_eq!(grown(2048, 2100, 1024, 3000), 3000);
        assert_eq!(grown(2048, 5000, 1024, 3000), 5000);
        assert_eq!(grown(2048, 100, 1024, 3000), 2048);
    }
}
