//! One SQLite file, two connections: one creates hourly tables the way the stat writer does
//! when it starts (today's and tomorrow's 48 tables, every table and index a commit of its
//! own) while another runs statements naming those tables. A plain rusqlite connection shows
//! the race: SQLite gives up on such a statement with `SQLITE_SCHEMA` ("database schema has
//! changed") when the schema changes again while it prepares it anew. The store's session
//! prepares the statement again instead of failing.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tars_sql::schema::monitor::stat_table;
use tars_sql::{create_table, Store, StoreError};
use tars_testkit::process::TempDir;

/// The table of day `d`, hour `h`.
fn table(d: u32, h: u32) -> String {
    format!("tars_stat_2026{:02}{:02}{h:02}", 3 + d / 28, 1 + d % 28)
}

/// What a statement naming a table that may not exist yet may answer: rows, or "no such
/// table" (it is not created yet). Anything else fails the test.
fn expect_ok_or_missing<T>(what: &str, r: Result<T, StoreError>) {
    match r {
        Ok(_) => {}
        Err(StoreError::Query { message, .. }) if message.contains("no such table") => {}
        Err(e) => panic!("{what}: {e:?}"),
    }
}

#[test]
fn statements_survive_tables_created_on_another_connection() {
    let dir = TempDir::new("sqlite-schema").expect("temp dir");
    let path = dir.0.join("tars_stat.sqlite3");
    let url = format!("sqlite:{}", path.display());
    let creator = Store::open(&url).expect("store opens");
    let reader = Store::open(&format!("{url}?pool=1")).expect("store opens");
    creator.run_blocking(|s| s.exec_script("CREATE TABLE IF NOT EXISTS warm_up (x INTEGER)")).expect("first table");

    // Three bursts of two days of tables, a writer's start each.
    const BURSTS: u32 = 3;
    let enough = Arc::new(AtomicBool::new(false));
    let day = Arc::new(AtomicU32::new(0));
    let creating = {
        let day = day.clone();
        let creator = creator.clone();
        std::thread::spawn(move || {
            for bursts in 0..BURSTS {
                for d in [2 * bursts, 2 * bursts + 1] {
                    day.store(d, Ordering::SeqCst);
                    for h in 0..24 {
                        let t = stat_table(table(d, h));
                        creator.run_blocking(move |s| create_table(s, &t)).expect("creating an hourly table");
                    }
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };

    // A plain connection (no retry) preparing a statement that names a table that is never
    // created, over and over, shows that the race happens.
    let raw_schema = Arc::new(AtomicU32::new(0));
    let probing = {
        let (enough, raw_schema, path) = (enough.clone(), raw_schema.clone(), path.clone());
        std::thread::spawn(move || {
            let raw = rusqlite::Connection::open(&path).expect("raw connection");
            raw.busy_timeout(Duration::from_secs(5)).expect("busy timeout");
            while !enough.load(Ordering::SeqCst) {
                match raw.prepare("SELECT COUNT(*) FROM never_created") {
                    Err(rusqlite::Error::SqliteFailure(f, _)) if f.code == rusqlite::ErrorCode::SchemaChanged => {
                        raw_schema.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(e) if e.to_string().contains("no such table") => {}
                    other => panic!("{other:?}"),
                }
            }
        })
    };

    let started = Instant::now();
    let mut statements = 0u64;
    let mut i = 0u32;
    while !creating.is_finished() {
        assert!(started.elapsed() < Duration::from_secs(60), "creating {BURSTS} x 48 tables takes too long");
        // A table of the day being created: there already, or not yet.
        let t = table(day.load(Ordering::SeqCst), i % 24);
        i += 1;
        let count = format!("SELECT COUNT(*) FROM {t}");
        let sql = count.clone();
        expect_ok_or_missing(&count, reader.run_blocking(move |s| s.query(&sql, &[])));
        // Read-only, so the reader never waits for the creator's write lock.
        let sql = format!("SELECT succ_count FROM {t} WHERE succ_count < ?");
        expect_ok_or_missing(&sql.clone(), reader.run_blocking(move |s| s.exec(&sql, &[0.into()])));
        let sql = format!("SELECT 1; SELECT COUNT(*) FROM {t}");
        expect_ok_or_missing(&sql.clone(), reader.run_blocking(move |s| s.exec_script(&sql)));
        let name = t.clone();
        expect_ok_or_missing("table_exists", reader.run_blocking(move |s| s.table_exists(&name)));
        let name = t.clone();
        expect_ok_or_missing("columns", reader.run_blocking(move |s| s.columns(&name)));
        statements += 5;
    }
    enough.store(true, Ordering::SeqCst);
    creating.join().expect("the creating thread");
    probing.join().expect("the probing thread");
    let raw_schema = raw_schema.load(Ordering::SeqCst);
    assert!(
        raw_schema > 0,
        "the race never happened: a plain connection saw no SQLITE_SCHEMA in {:?} ({statements} statements, \
         {BURSTS} bursts of tables)",
        started.elapsed()
    );
    eprintln!(
        "plain connection: {raw_schema} x SQLITE_SCHEMA; store: none in {statements} statements; {BURSTS} bursts \
         of 48 tables in {:?}",
        started.elapsed()
    );
}

/// A statement cached by one connection, the table altered by another: the cached statement
/// still runs, against the new schema (a `SELECT *` has the new column).
#[test]
fn a_cached_statement_sees_a_table_altered_elsewhere() {
    let dir = TempDir::new("sqlite-schema").expect("temp dir");
    let url = format!("sqlite:{}?pool=1", dir.0.join("t.sqlite3").display());
    let (a, b) = (Store::open(&url).expect("store"), Store::open(&url).expect("store"));
    a.run_blocking(|s| s.exec_script("CREATE TABLE t (x INTEGER); INSERT INTO t (x) VALUES (1)")).expect("table");
    let select = || a.run_blocking(|s| s.query("SELECT * FROM t", &[]));
    let insert = || a.run_blocking(|s| s.exec("INSERT INTO t (x) VALUES (?)", &[2.into()]));
    assert_eq!(select().expect("select").first().map(|r| r.columns().len()), Some(1));
    insert().expect("insert");
    b.run_blocking(|s| s.exec_script("ALTER TABLE t ADD COLUMN y INTEGER DEFAULT 7; CREATE TABLE u (z INTEGER)"))
        .expect("alter");
    insert().expect("the cached insert after the change");
    let rows = select().expect("the cached select after the change");
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0].columns().iter().map(String::as_str).collect::<Vec<_>>(), ["x", "y"]);
    assert_eq!(rows[0].get::<i64>(1).expect("y"), 7);
}

/// The longest table prefix the monitor services accept (48 characters) gives hourly tables of
/// 58: their SQLite index names, which carry the table's name, must still be identifiers,
/// distinct, and found again by the index check.
#[test]
fn hourly_tables_with_the_longest_prefix_get_their_indexes() {
    use tars_sql::schema::monitor::{hourly_table_name, property_table};
    let dir = TempDir::new("sqlite-long-prefix").expect("temp dir");
    let store = Store::open(&format!("sqlite:{}", dir.0.join("m.sqlite3").display())).expect("store opens");
    let prefix = format!("{}_", "p".repeat(47));
    assert_eq!(prefix.len(), 48);
    for table in [
        stat_table(hourly_table_name(&prefix, "20260315", 10)),
        property_table(hourly_table_name(&prefix, "20260315", 11)),
    ] {
        let name = table.name.clone();
        let wanted = table.indexes.len();
        let t = table.clone();
        store.run_blocking(move |s| create_table(s, &t)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let n = name.clone();
        let rows = store
            .run_blocking(move |s| {
                s.query(
                    "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL",
                    &[n.into()],
                )
            })
            .expect("index list");
        let names: Vec<String> = rows.iter().map(|r| r.get::<String>(0).expect("name")).collect();
        assert!(!names.is_empty() && names.len() <= wanted, "{name}: {names:?}");
        assert!(names.iter().all(|i| i.len() <= 64), "{names:?}");
        let mut distinct = names.clone();
        distinct.dedup();
        assert_eq!(distinct.len(), names.len(), "{names:?}");
        // Created again: the check finds every index and changes nothing.
        let t = table.clone();
        store.run_blocking(move |s| create_table(s, &t)).expect("created again");
    }
}
