//! Hold-until-root: a failing request writes every line of its nested
//! calls, a succeeding one only what sampling keeps, and the memory held
//! stays within its bounds. The builder installs globally, so this binary
//! holds a single test.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use observe::sink::CaptureSink;
use observe::{Observe, monitor_performance};
use serde_json::Value;
use tracing::level_filters::LevelFilter;

const PER_REQUEST: usize = 4096;
const TOTAL: usize = 8192;

#[monitor_performance("child.ok")]
fn child_ok(n: u32) -> Result<u32, std::io::Error> {
    tracing::info!(n, "child ok working");
    Ok(n)
}

#[monitor_performance("child.fail")]
fn child_fail(fail: bool) -> Result<(), std::io::Error> {
    tracing::info!("child fail working");
    if fail {
        Err(std::io::Error::other("boom"))
    } else {
        Ok(())
    }
}

#[monitor_performance("root")]
fn root(fail: bool) -> Result<(), std::io::Error> {
    tracing::info!("root start");
    child_ok(1)?;
    child_fail(fail)?;
    Ok(())
}

#[monitor_performance("child.ok.async")]
async fn child_ok_async(n: u32) -> Result<u32, std::io::Error> {
    tokio::task::yield_now().await;
    tracing::info!(n, "child ok working");
    tokio::task::yield_now().await;
    Ok(n)
}

#[monitor_performance("child.fail.async")]
async fn child_fail_async(fail: bool) -> Result<(), std::io::Error> {
    tokio::task::yield_now().await;
    tracing::info!("child fail working");
    if fail {
        Err(std::io::Error::other("boom"))
    } else {
        Ok(())
    }
}

#[monitor_performance("root.async")]
async fn root_async(fail: bool) -> Result<(), std::io::Error> {
    tracing::info!("root start");
    child_ok_async(1).await?;
    tokio::task::yield_now().await;
    child_fail_async(fail).await?;
    Ok(())
}

#[monitor_performance("sleepy")]
async fn sleepy() {
    tracing::info!("sleepy start");
    tokio::time::sleep(Duration::from_secs(30)).await;
}

#[monitor_performance("root.cancelled")]
async fn root_cancelled() {
    tracing::info!("root start");
    sleepy().await;
}

/// A request that logs far more than one request may hold.
#[monitor_performance("chatty")]
fn chatty(lines: usize) {
    for n in 0..lines {
        tracing::info!(n, pad = "x".repeat(150).as_str(), "chatty line");
    }
}

fn parsed(capture: &CaptureSink) -> Vec<Value> {
    capture
        .take()
        .iter()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect()
}

fn messages(lines: &[Value]) -> Vec<&str> {
    lines
        .iter()
        .map(|l| l["message"].as_str().unwrap_or(""))
        .collect()
}

/// Every line carries the same correlation ID.
fn one_id(lines: &[Value]) {
    let first = &lines[0]["correlation_id"];
    assert!(first.is_string());
    assert!(
        lines.iter().all(|l| &l["correlation_id"] == first),
        "{lines:#?}"
    );
}

fn counter(text: &str, name: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (series, value) = l.rsplit_once(' ')?;
        let n = series.split_once('{').map_or(series, |(n, _)| n);
        (n == name).then(|| value.parse().ok())?
    })
}

