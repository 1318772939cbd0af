//! The stat benchmark behind `tars-bench-stat`: how fast `reportMicMsg` entries are decoded
//! and merged on one thread, how many entries tarsstat merges per second over TCP, and how many
//! rows per second its writer puts into a MariaDB hourly table next to the raw methods on the
//! same server and table shape.
//!
//! **Decode.** The workload's requests through the generated decoder and through
//! `tars_stat::mic`, alone and followed by normalize + merge into a shard map that holds every
//! key, on this thread with no network; CPU time of the thread per round ([`decode_all`]). The
//! mic variant is what `StatObj` does for an iVersion 1 request (`tars_stat::mic::ingest`, the
//! map looked up by the encoded key); the generated one is what it does for TUP and JSON.
//!
//! **Ingest.** tarsstat runs in this process (`tars_stat::service::start`, the real config
//! path, `StatObj` on 1 or 2 shards, a SQLite target in a temp dir, the system clock). The
//! client sends pre-encoded `reportMicMsg` requests over real TCP connections to 127.0.0.1:
//! `keys` distinct heads (callers × callees × interfaces, names and IPs as deployed) cut into
//! requests of `per_request` entries, each request a map in key order as TarsCpp writes it,
//! `bFromClient = true`. Two ways to send:
//! - oneway (as `@tars/monitor` and TarsCpp's async report do): one blocking std thread per
//!   connection writes the whole set of frames (`cPacketType` 1) in a loop; TCP flow control
//!   is the only brake, so this is the server's ceiling;
//! - twoway: the load generator ([`crate::load`], closed loop, `depth` requests in flight per
//!   connection, one epoll-lt client thread); every reply is checked (`iRet` 0, return 0).
//!
//! The rate is the server's own counter (`CollectStats::entries`, the `entries:` line of
//! `tars.stat.status`): entries merged into a shard's map, read at the window's edges. The
//! window never crosses a 5-minute boundary (the run waits for the next window when it would),
//! so no hand-over or flush happens inside it, and the clock is the real one, read per entry as
//! in production. CPU time per thread at the edges splits server shards, client threads and the
//! rest; CPU pressure and steal show what the rest of the machine took.
//!
//! **Flush.** `rows` stat rows ([`crate::store::stat_rows`]: distinct keys, shuffled,
//! realistic text) go into a fresh hourly table per measurement on one MariaDB database:
//! - `writer`: `tars_monitor::writer::Writer` configured as tarsstat configures it
//!   (`tars_stat::service::TABLES`, 1000 rows per INSERT with the stat upsert tail, a spool
//!   with fsync, the batch ledger and the `t_ecstatus` marker in the same transaction). The
//!   day's tables are created (by the writer's own start-up) before the clock starts; the time
//!   runs from `send(batch)` to the end of `flush()`: spool encoding and fsync included;
//! - the raw methods of [`crate::store`] on the same rows: a multi-row INSERT loop in one
//!   transaction and LOAD DATA LOCAL INFILE (the ceiling), and the INSERT loop with the
//!   writer's upsert tail (to split the writer's cost).
//!
//! Within a repetition every method runs once, the order rotating per repetition; InnoDB's
//! dirty pages are let settle after each.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use bytes::Bytes;
use serde_json::json;
use tars_core_net::rt::IoMode;
use tars_monitor::batch::Batch;
use tars_monitor::clock::{parse_date, Clock};
use tars_monitor::targets::Target;
use tars_monitor::writer::{Writer, WriterConfig};
use tars_proto::codec::{Reader, WireType};
use tars_proto::config::Config;
use tars_proto::frame::encode_frame;
use tars_proto::packet::{packet_type, RequestPacket, StringMap};
use tars_proto::rpc::ParamReader;
use tars_proto::rpc::ParamWriter;
use tars_protocol::tars::{StatMicMsgBody, StatMicMsgHead};
use tars_sql::schema::monitor::{stat_schema, STAT_PREFIX};
use tars_sql::{Dialect, Store, StoreUrl, Value};
use tars_stat::ingest::{normalize, IngestRules, StatKey, StatValue};
use tars_stat::mic::{self, MicLimits, MicReport};
use tars_stat::service::{RunningStat, StartOptions, STAT_OBJ};
use tars_testkit::process::TempDir;

use crate::cpu;
use crate::load::{self, Call, Edge, LoadConfig, Stop};
use crate::proto::Proto;
use crate::store::{self, Method, Mix, StoreConfig, Targets};

/// The function every request calls.
pub const FUNC: &str = "reportMicMsg";

// ---------------------------------------------------------------------------------------
// The workload

const APPS: &[&str] = &["TradeCenter", "PaymentCore", "UserProfile", "Logistics", "Marketing", "RiskControl", "Search"];
const SERVERS: &[&str] = &[
    "OrderQueryServer",
    "AccountLedgerServer",
    "CouponDispatchServer",
    "InventorySyncServer",
    "SessionGatewayServer",
    "NotificationServer",
    "PriceEngineServer",
    "ProfileCacheServer",
];
const METHODS: &[&str] = &[
    "queryOrderDetailByUserId",
    "batchGetAccountBalance",
    "updateInventoryReserve",
    "checkRiskScoreForPayment",
    "listActiveCouponsByShop",
    "refreshSessionTicket",
    "sendTemplateNotification",
    "calculateFinalPrice",
    "getUserProfileById",
    "searchProductsByKeyword",
];
/// TarsCpp's default histogram buckets (ms).
const BUCKETS: [i32; 9] = [5, 10, 50, 100, 200, 500, 1000, 2000, 3000];

fn module(k: usize) -> String {
    format!("{}.{}", APPS[k % APPS.len()], SERVERS[(k / APPS.len()) % SERVERS.len()])
}

