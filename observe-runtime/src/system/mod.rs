//! System and process metrics, sampled in the background (feature
//! `system-metrics`, through `sysinfo` with only its system, disk and
//! network parts):
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `system_cpu_usage_percent` | gauge | |
//! | `system_memory_used_bytes`, `system_memory_usage_percent` | gauge | |
//! | `system_disk_free_bytes`, `system_disk_usage_percent` | gauge | `mount` |
//! | `system_network_receive_bytes_total`, `system_network_transmit_bytes_total` | counter | `interface` |
//! | `process_resident_memory_bytes` | gauge | |
//! | `process_cpu_seconds_total` | counter (whole seconds, rounded down) | |
//!
//! `system_disk_free_bytes` is the space unprivileged processes may still
//! use (statvfs `f_bavail`, psutil's `disk_usage().free`), and
//! `system_disk_usage_percent` is `100 × (size − available) / size`: blocks
//! reserved for root count as in use, so it reads higher than `df`'s `Use%`
//! on a file system that reserves blocks. `df`'s figure needs the free-block
//! count (statvfs `f_bfree`), which sysinfo does not pass on.
//!
//! A sample that fails in part records what it could; the first failure is
//! logged once (WARN, target `observe::system`) and the sampler backs off,
//! doubling its wait up to 8 intervals, until a sample succeeds again (one
//! INFO line). Nothing in it panics the application: even a panic inside
//! `sysinfo` is caught and treated as a failed sample.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! let _guard = observe_runtime::Observe::builder("websocket-ingestion")
//!     .system_metrics(Duration::from_secs(30))
//!     .install()?;
//! # Ok::<(), observe_runtime::InstallError>(())
//! ```

use std::collections::HashSet;
use std::fmt;
use std::io;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use sysinfo::{Disks, Networks, Pid, ProcessRefreshKind, ProcessesToUpdate, System};

use crate::base::Background;
use crate::base::clock;
use crate::base::names;
use crate::base::supervise::{self, Supervised};

/// Time between samples unless told otherwise.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);

/// Longest wait between samples while they keep failing, in intervals.
const MAX_BACKOFF_FACTOR: u32 = 8;

/// The state `sysinfo` needs between samples (CPU usage is a difference
/// between two readings).
pub struct SystemSampler {
    system: System,
    disks: Disks,
    networks: Networks,
    pid: Result<Pid, &'static str>,
}

impl fmt::Debug for SystemSampler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SystemSampler")
            .field("pid", &self.pid)
            .finish_non_exhaustive()
    }
}

impl Default for SystemSampler {
    fn default() -> Self {
        Self::new()
    }
}

/// Why (part of) a sample could not be taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleError(String);

impl fmt::Display for SampleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SampleError {}

impl SystemSampler {
    /// Takes the first readings. CPU usage is meaningful from the first
    /// [`sample`](Self::sample) taken at least
    /// [`sysinfo::MINIMUM_CPU_UPDATE_INTERVAL`] later.
    #[must_use]
    pub fn new() -> Self {
        let mut system = System::new();
        system.refresh_cpu_usage();
        Self {
            system,
            disks: Disks::new_with_refreshed_list(),
            networks: Networks::new_with_refreshed_list(),
            pid: sysinfo::get_current_pid(),
        }
    }

