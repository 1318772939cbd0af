//! The logical schema: tables described once, as data, and rendered for each backend by
//! [`crate::ddl`].
//!
//! Describing tables as data (rather than keeping MySQL and SQLite DDL side by side) keeps the
//! two backends on one logical schema, lets migrations inspect what a table should hold, and
//! makes "never destructive" a property of the types: a migration [`Op`](crate::migrate::Op)
//! can create tables, add columns and add indexes, and there is no variant that drops anything.

pub mod db_tars;
pub mod monitor;

/// A column type, with MySQL's display widths kept so the rendered DDL matches upstream's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColType {
    /// `tinyint(w)`.
    TinyInt(u8),
    /// `smallint(w)`.
    SmallInt(u8),
    /// `int(w)`.
    Int(u8),
    /// `int(w) unsigned`.
    UInt(u8),
    /// `bigint(w)`.
    BigInt(u8),
    /// `bigint(w) unsigned`.
    UBigInt(u8),
    /// `float`.
    Float,
    /// `char(n)`.
    Char(u16),
    /// `varchar(n)`.
    Varchar(u16),
    /// `text`.
    Text,
    /// `longtext`.
    LongText,
    /// `date`.
    Date,
    /// `datetime`.
    DateTime,
    /// `timestamp`.
    Timestamp,
    /// `enum('a','b',...)`.
    Enum(&'static [&'static str]),
}

/// A column's default value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DefaultValue {
    /// No `DEFAULT` clause.
    None,
    /// `DEFAULT NULL`.
    Null,
    /// `DEFAULT 'text'` (upstream quotes numbers too: `DEFAULT '0'`).
    Str(&'static str),
    /// `DEFAULT n`.
    Int(i64),
    /// `DEFAULT CURRENT_TIMESTAMP`.
    Now,
}

/// One column.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Column {
    /// Column name.
    pub name: &'static str,
    /// Type.
    pub ty: ColType,
    /// `NOT NULL`.
    pub not_null: bool,
    /// Default value.
    pub default: DefaultValue,
    /// `AUTO_INCREMENT`.
    pub auto_increment: bool,
    /// `ON UPDATE CURRENT_TIMESTAMP`: the registry's incremental reload depends on it.
    pub on_update_now: bool,
}

/// Starts a nullable column with no default.
pub const fn col(name: &'static str, ty: ColType) -> Column {
    Column { name, ty, not_null: false, default: DefaultValue::None, auto_increment: false, on_update_now: false }
}

impl Column {
    /// Marks the column `NOT NULL`.
    pub const fn not_null(mut self) -> Self {
        self.not_null = true;
        self
    }
    /// `DEFAULT 'text'`.
    pub const fn default_str(mut self, v: &'static str) -> Self {
        self.default = DefaultValue::Str(v);
        self
    }
    /// `DEFAULT n`.
    pub const fn default_int(mut self, v: i64) -> Self {
        self.default = DefaultValue::Int(v);
        self
    }
    /// `DEFAULT NULL`.
    pub const fn default_null(mut self) -> Self {
        self.default = DefaultValue::Null;
        self
    }
    /// `DEFAULT CURRENT_TIMESTAMP`.
    pub const fn default_now(mut self) -> Self {
        self.default = DefaultValue::Now;
        self
    }
    /// `NOT NULL AUTO_INCREMENT`.
    pub const fn auto_increment(mut self) -> Self {
        self.not_null = true;
        self.auto_increment = true;
        self
    }
    /// `DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP`.
    pub const fn touch_on_update(mut self) -> Self {
        self.default = DefaultValue::Now;
        self.on_update_now = true;
        self
    }
}

/// Kind of index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexKind {
    /// `PRIMARY KEY`.
    Primary,
    /// `UNIQUE KEY`.
    Unique,
    /// `KEY`.
    Key,
}

/// An index. A column may carry a MySQL prefix length, written `"tgz(50)"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Index {
    /// Kind.
    pub kind: IndexKind,
    /// Name (ignored for the primary key).
    pub name: &'static str,
    /// Columns, in order.
    pub columns: &'static [&'static str],
}

impl Index {
    /// `PRIMARY KEY (cols)`.
    pub const fn primary(columns: &'static [&'static str]) -> Self {
        Index { kind: IndexKind::Primary, name: "PRIMARY", columns }
    }
    /// `UNIQUE KEY name (cols)`.
    pub const fn unique(name: &'static str, columns: &'static [&'static str]) -> Self {
        Index { kind: IndexKind::Unique, name, columns }
    }
    /// `KEY name (cols)`.
    pub const fn key(name: &'static str, columns: &'static [&'static str]) -> Self {
        Index { kind: IndexKind::Key, name, columns }
    }
}

/// Splits `"tgz(50)"` into `("tgz", Some(50))`.
pub fn index_column(spec: &str) -> (&str, Option<u16>) {
    match spec.split_once('(') {
        Some((name, rest)) => (name, rest.trim_end_matches(')').parse().ok()),
        None => (spec, None),
    }
}

/// A table as it should exist after every migration that touches it.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Table name.
    pub name: String,
    /// Columns, in order.
    pub columns: Vec<Column>,
    /// Primary key, unique keys and plain keys.
    pub indexes: Vec<Index>,
}

impl Table {
    /// A table named `name` with `columns` and `indexes`.
    pub fn new(name: impl Into<String>, columns: &[Column], indexes: &[Index]) -> Self {
        Table { name: name.into(), columns: columns.to_vec(), indexes: indexes.to_vec() }
    }

    /// The column called `name`.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The primary key, if any.
    pub fn primary_key(&self) -> Option<&Index> {
        self.indexes.iter().find(|i| i.kind == IndexKind::Primary)
    }
}

/// True when `name` is safe to splice into SQL as an identifier: identifiers cannot be bound as
/// parameters, so every table or column name that reaches SQL text passes this check first.
pub fn is_identifier(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !name.as_bytes()[0].is_ascii_digit()
}
