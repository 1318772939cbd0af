//! The application duties of a server and client built with our SDK, configured like a
//! deployed TarsCpp server (`node`, `stat`, `property`, `log`, `config`, `notify`,
//! `locator`, `modulename`, `report-interval`), against `interop/app_peer.js`: every
//! framework servant, written with the official `@tars/rpc`, recording what arrives. On
//! every IO driver. Then the same server with the peer gone: calls are served as before and
//! nothing waits on the dead services.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use tars_core_net::app::log::{AppLog, LogSettings};
use tars_core_net::app::property::Policy;
use tars_core_net::app::{Application, NotifyLevel, Running};
use tars_core_net::rt::IoMode;
use tars_core_net::server::adapter::ServerConfig;
use tars_proto::config::Config;
use tars_proto::rpc::CallError;
use tars_testkit::node::AppPeer;
use tars_testkit::process::TempDir;
use tars_testkit::raw::admin_notify;
use tars_testkit::servants::InteropImpl;
use tars_testkit::{wait_for, TarsTest, INTEROP_ADAPTER, INTEROP_OBJ};

const NODE: &str = "tars.tarsnode.ServerObj";
const STAT: &str = "tars.tarsstat.StatObj";
const PROPERTY: &str = "tars.tarsproperty.PropertyObj";
const LOG: &str = "tars.tarslog.LogObj";
const NOTIFY: &str = "tars.tarsnotify.NotifyObj";
const CONFIG: &str = "tars.tarsconfig.ConfigObj";
const QUERY: &str = "tars.tarsregistry.QueryObj";
const CONF_FILE: &str = "Duty.conf";
const CONF_TEXT: &str = "<duty>\ngreeting=hello\n</duty>\n";
const MODULE: &str = "TarsTest.InteropServer";

/// The calls the test makes, by kind.
const OK_FAST: usize = 900;
const OK_SLOW: usize = 50;
const TIMED_OUT: usize = 30;
const FAILED: usize = 20;

/// A deployed TarsCpp server's config: the node direct, every other framework object
/// through the locator (the peer's QueryObj).
fn config_text(peer_query: u16, peer_node: u16, dir: &Path) -> String {
    format!(
        "<tars>\n<application>\nenableset=n\n\
         <client>\nlocator={QUERY}@tcp -h 127.0.0.1 -p {peer_query}\nsync-invoke-timeout=3000\n\
         stat={STAT}\nproperty={PROPERTY}\nmodulename={MODULE}\nreport-interval=10000\n</client>\n\
         <server>\napp=TarsTest\nserver=InteropServer\nlocal=tcp -h 127.0.0.1 -p 0 -t 10000\n\
         basepath={base}\nlogpath={logs}\nlogLevel=DEBUG\n\
         node={NODE}@tcp -h 127.0.0.1 -p {peer_node} -t 60000\nlog={LOG}\nconfig={CONFIG}\nnotify={NOTIFY}\n\
         <{INTEROP_ADAPTER}>\nendpoint=tcp -h 127.0.0.1 -p 0 -t 60000\nservant={INTEROP_OBJ}\n</{INTEROP_ADAPTER}>\n\
         </server>\n</application>\n</tars>\n",
        base = dir.join("base").display(),
        logs = dir.join("log").display(),
    )
}

fn start(text: &str, io: IoMode) -> Running {
    let config = Config::parse(text).unwrap();
    let server = ServerConfig::from_config(&config).unwrap();
    let log = AppLog::start(LogSettings::from_config(&config, &server)).unwrap();
    Application::new(config)
        .unwrap()
        .io(io)
        .shards(2)
        .log(log)
        .add_config(CONF_FILE)
        .servant(INTEROP_OBJ, |_| TarsTest::InteropServant(InteropImpl::default()))
        .start()
        .unwrap()
}

