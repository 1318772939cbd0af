//! `tars.tarsAdminRegistry.AdminRegObj`: the generated `AdminReg` servant. Database work runs
//! on store workers, node commands go through [`NodeCaller`]; a call only awaits, so nothing
//! blocks the shard.
//!
//! Not supported (answered [`codes::NOT_SUPPORTED`] with a text saying so): patches
//! (`batchPatch`, `getPatchPercent`'s patch side, `updatePatchLog`, `deletePatchFile`,
//! `getPatchPackage`), docker (`forceDockerLogin`, `checkDockerRegistry`, `dockerPull`),
//! `delCache`, the web's auth and plugin tables (`hasDevAuth`, `hasOpeAuth`, `hasAdminAuth`,
//! `checkTicket`, `registerPlugin`) and `getServerNameList`.

use std::collections::BTreeMap;
use std::sync::Arc;

use tars_proto::codec::BinString;
use tars_proto::packet::PING_FUNC;
use tars_proto::rpc::{CallOptions, Current, ServantError};
use tars_protocol::tars::{
    AdapterConf, AdminReg, ApplicationServerName, FrameworkServer, PatchInfo, PatchPackage, PatchRequest, PluginConf,
    ReportNode, ServerConf, ServerStateDesc, ServerTree, TaskReq, TaskRsp,
};
use tars_sql::{Session, StoreError};

use crate::codes;
use crate::db;
use crate::node::{Command, NodeCaller, Output};
use crate::tasks::Tasks;

/// The servant. One per IO shard.
#[derive(Debug, Clone)]
pub struct AdminRegImp {
    caller: NodeCaller,
    tasks: Arc<Tasks>,
}

impl AdminRegImp {
    /// The servant over `caller` (the shard's) and the shared `tasks`.
    pub fn new(caller: NodeCaller, tasks: Arc<Tasks>) -> AdminRegImp {
        AdminRegImp { caller, tasks }
    }

    async fn db<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Session) -> Result<T, StoreError> + Send + 'static,
    {
        self.caller.shared.store.run(f).await
    }
}

fn not_supported(what: &str, out: &mut String) -> Result<i32, ServantError> {
    *out = format!("{what}: {}", codes::NOT_SUPPORTED_TEXT);
    Ok(codes::NOT_SUPPORTED)
}

fn db_failed(e: &StoreError, out: &mut String) -> i32 {
    tracing::warn!(error = %e, "adminreg: database");
    *out = format!("database: {e}");
    codes::UNKNOWN
}

fn outcome((ret, text): (i32, String), result: &mut String) -> Result<i32, ServantError> {
    *result = text;
    Ok(ret)
}

impl AdminReg for AdminRegImp {
    async fn report_node(&self, current: &mut Current, rn: ReportNode) -> Result<i32, ServantError> {
        match current.push.clone() {
            Some(h) if !rn.node_name.is_empty() => self.caller.shared.links.report(&rn.node_name, h),
            Some(_) => {}
            None => tracing::debug!(node = %rn.node_name, "adminreg: reportNode on a transport that cannot push"),
        }
        Ok(0)
    }

    async fn delete_node(&self, _c: &mut Current, rn: ReportNode) -> Result<i32, ServantError> {
        self.caller.shared.links.forget(&rn.node_name);
        Ok(0)
    }

    async fn report_result(
        &self,
        _c: &mut Current,
        request_id: i32,
        func_name: String,
        ret: i32,
        result: BinString,
    ) -> Result<i32, ServantError> {
        if !self.caller.shared.links.complete(request_id, ret, result) {
            tracing::debug!(request_id, func = %func_name, "adminreg: late or unknown reportResult");
        }
        Ok(0)
    }

    async fn add_task_req(&self, _c: &mut Current, task_req: TaskReq) -> Result<i32, ServantError> {
        match self.tasks.add(&self.caller, task_req).await {
            Ok(()) => Ok(0),
            Err(e) => {
                tracing::warn!(error = %e, "adminreg: addTaskReq refused");
                Ok(codes::UNKNOWN)
            }
        }
    }