    /// Records one sample of every metric into the current recorder.
    ///
    /// ```
    /// let mut sampler = observe_runtime::system::SystemSampler::new();
    /// let captured = observe_runtime::testing::capture(|| sampler.sample());
    /// if captured.output.is_ok() {
    ///     assert!(captured.metrics.gauge("system_memory_used_bytes", &[]).is_some());
    /// }
    /// ```
    ///
    /// # Errors
    ///
    /// What could not be read; everything else is still recorded.
    pub fn sample(&mut self) -> Result<(), SampleError> {
        // Described with every sample: the thread starts before observe
        // installs its recorder, and describing is cheap next to sampling.
        describe();
        let mut problems: Vec<String> = Vec::new();

        self.system.refresh_cpu_usage();
        let cpu = f64::from(self.system.global_cpu_usage());
        if cpu.is_finite() {
            metrics::gauge!(names::SYSTEM_CPU_USAGE_PERCENT).set(cpu);
        } else {
            problems.push("CPU usage unavailable".into());
        }

        self.system.refresh_memory();
        let (total, used) = (self.system.total_memory(), self.system.used_memory());
        if total == 0 {
            problems.push("memory totals unavailable".into());
        } else {
            metrics::gauge!(names::SYSTEM_MEMORY_USED_BYTES).set(as_f64(used));
            metrics::gauge!(names::SYSTEM_MEMORY_USAGE_PERCENT)
                .set(as_f64(used) / as_f64(total) * 100.0);
        }

        self.disks.refresh(true);
        let mut mounts = HashSet::new();
        for disk in self.disks.list() {
            let available = disk.available_space();
            let Some(unavailable_percent) = disk_unavailable_percent(disk.total_space(), available)
            else {
                continue;
            };
            let mount = disk.mount_point().to_string_lossy().into_owned();
            // Bind mounts list one file system several times.
            if !mounts.insert(mount.clone()) {
                continue;
            }
            metrics::gauge!(names::SYSTEM_DISK_FREE_BYTES, names::LABEL_MOUNT => mount.clone())
                .set(as_f64(available));
            metrics::gauge!(names::SYSTEM_DISK_USAGE_PERCENT, names::LABEL_MOUNT => mount)
                .set(unavailable_percent);
        }
        if mounts.is_empty() {
            problems.push("no file systems listed".into());
        }

        self.networks.refresh(true);
        for (interface, data) in self.networks.list() {
            metrics::counter!(
                names::SYSTEM_NETWORK_RECEIVE_BYTES_TOTAL,
                names::LABEL_INTERFACE => interface.clone()
            )
            .absolute(data.total_received());
            metrics::counter!(
                names::SYSTEM_NETWORK_TRANSMIT_BYTES_TOTAL,
                names::LABEL_INTERFACE => interface.clone()
            )
            .absolute(data.total_transmitted());
        }

        match self.pid {
            Ok(pid) => {
                self.system.refresh_processes_specifics(
                    ProcessesToUpdate::Some(&[pid]),
                    false,
                    ProcessRefreshKind::nothing()
                        .with_memory()
                        .with_cpu()
                        .without_tasks(),
                );
                match self.system.process(pid) {
                    Some(p) => {
                        metrics::gauge!(names::PROCESS_RESIDENT_MEMORY_BYTES)
                            .set(as_f64(p.memory()));
                        metrics::counter!(names::PROCESS_CPU_SECONDS_TOTAL)
                            .absolute(whole_cpu_seconds(p.accumulated_cpu_time()));
                    }
                    None => problems.push(format!("process {pid} not found")),
                }
            }
            Err(e) => problems.push(format!("own process id unavailable: {e}")),
        }

        if problems.is_empty() {
            Ok(())
        } else {
            Err(SampleError(problems.join("; ")))
        }
    }

    /// Samples every `interval` on a background thread until stopped.
    ///
    /// # Errors
    ///
    /// Spawning the thread failed.
    pub fn spawn(self, interval: Duration) -> io::Result<SamplerThread> {
        let interval = interval.max(Duration::from_millis(1));
        let (stop, rx) = mpsc::channel::<()>();
        let mut sampler = Some(self);
        let thread = supervise::spawn(
            "observe-system-sampler".into(),
            COMPONENT.into(),
            move |restarts| {
                if restarts > 0 {
                    match rx.recv_timeout(supervise::restart_delay(restarts)) {
                        Err(RecvTimeoutError::Timeout) => {}
                        Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
                    }
                }
                run(sampler.take(), interval, &rx);
            },
        )?;
        Ok(SamplerThread {
            stop,
            thread: Some(thread),
        })
    }
}

#[allow(clippy::cast_precision_loss)]
fn as_f64(v: u64) -> f64 {
    v as f64
}

