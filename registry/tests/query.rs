//! QueryObj against fixtures in a real database: every find* variant's group, set and standby
//! rules, changes (including deletions) reaching answers, node liveness, the snapshot, and
//! two registry processes on one MariaDB answering alike.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{add_server, start_registry, TestDb};
use tars_core_net::client::config::ClientConfig;
use tars_core_net::client::BlockingClient;
use tars_core_net::rt::IoMode;
use tars_proto::rpc::CallOptions;
use tars_protocol::tars::{EndpointF, LoadInfo, NodeInfo, QueryFProxy, RegistryProxy, ServerState, ServerStateInfo};
use tars_sql::params;

const QUERY: &str = "tars.tarsregistry.QueryObj";
const REGISTRY: &str = "tars.tarsregistry.RegistryObj";

/// A QueryObj client: answers as `host:port` lists.
struct Querier {
    client: BlockingClient,
    object: String,
    version: i16,
}

type Answer = (i32, Vec<String>, Vec<String>);

fn names(v: &[EndpointF]) -> Vec<String> {
    v.iter().map(|e| format!("{}:{}", e.host, e.port)).collect()
}

impl Querier {
    fn new(addr: SocketAddr, io: IoMode) -> Querier {
        let client = BlockingClient::start(ClientConfig::default(), io).expect("client starts");
        Querier { client, object: format!("{QUERY}@tcp -h {} -p {} -t 10000", addr.ip(), addr.port()), version: 1 }
    }

    /// The same client speaking protocol `version` (1 takes QueryObj's pre-encoded answers,
    /// 3 the generic path).
    fn version(mut self, version: i16) -> Querier {
        self.version = version;
        self
    }

    fn call(&self, method: &'static str, id: &str, arg: &str) -> Answer {
        let (object, id, arg, version) = (self.object.clone(), id.to_owned(), arg.to_owned(), self.version);
        self.client.run(move |comm| async move {
            let options = CallOptions { version, timeout_ms: 10_000, ..CallOptions::default() };
            let p = QueryFProxy::new(comm.proxy(&object).expect("proxy"), QUERY).with_options(options);
            let (mut a, mut i) = (Vec::new(), Vec::new());
            let ret = match method {
                "id" => {
                    a = p.find_object_by_id(&id).await.expect("findObjectById");
                    0
                }
                "any" => p.find_object_by_id4_any(&id, &mut a, &mut i).await.expect("4Any"),
                "all" => p.find_object_by_id4_all(&id, &mut a, &mut i).await.expect("4All"),
                "group" => p.find_object_by_id_in_same_group(&id, &mut a, &mut i).await.expect("InSameGroup"),
                "station" => {
                    p.find_object_by_id_in_same_station(&id, &arg, &mut a, &mut i).await.expect("InSameStation")
                }
                "set" => p.find_object_by_id_in_same_set(&id, &arg, &mut a, &mut i).await.expect("InSameSet"),
                other => panic!("no method {other}"),
            };
            (ret, names(&a), names(&i))
        })
    }

    fn any(&self, id: &str) -> Answer {
        self.call("any", id, "")
    }
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| (*x).to_owned()).collect()
}

/// Waits until `f` holds; returns how long it took, or panics after `limit`.
fn within(limit: Duration, what: &str, mut f: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    start.elapsed()
}

