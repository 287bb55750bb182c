//! Pushes per-interval aggregates of every metric to InfluxDB (v1
//! `/write?db=` or v2 `/api/v2/write?org=&bucket=` with a token), in these
//! measurements:
//!
//! | measurement | tags | fields |
//! |---|---|---|
//! | `service_performance` | `service`, `operation`, `status` (+ labels) | `count`, `duration_ms_mean`, `duration_ms_p50`, `duration_ms_p95`, `duration_ms_p99`, `duration_ms_max` |
//! | `service_counters` | `service`, `metric` (+ labels) | `value` (increase over the interval), `total` |
//! | `service_gauges` | `service`, `metric` (+ labels) | `value` (at the end of the interval) |
//! | `service_histograms` | `service`, `metric` (+ labels) | `count`, `mean`, `p50`, `p95`, `p99`, `max` |
//!
//! The aggregates come from the same recorded values as the Prometheus
//! metrics: [`ObserveBuilder::influxdb`](crate::ObserveBuilder::influxdb)
//! wraps the installed recorder in a [`Tee`](crate::metrics::Tee) that also
//! feeds an [`AggregatingRecorder`]. `service_performance` is built from
//! `operation_duration_seconds`; percentiles come from a sketch with 0.01%
//! relative error, counts, means and maxima are exact.
//!
//! Delivery never blocks the application: a background thread encodes each
//! interval, buffers up to [`InfluxConfig::buffer_capacity`] lines (the
//! oldest are dropped first), writes batches, retries 5xx, 429 and
//! connection errors with exponential backoff, drops batches the server
//! rejects with another status, and flushes what it holds when stopped.
//! Every dropped point is counted ([`InfluxStats`] and
//! `influxdb_points_dropped_total{reason}`).
//!
//! ```no_run
//! use std::time::Duration;
//! use observe_runtime::metrics::influxdb::InfluxConfig;
//!
//! let _guard = observe_runtime::Observe::builder("websocket-ingestion")
//!     .influxdb(
//!         InfluxConfig::v2("http://127.0.0.1:8086", "ha-ingestor", "metrics", "my-token")
//!             .interval(Duration::from_secs(10)),
//!     )
//!     .install()?;
//! # Ok::<(), observe_runtime::InstallError>(())
//! ```

mod aggregate;
mod http;
mod push;

use std::fmt;
use std::time::Duration;

pub use aggregate::{
    AggregatingRecorder, SERVICE_COUNTERS, SERVICE_GAUGES, SERVICE_HISTOGRAMS, SERVICE_PERFORMANCE,
};
pub use push::{InfluxPush, InfluxStats};

/// Which write API to use.
#[derive(Clone, PartialEq, Eq)]
enum Api {
    V1 {
        database: String,
    },
    V2 {
        org: String,
        bucket: String,
        token: String,
    },
}

/// The server's base URL and, for `https://`, how to verify it.
#[derive(Clone)]
struct Server {
    url: String,
    #[cfg(feature = "tls")]
    tls: Option<crate::sink::TlsConfig>,
}

/// Where and how to push; see the [module docs](self).
///
/// Its `Debug` output masks the URL's userinfo and the v2 token.
///
/// # Timeouts
///
/// Each write request has one deadline, [`timeout`](Self::timeout) from its
/// start, covering name resolution, connecting, the TLS handshake, writing
/// the request and reading the whole answer: a server that answers one
/// byte at a time cannot stretch it. When the push stops, a request in
/// flight also ends by the stop's deadline.
#[derive(Clone)]
#[must_use]
pub struct InfluxConfig {
    url: Server,
    api: Api,
    interval: Duration,
    batch_size: usize,
    buffer_capacity: usize,
    timeout: Duration,
    retry_initial: Duration,
    retry_max: Duration,
    create_database: bool,
}

impl fmt::Debug for InfluxConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("InfluxConfig");
        d.field("url", &crate::net::http::mask_url(&self.url.url));
        #[cfg(feature = "tls")]
        d.field("tls", &self.url.tls);
        match &self.api {
            Api::V1 { database } => d.field("database", database),
            // The token is a secret: never in logs or panics.
            Api::V2 { org, bucket, .. } => d
                .field("org", org)
                .field("bucket", bucket)
                .field("token", &"[REDACTED]"),
        };
        d.field("interval", &self.interval)
            .field("batch_size", &self.batch_size)
            .field("buffer_capacity", &self.buffer_capacity)
            .field("timeout", &self.timeout)
            .field("retry_backoff", &(self.retry_initial, self.retry_max))
            .field("create_database", &self.create_database)
            .finish()
    }
}

