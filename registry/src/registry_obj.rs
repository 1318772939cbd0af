//! `tars.tarsregistry.RegistryObj`: the interface nodes call (`Registry.tars`). A node
//! registers, heart-beats, fetches its servers and reports their states here.
//!
//! Behaviour follows upstream `RegistryImp` / `CDbHandle`, with these deliberate fixes:
//! - `keepAlive` answers 1 when the node has no `t_node_info` row (upstream always answers 0),
//!   so tarsnode's keep-alive thread registers again instead of heart-beating into nothing.
//! - Server states are written as the column's lowercase values (`Destroying` as
//!   `deactivating`), not as `etos(ServerState)`, which only works under lax SQL modes.
//! - Every statement is parameterised; state updates touch a row only when its state or pid
//!   actually changes, so a node's periodic batch does not bump `registry_timestamp` (and so the
//!   route change poll) for nothing.
//! - `registerNode` upserts instead of `REPLACE`: the row keeps its id, `template_name`,
//!   `group_id` and `label`.
//! - Only peers in `/tars/registry<nodeallow>` are served (loopback without the key; see
//!   [`crate::peers`]); upstream serves every peer.
//! - Every call reads the database when it is made (upstream caches the framework key at start
//!   and docker registries in a background thread); nothing here blocks a shard.
//!
//! `updateServer` takes `(nodeName, app, serverName)`, unlike `getServers` and
//! `reportVersion`: that is upstream's declaration (tarsnode sends it so), and ours.

use std::sync::Arc;

use tars_proto::rpc::{Current, ServantError};
use tars_protocol::tars::{
    BaseImageInfo, DockerRegistry, FrameworkKey, LoadInfo, NodeInfo, PatchResult, Registry, ReportNode,
    ServerDescriptor, ServerState, ServerStateInfo,
};
use tars_sql::{transaction, Dialect, Row, Session, SetTo, StoreError, Value};

use crate::{peers, servers, Context};

/// `registerNode`: registered.
pub const REGISTER_OK: i32 = 0;
/// `registerNode`: another live node holds this name with a different node object.
pub const REGISTER_CONFLICT: i32 = 1;
/// `registerNode`: the database failed (upstream's code).
pub const REGISTER_DB_ERROR: i32 = 2;
/// `keepAlive`: the registry has no row for this node; tarsnode registers again on any
/// non-zero answer, and this is the answer that means it.
pub const KEEPALIVE_UNKNOWN_NODE: i32 = 1;
/// Every other call's failure code, as upstream.
pub const FAILED: i32 = -1;

/// Upstream's `updateServerBatch` chunk size; each chunk is one transaction here.
const BATCH_CHUNK: usize = 1000;
/// Most entries one `updateServerBatch` may carry. A node sends one entry per server it hosts,
/// so real batches are far below this; the cap bounds the store work (one job of at most this
/// many updates) that one request can queue.
pub const MAX_BATCH_ENTRIES: usize = 10_000;
/// `updateServerBatch` with more than [`MAX_BATCH_ENTRIES`] entries: nothing is written.
pub const BATCH_TOO_LARGE: i32 = -2;

/// The `RegistryObj` servant. One instance lives on each shard (the server builds one per
/// shard); all of them share the [`Context`], and every database call is awaited through its
/// store, never run on the shard.
#[derive(Debug, Clone)]
pub struct RegistryImp {
    ctx: Arc<Context>,
}

impl RegistryImp {
    /// A servant over `ctx`; serve it as `tars_protocol::tars::RegistryServant(RegistryImp::new(ctx))`.
    pub fn new(ctx: Arc<Context>) -> RegistryImp {
        RegistryImp { ctx }
    }
}

/// The `present_state` value for a reported state; `None` for a value the enum does not know.
/// `Destroying` has no column value; a server being destroyed is on its way down, so
/// `deactivating`.
pub fn state_column(state: ServerState) -> Option<&'static str> {
    match state {
        ServerState::Inactive => Some("inactive"),
        ServerState::Activating => Some("activating"),
        ServerState::Active => Some("active"),
        ServerState::Deactivating | ServerState::Destroying => Some("deactivating"),
        ServerState::Destroyed => Some("destroyed"),
        _ => None,
    }
}

/// A load average as a bindable value: a hostile NaN or infinity becomes 0 rather than a
/// statement the database rejects.
fn load_value(v: f32) -> Value {
    Value::Float(if v.is_finite() { f64::from(v) } else { 0.0 })
}

/// The text of column `col`, NULL as empty.
fn text(row: &Row, col: &str) -> Result<String, StoreError> {
    Ok(row.get_by::<Option<String>>(col)?.unwrap_or_default())
}

