//! A batch the database keeps refusing goes to the dead-letter file after
//! `dead_letter_after` attempts and the batches behind it are written; a database that cannot
//! be reached dead-letters nothing, however long it is gone. On SQLite and on MariaDB (the
//! test server, `TARS_TEST_MYSQL_URL`, required), with real spool files. Also the service's
//! side: the config key, the status text and the metrics.

use std::io::Write as _;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tars_monitor::batch::Batch;
use tars_monitor::clock::{Clock, Label};
use tars_monitor::collect::Aggregate;
use tars_monitor::service::{Keys, MonitorService, ServiceConfig, TableSpec};
use tars_monitor::spool::{DeadLetters, Spool, HEADER_LEN};
use tars_monitor::targets::Target;
use tars_monitor::writer::{Writer, WriterConfig, WriterStats, DEFAULT_DEAD_LETTER_AFTER};
use tars_proto::config::Config;
use tars_sql::schema::monitor::{stat_schema, stat_table, STAT_COLUMNS, STAT_PREFIX};
use tars_sql::{Dialect, StoreUrl, Value};
use tars_testkit::db::TestDb;
use tars_testkit::process::TempDir;

/// 2026-03-15 10:02:00 UTC.
const NOW: i64 = 1_773_568_920;
const DATE: &str = "20260315";
const TABLE: &str = "tars_stat_2026031510";
/// A name the writer accepts (a plain identifier) but no table has: the database refuses the
/// batch every time.
const NO_TABLE: &str = "tars_stat_no_such_table";

fn mysql(tag: &str) -> TestDb {
    TestDb::mysql_migrated("tarsdead", tag, stat_schema())
}

fn sqlite(tag: &str) -> TestDb {
    TestDb::sqlite_migrated(tag, stat_schema())
}

fn no_upsert(_: Dialect) -> String {
    String::new()
}

fn config(url: &str, spool: &Path, dead_letter_after: u32) -> WriterConfig {
    WriterConfig {
        target: Target {
            name: "db1".into(),
            url: StoreUrl::parse(url).expect("url"),
            prefix: STAT_PREFIX.into(),
            weight: 1,
        },
        columns: STAT_COLUMNS,
        make_table: stat_table,
        schema: stat_schema,
        upsert_tail: no_upsert,
        spool_dir: spool.to_owned(),
        spool_max_bytes: 1 << 20,
        rows_per_insert: 1000,
        checkint_minutes: 5,
        clock: Clock::manual(NOW, 0),
        retry_max: Duration::from_millis(200),
        reserve_days: None,
        dead_letter_after,
    }
}

/// One stat row, told apart by its interface name.
fn row(interface: &str) -> Vec<Value> {
    let text = |s: &str| Value::Text(s.to_owned());
    vec![
        text("2026-03-15"),
        text("1000"),
        text("127.0.0.1"),
        text("Client.Server"),
        text("App.Server"),
        text(interface),
        text("3.0.0"),
        text("10.0.0.1"),
        text("10.0.0.2"),
        Value::Int(10000),
        Value::Int(0),
        Value::UInt(3),
        Value::UInt(0),
        Value::UInt(0),
        text("0|3"),
        Value::UInt(30),
        Value::UInt(10),
        Value::UInt(12),
        Value::UInt(8),
    ]
}

fn batch(id: &str, table: &str, rows: Vec<Vec<Value>>) -> Batch {
    Batch {
        id: format!("dead-letter-test|{id}|{}", std::process::id()),
        table_date: DATE.into(),
        table: table.into(),
        app_name: format!("{STAT_PREFIX}127.0.0.1"),
        last_time: format!("{DATE} 1000"),
        rows,
    }
}

fn load(v: &std::sync::atomic::AtomicU64) -> u64 {
    v.load(Ordering::Relaxed)
}

fn counts(s: &WriterStats) -> String {
    format!(
        "written {}, pending {}, errors {}, dead-lettered {} / {} rows, dropped {}, last error {:?}",
        load(&s.batches_written),
        load(&s.batches_pending),
        load(&s.write_errors),
        load(&s.batches_dead_lettered),
        load(&s.rows_dead_lettered),
        load(&s.batches_dropped),
        s.last_error.lock().expect("lock")
    )
}

