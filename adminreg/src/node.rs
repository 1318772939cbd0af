//! Running a command on a node (upstream `NodeManager::requestNode`): by push on the node's
//! connection to this instance when it has one; else, for a legacy node whose `t_node_info`
//! row names a `NodeObj`, by calling it directly; else an error code.
//!
//! Deliberately unlike upstream: a request for a node connected to no instance is not
//! broadcast to every AdminReg (N² fan-out, and no answer at all when nobody owns it); it is
//! answered `EM_TARS_NODE_NO_CONNECTION` (1012) at once. Start, stop, restart, destroy, load
//! and shutdown wait [`Timeouts::command`] (default 60 s: a node's stop alone may take 62 s),
//! queries [`Timeouts::query`]; upstream waits 5 s for everything.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use tars_core_net::client::Communicator;
use tars_proto::codec::{BinString, Reader};
use tars_proto::rpc::{CallError, CallOptions};
use tars_protocol::tars::{NodeProxy, NodePushMessage, PatchInfo, ServerStateInfo};
use tars_sql::Store;

use crate::codes;
use crate::db::{self, NodeRecord};
use crate::links::{Links, PushFailure};

/// How long a node may take to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// start, stop, restart, destroy, load, shutdown (`/tars/nodeinfo<command_timeout>`, ms).
    pub command: Duration,
    /// Everything else (`/tars/nodeinfo<sync_node_timeout>`, ms; upstream's key).
    pub query: Duration,
    /// How long an elegant task waits after taking a batch out of the routes, so clients
    /// drop its endpoints (`/tars/application/server<elegant_wait_second>`, upstream's key).
    pub elegant_wait: Duration,
}

/// Upstream's `elegant_wait_second` default, used for values outside 2–180 as well.
pub const ELEGANT_WAIT_DEFAULT: Duration = Duration::from_secs(75);

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts { command: Duration::from_secs(60), query: Duration::from_secs(5), elegant_wait: ELEGANT_WAIT_DEFAULT }
    }
}

/// A command for a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `ping`.
    Ping,
    /// `shutdown` (the node itself).
    Shutdown,
    /// `loadServer(app, server)`.
    Load(String, String),
    /// `destroyServer(app, server)`.
    Destroy(String, String),
    /// `startServer(app, server)`.
    Start(String, String),
    /// `stopServer(app, server)`.
    Stop(String, String),
    /// `notifyServer(app, server, command)`.
    Notify(String, String, String),
    /// `getStateInfo(app, server)`.
    State(String, String),
    /// `getPatchPercent(app, server)`.
    PatchPercent(String, String),
    /// `getLogFileList(app, server)`.
    LogFiles(String, String),
    /// `getLogData(app, server, file, cmd)`.
    LogData(String, String, String, String),
    /// `getNodeLoad(app, server, pid)`.
    NodeLoad(String, String, i32),
}

impl Command {
    fn is_long(&self) -> bool {
        matches!(
            self,
            Command::Shutdown | Command::Load(..) | Command::Destroy(..) | Command::Start(..) | Command::Stop(..)
        )
    }

    fn push_message(&self, request_id: i32, node_name: String) -> NodePushMessage {
        use NodePushMessage as M;
        let c = |s: &String| s.clone();
        match self {
            Command::Ping => M::Ping { request_id, node_name },
            Command::Shutdown => M::Shutdown { request_id, node_name },
            Command::Load(a, s) => M::LoadServer { request_id, node_name, application: c(a), server_name: c(s) },
            Command::Destroy(a, s) => M::DestroyServer { request_id, node_name, application: c(a), server_name: c(s) },
            Command::Start(a, s) => M::StartServer { request_id, node_name, application: c(a), server_name: c(s) },
            Command::Stop(a, s) => M::StopServer { request_id, node_name, application: c(a), server_name: c(s) },
            Command::Notify(a, s, cmd) => {
                M::NotifyServer { request_id, node_name, application: c(a), server_name: c(s), command: c(cmd) }
            }
            Command::State(a, s) => M::GetStateInfo { request_id, node_name, application: c(a), server_name: c(s) },
            Command::PatchPercent(a, s) => {
                M::GetPatchPercent { request_id, node_name, application: c(a), server_name: c(s) }
            }
            Command::LogFiles(a, s) => {
                M::GetLogFileList { request_id, node_name, application: c(a), server_name: c(s) }
            }
            Command::LogData(a, s, f, cmd) => M::GetLogData {
                request_id,
                node_name,
                application: c(a),
                server_name: c(s),
                log_file: c(f),
                cmd: c(cmd),
            },
            Command::NodeLoad(a, s, pid) => {
                M::GetNodeLoad { request_id, node_name, application: c(a), server_name: c(s), pid: *pid }
            }
        }
    }
}

