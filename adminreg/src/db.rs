//! Every statement AdminReg runs on `db_tars` (upstream `DbProxy.cpp`), each value bound.
//! The functions take a [`Session`]: they run on a `tars-store-*` worker inside
//! [`tars_sql::Store::run`], never on a shard.
//!
//! States are written lowercase (`active`, `inactive`): upstream writes `etos(ServerState)`
//! (`Active`) and relies on MySQL's case-insensitive enum, which stores the lowercase member
//! anyway; SQLite compares exactly, so we write what MySQL would store.

use std::collections::{BTreeMap, HashSet};

use tars_proto::config::Config;
use tars_protocol::tars::{
    AdapterConf, EMTaskItemStatus, EMTaskStatus, FrameworkServer, ServerConf, TaskItemReq, TaskItemRsp, TaskReq,
    TaskRsp,
};
use tars_sql::{params, InsertMode, Row, Session, StoreError, Value};

fn text(row: &Row, col: &str) -> Result<String, StoreError> {
    Ok(row.get_by::<Option<String>>(col)?.unwrap_or_default())
}

fn int(row: &Row, col: &str) -> Result<i64, StoreError> {
    Ok(row.get_by::<Option<i64>>(col)?.unwrap_or_default())
}

/// Which state column of `t_server_conf`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateColumn {
    /// `setting_state`: what the operator wants.
    Setting,
    /// `present_state`: what runs.
    Present,
}

/// Sets `setting_state` or `present_state` of one server (upstream `updateServerState`).
pub fn set_state(
    s: &mut dyn Session,
    app: &str,
    server: &str,
    node: &str,
    column: StateColumn,
    state: &str,
) -> Result<u64, StoreError> {
    let sql = match column {
        StateColumn::Setting => {
            "UPDATE t_server_conf SET setting_state = ? WHERE application = ? AND server_name = ? AND node_name = ?"
        }
        StateColumn::Present => {
            "UPDATE t_server_conf SET present_state = ?, process_id = 0 \
             WHERE application = ? AND server_name = ? AND node_name = ?"
        }
    };
    s.exec(sql, &params![state, app, server, node])
}

/// What AdminReg reads of one `t_server_conf` row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerRow {
    /// `server_type`.
    pub server_type: String,
    /// `setting_state`.
    pub setting_state: String,
    /// `present_state`.
    pub present_state: String,
    /// `process_id`.
    pub process_id: i64,
    /// `patch_version`.
    pub patch_version: String,
    /// `patch_time`.
    pub patch_time: String,
    /// `patch_user`.
    pub patch_user: String,
    /// `template_name`.
    pub template_name: String,
    /// `profile`.
    pub profile: String,
}

/// One server's row.
pub fn server_row(s: &mut dyn Session, app: &str, server: &str, node: &str) -> Result<Option<ServerRow>, StoreError> {
    let rows = s.query(
        "SELECT server_type, setting_state, present_state, process_id, patch_version, patch_time, patch_user, \
         template_name, profile FROM t_server_conf WHERE application = ? AND server_name = ? AND node_name = ?",
        &params![app, server, node],
    )?;
    let Some(r) = rows.first() else { return Ok(None) };
    Ok(Some(ServerRow {
        server_type: text(r, "server_type")?,
        setting_state: text(r, "setting_state")?,
        present_state: text(r, "present_state")?,
        process_id: int(r, "process_id")?,
        patch_version: text(r, "patch_version")?,
        patch_time: text(r, "patch_time")?,
        patch_user: text(r, "patch_user")?,
        template_name: text(r, "template_name")?,
        profile: text(r, "profile")?,
    }))
}

/// How a node without a push connection can be reached, from `t_node_info`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeRecord {
    /// No active row: the node is not registered or timed out (upstream: 1001).
    NotRegistered,
    /// An active row with an empty `node_obj`: a push-only node.
    PushOnly,
    /// An active row naming the node's `NodeObj`.
    NodeObj(String),
}

