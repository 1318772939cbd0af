//! The framework duties a TarsCpp server performs by itself, each switched on by its key
//! in `<tars><application>` (absent key: nothing is sent, as upstream):
//!
//! | duty | key | calls | when |
//! |---|---|---|---|
//! | node | `server/node` | `ServerF.keepActiving` | at start, then every 5 s until the server serves |
//! | | | `ServerF.reportVersion`, `ServerF.keepAlive` (adapter "") | once, when the server serves |
//! | | | `ServerF.keepAlive` per adapter, `AdminAdapter` included | every 10 s |
//! | stat | `client/stat` | `StatF.reportMicMsg`, client and server rows apart | every `report-interval`, and the rest at stop |
//! | property | `client/property` | `PropertyF.reportPropMsg` | every `report-interval`, and at stop |
//! | remote log | `server/log` | `LogF.loggerbyInfo`, ≤ 200 lines a call, in order | every 100 ms while lines wait |
//! | config | `server/config` | `ConfigF.loadConfig` (`loadConfigByInfo` in a set) | [`Application::add_config`](super::Application::add_config) files at start; `tars.loadconfig FILE` |
//! | notify | `server/notify` | `NotifyF.reportNotifyInfo` | "restart" at start, "stop" at stop, config results, [`AppClient::notify`] |
//!
//! All of them run as tasks of one thread of their own (`tars-client`, a
//! [`BlockingClient`] without call statistics, so reporting is never itself reported).
//! Shards only ever hand data over without waiting: call statistics through a bounded
//! channel (`StatSink`), properties through atomics, log lines through a bounded buffer,
//! notices through a bounded channel; each drops and counts when full. A framework service
//! that is down or slow therefore costs the duty thread a timed-out call and never delays a
//! request. Every call is oneway except `loggerbyInfo` (its reply paces the batches) and
//! `loadConfig` (it returns the file); both have a 5 s deadline.

use std::fmt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_lite::future;
use tars_proto::rpc::CallOptions;
use tars_protocol::tars::{
    ConfigInfo, ConfigProxy, LogInfo, LogProxy, NotifyProxy, PropertyFProxy, ReportInfo, ReportType, ServerFProxy,
    ServerInfo, StatFProxy, NOTIFYLEVEL,
};

use super::log::RemoteLines;
use super::property::{Policy, Properties, Property};
use super::stat::{Collected, Module, StatRows, StatSink};
use crate::client::config::ClientConfig;
use crate::client::{BlockingClient, ClientError, Communicator, ObjectProxy};
use crate::rt::{self, IoMode};
use crate::server::adapter::ServerConfig;

/// How often the node hears `keepActiving` while the server starts.
pub const ACTIVATING_EVERY: Duration = Duration::from_secs(5);
/// How often the node hears `keepAlive` for each adapter.
pub const KEEP_ALIVE_EVERY: Duration = Duration::from_secs(10);
/// The shortest `report-interval` honoured (TarsCpp's floor).
pub const MIN_REPORT_INTERVAL: Duration = Duration::from_secs(10);
/// How often waiting log lines are sent.
pub const LOG_EVERY: Duration = Duration::from_millis(100);
/// The deadline of each duty call that waits for its reply.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a stop waits for the duties to send what is left.
pub const STOP_WAIT: Duration = Duration::from_secs(3);
/// `<file>.N.bak` copies kept of a config file replaced by a newer one.
pub const CONFIG_BACKUPS: usize = 5;
/// Properties per `reportPropMsg` call.
const PROPS_PER_CALL: usize = 50;
/// Notices that may wait for the notify duty.
const NOTICE_QUEUE: usize = 256;
/// Call-statistics hand-offs that may wait for the stat duty.
const STAT_QUEUE: usize = 4096;

/// A notice's level (`NOTIFYLEVEL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyLevel {
    /// `NOTIFYNORMAL`.
    Normal,
    /// `NOTIFYWARN`.
    Warn,
    /// `NOTIFYERROR`.
    Error,
}

impl NotifyLevel {
    fn wire(self) -> NOTIFYLEVEL {
        match self {
            NotifyLevel::Normal => NOTIFYLEVEL::NOTIFYNORMAL,
            NotifyLevel::Warn => NOTIFYLEVEL::NOTIFYWARN,
            NotifyLevel::Error => NOTIFYLEVEL::NOTIFYERROR,
        }
    }
}

