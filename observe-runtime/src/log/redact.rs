//! Redaction of secrets before they reach a log line.
//!
//! Two rules, both driven by one list of key patterns:
//!
//! - by *name*: a field whose key looks secret (`password`, `X-Api-Key`,
//!   `privateKey`) is written as [`REDACTED`] whatever its value;
//! - inside *text*: in rendered (`%`/`?`) values, event messages and the
//!   error text of a failed call, the value of a secret-looking
//!   `key=value`, `key: value` or `"key":"value"` pair, the password of a
//!   URL's userinfo and secret query parameters are replaced by
//!   [`REDACTED`].
//!
//! Both run on every line that has fields or rendered values, so the
//! common case (nothing secret) neither allocates nor scans more than once.

use std::ops::Range;

/// Replacement text written instead of the value of a secret field.
pub const REDACTED: &str = "[REDACTED]";

/// Patterns used by [`Redactor::default`], as design.md section 5 lists them.
const DEFAULT_PATTERNS: [&str; 15] = [
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "authorization",
    "bearer",
    "cookie",
    "session",
    "private_key",
    "credentials",
    "dsn",
    "jwt",
];

/// Patterns of at most this many bytes (after normalisation) must lie
/// within one word of a key.
///
/// Normalisation drops separators, so without this rule `dsn` would match
/// `kids_name` (`kidsname`) and `pwd` would match `stop_wdt`: three letters
/// meet across a word boundary far too often. Inside one word they stay
/// caught (`userpwd`, `mysqlDsn`, `jwtToken`); longer patterns may span words,
/// which is what makes `private_key` match `privateKey`.
const SHORT_PATTERN_LEN: usize = 3;

/// Keys up to this many bytes are normalised on the stack; longer ones (rare)
/// in a heap buffer.
const STACK_KEY_LEN: usize = 64;

/// Decides which field names hold secrets whose values must be replaced by
/// [`REDACTED`].
///
/// A key is secret if, after normalisation, it contains any pattern.
/// Normalisation drops the separators `_`, `-`, `.` and space and lowercases
/// ASCII letters, for keys and patterns alike, so with the defaults
/// `X-Api-Key`, `api.key`, `db_password`, `privateKey`, `Private Key`,
/// `sessionId` and `session_id` are all secret. Case folding is ASCII-only:
/// non-ASCII characters must match exactly.
///
/// A pattern of three letters or fewer (`pwd`, `dsn`, `jwt`) must lie within
/// one word of the key, where words are split at separators and at camelCase
/// humps: `dbPwd` and `userpwd` are secret, `kids_name` is not, although
/// dropping the separator would put `dsn` in it.
///
/// Substring matching otherwise errs on the side of redacting: `tokenizer`
/// or `secretary` match `token` and `secret`. Losing a harmless value from a
/// log is cheap; leaking a credential is not.
///
/// The defaults are `password`, `passwd`, `pwd`, `secret`, `token`,
/// `api_key`, `apikey`, `authorization`, `bearer`, `cookie`, `session`,
/// `private_key`, `credentials`, `dsn` and `jwt`. [`Redactor::new`] and
/// [`with_pattern`](Redactor::with_pattern) add to them; only
/// [`Redactor::replacing`] drops them:
///
/// ```
/// use observe_runtime::log::Redactor;
///
/// let r = Redactor::new(["ssn"]);
/// assert!(r.is_secret("user_ssn") && r.is_secret("privateKey"));
///
/// let only = Redactor::replacing(["ssn"]);
/// assert!(only.is_secret("SSN") && !only.is_secret("password"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redactor {
    /// Normalised, non-empty, de-duplicated patterns.
    patterns: Vec<Box<str>>,
}

impl Default for Redactor {
    /// The built-in patterns (see [`Redactor`]).
    fn default() -> Self {
        Self::replacing(DEFAULT_PATTERNS)
    }
}

impl Redactor {
    /// The default patterns plus `patterns`.
    ///
    /// Patterns are normalised like keys (separators dropped, ASCII
    /// lowercase). Empty patterns are ignored, because they would match every
    /// key.
    pub fn new<I, S>(patterns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut redactor = Self::default();
        for pattern in patterns {
            redactor.add(pattern.as_ref());
        }
        redactor
    }

