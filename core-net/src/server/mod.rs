//! The TARS server: adapters from config, served by every shard.
//!
//! Each shard binds every adapter's endpoint with `SO_REUSEPORT`, accepts its own
//! connections and runs its own servant instances, so the request path takes no lock and
//! crosses no thread. Start one with [`ServerBuilder`]:
//!
//! ```text
//! let server = ServerBuilder::from_config_file("App.Server.config.conf")?
//!     .servant("App.Server.EchoObj", |_shard| EchoServant(MyEcho::default()))
//!     .start()?;
//! server.wait();
//! ```
//!
//! Every server also serves `AdminObj` on its `local` endpoint (see [`admin`]). An adapter with
//! `protocol=not_tars` serves a [`raw::RawServant`] instead, registered with
//! [`ServerBuilder::raw_servant`]: the service's own byte protocol on the same shards.

pub mod adapter;
pub mod admin;
pub mod allow;
pub mod args;
mod conn;
pub mod raw;

mod shard;

use std::collections::{BTreeMap, HashMap};
use std::net::{SocketAddr, ToSocketAddrs};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

pub use tars_proto::dispatch::{Dispatch, DispatchFuture};

use crate::app::stat::StatSink;
use crate::rt::{IoMode, ShardInfo, Shards, UnknownIoMode};
use adapter::{AdapterConfig, AdapterConfigError, ServerConfig, ADMIN_SERVANT};
use admin::{AdminFServant, AdminServant, LogLevelHook};
use raw::{RawFactory, RawServant};
use shard::Handler;
use tars_proto::config::Config;

/// Builds a servant instance on a shard.
pub type ServantFactory = Arc<dyn Fn(ShardInfo) -> Rc<dyn Dispatch> + Send + Sync>;

/// A server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The config file could not be read.
    #[error("cannot read config {path}: {source}")]
    ReadConfig {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The config text is malformed.
    #[error(transparent)]
    Config(#[from] tars_proto::config::ConfigError),
    /// An adapter or server key is wrong.
    #[error(transparent)]
    Adapter(#[from] AdapterConfigError),
    /// `io` names no driver.
    #[error(transparent)]
    Io(#[from] UnknownIoMode),
    /// An adapter's servant has no implementation registered.
    #[error("adapter {adapter} serves {servant}, but no servant of that name was registered")]
    MissingServant {
        /// The adapter.
        adapter: String,
        /// Its servant.
        servant: String,
    },
    /// A `protocol=not_tars` adapter's servant has no raw servant registered.
    #[error(
        "adapter {adapter} serves {servant} with protocol not_tars, but no raw servant of that name was registered"
    )]
    MissingRawServant {
        /// The adapter.
        adapter: String,
        /// Its servant.
        servant: String,
    },
    /// A raw servant is named by an adapter that speaks TARS.
    #[error("adapter {adapter} serves {servant} with protocol tars, but {servant} was registered as a raw servant (set protocol=not_tars)")]
    RawOnTarsAdapter {
        /// The adapter.
        adapter: String,
        /// Its servant.
        servant: String,
    },
    /// A raw adapter whose endpoint asks for the TARS `-e 1` handshake, which a raw protocol
    /// cannot carry.
    #[error("adapter {0} has protocol not_tars and `-e 1`: the handshake is TARS-only")]
    RawWithAuth(String),
    /// An endpoint's host does not resolve.
    #[error("adapter {adapter}: cannot resolve {host}:{port}: {reason}")]
    Resolve {
        /// The adapter.
        adapter: String,
        /// Host.
        host: String,
        /// Port.
        port: u16,
        /// Why.
        reason: String,
    },
    /// A shard failed to bind or start.
    #[error("shard failed to start: {0}")]
    Shard(String),
    /// The runtime failed.
    #[error(transparent)]
    Runtime(#[from] crate::rt::RtError),
}

/// Counters of one adapter across shards, read by admin commands.
#[derive(Debug, Default)]
pub(crate) struct AdapterStats {
    /// Touched on connect and close only.
    pub(crate) conns: AtomicUsize,
    /// Connections per peer address, kept only when `maxconnsperip` is set; touched on
    /// connect and close only.
    per_ip: Mutex<HashMap<std::net::IpAddr, usize>>,
    /// One request counter per shard, so the per-request increment never shares a cache
    /// line with another core; the admin view sums them.
    per_shard: Mutex<Vec<Arc<AtomicU64>>>,
}

impl AdapterStats {
    /// A new counter for one shard's requests.
    pub(crate) fn shard_counter(&self) -> Arc<AtomicU64> {
        let c = Arc::new(AtomicU64::new(0));
        if let Ok(mut v) = self.per_shard.lock() {
            v.push(c.clone());
        }
        c
    }

    /// Counts a connection from `ip` if it holds fewer than `max`.
    pub(crate) fn admit_ip(&self, ip: std::net::IpAddr, max: usize) -> bool {
        let Ok(mut m) = self.per_ip.lock() else { return true };
        let n = m.entry(ip).or_insert(0);
        if *n >= max {
            return false;
        }
        *n += 1;
        true
    }

    /// Forgets a connection [`AdapterStats::admit_ip`] counted.
    pub(crate) fn release_ip(&self, ip: std::net::IpAddr) {
        if let Ok(mut m) = self.per_ip.lock() {
            if let Some(n) = m.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    m.remove(&ip);
                }
            }
        }
    }

    /// Requests across shards.
    pub(crate) fn requests(&self) -> u64 {
        self.per_shard.lock().map(|v| v.iter().map(|c| c.load(Ordering::Relaxed)).sum()).unwrap_or(0)
    }
}

