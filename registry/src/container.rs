//! The K8STARS container interface (`tars.tarsregistry.Registry`, IDL interface `tarsregistry`,
//! `protocol/tars/ContainerRegistry.tars`): how `tarscli` in every business pod registers its
//! server in `db_tars`, reports its state, unregisters it, and announces its metrics port.
//! Also the clean-up of dead container nodes (`clean [dryRun] [datetime]`) and the metrics
//! targets that [`crate::http_sd`] serves to Prometheus.
//!
//! Every method is an idempotent upsert or update, as upstream's, so `tarscli` can simply
//! retry. The SQL effects follow K8STARS `tarsregistry/store/mysql.go`, with these deliberate
//! differences (each one written where it happens):
//!
//! - States are checked against the columns' enums; upstream wrote values such as
//!   `activating` into `t_node_info.present_state` (enum active/inactive), which non-strict
//!   MySQL stores as `''` and strict MySQL rejects.
//! - A set id `a.b.c` is read as name.area.group (the TARS order), not K8STARS' name.group.area.
//! - Malformed requests (empty names, over-long values, a set id that is not three parts) are
//!   refused with an error instead of being stored half-way.
//! - The clean-up only touches container nodes (`endpoint_port = 0`, as `onStartup` registers
//!   them), so a classic `tarsnode` that is down for a day keeps its servers.
//! - Only peers in `/tars/registry<nodeallow>` are served ([`crate::peers`]); with K8STARS'
//!   pods on a pod network, list its CIDR there.
//!
//! All statements run on the store's threads; a servant only awaits.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use tars_proto::rpc::{Current, ServantError};
use tars_protocol::tars::{
    keepAliveReq, onPrestopReq, onStartupReq, tarsregistry, ContainerAdapterConf, GetMetricsAdaptersReq,
    MetricsAdapterInfo, RegisterMetricsReq,
};
use tars_sql::{params, transaction, Session, SetTo, StoreError};

use crate::Context;

/// The metrics port a `registerMetrics` with port 0 stands for (K8STARS' `consts.MetricsPort`).
pub const DEFAULT_METRICS_PORT: i32 = 9325;

/// What `t_server_conf.present_state` accepts.
const SERVER_STATES: [&str; 5] = ["active", "inactive", "activating", "deactivating", "destroyed"];

/// What `t_server_conf.server_type` accepts; anything else is stored as `tars_cpp`.
const SERVER_TYPES: [&str; 6] = ["tars_cpp", "not_tars", "tars_java", "tars_nodejs", "tars_php", "tars_go"];

/// More adapters than any real server has; bounds the work one request can cause.
const MAX_ADAPTERS: usize = 256;

/// The clean-up cut-off when the config disables automatic clean-up but an operator runs
/// `clean` without a date: upstream's 24 hours.
const DEFAULT_CLEAN_AFTER: Duration = Duration::from_secs(24 * 3600);

/// Why a container request failed.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    /// The request itself is wrong; retrying it unchanged fails again.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<ContainerError> for ServantError {
    fn from(e: ContainerError) -> Self {
        ServantError::unknown(e.to_string())
    }
}

fn invalid(msg: impl Into<String>) -> ContainerError {
    ContainerError::Invalid(msg.into())
}

/// The container servant (IDL interface `tarsregistry`). One instance lives on each shard
/// (built by the server's servant factory); they share only the [`Context`].
#[derive(Debug, Clone)]
pub struct ContainerImp {
    ctx: Arc<Context>,
}

impl ContainerImp {
    /// A servant over `ctx`.
    pub fn new(ctx: Arc<Context>) -> ContainerImp {
        ContainerImp { ctx }
    }
}

impl tarsregistry for ContainerImp {
    async fn on_startup(&self, current: &mut Current, req: onStartupReq) -> Result<(), ServantError> {
        crate::peers::admit(&self.ctx, current, "onStartup")?;
        startup(&self.ctx, req).await.map_err(|e| log_failure("onStartup", e))
    }

    async fn on_prestop(&self, current: &mut Current, req: onPrestopReq) -> Result<(), ServantError> {
        crate::peers::admit(&self.ctx, current, "onPrestop")?;
        prestop(&self.ctx, req).await.map_err(|e| log_failure("onPrestop", e))
    }

