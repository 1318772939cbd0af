//! tarsstat end to end: reports over TCP to `StatObj` on two shards, a manual clock moved past
//! the window's end, rows in the hourly table of a real database (MariaDB and SQLite), on
//! every IO driver.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tars_core_net::rt::IoMode;
use tars_monitor::clock::Clock;
use tars_monitor::targets::Target;
use tars_proto::config::Config;
use tars_proto::rpc::ParamWriter;
use tars_protocol::tars::{StatMicMsgBody, StatMicMsgHead};
use tars_sql::schema::monitor::stat_schema;
use tars_sql::StoreUrl;
use tars_stat::service::{self, RunningStat, StartOptions, STAT_OBJ};
use tars_testkit::db::TestDb;
use tars_testkit::process::TempDir;
use tars_testkit::raw::RawConn;

/// 2026-03-15 10:02:00 UTC.
const T_1002: i64 = 1_773_568_920;
/// 2026-03-15 23:57:00 UTC.
const T_2357: i64 = 1_773_619_020;

#[path = "../../monitor/tests/support/db.rs"]
#[macro_use]
mod db;

fn mysql(tag: &str) -> TestDb {
    TestDb::mysql_migrated("tarsstat", tag, stat_schema())
}

fn sqlite(tag: &str) -> TestDb {
    TestDb::sqlite_migrated(tag, stat_schema())
}

