//! The registry benchmark behind `tars-bench-registry`: QueryObj against the TARS echo
//! server, side by side, in one process, plus how long a database change takes to reach
//! QueryObj's answers.
//!
//! 1. A fresh `db_tars` (a database `bench_registry_<pid>` on the MySQL server of `--url`,
//!    dropped at the end, else an embedded SQLite file in a temp dir), migrated, is filled
//!    with `objects` servers × `nodes` nodes, one adapter each (`AppK.ServerK.Obj`), by
//!    multi-row INSERTs; then the run waits `settle` (rows younger than the loader's 3 s
//!    overlap would be re-read by every poll of a registry started right away).
//! 2. For each shard count, the registry ([`tars_registry::service::start`], QueryObj only,
//!    the default 200 ms change poll) and the TARS echo server ([`crate::echo::start_tars`])
//!    run in this process on the same IO driver and the same number of shards, with the same
//!    adapter settings.
//! 3. [`load::run`] drives both with the same client setup: closed loop (`conns` × `depth`,
//!    repetitions interleaved registry, echo, registry, echo, …) for the maximum throughput;
//!    then open loop at fractions of the registry's median closed-loop QPS (½ by default,
//!    and ¼, ⅒), each on both servers, and the echo at half its own. Registry requests are
//!    `findObjectById` for an object drawn at random from all of them (every variant
//!    pre-encoded); every reply must carry a non-empty endpoint list. Echo requests are the
//!    100 B echo.
//! 4. CPU per thread (`/proc/self/task/*/stat`) at the window edges splits the process into
//!    the measured server's shard threads, the registry's background threads (loader, jobs,
//!    store; the store threads run the SQLite engine) and the client (the remainder);
//!    `--db-pid` adds the database server. An idle window per round shows what the
//!    registry's polling alone costs.
//! 5. Propagation: `changes` times, after a random pause (so changes land at random points
//!    of the loader's poll cycle), one server row is updated — alternately `present_state`
//!    of one node set to `inactive` (`t_server_conf`) and one endpoint's port changed
//!    (`t_adapter_conf`) — and `findObjectById4Any` is polled every millisecond on several
//!    connections (so every shard is asked) until all of them answer with the change. The
//!    delay counts from just before the UPDATE is sent.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use bytes::Bytes;
use serde_json::{json, Value as Json};
use tars_core_net::rt::IoMode;
use tars_proto::codec::{Reader, WireType};
use tars_proto::config::Config;
use tars_proto::packet::version;
use tars_proto::rpc::{ParamReader, ParamWriter};
use tars_protocol::tars::EndpointF;
use tars_registry::service::{Registry, StartOptions};
use tars_sql::schema::db_tars;
use tars_sql::{params, InsertMode, Store, Value};
use tars_testkit::process::TempDir;
use tars_testkit::raw::RawConn;

use crate::cpu;
use crate::echo::{self, EchoOptions};
use crate::hist::round1;
use crate::load::{self, Call, Edge, LoadConfig, Report, Stop};
use crate::proto::{Proto, Request, ResultCheck};

/// The registry's query servant.
pub const QUERY_OBJ: &str = "tars.tarsregistry.QueryObj";
/// Thread-name prefix (15 characters, as the kernel keeps it) of the registry's shards.
const REGISTRY_THREADS: &str = "tars.tarsregist";
/// Thread-name prefix of the echo server's shards.
const ECHO_THREADS: &str = "TarsBench.EchoS";
/// Give up on one change after this long.
const PROPAGATION_LIMIT: Duration = Duration::from_secs(10);

/// What a run covers.
#[derive(Debug, Clone)]
pub struct RegistryBenchConfig {
    /// A MySQL server URL; `None` = embedded SQLite in a temp dir.
    pub url: Option<String>,
    /// Servers (= objects).
    pub objects: usize,
    /// Nodes per server (= endpoints per object).
    pub nodes: usize,
    /// Server shard counts, one round each.
    pub shards: Vec<usize>,
    /// The servers' IO driver (registry and echo alike).
    pub io: IoMode,
    /// Client IO driver, closed loop.
    pub client_io: IoMode,
    /// Client IO driver, open loop (epoll timers have 1 ms granularity).
    pub open_io: IoMode,
    /// Client shard threads.
    pub threads: usize,
    /// Closed-loop connections.
    pub conns: usize,
    /// Closed-loop requests in flight per connection.
    pub depth: usize,
    /// Open-loop connections.
    pub open_conns: usize,
    /// Echo payload bytes.
    pub size: usize,
    /// Measured window per load run.
    pub duration: Duration,
    /// Warm-up per load run.
    pub warmup: Duration,
    /// Closed-loop repetitions per server (interleaved).
    pub reps: usize,
    /// Changes measured per round.
    pub changes: usize,
    /// Connections polled per change.
    pub poll_conns: usize,
    /// The database server's pid, for its CPU time.
    pub db_pid: Option<u32>,
    /// Open-loop rates as fractions of the registry's median closed-loop QPS (the registry
    /// and the echo each run at every one; the echo also at half its own QPS).
    pub open_fractions: Vec<f64>,
    /// Run the open-loop runs.
    pub open: bool,
    /// Measure propagation.
    pub propagation: bool,
    /// Wait this long after filling the database (the loader re-reads rows changed in the
    /// last 3 s on every poll, so a registry started right after the fill re-reads them all
    /// for its first seconds); the database server's CPU is sampled meanwhile as a baseline.
    pub settle: Duration,
    /// An idle window per round (no queries) measuring what the registry's polling costs.
    pub idle: Duration,
    /// `/tars/reap<changePollMs>`; `None` = the registry's default (200 ms).
    pub change_poll: Option<Duration>,
}