/// Makes the 1000 calls; returns (successes, timeouts, failures) as the client saw them.
fn make_calls(running: &Running, io: IoMode) -> (usize, usize, usize) {
    let addr = running.server().addr(INTEROP_ADAPTER).unwrap();
    let object = format!("{INTEROP_OBJ}@tcp -h 127.0.0.1 -p {}", addr.port());
    let client = running.client().blocking(io).unwrap();
    client.run(move |comm| async move {
        let proxy = comm.proxy(&object).unwrap();
        let interop = TarsTest::InteropProxy::new(proxy.clone(), INTEROP_OBJ);
        let impatient = TarsTest::InteropProxy::new(proxy.with_timeout(Duration::from_millis(100)), INTEROP_OBJ);
        let (mut ok, mut timeouts, mut failed) = (0, 0, 0);
        for i in 0..OK_FAST {
            let s = format!("call {i}");
            if interop.echo_string(&s).await.unwrap() == s {
                ok += 1;
            }
        }
        let mut echoed = 0;
        for i in 0..OK_SLOW {
            let v = i32::try_from(i).unwrap();
            if interop.slow_echo(v, 20, &mut echoed).await.unwrap() == v {
                ok += 1;
            }
        }
        for i in 0..TIMED_OUT {
            match impatient.slow_echo(i32::try_from(i).unwrap(), 400, &mut echoed).await {
                Err(CallError::Timeout) => timeouts += 1,
                other => panic!("slowEcho 400 ms with a 100 ms deadline: {other:?}"),
            }
        }
        for _ in 0..FAILED {
            if interop.fail(-50).await.is_err() {
                failed += 1;
            }
        }
        (ok, timeouts, failed)
    })
}

fn now_ms() -> i64 {
    i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis()).unwrap()
}

fn int(v: &Value) -> i64 {
    v.as_i64().or_else(|| v.as_str().and_then(|s| s.parse().ok())).unwrap_or_else(|| panic!("not a number: {v}"))
}

/// Every `(head, body)` row of the recorded `reportMicMsg` calls with `bFromClient == from_client`.
fn mic_rows(calls: &[Value], from_client: bool) -> Vec<(Value, Value)> {
    calls
        .iter()
        .filter(|c| c["obj"] == STAT && c["func"] == "reportMicMsg" && c["args"]["bFromClient"] == from_client)
        .flat_map(|c| c["args"]["msg"].as_array().unwrap().clone())
        .map(|pair| (pair[0].clone(), pair[1].clone()))
        .collect()
}

/// Sums of the rows for one interface and return value: count, timeouts, exceptions,
/// buckets.
#[derive(Debug, Default, PartialEq)]
struct Sum {
    count: i64,
    timeouts: i64,
    exceptions: i64,
    buckets: BTreeMap<i64, i64>,
    max: i64,
}

fn sum(rows: &[(Value, Value)], func: &str, ret: i64) -> Sum {
    let mut s = Sum::default();
    for (head, body) in rows.iter().filter(|(h, _)| h["interfaceName"] == func && int(&h["returnValue"]) == ret) {
        assert_eq!(head["slaveName"], MODULE, "{head}");
        s.count += int(&body["count"]);
        s.timeouts += int(&body["timeoutCount"]);
        s.exceptions += int(&body["execCount"]);
        s.max = s.max.max(int(&body["maxRspTime"]));
        for pair in body["intervalCount"].as_array().unwrap() {
            *s.buckets.entry(int(&pair[0])).or_default() += int(&pair[1]);
        }
    }
    s
}

fn bucket_sum(s: &Sum, bounds: &[i64]) -> i64 {
    bounds.iter().map(|b| s.buckets.get(b).copied().unwrap_or(0)).sum()
}

