//! A migrated `db_tars` a test owns: a fresh database on the test MariaDB
//! ([`crate::mysql::mysql_url`], failing loudly without one) or an SQLite file in a temp dir.

use std::sync::atomic::{AtomicUsize, Ordering};

use tars_sql::schema::db_tars;
use tars_sql::{Row, Store, Value};

use crate::process::TempDir;

/// A migrated `db_tars` and what keeps it alive.
#[derive(Debug)]
pub struct TestDb {
    /// Its URL.
    pub url: String,
    /// An open store on it.
    pub store: Store,
    _dir: Option<TempDir>,
}

impl TestDb {
    /// A new database `<prefix>_<tag>_<pid>_<n>` on the test MariaDB, migrated.
    ///
    /// # Panics
    ///
    /// Without a reachable test MariaDB: a test that needs one fails, it never skips.
    pub fn mysql(prefix: &str, tag: &str) -> TestDb {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let base = crate::mysql::mysql_url();
        let name = format!("{prefix}_{tag}_{}_{n}", std::process::id());
        let admin = Store::open(&base).expect("test MySQL URL parses");
        let script = format!("DROP DATABASE IF EXISTS `{name}`; CREATE DATABASE `{name}` DEFAULT CHARSET utf8");
        admin.run_blocking(move |s| s.exec_script(&script)).unwrap_or_else(|e| {
            panic!("cannot create a test database on the test MariaDB ({e}); is TARS_TEST_MYSQL_URL right?")
        });
        TestDb::migrated(tars_sql::url_with_database(&base, &name), None)
    }

    /// A new SQLite `db_tars` in its own temp dir, migrated.
    pub fn sqlite(tag: &str) -> TestDb {
        let dir = TempDir::new(&format!("db-{tag}")).expect("temp dir");
        let url = format!("sqlite:{}/db_tars.sqlite3", dir.0.display());
        TestDb::migrated(url, Some(dir))
    }

    fn migrated(url: String, dir: Option<TempDir>) -> TestDb {
        let store = Store::open(&url).expect("store opens");
        store.migrate(db_tars::schema()).expect("db_tars migrates");
        TestDb { url, store, _dir: dir }
    }

    /// Runs one statement, panicking with the statement on failure.
    pub fn exec(&self, sql: &str, params: Vec<Value>) -> u64 {
        let owned = sql.to_owned();
        self.store.run_blocking(move |s| s.exec(&owned, &params)).unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Runs one query, panicking with the statement on failure.
    pub fn query(&self, sql: &str, params: Vec<Value>) -> Vec<Row> {
        let owned = sql.to_owned();
        self.store.run_blocking(move |s| s.query(&owned, &params)).unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}