/// `system_disk_usage_percent`: `100 × (size − available) / size`, `None`
/// for a file system of size 0. Blocks reserved for root count as in use,
/// so it reads above `df`'s `Use%` where blocks are reserved: `df` needs
/// the free-block count (statvfs `f_bfree`), which sysinfo does not pass
/// on, and calling statvfs directly would take `unsafe` or a new crate.
fn disk_unavailable_percent(size: u64, available: u64) -> Option<f64> {
    (size != 0).then(|| as_f64(size.saturating_sub(available)) / as_f64(size) * 100.0)
}

/// `process_cpu_seconds_total`, from sysinfo's accumulated milliseconds.
///
/// Whole seconds, rounded down, because the facade's counters are `u64`
/// and promtool rejects both alternatives: a `_total` gauge holding
/// fractions, and a counter in milliseconds. Nothing accumulates an error:
/// each sample is recorded with `absolute`, so a sample's sub-second rest
/// is in the next one's total. The cost is resolution: `rate()` over W
/// seconds is off by under 1/W.
fn whole_cpu_seconds(accumulated_cpu_ms: u64) -> u64 {
    accumulated_cpu_ms / 1000
}

fn describe() {
    use metrics::Unit;
    metrics::describe_gauge!(
        names::SYSTEM_CPU_USAGE_PERCENT,
        Unit::Percent,
        "CPU usage of the whole machine."
    );
    metrics::describe_gauge!(
        names::SYSTEM_MEMORY_USED_BYTES,
        Unit::Bytes,
        "Memory in use."
    );
    metrics::describe_gauge!(
        names::SYSTEM_MEMORY_USAGE_PERCENT,
        Unit::Percent,
        "Memory in use, in percent of the total."
    );
    metrics::describe_gauge!(
        names::SYSTEM_DISK_FREE_BYTES,
        Unit::Bytes,
        "Space on a file system available to unprivileged processes (statvfs f_bavail; \
         blocks reserved for root are not included)."
    );
    metrics::describe_gauge!(
        names::SYSTEM_DISK_USAGE_PERCENT,
        Unit::Percent,
        "Share of a file system's size unavailable to unprivileged processes, \
         100 * (size - available) / size; blocks reserved for root count as in use, \
         so it reads higher than df's Use% when a file system reserves blocks."
    );
    metrics::describe_counter!(
        names::SYSTEM_NETWORK_RECEIVE_BYTES_TOTAL,
        Unit::Bytes,
        "Bytes received by a network interface since boot."
    );
    metrics::describe_counter!(
        names::SYSTEM_NETWORK_TRANSMIT_BYTES_TOTAL,
        Unit::Bytes,
        "Bytes sent by a network interface since boot."
    );
    metrics::describe_gauge!(
        names::PROCESS_RESIDENT_MEMORY_BYTES,
        Unit::Bytes,
        "Resident memory of this process."
    );
    metrics::describe_counter!(
        names::PROCESS_CPU_SECONDS_TOTAL,
        Unit::Seconds,
        "User and system CPU time used by this process, in whole seconds rounded down \
         (counters are integers)."
    );
}

/// The component name in `observe_component_restarts_total`.
const COMPONENT: &str = "system sampler";

fn run(mut sampler: Option<SystemSampler>, interval: Duration, stop: &mpsc::Receiver<()>) {
    let mut failures: u32 = 0;
    // CPU usage needs two readings some time apart.
    let mut wait = sysinfo::MINIMUM_CPU_UPDATE_INTERVAL;
    loop {
        match stop.recv_timeout(wait) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
        // A panic in here ends `run`: the supervisor counts it and starts
        // afresh, with a new sampler, since this one's state may be half
        // updated.
        let error = sampler
            .get_or_insert_with(SystemSampler::new)
            .sample()
            .err()
            .map(|e| e.to_string());
        match error {
            None => {
                if failures > 0 {
                    tracing::info!(target: "observe::system", "system metrics: sampling works again");
                }
                failures = 0;
                wait = interval;
            }
            Some(e) => {
                if failures == 0 {
                    tracing::warn!(
                        target: "observe::system",
                        error = %e,
                        "system metrics: sampling failed; backing off (logged once until it recovers)"
                    );
                }
                failures = failures.saturating_add(1);
                let factor = 1u32
                    .checked_shl(failures.min(3))
                    .unwrap_or(MAX_BACKOFF_FACTOR)
                    .min(MAX_BACKOFF_FACTOR);
                wait = interval.saturating_mul(factor);
            }
        }
    }
}

