//! One database's writer: a thread that takes batches, makes them durable in its spool,
//! and writes them to the database in order, exactly once.
//!
//! Every batch is appended to the spool (fsync'd) before the database is tried, so a batch
//! the service has accepted survives a crash, an outage and a restart. A batch is written
//! in one transaction together with its id in the ledger table (`t_tarsrs_batch`) and the
//! `t_ecstatus` marker the query services read; a batch whose id is already in the ledger
//! is skipped. Only then is it acknowledged in the spool. While the database fails, batches
//! queue behind the first one (in the spool, up to its size limit) and the writer retries
//! with a backoff; on recovery they are written in order. Nothing here runs on an IO shard.
//!
//! The spool is the queue: the writer holds only the oldest batch decoded (kept across its
//! retries, dropped once it is acknowledged) and reads each next one back from the file, so
//! a backlog of a gigabyte costs disk, not memory.
//!
//! A failure is either the database's state (unreachable, a broken session, a timeout, a
//! lock, a full disk, missing privileges: waited out, however long) or the batch's own (the
//! database answered and refused this batch's statements, e.g. a table that does not exist
//! or a value it rejects). A batch refused `dead_letter_after` times is moved to the
//! dead-letter file `<spool_dir>/<target>.dead` (same record format as the spool, fsync'd,
//! bounded by the spool's size; counted and logged), so it stops holding back the batches
//! behind it.
//!
//! On MySQL the rows go in with `LOAD DATA LOCAL INFILE` (from memory, no file), the fastest
//! way in, inside the same transaction. With `LOCAL` the server skips a row whose key is
//! already in the table instead of failing (it cannot stop the client's stream), so a load
//! that kept fewer rows than it sent is rolled back and the batch is written again with
//! multi-row INSERTs and the upsert tail, which merges such rows. That only happens when a
//! restart split a window in two. A server that refuses `LOCAL` (MySQL 8 has `local_infile`
//! off by default) gets INSERTs from then on.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::Timelike;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use tars_sql::migrate::SchemaSet;
use tars_sql::schema::monitor::BATCH_LEDGER;
use tars_sql::schema::Table;
use tars_sql::{
    encode_tsv, insert_rows_in, params, transaction, Dialect, InsertMode, Session, Store, StoreError, StoreOptions,
};

use crate::batch::Batch;
use crate::clock::Clock;
use crate::spool::{DeadLetters, Spool, SpoolError};
use crate::tables::{HourlyTables, TablesError};
use crate::targets::Target;

/// How a writer writes.
#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// The database.
    pub target: Target,
    /// The hourly tables' columns, in row order.
    pub columns: &'static [&'static str],
    /// The hourly table's definition for a name.
    pub make_table: fn(String) -> Table,
    /// The database's fixed tables (`t_ecstatus`, the batch ledger), migrated before the
    /// first write, so a database made by upstream's install scripts is adopted as it is.
    pub schema: fn() -> SchemaSet,
    /// What follows each INSERT's values: how a row whose key is already in the table is
    /// merged into it (stat's primary key; a restart inside a window writes that window's
    /// second half as a new batch), or nothing (property's tables have no unique key).
    pub upsert_tail: fn(Dialect) -> String,
    /// Where the spool file lives; its name is the target's.
    pub spool_dir: PathBuf,
    /// The spool's limit for batches not yet written; beyond it batches are dropped,
    /// counted and logged.
    pub spool_max_bytes: u64,
    /// Rows per INSERT statement (upstream's `maxInsertCount`, 1000).
    pub rows_per_insert: usize,
    /// The interval written to `t_ecstatus.checkint` (minutes).
    pub checkint_minutes: i64,
    /// The service's clock (tables are created a day ahead by it).
    pub clock: Clock,
    /// The longest wait between retries while the database fails.
    pub retry_max: Duration,
    /// Days of hourly tables kept (`db_reserve`); older ones of this target's prefix are
    /// dropped once a day at 03:00 local time, as upstream. `None` keeps everything.
    pub reserve_days: Option<u32>,
    /// How many times the database may refuse the same batch (a failure that is the batch's
    /// own, not a connection's) before it goes to the dead-letter file; connection failures
    /// in between neither count nor start the count again. 0: never; the batch blocks its
    /// database until someone removes it.
    pub dead_letter_after: u32,
}

/// [`WriterConfig::dead_letter_after`] by default.
pub const DEFAULT_DEAD_LETTER_AFTER: u32 = 5;

