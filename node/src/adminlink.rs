//! The node's side of tarsAdminRegistry's push channel (upstream `ServerManager::run` and its
//! `AdminNodePushPrxCallback`): modern nodes do not wait for AdminReg to call them; each keeps
//! a connection to every AdminReg instance open by calling `AdminReg.reportNode` on it every
//! few seconds, and AdminReg sends its commands back on that connection as `NodePush` pushes.
//! The node runs each through its [`NodeHandle`] and answers with `AdminReg.reportResult`.
//!
//! Differences from upstream, on purpose:
//! - the answer goes back to the instance the push came from; upstream looks the proxy up by
//!   node name in a map keyed by AdminReg host, which only finds it when the two are equal;
//! - each command runs as its own task, so a slow stop does not hold up a `getStateInfo`.
//!
//! Threads: one `tars-node-adminlink` thread sleeps between rounds and drives its own
//! [`BlockingClient`] (its communicator, its connections and the push handler live on that
//! client's shard). Results that are not a string are TARS-encoded into `result`, as upstream:
//! `getStateInfo` as tag 0 = `ServerStateInfo`, tag 1 = string; lists as tag 0 = vector.

use std::rc::{Rc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError};
use tars_core_net::client::locator::to_endpoint;
use tars_core_net::client::{BlockingClient, Communicator, Push};
use tars_core_net::rt;
use tars_proto::codec::{BinString, Field, Writer};
use tars_proto::endpoint::{Endpoint, ObjectRef};
use tars_proto::rpc::{CallOptions, Current};
use tars_protocol::tars::{AdminRegProxy, Node, NodePushMessage, PatchInfo, QueryFProxy, ReportNode, ServerStateInfo};

use crate::handle::NodeHandle;
use crate::node_obj::NodeObj;

/// The AdminReg object's default name (`/tars/node<adminObj>`).
pub const ADMIN_OBJ: &str = "tars.tarsAdminRegistry.AdminRegObj";

/// What the link needs.
pub(crate) struct LinkConfig {
    /// `/tars/node<adminObj>`: an object name resolved through the locator, or a direct
    /// `Obj@endpoints` string.
    pub admin_obj: String,
    /// The locator (`tars.tarsregistry.QueryObj@...`), for resolving `admin_obj`.
    pub locator: String,
    /// Between `reportNode` rounds (upstream: 10 s).
    pub interval: Duration,
    /// Answers the commands.
    pub handle: NodeHandle,
    /// The link's own client (a separate communicator: the push handler is per communicator).
    pub client: BlockingClient,
}

/// Starts the link thread; it stops when `stop` receives or disconnects.
pub(crate) fn spawn(cfg: LinkConfig, stop: Receiver<()>) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name("tars-node-adminlink".into()).spawn(move || run(cfg, &stop))
}

