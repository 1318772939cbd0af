//! The official `@tars/monitor` npm client (pinned in `interop/package.json`) reports call
//! statistics to our tarsstat and properties to our tarsproperty, oneway as in production;
//! the rows in the hourly tables of a real MariaDB are exactly what its reports mean. On every
//! IO driver.

use std::time::{Duration, Instant};

use serde_json::json;
use tars_core_net::rt::IoMode;
use tars_monitor::clock::Clock;
use tars_monitor::targets::Target;
use tars_proto::config::Config;
use tars_sql::schema::monitor::{property_schema, stat_schema};
use tars_sql::{Row, StoreUrl};
use tars_testkit::process::TempDir;

/// 2026-03-15 10:02:00 UTC.
const T_1002: i64 = 1_773_568_920;

#[path = "../../monitor/tests/support/db.rs"]
mod db;

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
    let stat_db = db::mysql("node_stat", &tag, stat_schema());
    let prop_db = db::mysql("node_prop", &tag, property_schema());
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
        ],
    });
    let out = tars_testkit::node::run_script("monitor_client.js", &[&plan.to_string()], &["@tars/monitor"]);
    assert_eq!(out.trim(), "SENT 11 7", "what the Node client says it reported");

    // The reports are oneway: wait until both services have merged them, then end the window.
    let entries = |status: String| {
        status.lines().find_map(|l| l.strip_prefix("entries: ").and_then(|v| v.parse::<u64>().ok())).unwrap_or(0)
    };
    eventually(|| stat.service().status(), || entries(stat.service().status()) == 2);
    eventually(|| property.service().status(), || entries(property.service().status()) == 2);
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
    eventually(|| format!("property rows\n{}", property.service().status()), || prop_db.count(prop_table) == 7);
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
        ]
    );
    let marker = |db: &db::Db, app: &str| {
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

#[test]
fn uring() {
    node_client_reports_land_as_exact_rows(IoMode::Uring);
}

#[test]
fn epoll_et() {
    node_client_reports_land_as_exact_rows(IoMode::EpollEt);
}

#[test]
fn epoll_lt() {
    node_client_reports_land_as_exact_rows(IoMode::EpollLt);
}
