//! A local file, appended to and rotated by size, keeping a fixed count of
//! files (like Docker's `json-file` driver with `max-size` and `max-file`).

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

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
/// When someone else removes or renames `PATH` (logrotate without
/// `copytruncate`, an `rm`), the sink notices within about 100 ms of its
/// next write and reopens `PATH`, creating it again; lines written in
/// between land in the renamed file (or, after an `rm`, in the removed
/// one). On unix, files are created with mode `0600` unless
/// [`mode`](FileSinkBuilder::mode) says otherwise, and a symbolic link at
/// `PATH` is refused unless
/// [`follow_symlinks`](FileSinkBuilder::follow_symlinks) is set.
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
    mode: u32,
    follow_symlinks: bool,
}

impl FileSink {
    /// Starts configuring a sink appending to `path`.
    pub fn builder(path: impl Into<PathBuf>) -> FileSinkBuilder {
        FileSinkBuilder {
            path: path.into(),
            opts: Options::new("file", 1024 * 1024),
            max_bytes: DEFAULT_MAX_FILE_BYTES,
            max_files: DEFAULT_MAX_FILES,
            mode: DEFAULT_MODE,
            follow_symlinks: false,
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

    /// The permissions of the files the sink creates, on unix (default
    /// `0o600`: logs often hold what only the service should read). The
    /// process's umask still applies, and a file that already exists keeps
    /// its own. Ignored on other systems.
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }

    /// Whether a symbolic link at the path is followed (default `false`:
    /// whoever can write to the log directory could otherwise point the
    /// service's logs at any file it may write). Refused, opening the
    /// path fails with an error naming the link.
    pub fn follow_symlinks(mut self, follow: bool) -> Self {
        self.follow_symlinks = follow;
        self
    }

    /// Opens the file (creating it, not its directory) and starts the
    /// worker. Later write errors (disk full, directory removed) are
    /// retried with backoff.
    ///
    /// # Errors
    ///
    /// If the file cannot be opened (or is a symbolic link, unless
    /// [`follow_symlinks`](Self::follow_symlinks) is set), the size or
    /// count is zero, or the worker thread cannot be started.
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
            mode: self.mode,
            follow_symlinks: self.follow_symlinks,
            file: None,
            identity: None,
            size: 0,
            checked: Instant::now(),
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

/// Mode of the files the sink creates unless configured.
const DEFAULT_MODE: u32 = 0o600;

/// How often the worker looks whether the path still names the file it
/// writes. One `stat` of the path per check, done before a batch and at
/// most once per interval, so a busy sink pays one per 100 ms however
/// many lines it writes, an idle one nothing; the price is that lines
/// written in the interval after an `rm` go to the removed file.
const CHECK_INTERVAL: Duration = Duration::from_millis(100);

/// `O_NOFOLLOW` of `open(2)`: the open fails if the last component of the
/// path is a symbolic link. std does not export it and libc is not a
/// dependency, so the values come from the systems' headers: Linux's
/// `asm-generic/fcntl.h` (`0o400000`) with the architectures that
/// override it (`0o100000` on arm, aarch64, powerpc and m68k), and the
/// BSDs' `<fcntl.h>` (`0x100`, macOS included). Elsewhere on unix it is 0
/// and only the check after the open (see [`FileTransport::open`])
/// refuses a link.
#[cfg(all(
    any(target_os = "linux", target_os = "android"),
    any(
        target_arch = "arm",
        target_arch = "aarch64",
        target_arch = "powerpc",
        target_arch = "powerpc64",
        target_arch = "m68k"
    )
))]
const O_NOFOLLOW: i32 = 0o100000;
#[cfg(all(
    any(target_os = "linux", target_os = "android"),
    not(any(
        target_arch = "arm",
        target_arch = "aarch64",
        target_arch = "powerpc",
        target_arch = "powerpc64",
        target_arch = "m68k"
    ))
))]
const O_NOFOLLOW: i32 = 0o400000;
#[cfg(any(
    target_os = "macos",
    target_os = "ios",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "dragonfly"
))]
const O_NOFOLLOW: i32 = 0x100;
#[cfg(all(
    unix,
    not(any(
        target_os = "linux",
        target_os = "android",
        target_os = "macos",
        target_os = "ios",
        target_os = "freebsd",
        target_os = "netbsd",
        target_os = "openbsd",
        target_os = "dragonfly"
    ))
))]
const O_NOFOLLOW: i32 = 0;

