//! # observe
//!
//! One attribute gives a function timing, correlation-ID propagation, a
//! structured JSON log line and Prometheus metrics:
//!
//! ```
//! use observe::monitor_performance;
//!
//! #[derive(Debug)]
//! struct StoreError;
//! impl std::fmt::Display for StoreError {
//!     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
//!         f.write_str("store unavailable")
//!     }
//! }
//!
//! #[monitor_performance("process_event")]
//! fn process_event(entity_id: &str) -> Result<u64, StoreError> {
//!     if entity_id.is_empty() { Err(StoreError) } else { Ok(42) }
//! }
//!
//! // In `main`, once:
//! //     let _guard = observe::Observe::builder("websocket-ingestion").install()?;
//! // Here, the test kit captures what one call produces instead:
//! let captured = observe::testing::capture(|| process_event("sensor.kitchen"));
//! let line = &captured.lines[0];
//! assert_eq!(line["message"], "process_event completed");
//! assert_eq!(line["performance"]["status"], "success");
//! assert!(line["performance"]["duration_ms"].is_number());
//! assert_eq!(
//!     captured.metrics.counter(
//!         "operation_calls_total",
//!         &[("operation", "process_event"), ("status", "success")],
//!     ),
//!     Some(1),
//! );
//! ```
//!
//! Every call:
//!
//! - is timed (wall time; for `async fn`, from first poll to completion);
//! - joins the caller's correlation ID, or starts one (`req_{unix}_{8 hex}`)
//!   if it is the outermost monitored call; nested calls share it, also
//!   across `.await` and between threads of a work-stealing executor;
//! - ends with exactly one outcome: `success`, `error` (it returned
//!   `Err(e)`: any `Result`, whatever alias names it), `panic` (the panic
//!   keeps propagating) or `cancelled` (its future was dropped unfinished);
//! - writes one JSON line on the way out (INFO `"{op} completed"`, ERROR
//!   `"{op} failed: {error}"` with `context.error_type`, ERROR
//!   `"{op} panicked"`, WARN `"{op} cancelled"`, WARN `"{op} slow"`);
//! - updates `operation_calls_total{operation,status}`,
//!   `operation_duration_seconds{operation,status}` (a histogram),
//!   `operation_errors_total{operation,error_type}` and
//!   `operation_in_flight{operation}`.
//!
//! ## The log line
//!
//! ```json
//! {"timestamp":"2026-11-30T01:22:09.123456Z","level":"INFO","service":"websocket-ingestion",
//!  "message":"process_event completed","correlation_id":"req_1764465729_1a2b3c4d",
//!  "context":{"entity_id":"sensor.kitchen"},
//!  "performance":{"operation":"process_event","status":"success","duration_ms":0.412}}
//! ```
//!
//! Ordinary `tracing` events become lines of the same shape, their fields in
//! `context`. [`log::LogValidator`] checks a line; `docs/log-schema.json` is
//! the JSON Schema. Values of secret-looking keys (`password`, `token`,
//! `api_key`, ...) are written as `"[REDACTED]"`; every string is escaped
//! so no input can split a line.
//!
//! ## Options
//!
//! All optional, in any order after the optional operation name (the
//! function's name by default):
//!
//! | option | meaning |
//! |---|---|
//! | `"op"` | operation name: `[a-zA-Z_][a-zA-Z0-9_.:-]*` |
//! | `level = "debug"` | level of the success line (default `info`) |
//! | `context(k = expr, k2 = %expr, k3 = ?expr)` | fields of the line's `context`, evaluated at call start; `%` uses `Display`, `?` uses `Debug` |
//! | `slow = "250ms"` | log a WARN `"{op} slow"` line instead of the success line above this duration (`ns`, `us`, `ms`, `s`, `m`) |
//! | `sample = 0.01` | write that share of success lines, keeping or dropping each request whole by its correlation ID; error, panic, cancelled and slow lines are always written, metrics count every call (see [`volume`]) |
//! | `objective = API` | the [`slo::Objective`] constant the operation is held to; checked against the duration buckets at install and exposed as `operation_objective_info` (see [`slo`]) |
//! | `crate = path` | where `observe` is, if renamed |
//! | `prefix = "store"` | on an impl block only: its methods are named `store.method` instead of `Type.method` |
//! | `skip` | on a method of an annotated impl block only: leave the method unmonitored |
//!
//! ```
//! use observe::monitor_performance;
//!
//! struct Request { user: String, path: String }
//!
//! #[monitor_performance(
//!     "http.handle",
//!     level = "debug",
//!     slow = "250ms",
//!     context(user = req.user.as_str(), path = %req.path, len = req.path.len()),
//! )]
//! async fn handle(req: Request) -> std::io::Result<u16> {
//!     Ok(200)
//! }
//!
//! let req = Request { user: "ada".into(), path: "/".into() };
//! let c = futures::executor::block_on(observe::testing::capture_async(handle(req)));
//! assert_eq!(c.lines[0]["level"], "DEBUG");
//! assert_eq!(c.lines[0]["context"]["user"], "ada");
//! assert_eq!(c.lines[0]["context"]["len"], 1);
//! ```
//!
//! A context value must be a number, `bool`, `char`, string or `Option` of
//! one; anything else is a compile error at the value, telling you to log
//! it with `%` (Display) or `?` (Debug):
//!
//! ```compile_fail
//! #[derive(Debug)]
//! struct Config { port: u16 }
//!
//! #[observe::monitor_performance(context(config = cfg))]
//! fn start(cfg: &Config) {}
//! ```
//!
//! ```
//! #[derive(Debug)]
//! struct Config { port: u16 }
//!
//! #[observe::monitor_performance(context(config = ?cfg, port = cfg.port))]
//! fn start(cfg: &Config) {}
//! # start(&Config { port: 8080 });
//! ```
//!
//! ## Where it works
//!
//! Free functions, `async fn`, methods taking `self`, `&self`, `&mut self`
//! or `self: Arc<Self>`, generic functions with `where` clauses, `impl
//! Trait` in argument and return position, `async fn` in traits and their
//! impls, `#[async_trait]` methods, `unsafe fn`, and bodies using `return`
//! and `?`; and whole impl blocks (below). The signature and the other
//! attributes are left as written. Misuse (a non-function, a `const fn`, a
//! malformed option) is a compile error pointing at the offending tokens,
//! all argument errors at once.
//!
//! ## On an impl block
//!
//! On an `impl` block (inherent or trait, generic or not) the attribute
//! monitors every method with a body, each as `Type.method`: the self
//! type's name without its generics, also for a trait impl. `prefix`
//! replaces `Type`. The block's `level`, `slow` and `crate` apply to every
//! method; a method's own `#[monitor_performance(...)]` replaces them
//! option by option and may name the operation itself, and
//! `#[monitor_performance(skip)]` leaves a method alone. Associated
//! consts and types, macro invocations and `const fn`s are left as they
//! are. The block takes no operation name and no `context`, since both
//! differ per method: put them on the method.
//!
//! ```
//! use observe::monitor_performance;
//!
//! struct Store { items: Vec<u32> }
//!
//! #[monitor_performance(prefix = "store", level = "debug")]
//! impl Store {
//!     fn get(&self, i: usize) -> Option<u32> {     // "store.get", DEBUG
//!         self.items.get(i).copied()
//!     }
//!
//!     #[monitor_performance("store.insert", context(value = v))]
//!     fn push(&mut self, v: u32) {                  // "store.insert", DEBUG
//!         self.items.push(v);
//!     }
//!
//!     #[monitor_performance(skip)]
//!     fn len(&self) -> usize {                      // not monitored
//!         self.items.len()
//!     }
//! }
//!
//! let mut store = Store { items: vec![] };
//! let c = observe::testing::capture(|| {
//!     store.push(7);
//!     store.get(0);
//!     store.len()
//! });
//! let ops: Vec<_> = c.lines.iter().map(|l| l["performance"]["operation"].clone()).collect();
//! assert_eq!(ops, ["store.insert", "store.get"]);
//! assert_eq!(c.lines[0]["level"], "DEBUG");
//! assert_eq!(c.lines[0]["context"]["value"], 7);
//! ```
//!
//! With `#[async_trait]`, either attribute may come first.
//!
//! ## What it changes
//!
//! The body runs inside a closure (sync) or an `async move` block, so that
//! `return` and `?` end the body and the outcome can be recorded. That
//! shows in a few places:
//!
//! - **Context values** are evaluated only when the call's line can be
//!   written (a subscriber enables it): keep them free of side effects. A
//!   sync call evaluates them once its clock has started, so one that
//!   panics is recorded as the call's panic, and their cost is in its
//!   duration.
//! - **Parameters** taken by value are dropped in the order the body first
//!   uses them, not in reverse order of declaration.
//! - **A cancelled `async` call**: when its future is dropped unfinished,
//!   the body's locals are dropped before the "cancelled" line is logged,
//!   outside the call's correlation scope, so what they log carries the
//!   dropping code's ID. (Dropping them inside the scope would make every
//!   idle async call pay for it, measurably in `benches/overhead.rs`.)
//! - **A sync function returning a future** (`-> impl Future`) is timed
//!   and classified when it returns the future, not when the future
//!   completes; write it as an `async fn` to time the work. (A body
//!   `#[async_trait]` wrote, `Box::pin(async move { .. })`, is recognised
//!   and timed to completion.)
//! - **Errors** are recognised from the return type as written: a generic
//!   `R` or `F::Output` that happens to be a `Result` is recorded as
//!   `success`.
//! - **Stack**: a monitored function's frame is larger (about 80 bytes in
//!   release builds, more in debug), which matters for deep recursion.
//! - **With `#[tracing::instrument]`**: write `#[monitor_performance]`
//!   below it, so instrument's events happen inside the monitored call and
//!   share its correlation ID.
//! - **A renamed dependency** (`obs = { package = "observe" }`) needs
//!   `crate = ::obs` in the attribute.
//!
//! ## Correlation
//!
//! ```
//! use observe::correlation::{self, CorrelationId};
//!
//! let id: CorrelationId = "abc-123".parse().unwrap();
//! correlation::scope(id.clone(), || {
//!     assert_eq!(correlation::current(), Some(id));
//! });
//! ```
//!
//! A bare `std::thread::spawn` or `tokio::spawn` does **not** inherit the
//! current ID: spawn with [`correlation::thread::spawn`] (and, feature
//! `tokio`, `correlation::spawn` / `correlation::spawn_blocking`), which
//! carry it, or take it with [`correlation::current`] and enter it in the
//! new thread with [`correlation::scope`], or in the new task with
//! [`correlation::FutureExt::with_correlation`].
//!
//! ## Installing
//!
//! ```no_run
//! fn main() -> Result<(), observe::InstallError> {
//!     let guard = observe::Observe::builder("websocket-ingestion").install()?;
//!     // ... run the service; serve `guard.render()` on /metrics ...
//!     Ok(())
//! } // dropping the guard flushes the sinks
//! ```
//!
//! Or without code: `Observe::from_env().install()?` reads the service
//! name and every setting from `OBSERVE_*` variables (`OBSERVE_SERVICE`,
//! `OBSERVE_LOGSTASH`, `OBSERVE_METRICS_ADDR`, ...; the table is on
//! [`ObserveBuilder::from_env`]).
//!
//! ## Shipping logs
//!
//! Lines go to standard output unless sinks are added: a rotating file,
//! Logstash-style TCP or UDP json_lines, Elasticsearch/OpenSearch `_bulk`
//! (daily indices), several at once. None of them makes a call wait: each
//! has a bounded queue and a background worker that reconnects with
//! backoff, drops (and counts) the newest lines when full, and is drained
//! when the guard drops. TLS to the collector is the `tls` feature.
//!
//! ```no_run
//! fn main() -> Result<(), observe::InstallError> {
//!     let _guard = observe::Observe::builder("ha-ingestor")
//!         .logstash("127.0.0.1:5000")
//!         .elasticsearch("http://127.0.0.1:9200") // ha-ingestor-logs-YYYY.MM.DD
//!         .file("/var/log/ha-ingestor/ha-ingestor.log") // 100 MB x 5
//!         .stdout() // and standard output, all queued
//!         .install()?;
//!     Ok(())
//! }
//! ```
//!
//! ## Overhead
//!
//! The callsite's metadata is a `static` and its metric handles are
//! registered once against the global recorder and cached, so a call does
//! not hash a key or allocate on the default path. Calls are timed with
//! the CPU's time-stamp counter (through `quanta`), and log timestamps are
//! derived from it, re-synchronised with the system clock every second.
//! With nothing installed a call reads no clock and opens no correlation
//! scope (nothing could log its ID); `benches/RESULTS.md` has the numbers.

