//! Correlation IDs: one per call tree, across awaits and executors;
//! parsing untrusted IDs and `traceparent` headers; and two HTTP services
//! behind the tower layer passing an ID across the hop.
//!
//! One process for all of them is safe: nothing here installs a global
//! subscriber or recorder or changes the ID format. Every line is written
//! through a thread-scoped subscriber (`observe::testing::capture`, or the
//! HTTP services' own, on the threads that serve them).
//!
//! `propagation.rs`, which installs the global subscriber and counts every
//! line it gets, keeps a binary of its own: the HTTP client of
//! `http_services` runs on the test thread, where hyper-util logs at debug
//! level, and under `RUST_LOG=debug` those lines would reach that
//! subscriber.

mod call_trees;
mod http_services;
mod props;
mod spans;
