//! The official `@tars/monitor` npm client (pinned in `interop/package.json`) reports call
//! statistics to our tarsstat and properties to our tarsproperty, oneway as in production;
//! the rows in the hourly tables of a real MariaDB are exactly what its reports mean. On every
//! IO driver.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::json;
use tars_core_net::app::Application;
use tars_core_net::rt::IoMode;
use tars_monitor::clock::Clock;
use tars_monitor::targets::Target;
use tars_proto::config::Config;
use tars_proto::rpc::CallError;
use tars_sql::schema::monitor::{property_schema, stat_schema};
use tars_sql::{Row, StoreUrl};
use tars_testkit::db::TestDb;
use tars_testkit::process::TempDir;
use tars_testkit::servants::InteropImpl;
use tars_testkit::{TarsTest, INTEROP_ADAPTER, INTEROP_OBJ};

/// 2026-03-15 10:02:00 UTC.
const T_1002: i64 = 1_773_568_920;

fn config(server: &str, servant: &str, spool: &TempDir) -> Config {
    let text = format!(
        "<tars>\n<application>\n<server>\napp=tars\nserver={server}\nlocalip=127.0.0.1\ndatapath={}\n\
         <{servant}Adapter>\nendpoint=tcp -h 127.0.0.1 -p 0 -t 60000\nservant={servant}\n</{servant}Adapter>\n\
         </server>\n</application>\n</tars>\n",
        spool.0.display()
    );
    Config::parse(&text).expect("config parses")
}

fn target(url: &str, prefix: &str) -> Target {
    Target { name: "db1".into(), url: StoreUrl::parse(url).expect("url"), prefix: prefix.into(), weight: 1 }
}

fn cells(row: &Row, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| match row.get::<Option<String>>(i) {
            Ok(v) => v.unwrap_or_default(),
            Err(_) => row.get::<i64>(i).map(|v| v.to_string()).expect("text or integer"),
        })
        .collect()
}

fn eventually(what: impl Fn() -> String, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("not within 20 s: {}", what());
}

