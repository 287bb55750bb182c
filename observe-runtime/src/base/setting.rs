//! What the `OBSERVE_*` and `OTEL_*` variables share: how a yes/no value
//! is spelled, and how an error may quote a bad value.

/// `true`/`1`/`yes`/`on` or `false`/`0`/`no`/`off`, in any case.
pub(crate) fn boolean(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// How much of a value an error may show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shown {
    /// A token or header: nothing of it.
    Secret,
    /// Anything else: at most a line of it (a URL is masked by its
    /// caller, with `net::http::mask_url`).
    Plain,
}

/// `raw` as an error may quote it.
pub(crate) fn shown(raw: &str, kind: Shown) -> String {
    const MAX: usize = 200;
    match kind {
        Shown::Secret => "***".to_owned(),
        Shown::Plain if raw.len() > MAX => {
            format!("{}…", super::json::truncate_at_char_boundary(raw, MAX))
        }
        Shown::Plain => raw.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_quoted_without_secrets_or_length() {
        assert_eq!(shown("k-123", Shown::Secret), "***");
        let long = "é".repeat(150);
        let cut = shown(&long, Shown::Plain);
        assert!(cut.ends_with('…') && cut.len() <= 200 + '…'.len_utf8());
        assert_eq!(shown("short", Shown::Plain), "short");
        assert_eq!(
            (boolean("ON"), boolean("0"), boolean("maybe")),
            (Some(true), Some(false), None)
        );
    }
}