    async fn get_task_rsp(&self, _c: &mut Current, task_no: String, rsp: &mut TaskRsp) -> Result<i32, ServantError> {
        if let Some(t) = self.tasks.get(&task_no) {
            *rsp = t;
            return Ok(0);
        }
        match self.db(move |s| db::task(s, &task_no)).await {
            Ok(Some(t)) => {
                *rsp = t;
                Ok(0)
            }
            Ok(None) => Ok(codes::UNKNOWN),
            Err(e) => Ok(db_failed(&e, &mut String::new())),
        }
    }

    async fn get_task_history(
        &self,
        _c: &mut Current,
        application: String,
        server_name: String,
        command: String,
        task_rsps: &mut Vec<TaskRsp>,
    ) -> Result<i32, ServantError> {
        match self.db(move |s| db::task_history(s, &application, &server_name, &command)).await {
            Ok(v) => {
                *task_rsps = v;
                Ok(0)
            }
            Err(e) => Ok(db_failed(&e, &mut String::new())),
        }
    }

    async fn set_task_item_info(
        &self,
        _c: &mut Current,
        item_no: String,
        info: BTreeMap<String, String>,
    ) -> Result<i32, ServantError> {
        match self.db(move |s| db::set_item_info(s, &item_no, &info)).await {
            Ok(_) => Ok(0),
            Err(e) => Ok(db_failed(&e, &mut String::new())),
        }
    }

    async fn get_all_application_names(
        &self,
        _c: &mut Current,
        result: &mut String,
    ) -> Result<Vec<String>, ServantError> {
        match self.db(db::application_names).await {
            Ok(v) => Ok(v),
            Err(e) => {
                db_failed(&e, result);
                Ok(Vec::new())
            }
        }
    }

    async fn get_all_node_names(&self, _c: &mut Current, result: &mut String) -> Result<Vec<String>, ServantError> {
        match self.db(db::active_nodes).await {
            Ok(v) => Ok(v),
            Err(e) => {
                db_failed(&e, result);
                Ok(Vec::new())
            }
        }
    }

    async fn ping_node(&self, _c: &mut Current, name: String, result: &mut String) -> Result<bool, ServantError> {
        let a = self.caller.run(&name, Command::Ping).await;
        *result = a.text();
        Ok(a.ret == codes::SUCCESS)
    }

    async fn get_node_vesion(
        &self,
        _c: &mut Current,
        name: String,
        version: &mut String,
        result: &mut String,
    ) -> Result<i32, ServantError> {
        let n = name.clone();
        match self.db(move |s| db::node_version(s, &n)).await {
            Ok(Some(v)) => {
                *version = v;
                Ok(0)
            }
            Ok(None) => {
                *result = format!("node '{name}' is not registered");
                Ok(codes::NODE_NOT_REGISTRY)
            }
            Err(e) => Ok(db_failed(&e, result)),
        }
    }

    async fn shutdown_node(&self, _c: &mut Current, name: String, result: &mut String) -> Result<i32, ServantError> {
        let a = self.caller.run(&name, Command::Shutdown).await;
        *result = a.text();
        Ok(a.ret)
    }

    async fn get_all_server_ids(
        &self,
        _c: &mut Current,
        result: &mut String,
    ) -> Result<Vec<Vec<String>>, ServantError> {
        match self.db(db::server_ids).await {
            Ok(v) => Ok(v),
            Err(e) => {
                db_failed(&e, result);
                Ok(Vec::new())
            }
        }
    }

    async fn get_server_state(
        &self,
        _c: &mut Current,
        application: String,
        server_name: String,
        node_name: String,
        state: &mut ServerStateDesc,
        result: &mut String,
    ) -> Result<i32, ServantError> {
        let (a, s, n) = (application.clone(), server_name.clone(), node_name.clone());
        let row = match self.db(move |sess| db::server_row(sess, &a, &s, &n)).await {
            Ok(Some(r)) => r,
            Ok(None) => {
                *result = format!(" '{application}.{server_name}_{node_name}' no config");
                return Ok(codes::LOAD_SERVICE_DESC);
            }
            Err(e) => return Ok(db_failed(&e, result)),
        };
        state.setting_state_in_reg = row.setting_state.clone();
        state.present_state_in_reg = row.present_state.clone();
        state.patch_version = row.patch_version.clone();
        state.patch_time = row.patch_time.clone();
        state.patch_user = row.patch_user.clone();
        if row.server_type == "tars_dns" {
            state.present_state_in_node = row.present_state;
            return Ok(0);
        }
        let ans = self.caller.run(&node_name, Command::State(application, server_name)).await;
        match ans.out {
            Output::State(info, text) => {
                state.process_id = info.process_id;
                state.present_state_in_node = info.server_state.name().unwrap_or_default().to_owned();
                *result = text;
            }
            other => *result = crate::node::Answer { ret: ans.ret, out: other }.text(),
        }
        Ok(ans.ret)
    }

