//! The push thread: collect each interval, buffer, write in batches, retry,
//! count what is dropped, flush on stop.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::aggregate::{AggregatingRecorder, Aggregator};
use super::http::{self, BaseUrl};
use super::{Api, InfluxConfig};
use crate::base::Background;
use crate::base::clock;
use crate::base::names;
use crate::base::supervise::{self, Supervised};

/// What a push has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct InfluxStats {
    /// Points encoded and buffered.
    pub points_queued: u64,
    /// Points the server accepted.
    pub points_written: u64,
    /// Points dropped because the buffer was full (oldest first).
    pub dropped_buffer_full: u64,
    /// Points in batches the server rejected (a 4xx other than 429).
    pub dropped_rejected: u64,
    /// Points that could not be encoded (e.g. a NaN gauge).
    pub dropped_invalid: u64,
    /// Points still undelivered when the push stopped.
    pub dropped_shutdown: u64,
    /// Write requests that failed and were retried.
    pub failed_requests: u64,
    /// Points waiting for delivery now.
    pub buffered: u64,
}

#[derive(Debug, Default)]
struct Stats {
    queued: AtomicU64,
    written: AtomicU64,
    buffer_full: AtomicU64,
    rejected: AtomicU64,
    invalid: AtomicU64,
    shutdown: AtomicU64,
    failed_requests: AtomicU64,
    buffered: AtomicU64,
    /// A stop gave up waiting for the thread (stuck in an exchange past
    /// the deadline) and counted what it held as dropped: the thread's
    /// counts from then on are not added again. A lock, not a flag: the
    /// thread's counts and what it holds change under it together, so no
    /// point is counted both by the thread and by the stop.
    abandoned: Mutex<bool>,
}

impl Stats {
    fn snapshot(&self) -> InfluxStats {
        // One moment's counts: the thread changes them together under the
        // ledger's lock.
        let _ledger = self.ledger();
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        InfluxStats {
            points_queued: l(&self.queued),
            points_written: l(&self.written),
            dropped_buffer_full: l(&self.buffer_full),
            dropped_rejected: l(&self.rejected),
            dropped_invalid: l(&self.invalid),
            dropped_shutdown: l(&self.shutdown),
            failed_requests: l(&self.failed_requests),
            buffered: l(&self.buffered),
        }
    }

    fn ledger(&self) -> MutexGuard<'_, bool> {
        self.abandoned
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The thread's counting: applies `count` and notes that it now holds
    /// `held` points, unless a stop has abandoned it.
    fn settle(&self, held: usize, count: impl FnOnce(&Self)) {
        let abandoned = self.ledger();
        if !*abandoned {
            count(self);
            self.buffered.store(held as u64, Ordering::Relaxed);
        }
    }

    /// Counts the points the thread still holds as dropped at shutdown,
    /// once, and stops counting what the thread does afterwards.
    fn abandon(&self) {
        let mut abandoned = self.ledger();
        if !std::mem::replace(&mut *abandoned, true) {
            let held = self.buffered.swap(0, Ordering::Relaxed);
            self.count_dropped(&self.shutdown, "shutdown", held);
        }
    }

    fn count_dropped(&self, cell: &AtomicU64, reason: &'static str, n: u64) {
        if n == 0 {
            return;
        }
        cell.fetch_add(n, Ordering::Relaxed);
        describe();
        metrics::counter!(names::INFLUXDB_POINTS_DROPPED_TOTAL, names::LABEL_REASON => reason)
            .increment(n);
    }
}

/// Describes the push's own counters. Called where they are updated: the
/// push starts before observe installs the recorder, so a description
/// given at start would be lost, and updates are rare (once per batch).
fn describe() {
    metrics::describe_counter!(
        names::INFLUXDB_POINTS_WRITTEN_TOTAL,
        metrics::Unit::Count,
        "Points the InfluxDB push delivered."
    );
    metrics::describe_counter!(
        names::INFLUXDB_POINTS_DROPPED_TOTAL,
        metrics::Unit::Count,
        "Points the InfluxDB push gave up on, by reason."
    );
}

enum Command {
    /// Collect now, then acknowledge.
    Collect(mpsc::Sender<()>),
    /// Flush until the deadline, then exit.
    Stop(Instant),
}

/// A running push; stop it with [`stop`](Self::stop) (the builder's guard
/// does so when dropped) to deliver what it still holds.
#[derive(Debug)]
pub struct InfluxPush {
    commands: mpsc::Sender<Command>,
    thread: Option<Supervised>,
    stats: Arc<Stats>,
}