/// `n` report entries with distinct keys, as client-side reports (`bFromClient`) of 40
/// callers × 25 callees × as many interfaces as needed (10 names, then numbered): caller and
/// callee `App.Server` names of 20–30 characters, the callee's IP and port, return code 0,
/// the TarsCpp version in `tarsVersion`, no set. Bodies: up to 5000 calls, a few timeouts and
/// errors, all 9 TarsCpp buckets. In key order (a `BTreeMap`), as a client's map is.
pub fn mic_entries(n: usize, seed: u64) -> Vec<(StatMicMsgHead, StatMicMsgBody)> {
    let mut mix = Mix(seed);
    let mut out = BTreeMap::new();
    for i in 0..n {
        let master = i % 40;
        let slave = (i / 40) % 25;
        let method = i / 1000;
        let succ = 1 + mix.below(5000) as i32;
        let ave = 1 + mix.below(120) as i32;
        let mut interval_count = BTreeMap::new();
        let mut left = succ;
        for (j, b) in BUCKETS.into_iter().enumerate() {
            let take = if j == BUCKETS.len() - 1 { left } else { left * 6 / 10 };
            interval_count.insert(b, take);
            left -= take;
        }
        let head = StatMicMsgHead {
            master_name: module(master),
            slave_name: module(slave + 40),
            interface_name: if method < METHODS.len() {
                METHODS[method].to_owned()
            } else {
                format!("{}{}", METHODS[method % METHODS.len()], method / METHODS.len())
            },
            master_ip: String::new(),
            slave_ip: format!("10.2.{}.{}", slave / 200, slave % 200 + 10),
            slave_port: 10_000 + slave as i32,
            return_value: 0,
            slave_set_name: String::new(),
            slave_set_area: String::new(),
            slave_set_id: String::new(),
            tars_version: "3.0.20".into(),
        };
        let body = StatMicMsgBody {
            count: succ,
            timeout_count: mix.below(3) as i32,
            exec_count: mix.below(5) as i32,
            interval_count,
            total_rsp_time: i64::from(succ) * i64::from(ave),
            max_rsp_time: ave * 4 + mix.below(800) as i32,
            min_rsp_time: 1 + ave / 4,
        };
        out.insert(head, body);
    }
    out.into_iter().collect()
}

/// The `reportMicMsg` parameters (`sBuffer`, iVersion 1) of `entries`, `per_request` entries
/// per request.
pub fn report_bodies(entries: &[(StatMicMsgHead, StatMicMsgBody)], per_request: usize) -> Vec<Bytes> {
    entries
        .chunks(per_request.max(1))
        .map(|chunk| {
            let msg: BTreeMap<StatMicMsgHead, StatMicMsgBody> = chunk.iter().cloned().collect();
            let mut w = ParamWriter::new(1);
            w.write(1, "msg", &msg);
            w.write(2, "bFromClient", &true);
            w.finish()
        })
        .collect()
}

/// Every body as a oneway request frame, back to back.
fn oneway_frames(bodies: &[Bytes]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, b) in bodies.iter().enumerate() {
        let frame = encode_frame(&RequestPacket {
            i_version: 1,
            c_packet_type: packet_type::ONEWAY,
            i_message_type: 0,
            i_request_id: i32::try_from(i).unwrap_or(0) + 1,
            s_servant_name: STAT_OBJ.to_owned(),
            s_func_name: FUNC.to_owned(),
            s_buffer: b.clone(),
            i_timeout: crate::proto::REQUEST_TIMEOUT_MS,
            context: StringMap::new(),
            status: StringMap::new(),
        });
        out.extend_from_slice(&frame);
    }
    out
}

/// A twoway reply is good when its return value is 0.
fn check_ret(_ver: i16, results: &Bytes) -> Result<(), String> {
    let mut r = Reader::from_bytes(results);
    match r.skip_to_tag(0) {
        Ok(Some(h)) => match r.read_int_payload(h.ty, WireType::Int4, "int") {
            Ok(0) => Ok(()),
            Ok(v) => Err(format!("reportMicMsg returned {v}")),
            Err(e) => Err(format!("reply: {e}")),
        },
        Ok(None) => Err("reply without a return value".into()),
        Err(e) => Err(format!("reply: {e}")),
    }
}

// ---------------------------------------------------------------------------------------
// Ingest

/// How the client sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendMode {
    /// Oneway requests, written as fast as TCP takes them.
    Oneway,
    /// Twoway requests, closed loop.
    Twoway,
}

impl FromStr for SendMode {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<SendMode> {
        match s.trim() {
            "oneway" => Ok(SendMode::Oneway),
            "twoway" => Ok(SendMode::Twoway),
            other => bail!("unknown send mode {other:?}: oneway or twoway"),
        }
    }
}

impl std::fmt::Display for SendMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SendMode::Oneway => "oneway",
            SendMode::Twoway => "twoway",
        })
    }
}

/// What the ingest part covers.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    /// Server IO drivers.
    pub ios: Vec<IoMode>,
    /// Server shard counts.
    pub shards: Vec<usize>,
    /// Send modes.
    pub modes: Vec<SendMode>,
    /// Distinct keys.
    pub keys: usize,
    /// Entries per request.
    pub per_request: usize,
    /// Connections.
    pub conns: usize,
    /// Twoway: requests in flight per connection.
    pub depth: usize,
    /// Unmeasured time after the client starts.
    pub warmup: Duration,
    /// Measured window.
    pub window: Duration,
    /// Repetitions of the whole matrix.
    pub reps: usize,
}

impl IngestConfig {
    /// The full run: uring, epoll-et and epoll-lt × 1 and 2 shards × oneway and twoway, 10,000
    /// keys in requests of 100, 8 connections (8 in flight each for twoway), 1 s warm-up, 5 s
    /// windows, 3 repetitions.
    pub fn full() -> IngestConfig {
        IngestConfig {
            ios: vec![IoMode::Uring, IoMode::EpollEt, IoMode::EpollLt],
            shards: vec![1, 2],
            modes: vec![SendMode::Oneway, SendMode::Twoway],
            keys: 10_000,
            per_request: 100,
            conns: 8,
            depth: 8,
            warmup: Duration::from_secs(1),
            window: Duration::from_secs(5),
            reps: 3,
        }
    }

    /// A smoke run: epoll-lt, 1 and 2 shards, both modes, 1000 keys, 0.2 s + 0.5 s, once.
    pub fn quick() -> IngestConfig {
        IngestConfig {
            ios: vec![IoMode::EpollLt],
            keys: 1000,
            warmup: Duration::from_millis(200),
            window: Duration::from_millis(500),
            reps: 1,
            ..IngestConfig::full()
        }
    }
}

/// One ingest measurement.
#[derive(Debug, Clone)]
pub struct IngestRun {
    /// Server IO driver (as resolved).
    pub io: IoMode,
    /// Server shards.
    pub shards: usize,
    /// Send mode.
    pub mode: SendMode,
    /// Repetition (from 1).
    pub rep: usize,
    /// Entries the server merged in the window.
    pub entries: u64,
    /// The window.
    pub window: Duration,
    /// Twoway: good replies in the window.
    pub replies: Option<u64>,
    /// Twoway: bad replies and broken connections.
    pub errors: u64,
    /// Server shard threads' CPU time in the window.
    pub server_cpu: Duration,
    /// Client threads' CPU time.
    pub client_cpu: Duration,
    /// Everything else in the process (collector, writer, main thread).
    pub other_cpu: Duration,
    /// Each server shard's CPU time, by shard number.
    pub shard_cpu: Vec<Duration>,
    /// The share of the window in which some task on the machine waited for a CPU
    /// (`/proc/pressure/cpu`, "some"): other work on the shared machine shows here.
    pub cpu_pressure: Option<f64>,
    /// The share of the machine's CPU time stolen by the hypervisor in the window
    /// (`/proc/stat`): other guests on the same host show here.
    pub steal: Option<f64>,
}

