//! The K8STARS container interface (`tars.tarsregistry.Registry`) against real databases
//! (MariaDB and SQLite): what each call writes, idempotence, refusals, the clean-up and the
//! Prometheus HTTP service-discovery endpoint; then the whole servant over the network on
//! every IO driver.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use futures_lite::future::block_on;
use tars_core_net::client::config::ClientConfig;
use tars_core_net::client::BlockingClient;
use tars_core_net::rt::IoMode;
use tars_core_net::server::ServerBuilder;
use tars_proto::config::Config;
use tars_proto::rpc::{CallError, CallOptions};
use tars_protocol::tars::{
    keepAliveReq, onPrestopReq, onStartupReq, tarsregistryProxy, tarsregistryServant, AdminFProxy,
    ContainerAdapterConf, GetMetricsAdaptersReq, MetricsAdapterInfo, RegisterMetricsReq,
};
use tars_registry::container::{self, ContainerError, ContainerImp};
use tars_registry::{http_sd, Context, RegistryConfig};
use tars_sql::{params, Value};

use common::TestDb;

const OLD: &str = "2000-01-01 00:00:00";

fn context(db: &TestDb) -> Arc<Context> {
    Context::new(db.store.clone(), RegistryConfig::default())
}

fn adapter(servant: &str, port: u16) -> ContainerAdapterConf {
    ContainerAdapterConf {
        servant: servant.into(),
        endpoint: format!("tcp -h 10.0.0.1 -p {port} -t 60000"),
        protocol: "tars".into(),
        max_conns: 1000,
        thread_num: 4,
        queue_cap: 10000,
        queue_timeout: 60000,
    }
}

fn startup_req(node: &str, app: &str, server: &str) -> onStartupReq {
    onStartupReq {
        node_name: node.into(),
        application: app.into(),
        server: server.into(),
        adapters: vec![adapter(&format!("{app}.{server}.HelloObj"), 10001)],
        state: "active".into(),
        version: "v1".into(),
        ..Default::default()
    }
}

fn startup(ctx: &Context, req: onStartupReq) {
    block_on(container::startup(ctx, req)).unwrap();
}

/// Text columns of the rows `sql` selects (NULL as `<null>`).
fn texts(db: &TestDb, sql: &str, p: Vec<Value>) -> Vec<Vec<String>> {
    db.query(sql, p)
        .iter()
        .map(|r| {
            (0..r.values().len()).map(|i| r.get::<Option<String>>(i).unwrap().unwrap_or("<null>".into())).collect()
        })
        .collect()
}

fn count(db: &TestDb, table: &str) -> i64 {
    db.query(&format!("SELECT COUNT(*) FROM {table}"), params![])[0].get(0).unwrap()
}

fn is_invalid<T: std::fmt::Debug>(r: Result<T, ContainerError>) -> bool {
    matches!(r, Err(ContainerError::Invalid(_)))
}

// ---------------------------------------------------------------------------------------------

