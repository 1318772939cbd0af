//! `db_tars`: the framework's configuration and state database, which TarsWeb reads directly.
//!
//! Column names, types, defaults and keys follow upstream's install schema so that TarsWeb and
//! the C++ services work on a database we created, and we work on one they created. Version 1 is
//! upstream's base schema; the columns that upstream adds through its upgrade list
//! (`tars_upgrade.conf`) come in version 2, and tables or columns that only other upstream
//! components create (TarsWeb's notify model, K8STARS' metrics port) in version 3.

use super::ColType::*;
use super::{col, Column, Index, Table};
use crate::migrate::{Migration, Op, SchemaSet};

const SETTING: &[&str] = &["active", "inactive"];
const PRESENT: &[&str] = &["active", "inactive", "activating", "deactivating", "destroyed"];
const SERVER_TYPE: &[&str] = &["tars_cpp", "not_tars", "tars_java", "tars_nodejs", "tars_php", "tars_go"];

fn id() -> Column {
    col("id", Int(11)).auto_increment()
}

fn adapter_conf() -> Table {
    Table::new(
        "t_adapter_conf",
        &[
            id(),
            col("application", Varchar(50)).default_str(""),
            col("server_name", Varchar(128)).default_str(""),
            col("node_name", Varchar(50)).default_str(""),
            col("adapter_name", Varchar(100)).default_str(""),
            col("registry_timestamp", Timestamp).touch_on_update(),
            col("thread_num", Int(11)).default_str("1"),
            col("endpoint", Varchar(128)).default_str(""),
            col("max_connections", Int(11)).default_str("1000"),
            col("allow_ip", Varchar(255)).not_null().default_str(""),
            col("servant", Varchar(128)).default_str(""),
            col("queuecap", Int(11)).default_null(),
            col("queuetimeout", Int(11)).default_null(),
            col("posttime", DateTime).default_null(),
            col("lastuser", Varchar(30)).default_null(),
            col("protocol", Varchar(64)).default_str("tars"),
            col("handlegroup", Varchar(64)).default_str(""),
        ],
        &[
            Index::primary(&["id"]),
            Index::unique("application", &["application", "server_name", "node_name", "adapter_name"]),
            Index::key("adapter_conf_endpoint_index", &["endpoint"]),
            Index::key("index_regtime_1", &["registry_timestamp"]),
        ],
    )
}

fn config_files() -> Table {
    Table::new(
        "t_config_files",
        &[
            id(),
            col("server_name", Varchar(128)).default_str(""),
            col("set_name", Varchar(16)).not_null().default_str(""),
            col("set_area", Varchar(16)).not_null().default_str(""),
            col("set_group", Varchar(16)).not_null().default_str(""),
            col("host", Varchar(50)).not_null().default_str(""),
            col("filename", Varchar(128)).default_null(),
            col("config", LongText),
            col("posttime", DateTime).default_null(),
            col("lastuser", Varchar(50)).default_null(),
            col("level", Int(11)).default_str("2"),
            col("config_flag", Int(10)).not_null().default_str("0"),
        ],
        &[
            Index::primary(&["id"]),
            Index::unique(
                "application",
                &["server_name", "filename", "host", "level", "set_name", "set_area", "set_group"],
            ),
        ],
    )
}

fn config_history_files() -> Table {
    Table::new(
        "t_config_history_files",
        &[
            id(),
            col("configid", Int(11)).default_null(),
            col("reason", Varchar(128)).default_str(""),
            col("reason_select", Varchar(20)).not_null().default_str(""),
            col("content", LongText),
            col("posttime", DateTime).default_null(),
            col("lastuser", Varchar(50)).default_null(),
        ],
        &[Index::primary(&["id"])],
    )
}

fn config_references() -> Table {
    Table::new(
        "t_config_references",
        &[id(), col("config_id", Int(11)).default_null(), col("reference_id", Int(11)).default_null()],
        &[Index::primary(&["id"]), Index::unique("config_id", &["config_id", "reference_id"])],
    )
}