impl RegistryBenchConfig {
    /// The full run: 10,000 objects × 10 nodes, 1 and 2 shards, epoll-lt servers, one client
    /// thread (16 × 4 closed loop on epoll-lt; 16 connections open loop on uring), 5 s after
    /// 1 s warm-up, 3 closed-loop repetitions, 20 changes.
    pub fn full() -> RegistryBenchConfig {
        RegistryBenchConfig {
            url: None,
            objects: 10_000,
            nodes: 10,
            shards: vec![1, 2],
            io: IoMode::EpollLt,
            client_io: IoMode::EpollLt,
            open_io: IoMode::Uring,
            threads: 1,
            conns: 16,
            depth: 4,
            open_conns: 16,
            size: 100,
            duration: Duration::from_secs(5),
            warmup: Duration::from_secs(1),
            reps: 3,
            changes: 20,
            poll_conns: 8,
            db_pid: None,
            open_fractions: vec![0.5, 0.25, 0.1],
            open: true,
            propagation: true,
            settle: Duration::from_secs(5),
            idle: Duration::from_secs(4),
            change_poll: None,
        }
    }

    /// A smoke run: 200 objects, 0.5 s after 0.2 s warm-up, 1 repetition, open loop at half
    /// load only, 4 changes, no settling.
    pub fn quick() -> RegistryBenchConfig {
        RegistryBenchConfig {
            objects: 200,
            duration: Duration::from_millis(500),
            warmup: Duration::from_millis(200),
            reps: 1,
            changes: 4,
            open_fractions: vec![0.5],
            settle: Duration::ZERO,
            idle: Duration::from_millis(300),
            ..RegistryBenchConfig::full()
        }
    }
}

// ---------------------------------------------------------------------------------------
// The database

/// The benchmark's `db_tars` and what keeps it alive; dropping it drops the MySQL database.
pub struct BenchDb {
    /// The store everything uses (the registry, the filling, the changes).
    pub store: Store,
    /// A description for the report (password-free).
    pub describe: String,
    _mysql: Option<crate::store::BenchDb>,
    _dir: Option<TempDir>,
}

impl std::fmt::Debug for BenchDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BenchDb").field("describe", &self.describe).finish_non_exhaustive()
    }
}

impl BenchDb {
    /// A fresh, migrated `db_tars`: `bench_registry_<pid>` on `url`'s server, or SQLite.
    pub fn create(url: Option<&str>) -> Result<BenchDb> {
        let db = match url {
            Some(server) => {
                let scratch = crate::store::BenchDb::create_named(server, "registry", "op_timeout_ms=120000")?;
                let name = scratch.name().to_owned();
                let store = Store::open(scratch.url()).context("opening the benchmark database")?;
                let describe = crate::store::mysql_info(&store)
                    .map(|i| format!("{i}, database {name}"))
                    .unwrap_or_else(|e| format!("MySQL ({e})"));
                BenchDb { store, describe, _mysql: Some(scratch), _dir: None }
            }
            None => {
                let dir = TempDir::new("bench-registry").context("creating a temp dir")?;
                let url = format!("sqlite:{}/db_tars.sqlite3", dir.0.display());
                let store = Store::open(&url).context("opening the SQLite database")?;
                let describe = crate::store::sqlite_info(&dir.0).unwrap_or_else(|e| format!("SQLite ({e})"));
                BenchDb { store, describe, _mysql: None, _dir: Some(dir) }
            }
        };
        db.store.migrate(db_tars::schema()).context("migrating db_tars")?;
        Ok(db)
    }
}

/// The servant of object `k`.
pub fn servant(k: usize) -> String {
    format!("App{k}.Server{k}.Obj")
}

/// The host (and node name) of node `j`.
pub fn node_host(j: usize) -> String {
    format!("10.1.{}.{}", j / 250, j % 250 + 1)
}

/// The port object `k` listens on, on every node.
fn port_of(k: usize) -> usize {
    10_000 + k % 50_000
}

/// How the database was filled.
#[derive(Debug, Clone)]
pub struct Populated {
    /// `t_server_conf` rows.
    pub servers: u64,
    /// `t_adapter_conf` rows.
    pub adapters: u64,
    /// Time taken.
    pub took: Duration,
}

/// Rows per INSERT statement (MySQL allows 65,535 parameters: ≥ 10,000 rows of 6 columns).
const ROWS_PER_STATEMENT: usize = 1000;
/// Rows per transaction.
const ROWS_PER_JOB: usize = 20_000;