/// The node's `t_node_info` row, as upstream's `getNodePrx` reads it.
pub fn node_record(s: &mut dyn Session, node: &str) -> Result<NodeRecord, StoreError> {
    let rows =
        s.query("SELECT node_obj FROM t_node_info WHERE node_name = ? AND present_state = 'active'", &params![node])?;
    Ok(match rows.first() {
        None => NodeRecord::NotRegistered,
        Some(r) => {
            let obj = text(r, "node_obj")?;
            if obj.trim().is_empty() {
                NodeRecord::PushOnly
            } else {
                NodeRecord::NodeObj(obj.trim().to_owned())
            }
        }
    })
}

/// Writes a notice row as tarsnotify does, so TarsWeb's notify list shows it: `server_id` is
/// `App.Server_node`, `command` the level tag.
pub fn notify(s: &mut dyn Session, app: &str, server: &str, node: &str, message: &str) -> Result<u64, StoreError> {
    let server_id = format!("{app}.{server}_{node}");
    let sql = format!(
        "INSERT INTO t_server_notifys (application, server_name, container_name, node_name, set_name, set_area, \
         set_group, server_id, thread_id, command, result, notifytime) \
         VALUES (?, ?, '', ?, '', '', '', ?, '', '[alarm]', ?, {})",
        s.dialect().now()
    );
    s.exec(&sql, &params![app, server, node, server_id.as_str(), message])
}

/// `uninstallServer`/`undeploy`: deletes the server's `t_server_conf`, `t_adapter_conf` and
/// node-level `t_config_files` rows. Returns the deleted server rows.
pub fn undeploy(s: &mut dyn Session, app: &str, server: &str, node: &str) -> Result<u64, StoreError> {
    tars_sql::transaction(s, |s| {
        let n = s.exec(
            "DELETE FROM t_server_conf WHERE application = ? AND server_name = ? AND node_name = ?",
            &params![app, server, node],
        )?;
        s.exec(
            "DELETE FROM t_adapter_conf WHERE application = ? AND server_name = ? AND node_name = ?",
            &params![app, server, node],
        )?;
        s.exec(
            "DELETE FROM t_config_files WHERE server_name = ? AND host = ? AND level = 3",
            &params![format!("{app}.{server}"), node],
        )?;
        Ok(n)
    })
}

/// `uninstallServer`: [`undeploy`], and the server-level config files once no node runs it.
pub fn uninstall(s: &mut dyn Session, app: &str, server: &str, node: &str) -> Result<u64, StoreError> {
    let n = undeploy(s, app, server, node)?;
    let left = s.query(
        "SELECT id FROM t_server_conf WHERE application = ? AND server_name = ? LIMIT 1",
        &params![app, server],
    )?;
    if left.is_empty() {
        s.exec("DELETE FROM t_config_files WHERE server_name = ? AND level = 2", &params![format!("{app}.{server}")])?;
    }
    Ok(n)
}

/// Distinct applications of `t_server_conf`.
pub fn application_names(s: &mut dyn Session) -> Result<Vec<String>, StoreError> {
    let rows = s.query("SELECT DISTINCT application FROM t_server_conf ORDER BY application", &[])?;
    rows.iter().map(|r| text(r, "application")).collect()
}

/// Active nodes.
pub fn active_nodes(s: &mut dyn Session) -> Result<Vec<String>, StoreError> {
    let rows = s.query("SELECT node_name FROM t_node_info WHERE present_state = 'active' ORDER BY node_name", &[])?;
    rows.iter().map(|r| text(r, "node_name")).collect()
}

/// A node's `tars_version`, or `None` without a row.
pub fn node_version(s: &mut dyn Session, node: &str) -> Result<Option<String>, StoreError> {
    let rows = s.query("SELECT tars_version FROM t_node_info WHERE node_name = ?", &params![node])?;
    rows.first().map(|r| text(r, "tars_version")).transpose()
}

