//! The node benchmark behind `tars-bench-node`: the real `tarsnode` binary as a separate
//! process, managing real business servers (`tarsnode-test-server`, which heart-beat through
//! the framework duties as any deployed server does), against a real registry.
//!
//! 1. A fresh SQLite `db_tars` in a temp dir (as `node/tests/node.rs` makes it), migrated,
//!    with `servers` rows `Bench.S<k>` on node `127.0.0.1` (type `tars_cpp`, setting state
//!    active; the executable a symlink to `tarsnode-test-server`).
//! 2. The registry ([`tars_registry::service::start`]: QueryObj and RegistryObj on 1 shard)
//!    runs in this process; `tarsnode --config=FILE` runs as a child process, with the
//!    node's default keep-alive intervals (check tick 2 s, registry keepAlive 10 s,
//!    updateServerBatch 60 s). It registers, fetches its servers and starts them all; the run
//!    waits until every one is Active (`getStateInfo` on NodeObj).
//! 3. Idle: after `settle`, `utime + stime` of the tarsnode process (`/proc/<pid>/stat`, all
//!    its threads) over `idle`, as % of one core, its `VmRSS`/`VmHWM` and threads, while
//!    every server is Active and heart-beating; nobody calls NodeObj meanwhile. The servers'
//!    own CPU and RSS are reported alongside. At the end every server must still be Active
//!    with the pid it had.
//! 4. Restarts: `kills` times, a server (round robin over all of them, so each one is killed
//!    `kills / servers` times) gets SIGKILL; from just before the `kill(2)`, every `poll`
//!    (1 ms) the bench reads the server's pid file (`bin/tars_start.sh.pid`, written by the
//!    start script right after it forks the server: the OS's view) and calls
//!    `NodeObj.getStateInfo` (the node's view), until the node reports a new pid and then
//!    Active (the new server's first keepActiving). `LAST_EXIT_TO_START_MS` of the answer's
//!    exState is the node's own figure: from the pidfd exit event to the start script's pid
//!    adopted. Between kills the bench waits `gap` after the replacement is Active. When a
//!    server would be killed more than `ActivatorMaxCount` (10) times, the node's config
//!    raises `/tars/app_conf/default<ActivatorMaxCount>` so that the restart throttle never
//!    refuses; the report says when it did.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use rustix::process::{kill_process, Pid, Signal};
use serde_json::{json, Value as Json};
use tars_core_net::rt::IoMode;
use tars_proto::config::Config;
use tars_proto::packet::version;
use tars_proto::rpc::ParamWriter;
use tars_protocol::tars::{ServerState, ServerStateInfo};
use tars_registry::service::{Registry, StartOptions};
use tars_sql::{Store, Value};
use tars_testkit::process::TempDir;
use tars_testkit::raw::RawConn;

use crate::cpu;
use crate::hist::round1;

/// The node's object.
pub const NODE_OBJ: &str = "tars.tarsnode.NodeObj";
/// The application of every managed server.
pub const APP: &str = "Bench";
/// The node's name (and IP).
pub const NODE: &str = "127.0.0.1";
/// The node's default restart throttle (`ActivatorMaxCount`).
pub const DEFAULT_ACTIVATOR_MAX: usize = 10;

/// What a run covers.
#[derive(Debug, Clone)]
pub struct NodeBenchConfig {
    /// The `tarsnode` binary.
    pub tarsnode: PathBuf,
    /// The business server binary (`tarsnode-test-server`).
    pub test_server: PathBuf,
    /// Servers the node manages.
    pub servers: usize,
    /// SIGKILLs measured.
    pub kills: usize,
    /// Pause after a replacement is Active before the next kill.
    pub gap: Duration,
    /// Polling interval while waiting for a restart.
    pub poll: Duration,
    /// Wait this long after every server is Active before the idle window.
    pub settle: Duration,
    /// The idle window.
    pub idle: Duration,
    /// Give up when the servers are not all Active after this long.
    pub start_limit: Duration,
    /// The node's `--io`; `None` = its default.
    pub node_io: Option<IoMode>,
    /// Run the idle phase.
    pub idle_phase: bool,
    /// Run the restart phase.
    pub restart_phase: bool,
}