    async fn get_group_id(
        &self,
        _c: &mut Current,
        ip: String,
        group_id: &mut i32,
        result: &mut String,
    ) -> Result<i32, ServantError> {
        use tars_registry::routes::table::{GroupRule, Groups};
        let rules = self
            .db(|s| {
                s.query(
                    "SELECT group_id, COALESCE(allow_ip_rule, '') AS r, COALESCE(group_name, '') AS n \
                     FROM t_server_group_rule ORDER BY group_id",
                    &[],
                )?
                .iter()
                .map(|r| Ok(GroupRule { group_id: r.get(0)?, allow_ip_rule: r.get(1)?, group_name: r.get(2)? }))
                .collect::<Result<Vec<_>, StoreError>>()
            })
            .await;
        match rules {
            Ok(rules) => {
                // Upstream returns the group id (-1: none) as the call's result.
                *group_id = Groups::new(&rules, &[]).group_of_ip(&ip);
                Ok(*group_id)
            }
            Err(e) => Ok(db_failed(&e, result)),
        }
    }

    async fn start_server(
        &self,
        _c: &mut Current,
        application: String,
        server_name: String,
        node_name: String,
        result: &mut String,
    ) -> Result<i32, ServantError> {
        outcome(self.caller.start_server(&application, &server_name, &node_name).await, result)
    }

    async fn stop_server(
        &self,
        _c: &mut Current,
        application: String,
        server_name: String,
        node_name: String,
        result: &mut String,
    ) -> Result<i32, ServantError> {
        outcome(self.caller.stop_server(&application, &server_name, &node_name).await, result)
    }

    async fn restart_server(
        &self,
        _c: &mut Current,
        application: String,
        server_name: String,
        node_name: String,
        result: &mut String,
    ) -> Result<i32, ServantError> {
        outcome(self.caller.restart_server(&application, &server_name, &node_name).await, result)
    }

    async fn destroy_server(
        &self,
        _c: &mut Current,
        application: String,
        server_name: String,
        node_name: String,
        result: &mut String,
    ) -> Result<i32, ServantError> {
        outcome(self.caller.destroy_server(&application, &server_name, &node_name).await, result)
    }

    async fn notify_server(
        &self,
        _c: &mut Current,
        application: String,
        server_name: String,
        node_name: String,
        command: String,
        result: &mut String,
    ) -> Result<i32, ServantError> {
        outcome(self.caller.notify_server(&application, &server_name, &node_name, &command).await, result)
    }

    async fn batch_patch(
        &self,
        _c: &mut Current,
        _req: PatchRequest,
        result: &mut String,
    ) -> Result<i32, ServantError> {
        not_supported("batchPatch", result)
    }

    async fn undeploy(
        &self,
        _c: &mut Current,
        application: String,
        server_name: String,
        node_name: String,
        _user: String,
        log: &mut String,
    ) -> Result<i32, ServantError> {
        outcome(self.caller.undeploy(&application, &server_name, &node_name).await, log)
    }

    async fn update_patch_log(
        &self,
        _c: &mut Current,
        _a: String,
        _s: String,
        _n: String,
        _p: String,
        _u: String,
        _t: String,
        _succ: bool,
    ) -> Result<i32, ServantError> {
        Ok(codes::NOT_SUPPORTED)
    }

    async fn get_patch_percent(
        &self,
        _c: &mut Current,
        application: String,
        server_name: String,
        node_name: String,
        t_patch_info: &mut PatchInfo,
    ) -> Result<i32, ServantError> {
        let a = self.caller.run(&node_name, Command::PatchPercent(application, server_name)).await;
        match a.out {
            Output::Patch(p) => *t_patch_info = p,
            Output::Text(t) => t_patch_info.s_result = t,
            _ => {}
        }
        Ok(a.ret)
    }

