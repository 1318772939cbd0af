//! The loader: one thread per registry process that asks the database what changed and
//! publishes the difference to the shards.
//!
//! Every `changePollMs` (200 ms) it reads, in one round trip of small queries inside one read
//! snapshot: the database clock; the rows of `t_server_conf` and `t_adapter_conf` stamped
//! (`registry_timestamp`) since the last poll, with a few seconds' overlap so that two updates
//! of a row within one second (one stamp) are both read; `t_registry_info`; the group tables.
//!
//! A stamp is taken when a statement runs, not when it commits: a transaction that commits
//! later than the overlap, a stamp set by hand to the past, and a delete are all invisible to
//! that query. So every `deletePollMs` (500 ms) the same round trip also reads, per table,
//! the row count, id sum and stamp sum, and compares them with the sums of the stamps the
//! loader has seen ([`super::stamps`]). They differ only when something was missed; then one
//! read of every row's id, server and stamp names exactly the servers that changed. Cost: the
//! change query is an index range scan of the last seconds; the sums are one scan of each
//! table's `registry_timestamp` index (which covers the id), about 30k index entries at 10k
//! servers with two adapters each; the read of every stamp (30k rows of four columns) runs
//! only after a delete, a late commit or a hand-set stamp, never after ordinary updates. The
//! one change no stamp can show, a late commit whose stamp equals the one already seen (two
//! updates of one row in one second, the second committing more than the overlap later),
//! waits for the full reload.
//!
//! Only changed servers' rows are fetched, and only changed servants are rebuilt and
//! published. A full reload runs every `loadObjectsInterval2` as a safety net and is diffed
//! the same way.
//!
//! Recover protection (`recoverProtect`, `recoverProtectRate` percent): a full reload is
//! refused while more than that share of `t_node_info` rows is inactive (upstream's rule). A
//! poll's delta is refused when the endpoints it would take off the active lists (made
//! inactive or deleted) are more than that share of every endpoint active in the routes
//! served (server rows; the registry's own rows do not count). Then the servers that would
//! lose endpoints keep the routes they have; the rest of the delta is applied. Their rows are
//! held and judged again with every poll: applied once the share is no longer exceeded (nodes
//! come back, other endpoints appear), or by the next full reload that upstream's node rule
//! lets through.
//!
//! The first load happens before the registry serves. If the database does not answer then,
//! the snapshot file (if configured) is served instead and the loader keeps trying.
//! A database that fails later leaves the routes as they were.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tars_sql::{params, Dialect, Row, Session, Store, StoreError, Value};

use super::hub::RouteHub;
use super::master::{by_server, Master, ServerKey};
use super::snapshot;
use super::stamps::{Stamp, Stamps, Table, TableTotals, Totals};
use super::table::{GroupRule, PriorityRow, RouteRow};
use crate::RegistryConfig;

