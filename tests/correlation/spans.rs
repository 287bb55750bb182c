//! Span ids within one process: every monitored call is a span of its
//! request's trace, a child of the call it runs in, across awaits and the
//! spawn helpers; lines carry the span they are written in.

use observe::monitor_performance;
use observe::testing;
use serde_json::Value;

// The same call shapes as the correlation tests, and one that spawns.
use crate::call_trees::{async_inner, inner, outer};

#[monitor_performance("async.outer")]
async fn async_outer() -> u32 {
    let a = async_inner().await;
    tokio::task::yield_now().await;
    let spawned = observe::correlation::spawn(async_inner())
        .await
        .expect("task");
    a + spawned + inner()
}

fn field<'a>(line: &'a Value, name: &str) -> Option<&'a str> {
    line[name].as_str()
}

/// The line of the call `operation`; panics if it is not there once.
fn call<'a>(lines: &'a [Value], operation: &str) -> Vec<&'a Value> {
    lines
        .iter()
        .filter(|l| l["performance"]["operation"] == operation)
        .collect()
}

fn is_hex(text: &str, digits: usize) -> bool {
    text.len() == digits
        && text
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
}

#[test]
fn nested_sync_calls_are_children_of_the_call_they_run_in() {
    let c = testing::capture(outer);
    let outer = call(&c.lines, "outer")[0];
    let inners = call(&c.lines, "inner");
    assert_eq!(inners.len(), 2);
    let outer_span = field(outer, "span_id").expect("span id");
    assert!(is_hex(outer_span, 16), "{outer_span}");
    assert_eq!(field(outer, "parent_span_id"), None, "a root span");
    for i in &inners {
        assert_eq!(field(i, "parent_span_id"), Some(outer_span));
        assert_ne!(field(i, "span_id"), Some(outer_span));
    }
    assert_ne!(field(inners[0], "span_id"), field(inners[1], "span_id"));
    let event = c
        .lines
        .iter()
        .find(|l| l["message"] == "inside outer")
        .expect("event line");
    assert_eq!(field(event, "span_id"), Some(outer_span));
    let traces: std::collections::BTreeSet<_> = c
        .lines
        .iter()
        .map(|l| field(l, "trace_id").expect("trace id"))
        .collect();
    assert_eq!(traces.len(), 1, "{:#?}", c.raw_lines);
    assert!(is_hex(traces.first().expect("one"), 32));
}

#[test]
fn separate_root_calls_are_separate_traces() {
    let c = testing::capture(|| (outer(), outer()));
    let roots = call(&c.lines, "outer");
    assert_ne!(field(roots[0], "trace_id"), field(roots[1], "trace_id"));
}

#[test]
fn async_calls_and_spawned_tasks_are_children_of_their_caller() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let c = testing::capture(|| rt.block_on(async_outer()));
    assert_eq!(c.output, 5);
    let outer = call(&c.lines, "async.outer")[0];
    let outer_span = field(outer, "span_id").expect("span");
    let children: Vec<_> = c
        .lines
        .iter()
        .filter(|l| l["performance"]["operation"] != "async.outer")
        .collect();
    assert_eq!(children.len(), 3, "{:#?}", c.raw_lines);
    for child in children {
        assert_eq!(field(child, "parent_span_id"), Some(outer_span), "{child}");
        assert_eq!(field(child, "trace_id"), field(outer, "trace_id"));
    }
}

#[test]
fn a_new_correlation_scope_starts_a_new_trace_without_a_parent() {
    let c = testing::capture(|| {
        outer_with_scope();
    });
    let inner = call(&c.lines, "inner")[0];
    assert_eq!(field(inner, "parent_span_id"), None, "{:#?}", c.raw_lines);
    assert_eq!(field(inner, "correlation_id"), Some("job-1"));
}

#[monitor_performance("outer.scoped")]
fn outer_with_scope() {
    let id: observe::correlation::CorrelationId = "job-1".parse().expect("valid");
    observe::correlation::scope(id, inner);
}