/// What `registerNode` found and did; the servant maps it to a code.
#[derive(Debug, PartialEq, Eq)]
enum Registered {
    Ok,
    Conflict { holder: String },
}

/// Checks for a live node of the same name with another node object, then upserts the row
/// (one transaction; on MySQL the existing row is locked while it is checked).
fn register_node(s: &mut dyn Session, name: &str, ni: &NodeInfo, li: &LoadInfo) -> Result<Registered, StoreError> {
    let d = s.dialect();
    let now = d.now();
    let lock = match d {
        Dialect::Mysql => " FOR UPDATE",
        Dialect::Sqlite => "",
    };
    let select = format!("SELECT present_state, node_obj FROM t_node_info WHERE node_name = ?{lock}");
    let upsert = format!(
        "INSERT INTO t_node_info (node_name, node_obj, endpoint_ip, endpoint_port, data_dir, load_avg1, load_avg5, \
         load_avg15, last_reg_time, last_heartbeat, setting_state, present_state, tars_version, template_name) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, {now}, {now}, 'active', 'active', ?, ''){tail}",
        tail = d.on_conflict_update(
            &["node_name"],
            &[
                ("node_obj", SetTo::New),
                ("endpoint_ip", SetTo::New),
                ("endpoint_port", SetTo::New),
                ("data_dir", SetTo::New),
                ("load_avg1", SetTo::New),
                ("load_avg5", SetTo::New),
                ("load_avg15", SetTo::New),
                ("last_reg_time", SetTo::Expr(now)),
                ("last_heartbeat", SetTo::Expr(now)),
                ("setting_state", SetTo::New),
                ("present_state", SetTo::New),
                ("tars_version", SetTo::New),
            ],
        )?
    );
    let params = vec![
        Value::from(name),
        Value::from(&ni.node_obj),
        Value::from(&ni.endpoint_ip),
        Value::from(ni.endpoint_port),
        Value::from(&ni.data_dir),
        load_value(li.avg1),
        load_value(li.avg5),
        load_value(li.avg15),
        Value::from(&ni.version),
    ];
    transaction(s, |s| {
        if let Some(row) = s.query(&select, &[Value::from(name)])?.first() {
            let holder = text(row, "node_obj")?;
            if text(row, "present_state")? == "active" && !ni.node_obj.is_empty() && holder != ni.node_obj {
                return Ok(Registered::Conflict { holder });
            }
        }
        s.exec(&upsert, &params)?;
        Ok(Registered::Ok)
    })
}

/// Records a heartbeat; `false` when the node has no row. An UPDATE that changes nothing
/// (same second, same load) reports 0 rows on MySQL, so absence is confirmed with a SELECT.
fn keep_alive(s: &mut dyn Session, name: &str, li: &LoadInfo) -> Result<bool, StoreError> {
    let sql = format!(
        "UPDATE t_node_info SET last_heartbeat = {}, present_state = 'active', \
         load_avg1 = ?, load_avg5 = ?, load_avg15 = ? WHERE node_name = ?",
        s.dialect().now()
    );
    let updated = s.exec(&sql, &[load_value(li.avg1), load_value(li.avg5), load_value(li.avg15), Value::from(name)])?;
    if updated > 0 {
        return Ok(true);
    }
    Ok(!s.query("SELECT 1 FROM t_node_info WHERE node_name = ?", &[Value::from(name)])?.is_empty())
}

/// Sets one server's `present_state` and `process_id`, touching the row only when either
/// changes. Returns the rows changed.
fn set_server_state(
    s: &mut dyn Session,
    app: &str,
    server: &str,
    node: &str,
    state: &'static str,
    pid: i32,
) -> Result<u64, StoreError> {
    s.exec(
        "UPDATE t_server_conf SET present_state = ?, process_id = ? \
         WHERE application = ? AND server_name = ? AND node_name = ? AND (present_state <> ? OR process_id <> ?)",
        &[
            Value::from(state),
            Value::from(pid),
            Value::from(app),
            Value::from(server),
            Value::from(node),
            Value::from(state),
            Value::from(pid),
        ],
    )
}

/// One batch entry, validated.
#[derive(Debug)]
struct StateUpdate {
    app: String,
    server: String,
    node: String,
    state: &'static str,
    pid: i32,
}

