//! Elasticsearch / OpenSearch through the `_bulk` API, into daily indices.

use std::io;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::SinkError;
use super::conn::{Conn, NetOptions};
use super::http::{self, Target};
use super::options::{net_options, queue_options, queued_sink};
use super::worker::{Batch, Failure, Fate, Options, Pipe, Transport};

/// Default index name pattern, as the plan's Logstash output
/// (`ha-ingestor-logs-%{+YYYY.MM.dd}`).
pub const DEFAULT_INDEX_PATTERN: &str = "{service}-logs-%Y.%m.%d";

/// Trims `_bulk` answers to what the sink reads.
const BULK_PATH: &str =
    "/_bulk?filter_path=errors,items.*.status,items.*.error.type,items.*.error.reason";

/// Indexes lines with `_bulk` requests from a background worker.
///
/// Each line goes to the index named by the pattern (default
/// [`DEFAULT_INDEX_PATTERN`]) with `{service}` and `%Y` `%m` `%d` taken
/// from the line's own `service` and `timestamp`, so a line lands in the
/// index of the day it was logged. Each line gets an `_id` fixed when it
/// is first sent, so a request retried after a lost response overwrites
/// instead of duplicating.
///
/// Retries only what can succeed later: connection errors, HTTP 408, 429
/// and 5xx, and items refused with 429 or 502-504 (those a few times).
/// Other per-item errors (mapping conflicts) and 4xx answers drop the
/// lines, counted as rejected; a 413 splits the request.
///
/// ```no_run
/// # fn main() -> Result<(), observe_runtime::sink::SinkError> {
/// use observe_runtime::sink::ElasticsearchSink;
///
/// let sink = ElasticsearchSink::builder("http://127.0.0.1:9200")
///     .index_pattern("ha-ingestor-logs-%Y.%m.%d")
///     .build()?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ElasticsearchSink {
    pipe: Pipe,
}

/// Configures an [`ElasticsearchSink`]; made by [`ElasticsearchSink::builder`].
#[derive(Debug, Clone)]
#[must_use = "the sink is made by `build()`"]
pub struct ElasticsearchSinkBuilder {
    url: String,
    pattern: String,
    authorization: Option<String>,
    opts: Options,
    net: NetOptions,
}

impl ElasticsearchSink {
    /// Starts configuring a sink to the cluster at `url`
    /// (`http[s]://[user:password@]host:port[/prefix]`).
    pub fn builder(url: impl Into<String>) -> ElasticsearchSinkBuilder {
        ElasticsearchSinkBuilder {
            url: url.into(),
            pattern: DEFAULT_INDEX_PATTERN.to_owned(),
            authorization: None,
            opts: Options::new("elasticsearch", 2 * 1024 * 1024),
            net: NetOptions {
                io_timeout: Duration::from_secs(30),
                ..NetOptions::default()
            },
        }
    }

    /// A sink to `url` with the default options.
    ///
    /// # Errors
    ///
    /// See [`ElasticsearchSinkBuilder::build`].
    pub fn new(url: impl Into<String>) -> Result<Self, SinkError> {
        Self::builder(url).build()
    }
}

queue_options!(ElasticsearchSinkBuilder);
net_options!(ElasticsearchSinkBuilder);

impl ElasticsearchSinkBuilder {
    /// Names each line's index: `{service}` is the line's service, `%Y`
    /// `%m` `%d` its UTC date, `%%` a percent sign. The result is
    /// lowercased and characters indices cannot hold become `_`.
    pub fn index_pattern(mut self, pattern: impl Into<String>) -> Self {
        self.pattern = pattern.into();
        self
    }

    /// Authenticates with a user and password (also taken from the URL).
    pub fn basic_auth(mut self, user: &str, password: &str) -> Self {
        self.authorization = Some(http::basic_auth(user, password));
        self
    }

