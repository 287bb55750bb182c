//! `#[monitor_performance]` on impl blocks: one line and one set of metrics
//! per call of each monitored method, under `Type.method` (or the block's
//! prefix, or the method's own name); skipped and `const` methods record
//! nothing. Also compiled under the strict lints below, like `lints`.
#![deny(warnings, clippy::all)]

use std::collections::BTreeSet;
use std::time::Duration;

use observe::monitor_performance;
use observe::testing::{self, Captured};

#[derive(Debug, PartialEq)]
struct Missing;

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("missing")
    }
}

#[derive(Debug, Default)]
struct Store {
    items: Vec<u32>,
}

#[monitor_performance]
impl Store {
    const LIMIT: usize = 3;

    fn new() -> Self {
        Self::default()
    }

    fn get(&self, index: usize) -> Result<u32, Missing> {
        self.items.get(index).copied().ok_or(Missing)
    }

    async fn count(&self) -> usize {
        self.items.len()
    }

    #[monitor_performance("store.put", level = "debug", context(value = value))]
    fn put(&mut self, value: u32) -> bool {
        if self.items.len() >= Self::LIMIT {
            return false;
        }
        self.items.push(value);
        true
    }

    #[monitor_performance(skip)]
    fn peek(&self) -> Option<u32> {
        self.items.first().copied()
    }

    const fn limit() -> usize {
        Self::LIMIT
    }
}

trait Repo {
    fn find(&self, value: u32) -> Option<usize>;
    async fn load(&self) -> u32;
}

// A trait impl with a prefix and a level for every method.
#[monitor_performance(prefix = "repo", level = "debug")]
impl Repo for Store {
    fn find(&self, value: u32) -> Option<usize> {
        self.items.iter().position(|v| *v == value)
    }

    async fn load(&self) -> u32 {
        self.items.iter().sum()
    }
}

struct Cache<T>(Vec<T>);

// A generic impl; the block's threshold applies to both methods. It is
// well above a loaded machine's stalls: `first` must not be slow.
#[monitor_performance(slow = "50ms")]
impl<T> Cache<T>
where
    T: Clone,
{
    fn first(&self) -> Option<T> {
        self.0.first().cloned()
    }

    #[monitor_performance(level = "warn")]
    fn sleepy(&self) -> usize {
        std::thread::sleep(Duration::from_millis(60));
        self.0.len()
    }
}

#[async_trait::async_trait]
trait Remote {
    async fn fetch(&self, id: u32) -> Result<u32, String>;
    async fn ping(&self) -> u8;
}

struct Client;

#[async_trait::async_trait]
#[monitor_performance]
impl Remote for Client {
    async fn fetch(&self, id: u32) -> Result<u32, String> {
        if id == 0 {
            return Err("zero".into());
        }
        Ok(id * 2)
    }

    async fn ping(&self) -> u8 {
        1
    }
}

struct Server;

#[monitor_performance(prefix = "server")]
#[async_trait::async_trait]
impl Remote for Server {
    async fn fetch(&self, id: u32) -> Result<u32, String> {
        Ok(id)
    }

    #[monitor_performance(skip)]
    async fn ping(&self) -> u8 {
        2
    }
}

/// The `(operation, status, level)` of each line, in order, each line
/// schema-valid.
fn lines<T>(c: &Captured<T>) -> Vec<(String, String, String)> {
    c.raw_lines
        .iter()
        .for_each(|raw| observe::log::LogValidator::validate_line(raw).expect("valid line"));
    c.lines
        .iter()
        .map(|l| {
            let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
            (
                text(&l["performance"]["operation"]),
                text(&l["performance"]["status"]),
                text(&l["level"]),
            )
        })
        .collect()
}

/// Every call of `calls` is counted once under its operation and status,
/// with one duration sample, none still in flight, and no other operation
/// has metrics.
fn assert_metrics<T>(c: &Captured<T>, calls: &[(&str, &str)]) {
    for (op, status) in calls {
        let n = calls.iter().filter(|call| call == &&(*op, *status)).count();
        let labels = [("operation", *op), ("status", *status)];
        assert_eq!(
            c.metrics.counter("operation_calls_total", &labels),
            u64::try_from(n).ok(),
            "{op} {status}: {:#?}",
            c.metrics.keys()
        );
        assert_eq!(
            c.metrics
                .histogram("operation_duration_seconds", &labels)
                .map(<[f64]>::len),
            Some(n),
            "{op} {status}: {:#?}",
            c.metrics.keys()
        );
        assert_eq!(
            c.metrics.gauge("operation_in_flight", &[("operation", op)]),
            Some(0.0)
        );
    }
    let expected: BTreeSet<&str> = calls.iter().map(|(op, _)| *op).collect();
    let seen: BTreeSet<String> = c
        .metrics
        .keys()
        .iter()
        .filter_map(|key| {
            let (_, labels) = key.split_once("operation=")?;
            Some(labels.split([',', '}']).next()?.to_owned())
        })
        .collect();
    let seen: BTreeSet<&str> = seen.iter().map(String::as_str).collect();
    assert_eq!(seen, expected, "{:#?}", c.metrics.keys());
}

