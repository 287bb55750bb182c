//! Redaction of secret-looking fields before they reach a log line.
//!
//! Redaction is decided by the field *name*, not its value: values cannot be
//! classified reliably, while names like `password` or `X-Api-Key` are a
//! strong, cheap signal. The check runs for every recorded field, so it must
//! not allocate for ordinary key lengths.

/// Replacement text written instead of the value of a secret field.
pub const REDACTED: &str = "[REDACTED]";

/// Patterns used by [`Redactor::default`], already normalised.
const DEFAULT_PATTERNS: [&str; 9] = [
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "authorization",
    "cookie",
    "private_key",
];

/// Keys up to this many bytes are normalised on the stack.
///
/// Longer keys are compared byte-by-byte with on-the-fly normalisation instead,
/// which is slower but still does not allocate.
const STACK_KEY_LEN: usize = 64;

/// Decides which field names hold secrets whose values must be replaced by
/// [`REDACTED`].
///
/// A key is secret if, after normalisation, it contains any pattern as a
/// substring. Normalisation lowercases ASCII letters and maps `-` and space to
/// `_`, and is applied to both keys and patterns, so with the default patterns
/// `X-Api-Key`, `db_password`, `Authorization` and `session.cookie` are all
/// secret. Case folding is ASCII-only: non-ASCII characters must match exactly.
///
/// Substring matching errs on the side of redacting: `tokenizer` or
/// `secretary` match `token` and `secret`. Losing a harmless value from a log
/// is cheap; leaking a credential is not. Use [`Redactor::new`] to supply a
/// narrower list if that matters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redactor {
    /// Normalised, non-empty, de-duplicated patterns.
    patterns: Vec<Box<str>>,
}

impl Default for Redactor {
    /// The built-in patterns: `password`, `passwd`, `secret`, `token`,
    /// `api_key`, `apikey`, `authorization`, `cookie` and `private_key`.
    fn default() -> Self {
        Self::new(DEFAULT_PATTERNS)
    }
}

impl Redactor {
    /// Creates a redactor that uses exactly `patterns`, replacing the defaults.
    ///
    /// Patterns are normalised like keys (ASCII lowercase, `-` and space become
    /// `_`). Empty patterns are ignored, because they would match every key.
    pub fn new<I, S>(patterns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut redactor = Self {
            patterns: Vec::new(),
        };
        for pattern in patterns {
            redactor.add(pattern.as_ref());
        }
        redactor
    }

    /// Adds `pattern` to the current list.
    ///
    /// Normalised like in [`Redactor::new`]; empty patterns are ignored.
    #[must_use]
    pub fn with_pattern<S: AsRef<str>>(mut self, pattern: S) -> Self {
        self.add(pattern.as_ref());
        self
    }

    /// Returns whether values of the field named `key` must be redacted.
    ///
    /// Does not allocate.
    #[must_use]
    pub fn is_secret(&self, key: &str) -> bool {
        let key = key.as_bytes();
        if key.len() <= STACK_KEY_LEN {
            // Normalise once, then plain slice comparisons per pattern.
            let mut buf = [0u8; STACK_KEY_LEN];
            let normalised = &mut buf[..key.len()];
            for (dst, &src) in normalised.iter_mut().zip(key) {
                *dst = normalise_byte(src);
            }
            let normalised = &*normalised;
            self.patterns
                .iter()
                .any(|p| contains(normalised, p.as_bytes(), |b| b))
        } else {
            self.patterns
                .iter()
                .any(|p| contains(key, p.as_bytes(), normalise_byte))
        }
    }

    /// Normalises and stores `pattern` unless it is empty or already present.
    fn add(&mut self, pattern: &str) {
        let normalised: Box<str> = pattern.chars().map(normalise_char).collect();
        if !normalised.is_empty() && !self.patterns.contains(&normalised) {
            self.patterns.push(normalised);
        }
    }
}

/// Normalises one key byte: ASCII lowercase, `-` and space become `_`.
///
/// Non-ASCII bytes are returned unchanged, so a normalised valid UTF-8 string
/// stays valid UTF-8 and byte-wise matching stays consistent with
/// [`normalise_char`].
fn normalise_byte(b: u8) -> u8 {
    match b {
        b'-' | b' ' => b'_',
        _ => b.to_ascii_lowercase(),
    }
}

/// [`normalise_byte`] for patterns, which are normalised char by char.
fn normalise_char(c: char) -> char {
    match c {
        '-' | ' ' => '_',
        _ => c.to_ascii_lowercase(),
    }
}

