//! Standard output, written directly: the sink of a [`JsonLayer`](super::JsonLayer)
//! made without one. The builder uses the queued
//! [`StdoutSink`](crate::sink::StdoutSink) instead; this one stays for a
//! layer assembled by hand, which has no worker to stop.

use std::io::Write;

use super::{JsonLine, Sink, count_dropped};

/// Writes each line to standard output in one `write_all`, so lines from
/// concurrent threads never interleave.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct DirectStdout;

impl Sink for DirectStdout {
    fn name(&self) -> &str {
        "stdout"
    }

    fn write_json_line(&self, line: JsonLine<'_>) {
        // A closed pipe must not take the service down; the line is counted.
        if std::io::stdout()
            .lock()
            .write_all(line.as_str().as_bytes())
            .is_err()
        {
            count_dropped(self.name(), 1);
        }
    }

    fn flush(&self, _timeout: std::time::Duration) -> bool {
        std::io::stdout().lock().flush().is_ok()
    }
}