impl IngestRun {
    /// Entries per second.
    pub fn rate(&self) -> f64 {
        self.entries as f64 / self.window.as_secs_f64().max(1e-9)
    }

    /// Server CPU per entry (ns).
    pub fn server_ns_per_entry(&self) -> f64 {
        self.server_cpu.as_secs_f64() * 1e9 / (self.entries.max(1) as f64)
    }

    fn cores(&self, d: Duration) -> f64 {
        d.as_secs_f64() / self.window.as_secs_f64().max(1e-9)
    }

    /// One line for progress logs.
    pub fn line(&self) -> String {
        format!(
            "{:<8} {} shard(s) {:<6} rep {}: {:>9.0} entries/s{} | cores: server {:.2} ({}), client {:.2}, other {:.2} | server {:.0} ns/entry | cpu pressure {}, steal {}",
            self.io.as_str(),
            self.shards,
            self.mode.to_string(),
            self.rep,
            self.rate(),
            self.replies.map_or_else(String::new, |r| format!(" ({r} replies, {} errors)", self.errors)),
            self.cores(self.server_cpu),
            self.shard_cpu.iter().map(|d| format!("{:.2}", self.cores(*d))).collect::<Vec<_>>().join(" + "),
            self.cores(self.client_cpu),
            self.cores(self.other_cpu),
            self.server_ns_per_entry(),
            pct(self.cpu_pressure),
            pct(self.steal)
        )
    }

    /// As JSON.
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "part": "ingest",
            "io": self.io.as_str(),
            "shards": self.shards,
            "mode": self.mode.to_string(),
            "rep": self.rep,
            "entries": self.entries,
            "window_s": self.window.as_secs_f64(),
            "entries_per_s": self.rate().round(),
            "replies": self.replies,
            "errors": self.errors,
            "server_cores": round2(self.cores(self.server_cpu)),
            "client_cores": round2(self.cores(self.client_cpu)),
            "other_cores": round2(self.cores(self.other_cpu)),
            "server_ns_per_entry": self.server_ns_per_entry().round(),
            "shard_cores": self.shard_cpu.iter().map(|d| round2(self.cores(*d))).collect::<Vec<_>>(),
            "cpu_pressure": self.cpu_pressure.map(round2),
            "steal": self.steal.map(round2),
        })
    }
}

fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "–".to_owned(), |p| format!("{:.0}%", p * 100.0))
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// CPU per thread at one instant, the whole process's, and the machine's CPU pressure.
struct CpuAt {
    process: Duration,
    threads: Vec<(u32, String, Duration)>,
    /// `/proc/pressure/cpu` "some" total (µs).
    pressure_us: Option<u64>,
    /// Steal time of all CPUs (`/proc/stat`, ticks): time the hypervisor gave to others.
    steal_ticks: Option<u64>,
}

/// The steal column of the `cpu` line of `/proc/stat`.
fn steal_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    stat.lines().find(|l| l.starts_with("cpu "))?.split_whitespace().nth(8)?.parse().ok()
}

fn cpu_now() -> CpuAt {
    let pressure_us = std::fs::read_to_string("/proc/pressure/cpu").ok().and_then(|t| {
        t.lines()
            .find(|l| l.starts_with("some"))?
            .split_whitespace()
            .find_map(|f| f.strip_prefix("total="))?
            .parse()
            .ok()
    });
    CpuAt {
        process: cpu::self_cpu_time().unwrap_or_default(),
        threads: cpu::thread_times(),
        pressure_us,
        steal_ticks: steal_ticks(),
    }
}

/// Where CPU time went between two samples.
struct Split {
    server: Duration,
    shards: Vec<Duration>,
    client: Duration,
    other: Duration,
    pressure: Option<f64>,
    steal: Option<f64>,
}

fn cpu_split(a: &CpuAt, b: &CpuAt, wall: Duration) -> Split {
    let (mut server, mut other) = (Duration::ZERO, Duration::ZERO);
    let mut shards: Vec<(usize, Duration)> = Vec::new();
    for (tid, name, t) in &b.threads {
        let before = a.threads.iter().find(|(x, _, _)| x == tid).map(|(_, _, t)| *t).unwrap_or_default();
        let d = t.saturating_sub(before);
        if is_client_thread(name) {
            // The remainder below.
        } else if let Some(n) = name.strip_prefix("tars.tarsstat-") {
            // The uring driver runs a helper thread of the same name per shard: summed.
            server += d;
            let n = n.parse().unwrap_or(usize::MAX);
            match shards.iter_mut().find(|(m, _)| *m == n) {
                Some((_, t)) => *t += d,
                None => shards.push((n, d)),
            }
        } else {
            other += d;
        }
    }
    shards.sort_unstable();
    let client = b.process.saturating_sub(a.process).saturating_sub(server + other);
    let pressure =
        a.pressure_us.zip(b.pressure_us).map(|(x, y)| y.saturating_sub(x) as f64 / (wall.as_secs_f64() * 1e6).max(1.0));
    let cpus = std::thread::available_parallelism().map_or(1, usize::from) as f64;
    let steal = a
        .steal_ticks
        .zip(b.steal_ticks)
        .map(|(x, y)| y.saturating_sub(x) as f64 / (cpu::clock_ticks() as f64 * wall.as_secs_f64() * cpus).max(1e-9));
    Split { server, shards: shards.into_iter().map(|(_, d)| d).collect(), client, other, pressure, steal }
}

impl IngestRun {
    fn set_cpu(&mut self, s: Split) {
        self.server_cpu = s.server;
        self.shard_cpu = s.shards;
        self.client_cpu = s.client;
        self.other_cpu = s.other;
        self.cpu_pressure = s.pressure;
        self.steal = s.steal;
    }
}