    /// Exactly `patterns`, without the defaults.
    ///
    /// This is the one way to stop redacting `password` and the other
    /// defaults; normalised and filtered like in [`Redactor::new`]. An empty
    /// list redacts nothing.
    ///
    /// ```
    /// use observe_runtime::log::Redactor;
    ///
    /// let r = Redactor::replacing(["ssn", "Credit-Card"]);
    /// assert!(r.is_secret("creditCardNumber"));
    /// assert!(!r.is_secret("password"));
    /// ```
    pub fn replacing<I, S>(patterns: I) -> Self
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
    /// Does not allocate for keys of up to 64 bytes.
    #[must_use]
    pub fn is_secret(&self, key: &str) -> bool {
        let key = key.as_bytes();
        if key.len() <= STACK_KEY_LEN {
            let mut bytes = [0u8; STACK_KEY_LEN];
            let mut starts = [false; STACK_KEY_LEN];
            let len = normalise_key(key, &mut bytes, &mut starts);
            self.matches(&bytes[..len], &starts[..len])
        } else {
            let mut bytes = vec![0u8; key.len()];
            let mut starts = vec![false; key.len()];
            let len = normalise_key(key, &mut bytes, &mut starts);
            self.matches(&bytes[..len], &starts[..len])
        }
    }

    /// Whether a normalised key (with its word starts) holds a pattern.
    fn matches(&self, key: &[u8], starts: &[bool]) -> bool {
        self.patterns.iter().any(|p| {
            let p = p.as_bytes();
            let Some(&first) = p.first() else {
                return false;
            };
            (0..(key.len() + 1).saturating_sub(p.len())).any(|i| {
                key[i] == first
                    && key[i..i + p.len()] == *p
                    && (p.len() > SHORT_PATTERN_LEN || !starts[i + 1..i + p.len()].contains(&true))
            })
        })
    }

    /// Normalises and stores `pattern` unless it is empty or already present.
    fn add(&mut self, pattern: &str) {
        let normalised: Box<str> = pattern
            .chars()
            .filter(|&c| !is_separator_char(c))
            .map(|c| c.to_ascii_lowercase())
            .collect();
        if !normalised.is_empty() && !self.patterns.contains(&normalised) {
            self.patterns.push(normalised);
        }
    }

    /// Masks secrets inside `text[from..]`, the escaped contents of a JSON
    /// string as [`json::write_escaped`](crate::base::json) writes them
    /// (without quotes).
    ///
    /// See [`mask_escaped`].
    #[cfg(test)]
    pub(crate) fn mask_escaped(&self, text: &mut String, from: usize) {
        mask_escaped(text, from, |key| self.is_secret(key));
    }
}

fn is_separator_char(c: char) -> bool {
    matches!(c, '_' | '-' | '.' | ' ')
}

/// Writes the normalised form of `key` into `bytes` (separators dropped,
/// ASCII lowercase) and marks in `starts` each byte that begins a word (after
/// a separator, or an uppercase ASCII letter after a lowercase one or a
/// digit). Returns the normalised length. Both buffers are at least as long
/// as `key`.
fn normalise_key(key: &[u8], bytes: &mut [u8], starts: &mut [bool]) -> usize {
    let mut len = 0;
    let mut after_separator = true;
    let mut prev_lower = false;
    for &b in key {
        if matches!(b, b'_' | b'-' | b'.' | b' ') {
            after_separator = true;
            prev_lower = false;
            continue;
        }
        bytes[len] = b.to_ascii_lowercase();
        starts[len] = after_separator || (prev_lower && b.is_ascii_uppercase());
        after_separator = false;
        prev_lower = b.is_ascii_lowercase() || b.is_ascii_digit();
        len += 1;
    }
    len
}

/// The most a text may grow by masking (values shorter than [`REDACTED`]),
/// beyond one final [`REDACTED`]. Past it, the rest of the text from the
/// next secret value on is replaced whole: text made of many tiny secrets
/// cannot inflate a line, and nothing after such a value can leak.
pub(crate) const MAX_GROWTH: usize = 256;

