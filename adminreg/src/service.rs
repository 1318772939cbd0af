//! tarsAdminRegistry as a hosted [`Service`]: `AdminRegObj` on the adapter that names it, the
//! `tars.adminreg` admin command, and the reap thread from `start` on.
//!
//! The reap thread (`tars-adminreg-reap`, upstream `AdminReapThread`) publishes this
//! instance's AdminRegObj endpoint in `t_registry_info` every `updateHeartInterval` (so the
//! registry serves it and nodes find it), drops closed node connections, and every
//! `registryTimeout` marks silent registries and AdminRegs inactive. It uses the registry's
//! own statements ([`tars_registry::jobs`]). At start and every `registryTimeout` it also ends
//! the tasks no instance runs any more ([`crate::db::fail_abandoned_tasks`]).
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `/tars/db` | — | `db_tars` (as tarsconfig) |
//! | `/tars/reap<updateHeartInterval>` | 10 s | heartbeat period (at least 1 s) |
//! | `/tars/reap<registryTimeout>` | 150 s | silent instances → inactive (at least 5 s) |
//! | `/tars/reap<heartbeatoff>` | N | Y: do not publish this instance |
//! | `/tars/nodeinfo<command_timeout>` | 60000 ms | start/stop/restart/destroy/load/shutdown (ours) |
//! | `/tars/nodeinfo<sync_node_timeout>` | 5000 ms | queries (upstream's key) |
//! | `/tars/application/server<elegant_wait_second>` | 75 s | elegant tasks: wait after a batch leaves the routes (2–180, else 75) |

use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tars_core_net::app::{AppClient, BoxError, Service, ServiceContext};
use tars_core_net::server::{ServerBuilder, ServerHandle};
use tars_proto::config::Config;
use tars_proto::endpoint::Endpoint;
use tars_protocol::tars::AdminRegServant;
use tars_registry::jobs::OwnObject;
use tars_sql::schema::db_tars;
use tars_sql::{Store, StoreUrl};

use crate::links::Links;
use crate::node::{NodeCaller, NodeShared, Timeouts};
use crate::servant::AdminRegImp;
use crate::tasks::Tasks;

/// The servant's name.
pub const ADMIN_REG_OBJ: &str = "tars.tarsAdminRegistry.AdminRegObj";
/// Admin command: connected nodes, commands in flight, running tasks.
pub const STATUS_COMMAND: &str = "tars.adminreg";

pub use tars_proto::config::SettingError;

/// The service's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdminSettings {
    /// Node answer timeouts.
    pub timeouts: Timeouts,
    /// `updateHeartInterval`.
    pub heartbeat: Duration,
    /// `registryTimeout`.
    pub registry_timeout: Duration,
    /// `heartbeatoff=Y`.
    pub heartbeat_off: bool,
}

impl Default for AdminSettings {
    fn default() -> Self {
        AdminSettings {
            timeouts: Timeouts::default(),
            heartbeat: Duration::from_secs(10),
            registry_timeout: Duration::from_secs(150),
            heartbeat_off: false,
        }
    }
}

impl AdminSettings {
    /// Reads the keys in the module's table.
    pub fn from_config(config: &Config) -> Result<AdminSettings, SettingError> {
        let mut s = AdminSettings::default();
        if let Some(v) = config.number("/tars/reap<updateHeartInterval>", "a number of seconds")? {
            s.heartbeat = Duration::from_secs(v.max(1));
        }
        if let Some(v) = config.number("/tars/reap<registryTimeout>", "a number of seconds")? {
            s.registry_timeout = Duration::from_secs(v.max(5));
        }
        s.heartbeat_off = config.get("/tars/reap<heartbeatoff>").is_some_and(|v| v.trim().eq_ignore_ascii_case("Y"));
        if let Some(v) = config.number("/tars/nodeinfo<command_timeout>", "a number of milliseconds")? {
            s.timeouts.command = Duration::from_millis(v.max(10));
        }
        if let Some(v) = config.number("/tars/nodeinfo<sync_node_timeout>", "a number of milliseconds")? {
            s.timeouts.query = Duration::from_millis(v.max(10));
        }
        if let Some(v) = config.number("/tars/application/server<elegant_wait_second>", "a number of seconds")? {
            // As upstream: outside 2–180 s, the default.
            s.timeouts.elegant_wait =
                if (2..=180).contains(&v) { Duration::from_secs(v) } else { crate::node::ELEGANT_WAIT_DEFAULT };
        }
        Ok(s)
    }
}