/// Counters of one writer, read by the metrics endpoint and the admin command. Shared
/// between the writer thread (writes) and readers.
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Batches written to the database.
    pub batches_written: AtomicU64,
    /// Rows written.
    pub rows_written: AtomicU64,
    /// Batches skipped because the ledger already had them (replays).
    pub batches_duplicate: AtomicU64,
    /// Batches appended to the spool.
    pub batches_spooled: AtomicU64,
    /// Batches waiting for the database.
    pub batches_pending: AtomicU64,
    /// Batches dropped: the spool was full or unwritable, a spooled batch did not read back,
    /// or a batch for the dead-letter file did not fit there.
    pub batches_dropped: AtomicU64,
    /// Rows in those batches.
    pub rows_dropped: AtomicU64,
    /// Failed write attempts.
    pub write_errors: AtomicU64,
    /// Hourly tables dropped by retention.
    pub tables_dropped: AtomicU64,
    /// Batches written with `LOAD DATA LOCAL`.
    pub batches_loaded: AtomicU64,
    /// Loads rolled back because rows were already in the table, and written again with the
    /// upsert.
    pub batches_upserted: AtomicU64,
    /// Batches moved to the dead-letter file (the database refused them again and again).
    pub batches_dead_lettered: AtomicU64,
    /// Rows in those batches.
    pub rows_dead_lettered: AtomicU64,
    /// The dead-letter file's size in bytes (0 while there is none).
    pub dead_letter_bytes: AtomicU64,
    /// The last write error, for the admin command.
    pub last_error: Mutex<Option<String>>,
}

impl WriterStats {
    fn error(&self, e: &str) {
        self.write_errors.fetch_add(1, Ordering::Relaxed);
        *self.last_error.lock().unwrap_or_else(PoisonError::into_inner) = Some(e.to_owned());
    }
}

enum Msg {
    Batch(Batch),
    /// Write everything queued (one attempt each), then answer.
    Flush(Sender<()>),
}

/// The handle services hold: send batches, read counters, stop.
#[derive(Debug)]
pub struct Writer {
    name: String,
    dead_letters: PathBuf,
    tx: Option<Sender<Msg>>,
    thread: Option<JoinHandle<()>>,
    stats: Arc<WriterStats>,
}

/// A writer that could not start.
#[derive(Debug, thiserror::Error)]
pub enum WriterError {
    /// The spool could not be opened.
    #[error("writer for {target}: {source}")]
    Spool {
        /// The target's name.
        target: String,
        /// Why.
        source: SpoolError,
    },
    /// The database handle could not be made.
    #[error("writer for {target}: {source}")]
    Store {
        /// The target's name.
        target: String,
        /// Why.
        source: StoreError,
    },
    /// The thread could not start.
    #[error("writer for {target}: starting its thread: {source}")]
    Thread {
        /// The target's name.
        target: String,
        /// Why.
        source: std::io::Error,
    },
}

impl Writer {
    /// Opens the spool (batches a previous run left unwritten are queued first) and starts
    /// the writer thread `tars-writer-<target>`.
    pub fn start(config: WriterConfig) -> Result<Writer, WriterError> {
        let name = config.target.name.clone();
        let spool = Spool::open(&config.spool_dir, &name, config.spool_max_bytes)
            .map_err(|source| WriterError::Spool { target: name.clone(), source })?;
        let store = Store::open_url(config.target.url.clone(), StoreOptions::default())
            .map_err(|source| WriterError::Store { target: name.clone(), source })?;
        let stats = Arc::new(WriterStats::default());
        let dead_letters = DeadLetters::path_for(&config.spool_dir, &name);
        // Opened only when a batch goes there; until then its size is what a previous run left.
        stats.dead_letter_bytes.store(std::fs::metadata(&dead_letters).map_or(0, |m| m.len()), Ordering::Relaxed);
        let (tx, rx) = crossbeam_channel::unbounded();
        let mut state = WriterThread {
            tables: Arc::new(Mutex::new(HourlyTables::new(&config.target.prefix, config.make_table))),
            config,
            store,
            spool,
            head: None,
            head_refusals: 0,
            dead: None,
            lost_seen: 0,
            stats: stats.clone(),
            retry_at: None,
            backoff: RETRY_MIN,
            failing: false,
            ahead_at: None,
            reserved_on: None,
            reserve_retry_at: None,
            migrated: false,
            load_refused: false,
        };
        state.load_spooled();
        let thread = std::thread::Builder::new()
            .name(format!("tars-writer-{name}"))
            .spawn(move || state.run(rx))
            .map_err(|source| WriterError::Thread { target: name.clone(), source })?;
        Ok(Writer { name, dead_letters, tx: Some(tx), thread: Some(thread), stats })
    }

    /// Queues a batch. Never blocks: the writer makes it durable on its own thread.
    pub fn send(&self, batch: Batch) {
        if let Some(tx) = &self.tx {
            if tx.send(Msg::Batch(batch)).is_err() {
                tracing::error!(target = %self.name, "writer thread is gone; batch dropped");
            }
        }
    }

