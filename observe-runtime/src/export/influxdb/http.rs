//! The push's HTTP: the same small HTTP/1.1 client the `_bulk` sink uses
//! ([`crate::net`]'s), one connection per request, plus query encoding.

use std::fmt;
use std::io;
use std::time::Duration;

use super::Server;
use crate::net::conn::{Conn, NetOptions};
use crate::net::deadline::Deadline;
use crate::net::http::{self as client, Target};

/// Where the server is (`http[s]://host[:port][/path]`) and how to
/// connect to it.
#[derive(Clone)]
pub(crate) struct BaseUrl {
    target: Target,
    net: NetOptions,
}

impl fmt::Debug for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The user part of a URL may hold a password: never printed.
        let scheme = if self.target.tls { "https" } else { "http" };
        write!(
            f,
            "BaseUrl({scheme}://{}{})",
            self.target.host_header, self.target.prefix
        )
    }
}

impl BaseUrl {
    /// Parses a base URL; its errors show the URL masked.
    ///
    /// # Errors
    ///
    /// Anything but `http[s]://host[:port][/path]`, and `https://` without
    /// the `tls` feature or a usable CA.
    pub(crate) fn parse(server: &Server) -> Result<Self, String> {
        let target = Target::parse(&server.url).map_err(|e| e.to_string())?;
        #[cfg(feature = "tls")]
        let net = NetOptions {
            tls: match (&server.tls, target.tls) {
                (_, false) => None,
                (Some(tls), true) => Some(tls.clone()),
                (None, true) => Some(crate::sink::TlsConfig::system().map_err(|e| e.to_string())?),
            },
            ..NetOptions::default()
        };
        #[cfg(not(feature = "tls"))]
        let net = if target.tls {
            return Err(format!(
                "invalid URL {:?}: https:// needs observe's `tls` feature",
                client::mask_url(&server.url)
            ));
        } else {
            NetOptions::default()
        };
        Ok(Self { target, net })
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
/// Longest response body read: InfluxDB answers a write with at most a
/// short JSON error.
const MAX_READ: usize = 1024 * 1024;

/// POSTs `body` to `path_and_query` under `base`, on a connection of its
/// own; everything, from resolving the name to the last byte of the
/// answer, ends within `timeout`.
///
/// # Errors
///
/// Connection, write or read failures, the deadline passing, and
/// malformed responses.
pub(crate) fn post(
    base: &BaseUrl,
    path_and_query: &str,
    authorization: Option<&str>,
    body: &[u8],
    timeout: Duration,
) -> io::Result<Response> {
    let deadline = Deadline::after(timeout);
    let mut conn = Conn::open_until(&base.target.endpoint, &base.net, deadline, timeout)?;
    let target = match authorization {
        Some(a) => Target {
            authorization: Some(a.to_owned()),
            ..base.target.clone()
        },
        None => base.target.clone(),
    };
    let r = client::post(
        &mut conn,
        &target,
        path_and_query,
        "text/plain; charset=utf-8",
        body,
        deadline,
        MAX_READ,
    );
    if r.is_ok() {
        conn.close();
    }
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

    fn parse(url: &str) -> Result<Target, String> {
        BaseUrl::parse(&Server {
            url: url.to_owned(),
            #[cfg(feature = "tls")]
            tls: None,
        })
        .map(|u| u.target)
    }

    #[test]
    fn parses_base_urls() {
        let u = parse("http://127.0.0.1:8086").expect("valid");
        assert_eq!(
            (u.host_header.as_str(), u.prefix.as_str()),
            ("127.0.0.1:8086", "")
        );
        let u = parse("http://influx.local/proxy/influx/").expect("valid");
        assert_eq!((u.endpoint.port, u.prefix.as_str()), (80, "/proxy/influx"));
        let u = parse("http://[::1]:9").expect("valid");
        assert_eq!(u.endpoint.port, 9);
        for bad in ["ftp://x", "http://", "http://h:port"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        #[cfg(not(feature = "tls"))]
        assert!(parse("https://x").is_err(), "https needs the tls feature");
        let e = parse("http://admin:pw-s3cret@h:port").unwrap_err();
        assert!(!e.contains("s3cret"), "{e}");
    }

    #[test]
    fn encodes_query_values() {
        assert_eq!(encode_query("my db/ä&x=1"), "my%20db%2F%C3%A4%26x%3D1");
    }
}