/// Applies a batch in chunks of [`BATCH_CHUNK`], each chunk one transaction (all of it or
/// none); stops at the first failing chunk. Returns the rows changed.
fn apply_batch(s: &mut dyn Session, updates: &[StateUpdate]) -> Result<u64, StoreError> {
    let mut changed = 0;
    for chunk in updates.chunks(BATCH_CHUNK) {
        changed += transaction(s, |s| {
            let mut n = 0;
            for u in chunk {
                n += set_server_state(s, &u.app, &u.server, &u.node, u.state, u.pid)?;
            }
            Ok(n)
        })?;
    }
    Ok(changed)
}

/// Marks the node and every server on it inactive (one transaction).
fn destroy_node(s: &mut dyn Session, name: &str) -> Result<(u64, u64), StoreError> {
    transaction(s, |s| {
        let servers = s.exec(
            "UPDATE t_server_conf SET present_state = 'inactive' WHERE node_name = ? AND present_state <> 'inactive'",
            &[Value::from(name)],
        )?;
        let nodes =
            s.exec("UPDATE t_node_info SET present_state = 'inactive' WHERE node_name = ?", &[Value::from(name)])?;
        Ok((nodes, servers))
    })
}

/// Every docker registry with its base images (`t_docker_registry`, `t_base_image`).
fn docker_registries(s: &mut dyn Session) -> Result<Vec<DockerRegistry>, StoreError> {
    let mut out: Vec<DockerRegistry> = Vec::new();
    for row in s.query("SELECT id, registry, username, password FROM t_docker_registry ORDER BY id", &[])? {
        out.push(DockerRegistry {
            s_id: text(&row, "id")?,
            s_registry: text(&row, "registry")?,
            s_user_name: text(&row, "username")?,
            s_password: text(&row, "password")?,
            b_succ: false,
            base_images: Vec::new(),
        });
    }
    for row in s.query("SELECT id, image, registryId, sha FROM t_base_image ORDER BY id", &[])? {
        let image = BaseImageInfo {
            id: text(&row, "id")?,
            image: text(&row, "image")?,
            registry_id: text(&row, "registryId")?,
            sha: text(&row, "sha")?,
        };
        // An image of a registry that does not exist is not reported, as upstream.
        if let Some(r) = out.iter_mut().find(|r| r.s_id == image.registry_id) {
            r.base_images.push(image);
        }
    }
    Ok(out)
}

/// The first `t_framework_key` row, if any.
fn framework_key(s: &mut dyn Session) -> Result<Option<FrameworkKey>, StoreError> {
    let rows = s.query("SELECT cuid, pri_key FROM t_framework_key ORDER BY id LIMIT 1", &[])?;
    let Some(row) = rows.first() else { return Ok(None) };
    Ok(Some(FrameworkKey { cuid: text(row, "cuid")?, pri_key: text(row, "pri_key")? }))
}

/// Logs a failed database call and gives the code upstream answers with.
fn failed(what: &str, e: &StoreError, code: i32) -> i32 {
    tracing::error!(call = what, error = %e, "registry database call failed");
    code
}

impl Registry for RegistryImp {
    async fn report_node(&self, current: &mut Current, rn: ReportNode) -> Result<i32, ServantError> {
        peers::admit(&self.ctx, current, "reportNode")?;
        // Upstream keeps the connection for AdminReg's push channel; the registry never uses it.
        tracing::debug!(node = ?rn.node_name, sid = ?rn.sid, "reportNode");
        Ok(0)
    }

    async fn register_node(
        &self,
        current: &mut Current,
        node_name: String,
        ni: NodeInfo,
        li: LoadInfo,
    ) -> Result<i32, ServantError> {
        peers::admit(&self.ctx, current, "registerNode")?;
        let name = node_name.clone();
        match self.ctx.store.run(move |s| register_node(s, &name, &ni, &li)).await {
            Ok(Registered::Ok) => {
                tracing::debug!(node = ?node_name, "node registered");
                Ok(REGISTER_OK)
            }
            Ok(Registered::Conflict { holder }) => {
                tracing::error!(node = ?node_name, holder = ?holder, "registerNode refused: a live node holds this name");
                Ok(REGISTER_CONFLICT)
            }
            Err(e) => Ok(failed("registerNode", &e, REGISTER_DB_ERROR)),
        }
    }

    async fn keep_alive(&self, current: &mut Current, node_name: String, load: LoadInfo) -> Result<i32, ServantError> {
        peers::admit(&self.ctx, current, "keepAlive")?;
        let name = node_name.clone();
        match self.ctx.store.run(move |s| keep_alive(s, &name, &load)).await {
            Ok(true) => Ok(0),
            Ok(false) => {
                tracing::warn!(node = ?node_name, "keepAlive from an unregistered node; asking it to register");
                Ok(KEEPALIVE_UNKNOWN_NODE)
            }
            // Not "unknown node": the database is away, the row may well be there.
            Err(e) => Ok(failed("keepAlive", &e, FAILED)),
        }
    }

