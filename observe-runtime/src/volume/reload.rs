//! Live reload of the log volume settings from `KEY=VALUE` text: a file
//! re-read on SIGHUP (unix), or the body of `POST /config` on the metrics
//! listener.
//!
//! The text has one `OBSERVE_SAMPLE`, `OBSERVE_RATE_LIMIT` or
//! `OBSERVE_LEVELS` setting a line, in the form the environment takes;
//! blank lines and lines starting with `#` are skipped, an `export `
//! prefix and quotes around the value are allowed (so a shell or systemd
//! environment file reads the same). Applying is all or nothing.

use std::fmt;
use std::io::{self, Read};
use std::path::Path;

use super::settings::{self, LEVELS, RATE_LIMIT, SAMPLE, Setting, VolumeError};

/// The largest reload file read; a settings file is a few lines.
const MAX_FILE_BYTES: u64 = 64 * 1024;

/// Lines whose variable is none of the three volume settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OtherKeys {
    /// Skipped: a reload file may be the service's whole environment file,
    /// whose other variables take effect at the next start.
    Ignore,
    /// Refused: a request names only what it means to change, so another
    /// name is a typo.
    Refuse,
}

/// Reload text that cannot be applied; nothing of it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ReloadError {
    /// A line that is not `KEY=VALUE`.
    NotAPair { line: usize, text: String },
    /// A variable that is not a volume setting (with [`OtherKeys::Refuse`]).
    UnknownKey { line: usize, key: String },
    /// A value that does not parse.
    Value { line: usize, source: VolumeError },
}

impl fmt::Display for ReloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAPair { line, text } => {
                write!(f, "line {line}: cannot read {text:?}: expected KEY=VALUE")
            }
            Self::UnknownKey { line, key } => write!(
                f,
                "line {line}: unknown setting {key:?}: expected {SAMPLE}, {RATE_LIMIT} or {LEVELS}"
            ),
            Self::Value { line, source } => write!(f, "line {line}: {source}"),
        }
    }
}

impl std::error::Error for ReloadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Value { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Reads reload text into settings, in order (a later line wins).
pub(crate) fn parse_text(
    text: &str,
    other: OtherKeys,
) -> Result<Vec<(String, Setting)>, ReloadError> {
    let mut out = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let pair = trimmed.strip_prefix("export ").unwrap_or(trimmed);
        let Some((key, value)) = pair.split_once('=') else {
            return Err(ReloadError::NotAPair {
                line,
                text: shown(trimmed),
            });
        };
        let key = key.trim();
        if ![SAMPLE, RATE_LIMIT, LEVELS].contains(&key) {
            if other == OtherKeys::Refuse {
                return Err(ReloadError::UnknownKey {
                    line,
                    key: shown(key),
                });
            }
            continue;
        }
        let parsed = settings::parse([(key, unquote(value.trim()))])
            .map_err(|source| ReloadError::Value { line, source })?;
        out.extend(parsed);
    }
    Ok(out)
}

/// Applies reload text (other variables refused), logging each change
/// once; the changes as text.
#[cfg_attr(not(feature = "prometheus-listener"), allow(dead_code))]
pub(crate) fn apply_text(text: &str) -> Result<Vec<String>, ReloadError> {
    Ok(settings::apply_parsed(&parse_text(
        text,
        OtherKeys::Refuse,
    )?))
}

/// `"value"` or `'value'` without its quotes.
fn unquote(value: &str) -> &str {
    for q in ['"', '\''] {
        if let Some(inner) = value.strip_prefix(q).and_then(|v| v.strip_suffix(q)) {
            return inner;
        }
    }
    value
}

/// A part of the text as an error quotes it: at most a line's worth.
fn shown(text: &str) -> String {
    const MAX: usize = 120;
    if text.len() <= MAX {
        return text.to_owned();
    }
    let mut cut = MAX;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &text[..cut])
}

/// Why a reload file cannot be used.
#[derive(Debug)]
pub(crate) enum FileError {
    Read(io::Error),
    TooLarge,
    NotUtf8,
    Parse(ReloadError),
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Read(e) => write!(f, "cannot read it: {e}"),
            Self::TooLarge => write!(f, "larger than {MAX_FILE_BYTES} bytes"),
            Self::NotUtf8 => f.write_str("not UTF-8 text"),
            Self::Parse(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for FileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Read(e) => Some(e),
            Self::Parse(e) => Some(e),
            Self::TooLarge | Self::NotUtf8 => None,
        }
    }
}