fn check_stat(calls: &[Value], started_ms: i64) {
    let client = mic_rows(calls, true);
    let server = mic_rows(calls, false);
    for (head, _) in &client {
        assert_eq!(head["masterName"], format!("{MODULE}@{}", env!("CARGO_PKG_VERSION")), "{head}");
        assert_eq!(head["slaveIp"], "127.0.0.1", "{head}");
    }
    for (head, _) in &server {
        assert_eq!((&head["masterName"], &head["masterIp"]), (&json!("stat_from_server"), &json!("127.0.0.1")));
    }
    // Client side: what the client saw.
    let echo = sum(&client, "echoString", 0);
    assert_eq!((echo.count, echo.timeouts, echo.exceptions), (OK_FAST as i64, 0, 0));
    assert_eq!(echo.buckets.values().sum::<i64>(), OK_FAST as i64, "every call in one bucket: {echo:?}");
    assert_eq!(echo.buckets.len(), 9, "all nine buckets are sent: {echo:?}");
    let slow = sum(&client, "slowEcho", 0);
    assert_eq!(slow.count, OK_SLOW as i64, "{slow:?}");
    assert_eq!(bucket_sum(&slow, &[5, 10]), 0, "20 ms calls are not under 10 ms: {slow:?}");
    assert_eq!(bucket_sum(&slow, &[50, 100, 200]), OK_SLOW as i64, "{slow:?}");
    assert!(slow.max >= 20, "{slow:?}");
    let timeouts = sum(&client, "slowEcho", -7);
    assert_eq!((timeouts.count, timeouts.timeouts, timeouts.exceptions), (0, TIMED_OUT as i64, 0), "{timeouts:?}");
    assert_eq!(bucket_sum(&timeouts, &[5]), TIMED_OUT as i64, "a failed call counts as 0 ms");
    let failed = sum(&client, "fail", -50);
    assert_eq!((failed.count, failed.timeouts, failed.exceptions), (0, 0, FAILED as i64), "{failed:?}");
    let total: i64 = client
        .iter()
        .filter(|(h, _)| h["slaveName"] == MODULE)
        .map(|(_, b)| int(&b["count"]) + int(&b["timeoutCount"]) + int(&b["execCount"]))
        .sum();
    assert_eq!(total, 1000, "client rows add up to the calls made");
    // Server side: what the server answered (the 400 ms calls finished, after the client gave up).
    let echo = sum(&server, "echoString", 0);
    assert_eq!((echo.count, echo.timeouts, echo.exceptions), (OK_FAST as i64, 0, 0));
    let slow = sum(&server, "slowEcho", 0);
    assert_eq!(slow.count, (OK_SLOW + TIMED_OUT) as i64, "{slow:?}");
    assert_eq!(bucket_sum(&slow, &[50, 100, 200]), OK_SLOW as i64, "{slow:?}");
    assert_eq!(bucket_sum(&slow, &[500, 1000, 2000, 3000]), TIMED_OUT as i64, "{slow:?}");
    let failed = sum(&server, "fail", -50);
    assert_eq!((failed.count, failed.exceptions), (0, FAILED as i64), "{failed:?}");
    // One periodic report came on time, 10 s (report-interval) after the start.
    let first = calls.iter().find(|c| c["obj"] == STAT && c["func"] == "reportMicMsg").unwrap();
    let at = int(&first["t"]) - started_ms;
    assert!((9_000..13_000).contains(&at), "first reportMicMsg {at} ms after the start");
    assert_eq!(first["oneway"], true);
}

