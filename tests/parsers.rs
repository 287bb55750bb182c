//! Property tests of the parsers and encoders that see untrusted input:
//! `traceparent`, `X-Correlation-ID`, the InfluxDB line protocol and the
//! request heads the `/metrics` listener reads. Each holds over arbitrary
//! bytes and strings: no panic, output bounded by the input, and what is
//! accepted reads back the same.
//!
//! The `OBSERVE_*` values are covered next to their parser, by the
//! property tests at the end of `observe-runtime/src/builder/env.rs`.

use http::{HeaderMap, HeaderName, HeaderValue};
use observe::CorrelationId;
use observe::correlation::MAX_LEN;
use observe::correlation::http::{Propagator, Source, TraceParent};
use observe::metrics::line_protocol::{Error, FieldValue, Point};
use proptest::prelude::*;

/// Arbitrary bytes, as a header value would bring them.
fn bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..300)
}

/// Strings near a valid `traceparent`: right length and separators, some
/// characters anything from the spec's alphabet and around it.
fn near_traceparent() -> impl Strategy<Value = String> {
    "[ \t]?[0-9a-fA-F]{2}-[0-9a-gA-F]{32}-[0-9a-fA-F]{16}-[0-9a-f]{2}(-[ -~]{0,8})?[ \t]?"
}

/// Strings near a valid correlation ID.
fn near_id() -> impl Strategy<Value = String> {
    "[A-Za-z0-9._:\\- /\"\u{e9}]{0,140}"
}

fn allowed_id_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-')
}

/// What [`CorrelationId`]'s `FromStr` promises to accept.
fn valid_id(s: &str) -> bool {
    (1..=MAX_LEN).contains(&s.len()) && s.bytes().all(allowed_id_byte)
}

fn check_traceparent(s: &str) -> Result<(), TestCaseError> {
    let Some(tp) = TraceParent::parse(s) else {
        return Ok(());
    };
    prop_assert!(tp.trace_id != 0 && tp.parent_id != 0);
    let trimmed = s.trim_matches([' ', '\t']);
    // Accepted text is the spec's: lowercase hex, and for version 00
    // exactly what the value prints back as.
    prop_assert!(trimmed.is_ascii());
    if trimmed.starts_with("00") {
        prop_assert_eq!(tp.to_string(), trimmed);
    } else {
        prop_assert_eq!(&tp.to_string()[3..], &trimmed[3..55]);
    }
    let id = tp.correlation_id().to_string();
    prop_assert_eq!(id.len(), 32);
    prop_assert!(valid_id(&id));
    Ok(())
}

