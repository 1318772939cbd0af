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
//! task history shows them all. Elegant tasks (`isElegant`) run as plain ones.
//!
//! [`Tasks`] (the running tasks) is shared by every shard behind a `Mutex`: a task changes
//! state a few times per item, never in a hot path.

use std::collections::{BTreeMap, HashMap};
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
        let (tasks, caller) = (self.clone(), caller.clone());
        rt::spawn(async move {
            run(&tasks, &caller, &req).await;
            lock(&tasks.running).remove(&req.task_no);
        })
        .detach();
        Ok(())
    }
}

async fn run(tasks: &Arc<Tasks>, caller: &NodeCaller, req: &TaskReq) {
    if req.serial {
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