/// The directory of this executable (where cargo puts the workspace's binaries).
fn exe_dir() -> PathBuf {
    std::env::current_exe().ok().and_then(|p| p.parent().map(Path::to_path_buf)).unwrap_or_else(|| PathBuf::from("."))
}

impl NodeBenchConfig {
    /// The full run: 50 servers, 100 kills 0.3 s apart, 30 s idle window after 10 s.
    pub fn full() -> NodeBenchConfig {
        let dir = exe_dir();
        NodeBenchConfig {
            tarsnode: dir.join("tarsnode"),
            test_server: dir.join("tarsnode-test-server"),
            servers: 50,
            kills: 100,
            gap: Duration::from_millis(300),
            poll: Duration::from_millis(1),
            settle: Duration::from_secs(10),
            idle: Duration::from_secs(30),
            start_limit: Duration::from_secs(180),
            node_io: None,
            idle_phase: true,
            restart_phase: true,
        }
    }

    /// A smoke run: 3 servers, 4 kills, 1 s idle window, no settling.
    pub fn quick() -> NodeBenchConfig {
        NodeBenchConfig {
            servers: 3,
            kills: 4,
            gap: Duration::from_millis(100),
            settle: Duration::ZERO,
            idle: Duration::from_secs(1),
            start_limit: Duration::from_secs(60),
            ..NodeBenchConfig::full()
        }
    }

    /// Kills per server (the most any one server gets).
    pub fn kills_per_server(&self) -> usize {
        self.kills.div_ceil(self.servers.max(1))
    }

    /// `ActivatorMaxCount` for the node's config, when the default would throttle the run.
    pub fn activator_max(&self) -> Option<usize> {
        let per = self.kills_per_server();
        (per >= DEFAULT_ACTIVATOR_MAX).then_some(per + DEFAULT_ACTIVATOR_MAX)
    }
}

/// The name of server `k`.
pub fn server_name(k: usize) -> String {
    format!("S{k}")
}

// ---------------------------------------------------------------------------------------
// Set-up

/// Inserts `t_server_conf` rows for `servers` servers and links their executables.
fn add_servers(store: &Store, data: &Path, exe: &Path, servers: usize) -> Result<()> {
    let profile = "<tars>\n<application>\n<server>\napp=${app}\nserver=${server}\nlocal=${local}\n\
                   logpath=${logpath}\ndeactivating-timeout=2000\n</server>\n</application>\n</tars>\n";
    for k in 0..servers {
        let name = server_name(k);
        let bin = data.join(format!("{APP}.{name}/bin"));
        std::fs::create_dir_all(&bin).with_context(|| format!("creating {}", bin.display()))?;
        std::os::unix::fs::symlink(exe, bin.join(&name)).with_context(|| format!("linking {}", exe.display()))?;
        let params: Vec<Value> = vec![APP.into(), name.as_str().into(), NODE.into(), profile.into()];
        store
            .run_blocking(move |s| {
                s.exec(
                    "INSERT INTO t_server_conf (application, server_name, node_name, setting_state, present_state, \
                     server_type, profile) VALUES (?, ?, ?, 'active', 'inactive', 'tars_cpp', ?)",
                    &params,
                )
            })
            .context("inserting t_server_conf")?;
    }
    Ok(())
}

/// The registry: QueryObj and RegistryObj, 1 shard, 100 ms change poll (as the node's tests).
fn start_registry(store: &Store) -> Result<Registry> {
    let adapter = |obj: &str| {
        format!("<{obj}Adapter>\nendpoint=tcp -h 127.0.0.1 -p 0 -t 60000\nservant={obj}\n</{obj}Adapter>\n")
    };
    let text = format!(
        "<tars>\n<application>\n<server>\napp=tars\nserver=tarsregistry\nlocal=tcp -h 127.0.0.1 -p 0 -t 10000\n\
         {}{}</server>\n</application>\n<reap>\nchangePollMs=100\n</reap>\n</tars>\n",
        adapter("tars.tarsregistry.QueryObj"),
        adapter("tars.tarsregistry.RegistryObj"),
    );
    let config = Config::parse(&text).context("registry config")?;
    let opts = StartOptions { io: Some(IoMode::EpollEt), shards: Some(1), store: Some(store.clone()) };
    tars_registry::service::start(&config, opts).context("starting the registry")
}

