//! Metric handles of one callsite, and which recorder they belong to.
//!
//! Registering a metric hashes its key in the recorder; a monitored call
//! must not pay that each time. Handles are therefore registered once per
//! callsite and cached, but only against the *global* recorder: it is set at
//! most once per process and never freed, so a cache keyed to it can never
//! go stale. A handle taken from the no-op recorder is never cached (it
//! would stay a no-op forever), and a thread-scoped recorder
//! (`metrics::with_local_recorder`, [`crate::testing`]) gets its metrics
//! registered per call, so it always sees its own calls.
//!
//! "No recorder" is told apart by size, inline: `metrics` hands out its
//! zero-sized no-op recorder then, and a zero-sized recorder of the user's
//! own is taken for it (documented in troubleshooting).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use metrics::{Counter, Gauge, Histogram, Key, Label, Recorder};

use super::calls::OperationCells;
use super::native::NativeMetrics;
use crate::base::Status;
use crate::base::names;

/// Metadata passed to the recorder on registration.
static METADATA: metrics::Metadata<'static> =
    metrics::Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

/// Address of the global recorder once known; 0 while unknown.
static GLOBAL_ADDR: AtomicUsize = AtomicUsize::new(0);

/// The store of observe's own recorder, set when that recorder is the
/// global one and nothing wraps it: calls then write their cells directly.
static NATIVE: OnceLock<Arc<NativeMetrics>> = OnceLock::new();

/// The store of observe's own recorder when something wraps it (the
/// InfluxDB `Tee`): calls record through the wrapper, and offer their
/// exemplars here.
static EXEMPLAR_STORE: OnceLock<Arc<NativeMetrics>> = OnceLock::new();

/// When the global recorder was last looked for, in ms since `PROBE_EPOCH`.
static LAST_PROBE_MS: AtomicU64 = AtomicU64::new(u64::MAX);

/// How often an unknown recorder triggers a look for the global one.
const PROBE_INTERVAL: Duration = Duration::from_secs(1);

fn addr(recorder: &dyn Recorder) -> usize {
    (recorder as *const dyn Recorder).cast::<()>() as usize
}

/// Records that the current thread's recorder is the global one. Call only
/// where no thread-local recorder can be set, e.g. right after installing.
pub(crate) fn note_global_recorder() {
    // A fresh thread has no local recorder, so what it sees is the global.
    let seen = std::thread::Builder::new()
        .name("observe-recorder-probe".into())
        .spawn(|| metrics::with_recorder(|r| (addr(r), std::mem::size_of_val(r))))
        .ok()
        .and_then(|h| h.join().ok());
    if let Some((address, size)) = seen {
        // Zero-sized recorders are indistinguishable from the no-op one.
        if size != 0 {
            GLOBAL_ADDR.store(address, Ordering::Release);
        }
    }
}

/// Records that the global recorder is observe's own, unwrapped, keeping
/// its operation series in `native`. Call before [`note_global_recorder`].
pub(crate) fn note_native_store(native: &Arc<NativeMetrics>) {
    let _ = NATIVE.set(Arc::clone(native));
}

/// Records that the global recorder wraps observe's own, whose store
/// keeps the exemplars calls offer beside what they record.
pub(crate) fn note_exemplar_store(native: &Arc<NativeMetrics>) {
    let _ = EXEMPLAR_STORE.set(Arc::clone(native));
}

/// A global recorder installed without observe's builder is found by a
/// probe thread, at most once per [`PROBE_INTERVAL`].
fn maybe_probe() {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    #[allow(clippy::cast_possible_truncation)]
    let now = epoch.elapsed().as_millis() as u64;
    let last = LAST_PROBE_MS.load(Ordering::Relaxed);
    #[allow(clippy::cast_possible_truncation)]
    let due = last == u64::MAX || now.saturating_sub(last) >= PROBE_INTERVAL.as_millis() as u64;
    if due
        && LAST_PROBE_MS
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        note_global_recorder();
    }
}

