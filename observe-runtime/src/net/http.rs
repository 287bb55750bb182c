//! The little HTTP/1.1 the `_bulk` sink and the InfluxDB push need: one
//! POST at a time on a (kept-alive) connection, responses with
//! `Content-Length`, chunked, or delimited by close.
//!
//! Hand-written rather than a client crate: the sink already owns its
//! connection (plain or rustls), timeouts and retries, and this keeps the
//! default build free of an HTTP stack.

use std::io::{self, BufRead, BufReader, Read, Write};

use super::SinkError;
use super::conn::{Conn, Endpoint};

/// Largest response body read; a `_bulk` answer is ~100 bytes per line.
const MAX_BODY: usize = 64 * 1024 * 1024;
/// Largest status line or header line.
const MAX_LINE: usize = 16 * 1024;

/// Where requests go, from `http[s]://[user:pass@]host[:port][/prefix]`.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) endpoint: Endpoint,
    pub(crate) tls: bool,
    /// Path prefix without a trailing `/` (empty for the root).
    pub(crate) prefix: String,
    /// `Host` header value.
    pub(crate) host_header: String,
    pub(crate) authorization: Option<String>,
}

impl Target {
    pub(crate) fn parse(url: &str) -> Result<Self, SinkError> {
        let bad = |why: &str| SinkError::config(format!("invalid URL {url:?}: {why}"));
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
        let endpoint = if has_port {
            Endpoint::parse(hostport)?
        } else {
            Endpoint::parse(&format!("{hostport}:{default_port}"))?
        };
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

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| char::from(c).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A response: status and body.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
    /// The server closes the connection after this response.
    pub(crate) close: bool,
}

/// Sends one POST and reads its response.
pub(crate) fn post(
    conn: &mut Conn,
    target: &Target,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> io::Result<Response> {
    let mut head = format!(
        "POST {}{path} HTTP/1.1\r\nHost: {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nAccept: application/json\r\n",
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
    conn.write_all(head.as_bytes())?;
    conn.write_all(body)?;
    conn.flush()?;
    read_response(&mut BufReader::new(conn))
}

pub(crate) fn read_response(r: &mut impl BufRead) -> io::Result<Response> {
    loop {
        let status_line = read_line(r)?;
        let status = parse_status(&status_line)?;
        let mut length = None;
        let mut chunked = false;
        let mut close = status_line.starts_with("HTTP/1.0");
        loop {
            let line = read_line(r)?;
            if line.is_empty() {
                break;
            }
            let Some((name, value)) = line.split_once(':') else {
                return Err(invalid("malformed header"));
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = Some(
                    value
                        .parse::<usize>()
                        .map_err(|_| invalid("bad Content-Length"))?,
                );
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.to_ascii_lowercase().contains("chunked");
            } else if name.eq_ignore_ascii_case("connection") {
                close = value.eq_ignore_ascii_case("close");
            }
        }
        if (100..200).contains(&status) {
            // Interim response (e.g. 100 Continue): the real one follows.
            continue;
        }
        let body = if status == 204 || status == 304 {
            Vec::new()
        } else if chunked {
            read_chunked(r)?
        } else if let Some(n) = length {
            if n > MAX_BODY {
                return Err(invalid("response body too large"));
            }
            let mut body = vec![0; n];
            r.read_exact(&mut body)?;
            body
        } else {
            close = true;
            let mut body = Vec::new();
            r.take(MAX_BODY as u64 + 1).read_to_end(&mut body)?;
            if body.len() > MAX_BODY {
                return Err(invalid("response body too large"));
            }
            body
        };
        return Ok(Response {
            status,
            body,
            close,
        });
    }
}

fn read_chunked(r: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line = read_line(r)?;
        let size = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size, 16).map_err(|_| invalid("bad chunk size"))?;
        if size == 0 {
            // Trailers, up to the blank line.
            while !read_line(r)?.is_empty() {}
            return Ok(body);
        }
        if body.len() + size > MAX_BODY {
            return Err(invalid("response body too large"));
        }
        let start = body.len();
        body.resize(start + size, 0);
        r.read_exact(&mut body[start..])?;
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

fn parse_status(line: &str) -> io::Result<u16> {
    let mut parts = line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/1.") {
        return Err(invalid("not an HTTP/1.x response"));
    }
    parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid("bad status code"))
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("HTTP: {msg}"))
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
        let r = read_response(&mut &b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"[..]).unwrap();
        assert_eq!(
            (r.status, r.body.as_slice(), r.close),
            (200, &b"ok"[..], false)
        );
        let raw = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nTrailer: 1\r\n\r\n";
        let r = read_response(&mut &raw[..]).unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"abcde"[..]));
        let r = read_response(&mut &b"HTTP/1.0 503 Busy\r\n\r\nlater"[..]).unwrap();
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
            assert!(read_response(&mut &bad[..]).is_err());
        }
    }
}