/// What tells two opens of a path apart: device and inode on unix. Other
/// systems only notice that the path is gone.
#[cfg(unix)]
type Identity = (u64, u64);
#[cfg(not(unix))]
type Identity = ();

#[cfg(unix)]
fn identity(meta: &fs::Metadata) -> Identity {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino())
}

#[cfg(not(unix))]
fn identity(_: &fs::Metadata) -> Identity {}

struct FileTransport {
    path: PathBuf,
    max_bytes: u64,
    max_files: usize,
    #[cfg_attr(not(unix), allow(dead_code))]
    mode: u32,
    follow_symlinks: bool,
    file: Option<File>,
    /// Of the open file, to tell whether the path still names it.
    identity: Option<Identity>,
    /// Bytes in the current file.
    size: u64,
    /// When the path was last compared with the open file.
    checked: Instant,
}

impl FileTransport {
    /// Opens the path for appending, creating it with the configured mode;
    /// refuses a symbolic link unless told to follow one.
    fn open(&self) -> io::Result<File> {
        let mut options = OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(self.mode);
            if !self.follow_symlinks {
                options.custom_flags(O_NOFOLLOW);
            }
        }
        if self.follow_symlinks {
            return options.open(&self.path);
        }
        if is_symlink(&self.path) {
            return Err(symlink_refused());
        }
        let file = options.open(&self.path).map_err(|e| {
            // O_NOFOLLOW's own error ("too many levels of symbolic links")
            // does not say what to do.
            if is_symlink(&self.path) {
                symlink_refused()
            } else {
                e
            }
        })?;
        // Where O_NOFOLLOW is unknown (or a link replaced the file between
        // the check and the open), the path is looked at again after the
        // open.
        if is_symlink(&self.path) {
            return Err(symlink_refused());
        }
        Ok(file)
    }

    /// Whether the path no longer names the open file: removed, renamed
    /// away, or replaced. An error other than "not found" (a directory
    /// turned unreadable) keeps the open file.
    fn replaced(&self) -> bool {
        let meta = if self.follow_symlinks {
            fs::metadata(&self.path)
        } else {
            fs::symlink_metadata(&self.path)
        };
        match meta {
            Ok(meta) => self.identity != Some(identity(&meta)),
            Err(e) => e.kind() == io::ErrorKind::NotFound,
        }
    }

    /// Reopens the path if someone else removed or renamed it, at most once
    /// per [`CHECK_INTERVAL`].
    fn reopen_if_replaced(&mut self) -> io::Result<()> {
        let now = Instant::now();
        if now.duration_since(self.checked) < CHECK_INTERVAL {
            return Ok(());
        }
        self.checked = now;
        if self.file.is_some() && self.replaced() {
            self.file = None;
            self.identity = None;
            self.connect()?;
        }
        Ok(())
    }

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
        let file = self.open()?;
        let meta = file.metadata()?;
        self.size = meta.len();
        self.identity = Some(identity(&meta));
        self.file = Some(file);
        Ok(())
    }

    fn send(&mut self, batch: &mut Batch) -> Result<(), Failure> {
        self.reopen_if_replaced().map_err(Failure::Connection)?;
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
        self.identity = None;
    }
}

fn is_symlink(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

fn symlink_refused() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "the path is a symbolic link, which the file sink follows only with \
         `FileSinkBuilder::follow_symlinks(true)`",
    )
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