/// Fills `t_server_conf` and `t_adapter_conf`: `objects` servers on `nodes` nodes each,
/// active, one adapter each.
pub fn populate(store: &Store, objects: usize, nodes: usize) -> Result<Populated> {
    let start = Instant::now();
    let mut servers = Vec::with_capacity(objects * nodes);
    let mut adapters = Vec::with_capacity(objects * nodes);
    for k in 0..objects {
        let (app, server, obj) = (format!("App{k}"), format!("Server{k}"), servant(k));
        for j in 0..nodes {
            let host = node_host(j);
            servers.push(vec![
                Value::from(app.as_str()),
                server.as_str().into(),
                host.as_str().into(),
                "active".into(),
                "active".into(),
            ]);
            adapters.push(vec![
                Value::from(app.as_str()),
                server.as_str().into(),
                host.as_str().into(),
                format!("{obj}Adapter").into(),
                obj.as_str().into(),
                format!("tcp -h {host} -p {} -t 60000", port_of(k)).into(),
            ]);
        }
    }
    let mut counts = [0u64; 2];
    for (i, (table, columns, rows)) in [
        ("t_server_conf", &["application", "server_name", "node_name", "setting_state", "present_state"][..], servers),
        (
            "t_adapter_conf",
            &["application", "server_name", "node_name", "adapter_name", "servant", "endpoint"][..],
            adapters,
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let mut rows = rows;
        while !rows.is_empty() {
            let rest = rows.split_off(rows.len().min(ROWS_PER_JOB));
            let job = std::mem::replace(&mut rows, rest);
            counts[i] += store
                .run_blocking(move |s| {
                    tars_sql::insert_rows(s, table, columns, &job, InsertMode::Plain, ROWS_PER_STATEMENT)
                })
                .with_context(|| format!("filling {table}"))?;
        }
    }
    Ok(Populated { servers: counts[0], adapters: counts[1], took: start.elapsed() })
}

// ---------------------------------------------------------------------------------------
// The servers

/// The registry's config: QueryObj only, with the echo server's adapter settings, on a free
/// port of 127.0.0.1; `/tars/reap` at its defaults (200 ms change poll) unless `change_poll`.
pub fn registry_config(change_poll: Option<Duration>) -> String {
    let reap = match change_poll {
        Some(d) => format!("<reap>\n  changePollMs={}\n</reap>\n", d.as_millis()),
        None => String::new(),
    };
    crate::conf::server_config("tars", "tarsregistry", &[QUERY_OBJ], "", &reap)
}

/// Starts the registry on `store`.
pub fn start_registry(
    store: &Store,
    io: IoMode,
    shards: usize,
    change_poll: Option<Duration>,
) -> Result<(Registry, SocketAddr)> {
    let config = Config::parse(&registry_config(change_poll)).context("registry config")?;
    let opts = StartOptions { io: Some(io), shards: Some(shards), store: Some(store.clone()) };
    let registry = tars_registry::service::start(&config, opts).context("starting the registry")?;
    let addr = registry.addr_of(QUERY_OBJ).ok_or_else(|| anyhow!("QueryObj is not bound"))?;
    Ok((registry, addr))
}

/// `findObjectById(id)`'s parameters.
pub fn query_body(id: &str) -> Bytes {
    let mut w = ParamWriter::new(version::TARS);
    w.write_str(1, "id", id);
    w.finish()
}

/// A `findObjectById` result is good when it is a non-empty list.
fn check_found(ver: i16, results: &Bytes) -> Result<(), String> {
    let n = if ver == version::TARS {
        let mut r = Reader::from_bytes(results);
        match r.skip_to_tag(0) {
            Ok(Some(h)) if h.ty == WireType::List => r.read_len(1).map_err(|e| format!("endpoint list: {e}"))?,
            Ok(_) => return Err("findObjectById: no endpoint list (tag 0)".into()),
            Err(e) => return Err(format!("findObjectById: {e}")),
        }
    } else {
        let eps: Vec<EndpointF> = ParamReader::new(ver, results)
            .and_then(|mut p| p.read_ret())
            .map_err(|e| format!("findObjectById: {e}"))?;
        eps.len()
    };
    if n == 0 {
        Err("findObjectById answered no endpoint".into())
    } else {
        Ok(())
    }
}

/// The load generator's call: `findObjectById` for one of the `objects`, at random.
pub fn registry_call(objects: usize) -> Call {
    let bodies = (0..objects).map(|k| query_body(&servant(k))).collect();
    let check: ResultCheck = Arc::new(check_found);
    Call { bodies: Arc::new(bodies), check }
}

/// Calls `findObjectById4Any(id)` on a blocking connection: (active, inactive).
pub fn find_any(conn: &mut RawConn, id: &str) -> Result<(Vec<EndpointF>, Vec<EndpointF>)> {
    let req = conn.request(QUERY_OBJ, "findObjectById4Any", version::TARS, query_body(id));
    let reply = conn.call(&req)?;
    if reply.ret != 0 {
        bail!("findObjectById4Any: iRet {}: {}", reply.ret, reply.desc);
    }
    let mut p = reply.params()?;
    let ret: i32 = p.read_ret()?;
    if ret != 0 {
        bail!("findObjectById4Any returned {ret}");
    }
    Ok((p.read(2, "activeEp")?, p.read(3, "inactiveEp")?))
}

/// Sizes of one request and its reply's results, from a probe call.
fn probe(addr: SocketAddr, servant: &str, func: &str, body: Bytes) -> Result<(usize, usize)> {
    let mut conn = RawConn::connect(addr).with_context(|| format!("connecting to {addr}"))?;
    let req = conn.request(servant, func, version::TARS, body.clone());
    let reply = conn.call(&req).with_context(|| format!("{servant}.{func}"))?;
    if reply.ret != 0 {
        bail!("{servant}.{func}: iRet {}: {}", reply.ret, reply.desc);
    }
    let request = Request::calls(version::TARS, servant, func, &[body])?.len();
    Ok((request, reply.body.len()))
}

// ---------------------------------------------------------------------------------------
// CPU per thread

/// CPU time of this process, of each of its threads (by name) and of the database server.
#[derive(Debug, Clone, Default)]
struct CpuSnapshot {
    process: Duration,
    threads: HashMap<u32, (String, Duration)>,
    db: Option<Duration>,
}

fn snapshot(db_pid: Option<u32>) -> CpuSnapshot {
    let process = cpu::self_cpu_time().unwrap_or_default();
    let mut threads = HashMap::new();
    let ticks = cpu::clock_ticks();
    if let Ok(dir) = std::fs::read_dir("/proc/self/task") {
        for e in dir.flatten() {
            let Some(tid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
            let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else { continue };
            let comm = stat.find('(').zip(stat.rfind(')')).map(|(a, b)| stat[a + 1..b].to_owned()).unwrap_or_default();
            if let Ok(t) = cpu::parse_stat(&stat, ticks) {
                threads.insert(tid, (comm, t));
            }
        }
    }
    let db = db_pid.and_then(|p| cpu::cpu_time(&p.to_string()).ok());
    CpuSnapshot { process, threads, db }
}

/// Where CPU time went over a window.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuSplit {
    /// The measured server's shard threads.
    pub server: Duration,
    /// The load generator's shard threads: the process's CPU time less everything else,
    /// because they may have exited (taking their per-thread times along) by the time the
    /// window's end is sampled.
    pub client: Duration,
    /// The registry's background threads: its route loader, its jobs and the store's
    /// threads (which run the SQLite engine; with MySQL they mostly wait for the server).
    pub other: Duration,
    /// The rest of this process: the main thread, the other server's (idle) shards.
    pub rest: Duration,
    /// The database server, when its pid is known.
    pub db: Option<Duration>,
}

fn is_client_thread(comm: &str) -> bool {
    comm.strip_prefix("tars-bench-").is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

fn split(a: &CpuSnapshot, b: &CpuSnapshot, server_prefix: &str) -> CpuSplit {
    let mut out = CpuSplit::default();
    for (tid, (comm, t)) in &b.threads {
        let before = a.threads.get(tid).map(|(_, t)| *t).unwrap_or_default();
        let d = t.saturating_sub(before);
        if is_client_thread(comm) {
            // Counted as the remainder below.
        } else if comm.starts_with(server_prefix) {
            out.server += d;
        } else if comm.starts_with("tars-store-") || comm.starts_with("tars-registry") {
            out.other += d;
        } else {
            out.rest += d;
        }
    }
    out.client = b.process.saturating_sub(a.process).saturating_sub(out.server + out.other + out.rest);
    out.db = a.db.zip(b.db).map(|(x, y)| y.saturating_sub(x));
    out
}

// ---------------------------------------------------------------------------------------
// Load runs

/// Which server a run measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// QueryObj `findObjectById`.
    Registry,
    /// The TARS echo.
    Echo,
}

impl Target {
    /// `registry` or `echo`.
    pub fn name(self) -> &'static str {
        match self {
            Target::Registry => "registry",
            Target::Echo => "echo",
        }
    }

    fn threads(self) -> &'static str {
        match self {
            Target::Registry => REGISTRY_THREADS,
            Target::Echo => ECHO_THREADS,
        }
    }
}

