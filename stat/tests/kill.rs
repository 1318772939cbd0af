//! No data lost when MySQL is down: tarsstat takes load for two windows while its private
//! MariaDB is killed (`kill -9`) and restarted, and every count lands in the hourly table
//! exactly once (not missing, not doubled), with one ledger entry per batch.
//!
//! - [`mariadb_killed_during_load`]: the database dies half-way through window 1's load, both
//!   windows are flushed into the spool while it is down, and the same tarsstat writes them
//!   once it is back.
//! - [`restart_with_a_full_spool`]: both windows wait in the spool and a third is under way
//!   when tarsstat stops; the database comes back, and a new tarsstat on the same spool
//!   writes them all; the old one's writer and collector threads are gone.
//! - [`replay_of_a_batch_already_written`]: the spool still holds a batch the old tarsstat had
//!   written (it died between the commit and the spool's acknowledgement); the new one skips
//!   it by the ledger and writes the rest.
//! - [`mariadb_killed_while_a_batch_is_written`]: the database dies inside the transaction of
//!   a 40 000-row batch; after recovery the batch is there once.
//!
//! Each runs on one IO driver: what is tested is the storage path. Each test has a MariaDB of
//! its own (`scripts/mariadb.sh`); without one the test fails, it never skips. They run one at
//! a time (four MariaDBs starting at once on a small machine would only test patience).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tars_core_net::rt::IoMode;
use tars_monitor::batch::Batch;
use tars_monitor::clock::Clock;
use tars_monitor::spool::{Spool, HEADER_LEN};
use tars_monitor::targets::Target;
use tars_proto::config::Config;
use tars_proto::rpc::ParamWriter;
use tars_protocol::tars::{StatMicMsgBody, StatMicMsgHead};
use tars_sql::schema::monitor::stat_schema;
use tars_sql::{Store, StoreUrl};
use tars_stat::service::{self, RunningStat, StartOptions, STAT_OBJ};
use tars_testkit::mysql::PrivateMariaDb;
use tars_testkit::process::TempDir;
use tars_testkit::raw::RawConn;

/// 2026-03-15 10:02:00 UTC: inside window 1, 10:00–10:05 (label `1005`).
const T_1002: i64 = 1_773_568_920;
/// Window 1's start, 10:00.
const W1: i64 = T_1002 - 2 * 60;
/// Window 2's start, 10:05 (label `1010`).
const W2: i64 = W1 + 300;
/// Both windows' hourly table.
const TABLE: &str = "tars_stat_2026031510";
/// The target (and so the spool file) name.
const TARGET: &str = "db1";
/// Distinct keys (interfaces) each report carries.
const KEYS: usize = 24;

/// One test at a time.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A private MariaDB with `tars_stat` migrated, and a handle for the test's own queries.
struct Db {
    server: PrivateMariaDb,
    url: String,
    store: Store,
}

fn private_db() -> Db {
    let server = PrivateMariaDb::start()
        .unwrap_or_else(|e| panic!("the kill test needs a private MariaDB (scripts/mariadb.sh start): {e:#}"));
    let url = tars_sql::url_with_database(server.url(), "tars_stat");
    let store = Store::open(&url).expect("the URL parses");
    store.migrate(stat_schema()).expect("tars_stat migrates");
    Db { server, url, store }
}

