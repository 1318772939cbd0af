//! The MySQL/MariaDB backend, over the `mysql` crate's blocking connection. Runs only on
//! storage worker threads.

use std::io::Write;
use std::sync::Arc;

use mysql::consts::ColumnType;
use mysql::prelude::Queryable;
use mysql::{Conn, LocalInfileHandler, Opts, OptsBuilder};

use crate::ddl::Dialect;
use crate::error::StoreError;
use crate::store::session::Session;
use crate::url::{redact, PoolParams};
use crate::value::{Row, Value};

/// Error codes that mean the connection itself is gone: server shutdown, connection killed,
/// server gone away, lost connection during query.
const CONNECTION_CODES: &[u16] = &[1053, 1927, 2006, 2013];

/// One MySQL connection. Lives on one storage worker thread.
pub(crate) struct MysqlSession {
    conn: Conn,
    label: Arc<str>,
    broken: bool,
}

/// Opens a connection with the pool's timeouts applied.
pub(crate) fn connect(driver_url: &str, params: &PoolParams, label: Arc<str>) -> Result<MysqlSession, StoreError> {
    let opts = Opts::from_url(driver_url)
        .map_err(|e| StoreError::BadUrl { url: label.to_string(), reason: redact(&e.to_string()) })?;
    let opts = OptsBuilder::from_opts(opts)
        .tcp_connect_timeout(Some(params.connect_timeout))
        .read_timeout(Some(params.op_timeout))
        .write_timeout(Some(params.op_timeout))
        .stmt_cache_size(Some(64))
        // Use the address the URL names: the driver would otherwise switch a loopback
        // connection to the server's unix socket, where our timeouts and TLS settings differ.
        .prefer_socket(false);
    match Conn::new(opts) {
        Ok(conn) => Ok(MysqlSession { conn, label, broken: false }),
        Err(e) => Err(StoreError::Unavailable { store: label.to_string(), reason: redact(&e.to_string()) }),
    }
}

fn to_mysql(v: &Value) -> mysql::Value {
    match v {
        Value::Null => mysql::Value::NULL,
        Value::Int(i) => mysql::Value::Int(*i),
        Value::UInt(u) => mysql::Value::UInt(*u),
        Value::Float(f) => mysql::Value::Double(*f),
        Value::Text(s) => mysql::Value::Bytes(s.as_bytes().to_vec()),
        Value::Bytes(b) => mysql::Value::Bytes(b.clone()),
    }
}

fn params(values: &[Value]) -> mysql::Params {
    if values.is_empty() {
        mysql::Params::Empty
    } else {
        mysql::Params::Positional(values.iter().map(to_mysql).collect())
    }
}

/// The binary charset id: such columns hold bytes, not text.
const BINARY_CHARSET: u16 = 63;

fn from_mysql(v: mysql::Value, col: &mysql::Column) -> Value {
    match v {
        mysql::Value::NULL => Value::Null,
        mysql::Value::Int(i) => Value::Int(i),
        mysql::Value::UInt(u) => Value::UInt(u),
        mysql::Value::Float(f) => Value::Float(f64::from(f)),
        mysql::Value::Double(f) => Value::Float(f),
        mysql::Value::Bytes(b) => {
            if col.character_set() == BINARY_CHARSET && !is_numeric(col.column_type()) {
                Value::Bytes(b)
            } else {
                match String::from_utf8(b) {
                    Ok(s) => Value::Text(s),
                    Err(e) => Value::Bytes(e.into_bytes()),
                }
            }
        }
        mysql::Value::Date(y, mo, d, h, mi, s, _) => {
            if col.column_type() == ColumnType::MYSQL_TYPE_DATE {
                Value::Text(format!("{y:04}-{mo:02}-{d:02}"))
            } else {
                Value::Text(format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}"))
            }
        }
        mysql::Value::Time(neg, d, h, mi, s, _) => {
            let hours = u32::from(h) + d * 24;
            Value::Text(format!("{}{hours:02}:{mi:02}:{s:02}", if neg { "-" } else { "" }))
        }
    }
}

fn is_numeric(t: ColumnType) -> bool {
    matches!(t, ColumnType::MYSQL_TYPE_DECIMAL | ColumnType::MYSQL_TYPE_NEWDECIMAL)
}

impl MysqlSession {
    fn fail(&mut self, e: mysql::Error) -> StoreError {
        classify(e, &self.label, &mut self.broken)
    }
}

