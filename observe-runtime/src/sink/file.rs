//! A local file, appended to and rotated by size, keeping a fixed count of
//! files (like Docker's `json-file` driver with `max-size` and `max-file`).

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::SinkError;
use super::options::{queue_options, queued_sink};
use super::worker::{Batch, Failure, Fate, Options, Pipe, Transport};

/// Default size at which the file is rotated: 100 MB.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 100 * 1000 * 1000;
/// Default number of files kept, the current one included.
pub const DEFAULT_MAX_FILES: usize = 5;

/// Appends lines to `PATH` from a background worker, rotating when the next
/// line would take it past the size limit: `PATH` becomes `PATH.1`, `PATH.1`
/// becomes `PATH.2`, and so on, keeping `max_files` files in all (defaults
/// 100 MB x 5).
///
/// A line is never split across files; a single line longer than the
/// limit gets a file of its own. Lines that fall off the oldest file were
/// sent, not dropped. A flush means written to the operating system, not
/// synced to disk.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
///
/// use observe_runtime::sink::{FileSink, JsonLine, Sink as _};
///
/// let path = std::env::temp_dir().join(format!("observe-doc-{}.log", std::process::id()));
/// # let _ = std::fs::remove_file(&path);
/// let sink = FileSink::builder(&path)
///     .max_file_bytes(100 * 1000 * 1000)
///     .max_files(5)
///     .build()?;
/// sink.write_json_line(JsonLine::new("{\"message\":\"stored\"}\n")?);
/// assert!(sink.flush(Duration::from_secs(5)));
/// assert_eq!(sink.stats().sent, 1);
/// assert_eq!(std::fs::read_to_string(&path)?, "{\"message\":\"stored\"}\n");
/// # std::fs::remove_file(&path)?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct FileSink {
    pipe: Pipe,
}

/// Configures a [`FileSink`]; made by [`FileSink::builder`].
#[derive(Debug, Clone)]
#[must_use = "the sink is made by `build()`"]
pub struct FileSinkBuilder {
    path: PathBuf,
    opts: Options,
    max_bytes: u64,
    max_files: usize,
}

impl FileSink {
    /// Starts configuring a sink appending to `path`.
    pub fn builder(path: impl Into<PathBuf>) -> FileSinkBuilder {
        FileSinkBuilder {
            path: path.into(),
            opts: Options::new("file", 1024 * 1024),
            max_bytes: DEFAULT_MAX_FILE_BYTES,
            max_files: DEFAULT_MAX_FILES,
        }
    }

    /// A sink appending to `path`, rotated at 100 MB keeping 5 files.
    ///
    /// # Errors
    ///
    /// See [`FileSinkBuilder::build`].
    pub fn new(path: impl Into<PathBuf>) -> Result<Self, SinkError> {
        Self::builder(path).build()
    }
}

queue_options!(FileSinkBuilder);

impl FileSinkBuilder {
    /// Rotates before a write would take the file past `bytes`.
    pub fn max_file_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = bytes;
        self
    }

    /// Keeps `count` files, the current one included (at least 1: with 1
    /// the file is emptied when full).
    pub fn max_files(mut self, count: usize) -> Self {
        self.max_files = count;
        self
    }

    /// Opens the file (creating it, not its directory) and starts the
    /// worker. Later write errors (disk full, file removed) are retried
    /// with backoff.
    ///
    /// # Errors
    ///
    /// If the file cannot be opened, the size or count is zero, or the
    /// worker thread cannot be started.
    pub fn build(self) -> Result<FileSink, SinkError> {
        if self.max_bytes == 0 || self.max_files == 0 {
            return Err(SinkError::config(
                "the file size limit and count must be above 0",
            ));
        }
        let mut transport = FileTransport {
            path: self.path,
            max_bytes: self.max_bytes,
            max_files: self.max_files,
            file: None,
            size: 0,
        };
        transport
            .connect()
            .map_err(|e| SinkError::io(format!("cannot open {}", transport.path.display()), e))?;
        Ok(FileSink {
            pipe: Pipe::start(&self.opts, transport)?,
        })
    }
}

queued_sink!(FileSink);

struct FileTransport {
    path: PathBuf,
    max_bytes: u64,
    max_files: usize,
    file: Option<File>,
    /// Bytes in the current file.
    size: u64,
}

impl FileTransport {
    fn rotated(&self, n: usize) -> PathBuf {
        let mut name = OsString::from(self.path.as_os_str());
        name.push(format!(".{n}"));
        PathBuf::from(name)
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.file = None;
        if self.max_files == 1 {
            remove_if_exists(&self.path)?;
        } else {
            remove_if_exists(&self.rotated(self.max_files - 1))?;
            for n in (1..self.max_files - 1).rev() {
                rename_if_exists(&self.rotated(n), &self.rotated(n + 1))?;
            }
            rename_if_exists(&self.path, &self.rotated(1))?;
        }
        self.connect()
    }
}

impl Transport for FileTransport {
    fn is_connected(&self) -> bool {
        self.file.is_some()
    }

    fn connect(&mut self) -> io::Result<()> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.size = file.metadata()?.len();
        self.file = Some(file);
        Ok(())
    }

    fn send(&mut self, batch: &mut Batch) -> Result<(), Failure> {
        while !batch.is_empty() {
            let pending = batch.pending();
            let room =
                usize::try_from(self.max_bytes.saturating_sub(self.size)).unwrap_or(usize::MAX);
            // Whole lines that fit; the first line alone if the file is new.
            let fit = pending[..room.min(pending.len())]
                .iter()
                .rposition(|&c| c == b'\n')
                .map(|i| i + 1);
            let cut = match fit {
                Some(cut) => cut,
                None if self.size == 0 => pending
                    .iter()
                    .position(|&c| c == b'\n')
                    .map_or(pending.len(), |i| i + 1),
                None => {
                    self.rotate().map_err(Failure::Connection)?;
                    continue;
                }
            };
            let Some(file) = self.file.as_mut() else {
                return Err(Failure::Connection(io::ErrorKind::NotConnected.into()));
            };
            if let Err(e) = file.write_all(&pending[..cut]) {
                // Take back a partial write, so the retry cannot leave half
                // a line in the file.
                let _ = file.set_len(self.size);
                return Err(Failure::Connection(e));
            }
            self.size += cut as u64;
            batch.resolve_prefix(cut, Fate::Sent);
        }
        Ok(())
    }

    fn disconnect(&mut self) {
        self.file = None;
    }
}

fn remove_if_exists(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn rename_if_exists(from: &Path, to: &Path) -> io::Result<()> {
    match fs::rename(from, to) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}