fn group_priority() -> Table {
    Table::new(
        "t_group_priority",
        &[
            id(),
            col("name", Varchar(128)).default_str(""),
            col("group_list", Text),
            col("list_order", Int(11)).default_str("0"),
            col("station", Varchar(128)).not_null().default_str(""),
        ],
        &[Index::primary(&["id"])],
    )
}

fn machine_tars_info() -> Table {
    Table::new(
        "t_machine_tars_info",
        &[
            id(),
            col("application", Varchar(100)).not_null().default_str(""),
            col("server_name", Varchar(100)).not_null().default_str(""),
            col("app_server_name", Varchar(50)).not_null().default_str(""),
            col("node_name", Varchar(50)).not_null().default_str(""),
            col("location", Varchar(255)).not_null().default_str(""),
            col("machine_type", Varchar(50)).not_null().default_str(""),
            col("update_time", DateTime).default_null(),
            col("update_person", Varchar(64)).not_null().default_str(""),
        ],
        &[
            Index::primary(&["application", "server_name", "node_name"]),
            Index::unique("id", &["id"]),
            Index::key("tmachine_i_2", &["node_name", "server_name"]),
        ],
    )
}

fn node_info() -> Table {
    Table::new(
        "t_node_info",
        &[
            id(),
            col("node_name", Varchar(128)).default_str(""),
            col("node_obj", Varchar(128)).default_str(""),
            col("endpoint_ip", Varchar(50)).default_str(""),
            col("endpoint_port", Int(11)).default_str("0"),
            col("data_dir", Varchar(128)).default_str(""),
            col("load_avg1", Float).default_str("0"),
            col("load_avg5", Float).default_str("0"),
            col("load_avg15", Float).default_str("0"),
            col("last_reg_time", DateTime).default_null(),
            col("last_heartbeat", DateTime).default_null(),
            col("setting_state", Enum(SETTING)).default_str("inactive"),
            col("present_state", Enum(SETTING)).default_str("inactive"),
            col("tars_version", Varchar(128)).not_null().default_str(""),
            col("template_name", Varchar(128)).not_null().default_str(""),
            col("modify_time", Timestamp).touch_on_update(),
            col("group_id", Int(11)).default_str("-1"),
            col("label", Text),
        ],
        &[
            Index::primary(&["id"]),
            Index::unique("node_name", &["node_name"]),
            Index::key("indx_node_info_1", &["last_heartbeat"]),
        ],
    )
}

fn profile_template() -> Table {
    Table::new(
        "t_profile_template",
        &[
            id(),
            col("template_name", Varchar(128)).default_str(""),
            col("parents_name", Varchar(128)).default_str(""),
            col("profile", Text).not_null(),
            col("posttime", DateTime).default_null(),
            col("lastuser", Varchar(30)).default_null(),
        ],
        &[Index::primary(&["id"]), Index::unique("template_name", &["template_name"])],
    )
}

fn registry_info() -> Table {
    Table::new(
        "t_registry_info",
        &[
            id(),
            col("locator_id", Varchar(128)).not_null().default_str(""),
            col("servant", Varchar(128)).not_null().default_str(""),
            col("endpoint", Varchar(128)).not_null().default_str(""),
            col("last_heartbeat", DateTime).default_null(),
            col("present_state", Enum(SETTING)).default_str("inactive"),
            col("tars_version", Varchar(128)).not_null().default_str(""),
            col("modify_time", Timestamp).touch_on_update(),
            col("enable_group", Char(1)).default_str("N"),
        ],
        &[Index::primary(&["id"]), Index::unique("locator_id", &["locator_id", "servant"])],
    )
}

