//! Batch tasks (upstream `ExecuteTask.cpp`): `addTaskReq` records the task (items first,
//! then `t_task`) and runs it as a task on the shard that received it; it only awaits node
//! answers and store workers, so the shard serves on. Each item's status, start and end
//! times and log go to `t_task_item` as it runs; `getTaskRsp` answers running tasks from
//! memory and finished ones from the database.
//!
//! Serial tasks run one item at a time and cancel the rest after the first failure;
//! parallel tasks run every item at once. Commands: `start`, `stop`, `restart`,
//! `undeploy_tars`; `patch_tars` and `grace_patch_tars` fail with "not supported".
//! Unlike upstream (which records only patch tasks), every task is recorded, so TarsWeb's
//! task history shows them all. Elegant tasks (`isElegant`) run in batches that leave the
//! routes first ([`run_elegant`]).
//!
//! [`Tasks`] (the running tasks) is shared by every shard behind a `Mutex`: a task changes
//! state a few times per item, never in a hot path.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tars_core_net::rt;
use tars_protocol::tars::{EMTaskItemStatus, TaskItemReq, TaskItemRsp, TaskReq, TaskRsp};

use crate::codes;
use crate::db;
use crate::node::NodeCaller;

/// The tasks running now, by task number. Shared by all shards.
#[derive(Debug, Default)]
pub struct Tasks {
    running: Mutex<HashMap<String, TaskRsp>>,
    /// The running elegant task of each `App.Server` (its first item's), and the ones a
    /// newer elegant task for the same server cancelled.
    elegant: Mutex<Elegant>,
}

#[derive(Debug, Default)]
struct Elegant {
    by_server: HashMap<String, String>,
    cancelled: HashSet<String>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn now() -> String {
    chrono::Local::now().format("%Y-%m-%d %H:%M:%S").to_string()
}

/// Why a task was refused.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// No task number, no items, or a duplicate.
    #[error("{0}")]
    Invalid(String),
    /// The rows could not be written.
    #[error("database: {0}")]
    Store(#[from] tars_sql::StoreError),
}

impl Tasks {
    /// A running task's state.
    pub fn get(&self, task_no: &str) -> Option<TaskRsp> {
        lock(&self.running).get(task_no).cloned()
    }

    /// The numbers of the tasks running here.
    pub fn numbers(&self) -> HashSet<String> {
        lock(&self.running).keys().cloned().collect()
    }

    /// Running tasks.
    pub fn len(&self) -> usize {
        lock(&self.running).len()
    }

    /// True when none runs.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn update(&self, task_no: &str, index: usize, f: impl FnOnce(&mut TaskItemRsp)) {
        if let Some(t) = lock(&self.running).get_mut(task_no) {
            if let Some(item) = t.task_item_rsp.get_mut(index) {
                f(item);
            }
            t.status = db::task_status(&t.task_item_rsp);
        }
    }

    /// Records `req` and starts it on the current shard with `caller`.
    pub async fn add(self: &Arc<Self>, caller: &NodeCaller, mut req: TaskReq) -> Result<(), TaskError> {
        if req.task_no.trim().is_empty() || req.task_item_req.is_empty() {
            return Err(TaskError::Invalid("a task needs a taskNo and at least one item".into()));
        }
        for (i, item) in req.task_item_req.iter_mut().enumerate() {
            item.task_no = req.task_no.clone();
            if item.item_no.is_empty() {
                item.item_no = format!("{}-{i}", req.task_no);
            }
        }
        if lock(&self.running).contains_key(&req.task_no) {
            return Err(TaskError::Invalid(format!("task {} is already running", req.task_no)));
        }
        let r = req.clone();
        caller.shared.store.run(move |s| db::insert_task(s, &r)).await?;
        let rsp = TaskRsp {
            task_item_rsp: req
                .task_item_req
                .iter()
                .map(|i| TaskItemRsp {
                    req: i.clone(),
                    status: EMTaskItemStatus::EM_I_NOT_START,
                    status_info: "EM_I_NOT_START".into(),
                    ..TaskItemRsp::default()
                })
                .collect(),
            task_no: req.task_no.clone(),
            serial: req.serial,
            user_name: req.user_name.clone(),
            create_time: now(),
            ..TaskRsp::default()
        };
        lock(&self.running).insert(req.task_no.clone(), rsp);
        if req.is_elegant {
            self.claim_server(&req);
        }
        let (tasks, caller) = (self.clone(), caller.clone());
        rt::spawn(async move {
            run(&tasks, &caller, &req).await;
            lock(&tasks.running).remove(&req.task_no);
            if req.is_elegant {
                tasks.release_server(&req);
            }
        })
        .detach();
        Ok(())
    }

