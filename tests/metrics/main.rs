//! The metrics back-ends: Prometheus, InfluxDB 1.6 and VictoriaMetrics end
//! to end, the InfluxDB push against an outage and against a scripted stub,
//! the line-protocol encoder against a real InfluxDB, and the `/metrics`
//! listener against a slow client.
//!
//! One process for all of them is safe: `backends` is the only test that
//! installs anything global (observe's subscriber and Prometheus recorder),
//! and it asserts only on its own operation (`checkout`), its own metric
//! names and the servers it started. The others install nothing: the
//! pushes read their own `AggregatingRecorder`s, filled through
//! `metrics::with_local_recorder`. What they leave in the globals while
//! `backends` runs (the pushes' warnings, their drop counters) names
//! nothing it checks.
//!
//! `metrics_cardinality.rs`, which also installs globally and counts every
//! `operation_calls_total` series, keeps a binary of its own.

mod backends;
mod common;
#[path = "../support/hostile_http.rs"]
mod hostile_http;
mod influx_outage;
mod influx_peers;
mod influx_stub;
mod line_protocol;
mod listener_slow_client;
#[path = "../support/promtool.rs"]
mod promtool;
#[path = "../support/http.rs"]
mod support;
// Empty without the `tls` feature (the module gates itself).
#[path = "../support/tls.rs"]
mod tls_ca;