/// One load run.
#[derive(Debug, Clone)]
pub struct Measured {
    /// The server.
    pub target: Target,
    /// What ran.
    pub load: LoadConfig,
    /// What the load generator saw.
    pub report: Report,
    /// CPU over the measured window.
    pub cpu: CpuSplit,
    /// Open loop: the rate as a fraction of whose closed-loop QPS.
    pub rate_of: Option<(Target, f64)>,
}

impl Measured {
    fn per_req_us(&self, d: Duration) -> f64 {
        if self.report.completed == 0 {
            0.0
        } else {
            d.as_secs_f64() * 1e6 / self.report.completed as f64
        }
    }

    /// Server-shard CPU µs per reply.
    pub fn server_us_per_req(&self) -> f64 {
        self.per_req_us(self.cpu.server)
    }

    /// Client-shard CPU µs per reply.
    pub fn client_us_per_req(&self) -> f64 {
        self.per_req_us(self.cpu.client)
    }

    fn cores(&self, d: Duration) -> f64 {
        d.as_secs_f64() / self.report.window.as_secs_f64().max(1e-9)
    }

    /// As JSON.
    pub fn to_json(&self) -> Json {
        let l = &self.report.latency;
        json!({
            "target": self.target.name(),
            "mode": if self.load.rate.is_some() { "open" } else { "closed" },
            "conns": self.load.conns,
            "depth": self.load.depth,
            "target_rate": self.load.rate.map(round1),
            "rate_of": self.rate_of.map(|(t, f)| json!({"max_of": t.name(), "fraction": f})),
            "client_threads": self.load.threads,
            "client_io": self.report.io.as_str(),
            "window_s": self.report.window.as_secs_f64(),
            "completed": self.report.completed,
            "sent": self.report.sent,
            "qps": round1(self.report.qps),
            "errors": self.report.errors,
            "first_error": self.report.first_error,
            "unfinished": self.report.unfinished,
            "latency_us": l.to_json(),
            "server_cores": round1(self.cores(self.cpu.server) * 100.0) / 100.0,
            "client_cores": round1(self.cores(self.cpu.client) * 100.0) / 100.0,
            "registry_background_cores": round1(self.cores(self.cpu.other) * 100.0) / 100.0,
            "db_cores": self.cpu.db.map(|d| round1(self.cores(d) * 100.0) / 100.0),
            "server_cpu_us_per_req": round1(self.server_us_per_req() * 100.0) / 100.0,
            "client_cpu_us_per_req": round1(self.client_us_per_req() * 100.0) / 100.0,
        })
    }

    fn line(&self) -> String {
        let l = &self.report.latency;
        let mode = match (self.load.rate, self.rate_of) {
            (Some(r), Some((t, f))) => format!("open {:>3.0}% of {} max = {r:>6.0}/s", f * 100.0, t.name()),
            (Some(r), None) => format!("open {r:>6.0}/s"),
            (None, _) => format!("closed {}x{}", self.load.conns, self.load.depth),
        };
        let db = self.cpu.db.map(|d| format!(", db {:.2}", self.cores(d))).unwrap_or_default();
        let err = match &self.report.first_error {
            Some(e) => format!("  FIRST ERROR: {e}"),
            None => String::new(),
        };
        format!(
            "{:<8} {mode:<30} {:>9.0} req/s  p50 {:>7.1}  p99 {:>8.1}  p99.9 {:>8.1}  max {:>8.1} us  \
             server {:.2} us/req ({:.2} cores)  client {:.2} us/req  registry bg {:.2} cores{db}  errors {}{err}",
            self.target.name(),
            self.report.qps,
            l.p50_us,
            l.p99_us,
            l.p999_us,
            l.max_us,
            self.server_us_per_req(),
            self.cores(self.cpu.server),
            self.client_us_per_req(),
            self.cores(self.cpu.other),
            self.report.errors,
        )
    }
}

/// The two servers of one round and how to load them.
struct Servers {
    registry: SocketAddr,
    echo: SocketAddr,
    call: Call,
}