    /// Upstream: a new elegant task for a server cancels the one still running for it (the
    /// batches not yet started).
    fn claim_server(&self, req: &TaskReq) {
        let Some(first) = req.task_item_req.first() else { return };
        let id = format!("{}.{}", first.application, first.server_name);
        let mut e = lock(&self.elegant);
        if let Some(old) = e.by_server.insert(id, req.task_no.clone()) {
            tracing::info!(task = %old, by = %req.task_no, "adminreg: elegant task cancelled by a newer one");
            e.cancelled.insert(old);
        }
    }

    fn release_server(&self, req: &TaskReq) {
        let Some(first) = req.task_item_req.first() else { return };
        let id = format!("{}.{}", first.application, first.server_name);
        let mut e = lock(&self.elegant);
        if e.by_server.get(&id) == Some(&req.task_no) {
            e.by_server.remove(&id);
        }
        e.cancelled.remove(&req.task_no);
    }

    fn is_cancelled(&self, task_no: &str) -> bool {
        lock(&self.elegant).cancelled.contains(task_no)
    }
}

async fn run(tasks: &Arc<Tasks>, caller: &NodeCaller, req: &TaskReq) {
    if req.is_elegant {
        run_elegant(tasks, caller, req).await;
    } else if req.serial {
        for (i, item) in req.task_item_req.iter().enumerate() {
            if !run_item(tasks, caller, &req.task_no, i, item).await {
                for (j, rest) in req.task_item_req.iter().enumerate().skip(i + 1) {
                    set_status(tasks, caller, &req.task_no, j, rest, EMTaskItemStatus::EM_I_CANCEL, None).await;
                }
                break;
            }
        }
    } else {
        let running: Vec<_> = req
            .task_item_req
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let (tasks, caller, task_no, item) = (tasks.clone(), caller.clone(), req.task_no.clone(), item.clone());
                rt::spawn(async move { run_item(&tasks, &caller, &task_no, i, &item).await })
            })
            .collect();
        for t in running {
            t.await;
        }
    }
}

/// Upstream's `TaskListElegant`: batches of `eachNum` items (at least 1: upstream loops
/// forever on 0). A batch's servers first leave the routes (`flow_state = inactive`, each
/// item `EM_I_PAUSE_FLOW`); when that changed a row, the batch waits `elegant_wait_second`
/// for clients to drop them, then runs, its items at once (one by one in a serial task;
/// upstream runs nothing for those). A start that succeeds puts its server back in the
/// routes, as a restart does; a stopped server stays out. Batches not started when a newer
/// elegant task for the server arrives are cancelled.
async fn run_elegant(tasks: &Arc<Tasks>, caller: &NodeCaller, req: &TaskReq) {
    let each = usize::try_from(req.each_num).unwrap_or(1).max(1);
    let items: Vec<(usize, TaskItemReq)> = req.task_item_req.iter().cloned().enumerate().collect();
    for (b, batch) in items.chunks(each).enumerate() {
        if tasks.is_cancelled(&req.task_no) {
            for (i, item) in items.iter().skip(b * each) {
                set_status(tasks, caller, &req.task_no, *i, item, EMTaskItemStatus::EM_I_CANCEL, None).await;
            }
            return;
        }
        let mut changed = 0;
        for (i, item) in batch {
            set_status(tasks, caller, &req.task_no, *i, item, EMTaskItemStatus::EM_I_PAUSE_FLOW, None).await;
            changed += caller.set_flow(&item.application, &item.server_name, &item.node_name, false).await;
        }
        if changed > 0 {
            rt::sleep(caller.shared.timeouts.elegant_wait).await;
        }
        let run_one = |i: usize, item: TaskItemReq| {
            let (tasks, caller, task_no) = (tasks.clone(), caller.clone(), req.task_no.clone());
            async move {
                let ok = run_item(&tasks, &caller, &task_no, i, &item).await;
                if ok && item.command == "start" {
                    caller.set_flow(&item.application, &item.server_name, &item.node_name, true).await;
                }
            }
        };
        if req.serial {
            for (i, item) in batch {
                run_one(*i, item.clone()).await;
            }
        } else {
            let running: Vec<_> = batch.iter().map(|(i, item)| rt::spawn(run_one(*i, item.clone()))).collect();
            for t in running {
                t.await;
            }
        }
    }
}

