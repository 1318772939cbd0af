//! Migrations on both backends: fresh install, re-run, upgrade from an older version with data
//! kept, adoption of a database created by upstream's scripts, and the MySQL column behaviours
//! the embedded backend emulates.
#![allow(clippy::unwrap_used)]

mod common;

use common::TestDb;
use tars_sql::migrate::{self, VERSION_TABLE};
use tars_sql::schema::{db_tars, monitor};
use tars_sql::{params, Dialect, Store};

fn columns(store: &Store, table: &'static str) -> Vec<String> {
    store.run_blocking(move |s| s.columns(table)).unwrap()
}

fn count(store: &Store, sql: &'static str) -> i64 {
    store.run_blocking(move |s| s.query(sql, &[])).unwrap()[0].get(0).unwrap()
}

fn fresh_install(b: TestDb) {
    let store = b.store.clone();
    let set = db_tars::schema();
    let report = store.migrate(set.clone()).unwrap();
    assert_eq!(report.applied, vec![1, 2, 3]);
    assert_eq!(report.version, set.latest());
    // Every table holds exactly the model's columns, in order.
    for t in set.tables_at(set.latest()) {
        let name: &'static str = Box::leak(t.name.clone().into_boxed_str());
        let want: Vec<String> = t.columns.iter().map(|c| c.name.to_owned()).collect();
        assert_eq!(columns(&store, name), want, "columns of {name}");
    }
    assert_eq!(count(&store, "SELECT COUNT(*) FROM t_schema_version"), 3);
    for set in [monitor::stat_schema(), monitor::property_schema()] {
        let r = store.migrate(set).unwrap();
        assert_eq!(r.applied, vec![1, 2]);
    }
    assert_eq!(columns(&store, "t_ecstatus"), ["id", "appname", "action", "checkint", "lasttime"]);
    assert_eq!(columns(&store, "t_tarsrs_batch"), ["batch_id", "rows_written", "written_at"]);
}

fn rerun_changes_nothing(b: TestDb) {
    let store = b.store.clone();
    store.migrate(db_tars::schema()).unwrap();
    store
        .run_blocking(|s| {
            s.exec(
                "INSERT INTO t_server_conf (application, server_name, node_name) VALUES (?, ?, ?)",
                &params!["Test", "HelloServer", "10.0.0.1"],
            )
        })
        .unwrap();
    let again = store.migrate(db_tars::schema()).unwrap();
    assert!(again.applied.is_empty(), "a re-run applied {:?}", again.applied);
    assert_eq!(again.version, 3);
    assert_eq!(count(&store, "SELECT COUNT(*) FROM t_server_conf"), 1);
    assert_eq!(count(&store, "SELECT COUNT(*) FROM t_schema_version"), 3);
}

fn upgrade_keeps_data(b: TestDb) {
    let store = b.store.clone();
    let set = db_tars::schema();
    let old = store.run_blocking({
        let set = set.clone();
        move |s| migrate::migrate_to(s, &set, 1)
    });
    assert_eq!(old.unwrap().version, 1);
    assert!(!columns(&store, "t_server_conf").contains(&"run_type".to_owned()));
    store
        .run_blocking(|s| {
            s.exec(
                "INSERT INTO t_server_conf (application, server_name, node_name, setting_state, profile) VALUES (?, ?, ?, ?, ?)",
                &params!["Test", "HelloServer", "10.0.0.1", "active", "<tars>x=1</tars>"],
            )?;
            s.exec("INSERT INTO t_base_image (image, registryId) VALUES (?, ?)", &params!["tars/cppbase", 7])
        })
        .unwrap();
    let report = store.migrate(set).unwrap();
    assert_eq!(report.applied, vec![2, 3]);
    let rows = store
        .run_blocking(|s| {
            s.query(
                "SELECT application, server_name, setting_state, profile, run_type, base_image_id, metrics_port FROM t_server_conf",
                &[],
            )
        })
        .unwrap();
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    assert_eq!(r.get::<String>(0).unwrap(), "Test");
    assert_eq!(r.get::<String>(2).unwrap(), "active");
    assert_eq!(r.get::<String>(3).unwrap(), "<tars>x=1</tars>");
    assert_eq!(r.get::<String>(4).unwrap(), "", "run_type default");
    assert_eq!(r.get::<i64>(5).unwrap(), 0, "base_image_id default");
    assert_eq!(r.get::<i64>(6).unwrap(), 0, "metrics_port default");
    let img = store.run_blocking(|s| s.query("SELECT image, registryId, sha, result FROM t_base_image", &[])).unwrap();
    assert_eq!(img[0].get::<String>(0).unwrap(), "tars/cppbase");
    assert_eq!(img[0].get::<i64>(1).unwrap(), 7);
    assert_eq!(img[0].get::<Option<String>>(3).unwrap(), None);
    assert!(columns(&store, "t_server_notifys").contains(&"notifytime".to_owned()));
}

