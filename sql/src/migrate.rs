//! Versioned, idempotent, non-destructive migrations.
//!
//! Each database has a [`SchemaSet`]: numbered migrations, oldest first. The versions applied
//! are recorded in `t_schema_version` in that database. Every [`Op`] checks the database before
//! acting (a table that exists is kept and only gains missing columns; a column or index that
//! exists is skipped), so a migration can be re-run after a crash half-way through, and a
//! database created by upstream's own install scripts is adopted as it is. There is no op that
//! drops or rebuilds anything.
//!
//! On MySQL, DDL commits implicitly, so concurrent starters (two registries on one database)
//! serialise on a named lock (`GET_LOCK`); on SQLite each migration runs in one transaction.

use crate::ddl::{self, Dialect};
use crate::error::StoreError;
use crate::schema::{col, ColType, Column, Index, Table};
use crate::store::Session;

/// One schema change. Deliberately no variant that drops, renames or retypes anything.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// Creates the table if it does not exist; if it does, adds the columns it lacks.
    CreateTable(Table),
    /// Adds a column if the table lacks it.
    AddColumn {
        /// Table.
        table: &'static str,
        /// The column.
        column: Column,
    },
    /// Adds an index if the table lacks it.
    AddIndex {
        /// Table.
        table: &'static str,
        /// The index.
        index: Index,
    },
}

/// One numbered migration.
#[derive(Debug, Clone, PartialEq)]
pub struct Migration {
    /// Version, starting at 1, strictly increasing within a set.
    pub version: u32,
    /// What it does, recorded beside the version.
    pub name: &'static str,
    /// The changes, applied in order.
    pub ops: Vec<Op>,
}

/// Every migration of one database.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaSet {
    /// Database name (`db_tars`, `tars_stat`, `tars_property`).
    pub database: &'static str,
    /// Migrations, oldest first.
    pub migrations: Vec<Migration>,
}

/// What a migration run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    /// Database name.
    pub database: &'static str,
    /// Versions applied by this run.
    pub applied: Vec<u32>,
    /// The database's version afterwards.
    pub version: u32,
    /// Versions recorded in the database that this build does not know (a newer tars-rs
    /// migrated it); they are left alone.
    pub unknown: Vec<u32>,
}

/// The table that records applied versions.
pub const VERSION_TABLE: &str = "t_schema_version";

fn version_table() -> Table {
    Table::new(
        VERSION_TABLE,
        &[
            col("schema_set", ColType::Varchar(64)).not_null(),
            col("version", ColType::Int(11)).not_null(),
            col("name", ColType::Varchar(128)).not_null().default_str(""),
            col("applied_at", ColType::DateTime).default_null(),
            col("applied_by", ColType::Varchar(64)).not_null().default_str(""),
        ],
        &[Index::primary(&["schema_set", "version"])],
    )
}

impl SchemaSet {
    /// The newest version.
    pub fn latest(&self) -> u32 {
        self.migrations.last().map_or(0, |m| m.version)
    }

    /// The tables as they stand after every migration up to `version`, in creation order.
    pub fn tables_at(&self, version: u32) -> Vec<Table> {
        let mut tables: Vec<Table> = Vec::new();
        for m in self.migrations.iter().take_while(|m| m.version <= version) {
            for op in &m.ops {
                match op {
                    Op::CreateTable(t) => match tables.iter_mut().find(|x| x.name == t.name) {
                        Some(existing) => {
                            for c in &t.columns {
                                if existing.column(c.name).is_none() {
                                    existing.columns.push(*c);
                                }
                            }
                        }
                        None => tables.push(t.clone()),
                    },
                    Op::AddColumn { table, column } => {
                        if let Some(t) = tables.iter_mut().find(|t| t.name == *table) {
                            if t.column(column.name).is_none() {
                                t.columns.push(*column);
                            }
                        }
                    }
                    Op::AddIndex { table, index } => {
                        if let Some(t) = tables.iter_mut().find(|t| t.name == *table) {
                            if !t.indexes.iter().any(|i| i.name == index.name) {
                                t.indexes.push(*index);
                            }
                        }
                    }
                }
            }
        }
        tables
    }

    /// The whole schema at the newest version as DDL for `dialect`, one statement per
    /// paragraph: what an operator can read or apply by hand.
    pub fn render(&self, dialect: Dialect) -> Result<String, StoreError> {
        let mut out =
            format!("-- {} schema, version {} (generated by tars-sql; do not edit)\n", self.database, self.latest());
        for t in std::iter::once(version_table()).chain(self.tables_at(self.latest())) {
            for stmt in ddl::create_table(dialect, &t)? {
                out.push('\n');
                out.push_str(&stmt);
                out.push_str(";\n");
            }
        }
        Ok(out)
    }
}

