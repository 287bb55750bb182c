//! The line-protocol encoder against a real InfluxDB 1.6: for arbitrary
//! tag keys, tag values, field keys and string values, the line is either
//! refused by the encoder for a documented reason, or accepted by the
//! server (no 400) and read back equal.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::common::{create_database, influxql, post};
use crate::support::Service;
use observe::metrics::line_protocol::{Error, FieldValue, Point};
use proptest::prelude::*;

const DB: &str = "lp";

/// Strings rich in what line protocol must escape or cannot hold.
fn text() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            3 => proptest::char::range('a', 'z'),
            1 => proptest::char::range('A', 'Z'),
            1 => proptest::char::range('0', '9'),
            6 => proptest::sample::select(vec![
                ' ', ',', '=', '"', '\\', '\'', '#', '_', '-', '\t', '\n', '\r', 'é', '✓', '😀',
            ]),
        ],
        1..12,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

/// Why the encoder may refuse a string in a part, per its documentation.
fn refusable(s: &str, field_key: bool) -> bool {
    let backslash_before = |specials: &[u8]| {
        s.as_bytes()
            .windows(2)
            .any(|w| w[0] == b'\\' && specials.contains(&w[1]))
    };
    s == "time"
        || s.contains(['\n', '\r'])
        || s.ends_with('\\')
        || (field_key && backslash_before(b", =\""))
}

#[test]
fn arbitrary_tags_and_strings_are_accepted_and_read_back_equal() {
    let Some(influx) = Service::start_or_skip("influxdb", &[]) else {
        return;
    };
    create_database(&influx.url(), DB);
    let write_url = format!("{}/write?db={DB}&precision=ms", influx.url());
    let case = AtomicU64::new(0);

    let config = ProptestConfig {
        // PROPTEST_CASES explores further; CI keeps the default.
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(128),
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(tag_key in text(), tag_value in text(), field_key in text(), value in text())| {
        // Names the point needs for itself.
        prop_assume!(!["case", "n"].contains(&tag_key.as_str()));
        prop_assume!(!["case", "n"].contains(&field_key.as_str()) && field_key != tag_key);

        let n = case.fetch_add(1, Ordering::Relaxed).to_string();
        // A measurement per case: a key that is a tag in one point and a
        // field in another of the same measurement reads back renamed.
        let measurement = format!("roundtrip_{n}");
        let point = Point::new(&measurement)
            .tag("case", &n)
            .tag(&tag_key, &tag_value)
            .field("n", FieldValue::Integer(1))
            .field(&field_key, FieldValue::String(&value))
            .timestamp(1_700_000_000_000);
        let line = match point.to_line() {
            Ok(line) => line,
            Err(e) => {
                let justified = match &e {
                    Error::ReservedKey => tag_key == "time" || field_key == "time",
                    // InfluxDB skips these before a field key.
                    Error::LeadingBlank { .. } => field_key.starts_with(['\t', '\0']),
                    Error::LineBreak { .. } | Error::Backslash { .. } => {
                        refusable(&tag_key, false)
                            || refusable(&tag_value, false)
                            || refusable(&field_key, true)
                            || value.contains(['\n', '\r'])
                    }
                    _ => false,
                };
                prop_assert!(justified, "refused without reason: {e} for {tag_key:?}={tag_value:?} {field_key:?}");
                return Ok(());
            }
        };

        let (status, body) = post(&write_url, line.as_bytes(), &[]).map_err(TestCaseError::fail)?;
        prop_assert_eq!(status, 204, "{} for {:?}", body, line);

        let series = influxql(
            &influx.url(),
            DB,
            &format!(r#"SELECT * FROM "{measurement}""#),
        )
        .map_err(TestCaseError::fail)?;
        prop_assert_eq!(series.len(), 1, "{:?} for {:?}", series, line);
        let columns: Vec<&str> = series[0]["columns"]
            .as_array()
            .map(|c| c.iter().filter_map(|v| v.as_str()).collect())
            .unwrap_or_default();
        let row = &series[0]["values"][0];
        let column = |name: &str| columns.iter().position(|c| *c == name).map(|i| &row[i]);
        prop_assert_eq!(column(&tag_key).and_then(|v| v.as_str()), Some(tag_value.as_str()), "{:?}", series);
        prop_assert_eq!(column(&field_key).and_then(|v| v.as_str()), Some(value.as_str()), "{:?}", series);
        prop_assert_eq!(column("n").and_then(serde_json::Value::as_i64), Some(1));
    });
}