#[test]
fn a_failing_request_keeps_its_whole_story_and_memory_stays_bounded() {
    let capture = CaptureSink::new();
    let guard = Observe::builder("holder")
        .sink(capture.clone())
        .level(LevelFilter::INFO)
        .sample("*", 0.0)
        .hold_until_root(PER_REQUEST, TOTAL)
        .install()
        .expect("install");

    // Outside every monitored call: written at once.
    tracing::info!("outside");
    assert_eq!(messages(&parsed(&capture)), ["outside"]);

    // Sync: the failing request is written whole, in order, success lines
    // included; the succeeding one is sampled out whole.
    assert!(root(true).is_err());
    let lines = parsed(&capture);
    assert_eq!(
        messages(&lines),
        [
            "root start",
            "child ok working",
            "child.ok completed",
            "child fail working",
            "child.fail failed: boom",
            "root failed: boom",
        ]
    );
    one_id(&lines);
    assert!(root(false).is_ok());
    assert_eq!(parsed(&capture), Vec::<Value>::new());

    // Async, on a work-stealing runtime: the held lines travel with the
    // root's future.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let run_async = |fail: bool| {
        rt.block_on(async { tokio::spawn(root_async(fail)).await })
            .expect("task")
    };
    assert!(run_async(true).is_err());
    let lines = parsed(&capture);
    assert_eq!(
        messages(&lines),
        [
            "root start",
            "child ok working",
            "child.ok.async completed",
            "child fail working",
            "child.fail.async failed: boom",
            "root.async failed: boom",
        ]
    );
    one_id(&lines);
    assert!(run_async(false).is_ok());
    assert_eq!(parsed(&capture), Vec::<Value>::new());

    // Cancelled: the root's buffer is released as its future is dropped.
    // The inner call's future is dropped first, so its "cancelled" line
    // (WARN, never sampled out) is written ahead of the rest.
    let timed_out = rt.block_on(async {
        tokio::time::timeout(Duration::from_millis(20), root_cancelled()).await
    });
    assert!(timed_out.is_err());
    let lines = parsed(&capture);
    let mut got = messages(&lines);
    got.sort_unstable();
    assert_eq!(
        got,
        [
            "root start",
            "root.cancelled cancelled",
            "sleepy cancelled",
            "sleepy start",
        ]
    );
    one_id(&lines);
    assert_eq!(observe::volume::held_bytes(), 0);

    // Sampling everything: a succeeding request is written whole.
    observe::volume::apply([("OBSERVE_SAMPLE", "*=1")]).expect("sample");
    let _ = capture.take();
    assert!(root(false).is_ok());
    let lines = parsed(&capture);
    assert_eq!(
        messages(&lines),
        [
            "root start",
            "child ok working",
            "child.ok completed",
            "child fail working",
            "child.fail completed",
            "root completed",
        ]
    );
    one_id(&lines);
    assert!(run_async(false).is_ok());
    assert_eq!(parsed(&capture).len(), 6);
    observe::volume::apply([("OBSERVE_SAMPLE", "*=0")]).expect("sample");
    let _ = capture.take();

    // Past the per-request bound: written early, nothing lost although the
    // request succeeds and sampling would drop it, counted and said.
    chatty(100);
    let lines = parsed(&capture);
    let chatty_lines = lines
        .iter()
        .filter(|l| l["message"] == "chatty line")
        .count();
    assert_eq!(chatty_lines, 100);
    let numbers: Vec<u64> = lines
        .iter()
        .filter_map(|l| l["context"]["n"].as_u64())
        .collect();
    assert_eq!(numbers, (0..100).collect::<Vec<_>>(), "in order");
    assert!(
        lines
            .iter()
            .any(|l| l["level"] == "WARN" && l["context"]["requests"] == 1),
        "the overflow is said: {:#?}",
        messages(&lines)
    );
    let text = guard.render().expect("prometheus");
    assert_eq!(
        counter(&text, "log_lines_hold_overflow_total"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(observe::volume::held_bytes(), 0);

    // Many requests at once: what is held never passes the total bound.
    let stop = AtomicBool::new(false);
    let most = AtomicUsize::new(0);
    std::thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                most.fetch_max(observe::volume::held_bytes(), Ordering::Relaxed);
                std::hint::spin_loop();
            }
        });
        let workers: Vec<_> = (0..8)
            .map(|i| {
                s.spawn(move || {
                    for n in 0..300 {
                        // One in 50 fails; the rest are sampled out.
                        let _ = root((n + i) % 50 == 0);
                        if n % 100 == 0 {
                            std::thread::sleep(Duration::from_millis(1));
                        }
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().expect("worker");
        }
        stop.store(true, Ordering::Relaxed);
    });
    let most = most.load(Ordering::Relaxed);
    assert!(most > 0, "something was held");
    assert!(most <= TOTAL, "{most} bytes held, over {TOTAL}");
    assert_eq!(observe::volume::held_bytes(), 0);
    let lines = parsed(&capture);
    let failed = lines
        .iter()
        .filter(|l| l["message"] == "root failed: boom")
        .count();
    assert_eq!(failed, 8 * 6, "every failing request is written");
    // A failing request's lines all made it, whether held to the end or
    // written early.
    let started = lines
        .iter()
        .filter(|l| l["message"] == "root start")
        .count();
    assert!(started >= failed, "{started} {failed}");
    drop(guard);
}