/// Masks secrets in `text[from..]`, the escaped contents of a JSON string
/// (as `json::BoundedEscaper` writes them, without quotes), in place:
///
/// - the value of a `key=value`, `key: value`, `"key":"value"` or
///   `key='value'` pair whose key `is_secret` says is secret: a quoted value
///   up to its closing quote, a bare one up to a space, `,`, `;`, `&`, `>`,
///   an escape or an unmatched closing bracket (brackets nest, so `Some(..)`,
///   `[..]` and a `Debug` struct `Name { .. }` are masked whole; a bare
///   `Bearer`/`Basic`/`Token` scheme takes the next word along);
/// - the password of a URL's userinfo (`https://user:[REDACTED]@host`), or
///   the whole userinfo when it has no `:` (a token as user name);
/// - secret query parameters, which are `key=value` pairs like any other.
///
/// Keys are runs of ASCII letters, digits, `_`, `-` and `.` right before the
/// separator. `::` (paths) and `==`/`=>` are not separators.
///
/// Text with no `=` and no `:` is rejected with one `memchr` scan; text with
/// nothing to mask is only read, never copied. The result is never longer
/// than the input plus [`MAX_GROWTH`] and one [`REDACTED`], and stays valid
/// escaped JSON when the input is.
pub(crate) fn mask_escaped(text: &mut String, from: usize, is_secret: impl Fn(&str) -> bool) {
    let Some(src) = text.get(from..) else {
        return;
    };
    let bytes = src.as_bytes();
    let Some(first) = memchr::memchr2(b'=', b':', bytes) else {
        return;
    };
    let mut masked = Masked {
        src,
        out: None,
        copied: 0,
    };
    let mut at = first;
    while let Some(resume) = mask_at(&mut masked, at, &is_secret) {
        match bytes
            .get(resume..)
            .and_then(|rest| memchr::memchr2(b'=', b':', rest))
        {
            Some(offset) => at = resume + offset,
            None => break,
        }
    }
    if let Some(out) = masked.finish() {
        text.truncate(from);
        text.push_str(&out);
    }
}

/// A text being masked: untouched until the first replacement, then copied
/// piece by piece into `out`.
struct Masked<'a> {
    src: &'a str,
    out: Option<String>,
    /// How much of `src` is in `out` (or replaced).
    copied: usize,
}

impl Masked<'_> {
    /// Replaces `range` of the source by [`REDACTED`]. Returns `false` when
    /// that would exceed the growth budget: then everything from
    /// `range.start` on is replaced, and masking must stop.
    fn redact(&mut self, range: Range<usize>) -> bool {
        let src = self.src;
        let mut end = range.end.min(src.len());
        // Only malformed escapes can put `end` inside a character; cover it.
        while !src.is_char_boundary(end) {
            end += 1;
        }
        let start = range.start.max(self.copied).min(end);
        let out = self
            .out
            .get_or_insert_with(|| String::with_capacity(src.len() + REDACTED.len()));
        out.push_str(src.get(self.copied..start).unwrap_or_default());
        out.push_str(REDACTED);
        if out.len().saturating_sub(end) > MAX_GROWTH {
            // `out` is the first `start` bytes plus at most the budget, and
            // now one marker for all the rest.
            self.copied = src.len();
            return false;
        }
        self.copied = end;
        true
    }

    /// The masked text, or `None` when nothing was replaced.
    fn finish(self) -> Option<String> {
        let mut out = self.out?;
        out.push_str(self.src.get(self.copied..).unwrap_or_default());
        Some(out)
    }
}

/// Looks at the `=` or `:` at `at`; masks what follows if it ends a secret
/// key or starts a URL's authority. Returns where to look for the next one,
/// or `None` when masking has to stop.
fn mask_at(m: &mut Masked<'_>, at: usize, is_secret: &impl Fn(&str) -> bool) -> Option<usize> {
    let b = m.src.as_bytes();
    let sep = b[at];
    let next = b.get(at + 1).copied();
    let prev = at.checked_sub(1).map(|i| b[i]);
    if sep == b':' {
        if next == Some(b'/') && b.get(at + 2) == Some(&b'/') {
            return mask_userinfo(m, at + 3);
        }
        if next == Some(b':') || prev == Some(b':') {
            return Some(at + 2);
        }
    } else if matches!(next, Some(b'=' | b'>')) || matches!(prev, Some(b'=' | b'!' | b'<' | b'>')) {
        return Some(at + 2);
    }
    let Some(key) = key_before(b, at) else {
        return Some(at + 1);
    };
    if !m.src.get(key).is_some_and(is_secret) {
        return Some(at + 1);
    }
    let value = value_after(b, at + 1);
    if value.is_empty() {
        return Some(value.end.max(at + 1));
    }
    let resume = value.end;
    m.redact(value).then_some(resume)
}

