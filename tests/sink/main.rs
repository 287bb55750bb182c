//! The sinks against real collectors and local endpoints: TCP and UDP
//! json_lines to syslog-ng, `_bulk` to osmem-server, the rotating file, TLS
//! (feature `tls`), and the JSON of any text through a sink.
//!
//! One process for all of them is safe: each test logs through a dispatch
//! of its own, set on each thread that logs (`tracing::dispatcher::
//! with_default`), so its lines reach only its own sink; nothing here
//! installs a global subscriber. The one global is the debugging recorder
//! that `common::recorder` installs once per process: the sink workers
//! publish their counters to it, and each test reads only the counters of
//! its own sinks, which it names uniquely.
//!
//! In their own binaries: `sink_install.rs`, which installs observe
//! globally (its recorder could not coexist with the debugging recorder),
//! and `sink_memory.rs`, whose RSS bounds hold only while no other test
//! allocates in the process.

mod bulk;
mod common;
mod file;
#[path = "../support/harness.rs"]
mod harness;
#[path = "../support/hostile_http.rs"]
mod hostile_http;
mod http_peers;
mod lines;
mod logging;
mod outage;
mod received;
#[path = "../support/http.rs"]
mod support;
mod tcp;
// Empty without the `tls` feature (the modules gate themselves).
mod tls;
#[path = "../support/tls.rs"]
mod tls_ca;
mod udp;