/// Fixtures: the caller (127.0.0.1) is in group 1; group 2 is 10.1.0.*; the priority list
/// has {1, 2} at station "north".
fn fixtures(db: &TestDb) {
    db.exec("INSERT INTO t_server_group_rule (group_id, allow_ip_rule, group_name) VALUES (1, '127.0.0.*', 'local'), (2, '10.1.0.*|10.1.0.99', 'ten')", params![]);
    db.exec(
        "INSERT INTO t_group_priority (name, group_list, list_order, station) VALUES ('p', '1|2', 1, 'north')",
        params![],
    );
    let ep = |h: &str| format!("tcp -h {h} -p 9000 -t 60000");
    let grp = [("enable_group", "Y")];
    add_server(db, "App", "Grp", "10.1.0.1", &grp, &[("App.Grp.Obj", &ep("10.1.0.1"))]);
    add_server(db, "App", "Grp", "10.9.0.1", &[], &[("App.Grp.Obj", &ep("10.9.0.1"))]);
    add_server(
        db,
        "App",
        "Grp",
        "127.0.0.5",
        &[("enable_group", "Y"), ("present_state", "inactive")],
        &[("App.Grp.Obj", &ep("127.0.0.5"))],
    );
    add_server(db, "App", "Grp", "10.9.0.2", &[("bak_flag", "1")], &[("App.Grp.Obj", &ep("10.9.0.2"))]);
    add_server(db, "App", "Grp", "10.9.0.3", &[("flow_state", "inactive")], &[("App.Grp.Obj", &ep("10.9.0.3"))]);
    fn set<'a>(name: &'a str, area: &'a str, group: &'a str) -> [(&'static str, &'a str); 4] {
        [("enable_set", "Y"), ("set_name", name), ("set_area", area), ("set_group", group)]
    }
    add_server(db, "App", "Set", "10.2.0.1", &set("sz", "a", "1"), &[("App.Set.Obj", &ep("10.2.0.1"))]);
    let mut off = set("sz", "a", "2").to_vec();
    off.push(("setting_state", "inactive"));
    add_server(db, "App", "Set", "10.2.0.2", &off, &[("App.Set.Obj", &ep("10.2.0.2"))]);
    add_server(db, "App", "Set", "10.2.0.3", &set("sz", "a", "*"), &[("App.Set.Obj", &ep("10.2.0.3"))]);
    add_server(db, "App", "Set", "10.2.0.4", &set("sz", "b", "1"), &[("App.Set.Obj", &ep("10.2.0.4"))]);
    add_server(db, "App", "Set", "10.2.0.5", &[], &[("App.Set.Obj", &ep("10.2.0.5"))]);
}