/// Masks the userinfo of the URL whose authority starts at `start` (just
/// past `://`), if it has one.
fn mask_userinfo(m: &mut Masked<'_>, start: usize) -> Option<usize> {
    let b = m.src.as_bytes();
    let mut i = start;
    while let Some(&c) = b.get(i) {
        match c {
            b'@' => {
                let userinfo = start..i;
                // The password; the whole userinfo when that is empty or
                // the user name itself looks like a pair.
                let secret = match memchr::memchr(b':', &b[userinfo.clone()]) {
                    Some(colon)
                        if start + colon + 1 < i
                            && memchr::memchr(b'=', &b[start..start + colon]).is_none() =>
                    {
                        start + colon + 1..i
                    }
                    _ => userinfo,
                };
                if !secret.is_empty() && !m.redact(secret) {
                    return None;
                }
                return Some(i + 1);
            }
            b'/' | b'?' | b'#' | b'\\' | b' ' | b'"' | b'\'' | b'<' | b'>' => break,
            _ => i += 1,
        }
    }
    Some(start)
}

/// The key that ends right before the separator at `at` (past a closing
/// quote, `\"` or `'`), if any.
fn key_before(b: &[u8], at: usize) -> Option<Range<usize>> {
    let mut end = at;
    if end >= 1 && b[end - 1] == b'\'' {
        end -= 1;
    } else if end >= 2 && b[end - 1] == b'"' && b[end - 2] == b'\\' && starts_escape(b, end - 2) {
        end -= 2;
    }
    let mut start = end;
    while start > 0 && is_key_byte(b[start - 1]) {
        start -= 1;
    }
    // `\npassword`: the `n` belongs to the escape, not to the key.
    if start > 0 && b[start - 1] == b'\\' && starts_escape(b, start - 1) {
        start += if b.get(start) == Some(&b'u') { 5 } else { 1 };
    }
    (start < end).then_some(start..end)
}

fn is_key_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.')
}

/// Whether the backslash at `i` starts an escape (rather than ending a
/// `\\`): an odd run of backslashes ends there.
fn starts_escape(b: &[u8], i: usize) -> bool {
    let run = b[..=i].iter().rev().take_while(|&&c| c == b'\\').count();
    run % 2 == 1
}

/// The value that follows a separator ending at `from`, spaces skipped:
/// without its quotes when quoted.
fn value_after(b: &[u8], from: usize) -> Range<usize> {
    let mut v = from;
    while b.get(v) == Some(&b' ') {
        v += 1;
    }
    match b.get(v) {
        None => v..v,
        // Right after a separator or a space, a backslash starts an escape.
        Some(b'\\') if b.get(v + 1) == Some(&b'"') => v + 2..quoted_end(b, v + 2),
        Some(b'\'') => {
            let start = v + 1;
            let end = b
                .get(start..)
                .and_then(|rest| memchr::memchr(b'\'', rest))
                .map_or(b.len(), |o| start + o);
            start..end
        }
        Some(_) => v..bare_end(b, v),
    }
}

/// Where the `\"`-quoted value starting at `start` ends: its closing `\"`,
/// or the end of the text.
fn quoted_end(b: &[u8], start: usize) -> usize {
    let mut i = start;
    while let Some(offset) = b.get(i..).and_then(|rest| memchr::memchr(b'\\', rest)) {
        i += offset;
        match b.get(i + 1) {
            Some(b'"') => return i,
            Some(b'u') => i += 6,
            // A backslash of the text itself quotes what follows it (`\"`
            // inside embedded JSON or a Debug string): skip that too.
            Some(b'\\') => {
                i += 2;
                i += match (b.get(i), b.get(i + 1)) {
                    (Some(b'\\'), Some(b'u')) => 6,
                    (Some(b'\\'), _) => 2,
                    _ => 1,
                };
            }
            _ => i += 2,
        }
    }
    b.len()
}

