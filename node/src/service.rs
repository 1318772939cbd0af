//! tarsnode as a hosted [`Service`]: `ServerObj` and `NodeObj` on the adapters that name them,
//! the manager and sync threads from `start` on, stopped by `stop` without touching the
//! servers they manage (as upstream: a node restart never restarts its servers).
//!
//! Node identity (`NODE_ID`): [`NodeOptions::node_id`] (`--nodeid`), else
//! `/tars/application/server<localip>`, else the registry's `getClientIp`; the placeholder
//! `localip.tars.com` counts as unset. Keys: see [`crate::settings`].

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, AtomicUsize};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::Sender;
use tars_core_net::app::property::{Policy, Property};
use tars_core_net::app::{AppClient, BoxError, NotifyLevel, Service, ServiceContext};
use tars_core_net::client::BlockingClient;
use tars_core_net::rt::IoMode;
use tars_core_net::server::{ServerBuilder, ServerHandle};
use tars_proto::endpoint::Endpoint;
use tars_proto::rpc::CallOptions;
use tars_protocol::tars::{NodeServant, RegistryProxy, ServerFServant};

use crate::adminlink;
use crate::confgen::{NodeEnv, NODE_SERVER_OBJ};
use crate::handle::{self, NodeHandle};
use crate::manager::{self, Hooks, ManagerConfig, Msg};
use crate::node_obj::NodeObj;
use crate::servant::ServerObj;
use crate::settings::{NodeSettings, PLACEHOLDER_IP};
use crate::sync::{self, SyncConfig, SyncMsg};

/// The servant AdminReg calls.
pub const NODE_OBJ: &str = "tars.tarsnode.NodeObj";

/// A notice hook: `(server id, message)`.
pub type NoticeHook = Arc<dyn Fn(&str, &str) + Send + Sync>;

/// How the node is started beyond its config file.
#[derive(Clone, Default)]
pub struct NodeOptions {
    /// `--nodeid=IP`.
    pub node_id: Option<String>,
    /// The config file (for the node-template merge; without it the merge is skipped).
    pub config_file: Option<PathBuf>,
    /// Also called for every alarm notice (tests, embedding hosts).
    pub notice_hook: Option<NoticeHook>,
    /// `App.Server` ids that the hosting process serves itself (`tars up` runs the framework
    /// services in-process): the node neither starts nor watches them.
    pub hosted: Vec<String>,
}

impl std::fmt::Debug for NodeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeOptions").field("node_id", &self.node_id).field("config_file", &self.config_file).finish()
    }
}

/// Why the node could not configure or start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// No node name: no `--nodeid`, no `localip`, and the registry did not answer `getClientIp`.
    #[error("no node id: give --nodeid or localip, or make the registry reachable ({0})")]
    NoNodeId(String),
    /// The config lacks an adapter for a node servant.
    #[error("no adapter serves {0}")]
    NoAdapter(&'static str),
    /// A thread could not start.
    #[error("starting thread {what}: {source}")]
    Thread {
        /// Which.
        what: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// The client thread.
    #[error("node client: {0}")]
    Client(String),
}

struct Prepared {
    settings: NodeSettings,
    node_name: String,
    client: Arc<BlockingClient>,
    app: AppClient,
    rx: crossbeam_channel::Receiver<Msg>,
    config_text: String,
    server_adapter: (String, Endpoint),
    node_adapter: Option<(String, Endpoint)>,
    node_local: Option<String>,
    version: String,
}

/// tarsnode.
pub struct NodeService {
    opts: NodeOptions,
    tx: Option<Sender<Msg>>,
    latest: Arc<AtomicU32>,
    handle: Option<NodeHandle>,
    prepared: Option<Prepared>,
    sync_tx: Option<Sender<SyncMsg>>,
    link_stop: Option<Sender<()>>,
    threads: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for NodeService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeService").field("opts", &self.opts).field("running", &!self.threads.is_empty()).finish()
    }
}

impl NodeService {
    /// A node with `opts`.
    pub fn new(opts: NodeOptions) -> NodeService {
        NodeService {
            opts,
            tx: None,
            latest: Arc::new(AtomicU32::new(0)),
            handle: None,
            prepared: None,
            sync_tx: None,
            link_stop: None,
            threads: Vec::new(),
        }
    }