fn node_client_reports_land_as_exact_rows(io: IoMode) {
    let tag = format!("{io:?}").to_lowercase();
    let stat_db = TestDb::mysql_migrated("node_stat", &tag, stat_schema());
    let prop_db = TestDb::mysql_migrated("node_prop", &tag, property_schema());
    let clock = Clock::manual(T_1002, 0);
    let (stat_spool, prop_spool) = (TempDir::new("node-stat").expect("dir"), TempDir::new("node-prop").expect("dir"));
    let options = |t: Target| tars_stat::service::StartOptions {
        io: Some(io),
        shards: Some(2),
        targets: Some(vec![t]),
        clock: Some(clock.clone()),
    };
    let stat_obj = tars_stat::service::STAT_OBJ;
    let prop_obj = tars_property::service::PROPERTY_OBJ;
    let stat = tars_stat::service::start(
        &config("tarsstat", stat_obj, &stat_spool),
        options(target(&stat_db.url, "tars_stat_")),
    )
    .expect("tarsstat starts");
    let property = tars_property::service::start(
        &config("tarsproperty", prop_obj, &prop_spool),
        options(target(&prop_db.url, "tars_property_")),
    )
    .expect("tarsproperty starts");
    let stat_addr = stat.server().addr(&format!("{stat_obj}Adapter")).expect("bound");
    let prop_addr = property.server().addr(&format!("{prop_obj}Adapter")).expect("bound");

    let client_call = json!({
        "masterName": "NodeApp.Client@1.0.1", "slaveName": "App.Server", "interfaceName": "query",
        "masterIp": "10.1.1.1", "slaveIp": "10.2.2.2", "slavePort": 8080, "returnValue": 0, "bFromClient": true,
    });
    let server_call = json!({
        "masterName": "App.Caller", "slaveName": "NodeApp.Server", "interfaceName": "serve",
        "masterIp": "10.3.3.3", "slaveIp": "10.1.1.1", "slavePort": 9090, "returnValue": -1, "bFromClient": false,
    });
    let plan = json!({
        "stat": format!("{stat_obj}@tcp -h 127.0.0.1 -p {} -t 60000", stat_addr.port()),
        "property": format!("{prop_obj}@tcp -h 127.0.0.1 -p {} -t 60000", prop_addr.port()),
        "moduleName": "NodeApp.Server",
        "localIp": "10.1.1.1",
        "calls": [
            {"headers": client_call, "type": "success", "time": 7, "times": 4},
            {"headers": client_call, "type": "success", "time": 260},
            {"headers": client_call, "type": "timeout", "time": 3000, "times": 2},
            {"headers": client_call, "type": "error", "time": 1},
            {"headers": server_call, "type": "success", "time": 40, "times": 3},
        ],
        "properties": [
            {"name": "queue", "policies": ["Sum", "Count", "Max", "Min", "Avg", {"Distr": [10, 100, 1000]}],
             "values": [3, 15, 200, 7]},
            {"name": "errors", "policies": ["Count"], "values": [1, 1, 1]},
            // A ratio: upstream would store 1, 1 and 0 (it parses with strtoll).
            {"name": "ratio", "policies": ["Sum", "Max", "Min"], "values": [1.25, 0.5]},
        ],
    });
    let out = tars_testkit::node::run_script("monitor_client.js", &[&plan.to_string()], &["@tars/monitor"]);
    assert_eq!(out.trim(), "SENT 11 9", "what the Node client says it reported");

    // The reports are oneway: wait until both services have merged them, then end the window.
    let entries = |status: String| {
        status.lines().find_map(|l| l.strip_prefix("entries: ").and_then(|v| v.parse::<u64>().ok())).unwrap_or(0)
    };
    eventually(|| stat.service().status(), || entries(stat.service().status()) == 2);
    eventually(|| property.service().status(), || entries(property.service().status()) == 3);
    clock.set(T_1002 + 3 * 60 + 1); // 10:05:01

    let stat_table = "tars_stat_2026031510";
    eventually(|| format!("stat rows\n{}", stat.service().status()), || stat_db.count(stat_table) == 2);
    let rows = stat_db.query(
        &format!(
            "SELECT f_tflag, master_name, tars_version, slave_name, interface_name, master_ip, slave_ip, slave_port, \
             return_value, succ_count, timeout_count, exce_count, total_time, ave_time, maxrsp_time, minrsp_time, \
             interv_count FROM {stat_table} ORDER BY interface_name"
        ),
        vec![],
    );
    let got: Vec<Vec<String>> = rows.iter().map(|r| cells(r, 17)).collect();
    let row = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<String>>();
    assert_eq!(
        got,
        vec![
            // A client report: the master IP is the reporter's connection; the version is
            // split off the master name. The client starts min at 0 (its own quirk), so 0.
            row(&[
                "1005",
                "NodeApp.Client",
                "1.0.1",
                "App.Server",
                "query",
                "127.0.0.1",
                "10.2.2.2",
                "8080",
                "0",
                "5",
                "2",
                "1",
                "288",
                "57",
                "260",
                "0",
                "5|0,10|4,50|0,100|0,200|0,500|1,1000|0,2000|0,3000|0",
            ]),
            // A server report: the slave IP is the reporter's connection.
            row(&[
                "1005",
                "App.Caller",
                "",
                "NodeApp.Server",
                "serve",
                "10.3.3.3",
                "127.0.0.1",
                "9090",
                "-1",
                "3",
                "0",
                "0",
                "120",
                "40",
                "40",
                "0",
                "5|0,10|0,50|3,100|0,200|0,500|0,1000|0,2000|0,3000|0",
            ]),
        ]
    );

    let prop_table = "tars_property_2026031510";
    eventually(|| format!("property rows\n{}", property.service().status()), || prop_db.count(prop_table) == 10);
    let rows = prop_db.query(
        &format!(
            "SELECT f_tflag, master_name, master_ip, property_name, set_name, policy, value FROM {prop_table} \
             ORDER BY property_name, policy"
        ),
        vec![],
    );
    let got: Vec<Vec<String>> = rows.iter().map(|r| cells(r, 7)).collect();
    let prop =
        |name: &str, policy: &str, value: &str| row(&["1005", "NodeApp.Server", "127.0.0.1", name, "", policy, value]);
    assert_eq!(
        got,
        vec![
            prop("errors", "Count", "3"),
            // The client sends its own average, floored: (3 + 15 + 200 + 7) / 4.
            prop("queue", "Avg", "56"),
            prop("queue", "Count", "4"),
            prop("queue", "Distr", "10|2,100|1,1000|1"),
            prop("queue", "Max", "200"),
            prop("queue", "Min", "3"),
            prop("queue", "Sum", "225"),
            // Fractions as sent.
            prop("ratio", "Max", "1.25"),
            prop("ratio", "Min", "0.5"),
            prop("ratio", "Sum", "1.75"),
        ]
    );
    let marker = |db: &TestDb, app: &str| {
        db.query(&format!("SELECT lasttime FROM t_ecstatus WHERE appname = '{app}' AND action = 0"), vec![])
            .first()
            .and_then(|r| r.get::<String>(0).ok())
    };
    assert_eq!(marker(&stat_db, "tars_stat_127.0.0.1").as_deref(), Some("20260315 1005"));
    assert_eq!(marker(&prop_db, "tars_property_127.0.0.1").as_deref(), Some("20260315 1005"));

    stat.server().shutdown();
    property.server().shutdown();
    stat.wait().expect("tarsstat stops");
    property.wait().expect("tarsproperty stops");
}