/// What a command gave back.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// A text result.
    Text(String),
    /// `getStateInfo`: the state and a text.
    State(ServerStateInfo, String),
    /// A list (`getLogFileList`).
    List(Vec<String>),
    /// `getPatchPercent`.
    Patch(PatchInfo),
}

/// A command's code and output.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// 0 or an error code (`tarsErrCode`, or the node's own).
    pub ret: i32,
    /// The output; [`Output::Text`] with the reason on errors.
    pub out: Output,
}

impl Answer {
    fn error(ret: i32, text: impl Into<String>) -> Answer {
        Answer { ret, out: Output::Text(text.into()) }
    }

    /// The text output, or empty.
    pub fn text(&self) -> String {
        match &self.out {
            Output::Text(t) | Output::State(_, t) => t.clone(),
            _ => String::new(),
        }
    }
}

/// What every shard's caller shares.
#[derive(Debug)]
pub struct NodeShared {
    /// `db_tars`.
    pub store: Store,
    /// The push connections.
    pub links: Links,
    /// Answer timeouts.
    pub timeouts: Timeouts,
    /// The `nodeName` AdminReg puts in its pushes: upstream puts its own IP there (the node
    /// uses it to find the connection to answer on).
    pub local_name: String,
}

/// Runs commands on nodes. One per IO shard (it holds the shard's communicator for direct
/// `NodeObj` calls); clones share it, and tasks spawned on the shard hold clones.
#[derive(Debug, Clone)]
pub struct NodeCaller {
    /// The shared part.
    pub shared: Arc<NodeShared>,
    comm: Rc<Communicator>,
}

fn decode_output(cmd: &Command, result: &BinString) -> Result<Output, String> {
    let bytes = &result.0;
    match cmd {
        Command::State(..) => {
            let mut r = Reader::new(bytes);
            let info: ServerStateInfo = r.read_required(0).map_err(|e| e.to_string())?;
            let text: String = r.read_optional(1).map_err(|e| e.to_string())?.unwrap_or_default();
            Ok(Output::State(info, text))
        }
        Command::LogFiles(..) => {
            let mut r = Reader::new(bytes);
            Ok(Output::List(r.read_optional(0).map_err(|e| e.to_string())?.unwrap_or_default()))
        }
        Command::PatchPercent(..) => {
            let mut r = Reader::new(bytes);
            Ok(Output::Patch(r.read_required(0).map_err(|e| e.to_string())?))
        }
        _ => Ok(Output::Text(String::from_utf8_lossy(bytes).into_owned())),
    }
}

fn call_error(node: &str, e: &CallError) -> Answer {
    match e {
        CallError::Timeout => Answer::error(codes::CALL_NODE_TIMEOUT, format!("node {node} did not answer in time")),
        e => Answer::error(codes::UNKNOWN, format!("calling node {node}: {e}")),
    }
}

impl NodeCaller {
    /// A caller over `shared` with the shard's communicator.
    pub fn new(shared: Arc<NodeShared>, comm: Rc<Communicator>) -> NodeCaller {
        NodeCaller { shared, comm }
    }

    /// The shard's communicator.
    pub fn comm(&self) -> &Rc<Communicator> {
        &self.comm
    }

