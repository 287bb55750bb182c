//! The rotating file sink: size and count limits, whole lines only; files
//! removed or renamed by someone else; permissions and symbolic links.

use std::error::Error;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::common::wait_until;
use crate::logging::{dispatch, log_in_threads};
use crate::received::{parse_all, read_lines};
use observe::sink::{FileSink, JsonLine, Sink as _, SinkError};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("observe-sink-file-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn rotated(path: &Path, n: usize) -> PathBuf {
    PathBuf::from(format!("{}.{n}", path.display()))
}

/// Logs `lines` lines numbered by `seq`, padded to lengths that step by
/// `step` bytes up to `max`, so cuts fall anywhere inside lines.
fn log_numbered(d: &tracing::Dispatch, lines: u64, step: usize, max: usize) {
    log_in_threads(d, 1, lines, |_, seq| {
        let pad = "x".repeat((seq as usize * step) % max);
        tracing::info!(seq, pad = pad.as_str(), "numbered line {seq}");
    });
}

/// The `seq` of each line, in file order.
fn seqs(lines: &[serde_json::Value]) -> Vec<u64> {
    lines
        .iter()
        .map(|l| l["context"]["seq"].as_u64().expect("seq"))
        .collect()
}

#[test]
fn rotates_at_the_size_keeping_the_count_and_never_splits_a_line() {
    const MAX_BYTES: u64 = 64 * 1024;
    const MAX_FILES: usize = 3;
    let dir = temp_dir("rotate");
    let path = dir.join("app.log");
    let sink = FileSink::builder(&path)
        .max_file_bytes(MAX_BYTES)
        .max_files(MAX_FILES)
        .capacity_bytes(16 * 1024 * 1024)
        .build()
        .expect("sink");
    let d = dispatch("sink-file", sink.clone());
    const LINES: u64 = 3_000;
    log_numbered(&d, LINES, 37, 700);
    assert!(sink.flush(Duration::from_secs(30)));
    let stats = sink.stats();
    assert_eq!((stats.sent, stats.dropped), (LINES, 0));

    // Exactly MAX_FILES files: the current one and .1 .. .{MAX_FILES-1}.
    let mut files = vec![path.clone()];
    files.extend((1..MAX_FILES).map(|n| rotated(&path, n)));
    for f in &files {
        let size = std::fs::metadata(f).expect("kept file").len();
        assert!(size <= MAX_BYTES, "{} is {size} bytes", f.display());
        assert!(
            std::fs::read(f).expect("read").ends_with(b"\n"),
            "{} ends mid-line",
            f.display()
        );
    }
    assert!(!rotated(&path, MAX_FILES).exists());
    let names: Vec<_> = std::fs::read_dir(&dir)
        .expect("dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names.len(), MAX_FILES, "{names:?}");

    // Oldest to newest, the kept lines are the last ones logged, each whole
    // and in order.
    let mut kept = Vec::new();
    for f in files.iter().rev() {
        kept.extend(parse_all(&read_lines(f)));
    }
    let seqs = seqs(&kept);
    let first = LINES - seqs.len() as u64;
    assert_eq!(seqs, (first..LINES).collect::<Vec<_>>());
    // Rotated files were filled close to the limit (lines are < 1.5 KiB).
    for f in &files[1..] {
        assert!(std::fs::metadata(f).expect("file").len() > MAX_BYTES - 1536);
    }
    println!(
        "file: {LINES} lines, kept the last {} in {MAX_FILES} files of at most {MAX_BYTES} bytes",
        seqs.len()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn lines_taken_together_go_out_in_batches_of_the_set_size_whole_and_in_order() {
    let dir = temp_dir("batches");
    let path = dir.join("app.log");
    // Lines are logged faster than the worker polls, so its takes hold
    // many batches' worth (and some lines are longer than a batch): each
    // line must still arrive once, whole and in order.
    let sink = FileSink::builder(&path)
        .max_batch_bytes(256)
        .build()
        .expect("sink");
    let d = dispatch("sink-batches", sink.clone());
    const LINES: u64 = 5_000;
    log_numbered(&d, LINES, 13, 300);
    assert!(sink.flush(Duration::from_secs(30)));
    let stats = sink.stats();
    assert_eq!((stats.sent, stats.dropped, stats.queued), (LINES, 0, 0));
    assert_eq!(
        seqs(&parse_all(&read_lines(&path))),
        (0..LINES).collect::<Vec<_>>()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_line_longer_than_the_limit_gets_a_file_of_its_own() {
    let dir = temp_dir("long");
    let path = dir.join("app.log");
    let sink = FileSink::builder(&path)
        .max_file_bytes(4096)
        .max_files(4)
        .build()
        .expect("sink");
    sink.write_json_line(JsonLine::new("{\"n\":1}\n").expect("a line"));
    let long = format!("{{\"long\":\"{}\"}}\n", "y".repeat(10_000));
    sink.write_json_line(JsonLine::new(&long).expect("a line"));
    sink.write_json_line(JsonLine::new("{\"n\":2}\n").expect("a line"));
    assert!(sink.flush(Duration::from_secs(10)));
    assert_eq!(read_lines(&rotated(&path, 2)), ["{\"n\":1}"]);
    assert_eq!(read_lines(&rotated(&path, 1)), [long.trim_end()]);
    assert_eq!(read_lines(&path), ["{\"n\":2}"]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn appends_to_an_existing_file_and_counts_its_size() {
    let dir = temp_dir("append");
    let path = dir.join("app.log");
    std::fs::write(&path, "{\"old\":true}\n").expect("seed");
    let sink = FileSink::builder(&path)
        .max_file_bytes(30)
        .max_files(2)
        .build()
        .expect("sink");
    sink.write_json_line(JsonLine::new("{\"new\":1}\n").expect("a line"));
    sink.write_json_line(JsonLine::new("{\"new\":2}\n").expect("a line"));
    assert!(sink.flush(Duration::from_secs(10)));
    assert_eq!(
        read_lines(&rotated(&path, 1)),
        ["{\"old\":true}", "{\"new\":1}"]
    );
    assert_eq!(read_lines(&path), ["{\"new\":2}"]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_missing_directory_fails_the_build_and_keeps_the_io_error() {
    let err = FileSink::new("/nonexistent-observe-dir/app.log").expect_err("no such directory");
    assert!(err.to_string().contains("cannot open"), "{err}");
    assert!(matches!(err, SinkError::Io { .. }), "{err:?}");
    let io = err.source().and_then(|e| e.downcast_ref::<io::Error>());
    assert_eq!(io.map(io::Error::kind), Some(io::ErrorKind::NotFound));
}

/// Logs numbered lines through `d` until `stop` is set, pausing briefly
/// every 50 lines so the queue never fills; returns how many it logged.
fn log_until(d: &tracing::Dispatch, stop: &AtomicBool) -> u64 {
    tracing::dispatcher::with_default(d, || {
        let mut seq = 0u64;
        while !stop.load(Ordering::Relaxed) {
            tracing::info!(seq, "numbered line {seq}");
            seq += 1;
            if seq % 50 == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        seq
    })
}

/// Stops the logger when dropped, also when an assertion fails first (a
/// scope would otherwise wait for it forever).
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Whether `path` exists and holds at least `n` lines.
fn has_lines(path: &Path, n: usize) -> bool {
    read_lines(path).len() >= n
}

#[test]
fn a_file_renamed_twice_under_load_is_reopened_and_every_line_is_in_one_file() {
    let dir = temp_dir("renamed");
    let path = dir.join("app.log");
    let sink = FileSink::new(&path).expect("sink");
    let d = dispatch("sink-file-renamed", sink.clone());
    let stop = AtomicBool::new(false);
    let (logged, reopened) = std::thread::scope(|s| {
        let logger = s.spawn(|| log_until(&d, &stop));
        let stopper = StopOnDrop(&stop);
        let mut reopened = Vec::new();
        assert!(wait_until(Duration::from_secs(10), || has_lines(&path, 1)));
        // logrotate without copytruncate: app.log -> app.log.1, then on the
        // next round app.log.1 -> app.log.2 and app.log -> app.log.1.
        std::fs::rename(&path, rotated(&path, 1)).expect("rename");
        reopened.push(wait_until(Duration::from_secs(10), || has_lines(&path, 1)));
        std::fs::rename(rotated(&path, 1), rotated(&path, 2)).expect("rename");
        if reopened[0] {
            std::fs::rename(&path, rotated(&path, 1)).expect("rename");
            reopened.push(wait_until(Duration::from_secs(10), || has_lines(&path, 1)));
        }
        drop(stopper);
        (logger.join().expect("logger"), reopened)
    });
    assert!(sink.flush(Duration::from_secs(30)));
    assert_eq!(reopened, [true, true], "app.log was not created again");
    let stats = sink.stats();
    assert_eq!((stats.sent, stats.dropped), (logged, 0));
    // Oldest to newest, the three files hold every line once, in order.
    let mut all = Vec::new();
    for f in [rotated(&path, 2), rotated(&path, 1), path.clone()] {
        let lines = parse_all(&read_lines(&f));
        assert!(!lines.is_empty(), "{} is empty", f.display());
        all.extend(lines);
    }
    assert_eq!(seqs(&all), (0..logged).collect::<Vec<_>>());
    println!("file: {logged} lines across two renames, none lost");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_file_removed_under_load_is_created_again_and_gets_the_lines_after() {
    let dir = temp_dir("removed");
    let path = dir.join("app.log");
    let sink = FileSink::new(&path).expect("sink");
    let d = dispatch("sink-file-removed", sink.clone());
    let stop = AtomicBool::new(false);
    let (logged, reopened, grew) = std::thread::scope(|s| {
        let logger = s.spawn(|| log_until(&d, &stop));
        let stopper = StopOnDrop(&stop);
        assert!(wait_until(Duration::from_secs(10), || has_lines(&path, 1)));
        std::fs::remove_file(&path).expect("rm");
        let reopened = wait_until(Duration::from_secs(10), || has_lines(&path, 1));
        // Keep logging a while into the new file.
        let grew = reopened && wait_until(Duration::from_secs(10), || has_lines(&path, 200));
        drop(stopper);
        (logger.join().expect("logger"), reopened, grew)
    });
    assert!(sink.flush(Duration::from_secs(30)));
    assert!(reopened, "app.log was not created again");
    assert!(grew);
    // The lines written between the rm and the check went to the removed
    // file; every line after them is in the new one, in order.
    let stats = sink.stats();
    assert_eq!((stats.sent, stats.dropped), (logged, 0));
    let kept = seqs(&parse_all(&read_lines(&path)));
    let first = kept[0];
    assert!(first > 0);
    assert_eq!(kept, (first..logged).collect::<Vec<_>>());
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(unix)]
#[test]
fn files_are_created_owner_only_unless_a_mode_is_set() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = temp_dir("mode");
    let mode = |p: &Path| std::fs::metadata(p).expect("file").permissions().mode() & 0o777;
    let path = dir.join("app.log");
    let _sink = FileSink::new(&path).expect("sink");
    assert_eq!(mode(&path), 0o600, "{:o}", mode(&path));
    // A rotated-to file is created the same way.
    let small = dir.join("small.log");
    let sink = FileSink::builder(&small)
        .max_file_bytes(16)
        .max_files(2)
        .build()
        .expect("sink");
    sink.write_json_line(JsonLine::new("{\"n\":1,\"pad\":\"xxx\"}\n").expect("a line"));
    sink.write_json_line(JsonLine::new("{\"n\":2,\"pad\":\"xxx\"}\n").expect("a line"));
    assert!(sink.flush(Duration::from_secs(10)));
    assert_eq!(read_lines(&rotated(&small, 1)).len(), 1);
    assert_eq!(mode(&small), 0o600, "{:o}", mode(&small));
    // Configured: the umask may take bits away, never add them.
    let shared = dir.join("shared.log");
    let _sink = FileSink::builder(&shared)
        .mode(0o640)
        .build()
        .expect("sink");
    let m = mode(&shared);
    assert_eq!((m & !0o640, m & 0o600), (0, 0o600), "{m:o}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(unix)]
#[test]
fn a_symlink_at_the_path_is_refused_with_a_clear_error_unless_followed() {
    let dir = temp_dir("symlink");
    let target = dir.join("elsewhere");
    std::fs::write(&target, "").expect("target");
    let path = dir.join("app.log");
    std::os::unix::fs::symlink(&target, &path).expect("symlink");

    let err = FileSink::new(&path).expect_err("a symlink is refused");
    let text = err.to_string();
    assert!(
        text.contains("symbolic link") && text.contains("follow_symlinks"),
        "{text}"
    );
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert_eq!(std::fs::read(&target).expect("target").len(), 0);

    let sink = FileSink::builder(&path)
        .follow_symlinks(true)
        .build()
        .expect("followed when asked");
    sink.write_json_line(JsonLine::new("{\"n\":1}\n").expect("a line"));
    assert!(sink.flush(Duration::from_secs(10)));
    assert_eq!(read_lines(&target), ["{\"n\":1}"]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(unix)]
#[test]
fn a_symlink_planted_after_an_rm_is_not_followed_by_the_reopen() {
    let dir = temp_dir("planted");
    let target = dir.join("elsewhere");
    std::fs::write(&target, "").expect("target");
    let path = dir.join("app.log");
    let sink = FileSink::builder(&path)
        .backoff(Duration::from_millis(10), Duration::from_millis(50))
        .build()
        .expect("sink");
    sink.write_json_line(JsonLine::new("{\"n\":1}\n").expect("a line"));
    assert!(sink.flush(Duration::from_secs(10)));
    std::fs::remove_file(&path).expect("rm");
    std::os::unix::fs::symlink(&target, &path).expect("symlink");
    // Past the sink's check interval, so the next write looks at the path.
    std::thread::sleep(Duration::from_millis(300));
    sink.write_json_line(JsonLine::new("{\"n\":2}\n").expect("a line"));
    assert!(
        !sink.flush(Duration::from_secs(1)),
        "written through the link"
    );
    assert_eq!(std::fs::read(&target).expect("target").len(), 0);
    let stats = sink.stats();
    assert_eq!((stats.sent, stats.dropped), (1, 1));
    let error = stats.last_error.unwrap_or_default();
    assert!(error.contains("symbolic link"), "{error}");
    let _ = std::fs::remove_dir_all(&dir);
}
