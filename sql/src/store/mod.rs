//! The storage handle services use: one interface over MySQL and the embedded SQLite backend,
//! with every statement executed on dedicated blocking threads.
//!
//! A [`Store`] is a cheap, cloneable, `Send` handle. Each call packs its work into a job and
//! sends it over a bounded crossbeam channel to the store's worker threads; each worker owns one
//! connection. An IO shard only ever does a non-blocking `try_send` and then awaits an
//! `async_channel` reply, so a slow or dead database can never stall a shard.
//!
//! Failures are typed ([`StoreError`]) and fast: a lost connection is reconnected with
//! exponential backoff (100 ms doubling to 5 s); while a worker is backing off, jobs fail at
//! once with [`StoreError::Unavailable`] instead of waiting; a job that waited in the queue
//! longer than its deadline is answered with [`StoreError::Timeout`] without running; and
//! socket read/write timeouts bound a statement whose server stopped answering.

mod health;
pub(crate) mod mysql;
pub(crate) mod session;
pub(crate) mod sqlite;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};

pub use health::{Health, HealthReport, StoreState};
pub use session::{
    create_table, encode_tsv, insert_rows, insert_rows_in, load_rows, transaction, transaction_from, Session,
};

use crate::ddl::{Dialect, InsertMode};
use crate::error::StoreError;
use crate::migrate::{self, MigrationReport, SchemaSet};
use crate::schema::Table;
use crate::url::StoreUrl;
use crate::value::{Row, Value};

/// Tuning that is not part of the URL.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Jobs that may wait for a worker before callers get [`StoreError::Overloaded`].
    pub queue_cap: usize,
    /// How long a job may wait for a worker before it is answered with a timeout.
    pub queue_timeout: Duration,
    /// First reconnect delay; doubles per failure.
    pub backoff_min: Duration,
    /// Largest reconnect delay.
    pub backoff_max: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            queue_cap: 16_384,
            queue_timeout: Duration::from_secs(10),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
        }
    }
}

/// A connection idle longer than this is pinged before its next job.
const IDLE_PING_AFTER: Duration = Duration::from_secs(1);

type JobFn = Box<dyn FnOnce(Result<&mut dyn Session, StoreError>) + Send>;

struct Job {
    enqueued: Instant,
    run: JobFn,
}

struct Inner {
    url: StoreUrl,
    label: Arc<str>,
    tx: Sender<Job>,
    health: Arc<Health>,
}

/// A handle to one database. Clone it freely; every clone feeds the same workers.
///
/// Lives on any thread: IO shards hold clones and await replies; the work itself runs on the
/// store's own worker threads (`tars-store-<db>-<n>`), never on a shard.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("url", &self.inner.label).finish()
    }
}

impl Store {
    /// Opens a store for `url` with default options. Connections are made by the workers,
    /// lazily; an unreachable database is reported by the first call, not here.
    pub fn open(url: &str) -> Result<Store, StoreError> {
        Store::open_url(StoreUrl::parse(url)?, StoreOptions::default())
    }

    /// Opens a store for a parsed URL.
    pub fn open_url(url: StoreUrl, opts: StoreOptions) -> Result<Store, StoreError> {
        let label: Arc<str> = url.to_string().into();
        let (tx, rx) = crossbeam_channel::bounded::<Job>(opts.queue_cap.max(1));
        let health = Arc::new(Health::new(label.clone(), url.dialect()));
        let workers = url.params().pool;
        let short = short_name(&url);
        for n in 0..workers {
            let worker = Worker {
                url: url.clone(),
                label: label.clone(),
                rx: rx.clone(),
                health: health.clone(),
                session: None,
                last_used: Instant::now(),
                losses_seen: 0,
                next_attempt: None,
                backoff: opts.backoff_min,
                opts: opts.clone(),
            };
            thread::Builder::new()
                .name(format!("tars-store-{short}-{n}"))
                .spawn(move || worker.run())
                .map_err(|source| StoreError::Io { what: "starting a storage worker thread".into(), source })?;
        }
        Ok(Store { inner: Arc::new(Inner { url, label, tx, health }) })
    }