/// Maps a driver error to ours, marking the connection broken when the error means so.
fn classify(e: mysql::Error, label: &str, broken: &mut bool) -> StoreError {
    let reason = redact(&e.to_string());
    let store = label.to_owned();
    match e {
        mysql::Error::MySqlError(ref m) if CONNECTION_CODES.contains(&m.code) => {
            *broken = true;
            StoreError::ConnectionLost { store, reason }
        }
        mysql::Error::MySqlError(m) => StoreError::Query { store, code: Some(u32::from(m.code)), message: m.message },
        mysql::Error::DriverError(
            mysql::DriverError::MismatchedStmtParams(..)
            | mysql::DriverError::Params(_)
            | mysql::DriverError::MixedParams,
        ) => StoreError::Query { store, code: None, message: reason },
        mysql::Error::FromValueError(_) | mysql::Error::FromRowError(_) => {
            StoreError::Column { column: "?".into(), reason }
        }
        mysql::Error::UrlError(_) => StoreError::BadUrl { url: store, reason },
        _ => {
            *broken = true;
            StoreError::ConnectionLost { store, reason }
        }
    }
}

impl Session for MysqlSession {
    fn dialect(&self) -> Dialect {
        Dialect::Mysql
    }

    fn label(&self) -> &str {
        &self.label
    }

    fn exec(&mut self, sql: &str, values: &[Value]) -> Result<u64, StoreError> {
        let r = if values.is_empty() { self.conn.query_drop(sql) } else { self.conn.exec_drop(sql, params(values)) };
        r.map_err(|e| self.fail(e))?;
        Ok(self.conn.affected_rows())
    }

    fn exec_script(&mut self, sql: &str) -> Result<(), StoreError> {
        self.conn.query_drop(sql).map_err(|e| self.fail(e))
    }

    fn query(&mut self, sql: &str, values: &[Value]) -> Result<Vec<Row>, StoreError> {
        // Always the binary protocol, even without parameters, so values come back typed.
        let result = self.conn.exec_iter(sql, params(values));
        let mut result = match result {
            Ok(r) => r,
            Err(e) => return Err(classify(e, &self.label, &mut self.broken)),
        };
        let mut rows = Vec::new();
        let mut failure = None;
        let columns: Arc<[String]> = result.columns().as_ref().iter().map(|c| c.name_str().into_owned()).collect();
        for row in result.by_ref() {
            match row {
                Ok(row) => {
                    let cols = row.columns();
                    let values = row.unwrap().into_iter().zip(cols.iter()).map(|(v, c)| from_mysql(v, c)).collect();
                    rows.push(Row::new(columns.clone(), values));
                }
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        drop(result);
        match failure {
            Some(e) => Err(classify(e, &self.label, &mut self.broken)),
            None => Ok(rows),
        }
    }

    fn last_insert_id(&mut self) -> u64 {
        self.conn.last_insert_id()
    }

    fn table_exists(&mut self, table: &str) -> Result<bool, StoreError> {
        let rows = self.query(
            "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?",
            &[table.into()],
        )?;
        Ok(!rows.is_empty())
    }

    fn columns(&mut self, table: &str) -> Result<Vec<String>, StoreError> {
        let rows = self.query(
            "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? \
             ORDER BY ORDINAL_POSITION",
            &[table.into()],
        )?;
        rows.iter().map(|r| r.get::<String>(0)).collect()
    }

    fn index_exists(&mut self, table: &str, index: &str) -> Result<bool, StoreError> {
        let rows = self.query(
            "SELECT 1 FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? \
             AND INDEX_NAME = ? LIMIT 1",
            &[table.into(), index.into()],
        )?;
        Ok(!rows.is_empty())
    }

    fn load_data(&mut self, table: &str, columns: &[&str], tsv: Vec<u8>) -> Result<u64, StoreError> {
        let d = Dialect::Mysql;
        let cols = columns.iter().map(|c| d.quote(c)).collect::<Result<Vec<_>, _>>()?.join(",");
        let sql = format!(
            "LOAD DATA LOCAL INFILE 'tars-rs-batch' INTO TABLE {} CHARACTER SET utf8 ({cols})",
            d.quote(table)?
        );
        let data = Arc::new(tsv);
        self.conn.set_local_infile_handler(Some(LocalInfileHandler::new(move |_, w| w.write_all(&data))));
        let r = self.conn.query_drop(&sql);
        self.conn.set_local_infile_handler(None);
        r.map_err(|e| self.fail(e))?;
        Ok(self.conn.affected_rows())
    }

    fn is_broken(&self) -> bool {
        self.broken
    }

    fn ping(&mut self) -> bool {
        if self.conn.ping().is_err() {
            self.broken = true;
        }
        !self.broken
    }
}
