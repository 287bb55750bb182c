//! Real back-ends for integration tests: each is started on a free
//! loopback port by its recipe in `.ci/services/` (which installs the
//! server's package on first use) and stopped by PID when dropped.
//!
//! `http.rs` adds the URL of the servers spoken to over HTTP; the sink
//! tests add collector outages (`tests/sink/outage.rs`).

#[path = "free_port.rs"]
mod free_port;

use std::path::{Path, PathBuf};
use std::process::Command;

pub(crate) use free_port::free_port;

/// A running server.
#[derive(Debug)]
pub(crate) struct Service {
    script: PathBuf,
    dir: PathBuf,
    /// The port it listens on, on 127.0.0.1.
    pub(crate) port: u16,
}

impl Service {
    /// Starts `.ci/services/{name}.sh` on a free port, with `extra`
    /// arguments after the port.
    ///
    /// # Panics
    /// If the server cannot start: a test that needs it cannot run.
    pub(crate) fn start(name: &str, extra: &[&str]) -> Self {
        Self::start_on(name, free_port(), extra)
    }

    /// Starts `.ci/services/{name}.sh` on `port` (e.g. one a test already
    /// pointed a client at while nothing listened there).
    ///
    /// # Panics
    /// If the server cannot start.
    pub(crate) fn start_on(name: &str, port: u16, extra: &[&str]) -> Self {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let script = root.join(".ci/services").join(format!("{name}.sh"));
        let dir = std::env::temp_dir().join(format!(
            "observe-{name}-{}-{}",
            std::process::id(),
            unique()
        ));
        std::fs::create_dir_all(&dir).expect("service dir");
        let service = Self { script, dir, port };
        service.launch(extra);
        service
    }

    /// `127.0.0.1:PORT`.
    pub(crate) fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The server's working directory (logs, received data).
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stops the server now (e.g. to test a collector going away).
    pub(crate) fn stop(&self) {
        let _ = Command::new("bash")
            .arg(&self.script)
            .arg("stop")
            .arg(&self.dir)
            .output();
    }

    /// Runs the recipe's `start` on this server's port and directory.
    ///
    /// # Panics
    /// If the server cannot start.
    pub(crate) fn launch(&self, extra: &[&str]) {
        let out = Command::new("bash")
            .arg(&self.script)
            .arg("start")
            .arg(&self.dir)
            .arg(self.port.to_string())
            .args(extra)
            .output()
            .expect("run service script");
        assert!(
            out.status.success(),
            "{} did not start:\n{}\n{}",
            self.script.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.stop();
    }
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}
