//! The hourly tables (`<prefix>YYYYMMDDHH`) of one monitor database: creating a day's 24
//! tables before they are needed, and dropping old ones.
//!
//! Upstream caches "day already created" in one process-wide string, shared by every database
//! and set even when creation failed (`StatDbManager.cpp`, `creatTable`): with two stat databases only
//! the first gets its tables, and one failed attempt after midnight loses the whole day. Here
//! each database's flusher owns its own [`HourlyTables`], and a day is remembered only once all
//! 24 tables have been seen to exist.
//!
//! Upstream's retention drops every table that sorts before the cut-off name, including
//! `t_master_property` and other services' tables (§14 item 30). [`drop_older_than`] drops only
//! names made of exactly the prefix and ten digits.
//!
//! Table names are built from a checked prefix and a checked date and quoted with
//! [`tars_sql::Dialect::quote`]; no unchecked text reaches SQL.

use std::collections::BTreeSet;

use tars_sql::schema::monitor::hourly_table_name;
use tars_sql::schema::Table;
use tars_sql::{Dialect, Session, StoreError};

use crate::clock::{days_after, days_before, parse_date, Clock, Label};

/// The fewest days of hourly tables retention keeps besides today (upstream's minimum of
/// `stat_reserve_time`): the last window of a day is written after midnight, and a spooled
/// batch may be replayed a day late.
pub const MIN_KEEP_DAYS: u32 = 2;

/// Longest prefix: the prefix plus `YYYYMMDDHH` must fit MySQL's 64-character identifiers.
const MAX_PREFIX_LEN: usize = 64 - 10;

/// How many days are remembered as created; older entries are forgotten (they are only ever
/// needed again if a spooled batch is replayed late, and then checking again is cheap).
const REMEMBERED_DAYS: usize = 8;

/// What went wrong with a database's hourly tables.
#[derive(Debug, thiserror::Error)]
pub enum TablesError {
    /// The configured table prefix cannot be used in a table name.
    #[error("bad hourly table prefix {prefix:?}: {reason}")]
    BadPrefix {
        /// The prefix as configured.
        prefix: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A date that is not `YYYYMMDD` naming a real day.
    #[error("not a YYYYMMDD date: {0:?}")]
    BadDate(String),
    /// A statement failed.
    #[error("{what} on {db}: {source}")]
    Store {
        /// What we were doing.
        what: String,
        /// The session's label (redacted URL).
        db: String,
        /// The database's error.
        source: Box<StoreError>,
    },
    /// `CREATE TABLE` reported success but the table is not there as a base table (a view or
    /// something else holds the name, or the DDL was silently ignored).
    #[error("hourly table {table} is missing on {db} after creating it")]
    Missing {
        /// The table that is missing.
        table: String,
        /// The session's label.
        db: String,
    },
    /// A `DROP TABLE` failed; the tables in `dropped` were already dropped before it.
    #[error("dropping {table} on {db} failed after dropping {} tables: {source}", dropped.len())]
    Drop {
        /// The table whose drop failed.
        table: String,
        /// The session's label.
        db: String,
        /// Tables dropped before the failure.
        dropped: Vec<String>,
        /// The database's error.
        source: Box<StoreError>,
    },
}

/// Checks a table prefix: non-empty, only `[A-Za-z0-9_]`, not starting with a digit, and short
/// enough that `<prefix>YYYYMMDDHH` is a valid identifier.
pub fn validate_prefix(prefix: &str) -> Result<(), TablesError> {
    let bad = |reason| Err(TablesError::BadPrefix { prefix: prefix.to_owned(), reason });
    if prefix.is_empty() {
        return bad("it is empty");
    }
    if prefix.len() > MAX_PREFIX_LEN {
        return bad("it is longer than 54 characters");
    }
    if !prefix.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return bad("only letters, digits and '_' are allowed");
    }
    if prefix.as_bytes()[0].is_ascii_digit() {
        return bad("it starts with a digit");
    }
    Ok(())
}

fn check_date(date: &str) -> Result<(), TablesError> {
    match parse_date(date) {
        Some(_) => Ok(()),
        None => Err(TablesError::BadDate(date.to_owned())),
    }
}

fn store_err(db: &str, what: String) -> impl FnOnce(StoreError) -> TablesError + '_ {
    move |source| TablesError::Store { what, db: db.to_owned(), source: Box::new(source) }
}