    async fn keep_alive(&self, current: &mut Current, req: keepAliveReq) -> Result<(), ServantError> {
        crate::peers::admit(&self.ctx, current, "keepAlive")?;
        keep_alive(&self.ctx, req).await.map_err(|e| log_failure("keepAlive", e))
    }

    async fn register_metrics(&self, current: &mut Current, req: RegisterMetricsReq) -> Result<(), ServantError> {
        crate::peers::admit(&self.ctx, current, "registerMetrics")?;
        register_metrics(&self.ctx, req).await.map_err(|e| log_failure("registerMetrics", e))
    }

    async fn get_metrics_adapters(
        &self,
        current: &mut Current,
        _req: GetMetricsAdaptersReq,
        rsp: &mut Vec<MetricsAdapterInfo>,
    ) -> Result<(), ServantError> {
        crate::peers::admit(&self.ctx, current, "getMetricsAdapters")?;
        // `filter` is reserved upstream ("enable in feature") and ignored there too.
        *rsp = metrics_adapters(&self.ctx).await.map_err(|e| log_failure("getMetricsAdapters", e.into()))?;
        Ok(())
    }
}

/// Logs a failed call (the caller only sees the text) and turns it into the reply error.
fn log_failure(method: &str, e: ContainerError) -> ServantError {
    match &e {
        ContainerError::Invalid(_) => tracing::info!(method, error = %e, "container request refused"),
        ContainerError::Store(_) => tracing::warn!(method, error = %e, "container request failed"),
    }
    e.into()
}

// ---------------------------------------------------------------------------------------------
// Validation

/// Refuses an empty or over-long value. `max` is the narrowest column the value goes into
/// (MySQL counts characters); checking here keeps both backends storing the same thing.
fn check_text(field: &str, value: &str, max: usize, required: bool) -> Result<(), ContainerError> {
    if required && value.is_empty() {
        return Err(invalid(format!("{field} is empty")));
    }
    if value.chars().count() > max {
        return Err(invalid(format!("{field} is longer than {max} characters")));
    }
    Ok(())
}

/// The names every request carries. Widths: `t_server_conf.node_name` / `t_adapter_conf`
/// are varchar(50), `server_name` varchar(128).
fn check_names(node: &str, app: &str, server: &str) -> Result<(), ContainerError> {
    check_text("nodeName", node, 50, true)?;
    check_text("application", app, 50, true)?;
    check_text("server", server, 128, true)
}

/// A server state as `t_server_conf.present_state` accepts it; empty means `active` (upstream's
/// default for both `onStartup` and `keepAlive`).
fn server_state(state: &str) -> Result<&'static str, ContainerError> {
    if state.is_empty() {
        return Ok("active");
    }
    SERVER_STATES
        .iter()
        .copied()
        .find(|s| *s == state)
        .ok_or_else(|| invalid(format!("state {state:?} is not one of {}", SERVER_STATES.join(", "))))
}

/// The node's state for a reported server state: `t_node_info.present_state` only knows
/// active/inactive, so only `active` keeps the node active.
fn node_state(server_state: &str) -> &'static str {
    if server_state == "active" {
        "active"
    } else {
        "inactive"
    }
}

/// The `server_type` column value; unknown or empty types become `tars_cpp` (upstream wrote
/// `tars_cpp` always).
fn server_type(requested: &str) -> &'static str {
    SERVER_TYPES.iter().copied().find(|t| *t == requested).unwrap_or_else(|| {
        if !requested.is_empty() {
            tracing::info!(server_type = requested, "unknown server type stored as tars_cpp");
        }
        "tars_cpp"
    })
}

/// A server's set membership, as `t_server_conf` stores it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct SetColumns {
    enable: &'static str,
    name: String,
    area: String,
    group: String,
}

/// Splits a set id. We read `name.area.group`, the order TARS uses everywhere else (QueryObj
/// builds set ids as name.area.group, and so do clients); K8STARS' `imp.go` read `a.b.c` as
/// name=a, group=b, area=c, which disagrees with its own `getMetricsAdapters`
/// (name.area.group). Empty means no set; anything that is not three non-empty parts is refused
/// (upstream silently registered such a server outside any set).
fn parse_set_id(set_id: &str) -> Result<SetColumns, ContainerError> {
    if set_id.is_empty() {
        return Ok(SetColumns { enable: "N", ..SetColumns::default() });
    }
    let parts: Vec<&str> = set_id.split('.').collect();
    match parts[..] {
        [name, area, group] if !name.is_empty() && !area.is_empty() && !group.is_empty() => {
            check_text("set name", name, 16, true)?;
            check_text("set area", area, 16, true)?;
            check_text("set group", group, 64, true)?;
            Ok(SetColumns { enable: "Y", name: name.to_owned(), area: area.to_owned(), group: group.to_owned() })
        }
        _ => Err(invalid(format!("setID {set_id:?} is not name.area.group"))),
    }
}

