//! Renders the logical schema as DDL for each backend.
//!
//! MySQL gets upstream's DDL shape (display widths, `ENGINE=InnoDB DEFAULT CHARSET=utf8`,
//! `ON UPDATE CURRENT_TIMESTAMP`). SQLite gets the same tables with SQLite's types; what SQLite
//! lacks is emulated: a trigger bumps `ON UPDATE` timestamps, and an auto-increment column that
//! is not the primary key is filled by an insert trigger.

use crate::error::StoreError;
use crate::schema::{index_column, is_identifier, ColType, Column, DefaultValue, Index, IndexKind, Table};

/// Which SQL dialect a backend speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// MySQL or MariaDB.
    Mysql,
    /// SQLite (the embedded default).
    Sqlite,
}

impl Dialect {
    /// Quotes an identifier after checking it (identifiers cannot be bound as parameters).
    pub fn quote(self, ident: &str) -> Result<String, StoreError> {
        if !is_identifier(ident) {
            return Err(StoreError::BadIdentifier(ident.to_owned()));
        }
        Ok(match self {
            Dialect::Mysql => format!("`{ident}`"),
            Dialect::Sqlite => format!("\"{ident}\""),
        })
    }

    /// The insert verb for `mode`.
    pub fn insert_verb(self, mode: InsertMode) -> &'static str {
        match (self, mode) {
            (_, InsertMode::Plain) => "INSERT INTO",
            (Dialect::Mysql, InsertMode::Ignore) => "INSERT IGNORE INTO",
            (Dialect::Sqlite, InsertMode::Ignore) => "INSERT OR IGNORE INTO",
            (_, InsertMode::Replace) => "REPLACE INTO",
        }
    }

    /// The statement that opens a write transaction.
    pub fn begin(self) -> &'static str {
        match self {
            Dialect::Mysql => "START TRANSACTION",
            // Take the write lock up front: a deferred transaction that later upgrades can fail
            // with SQLITE_BUSY half-way through a batch.
            Dialect::Sqlite => "BEGIN IMMEDIATE",
        }
    }

    /// The largest number of bound parameters one statement may carry.
    pub fn max_params(self) -> usize {
        match self {
            Dialect::Mysql => 65_535,
            Dialect::Sqlite => 32_766,
        }
    }

    /// The current time as the database's timestamp columns hold it: MySQL's session-time
    /// `CURRENT_TIMESTAMP`; on SQLite local time, as the defaults and `ON UPDATE` triggers this
    /// module renders write it (SQLite's own `CURRENT_TIMESTAMP` is UTC). Use it, never a bare
    /// `CURRENT_TIMESTAMP`, in statements that compare or set timestamps.
    pub fn now(self) -> &'static str {
        match self {
            Dialect::Mysql => "CURRENT_TIMESTAMP",
            Dialect::Sqlite => "datetime('now','localtime')",
        }
    }

    /// An expression for the instant `seconds` (one bound integer parameter, `?`) before the
    /// SQL expression `at`, in the database's own clock and timestamp format. Liveness checks
    /// compare against the database clock so registry and database clocks need not agree.
    pub fn seconds_before(self, at: &str) -> String {
        match self {
            Dialect::Mysql => format!("({at} - INTERVAL ? SECOND)"),
            Dialect::Sqlite => format!("datetime({at}, '-' || ? || ' seconds')"),
        }
    }

    /// The tail of an `INSERT ... VALUES (...)` that turns it into an upsert on the unique key
    /// `key`: MySQL's `ON DUPLICATE KEY UPDATE`, SQLite's `ON CONFLICT (key) DO UPDATE`. SQLite
    /// needs the key spelled out and it must match a unique index; MySQL ignores it.
    pub fn on_conflict_update(self, key: &[&str], set: &[(&str, SetTo<'_>)]) -> Result<String, StoreError> {
        let mut assigns = Vec::with_capacity(set.len());
        for (col, to) in set {
            let q = self.quote(col)?;
            let value = match (to, self) {
                (SetTo::New, Dialect::Mysql) => format!("VALUES({q})"),
                (SetTo::New, Dialect::Sqlite) => format!("excluded.{q}"),
                (SetTo::Expr(e), _) => (*e).to_owned(),
            };
            assigns.push(format!("{q} = {value}"));
        }
        Ok(match self {
            Dialect::Mysql => format!(" ON DUPLICATE KEY UPDATE {}", assigns.join(", ")),
            Dialect::Sqlite => {
                let key = key.iter().map(|k| self.quote(k)).collect::<Result<Vec<_>, _>>()?;
                format!(" ON CONFLICT ({}) DO UPDATE SET {}", key.join(", "), assigns.join(", "))
            }
        })
    }

    /// Name for logs and errors.
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Mysql => "mysql",
            Dialect::Sqlite => "sqlite",
        }
    }
}

