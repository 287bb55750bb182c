//! Collector outages: a collector killed as a crash would kill it, and
//! started again where it was.

use crate::support::Service;

impl Service {
    /// Starts the server again, on the same port and in the same directory
    /// (after [`stop`](Self::stop) or [`kill`](Self::kill)).
    ///
    /// # Panics
    /// If the server cannot start.
    pub(crate) fn restart(&self, extra: &[&str]) {
        self.launch(extra);
    }

    /// Kills the server with SIGKILL, as a crash would: nothing is flushed.
    pub(crate) fn kill(&self) {
        let pid_file = self.dir().join("pid");
        if let Ok(pid) = std::fs::read_to_string(&pid_file) {
            let _ = std::process::Command::new("kill")
                .arg("-KILL")
                .arg(pid.trim())
                .status();
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
}
