//! The query benchmark behind `tars-bench-query`: `MonitorQuery.query` latency for a day of
//! stat data of many servers, next to the same SQL run directly on the same store, in one run.
//!
//! - **Fixture**: the 24 hourly tables `tars_stat_YYYYMMDDHH` of one day, created as tarsstat
//!   creates them, each filled in one transaction: every server × `interfaces` interfaces ×
//!   one caller × 12 five-minute labels an hour (1000 servers: 36,000 rows an hour, 864,000 a
//!   day). Server `k` is `App<k % 20>.Server<k:04>`, so a `slave_name LIKE 'App3.Server0003%'`
//!   names exactly one server.
//! - **Queries** (TarsWeb's `MonitorStatService` requests): `series`, one server's day by
//!   `f_tflag` (a `slave_name LIKE` condition, a different server each time), and `dimension`,
//!   every server's day by `f_date, slave_name`.
//! - **rpc**: tarsquerystat ([`QueryService`] in an [`Application`], its own store on the same
//!   database) called through the generated `MonitorQueryProxy` on a [`BlockingClient`]; the
//!   latency is the proxy call's, measured on the client's thread.
//! - **direct**: the statements the service's planner makes for the same request, run one hour
//!   table after the other on a one-connection store, as a client would, and summed into the
//!   same map in Rust. The first answer of each pair is checked equal to the service's.
//!
//! Each repetition runs rpc and direct for both queries, the order rotating, so a drift of the
//! shared machine hits both alike.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use serde_json::{json, Value as Json};
use tars_core_net::app::{Application, Running};
use tars_core_net::client::config::ClientConfig;
use tars_core_net::client::BlockingClient;
use tars_core_net::rt::IoMode;
use tars_proto::config::Config;
use tars_proto::rpc::CallOptions;
use tars_protocol::tars::{Condition, MonitorQueryProxy, MonitorQueryReq, MonitorQueryRsp, OP};
use tars_query::plan::Plan;
use tars_query::{Kind, QueryService};
use tars_sql::schema::monitor::{hourly_table_name, stat_schema, stat_table, STAT_COLUMNS, STAT_PREFIX};
use tars_sql::{InsertMode, Store, Value};
use tars_testkit::process::TempDir;

use crate::hist::{Latency, LatencySummary};
use crate::store::BenchDb;

/// The day of the fixture.
pub const DATE: &str = "20261206";
const DASHED: &str = "2026-12-06";
const INTERFACES: &[&str] = &["query", "update", "ping", "list", "notify", "report", "stat", "sync"];
const SLOTS: usize = 12;
/// Rows one hour table may give (the service's default `maxRows`).
const ROW_LIMIT: usize = 100_000;

/// What a run covers.
#[derive(Debug, Clone)]
pub struct QueryBenchConfig {
    /// MySQL/MariaDB server URL (a database `bench_query_<pid>` is made there); SQLite when
    /// absent.
    pub url: Option<String>,
    /// Servers in the fixture.
    pub servers: usize,
    /// Interfaces per server.
    pub interfaces: usize,
    /// Repetitions (each runs every query both ways).
    pub reps: usize,
    /// The service's shards.
    pub shards: usize,
    /// The service's and the client's IO driver.
    pub io: IoMode,
    /// Connections of the service's store on MySQL (`pool=`; upstream's default 4).
    pub pool: usize,
}

impl QueryBenchConfig {
    /// The full run.
    pub fn full() -> QueryBenchConfig {
        QueryBenchConfig { url: None, servers: 1000, interfaces: 3, reps: 30, shards: 1, io: IoMode::EpollLt, pool: 4 }
    }

    /// A smoke run.
    pub fn quick() -> QueryBenchConfig {
        QueryBenchConfig { servers: 20, reps: 2, ..QueryBenchConfig::full() }
    }

    /// Rows in one hour table.
    pub fn rows_per_hour(&self) -> usize {
        self.servers * self.interfaces * SLOTS
    }
}

/// The two requests measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Query {
    /// One server's day by `f_tflag`.
    Series,
    /// Every server's day by `f_date, slave_name`.
    Dimension,
}

impl Query {
    /// Both.
    pub const ALL: [Query; 2] = [Query::Series, Query::Dimension];

    /// The name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Query::Series => "series",
            Query::Dimension => "dimension",
        }
    }
}

/// Server `k`'s name.
pub fn server_name(k: usize) -> String {
    format!("App{}.Server{k:04}", k % 20)
}

