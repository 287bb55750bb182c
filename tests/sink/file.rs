//! The rotating file sink: size and count limits, whole lines only.

use std::error::Error;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

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
