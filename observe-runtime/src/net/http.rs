//! The little HTTP/1.1 the `_bulk` sink and the InfluxDB push need: one
//! POST at a time on a (kept-alive) connection, responses with
//! `Content-Length`, chunked, or delimited by close.
//!
//! Hand-written rather than a client crate: the sink already owns its
//! connection (plain or rustls), timeouts and retries, and this keeps the
//! default build free of an HTTP stack.

use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};

use super::SinkError;
use super::conn::{Conn, Endpoint};
use super::deadline::{Deadline, Timed};

/// Largest response body the `_bulk` sink reads; a `_bulk` answer is ~100
/// bytes per line.
pub(crate) const MAX_BODY: usize = 64 * 1024 * 1024;
/// Largest status line or header line.
const MAX_LINE: usize = 16 * 1024;
/// Most header (or trailer) lines in one response.
const MAX_HEADERS: usize = 100;
/// Most interim (`1xx`) answers before the real one.
const MAX_INTERIM: usize = 8;

/// Where requests go, from `http[s]://[user:pass@]host[:port][/prefix]`.
#[derive(Clone)]
pub(crate) struct Target {
    pub(crate) endpoint: Endpoint,
    pub(crate) tls: bool,
    /// Path prefix without a trailing `/` (empty for the root).
    pub(crate) prefix: String,
    /// `Host` header value.
    pub(crate) host_header: String,
    pub(crate) authorization: Option<String>,
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target")
            .field("tls", &self.tls)
            .field("host", &self.host_header)
            .field("prefix", &self.prefix)
            .field("authorization", &self.authorization.as_ref().map(|_| "***"))
            .finish()
    }
}

impl Target {
    /// Parses `url`. Its error texts show the URL masked
    /// ([`mask_url`]): they end up in logs.
    pub(crate) fn parse(url: &str) -> Result<Self, SinkError> {
        let bad = |why: &str| SinkError::config(format!("invalid URL {:?}: {why}", mask_url(url)));
        let (tls, rest) = if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else {
            return Err(bad("expected http:// or https://"));
        };
        if rest.contains(['?', '#']) {
            return Err(bad("no query or fragment expected"));
        }
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let default_port = if tls { 443 } else { 80 };
        let has_port = match hostport.rfind(':') {
            Some(i) => !hostport[i..].contains(']'),
            None => false,
        };
        // The endpoint's own error would quote the authority, which may be
        // part of a password (`user:pa/ss@host`).
        let endpoint = if has_port {
            Endpoint::parse(hostport)
        } else {
            Endpoint::parse(&format!("{hostport}:{default_port}"))
        }
        .map_err(|_| bad("expected a host and an optional port"))?;
        let authorization = userinfo.map(|u| {
            let (user, pass) = u.split_once(':').unwrap_or((u, ""));
            basic_auth(&percent_decode(user), &percent_decode(pass))
        });
        Ok(Self {
            endpoint,
            tls,
            prefix: path.trim_end_matches('/').to_owned(),
            host_header: hostport.to_owned(),
            authorization,
        })
    }
}

/// `url` fit for logs and `Debug`: the password of its userinfo (or all
/// of it, if unclear where the user name ends) and its query and fragment
/// are replaced by `***`.
pub(crate) fn mask_url(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(i) => url.split_at(i + 3),
        None => ("", url),
    };
    let mut out = String::from(scheme);
    // The last `@` ends the userinfo; one in a query masks more, not less.
    let rest = match rest.rfind('@') {
        Some(at) => {
            let user = rest[..at].split_once(':').map(|(u, _)| u);
            match user {
                Some(u)
                    if u.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)) =>
                {
                    out.push_str(u);
                    out.push_str(":***@");
                }
                _ => out.push_str("***@"),
            }
            &rest[at + 1..]
        }
        None => rest,
    };
    match rest.find(['?', '#']) {
        Some(i) => {
            out.push_str(&rest[..i]);
            out.push_str("?***");
        }
        None => out.push_str(rest),
    }
    out
}

/// `Basic base64(user:pass)`.
pub(crate) fn basic_auth(user: &str, pass: &str) -> String {
    format!("Basic {}", base64(format!("{user}:{pass}").as_bytes()))
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Userinfo as written when it does not decode: a password with a stray
/// `%` is taken literally rather than refused.
fn percent_decode(s: &str) -> String {
    crate::base::percent::decode(s).unwrap_or_else(|| s.to_owned())
}

/// A response: status and body.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
    /// The server closes the connection after this response.
    pub(crate) close: bool,
    /// The `Retry-After` header, as sent (unchecked: the caller decides
    /// what to believe).
    #[cfg_attr(not(feature = "otlp"), allow(dead_code))]
    pub(crate) retry_after: Option<String>,
}