/// The background sampler; stops when [`stop`](Self::stop)ped or dropped.
#[derive(Debug)]
pub struct SamplerThread {
    stop: mpsc::Sender<()>,
    thread: Option<Supervised>,
}

impl SamplerThread {
    /// Stops sampling and waits for a sample in progress.
    pub fn stop(mut self) {
        self.shut_down(None);
    }

    fn shut_down(&mut self, deadline: Option<Instant>) {
        let _ = self.stop.send(());
        if let Some(t) = self.thread.take() {
            // A sample stuck in the kernel is left behind at the deadline.
            let _ = t.join_until(deadline);
        }
    }
}

impl Drop for SamplerThread {
    fn drop(&mut self) {
        self.shut_down(None);
    }
}

impl Background for SamplerThread {
    fn stop(mut self: Box<Self>, timeout: Duration) {
        self.shut_down(Some(clock::deadline_after(timeout)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    #[test]
    fn a_sample_records_every_system_and_process_metric() {
        let mut sampler = SystemSampler::new();
        std::thread::sleep(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL);
        let c = testing::capture(|| sampler.sample());
        assert_eq!(c.output, Ok(()));
        let m = &c.metrics;
        let cpu = m.gauge("system_cpu_usage_percent", &[]).unwrap_or(-1.0);
        assert!((0.0..=100.0).contains(&cpu), "{cpu}");
        let used = m.gauge("system_memory_used_bytes", &[]).unwrap_or(0.0);
        assert!(used > 0.0);
        let pct = m.gauge("system_memory_usage_percent", &[]).unwrap_or(-1.0);
        assert!((0.0..=100.0).contains(&pct), "{pct}");
        assert!(m.gauge("process_resident_memory_bytes", &[]).unwrap_or(0.0) > 0.0);
        assert!(m.counter("process_cpu_seconds_total", &[]).is_some());
        let keys = m.keys();
        for name in [
            "system_disk_free_bytes",
            "system_disk_usage_percent",
            "system_network_receive_bytes_total",
            "system_network_transmit_bytes_total",
        ] {
            assert!(
                keys.iter().any(|k| k.starts_with(name)),
                "{name} in {keys:?}"
            );
        }
    }

    #[test]
    fn disk_usage_counts_the_blocks_reserved_for_root_as_in_use() {
        // `stat -f /` on an ext file system with many blocks reserved:
        // 4 KiB blocks, 66,053,021 in all, 46,894,027 free, 4,662,478
        // available. `df` printed `Use% 81%` for it.
        let block = 4096;
        let ours =
            disk_unavailable_percent(66_053_021 * block, 4_662_478 * block).expect("size > 0");
        assert!((ours - 92.941).abs() < 0.001, "{ours}");
        for (size, available, want) in [
            (1_000, 250, 75.0),
            (u64::MAX, u64::MAX / 4, 75.0),
            (3, 2, 100.0 / 3.0),
        ] {
            let got = disk_unavailable_percent(size, available).expect("size > 0");
            assert!((got - want).abs() < 1e-9, "{size} {available}: {got}");
        }
    }

    #[test]
    fn disk_usage_edge_cases() {
        assert_eq!(disk_unavailable_percent(0, 0), None);
        assert_eq!(disk_unavailable_percent(0, 5), None);
        assert_eq!(disk_unavailable_percent(1_000, 0), Some(100.0));
        assert_eq!(disk_unavailable_percent(1_000, 1_000), Some(0.0));
        // A file system cannot have more available than its size; if one
        // reports it, the figure stays at 0 rather than going negative.
        assert_eq!(disk_unavailable_percent(1_000, 2_000), Some(0.0));
    }

    #[test]
    fn the_thread_stops_promptly() {
        let t = SystemSampler::new()
            .spawn(Duration::from_secs(3600))
            .expect("spawn");
        t.stop();
    }
}
