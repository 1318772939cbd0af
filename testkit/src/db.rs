//! Databases a test owns: a fresh one on the test MariaDB ([`crate::mysql::mysql_url`], failing
//! loudly without one) or on a server the test started itself, or an SQLite file in a temp dir;
//! empty (for tests of the storage layer and of code that migrates or creates tables itself) or
//! migrated with a schema set (`db_tars` unless a test names another).
//!
//! Every crate's tests make their databases here, so they are named one way and fail one way.
//! A MySQL database is `<prefix>_<tag>_<pid>_<n>`: each crate passes its own prefix, so test
//! binaries running in parallel on the one test server never share a database.

use std::sync::atomic::{AtomicUsize, Ordering};

use tars_sql::migrate::SchemaSet;
use tars_sql::schema::db_tars;
use tars_sql::{Row, Store, Value};

use crate::process::TempDir;

/// A database and what keeps it alive.
#[derive(Debug)]
pub struct TestDb {
    /// Its URL.
    pub url: String,
    /// An open store on it.
    pub store: Store,
    _dir: Option<TempDir>,
}

impl TestDb {
    /// A new `db_tars` on the test MariaDB, migrated: what the services that keep their state
    /// in `db_tars` start from.
    ///
    /// # Panics
    ///
    /// Without a reachable test MariaDB: a test that needs one fails, it never skips.
    pub fn mysql(prefix: &str, tag: &str) -> TestDb {
        TestDb::mysql_migrated(prefix, tag, db_tars::schema())
    }

    /// A new SQLite `db_tars` in its own temp dir, migrated.
    pub fn sqlite(tag: &str) -> TestDb {
        TestDb::sqlite_migrated(tag, db_tars::schema())
    }

    /// A new database on the test MariaDB migrated with `schema`, for the services with a
    /// database of their own (`tars_stat`, `tars_property`).
    ///
    /// # Panics
    ///
    /// Without a reachable test MariaDB, or when `schema` does not migrate.
    pub fn mysql_migrated(prefix: &str, tag: &str, schema: SchemaSet) -> TestDb {
        TestDb::mysql_empty(prefix, tag).migrated(schema)
    }

    /// A new SQLite database migrated with `schema`, in a file named after the database as a
    /// deployment would name it.
    pub fn sqlite_migrated(tag: &str, schema: SchemaSet) -> TestDb {
        let file = format!("{}.sqlite3", schema.database);
        TestDb::sqlite_empty(tag, &file).migrated(schema)
    }

    /// A new, empty database on the test MariaDB: no migration has run, so a test sees what the
    /// code under test makes of a bare database.
    ///
    /// # Panics
    ///
    /// Without a reachable test MariaDB.
    pub fn mysql_empty(prefix: &str, tag: &str) -> TestDb {
        TestDb::mysql_empty_on(&crate::mysql::mysql_url(), prefix, tag)
    }

    /// A new, empty database on the server of `base`, for a test that runs its own server
    /// ([`crate::mysql::PrivateMariaDb`]) because it kills or restarts it.
    ///
    /// # Panics
    ///
    /// When the database cannot be created there.
    pub fn mysql_empty_on(base: &str, prefix: &str, tag: &str) -> TestDb {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let name = format!("{prefix}_{tag}_{}_{n}", std::process::id());
        let admin = Store::open(base).expect("test MySQL URL parses");
        let script = format!("DROP DATABASE IF EXISTS `{name}`; CREATE DATABASE `{name}` DEFAULT CHARSET utf8");
        if let Err(e) = admin.run_blocking(move |s| s.exec_script(&script)) {
            panic!(
                "cannot create test database `{name}` on {} ({e}); for the test MariaDB, is {} right?",
                admin.url(),
                crate::mysql::URL_ENV
            );
        }
        TestDb::open(tars_sql::url_with_database(base, &name), None)
    }

    /// A new, empty SQLite database at `file` in its own temp dir; the name is the caller's
    /// because code under test may derive other paths from it.
    pub fn sqlite_empty(tag: &str, file: &str) -> TestDb {
        let dir = TempDir::new(&format!("db-{tag}")).expect("temp dir");
        let url = format!("sqlite:{}/{file}", dir.0.display());
        TestDb::open(url, Some(dir))
    }

    fn open(url: String, dir: Option<TempDir>) -> TestDb {
        let store = Store::open(&url).expect("store opens");
        TestDb { url, store, _dir: dir }
    }

    fn migrated(self, schema: SchemaSet) -> TestDb {
        let database = schema.database;
        if let Err(e) = self.store.migrate(schema) {
            panic!("{database} migrates: {e:?}");
        }
        self
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

    /// False also when the check itself fails: tests poll this while a writer creates tables on
    /// its own connection, and SQLite reports the schema changing under the query meanwhile.
    pub fn table_exists(&self, table: &str) -> bool {
        let t = table.to_owned();
        self.store.run_blocking(move |s| s.table_exists(&t)).unwrap_or(false)
    }

    /// Rows in `table`; zero also while it does not exist yet, so a test can poll for rows
    /// a writer has not made the table for.
    pub fn count(&self, table: &str) -> usize {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        self.store
            .run_blocking(move |s| s.query(&sql, &[]))
            .ok()
            .and_then(|r| r.first().and_then(|r| r.get::<i64>(0).ok()))
            .unwrap_or(0) as usize
    }
}
