//! OTLP/HTTP: one POST of a protobuf body per export, on the shared HTTP
//! client ([`crate::net::http`]), and the answer read back into an
//! [`Outcome`].
//!
//! [`Client`] is one signal's connection and settings; the traces and
//! logs workers drive it through [`LineTransport`] (the sink worker's
//! queue, batches, backoff and counting), and a periodic exporter that
//! holds an encoded request of its own calls [`Client::export`].

use std::io::{self, Write as _};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prost::Message as _;

use super::MAX_RETRY_AFTER;
use super::config::{Compression, Destination, Signal};
use crate::net::conn::Conn;
use crate::net::deadline::Deadline;
use crate::net::http;
use crate::sink::worker::{Batch, Failure, Fate, Transport};

/// Largest answer read: a partial success names its error in a short text.
const MAX_RESPONSE: usize = 1024 * 1024;
/// Longest part of an answer quoted in an error.
const MAX_QUOTED: usize = 256;

/// What the collector did with one export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Taken (HTTP 2xx); `rejected` of its items were refused (a partial
    /// success), with the collector's reason.
    Accepted {
        rejected: u64,
        message: Option<String>,
    },
    /// Not now (HTTP 429, 502, 503, 504): retry the same request later,
    /// not before `after` (the `Retry-After` the collector sent, checked
    /// and capped) if given.
    Retry {
        why: String,
        after: Option<Duration>,
    },
    /// Refused for good (any other status): the same request would be
    /// refused again.
    Rejected { why: String },
}

/// One signal's connection to its collector.
pub(crate) struct Client {
    dest: Destination,
    conn: Option<Conn>,
    requests_on_conn: u64,
    /// Extra headers of every request: the configured ones, and the
    /// encoding.
    headers: String,
    compressed: Vec<u8>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("dest", &self.dest)
            .field("connected", &self.conn.is_some())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for `dest`, not yet connected.
    pub(crate) fn new(dest: Destination) -> Self {
        let mut headers = dest.headers.clone();
        // A collector answers in the request's encoding; asking for JSON
        // (as the other clients do) could get an answer this one cannot
        // read.
        headers.push_str("Accept: application/x-protobuf\r\n");
        if dest.compression == Compression::Gzip {
            headers.push_str("Content-Encoding: gzip\r\n");
        }
        Self {
            dest,
            conn: None,
            requests_on_conn: 0,
            headers,
            compressed: Vec::new(),
        }
    }

    pub(crate) fn signal(&self) -> Signal {
        self.dest.signal
    }

    /// The deadline of one exchange: the configured timeout from now.
    pub(crate) fn deadline(&self) -> Deadline {
        Deadline::after(self.timeout())
    }

    /// The longest one exchange may take.
    pub(crate) fn timeout(&self) -> Duration {
        self.dest.net.io_timeout
    }

    pub(crate) fn is_connected(&self) -> bool {
        self.conn.is_some()
    }

    /// Connects (TLS included) before `deadline`.
    pub(crate) fn connect(&mut self, deadline: Deadline) -> io::Result<()> {
        self.conn = Some(open(&self.dest, deadline)?);
        self.requests_on_conn = 0;
        Ok(())
    }

    /// Drops a connection that failed.
    pub(crate) fn disconnect(&mut self) {
        self.conn = None;
    }

    /// Ends a healthy connection politely.
    pub(crate) fn close(&mut self) {
        if let Some(mut conn) = self.conn.take() {
            conn.close();
        }
    }

