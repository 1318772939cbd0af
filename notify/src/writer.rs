//! The `tars-notify-writer` thread: takes notices off the [`crate::queue`], applies the rate
//! limit ([`crate::limit`]), and writes them in batches on the store's workers.
//!
//! A batch is written when it has `batch_rows` rows or its oldest row has waited `flush`;
//! one batch is one transaction of multi-row INSERTs ([`crate::db::insert`]). While the
//! database is away the rows wait (their bytes still charged to the queue's budget, so the
//! shards drop new notices instead of the process growing) and are retried with a backoff of
//! 200 ms doubling to 5 s; rows older than `give_up` are then dropped and counted as lost. A
//! batch the database itself refuses three times is dropped and counted.
//!
//! Once a second the writer also writes the rate limiter's due summary rows, and every ten
//! seconds prunes its buckets.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use tars_sql::Store;

use crate::limit::{LimitConfig, Limiter};
use crate::notice::Notice;
use crate::queue::{Msg, Stats};

/// The writer's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WriterConfig {
    /// Rows per batch at most.
    pub batch_rows: usize,
    /// How long a row may wait for its batch to fill.
    pub flush: Duration,
    /// Rows waiting longer than this for a database that is away are dropped.
    pub give_up: Duration,
    /// The rate limit.
    pub limit: LimitConfig,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            batch_rows: 500,
            flush: Duration::from_millis(200),
            give_up: Duration::from_secs(600),
            limit: LimitConfig::default(),
        }
    }
}

const TICK: Duration = Duration::from_secs(1);
const PRUNE_EVERY: Duration = Duration::from_secs(10);
const BACKOFF_MIN: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
const REFUSALS: u32 = 3;
/// How long the final flush at stop may keep trying.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// A row waiting to be written and the queue bytes it holds.
#[derive(Debug)]
struct Pending {
    notice: Notice,
    cost: usize,
    summary: bool,
}

/// The writer's state; lives on the `tars-notify-writer` thread only.
struct Writer {
    store: Store,
    rx: Receiver<Msg>,
    stats: Arc<Stats>,
    cfg: WriterConfig,
    limiter: Limiter,
    pending: VecDeque<Pending>,
    retry_at: Option<Instant>,
    backoff: Duration,
    refusals: u32,
}