proptest! {
    #[test]
    fn traceparent_parses_arbitrary_strings_without_panicking(s in any::<String>()) {
        check_traceparent(&s)?;
    }

    #[test]
    fn traceparent_parses_arbitrary_bytes_without_panicking(b in bytes()) {
        check_traceparent(&String::from_utf8_lossy(&b))?;
    }

    #[test]
    fn traceparent_accepts_only_the_spec_form_near_it(s in near_traceparent()) {
        check_traceparent(&s)?;
        let t = s.trim_matches([' ', '\t']);
        let lower_hex = |p: &str| p.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c));
        let spec = t.len() >= 55
            && lower_hex(&t[0..2])
            && &t[0..2] != "ff"
            && lower_hex(&t[3..35])
            && lower_hex(&t[36..52])
            && lower_hex(&t[53..55])
            && (if &t[0..2] == "00" { t.len() == 55 } else { t.len() == 55 || t.as_bytes()[55] == b'-' })
            && t[3..35].bytes().any(|c| c != b'0')
            && t[36..52].bytes().any(|c| c != b'0');
        prop_assert_eq!(TraceParent::parse(&s).is_some(), spec, "{:?}", s);
    }

    #[test]
    fn traceparent_round_trips(trace_id in 1..=u128::MAX, parent_id in 1..=u64::MAX, flags in any::<u8>()) {
        let tp = TraceParent { trace_id, parent_id, flags };
        prop_assert_eq!(TraceParent::parse(&tp.to_string()), Some(tp));
    }

    #[test]
    fn correlation_ids_accept_exactly_the_documented_alphabet(s in near_id()) {
        let parsed = s.parse::<CorrelationId>();
        prop_assert_eq!(parsed.is_ok(), valid_id(&s), "{:?}", s);
        if let Ok(id) = parsed {
            prop_assert_eq!(id.to_string(), s.clone());
            // JSON reads back exactly what `FromStr` accepts.
            let json = serde_json::to_string(&id).expect("serialise");
            let back: CorrelationId = serde_json::from_str(&json).expect("deserialise");
            prop_assert_eq!(back, id);
        }
    }

    #[test]
    fn correlation_ids_from_arbitrary_strings_never_panic(s in any::<String>()) {
        let parsed = s.parse::<CorrelationId>();
        prop_assert_eq!(parsed.is_ok(), valid_id(&s));
        if let Err(e) = parsed {
            // The error text is bounded and never echoes the input.
            let text = e.to_string();
            prop_assert!(text.len() < 200);
        }
    }

    #[test]
    fn extraction_from_arbitrary_header_bytes_yields_a_valid_id(
        id in bytes(),
        tp in bytes(),
        other_header in proptest::option::of(bytes()),
    ) {
        let mut headers = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_bytes(&id) {
            headers.insert("x-correlation-id", v);
        }
        if let Ok(v) = HeaderValue::from_bytes(&tp) {
            headers.insert("traceparent", v);
        }
        let propagator = match other_header {
            Some(name) => match HeaderName::from_bytes(&name) {
                Ok(name) => Propagator::new(name),
                Err(_) => Propagator::default(),
            },
            None => Propagator::default(),
        };
        let (got, source) = propagator.extract_with_source(&headers);
        let text = got.to_string();
        prop_assert!(valid_id(&text), "{:?}", text);
        if source == Source::Header {
            let sent = headers.get(propagator.header()).map(HeaderValue::as_bytes);
            prop_assert_eq!(sent, Some(text.as_bytes()));
        }
        // Outbound headers are always valid again.
        let mut out = HeaderMap::new();
        propagator.inject_id(&got, &mut out);
        let sent = out[propagator.header()].to_str().expect("visible ASCII");
        prop_assert_eq!(sent, text.as_str());
        let tp = out["traceparent"].to_str().expect("visible ASCII");
        prop_assert!(TraceParent::parse(tp).is_some(), "{}", tp);
    }
}

/// A line-protocol reader following InfluxDB 1.x's `models/points.go`,
/// the parser InfluxDB 1.x and 2.x accept writes with: where a part ends
/// and how it is unescaped.
mod influx {
    /// A point as read back: measurement, tags, fields (raw value text,
    /// strings unescaped and quoted), timestamp.
    #[derive(Debug, PartialEq)]
    pub(crate) struct Read {
        pub(crate) measurement: String,
        pub(crate) tags: Vec<(String, String)>,
        pub(crate) fields: Vec<(String, String)>,
        pub(crate) timestamp: Option<String>,
    }

    /// The `skipWhitespace` of the reader: spaces, tabs and NULs.
    fn skip_whitespace(b: &[u8], mut i: usize) -> usize {
        while i < b.len() && matches!(b[i], b' ' | b'\t' | 0) {
            i += 1;
        }
        i
    }

    /// Ends at the first of `stops` whose previous byte is not `\`
    /// (measurements and tags: the reader looks one byte back).
    fn scan_looking_back(b: &[u8], start: usize, stops: &[u8]) -> usize {
        let mut i = start;
        while i < b.len() {
            if stops.contains(&b[i]) && !(i > start && b[i - 1] == b'\\') {
                break;
            }
            i += 1;
        }
        i
    }

    /// Ends at the first of `stops` outside a `\` pair (field keys).
    fn scan_pairs(b: &[u8], start: usize, stops: &[u8]) -> usize {
        let mut i = start;
        while i < b.len() {
            if b[i] == b'\\' && i + 1 < b.len() {
                i += 2;
                continue;
            }
            if stops.contains(&b[i]) {
                break;
            }
            i += 1;
        }
        i.min(b.len())
    }

