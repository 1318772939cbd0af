//! Hourly tables on both backends: a fresh database on the test MariaDB (`TARS_TEST_MYSQL_URL`,
//! required: these tests fail without it) and a SQLite file in a temp dir.

use tars_monitor::clock::{Clock, Window};
use tars_monitor::tables::{self, HourlyTables, TablesError};
use tars_sql::schema::monitor::{property_table, stat_table, PROPERTY_PREFIX, STAT_PREFIX};
use tars_sql::{Dialect, Session, StoreError};
use tars_testkit::db::TestDb;

/// A database a test owns. Wrapped rather than extended: these tests' `exec` runs a script,
/// which [`TestDb::exec`] does not.
struct Db(TestDb);

fn mysql(tag: &str) -> Db {
    Db(TestDb::mysql_empty("tarsmon", tag))
}

fn sqlite(tag: &str) -> Db {
    Db(TestDb::sqlite_empty(tag, "tars_stat.sqlite3"))
}

impl Db {
    /// Runs `f` with a session on the store's worker thread.
    fn with<T: Send + 'static>(&self, f: impl FnOnce(&mut dyn Session) -> T + Send + 'static) -> T {
        self.0.store.run_blocking(move |s| Ok::<_, StoreError>(f(s))).expect("store answers")
    }

    fn exec(&self, sql: &str) {
        let owned = sql.to_owned();
        self.0.store.run_blocking(move |s| s.exec_script(&owned)).unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    fn dialect(&self) -> Dialect {
        self.0.store.dialect()
    }

    /// Base tables, sorted.
    fn tables(&self) -> Vec<String> {
        let mut v = self.with(|s| tables::list_tables(s)).expect("list tables");
        v.sort();
        v
    }

    /// Runs `HourlyTables::ensure_day` on the store and hands the cache back.
    fn ensure_day(&self, t: HourlyTables, date: &'static str) -> (HourlyTables, Result<(), TablesError>) {
        self.with(move |s| {
            let mut t = t;
            let r = t.ensure_day(s, date);
            (t, r)
        })
    }
}

fn hours(prefix: &str, date: &str) -> Vec<String> {
    (0..24).map(|h| format!("{prefix}{date}{h:02}")).collect()
}

