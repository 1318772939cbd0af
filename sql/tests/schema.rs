//! The logical schema and its DDL: upstream-compatible keys and types, both dialects rendered
//! and kept in `sql/schema/` (regenerate with `UPDATE_SNAPSHOTS=1`), identifiers checked, URLs
//! parsed and passwords masked.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::path::PathBuf;

use tars_sql::migrate::{Op, SchemaSet};
use tars_sql::schema::{db_tars, index_column, is_identifier, monitor, IndexKind};
use tars_sql::{redact, Dialect, StoreError, StoreUrl};

fn sets() -> Vec<SchemaSet> {
    vec![db_tars::schema(), monitor::stat_schema(), monitor::property_schema()]
}

/// The rendered schema files in `sql/schema/` match the model (operators read and apply them).
#[test]
fn rendered_schema_files_are_current() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schema");
    let update = std::env::var_os("UPDATE_SNAPSHOTS").is_some();
    let mut stale = Vec::new();
    for set in sets() {
        for d in [Dialect::Mysql, Dialect::Sqlite] {
            let text = set.render(d).unwrap();
            let path = dir.join(format!("{}.{}.sql", set.database, d.name()));
            if update {
                std::fs::write(&path, &text).unwrap();
            } else if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
                stale.push(path.display().to_string());
            }
        }
    }
    assert!(stale.is_empty(), "out of date (run with UPDATE_SNAPSHOTS=1): {stale:?}");
}

/// Each database's migrations are numbered 1, 2, 3... and no table or column is defined twice.
#[test]
fn migrations_are_ordered_and_consistent() {
    for set in sets() {
        for (i, m) in set.migrations.iter().enumerate() {
            assert_eq!(m.version as usize, i + 1, "{} migration numbering", set.database);
            assert!(!m.ops.is_empty());
        }
        let tables = set.tables_at(set.latest());
        let mut names = HashSet::new();
        for t in &tables {
            assert!(names.insert(t.name.clone()), "{} defined twice", t.name);
            assert!(is_identifier(&t.name));
            let mut cols = HashSet::new();
            for c in &t.columns {
                assert!(cols.insert(c.name), "{}.{} defined twice", t.name, c.name);
                assert!(is_identifier(c.name));
            }
            for i in &t.indexes {
                for spec in i.columns {
                    let (c, _) = index_column(spec);
                    assert!(t.column(c).is_some(), "index {} of {} names missing column {c}", i.name, t.name);
                }
            }
            assert!(t.indexes.iter().filter(|i| i.kind == IndexKind::Primary).count() <= 1);
        }
        // Later migrations only add: every op after version 1 names a table created before.
        for m in set.migrations.iter().skip(1) {
            for op in &m.ops {
                if let Op::AddColumn { table, .. } | Op::AddIndex { table, .. } = op {
                    assert!(set.tables_at(m.version - 1).iter().any(|t| t.name == *table), "{table}");
                }
            }
        }
    }
}

/// The keys TarsWeb and the registry rely on are there, with upstream's names and columns.
#[test]
fn upstream_keys_and_columns() {
    let tables = db_tars::schema().tables_at(3);
    let t = |name: &str| tables.iter().find(|t| t.name == name).unwrap_or_else(|| panic!("no table {name}")).clone();
    let expected = [
        "t_adapter_conf",
        "t_config_files",
        "t_config_history_files",
        "t_config_references",
        "t_group_priority",
        "t_machine_tars_info",
        "t_node_info",
        "t_profile_template",
        "t_registry_info",
        "t_server_conf",
        "t_base_image",
        "t_framework_key",
        "t_docker_registry",
        "t_server_group_relation",
        "t_server_group_rule",
        "t_server_patchs",
        "t_task",
        "t_task_item",
        "t_web_release_conf",
        "t_server_notifys",
    ];
    assert_eq!(tables.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), expected);
    let unique = |name: &str, key: &str| t(name).indexes.iter().find(|i| i.name == key).unwrap().columns.to_vec();
    assert_eq!(unique("t_server_conf", "application"), ["application", "server_name", "node_name"]);
    assert_eq!(unique("t_adapter_conf", "application"), ["application", "server_name", "node_name", "adapter_name"]);
    assert_eq!(
        unique("t_config_files", "application"),
        ["server_name", "filename", "host", "level", "set_name", "set_area", "set_group"]
    );
    assert_eq!(unique("t_registry_info", "locator_id"), ["locator_id", "servant"]);
    let sc = t("t_server_conf");
    assert!(sc.column("registry_timestamp").unwrap().on_update_now);
    for c in [
        "setting_state",
        "present_state",
        "bak_flag",
        "flow_state",
        "enable_set",
        "set_name",
        "run_type",
        "base_image_id",
        "metrics_port",
    ] {
        assert!(sc.column(c).is_some(), "t_server_conf.{c}");
    }
    let ddl = db_tars::schema().render(Dialect::Mysql).unwrap();
    assert!(ddl.contains(
        "`present_state` enum('active','inactive','activating','deactivating','destroyed') NOT NULL DEFAULT 'inactive'"
    ));
    assert!(ddl.contains("`registry_timestamp` timestamp DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP"));
    assert!(ddl.contains("KEY `index_i_2` (`tgz`(50))"));
    let stat = tars_sql::ddl::mysql_create_table(&monitor::stat_table("tars_stat_2026112114")).unwrap();
    assert!(stat.starts_with("CREATE TABLE IF NOT EXISTS `tars_stat_2026112114`"));
    assert!(stat.contains(
        "PRIMARY KEY (`source_id`,`f_date`,`f_tflag`,`master_name`,`slave_name`,`interface_name`,`master_ip`,`slave_ip`,`slave_port`,`return_value`,`tars_version`)"
    ));
    let prop = monitor::property_table("tars_property_2026112114");
    assert!(prop.primary_key().is_none(), "upstream's property table has no primary key");
    assert_eq!(monitor::hourly_table_name(monitor::STAT_PREFIX, "20261121", 7), "tars_stat_2026112107");
}

