//! The [`Source`] that reads the database directly, on a store worker: every value bound,
//! one statement per lookup, as upstream (which spliced escaped strings instead).

use tars_sql::{Row, Session, StoreError, Value};

use crate::files::{FileKey, ListKey, Source};

/// A database session as a [`Source`]. Lives on a `tars-store-*` worker for one call.
pub struct SqlSource<'a>(pub &'a mut dyn Session);

impl std::fmt::Debug for SqlSource<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqlSource")
    }
}

fn text(row: &Row, col: &str) -> Result<String, StoreError> {
    Ok(row.get_by::<Option<String>>(col)?.unwrap_or_default())
}

impl Source for SqlSource<'_> {
    type Error = StoreError;

    fn file(&mut self, key: &FileKey<'_>) -> Result<Option<(i64, String)>, StoreError> {
        let mut sql = String::from(
            "SELECT id, config FROM t_config_files WHERE server_name = ? AND filename = ? AND level = ? \
             AND set_name = ? AND set_area = ? AND set_group = ?",
        );
        let mut params = vec![
            Value::from(key.server_name),
            Value::from(key.filename),
            Value::Int(i64::from(key.level)),
            Value::from(key.set.name.as_str()),
            Value::from(key.set.area.as_str()),
            Value::from(key.set.group.as_str()),
        ];
        if let Some(host) = key.host {
            sql.push_str(" AND host = ?");
            params.push(Value::from(host));
        }
        // Two rows are enough to know it is not exactly one.
        sql.push_str(" LIMIT 2");
        let rows = self.0.query(&sql, &params)?;
        match rows.as_slice() {
            [row] => Ok(Some((row.get_by::<i64>("id")?, text(row, "config")?))),
            _ => Ok(None),
        }
    }

    fn references(&mut self, config_id: i64) -> Result<Vec<i64>, StoreError> {
        let rows = self.0.query(
            "SELECT reference_id FROM t_config_references WHERE config_id = ? AND reference_id IS NOT NULL \
             ORDER BY reference_id",
            &[Value::Int(config_id)],
        )?;
        rows.iter().map(|r| r.get_by::<i64>("reference_id")).collect()
    }

    fn by_id(&mut self, id: i64) -> Result<Option<(String, String, String)>, StoreError> {
        let rows =
            self.0.query("SELECT server_name, filename, config FROM t_config_files WHERE id = ?", &[Value::Int(id)])?;
        match rows.first() {
            Some(r) => Ok(Some((text(r, "server_name")?, text(r, "filename")?, text(r, "config")?))),
            None => Ok(None),
        }
    }

    fn names(&mut self, key: &ListKey<'_>) -> Result<Vec<String>, StoreError> {
        let mut sql = String::from(if key.distinct {
            "SELECT DISTINCT filename FROM t_config_files WHERE server_name = ?"
        } else {
            "SELECT filename FROM t_config_files WHERE server_name = ?"
        });
        let mut params = vec![Value::from(key.server_name)];
        if let Some(level) = key.level {
            sql.push_str(" AND level = ?");
            params.push(Value::Int(i64::from(level)));
        }
        if let Some(host) = key.host {
            sql.push_str(" AND host = ?");
            params.push(Value::from(host));
        }
        if let Some(set) = key.set {
            sql.push_str(" AND set_name = ? AND set_area = ? AND set_group = ?");
            params.extend([
                Value::from(set.name.as_str()),
                Value::from(set.area.as_str()),
                Value::from(set.group.as_str()),
            ]);
        }
        sql.push_str(" AND filename IS NOT NULL");
        sql.push_str(if key.distinct { " ORDER BY filename" } else { " ORDER BY id" });
        let rows = self.0.query(&sql, &params)?;
        rows.iter().map(|r| text(r, "filename")).collect()
    }
}
