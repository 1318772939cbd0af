//! The manager: every server of the node, its state machine (upstream's `ServerObject` and
//! the `Command*` classes) and the check tick (`KeepAliveThread::checkAlive`).
//!
//! # Threads
//!
//! - `tars-node-manager` (this module's [`spawn`]) owns every server's state. It waits on one
//!   crossbeam `select` for: messages ([`Msg`]: heart-beats forwarded by the `ServerObj`
//!   servants of the IO shards, commands from [`crate::NodeHandle`], results of operations,
//!   descriptors from the sync thread), process exits from the [`Watcher`]'s pidfds, and the
//!   check tick. It never blocks on a process or the network: starts, stops, config writes and
//!   destroys run on one short-lived `tars-node-op` thread per operation, which reports back
//!   with a [`Msg::Done`], so one server's 60 s stop never delays another's checks.
//! - `tars-node-watch` (the [`Watcher`]) sees a server's exit the moment it happens.
//! - `tars-node-sync` ([`crate::sync`]) makes every registry call.
//!
//! # Where this differs from upstream
//!
//! - A crash is seen through the pidfd within milliseconds and the server is restarted at once
//!   (upstream polls `kill(pid, 0)` every `monitorInterval`).
//! - `hearttimeout` and `activating-timeout` are compared in milliseconds.
//! - A server in `Loading` / `Patching` is reported with the state it had before, never as
//!   Inactive.
//! - The "[alarm] down" notice is sent once per incident (until the server heart-beats again),
//!   not once per restart of a crash loop.
//! - At start, a server still running from before (its `tars_start.sh.pid` names a live process
//!   whose command line holds its config file) is adopted instead of started a second time.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{select, Receiver, Sender};
use tars_core_net::client::BlockingClient;
use tars_proto::rpc::CallOptions;
use tars_protocol::tars::{AdminFProxy, ServerDescriptor, ServerState, ServerStateInfo};

use crate::confgen::{self, Generated, NodeEnv, ServerPaths};
use crate::handle::{LOAD_SERVICE_DESC_ERR, SUCCESS, UNKNOWN_ERR};
use crate::launch;
use crate::settings::NodeSettings;
use crate::state::{Activator, State};
use crate::supervise::{self, Exited, SpawnOptions, Started, StopOutcome, WatchId, Watcher};
use crate::sync::SyncMsg;

/// A reply callback with upstream's `(code, result)`.
pub(crate) type Reply = Box<dyn FnOnce((i32, String)) + Send>;

/// How long an `AdminObj` call (shutdown, notify) may take.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(3);

/// A process in state R or D (maybe dumping core) gets this much longer before it is taken
/// for a zombie (`ServerObject::checkServer`'s core-dump grace).
const CORE_GRACE: Duration = Duration::from_secs(60);

/// A command for the manager thread.
pub(crate) enum Cmd {
    Start { id: String, reply: Reply },
    Stop { id: String, reply: Reply },
    Restart { id: String, reply: Reply },
    Notify { id: String, command: String, reply: Reply },
    Load { id: String, reply: Reply },
    Destroy { id: String, reply: Reply },
    StateInfo { id: String, reply: Box<dyn FnOnce(crate::handle::StateAnswer) + Send> },
    StopAll { reply: Reply },
    Shutdown { reply: Reply },
    Ping { reply: Box<dyn FnOnce(()) + Send> },
}

/// What a fetched descriptor is for.
pub(crate) enum Then {
    Start(Reply),
    Load(Reply),
}

/// A message for the manager thread.
pub(crate) enum Msg {
    /// `ServerF.keepAlive` (`activing` false) or `keepActiving` (true).
    Beat {
        app: String,
        server: String,
        pid: i32,
        adapter: String,
        activing: bool,
    },
    /// `ServerF.reportVersion`.
    Version {
        app: String,
        server: String,
        version: String,
    },
    Cmd(Cmd),
    /// An operation finished.
    Done {
        id: String,
        op: u64,
        done: Box<Done>,
    },
    /// Every server of the node, from `getServers("", "", node)`.
    Servers(Vec<ServerDescriptor>),
    /// One server's descriptor (`None`: the registry does not know it), or why not.
    Fetched {
        id: String,
        result: Result<Option<Box<ServerDescriptor>>, String>,
        then: Then,
    },
    /// The registry's locator, refreshed.
    Locator(String),
    /// The framework's private key (`${priKey}`), from the registry's `getFrameworkKey`.
    FrameworkKey(String),
    /// Stop the manager thread (servers keep running).
    Stop,
}

/// The result of an operation.
pub(crate) enum Done {
    Started(Result<(Started, Generated), String>),
    Stopped(Result<StopOutcome, String>),
    Loaded(Result<Generated, String>),
    Destroyed(Result<(), String>),
}