fn startup_writes_the_rows(db: TestDb) {
    let ctx = context(&db);
    let mut req = startup_req("10.0.0.1", "App", "Srv");
    req.set_id = "sz.a.1".into();
    req.template_name = "tars.go.default".into();
    req.server_type = "tars_go".into();
    req.adapters.push(ContainerAdapterConf { protocol: String::new(), ..adapter("App.Srv.OtherObj", 10002) });
    startup(&ctx, req.clone());

    let node = texts(
        &db,
        "SELECT node_name, node_obj, endpoint_ip, endpoint_port, setting_state, present_state FROM t_node_info",
        params![],
    );
    assert_eq!(node, [["10.0.0.1", "tars.tarsnode.NodeObj@tcp -h 10.0.0.1 -p 0", "10.0.0.1", "0", "active", "active"]]);
    let times = db.query("SELECT last_reg_time, last_heartbeat FROM t_node_info", params![]);
    assert!(
        times[0].get::<Option<String>>(0).unwrap().is_some() && times[0].get::<Option<String>>(1).unwrap().is_some()
    );

    let server = texts(
        &db,
        "SELECT application, server_name, node_name, patch_version, present_state, setting_state, enable_set, \
         set_name, set_area, set_group, grid_flag, template_name, server_type FROM t_server_conf",
        params![],
    );
    assert_eq!(
        server,
        [[
            "App",
            "Srv",
            "10.0.0.1",
            "v1",
            "active",
            "active",
            "Y",
            "sz",
            "a",
            "1",
            "NORMAL",
            "tars.go.default",
            "tars_go"
        ]]
    );
    let stamps = db.query("SELECT registry_timestamp, patch_time, posttime FROM t_server_conf", params![]);
    for i in 0..3 {
        assert!(stamps[0].get::<Option<String>>(i).unwrap().is_some(), "timestamp column {i} set");
    }

    let adapters = texts(
        &db,
        "SELECT adapter_name, servant, endpoint, protocol, thread_num, max_connections, queuecap, queuetimeout \
         FROM t_adapter_conf WHERE application = 'App' AND server_name = 'Srv' AND node_name = '10.0.0.1' \
         ORDER BY adapter_name",
        params![],
    );
    assert_eq!(
        adapters,
        [
            [
                "App.Srv.HelloObjAdapter",
                "App.Srv.HelloObj",
                "tcp -h 10.0.0.1 -p 10001 -t 60000",
                "tars",
                "4",
                "1000",
                "10000",
                "60000"
            ],
            [
                "App.Srv.OtherObjAdapter",
                "App.Srv.OtherObj",
                "tcp -h 10.0.0.1 -p 10002 -t 60000",
                "tars",
                "4",
                "1000",
                "10000",
                "60000"
            ],
        ]
    );

    // Again, changed: still one row each, now with the new values; the node keeps its
    // registration time.
    let reg_time: String = db.query("SELECT last_reg_time FROM t_node_info", params![])[0].get(0).unwrap();
    db.exec("UPDATE t_node_info SET last_heartbeat = ?", params![OLD]);
    req.version = "v2".into();
    req.state = "activating".into();
    req.disable_flow = true;
    req.set_id = String::new();
    req.adapters[0].endpoint = "tcp -h 10.0.0.1 -p 20001 -t 60000".into();
    startup(&ctx, req.clone());
    startup(&ctx, req);
    assert_eq!((count(&db, "t_node_info"), count(&db, "t_server_conf"), count(&db, "t_adapter_conf")), (1, 1, 2));
    let node = texts(&db, "SELECT last_reg_time, last_heartbeat > ? FROM t_node_info", params![OLD]);
    assert_eq!(node, [[reg_time, "1".to_owned()]], "registration time kept, heartbeat refreshed");
    let server = texts(
        &db,
        "SELECT patch_version, present_state, enable_set, set_name, set_area, set_group, grid_flag FROM t_server_conf",
        params![],
    );
    assert_eq!(server, [["v2", "activating", "N", "", "", "", "NO_FLOW"]]);
    let ep =
        texts(&db, "SELECT endpoint FROM t_adapter_conf WHERE adapter_name = 'App.Srv.HelloObjAdapter'", params![]);
    assert_eq!(ep, [["tcp -h 10.0.0.1 -p 20001 -t 60000"]]);
}

