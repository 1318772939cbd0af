//! The config files in memory, so a load costs no query (upstream runs 2–4 + N queries per
//! load, every time), and the thread that keeps them current.
//!
//! The `tars-config-cache` thread reads a signature of both tables every `pollMs` (1 s):
//! row count, id sum, newest `posttime`, and the summed lengths of the texts and key columns
//! of `t_config_files`; count and id sums of `t_config_references`. When it differs, the
//! tables are read whole and published as a new [`Files`]; the signature is read before the
//! rows, so a change that commits in between is seen at the next poll. Two more reads close
//! the gaps a signature leaves: for two seconds after a change every poll reads the rows (a
//! second edit within the same second, of the same length, keeps `posttime` and lengths),
//! and every `reloadSecs` (30 s) the rows are read regardless (an edit by hand that keeps
//! both).
//!
//! Shards see a new load through one atomic generation number; each keeps its own `Arc` to
//! the files it answers from. The tables are held only while they fit `maxMB` (64 MiB): a
//! larger table, or no successful read yet, means every call reads the database on a store
//! worker instead. A database that fails after a load leaves the last load serving.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tars_sql::{Row, Session, Store, StoreError};

use crate::files::{FileKey, ListKey, SetId, Source};

/// One row of `t_config_files`, as the lookups need it.
#[derive(Debug, Clone)]
pub struct FileRow {
    /// `id`.
    pub id: i64,
    /// `server_name`.
    pub server_name: String,
    /// `filename`; `None` for NULL (never listed, never matched).
    pub filename: Option<String>,
    /// `host`.
    pub host: String,
    /// `level`.
    pub level: i32,
    /// The set columns.
    pub set: SetId,
    /// `config`.
    pub config: String,
}

/// Both tables, indexed for every lookup `ConfigF` makes. Immutable once built; shared by
/// the shards through an `Arc`.
#[derive(Debug, Default)]
pub struct Files {
    rows: HashMap<i64, FileRow>,
    /// `(server_name, filename, level)` → ids, ascending.
    by_file: HashMap<(String, String, i32), Vec<i64>>,
    /// `server_name` → ids, ascending.
    by_server: HashMap<String, Vec<i64>>,
    /// `config_id` → `reference_id`s, ascending.
    refs: HashMap<i64, Vec<i64>>,
    bytes: usize,
}

impl Files {
    /// Indexes `rows` and `(config_id, reference_id)` pairs.
    pub fn new(rows: Vec<FileRow>, references: Vec<(i64, i64)>) -> Files {
        let mut f = Files::default();
        for r in rows {
            f.bytes += r.config.len()
                + r.server_name.len() * 3
                + r.filename.as_ref().map_or(0, |n| n.len() * 2)
                + r.host.len()
                + r.set.name.len()
                + r.set.area.len()
                + r.set.group.len()
                + 160;
            if let Some(name) = &r.filename {
                f.by_file.entry((r.server_name.clone(), name.clone(), r.level)).or_default().push(r.id);
            }
            f.by_server.entry(r.server_name.clone()).or_default().push(r.id);
            f.rows.insert(r.id, r);
        }
        for (config_id, reference_id) in references {
            f.refs.entry(config_id).or_default().push(reference_id);
            f.bytes += 16;
        }
        for ids in f.by_file.values_mut().chain(f.by_server.values_mut()).chain(f.refs.values_mut()) {
            ids.sort_unstable();
        }
        f
    }

    /// Rows held.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// No rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// An estimate of the heap bytes held: texts plus per-row overhead.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Source for &Files {
    type Error = Infallible;

    fn file(&mut self, key: &FileKey<'_>) -> Result<Option<(i64, String)>, Infallible> {
        let index = (key.server_name.to_owned(), key.filename.to_owned(), key.level);
        let mut hits = self
            .by_file
            .get(&index)
            .into_iter()
            .flatten()
            .filter_map(|id| self.rows.get(id))
            .filter(|r| r.set == *key.set && key.host.is_none_or(|h| r.host == h));
        match (hits.next(), hits.next()) {
            (Some(r), None) => Ok(Some((r.id, r.config.clone()))),
            _ => Ok(None),
        }
    }

    fn references(&mut self, config_id: i64) -> Result<Vec<i64>, Infallible> {
        Ok(self.refs.get(&config_id).cloned().unwrap_or_default())
    }

    fn by_id(&mut self, id: i64) -> Result<Option<(String, String, String)>, Infallible> {
        Ok(self
            .rows
            .get(&id)
            .map(|r| (r.server_name.clone(), r.filename.clone().unwrap_or_default(), r.config.clone())))
    }

    fn names(&mut self, key: &ListKey<'_>) -> Result<Vec<String>, Infallible> {
        let mut names: Vec<String> = self
            .by_server
            .get(key.server_name)
            .into_iter()
            .flatten()
            .filter_map(|id| self.rows.get(id))
            .filter(|r| {
                key.level.is_none_or(|l| r.level == l)
                    && key.host.is_none_or(|h| r.host == h)
                    && key.set.is_none_or(|s| r.set == *s)
            })
            .filter_map(|r| r.filename.clone())
            .collect();
        if key.distinct {
            names.sort();
            names.dedup();
        }
        Ok(names)
    }
}