    /// Authenticates with an Elasticsearch API key (the encoded form).
    pub fn api_key(mut self, key: &str) -> Self {
        self.authorization = Some(format!("ApiKey {key}"));
        self
    }

    /// Starts the sink's worker. It connects in the background: an
    /// unreachable cluster is not an error.
    ///
    /// # Errors
    ///
    /// If the URL or the pattern is invalid, the URL is `https` without the
    /// `tls` feature (or without a usable CA), an option is zero, or the
    /// worker thread cannot be started.
    pub fn build(mut self) -> Result<ElasticsearchSink, SinkError> {
        let mut target = Target::parse(&self.url)?;
        if self.authorization.is_some() {
            target.authorization = self.authorization.take();
        }
        if target.tls {
            #[cfg(feature = "tls")]
            if self.net.tls.is_none() {
                self.net.tls = Some(super::TlsConfig::system()?);
            }
            #[cfg(not(feature = "tls"))]
            return Err(SinkError::config("https needs observe's `tls` feature"));
        } else {
            #[cfg(feature = "tls")]
            {
                self.net.tls = None;
            }
        }
        let transport = BulkTransport {
            pattern: IndexPattern::parse(&self.pattern)?,
            target,
            net: self.net,
            conn: None,
            requests_on_conn: 0,
            ids: IdGen::new(),
            chunk_limit: self.opts.max_batch_bytes,
            cache: IndexCache::default(),
        };
        Ok(ElasticsearchSink {
            pipe: Pipe::start(&self.opts, transport)?,
        })
    }
}

queued_sink!(ElasticsearchSink);

struct BulkTransport {
    pattern: IndexPattern,
    target: Target,
    net: NetOptions,
    conn: Option<Conn>,
    requests_on_conn: u64,
    ids: IdGen,
    /// Request size limit; halved on HTTP 413.
    chunk_limit: usize,
    cache: IndexCache,
}