/// What an upsert writes into a column of the existing row (see [`Dialect::on_conflict_update`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetTo<'a> {
    /// The value the insert carried for that column.
    New,
    /// A SQL expression, e.g. `CURRENT_TIMESTAMP` (never built from input: use `New` for values).
    Expr(&'a str),
}

/// What an insert does with a row whose key already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InsertMode {
    /// Fail the statement.
    #[default]
    Plain,
    /// Keep the existing row.
    Ignore,
    /// Replace the existing row.
    Replace,
}

fn escape_str(v: &str) -> String {
    format!("'{}'", v.replace('\\', "\\\\").replace('\'', "''"))
}

fn escape_str_sqlite(v: &str) -> String {
    format!("'{}'", v.replace('\'', "''"))
}

fn index_cols(d: Dialect, cols: &[&str], keep_prefix: bool) -> Result<String, StoreError> {
    let mut out = Vec::with_capacity(cols.len());
    for spec in cols {
        let (name, prefix) = index_column(spec);
        let q = d.quote(name)?;
        out.push(match prefix {
            Some(n) if keep_prefix => format!("{q}({n})"),
            _ => q,
        });
    }
    Ok(out.join(","))
}

fn mysql_type(ty: ColType) -> String {
    match ty {
        ColType::TinyInt(w) => format!("tinyint({w})"),
        ColType::SmallInt(w) => format!("smallint({w})"),
        ColType::Int(w) => format!("int({w})"),
        ColType::UInt(w) => format!("int({w}) unsigned"),
        ColType::BigInt(w) => format!("bigint({w})"),
        ColType::UBigInt(w) => format!("bigint({w}) unsigned"),
        ColType::Float => "float".into(),
        ColType::Char(n) => format!("char({n})"),
        ColType::Varchar(n) => format!("varchar({n})"),
        ColType::Text => "text".into(),
        ColType::LongText => "longtext".into(),
        ColType::Date => "date".into(),
        ColType::DateTime => "datetime".into(),
        ColType::Timestamp => "timestamp".into(),
        ColType::Enum(vals) => {
            format!("enum({})", vals.iter().map(|v| escape_str(v)).collect::<Vec<_>>().join(","))
        }
    }
}

/// One column's definition in MySQL.
pub fn mysql_column(c: &Column) -> Result<String, StoreError> {
    let mut s = format!("{} {}", Dialect::Mysql.quote(c.name)?, mysql_type(c.ty));
    if c.not_null {
        s.push_str(" NOT NULL");
    }
    if c.auto_increment {
        s.push_str(" AUTO_INCREMENT");
    }
    match c.default {
        DefaultValue::None => {}
        DefaultValue::Null => s.push_str(" DEFAULT NULL"),
        DefaultValue::Str(v) => s.push_str(&format!(" DEFAULT {}", escape_str(v))),
        DefaultValue::Int(v) => s.push_str(&format!(" DEFAULT {v}")),
        DefaultValue::Now => s.push_str(" DEFAULT CURRENT_TIMESTAMP"),
    }
    if c.on_update_now {
        s.push_str(" ON UPDATE CURRENT_TIMESTAMP");
    }
    Ok(s)
}

fn mysql_index(i: &Index) -> Result<String, StoreError> {
    let cols = index_cols(Dialect::Mysql, i.columns, true)?;
    let name = Dialect::Mysql.quote(i.name)?;
    Ok(match i.kind {
        IndexKind::Primary => format!("PRIMARY KEY ({cols})"),
        IndexKind::Unique => format!("UNIQUE KEY {name} ({cols})"),
        IndexKind::Key => format!("KEY {name} ({cols})"),
    })
}

/// `CREATE TABLE IF NOT EXISTS` for MySQL, as one statement.
pub fn mysql_create_table(t: &Table) -> Result<String, StoreError> {
    let mut parts = Vec::with_capacity(t.columns.len() + t.indexes.len());
    for c in &t.columns {
        parts.push(mysql_column(c)?);
    }
    for i in &t.indexes {
        parts.push(mysql_index(i)?);
    }
    Ok(format!(
        "CREATE TABLE IF NOT EXISTS {} (\n  {}\n) ENGINE=InnoDB DEFAULT CHARSET=utf8",
        Dialect::Mysql.quote(&t.name)?,
        parts.join(",\n  ")
    ))
}