/// Where the bare value starting at `start` ends.
fn bare_end(b: &[u8], start: usize) -> usize {
    let mut depth = 0usize;
    let mut i = start;
    let mut scheme_checked = false;
    while let Some(&c) = b.get(i) {
        match c {
            b'\\' if depth == 0 => break,
            b'\\' => {
                i += if b.get(i + 1) == Some(&b'u') { 6 } else { 2 };
                continue;
            }
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => {
                if depth == 0 {
                    break;
                }
                depth -= 1;
            }
            b' ' if depth == 0 => {
                // `Name { .. }` is one Debug value; `Bearer abc` is one
                // credential.
                let more = b.get(i + 1) == Some(&b'{')
                    || (!scheme_checked && is_auth_scheme(&b[start..i]));
                scheme_checked = true;
                if !more {
                    break;
                }
            }
            b',' | b';' | b'&' | b'>' | b'"' | b'\'' if depth == 0 => break,
            _ => {}
        }
        i += 1;
    }
    i.min(b.len())
}

/// HTTP authorization schemes, which come before the credential itself.
fn is_auth_scheme(word: &[u8]) -> bool {
    ["bearer", "basic", "token", "digest", "negotiate", "apikey"]
        .iter()
        .any(|s| word.eq_ignore_ascii_case(s.as_bytes()))
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
            "api.key",
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

    /// The keys issue 15 found unredacted.
    #[test]
    fn keys_match_case_and_separator_insensitively() {
        let r = Redactor::default();
        for key in [
            "privateKey",
            "PrivateKey",
            "private-key",
            "Private Key",
            "pwd",
            "dbPwd",
            "DB_PWD",
            "userpwd",
            "credentials",
            "awsCredentials",
            "bearer",
            "bearerToken",
            "jwt",
            "JWT",
            "jwt_claims",
            "session",
            "sessionId",
            "session_id",
            "SESSION-ID",
            "dsn",
            "DATABASE_DSN",
            "sentryDsn",
        ] {
            assert!(r.is_secret(key), "{key} should be secret");
        }
    }

    #[test]
    fn short_patterns_stay_within_one_word() {
        let r = Redactor::default();
        // Dropping the separator would put `dsn`, `pwd` or `jwt` in these.
        for key in [
            "kids_name",
            "fieldsNested",
            "words.number",
            "stop_wdt",
            "setup-wdog",
            "raw_jwtx_y",
        ] {
            let secret = key == "raw_jwtx_y";
            assert_eq!(r.is_secret(key), secret, "{key}");
        }
        // Longer patterns may span words: that is how `privateKey` matches.
        assert!(r.is_secret("pass_word"));
        assert!(r.is_secret("apiKey"));
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
            "api_ke",
            "ΠASSWORD",
            "request_id",
            "count",
            "error_type",
            "dns_name",
            "window",
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
    fn replacing_drops_the_defaults() {
        let r = Redactor::replacing(["ssn", "Credit-Card"]);
        assert!(r.is_secret("user_SSN"));
        assert!(r.is_secret("credit card"));
        assert!(r.is_secret("CREDIT_CARD_NUMBER"));
        assert!(!r.is_secret("password"));

        let none = Redactor::replacing(Vec::<String>::new());
        assert!(!none.is_secret("password"));
        assert!(!none.is_secret(""));
    }

    #[test]
    fn new_adds_to_the_defaults() {
        let r = Redactor::new(["ssn"]);
        assert!(r.is_secret("user_SSN"));
        assert!(r.is_secret("password"));
        assert!(r.is_secret("privateKey"));
        assert_eq!(Redactor::new(Vec::<String>::new()), Redactor::default());
    }

    #[test]
    fn with_pattern_adds() {
        let r = Redactor::default()
            .with_pattern("SSN")
            .with_pattern(String::from("pin-code"));
        assert!(r.is_secret("ssn"));
        assert!(r.is_secret("Pin Code"));
        assert!(r.is_secret("pinCode"));
        assert!(r.is_secret("password"));
    }

    #[test]
    fn empty_and_duplicate_patterns_are_ignored() {
        let r = Redactor::replacing(["", "token", "TOKEN", "to-ken", "_"]).with_pattern("");
        assert_eq!(r.patterns.len(), 1);
        assert!(!r.is_secret("entity_id"));
        assert!(r.is_secret("to ken"));
    }

    #[test]
    fn non_ascii_is_matched_exactly() {
        let r = Redactor::replacing(["pässwort"]);
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
            ("privateKey", true),
            ("entity_id", false),
            ("pass wrd", false),
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

    /// Escapes `raw` as a log line would, masks it, and returns the result
    /// unescaped (it must still be a valid JSON string).
    fn masked(raw: &str) -> String {
        let mut out = String::new();
        crate::base::json::write_escaped(&mut out, raw);
        let mut inner = out[1..out.len() - 1].to_owned();
        Redactor::default().mask_escaped(&mut inner, 0);
        serde_json::from_str(&format!("\"{inner}\""))
            .unwrap_or_else(|e| panic!("{inner:?} is no JSON string: {e}"))
    }

    #[test]
    fn text_with_nothing_secret_is_unchanged() {
        for raw in [
            "",
            "plain text",
            "Login { user: \"a\", count: 3 }",
            "key=value&x=1",
            "https://example.com:8080/path?q=1&page=2#top",
            "12:30:00 std::io::Error kind: NotFound",
            "a == b, c => d, e != f",
            "token::Kind",
        ] {
            assert_eq!(masked(raw), raw);
        }
    }

    #[test]
    fn debug_structs_mask_nested_secrets() {
        #[derive(Debug)]
        #[allow(dead_code)]
        struct Login {
            user: &'static str,
            password: &'static str,
        }
        #[derive(Debug)]
        #[allow(dead_code)]
        struct Wrapper {
            login: Login,
            api_key: Option<String>,
            private_key: Vec<u8>,
            retries: u8,
        }
        let login = Login {
            user: "a",
            password: "hunter2",
        };
        assert_eq!(
            masked(&format!("{login:?}")),
            "Login { user: \"a\", password: \"[REDACTED]\" }"
        );
        let w = Wrapper {
            login,
            api_key: Some("k3y".into()),
            private_key: vec![1, 2, 3],
            retries: 2,
        };
        let out = masked(&format!("{w:?}"));
        for leak in ["hunter2", "k3y", "1, 2, 3"] {
            assert!(!out.contains(leak), "{out}");
        }
        assert!(out.contains("retries: 2"), "{out}");
        let pretty = masked(&format!("{w:#?}"));
        for leak in ["hunter2", "k3y"] {
            assert!(!pretty.contains(leak), "{pretty}");
        }
    }

    #[test]
    fn pairs_urls_and_query_parameters_are_masked() {
        for (raw, expected) in [
            ("password=hunter2", "password=[REDACTED]"),
            (
                "user=a password=hunter2 x=1",
                "user=a password=[REDACTED] x=1",
            ),
            ("Password: hunter2, next", "Password: [REDACTED], next"),
            (
                r#"{"user":"a","password":"hun\"ter2","n":1}"#,
                r#"{"user":"a","password":"[REDACTED]","n":1}"#,
            ),
            ("pwd='x y'", "pwd='[REDACTED]'"),
            ("Authorization: Bearer abc.def", "Authorization: [REDACTED]"),
            ("sessionId=42;path=/", "sessionId=[REDACTED];path=/"),
            (
                "connect to https://user:pa55@db.example.com:5432/x failed",
                "connect to https://user:[REDACTED]@db.example.com:5432/x failed",
            ),
            (
                "https://ghp_abc@github.com/o/r",
                "https://[REDACTED]@github.com/o/r",
            ),
            (
                "GET https://api.example.com/v1?access_token=abc123&x=1",
                "GET https://api.example.com/v1?access_token=[REDACTED]&x=1",
            ),
            (
                "request failed: https://h/p?jwt=e.y.J&apiKey=k",
                "request failed: https://h/p?jwt=[REDACTED]&apiKey=[REDACTED]",
            ),
            (
                r#"{"credentials":{"user":"a","pass":"b"},"ok":true}"#,
                r#"{"credentials":[REDACTED],"ok":true}"#,
            ),
            ("token: Some(\"t0k\")", "token: [REDACTED]"),
            (
                "token: Secret { inner: \"t0k\" } done",
                "token: [REDACTED] done",
            ),
            ("password=", "password="),
            ("password: \"\"", "password: \"\""),
        ] {
            assert_eq!(masked(raw), expected, "{raw}");
        }
    }

    #[test]
    fn escapes_before_a_key_are_not_part_of_it() {
        // `\t` escapes to `\t`: its `t` must not make `oken` a `token`.
        assert_eq!(masked("\token=visible"), "\token=visible");
        assert_eq!(masked("\npassword=x"), "\npassword=[REDACTED]");
        assert_eq!(masked("\\password=x"), "\\password=[REDACTED]");
        assert_eq!(masked("\u{1}password=x"), "\u{1}password=[REDACTED]");
    }

    #[test]
    fn many_tiny_secrets_cannot_inflate_a_text() {
        let raw = "pwd=a,".repeat(1000);
        let out = masked(&raw);
        assert!(out.len() <= raw.len() + MAX_GROWTH + REDACTED.len());
        assert!(!out.contains("=a"), "{out}");
        assert!(out.starts_with("pwd=[REDACTED],pwd=[REDACTED],"));
    }

    #[test]
    fn replaced_defaults_mask_only_their_keys() {
        let r = Redactor::replacing(["ssn"]);
        let mut text = String::from("ssn=123 password=hunter2");
        r.mask_escaped(&mut text, 0);
        assert_eq!(text, "ssn=[REDACTED] password=hunter2");
        // Text before `from` is left alone.
        let mut text = String::from("ssn=1 ssn=2");
        r.mask_escaped(&mut text, 5);
        assert_eq!(text, "ssn=1 ssn=[REDACTED]");
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        fn escaped(raw: &str) -> String {
            let mut out = String::new();
            crate::base::json::write_escaped(&mut out, raw);
            out[1..out.len() - 1].to_owned()
        }

        fn pieces() -> impl Strategy<Value = String> {
            let piece = prop_oneof![
                any::<String>(),
                "[ -~]{0,12}",
                Just("password=".to_owned()),
                Just("token: ".to_owned()),
                Just("\"key\":\"".to_owned()),
                Just("https://".to_owned()),
                Just("@".to_owned()),
                Just("\\".to_owned()),
                Just("(".to_owned()),
                Just("pwd=a,".to_owned()),
                Just("\u{2028}".to_owned()),
            ];
            proptest::collection::vec(piece, 0..8).prop_map(|v| v.concat())
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            #[test]
            fn arbitrary_text_never_panics_and_stays_bounded(raw in any::<String>()) {
                let r = Redactor::default();
                // Raw text, escapes or not, must not panic either.
                let mut text = raw.clone();
                r.mask_escaped(&mut text, 0);
                prop_assert!(text.len() <= raw.len() + MAX_GROWTH + REDACTED.len());
                let esc = escaped(&raw);
                let mut text = esc.clone();
                r.mask_escaped(&mut text, 0);
                prop_assert!(text.len() <= esc.len() + MAX_GROWTH + REDACTED.len());
                let quoted = format!("\"{text}\"");
                prop_assert!(serde_json::from_str::<String>(&quoted).is_ok());
            }

            #[test]
            fn a_planted_password_never_survives(before in pieces(), after in pieces()) {
                let raw = format!("{before}password=SECRET{after}");
                let esc = escaped(&raw);
                let mut text = esc.clone();
                Redactor::default().mask_escaped(&mut text, 0);
                prop_assert!(!text.contains("SECRET"), "{:?} -> {:?}", esc, text);
                prop_assert!(text.len() <= esc.len() + MAX_GROWTH + REDACTED.len());
                let quoted = format!("\"{text}\"");
                prop_assert!(serde_json::from_str::<String>(&quoted).is_ok());
            }
        }
    }
}