// The workspace denies `unsafe`; only the runtime has one audited use.
#![forbid(unsafe_code)]

pub use observe_macros::monitor_performance;
pub use observe_runtime::{
    Background, CorrelationId, InstallContext, InstallError, Observe, ObserveBuilder, ObserveGuard,
    Status, TRACING_SPAN_NAME, correlation, log, metrics, record, set_tracing_spans, sink, slo,
    testing, volume,
};

/// What a service that monitors its functions needs in scope:
/// `use observe::prelude::*;`.
///
/// ```
/// use observe::prelude::*;
///
/// #[monitor_performance("db.query")]
/// async fn query(id: u64) -> u64 {
///     id
/// }
///
/// # fn main() {
/// let id: CorrelationId = "job-42".parse().unwrap();
/// // `with_correlation` comes from `FutureExt`.
/// let fut = query(7).with_correlation(id);
/// # drop(fut);
/// # let _ = Observe::builder("svc");
/// # }
/// ```
pub mod prelude {
    pub use crate::correlation::FutureExt as _;
    pub use crate::{CorrelationId, Observe, monitor_performance};
}

/// System and process metrics (feature `system-metrics`).
#[cfg(feature = "system-metrics")]
pub use observe_runtime::system;

/// OpenTelemetry over OTLP/HTTP (feature `otlp`).
#[cfg(feature = "otlp")]
pub use observe_runtime::otlp;

#[doc(hidden)]
pub mod __private {
    pub use observe_runtime::__private::*;
}

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