/// A database made by upstream's install (no version table, an older `t_node_info` without
/// `label`, data in it) is adopted: nothing dropped, the missing column added.
fn adopts_upstream_database(b: TestDb) {
    let store = b.store.clone();
    let legacy = match store.dialect() {
        Dialect::Mysql => {
            "CREATE TABLE t_node_info (id int(11) NOT NULL AUTO_INCREMENT, node_name varchar(128) DEFAULT '', \
             node_obj varchar(128) DEFAULT '', endpoint_ip varchar(50) DEFAULT '', PRIMARY KEY (id), \
             UNIQUE KEY node_name (node_name)) ENGINE=InnoDB DEFAULT CHARSET=utf8"
        }
        Dialect::Sqlite => {
            "CREATE TABLE t_node_info (id INTEGER PRIMARY KEY AUTOINCREMENT, node_name TEXT DEFAULT '', \
             node_obj TEXT DEFAULT '', endpoint_ip TEXT DEFAULT '')"
        }
    };
    store.run_blocking(move |s| s.exec_script(legacy)).unwrap();
    store
        .run_blocking(|s| {
            s.exec("INSERT INTO t_node_info (node_name, endpoint_ip) VALUES (?, ?)", &params!["node-a", "10.1.1.1"])
        })
        .unwrap();
    let report = store.migrate(db_tars::schema()).unwrap();
    assert_eq!(report.applied, vec![1, 2, 3]);
    let cols = columns(&store, "t_node_info");
    assert!(cols.contains(&"label".to_owned()) && cols.contains(&"last_heartbeat".to_owned()), "{cols:?}");
    let rows = store.run_blocking(|s| s.query("SELECT node_name, endpoint_ip, label FROM t_node_info", &[])).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<String>(0).unwrap(), "node-a");
    assert_eq!(rows[0].get::<String>(1).unwrap(), "10.1.1.1");
}

/// An unknown newer version recorded by a later build is left alone, not an error.
fn newer_versions_are_left_alone(b: TestDb) {
    let store = b.store.clone();
    store.migrate(db_tars::schema()).unwrap();
    let sql = format!("INSERT INTO {VERSION_TABLE} (schema_set, version, name, applied_by) VALUES (?, ?, ?, ?)");
    store.run_blocking(move |s| s.exec(&sql, &params!["db_tars", 99, "from the future", "tars-rs 9"])).unwrap();
    let r = store.migrate(db_tars::schema()).unwrap();
    assert!(r.applied.is_empty());
    assert_eq!(r.unknown, vec![99]);
    assert_eq!(r.version, 99);
}

/// `registry_timestamp` moves when another column of the row changes: the registry's
/// incremental reload depends on it (native in MySQL, a trigger in SQLite).
fn touch_on_update(b: TestDb) {
    let store = b.store.clone();
    store.migrate(db_tars::schema()).unwrap();
    store
        .run_blocking(|s| {
            s.exec(
                "INSERT INTO t_server_conf (application, server_name, node_name, registry_timestamp) VALUES (?, ?, ?, ?)",
                &params!["A", "S", "n1", "2001-02-03 04:05:06"],
            )?;
            s.exec("UPDATE t_server_conf SET present_state = ? WHERE node_name = ?", &params!["active", "n1"])
        })
        .unwrap();
    let rows =
        store.run_blocking(|s| s.query("SELECT registry_timestamp, present_state FROM t_server_conf", &[])).unwrap();
    let ts: String = rows[0].get(0).unwrap();
    assert!(ts.as_str() > "2020-01-01", "registry_timestamp not bumped: {ts}");
    assert_eq!(rows[0].get::<String>(1).unwrap(), "active");
    // An explicit value in the UPDATE wins, as in MySQL.
    store
        .run_blocking(|s| {
            s.exec(
                "UPDATE t_server_conf SET registry_timestamp = ? WHERE node_name = ?",
                &params!["2002-01-01 00:00:00", "n1"],
            )
        })
        .unwrap();
    let rows = store.run_blocking(|s| s.query("SELECT registry_timestamp FROM t_server_conf", &[])).unwrap();
    assert_eq!(rows[0].get::<String>(0).unwrap(), "2002-01-01 00:00:00");
}

/// Keys behave as upstream's: the unique key of t_server_conf refuses a duplicate, the
/// auto-increment id that is not the primary key (t_machine_tars_info) is still filled, and an
/// enum refuses a value outside its list.
fn keys_and_enums(b: TestDb) {
    let store = b.store.clone();
    store.migrate(db_tars::schema()).unwrap();
    let ins = "INSERT INTO t_server_conf (application, server_name, node_name) VALUES (?, ?, ?)";
    store.run_blocking(move |s| s.exec(ins, &params!["A", "S", "n1"])).unwrap();
    let dup = store.run_blocking(move |s| s.exec(ins, &params!["A", "S", "n1"])).unwrap_err();
    assert!(matches!(dup, tars_sql::StoreError::Query { .. }), "{dup:?}");
    assert!(!dup.is_unavailable());
    store
        .run_blocking(|s| {
            s.exec("INSERT INTO t_machine_tars_info (application, server_name, node_name) VALUES ('A','S','n1')", &[])?;
            s.exec("INSERT INTO t_machine_tars_info (application, server_name, node_name) VALUES ('A','S','n2')", &[])
        })
        .unwrap();
    let ids = store.run_blocking(|s| s.query("SELECT id FROM t_machine_tars_info ORDER BY id", &[])).unwrap();
    assert_eq!(ids.iter().map(|r| r.get::<i64>(0).unwrap()).collect::<Vec<_>>(), [1, 2]);
    if store.dialect() == Dialect::Sqlite {
        // MySQL's non-strict modes coerce a bad enum to ''; strict mode and SQLite refuse it.
        let bad = store
            .run_blocking(|s| s.exec("UPDATE t_server_conf SET setting_state = 'paused' WHERE node_name = 'n1'", &[]))
            .unwrap_err();
        assert!(matches!(bad, tars_sql::StoreError::Query { .. }), "{bad:?}");
    }
}

on_both_backends! {
    fresh_install => super::fresh_install;
    rerun_changes_nothing => super::rerun_changes_nothing;
    upgrade_keeps_data => super::upgrade_keeps_data;
    adopts_upstream_database => super::adopts_upstream_database;
    newer_versions_are_left_alone => super::newer_versions_are_left_alone;
    touch_on_update => super::touch_on_update;
    keys_and_enums => super::keys_and_enums;
}
