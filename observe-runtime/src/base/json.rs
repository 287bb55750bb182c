//! Hand-written JSON writer primitives for the log line encoder.
//!
//! Every log event is rendered straight into one reusable `String`, so these
//! helpers only ever append to the caller's buffer: no intermediate strings, no
//! `format!`, no `serde` round trip. The escaping is deliberately stricter than
//! JSON requires: besides `"`, `\` and U+0000..=U+001F it also escapes U+007F
//! and the Unicode line/paragraph separators U+2028/U+2029, because the output
//! is consumed as newline-delimited JSON by tools that disagree about what
//! counts as a line break. With these rules no input string can split a line.

use core::fmt;

/// Byte class: copy the byte through unchanged.
const PLAIN: u8 = 0;
/// Byte class: emit as `\u00XX`.
const UNICODE: u8 = b'u';
/// Byte class: `0xE2` may start U+2028/U+2029, so the next two bytes decide.
const SEPARATOR_LEAD: u8 = 1;

/// Per-byte escape class, indexed by the byte value.
///
/// A table keeps the hot loop to one load and one compare per byte, instead of
/// a chain of range checks. Entries other than the classes above hold the
/// letter of the two-character short escape (`\n`, `\"`, ...).
static ESCAPE: [u8; 256] = build_escape_table();

/// Lowercase hex digits for `\u00XX` escapes.
const HEX: &[u8; 16] = b"0123456789abcdef";

/// Builds [`ESCAPE`] at compile time so the table is guaranteed to match the rules.
const fn build_escape_table() -> [u8; 256] {
    let mut table = [PLAIN; 256];
    let mut i = 0;
    while i < 0x20 {
        table[i] = UNICODE;
        i += 1;
    }
    table[0x08] = b'b';
    table[0x09] = b't';
    table[0x0A] = b'n';
    table[0x0C] = b'f';
    table[0x0D] = b'r';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table[0x7F] = UNICODE;
    table[0xE2] = SEPARATOR_LEAD;
    table
}

/// Appends the escaped body of `s` (without surrounding quotes) to `out`.
///
/// Unescaped runs are copied with a single `push_str` each; in the common case
/// (no special characters) that is one bounds-checked copy of the whole input.
fn escape_into(out: &mut String, s: &str) {
    let bytes = s.as_bytes();
    let mut run_start = 0;
    let mut i = 0;
    // Invariant: `i <= bytes.len()`, since every step below only advances over
    // bytes already known to exist.
    while let Some(offset) = bytes[i..]
        .iter()
        .position(|&b| ESCAPE[usize::from(b)] != PLAIN)
    {
        i += offset;
        let byte = bytes[i];
        let class = ESCAPE[usize::from(byte)];
        // `run_start` and `i` both sit on char boundaries: `i` points at an ASCII
        // byte or a UTF-8 lead byte, and `run_start` just past a whole character.
        if class == SEPARATOR_LEAD {
            // Most characters with lead byte 0xE2 (arrows, math symbols, `€`...)
            // are harmless; only E2 80 A8 / E2 80 A9 need escaping.
            let replacement = match (bytes.get(i + 1), bytes.get(i + 2)) {
                (Some(0x80), Some(0xA8)) => "\\u2028",
                (Some(0x80), Some(0xA9)) => "\\u2029",
                _ => {
                    i += 1;
                    continue;
                }
            };
            out.push_str(&s[run_start..i]);
            out.push_str(replacement);
            i += 3;
        } else {
            out.push_str(&s[run_start..i]);
            if class == UNICODE {
                out.push_str("\\u00");
                out.push(char::from(HEX[usize::from(byte >> 4)]));
                out.push(char::from(HEX[usize::from(byte & 0x0F)]));
            } else {
                out.push('\\');
                out.push(char::from(class));
            }
            i += 1;
        }
        run_start = i;
    }
    out.push_str(&s[run_start..]);
}

/// Appends `s` to `out` as a quoted JSON string.
///
/// Escapes `"`, `\`, every control character U+0000..=U+001F (using the short
/// forms `\n \r \t \b \f` where JSON has them, `\u00XX` with lowercase hex
/// otherwise), U+007F as `\u007f` and U+2028/U+2029 as `\u2028`/`\u2029`, so
/// the result never contains a raw line break of any kind.
pub(crate) fn write_escaped(out: &mut String, s: &str) {
    // Reserve for the common no-escape case up front so the three appends
    // below cost at most one reallocation.
    out.reserve(s.len() + 2);
    out.push('"');
    escape_into(out, s);
    out.push('"');
}