/// One open connection, as `tars.connection` lists it.
#[derive(Debug, Clone)]
pub(crate) struct ConnInfo {
    pub(crate) adapter: String,
    pub(crate) peer: SocketAddr,
    pub(crate) shard: usize,
    pub(crate) since: SystemTime,
}

/// What every shard of one server shares. Touched on connect/close and by admin commands,
/// never per request (the per-request counters are relaxed atomics).
pub(crate) struct ServerShared {
    pub(crate) config: ServerConfig,
    pub(crate) version: String,
    pub(crate) io: Mutex<Vec<(String, IoMode, usize)>>,
    pub(crate) started: SystemTime,
    pub(crate) stats: BTreeMap<String, Arc<AdapterStats>>,
    pub(crate) bound: Mutex<BTreeMap<String, SocketAddr>>,
    pub(crate) commands: Vec<(String, admin::Command)>,
    pub(crate) log_level: Mutex<String>,
    pub(crate) log_level_hook: Option<LogLevelHook>,
    servants: HashMap<String, ServantFactory>,
    raw: HashMap<String, RawFactory>,
    conns: Mutex<BTreeMap<u64, ConnInfo>>,
    next_conn: AtomicU64,
    stop_tx: async_channel::Sender<()>,
    pub(crate) stop_rx: async_channel::Receiver<()>,
    pub(crate) drain_timeout: Duration,
    pub(crate) max_frame: usize,
    /// Where each shard hands its server-side call statistics, when the application
    /// reports them.
    pub(crate) stat_sink: Option<StatSink>,
}

impl std::fmt::Debug for ServerShared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerShared").field("app", &self.config.app).field("server", &self.config.server).finish()
    }
}

impl ServerShared {
    fn make_handler(self: &Arc<Self>, adapter: &AdapterConfig, info: ShardInfo) -> Option<Handler> {
        let name = adapter.servant.as_str();
        if adapter.is_raw() {
            return self.raw.get(name).map(|f| Handler::Raw(f(info)));
        }
        if name == ADMIN_SERVANT && !self.servants.contains_key(name) {
            return Some(Handler::Tars(Rc::new(AdminFServant(AdminServant::new(self.clone())))));
        }
        self.servants.get(name).map(|f| Handler::Tars(f(info)))
    }