/// Returns whether `needle` occurs in `haystack` after mapping each haystack
/// byte through `map`.
///
/// Naive search is fine here: keys and patterns are a few dozen bytes.
fn contains(haystack: &[u8], needle: &[u8], map: impl Fn(u8) -> u8) -> bool {
    // `windows(0)` would panic; an empty needle trivially matches.
    if needle.is_empty() {
        return true;
    }
    haystack
        .windows(needle.len())
        .any(|window| window.iter().zip(needle).all(|(&h, &n)| map(h) == n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_patterns_match_common_secret_keys() {
        let r = Redactor::default();
        for key in [
            "password",
            "PASSWORD",
            "db_password",
            "dbPassword",
            "passwd",
            "client_secret",
            "Secret",
            "token",
            "access_token",
            "refreshToken",
            "api_key",
            "api-key",
            "API KEY",
            "X-Api-Key",
            "x_api_key",
            "apikey",
            "ApiKey",
            "Authorization",
            "proxy-authorization",
            "cookie",
            "Set-Cookie",
            "session.cookie",
            "private_key",
            "Private-Key",
            "ssh private key",
        ] {
            assert!(r.is_secret(key), "{key} should be secret");
        }
    }

    #[test]
    fn ordinary_keys_are_not_secret() {
        let r = Redactor::default();
        for key in [
            "",
            "entity_id",
            "user",
            "username",
            "duration_ms",
            "api",
            "key",
            "pass",
            "auth",
            "private",
            "api.key",
            "api_ke",
            "ΠASSWORD",
        ] {
            assert!(!r.is_secret(key), "{key} should not be secret");
        }
    }

    #[test]
    fn substring_matching_is_deliberately_broad() {
        let r = Redactor::default();
        assert!(r.is_secret("tokenizer"));
        assert!(r.is_secret("secretary"));
    }

    #[test]
    fn new_replaces_the_defaults() {
        let r = Redactor::new(["ssn", "Credit-Card"]);
        assert!(r.is_secret("user_SSN"));
        assert!(r.is_secret("credit card"));
        assert!(r.is_secret("CREDIT_CARD_NUMBER"));
        assert!(!r.is_secret("password"));

        let none = Redactor::new(Vec::<String>::new());
        assert!(!none.is_secret("password"));
        assert!(!none.is_secret(""));
    }

    #[test]
    fn with_pattern_adds() {
        let r = Redactor::default()
            .with_pattern("SSN")
            .with_pattern(String::from("pin-code"));
        assert!(r.is_secret("ssn"));
        assert!(r.is_secret("Pin Code"));
        assert!(r.is_secret("password"));
    }

    #[test]
    fn empty_and_duplicate_patterns_are_ignored() {
        let r = Redactor::new(["", "token", "TOKEN", "to-ken"]).with_pattern("");
        assert_eq!(r.patterns.len(), 2);
        assert!(!r.is_secret("entity_id"));
        assert!(r.is_secret("to ken"));
    }

    #[test]
    fn non_ascii_is_matched_exactly() {
        let r = Redactor::new(["pässwort"]);
        assert!(r.is_secret("mein_PäSSWORT"));
        assert!(r.is_secret("Pässwort"));
        assert!(!r.is_secret("PÄSSWORT"));
    }

    #[test]
    fn long_keys_use_the_same_rules() {
        let r = Redactor::default();
        let padding = "x".repeat(STACK_KEY_LEN);
        for (key, secret) in [
            ("X-Api-Key", true),
            ("session.cookie", true),
            ("entity_id", false),
            ("pass word", false),
        ] {
            for long in [
                format!("{padding}{key}"),
                format!("{key}{padding}"),
                format!("{padding}-{key}-{padding}"),
            ] {
                assert!(long.len() > STACK_KEY_LEN);
                assert_eq!(r.is_secret(&long), secret, "{long}");
            }
        }
    }

    #[test]
    fn stack_boundary_lengths_agree() {
        let r = Redactor::default();
        for len in STACK_KEY_LEN - 12..STACK_KEY_LEN + 12 {
            let key = format!("{}API-KEY", "y".repeat(len - 7));
            assert_eq!(key.len(), len);
            assert!(r.is_secret(&key), "len {len}");
            let key = format!("{}API-KEX", "y".repeat(len - 7));
            assert!(!r.is_secret(&key), "len {len}");
        }
    }

    #[test]
    fn redacted_marker() {
        assert_eq!(REDACTED, "[REDACTED]");
    }
}
