//! RFC 3339 UTC timestamps with microsecond precision, without a date crate.
//!
//! Every log line starts with a timestamp, so this is on the hot path. Lines
//! logged within the same wall-clock second share the `YYYY-MM-DDTHH:MM:SS.`
//! prefix, so each thread caches the last prefix it formatted: the common case
//! is one integer compare, a 20-byte copy and six digits (no UTF-8
//! validation, no `SystemTime` arithmetic).
//!
//! The calendar conversion is Howard Hinnant's `civil_from_days`
//! (<https://howardhinnant.github.io/date_algorithms.html>), restricted to
//! non-negative day counts because pre-epoch times are clamped.

use std::cell::RefCell;
#[cfg(test)]
use std::time::{SystemTime, UNIX_EPOCH};

use crate::base::json;

/// Length of the cached `YYYY-MM-DDTHH:MM:SS.` prefix.
const PREFIX_LEN: usize = 20;

/// Unix seconds of 9999-12-31T23:59:59Z, the last second with a four-digit year.
///
/// RFC 3339 only allows four-digit years, so later times are clamped here to
/// keep every line parseable.
#[cfg(test)]
const MAX_SECS: u64 = 253_402_300_799;

thread_local! {
    /// Last prefix formatted on this thread, with its Unix second, kept as
    /// a `String` so the common case is a plain copy. `u64::MAX` can never
    /// be a real key (seconds come from `u64` nanoseconds, or are clamped
    /// to year 9999), so the initial entry never matches.
    static PREFIX_CACHE: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

/// Appends `t` as `YYYY-MM-DDTHH:MM:SS.ffffffZ` (no quotes) to `out`.
///
/// Sub-microsecond precision is truncated, not rounded, so a timestamp never
/// points past the instant it describes. Times before the Unix epoch are
/// clamped to `1970-01-01T00:00:00.000000Z` (a misconfigured clock must not
/// crash the logger) and times after year 9999 to
/// `9999-12-31T23:59:59.999999Z`.
#[cfg(test)]
pub(crate) fn write_rfc3339_micros(out: &mut String, t: SystemTime) {
    let (secs, micros) = split(t);
    write_parts(out, secs, micros);
}

/// [`write_rfc3339_micros`] for nanoseconds since the Unix epoch, the form
/// the clock gives (no `SystemTime` round trip on the hot path).
/// (`u64` nanoseconds end in 2554, well inside four-digit years.)
pub(crate) fn write_unix_nanos(out: &mut String, nanos: u64) {
    // Below 10^6, so the narrowing cast is lossless.
    #[allow(clippy::cast_possible_truncation)]
    let micros = (nanos % 1_000_000_000 / 1_000) as u32;
    write_parts(out, nanos / 1_000_000_000, micros);
}

fn write_parts(out: &mut String, secs: u64, micros: u32) {
    // `try_with` and `try_borrow_mut`: logging from another thread-local's
    // destructor, or re-entrantly, degrades to the uncached path.
    let cached = PREFIX_CACHE
        .try_with(|cache| {
            let Ok(mut cache) = cache.try_borrow_mut() else {
                return false;
            };
            if cache.0 != secs {
                cache.1.clear();
                json::push_ascii(&mut cache.1, &format_prefix(secs));
                cache.0 = secs;
            }
            out.push_str(&cache.1);
            true
        })
        .unwrap_or(false);
    if !cached {
        json::push_ascii(out, &format_prefix(secs));
    }
    write_fraction(out, micros);
}

/// Appends six zero-padded digits of `micros` and `Z`, as one word.
fn write_fraction(out: &mut String, micros: u32) {
    json::push_word(out, json::six_digits(micros) | u64::from(b'Z') << 48, 7);
}

#[cfg(test)]
/// Splits `t` into clamped whole Unix seconds and the microsecond fraction.
fn split(t: SystemTime) -> (u64, u32) {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) if d.as_secs() <= MAX_SECS => (d.as_secs(), d.subsec_micros()),
        Ok(_) => (MAX_SECS, 999_999),
        Err(_) => (0, 0),
    }
}