/// Sends one POST asking for a JSON answer (`Accept: application/json`)
/// and reads its response (a body of at most `max_body` bytes), all
/// before `deadline`: every write and read waits only for the time left,
/// so a peer that drips its answer cannot stretch it.
pub(crate) fn post(
    conn: &mut Conn,
    target: &Target,
    path: &str,
    content_type: &str,
    body: &[u8],
    deadline: Deadline,
    max_body: usize,
) -> io::Result<Response> {
    post_with(
        conn,
        target,
        path,
        content_type,
        "Accept: application/json\r\n",
        body,
        deadline,
        max_body,
    )
}

/// As [`post`], with `extra_headers` (complete `Name: value\r\n` lines,
/// checked by the caller to hold no other line break, `Accept` among them
/// if wanted) after `Host`, `Content-Type` and `Content-Length`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn post_with(
    conn: &mut Conn,
    target: &Target,
    path: &str,
    content_type: &str,
    extra_headers: &str,
    body: &[u8],
    deadline: Deadline,
    max_body: usize,
) -> io::Result<Response> {
    let mut head = format!(
        "POST {}{path} HTTP/1.1\r\nHost: {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{extra_headers}",
        target.prefix,
        target.host_header,
        body.len()
    );
    if let Some(auth) = &target.authorization {
        head.push_str("Authorization: ");
        head.push_str(auth);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    let mut timed = Timed { io: conn, deadline };
    timed.write_all(head.as_bytes())?;
    timed.write_all(body)?;
    timed.flush()?;
    read_response(&mut BufReader::new(timed), max_body)
}

/// Reads one response, skipping interim (`1xx`) answers.
///
/// Every number comes from the peer and is checked: status codes are three
/// digits, lengths and chunk sizes cannot overflow and are capped by
/// `max_body`, and headers and interim answers are counted, so any input
/// ends in a response or an error. Memory grows with what was actually
/// received, not with what the peer announced.
///
/// A connection that ends before the answer's first line gives
/// `UnexpectedEof`, as a kept-alive connection the peer let go does. One
/// that ends or breaks after it gives `InvalidData`: the peer read the
/// request, so a caller must not take it as never sent.
pub(crate) fn read_response(r: &mut impl BufRead, max_body: usize) -> io::Result<Response> {
    let first = read_line(r)?;
    read_answer(r, first, max_body).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted => invalid(&format!("the answer was cut short ({e})")),
        _ => e,
    })
}

/// The rest of an answer whose first line is `status_line`.
fn read_answer(
    r: &mut impl BufRead,
    mut status_line: String,
    max_body: usize,
) -> io::Result<Response> {
    for _ in 0..=MAX_INTERIM {
        let status = parse_status(&status_line)?;
        let head = read_head(r)?;
        if (100..200).contains(&status) {
            // `101 Switching Protocols` would end HTTP on this connection.
            if status == 101 {
                return Err(invalid("unexpected protocol switch"));
            }
            // Interim response (e.g. 100 Continue): the real one follows.
            status_line = read_line(r)?;
            continue;
        }
        let mut close = head.close || status_line.starts_with("HTTP/1.0");
        let body = if status == 204 || status == 304 {
            Vec::new()
        } else if head.chunked {
            // A length beside chunking is a smuggling attempt or a broken
            // proxy: the connection cannot be trusted for another request.
            close |= head.length.is_some();
            read_chunked(r, max_body)?
        } else if let Some(n) = head.length {
            if n > max_body as u64 {
                return Err(invalid("response body too large"));
            }
            read_exactly(r, n, Vec::new())?
        } else {
            close = true;
            let mut body = Vec::new();
            r.take(max_body as u64 + 1).read_to_end(&mut body)?;
            if body.len() > max_body {
                return Err(invalid("response body too large"));
            }
            body
        };
        return Ok(Response {
            status,
            body,
            close,
            retry_after: head.retry_after,
        });
    }
    Err(invalid("too many interim (1xx) responses"))
}

/// What the headers of a response say about its body.
#[derive(Default)]
struct Head {
    length: Option<u64>,
    chunked: bool,
    close: bool,
    retry_after: Option<String>,
}