fn is_client_thread(name: &str) -> bool {
    name.starts_with("stat-client-")
        || name.strip_prefix("tars-bench-").is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// A running tarsstat with its temp dir (spool, SQLite database).
struct Server {
    stat: Option<RunningStat>,
    addr: SocketAddr,
    _dir: TempDir,
}

impl Server {
    fn start(io: IoMode, shards: usize) -> Result<Server> {
        let dir = TempDir::new("bench-stat").context("temp dir")?;
        let url = format!("sqlite:{}/tars_stat.sqlite3", dir.0.display());
        Store::open(&url)?.migrate(stat_schema()).context("migrating tars_stat")?;
        let text = format!(
            "<tars>\n<application>\n<server>\napp=tars\nserver=tarsstat\nlocalip=127.0.0.1\ndatapath={}\n\
             <tars.tarsstat.StatObjAdapter>\nendpoint=tcp -h 127.0.0.1 -p 0 -t 60000\nservant={STAT_OBJ}\n\
             maxconns=1024\n</tars.tarsstat.StatObjAdapter>\n</server>\n</application>\n</tars>\n",
            dir.0.display()
        );
        let config = Config::parse(&text).map_err(|e| anyhow!("config: {e}"))?;
        let target = Target { name: "db1".into(), url: StoreUrl::parse(&url)?, prefix: STAT_PREFIX.into(), weight: 1 };
        let stat = tars_stat::service::start(
            &config,
            StartOptions {
                io: Some(io),
                shards: Some(shards),
                targets: Some(vec![target]),
                clock: Some(Clock::system()),
            },
        )
        .context("starting tarsstat")?;
        // The writer creates today's and tomorrow's tables when it starts: let it finish
        // before measuring.
        if !stat.service().flush_writers(Duration::from_secs(120)) {
            bail!("the stat writer did not become idle within 120 s");
        }
        let addr = stat.server().addr("tars.tarsstat.StatObjAdapter").ok_or_else(|| anyhow!("StatObj not bound"))?;
        Ok(Server { stat: Some(stat), addr, _dir: dir })
    }

    fn entries(&self) -> Result<u64> {
        let stat = self.stat.as_ref().ok_or_else(|| anyhow!("stopped"))?;
        parse_entries(&stat.service().status())
    }

    fn stop(&mut self) -> Result<()> {
        if let Some(stat) = self.stat.take() {
            stat.server().shutdown();
            stat.wait().map_err(|e| anyhow!("stopping tarsstat: {e}"))?;
        }
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// The `entries: N` line of the status text.
pub fn parse_entries(status: &str) -> Result<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("entries: "))
        .ok_or_else(|| anyhow!("no entries line in the status: {status:?}"))?
        .trim()
        .parse()
        .map_err(|e| anyhow!("entries line: {e}"))
}

/// Waits, if needed, so that `span` from now stays inside one 5-minute window.
fn avoid_window_edge(span: Duration) {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let into = now.as_secs_f64() % 300.0;
    if into + span.as_secs_f64() + 1.0 > 300.0 {
        std::thread::sleep(Duration::from_secs_f64(300.0 - into + 1.0));
    }
}

/// One ingest measurement: a fresh server, one client, the window, the counters.
pub fn ingest_one(
    cfg: &IngestConfig,
    bodies: &Arc<Vec<Bytes>>,
    frames: &Arc<Vec<u8>>,
    io: IoMode,
    shards: usize,
    mode: SendMode,
    rep: usize,
) -> Result<IngestRun> {
    let mut server = Server::start(io, shards)?;
    avoid_window_edge(cfg.warmup + cfg.window + Duration::from_secs(2));
    let mut run = IngestRun {
        io: io.resolve(),
        shards,
        mode,
        rep,
        entries: 0,
        window: cfg.window,
        replies: None,
        errors: 0,
        server_cpu: Duration::ZERO,
        client_cpu: Duration::ZERO,
        other_cpu: Duration::ZERO,
        shard_cpu: Vec::new(),
        cpu_pressure: None,
        steal: None,
    };
    match mode {
        SendMode::Oneway => {
            let stop = Arc::new(AtomicBool::new(false));
            let mut clients = Vec::new();
            for i in 0..cfg.conns {
                let (frames, stop, addr) = (frames.clone(), stop.clone(), server.addr);
                clients.push(
                    std::thread::Builder::new()
                        .name(format!("stat-client-{i}"))
                        .spawn(move || -> Result<u64> {
                            let mut s = TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
                            s.set_nodelay(true)?;
                            let mut rounds = 0u64;
                            while !stop.load(Ordering::Relaxed) {
                                s.write_all(&frames)?;
                                rounds += 1;
                            }
                            Ok(rounds)
                        })
                        .context("client thread")?,
                );
            }
            std::thread::sleep(cfg.warmup);
            let (c0, e0, t0) = (cpu_now(), server.entries()?, Instant::now());
            std::thread::sleep(cfg.window);
            let (c1, e1, t1) = (cpu_now(), server.entries()?, Instant::now());
            stop.store(true, Ordering::Relaxed);
            for c in clients {
                c.join().map_err(|_| anyhow!("client thread panicked"))??;
            }
            run.entries = e1 - e0;
            run.window = t1 - t0;
            run.set_cpu(cpu_split(&c0, &c1, run.window));
        }
        SendMode::Twoway => {
            let load_cfg = LoadConfig {
                addr: server.addr,
                servant: STAT_OBJ.into(),
                func: FUNC.into(),
                proto: Proto::Tars(1),
                conns: cfg.conns,
                depth: cfg.depth,
                stop: Stop::Duration(cfg.window),
                warmup: cfg.warmup,
                io: IoMode::EpollLt,
                threads: 1,
                call: Some(Call { bodies: bodies.clone(), check: Arc::new(check_ret) }),
                ..LoadConfig::default()
            };
            let mut edges: Vec<(CpuAt, u64, Instant)> = Vec::new();
            let mut failed = None;
            let mut observe = |_: Edge| match server.entries() {
                Ok(e) => edges.push((cpu_now(), e, Instant::now())),
                Err(e) => failed = Some(e),
            };
            let report = load::run(&load_cfg, Some(&mut observe))?;
            if let Some(e) = failed {
                return Err(e);
            }
            let [(c0, e0, t0), (c1, e1, t1)] = <[_; 2]>::try_from(edges).map_err(|_| anyhow!("window edges"))?;
            run.entries = e1 - e0;
            run.window = t1 - t0;
            run.replies = Some(report.completed);
            run.errors = report.errors;
            if let Some(e) = report.first_error {
                bail!("{}: {e}", run.line());
            }
            run.set_cpu(cpu_split(&c0, &c1, run.window));
        }
    }
    server.stop()?;
    if run.entries == 0 {
        bail!("{}: the server merged no entries", run.line());
    }
    Ok(run)
}

/// Every ingest measurement, logging each.
pub fn ingest_all(cfg: &IngestConfig, log: &mut dyn FnMut(&IngestRun)) -> Result<Vec<IngestRun>> {
    let entries = mic_entries(cfg.keys, 0x57A7_2026);
    let bodies = Arc::new(report_bodies(&entries, cfg.per_request));
    let frames = Arc::new(oneway_frames(&bodies));
    let mut out = Vec::new();
    for rep in 1..=cfg.reps.max(1) {
        for &io in &cfg.ios {
            for &mode in &cfg.modes {
                for &shards in &cfg.shards {
                    let run = ingest_one(cfg, &bodies, &frames, io, shards, mode, rep)
                        .with_context(|| format!("{} {shards} shard(s) {mode} rep {rep}", io.as_str()))?;
                    log(&run);
                    out.push(run);
                }
            }
        }
    }
    Ok(out)
}

/// Request sizes of the workload: (entries per request, bytes per request, bytes per entry).
pub fn workload_note(cfg: &IngestConfig) -> String {
    let entries = mic_entries(cfg.keys, 0x57A7_2026);
    let bodies = report_bodies(&entries, cfg.per_request);
    let frames = oneway_frames(&bodies);
    format!(
        "{} distinct keys in {} requests of {} entries (bFromClient true, map in key order); \
         {} bytes per request frame on average ({:.0} per entry); {} connections{}",
        entries.len(),
        bodies.len(),
        cfg.per_request,
        frames.len() / bodies.len().max(1),
        frames.len() as f64 / entries.len().max(1) as f64,
        cfg.conns,
        if cfg.modes.contains(&SendMode::Twoway) {
            format!(", twoway {} in flight per connection on one epoll-lt client thread", cfg.depth)
        } else {
            String::new()
        }
    )
}

/// Median entries/s per (io, shards, mode), in the order first seen.
pub fn ingest_table(runs: &[IngestRun]) -> String {
    let mut keys: Vec<(IoMode, SendMode)> = Vec::new();
    for r in runs {
        if !keys.contains(&(r.io, r.mode)) {
            keys.push((r.io, r.mode));
        }
    }
    let mut shard_counts: Vec<usize> = runs.iter().map(|r| r.shards).collect();
    shard_counts.sort_unstable();
    shard_counts.dedup();
    let mut s = String::new();
    let mut header = "| server IO | send |".to_owned();
    let mut rule = "|---|---|".to_owned();
    for n in &shard_counts {
        let _ = write!(
            header,
            " {n} shard(s): entries/s (min–max) | server cores (per shard), ns/entry | client cores, CPU pressure, steal |"
        );
        rule.push_str("---|---|---|");
    }
    if shard_counts.len() == 2 {
        header.push_str(" 2 / 1 |");
        rule.push_str("---|");
    }
    let _ = writeln!(s, "{header}");
    let _ = writeln!(s, "{rule}");
    for (io, mode) in keys {
        let mut line = format!("| {} | {mode} |", io.as_str());
        let mut medians = Vec::new();
        for &n in &shard_counts {
            let mut mine: Vec<&IngestRun> =
                runs.iter().filter(|r| r.io == io && r.mode == mode && r.shards == n).collect();
            if mine.is_empty() {
                line.push_str(" – | – | – |");
                continue;
            }
            mine.sort_by(|a, b| a.rate().total_cmp(&b.rate()));
            let med = mine[mine.len() / 2];
            medians.push(med.rate());
            let _ = write!(
                line,
                " **{}** ({}–{}) | {:.2} ({}), {:.0} | {:.2}, {}, {} |",
                thousands(med.rate()),
                thousands(mine[0].rate()),
                thousands(mine[mine.len() - 1].rate()),
                med.cores(med.server_cpu),
                med.shard_cpu.iter().map(|d| format!("{:.2}", med.cores(*d))).collect::<Vec<_>>().join(" + "),
                med.server_ns_per_entry(),
                med.cores(med.client_cpu),
                pct(med.cpu_pressure),
                pct(med.steal)
            );
        }
        if shard_counts.len() == 2 {
            match medians.as_slice() {
                [a, b] => {
                    let _ = write!(line, " {:.2} |", b / a.max(1e-9));
                }
                _ => line.push_str(" – |"),
            }
        }
        let _ = writeln!(s, "{line}");
    }
    s
}

// ---------------------------------------------------------------------------------------
// Decode and merge on one thread (no network)

/// What the generated servant does with a `reportMicMsg` body (`dispatch_stat_f`).
pub fn decode_generated(body: &Bytes) -> Result<(BTreeMap<StatMicMsgHead, StatMicMsgBody>, bool)> {
    let mut p = ParamReader::new(1, body)?;
    let msg: BTreeMap<StatMicMsgHead, StatMicMsgBody> = p.read(1, "msg")?;
    let from_client: bool = p.read(2, "bFromClient")?;
    Ok((msg, from_client))
}

/// The generated decoder, [`normalize`], the merge into a map keyed by owned [`StatKey`]s:
/// what `StatObj` does with a TUP or JSON request.
pub fn ingest_generated(bodies: &[Bytes], map: &mut HashMap<StatKey, StatValue>, peer: &str) -> Result<u64> {
    let rules = IngestRules::default();
    let mut n = 0;
    for b in bodies {
        let (msg, from_client) = decode_generated(b)?;
        for (h, v) in &msg {
            if let Some((k, v)) = normalize(h, v, from_client, peer, &rules) {
                match map.get_mut(&k) {
                    Some(into) => into.merge(&v),
                    None => {
                        map.insert(k, v);
                    }
                }
                n += 1;
            }
        }
    }
    Ok(n)
}

/// What `StatObj` does with an iVersion 1 request: `tars_stat::mic::ingest`, the map looked
/// up by the encoded key in a reused buffer (a key is built only when it is new).
pub fn ingest_mic(
    bodies: &[Bytes],
    map: &mut HashMap<StatKey, StatValue>,
    scratch: &mut Vec<u8>,
    peer: &str,
) -> Result<u64> {
    let rules = IngestRules::default();
    let mut n = 0;
    for b in bodies {
        n += mic::ingest(b, MicLimits::default(), peer, &rules, scratch, |key, v| match map.get_mut(key) {
            Some(into) => into.merge(&v),
            None => {
                map.insert(StatKey::from_encoded(key), v);
            }
        })? as u64;
    }
    Ok(n)
}

/// One decode variant's result.
#[derive(Debug, Clone)]
pub struct DecodeRun {
    /// The variant.
    pub name: &'static str,
    /// Entries per round.
    pub entries: u64,
    /// Thread CPU time per round, sorted.
    pub rounds: Vec<Duration>,
}

impl DecodeRun {
    /// Median CPU nanoseconds per entry.
    pub fn ns_per_entry(&self) -> f64 {
        let d = self.rounds.get(self.rounds.len() / 2).copied().unwrap_or_default();
        d.as_secs_f64() * 1e9 / self.entries.max(1) as f64
    }

    /// Fastest round, CPU nanoseconds per entry.
    pub fn best_ns_per_entry(&self) -> f64 {
        let d = self.rounds.first().copied().unwrap_or_default();
        d.as_secs_f64() * 1e9 / self.entries.max(1) as f64
    }

    /// As JSON.
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "part": "decode",
            "variant": self.name,
            "entries_per_round": self.entries,
            "rounds": self.rounds.len(),
            "ns_per_entry": self.ns_per_entry().round(),
            "best_ns_per_entry": self.best_ns_per_entry().round(),
        })
    }
}

