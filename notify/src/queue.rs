//! The hand-off from the IO shards to the writer: a channel bounded in bytes, and the
//! service's counters.
//!
//! [`Queue`] is cloned into every shard's servant. `push` charges the notice's bytes to one
//! shared atomic budget and sends it down an unbounded crossbeam channel; when the budget is
//! spent the notice is dropped and counted. It never blocks and takes no lock; the writer
//! gives the bytes back once the row is written (or given up), so notices waiting for a
//! database that is down count against the same budget.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};

use crate::notice::Notice;

/// What the service counts; shared by the shards, the writer and the retention thread, as
/// relaxed atomics.
#[derive(Debug, Default)]
pub struct Stats {
    /// `reportNotifyInfo` calls.
    pub received: AtomicU64,
    /// Dropped by `/tars/filter`.
    pub filtered: AtomicU64,
    /// Dropped because the queue's budget was spent.
    pub dropped: AtomicU64,
    /// Suppressed by the rate limit.
    pub rate_limited: AtomicU64,
    /// Rows inserted (summaries included).
    pub written: AtomicU64,
    /// Of those, rate-limit summary rows.
    pub summaries: AtomicU64,
    /// Rows given up after the database refused or stayed away too long.
    pub lost: AtomicU64,
    /// Failed batch writes (each retried or given up).
    pub write_errors: AtomicU64,
    /// Rows deleted by retention.
    pub retention_deleted: AtomicU64,
    /// Retention runs finished.
    pub retention_runs: AtomicU64,
    /// Retention runs that failed part-way.
    pub retention_errors: AtomicU64,
    /// Bytes queued or waiting to be written.
    pub queued_bytes: AtomicUsize,
    /// Servers the rate limiter tracks (set by the writer).
    pub tracked_servers: AtomicUsize,
}

impl Stats {
    /// The counters as the `tars.notify` admin command shows them, one `name: value` a line.
    pub fn describe(&self, budget: usize) -> String {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        format!(
            "received: {}\nfiltered: {}\nrate-limited: {}\ndropped: {}\nwritten: {}\nsummaries: {}\nlost: {}\n\
             write errors: {}\nretention deletes: {}\nretention runs: {}\nretention errors: {}\n\
             queued bytes: {} of {}\nrate-limited servers tracked: {}\n",
            g(&self.received),
            g(&self.filtered),
            g(&self.rate_limited),
            g(&self.dropped),
            g(&self.written),
            g(&self.summaries),
            g(&self.lost),
            g(&self.write_errors),
            g(&self.retention_deleted),
            g(&self.retention_runs),
            g(&self.retention_errors),
            self.queued_bytes.load(Ordering::Relaxed),
            budget,
            self.tracked_servers.load(Ordering::Relaxed),
        )
    }
}

/// What goes down the channel.
// `Stop` is sent once; boxing every notice to shrink it would cost an allocation per call.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum Msg {
    /// A notice, with the bytes it was charged.
    Notice(Notice, usize),
    /// Write what is queued and stop.
    Stop,
}

/// The shards' side of the hand-off. Cheap to clone; one clone per shard.
#[derive(Debug, Clone)]
pub struct Queue {
    tx: Sender<Msg>,
    stats: Arc<Stats>,
    budget: usize,
}

impl Queue {
    /// A queue of at most `budget` bytes, and the writer's end.
    pub(crate) fn new(budget: usize, stats: Arc<Stats>) -> (Queue, Receiver<Msg>) {
        let (tx, rx) = crossbeam_channel::unbounded();
        (Queue { tx, stats, budget }, rx)
    }

    /// Queues `n`; false (counted in `dropped`) when the budget is spent or the writer gone.
    pub fn push(&self, n: Notice) -> bool {
        let cost = n.cost();
        let before = self.stats.queued_bytes.fetch_add(cost, Ordering::Relaxed);
        if before.saturating_add(cost) > self.budget || self.tx.send(Msg::Notice(n, cost)).is_err() {
            self.stats.queued_bytes.fetch_sub(cost, Ordering::Relaxed);
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// Asks the writer to write what is queued and stop.
    pub(crate) fn stop(&self) {
        let _ = self.tx.send(Msg::Stop);
    }

    /// The budget in bytes.
    pub fn budget(&self) -> usize {
        self.budget
    }

    /// The counters.
    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::time::Instant;
    use tars_protocol::tars::ReportInfo;

    #[test]
    fn drops_and_counts_past_the_budget_and_gives_bytes_back() {
        let stats = Arc::new(Stats::default());
        let info = ReportInfo { s_message: "x".repeat(300).into(), ..Default::default() };
        let n = Notice::from_report(&info, None, Instant::now());
        let cost = n.cost();
        let (q, rx) = Queue::new(cost * 2 + 1, stats.clone());
        assert!(q.push(n.clone()));
        assert!(q.push(n.clone()));
        assert!(!q.push(n.clone()));
        assert_eq!(stats.dropped.load(Ordering::Relaxed), 1);
        assert_eq!(stats.queued_bytes.load(Ordering::Relaxed), cost * 2);
        drop(rx);
        let (q, rx) = Queue::new(usize::MAX / 2, stats.clone());
        drop(rx);
        assert!(!q.push(n), "the writer is gone");
        assert_eq!(stats.dropped.load(Ordering::Relaxed), 2);
        assert_eq!(stats.queued_bytes.load(Ordering::Relaxed), cost * 2);
    }
}