impl Servers {
    fn load(&self, cfg: &RegistryBenchConfig, target: Target, rate: Option<f64>) -> LoadConfig {
        let base = LoadConfig {
            proto: Proto::Tars(version::TARS),
            conns: if rate.is_some() { cfg.open_conns } else { cfg.conns },
            depth: cfg.depth,
            size: cfg.size,
            stop: Stop::Duration(cfg.duration),
            warmup: cfg.warmup,
            rate,
            io: if rate.is_some() { cfg.open_io } else { cfg.client_io },
            threads: cfg.threads,
            progress: false,
            ..LoadConfig::default()
        };
        match target {
            Target::Registry => LoadConfig {
                addr: self.registry,
                servant: QUERY_OBJ.into(),
                func: "findObjectById".into(),
                call: Some(self.call.clone()),
                ..base
            },
            Target::Echo => LoadConfig {
                addr: self.echo,
                servant: echo::DEFAULT_SERVANT.into(),
                func: echo::DEFAULT_FUNC.into(),
                ..base
            },
        }
    }

    fn measure(
        &self,
        cfg: &RegistryBenchConfig,
        target: Target,
        rate_of: Option<(Target, f64, f64)>,
        log: &mut dyn FnMut(&str),
    ) -> Result<Measured> {
        let load = self.load(cfg, target, rate_of.map(|(_, f, max)| f * max));
        let mut edges: Vec<CpuSnapshot> = Vec::with_capacity(2);
        let mut observe = |_: Edge| edges.push(snapshot(cfg.db_pid));
        let report = load::run(&load, Some(&mut observe)).with_context(|| format!("load on the {}", target.name()))?;
        let cpu = match &edges[..] {
            [a, b] => split(a, b, target.threads()),
            _ => CpuSplit::default(),
        };
        let m = Measured { target, load, report, cpu, rate_of: rate_of.map(|(t, f, _)| (t, f)) };
        log(&format!("  {}", m.line()));
        Ok(m)
    }
}

// ---------------------------------------------------------------------------------------
// Propagation

/// One measured change.
#[derive(Debug, Clone)]
pub struct Change {
    /// `present_state` or `port`.
    pub kind: &'static str,
    /// The object.
    pub servant: String,
    /// How long the UPDATE statement took.
    pub write: Duration,
    /// From just before the UPDATE until the first connection saw the change.
    pub first_seen: Duration,
    /// From just before the UPDATE until every connection saw it.
    pub all_seen: Duration,
}

/// Whether a `findObjectById4Any` answer (active, inactive) shows a change.
type SeenFn = dyn Fn(&[EndpointF], &[EndpointF]) -> bool;