    fn next_conn_id(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    fn conn_opened(&self, id: u64, info: ConnInfo) {
        if let Ok(mut m) = self.conns.lock() {
            m.insert(id, info);
        }
    }

    fn conn_closed(&self, id: u64) {
        if let Ok(mut m) = self.conns.lock() {
            m.remove(&id);
        }
    }

    pub(crate) fn connections(&self) -> Vec<ConnInfo> {
        self.conns.lock().map(|m| m.values().cloned().collect()).unwrap_or_default()
    }

    /// Begins a graceful stop: shards stop accepting, finish in-flight calls, then exit.
    pub(crate) fn stop(&self) {
        self.stop_tx.close();
    }
}

/// Configures and starts a server.
pub struct ServerBuilder {
    config: ServerConfig,
    servants: HashMap<String, ServantFactory>,
    raw: HashMap<String, RawFactory>,
    commands: Vec<(String, admin::Command)>,
    version: String,
    io: Option<IoMode>,
    shards: Option<usize>,
    log_level_hook: Option<LogLevelHook>,
    max_frame: usize,
    stat_sink: Option<StatSink>,
    dispatch: Option<tracing::Dispatch>,
}

impl std::fmt::Debug for ServerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("app", &self.config.app)
            .field("server", &self.config.server)
            .field("servants", &self.servants.keys().collect::<Vec<_>>())
            .field("raw_servants", &self.raw.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl ServerBuilder {
    /// A server for `config`.
    pub fn new(config: ServerConfig) -> ServerBuilder {
        ServerBuilder {
            config,
            servants: HashMap::new(),
            raw: HashMap::new(),
            commands: Vec::new(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            io: None,
            shards: None,
            log_level_hook: None,
            max_frame: tars_proto::frame::DEFAULT_MAX_FRAME,
            stat_sink: None,
            dispatch: None,
        }
    }

    /// Counts every twoway call served (the application's call-statistics duty,
    /// `bFromClient` false): each shard keeps its own rows and hands them to `sink` every
    /// second.
    pub fn stats(mut self, sink: StatSink) -> Self {
        self.stat_sink = Some(sink);
        self
    }

    /// The `tracing` dispatcher the shard threads log through (the application's log),
    /// instead of the process's global one.
    pub fn tracing(mut self, dispatch: tracing::Dispatch) -> Self {
        self.dispatch = Some(dispatch);
        self
    }

    /// A server for the parsed TARS config `config`.
    pub fn from_config(config: &Config) -> Result<ServerBuilder, ServerError> {
        Ok(ServerBuilder::new(ServerConfig::from_config(config)?))
    }

    /// A server for the TARS config file at `path`, as `--config=FILE` gives it.
    pub fn from_config_file(path: impl AsRef<std::path::Path>) -> Result<ServerBuilder, ServerError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|source| ServerError::ReadConfig { path: path.display().to_string(), source })?;
        ServerBuilder::from_config(&Config::parse(&text)?)
    }

    /// The parsed server config.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// Registers the servant `name`; `make` builds one instance on each shard.
    pub fn servant<D: Dispatch>(
        mut self,
        name: impl Into<String>,
        make: impl Fn(ShardInfo) -> D + Send + Sync + 'static,
    ) -> Self {
        let f: ServantFactory = Arc::new(move |info| Rc::new(make(info)) as Rc<dyn Dispatch>);
        self.servants.insert(name.into(), f);
        self
    }

    /// Registers the raw servant `name`, served by an adapter with `protocol=not_tars`
    /// ([`raw`]); `make` builds one instance on each shard.
    pub fn raw_servant<R: RawServant>(
        mut self,
        name: impl Into<String>,
        make: impl Fn(ShardInfo) -> R + Send + Sync + 'static,
    ) -> Self {
        let f: RawFactory = Arc::new(move |info| Rc::new(make(info)) as Rc<dyn RawServant>);
        self.raw.insert(name.into(), f);
        self
    }

    /// Registers an admin command, answered through `AdminObj.notify("name params")`.
    pub fn admin_command(
        mut self,
        name: impl Into<String>,
        f: impl Fn(&str) -> String + Send + Sync + 'static,
    ) -> Self {
        self.commands.push((name.into(), admin::Command::Sync(Arc::new(f))));
        self
    }

    /// Registers an admin command whose answer must be awaited (e.g. a database query). `f`
    /// runs on the shard that received the call and returns the future of the answer.
    pub fn admin_command_async<Fut>(
        mut self,
        name: impl Into<String>,
        f: impl Fn(String) -> Fut + Send + Sync + 'static,
    ) -> Self
    where
        Fut: std::future::Future<Output = String> + 'static,
    {
        let f: admin::AsyncCommandFn = Arc::new(move |params| Box::pin(f(params)));
        self.commands.push((name.into(), admin::Command::Async(f)));
        self
    }

    /// Called by `tars.setloglevel` with the new level; lets the binary reconfigure its logger.
    pub fn on_set_log_level(mut self, f: impl Fn(&str) -> Result<(), String> + Send + Sync + 'static) -> Self {
        self.log_level_hook = Some(Arc::new(f));
        self
    }

    /// The version `tars.viewversion` reports.
    pub fn version(mut self, v: impl Into<String>) -> Self {
        self.version = v.into();
        self
    }

    /// Overrides `io` from the config for every adapter.
    pub fn io(mut self, io: IoMode) -> Self {
        self.io = Some(io);
        self
    }

    /// Overrides `shards` from the config for every adapter.
    pub fn shards(mut self, n: usize) -> Self {
        self.shards = Some(n);
        self
    }

    /// How many shards will serve `servant` (its adapter's `shards`, the override, or the
    /// machine's cores), so a service can size per-shard state before starting; `None` when
    /// no adapter serves it.
    pub fn shard_count(&self, servant: &str) -> Option<usize> {
        let a = self.config.adapters.iter().find(|a| a.servant == servant)?;
        Some(set_count(self.shards.unwrap_or_else(|| self.config.shards_for(a))))
    }

    /// The largest request frame accepted (default 10 MiB; at most 100 MiB).
    pub fn max_frame(mut self, bytes: usize) -> Self {
        self.max_frame = bytes;
        self
    }

    /// Binds every adapter on every shard and starts serving. Returns once all are bound.
    pub fn start(self) -> Result<ServerHandle, ServerError> {
        let ServerBuilder {
            config,
            servants,
            raw,
            commands,
            version,
            io,
            shards,
            log_level_hook,
            max_frame,
            stat_sink,
            dispatch,
        } = self;
        tars_proto::frame::FrameDecoder::with_max_frame(max_frame).map_err(|e| ServerError::Shard(e.to_string()))?;
        // Adapters that share a driver and shard count run on one set of shards.
        let mut groups: BTreeMap<(String, usize), Vec<(AdapterConfig, SocketAddr)>> = BTreeMap::new();
        let mut reservations = Vec::new();
        for a in config.all_adapters() {
            let named = || (a.name.clone(), a.servant.clone());
            if a.is_raw() {
                if !raw.contains_key(&a.servant) {
                    let (adapter, servant) = named();
                    return Err(ServerError::MissingRawServant { adapter, servant });
                }
                if a.requires_auth() {
                    return Err(ServerError::RawWithAuth(a.name.clone()));
                }
            } else if raw.contains_key(&a.servant) {
                let (adapter, servant) = named();
                return Err(ServerError::RawOnTarsAdapter { adapter, servant });
            } else if a.servant != ADMIN_SERVANT && !servants.contains_key(&a.servant) {
                let (adapter, servant) = named();
                return Err(ServerError::MissingServant { adapter, servant });
            }
            let mode = match io {
                Some(m) => m,
                None => config.io_for(a).parse()?,
            };
            let n = shards.unwrap_or_else(|| config.shards_for(a));
            let (addr, reservation) = resolve(a)?;
            reservations.extend(reservation);
            groups.entry((mode.as_str().to_owned(), n)).or_default().push((a.clone(), addr));
        }
        let (stop_tx, stop_rx) = async_channel::bounded(1);
        let stats = config.all_adapters().map(|a| (a.name.clone(), Arc::new(AdapterStats::default()))).collect();
        let drain_timeout = config.deactivating_timeout.max(Duration::from_secs(1));
        let log_level = config.log_level.clone().unwrap_or_else(|| "DEBUG".to_owned());
        let shared = Arc::new(ServerShared {
            config,
            version,
            io: Mutex::new(Vec::new()),
            started: SystemTime::now(),
            stats,
            bound: Mutex::new(BTreeMap::new()),
            commands,
            log_level: Mutex::new(log_level),
            log_level_hook,
            servants,
            raw,
            conns: Mutex::new(BTreeMap::new()),
            next_conn: AtomicU64::new(1),
            stop_tx,
            stop_rx,
            drain_timeout,
            max_frame,
            stat_sink,
        });
        let mut sets = Vec::new();
        for ((mode, n), adapters) in groups {
            let mode: IoMode = mode.parse()?;
            let (ready_tx, ready_rx) = std::sync::mpsc::channel();
            let ready_tx = Mutex::new(ready_tx);
            let name = format!("{}.{}", shared.config.app, shared.config.server);
            let group: Vec<_> = adapters
                .into_iter()
                .map(|(a, addr)| {
                    let stats = shared.stats.get(&a.name).cloned().unwrap_or_default();
                    (a, addr, stats)
                })
                .collect();
            let names: Vec<String> = group.iter().map(|(a, _, _)| a.name.clone()).collect();
            let shared2 = shared.clone();
            let dispatch = dispatch.clone();
            let dying = shared.clone();
            let set = Shards::start_with_death(
                &name,
                n,
                mode,
                move |info| {
                    let ready = ready_tx.lock().ok().map(|t| t.clone());
                    let shared = shared2.clone();
                    let group = group.clone();
                    let dispatch = dispatch.clone();
                    async move {
                        // Every task of this shard runs on this thread, so they all log there.
                        let _log = dispatch.as_ref().map(tracing::dispatcher::set_default);
                        if let Some(ready) = ready {
                            shard::run_shard(info, shared, group, ready).await;
                        }
                    }
                },
                move |_| {
                    // No half-alive server: the other shards stop too, and `wait` reports it.
                    tracing::error!("a shard died; stopping the server");
                    dying.stop();
                },
            )?;
            let count = set_count(n);
            for _ in 0..count {
                match ready_rx.recv() {
                    Ok(Ok(bound)) => {
                        if let Ok(mut b) = shared.bound.lock() {
                            b.extend(bound);
                        }
                    }
                    Ok(Err(e)) => {
                        shared.stop();
                        return Err(ServerError::Shard(e));
                    }
                    Err(_) => {
                        shared.stop();
                        return Err(ServerError::Shard("a shard exited while starting".into()));
                    }
                }
            }
            if let Ok(mut io) = shared.io.lock() {
                for a in names {
                    io.push((a, set.io(), count));
                }
            }
            sets.push(set);
        }
        drop(reservations);
        for (name, addr) in shared.bound.lock().map(|b| b.clone()).unwrap_or_default() {
            tracing::info!(adapter = %name, %addr, "listening");
        }
        Ok(ServerHandle { shared, sets })
    }
}

fn set_count(n: usize) -> usize {
    if n == 0 {
        crate::rt::default_shards()
    } else {
        n
    }
}

/// Resolves an adapter's endpoint. Port 0 is turned into a concrete free port held by a
/// bound, non-listening `SO_REUSEPORT` socket until every shard has bound it, so all shards
/// share one port.
fn resolve(a: &AdapterConfig) -> Result<(SocketAddr, Option<socket2::Socket>), ServerError> {
    let host = a.endpoint.host.as_str();
    let host = if host == "*" { "0.0.0.0" } else { host };
    let port = a.endpoint.port;
    let err = |reason: String| ServerError::Resolve { adapter: a.name.clone(), host: host.to_owned(), port, reason };
    let mut addr = (host, port)
        .to_socket_addrs()
        .map_err(|e| err(e.to_string()))?
        .next()
        .ok_or_else(|| err("no address".into()))?;
    if port != 0 {
        return Ok((addr, None));
    }
    let sock = socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::STREAM, None)
        .map_err(|e| err(e.to_string()))?;
    sock.set_reuse_port(true).map_err(|e| err(e.to_string()))?;
    sock.bind(&addr.into()).map_err(|e| err(e.to_string()))?;
    let local = sock.local_addr().ok().and_then(|a| a.as_socket()).ok_or_else(|| err("no local address".into()))?;
    addr.set_port(local.port());
    Ok((addr, Some(sock)))
}