/// Seconds of overlap between consecutive change queries: rows stamped this recently are read
/// again by the next poll, since a second update within the same second keeps the stamp.
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
    /// Reads of every row's stamp, made because the database's sums differed from the
    /// stamps seen (a delete, a late commit, a stamp set by hand).
    pub stamp_scans: AtomicU64,
    /// Servers whose changes recover protection holds back now.
    pub held_servers: AtomicU64,
    /// Polls whose delta recover protection refused (in part).
    pub deltas_refused: AtomicU64,
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
        stamps: Stamps::default(),
        pending: BTreeSet::new(),
        held: BTreeMap::new(),
        snapshot_path: config.snapshot_path.clone(),
        full_every: config.full_reload_interval,
        delete_every: config.delete_poll,
        totals_at: None,
        recover_protect: config.recover_protect.then_some(config.recover_protect_rate),
        since: None,
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
    /// Every route row's stamp as last read.
    stamps: Stamps,
    /// Servers known to have changed whose rows are not fetched yet: a poll that fails after
    /// recording their stamps must not forget them.
    pending: BTreeSet<ServerKey>,
    /// Rows recover protection holds back, by server.
    held: BTreeMap<ServerKey, Vec<RouteRow>>,
    snapshot_path: Option<PathBuf>,
    full_every: Duration,
    /// How often the sums are compared (they cost a scan of both tables' stamp index).
    delete_every: Duration,
    /// When the sums were last compared.
    totals_at: Option<Instant>,
    recover_protect: Option<u32>,
    /// Database time the next change query starts from.
    since: Option<String>,
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
    changed: Vec<Stamp>,
    totals: Option<TableTotals>,
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
        let protect = self.recover_protect.filter(|_| self.master.servant_count() > 0);
        let dialect = self.store.dialect();
        let loaded = self.store.run_blocking(move |s| {
            in_snapshot(s, |s| {
                if let Some(limit) = protect {
                    let rate = inactive_node_percent(s)?;
                    if rate > i64::from(limit) {
                        return Ok(Err((rate, limit)));
                    }
                }
                let poll = read_poll(s, dialect, None, false)?;
                // Stamps before rows: a row changing between the two reads is then seen as
                // changed by a later poll, never taken as current with old contents.
                let stamps = read_stamps(s, dialect, None)?;
                let rows = read_rows(s, &[])?;
                Ok(Ok((poll, stamps, rows)))
            })
        })?;
        let (poll, stamps, rows) = match loaded {
            Ok(l) => l,
            Err((rate, limit)) => {
                tracing::warn!(
                    rate,
                    limit,
                    "registry: recover protection: too many inactive nodes; keeping the routes"
                );
                self.last_full = Some(Instant::now());
                return Ok(());
            }
        };
        self.stamps.replace(stamps);
        self.pending.clear();
        if !self.held.is_empty() {
            tracing::info!(
                servers = self.held.len(),
                "registry: recover protection: the full reload applies the held changes"
            );
            self.set_held(BTreeMap::new());
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
        let mut poll = self
            .store
            .run_blocking(move |s| in_snapshot(s, |s| read_poll(s, dialect, since.as_deref(), check_totals)))?;
        let seen = self.stamps.observe(std::mem::take(&mut poll.changed));
        self.pending.extend(seen);
        if let Some(db) = poll.totals {
            if db != self.stamps.totals() {
                let all = self.store.run_blocking(move |s| read_stamps(s, dialect, None))?;
                let changed = self.stamps.replace(all);
                tracing::debug!(servers = changed.len(), "registry: stamp sums differed; read every stamp");
                self.status.stamp_scans.fetch_add(1, Ordering::Relaxed);
                self.pending.extend(changed);
            }
            self.totals_at = Some(Instant::now());
        }
        if !self.pending.is_empty() {
            let keys: Vec<ServerKey> = self.pending.iter().cloned().collect();
            let rows = self.store.run_blocking(move |s| {
                let mut out = Vec::new();
                for chunk in keys.chunks(KEYS_PER_QUERY) {
                    out.extend(read_rows(s, chunk)?);
                }
                Ok(out)
            })?;
            let mut fetched = by_server(rows);
            let changes: BTreeMap<ServerKey, Vec<RouteRow>> = std::mem::take(&mut self.pending)
                .into_iter()
                .map(|k| {
                    let rows = fetched.remove(&k).unwrap_or_default();
                    (k, rows)
                })
                .collect();
            self.apply_servers(changes);
        } else if !self.held.is_empty() {
            // Other changes may have made room for the held ones.
            self.apply_servers(BTreeMap::new());
        }
        self.apply_poll_tables(&poll);
        self.since = Some(poll.since_next);
        self.db_now = poll.now;
        self.publish();
        Ok(())
    }

    /// Applies a poll's server changes to the master, except what recover protection holds
    /// (see the module docs for the rule).
    fn apply_servers(&mut self, mut changes: BTreeMap<ServerKey, Vec<RouteRow>>) {
        if let Some(rate) = self.recover_protect {
            let before: BTreeSet<ServerKey> = self.held.keys().cloned().collect();
            // Anything fetched now is newer than the held rows.
            for (k, rows) in std::mem::take(&mut self.held) {
                changes.entry(k).or_insert(rows);
            }
            let losing: Vec<(ServerKey, usize)> = changes
                .iter()
                .map(|(k, rows)| (k.clone(), self.master.active_lost(k, rows)))
                .filter(|(_, lost)| *lost > 0)
                .collect();
            let lost: usize = losing.iter().map(|(_, n)| n).sum();
            let active = if lost > 0 { self.master.active_endpoints() } else { 0 };
            let mut held = BTreeMap::new();
            if lost > 0 && lost.saturating_mul(100) > usize::try_from(rate).unwrap_or(100).saturating_mul(active) {
                for (k, _) in losing {
                    if let Some(rows) = changes.remove(&k) {
                        held.insert(k, rows);
                    }
                }
                self.status.deltas_refused.fetch_add(1, Ordering::Relaxed);
                // A poll runs every 200 ms: say so when protection engages and when it holds
                // more servers, not on every poll it goes on holding.
                if held.keys().any(|k| !before.contains(k)) {
                    tracing::warn!(
                        lost,
                        active,
                        rate,
                        servers = held.len(),
                        "registry: recover protection: a change would take too many active endpoints away; keeping those servers' routes"
                    );
                }
            } else if !before.is_empty() {
                tracing::info!(servers = before.len(), "registry: recover protection: the held changes are applied");
            }
            self.set_held(held);
        }
        for (k, rows) in changes {
            self.master.set_server(k, rows);
        }
    }

    fn set_held(&mut self, held: BTreeMap<ServerKey, Vec<RouteRow>>) {
        self.held = held;
        self.status.held_servers.store(self.held.len() as u64, Ordering::Relaxed);
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

/// Runs `f`'s reads in one read snapshot, so the stamps, sums and rows it reads belong to one
/// moment and the sums match the stamps unless something was really missed. MySQL: InnoDB's
/// REPEATABLE READ snapshot (under READ COMMITTED the reads are merely less consistent, and a
/// mismatch costs one extra stamp read). SQLite: a deferred `BEGIN` takes no lock; in WAL mode
/// its first read fixes the snapshot.
fn in_snapshot<T>(
    s: &mut dyn Session,
    f: impl FnOnce(&mut dyn Session) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let begin = match s.dialect() {
        Dialect::Mysql => "START TRANSACTION WITH CONSISTENT SNAPSHOT",
        Dialect::Sqlite => "BEGIN",
    };
    tars_sql::transaction_from(s, begin, f)
}

fn text(row: &Row, i: usize) -> Result<String, StoreError> {
    row.get::<Option<String>>(i).map(Option::unwrap_or_default)
}

/// `registry_timestamp` as whole seconds, 0 for NULL: the same expression in every query, so
/// the database's sums and the loader's agree.
fn stamp_seconds(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Mysql => "COALESCE(UNIX_TIMESTAMP(registry_timestamp), 0)",
        Dialect::Sqlite => "COALESCE(CAST(strftime('%s', registry_timestamp) AS INTEGER), 0)",
    }
}