fn startup_defaults_and_refusals(db: TestDb) {
    let ctx = context(&db);
    // Empty state is active, unknown server types are tars_cpp.
    let mut req = startup_req("n1", "App", "Srv");
    req.state = String::new();
    req.server_type = "tars_rust".into();
    startup(&ctx, req);
    let row = texts(&db, "SELECT present_state, server_type FROM t_server_conf", params![]);
    assert_eq!(row, [["active", "tars_cpp"]]);

    let refused = |f: &dyn Fn(&mut onStartupReq)| {
        let mut req = startup_req("n2", "App", "Other");
        f(&mut req);
        is_invalid(block_on(container::startup(&ctx, req)))
    };
    assert!(refused(&|r| r.state = "running".into()), "unknown state");
    assert!(refused(&|r| r.state = "ACTIVE".into()), "states are lower case");
    assert!(refused(&|r| r.set_id = "sz.a".into()), "two-part set id");
    assert!(refused(&|r| r.set_id = "sz..1".into()), "empty set area");
    assert!(refused(&|r| r.node_name = String::new()), "empty node");
    assert!(refused(&|r| r.application = String::new()), "empty application");
    assert!(refused(&|r| r.node_name = "n".repeat(51)), "node longer than its column");
    assert!(refused(&|r| r.adapters[0].endpoint = String::new()), "adapter without endpoint");
    assert!(refused(&|r| r.adapters = vec![adapter("A.B.C", 1); 257]), "too many adapters");
    // Nothing of a refused request was written.
    assert_eq!((count(&db, "t_node_info"), count(&db, "t_server_conf"), count(&db, "t_adapter_conf")), (1, 1, 1));
}

fn keep_alive_updates_heartbeat_and_states(db: TestDb) {
    let ctx = context(&db);
    startup(&ctx, startup_req("n1", "App", "A"));
    startup(&ctx, startup_req("n1", "App", "B"));
    let keep = |state: &str, app: &str, server: &str| {
        let req = keepAliveReq {
            node_name: "n1".into(),
            state: state.into(),
            application: app.into(),
            server: server.into(),
        };
        block_on(container::keep_alive(&ctx, req))
    };
    let states = || {
        texts(
            &db,
            "SELECT server_name, present_state, setting_state FROM t_server_conf ORDER BY server_name",
            params![],
        )
    };
    let node = || texts(&db, "SELECT present_state, last_heartbeat > ? FROM t_node_info", params![OLD]);

    db.exec("UPDATE t_node_info SET last_heartbeat = ?", params![OLD]);
    keep("deactivating", "App", "A").unwrap();
    assert_eq!(node(), [["inactive", "1"]], "heartbeat refreshed; a non-active state makes the node inactive");
    assert_eq!(states(), [["A", "deactivating", "active"], ["B", "active", "active"]]);

    keep("", "App", "A").unwrap();
    assert_eq!(node(), [["active", "1"]], "empty state means active");
    assert_eq!(states()[0], ["A", "active", "active"]);

    // Without application/server: every server of the node.
    keep("inactive", "", "").unwrap();
    assert_eq!(states(), [["A", "inactive", "active"], ["B", "inactive", "active"]]);
    keep("destroyed", "", "").unwrap();
    assert_eq!(node()[0][0], "inactive");
    assert_eq!(states(), [["A", "destroyed", "inactive"], ["B", "destroyed", "inactive"]]);

    assert!(is_invalid(keep("gone", "App", "A")), "unknown state refused");
    let nameless = keepAliveReq { state: "active".into(), ..Default::default() };
    assert!(is_invalid(block_on(container::keep_alive(&ctx, nameless))), "no node name");

    // A later report brings the servers back up, but their setting stays the operator's (or
    // the next onStartup's) business.
    keep("active", "", "").unwrap();
    assert_eq!(node()[0][0], "active");
    assert_eq!(states(), [["A", "active", "inactive"], ["B", "active", "inactive"]]);
}