fn line(op: &str, status: &str, level: &str) -> (String, String, String) {
    (op.to_owned(), status.to_owned(), level.to_owned())
}

#[test]
fn inherent_methods_are_named_after_the_type() {
    let c = testing::capture(|| {
        let mut store = Store::new();
        assert!(store.put(7));
        assert!(store.put(8));
        assert_eq!(store.get(1), Ok(8));
        assert_eq!(store.get(5), Err(Missing));
        assert_eq!(store.peek(), Some(7));
        assert_eq!(Store::limit(), 3);
        store
    });
    assert_eq!(
        lines(&c),
        [
            line("Store.new", "success", "INFO"),
            line("store.put", "success", "DEBUG"),
            line("store.put", "success", "DEBUG"),
            line("Store.get", "success", "INFO"),
            line("Store.get", "error", "ERROR"),
        ]
    );
    // The method's own context, and the error classified by its type.
    assert_eq!(c.lines[1]["context"]["value"], 7);
    assert_eq!(c.lines[4]["message"], "Store.get failed: missing");
    assert_eq!(c.lines[4]["context"]["error_type"], "Missing");
    assert_metrics(
        &c,
        &[
            ("Store.new", "success"),
            ("store.put", "success"),
            ("store.put", "success"),
            ("Store.get", "success"),
            ("Store.get", "error"),
        ],
    );

    let store = c.output;
    let c = futures::executor::block_on(testing::capture_async(store.count()));
    assert_eq!(c.output, 2);
    assert_eq!(lines(&c), [line("Store.count", "success", "INFO")]);
    assert_metrics(&c, &[("Store.count", "success")]);
}

#[test]
fn trait_impl_with_a_prefix() {
    let store = Store {
        items: vec![1, 2, 3],
    };
    let c = testing::capture(|| store.find(2));
    assert_eq!(c.output, Some(1));
    assert_eq!(lines(&c), [line("repo.find", "success", "DEBUG")]);
    assert_metrics(&c, &[("repo.find", "success")]);

    let c = futures::executor::block_on(testing::capture_async(store.load()));
    assert_eq!(c.output, 6);
    assert_eq!(lines(&c), [line("repo.load", "success", "DEBUG")]);
    assert_metrics(&c, &[("repo.load", "success")]);
}

#[test]
fn generic_impl_shares_the_blocks_options() {
    let cache = Cache(vec!["a".to_owned()]);
    let c = testing::capture(|| (cache.first(), cache.sleepy()));
    assert_eq!(c.output, (Some("a".to_owned()), 1));
    // `sleepy` keeps the block's threshold under its own level: the slow
    // line is WARN either way, and its `threshold_ms` is the block's.
    assert_eq!(
        lines(&c),
        [
            line("Cache.first", "success", "INFO"),
            line("Cache.sleepy", "success", "WARN"),
        ]
    );
    assert_eq!(c.lines[1]["message"], "Cache.sleepy slow");
    assert_eq!(c.lines[1]["performance"]["threshold_ms"], 50.0);
    assert_metrics(
        &c,
        &[("Cache.first", "success"), ("Cache.sleepy", "success")],
    );
}

#[test]
fn async_trait_in_either_order() {
    let c = futures::executor::block_on(testing::capture_async(async {
        (
            Client.fetch(2).await,
            Client.fetch(0).await,
            Client.ping().await,
        )
    }));
    assert_eq!(c.output, (Ok(4), Err("zero".to_owned()), 1));
    assert_eq!(
        lines(&c),
        [
            line("Client.fetch", "success", "INFO"),
            line("Client.fetch", "error", "ERROR"),
            line("Client.ping", "success", "INFO"),
        ]
    );
    assert_metrics(
        &c,
        &[
            ("Client.fetch", "success"),
            ("Client.fetch", "error"),
            ("Client.ping", "success"),
        ],
    );

    let c = futures::executor::block_on(testing::capture_async(async {
        (Server.fetch(3).await, Server.ping().await)
    }));
    assert_eq!(c.output, (Ok(3), 2));
    assert_eq!(lines(&c), [line("server.fetch", "success", "INFO")]);
    assert_metrics(&c, &[("server.fetch", "success")]);
}

#[test]
fn skipped_methods_record_nothing() {
    let store = Store { items: vec![4] };
    let c = testing::capture(|| (store.peek(), Store::limit()));
    assert_eq!(c.output, (Some(4), 3));
    assert!(c.raw_lines.is_empty(), "{:#?}", c.raw_lines);
    assert!(c.metrics.keys().is_empty(), "{:#?}", c.metrics.keys());

    let c = futures::executor::block_on(testing::capture_async(Server.ping()));
    assert_eq!(c.output, 2);
    assert!(c.raw_lines.is_empty(), "{:#?}", c.raw_lines);
    assert!(c.metrics.keys().is_empty(), "{:#?}", c.metrics.keys());
}
