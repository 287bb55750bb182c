//! InfluxDB line protocol: one point per line,
//! `measurement,tag=value field=1.5,n=3i,s="text" 1764465729123`.
//!
//! Escaping follows what the InfluxDB parser (1.x and 2.x) reads back
//! unchanged, checked against a real InfluxDB 1.6:
//!
//! | part | escaped | cannot hold |
//! |---|---|---|
//! | measurement | `,` and space | a leading `#`, tab or NUL, a `\` before `,`, space or at the end |
//! | tag key, tag value | `,`, `=` and space | a `\` at the end |
//! | field key | `,`, `=` and space | a leading tab or NUL, a `\` before `,`, `=`, space, `"` or at the end |
//! | string field value | `"` and `\` | |
//!
//! No part may hold a line break (InfluxDB 1.6 finds line ends by tracking
//! quotes, which a `"` in a tag throws off), keys may not be empty
//! or `time` (InfluxDB rejects that key), and numbers must be finite. What
//! cannot be written is an [`Error`], never a line the server would reject
//! or read differently. Tags with an empty value are left out: InfluxDB
//! treats an empty tag as an absent one.
//!
//! VictoriaMetrics reads backslashes differently (it also unescapes `\\`
//! and drops tags with a `\` before an escaped character); points without
//! backslashes read back the same from both.
//!
//! ```
//! use observe_runtime::metrics::line_protocol::{FieldValue, Point};
//!
//! let line = Point::new("service_performance")
//!     .tag("operation", "db query")
//!     .field("count", FieldValue::Integer(3))
//!     .field("duration_ms_max", FieldValue::Float(12.5))
//!     .timestamp(1_764_465_729_123)
//!     .to_line()?;
//! assert_eq!(
//!     line,
//!     "service_performance,operation=db\\ query count=3i,duration_ms_max=12.5 1764465729123"
//! );
//! # Ok::<(), observe_runtime::metrics::line_protocol::Error>(())
//! ```

use std::fmt::{self, Write as _};

/// A field's value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FieldValue<'a> {
    /// A float; must be finite.
    Float(f64),
    /// A signed integer, written with the `i` suffix.
    Integer(i64),
    /// A string, written quoted.
    String(&'a str),
    /// A boolean.
    Boolean(bool),
}

/// Why a point cannot be written as a line.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The measurement is empty.
    EmptyMeasurement,
    /// A tag or field key is empty.
    EmptyKey,
    /// The point has no field.
    NoFields,
    /// A field value is NaN or infinite.
    NonFinite {
        /// The field's key.
        field: String,
    },
    /// A key is `time`, which InfluxDB rejects.
    ReservedKey,
    /// A name, key, tag value or string field holds a line break.
    LineBreak {
        /// Which part: `measurement`, `tag key`, `tag value`, `field key` or
        /// `string field`.
        part: &'static str,
    },
    /// A name, key or tag value has a backslash where the parser would read
    /// it as escaping the next delimiter.
    Backslash {
        /// Which part: `measurement`, `tag key`, `tag value` or `field key`.
        part: &'static str,
    },
    /// The measurement starts with `#`, which makes the line a comment.
    CommentMeasurement,
    /// A measurement or field key starts with a tab or NUL, which the
    /// parser skips as it skips the spaces before the part.
    LeadingBlank {
        /// Which part: `measurement` or `field key`.
        part: &'static str,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EmptyMeasurement => f.write_str("the measurement is empty"),
            Self::EmptyKey => f.write_str("a tag or field key is empty"),
            Self::NoFields => f.write_str("a point needs at least one field"),
            Self::NonFinite { field } => write!(f, "field {field:?} is NaN or infinite"),
            Self::ReservedKey => f.write_str("`time` cannot be a tag or field key"),
            Self::LineBreak { part } => write!(f, "a {part} cannot hold a line break"),
            Self::Backslash { part } => write!(
                f,
                "a {part} cannot end with a backslash or have one before a delimiter"
            ),
            Self::CommentMeasurement => f.write_str("a measurement cannot start with `#`"),
            Self::LeadingBlank { part } => write!(f, "a {part} cannot start with a tab or NUL"),
        }
    }
}

impl std::error::Error for Error {}

/// One point: a measurement, tags, fields and an optional timestamp.
#[derive(Debug, Clone, PartialEq)]
#[must_use = "a point does nothing until written with `write_to` or `to_line`"]
pub struct Point<'a> {
    measurement: &'a str,
    tags: Vec<(&'a str, &'a str)>,
    fields: Vec<(&'a str, FieldValue<'a>)>,
    timestamp: Option<i64>,
}

impl<'a> Point<'a> {
    /// Starts a point of `measurement`.
    pub fn new(measurement: &'a str) -> Self {
        Self {
            measurement,
            tags: Vec::new(),
            fields: Vec::new(),
            timestamp: None,
        }
    }

    /// Adds a tag. Tags are written sorted by key, as InfluxDB recommends.
    pub fn tag(mut self, key: &'a str, value: &'a str) -> Self {
        self.tags.push((key, value));
        self
    }