fn read_head(r: &mut impl BufRead) -> io::Result<Head> {
    let mut head = Head::default();
    for _ in 0..=MAX_HEADERS {
        let line = read_line(r)?;
        if line.is_empty() {
            return Ok(head);
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(invalid("malformed header"));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            // `Content-Length: 5, 5` is allowed; differing values are not.
            for v in value.split(',') {
                let n = parse_length(v.trim())?;
                if head.length.is_some_and(|m| m != n) {
                    return Err(invalid("conflicting Content-Length"));
                }
                head.length = Some(n);
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            // Chunked only if it is the last coding; anything else is
            // delimited by close.
            let last = value.rsplit(',').next().unwrap_or("").trim();
            head.chunked = last.eq_ignore_ascii_case("chunked");
            head.close |= !head.chunked;
        } else if name.eq_ignore_ascii_case("retry-after") {
            head.retry_after = Some(value.to_owned());
        } else if name.eq_ignore_ascii_case("connection") {
            head.close |= value
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("close"));
        }
    }
    Err(invalid("too many header lines"))
}

/// A decimal `Content-Length`: digits only (no sign, no spaces), no more
/// than fit in a `u64`.
fn parse_length(s: &str) -> io::Result<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid("bad Content-Length"));
    }
    s.parse().map_err(|_| invalid("bad Content-Length"))
}

/// A chunk size: hex digits only (no sign), at most 16 of them.
fn parse_chunk_size(line: &str) -> io::Result<u64> {
    let s = line.split(';').next().unwrap_or("").trim();
    if s.is_empty() || s.len() > 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid("bad chunk size"));
    }
    u64::from_str_radix(s, 16).map_err(|_| invalid("bad chunk size"))
}

/// Appends exactly `n` bytes to `body`, growing it only as they arrive.
fn read_exactly(r: &mut impl BufRead, n: u64, mut body: Vec<u8>) -> io::Result<Vec<u8>> {
    let before = body.len() as u64;
    r.take(n).read_to_end(&mut body)?;
    if body.len() as u64 - before != n {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed inside the body",
        ));
    }
    Ok(body)
}

fn read_chunked(r: &mut impl BufRead, max_body: usize) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let size = parse_chunk_size(&read_line(r)?)?;
        if size == 0 {
            // Trailers, up to the blank line.
            let _ = read_head(r)?;
            return Ok(body);
        }
        let total = (body.len() as u64).checked_add(size);
        if total.is_none_or(|t| t > max_body as u64) {
            return Err(invalid("response body too large"));
        }
        body = read_exactly(r, size, body)?;
        if !read_line(r)?.is_empty() {
            return Err(invalid("chunk not followed by CRLF"));
        }
    }
}

/// One line without its CRLF (or LF).
fn read_line(r: &mut impl BufRead) -> io::Result<String> {
    let mut buf = Vec::new();
    r.take(MAX_LINE as u64).read_until(b'\n', &mut buf)?;
    if buf.last() != Some(&b'\n') {
        return Err(if buf.is_empty() {
            io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed")
        } else {
            invalid("line too long or cut short")
        });
    }
    buf.pop();
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    String::from_utf8(buf).map_err(|_| invalid("header is not UTF-8"))
}

/// The status code of `HTTP/1.x NNN reason`: exactly three digits, 100 to
/// 599.
fn parse_status(line: &str) -> io::Result<u16> {
    let mut parts = line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/1.") {
        return Err(invalid("not an HTTP/1.x response"));
    }
    let code = parts.next().unwrap_or("");
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid("bad status code"));
    }
    match code.parse::<u16>() {
        Ok(n @ 100..=599) => Ok(n),
        _ => Err(invalid("bad status code")),
    }
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("HTTP: {msg}"))
}