fn run(cfg: LinkConfig, stop: &Receiver<()>) {
    let sid = session_id();
    let (name, direct) = split_object(&cfg.admin_obj);
    {
        let (handle, name) = (cfg.handle.clone(), name.clone());
        cfg.client.try_run(move |comm| async move {
            let weak = Rc::downgrade(&comm);
            let obj = NodeObj { handle };
            comm.on_push(move |p| on_push(&weak, &obj, &name, p));
        });
    }
    loop {
        let (name, direct, locator) = (name.clone(), direct.clone(), cfg.locator.clone());
        let report = ReportNode { node_name: cfg.handle.node_name().to_owned(), sid: sid.clone() };
        let timeout = cfg.interval.min(Duration::from_secs(5));
        let done = cfg.client.try_run(move |comm| async move {
            let endpoints = match direct {
                Some(eps) => eps,
                None => resolve(&comm, &locator, &name, timeout).await,
            };
            let mut reached = 0usize;
            for ep in &endpoints {
                match report_node(&comm, &name, ep, &report, timeout).await {
                    Ok(()) => reached += 1,
                    Err(e) => tracing::debug!(admin = %ep, error = %e, "node: reportNode failed"),
                }
            }
            (endpoints.len(), reached)
        });
        match done {
            Some((0, _)) => tracing::debug!(admin = %cfg.admin_obj, "node: no AdminReg endpoint known"),
            Some((n, reached)) if reached < n => {
                tracing::info!(instances = n, reached, "node: some AdminReg instances did not answer reportNode")
            }
            Some(_) => {}
            None => return,
        }
        match stop.recv_timeout(cfg.interval) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// `Obj@ep:ep` → its name and endpoints; a plain name → itself and `None` (ask the locator).
fn split_object(obj: &str) -> (String, Option<Vec<Endpoint>>) {
    match ObjectRef::parse(obj) {
        Ok(r) if !r.endpoints.is_empty() => (r.name, Some(r.endpoints)),
        Ok(r) => (r.name, None),
        Err(e) => {
            tracing::warn!(admin = %obj, error = %e, "node: adminObj is not an object string");
            (obj.trim().to_owned(), Some(Vec::new()))
        }
    }
}

/// Every active endpoint of `name` (`findObjectById4All`, as upstream's `getEndpoint4All`).
async fn resolve(comm: &Rc<Communicator>, locator: &str, name: &str, timeout: Duration) -> Vec<Endpoint> {
    if locator.is_empty() {
        return Vec::new();
    }
    let Ok(proxy) = comm.proxy(locator) else {
        tracing::warn!(%locator, "node: the locator is not an object string");
        return Vec::new();
    };
    let servant = locator.split('@').next().unwrap_or(locator).to_owned();
    let q = QueryFProxy::new(proxy, servant).with_options(options(timeout));
    let (mut active, mut inactive) = (Vec::new(), Vec::new());
    match q.find_object_by_id4_all(name, &mut active, &mut inactive).await {
        Ok(_) => active.iter().filter_map(to_endpoint).collect(),
        Err(e) => {
            tracing::debug!(error = %e, "node: cannot resolve AdminReg");
            Vec::new()
        }
    }
}

fn options(timeout: Duration) -> CallOptions {
    CallOptions { timeout_ms: i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX), ..CallOptions::default() }
}

fn admin_proxy(
    comm: &Rc<Communicator>,
    name: &str,
    ep: &Endpoint,
    timeout: Duration,
) -> Result<AdminRegProxy<tars_core_net::client::ObjectProxy>, String> {
    let proxy = comm.proxy(&format!("{name}@{ep}")).map_err(|e| e.to_string())?;
    Ok(AdminRegProxy::new(proxy, name.to_owned()).with_options(options(timeout)))
}

async fn report_node(
    comm: &Rc<Communicator>,
    name: &str,
    ep: &Endpoint,
    report: &ReportNode,
    timeout: Duration,
) -> Result<(), String> {
    admin_proxy(comm, name, ep, timeout)?.report_node(report).await.map(drop).map_err(|e| e.to_string())
}

/// A push arrived (on the link's shard, inside the connection's turn): run it as a task.
fn on_push(comm: &Weak<Communicator>, obj: &NodeObj, name: &str, p: Push) {
    let msg = match NodePushMessage::decode(&p.func, p.version, &p.body) {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(admin = %p.endpoint, func = %p.func, error = %e, "node: undecodable push; ignored");
            return;
        }
    };
    let Some(comm) = comm.upgrade() else { return };
    let (obj, name) = (obj.clone(), name.to_owned());
    rt::spawn(async move {
        let (request_id, func) = (request_id(&msg), msg.func());
        let (ret, result) = execute(&obj, msg).await;
        // Answered where the push came from; long enough for a slow reply path.
        let sent = match admin_proxy(&comm, &name, &p.endpoint, Duration::from_secs(10)) {
            Ok(proxy) => proxy.report_result(request_id, func, ret, &result).await.map(drop).map_err(|e| e.to_string()),
            Err(e) => Err(e),
        };
        if let Err(e) = sent {
            tracing::warn!(admin = %p.endpoint, func, request_id, error = %e, "node: reportResult failed");
        }
    })
    .detach();
}

fn request_id(m: &NodePushMessage) -> i32 {
    use NodePushMessage as M;
    match m {
        M::Ping { request_id, .. }
        | M::PatchPro { request_id, .. }
        | M::Shutdown { request_id, .. }
        | M::LoadServer { request_id, .. }
        | M::DestroyServer { request_id, .. }
        | M::StartServer { request_id, .. }
        | M::StopServer { request_id, .. }
        | M::NotifyServer { request_id, .. }
        | M::GetStateInfo { request_id, .. }
        | M::GetPatchPercent { request_id, .. }
        | M::DelCache { request_id, .. }
        | M::GetLogFileList { request_id, .. }
        | M::GetLogData { request_id, .. }
        | M::GetNodeLoad { request_id, .. }
        | M::ForceDockerLogin { request_id, .. } => *request_id,
    }
}