    async fn get_servers(
        &self,
        current: &mut Current,
        app: String,
        server_name: String,
        node_name: String,
    ) -> Result<Vec<ServerDescriptor>, ServantError> {
        peers::admit(&self.ctx, current, "getServers")?;
        match servers::get_servers(&self.ctx.store, &app, &server_name, &node_name).await {
            Ok(v) => {
                tracing::debug!(node = ?node_name, app = ?app, server = ?server_name, servers = v.len(), "getServers");
                Ok(v)
            }
            Err(e) => {
                failed("getServers", &e, FAILED);
                // An empty list would tell the node it has no servers; an error tells the truth.
                Err(ServantError::unknown("registry database unavailable"))
            }
        }
    }

    /// Node name first (see the module docs).
    async fn update_server(
        &self,
        current: &mut Current,
        node_name: String,
        app: String,
        server_name: String,
        state: ServerStateInfo,
    ) -> Result<i32, ServantError> {
        peers::admit(&self.ctx, current, "updateServer")?;
        let Some(column) = state_column(state.server_state) else {
            tracing::warn!(node = ?node_name, app = ?app, server = ?server_name, state = state.server_state.0,
                "updateServer with an unknown state; ignored");
            return Ok(FAILED);
        };
        let pid = state.process_id;
        let (a, sv, n) = (app.clone(), server_name.clone(), node_name.clone());
        match self.ctx.store.run(move |s| set_server_state(s, &a, &sv, &n, column, pid)).await {
            Ok(changed) => {
                tracing::debug!(node = ?node_name, app = ?app, server = ?server_name, state = column, pid, changed, "updateServer");
                Ok(0)
            }
            Err(e) => Ok(failed("updateServer", &e, FAILED)),
        }
    }

    async fn update_server_batch(
        &self,
        current: &mut Current,
        v_state: Vec<ServerStateInfo>,
    ) -> Result<i32, ServantError> {
        peers::admit(&self.ctx, current, "updateServerBatch")?;
        if v_state.len() > MAX_BATCH_ENTRIES {
            let node = v_state.first().map(|st| st.node_name.clone()).unwrap_or_default();
            tracing::warn!(entries = v_state.len(), max = MAX_BATCH_ENTRIES, node = ?node,
                "updateServerBatch refused: too many entries");
            return Ok(BATCH_TOO_LARGE);
        }
        let mut updates = Vec::with_capacity(v_state.len());
        // One log line per request, however many entries are bad: the count and the first.
        let (mut skipped, mut first_bad) = (0usize, None);
        for st in v_state {
            match state_column(st.server_state) {
                Some(state) => updates.push(StateUpdate {
                    app: st.application,
                    server: st.server_name,
                    node: st.node_name,
                    state,
                    pid: st.process_id,
                }),
                None => {
                    skipped += 1;
                    first_bad.get_or_insert((st.node_name, st.application, st.server_name, st.server_state.0));
                }
            }
        }
        if let Some((node, app, server, state)) = first_bad {
            tracing::warn!(skipped, node = ?node, app = ?app, server = ?server, state,
                "updateServerBatch entries with an unknown state skipped (the first shown)");
        }
        if updates.is_empty() {
            return Ok(0);
        }
        let count = updates.len();
        match self.ctx.store.run(move |s| apply_batch(s, &updates)).await {
            Ok(changed) => {
                tracing::debug!(entries = count, changed, "updateServerBatch");
                Ok(0)
            }
            Err(e) => Ok(failed("updateServerBatch", &e, FAILED)),
        }
    }

    async fn destroy_node(&self, current: &mut Current, node_name: String) -> Result<i32, ServantError> {
        peers::admit(&self.ctx, current, "destroyNode")?;
        let name = node_name.clone();
        match self.ctx.store.run(move |s| destroy_node(s, &name)).await {
            Ok((nodes, servers)) => {
                tracing::info!(node = ?node_name, nodes, servers, "node destroyed; it and its servers are inactive");
                Ok(0)
            }
            Err(e) => Ok(failed("destroyNode", &e, FAILED)),
        }
    }

    async fn report_version(
        &self,
        current: &mut Current,
        app: String,
        server_name: String,
        node_name: String,
        version: String,
    ) -> Result<i32, ServantError> {
        peers::admit(&self.ctx, current, "reportVersion")?;
        let result = self
            .ctx
            .store
            .exec(
                "UPDATE t_server_conf SET tars_version = ? WHERE application = ? AND server_name = ? AND node_name = ?",
                vec![Value::from(version), Value::from(app), Value::from(server_name), Value::from(node_name)],
            )
            .await;
        match result {
            Ok(_) => Ok(0),
            Err(e) => Ok(failed("reportVersion", &e, FAILED)),
        }
    }

