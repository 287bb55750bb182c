//! The `_bulk` sink against osmem-server, an in-memory server speaking the
//! Elasticsearch/OpenSearch API: volume, search by correlation, index
//! names, per-item errors, and a cluster absent at start.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use crate::common::{counter_reaching, http_json, recorder, wait_until};
use crate::logging::dispatch;
use crate::support::{Service, free_port};
use observe::correlation::{self, CorrelationId};
use observe::metrics::names::{LOG_LINES_DROPPED_TOTAL, LOG_LINES_SENT_TOTAL};
use observe::sink::{ElasticsearchSink, Sink as _};
use serde_json::{Value, json};

/// Makes every indexed document visible to search (a no-op on osmem,
/// required on Elasticsearch).
fn refresh(es: &Service, index: &str) {
    let _ = crate::common::http("POST", &format!("{}/{index}/_refresh", es.url()), "");
}

fn count(es: &Service, index: &str) -> u64 {
    refresh(es, index);
    http_json("GET", &format!("{}/{index}/_count", es.url()), "")["count"]
        .as_u64()
        .expect("count")
}

fn search(es: &Service, index: &str, query: Value) -> Vec<Value> {
    refresh(es, index);
    let body = json!({ "query": query, "size": 10_000 }).to_string();
    let v = http_json("POST", &format!("{}/{index}/_search", es.url()), &body);
    v["hits"]["hits"].as_array().expect("hits").clone()
}

/// The index a line of `service` logged at `timestamp` must be in.
fn expected_index(service: &str, timestamp: &str) -> String {
    let date = &timestamp[..10];
    format!("{service}-logs-{}", date.replace('-', "."))
}

