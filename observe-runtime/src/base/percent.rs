//! Percent-decoding (RFC 3986), for URL user information, and the
//! `key=value` lists of `OTEL_RESOURCE_ATTRIBUTES` and
//! `OTEL_EXPORTER_OTLP_HEADERS` (values percent-encoded, as the
//! OpenTelemetry SDK environment specification has them).

/// `text` with each `%XX` replaced by its byte; `None` if an escape is not
/// two hex digits or the bytes are not UTF-8.
pub(crate) fn decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let digit = |k: usize| char::from(*bytes.get(i + k)?).to_digit(16);
            // `to_digit` takes hex digits only (`from_str_radix` would
            // also take a sign); both fit in a byte.
            #[allow(clippy::cast_possible_truncation)]
            out.push((digit(1)? * 16 + digit(2)?) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The comma-separated `key=value` pairs of `text`, keys trimmed and
/// values decoded; `Err` names what is wrong.
pub(crate) fn pairs(text: &str) -> Result<Vec<(String, String)>, &'static str> {
    text.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair
                .split_once('=')
                .ok_or("comma-separated key=value pairs")?;
            let k = k.trim();
            if k.is_empty() {
                return Err("comma-separated key=value pairs with non-empty keys");
            }
            let v = decode(v.trim()).ok_or("key=value pairs with valid percent-encoding")?;
            Ok((k.to_owned(), v))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_split_trimmed_and_decoded() {
        assert_eq!(
            pairs("service.version=1.2.3, deployment.environment=prod%2Ceu ,").unwrap(),
            vec![
                ("service.version".to_owned(), "1.2.3".to_owned()),
                ("deployment.environment".to_owned(), "prod,eu".to_owned()),
            ]
        );
        for bad in ["novalue", "=x", "a=%zz", "a=%4", "a=%ff%fe"] {
            assert!(pairs(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn escapes_decode_and_bad_ones_are_refused() {
        assert_eq!(decode("p%40ss%2C%41").as_deref(), Some("p@ss,A"));
        assert_eq!(decode("plain").as_deref(), Some("plain"));
        for bad in ["%zz", "%4", "%", "%ff%fe", "%+1"] {
            assert_eq!(decode(bad), None, "{bad}");
        }
    }
}