/// Reads one request a client of this module sends: its head (request
/// line and headers, as sent) and its body (by `Content-Length`); `None`
/// once the connection ends. For the test peers of the sinks and
/// exporters built on this client.
#[cfg(test)]
pub(crate) fn read_request(r: &mut impl BufRead) -> Option<(String, Vec<u8>)> {
    let mut head = String::new();
    let mut len = 0;
    loop {
        let start = head.len();
        if r.read_line(&mut head).ok()? == 0 {
            return None;
        }
        let line = &head[start..];
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().ok()?;
        }
        if line.trim().is_empty() {
            break;
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    Some((head, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse() {
        let t = Target::parse("http://127.0.0.1:9200").unwrap();
        assert_eq!(
            (t.endpoint.host.as_str(), t.endpoint.port, t.tls),
            ("127.0.0.1", 9200, false)
        );
        assert_eq!(
            (t.prefix.as_str(), t.host_header.as_str()),
            ("", "127.0.0.1:9200")
        );
        let t = Target::parse("https://elastic:p%40ss@es.internal/search/").unwrap();
        assert_eq!(
            (t.endpoint.port, t.tls, t.prefix.as_str()),
            (443, true, "/search")
        );
        assert_eq!(t.authorization.as_deref(), Some("Basic ZWxhc3RpYzpwQHNz"));
        let t = Target::parse("http://[::1]:9200/").unwrap();
        assert_eq!((t.endpoint.host.as_str(), t.endpoint.port), ("::1", 9200));
        let t = Target::parse("http://[::1]").unwrap();
        assert_eq!(t.endpoint.port, 80);
        for bad in [
            "127.0.0.1:9200",
            "ftp://x",
            "http://",
            "http://h:x",
            "http://h:9200/?a=1",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn base64_pads() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foob"), "Zm9vYg==");
    }

    #[test]
    fn responses_parse_with_length_chunks_or_close() {
        let r = read_response(
            &mut &b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"[..],
            MAX_BODY,
        )
        .unwrap();
        assert_eq!(
            (r.status, r.body.as_slice(), r.close),
            (200, &b"ok"[..], false)
        );
        let raw = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nTrailer: 1\r\n\r\n";
        let r = read_response(&mut &raw[..], MAX_BODY).unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"abcde"[..]));
        let r = read_response(&mut &b"HTTP/1.0 503 Busy\r\n\r\nlater"[..], MAX_BODY).unwrap();
        assert_eq!(
            (r.status, r.body.as_slice(), r.close),
            (503, &b"later"[..], true)
        );
        for bad in [
            &b""[..],
            b"SSH-2.0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        ] {
            assert!(read_response(&mut &bad[..], MAX_BODY).is_err());
        }
    }

    fn parse(raw: &[u8]) -> io::Result<Response> {
        read_response(&mut &raw[..], 1024)
    }

    /// The head of the one request `send` makes to a local peer that
    /// answers `204 No Content`.
    fn head_sent(send: impl FnOnce(&mut Conn, &Target)) -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let peer = std::thread::spawn(move || {
            let (stream, _) = listener.accept().expect("accept");
            let mut out = stream.try_clone().expect("clone");
            let (head, _) = read_request(&mut BufReader::new(stream)).expect("a request");
            out.write_all(b"HTTP/1.1 204 No Content\r\n\r\n")
                .expect("answer");
            head
        });
        let target = Target::parse(&url).expect("a URL");
        let mut conn = Conn::open(&target.endpoint, &crate::net::conn::NetOptions::default())
            .expect("connect");
        send(&mut conn, &target);
        peer.join().expect("the peer")
    }

    #[test]
    fn post_asks_for_json_and_post_with_for_what_its_caller_says() {
        let deadline = || Deadline::after(std::time::Duration::from_secs(5));
        let json = head_sent(|conn, target| {
            post(conn, target, "/x", "text/plain", b"", deadline(), 64).expect("answered");
        });
        assert!(json.contains("\r\nAccept: application/json\r\n"), "{json}");
        let other = head_sent(|conn, target| {
            let extra = "Accept: application/x-protobuf\r\n";
            post_with(conn, target, "/x", "a/b", extra, b"", deadline(), 64).expect("answered");
        });
        assert_eq!(other.matches("Accept:").count(), 1, "{other}");
        assert!(
            other.contains("\r\nAccept: application/x-protobuf\r\n"),
            "{other}"
        );
    }

    #[test]
    fn numbers_from_the_peer_are_checked() {
        let chunked = |size: &str| {
            format!(
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{size}\r\nab\r\n0\r\n\r\n"
            )
        };
        // Overflows `body.len() + size` once a chunk is held.
        let overflow = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\nffffffffffffffff\r\nab\r\n0\r\n\r\n";
        assert!(parse(overflow.as_bytes()).is_err());
        for size in [
            "ffffffffffffffff",
            "10000000000000000",
            "-2",
            "+2",
            " ",
            "0x2",
            "2g",
            "401",
        ] {
            let e = parse(chunked(size).as_bytes()).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{size}: {e}");
        }
        assert_eq!(parse(chunked("2").as_bytes()).unwrap().body, b"ab");
        for length in [
            "18446744073709551616",
            "99999999999999999999999",
            "-1",
            "+2",
            "2, 3",
            "1025",
        ] {
            let raw = format!("HTTP/1.1 200 OK\r\nContent-Length: {length}\r\n\r\nab");
            assert!(parse(raw.as_bytes()).is_err(), "{length}");
        }
        let twice = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc";
        assert!(parse(twice).is_err(), "conflicting lengths");
        let same = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\ncontent-length: 2, 2\r\n\r\nab";
        assert_eq!(parse(same).unwrap().body, b"ab");
        for status in ["20", "2000", "600", "099", "-20", "+200", "２００"] {
            let raw = format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n");
            assert!(parse(raw.as_bytes()).is_err(), "{status}");
        }
        // No answer at all, and an answer cut short, tell apart: only the
        // first may be a request that never arrived.
        assert_eq!(parse(b"").unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
        for cut in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab"[..],
            b"HTTP/1.1 200 OK\r\nContent-Len",
            b"HTTP/1.1 100 Continue\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
        ] {
            let e = parse(cut).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
        }
    }

    #[test]
    fn headers_and_interim_answers_are_counted() {
        let mut raw = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            raw.extend_from_slice(format!("X-{i}: y\r\n").as_bytes());
        }
        raw.extend_from_slice(b"Content-Length: 0\r\n\r\n");
        assert!(parse(&raw).is_err(), "too many headers");
        let mut raw = Vec::new();
        for _ in 0..=MAX_INTERIM {
            raw.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
        raw.extend_from_slice(b"HTTP/1.1 204 No Content\r\n\r\n");
        assert!(parse(&raw).is_err(), "too many interim answers");
        let ok = b"HTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n";
        assert_eq!(parse(ok).unwrap().status, 204);
        let switch = b"HTTP/1.1 101 Switching\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n";
        assert!(parse(switch).is_err());
    }

    #[test]
    fn bodies_are_capped() {
        let body = "x".repeat(1025);
        let close = format!("HTTP/1.1 200 OK\r\n\r\n{body}");
        assert!(parse(close.as_bytes()).is_err());
        let chunks = format!(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n400\r\n{}\r\n1\r\nx\r\n0\r\n\r\n",
            &body[..1024]
        );
        assert!(parse(chunks.as_bytes()).is_err());
        let fits = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: 1024\r\n\r\n{}",
            &body[..1024]
        );
        assert_eq!(parse(fits.as_bytes()).unwrap().body.len(), 1024);
        // A length beside chunking: the body is chunked, the connection
        // is not reused.
        let both = b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n";
        let r = parse(both).unwrap();
        assert_eq!((r.body.as_slice(), r.close), (&b"ab"[..], true));
    }

    #[test]
    fn urls_are_masked_for_logs() {
        for (url, masked) in [
            ("http://h:9200/x", "http://h:9200/x"),
            ("https://elastic:s3cret@h/x", "https://elastic:***@h/x"),
            ("https://s3cret@h", "https://***@h"),
            ("http://u:pa@ss:s3cret@h", "http://u:***@h"),
            ("http://u/x:s3cret@h", "http://***@h"),
            ("http://h/?token=s3cret", "http://h/?***"),
            ("http://u:s3?cret@h", "http://u:***@h"),
            ("h:s3cret@x", "h:***@x"),
        ] {
            assert_eq!(mask_url(url), masked, "{url}");
        }
        for url in [
            "http://elastic:s3cret@h:port",
            "http://elastic:pa/s3cret@h",
            "http://elastic:s3cret@/x",
            "ftp://elastic:s3cret@h",
            "http://elastic:s3cret@h/?a=1",
            "http://h/?token=s3cret",
        ] {
            let e = Target::parse(url).unwrap_err().to_string();
            assert!(!e.contains("s3cret"), "{e}");
        }
        let t = Target::parse("http://elastic:s3cret@h").unwrap();
        let d = format!("{t:?}");
        let auth = t.authorization.as_deref().unwrap();
        assert!(!d.contains("s3cret") && !d.contains(auth), "{d}");
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_end_in_a_response_or_an_error(
            raw in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048),
        ) {
            if let Ok(r) = read_response(&mut &raw[..], 1024) {
                proptest::prop_assert!(r.body.len() <= 1024);
                proptest::prop_assert!((100..600).contains(&r.status));
            }
        }

        #[test]
        fn any_head_and_chunks_end_in_a_response_or_an_error(
            head in "[ -~]{0,40}(\r\n[ -~]{0,40}){0,6}",
            sizes in proptest::collection::vec("[0-9a-fA-F+-]{0,18}", 0..6),
        ) {
            let mut raw = format!("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n{head}\r\n\r\n");
            for size in &sizes {
                raw.push_str(size);
                raw.push_str("\r\nabc\r\n");
            }
            if let Ok(r) = read_response(&mut raw.as_bytes(), 1024) {
                proptest::prop_assert!(r.body.len() <= 1024);
            }
        }
    }
}
