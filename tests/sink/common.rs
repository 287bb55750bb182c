//! Helpers of the sink tests: polling, a tiny HTTP client, and a global
//! debugging recorder for the sink counters.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use metrics_util::debugging::DebugValue;
use serde_json::Value;

pub(crate) use crate::harness::{recorder, wait_until};

/// One HTTP/1.1 request with `Connection: close`; returns status and body.
pub(crate) fn http(method: &str, url: &str, body: &str) -> (u16, String) {
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let mut s = TcpStream::connect(host).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("send request");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read response");
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").expect("response head");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    (status, body)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    loop {
        let (size, rest) = s.split_once("\r\n").expect("chunk size");
        let n = usize::from_str_radix(size.trim(), 16).expect("hex size");
        if n == 0 {
            return out;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
}

/// A JSON request whose answer is JSON.
pub(crate) fn http_json(method: &str, url: &str, body: &str) -> Value {
    let (status, text) = http(method, url, body);
    assert!(
        (200..300).contains(&status),
        "{method} {url}: HTTP {status}: {text}"
    );
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{url}: {e}: {text}"))
}

/// Counter `name{sink=...}` once it reaches `want`, or its value after 10 s:
/// workers publish their counters when they finish a batch and at least once
/// a second, not at the instant a line is counted.
pub(crate) fn counter_reaching(name: &str, sink: &str, want: u64) -> u64 {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let v = sink_counter(name, sink);
        if v >= want || std::time::Instant::now() >= deadline {
            return v;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Asserts that `log_lines_sent_total` and `log_lines_dropped_total` of
/// `sink` reach exactly what its stats say.
pub(crate) fn assert_counters_match(sink: &str, stats: &observe::sink::SinkStats) {
    use observe::metrics::names::{LOG_LINES_DROPPED_TOTAL, LOG_LINES_SENT_TOTAL};
    assert_eq!(
        counter_reaching(LOG_LINES_DROPPED_TOTAL, sink, stats.dropped),
        stats.dropped,
        "{sink}: dropped"
    );
    assert_eq!(
        counter_reaching(LOG_LINES_SENT_TOTAL, sink, stats.sent),
        stats.sent,
        "{sink}: sent"
    );
}

/// The value of counter `name{sink=...}`, 0 if never incremented.
///
/// Snapshots reset the debugging recorder's counters, so every snapshot
/// is added to a running total that all tests of the binary share.
pub(crate) fn sink_counter(name: &str, sink: &str) -> u64 {
    static TOTALS: Mutex<Option<HashMap<(String, String), u64>>> = Mutex::new(None);
    let mut totals = TOTALS.lock().unwrap_or_else(PoisonError::into_inner);
    let totals = totals.get_or_insert_with(HashMap::new);
    for (key, _, _, value) in recorder().snapshot().into_vec() {
        let k = key.key();
        if let DebugValue::Counter(v) = value {
            for l in k.labels().filter(|l| l.key() == "sink") {
                *totals
                    .entry((k.name().to_owned(), l.value().to_owned()))
                    .or_insert(0) += v;
            }
        }
    }
    totals
        .get(&(name.to_owned(), sink.to_owned()))
        .copied()
        .unwrap_or(0)
}

/// Counts of each key in `items`.
pub(crate) fn counts<K: std::hash::Hash + Eq>(
    items: impl IntoIterator<Item = K>,
) -> HashMap<K, usize> {
    let mut m = HashMap::new();
    for k in items {
        *m.entry(k).or_insert(0) += 1;
    }
    m
}
