//! tarsproperty end to end: reports over TCP to `PropertyObj` on two shards, a manual clock
//! moved past the window's end, rows in the hourly table of a real database (MariaDB and
//! SQLite), on every IO driver; the counters on the status command's text and the Prometheus
//! endpoint.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use tars_core_net::rt::IoMode;
use tars_monitor::clock::Clock;
use tars_monitor::targets::Target;
use tars_property::service::{self, RunningProperty, StartOptions, PROPERTY_OBJ};
use tars_proto::config::Config;
use tars_proto::rpc::ParamWriter;
use tars_protocol::tars::{StatPropInfo, StatPropMsgBody, StatPropMsgHead};
use tars_sql::schema::monitor::property_schema;
use tars_sql::StoreUrl;
use tars_testkit::db::TestDb;
use tars_testkit::process::TempDir;
use tars_testkit::raw::RawConn;

/// 2026-03-15 10:02:00 UTC.
const T_1002: i64 = 1_773_568_920;
/// 2026-03-15 10:57:00 UTC.
const T_1057: i64 = T_1002 + 55 * 60;

#[path = "../../monitor/tests/support/db.rs"]
#[macro_use]
mod db;

fn mysql(tag: &str) -> TestDb {
    TestDb::mysql_migrated("tarsprop", tag, property_schema())
}

fn sqlite(tag: &str) -> TestDb {
    TestDb::sqlite_migrated(tag, property_schema())
}

/// Reading the property tables back; a trait because [`TestDb`] is testkit's.
trait PropertyRows {
    /// `(f_tflag, master_name, master_ip, property_name, policy, value)` of `table`, sorted.
    fn rows(&self, table: &str) -> Vec<[String; 6]>;

    /// True when `table` can be read.
    fn query_ok(&self, table: &str) -> bool;
}

impl PropertyRows for TestDb {
    fn rows(&self, table: &str) -> Vec<[String; 6]> {
        let rows = self.query(
            &format!(
                "SELECT f_tflag, master_name, master_ip, property_name, policy, value FROM {table} \
                 ORDER BY property_name, policy"
            ),
            vec![],
        );
        rows.iter()
            .map(|r| std::array::from_fn(|i| r.get::<Option<String>>(i).expect("text").unwrap_or_default()))
            .collect()
    }

    fn query_ok(&self, table: &str) -> bool {
        let sql = format!("SELECT 1 FROM {table} WHERE 1 = 0");
        self.store.run_blocking(move |s| s.query(&sql, &[])).is_ok()
    }
}

fn start(db: &TestDb, io: IoMode, clock: &Clock, spool: &TempDir) -> RunningProperty {
    start_with(db, io, clock, spool, "", 2)
}

/// `extra`: more config sections inside `<tars>`.
fn start_with(db: &TestDb, io: IoMode, clock: &Clock, spool: &TempDir, extra: &str, shards: usize) -> RunningProperty {
    let text = format!(
        "<tars>\n<application>\n<server>\napp=tars\nserver=tarsproperty\nlocalip=127.0.0.1\ndatapath={}\n\
         <tars.tarsproperty.PropertyObjAdapter>\nendpoint=tcp -h 127.0.0.1 -p 0 -t 60000\nservant={PROPERTY_OBJ}\n\
         </tars.tarsproperty.PropertyObjAdapter>\n</server>\n</application>\n\
         <metrics>\nlisten=127.0.0.1:0\n</metrics>\n{extra}</tars>\n",
        spool.0.display()
    );
    let config = Config::parse(&text).expect("config parses");
    let target = Target {
        name: "db1".into(),
        url: StoreUrl::parse(&db.url).expect("url"),
        prefix: "tars_property_".into(),
        weight: 1,
    };
    service::start(
        &config,
        StartOptions { io: Some(io), shards: Some(shards), targets: Some(vec![target]), clock: Some(clock.clone()) },
    )
    .expect("tarsproperty starts")
}