/// TarsWeb's request for `query`; `server` picks the series' server.
pub fn request(query: Query, server: usize) -> MonitorQueryReq {
    let (conditions, groupby) = match query {
        Query::Series => (
            vec![Condition { field: "slave_name".into(), op: OP::LIKE, val: format!("{}%", server_name(server)) }],
            vec!["f_tflag".to_owned()],
        ),
        Query::Dimension => (Vec::new(), vec!["f_date".to_owned(), "slave_name".to_owned()]),
    };
    MonitorQueryReq {
        uid: format!("bench-{server}"),
        method: "query".into(),
        dataid: "tars_stat".into(),
        date: DATE.into(),
        tflag1: "0000".into(),
        tflag2: "2360".into(),
        conditions,
        indexs: ["succ_count", "timeout_count", "exce_count", "total_time"].map(String::from).to_vec(),
        groupby,
    }
}

/// One hour's rows (values of [`STAT_COLUMNS`]).
pub fn hour_rows(cfg: &QueryBenchConfig, hour: u8) -> Vec<Vec<Value>> {
    let mut rows = Vec::with_capacity(cfg.rows_per_hour());
    for k in 0..cfg.servers {
        let slave = server_name(k);
        let slave_ip = format!("10.2.{}.{}", k / 250, k % 250 + 1);
        let master = format!("Web{}.Gateway", k % 50);
        let master_ip = format!("10.1.0.{}", k % 50 + 1);
        for (i, iface) in INTERFACES.iter().cycle().take(cfg.interfaces).enumerate() {
            let iface = if i < INTERFACES.len() { (*iface).to_owned() } else { format!("{iface}{i}") };
            for slot in 0..SLOTS {
                let n = (k * 131 + i * 17 + slot * 7 + usize::from(hour) * 3) % 1000;
                let succ = 100 + n as i64;
                let ave = 2 + (n % 40) as i64;
                rows.push(vec![
                    Value::from(DASHED),
                    Value::from(format!("{hour:02}{:02}", (slot + 1) * 5)),
                    Value::from("10.0.0.1"),
                    Value::from(master.as_str()),
                    Value::from(slave.as_str()),
                    Value::from(iface.as_str()),
                    Value::from("3.0.20"),
                    Value::from(master_ip.as_str()),
                    Value::from(slave_ip.as_str()),
                    Value::Int(10_000),
                    Value::Int(0),
                    Value::Int(succ),
                    Value::Int((n % 3) as i64),
                    Value::Int((n % 5) as i64),
                    Value::from("100|1,200|0,500|0,1000|0"),
                    Value::Int(succ * ave),
                    Value::Int(ave),
                    Value::Int(ave * 4),
                    Value::Int(1),
                ]);
            }
        }
    }
    rows
}

/// The database: a scratch MySQL database or a SQLite file in a temp dir.
struct Database {
    /// The URL both sides open (the service with its pool).
    url: String,
    describe: String,
    _mysql: Option<BenchDb>,
    _dir: Option<TempDir>,
}

impl Database {
    fn create(cfg: &QueryBenchConfig) -> Result<Database> {
        match &cfg.url {
            Some(server) => {
                let db = BenchDb::create_named(server, "query", "op_timeout_ms=600000")?;
                let url = db.url().to_owned();
                let store = Store::open(&crate::store::with_params(&url, "pool=1"))?;
                let describe = crate::store::mysql_info(&store)
                    .map(|i| format!("{i}, database {}", db.name()))
                    .unwrap_or_else(|e| format!("MySQL ({e})"));
                Ok(Database { url, describe, _mysql: Some(db), _dir: None })
            }
            None => {
                let dir = TempDir::new("bench-query").context("creating a temp dir")?;
                let url = format!("sqlite:{}/tars_stat.sqlite3", dir.0.display());
                let describe = crate::store::sqlite_info(&dir.0).unwrap_or_else(|e| format!("SQLite ({e})"));
                Ok(Database { url, describe, _mysql: None, _dir: Some(dir) })
            }
        }
    }

    fn is_mysql(&self) -> bool {
        self._mysql.is_some()
    }

    /// The URL with `pool` connections (MySQL; SQLite keeps its own).
    fn url_with_pool(&self, pool: usize) -> String {
        if self.is_mysql() {
            crate::store::with_params(&self.url, &format!("pool={pool}"))
        } else {
            self.url.clone()
        }
    }
}