/// `getAllServerIds`: `[App.Server_node, setting, present, server_type]` per server.
pub fn server_ids(s: &mut dyn Session) -> Result<Vec<Vec<String>>, StoreError> {
    let rows = s.query(
        "SELECT application, server_name, node_name, setting_state, present_state, server_type FROM t_server_conf \
         ORDER BY application, server_name, node_name",
        &[],
    )?;
    rows.iter()
        .map(|r| {
            Ok(vec![
                format!("{}.{}_{}", text(r, "application")?, text(r, "server_name")?, text(r, "node_name")?),
                text(r, "setting_state")?,
                text(r, "present_state")?,
                text(r, "server_type")?,
            ])
        })
        .collect()
}

/// `getServers`: every `tars` adapter as `servant@endpoint`, and every node (`tarsnode`).
pub fn framework_servers(s: &mut dyn Session) -> Result<Vec<FrameworkServer>, StoreError> {
    let mut out = Vec::new();
    let rows = s.query(
        "SELECT server_name, node_name, servant, endpoint FROM t_adapter_conf WHERE application = 'tars' ORDER BY id",
        &[],
    )?;
    for r in &rows {
        out.push(FrameworkServer {
            server_name: text(r, "server_name")?,
            node_name: text(r, "node_name")?,
            obj_name: format!("{}@{}", text(r, "servant")?, text(r, "endpoint")?),
        });
    }
    for r in &s.query("SELECT node_name, node_obj FROM t_node_info ORDER BY id", &[])? {
        out.push(FrameworkServer {
            server_name: "tarsnode".into(),
            node_name: text(r, "node_name")?,
            obj_name: text(r, "node_obj")?,
        });
    }
    Ok(out)
}

/// `updateServerFlowState`: bumps `registry_timestamp` through the column's `ON UPDATE`.
pub fn set_flow_state(
    s: &mut dyn Session,
    app: &str,
    server: &str,
    nodes: &[String],
    active: bool,
) -> Result<u64, StoreError> {
    if nodes.is_empty() {
        return Ok(0);
    }
    let marks = vec!["?"; nodes.len()].join(", ");
    let sql = format!(
        "UPDATE t_server_conf SET flow_state = ? WHERE application = ? AND server_name = ? AND node_name IN ({marks})"
    );
    let mut p = params![if active { "active" } else { "inactive" }, app, server];
    p.extend(nodes.iter().map(|n| Value::from(n.as_str())));
    s.exec(&sql, &p)
}

/// `hasServer`.
pub fn has_server(s: &mut dyn Session, app: &str, server: &str) -> Result<bool, StoreError> {
    let rows = s.query(
        "SELECT id FROM t_server_conf WHERE application = ? AND server_name = ? LIMIT 1",
        &params![app, server],
    )?;
    Ok(!rows.is_empty())
}

fn verb(s: &dyn Session, replace: bool) -> &'static str {
    s.dialect().insert_verb(if replace { InsertMode::Replace } else { InsertMode::Plain })
}

/// `insertServerConf`.
pub fn insert_server_conf(s: &mut dyn Session, c: &ServerConf, replace: bool) -> Result<u64, StoreError> {
    let sql = format!(
        "{} t_server_conf (application, server_name, node_name, base_path, exe_path, setting_state, present_state, \
         profile, server_type, start_script_path, stop_script_path, monitor_script_path, async_thread_num, \
         enable_group, ip_group_name, posttime) VALUES (?, ?, ?, ?, ?, ?, 'inactive', ?, ?, ?, ?, ?, ?, ?, ?, {})",
        verb(s, replace),
        s.dialect().now()
    );
    let server_type = if c.server_type.is_empty() { "tars_cpp" } else { c.server_type.as_str() };
    let enable_group = if c.enable_group.is_empty() { "N" } else { c.enable_group.as_str() };
    s.exec(
        &sql,
        &params![
            c.application.as_str(),
            c.server_name.as_str(),
            c.node_name.as_str(),
            c.base_path.as_str(),
            c.exe_path.as_str(),
            c.setting_state.to_ascii_lowercase(),
            c.profile.as_str(),
            server_type,
            c.start_script.as_str(),
            c.stop_script.as_str(),
            c.monitor_script.as_str(),
            c.async_thread_num,
            enable_group,
            c.ip_group_name.as_str(),
        ],
    )
}