impl InfluxPush {
    /// Starts pushing the aggregates of `recorder` for `service` as
    /// `config` says.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use observe_runtime::metrics::influxdb::{AggregatingRecorder, InfluxConfig, InfluxPush};
    ///
    /// let recorder = AggregatingRecorder::default();
    /// let push = InfluxPush::start(
    ///     "billing",
    ///     InfluxConfig::v1("http://127.0.0.1:8086", "metrics"),
    ///     &recorder,
    /// )?;
    /// metrics::with_local_recorder(&recorder, || metrics::counter!("invoices_total").increment(1));
    /// let stats = push.stop(Duration::from_secs(5));
    /// assert_eq!(stats.points_written, 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// `InvalidInput` if the URL is not `http[s]://host[:port][/path]`
    /// (`https://` needs the `tls` feature), or the error of spawning the
    /// thread.
    pub fn start(
        service: &str,
        config: InfluxConfig,
        recorder: &AggregatingRecorder,
    ) -> io::Result<Self> {
        let url = BaseUrl::parse(&config.url)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let (path, auth) = match &config.api {
            Api::V1 { database } => (
                format!("/write?db={}&precision=ms", http::encode_query(database)),
                None,
            ),
            Api::V2 { org, bucket, token } => (
                format!(
                    "/api/v2/write?org={}&bucket={}&precision=ms",
                    http::encode_query(org),
                    http::encode_query(bucket)
                ),
                Some(format!("Token {token}")),
            ),
        };
        let stats = Arc::new(Stats::default());
        let worker = Worker {
            backoff: config.retry_initial,
            config,
            url,
            path,
            auth,
            aggregator: Arc::clone(&recorder.aggregator),
            service: service.to_owned(),
            stats: Arc::clone(&stats),
            buffer: VecDeque::new(),
            retry_at: None,
            failing: false,
            rejected_logged: false,
            invalid_logged: false,
        };
        let (commands, rx) = mpsc::channel();
        let mut worker = worker;
        let thread = supervise::spawn(
            "observe-influxdb-push".into(),
            "influxdb push".into(),
            move |restarts| {
                if restarts > 0 && !worker.recover(&rx, restarts) {
                    return;
                }
                worker.run(&rx);
            },
        )?;
        Ok(Self {
            commands,
            thread: Some(thread),
            stats,
        })
    }

    /// Ends the current interval now: its aggregates are encoded and
    /// buffered before this returns (the thread may first finish a write in
    /// progress), and sent at once unless a retry is pending.
    pub fn collect_now(&self) {
        let (ack, done) = mpsc::channel();
        if self.commands.send(Command::Collect(ack)).is_ok() {
            let _ = done.recv();
        }
    }

    /// What the push has done so far.
    #[must_use]
    pub fn stats(&self) -> InfluxStats {
        self.stats.snapshot()
    }

    /// Collects the last interval, delivers everything buffered within
    /// `timeout` (retrying failures meanwhile), counts the rest as
    /// dropped, and stops.
    pub fn stop(mut self, timeout: Duration) -> InfluxStats {
        self.shut_down(timeout);
        self.stats.snapshot()
    }

    fn shut_down(&mut self, timeout: Duration) {
        let deadline = clock::deadline_after(timeout);
        let _ = self.commands.send(Command::Stop(deadline));
        if let Some(t) = self.thread.take() {
            // The thread gives up on its buffer at the deadline; an
            // exchange still in progress then ends by its own deadline,
            // which the process's exit need not wait for. Its points are
            // counted as dropped now, so the counts returned are whole.
            if !t.join_until(Some(deadline)) {
                self.stats.abandon();
            }
        }
    }
}

impl Background for InfluxPush {
    fn stop(mut self: Box<Self>, timeout: Duration) {
        self.shut_down(timeout);
    }
}

impl Drop for InfluxPush {
    fn drop(&mut self) {
        // Not stopped explicitly: ask the thread to exit without waiting
        // for it, so a drop never blocks.
        if self.thread.take().is_some() {
            let _ = self.commands.send(Command::Stop(Instant::now()));
        }
    }
}

struct Worker {
    config: InfluxConfig,
    url: BaseUrl,
    path: String,
    auth: Option<String>,
    aggregator: Arc<Aggregator>,
    service: String,
    stats: Arc<Stats>,
    buffer: VecDeque<String>,
    backoff: Duration,
    retry_at: Option<Instant>,
    failing: bool,
    rejected_logged: bool,
    invalid_logged: bool,
}

/// How a write went.
enum Sent {
    Ok,
    Retry(String),
    Rejected(String),
}

