//! The `_bulk` request: one body per window of queued lines, and the
//! answer read back into a fate per line.

use std::io;

use serde_json::Value;

use crate::net::conn::{Conn, NetOptions};
use crate::net::deadline::Deadline;
use crate::net::http::{self, Target};
use crate::sink::worker::{Batch, Failure, Fate, Transport};

/// Trims `_bulk` answers to what the sink reads.
const BULK_PATH: &str =
    "/_bulk?filter_path=errors,items.*.status,items.*.error.type,items.*.error.reason";

/// Each queued entry is its index name, a space and the line (see
/// [`IndexName`](super::index::IndexName)).
fn split_entry(entry: &[u8]) -> (&[u8], &[u8]) {
    match memchr::memchr(b' ', entry) {
        Some(at) => (&entry[..at], &entry[at + 1..]),
        // Not queued by the sink; indexed where nameless lines go.
        None => (b"logs", entry),
    }
}

pub(super) struct BulkTransport {
    target: Target,
    net: NetOptions,
    conn: Option<Conn>,
    requests_on_conn: u64,
    ids: IdGen,
    /// Request size limit; halved on HTTP 413, doubled back (up to
    /// `max_chunk`) after [`REGROW_AFTER`] accepted requests in a row.
    chunk_limit: usize,
    max_chunk: usize,
    /// Requests accepted since the limit last changed.
    accepted: u32,
}

/// Accepted requests in a row after which a limit halved by a 413 doubles:
/// a proxy's limit raised (or a one-off 413) does not cost throughput for
/// the life of the process, and a limit that holds is probed only rarely.
const REGROW_AFTER: u32 = 8;

impl BulkTransport {
    pub(super) fn new(target: Target, net: NetOptions, chunk_limit: usize) -> Self {
        Self {
            target,
            net,
            conn: None,
            requests_on_conn: 0,
            ids: IdGen::new(),
            chunk_limit,
            max_chunk: chunk_limit,
            accepted: 0,
        }
    }

    fn accepted(&mut self) {
        self.accepted = self.accepted.saturating_add(1);
        if self.accepted >= REGROW_AFTER && self.chunk_limit < self.max_chunk {
            self.chunk_limit = self.chunk_limit.saturating_mul(2).min(self.max_chunk);
            self.accepted = 0;
        }
    }

    fn too_large(&mut self) {
        self.chunk_limit = (self.chunk_limit / 2).max(1);
        self.accepted = 0;
    }
}

impl BulkTransport {
    /// Posts `body`, reconnecting once if a kept-alive connection turns out
    /// to have been closed by the server. The whole exchange, reconnecting
    /// included, ends within the sink's I/O timeout.
    fn post(&mut self, body: &[u8]) -> io::Result<http::Response> {
        let deadline = Deadline::after(self.net.io_timeout);
        loop {
            if self.conn.is_none() {
                self.conn = Some(Conn::open_until(
                    &self.target.endpoint,
                    &self.net,
                    deadline.min_after(self.net.connect_timeout),
                    self.net.io_timeout,
                )?);
                self.requests_on_conn = 0;
            }
            let reused = self.requests_on_conn > 0;
            let Some(conn) = self.conn.as_mut() else {
                return Err(io::ErrorKind::NotConnected.into());
            };
            match http::post(
                conn,
                &self.target,
                BULK_PATH,
                "application/x-ndjson",
                body,
                deadline,
                http::MAX_BODY,
            ) {
                Ok(resp) => {
                    self.requests_on_conn += 1;
                    if resp.close {
                        self.conn = None;
                    }
                    return Ok(resp);
                }
                // The `_id`s make resending safe even if it did arrive.
                Err(_) if reused => self.conn = None,
                Err(e) => {
                    self.conn = None;
                    return Err(e);
                }
            }
        }
    }
}

impl Transport for BulkTransport {
    fn is_connected(&self) -> bool {
        self.conn.is_some()
    }

    fn connect(&mut self) -> io::Result<()> {
        self.conn = Some(Conn::open(&self.target.endpoint, &self.net)?);
        self.requests_on_conn = 0;
        Ok(())
    }

