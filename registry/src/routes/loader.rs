//! The loader: one thread per registry process that asks the database what changed and
//! publishes the difference to the shards.
//!
//! Every `changePollMs` (200 ms) it reads, in one round trip of small queries: the database
//! clock; the servers whose `registry_timestamp` moved since the last poll (with a few
//! seconds' overlap, because a timestamp is taken when a statement runs, not when it
//! commits); `t_registry_info`; and the group tables. A delete moves no timestamp, so every
//! `deletePollMs` (500 ms) the same round trip also reads the row count and id sum of
//! `t_server_conf` and `t_adapter_conf`. That is a scan of both tables (about 30 ms of
//! MariaDB at 100k + 100k rows), too dear for every poll. When a count or id sum moved, rows
//! were inserted or deleted somewhere: per-server fingerprints find which servers. Only changed servers' rows are fetched, and
//! only changed servants are rebuilt and published. A full reload runs every
//! `loadObjectsInterval2` as a safety net and is diffed the same way.
//!
//! The first load happens before the registry serves. If the database does not answer then,
//! the snapshot file (if configured) is served instead and the loader keeps trying.
//! A database that fails later leaves the routes as they were.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tars_sql::{params, Dialect, Row, Session, Store, StoreError, Value};

use super::hub::RouteHub;
use super::master::{by_server, Fingerprint, Master, ServerKey};
use super::snapshot;
use super::table::{GroupRule, PriorityRow, RouteRow};
use crate::RegistryConfig;

/// Seconds of overlap between consecutive change queries.
const OVERLAP_SECS: i64 = 3;
/// Servers fetched per statement.
const KEYS_PER_QUERY: usize = 100;
/// The snapshot is rewritten at most this often.
const SNAPSHOT_EVERY: Duration = Duration::from_secs(1);

const ROW_COLUMNS: &str = "s.id, COALESCE(a.id, 0), COALESCE(s.application, ''), COALESCE(s.server_name, ''), \
     s.node_name, COALESCE(a.servant, ''), COALESCE(a.endpoint, ''), COALESCE(s.enable_group, 'N'), \
     s.setting_state, s.present_state, s.flow_state, s.enable_set, COALESCE(s.set_name, ''), \
     COALESCE(s.set_area, ''), COALESCE(s.set_group, ''), COALESCE(s.ip_group_name, ''), s.bak_flag \
     FROM t_server_conf s LEFT JOIN t_adapter_conf a ON a.application = s.application \
     AND a.server_name = s.server_name AND a.node_name = s.node_name";

/// What the loader reports, for the `tars.routes` admin command and tests.
#[derive(Debug, Default)]
pub struct LoaderStatus {
    /// Whether the last poll reached the database.
    pub db_ok: AtomicBool,
    /// Whether the routes came from the snapshot and no database load has succeeded since.
    pub from_snapshot: AtomicBool,
    /// Polls that succeeded.
    pub polls: AtomicU64,
    /// Full loads that succeeded.
    pub full_loads: AtomicU64,
    /// The last database error, password-free.
    pub last_error: Mutex<Option<String>>,
}

/// The running loader. Dropping it stops the thread (after a final snapshot write).
#[derive(Debug)]
pub struct LoaderHandle {
    /// Dropping it stops the thread; a message asks for a poll now.
    stop: Option<mpsc::Sender<mpsc::Sender<()>>>,
    thread: Option<JoinHandle<()>>,
    /// What the loader reports.
    pub status: Arc<LoaderStatus>,
}

impl LoaderHandle {
    /// Polls the database now and waits (at most `wait`) for that poll to finish: the
    /// registry calls it once it has published its own objects, so they resolve as soon as
    /// it serves instead of one poll interval later.
    pub fn poll_now(&self, wait: Duration) {
        let Some(tx) = &self.stop else { return };
        let (done_tx, done_rx) = mpsc::channel();
        if tx.send(done_tx).is_ok() {
            let _ = done_rx.recv_timeout(wait);
        }
    }
}

