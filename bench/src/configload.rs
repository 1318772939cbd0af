//! The config benchmark behind `tars-bench-config`: `ConfigF.loadConfig` on tarsconfig's
//! `ConfigObj` next to the TARS echo server, side by side in one process, with the same
//! client, connections and concurrency.
//!
//! 1. A fresh `db_tars` (SQLite in a temp dir, or a database on the MySQL server of `--url`)
//!    holds a few files as TarsWeb writes them: an app-level `Bench/common.conf`, and per
//!    server `Bench.Cfg<k>` a server-level `cfg<k>.conf` that references it and a node-level
//!    `cfg<k>.conf` for host 127.0.0.1 (the caller's IP, which `loadConfig` uses as the host).
//!    So every answer is upstream's concatenation of three files.
//! 2. For each shard count: tarsconfig ([`tars_config::ConfigService`] in an
//!    [`Application`], its cache loaded before the first call), optionally a second one with
//!    the cache off (`<cache> maxMB=0`: every call reads the database on the store's worker),
//!    and the echo server ([`crate::echo::start_tars`]) run on the same IO driver, the same
//!    shards and the same adapter settings. The load limiter (upstream's 11 loads per minute
//!    per caller and file, which would answer 429 within the first millisecond) is raised to
//!    `limitinterval=2147483647`; it is still consulted on every call.
//! 3. [`load::run`] drives them in turns (config, [uncached], echo, config, …): closed loop,
//!    `conns` × `depth`; config requests are `loadConfig` for one of the servers' files at
//!    random, every reply must be 0 with a non-empty file; echo requests are the 100 B echo
//!    and (`echo-sized`) the echo of a payload as long as a `loadConfig` answer.
//!    Each server's CPU is the time of the threads it started (its shards and, for
//!    tarsconfig, its cache loader); the store's worker threads are counted apart.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use bytes::Bytes;
use serde_json::{json, Value as Json};
use tars_config::ConfigService;
use tars_core_net::app::{Application, Running};
use tars_core_net::rt::IoMode;
use tars_proto::config::Config;
use tars_proto::packet::version;
use tars_proto::rpc::{ParamReader, ParamWriter};
use tars_sql::{Store, Value};
use tars_testkit::raw::RawConn;

use crate::cpu;
use crate::echo::{self, EchoOptions};
use crate::hist::round1;
use crate::load::{self, Call, Edge, LoadConfig, Report, Stop};
use crate::proto::{Proto, ResultCheck};
use crate::registry::BenchDb;

/// tarsconfig's object.
pub const CONFIG_OBJ: &str = tars_config::service::CONFIG_OBJ;
/// The application of the files.
pub const APP: &str = "Bench";
/// The host the node-level files are for: the client's IP.
pub const HOST: &str = "127.0.0.1";
/// The join upstream puts between concatenated files.
const SEP: &str = "\r\n\r\n";

/// What a run covers.
#[derive(Debug, Clone)]
pub struct ConfigBenchConfig {
    /// A MySQL server URL; `None` = embedded SQLite in a temp dir.
    pub url: Option<String>,
    /// Servers, each with its own file (`loadConfig` picks one at random per request).
    pub servers: usize,
    /// Bytes of each server-level file (the app file is half of it, the node file 1/8).
    pub file_bytes: usize,
    /// Server shard counts, one round each.
    pub shards: Vec<usize>,
    /// The servers' IO driver.
    pub io: IoMode,
    /// Client IO driver.
    pub client_io: IoMode,
    /// Client shard threads.
    pub threads: usize,
    /// Connections.
    pub conns: usize,
    /// Requests in flight per connection.
    pub depth: usize,
    /// Echo payload bytes.
    pub size: usize,
    /// Measured window per run.
    pub duration: Duration,
    /// Warm-up per run.
    pub warmup: Duration,
    /// Runs per server (interleaved).
    pub reps: usize,
    /// Also measure tarsconfig with its cache off.
    pub uncached: bool,
    /// Also measure the echo with a payload as long as a `loadConfig` answer.
    pub echo_sized: bool,
}

impl ConfigBenchConfig {
    /// The full run: 4 servers' files of 1 KiB, 1 and 2 shards, epoll-lt, one client thread,
    /// 16 × 4, 5 s after 1 s warm-up, 3 repetitions, the uncached server too.
    pub fn full() -> ConfigBenchConfig {
        ConfigBenchConfig {
            url: None,
            servers: 4,
            file_bytes: 1024,
            shards: vec![1, 2],
            io: IoMode::EpollLt,
            client_io: IoMode::EpollLt,
            threads: 1,
            conns: 16,
            depth: 4,
            size: 100,
            duration: Duration::from_secs(5),
            warmup: Duration::from_secs(1),
            reps: 3,
            uncached: true,
            echo_sized: true,
        }
    }