/// A [`fmt::Write`] adapter that JSON-escapes everything written through
/// it, and stops accepting text once its output would pass a limit, so a value whose `Display` writes gigabytes costs at most the
/// limit (plus one escaped piece) in memory and is cut *while* it is
/// formatted.
///
/// Past the limit, text is only measured (what its escaped length would
/// have been: [`dropped`](Self::dropped)), for up to [`MEASURED_BYTES`]
/// more; after that every write returns [`fmt::Error`], which ends
/// well-behaved `Display` impls at once; impls that ignore it keep calling
/// in, and each call is dropped in constant time. The output is cut where
/// no character or escape sequence is split.
///
/// It writes no quotes: callers push the opening `"`, render a `Display`
/// or `Debug` value with `write!`, and push the closing `"`, with no
/// temporary `String` for the value.
#[derive(Debug)]
pub(crate) struct BoundedEscaper<'a> {
    out: &'a mut String,
    /// Where this value's escaped text starts in `out`.
    start: usize,
    /// The most `out` may hold.
    end: usize,
    cut: bool,
    /// Escaped bytes measured past the limit.
    dropped: usize,
    /// Input bytes measured past the limit.
    measured: usize,
}

/// How much text past its limit a [`BoundedEscaper`] still measures, so a
/// cut line can say how long it would have been: exact up to this, a lower
/// bound beyond it.
pub(crate) const MEASURED_BYTES: usize = 1 << 20;

impl<'a> BoundedEscaper<'a> {
    /// Escapes into `out`, keeping at most `limit` bytes of escaped text.
    pub(crate) fn new(out: &'a mut String, limit: usize) -> Self {
        let start = out.len();
        Self {
            out,
            start,
            end: start.saturating_add(limit),
            cut: false,
            dropped: 0,
            measured: 0,
        }
    }

    /// The escaped length of what was dropped (measured up to
    /// [`MEASURED_BYTES`] of input).
    pub(crate) fn dropped(&self) -> usize {
        self.dropped
    }

    /// Measures `s`, which is not kept; refuses it once enough was measured.
    fn measure(&mut self, s: &str) -> fmt::Result {
        if self.measured >= MEASURED_BYTES {
            return Err(fmt::Error);
        }
        self.measured += s.len();
        self.dropped += escaped_len(s);
        Ok(())
    }

    /// Whether text was dropped.
    #[cfg(test)]
    pub(crate) fn was_cut(&self) -> bool {
        self.cut
    }

    /// Cuts the escaped text back to the limit; what follows is measured.
    fn cut(&mut self, rest: &str) -> fmt::Result {
        let kept = truncate_escaped(&self.out[self.start..], self.end - self.start).len();
        self.dropped += self.out.len() - (self.start + kept);
        self.out.truncate(self.start + kept);
        self.cut = true;
        self.measure(rest)
    }
}

impl fmt::Write for BoundedEscaper<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.cut {
            return self.measure(s);
        }
        // Escaping never shortens text, so more input than room cannot fit:
        // escape only what might.
        let room = self.end.saturating_sub(self.out.len());
        let piece = truncate_at_char_boundary(s, room);
        escape_into(self.out, piece);
        if piece.len() < s.len() || self.out.len() > self.end {
            return self.cut(&s[piece.len()..]);
        }
        Ok(())
    }

    fn write_char(&mut self, c: char) -> fmt::Result {
        let mut buf = [0u8; 4];
        self.write_str(c.encode_utf8(&mut buf))
    }
}

/// The length of `s` once escaped, without writing it.
pub(crate) fn escaped_len(s: &str) -> usize {
    let bytes = s.as_bytes();
    let mut len = 0;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        len += match ESCAPE[usize::from(b)] {
            PLAIN => 1,
            UNICODE => 6,
            SEPARATOR_LEAD => match (bytes.get(i + 1), bytes.get(i + 2)) {
                (Some(0x80), Some(0xA8 | 0xA9)) => {
                    i += 2;
                    6
                }
                _ => 1,
            },
            _ => 2,
        };
        i += 1;
    }
    len
}