/// Tiny deterministic generator for pauses.
fn next_rand(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// Measures `cfg.changes` changes through the registry at `addr`. `round` keeps the
/// objects and ports of successive rounds apart.
pub fn propagation(
    store: &Store,
    addr: SocketAddr,
    cfg: &RegistryBenchConfig,
    round: usize,
    log: &mut dyn FnMut(&str),
) -> Result<Vec<Change>> {
    let mut conns = (0..cfg.poll_conns.max(1))
        .map(|_| RawConn::connect(addr).with_context(|| format!("connecting to {addr}")))
        .collect::<Result<Vec<_>>>()?;
    let mut rng = 0x2545_F491_4F6C_DD1D ^ (round as u64 + 1);
    let host = node_host(0);
    let mut out = Vec::with_capacity(cfg.changes);
    for i in 0..cfg.changes {
        let k = (round * 7919 + i * 97 + 1) % cfg.objects;
        let (app, server, id) = (format!("App{k}"), format!("Server{k}"), servant(k));
        // A random point of the 200 ms poll cycle.
        std::thread::sleep(Duration::from_millis(50 + next_rand(&mut rng) % 250));
        let (kind, seen): (&'static str, Box<SeenFn>) = if i % 2 == 0 {
            let h = host.clone();
            ("present_state", Box::new(move |_a, inactive| inactive.iter().any(|e| e.host == h)))
        } else {
            let port = 60_000 + (round * 1000 + i) % 5000;
            let h = host.clone();
            ("port", Box::new(move |active, _i| active.iter().any(|e| e.host == h && e.port == port as i32)))
        };
        // The state before: must not show the change yet.
        let (a, ina) = find_any(&mut conns[0], &id)?;
        if seen(&a, &ina) {
            bail!("{id}: the change is visible before it was made");
        }
        let t0 = Instant::now();
        if i % 2 == 0 {
            let p = params![app, server, host.clone()];
            store.run_blocking(move |s| {
                s.exec(
                    "UPDATE t_server_conf SET present_state = 'inactive' \
                     WHERE application = ? AND server_name = ? AND node_name = ?",
                    &p,
                )
            })?;
        } else {
            let port = 60_000 + (round * 1000 + i) % 5000;
            let p = params![format!("tcp -h {host} -p {port} -t 60000"), app, server, host.clone()];
            store.run_blocking(move |s| {
                s.exec("UPDATE t_adapter_conf SET endpoint = ? WHERE application = ? AND server_name = ? AND node_name = ?", &p)
            })?;
        }
        let write = t0.elapsed();
        let mut seen_at: Vec<Option<Duration>> = vec![None; conns.len()];
        while seen_at.iter().any(Option::is_none) {
            if t0.elapsed() > PROPAGATION_LIMIT {
                bail!("{kind} change of {id} not visible on every connection within {PROPAGATION_LIMIT:?}");
            }
            for (c, at) in conns.iter_mut().zip(seen_at.iter_mut()) {
                if at.is_none() {
                    let (a, ina) = find_any(c, &id)?;
                    if seen(&a, &ina) {
                        *at = Some(t0.elapsed());
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let times: Vec<Duration> = seen_at.into_iter().flatten().collect();
        let change = Change {
            kind,
            servant: id,
            write,
            first_seen: times.iter().copied().min().unwrap_or_default(),
            all_seen: times.iter().copied().max().unwrap_or_default(),
        };
        log(&format!(
            "  change {:>2} {:<13} {:<22} write {:>6.1} ms  first seen {:>6.1} ms  all {} conns {:>6.1} ms",
            i + 1,
            change.kind,
            change.servant,
            ms(change.write),
            ms(change.first_seen),
            conns.len(),
            ms(change.all_seen)
        ));
        out.push(change);
    }
    Ok(out)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Min, median, p99 (nearest rank) and max, in ms.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Distribution {
    /// Samples.
    pub n: usize,
    /// Smallest.
    pub min_ms: f64,
    /// Median (nearest rank).
    pub median_ms: f64,
    /// 99th percentile (nearest rank; the maximum below 100 samples).
    pub p99_ms: f64,
    /// Largest.
    pub max_ms: f64,
}

impl Distribution {
    /// Of `samples`.
    pub fn of(samples: impl IntoIterator<Item = Duration>) -> Distribution {
        let mut v: Vec<f64> = samples.into_iter().map(ms).collect();
        if v.is_empty() {
            return Distribution::default();
        }
        v.sort_by(f64::total_cmp);
        let rank = |q: f64| v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
        Distribution { n: v.len(), min_ms: v[0], median_ms: rank(0.5), p99_ms: rank(0.99), max_ms: v[v.len() - 1] }
    }

    fn to_json(self) -> Json {
        json!({
            "n": self.n,
            "min_ms": round1(self.min_ms),
            "median_ms": round1(self.median_ms),
            "p99_ms": round1(self.p99_ms),
            "max_ms": round1(self.max_ms),
        })
    }

    fn text(self) -> String {
        format!(
            "min {:.1}  median {:.1}  p99 {:.1}  max {:.1} ms (n={})",
            self.min_ms, self.median_ms, self.p99_ms, self.max_ms, self.n
        )
    }
}

// ---------------------------------------------------------------------------------------
// A round and the whole run

/// Everything measured with one shard count.
#[derive(Debug, Clone)]
pub struct Round {
    /// Server shards.
    pub shards: usize,
    /// The IO driver the servers ran.
    pub io: IoMode,
    /// Registry start, including its first full load of the routes.
    pub registry_start: Duration,
    /// Servants the registry routes.
    pub servants_routed: usize,
    /// Request bytes and result bytes of one registry call.
    pub registry_sizes: (usize, usize),
    /// The same for the echo.
    pub echo_sizes: (usize, usize),
    /// Closed-loop runs, in the order they ran.
    pub closed: Vec<Measured>,
    /// Open-loop runs: registry and echo at each fraction of the registry's QPS, then the
    /// echo at half its own.
    pub open: Vec<Measured>,
    /// Propagation.
    pub changes: Vec<Change>,
    /// Connections polled per change.
    pub poll_conns: usize,
    /// CPU over an idle window (no queries; the loader polling), and its length.
    pub idle_cpu: (CpuSplit, Duration),
}

fn median_by_qps(runs: &[&Measured]) -> Option<Measured> {
    let mut v: Vec<&Measured> = runs.to_vec();
    v.sort_by(|a, b| a.report.qps.total_cmp(&b.report.qps));
    v.get(v.len().saturating_sub(1) / 2).map(|m| (*m).clone())
}

impl Round {
    fn closed_of(&self, t: Target) -> Vec<&Measured> {
        self.closed.iter().filter(|m| m.target == t).collect()
    }

    /// The median closed-loop run (by QPS) of `t`.
    pub fn closed_median(&self, t: Target) -> Option<Measured> {
        median_by_qps(&self.closed_of(t))
    }

    /// Registry QPS over echo QPS (medians).
    pub fn qps_ratio(&self) -> f64 {
        match (self.closed_median(Target::Registry), self.closed_median(Target::Echo)) {
            (Some(r), Some(e)) if e.report.qps > 0.0 => r.report.qps / e.report.qps,
            _ => 0.0,
        }
    }

    /// Propagation delays until every connection saw the change.
    pub fn propagation(&self) -> Distribution {
        Distribution::of(self.changes.iter().map(|c| c.all_seen))
    }

    fn range(&self, t: Target) -> (f64, f64) {
        let q: Vec<f64> = self.closed_of(t).iter().map(|m| m.report.qps).collect();
        (q.iter().copied().fold(f64::INFINITY, f64::min), q.iter().copied().fold(0.0, f64::max))
    }

    /// The registry's open-loop run at half load.
    pub fn registry_half(&self) -> Option<&Measured> {
        self.open.iter().find(|m| m.target == Target::Registry && m.rate_of == Some((Target::Registry, 0.5)))
    }

    /// As JSON.
    pub fn to_json(&self) -> Json {
        let med = |t| self.closed_median(t).map(|m| m.to_json());
        let (rmin, rmax) = self.range(Target::Registry);
        let (emin, emax) = self.range(Target::Echo);
        let idle = self.idle_cpu.1.as_secs_f64().max(1e-9);
        json!({
            "shards": self.shards,
            "io": self.io.as_str(),
            "registry_start_s": round1(self.registry_start.as_secs_f64() * 1000.0) / 1000.0,
            "servants_routed": self.servants_routed,
            "registry_request_bytes": self.registry_sizes.0,
            "registry_result_bytes": self.registry_sizes.1,
            "echo_request_bytes": self.echo_sizes.0,
            "echo_result_bytes": self.echo_sizes.1,
            "closed": {
                "registry": med(Target::Registry),
                "echo": med(Target::Echo),
                "registry_qps_range": [round1(rmin), round1(rmax)],
                "echo_qps_range": [round1(emin), round1(emax)],
                "runs": self.closed.iter().map(Measured::to_json).collect::<Vec<_>>(),
                "qps_ratio": round1(self.qps_ratio() * 1000.0) / 1000.0,
            },
            "open": self.open.iter().map(Measured::to_json).collect::<Vec<_>>(),
            "propagation": {
                "all_seen": self.propagation().to_json(),
                "first_seen": Distribution::of(self.changes.iter().map(|c| c.first_seen)).to_json(),
                "write": Distribution::of(self.changes.iter().map(|c| c.write)).to_json(),
                "poll_conns": self.poll_conns,
            },
            "idle": {
                "seconds": round1(idle * 10.0) / 10.0,
                "registry_background_cores": round1(self.idle_cpu.0.other.as_secs_f64() / idle * 1000.0) / 1000.0,
                "db_cores": self.idle_cpu.0.db.map(|d| round1(d.as_secs_f64() / idle * 1000.0) / 1000.0),
            },
            "goals": self.goals().iter().map(|(g, ok, v)| json!({"goal": g, "met": ok, "value": v})).collect::<Vec<_>>(),
        })
    }

    /// (goal, met, measured value) for the three goals.
    pub fn goals(&self) -> Vec<(&'static str, bool, String)> {
        let ratio = self.qps_ratio();
        let p99 = self.registry_half().map(|m| m.report.latency.p99_us).unwrap_or(f64::INFINITY);
        let prop = self.propagation();
        vec![
            ("registry QPS >= 90% of echo QPS", ratio >= 0.9, format!("{:.0}%", ratio * 100.0)),
            ("registry p99 < 1 ms at half load", p99 < 1000.0, format!("{p99:.0} us")),
            (
                "propagation <= 1 s (max over changes)",
                prop.n > 0 && prop.max_ms <= 1000.0,
                format!("max {:.0} ms", prop.max_ms),
            ),
        ]
    }

    /// The human-readable summary.
    pub fn text(&self, cfg: &RegistryBenchConfig) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "== {} server shard(s) on {}: registry started in {:.2} s ({} servants routed) ==",
            self.shards,
            self.io,
            self.registry_start.as_secs_f64(),
            self.servants_routed
        );
        let _ = writeln!(
            s,
            "request/result bytes: registry findObjectById {}/{}, echo {}/{}",
            self.registry_sizes.0, self.registry_sizes.1, self.echo_sizes.0, self.echo_sizes.1
        );
        let _ = writeln!(
            s,
            "closed loop {}x{}, {} client thread(s) on {}, {:.1} s after {:.1} s warm-up, median of {} (range):",
            cfg.conns,
            cfg.depth,
            cfg.threads,
            cfg.client_io,
            cfg.duration.as_secs_f64(),
            cfg.warmup.as_secs_f64(),
            cfg.reps
        );
        for t in [Target::Registry, Target::Echo] {
            if let Some(m) = self.closed_median(t) {
                let (lo, hi) = self.range(t);
                let _ = writeln!(s, "  {}  [{lo:.0}..{hi:.0}]", m.line());
            }
        }
        let _ = writeln!(s, "  registry/echo QPS: {:.0}%", self.qps_ratio() * 100.0);
        let _ = writeln!(
            s,
            "open loop over {} conns, {} client thread(s) on {} (latency from intended send time):",
            cfg.open_conns, cfg.threads, cfg.open_io
        );
        for m in &self.open {
            let _ = writeln!(s, "  {}", m.line());
        }
        let conns = cfg.poll_conns.max(1);
        let _ = writeln!(
            s,
            "propagation ({} changes, findObjectById4Any polled every 1 ms on {conns} conns, from before the UPDATE):",
            self.changes.len()
        );
        let _ = writeln!(s, "  all conns see it: {}", self.propagation().text());
        let _ =
            writeln!(s, "  first conn sees it: {}", Distribution::of(self.changes.iter().map(|c| c.first_seen)).text());
        let _ = writeln!(s, "  UPDATE statement: {}", Distribution::of(self.changes.iter().map(|c| c.write)).text());
        let idle = self.idle_cpu.1.as_secs_f64().max(1e-9);
        let db = self.idle_cpu.0.db.map(|d| format!(", database server {:.3} cores", d.as_secs_f64() / idle));
        let _ = writeln!(
            s,
            "idle for {idle:.1} s (no queries), the registry polling the database: loader/store/jobs threads {:.3} cores{}",
            self.idle_cpu.0.other.as_secs_f64() / idle,
            db.unwrap_or_default()
        );
        let _ = writeln!(s, "goals:");
        for (g, ok, v) in self.goals() {
            let _ = writeln!(s, "  [{}] {g}: {v}", if ok { "met" } else { "NOT met" });
        }
        s
    }
}

/// Runs one round: both servers up with `shards` shards, the load runs, propagation.
pub fn run_round(
    cfg: &RegistryBenchConfig,
    db: &BenchDb,
    shards: usize,
    round: usize,
    log: &mut dyn FnMut(&str),
) -> Result<Round> {
    let started = Instant::now();
    let (registry, registry_addr) = start_registry(&db.store, cfg.io, shards, cfg.change_poll)?;
    let registry_start = started.elapsed();
    let servants_routed = registry.runtime().hub.servant_count();
    let io = registry.server().io_of(&format!("{QUERY_OBJ}Adapter")).unwrap_or(cfg.io);
    let (echo_handle, echo_addr, _) = echo::start_tars(&EchoOptions { io: cfg.io, shards, ..EchoOptions::default() })?;
    log(&format!(
        "registry on {registry_addr} ({servants_routed} servants, started in {:.2} s), echo on {echo_addr}, {shards} shard(s) each on {io}",
        registry_start.as_secs_f64()
    ));
    let result = (|| {
        let registry_sizes = probe(registry_addr, QUERY_OBJ, "findObjectById", query_body(&servant(0)))?;
        let mut w = ParamWriter::new(version::TARS);
        w.write_str(1, "sIn", &"a".repeat(cfg.size));
        let echo_sizes = probe(echo_addr, echo::DEFAULT_SERVANT, echo::DEFAULT_FUNC, w.finish())?;
        let servers = Servers { registry: registry_addr, echo: echo_addr, call: registry_call(cfg.objects) };

        let mut closed = Vec::new();
        for _ in 0..cfg.reps.max(1) {
            for t in [Target::Registry, Target::Echo] {
                closed.push(servers.measure(cfg, t, None, log)?);
            }
        }
        let med = |t| median_by_qps(&closed.iter().filter(|m| m.target == t).collect::<Vec<_>>());
        let r_qps = med(Target::Registry).map(|m| m.report.qps).unwrap_or(0.0);
        let e_qps = med(Target::Echo).map(|m| m.report.qps).unwrap_or(0.0);
        if r_qps <= 0.0 || e_qps <= 0.0 {
            bail!("a closed-loop run completed nothing (registry {r_qps:.0}/s, echo {e_qps:.0}/s)");
        }
        let mut open = Vec::new();
        if cfg.open {
            for &f in &cfg.open_fractions {
                for t in [Target::Registry, Target::Echo] {
                    open.push(servers.measure(cfg, t, Some((Target::Registry, f, r_qps)), log)?);
                }
            }
            open.push(servers.measure(cfg, Target::Echo, Some((Target::Echo, 0.5, e_qps)), log)?);
        }

        let idle_start = (snapshot(cfg.db_pid), Instant::now());
        std::thread::sleep(cfg.idle);
        let idle_cpu = (split(&idle_start.0, &snapshot(cfg.db_pid), "-"), idle_start.1.elapsed());
        let changes =
            if cfg.propagation { propagation(&db.store, registry_addr, cfg, round, log)? } else { Vec::new() };
        Ok(Round {
            shards,
            io,
            registry_start,
            servants_routed,
            registry_sizes,
            echo_sizes,
            closed,
            open,
            changes,
            poll_conns: cfg.poll_conns.max(1),
            idle_cpu,
        })
    })();
    echo_handle.shutdown();
    let _ = echo_handle.wait();
    let _ = registry.shutdown();
    result
}

/// The whole benchmark.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The machine.
    pub machine: String,
    /// The database.
    pub database: String,
    /// How it was filled.
    pub populated: Populated,
    /// CPU while settling after the fill, no registry running yet, and its length.
    pub baseline: (CpuSplit, Duration),
    /// One per shard count.
    pub rounds: Vec<Round>,
}

/// Creates and fills the database, then runs a round per shard count.
pub fn run(cfg: &RegistryBenchConfig, log: &mut dyn FnMut(&str)) -> Result<Outcome> {
    if cfg.objects == 0 || cfg.nodes == 0 || cfg.shards.is_empty() || cfg.shards.contains(&0) {
        bail!("--objects, --nodes and --shards must be at least 1");
    }
    let db = BenchDb::create(cfg.url.as_deref())?;
    log(&format!("database: {}", db.describe));
    let populated = populate(&db.store, cfg.objects, cfg.nodes)?;
    log(&format!(
        "filled: {} t_server_conf + {} t_adapter_conf rows in {:.1} s ({} rows per INSERT)",
        populated.servers,
        populated.adapters,
        populated.took.as_secs_f64(),
        ROWS_PER_STATEMENT
    ));
    let settle_start = (snapshot(cfg.db_pid), Instant::now());
    std::thread::sleep(cfg.settle);
    let baseline = (split(&settle_start.0, &snapshot(cfg.db_pid), "-"), settle_start.1.elapsed());
    if let Some(db_cpu) = baseline.0.db {
        log(&format!(
            "settled {:.1} s; database server without a registry: {:.3} cores",
            baseline.1.as_secs_f64(),
            db_cpu.as_secs_f64() / baseline.1.as_secs_f64().max(1e-9)
        ));
    }
    let mut rounds = Vec::new();
    for (i, &shards) in cfg.shards.iter().enumerate() {
        rounds.push(run_round(cfg, &db, shards, i, log)?);
    }
    Ok(Outcome { machine: crate::store::machine_info(), database: db.describe.clone(), populated, baseline, rounds })
}

impl Outcome {
    /// As one JSON object.
    pub fn to_json(&self, cfg: &RegistryBenchConfig) -> Json {
        json!({
            "machine": self.machine,
            "database": self.database,
            "objects": cfg.objects,
            "nodes": cfg.nodes,
            "server_io": cfg.io.as_str(),
            "change_poll_ms": cfg.change_poll.map(|d| d.as_millis() as u64),
            "client": {
                "threads": cfg.threads,
                "closed_io": cfg.client_io.as_str(),
                "open_io": cfg.open_io.as_str(),
                "conns": cfg.conns,
                "depth": cfg.depth,
                "open_conns": cfg.open_conns,
            },
            "echo_size": cfg.size,
            "duration_s": cfg.duration.as_secs_f64(),
            "warmup_s": cfg.warmup.as_secs_f64(),
            "reps": cfg.reps,
            "populate": {
                "server_rows": self.populated.servers,
                "adapter_rows": self.populated.adapters,
                "seconds": round1(self.populated.took.as_secs_f64() * 10.0) / 10.0,
            },
            "baseline_db_cores": self.baseline.0.db.map(|d| {
                round1(d.as_secs_f64() / self.baseline.1.as_secs_f64().max(1e-9) * 1000.0) / 1000.0
            }),
            "rounds": self.rounds.iter().map(Round::to_json).collect::<Vec<_>>(),
        })
    }

    /// The human-readable report.
    pub fn text(&self, cfg: &RegistryBenchConfig) -> String {
        let mut s = format!(
            "machine: {}\ndatabase: {}\n{} objects x {} nodes: {} + {} rows filled in {:.1} s\n\
             client: {} thread(s); servers (registry QueryObj and TARS echo) in this process on {}; \
             registry change poll {}\n\n",
            self.machine,
            self.database,
            cfg.objects,
            cfg.nodes,
            self.populated.servers,
            self.populated.adapters,
            self.populated.took.as_secs_f64(),
            cfg.threads,
            cfg.io,
            cfg.change_poll.map_or("200 ms (default)".to_owned(), |d| format!("{} ms", d.as_millis())),
        );
        if let Some(d) = self.baseline.0.db {
            let _ = writeln!(
                s,
                "database server before any registry ran ({:.1} s after the fill): {:.3} cores\n",
                self.baseline.1.as_secs_f64(),
                d.as_secs_f64() / self.baseline.1.as_secs_f64().max(1e-9)
            );
        }
        for r in &self.rounds {
            s.push_str(&r.text(cfg));
            s.push('\n');
        }
        s
    }
}