/// `insertAdapterConf`.
pub fn insert_adapter_conf(
    s: &mut dyn Session,
    app: &str,
    server: &str,
    node: &str,
    c: &AdapterConf,
    replace: bool,
) -> Result<u64, StoreError> {
    let sql = format!(
        "{} t_adapter_conf (application, server_name, node_name, adapter_name, thread_num, endpoint, \
         max_connections, allow_ip, servant, queuecap, queuetimeout, protocol, posttime) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, {})",
        verb(s, replace),
        s.dialect().now()
    );
    s.exec(
        &sql,
        &params![
            app,
            server,
            node,
            c.adapter_name.as_str(),
            c.thread_num,
            c.endpoint.as_str(),
            c.max_connections,
            c.allow_ip.as_str(),
            c.servant.as_str(),
            c.queuecap,
            c.queuetimeout,
            c.protocol.as_str(),
        ],
    )
}

/// `insertConfigFile`.
pub fn insert_config_file(
    s: &mut dyn Session,
    server_name: &str,
    file: &str,
    content: &str,
    node: &str,
    level: i32,
    replace: bool,
) -> Result<u64, StoreError> {
    let sql = format!(
        "{} t_config_files (server_name, filename, config, host, level, posttime) VALUES (?, ?, ?, ?, ?, {})",
        verb(s, replace),
        s.dialect().now()
    );
    s.exec(&sql, &params![server_name, file, content, node, level])
}

/// `getConfigFileId`.
pub fn config_file_id(
    s: &mut dyn Session,
    server_name: &str,
    file: &str,
    node: &str,
    level: i32,
) -> Result<Option<i64>, StoreError> {
    let rows = s.query(
        "SELECT id FROM t_config_files WHERE server_name = ? AND filename = ? AND host = ? AND level = ?",
        &params![server_name, file, node, level],
    )?;
    rows.first().map(|r| r.get_by::<i64>("id")).transpose()
}

/// `insertHistoryConfigFile`.
pub fn insert_history(
    s: &mut dyn Session,
    config_id: i32,
    reason: &str,
    content: &str,
    replace: bool,
) -> Result<u64, StoreError> {
    let sql = format!(
        "{} t_config_history_files (configid, reason, reason_select, content, posttime) VALUES (?, ?, '', ?, {})",
        verb(s, replace),
        s.dialect().now()
    );
    s.exec(&sql, &params![config_id, reason, content])
}

/// `getServerProfileTemplate`: the server's template resolved through its parents, with the
/// server's own `profile` laid over it, the server winning (as the registry's `getServers`).
pub fn server_profile(s: &mut dyn Session, app: &str, server: &str, node: &str) -> Result<Option<Config>, StoreError> {
    let Some(row) = server_row(s, app, server, node)? else { return Ok(None) };
    let mut merged = tars_registry::servers::resolve_template(s, &row.template_name)?;
    if !row.profile.trim().is_empty() {
        match Config::parse(&row.profile) {
            Ok(own) => {
                if let Err(e) = merged.join(&own, true) {
                    tracing::warn!(server = %format!("{app}.{server}_{node}"), error = %e, "profile not merged");
                }
            }
            Err(e) => tracing::warn!(server = %format!("{app}.{server}_{node}"), error = %e, "profile does not parse"),
        }
    }
    Ok(Some(merged))
}

// ---- tasks ----