fn prestop_deletes_or_marks_destroyed(db: TestDb) {
    let ctx = context(&db);
    startup(&ctx, startup_req("n1", "App", "A"));
    startup(&ctx, startup_req("n1", "App", "B"));
    startup(&ctx, startup_req("n2", "App", "A"));
    let file = "INSERT INTO t_config_files (server_name, host, filename, config, level) VALUES (?, ?, ?, 'x', ?)";
    db.exec(file, params!["App.A", "n1", "a.conf", 2]); // node-level file of n1: goes
    db.exec(file, params!["App.A", "n2", "a.conf", 2]); // another node's: stays
    db.exec(file, params!["App.A", "", "a.conf", 1]); // application-level: stays
    db.exec(file, params!["App.B", "n1", "b.conf", 2]); // another server's: stays

    let req = onPrestopReq { node_name: "n1".into(), application: "App".into(), server: "A".into() };
    block_on(container::prestop(&ctx, req.clone())).unwrap();
    block_on(container::prestop(&ctx, req)).unwrap(); // reentrant
    let servers =
        texts(&db, "SELECT node_name, server_name FROM t_server_conf ORDER BY node_name, server_name", params![]);
    assert_eq!(servers, [["n1", "B"], ["n2", "A"]]);
    let adapters =
        texts(&db, "SELECT node_name, server_name FROM t_adapter_conf ORDER BY node_name, server_name", params![]);
    assert_eq!(adapters, [["n1", "B"], ["n2", "A"]]);
    let files = texts(&db, "SELECT server_name, host FROM t_config_files ORDER BY server_name, host", params![]);
    assert_eq!(files, [["App.A", ""], ["App.A", "n2"], ["App.B", "n1"]]);
    assert_eq!(count(&db, "t_node_info"), 2, "nodes stay");

    // Old clients name no server: every server of the node is marked destroyed.
    block_on(container::prestop(&ctx, onPrestopReq { node_name: "n2".into(), ..Default::default() })).unwrap();
    let n2 = texts(&db, "SELECT present_state, setting_state FROM t_server_conf WHERE node_name = 'n2'", params![]);
    assert_eq!(n2, [["destroyed", "inactive"]]);
    let nodes = texts(&db, "SELECT node_name, present_state FROM t_node_info ORDER BY node_name", params![]);
    assert_eq!(nodes, [["n1", "active"], ["n2", "inactive"]]);

    let half = onPrestopReq { node_name: "n1".into(), application: "App".into(), server: String::new() };
    assert!(is_invalid(block_on(container::prestop(&ctx, half))));
}

fn metrics_are_grouped(db: TestDb) {
    let ctx = context(&db);
    for (node, server) in [("n2", "A"), ("n1", "A"), ("n3", "B"), ("n4", "C")] {
        startup(&ctx, startup_req(node, "App", server));
    }
    let mut set = startup_req("n5", "App", "A");
    set.set_id = "sz.a.1".into();
    startup(&ctx, set);
    let register = |node: &str, server: &str, port: i32| {
        let req = RegisterMetricsReq {
            node_name: node.into(),
            application: "App".into(),
            server: server.into(),
            metrics_port: port,
        };
        block_on(container::register_metrics(&ctx, req))
    };
    register("n1", "A", 0).unwrap();
    register("n2", "A", 9100).unwrap();
    register("n3", "B", 9200).unwrap();
    register("n5", "A", 0).unwrap();
    register("nowhere", "A", 9100).unwrap(); // not registered: nothing to update, no error
    assert!(is_invalid(register("n4", "C", 70000)), "not a port");
    assert!(is_invalid(register("n4", "C", -1)), "not a port");

    let got = block_on(container::metrics_adapters(&ctx)).unwrap();
    let group = |targets: &[&str], server: &str, set: &str| MetricsAdapterInfo {
        targets: targets.iter().map(|t| (*t).to_owned()).collect(),
        labels: BTreeMap::from([
            ("application".to_owned(), "App".to_owned()),
            ("server".to_owned(), server.to_owned()),
            ("set".to_owned(), set.to_owned()),
        ]),
    };
    assert_eq!(
        got,
        [group(&["n1:9325", "n2:9100"], "A", ""), group(&["n5:9325"], "A", "sz.a.1"), group(&["n3:9200"], "B", "")]
    );
}