const STAMPED: [(Table, &str); 2] = [(Table::Server, "t_server_conf"), (Table::Adapter, "t_adapter_conf")];

/// Every row's stamp, or (with `since`) those of the rows stamped at or after `since`.
fn read_stamps(s: &mut dyn Session, dialect: Dialect, since: Option<&str>) -> Result<Vec<Stamp>, StoreError> {
    let mut out = Vec::new();
    for (table, name) in STAMPED {
        let mut sql = format!(
            "SELECT id, COALESCE(application, ''), COALESCE(server_name, ''), {} FROM {name}",
            stamp_seconds(dialect)
        );
        let mut params = Vec::new();
        if let Some(since) = since {
            sql.push_str(" WHERE registry_timestamp >= ?");
            params.push(Value::from(since));
        }
        for r in s.query(&sql, &params)? {
            out.push(Stamp { table, id: r.get(0)?, key: (text(&r, 1)?, text(&r, 2)?), at: r.get(3)? });
        }
    }
    Ok(out)
}

/// The database's [`Totals`] of both tables: one scan of each table's stamp index, which
/// holds the id too.
fn read_totals(s: &mut dyn Session, dialect: Dialect) -> Result<TableTotals, StoreError> {
    let mut out = [Totals::default(); 2];
    for (table, name) in STAMPED {
        let sql =
            format!("SELECT COUNT(*), COALESCE(SUM(id), 0), COALESCE(SUM({}), 0) FROM {name}", stamp_seconds(dialect));
        let rows = s.query(&sql, &[])?;
        let r =
            rows.first().ok_or_else(|| StoreError::Column { column: "COUNT(*)".into(), reason: "no row".into() })?;
        out[table as usize] = Totals { rows: r.get(0)?, ids: r.get(1)?, stamps: r.get(2)? };
    }
    Ok(out)
}

fn read_poll(
    s: &mut dyn Session,
    dialect: Dialect,
    since: Option<&str>,
    with_totals: bool,
) -> Result<Poll, StoreError> {
    let clock = s.query(
        &format!("SELECT {}, {}", dialect.now(), dialect.seconds_before(dialect.now())),
        &params![OVERLAP_SECS],
    )?;
    let clock = clock.first().ok_or_else(|| StoreError::Column { column: "now".into(), reason: "no row".into() })?;
    let (now, since_next) = (text(clock, 0)?, text(clock, 1)?);
    let changed = match since {
        None => Vec::new(),
        Some(since) => read_stamps(s, dialect, Some(since))?,
    };
    let totals = if with_totals { Some(read_totals(s, dialect)?) } else { None };
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
    Ok(Poll { now, since_next, changed, totals, registry, rules, priorities })
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