/// The hourly tables of ONE database. Owned by that database's writer, one per database, so a
/// failure on one database never marks another's day as done; it holds no connection, and its
/// methods run on whichever thread holds that database's session (the writer thread, or the
/// `Store`'s worker thread inside `run_blocking`).
pub struct HourlyTables {
    prefix: String,
    make: fn(String) -> Table,
    done: BTreeSet<String>,
}

impl std::fmt::Debug for HourlyTables {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HourlyTables").field("prefix", &self.prefix).field("done", &self.done).finish()
    }
}

impl HourlyTables {
    /// Tables named `<prefix>YYYYMMDDHH` with the columns `make` gives
    /// ([`tars_sql::schema::monitor::stat_table`] or `property_table`). The prefix is checked
    /// by every call that builds SQL from it (a bad one fails there with
    /// [`TablesError::BadPrefix`]); use [`HourlyTables::checked`] to refuse it at startup.
    pub fn new(prefix: &str, make: fn(String) -> Table) -> HourlyTables {
        HourlyTables { prefix: prefix.to_owned(), make, done: BTreeSet::new() }
    }

    /// Like [`HourlyTables::new`], but fails at once on a prefix that cannot be part of a
    /// table name, so a bad config is caught when the service starts.
    pub fn checked(prefix: &str, make: fn(String) -> Table) -> Result<HourlyTables, TablesError> {
        validate_prefix(prefix)?;
        Ok(HourlyTables::new(prefix, make))
    }

    /// The table prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// True when all 24 tables of `date` were created and verified by this instance.
    pub fn is_done(&self, date: &str) -> bool {
        self.done.contains(date)
    }

    /// Forgets that `date` was created, so the next `ensure_*` checks again: call it when an
    /// insert into one of its tables fails because the table is missing (someone dropped it).
    pub fn forget(&mut self, date: &str) {
        self.done.remove(date);
    }

    /// Creates the 24 tables of `date` (`YYYYMMDD`) that do not exist yet and checks that all
    /// 24 are there. The day is remembered only when that check passes; a failure is returned
    /// and the next call tries again.
    pub fn ensure_day(&mut self, s: &mut dyn Session, date: &str) -> Result<(), TablesError> {
        validate_prefix(&self.prefix)?;
        check_date(date)?;
        if self.done.contains(date) {
            return Ok(());
        }
        let db = s.label().to_owned();
        let names: Vec<String> = (0..24u8).map(|h| hourly_table_name(&self.prefix, date, h)).collect();
        for name in &names {
            let table = (self.make)(name.clone());
            tars_sql::create_table(s, &table).map_err(store_err(&db, format!("creating {name}")))?;
        }
        let existing: BTreeSet<String> = list_tables(s)?.into_iter().collect();
        if let Some(missing) = names.iter().find(|n| !existing.contains(*n)) {
            return Err(TablesError::Missing { table: missing.clone(), db });
        }
        self.done.insert(date.to_owned());
        while self.done.len() > REMEMBERED_DAYS {
            self.done.pop_first();
        }
        tracing::debug!(%db, prefix = %self.prefix, date, "hourly tables ready");
        Ok(())
    }

    /// Ensures the tables of the day `label` writes to.
    pub fn ensure_for(&mut self, s: &mut dyn Session, label: &Label) -> Result<(), TablesError> {
        self.ensure_day(s, &label.table_date)
    }

    /// Ensures today's and tomorrow's tables (local time), so a day's tables exist before its
    /// first flush. Both are attempted; the first error is returned.
    pub fn ensure_ahead(&mut self, s: &mut dyn Session, clock: &Clock) -> Result<(), TablesError> {
        let today = clock.today();
        let first = self.ensure_day(s, &today);
        let second = match days_after(&today, 1) {
            Some(tomorrow) => self.ensure_day(s, &tomorrow),
            None => Err(TablesError::BadDate(today)),
        };
        first.and(second)
    }

    /// [`drop_older_than`] for this prefix; dropped days are forgotten.
    pub fn drop_older_than(
        &mut self,
        s: &mut dyn Session,
        keep_days: u32,
        clock: &Clock,
    ) -> Result<Vec<String>, TablesError> {
        let result = drop_older_than(s, &self.prefix, keep_days, clock);
        let plen = self.prefix.len();
        let forget = |names: &[String], done: &mut BTreeSet<String>| {
            for n in names {
                if let Some(date) = n.get(plen..plen + 8) {
                    done.remove(date);
                }
            }
        };
        match &result {
            Ok(names) => forget(names, &mut self.done),
            Err(TablesError::Drop { dropped, .. }) => forget(dropped, &mut self.done),
            Err(_) => {}
        }
        result
    }
}

