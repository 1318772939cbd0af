//! tarsnotify end to end: `NotifyObj` served on real sockets on every IO driver over a
//! migrated SQLite `db_tars`, and once over MariaDB; called through the generated
//! `NotifyProxy` and by the official Node client (`@tars/notify`).
//!
//! - Every column of the rows, as upstream writes them (tags, levels, sets valid and invalid,
//!   node name or caller IP, `server_id`), and `notifytime` on the database's clock.
//! - `/tars/filter`: server keys without the dot, `default`; the counters say so.
//! - A crash-loop flood writes the burst, then one summary row with the suppressed count;
//!   another server in the same second is not limited.
//! - Retention: the newest N per `server_id` and the age limit delete exactly the rows they
//!   should (asserted row by row), also with two instances running it at once, and on its
//!   own schedule.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tars_core_net::app::{Application, Running};
use tars_core_net::client::config::ClientConfig;
use tars_core_net::client::BlockingClient;
use tars_core_net::rt::IoMode;
use tars_notify::{NotifyService, NOTIFY_OBJ};
use tars_proto::config::Config;
use tars_proto::rpc::CallOptions;
use tars_protocol::tars::{NotifyProxy, ReportInfo, ReportType, NOTIFYLEVEL};
use tars_sql::{Row, Value};
use tars_testkit::db::TestDb;
use tars_testkit::raw::admin_notify;

pub(crate) fn start(db: &TestDb, io: IoMode, sections: &str) -> Running {
    let text = format!(
        "<tars>\n<application>\n<server>\napp=tars\nserver=tarsnotify\nlocal=tcp -h 127.0.0.1 -p 0 -t 10000\n\
         <{NOTIFY_OBJ}Adapter>\nendpoint=tcp -h 127.0.0.1 -p 0 -t 60000\nservant={NOTIFY_OBJ}\n</{NOTIFY_OBJ}Adapter>\n\
         </server>\n</application>\n<writer>\nflushMs=20\n</writer>\n{sections}\n</tars>\n"
    );
    Application::new(Config::parse(&text).unwrap())
        .unwrap()
        .io(io)
        .shards(2)
        .service(NotifyService::new(Some(db.store.clone())))
        .start()
        .unwrap()
}

pub(crate) fn port(running: &Running) -> u16 {
    running.server().addr(&format!("{NOTIFY_OBJ}Adapter")).unwrap().port()
}

pub(crate) fn admin(running: &Running, command: &str) -> String {
    let addr: SocketAddr = running.server().addr("AdminAdapter").unwrap();
    admin_notify(addr, command).unwrap()
}