    /// A smoke run: 1 shard, 0.4 s after 0.1 s warm-up, 1 repetition.
    pub fn quick() -> ConfigBenchConfig {
        ConfigBenchConfig {
            shards: vec![1],
            duration: Duration::from_millis(400),
            warmup: Duration::from_millis(100),
            reps: 1,
            ..ConfigBenchConfig::full()
        }
    }
}

// ---------------------------------------------------------------------------------------
// The files

/// A config file of about `bytes` bytes: one domain `<name>` of `k=v` lines.
pub fn file_text(name: &str, bytes: usize) -> String {
    let mut s = format!("<{name}>\n");
    let mut i = 0;
    while s.len() + name.len() + 4 < bytes.max(16) {
        let _ = writeln!(s, "  key{i}=value {i} of {name}");
        i += 1;
    }
    let _ = write!(s, "</{name}>");
    s
}

fn insert_file(store: &Store, server_name: &str, filename: &str, level: i64, host: &str, text: &str) -> Result<i64> {
    let params: Vec<Value> = vec![server_name.into(), host.into(), filename.into(), text.into(), Value::Int(level)];
    let id = store
        .run_blocking(move |s| {
            s.exec(
                "INSERT INTO t_config_files (server_name, set_name, set_area, set_group, host, filename, config, \
                 posttime, lastuser, level, config_flag) VALUES (?, '', '', '', ?, ?, ?, '2026-12-07 10:00:00', \
                 'admin', ?, 0)",
                &params,
            )?;
            Ok(s.last_insert_id())
        })
        .with_context(|| format!("inserting {server_name}/{filename}"))?;
    i64::try_from(id).map_err(|_| anyhow!("insert id {id}"))
}

/// The files: returns, per server, (`server`, `filename`, the expected `loadConfig` answer).
pub fn populate(store: &Store, servers: usize, file_bytes: usize) -> Result<Vec<(String, String, String)>> {
    let common = file_text("common", file_bytes / 2);
    let app_id = insert_file(store, APP, "common.conf", 1, "", &common)?;
    let mut out = Vec::new();
    for k in 0..servers {
        let (server, file) = (format!("Cfg{k}"), format!("cfg{k}.conf"));
        let server_text = file_text(&format!("server{k}"), file_bytes);
        let node_text = file_text(&format!("node{k}"), file_bytes / 8);
        let id = insert_file(store, &format!("{APP}.{server}"), &file, 2, "", &server_text)?;
        let refs: Vec<Value> = vec![Value::Int(id), Value::Int(app_id)];
        store
            .run_blocking(move |s| {
                s.exec("INSERT INTO t_config_references (config_id, reference_id) VALUES (?, ?)", &refs)
            })
            .context("inserting t_config_references")?;
        insert_file(store, &format!("{APP}.{server}"), &file, 3, HOST, &node_text)?;
        out.push((server, file, [common.as_str(), &server_text, &node_text].join(SEP)));
    }
    Ok(out)
}

/// `loadConfig(app, server, filename)`'s parameters.
pub fn load_body(server: &str, file: &str) -> Bytes {
    let mut w = ParamWriter::new(version::TARS);
    w.write_str(1, "app", APP);
    w.write_str(2, "server", server);
    w.write_str(3, "filename", file);
    w.finish()
}