/// One `t_adapter_conf` row of an `onStartup`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct AdapterRow {
    adapter_name: String,
    servant: String,
    endpoint: String,
    protocol: String,
    thread_num: i32,
    max_connections: i32,
    queuecap: i32,
    queuetimeout: i32,
}

fn adapter_row(a: ContainerAdapterConf) -> Result<AdapterRow, ContainerError> {
    check_text("adapter servant", &a.servant, 128 - "Adapter".len(), true)?;
    check_text("adapter endpoint", &a.endpoint, 128, true)?;
    check_text("adapter protocol", &a.protocol, 64, false)?;
    Ok(AdapterRow {
        adapter_name: format!("{}Adapter", a.servant),
        servant: a.servant,
        endpoint: a.endpoint,
        // An empty protocol is what TARS means by the default; store it as such.
        protocol: if a.protocol.is_empty() { "tars".to_owned() } else { a.protocol },
        thread_num: a.thread_num,
        max_connections: a.max_conns,
        queuecap: a.queue_cap,
        queuetimeout: a.queue_timeout,
    })
}

/// A checked `onStartupReq`, ready to write.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Registration {
    node: String,
    app: String,
    server: String,
    version: String,
    state: &'static str,
    set: SetColumns,
    grid_flag: &'static str,
    template: String,
    server_type: &'static str,
    adapters: Vec<AdapterRow>,
}

fn registration(req: onStartupReq) -> Result<Registration, ContainerError> {
    check_names(&req.node_name, &req.application, &req.server)?;
    check_text("Version", &req.version, 128, false)?;
    check_text("templateName", &req.template_name, 128, false)?;
    if req.adapters.len() > MAX_ADAPTERS {
        return Err(invalid(format!("{} adapters (at most {MAX_ADAPTERS})", req.adapters.len())));
    }
    Ok(Registration {
        state: server_state(&req.state)?,
        set: parse_set_id(&req.set_id)?,
        grid_flag: if req.disable_flow { "NO_FLOW" } else { "NORMAL" },
        server_type: server_type(&req.server_type),
        adapters: req.adapters.into_iter().map(adapter_row).collect::<Result<_, _>>()?,
        node: req.node_name,
        app: req.application,
        server: req.server,
        version: req.version,
        template: req.template_name,
    })
}

// ---------------------------------------------------------------------------------------------
// onStartup

/// `onStartup`: registers the node (if new), the server and its adapters, in one transaction.
///
/// Adapters the request does not list are kept, as upstream does: K8STARS runs two containers
/// of `tars.tarsregistry` in one pod (the C++ QueryObj/RegistryObj and the Go container
/// registry), which register different adapters of the same server on the same node.
pub async fn startup(ctx: &Context, req: onStartupReq) -> Result<(), ContainerError> {
    let reg = registration(req)?;
    ctx.store.run(move |s| transaction(s, |s| write_registration(s, &reg))).await?;
    Ok(())
}

fn write_registration(s: &mut dyn Session, r: &Registration) -> Result<(), StoreError> {
    upsert_node(s, &r.node)?;
    upsert_server(s, r)?;
    for a in &r.adapters {
        upsert_adapter(s, r, a)?;
    }
    Ok(())
}

/// A new node row is active with both times now; an existing one only gets its heartbeat (its
/// states are `keepAlive`'s business). `endpoint_port` 0 marks it as a container node.
fn upsert_node(s: &mut dyn Session, node: &str) -> Result<u64, StoreError> {
    let now = s.dialect().now();
    let tail = s.dialect().on_conflict_update(&["node_name"], &[("last_heartbeat", SetTo::Expr(now))])?;
    let sql = format!(
        "INSERT INTO t_node_info (node_name, node_obj, endpoint_ip, endpoint_port, last_reg_time, last_heartbeat, \
         setting_state, present_state) \
         VALUES (?, ?, ?, 0, {now}, {now}, 'active', 'active'){tail}"
    );
    let node_obj = format!("tars.tarsnode.NodeObj@tcp -h {node} -p 0");
    s.exec(&sql, &params![node, node_obj, node])
}