/// The node's config: NodeObj and ServerObj on free ports, the registry, default keep-alive
/// intervals, and `ActivatorMaxCount` when given.
pub fn node_config(dir: &Path, registry: SocketAddr, locator: &str, activator_max: Option<usize>) -> String {
    let app_conf = match activator_max {
        Some(n) => format!("<app_conf>\n<default>\nActivatorMaxCount={n}\n</default>\n</app_conf>\n"),
        None => String::new(),
    };
    format!(
        "<tars>\n<application>\n<client>\nlocator={locator}\nsync-invoke-timeout=3000\n</client>\n<server>\n\
         app=tars\nserver=tarsnode\nlocalip={NODE}\nlocal=tcp -h 127.0.0.1 -p 0 -t 10000\n\
         datapath={d}/data\nlogpath={d}/log\n\
         <NodeAdapter>\nendpoint=tcp -h 127.0.0.1 -p 0 -t 60000\nservant={NODE_OBJ}\n</NodeAdapter>\n\
         <ServerAdapter>\nendpoint=tcp -h 127.0.0.1 -p 0 -t 60000\nservant=tars.tarsnode.ServerObj\n</ServerAdapter>\n\
         </server>\n</application>\n<node>\n\
         registryObj=tars.tarsregistry.RegistryObj@tcp -h 127.0.0.1 -p {} -t 3000\n</node>\n{app_conf}</tars>\n",
        registry.port(),
        d = dir.display()
    )
}

/// The tarsnode process; on drop it is stopped (SIGTERM, then SIGKILL) and so is every
/// server pid recorded in `servers`.
struct NodeProcess {
    child: Child,
    node_obj: SocketAddr,
    servers: BTreeMap<String, i32>,
}

impl NodeProcess {
    fn start(cfg: &NodeBenchConfig, conf: &Path, stderr: &Path) -> Result<NodeProcess> {
        let mut cmd = Command::new(&cfg.tarsnode);
        cmd.arg(format!("--config={}", conf.display()));
        if let Some(io) = cfg.node_io {
            cmd.arg(format!("--io={io}"));
        }
        let err = std::fs::File::create(stderr).with_context(|| format!("creating {}", stderr.display()))?;
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(err)
            .spawn()
            .with_context(|| format!("starting {}", cfg.tarsnode.display()))?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        let (tx, rx) = std::sync::mpsc::channel();
        // The banner: one line per adapter, then READY; read on a thread so a node that hangs
        // does not hang the bench.
        std::thread::spawn(move || {
            let mut addr = None;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let mut words = line.split_whitespace();
                if let (Some("NodeAdapter"), Some(a)) = (words.next(), words.next()) {
                    addr = a.parse::<SocketAddr>().ok();
                }
                if line.trim() == "READY" {
                    let _ = tx.send(addr);
                    addr = None;
                }
            }
        });
        let mut node = NodeProcess { child, node_obj: SocketAddr::from(([127, 0, 0, 1], 0)), servers: BTreeMap::new() };
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(Some(a)) => node.node_obj = a,
            Ok(None) => bail!("tarsnode printed READY without a NodeAdapter line"),
            Err(_) => {
                let log = std::fs::read_to_string(stderr).unwrap_or_default();
                bail!("tarsnode did not print READY within 30 s; its stderr:\n{log}")
            }
        }
        Ok(node)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        if let Ok(mut conn) = RawConn::connect(self.node_obj) {
            for (name, pid) in self.servers.iter_mut() {
                if let Ok(s) = get_state(&mut conn, name) {
                    if s.pid > 1 {
                        *pid = s.pid;
                    }
                }
            }
        }
        if let Some(p) = i32::try_from(self.child.id()).ok().and_then(Pid::from_raw) {
            let _ = kill_process(p, Signal::TERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The node leaves its servers running when it stops (as upstream's); these are ours.
        for pid in self.servers.values().filter(|p| **p > 1) {
            if let Some(p) = Pid::from_raw(*pid) {
                let _ = kill_process(p, Signal::KILL);
            }
        }
    }
}

/// One `getStateInfo` answer.
#[derive(Debug, Clone)]
pub struct State {
    /// The state.
    pub state: ServerState,
    /// The pid (0 or -1 when none).
    pub pid: i32,
    /// exState.
    pub ex: BTreeMap<String, String>,
}

impl State {
    fn ex_u64(&self, key: &str) -> Option<u64> {
        self.ex.get(key).and_then(|v| v.parse().ok())
    }
}

/// `NodeObj.getStateInfo(APP, server)` on a blocking connection.
pub fn get_state(conn: &mut RawConn, server: &str) -> Result<State> {
    let mut w = ParamWriter::new(version::TARS);
    w.write_str(1, "application", APP);
    w.write_str(2, "serverName", server);
    let req = conn.request(NODE_OBJ, "getStateInfo", version::TARS, w.finish());
    let reply = conn.call(&req).context("NodeObj.getStateInfo")?;
    if reply.ret != 0 {
        bail!("getStateInfo: iRet {}: {}", reply.ret, reply.desc);
    }
    let mut p = reply.params()?;
    let ret: i32 = p.read_ret()?;
    let info: ServerStateInfo = p.read(3, "info")?;
    if ret != 0 {
        let result: String = p.read(4, "result").unwrap_or_default();
        bail!("getStateInfo {server}: {ret}: {result}");
    }
    Ok(State { state: info.server_state, pid: info.process_id, ex: info.ex_state.into_iter().collect() })
}

/// `VmRSS`, `VmHWM` (KiB) and `Threads` of `pid`.
pub fn proc_status(pid: u32) -> (u64, u64, u64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"), field("Threads:"))
}

/// On-CPU time of `pid`'s live threads, in ns precision: the sum of `se.sum_exec_runtime`
/// (ms with six decimals) over `/proc/<pid>/task/*/sched`; `None` where the kernel has no
/// such file. Threads that exited are missing (the idle window starts none).
pub fn sched_runtime(pid: u32) -> Option<Duration> {
    let mut total = 0.0f64;
    let mut any = false;
    for e in std::fs::read_dir(format!("/proc/{pid}/task")).ok()?.flatten() {
        let Ok(text) = std::fs::read_to_string(e.path().join("sched")) else { continue };
        let v = text.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == "se.sum_exec_runtime").then(|| v.trim().parse::<f64>().ok()).flatten()
        });
        if let Some(ms) = v {
            total += ms;
            any = true;
        }
    }
    any.then(|| Duration::from_secs_f64(total / 1000.0))
}

