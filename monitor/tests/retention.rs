//! Retention as a running writer does it: once a day at 03:00 local time (injected clock), only
//! its own prefix's hourly tables older than the kept days, on MariaDB (the test server,
//! required) and SQLite. The writer also migrates a database it finds without our tables.

use std::time::{Duration, Instant};

use tars_monitor::clock::Clock;
use tars_monitor::tables;
use tars_monitor::targets::Target;
use tars_monitor::writer::{Writer, WriterConfig};
use tars_sql::schema::monitor::{stat_schema, stat_table, STAT_COLUMNS, STAT_PREFIX};
use tars_sql::{Dialect, StoreUrl};
use tars_testkit::db::TestDb;
use tars_testkit::process::TempDir;

/// 2026-03-15 02:59:30 UTC.
const T_0259: i64 = 1_773_543_570;

fn mysql(tag: &str) -> TestDb {
    TestDb::mysql_empty("tarsret", tag)
}

fn sqlite(tag: &str) -> TestDb {
    TestDb::sqlite_empty(tag, "tars_stat.sqlite3")
}

/// Tables made and listed behind the writer's back; a trait because [`TestDb`] is testkit's.
trait Tables {
    /// Base tables, sorted.
    fn tables(&self) -> Vec<String>;

    fn create(&self, name: &str);
}

impl Tables for TestDb {
    fn tables(&self) -> Vec<String> {
        let mut v =
            self.store.run_blocking(|s| Ok(tables::list_tables(s))).expect("store answers").expect("tables listed");
        v.sort();
        v
    }

    fn create(&self, name: &str) {
        let sql = format!("CREATE TABLE {name} (a INT)");
        self.store.run_blocking(move |s| s.exec_script(&sql)).expect("table created");
    }
}

fn no_upsert(_: Dialect) -> String {
    String::new()
}

fn writer(db: &TestDb, clock: &Clock, spool: &TempDir) -> Writer {
    Writer::start(WriterConfig {
        target: Target {
            name: "db1".into(),
            url: StoreUrl::parse(&db.url).expect("url"),
            prefix: STAT_PREFIX.into(),
            weight: 1,
        },
        columns: STAT_COLUMNS,
        make_table: stat_table,
        schema: stat_schema,
        upsert_tail: no_upsert,
        spool_dir: spool.0.clone(),
        spool_max_bytes: 1 << 20,
        rows_per_insert: 1000,
        checkint_minutes: 5,
        clock: clock.clone(),
        retry_max: Duration::from_secs(1),
        reserve_days: Some(31),
        dead_letter_after: 5,
    })
    .expect("writer starts")
}

fn eventually(what: impl Fn() -> String, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(15) {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("not within 15 s: {}", what());
}

fn drops_only_old_own_tables_at_three(db: TestDb) {
    // Days kept: 31, so on 2026-03-15 the cutoff is 2026-02-12.
    let old = ["tars_stat_2026021123", "tars_stat_2026010100"];
    let kept = [
        "tars_stat_2026021200",
        "tars_stat_2026021100_bak",
        "t_stat_0_2026010100",
        "t_master_property",
        "tars_stat_20260211",
    ];
    for t in old.iter().chain(&kept) {
        db.create(t);
    }
    let clock = Clock::manual(T_0259, 0);
    let spool = TempDir::new("retention-spool").expect("temp dir");
    let w = writer(&db, &clock, &spool);
    // Before 03:00 nothing is dropped; the writer migrates the database and creates today's
    // and tomorrow's tables.
    eventually(|| format!("{:?}", db.tables()), || db.tables().iter().any(|t| t == "tars_stat_2026031623"));
    assert!(db.tables().contains(&"t_tarsrs_batch".to_owned()), "the writer migrated the database");
    std::thread::sleep(Duration::from_millis(1500));
    assert!(old.iter().all(|t| db.tables().contains(&(*t).to_owned())), "dropped before 03:00");
    assert_eq!(w.stats().tables_dropped.load(std::sync::atomic::Ordering::Relaxed), 0);

    clock.set(T_0259 + 31); // 03:00:01
    eventually(
        || format!("{:?}", db.tables()),
        || w.stats().tables_dropped.load(std::sync::atomic::Ordering::Relaxed) == 2,
    );
    let now = db.tables();
    assert!(old.iter().all(|t| !now.contains(&(*t).to_owned())), "{now:?}");
    assert!(kept.iter().all(|t| now.contains(&(*t).to_owned())), "{now:?}");
    assert!(now.contains(&"t_ecstatus".to_owned()));

    // Once a day: a table that turns old later the same day waits for the next 03:00.
    db.create("tars_stat_2026020100");
    std::thread::sleep(Duration::from_millis(1500));
    assert!(db.tables().contains(&"tars_stat_2026020100".to_owned()), "dropped twice in one day");
    clock.set(T_0259 + 31 + 86_400); // 03:00:01 the next day
    eventually(|| format!("{:?}", db.tables()), || !db.tables().contains(&"tars_stat_2026020100".to_owned()));
    // The cutoff moved a day too: 2026-02-12's table goes as well.
    eventually(
        || format!("{:?}", db.tables()),
        || w.stats().tables_dropped.load(std::sync::atomic::Ordering::Relaxed) == 4,
    );
    assert!(!db.tables().contains(&"tars_stat_2026021200".to_owned()));
}

#[test]
fn on_mysql() {
    drops_only_old_own_tables_at_three(mysql("drop"));
}

#[test]
fn on_sqlite() {
    drops_only_old_own_tables_at_three(sqlite("drop"));
}