/// `ALTER TABLE ... ADD INDEX` for MySQL.
pub fn mysql_add_index(table: &str, i: &Index) -> Result<String, StoreError> {
    Ok(format!("ALTER TABLE {} ADD {}", Dialect::Mysql.quote(table)?, mysql_index(i)?))
}

fn sqlite_type(ty: ColType) -> &'static str {
    match ty {
        ColType::TinyInt(_)
        | ColType::SmallInt(_)
        | ColType::Int(_)
        | ColType::UInt(_)
        | ColType::BigInt(_)
        | ColType::UBigInt(_) => "INTEGER",
        ColType::Float => "REAL",
        _ => "TEXT",
    }
}

const SQLITE_NOW: &str = "(datetime('now','localtime'))";

/// One column's definition in SQLite. `pk_inline` renders `INTEGER PRIMARY KEY AUTOINCREMENT`.
fn sqlite_column(c: &Column, pk_inline: bool) -> Result<String, StoreError> {
    let name = Dialect::Sqlite.quote(c.name)?;
    if pk_inline {
        return Ok(format!("{name} INTEGER PRIMARY KEY AUTOINCREMENT"));
    }
    let mut s = format!("{name} {}", sqlite_type(c.ty));
    if c.not_null && !c.auto_increment {
        s.push_str(" NOT NULL");
    }
    match c.default {
        DefaultValue::None => {}
        DefaultValue::Null => s.push_str(" DEFAULT NULL"),
        // A numeric default stays numeric, so the column reads back as a number.
        DefaultValue::Str(v) if sqlite_type(c.ty) != "TEXT" && v.parse::<f64>().is_ok() => {
            s.push_str(&format!(" DEFAULT {v}"))
        }
        DefaultValue::Str(v) => s.push_str(&format!(" DEFAULT {}", escape_str_sqlite(v))),
        DefaultValue::Int(v) => s.push_str(&format!(" DEFAULT {v}")),
        DefaultValue::Now => s.push_str(&format!(" DEFAULT {SQLITE_NOW}")),
    }
    if let ColType::Enum(vals) = c.ty {
        let list = vals.iter().map(|v| escape_str_sqlite(v)).collect::<Vec<_>>().join(",");
        s.push_str(&format!(" CHECK ({name} IN ({list}))"));
    }
    Ok(s)
}

/// Statements that emulate MySQL column behaviour SQLite lacks, for column `c` of `table`.
fn sqlite_column_triggers(table: &str, c: &Column, pk_inline: bool) -> Result<Vec<String>, StoreError> {
    let t = Dialect::Sqlite.quote(table)?;
    let n = Dialect::Sqlite.quote(c.name)?;
    let mut out = Vec::new();
    if c.on_update_now {
        let trig = Dialect::Sqlite.quote(&format!("{table}__touch_{}", c.name))?;
        out.push(format!(
            "CREATE TRIGGER IF NOT EXISTS {trig} AFTER UPDATE ON {t} FOR EACH ROW WHEN NEW.{n} IS OLD.{n} \
             BEGIN UPDATE {t} SET {n} = datetime('now','localtime') WHERE rowid = NEW.rowid; END"
        ));
    }
    if c.auto_increment && !pk_inline {
        let trig = Dialect::Sqlite.quote(&format!("{table}__autoinc_{}", c.name))?;
        out.push(format!(
            "CREATE TRIGGER IF NOT EXISTS {trig} AFTER INSERT ON {t} FOR EACH ROW WHEN NEW.{n} IS NULL \
             BEGIN UPDATE {t} SET {n} = (SELECT IFNULL(MAX({n}), 0) + 1 FROM {t}) WHERE rowid = NEW.rowid; END"
        ));
    }
    Ok(out)
}

/// The SQLite name of an index: index names are per database there, per table in MySQL, so
/// the table's name goes in front. When that is longer than an identifier may be (a long
/// table prefix and an hourly suffix), the name is cut and ends in a hash of the whole, so it
/// stays valid, unique and the same on every run.
pub fn sqlite_index_name(table: &str, index: &str) -> String {
    let full = format!("{table}__{index}");
    if full.len() <= MAX_IDENTIFIER {
        return full;
    }
    // FNV-1a, 64 bits: stable across builds and platforms (std's hashers are not).
    let hash = full.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    // Identifiers are ASCII, so any byte index is a char boundary.
    format!("{}_{hash:016x}", &full[..MAX_IDENTIFIER - 17])
}