fn find_rules(db: TestDb, io: IoMode) {
    fixtures(&db);
    let reg = start_registry(&db, io, "");
    let q = Querier::new(reg.addr_of(QUERY).expect("QueryObj bound"), io);
    let grp = "App.Grp.Obj";
    // Standby 10.9.0.2 is nowhere; flow-inactive 10.9.0.3 and present-inactive 127.0.0.5 are inactive.
    assert_eq!(q.any(grp), (0, s(&["10.1.0.1:9000", "10.9.0.1:9000"]), s(&["10.9.0.3:9000", "127.0.0.5:9000"])));
    assert_eq!(q.call("id", grp, ""), (0, s(&["10.1.0.1:9000", "10.9.0.1:9000"]), vec![]));
    // Caller group 1 has only an inactive endpoint: the priority entry {1, 2} gives group 2.
    let grouped = (0, s(&["10.1.0.1:9000"]), s(&["127.0.0.5:9000"]));
    assert_eq!(q.call("group", grp, ""), grouped);
    assert_eq!(q.call("all", grp, ""), grouped);
    assert_eq!(q.call("station", grp, "north"), grouped);
    assert_eq!(q.call("station", grp, "south"), (-1, vec![], vec![]));
    let set = "App.Set.Obj";
    assert_eq!(q.call("set", set, "sz.a.1"), (0, s(&["10.2.0.1:9000"]), vec![]));
    assert_eq!(q.call("set", set, "sz.a.2"), (0, vec![], s(&["10.2.0.2:9000"])));
    assert_eq!(q.call("set", set, "sz.a.9"), (0, s(&["10.2.0.3:9000"]), vec![]));
    assert_eq!(q.call("set", set, "sz.a.*"), (0, s(&["10.2.0.1:9000", "10.2.0.3:9000"]), s(&["10.2.0.2:9000"])));
    assert_eq!(q.call("set", set, "sz.c.1"), (-1, vec![], vec![]));
    assert_eq!(q.call("set", set, "*.a.1"), (-1, vec![], vec![]));
    assert_eq!(q.call("set", set, "sz.a"), (-1, vec![], vec![]));
    // A set the servant does not have: group routing; nothing is grouped, so everything.
    let all_set = (0, s(&["10.2.0.1:9000", "10.2.0.3:9000", "10.2.0.4:9000", "10.2.0.5:9000"]), s(&["10.2.0.2:9000"]));
    assert_eq!(q.call("set", set, "gz.x.1"), all_set);
    // TUP (v3) takes the generic path; v1 answers for findObjectById / 4Any / 4All /
    // InSameGroup are pre-encoded. Both must agree, also for a caller with a group.
    let q3 = Querier::new(reg.addr_of(QUERY).expect("bound"), io).version(3);
    for (method, id) in [("id", grp), ("any", grp), ("all", grp), ("group", grp), ("any", set), ("id", "No.Such.Obj")] {
        assert_eq!(q.call(method, id, ""), q3.call(method, id, ""), "{method} {id}");
    }
    db.exec("DELETE FROM t_server_group_rule WHERE group_id = 1", params![]);
    within(Duration::from_secs(3), "caller without a group gets 4Any", || q.call("group", grp, "") == q.any(grp));
    assert_eq!(q3.call("group", grp, ""), q.call("group", grp, ""));
    // Unknown objects.
    assert_eq!(q.any("No.Such.Obj"), (0, vec![], vec![]));
    assert_eq!(q.call("group", "No.Such.Obj", ""), (0, vec![], vec![]));
    // The registry publishes itself.
    let own = reg.runtime().objects[QUERY].clone();
    let port = reg.addr_of(QUERY).map(|a| a.port()).unwrap_or_default();
    assert!(own.contains(&format!("-p {port}")), "{own}");
    within(Duration::from_secs(3), "own QueryObj routed", || {
        q.call("id", QUERY, "").1 == [format!("127.0.0.1:{port}")]
    });
    reg.shutdown().expect("clean stop");
}

fn changes_reach_answers(db: TestDb, io: IoMode) {
    let reg = start_registry(&db, io, "");
    let q = Querier::new(reg.addr_of(QUERY).expect("bound"), io);
    let obj = "App.Chg.Obj";
    assert_eq!(q.any(obj), (0, vec![], vec![]));
    add_server(
        &db,
        "App",
        "Chg",
        "10.3.0.1",
        &[],
        &[(obj, "tcp -h 10.3.0.1 -p 1 -t 1000"), ("App.Chg.Obj2", "tcp -h 10.3.0.1 -p 2")],
    );
    let limit = Duration::from_secs(1);
    within(limit, "new server", || q.any(obj).1 == ["10.3.0.1:1"]);
    db.exec("UPDATE t_server_conf SET present_state = 'inactive' WHERE server_name = 'Chg'", params![]);
    within(limit, "state change", || q.any(obj) == (0, vec![], s(&["10.3.0.1:1"])));
    db.exec("UPDATE t_adapter_conf SET endpoint = 'tcp -h 10.3.0.1 -p 7' WHERE servant = ?", params![obj]);
    within(limit, "endpoint change", || q.any(obj).2 == ["10.3.0.1:7"]);
    // Deleting an adapter touches no timestamp; it still disappears.
    db.exec("DELETE FROM t_adapter_conf WHERE servant = 'App.Chg.Obj2'", params![]);
    within(limit, "deleted adapter", || q.any("App.Chg.Obj2") == (0, vec![], vec![]));
    assert_eq!(q.any(obj).2, ["10.3.0.1:7"]);
    db.exec("DELETE FROM t_server_conf WHERE server_name = 'Chg'", params![]);
    within(limit, "deleted server", || q.any(obj) == (0, vec![], vec![]));
    // Group rules change group ids of existing endpoints.
    add_server(&db, "App", "Chg", "10.3.0.2", &[("enable_group", "Y")], &[(obj, "tcp -h 10.3.0.2 -p 1")]);
    add_server(&db, "App", "Chg", "10.4.0.2", &[("enable_group", "Y")], &[(obj, "tcp -h 10.4.0.2 -p 1")]);
    within(limit, "two servers", || q.any(obj).1.len() == 2);
    db.exec(
        "INSERT INTO t_server_group_rule (group_id, allow_ip_rule, group_name) VALUES (5, '127.0.0.1|10.4.0.*', 'g5')",
        params![],
    );
    within(limit, "group rule", || q.call("group", obj, "").1 == ["10.4.0.2:1"]);
    reg.shutdown().expect("clean stop");
}