    /// The control handle, once configured.
    pub fn handle(&self) -> Option<NodeHandle> {
        self.handle.clone()
    }
}

fn node_id(opts: &NodeOptions, settings: &NodeSettings, client: &BlockingClient) -> Result<String, NodeError> {
    if let Some(id) = opts.node_id.as_deref().map(str::trim).filter(|i| !i.is_empty() && *i != PLACEHOLDER_IP) {
        return Ok(id.to_owned());
    }
    if let Some(ip) = &settings.local_ip {
        return Ok(ip.clone());
    }
    let obj = settings.registry_obj.clone();
    let r = client.try_run(move |comm| async move {
        let proxy = comm.proxy(&obj).map_err(|e| e.to_string())?;
        let servant = obj.split('@').next().unwrap_or(&obj).to_owned();
        let reg =
            RegistryProxy::new(proxy, servant).with_options(CallOptions { timeout_ms: 3000, ..Default::default() });
        let mut ip = String::new();
        reg.get_client_ip(&mut ip).await.map_err(|e| e.to_string())?;
        Ok::<_, String>(ip)
    });
    match r {
        Some(Ok(ip)) if !ip.is_empty() => Ok(ip),
        Some(Ok(_)) => Err(NodeError::NoNodeId("empty getClientIp answer".into())),
        Some(Err(e)) => Err(NodeError::NoNodeId(e)),
        None => Err(NodeError::NoNodeId("client thread stopped".into())),
    }
}

/// The address servers reach an adapter at: its bound port, its host unless a wildcard.
fn reachable(endpoint: &Endpoint, server: &ServerHandle, adapter: &str) -> Endpoint {
    let mut ep = endpoint.clone();
    if let Some(addr) = server.addr(adapter) {
        ep.port = addr.port();
    }
    if ep.host.is_empty() || ep.host == "0.0.0.0" || ep.host == "*" || ep.host == PLACEHOLDER_IP {
        ep.host = "127.0.0.1".into();
    }
    ep
}

