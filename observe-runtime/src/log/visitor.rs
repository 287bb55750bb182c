//! An ordinary `tracing` event's fields, as a line's message and context
//! members.

use std::fmt;

use tracing_core::Event;
use tracing_core::field::{Field, Visit};

use super::writer::{CUT_MARGIN, write_rendered};
use super::{REDACTED, redactor};
use crate::base::json;

/// The message (a JSON string, quotes included; empty if none) and the
/// context members of one event.
pub(super) struct Fields {
    pub(super) message: String,
    pub(super) context: String,
    /// How many escaped bytes of the values were cut while written.
    pub(super) dropped: usize,
    /// The line cap of the writer these fields are for.
    max_line_bytes: usize,
}

impl Fields {
    pub(super) const EMPTY: Self = Self {
        message: String::new(),
        context: String::new(),
        dropped: 0,
        max_line_bytes: 0,
    };

    /// Replaces what these fields held with `event`'s, for a line capped at
    /// `max_line_bytes`.
    pub(super) fn visit(&mut self, event: &Event<'_>, max_line_bytes: usize) {
        self.message.clear();
        self.context.clear();
        self.max_line_bytes = max_line_bytes;
        self.dropped = 0;
        event.record(self);
    }

    /// How many bytes the next value may take: what is left of the line cap,
    /// plus a margin so that a value cut here makes the line over-long (and
    /// so truncated and marked).
    fn room(&self) -> usize {
        self.max_line_bytes
            .saturating_sub(self.message.len() + self.context.len())
            .saturating_add(CUT_MARGIN)
    }

    /// Starts the context member of `field`; `None` when its key looks
    /// secret and its value has been written as redacted.
    fn member(&mut self, field: &Field) -> Option<&mut String> {
        let name = field.name();
        if !self.context.is_empty() {
            self.context.push(',');
        }
        json::write_escaped(&mut self.context, name);
        self.context.push(':');
        if redactor().is_secret(name) {
            json::write_escaped(&mut self.context, REDACTED);
            return None;
        }
        Some(&mut self.context)
    }
}

impl Visit for Fields {
    fn record_f64(&mut self, field: &Field, value: f64) {
        if let Some(out) = self.member(field) {
            json::write_f64(out, value);
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if let Some(out) = self.member(field) {
            json::write_i64(out, value);
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if let Some(out) = self.member(field) {
            json::write_u64(out, value);
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        if let Some(out) = self.member(field) {
            json::write_bool(out, value);
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        // A string is already in memory, but escaping all of a huge one
        // would double it: only what can fit in the line is escaped.
        let kept = json::truncate_at_char_boundary(value, self.room());
        if let Some(rest) = value.get(kept.len()..).filter(|r| !r.is_empty()) {
            let measured = json::truncate_at_char_boundary(rest, json::MEASURED_BYTES);
            self.dropped += json::escaped_len(measured);
        }
        let value = kept;
        if field.name() == "message" {
            self.message.clear();
            json::write_escaped(&mut self.message, value);
        } else if let Some(out) = self.member(field) {
            json::write_escaped(out, value);
        }
    }

    fn record_bytes(&mut self, field: &Field, value: &[u8]) {
        let kept = value.get(..self.room()).unwrap_or(value);
        if let Some(rest) = value.get(kept.len()..) {
            // Invalid bytes would become U+FFFD; counting them as one byte
            // each keeps this a lower bound.
            let rest = rest.get(..json::MEASURED_BYTES).unwrap_or(rest);
            self.dropped += rest
                .utf8_chunks()
                .map(|c| json::escaped_len(c.valid()) + c.invalid().len())
                .sum::<usize>();
        }
        let value = kept;
        if let Some(out) = self.member(field) {
            json::write_escaped_bytes(out, value);
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.record_debug(field, &format_args!("{value}"));
    }

    /// `%` and `?` values, errors and the message: rendered bounded and
    /// masked (see [`write_rendered`]).
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let room = self.room();
        let out = if field.name() == "message" {
            self.message.clear();
            &mut self.message
        } else {
            match self.member(field) {
                Some(out) => out,
                None => return,
            }
        };
        let dropped = write_rendered(out, format_args!("{value:?}"), room);
        self.dropped += dropped;
    }
}