tars_core_net::on_every_driver! {
    find_rules_mysql => |io| find_rules(common::mysql("find_rules"), io);
    find_rules_sqlite => |io| find_rules(common::sqlite("find_rules"), io);
    changes_mysql => |io| changes_reach_answers(common::mysql("changes"), io);
    changes_sqlite => |io| changes_reach_answers(common::sqlite("changes"), io);
}

/// register → heartbeat → silence → node and servers inactive → gone from active answers;
/// keepAlive after the node row was deleted asks the node to register again.
fn node_lifecycle(db: TestDb) {
    let io = IoMode::EpollEt;
    let reg = start_registry(&db, io, "nodeTimeout=2\nnodeTimeoutInterval=1");
    let q = Querier::new(reg.addr_of(QUERY).expect("bound"), io);
    let object = format!("{REGISTRY}@tcp -h 127.0.0.1 -p {} -t 10000", reg.addr_of(REGISTRY).expect("bound").port());
    let client = BlockingClient::start(ClientConfig::default(), io).expect("client");
    let call = |what: &'static str| {
        let object = object.clone();
        client.run(move |comm| async move {
            let p = RegistryProxy::new(comm.proxy(&object).expect("proxy"), REGISTRY);
            let load = LoadInfo { avg1: 0.5, avg5: 0.4, avg15: 0.3, avg_cpu: 1 };
            match what {
                "register" => {
                    let ni = NodeInfo {
                        node_name: "10.7.0.1".into(),
                        node_obj: "tars.tarsnode.NodeObj@tcp -h 10.7.0.1 -p 19385".into(),
                        endpoint_ip: "10.7.0.1".into(),
                        endpoint_port: 19385,
                        time_out: 10,
                        data_dir: "/data".into(),
                        ..NodeInfo::default()
                    };
                    p.register_node("10.7.0.1", &ni, &load).await.expect("registerNode")
                }
                "keepalive" => p.keep_alive("10.7.0.1", &load).await.expect("keepAlive"),
                "active" => {
                    let st = ServerStateInfo {
                        server_state: ServerState::Active,
                        process_id: 42,
                        ..ServerStateInfo::default()
                    };
                    p.update_server("10.7.0.1", "App", "Live", &st).await.expect("updateServer")
                }
                other => panic!("{other}"),
            }
        })
    };
    assert_eq!(call("register"), 0);
    add_server(&db, "App", "Live", "10.7.0.1", &[], &[("App.Live.Obj", "tcp -h 10.7.0.1 -p 1")]);
    within(Duration::from_secs(2), "routed", || q.any("App.Live.Obj").1 == ["10.7.0.1:1"]);
    // Heart-beating for longer than the timeout keeps everything active.
    let until = Instant::now() + Duration::from_millis(3500);
    while Instant::now() < until {
        assert_eq!(call("keepalive"), 0);
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(q.any("App.Live.Obj").1, ["10.7.0.1:1"], "a heart-beating node stays active");
    // Silence: node and server go inactive, the endpoint leaves the active list.
    within(Duration::from_secs(8), "silent node inactive", || q.any("App.Live.Obj") == (0, vec![], s(&["10.7.0.1:1"])));
    let state = |sql: &str| db.query(sql, params!["10.7.0.1"])[0].get::<String>(0).expect("text");
    assert_eq!(state("SELECT present_state FROM t_node_info WHERE node_name = ?"), "inactive");
    assert_eq!(state("SELECT present_state FROM t_server_conf WHERE node_name = ?"), "inactive");
    // The node comes back: heartbeat, then its server reports Active.
    assert_eq!(call("keepalive"), 0);
    assert_eq!(call("active"), 0);
    within(Duration::from_secs(2), "back", || q.any("App.Live.Obj").1 == ["10.7.0.1:1"]);
    // Someone deletes the node row: keepAlive says "register again", and that works.
    db.exec("DELETE FROM t_node_info WHERE node_name = ?", params!["10.7.0.1"]);
    assert_eq!(call("keepalive"), 1);
    assert_eq!(call("register"), 0);
    assert_eq!(call("keepalive"), 0);
    assert_eq!(state("SELECT present_state FROM t_node_info WHERE node_name = ?"), "active");
    reg.shutdown().expect("clean stop");
}