fn pid_file(data: &Path, server: &str) -> PathBuf {
    data.join(format!("{APP}.{server}/bin/tars_start.sh.pid"))
}

fn read_pid_file(path: &Path) -> Option<i32> {
    let text = std::fs::read_to_string(path).ok()?;
    text.ends_with('\n').then(|| text.trim().parse().ok()).flatten()
}

fn alive(pid: i32) -> bool {
    u32::try_from(pid).is_ok_and(tars_node::supervise::is_alive)
}

// ---------------------------------------------------------------------------------------
// Figures

/// Min, p50, p99 and max (nearest rank), in ms.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Dist {
    /// Samples.
    pub n: usize,
    /// Smallest.
    pub min: f64,
    /// Median.
    pub p50: f64,
    /// 99th percentile (below 100 samples: the maximum).
    pub p99: f64,
    /// Largest.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

impl Dist {
    /// Of `samples` (ms).
    pub fn of(samples: impl IntoIterator<Item = f64>) -> Dist {
        let mut v: Vec<f64> = samples.into_iter().collect();
        if v.is_empty() {
            return Dist::default();
        }
        v.sort_by(f64::total_cmp);
        let rank = |q: f64| v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        Dist { n: v.len(), min: v[0], p50: rank(0.5), p99: rank(0.99), max: v[v.len() - 1], mean }
    }

    fn to_json(self) -> Json {
        let r2 = |x: f64| (x * 100.0).round() / 100.0;
        json!({"n": self.n, "min_ms": r2(self.min), "p50_ms": r2(self.p50), "p99_ms": r2(self.p99),
               "max_ms": r2(self.max), "mean_ms": r2(self.mean)})
    }