    fn send(&mut self, batch: &mut Batch) -> Result<(), Failure> {
        let lines: Vec<&[u8]> = batch.lines().collect();
        self.ids.align(batch.generation(), lines.len());
        let mut fates = vec![Fate::Keep; lines.len()];
        let mut note = None;
        let mut outcome = Ok(());
        let mut body = Vec::new();
        let mut i = 0;
        while i < lines.len() {
            body.clear();
            let mut j = i;
            while j < lines.len()
                && (j == i || body.len() + lines[j].len() + 100 <= self.chunk_limit)
            {
                let (index, line) = split_entry(lines[j]);
                body.extend_from_slice(b"{\"index\":{\"_index\":\"");
                body.extend_from_slice(index);
                body.extend_from_slice(b"\",\"_id\":\"");
                body.extend_from_slice(self.ids.id(j).as_bytes());
                body.extend_from_slice(b"\"}}\n");
                body.extend_from_slice(line);
                body.push(b'\n');
                j += 1;
            }
            let resp = match self.post(&body) {
                Ok(r) => r,
                Err(e) => {
                    outcome = Err(Failure::Connection(e));
                    break;
                }
            };
            match resp.status {
                200..=299 => {
                    if let Err(why) = apply_items(&resp.body, &mut fates[i..j], &mut note) {
                        outcome = Err(Failure::Busy(why));
                        break;
                    }
                    self.accepted();
                }
                413 if j - i > 1 => {
                    self.too_large();
                    continue;
                }
                401 | 403 | 404 => {
                    // Credentials being rotated, a proxy route being
                    // replaced: the lines stay queued and the worker
                    // retries them with backoff, within its usual budget
                    // for refused lines, then drops and counts them.
                    note = Some(format!(
                        "_bulk answered HTTP {}: {}; lines kept for a retry",
                        resp.status,
                        snippet(&resp.body)
                    ));
                    break;
                }
                408 | 429 | 500..=599 => {
                    outcome = Err(Failure::Busy(format!(
                        "_bulk answered HTTP {}: {}",
                        resp.status,
                        snippet(&resp.body)
                    )));
                    break;
                }
                status => {
                    // 4xx: the same request would get the same answer.
                    fates[i..j].fill(Fate::Rejected);
                    note = Some(format!(
                        "_bulk answered HTTP {status}: {}",
                        snippet(&resp.body)
                    ));
                }
            }
            i = j;
        }
        drop(lines);
        self.ids.retain(&fates);
        batch.resolve_each(&fates);
        if let Some(note) = note {
            batch.note(note);
        }
        outcome
    }

    fn disconnect(&mut self) {
        self.conn = None;
    }

    fn close(&mut self) {
        if let Some(mut conn) = self.conn.take() {
            conn.close();
        }
    }
}

/// Reads a `_bulk` answer into per-line fates.
fn apply_items(body: &[u8], fates: &mut [Fate], note: &mut Option<String>) -> Result<(), String> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| format!("unreadable _bulk answer: {e}: {}", snippet(body)))?;
    if v.get("errors") == Some(&Value::Bool(false)) {
        fates.fill(Fate::Sent);
        return Ok(());
    }
    let items = v
        .get("items")
        .and_then(Value::as_array)
        .ok_or_else(|| format!("_bulk answer without items: {}", snippet(body)))?;
    // Items missing from a short answer stay `Keep` and are retried.
    for (fate, item) in fates.iter_mut().zip(items) {
        let result = item.as_object().and_then(|o| o.values().next());
        let status = result.and_then(|r| r.get("status")).and_then(Value::as_u64);
        *fate = match status {
            Some(200..=299) => Fate::Sent,
            Some(429 | 502..=504) => Fate::Keep,
            _ => {
                let error = result.and_then(|r| r.get("error"));
                let kind = error.and_then(|e| e.get("type")).and_then(Value::as_str);
                let reason = error.and_then(|e| e.get("reason")).and_then(Value::as_str);
                *note = Some(format!(
                    "_bulk item refused ({}): {}: {}",
                    status.unwrap_or(0),
                    kind.unwrap_or("unknown"),
                    reason.unwrap_or("")
                ));
                Fate::Rejected
            }
        };
    }
    Ok(())
}

fn snippet(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(&body[..body.len().min(300)]);
    s.replace(['\n', '\r'], " ")
}

