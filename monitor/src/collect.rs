//! Per-shard aggregation and the collector that merges the shards' windows.
//!
//! Each IO shard aggregates what its connections receive into its own map for the current
//! 5-minute window ([`ShardAgg`]: no lock, no cross-core traffic per entry). When a window
//! ends (seen by the next entry, or by the shard's timer when it is idle), the shard hands
//! the whole map to the collector thread through a channel. The collector merges the shards'
//! maps of one window, turns the result into rows with the window's label, deals the rows to
//! the databases ([`crate::targets::Distributor`]) and gives each database's writer one batch.
//! The window is the one the data was received in, whenever the flush happens (upstream
//! labelled by flush time).

use std::cell::RefMut;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::hash::{Hash, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use hashbrown::Equivalent;
use tars_sql::Value;

use crate::batch::Batch;
use crate::clock::{Clock, Label, Window};
use crate::targets::Distributor;
use crate::writer::Writer;

/// A window's entries. hashbrown for `get_key_value_mut` (a borrowed lookup that still
/// gives [`Aggregate::merge`] the key); std's SipHash because the keys come from the network.
pub type EntryMap<K, V> = hashbrown::HashMap<K, V, RandomState>;

/// What a service aggregates, and how an aggregated entry becomes rows.
pub trait Aggregate: Send + Sync + 'static {
    /// The key entries merge under.
    type Key: Hash + Eq + Send + 'static;
    /// The merged value.
    type Value: Send + 'static;
    /// Merges `other` into `into` (a service logs and counts what it cannot merge) and says
    /// by how many heap bytes `into` grew (see [`Aggregate::heap_bytes`]).
    fn merge(&self, key: &Self::Key, into: &mut Self::Value, other: Self::Value) -> usize;
    /// The heap bytes a key and its value own outside the map's slot: with the slot's size,
    /// what the entry is charged against the memory budget ([`entry_cost`]).
    fn heap_bytes(&self, key: &Self::Key, value: &Self::Value) -> usize;
    /// Appends the rows for one entry, in the hourly table's column order.
    fn rows(&self, key: &Self::Key, value: &Self::Value, label: &Label, out: &mut Vec<Vec<Value>>);
    /// The service's own counters, for the status command and the metrics endpoint.
    fn counters(&self) -> Vec<Counter> {
        Vec::new()
    }
}

/// What one entry is charged against the budget: its heap bytes plus its slot in the map,
/// counted two and a half times over because a hash table grown by doubling at 7/8 load can
/// have up to 2.3 slots per entry (the allocation test in `tests/budget.rs` checks the
/// bound on what the aggregation really allocates).
pub fn entry_cost<A: Aggregate>(agg: &A, key: &A::Key, value: &A::Value) -> u64 {
    let slot = (size_of::<(A::Key, A::Value)>() + 1) * 5 / 2;
    (agg.heap_bytes(key, value) + slot) as u64
}

/// One counter a service adds to the status text and the metrics endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counter {
    /// The metric name without the service prefix (`rejected_values`).
    pub name: &'static str,
    /// One line of help.
    pub help: &'static str,
    /// Its value.
    pub value: u64,
}

/// What the collector's channel carries.
enum Msg<K, V> {
    Handoff(Handoff<K, V>),
    /// Flush everything and exit (after what was sent before it).
    Stop,
}

/// A shard's map of one window, handed to the collector.
struct Handoff<K, V> {
    shard: usize,
    window: Window,
    entries: EntryMap<K, V>,
    /// The shard's window now: it will hand over nothing for earlier windows (a shard that
    /// was idle across several windows hands over only the one it had).
    now: Window,
    /// The shard is stopping: this window will get nothing more from it.
    last: bool,
    /// What the entries were charged against the budget; released when the window is flushed.
    charged: u64,
}