/// `t_server_conf` as upstream's base schema has it, before the upgrade columns.
fn server_conf() -> Table {
    Table::new(
        "t_server_conf",
        &[
            id(),
            col("application", Varchar(128)).default_str(""),
            col("server_name", Varchar(128)).default_str(""),
            col("node_group", Varchar(50)).not_null().default_str(""),
            col("node_name", Varchar(50)).not_null().default_str(""),
            col("registry_timestamp", Timestamp).touch_on_update(),
            col("base_path", Varchar(128)).default_str(""),
            col("exe_path", Varchar(128)).not_null().default_str(""),
            col("template_name", Varchar(128)).not_null().default_str(""),
            col("bak_flag", Int(11)).not_null().default_str("0"),
            col("setting_state", Enum(SETTING)).not_null().default_str("inactive"),
            col("present_state", Enum(PRESENT)).not_null().default_str("inactive"),
            col("process_id", Int(11)).not_null().default_str("0"),
            col("patch_version", Varchar(128)).not_null().default_str(""),
            col("patch_time", DateTime).default_null(),
            col("patch_user", Varchar(128)).not_null().default_str(""),
            col("tars_version", Varchar(128)).not_null().default_str(""),
            col("posttime", DateTime).default_null(),
            col("lastuser", Varchar(30)).default_null(),
            col("server_type", Enum(SERVER_TYPE)).not_null().default_str("tars_cpp"),
            col("start_script_path", Varchar(128)).default_null(),
            col("stop_script_path", Varchar(128)).default_null(),
            col("monitor_script_path", Varchar(128)).default_null(),
            col("enable_group", Char(1)).default_str("N"),
            col("enable_set", Char(1)).not_null().default_str("N"),
            col("set_name", Varchar(16)).default_null(),
            col("set_area", Varchar(16)).default_null(),
            col("set_group", Varchar(64)).default_null(),
            col("ip_group_name", Varchar(64)).default_null(),
            col("profile", Text),
            col("source", Text),
            col("config_center_port", Int(11)).not_null().default_str("0"),
            col("async_thread_num", Int(11)).default_str("3"),
            col("server_important_type", Enum(&["0", "1", "2", "3", "4", "5"])).default_str("0"),
            col("grid_flag", Varchar(16)).not_null().default_str("NORMAL"),
            col("flow_state", Enum(SETTING)).not_null().default_str("active"),
        ],
        &[
            Index::primary(&["id"]),
            Index::unique("application", &["application", "server_name", "node_name"]),
            Index::key("node_name", &["node_name"]),
            Index::key("index_i_3", &["setting_state", "server_type", "application", "server_name", "node_name"]),
            Index::key("index_regtime", &["registry_timestamp"]),
        ],
    )
}

/// `t_base_image` before the upgrade added `result` (and the registry started using `sha`).
fn base_image() -> Table {
    Table::new(
        "t_base_image",
        &[
            id(),
            col("image", Varchar(255)).not_null().default_str(""),
            col("registryId", Int(11)).not_null().default_str("0"),
            col("remark", Varchar(255)).not_null().default_str(""),
            col("create_time", DateTime).default_null(),
            col("update_time", DateTime).default_null(),
        ],
        &[Index::primary(&["id"])],
    )
}

fn framework_key() -> Table {
    Table::new(
        "t_framework_key",
        &[
            id(),
            col("key", Varchar(16)).not_null().default_str("key"),
            col("cuid", Varchar(128)).not_null().default_str(""),
            col("pri_key", Text),
            col("autologin", Int(11)).default_str("1"),
            col("update_time", DateTime).default_null(),
        ],
        &[Index::primary(&["id"]), Index::key("idx_key", &["key"])],
    )
}

fn docker_registry() -> Table {
    Table::new(
        "t_docker_registry",
        &[
            id(),
            col("registry", Varchar(255)).not_null().default_str(""),
            col("username", Varchar(64)).not_null().default_str(""),
            col("password", Varchar(128)).not_null().default_str(""),
            col("remark", Varchar(255)).not_null().default_str(""),
            col("create_time", DateTime).default_null(),
            col("update_time", DateTime).default_null(),
        ],
        &[Index::primary(&["id"])],
    )
}

