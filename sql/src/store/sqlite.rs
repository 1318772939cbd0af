//! The embedded backend: SQLite, built from source into the binary (`rusqlite`, `bundled`).
//! Runs only on storage worker threads.
//!
//! Several connections share one file (a store's workers, and every store opened on it), so
//! one connection may change the schema while another prepares a statement. SQLite prepares a
//! statement whose schema went stale anew by itself, but a prepare that finds the schema
//! changed, reloads it and finds it changed again gives up with `SQLITE_SCHEMA` ("database
//! schema has changed"). That is what a statement naming a table that does not exist yet meets
//! while another connection creates the hourly tables (each table and each index is a commit
//! of its own: a writer's start makes about 240): every attempt loads the whole schema, and a
//! commit lands before the attempt ends. Such a statement did nothing, so it is prepared and
//! run again, after a pause growing from none to [`SCHEMA_PAUSE_MAX`], for as long as a
//! statement waits for a lock ([`SCHEMA_WAIT`], the busy timeout); then the caller gets
//! [`StoreError::SchemaChanged`].

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::fallible_iterator::FallibleIterator as _;
use rusqlite::types::ValueRef;
use rusqlite::{Batch, Connection, ErrorCode};

use crate::ddl::{sqlite_index_name, Dialect};
use crate::error::StoreError;
use crate::store::session::Session;
use crate::value::{Row, Value};

/// How long a statement waits for a lock another connection holds.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a statement is tried again while it fails with `SQLITE_SCHEMA`.
pub(crate) const SCHEMA_WAIT: Duration = BUSY_TIMEOUT;
/// The longest pause between two attempts of a statement that failed with `SQLITE_SCHEMA`
/// (the first is tried again at once, then after 1 ms, 2 ms, 4 ms, ...).
pub(crate) const SCHEMA_PAUSE_MAX: Duration = Duration::from_millis(50);

/// True for `SQLITE_SCHEMA`: the schema changed under the statement before it did anything.
fn schema_changed(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == ErrorCode::SchemaChanged)
}

/// Runs `attempt` (prepare and run one statement) again while it fails with `SQLITE_SCHEMA`
/// and `limit` has not passed; returns the last result and how many attempts were made.
fn retry_schema<T>(limit: Duration, mut attempt: impl FnMut() -> rusqlite::Result<T>) -> (rusqlite::Result<T>, u32) {
    let start = Instant::now();
    let mut attempts = 1;
    let mut pause = Duration::ZERO;
    loop {
        match attempt() {
            Err(e) if schema_changed(&e) && start.elapsed() + pause < limit => {
                tracing::debug!(attempts, error = %e, "SQLite schema changed under a statement; preparing it again");
                std::thread::sleep(pause);
                pause = (pause * 2).clamp(Duration::from_millis(1), SCHEMA_PAUSE_MAX);
                attempts += 1;
            }
            r => return (r, attempts),
        }
    }
}

/// One SQLite connection. Lives on one storage worker thread.
pub(crate) struct SqliteSession {
    conn: Connection,
    label: Arc<str>,
    broken: bool,
}

/// Opens (creating if needed) the database file and its directory.
pub(crate) fn connect(path: &Path, label: Arc<str>) -> Result<SqliteSession, StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|source| StoreError::Io { what: format!("creating data directory {}", dir.display()), source })?;
    }
    let unavailable = |e: rusqlite::Error| StoreError::Unavailable { store: label.to_string(), reason: e.to_string() };
    let conn = Connection::open(path).map_err(unavailable)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(unavailable)?;
    // WAL lets readers run beside the writer; synchronous=FULL makes every commit durable, which
    // is what "nothing lost" means for an embedded database.
    conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=OFF;")
        .map_err(unavailable)?;
    Ok(SqliteSession { conn, label, broken: false })
}