/// Counters shared by the shards (entries) and the collector (windows, rows).
#[derive(Debug, Default)]
pub struct CollectStats {
    /// Entries merged into a shard map.
    pub entries: AtomicU64,
    /// Windows flushed.
    pub windows: AtomicU64,
    /// Rows handed to writers.
    pub rows: AtomicU64,
    /// Entries that arrived for a window already flushed (merged into a late batch).
    pub late_entries: AtomicU64,
    /// New keys dropped because the aggregation's memory budget was used up.
    pub dropped_entries: AtomicU64,
    /// Bytes the aggregation holds now ([`entry_cost`] of every entry in the shards' maps and
    /// in windows the collector has not flushed yet), against [`CollectStats::budget_bytes`].
    pub held_bytes: AtomicU64,
    /// The memory budget (`/tars/aggregate<maxMB>`), one for all shards of the service.
    pub budget_bytes: AtomicU64,
}

impl CollectStats {
    /// Charges `n` bytes if they fit in the budget.
    fn try_charge(&self, n: u64) -> bool {
        let limit = self.budget_bytes.load(Ordering::Relaxed);
        self.held_bytes
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |held| held.checked_add(n).filter(|t| *t <= limit))
            .is_ok()
    }

    /// Charges what an existing entry grew by: the merge already happened, so this may pass
    /// the budget by what one entry can grow (a service bounds that), and only stops new keys.
    fn charge(&self, n: u64) {
        self.held_bytes.fetch_add(n, Ordering::Relaxed);
    }

    fn release(&self, n: u64) {
        let _ = self.held_bytes.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |held| Some(held.saturating_sub(n)));
    }
}

/// One shard's aggregation. Lives on one IO shard (inside that shard's servant); the map
/// is never touched by another thread.
pub struct ShardAgg<A: Aggregate> {
    agg: Arc<A>,
    shard: usize,
    clock: Clock,
    window: Cell<Window>,
    map: RefCell<EntryMap<A::Key, A::Value>>,
    /// What the map's entries were charged against the budget.
    charged: Cell<u64>,
    tx: Sender<Msg<A::Key, A::Value>>,
    stats: Arc<CollectStats>,
}

impl<A: Aggregate> std::fmt::Debug for ShardAgg<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardAgg").field("shard", &self.shard).field("entries", &self.map.borrow().len()).finish()
    }
}

impl<A: Aggregate> ShardAgg<A> {
    /// Merges one entry into the current window (handing the previous window over first if
    /// the clock has moved past it). See [`ShardBatch::add`].
    pub fn add(&self, key: A::Key, value: A::Value) {
        self.batch().add(key, value);
    }

    /// The current window's map for the entries of one request: the window is checked once
    /// and the shared counters are updated once (when the batch is dropped), not per entry.
    /// Entries of a request that straddles a window's end all go to the window it started in.
    ///
    /// The batch borrows the shard's map: drop it before the next `await`.
    pub fn batch(&self) -> ShardBatch<'_, A> {
        self.roll();
        ShardBatch { shard: self, map: self.map.borrow_mut(), added: 0, dropped: 0, charged: 0 }
    }

    /// Hands the window over if it has ended. The shard's timer calls it, so an idle shard
    /// still reports.
    pub fn roll(&self) {
        let now = Window::containing(self.clock.now_unix());
        let current = self.window.get();
        if now != current {
            self.window.set(now);
            self.hand_over(current, now, false);
        }
    }

    /// Hands the current window's map over because the shard is stopping.
    pub fn stop(&self) {
        let w = self.window.get();
        self.hand_over(w, w, true);
    }

    /// When the current window ends (unix seconds).
    pub fn window_end(&self) -> i64 {
        self.window.get().end()
    }

    fn hand_over(&self, window: Window, now: Window, last: bool) {
        let entries = std::mem::take(&mut *self.map.borrow_mut());
        let charged = self.charged.replace(0);
        if let Err(e) = self.tx.send(Msg::Handoff(Handoff { shard: self.shard, window, entries, now, last, charged })) {
            // The collector is gone (the service is stopping): nothing will flush these.
            drop(e);
            self.stats.release(charged);
        }
    }
}

/// The entries of one request on their way into a shard's map ([`ShardAgg::batch`]). Lives on
/// the shard of its [`ShardAgg`], for the length of one synchronous call.
pub struct ShardBatch<'s, A: Aggregate> {
    shard: &'s ShardAgg<A>,
    map: RefMut<'s, EntryMap<A::Key, A::Value>>,
    added: u64,
    dropped: u64,
    charged: u64,
}