/// A config file could not be fetched or stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigFetchError {
    /// The name is empty or not a plain file name (`/`, `\`, `..`, control characters).
    #[error("`{0}` is not a plain file name")]
    BadName(String),
    /// The config has no `config` object.
    #[error("no config object is configured (`config` in <server>)")]
    NotConfigured,
    /// The config service failed or answered an error.
    #[error("{0}")]
    Remote(String),
    /// The file could not be written under `basepath`.
    #[error("cannot write {path}: {why}")]
    Write {
        /// The file.
        path: String,
        /// Why.
        why: String,
    },
}

/// One notice for the notify duty.
#[derive(Debug)]
struct Notice {
    report_type: ReportType,
    level: NOTIFYLEVEL,
    message: String,
    thread: String,
}

/// What the duties need of the application's identity.
#[derive(Debug, Clone)]
struct Identity {
    app: String,
    server: String,
    /// `name.area.group` when the set is on.
    set: Option<String>,
    node_name: String,
    local_ip: String,
    base_path: PathBuf,
}

/// The application's side of its duties, shared with every thread: call statistics,
/// properties, notices, config fetches. Cheap to clone, `Send + Sync`.
///
/// Services get it from [`ServiceContext::app`](super::ServiceContext); binaries from
/// [`Running::client`](super::Running::client).
#[derive(Clone)]
pub struct AppClient {
    inner: Arc<ClientShared>,
}

struct ClientShared {
    config: ClientConfig,
    server: ServerConfig,
    ident: Identity,
    module: Module,
    stat: Option<StatSink>,
    properties: Properties,
    notices: async_channel::Sender<Notice>,
    notices_dropped: AtomicU64,
    /// The duty thread, for config fetches.
    duty: Arc<BlockingClient>,
}

impl fmt::Debug for AppClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppClient").field("module", &self.inner.module.name).finish()
    }
}

impl AppClient {
    /// A communicator for the calling thread (a shard, or any thread running the runtime),
    /// from the application's `<client>` config; its calls count in the call statistics when
    /// `stat` is set. Make one per shard and keep it.
    pub fn communicator(&self) -> Rc<Communicator> {
        match &self.inner.stat {
            Some(sink) => Communicator::with_stats(self.inner.config.clone(), sink.clone()),
            None => Communicator::new(self.inner.config.clone()),
        }
    }

    /// A client thread of its own for callers outside any shard, counted like
    /// [`AppClient::communicator`].
    pub fn blocking(&self, io: IoMode) -> Result<BlockingClient, ClientError> {
        BlockingClient::start_with(self.inner.config.clone(), self.inner.stat.clone(), io)
    }

    /// The `<client>` config.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// Who this application is in its reports (`modulename`, set, version).
    pub fn module(&self) -> &Module {
        &self.inner.module
    }

    /// The property `name`, created with `policies` on first use; report values to it from
    /// any thread. Sent every `report-interval` when `property` is set.
    pub fn property(&self, name: &str, policies: &[Policy]) -> Property {
        self.inner.properties.create(name, policies)
    }

    /// Sends a notice (`NotifyF.reportNotifyInfo`, type NOTIFY) when `notify` is set. Never
    /// waits: when the queue is full the notice is dropped and counted.
    pub fn notify(&self, level: NotifyLevel, message: impl Into<String>) {
        self.push_notice(ReportType::NOTIFY, level.wire(), message.into());
    }

    /// A report notice (type REPORT, level normal), as TarsCpp's `RemoteNotify::report`.
    pub fn report(&self, message: impl Into<String>) {
        self.push_notice(ReportType::REPORT, NOTIFYLEVEL::NOTIFYNORMAL, message.into());
    }

