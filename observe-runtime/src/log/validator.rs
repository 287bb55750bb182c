//! Checks that a log line matches the documented JSON log schema.
//!
//! The log layer writes its JSON by hand for speed, so nothing in the type
//! system guarantees the output shape. [`LogValidator`] is the independent
//! check used by tests and by downstream consumers: it parses with
//! `serde_json` and enforces the same rules as `docs/log-schema.json`, plus a
//! few the JSON Schema cannot express (calendar-valid dates, one line only).

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use serde_json::{Map, Value};

/// Expected-value descriptions, shared by the checks and the tests.
const A_STRING: &str = "a string";
const AN_OBJECT: &str = "an object";
const A_NUMBER: &str = "a number";
const NON_NEGATIVE: &str = "a non-negative number";
const TIMESTAMP_FORMAT: &str = "an RFC 3339 UTC timestamp like 2026-11-30T01:22:09.123456Z";
const LEVELS: &str = "one of TRACE, DEBUG, INFO, WARN, ERROR";
const STATUSES: &str = "one of success, error, panic, cancelled";

/// Every top-level field a log line may contain, in the order they are written.
const ALL_FIELDS: [&str; 10] = [
    "timestamp",
    "level",
    "service",
    "message",
    "correlation_id",
    "trace_id",
    "span_id",
    "parent_span_id",
    "context",
    "performance",
];

const TRACE_ID_FORMAT: &str = "32 lowercase hex digits, not all zero (a W3C trace-id)";
const SPAN_ID_FORMAT: &str = "16 lowercase hex digits, not all zero (a W3C span id)";

/// Validates log lines against the JSON log schema.
///
/// A valid line is a single JSON object with these top-level fields and no
/// others:
///
/// | field            | required | type   | constraint                                  |
/// |------------------|----------|--------|---------------------------------------------|
/// | `timestamp`      | yes      | string | `YYYY-MM-DDTHH:MM:SS.ffffffZ`, valid date    |
/// | `level`          | yes      | string | `TRACE`, `DEBUG`, `INFO`, `WARN` or `ERROR`  |
/// | `service`        | yes      | string |                                             |
/// | `message`        | yes      | string |                                             |
/// | `correlation_id` | yes      | string |                                             |
/// | `trace_id`       | no       | string | 32 lowercase hex digits, not all zero       |
/// | `span_id`        | no       | string | 16 lowercase hex digits, not all zero       |
/// | `parent_span_id` | no       | string | 16 lowercase hex digits, not all zero       |
/// | `context`        | no       | object | any members                                 |
/// | `performance`    | no       | object | see below                                   |
///
/// Inside `performance`, each of these is optional but must be well-formed if
/// present: `duration_ms` a number `>= 0` (never a string), `operation` a
/// string, `status` one of `success`, `error`, `panic`, `cancelled`. Other
/// members of `performance` are allowed.
///
/// Validation stops at the first problem, checking fields in the order above.
///
/// # Example
///
/// ```rust
/// use observe_runtime::log::LogValidator;
///
/// let line = r#"{"timestamp":"2026-11-30T01:22:09.123456Z","level":"INFO","service":"websocket-ingestion","message":"process_event completed","correlation_id":"req_1764465729_1a2b3c4d","context":{"entity_id":"sensor.kitchen"},"performance":{"operation":"process_event","status":"success","duration_ms":0.412}}"#;
/// assert!(LogValidator::validate_line(line).is_ok());
///
/// // A duration rendered as a string is a schema violation.
/// let bad = line.replace("0.412", "\"0.412\"");
/// let err = LogValidator::validate_line(&bad).unwrap_err();
/// assert_eq!(err.field(), Some("performance.duration_ms"));
/// assert_eq!(err.to_string(), "field `performance.duration_ms`: expected a number");
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct LogValidator;

