//! OpenTelemetry over OTLP/HTTP.

// Started by the builder.
#[allow(dead_code)]
pub(crate) mod metrics;