    /// Waits until every batch sent so far has had one write attempt (tests, shutdown).
    pub fn flush(&self, timeout: Duration) -> bool {
        let Some(tx) = &self.tx else { return false };
        let (done_tx, done_rx) = crossbeam_channel::bounded(1);
        tx.send(Msg::Flush(done_tx)).is_ok() && done_rx.recv_timeout(timeout).is_ok()
    }

    /// The counters.
    pub fn stats(&self) -> &Arc<WriterStats> {
        &self.stats
    }

    /// The target's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The dead-letter file (there only once a batch went there).
    pub fn dead_letter_path(&self) -> &std::path::Path {
        &self.dead_letters
    }

    /// Stops after one more attempt at what is queued; what is still unwritten stays in the
    /// spool for the next start.
    pub fn stop(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop();
    }
}

const RETRY_MIN: Duration = Duration::from_millis(200);
/// How often tomorrow's tables are checked.
const AHEAD_EVERY: Duration = Duration::from_secs(600);

/// The writer thread's state. Lives on `tars-writer-<target>` only.
struct WriterThread {
    config: WriterConfig,
    store: Store,
    spool: Spool,
    /// Shared only with this writer's own store jobs (statements run on the store's thread):
    /// locked once per batch, never on an IO shard.
    tables: Arc<Mutex<HourlyTables>>,
    /// The oldest pending batch, decoded, with its spool sequence number: the only batch held
    /// in memory.
    head: Option<(u64, Arc<Batch>)>,
    /// Times the database refused `head` (failures that are the batch's own).
    head_refusals: u32,
    /// The dead-letter file, opened when the first batch goes there.
    dead: Option<DeadLetters>,
    /// The spool's lost records already counted as dropped.
    lost_seen: u64,
    stats: Arc<WriterStats>,
    retry_at: Option<Instant>,
    backoff: Duration,
    failing: bool,
    ahead_at: Option<Instant>,
    /// The local date retention last ran on.
    reserved_on: Option<String>,
    /// After a failed retention run, when to try again.
    reserve_retry_at: Option<Instant>,
    /// The fixed tables are known to be there.
    migrated: bool,
    /// The server refused `LOAD DATA LOCAL`: INSERTs only from now on.
    load_refused: bool,
}

/// The local hour retention runs at (upstream's cron `0 0 3 * * *`).
const RESERVE_HOUR: u32 = 3;

enum Outcome {
    Written(u64),
    Duplicate,
}

/// How a batch's rows go into the hourly table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    /// `LOAD DATA LOCAL INFILE` (MySQL).
    Load,
    /// Multi-row INSERTs with the upsert tail.
    Insert,
}

/// Why a load was rolled back to be written with INSERTs instead.
#[derive(Debug)]
enum LoadFallback {
    /// Rows were skipped (their keys were in the table already).
    Skipped { kept: u64 },
    /// The server (or a proxy) refused the statement.
    Refused(String),
}

impl WriterThread {
    fn load_spooled(&mut self) {
        let batches = self.spool.pending_len();
        if batches > 0 {
            tracing::info!(target = %self.config.target.name, batches, "replaying batches left in the spool");
        }
        self.note_pending();
    }

    /// Publishes the backlog, and counts as dropped what the spool found damaged since.
    fn note_pending(&mut self) {
        let lost = self.spool.lost_records();
        if lost > self.lost_seen {
            self.stats.batches_dropped.fetch_add(lost - self.lost_seen, Ordering::Relaxed);
            self.lost_seen = lost;
        }
        self.stats.batches_pending.store(self.spool.pending_len() as u64, Ordering::Relaxed);
    }