/// How a call records its metrics, decided once at its start.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Mode {
    /// No recorder: nothing to record.
    Off,
    /// Observe's own global recorder: the operation's cells, written
    /// directly in this thread's shard.
    Native(&'static OperationCells),
    /// The global recorder, with this callsite's cached handles.
    Cached(&'static Handles),
    /// A thread-scoped (or not yet identified) recorder: register per call.
    PerCall,
}

/// The handles one callsite records into, per outcome.
#[derive(Debug)]
pub(crate) struct Handles {
    in_flight: Gauge,
    calls: [Counter; 4],
    durations: [Histogram; 4],
}

impl Handles {
    fn register(recorder: &dyn Recorder, operation: &'static str) -> Self {
        let calls =
            Status::ALL.map(|s| recorder.register_counter(&calls_key(operation, s), &METADATA));
        let durations = Status::ALL
            .map(|s| recorder.register_histogram(&duration_key(operation, s), &METADATA));
        Self {
            in_flight: recorder.register_gauge(&in_flight_key(operation), &METADATA),
            calls,
            durations,
        }
    }
}

fn calls_key(operation: &'static str, status: Status) -> Key {
    Key::from_parts(
        names::OPERATION_CALLS_TOTAL,
        vec![
            Label::from_static_parts(names::LABEL_OPERATION, operation),
            Label::from_static_parts(names::LABEL_STATUS, status.as_str()),
        ],
    )
}

fn duration_key(operation: &'static str, status: Status) -> Key {
    Key::from_parts(
        names::OPERATION_DURATION_SECONDS,
        vec![
            Label::from_static_parts(names::LABEL_OPERATION, operation),
            Label::from_static_parts(names::LABEL_STATUS, status.as_str()),
        ],
    )
}

fn in_flight_key(operation: &'static str) -> Key {
    Key::from_parts(
        names::OPERATION_IN_FLIGHT,
        vec![Label::from_static_parts(names::LABEL_OPERATION, operation)],
    )
}

fn errors_key(operation: &'static str, error_type: &str) -> Key {
    Key::from_parts(
        names::OPERATION_ERRORS_TOTAL,
        vec![
            Label::from_static_parts(names::LABEL_OPERATION, operation),
            Label::new(names::LABEL_ERROR_TYPE, error_type.to_owned()),
        ],
    )
}

/// One callsite's part of the metrics: its operation name and, once
/// registered against the global recorder, its handles. Each annotated
/// function has one, inside its `static` callsite, so a call passes one
/// pointer and looks nothing up; the name is only read off the idle path.
#[derive(Debug)]
pub(crate) struct Site {
    operation: &'static str,
    native: OnceLock<Arc<OperationCells>>,
    handles: OnceLock<Handles>,
    /// Where calls recording through a wrapper offer their exemplars.
    exemplars: OnceLock<Arc<OperationCells>>,
}

impl Site {
    pub(crate) const fn new(operation: &'static str) -> Self {
        Self {
            operation,
            native: OnceLock::new(),
            handles: OnceLock::new(),
            exemplars: OnceLock::new(),
        }
    }

    /// The operation name.
    pub(crate) fn operation(&self) -> &'static str {
        self.operation
    }
}

/// Decides how a call of `site` records and counts it as in flight.
///
/// The no-recorder case is answered inline with one thread-local and one
/// global load; everything else is out of line.
#[inline(always)]
pub(crate) fn start(site: &'static Site) -> Mode {
    // 0 for the no-op recorder (zero-sized, like every recorder that could
    // not record anything), the recorder's address otherwise.
    let seen = metrics::with_recorder(|r| {
        if std::mem::size_of_val(r) == 0 {
            0
        } else {
            addr(r)
        }
    });
    if seen == 0 {
        Mode::Off
    } else {
        start_recording(seen, site)
    }
}