    async fn del_cache(
        &self,
        _c: &mut Current,
        _n: String,
        _f: String,
        _b: String,
        _k: String,
        result: &mut String,
    ) -> Result<i32, ServantError> {
        not_supported("delCache", result)
    }

    async fn load_server(
        &self,
        _c: &mut Current,
        application: String,
        server_name: String,
        node_name: String,
        result: &mut String,
    ) -> Result<i32, ServantError> {
        let a = self.caller.run(&node_name, Command::Load(application, server_name)).await;
        *result = a.text();
        Ok(a.ret)
    }

    async fn get_profile_template(
        &self,
        _c: &mut Current,
        profile_name: String,
        profile_template: &mut String,
        result_desc: &mut String,
    ) -> Result<i32, ServantError> {
        match self.db(move |s| tars_registry::servers::resolve_template(s, &profile_name)).await {
            Ok(c) => {
                *profile_template = c.to_text().unwrap_or_default();
                Ok(0)
            }
            Err(e) => Ok(db_failed(&e, result_desc)),
        }
    }

    async fn get_server_profile_template(
        &self,
        _c: &mut Current,
        application: String,
        server_name: String,
        node_name: String,
        profile_template: &mut String,
        result_desc: &mut String,
    ) -> Result<i32, ServantError> {
        let (a, s, n) = (application.clone(), server_name.clone(), node_name.clone());
        match self.db(move |sess| db::server_profile(sess, &a, &s, &n)).await {
            Ok(Some(c)) => {
                *profile_template = c.to_text().unwrap_or_default();
                Ok(0)
            }
            Ok(None) => {
                *result_desc = format!("'{application}.{server_name}_{node_name}' no config");
                Ok(codes::LOAD_SERVICE_DESC)
            }
            Err(e) => Ok(db_failed(&e, result_desc)),
        }
    }

    async fn get_client_ip(&self, current: &mut Current, s_client_ip: &mut String) -> Result<i32, ServantError> {
        *s_client_ip = current.peer_ip().unwrap_or_default();
        Ok(0)
    }

    async fn get_log_file_list(
        &self,
        _c: &mut Current,
        application: String,
        server_name: String,
        node_name: String,
        log_file_list: &mut Vec<String>,
    ) -> Result<i32, ServantError> {
        let a = self.caller.run(&node_name, Command::LogFiles(application, server_name)).await;
        if let Output::List(l) = a.out {
            *log_file_list = l;
        }
        Ok(a.ret)
    }

    async fn get_log_data(
        &self,
        _c: &mut Current,
        application: String,
        server_name: String,
        node_name: String,
        log_file: String,
        cmd: String,
        file_data: &mut String,
    ) -> Result<i32, ServantError> {
        let a = self.caller.run(&node_name, Command::LogData(application, server_name, log_file, cmd)).await;
        *file_data = a.text();
        Ok(a.ret)
    }

    async fn get_node_load(
        &self,
        _c: &mut Current,
        application: String,
        server_name: String,
        node_name: String,
        pid: i32,
        file_data: &mut String,
    ) -> Result<i32, ServantError> {
        let a = self.caller.run(&node_name, Command::NodeLoad(application, server_name, pid)).await;
        *file_data = a.text();
        Ok(a.ret)
    }

    async fn delete_patch_file(
        &self,
        _c: &mut Current,
        _a: String,
        _s: String,
        _f: String,
    ) -> Result<i32, ServantError> {
        Ok(codes::NOT_SUPPORTED)
    }

    async fn get_servers(&self, _c: &mut Current, servers: &mut Vec<FrameworkServer>) -> Result<i32, ServantError> {
        match self.db(db::framework_servers).await {
            Ok(v) => {
                *servers = v;
                Ok(0)
            }
            Err(e) => Ok(db_failed(&e, &mut String::new())),
        }
    }