    fn push_notice(&self, report_type: ReportType, level: NOTIFYLEVEL, message: String) {
        if self.inner.server.notify.is_none() {
            return;
        }
        let thread = format!("{:?}", std::thread::current().id());
        let n = Notice { report_type, level, message, thread };
        if self.inner.notices.try_send(n).is_err() {
            self.inner.notices_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Notices dropped because the notify duty was behind.
    pub fn notices_dropped(&self) -> u64 {
        self.inner.notices_dropped.load(Ordering::Relaxed)
    }

    /// Call-statistics rows dropped because the stat duty was behind.
    pub fn stat_rows_dropped(&self) -> u64 {
        self.inner.stat.as_ref().map_or(0, StatSink::dropped)
    }

    /// Where the server's shards hand their rows (when `stat` is set).
    pub(crate) fn stat_sink(&self) -> Option<&StatSink> {
        self.inner.stat.as_ref()
    }

    /// Fetches `file` through `ConfigF` into `basepath` (TarsCpp's `addConfig`): two
    /// attempts; the previous copy, when different, is kept as `<file>.1.bak` (older ones
    /// shifted up to `.5.bak`). Returns the path written.
    pub async fn fetch_config(&self, file: &str) -> Result<PathBuf, ConfigFetchError> {
        check_file_name(file)?;
        let Some(object) = self.inner.server.config.clone() else { return Err(ConfigFetchError::NotConfigured) };
        let (tx, rx) = async_channel::bounded(1);
        let ident = self.inner.ident.clone();
        let file_owned = file.to_owned();
        let spawned = self.inner.duty.spawn(move |comm| async move {
            let r = fetch_into(&comm, &object, &ident, &file_owned).await;
            let _ = tx.send(r).await;
        });
        if !spawned {
            return Err(ConfigFetchError::Remote("the duty thread has stopped".into()));
        }
        rx.recv().await.unwrap_or_else(|_| Err(ConfigFetchError::Remote("the duty thread has stopped".into())))
    }

    /// [`AppClient::fetch_config`] for a plain thread (blocks).
    pub fn fetch_config_blocking(&self, file: &str) -> Result<PathBuf, ConfigFetchError> {
        future::block_on(self.fetch_config(file))
    }

    /// `tars.loadconfig FILE`: fetches and answers as TarsCpp does, telling notify too.
    pub(crate) async fn load_config_command(&self, params: String) -> String {
        let file = params.trim();
        let result = match self.fetch_config(file).await {
            Ok(_) => format!("[succ] get remote config: {file}"),
            Err(e) => format!("[fail] get remote config: {file}: {e}"),
        };
        self.report(result.clone());
        result
    }
}

/// Refuses names that would leave `basepath`.
fn check_file_name(file: &str) -> Result<(), ConfigFetchError> {
    let bad = file.is_empty()
        || file == "."
        || file == ".."
        || file.contains(['/', '\\'])
        || file.chars().any(char::is_control)
        || file.len() > 255;
    if bad {
        Err(ConfigFetchError::BadName(file.to_owned()))
    } else {
        Ok(())
    }
}

async fn fetch_into(
    comm: &Rc<Communicator>,
    object: &str,
    ident: &Identity,
    file: &str,
) -> Result<PathBuf, ConfigFetchError> {
    let proxy = comm.proxy(object).map_err(|e| ConfigFetchError::Remote(e.to_string()))?;
    let proxy = proxy.with_timeout(CALL_TIMEOUT);
    // TarsCpp puts the node name in the context of every call its application makes; the
    // config service takes the node's files for that name (else for the peer's IP).
    let mut options = CallOptions::default();
    if !ident.node_name.is_empty() {
        options.context.insert("node_name".into(), ident.node_name.clone());
    }
    let config = ConfigProxy::new(proxy.clone(), proxy.servant_name()).with_options(options);
    let mut last = String::new();
    for _ in 0..2 {
        let mut content = String::new();
        let answer = match &ident.set {
            None => config.load_config(&ident.app, &ident.server, file, &mut content).await,
            Some(set) => {
                let info = ConfigInfo {
                    appname: ident.app.clone(),
                    servername: ident.server.clone(),
                    filename: file.to_owned(),
                    b_app_only: false,
                    host: ident.local_ip.clone(),
                    setdivision: set.clone(),
                };
                config.load_config_by_info(&info, &mut content).await
            }
        };
        match answer {
            Ok(0) => {
                let path = ident.base_path.join(file);
                let dir = ident.base_path.clone();
                // The write happens on this, the duty thread: never on a shard.
                return store(&dir, file, &content)
                    .map(|()| path.clone())
                    .map_err(|e| ConfigFetchError::Write { path: path.display().to_string(), why: e.to_string() });
            }
            Ok(ret) => last = format!("config service answered {ret} for {file}"),
            Err(e) => last = format!("{object}: {e}"),
        }
    }
    Err(ConfigFetchError::Remote(last))
}

/// Writes `content` to `dir/file` atomically, keeping a different previous copy as
/// `file.1.bak` and shifting older copies up to `file.{CONFIG_BACKUPS}.bak`.
fn store(dir: &Path, file: &str, content: &str) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(file);
    match std::fs::read(&path) {
        Ok(old) if old == content.as_bytes() => return Ok(()),
        Ok(_) => {
            let bak = |n: usize| dir.join(format!("{file}.{n}.bak"));
            for n in (1..CONFIG_BACKUPS).rev() {
                if bak(n).exists() {
                    std::fs::rename(bak(n), bak(n + 1))?;
                }
            }
            std::fs::copy(&path, bak(1))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let tmp = dir.join(format!(".{file}.tmp"));
    std::fs::write(&tmp, content)?;
    std::fs::rename(&tmp, &path)
}

/// The duties' thread and the tasks on it. Lives on the thread that starts the
/// application; its tasks on the duty thread.
pub(crate) struct Duties {
    client: AppClient,
    stop: async_channel::Sender<()>,
    /// Each long-lived duty task sends one message when it has finished.
    done: std::sync::mpsc::Receiver<&'static str>,
    tasks: usize,
    started: async_channel::Sender<StartedInfo>,
    /// Held until the duties start (`Duties::start` takes them).
    pending: Option<Pending>,
}

/// What the server tells the node once it serves.
#[derive(Debug, Clone)]
pub(crate) struct StartedInfo {
    pub(crate) version: String,
    pub(crate) adapters: Vec<String>,
}

struct Pending {
    stat_rx: Option<async_channel::Receiver<StatRows>>,
    notices: async_channel::Receiver<Notice>,
    started: async_channel::Receiver<StartedInfo>,
}

impl fmt::Debug for Duties {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Duties").field("tasks", &self.tasks).finish()
    }
}

impl Duties {
    /// The duty thread for `server` / `client`, with nothing running yet.
    pub(crate) fn new(server: &ServerConfig, client: ClientConfig, io: IoMode) -> Result<Duties, ClientError> {
        let set = client.set_division.as_ref().filter(|_| client.enable_set);
        let module = Module {
            name: client.module_name.clone().unwrap_or_else(|| format!("{}.{}", server.app, server.server)),
            set: set.map(|d| (d.name.clone(), d.area.clone(), d.group.clone())),
            tars_version: env!("CARGO_PKG_VERSION").to_owned(),
        };
        let ident = Identity {
            app: server.app.clone(),
            server: server.server.clone(),
            set: set.map(ToString::to_string),
            node_name: server.node_name.clone().or_else(|| server.local_ip.clone()).unwrap_or_default(),
            local_ip: server.local_ip.clone().unwrap_or_default(),
            base_path: PathBuf::from(server.base_path.as_deref().unwrap_or(".")),
        };
        let (stat, stat_rx) = match client.stat {
            Some(_) => {
                let (sink, rx) = StatSink::new(module.clone(), STAT_QUEUE);
                (Some(sink), Some(rx))
            }
            None => (None, None),
        };
        let (notices_tx, notices) = async_channel::bounded(NOTICE_QUEUE);
        let (started_tx, started) = async_channel::bounded(1);
        let duty = Arc::new(BlockingClient::start(ClientConfig { stat: None, ..client.clone() }, io)?);
        let (stop, _) = async_channel::bounded(1);
        let (_, done) = std::sync::mpsc::channel();
        let inner = ClientShared {
            config: client,
            server: server.clone(),
            ident,
            module,
            stat,
            properties: Properties::default(),
            notices: notices_tx,
            notices_dropped: AtomicU64::new(0),
            duty,
        };
        Ok(Duties {
            client: AppClient { inner: Arc::new(inner) },
            stop,
            done,
            tasks: 0,
            started: started_tx,
            pending: Some(Pending { stat_rx, notices, started }),
        })
    }

    pub(crate) fn client(&self) -> &AppClient {
        &self.client
    }

    /// Starts every configured duty; `remote` carries the log lines for `LogF`.
    pub(crate) fn start(&mut self, remote: Option<RemoteLines>) {
        let Some(p) = self.pending.take() else { return };
        let (stop_tx, stop_rx) = async_channel::bounded::<()>(1);
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        self.stop = stop_tx;
        self.done = done_rx;
        let app = self.client.clone();
        let inner = &app.inner;
        let mut run = |name: &'static str, job: Box<dyn FnOnce(Rc<Communicator>) -> DutyFuture + Send>| {
            let done = done_tx.clone();
            if inner.duty.spawn(move |comm| async move {
                job(comm).await;
                let _ = done.send(name);
            }) {
                self.tasks += 1;
            }
        };
        if let Some(node) = inner.server.node.clone() {
            let (app, stop, started) = (app.clone(), stop_rx.clone(), p.started);
            run("node", Box::new(move |comm| Box::pin(node_duty(comm, app, node, stop, started))));
        }
        if inner.config.stat.is_some() || inner.config.property.is_some() {
            let (app, stop, rx) = (app.clone(), stop_rx.clone(), p.stat_rx);
            run("stat", Box::new(move |comm| Box::pin(report_duty(comm, app, rx, stop))));
        }
        if let (Some(log), Some(lines)) = (inner.server.log.clone(), remote) {
            let (app, stop) = (app.clone(), stop_rx.clone());
            run("log", Box::new(move |comm| Box::pin(log_duty(comm, app, log, lines, stop))));
        }
        if let Some(notify) = inner.server.notify.clone() {
            let (app, stop, notices) = (app.clone(), stop_rx.clone(), p.notices);
            run("notify", Box::new(move |comm| Box::pin(notify_duty(comm, app, notify, notices, stop))));
        }
    }

    /// The server serves: the node hears `reportVersion` and the first `keepAlive`s.
    pub(crate) fn started(&self, info: StartedInfo) {
        let _ = self.started.try_send(info);
    }

    /// Stops every duty after it has sent what is left, waiting at most [`STOP_WAIT`].
    pub(crate) fn stop(&mut self) {
        self.stop.close();
        let deadline = Instant::now() + STOP_WAIT;
        for _ in 0..self.tasks {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.done.recv_timeout(left) {
                Ok(_) => {}
                Err(_) => {
                    tracing::warn!("framework duties did not finish within {STOP_WAIT:?}; what is left is dropped");
                    break;
                }
            }
        }
        self.tasks = 0;
        let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(100));
        let written = self.client.inner.duty.try_run(move |comm| async move { comm.flush(left).await });
        if written != Some(true) {
            tracing::warn!("framework duties: some oneway reports were not written before the stop");
        }
    }
}