/// Appends possibly-invalid UTF-8 `b` to `out` as a quoted JSON string.
///
/// Each maximal invalid sequence becomes one U+FFFD, exactly as
/// [`String::from_utf8_lossy`] would do, but without allocating; valid parts
/// are escaped like [`write_escaped`].
pub(crate) fn write_escaped_bytes(out: &mut String, b: &[u8]) {
    out.reserve(b.len() + 2);
    out.push('"');
    for chunk in b.utf8_chunks() {
        escape_into(out, chunk.valid());
        if !chunk.invalid().is_empty() {
            out.push(char::REPLACEMENT_CHARACTER);
        }
    }
    out.push('"');
}

/// Appends `v` as a JSON number.
pub(crate) fn write_u64(out: &mut String, v: u64) {
    out.push_str(itoa::Buffer::new().format(v));
}

/// Every three-digit group `000`..`999` in the low three bytes of a `u32`,
/// first digit lowest, so a group is one load.
static DIGITS3: [u32; 1000] = {
    let mut t = [0u32; 1000];
    let mut i = 0;
    while i < 1000 {
        // Each quotient is below 10, so the narrowing casts are lossless.
        #[allow(clippy::cast_possible_truncation)]
        {
            t[i] = (b'0' + (i / 100) as u8) as u32
                | ((b'0' + (i / 10 % 10) as u8) as u32) << 8
                | ((b'0' + (i % 10) as u8) as u32) << 16;
        }
        i += 1;
    }
    t
};

/// Appends `bytes`, which the callers here build from the digit tables,
/// so they are ASCII.
///
/// This is the one place the runtime uses `unsafe`, for the hot path of
/// every line: appending a table-built group as `&str` pieces paid two
/// char-boundary checks and a capacity check per piece, and `push(char)` a
/// capacity check per byte; here a group is one capacity check and one
/// copy. The ASCII check keeps it sound for any input (on fixed-size groups
/// it compiles to a mask test or two).
#[allow(unsafe_code)]
#[inline(always)]
pub(crate) fn push_ascii(out: &mut String, bytes: &[u8]) {
    if bytes.is_ascii() {
        // SAFETY: ASCII bytes are valid UTF-8 on their own, so `out` stays
        // valid UTF-8 after appending them.
        unsafe { out.as_mut_vec() }.extend_from_slice(bytes);
    } else {
        out.push_str(&String::from_utf8_lossy(bytes));
    }
}

/// Appends the first `len` bytes of `word`, little-endian. The groups
/// below are built as words in registers and stored whole: building them
/// byte by byte on the stack and reading them back as words stalled store
/// forwarding on every line.
#[inline(always)]
pub(crate) fn push_word(out: &mut String, word: u64, len: usize) {
    push_ascii(out, &word.to_le_bytes()[..len.min(8)]);
}

/// `v % 1000` as three digits, zero-padded, in the low three bytes.
#[inline(always)]
fn three_digits(v: u64) -> u64 {
    // Below 1000, so the narrowing cast is lossless.
    #[allow(clippy::cast_possible_truncation)]
    u64::from(DIGITS3[(v % 1000) as usize])
}

/// `v % 1_000_000` as six digits, zero-padded, in the low six bytes: the
/// fraction of a timestamp or a duration.
#[inline]
pub(crate) fn six_digits(v: u32) -> u64 {
    let v = u64::from(v % 1_000_000);
    three_digits(v / 1000) | three_digits(v) << 24
}

/// `v % 10^10` as ten digits, zero-padded: the first eight in a word, the
/// last two in the low bytes of the second. Unix seconds until the year
/// 2286.
#[inline]
pub(crate) fn ten_digits(v: u64) -> (u64, u64) {
    let v = v % 10_000_000_000;
    let first = u64::from(b'0') + v / 1_000_000_000;
    let (a, b, c) = (
        three_digits(v / 1_000_000),
        three_digits(v / 1000),
        three_digits(v),
    );
    (first | a << 8 | b << 32 | c << 56, c >> 8)
}