    async fn check_server(&self, _c: &mut Current, server: FrameworkServer) -> Result<i32, ServantError> {
        if server.obj_name.trim().is_empty() {
            let a = self.caller.run(&server.node_name, Command::Ping).await;
            return Ok(a.ret);
        }
        let Ok(proxy) = self.caller.comm().proxy(&server.obj_name) else { return Ok(codes::UNKNOWN) };
        let servant = server.obj_name.split('@').next().unwrap_or_default().trim().to_owned();
        let opts = CallOptions { timeout_ms: 3000, ..CallOptions::default() };
        match tars_proto::rpc::call(&proxy, &servant, PING_FUNC, tars_proto::Bytes::new(), &opts, false).await {
            Ok(_) => Ok(0),
            Err(e) => {
                tracing::debug!(obj = %server.obj_name, error = %e, "adminreg: checkServer");
                Ok(codes::UNKNOWN)
            }
        }
    }

    async fn get_version(&self, _c: &mut Current, version: &mut String) -> Result<i32, ServantError> {
        *version = crate::VERSION.to_owned();
        Ok(0)
    }

    async fn update_server_flow_state(
        &self,
        _c: &mut Current,
        application: String,
        server_name: String,
        node_list: Vec<String>,
        b_active: bool,
    ) -> Result<i32, ServantError> {
        match self.db(move |s| db::set_flow_state(s, &application, &server_name, &node_list, b_active)).await {
            Ok(_) => Ok(0),
            Err(e) => Ok(db_failed(&e, &mut String::new())),
        }
    }

    async fn force_docker_login(
        &self,
        _c: &mut Current,
        _n: String,
        result: &mut Vec<String>,
    ) -> Result<i32, ServantError> {
        *result = vec![format!("forceDockerLogin: {}", codes::NOT_SUPPORTED_TEXT)];
        Ok(codes::NOT_SUPPORTED)
    }

    async fn check_docker_registry(
        &self,
        _c: &mut Current,
        _r: String,
        _u: String,
        _p: String,
        result: &mut String,
    ) -> Result<i32, ServantError> {
        not_supported("checkDockerRegistry", result)
    }

    async fn docker_pull(&self, _c: &mut Current, _id: String) -> Result<i32, ServantError> {
        Ok(codes::NOT_SUPPORTED)
    }

    async fn get_node_list(
        &self,
        _c: &mut Current,
        node_names: Vec<String>,
        heartbeats: &mut BTreeMap<String, String>,
    ) -> Result<i32, ServantError> {
        let links = &self.caller.shared.links;
        for n in node_names {
            let beat = links.last_report(&n).unwrap_or_default();
            heartbeats.insert(n, beat);
        }
        Ok(0)
    }

    async fn uninstall_server(
        &self,
        _c: &mut Current,
        application: String,
        server_name: String,
        node_name: String,
        result: &mut String,
    ) -> Result<i32, ServantError> {
        outcome(self.caller.uninstall(&application, &server_name, &node_name).await, result)
    }

    async fn has_server(
        &self,
        _c: &mut Current,
        application: String,
        server_name: String,
        has: &mut bool,
    ) -> Result<i32, ServantError> {
        match self.db(move |s| db::has_server(s, &application, &server_name)).await {
            Ok(h) => {
                *has = h;
                Ok(0)
            }
            Err(e) => Ok(db_failed(&e, &mut String::new())),
        }
    }

    async fn insert_server_conf(&self, _c: &mut Current, conf: ServerConf, replace: bool) -> Result<i32, ServantError> {
        match self.db(move |s| db::insert_server_conf(s, &conf, replace)).await {
            Ok(_) => Ok(0),
            Err(e) => Ok(db_failed(&e, &mut String::new())),
        }
    }

    async fn insert_adapter_conf(
        &self,
        _c: &mut Current,
        s_application: String,
        server_name: String,
        node_name: String,
        conf: AdapterConf,
        replace: bool,
    ) -> Result<i32, ServantError> {
        match self
            .db(move |s| db::insert_adapter_conf(s, &s_application, &server_name, &node_name, &conf, replace))
            .await
        {
            Ok(_) => Ok(0),
            Err(e) => Ok(db_failed(&e, &mut String::new())),
        }
    }

