//! Real back-ends for integration tests: each is started on a free
//! loopback port by its recipe in `.ci/services/` (which installs the
//! server's package on first use) and stopped by PID when dropped.
#![allow(dead_code, unreachable_pub)] // each test binary uses a part

pub mod ports;

use std::io::Write as _;
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A running server.
#[derive(Debug)]
pub struct Service {
    script: PathBuf,
    dir: PathBuf,
    /// The port it listens on, on 127.0.0.1.
    pub port: u16,
}

impl Service {
    /// Starts `.ci/services/{name}.sh` on a free port, with `extra`
    /// arguments after the port.
    ///
    /// # Panics
    /// If the server cannot start: a test that needs it cannot run.
    pub fn start(name: &str, extra: &[&str]) -> Self {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let script = root.join(".ci/services").join(format!("{name}.sh"));
        let dir = std::env::temp_dir().join(format!(
            "observe-{name}-{}-{}",
            std::process::id(),
            unique()
        ));
        std::fs::create_dir_all(&dir).expect("service dir");
        let port = free_port();
        let out = Command::new("bash")
            .arg(&script)
            .arg("start")
            .arg(&dir)
            .arg(port.to_string())
            .args(extra)
            .output()
            .expect("run service script");
        assert!(
            out.status.success(),
            "{name} did not start:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Self { script, dir, port }
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The server's working directory (logs, received data).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stops the server now (e.g. to test a collector going away).
    pub fn stop(&self) {
        let _ = Command::new("bash")
            .arg(&self.script)
            .arg("stop")
            .arg(&self.dir)
            .output();
    }
}

impl Service {
    /// Starts `.ci/services/{name}.sh` on `port` (e.g. one a test already
    /// pointed a client at while nothing listened there).
    ///
    /// # Panics
    /// If the server cannot start.
    pub fn start_on(name: &str, port: u16, extra: &[&str]) -> Self {
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

    /// Starts the server again, on the same port and in the same directory
    /// (after [`stop`](Self::stop) or [`kill`](Self::kill)).
    ///
    /// # Panics
    /// If the server cannot start.
    pub fn restart(&self, extra: &[&str]) {
        self.launch(extra);
    }

    /// Kills the server with SIGKILL, as a crash would: nothing is flushed.
    pub fn kill(&self) {
        let pid_file = self.dir.join("pid");
        if let Ok(pid) = std::fs::read_to_string(&pid_file) {
            let _ = Command::new("kill").arg("-KILL").arg(pid.trim()).status();
            // Wait until the process is gone and its ports are released.
            for _ in 0..100 {
                // A zombie (State: Z) has already released its sockets.
                let status = std::fs::read_to_string(format!("/proc/{}/status", pid.trim()));
                if !status.is_ok_and(|s| {
                    s.lines()
                        .any(|l| l.starts_with("State:") && !l.contains('Z'))
                }) {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            let _ = std::fs::remove_file(pid_file);
        }
    }

    fn launch(&self, extra: &[&str]) {
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

/// A port free for both TCP and UDP on 127.0.0.1 right now, and never
/// handed out before in this process: tests running in parallel each
/// release their port before their server binds it. Drawn from below the
/// ephemeral range (see [`ports`]), or from `bind(0)` where that range
/// leaves no room.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let free = |port: u16| {
        !given.contains(&port)
            && TcpListener::bind(("127.0.0.1", port)).is_ok()
            && UdpSocket::bind(("127.0.0.1", port)).is_ok()
    };
    let port = ports::below_ephemeral(free).unwrap_or_else(|| {
        loop {
            let tcp = TcpListener::bind("127.0.0.1:0").expect("bind tcp");
            let port = tcp.local_addr().expect("addr").port();
            drop(tcp);
            if free(port) {
                break port;
            }
        }
    });
    given.push(port);
    port
}

/// What `promtool check metrics` says of `exposition`: empty when it
/// passes cleanly, else its output (with the exit status if it failed).
pub fn promtool_check(exposition: &str) -> String {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is installed (.ci/run installs it)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(exposition.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("promtool runs");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        said
    } else {
        format!("exit {}: {said}", out.status)
    }
}

/// The `main` of a test binary without the libtest harness that holds the
/// one test `name`: it answers `--list` and name filters as libtest does,
/// runs `test` (a panic fails the binary) and prints libtest's lines.
pub fn run_single_test(name: &str, test: fn()) -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        println!("{name}: test");
        return std::process::ExitCode::SUCCESS;
    }
    if let Some(filter) = args.iter().find(|a| !a.starts_with('-')) {
        if !name.contains(filter.as_str()) {
            println!("test result: ok. 0 passed; 0 failed; 1 filtered out");
            return std::process::ExitCode::SUCCESS;
        }
    }
    test();
    println!("test {name} ... ok");
    std::process::ExitCode::SUCCESS
}