impl InfluxConfig {
    /// Default time between pushes.
    pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);
    /// Default most lines per write request.
    pub const DEFAULT_BATCH_SIZE: usize = 5000;
    /// Default most lines held while the server is unreachable.
    pub const DEFAULT_BUFFER_CAPACITY: usize = 50_000;

    fn new(url: &str, api: Api) -> Self {
        Self {
            url: Server {
                url: url.to_owned(),
                #[cfg(feature = "tls")]
                tls: None,
            },
            api,
            interval: Self::DEFAULT_INTERVAL,
            batch_size: Self::DEFAULT_BATCH_SIZE,
            buffer_capacity: Self::DEFAULT_BUFFER_CAPACITY,
            timeout: Duration::from_secs(5),
            retry_initial: Duration::from_millis(500),
            retry_max: Duration::from_secs(30),
            create_database: false,
        }
    }

    /// InfluxDB 1.x: `POST {url}/write?db={database}`. `url` is the
    /// server's base URL, e.g. `http://127.0.0.1:8086`; `https://` needs
    /// the `tls` feature (see [`tls`](Self::tls)).
    pub fn v1(url: &str, database: &str) -> Self {
        Self::new(
            url,
            Api::V1 {
                database: database.to_owned(),
            },
        )
    }

    /// InfluxDB 2.x (and compatible servers, InfluxDB Cloud over
    /// `https://` with the `tls` feature): `POST
    /// {url}/api/v2/write?org={org}&bucket={bucket}` with `Authorization:
    /// Token {token}`.
    pub fn v2(url: &str, org: &str, bucket: &str, token: &str) -> Self {
        Self::new(
            url,
            Api::V2 {
                org: org.to_owned(),
                bucket: bucket.to_owned(),
                token: token.to_owned(),
            },
        )
    }

    /// Time between pushes, and the length of each aggregation interval
    /// (default 10 s; at least 1 ms).
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval.max(Duration::from_millis(1));
        self
    }

    /// Most lines per write request (default 5000; at least 1).
    pub fn batch_size(mut self, lines: usize) -> Self {
        self.batch_size = lines.max(1);
        self
    }

    /// Most lines held for delivery (default 50,000; at least 1); beyond
    /// it the oldest are dropped and counted.
    pub fn buffer_capacity(mut self, lines: usize) -> Self {
        self.buffer_capacity = lines.max(1);
        self
    }

    /// Longest a write request may take, from resolving the server's name
    /// to the last byte of its answer (default 5 s; at least 1 ms; huge
    /// values mean "practically never").
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// Verifies an `https://` server with `config` (feature `tls`; the
    /// same [`TlsConfig`](crate::sink::TlsConfig) as the sinks'). Without it
    /// an `https://` URL is verified against the system's CA bundle.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, config: crate::sink::TlsConfig) -> Self {
        self.url.tls = Some(config);
        self
    }

    /// Wait after the first failed write, doubled after each further one
    /// up to `max` (default 500 ms up to 30 s).
    pub fn retry_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.retry_initial = initial.max(Duration::from_millis(1));
        self.retry_max = max.max(self.retry_initial);
        self
    }

    /// With the v1 API, sends `CREATE DATABASE` when the push starts
    /// (default off; the statement is harmless if it exists).
    pub fn create_database(mut self, create: bool) -> Self {
        self.create_database = create;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_masks_userinfo_and_token() {
        for config in [
            InfluxConfig::v1("http://admin:pw-s3cret@influx:8086", "db"),
            InfluxConfig::v2(
                "https://influx:8086/?t=s3cret",
                "org",
                "bucket",
                "tok-s3cret",
            ),
        ] {
            let d = format!("{config:?}");
            assert!(!d.contains("s3cret"), "{d}");
        }
        let d = format!(
            "{:?}",
            InfluxConfig::v1("http://admin:pw@influx:8086", "db")
        );
        assert!(d.contains("admin:***@influx:8086"), "{d}");
    }
}