    /// Runs `cmd` on `node`.
    pub async fn run(&self, node: &str, cmd: Command) -> Answer {
        let t = &self.shared.timeouts;
        let timeout = if cmd.is_long() { t.command } else { t.query };
        let local = self.shared.local_name.clone();
        match self.shared.links.call(node, |id| cmd.push_message(id, local), timeout).await {
            Ok(a) => match decode_output(&cmd, &a.result) {
                Ok(out) => Answer { ret: a.ret, out },
                Err(e) => Answer::error(codes::UNKNOWN, format!("node {node} answered {}: {e}", a.ret)),
            },
            Err(PushFailure::Timeout) => {
                Answer::error(codes::CALL_NODE_TIMEOUT, format!("node {node} did not answer within {timeout:?}"))
            }
            Err(PushFailure::NoConnection) => self.without_connection(node, cmd, timeout).await,
        }
    }

    async fn without_connection(&self, node: &str, cmd: Command, timeout: Duration) -> Answer {
        let n = node.to_owned();
        match self.shared.store.run(move |s| db::node_record(s, &n)).await {
            Err(e) => Answer::error(codes::UNKNOWN, format!("reading node {node}: {e}")),
            Ok(NodeRecord::NotRegistered) => Answer::error(
                codes::NODE_NOT_REGISTRY,
                format!("node '{node}' not registered or heartbeat timeout, please check for it"),
            ),
            Ok(NodeRecord::PushOnly) => Answer::error(
                codes::NODE_NO_CONNECTION,
                format!("no connection to node {node} on this AdminReg instance"),
            ),
            Ok(NodeRecord::NodeObj(obj)) => self.direct(node, &obj, cmd, timeout).await,
        }
    }

    /// A legacy node: its `NodeObj` called directly.
    async fn direct(&self, node: &str, obj: &str, cmd: Command, timeout: Duration) -> Answer {
        let proxy = match self.comm.proxy(obj) {
            Ok(p) => p,
            Err(e) => return Answer::error(codes::UNKNOWN, format!("node {node}: bad node_obj {obj:?}: {e}")),
        };
        let servant = obj.split('@').next().unwrap_or(obj).trim().to_owned();
        let options = CallOptions {
            timeout_ms: i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX),
            ..CallOptions::default()
        };
        let p = NodeProxy::new(proxy, servant).with_options(options);
        let mut text = String::new();
        let r = match &cmd {
            Command::Ping => {
                // Upstream's direct ping is `tars_ping`; any answer from the node is a pong.
                let mut list = Vec::new();
                p.force_docker_login(&mut list).await.map(|_| 0)
            }
            Command::Shutdown => p.shutdown(&mut text).await,
            Command::Load(a, s) => p.load_server(a, s, &mut text).await,
            Command::Destroy(a, s) => p.destroy_server(a, s, &mut text).await,
            Command::Start(a, s) => p.start_server(a, s, &mut text).await,
            Command::Stop(a, s) => p.stop_server(a, s, &mut text).await,
            Command::Notify(a, s, c) => p.notify_server(a, s, c, &mut text).await,
            Command::State(a, s) => {
                let mut info = ServerStateInfo::default();
                return match p.get_state_info(a, s, &mut info, &mut text).await {
                    Ok(ret) => Answer { ret, out: Output::State(info, text) },
                    Err(e) => call_error(node, &e),
                };
            }
            Command::PatchPercent(a, s) => {
                let mut info = PatchInfo::default();
                return match p.get_patch_percent(a, s, &mut info).await {
                    Ok(ret) => Answer { ret, out: Output::Patch(info) },
                    Err(e) => call_error(node, &e),
                };
            }
            Command::LogFiles(a, s) => {
                let mut list = Vec::new();
                return match p.get_log_file_list(a, s, &mut list).await {
                    Ok(ret) => Answer { ret, out: Output::List(list) },
                    Err(e) => call_error(node, &e),
                };
            }
            Command::LogData(a, s, f, c) => p.get_log_data(a, s, f, c, &mut text).await,
            Command::NodeLoad(a, s, pid) => p.get_node_load(a, s, *pid, &mut text).await,
        };
        match r {
            Ok(ret) => Answer { ret, out: Output::Text(text) },
            Err(e) => call_error(node, &e),
        }
    }
}
