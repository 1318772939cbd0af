//! Shared by the registry tests: their databases (a migrated `db_tars` from
//! [`tars_testkit::db`], named `tarsreg_…` on the test MariaDB), registry configs and rows.
#![allow(dead_code)]

pub(crate) use tars_testkit::db::TestDb;

/// The registry's own prefix keeps its databases apart from other crates' tests running on
/// the test MariaDB at the same time.
pub(crate) fn mysql(tag: &str) -> TestDb {
    TestDb::mysql("tarsreg", tag)
}

/// The other backend of [`on_both_backends!`].
pub(crate) fn sqlite(tag: &str) -> TestDb {
    TestDb::sqlite(tag)
}

/// Defines `mod on_mysql { #[test] fn NAME() }` and `mod on_sqlite { ... }` running `body(db)`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident => $body:path;)*) => {
        mod on_mysql {
            $(#[test] fn $name() { $body(super::common::mysql(stringify!($name))) })*
        }
        mod on_sqlite {
            $(#[test] fn $name() { $body(super::common::sqlite(stringify!($name))) })*
        }
    };
}

/// An upstream-style registry config serving QueryObj, RegistryObj and the container servant
/// on free ports of 127.0.0.1, with `reap` lines added to `<reap>` and `extra` to `<tars>`.
pub(crate) fn registry_config(reap: &str, extra: &str) -> String {
    let adapter = |obj: &str| {
        format!("<{obj}Adapter>\nendpoint=tcp -h 127.0.0.1 -p 0 -t 60000\nservant={obj}\n</{obj}Adapter>\n")
    };
    format!(
        "<tars>\n<application>\n<server>\napp=tars\nserver=tarsregistry\nlocal=tcp -h 127.0.0.1 -p 0 -t 10000\n{}{}{}</server>\n</application>\n\
         <reap>\nchangePollMs=100\n{reap}\n</reap>\n{extra}\n</tars>\n",
        adapter("tars.tarsregistry.QueryObj"),
        adapter("tars.tarsregistry.RegistryObj"),
        adapter("tars.tarsregistry.Registry"),
    )
}

/// Starts a registry on `db` with `reap` settings, on driver `io`.
pub(crate) fn start_registry(
    db: &TestDb,
    io: tars_core_net::rt::IoMode,
    reap: &str,
) -> tars_registry::service::Registry {
    let config = tars_proto::config::Config::parse(&registry_config(reap, "")).expect("config parses");
    let opts = tars_registry::service::StartOptions { io: Some(io), shards: Some(2), store: Some(db.store.clone()) };
    tars_registry::service::start(&config, opts).expect("registry starts")
}

/// Inserts a server row and one adapter per `(servant, endpoint)`; `server` columns are
/// `(column, value)` overrides of an active, ungrouped, set-less server.
pub(crate) fn add_server(
    db: &TestDb,
    app: &str,
    server: &str,
    node: &str,
    set: &[(&str, &str)],
    adapters: &[(&str, &str)],
) {
    let mut cols = vec!["application", "server_name", "node_name", "setting_state", "present_state"];
    let mut vals: Vec<tars_sql::Value> = vec![app.into(), server.into(), node.into(), "active".into(), "active".into()];
    for (c, v) in set {
        if let Some(i) = cols.iter().position(|x| x == c) {
            vals[i] = (*v).into();
        } else {
            cols.push(c);
            vals.push((*v).into());
        }
    }
    let marks = vec!["?"; cols.len()].join(", ");
    db.exec(&format!("INSERT INTO t_server_conf ({}) VALUES ({marks})", cols.join(", ")), vals);
    for (servant, endpoint) in adapters {
        db.exec(
            "INSERT INTO t_adapter_conf (application, server_name, node_name, adapter_name, servant, endpoint) VALUES (?, ?, ?, ?, ?, ?)",
            tars_sql::params![app, server, node, format!("{servant}Adapter"), *servant, *endpoint],
        );
    }
}