/// Encodes `fields` at tags 0, 1, … as upstream's `TarsOutputStream` does for `result`.
fn encoded(write: impl FnOnce(&mut Writer)) -> BinString {
    let mut w = Writer::new();
    write(&mut w);
    BinString(tars_proto::Bytes::copy_from_slice(w.as_slice()))
}

/// Runs one command through the same code as `NodeObj`'s direct calls.
async fn execute(obj: &NodeObj, msg: NodePushMessage) -> (i32, BinString) {
    use NodePushMessage as M;
    let c = &mut Current::default();
    let mut text = String::new();
    let code = match msg {
        M::Ping { .. } => return (0, "ping succ".into()),
        M::PatchPro { req, .. } => obj.patch_pro(c, req, &mut text).await,
        M::Shutdown { .. } => obj.shutdown(c, &mut text).await,
        M::LoadServer { application, server_name, .. } => obj.load_server(c, application, server_name, &mut text).await,
        M::DestroyServer { application, server_name, .. } => {
            obj.destroy_server(c, application, server_name, &mut text).await
        }
        M::StartServer { application, server_name, .. } => {
            obj.start_server(c, application, server_name, &mut text).await
        }
        M::StopServer { application, server_name, .. } => obj.stop_server(c, application, server_name, &mut text).await,
        M::NotifyServer { application, server_name, command, .. } => {
            obj.notify_server(c, application, server_name, command, &mut text).await
        }
        M::GetStateInfo { application, server_name, .. } => {
            let mut info = ServerStateInfo::default();
            let ret = obj.get_state_info(c, application, server_name, &mut info, &mut text).await.unwrap_or(-1);
            return (
                ret,
                encoded(|w| {
                    info.write_to(0, w);
                    text.write_to(1, w);
                }),
            );
        }
        M::GetPatchPercent { application, server_name, .. } => {
            let mut info = PatchInfo::default();
            let ret = obj.get_patch_percent(c, application, server_name, &mut info).await.unwrap_or(-1);
            return (ret, encoded(|w| info.write_to(0, w)));
        }
        M::DelCache { s_full_cache_name, s_backup_path, s_key, .. } => {
            obj.del_cache(c, s_full_cache_name, s_backup_path, s_key, &mut text).await
        }
        M::GetLogFileList { application, server_name, .. } => {
            let mut list = Vec::new();
            let ret = obj.get_log_file_list(c, application, server_name, &mut list).await.unwrap_or(-1);
            return (ret, encoded(|w| list.write_to(0, w)));
        }
        M::GetLogData { application, server_name, log_file, cmd, .. } => {
            obj.get_log_data(c, application, server_name, log_file, cmd, &mut text).await
        }
        M::GetNodeLoad { application, server_name, pid, .. } => {
            obj.get_node_load(c, application, server_name, pid, &mut text).await
        }
        M::ForceDockerLogin { .. } => {
            let mut list = Vec::new();
            let ret = obj.force_docker_login(c, &mut list).await.unwrap_or(-1);
            return (ret, encoded(|w| list.write_to(0, w)));
        }
    };
    match code {
        Ok(ret) => (ret, text.into()),
        Err(e) => (-1, e.to_string().into()),
    }
}

/// Unique per node process, as upstream's UUID `sid`.
fn session_id() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    format!("{:x}-{:x}", std::process::id(), now.as_nanos())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn direct_objects_are_split_into_endpoints() {
        let (name, eps) =
            split_object("tars.tarsAdminRegistry.AdminRegObj@tcp -h 10.0.0.1 -p 12000:tcp -h 10.0.0.2 -p 12000");
        assert_eq!(name, ADMIN_OBJ);
        let eps = eps.unwrap();
        assert_eq!(eps.len(), 2);
        assert_eq!((eps[1].host.as_str(), eps[1].port), ("10.0.0.2", 12000));
        assert_eq!(split_object(ADMIN_OBJ), (ADMIN_OBJ.to_owned(), None));
    }

    #[test]
    fn state_answers_are_encoded_as_upstream() {
        let info = ServerStateInfo { process_id: 123_456, ..ServerStateInfo::default() };
        let b = encoded(|w| {
            info.write_to(0, w);
            "ok".to_owned().write_to(1, w);
        });
        let mut r = tars_proto::Reader::new(&b.0);
        let back: ServerStateInfo = r.read_required(0).unwrap();
        let text: String = r.read_required(1).unwrap();
        assert_eq!((back.process_id, text.as_str()), (123_456, "ok"));
        assert!(b.as_str().is_none(), "binary, which a String could not carry");
    }
}
