//! Shared by the storage tests: empty databases from [`tars_testkit::db`], named `tarsrs_…` on
//! a MariaDB, so each test sees what the storage layer makes of a bare database.
#![allow(dead_code)]

pub(crate) use tars_testkit::db::TestDb;

/// The storage tests' own prefix keeps their databases apart from other crates' tests running
/// on the test MariaDB at the same time.
const PREFIX: &str = "tarsrs";

/// Fails loudly without the test MariaDB.
pub(crate) fn mysql(tag: &str) -> TestDb {
    TestDb::mysql_empty(PREFIX, tag)
}

/// For a test that kills or restarts a server of its own.
pub(crate) fn mysql_on(base: &str, tag: &str) -> TestDb {
    TestDb::mysql_empty_on(base, PREFIX, tag)
}

/// The other backend of [`on_both_backends!`].
pub(crate) fn sqlite(tag: &str) -> TestDb {
    TestDb::sqlite_empty(tag, &format!("{tag}.sqlite3"))
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