/// Creates the day's tables and fills them, one transaction per table; returns the rows.
fn populate(cfg: &QueryBenchConfig, store: &Store, progress: &mut dyn FnMut(String)) -> Result<u64> {
    store.migrate(stat_schema()).context("migrating the stat database")?;
    let mut total = 0u64;
    for hour in 0..24u8 {
        let table = hourly_table_name(STAT_PREFIX, DATE, hour);
        let rows = hour_rows(cfg, hour);
        let def = stat_table(table.clone());
        let t = table.clone();
        let n = store
            .run_blocking(move |s| {
                tars_sql::create_table(s, &def)?;
                // 1000 rows a statement: under both backends' limits of bound parameters.
                tars_sql::insert_rows(s, &t, STAT_COLUMNS, &rows, InsertMode::Plain, 1000)
            })
            .with_context(|| format!("filling {table}"))?;
        total += n;
        if hour % 6 == 5 {
            progress(format!("filled {} of 24 tables ({total} rows)", hour + 1));
        }
    }
    Ok(total)
}

/// An answer: key → the summed indexes.
pub type Answer = BTreeMap<String, Vec<f64>>;

fn number(v: &Value) -> f64 {
    match v {
        Value::Int(i) => *i as f64,
        Value::UInt(u) => *u as f64,
        Value::Float(f) => *f,
        Value::Text(s) => s.trim().parse().unwrap_or(0.0),
        Value::Bytes(b) => std::str::from_utf8(b).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0.0),
        Value::Null => 0.0,
    }
}

fn key_part(v: &Value, out: &mut String) {
    match v {
        Value::Null => {}
        Value::Int(i) => out.push_str(&i.to_string()),
        Value::UInt(u) => out.push_str(&u.to_string()),
        Value::Float(f) => out.push_str(&f.to_string()),
        Value::Text(s) => out.push_str(s),
        Value::Bytes(b) => out.push_str(&String::from_utf8_lossy(b)),
    }
}

/// The direct path: the planner's statements, one hour table after the other, summed here.
fn direct(store: &Store, req: &MonitorQueryReq) -> Result<(Answer, Duration)> {
    let t = Instant::now();
    let plan = Plan::new(Kind::Stat, req, ROW_LIMIT).map_err(|e| anyhow!("the request was refused: {e}"))?;
    let dialect = store.dialect();
    let width = plan.indexes.len();
    let mut answer = Answer::new();
    for hour in plan.hours.clone() {
        let (sql, params) = plan.statement(dialect, &plan.table(STAT_PREFIX, hour))?;
        let rows = store.run_blocking(move |s| s.query(&sql, &params))?;
        for row in rows {
            let values = row.values();
            let mut key = String::new();
            for (j, v) in values.iter().skip(width).enumerate() {
                if j > 0 {
                    key.push(',');
                }
                key_part(v, &mut key);
            }
            let sums = answer.entry(key).or_insert_with(|| vec![0.0; width]);
            for (s, v) in sums.iter_mut().zip(values) {
                *s += number(v);
            }
        }
    }
    Ok((answer, t.elapsed()))
}

/// The service and a client of it.
struct Rpc {
    running: Running,
    client: BlockingClient,
    object: String,
}

impl Rpc {
    fn start(cfg: &QueryBenchConfig, db: &Database) -> Result<Rpc> {
        let obj = Kind::Stat.servant();
        let extra =
            format!("<statdb>\n<db1>\nurl={}\ntbname={STAT_PREFIX}\n</db1>\n</statdb>\n", db.url_with_pool(cfg.pool));
        let text = crate::conf::server_config("tars", "tarsquerystat", &[obj], "", &extra);
        let running = Application::new(Config::parse(&text).context("query config")?)?
            .io(cfg.io)
            .shards(cfg.shards)
            .service(QueryService::new(Kind::Stat))
            .start()
            .context("starting tarsquerystat")?;
        let addr = running.server().addr(&format!("{obj}Adapter")).ok_or_else(|| anyhow!("QueryObj not bound"))?;
        let client = BlockingClient::start(ClientConfig::default(), cfg.io).context("starting the client")?;
        Ok(Rpc { running, client, object: format!("{obj}@tcp -h 127.0.0.1 -p {} -t 600000", addr.port()) })
    }