/// The reap thread; dropping it stops the thread.
#[derive(Debug)]
struct Reaper {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Reaper {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The longest one task item can take here: a restart's stop and start, an elegant wait,
/// and a minute more. Past that many seconds per item, an unfinished task is abandoned.
fn item_limit(t: &Timeouts) -> u64 {
    (t.command * 2 + t.elegant_wait).as_secs() + 60
}

fn end_abandoned(shared: &NodeShared, tasks: &Tasks) {
    let (limit, running) = (item_limit(&shared.timeouts), tasks.numbers());
    match shared.store.run_blocking(move |s| crate::db::fail_abandoned_tasks(s, limit, &running)) {
        Ok(a) if a.tasks > 0 => tracing::warn!(tasks = a.tasks, items = a.items, "adminreg: ended abandoned tasks"),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "adminreg: abandoned task check failed"),
    }
}

fn spawn_reaper(
    shared: Arc<NodeShared>,
    tasks: Arc<Tasks>,
    settings: AdminSettings,
    locator_id: String,
    own: Vec<OwnObject>,
) -> std::io::Result<Reaper> {
    let beat = move |shared: &NodeShared| {
        shared.links.prune();
        if settings.heartbeat_off {
            return;
        }
        if let Err(e) = tars_registry::jobs::heartbeat(&shared.store, &locator_id, &own) {
            tracing::warn!(error = %e, "adminreg: cannot publish this instance in t_registry_info");
        }
    };
    beat(&shared);
    end_abandoned(&shared, &tasks);
    let (tx, rx) = mpsc::channel::<()>();
    let thread = std::thread::Builder::new().name("tars-adminreg-reap".into()).spawn(move || {
        let mut next_beat = Instant::now() + settings.heartbeat;
        let mut next_expire = Instant::now() + settings.registry_timeout;
        loop {
            let next = next_beat.min(next_expire);
            match rx.recv_timeout(next.saturating_duration_since(Instant::now())) {
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                _ => break,
            }
            let now = Instant::now();
            if now >= next_beat {
                next_beat = now + settings.heartbeat;
                beat(&shared);
            }
            if now >= next_expire {
                next_expire = now + settings.registry_timeout;
                if let Err(e) = tars_registry::jobs::expire_registries(&shared.store, settings.registry_timeout) {
                    tracing::warn!(error = %e, "adminreg: registry timeout check failed");
                }
                end_abandoned(&shared, &tasks);
            }
        }
    })?;
    Ok(Reaper { stop: Some(tx), thread: Some(thread) })
}

/// tarsAdminRegistry: `AdminRegObj` over `db_tars`.
#[derive(Debug, Default)]
pub struct AdminRegService {
    store: Option<Store>,
    shared: Option<Arc<NodeShared>>,
    tasks: Option<Arc<Tasks>>,
    settings: AdminSettings,
    adapter: Option<(String, Endpoint)>,
    local_ip: Option<String>,
    reaper: Option<Reaper>,
    published: Option<String>,
}

impl AdminRegService {
    /// AdminReg on the config's `<db>` database, or on `store` when given (already open and
    /// migrated; `tars up` shares it).
    pub fn new(store: Option<Store>) -> AdminRegService {
        AdminRegService { store, ..AdminRegService::default() }
    }

    /// What the shards share (connections, store), once configured.
    pub fn shared(&self) -> Option<&Arc<NodeShared>> {
        self.shared.as_ref()
    }