/// A recorder is there: the global one with cached handles, or another.
#[inline(never)]
fn start_recording(seen: usize, site: &'static Site) -> Mode {
    if seen == GLOBAL_ADDR.load(Ordering::Acquire) {
        if let Some(cells) = site.native.get() {
            cells.enter();
            return Mode::Native(cells);
        }
        if let Some(handles) = site.handles.get() {
            handles.in_flight.increment(1.0);
            return Mode::Cached(handles);
        }
    }
    metrics::with_recorder(|recorder| start_slow(recorder, site))
}

/// First call against the global recorder, or a thread-scoped recorder.
#[cold]
#[inline(never)]
fn start_slow(recorder: &dyn Recorder, site: &'static Site) -> Mode {
    let operation = site.operation;
    if addr(recorder) == GLOBAL_ADDR.load(Ordering::Acquire) {
        if let Some(native) = NATIVE.get() {
            let cells = site.native.get_or_init(|| {
                let cells = native.operation(operation);
                cells.show_all();
                cells
            });
            cells.enter();
            return Mode::Native(cells);
        }
        let handles = site
            .handles
            .get_or_init(|| Handles::register(recorder, operation));
        handles.in_flight.increment(1.0);
        return Mode::Cached(handles);
    }
    maybe_probe();
    recorder
        .register_gauge(&in_flight_key(operation), &METADATA)
        .increment(1.0);
    Mode::PerCall
}

/// `d` in seconds by a multiply, not `as_secs_f64`'s divide: on the hot
/// path the divide's latency showed up in profiles. The two differ by at
/// most two units in the last place (tested below), far below any bucket
/// boundary's resolution.
#[inline]
#[allow(clippy::cast_precision_loss)]
fn seconds(d: Duration) -> f64 {
    d.as_nanos() as f64 * 1e-9
}

/// Records the end of a call of `site` started with `mode`, at raw clock
/// reading `end` (the time of its exemplar).
#[inline]
pub(crate) fn finish(
    mode: Mode,
    site: &'static Site,
    status: Status,
    elapsed: Duration,
    end: u64,
    error_type: Option<&str>,
) {
    let operation = site.operation;
    match mode {
        Mode::Off => {}
        Mode::Native(cells) => {
            cells.finish(
                status,
                u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX),
                end,
            );
            if let Some(t) = error_type {
                count_error(operation, t);
            }
        }
        Mode::Cached(h) => {
            let seconds = seconds(elapsed);
            h.in_flight.decrement(1.0);
            h.calls[status.index()].increment(1);
            h.durations[status.index()].record(seconds);
            if let Some(store) = EXEMPLAR_STORE.get() {
                site.exemplars
                    .get_or_init(|| store.operation(operation))
                    .offer_exemplar(
                        status,
                        u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX),
                        end,
                    );
            }
            if let Some(t) = error_type {
                count_error(operation, t);
            }
        }
        Mode::PerCall => metrics::with_recorder(|r| {
            let seconds = seconds(elapsed);
            r.register_gauge(&in_flight_key(operation), &METADATA)
                .decrement(1.0);
            r.register_counter(&calls_key(operation, status), &METADATA)
                .increment(1);
            r.register_histogram(&duration_key(operation, status), &METADATA)
                .record(seconds);
            if let Some(t) = error_type {
                r.register_counter(&errors_key(operation, t), &METADATA)
                    .increment(1);
            }
        }),
    }
}

/// Counts an error of `error_type` in the current recorder.
fn count_error(operation: &'static str, error_type: &str) {
    metrics::with_recorder(|r| {
        r.register_counter(&errors_key(operation, error_type), &METADATA)
            .increment(1);
    });
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn seconds_by_multiply_stay_within_two_ulps_of_as_secs_f64() {
        let mut n: u64 = 1;
        let mut worst = 0;
        while n < 1 << 50 {
            for v in [n, n + 1, n * 3 + 7, n * 999 + 123] {
                let d = Duration::from_nanos(v);
                let (a, b) = (super::seconds(d), d.as_secs_f64());
                worst = worst.max(a.to_bits().abs_diff(b.to_bits()));
            }
            n = n * 2 + 1;
        }
        assert!(worst <= 2, "{worst} ulps");
    }
}
