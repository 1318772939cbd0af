//! The embedded backend: SQLite, built from source into the binary (`rusqlite`, `bundled`).
//! Runs only on storage worker threads.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, ErrorCode};

use crate::ddl::{sqlite_index_name, Dialect};
use crate::error::StoreError;
use crate::store::session::Session;
use crate::value::{Row, Value};

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
    conn.busy_timeout(Duration::from_secs(5)).map_err(unavailable)?;
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

impl SqliteSession {
    fn fail(&mut self, e: rusqlite::Error) -> StoreError {
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
        let r = self
            .conn
            .prepare_cached(sql)
            .and_then(|mut st| st.execute(rusqlite::params_from_iter(values.iter().map(bind))));
        match r {
            Ok(n) => Ok(n as u64),
            Err(e) => Err(self.fail(e)),
        }
    }

    fn exec_script(&mut self, sql: &str) -> Result<(), StoreError> {
        self.conn.execute_batch(sql).map_err(|e| self.fail(e))
    }

    fn query(&mut self, sql: &str, values: &[Value]) -> Result<Vec<Row>, StoreError> {
        let r = (|| {
            let mut st = self.conn.prepare_cached(sql)?;
            let columns: Arc<[String]> = st.column_names().map(str::to_owned).collect();
            let n = columns.len();
            let mut rows = st.query(rusqlite::params_from_iter(values.iter().map(bind)))?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                let mut vals = Vec::with_capacity(n);
                for i in 0..n {
                    vals.push(read(row.get_ref(i)?));
                }
                out.push(Row::new(columns.clone(), vals));
            }
            Ok(out)
        })();
        r.map_err(|e| self.fail(e))
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