fn start(db: &TestDb, io: IoMode, clock: &Clock, spool: &TempDir) -> RunningStat {
    let text = format!(
        "<tars>\n<application>\n<server>\napp=tars\nserver=tarsstat\nlocalip=127.0.0.1\ndatapath={}\n\
         <tars.tarsstat.StatObjAdapter>\nendpoint=tcp -h 127.0.0.1 -p 0 -t 60000\nservant={STAT_OBJ}\n\
         </tars.tarsstat.StatObjAdapter>\n</server>\n</application>\n\
         <masteripgroup>\ntars.tarsstat;1.1.1.1\n</masteripgroup>\n</tars>\n",
        spool.0.display()
    );
    let config = Config::parse(&text).expect("config parses");
    let target = Target {
        name: "db1".into(),
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

fn head(master: &str, slave: &str, iface: &str, ret: i32) -> StatMicMsgHead {
    StatMicMsgHead {
        master_name: master.into(),
        slave_name: slave.into(),
        interface_name: iface.into(),
        master_ip: "10.9.9.9".into(),
        slave_ip: "10.0.0.2".into(),
        slave_port: 10_000,
        return_value: ret,
        ..StatMicMsgHead::default()
    }
}

fn body(count: i32, timeouts: i32, errors: i32, total: i64, max: i32, min: i32) -> StatMicMsgBody {
    StatMicMsgBody {
        count,
        timeout_count: timeouts,
        exec_count: errors,
        interval_count: BTreeMap::from([(5, count / 2), (100, count - count / 2)]),
        total_rsp_time: total,
        max_rsp_time: max,
        min_rsp_time: min,
    }
}

fn report(addr: SocketAddr, msg: &BTreeMap<StatMicMsgHead, StatMicMsgBody>, from_client: bool) {
    report_as(addr, 1, msg, from_client);
}

/// `reportMicMsg` in encoding `version` (1: by tag, 3: TUP, 5: JSON).
fn report_as(addr: SocketAddr, version: i16, msg: &BTreeMap<StatMicMsgHead, StatMicMsgBody>, from_client: bool) {
    let mut w = ParamWriter::new(version);
    w.write(1, "msg", msg);
    w.write(2, "bFromClient", &from_client);
    let mut conn = RawConn::connect(addr).expect("connects");
    let req = conn.request(STAT_OBJ, "reportMicMsg", version, w.finish());
    let reply = conn.call(&req).expect("reply");
    assert_eq!(reply.ret, 0, "{}", reply.desc);
}

/// Polls until `f` holds or 15 s pass.
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let what = what.to_owned();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(15) {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("not within 15 s: {what}");
}

fn text(r: &tars_sql::Row, i: usize) -> String {
    r.get::<Option<String>>(i).expect("text").unwrap_or_default()
}

fn int(r: &tars_sql::Row, i: usize) -> i64 {
    r.get::<i64>(i).expect("int")
}

/// Many connections (so both shards get some) report the same key; one merged row lands
/// with the window's end as its label, the peer as master IP and the version split off.
fn one_window_lands_as_merged_rows(db: TestDb, io: IoMode) {
    let spool = TempDir::new("stat-spool").expect("temp dir");
    let clock = Clock::manual(T_1002, 0);
    let stat = start(&db, io, &clock, &spool);
    let addr = stat.server().addr("tars.tarsstat.StatObjAdapter").expect("bound");
    let conns = 12;
    for _ in 0..conns {
        let mut msg = BTreeMap::new();
        msg.insert(head("App.Client@2.4.1", "App.Server", "call", 0), body(10, 1, 2, 500, 90, 3));
        msg.insert(head("App.Client@2.4.1", "App.Server", "idle", 0), body(0, 0, 0, 0, 0, 0));
        msg.insert(head("App.Other", "tars.tarsstat", "report", -1), body(1, 0, 0, 7, 7, 7));
        report(addr, &msg, true);
    }
    clock.set(T_1002 + 3 * 60 + 1); // 10:05:01: the 10:00–10:05 window has ended
    let table = "tars_stat_2026031510";
    eventually("the window's rows", || db.count(table) > 0);
    let rows = db.query(
        &format!(
            "SELECT f_tflag, master_name, tars_version, master_ip, slave_ip, succ_count, timeout_count, exce_count, \
             total_time, ave_time, maxrsp_time, minrsp_time, interv_count, source_id, interface_name \
             FROM {table} ORDER BY interface_name"
        ),
        vec![],
    );
    assert_eq!(rows.len(), 2, "the all-zero entry is dropped and the rest merged into one row per key");
    let call = &rows[0];
    assert_eq!(text(call, 14), "call");
    assert_eq!(text(call, 0), "1005");
    assert_eq!((text(call, 1), text(call, 2)), ("App.Client".to_owned(), "2.4.1".to_owned()));
    assert_eq!(text(call, 3), "127.0.0.1", "a client report's master IP is the peer's");
    assert_eq!(text(call, 4), "10.0.0.2");
    let n = conns as i64;
    assert_eq!((int(call, 5), int(call, 6), int(call, 7), int(call, 8)), (10 * n, n, 2 * n, 500 * n));
    assert_eq!((int(call, 9), int(call, 10), int(call, 11)), (50, 90, 3));
    assert_eq!(text(call, 12), format!("5|{},100|{}", 5 * n, 5 * n));
    assert_eq!(text(call, 13), "127.0.0.1");
    let report_row = &rows[1];
    assert_eq!(text(report_row, 3), "1.1.1.1", "masteripgroup replaces the master IP");
    assert_eq!(text(report_row, 2), "", "no @: no version");
    let day: Vec<String> = (0..24).map(|h| format!("tars_stat_20260315{h:02}")).collect();
    assert!(day.iter().all(|t| db.table_exists(t)), "all 24 tables of the day");
    eventually("the t_ecstatus marker", || {
        db.query("SELECT lasttime FROM t_ecstatus WHERE appname = 'tars_stat_127.0.0.1' AND action = 0", vec![])
            .first()
            .map(|r| text(r, 0))
            == Some("20260315 1005".to_owned())
    });
    let ledger = db.query("SELECT rows_written FROM t_tarsrs_batch", vec![]);
    assert_eq!(ledger.iter().map(|r| int(r, 0)).sum::<i64>(), 2);
    let status = stat.service().status();
    let loads = if db.url.starts_with("mysql:") { "loads 1," } else { "loads 0," };
    assert!(status.contains(loads), "{status}");
    stat.server().shutdown();
    stat.wait().expect("stops");
}

/// 23:55–00:00 goes to the previous day's hour 23 as `2360`; the next window to the new
/// day's hour 00 as `0005`.
fn the_day_boundary_is_labelled_as_upstream(db: TestDb, io: IoMode) {
    let spool = TempDir::new("stat-spool").expect("temp dir");
    let clock = Clock::manual(T_2357, 0);
    let stat = start(&db, io, &clock, &spool);
    let addr = stat.server().addr("tars.tarsstat.StatObjAdapter").expect("bound");
    let one = |iface: &str| BTreeMap::from([(head("A.B", "C.D", iface, 0), body(3, 0, 0, 30, 10, 10))]);
    report(addr, &one("before_midnight"), false);
    clock.set(T_2357 + 3 * 60 + 2); // 00:00:02 the next day
    report(addr, &one("after_midnight"), false);
    clock.set(T_2357 + 8 * 60 + 2); // 00:05:02
    let (old, new) = ("tars_stat_2026031523", "tars_stat_2026031600");
    eventually(&format!("both windows' rows\n{}", stat.service().status()), || db.count(old) > 0 && db.count(new) > 0);
    let before = db.query(&format!("SELECT f_tflag, interface_name, slave_ip FROM {old}"), vec![]);
    assert_eq!(before.len(), 1);
    assert_eq!((text(&before[0], 0), text(&before[0], 1)), ("2360".to_owned(), "before_midnight".to_owned()));
    assert_eq!(text(&before[0], 2), "127.0.0.1", "a server report's slave IP is the peer's");
    let after = db.query(&format!("SELECT f_tflag, interface_name FROM {new}"), vec![]);
    assert_eq!(after.len(), 1);
    assert_eq!((text(&after[0], 0), text(&after[0], 1)), ("0005".to_owned(), "after_midnight".to_owned()));
    assert!(db.table_exists("tars_stat_2026031623"), "the new day's tables exist");
    stat.server().shutdown();
    stat.wait().expect("stops");
}

/// iVersion 1 goes through `StatObj`'s own decoder, TUP and JSON through the generated one:
/// the same entries merge into the same keys, a broken request is refused with a decode error
/// naming the field and adds nothing.
fn every_encoding_merges_into_the_same_keys(db: TestDb, io: IoMode) {
    let spool = TempDir::new("stat-spool").expect("temp dir");
    let clock = Clock::manual(T_1002, 0);
    let stat = start(&db, io, &clock, &spool);
    let addr = stat.server().addr("tars.tarsstat.StatObjAdapter").expect("bound");
    let msg = BTreeMap::from([
        (head("App.Client@2.4.1", "App.Server", "call", 0), body(10, 1, 2, 500, 90, 3)),
        (head("App.Client@2.4.1", "App.Server", "bye", 0), body(1, 0, 0, 4, 4, 4)),
    ]);
    for version in [1, 3, 5] {
        report_as(addr, version, &msg, true);
    }
    let mut w = ParamWriter::new(1);
    w.write(1, "msg", &msg);
    w.write(2, "bFromClient", &true);
    let full = w.finish();
    let mut conn = RawConn::connect(addr).expect("connects");
    let req = conn.request(STAT_OBJ, "reportMicMsg", 1, full.slice(..full.len() - 5));
    let reply = conn.call(&req).expect("a reply to a broken request");
    assert_ne!(reply.ret, 0);
    assert!(reply.desc.contains("reportMicMsg"), "{}", reply.desc);
    // The connection still serves.
    let req = conn.request(STAT_OBJ, "reportMicMsg", 1, full);
    let reply = conn.call(&req).expect("reply");
    assert_eq!(reply.ret, 0, "{}", reply.desc);
    // Every encoding has the fast path's limits: 65 buckets in one body are refused, naming
    // the field, and nothing of the request is kept.
    let mut wide = body(7, 0, 0, 70, 10, 10);
    wide.interval_count = (1..=65).map(|b| (b * 10, 0)).collect();
    let hostile = BTreeMap::from([
        (head("App.Client@2.4.1", "App.Server", "call", 0), body(1000, 0, 0, 1000, 1, 1)),
        (head("App.Client@2.4.1", "App.Server", "wide", 0), wide),
    ]);
    for version in [1, 3, 5] {
        let mut w = ParamWriter::new(version);
        w.write(1, "msg", &hostile);
        w.write(2, "bFromClient", &true);
        let req = conn.request(STAT_OBJ, "reportMicMsg", version, w.finish());
        let reply = conn.call(&req).expect("a reply to a request over the limits");
        assert_ne!(reply.ret, 0, "iVersion {version} took 65 buckets");
        assert!(reply.desc.contains("65 buckets") && reply.desc.contains("intervalCount"), "{}", reply.desc);
    }

    clock.set(T_1002 + 3 * 60 + 1);
    let table = "tars_stat_2026031510";
    eventually("the window's rows", || db.count(table) > 0);
    let rows = db.query(
        &format!("SELECT interface_name, succ_count, timeout_count, interv_count FROM {table} ORDER BY interface_name"),
        vec![],
    );
    let got: Vec<(String, i64, i64, String)> =
        rows.iter().map(|r| (text(r, 0), int(r, 1), int(r, 2), text(r, 3))).collect();
    assert_eq!(
        got,
        vec![("bye".to_owned(), 4, 0, "5|0,100|4".to_owned()), ("call".to_owned(), 40, 4, "5|20,100|20".to_owned())]
    );
    stat.server().shutdown();
    stat.wait().expect("stops");
}

/// tarsstat stopped and started again inside a window writes the window in two batches whose
/// rows have the same primary keys: the second merges into the first (on MariaDB the load
/// is rolled back and the batch written again with the upsert), counts add up, `ave_time`
/// is recomputed, the minimum ignores a part without one.
fn a_window_split_by_a_restart_adds_up(db: TestDb, io: IoMode) {
    let spool = TempDir::new("stat-spool").expect("temp dir");
    let clock = Clock::manual(T_1002, 0);
    let table = "tars_stat_2026031510";
    let first = start(&db, io, &clock, &spool);
    let addr = first.server().addr("tars.tarsstat.StatObjAdapter").expect("bound");
    report(addr, &BTreeMap::from([(head("A.B", "C.D", "call", 0), body(10, 1, 2, 500, 90, 3))]), true);
    first.server().shutdown();
    first.wait().expect("stops");
    eventually("the first part's row", || db.count(table) == 1);

    let second = start(&db, io, &clock, &spool);
    let addr = second.server().addr("tars.tarsstat.StatObjAdapter").expect("bound");
    let part2 = BTreeMap::from([
        (head("A.B", "C.D", "call", 0), body(30, 0, 1, 2500, 120, 0)),
        (head("A.B", "C.D", "new", 0), body(1, 0, 0, 8, 8, 8)),
    ]);
    report(addr, &part2, true);
    clock.set(T_1002 + 3 * 60 + 1);
    eventually("the second part's rows", || db.count(table) == 2);
    eventually("both batches in the ledger", || db.count("t_tarsrs_batch") == 2);
    let rows = db.query(
        &format!(
            "SELECT interface_name, succ_count, timeout_count, exce_count, total_time, ave_time, maxrsp_time, \
             minrsp_time, interv_count FROM {table} ORDER BY interface_name"
        ),
        vec![],
    );
    let call = &rows[0];
    assert_eq!(text(call, 0), "call");
    let nums: Vec<i64> = (1..8).map(|i| int(call, i)).collect();
    assert_eq!(nums, [40, 1, 3, 3000, 75, 120, 3]);
    assert_eq!(text(call, 8), "5|5,100|5", "the first part's histogram");
    assert_eq!((text(&rows[1], 0), int(&rows[1], 1)), ("new".to_owned(), 1));
    // MariaDB: the load kept 1 of 2 rows, was rolled back and the batch upserted.
    let status = second.service().status();
    let via =
        if db.url.starts_with("mysql:") { "loads 0, merged with upsert 1" } else { "loads 0, merged with upsert 0" };
    assert!(status.contains(via), "{status}");
    second.server().shutdown();
    second.wait().expect("stops");
}

on_every_path!(
    one_window_lands_as_merged_rows,
    the_day_boundary_is_labelled_as_upstream,
    every_encoding_merges_into_the_same_keys,
    a_window_split_by_a_restart_adds_up
);
