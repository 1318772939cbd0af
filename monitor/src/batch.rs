//! A batch: the rows one flush writes into one database's hourly table, and the identity
//! that makes writing it idempotent.
//!
//! Batches are what the spool keeps (TARS-encoded from `tars/Batch.tars`), so a batch read
//! back from disk is checked like network input: names that become SQL identifiers must be
//! plain, and every row must have the same width.

use tars_proto::codec::{Struct as _, WireType, Writer};
use tars_sql::Value;

use crate::wire::tarsrs::{Cell, SpooledBatch};

const MAGIC: &str = "tars-rs monitor batch";
const VERSION: i32 = 1;

/// One database's share of one window, ready to be written.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// Unique per (writer, window, database, process generation); recorded in the ledger
    /// table in the same transaction as the rows, so a replay never writes them twice.
    pub id: String,
    /// `YYYYMMDD`: the day whose 24 tables must exist first.
    pub table_date: String,
    /// The hourly table, `<prefix>YYYYMMDDHH`.
    pub table: String,
    /// `t_ecstatus.appname` (`<prefix><source ip>`, as upstream).
    pub app_name: String,
    /// `t_ecstatus.lasttime` (`YYYYMMDD HHMM`, the window's label).
    pub last_time: String,
    /// The rows, in the service's column order.
    pub rows: Vec<Vec<Value>>,
}

/// A spooled batch that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// The bytes are not a batch this build reads.
    #[error("spooled batch: {0}")]
    Corrupt(String),
}

impl Batch {
    /// The spool's encoding: exactly the bytes of the generated `SpooledBatch` with these
    /// fields, written straight from the rows (the writer encodes every batch before its
    /// first write attempt, so copying each cell into a `Cell` first would cost about 5% of
    /// a flush).
    pub fn encode(&self) -> Vec<u8> {
        let text: usize = self.rows.iter().flatten().map(|v| if let Value::Text(t) = v { t.len() } else { 0 }).sum();
        let cells: usize = self.rows.iter().map(Vec::len).sum();
        let mut w = Writer::with_capacity(256 + text + cells * 12 + self.rows.len() * 4);
        w.write_str(0, MAGIC);
        w.write_int(1, VERSION.into());
        w.write_str(2, &self.id);
        w.write_str(3, &self.table_date);
        w.write_str(4, &self.table);
        w.write_str(5, &self.app_name);
        w.write_str(6, &self.last_time);
        w.write_head(7, WireType::List);
        w.write_len(self.rows.len());
        for row in &self.rows {
            w.begin_struct(0);
            w.write_head(0, WireType::List);
            w.write_len(row.len());
            for v in row {
                w.begin_struct(0);
                write_cell(v, &mut w);
                w.end_struct();
            }
            w.end_struct();
        }
        w.as_slice().to_vec()
    }

    /// Reads a batch back from the spool.
    pub fn decode(bytes: &[u8]) -> Result<Batch, BatchError> {
        let b = SpooledBatch::decode(bytes).map_err(|e| BatchError::Corrupt(e.to_string()))?;
        if b.magic != MAGIC || b.version != VERSION {
            return Err(BatchError::Corrupt(format!("not a batch of version {VERSION}")));
        }
        if !is_identifier(&b.table) {
            return Err(BatchError::Corrupt(format!("table name {:?}", b.table)));
        }
        if b.table_date.len() != 8 || !b.table_date.bytes().all(|c| c.is_ascii_digit()) {
            return Err(BatchError::Corrupt(format!("table date {:?}", b.table_date)));
        }
        let width = b.rows.first().map_or(0, |r| r.cells.len());
        let mut rows = Vec::with_capacity(b.rows.len());
        for r in b.rows {
            if r.cells.len() != width {
                return Err(BatchError::Corrupt("rows of different widths".into()));
            }
            rows.push(r.cells.into_iter().map(from_cell).collect::<Result<Vec<_>, _>>()?);
        }
        Ok(Batch {
            id: b.id,
            table_date: b.table_date,
            table: b.table,
            app_name: b.app_name,
            last_time: b.last_time,
            rows,
        })
    }
}

