//! Shared by the registry tests: a migrated `db_tars` on the test MariaDB or in SQLite.
#![allow(dead_code)]

use tars_sql::schema::db_tars;
use tars_sql::Store;
use tars_testkit::process::TempDir;

/// A migrated `db_tars` a test owns, and what keeps it alive.
pub(crate) struct TestDb {
    pub(crate) url: String,
    pub(crate) store: Store,
    _dir: Option<TempDir>,
}

/// A new database on the test MariaDB (`TARS_TEST_MYSQL_URL`), migrated to the latest
/// `db_tars` schema; fails loudly without a server.
pub(crate) fn mysql(tag: &str) -> TestDb {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let base = tars_testkit::mysql::mysql_url();
    let name = format!("tarsreg_{tag}_{}_{n}", std::process::id());
    let admin = Store::open(&base).expect("test MySQL URL parses");
    let script = format!("DROP DATABASE IF EXISTS `{name}`; CREATE DATABASE `{name}` DEFAULT CHARSET utf8");
    admin.run_blocking(move |s| s.exec_script(&script)).unwrap_or_else(|e| {
        panic!("cannot create a test database on the test MariaDB ({e}); is TARS_TEST_MYSQL_URL right?")
    });
    let url = tars_sql::url_with_database(&base, &name);
    migrated(url, None)
}

/// A new SQLite `db_tars` in its own temp dir, migrated.
pub(crate) fn sqlite(tag: &str) -> TestDb {
    let dir = TempDir::new(&format!("reg-{tag}")).expect("temp dir");
    let url = format!("sqlite:{}/db_tars.sqlite3", dir.0.display());
    migrated(url, Some(dir))
}

fn migrated(url: String, dir: Option<TempDir>) -> TestDb {
    let store = Store::open(&url).expect("store opens");
    store.migrate(db_tars::schema()).expect("db_tars migrates");
    TestDb { url, store, _dir: dir }
}

impl TestDb {
    /// Runs one statement, panicking with the statement on failure.
    pub(crate) fn exec(&self, sql: &str, params: Vec<tars_sql::Value>) -> u64 {
        let owned = sql.to_owned();
        self.store.run_blocking(move |s| s.exec(&owned, &params)).unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Runs one query, panicking with the statement on failure.
    pub(crate) fn query(&self, sql: &str, params: Vec<tars_sql::Value>) -> Vec<tars_sql::Row> {
        let owned = sql.to_owned();
        self.store.run_blocking(move |s| s.query(&owned, &params)).unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
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
