//! Retention that deletes: keep the newest `keep` rows of each `server_id` (upstream's
//! `retainHistory`, whose own `deleteNotifys` deletes nothing) and/or delete rows older than
//! `max_age_days`, on the `tars-notify-retention` thread.
//!
//! It runs daily at the time of upstream's `/tars<cron>` (the form `sec min hour * * *`;
//! default 03:00:00 local time), or every `intervalSecs` when that is set, and on demand
//! through the `tars.notifyretention` admin command. Each step selects at most `batch` row
//! ids and deletes them by id (one store job per step, so the writer's inserts interleave),
//! every value bound.
//!
//! Several instances may run it at once: each step deletes only rows that are beyond the
//! newest `keep` of their server, or older than the limit, when it looks, and new rows only
//! push older ones further down, so a second instance deletes nothing the first would have
//! kept (it finds the rows gone and deletes 0). Upstream runs it only on the instance that
//! is first in the registry's list; `/tars/retention<enabled>=N` turns it off on others.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::{Local, NaiveTime, TimeZone};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use tars_sql::{Store, StoreError};

use crate::db::{self, Step};
use crate::queue::Stats;

/// When retention runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// Every day at this local time.
    Daily(NaiveTime),
    /// Every so often, from start.
    Every(Duration),
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule::Daily(NaiveTime::from_hms_opt(3, 0, 0).unwrap_or(NaiveTime::MIN))
    }
}

/// Upstream's `/tars<cron>` as a daily time: `sec min hour * * *` with plain numbers (its
/// default, `0 0 3 * * *`, is 03:00:00). `None` for any other form.
pub fn parse_cron(cron: &str) -> Option<NaiveTime> {
    let f: Vec<&str> = cron.split_whitespace().collect();
    let [s, m, h, rest @ ..] = f.as_slice() else { return None };
    if rest.len() != 3 || rest.iter().any(|x| *x != "*" && *x != "?") {
        return None;
    }
    NaiveTime::from_hms_opt(h.parse().ok()?, m.parse().ok()?, s.parse().ok()?)
}

/// Retention's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionConfig {
    /// Whether this instance runs it on its schedule (the admin command always can).
    pub enabled: bool,
    /// Rows kept per `server_id`; 0 keeps every row.
    pub keep: u64,
    /// Rows older than this many days are deleted; 0 keeps them.
    pub max_age_days: u64,
    /// Rows per step.
    pub batch: usize,
    /// When.
    pub schedule: Schedule,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig { enabled: true, keep: 100, max_age_days: 0, batch: 1000, schedule: Schedule::default() }
    }
}

/// What one run deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Report {
    /// Servers that had more than `keep` rows.
    pub servers: usize,
    /// Rows deleted beyond the newest `keep`.
    pub by_count: u64,
    /// Rows deleted for their age.
    pub by_age: u64,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "retention: deleted {} rows beyond the newest of {} servers, {} rows for their age",
            self.by_count, self.servers, self.by_age
        )
    }
}

/// One whole run on `store`, in bounded steps; stops early (with what it did) when `stop`
/// is set.
pub fn run_once(store: &Store, cfg: &RetentionConfig, stop: &AtomicBool) -> Result<Report, StoreError> {
    let mut report = Report::default();
    let batch = cfg.batch.max(1);
    if cfg.keep > 0 {
        let keep = cfg.keep;
        let servers = store.run_blocking(move |s| db::servers_over(s, keep))?;
        report.servers = servers.len();
        for server in servers {
            loop {
                if stop.load(Ordering::Relaxed) {
                    return Ok(report);
                }
                let id = server.clone();
                let step: Step = store.run_blocking(move |s| db::delete_beyond(s, &id, keep, batch))?;
                report.by_count += step.deleted;
                if step.found < batch {
                    break;
                }
            }
        }
    }
    if cfg.max_age_days > 0 {
        let days = cfg.max_age_days;
        loop {
            if stop.load(Ordering::Relaxed) {
                return Ok(report);
            }
            let step = store.run_blocking(move |s| db::delete_older(s, days, batch))?;
            report.by_age += step.deleted;
            if step.found < batch {
                break;
            }
        }
    }
    Ok(report)
}

/// What the retention thread is asked.
#[derive(Debug)]
pub(crate) enum Cmd {
    /// Run now and answer with the report's text.
    Run(async_channel::Sender<String>),
    /// Stop.
    Stop,
}