    fn query(&self, req: &MonitorQueryReq) -> Result<(Answer, Duration)> {
        let (object, req) = (self.object.clone(), req.clone());
        let (rsp, took) = self.client.run(move |comm| async move {
            let proxy = comm.proxy(&object).map_err(|e| anyhow!("proxy: {e}"))?;
            let options = CallOptions { timeout_ms: 600_000, ..CallOptions::default() };
            let p = MonitorQueryProxy::new(proxy, Kind::Stat.servant()).with_options(options);
            let mut rsp = MonitorQueryRsp::default();
            let t = Instant::now();
            let ret = p.query(&req, &mut rsp).await.map_err(|e| anyhow!("MonitorQuery.query: {e}"))?;
            let took = t.elapsed();
            if ret != 0 {
                bail!("MonitorQuery.query returned {ret}");
            }
            Ok::<_, anyhow::Error>((rsp, took))
        })?;
        if rsp.ret != 0 || !rsp.msg.is_empty() {
            bail!("the service answered ret {} msg {:?}", rsp.ret, rsp.msg);
        }
        Ok((rsp.result.into_iter().collect(), took))
    }

    fn stop(self) -> Result<()> {
        self.running.shutdown();
        self.running.wait()?;
        Ok(())
    }
}

fn same(a: &Answer, b: &Answer) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|((ka, va), (kb, vb))| {
            ka == kb && va.len() == vb.len() && va.iter().zip(vb).all(|(x, y)| (x - y).abs() <= 1e-6 * x.abs().max(1.0))
        })
}

/// One query's figures.
#[derive(Debug, Clone)]
pub struct Measured {
    /// The query.
    pub query: Query,
    /// Keys in the answer (the series: the last server's).
    pub keys: usize,
    /// Through the service.
    pub rpc: LatencySummary,
    /// The statements run directly.
    pub direct: LatencySummary,
}

impl Measured {
    /// rpc p50 over direct p50.
    pub fn ratio_p50(&self) -> f64 {
        self.rpc.p50_us / self.direct.p50_us.max(1e-9)
    }

    /// rpc p99 over direct p99.
    pub fn ratio_p99(&self) -> f64 {
        self.rpc.p99_us / self.direct.p99_us.max(1e-9)
    }
}

/// A run's result.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The database, described.
    pub database: String,
    /// Rows written.
    pub rows: u64,
    /// How long filling took.
    pub fill: Duration,
    /// Per query.
    pub measured: Vec<Measured>,
}

/// Runs the benchmark; `progress` gets a line per step.
pub fn run(cfg: &QueryBenchConfig, progress: &mut dyn FnMut(String)) -> Result<Outcome> {
    if cfg.servers == 0 || cfg.interfaces == 0 || cfg.reps == 0 {
        bail!("--servers, --interfaces and --reps must be at least 1");
    }
    let db = Database::create(cfg)?;
    progress(format!("database: {}", db.describe));
    // One connection: the direct path runs its statements one after the other.
    let store = Store::open(&db.url_with_pool(1)).context("opening the database")?;
    let t = Instant::now();
    let rows = populate(cfg, &store, progress)?;
    let fill = t.elapsed();
    progress(format!("{rows} rows in 24 tables in {:.1} s", fill.as_secs_f64()));
    let rpc = Rpc::start(cfg, &db)?;
    let result = measure(cfg, &store, &rpc, progress);
    let stopped = rpc.stop();
    let measured = result?;
    stopped?;
    Ok(Outcome { database: db.describe.clone(), rows, fill, measured })
}