fn head(module: &str, name: &str) -> StatPropMsgHead {
    StatPropMsgHead {
        module_name: module.into(),
        ip: "10.9.9.9".into(),
        property_name: name.into(),
        s_container: "pod-1".into(),
        i_property_ver: 2,
        ..StatPropMsgHead::default()
    }
}

fn body(values: &[(&str, &str)]) -> StatPropMsgBody {
    StatPropMsgBody {
        v_info: values.iter().map(|(p, v)| StatPropInfo { policy: (*p).into(), value: (*v).into() }).collect(),
    }
}

/// One `reportPropMsg` on a fresh connection (so connections spread over the shards).
fn report(addr: SocketAddr, msg: &BTreeMap<StatPropMsgHead, StatPropMsgBody>) {
    let mut w = ParamWriter::new(1);
    w.write(1, "statmsg", msg);
    let mut conn = RawConn::connect(addr).expect("connects");
    let req = conn.request(PROPERTY_OBJ, "reportPropMsg", 1, w.finish());
    let reply = conn.call(&req).expect("reply");
    assert_eq!(reply.ret, 0, "{}", reply.desc);
}

/// Polls until `f` holds or 15 s pass.
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

/// `GET path` on a fresh connection: the status code and the body.
fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("metrics endpoint connects");
    s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    write!(s, "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").expect("request sent");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("answer read");
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).expect("a status line");
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}

fn s(v: &[&str; 6]) -> [String; 6] {
    v.map(str::to_owned)
}