/// Encodes a parameter map as upstream's `TC_Parsepara::tostr`: `k=v&k=v`, each part
/// percent-encoded.
pub fn encode_params(map: &BTreeMap<String, String>) -> String {
    fn enc(s: &str, out: &mut String) {
        for b in s.bytes() {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                out.push(char::from(b));
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    let mut out = String::new();
    for (i, (k, v)) in map.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        enc(k, &mut out);
        out.push('=');
        enc(v, &mut out);
    }
    out
}

/// Decodes [`encode_params`]' text (unknown escapes kept as they are).
pub fn decode_params(text: &str) -> BTreeMap<String, String> {
    fn dec(s: &str) -> String {
        let b = s.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            let hex = |c: u8| char::from(c).to_digit(16);
            match (b[i], b.get(i + 1).copied().and_then(hex), b.get(i + 2).copied().and_then(hex)) {
                (b'%', Some(h), Some(l)) => {
                    out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
                    i += 3;
                }
                (b'+', _, _) => {
                    out.push(b' ');
                    i += 1;
                }
                (c, _, _) => {
                    out.push(c);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (dec(k), dec(v)),
            None => (dec(p), String::new()),
        })
        .collect()
}

/// Writes a new task: its items first, then `t_task` (TarsWeb's schema sync adds a foreign
/// key from `t_task` to `t_task_item`), in one transaction.
pub fn insert_task(s: &mut dyn Session, req: &TaskReq) -> Result<(), StoreError> {
    let now = s.dialect().now();
    let item_sql = "INSERT INTO t_task_item (task_no, item_no, application, server_name, node_name, command, \
                    parameters, status, set_name) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)";
    let task_sql = format!("INSERT INTO t_task (task_no, serial, user_name, create_time) VALUES (?, ?, ?, {now})");
    tars_sql::transaction(s, |s| {
        for it in &req.task_item_req {
            s.exec(
                item_sql,
                &params![
                    req.task_no.as_str(),
                    it.item_no.as_str(),
                    it.application.as_str(),
                    it.server_name.as_str(),
                    it.node_name.as_str(),
                    it.command.as_str(),
                    encode_params(&it.parameters),
                    EMTaskItemStatus::EM_I_NOT_START.0,
                    it.set_name.as_str(),
                ],
            )?;
        }
        s.exec(&task_sql, &params![req.task_no.as_str(), req.serial, req.user_name.as_str()])?;
        Ok(())
    })
}

/// Updates one item (`setTaskItemInfo`): the keys `start_time`, `end_time`, `status`, `log`;
/// others are ignored, as upstream.
pub fn set_item_info(s: &mut dyn Session, item_no: &str, info: &BTreeMap<String, String>) -> Result<u64, StoreError> {
    let mut sets = Vec::new();
    let mut p = Vec::new();
    for key in ["start_time", "end_time", "status", "log"] {
        if let Some(v) = info.get(key) {
            sets.push(format!("{key} = ?"));
            p.push(if key == "status" {
                Value::Int(v.trim().parse().unwrap_or_default())
            } else {
                Value::from(v.as_str())
            });
        }
    }
    if sets.is_empty() {
        return Ok(0);
    }
    p.push(Value::from(item_no));
    s.exec(&format!("UPDATE t_task_item SET {} WHERE item_no = ?", sets.join(", ")), &p)
}

/// What [`fail_abandoned_tasks`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Abandoned {
    /// Tasks found abandoned.
    pub tasks: u64,
    /// Items marked failed (they were running) or cancelled (they had not started).
    pub items: u64,
}

/// Ends the tasks that no AdminReg runs any more (one was stopped while they ran; upstream
/// leaves them RUNNING forever): a task with unfinished items `per_item` seconds per item
/// after its creation, longer than any instance takes to run it, and not in `running` (this
/// instance's). Its running items become FAILED, the ones not started CANCEL, each with a log
/// line saying why. Instances need not know each other: the age alone tells.
pub fn fail_abandoned_tasks(
    s: &mut dyn Session,
    per_item: u64,
    running: &HashSet<String>,
) -> Result<Abandoned, StoreError> {
    use EMTaskItemStatus as I;
    let (busy, waiting) = ([I::EM_I_RUNNING.0, I::EM_I_PAUSE_FLOW.0], [I::EM_I_NOT_START.0, I::EM_I_PREPARE.0]);
    let unfinished = busy.iter().chain(&waiting).map(i32::to_string).collect::<Vec<_>>().join(", ");
    let dialect = s.dialect();
    let older = dialect.seconds_before(dialect.now());
    let candidates = s.query(
        &format!(
            "SELECT t.task_no AS task_no, COUNT(*) AS n FROM t_task t JOIN t_task_item i ON t.task_no = i.task_no \
             WHERE t.create_time < {older} GROUP BY t.task_no \
             HAVING SUM(CASE WHEN i.status IN ({unfinished}) THEN 1 ELSE 0 END) > 0"
        ),
        &params![i64::try_from(per_item).unwrap_or(i64::MAX)],
    )?;
    let mut done = Abandoned::default();
    let now = dialect.now();
    for row in candidates {
        let task_no = text(&row, "task_no")?;
        let items = u64::try_from(int(&row, "n")?).unwrap_or(1);
        if running.contains(&task_no) {
            continue;
        }
        let age = i64::try_from(per_item.saturating_mul(items)).unwrap_or(i64::MAX);
        let old = s.query(
            &format!("SELECT 1 FROM t_task WHERE task_no = ? AND create_time < {older}"),
            &params![task_no.as_str(), age],
        )?;
        if old.is_empty() {
            continue;
        }
        for (from, to, why) in [
            (busy, I::EM_I_FAILED, "interrupted: no tarsAdminRegistry runs this task any more"),
            (waiting, I::EM_I_CANCEL, "cancelled: no tarsAdminRegistry runs this task any more"),
        ] {
            done.items += s.exec(
                &format!(
                    "UPDATE t_task_item SET status = ?, end_time = {now}, log = ? WHERE task_no = ? AND status IN (?, ?)"
                ),
                &params![to.0, why, task_no.as_str(), from[0], from[1]],
            )?;
        }
        done.tasks += 1;
    }
    Ok(done)
}

const TASK_COLUMNS: &str = "t.task_no AS task_no, t.serial AS serial, t.user_name AS user_name, \
     t.create_time AS create_time, i.item_no AS item_no, i.application AS application, \
     i.server_name AS server_name, i.node_name AS node_name, i.set_name AS set_name, i.command AS command, \
     i.parameters AS parameters, i.start_time AS start_time, i.end_time AS end_time, i.status AS status, \
     i.log AS log";

fn item_of(r: &Row) -> Result<TaskItemRsp, StoreError> {
    let status = EMTaskItemStatus(i32::try_from(int(r, "status")?).unwrap_or_default());
    Ok(TaskItemRsp {
        req: TaskItemReq {
            task_no: text(r, "task_no")?,
            item_no: text(r, "item_no")?,
            application: text(r, "application")?,
            server_name: text(r, "server_name")?,
            node_name: text(r, "node_name")?,
            set_name: text(r, "set_name")?,
            command: text(r, "command")?,
            user_name: text(r, "user_name")?,
            parameters: decode_params(&text(r, "parameters")?),
        },
        start_time: text(r, "start_time")?,
        end_time: text(r, "end_time")?,
        status,
        status_info: status.name().unwrap_or_default().to_owned(),
        execute_log: text(r, "log")?,
        percent: 0,
    })
}

fn tasks_of(rows: &[Row]) -> Result<Vec<TaskRsp>, StoreError> {
    let mut out: Vec<TaskRsp> = Vec::new();
    for r in rows {
        let task_no = text(r, "task_no")?;
        let item = item_of(r)?;
        match out.last_mut() {
            Some(t) if t.task_no == task_no => t.task_item_rsp.push(item),
            _ => out.push(TaskRsp {
                task_no,
                serial: int(r, "serial")? != 0,
                user_name: text(r, "user_name")?,
                create_time: text(r, "create_time")?,
                task_item_rsp: vec![item],
                ..TaskRsp::default()
            }),
        }
    }
    for t in &mut out {
        t.status = task_status(&t.task_item_rsp);
    }
    Ok(out)
}

/// One task with its items, from the database.
pub fn task(s: &mut dyn Session, task_no: &str) -> Result<Option<TaskRsp>, StoreError> {
    let sql = format!(
        "SELECT {TASK_COLUMNS} FROM t_task t JOIN t_task_item i ON t.task_no = i.task_no WHERE t.task_no = ? \
         ORDER BY i.id"
    );
    Ok(tasks_of(&s.query(&sql, &params![task_no])?)?.into_iter().next())
}

/// `getTaskHistory`: the tasks that ran `command` on the server, newest first.
pub fn task_history(s: &mut dyn Session, app: &str, server: &str, command: &str) -> Result<Vec<TaskRsp>, StoreError> {
    let sql = format!(
        "SELECT {TASK_COLUMNS} FROM t_task t JOIN t_task_item i ON t.task_no = i.task_no \
         WHERE i.application = ? AND i.server_name = ? AND i.command = ? ORDER BY t.create_time DESC, t.task_no, i.id"
    );
    tasks_of(&s.query(&sql, &params![app, server, command])?)
}

/// A task's status from its items' (upstream `ExecuteTask::checkTaskRspStatus`): all items in
/// one state give that state, a mix gives `EM_T_PARIAL`.
pub fn task_status(items: &[TaskItemRsp]) -> EMTaskStatus {
    let all = |st: EMTaskItemStatus| items.iter().all(|i| i.status == st);
    let all_running =
        items.iter().all(|i| matches!(i.status, EMTaskItemStatus::EM_I_RUNNING | EMTaskItemStatus::EM_I_PAUSE_FLOW));
    if all(EMTaskItemStatus::EM_I_NOT_START) {
        EMTaskStatus::EM_T_NOT_START
    } else if all(EMTaskItemStatus::EM_I_PREPARE) {
        EMTaskStatus::EM_T_PREPARE
    } else if all_running {
        EMTaskStatus::EM_T_RUNNING
    } else if all(EMTaskItemStatus::EM_I_SUCCESS) {
        EMTaskStatus::EM_T_SUCCESS
    } else if all(EMTaskItemStatus::EM_I_FAILED) {
        EMTaskStatus::EM_T_FAILED
    } else if all(EMTaskItemStatus::EM_I_CANCEL) {
        EMTaskStatus::EM_T_CANCEL
    } else {
        EMTaskStatus::EM_T_PARIAL
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parameters_round_trip() {
        let mut m = BTreeMap::new();
        m.insert("patch_id".to_owned(), "12".to_owned());
        m.insert("update_text".to_owned(), "a&b=c %d ü".to_owned());
        let t = encode_params(&m);
        assert!(!t.contains(' '));
        assert_eq!(decode_params(&t), m);
        assert!(decode_params("").is_empty());
    }

    #[test]
    fn task_status_as_upstream() {
        let item = |st| TaskItemRsp { status: st, ..TaskItemRsp::default() };
        use EMTaskItemStatus as I;
        assert_eq!(task_status(&[item(I::EM_I_SUCCESS), item(I::EM_I_SUCCESS)]), EMTaskStatus::EM_T_SUCCESS);
        assert_eq!(task_status(&[item(I::EM_I_FAILED), item(I::EM_I_CANCEL)]), EMTaskStatus::EM_T_PARIAL);
        assert_eq!(task_status(&[item(I::EM_I_RUNNING), item(I::EM_I_PAUSE_FLOW)]), EMTaskStatus::EM_T_RUNNING);
        assert_eq!(task_status(&[item(I::EM_I_NOT_START)]), EMTaskStatus::EM_T_NOT_START);
    }
}