fn server_group_relation() -> Table {
    Table::new(
        "t_server_group_relation",
        &[
            id(),
            col("application", Varchar(90)).not_null().default_str(""),
            col("server_group", Varchar(50)).default_str(""),
            col("server_name", Varchar(50)).default_str(""),
            col("create_time", DateTime).default_null(),
            col("creator", Varchar(30)).default_str(""),
        ],
        &[Index::primary(&["id"]), Index::key("f_unique", &["application", "server_group", "server_name"])],
    )
}

fn server_group_rule() -> Table {
    Table::new(
        "t_server_group_rule",
        &[
            col("group_id", UInt(10)).auto_increment(),
            col("ip_order", Enum(&["allow_denny", "denny_allow"])).not_null().default_str("denny_allow"),
            col("allow_ip_rule", Text),
            col("denny_ip_rule", Text),
            col("lastuser", Varchar(50)).default_null(),
            col("modify_time", Timestamp).touch_on_update(),
            col("group_name", Varchar(128)).default_str(""),
            col("group_name_cn", Varchar(128)).default_str(""),
        ],
        &[Index::primary(&["group_id"]), Index::unique("group_name_index", &["group_name"])],
    )
}

fn server_patchs() -> Table {
    Table::new(
        "t_server_patchs",
        &[
            id(),
            col("server", Varchar(50)).default_null(),
            col("version", Varchar(1000)).default_str(""),
            col("tgz", Text),
            col("update_text", Varchar(255)).default_null(),
            col("reason_select", Varchar(255)).default_null(),
            col("is_server_group", TinyInt(2)).not_null().default_str("0"),
            col("publish", TinyInt(3)).default_null(),
            col("publish_time", DateTime).default_null(),
            col("publish_user", Varchar(30)).default_null(),
            col("upload_time", DateTime).default_null(),
            col("upload_user", Varchar(30)).default_null(),
            col("posttime", DateTime).default_null(),
            col("lastuser", Varchar(30)).default_null(),
            col("is_release_version", Enum(&["true", "false"])).default_str("true"),
            col("package_type", TinyInt(4)).default_str("0"),
            col("group_id", Varchar(64)).not_null().default_str(""),
            col("default_version", TinyInt(4)).default_str("0"),
            col("md5", Varchar(40)).default_null(),
            col("svn_version", Varchar(50)).default_null(),
        ],
        &[
            Index::primary(&["id"]),
            Index::key("server_patchs_server_index", &["server"]),
            Index::key("index_patchs_i1", &["server"]),
            Index::key("index_i_2", &["tgz(50)"]),
        ],
    )
}

fn task() -> Table {
    Table::new(
        "t_task",
        &[
            col("id", UInt(11)).auto_increment(),
            col("task_no", Varchar(40)).default_null(),
            col("serial", TinyInt(1)).default_null(),
            col("user_name", Varchar(20)).default_null(),
            col("create_time", Timestamp).default_null(),
        ],
        &[Index::primary(&["id"]), Index::unique("f_task", &["task_no"])],
    )
}

fn task_item() -> Table {
    Table::new(
        "t_task_item",
        &[
            col("id", UInt(11)).auto_increment(),
            col("task_no", Varchar(40)).default_null(),
            col("item_no", Varchar(40)).default_null(),
            col("application", Varchar(30)).default_null(),
            col("server_name", Varchar(50)).default_null(),
            col("node_name", Varchar(50)).default_null(),
            col("command", Varchar(20)).default_null(),
            col("parameters", Text),
            col("start_time", DateTime).default_null(),
            col("end_time", DateTime).default_null(),
            col("status", Int(11)).default_null(),
            col("set_name", Varchar(20)).default_null(),
            col("log", Text),
        ],
        &[
            Index::primary(&["id"]),
            Index::unique("f_uniq", &["item_no", "task_no"]),
            Index::key("f_task_no", &["task_no"]),
            Index::key("f_index", &["application", "server_name", "command"]),
        ],
    )
}

