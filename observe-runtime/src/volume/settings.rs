//! The text form of the settings (`operation=value`, comma-separated, per
//! variable) and applying it: at install, and at run time for the reload
//! channels.

use std::fmt;

use tracing_core::Level;

use super::controls::with_controls;
use crate::base::names::is_valid_operation;

/// A volume setting that cannot be read; nothing of the call that
/// returned it was applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeError {
    var: String,
    part: String,
    expected: &'static str,
}

impl fmt::Display for VolumeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: cannot read {:?}: expected {}",
            self.var, self.part, self.expected
        )
    }
}

impl VolumeError {
    /// What was expected of the part that does not parse.
    pub(crate) fn expected(&self) -> &'static str {
        self.expected
    }
}

impl std::error::Error for VolumeError {}

/// One setting of one operation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Setting {
    Sample(Option<f64>),
    RateLimit(Option<u32>),
    Level(Option<Level>),
}

/// The variables this module reads.
pub(crate) const SAMPLE: &str = "OBSERVE_SAMPLE";
pub(crate) const RATE_LIMIT: &str = "OBSERVE_RATE_LIMIT";
pub(crate) const LEVELS: &str = "OBSERVE_LEVELS";

/// Reads `(variable, value)` pairs; other variables are ignored. `off`
/// (or an empty value for an operation) clears a setting.
pub(crate) fn parse<I, K, V>(vars: I) -> Result<Vec<(String, Setting)>, VolumeError>
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<str>,
    V: AsRef<str>,
{
    let mut out = Vec::new();
    for (k, v) in vars {
        let var = k.as_ref();
        let (expected, read): (&'static str, fn(&str) -> Option<Setting>) = match var {
            SAMPLE => ("operation=RATE with RATE in [0, 1], or off", |v| {
                if v == "off" {
                    return Some(Setting::Sample(None));
                }
                let r: f64 = v.parse().ok()?;
                (0.0..=1.0).contains(&r).then_some(Setting::Sample(Some(r)))
            }),
            RATE_LIMIT => ("operation=LINES_PER_SECOND (at least 1), or off", |v| {
                if v == "off" {
                    return Some(Setting::RateLimit(None));
                }
                let n: u32 = v.parse().ok()?;
                (n > 0).then_some(Setting::RateLimit(Some(n)))
            }),
            LEVELS => (
                "operation=LEVEL (error, warn, info, debug, trace), or off",
                |v| {
                    if v == "off" {
                        return Some(Setting::Level(None));
                    }
                    v.parse::<Level>().ok().map(|l| Setting::Level(Some(l)))
                },
            ),
            _ => continue,
        };
        for part in v.as_ref().split(',').filter(|p| !p.trim().is_empty()) {
            let refuse = || VolumeError {
                var: var.to_owned(),
                part: part.trim().to_owned(),
                expected,
            };
            let (op, value) = part.split_once('=').ok_or_else(refuse)?;
            let (op, value) = (op.trim(), value.trim().to_ascii_lowercase());
            if op != "*" && !is_valid_operation(op) {
                return Err(refuse());
            }
            out.push((op.to_owned(), read(&value).ok_or_else(refuse)?));
        }
    }
    Ok(out)
}

/// Applies the `OBSERVE_SAMPLE`, `OBSERVE_RATE_LIMIT` and `OBSERVE_LEVELS`
/// pairs among `vars` (others are ignored): `operation=value`,
/// comma-separated, `*` for every operation without its own setting,
/// `off` to clear one. All or nothing: a value that does not parse
/// changes nothing. Each change is logged once (INFO, target
/// `observe::volume`); a setting that already had its value is no change.
/// The changes are returned as text.
///
/// # Errors
/// The first part that does not parse, with its variable.
pub fn apply<I, K, V>(vars: I) -> Result<Vec<String>, VolumeError>
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<str>,
    V: AsRef<str>,
{
    Ok(apply_parsed(&parse(vars)?))
}

/// Sets parsed settings in order and logs each change once.
pub(crate) fn apply_parsed(settings: &[(String, Setting)]) -> Vec<String> {
    let changes: Vec<String> = settings.iter().filter_map(|(op, s)| set(op, s)).collect();
    for change in &changes {
        tracing::info!(target: "observe::volume", "log volume changed: {change}");
    }
    changes
}

/// Sets one setting; says what changed, `None` if it already had that
/// value.
pub(crate) fn set(operation: &str, setting: &Setting) -> Option<String> {
    with_controls(operation, |c| match setting {
        Setting::Sample(r) => c.set_sample(*r).then(|| match r {
            Some(r) => format!("{operation}: sample {r}"),
            None => format!("{operation}: sample off"),
        }),
        Setting::RateLimit(n) => c.set_rate(*n).then(|| match n {
            Some(n) => format!("{operation}: rate limit {n} lines/s"),
            None => format!("{operation}: rate limit off"),
        }),
        Setting::Level(l) => c.set_level(*l).then(|| match l {
            Some(l) => format!("{operation}: level {l}"),
            None => format!("{operation}: level off"),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_each_variable_and_refuses_bad_parts_with_the_variable() {
        let got = parse([
            (SAMPLE, "a=0.01, *=1"),
            (RATE_LIMIT, "a.b=100,c=off"),
            (LEVELS, "a=WARN"),
            ("OTHER", "x"),
        ])
        .expect("valid");
        assert_eq!(
            got,
            [
                ("a".to_owned(), Setting::Sample(Some(0.01))),
                ("*".to_owned(), Setting::Sample(Some(1.0))),
                ("a.b".to_owned(), Setting::RateLimit(Some(100))),
                ("c".to_owned(), Setting::RateLimit(None)),
                ("a".to_owned(), Setting::Level(Some(Level::WARN))),
            ]
        );
        for (var, bad) in [
            (SAMPLE, "a=2"),
            (SAMPLE, "a"),
            (SAMPLE, "a=NaN"),
            (RATE_LIMIT, "a=0"),
            (RATE_LIMIT, "a=-1"),
            (LEVELS, "a=loud"),
            (LEVELS, "bad op=warn"),
        ] {
            let e = parse([(var, bad)]).expect_err(bad);
            assert!(e.to_string().starts_with(var), "{e}");
        }
    }
}