/// `Some(true)`: the start time; `Some(false)`: the end time.
async fn set_status(
    tasks: &Tasks,
    caller: &NodeCaller,
    task_no: &str,
    index: usize,
    item: &TaskItemReq,
    status: EMTaskItemStatus,
    start: Option<bool>,
) {
    let mut info = BTreeMap::new();
    info.insert("status".to_owned(), status.0.to_string());
    let t = now();
    match start {
        Some(true) => {
            info.insert("start_time".to_owned(), t.clone());
        }
        Some(false) => {
            info.insert("end_time".to_owned(), t.clone());
        }
        None => {}
    }
    tasks.update(task_no, index, |r| {
        r.status = status;
        r.status_info = status.name().unwrap_or_default().to_owned();
        match start {
            Some(true) => r.start_time = t.clone(),
            Some(false) => r.end_time = t.clone(),
            None => {}
        }
    });
    write_info(caller, &item.item_no, info).await;
}

async fn write_info(caller: &NodeCaller, item_no: &str, info: BTreeMap<String, String>) {
    let n = item_no.to_owned();
    if let Err(e) = caller.shared.store.run(move |s| db::set_item_info(s, &n, &info)).await {
        tracing::warn!(item = item_no, error = %e, "adminreg: cannot update t_task_item");
    }
}

/// Runs one item; true on success.
async fn run_item(tasks: &Tasks, caller: &NodeCaller, task_no: &str, index: usize, item: &TaskItemReq) -> bool {
    set_status(tasks, caller, task_no, index, item, EMTaskItemStatus::EM_I_RUNNING, Some(true)).await;
    let (app, server, node) = (item.application.as_str(), item.server_name.as_str(), item.node_name.as_str());
    let (ret, log) = match item.command.as_str() {
        "start" => caller.start_server(app, server, node).await,
        "stop" if app == "tars" && server == "tarsAdminRegistry" => {
            (codes::CAN_NOT_EXECUTE, "tarsAdminRegistry cannot be stopped by a task".to_owned())
        }
        "stop" => caller.stop_server(app, server, node).await,
        "restart" => caller.restart_server(app, server, node).await,
        "undeploy_tars" => caller.undeploy(app, server, node).await,
        "patch_tars" | "grace_patch_tars" => (codes::NOT_SUPPORTED, format!("patch: {}", codes::NOT_SUPPORTED_TEXT)),
        other => (codes::PARAMETER, format!("unknown task command {other:?}")),
    };
    let ok = ret == codes::SUCCESS;
    let log = if ok { log } else { format!("{}: {log}", codes::name(ret)) };
    tasks.update(task_no, index, |r| r.execute_log = log.clone());
    let mut info = BTreeMap::new();
    info.insert("log".to_owned(), log);
    write_info(caller, &item.item_no, info).await;
    let status = if ok { EMTaskItemStatus::EM_I_SUCCESS } else { EMTaskItemStatus::EM_I_FAILED };
    set_status(tasks, caller, task_no, index, item, status, Some(false)).await;
    ok
}