impl Drop for Duties {
    fn drop(&mut self) {
        if self.tasks > 0 {
            self.stop();
        }
    }
}

type DutyFuture = std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>;

/// Sleeps `d`, or less if the application stops; `true` when it stopped.
async fn pause(d: Duration, stop: &async_channel::Receiver<()>) -> bool {
    future::or(
        async {
            rt::sleep(d).await;
            false
        },
        async {
            let _ = stop.recv().await;
            true
        },
    )
    .await
}

/// Makes a proxy for a duty's `object` with the duty deadline; logs (once per duty) when
/// the object string is unusable.
fn duty_proxy(comm: &Rc<Communicator>, object: &str, duty: &str) -> Option<ObjectProxy> {
    match comm.proxy(object) {
        Ok(p) => Some(p.with_timeout(CALL_TIMEOUT)),
        Err(e) => {
            tracing::warn!(duty, object, error = %e, "framework duty disabled");
            None
        }
    }
}

async fn node_duty(
    comm: Rc<Communicator>,
    app: AppClient,
    object: String,
    stop: async_channel::Receiver<()>,
    started: async_channel::Receiver<StartedInfo>,
) {
    let Some(proxy) = duty_proxy(&comm, &object, "node") else { return };
    let node = ServerFProxy::new(proxy.clone(), proxy.servant_name());
    let ident = &app.inner.ident;
    let info = |adapter: &str| ServerInfo {
        application: ident.app.clone(),
        server_name: ident.server.clone(),
        pid: i32::try_from(std::process::id()).unwrap_or(i32::MAX),
        adapter: adapter.to_owned(),
    };
    let serving = loop {
        if let Err(e) = node.keep_activing_oneway(&info("")).await {
            tracing::debug!(error = %e, "keepActiving not sent");
        }
        let tick = async {
            rt::sleep(ACTIVATING_EVERY).await;
            None
        };
        let up = async { Some(started.recv().await.ok()) };
        match future::or(
            tick,
            future::or(up, async {
                let _ = stop.recv().await;
                Some(None)
            }),
        )
        .await
        {
            None => continue,
            Some(Some(s)) => break s,
            Some(None) => return,
        }
    };
    if let Err(e) = node.report_version_oneway(&ident.app, &ident.server, &serving.version).await {
        tracing::debug!(error = %e, "reportVersion not sent");
    }
    let _ = node.keep_alive_oneway(&info("")).await;
    loop {
        for adapter in &serving.adapters {
            if let Err(e) = node.keep_alive_oneway(&info(adapter)).await {
                tracing::debug!(adapter, error = %e, "keepAlive not sent");
            }
        }
        if pause(KEEP_ALIVE_EVERY, &stop).await {
            return;
        }
    }
}