fn upsert_server(s: &mut dyn Session, r: &Registration) -> Result<u64, StoreError> {
    let now = s.dialect().now();
    let tail = s.dialect().on_conflict_update(
        &["application", "server_name", "node_name"],
        &[
            ("patch_version", SetTo::New),
            ("present_state", SetTo::New),
            ("enable_set", SetTo::New),
            ("set_name", SetTo::New),
            ("set_area", SetTo::New),
            ("set_group", SetTo::New),
            ("grid_flag", SetTo::New),
            ("template_name", SetTo::New),
            ("server_type", SetTo::New),
            ("setting_state", SetTo::Expr("'active'")),
            ("registry_timestamp", SetTo::Expr(now)),
            ("patch_time", SetTo::Expr(now)),
            ("posttime", SetTo::Expr(now)),
        ],
    )?;
    let sql = format!(
        "INSERT INTO t_server_conf (application, server_name, node_name, patch_version, present_state, enable_set, \
         set_name, set_area, set_group, grid_flag, template_name, server_type, setting_state, registry_timestamp, \
         patch_time, posttime) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'active', {now}, {now}, {now}){tail}"
    );
    let p = params![
        r.app.as_str(),
        r.server.as_str(),
        r.node.as_str(),
        r.version.as_str(),
        r.state,
        r.set.enable,
        r.set.name.as_str(),
        r.set.area.as_str(),
        r.set.group.as_str(),
        r.grid_flag,
        r.template.as_str(),
        r.server_type,
    ];
    s.exec(&sql, &p)
}

fn upsert_adapter(s: &mut dyn Session, r: &Registration, a: &AdapterRow) -> Result<u64, StoreError> {
    let now = s.dialect().now();
    let tail = s.dialect().on_conflict_update(
        &["application", "server_name", "node_name", "adapter_name"],
        &[
            ("servant", SetTo::New),
            ("thread_num", SetTo::New),
            ("endpoint", SetTo::New),
            ("protocol", SetTo::New),
            ("max_connections", SetTo::New),
            ("queuecap", SetTo::New),
            ("queuetimeout", SetTo::New),
            ("posttime", SetTo::Expr(now)),
        ],
    )?;
    let sql = format!(
        "INSERT INTO t_adapter_conf (application, server_name, node_name, adapter_name, servant, thread_num, \
         endpoint, protocol, max_connections, queuecap, queuetimeout, posttime) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, {now}){tail}"
    );
    let p = params![
        r.app.as_str(),
        r.server.as_str(),
        r.node.as_str(),
        a.adapter_name.as_str(),
        a.servant.as_str(),
        a.thread_num,
        a.endpoint.as_str(),
        a.protocol.as_str(),
        a.max_connections,
        a.queuecap,
        a.queuetimeout,
    ];
    s.exec(&sql, &p)
}

// ---------------------------------------------------------------------------------------------
// onPrestop and keepAlive

/// `onPrestop`: the pod is going away. With application and server: deletes that server's
/// adapters, its `t_server_conf` row and the node's own config files of that server
/// (`t_config_files` rows with `host` = the node), in one transaction. Without both (old
/// `tarscli`): marks every server of the node destroyed, as `keepAlive(destroyed)` does.
pub async fn prestop(ctx: &Context, req: onPrestopReq) -> Result<(), ContainerError> {
    check_text("nodeName", &req.node_name, 50, true)?;
    match (req.application.is_empty(), req.server.is_empty()) {
        (true, true) => {
            ctx.store.run(move |s| transaction(s, |s| set_node_state(s, &req.node_name, "destroyed"))).await?;
        }
        (false, false) => {
            check_names(&req.node_name, &req.application, &req.server)?;
            ctx.store.run(move |s| transaction(s, |s| delete_server(s, &req))).await?;
        }
        _ => {
            return Err(invalid("onPrestop names an application without a server, or a server without an application"))
        }
    }
    Ok(())
}