/// The cache's settings: `/tars/cache<pollMs>`, `<reloadSecs>`, `<maxMB>`.
#[derive(Debug, Clone, Copy)]
pub struct CacheConfig {
    /// How often the signature is read.
    pub poll: Duration,
    /// How often the rows are read regardless.
    pub reload: Duration,
    /// Most bytes held; a larger table is not cached. 0 turns the cache off.
    pub max_bytes: usize,
}

impl Default for CacheConfig {
    fn default() -> CacheConfig {
        CacheConfig { poll: Duration::from_secs(1), reload: Duration::from_secs(30), max_bytes: 64 << 20 }
    }
}

/// What the shards answer from.
#[derive(Debug, Clone, Default)]
pub enum Snapshot {
    /// Nothing read yet (or the cache is off): read the database.
    #[default]
    Direct,
    /// The tables, as last read.
    Loaded(Arc<Files>),
    /// The tables exceed the budget: read the database.
    TooLarge {
        /// Bytes the last read came to.
        bytes: usize,
    },
}

/// The published snapshot and the loader's counters. One per service, shared by the loader
/// thread and every shard.
#[derive(Debug, Default)]
pub struct Shared {
    generation: AtomicU64,
    current: Mutex<Snapshot>,
    /// Signature reads.
    pub polls: AtomicU64,
    /// Full reads of the tables.
    pub loads: AtomicU64,
    last_error: Mutex<Option<String>>,
    last_load: Mutex<Option<Instant>>,
}

impl Shared {
    /// The generation: it changes whenever a new snapshot is published.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Snapshot {
        self.current.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn publish(&self, s: Snapshot) {
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = s;
        *self.last_load.lock().unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    fn set_error(&self, e: Option<String>) {
        *self.last_error.lock().unwrap_or_else(PoisonError::into_inner) = e;
    }

    /// The `tars.configcache` admin command's text.
    pub fn describe(&self) -> String {
        let state = match self.snapshot() {
            Snapshot::Direct => "not loaded: every call reads the database".to_owned(),
            Snapshot::Loaded(f) => format!("{} files, {} bytes", f.len(), f.bytes()),
            Snapshot::TooLarge { bytes } => {
                format!("not held: the tables take {bytes} bytes, over the budget; every call reads the database")
            }
        };
        let last_load = self.last_load.lock().unwrap_or_else(PoisonError::into_inner).map(|t| t.elapsed());
        let last_error = self.last_error.lock().unwrap_or_else(PoisonError::into_inner).clone();
        format!(
            "cache: {state}\ngeneration: {}\npolls: {}\nloads: {}\nlast load: {}\nlast error: {}\n",
            self.generation(),
            self.polls.load(Ordering::Relaxed),
            self.loads.load(Ordering::Relaxed),
            last_load.map(|d| format!("{} ms ago", d.as_millis())).unwrap_or_else(|| "-".into()),
            last_error.as_deref().unwrap_or("-"),
        )
    }
}

/// A shard's view of [`Shared`]: the snapshot it answers from, renewed when the generation
/// moves. Lives on one IO shard (inside that shard's servant).
#[derive(Debug)]
pub struct ShardView {
    shared: Arc<Shared>,
    seen: std::cell::RefCell<(u64, Snapshot)>,
}

impl ShardView {
    /// A view that will take the current snapshot at its first use.
    pub fn new(shared: Arc<Shared>) -> ShardView {
        ShardView { shared, seen: std::cell::RefCell::new((u64::MAX, Snapshot::Direct)) }
    }