    /// Replaces `\c` by `c` for each `c` of `codes`, left to right.
    fn unescape(b: &[u8], codes: &[u8]) -> String {
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'\\' && i + 1 < b.len() && codes.contains(&b[i + 1]) {
                out.push(b[i + 1]);
                i += 2;
            } else {
                out.push(b[i]);
                i += 1;
            }
        }
        String::from_utf8(out).expect("unescaping keeps UTF-8")
    }

    /// Reads one line; `None` for a comment or a line the reader refuses.
    pub(crate) fn read(line: &str) -> Option<Read> {
        let b = line.as_bytes();
        let start = skip_whitespace(b, 0);
        if start >= b.len() || b[start] == b'#' {
            return None;
        }
        let end = scan_looking_back(b, start, b", ");
        let measurement = unescape(&b[start..end], b", ");
        let mut i = end;
        let mut tags = Vec::new();
        while i < b.len() && b[i] == b',' {
            let k_end = scan_looking_back(b, i + 1, b"=");
            let key = unescape(&b[i + 1..k_end], b",= ");
            if k_end >= b.len() {
                return None;
            }
            let v_end = scan_looking_back(b, k_end + 1, b", ");
            tags.push((key, unescape(&b[k_end + 1..v_end], b",= ")));
            i = v_end;
        }
        if i >= b.len() {
            return None;
        }
        i = skip_whitespace(b, i);
        let mut fields = Vec::new();
        loop {
            let k_end = scan_pairs(b, i, b"=");
            if k_end >= b.len() {
                return None;
            }
            let key = unescape(&b[i..k_end], b",= \"");
            let v_start = k_end + 1;
            let (value, v_end) = if b.get(v_start) == Some(&b'"') {
                let mut j = v_start + 1;
                while j < b.len() {
                    if b[j] == b'\\' && j + 1 < b.len() && matches!(b[j + 1], b'"' | b'\\') {
                        j += 2;
                        continue;
                    }
                    if b[j] == b'"' {
                        break;
                    }
                    j += 1;
                }
                if j >= b.len() {
                    return None;
                }
                let s = unescape(&b[v_start + 1..j], b"\"\\");
                (format!("\"{s}\""), j + 1)
            } else {
                let e = scan_pairs(b, v_start, b", ");
                (line.get(v_start..e)?.to_owned(), e)
            };
            fields.push((key, value));
            i = v_end;
            match b.get(i) {
                Some(b',') => i += 1,
                Some(b' ') => break,
                None => {
                    return Some(Read {
                        measurement,
                        tags,
                        fields,
                        timestamp: None,
                    });
                }
                Some(_) => return None,
            }
        }
        Some(Read {
            measurement,
            tags,
            fields,
            timestamp: Some(line.get(i + 1..)?.to_owned()),
        })
    }
}

/// One of each kind of field value, from arbitrary parts.
fn field_value() -> impl Strategy<Value = (Option<String>, FieldKind)> {
    prop_oneof![
        any::<String>().prop_map(|s| (Some(s), FieldKind::String)),
        any::<i64>().prop_map(|n| (Some(n.to_string()), FieldKind::Integer)),
        any::<f64>().prop_map(|f| (Some(f.to_string()), FieldKind::Float)),
        any::<bool>().prop_map(|b| (Some(b.to_string()), FieldKind::Boolean)),
    ]
}

#[derive(Debug, Clone, Copy)]
enum FieldKind {
    String,
    Integer,
    Float,
    Boolean,
}