fn delete_server(s: &mut dyn Session, req: &onPrestopReq) -> Result<(), StoreError> {
    let (node, app, server) = (req.node_name.as_str(), req.application.as_str(), req.server.as_str());
    s.exec(
        "DELETE FROM t_adapter_conf WHERE node_name = ? AND application = ? AND server_name = ?",
        &params![node, app, server],
    )?;
    s.exec(
        "DELETE FROM t_server_conf WHERE node_name = ? AND application = ? AND server_name = ?",
        &params![node, app, server],
    )?;
    // Config files are keyed by "App.Server"; only the node-level ones (host set) go.
    s.exec(
        "DELETE FROM t_config_files WHERE host <> '' AND host = ? AND server_name = ?",
        &params![node, format!("{app}.{server}")],
    )?;
    Ok(())
}

/// `keepAlive`: refreshes the node's heartbeat and records the reported state.
///
/// The node becomes `active` when the state is `active` and `inactive` otherwise (its column
/// knows only those two; upstream wrote the raw state). With application and server the
/// state goes to that server; without either (old `tarscli`) to every server of the node, and
/// `destroyed` then also sets their `setting_state` to `inactive` (upstream wrote `destroyed`
/// there, which that column's enum does not accept) so nothing routes to them any more.
pub async fn keep_alive(ctx: &Context, req: keepAliveReq) -> Result<(), ContainerError> {
    check_text("nodeName", &req.node_name, 50, true)?;
    let state = server_state(&req.state)?;
    ctx.store
        .run(move |s| {
            transaction(s, |s| {
                let sql = format!("UPDATE t_node_info SET last_heartbeat = {} WHERE node_name = ?", s.dialect().now());
                s.exec(&sql, &params![req.node_name.as_str()])?;
                if req.application.is_empty() || req.server.is_empty() {
                    set_node_state(s, &req.node_name, state)
                } else {
                    set_server_state(s, &req, state)
                }
            })
        })
        .await?;
    Ok(())
}

/// Sets the node's state and the state of every server on it (`destroyed` also deactivates
/// them). Leaves the heartbeat alone.
fn set_node_state(s: &mut dyn Session, node: &str, state: &'static str) -> Result<(), StoreError> {
    s.exec("UPDATE t_node_info SET present_state = ? WHERE node_name = ?", &params![node_state(state), node])?;
    if state == "destroyed" {
        s.exec(
            "UPDATE t_server_conf SET present_state = 'destroyed', setting_state = 'inactive' WHERE node_name = ?",
            &params![node],
        )?;
    } else {
        s.exec("UPDATE t_server_conf SET present_state = ? WHERE node_name = ?", &params![state, node])?;
    }
    Ok(())
}

fn set_server_state(s: &mut dyn Session, req: &keepAliveReq, state: &'static str) -> Result<(), StoreError> {
    let node = req.node_name.as_str();
    s.exec("UPDATE t_node_info SET present_state = ? WHERE node_name = ?", &params![node_state(state), node])?;
    s.exec(
        "UPDATE t_server_conf SET present_state = ? WHERE node_name = ? AND application = ? AND server_name = ?",
        &params![state, node, req.application.as_str(), req.server.as_str()],
    )?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Metrics

/// `registerMetrics`: records the port the server's `/metrics` listens on (0 means 9325).
/// A server that is not registered yet is no error (the update simply touches nothing), as
/// upstream.
pub async fn register_metrics(ctx: &Context, req: RegisterMetricsReq) -> Result<(), ContainerError> {
    check_names(&req.node_name, &req.application, &req.server)?;
    let port = if req.metrics_port == 0 { DEFAULT_METRICS_PORT } else { req.metrics_port };
    if !(1..=65535).contains(&port) {
        return Err(invalid(format!("metricsPort {port} is not a port")));
    }
    ctx.store
        .exec(
            "UPDATE t_server_conf SET metrics_port = ? WHERE node_name = ? AND application = ? AND server_name = ?",
            params![port, req.node_name, req.application, req.server],
        )
        .await?;
    Ok(())
}

/// The Prometheus targets: every server with a metrics port, grouped by (application,
/// server, set id), each group's targets `node:port`. Groups and targets are sorted, so the
/// answer only changes when the data does.
pub async fn metrics_adapters(ctx: &Context) -> Result<Vec<MetricsAdapterInfo>, StoreError> {
    ctx.store.run(query_metrics_adapters).await
}

/// [`metrics_adapters`] on a session: for callers on their own threads ([`crate::http_sd`]).
pub(crate) fn query_metrics_adapters(s: &mut dyn Session) -> Result<Vec<MetricsAdapterInfo>, StoreError> {
    let rows = s.query(
        "SELECT application, server_name, node_name, enable_set, set_name, set_area, set_group, metrics_port \
         FROM t_server_conf WHERE metrics_port > 0",
        &[],
    )?;
    let mut groups: BTreeMap<(String, String, String), Vec<String>> = BTreeMap::new();
    for row in rows {
        let text = |i: usize| row.get::<Option<String>>(i).map(Option::unwrap_or_default);
        let (app, server, node, enable) = (text(0)?, text(1)?, text(2)?, text(3)?);
        let set_id = if enable.eq_ignore_ascii_case("y") {
            format!("{}.{}.{}", text(4)?, text(5)?, text(6)?)
        } else {
            String::new()
        };
        let port: i64 = row.get(7)?;
        groups.entry((app, server, set_id)).or_default().push(format!("{node}:{port}"));
    }
    Ok(groups
        .into_iter()
        .map(|((application, server, set), mut targets)| {
            targets.sort();
            MetricsAdapterInfo {
                targets,
                labels: BTreeMap::from([
                    ("application".to_owned(), application),
                    ("server".to_owned(), server),
                    ("set".to_owned(), set),
                ]),
            }
        })
        .collect())
}

// ---------------------------------------------------------------------------------------------
// Clean-up

/// One server row the clean-up removes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct CleanedServer {
    /// `node_name`.
    pub node: String,
    /// `application`.
    pub application: String,
    /// `server_name`.
    pub server: String,
}