    /// The URL, with the password masked when displayed.
    pub fn url(&self) -> &StoreUrl {
        &self.inner.url
    }

    /// The SQL dialect of the backend.
    pub fn dialect(&self) -> Dialect {
        self.inner.url.dialect()
    }

    /// Connection state and counters.
    pub fn health(&self) -> HealthReport {
        self.inner.health.report(self.inner.tx.len())
    }

    fn submit<T, F>(&self, f: F) -> Result<async_channel::Receiver<Result<T, StoreError>>, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Session) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, rx) = async_channel::bounded(1);
        let health = self.inner.health.clone();
        let job = Job {
            enqueued: Instant::now(),
            run: Box::new(move |session| {
                let result = session.and_then(f);
                health.finished(&result);
                let _ = reply.try_send(result);
            }),
        };
        match self.inner.tx.try_send(job) {
            Ok(()) => Ok(rx),
            Err(TrySendError::Full(_)) => {
                self.inner.health.failures.fetch_add(1, Ordering::Relaxed);
                Err(StoreError::Overloaded { store: self.inner.label.to_string(), queued: self.inner.tx.len() })
            }
            Err(TrySendError::Disconnected(_)) => Err(StoreError::Closed { store: self.inner.label.to_string() }),
        }
    }

    fn closed(&self) -> StoreError {
        StoreError::Closed { store: self.inner.label.to_string() }
    }

    /// Runs `f` with a connection on a worker thread and awaits its result. Works on any
    /// executor: the reply comes through an `async_channel`.
    pub async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Session) -> Result<T, StoreError> + Send + 'static,
    {
        let rx = self.submit(f)?;
        rx.recv().await.unwrap_or_else(|_| Err(self.closed()))
    }

    /// Like [`Store::run`], for threads that may block (startup, tools, tests).
    pub fn run_blocking<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Session) -> Result<T, StoreError> + Send + 'static,
    {
        let rx = self.submit(f)?;
        rx.recv_blocking().unwrap_or_else(|_| Err(self.closed()))
    }

    /// Runs one statement; returns the affected row count.
    pub async fn exec(&self, sql: impl Into<String>, params: Vec<Value>) -> Result<u64, StoreError> {
        let sql = sql.into();
        self.run(move |s| s.exec(&sql, &params)).await
    }

    /// Runs a query and returns every row.
    pub async fn query(&self, sql: impl Into<String>, params: Vec<Value>) -> Result<Vec<Row>, StoreError> {
        let sql = sql.into();
        self.run(move |s| s.query(&sql, &params)).await
    }

    /// Inserts `rows` as multi-row statements of `chunk` rows in one transaction.
    pub async fn insert_rows(
        &self,
        table: impl Into<String>,
        columns: &'static [&'static str],
        rows: Vec<Vec<Value>>,
        mode: InsertMode,
        chunk: usize,
    ) -> Result<u64, StoreError> {
        let table = table.into();
        self.run(move |s| insert_rows(s, &table, columns, &rows, mode, chunk)).await
    }

    /// Loads `rows` with `LOAD DATA LOCAL INFILE` in one transaction (MySQL only).
    pub async fn load_rows(
        &self,
        table: impl Into<String>,
        columns: &'static [&'static str],
        rows: Vec<Vec<Value>>,
    ) -> Result<u64, StoreError> {
        let table = table.into();
        self.run(move |s| load_rows(s, &table, columns, &rows)).await
    }

    /// Creates `table` if it does not exist.
    pub async fn create_table(&self, table: Table) -> Result<(), StoreError> {
        self.run(move |s| create_table(s, &table)).await
    }

    /// Brings the database up to the newest version of `set`. Blocks: call it at startup,
    /// before the shards serve.
    pub fn migrate(&self, set: SchemaSet) -> Result<MigrationReport, StoreError> {
        self.run_blocking(move |s| migrate::migrate(s, &set))
    }
}