/// Twelve connections over two shards report the same keys: one row per policy, merged
/// across shards with each policy's rule; the Avg is the true average over all reports; a
/// Distr whose buckets differ is rejected and counted, the rest of its report kept.
fn one_window_merges_every_policy(db: TestDb, io: IoMode) {
    let spool = TempDir::new("property-spool").expect("temp dir");
    let clock = Clock::manual(T_1002, 0);
    let property = start(&db, io, &clock, &spool);
    let addr = property.server().addr("tars.tarsproperty.PropertyObjAdapter").expect("bound");
    let conns = 12;
    for i in 0..conns {
        let mut msg = BTreeMap::new();
        let max = (10 + i).to_string();
        let min = (20 - i).to_string();
        // A client's average over 2 calls, as a sum and a count; the first connection
        // reports a plain average (weight 1).
        let avg = if i == 0 { "4".to_owned() } else { format!("{}=2", 2 * i) };
        msg.insert(
            head("App.Server", "queue"),
            body(&[
                ("Sum", "3"),
                ("Count", "1"),
                ("Max", &max),
                ("Min", &min),
                ("Avg", &avg),
                ("Distr", "0|1,10|2,100|3"),
            ]),
        );
        // Unparsable values are rejected when they arrive; the key still counts.
        msg.insert(head("App.Other", "bad"), body(&[("Max", "x"), ("Count", "2")]));
        report(addr, &msg);
    }
    // Two reports on one connection (one shard): the second's buckets differ from the
    // first's, so its Distr is not merged; its Sum is.
    let mut conn = RawConn::connect(addr).expect("connects");
    for distr in ["0|1,10|1", "0|1,10|1,100|1"] {
        let msg = BTreeMap::from([(head("App.Server", "latency"), body(&[("Distr", distr), ("Sum", "1")]))]);
        let mut w = ParamWriter::new(1);
        w.write(1, "statmsg", &msg);
        let req = conn.request(PROPERTY_OBJ, "reportPropMsg", 1, w.finish());
        assert_eq!(conn.call(&req).expect("reply").ret, 0);
    }
    clock.set(T_1002 + 3 * 60 + 1); // 10:05:01
    let table = "tars_property_2026031510";
    eventually(|| format!("rows in {table}\n{}", property.service().status()), || db.count(table) >= 9);
    let n = conns;
    // (4 + Σ 2i for i = 1..11) / (1 + 2·11) = 136 / 23
    let avg = format!("{:.6}", 136.0 / 23.0).trim_end_matches('0').to_owned();
    let want = vec![
        s(&["1005", "App.Other", "127.0.0.1", "bad", "Count", "24"]),
        s(&["1005", "App.Server", "127.0.0.1", "latency", "Distr", "0|1,10|1"]),
        s(&["1005", "App.Server", "127.0.0.1", "latency", "Sum", "2"]),
        ["1005".into(), "App.Server".into(), "127.0.0.1".into(), "queue".into(), "Avg".into(), avg],
        s(&["1005", "App.Server", "127.0.0.1", "queue", "Count", &n.to_string()]),
        s(&["1005", "App.Server", "127.0.0.1", "queue", "Distr", "0|12,10|24,100|36"]),
        s(&["1005", "App.Server", "127.0.0.1", "queue", "Max", "21"]),
        s(&["1005", "App.Server", "127.0.0.1", "queue", "Min", "9"]),
        s(&["1005", "App.Server", "127.0.0.1", "queue", "Sum", "36"]),
    ];
    assert_eq!(db.rows(table), want);
    let day: Vec<String> = (0..24).map(|h| format!("tars_property_20260315{h:02}")).collect();
    assert!(day.iter().all(|t| db.query_ok(t)), "all 24 tables of the day");
    let marker =
        db.query("SELECT lasttime FROM t_ecstatus WHERE appname = 'tars_property_127.0.0.1' AND action = 0", vec![]);
    assert_eq!(marker.first().and_then(|r| r.get::<String>(0).ok()).as_deref(), Some("20260315 1005"));

    let status = property.service().status();
    assert!(status.contains("rejected values: 12\n"), "{status}");
    assert!(status.contains("unmerged values: 1\n"), "{status}");
    let metrics_addr = property.service().metrics_addr().expect("the metrics endpoint is configured");
    let (code, text) = http_get(metrics_addr, "/metrics");
    assert_eq!(code, 200, "{text}");
    assert_eq!(metric(&text, "tars_property_ingested_entries_total"), 2 * n as u64 + 2);
    assert_eq!(metric(&text, "tars_property_rejected_values_total"), 12);
    assert_eq!(metric(&text, "tars_property_unmerged_values_total"), 1);
    assert_eq!(metric(&text, "tars_property_written_rows_total{db=\"db1\"}"), 9);
    assert_eq!(metric(&text, "tars_property_dropped_batches_total{db=\"db1\"}"), 0);
    assert!(text.contains("# TYPE tars_property_pending_batches gauge"), "{text}");
    assert_eq!(http_get(metrics_addr, "/nothing").0, 404);
    property.server().shutdown();
    property.wait().expect("stops");
}

/// 10:55–11:00 is labelled `1060` in hour 10's table; 11:00–11:05 `1105` in hour 11's.
fn the_hour_boundary_is_labelled_as_upstream(db: TestDb, io: IoMode) {
    let spool = TempDir::new("property-spool").expect("temp dir");
    let clock = Clock::manual(T_1057, 0);
    let property = start(&db, io, &clock, &spool);
    let addr = property.server().addr("tars.tarsproperty.PropertyObjAdapter").expect("bound");
    let one = |name: &str| BTreeMap::from([(head("A.B", name), body(&[("Count", "5")]))]);
    report(addr, &one("before"));
    clock.set(T_1057 + 3 * 60 + 2); // 11:00:02
    report(addr, &one("after"));
    clock.set(T_1057 + 8 * 60 + 2); // 11:05:02
    let (ten, eleven) = ("tars_property_2026031510", "tars_property_2026031511");
    eventually(
        || format!("both windows' rows\n{}", property.service().status()),
        || db.count(ten) > 0 && db.count(eleven) > 0,
    );
    assert_eq!(db.rows(ten), vec![s(&["1060", "A.B", "127.0.0.1", "before", "Count", "5"])]);
    assert_eq!(db.rows(eleven), vec![s(&["1105", "A.B", "127.0.0.1", "after", "Count", "5"])]);
    property.server().shutdown();
    property.wait().expect("stops");
}

