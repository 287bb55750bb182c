//! Real back-ends for integration tests: each is started on a free
//! loopback port by its recipe in `.ci/services/` (which installs the
//! server's package on first use) and stopped by PID when dropped. Where
//! the package cannot be installed (no Debian, no root), the test says so
//! on stderr and returns, skipped, unless `CI` is set.
//!
//! `http.rs` adds the URL of the servers spoken to over HTTP; the sink
//! tests add collector outages (`tests/sink/outage.rs`).

#[path = "free_port.rs"]
mod free_port;

use std::io::Write as _;
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
    /// Variables the recipe is started with (e.g. Prometheus' `PROM_ARGS`).
    env: Vec<(String, String)>,
}

impl Service {
    /// Starts `.ci/services/{name}.sh` on a free port, with `extra`
    /// arguments after the port; `None` (the test is to return at once,
    /// skipped) if the server is not installed and cannot be installed
    /// here, e.g. off Debian or without root. The reason goes to stderr.
    /// Under `CI` nothing is skipped: a server that cannot start fails the
    /// test.
    ///
    /// # Panics
    /// If the server cannot start for any other reason.
    pub(crate) fn start_or_skip(name: &str, extra: &[&str]) -> Option<Self> {
        Self::start_on_or_skip(name, free_port(), extra)
    }

    /// [`start_or_skip`](Self::start_or_skip) with variables for the
    /// recipe, e.g. `PROM_ARGS` for Prometheus' feature flags.
    #[allow(dead_code)] // not every test crate passes variables
    pub(crate) fn start_with_env_or_skip(
        name: &str,
        env: &[(&str, &str)],
        extra: &[&str],
    ) -> Option<Self> {
        Self::start_full(name, free_port(), env, extra)
    }

    /// [`start_or_skip`](Self::start_or_skip) on `port` (e.g. one a test
    /// already pointed a client at while nothing listened there).
    ///
    /// # Panics
    /// If the server cannot start for a reason other than its installation.
    pub(crate) fn start_on_or_skip(name: &str, port: u16, extra: &[&str]) -> Option<Self> {
        Self::start_full(name, port, &[], extra)
    }

    fn start_full(name: &str, port: u16, env: &[(&str, &str)], extra: &[&str]) -> Option<Self> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let script = root.join(".ci/services").join(format!("{name}.sh"));
        let dir = std::env::temp_dir().join(format!(
            "observe-{name}-{}-{}",
            std::process::id(),
            unique()
        ));
        std::fs::create_dir_all(&dir).expect("service dir");
        let env = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let service = Self {
            script,
            dir,
            port,
            env,
        };
        match service.try_launch(extra) {
            Ok(()) => Some(service),
            Err(Failure::Install(why)) if std::env::var_os("CI").is_none() => {
                let note = format!(
                    "skipped: {name} is not installed and cannot be installed here ({why}); set CI=1 to make this a failure\n"
                );
                // Past the test harness's capture, so it shows in every run.
                match std::fs::OpenOptions::new().append(true).open("/dev/stderr") {
                    Ok(mut stderr) => {
                        let _ = stderr.write_all(note.as_bytes());
                    }
                    Err(_) => eprint!("{note}"),
                }
                None
            }
            Err(Failure::Install(why) | Failure::Start(why)) => {
                panic!("{} did not start:\n{why}", service.script.display())
            }
        }
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
    #[allow(dead_code)] // the outage tests restart servers; not every test crate does
    pub(crate) fn launch(&self, extra: &[&str]) {
        if let Err(Failure::Install(why) | Failure::Start(why)) = self.try_launch(extra) {
            panic!("{} did not start:\n{why}", self.script.display());
        }
    }

    fn try_launch(&self, extra: &[&str]) -> Result<(), Failure> {
        let out = Command::new("bash")
            .arg(&self.script)
            .arg("start")
            .arg(&self.dir)
            .arg(self.port.to_string())
            .args(extra)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .output()
            .map_err(|e| Failure::Install(format!("cannot run bash: {e}")))?;
        if out.status.success() {
            return Ok(());
        }
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // The recipes' installers end with one of these when the package
        // manager (or root) is not there.
        let install = [
            "apt-get install",
            "still missing after install",
            "pip download",
            "not extracted",
        ]
        .iter()
        .any(|m| said.contains(m));
        Err(if install {
            Failure::Install(said.trim().to_owned())
        } else {
            Failure::Start(said)
        })
    }
}

/// Why a recipe's `start` failed.
enum Failure {
    /// The server is missing and could not be installed.
    Install(String),
    /// Anything else: a real failure.
    Start(String),
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