    fn run(mut self, rx: Receiver<Msg>) {
        loop {
            self.work();
            let wait = match self.retry_at {
                Some(at) if self.spool.pending_len() > 0 => at.saturating_duration_since(Instant::now()),
                _ => Duration::from_secs(1),
            };
            match rx.recv_timeout(wait) {
                Ok(msg) => self.handle(msg),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    self.retry_at = None;
                    self.work();
                    if self.spool.pending_len() > 0 {
                        tracing::warn!(target = %self.config.target.name, batches = self.spool.pending_len(),
                            "stopping with batches unwritten; they stay in the spool for the next start");
                    }
                    return;
                }
            }
            while let Ok(msg) = rx.try_recv() {
                self.handle(msg);
            }
        }
    }

    fn handle(&mut self, msg: Msg) {
        match msg {
            Msg::Batch(b) => self.accept(b),
            Msg::Flush(done) => {
                self.retry_at = None;
                self.work();
                let _ = done.send(());
            }
        }
    }

    /// Makes a new batch durable and queues it.
    fn accept(&mut self, batch: Batch) {
        let rows = batch.rows.len() as u64;
        match self.spool.append(&batch.encode()) {
            Ok(seq) => {
                self.stats.batches_spooled.fetch_add(1, Ordering::Relaxed);
                // The next to write (the usual case while the database keeps up): keep it
                // rather than read it back.
                if self.head.is_none() && self.spool.first_pending() == Some(seq) {
                    self.head = Some((seq, Arc::new(batch)));
                    self.head_refusals = 0;
                }
            }
            Err(e) => {
                // Counted and logged, never silent: the spool is the bound on what we hold.
                self.stats.batches_dropped.fetch_add(1, Ordering::Relaxed);
                self.stats.rows_dropped.fetch_add(rows, Ordering::Relaxed);
                tracing::error!(target = %self.config.target.name, table = %batch.table, rows, error = %e,
                    "batch dropped: it cannot be kept until the database answers");
            }
        }
        self.note_pending();
    }

    /// The oldest pending batch, decoded: the one kept from the last attempt, or read back
    /// from the spool. A spooled batch that does not read back or decode is dropped (counted,
    /// logged) and the next one tried. `Ok(None)`: nothing is pending.
    fn head_batch(&mut self) -> Result<Option<(u64, Arc<Batch>)>, WriteError> {
        loop {
            let first = self.spool.first_pending();
            if let Some((seq, batch)) = &self.head {
                if first == Some(*seq) {
                    return Ok(Some((*seq, batch.clone())));
                }
            }
            self.head = None;
            self.head_refusals = 0;
            let (seq, bytes) = match self.spool.read_first() {
                Ok(Some(read)) => read,
                Ok(None) => return Ok(None),
                // Dropped by the spool, which counts it (see `note_pending`).
                Err(SpoolError::Damaged { .. }) => continue,
                Err(e) => return Err(WriteError::Spool(e)),
            };
            match Batch::decode(&bytes) {
                Ok(b) => {
                    let b = Arc::new(b);
                    self.head = Some((seq, b.clone()));
                    return Ok(Some((seq, b)));
                }
                Err(e) => {
                    self.stats.batches_dropped.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(target = %self.config.target.name, seq, error = %e, "unreadable batch in the spool; skipped");
                    self.ack(seq);
                }
            }
        }
    }

    /// Acknowledges `seq` in the spool and forgets the decoded batch.
    fn ack(&mut self, seq: u64) {
        if let Err(e) = self.spool.ack(seq) {
            tracing::warn!(target = %self.config.target.name, error = %e, "spool ack");
        }
        if self.head.as_ref().is_some_and(|(s, _)| *s == seq) {
            self.head = None;
        }
        self.head_refusals = 0;
    }

    /// Writes queued batches in order until one fails or the queue is empty.
    fn work(&mut self) {
        if self.retry_at.is_some_and(|t| Instant::now() < t) {
            return;
        }
        self.retry_at = None;
        if !self.migrated {
            match self.store.migrate((self.config.schema)()) {
                Ok(_) => self.migrated = true,
                Err(e) => {
                    self.failed(&WriteError::Store(e));
                    self.note_pending();
                    return;
                }
            }
        }
        if self.ahead_at.is_none_or(|t| t.elapsed() >= AHEAD_EVERY) {
            self.ensure_ahead();
        }
        self.reserve_if_due();
        loop {
            let (seq, batch) = match self.head_batch() {
                Ok(Some(head)) => head,
                Ok(None) => break,
                Err(e) => {
                    self.failed(&e);
                    break;
                }
            };
            match self.write(batch.clone()) {
                Ok(outcome) => {
                    match outcome {
                        Outcome::Written(rows) => {
                            self.stats.batches_written.fetch_add(1, Ordering::Relaxed);
                            self.stats.rows_written.fetch_add(rows, Ordering::Relaxed);
                        }
                        Outcome::Duplicate => {
                            self.stats.batches_duplicate.fetch_add(1, Ordering::Relaxed);
                            tracing::info!(target = %self.config.target.name, batch = %batch.id, "batch was already written; skipped");
                        }
                    }
                    self.ack(seq);
                    if self.failing {
                        self.failing = false;
                        tracing::info!(target = %self.config.target.name, pending = self.spool.pending_len(), "database answers again; writing queued batches");
                    }
                    self.backoff = RETRY_MIN;
                }
                Err(Failure { error, refused: true }) => {
                    self.head_refusals += 1;
                    let limit = self.config.dead_letter_after;
                    if limit > 0 && self.head_refusals >= limit {
                        self.stats.error(&error.to_string());
                        self.dead_letter(seq, &batch, &error);
                        self.backoff = RETRY_MIN;
                        continue;
                    }
                    tracing::warn!(target = %self.config.target.name, batch = %batch.id, table = %batch.table,
                        refusals = self.head_refusals, dead_letter_after = limit, error = %error,
                        "the database refuses this batch; retrying");
                    self.failed(&error);
                    break;
                }
                Err(Failure { error, refused: false }) => {
                    self.failed(&error);
                    break;
                }
            }
        }
        self.note_pending();
    }

    /// Moves a batch the database keeps refusing out of the way: into the dead-letter file
    /// (or, when that cannot take it, dropped), then acknowledged in the spool.
    fn dead_letter(&mut self, seq: u64, batch: &Batch, error: &WriteError) {
        let rows = batch.rows.len() as u64;
        let refusals = self.head_refusals;
        // The bytes as spooled; the batch encodes to the same.
        let payload = match self.spool.read(seq) {
            Ok(Some(p)) => p,
            Ok(None) | Err(_) => batch.encode(),
        };
        let appended = self.dead_letters().and_then(|d| d.append(&payload).map(|_| d.file_len()));
        let target = &self.config.target.name;
        let file = DeadLetters::path_for(&self.config.spool_dir, target);
        match appended {
            Ok(file_len) => {
                self.stats.batches_dead_lettered.fetch_add(1, Ordering::Relaxed);
                self.stats.rows_dead_lettered.fetch_add(rows, Ordering::Relaxed);
                self.stats.dead_letter_bytes.store(file_len, Ordering::Relaxed);
                tracing::error!(target = %target, batch = %batch.id, table = %batch.table, rows, refusals,
                    error = %error, file = %file.display(),
                    "the database refused this batch every time; moved to the dead-letter file, writing the next");
            }
            Err(e) => {
                self.stats.batches_dropped.fetch_add(1, Ordering::Relaxed);
                self.stats.rows_dropped.fetch_add(rows, Ordering::Relaxed);
                tracing::error!(target = %target, batch = %batch.id, table = %batch.table, rows, refusals,
                    error = %error, dead_letter_error = %e,
                    "the database refused this batch every time and the dead-letter file cannot take it; batch dropped");
            }
        }
        self.ack(seq);
    }

    fn dead_letters(&mut self) -> Result<&mut DeadLetters, SpoolError> {
        let dead = match self.dead.take() {
            Some(d) => d,
            None => {
                let d =
                    DeadLetters::open(&self.config.spool_dir, &self.config.target.name, self.config.spool_max_bytes)?;
                if let Some(c) = d.corruption() {
                    tracing::error!(target = %self.config.target.name, error = %c, "dead-letter file damaged");
                }
                d
            }
        };
        Ok(self.dead.insert(dead))
    }

    /// Counts and logs a failed attempt and schedules the next (exponential backoff).
    fn failed(&mut self, e: &WriteError) {
        let text = e.to_string();
        self.stats.error(&text);
        if !self.failing {
            self.failing = true;
            tracing::warn!(target = %self.config.target.name, error = %text, pending = self.spool.pending_len(),
                "cannot write to the database; batches wait in the spool");
        }
        self.retry_at = Some(Instant::now() + self.backoff);
        self.backoff = (self.backoff * 2).min(self.config.retry_max.max(RETRY_MIN));
    }

    fn ensure_ahead(&mut self) {
        let tables = self.tables.clone();
        let clock = self.config.clock.clone();
        let done = self
            .store
            .run_blocking(move |s| Ok(tables.lock().unwrap_or_else(PoisonError::into_inner).ensure_ahead(s, &clock)))
            .map_err(WriteError::Store)
            .and_then(|r| r.map_err(WriteError::Tables));
        match done {
            Ok(()) => self.ahead_at = Some(Instant::now()),
            Err(e) => {
                tracing::debug!(target = %self.config.target.name, error = %e, "creating the next day's tables; will retry")
            }
        }
    }

    /// Retention: once a day at or after 03:00 local time. A writer started after 03:00
    /// runs it at once, so a process that was down at 03:00 does not skip the day.
    fn reserve_if_due(&mut self) {
        let Some(keep_days) = self.config.reserve_days else { return };
        if self.reserve_retry_at.is_some_and(|t| Instant::now() < t) {
            return;
        }
        let local = self.config.clock.local(self.config.clock.now_unix());
        let today = local.format("%Y%m%d").to_string();
        if local.hour() < RESERVE_HOUR || self.reserved_on.as_deref() == Some(today.as_str()) {
            return;
        }
        let tables = self.tables.clone();
        let clock = self.config.clock.clone();
        let done = self
            .store
            .run_blocking(move |s| {
                Ok(tables.lock().unwrap_or_else(PoisonError::into_inner).drop_older_than(s, keep_days, &clock))
            })
            .map_err(WriteError::Store);
        let target = &self.config.target.name;
        match done {
            Ok(Ok(dropped)) => {
                self.stats.tables_dropped.fetch_add(dropped.len() as u64, Ordering::Relaxed);
                if !dropped.is_empty() {
                    tracing::info!(target = %target, keep_days, tables = dropped.len(), first = %dropped[0],
                        "retention dropped old hourly tables");
                }
                self.reserved_on = Some(today);
                self.reserve_retry_at = None;
            }
            Ok(Err(e)) => {
                if let TablesError::Drop { dropped, .. } = &e {
                    self.stats.tables_dropped.fetch_add(dropped.len() as u64, Ordering::Relaxed);
                }
                tracing::warn!(target = %target, error = %e, "retention; will retry");
                self.reserve_retry_at = Some(Instant::now() + AHEAD_EVERY);
            }
            Err(e) => {
                tracing::debug!(target = %target, error = %e, "retention; will retry");
                self.reserve_retry_at = Some(Instant::now() + self.config.retry_max.max(RETRY_MIN));
            }
        }
    }

    fn write(&mut self, batch: Arc<Batch>) -> Result<Outcome, Failure> {
        let tables = self.tables.clone();
        let columns = self.config.columns;
        let chunk = self.config.rows_per_insert;
        let checkint = self.config.checkint_minutes;
        let tail = (self.config.upsert_tail)(self.store.dialect());
        let via = if self.store.dialect() == Dialect::Mysql && !self.load_refused { Via::Load } else { Via::Insert };
        let (table, rows, date) = (batch.table.clone(), batch.rows.len(), batch.table_date.clone());
        let dialect = self.store.dialect();
        let (result, fallback, broken) = self
            .store
            .run_blocking(move |s| {
                if let Err(e) = tables.lock().unwrap_or_else(PoisonError::into_inner).ensure_day(s, &batch.table_date) {
                    return Ok((Err(WriteError::Tables(e)), None, s.is_broken()));
                }
                let mut fallback = None;
                let w = |s: &mut dyn Session, via, fallback: &mut Option<LoadFallback>| {
                    transaction(s, |s| write_batch(s, &batch, columns, chunk, checkint, &tail, via, fallback))
                };
                let mut result = w(s, via, &mut fallback);
                if result.is_err() && fallback.is_some() && !s.is_broken() {
                    result = w(s, Via::Insert, &mut None);
                }
                Ok((result.map_err(WriteError::Store), fallback, s.is_broken()))
            })
            .map_err(|e| Failure { error: WriteError::Store(e), refused: false })?;
        let written = matches!(result, Ok(Outcome::Written(_)));
        match fallback {
            None if written && via == Via::Load => {
                self.stats.batches_loaded.fetch_add(1, Ordering::Relaxed);
            }
            Some(LoadFallback::Refused(e)) => {
                self.load_refused = true;
                tracing::info!(target = %self.config.target.name, error = %e,
                    "the server refuses LOAD DATA LOCAL; writing with INSERT from now on");
            }
            Some(LoadFallback::Skipped { kept }) => {
                if written {
                    self.stats.batches_upserted.fetch_add(1, Ordering::Relaxed);
                }
                tracing::info!(target = %self.config.target.name, table = %table, kept, rows,
                    "rows already in the table (a window split by a restart); batch merged with INSERT … ON DUPLICATE KEY UPDATE");
            }
            None => {}
        }
        if let Err(WriteError::Store(e)) = &result {
            if missing_table(e) {
                // Someone dropped a table this writer made: check the day again next time, so
                // a dropped hourly table is made anew instead of its batches being refused.
                self.tables.lock().unwrap_or_else(PoisonError::into_inner).forget(&date);
            }
        }
        result.map_err(|error| Failure { refused: !broken && refused(&error, dialect), error })
    }
}