/// What a clean-up removed, or would remove in a dry run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CleanReport {
    /// The cut-off: nodes whose last heartbeat is older are dead (database clock and format).
    pub before: String,
    /// Nothing was deleted.
    pub dry_run: bool,
    /// Server rows of dead nodes.
    pub servers: Vec<CleanedServer>,
    /// Dead nodes (all of them go once their servers are gone).
    pub nodes: Vec<String>,
    /// How many `t_adapter_conf` rows of those nodes.
    pub adapters: u64,
    /// How many node-level `t_config_files` rows of those nodes.
    pub config_files: u64,
}

/// The nodes the clean-up treats as dead: inactive, silent since before the bound cut-off,
/// and registered by `onStartup` (`endpoint_port = 0`). Upstream had no port condition; a
/// classic `tarsnode` registers its real port and is left to the operator.
const DEAD_NODES: &str =
    "SELECT node_name FROM t_node_info WHERE present_state = 'inactive' AND last_heartbeat < ? AND endpoint_port = 0";

/// Removes the servers, adapters and node-level config files of dead container nodes, then
/// the nodes themselves, in one transaction; lists them instead when `dry_run`. `before`
/// (`YYYY-MM-DD[ HH:MM:SS]`, in the database's clock: MySQL's session time zone, local
/// time for SQLite, see `Dialect::now`) defaults to now − `clean_inactive_after` (24 h when that is
/// 0, i.e. automatic clean-up is off).
pub async fn clean(ctx: &Context, before: Option<String>, dry_run: bool) -> Result<CleanReport, StoreError> {
    let after = clean_after(ctx);
    ctx.store.run(move |s| clean_session(s, after, before, dry_run)).await
}

/// [`clean`] for threads that may block (the periodic jobs): waits on the store directly.
pub fn clean_blocking(ctx: &Context, before: Option<String>, dry_run: bool) -> Result<CleanReport, StoreError> {
    let after = clean_after(ctx);
    ctx.store.run_blocking(move |s| clean_session(s, after, before, dry_run))
}

fn clean_after(ctx: &Context) -> Duration {
    match ctx.config.clean_inactive_after {
        Duration::ZERO => DEFAULT_CLEAN_AFTER,
        d => d,
    }
}

fn clean_session(
    s: &mut dyn Session,
    after: Duration,
    before: Option<String>,
    dry_run: bool,
) -> Result<CleanReport, StoreError> {
    let before = match before {
        Some(b) => b,
        None => cutoff(s, after)?,
    };
    transaction(s, |s| clean_on(s, before, dry_run))
}

