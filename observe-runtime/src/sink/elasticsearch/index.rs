//! Index names: the pattern, filled from a line's service and date.

use crate::log::timestamp::civil_from_days;
use crate::sink::SinkError;

/// Default index name pattern: one index per service and day, the indices
/// a Logstash output with `index => "ha-ingestor-logs-%{+YYYY.MM.dd}"`
/// writes, so dashboards and retention built for one fit the other.
pub const DEFAULT_INDEX_PATTERN: &str = "{service}-logs-%Y.%m.%d";

/// Elasticsearch refuses longer index names (in bytes).
const MAX_INDEX_BYTES: usize = 255;

/// The name of the index a service's lines go to when its writer did not
/// name the service.
const UNKNOWN_SERVICE: &str = "unknown";

const NANOS_PER_DAY: u64 = 86_400 * 1_000_000_000;

/// A parsed index name pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct IndexPattern(Vec<Part>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Service,
    Year,
    Month,
    Day,
}

impl IndexPattern {
    pub(super) fn parse(pattern: &str) -> Result<Self, SinkError> {
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut rest = pattern;
        while let Some(c) = rest.chars().next() {
            let (part, len) = if rest.starts_with("{service}") {
                (Some(Part::Service), 9)
            } else if c == '%' {
                let part = match rest.as_bytes().get(1) {
                    Some(b'Y') => Part::Year,
                    Some(b'm') => Part::Month,
                    Some(b'd') => Part::Day,
                    Some(b'%') => Part::Text("%".to_owned()),
                    _ => {
                        return Err(SinkError::config(format!(
                            "index pattern {pattern:?}: only %Y, %m, %d and %% are supported"
                        )));
                    }
                };
                (Some(part), 2)
            } else {
                text.push(c);
                (None, c.len_utf8())
            };
            if let Some(part) = part {
                if !text.is_empty() {
                    parts.push(Part::Text(std::mem::take(&mut text)));
                }
                parts.push(part);
            }
            rest = &rest[len..];
        }
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        if parts.is_empty() {
            return Err(SinkError::config("the index pattern is empty"));
        }
        Ok(Self(parts))
    }

    /// The index of a line `service` logged at `unix_nanos` (its UTC
    /// date), as it is made on the logging thread: into a buffer on the
    /// stack, with no allocation.
    pub(super) fn render(&self, service: &str, unix_nanos: u64) -> IndexName {
        let service = if service.is_empty() {
            UNKNOWN_SERVICE
        } else {
            service
        };
        let (year, month, day) = civil_from_days(unix_nanos / NANOS_PER_DAY);
        let mut name = IndexName::default();
        for part in &self.0 {
            match part {
                Part::Text(t) => name.push_str(t),
                Part::Service => name.push_str(service),
                Part::Year => name.push_digits(year, 4),
                Part::Month => name.push_digits(month, 2),
                Part::Day => name.push_digits(day, 2),
            }
        }
        name.finish();
        name
    }
}

/// An index name, sanitized as it is written: lowercase, only characters
/// every index name may hold (others become `_`), no leading `-`, `_` or
/// `+`, at most 255 bytes; `logs` if nothing (or only `.` or `..`) is
/// left. It never holds a space or a newline, so the sink's queue keeps it
/// in front of its line, separated by a space.
pub(super) struct IndexName {
    /// The name and room for the space after it.
    buf: [u8; MAX_INDEX_BYTES + 1],
    len: usize,
}

impl Default for IndexName {
    fn default() -> Self {
        Self {
            buf: [0; MAX_INDEX_BYTES + 1],
            len: 0,
        }
    }
}

impl IndexName {
    fn push_str(&mut self, s: &str) {
        for c in s.chars() {
            let c = match c.to_ascii_lowercase() {
                c @ ('a'..='z' | '0'..='9' | '-' | '_' | '.' | '+') => c as u8,
                _ => b'_',
            };
            self.push(c);
        }
    }

    /// `v` as `width` zero-padded digits.
    fn push_digits(&mut self, mut v: u64, width: usize) {
        let mut digits = [b'0'; 4];
        for slot in digits[..width].iter_mut().rev() {
            // `v % 10 < 10`, so the narrowing cast is lossless.
            *slot = b'0' + (v % 10) as u8;
            v /= 10;
        }
        for &d in &digits[..width] {
            self.push(d);
        }
    }

    fn push(&mut self, c: u8) {
        let leading = self.len == 0 && matches!(c, b'-' | b'_' | b'+');
        if !leading && self.len < MAX_INDEX_BYTES {
            self.buf[self.len] = c;
            self.len += 1;
        }
    }

    fn finish(&mut self) {
        if matches!(self.as_str(), "" | "." | "..") {
            self.len = 0;
            self.push_str("logs");
        }
    }

    pub(super) fn as_str(&self) -> &str {
        // Only ASCII is ever written.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("logs")
    }

    /// The name and a space: what the queue holds before the line.
    pub(super) fn queue_prefix(&mut self) -> &[u8] {
        self.buf[self.len] = b' ';
        &self.buf[..=self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-30T01:22:09.123456Z
    const NOV_30: u64 = 1_796_001_729_123_456_000;

    fn render(pattern: &str, service: &str, unix_nanos: u64) -> String {
        IndexPattern::parse(pattern)
            .unwrap()
            .render(service, unix_nanos)
            .as_str()
            .to_owned()
    }

    #[test]
    fn index_names_follow_the_pattern_the_service_and_the_date() {
        assert_eq!(
            render(DEFAULT_INDEX_PATTERN, "Websocket Ingestion", NOV_30),
            "websocket_ingestion-logs-2026.11.30"
        );
        assert_eq!(
            render(DEFAULT_INDEX_PATTERN, "a\"b", 1_767_312_000_000_000_000),
            "a_b-logs-2026.01.02"
        );
        assert_eq!(
            render(DEFAULT_INDEX_PATTERN, "", 0),
            "unknown-logs-1970.01.01"
        );
        assert_eq!(
            render("logs-%Y%m%%", "x", 1_767_312_000_000_000_000),
            "logs-202601_"
        );
        assert!(IndexPattern::parse("logs-%H").is_err());
        assert!(IndexPattern::parse("").is_err());
    }

    #[test]
    fn names_are_sanitized_as_they_are_written() {
        assert_eq!(render("_-Bad*Name", "", 0), "bad_name");
        assert_eq!(render("__", "", 0), "logs");
        assert_eq!(render("{service}", "-_+.", 0), "logs");
        assert_eq!(render("{service}-x", "..", 0), "..-x");
        assert_eq!(render("{service}", "..", 0), "logs");
        assert_eq!(render("{service}", "Ünï", 0), "n_");
        let long = "s".repeat(300);
        assert_eq!(render("{service}", &long, 0), "s".repeat(255));
        let mut name = IndexPattern::parse("x").unwrap().render("", 0);
        assert_eq!(name.queue_prefix(), b"x ");
    }
}