impl Worker {
    /// After a panic: what the buffer held may be what caused it, so it is
    /// dropped and counted; then the restart delay, unless a stop arrives.
    /// `false` if the push should end.
    fn recover(&mut self, rx: &mpsc::Receiver<Command>, restarts: u32) -> bool {
        let held = self.buffer.len() as u64;
        self.buffer.clear();
        self.stats
            .settle(0, |s| s.count_dropped(&s.rejected, "rejected", held));
        self.retry_at = None;
        match rx.recv_timeout(supervise::restart_delay(restarts)) {
            Ok(Command::Stop(deadline)) => {
                self.shutdown(deadline);
                false
            }
            Ok(Command::Collect(ack)) => {
                let _ = ack.send(());
                true
            }
            Err(RecvTimeoutError::Timeout) => true,
            Err(RecvTimeoutError::Disconnected) => false,
        }
    }

    fn run(&mut self, rx: &mpsc::Receiver<Command>) {
        if self.config.create_database {
            self.create_database();
        }
        let interval = self.config.interval;
        let mut next_tick = clock::deadline_after(interval);
        loop {
            let now = Instant::now();
            let mut wake = next_tick;
            if !self.buffer.is_empty() {
                wake = wake.min(self.retry_at.unwrap_or(now));
            }
            match rx.recv_timeout(wake.saturating_duration_since(now)) {
                Ok(Command::Collect(ack)) => {
                    self.collect();
                    let _ = ack.send(());
                }
                Ok(Command::Stop(deadline)) => return self.shutdown(deadline),
                Err(RecvTimeoutError::Disconnected) => return self.shutdown(Instant::now()),
                Err(RecvTimeoutError::Timeout) => {}
            }
            let now = Instant::now();
            if now >= next_tick {
                self.collect();
                next_tick = next_tick.checked_add(interval).unwrap_or(next_tick);
                if next_tick <= now {
                    // Fell behind (a slow write): skip, do not burst.
                    next_tick = clock::deadline_after(interval);
                }
            }
            if self.retry_at.is_none_or(|r| now >= r) {
                self.send_all(None);
            }
        }
    }

    fn collect(&mut self) {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let collected = self.aggregator.collect(&self.service, now_ms);
        if collected.invalid > 0 && !self.invalid_logged {
            self.invalid_logged = true;
            tracing::warn!(
                target: "observe::influxdb",
                points = collected.invalid,
                "influxdb push: points not encodable as line protocol (NaN or infinite values, or tags InfluxDB cannot store) are dropped"
            );
        }
        let n = collected.lines.len() as u64;
        let mut overflow = 0;
        for line in collected.lines {
            if self.buffer.len() >= self.config.buffer_capacity {
                self.buffer.pop_front();
                overflow += 1;
            }
            self.buffer.push_back(line);
        }
        self.stats.settle(self.buffer.len(), |s| {
            s.count_dropped(&s.invalid, "invalid", collected.invalid);
            s.queued.fetch_add(n, Ordering::Relaxed);
            s.count_dropped(&s.buffer_full, "buffer_full", overflow);
        });
    }

    /// Notes what the thread holds after a change that counts nothing.
    fn note_buffered(&self) {
        self.stats.settle(self.buffer.len(), |_| {});
    }