/// A running server.
#[derive(Debug)]
pub struct ServerHandle {
    shared: Arc<ServerShared>,
    sets: Vec<Shards>,
}

impl ServerHandle {
    /// Where adapter `name` listens (the real port when the config said 0).
    pub fn addr(&self, adapter: &str) -> Option<SocketAddr> {
        self.shared.bound.lock().ok().and_then(|b| b.get(adapter).copied())
    }

    /// The version `tars.viewversion` shows.
    pub fn version(&self) -> &str {
        &self.shared.version
    }

    /// Every adapter's address.
    pub fn addrs(&self) -> BTreeMap<String, SocketAddr> {
        self.shared.bound.lock().map(|b| b.clone()).unwrap_or_default()
    }

    /// The driver each adapter runs on, after any uring fallback.
    pub fn io_of(&self, adapter: &str) -> Option<IoMode> {
        self.shared.io.lock().ok().and_then(|v| v.iter().find(|(a, _, _)| a == adapter).map(|(_, m, _)| *m))
    }

    /// Starts a graceful stop (as `AdminObj.shutdown` does); [`ServerHandle::wait`] returns
    /// when it is complete.
    pub fn shutdown(&self) {
        self.shared.stop();
    }

    /// A cloneable trigger for [`ServerHandle::shutdown`], e.g. for a signal handler.
    pub fn stopper(&self) -> Stopper {
        Stopper(self.shared.clone())
    }

    /// Stops the server gracefully on SIGTERM or SIGINT, as tarsnode stops servers it does
    /// not reach through `AdminObj`.
    pub fn stop_on_signals(&self) -> std::io::Result<()> {
        let mut signals =
            signal_hook::iterator::Signals::new([signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT])?;
        let stopper = self.stopper();
        std::thread::Builder::new().name("signals".into()).spawn(move || {
            if let Some(sig) = signals.forever().next() {
                tracing::info!(signal = sig, "stopping on signal");
                stopper.stop();
            }
        })?;
        Ok(())
    }

    /// Open connections across shards.
    pub fn connection_count(&self) -> usize {
        self.shared.stats.values().map(|s| s.conns.load(Ordering::Relaxed)).sum()
    }

    /// Waits until every shard has stopped.
    pub fn wait(self) -> Result<(), ServerError> {
        for s in self.sets {
            s.join()?;
        }
        Ok(())
    }
}

/// Stops a server from anywhere.
#[derive(Debug, Clone)]
pub struct Stopper(Arc<ServerShared>);

impl Stopper {
    /// Starts a graceful stop.
    pub fn stop(&self) {
        self.0.stop();
    }
}