    /// Posts `body` (an encoded `Export*ServiceRequest` of this client's
    /// signal, compressed here if configured) and reads the answer, all
    /// before `deadline`, connecting first if needed. A kept-alive
    /// connection the collector closed in the meantime is replaced once.
    ///
    /// # Errors
    ///
    /// Connecting, writing or reading failed or ran out of time, or the
    /// answer was not HTTP: the connection is dropped, and the same
    /// request can be tried again.
    pub(crate) fn export(&mut self, body: &[u8], deadline: Deadline) -> io::Result<Outcome> {
        let body = match self.dest.compression {
            Compression::None => body,
            Compression::Gzip => {
                self.compressed.clear();
                let mut gz = flate2::write::GzEncoder::new(
                    std::mem::take(&mut self.compressed),
                    flate2::Compression::fast(),
                );
                gz.write_all(body)?;
                self.compressed = gz.finish()?;
                &self.compressed
            }
        };
        loop {
            if self.conn.is_none() {
                // Field by field: `body` may borrow `compressed`.
                self.conn = Some(open(&self.dest, deadline)?);
                self.requests_on_conn = 0;
            }
            let reused = self.requests_on_conn > 0;
            let Some(conn) = self.conn.as_mut() else {
                return Err(io::ErrorKind::NotConnected.into());
            };
            match http::post_with(
                conn,
                &self.dest.target,
                &self.dest.path,
                "application/x-protobuf",
                &self.headers,
                body,
                deadline,
                MAX_RESPONSE,
            ) {
                Ok(resp) => {
                    self.requests_on_conn += 1;
                    if resp.close {
                        self.conn = None;
                    }
                    return Ok(outcome(self.dest.signal, &resp, unix_secs()));
                }
                // The collector closed an idle connection before this
                // request reached it: once more on a new one. A timeout or
                // a broken answer may come after the collector took the
                // request: that is the worker's to retry, after its
                // backoff, not this exchange's at once.
                Err(e) if reused && closed_by_peer(&e) => self.conn = None,
                Err(e) => {
                    self.conn = None;
                    return Err(e);
                }
            }
        }
    }
}

/// Whether `e` says the peer ended or reset the connection, as a
/// collector does with a kept-alive connection it let go.
fn closed_by_peer(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    )
}

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// What an answer means. `now` (Unix seconds) turns a `Retry-After` date
/// into a wait.
fn outcome(signal: Signal, resp: &http::Response, now: u64) -> Outcome {
    match resp.status {
        200..=299 => {
            let (rejected, message) = partial_success(signal, &resp.body);
            Outcome::Accepted { rejected, message }
        }
        429 | 502 | 503 | 504 => Outcome::Retry {
            why: format!(
                "the collector answered HTTP {} to {}: {}",
                resp.status,
                signal.name(),
                quoted(&resp.body)
            ),
            after: resp
                .retry_after
                .as_deref()
                .and_then(|v| retry_after(v, now)),
        },
        status => Outcome::Rejected {
            why: format!(
                "the collector refused {} with HTTP {status}: {}",
                signal.name(),
                quoted(&resp.body)
            ),
        },
    }
}

/// The refused count and message of a 2xx answer's `partial_success`;
/// `(0, None)` for an empty answer, or one that is not the protobuf
/// response (a proxy's text): the request was taken.
fn partial_success(signal: Signal, body: &[u8]) -> (u64, Option<String>) {
    use opentelemetry_proto::tonic::collector::{
        logs::v1::ExportLogsServiceResponse, metrics::v1::ExportMetricsServiceResponse,
        trace::v1::ExportTraceServiceResponse,
    };
    let (rejected, message) = match signal {
        Signal::Traces => ExportTraceServiceResponse::decode(body)
            .ok()
            .and_then(|r| r.partial_success)
            .map(|p| (p.rejected_spans, p.error_message)),
        Signal::Logs => ExportLogsServiceResponse::decode(body)
            .ok()
            .and_then(|r| r.partial_success)
            .map(|p| (p.rejected_log_records, p.error_message)),
        Signal::Metrics => ExportMetricsServiceResponse::decode(body)
            .ok()
            .and_then(|r| r.partial_success)
            .map(|p| (p.rejected_data_points, p.error_message)),
    }
    .unwrap_or_default();
    // The collector's text: cut and without control characters, as any
    // answer an error quotes.
    let message = (!message.trim().is_empty()).then(|| quoted(message.as_bytes()));
    (u64::try_from(rejected).unwrap_or(0), message)
}

/// The start of an answer, for an error message.
fn quoted(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(MAX_QUOTED)]);
    let text: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.trim().is_empty() {
        "(no text)".to_owned()
    } else {
        text.trim().to_owned()
    }
}

/// A `Retry-After` value (RFC 9110: delay seconds, or an IMF-fixdate like
/// `Sun, 06 Nov 1994 08:49:37 GMT`) as a wait from `now` (Unix seconds),
/// capped at [`MAX_RETRY_AFTER`]. `None` for anything else: the backoff
/// decides then. A date in the past is no wait.
pub(crate) fn retry_after(value: &str, now: u64) -> Option<Duration> {
    let value = value.trim();
    let secs = if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Ten digits already pass the cap; more could overflow.
        if value.len() > 10 {
            u64::MAX
        } else {
            value.parse().ok()?
        }
    } else {
        imf_fixdate(value)?.saturating_sub(now)
    };
    Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER))
}