fn thread_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(u64::try_from(t.tv_sec).unwrap_or(0), u32::try_from(t.tv_nsec).unwrap_or(0))
}

/// Every variant on this thread, `rounds` rounds each (interleaved), each round all of the
/// workload's requests: CPU time of this thread, so time the scheduler gives to other work
/// on a shared machine is not counted (its effect on the caches is).
pub fn decode_all(keys: usize, per_request: usize, rounds: usize) -> Result<Vec<DecodeRun>> {
    let entries = mic_entries(keys, 0x57A7_2026);
    let bodies = report_bodies(&entries, per_request);
    let peer = "10.1.0.7";
    let mut full = HashMap::new();
    let n = ingest_generated(&bodies, &mut full, peer)?;
    let mut mic_map = full.clone();
    let mut scratch = Vec::new();
    let names = [
        "decode: generated",
        "decode: mic",
        "decode+normalize+merge: generated",
        "decode+normalize+merge: mic (StatObj)",
    ];
    let mut runs: Vec<DecodeRun> =
        names.iter().map(|&name| DecodeRun { name, entries: n, rounds: Vec::new() }).collect();
    for _ in 0..rounds.max(1) {
        for (i, run) in runs.iter_mut().enumerate() {
            let t0 = thread_cpu();
            let got = match i {
                0 => {
                    let mut c = 0;
                    for b in &bodies {
                        c += std::hint::black_box(decode_generated(b)?).0.len() as u64;
                    }
                    c
                }
                1 => {
                    let mut c = 0;
                    for b in &bodies {
                        c += std::hint::black_box(MicReport::decode(b, MicLimits::default())?).len() as u64;
                    }
                    c
                }
                2 => ingest_generated(&bodies, &mut full, peer)?,
                _ => ingest_mic(&bodies, &mut mic_map, &mut scratch, peer)?,
            };
            run.rounds.push(thread_cpu().saturating_sub(t0));
            if got != n {
                bail!("{}: {got} entries, expected {n}", run.name);
            }
        }
    }
    if full != mic_map {
        bail!("the generated and the mic path merged different values");
    }
    for r in &mut runs {
        r.rounds.sort_unstable();
    }
    Ok(runs)
}

