//! The storage benchmark behind `tars-bench-store`: rows per second into the upstream hourly
//! stat table (`tars_stat_YYYYMMDDHH`: an 11-column primary key and 9 secondary indexes), by
//! write method.
//!
//! Methods: multi-row `INSERT` into MySQL/MariaDB at several rows per statement (all of one
//! measurement's rows in one transaction, which is what [`tars_sql::insert_rows`] does),
//! `LOAD DATA LOCAL INFILE` of the same rows in one transaction, and the embedded SQLite
//! backend with the same `insert_rows`. Within each repetition every method runs once (the
//! start of the order rotates per repetition), so slow drifts of a shared machine hit all of
//! them alike. Each measurement writes into a fresh, empty table (a fresh file on SQLite),
//! checks the affected-row count and `SELECT COUNT(*)` against the rows it wrote, then drops
//! the table.

use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use serde_json::json;
use tars_sql::schema::monitor;
use tars_sql::{
    create_table, insert_rows, insert_rows_in, load_rows, params, transaction, Dialect, InsertMode, Store, Value,
};

use crate::cpu;

/// The date and hour of every benchmark table: `tars_stat_2026112100_…`.
const TABLE_HOUR: &str = "2026112100";

/// A write method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Multi-row `INSERT` of `batch` rows per statement into MySQL, one transaction.
    MysqlInsert(usize),
    /// The same with tarsstat's upsert tail (`ON DUPLICATE KEY UPDATE` of the counters, as
    /// its writer sends it). Not in [`Method::all`].
    MysqlUpsert(usize),
    /// `LOAD DATA LOCAL INFILE` into MySQL, one statement, one transaction.
    MysqlLoad,
    /// Multi-row `INSERT` of `batch` rows per statement into SQLite, one transaction.
    SqliteInsert(usize),
}

impl Method {
    /// The default set: MySQL INSERT at 1, 10, 100, 1000 and 5000 rows per statement, LOAD
    /// DATA, and SQLite at 100 and 1000.
    pub fn all() -> Vec<Method> {
        vec![
            Method::MysqlInsert(1),
            Method::MysqlInsert(10),
            Method::MysqlInsert(100),
            Method::MysqlInsert(1000),
            Method::MysqlInsert(5000),
            Method::MysqlLoad,
            Method::SqliteInsert(100),
            Method::SqliteInsert(1000),
        ]
    }

    /// The backend it writes to.
    pub fn dialect(self) -> Dialect {
        match self {
            Method::MysqlInsert(_) | Method::MysqlUpsert(_) | Method::MysqlLoad => Dialect::Mysql,
            Method::SqliteInsert(_) => Dialect::Sqlite,
        }
    }

    /// Rows per statement as asked for (`None` for LOAD DATA: one statement).
    pub fn batch(self) -> Option<usize> {
        match self {
            Method::MysqlInsert(b) | Method::MysqlUpsert(b) | Method::SqliteInsert(b) => Some(b),
            Method::MysqlLoad => None,
        }
    }

    /// Rows per statement as sent: `insert_rows` caps a statement at the backend's limit of
    /// bound parameters (65,535 on MySQL, 32,766 on SQLite), i.e. 3449 and 1724 stat rows.
    pub fn rows_per_statement(self, rows: usize) -> usize {
        let cap = (self.dialect().max_params() / monitor::STAT_COLUMNS.len()).max(1);
        match self.batch() {
            Some(b) => b.clamp(1, cap).min(rows.max(1)),
            None => rows,
        }
    }

    /// Rows one measurement writes: `rows`, or a tenth of it at one row per statement (which
    /// is slow, and whose rate does not depend on the table's size at this scale).
    pub fn rows(self, rows: usize) -> usize {
        if self.batch() == Some(1) {
            (rows / 10).max(1)
        } else {
            rows.max(1)
        }
    }

    /// A name usable in a table name (`[a-z0-9_]`).
    fn tag(self) -> String {
        self.to_string().replace('-', "_")
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Method::MysqlInsert(b) => write!(f, "mysql-insert-{b}"),
            Method::MysqlUpsert(b) => write!(f, "mysql-upsert-{b}"),
            Method::MysqlLoad => f.write_str("mysql-load"),
            Method::SqliteInsert(b) => write!(f, "sqlite-insert-{b}"),
        }
    }
}