/// Unix seconds of an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
fn imf_fixdate(s: &str) -> Option<u64> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let b = s.as_bytes();
    if b.len() != 29 || &b[3..5] != b", " || &b[25..] != b" GMT" {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u64> {
        let d = s.get(r)?;
        if !d.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        d.parse().ok()
    };
    if b[7] != b' ' || b[11] != b' ' || b[16] != b' ' || b[19] != b':' || b[22] != b':' {
        return None;
    }
    let day = num(5..7)?;
    let month = MONTHS.iter().position(|m| s.get(8..11) == Some(*m))? as u64 + 1;
    let year = num(12..16)?;
    let (h, m, sec) = (num(17..19)?, num(20..22)?, num(23..25)?);
    if !(1..=31).contains(&day) || year < 1970 || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    let days = u64::try_from(crate::log::timestamp::days_from_civil(year, month, day)).ok()?;
    Some(days * 86_400 + h * 3600 + m * 60 + sec)
}

/// A connection to `dest` (TLS included), opened before `deadline`.
fn open(dest: &Destination, deadline: Deadline) -> io::Result<Conn> {
    Conn::open_until(
        &dest.target.endpoint,
        &dest.net,
        deadline,
        dest.net.io_timeout,
    )
}

/// Turns queued lines into one export request.
pub(crate) trait Encode: Send + 'static {
    /// Writes the request for `lines` into `out` (empty on entry). A line
    /// that cannot be read gets [`Fate::Rejected`] in `fates` and is left
    /// out; the others stay [`Fate::Sent`].
    fn encode(&mut self, lines: &[&[u8]], fates: &mut [Fate], out: &mut Vec<u8>);
}

/// One signal's share of a queue several signals use: the lines `takes`
/// picks, made into one request by `encoder`, sent by `client`.
pub(crate) struct Lane {
    client: Client,
    encoder: Box<dyn Encode>,
    takes: fn(&[u8]) -> bool,
}

impl Lane {
    pub(crate) fn new(client: Client, encoder: impl Encode, takes: fn(&[u8]) -> bool) -> Self {
        Self {
            client,
            encoder: Box::new(encoder),
            takes,
        }
    }
}

/// The sink worker's [`Transport`] for the signals that share one queue
/// (spans and log records): each window of queued lines becomes one
/// request per signal that has lines in it. One queue and one worker for
/// both keeps the exporter to one thread, which matters where a process
/// has few cores: a second busy worker takes its time from the callers.
pub(crate) struct LineTransport {
    lanes: Vec<Lane>,
    body: Vec<u8>,
}

impl LineTransport {
    pub(crate) fn new(lanes: Vec<Lane>) -> Self {
        Self {
            lanes,
            body: Vec::new(),
        }
    }
}

impl Transport for LineTransport {
    fn is_connected(&self) -> bool {
        self.lanes.iter().all(|l| l.client.is_connected())
    }

    fn connect(&mut self) -> io::Result<()> {
        for lane in self.lanes.iter_mut().filter(|l| !l.client.is_connected()) {
            let deadline = Deadline::after(lane.client.dest.net.connect_timeout);
            lane.client.connect(deadline)?;
        }
        Ok(())
    }

    fn send(&mut self, batch: &mut Batch) -> Result<(), Failure> {
        let lines: Vec<&[u8]> = batch.lines().collect();
        // A line no signal takes is not one of ours.
        let mut fates = vec![Fate::Rejected; lines.len()];
        let mut failure = None;
        let mut notes = Vec::new();
        for lane in &mut self.lanes {
            let picked: Vec<usize> = (0..lines.len())
                .filter(|&i| (lane.takes)(lines[i]))
                .collect();
            if picked.is_empty() {
                continue;
            }
            let mine: Vec<&[u8]> = picked.iter().map(|&i| lines[i]).collect();
            let mut lane_fates = vec![Fate::Sent; mine.len()];
            self.body.clear();
            lane.encoder.encode(&mine, &mut lane_fates, &mut self.body);
            if let Err(f) = send_lane(&mut lane.client, &self.body, &mut lane_fates, &mut notes) {
                failure.get_or_insert(f);
            }
            for (fate, i) in lane_fates.into_iter().zip(picked) {
                fates[i] = fate;
            }
        }
        batch.resolve_each(&fates);
        if !notes.is_empty() {
            batch.note(notes.join("; "));
        }
        failure.map_or(Ok(()), Err)
    }