/// Now − `after` in the database's clock, as the text it compares `last_heartbeat` with.
fn cutoff(s: &mut dyn Session, after: Duration) -> Result<String, StoreError> {
    let secs = i64::try_from(after.as_secs()).unwrap_or(i64::MAX);
    let sql = format!("SELECT {}", s.dialect().seconds_before(s.dialect().now()));
    let rows = s.query(&sql, &params![secs])?;
    rows.first()
        .map(|r| r.get::<String>(0))
        .unwrap_or_else(|| Err(StoreError::Column { column: "cutoff".into(), reason: "no row".into() }))
}

fn clean_on(s: &mut dyn Session, before: String, dry_run: bool) -> Result<CleanReport, StoreError> {
    let b = || params![before.as_str()];
    let mut servers = Vec::new();
    for row in s.query(
        &format!("SELECT node_name, application, server_name FROM t_server_conf WHERE node_name IN ({DEAD_NODES})"),
        &b(),
    )? {
        servers.push(CleanedServer { node: row.get(0)?, application: row.get(1)?, server: row.get(2)? });
    }
    servers.sort();
    let mut nodes = s.query(DEAD_NODES, &b())?.iter().map(|r| r.get::<String>(0)).collect::<Result<Vec<_>, _>>()?;
    nodes.sort();
    let count = |s: &mut dyn Session, sql: String| -> Result<u64, StoreError> {
        s.query(&sql, &b())?.first().map_or(Ok(0), |r| r.get::<u64>(0))
    };
    let adapters = count(s, format!("SELECT COUNT(*) FROM t_adapter_conf WHERE node_name IN ({DEAD_NODES})"))?;
    let config_files =
        count(s, format!("SELECT COUNT(*) FROM t_config_files WHERE host <> '' AND host IN ({DEAD_NODES})"))?;
    if !dry_run {
        delete_dead(s, &before)?;
    }
    Ok(CleanReport { before, dry_run, servers, nodes, adapters, config_files })
}

fn delete_dead(s: &mut dyn Session, before: &str) -> Result<(), StoreError> {
    let b = params![before];
    s.exec(&format!("DELETE FROM t_server_conf WHERE node_name IN ({DEAD_NODES})"), &b)?;
    s.exec(&format!("DELETE FROM t_adapter_conf WHERE node_name IN ({DEAD_NODES})"), &b)?;
    s.exec(&format!("DELETE FROM t_config_files WHERE host <> '' AND host IN ({DEAD_NODES})"), &b)?;
    // A node that got a server again meanwhile stays (upstream's guard).
    s.exec(
        "DELETE FROM t_node_info WHERE present_state = 'inactive' AND last_heartbeat < ? AND endpoint_port = 0 \
         AND node_name NOT IN (SELECT node_name FROM t_server_conf)",
        &b,
    )?;
    Ok(())
}

/// The admin command `clean [dryRun] [datetime]` (K8STARS' `tarscli notify "clean n"`):
/// `params` is the text after `clean`. Only a `dryRun` of `n`/`N` deletes; the datetime
/// (`YYYY-MM-DD` or `YYYY-MM-DD HH:MM:SS`) defaults as in [`clean`]. Register it with
/// `ServerBuilder::admin_command_async("clean", move |p| clean_command(ctx.clone(), p))`.
pub async fn clean_command(ctx: Arc<Context>, params: String) -> String {
    let (dry_run, before) = match parse_clean_params(&params) {
        Ok(v) => v,
        Err(msg) => return format!("{msg}\nusage: clean [dryRun: y|n, default y] [YYYY-MM-DD[ HH:MM:SS]]\n"),
    };
    match clean(&ctx, before, dry_run).await {
        Ok(report) => render_report(&report),
        Err(e) => format!("clean failed: {e}\n"),
    }
}

/// `(dry_run, before)` from the command's parameters.
fn parse_clean_params(params: &str) -> Result<(bool, Option<String>), String> {
    let fields: Vec<&str> = params.split_whitespace().collect();
    let dry_run = fields.first().is_none_or(|f| !f.eq_ignore_ascii_case("n"));
    let before = match fields.len() {
        0 | 1 => None,
        2 | 3 => Some(normalize_datetime(&fields[1..].join(" "))?),
        _ => return Err("too many parameters".to_owned()),
    };
    Ok((dry_run, before))
}

