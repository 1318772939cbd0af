//! A database a monitor-service test owns: a fresh one on the test MariaDB
//! (`TARS_TEST_MYSQL_URL`, required) or a SQLite file in a temp dir, migrated with the
//! service's schema. Included with `#[path]` by the stat and property tests.
#![allow(dead_code)] // each test binary uses part of it

use tars_sql::migrate::SchemaSet;
use tars_sql::{Row, Store, Value};
use tars_testkit::process::TempDir;

/// The database, and what keeps a SQLite one's directory alive.
pub(crate) struct Db {
    pub(crate) url: String,
    pub(crate) store: Store,
    _dir: Option<TempDir>,
}

/// A new database `<prefix>_<tag>_<pid>_<n>` on the test MariaDB, migrated with `schema`.
pub(crate) fn mysql(prefix: &str, tag: &str, schema: SchemaSet) -> Db {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let base = tars_testkit::mysql::mysql_url();
    let name = format!("{prefix}_{tag}_{}_{n}", std::process::id());
    let admin = Store::open(&base).expect("test MySQL URL parses");
    let script = format!("DROP DATABASE IF EXISTS `{name}`; CREATE DATABASE `{name}` DEFAULT CHARSET utf8");
    admin.run_blocking(move |s| s.exec_script(&script)).expect("a test database on the test MariaDB");
    migrated(tars_sql::url_with_database(&base, &name), None, schema)
}

/// A new SQLite database in its own temp dir, migrated with `schema`.
pub(crate) fn sqlite(tag: &str, schema: SchemaSet) -> Db {
    let dir = TempDir::new(tag).expect("temp dir");
    let url = format!("sqlite:{}/{}.sqlite3", dir.0.display(), schema.database);
    migrated(url, Some(dir), schema)
}

fn migrated(url: String, dir: Option<TempDir>, schema: SchemaSet) -> Db {
    let store = Store::open(&url).expect("store opens");
    store.migrate(schema).expect("the schema migrates");
    Db { url, store, _dir: dir }
}

impl Db {
    /// Runs a query; panics naming it when it fails.
    pub(crate) fn query(&self, sql: &str, params: Vec<Value>) -> Vec<Row> {
        let owned = sql.to_owned();
        self.store.run_blocking(move |s| s.query(&owned, &params)).unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// False also while SQLite reports the schema changing under the query (a writer is
    /// creating tables on its own connection).
    pub(crate) fn table_exists(&self, table: &str) -> bool {
        let t = table.to_owned();
        self.store.run_blocking(move |s| s.table_exists(&t)).unwrap_or(false)
    }

    /// Rows in `table`; zero also while it does not exist yet.
    pub(crate) fn count(&self, table: &str) -> usize {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        self.store
            .run_blocking(move |s| s.query(&sql, &[]))
            .ok()
            .and_then(|r| r.first().and_then(|r| r.get::<i64>(0).ok()))
            .unwrap_or(0) as usize
    }
}

/// Runs each named test `fn(Db, IoMode)` on MariaDB and on SQLite, each on every IO driver.
/// The including file provides `mysql(tag)` and `sqlite(tag)`.
#[allow(unused_macros)]
macro_rules! on_every_path {
    ($($name:ident),*) => {
        mod on_mysql {
            $(mod $name {
                use tars_core_net::rt::IoMode;
                #[test] fn uring() { super::super::$name(super::super::mysql(stringify!($name)), IoMode::Uring) }
                #[test] fn epoll_et() { super::super::$name(super::super::mysql(stringify!($name)), IoMode::EpollEt) }
                #[test] fn epoll_lt() { super::super::$name(super::super::mysql(stringify!($name)), IoMode::EpollLt) }
            })*
        }
        mod on_sqlite {
            $(mod $name {
                use tars_core_net::rt::IoMode;
                #[test] fn uring() { super::super::$name(super::super::sqlite(stringify!($name)), IoMode::Uring) }
                #[test] fn epoll_et() { super::super::$name(super::super::sqlite(stringify!($name)), IoMode::EpollEt) }
                #[test] fn epoll_lt() { super::super::$name(super::super::sqlite(stringify!($name)), IoMode::EpollLt) }
            })*
        }
    };
}