/// The decode results as a markdown table, with the speed-up over the generated path.
pub fn decode_table(runs: &[DecodeRun]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "| variant | CPU ns/entry (median) | best | vs generated |");
    let _ = writeln!(s, "|---|---|---|---|");
    let base = |name: &str| {
        let prefix = name.split(':').next().unwrap_or("");
        runs.iter().find(|r| r.name.starts_with(prefix) && r.name.ends_with("generated")).map(DecodeRun::ns_per_entry)
    };
    for r in runs {
        let speedup = match base(r.name) {
            Some(b) if !r.name.ends_with("generated") => format!("{:.2}× faster", b / r.ns_per_entry().max(1e-9)),
            _ => "–".to_owned(),
        };
        let _ = writeln!(s, "| {} | {:.0} | {:.0} | {speedup} |", r.name, r.ns_per_entry(), r.best_ns_per_entry());
    }
    s
}

// ---------------------------------------------------------------------------------------
// Flush

/// A flush method: the stat writer, or a raw method of [`crate::store`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushMethod {
    /// `tars_monitor::writer::Writer` as tarsstat configures it.
    Writer,
    /// A raw method.
    Raw(Method),
}

impl FlushMethod {
    /// A raw ceiling method: a plain INSERT loop or LOAD DATA (not the upsert variant, which
    /// is there to split the writer's cost).
    pub fn is_ceiling(self) -> bool {
        matches!(self, FlushMethod::Raw(Method::MysqlInsert(_) | Method::MysqlLoad))
    }
}

impl FromStr for FlushMethod {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<FlushMethod> {
        match s.trim() {
            "writer" => Ok(FlushMethod::Writer),
            other => {
                let m: Method = other.parse()?;
                if m.dialect() != Dialect::Mysql {
                    bail!("{m}: the flush part measures MySQL/MariaDB only");
                }
                Ok(FlushMethod::Raw(m))
            }
        }
    }
}

impl std::fmt::Display for FlushMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FlushMethod::Writer => f.write_str("writer"),
            FlushMethod::Raw(m) => write!(f, "{m}"),
        }
    }
}

/// What the flush part covers.
#[derive(Debug, Clone)]
pub struct FlushConfig {
    /// Rows per measurement.
    pub rows: usize,
    /// Repetitions.
    pub reps: usize,
    /// Methods, in their order within the first repetition.
    pub methods: Vec<FlushMethod>,
    /// After each measurement, wait at most this long for InnoDB's dirty pages.
    pub settle: Duration,
}

impl FlushConfig {
    /// 100,000 rows, 5 repetitions: the writer, a 1000-row INSERT loop (the writer's statement
    /// size), the same with the writer's upsert tail, a 100-row INSERT loop, LOAD DATA.
    pub fn full() -> FlushConfig {
        FlushConfig {
            rows: 100_000,
            reps: 5,
            methods: vec![
                FlushMethod::Writer,
                FlushMethod::Raw(Method::MysqlInsert(1000)),
                FlushMethod::Raw(Method::MysqlUpsert(1000)),
                FlushMethod::Raw(Method::MysqlInsert(100)),
                FlushMethod::Raw(Method::MysqlLoad),
            ],
            settle: Duration::from_secs(10),
        }
    }

    /// A smoke run: 2000 rows, once, no settling.
    pub fn quick() -> FlushConfig {
        FlushConfig { rows: 2000, reps: 1, settle: Duration::ZERO, ..FlushConfig::full() }
    }
}

/// One flush measurement.
#[derive(Debug, Clone)]
pub struct FlushRun {
    /// The method.
    pub method: FlushMethod,
    /// Repetition (from 1).
    pub rep: usize,
    /// Rows written.
    pub rows: usize,
    /// Wall time.
    pub elapsed: Duration,
    /// Database server CPU in the write (when its pid is known).
    pub db_cpu: Option<Duration>,
    /// This process's CPU in the write.
    pub self_cpu: Option<Duration>,
}

impl FlushRun {
    /// Rows per second.
    pub fn rate(&self) -> f64 {
        self.rows as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    fn cores(&self, d: Option<Duration>) -> Option<f64> {
        d.map(|d| d.as_secs_f64() / self.elapsed.as_secs_f64().max(1e-9))
    }

    /// One line for progress logs.
    pub fn line(&self) -> String {
        let c = |v: Option<f64>| v.map_or_else(|| "–".to_owned(), |v| format!("{v:.2}"));
        format!(
            "flush rep {} {:<18} {:>7} rows in {:>7.3} s = {:>8.0} rows/s (cores: mariadbd {}, this process {})",
            self.rep,
            self.method.to_string(),
            self.rows,
            self.elapsed.as_secs_f64(),
            self.rate(),
            c(self.cores(self.db_cpu)),
            c(self.cores(self.self_cpu))
        )
    }

    /// As JSON.
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "part": "flush",
            "method": self.method.to_string(),
            "rep": self.rep,
            "rows": self.rows,
            "secs": (self.elapsed.as_secs_f64() * 1e4).round() / 1e4,
            "rows_per_s": self.rate().round(),
            "mariadbd_cores": self.cores(self.db_cpu).map(round2),
            "self_cores": self.cores(self.self_cpu).map(round2),
        })
    }
}