    /// Writes batches until the buffer is empty, a write fails (then a
    /// retry is scheduled) or `deadline` passes.
    fn send_all(&mut self, deadline: Option<Instant>) {
        while !self.buffer.is_empty() {
            let timeout = match deadline {
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return;
                    }
                    left.min(self.config.timeout)
                }
                None => self.config.timeout,
            };
            let n = self.buffer.len().min(self.config.batch_size);
            let mut body = String::new();
            for line in self.buffer.iter().take(n) {
                body.push_str(line);
                body.push('\n');
            }
            match self.write(&body, timeout) {
                Sent::Ok => {
                    self.buffer.drain(..n);
                    self.stats.settle(self.buffer.len(), |s| {
                        s.written.fetch_add(n as u64, Ordering::Relaxed);
                        describe();
                        metrics::counter!(names::INFLUXDB_POINTS_WRITTEN_TOTAL).increment(n as u64);
                    });
                    self.backoff = self.config.retry_initial;
                    self.retry_at = None;
                    self.rejected_logged = false;
                    if self.failing {
                        self.failing = false;
                        tracing::info!(
                            target: "observe::influxdb",
                            url = ?self.url,
                            "influxdb push: writes succeed again"
                        );
                    }
                }
                Sent::Retry(why) => {
                    self.stats.failed_requests.fetch_add(1, Ordering::Relaxed);
                    if !self.failing {
                        self.failing = true;
                        tracing::warn!(
                            target: "observe::influxdb",
                            url = ?self.url,
                            error = %why,
                            buffered = self.buffer.len(),
                            "influxdb push: write failed; retrying with backoff, buffering meanwhile"
                        );
                    }
                    self.retry_at = Some(clock::deadline_after(self.backoff));
                    self.backoff = (self.backoff * 2).min(self.config.retry_max);
                    self.note_buffered();
                    return;
                }
                Sent::Rejected(why) => {
                    self.buffer.drain(..n);
                    self.stats.settle(self.buffer.len(), |s| {
                        s.count_dropped(&s.rejected, "rejected", n as u64);
                    });
                    if !self.rejected_logged {
                        self.rejected_logged = true;
                        tracing::warn!(
                            target: "observe::influxdb",
                            url = ?self.url,
                            error = %why,
                            points = n,
                            "influxdb push: the server rejected a batch; it is dropped"
                        );
                    }
                }
            }
        }
        self.note_buffered();
    }

    fn write(&self, body: &str, timeout: Duration) -> Sent {
        match http::post(
            &self.url,
            &self.path,
            self.auth.as_deref(),
            body.as_bytes(),
            timeout,
        ) {
            Ok(r) if (200..300).contains(&r.status) => Sent::Ok,
            Ok(r) if r.status == 429 || r.status >= 500 => {
                Sent::Retry(format!("HTTP {}: {}", r.status, r.body))
            }
            Ok(r) => Sent::Rejected(format!("HTTP {}: {}", r.status, r.body)),
            Err(e) => Sent::Retry(e.to_string()),
        }
    }

    fn create_database(&self) {
        let Api::V1 { database } = &self.config.api else {
            return;
        };
        let quoted = database.replace('\\', "\\\\").replace('"', "\\\"");
        let path = format!(
            "/query?q={}",
            http::encode_query(&format!("CREATE DATABASE \"{quoted}\""))
        );
        match http::post(&self.url, &path, None, b"", self.config.timeout) {
            Ok(r) if (200..300).contains(&r.status) => {}
            Ok(r) => tracing::warn!(
                target: "observe::influxdb",
                status = r.status,
                body = %r.body,
                "influxdb push: CREATE DATABASE failed"
            ),
            Err(e) => tracing::warn!(
                target: "observe::influxdb",
                error = %e,
                "influxdb push: CREATE DATABASE failed"
            ),
        }
    }

    fn shutdown(&mut self, deadline: Instant) {
        self.collect();
        while !self.buffer.is_empty() {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            if let Some(r) = self.retry_at {
                if r >= deadline {
                    break;
                }
                if r > now {
                    std::thread::sleep(r - now);
                }
            }
            self.retry_at = None;
            self.send_all(Some(deadline));
        }
        let left = self.buffer.len() as u64;
        self.buffer.clear();
        self.stats
            .settle(0, |s| s.count_dropped(&s.shutdown, "shutdown", left));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A write that ends just as a stop gives up on the thread: the stop
    /// waits for the thread's count in progress, so the point is counted
    /// written, not also dropped at shutdown.
    #[test]
    fn a_stop_waits_for_the_thread_s_count_in_progress() {
        let stats = Stats::default();
        stats.settle(1, |s| {
            s.queued.fetch_add(1, Ordering::Relaxed);
        });
        let (inside, entered) = mpsc::channel();
        std::thread::scope(|scope| {
            scope.spawn(|| {
                stats.settle(0, |s| {
                    let _ = inside.send(());
                    std::thread::sleep(Duration::from_millis(50));
                    s.written.fetch_add(1, Ordering::Relaxed);
                });
            });
            entered.recv().expect("the thread counts");
            stats.abandon();
        });
        let s = stats.snapshot();
        assert_eq!(
            (s.points_written, s.dropped_shutdown, s.buffered),
            (1, 0, 0),
            "{s:?}"
        );
    }

    /// Once a stop has counted what the thread held, the thread's counts
    /// (a write that completed after all) are not added again.
    #[test]
    fn the_thread_counts_nothing_after_a_stop_counted_what_it_held() {
        let stats = Stats::default();
        stats.settle(2, |s| {
            s.queued.fetch_add(2, Ordering::Relaxed);
        });
        stats.abandon();
        stats.settle(0, |s| {
            s.written.fetch_add(2, Ordering::Relaxed);
        });
        let s = stats.snapshot();
        assert_eq!(
            (
                s.points_queued,
                s.points_written,
                s.dropped_shutdown,
                s.buffered
            ),
            (2, 0, 2, 0),
            "{s:?}"
        );
    }
}
