//! Just enough HTTP/1.1 to POST a batch and read the status: one request
//! per connection, `http://` only. A full client (and its TLS stack)
//! would be most of this feature's build time for a few dozen lines' worth
//! of protocol.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// Where a server is: `http://host[:port][/base/path]`.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct BaseUrl {
    /// `host:port`, as sent in the `Host` header and used to connect.
    authority: String,
    /// Path prefix without a trailing `/` (empty for the root).
    base_path: String,
}

impl fmt::Debug for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}{}", self.authority, self.base_path)
    }
}

impl BaseUrl {
    /// Parses `url`.
    ///
    /// # Errors
    ///
    /// A message saying what is wrong with it.
    pub(crate) fn parse(url: &str) -> Result<Self, String> {
        let rest = url.strip_prefix("http://").ok_or_else(|| {
            if url.starts_with("https://") {
                format!("{url}: https is not supported; use http:// (e.g. through a local proxy)")
            } else {
                format!("{url}: expected http://host:port")
            }
        })?;
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        if authority.is_empty() || authority.contains(['@', '?', '#', ' ']) {
            return Err(format!("{url}: expected http://host:port"));
        }
        // A colon after the last `]` (or in a name without brackets)
        // starts the port; `[::1]` alone has colons but no port.
        let has_port = match authority.rsplit_once(':') {
            Some((host, port)) if host.ends_with(']') || !host.contains(':') => {
                port.parse::<u16>()
                    .map_err(|_| format!("{url}: invalid port {port:?}"))?;
                true
            }
            _ => false,
        };
        let authority = if has_port {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        let path = path.trim_end_matches('/');
        Ok(Self {
            authority,
            base_path: if path.is_empty() {
                String::new()
            } else {
                format!("/{path}")
            },
        })
    }
}

/// What the server answered.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    /// The start of the body, for error messages.
    pub(crate) body: String,
}

/// Longest response body kept for messages.
const MAX_BODY: usize = 1024;

/// POSTs `body` to `path_and_query` under `base`, waiting at most
/// `timeout` in all.
///
/// # Errors
///
/// Connection, write or read failures and malformed responses.
pub(crate) fn post(
    base: &BaseUrl,
    path_and_query: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout: Duration,
) -> io::Result<Response> {
    let deadline = Instant::now() + timeout;
    let remaining = || {
        deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1))
    };
    let mut last_err = io::Error::new(io::ErrorKind::NotFound, "host did not resolve");
    let mut stream = None;
    for addr in base.authority.to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, remaining()) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last_err = e,
        }
    }
    let mut stream = stream.ok_or(last_err)?;
    stream.set_nodelay(true)?;
    stream.set_write_timeout(Some(remaining()))?;
    let mut head = format!(
        "POST {}{} HTTP/1.1\r\nHost: {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n",
        base.base_path,
        path_and_query,
        base.authority,
        body.len()
    );
    for (k, v) in headers {
        head.push_str(k);
        head.push_str(": ");
        head.push_str(v);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()?;
    read_response(&mut stream, deadline)
}

fn read_response(stream: &mut TcpStream, deadline: Instant) -> io::Result<Response> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 64 * 1024 {
            return Err(invalid("response headers too long"));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "response timed out",
            ));
        }
        stream.set_read_timeout(Some(left))?;
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed before the response",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = std::str::from_utf8(&buf[..head_end]).map_err(|_| invalid("non-UTF-8 headers"))?;
    let status = head
        .split_ascii_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .filter(|_| head.starts_with("HTTP/1."))
        .ok_or_else(|| invalid("malformed status line"))?;
    let length = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse::<usize>().ok())?
    });
    // The body only matters for messages: read what is announced (or
    // until close), up to MAX_BODY, and never past the deadline.
    let want = length.unwrap_or(MAX_BODY).min(MAX_BODY);
    let mut body = buf[head_end..].to_vec();
    while body.len() < want {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
        }
    }
    body.truncate(want);
    Ok(Response {
        status,
        body: String::from_utf8_lossy(&body).trim().to_owned(),
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_owned())
}

/// Percent-encodes a query-string value.
pub(crate) fn encode_query(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_base_urls() {
        let u = BaseUrl::parse("http://127.0.0.1:8086").expect("valid");
        assert_eq!(
            (u.authority.as_str(), u.base_path.as_str()),
            ("127.0.0.1:8086", "")
        );
        let u = BaseUrl::parse("http://influx.local/proxy/influx/").expect("valid");
        assert_eq!(
            (u.authority.as_str(), u.base_path.as_str()),
            ("influx.local:80", "/proxy/influx")
        );
        let u = BaseUrl::parse("http://[::1]:9").expect("valid");
        assert_eq!(u.authority, "[::1]:9");
        let u = BaseUrl::parse("http://[::1]").expect("valid");
        assert_eq!(u.authority, "[::1]:80");
        for bad in [
            "https://x",
            "ftp://x",
            "http://",
            "http://h:port",
            "http://u@h:1",
        ] {
            assert!(BaseUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn encodes_query_values() {
        assert_eq!(encode_query("my db/ä&x=1"), "my%20db%2F%C3%A4%26x%3D1");
    }
}