macro_rules! on_both_backends {
    ($($name:ident;)*) => {
        mod on_mysql {
            $(#[test] fn $name() { super::$name(super::mysql(stringify!($name))) })*
        }
        mod on_sqlite {
            $(#[test] fn $name() { super::$name(super::sqlite(stringify!($name))) })*
        }
    };
}

on_both_backends! {
    creates_a_verified_day;
    failure_is_not_cached;
    each_database_gets_its_own_tables;
    ensure_ahead_covers_today_and_tomorrow;
    retention_drops_only_old_hourly_tables;
}

fn creates_a_verified_day(db: Db) {
    let t = HourlyTables::new(STAT_PREFIX, stat_table);
    assert!(!t.is_done("20251126"));
    let (t, r) = db.ensure_day(t, "20251126");
    r.expect("tables created");
    assert!(t.is_done("20251126"));
    assert_eq!(db.tables(), hours(STAT_PREFIX, "20251126"));
    // They are real stat tables: a row in upstream's column order goes in and reads back.
    let label = Window::containing(1_764_151_200).label(&Clock::manual(0, 0)); // 2025-11-26 10:00 UTC
    let table = label.table_name(STAT_PREFIX);
    assert_eq!(table, "tars_stat_2025112610");
    let q = db.dialect().quote(&table).expect("identifier");
    db.exec(&format!(
        "INSERT INTO {q} (f_date, f_tflag, source_id, master_name, slave_name, interface_name, slave_port, \
         return_value, succ_count) VALUES ('{}', '{}', '10.0.0.1', 'A.B', 'C.D', 'f', 1, 0, 5)",
        label.f_date, label.tflag
    ));
    let rows = db.with(move |s| s.query(&format!("SELECT f_tflag, succ_count FROM {q}"), &[])).expect("select");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<String>(0).expect("tflag"), "1005");
    assert_eq!(rows[0].get::<i64>(1).expect("count"), 5);
    // A second call is answered from the cache and changes nothing.
    let (t, r) = db.ensure_day(t, "20251126");
    r.expect("cached");
    assert_eq!(db.tables().len(), 24);
    // Bad dates never reach SQL.
    for bad in ["2025112", "20251332", "2025-11-2", "20251126; DROP TABLE x"] {
        let (_, r) = db.ensure_day(HourlyTables::new(STAT_PREFIX, stat_table), bad);
        assert!(matches!(r, Err(TablesError::BadDate(_))), "{bad}: {r:?}");
    }
    let (_, r) = db.ensure_day(HourlyTables::new("bad-prefix", stat_table), "20251126");
    assert!(matches!(r, Err(TablesError::BadPrefix { .. })), "{r:?}");
    drop(t);
}

/// Something that is not a table holds hour 05's name: creating the day fails, the failure is
/// not remembered, and once the obstacle is gone the next call creates the day.
fn failure_is_not_cached(db: Db) {
    db.exec("CREATE TABLE other (a INT)");
    db.exec("CREATE VIEW tars_property_2025112605 AS SELECT a FROM other");
    let t = HourlyTables::new(PROPERTY_PREFIX, property_table);
    let (t, r) = db.ensure_day(t, "20251126");
    match &r {
        Err(TablesError::Missing { table, .. }) => assert_eq!(table, "tars_property_2025112605"),
        // SQLite skips CREATE TABLE for the view's name and then refuses to index a view.
        Err(TablesError::Store { .. }) if db.dialect() == Dialect::Sqlite => {}
        other => panic!("expected a failure, got {other:?}"),
    }
    assert!(!t.is_done("20251126"), "a failed day must not be remembered");
    let (t, r) = db.ensure_day(t, "20251126");
    assert!(r.is_err(), "still failing while the view is there");
    assert!(!t.is_done("20251126"));

    db.exec("DROP VIEW tars_property_2025112605");
    let (t, r) = db.ensure_day(t, "20251126");
    r.expect("the retry creates the day");
    assert!(t.is_done("20251126"));
    let mut want = hours(PROPERTY_PREFIX, "20251126");
    want.push("other".into());
    want.sort();
    assert_eq!(db.tables(), want);
}

/// Upstream remembered the day once for the whole process, so a second database never got its
/// tables. Each database's own `HourlyTables` creates its own, even after the other failed.
fn each_database_gets_its_own_tables(db1: Db) {
    let db2 = match db1.dialect() {
        Dialect::Mysql => mysql("second_db"),
        Dialect::Sqlite => sqlite("second_db"),
    };
    db1.exec("CREATE TABLE other (a INT)");
    db1.exec("CREATE VIEW tars_stat_2025112600 AS SELECT a FROM other");
    let (t1, r1) = db1.ensure_day(HourlyTables::new(STAT_PREFIX, stat_table), "20251126");
    assert!(r1.is_err());
    let (t2, r2) = db2.ensure_day(HourlyTables::new(STAT_PREFIX, stat_table), "20251126");
    r2.expect("second database");
    assert!(t2.is_done("20251126") && !t1.is_done("20251126"));
    assert_eq!(db2.tables(), hours(STAT_PREFIX, "20251126"));

    db1.exec("DROP VIEW tars_stat_2025112600");
    let (t1, r1) = db1.ensure_day(t1, "20251126");
    r1.expect("first database after the obstacle is gone");
    assert!(t1.is_done("20251126"));
    assert_eq!(db1.tables().iter().filter(|n| n.starts_with(STAT_PREFIX)).count(), 24);
}

fn ensure_ahead_covers_today_and_tomorrow(db: Db) {
    // 2025-12-31 22:30 UTC, in UTC+1: 23:30 local on new year's eve.
    let clock = Clock::manual(1_767_220_200, 3600);
    assert_eq!(clock.today(), "20251231");
    let c = clock.clone();
    let t = db
        .with(move |s| {
            let mut t = HourlyTables::new(STAT_PREFIX, stat_table);
            t.ensure_ahead(s, &c).map(|()| t)
        })
        .expect("ensure_ahead");
    assert!(t.is_done("20251231") && t.is_done("20260101"));
    let mut want = hours(STAT_PREFIX, "20251231");
    want.extend(hours(STAT_PREFIX, "20260101"));
    assert_eq!(db.tables(), want);
    // The last window of the year is labelled into a table that exists.
    let label = clock.window().label(&clock);
    assert_eq!(label.tflag, "2335");
    assert!(want.contains(&label.table_name(STAT_PREFIX)));
    let last = Window::containing(1_767_221_700).label(&clock); // 23:55 local
    assert_eq!((last.table_name(STAT_PREFIX), last.tflag.as_str()), ("tars_stat_2025123123".to_owned(), "2360"));
}

fn retention_drops_only_old_hourly_tables(db: Db) {
    // Today is 2025-11-26 (local); keeping 7 days drops everything dated before 2025-11-19.
    let clock = Clock::manual(1_764_158_400, 0);
    assert_eq!(clock.today(), "20251126");
    let (t, r) = db.ensure_day(HourlyTables::new(STAT_PREFIX, stat_table), "20251101");
    r.expect("old day");
    assert!(t.is_done("20251101"));
    let old = ["tars_stat_2025111823", "tars_stat_2024123100", "tars_stat_0000000000"];
    let kept = [
        "tars_stat_2025111900",
        "tars_stat_2025112614",
        "tars_stat_2025112700",
        "t_ecstatus",
        "t_master_property",
        "tars_property_2020010100",
        "tars_stat_2020010100_bak",
        "tars_stat_202001010",
        "xtars_stat_2020010100",
        "Tars_stat_2020010100",
        "tars_statx2020010100",
    ];
    for name in old.iter().chain(&kept) {
        db.exec(&format!("CREATE TABLE {} (a INT)", db.dialect().quote(name).expect("identifier")));
    }
    // A view with an old hourly name is not a table of ours to drop.
    db.exec("CREATE VIEW tars_stat_2020010200 AS SELECT a FROM t_ecstatus");

    let mut want: Vec<String> = hours(STAT_PREFIX, "20251101");
    want.extend(old.iter().map(|s| s.to_string()));
    want.sort();
    let c = clock.clone();
    let (t, dropped) = db.with(move |s| {
        let mut t = t;
        let r = t.drop_older_than(s, 7, &c);
        (t, r)
    });
    assert_eq!(dropped.expect("retention"), want);
    assert!(!t.is_done("20251101"), "a dropped day is forgotten");
    let mut left: Vec<String> = kept.iter().map(|s| s.to_string()).collect();
    left.sort();
    assert_eq!(db.tables(), left);
    let views = match db.dialect() {
        Dialect::Mysql => "SELECT table_name FROM information_schema.views WHERE table_schema = DATABASE()",
        Dialect::Sqlite => "SELECT name FROM sqlite_master WHERE type = 'view'",
    };
    let rows = db.with(move |s| s.query(views, &[])).expect("views");
    assert_eq!(rows.len(), 1, "the view is left alone");

    // Nothing more to drop; a keep below the minimum is raised to it (2 days: before 11-24).
    let c = clock.clone();
    let again = db.with(move |s| tables::drop_older_than(s, STAT_PREFIX, 7, &c)).expect("retention");
    assert!(again.is_empty(), "{again:?}");
    let c = clock.clone();
    let min = db.with(move |s| tables::drop_older_than(s, STAT_PREFIX, 0, &c)).expect("retention");
    assert_eq!(min, vec!["tars_stat_2025111900".to_owned()]);
    assert!(db.tables().contains(&"tars_stat_2025112614".to_owned()));
    // A bad prefix is refused before any SQL runs.
    let c = clock.clone();
    let r = db.with(move |s| tables::drop_older_than(s, "t%", 7, &c));
    assert!(matches!(r, Err(TablesError::BadPrefix { .. })), "{r:?}");
}