/// `v` as eight lowercase hex digits in a word, most significant first
/// (lowest byte), made in registers: each nibble spread into a byte of its
/// own, then turned into its digit all at once (every line writes several
/// of these; a table lookup per byte, and then the same done on one
/// `u128`, which compiles to pairs of instructions, both showed in
/// profiles: 10 ns for 16 digits against 4 ns this way).
#[inline]
pub(crate) fn hex8(v: u32) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    let mut x = u64::from(v);
    x = (x | x << 16) & 0x0000_ffff_0000_ffff;
    x = (x | x << 8) & 0x00ff_00ff_00ff_00ff;
    x = (x | x << 4) & 0x0f0f_0f0f_0f0f_0f0f;
    // Byte i now holds nibble i (the least significant first); a nibble
    // above 9 gets the distance from '9' + 1 to 'a' added.
    let above_nine = ((x + 6 * ONES) >> 4) & ONES;
    (x + u64::from(b'0') * ONES + above_nine * u64::from(b'a' - b'9' - 1)).swap_bytes()
}

/// Appends `v` as eight lowercase hex digits.
pub(crate) fn write_hex8(out: &mut String, v: u32) {
    push_word(out, hex8(v), 8);
}

/// `v` as 16 lowercase hex digits, most significant first, in two words.
#[inline]
pub(crate) fn hex16(v: u64) -> [u64; 2] {
    // The truncations pick each half.
    #[allow(clippy::cast_possible_truncation)]
    [hex8((v >> 32) as u32), hex8(v as u32)]
}

/// 16 lowercase hex digits: a span id.
///
/// Appended a word at a time: the 16 digits as one array, built by two
/// 8-byte stores and copied by one 16-byte load, could not be forwarded
/// from the stores, and that stall made this the costliest line of
/// `write_hex32` in profiles of `overhead_otlp`.
#[inline]
pub(crate) fn write_hex16(out: &mut String, v: u64) {
    let [hi, lo] = hex16(v);
    out.reserve(16);
    push_word(out, hi, 8);
    push_word(out, lo, 8);
}

/// 32 lowercase hex digits: a trace id.
#[inline]
pub(crate) fn write_hex32(out: &mut String, v: u128) {
    // The truncations pick each half.
    #[allow(clippy::cast_possible_truncation)]
    {
        write_hex16(out, (v >> 64) as u64);
        write_hex16(out, v as u64);
    }
}

pub(crate) fn write_i64(out: &mut String, v: i64) {
    out.push_str(itoa::Buffer::new().format(v));
}

/// Appends `v` as a JSON number, or as a string if JSON cannot represent it.
///
/// Finite values use the shortest round-tripping representation (`ryu`), which
/// always is a valid JSON number (`1.0`, `-0.0`, `1e21`, `5e-324`). JSON has no
/// NaN or infinities, and emitting them bare would make the whole line
/// unparseable, so they are written as the strings `"NaN"`, `"inf"` and
/// `"-inf"` instead.
pub(crate) fn write_f64(out: &mut String, v: f64) {
    if v.is_finite() {
        out.push_str(ryu::Buffer::new().format_finite(v));
    } else if v.is_nan() {
        out.push_str("\"NaN\"");
    } else if v.is_sign_positive() {
        out.push_str("\"inf\"");
    } else {
        out.push_str("\"-inf\"");
    }
}

/// Appends `true` or `false`.
pub(crate) fn write_bool(out: &mut String, v: bool) {
    out.push_str(if v { "true" } else { "false" });
}

/// Returns the longest prefix of `s` that is at most `max_bytes` long and ends
/// on a char boundary.
///
/// Used to cap field sizes without ever splitting a multi-byte character, which
/// would otherwise turn into U+FFFD or invalid output downstream.
pub(crate) fn truncate_at_char_boundary(s: &str, max_bytes: usize) -> &str {
    if s.len() <= max_bytes {
        return s;
    }
    // A UTF-8 character is at most 4 bytes, so this walks back at most 3 steps,
    // and index 0 is always a boundary, so it terminates.
    let mut end = max_bytes;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default()
}