impl LogValidator {
    /// The fields every log line must contain.
    pub const REQUIRED_FIELDS: [&'static str; 5] =
        ["timestamp", "level", "service", "message", "correlation_id"];

    /// Validates one line of log output.
    ///
    /// A single trailing `\n` (as written by the line sinks) is accepted. Any
    /// other line break, including in whitespace between JSON tokens, is
    /// rejected: a line that would be split by a line-oriented reader is not a
    /// valid log line even if it is valid JSON.
    ///
    /// # Errors
    ///
    /// Returns [`ValidationErrorKind::NotJson`] if the line contains a line
    /// break or does not parse as JSON, and otherwise whatever
    /// [`LogValidator::validate_value`] reports.
    pub fn validate_line(line: &str) -> Result<(), ValidationError> {
        let body = line.strip_suffix('\n').unwrap_or(line);
        if body.contains(['\n', '\r']) {
            return Err(ValidationError::new(
                None,
                ValidationErrorKind::NotJson("line contains an embedded line break".to_owned()),
            ));
        }
        let value: Value = serde_json::from_str(body).map_err(|e| {
            let mut err = ValidationError::new(None, ValidationErrorKind::NotJson(e.to_string()));
            err.source = Some(Arc::new(e));
            err
        })?;
        Self::validate_value(&value)
    }

    /// Validates an already-parsed log line.
    ///
    /// # Errors
    ///
    /// Returns the first schema violation found: [`ValidationErrorKind::NotAnObject`]
    /// if `value` is not an object, otherwise an error naming the offending
    /// field (`performance.*` members are reported with their dotted path).
    pub fn validate_value(value: &Value) -> Result<(), ValidationError> {
        let Some(obj) = value.as_object() else {
            return Err(ValidationError::new(None, ValidationErrorKind::NotAnObject));
        };

        let timestamp = required_str(obj, "timestamp")?;
        if !is_valid_timestamp(timestamp) {
            return Err(invalid("timestamp", TIMESTAMP_FORMAT));
        }

        let level = required_str(obj, "level")?;
        if !matches!(level, "TRACE" | "DEBUG" | "INFO" | "WARN" | "ERROR") {
            return Err(invalid("level", LEVELS));
        }

        required_str(obj, "service")?;
        required_str(obj, "message")?;
        required_str(obj, "correlation_id")?;

        for (field, digits, form) in [
            ("trace_id", 32, TRACE_ID_FORMAT),
            ("span_id", 16, SPAN_ID_FORMAT),
            ("parent_span_id", 16, SPAN_ID_FORMAT),
        ] {
            if let Some(v) = obj.get(field) {
                let Some(text) = v.as_str() else {
                    return Err(wrong_type(field, A_STRING));
                };
                if !is_w3c_id(text, digits) {
                    return Err(invalid(field, form));
                }
            }
        }

        if let Some(context) = obj.get("context") {
            if !context.is_object() {
                return Err(wrong_type("context", AN_OBJECT));
            }
        }

        if let Some(performance) = obj.get("performance") {
            let Some(performance) = performance.as_object() else {
                return Err(wrong_type("performance", AN_OBJECT));
            };
            validate_performance(performance)?;
        }

        if let Some(unknown) = obj.keys().find(|k| !ALL_FIELDS.contains(&k.as_str())) {
            return Err(ValidationError::new(
                Some(Cow::Owned(unknown.clone())),
                ValidationErrorKind::Unexpected,
            ));
        }
        Ok(())
    }
}

/// Checks the members of the `performance` object.
fn validate_performance(performance: &Map<String, Value>) -> Result<(), ValidationError> {
    if let Some(duration) = performance.get("duration_ms") {
        // Without serde_json's `arbitrary_precision`, every JSON number
        // converts to f64, and JSON cannot encode NaN, so `< 0.0` suffices.
        let Some(ms) = duration.as_f64() else {
            return Err(wrong_type("performance.duration_ms", A_NUMBER));
        };
        if ms < 0.0 {
            return Err(invalid("performance.duration_ms", NON_NEGATIVE));
        }
    }
    if let Some(operation) = performance.get("operation") {
        if !operation.is_string() {
            return Err(wrong_type("performance.operation", A_STRING));
        }
    }
    if let Some(status) = performance.get("status") {
        let Some(status) = status.as_str() else {
            return Err(wrong_type("performance.status", A_STRING));
        };
        if !matches!(status, "success" | "error" | "panic" | "cancelled") {
            return Err(invalid("performance.status", STATUSES));
        }
    }
    Ok(())
}

/// Returns the string value of the required field `name`.
fn required_str<'v>(
    obj: &'v Map<String, Value>,
    name: &'static str,
) -> Result<&'v str, ValidationError> {
    match obj.get(name) {
        None => Err(ValidationError::new(
            Some(Cow::Borrowed(name)),
            ValidationErrorKind::Missing,
        )),
        Some(value) => value.as_str().ok_or_else(|| wrong_type(name, A_STRING)),
    }
}