fn web_release_conf() -> Table {
    Table::new(
        "t_web_release_conf",
        &[
            id(),
            col("server", Varchar(100)).not_null().default_str(""),
            col("path", Varchar(200)).not_null().default_str(""),
            col("server_dir", Varchar(200)).not_null().default_str(""),
            col("is_server_group", TinyInt(2)).not_null().default_str("0"),
            col("enable_batch", TinyInt(2)).not_null().default_str("0"),
            col("user", Varchar(200)).not_null().default_str("*"),
            col("posttime", DateTime).default_null(),
            col("lastuser", Varchar(60)).default_null(),
        ],
        &[
            Index::primary(&["id"]),
            Index::unique("server", &["server", "is_server_group"]),
            Index::key("web_release_conf_server_index", &["server"]),
        ],
    )
}

/// TarsWeb's model of the notify table; upstream creates it only from TarsWeb.
fn server_notifys() -> Table {
    Table::new(
        "t_server_notifys",
        &[
            id(),
            col("application", Varchar(128)).default_str(""),
            col("server_name", Varchar(128)).default_null(),
            col("container_name", Varchar(128)).default_str(""),
            col("node_name", Varchar(128)).not_null().default_str(""),
            col("set_name", Varchar(16)).default_null(),
            col("set_area", Varchar(16)).default_null(),
            col("set_group", Varchar(16)).default_null(),
            col("server_id", Varchar(100)).default_null(),
            col("thread_id", Varchar(20)).default_null(),
            col("command", Varchar(50)).default_null(),
            col("result", Text),
            col("notifytime", DateTime).default_null(),
        ],
        &[
            Index::primary(&["id"]),
            Index::key("index_name", &["server_name"]),
            Index::key("servernoticetime_i_1", &["notifytime"]),
            Index::key("indx_server_id", &["server_id"]),
            Index::key(
                "query_index",
                &["application", "server_name", "node_name", "set_name", "set_area", "set_group"],
            ),
        ],
    )
}

/// Every migration of `db_tars`, oldest first.
pub fn schema() -> SchemaSet {
    SchemaSet {
        database: "db_tars",
        migrations: vec![
            Migration {
                version: 1,
                name: "TARS base schema",
                ops: [
                    adapter_conf(),
                    config_files(),
                    config_history_files(),
                    config_references(),
                    group_priority(),
                    machine_tars_info(),
                    node_info(),
                    profile_template(),
                    registry_info(),
                    server_conf(),
                    base_image(),
                    framework_key(),
                    docker_registry(),
                    server_group_relation(),
                    server_group_rule(),
                    server_patchs(),
                    task(),
                    task_item(),
                    web_release_conf(),
                ]
                .into_iter()
                .map(Op::CreateTable)
                .collect(),
            },
            Migration {
                version: 2,
                name: "TARS upgrade: container columns",
                ops: vec![
                    Op::AddColumn {
                        table: "t_server_conf",
                        column: col("run_type", Varchar(32)).not_null().default_str(""),
                    },
                    Op::AddColumn { table: "t_server_conf", column: col("base_image_id", Int(11)).default_str("0") },
                    Op::AddColumn { table: "t_server_conf", column: col("sha", Varchar(255)).default_str("") },
                    Op::AddColumn { table: "t_base_image", column: col("sha", Varchar(255)).default_str("") },
                    Op::AddColumn { table: "t_base_image", column: col("result", Text) },
                ],
            },
            Migration {
                version: 3,
                name: "notify table and container metrics port",
                ops: vec![
                    Op::CreateTable(server_notifys()),
                    Op::AddColumn { table: "t_server_conf", column: col("metrics_port", Int(11)).default_str("0") },
                ],
            },
        ],
    }
}