    /// Adds a field.
    pub fn field(mut self, key: &'a str, value: FieldValue<'a>) -> Self {
        self.fields.push((key, value));
        self
    }

    /// Sets the timestamp, in the precision the write request names.
    pub fn timestamp(mut self, timestamp: i64) -> Self {
        self.timestamp = Some(timestamp);
        self
    }

    /// The point as one line, without the trailing newline.
    ///
    /// # Errors
    ///
    /// See [`Error`]: the point cannot be written so that the server reads
    /// it back unchanged.
    pub fn to_line(&self) -> Result<String, Error> {
        let mut out = String::with_capacity(64);
        self.write_to(&mut out)?;
        Ok(out)
    }

    /// Appends the point as one line, without the trailing newline, to
    /// `out`; on an error `out` is left as it was.
    ///
    /// # Errors
    ///
    /// As [`to_line`](Self::to_line).
    pub fn write_to(&self, out: &mut String) -> Result<(), Error> {
        let start = out.len();
        let result = self.write_unchecked(out);
        if result.is_err() {
            out.truncate(start);
        }
        result
    }

    fn write_unchecked(&self, out: &mut String) -> Result<(), Error> {
        check_measurement(self.measurement)?;
        if self.fields.is_empty() {
            return Err(Error::NoFields);
        }
        escape(out, self.measurement, &[',', ' ']);
        let mut tags: Vec<&(&str, &str)> =
            self.tags.iter().filter(|(_, v)| !v.is_empty()).collect();
        tags.sort_by(|a, b| a.0.cmp(b.0));
        for (key, value) in tags {
            check_key(key, "tag key", false)?;
            check_key(value, "tag value", false)?;
            out.push(',');
            escape(out, key, &[',', '=', ' ']);
            out.push('=');
            escape(out, value, &[',', '=', ' ']);
        }
        for (i, (key, value)) in self.fields.iter().enumerate() {
            check_key(key, "field key", true)?;
            out.push(if i == 0 { ' ' } else { ',' });
            escape(out, key, &[',', '=', ' ']);
            out.push('=');
            match *value {
                FieldValue::Float(v) => {
                    if !v.is_finite() {
                        return Err(Error::NonFinite {
                            field: (*key).to_owned(),
                        });
                    }
                    // `Display` never uses an exponent, which every
                    // line-protocol parser reads.
                    let _ = write!(out, "{v}");
                }
                FieldValue::Integer(v) => {
                    let _ = write!(out, "{v}i");
                }
                FieldValue::Boolean(v) => out.push_str(if v { "true" } else { "false" }),
                FieldValue::String(s) => {
                    // InfluxDB 1.6 finds line ends by scanning for quotes,
                    // and a `"` in a tag fools it: a line break inside a
                    // string field can then split the point.
                    if has_line_break(s) {
                        return Err(Error::LineBreak {
                            part: "string field",
                        });
                    }
                    out.push('"');
                    escape(out, s, &['"', '\\']);
                    out.push('"');
                }
            }
        }
        if let Some(ts) = self.timestamp {
            let _ = write!(out, " {ts}");
        }
        Ok(())
    }
}

fn has_line_break(s: &str) -> bool {
    s.contains(['\n', '\r'])
}

/// Whether `s` starts with what the parser skips before a measurement and
/// before the fields (InfluxDB's `skipWhitespace`: space, tab, NUL). An
/// escaped space is written as `\ `, so only tab and NUL remain.
fn starts_blank(s: &str) -> bool {
    s.starts_with(['\t', '\0'])
}

fn check_measurement(m: &str) -> Result<(), Error> {
    if m.is_empty() {
        return Err(Error::EmptyMeasurement);
    }
    if m.starts_with('#') {
        return Err(Error::CommentMeasurement);
    }
    if starts_blank(m) {
        return Err(Error::LeadingBlank {
            part: "measurement",
        });
    }
    if has_line_break(m) {
        return Err(Error::LineBreak {
            part: "measurement",
        });
    }
    if backslash_before(m, &[',', ' ']) {
        return Err(Error::Backslash {
            part: "measurement",
        });
    }
    Ok(())
}

/// Checks a tag key, tag value or field key. Field keys are stricter: the
/// parser's field scanner does not accept a `\` before an escaped
/// delimiter, which the tag scanner does, and it reads `\"` as `"`.
fn check_key(s: &str, part: &'static str, field: bool) -> Result<(), Error> {
    if s.is_empty() {
        return Err(Error::EmptyKey);
    }
    if part != "tag value" && s == "time" {
        return Err(Error::ReservedKey);
    }
    if has_line_break(s) {
        return Err(Error::LineBreak { part });
    }
    if field && starts_blank(s) {
        return Err(Error::LeadingBlank { part });
    }
    let bad = if field {
        backslash_before(s, &[',', '=', ' ', '"'])
    } else {
        s.ends_with('\\')
    };
    if bad {
        return Err(Error::Backslash { part });
    }
    Ok(())
}

/// Whether `s` ends with `\` or has one right before one of `specials`.
fn backslash_before(s: &str, specials: &[char]) -> bool {
    s.ends_with('\\')
        || s.as_bytes()
            .windows(2)
            .any(|w| w[0] == b'\\' && specials.iter().any(|&c| w[1] == c as u8))
}