/// Builds a [`ValidationErrorKind::WrongType`] error for `field`.
fn wrong_type(field: &'static str, expected: &'static str) -> ValidationError {
    ValidationError::new(
        Some(Cow::Borrowed(field)),
        ValidationErrorKind::WrongType { expected },
    )
}

/// Builds a [`ValidationErrorKind::InvalidValue`] error for `field`.
fn invalid(field: &'static str, expected: &'static str) -> ValidationError {
    ValidationError::new(
        Some(Cow::Borrowed(field)),
        ValidationErrorKind::InvalidValue { expected },
    )
}

/// Checks `YYYY-MM-DDTHH:MM:SS.ffffffZ` with in-range, calendar-valid components.
///
/// Seconds may be `60` because RFC 3339 allows a leap second there, even
/// though this crate's writer never produces one.
/// `digits` lowercase hex digits, not all zero: a W3C trace or span id.
fn is_w3c_id(text: &str, digits: usize) -> bool {
    text.len() == digits
        && text
            .bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
        && text.bytes().any(|c| c != b'0')
}

fn is_valid_timestamp(s: &str) -> bool {
    let Ok(b) = <&[u8; 27]>::try_from(s.as_bytes()) else {
        return false;
    };
    let separators_ok = [
        (4, b'-'),
        (7, b'-'),
        (10, b'T'),
        (13, b':'),
        (16, b':'),
        (19, b'.'),
        (26, b'Z'),
    ]
    .iter()
    .all(|&(i, c)| b[i] == c);
    if !separators_ok {
        return false;
    }
    let (Some(year), Some(month), Some(day), Some(hour), Some(minute), Some(second), Some(_micros)) = (
        parse_digits(&b[0..4]),
        parse_digits(&b[5..7]),
        parse_digits(&b[8..10]),
        parse_digits(&b[11..13]),
        parse_digits(&b[14..16]),
        parse_digits(&b[17..19]),
        parse_digits(&b[20..26]),
    ) else {
        return false;
    };
    (1..=12).contains(&month)
        && (1..=days_in_month(year, month)).contains(&day)
        && hour <= 23
        && minute <= 59
        && second <= 60
}

/// Parses an all-ASCII-digit slice; `None` if any byte is not a digit.
fn parse_digits(digits: &[u8]) -> Option<u32> {
    digits.iter().try_fold(0u32, |acc, &d| {
        d.is_ascii_digit().then(|| acc * 10 + u32::from(d - b'0'))
    })
}

/// Number of days in `month` (1-based) of the proleptic Gregorian `year`.
fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Why a log line failed validation: which field, and what is wrong with it.
///
/// Displayed in lowercase, for example ``field `performance.duration_ms`: expected a number``.
#[derive(Debug, Clone)]
pub struct ValidationError {
    /// Dotted path of the offending field; `None` when the line as a whole is wrong.
    field: Option<Cow<'static, str>>,
    /// What is wrong.
    kind: ValidationErrorKind,
    /// The JSON parser's error, for a line that is not JSON; shared so the
    /// error stays `Clone`.
    source: Option<Arc<serde_json::Error>>,
}

/// Two errors are equal when they name the same field and problem; the
/// parser's error is already in [`ValidationErrorKind::NotJson`]'s text.
impl PartialEq for ValidationError {
    fn eq(&self, other: &Self) -> bool {
        self.field == other.field && self.kind == other.kind
    }
}

impl Eq for ValidationError {}

impl ValidationError {
    /// Creates an error for `field` (or the whole line if `None`).
    fn new(field: Option<Cow<'static, str>>, kind: ValidationErrorKind) -> Self {
        Self {
            field,
            kind,
            source: None,
        }
    }

    /// The offending field, as a dotted path such as `performance.status`.
    ///
    /// `None` when the problem is not tied to one field: the line is not JSON
    /// ([`ValidationErrorKind::NotJson`]) or not an object
    /// ([`ValidationErrorKind::NotAnObject`]).
    #[must_use]
    pub fn field(&self) -> Option<&str> {
        self.field.as_deref()
    }

