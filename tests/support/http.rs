//! The servers spoken to over HTTP (Prometheus, InfluxDB, VictoriaMetrics,
//! osmem-server): a [`Service`] and its URL.

#[path = "service.rs"]
mod service;

pub(crate) use service::*;

impl Service {
    /// `http://127.0.0.1:PORT`.
    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr())
    }
}
