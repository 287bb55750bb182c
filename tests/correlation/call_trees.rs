//! Every line of one call tree carries one correlation ID; separate root
//! calls get separate IDs.

use observe::correlation::{self, CorrelationId, FutureExt as _};
use observe::monitor_performance;
use observe::testing;
use serde_json::Value;

#[monitor_performance("outer")]
pub(crate) fn outer() -> u32 {
    tracing::info!("inside outer");
    inner() + inner()
}

#[monitor_performance("inner")]
pub(crate) fn inner() -> u32 {
    1
}

#[monitor_performance("async.outer")]
async fn async_outer() -> u32 {
    let a = async_inner().await;
    tokio::task::yield_now().await;
    tracing::info!("between awaits");
    a + async_inner().await + inner()
}

#[monitor_performance("async.inner")]
pub(crate) async fn async_inner() -> u32 {
    tokio::task::yield_now().await;
    2
}

fn ids(lines: &[Value]) -> Vec<&str> {
    lines
        .iter()
        .map(|l| l["correlation_id"].as_str().expect("string id"))
        .collect()
}

fn assert_one_id(lines: &[Value]) -> String {
    let ids = ids(lines);
    assert!(!ids.is_empty());
    assert!(ids.iter().all(|id| *id == ids[0]), "ids differ: {ids:?}");
    let id = ids[0];
    assert!(id.starts_with("req_"), "{id}");
    id.to_owned()
}

#[test]
fn nested_sync_calls_share_one_id() {
    let c = testing::capture(outer);
    assert_eq!(c.output, 2);
    // inside outer, inner, inner, outer completed
    assert_eq!(c.lines.len(), 4, "{:#?}", c.raw_lines);
    assert_one_id(&c.lines);
    assert_eq!(
        correlation::current(),
        None,
        "the root scope is closed after the call"
    );
}

#[test]
fn nested_async_calls_share_one_id_across_awaits() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let c = rt.block_on(testing::capture_async(async_outer()));
    assert_eq!(c.output, 5);
    // async.inner x2, "between awaits", inner, async.outer
    assert_eq!(c.lines.len(), 5, "{:#?}", c.raw_lines);
    assert_one_id(&c.lines);
}

#[test]
fn async_calls_keep_their_id_on_a_foreign_executor() {
    let c = futures::executor::block_on(testing::capture_async(async_outer()));
    assert_eq!(c.lines.len(), 5);
    assert_one_id(&c.lines);
}

#[test]
fn concurrent_root_calls_get_different_ids() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let c = rt.block_on(testing::capture_async(async {
        // Interleaved on one thread: each keeps its own ID across awaits.
        tokio::join!(async_outer(), async_outer())
    }));
    assert_eq!(c.lines.len(), 10);
    let mut by_id = std::collections::BTreeMap::<&str, usize>::new();
    for id in ids(&c.lines) {
        *by_id.entry(id).or_default() += 1;
    }
    assert_eq!(by_id.len(), 2, "{by_id:?}");
    assert!(by_id.values().all(|n| *n == 5), "{by_id:?}");
}

#[test]
fn sequential_root_calls_get_different_ids() {
    let c = testing::capture(|| {
        inner();
        inner();
    });
    let ids = ids(&c.lines);
    assert_eq!(ids.len(), 2);
    assert_ne!(ids[0], ids[1]);
}

#[test]
fn an_explicit_scope_is_joined() {
    let id: CorrelationId = "abc-123".parse().expect("valid id");
    let c = testing::capture(|| correlation::scope(id, outer));
    let ids = ids(&c.lines);
    assert_eq!(ids.len(), 4);
    assert!(ids.iter().all(|i| *i == "abc-123"), "{ids:?}");
}

#[test]
fn a_future_adapter_is_joined() {
    let id: CorrelationId = "job.7".parse().expect("valid id");
    let c = futures::executor::block_on(testing::capture_async(async_outer().with_correlation(id)));
    let ids = ids(&c.lines);
    assert_eq!(ids.len(), 5);
    assert!(ids.iter().all(|i| *i == "job.7"), "{ids:?}");
}

#[test]
fn lines_outside_any_call_still_carry_an_id() {
    let c = testing::capture(|| tracing::warn!(disk = "sda", "disk nearly full"));
    let id = c.lines[0]["correlation_id"].as_str().expect("id");
    assert!(id.starts_with("req_"));
    assert_eq!(c.lines[0]["context"]["disk"], "sda");
}

#[monitor_performance("waits.forever")]
async fn logs_then_waits() {
    tracing::info!("started");
    std::future::pending::<()>().await;
}

#[test]
fn a_cancelled_call_logs_under_the_id_its_body_used() {
    let c = testing::capture(|| {
        let mut fut = Box::pin(logs_then_waits());
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        assert!(fut.as_mut().poll(&mut cx).is_pending());
        drop(fut);
    });
    assert_eq!(c.lines.len(), 2, "{:#?}", c.raw_lines);
    assert_eq!(c.lines[1]["message"], "waits.forever cancelled");
    assert_one_id(&c.lines);
}