impl Db {
    /// Runs a query, retrying for up to 60 s while the server is away (it was just
    /// restarted; this store reconnects with its own backoff).
    fn query(&self, sql: &str) -> Vec<tars_sql::Row> {
        let start = Instant::now();
        loop {
            let owned = sql.to_owned();
            match self.store.run_blocking(move |s| s.query(&owned, &[])) {
                Ok(rows) => return rows,
                Err(e) if e.is_unavailable() && start.elapsed() < Duration::from_secs(60) => {
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => panic!("{sql}: {e}"),
            }
        }
    }

    fn table_exists(&self, table: &str) -> bool {
        let t = table.to_owned();
        self.store.run_blocking(move |s| s.table_exists(&t)).unwrap_or(false)
    }

    fn kill9(&self) {
        self.server.kill9().expect("kill -9 of the private MariaDB");
    }

    fn restart(&self) {
        self.server.restart().expect("the private MariaDB restarts after kill -9");
    }
}

fn start(db: &Db, io: IoMode, clock: &Clock, data: &TempDir) -> RunningStat {
    let text = format!(
        "<tars>\n<application>\n<server>\napp=tars\nserver=tarsstat\nlocalip=127.0.0.1\ndatapath={}\n\
         <tars.tarsstat.StatObjAdapter>\nendpoint=tcp -h 127.0.0.1 -p 0 -t 60000\nservant={STAT_OBJ}\n\
         </tars.tarsstat.StatObjAdapter>\n</server>\n</application>\n</tars>\n",
        data.0.display()
    );
    let config = Config::parse(&text).expect("config parses");
    let target = Target {
        name: TARGET.into(),
        url: StoreUrl::parse(&db.url).expect("url"),
        prefix: "tars_stat_".into(),
        weight: 1,
    };
    service::start(
        &config,
        StartOptions { io: Some(io), shards: Some(2), targets: Some(vec![target]), clock: Some(clock.clone()) },
    )
    .expect("tarsstat starts")
}

/// The writer's spool file: `<name>.spool` somewhere under tarsstat's `datapath` (the
/// default spool directory is `<datapath>/spool`, with a directory per service under it).
fn spool_file(data: &TempDir) -> PathBuf {
    fn find(dir: &Path, name: &str, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                find(&p, name, out);
            } else if p.file_name().is_some_and(|n| n == name) {
                out.push(p);
            }
        }
    }
    let mut found = Vec::new();
    find(&data.0, &format!("{TARGET}.spool"), &mut found);
    match found.as_slice() {
        [one] => one.clone(),
        other => panic!("expected one {TARGET}.spool under {}, found {other:?}", data.0.display()),
    }
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// The number after `label` in `text` (`pending 2`, `windows flushed: 1`).
fn num(text: &str, label: &str) -> u64 {
    let Some(at) = text.find(label) else { panic!("no {label:?} in {text:?}") };
    let digits: String = text[at + label.len()..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().unwrap_or_else(|_| panic!("no number after {label:?} in {text:?}"))
}

/// The writer's line of the status text (`db1: written 2 batches / 48 rows, ...`).
fn writer_line(status: &str) -> &str {
    let prefix = format!("{TARGET}: ");
    status.lines().find(|l| l.starts_with(&prefix)).unwrap_or_else(|| panic!("no writer line in:\n{status}"))
}

/// The writer's counters: (spooled, pending, written, duplicates, dropped batches, errors).
fn writer_counts(stat: &RunningStat) -> (u64, u64, u64, u64, u64, u64) {
    let status = stat.service().status();
    let w = writer_line(&status);
    let n = |label| num(w, label);
    (n("spooled "), n("pending "), n("written "), n("duplicates "), n("dropped "), n("errors "))
}

/// Polls until `f` holds or `limit` passes.
fn eventually(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("not within {limit:?}: {what}");
}

/// Waits until the writer has set up today's and tomorrow's tables (its first look at the
/// database), so the database is quiet when the test starts.
fn wait_ready(db: &Db) {
    eventually("the writer creates the tables", Duration::from_secs(30), || db.table_exists("tars_stat_2026031623"));
}

/// Counters of one key in one window, as sent and as stored.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Sums {
    rows: i64,
    succ: i64,
    timeouts: i64,
    errors: i64,
    total_time: i64,
}

/// Per (interface, `f_tflag`).
type Expected = BTreeMap<(String, String), Sums>;

fn iface(k: usize) -> String {
    format!("call{k:02}")
}

/// The body connection `c` sends for key `k` in round `r` of load `seed`: small, distinct,
/// never all zero (an all-zero entry is dropped by design).
fn body(seed: usize, c: usize, r: usize, k: usize) -> StatMicMsgBody {
    let count = 1 + ((seed * 11 + c * 7 + r * 3 + k) % 5) as i32;
    StatMicMsgBody {
        count,
        timeout_count: ((c + k + seed) % 2) as i32,
        exec_count: i32::from((r + k) % 3 == 0),
        interval_count: BTreeMap::from([(100, count)]),
        total_rsp_time: i64::from(count) * 10 + k as i64,
        max_rsp_time: 40,
        min_rsp_time: 2,
    }
}