#[test]
fn hundred_thousand_lines_are_searchable_by_correlation_in_daily_indices() {
    const THREADS: u64 = 4;
    const PER_THREAD: u64 = 25_000;
    const PER_CORRELATION: u64 = 100;
    recorder();
    let Some(es) = Service::start_or_skip("osmem-server", &[]) else {
        return;
    };
    let sink = ElasticsearchSink::builder(es.url())
        .name("bulk-volume")
        .capacity_bytes(64 * 1024 * 1024)
        .build()
        .expect("sink");
    let d = dispatch("sink-bulk", sink.clone());

    let start = Instant::now();
    let ids: Vec<Vec<String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let d = d.clone();
                s.spawn(move || {
                    let mut ids = Vec::new();
                    tracing::dispatcher::with_default(&d, || {
                        for group in 0..PER_THREAD / PER_CORRELATION {
                            let id = CorrelationId::generate();
                            ids.push(id.to_string());
                            correlation::scope(id, || {
                                for i in 0..PER_CORRELATION {
                                    let seq = group * PER_CORRELATION + i;
                                    tracing::info!(thread = t, seq, "bulk line {seq}");
                                }
                            });
                        }
                    });
                    ids
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    let logged = start.elapsed();
    assert!(sink.flush(Duration::from_secs(300)), "{:?}", sink.stats());
    let flushed = start.elapsed();
    let stats = sink.stats();
    let total = THREADS * PER_THREAD;
    println!(
        "bulk: {total} lines logged in {logged:?}, all acknowledged by _bulk at {flushed:?} ({:.0} lines/s); {stats:?}",
        total as f64 / flushed.as_secs_f64()
    );
    assert_eq!((stats.sent, stats.dropped, stats.queued), (total, 0, 0));
    assert_eq!(
        counter_reaching(LOG_LINES_SENT_TOTAL, "bulk-volume", total),
        total
    );
    assert_eq!(count(&es, "sink-bulk-logs-*"), total);

    // Index names follow the pattern, from each line's own timestamp.
    let indices = http_json("GET", &format!("{}/_cat/indices?format=json", es.url()), "");
    let names: BTreeSet<&str> = indices
        .as_array()
        .expect("indices")
        .iter()
        .filter_map(|i| i["index"].as_str())
        .collect();
    assert!(!names.is_empty());
    for name in &names {
        let date = name
            .strip_prefix("sink-bulk-logs-")
            .expect("pattern prefix");
        let parts: Vec<&str> = date.split('.').collect();
        assert!(
            parts.len() == 3
                && parts
                    .iter()
                    .zip([4, 2, 2])
                    .all(|(p, n)| p.len() == n && p.bytes().all(|b| b.is_ascii_digit())),
            "{name} does not follow {{service}}-logs-%Y.%m.%d"
        );
    }

    // A search on a correlation ID returns exactly that correlation's lines.
    for (t, thread_ids) in ids.iter().enumerate() {
        for (group, id) in thread_ids.iter().enumerate().step_by(83) {
            let hits = search(
                &es,
                "sink-bulk-logs-*",
                json!({ "term": { "correlation_id": id } }),
            );
            let mut seqs = Vec::new();
            for hit in &hits {
                let src = &hit["_source"];
                assert_eq!(src["correlation_id"], id.as_str());
                assert_eq!(src["context"]["thread"], t as u64);
                let ts = src["timestamp"].as_str().expect("timestamp");
                assert_eq!(hit["_index"], expected_index("sink-bulk", ts));
                seqs.push(src["context"]["seq"].as_u64().expect("seq"));
            }
            seqs.sort_unstable();
            let first = group as u64 * PER_CORRELATION;
            assert_eq!(
                seqs,
                (first..first + PER_CORRELATION).collect::<Vec<_>>(),
                "correlation {id}"
            );
        }
    }
}

#[test]
fn per_item_errors_are_counted_and_not_retried() {
    recorder();
    let Some(es) = Service::start_or_skip("osmem-server", &[]) else {
        return;
    };
    let sink = ElasticsearchSink::builder(es.url())
        .name("bulk-reject")
        .index_pattern("reject-%Y")
        .build()
        .expect("sink");
    let d = dispatch("sink-reject", sink.clone());
    tracing::dispatcher::with_default(&d, || {
        tracing::info!(x = 1, "maps context.x as a number");
        tracing::info!(x = "not a number", "conflicts with the mapping");
        tracing::info!(x = 2, "fits the mapping");
    });
    assert!(sink.flush(Duration::from_secs(30)));
    let stats = sink.stats();
    println!("bulk per-item errors: {stats:?}");
    assert_eq!((stats.sent, stats.dropped, stats.rejected), (2, 1, 1));
    let error = stats.last_error.expect("the refusal is reported");
    assert!(error.contains("mapper_parsing_exception"), "{error}");
    assert_eq!(
        counter_reaching(LOG_LINES_DROPPED_TOTAL, "bulk-reject", 1),
        1
    );
    let messages: BTreeSet<String> = search(&es, "reject-*", json!({ "match_all": {} }))
        .iter()
        .map(|h| {
            h["_source"]["message"]
                .as_str()
                .expect("message")
                .to_owned()
        })
        .collect();
    assert_eq!(
        messages,
        BTreeSet::from([
            "maps context.x as a number".to_owned(),
            "fits the mapping".to_owned()
        ])
    );
}

#[test]
fn cluster_absent_at_start_then_started() {
    recorder();
    let port = free_port();
    let sink = ElasticsearchSink::builder(format!("http://127.0.0.1:{port}"))
        .name("bulk-absent")
        .backoff(Duration::from_millis(50), Duration::from_millis(500))
        .build()
        .expect("an absent cluster is not an error");
    let d = dispatch("sink-late", sink.clone());
    let log = |from: u64| {
        tracing::dispatcher::with_default(&d, || {
            for seq in from..from + 50 {
                tracing::info!(seq, "line {seq}");
            }
        });
    };
    log(0);
    assert!(wait_until(Duration::from_secs(30), || sink
        .stats()
        .last_error
        .is_some()));
    assert_eq!(sink.stats().sent, 0);
    let Some(es) = Service::start_on_or_skip("osmem-server", port, &[]) else {
        return;
    };
    log(50);
    assert!(sink.flush(Duration::from_secs(30)), "{:?}", sink.stats());
    let stats = sink.stats();
    assert_eq!((stats.sent, stats.dropped), (100, 0));
    let seqs: HashMap<u64, usize> = crate::common::counts(
        search(&es, "sink-late-logs-*", json!({ "match_all": {} }))
            .iter()
            .map(|h| h["_source"]["context"]["seq"].as_u64().expect("seq")),
    );
    assert_eq!(seqs.len(), 100);
    assert!(seqs.values().all(|&n| n == 1), "no line indexed twice");
}