fn measure(
    cfg: &QueryBenchConfig,
    store: &Store,
    rpc: &Rpc,
    progress: &mut dyn FnMut(String),
) -> Result<Vec<Measured>> {
    // One unmeasured round: the first statements warm the caches of both sides alike.
    for q in Query::ALL {
        let req = request(q, 0);
        let (a, _) = rpc.query(&req)?;
        let (b, _) = direct(store, &req)?;
        if !same(&a, &b) {
            bail!("{}: the service's answer ({} keys) differs from direct SQL's ({} keys)", q.name(), a.len(), b.len());
        }
        if a.is_empty() {
            bail!("{}: empty answer", q.name());
        }
    }
    let mut hists: Vec<(Latency, Latency, usize)> =
        Query::ALL.iter().map(|_| (Latency::new(), Latency::new(), 0)).collect();
    for rep in 0..cfg.reps {
        for (qi, q) in Query::ALL.into_iter().enumerate() {
            // A different server each time, spread over the fixture.
            let req = request(q, (rep * 7919 + 1) % cfg.servers);
            let rpc_first = (rep + qi) % 2 == 0;
            let (mut ra, mut da) = (None, None);
            for side in 0..2 {
                if (side == 0) == rpc_first {
                    ra = Some(rpc.query(&req)?);
                } else {
                    da = Some(direct(store, &req)?);
                }
            }
            let ((a, rt), (b, dt)) = ra.zip(da).ok_or_else(|| anyhow!("a side did not run"))?;
            if rep == 0 && !same(&a, &b) {
                bail!("{}: the service's answer differs from direct SQL's", q.name());
            }
            let h = &mut hists[qi];
            h.0.record(rt);
            h.1.record(dt);
            h.2 = a.len();
            progress(format!(
                "rep {rep}: {:<9} rpc {:>9.1} ms, direct {:>9.1} ms, {} keys",
                q.name(),
                rt.as_secs_f64() * 1e3,
                dt.as_secs_f64() * 1e3,
                a.len()
            ));
        }
    }
    Ok(Query::ALL
        .into_iter()
        .zip(hists)
        .map(|(query, (r, d, keys))| Measured { query, keys, rpc: r.summary(), direct: d.summary() })
        .collect())
}

impl Outcome {
    /// The text report.
    pub fn text(&self, cfg: &QueryBenchConfig) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "{}", self.database);
        let _ = writeln!(
            s,
            "{} servers x {} interfaces x 1 caller x 12 labels an hour: {} rows a table, {} rows in 24 tables \
             (filled in {:.1} s); {} repetitions, tarsquerystat on {} shard(s), {:?}",
            cfg.servers,
            cfg.interfaces,
            cfg.rows_per_hour(),
            self.rows,
            self.fill.as_secs_f64(),
            cfg.reps,
            cfg.shards,
            cfg.io
        );
        let _ =
            writeln!(s, "query      keys  rpc p50 ms  rpc p99 ms  direct p50 ms  direct p99 ms  rpc/direct p50  p99");
        for m in &self.measured {
            let _ = writeln!(
                s,
                "{:<9} {:>5}  {:>10.1}  {:>10.1}  {:>13.1}  {:>13.1}  {:>14.2}  {:.2}",
                m.query.name(),
                m.keys,
                m.rpc.p50_us / 1e3,
                m.rpc.p99_us / 1e3,
                m.direct.p50_us / 1e3,
                m.direct.p99_us / 1e3,
                m.ratio_p50(),
                m.ratio_p99()
            );
        }
        s
    }

    /// One JSON object.
    pub fn to_json(&self, cfg: &QueryBenchConfig) -> Json {
        let measured: Vec<Json> = self
            .measured
            .iter()
            .map(|m| {
                json!({"query": m.query.name(), "keys": m.keys, "rpc_us": m.rpc.to_json(),
                       "direct_us": m.direct.to_json(), "ratio_p50": m.ratio_p50(), "ratio_p99": m.ratio_p99()})
            })
            .collect();
        json!({
            "database": self.database, "servers": cfg.servers, "interfaces": cfg.interfaces,
            "rows_per_table": cfg.rows_per_hour(), "rows": self.rows, "fill_secs": self.fill.as_secs_f64(),
            "reps": cfg.reps, "shards": cfg.shards, "io": format!("{:?}", cfg.io), "pool": cfg.pool,
            "queries": measured,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_series_names_exactly_one_server_and_rows_have_distinct_keys() {
        let cfg = QueryBenchConfig { servers: 120, interfaces: 9, ..QueryBenchConfig::quick() };
        let like = |k: usize| format!("{}%", server_name(k));
        let p = like(3);
        let matching = (0..cfg.servers).filter(|k| server_name(*k).starts_with(p.trim_end_matches('%'))).count();
        assert_eq!(matching, 1);
        let rows = hour_rows(&cfg, 7);
        assert_eq!(rows.len(), cfg.rows_per_hour());
        assert!(rows.iter().all(|r| r.len() == STAT_COLUMNS.len()));
        let keys: std::collections::BTreeSet<String> =
            rows.iter().map(|r| format!("{:?}{:?}{:?}", r[1], r[4], r[5])).collect();
        assert_eq!(keys.len(), rows.len());
        assert!(Plan::new(Kind::Stat, &request(Query::Series, 3), ROW_LIMIT).is_ok());
        assert!(Plan::new(Kind::Stat, &request(Query::Dimension, 0), ROW_LIMIT).is_ok());
    }
}