fn short_name(url: &StoreUrl) -> String {
    let name = match url {
        StoreUrl::Sqlite { path, .. } => path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default(),
        StoreUrl::Mysql { driver_url, .. } => {
            let path = driver_url.split("://").nth(1).and_then(|r| r.split_once('/')).map(|(_, p)| p).unwrap_or("");
            path.split('?').next().unwrap_or("").to_owned()
        }
    };
    name.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').take(12).collect()
}

/// One connection and the loop that feeds it. Lives on its own `tars-store-*` thread.
struct Worker {
    url: StoreUrl,
    label: Arc<str>,
    rx: Receiver<Job>,
    health: Arc<Health>,
    session: Option<Box<dyn Session + Send>>,
    /// When the connection last finished a job: an idle connection may have been closed by the
    /// server (restart, wait_timeout) without us noticing.
    last_used: Instant,
    /// `health.losses` when this connection was last known good.
    losses_seen: u64,
    next_attempt: Option<Instant>,
    backoff: Duration,
    opts: StoreOptions,
}

impl Worker {
    fn run(mut self) {
        while let Ok(job) = self.rx.recv() {
            let waited = job.enqueued.elapsed();
            if waited > self.opts.queue_timeout {
                let waited_ms = u64::try_from(waited.as_millis()).unwrap_or(u64::MAX);
                (job.run)(Err(StoreError::Timeout { store: self.label.to_string(), waited_ms }));
                continue;
            }
            match self.session() {
                Ok(session) => {
                    // A job that panics must not take the worker (and its connection slot) with
                    // it; its caller sees the store as closed for that call. The connection may
                    // be mid-statement, so it is replaced.
                    let run = job.run;
                    let panicked =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || run(Ok(session)))).is_err();
                    if panicked {
                        tracing::error!(store = %self.label, "a storage job panicked; reconnecting");
                        self.session = None;
                        continue;
                    }
                    let Some(session) = self.session.as_deref_mut() else { continue };
                    if session.is_broken() {
                        self.session = None;
                        self.health.lost();
                        self.schedule_retry(Duration::ZERO);
                    }
                    self.last_used = Instant::now();
                }
                Err(e) => (job.run)(Err(e)),
            }
        }
    }

    fn schedule_retry(&mut self, delay: Duration) {
        self.next_attempt = Some(Instant::now() + delay);
    }

    fn connect(&self) -> Result<Box<dyn Session + Send>, StoreError> {
        match &self.url {
            StoreUrl::Mysql { driver_url, params } => {
                Ok(Box::new(mysql::connect(driver_url, params, self.label.clone())?))
            }
            StoreUrl::Sqlite { path, .. } => Ok(Box::new(sqlite::connect(path, self.label.clone())?)),
        }
    }

    fn session(&mut self) -> Result<&mut dyn Session, StoreError> {
        let losses = self.health.losses.load(Ordering::Relaxed);
        if let Some(s) = self.session.as_deref_mut() {
            // Check a connection that sat idle or may share a sibling's fate before trusting
            // it with a job, so a database restart costs callers nothing once it is back.
            let suspect = losses != self.losses_seen || self.last_used.elapsed() > IDLE_PING_AFTER;
            if suspect && !s.ping() {
                self.session = None;
            }
        }
        self.losses_seen = losses;
        if self.session.is_none() {
            if let Some(at) = self.next_attempt {
                if Instant::now() < at {
                    return Err(StoreError::Unavailable {
                        store: self.label.to_string(),
                        reason: self.health.last_error().unwrap_or_else(|| "reconnecting".into()),
                    });
                }
            }
            match self.connect() {
                Ok(s) => {
                    self.health.connected();
                    self.backoff = self.opts.backoff_min;
                    self.next_attempt = None;
                    self.session = Some(s);
                }
                Err(e) => {
                    self.health.connect_failed(&e);
                    let delay = self.backoff;
                    self.backoff = (self.backoff * 2).min(self.opts.backoff_max);
                    self.schedule_retry(delay);
                    return Err(e);
                }
            }
        }
        match self.session.as_deref_mut() {
            Some(s) => Ok(s as &mut dyn Session),
            None => Err(StoreError::Unavailable { store: self.label.to_string(), reason: "no connection".into() }),
        }
    }
}
