//! Percent-decoding (RFC 3986), for URL user information and the values
//! of `OTEL_RESOURCE_ATTRIBUTES`.

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

#[cfg(test)]
mod tests {
    use super::decode;

    #[test]
    fn escapes_decode_and_bad_ones_are_refused() {
        assert_eq!(decode("p%40ss%2C%41").as_deref(), Some("p@ss,A"));
        assert_eq!(decode("plain").as_deref(), Some("plain"));
        for bad in ["%zz", "%4", "%", "%ff%fe", "%+1"] {
            assert_eq!(decode(bad), None, "{bad}");
        }
    }
}