fn count(store: &Store, table: &str) -> Result<u64> {
    let sql = format!("SELECT COUNT(*) FROM `{table}`");
    let rows = store.run_blocking(move |s| s.query(&sql, &[]))?;
    let n: i64 = rows.first().ok_or_else(|| anyhow!("COUNT(*) of {table}: no row"))?.get(0)?;
    Ok(u64::try_from(n).unwrap_or(0))
}

fn drop_day(store: &Store, date: &str) -> Result<()> {
    let mut sql = String::new();
    for h in 0..24 {
        let _ = write!(sql, "DROP TABLE IF EXISTS `{STAT_PREFIX}{date}{h:02}`;");
    }
    store.run_blocking(move |s| s.exec_script(&sql))?;
    Ok(())
}

/// The spool's share of a writer measurement, measured on its own: encoding the batch and
/// appending it (with fsync) to a fresh spool in `dir`. `(encode, append)`.
pub fn spool_cost(rows: &[Vec<Value>], dir: &Path) -> Result<(Duration, Duration)> {
    let batch = Batch {
        id: "spool-cost".into(),
        table_date: "20261201".into(),
        table: format!("{STAT_PREFIX}2026120100"),
        app_name: format!("{STAT_PREFIX}127.0.0.1"),
        last_time: "20261201 0005".into(),
        rows: rows.to_vec(),
    };
    let t = Instant::now();
    let bytes = batch.encode();
    let encode = t.elapsed();
    let mut spool = tars_monitor::spool::Spool::open(dir, "cost", 1 << 32)?;
    let t = Instant::now();
    spool.append(&bytes)?;
    Ok((encode, t.elapsed()))
}

/// One writer measurement: a writer of its own (fresh spool, a manual clock on a day of its
/// own whose tables it creates at start-up), one batch of `n` rows, timed from `send` to the
/// end of `flush`.
fn writer_run(
    url: &str,
    store: &Store,
    rows: &Arc<Vec<Vec<Value>>>,
    n: usize,
    rep: usize,
    spool_root: &Path,
    db_pid: Option<u32>,
) -> Result<FlushRun> {
    let day = 1 + (rep - 1) % 28;
    let date = format!("202612{day:02}");
    let start = parse_date(&date)
        .and_then(|d| d.and_hms_opt(0, 2, 0))
        .map(|t| t.and_utc().timestamp())
        .ok_or_else(|| anyhow!("date {date}"))?;
    let clock = Clock::manual(start, 0);
    drop_day(store, &date)?;
    let spool_dir: PathBuf = spool_root.join(format!("r{rep}"));
    let _ = std::fs::remove_dir_all(&spool_dir);
    // As `tars_monitor::service::MonitorService::start` configures a writer, with tarsstat's
    // table spec.
    let spec = tars_stat::service::TABLES;
    let writer = Writer::start(WriterConfig {
        target: Target {
            name: format!("bench{rep}"),
            url: StoreUrl::parse(url)?,
            prefix: STAT_PREFIX.into(),
            weight: 1,
        },
        columns: spec.columns,
        make_table: spec.make_table,
        schema: spec.schema,
        upsert_tail: spec.upsert_tail,
        spool_dir: spool_dir.clone(),
        spool_max_bytes: 4 << 30,
        rows_per_insert: 1000,
        checkint_minutes: 5,
        clock,
        retry_max: Duration::from_secs(10),
        reserve_days: Some(31),
        dead_letter_after: tars_monitor::writer::DEFAULT_DEAD_LETTER_AFTER,
    })?;
    // Start-up creates today's and tomorrow's tables: done before the clock starts.
    if !writer.flush(Duration::from_secs(300)) {
        bail!("the writer did not finish creating its tables within 300 s");
    }
    let table = format!("{STAT_PREFIX}{date}00");
    if count(store, &table)? != 0 {
        bail!("{table} is not empty");
    }
    let batch = Batch {
        id: format!("bench|{}|{rep}", std::process::id()),
        table_date: date.clone(),
        table: table.clone(),
        app_name: format!("{STAT_PREFIX}127.0.0.1"),
        last_time: format!("{date} 0005"),
        rows: rows[..n.min(rows.len())].to_vec(),
    };
    let db0 = db_pid.and_then(|p| cpu::cpu_time(&p.to_string()).ok());
    let self0 = cpu::self_cpu_time().ok();
    let t0 = Instant::now();
    writer.send(batch);
    let flushed = writer.flush(Duration::from_secs(1800));
    let elapsed = t0.elapsed();
    let db_cpu = db0.zip(db_pid.and_then(|p| cpu::cpu_time(&p.to_string()).ok())).map(|(a, b)| b.saturating_sub(a));
    let self_cpu = self0.zip(cpu::self_cpu_time().ok()).map(|(a, b)| b.saturating_sub(a));
    let stats = writer.stats();
    let written = stats.rows_written.load(Ordering::Relaxed);
    let errors = stats.write_errors.load(Ordering::Relaxed);
    let last = stats.last_error.lock().map(|e| e.clone()).unwrap_or_default();
    drop(writer);
    if !flushed || written != n as u64 || errors != 0 {
        bail!("writer: flushed {flushed}, {written} of {n} rows written, {errors} errors (last: {last:?})");
    }
    let counted = count(store, &table)?;
    if counted != n as u64 {
        bail!("writer: {table} holds {counted} rows, {n} written");
    }
    drop_day(store, &date)?;
    if let Some(next) = tars_monitor::clock::days_after(&date, 1) {
        drop_day(store, &next)?;
    }
    let _ = std::fs::remove_dir_all(&spool_dir);
    Ok(FlushRun { method: FlushMethod::Writer, rep, rows: n, elapsed, db_cpu, self_cpu })
}

/// Where the flush part writes.
#[derive(Debug)]
pub struct FlushTarget {
    /// The benchmark database's URL.
    pub url: String,
    /// A handle on it (migrated: `t_ecstatus`, the batch ledger).
    pub store: Store,
    /// The MariaDB server's pid, when it runs here.
    pub db_pid: Option<u32>,
    /// Spools live here.
    pub spool_root: PathBuf,
}