on_both_backends! { node_lifecycle => super::node_lifecycle; }

/// A restarted registry whose database is down answers from the snapshot.
#[test]
fn snapshot_serves_while_the_database_is_down() {
    let db = common::mysql("snapshot");
    fixtures(&db);
    let dir = tars_testkit::process::TempDir::new("reg-snapshot").expect("dir");
    let path = dir.0.join("routes.dat");
    let reap = "";
    let extra = format!("<objcache>\nFilePath={}\n</objcache>", path.display());
    let start = |store: tars_sql::Store| {
        let config = tars_proto::config::Config::parse(&common::registry_config(reap, &extra)).expect("config");
        let opts =
            tars_registry::service::StartOptions { io: Some(IoMode::EpollLt), shards: Some(1), store: Some(store) };
        tars_registry::service::start(&config, opts).expect("registry starts")
    };
    let first = start(db.store.clone());
    let q = Querier::new(first.addr_of(QUERY).expect("bound"), IoMode::EpollLt);
    let before = (q.any("App.Grp.Obj"), q.call("set", "App.Set.Obj", "sz.a.*"));
    within(Duration::from_secs(3), "snapshot written", || path.exists());
    first.shutdown().expect("stop");
    let down = tars_sql::Store::open("mysql://tars:x@127.0.0.1:1/db_tars?connect_timeout_ms=300").expect("url parses");
    let second = start(down);
    let q = Querier::new(second.addr_of(QUERY).expect("bound"), IoMode::EpollLt);
    assert_eq!((q.any("App.Grp.Obj"), q.call("set", "App.Set.Obj", "sz.a.*")), before);
    assert!(second.runtime().loader_status().from_snapshot.load(std::sync::atomic::Ordering::Acquire));
    second.shutdown().expect("stop");
    // A damaged snapshot is refused with an error, not served or panicked on.
    std::fs::write(&path, b"\x00garbage").expect("write");
    let down = tars_sql::Store::open("mysql://tars:x@127.0.0.1:1/db_tars?connect_timeout_ms=300").expect("url parses");
    let third = start(down);
    let q = Querier::new(third.addr_of(QUERY).expect("bound"), IoMode::EpollLt);
    assert_eq!(q.any("App.Grp.Obj"), (0, vec![], vec![]));
    third.shutdown().expect("stop");
}

/// `tarsregistry --config=FILE` as a child process.
struct RegistryProcess {
    child: Child,
    query: SocketAddr,
}