    fn text(self) -> String {
        format!(
            "p50 {:>7.2}  p99 {:>7.2}  max {:>7.2}  (min {:.2}, mean {:.2}) ms, n={}",
            self.p50, self.p99, self.max, self.min, self.mean, self.n
        )
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// One measured kill.
#[derive(Debug, Clone)]
pub struct Kill {
    /// The server.
    pub server: String,
    /// From the kill until the pid file held the new, live pid.
    pub pid_file: Option<Duration>,
    /// From the kill until `getStateInfo` reported a new pid.
    pub node_pid: Duration,
    /// From the kill until `getStateInfo` reported Active.
    pub active: Duration,
    /// The node's `LAST_EXIT_TO_START_MS` afterwards.
    pub exit_to_start_ms: Option<u64>,
    /// getStateInfo calls while waiting.
    pub polls: u64,
}

/// The idle window.
#[derive(Debug, Clone)]
pub struct Idle {
    /// Its length.
    pub window: Duration,
    /// tarsnode's CPU time over it (`utime + stime`, clock ticks).
    pub node_cpu: Duration,
    /// The same from the scheduler's per-thread runtime (ns precision), where available.
    pub node_sched: Option<Duration>,
    /// tarsnode's VmRSS, VmHWM (KiB) and threads at its end.
    pub node_status: (u64, u64, u64),
    /// The managed servers' CPU time over it, summed.
    pub servers_cpu: Duration,
    /// The same from the scheduler's runtime.
    pub servers_sched: Option<Duration>,
    /// Their VmRSS summed (KiB).
    pub servers_rss_kib: u64,
    /// Servers Active with an unchanged pid at the end.
    pub still_active: usize,
}

impl Idle {
    /// tarsnode's CPU as % of one core.
    pub fn node_pct(&self) -> f64 {
        self.pct(self.node_cpu)
    }

    /// `d` as % of one core over the window.
    pub fn pct(&self, d: Duration) -> f64 {
        d.as_secs_f64() / self.window.as_secs_f64().max(1e-9) * 100.0
    }
}

/// The whole benchmark.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The machine.
    pub machine: String,
    /// The tarsnode binary.
    pub tarsnode: String,
    /// From the node's start until every server was Active.
    pub all_active: Duration,
    /// tarsnode's VmRSS, VmHWM and threads once every server was Active.
    pub started_status: (u64, u64, u64),
    /// The idle phase.
    pub idle: Option<Idle>,
    /// The kills.
    pub kills: Vec<Kill>,
    /// `ActivatorMaxCount` written into the node's config, if raised.
    pub activator_max: Option<usize>,
}

/// Runs the benchmark.
pub fn run(cfg: &NodeBenchConfig, log: &mut dyn FnMut(&str)) -> Result<Outcome> {
    if cfg.servers == 0 {
        bail!("--servers must be at least 1");
    }
    for bin in [&cfg.tarsnode, &cfg.test_server] {
        if !bin.is_file() {
            bail!(
                "{} not found (cargo build --release -p tars-node --bins; or --tarsnode/--test-server)",
                bin.display()
            );
        }
    }
    let test_server = std::fs::canonicalize(&cfg.test_server).context("resolving --test-server")?;
    let dir = TempDir::new("bench-node").context("creating a temp dir")?;
    let d = dir.0.clone();
    let data = d.join("data");
    let store = Store::open(&format!("sqlite:{}/db_tars.sqlite3", d.display())).context("opening SQLite")?;
    store.migrate(tars_sql::schema::db_tars::schema()).context("migrating db_tars")?;
    add_servers(&store, &data, &test_server, cfg.servers)?;
    let registry = start_registry(&store)?;
    let result = (|| {
        let reg_addr = registry.addr_of("tars.tarsregistry.RegistryObj").ok_or_else(|| anyhow!("RegistryObj"))?;
        let conf = d.join("tarsnode.conf");
        let activator_max = cfg.activator_max();
        std::fs::write(&conf, node_config(&d, reg_addr, &registry.locator(), activator_max))?;
        let t0 = Instant::now();
        let mut node = NodeProcess::start(cfg, &conf, &d.join("tarsnode.stderr"))?;
        let names: Vec<String> = (0..cfg.servers).map(server_name).collect();
        for n in &names {
            node.servers.insert(n.clone(), 0);
        }
        log(&format!(
            "tarsnode pid {} (NodeObj {}), {} servers, registry in this process; waiting for all Active",
            node.pid(),
            node.node_obj,
            cfg.servers
        ));
        let mut conn = RawConn::connect(node.node_obj).context("connecting to NodeObj")?;
        let mut pids: BTreeMap<String, i32> = BTreeMap::new();
        loop {
            for n in &names {
                if pids.contains_key(n) {
                    continue;
                }
                // The node answers "server not exist" until its first getServers has loaded
                // them: not yet, unless that lasts past the limit.
                let s = match get_state(&mut conn, n) {
                    Ok(s) => s,
                    Err(e) if t0.elapsed() > cfg.start_limit => return Err(e),
                    Err(_) => continue,
                };
                if s.pid > 0 {
                    node.servers.insert(n.clone(), s.pid);
                }
                if s.state == ServerState::Active && s.pid > 0 {
                    pids.insert(n.clone(), s.pid);
                }
            }
            if pids.len() == names.len() {
                break;
            }
            if t0.elapsed() > cfg.start_limit {
                bail!("only {} of {} servers Active after {:?}", pids.len(), names.len(), cfg.start_limit);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let all_active = t0.elapsed();
        let started_status = proc_status(node.pid());
        log(&format!(
            "all {} servers Active {:.2} s after tarsnode started; tarsnode VmRSS {} KiB, {} threads",
            cfg.servers,
            all_active.as_secs_f64(),
            started_status.0,
            started_status.2
        ));

        let idle = if cfg.idle_phase {
            drop(conn);
            std::thread::sleep(cfg.settle);
            let servers_cpu =
                || pids.values().map(|p| cpu::cpu_time(&p.to_string()).unwrap_or_default()).sum::<Duration>();
            let sched = || {
                let node = sched_runtime(node.pid());
                let servers = pids.values().map(|p| sched_runtime(*p as u32)).sum::<Option<Duration>>();
                (node, servers)
            };
            let (n0, s0, q0, w0) = (cpu::cpu_time(&node.pid().to_string())?, servers_cpu(), sched(), Instant::now());
            std::thread::sleep(cfg.idle);
            let (n1, s1, q1, window) = (cpu::cpu_time(&node.pid().to_string())?, servers_cpu(), sched(), w0.elapsed());
            let node_status = proc_status(node.pid());
            let servers_rss_kib = pids.values().map(|p| proc_status(*p as u32).0).sum();
            conn = RawConn::connect(node.node_obj).context("connecting to NodeObj")?;
            let mut still_active = 0;
            for (n, p) in &pids {
                let s = get_state(&mut conn, n)?;
                if s.state == ServerState::Active && s.pid == *p {
                    still_active += 1;
                }
            }
            let idle = Idle {
                window,
                node_cpu: n1.saturating_sub(n0),
                node_sched: q0.0.zip(q1.0).map(|(a, b)| b.saturating_sub(a)),
                node_status,
                servers_cpu: s1.saturating_sub(s0),
                servers_sched: q0.1.zip(q1.1).map(|(a, b)| b.saturating_sub(a)),
                servers_rss_kib,
                still_active,
            };
            log(&format!(
                "idle {:.1} s: tarsnode {:.3}% of one core, VmRSS {} KiB; {} of {} servers still Active",
                window.as_secs_f64(),
                idle.node_pct(),
                node_status.0,
                still_active,
                cfg.servers
            ));
            Some(idle)
        } else {
            None
        };

        let mut kills = Vec::new();
        if cfg.restart_phase {
            for i in 0..cfg.kills {
                let name = &names[i % names.len()];
                let k = kill_once(&mut conn, &data, name, cfg)?;
                if let Some(s) = get_state(&mut conn, name).ok().filter(|s| s.pid > 0) {
                    node.servers.insert(name.clone(), s.pid);
                }
                if (i + 1) % 10 == 0 || i + 1 == cfg.kills {
                    log(&format!(
                        "kill {}/{}: {name}: node {} ms, new pid seen {:.2} ms, Active {:.2} ms",
                        i + 1,
                        cfg.kills,
                        k.exit_to_start_ms.map_or("-".to_owned(), |v| v.to_string()),
                        ms(k.node_pid),
                        ms(k.active)
                    ));
                }
                kills.push(k);
                std::thread::sleep(cfg.gap);
            }
        }
        Ok(Outcome {
            machine: crate::store::machine_info(),
            tarsnode: cfg.tarsnode.display().to_string(),
            all_active,
            started_status,
            idle,
            kills,
            activator_max,
        })
    })();
    let _ = registry.shutdown();
    result
}

/// Kills `name`'s process and waits for the node to report its replacement Active.
fn kill_once(conn: &mut RawConn, data: &Path, name: &str, cfg: &NodeBenchConfig) -> Result<Kill> {
    let before = get_state(conn, name)?;
    if before.state != ServerState::Active || before.pid <= 1 {
        bail!("{name} is not Active before the kill: {:?} pid {}", before.state, before.pid);
    }
    let starts = before.ex_u64("STARTS").unwrap_or(0);
    let old = before.pid;
    let pid = Pid::from_raw(old).ok_or_else(|| anyhow!("pid {old}"))?;
    let pf = pid_file(data, name);
    let t0 = Instant::now();
    kill_process(pid, Signal::KILL).with_context(|| format!("kill -9 {old}"))?;
    let (mut pid_file_at, mut node_pid, mut polls) = (None, None, 0u64);
    loop {
        let now = t0.elapsed();
        if pid_file_at.is_none() && read_pid_file(&pf).is_some_and(|p| p != old && alive(p)) {
            pid_file_at = Some(now);
        }
        let s = get_state(conn, name)?;
        polls += 1;
        let at = t0.elapsed();
        if node_pid.is_none() && s.pid > 0 && s.pid != old {
            node_pid = Some(at);
        }
        if let Some(np) = node_pid {
            if s.state == ServerState::Active && s.pid > 0 && s.pid != old {
                if s.ex_u64("STARTS") != Some(starts + 1) {
                    bail!("{name}: STARTS {:?} after the kill, expected {}", s.ex.get("STARTS"), starts + 1);
                }
                return Ok(Kill {
                    server: name.to_owned(),
                    pid_file: pid_file_at,
                    node_pid: np,
                    active: at,
                    exit_to_start_ms: s.ex_u64("LAST_EXIT_TO_START_MS"),
                    polls,
                });
            }
        }
        if s.ex.contains_key("LIMITED") {
            bail!("{name}: the restart throttle refused the restart (LIMITED)");
        }
        if at > Duration::from_secs(30) {
            bail!("{name}: no Active replacement 30 s after the kill: {:?} pid {}", s.state, s.pid);
        }
        std::thread::sleep(cfg.poll);
    }
}

impl Outcome {
    /// The node's own exit-to-start figures.
    pub fn node_exit_to_start(&self) -> Dist {
        Dist::of(self.kills.iter().filter_map(|k| k.exit_to_start_ms).map(|v| v as f64))
    }

    /// Kill → new pid in the pid file.
    pub fn pid_file(&self) -> Dist {
        Dist::of(self.kills.iter().filter_map(|k| k.pid_file).map(ms))
    }

    /// Kill → new pid from getStateInfo.
    pub fn node_pid(&self) -> Dist {
        Dist::of(self.kills.iter().map(|k| ms(k.node_pid)))
    }

    /// Kill → Active from getStateInfo.
    pub fn active(&self) -> Dist {
        Dist::of(self.kills.iter().map(|k| ms(k.active)))
    }

    /// As JSON.
    pub fn to_json(&self, cfg: &NodeBenchConfig) -> Json {
        json!({
            "machine": self.machine,
            "tarsnode": self.tarsnode,
            "servers": cfg.servers,
            "all_active_s": round1(self.all_active.as_secs_f64() * 100.0) / 100.0,
            "started_node_rss_kib": self.started_status.0,
            "activator_max_count": self.activator_max,
            "idle": self.idle.as_ref().map(|i| json!({
                "window_s": round1(i.window.as_secs_f64() * 10.0) / 10.0,
                "node_cpu_ms": round1(ms(i.node_cpu)),
                "node_cpu_pct_of_core": (i.node_pct() * 1000.0).round() / 1000.0,
                "node_sched_ms": i.node_sched.map(|d| (ms(d) * 1000.0).round() / 1000.0),
                "node_sched_pct_of_core": i.node_sched.map(|d| (i.pct(d) * 10000.0).round() / 10000.0),
                "servers_sched_ms": i.servers_sched.map(|d| (ms(d) * 1000.0).round() / 1000.0),
                "node_rss_kib": i.node_status.0,
                "node_hwm_kib": i.node_status.1,
                "node_threads": i.node_status.2,
                "servers_cpu_ms": round1(ms(i.servers_cpu)),
                "servers_rss_kib": i.servers_rss_kib,
                "still_active": i.still_active,
            })),
            "restart": {
                "kills": self.kills.len(),
                "gap_s": cfg.gap.as_secs_f64(),
                "poll_ms": ms(cfg.poll),
                "node_exit_to_start": self.node_exit_to_start().to_json(),
                "kill_to_pid_file": self.pid_file().to_json(),
                "kill_to_new_pid_via_node_obj": self.node_pid().to_json(),
                "kill_to_active": self.active().to_json(),
                "mean_polls": if self.kills.is_empty() { 0.0 } else {
                    self.kills.iter().map(|k| k.polls as f64).sum::<f64>() / self.kills.len() as f64
                },
            },
        })
    }

    /// The human-readable report.
    pub fn text(&self, cfg: &NodeBenchConfig) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "machine: {}", self.machine);
        let _ = writeln!(
            s,
            "tarsnode {} (separate process), {} tarsnode-test-server servers, registry (SQLite) in the bench process",
            self.tarsnode, cfg.servers
        );
        let _ = writeln!(
            s,
            "ActivatorMaxCount: {}",
            self.activator_max.map_or("10 (default; no server is killed that often)".to_owned(), |n| format!(
                "raised to {n} in the node's config ({} kills per server)",
                cfg.kills_per_server()
            ))
        );
        let _ = writeln!(
            s,
            "start: all {} Active {:.2} s after tarsnode started; tarsnode VmRSS {} KiB, {} threads",
            cfg.servers,
            self.all_active.as_secs_f64(),
            self.started_status.0,
            self.started_status.2
        );
        if let Some(i) = &self.idle {
            let _ = writeln!(
                s,
                "idle {:.1} s after {:.0} s settling, {} servers Active and heart-beating, nobody calling NodeObj:",
                i.window.as_secs_f64(),
                cfg.settle.as_secs_f64(),
                cfg.servers
            );
            let sched = |d: Option<Duration>| {
                d.map_or(String::new(), |d| format!(" (scheduler runtime {:.3} ms = {:.4}%)", ms(d), i.pct(d)))
            };
            let _ = writeln!(
                s,
                "  tarsnode: utime+stime {:.0} ms = {:.3}% of one core{}; VmRSS {} KiB (VmHWM {} KiB), {} threads",
                ms(i.node_cpu),
                i.node_pct(),
                sched(i.node_sched),
                i.node_status.0,
                i.node_status.1,
                i.node_status.2
            );
            let _ = writeln!(
                s,
                "  the {} servers together: utime+stime {:.0} ms = {:.3}% of one core{}; VmRSS {} KiB; \
                 {} still Active (same pid)",
                cfg.servers,
                ms(i.servers_cpu),
                i.pct(i.servers_cpu),
                sched(i.servers_sched),
                i.servers_rss_kib,
                i.still_active
            );
        }
        if !self.kills.is_empty() {
            let _ = writeln!(
                s,
                "restart after kill -9 ({} kills round robin over {} servers, {:.1} s after each replacement is Active; \
                 polled every {:.0} ms):",
                self.kills.len(),
                cfg.servers,
                cfg.gap.as_secs_f64(),
                ms(cfg.poll)
            );
            let _ = writeln!(
                s,
                "  node's LAST_EXIT_TO_START_MS (exit event -> pid adopted): {}",
                self.node_exit_to_start().text()
            );
            let _ = writeln!(s, "  kill -> new live pid in the pid file:                   {}", self.pid_file().text());
            let _ = writeln!(s, "  kill -> new pid from NodeObj.getStateInfo:              {}", self.node_pid().text());
            let _ = writeln!(s, "  kill -> Active from NodeObj.getStateInfo:               {}", self.active().text());
        }
        s
    }
}