impl<A: Aggregate> std::fmt::Debug for ShardBatch<'_, A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardBatch").field("added", &self.added).field("dropped", &self.dropped).finish()
    }
}

impl<A: Aggregate> ShardBatch<'_, A> {
    /// Merges `value` under `key`.
    ///
    /// A new key whose cost does not fit in the service's memory budget is dropped and
    /// counted (existing keys still merge): the bound on what the aggregation may hold,
    /// whatever clients send.
    pub fn add(&mut self, key: A::Key, value: A::Value) {
        if let Some(value) = self.merge_existing(&key, value) {
            self.insert_new(key, value);
        }
    }

    /// [`ShardBatch::add`] looked up by a borrowed form of the key (an encoded key in a
    /// reused buffer, say), so an entry for a key the window already holds allocates
    /// nothing; `to_owned` makes the key only when it is new.
    pub fn add_ref<Q>(&mut self, key: &Q, value: A::Value, to_owned: impl FnOnce(&Q) -> A::Key)
    where
        Q: Hash + Equivalent<A::Key> + ?Sized,
    {
        if let Some(value) = self.merge_existing(key, value) {
            self.insert_new(to_owned(key), value);
        }
    }

    /// Merges into the key when the map holds it; gives the value back when the key is new.
    fn merge_existing<Q>(&mut self, key: &Q, value: A::Value) -> Option<A::Value>
    where
        Q: Hash + Equivalent<A::Key> + ?Sized,
    {
        let Some((k, into)) = self.map.get_key_value_mut(key) else { return Some(value) };
        let grew = self.shard.agg.merge(k, into, value) as u64;
        if grew != 0 {
            self.shard.stats.charge(grew);
            self.charged += grew;
        }
        self.added += 1;
        None
    }

    /// Inserts a new key if its cost fits in the budget, or counts a drop.
    fn insert_new(&mut self, key: A::Key, value: A::Value) {
        let cost = entry_cost(&*self.shard.agg, &key, &value);
        if !self.shard.stats.try_charge(cost) {
            self.dropped += 1;
            return;
        }
        self.charged += cost;
        self.added += 1;
        self.map.insert(key, value);
    }
}

impl<A: Aggregate> Drop for ShardBatch<'_, A> {
    fn drop(&mut self) {
        let stats = &self.shard.stats;
        self.shard.charged.set(self.shard.charged.get() + self.charged);
        if self.added != 0 {
            stats.entries.fetch_add(self.added, Ordering::Relaxed);
        }
        if self.dropped != 0 {
            let before = stats.dropped_entries.fetch_add(self.dropped, Ordering::Relaxed);
            let after = before + self.dropped;
            // Logged on the first drop and then each time the total crosses a power of two.
            if before == 0 || after.ilog2() != before.ilog2() {
                tracing::warn!(
                    shard = self.shard.shard,
                    budget_bytes = stats.budget_bytes.load(Ordering::Relaxed),
                    dropped = after,
                    "the aggregation's memory budget is used up; new keys are dropped until a window is flushed"
                );
            }
        }
    }
}

/// Makes [`ShardAgg`]s that hand over to one collector. Shared by the servant factories of
/// all shards.
pub struct ShardFactory<A: Aggregate> {
    agg: Arc<A>,
    clock: Clock,
    tx: Sender<Msg<A::Key, A::Value>>,
    stats: Arc<CollectStats>,
}

impl<A: Aggregate> Clone for ShardFactory<A> {
    fn clone(&self) -> Self {
        ShardFactory {
            agg: self.agg.clone(),
            clock: self.clock.clone(),
            tx: self.tx.clone(),
            stats: self.stats.clone(),
        }
    }
}

impl<A: Aggregate> std::fmt::Debug for ShardFactory<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardFactory").finish()
    }
}

impl<A: Aggregate> ShardFactory<A> {
    /// Shard `shard`'s aggregation; call on that shard.
    pub fn make(&self, shard: usize) -> ShardAgg<A> {
        ShardAgg {
            agg: self.agg.clone(),
            shard,
            window: Cell::new(Window::containing(self.clock.now_unix())),
            clock: self.clock.clone(),
            map: RefCell::new(EntryMap::default()),
            charged: Cell::new(0),
            tx: self.tx.clone(),
            stats: self.stats.clone(),
        }
    }
}