impl Drop for RegistryProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl RegistryProcess {
    fn start(config: &str, dir: &std::path::Path, tag: &str) -> RegistryProcess {
        let conf = dir.join(format!("{tag}.conf"));
        std::fs::write(&conf, config).expect("write config");
        let mut child = Command::new(env!("CARGO_BIN_EXE_tarsregistry"))
            .arg(format!("--config={}", conf.display()))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("tarsregistry starts");
        let out = BufReader::new(child.stdout.take().expect("stdout"));
        let mut query = None;
        for line in out.lines() {
            let line = line.expect("read");
            if line.trim() == "READY" {
                break;
            }
            // `<object> <endpoint>` lines; the adapter lines (`<object>Adapter ip:port`) come too.
            if let Some(ep) = line.trim().strip_prefix(QUERY).filter(|rest| rest.starts_with(' ')) {
                let ep = tars_proto::endpoint::Endpoint::parse(ep.trim()).expect("endpoint line");
                query = Some(SocketAddr::new(ep.host.parse().expect("ip"), ep.port));
            }
        }
        RegistryProcess { child, query: query.expect("QueryObj line before READY") }
    }
}

/// Two `tarsregistry` processes on one MariaDB, configured with upstream's `<db>` keys,
/// answer identically; a deleted server disappears from both within a second.
#[test]
fn two_registry_processes_agree() {
    let db = common::mysql("two");
    fixtures(&db);
    // mysql://user:pass@host:port/name → upstream's <db> keys.
    let rest = db.url.strip_prefix("mysql://").expect("mysql url");
    let (creds, hostpath) = rest.split_once('@').expect("credentials");
    let (user, pass) = creds.split_once(':').expect("user:pass");
    let (hostport, name) = hostpath.split_once('/').expect("db name");
    let name = name.split('?').next().unwrap_or(name);
    let (host, port) = hostport.split_once(':').expect("host:port");
    let db_section =
        format!("<db>\ndbhost={host}\ndbport={port}\ndbuser={user}\ndbpass={pass}\ndbname={name}\ncharset=utf8\n</db>");
    let config = common::registry_config("loadObjectsInterval1=13\nLeastChangedTime1=600\nloadObjectsInterval2=3601\nregistryTimeout=150\nnodeTimeout=250", &db_section);
    let dir = tars_testkit::process::TempDir::new("reg-two").expect("dir");
    let a = RegistryProcess::start(&config, &dir.0, "a");
    let b = RegistryProcess::start(&config, &dir.0, "b");
    let (qa, qb) = (Querier::new(a.query, IoMode::EpollEt), Querier::new(b.query, IoMode::EpollEt));
    let ask = |q: &Querier| {
        vec![
            q.any("App.Grp.Obj"),
            q.call("group", "App.Grp.Obj", ""),
            q.call("station", "App.Grp.Obj", "north"),
            q.call("set", "App.Set.Obj", "sz.a.1"),
            q.call("set", "App.Set.Obj", "sz.a.*"),
            q.call("id", "App.Set.Obj", ""),
        ]
    };
    let first = ask(&qa);
    assert_eq!(first[0].1.len(), 2, "{first:?}");
    assert_eq!(first, ask(&qb));
    // Each publishes itself; both see both.
    within(Duration::from_secs(3), "both registries routed", || {
        qa.call("id", QUERY, "").1.len() == 2 && qb.call("id", QUERY, "").1.len() == 2
    });
    // A change, then a deletion.
    db.exec("UPDATE t_server_conf SET present_state = 'inactive' WHERE node_name = '10.1.0.1'", params![]);
    within(Duration::from_secs(1), "change on both", || {
        let (x, y) = (ask(&qa), ask(&qb));
        x == y && x[0].1 == ["10.9.0.1:9000"]
    });
    db.exec("DELETE FROM t_server_conf WHERE server_name = 'Set'", params![]);
    let took = within(Duration::from_secs(1), "deletion on both", || {
        qa.any("App.Set.Obj") == (0, vec![], vec![]) && qb.any("App.Set.Obj") == (0, vec![], vec![])
    });
    eprintln!("deletion visible on both registries after {took:?}");
    assert_eq!(ask(&qa), ask(&qb));
}