/// Every flush measurement, logging each.
pub fn flush_all(cfg: &FlushConfig, target: &FlushTarget, log: &mut dyn FnMut(&FlushRun)) -> Result<Vec<FlushRun>> {
    if cfg.methods.is_empty() {
        bail!("no flush methods");
    }
    let rows = Arc::new(store::stat_rows(cfg.rows, 0x7A25_2026));
    let store_cfg = StoreConfig {
        rows: cfg.rows,
        reps: cfg.reps,
        methods: cfg.methods.iter().filter_map(|m| if let FlushMethod::Raw(r) = m { Some(*r) } else { None }).collect(),
        settle: cfg.settle,
    };
    let targets = Targets { mysql: Some(target.store.clone()), mysql_pid: target.db_pid, sqlite_dir: None };
    // Untimed: a first connection and a small table for each kind of method.
    store::warm_up(&StoreConfig { methods: vec![Method::MysqlInsert(100)], ..store_cfg.clone() }, &targets, &rows)?;
    let mut out = Vec::new();
    let k = cfg.methods.len();
    for rep in 1..=cfg.reps.max(1) {
        for i in 0..k {
            let method = cfg.methods[(i + rep - 1) % k];
            let run = match method {
                FlushMethod::Writer => {
                    let r = writer_run(
                        &target.url,
                        &target.store,
                        &rows,
                        cfg.rows,
                        rep,
                        &target.spool_root,
                        target.db_pid,
                    )?;
                    store::settle(&target.store, cfg.settle)?;
                    r
                }
                FlushMethod::Raw(m) => {
                    let r = store::run_one(&store_cfg, &targets, m, rep, &rows)?;
                    FlushRun {
                        method,
                        rep,
                        rows: r.rows,
                        elapsed: r.elapsed,
                        db_cpu: r.server_cpu,
                        self_cpu: r.self_cpu,
                    }
                }
            };
            log(&run);
            out.push(run);
        }
    }
    Ok(out)
}

/// Median rows/s per method with the ratio to the best raw median.
pub fn flush_table(cfg: &FlushConfig, runs: &[FlushRun]) -> String {
    let median = |m: FlushMethod| -> Option<(f64, f64, f64, Option<f64>)> {
        let mut mine: Vec<&FlushRun> = runs.iter().filter(|r| r.method == m).collect();
        if mine.is_empty() {
            return None;
        }
        mine.sort_by(|a, b| a.rate().total_cmp(&b.rate()));
        let med = mine[mine.len() / 2];
        Some((med.rate(), mine[0].rate(), mine[mine.len() - 1].rate(), med.cores(med.db_cpu)))
    };
    let best_raw = cfg
        .methods
        .iter()
        .filter(|m| m.is_ceiling())
        .filter_map(|&m| median(m).map(|x| (m, x.0)))
        .max_by(|a, b| a.1.total_cmp(&b.1));
    let mut s = String::new();
    let reps = runs.iter().map(|r| r.rep).max().unwrap_or(0);
    let _ = writeln!(
        s,
        "| method | rows | rows/s median of {reps} | min | max | vs best raw (plain INSERT or LOAD DATA) | mariadbd cores |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|");
    for &m in &cfg.methods {
        let Some((med, min, max, db)) = median(m) else { continue };
        let ratio = match best_raw {
            Some((b, _)) if b == m => "1.00 (best raw)".to_owned(),
            Some((_, r)) => format!("{:.2}", med / r.max(1e-9)),
            None => "–".to_owned(),
        };
        let _ = writeln!(
            s,
            "| {m} | {} | {} | {} | {} | {ratio} | {} |",
            cfg.rows,
            thousands(med),
            thousands(min),
            thousands(max),
            db.map_or_else(|| "–".to_owned(), |c| format!("{c:.2}"))
        );
    }
    s
}

/// The writer's median over the best raw median.
pub fn writer_ratio(cfg: &FlushConfig, runs: &[FlushRun]) -> Option<f64> {
    let median = |m: FlushMethod| -> Option<f64> {
        let mut v: Vec<f64> = runs.iter().filter(|r| r.method == m).map(FlushRun::rate).collect();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied()
    };
    let writer = median(FlushMethod::Writer)?;
    let best = cfg.methods.iter().filter(|m| m.is_ceiling()).filter_map(|&m| median(m)).fold(0.0, f64::max);
    (best > 0.0).then(|| writer / best)
}

/// Per repetition, the writer's rate over the best raw rate of the same repetition (so slow
/// drifts of a shared machine cancel out): sorted.
pub fn paired_ratios(runs: &[FlushRun]) -> Vec<f64> {
    let reps = runs.iter().map(|r| r.rep).max().unwrap_or(0);
    let mut out: Vec<f64> = (1..=reps)
        .filter_map(|rep| {
            let mine = runs.iter().filter(|r| r.rep == rep);
            let writer = mine.clone().find(|r| r.method == FlushMethod::Writer)?.rate();
            let best = mine.filter(|r| r.method.is_ceiling()).map(FlushRun::rate).fold(0.0, f64::max);
            (best > 0.0).then(|| writer / best)
        })
        .collect();
    out.sort_by(f64::total_cmp);
    out
}

/// `12345.6` as `12,346`.
pub fn thousands(v: f64) -> String {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn entries_are_distinct_after_the_peer_replaces_the_master_ip() {
        let e = mic_entries(10_000, 1);
        assert_eq!(e.len(), 10_000);
        let keys: std::collections::HashSet<_> = e
            .iter()
            .map(|(h, _)| (&h.master_name, &h.slave_name, &h.interface_name, &h.slave_ip, h.slave_port))
            .collect();
        assert_eq!(keys.len(), 10_000);
        assert!(e.iter().all(|(_, b)| b.count > 0 && b.interval_count.values().sum::<i32>() == b.count));
    }

    #[test]
    fn bodies_decode_and_replies_are_checked() {
        let e = mic_entries(250, 1);
        let bodies = report_bodies(&e, 100);
        assert_eq!(bodies.len(), 3);
        let total: usize = bodies
            .iter()
            .map(|b| {
                let r = MicReport::decode(b, MicLimits::default()).unwrap();
                assert!(r.from_client());
                r.len()
            })
            .sum();
        assert_eq!(total, 250);
        let frames = oneway_frames(&bodies);
        assert!(frames.len() > bodies.iter().map(Bytes::len).sum::<usize>());
        let mut w = ParamWriter::new(1);
        w.write_ret(&0i32);
        assert!(check_ret(1, &w.finish()).is_ok());
        let mut w = ParamWriter::new(1);
        w.write_ret(&-1i32);
        assert!(check_ret(1, &w.finish()).is_err());
    }

    #[test]
    fn status_and_names() {
        assert_eq!(parse_entries("entries: 42\nwindows flushed: 0\n").unwrap(), 42);
        assert!(parse_entries("nothing").is_err());
        assert_eq!("writer".parse::<FlushMethod>().unwrap(), FlushMethod::Writer);
        assert_eq!("mysql-load".parse::<FlushMethod>().unwrap(), FlushMethod::Raw(Method::MysqlLoad));
        assert!("sqlite-insert-100".parse::<FlushMethod>().is_err());
        assert_eq!("oneway".parse::<SendMode>().unwrap(), SendMode::Oneway);
        assert!(is_client_thread("stat-client-3") && is_client_thread("tars-bench-0"));
        assert!(!is_client_thread("tars.tarsstat-0"));
    }
}
