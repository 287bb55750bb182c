//! Correlation IDs follow tasks and threads, and stay apart between
//! concurrent requests. This binary owns the process's global subscriber,
//! so it holds a single test.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use observe::sink::CaptureSink;
use observe::{Observe, monitor_performance};
use serde_json::Value;

#[monitor_performance("root", context(task = task))]
async fn root_task(task: u32) {
    for step in 0..3u32 {
        tokio::task::yield_now().await;
        tracing::info!(task, step, "step");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[monitor_performance("child", context(kind = kind))]
async fn child(kind: &'static str) -> &'static str {
    tokio::task::yield_now().await;
    kind
}

#[monitor_performance("child", context(kind = kind))]
fn child_sync(kind: &'static str) -> &'static str {
    kind
}

#[monitor_performance("parent")]
async fn parent() {
    observe::correlation::spawn(child("spawn"))
        .await
        .expect("task");
    observe::correlation::spawn_blocking(|| child_sync("spawn_blocking"))
        .await
        .expect("task");
    let id_seen = observe::correlation::thread::spawn(|| {
        child_sync("thread");
        observe::correlation::current()
    })
    .join()
    .expect("thread");
    assert!(id_seen.is_some());
    tokio::spawn(child("bare")).await.expect("task");
}

fn parse(lines: &[String]) -> Vec<Value> {
    lines
        .iter()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

#[test]
fn ids_follow_tasks_and_threads_and_never_leak() {
    let sink = CaptureSink::new();
    let _guard = Observe::builder("propagation")
        .sink(sink.clone())
        .prometheus(false)
        .install()
        .expect("install");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("runtime");

    // 100 concurrent root tasks on a work-stealing runtime.
    rt.block_on(async {
        let handles: Vec<_> = (0..100).map(|t| tokio::spawn(root_task(t))).collect();
        for h in handles {
            h.await.expect("task");
        }
    });
    let lines = parse(&sink.take());
    assert_eq!(lines.len(), 100 * 4, "3 steps + 1 completion per task");
    let mut ids_by_task: BTreeMap<u64, BTreeSet<String>> = BTreeMap::new();
    for l in &lines {
        let task = l["context"]["task"].as_u64().expect("task in context");
        ids_by_task
            .entry(task)
            .or_default()
            .insert(l["correlation_id"].as_str().expect("id").to_owned());
    }
    assert_eq!(ids_by_task.len(), 100);
    assert!(
        ids_by_task.values().all(|ids| ids.len() == 1),
        "a task's lines carry one id: {ids_by_task:?}"
    );
    let distinct: BTreeSet<_> = ids_by_task.values().flatten().collect();
    assert_eq!(distinct.len(), 100, "no id is shared between tasks");

    // Spawn helpers carry the parent's ID; a bare tokio::spawn does not.
    rt.block_on(parent());
    let lines = parse(&sink.take());
    let parent_id = lines
        .iter()
        .find(|l| l["message"] == "parent completed")
        .map(|l| l["correlation_id"].clone())
        .expect("parent line");
    let child_id = |kind: &str| {
        lines
            .iter()
            .find(|l| l["message"] == "child completed" && l["context"]["kind"] == kind)
            .map(|l| l["correlation_id"].clone())
            .unwrap_or_else(|| panic!("no line for {kind}: {lines:#?}"))
    };
    assert_eq!(child_id("spawn"), parent_id);
    assert_eq!(child_id("spawn_blocking"), parent_id);
    assert_eq!(child_id("thread"), parent_id);
    assert_ne!(
        child_id("bare"),
        parent_id,
        "a bare tokio::spawn starts its own id"
    );
}