fn report(conn: &mut RawConn, msg: &BTreeMap<StatMicMsgHead, StatMicMsgBody>) {
    let mut w = ParamWriter::new(1);
    w.write(1, "msg", msg);
    w.write(2, "bFromClient", &true);
    let req = conn.request(STAT_OBJ, "reportMicMsg", 1, w.finish());
    let reply = conn.call(&req).expect("tarsstat answers");
    assert_eq!(reply.ret, 0, "{}", reply.desc);
}

/// `conns` connections each send `rounds` reports of [`KEYS`] keys, concurrently; `midway`
/// runs (on this thread) once half of all reports were answered, while more are sent; the
/// last quarter of each connection's reports waits until it has returned. Adds what was
/// sent to `expected` under `tflag`.
fn load(
    addr: SocketAddr,
    seed: usize,
    conns: usize,
    rounds: usize,
    midway: impl FnOnce(),
    tflag: &str,
    expected: &mut Expected,
) {
    let done = AtomicUsize::new(0);
    let after = AtomicBool::new(false);
    let total = conns * rounds;
    std::thread::scope(|scope| {
        for c in 0..conns {
            let (done, after) = (&done, &after);
            scope.spawn(move || {
                let mut conn = RawConn::connect(addr).expect("connects to tarsstat");
                for r in 0..rounds {
                    while r >= rounds * 3 / 4 && !after.load(Ordering::SeqCst) {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    let msg: BTreeMap<StatMicMsgHead, StatMicMsgBody> = (0..KEYS)
                        .map(|k| {
                            let head = StatMicMsgHead {
                                master_name: "Kill.Client".into(),
                                slave_name: "Kill.Server".into(),
                                interface_name: iface(k),
                                master_ip: "10.9.9.9".into(),
                                slave_ip: "10.0.0.2".into(),
                                slave_port: 10_000,
                                return_value: 0,
                                ..StatMicMsgHead::default()
                            };
                            (head, body(seed, c, r, k))
                        })
                        .collect();
                    report(&mut conn, &msg);
                    done.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
        let start = Instant::now();
        while done.load(Ordering::SeqCst) < total / 2 {
            assert!(start.elapsed() < Duration::from_secs(30), "the load does not progress");
            std::thread::sleep(Duration::from_millis(1));
        }
        midway();
        after.store(true, Ordering::SeqCst);
    });
    for c in 0..conns {
        for r in 0..rounds {
            for k in 0..KEYS {
                let b = body(seed, c, r, k);
                let e = expected.entry((iface(k), tflag.to_owned())).or_default();
                e.rows = 1;
                e.succ += i64::from(b.count);
                e.timeouts += i64::from(b.timeout_count);
                e.errors += i64::from(b.exec_count);
                e.total_time += b.total_rsp_time;
            }
        }
    }
}

/// What the hourly table holds for the test's keys.
fn stored(db: &Db) -> Expected {
    let rows = db.query(&format!(
        "SELECT interface_name, f_tflag, COUNT(*), CAST(SUM(succ_count) AS SIGNED), \
         CAST(SUM(timeout_count) AS SIGNED), CAST(SUM(exce_count) AS SIGNED), CAST(SUM(total_time) AS SIGNED) \
         FROM {TABLE} WHERE master_name = 'Kill.Client' GROUP BY interface_name, f_tflag"
    ));
    let int = |r: &tars_sql::Row, i: usize| r.get::<i64>(i).expect("a number");
    rows.iter()
        .map(|r| {
            let key = (r.get::<String>(0).expect("interface"), r.get::<String>(1).expect("f_tflag"));
            let sums = Sums {
                rows: int(r, 2),
                succ: int(r, 3),
                timeouts: int(r, 4),
                errors: int(r, 5),
                total_time: int(r, 6),
            };
            (key, sums)
        })
        .collect()
}

/// The ledger, as (window start → (entries, rows written)).
fn ledger(db: &Db) -> BTreeMap<i64, (usize, i64)> {
    let mut out: BTreeMap<i64, (usize, i64)> = BTreeMap::new();
    for r in db.query("SELECT batch_id, rows_written FROM t_tarsrs_batch") {
        let id: String = r.get(0).expect("batch_id");
        let start = id.split('|').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("batch id {id:?}"));
        let e = out.entry(start).or_default();
        e.0 += 1;
        e.1 += r.get::<i64>(1).expect("rows_written");
    }
    out
}

/// Every count sent is in the table once, and every window has one batch in the ledger.
fn assert_exactly_once(db: &Db, expected: &Expected) {
    let got = stored(db);
    for (key, want) in expected {
        assert_eq!(got.get(key), Some(want), "{key:?}: stored vs sent");
    }
    assert_eq!(got.len(), expected.len(), "rows for keys that were never sent: {got:?}");
    let keys = KEYS as i64;
    let ledger = ledger(db);
    assert_eq!(ledger.get(&W1), Some(&(1, keys)), "one ledger entry for window 1: {ledger:?}");
    assert_eq!(ledger.get(&W2), Some(&(1, keys)), "one ledger entry for window 2: {ledger:?}");
}

/// Moves the clock past a window's end and waits until tarsstat has flushed it into the
/// spool (the database being down): `flushed` windows so far, all `flushed` batches pending.
fn flush_into_spool(stat: &RunningStat, clock: &Clock, window_start: i64, flushed: u64, spool: &Path) {
    clock.set(window_start + 300 + 1);
    eventually(&format!("window {flushed} spooled"), Duration::from_secs(30), || {
        let s = stat.service().status();
        let (spooled, pending, _, _, _, errors) = writer_counts(stat);
        // `errors`: the writer tried the dead database.
        num(&s, "windows flushed: ") == flushed && spooled == flushed && pending == flushed && errors > 0
    });
    let (_, _, written, _, dropped, _) = writer_counts(stat);
    assert_eq!((written, dropped), (0, 0), "{}", stat.service().status());
    assert!(file_len(spool) > HEADER_LEN, "the batches are in the spool file {}", spool.display());
}

/// The database dies half-way through window 1's load and stays down while both windows are
/// flushed; the same tarsstat writes both once it is back.
#[test]
fn mariadb_killed_during_load() {
    let _one = serial();
    let took = Instant::now();
    let db = private_db();
    let data = TempDir::new("stat-kill-a").expect("temp dir");
    let clock = Clock::manual(T_1002, 0);
    let stat = start(&db, IoMode::EpollEt, &clock, &data);
    let addr = stat.server().addr("tars.tarsstat.StatObjAdapter").expect("bound");
    wait_ready(&db);
    let mut expected = Expected::new();

    load(addr, 0, 6, 40, || db.kill9(), "1005", &mut expected);
    assert!(!db.server.running(), "MariaDB is down");
    flush_into_spool(&stat, &clock, W1, 1, &spool_file(&data));

    load(addr, 1, 4, 20, || {}, "1010", &mut expected);
    flush_into_spool(&stat, &clock, W2, 2, &spool_file(&data));

    db.restart();
    // The writer retries on its own (backoff up to 10 s; the store's reconnect up to 5 s).
    eventually("both batches written after the restart", Duration::from_secs(45), || {
        let (_, pending, written, ..) = writer_counts(&stat);
        pending == 0 && written == 2
    });
    assert_exactly_once(&db, &expected);
    let (spooled, _, _, duplicates, dropped, _) = writer_counts(&stat);
    assert_eq!((spooled, duplicates, dropped), (2, 0, 0), "{}", stat.service().status());
    assert_eq!(file_len(&spool_file(&data)), HEADER_LEN, "the spool is empty again");

    stat.server().shutdown();
    stat.wait().expect("stops");
    eprintln!("mariadb_killed_during_load: {:?}", took.elapsed());
}

/// Both windows wait in the spool; a third is under way when tarsstat stops (each shard
/// hands its part over as a batch of its own, spooled too); the database comes back; a new
/// tarsstat on the same spool writes them all, once.
#[test]
fn restart_with_a_full_spool() {
    let _one = serial();
    let took = Instant::now();
    let db = private_db();
    let data = TempDir::new("stat-kill-b").expect("temp dir");
    let clock = Clock::manual(T_1002, 0);
    let old = start(&db, IoMode::Uring, &clock, &data);
    let addr = old.server().addr("tars.tarsstat.StatObjAdapter").expect("bound");
    wait_ready(&db);
    db.kill9();
    let mut expected = Expected::new();

    load(addr, 2, 4, 30, || {}, "1005", &mut expected);
    flush_into_spool(&old, &clock, W1, 1, &spool_file(&data));
    load(addr, 3, 4, 30, || {}, "1010", &mut expected);
    flush_into_spool(&old, &clock, W2, 2, &spool_file(&data));
    load(addr, 6, 4, 10, || {}, "1015", &mut expected);

    old.server().shutdown();
    old.wait().expect("the old tarsstat stops");
    assert_eq!(monitor_threads(), Vec::<String>::new(), "the old tarsstat's writer and collector are gone");
    let spooled = pending_batches(&spool_file(&data));
    let w3 = spooled.iter().filter(|(_, b)| b.id.contains(&format!("|{}|", W2 + 300))).count();
    let ids: Vec<&str> = spooled.iter().map(|(_, b)| b.id.as_str()).collect();
    assert!(spooled.len() == 2 + w3 && (1..=2).contains(&w3), "windows 1, 2 and 3 stay in the spool: {ids:?}");

    db.restart();
    let new = start(&db, IoMode::Uring, &clock, &data);
    eventually("the new tarsstat writes the spooled batches", Duration::from_secs(45), || {
        let (_, pending, written, ..) = writer_counts(&new);
        pending == 0 && written == spooled.len() as u64
    });
    assert_exactly_once(&db, &expected);
    let entries = ledger(&db).get(&(W2 + 300)).map_or(0, |e| e.0);
    assert_eq!(entries, w3, "window 3: one ledger entry per shard's batch");
    let (spooled, _, _, duplicates, dropped, _) = writer_counts(&new);
    assert_eq!((spooled, duplicates, dropped), (0, 0, 0), "{}", new.service().status());
    assert_eq!(file_len(&spool_file(&data)), HEADER_LEN, "the spool is empty again");

    new.server().shutdown();
    new.wait().expect("stops");
    eprintln!("restart_with_a_full_spool: {:?} (window 3 in {w3} batches)", took.elapsed());
}

/// Threads of this process still named like a writer or the collector: after `wait()`
/// there must be none, or an old writer would share the spool with the next tarsstat.
fn monitor_threads() -> Vec<String> {
    let names = std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok().map(|n| n.trim().to_owned()));
    names.filter(|n| n.starts_with("tars-writer") || n.starts_with("tars-collector")).collect()
}

/// The batches a spool file holds, decoded (read from a copy: opening a spool may rewrite it).
fn pending_batches(spool: &Path) -> Vec<(Vec<u8>, Batch)> {
    let dir = TempDir::new("stat-kill-peek").expect("temp dir");
    std::fs::copy(spool, dir.0.join(format!("{TARGET}.spool"))).expect("copying the spool");
    let s = Spool::open(&dir.0, TARGET, 1 << 30).expect("the spool opens");
    s.pending()
        .map(|r| {
            let (_, b) = r.expect("a spooled batch reads back");
            let batch = Batch::decode(&b).expect("a spooled batch decodes");
            (b, batch)
        })
        .collect()
}

/// The old tarsstat wrote window 1 after the database came back, and "died" before the
/// spool's acknowledgement reached the disk (simulated: the new tarsstat gets the spool as it
/// was before that acknowledgement, plus window 2, spooled during a second outage). The new
/// tarsstat finds window 1 in the ledger and skips it, and writes window 2: nothing doubled.
#[test]
fn replay_of_a_batch_already_written() {
    let _one = serial();
    let took = Instant::now();
    let db = private_db();
    let data = TempDir::new("stat-kill-c").expect("temp dir");
    let clock = Clock::manual(T_1002, 0);
    let old = start(&db, IoMode::Uring, &clock, &data);
    let spool = spool_file(&data);
    let addr = old.server().addr("tars.tarsstat.StatObjAdapter").expect("bound");
    wait_ready(&db);
    db.kill9();
    let mut expected = Expected::new();

    load(addr, 4, 4, 30, || {}, "1005", &mut expected);
    flush_into_spool(&old, &clock, W1, 1, &spool);
    let before_ack = TempDir::new("stat-kill-image").expect("temp dir");
    std::fs::copy(&spool, before_ack.0.join(format!("{TARGET}.spool"))).expect("copying the spool");

    db.restart();
    eventually("the old tarsstat writes window 1", Duration::from_secs(45), || {
        old.service().flush_writers(Duration::from_secs(5));
        writer_counts(&old).2 == 1
    });
    db.kill9();
    load(addr, 5, 4, 30, || {}, "1010", &mut expected);
    clock.set(W2 + 300 + 1);
    eventually("window 2 spooled", Duration::from_secs(30), || {
        let (spooled, pending, ..) = writer_counts(&old);
        spooled == 2 && pending == 1
    });
    old.server().shutdown();
    old.wait().expect("the old tarsstat stops");
    assert_eq!(monitor_threads(), Vec::<String>::new(), "the old tarsstat's writer and collector are gone");

    // The spool as a crash between window 1's commit and its acknowledgement leaves it.
    let window2 = pending_batches(&spool);
    assert_eq!(window2.len(), 1, "window 2 waits in the spool");
    {
        let mut image = Spool::open(&before_ack.0, TARGET, 1 << 30).expect("the image opens");
        image.append(&window2[0].0).expect("window 2 appended to the image");
    }
    std::fs::copy(before_ack.0.join(format!("{TARGET}.spool")), &spool).expect("installing the image");
    let replay: Vec<String> = pending_batches(&spool).into_iter().map(|(_, b)| b.id).collect();
    assert_eq!(replay.len(), 2, "{replay:?}");
    assert!(replay[0].contains(&format!("|{W1}|")) && replay[1].contains(&format!("|{W2}|")), "{replay:?}");

    db.restart();
    let new = start(&db, IoMode::Uring, &clock, &data);
    eventually("the new tarsstat replays the spool", Duration::from_secs(45), || {
        let (_, pending, written, duplicates, ..) = writer_counts(&new);
        pending == 0 && written == 1 && duplicates == 1
    });
    assert_exactly_once(&db, &expected);

    new.server().shutdown();
    new.wait().expect("stops");
    eprintln!("replay_of_a_batch_already_written: {:?}", took.elapsed());
}

/// One window of [`BIG_KEYS`] distinct keys: a batch whose transaction takes a while.
const BIG_KEYS: usize = 40_000;

/// The database is killed right when the writer starts on a large batch: the transaction
/// dies half-way (InnoDB rolls it back in recovery), or commits without the writer hearing
/// of it (the ledger then says it is written). Either way, once the database is back, every
/// count is there once.
#[test]
fn mariadb_killed_while_a_batch_is_written() {
    let _one = serial();
    let took = Instant::now();
    let db = private_db();
    let data = TempDir::new("stat-kill-d").expect("temp dir");
    let clock = Clock::manual(T_1002, 0);
    let stat = start(&db, IoMode::EpollEt, &clock, &data);
    let addr = stat.server().addr("tars.tarsstat.StatObjAdapter").expect("bound");
    wait_ready(&db);

    let per_report = 1000;
    let conns = 4;
    let reports = BIG_KEYS / per_report / conns;
    std::thread::scope(|scope| {
        for c in 0..conns {
            scope.spawn(move || {
                let mut conn = RawConn::connect(addr).expect("connects to tarsstat");
                for r in 0..reports {
                    let first = (c * reports + r) * per_report;
                    let msg: BTreeMap<StatMicMsgHead, StatMicMsgBody> =
                        (first..first + per_report).map(|k| (big_head(k), big_body(k))).collect();
                    report(&mut conn, &msg);
                }
            });
        }
    });
    clock.set(W1 + 300 + 1);
    eventually("the big batch reaches the writer", Duration::from_secs(60), || writer_counts(&stat).0 == 1);
    // Killed once the batch's transaction has written rows, before it commits.
    let trx = "SELECT COALESCE(MAX(trx_rows_modified), 0) FROM information_schema.INNODB_TRX";
    let mut in_trx = 0;
    eventually("the writer's transaction is under way", Duration::from_secs(60), || {
        assert_eq!(writer_counts(&stat).2, 0, "the batch was written before it could be interrupted");
        // InnoDB refreshes this view only after 100 ms without readers.
        std::thread::sleep(Duration::from_millis(150));
        in_trx = db.query(trx)[0].get::<i64>(0).expect("a number");
        in_trx > 0
    });
    db.kill9();
    let at_kill = stat.service().status();
    assert_eq!(writer_counts(&stat).2, 0, "killed after the commit was acknowledged");
    db.restart();
    eventually("the big batch written after the restart", Duration::from_secs(60), || {
        let (_, pending, written, duplicates, ..) = writer_counts(&stat);
        pending == 0 && written + duplicates == 1
    });

    let rows = db.query(&format!(
        "SELECT COUNT(*), COUNT(DISTINCT interface_name), CAST(SUM(succ_count) AS SIGNED), \
         CAST(SUM(timeout_count) AS SIGNED), CAST(SUM(total_time) AS SIGNED) FROM {TABLE} \
         WHERE master_name = 'Kill.Big'"
    ));
    let got: Vec<i64> = (0..5).map(|i| rows[0].get::<i64>(i).expect("a number")).collect();
    let sent = |f: fn(&StatMicMsgBody) -> i64| (0..BIG_KEYS).map(|k| f(&big_body(k))).sum::<i64>();
    let keys = BIG_KEYS as i64;
    let want = vec![
        keys,
        keys,
        sent(|b| i64::from(b.count)),
        sent(|b| i64::from(b.timeout_count)),
        sent(|b| b.total_rsp_time),
    ];
    assert_eq!(got, want, "rows, keys, succ, timeouts, total time: stored vs sent");
    assert_eq!(ledger(&db), BTreeMap::from([(W1, (1, keys))]), "one ledger entry");
    let (_, _, written, duplicates, dropped, errors) = writer_counts(&stat);
    assert_eq!(dropped, 0);
    eprintln!(
        "mariadb_killed_while_a_batch_is_written: {:?}; killed with {in_trx} of {BIG_KEYS} rows in the \
         transaction; at the kill: {}; the batch was {} after the restart ({} failed attempts)",
        took.elapsed(),
        writer_line(&at_kill),
        if written == 1 {
            "written"
        } else if duplicates == 1 {
            "found in the ledger"
        } else {
            "?"
        },
        errors,
    );
    stat.server().shutdown();
    stat.wait().expect("stops");
}

fn big_head(k: usize) -> StatMicMsgHead {
    StatMicMsgHead {
        master_name: "Kill.Big".into(),
        slave_name: "Kill.Server".into(),
        interface_name: format!("m{k:06}"),
        master_ip: "10.9.9.9".into(),
        slave_ip: "10.0.0.2".into(),
        slave_port: 10_000,
        return_value: 0,
        ..StatMicMsgHead::default()
    }
}

fn big_body(k: usize) -> StatMicMsgBody {
    let count = 1 + (k % 3) as i32;
    StatMicMsgBody {
        count,
        timeout_count: (k % 2) as i32,
        exec_count: 0,
        interval_count: BTreeMap::from([(100, count)]),
        total_rsp_time: i64::from(count) * 7,
        max_rsp_time: 9,
        min_rsp_time: 1,
    }
}

/// A server with `local_infile` off (MySQL 8's default) refuses `LOAD DATA LOCAL`: the writer
/// rolls the load back, writes the batch with INSERTs in the same attempt (no error counted,
/// nothing lost) and uses INSERTs from then on.
#[test]
fn a_server_refusing_load_data_gets_inserts() {
    let _one = serial();
    let db = private_db();
    db.query("SET GLOBAL local_infile = 0");
    let data = TempDir::new("stat-kill-e").expect("temp dir");
    let clock = Clock::manual(T_1002, 0);
    let stat = start(&db, IoMode::EpollEt, &clock, &data);
    let addr = stat.server().addr("tars.tarsstat.StatObjAdapter").expect("bound");
    wait_ready(&db);
    let mut expected = Expected::new();
    load(addr, 6, 2, 10, || {}, "1005", &mut expected);
    clock.set(W1 + 300 + 1);
    eventually("window 1 written", Duration::from_secs(30), || writer_counts(&stat).2 == 1);
    load(addr, 7, 2, 10, || {}, "1010", &mut expected);
    clock.set(W2 + 300 + 1);
    eventually("window 2 written", Duration::from_secs(30), || writer_counts(&stat).2 == 2);
    assert_exactly_once(&db, &expected);
    let status = stat.service().status();
    let (_, pending, _, _, dropped, errors) = writer_counts(&stat);
    assert_eq!((pending, dropped, errors), (0, 0, 0), "{status}");
    assert!(writer_line(&status).contains("loads 0, merged with upsert 0"), "{status}");
    stat.server().shutdown();
    stat.wait().expect("stops");
}