/// MySQL's `ER_NO_SUCH_TABLE`, or SQLite's generic error about a missing table.
fn missing_table(e: &StoreError) -> bool {
    match e {
        StoreError::Query { code: Some(1146), .. } => true,
        StoreError::Query { message, .. } => message.contains("no such table"),
        _ => false,
    }
}

/// Why a batch was not written this time (it stays queued).
#[derive(Debug, thiserror::Error)]
enum WriteError {
    #[error(transparent)]
    Store(StoreError),
    #[error(transparent)]
    Tables(TablesError),
    #[error(transparent)]
    Spool(SpoolError),
}

/// A failed write attempt.
#[derive(Debug)]
struct Failure {
    error: WriteError,
    /// The failure is the batch's own (see [`refused`]); the session did not break.
    refused: bool,
}

/// Server errors (MySQL and MariaDB codes) that say something about the server's state, not
/// the statement: out of disk, memory, connections or threads; access denied; lock wait
/// timeout and deadlock; read-only; interrupted or timed out; a cluster node not ready;
/// commit or rollback failed; network errors. The batch may go in later, unchanged.
const MYSQL_STATE_CODES: &[u32] = &[
    1021, 1037, 1038, 1040, 1041, 1044, 1045, 1047, 1053, 1114, 1135, 1142, 1143, 1158, 1159, 1160, 1161, 1180, 1181,
    1203, 1205, 1213, 1227, 1290, 1317, 1792, 1836, 1927, 1969, 3024,
];

