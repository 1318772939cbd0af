//! What the monitor-service tests share besides their databases (those come from
//! [`tars_testkit::db`]): running each test on both backends and every IO driver. Included
//! with `#[path]` by the stat and property tests, whose services run on the monitor writer.

/// Runs each named test `fn(TestDb, IoMode)` on MariaDB and on SQLite, each on every IO driver.
/// The including file provides `mysql(tag)` and `sqlite(tag)`.
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