    async fn insert_config_file(
        &self,
        _c: &mut Current,
        s_full_server_name: String,
        file_name: String,
        content: String,
        node_name: String,
        level: i32,
        replace: bool,
    ) -> Result<i32, ServantError> {
        match self
            .db(move |s| {
                db::insert_config_file(s, &s_full_server_name, &file_name, &content, &node_name, level, replace)
            })
            .await
        {
            Ok(_) => Ok(0),
            Err(e) => Ok(db_failed(&e, &mut String::new())),
        }
    }

    async fn get_config_file_id(
        &self,
        _c: &mut Current,
        s_full_server_name: String,
        file_name: String,
        node_name: String,
        level: i32,
        config_id: &mut i32,
    ) -> Result<i32, ServantError> {
        match self.db(move |s| db::config_file_id(s, &s_full_server_name, &file_name, &node_name, level)).await {
            Ok(Some(id)) => {
                *config_id = i32::try_from(id).unwrap_or(-1);
                Ok(0)
            }
            Ok(None) => Ok(codes::UNKNOWN),
            Err(e) => Ok(db_failed(&e, &mut String::new())),
        }
    }

    async fn insert_history_config_file(
        &self,
        _c: &mut Current,
        config_id: i32,
        reason: String,
        content: String,
        replace: bool,
    ) -> Result<i32, ServantError> {
        match self.db(move |s| db::insert_history(s, config_id, &reason, &content, replace)).await {
            Ok(_) => Ok(0),
            Err(e) => Ok(db_failed(&e, &mut String::new())),
        }
    }

    async fn register_plugin(&self, _c: &mut Current, _conf: PluginConf) -> Result<i32, ServantError> {
        Ok(codes::NOT_SUPPORTED)
    }

    async fn has_dev_auth(
        &self,
        _c: &mut Current,
        _a: String,
        _s: String,
        _u: String,
        has: &mut bool,
    ) -> Result<i32, ServantError> {
        *has = false;
        Ok(codes::NOT_SUPPORTED)
    }

    async fn has_ope_auth(
        &self,
        _c: &mut Current,
        _a: String,
        _s: String,
        _u: String,
        has: &mut bool,
    ) -> Result<i32, ServantError> {
        *has = false;
        Ok(codes::NOT_SUPPORTED)
    }

    async fn has_admin_auth(&self, _c: &mut Current, _u: String, has: &mut bool) -> Result<i32, ServantError> {
        *has = false;
        Ok(codes::NOT_SUPPORTED)
    }

    async fn check_ticket(&self, _c: &mut Current, _t: String, uid: &mut String) -> Result<i32, ServantError> {
        uid.clear();
        Ok(codes::NOT_SUPPORTED)
    }

    async fn get_server_tree(&self, _c: &mut Current, tree: &mut Vec<ServerTree>) -> Result<i32, ServantError> {
        let rows = self
            .db(|s| {
                s.query(
                    "SELECT DISTINCT application, server_name, enable_set, set_name, set_area, set_group \
                     FROM t_server_conf ORDER BY application, server_name",
                    &[],
                )
            })
            .await;
        let t = |r: &tars_sql::Row, i: usize| r.get::<Option<String>>(i).ok().flatten().unwrap_or_default();
        match rows {
            Ok(rows) => {
                *tree = rows
                    .iter()
                    .map(|r| ServerTree {
                        application: t(r, 0),
                        server_name: t(r, 1),
                        enable_set: t(r, 2),
                        set_name: t(r, 3),
                        set_area: t(r, 4),
                        set_group: t(r, 5),
                    })
                    .collect();
                Ok(0)
            }
            Err(e) => Ok(db_failed(&e, &mut String::new())),
        }
    }

    async fn get_patch_package(
        &self,
        _c: &mut Current,
        _a: String,
        _s: String,
        _t: i32,
        _d: i32,
        _pack: &mut PatchPackage,
    ) -> Result<i32, ServantError> {
        Ok(codes::NOT_SUPPORTED)
    }

    async fn get_server_name_list(
        &self,
        _c: &mut Current,
        _names: Vec<ApplicationServerName>,
        _list: &mut Vec<BTreeMap<String, String>>,
    ) -> Result<i32, ServantError> {
        Ok(codes::NOT_SUPPORTED)
    }
}