/// The running retention thread; dropping it stops the thread (between steps) and joins it.
#[derive(Debug)]
pub(crate) struct RetentionHandle {
    tx: Sender<Cmd>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl RetentionHandle {
    /// A sender for on-demand runs.
    pub(crate) fn sender(&self) -> Sender<Cmd> {
        self.tx.clone()
    }
}

impl Drop for RetentionHandle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.tx.send(Cmd::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The next scheduled run after `now`.
fn next_run(schedule: Schedule, now: Instant) -> Instant {
    match schedule {
        Schedule::Every(d) => now + d,
        Schedule::Daily(at) => {
            let local = Local::now();
            let mut day = local.date_naive();
            for _ in 0..3 {
                let naive = day.and_time(at);
                // A time skipped by a DST change is taken an hour later.
                let when = Local
                    .from_local_datetime(&naive)
                    .earliest()
                    .or_else(|| Local.from_local_datetime(&(naive + chrono::Duration::hours(1))).earliest());
                if let Some(when) = when.filter(|w| *w > local) {
                    let wait = (when - local).to_std().unwrap_or(Duration::ZERO);
                    return now + wait;
                }
                day = day.succ_opt().unwrap_or(day);
            }
            now + Duration::from_secs(86_400)
        }
    }
}

fn run_logged(store: &Store, cfg: &RetentionConfig, stop: &AtomicBool, stats: &Stats) -> String {
    let t0 = Instant::now();
    match run_once(store, cfg, stop) {
        Ok(r) => {
            stats.retention_deleted.fetch_add(r.by_count + r.by_age, Ordering::Relaxed);
            stats.retention_runs.fetch_add(1, Ordering::Relaxed);
            tracing::info!(
                by_count = r.by_count,
                by_age = r.by_age,
                servers = r.servers,
                ms = t0.elapsed().as_millis() as u64,
                "notify: retention done"
            );
            r.to_string()
        }
        Err(e) => {
            stats.retention_errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(error = %e, "notify: retention failed; the next run continues");
            format!("retention failed: {e}")
        }
    }
}

/// Starts the retention thread.
pub(crate) fn spawn(store: Store, cfg: RetentionConfig, stats: Arc<Stats>) -> std::io::Result<RetentionHandle> {
    let (tx, rx): (Sender<Cmd>, Receiver<Cmd>) = crossbeam_channel::unbounded();
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let thread = std::thread::Builder::new().name("tars-notify-retention".into()).spawn(move || {
        let mut next = next_run(cfg.schedule, Instant::now());
        loop {
            let wait =
                if cfg.enabled { next.saturating_duration_since(Instant::now()) } else { Duration::from_secs(3600) };
            match rx.recv_timeout(wait) {
                Ok(Cmd::Run(reply)) => {
                    let text = run_logged(&store, &cfg, &flag, &stats);
                    let _ = reply.try_send(text);
                }
                Ok(Cmd::Stop) | Err(RecvTimeoutError::Disconnected) => return,
                Err(RecvTimeoutError::Timeout) => {
                    if cfg.enabled && Instant::now() >= next {
                        run_logged(&store, &cfg, &flag, &stats);
                        next = next_run(cfg.schedule, Instant::now());
                    }
                }
            }
            if flag.load(Ordering::Relaxed) {
                return;
            }
        }
    })?;
    Ok(RetentionHandle { tx, stop, thread: Some(thread) })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn upstream_cron_as_a_daily_time() {
        assert_eq!(parse_cron("0 0 3 * * *"), NaiveTime::from_hms_opt(3, 0, 0));
        assert_eq!(parse_cron(" 30 15 23 * * ? "), NaiveTime::from_hms_opt(23, 15, 30));
        assert_eq!(parse_cron("0 0 */6 * * *"), None);
        assert_eq!(parse_cron("0 0 3 1 * *"), None);
        assert_eq!(parse_cron("0 0 25 * * *"), None);
        assert_eq!(parse_cron("0 0 3"), None);
        assert_eq!(parse_cron(""), None);
    }

    #[test]
    fn the_next_daily_run_is_within_a_day() {
        let now = Instant::now();
        let at = next_run(Schedule::default(), now);
        assert!(at > now && at <= now + Duration::from_secs(86_400 + 3600));
        assert_eq!(next_run(Schedule::Every(Duration::from_secs(5)), now), now + Duration::from_secs(5));
    }
}