fn escape(out: &mut String, s: &str, specials: &[char]) {
    for c in s.chars() {
        if specials.contains(&c) {
            out.push('\\');
        }
        out.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(p: &Point<'_>) -> Result<String, Error> {
        p.to_line()
    }

    #[test]
    fn escapes_each_part_by_its_own_rules() {
        let p = Point::new("my meas,ure=ment")
            .tag("tag key,=", "tag value,= \\x")
            .field("field key,=", FieldValue::String("say \"hi\" \\ now"))
            .field("n", FieldValue::Integer(-3))
            .field("b", FieldValue::Boolean(true))
            .timestamp(7);
        assert_eq!(
            line(&p).as_deref(),
            Ok(
                r#"my\ meas\,ure=ment,tag\ key\,\==tag\ value\,\=\ \x field\ key\,\=="say \"hi\" \\ now",n=-3i,b=true 7"#
            )
        );
    }

    #[test]
    fn line_breaks_in_string_fields_are_refused() {
        let p = Point::new("m")
            .tag("t", "\"")
            .field("s", FieldValue::String("a\nb"));
        assert_eq!(
            line(&p),
            Err(Error::LineBreak {
                part: "string field"
            })
        );
    }

    #[test]
    fn sorts_tags_and_skips_empty_values() {
        let p = Point::new("m")
            .tag("b", "2")
            .tag("a", "1")
            .tag("c", "")
            .field("f", FieldValue::Float(0.000_000_1));
        assert_eq!(line(&p).as_deref(), Ok("m,a=1,b=2 f=0.0000001"));
    }

    #[test]
    fn rejects_what_the_server_would_not_read_back() {
        let f = FieldValue::Float(1.0);
        assert_eq!(
            line(&Point::new("").field("f", f)),
            Err(Error::EmptyMeasurement)
        );
        assert_eq!(
            line(&Point::new("#m").field("f", f)),
            Err(Error::CommentMeasurement)
        );
        assert_eq!(line(&Point::new("m")), Err(Error::NoFields));
        assert_eq!(line(&Point::new("m").field("", f)), Err(Error::EmptyKey));
        assert_eq!(
            line(&Point::new("m").tag("", "v").field("f", f)),
            Err(Error::EmptyKey)
        );
        assert_eq!(
            line(&Point::new("m").field("time", f)),
            Err(Error::ReservedKey)
        );
        assert_eq!(
            line(&Point::new("m").tag("time", "v").field("f", f)),
            Err(Error::ReservedKey)
        );
        assert!(line(&Point::new("m").tag("k", "time").field("f", f)).is_ok());
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(
                line(&Point::new("m").field("x", FieldValue::Float(bad))),
                Err(Error::NonFinite { field: "x".into() })
            );
        }
        assert!(matches!(
            line(&Point::new("m").tag("k", "a\nb").field("f", f)),
            Err(Error::LineBreak { part: "tag value" })
        ));
        assert!(matches!(
            line(&Point::new("m").tag("k", "a\\").field("f", f)),
            Err(Error::Backslash { part: "tag value" })
        ));
        assert!(line(&Point::new("m").tag("k", "a\\,b").field("f", f)).is_ok());
        for key in ["a\\,b", "a\\\"b"] {
            assert!(matches!(
                line(&Point::new("m").field(key, f)),
                Err(Error::Backslash { part: "field key" })
            ));
        }
        assert!(line(&Point::new("m").field("a\"b", f)).is_ok());
        assert!(matches!(
            line(&Point::new("a\\ b").field("f", f)),
            Err(Error::Backslash {
                part: "measurement"
            })
        ));
    }

    #[test]
    fn an_error_leaves_the_buffer_as_it_was() {
        let mut out = String::from("kept\n");
        let err = Point::new("m")
            .tag("k", "v")
            .field("ok", FieldValue::Integer(1))
            .field("bad", FieldValue::Float(f64::NAN))
            .write_to(&mut out);
        assert!(err.is_err());
        assert_eq!(out, "kept\n");
    }

    /// InfluxDB skips tabs and NULs before the measurement and before the
    /// fields: `\t#m` would turn the line into a comment, `\0m` would be
    /// read as `m`, and a first field key `\tf` as `f`.
    #[test]
    fn a_leading_tab_or_nul_is_refused_where_the_reader_skips_it() {
        let f = FieldValue::Float(1.0);
        for m in ["\t#m", "\0m", "\tm"] {
            assert_eq!(
                line(&Point::new(m).field("f", f)),
                Err(Error::LeadingBlank {
                    part: "measurement"
                }),
                "{m:?}"
            );
        }
        for k in ["\tf", "\0f"] {
            assert_eq!(
                line(&Point::new("m").field(k, f)),
                Err(Error::LeadingBlank { part: "field key" }),
                "{k:?}"
            );
        }
        // Elsewhere they are plain characters.
        assert!(line(&Point::new("m\t").tag("\tk", "\tv").field("f\t", f)).is_ok());
    }
}