/// Reads and parses the reload file at `path` (other variables skipped).
pub(crate) fn read_file(path: &Path) -> Result<Vec<(String, Setting)>, FileError> {
    let file = std::fs::File::open(path).map_err(FileError::Read)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(FileError::Read)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(FileError::TooLarge);
    }
    let text = String::from_utf8(bytes).map_err(|_| FileError::NotUtf8)?;
    parse_text(&text, OtherKeys::Ignore).map_err(FileError::Parse)
}

/// The reload file's settings at install: none if it does not exist yet.
pub(crate) fn read_file_at_install(path: &Path) -> Result<Vec<(String, Setting)>, FileError> {
    match read_file(path) {
        Err(FileError::Read(e)) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        other => other,
    }
}

/// One reload: the process environment's current volume variables, then
/// the file's lines (which win), applied together or not at all. A
/// process's environment cannot be changed from outside it, so in
/// practice the file is what changes; the environment is read again so
/// that a setting it gives comes back when the file stops overriding it.
/// A bad file or variable is one ERROR line naming it and the bad part.
#[cfg_attr(not(unix), allow(dead_code))]
pub(crate) fn reload_from(path: &Path) {
    let env: Vec<(&str, String)> = [SAMPLE, RATE_LIMIT, LEVELS]
        .into_iter()
        .filter_map(|k| Some((k, std::env::var(k).ok()?)))
        .collect();
    let mut all = match settings::parse(env) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(
                target: "observe::volume",
                "log volume not reloaded: the environment's {e}; nothing applied"
            );
            return;
        }
    };
    match read_file(path) {
        Ok(from_file) => all.extend(from_file),
        Err(e) => {
            tracing::error!(
                target: "observe::volume",
                file = %path.display(),
                "log volume not reloaded: reload file {}: {e}; nothing applied",
                path.display()
            );
            return;
        }
    }
    if settings::apply_parsed(&all).is_empty() {
        tracing::info!(
            target: "observe::volume",
            file = %path.display(),
            "log volume reloaded from {}: no change",
            path.display()
        );
    }
}

#[cfg(unix)]
pub(crate) use signal::SighupReload;

#[cfg(unix)]
mod signal {
    use std::fmt;
    use std::io;
    use std::path::PathBuf;
    use std::time::{Duration, Instant};

    use signal_hook::consts::SIGHUP;
    use signal_hook::iterator::{Handle, Signals};

    use crate::base::Background;
    use crate::base::clock;
    use crate::base::supervise::{self, Supervised};

    /// The component name in `observe_component_restarts_total`.
    const COMPONENT: &str = "reload on SIGHUP";

    /// Re-reads the reload file on each SIGHUP, on a thread of its own,
    /// until stopped. Once stopped, SIGHUP is ignored rather than ending
    /// the process (its default): the signal's handler stays installed.
    pub(crate) struct SighupReload {
        path: PathBuf,
        handle: Handle,
        thread: Option<Supervised>,
    }

