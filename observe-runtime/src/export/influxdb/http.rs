//! The push's HTTP: the same small HTTP/1.1 client the `_bulk` sink uses
//! ([`crate::net`]'s), one connection per request, plus query encoding.

use std::fmt;
use std::io;
use std::time::Duration;

use crate::net::conn::{Conn, NetOptions};
use crate::net::http::{self as client, Target};

/// Where the server is: `http://host[:port][/path]`.
#[derive(Clone)]
pub(crate) struct BaseUrl(Target);

impl fmt::Debug for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The user part of a URL may hold a password: never printed.
        write!(f, "BaseUrl({}{})", self.0.host_header, self.0.prefix)
    }
}

impl BaseUrl {
    /// Parses a base URL.
    ///
    /// # Errors
    ///
    /// Anything but `http://host[:port][/path]` (the push speaks plain
    /// HTTP only).
    pub(crate) fn parse(url: &str) -> Result<Self, String> {
        let target = Target::parse(url).map_err(|e| e.to_string())?;
        if target.tls {
            return Err(format!(
                "invalid URL {url:?}: the InfluxDB push speaks http:// only"
            ));
        }
        Ok(Self(target))
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

/// POSTs `body` to `path_and_query` under `base`; connecting, and each
/// write or read, wait at most `timeout`.
///
/// # Errors
///
/// Connection, write or read failures and malformed responses.
pub(crate) fn post(
    base: &BaseUrl,
    path_and_query: &str,
    authorization: Option<&str>,
    body: &[u8],
    timeout: Duration,
) -> io::Result<Response> {
    // The update fills `tls`, a field only the `tls` feature adds.
    #[allow(clippy::needless_update)]
    let net = NetOptions {
        connect_timeout: timeout,
        io_timeout: timeout,
        ..NetOptions::default()
    };
    let mut conn = Conn::open(&base.0.endpoint, &net)?;
    let target = match authorization {
        Some(a) => Target {
            authorization: Some(a.to_owned()),
            ..base.0.clone()
        },
        None => base.0.clone(),
    };
    let r = client::post(
        &mut conn,
        &target,
        path_and_query,
        "text/plain; charset=utf-8",
        body,
    );
    conn.close();
    let r = r?;
    let end = r.body.len().min(MAX_BODY);
    Ok(Response {
        status: r.status,
        body: String::from_utf8_lossy(&r.body[..end]).into_owned(),
    })
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
            (u.0.host_header.as_str(), u.0.prefix.as_str()),
            ("127.0.0.1:8086", "")
        );
        let u = BaseUrl::parse("http://influx.local/proxy/influx/").expect("valid");
        assert_eq!(
            (u.0.endpoint.port, u.0.prefix.as_str()),
            (80, "/proxy/influx")
        );
        let u = BaseUrl::parse("http://[::1]:9").expect("valid");
        assert_eq!(u.0.endpoint.port, 9);
        for bad in ["https://x", "ftp://x", "http://", "http://h:port"] {
            assert!(BaseUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn encodes_query_values() {
        assert_eq!(encode_query("my db/ä&x=1"), "my%20db%2F%C3%A4%26x%3D1");
    }
}
