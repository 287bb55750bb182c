//! The duration grammar of the environment's settings: a number, then a
//! unit, `ms`, `s` or `m` (`250ms`, `1.5s`, `2m`). The builder's variables
//! and the objectives' latency thresholds both read it.

use std::time::Duration;

/// `250ms`, `1.5s`, `2m` (space before the unit allowed), or `None`: no
/// unit, an unknown one, no number, or a value no `Duration` holds.
pub(crate) fn parse(v: &str) -> Option<Duration> {
    let split = v.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (n, unit) = v.split_at(split);
    let n: f64 = n.parse().ok()?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return None,
    };
    Duration::try_from_secs_f64(secs).ok()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::parse;

    #[test]
    fn a_number_then_a_unit() {
        assert_eq!(parse("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse("250 ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse("0s"), Some(Duration::ZERO));
    }

    #[test]
    fn anything_else_is_refused() {
        for v in [
            "5",
            "ms",
            "",
            "5h",
            "-1s",
            "1e3ms",
            "1..5s",
            "99999999999999999999999s",
        ] {
            assert_eq!(parse(v), None, "{v:?}");
        }
    }
}