/// `(server id, message)`.
pub(crate) type NoticeFn = Arc<dyn Fn(&str, &str) + Send + Sync>;
/// `(server id, RSS KiB)`.
pub(crate) type MemFn = Arc<dyn Fn(&str, u64) + Send + Sync>;

/// What the manager calls out to (the application's duties, the service's stop).
#[derive(Clone)]
pub(crate) struct Hooks {
    /// A notice about server `id` (an alarm).
    pub notify: NoticeFn,
    /// A server's resident memory in KiB (`<id>.memsize`, max).
    pub memsize: MemFn,
    /// Stop the node itself (`NodeObj.shutdown`).
    pub shutdown: Arc<dyn Fn() + Send + Sync>,
}

/// What the manager needs to know about the node.
pub(crate) struct ManagerConfig {
    pub env: NodeEnv,
    pub settings: NodeSettings,
    pub cache_path: PathBuf,
    /// The node's own `local` endpoint (for `notifyServer tars.tarsnode`).
    pub node_local: Option<String>,
    pub client: Arc<BlockingClient>,
    pub hooks: Hooks,
    /// Unix seconds of the last check tick (`getLatestKeepAliveTime`).
    pub latest: Arc<AtomicU32>,
}

/// What to do once a stop completes.
enum AfterStop {
    Nothing,
    Restart,
}

/// One server. Lives on the manager thread only.
struct Entry {
    id: String,
    app: String,
    server: String,
    desc: ServerDescriptor,
    gen: Option<Generated>,
    state: State,
    /// The state to report while in an overlay state (Loading, Patching...).
    before: State,
    pid: u32,
    started: Option<Started>,
    watch: Option<WatchId>,
    enabled: bool,
    last_beat: Option<Instant>,
    adapter_beats: HashMap<String, Instant>,
    start_time: Option<Instant>,
    proc_start: Option<SystemTime>,
    /// The operation in flight and its number.
    busy: Option<&'static str>,
    op: u64,
    activator: Activator,
    /// The down alarm of the current incident was sent.
    alarmed: bool,
    /// When the last unexpected exit was seen (to measure exit → restart).
    exit_at: Option<Instant>,
    last_restart_ms: Option<u128>,
    starts: u64,
    waiting: Vec<Reply>,
    after_stop: AfterStop,
    version: String,
}

impl Entry {
    fn new(desc: ServerDescriptor) -> Entry {
        Entry {
            id: format!("{}.{}", desc.application, desc.server_name),
            app: desc.application.clone(),
            server: desc.server_name.clone(),
            enabled: desc.setting_state.eq_ignore_ascii_case("active"),
            desc,
            gen: None,
            state: State::Inactive,
            before: State::Inactive,
            pid: 0,
            started: None,
            watch: None,
            last_beat: None,
            adapter_beats: HashMap::new(),
            start_time: None,
            proc_start: None,
            busy: None,
            op: 0,
            activator: Activator::default(),
            alarmed: false,
            exit_at: None,
            last_restart_ms: None,
            starts: 0,
            waiting: Vec::new(),
            after_stop: AfterStop::Nothing,
            version: String::new(),
        }
    }

    /// The state the registry is told.
    fn reported(&self) -> ServerState {
        let s = if self.state.is_overlay() { self.before } else { self.state };
        if self.gen.as_ref().is_some_and(|g| !g.keys.enable_working) {
            return ServerState::Inactive;
        }
        s.wire()
    }

    fn state_info(&self, node: &str) -> ServerStateInfo {
        ServerStateInfo {
            server_state: self.reported(),
            process_id: i32::try_from(self.pid).unwrap_or(0),
            node_name: node.to_owned(),
            application: self.app.clone(),
            server_name: self.server.clone(),
            ..Default::default()
        }
    }

    fn heart_timeout(&self, node_default: Duration) -> Duration {
        self.gen.as_ref().map_or(node_default, |g| g.keys.heart_timeout)
    }

    fn local_obj(&self) -> Option<String> {
        self.gen.as_ref().and_then(|g| g.keys.local.as_ref()).map(|ep| format!("AdminObj@{ep}"))
    }
}

/// Starts the manager thread.
pub(crate) fn spawn(
    cfg: ManagerConfig,
    rx: Receiver<Msg>,
    tx: Sender<Msg>,
    sync: Sender<SyncMsg>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name("tars-node-manager".into()).spawn(move || {
        let (watcher, exits) = match Watcher::<String>::new() {
            Ok(w) => w,
            Err(e) => {
                tracing::error!(error = %e, "node: cannot start the exit watcher; the manager stops");
                return;
            }
        };
        let mut m = Manager { cfg, entries: BTreeMap::new(), tx, sync, watcher, last_batch: Instant::now() };
        m.load_cache();
        m.run(&rx, &exits);
    })
}

struct Manager {
    cfg: ManagerConfig,
    entries: BTreeMap<String, Entry>,
    tx: Sender<Msg>,
    sync: Sender<SyncMsg>,
    watcher: Watcher<String>,
    last_batch: Instant,
}

