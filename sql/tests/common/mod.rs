//! Shared by the storage tests: a fresh database on the test MariaDB, or a fresh SQLite file.
#![allow(dead_code)]

use tars_sql::Store;
use tars_testkit::process::TempDir;

/// A backend a test runs against, and what keeps its database alive.
pub(crate) struct Backend {
    pub(crate) url: String,
    _dir: Option<TempDir>,
}

/// A new, empty database on the test MariaDB (`TARS_TEST_MYSQL_URL`); fails loudly without one.
pub(crate) fn mysql(tag: &str) -> Backend {
    let base = tars_testkit::mysql::mysql_url();
    mysql_on(&base, tag)
}

/// A new, empty database on the server of `base`.
pub(crate) fn mysql_on(base: &str, tag: &str) -> Backend {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let db = format!("tarsrs_{tag}_{}_{n}", std::process::id());
    let admin = Store::open(base).expect("test MySQL URL parses");
    let create = format!("CREATE DATABASE `{db}` DEFAULT CHARSET utf8");
    admin.run_blocking(move |s| s.exec_script(&format!("DROP DATABASE IF EXISTS `{db}`; {create}"))).unwrap_or_else(
        |e| panic!("cannot create a test database on the test MariaDB ({e}); is TARS_TEST_MYSQL_URL right?"),
    );
    let url = tars_sql::url_with_database(base, &format!("tarsrs_{tag}_{}_{n}", std::process::id()));
    Backend { url, _dir: None }
}

/// A new SQLite database file in its own temp dir.
pub(crate) fn sqlite(tag: &str) -> Backend {
    let dir = TempDir::new(&format!("sql-{tag}")).expect("temp dir");
    let url = format!("sqlite:{}/{tag}.sqlite3", dir.0.display());
    Backend { url, _dir: Some(dir) }
}

impl Backend {
    pub(crate) fn store(&self) -> Store {
        Store::open(&self.url).expect("store opens")
    }
}

/// Defines `mod mysql { #[test] fn NAME() }` and `mod sqlite { ... }` running `body(backend)`.
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