/// The collector: its thread and what shards need to join it.
pub struct Collector<A: Aggregate> {
    agg: Arc<A>,
    clock: Clock,
    shards: usize,
    tx: Option<Sender<Msg<A::Key, A::Value>>>,
    thread: Option<JoinHandle<()>>,
    stats: Arc<CollectStats>,
}

impl<A: Aggregate> std::fmt::Debug for Collector<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collector").field("shards", &self.shards).finish()
    }
}

/// How the collector names and deals batches.
#[derive(Debug, Clone)]
pub struct CollectConfig {
    /// The IP written as `source_id` and in `t_ecstatus.appname` (upstream: LocalIp).
    pub source_ip: String,
    /// Distinguishes this process's batches from an earlier run's (its start time, ms).
    pub generation: u64,
    /// How long after a window ends the collector waits for a silent shard.
    pub grace: Duration,
    /// `/tars<enWeighted>`.
    pub weighted: bool,
    /// The bytes the aggregation may hold, all shards and unflushed windows together.
    pub budget_bytes: u64,
}

impl<A: Aggregate> Collector<A> {
    /// Starts the collector thread for `shards` shards, writing through `writers` (one per
    /// database, in target order).
    pub fn start(
        agg: A,
        clock: Clock,
        shards: usize,
        writers: Arc<Vec<Writer>>,
        prefixes: Vec<String>,
        weights: Vec<u32>,
        config: CollectConfig,
    ) -> std::io::Result<Collector<A>> {
        let agg = Arc::new(agg);
        let stats = Arc::new(CollectStats::default());
        stats.budget_bytes.store(config.budget_bytes, Ordering::Relaxed);
        let (tx, rx) = crossbeam_channel::unbounded();
        let state = CollectorThread {
            agg: agg.clone(),
            clock: clock.clone(),
            pending: BTreeMap::new(),
            progress: vec![None; shards.max(1)],
            flushed_up_to: None,
            flushes: 0,
            writers,
            prefixes,
            dist: Distributor::new(&weights, config.weighted),
            config,
            stats: stats.clone(),
        };
        let thread = std::thread::Builder::new().name("tars-collector".into()).spawn(move || state.run(rx))?;
        Ok(Collector { agg, clock, shards: shards.max(1), tx: Some(tx), thread: Some(thread), stats })
    }

    /// What servant factories use to make each shard's aggregation (Send + Sync).
    pub fn factory(&self) -> Option<ShardFactory<A>> {
        Some(ShardFactory {
            agg: self.agg.clone(),
            clock: self.clock.clone(),
            tx: self.tx.clone()?,
            stats: self.stats.clone(),
        })
    }

    /// The counters.
    pub fn stats(&self) -> &Arc<CollectStats> {
        &self.stats
    }

    /// The service's aggregation (for its own counters).
    pub fn aggregate(&self) -> &Arc<A> {
        &self.agg
    }