fn check_node(calls: &[Value], started_ms: i64) {
    let node: Vec<&Value> = calls.iter().filter(|c| c["obj"] == NODE).collect();
    let pid = i64::from(std::process::id());
    let first = node.first().expect("the node heard from the server");
    assert_eq!(first["func"], "keepActiving", "keepActiving comes first: {first}");
    let info = &first["args"]["serverInfo"];
    assert_eq!((&info["application"], &info["serverName"]), (&json!("TarsTest"), &json!("InteropServer")));
    assert_eq!(int(&info["pid"]), pid);
    let version = node.iter().find(|c| c["func"] == "reportVersion").expect("reportVersion");
    assert_eq!(version["args"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(version["args"]["app"], "TarsTest");
    for adapter in [INTEROP_ADAPTER, "AdminAdapter"] {
        let times: Vec<i64> = node
            .iter()
            .filter(|c| c["func"] == "keepAlive" && c["args"]["serverInfo"]["adapter"] == adapter)
            .map(|c| int(&c["t"]))
            .collect();
        assert!(times.len() >= 2, "{adapter}: keepAlive at {times:?}");
        assert!(times[0] - started_ms < 3_000, "{adapter}: first keepAlive {} ms after start", times[0] - started_ms);
        let gap = times[1] - times[0];
        assert!((9_000..12_000).contains(&gap), "{adapter}: keepAlive every 10 s, got {gap} ms");
        assert!(int(&first["t"]) <= times[0]);
    }
    assert!(node.iter().all(|c| c["oneway"] == true), "heartbeats are oneway");
}

fn check_property(calls: &[Value]) {
    let rows: Vec<Value> = calls
        .iter()
        .filter(|c| c["obj"] == PROPERTY && c["func"] == "reportPropMsg")
        .flat_map(|c| c["args"]["statmsg"].as_array().unwrap().clone())
        .filter(|pair| pair[0]["propertyName"] == "queue")
        .collect();
    assert_eq!(rows.len(), 1, "one interval had values: {rows:?}");
    assert_eq!(rows[0][0]["moduleName"], MODULE);
    let got: BTreeMap<String, String> = rows[0][1]["vInfo"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["policy"].as_str().unwrap().to_owned(), i["value"].as_str().unwrap().to_owned()))
        .collect();
    let want: BTreeMap<String, String> =
        [("Sum", "80"), ("Count", "4"), ("Max", "35"), ("Min", "5"), ("Avg", "20"), ("Distr", "10|1,20|1,30|2")]
            .into_iter()
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
            .collect();
    assert_eq!(got, want);
}

fn check_log(calls: &[Value], dir: &Path) {
    let batches: Vec<&Value> = calls.iter().filter(|c| c["obj"] == LOG && c["func"] == "loggerbyInfo").collect();
    assert!(!batches.is_empty(), "no loggerbyInfo");
    let info = &batches[0]["args"]["info"];
    assert_eq!((&info["appname"], &info["servername"]), (&json!("TarsTest"), &json!("InteropServer")));
    let sizes: Vec<usize> = batches.iter().map(|b| b["args"]["buffer"].as_array().unwrap().len()).collect();
    assert!(sizes.iter().all(|&n| (1..=200).contains(&n)), "batch sizes {sizes:?}");
    assert!(sizes.iter().any(|&n| n > 1), "lines are batched: {sizes:?}");
    let lines: Vec<String> = batches
        .iter()
        .flat_map(|b| b["args"]["buffer"].as_array().unwrap().iter().map(|l| l.as_str().unwrap().to_owned()))
        .collect();
    let seqs: Vec<i64> = lines
        .iter()
        .filter(|l| l.contains("duty_test"))
        .filter_map(|l| l.split("seq=").nth(1)?.split_whitespace().next()?.parse().ok())
        .collect();
    assert_eq!(seqs, (0..500).collect::<Vec<_>>(), "every line, in order");
    assert!(lines.iter().any(|l| l.contains("tars.loadconfig")), "lines logged on the shards go too");
    let local = std::fs::read_to_string(dir.join("log/TarsTest/InteropServer/TarsTest.InteropServer.log")).unwrap();
    assert!(local.contains("seq=499"), "the local log file has the lines too");
}

fn check_config_and_notify(calls: &[Value], dir: &Path) {
    let loads: Vec<&Value> = calls.iter().filter(|c| c["obj"] == CONFIG && c["func"] == "loadConfig").collect();
    assert_eq!(loads.len(), 2, "at start and by tars.loadconfig (the bad name never left the server): {loads:?}");
    for l in &loads {
        assert_eq!(
            (&l["args"]["app"], &l["args"]["server"], &l["args"]["filename"]),
            (&json!("TarsTest"), &json!("InteropServer"), &json!(CONF_FILE))
        );
    }
    assert_eq!(std::fs::read_to_string(dir.join("base").join(CONF_FILE)).unwrap(), CONF_TEXT);
    let notices: Vec<(i64, i64, String)> = calls
        .iter()
        .filter(|c| c["obj"] == NOTIFY && c["func"] == "reportNotifyInfo")
        .map(|c| {
            let i = &c["args"]["info"];
            assert_eq!((&i["sApp"], &i["sServer"]), (&json!("TarsTest"), &json!("InteropServer")));
            (int(&i["eType"]), int(&i["eLevel"]), i["sMessage"].as_str().unwrap().to_owned())
        })
        .collect();
    let succ = format!("[succ] get remote config: {CONF_FILE}");
    let messages: Vec<&str> = notices.iter().map(|n| n.2.as_str()).collect();
    assert_eq!(messages.first(), Some(&succ.as_str()), "{messages:?}");
    assert_eq!(messages.last(), Some(&"stop"), "{messages:?}");
    assert!(messages.contains(&"restart"), "{messages:?}");
    assert_eq!(messages.iter().filter(|m| **m == succ).count(), 2, "{messages:?}");
    assert!(messages.iter().any(|m| m.starts_with("[fail] get remote config: ../secret")), "{messages:?}");
    assert!(notices.contains(&(1, 1, "disk low".to_owned())), "NOTIFY, WARN: {notices:?}");
    assert!(notices.iter().filter(|n| n.2 != "disk low").all(|n| n.0 == 0), "REPORT for the rest: {notices:?}");
}

fn duties_against_the_node_sdk(io: IoMode) {
    let dir = TempDir::new(&format!("duties-{io}")).unwrap();
    let peer = AppPeer::start(&json!({ "files": { CONF_FILE: CONF_TEXT } }));
    let text = config_text(peer.port(QUERY), peer.port(NODE), &dir.0);
    let started_ms = now_ms();
    let running = start(&text, io);
    assert_eq!(std::fs::read_to_string(dir.0.join("base").join(CONF_FILE)).unwrap(), CONF_TEXT, "fetched at start");

    assert_eq!(make_calls(&running, io), (OK_FAST + OK_SLOW, TIMED_OUT, FAILED));
    let app = running.client().clone();
    let queue = app.property(
        "queue",
        &[Policy::Sum, Policy::Count, Policy::Max, Policy::Min, Policy::Avg, Policy::Distr(vec![10.0, 20.0, 30.0])],
    );
    for v in [5.0, 15.0, 25.0, 35.0] {
        queue.report(v);
    }
    let log = running.log().unwrap().dispatch();
    tracing::dispatcher::with_default(&log, || {
        for seq in 0..500 {
            tracing::info!(target: "duty_test", seq, "a line");
        }
    });
    app.notify(NotifyLevel::Warn, "disk low");
    let admin = running.server().addr("AdminAdapter").unwrap();
    let answer = admin_notify(admin, &format!("tars.loadconfig {CONF_FILE}")).unwrap();
    assert_eq!(answer, format!("[succ] get remote config: {CONF_FILE}"));
    let answer = admin_notify(admin, "tars.loadconfig ../secret").unwrap();
    assert!(answer.starts_with("[fail] get remote config: ../secret"), "{answer}");

    // Stay up for the first periodic report and the second round of heartbeats.
    assert!(
        wait_for(Duration::from_secs(20), || {
            let stat = !peer.calls_to(STAT, "reportMicMsg").is_empty();
            let alive = peer.calls_to(NODE, "keepAlive").len() >= 5;
            (stat && alive).then_some(())
        })
        .is_some(),
        "no periodic report or second heartbeat round: {:?}",
        peer.calls().iter().map(|c| format!("{} {} {}", c["t"], c["obj"], c["func"])).collect::<Vec<_>>()
    );
    running.shutdown();
    running.wait().unwrap();
    // What the stop flushed is written; give the peer the moment it takes to read it.
    let last_notice = |c: &Value| c["obj"] == NOTIFY && c["args"]["info"]["sMessage"] == "stop";
    assert!(wait_for(Duration::from_secs(3), || peer.calls().iter().any(last_notice).then_some(())).is_some());
    let calls = peer.stop();
    check_node(&calls, started_ms);
    check_stat(&calls, started_ms);
    check_property(&calls);
    check_log(&calls, &dir.0);
    check_config_and_notify(&calls, &dir.0);

    // The same server with every framework service gone: it starts on the config file it
    // fetched before, serves as before, and stops without waiting on the dead peers.
    let running = start(&text, io);
    let begun = Instant::now();
    let addr = running.server().addr(INTEROP_ADAPTER).unwrap();
    let object = format!("{INTEROP_OBJ}@tcp -h 127.0.0.1 -p {}", addr.port());
    let client = running.client().blocking(io).unwrap();
    let slowest = client.run(move |comm| async move {
        let interop = TarsTest::InteropProxy::new(comm.proxy(&object).unwrap(), INTEROP_OBJ);
        let mut slowest = Duration::ZERO;
        for i in 0..200 {
            let t = Instant::now();
            assert_eq!(interop.echo_string(&format!("{i}")).await.unwrap(), format!("{i}"));
            slowest = slowest.max(t.elapsed());
        }
        slowest
    });
    // A call that waited on a dead framework service would take its 5 s deadline.
    assert!(slowest < Duration::from_secs(2), "slowest call {slowest:?} with the peers down");
    drop(client);
    running.shutdown();
    running.wait().unwrap();
    assert!(begun.elapsed() < Duration::from_secs(10), "start to stop took {:?} with the peers down", begun.elapsed());
}

tars_testkit::on_every_driver! {
    app_duties => duties_against_the_node_sdk;
}