/// The longest identifier [`is_identifier`] accepts (MySQL's limit).
const MAX_IDENTIFIER: usize = 64;

fn sqlite_index(table: &str, i: &Index) -> Result<Option<String>, StoreError> {
    let verb = match i.kind {
        IndexKind::Primary => return Ok(None),
        IndexKind::Unique => "CREATE UNIQUE INDEX",
        IndexKind::Key => "CREATE INDEX",
    };
    Ok(Some(format!(
        "{verb} IF NOT EXISTS {} ON {} ({})",
        Dialect::Sqlite.quote(&sqlite_index_name(table, i.name))?,
        Dialect::Sqlite.quote(table)?,
        index_cols(Dialect::Sqlite, i.columns, false)?
    )))
}

fn inline_pk(t: &Table, c: &Column) -> bool {
    c.auto_increment && t.primary_key().is_some_and(|pk| pk.columns == [c.name])
}

/// The statements that create `t` in SQLite: the table, its indexes and its triggers.
pub fn sqlite_create_table(t: &Table) -> Result<Vec<String>, StoreError> {
    let mut parts = Vec::new();
    let mut extra = Vec::new();
    for c in &t.columns {
        let inline = inline_pk(t, c);
        parts.push(sqlite_column(c, inline)?);
        extra.extend(sqlite_column_triggers(&t.name, c, inline)?);
    }
    for i in &t.indexes {
        match i.kind {
            IndexKind::Primary if i.columns.len() == 1 && t.column(i.columns[0]).is_some_and(|c| inline_pk(t, c)) => {}
            IndexKind::Primary => {
                parts.push(format!("PRIMARY KEY ({})", index_cols(Dialect::Sqlite, i.columns, false)?))
            }
            _ => extra.extend(sqlite_index(&t.name, i)?),
        }
    }
    let mut out =
        vec![format!("CREATE TABLE IF NOT EXISTS {} (\n  {}\n)", Dialect::Sqlite.quote(&t.name)?, parts.join(",\n  "))];
    out.extend(extra);
    Ok(out)
}

/// The statements that add column `c` to `table`.
pub fn add_column(d: Dialect, table: &str, c: &Column) -> Result<Vec<String>, StoreError> {
    match d {
        Dialect::Mysql => Ok(vec![format!("ALTER TABLE {} ADD COLUMN {}", d.quote(table)?, mysql_column(c)?)]),
        Dialect::Sqlite => {
            if c.auto_increment {
                // SQLite cannot add one to an existing table; no migration needs it.
                return Err(StoreError::Unsupported { what: "adding an auto-increment column", backend: "sqlite" });
            }
            let t = d.quote(table)?;
            let n = d.quote(c.name)?;
            if c.default != DefaultValue::Now {
                let mut out = vec![format!("ALTER TABLE {t} ADD COLUMN {}", sqlite_column(c, false)?)];
                out.extend(sqlite_column_triggers(table, c, false)?);
                return Ok(out);
            }
            // ALTER TABLE cannot add a column whose default is not a constant: add it bare,
            // stamp the existing rows, and let an insert trigger supply the default.
            let bare = Column { default: DefaultValue::None, not_null: false, ..*c };
            let trig = d.quote(&format!("{table}__default_{}", c.name))?;
            let mut out = vec![
                format!("ALTER TABLE {t} ADD COLUMN {}", sqlite_column(&bare, false)?),
                format!("UPDATE {t} SET {n} = datetime('now','localtime')"),
                format!(
                    "CREATE TRIGGER IF NOT EXISTS {trig} AFTER INSERT ON {t} FOR EACH ROW WHEN NEW.{n} IS NULL \
                     BEGIN UPDATE {t} SET {n} = datetime('now','localtime') WHERE rowid = NEW.rowid; END"
                ),
            ];
            out.extend(sqlite_column_triggers(table, c, false)?);
            Ok(out)
        }
    }
}

/// The statements that create `t` in dialect `d`.
pub fn create_table(d: Dialect, t: &Table) -> Result<Vec<String>, StoreError> {
    match d {
        Dialect::Mysql => Ok(vec![mysql_create_table(t)?]),
        Dialect::Sqlite => sqlite_create_table(t),
    }
}

/// The statements that add index `i` to `table`.
pub fn add_index(d: Dialect, table: &str, i: &Index) -> Result<Vec<String>, StoreError> {
    match d {
        Dialect::Mysql => Ok(vec![mysql_add_index(table, i)?]),
        Dialect::Sqlite => Ok(sqlite_index(table, i)?.into_iter().collect()),
    }
}