impl FromStr for Method {
    type Err = anyhow::Error;
    /// `mysql-insert-N`, `mysql-load` or `sqlite-insert-N`.
    fn from_str(s: &str) -> Result<Method> {
        let s = s.trim();
        let batch = |n: &str| -> Result<usize> {
            let b: usize = n.parse().map_err(|e| anyhow!("{s:?}: {e}"))?;
            if b == 0 {
                bail!("{s:?}: rows per statement must be at least 1");
            }
            Ok(b)
        };
        if s == "mysql-load" {
            Ok(Method::MysqlLoad)
        } else if let Some(n) = s.strip_prefix("mysql-insert-") {
            Ok(Method::MysqlInsert(batch(n)?))
        } else if let Some(n) = s.strip_prefix("mysql-upsert-") {
            Ok(Method::MysqlUpsert(batch(n)?))
        } else if let Some(n) = s.strip_prefix("sqlite-insert-") {
            Ok(Method::SqliteInsert(batch(n)?))
        } else {
            bail!("unknown method {s:?}: expected mysql-insert-N, mysql-upsert-N, mysql-load or sqlite-insert-N")
        }
    }
}

/// What the benchmark covers.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Rows per measurement (a tenth of it at one row per statement).
    pub rows: usize,
    /// Repetitions; every method runs once per repetition.
    pub reps: usize,
    /// Methods, in their order within the first repetition.
    pub methods: Vec<Method>,
    /// After each MySQL measurement, wait at most this long for InnoDB's dirty pages to be
    /// written (so the next one starts from a clean buffer pool).
    pub settle: Duration,
}

impl StoreConfig {
    /// The full run: 50,000 rows per measurement (5,000 at one row per statement), 3
    /// repetitions, every method.
    pub fn full() -> StoreConfig {
        StoreConfig { rows: 50_000, reps: 3, methods: Method::all(), settle: Duration::from_secs(5) }
    }

    /// A smoke run: 300 rows (30 at one row per statement), one repetition, no settling.
    pub fn quick() -> StoreConfig {
        StoreConfig { rows: 300, reps: 1, methods: Method::all(), settle: Duration::ZERO }
    }
}

/// One measurement.
#[derive(Debug, Clone)]
pub struct Run {
    /// The method.
    pub method: Method,
    /// The repetition (from 1).
    pub rep: usize,
    /// The table written.
    pub table: String,
    /// Rows written.
    pub rows: usize,
    /// Affected rows the backend reported.
    pub affected: u64,
    /// `SELECT COUNT(*)` of the table afterwards.
    pub counted: u64,
    /// Wall time of the write (from the start of the transaction to its commit, LOAD DATA's
    /// TSV encoding included).
    pub elapsed: Duration,
    /// CPU time of the database server over the write, when its pid is known (a private
    /// MariaDB).
    pub server_cpu: Option<Duration>,
    /// CPU time of this process over the write (on SQLite, the database engine's too).
    pub self_cpu: Option<Duration>,
}