impl Manager {
    fn node(&self) -> &str {
        &self.cfg.env.node_name
    }

    fn run(&mut self, rx: &Receiver<Msg>, exits: &Receiver<Exited<String>>) {
        let tick = self.cfg.settings.monitor_interval;
        let mut next_tick = Instant::now();
        loop {
            let now = Instant::now();
            if now >= next_tick {
                self.check_all(now);
                next_tick = now + tick;
            }
            let wait = next_tick.saturating_duration_since(Instant::now());
            select! {
                recv(rx) -> msg => match msg {
                    Ok(Msg::Stop) | Err(_) => break,
                    Ok(msg) => self.handle(msg),
                },
                recv(exits) -> ex => if let Ok(ex) = ex { self.on_exit(ex) },
                default(wait) => {}
            }
        }
        // Servers keep running; answer whoever still waits.
        for e in self.entries.values_mut() {
            for r in e.waiting.drain(..) {
                r((UNKNOWN_ERR, "node is stopping".into()));
            }
        }
    }

    fn handle(&mut self, msg: Msg) {
        match msg {
            Msg::Beat { app, server, pid, adapter, activing } => self.on_beat(&app, &server, pid, &adapter, activing),
            Msg::Version { app, server, version } => {
                if let Some(e) = self.entries.get_mut(&format!("{app}.{server}")) {
                    e.version = version.clone();
                }
                let _ = self.sync.send(SyncMsg::Version { app, server, version });
            }
            Msg::Cmd(cmd) => self.on_cmd(cmd),
            Msg::Done { id, op, done } => self.on_done(&id, op, *done),
            Msg::Servers(list) => self.on_servers(list),
            Msg::Fetched { id, result, then } => self.on_fetched(&id, result, then),
            Msg::Locator(l) => self.cfg.env.locator = l,
            Msg::FrameworkKey(k) => self.cfg.env.framework_key = k,
            Msg::Stop => {}
        }
    }

    // ----- descriptors -------------------------------------------------------------------

    fn load_cache(&mut self) {
        match crate::cache::load(&self.cfg.cache_path) {
            Ok(Some(list)) => {
                tracing::info!(servers = list.len(), path = %self.cfg.cache_path.display(), "node: servers from the descriptor cache");
                self.on_servers(list);
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "node: descriptor cache unusable; waiting for the registry"),
        }
    }

    fn store_cache(&self) {
        let list: Vec<ServerDescriptor> = self.entries.values().map(|e| e.desc.clone()).collect();
        if let Err(e) = crate::cache::store(&self.cfg.cache_path, &list) {
            tracing::warn!(error = %e, "node: descriptor cache not written");
        }
    }

    fn on_servers(&mut self, list: Vec<ServerDescriptor>) {
        for desc in list {
            self.upsert(desc);
        }
        self.store_cache();
    }

    fn upsert(&mut self, desc: ServerDescriptor) {
        let id = format!("{}.{}", desc.application, desc.server_name);
        if let Some(e) = self.entries.get_mut(&id) {
            e.enabled = desc.setting_state.eq_ignore_ascii_case("active");
            e.desc = desc;
            return;
        }
        let mut e = Entry::new(desc);
        self.adopt_running(&mut e);
        self.entries.insert(id, e);
    }

    /// Adopts a server still running from before this node started.
    fn adopt_running(&self, e: &mut Entry) {
        let Ok(paths) = ServerPaths::new(&e.desc, &self.cfg.env) else { return };
        let pid_file = format!("{}.pid", launch::start_script_path(&paths));
        let Some(pid) = fs::read_to_string(&pid_file).ok().and_then(|t| t.trim().parse::<u32>().ok()) else { return };
        if !supervise::is_alive(pid) || !cmdline_has(pid, &paths.conf_file) {
            return;
        }
        // The config it runs with, read back so `local` and the timeouts are known.
        if let Ok(text) = fs::read_to_string(&paths.conf_file) {
            let port = confgen::existing_local_port(&text).unwrap_or(0);
            if let Ok(g) = confgen::generate(&e.desc, &self.cfg.env, port) {
                e.gen = Some(g);
            }
        }
        match self.watcher.watch(pid, e.id.clone()) {
            Ok(w) => e.watch = Some(w),
            Err(err) => {
                tracing::warn!(server = %e.id, pid, error = %err, "node: cannot watch a running server");
                return;
            }
        }
        tracing::info!(server = %e.id, pid, "node: adopted a running server");
        e.pid = pid;
        e.started = Some(Started { pid, script_pid: pid, from_pid_file: true });
        e.state = State::Active;
        e.last_beat = Some(Instant::now());
        e.start_time = Some(Instant::now());
        self.sync_state(e);
    }

