//! The storage layer on both backends: values round-trip with their types, batches are atomic,
//! errors are typed and fast, nothing runs on the caller's thread, passwords stay hidden.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::TestDb;
use tars_sql::schema::{db_tars, monitor};
use tars_sql::{params, Dialect, InsertMode, Store, StoreError, StoreOptions, StoreState, StoreUrl, Value};

fn values_round_trip(b: TestDb) {
    let store = b.store.clone();
    let ddl = match store.dialect() {
        Dialect::Mysql => {
            "CREATE TABLE v (i bigint, u bigint unsigned, f double, t text, b blob, d datetime, dd date, n int)"
        }
        Dialect::Sqlite => "CREATE TABLE v (i INTEGER, u INTEGER, f REAL, t TEXT, b BLOB, d TEXT, dd TEXT, n INTEGER)",
    };
    store.run_blocking(move |s| s.exec_script(ddl)).unwrap();
    let text = "héllo\t\"wörld\" 'quoted' \\ 你好";
    store
        .run_blocking(move |s| {
            s.exec(
                "INSERT INTO v VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                &params![
                    i64::MIN,
                    i64::MAX as u64,
                    1.5f64,
                    text,
                    vec![0u8, 255, 10],
                    "2026-11-21 13:14:15",
                    "2026-11-21",
                    None::<i64>
                ],
            )
        })
        .unwrap();
    let rows = store.run_blocking(|s| s.query("SELECT i, u, f, t, b, d, dd, n FROM v", &[])).unwrap();
    let r = &rows[0];
    assert_eq!(r.get::<i64>(0).unwrap(), i64::MIN);
    assert_eq!(r.get::<u64>(1).unwrap(), i64::MAX as u64);
    assert_eq!(r.get::<f64>(2).unwrap(), 1.5);
    assert_eq!(r.get::<String>(3).unwrap(), text);
    assert_eq!(r.get::<Vec<u8>>(4).unwrap(), vec![0u8, 255, 10]);
    assert_eq!(r.get::<String>(5).unwrap(), "2026-11-21 13:14:15");
    assert_eq!(r.get::<String>(6).unwrap(), "2026-11-21");
    assert_eq!(r.get::<Option<i64>>(7).unwrap(), None);
    assert_eq!(r.get_by::<i64>("I").unwrap(), i64::MIN);
    // Conversion errors name the column.
    let e = r.get::<i64>(3).unwrap_err();
    assert!(matches!(&e, StoreError::Column { column, .. } if column == "t"), "{e:?}");
    let e = r.get::<i32>(0).unwrap_err();
    assert!(e.to_string().contains("column i"), "{e}");
    assert!(matches!(r.get_by::<i64>("nope"), Err(StoreError::Column { .. })));
    if store.dialect() == Dialect::Mysql {
        // Upstream's tables are utf8 (3-byte); a 4-byte character is a typed query error that
        // names the column, not a silent truncation.
        let e = store.run_blocking(|s| s.exec("INSERT INTO v (t) VALUES (?)", &params!["party 🎉"])).unwrap_err();
        assert!(matches!(&e, StoreError::Query { code: Some(1366), .. }), "{e:?}");
    }
}

fn stat_row(i: usize) -> Vec<Value> {
    params![
        "2026-11-21",
        format!("{:02}{:02}", (i / 12) % 24, (i % 12) * 5),
        "10.0.0.1",
        format!("App.Caller{}", i % 7),
        "App.Callee",
        format!("method{i}"),
        "3.0.0",
        "10.0.0.2",
        "10.0.0.3",
        10000 + (i % 3) as i64,
        0,
        i as u64,
        0u64,
        1u64,
        "100|1,200|2",
        (i * 3) as u64,
        3u64,
        9u64,
        1u64
    ]
}