/// The base tables of the session's current database (views excluded), unsorted.
pub fn list_tables(s: &mut dyn Session) -> Result<Vec<String>, TablesError> {
    let sql = match s.dialect() {
        Dialect::Mysql => {
            "SELECT table_name FROM information_schema.tables \
             WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE'"
        }
        Dialect::Sqlite => "SELECT name FROM sqlite_master WHERE type = 'table'",
    };
    let db = s.label().to_owned();
    let rows = s.query(sql, &[]).map_err(store_err(&db, "listing tables".into()))?;
    // A name that is not text cannot be one of ours; skip it rather than fail the listing.
    Ok(rows.iter().filter_map(|r| r.get::<String>(0).ok()).collect())
}

/// The date part of `name` when it is exactly `<prefix>` followed by ten ASCII digits
/// (`YYYYMMDDHH`); anything else (`<prefix>2025010100_bak`, other prefixes) is not ours.
pub fn hourly_table_date<'a>(prefix: &str, name: &'a str) -> Option<&'a str> {
    let digits = name.strip_prefix(prefix)?;
    (digits.len() == 10 && digits.bytes().all(|b| b.is_ascii_digit())).then(|| &digits[..8])
}

/// Drops the hourly tables of `prefix` whose date is before today − `keep_days` (local time;
/// `keep_days` is raised to [`MIN_KEEP_DAYS`]) and returns their names, sorted. Only names that
/// are exactly `<prefix>YYYYMMDDHH` are considered; `t_ecstatus`, other prefixes and renamed
/// copies are never touched.
pub fn drop_older_than(
    s: &mut dyn Session,
    prefix: &str,
    keep_days: u32,
    clock: &Clock,
) -> Result<Vec<String>, TablesError> {
    validate_prefix(prefix)?;
    if keep_days < MIN_KEEP_DAYS {
        tracing::warn!(keep_days, min = MIN_KEEP_DAYS, "hourly table retention raised to the minimum");
    }
    let today = clock.today();
    let cutoff = days_before(&today, keep_days.max(MIN_KEEP_DAYS)).ok_or(TablesError::BadDate(today))?;
    let mut old: Vec<String> = list_tables(s)?
        .into_iter()
        .filter(|n| hourly_table_date(prefix, n).is_some_and(|d| d < cutoff.as_str()))
        .collect();
    old.sort();
    let dialect = s.dialect();
    let db = s.label().to_owned();
    let mut dropped = Vec::with_capacity(old.len());
    for name in old {
        let result = dialect.quote(&name).and_then(|q| s.exec_script(&format!("DROP TABLE IF EXISTS {q}")));
        if let Err(source) = result {
            return Err(TablesError::Drop { table: name, db, dropped, source: Box::new(source) });
        }
        tracing::info!(%db, table = %name, %cutoff, "dropped old hourly table");
        dropped.push(name);
    }
    Ok(dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_checked() {
        assert!(validate_prefix("tars_stat_").is_ok());
        assert!(validate_prefix("T1").is_ok());
        for bad in ["", "1abc", "tars-stat", "tars stat", "a`b", "x;DROP", "é", &"a".repeat(55)] {
            assert!(validate_prefix(bad).is_err(), "{bad:?}");
            assert!(HourlyTables::checked(bad, tars_sql::schema::monitor::stat_table).is_err());
        }
        assert!(validate_prefix(&"a".repeat(54)).is_ok());
    }

    #[test]
    fn only_exact_hourly_names_match() {
        let p = "tars_stat_";
        assert_eq!(hourly_table_date(p, "tars_stat_2025010100"), Some("20250101"));
        for other in [
            "tars_stat_2025010100_bak",
            "tars_stat_202501010",
            "tars_stat_20250101000",
            "tars_stat_2025010a00",
            "t_ecstatus",
            "t_master_property",
            "tars_property_2025010100",
            "xtars_stat_2025010100",
            "TARS_STAT_2025010100",
        ] {
            assert_eq!(hourly_table_date(p, other), None, "{other}");
        }
    }
}