/// The longest prefix of `s`, the escaped contents of a JSON string as
/// [`write_escaped`] writes them, of at most `max_bytes` that ends neither
/// inside a character nor inside an escape sequence.
///
/// Walks forward from the start: looking back from the cut cannot tell an
/// escaped backslash (`\\`) from the start of an escape.
pub(crate) fn truncate_escaped(s: &str, max_bytes: usize) -> &str {
    if s.len() <= max_bytes {
        return s;
    }
    let bytes = s.as_bytes();
    let mut end = 0;
    while end < bytes.len() {
        let step = match bytes[end] {
            b'\\' if bytes.get(end + 1) == Some(&b'u') => 6,
            b'\\' => 2,
            b if b < 0x80 => 1,
            _ => s
                .get(end..)
                .and_then(|rest| rest.chars().next())
                .map_or(1, char::len_utf8),
        };
        if end + step > max_bytes {
            break;
        }
        end += step;
    }
    // A malformed escape (never written here) can end inside a character;
    // fall back to that character's start.
    truncate_at_char_boundary(s, end)
}

#[cfg(test)]
mod tests {
    fn escaped_contents(s: &str) -> String {
        let mut out = String::new();
        super::write_escaped(&mut out, s);
        out[1..out.len() - 1].to_owned()
    }

    #[test]
    fn truncate_escaped_keeps_whole_escapes_and_all_that_fits() {
        for raw in [
            r#"{"a":"b","c":[1,2]}"#.repeat(40),
            r"C:\Users\svc\AppData".repeat(40),
            "\\".repeat(200),
            "\u{1}\u{1f}\n".repeat(100),
            "é\"\u{2028}x".repeat(100),
        ] {
            let s = escaped_contents(&raw);
            for max in 0..=s.len().min(300) {
                let kept = truncate_escaped(&s, max);
                assert!(kept.len() <= max);
                // Nothing but the escape or character the cut fell in is lost.
                assert!(max - kept.len() < 6, "{max}: kept {} of {s:?}", kept.len());
                // What is kept is a whole JSON string's contents.
                let parsed: String =
                    serde_json::from_str(&format!("\"{kept}\"")).expect("whole escapes");
                assert!(raw.starts_with(&parsed));
            }
        }
        assert_eq!(truncate_escaped("abc", 10), "abc");
        // Malformed input (never written here) still gets a boundary.
        assert_eq!(truncate_escaped("ab\\", 2), "ab");
        assert_eq!(truncate_escaped("\\uéé", 4), "");
        assert_eq!(truncate_escaped("\\uxxx\u{e9}", 6), "\\uxxx");
    }

    #[test]
    fn fixed_width_digits_match_the_formatter() {
        for v in
            (0..1_000_000)
                .step_by(997)
                .chain([0, 9, 10, 999, 1000, 999_999, 1_000_000, u32::MAX])
        {
            let mut out = String::new();
            super::push_word(&mut out, super::six_digits(v), 6);
            assert_eq!(out, format!("{:06}", v % 1_000_000));
        }
        for v in (0..20_000_000_000u64).step_by(999_999_937).chain([
            0,
            9,
            1_000_000_000,
            1_764_465_729,
            9_999_999_999,
        ]) {
            let (lo, hi) = super::ten_digits(v);
            let mut out = String::new();
            super::push_word(&mut out, lo, 8);
            super::push_word(&mut out, hi, 2);
            assert_eq!(out, format!("{:010}", v % 10_000_000_000));
        }
        for v in [0, 1, 0xdead_beef, 0x0f0f_0f0f, u32::MAX, 0x8000_0000] {
            let mut out = String::new();
            super::write_hex8(&mut out, v);
            assert_eq!(out, format!("{v:08x}"));
        }
    }

    use super::*;