impl Run {
    /// Rows per second.
    pub fn rows_per_s(&self) -> f64 {
        self.rows as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Server CPU in cores over the write.
    pub fn server_cores(&self) -> Option<f64> {
        self.server_cpu.map(|c| c.as_secs_f64() / self.elapsed.as_secs_f64().max(1e-9))
    }

    /// This process's CPU in cores over the write.
    pub fn self_cores(&self) -> Option<f64> {
        self.self_cpu.map(|c| c.as_secs_f64() / self.elapsed.as_secs_f64().max(1e-9))
    }

    /// One line for progress logs.
    pub fn line(&self, reps: usize) -> String {
        let cores = |c: Option<f64>| c.map_or_else(|| "–".to_owned(), |c| format!("{c:.2}"));
        format!(
            "rep {}/{reps} {:<20} {:>7} rows in {:>7.3} s = {:>9.0} rows/s (counted {}; cores: server {}, this process {})",
            self.rep,
            self.method.to_string(),
            self.rows,
            self.elapsed.as_secs_f64(),
            self.rows_per_s(),
            self.counted,
            cores(self.server_cores()),
            cores(self.self_cores())
        )
    }
}

/// Per method over its runs.
#[derive(Debug, Clone)]
pub struct Summary {
    /// The method.
    pub method: Method,
    /// Rows per measurement.
    pub rows: usize,
    /// Rows per statement as sent.
    pub rows_per_statement: usize,
    /// Median rows/s (the middle run; the upper middle of an even count).
    pub median: f64,
    /// Slowest run.
    pub min: f64,
    /// Fastest run.
    pub max: f64,
    /// `median` over the median of the fastest MySQL method.
    pub vs_best_mysql: Option<f64>,
    /// Median server CPU in cores over the writes (MySQL with a known server pid).
    pub server_cores: Option<f64>,
    /// Median CPU of this process in cores over the writes.
    pub self_cores: Option<f64>,
    /// Every run, in repetition order.
    pub runs: Vec<Run>,
}

impl Summary {
    /// As JSON.
    pub fn to_json(&self) -> serde_json::Value {
        let round = |v: f64| v.round();
        json!({
            "method": self.method.to_string(),
            "backend": self.method.dialect().name(),
            "batch": self.method.batch(),
            "rows_per_statement": self.rows_per_statement,
            "rows": self.rows,
            "reps": self.runs.len(),
            "rows_per_s": round(self.median),
            "min_rows_per_s": round(self.min),
            "max_rows_per_s": round(self.max),
            "ratio_to_best_mysql": self.vs_best_mysql.map(|r| (r * 1000.0).round() / 1000.0),
            "server_cores": self.server_cores.map(cores2),
            "self_cores": self.self_cores.map(cores2),
            "runs": self.runs.iter().map(|r| json!({
                "rep": r.rep,
                "table": r.table,
                "written": r.rows,
                "affected": r.affected,
                "counted": r.counted,
                "secs": (r.elapsed.as_secs_f64() * 1e4).round() / 1e4,
                "rows_per_s": round(r.rows_per_s()),
                "server_cores": r.server_cores().map(cores2),
                "self_cores": r.self_cores().map(cores2),
            })).collect::<Vec<_>>(),
        })
    }
}

fn cores2(c: f64) -> f64 {
    (c * 100.0).round() / 100.0
}

/// The median of the values present (`None` when there are none).
fn median_of(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let mut v: Vec<f64> = values.flatten().collect();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied()
}

/// Median, min and max rows/s of each method, with the ratio to the best MySQL median.
pub fn summarize(cfg: &StoreConfig, runs: &[Run]) -> Vec<Summary> {
    let mut out: Vec<Summary> = Vec::new();
    for &method in &cfg.methods {
        let mine: Vec<Run> = runs.iter().filter(|r| r.method == method).cloned().collect();
        if mine.is_empty() {
            continue;
        }
        let mut rates: Vec<f64> = mine.iter().map(Run::rows_per_s).collect();
        rates.sort_by(f64::total_cmp);
        let rows = mine[0].rows;
        out.push(Summary {
            method,
            rows,
            rows_per_statement: method.rows_per_statement(rows),
            median: rates[rates.len() / 2],
            min: rates[0],
            max: rates[rates.len() - 1],
            vs_best_mysql: None,
            server_cores: median_of(mine.iter().map(Run::server_cores)),
            self_cores: median_of(mine.iter().map(Run::self_cores)),
            runs: mine,
        });
    }
    let best = out.iter().filter(|s| s.method.dialect() == Dialect::Mysql).map(|s| s.median).fold(0.0, f64::max);
    if best > 0.0 {
        for s in &mut out {
            s.vs_best_mysql = Some(s.median / best);
        }
    }
    out
}

/// The summaries as a markdown table.
pub fn table(summaries: &[Summary]) -> String {
    let mut s = String::new();
    let reps = summaries.iter().map(|x| x.runs.len()).max().unwrap_or(0);
    let _ = writeln!(
        s,
        "| method | rows/statement (sent) | rows per run | rows/s median of {reps} | min | max | vs best MySQL | \
         server cores | this process cores |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|");
    let best = summaries
        .iter()
        .filter(|x| x.method.dialect() == Dialect::Mysql)
        .max_by(|a, b| a.median.total_cmp(&b.median))
        .map(|x| x.method);
    for x in summaries {
        let per_stmt = match x.method.batch() {
            None => format!("{} (one LOAD DATA)", x.rows_per_statement),
            Some(b) if b != x.rows_per_statement => format!("{b} → {}", x.rows_per_statement),
            Some(b) => b.to_string(),
        };
        let ratio = match (x.vs_best_mysql, Some(x.method) == best) {
            (_, true) => "1.00 (best)".to_owned(),
            (Some(r), false) => format!("{r:.2}"),
            (None, false) => "–".to_owned(),
        };
        let _ = writeln!(
            s,
            "| {} | {per_stmt} | {} | {} | {} | {} | {ratio} | {} | {} |",
            x.method,
            x.rows,
            thousands(x.median),
            thousands(x.min),
            thousands(x.max),
            cores(x.server_cores),
            cores(x.self_cores)
        );
    }
    s
}

fn cores(c: Option<f64>) -> String {
    c.map_or_else(|| "–".to_owned(), |c| format!("{c:.2}"))
}

/// `12345.6` as `12,346`.
fn thousands(v: f64) -> String {
    let n = v.round().max(0.0) as u64;
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

const APPS: &[&str] = &["TradeCenter", "PaymentCore", "UserProfile", "Logistics", "Marketing", "RiskControl"];
const SERVERS: &[&str] = &[
    "OrderQueryServer",
    "AccountLedgerServer",
    "CouponDispatchServer",
    "InventorySyncServer",
    "SessionGatewayServer",
    "NotificationServer",
    "PriceEngineServer",
];
const INTERFACES: &[&str] = &[
    "queryOrderDetailByUserId",
    "batchGetAccountBalance",
    "updateInventoryReserve",
    "checkRiskScoreForPayment",
    "listActiveCouponsByShop",
    "refreshSessionTicket",
    "sendTemplateNotification",
    "calculateFinalPrice",
];

/// splitmix64: a small deterministic generator, enough for shuffling and counters.
pub(crate) struct Mix(pub(crate) u64);

impl Mix {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn service_name(k: usize) -> String {
    format!("{}.{}", APPS[k % APPS.len()], SERVERS[(k / APPS.len()) % SERVERS.len()])
}

/// `n` stat rows (the values of [`monitor::STAT_COLUMNS`]) with distinct primary keys, in a
/// shuffled order, like the upstream StatServer's dump of its hash map: 12 five-minute slots
/// × 40 callers × 25 callees × as many interfaces as needed. Names are 20–30 characters.
pub fn stat_rows(n: usize, seed: u64) -> Vec<Vec<Value>> {
    let mut mix = Mix(seed);
    let mut rows = Vec::with_capacity(n);
    for i in 0..n {
        let slot = i % 12;
        let master = (i / 12) % 40;
        let slave = (i / 480) % 25;
        let iface = i / 12_000;
        let succ = 1 + mix.below(5000);
        let timeout = mix.below(3);
        let exce = mix.below(5);
        let (a, b, c, d) = (succ * 8 / 10, succ / 10, succ / 20, succ - succ * 8 / 10 - succ / 10 - succ / 20);
        let ave = 5 + mix.below(120);
        let max = ave * 4 + mix.below(800);
        rows.push(params![
            "2026-11-21",
            format!("00{:02}", slot * 5),
            format!("10.1.{}.{}", master / 200, master % 200 + 10),
            service_name(master),
            service_name(slave + 40),
            format!("{}{}", INTERFACES[iface % INTERFACES.len()], iface / INTERFACES.len()),
            "3.0.20",
            format!("10.1.{}.{}", master / 200, master % 200 + 10),
            format!("10.2.{}.{}", slave / 200, slave % 200 + 10),
            10_000 + (slave as i64 % 100),
            0i64,
            succ,
            timeout,
            exce,
            format!("100|{a},200|{b},500|{c},1000|{d}"),
            succ * ave,
            ave,
            max,
            1 + ave / 4
        ]);
    }
    for i in (1..rows.len()).rev() {
        let j = mix.below(i as u64 + 1) as usize;
        rows.swap(i, j);
    }
    rows
}

/// `url` with `params` (`k=v&k=v`) put before its own query parameters, so the URL's win.
pub fn with_params(url: &str, params: &str) -> String {
    match url.split_once('?') {
        Some((head, q)) if !q.is_empty() => format!("{head}?{params}&{q}"),
        Some((head, _)) => format!("{head}?{params}"),
        None => format!("{url}?{params}"),
    }
}

/// A database of the benchmark's own on a MySQL server, dropped on drop (a shared server's
/// URL database is left alone).
pub struct BenchDb {
    admin: Store,
    name: String,
    url: String,
}

impl BenchDb {
    /// Creates (after dropping any leftover) `bench_store_<pid>` on the server of `server_url`.
    pub fn create(server_url: &str) -> Result<BenchDb> {
        BenchDb::create_named(server_url, "store", "pool=1&op_timeout_ms=600000")
    }

    /// Creates (after dropping any leftover) `bench_<tag>_<pid>` on the server of
    /// `server_url`; its [`BenchDb::url`] carries `params` (`k=v&k=v`, the URL's own win).
    pub fn create_named(server_url: &str, tag: &str, params: &str) -> Result<BenchDb> {
        let name = format!("bench_{tag}_{}", std::process::id());
        let admin = Store::open(&with_params(server_url, "pool=1")).context("opening the MySQL URL")?;
        let sql = format!("DROP DATABASE IF EXISTS `{name}`; CREATE DATABASE `{name}` DEFAULT CHARSET utf8");
        admin.run_blocking(move |s| s.exec_script(&sql)).with_context(|| format!("creating database {name}"))?;
        let url = with_params(&tars_sql::url_with_database(server_url, &name), params);
        Ok(BenchDb { admin, name, url })
    }

    /// The URL of the benchmark database (one connection, 10-minute statement timeout).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Debug for BenchDb {
    // Not the URL: it carries the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BenchDb").field("name", &self.name).finish_non_exhaustive()
    }
}

impl Drop for BenchDb {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS `{}`", self.name);
        if let Err(e) = self.admin.run_blocking(move |s| s.exec_script(&sql)) {
            eprintln!("tars-bench: could not drop database {}: {e}", self.name);
        }
    }
}

/// Where the measurements write.
#[derive(Debug)]
pub struct Targets {
    /// The MySQL benchmark database (needed by MySQL methods).
    pub mysql: Option<Store>,
    /// The pid of the MySQL server, when it runs here (for its CPU time).
    pub mysql_pid: Option<u32>,
    /// The directory for the SQLite files (needed by SQLite methods).
    pub sqlite_dir: Option<PathBuf>,
}

fn count(store: &Store, table: &str) -> Result<u64> {
    let sql = format!("SELECT COUNT(*) FROM {}", store.dialect().quote(table)?);
    let rows = store.run_blocking(move |s| s.query(&sql, &[]))?;
    let row = rows.first().ok_or_else(|| anyhow!("COUNT(*) of {table} returned no row"))?;
    let n: i64 = row.get(0)?;
    u64::try_from(n).map_err(|_| anyhow!("COUNT(*) of {table} is {n}"))
}

/// CPU time of `pid` (or of this process), `None` when it cannot be read.
fn cpu_of(pid: Option<u32>) -> Option<Duration> {
    match pid {
        Some(pid) => cpu::cpu_time(&pid.to_string()).ok(),
        None => cpu::self_cpu_time().ok(),
    }
}

/// Creates `table`, writes the first `n` of `rows` with `method`, counts and drops it. Samples
/// the CPU time of `server_pid` and of this process around the write.
fn write_table(
    store: &Store,
    method: Method,
    table: &str,
    rows: &Arc<Vec<Vec<Value>>>,
    n: usize,
    server_pid: Option<u32>,
) -> Result<Run> {
    let t = table.to_owned();
    store
        .run_blocking(move |s| create_table(s, &monitor::stat_table(t)))
        .with_context(|| format!("creating {table}"))?;
    let (t, data) = (table.to_owned(), rows.clone());
    let server_before = server_pid.and_then(|p| cpu_of(Some(p)));
    let self_before = cpu_of(None);
    let written = store
        .run_blocking(move |s| {
            let rows = &data[..n.min(data.len())];
            let start = Instant::now();
            let affected = match method {
                Method::MysqlInsert(b) | Method::SqliteInsert(b) => {
                    insert_rows(s, &t, monitor::STAT_COLUMNS, rows, InsertMode::Plain, b)?
                }
                Method::MysqlUpsert(b) => {
                    let tail = (tars_stat::service::TABLES.upsert_tail)(s.dialect());
                    transaction(s, |s| insert_rows_in(s, &t, monitor::STAT_COLUMNS, rows, InsertMode::Plain, b, &tail))?
                }
                Method::MysqlLoad => load_rows(s, &t, monitor::STAT_COLUMNS, rows)?,
            };
            Ok((affected, start.elapsed()))
        })
        .with_context(|| format!("{method} into {table}"));
    let server_cpu = match (server_before, server_pid.and_then(|p| cpu_of(Some(p)))) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    let self_cpu = match (self_before, cpu_of(None)) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    let (affected, elapsed) = written?;
    let counted = count(store, table)?;
    let t = table.to_owned();
    store
        .run_blocking(move |s| s.exec_script(&format!("DROP TABLE {t}")))
        .with_context(|| format!("dropping {table}"))?;
    let run =
        Run { method, rep: 0, table: table.to_owned(), rows: n, affected, counted, elapsed, server_cpu, self_cpu };
    if affected != n as u64 || counted != n as u64 {
        bail!("{method} into {table}: wrote {n} rows, the backend reported {affected} affected and COUNT(*) {counted}");
    }
    Ok(run)
}

/// Waits until InnoDB has fewer than 200 dirty pages, at most `limit`.
pub fn settle(store: &Store, limit: Duration) -> Result<()> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        let rows = store.run_blocking(|s| {
            s.query(
                "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS \
                 WHERE VARIABLE_NAME = 'INNODB_BUFFER_POOL_PAGES_DIRTY'",
                &[],
            )
        })?;
        let dirty: u64 = match rows.first() {
            Some(r) => r.get(0)?,
            None => 0,
        };
        if dirty < 200 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

fn remove_sqlite(path: &Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
}

/// One measurement: a fresh table (on SQLite in a fresh file).
pub fn run_one(
    cfg: &StoreConfig,
    targets: &Targets,
    method: Method,
    rep: usize,
    rows: &Arc<Vec<Vec<Value>>>,
) -> Result<Run> {
    let n = method.rows(cfg.rows);
    let table = format!("{}{TABLE_HOUR}_r{rep}_{}", monitor::STAT_PREFIX, method.tag());
    let mut run = match method.dialect() {
        Dialect::Mysql => {
            let store = targets.mysql.as_ref().ok_or_else(|| anyhow!("{method} needs a MySQL server"))?;
            let run = write_table(store, method, &table, rows, n, targets.mysql_pid)?;
            settle(store, cfg.settle)?;
            run
        }
        Dialect::Sqlite => {
            let dir = targets.sqlite_dir.as_ref().ok_or_else(|| anyhow!("{method} needs a SQLite directory"))?;
            let path = dir.join(format!("{table}.sqlite3"));
            remove_sqlite(&path);
            let store = Store::open(&format!("sqlite:{}", path.display()))?;
            let run = write_table(&store, method, &table, rows, n, None);
            drop(store);
            remove_sqlite(&path);
            run?
        }
    };
    run.rep = rep;
    Ok(run)
}

/// Untimed writes of a few rows with each backend in use, so the first measurement does not
/// pay for cold caches and first connections.
pub fn warm_up(cfg: &StoreConfig, targets: &Targets, rows: &Arc<Vec<Vec<Value>>>) -> Result<()> {
    let warm = StoreConfig { rows: cfg.rows.min(2000), ..cfg.clone() };
    let mut done = Vec::new();
    for &m in &cfg.methods {
        let probe = match m.dialect() {
            Dialect::Mysql => Method::MysqlInsert(100),
            Dialect::Sqlite => Method::SqliteInsert(100),
        };
        if !done.contains(&probe) {
            run_one(&warm, targets, probe, 0, rows).context("warm-up")?;
            done.push(probe);
        }
    }
    Ok(())
}

/// Every repetition of every method, logging one line per run to `log`.
pub fn run_all(cfg: &StoreConfig, targets: &Targets, log: &mut dyn FnMut(&Run)) -> Result<Vec<Run>> {
    if cfg.methods.is_empty() {
        bail!("no methods to run");
    }
    let most = cfg.methods.iter().map(|m| m.rows(cfg.rows)).max().unwrap_or(cfg.rows);
    let rows = Arc::new(stat_rows(most, 0x7A25_2026));
    warm_up(cfg, targets, &rows)?;
    let mut all = Vec::new();
    let k = cfg.methods.len();
    for rep in 1..=cfg.reps.max(1) {
        // Rotate the order so no method always follows the same one.
        for i in 0..k {
            let method = cfg.methods[(i + rep - 1) % k];
            let run = run_one(cfg, targets, method, rep, &rows).with_context(|| format!("rep {rep}, {method}"))?;
            log(&run);
            all.push(run);
        }
    }
    Ok(all)
}

/// Sets InnoDB's buffer pool to `pool_mib` MiB and its redo log to `log_mib` MiB (both
/// resizable online since MariaDB 10.9; 0 leaves a setting alone), and waits for the pool's
/// resize to finish. Meant for a server of the benchmark's own: the settings are global.
pub fn set_innodb(store: &Store, pool_mib: u64, log_mib: u64) -> Result<()> {
    if log_mib > 0 {
        let sql = format!("SET GLOBAL innodb_log_file_size = {}", log_mib << 20);
        store.run_blocking(move |s| s.exec_script(&sql)).context("resizing the InnoDB redo log")?;
    }
    if pool_mib > 0 {
        let target = pool_mib << 20;
        let sql = format!("SET GLOBAL innodb_buffer_pool_size = {target}");
        store.run_blocking(move |s| s.exec_script(&sql)).context("resizing the InnoDB buffer pool")?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let rows = store.run_blocking(|s| {
                s.query(
                    "SELECT VARIABLE_VALUE * @@innodb_page_size FROM information_schema.GLOBAL_STATUS \
                     WHERE VARIABLE_NAME = 'INNODB_BUFFER_POOL_PAGES_TOTAL'",
                    &[],
                )
            })?;
            let have: f64 = rows.first().ok_or_else(|| anyhow!("no INNODB_BUFFER_POOL_PAGES_TOTAL"))?.get(0)?;
            // The pool's usable pages are a little less than its size.
            if (have - target as f64).abs() <= target as f64 * 0.05 {
                break;
            }
            if Instant::now() > deadline {
                bail!("the buffer pool is {} MiB 60 s after resizing it to {pool_mib} MiB", have as u64 >> 20);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    Ok(())
}

/// The MariaDB/MySQL version and the InnoDB settings that decide write speed.
pub fn mysql_info(store: &Store) -> Result<String> {
    let rows = store.run_blocking(|s| {
        s.query(
            "SELECT VERSION(), @@innodb_buffer_pool_size, @@innodb_log_file_size, \
             @@innodb_flush_log_at_trx_commit, @@log_bin",
            &[],
        )
    })?;
    let r = rows.first().ok_or_else(|| anyhow!("SELECT VERSION() returned no row"))?;
    let version: String = r.get(0)?;
    let pool: u64 = r.get(1)?;
    let log: u64 = r.get(2)?;
    let trx: u64 = r.get(3)?;
    let log_bin: u64 = r.get(4)?;
    Ok(format!(
        "MariaDB/MySQL {version} (innodb_buffer_pool_size {} MiB, innodb_log_file_size {} MiB, \
         innodb_flush_log_at_trx_commit {trx}, binlog {})",
        pool >> 20,
        log >> 20,
        if log_bin != 0 { "on" } else { "off" }
    ))
}

/// The SQLite library version and the settings of the embedded backend.
pub fn sqlite_info(dir: &Path) -> Result<String> {
    let path = dir.join("version.sqlite3");
    let store = Store::open(&format!("sqlite:{}", path.display()))?;
    let rows = store.run_blocking(|s| s.query("SELECT sqlite_version()", &[]));
    drop(store);
    remove_sqlite(&path);
    let rows = rows?;
    let version: String = rows.first().ok_or_else(|| anyhow!("sqlite_version() returned no row"))?.get(0)?;
    Ok(format!("SQLite {version} (bundled; WAL, synchronous=FULL)"))
}

/// The machine: CPUs, kernel, CPU model, memory.
pub fn machine_info() -> String {
    let nproc = std::thread::available_parallelism().map(usize::from).unwrap_or(1);
    let online = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')).map(|(_, m)| m.trim()))
        .unwrap_or("unknown CPU");
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_gib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kib| kib as f64 / (1024.0 * 1024.0))
        .unwrap_or(0.0);
    format!("nproc {nproc} (online {}), Linux {}, CPU {model}, {mem_gib:.0} GiB RAM", online.trim(), kernel.trim())
}

/// What one measurement covers, for the report header.
pub fn method_note(cfg: &StoreConfig) -> String {
    format!(
        "{} rows per measurement ({} at 1 row/statement) into a fresh upstream hourly stat table \
         (11-column PRIMARY KEY + 9 secondary indexes), keys distinct and shuffled, all rows of a \
         measurement in one transaction, {} repetition(s) with the methods interleaved; every \
         table's COUNT(*) checked against the rows written",
        cfg.rows,
        Method::MysqlInsert(1).rows(cfg.rows),
        cfg.reps.max(1)
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn method_names_round_trip() {
        for m in Method::all() {
            assert_eq!(m.to_string().parse::<Method>().unwrap(), m);
        }
        assert!("mysql-insert-0".parse::<Method>().is_err());
        assert_eq!("mysql-upsert-1000".parse::<Method>().unwrap(), Method::MysqlUpsert(1000));
        assert!("postgres".parse::<Method>().is_err());
        assert_eq!(Method::MysqlInsert(5000).rows_per_statement(50_000), 3449);
        assert_eq!(Method::SqliteInsert(1000).rows_per_statement(50_000), 1000);
        assert_eq!(Method::MysqlLoad.rows_per_statement(300), 300);
        assert_eq!(Method::MysqlInsert(1).rows(50_000), 5_000);
    }

    #[test]
    fn rows_have_distinct_keys_and_fit_the_columns() {
        let rows = stat_rows(30_000, 1);
        let key_cols = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
        let mut keys = std::collections::HashSet::new();
        for r in &rows {
            assert_eq!(r.len(), monitor::STAT_COLUMNS.len());
            let key: Vec<String> = key_cols.iter().map(|&i| format!("{:?}", r[i])).collect();
            assert!(keys.insert(key), "duplicate key {r:?}");
            for (i, limit) in [(2, 15), (3, 128), (4, 128), (5, 128), (7, 15), (8, 21), (14, 128)] {
                let Value::Text(t) = &r[i] else { panic!("column {i} of {r:?}") };
                assert!(t.len() <= limit, "column {i} too long: {t}");
            }
        }
    }

    #[test]
    fn urls() {
        let u = "mysql://tars:pw@127.0.0.1:3306/test";
        assert_eq!(with_params(u, "pool=1"), format!("{u}?pool=1"));
        assert_eq!(with_params("mysql://h/x?a=1", "pool=1"), "mysql://h/x?pool=1&a=1");
    }

    #[test]
    fn summary_and_table() {
        let cfg = StoreConfig::quick();
        let run = |method, rep, ms| Run {
            method,
            rep,
            table: String::new(),
            rows: 1000,
            affected: 1000,
            counted: 1000,
            elapsed: Duration::from_millis(ms),
            server_cpu: Some(Duration::from_millis(ms / 2)),
            self_cpu: None,
        };
        let runs = vec![
            run(Method::MysqlInsert(100), 1, 100),
            run(Method::MysqlInsert(100), 2, 50),
            run(Method::MysqlInsert(100), 3, 200),
            run(Method::SqliteInsert(1000), 1, 25),
        ];
        let s = summarize(&cfg, &runs);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].median, 10_000.0);
        assert_eq!((s[0].min, s[0].max), (5_000.0, 20_000.0));
        assert_eq!(s[1].vs_best_mysql, Some(4.0));
        let t = table(&s);
        assert!(
            t.contains("| mysql-insert-100 | 100 | 1000 | 10,000 | 5,000 | 20,000 | 1.00 (best) | 0.50 | – |"),
            "{t}"
        );
        assert!(t.contains("| 4.00 |"), "{t}");
        assert_eq!(thousands(1234567.4), "1,234,567");
    }
}