/// The aggregation holds at most `/tars/aggregate<maxMB>` bytes, all shards together: new keys
/// beyond it are dropped and counted, known keys still merge, and a flushed window gives its
/// bytes back, so the next window takes new keys again.
#[test]
fn the_memory_budget_drops_new_keys_and_counts_them() {
    for io in [IoMode::Uring, IoMode::EpollEt, IoMode::EpollLt] {
        the_memory_budget_on(io);
    }
}

fn the_memory_budget_on(io: IoMode) {
    let db = mysql(&format!("budget_{}", io.as_str().replace('-', "_")));
    let spool = TempDir::new("property-spool").expect("temp dir");
    let clock = Clock::manual(T_1002, 0);
    let extra = "<aggregate>\nmaxMB=1\n</aggregate>\n";
    let property = start_with(&db, io, &clock, &spool, extra, 2);
    let addr = property.server().addr("tars.tarsproperty.PropertyObjAdapter").expect("bound");
    let metrics_addr = property.service().metrics_addr().expect("metrics");
    let gauge = |name: &str| {
        let (_, text) = http_get(metrics_addr, "/metrics");
        metric(&text, name)
    };
    assert_eq!(gauge("tars_property_aggregate_budget_bytes"), 1 << 20);
    let names: Vec<String> = (0..8000).map(|i| format!("key{i:05}")).collect();
    let keys = |names: &[String]| names.iter().map(|n| (head("A.B", n), body(&[("Count", "1")]))).collect();
    for chunk in names.chunks(1000) {
        report(addr, &keys(chunk));
    }
    let ingested = gauge("tars_property_ingested_entries_total");
    let dropped = gauge("tars_property_dropped_entries_total");
    assert_eq!(ingested + dropped, 8000);
    assert!(dropped > 0 && ingested > 1000, "ingested {ingested}, dropped {dropped}");
    let held = gauge("tars_property_aggregate_bytes");
    assert!(held <= 1 << 20 && held > (1 << 20) / 2, "held {held}");
    // One budget for both shards: an entry costs at least its slot counted 2.5 times (over
    // 400 bytes here), so two budgets' worth of keys cannot have been taken.
    assert!(ingested * 400 <= 1 << 20, "ingested {ingested}");
    clock.set(T_1002 + 3 * 60 + 1);
    let table = "tars_property_2026031510";
    eventually(|| property.service().status(), || db.count(table) == ingested as usize);
    let first = db.rows(table).into_iter().find(|r| r[3] == "key00000").expect("the first request's keys were kept");
    assert_eq!(first[5], "1");
    eventually(|| property.service().status(), || gauge("tars_property_aggregate_bytes") == 0);
    report(addr, &keys(&names[7999..]));
    assert_eq!(gauge("tars_property_dropped_entries_total"), dropped, "a new window has room again");
    assert!(property.service().status().contains("aggregate bytes: "), "{}", property.service().status());
    property.server().shutdown();
    property.wait().expect("stops");
}

#[test]
fn a_config_without_a_database_is_an_error() {
    let config = Config::parse(
        "<tars>\n<application>\n<server>\napp=tars\nserver=tarsproperty\n\
         <tars.tarsproperty.PropertyObjAdapter>\nendpoint=tcp -h 127.0.0.1 -p 0\nservant=tars.tarsproperty.PropertyObj\n\
         </tars.tarsproperty.PropertyObjAdapter>\n</server>\n</application>\n</tars>\n",
    )
    .expect("parses");
    let err = service::start(&config, StartOptions::default()).expect_err("no /tars/propertydb");
    assert!(err.to_string().contains("/tars/propertydb"), "{err}");
}

on_every_path!(one_window_merges_every_policy, the_hour_boundary_is_labelled_as_upstream);