fn clean_removes_only_old_inactive_container_nodes(db: TestDb) {
    let ctx = context(&db);
    startup(&ctx, startup_req("dead", "App", "A"));
    startup(&ctx, startup_req("dead", "App", "B"));
    startup(&ctx, startup_req("fresh", "App", "A"));
    startup(&ctx, startup_req("old-active", "App", "A"));
    db.exec(
        "INSERT INTO t_node_info (node_name, last_heartbeat, present_state) VALUES ('lonely', ?, 'inactive')",
        params![OLD],
    );
    db.exec("UPDATE t_node_info SET endpoint_port = 0 WHERE node_name = 'lonely'", params![]);
    // A classic tarsnode (real port), down as long: not ours to remove.
    db.exec(
        "INSERT INTO t_node_info (node_name, endpoint_port, last_heartbeat, present_state) \
         VALUES ('classic', 19385, ?, 'inactive')",
        params![OLD],
    );
    db.exec(
        "INSERT INTO t_server_conf (application, server_name, node_name) VALUES ('App', 'C', 'classic')",
        params![],
    );
    db.exec(
        "UPDATE t_node_info SET present_state = 'inactive', last_heartbeat = ? WHERE node_name = 'dead'",
        params![OLD],
    );
    db.exec("UPDATE t_node_info SET present_state = 'inactive' WHERE node_name = 'fresh'", params![]);
    db.exec("UPDATE t_node_info SET last_heartbeat = ? WHERE node_name = 'old-active'", params![OLD]);
    let file = "INSERT INTO t_config_files (server_name, host, filename, config) VALUES (?, ?, 'f.conf', 'x')";
    db.exec(file, params!["App.A", "dead"]);
    db.exec(file, params!["App.A", "fresh"]);
    db.exec(file, params!["App.A", ""]);
    let snapshot = || ["t_node_info", "t_server_conf", "t_adapter_conf", "t_config_files"].map(|t| count(&db, t));
    let before = snapshot();
    assert_eq!(before, [5, 5, 4, 3]);

    let dry = block_on(container::clean(&ctx, None, true)).unwrap();
    assert!(dry.dry_run);
    let names = |r: &container::CleanReport| {
        r.servers.iter().map(|s| format!("{}/{}.{}", s.node, s.application, s.server)).collect::<Vec<_>>()
    };
    assert_eq!(names(&dry), ["dead/App.A", "dead/App.B"]);
    assert_eq!(dry.nodes, ["dead", "lonely"]);
    assert_eq!((dry.adapters, dry.config_files), (2, 1));
    assert_eq!(snapshot(), before, "a dry run deletes nothing");
    let text = block_on(container::clean_command(ctx.clone(), String::new()));
    assert!(
        text.contains("server App.A on dead") && text.contains("node lonely") && text.ends_with("Dry run.\n"),
        "{text}"
    );
    assert_eq!(snapshot(), before);

    // A cut-off before the dead node's last heartbeat finds nothing.
    let early = block_on(container::clean(&ctx, Some("1999-12-31 00:00:00".into()), false)).unwrap();
    assert!(early.servers.is_empty() && early.nodes.is_empty());
    assert_eq!(snapshot(), before);

    let text = block_on(container::clean_command(ctx.clone(), "n".into()));
    assert!(text.contains("2 servers, 2 adapters, 1 config files, 2 nodes") && text.ends_with("Deleted\n"), "{text}");
    let nodes = texts(&db, "SELECT node_name FROM t_node_info ORDER BY node_name", params![]);
    assert_eq!(nodes, [["classic"], ["fresh"], ["old-active"]]);
    let servers = texts(&db, "SELECT node_name, server_name FROM t_server_conf ORDER BY node_name", params![]);
    assert_eq!(servers, [["classic", "C"], ["fresh", "A"], ["old-active", "A"]]);
    assert_eq!(count(&db, "t_adapter_conf"), 2);
    let files = texts(&db, "SELECT host FROM t_config_files ORDER BY host", params![]);
    assert_eq!(files, [[""], ["fresh"]]);

    let bad = block_on(container::clean_command(ctx.clone(), "n last-week".into()));
    assert!(bad.contains("usage: clean"), "{bad}");
    let explicit = block_on(container::clean_command(ctx, "n 2001-01-01".into()));
    assert!(explicit.contains("before 2001-01-01 00:00:00") && explicit.contains("0 servers"), "{explicit}");
}