/// Formats the `YYYY-MM-DDTHH:MM:SS.` prefix for `secs` seconds after the epoch.
///
/// `secs` must be at most [`MAX_SECS`] so the year has four digits.
fn format_prefix(secs: u64) -> [u8; PREFIX_LEN] {
    let (year, month, day) = civil_from_days(secs / 86_400);
    let second_of_day = secs % 86_400;
    let mut p = *b"0000-00-00T00:00:00.";
    put_digits(&mut p[0..4], year);
    put_digits(&mut p[5..7], month);
    put_digits(&mut p[8..10], day);
    put_digits(&mut p[11..13], second_of_day / 3_600);
    put_digits(&mut p[14..16], second_of_day / 60 % 60);
    put_digits(&mut p[17..19], second_of_day % 60);
    p
}

/// Writes `v` as zero-padded decimal filling all of `dst`, most significant
/// digit first; higher digits that do not fit are dropped.
fn put_digits(dst: &mut [u8], mut v: u64) {
    for slot in dst.iter_mut().rev() {
        // `v % 10 < 10`, so the narrowing cast is lossless.
        *slot = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

/// Converts days since 1970-01-01 to a proleptic Gregorian `(year, month, day)`.
///
/// Shifts the epoch to 0000-03-01 so leap days fall at the end of each
/// year-of-era, which turns month/day lookup into closed-form arithmetic.
/// The sinks' date-named destinations (Elasticsearch indices) use it too.
pub(crate) fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // 719_468 days from 0000-03-01 to 1970-01-01.
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z - era * 146_097; // [0, 146096]
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365; // [0, 399]
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100); // [0, 365]
    let shifted_month = (5 * day_of_year + 2) / 153; // [0, 11], March = 0
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`, the inverse of [`civil_from_days`]).
pub(crate) fn days_from_civil(year: u64, month: u64, day: u64) -> i64 {
    let y = year as i64 - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let m = month as i64;
    let day_of_year = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day as i64 - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64, micros: u32) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_micros(u64::from(micros))
    }

    fn cached(t: SystemTime) -> String {
        let mut out = String::new();
        write_rfc3339_micros(&mut out, t);
        out
    }

    fn uncached(t: SystemTime) -> String {
        let (secs, micros) = split(t);
        let mut out = String::new();
        json::push_ascii(&mut out, &format_prefix(secs));
        write_fraction(&mut out, micros);
        out
    }

    #[test]
    fn nanoseconds_format_as_the_same_instant() {
        for nanos in [
            0,
            999,
            1_000,
            1_796_001_729_000_042_999,
            1_796_001_729_999_999_999,
            u64::MAX,
        ] {
            let mut fast = String::new();
            write_unix_nanos(&mut fast, nanos);
            let t = UNIX_EPOCH + Duration::from_nanos(nanos);
            assert_eq!(fast, cached(t), "{nanos}");
            assert_eq!(fast, uncached(t), "{nanos}");
        }
    }

    #[test]
    fn known_instants() {
        assert_eq!(cached(UNIX_EPOCH), "1970-01-01T00:00:00.000000Z");
        assert_eq!(at_str(951_827_696, 1), "2000-02-29T12:34:56.000001Z");
        assert_eq!(
            at_str(1_796_001_729, 123_456),
            "2026-11-30T01:22:09.123456Z"
        );
        assert_eq!(
            at_str(253_402_300_799, 999_999),
            "9999-12-31T23:59:59.999999Z"
        );
        assert_eq!(at_str(86_399, 0), "1970-01-01T23:59:59.000000Z");
        assert_eq!(at_str(86_400, 0), "1970-01-02T00:00:00.000000Z");
    }

    fn at_str(secs: u64, micros: u32) -> String {
        cached(at(secs, micros))
    }

    #[test]
    fn unix_micros_of_example_line() {
        let t = UNIX_EPOCH + Duration::from_micros(1_796_001_729_123_456);
        assert_eq!(cached(t), "2026-11-30T01:22:09.123456Z");
    }

    #[test]
    fn sub_microseconds_are_truncated() {
        let t = at(0, 5) + Duration::from_nanos(999);
        assert_eq!(cached(t), "1970-01-01T00:00:00.000005Z");
    }

    #[test]
    fn before_epoch_is_clamped() {
        let t = UNIX_EPOCH - Duration::from_secs(1);
        assert_eq!(cached(t), "1970-01-01T00:00:00.000000Z");
        let t = UNIX_EPOCH - Duration::from_nanos(1);
        assert_eq!(cached(t), "1970-01-01T00:00:00.000000Z");
    }

    #[test]
    fn after_year_9999_is_clamped() {
        let t = at(MAX_SECS + 1, 0);
        assert_eq!(cached(t), "9999-12-31T23:59:59.999999Z");
        if let Some(t) = UNIX_EPOCH.checked_add(Duration::from_secs(1 << 40)) {
            assert_eq!(cached(t), "9999-12-31T23:59:59.999999Z");
        }
    }

    #[test]
    fn leap_years() {
        // 2000 is a leap year (divisible by 400), 2100 is not (divisible by 100).
        assert_eq!(at_str(1_709_164_800, 0), "2024-02-29T00:00:00.000000Z");
        assert_eq!(
            at_str(1_709_164_800 + 86_400, 0),
            "2024-03-01T00:00:00.000000Z"
        );
        assert_eq!(
            at_str(4_107_542_400 - 86_400, 0),
            "2100-02-28T00:00:00.000000Z"
        );
        assert_eq!(at_str(4_107_542_400, 0), "2100-03-01T00:00:00.000000Z");
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(11_017), (2000, 3, 1));
        assert_eq!(civil_from_days(10_956), (1999, 12, 31));
        assert_eq!(civil_from_days(10_957), (2000, 1, 1));
    }

    fn is_leap(y: u64) -> bool {
        y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
    }

    fn days_in_month(y: u64, m: u64) -> u64 {
        match m {
            2 if is_leap(y) => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        }
    }

    #[test]
    fn civil_from_days_matches_naive_calendar_walk() {
        let (mut y, mut m, mut d) = (1970, 1, 1);
        let last_day = MAX_SECS / 86_400;
        for days in 0..=last_day {
            assert_eq!(civil_from_days(days), (y, m, d), "day {days}");
            d += 1;
            if d > days_in_month(y, m) {
                d = 1;
                m += 1;
                if m > 12 {
                    m = 1;
                    y += 1;
                }
            }
        }
        assert_eq!((y, m, d), (10_000, 1, 1));
    }

    #[test]
    fn cache_matches_uncached_path() {
        // Walk forwards and backwards across minute, hour, day, month and year
        // boundaries, with repeats inside a second, so the cache both hits and
        // misses.
        let starts = [0, 951_782_340, 1_796_001_600, 1_798_761_540, MAX_SECS - 200];
        for start in starts {
            for offset in (0..200u64).chain((0..200).rev()) {
                for micros in [0, 1, 999_999, 123_456] {
                    let t = at(start + offset, micros);
                    assert_eq!(cached(t), uncached(t));
                }
            }
        }
    }

    #[test]
    fn appends_to_existing_content() {
        let mut out = String::from("{\"timestamp\":\"");
        write_rfc3339_micros(&mut out, at(1_796_001_729, 42));
        out.push('"');
        assert_eq!(out, "{\"timestamp\":\"2026-11-30T01:22:09.000042Z\"");
    }

    #[test]
    fn threads_have_independent_caches() {
        let handles: Vec<_> = (0..4u64)
            .map(|i| {
                std::thread::spawn(move || {
                    (0..1_000u64)
                        .map(|s| {
                            let t = at(1_796_001_729 + i * 7 + s / 3, (s % 1_000) as u32);
                            (cached(t), uncached(t))
                        })
                        .all(|(a, b)| a == b)
                })
            })
            .collect();
        for h in handles {
            assert!(h.join().unwrap());
        }
    }

    #[test]
    fn days_from_civil_inverts_civil_from_days() {
        for days in (0..200_000).step_by(7) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days as i64);
        }
    }
}