/// Call statistics and properties, sent together every `report-interval`.
async fn report_duty(
    comm: Rc<Communicator>,
    app: AppClient,
    rows: Option<async_channel::Receiver<StatRows>>,
    stop: async_channel::Receiver<()>,
) {
    let inner = &app.inner;
    let interval = inner.config.report_interval.max(MIN_REPORT_INTERVAL);
    let stat = inner.config.stat.as_deref().and_then(|o| duty_proxy(&comm, o, "stat"));
    let stat = stat.map(|p| StatFProxy::new(p.clone(), p.servant_name()));
    let property = inner.config.property.as_deref().and_then(|o| duty_proxy(&comm, o, "property"));
    let property = property.map(|p| PropertyFProxy::new(p.clone(), p.servant_name()));
    let mut collected = Collected::default();
    let mut next = Instant::now() + interval;
    loop {
        let stopping = {
            let wait = async {
                rt::sleep_until(next).await;
                Event::Tick
            };
            let row = async {
                match &rows {
                    Some(r) => r.recv().await.map_or(Event::Closed, Event::Rows),
                    None => future::pending().await,
                }
            };
            let stopped = async {
                let _ = stop.recv().await;
                Event::Stop
            };
            match future::or(stopped, future::or(row, wait)).await {
                Event::Rows(r) => {
                    collected.add(r);
                    continue;
                }
                Event::Tick | Event::Closed => false,
                Event::Stop => true,
            }
        };
        if stopping {
            if let Some(r) = &rows {
                while let Ok(more) = r.try_recv() {
                    collected.add(more);
                }
            }
        }
        next = Instant::now() + interval;
        if let Some(stat) = &stat {
            for (from_client, packet) in collected.take_packets() {
                if let Err(e) = stat.report_mic_msg_oneway(&packet, from_client).await {
                    tracing::debug!(error = %e, rows = packet.len(), "reportMicMsg not sent");
                }
            }
        } else {
            let _ = collected.take_packets();
        }
        if let Some(property) = &property {
            let all = inner.properties.take(&inner.module);
            let mut chunk = std::collections::BTreeMap::new();
            for (i, (head, body)) in all.into_iter().enumerate() {
                chunk.insert(head, body);
                if (i + 1) % PROPS_PER_CALL == 0 {
                    send_props(property, std::mem::take(&mut chunk)).await;
                }
            }
            if !chunk.is_empty() {
                send_props(property, chunk).await;
            }
        }
        if stopping {
            return;
        }
    }
}

