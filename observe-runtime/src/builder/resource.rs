//! `OTEL_RESOURCE_ATTRIBUTES`: `key=value` pairs, comma-separated, values
//! percent-encoded (the OpenTelemetry SDK environment specification).

/// The pairs of `text`, values decoded; `Err` names what is wrong.
pub(crate) fn parse(text: &str) -> Result<Vec<(String, String)>, &'static str> {
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
            let v = crate::base::percent::decode(v.trim())
                .ok_or("key=value pairs with valid percent-encoding")?;
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
            parse("service.version=1.2.3, deployment.environment=prod%2Ceu ,").unwrap(),
            vec![
                ("service.version".to_owned(), "1.2.3".to_owned()),
                ("deployment.environment".to_owned(), "prod,eu".to_owned()),
            ]
        );
    }

    #[test]
    fn malformed_text_is_an_error() {
        for bad in ["novalue", "=x", "a=%zz", "a=%4", "a=%ff%fe"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