impl Drop for LoaderHandle {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Loads the routes once (database, else snapshot), publishes them to `hub`, and starts the
/// loader thread.
pub fn start(store: Store, hub: Arc<RouteHub>, config: &RegistryConfig) -> std::io::Result<LoaderHandle> {
    let status = Arc::new(LoaderStatus::default());
    let mut loader = Loader {
        store,
        hub,
        status: status.clone(),
        master: Master::default(),
        snapshot_path: config.snapshot_path.clone(),
        full_every: config.full_reload_interval,
        delete_every: config.delete_poll,
        totals_at: None,
        recover_protect: config.recover_protect.then_some(config.recover_protect_rate),
        since: None,
        totals: None,
        last_full: None,
        snapshot_dirty: false,
        snapshot_written: None,
        db_now: String::new(),
        reported_bad: BTreeSet::new(),
    };
    if let Err(e) = loader.full_load() {
        loader.failed(&e);
        loader.load_snapshot();
    }
    let (tx, rx) = mpsc::channel::<mpsc::Sender<()>>();
    let poll = config.change_poll;
    let thread = std::thread::Builder::new().name("tars-registry-loader".into()).spawn(move || {
        loop {
            let done = match rx.recv_timeout(poll) {
                Ok(done) => Some(done),
                Err(mpsc::RecvTimeoutError::Timeout) => None,
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            };
            loader.tick();
            if let Some(done) = done {
                let _ = done.send(());
            }
        }
        loader.write_snapshot(true);
    })?;
    Ok(LoaderHandle { stop: Some(tx), thread: Some(thread), status })
}

/// The loader thread's state. Lives on the loader thread only.
struct Loader {
    store: Store,
    hub: Arc<RouteHub>,
    status: Arc<LoaderStatus>,
    master: Master,
    snapshot_path: Option<PathBuf>,
    full_every: Duration,
    /// How often the totals are compared (they cost a scan of both tables).
    delete_every: Duration,
    /// When the totals were last read.
    totals_at: Option<Instant>,
    recover_protect: Option<u32>,
    /// Database time the next change query starts from.
    since: Option<String>,
    /// `(count, id sum)` of t_server_conf and t_adapter_conf at the last check.
    totals: Option<Fingerprint>,
    last_full: Option<Instant>,
    snapshot_dirty: bool,
    snapshot_written: Option<Instant>,
    db_now: String,
    reported_bad: BTreeSet<String>,
}

/// What one poll read.
struct Poll {
    now: String,
    since_next: String,
    changed: Vec<ServerKey>,
    registry: Vec<RouteRow>,
    rules: Vec<GroupRule>,
    priorities: Vec<PriorityRow>,
}

impl Loader {
    fn tick(&mut self) {
        let full_due = self.last_full.is_none_or(|t| t.elapsed() >= self.full_every) || self.since.is_none();
        let result = if full_due { self.full_load() } else { self.incremental() };
        match result {
            Ok(()) => {
                if !self.status.db_ok.swap(true, Ordering::AcqRel) {
                    tracing::info!("registry: database answers again; routes are current");
                }
                self.status.polls.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => self.failed(&e),
        }
        self.write_snapshot(false);
    }

    fn failed(&self, e: &StoreError) {
        if self.status.db_ok.swap(false, Ordering::AcqRel) || self.status.polls.load(Ordering::Relaxed) == 0 {
            tracing::warn!(error = %e, "registry: cannot read routes from the database; answering from the last ones");
        }
        *self.status.last_error.lock().unwrap_or_else(PoisonError::into_inner) = Some(e.to_string());
    }

    fn full_load(&mut self) -> Result<(), StoreError> {
        let protect = self.recover_protect;
        let dialect = self.store.dialect();
        let (poll, totals, rows, inactive_rate) = self.store.run_blocking(move |s| {
            let poll = read_poll(s, dialect, None)?;
            let totals = read_totals(s)?;
            let rows = read_rows(s, &[])?;
            let rate = match protect {
                Some(_) => Some(inactive_node_percent(s)?),
                None => None,
            };
            Ok((poll, totals, rows, rate))
        })?;
        if let (Some(limit), Some(rate)) = (protect, inactive_rate) {
            if rate > i64::from(limit) && self.master.servant_count() > 0 {
                tracing::warn!(
                    rate,
                    limit,
                    "registry: recover protection: too many inactive nodes; keeping the routes"
                );
                self.last_full = Some(Instant::now());
                return Ok(());
            }
        }
        let mut fresh = by_server(rows);
        let gone: Vec<ServerKey> = self.master.server_keys().filter(|k| !fresh.contains_key(*k)).cloned().collect();
        for k in gone {
            self.master.set_server(k, Vec::new());
        }
        for (k, rows) in std::mem::take(&mut fresh) {
            self.master.set_server(k, rows);
        }
        self.apply_poll_tables(&poll);
        self.since = Some(poll.since_next);
        self.totals = Some(totals);
        self.totals_at = Some(Instant::now());
        self.db_now = poll.now;
        self.last_full = Some(Instant::now());
        self.publish();
        self.status.full_loads.fetch_add(1, Ordering::Relaxed);
        self.status.from_snapshot.store(false, Ordering::Release);
        self.status.db_ok.store(true, Ordering::Release);
        Ok(())
    }

    fn incremental(&mut self) -> Result<(), StoreError> {
        let dialect = self.store.dialect();
        let since = self.since.clone();
        let check_totals = self.totals_at.is_none_or(|t| t.elapsed() >= self.delete_every);
        let (poll, totals) = self.store.run_blocking(move |s| {
            let poll = read_poll(s, dialect, since.as_deref())?;
            let totals = if check_totals { Some(read_totals(s)?) } else { None };
            Ok((poll, totals))
        })?;
        let mut changed: BTreeSet<ServerKey> = poll.changed.iter().cloned().collect();
        if totals.is_some() && totals != self.totals {
            let known = self.master.fingerprints();
            let actual = self.store.run_blocking(read_fingerprints)?;
            for (k, fp) in &actual {
                if known.get(k) != Some(fp) {
                    changed.insert(k.clone());
                }
            }
            changed.extend(known.into_keys().filter(|k| !actual.contains_key(k)));
        }
        if !changed.is_empty() {
            let keys: Vec<ServerKey> = changed.iter().cloned().collect();
            let rows = self.store.run_blocking(move |s| {
                let mut out = Vec::new();
                for chunk in keys.chunks(KEYS_PER_QUERY) {
                    out.extend(read_rows(s, chunk)?);
                }
                Ok(out)
            })?;
            let mut fetched = by_server(rows);
            for k in changed {
                let rows = fetched.remove(&k).unwrap_or_default();
                self.master.set_server(k, rows);
            }
        }
        self.apply_poll_tables(&poll);
        self.since = Some(poll.since_next);
        if totals.is_some() {
            self.totals = totals;
            self.totals_at = Some(Instant::now());
        }
        self.db_now = poll.now;
        self.publish();
        Ok(())
    }

    fn apply_poll_tables(&mut self, poll: &Poll) {
        self.master.set_registry(poll.registry.clone());
        self.master.set_groups(poll.rules.clone(), poll.priorities.clone());
    }

    fn publish(&mut self) {
        let (delta, bad) = self.master.take_delta();
        for b in bad {
            if self.reported_bad.insert(b.to_string()) {
                tracing::warn!("registry: skipping a route: {b}");
            }
        }
        if !delta.is_empty() {
            tracing::debug!(
                servants = delta.servants.len(),
                groups = delta.groups.is_some(),
                "registry: routes changed"
            );
            self.hub.publish(delta);
            self.snapshot_dirty = true;
        }
    }

    fn load_snapshot(&mut self) {
        let Some(path) = self.snapshot_path.clone() else {
            tracing::warn!("registry: no route snapshot configured (/tars/objcache<FilePath>); serving no routes until the database answers");
            return;
        };
        match snapshot::read(&path) {
            Ok(s) => {
                for (k, rows) in by_server(s.servers) {
                    self.master.set_server(k, rows);
                }
                self.master.set_registry(s.registry);
                self.master.set_groups(s.rules, s.priorities);
                self.publish();
                self.snapshot_dirty = false;
                self.status.from_snapshot.store(true, Ordering::Release);
                tracing::warn!(path = %path.display(), saved_at = %s.saved_at, servants = self.master.servant_count(),
                    "registry: answering from the route snapshot until the database answers");
            }
            Err(e) => tracing::warn!("registry: {e}; serving no routes until the database answers"),
        }
    }

    fn write_snapshot(&mut self, force: bool) {
        let Some(path) = &self.snapshot_path else { return };
        if !self.snapshot_dirty || (!force && self.snapshot_written.is_some_and(|t| t.elapsed() < SNAPSHOT_EVERY)) {
            return;
        }
        let (servers, registry, rules, priorities) = self.master.raw();
        let bytes = snapshot::encode(&servers, registry, rules, priorities, &self.db_now);
        match snapshot::write_atomically(path, &bytes) {
            Ok(()) => self.snapshot_dirty = false,
            Err(e) => tracing::warn!("registry: {e}"),
        }
        self.snapshot_written = Some(Instant::now());
    }
}

fn text(row: &Row, i: usize) -> Result<String, StoreError> {
    row.get::<Option<String>>(i).map(Option::unwrap_or_default)
}

fn read_poll(s: &mut dyn Session, dialect: Dialect, since: Option<&str>) -> Result<Poll, StoreError> {
    let clock = s.query(
        &format!("SELECT {}, {}", dialect.now(), dialect.seconds_before(dialect.now())),
        &params![OVERLAP_SECS],
    )?;
    let clock = clock.first().ok_or_else(|| StoreError::Column { column: "now".into(), reason: "no row".into() })?;
    let (now, since_next) = (text(clock, 0)?, text(clock, 1)?);
    let changed = match since {
        None => Vec::new(),
        Some(since) => s
            .query(
                "SELECT COALESCE(application, ''), COALESCE(server_name, '') FROM t_server_conf WHERE registry_timestamp >= ? \
                 UNION SELECT COALESCE(application, ''), COALESCE(server_name, '') FROM t_adapter_conf WHERE registry_timestamp >= ?",
                &params![since, since],
            )?
            .iter()
            .map(|r| Ok((text(r, 0)?, text(r, 1)?)))
            .collect::<Result<_, StoreError>>()?,
    };
    let registry = s
        .query(
            "SELECT servant, endpoint, COALESCE(enable_group, 'N'), COALESCE(present_state, 'inactive'), tars_version \
             FROM t_registry_info ORDER BY locator_id, servant",
            &[],
        )?
        .iter()
        .map(registry_row)
        .collect::<Result<_, _>>()?;
    let rules = s
        .query("SELECT group_id, COALESCE(allow_ip_rule, ''), COALESCE(group_name, '') FROM t_server_group_rule ORDER BY group_id", &[])?
        .iter()
        .map(|r| Ok(GroupRule { group_id: r.get(0)?, allow_ip_rule: text(r, 1)?, group_name: text(r, 2)? }))
        .collect::<Result<_, StoreError>>()?;
    let priorities = s
        .query("SELECT COALESCE(group_list, ''), station FROM t_group_priority ORDER BY list_order, id", &[])?
        .iter()
        .map(|r| Ok(PriorityRow { group_list: text(r, 0)?, station: text(r, 1)? }))
        .collect::<Result<_, StoreError>>()?;
    Ok(Poll { now, since_next, changed, registry, rules, priorities })
}

/// A `t_registry_info` row as a route row, as upstream maps it: present state doubles as
/// setting state, flow is active, no set, not a standby, and `tars_version` stands in for
/// application, server and node.
fn registry_row(r: &Row) -> Result<RouteRow, StoreError> {
    let present = text(r, 3)?;
    let version = text(r, 4)?;
    Ok(RouteRow {
        servant: text(r, 0)?,
        endpoint: text(r, 1)?,
        enable_group: text(r, 2)?,
        setting_state: present.clone(),
        present_state: present,
        flow_state: "active".into(),
        enable_set: "N".into(),
        application: version.clone(),
        server_name: version.clone(),
        node_name: version,
        ..RouteRow::default()
    })
}

fn route_row(r: &Row) -> Result<RouteRow, StoreError> {
    Ok(RouteRow {
        server_id: r.get(0)?,
        adapter_id: r.get(1)?,
        application: text(r, 2)?,
        server_name: text(r, 3)?,
        node_name: text(r, 4)?,
        servant: text(r, 5)?,
        endpoint: text(r, 6)?,
        enable_group: text(r, 7)?,
        setting_state: text(r, 8)?,
        present_state: text(r, 9)?,
        flow_state: text(r, 10)?,
        enable_set: text(r, 11)?,
        set_name: text(r, 12)?,
        set_area: text(r, 13)?,
        set_group: text(r, 14)?,
        ip_group_name: text(r, 15)?,
        bak_flag: r.get::<Option<i32>>(16)?.unwrap_or(0),
    })
}

/// Rows of the servers `keys`, or of every server when `keys` is empty.
/// `(row count, id sum)` of t_server_conf and t_adapter_conf: these move on every insert
/// and delete. One scan per table (of its narrowest index, on MySQL).
fn read_totals(s: &mut dyn Session) -> Result<Fingerprint, StoreError> {
    let mut one = |table: &str| -> Result<(i64, i64), StoreError> {
        let rows = s.query(&format!("SELECT COUNT(*), COALESCE(SUM(id), 0) FROM {table}"), &[])?;
        let r =
            rows.first().ok_or_else(|| StoreError::Column { column: "COUNT(*)".into(), reason: "no row".into() })?;
        Ok((r.get(0)?, r.get(1)?))
    };
    Ok((one("t_server_conf")?, one("t_adapter_conf")?))
}

fn read_rows(s: &mut dyn Session, keys: &[ServerKey]) -> Result<Vec<RouteRow>, StoreError> {
    let mut sql = format!("SELECT {ROW_COLUMNS}");
    let mut params: Vec<Value> = Vec::with_capacity(keys.len() * 2);
    if !keys.is_empty() {
        let one = "(s.application = ? AND s.server_name = ?)";
        sql.push_str(" WHERE ");
        sql.push_str(&vec![one; keys.len()].join(" OR "));
        for (app, server) in keys {
            params.push(app.clone().into());
            params.push(server.clone().into());
        }
    }
    s.query(&sql, &params)?.iter().map(route_row).collect()
}

/// Every server's fingerprint as the database sees it (adapters counted only where their
/// server row exists, as the route query joins them).
fn read_fingerprints(s: &mut dyn Session) -> Result<HashMap<ServerKey, Fingerprint>, StoreError> {
    let mut out: HashMap<ServerKey, Fingerprint> = HashMap::new();
    let servers = s.query(
        "SELECT COALESCE(application, ''), COALESCE(server_name, ''), COUNT(*), SUM(id) FROM t_server_conf \
         GROUP BY application, server_name",
        &[],
    )?;
    for r in &servers {
        out.entry((text(r, 0)?, text(r, 1)?)).or_default().0 = (r.get(2)?, r.get(3)?);
    }
    let adapters = s.query(
        "SELECT COALESCE(s.application, ''), COALESCE(s.server_name, ''), COUNT(*), SUM(a.id) FROM t_adapter_conf a \
         JOIN t_server_conf s ON a.application = s.application AND a.server_name = s.server_name AND a.node_name = s.node_name \
         GROUP BY s.application, s.server_name",
        &[],
    )?;
    for r in &adapters {
        out.entry((text(r, 0)?, text(r, 1)?)).or_default().1 = (r.get(2)?, r.get(3)?);
    }
    Ok(out)
}

/// Percentage of `t_node_info` rows that are inactive (recover protection).
fn inactive_node_percent(s: &mut dyn Session) -> Result<i64, StoreError> {
    let rows = s.query(
        "SELECT COUNT(*), COALESCE(SUM(CASE present_state WHEN 'inactive' THEN 1 ELSE 0 END), 0) FROM t_node_info",
        &[],
    )?;
    let Some(r) = rows.first() else { return Ok(0) };
    let (all, inactive): (i64, i64) = (r.get(0)?, r.get(1)?);
    Ok(if all == 0 { 0 } else { inactive * 100 / all })
}
