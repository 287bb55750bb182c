//! The duration grammar of `slow = "..."`: `"250ms"`, `"1.5s"`, `"10µs"`.
//!
//! The grammar is strict: digits, optionally `.` and more digits, then a unit
//! (`ns`, `us`, `µs`/`μs`, `ms`, `s`, `m`), with no whitespace, sign or
//! exponent anywhere. One canonical spelling keeps thresholds greppable, and
//! a stray space in a string literal is trivial to fix at compile time.
//!
//! The value is computed exactly (no floating point), must be a whole number
//! of nanoseconds, greater than zero and at most `u64::MAX` nanoseconds.

use std::fmt;

/// Why a duration was rejected; displays as a reason meant to follow
/// "invalid duration `...`: ".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DurationError {
    /// Not digits, an optional fraction and a known unit.
    Format,
    /// The duration is zero.
    Zero,
    /// More than `u64::MAX` nanoseconds.
    TooLarge,
    /// A fraction of a nanosecond is left over.
    NotWhole,
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DurationError::Format => {
                "expected a number followed by ns, us, ms, s or m, e.g. slow = \"250ms\""
            }
            DurationError::Zero => "must be greater than zero",
            DurationError::TooLarge => "too large: must fit in u64 nanoseconds (about 584 years)",
            DurationError::NotWhole => "not a whole number of nanoseconds",
        })
    }
}

/// Parses a duration such as `"250ms"` into nanoseconds.
pub(crate) fn parse(s: &str) -> Result<u64, DurationError> {
    let unit_start = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or(DurationError::Format)?;
    let (number, unit) = s.split_at(unit_start);
    let unit_nanos: u128 = match unit {
        "ns" => 1,
        // U+00B5 MICRO SIGN and U+03BC GREEK SMALL LETTER MU look identical,
        // and keyboards differ in which one they produce.
        "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        _ => return Err(DurationError::Format),
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    // Rejects ".5s", "1.s" and "1.2.3s".
    if whole.is_empty() || (number.contains('.') && fraction.is_empty()) || fraction.contains('.') {
        return Err(DurationError::Format);
    }
    // Only digits remain, so the one way `parse` can fail is overflow.
    let whole: u128 = whole.parse().map_err(|_| DurationError::TooLarge)?;

    let fraction = fraction.trim_end_matches('0');
    let fraction_nanos = if fraction.is_empty() {
        0
    } else {
        // The largest unit is 6 * 10^10 ns, so a fraction whose last non-zero
        // digit is further right than that can never be whole nanoseconds;
        // the cap also keeps the arithmetic below within u128.
        if fraction.len() > 20 {
            return Err(DurationError::NotWhole);
        }
        let digits: u128 = fraction.parse().map_err(|_| DurationError::Format)?;
        let scale = fraction.bytes().fold(1u128, |scale, _| scale * 10);
        let scaled = digits * unit_nanos;
        if scaled % scale != 0 {
            return Err(DurationError::NotWhole);
        }
        scaled / scale
    };

    let total = whole
        .checked_mul(unit_nanos)
        .and_then(|n| n.checked_add(fraction_nanos))
        .ok_or(DurationError::TooLarge)?;
    if total == 0 {
        return Err(DurationError::Zero);
    }
    u64::try_from(total).map_err(|_| DurationError::TooLarge)
}

#[cfg(test)]
mod tests {
    use super::{DurationError, parse};

    #[test]
    fn units() {
        assert_eq!(parse("7ns"), Ok(7));
        assert_eq!(parse("7us"), Ok(7_000));
        assert_eq!(parse("7µs"), Ok(7_000));
        assert_eq!(parse("7μs"), Ok(7_000));
        assert_eq!(parse("7ms"), Ok(7_000_000));
        assert_eq!(parse("7s"), Ok(7_000_000_000));
        assert_eq!(parse("7m"), Ok(420_000_000_000));
    }

    #[test]
    fn decimals() {
        assert_eq!(parse("1.5s"), Ok(1_500_000_000));
        assert_eq!(parse("0.25ms"), Ok(250_000));
        assert_eq!(parse("2.50s"), Ok(2_500_000_000));
        assert_eq!(
            parse("1.000000000000000000000000000000s"),
            Ok(1_000_000_000)
        );
        assert_eq!(parse("0.000000001s"), Ok(1));
        assert_eq!(parse("0.5m"), Ok(30_000_000_000));
        assert_eq!(parse("1.0ns"), Ok(1));
        assert_eq!(parse("007ms"), Ok(7_000_000));
    }

    #[test]
    fn rejects_zero() {
        for s in ["0ns", "0s", "0.0ms", "000m"] {
            assert_eq!(parse(s), Err(DurationError::Zero), "{s}");
        }
    }

    #[test]
    fn limits() {
        assert_eq!(parse("18446744073709551615ns"), Ok(u64::MAX));
        for s in [
            "18446744073709551616ns",
            "18446744073709552us",
            "307445735m",
            "99999999999999999999999999999999999999999999s",
        ] {
            assert_eq!(parse(s), Err(DurationError::TooLarge), "{s}");
        }
        // Just under the limit in bigger units.
        assert_eq!(parse("18446744073s"), Ok(18_446_744_073_000_000_000));
        assert_eq!(parse("307445734m"), Ok(18_446_744_040_000_000_000));
    }

    #[test]
    fn rejects_sub_nanosecond() {
        for s in [
            "0.5ns",
            "1.0001us",
            "0.0000000001s",
            "1.000000000000000000001s",
        ] {
            assert_eq!(parse(s), Err(DurationError::NotWhole), "{s}");
        }
    }

    #[test]
    fn rejects_whitespace() {
        // No trimming: one canonical spelling.
        for s in [" 250ms", "250ms ", "250 ms", "\t1s", "1s\n"] {
            assert_eq!(parse(s), Err(DurationError::Format), "{s:?}");
        }
    }

    #[test]
    fn rejects_malformed() {
        for s in [
            "",
            "ms",
            "250",
            "25 parsecs",
            ".5s",
            "1.s",
            "1.2.3s",
            "+1s",
            "-1s",
            "1e3ms",
            "1_000ms",
            "1h",
            "1MS",
            "1Ms",
            "1sec",
            "1mss",
            "s1",
            "1,5s",
            "١s",
        ] {
            assert_eq!(parse(s), Err(DurationError::Format), "{s:?}");
        }
    }

    #[test]
    fn reasons() {
        assert_eq!(
            DurationError::Format.to_string(),
            "expected a number followed by ns, us, ms, s or m, e.g. slow = \"250ms\""
        );
        assert_eq!(DurationError::Zero.to_string(), "must be greater than zero");
        assert_eq!(
            DurationError::TooLarge.to_string(),
            "too large: must fit in u64 nanoseconds (about 584 years)"
        );
        assert_eq!(
            DurationError::NotWhole.to_string(),
            "not a whole number of nanoseconds"
        );
    }
}
