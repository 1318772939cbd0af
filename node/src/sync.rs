//! Registry sync: every call the node makes to `tars.tarsregistry.RegistryObj`, on one thread
//! of its own (`tars-node-sync`), through the node's [`BlockingClient`] (upstream's
//! `KeepAliveThread` and `ServerObject::synState`).
//!
//! - `registerNode(node, NodeInfo{nodeName, nodeObj, dataDir, version}, LoadInfo)` until it
//!   succeeds; then `keepAlive(node, LoadInfo)` every `reportAliveInterval`, registering again
//!   when the answer is non-zero (the registry does not know the node).
//! - `getServers("", "", node)` until it succeeds, then every `configInterval` (new servers
//!   are added; upstream loads once and relies on AdminReg's pushes).
//! - `updateServer` for each state change the manager sends, coalesced per server (only the
//!   latest state of a burst is sent), and `updateServerBatch` when the manager sends one.
//! - `getServers(app, server, node)` for a start or load command.
//! - every `configInterval`: `getNodeTemplate` merged over the node's own config file (written
//!   atomically, only when it changed; it takes effect at the next start, as upstream), and the
//!   locator from `findObjectById4All` of the registry's QueryObj, and the framework key
//!   (`getFrameworkKey`) for `${priKey}`.
//!
//! Each call has the client's timeout; a registry that is down costs this thread a failed call
//! and never the manager.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use tars_core_net::client::BlockingClient;
use tars_proto::config::Config;
use tars_proto::rpc::CallOptions;
use tars_protocol::tars::{FrameworkKey, NodeInfo, QueryFProxy, RegistryProxy, ServerDescriptor, ServerStateInfo};

use crate::manager::{Msg, Then};

/// How often registration and the first server load are retried.
const RETRY: Duration = Duration::from_secs(1);

/// A message for the sync thread.
pub(crate) enum SyncMsg {
    State(ServerStateInfo),
    Batch(Vec<ServerStateInfo>),
    Version { app: String, server: String, version: String },
    Fetch { id: String, app: String, server: String, then: Then },
    Stop,
}

/// What the sync thread needs.
pub(crate) struct SyncConfig {
    pub node_name: String,
    pub registry_obj: String,
    pub node_obj: String,
    pub data_dir: String,
    pub version: String,
    pub report_alive: Duration,
    pub config_interval: Duration,
    /// The node's own config file and its text as loaded, for the template merge.
    pub config_file: Option<PathBuf>,
    pub config_text: String,
    pub locator: String,
    pub client: Arc<BlockingClient>,
    pub call_timeout: Duration,
    /// `App.Server` ids served by the process hosting this node (`tars up`): never managed.
    pub hosted: Vec<String>,
}

impl SyncConfig {
    fn is_hosted(&self, d: &ServerDescriptor) -> bool {
        self.hosted.iter().any(|h| h.split_once('.') == Some((d.application.as_str(), d.server_name.as_str())))
    }
}

/// Starts the sync thread.
pub(crate) fn spawn(cfg: SyncConfig, rx: Receiver<SyncMsg>, manager: Sender<Msg>) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name("tars-node-sync".into()).spawn(move || Sync::new(cfg, manager).run(&rx))
}

struct Sync {
    cfg: SyncConfig,
    manager: Sender<Msg>,
    registered: bool,
    loaded: bool,
    next_alive: Instant,
    next_config: Instant,
    pending: BTreeMap<(String, String), ServerStateInfo>,
    /// The last framework key sent to the manager.
    framework_key: String,
}

impl Sync {
    fn new(cfg: SyncConfig, manager: Sender<Msg>) -> Sync {
        let now = Instant::now();
        Sync {
            cfg,
            manager,
            registered: false,
            loaded: false,
            next_alive: now,
            next_config: now,
            pending: BTreeMap::new(),
            framework_key: String::new(),
        }
    }