enum Event {
    Tick,
    Rows(StatRows),
    Closed,
    Stop,
}

async fn send_props(
    property: &PropertyFProxy<ObjectProxy>,
    chunk: std::collections::BTreeMap<tars_protocol::tars::StatPropMsgHead, tars_protocol::tars::StatPropMsgBody>,
) {
    if let Err(e) = property.report_prop_msg_oneway(&chunk).await {
        tracing::debug!(error = %e, properties = chunk.len(), "reportPropMsg not sent");
    }
}

async fn log_duty(
    comm: Rc<Communicator>,
    app: AppClient,
    object: String,
    lines: RemoteLines,
    stop: async_channel::Receiver<()>,
) {
    let Some(proxy) = duty_proxy(&comm, &object, "log") else { return };
    let log = LogProxy::new(proxy.clone(), proxy.servant_name());
    let ident = &app.inner.ident;
    let info = LogInfo {
        appname: ident.app.clone(),
        servername: ident.server.clone(),
        s_filename: String::new(),
        s_format: "%Y%m%d".into(),
        setdivision: ident.set.clone().unwrap_or_default(),
        b_has_sufix: true,
        b_has_app_name_prefix: true,
        b_has_square_bracket: false,
        s_concat_str: "_".into(),
        s_separ: "|".into(),
        ..LogInfo::default()
    };
    let mut lost = 0u64;
    loop {
        let stopping = pause(LOG_EVERY, &stop).await;
        loop {
            let batch: Vec<tars_proto::codec::BinString> = lines.take_batch().into_iter().map(Into::into).collect();
            if batch.is_empty() {
                break;
            }
            if let Err(e) = log.loggerby_info(&info, &batch).await {
                lost += batch.len() as u64;
                tracing::debug!(error = %e, lines = batch.len(), lost, "remote log lines lost");
                break;
            }
        }
        if stopping {
            return;
        }
    }
}

