//! Elasticsearch / OpenSearch through the `_bulk` API, into daily indices.
//!
//! `mod.rs` holds the sink and its builder, `index.rs` the index name
//! pattern and `bulk.rs` the requests and their answers.

mod bulk;
mod index;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::options::{net_options, queue_options};
use super::worker::{Options, Pipe};
use super::{JsonLine, SinkError};
use crate::net::conn::NetOptions;
use crate::net::http::{self, Target};
use bulk::BulkTransport;
pub use index::DEFAULT_INDEX_PATTERN;
use index::IndexPattern;

/// Indexes lines with `_bulk` requests from a background worker.
///
/// Each line goes to the index named by the pattern (default
/// [`DEFAULT_INDEX_PATTERN`]) with `{service}` and `%Y` `%m` `%d` taken
/// from the service and time its [`JsonLine`] carries (the line's own
/// `service` and `timestamp`), so a line lands in the index of the day it
/// was logged. The index name is made as the line is queued and kept in
/// front of it, so it counts toward the queue's capacity. Each line gets an `_id` fixed when it
/// is first sent, so a request retried after a lost response overwrites
/// instead of duplicating.
///
/// Retries only what can succeed later: connection errors, HTTP 408, 429
/// and 5xx, and items refused with 429 or 502-504 (those a few times).
/// A whole request refused with 401, 403 or 404 (credentials being
/// rotated, a proxy route being replaced) keeps its lines queued and
/// retries them with backoff a few times too, then drops them, counted.
/// Other per-item errors (mapping conflicts) and 4xx answers drop the
/// lines, counted as rejected. A 413 splits the request: the size limit is
/// halved, and doubles back toward the batch size after a run of accepted
/// requests.
///
/// # Timeouts
///
/// Each `_bulk` exchange has one deadline,
/// [`io_timeout`](ElasticsearchSinkBuilder::io_timeout) (default 30 s) from
/// its start: reconnecting (name resolution, connect and TLS handshake,
/// themselves within
/// [`connect_timeout`](ElasticsearchSinkBuilder::connect_timeout)), writing
/// the request and reading the whole answer, headers and body. A server
/// that answers one byte at a time cannot stretch it. Huge values (even
/// `Duration::MAX`) are accepted and mean "practically never".
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
    pattern: Arc<IndexPattern>,
}

/// Configures an [`ElasticsearchSink`]; made by [`ElasticsearchSink::builder`].
///
/// Its `Debug` output masks the URL's password and the credentials.
#[derive(Clone)]
#[must_use = "the sink is made by `build()`"]
pub struct ElasticsearchSinkBuilder {
    url: String,
    pattern: String,
    authorization: Option<String>,
    opts: Options,
    net: NetOptions,
}

impl fmt::Debug for ElasticsearchSinkBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Secrets: the password of the URL, the API key or basic auth.
        f.debug_struct("ElasticsearchSinkBuilder")
            .field("url", &http::mask_url(&self.url))
            .field("pattern", &self.pattern)
            .field("authorization", &self.authorization.as_ref().map(|_| "***"))
            .field("opts", &self.opts)
            .field("net", &self.net)
            .finish()
    }
}

impl ElasticsearchSink {
    /// Starts configuring a sink to the cluster at `url`
    /// (`http[s]://[user:password@]host:port[/prefix]`). Errors and
    /// `Debug` show it with the password masked.
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
    /// Names each line's index: `{service}` is the line's service
    /// (`unknown` if its writer did not say), `%Y` `%m` `%d` its UTC date,
    /// `%%` a percent sign. The result is
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
        let pattern = Arc::new(IndexPattern::parse(&self.pattern)?);
        let transport = BulkTransport::new(target, self.net, self.opts.max_batch_bytes);
        Ok(ElasticsearchSink {
            pipe: Pipe::start(&self.opts, transport)?,
            pattern,
        })
    }
}

impl ElasticsearchSink {
    /// The sink's counts so far.
    #[must_use]
    pub fn stats(&self) -> super::SinkStats {
        self.pipe.stats()
    }
}

impl super::Sink for ElasticsearchSink {
    fn name(&self) -> &str {
        self.pipe.name()
    }

    fn write_json_line(&self, line: JsonLine<'_>) {
        let mut index = self.pattern.render(line.service(), line.unix_nanos());
        self.pipe.push_prefixed(index.queue_prefix(), line.as_str());
    }

    fn flush(&self, timeout: Duration) -> bool {
        self.pipe.flush(timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::Sink as _;

    #[test]
    fn secrets_stay_out_of_debug_and_errors() {
        let b = ElasticsearchSink::builder("https://elastic:pw-s3cret@es.internal:9200")
            .api_key("key-s3cret");
        let d = format!("{b:?}");
        assert!(!d.contains("s3cret"), "{d}");
        assert!(d.contains("elastic:***@es.internal:9200"), "{d}");
        let b = ElasticsearchSink::builder("http://127.0.0.1:9").basic_auth("u", "pw-s3cret");
        assert!(!format!("{b:?}").contains("czNjcmV0"), "no base64 either");
        for url in [
            "http://elastic:pw-s3cret@es.internal:port",
            "http://elastic:pw/s3cret@es.internal",
            "http://elastic:pw-s3cret@es.internal/?x=1",
        ] {
            let e = ElasticsearchSink::new(url).unwrap_err();
            let text = format!("{e} {e:?}");
            assert!(!text.contains("s3cret"), "{text}");
        }
        let sink = ElasticsearchSink::builder("http://elastic:pw-s3cret@127.0.0.1:9")
            .build()
            .unwrap();
        assert!(!format!("{sink:?}").contains("s3cret"));
    }

    #[test]
    fn lines_are_queued_behind_the_index_their_metadata_names() {
        // Nothing listens here: the lines stay queued.
        let sink = ElasticsearchSink::builder("http://127.0.0.1:9")
            .index_pattern("{service}-%Y.%m.%d")
            .build()
            .unwrap();
        // The text says another service and day: only the metadata counts.
        let text = "{\"timestamp\":\"2001-01-01T00:00:00Z\",\"service\":\"other\"}\n";
        sink.write_json_line(JsonLine::written(
            text,
            1_796_001_729_123_456_000,
            "Billing",
        ));
        let stats = sink.stats();
        assert_eq!(stats.queued, 1);
        assert_eq!(
            stats.queued_bytes,
            ("billing-2026.11.30 ".len() + text.len()) as u64
        );
    }
}