    fn run(mut self, rx: &Receiver<SyncMsg>) {
        loop {
            self.periodic();
            let due = if self.registered && self.loaded {
                self.next_alive.min(self.next_config)
            } else {
                Instant::now() + RETRY
            };
            let wait = due.saturating_duration_since(Instant::now());
            match rx.recv_timeout(wait) {
                Ok(SyncMsg::Stop) | Err(RecvTimeoutError::Disconnected) => break,
                Ok(msg) => {
                    if !self.take(msg) {
                        break;
                    }
                    // Take the whole burst, so only the latest state per server goes out.
                    while let Ok(msg) = rx.try_recv() {
                        if !self.take(msg) {
                            return;
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
            self.flush_states();
        }
    }

    /// Handles one message; `false` on Stop.
    fn take(&mut self, msg: SyncMsg) -> bool {
        match msg {
            SyncMsg::State(st) => {
                self.pending.insert((st.application.clone(), st.server_name.clone()), st);
            }
            SyncMsg::Batch(batch) => {
                let r = self.call(move |reg| async move { reg.update_server_batch(&batch).await });
                if let Err(e) = r {
                    tracing::debug!(error = %e, "node: updateServerBatch failed");
                }
            }
            SyncMsg::Version { app, server, version } => {
                let node = self.cfg.node_name.clone();
                let r = self.call(move |reg| async move { reg.report_version(&app, &server, &node, &version).await });
                if let Err(e) = r {
                    tracing::debug!(error = %e, "node: reportVersion failed");
                }
            }
            SyncMsg::Fetch { id, app, server, then } => {
                let node = self.cfg.node_name.clone();
                let result = self
                    .call(move |reg| async move { reg.get_servers(&app, &server, &node).await })
                    .map(|v| v.into_iter().find(|d| !self.cfg.is_hosted(d)).map(Box::new));
                let _ = self.manager.send(Msg::Fetched { id, result, then });
            }
            SyncMsg::Stop => return false,
        }
        true
    }

    fn flush_states(&mut self) {
        let node = self.cfg.node_name.clone();
        for (_, st) in std::mem::take(&mut self.pending) {
            let node = node.clone();
            let r = self
                .call(move |reg| async move { reg.update_server(&node, &st.application, &st.server_name, &st).await });
            if let Err(e) = r {
                tracing::debug!(error = %e, "node: updateServer failed");
            }
        }
    }

    fn periodic(&mut self) {
        let now = Instant::now();
        if !self.registered {
            self.register();
        } else if now >= self.next_alive {
            self.next_alive = now + self.cfg.report_alive;
            let node = self.cfg.node_name.clone();
            let load = crate::load::load_info();
            match self.call(move |reg| async move { reg.keep_alive(&node, &load).await }) {
                Ok(0) => {}
                Ok(code) => {
                    tracing::warn!(code, "node: the registry does not know this node; registering again");
                    self.register();
                }
                Err(e) => tracing::debug!(error = %e, "node: keepAlive failed"),
            }
        }
        if !self.loaded || now >= self.next_config {
            // First: the configs of the servers loaded next use it.
            self.refresh_framework_key();
            self.load_servers();
        }
        if now >= self.next_config && self.loaded {
            self.next_config = now + self.cfg.config_interval;
            self.refresh_config();
        }
    }

    fn register(&mut self) {
        let node = self.cfg.node_name.clone();
        let ni = NodeInfo {
            node_name: node.clone(),
            node_obj: self.cfg.node_obj.clone(),
            data_dir: self.cfg.data_dir.clone(),
            version: self.cfg.version.clone(),
            ..Default::default()
        };
        let load = crate::load::load_info();
        match self.call(move |reg| async move { reg.register_node(&node, &ni, &load).await }) {
            Ok(0) => {
                tracing::info!(node = %self.cfg.node_name, "node: registered with the registry");
                self.registered = true;
                self.next_alive = Instant::now() + self.cfg.report_alive;
            }
            Ok(code) => tracing::warn!(code, "node: registerNode refused"),
            Err(e) => tracing::debug!(error = %e, "node: registerNode failed"),
        }
    }

    fn load_servers(&mut self) {
        let node = self.cfg.node_name.clone();
        match self.call(move |reg| async move { reg.get_servers("", "", &node).await }) {
            Ok(mut list) => {
                list.retain(|d| !self.cfg.is_hosted(d));
                if !self.loaded {
                    tracing::info!(servers = list.len(), "node: servers loaded from the registry");
                }
                self.loaded = true;
                let _ = self.manager.send(Msg::Servers(list));
            }
            Err(e) => tracing::debug!(error = %e, "node: getServers failed"),
        }
    }

    /// `NodeServer::onUpdateConfig`: the node template over the local config, and the locator.
    fn refresh_config(&mut self) {
        let node = self.cfg.node_name.clone();
        let template = self.call(move |reg| async move {
            let mut t = String::new();
            reg.get_node_template(&node, &mut t).await.map(|_| t)
        });
        match template {
            Ok(t) if !t.trim().is_empty() => self.merge_template(&t),
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "node: getNodeTemplate failed"),
        }
        self.refresh_locator();
    }

    /// `getFrameworkKey` (upstream reloads it every 10 s with the docker registries): the
    /// `${priKey}` of the configs generated from then on. A failed call keeps the last key.
    fn refresh_framework_key(&mut self) {
        let key = self.call(move |reg| async move {
            let mut k = FrameworkKey::default();
            reg.get_framework_key(&mut k).await.map(|ret| (ret, k))
        });
        match key {
            Ok((0, k)) if k.pri_key != self.framework_key => {
                self.framework_key.clone_from(&k.pri_key);
                let _ = self.manager.send(Msg::FrameworkKey(k.pri_key));
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "node: getFrameworkKey failed"),
        }
    }

    fn merge_template(&mut self, template: &str) {
        let Some(path) = self.cfg.config_file.clone() else { return };
        let Ok(mut local) = Config::parse(&self.cfg.config_text) else { return };
        let get = |k: &str, d: &str| local.get(&format!("/tars/application/server<{k}>")).unwrap_or(d).to_owned();
        let mut text = template.to_owned();
        for (name, value) in [
            ("enableset", get("enableset", "n")),
            ("setdivision", get("setdivision", "")),
            ("locator", self.cfg.locator.clone()),
            ("app", get("app", "tars")),
            ("server", get("server", "tarsnode")),
            ("basepath", get("basepath", "")),
            ("datapath", get("datapath", "tars")),
            ("logpath", get("logpath", "tars")),
            ("localip", self.cfg.node_name.clone()),
            ("local", get("local", "")),
            ("nodename", get("nodename", "")),
        ] {
            text = text.replace(&format!("${{{name}}}"), &value);
        }
        let Ok(tpl) = Config::parse(&text) else {
            tracing::warn!("node: the node template does not parse; config not updated");
            return;
        };
        if local.join(&tpl, true).is_err() {
            return;
        }
        let Ok(merged) = local.to_text() else { return };
        match crate::confgen::write_atomic(&path, &merged) {
            Ok(crate::confgen::Written::Written { .. }) => {
                tracing::info!(file = %path.display(), "node: config updated from the node template (used at the next start)");
            }
            Ok(crate::confgen::Written::Unchanged) => {}
            Err(e) => tracing::warn!(file = %path.display(), error = %e, "node: config not written"),
        }
    }

    fn refresh_locator(&mut self) {
        let Some((obj, _)) = self.cfg.locator.split_once('@') else { return };
        let (obj, locator) = (obj.to_owned(), self.cfg.locator.clone());
        let timeout_ms = self.timeout_ms();
        let r = self.cfg.client.try_run(move |comm| async move {
            let proxy = comm.proxy(&locator).map_err(|e| e.to_string())?;
            let q = QueryFProxy::new(proxy, obj.clone()).with_options(CallOptions { timeout_ms, ..Default::default() });
            let (mut active, mut inactive) = (Vec::new(), Vec::new());
            q.find_object_by_id4_all(&obj, &mut active, &mut inactive).await.map_err(|e| e.to_string())?;
            Ok::<_, String>((obj, active))
        });
        if let Some(Ok((obj, active))) = r {
            if active.is_empty() {
                return;
            }
            let eps: Vec<String> = active
                .iter()
                .map(|e| format!("{} -h {} -p {}", if e.istcp == 0 { "udp" } else { "tcp" }, e.host, e.port))
                .collect();
            let locator = format!("{obj}@{}", eps.join(":"));
            if locator != self.cfg.locator {
                self.cfg.locator = locator.clone();
                let _ = self.manager.send(Msg::Locator(locator));
            }
        }
    }

    fn timeout_ms(&self) -> i32 {
        i32::try_from(self.cfg.call_timeout.as_millis()).unwrap_or(i32::MAX)
    }

    /// Runs one registry call on the client thread and waits for it.
    fn call<T, F, Fut>(&self, f: F) -> Result<T, String>
    where
        T: Send + 'static,
        F: FnOnce(RegistryProxy<tars_core_net::client::ObjectProxy>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<T, tars_proto::rpc::CallError>> + 'static,
    {
        let obj = self.cfg.registry_obj.clone();
        let timeout_ms = self.timeout_ms();
        self.cfg
            .client
            .try_run(move |comm| async move {
                let proxy = comm.proxy(&obj).map_err(|e| e.to_string())?;
                let servant = obj.split('@').next().unwrap_or(&obj).to_owned();
                let reg =
                    RegistryProxy::new(proxy, servant).with_options(CallOptions { timeout_ms, ..Default::default() });
                f(reg).await.map_err(|e| e.to_string())
            })
            .unwrap_or_else(|| Err("the node's client thread has stopped".into()))
    }
}