    async fn get_node_template(
        &self,
        current: &mut Current,
        node_name: String,
        profile_template: &mut String,
    ) -> Result<i32, ServantError> {
        peers::admit(&self.ctx, current, "getNodeTemplate")?;
        match servers::node_template(&self.ctx.store, &node_name, &self.ctx.config.default_node_template).await {
            Ok(text) => {
                if text.is_empty() {
                    tracing::warn!(node = ?node_name, "getNodeTemplate: the node's template is missing or empty");
                }
                *profile_template = text;
                Ok(0)
            }
            Err(e) => Ok(failed("getNodeTemplate", &e, FAILED)),
        }
    }

    async fn get_client_ip(&self, current: &mut Current, s_client_ip: &mut String) -> Result<i32, ServantError> {
        peers::admit(&self.ctx, current, "getClientIp")?;
        match current.peer_ip() {
            Some(ip) => {
                *s_client_ip = ip;
                Ok(0)
            }
            None => {
                tracing::warn!("getClientIp: the transport did not give the peer address");
                Ok(FAILED)
            }
        }
    }

    async fn update_patch_result(&self, current: &mut Current, result: PatchResult) -> Result<i32, ServantError> {
        peers::admit(&self.ctx, current, "updatePatchResult")?;
        tracing::debug!(app = ?result.s_application, server = ?result.s_server_name, node = ?result.s_node_name,
            version = ?result.s_version, user = ?result.s_user_name, "updatePatchResult");
        let sql = format!(
            "UPDATE t_server_conf SET patch_version = ?, patch_user = ?, patch_time = {} \
             WHERE application = ? AND server_name = ? AND node_name = ?",
            self.ctx.store.dialect().now()
        );
        let outcome = self
            .ctx
            .store
            .exec(
                sql,
                vec![
                    Value::from(result.s_version),
                    Value::from(result.s_user_name),
                    Value::from(result.s_application),
                    Value::from(result.s_server_name),
                    Value::from(result.s_node_name),
                ],
            )
            .await;
        match outcome {
            Ok(_) => Ok(0),
            Err(e) => Ok(failed("updatePatchResult", &e, FAILED)),
        }
    }

    /// Credentials go to the node, as upstream; they are never logged.
    async fn get_docker_registry(
        &self,
        current: &mut Current,
        doctor_registries: &mut Vec<DockerRegistry>,
    ) -> Result<i32, ServantError> {
        peers::admit(&self.ctx, current, "getDockerRegistry")?;
        match self.ctx.store.run(docker_registries).await {
            Ok(v) => {
                tracing::debug!(registries = v.len(), "getDockerRegistry");
                *doctor_registries = v;
                Ok(0)
            }
            Err(e) => Ok(failed("getDockerRegistry", &e, FAILED)),
        }
    }

    async fn docker_pull(&self, current: &mut Current, base_image_id: String) -> Result<i32, ServantError> {
        peers::admit(&self.ctx, current, "dockerPull")?;
        tracing::warn!(base_image_id = ?base_image_id, "dockerPull: this registry does not pull images");
        Ok(FAILED)
    }

    async fn get_framework_key(&self, current: &mut Current, f_key: &mut FrameworkKey) -> Result<i32, ServantError> {
        peers::admit(&self.ctx, current, "getFrameworkKey")?;
        match self.ctx.store.run(framework_key).await {
            Ok(key) => {
                *f_key = key.unwrap_or_default();
                Ok(0)
            }
            Err(e) => Ok(failed("getFrameworkKey", &e, FAILED)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_map_to_the_column_values() {
        assert_eq!(state_column(ServerState::Active), Some("active"));
        assert_eq!(state_column(ServerState::Inactive), Some("inactive"));
        assert_eq!(state_column(ServerState::Activating), Some("activating"));
        assert_eq!(state_column(ServerState::Deactivating), Some("deactivating"));
        assert_eq!(state_column(ServerState::Destroying), Some("deactivating"));
        assert_eq!(state_column(ServerState::Destroyed), Some("destroyed"));
        assert_eq!(state_column(ServerState(42)), None);
    }

    #[test]
    fn odd_loads_bind_as_zero() {
        assert_eq!(load_value(f32::NAN), Value::Float(0.0));
        assert_eq!(load_value(f32::INFINITY), Value::Float(0.0));
        assert_eq!(load_value(0.5), Value::Float(0.5));
    }
}