impl Service for NodeService {
    fn name(&self) -> &'static str {
        "node"
    }

    fn configure(&mut self, ctx: &ServiceContext<'_>, builder: ServerBuilder) -> Result<ServerBuilder, BoxError> {
        let settings = NodeSettings::from_config(ctx.config);
        let client = Arc::new(ctx.app.blocking(IoMode::EpollEt).map_err(|e| NodeError::Client(e.to_string()))?);
        let node_name = node_id(&self.opts, &settings, &client)?;
        let server_adapter = ctx
            .server
            .adapter_for_servant(NODE_SERVER_OBJ)
            .map(|a| (a.name.clone(), a.endpoint.clone()))
            .ok_or(NodeError::NoAdapter(NODE_SERVER_OBJ))?;
        let node_adapter = ctx.server.adapter_for_servant(NODE_OBJ).map(|a| (a.name.clone(), a.endpoint.clone()));
        let (tx, rx) = crossbeam_channel::unbounded();
        let handle = NodeHandle {
            tx: tx.clone(),
            log_dir: handle::log_dir(&settings.log_path),
            io_jobs: Arc::new(AtomicUsize::new(0)),
            node_name: node_name.clone().into(),
        };
        let config_text = match &self.opts.config_file {
            Some(p) => std::fs::read_to_string(p).unwrap_or_default(),
            None => ctx.config.to_text().unwrap_or_default(),
        };
        self.prepared = Some(Prepared {
            settings,
            node_name,
            client,
            app: ctx.app.clone(),
            rx,
            config_text,
            server_adapter,
            node_adapter: node_adapter.clone(),
            node_local: ctx.server.admin.as_ref().map(|a| a.endpoint.to_string()),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        });
        self.tx = Some(tx.clone());
        self.handle = Some(handle.clone());
        let latest = self.latest.clone();
        let mut builder = builder
            .servant(NODE_SERVER_OBJ, move |_| ServerFServant(ServerObj { tx: tx.clone(), latest: latest.clone() }));
        if node_adapter.is_some() {
            builder = builder.servant(NODE_OBJ, move |_| NodeServant(NodeObj { handle: handle.clone() }));
        }
        Ok(builder)
    }

    fn start(&mut self, server: &ServerHandle) -> Result<(), BoxError> {
        let (Some(p), Some(tx)) = (self.prepared.take(), self.tx.clone()) else {
            return Err("node started before it was configured".into());
        };
        let (env, node_obj) = server_cfg(&p, server);
        let (sync_tx, sync_rx) = crossbeam_channel::unbounded();
        let stopper = server.stopper();
        let app = p.app.clone();
        let hook = self.opts.notice_hook.clone();
        let props: Arc<Mutex<HashMap<String, Property>>> = Arc::default();
        let hooks = Hooks {
            notify: Arc::new(move |id: &str, msg: &str| {
                app.notify(NotifyLevel::Error, format!("{id}: {msg}"));
                if let Some(h) = &hook {
                    h(id, msg);
                }
            }),
            memsize: {
                let app = p.app.clone();
                Arc::new(move |id: &str, kb: u64| {
                    let mut props = props.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    let prop = props
                        .entry(id.to_owned())
                        .or_insert_with(|| app.property(&format!("{id}.memsize"), &[Policy::Max]));
                    #[allow(clippy::cast_precision_loss)]
                    prop.report(kb as f64);
                })
            },
            shutdown: Arc::new(move || stopper.stop()),
        };
        let cache_path = PathBuf::from(&p.settings.data_path).join(&p.settings.cache_file);
        let sync_cfg = SyncConfig {
            node_name: p.node_name.clone(),
            registry_obj: p.settings.registry_obj.clone(),
            node_obj,
            data_dir: p.settings.data_path.clone(),
            version: p.version.clone(),
            report_alive: p.settings.report_alive_interval,
            config_interval: p.settings.config_interval,
            config_file: self.opts.config_file.clone(),
            config_text: p.config_text.clone(),
            locator: p.settings.locator.clone(),
            client: p.client.clone(),
            call_timeout: Duration::from_secs(3),
            hosted: self.opts.hosted.clone(),
        };
        let link = adminlink::LinkConfig {
            admin_obj: p.settings.admin_obj.clone(),
            locator: p.settings.locator.clone(),
            interval: p.settings.report_node_interval,
            handle: self.handle.clone().ok_or("node started before it was configured")?,
            client: p.app.blocking(IoMode::EpollEt).map_err(|e| NodeError::Client(e.to_string()))?,
        };
        let mcfg = ManagerConfig {
            env,
            settings: p.settings,
            cache_path,
            node_local: p.node_local,
            client: p.client,
            hooks,
            latest: self.latest.clone(),
        };
        let m = manager::spawn(mcfg, p.rx, tx.clone(), sync_tx.clone())
            .map_err(|source| NodeError::Thread { what: "tars-node-manager", source })?;
        self.threads.push(m);
        let s = sync::spawn(sync_cfg, sync_rx, tx)
            .map_err(|source| NodeError::Thread { what: "tars-node-sync", source })?;
        self.threads.push(s);
        self.sync_tx = Some(sync_tx);
        let (link_stop, link_rx) = crossbeam_channel::bounded(1);
        let l = adminlink::spawn(link, link_rx)
            .map_err(|source| NodeError::Thread { what: "tars-node-adminlink", source })?;
        self.threads.push(l);
        self.link_stop = Some(link_stop);
        Ok(())
    }

    fn banner(&self) -> Vec<(String, String)> {
        match &self.handle {
            Some(h) => vec![("node".to_owned(), h.node_name().to_owned())],
            None => Vec::new(),
        }
    }

    fn stop(&mut self) {
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(Msg::Stop);
        }
        if let Some(tx) = self.sync_tx.take() {
            let _ = tx.send(SyncMsg::Stop);
        }
        self.link_stop = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for NodeService {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The node environment for config generation and the `NodeObj` string for `registerNode`.
fn server_cfg(p: &Prepared, server: &ServerHandle) -> (NodeEnv, String) {
    let (name, ep) = &p.server_adapter;
    let server_ep = reachable(ep, server, name);
    let node_obj = p
        .node_adapter
        .as_ref()
        .map(|(name, ep)| format!("{NODE_OBJ}@{}", reachable(ep, server, name)))
        .unwrap_or_default();
    let env = NodeEnv {
        node_name: p.node_name.clone(),
        server_adapter: server_ep,
        data_path: p.settings.data_path.clone(),
        log_path: p.settings.log_path.clone(),
        locator: p.settings.locator.clone(),
        framework_key: String::new(),
    };
    (env, node_obj)
}