    /// The running tasks, once configured.
    pub fn tasks(&self) -> Option<&Arc<Tasks>> {
        self.tasks.as_ref()
    }
}

fn open_store(config: &Config) -> Result<Store, BoxError> {
    let url = StoreUrl::from_config(config, "/tars/db")?
        .ok_or("no <db> section under <tars> (dbhost, dbport, dbuser, dbpass, dbname, or url)")?;
    let store = Store::open_url(url, Default::default())?;
    if let Err(e) = store.migrate(db_tars::schema()) {
        if !e.is_unavailable() {
            return Err(e.into());
        }
        tracing::warn!(error = %e, "adminreg: database unavailable at start; schema not checked");
    }
    Ok(store)
}

fn is_wildcard(host: &str) -> bool {
    host.is_empty() || host == "0.0.0.0" || host == "::" || host == "*" || host == "localip.tars.com"
}

impl Service for AdminRegService {
    fn name(&self) -> &'static str {
        "adminreg"
    }

    fn configure(&mut self, ctx: &ServiceContext<'_>, builder: ServerBuilder) -> Result<ServerBuilder, BoxError> {
        self.settings = AdminSettings::from_config(ctx.config)?;
        let store = match self.store.take() {
            Some(s) => s,
            None => open_store(ctx.config)?,
        };
        let adapter = ctx.server.adapter_for_servant(ADMIN_REG_OBJ).map(|a| (a.name.clone(), a.endpoint.clone()));
        self.local_ip = ctx.server.local_ip.clone().filter(|h| !is_wildcard(h));
        let local_name = self
            .local_ip
            .clone()
            .or_else(|| adapter.as_ref().map(|(_, e)| e.host.clone()).filter(|h| !is_wildcard(h)))
            .unwrap_or_else(|| "127.0.0.1".into());
        self.adapter = adapter;
        let shared =
            Arc::new(NodeShared { store, links: Links::default(), timeouts: self.settings.timeouts, local_name });
        let tasks = Arc::new(Tasks::default());
        self.shared = Some(shared.clone());
        self.tasks = Some(tasks.clone());
        let app: AppClient = ctx.app.clone();
        let (s1, t1) = (shared.clone(), tasks.clone());
        Ok(builder
            .servant(ADMIN_REG_OBJ, move |_| {
                AdminRegServant(AdminRegImp::new(NodeCaller::new(shared.clone(), app.communicator()), tasks.clone()))
            })
            .admin_command(STATUS_COMMAND, move |_| {
                let nodes = s1.links.connected_nodes();
                format!(
                    "connected nodes: {} [{}]\ncommands in flight: {}\ntasks running: {}\n",
                    nodes.len(),
                    nodes.join(", "),
                    s1.links.in_flight(),
                    t1.len()
                )
            }))
    }

    fn start(&mut self, server: &ServerHandle) -> Result<(), BoxError> {
        let Some(shared) = self.shared.clone() else { return Err("adminreg started before it was configured".into()) };
        let Some((name, endpoint)) = self.adapter.clone() else {
            tracing::warn!("adminreg: no adapter serves {ADMIN_REG_OBJ}; not published in t_registry_info");
            return Ok(());
        };
        let mut ep = endpoint;
        if let Some(addr) = server.addr(&name) {
            ep.port = addr.port();
            if is_wildcard(&ep.host) {
                ep.host = self.local_ip.clone().unwrap_or_else(|| addr.ip().to_string());
            }
        }
        let locator_id = format!("{}:{}", ep.host, ep.port);
        let own = vec![OwnObject { servant: ADMIN_REG_OBJ.to_owned(), endpoint: ep.to_string() }];
        self.published = Some(ep.to_string());
        let tasks = self.tasks.clone().unwrap_or_default();
        self.reaper = Some(spawn_reaper(shared, tasks, self.settings, locator_id, own)?);
        Ok(())
    }

    fn banner(&self) -> Vec<(String, String)> {
        let mut v = Vec::new();
        if let Some(s) = &self.shared {
            v.push(("db_tars".to_owned(), s.store.url().to_string()));
        }
        if let Some(p) = &self.published {
            v.push((ADMIN_REG_OBJ.to_owned(), p.clone()));
        }
        v
    }

    fn stop(&mut self) {
        self.reaper = None;
    }
}