/// Names that are not plain identifiers never reach SQL text.
#[test]
fn identifiers_are_checked() {
    for bad in ["", "a;drop table x", "t`x", "t\"x", "1abc", "a b", "tars_stat_2026/../x", &"x".repeat(65)] {
        assert!(!is_identifier(bad), "{bad:?}");
        assert!(matches!(Dialect::Mysql.quote(bad), Err(StoreError::BadIdentifier(_))));
    }
    assert_eq!(Dialect::Mysql.quote("t_server_conf").unwrap(), "`t_server_conf`");
    assert_eq!(Dialect::Sqlite.quote("t_server_conf").unwrap(), "\"t_server_conf\"");
    let bad_table = tars_sql::schema::Table::new("x;y", &[], &[]);
    assert!(tars_sql::ddl::create_table(Dialect::Sqlite, &bad_table).is_err());
}

/// URLs: both backends, our pool parameters, upstream `<db>` keys with awkward passwords, and
/// the password never shown.
#[test]
fn urls_parse_and_never_show_passwords() {
    let u = StoreUrl::parse("mysql://tars:s3cr%40t@10.0.0.5:3307/db_tars?pool=2&op_timeout_ms=1500").unwrap();
    assert_eq!(u.dialect(), Dialect::Mysql);
    assert_eq!(u.params().pool, 2);
    assert_eq!(u.params().op_timeout.as_millis(), 1500);
    assert_eq!(u.to_string(), "mysql://tars:***@10.0.0.5:3307/db_tars");
    assert!(!format!("{u:?}").contains("s3cr"));
    let s = StoreUrl::parse("sqlite:///var/lib/tars/db_tars.sqlite3").unwrap();
    assert_eq!(s.to_string(), "sqlite:/var/lib/tars/db_tars.sqlite3");
    assert_eq!(StoreUrl::parse("sqlite:data/x.db").unwrap().to_string(), "sqlite:data/x.db");
    let from_conf = StoreUrl::from_db_section("127.0.0.1", 3306, "tars", "p@ss:w/rd?", "db_tars").unwrap();
    assert_eq!(from_conf.to_string(), "mysql://tars:***@127.0.0.1:3306/db_tars");
    for bad in [
        "postgres://x@y/z",
        "sqlite:",
        "mysql://u:p@h:99999/db",
        "mysql://u:pw@h/db?no_such_param=1",
        "sqlite:x?pool=many",
    ] {
        let e = StoreUrl::parse(bad).unwrap_err();
        assert!(matches!(e, StoreError::BadUrl { .. }), "{bad}: {e:?}");
        assert!(!e.to_string().contains(":pw@"), "{e}");
    }
    assert_eq!(redact("connect mysql://root:hunter2@db:3306/x failed"), "connect mysql://root:***@db:3306/x failed");
    assert_eq!(redact("mysql://root@db/x"), "mysql://root@db/x");
    let u = "mysql://tars:pw@127.0.0.1:3306/test";
    assert_eq!(tars_sql::url_with_database(u, "b"), "mysql://tars:pw@127.0.0.1:3306/b");
    assert_eq!(tars_sql::url_with_database("mysql://h:1?ssl=1", "b"), "mysql://h:1/b?ssl=1");
    assert_eq!(tars_sql::url_with_database("mysql://h:1/x?ssl=1", "b"), "mysql://h:1/b?ssl=1");
    // Unencoded `/`, `?` and `@` in a password are still masked.
    assert_eq!(redact("mysql://root:pa/s?s@w@db/x"), "mysql://root:***@db/x");
    let e = StoreUrl::parse("mysql://root:pa/s?s@w@db/x").unwrap_err();
    assert!(!e.to_string().contains("pa/s"), "{e}");
}