    fn disconnect(&mut self) {
        for lane in &mut self.lanes {
            lane.client.disconnect();
        }
    }

    fn close(&mut self) {
        for lane in &mut self.lanes {
            lane.client.close();
        }
    }
}

/// Sends one signal's request, `fates` holding its lines' fates as the
/// encoder left them; sets them from the answer. A failure leaves the
/// lines sent for another try.
fn send_lane(
    client: &mut Client,
    body: &[u8],
    fates: &mut [Fate],
    notes: &mut Vec<String>,
) -> Result<(), Failure> {
    let signal = client.signal().name();
    if !fates.contains(&Fate::Sent) {
        notes.push(format!("unreadable {signal} lines dropped"));
        return Ok(());
    }
    let keep = |fates: &mut [Fate]| {
        for f in fates.iter_mut().filter(|f| **f == Fate::Sent) {
            *f = Fate::Keep;
        }
    };
    match client.export(body, client.deadline()) {
        Ok(Outcome::Accepted { rejected, message }) => {
            // The collector says how many, not which: the count is what
            // matters.
            for f in fates
                .iter_mut()
                .filter(|f| **f == Fate::Sent)
                .take(usize::try_from(rejected).unwrap_or(usize::MAX))
            {
                *f = Fate::Rejected;
            }
            if rejected > 0 {
                notes.push(format!(
                    "the collector refused {rejected} {signal} items: {}",
                    message.unwrap_or_default()
                ));
            }
            Ok(())
        }
        Ok(Outcome::Rejected { why }) => {
            fates.fill(Fate::Rejected);
            notes.push(why);
            Ok(())
        }
        Ok(Outcome::Retry { why, after }) => {
            keep(fates);
            Err(Failure::BusyFor(why, after.unwrap_or_default()))
        }
        Err(e) => {
            keep(fates);
            Err(Failure::Connection(e))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn resp(status: u16, retry: Option<&str>, body: &[u8]) -> http::Response {
        http::Response {
            status,
            body: body.to_vec(),
            close: false,
            retry_after: retry.map(str::to_owned),
        }
    }

    /// What a collector does after answering the first request of a
    /// connection.
    #[derive(Clone, Copy, Debug)]
    enum Then {
        /// Closes the connection at once, before the next request.
        LetsGo,
        /// Reads the next request and answers what is not HTTP.
        Garbles,
        /// Reads the next request and closes inside its answer's body.
        CutsShort,
    }

    /// A collector on a loopback port that answers the first request of
    /// each connection, then does `then`. Counts connections and requests.
    fn collector(then: Then) -> (std::net::SocketAddr, Arc<[AtomicUsize; 2]>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let counts = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
        let c = Arc::clone(&counts);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                c[0].fetch_add(1, Ordering::SeqCst);
                let c = Arc::clone(&c);
                std::thread::spawn(move || {
                    let mut out = stream.try_clone().expect("clone");
                    let mut r = std::io::BufReader::new(stream);
                    for n in 0.. {
                        if http::read_request(&mut r).is_none() {
                            return;
                        }
                        c[1].fetch_add(1, Ordering::SeqCst);
                        let answer: &[u8] = match (n, then) {
                            (0, _) => b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
                            (_, Then::Garbles) => b"?\r\n\r\n",
                            (_, Then::CutsShort) => {
                                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab"
                            }
                            (_, Then::LetsGo) => unreachable!("closed after the first"),
                        };
                        out.write_all(answer).expect("answer");
                        if n > 0 || matches!(then, Then::LetsGo) {
                            return;
                        }
                    }
                });
            }
        });
        (addr, counts)
    }

    fn client(addr: std::net::SocketAddr) -> Client {
        let config = crate::otlp::OtlpConfig::new(format!("http://{addr}"));
        Client::new(config.resolve(Signal::Traces).expect("a destination"))
    }

    #[test]
    fn a_request_the_collector_may_have_taken_is_not_sent_again_at_once() {
        for then in [Then::Garbles, Then::CutsShort] {
            let (addr, counts) = collector(then);
            let mut c = client(addr);
            let ok = c.export(b"one", Deadline::after(Duration::from_secs(5)));
            assert!(matches!(ok, Ok(Outcome::Accepted { .. })), "{ok:?}");
            let broken = c.export(b"two", Deadline::after(Duration::from_secs(5)));
            assert!(broken.is_err(), "{then:?}: {broken:?}");
            std::thread::sleep(Duration::from_millis(200));
            let seen = counts.each_ref().map(|n| n.load(Ordering::SeqCst));
            assert_eq!(seen, [1, 2], "{then:?}: connections and requests");
        }
    }

    #[test]
    fn a_connection_the_collector_let_go_is_replaced_once() {
        let (addr, counts) = collector(Then::LetsGo);
        let mut c = client(addr);
        for _ in 0..2 {
            let ok = c.export(b"x", Deadline::after(Duration::from_secs(5)));
            assert!(matches!(ok, Ok(Outcome::Accepted { .. })), "{ok:?}");
        }
        let seen = counts.each_ref().map(|n| n.load(Ordering::SeqCst));
        assert_eq!(seen, [2, 2], "the second request went on a new connection");
    }

    #[test]
    fn retry_after_takes_seconds_and_dates_checked_and_capped() {
        let now = 784_111_777; // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(retry_after("1", now), Some(Duration::from_secs(1)));
        assert_eq!(retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            retry_after("99999999999999999999", now),
            Some(MAX_RETRY_AFTER)
        );
        assert_eq!(retry_after("86400", now), Some(MAX_RETRY_AFTER));
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:49:39 GMT", now),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:49:30 GMT", now),
            Some(Duration::ZERO),
            "a date in the past"
        );
        assert_eq!(
            retry_after("Fri, 01 Jan 2100 00:00:00 GMT", now),
            Some(MAX_RETRY_AFTER)
        );
        for bad in [
            "",
            "-1",
            "+1",
            "1.5",
            "soon",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 06 Xyz 1994 08:49:37 GMT",
            "Sun, 36 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 28:49:37 GMT",
            "Sun, 06 Nov 1994 08:4:370 GMT",
            "Sun, 06 Nov 1994 08:49:37 GMTé",
        ] {
            assert_eq!(retry_after(bad, now), None, "{bad:?}");
        }
    }

    #[test]
    fn answers_map_to_outcomes() {
        use opentelemetry_proto::tonic::collector::trace::v1::{
            ExportTracePartialSuccess, ExportTraceServiceResponse,
        };
        assert_eq!(
            outcome(Signal::Traces, &resp(200, None, b""), 0),
            Outcome::Accepted {
                rejected: 0,
                message: None
            }
        );
        let partial = ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess {
                rejected_spans: 3,
                error_message: "too old".into(),
            }),
        }
        .encode_to_vec();
        assert_eq!(
            outcome(Signal::Traces, &resp(200, None, &partial), 0),
            Outcome::Accepted {
                rejected: 3,
                message: Some("too old".into())
            }
        );
        let negative = ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess {
                rejected_spans: -5,
                error_message: String::new(),
            }),
        }
        .encode_to_vec();
        assert_eq!(
            outcome(Signal::Traces, &resp(200, None, &negative), 0),
            Outcome::Accepted {
                rejected: 0,
                message: None
            }
        );
        // A body that is not the response: taken all the same.
        assert!(matches!(
            outcome(Signal::Logs, &resp(202, None, b"\xff\xff{json}"), 0),
            Outcome::Accepted { rejected: 0, .. }
        ));
        for status in [429, 502, 503, 504] {
            assert!(matches!(
                outcome(Signal::Logs, &resp(status, Some("2"), b"busy"), 0),
                Outcome::Retry { after: Some(d), .. } if d == Duration::from_secs(2)
            ));
        }
        assert!(matches!(
            outcome(Signal::Logs, &resp(503, Some("later"), b""), 0),
            Outcome::Retry { after: None, .. }
        ));
        for status in [400, 401, 404, 413, 500, 501] {
            assert!(matches!(
                outcome(Signal::Metrics, &resp(status, None, b"bad\r\nrequest"), 0),
                Outcome::Rejected { why } if why.contains(&status.to_string()) && !why.contains('\n')
            ));
        }
    }

    proptest::proptest! {
        #[test]
        fn any_retry_after_is_capped_or_ignored(v in "\\PC{0,40}") {
            if let Some(d) = retry_after(&v, 1_700_000_000) {
                proptest::prop_assert!(d <= MAX_RETRY_AFTER);
            }
        }

        #[test]
        fn any_answer_body_maps_without_panicking(
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512),
            status in 100u16..600,
        ) {
            for signal in Signal::ALL {
                let _ = outcome(signal, &resp(status, None, &body), 0);
            }
        }
    }
}