/// SQLite primary result codes of the same kind: permission, busy, locked, out of memory,
/// read-only, interrupted, I/O error, corrupt, full, cannot open, locking protocol, schema
/// changed, authorization, not a database.
const SQLITE_STATE_CODES: &[u32] = &[3, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 17, 23, 26];

/// True when the database answered and refused what this batch asked of it (a missing
/// table, a value or a row it rejects, a malformed name), so trying the same batch again
/// fails the same way. Connection failures, timeouts and the server-state errors above are
/// not: they pass by themselves, or they need an operator, and either way every batch
/// would fail alike.
fn refused(e: &WriteError, dialect: Dialect) -> bool {
    match e {
        WriteError::Store(e) => store_refused(e, dialect),
        WriteError::Tables(TablesError::BadDate(_)) => true,
        WriteError::Tables(TablesError::Store { source, .. }) => store_refused(source, dialect),
        WriteError::Tables(_) | WriteError::Spool(_) => false,
    }
}

fn store_refused(e: &StoreError, dialect: Dialect) -> bool {
    match e {
        StoreError::Query { code: Some(code), .. } => match dialect {
            // 2000 and up are the client library's own errors: connection trouble.
            Dialect::Mysql => *code < 2000 && !MYSQL_STATE_CODES.contains(code),
            Dialect::Sqlite => !SQLITE_STATE_CODES.contains(&(code & 0xff)),
        },
        StoreError::Query { code: None, .. } | StoreError::Column { .. } | StoreError::BadIdentifier(_) => true,
        _ => false,
    }
}

