//! An in-memory sink for tests.

use std::sync::{Arc, Mutex, PoisonError};

use super::{JsonLine, Sink};

/// Keeps every line in memory; clones share the same lines.
#[derive(Debug, Default, Clone)]
pub struct CaptureSink {
    lines: Arc<Mutex<Vec<String>>>,
}

impl CaptureSink {
    /// An empty capture.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The lines written so far, without their trailing newline.
    #[must_use]
    pub fn lines(&self) -> Vec<String> {
        self.lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Takes the lines written so far, leaving the capture empty.
    #[must_use]
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.lines.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl Sink for CaptureSink {
    fn name(&self) -> &str {
        "capture"
    }

    fn write_json_line(&self, line: JsonLine<'_>) {
        let line = line.as_str();
        let line = line.strip_suffix('\n').unwrap_or(line).to_owned();
        self.lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(line);
    }
}