    impl fmt::Debug for SighupReload {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("SighupReload")
                .field("path", &self.path)
                .finish_non_exhaustive()
        }
    }

    impl SighupReload {
        /// Handles SIGHUP from now on.
        pub(crate) fn start(path: PathBuf) -> io::Result<Self> {
            let mut signals = Signals::new([SIGHUP])?;
            let handle = signals.handle();
            let closed = signals.handle();
            let file = path.clone();
            let thread =
                supervise::spawn("observe-reload".into(), COMPONENT.into(), move |restarts| {
                    if restarts > 0 {
                        wait_unless_closed(&closed, supervise::restart_delay(restarts));
                    }
                    // Ends when the handle is closed; signals that arrive
                    // together are one reload.
                    for _ in signals.forever() {
                        if closed.is_closed() {
                            return;
                        }
                        super::reload_from(&file);
                    }
                })?;
            Ok(Self {
                path,
                handle,
                thread: Some(thread),
            })
        }

        fn shut_down(&mut self, deadline: Option<Instant>) {
            self.handle.close();
            if let Some(thread) = self.thread.take() {
                let _ = thread.join_until(deadline);
            }
        }
    }

    /// Sleeps `delay` in short steps, returning early once `closed` is
    /// closed, so a restart's backoff never holds up a stop.
    fn wait_unless_closed(closed: &Handle, delay: Duration) {
        let until = Instant::now() + delay;
        while !closed.is_closed() {
            let Some(left) = until.checked_duration_since(Instant::now()) else {
                return;
            };
            std::thread::sleep(left.min(Duration::from_millis(20)));
        }
    }

    impl Background for SighupReload {
        fn stop(mut self: Box<Self>, timeout: Duration) {
            self.shut_down(Some(clock::deadline_after(timeout)));
        }
    }

    impl Drop for SighupReload {
        fn drop(&mut self) {
            // A reload in progress is a few microseconds; do not wait on
            // one stuck behind a full sink.
            self.shut_down(Some(clock::deadline_after(Duration::from_secs(1))));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_core::Level;

    #[test]
    fn reads_pairs_skipping_comments_blanks_and_other_variables() {
        let text = "# log volume\n\n  OBSERVE_SAMPLE=a=0.5,*=1\nexport OBSERVE_LEVELS=\"a=warn\"\n\
                    OBSERVE_LOG=debug\nOBSERVE_RATE_LIMIT = 'b=10'\n";
        let got = parse_text(text, OtherKeys::Ignore).expect("valid");
        assert_eq!(
            got,
            [
                ("a".to_owned(), Setting::Sample(Some(0.5))),
                ("*".to_owned(), Setting::Sample(Some(1.0))),
                ("a".to_owned(), Setting::Level(Some(Level::WARN))),
                ("b".to_owned(), Setting::RateLimit(Some(10))),
            ]
        );
        assert_eq!(parse_text("", OtherKeys::Refuse), Ok(Vec::new()));
    }

    #[test]
    fn refuses_bad_lines_with_their_number_and_part() {
        let e = parse_text("OBSERVE_SAMPLE=a=1\nsample a 1\n", OtherKeys::Ignore)
            .expect_err("not a pair");
        assert_eq!(
            e.to_string(),
            "line 2: cannot read \"sample a 1\": expected KEY=VALUE"
        );
        let e = parse_text("\nOBSERVE_SAMPLE=a=2\n", OtherKeys::Ignore).expect_err("range");
        assert!(
            e.to_string()
                .starts_with("line 2: OBSERVE_SAMPLE: cannot read \"a=2\""),
            "{e}"
        );
        let e = parse_text("OBSERVE_SAMPEL=a=1", OtherKeys::Refuse).expect_err("typo");
        assert!(
            e.to_string().contains("unknown setting \"OBSERVE_SAMPEL\""),
            "{e}"
        );
        let long = "x".repeat(10_000);
        let e = parse_text(&long, OtherKeys::Ignore).expect_err("long");
        assert!(e.to_string().len() < 200, "{e}");
    }

    #[test]
    fn files_are_read_whole_or_refused() {
        let dir = std::env::temp_dir().join(format!("observe-reload-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("volume.env");
        assert!(matches!(read_file(&path), Err(FileError::Read(_))));
        assert_eq!(
            read_file_at_install(&path).expect("missing is none").len(),
            0
        );
        std::fs::write(&path, "OBSERVE_SAMPLE=reload.unit=0\n").expect("write");
        assert_eq!(
            read_file(&path).expect("valid"),
            [("reload.unit".to_owned(), Setting::Sample(Some(0.0)))]
        );
        std::fs::write(&path, vec![b'#'; MAX_FILE_BYTES as usize + 1]).expect("write");
        assert!(matches!(read_file(&path), Err(FileError::TooLarge)));
        std::fs::write(&path, [0xff, 0xfe]).expect("write");
        assert!(matches!(read_file(&path), Err(FileError::NotUtf8)));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn applying_text_reports_only_real_changes() {
        let first = apply_text("OBSERVE_RATE_LIMIT=reload.unit.apply=7").expect("valid");
        assert_eq!(first, ["reload.unit.apply: rate limit 7 lines/s"]);
        let again = apply_text("OBSERVE_RATE_LIMIT=reload.unit.apply=7").expect("valid");
        assert!(again.is_empty(), "{again:?}");
        assert!(apply_text("OBSERVE_RATE_LIMIT=reload.unit.apply=8\nnonsense").is_err());
        let off = apply_text("OBSERVE_RATE_LIMIT=reload.unit.apply=off").expect("valid");
        assert_eq!(off, ["reload.unit.apply: rate limit off"]);
    }
}