    /// What is wrong.
    #[must_use]
    pub fn kind(&self) -> &ValidationErrorKind {
        &self.kind
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let field = self.field.as_deref().unwrap_or("");
        match &self.kind {
            ValidationErrorKind::NotJson(reason) => write!(f, "not valid json: {reason}"),
            ValidationErrorKind::NotAnObject => f.write_str("not a json object"),
            ValidationErrorKind::Missing => write!(f, "missing required field `{field}`"),
            ValidationErrorKind::WrongType { expected } => {
                write!(f, "field `{field}`: expected {expected}")
            }
            ValidationErrorKind::InvalidValue { expected } => {
                write!(f, "field `{field}`: invalid value, expected {expected}")
            }
            ValidationErrorKind::Unexpected => write!(f, "unexpected field `{field}`"),
        }
    }
}

impl std::error::Error for ValidationError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// The kind of schema violation found by [`LogValidator`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ValidationErrorKind {
    /// The line is not a single line of valid JSON; holds the reason.
    NotJson(String),
    /// The line is valid JSON but not an object.
    NotAnObject,
    /// A required field is absent.
    Missing,
    /// The field has the wrong JSON type, e.g. a string where a number belongs.
    WrongType {
        /// Description of the expected type, such as `"a number"`.
        expected: &'static str,
    },
    /// The field has the right type but a value outside the allowed set or format.
    InvalidValue {
        /// Description of the allowed values.
        expected: &'static str,
    },
    /// A top-level field that the schema does not define.
    Unexpected,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const EXAMPLE: &str = r#"{"timestamp":"2026-11-30T01:22:09.123456Z","level":"INFO","service":"websocket-ingestion","message":"process_event completed","correlation_id":"req_1764465729_1a2b3c4d","context":{"entity_id":"sensor.kitchen"},"performance":{"operation":"process_event","status":"success","duration_ms":0.412}}"#;

    fn example() -> Value {
        serde_json::from_str(EXAMPLE).unwrap()
    }

    /// Validates the example with `edit` applied.
    fn check(edit: impl FnOnce(&mut Map<String, Value>)) -> Result<(), ValidationError> {
        let mut value = example();
        edit(value.as_object_mut().unwrap());
        LogValidator::validate_value(&value)
    }

    fn set_perf(obj: &mut Map<String, Value>, key: &str, v: Value) {
        obj["performance"]
            .as_object_mut()
            .unwrap()
            .insert(key.to_owned(), v);
    }

    fn assert_err(
        result: Result<(), ValidationError>,
        field: Option<&str>,
        kind: &ValidationErrorKind,
    ) {
        let err = result.expect_err("expected a validation error");
        assert_eq!(err.field(), field, "{err}");
        assert_eq!(err.kind(), kind, "{err}");
    }

    #[test]
    fn trace_and_span_ids_are_w3c_ids_when_present() {
        let with =
            |fields: &str| EXAMPLE.replacen(",\"context\"", &format!(",{fields},\"context\""), 1);
        let good = with(
            r#""trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7","parent_span_id":"00000000000000a1""#,
        );
        assert!(LogValidator::validate_line(&good).is_ok(), "{good}");
        let cases = [
            (
                r#""trace_id":"4BF92F3577B34DA6A3CE929D0E0E4736""#,
                "trace_id",
            ),
            (
                r#""trace_id":"00000000000000000000000000000000""#,
                "trace_id",
            ),
            (r#""trace_id":"4bf92f35""#, "trace_id"),
            (r#""trace_id":7"#, "trace_id"),
            (r#""span_id":"0000000000000000""#, "span_id"),
            (r#""span_id":"00f067aa0ba902bz""#, "span_id"),
            (r#""parent_span_id":"00f067aa0ba902b""#, "parent_span_id"),
        ];
        for (fields, field) in cases {
            let err = LogValidator::validate_line(&with(fields)).unwrap_err();
            assert_eq!(err.field(), Some(field), "{fields}");
        }
    }

    #[test]
    fn example_line_is_valid() {
        assert_eq!(LogValidator::validate_line(EXAMPLE), Ok(()));
        assert_eq!(LogValidator::validate_line(&format!("{EXAMPLE}\n")), Ok(()));
    }

    #[test]
    fn minimal_line_is_valid() {
        let line = r#"{"timestamp":"1970-01-01T00:00:00.000000Z","level":"TRACE","service":"","message":"","correlation_id":""}"#;
        assert_eq!(LogValidator::validate_line(line), Ok(()));
        assert_eq!(
            check(|o| {
                o["context"] = json!({});
                o["performance"] = json!({});
            }),
            Ok(())
        );
    }

    #[test]
    fn every_level_is_accepted() {
        for level in ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"] {
            assert_eq!(check(|o| o["level"] = json!(level)), Ok(()));
        }
    }

    #[test]
    fn every_status_is_accepted() {
        for status in ["success", "error", "panic", "cancelled"] {
            assert_eq!(check(|o| set_perf(o, "status", json!(status))), Ok(()));
        }
    }

    #[test]
    fn not_json() {
        for line in ["", "{", "nope", "{\"timestamp\":}", "{}{}"] {
            let err = LogValidator::validate_line(line).unwrap_err();
            assert!(
                matches!(err.kind(), ValidationErrorKind::NotJson(_)),
                "{line:?}: {err}"
            );
            assert_eq!(err.field(), None);
            assert!(err.to_string().starts_with("not valid json: "), "{err}");
        }
    }

    #[test]
    fn embedded_line_breaks_are_rejected() {
        let pretty = serde_json::to_string_pretty(&example()).unwrap();
        let err = LogValidator::validate_line(&pretty).unwrap_err();
        assert!(matches!(err.kind(), ValidationErrorKind::NotJson(_)));
        for line in [
            format!("{EXAMPLE}\n\n"),
            format!("{EXAMPLE}\r\n"),
            EXAMPLE.replacen(',', ",\n", 1),
            EXAMPLE.replacen(',', ",\r", 1),
        ] {
            let err = LogValidator::validate_line(&line).unwrap_err();
            assert!(
                matches!(err.kind(), ValidationErrorKind::NotJson(_)),
                "{line:?}"
            );
            assert_eq!(err.field(), None);
        }
    }

    #[test]
    fn not_an_object() {
        for line in ["[]", "null", "1", "\"line\"", "[{}]"] {
            assert_err(
                LogValidator::validate_line(line),
                None,
                &ValidationErrorKind::NotAnObject,
            );
        }
        let err = LogValidator::validate_value(&json!([1])).unwrap_err();
        assert_eq!(err.to_string(), "not a json object");
    }

    #[test]
    fn each_required_field_missing() {
        for field in LogValidator::REQUIRED_FIELDS {
            let result = check(|o| {
                o.remove(field);
            });
            assert_err(result.clone(), Some(field), &ValidationErrorKind::Missing);
            assert_eq!(
                result.unwrap_err().to_string(),
                format!("missing required field `{field}`")
            );
        }
    }

    #[test]
    fn optional_fields_may_be_absent() {
        assert_eq!(
            check(|o| {
                o.remove("context");
                o.remove("performance");
            }),
            Ok(())
        );
        for key in ["duration_ms", "operation", "status"] {
            let result = check(|o| {
                o["performance"].as_object_mut().unwrap().remove(key);
            });
            assert_eq!(result, Ok(()), "without performance.{key}");
        }
    }

    #[test]
    fn string_fields_wrong_type() {
        for field in LogValidator::REQUIRED_FIELDS {
            for bad in [json!(1), json!(null), json!(true), json!({}), json!(["x"])] {
                assert_err(
                    check(|o| o[field] = bad),
                    Some(field),
                    &ValidationErrorKind::WrongType {
                        expected: "a string",
                    },
                );
            }
        }
    }

    #[test]
    fn object_fields_wrong_type() {
        for field in ["context", "performance"] {
            for bad in [json!("{}"), json!(null), json!([]), json!(0)] {
                let result = check(|o| o[field] = bad);
                assert_err(
                    result.clone(),
                    Some(field),
                    &ValidationErrorKind::WrongType {
                        expected: "an object",
                    },
                );
                assert_eq!(
                    result.unwrap_err().to_string(),
                    format!("field `{field}`: expected an object")
                );
            }
        }
    }

    #[test]
    fn invalid_level() {
        for bad in ["info", "Info", "WARNING", "FATAL", "", " INFO"] {
            assert_err(
                check(|o| o["level"] = json!(bad)),
                Some("level"),
                &ValidationErrorKind::InvalidValue { expected: LEVELS },
            );
        }
        let err = check(|o| o["level"] = json!("info")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "field `level`: invalid value, expected one of TRACE, DEBUG, INFO, WARN, ERROR"
        );
    }

    #[test]
    fn valid_timestamps() {
        for ts in [
            "1970-01-01T00:00:00.000000Z",
            "2000-02-29T23:59:59.999999Z",
            "2024-02-29T12:00:00.500000Z",
            "2026-12-31T23:59:60.000000Z",
            "9999-12-31T23:59:59.999999Z",
        ] {
            assert!(is_valid_timestamp(ts), "{ts}");
            assert_eq!(check(|o| o["timestamp"] = json!(ts)), Ok(()), "{ts}");
        }
    }

    #[test]
    fn invalid_timestamps() {
        for ts in [
            "",
            "2026-11-30T01:22:09Z",
            "2026-11-30T01:22:09.123Z",
            "2026-11-30T01:22:09.123456789Z",
            "2026-11-30T01:22:09.1234567Z",
            "2026-11-30T01:22:09.123456",
            "2026-11-30T01:22:09.123456+00:00",
            "2026-11-30t01:22:09.123456Z",
            "2026-11-30T01:22:09.123456z",
            "2026-11-30 01:22:09.123456Z",
            "2026/11/30T01:22:09.123456Z",
            "2026-13-30T01:22:09.123456Z",
            "2026-00-30T01:22:09.123456Z",
            "2026-11-00T01:22:09.123456Z",
            "2026-11-31T01:22:09.123456Z",
            "2026-02-29T01:22:09.123456Z",
            "2100-02-29T01:22:09.123456Z",
            "2026-11-30T24:00:00.000000Z",
            "2026-11-30T01:60:09.123456Z",
            "2026-11-30T01:22:61.123456Z",
            "2026-11-30T01:22:09.12345aZ",
            "+026-11-30T01:22:09.123456Z",
            "2026-11-30T01:22:09.-12345Z",
            "２026-11-30T01:22:09.123456Z",
        ] {
            assert!(!is_valid_timestamp(ts), "{ts}");
            assert_err(
                check(|o| o["timestamp"] = json!(ts)),
                Some("timestamp"),
                &ValidationErrorKind::InvalidValue {
                    expected: TIMESTAMP_FORMAT,
                },
            );
        }
    }

    #[test]
    fn duration_ms() {
        for ok in [
            json!(0),
            json!(0.0),
            json!(0.412),
            json!(12345),
            json!(1e300),
            json!(u64::MAX),
        ] {
            assert_eq!(check(|o| set_perf(o, "duration_ms", ok)), Ok(()));
        }
        for bad in [
            json!("0.412"),
            json!(null),
            json!(true),
            json!([1]),
            json!({"ms": 1}),
        ] {
            let result = check(|o| set_perf(o, "duration_ms", bad));
            assert_err(
                result.clone(),
                Some("performance.duration_ms"),
                &ValidationErrorKind::WrongType {
                    expected: "a number",
                },
            );
            assert_eq!(
                result.unwrap_err().to_string(),
                "field `performance.duration_ms`: expected a number"
            );
        }
        for bad in [json!(-1), json!(-0.001), json!(i64::MIN)] {
            assert_err(
                check(|o| set_perf(o, "duration_ms", bad)),
                Some("performance.duration_ms"),
                &ValidationErrorKind::InvalidValue {
                    expected: NON_NEGATIVE,
                },
            );
        }
        // -0.0 compares equal to zero, so it is not negative.
        let line = EXAMPLE.replace("0.412", "-0.0");
        assert_eq!(LogValidator::validate_line(&line), Ok(()));
    }

    #[test]
    fn operation() {
        for bad in [json!(1), json!(null), json!({})] {
            assert_err(
                check(|o| set_perf(o, "operation", bad)),
                Some("performance.operation"),
                &ValidationErrorKind::WrongType {
                    expected: "a string",
                },
            );
        }
    }

    #[test]
    fn status() {
        for bad in [json!(0), json!(null), json!(false)] {
            assert_err(
                check(|o| set_perf(o, "status", bad)),
                Some("performance.status"),
                &ValidationErrorKind::WrongType {
                    expected: "a string",
                },
            );
        }
        for bad in ["ok", "Success", "failed", "ERROR", ""] {
            let result = check(|o| set_perf(o, "status", json!(bad)));
            assert_err(
                result.clone(),
                Some("performance.status"),
                &ValidationErrorKind::InvalidValue { expected: STATUSES },
            );
            assert_eq!(
                result.unwrap_err().to_string(),
                "field `performance.status`: invalid value, expected one of success, error, panic, cancelled"
            );
        }
    }

    #[test]
    fn extra_performance_members_are_allowed() {
        assert_eq!(check(|o| set_perf(o, "retries", json!(2))), Ok(()));
    }

    #[test]
    fn unexpected_top_level_field() {
        let result = check(|o| {
            o.insert("extra".to_owned(), json!(1));
        });
        assert_err(
            result.clone(),
            Some("extra"),
            &ValidationErrorKind::Unexpected,
        );
        assert_eq!(result.unwrap_err().to_string(), "unexpected field `extra`");
    }

    #[test]
    fn first_problem_in_field_order_wins() {
        let result = check(|o| {
            o["level"] = json!("nope");
            o.remove("service");
            o["timestamp"] = json!(0);
        });
        assert_err(
            result,
            Some("timestamp"),
            &ValidationErrorKind::WrongType {
                expected: "a string",
            },
        );
    }

    #[test]
    fn error_is_std_error() {
        fn takes_error(_: &dyn std::error::Error) {}
        let err = LogValidator::validate_line("x").unwrap_err();
        takes_error(&err);
        let parse = std::error::Error::source(&err)
            .and_then(|e| e.downcast_ref::<serde_json::Error>())
            .expect("the parser's error is the source");
        assert!(parse.is_syntax());
        assert!(std::error::Error::source(&wrong_type("level", "a string")).is_none());
    }

    /// Builds a line with the crate's own writer primitives, the way the log
    /// layer does, including hostile strings and non-finite-free numbers.
    #[test]
    fn lines_from_the_writer_primitives_validate() {
        use super::super::timestamp;
        use crate::base::json as w;
        use std::time::{Duration, SystemTime, UNIX_EPOCH};

        let hostile = [
            "plain",
            "quote\" backslash\\ newline\n cr\r tab\t nul\u{0} del\u{7f}",
            "line\u{2028}para\u{2029}",
            "}\n{\"level\":\"ERROR\"}",
            "😀",
            "",
        ];
        let times = [
            UNIX_EPOCH,
            UNIX_EPOCH - Duration::from_secs(5),
            UNIX_EPOCH + Duration::from_micros(1_796_001_729_123_456),
            SystemTime::now(),
        ];
        for (i, (text, t)) in hostile
            .iter()
            .cycle()
            .zip(times.iter().cycle())
            .take(24)
            .enumerate()
        {
            let mut line = String::new();
            line.push_str("{\"timestamp\":\"");
            timestamp::write_rfc3339_micros(&mut line, *t);
            line.push_str("\",\"level\":");
            w::write_escaped(
                &mut line,
                ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"][i % 5],
            );
            line.push_str(",\"service\":");
            w::write_escaped(&mut line, text);
            line.push_str(",\"message\":\"");
            {
                use std::fmt::Write as _;
                write!(
                    w::BoundedEscaper::new(&mut line, usize::MAX),
                    "{text:?} {i}"
                )
                .unwrap();
            }
            line.push_str("\",\"correlation_id\":");
            w::write_escaped_bytes(&mut line, b"req_\xff\xfe");
            line.push_str(",\"context\":{");
            w::write_escaped(&mut line, text);
            line.push(':');
            w::write_u64(&mut line, u64::MAX);
            line.push(',');
            w::write_escaped(&mut line, "neg");
            line.push(':');
            w::write_i64(&mut line, i64::MIN);
            line.push(',');
            w::write_escaped(&mut line, "nan");
            line.push(':');
            w::write_f64(&mut line, f64::NAN);
            line.push(',');
            w::write_escaped(&mut line, "ok");
            line.push(':');
            w::write_bool(&mut line, i % 2 == 0);
            line.push_str("},\"performance\":{\"duration_ms\":");
            w::write_f64(&mut line, [0.0, 0.412, 1.0, 1e21, 5e-324][i % 5]);
            line.push_str(",\"operation\":");
            w::write_escaped(&mut line, w::truncate_at_char_boundary(text, 3));
            line.push_str(",\"status\":");
            w::write_escaped(&mut line, ["success", "error", "panic", "cancelled"][i % 4]);
            line.push_str("}}\n");

            assert_eq!(LogValidator::validate_line(&line), Ok(()), "{line}");
            let value: Value = serde_json::from_str(&line).unwrap();
            assert_eq!(value["service"], json!(text));
        }
    }
}