    fn on_fetched(&mut self, id: &str, result: Result<Option<Box<ServerDescriptor>>, String>, then: Then) {
        let err = match result {
            Ok(Some(desc)) => {
                self.upsert(*desc);
                self.store_cache();
                None
            }
            Ok(None) => Some("server is not exist in the registry".to_owned()),
            Err(e) => Some(e),
        };
        match then {
            Then::Start(reply) => {
                if let Some(why) = &err {
                    if !self.entries.contains_key(id) {
                        return reply((
                            LOAD_SERVICE_DESC_ERR,
                            format!("error::cannot load server description from registry.\n{why}"),
                        ));
                    }
                    // `enableCache`: the descriptor this node already has.
                    tracing::warn!(server = id, error = %why, "node: start with the cached descriptor");
                }
                self.start_cmd(id, reply);
            }
            Then::Load(reply) => {
                if let Some(why) = err {
                    return reply((LOAD_SERVICE_DESC_ERR, format!(" error::cannot load server description.\n{why}")));
                }
                self.load_cmd(id, reply);
            }
        }
    }

    // ----- commands ----------------------------------------------------------------------

    fn on_cmd(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Start { id, reply } => self.fetch(&id, Then::Start(reply)),
            Cmd::Load { id, reply } => self.fetch(&id, Then::Load(reply)),
            Cmd::Stop { id, reply } => {
                let Some(e) = self.entries.get_mut(&id) else {
                    return reply((LOAD_SERVICE_DESC_ERR, "server is  not exist".into()));
                };
                e.enabled = false;
                self.stop_cmd(&id, reply, AfterStop::Nothing);
            }
            Cmd::Restart { id, reply } => {
                let Some(e) = self.entries.get_mut(&id) else {
                    return reply((LOAD_SERVICE_DESC_ERR, "server is  not exist".into()));
                };
                e.enabled = true;
                e.activator.reset();
                self.stop_cmd(&id, reply, AfterStop::Restart);
            }
            Cmd::Notify { id, command, reply } => self.notify_cmd(&id, command, reply),
            Cmd::Destroy { id, reply } => self.destroy_cmd(&id, reply),
            Cmd::StateInfo { id, reply } => reply(self.state_answer(&id)),
            Cmd::StopAll { reply } => {
                let ids: Vec<String> = self.entries.keys().cloned().collect();
                for id in ids {
                    if let Some(e) = self.entries.get_mut(&id) {
                        e.enabled = false;
                    }
                    self.stop_cmd(&id, Box::new(|_| {}), AfterStop::Nothing);
                }
                reply((SUCCESS, "succ".into()));
            }
            Cmd::Shutdown { reply } => {
                reply((SUCCESS, String::new()));
                (self.cfg.hooks.shutdown)();
            }
            Cmd::Ping { reply } => reply(()),
        }
    }

    fn fetch(&mut self, id: &str, then: Then) {
        let Some((app, server)) = id.split_once('.') else {
            let reply = match then {
                Then::Start(r) | Then::Load(r) => r,
            };
            return reply((LOAD_SERVICE_DESC_ERR, "bad server id".into()));
        };
        let msg = SyncMsg::Fetch { id: id.to_owned(), app: app.to_owned(), server: server.to_owned(), then };
        if let Err(crossbeam_channel::SendError(SyncMsg::Fetch { id, then, .. })) = self.sync.send(msg) {
            self.on_fetched(&id, Err("the registry sync thread has stopped".into()), then);
        }
    }

    fn start_cmd(&mut self, id: &str, reply: Reply) {
        let Some(e) = self.entries.get_mut(id) else {
            return reply((LOAD_SERVICE_DESC_ERR, "error::cannot load server description from registry.\n".into()));
        };
        e.enabled = true;
        match e.state {
            State::Active | State::Activating => {
                let s = format!("server is already {}", e.state.name());
                return reply((SUCCESS, format!("server is activating, please check: {s}")));
            }
            State::Inactive if e.busy.is_none() => {}
            s => {
                return reply((
                    UNKNOWN_ERR,
                    format!("error:server state is not Inactive. the curent state is {}", s.name()),
                ))
            }
        }
        e.activator.reset();
        e.waiting.push(reply);
        self.begin_start(id);
    }

    fn stop_cmd(&mut self, id: &str, reply: Reply, after: AfterStop) {
        let Some(e) = self.entries.get_mut(id) else {
            return reply((LOAD_SERVICE_DESC_ERR, "server is  not exist".into()));
        };
        if e.state == State::Destroying || e.state == State::Destroyed {
            return reply((UNKNOWN_ERR, format!("error:server state is {}", e.state.name())));
        }
        if e.busy.is_some() {
            return reply((UNKNOWN_ERR, format!("error:server is busy ({})", e.busy.unwrap_or(""))));
        }
        if e.pid == 0 || e.state == State::Inactive {
            e.state = State::Inactive;
            let restart = matches!(after, AfterStop::Restart);
            if restart {
                e.waiting.push(reply);
                self.begin_start(id);
            } else {
                reply((SUCCESS, "succ:server is already Inactive".into()));
            }
            return;
        }
        e.waiting.push(reply);
        e.after_stop = after;
        self.begin_stop(id, "stop by command");
    }

    fn notify_cmd(&mut self, id: &str, command: String, reply: Reply) {
        let obj = if id == "tars.tarsnode" {
            self.cfg.node_local.as_ref().map(|l| format!("AdminObj@{l}"))
        } else {
            match self.entries.get(id) {
                None => return reply((UNKNOWN_ERR, "server is not exist".into())),
                Some(e) => e.local_obj(),
            }
        };
        let Some(obj) = obj else {
            return reply((UNKNOWN_ERR, "error:the server has no local endpoint".into()));
        };
        let client = self.cfg.client.clone();
        let spawned = std::thread::Builder::new().name("tars-node-op".into()).spawn(move || {
            let r = admin_call(&client, obj, move |p| async move { p.notify(&command).await });
            reply(match r {
                Ok(s) => (SUCCESS, format!("succ:{s}")),
                Err(e) => (UNKNOWN_ERR, format!("error:{e}")),
            });
        });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "node: cannot start an operation thread");
        }
    }

    fn load_cmd(&mut self, id: &str, reply: Reply) {
        let Some(e) = self.entries.get_mut(id) else {
            return reply((LOAD_SERVICE_DESC_ERR, " error::cannot load server description.\n".into()));
        };
        if e.busy.is_some() || (e.state.is_transitional() && e.state != State::Activating) {
            return reply((LOAD_SERVICE_DESC_ERR, format!(" error::server is {}", e.state.name())));
        }
        e.before = e.state;
        e.state = State::Loading;
        e.waiting.push(reply);
        let job = self.prepare_job(id);
        self.run_op(id, "load", move || Done::Loaded(job()));
    }

    fn destroy_cmd(&mut self, id: &str, reply: Reply) {
        let Some(e) = self.entries.get_mut(id) else {
            return reply((LOAD_SERVICE_DESC_ERR, "error:server is not exist".into()));
        };
        if e.state != State::Inactive || e.busy.is_some() {
            return reply((
                LOAD_SERVICE_DESC_ERR,
                format!("error:server state is not Inactive. the curent state is {}", e.state.name()),
            ));
        }
        e.waiting.push(reply);
        self.begin_destroy(id);
    }

    fn state_answer(&self, id: &str) -> crate::handle::StateAnswer {
        let mut result = format!("getStateInfo [{id}] ");
        let Some(e) = self.entries.get(id) else {
            result.push_str("server not exist");
            let info = ServerStateInfo { server_state: ServerState::Inactive, process_id: -1, ..Default::default() };
            return (UNKNOWN_ERR, info, result);
        };
        result.push_str("succ");
        let mut info = e.state_info(self.node());
        info.server_state = e.state.wire();
        info.setting_state = if e.enabled { ServerState::Active } else { ServerState::Inactive };
        let start = e.proc_start.and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map_or(0, |d| d.as_secs());
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        info.ex_state.insert("PROC_START_TIME".into(), start.to_string());
        info.ex_state.insert("RUN_SECONDS".into(), now.saturating_sub(start).to_string());
        info.ex_state.insert("STATE".into(), e.state.name().into());
        info.ex_state.insert("STARTS".into(), e.starts.to_string());
        if let Some(ms) = e.last_restart_ms {
            info.ex_state.insert("LAST_EXIT_TO_START_MS".into(), ms.to_string());
        }
        if e.activator.is_limited(Instant::now(), &self.cfg.settings.throttle_for(&e.app)) {
            info.ex_state.insert("LIMITED".into(), "1".into());
        }
        (SUCCESS, info, result)
    }

    // ----- operations --------------------------------------------------------------------

    /// A closure generating and writing `id`'s config (run on an operation thread).
    fn prepare_job(&self, id: &str) -> impl FnOnce() -> Result<Generated, String> + Send + 'static {
        let taken: HashSet<u16> = self
            .entries
            .values()
            .filter(|o| o.id != id)
            .filter_map(|o| o.gen.as_ref().and_then(|g| g.keys.local.as_ref()).map(|ep| ep.port))
            .collect();
        let desc = self.entries.get(id).map(|e| e.desc.clone()).unwrap_or_default();
        let env = self.cfg.env.clone();
        move || prepare(&desc, &env, &taken)
    }

    fn run_op(&mut self, id: &str, what: &'static str, job: impl FnOnce() -> Done + Send + 'static) {
        let Some(e) = self.entries.get_mut(id) else { return };
        e.op += 1;
        e.busy = Some(what);
        let (tx, op, id_owned) = (self.tx.clone(), e.op, id.to_owned());
        let spawned = std::thread::Builder::new().name("tars-node-op".into()).spawn(move || {
            let done = job();
            let _ = tx.send(Msg::Done { id: id_owned, op, done: Box::new(done) });
        });
        if let Err(err) = spawned {
            tracing::error!(server = id, error = %err, "node: cannot start an operation thread");
            e.busy = None;
        }
    }

    fn begin_start(&mut self, id: &str) {
        let now = Instant::now();
        let throttle = {
            let Some(e) = self.entries.get(id) else { return };
            self.cfg.settings.throttle_for(&e.app)
        };
        let prepare = self.prepare_job(id);
        let Some(e) = self.entries.get_mut(id) else { return };
        if e.activator.record(now, &throttle) {
            tracing::error!(server = id, "node: activating is limited: no automatic start for {:?}", throttle.punish);
        }
        e.starts += 1;
        e.state = State::Activating;
        e.start_time = Some(now);
        self.run_op(id, "start", move || {
            Done::Started(prepare().and_then(|g| {
                let probe = launch::probe(&g.paths);
                let plan =
                    launch::plan(&g.paths, &g.keys, &probe, |n| std::env::var(n).ok()).map_err(|e| e.to_string())?;
                let started = supervise::spawn(&plan, &SpawnOptions::default()).map_err(|e| e.to_string())?;
                Ok((started, g))
            }))
        });
    }

    fn begin_stop(&mut self, id: &str, why: &str) {
        let Some(e) = self.entries.get_mut(id) else { return };
        tracing::info!(server = id, pid = e.pid, why, "node: stopping");
        let started = e.started.unwrap_or(Started { pid: e.pid, script_pid: e.pid, from_pid_file: true });
        let grace = e.gen.as_ref().map_or(Duration::from_secs(2), |g| g.keys.deactivating_timeout);
        let local = e.local_obj();
        e.state = State::Deactivating;
        let client = self.cfg.client.clone();
        self.sync_state_of(id);
        self.run_op(id, "stop", move || {
            if let Some(obj) = local {
                if let Err(err) = admin_call(&client, obj, |p| async move { p.shutdown().await }) {
                    tracing::debug!(error = %err, "node: AdminObj.shutdown failed; signalling");
                }
            }
            Done::Stopped(supervise::stop_started(&started, grace).map_err(|e| e.to_string()))
        });
    }

    fn begin_destroy(&mut self, id: &str) {
        let Some(e) = self.entries.get_mut(id) else { return };
        e.state = State::Destroying;
        let mut dirs = Vec::new();
        if let Ok(p) = ServerPaths::new(&e.desc, &self.cfg.env) {
            dirs.push(p.server_dir);
            dirs.push(p.log_dir);
        }
        self.sync_state_of(id);
        self.run_op(id, "destroy", move || {
            let mut r = Ok(());
            for d in dirs {
                match fs::remove_dir_all(&d) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => r = Err(format!("{d}: {e}")),
                }
            }
            Done::Destroyed(r)
        });
    }

    fn on_done(&mut self, id: &str, op: u64, done: Done) {
        let now = Instant::now();
        let Some(e) = self.entries.get_mut(id) else { return };
        if e.op != op {
            return;
        }
        e.busy = None;
        match done {
            Done::Started(Ok((started, gen))) => {
                e.gen = Some(gen);
                e.started = Some(started);
                e.proc_start = Some(SystemTime::now());
                if let Some(at) = e.exit_at.take() {
                    e.last_restart_ms = Some(now.duration_since(at).as_millis());
                }
                if e.pid != started.pid {
                    if let Some(w) = e.watch.take() {
                        self.watcher.unwatch(w);
                    }
                    e.pid = started.pid;
                    match self.watcher.watch(started.pid, id.to_owned()) {
                        Ok(w) => e.watch = Some(w),
                        Err(err) => tracing::error!(server = id, error = %err, "node: cannot watch the started server"),
                    }
                }
                tracing::info!(server = id, pid = started.pid, "node: started");
                let s = format!("pid {}", started.pid);
                for r in e.waiting.drain(..) {
                    r((SUCCESS, format!("server is activating, please check: {s}")));
                }
                self.sync_state_of(id);
            }
            Done::Started(Err(why)) => {
                tracing::error!(server = id, error = %why, "node: start failed");
                e.state = State::Inactive;
                e.pid = 0;
                for r in e.waiting.drain(..) {
                    r((UNKNOWN_ERR, format!("error:{why}")));
                }
                (self.cfg.hooks.notify)(id, &format!("[alarm] start failed: {why}"));
                self.sync_state_of(id);
            }
            Done::Stopped(r) => {
                if let Some(w) = e.watch.take() {
                    self.watcher.unwatch(w);
                }
                e.pid = 0;
                e.started = None;
                e.state = State::Inactive;
                let (code, text) = match r {
                    Ok(o) => (SUCCESS, format!("succ:{o:?}")),
                    Err(why) => (UNKNOWN_ERR, format!("error:{why}")),
                };
                let after = std::mem::replace(&mut e.after_stop, AfterStop::Nothing);
                match after {
                    AfterStop::Restart => {
                        self.sync_state_of(id);
                        self.begin_start(id);
                    }
                    AfterStop::Nothing => {
                        for r in e.waiting.drain(..) {
                            r((code, text.clone()));
                        }
                        self.sync_state_of(id);
                    }
                }
            }
            Done::Loaded(r) => {
                e.state = e.before;
                let answer = match r {
                    Ok(g) => {
                        e.gen = Some(g);
                        (SUCCESS, " succ".to_owned())
                    }
                    Err(why) => (LOAD_SERVICE_DESC_ERR, format!(" error::cannot load server description.\n{why}")),
                };
                for r in e.waiting.drain(..) {
                    r(answer.clone());
                }
            }
            Done::Destroyed(r) => {
                let answer = match &r {
                    Ok(()) => (SUCCESS, "succ:".to_owned()),
                    Err(why) => (LOAD_SERVICE_DESC_ERR, format!("error:{why}")),
                };
                e.state = State::Destroyed;
                self.sync_state_of(id);
                if let Some(mut e) = self.entries.remove(id) {
                    for r in e.waiting.drain(..) {
                        r(answer.clone());
                    }
                }
                self.store_cache();
            }
        }
    }

    // ----- events ------------------------------------------------------------------------

    fn on_exit(&mut self, ex: Exited<String>) {
        let id = ex.tag;
        let Some(e) = self.entries.get_mut(&id) else { return };
        if e.watch != Some(ex.id) {
            return;
        }
        e.watch = None;
        e.pid = 0;
        e.started = None;
        if e.busy == Some("stop") {
            // The stop's own thread reports.
            return;
        }
        tracing::warn!(server = %id, pid = ex.pid, state = e.state.name(), "node: server exited");
        e.exit_at = Some(ex.at);
        if e.state.is_overlay() {
            e.before = State::Inactive;
        } else {
            e.state = State::Inactive;
        }
        self.sync_state_of(&id);
        self.maybe_auto_start(&id, Instant::now());
    }

    fn on_beat(&mut self, app: &str, server: &str, pid: i32, adapter: &str, activing: bool) {
        let id = format!("{app}.{server}");
        let now = Instant::now();
        let Some(e) = self.entries.get_mut(&id) else {
            tracing::debug!(server = %id, "node: heart-beat from a server this node does not manage");
            return;
        };
        let Ok(pid) = u32::try_from(pid) else { return };
        if pid == 0 {
            return;
        }
        e.last_beat = Some(now);
        if adapter.is_empty() {
            for t in e.adapter_beats.values_mut() {
                *t = now;
            }
        } else {
            e.adapter_beats.insert(adapter.to_owned(), now);
        }
        if e.pid != pid && (e.pid == 0 || !supervise::is_alive(e.pid)) && e.busy.is_none() {
            if let Some(w) = e.watch.take() {
                self.watcher.unwatch(w);
            }
            match self.watcher.watch(pid, id.clone()) {
                Ok(w) => {
                    e.watch = Some(w);
                    e.pid = pid;
                    e.started = Some(Started { pid, script_pid: pid, from_pid_file: true });
                }
                Err(err) => tracing::warn!(server = %id, pid, error = %err, "node: cannot watch a heart-beating pid"),
            }
        }
        let old = e.state;
        if activing {
            if e.state == State::Inactive && e.pid != 0 {
                e.state = State::Activating;
            }
        } else if !e.state.is_transitional() || e.state == State::Activating {
            e.state = State::Active;
            e.alarmed = false;
        }
        if e.state != old {
            self.sync_state_of(&id);
        }
    }

    // ----- checks ------------------------------------------------------------------------

    fn check_all(&mut self, now: Instant) {
        let unix = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        self.cfg.latest.store(u32::try_from(unix).unwrap_or(u32::MAX), Ordering::Relaxed);
        let ids: Vec<String> = self.entries.keys().cloned().collect();
        for id in &ids {
            self.check(id, now);
        }
        if now.duration_since(self.last_batch) >= self.cfg.settings.syn_stat_interval {
            self.last_batch = now;
            let batch: Vec<ServerStateInfo> = self.entries.values().map(|e| e.state_info(self.node())).collect();
            let _ = self.sync.send(SyncMsg::Batch(batch));
            self.store_cache();
        }
    }

    fn check(&mut self, id: &str, now: Instant) {
        let node_heart = self.cfg.settings.heart_timeout;
        let Some(e) = self.entries.get_mut(id) else { return };
        if e.pid != 0 {
            if let Some(kb) = supervise::rss_kb(e.pid) {
                (self.cfg.hooks.memsize)(id, kb);
            }
        }
        if e.busy.is_some() {
            return;
        }
        if e.state == State::Activating && e.pid != 0 {
            let limit = e.gen.as_ref().map_or(Duration::from_secs(60), |g| g.keys.activating_timeout);
            let since_start = e.start_time.map_or(Duration::MAX, |t| now.duration_since(t));
            let since_beat = e.last_beat.map_or(Duration::MAX, |t| now.duration_since(t));
            if since_start >= limit && since_beat >= limit {
                (self.cfg.hooks.notify)(id, "[alarm] activating timeout, the server is stopped");
                self.begin_stop(id, "activating timeout");
                return;
            }
        }
        if e.state == State::Active && e.pid != 0 {
            let limit = e.heart_timeout(node_heart);
            let stale = |t: &Instant| now.duration_since(*t) > limit;
            let late = e.last_beat.as_ref().is_none_or(stale) || e.adapter_beats.values().any(stale);
            if late {
                let busy_proc = matches!(supervise::proc_state(e.pid), Some('R' | 'D'));
                let over_core = e.last_beat.is_none_or(|t| now.duration_since(t) > limit + CORE_GRACE);
                if !busy_proc || over_core {
                    let msg = format!("[alarm] zombie process,no keep alive msg for {} ms", limit.as_millis());
                    tracing::warn!(server = id, pid = e.pid, "node: {msg}");
                    (self.cfg.hooks.notify)(id, &msg);
                    e.alarmed = true;
                    e.exit_at = Some(now);
                    self.begin_stop(id, "no heart-beat");
                    return;
                }
            }
        }
        self.maybe_auto_start(id, now);
    }

    /// Upstream's `isAutoStart` and the down alarm.
    fn maybe_auto_start(&mut self, id: &str, now: Instant) {
        let Some(e) = self.entries.get_mut(id) else { return };
        if e.state != State::Inactive || !e.enabled || e.busy.is_some() {
            return;
        }
        let throttle = self.cfg.settings.throttle_for(&e.app);
        if e.activator.is_limited(now, &throttle) {
            return;
        }
        if !e.alarmed {
            e.alarmed = true;
            (self.cfg.hooks.notify)(id, "[alarm] down, server is inactive");
        }
        self.begin_start(id);
    }

    // ----- registry ----------------------------------------------------------------------

    fn sync_state_of(&self, id: &str) {
        if let Some(e) = self.entries.get(id) {
            self.sync_state(e);
        }
    }

    fn sync_state(&self, e: &Entry) {
        let _ = self.sync.send(SyncMsg::State(e.state_info(self.node())));
    }
}