fn bind(v: &Value) -> rusqlite::types::Value {
    use rusqlite::types::Value as S;
    match v {
        Value::Null => S::Null,
        Value::Int(i) => S::Integer(*i),
        Value::UInt(u) => match i64::try_from(*u) {
            Ok(i) => S::Integer(i),
            // SQLite integers are signed 64-bit; keep larger values exact as text.
            Err(_) => S::Text(u.to_string()),
        },
        Value::Float(f) => S::Real(*f),
        Value::Text(s) => S::Text(s.clone()),
        Value::Bytes(b) => S::Blob(b.clone()),
    }
}

fn read(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Int(i),
        ValueRef::Real(f) => Value::Float(f),
        ValueRef::Text(t) => match std::str::from_utf8(t) {
            Ok(s) => Value::Text(s.to_owned()),
            Err(_) => Value::Bytes(t.to_vec()),
        },
        ValueRef::Blob(b) => Value::Bytes(b.to_vec()),
    }
}

/// Runs a prepared query and reads every row.
fn query_all(st: &mut rusqlite::Statement<'_>, values: &[Value]) -> rusqlite::Result<Vec<Row>> {
    let mut rows = st.query(rusqlite::params_from_iter(values.iter().map(bind)))?;
    let mut columns: Option<Arc<[String]>> = None;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        // Named after the first step, not before: SQLite prepares a cached statement anew when
        // the schema changed, and a `SELECT *` then has the table's new columns.
        let columns = columns
            .get_or_insert_with(|| {
                let st: &rusqlite::Statement<'_> = row.as_ref();
                st.column_names().map(str::to_owned).collect()
            })
            .clone();
        let n = columns.len();
        let mut vals = Vec::with_capacity(n);
        for i in 0..n {
            vals.push(read(row.get_ref(i)?));
        }
        out.push(Row::new(columns, vals));
    }
    Ok(out)
}

impl SqliteSession {
    /// The typed error for `e`, which `attempts` attempts of the statement ended with.
    fn fail(&mut self, e: rusqlite::Error, attempts: u32) -> StoreError {
        let store = self.label.to_string();
        if let rusqlite::Error::SqliteFailure(f, _) = &e {
            if matches!(
                f.code,
                ErrorCode::SystemIoFailure
                    | ErrorCode::CannotOpen
                    | ErrorCode::DatabaseCorrupt
                    | ErrorCode::NotADatabase
            ) {
                self.broken = true;
                return StoreError::ConnectionLost { store, reason: e.to_string() };
            }
            if f.code == ErrorCode::SchemaChanged {
                return StoreError::SchemaChanged { store, attempts, message: e.to_string() };
            }
            return StoreError::Query { store, code: u32::try_from(f.extended_code).ok(), message: e.to_string() };
        }
        StoreError::Query { store, code: None, message: e.to_string() }
    }
}

impl Session for SqliteSession {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn label(&self) -> &str {
        &self.label
    }

    fn exec(&mut self, sql: &str, values: &[Value]) -> Result<u64, StoreError> {
        let conn = &self.conn;
        let (r, attempts) = retry_schema(SCHEMA_WAIT, || {
            let mut st = conn.prepare_cached(sql)?;
            match st.execute(rusqlite::params_from_iter(values.iter().map(bind))) {
                Err(e) if schema_changed(&e) => {
                    // Not back into the cache: the next attempt prepares it anew.
                    st.discard();
                    Err(e)
                }
                r => r,
            }
        });
        match r {
            Ok(n) => Ok(n as u64),
            Err(e) => Err(self.fail(e, attempts)),
        }
    }

    fn exec_script(&mut self, sql: &str) -> Result<(), StoreError> {
        // `execute_batch`, statement by statement, so only the one that met a schema change
        // runs again (the ones before it took effect).
        let mut batch = Batch::new(&self.conn, sql);
        let failed = loop {
            // A failed prepare leaves the batch at that statement.
            let mut st = match retry_schema(SCHEMA_WAIT, || batch.next()) {
                (Ok(Some(st)), _) => st,
                (Ok(None), _) => break None,
                (Err(e), attempts) => break Some((e, attempts)),
            };
            // Stepping an expired statement again makes SQLite prepare it anew.
            if let (Err(e), attempts) = retry_schema(SCHEMA_WAIT, || st.raw_query().next().map(drop)) {
                break Some((e, attempts));
            }
        };
        match failed {
            None => Ok(()),
            Some((e, attempts)) => Err(self.fail(e, attempts)),
        }
    }