/// The calls each client makes, by kind.
const FAST: usize = 200;
const SLOW: usize = 20;
/// A slowEcho's sleep: whatever the machine's noise, a call lands in the 50 ms bucket (the
/// first bound above 10..50 ms) under both SDKs' rules.
const SLOW_MS: i32 = 30;
const TIMEOUTS: usize = 10;
const FAILS: usize = 10;
const FAIL_CODE: i32 = -50;
const CLIENT_MODULE: &str = "TarsTest.StatClient";

/// A client row in the hourly table, summed over the return values of one interface.
#[derive(Debug, Default, PartialEq)]
struct ClientRows {
    master_name: String,
    slave: (String, String, String),
    master_ip: String,
    /// (succ, timeout, exce)
    counts: (i64, i64, i64),
    total_time: i64,
    max: i64,
    /// Successes (return value 0) per bucket.
    ok_buckets: String,
    /// Every row's buckets, by return value.
    buckets: BTreeMap<String, String>,
}

/// Our SDK's client (`Application` with `<client> stat= modulename=`) and the official Node
/// client (`@tars/rpc`, whose AdapterProxy reports through `@tars/monitor`) make the same calls
/// to one server built with our SDK; both report to our tarsstat, and the rows of the hourly
/// table are compared interface by interface. Where the two SDKs themselves disagree, our rows
/// follow TarsCpp (`StatReport.cpp`), and the test says so: our masterName carries
/// `@<tars version>` and each reply code gets its own row; a failed call counts as 0 ms, so it
/// lands in the 5 ms bucket (the Node package leaves failed calls out of the histogram); the
/// minimum ignores zeros (the Node package's never rises above 0).
fn sdk_client_rows_match_the_node_sdk(io: IoMode) {
    let tag = format!("{io:?}").to_lowercase();
    let stat_db = TestDb::mysql_migrated("sdk_stat", &tag, stat_schema());
    let clock = Clock::manual(T_1002, 0);
    let spool = TempDir::new("sdk-stat").expect("dir");
    let stat_obj = tars_stat::service::STAT_OBJ;
    let stat = tars_stat::service::start(
        &config("tarsstat", stat_obj, &spool),
        tars_stat::service::StartOptions {
            io: Some(io),
            shards: Some(2),
            targets: Some(vec![target(&stat_db.url, "tars_stat_")]),
            clock: Some(clock.clone()),
        },
    )
    .expect("tarsstat starts");
    let stat_at = format!(
        "{stat_obj}@tcp -h 127.0.0.1 -p {} -t 60000",
        stat.server().addr(&format!("{stat_obj}Adapter")).expect("bound").port()
    );

    // The server, and our client, in one application reporting both sides.
    let text = format!(
        "<tars>\n<application>\n<client>\nstat={stat_at}\nmodulename={CLIENT_MODULE}\nreport-interval=10000\n</client>\n\
         <server>\napp=TarsTest\nserver=InteropServer\n\
         <{INTEROP_ADAPTER}>\nendpoint=tcp -h 127.0.0.1 -p 0 -t 60000\nservant={INTEROP_OBJ}\n</{INTEROP_ADAPTER}>\n\
         </server>\n</application>\n</tars>\n"
    );
    let running = Application::new(Config::parse(&text).expect("config"))
        .expect("application")
        .io(io)
        .shards(2)
        .servant(INTEROP_OBJ, |_| TarsTest::InteropServant(InteropImpl::default()))
        .start()
        .expect("application starts");
    let port = running.server().addr(INTEROP_ADAPTER).expect("bound").port();
    let object = format!("{INTEROP_OBJ}@tcp -h 127.0.0.1 -p {port} -t 60000");

    let client = running.client().blocking(io).expect("client");
    let target_obj = object.clone();
    let ours = client.run(move |comm| async move {
        let proxy = comm.proxy(&target_obj).expect("proxy");
        let interop = TarsTest::InteropProxy::new(proxy.with_timeout(Duration::from_secs(3)), INTEROP_OBJ);
        let impatient = TarsTest::InteropProxy::new(proxy.with_timeout(Duration::from_millis(100)), INTEROP_OBJ);
        let (mut ok, mut timeouts, mut failed) = (0, 0, 0);
        for i in 0..FAST {
            let s = format!("call {i}");
            ok += usize::from(interop.echo_string(&s).await.expect("echoString") == s);
        }
        let mut echoed = 0;
        for i in 0..SLOW {
            let v = i32::try_from(i).expect("small");
            ok += usize::from(interop.slow_echo(v, SLOW_MS, &mut echoed).await.expect("slowEcho") == v);
        }
        for i in 0..TIMEOUTS {
            match impatient.slow_echo(i32::try_from(i).expect("small"), 400, &mut echoed).await {
                Err(CallError::Timeout) => timeouts += 1,
                other => panic!("slowEcho 400 ms with a 100 ms deadline: {other:?}"),
            }
        }
        for _ in 0..FAILS {
            failed += usize::from(interop.fail(FAIL_CODE).await.is_err());
        }
        (ok, timeouts, failed)
    });
    assert_eq!(ours, (FAST + SLOW, TIMEOUTS, FAILS), "what our client saw");
    drop(client);

    let dir = TempDir::new("sdk-stat-node").expect("dir");
    let node_config = dir.0.join("client.conf");
    std::fs::write(
        &node_config,
        format!("<tars>\n<application>\n<client>\nstat={stat_at}\nmodulename={CLIENT_MODULE}\n</client>\n</application>\n</tars>\n"),
    )
    .expect("node client config");
    let plan = json!({
        "fast": FAST, "slow": SLOW, "slowMs": SLOW_MS, "timeouts": TIMEOUTS, "timeoutMs": 100, "sleepMs": 400,
        "fails": FAILS, "failCode": FAIL_CODE,
    });
    let out = tars_testkit::node::run_script(
        "stat_client.js",
        &[&node_config.display().to_string(), &object, &plan.to_string()],
        &["@tars/monitor"],
    );
    // @tars/rpc prints a line of its own to stdout for each failed call; the script's is last.
    let done = out.lines().last().unwrap_or_default();
    assert_eq!(done, format!("DONE {} {TIMEOUTS} {FAILS}", FAST + SLOW), "what the Node client saw:\n{out}");

    // A graceful stop sends what our client and server have not reported yet.
    running.shutdown();
    running.wait().expect("application stops");
    // Both senders are done; wait until tarsstat has merged everything (at least one entry per
    // row: 4 of our client's, 3 of the Node client's, 3 of the server's), then end the window.
    let entries = || {
        stat.service()
            .status()
            .lines()
            .find_map(|l| l.strip_prefix("entries: ").and_then(|v| v.parse::<u64>().ok()))
            .unwrap_or(0)
    };
    eventually(|| stat.service().status(), || entries() >= 10);
    let mut seen = entries();
    loop {
        std::thread::sleep(Duration::from_millis(500));
        if entries() == seen {
            break;
        }
        seen = entries();
    }
    clock.set(T_1002 + 3 * 60 + 1);
    let table = "tars_stat_2026031510";
    eventually(|| format!("stat rows\n{}", stat.service().status()), || stat_db.count(table) == 10);
    let rows = stat_db.query(
        &format!(
            "SELECT master_name, tars_version, slave_name, slave_ip, slave_port, interface_name, master_ip, \
             return_value, succ_count, timeout_count, exce_count, total_time, maxrsp_time, minrsp_time, interv_count \
             FROM {table} ORDER BY master_name, tars_version, interface_name, return_value"
        ),
        vec![],
    );
    let rows: Vec<Vec<String>> = rows.iter().map(|r| cells(r, 15)).collect();
    let n = |s: &str| s.parse::<i64>().expect("a number");

    // Client rows by (version present, interface).
    let mut clients: BTreeMap<(bool, String), ClientRows> = BTreeMap::new();
    for r in rows.iter().filter(|r| r[0] == CLIENT_MODULE) {
        let c = clients.entry((!r[1].is_empty(), r[5].clone())).or_default();
        c.master_name.clone_from(&r[0]);
        c.slave = (r[2].clone(), r[3].clone(), r[4].clone());
        c.master_ip.clone_from(&r[6]);
        c.counts.0 += n(&r[8]);
        c.counts.1 += n(&r[9]);
        c.counts.2 += n(&r[10]);
        c.total_time += n(&r[11]);
        c.max = c.max.max(n(&r[12]));
        if r[7] == "0" && n(&r[8]) > 0 {
            c.ok_buckets.clone_from(&r[14]);
        }
        c.buckets.insert(r[7].clone(), r[14].clone());
    }
    let ours_version = rows.iter().find(|r| r[0] == CLIENT_MODULE && !r[1].is_empty()).map(|r| r[1].clone());
    assert!(ours_version.is_some(), "our client's rows carry the tars version: {rows:#?}");
    assert_eq!(clients.len(), 6, "3 interfaces from each client: {rows:#?}");

    let expected_counts = [
        ("echoString", (FAST as i64, 0, 0)),
        ("fail", (0, 0, FAILS as i64)),
        ("slowEcho", (SLOW as i64, TIMEOUTS as i64, 0)),
    ];
    let slave = ("TarsTest.InteropServer".to_owned(), "127.0.0.1".to_owned(), port.to_string());
    for (func, counts) in expected_counts {
        let (our, node) = (&clients[&(true, func.to_owned())], &clients[&(false, func.to_owned())]);
        assert_eq!(our.counts, node.counts, "{func}: the same successes, timeouts, exceptions");
        assert_eq!(our.counts, counts, "{func}: what the calls were");
        assert_eq!((&our.slave, &node.slave), (&slave, &slave), "{func}: the callee");
        assert_eq!((our.master_ip.as_str(), node.master_ip.as_str()), ("127.0.0.1", "127.0.0.1"), "{func}");
    }
    // slowEcho: every success in the 50 ms bucket under both rules, with times of 30..50 ms.
    let slow_ok = format!("5|0,10|0,50|{SLOW},100|0,200|0,500|0,1000|0,2000|0,3000|0");
    let (our, node) = (&clients[&(true, "slowEcho".into())], &clients[&(false, "slowEcho".into())]);
    assert_eq!((our.ok_buckets.as_str(), node.ok_buckets.as_str()), (slow_ok.as_str(), slow_ok.as_str()));
    for c in [our, node] {
        let range = (SLOW as i64 * i64::from(SLOW_MS))..(SLOW as i64 * 50);
        assert!(range.contains(&c.total_time), "slowEcho total time {} in {range:?}", c.total_time);
        assert!((i64::from(SLOW_MS)..50).contains(&c.max), "slowEcho max {}", c.max);
    }
    // Failed calls: TarsCpp's 0 ms in the 5 ms bucket, one row per reply code; the Node
    // package's histogram leaves them out.
    let failed_at_0 = |count: usize| format!("5|{count},10|0,50|0,100|0,200|0,500|0,1000|0,2000|0,3000|0");
    let fail_rets: Vec<&String> = our.buckets.keys().filter(|r| r.as_str() != "0").collect();
    assert_eq!(fail_rets.len(), 1, "one row for the timed-out calls: {:?}", our.buckets);
    assert_eq!(our.buckets[fail_rets[0]], failed_at_0(TIMEOUTS));
    let (our, node) = (&clients[&(true, "fail".into())], &clients[&(false, "fail".into())]);
    assert_eq!(our.buckets.get(&FAIL_CODE.to_string()), Some(&failed_at_0(FAILS)), "{:?}", our.buckets);
    assert_eq!(node.buckets.get("0"), Some(&failed_at_0(0)), "{:?}", node.buckets);
    // echoString: every call in some bucket, under both rules.
    let bucketed = |b: &str| b.split(',').map(|kv| n(kv.split_once('|').expect("bucket").1)).sum::<i64>();
    for on in [true, false] {
        let echo = &clients[&(on, "echoString".into())];
        assert_eq!(bucketed(&echo.ok_buckets), FAST as i64, "echoString buckets {}", echo.ok_buckets);
    }

    // The server's rows: every call both clients made, as answered (the timed-out calls too,
    // since the server finished them), from one caller. As in TarsCpp, the slave is the
    // application's `modulename` (a deployed config sets it to App.Server).
    let server: Vec<(String, String, i64, i64)> = rows
        .iter()
        .filter(|r| r[0] == tars_core_net::app::stat::FROM_SERVER)
        .map(|r| {
            assert_eq!((r[2].as_str(), r[3].as_str(), r[4].as_str()), (CLIENT_MODULE, "127.0.0.1", "0"), "{r:?}");
            (r[5].clone(), r[7].clone(), n(&r[8]), n(&r[10]))
        })
        .collect();
    assert_eq!(
        server,
        vec![
            ("echoString".to_owned(), "0".to_owned(), 2 * FAST as i64, 0),
            ("fail".to_owned(), FAIL_CODE.to_string(), 0, 2 * FAILS as i64),
            ("slowEcho".to_owned(), "0".to_owned(), 2 * (SLOW + TIMEOUTS) as i64, 0),
        ],
        "{rows:#?}"
    );

    stat.server().shutdown();
    stat.wait().expect("tarsstat stops");
}

tars_testkit::on_every_driver! {
    node_client => node_client_reports_land_as_exact_rows;
    sdk_client => sdk_client_rows_match_the_node_sdk;
}