/// A `loadConfig` result: 0 and a non-empty file.
fn check_loaded(ver: i16, results: &Bytes) -> Result<(), String> {
    let mut p = ParamReader::new(ver, results).map_err(|e| format!("loadConfig: {e}"))?;
    let ret: i32 = p.read_ret().map_err(|e| format!("loadConfig: {e}"))?;
    if ret != 0 {
        return Err(format!("loadConfig returned {ret}"));
    }
    let text: String = p.read(4, "config").map_err(|e| format!("loadConfig config: {e}"))?;
    if text.is_empty() {
        return Err("loadConfig answered an empty file".into());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The servers

/// tarsconfig's config: ConfigObj with the echo server's adapter settings; the limiter
/// raised; `<cache> maxMB=0` when `cached` is false.
pub fn config_server_config(cached: bool) -> String {
    let cache = if cached { "" } else { "<cache>\n  maxMB=0\n</cache>\n" };
    let extra = format!("<limit>\n  limitinterval=2147483647\n</limit>\n{cache}");
    crate::conf::server_config("tars", "tarsconfig", &[CONFIG_OBJ], "", &extra)
}

fn thread_ids() -> HashSet<u32> {
    cpu::thread_times().into_iter().map(|(tid, _, _)| tid).collect()
}

/// Starts tarsconfig; returns it, its address and the threads it started.
fn start_config(store: &Store, io: IoMode, shards: usize, cached: bool) -> Result<(Running, SocketAddr, HashSet<u32>)> {
    let before = thread_ids();
    let config = Config::parse(&config_server_config(cached)).context("tarsconfig config")?;
    let running = Application::new(config)?
        .io(io)
        .shards(shards)
        .service(ConfigService::new(Some(store.clone())))
        .start()
        .context("starting tarsconfig")?;
    let addr = running.server().addr(&format!("{CONFIG_OBJ}Adapter")).ok_or_else(|| anyhow!("ConfigObj not bound"))?;
    if cached {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let loaded = running.service::<ConfigService>().and_then(|s| s.cache()).is_some_and(|c| c.generation() > 0);
            if loaded {
                break;
            }
            if Instant::now() > deadline {
                bail!("tarsconfig's cache did not load within 20 s");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let threads = thread_ids().difference(&before).copied().collect();
    Ok((running, addr, threads))
}

/// Calls `loadConfig` once and compares the answer.
fn probe(addr: SocketAddr, server: &str, file: &str, expected: &str) -> Result<usize> {
    let mut conn = RawConn::connect(addr).with_context(|| format!("connecting to {addr}"))?;
    let req = conn.request(CONFIG_OBJ, "loadConfig", version::TARS, load_body(server, file));
    let reply = conn.call(&req).context("loadConfig")?;
    if reply.ret != 0 {
        bail!("loadConfig: iRet {}: {}", reply.ret, reply.desc);
    }
    let mut p = reply.params()?;
    let ret: i32 = p.read_ret()?;
    let text: String = p.read(4, "config")?;
    if ret != 0 || text != expected {
        bail!("loadConfig {server} {file}: {ret}, {} bytes, expected 0 and {} bytes", text.len(), expected.len());
    }
    Ok(reply.body.len())
}

/// Calls the echo once; the size of its results.
fn probe_echo(addr: SocketAddr, size: usize) -> Result<usize> {
    let mut conn = RawConn::connect(addr).with_context(|| format!("connecting to {addr}"))?;
    let mut w = ParamWriter::new(version::TARS);
    w.write_str(1, "sIn", &"a".repeat(size));
    let req = conn.request(echo::DEFAULT_SERVANT, echo::DEFAULT_FUNC, version::TARS, w.finish());
    let reply = conn.call(&req).context("echo")?;
    if reply.ret != 0 {
        bail!("echo: iRet {}: {}", reply.ret, reply.desc);
    }
    Ok(reply.body.len())
}

// ---------------------------------------------------------------------------------------
// Load runs

/// Which server a run measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// tarsconfig, cached.
    Config,
    /// tarsconfig, cache off.
    Uncached,
    /// The TARS echo, `size` bytes.
    Echo,
    /// The TARS echo with a payload as long as a `loadConfig` answer.
    EchoSized,
}

impl Target {
    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Target::Config => "config",
            Target::Uncached => "config-nocache",
            Target::Echo => "echo",
            Target::EchoSized => "echo-sized",
        }
    }
}

/// One load run.
#[derive(Debug, Clone)]
pub struct Measured {
    /// The server.
    pub target: Target,
    /// What the load generator saw.
    pub report: Report,
    /// CPU of the server's threads over the window.
    pub server_cpu: Duration,
    /// CPU of the store's worker threads over the window.
    pub store_cpu: Duration,
}

impl Measured {
    /// Server CPU µs per reply.
    pub fn server_us_per_req(&self) -> f64 {
        if self.report.completed == 0 {
            0.0
        } else {
            self.server_cpu.as_secs_f64() * 1e6 / self.report.completed as f64
        }
    }

    fn cores(&self, d: Duration) -> f64 {
        d.as_secs_f64() / self.report.window.as_secs_f64().max(1e-9)
    }

    /// As JSON.
    pub fn to_json(&self) -> Json {
        json!({
            "target": self.target.name(),
            "completed": self.report.completed,
            "qps": round1(self.report.qps),
            "errors": self.report.errors,
            "first_error": self.report.first_error,
            "latency_us": self.report.latency.to_json(),
            "server_cores": round1(self.cores(self.server_cpu) * 100.0) / 100.0,
            "store_cores": round1(self.cores(self.store_cpu) * 100.0) / 100.0,
            "server_cpu_us_per_req": round1(self.server_us_per_req() * 100.0) / 100.0,
        })
    }

    fn line(&self) -> String {
        let l = &self.report.latency;
        let err = self.report.first_error.as_ref().map(|e| format!("  FIRST ERROR: {e}")).unwrap_or_default();
        format!(
            "{:<15} {:>9.0} req/s  p50 {:>7.1}  p99 {:>8.1}  max {:>8.1} us  server {:.2} us/req ({:.2} cores)  \
             store {:.2} cores  errors {}{err}",
            self.target.name(),
            self.report.qps,
            l.p50_us,
            l.p99_us,
            l.max_us,
            self.server_us_per_req(),
            self.cores(self.server_cpu),
            self.cores(self.store_cpu),
            self.report.errors
        )
    }
}

struct Servers {
    targets: Vec<(Target, SocketAddr, HashSet<u32>)>,
    call: Call,
    /// The echo-sized payload.
    sized: usize,
}

impl Servers {
    fn measure(&self, cfg: &ConfigBenchConfig, i: usize, log: &mut dyn FnMut(&str)) -> Result<Measured> {
        let (target, addr, tids) = &self.targets[i];
        let base = LoadConfig {
            addr: *addr,
            proto: Proto::Tars(version::TARS),
            conns: cfg.conns,
            depth: cfg.depth,
            size: cfg.size,
            stop: Stop::Duration(cfg.duration),
            warmup: cfg.warmup,
            io: cfg.client_io,
            threads: cfg.threads,
            ..LoadConfig::default()
        };
        let load = match target {
            Target::Echo => {
                LoadConfig { servant: echo::DEFAULT_SERVANT.into(), func: echo::DEFAULT_FUNC.into(), ..base }
            }
            Target::EchoSized => LoadConfig {
                servant: echo::DEFAULT_SERVANT.into(),
                func: echo::DEFAULT_FUNC.into(),
                size: self.sized,
                ..base
            },
            _ => LoadConfig {
                servant: CONFIG_OBJ.into(),
                func: "loadConfig".into(),
                call: Some(self.call.clone()),
                ..base
            },
        };
        let mut edges = Vec::with_capacity(2);
        let mut observe = |_: Edge| edges.push(cpu::thread_times());
        let report = load::run(&load, Some(&mut observe)).with_context(|| format!("load on {}", target.name()))?;
        let (mut server_cpu, mut store_cpu) = (Duration::ZERO, Duration::ZERO);
        if let [a, b] = &edges[..] {
            for (tid, name, t) in b {
                let before = a.iter().find(|(x, _, _)| x == tid).map(|(_, _, t)| *t).unwrap_or_default();
                let d = t.saturating_sub(before);
                if tids.contains(tid) {
                    server_cpu += d;
                } else if name.starts_with("tars-store") {
                    store_cpu += d;
                }
            }
        }
        let m = Measured { target: *target, report, server_cpu, store_cpu };
        log(&format!("  {}", m.line()));
        Ok(m)
    }
}

/// One shard count.
#[derive(Debug, Clone)]
pub struct Round {
    /// Server shards.
    pub shards: usize,
    /// Request and result bytes: loadConfig, echo, echo-sized.
    pub sizes: [(usize, usize); 3],
    /// Every run, in order.
    pub runs: Vec<Measured>,
}

impl Round {
    /// The median run (by QPS) of `t`.
    pub fn median(&self, t: Target) -> Option<&Measured> {
        let mut v: Vec<&Measured> = self.runs.iter().filter(|m| m.target == t).collect();
        v.sort_by(|a, b| a.report.qps.total_cmp(&b.report.qps));
        v.get(v.len().saturating_sub(1) / 2).copied()
    }

    /// `t`'s median QPS over the echo's.
    pub fn ratio(&self, t: Target) -> Option<f64> {
        let (a, e) = (self.median(t)?, self.median(Target::Echo)?);
        (e.report.qps > 0.0).then(|| a.report.qps / e.report.qps)
    }

    fn range(&self, t: Target) -> (f64, f64) {
        let q: Vec<f64> = self.runs.iter().filter(|m| m.target == t).map(|m| m.report.qps).collect();
        (q.iter().copied().fold(f64::INFINITY, f64::min), q.iter().copied().fold(0.0, f64::max))
    }

    fn targets(&self) -> Vec<Target> {
        [Target::Config, Target::Uncached, Target::Echo, Target::EchoSized]
            .into_iter()
            .filter(|t| self.runs.iter().any(|m| m.target == *t))
            .collect()
    }

    /// As JSON.
    pub fn to_json(&self) -> Json {
        let mut medians = serde_json::Map::new();
        for t in self.targets() {
            let (lo, hi) = self.range(t);
            let mut m = self.median(t).map(Measured::to_json).unwrap_or(Json::Null);
            if let Some(o) = m.as_object_mut() {
                o.insert("qps_range".into(), json!([round1(lo), round1(hi)]));
                o.insert("qps_ratio_to_echo".into(), json!(self.ratio(t).map(|r| (r * 1000.0).round() / 1000.0)));
            }
            medians.insert(t.name().into(), m);
        }
        json!({
            "shards": self.shards,
            "load_config_request_bytes": self.sizes[0].0,
            "load_config_reply_bytes": self.sizes[0].1,
            "echo_request_bytes": self.sizes[1].0,
            "echo_reply_bytes": self.sizes[1].1,
            "echo_sized_request_bytes": self.sizes[2].0,
            "echo_sized_reply_bytes": self.sizes[2].1,
            "median": medians,
            "runs": self.runs.iter().map(Measured::to_json).collect::<Vec<_>>(),
        })
    }

    /// The human-readable summary.
    pub fn text(&self, cfg: &ConfigBenchConfig) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "== {} server shard(s) on {}; closed loop {}x{}, {} client thread(s) on {}, {:.1} s after {:.1} s warm-up, \
             median of {} (range) ==",
            self.shards,
            cfg.io,
            cfg.conns,
            cfg.depth,
            cfg.threads,
            cfg.client_io,
            cfg.duration.as_secs_f64(),
            cfg.warmup.as_secs_f64(),
            cfg.reps
        );
        let _ = writeln!(
            s,
            "request/reply bytes: loadConfig {}/{}, echo {}/{}, echo-sized {}/{}",
            self.sizes[0].0, self.sizes[0].1, self.sizes[1].0, self.sizes[1].1, self.sizes[2].0, self.sizes[2].1
        );
        for t in self.targets() {
            if let Some(m) = self.median(t) {
                let (lo, hi) = self.range(t);
                let _ = writeln!(s, "  {}  [{lo:.0}..{hi:.0}]", m.line());
            }
        }
        for t in [Target::Config, Target::Uncached, Target::EchoSized] {
            if let Some(r) = self.ratio(t) {
                let _ = writeln!(s, "  {} / echo QPS: {:.3}", t.name(), r);
            }
        }
        if let (Some(c), Some(e)) = (self.median(Target::Config), self.median(Target::EchoSized)) {
            if e.report.qps > 0.0 {
                let _ = writeln!(s, "  config / echo-sized QPS: {:.3}", c.report.qps / e.report.qps);
            }
        }
        s
    }
}