// ---------------------------------------------------------------------------------------------
// HTTP service discovery

/// Sends `request`, reads until the server closes; returns (status, body).
fn http(addr: SocketAddr, request: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    parse_response(&String::from_utf8_lossy(&out))
}

fn parse_response(text: &str) -> (u16, String) {
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

fn http_sd_serves_the_targets(db: TestDb) {
    let ctx = context(&db);
    for (node, server) in [("n1", "A"), ("n2", "A"), ("n3", "B")] {
        startup(&ctx, startup_req(node, "App", server));
        let req = RegisterMetricsReq {
            node_name: node.into(),
            application: "App".into(),
            server: server.into(),
            metrics_port: 0,
        };
        block_on(container::register_metrics(&ctx, req)).unwrap();
    }
    let sd = http_sd::start("127.0.0.1:0", ctx.clone()).unwrap();
    let addr = sd.addr();

    let (status, body) = http(addr, b"GET /prometheus/sd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_eq!(status, 200, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    let want = block_on(container::metrics_adapters(&ctx)).unwrap();
    let want: Vec<serde_json::Value> =
        want.iter().map(|g| serde_json::json!({"targets": g.targets, "labels": g.labels})).collect();
    assert_eq!(json, serde_json::Value::Array(want));
    assert_eq!(json[0]["targets"], serde_json::json!(["n1:9325", "n2:9325"]));
    assert_eq!(json[0]["labels"], serde_json::json!({"application": "App", "server": "A", "set": ""}));

    // Keep-alive: two requests on one connection, the second after a pipelined first.
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /prometheus/sd?x=1 HTTP/1.1\r\n\r\nGET /prometheus/sd HTTP/1.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert_eq!(out.matches("HTTP/1.1 200 OK").count(), 2, "{out}");
    assert!(out.contains("Content-Type: application/json"));

    assert_eq!(http(addr, b"GET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n").0, 404);
    assert_eq!(http(addr, b"POST /prometheus/sd HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}").0, 405);
    // The HTTP-level hardening (bad and oversized requests, slow senders, the connection
    // limit) is tested with the server, in core-net/tests/http.rs.

    assert_eq!(http(addr, b"GET /prometheus/sd HTTP/1.0\r\n\r\n").0, 200);

    // The answer is cached for a second: a server registered meanwhile shows up after it.
    let get = || http(addr, b"GET /prometheus/sd HTTP/1.1\r\nConnection: close\r\n\r\n").1;
    let before = get();
    let asked = std::time::Instant::now();
    startup(&ctx, startup_req("n4", "App", "C"));
    let req =
        RegisterMetricsReq { node_name: "n4".into(), application: "App".into(), server: "C".into(), metrics_port: 0 };
    block_on(container::register_metrics(&ctx, req)).unwrap();
    let soon = get();
    if asked.elapsed() < http_sd::CACHE_FOR / 2 {
        assert_eq!(soon, before, "within the second, the cached answer");
    }
    std::thread::sleep(http_sd::CACHE_FOR + Duration::from_millis(100));
    let later = get();
    assert!(later.contains("n4:9325") && !before.contains("n4:9325"), "{before}\n{later}");
    sd.stop();
    assert!(TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err(), "stopped");
}

on_both_backends! {
    startup_writes_the_rows => super::startup_writes_the_rows;
    startup_defaults_and_refusals => super::startup_defaults_and_refusals;
    keep_alive_updates_heartbeat_and_states => super::keep_alive_updates_heartbeat_and_states;
    prestop_deletes_or_marks_destroyed => super::prestop_deletes_or_marks_destroyed;
    metrics_are_grouped => super::metrics_are_grouped;
    clean_removes_only_old_inactive_container_nodes => super::clean_removes_only_old_inactive_container_nodes;
    http_sd_serves_the_targets => super::http_sd_serves_the_targets;
}

// ---------------------------------------------------------------------------------------------
// Over the network

const OBJ: &str = "tars.tarsregistry.Registry";
const ADAPTER: &str = "tars.tarsregistry.RegistryAdapter";

fn over_the_network(io: IoMode) {
    let db = common::sqlite("net");
    let ctx = context(&db);
    let text = format!(
        "<tars>\n<application>\n<server>\napp=tars\nserver=tarsregistry\nlocal=tcp -h 127.0.0.1 -p 0 -t 10000\n\
         <{ADAPTER}>\nendpoint=tcp -h 127.0.0.1 -p 0 -t 60000\nservant={OBJ}\n</{ADAPTER}>\n\
         </server>\n</application>\n</tars>\n"
    );
    let (c1, c2) = (ctx.clone(), ctx.clone());
    let server = ServerBuilder::from_config(&Config::parse(&text).unwrap())
        .unwrap()
        .servant(OBJ, move |_| tarsregistryServant(ContainerImp::new(c1.clone())))
        .admin_command_async("clean", move |p| container::clean_command(c2.clone(), p))
        .io(io)
        .shards(2)
        .start()
        .unwrap();
    let obj = |adapter: &str, name: &str| {
        let a = server.addr(adapter).unwrap();
        format!("{name}@tcp -h {} -p {} -t 60000", a.ip(), a.port())
    };
    let (object, admin) = (obj(ADAPTER, OBJ), obj("AdminAdapter", "AdminObj"));
    let client = BlockingClient::start(ClientConfig::default(), io).unwrap();
    let (rsp, admin_answer) = client.run(move |comm| async move {
        let options = CallOptions { timeout_ms: 10_000, ..CallOptions::default() };
        let p = tarsregistryProxy::new(comm.proxy(&object).unwrap(), OBJ).with_options(options.clone());
        let mut req = startup_req("10.1.1.1", "App", "Srv");
        req.state = "activating".into();
        p.on_startup(&req).await.unwrap();
        p.on_startup(&req).await.unwrap();
        let keep = keepAliveReq {
            node_name: "10.1.1.1".into(),
            state: "active".into(),
            application: "App".into(),
            server: "Srv".into(),
        };
        p.keep_alive(&keep).await.unwrap();
        let bad = keepAliveReq { state: "sleeping".into(), ..keep };
        match p.keep_alive(&bad).await {
            Err(CallError::Server { code: -99, desc }) => assert!(desc.contains("sleeping"), "{desc}"),
            other => panic!("a bad state must be refused: {other:?}"),
        }
        let metrics = RegisterMetricsReq {
            node_name: "10.1.1.1".into(),
            application: "App".into(),
            server: "Srv".into(),
            metrics_port: 0,
        };
        p.register_metrics(&metrics).await.unwrap();
        let mut rsp = Vec::new();
        p.get_metrics_adapters(&GetMetricsAdaptersReq::default(), &mut rsp).await.unwrap();
        let admin = AdminFProxy::new(comm.proxy(&admin).unwrap(), "AdminObj").with_options(options);
        let answer = admin.notify("clean").await.unwrap();
        (rsp, answer)
    });
    assert_eq!(rsp.len(), 1);
    assert_eq!(rsp[0].targets, ["10.1.1.1:9325"]);
    assert_eq!(rsp[0].labels["server"], "Srv");
    assert!(admin_answer.contains("0 servers") && admin_answer.ends_with("Dry run.\n"), "{admin_answer}");
    let states = texts(
        &db,
        "SELECT t_server_conf.present_state, t_node_info.present_state FROM t_server_conf, t_node_info",
        params![],
    );
    assert_eq!(states, [["active", "active"]]);
    drop(client);
    server.shutdown();
    server.wait().unwrap();
}

tars_testkit::on_every_driver! {
    network => over_the_network;
}
