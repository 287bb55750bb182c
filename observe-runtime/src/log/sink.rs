//! Where the writer hands its lines: the [`Sink`] trait, and a fan-out over
//! several sinks. The sinks themselves live in `crate::sink`, which also
//! publishes these.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::JsonLine;
use crate::record::CallRecord;

/// A destination for complete JSON log lines.
pub trait Sink: Send + Sync + fmt::Debug + 'static {
    /// The sink's name, used as the `sink` label of its metrics.
    fn name(&self) -> &str;

    /// Delivers one line, with what its writer knew about it.
    ///
    /// The only way in: a [`JsonLine`] is already known to be one line, so
    /// no sink scans for newlines, and it carries the line's time and
    /// service, so no sink searches the text for them. The name says what
    /// it takes and cannot be confused with `io::Write::write` on a sink
    /// that also implements that trait.
    fn write_json_line(&self, line: JsonLine<'_>);

    /// Takes a finished monitored call's line from its record, in a form
    /// of the sink's own, instead of as JSON text: `true` if it did (or if
    /// it drops such lines anyway), and then no JSON line is made for it.
    /// The default, `false`, asks for the JSON line.
    ///
    /// The OTLP exporter, when it is a layer's only sink, takes calls this
    /// way: it ships them as log records, so formatting their JSON would be
    /// work for nothing. `room` is how many bytes the call's own text (its
    /// correlation ID, message, error type and context members) may take
    /// before its JSON line would be cut: a sink must refuse a call with
    /// more, so that the cut line is written as any over-long line is.
    ///
    /// Only this crate's sinks can take calls (the last argument is a value
    /// no other crate can name): a failed call's message is masked and
    /// bounded as the line is written, which a sink elsewhere would have to
    /// redo. It runs on the caller's thread, in the call's correlation
    /// scope, and not while lines are held (held lines need their text); a
    /// [`FanOut`] takes no calls.
    #[doc(hidden)]
    fn write_call(&self, call: &CallRecord<'_>, room: usize, _: Internal) -> bool {
        let _ = (call, room);
        false
    }

    /// Delivers everything buffered, waiting at most `timeout`.
    ///
    /// Returns `true` if nothing is left undelivered.
    fn flush(&self, timeout: Duration) -> bool {
        let _ = timeout;
        true
    }
}

/// Keeps [`Sink::write_call`] to this crate's sinks.
mod sealed {
    /// A value only this crate can make.
    #[derive(Debug, Clone, Copy)]
    pub struct Internal(());

    /// The one value.
    pub(crate) const INTERNAL: Internal = Internal(());
}

pub(crate) use sealed::{INTERNAL, Internal};

/// Several sinks fed the same lines.
#[derive(Debug, Clone, Default)]
pub struct FanOut {
    sinks: Vec<Arc<dyn Sink>>,
}

impl FanOut {
    /// A fan-out over `sinks`.
    #[must_use]
    pub fn new(sinks: Vec<Arc<dyn Sink>>) -> Self {
        Self { sinks }
    }
}

impl Sink for FanOut {
    fn name(&self) -> &str {
        "fanout"
    }

    fn write_json_line(&self, line: JsonLine<'_>) {
        for s in &self.sinks {
            s.write_json_line(line);
        }
    }

    /// Flushes every sink at once, so one dead collector cannot eat the
    /// others' time: the whole flush takes at most `timeout`.
    fn flush(&self, timeout: Duration) -> bool {
        match self.sinks.as_slice() {
            [] => true,
            [one] => one.flush(timeout),
            many => std::thread::scope(|scope| {
                let flushes: Vec<_> = many
                    .iter()
                    .map(|s| scope.spawn(move || s.flush(timeout)))
                    .collect();
                // Every flush is waited for; one whose thread panicked has
                // not delivered everything.
                let done: Vec<bool> = flushes
                    .into_iter()
                    .map(|f| f.join().unwrap_or(false))
                    .collect();
                done.into_iter().all(|ok| ok)
            }),
        }
    }
}

/// Counts one line `sink` could not deliver.
pub(crate) fn count_dropped(sink: &str, lines: u64) {
    metrics::counter!(
        crate::base::names::LOG_LINES_DROPPED_TOTAL,
        "sink" => sink.to_owned()
    )
    .increment(lines);
}