/// Document IDs: a per-sink random prefix (from the crate's one random
/// source) and a sequence, fixed for each
/// line while it is retried.
struct IdGen {
    prefix: String,
    next: u64,
    generation: u64,
    /// IDs of the batch's pending lines, in order.
    ids: Vec<u64>,
    buf: String,
}

impl IdGen {
    fn new() -> Self {
        // IDs only need to differ between sinks and runs writing the same
        // index: 64 random bits per sink.
        Self {
            prefix: format!("{:016x}", crate::correlation::random_u64()),
            next: 0,
            generation: u64::MAX,
            ids: Vec::new(),
            buf: String::new(),
        }
    }

    /// Gives a new batch fresh IDs; a retried batch keeps its own.
    fn align(&mut self, generation: u64, lines: usize) {
        if generation != self.generation || self.ids.len() != lines {
            self.generation = generation;
            self.ids = (self.next..self.next + lines as u64).collect();
            self.next += lines as u64;
        }
    }

    fn id(&mut self, i: usize) -> &str {
        self.buf.clear();
        self.buf.push_str(&self.prefix);
        self.buf.push('-');
        self.buf
            .push_str(itoa::Buffer::new().format(self.ids.get(i).copied().unwrap_or(0)));
        &self.buf
    }

    fn retain(&mut self, fates: &[Fate]) {
        let mut k = 0;
        self.ids.retain(|_| {
            let keep = fates.get(k).is_none_or(|f| *f == Fate::Keep);
            k += 1;
            keep
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bulk_items_map_to_fates() {
        let body = br#"{"errors":true,"items":[{"index":{"status":201}},{"index":{"status":429}},{"index":{"status":400,"error":{"type":"mapper_parsing_exception","reason":"bad"}}},{"index":{"status":503}}]}"#;
        let mut fates = vec![Fate::Keep; 5];
        let mut note = None;
        apply_items(body, &mut fates, &mut note).unwrap();
        assert_eq!(
            fates,
            [
                Fate::Sent,
                Fate::Keep,
                Fate::Rejected,
                Fate::Keep,
                Fate::Keep
            ]
        );
        assert!(note.unwrap().contains("mapper_parsing_exception"));
        let mut fates = vec![Fate::Keep; 2];
        apply_items(br#"{"errors":false}"#, &mut fates, &mut None).unwrap();
        assert_eq!(fates, [Fate::Sent, Fate::Sent]);
        assert!(apply_items(b"<html>", &mut fates, &mut None).is_err());
    }

    /// A server answering each request with the next scripted response;
    /// returns its URL and the request bodies it got.
    fn scripted(
        responses: Vec<(u16, &'static str)>,
    ) -> (String, std::sync::mpsc::Receiver<String>) {
        use std::io::{BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut writer = stream;
            for (status, body) in responses {
                let (_, request) = crate::net::http::read_request(&mut reader).unwrap();
                tx.send(String::from_utf8(request).unwrap()).unwrap();
                write!(
                    writer,
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )
                .unwrap();
            }
        });
        (url, rx)
    }

    #[test]
    fn the_chunk_limit_grows_back_after_a_413() {
        let mut t = transport("http://127.0.0.1:9");
        t.too_large();
        t.too_large();
        assert_eq!(t.chunk_limit, 1 << 18);
        for _ in 0..REGROW_AFTER - 1 {
            t.accepted();
        }
        assert_eq!(t.chunk_limit, 1 << 18, "not after fewer successes");
        t.accepted();
        assert_eq!(t.chunk_limit, 1 << 19);
        for _ in 0..10 * REGROW_AFTER {
            t.accepted();
        }
        assert_eq!(t.chunk_limit, 1 << 20, "never past the configured size");
    }

    #[test]
    fn an_authentication_failure_keeps_the_lines_for_a_retry() {
        let ok = r#"{"errors":false}"#;
        let (url, _bodies) = scripted(vec![(401, "rotating"), (403, "no"), (200, ok)]);
        let mut t = transport(&url);
        t.connect().unwrap();
        let mut batch = Batch::from_lines(b"ix {\"n\":1}\nix {\"n\":2}\n");
        t.send(&mut batch).unwrap();
        assert_eq!(batch.pending().len(), 22, "a 401 keeps every line");
        t.send(&mut batch).unwrap();
        assert_eq!(batch.pending().len(), 22, "so does a 403");
        t.send(&mut batch).unwrap();
        assert!(batch.is_empty());
        assert_eq!(batch.counts(), (2, 0, 0));
    }

    fn transport(url: &str) -> BulkTransport {
        BulkTransport::new(Target::parse(url).unwrap(), NetOptions::default(), 1 << 20)
    }

    fn ids_in(body: &str) -> Vec<String> {
        body.lines()
            .filter_map(|l| {
                serde_json::from_str::<Value>(l).ok()?["index"]["_id"]
                    .as_str()
                    .map(str::to_owned)
            })
            .collect()
    }

    #[test]
    fn busy_answers_and_refused_items_are_retried_bad_items_are_not() {
        let (url, bodies) = scripted(vec![
            (503, "{}"),
            (
                200,
                r#"{"errors":true,"items":[{"index":{"status":201}},{"index":{"status":429}},{"index":{"status":400,"error":{"type":"mapper_parsing_exception"}}}]}"#,
            ),
            (
                200,
                r#"{"errors":false,"items":[{"index":{"status":201}}]}"#,
            ),
        ]);
        let mut t = transport(&url);
        t.connect().unwrap();
        let mut batch = Batch::from_lines(b"ix {\"n\":1}\nix {\"n\":2}\nix {\"n\":3}\n");
        assert!(matches!(t.send(&mut batch), Err(Failure::Busy(_))));
        assert_eq!(batch.pending().len(), 33, "a busy answer keeps every line");
        t.send(&mut batch).unwrap();
        assert_eq!(
            batch.pending(),
            b"ix {\"n\":2}\n",
            "only the 429 item is kept"
        );
        t.send(&mut batch).unwrap();
        assert!(batch.is_empty());
        let recv = || {
            bodies
                .recv_timeout(std::time::Duration::from_secs(10))
                .unwrap()
        };
        let (first, second, third) = (recv(), recv(), recv());
        let body: Vec<Value> = first
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(body[0]["index"]["_index"], "ix", "the queued index name");
        assert_eq!(body[1], serde_json::json!({"n": 1}), "the line as queued");
        assert_eq!(
            ids_in(&first),
            ids_in(&second),
            "a retried request reuses its IDs"
        );
        assert_eq!(
            ids_in(&third),
            ids_in(&second)[1..2],
            "and so does a retried item"
        );
        assert_eq!(batch.counts(), (2, 1, 1));
    }

    #[test]
    fn a_request_too_large_is_split_and_a_single_line_too_large_is_rejected() {
        let ok = r#"{"errors":false}"#;
        let (url, bodies) = scripted(vec![(413, ""), (200, ok), (413, ""), (400, "no")]);
        let mut t = transport(&url);
        t.connect().unwrap();
        // Three lines of 100 bytes: ~170 bytes each in a request.
        let line = |n: u8| format!("ix {{\"n\":{n},\"pad\":\"{}\"}}\n", "x".repeat(85));
        let data = format!("{}{}{}", line(1), line(2), line(3));
        let mut batch = Batch::from_lines(data.as_bytes());
        t.chunk_limit = 600;
        t.send(&mut batch).unwrap();
        assert!(batch.is_empty());
        // 413 for three lines halves the limit to one line a request; the
        // second line alone gets 413 (rejected), the third a 400 (rejected:
        // retrying cannot help).
        let sizes: Vec<usize> = (0..4)
            .map(|_| {
                ids_in(
                    &bodies
                        .recv_timeout(std::time::Duration::from_secs(10))
                        .unwrap(),
                )
                .len()
            })
            .collect();
        assert_eq!(sizes, [3, 1, 1, 1]);
        assert_eq!(batch.counts(), (1, 2, 2));
    }

    #[test]
    fn ids_survive_retries_of_the_same_batch() {
        let mut ids = IdGen::new();
        ids.align(1, 3);
        let first: Vec<String> = (0..3).map(|i| ids.id(i).to_owned()).collect();
        ids.retain(&[Fate::Sent, Fate::Keep, Fate::Rejected]);
        ids.align(1, 1);
        assert_eq!(ids.id(0), first[1]);
        ids.align(2, 2);
        assert_ne!(ids.id(0), first[1]);
    }
}
