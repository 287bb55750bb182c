//! The one thing a sink is handed: a finished line and what its writer
//! knows about it.

use std::fmt;

/// One JSON log line with the facts its writer knew when it wrote it: the
/// line's time and the service that logged it.
///
/// The text is a single line ending in `\n` with no other newline, so a
/// sink need not scan it for one. The metadata is what sinks that route or
/// name things per line (the Elasticsearch sink's daily indices) read, so
/// no sink searches a finished line for its fields.
///
/// Observe's [`JsonLayer`](crate::log::JsonLayer) makes these as it
/// writes; code outside observe makes them with [`JsonLine::new`]:
///
/// ```
/// use observe_runtime::sink::JsonLine;
///
/// let line = JsonLine::new("{\"timestamp\":\"2026-11-30T01:22:09.123456Z\",\"message\":\"m\"}\n")?
///     .with_service("billing");
/// assert_eq!(line.unix_nanos(), 1_796_001_729_123_456_000);
/// assert_eq!(line.service(), "billing");
/// assert!(JsonLine::new("two\nlines\n").is_err());
/// # Ok::<(), observe_runtime::sink::NotALine>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonLine<'a> {
    text: &'a str,
    unix_nanos: u64,
    service: &'a str,
}

impl<'a> JsonLine<'a> {
    /// A line the JSON layer wrote at `unix_nanos` (the instant its
    /// `timestamp` shows) for `service`: trusted to be a single line, so
    /// nothing is checked or parsed.
    pub(crate) fn written(text: &'a str, unix_nanos: u64, service: &'a str) -> Self {
        debug_assert!(is_one_line(text), "not a single line: {text:?}");
        Self {
            text,
            unix_nanos,
            service,
        }
    }

    /// Checks that `text` is exactly one line ending in `\n`, and takes
    /// the line's time from its `timestamp` field (RFC 3339) when it has a
    /// readable one, else the current time. The service is empty until
    /// [`with_service`](Self::with_service) names it.
    ///
    /// This reads the line once, with a JSON parser; lines written by the
    /// JSON layer skip all of it.
    ///
    /// # Errors
    ///
    /// [`NotALine`] if `text` does not end in `\n` or holds another one.
    pub fn new(text: &'a str) -> Result<Self, NotALine> {
        if !is_one_line(text) {
            return Err(NotALine(()));
        }
        let unix_nanos = serde_json::from_str::<serde_json::Value>(text)
            .ok()
            .and_then(|v| parse_rfc3339(v.get("timestamp")?.as_str()?))
            .unwrap_or_else(crate::base::clock::unix_nanos);
        Ok(Self {
            text,
            unix_nanos,
            service: "",
        })
    }

    /// The same line, logged by `service`.
    #[must_use]
    pub fn with_service(self, service: &'a str) -> Self {
        Self { service, ..self }
    }

    /// The line, `\n` included.
    #[must_use]
    pub fn as_str(&self) -> &'a str {
        self.text
    }

    /// When the line was logged, in nanoseconds since the Unix epoch: the
    /// instant its `timestamp` field shows (to the microsecond).
    #[must_use]
    pub fn unix_nanos(&self) -> u64 {
        self.unix_nanos
    }

    /// The service that logged the line (its `service` field, unescaped);
    /// empty if its writer did not say.
    #[must_use]
    pub fn service(&self) -> &'a str {
        self.service
    }
}

/// Why a text cannot be a [`JsonLine`]: it does not end in `\n`, or holds
/// another one (every `json_lines` reader would see two lines).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotALine(());

impl fmt::Display for NotALine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a log line must be one line ending in a newline")
    }
}

impl std::error::Error for NotALine {}

fn is_one_line(text: &str) -> bool {
    text.strip_suffix('\n')
        .is_some_and(|body| memchr::memchr(b'\n', body.as_bytes()).is_none())
}