    /// The files to answer from, if the cache holds them.
    pub fn files(&self) -> Option<Arc<Files>> {
        let g = self.shared.generation();
        let mut seen = self.seen.borrow_mut();
        if seen.0 != g {
            *seen = (g, self.shared.snapshot());
        }
        match &seen.1 {
            Snapshot::Loaded(f) => Some(f.clone()),
            _ => None,
        }
    }
}

const SIGNATURE_FILES: &str = "SELECT COUNT(*), COALESCE(SUM(id), 0), MAX(posttime), \
     COALESCE(SUM(LENGTH(config)), 0), \
     COALESCE(SUM(COALESCE(LENGTH(server_name), 0) + COALESCE(LENGTH(filename), 0) + LENGTH(host) \
     + LENGTH(set_name) + LENGTH(set_area) + LENGTH(set_group) + COALESCE(level, 0)), 0) FROM t_config_files";
const SIGNATURE_REFS: &str = "SELECT COUNT(*), COALESCE(SUM(id), 0), COALESCE(SUM(config_id), 0), \
     COALESCE(SUM(reference_id), 0) FROM t_config_references";

/// Both tables' signatures, as comparable text.
fn signature(s: &mut dyn Session) -> Result<String, StoreError> {
    let a = s.query(SIGNATURE_FILES, &[])?;
    let b = s.query(SIGNATURE_REFS, &[])?;
    Ok(format!("{:?}|{:?}", a.first().map(Row::values), b.first().map(Row::values)))
}

fn text(row: &Row, col: &str) -> Result<String, StoreError> {
    Ok(row.get_by::<Option<String>>(col)?.unwrap_or_default())
}

/// Reads both tables; `None` when they exceed `max_bytes` (reading stops there).
fn read_all(s: &mut dyn Session, max_bytes: usize) -> Result<Result<Files, usize>, StoreError> {
    // Sizes first, so a table over the budget is never pulled into memory.
    let size = s.query("SELECT COALESCE(SUM(LENGTH(config)), 0) + COUNT(*) * 160 FROM t_config_files", &[])?;
    let bytes = size.first().map(|r| r.get::<i64>(0)).transpose()?.unwrap_or(0);
    let bytes = usize::try_from(bytes).unwrap_or(usize::MAX);
    if bytes > max_bytes {
        return Ok(Err(bytes));
    }
    let rows = s.query(
        "SELECT id, server_name, filename, host, level, set_name, set_area, set_group, config FROM t_config_files",
        &[],
    )?;
    let mut files = Vec::with_capacity(rows.len());
    for r in &rows {
        files.push(FileRow {
            id: r.get_by("id")?,
            server_name: text(r, "server_name")?,
            filename: r.get_by("filename")?,
            host: text(r, "host")?,
            level: r.get_by::<Option<i32>>("level")?.unwrap_or(0),
            set: SetId { name: text(r, "set_name")?, area: text(r, "set_area")?, group: text(r, "set_group")? },
            config: text(r, "config")?,
        });
    }
    drop(rows);
    let refs = s.query(
        "SELECT config_id, reference_id FROM t_config_references \
         WHERE config_id IS NOT NULL AND reference_id IS NOT NULL",
        &[],
    )?;
    let refs = refs
        .iter()
        .map(|r| Ok((r.get_by::<i64>("config_id")?, r.get_by::<i64>("reference_id")?)))
        .collect::<Result<Vec<_>, StoreError>>()?;
    let files = Files::new(files, refs);
    if files.bytes() > max_bytes {
        return Ok(Err(files.bytes()));
    }
    Ok(Ok(files))
}

/// How long after a change every poll reads the rows: `posttime` has whole seconds, so a
/// second edit in the same second, of the same length, has the same signature.
const REREAD_AFTER_CHANGE: Duration = Duration::from_secs(2);

/// The running loader; dropping it stops the thread.
#[derive(Debug)]
pub struct Loader {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Loader {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts the `tars-config-cache` thread, which publishes into `shared`. The first read
/// happens before this returns (bounded by the store's own timeouts), so a service that
/// starts with the database up answers its first call from memory.
pub fn start(store: Store, shared: Arc<Shared>, config: CacheConfig) -> std::io::Result<Loader> {
    if config.max_bytes == 0 {
        return Ok(Loader { stop: None, thread: None });
    }
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let mut state = LoaderState { sig: None, reread_until: None, last_read: None };
    state.tick(&store, &shared, config);
    let thread = std::thread::Builder::new().name("tars-config-cache".into()).spawn(move || {
        while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(config.poll) {
            state.tick(&store, &shared, config);
        }
    })?;
    Ok(Loader { stop: Some(tx), thread: Some(thread) })
}

struct LoaderState {
    sig: Option<String>,
    /// Until when every poll reads the rows (for a while after a change).
    reread_until: Option<Instant>,
    last_read: Option<Instant>,
}

impl LoaderState {
    fn tick(&mut self, store: &Store, shared: &Shared, config: CacheConfig) {
        shared.polls.fetch_add(1, Ordering::Relaxed);
        let sig = match store.run_blocking(signature) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "config cache: cannot read the tables' signature; serving the last load");
                shared.set_error(Some(e.to_string()));
                return;
            }
        };
        let changed = self.sig.as_deref() != Some(sig.as_str());
        let due = self.last_read.is_none_or(|t| t.elapsed() >= config.reload);
        let rereading = self.reread_until.is_some_and(|t| Instant::now() < t);
        if !(changed || rereading || due) {
            return;
        }
        let max = config.max_bytes;
        match store.run_blocking(move |s| read_all(s, max)) {
            Ok(Ok(files)) => {
                shared.loads.fetch_add(1, Ordering::Relaxed);
                shared.publish(Snapshot::Loaded(Arc::new(files)));
                shared.set_error(None);
                if changed {
                    self.reread_until = Some(Instant::now() + REREAD_AFTER_CHANGE);
                }
                self.sig = Some(sig);
                self.last_read = Some(Instant::now());
            }
            Ok(Err(bytes)) => {
                if !matches!(shared.snapshot(), Snapshot::TooLarge { .. }) {
                    tracing::warn!(bytes, budget = max, "config cache: the config tables exceed /tars/cache<maxMB>; reading the database for every call");
                }
                shared.publish(Snapshot::TooLarge { bytes });
                self.sig = Some(sig);
                self.last_read = Some(Instant::now());
            }
            Err(e) => {
                tracing::warn!(error = %e, "config cache: cannot read the config tables; serving the last load");
                shared.set_error(Some(e.to_string()));
            }
        }
    }
}