/// The whole benchmark.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The machine.
    pub machine: String,
    /// The database.
    pub database: String,
    /// One per shard count.
    pub rounds: Vec<Round>,
}

/// Runs one round.
fn run_round(
    cfg: &ConfigBenchConfig,
    store: &Store,
    files: &[(String, String, String)],
    shards: usize,
    log: &mut dyn FnMut(&str),
) -> Result<Round> {
    let mut running = Vec::new();
    let mut targets = Vec::new();
    let result = (|| {
        let (r, addr, tids) = start_config(store, cfg.io, shards, true)?;
        running.push(r);
        targets.push((Target::Config, addr, tids));
        if cfg.uncached {
            let (r, addr, tids) = start_config(store, cfg.io, shards, false)?;
            running.push(r);
            targets.push((Target::Uncached, addr, tids));
        }
        let before = thread_ids();
        let (echo_handle, echo_addr, _) =
            echo::start_tars(&EchoOptions { io: cfg.io, shards, ..EchoOptions::default() })?;
        let echo_tids: HashSet<u32> = thread_ids().difference(&before).copied().collect();
        targets.push((Target::Echo, echo_addr, echo_tids.clone()));
        if cfg.echo_sized {
            targets.push((Target::EchoSized, echo_addr, echo_tids));
        }
        let inner = (|| {
            let mut reply = 0;
            for (_, addr, _) in targets.iter().filter(|t| matches!(t.0, Target::Config | Target::Uncached)) {
                for (server, file, expected) in files {
                    reply = probe(*addr, server, file, expected)?;
                }
            }
            let (server, file, _) = files.first().ok_or_else(|| anyhow!("no files"))?;
            let config_req =
                crate::proto::Request::calls(version::TARS, CONFIG_OBJ, "loadConfig", &[load_body(server, file)])?
                    .len();
            let echo_req =
                crate::proto::Request::tars(version::TARS, echo::DEFAULT_SERVANT, echo::DEFAULT_FUNC, cfg.size)?.len();
            let echo_reply = probe_echo(echo_addr, cfg.size)?;
            let sized = files.first().map_or(0, |f| f.2.len());
            let sized_req =
                crate::proto::Request::tars(version::TARS, echo::DEFAULT_SERVANT, echo::DEFAULT_FUNC, sized)?.len();
            let sized_reply = probe_echo(echo_addr, sized)?;
            let bodies: Vec<Bytes> = files.iter().map(|(s, f, _)| load_body(s, f)).collect();
            let check: ResultCheck = Arc::new(check_loaded);
            let servers = Servers { targets: targets.clone(), call: Call { bodies: Arc::new(bodies), check }, sized };
            log(&format!(
                "{shards} shard(s): {} on {}",
                servers.targets.iter().map(|(t, a, _)| format!("{} {a}", t.name())).collect::<Vec<_>>().join(", "),
                cfg.io
            ));
            let mut runs = Vec::new();
            for _ in 0..cfg.reps.max(1) {
                for i in 0..servers.targets.len() {
                    runs.push(servers.measure(cfg, i, log)?);
                }
            }
            Ok(Round { shards, sizes: [(config_req, reply), (echo_req, echo_reply), (sized_req, sized_reply)], runs })
        })();
        echo_handle.shutdown();
        let _ = echo_handle.wait();
        inner
    })();
    for r in running {
        r.shutdown();
        let _ = r.wait();
    }
    result
}