fn apply(s: &mut dyn Session, op: &Op) -> Result<(), StoreError> {
    let d = s.dialect();
    match op {
        Op::CreateTable(t) => {
            if !s.table_exists(&t.name)? {
                return crate::store::create_table(s, t);
            }
            let have = s.columns(&t.name)?;
            for c in &t.columns {
                if !have.iter().any(|h| h.eq_ignore_ascii_case(c.name)) {
                    for stmt in ddl::add_column(d, &t.name, c)? {
                        s.exec_script(&stmt)?;
                    }
                }
            }
            Ok(())
        }
        Op::AddColumn { table, column } => {
            let have = s.columns(table)?;
            if have.iter().any(|h| h.eq_ignore_ascii_case(column.name)) {
                return Ok(());
            }
            for stmt in ddl::add_column(d, table, column)? {
                s.exec_script(&stmt)?;
            }
            Ok(())
        }
        Op::AddIndex { table, index } => {
            if s.index_exists(table, index.name)? {
                return Ok(());
            }
            for stmt in ddl::add_index(d, table, index)? {
                s.exec_script(&stmt)?;
            }
            Ok(())
        }
    }
}

fn applied_versions(s: &mut dyn Session, set: &SchemaSet) -> Result<Vec<u32>, StoreError> {
    let sql =
        format!("SELECT version FROM {} WHERE schema_set = ? ORDER BY version", s.dialect().quote(VERSION_TABLE)?);
    s.query(&sql, &[set.database.into()])?.iter().map(|r| r.get::<u32>(0)).collect()
}

fn record(s: &mut dyn Session, set: &SchemaSet, m: &Migration) -> Result<(), StoreError> {
    let d = s.dialect();
    let now = match d {
        Dialect::Mysql => "NOW()",
        Dialect::Sqlite => "datetime('now','localtime')",
    };
    let sql = format!(
        "{} {} (schema_set, version, name, applied_at, applied_by) VALUES (?, ?, ?, {now}, ?)",
        d.insert_verb(ddl::InsertMode::Replace),
        d.quote(VERSION_TABLE)?
    );
    s.exec(
        &sql,
        &[set.database.into(), m.version.into(), m.name.into(), concat!("tars-rs ", env!("CARGO_PKG_VERSION")).into()],
    )?;
    Ok(())
}

/// Applies every migration of `set` not yet recorded.
pub fn migrate(s: &mut dyn Session, set: &SchemaSet) -> Result<MigrationReport, StoreError> {
    migrate_to(s, set, set.latest())
}

/// Applies the migrations of `set` up to and including `target` (tests use it to build an
/// older database).
pub fn migrate_to(s: &mut dyn Session, set: &SchemaSet, target: u32) -> Result<MigrationReport, StoreError> {
    let d = s.dialect();
    let lock_name = format!("tars-rs-migrate-{}", set.database);
    if d == Dialect::Mysql {
        let got = s.query("SELECT GET_LOCK(?, 60)", &[lock_name.clone().into()])?;
        if got.first().and_then(|r| r.get::<Option<i64>>(0).ok().flatten()) != Some(1) {
            return Err(StoreError::Query {
                store: s.label().to_owned(),
                code: None,
                message: format!("another process held the migration lock of {} for 60 s", set.database),
            });
        }
    }
    let result = migrate_locked(s, set, target);
    if d == Dialect::Mysql && !s.is_broken() {
        let _ = s.query("SELECT RELEASE_LOCK(?)", &[lock_name.into()]);
    }
    result
}

fn migrate_locked(s: &mut dyn Session, set: &SchemaSet, target: u32) -> Result<MigrationReport, StoreError> {
    crate::store::create_table(s, &version_table())?;
    let done = applied_versions(s, set)?;
    let mut applied = Vec::new();
    for m in set.migrations.iter().filter(|m| m.version <= target && !done.contains(&m.version)) {
        let fail = |source: StoreError| StoreError::Migration {
            database: set.database,
            version: m.version,
            name: m.name,
            source: Box::new(source),
        };
        let run = |s: &mut dyn Session| -> Result<(), StoreError> {
            for op in &m.ops {
                apply(s, op)?;
            }
            record(s, set, m)
        };
        match s.dialect() {
            Dialect::Sqlite => crate::store::transaction(s, run).map_err(fail)?,
            Dialect::Mysql => run(s).map_err(fail)?,
        }
        tracing::info!(database = set.database, version = m.version, name = m.name, "schema migration applied");
        applied.push(m.version);
    }
    let known: Vec<u32> = set.migrations.iter().map(|m| m.version).collect();
    let unknown: Vec<u32> = done.iter().copied().filter(|v| !known.contains(v)).collect();
    if !unknown.is_empty() {
        tracing::warn!(
            database = set.database,
            ?unknown,
            "database has schema versions newer than this build; leaving them"
        );
    }
    let version =
        applied_versions(s, set)?.into_iter().filter(|v| *v <= target || unknown.contains(v)).max().unwrap_or(0);
    Ok(MigrationReport { database: set.database, applied, version, unknown })
}
