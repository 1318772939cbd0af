//! The database dies in the middle of a batch write: the caller gets a typed error quickly,
//! nothing of the batch is visible after crash recovery, calls fail fast while the server is
//! down, and writes resume on their own once it is back.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use tars_sql::schema::monitor;
use tars_sql::{insert_rows, params, InsertMode, Store, StoreState, Value};
use tars_testkit::mysql::PrivateMariaDb;

const TABLE: &str = "tars_stat_2026112114";

fn row(i: usize) -> Vec<Value> {
    params![
        "2026-11-21",
        "1405",
        "10.0.0.1",
        format!("App.Caller{}", i % 97),
        "App.Callee.Obj",
        format!("method{i}"),
        "3.0.0",
        "10.0.0.2",
        "10.0.0.3",
        10000,
        0,
        1u64,
        0u64,
        0u64,
        "100|1",
        5u64,
        5u64,
        5u64,
        5u64
    ]
}

fn count(store: &Store) -> Result<i64, tars_sql::StoreError> {
    let rows = store.run_blocking(|s| s.query(&format!("SELECT COUNT(*) FROM {TABLE}"), &[]))?;
    rows[0].get(0)
}

#[test]
fn kill_mariadb_mid_batch() {
    let db = PrivateMariaDb::start().unwrap();
    let backend = common::mysql_on(db.url(), "kill");
    let url = format!("{}?connect_timeout_ms=1000&op_timeout_ms=10000", backend.url);
    let store = Store::open(&url).unwrap();
    futures_lite::future::block_on(store.create_table(monitor::stat_table(TABLE))).unwrap();
    let watcher = Store::open(&format!("{}&pool=1", url)).unwrap();

    const N: usize = 300_000;
    let writer = store.clone();
    let batch = std::thread::spawn(move || {
        let rows: Vec<Vec<Value>> = (0..N).map(row).collect();
        let t = Instant::now();
        let r =
            writer.run_blocking(move |s| insert_rows(s, TABLE, monitor::STAT_COLUMNS, &rows, InsertMode::Plain, 500));
        (r, t.elapsed())
    });

    // Kill once the batch's transaction has written rows (and is not committed).
    let t = Instant::now();
    loop {
        let rows = watcher
            .run_blocking(|s| {
                s.query("SELECT COUNT(*), COALESCE(MAX(trx_rows_modified), 0) FROM information_schema.INNODB_TRX", &[])
            })
            .unwrap();
        if rows[0].get::<i64>(1).unwrap() > 5_000 {
            break;
        }
        if batch.is_finished() {
            let (r, took) = batch.join().unwrap();
            panic!("the batch finished ({r:?} in {took:?}) before it could be interrupted");
        }
        assert!(t.elapsed() < Duration::from_secs(60), "the batch never started writing");
        // InnoDB refreshes this view only after 100 ms without readers; poll slower than that.
        std::thread::sleep(Duration::from_millis(250));
    }
    db.kill9().unwrap();
    let killed_at = Instant::now();

    let (result, _) = batch.join().unwrap();
    let err = result.unwrap_err();
    assert!(err.is_unavailable(), "expected a connection error, got {err:?}");
    assert!(killed_at.elapsed() < Duration::from_secs(10), "the caller waited {:?} for the error", killed_at.elapsed());

    // While the server is down: fast, typed failures and a health report that says so.
    let t = Instant::now();
    let down = count(&store).unwrap_err();
    assert!(down.is_unavailable(), "{down:?}");
    assert!(t.elapsed() < Duration::from_secs(3), "a call against a dead server took {:?}", t.elapsed());
    assert_eq!(store.health().state, StoreState::Down, "{}", store.health());

    db.restart().unwrap();

    // After crash recovery the interrupted batch left nothing behind.
    let t = Instant::now();
    let after = loop {
        match count(&store) {
            Ok(n) => break n,
            Err(e) => {
                assert!(e.is_unavailable(), "{e:?}");
                assert!(t.elapsed() < Duration::from_secs(30), "store did not reconnect: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    };
    assert_eq!(after, 0, "a partial batch is visible after recovery");

    // Writes resume through the same store.
    let rows: Vec<Vec<Value>> = (0..20_000).map(row).collect();
    let n = store
        .run_blocking(move |s| insert_rows(s, TABLE, monitor::STAT_COLUMNS, &rows, InsertMode::Plain, 500))
        .unwrap();
    assert_eq!(n, 20_000);
    assert_eq!(count(&store).unwrap(), 20_000);
    let h = store.health();
    assert_eq!(h.state, StoreState::Up, "{h}");
    assert!(h.connects >= 2, "{h}");
}