/// `YYYY-MM-DD`, `YYYY-MM-DD HH:MM:SS` or `YYYY-MM-DDTHH:MM:SS` as `YYYY-MM-DD HH:MM:SS`, the
/// form both backends compare correctly (SQLite compares the text).
fn normalize_datetime(text: &str) -> Result<String, String> {
    let bad = || format!("{text:?} is not YYYY-MM-DD or YYYY-MM-DD HH:MM:SS");
    let (date, time) = match text.split_once([' ', 'T']) {
        Some((d, t)) => (d, t),
        None => (text, "00:00:00"),
    };
    let date_parts = numbers(date, '-', &[4, 2, 2]).ok_or_else(bad)?;
    let time_parts = numbers(time, ':', &[2, 2, 2]).ok_or_else(bad)?;
    let ok = (1..=12).contains(&date_parts[1])
        && (1..=31).contains(&date_parts[2])
        && time_parts[0] < 24
        && time_parts[1] < 60
        && time_parts[2] < 60;
    if !ok {
        return Err(bad());
    }
    Ok(format!("{date} {time}"))
}

/// The numbers of `text` split at `sep`, each exactly `widths[i]` ASCII digits.
fn numbers(text: &str, sep: char, widths: &[usize]) -> Option<Vec<u32>> {
    let parts: Vec<&str> = text.split(sep).collect();
    if parts.len() != widths.len() {
        return None;
    }
    parts
        .iter()
        .zip(widths)
        .map(|(p, w)| (p.len() == *w && p.bytes().all(|b| b.is_ascii_digit())).then(|| p.parse().ok()).flatten())
        .collect()
}

/// The admin command's answer.
pub fn render_report(r: &CleanReport) -> String {
    let mut out = String::new();
    let what = if r.dry_run { "would remove (dry run; `clean n` deletes)" } else { "removed" };
    let _ = writeln!(out, "container nodes inactive since before {}: {what}", r.before);
    for s in &r.servers {
        let _ = writeln!(out, "server {}.{} on {}", s.application, s.server, s.node);
    }
    for n in &r.nodes {
        let _ = writeln!(out, "node {n}");
    }
    let _ = writeln!(
        out,
        "{} servers, {} adapters, {} config files, {} nodes",
        r.servers.len(),
        r.adapters,
        r.config_files,
        r.nodes.len()
    );
    out.push_str(if r.dry_run { "Dry run.\n" } else { "Deleted\n" });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_ids_are_name_area_group() {
        let s = parse_set_id("sz.a.1").expect("valid");
        assert_eq!((s.enable, s.name.as_str(), s.area.as_str(), s.group.as_str()), ("Y", "sz", "a", "1"));
        assert_eq!(parse_set_id("").expect("valid").enable, "N");
        for bad in ["a.b", "a.b.c.d", "a..c", ".b.c", "abcdefghijklmnopq.b.c"] {
            assert!(parse_set_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn states_are_checked_and_mapped() {
        assert_eq!(server_state("").expect("default"), "active");
        assert_eq!(server_state("deactivating").expect("valid"), "deactivating");
        assert!(server_state("Active").is_err());
        assert!(server_state("'; DROP TABLE t_node_info; --").is_err());
        assert_eq!(node_state("active"), "active");
        assert_eq!(node_state("activating"), "inactive");
        assert_eq!(node_state("destroyed"), "inactive");
        assert_eq!(server_type("tars_go"), "tars_go");
        assert_eq!(server_type("rust"), "tars_cpp");
        assert_eq!(server_type(""), "tars_cpp");
    }

    #[test]
    fn clean_parameters() {
        assert_eq!(parse_clean_params(""), Ok((true, None)));
        assert_eq!(parse_clean_params("y"), Ok((true, None)));
        assert_eq!(parse_clean_params("N"), Ok((false, None)));
        assert_eq!(parse_clean_params("n 2021-03-04"), Ok((false, Some("2021-03-04 00:00:00".into()))));
        assert_eq!(parse_clean_params("y 2021-03-04 05:06:07"), Ok((true, Some("2021-03-04 05:06:07".into()))));
        assert_eq!(parse_clean_params("n 2021-03-04T05:06:07"), Ok((false, Some("2021-03-04 05:06:07".into()))));
        for bad in
            ["n yesterday", "n 2021-13-01", "n 2021-1-01", "n 2021-01-01 25:00:00", "n 2021-01-01 1 2", "n ٢٠٢١-01-01"]
        {
            assert!(parse_clean_params(bad).is_err(), "{bad}");
        }
    }
}