/// Letters, digits and `_` only: what may be spliced into SQL as a table name.
pub fn is_identifier(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// `Cell`'s fields for `v`, as the generated encoder writes them (optional fields only when
/// not at their default).
fn write_cell(v: &Value, w: &mut Writer) {
    let (kind, i, f, s, b): (i64, i64, f64, &[u8], &[u8]) = match v {
        Value::Null => (0, 0, 0.0, &[], &[]),
        Value::Int(i) => (1, *i, 0.0, &[], &[]),
        Value::UInt(u) => (2, i64::from_ne_bytes(u.to_ne_bytes()), 0.0, &[], &[]),
        Value::Float(f) => (3, 0, *f, &[], &[]),
        Value::Text(s) => (4, 0, 0.0, s.as_bytes(), &[]),
        Value::Bytes(b) => (5, 0, 0.0, &[], b),
    };
    w.write_int(0, kind);
    if i != 0 {
        w.write_int(1, i);
    }
    if f != 0.0 {
        w.write_f64(2, f);
    }
    if !s.is_empty() {
        w.write_str_bytes(3, s);
    }
    if !b.is_empty() {
        w.write_simple_list(4, b);
    }
}

#[cfg(test)]
fn to_cell(v: &Value) -> Cell {
    match v {
        Value::Null => Cell { kind: 0, ..Cell::default() },
        Value::Int(i) => Cell { kind: 1, i: *i, ..Cell::default() },
        Value::UInt(u) => Cell { kind: 2, i: i64::from_ne_bytes(u.to_ne_bytes()), ..Cell::default() },
        Value::Float(f) => Cell { kind: 3, f: *f, ..Cell::default() },
        Value::Text(s) => Cell { kind: 4, s: s.clone(), ..Cell::default() },
        Value::Bytes(b) => Cell { kind: 5, b: bytes::Bytes::copy_from_slice(b), ..Cell::default() },
    }
}

fn from_cell(c: Cell) -> Result<Value, BatchError> {
    Ok(match c.kind {
        0 => Value::Null,
        1 => Value::Int(c.i),
        2 => Value::UInt(u64::from_ne_bytes(c.i.to_ne_bytes())),
        3 => Value::Float(c.f),
        4 => Value::Text(c.s),
        5 => Value::Bytes(c.b.to_vec()),
        k => return Err(BatchError::Corrupt(format!("cell kind {k}"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::tarsrs::Row;

    fn batch() -> Batch {
        Batch {
            id: "tars_stat_10.0.0.1|1764151200|0|1".into(),
            table_date: "20251126".into(),
            table: "tars_stat_2025112610".into(),
            app_name: "tars_stat_10.0.0.1".into(),
            last_time: "20251126 1005".into(),
            rows: vec![
                vec![Value::Text("a".into()), Value::Int(-3), Value::UInt(u64::MAX), Value::Null, Value::Float(1.5)],
                vec![
                    Value::Text("b".into()),
                    Value::Int(7),
                    Value::UInt(0),
                    Value::Bytes(vec![0, 1]),
                    Value::Float(0.0),
                ],
            ],
        }
    }

    #[test]
    fn a_batch_reads_back_exactly() {
        let b = batch();
        assert_eq!(Batch::decode(&b.encode()).expect("decodes"), b);
    }

    /// The direct encoder writes the generated struct's bytes.
    #[test]
    fn encode_is_the_generated_encoding() {
        let mut b = batch();
        b.rows.push(vec![
            Value::Text(String::new()),
            Value::Int(0),
            Value::UInt(1 << 63),
            Value::Bytes(Vec::new()),
            Value::Float(-0.25),
        ]);
        b.rows.push(vec![Value::Text("é中\t\n".into()); 5]);
        let generated = SpooledBatch {
            magic: MAGIC.to_owned(),
            version: VERSION,
            id: b.id.clone(),
            table_date: b.table_date.clone(),
            table: b.table.clone(),
            app_name: b.app_name.clone(),
            last_time: b.last_time.clone(),
            rows: b.rows.iter().map(|r| Row { cells: r.iter().map(to_cell).collect() }).collect(),
        }
        .encode();
        assert_eq!(b.encode(), generated.to_vec());
        assert_eq!(Batch::decode(&b.encode()).expect("decodes"), b);
    }

    #[test]
    fn damaged_or_unsafe_batches_are_refused() {
        let mut b = batch();
        b.table = "x; DROP TABLE t_ecstatus".into();
        assert!(Batch::decode(&b.encode()).is_err());
        let mut b = batch();
        b.rows[1].pop();
        assert!(Batch::decode(&b.encode()).is_err());
        let bytes = batch().encode();
        for cut in [0, 1, bytes.len() / 2, bytes.len() - 1] {
            assert!(Batch::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        assert!(Batch::decode(b"garbage").is_err());
    }
}