    fn query(&mut self, sql: &str, values: &[Value]) -> Result<Vec<Row>, StoreError> {
        let conn = &self.conn;
        let (r, attempts) = retry_schema(SCHEMA_WAIT, || {
            let mut st = conn.prepare_cached(sql)?;
            match query_all(&mut st, values) {
                Err(e) if schema_changed(&e) => {
                    st.discard();
                    Err(e)
                }
                r => r,
            }
        });
        r.map_err(|e| self.fail(e, attempts))
    }

    fn last_insert_id(&mut self) -> u64 {
        u64::try_from(self.conn.last_insert_rowid()).unwrap_or(0)
    }

    fn table_exists(&mut self, table: &str) -> Result<bool, StoreError> {
        let rows = self.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", &[table.into()])?;
        Ok(!rows.is_empty())
    }

    fn columns(&mut self, table: &str) -> Result<Vec<String>, StoreError> {
        let rows = self.query("SELECT name FROM pragma_table_info(?) ORDER BY cid", &[table.into()])?;
        rows.iter().map(|r| r.get::<String>(0)).collect()
    }

    fn index_exists(&mut self, table: &str, index: &str) -> Result<bool, StoreError> {
        let rows = self.query(
            "SELECT 1 FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND name = ?",
            &[table.into(), sqlite_index_name(table, index).into()],
        )?;
        Ok(!rows.is_empty())
    }

    fn is_broken(&self) -> bool {
        self.broken
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema_error() -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_SCHEMA),
            Some("database schema has changed".into()),
        )
    }

    #[test]
    fn a_schema_change_is_tried_again_until_it_passes() {
        let mut calls = 0;
        let (r, attempts) = retry_schema(SCHEMA_WAIT, || {
            calls += 1;
            if calls < 5 {
                Err(schema_error())
            } else {
                Ok(calls)
            }
        });
        assert_eq!((r.ok(), attempts), (Some(5), 5));
    }

    #[test]
    fn a_schema_change_is_tried_again_for_a_bounded_time() {
        let limit = Duration::from_millis(100);
        let start = Instant::now();
        let mut calls = 0;
        let (r, attempts): (rusqlite::Result<()>, u32) = retry_schema(limit, || {
            calls += 1;
            Err(schema_error())
        });
        let took = start.elapsed();
        assert!(r.as_ref().is_err_and(schema_changed), "{r:?}");
        assert_eq!(attempts, calls);
        assert!(calls > 3, "tried {calls} times");
        assert!(took < limit + SCHEMA_PAUSE_MAX, "gave up after {took:?}");
    }

    #[test]
    fn other_errors_are_not_tried_again() {
        let mut calls = 0;
        let (r, attempts): (rusqlite::Result<()>, u32) = retry_schema(SCHEMA_WAIT, || {
            calls += 1;
            Err(rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY), None))
        });
        assert!(r.is_err());
        assert_eq!((calls, attempts), (1, 1));
    }

    #[test]
    fn a_schema_change_that_persists_is_its_own_error() {
        let dir = std::env::temp_dir().join(format!("tars-sqlite-unit-{}", std::process::id()));
        let mut s = connect(&dir.join("x.sqlite3"), "sqlite:x".into()).expect("opens");
        let e = s.fail(schema_error(), 7);
        assert!(matches!(&e, StoreError::SchemaChanged { attempts: 7, .. }), "{e:?}");
        assert!(!e.is_unavailable());
        assert!(!s.is_broken());
        drop(s);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