/// The running writer; dropping it asks the thread to flush and stop, and joins it.
#[derive(Debug)]
pub(crate) struct WriterHandle {
    stop: Option<crate::queue::Queue>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for WriterHandle {
    fn drop(&mut self) {
        if let Some(q) = self.stop.take() {
            q.stop();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts the writer on `rx`; `queue` is kept to send it the stop message.
pub(crate) fn spawn(
    store: Store,
    queue: crate::queue::Queue,
    rx: Receiver<Msg>,
    cfg: WriterConfig,
) -> std::io::Result<WriterHandle> {
    let w = Writer {
        store,
        rx,
        stats: queue.stats().clone(),
        cfg,
        limiter: Limiter::new(cfg.limit),
        pending: VecDeque::new(),
        retry_at: None,
        backoff: BACKOFF_MIN,
        refusals: 0,
    };
    let thread = std::thread::Builder::new().name("tars-notify-writer".into()).spawn(move || w.run())?;
    Ok(WriterHandle { stop: Some(queue), thread: Some(thread) })
}

impl Writer {
    fn run(mut self) {
        let mut next_tick = Instant::now() + TICK;
        let mut next_prune = Instant::now() + PRUNE_EVERY;
        loop {
            let now = Instant::now();
            let mut wake = next_tick;
            if let Some(first) = self.pending.front() {
                wake = wake.min(self.retry_at.unwrap_or(first.notice.received + self.cfg.flush));
            }
            let stop = match self.rx.recv_timeout(wake.saturating_duration_since(now)) {
                Ok(Msg::Notice(n, cost)) => {
                    self.take(n, cost);
                    self.drain()
                }
                Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => true,
                Err(RecvTimeoutError::Timeout) => false,
            };
            if stop {
                self.drain();
                self.finish();
                return;
            }
            let now = Instant::now();
            if now >= next_tick {
                next_tick = now + TICK;
                self.summaries(now, false);
                if now >= next_prune {
                    next_prune = now + PRUNE_EVERY;
                    self.limiter.prune(now);
                }
                self.stats.tracked_servers.store(self.limiter.tracked(), Ordering::Relaxed);
            }
            self.flush_due(now);
        }
    }

    /// Takes what is already queued, without waiting, up to a batch; true on a stop message.
    fn drain(&mut self) -> bool {
        while self.pending.len() < self.cfg.batch_rows {
            match self.rx.try_recv() {
                Ok(Msg::Notice(n, cost)) => self.take(n, cost),
                Ok(Msg::Stop) => return true,
                Err(crossbeam_channel::TryRecvError::Empty) => return false,
                Err(crossbeam_channel::TryRecvError::Disconnected) => return true,
            }
        }
        false
    }

    fn take(&mut self, n: Notice, cost: usize) {
        match self.limiter.admit(n) {
            Some(notice) => self.pending.push_back(Pending { notice, cost, summary: false }),
            None => {
                self.release(cost);
                self.stats.rate_limited.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn release(&self, cost: usize) {
        self.stats.queued_bytes.fetch_sub(cost, Ordering::Relaxed);
    }

    fn summaries(&mut self, now: Instant, all: bool) {
        for notice in self.limiter.due(now, all) {
            tracing::warn!(server_id = %notice.server_id, message = %notice.result, "notify: rate limit summary");
            self.pending.push_back(Pending { notice, cost: 0, summary: true });
        }
    }

    fn flush_due(&mut self, now: Instant) {
        while let Some(first) = self.pending.front() {
            let full = self.pending.len() >= self.cfg.batch_rows;
            if !full && now < first.notice.received + self.cfg.flush {
                return;
            }
            if self.retry_at.is_some_and(|t| now < t) {
                return;
            }
            if !self.write_batch(now) {
                return;
            }
        }
    }

    /// Writes the oldest batch; false when it failed (and a retry is scheduled).
    fn write_batch(&mut self, now: Instant) -> bool {
        let n = self.pending.len().min(self.cfg.batch_rows);
        let rows: Vec<Notice> = self.pending.iter().take(n).map(|p| p.notice.clone()).collect();
        let summaries = self.pending.iter().take(n).filter(|p| p.summary).count();
        let at = Instant::now();
        match self.store.run_blocking(move |s| crate::db::insert(s, &rows, at)) {
            Ok(_) => {
                let cost: usize = self.pending.drain(..n).map(|p| p.cost).sum();
                self.release(cost);
                self.stats.written.fetch_add(n as u64, Ordering::Relaxed);
                self.stats.summaries.fetch_add(summaries as u64, Ordering::Relaxed);
                self.retry_at = None;
                self.backoff = BACKOFF_MIN;
                self.refusals = 0;
                true
            }
            Err(e) => {
                self.stats.write_errors.fetch_add(1, Ordering::Relaxed);
                if e.is_unavailable() {
                    tars_core_net::limited!(warn, error = %e, rows = n, "notify: database unavailable; will retry");
                    self.give_up_older(now);
                } else {
                    self.refusals += 1;
                    tars_core_net::limited!(error, error = %e, rows = n, "notify: the database refused a batch");
                    if self.refusals >= REFUSALS {
                        self.lose(n);
                        self.refusals = 0;
                    }
                }
                self.retry_at = Some(Instant::now() + self.backoff);
                self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
                false
            }
        }
    }

    fn lose(&mut self, n: usize) {
        let n = n.min(self.pending.len());
        let cost: usize = self.pending.drain(..n).map(|p| p.cost).sum();
        self.release(cost);
        self.stats.lost.fetch_add(n as u64, Ordering::Relaxed);
    }

    fn give_up_older(&mut self, now: Instant) {
        let old = self
            .pending
            .iter()
            .take_while(|p| now.saturating_duration_since(p.notice.received) > self.cfg.give_up)
            .count();
        if old > 0 {
            tracing::warn!(rows = old, "notify: dropping rows that waited too long for the database");
            self.lose(old);
        }
    }

    /// At stop: summaries still owed are written with the rest, for a short grace period.
    fn finish(&mut self) {
        self.summaries(Instant::now(), true);
        let deadline = Instant::now() + STOP_GRACE;
        while !self.pending.is_empty() && Instant::now() < deadline {
            if !self.write_batch(Instant::now()) {
                std::thread::sleep(BACKOFF_MIN);
            }
        }
        let left = self.pending.len();
        if left > 0 {
            tracing::warn!(rows = left, "notify: stopped with rows not written");
            self.lose(left);
        }
    }
}