/// Creates the database, writes the files, runs a round per shard count.
pub fn run(cfg: &ConfigBenchConfig, log: &mut dyn FnMut(&str)) -> Result<Outcome> {
    if cfg.servers == 0 || cfg.shards.is_empty() || cfg.shards.contains(&0) {
        bail!("--servers and --shards must be at least 1");
    }
    let db = BenchDb::create(cfg.url.as_deref())?;
    log(&format!("database: {}", db.describe));
    let files = populate(&db.store, cfg.servers, cfg.file_bytes)?;
    log(&format!(
        "{} files of {} servers; loadConfig answers {} bytes each (app + server + node file)",
        1 + 2 * files.len(),
        files.len(),
        files.iter().map(|f| f.2.len().to_string()).collect::<Vec<_>>().join("/")
    ));
    let mut rounds = Vec::new();
    for &shards in &cfg.shards {
        rounds.push(run_round(cfg, &db.store, &files, shards, log)?);
    }
    Ok(Outcome { machine: crate::store::machine_info(), database: db.describe.clone(), rounds })
}

impl Outcome {
    /// As JSON.
    pub fn to_json(&self, cfg: &ConfigBenchConfig) -> Json {
        json!({
            "machine": self.machine,
            "database": self.database,
            "servers": cfg.servers,
            "file_bytes": cfg.file_bytes,
            "server_io": cfg.io.as_str(),
            "client": {"threads": cfg.threads, "io": cfg.client_io.as_str(), "conns": cfg.conns, "depth": cfg.depth},
            "echo_size": cfg.size,
            "duration_s": cfg.duration.as_secs_f64(),
            "warmup_s": cfg.warmup.as_secs_f64(),
            "reps": cfg.reps,
            "rounds": self.rounds.iter().map(Round::to_json).collect::<Vec<_>>(),
        })
    }

    /// The human-readable report.
    pub fn text(&self, cfg: &ConfigBenchConfig) -> String {
        let mut s = format!(
            "machine: {}\ndatabase: {}\nservers (tarsconfig ConfigObj{} and TARS echo) in this process\n\n",
            self.machine,
            self.database,
            if cfg.uncached { ", cached and with the cache off," } else { "" }
        );
        for r in &self.rounds {
            s.push_str(&r.text(cfg));
            s.push('\n');
        }
        s
    }
}