/// Strings rich in the characters line protocol treats specially.
fn lp_text() -> impl Strategy<Value = String> {
    prop_oneof!["[a-c ,=\"\\\\#\t\u{0}\n\r\u{e9}]{0,12}", any::<String>(),]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn line_protocol_writes_one_line_that_reads_back_the_same(
        measurement in lp_text(),
        tags in proptest::collection::vec((lp_text(), lp_text()), 0..4),
        fields in proptest::collection::vec((lp_text(), field_value()), 0..4),
        timestamp in proptest::option::of(any::<i64>()),
    ) {
        let values: Vec<(String, FieldValue<'_>)> = fields
            .iter()
            .map(|(k, (v, kind))| {
                let v = v.as_deref().unwrap_or_default();
                let value = match kind {
                    FieldKind::String => FieldValue::String(v),
                    FieldKind::Integer => FieldValue::Integer(v.parse().expect("integer")),
                    FieldKind::Float => FieldValue::Float(v.parse().expect("float")),
                    FieldKind::Boolean => FieldValue::Boolean(v == "true"),
                };
                (k.clone(), value)
            })
            .collect();
        let mut point = Point::new(&measurement);
        for (k, v) in &tags {
            point = point.tag(k, v);
        }
        for (k, v) in &values {
            point = point.field(k, *v);
        }
        if let Some(ts) = timestamp {
            point = point.timestamp(ts);
        }
        let mut out = String::from("kept");
        let line = match point.write_to(&mut out) {
            Ok(()) => out["kept".len()..].to_owned(),
            Err(e) => {
                // Refused points leave nothing behind, and say why in a
                // bounded text.
                prop_assert_eq!(out, "kept");
                prop_assert!(e.to_string().len() < 200 + measurement.len() + fields.iter().map(|f| f.0.len()).sum::<usize>());
                if let Error::NonFinite { .. } = e {
                    prop_assert!(values.iter().any(|(_, v)| matches!(v, FieldValue::Float(f) if !f.is_finite())));
                }
                return Ok(());
            }
        };
        // One line, at most twice its parts plus separators and numbers.
        prop_assert!(!line.contains(['\n', '\r']), "{:?}", line);
        let parts: usize = measurement.len()
            + tags.iter().map(|(k, v)| k.len() + v.len() + 2).sum::<usize>()
            + fields.iter().map(|(k, (v, _))| k.len() + v.as_ref().map_or(0, String::len) + 4).sum::<usize>();
        prop_assert!(line.len() <= 2 * parts + 64, "{} for {} bytes of parts", line.len(), parts);

        let read = influx::read(&line);
        prop_assert!(read.is_some(), "unreadable: {:?}", line);
        let read = read.expect("checked");
        prop_assert_eq!(&read.measurement, &measurement, "{:?}", line);
        let mut want_tags: Vec<(String, String)> = tags
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .cloned()
            .collect();
        want_tags.sort_by(|a, b| a.0.cmp(&b.0));
        prop_assert_eq!(&read.tags, &want_tags, "{:?}", line);
        let want_fields: Vec<(String, String)> = values
            .iter()
            .map(|(k, v)| {
                let text = match v {
                    FieldValue::String(s) => format!("\"{s}\""),
                    FieldValue::Integer(n) => format!("{n}i"),
                    FieldValue::Float(f) => f.to_string(),
                    FieldValue::Boolean(b) => b.to_string(),
                };
                (k.clone(), text)
            })
            .collect();
        prop_assert_eq!(&read.fields, &want_fields, "{:?}", line);
        prop_assert_eq!(read.timestamp, timestamp.map(|t| t.to_string()));
    }
}

/// One `/metrics` listener shared by the request-head cases.
fn listener() -> std::net::SocketAddr {
    use std::sync::OnceLock;
    static ADDR: OnceLock<std::net::SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| {
        let bound = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let server = observe::metrics::MetricsListener::serve(bound, || "up 1\n".to_owned())
            .expect("listener");
        let addr = server.local_addr();
        // Serves for the rest of the test binary.
        std::mem::forget(server);
        addr
    })
}

/// Sends `raw` as a request head and reads the whole answer.
fn ask(raw: &[u8]) -> Result<Vec<u8>, TestCaseError> {
    use std::io::{Read, Write};
    let mut c =
        std::net::TcpStream::connect(listener()).map_err(|e| TestCaseError::fail(e.to_string()))?;
    c.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    // The listener may answer and close before reading everything.
    let _ = c.write_all(raw);
    let _ = c.shutdown(std::net::Shutdown::Write);
    let mut answer = Vec::new();
    let _ = c.read_to_end(&mut answer);
    Ok(answer)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    /// Arbitrary bytes as a request head, ended or not: the listener
    /// answers with one bounded HTTP response or closes, and keeps
    /// serving scrapes.
    #[test]
    fn any_request_head_gets_one_bounded_answer(
        head in proptest::collection::vec(any::<u8>(), 0..2048),
        end in any::<bool>(),
    ) {
        let mut raw = head;
        if end {
            raw.extend_from_slice(b"\r\n\r\n");
        }
        let answer = ask(&raw)?;
        prop_assert!(answer.len() < 4096, "{} bytes", answer.len());
        prop_assert!(
            answer.is_empty() || answer.starts_with(b"HTTP/1.1 "),
            "{:?}",
            String::from_utf8_lossy(&answer)
        );
        let ok = ask(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")?;
        prop_assert!(ok.starts_with(b"HTTP/1.1 200 OK") && ok.ends_with(b"up 1\n"));
    }
}