/// Unix nanoseconds of an RFC 3339 time (`2026-11-30T01:22:09.123456Z`,
/// any fraction, `Z` or a `±HH:MM` offset); `None` if it is not one or is
/// before 1970.
fn parse_rfc3339(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<u64> {
        let digits = b.get(range)?;
        digits.iter().try_fold(0u64, |acc, &d| {
            d.is_ascii_digit().then(|| acc * 10 + u64::from(d - b'0'))
        })
    };
    let seps = [(4, b'-'), (7, b'-'), (13, b':'), (16, b':')];
    if !seps.iter().all(|&(i, c)| b.get(i) == Some(&c)) || !matches!(b.get(10), Some(b'T' | b't')) {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    // A leap second (60) counts as the next second's start.
    if second > 60 {
        return None;
    }
    let mut at = 19;
    let mut nanos = 0;
    if b.get(at) == Some(&b'.') {
        at += 1;
        let digits = b[at..].iter().take_while(|d| d.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        // Digits past nanoseconds are ignored, not rounded.
        for (i, &d) in b[at..at + digits].iter().take(9).enumerate() {
            nanos += u64::from(d - b'0') * 10u64.pow(8 - i as u32);
        }
        at += digits;
    }
    let offset_secs: i64 = match b.get(at) {
        Some(b'Z' | b'z') if at + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) if at + 6 == b.len() && b[at + 3] == b':' => {
            let (h, m) = (num(at + 1..at + 3)?, num(at + 4..at + 6)?);
            if h > 23 || m > 59 {
                return None;
            }
            let secs = (h * 3600 + m * 60) as i64;
            if sign == b'+' { secs } else { -secs }
        }
        _ => return None,
    };
    let days = super::timestamp::days_from_civil(year, month, day);
    let local = days * 86_400 + (hour * 3600 + minute * 60 + second) as i64;
    let secs = u64::try_from(local - offset_secs).ok()?;
    secs.checked_mul(1_000_000_000)?.checked_add(nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_single_lines_ending_in_a_newline_are_lines() {
        assert!(JsonLine::new("{}\n").is_ok());
        for bad in ["", "{}", "{}\n\n", "{\n}\n", "\n{}"] {
            assert_eq!(JsonLine::new(bad), Err(NotALine(())), "{bad:?}");
        }
        let written = JsonLine::written("{}\n", 7, "svc");
        assert_eq!(
            (written.as_str(), written.unix_nanos(), written.service()),
            ("{}\n", 7, "svc")
        );
    }

    #[test]
    fn the_time_comes_from_the_timestamp_or_the_clock() {
        let line = JsonLine::new("{\"timestamp\":\"2026-11-30T01:22:09.123456Z\"}\n").unwrap();
        assert_eq!(line.unix_nanos(), 1_796_001_729_123_456_000);
        assert_eq!(line.service(), "");
        let before = crate::base::clock::unix_nanos();
        for text in ["{}\n", "not json\n", "{\"timestamp\":\"yesterday\"}\n"] {
            assert!(
                JsonLine::new(text).unwrap().unix_nanos() >= before,
                "{text}"
            );
        }
    }

    #[test]
    fn rfc3339_times_parse_to_the_instant() {
        let cases = [
            ("1970-01-01T00:00:00Z", Some(0)),
            ("1970-01-01T00:00:00.000001Z", Some(1_000)),
            ("2000-02-29T12:34:56.5Z", Some(951_827_696_500_000_000)),
            (
                "2026-11-30T01:22:09.123456789123Z",
                Some(1_796_001_729_123_456_789),
            ),
            (
                "2026-11-30T02:22:09.123456+01:00",
                Some(1_796_001_729_123_456_000),
            ),
            (
                "2026-11-29T20:22:09.123456-05:00",
                Some(1_796_001_729_123_456_000),
            ),
            ("2100-03-01t00:00:00z", Some(4_107_542_400_000_000_000)),
            ("1969-12-31T23:59:59Z", None),
            ("2026-13-01T00:00:00Z", None),
            ("2026-11-30T01:22:09.Z", None),
            ("2026-11-30T01:22:09", None),
            ("2026-11-30 01:22:09Z", None),
            ("2026-11-30T01:22:09Zx", None),
            ("", None),
        ];
        for (text, nanos) in cases {
            assert_eq!(parse_rfc3339(text), nanos, "{text}");
        }
    }
}