/// A batch goes in as multi-row statements in one transaction; with a failing row in the last
/// chunk, none of the earlier chunks stay.
fn batches_are_atomic(b: TestDb) {
    let store = b.store.clone();
    let table = monitor::stat_table("tars_stat_2026112113");
    futures_lite::future::block_on(store.create_table(table)).unwrap();
    let rows: Vec<Vec<Value>> = (0..1000).map(stat_row).collect();
    let n = futures_lite::future::block_on(store.insert_rows(
        "tars_stat_2026112113",
        monitor::STAT_COLUMNS,
        rows.clone(),
        InsertMode::Plain,
        7,
    ))
    .unwrap();
    assert_eq!(n, 1000);
    let count = |store: &Store| -> i64 {
        store.run_blocking(|s| s.query("SELECT COUNT(*), SUM(succ_count) FROM tars_stat_2026112113", &[])).unwrap()[0]
            .get(0)
            .unwrap()
    };
    assert_eq!(count(&store), 1000);
    // A second batch whose last row duplicates a key: the whole batch is refused.
    let mut again: Vec<Vec<Value>> = (1000..1500).map(stat_row).collect();
    again.push(stat_row(3));
    let e = futures_lite::future::block_on(store.insert_rows(
        "tars_stat_2026112113",
        monitor::STAT_COLUMNS,
        again.clone(),
        InsertMode::Plain,
        100,
    ))
    .unwrap_err();
    assert!(matches!(e, StoreError::Query { .. }), "{e:?}");
    assert_eq!(count(&store), 1000, "a failed batch left rows behind");
    // The same batch with Ignore keeps the existing row and adds the rest.
    let n = futures_lite::future::block_on(store.insert_rows(
        "tars_stat_2026112113",
        monitor::STAT_COLUMNS,
        again,
        InsertMode::Ignore,
        100,
    ))
    .unwrap();
    assert_eq!(n, 500);
    assert_eq!(count(&store), 1500);
    // Rows with the wrong arity are refused before any SQL runs.
    let e = futures_lite::future::block_on(store.insert_rows(
        "tars_stat_2026112113",
        monitor::STAT_COLUMNS,
        vec![params!["x"]],
        InsertMode::Plain,
        10,
    ))
    .unwrap_err();
    assert!(matches!(e, StoreError::Column { .. }), "{e:?}");
}

/// LOAD DATA LOCAL INFILE on MySQL carries the same rows (escapes included); SQLite says it
/// cannot.
fn load_data(b: TestDb) {
    let store = b.store.clone();
    futures_lite::future::block_on(store.create_table(monitor::property_table("tars_property_2026112113"))).unwrap();
    let rows: Vec<Vec<Value>> = (0..300)
        .map(|i| {
            params![
                "2026-11-21",
                "1305",
                "App.Server",
                None::<String>,
                format!("prop\t{i}\n\\x"),
                "",
                "",
                "",
                "Sum",
                i.to_string()
            ]
        })
        .collect();
    let r =
        futures_lite::future::block_on(store.load_rows("tars_property_2026112113", monitor::PROPERTY_COLUMNS, rows));
    match store.dialect() {
        Dialect::Mysql => {
            assert_eq!(r.unwrap(), 300);
            let got = store
                .run_blocking(|s| {
                    s.query(
                        "SELECT property_name, master_ip, value FROM tars_property_2026112113 WHERE value = '7'",
                        &[],
                    )
                })
                .unwrap();
            assert_eq!(got[0].get::<String>(0).unwrap(), "prop\t7\n\\x");
            assert_eq!(got[0].get::<Option<String>>(1).unwrap(), None);
        }
        Dialect::Sqlite => assert!(matches!(r, Err(StoreError::Unsupported { .. })), "{r:?}"),
    }
}

/// Statements run on the store's worker threads, never the caller's; the schema file an
/// operator would apply by hand applies cleanly.
fn runs_on_worker_threads(b: TestDb) {
    let store = b.store.clone();
    let name = store.run_blocking(|_| Ok(std::thread::current().name().unwrap_or("").to_owned())).unwrap();
    assert!(name.starts_with("tars-store-"), "ran on {name:?}");
    let ddl = db_tars::schema().render(store.dialect()).unwrap();
    store.run_blocking(move |s| s.exec_script(&ddl)).unwrap();
    let cols = store.run_blocking(|s| s.columns("t_server_conf")).unwrap();
    assert!(cols.iter().any(|c| c == "metrics_port"));
    // Migrating a database built from the file records the versions and changes nothing else.
    let r = store.migrate(db_tars::schema()).unwrap();
    assert_eq!(r.applied, vec![1, 2, 3]);
    let h = store.health();
    assert_eq!(h.state, StoreState::Up);
    assert!(h.completed >= 3, "{h}");
}

/// A bad statement is a typed query error that keeps the connection.
fn query_errors_are_typed(b: TestDb) {
    let sep = if b.url.contains('?') { '&' } else { '?' };
    let store = Store::open(&format!("{}{sep}pool=1", b.url)).unwrap();
    let e = store.run_blocking(|s| s.exec("SELEC nonsense", &[])).unwrap_err();
    assert!(matches!(e, StoreError::Query { .. }), "{e:?}");
    assert!(!e.is_unavailable());
    let e = store.run_blocking(|s| s.query("SELECT * FROM no_such_table", &[])).unwrap_err();
    assert!(matches!(e, StoreError::Query { .. }), "{e:?}");
    let ok = store.run_blocking(|s| s.query("SELECT 1 + 1", &[])).unwrap();
    assert_eq!(ok[0].get::<i64>(0).unwrap(), 2);
    assert_eq!(store.health().connects, 1, "the connection was dropped on a query error");
}

on_both_backends! {
    values_round_trip => super::values_round_trip;
    batches_are_atomic => super::batches_are_atomic;
    load_data => super::load_data;
    runs_on_worker_threads => super::runs_on_worker_threads;
    query_errors_are_typed => super::query_errors_are_typed;
}