/// The server's answers that mean "no `LOAD DATA LOCAL` here": 1148 (`ER_NOT_ALLOWED_COMMAND`,
/// older MariaDB and MySQL 5.7 with `local_infile` off), 4166
/// (`ER_LOAD_INFILE_CAPABILITY_DISABLED`, MariaDB 10.5+), 3948
/// (`ER_CLIENT_LOCAL_FILES_DISABLED`, MySQL 8), 2068 (the client library's refusal). Any other error is the batch's, retried
/// as it is.
fn load_refused(e: &StoreError) -> bool {
    match e {
        StoreError::Unsupported { .. } => true,
        StoreError::Query { code: Some(code), .. } => [1148, 4166, 3948, 2068].contains(code),
        _ => false,
    }
}

/// Inside one transaction: skip if the ledger has the batch; else its rows, its ledger
/// entry, and the `t_ecstatus` marker (moved forward only). A load that cannot stand for the
/// batch (see the module docs) fails with `fallback` set, so the caller rolls back and
/// writes the batch again with INSERTs.
#[allow(clippy::too_many_arguments)]
fn write_batch(
    s: &mut dyn Session,
    batch: &Batch,
    columns: &[&str],
    chunk: usize,
    checkint: i64,
    tail: &str,
    via: Via,
    fallback: &mut Option<LoadFallback>,
) -> Result<Outcome, StoreError> {
    let d = s.dialect();
    let ledger = d.quote(BATCH_LEDGER)?;
    let seen = s.query(&format!("SELECT 1 FROM {ledger} WHERE batch_id = ?"), &params![batch.id.as_str()])?;
    if !seen.is_empty() {
        return Ok(Outcome::Duplicate);
    }
    let rows = match via {
        Via::Insert => insert_rows_in(s, &batch.table, columns, &batch.rows, InsertMode::Plain, chunk, tail)?,
        Via::Load => {
            let sent = batch.rows.len() as u64;
            match s.load_data(&batch.table, columns, encode_tsv(&batch.rows)) {
                Ok(kept) if kept == sent => kept,
                Ok(kept) => {
                    *fallback = Some(LoadFallback::Skipped { kept });
                    return Err(StoreError::Query {
                        store: s.label().to_owned(),
                        code: None,
                        message: format!("LOAD DATA kept {kept} of {sent} rows"),
                    });
                }
                Err(e) if load_refused(&e) => {
                    *fallback = Some(LoadFallback::Refused(e.to_string()));
                    return Err(e);
                }
                Err(e) => return Err(e),
            }
        }
    };
    s.exec(
        &format!("INSERT INTO {ledger} (batch_id, rows_written) VALUES (?, ?)"),
        &params![batch.id.as_str(), batch.rows.len() as i64],
    )?;
    let moved = s.exec(
        "UPDATE t_ecstatus SET lasttime = ?, checkint = ? WHERE appname = ? AND action = 0 AND lasttime < ?",
        &params![batch.last_time.as_str(), checkint, batch.app_name.as_str(), batch.last_time.as_str()],
    )?;
    if moved == 0 {
        let exists =
            s.query("SELECT 1 FROM t_ecstatus WHERE appname = ? AND action = 0", &params![batch.app_name.as_str()])?;
        if exists.is_empty() {
            s.exec(
                "INSERT INTO t_ecstatus (appname, action, checkint, lasttime) VALUES (?, 0, ?, ?)",
                &params![batch.app_name.as_str(), checkint, batch.last_time.as_str()],
            )?;
        }
    }
    Ok(Outcome::Written(rows))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn query(code: Option<u32>) -> StoreError {
        StoreError::Query { store: "db".into(), code, message: "refused".into() }
    }

    fn store(e: StoreError, d: Dialect) -> bool {
        refused(&WriteError::Store(e), d)
    }

    #[test]
    fn the_batch_s_own_errors_are_refusals() {
        // Unknown table or column, duplicate key, syntax, value out of range or of the wrong
        // type, too long, a foreign key, NULL into NOT NULL.
        for code in [1146, 1054, 1062, 1064, 1264, 1366, 1406, 1452, 1048] {
            assert!(store(query(Some(code)), Dialect::Mysql), "{code}");
        }
        // Generic SQL error (no such table), constraint (and its extended codes), type
        // mismatch, too big, bind index out of range.
        for code in [1, 19, 2067, 20, 18, 25] {
            assert!(store(query(Some(code)), Dialect::Sqlite), "{code}");
        }
        assert!(store(query(None), Dialect::Mysql));
        assert!(store(
            StoreError::Column { column: "t row 0".into(), reason: "3 values for 19 columns".into() },
            Dialect::Sqlite
        ));
        assert!(store(StoreError::BadIdentifier("a b".into()), Dialect::Mysql));
        assert!(refused(&WriteError::Tables(TablesError::BadDate("20261399".into())), Dialect::Mysql));
        let in_tables = |source| {
            WriteError::Tables(TablesError::Store {
                what: "creating".into(),
                db: "db".into(),
                source: Box::new(source),
            })
        };
        assert!(refused(&in_tables(query(Some(1064))), Dialect::Mysql));
    }

    #[test]
    fn the_database_s_state_is_not_a_refusal() {
        // Disk full, out of memory, too many connections, access denied, lock wait timeout,
        // deadlock, read-only, interrupted, statement timeout; client-side errors.
        for code in [1021, 1037, 1040, 1045, 1142, 1205, 1213, 1290, 1836, 1317, 1969, 3024, 2006, 2013, 2068] {
            assert!(!store(query(Some(code)), Dialect::Mysql), "{code}");
        }
        // Busy (and BUSY_SNAPSHOT), locked, read-only, I/O error (and IOERR_READ), full,
        // cannot open, schema changed.
        for code in [5, 517, 6, 8, 10, 266, 13, 14, 17] {
            assert!(!store(query(Some(code)), Dialect::Sqlite), "{code}");
        }
        for e in [
            StoreError::Unavailable { store: "db".into(), reason: "refused".into() },
            StoreError::ConnectionLost { store: "db".into(), reason: "reset".into() },
            StoreError::Timeout { store: "db".into(), waited_ms: 5000 },
            StoreError::Overloaded { store: "db".into(), queued: 10 },
            StoreError::Closed { store: "db".into() },
            StoreError::SchemaChanged { store: "db".into(), attempts: 3, message: "changed".into() },
            StoreError::Io { what: "creating the directory".into(), source: std::io::Error::other("no") },
        ] {
            assert!(!store(e, Dialect::Mysql));
        }
        let in_tables = |source| {
            WriteError::Tables(TablesError::Store {
                what: "creating".into(),
                db: "db".into(),
                source: Box::new(source),
            })
        };
        assert!(!refused(
            &in_tables(StoreError::ConnectionLost { store: "db".into(), reason: "reset".into() }),
            Dialect::Mysql
        ));
        assert!(!refused(
            &WriteError::Tables(TablesError::Missing { table: "t".into(), db: "db".into() }),
            Dialect::Mysql
        ));
        let spool = SpoolError::Io { path: "x".into(), what: "reading", source: std::io::Error::other("eio") };
        assert!(!refused(&WriteError::Spool(spool), Dialect::Sqlite));
    }
}