/// The counter `name` of `tars.notify`.
pub(crate) fn counter(running: &Running, name: &str) -> u64 {
    let text = admin(running, "tars.notify");
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

pub(crate) fn report(app: &str, server: &str, e_type: ReportType, message: &str) -> ReportInfo {
    ReportInfo {
        e_type,
        s_app: app.into(),
        s_server: server.into(),
        s_message: message.into(),
        s_thread_id: "t".into(),
        ..ReportInfo::default()
    }
}

/// Sends every report in order, each awaited; panics on a failed call.
pub(crate) fn send(running: &Running, io: IoMode, reports: Vec<ReportInfo>) {
    let object = format!("{NOTIFY_OBJ}@tcp -h 127.0.0.1 -p {} -t 10000", port(running));
    let client = BlockingClient::start(ClientConfig::default(), io).unwrap();
    client.run(move |comm| async move {
        let p = NotifyProxy::new(comm.proxy(&object).unwrap(), NOTIFY_OBJ)
            .with_options(CallOptions { timeout_ms: 5000, ..CallOptions::default() });
        for r in &reports {
            p.report_notify_info(r).await.unwrap();
        }
    });
}

const COLUMNS: &str = "id, application, server_name, container_name, node_name, set_name, set_area, set_group, \
                       server_id, thread_id, command, result, notifytime";

pub(crate) fn rows(db: &TestDb, filter: &str, params: Vec<Value>) -> Vec<Row> {
    db.query(&format!("SELECT {COLUMNS} FROM t_server_notifys {filter} ORDER BY id"), params)
}

/// Waits until `filter` matches `n` rows (5 s at most) and returns them.
pub(crate) fn wait_rows(db: &TestDb, filter: &str, params: Vec<Value>, n: usize) -> Vec<Row> {
    let t0 = Instant::now();
    loop {
        let r = rows(db, filter, params.clone());
        if r.len() >= n || t0.elapsed() > Duration::from_secs(5) {
            return r;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn text(r: &Row, col: &str) -> Option<String> {
    r.get_by::<Option<String>>(col).unwrap()
}

/// The columns upstream writes, in order: application, server_name, container_name,
/// node_name, set_name, set_area, set_group, server_id, thread_id, command, result.
pub(crate) fn columns(r: &Row) -> Vec<Option<String>> {
    [
        "application",
        "server_name",
        "container_name",
        "node_name",
        "set_name",
        "set_area",
        "set_group",
        "server_id",
        "thread_id",
        "command",
        "result",
    ]
    .iter()
    .map(|c| text(r, c))
    .collect()
}

pub(crate) fn cols(v: [&str; 11]) -> Vec<Option<String>> {
    v.iter().map(|s| Some((*s).to_owned())).collect()
}

/// Rows whose `notifytime` is within a minute of the database's clock.
fn recent(db: &TestDb) -> usize {
    let d = db.store.dialect();
    db.query(
        &format!("SELECT id FROM t_server_notifys WHERE notifytime >= {}", d.seconds_before(d.now())),
        vec![Value::Int(60)],
    )
    .len()
}

fn rows_as_upstream(db: TestDb, io: IoMode) {
    let running = start(&db, io, "");
    let mut alarm = report("App", "Srv", ReportType::REPORT, "[alarm] down [error]");
    alarm.s_node_name = "node-a".into();
    alarm.s_container = "c1".into();
    alarm.s_thread_id = "1234".into();
    let fail = report("App", "Srv", ReportType::REPORT, "restart [fail]");
    let mut warn = report("App", "Srv", ReportType::NOTIFY, "[alarm] text ignored");
    warn.e_level = NOTIFYLEVEL::NOTIFYWARN;
    warn.s_set = "sz.a.1".into();
    let mut error = report("App", "Srv", ReportType::NOTIFY, "bad");
    error.e_level = NOTIFYLEVEL::NOTIFYERROR;
    error.s_set = "sz.*.1".into();
    let plain = report("App", "Srv", ReportType::REPORT, "plain");
    let mut odd = report("App", "Srv", ReportType(7), "unknown type");
    odd.e_level = NOTIFYLEVEL(9);
    odd.s_set = "sz.a".into();
    send(&running, io, vec![alarm, fail, warn, error, plain, odd]);
    let got = wait_rows(&db, "", vec![], 6);
    let got: Vec<_> = got.iter().map(columns).collect();
    let none = |mut v: Vec<Option<String>>| {
        v[4] = None;
        v[5] = None;
        v[6] = None;
        v
    };
    let ip = "127.0.0.1";
    let id = "App.Srv_127.0.0.1";
    assert_eq!(
        got,
        vec![
            cols([
                "App",
                "Srv",
                "c1",
                "node-a",
                "",
                "",
                "",
                "App.Srv_node-a",
                "1234",
                "[alarm]",
                "[alarm] down [error]"
            ]),
            cols(["App", "Srv", "", ip, "", "", "", id, "t", "[error]", "restart [fail]"]),
            cols(["App", "Srv", "", ip, "sz", "a", "1", id, "t", "[warn]", "[alarm] text ignored"]),
            none(cols(["App", "Srv", "", ip, "", "", "", id, "t", "[error]", "bad"])),
            cols(["App", "Srv", "", ip, "", "", "", id, "t", "[normal]", "plain"]),
            none(cols(["App", "Srv", "", ip, "", "", "", id, "t", "[normal]", "unknown type"])),
        ]
    );
    assert_eq!(recent(&db), 6, "notifytime is the database's now");
    assert_eq!(counter(&running, "received"), 6);
    assert_eq!(counter(&running, "written"), 6);
    running.shutdown();
    running.wait().unwrap();
}

fn the_filter_drops_what_it_should(db: TestDb, io: IoMode) {
    let running = start(&db, io, "<filter>\nAppSrv=noise;skip me|[debug]\ndefault=everyone drops\n</filter>");
    let r = |app: &str, server: &str, m: &str| report(app, server, ReportType::REPORT, m);
    send(
        &running,
        io,
        vec![
            r("App", "Srv", "some noise"),
            r("App", "Srv", "please skip me now"),
            r("App", "Srv", "[debug] x"),
            r("App", "Srv", "kept: skip"),
            r("Other", "Srv", "some noise"),
            r("Other", "Srv", "everyone drops this"),
            r("App", "Srv", "everyone drops too"),
            r("App", "Srv", "last"),
        ],
    );
    let got = wait_rows(&db, "", vec![], 3);
    let kept: Vec<_> = got.iter().map(|r| (text(r, "server_id").unwrap(), text(r, "result").unwrap())).collect();
    assert_eq!(
        kept,
        [
            ("App.Srv_127.0.0.1".to_owned(), "kept: skip".to_owned()),
            ("Other.Srv_127.0.0.1".to_owned(), "some noise".to_owned()),
            ("App.Srv_127.0.0.1".to_owned(), "last".to_owned()),
        ]
    );
    assert_eq!(counter(&running, "filtered"), 5);
    assert_eq!(counter(&running, "received"), 8);
    running.shutdown();
    running.wait().unwrap();
}

fn a_crash_loop_is_limited(db: TestDb, io: IoMode) {
    let running = start(&db, io, "<ratelimit>\nburst=5\nperMinute=6\nquietSecs=1\n</ratelimit>");
    let mut reports = Vec::new();
    for i in 0..300 {
        let mut r = report("App", "Loop", ReportType::REPORT, &format!("[alarm] restart {i}"));
        r.s_node_name = "n1".into();
        reports.push(r);
        if i % 60 == 0 {
            let mut calm = report("App", "Calm", ReportType::REPORT, &format!("calm {i}"));
            calm.s_node_name = "n1".into();
            reports.push(calm);
        }
    }
    let t0 = Instant::now();
    send(&running, io, reports);
    let elapsed = t0.elapsed().as_secs_f64();
    // The other server sent 5, its whole burst, in the same second: none is limited.
    let calm = wait_rows(&db, "WHERE server_id = ?", vec!["App.Calm_n1".into()], 5);
    assert_eq!(calm.len(), 5);
    // The flood: its burst, plus what refilled while it lasted (one per 10 s).
    let summary = wait_rows(&db, "WHERE server_id = ? AND thread_id = ''", vec!["App.Loop_n1".into()], 1);
    let written = rows(&db, "WHERE server_id = ? AND thread_id = 't'", vec!["App.Loop_n1".into()]);
    let limit = 5 + (elapsed / 10.0).floor() as usize;
    assert!(written.len() >= 5 && written.len() <= limit, "{} rows written, limit {limit}", written.len());
    assert_eq!(text(&written[0], "result").unwrap(), "[alarm] restart 0");
    let suppressed = 300 - written.len();
    assert_eq!(summary.len(), 1, "one summary row");
    let s = columns(&summary[0]);
    assert_eq!(s[..10], cols(["App", "Loop", "", "n1", "", "", "", "App.Loop_n1", "", "[warn]", ""])[..10]);
    let message = s[10].clone().unwrap();
    assert!(message.contains(&format!("{suppressed} notices")), "{message}");
    assert_eq!(counter(&running, "rate-limited"), suppressed as u64);
    assert_eq!(counter(&running, "summaries"), 1);
    assert_eq!(counter(&running, "written"), (written.len() + 5 + 1) as u64);
    running.shutdown();
    running.wait().unwrap();
}

/// Inserts a fixture row `age_secs` before the database's now (`None`: no server_id).
fn fixture(db: &TestDb, server_id: Option<&str>, age_secs: i64) -> i64 {
    let d = db.store.dialect();
    let sid = server_id.map_or(Value::Null, Value::from);
    db.exec(
        &format!(
            "INSERT INTO t_server_notifys (application, server_name, node_name, server_id, thread_id, command, result, \
             notifytime) VALUES ('A', 'S', 'n', ?, '', '[normal]', ?, {})",
            d.seconds_before(d.now())
        ),
        vec![sid, Value::from(format!("age {age_secs}")), Value::Int(age_secs)],
    );
    let rows = db.query("SELECT MAX(id) AS id FROM t_server_notifys", vec![]);
    rows[0].get_by::<i64>("id").unwrap()
}

const HOUR: i64 = 3600;
const DAY: i64 = 86_400;

/// Fixtures of several servers and ages; with `retainHistory=3` and `maxAgeDays=30`, returns
/// (the ids that must stay, the ids that must go).
fn retention_fixture(db: &TestDb) -> (BTreeSet<i64>, BTreeSet<i64>) {
    let (mut keep, mut gone) = (BTreeSet::new(), BTreeSet::new());
    // Inserted out of time order: the newest three by notifytime stay, not by id.
    for (age, stays) in [(5 * HOUR, false), (HOUR, true), (3 * HOUR, true), (6 * HOUR, false), (2 * HOUR, true)] {
        let id = fixture(db, Some("A.S_n1"), age);
        if stays {
            keep.insert(id)
        } else {
            gone.insert(id)
        };
    }
    let id = fixture(db, Some("A.S_n1"), 4 * HOUR);
    gone.insert(id);
    for age in [DAY, 2 * DAY] {
        keep.insert(fixture(db, Some("B.S_n1"), age));
    }
    // Newest three: 1 h, 10 d, 40 d (the 50-day row goes by count); 40 d then goes for its age.
    for (age, stays) in [(10 * DAY, true), (40 * DAY, false), (50 * DAY, false), (HOUR, true)] {
        let id = fixture(db, Some("C.S_n2"), age);
        if stays {
            keep.insert(id)
        } else {
            gone.insert(id)
        };
    }
    gone.insert(fixture(db, Some("D.S_n3"), 31 * DAY));
    keep.insert(fixture(db, Some("D.S_n3"), 29 * DAY));
    gone.insert(fixture(db, None, 100 * DAY));
    keep.insert(fixture(db, None, HOUR));
    (keep, gone)
}

fn ids(db: &TestDb) -> BTreeSet<i64> {
    db.query("SELECT id FROM t_server_notifys", vec![]).iter().map(|r| r.get_by::<i64>("id").unwrap()).collect()
}

const RETENTION: &str = "retainHistory=3\n<retention>\nmaxAgeDays=30\nbatch=2\n</retention>";

/// Two instances on one database run retention at once: together they delete exactly the
/// rows that should go; a second run deletes nothing.
fn retention_deletes_exactly(db: TestDb, io: IoMode) {
    let (keep, gone) = retention_fixture(&db);
    let a = start(&db, io, RETENTION);
    let b = start(&db, io, RETENTION);
    let addr_a = a.server().addr("AdminAdapter").unwrap();
    let addr_b = b.server().addr("AdminAdapter").unwrap();
    let ta = std::thread::spawn(move || admin_notify(addr_a, "tars.notifyretention").unwrap());
    let tb = std::thread::spawn(move || admin_notify(addr_b, "tars.notifyretention").unwrap());
    let (ra, rb) = (ta.join().unwrap(), tb.join().unwrap());
    assert!(ra.starts_with("retention: deleted"), "{ra}");
    assert!(rb.starts_with("retention: deleted"), "{rb}");
    assert_eq!(ids(&db), keep, "kept exactly; gone: {gone:?}");
    let deleted = counter(&a, "retention deletes") + counter(&b, "retention deletes");
    assert_eq!(deleted, gone.len() as u64, "{ra} / {rb}");
    assert_eq!(
        admin(&a, "tars.notifyretention"),
        "retention: deleted 0 rows beyond the newest of 0 servers, 0 rows for their age"
    );
    assert_eq!(ids(&db), keep);
    for r in [a, b] {
        r.shutdown();
        r.wait().unwrap();
    }
}

/// On its own schedule (every second here), keeping the newest 2 of each server.
fn retention_runs_on_its_schedule(db: TestDb, io: IoMode) {
    let mut keep = BTreeSet::new();
    for age in [HOUR, 2 * HOUR, 3 * HOUR, 4 * HOUR] {
        let id = fixture(&db, Some("E.S_n1"), age);
        if age <= 2 * HOUR {
            keep.insert(id);
        }
    }
    let running = start(&db, io, "retainHistory=2\n<retention>\nintervalSecs=1\n</retention>");
    let t0 = Instant::now();
    while ids(&db) != keep {
        assert!(t0.elapsed() < Duration::from_secs(5), "not run within 5 s: {:?}", ids(&db));
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(counter(&running, "retention runs") >= 1);
    assert_eq!(counter(&running, "retention deletes"), 2);
    running.shutdown();
    running.wait().unwrap();
}

macro_rules! on_sqlite {
    ($($name:ident => $body:expr;)*) => {
        $(mod $name {
            use super::*;
            fn sqlite(io: IoMode) { $body(TestDb::sqlite(stringify!($name)), io) }
            tars_testkit::on_every_driver! { on_sqlite => sqlite; }
        })*
    };
}

on_sqlite! {
    rows => rows_as_upstream;
    filter => the_filter_drops_what_it_should;
    flood => a_crash_loop_is_limited;
    retention => retention_deletes_exactly;
    scheduled => retention_runs_on_its_schedule;
}

/// The same over MariaDB, once (one driver): the dialect's INSERT, time arithmetic, LIMIT and
/// OFFSET.
mod on_mysql {
    use super::*;

    #[test]
    fn rows() {
        rows_as_upstream(TestDb::mysql("tarsnotify", "rows"), IoMode::EpollEt);
    }

    #[test]
    fn flood() {
        a_crash_loop_is_limited(TestDb::mysql("tarsnotify", "flood"), IoMode::EpollEt);
    }

    #[test]
    fn retention() {
        retention_deletes_exactly(TestDb::mysql("tarsnotify", "retention"), IoMode::EpollEt);
    }
}

/// The official Node client (`@tars/notify`, as a Node.js TARS server uses it): report() of
/// each tag, notify() at each level, a report from a set; the rows column by column.
fn the_official_node_client(io: IoMode) {
    let db = TestDb::sqlite("node");
    let running = start(&db, io, "");
    let dir = tars_testkit::process::TempDir::new("node-notify").unwrap();
    let conf = |name: &str, app_keys: &str| {
        let path = dir.0.join(name);
        std::fs::write(
            &path,
            format!(
                "<tars>\n<application>\n{app_keys}<client>\nsync-invoke-timeout=5000\n</client>\n<server>\n\
                 app=NodeApp\nserver=NodeServer\nnotify={NOTIFY_OBJ}@tcp -h 127.0.0.1 -p {} -t 10000\n</server>\n\
                 </application>\n</tars>\n",
                port(&running)
            ),
        )
        .unwrap();
        path
    };
    let plain = conf("plain.conf", "");
    let set = conf("set.conf", "enableset=y\nsetdivision=sz.a.1\n");
    let out = tars_testkit::node::run_script(
        "notify_client.js",
        &[plain.to_str().unwrap(), set.to_str().unwrap()],
        &["@tars/notify", "@tars/utils"],
    );
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["sent"], 8, "{v}");
    assert_eq!(v["ok"], 8, "every call answered: {v}");
    let pid = v["pid"].to_string();
    let got = wait_rows(&db, "", vec![], 8);
    let got: Vec<_> = got.iter().map(columns).collect();
    let row = |set: [&str; 3], thread: &str, command: &str, result: &str| {
        let id = "NodeApp.NodeServer_127.0.0.1";
        cols(["NodeApp", "NodeServer", "", "127.0.0.1", set[0], set[1], set[2], id, thread, command, result])
    };
    let none = ["", "", ""];
    assert_eq!(
        got,
        vec![
            row(none, &pid, "[alarm]", "[alarm] server down"),
            row(none, "thread-7", "[error]", "restart [fail] exit 134"),
            row(none, &pid, "[normal]", "plain report"),
            row(none, &pid, "[error]", "[warn] then [error] both"),
            row(none, &pid, "[warn]", "disk almost full"),
            row(none, "42", "[error]", "[alarm] in a notify"),
            row(none, &pid, "[normal]", "all good"),
            row(["sz", "a", "1"], &pid, "[warn]", "in the set [warn]"),
        ]
    );
    assert_eq!(recent(&db), 8);
    running.shutdown();
    running.wait().unwrap();
}

tars_testkit::on_every_driver! { node_client => the_official_node_client; }