/// Flushes (one attempt each time) until `f` holds or `limit` passes.
fn flush_until(w: &Writer, limit: Duration, what: &str, mut f: impl FnMut(&WriterStats) -> bool) {
    let start = Instant::now();
    while start.elapsed() < limit {
        assert!(w.flush(Duration::from_secs(30)), "the writer answers a flush");
        if f(w.stats()) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("not within {limit:?}: {what}; {}", counts(w.stats()));
}

/// Interface names in `table`, sorted.
fn interfaces(db: &TestDb, table: &str) -> Vec<String> {
    let mut v: Vec<String> = db
        .query(&format!("SELECT interface_name FROM {table}"), vec![])
        .iter()
        .map(|r| r.get::<String>(0).expect("text"))
        .collect();
    v.sort();
    v
}

/// The batches in the dead-letter file, decoded (read after the writer stopped).
fn dead_letters(dir: &Path) -> Vec<Batch> {
    let d = DeadLetters::open(dir, "db1", 1 << 20).expect("the dead-letter file opens");
    assert!(d.corruption().is_none(), "{:?}", d.corruption());
    d.records().map(|r| Batch::decode(&r.expect("reads back").1).expect("a dead letter decodes")).collect()
}

/// A good batch, then the poisons and a good batch behind them: each poison is refused
/// exactly `N` times, then dead-lettered; the good batch behind them is written; the spool
/// ends empty and the dead-letter file holds exactly the poisons.
fn poisons_are_dead_lettered_and_the_rest_written(db: TestDb, poisons: Vec<Batch>) {
    const N: u32 = 5;
    let spool = TempDir::new("dead-spool").expect("temp dir");
    let dead_path = DeadLetters::path_for(&spool.0, "db1");
    let mut w = Writer::start(config(&db.url, &spool.0, N)).expect("writer starts");
    assert_eq!(w.dead_letter_path(), dead_path);
    let s = w.stats().clone();

    w.send(batch("a", TABLE, vec![row("before")]));
    flush_until(&w, Duration::from_secs(30), "the first good batch", |s| load(&s.batches_written) == 1);
    assert_eq!(interfaces(&db, TABLE), ["before"]);

    for p in &poisons {
        w.send(p.clone());
    }
    w.send(batch("b", TABLE, vec![row("after")]));
    assert!(w.flush(Duration::from_secs(30)));
    // One attempt (or very few: a retry is 200 ms away) has failed; the good batch waits
    // behind the poison, in order.
    assert!(load(&s.write_errors) >= 1, "{}", counts(&s));
    assert_eq!(load(&s.batches_dead_lettered), 0, "{}", counts(&s));
    assert_eq!(load(&s.batches_pending), poisons.len() as u64 + 1, "{}", counts(&s));
    assert_eq!(interfaces(&db, TABLE), ["before"], "written out of order");
    assert!(!dead_path.exists(), "no dead-letter file before a batch goes there");

    let all = poisons.len() as u64;
    flush_until(&w, Duration::from_secs(60), "the poisons dead-lettered", |s| load(&s.batches_dead_lettered) == all);
    flush_until(&w, Duration::from_secs(30), "the batch behind them", |s| load(&s.batches_written) == 2);
    assert_eq!(interfaces(&db, TABLE), ["after", "before"]);
    assert_eq!(load(&s.write_errors), u64::from(N) * all, "each poison refused exactly N times: {}", counts(&s));
    assert_eq!(load(&s.rows_dead_lettered), poisons.iter().map(|p| p.rows.len() as u64).sum::<u64>());
    assert_eq!(load(&s.batches_pending), 0);
    assert_eq!(load(&s.batches_dropped), 0);
    let last = s.last_error.lock().expect("lock").clone().expect("the refusal is kept");
    assert!(!last.is_empty());
    assert_eq!(load(&s.dead_letter_bytes), std::fs::metadata(&dead_path).expect("dead-letter file").len());
    w.stop();

    assert_eq!(dead_letters(&spool.0), poisons, "the dead-letter file holds the poisons as they were spooled");
    let sp = Spool::open(&spool.0, "db1", 1 << 20).expect("spool");
    assert_eq!(sp.pending_len(), 0, "nothing left in the spool");
    assert_eq!(sp.file_len(), HEADER_LEN);
    drop(sp);

    // A restart does not bring them back, and the next poison appends to the same file.
    let mut w = Writer::start(config(&db.url, &spool.0, N)).expect("writer restarts");
    let again = batch("c", NO_TABLE, vec![row("again")]);
    w.send(again.clone());
    flush_until(&w, Duration::from_secs(60), "the third poison", |s| load(&s.batches_dead_lettered) == 1);
    assert_eq!(load(&w.stats().batches_written), 0);
    w.stop();
    let mut want = poisons;
    want.push(again);
    assert_eq!(dead_letters(&spool.0), want);
}

/// The database goes away after the writer migrated it (the proxy in front of MariaDB cuts
/// every connection and refuses new ones): many more than `N` attempts fail, nothing is
/// dead-lettered, the batch waits in the spool and is written once the database is back.
/// `N` is 1, so even the first failure (the statement on the cut session) counting as a
/// refusal would dead-letter the batch.
#[test]
fn mysql_outage_is_waited_out_not_dead_lettered() {
    const N: u32 = 1;
    let db = mysql("outage");
    let proxy = Proxy::start(host_port(&db.url));
    let url = with_host_port(&db.url, &proxy.addr.to_string());
    let spool = TempDir::new("dead-outage").expect("temp dir");
    let mut w = Writer::start(config(&url, &spool.0, N)).expect("writer starts");
    let s = w.stats().clone();
    w.send(batch("up", TABLE, vec![row("while up")]));
    flush_until(&w, Duration::from_secs(30), "written through the proxy", |s| load(&s.batches_written) == 1);

    proxy.cut();
    w.send(batch("down", TABLE, vec![row("while down")]));
    flush_until(&w, Duration::from_secs(60), "attempts failing", |s| load(&s.write_errors) >= 8);
    assert_eq!(load(&s.batches_dead_lettered), 0, "{}", counts(&s));
    assert_eq!(load(&s.batches_pending), 1, "{}", counts(&s));
    assert_eq!(load(&s.batches_dropped), 0);
    assert!(!w.dead_letter_path().exists());

    proxy.restore();
    flush_until(&w, Duration::from_secs(60), "written after the outage", |s| load(&s.batches_written) == 2);
    assert_eq!(interfaces(&db, TABLE), ["while down", "while up"]);
    assert_eq!(load(&s.batches_dead_lettered), 0);
    w.stop();
    assert!(!DeadLetters::path_for(&spool.0, "db1").exists());
}

/// SQLite that cannot be opened (its directory is a file): the writer cannot even migrate.
/// The batch waits, however many attempts fail, and is written once the database opens.
#[test]
fn sqlite_that_cannot_open_is_waited_out_not_dead_lettered() {
    const N: u32 = 2;
    let dir = TempDir::new("dead-unreachable").expect("temp dir");
    let blocker = dir.0.join("db");
    std::fs::write(&blocker, b"a file where the database directory should be").expect("write");
    let url = format!("sqlite:{}/tars_stat.sqlite3", blocker.display());
    let spool = dir.0.join("spool");
    let mut w = Writer::start(config(&url, &spool, N)).expect("writer starts");
    let s = w.stats().clone();
    w.send(batch("waits", TABLE, vec![row("waited")]));
    flush_until(&w, Duration::from_secs(60), "attempts failing", |s| load(&s.write_errors) > u64::from(N) * 4);
    assert_eq!(load(&s.batches_dead_lettered), 0, "{}", counts(&s));
    assert_eq!(load(&s.batches_pending), 1, "{}", counts(&s));
    assert!(!w.dead_letter_path().exists());

    std::fs::remove_file(&blocker).expect("remove the blocker");
    flush_until(&w, Duration::from_secs(60), "written once the database opens", |s| load(&s.batches_written) == 1);
    assert_eq!(load(&s.batches_dead_lettered), 0);
    w.stop();
    let store = tars_sql::Store::open(&url).expect("store");
    let n = store.run_blocking(|s| s.query(&format!("SELECT COUNT(*) FROM {TABLE}"), &[])).expect("count");
    assert_eq!(n[0].get::<i64>(0).expect("count"), 1);
}

/// Someone drops an hourly table the writer made: the next batch for it makes the table anew
/// and is written, not refused into the dead letters.
fn a_dropped_hourly_table_is_made_again(db: TestDb) {
    let spool = TempDir::new("dead-dropped").expect("temp dir");
    let mut w = Writer::start(config(&db.url, &spool.0, 2)).expect("writer starts");
    w.send(batch("first", TABLE, vec![row("first")]));
    flush_until(&w, Duration::from_secs(30), "the first batch", |s| load(&s.batches_written) == 1);
    db.query(&format!("DROP TABLE {TABLE}"), vec![]);
    assert!(!db.table_exists(TABLE));
    w.send(batch("second", TABLE, vec![row("second")]));
    flush_until(&w, Duration::from_secs(30), "the second batch", |s| load(&s.batches_written) == 2);
    assert_eq!(load(&w.stats().batches_dead_lettered), 0, "{}", counts(w.stats()));
    assert_eq!(interfaces(&db, TABLE), ["second"]);
    w.stop();
}

#[test]
fn a_dropped_table_on_sqlite() {
    a_dropped_hourly_table_is_made_again(sqlite("dropped"));
}

#[test]
fn a_dropped_table_on_mysql() {
    a_dropped_hourly_table_is_made_again(mysql("dropped"));
}

#[test]
fn poisons_on_sqlite() {
    poisons_are_dead_lettered_and_the_rest_written(
        sqlite("poison"),
        vec![
            batch("missing table", NO_TABLE, vec![row("refused")]),
            // Rows three values wide for nineteen columns.
            batch("wrong width", TABLE, vec![vec![Value::Int(1), Value::Int(2), Value::Int(3)]; 2]),
        ],
    );
}

#[test]
fn poisons_on_mysql() {
    poisons_are_dead_lettered_and_the_rest_written(
        mysql("poison"),
        vec![batch("missing table", NO_TABLE, vec![row("refused"), row("refused too")])],
    );
}

/// `0` never dead-letters: the poison blocks its database, as before this existed.
#[test]
fn zero_never_dead_letters() {
    let db = sqlite("never");
    let spool = TempDir::new("dead-never").expect("temp dir");
    let mut w = Writer::start(config(&db.url, &spool.0, 0)).expect("writer starts");
    w.send(batch("poison", NO_TABLE, vec![row("refused")]));
    w.send(batch("good", TABLE, vec![row("blocked")]));
    flush_until(&w, Duration::from_secs(60), "many refusals", |s| load(&s.write_errors) >= 8);
    let s = w.stats();
    assert_eq!((load(&s.batches_dead_lettered), load(&s.batches_pending)), (0, 2), "{}", counts(s));
    assert!(!db.table_exists(TABLE) || interfaces(&db, TABLE).is_empty());
    w.stop();
}

// ---- the service: config key, status, metrics ----

/// Aggregates nothing: the service test feeds its writer through the spool.
struct Nothing;

impl Aggregate for Nothing {
    type Key = u32;
    type Value = u64;
    fn merge(&self, _: &u32, into: &mut u64, other: u64) -> usize {
        *into += other;
        0
    }
    fn heap_bytes(&self, _: &u32, _: &u64) -> usize {
        0
    }
    fn rows(&self, _: &u32, _: &u64, _: &Label, _: &mut Vec<Vec<Value>>) {}
}

const KEYS: Keys = Keys { db_root: "/tars/statdb", default_prefix: STAT_PREFIX, reserve_key: "stat_reserve_time" };

fn service_config(text: &str, db: &TestDb) -> ServiceConfig {
    let config = Config::parse(text).expect("config parses");
    let target = Target {
        name: "db1".into(),
        url: StoreUrl::parse(&db.url).expect("url"),
        prefix: STAT_PREFIX.into(),
        weight: 1,
    };
    ServiceConfig::from_config(&config, &KEYS, "/nonexistent", "127.0.0.1", Some(vec![target])).expect("keys read")
}

#[test]
fn dead_letter_after_is_read_from_the_config() {
    let db = sqlite("config");
    assert_eq!(service_config("<tars>\n</tars>\n", &db).dead_letter_after, DEFAULT_DEAD_LETTER_AFTER);
    assert_eq!(DEFAULT_DEAD_LETTER_AFTER, 5);
    let c = service_config("<tars>\n<spool>\ndeadLetterAfter = 3\nmaxMB = 2\n</spool>\n</tars>\n", &db);
    assert_eq!((c.dead_letter_after, c.spool_max_bytes), (3, 2 << 20));
    assert_eq!(service_config("<tars>\n<spool>\ndeadLetterAfter = 0\n</spool>\n</tars>\n", &db).dead_letter_after, 0);
    let bad = Config::parse("<tars>\n<spool>\ndeadLetterAfter = often\n</spool>\n</tars>\n").expect("parses");
    let target = Target {
        name: "db1".into(),
        url: StoreUrl::parse(&db.url).expect("url"),
        prefix: STAT_PREFIX.into(),
        weight: 1,
    };
    let e = ServiceConfig::from_config(&bad, &KEYS, "/x", "127.0.0.1", Some(vec![target])).expect_err("not a number");
    assert!(e.to_string().contains("deadLetterAfter"), "{e}");
}

/// A poison a previous run left in the spool, replayed by the service's writer: the status
/// text and the metrics show the dead letter, its rows and where the file is.
#[test]
fn status_and_metrics_show_dead_letters() {
    let db = sqlite("service");
    let data = TempDir::new("dead-service").expect("temp dir");
    let text = format!("<tars>\n<spool>\ndir = {}\ndeadLetterAfter = 2\n</spool>\n</tars>\n", data.0.display());
    let mut config = service_config(&text, &db);
    config.clock = Clock::manual(NOW, 0);
    let spec = TableSpec {
        name: "deadtest",
        columns: STAT_COLUMNS,
        make_table: stat_table,
        schema: stat_schema,
        upsert_tail: no_upsert,
    };
    let spool_dir = data.0.join(spec.name);
    let poison = batch("left over", NO_TABLE, vec![row("x"), row("y"), row("z")]);
    let mut sp = Spool::open(&spool_dir, "db1", config.spool_max_bytes).expect("spool");
    sp.append(&poison.encode()).expect("append");
    sp.append(&batch("behind it", TABLE, vec![row("written")]).encode()).expect("append");
    drop(sp);

    let service = MonitorService::start(&config, spec, Nothing, 1).expect("service starts");
    let dead_path = DeadLetters::path_for(&spool_dir, "db1");
    let start = Instant::now();
    while !service.status().contains("dead-lettered 1 batches / 3 rows") {
        assert!(start.elapsed() < Duration::from_secs(60), "no dead letter in:\n{}", service.status());
        std::thread::sleep(Duration::from_millis(50));
    }
    let start = Instant::now();
    while !service.status().contains("written 1 batches") {
        assert!(start.elapsed() < Duration::from_secs(60), "the batch behind it:\n{}", service.status());
        std::thread::sleep(Duration::from_millis(50));
    }
    let bytes = std::fs::metadata(&dead_path).expect("dead-letter file").len();
    let status = service.status();
    assert!(status.contains(&format!("db1: dead-letter file {} ({bytes} bytes)", dead_path.display())), "{status}");
    let metrics = service.prometheus();
    for line in [
        "tars_deadtest_dead_lettered_batches_total{db=\"db1\"} 1".to_owned(),
        "tars_deadtest_dead_lettered_rows_total{db=\"db1\"} 3".to_owned(),
        format!("tars_deadtest_dead_letter_file_bytes{{db=\"db1\"}} {bytes}"),
        format!("tars_deadtest_dead_letter_file_info{{db=\"db1\",path=\"{}\"}} 1", dead_path.display()),
        "# TYPE tars_deadtest_dead_lettered_batches_total counter".to_owned(),
    ] {
        assert!(metrics.lines().any(|l| l == line), "no {line:?} in:\n{metrics}");
    }
    drop(service);
    assert_eq!(interfaces(&db, TABLE), ["written"]);
    assert_eq!(dead_letters(&spool_dir), vec![poison]);
}

// ---- a TCP proxy that can cut the database off ----

/// Forwards connections to `upstream` while up; cut, it closes them all and refuses new ones.
struct Proxy {
    addr: SocketAddr,
    up: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let up = Arc::new(AtomicBool::new(true));
        let conns = Arc::new(Mutex::new(Vec::new()));
        let (up2, conns2) = (up.clone(), conns.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if !up2.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(&upstream) else { continue };
                let (Ok(c2), Ok(s2), Ok(c3), Ok(s3)) =
                    (client.try_clone(), server.try_clone(), client.try_clone(), server.try_clone())
                else {
                    continue;
                };
                conns2.lock().expect("lock").extend([c3, s3]);
                pipe(client, s2);
                pipe(server, c2);
            }
        });
        Proxy { addr, up, conns }
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for c in self.conns.lock().expect("lock").drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from, &mut to);
        let _ = to.flush();
        let _ = to.shutdown(Shutdown::Both);
    });
}

/// `host:port` of a `mysql://user:pass@host:port/db` URL.
fn host_port(url: &str) -> String {
    let rest = url.split_once("://").expect("scheme").1;
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    rest.split('/').next().expect("authority").to_owned()
}

fn with_host_port(url: &str, addr: &str) -> String {
    url.replacen(&format!("@{}/", host_port(url)), &format!("@{addr}/"), 1)
}