async fn notify_duty(
    comm: Rc<Communicator>,
    app: AppClient,
    object: String,
    notices: async_channel::Receiver<Notice>,
    stop: async_channel::Receiver<()>,
) {
    let Some(proxy) = duty_proxy(&comm, &object, "notify") else { return };
    let notify = NotifyProxy::new(proxy.clone(), proxy.servant_name());
    let ident = &app.inner.ident;
    let send = |n: Notice| {
        let info = ReportInfo {
            e_type: n.report_type,
            s_app: ident.app.clone(),
            s_set: ident.set.clone().unwrap_or_default(),
            s_server: ident.server.clone(),
            s_message: n.message.into(),
            s_thread_id: n.thread,
            e_level: n.level,
            s_node_name: ident.node_name.clone(),
            ..ReportInfo::default()
        };
        let notify = &notify;
        async move {
            if let Err(e) = notify.report_notify_info_oneway(&info).await {
                tracing::debug!(error = %e, "notice not sent");
            }
        }
    };
    loop {
        let next = future::or(async { notices.recv().await.ok() }, async {
            let _ = stop.recv().await;
            None
        })
        .await;
        match next {
            Some(n) => send(n).await,
            None => {
                while let Ok(n) = notices.try_recv() {
                    send(n).await;
                }
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_names_stay_inside_basepath() {
        for bad in ["", ".", "..", "../x", "a/b", "a\\b", "x\n", "/etc/passwd"] {
            assert!(check_file_name(bad).is_err(), "{bad:?}");
        }
        for good in ["Hello.conf", "..hidden", "a.b.c", "app-1.json"] {
            assert!(check_file_name(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn store_keeps_backups_of_changed_content() {
        let dir = std::env::temp_dir().join(format!("tars-duties-store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for v in ["v1", "v1", "v2", "v3"] {
            store(&dir, "a.conf", v).expect("stored");
        }
        let read = |n: &str| std::fs::read_to_string(dir.join(n)).ok();
        assert_eq!(read("a.conf").as_deref(), Some("v3"));
        assert_eq!(read("a.conf.1.bak").as_deref(), Some("v2"));
        assert_eq!(read("a.conf.2.bak").as_deref(), Some("v1"));
        assert_eq!(read("a.conf.3.bak"), None, "the same content twice made no backup");
        for i in 4..12 {
            store(&dir, "a.conf", &format!("v{i}")).expect("stored");
        }
        assert!(dir.join(format!("a.conf.{CONFIG_BACKUPS}.bak")).exists());
        assert!(!dir.join(format!("a.conf.{}.bak", CONFIG_BACKUPS + 1)).exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