    /// Flushes what the shards handed over and stops (after the shards stopped; a shard
    /// that hands over later is not waited for).
    pub fn stop(&mut self) {
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(Msg::Stop);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl<A: Aggregate> Drop for Collector<A> {
    fn drop(&mut self) {
        self.stop();
    }
}

struct PendingWindow<K, V> {
    entries: EntryMap<K, V>,
    /// What the shards charged for these entries (merging two shards' entries frees memory,
    /// but the charge stays until the flush, which keeps the accounting simple and safe).
    charged: u64,
}

/// The collector thread's state. Lives on `tars-collector` only.
struct CollectorThread<A: Aggregate> {
    agg: Arc<A>,
    clock: Clock,
    pending: BTreeMap<Window, PendingWindow<A::Key, A::Value>>,
    /// Per shard, the window it is in: every earlier window is complete from that shard.
    progress: Vec<Option<Window>>,
    flushed_up_to: Option<Window>,
    /// Numbers this process's flushes, so a straggler's late batch for a window gets an id
    /// of its own (the ledger would take it for a replay otherwise).
    flushes: u64,
    writers: Arc<Vec<Writer>>,
    prefixes: Vec<String>,
    dist: Distributor,
    config: CollectConfig,
    stats: Arc<CollectStats>,
}

impl<A: Aggregate> CollectorThread<A> {
    fn run(mut self, rx: Receiver<Msg<A::Key, A::Value>>) {
        loop {
            match rx.recv_timeout(Duration::from_secs(1)) {
                Ok(Msg::Handoff(h)) => self.take(h),
                Err(RecvTimeoutError::Timeout) => {}
                Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => {
                    let all: Vec<Window> = self.pending.keys().copied().collect();
                    for w in all {
                        self.flush(w);
                    }
                    return;
                }
            }
            self.flush_due();
        }
    }

    fn take(&mut self, h: Handoff<A::Key, A::Value>) {
        let late = self.flushed_up_to.is_some_and(|f| h.window <= f);
        if late {
            self.stats.late_entries.fetch_add(h.entries.len() as u64, Ordering::Relaxed);
        }
        if let Some(p) = self.progress.get_mut(h.shard) {
            if !h.last && p.is_none_or(|w| w < h.now) {
                *p = Some(h.now);
            }
        }
        let p =
            self.pending.entry(h.window).or_insert_with(|| PendingWindow { entries: EntryMap::default(), charged: 0 });
        p.charged += h.charged;
        if p.entries.is_empty() {
            p.entries = h.entries;
        } else {
            for (k, v) in h.entries {
                match p.entries.get_mut(&k) {
                    Some(into) => {
                        self.agg.merge(&k, into, v);
                    }
                    None => {
                        p.entries.insert(k, v);
                    }
                }
            }
        }
        if h.last || late {
            // A stopping shard's partial window, or a straggler: write it now, not later.
            self.flush(h.window);
        }
    }

    fn flush_due(&mut self) {
        let now = self.clock.now_unix();
        let grace = i64::try_from(self.config.grace.as_secs()).unwrap_or(i64::MAX);
        let due: Vec<Window> = self
            .pending
            .iter()
            .filter(|(w, _)| {
                self.progress.iter().all(|p| p.is_some_and(|p| p > **w)) || now >= w.end().saturating_add(grace)
            })
            .map(|(w, _)| *w)
            .collect();
        for w in due {
            self.flush(w);
        }
    }

    fn flush(&mut self, window: Window) {
        let Some(p) = self.pending.remove(&window) else { return };
        self.flushed_up_to = Some(self.flushed_up_to.map_or(window, |f| f.max(window)));
        let charged = p.charged;
        self.write_window(window, p.entries);
        self.stats.release(charged);
    }

    /// Renders a window's entries into rows and gives each database its batch. Each entry is
    /// freed once its rows exist, so the flush holds the window about once, not twice.
    fn write_window(&mut self, window: Window, entries: EntryMap<A::Key, A::Value>) {
        if entries.is_empty() || self.writers.is_empty() {
            return;
        }
        let label = window.label(&self.clock);
        let mut per_db: Vec<Vec<Vec<Value>>> = vec![Vec::new(); self.writers.len()];
        let mut rows = Vec::new();
        for (k, v) in entries {
            rows.clear();
            self.agg.rows(&k, &v, &label, &mut rows);
            for r in rows.drain(..) {
                per_db[self.dist.pick()].push(r);
            }
        }
        self.stats.windows.fetch_add(1, Ordering::Relaxed);
        self.flushes += 1;
        for (db, rows) in per_db.into_iter().enumerate() {
            if rows.is_empty() {
                continue;
            }
            self.stats.rows.fetch_add(rows.len() as u64, Ordering::Relaxed);
            let prefix = &self.prefixes[db];
            let app_name = format!("{prefix}{}", self.config.source_ip);
            let batch = Batch {
                id: format!("{app_name}|{}|{db}|{}.{}", window.start, self.config.generation, self.flushes),
                table_date: label.table_date.clone(),
                table: label.table_name(prefix),
                app_name,
                last_time: label.lasttime(),
                rows,
            };
            self.writers[db].send(batch);
        }
    }
}