/// A database nobody listens on: the first call fails within the connect timeout with
/// `Unavailable`, calls during the backoff fail at once, the health says down, and the
/// password appears nowhere.
#[test]
fn unreachable_mysql_fails_fast_and_typed() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let store = Store::open(&format!("mysql://tars:hunter2@127.0.0.1:{port}/db_tars?connect_timeout_ms=500")).unwrap();
    let t = Instant::now();
    let e = store.run_blocking(|s| s.query("SELECT 1", &[])).unwrap_err();
    assert!(matches!(e, StoreError::Unavailable { .. }), "{e:?}");
    assert!(e.is_unavailable());
    assert!(t.elapsed() < Duration::from_secs(3), "first failure took {:?}", t.elapsed());
    let t = Instant::now();
    let e2 = store.run_blocking(|s| s.query("SELECT 1", &[])).unwrap_err();
    assert!(e2.is_unavailable());
    assert!(t.elapsed() < Duration::from_millis(200), "a call during backoff took {:?}", t.elapsed());
    let h = store.health();
    assert_eq!(h.state, StoreState::Down);
    let shown = format!("{e} {e:?} {e2} {h} {h:?} {store:?} {}", store.url());
    assert!(!shown.contains("hunter2"), "password leaked: {shown}");
    assert!(shown.contains("tars:***@127.0.0.1"), "{shown}");
    assert!(tars_sql::admin::describe(&[("db_tars", store.clone())]).contains("state=down"));
}

/// A full queue refuses at once; a job that waited past its deadline is not run.
#[test]
fn overload_and_queue_timeout() {
    let b = common::sqlite("overload");
    let url = StoreUrl::parse(&b.url).unwrap();
    let opts = StoreOptions { queue_cap: 2, queue_timeout: Duration::from_millis(200), ..StoreOptions::default() };
    let store = Store::open_url(url, opts).unwrap();
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let blocker = store.clone();
    let slow = std::thread::spawn(move || {
        blocker.run_blocking(move |_| {
            started_tx.send(()).unwrap();
            std::thread::sleep(Duration::from_millis(600));
            Ok(())
        })
    });
    started_rx.recv().unwrap();
    let queued: Vec<_> = (0..2)
        .map(|_| {
            let s = store.clone();
            std::thread::spawn(move || s.run_blocking(|s| s.query("SELECT 1", &[])))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    let e = store.run_blocking(|s| s.query("SELECT 1", &[])).unwrap_err();
    assert!(matches!(e, StoreError::Overloaded { .. }), "{e:?}");
    slow.join().unwrap().unwrap();
    for q in queued {
        let e = q.join().unwrap().unwrap_err();
        assert!(matches!(e, StoreError::Timeout { .. }), "{e:?}");
    }
    // And the store still works afterwards.
    assert_eq!(store.run_blocking(|s| s.query("SELECT 7", &[])).unwrap()[0].get::<i64>(0).unwrap(), 7);
}

/// Awaited from an IO shard on every driver: the shard gets the answer and stays free.
mod from_shards {
    use tars_core_net::rt::{self, IoMode};

    fn await_from_shard(io: IoMode) {
        let b = super::common::sqlite("shard");
        let store = b.store.clone();
        let out = rt::block_on(io, async move {
            let shard_thread = std::thread::current().id();
            let ticks = std::rc::Rc::new(std::cell::Cell::new(0u32));
            let t2 = ticks.clone();
            rt::spawn(async move {
                loop {
                    t2.set(t2.get() + 1);
                    rt::sleep(std::time::Duration::from_millis(5)).await;
                }
            })
            .detach();
            let worker = store
                .run(move |_| {
                    std::thread::sleep(std::time::Duration::from_millis(100));
                    Ok(std::thread::current().id())
                })
                .await
                .unwrap();
            assert_ne!(worker, shard_thread);
            let rows = store.query("SELECT 40 + 2", vec![]).await.unwrap();
            (rows[0].get::<i64>(0).unwrap(), ticks.get())
        })
        .unwrap();
        assert_eq!(out.0, 42);
        assert!(out.1 >= 5, "the shard was blocked while the store worked (ticks {})", out.1);
    }

    tars_core_net::on_every_driver! { await_from_shard => await_from_shard; }
}

/// A job that panics costs its caller one error, not the worker: the store keeps answering.
#[test]
fn a_panicking_job_does_not_kill_the_store() {
    let b = common::sqlite("panic");
    let store = b.store.clone();
    let e = store.run_blocking(|_| -> Result<(), StoreError> { panic!("bug in a job") }).unwrap_err();
    assert!(matches!(e, StoreError::Closed { .. }), "{e:?}");
    for _ in 0..3 {
        assert_eq!(store.run_blocking(|s| s.query("SELECT 5", &[])).unwrap()[0].get::<i64>(0).unwrap(), 5);
    }
}
