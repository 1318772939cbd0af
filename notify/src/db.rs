//! Every statement tarsnotify runs on `db_tars.t_server_notifys`, each value bound. The
//! functions take a [`Session`]: they run on a `tars-store-*` worker, never on a shard.

use std::time::Instant;

use tars_sql::{params, transaction, Row, Session, StoreError, Value};

use crate::notice::Notice;

const COLUMNS: &str = "application, server_name, container_name, node_name, set_name, set_area, set_group, \
                       server_id, thread_id, command, result, notifytime";
/// Bound values per row (`notifytime` is the database's clock minus one bound age).
const PARAMS_PER_ROW: usize = 12;
/// Rows per INSERT statement (well under both backends' parameter limits).
pub const ROWS_PER_INSERT: usize = 500;

/// Inserts `rows` in one transaction, as multi-row INSERTs of at most [`ROWS_PER_INSERT`].
/// `notifytime` is the database's `now` minus each row's age at `now` in whole seconds, so a
/// batch written late keeps the times the notices arrived, on the database's clock (upstream
/// writes `now()` at its synchronous insert). Returns the rows inserted.
pub fn insert(s: &mut dyn Session, rows: &[Notice], now: Instant) -> Result<u64, StoreError> {
    if rows.is_empty() {
        return Ok(0);
    }
    let d = s.dialect();
    let tuple = format!("(?,?,?,?,?,?,?,?,?,?,?,{})", d.seconds_before(d.now()));
    transaction(s, |s| {
        let mut n = 0;
        for part in rows.chunks(ROWS_PER_INSERT) {
            let mut sql = format!("INSERT INTO t_server_notifys ({COLUMNS}) VALUES ");
            let mut values = Vec::with_capacity(part.len() * PARAMS_PER_ROW);
            for (i, r) in part.iter().enumerate() {
                if i > 0 {
                    sql.push(',');
                }
                sql.push_str(&tuple);
                values.extend([
                    Value::from(r.application.as_str()),
                    Value::from(r.server_name.as_str()),
                    Value::from(r.container_name.as_str()),
                    Value::from(r.node_name.as_str()),
                ]);
                match &r.set {
                    Some([name, area, group]) => {
                        values.extend([Value::from(name), Value::from(area), Value::from(group)]);
                    }
                    None => values.extend([Value::Null, Value::Null, Value::Null]),
                }
                let age = now.saturating_duration_since(r.received).as_secs();
                values.extend([
                    Value::from(r.server_id.as_str()),
                    Value::from(r.thread_id.as_str()),
                    Value::from(r.command),
                    Value::from(r.result.as_str()),
                    Value::Int(i64::try_from(age).unwrap_or(i64::MAX)),
                ]);
            }
            n += s.exec(&sql, &values)?;
        }
        Ok(n)
    })
}

/// One `server_id` with more rows than retention keeps (`None`: rows without one).
pub type ServerId = Option<String>;

/// The `server_id`s with more than `keep` rows.
pub fn servers_over(s: &mut dyn Session, keep: u64) -> Result<Vec<ServerId>, StoreError> {
    let rows = s.query(
        "SELECT server_id FROM t_server_notifys GROUP BY server_id HAVING COUNT(*) > ? ORDER BY server_id",
        &[Value::Int(i64::try_from(keep).unwrap_or(i64::MAX))],
    )?;
    rows.iter().map(|r| r.get_by::<Option<String>>("server_id")).collect()
}

fn ids(rows: &[Row]) -> Result<Vec<i64>, StoreError> {
    rows.iter().map(|r| r.get_by::<i64>("id")).collect()
}

fn delete_ids(s: &mut dyn Session, ids: &[i64]) -> Result<u64, StoreError> {
    if ids.is_empty() {
        return Ok(0);
    }
    let sql = format!("DELETE FROM t_server_notifys WHERE id IN ({})", vec!["?"; ids.len()].join(","));
    let values: Vec<Value> = ids.iter().map(|&i| Value::Int(i)).collect();
    s.exec(&sql, &values)
}

/// What one bounded retention step did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Step {
    /// Rows it found to delete (at most the batch).
    pub found: usize,
    /// Rows it deleted (fewer when another instance got there first).
    pub deleted: u64,
}

/// Deletes up to `batch` rows of `server_id` beyond its newest `keep` (newest by
/// `notifytime`, then `id`, as TarsWeb lists them; rows without a time count as oldest).
pub fn delete_beyond(s: &mut dyn Session, server_id: &ServerId, keep: u64, batch: usize) -> Result<Step, StoreError> {
    let limit = Value::Int(i64::try_from(batch).unwrap_or(i64::MAX));
    let offset = Value::Int(i64::try_from(keep).unwrap_or(i64::MAX));
    let rows = match server_id {
        Some(id) => s.query(
            "SELECT id FROM t_server_notifys WHERE server_id = ? ORDER BY notifytime DESC, id DESC LIMIT ? OFFSET ?",
            &[Value::from(id.as_str()), limit, offset],
        )?,
        None => s.query(
            "SELECT id FROM t_server_notifys WHERE server_id IS NULL ORDER BY notifytime DESC, id DESC \
             LIMIT ? OFFSET ?",
            &[limit, offset],
        )?,
    };
    let ids = ids(&rows)?;
    Ok(Step { found: ids.len(), deleted: delete_ids(s, &ids)? })
}

/// Deletes up to `batch` rows whose `notifytime` is more than `days` days before the
/// database's `now` (rows without a time are kept).
pub fn delete_older(s: &mut dyn Session, days: u64, batch: usize) -> Result<Step, StoreError> {
    let d = s.dialect();
    let sql =
        format!("SELECT id FROM t_server_notifys WHERE notifytime < {} ORDER BY id LIMIT ?", d.seconds_before(d.now()));
    let secs = days.saturating_mul(86_400);
    let rows = s.query(
        &sql,
        &params![
            Value::Int(i64::try_from(secs).unwrap_or(i64::MAX)),
            Value::Int(i64::try_from(batch).unwrap_or(i64::MAX))
        ],
    )?;
    let ids = ids(&rows)?;
    Ok(Step { found: ids.len(), deleted: delete_ids(s, &ids)? })
}