    #[test]
    fn hex16_spells_every_nibble_as_format_does() {
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        let mut cases = vec![0, 1, 9, 10, 15, 16, u64::MAX, 0x0123_4567_89ab_cdef];
        for _ in 0..1000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            cases.push(x);
        }
        for v in cases {
            let [hi, lo] = hex16(v).map(u64::to_le_bytes);
            let digits = [hi, lo].concat();
            assert_eq!(std::str::from_utf8(&digits).unwrap(), format!("{v:016x}"));
            let mut out = String::new();
            write_hex32(&mut out, u128::from(v) << 64 | u128::from(!v));
            assert_eq!(out, format!("{v:016x}{:016x}", !v));
        }
    }
    use core::fmt::Write as _;

    #[test]
    fn non_ascii_bytes_are_appended_lossily_never_as_invalid_utf8() {
        let mut out = String::from("a");
        push_ascii(&mut out, b"b\xffc");
        assert_eq!(out, "ab\u{fffd}c");
    }

    fn escaped(s: &str) -> String {
        let mut out = String::new();
        write_escaped(&mut out, s);
        out
    }

    fn assert_single_line(out: &str) {
        for forbidden in ['\n', '\r', '\u{2028}', '\u{2029}', '\u{7f}'] {
            assert!(!out.contains(forbidden), "{out:?} contains {forbidden:?}");
        }
        assert!(
            !out.chars().any(|c| c < ' '),
            "{out:?} contains a control char"
        );
    }

    fn round_trip(s: &str) {
        let out = escaped(s);
        assert_single_line(&out);
        let back: String = serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("{out:?} is not a JSON string: {e}"));
        assert_eq!(back, s, "round trip of {s:?} via {out:?}");
    }

    #[test]
    fn plain_strings_are_copied_verbatim() {
        assert_eq!(escaped(""), r#""""#);
        assert_eq!(escaped("hello world"), r#""hello world""#);
        assert_eq!(escaped("sensor.kitchen"), r#""sensor.kitchen""#);
        // Non-ASCII that shares the 0xE2 lead byte with U+2028 passes through.
        assert_eq!(escaped("€→∑"), "\"€→∑\"");
    }

    #[test]
    fn short_escapes() {
        assert_eq!(escaped("a\"b"), r#""a\"b""#);
        assert_eq!(escaped("a\\b"), r#""a\\b""#);
        assert_eq!(escaped("\n\r\t\u{8}\u{c}"), r#""\n\r\t\b\f""#);
    }

    #[test]
    fn unicode_escapes_are_lowercase() {
        assert_eq!(escaped("\u{0}"), r#""\u0000""#);
        assert_eq!(escaped("\u{1f}"), r#""\u001f""#);
        assert_eq!(escaped("\u{1b}[0m"), r#""\u001b[0m""#);
        assert_eq!(escaped("\u{7f}"), r#""\u007f""#);
        assert_eq!(escaped("a\u{2028}b\u{2029}c"), r#""a\u2028b\u2029c""#);
    }

    #[test]
    fn every_control_char_round_trips() {
        for c in (0u8..0x20).map(char::from).chain(['\u{7f}']) {
            round_trip(&c.to_string());
            round_trip(&format!("x{c}y{c}{c}z"));
        }
        let all: String = (0u8..0x20).map(char::from).collect();
        round_trip(&all);
    }

    #[test]
    fn tricky_inputs_round_trip() {
        for s in [
            "",
            "\"",
            "\\",
            "\\\"",
            "\"\\\"\\",
            "}\n{\"level\":\"ERROR\"}",
            "😀 emoji 👩‍👩‍👧",
            "\u{2028}",
            "\u{2029}",
            "\u{2028}\u{2029}\u{2028}",
            "end with separator \u{2029}",
            "\u{E000}\u{FFFD}\u{10FFFF}",
            "tab\there",
            "€\u{2028}€",
        ] {
            round_trip(s);
        }
    }

    #[test]
    fn escaper_escapes_display_and_debug() {
        let display = "a\"b\nc";
        let debug = std::path::Path::new("q\"\u{2028}");
        let mut out = String::from("\"");
        write!(
            BoundedEscaper::new(&mut out, usize::MAX),
            "{display}|{debug:?}|{:>4}",
            'x'
        )
        .unwrap();
        out.push('"');
        let back: String = serde_json::from_str(&out).unwrap();
        assert_eq!(back, format!("{display}|{debug:?}|{:>4}", 'x'));
        assert_single_line(&out);

        let mut out = String::new();
        let mut w = BoundedEscaper::new(&mut out, usize::MAX);
        for c in ['a', '\n', '"', '\u{2028}', 'é', '\u{0}'] {
            w.write_char(c).unwrap();
        }
        assert_eq!(out, r#"a\n\"\u2028é\u0000"#);
    }

    /// A `Display` that writes `total` bytes in pieces of `piece`,
    /// ignoring errors as a careless impl would, and counts what it wrote.
    struct Flood {
        total: usize,
        piece: &'static str,
        calls: core::cell::Cell<usize>,
    }

    impl core::fmt::Display for Flood {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            for _ in 0..self.total / self.piece.len() {
                self.calls.set(self.calls.get() + 1);
                let _ = f.write_str(self.piece);
            }
            Ok(())
        }
    }

    #[test]
    fn bounded_escaper_stops_growing_at_its_limit() {
        // 100 MB written in 10-byte pieces; the output stays at the limit.
        let flood = Flood {
            total: 100_000_000,
            piece: "0123456789",
            calls: core::cell::Cell::new(0),
        };
        let mut out = String::from("prefix");
        let mut w = BoundedEscaper::new(&mut out, 1000);
        assert!(write!(w, "{flood}").is_ok() || w.was_cut());
        assert!(w.was_cut());
        // What was cut is measured up to a bound, no further.
        assert_eq!(w.dropped(), (MEASURED_BYTES / 10 + 1) * 10);
        assert_eq!(out.len(), 6 + 1000);
        assert!(out.capacity() < 64 * 1024, "{}", out.capacity());
        assert_eq!(flood.calls.get(), 10_000_000);

        // One huge piece is not escaped whole either.
        let huge = "\"".repeat(10_000_000);
        let mut out = String::new();
        let mut w = BoundedEscaper::new(&mut out, 101);
        assert!(write!(w, "{huge}").is_ok());
        assert!(write!(w, "{huge}").is_err());
        // The first huge piece is measured whole (its escaped length), the
        // second refused.
        assert_eq!(w.dropped(), 20_000_000 - 100);
        // Whole escapes only: 50 of `\"`.
        assert_eq!(out, "\\\"".repeat(50));
        assert!(out.capacity() < 64 * 1024, "{}", out.capacity());

        // Below the limit nothing changes.
        let mut out = String::new();
        let mut w = BoundedEscaper::new(&mut out, 100);
        let c = 'é';
        write!(w, "a\"{c}").unwrap();
        assert!(!w.was_cut());
        assert_eq!(w.dropped(), 0);
        assert_eq!(out, "a\\\"é");
    }

    #[test]
    fn escaped_len_is_the_written_length() {
        for s in ["", "plain", "a\"b\\c\n\u{1}\u{7f}", "€\u{2028}\u{2029}→é😀"] {
            assert_eq!(escaped_len(s), escaped(s).len() - 2, "{s:?}");
        }
    }

    #[test]
    fn escaped_bytes_replace_invalid_utf8() {
        let cases: &[&[u8]] = &[
            b"",
            b"plain",
            b"\xff",
            b"a\xffb",
            b"\xc3\x28",
            b"\xe2\x80",
            b"\xe2\x80\xa8",
            b"\xe2\x80\xa9\xe2",
            b"\xf0\x9f\x98",
            b"\xf0\x9f\x98\x80",
            b"\xed\xa0\x80",
            b"\xc0\xaf\n\"\\",
            b"ok\x00\x7f\x80\xbf",
        ];
        for &bytes in cases {
            let mut out = String::new();
            write_escaped_bytes(&mut out, bytes);
            assert_single_line(&out);
            let back: String = serde_json::from_str(&out).unwrap();
            assert_eq!(back, String::from_utf8_lossy(bytes), "bytes {bytes:?}");
        }
    }

    /// Small deterministic PRNG so the "property" test needs no extra crates.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    #[test]
    fn generated_strings_round_trip() {
        const ALPHABET: &[char] = &[
            'a',
            'Z',
            '0',
            ' ',
            '"',
            '\\',
            '/',
            '\n',
            '\r',
            '\t',
            '\u{0}',
            '\u{8}',
            '\u{b}',
            '\u{c}',
            '\u{1b}',
            '\u{1f}',
            '\u{7f}',
            '\u{80}',
            'é',
            '€',
            '→',
            '\u{2027}',
            '\u{2028}',
            '\u{2029}',
            '\u{202a}',
            '\u{fffd}',
            '😀',
            '\u{10ffff}',
        ];
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        for _ in 0..20_000 {
            let len = (rng.next() % 24) as usize;
            let s: String = (0..len)
                .map(|_| {
                    // Half the time pick a tricky char, otherwise any scalar value.
                    if rng.next() % 2 == 0 {
                        ALPHABET[(rng.next() % ALPHABET.len() as u64) as usize]
                    } else {
                        char::from_u32((rng.next() % 0x11_0000) as u32).unwrap_or('?')
                    }
                })
                .collect();
            round_trip(&s);

            let mut via_escaper = String::from("\"");
            write!(BoundedEscaper::new(&mut via_escaper, usize::MAX), "{s}").unwrap();
            via_escaper.push('"');
            assert_eq!(via_escaper, escaped(&s));

            let mut via_bytes = String::new();
            write_escaped_bytes(&mut via_bytes, s.as_bytes());
            assert_eq!(via_bytes, escaped(&s));
        }
    }

    #[test]
    fn generated_bytes_match_lossy_decoding() {
        let mut rng = XorShift(0xD1B5_4A32_D192_ED03);
        for _ in 0..20_000 {
            let len = (rng.next() % 16) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            let mut out = String::new();
            write_escaped_bytes(&mut out, &bytes);
            assert_single_line(&out);
            let back: String = serde_json::from_str(&out).unwrap();
            assert_eq!(back, String::from_utf8_lossy(&bytes));
        }
    }

    #[test]
    fn appends_without_clobbering() {
        let mut out = String::from("{\"k\":");
        write_escaped(&mut out, "v\n");
        out.push(',');
        write_u64(&mut out, 7);
        assert_eq!(out, r#"{"k":"v\n",7"#);
    }

    #[test]
    fn integers() {
        let mut out = String::new();
        write_u64(&mut out, 0);
        out.push(' ');
        write_u64(&mut out, u64::MAX);
        out.push(' ');
        write_i64(&mut out, i64::MIN);
        out.push(' ');
        write_i64(&mut out, -1);
        assert_eq!(out, "0 18446744073709551615 -9223372036854775808 -1");
    }

    #[test]
    fn finite_floats_are_json_numbers() {
        for v in [
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.412,
            1.5e300,
            1e21,
            1e-7,
            123_456_789.0,
            f64::MIN_POSITIVE,
            5e-324,
            f64::MAX,
            f64::MIN,
            f64::EPSILON,
        ] {
            let mut out = String::new();
            write_f64(&mut out, v);
            let parsed: serde_json::Value =
                serde_json::from_str(&out).unwrap_or_else(|e| panic!("{out} is not JSON: {e}"));
            assert!(parsed.is_number(), "{out}");
            assert_eq!(parsed.as_f64().unwrap().to_bits(), v.to_bits(), "{out}");
        }
        let mut out = String::new();
        write_f64(&mut out, 1.0);
        assert_eq!(out, "1.0");
    }

    #[test]
    fn non_finite_floats_are_strings() {
        for (v, expected) in [
            (f64::NAN, r#""NaN""#),
            (-f64::NAN, r#""NaN""#),
            (f64::INFINITY, r#""inf""#),
            (f64::NEG_INFINITY, r#""-inf""#),
        ] {
            let mut out = String::new();
            write_f64(&mut out, v);
            assert_eq!(out, expected);
            assert!(serde_json::from_str::<String>(&out).is_ok());
        }
    }

    #[test]
    fn booleans() {
        let mut out = String::new();
        write_bool(&mut out, true);
        write_bool(&mut out, false);
        assert_eq!(out, "truefalse");
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate_at_char_boundary("hello", 10), "hello");
        assert_eq!(truncate_at_char_boundary("hello", 5), "hello");
        assert_eq!(truncate_at_char_boundary("hello", 3), "hel");
        assert_eq!(truncate_at_char_boundary("hello", 0), "");
        assert_eq!(truncate_at_char_boundary("", 0), "");
        // "é" is 2 bytes, "€" is 3, "😀" is 4.
        assert_eq!(truncate_at_char_boundary("aé", 2), "a");
        assert_eq!(truncate_at_char_boundary("a€", 3), "a");
        assert_eq!(truncate_at_char_boundary("😀", 3), "");
        assert_eq!(truncate_at_char_boundary("😀😀", 7), "😀");
        assert_eq!(truncate_at_char_boundary("😀😀", 8), "😀😀");
        let s = "a€😀é\u{2028}z";
        for max in 0..=s.len() + 1 {
            let t = truncate_at_char_boundary(s, max);
            assert!(t.len() <= max && s.starts_with(t));
            // Longest such prefix: the next char would not fit.
            if let Some(c) = s[t.len()..].chars().next() {
                assert!(t.len() + c.len_utf8() > max);
            }
        }
    }
}