/// Generates `desc`'s config (keeping the `local` port of an existing file), creates its
/// directories and writes the file. Blocking: operation threads only.
fn prepare(desc: &ServerDescriptor, env: &NodeEnv, taken: &HashSet<u16>) -> Result<Generated, String> {
    let paths = ServerPaths::new(desc, env).map_err(|e| e.to_string())?;
    let old = fs::read_to_string(&paths.conf_file).ok();
    let port = old
        .as_deref()
        .and_then(confgen::existing_local_port)
        .filter(|p| !taken.contains(p))
        .or_else(|| {
            let seed = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos().into());
            confgen::pick_local_port(taken, confgen::port_is_free, seed)
        })
        .ok_or("no free local port")?;
    let g = confgen::generate(desc, env, port).map_err(|e| e.to_string())?;
    confgen::create_dirs(&g.paths).map_err(|e| format!("creating directories: {e}"))?;
    confgen::write_atomic(Path::new(&g.paths.conf_file), &g.text)
        .map_err(|e| format!("writing {}: {e}", g.paths.conf_file))?;
    Ok(g)
}

/// Whether `/proc/<pid>/cmdline` contains `needle` (the server's config file path).
fn cmdline_has(pid: u32, needle: &str) -> bool {
    fs::read(format!("/proc/{pid}/cmdline")).map(|c| String::from_utf8_lossy(&c).contains(needle)).unwrap_or(false)
}

/// Calls the `AdminObj` at `obj` on the node's client thread; blocks for up to
/// [`ADMIN_TIMEOUT`].
fn admin_call<T, F, Fut>(client: &BlockingClient, obj: String, f: F) -> Result<T, String>
where
    T: Send + 'static,
    F: FnOnce(AdminFProxy<tars_core_net::client::ObjectProxy>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<T, tars_proto::rpc::CallError>> + 'static,
{
    let timeout_ms = i32::try_from(ADMIN_TIMEOUT.as_millis()).unwrap_or(i32::MAX);
    client
        .try_run(move |comm| async move {
            let proxy = comm.proxy(&obj).map_err(|e| e.to_string())?;
            let opts = CallOptions { timeout_ms, ..Default::default() };
            f(AdminFProxy::new(proxy, "AdminObj").with_options(opts)).await.map_err(|e| e.to_string())
        })
        .unwrap_or_else(|| Err("the node's client thread has stopped".into()))
}