impl BulkTransport {
    /// Posts `body`, reconnecting once if a kept-alive connection turns out
    /// to have been closed by the server.
    fn post(&mut self, body: &[u8]) -> io::Result<http::Response> {
        loop {
            if self.conn.is_none() {
                self.connect()?;
            }
            let reused = self.requests_on_conn > 0;
            let Some(conn) = self.conn.as_mut() else {
                return Err(io::ErrorKind::NotConnected.into());
            };
            match http::post(conn, &self.target, BULK_PATH, "application/x-ndjson", body) {
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
                let index = self.cache.index_for(&self.pattern, lines[j]);
                body.extend_from_slice(b"{\"index\":{\"_index\":\"");
                body.extend_from_slice(index.as_bytes());
                body.extend_from_slice(b"\",\"_id\":\"");
                body.extend_from_slice(self.ids.id(j).as_bytes());
                body.extend_from_slice(b"\"}}\n");
                body.extend_from_slice(lines[j]);
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
                }
                413 if j - i > 1 => {
                    self.chunk_limit = (self.chunk_limit / 2).max(1);
                    continue;
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

/// Document IDs: a per-sink random prefix and a sequence, fixed for each
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
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        // Unique enough per sink: IDs only need to differ between sinks
        // and runs writing the same index.
        static SINKS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = SINKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mix = nanos ^ (u64::from(std::process::id()) << 40) ^ n.rotate_right(8);
        Self {
            prefix: format!("{mix:016x}"),
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

/// A parsed index name pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
struct IndexPattern(Vec<Part>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Service,
    Year,
    Month,
    Day,
}

impl IndexPattern {
    fn parse(pattern: &str) -> Result<Self, SinkError> {
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut rest = pattern;
        while let Some(c) = rest.chars().next() {
            let (part, len) = if rest.starts_with("{service}") {
                (Some(Part::Service), 9)
            } else if c == '%' {
                let part = match rest.as_bytes().get(1) {
                    Some(b'Y') => Part::Year,
                    Some(b'm') => Part::Month,
                    Some(b'd') => Part::Day,
                    Some(b'%') => Part::Text("%".to_owned()),
                    _ => {
                        return Err(SinkError::config(format!(
                            "index pattern {pattern:?}: only %Y, %m, %d and %% are supported"
                        )));
                    }
                };
                (Some(part), 2)
            } else {
                text.push(c);
                (None, c.len_utf8())
            };
            if let Some(part) = part {
                if !text.is_empty() {
                    parts.push(Part::Text(std::mem::take(&mut text)));
                }
                parts.push(part);
            }
            rest = &rest[len..];
        }
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        if parts.is_empty() {
            return Err(SinkError::config("the index pattern is empty"));
        }
        Ok(Self(parts))
    }

    fn render(&self, service: &str, date: &[u8; 10]) -> String {
        let mut out = String::new();
        for part in &self.0 {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Service => out.push_str(service),
                Part::Year => out.push_str(&String::from_utf8_lossy(&date[0..4])),
                Part::Month => out.push_str(&String::from_utf8_lossy(&date[5..7])),
                Part::Day => out.push_str(&String::from_utf8_lossy(&date[8..10])),
            }
        }
        sanitize_index(&out)
    }
}

/// Lowercase, only characters every index name may hold, no leading
/// `-`, `_` or `+`.
fn sanitize_index(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '-' | '_' | '.' | '+') => c,
            _ => '_',
        })
        .collect();
    let trimmed = out.trim_start_matches(['-', '_', '+']).len();
    out.drain(..out.len() - trimmed);
    if out.is_empty() || out == "." || out == ".." {
        out = "logs".to_owned();
    }
    out.truncate(255);
    out
}

/// Remembers the last line's index name: lines of one service and one day
/// share it, so most lines cost two short scans.
#[derive(Default)]
struct IndexCache {
    key: Vec<u8>,
    name: String,
}

impl IndexCache {
    fn index_for(&mut self, pattern: &IndexPattern, line: &[u8]) -> &str {
        let date = line_date(line).unwrap_or_else(today);
        let service = line_service(line);
        let key_len = 10 + service.len();
        if self.key.len() != key_len
            || self.key[..10] != date
            || self.key[10..] != *service.as_bytes()
        {
            self.key.clear();
            self.key.extend_from_slice(&date);
            self.key.extend_from_slice(service.as_bytes());
            self.name = pattern.render(&service, &date);
        }
        &self.name
    }
}

/// `YYYY-MM-DD` from the line's `timestamp`.
fn line_date(line: &[u8]) -> Option<[u8; 10]> {
    let at = find(line, b"\"timestamp\":\"")? + 13;
    let d: [u8; 10] = line.get(at..at + 10)?.try_into().ok()?;
    let digits = [0, 1, 2, 3, 5, 6, 8, 9]
        .iter()
        .all(|&i| d[i].is_ascii_digit());
    (digits && d[4] == b'-' && d[7] == b'-').then_some(d)
}

/// The line's `service`, or `unknown`.
fn line_service(line: &[u8]) -> std::borrow::Cow<'_, str> {
    let fallback = std::borrow::Cow::Borrowed("unknown");
    let Some(at) = find(line, b"\"service\":\"").map(|i| i + 11) else {
        return fallback;
    };
    let rest = &line[at..];
    let Some(end) = rest.iter().position(|&c| c == b'"' || c == b'\\') else {
        return fallback;
    };
    if rest[end] == b'"' {
        return std::str::from_utf8(&rest[..end]).map_or(fallback, std::borrow::Cow::Borrowed);
    }
    // An escaped name: let the JSON parser unescape it.
    serde_json::from_slice::<Value>(line)
        .ok()
        .and_then(|v| v.get("service")?.as_str().map(str::to_owned))
        .map_or(fallback, std::borrow::Cow::Owned)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Today's UTC date as `YYYY-MM-DD`.
fn today() -> [u8; 10] {
    let days = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400);
    let (y, m, d) = civil_from_days(days);
    let mut out = *b"0000-00-00";
    let digits = |out: &mut [u8], mut v: u64| {
        for b in out.iter_mut().rev() {
            *b = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    digits(&mut out[0..4], y);
    digits(&mut out[5..7], m);
    digits(&mut out[8..10], d);
    out
}

/// Howard Hinnant's `civil_from_days` for days since 1970-01-01.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &[u8] = br#"{"timestamp":"2026-11-30T01:22:09.123456Z","level":"INFO","service":"Websocket Ingestion","message":"m"}"#;

    #[test]
    fn index_names_follow_the_pattern_and_the_line() {
        let p = IndexPattern::parse(DEFAULT_INDEX_PATTERN).unwrap();
        let mut cache = IndexCache::default();
        assert_eq!(
            cache.index_for(&p, LINE),
            "websocket_ingestion-logs-2026.11.30"
        );
        let escaped = br#"{"timestamp":"2026-01-02T00:00:00Z","service":"a\"b"}"#;
        assert_eq!(cache.index_for(&p, escaped), "a_b-logs-2026.01.02");
        let p = IndexPattern::parse("logs-%Y%m%%").unwrap();
        assert_eq!(p.render("x", b"2026-01-02"), "logs-202601_");
        assert!(IndexPattern::parse("logs-%H").is_err());
        assert!(IndexPattern::parse("").is_err());
        assert_eq!(sanitize_index("_-Bad*Name"), "bad_name");
        assert_eq!(sanitize_index("__"), "logs");
    }

    #[test]
    fn lines_without_a_timestamp_use_today() {
        let d = line_date(b"{\"message\":\"x\"}").unwrap_or_else(today);
        assert!(d.starts_with(b"20"));
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_422), (2025, 11, 30));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(line_service(b"{}"), "unknown");
    }

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
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut writer = stream;
            for (status, body) in responses {
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    if line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap();
                    }
                }
                let mut request = vec![0; length];
                reader.read_exact(&mut request).unwrap();
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

    fn transport(url: &str) -> BulkTransport {
        BulkTransport {
            pattern: IndexPattern::parse(DEFAULT_INDEX_PATTERN).unwrap(),
            target: Target::parse(url).unwrap(),
            net: NetOptions::default(),
            conn: None,
            requests_on_conn: 0,
            ids: IdGen::new(),
            chunk_limit: 1 << 20,
            cache: IndexCache::default(),
        }
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
        let mut batch = Batch::from_lines(b"{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n");
        assert!(matches!(t.send(&mut batch), Err(Failure::Busy(_))));
        assert_eq!(batch.pending().len(), 24, "a busy answer keeps every line");
        t.send(&mut batch).unwrap();
        assert_eq!(batch.pending(), b"{\"n\":2}\n", "only the 429 item is kept");
        t.send(&mut batch).unwrap();
        assert!(batch.is_empty());
        let recv = || {
            bodies
                .recv_timeout(std::time::Duration::from_secs(10))
                .unwrap()
        };
        let (first, second, third) = (recv(), recv(), recv());
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
        let (url, bodies) = scripted(vec![(413, ""), (200, ok), (413, ""), (401, "no")]);
        let mut t = transport(&url);
        t.connect().unwrap();
        // Three lines of 100 bytes: ~170 bytes each in a request.
        let line = |n: u8| format!("{{\"n\":{n},\"pad\":\"{}\"}}\n", "x".repeat(85));
        let data = format!("{}{}{}", line(1), line(2), line(3));
        let mut batch = Batch::from_lines(data.as_bytes());
        t.chunk_limit = 600;
        t.send(&mut batch).unwrap();
        assert!(batch.is_empty());
        // 413 for three lines halves the limit to one line a request; the
        // second line alone gets 413 (rejected), the third a 401 (rejected:
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
