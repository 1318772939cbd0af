//! `RegistryObj` served for real and called through the generated proxy, the way tarsnode
//! calls it: node registration and heartbeats, server state reports, `getServers` with a
//! template chain, the node template, and the small lookups. Every database test runs on
//! MariaDB and on SQLite; the network path runs on every IO driver.

#![allow(clippy::unwrap_used)]

mod common;

use std::future::Future;
use std::time::Duration;

use common::TestDb;
use tars_core_net::client::config::ClientConfig;
use tars_core_net::client::{BlockingClient, ObjectProxy};
use tars_core_net::rt::IoMode;
use tars_core_net::server::{ServerBuilder, ServerHandle};
use tars_proto::config::Config;
use tars_proto::rpc::{CallError, CallOptions};
use tars_protocol::tars::{
    DockerRegistry, FrameworkKey, LoadInfo, NodeInfo, PatchResult, RegistryProxy, RegistryServant, ReportNode,
    ServerDescriptor, ServerState, ServerStateInfo,
};
use tars_registry::registry_obj::RegistryImp;
use tars_registry::{Context, RegistryConfig};
use tars_sql::{params, Store};

const OBJ: &str = "tars.tarsregistry.RegistryObj";
const ADAPTER: &str = "tars.tarsregistry.RegistryObjAdapter";

/// A registry serving `RegistryObj` over a test database, and a client to call it.
struct Registry {
    server: Option<ServerHandle>,
    client: BlockingClient,
    object: String,
}

impl Registry {
    fn start(store: Store, io: IoMode, config: RegistryConfig) -> Registry {
        let ctx = Context::new(store, config);
        let text = format!(
            "<tars>\n<application>\n<server>\napp=tars\nserver=tarsregistry\nlocal=tcp -h 127.0.0.1 -p 0 -t 10000\n\
             <{ADAPTER}>\nendpoint=tcp -h 127.0.0.1 -p 0 -t 60000\nservant={OBJ}\n</{ADAPTER}>\n\
             </server>\n</application>\n</tars>\n"
        );
        let server = ServerBuilder::from_config(&Config::parse(&text).unwrap())
            .unwrap()
            .servant(OBJ, move |_| RegistryServant(RegistryImp::new(ctx.clone())))
            .io(io)
            .shards(1)
            .start()
            .unwrap();
        let addr = server.addr(ADAPTER).unwrap();
        let object = format!("{OBJ}@tcp -h {} -p {} -t 60000", addr.ip(), addr.port());
        let client = BlockingClient::start(ClientConfig::default(), io).unwrap();
        Registry { server: Some(server), client, object }
    }

    fn on(db: &TestDb) -> Registry {
        Registry::start(db.store.clone(), IoMode::EpollEt, RegistryConfig::default())
    }

    /// Runs `f` with a proxy on the client thread and returns what it returns.
    fn call<T, Fut>(&self, f: impl FnOnce(RegistryProxy<ObjectProxy>) -> Fut + Send + 'static) -> T
    where
        T: Send + 'static,
        Fut: Future<Output = T> + 'static,
    {
        let object = self.object.clone();
        self.client.run(move |comm| async move {
            let options = CallOptions { timeout_ms: 10_000, ..CallOptions::default() };
            f(RegistryProxy::new(comm.proxy(&object).unwrap(), OBJ).with_options(options)).await
        })
    }

    fn register(&self, node: &str, node_obj: &str) -> i32 {
        let (ni, li) = (node_info(node, node_obj), load(0.25));
        let node = node.to_owned();
        self.call(move |p| async move { p.register_node(&node, &ni, &li).await.unwrap() })
    }

    fn keep_alive(&self, node: &str, avg1: f32) -> i32 {
        let node = node.to_owned();
        self.call(move |p| async move { p.keep_alive(&node, &load(avg1)).await.unwrap() })
    }

    fn get_servers(&self, app: &str, server: &str, node: &str) -> Vec<ServerDescriptor> {
        let (a, s, n) = (app.to_owned(), server.to_owned(), node.to_owned());
        self.call(move |p| async move { p.get_servers(&a, &s, &n).await.unwrap() })
    }

    /// `updateServer` as tarsnode calls it: node name, application, server name.
    fn update_server(&self, node: &str, app: &str, server: &str, state: ServerState, pid: i32) -> i32 {
        let (n, a, s) = (node.to_owned(), app.to_owned(), server.to_owned());
        let info = ServerStateInfo { server_state: state, process_id: pid, ..ServerStateInfo::default() };
        self.call(move |p| async move { p.update_server(&n, &a, &s, &info).await.unwrap() })
    }

    fn node_template(&self, node: &str) -> (i32, String) {
        let node = node.to_owned();
        self.call(move |p| async move {
            let mut text = String::new();
            let ret = p.get_node_template(&node, &mut text).await.unwrap();
            (ret, text)
        })
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown();
            let _ = server.wait();
        }
    }
}

fn node_info(node: &str, node_obj: &str) -> NodeInfo {
    NodeInfo {
        node_name: node.into(),
        node_obj: node_obj.into(),
        endpoint_ip: "10.1.2.3".into(),
        endpoint_port: 19385,
        time_out: 60,
        data_dir: "/usr/local/app/tars/tarsnode/data".into(),
        version: "3.0.1".into(),
        ..NodeInfo::default()
    }
}

fn load(avg1: f32) -> LoadInfo {
    LoadInfo { avg1, avg5: 0.5, avg15: 0.75, avg_cpu: 3 }
}

fn node_row(db: &TestDb, node: &str) -> Option<tars_sql::Row> {
    db.query(
        "SELECT node_obj, endpoint_ip, endpoint_port, data_dir, load_avg1, last_heartbeat, last_reg_time, \
         present_state, setting_state, tars_version, template_name, label FROM t_node_info WHERE node_name = ?",
        params![node],
    )
    .into_iter()
    .next()
}

fn col(row: &tars_sql::Row, name: &str) -> String {
    row.get_by::<Option<String>>(name).unwrap().unwrap_or_default()
}

const OLD: &str = "2000-01-01 00:00:00";

// ---------------------------------------------------------------------------------------------
// Nodes

fn node_lifecycle(db: TestDb) {
    let reg = Registry::on(&db);
    assert_eq!(reg.register("10.1.2.3", ""), 0);
    let row = node_row(&db, "10.1.2.3").expect("registered node has a row");
    assert_eq!(col(&row, "present_state"), "active");
    assert_eq!(col(&row, "setting_state"), "active");
    assert_eq!(col(&row, "endpoint_ip"), "10.1.2.3");
    assert_eq!(row.get_by::<i64>("endpoint_port").unwrap(), 19385);
    assert_eq!(col(&row, "data_dir"), "/usr/local/app/tars/tarsnode/data");
    assert_eq!(col(&row, "tars_version"), "3.0.1");
    assert!(!col(&row, "last_reg_time").is_empty());

    // A heartbeat moves last_heartbeat and records the load.
    db.exec(
        "UPDATE t_node_info SET last_heartbeat = ?, present_state = 'inactive' WHERE node_name = ?",
        params![OLD, "10.1.2.3"],
    );
    assert_eq!(reg.keep_alive("10.1.2.3", 1.5), 0);
    let row = node_row(&db, "10.1.2.3").unwrap();
    assert_ne!(col(&row, "last_heartbeat"), OLD);
    assert!(col(&row, "last_heartbeat").starts_with('2'), "{}", col(&row, "last_heartbeat"));
    assert_eq!(col(&row, "present_state"), "active");
    assert_eq!(row.get_by::<f64>("load_avg1").unwrap(), 1.5);
    // The same heartbeat again within the second changes nothing (MySQL reports 0 rows) and
    // is still a heartbeat from a known node.
    assert_eq!(reg.keep_alive("10.1.2.3", 1.5), 0);

    // A node the registry has never seen is told to register.
    assert_eq!(reg.keep_alive("10.9.9.9", 0.1), 1);
    assert!(node_row(&db, "10.9.9.9").is_none(), "keepAlive must not create a node");

    // The row deleted behind the node's back: keepAlive says so, registration brings it back.
    db.exec("DELETE FROM t_node_info WHERE node_name = ?", params!["10.1.2.3"]);
    assert_eq!(reg.keep_alive("10.1.2.3", 0.5), 1);
    assert_eq!(reg.register("10.1.2.3", ""), 0);
    assert_eq!(col(&node_row(&db, "10.1.2.3").expect("row is back"), "present_state"), "active");
    assert_eq!(reg.keep_alive("10.1.2.3", 0.5), 0);
}

fn node_name_conflict(db: TestDb) {
    let reg = Registry::on(&db);
    let first = "tars.tarsnode.NodeObj@tcp -h 10.1.2.3 -p 19385";
    let second = "tars.tarsnode.NodeObj@tcp -h 10.7.7.7 -p 19385";
    assert_eq!(reg.register("node-a", first), 0);
    // Another live node object under the same name is refused and changes nothing.
    assert_eq!(reg.register("node-a", second), 1);
    assert_eq!(col(&node_row(&db, "node-a").unwrap(), "node_obj"), first);
    // The same object, or a node that sends none (modern nodes), registers again.
    assert_eq!(reg.register("node-a", first), 0);
    assert_eq!(reg.register("node-a", ""), 0);
    // Once the holder is inactive, the name is free.
    db.exec(
        "UPDATE t_node_info SET node_obj = ?, present_state = 'inactive' WHERE node_name = ?",
        params![first, "node-a"],
    );
    assert_eq!(reg.register("node-a", second), 0);
    assert_eq!(col(&node_row(&db, "node-a").unwrap(), "node_obj"), second);
}

fn registration_keeps_node_settings(db: TestDb) {
    let reg = Registry::on(&db);
    assert_eq!(reg.register("node-b", ""), 0);
    db.exec(
        "UPDATE t_node_info SET template_name = ?, label = ? WHERE node_name = ?",
        params!["tars.tarsnode.custom", "rack=3", "node-b"],
    );
    assert_eq!(reg.register("node-b", ""), 0);
    let row = node_row(&db, "node-b").unwrap();
    assert_eq!(col(&row, "template_name"), "tars.tarsnode.custom");
    assert_eq!(col(&row, "label"), "rack=3");
    assert_eq!(db.query("SELECT id FROM t_node_info WHERE node_name = ?", params!["node-b"]).len(), 1);
}

fn destroy_node(db: TestDb) {
    let reg = Registry::on(&db);
    assert_eq!(reg.register("node-c", ""), 0);
    insert_server(&db, &Srv { node: "node-c", server: "One", present: "active", ..Srv::default() });
    insert_server(&db, &Srv { node: "node-c", server: "Two", present: "activating", ..Srv::default() });
    insert_server(&db, &Srv { node: "node-d", server: "Other", present: "active", ..Srv::default() });
    assert_eq!(reg.call(|p| async move { p.destroy_node("node-c").await.unwrap() }), 0);
    assert_eq!(col(&node_row(&db, "node-c").unwrap(), "present_state"), "inactive");
    assert_eq!(server_state(&db, "node-c", "One").0, "inactive");
    assert_eq!(server_state(&db, "node-c", "Two").0, "inactive");
    assert_eq!(server_state(&db, "node-d", "Other").0, "active", "other nodes' servers are untouched");
}

// ---------------------------------------------------------------------------------------------
// Server reports

/// A `t_server_conf` row for the tests; unset fields keep their defaults.
struct Srv<'a> {
    app: &'a str,
    server: &'a str,
    node: &'a str,
    server_type: &'a str,
    template: &'a str,
    profile: Option<&'a str>,
    async_threads: i64,
    set: (&'a str, &'a str, &'a str, &'a str),
    run_type: &'a str,
    base_image_id: i64,
    present: &'a str,
}

impl Default for Srv<'_> {
    fn default() -> Self {
        Srv {
            app: "Test",
            server: "HelloServer",
            node: "10.0.0.1",
            server_type: "tars_cpp",
            template: "",
            profile: None,
            async_threads: 3,
            set: ("N", "", "", ""),
            run_type: "",
            base_image_id: 0,
            present: "inactive",
        }
    }
}

fn insert_server(db: &TestDb, s: &Srv<'_>) {
    db.exec(
        "INSERT INTO t_server_conf (application, server_name, node_name, server_type, template_name, profile, \
         async_thread_num, enable_set, set_name, set_area, set_group, run_type, base_image_id, setting_state, \
         present_state, base_path, exe_path, patch_version, patch_user) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'active', ?, ?, ?, ?, ?)",
        params![
            s.app,
            s.server,
            s.node,
            s.server_type,
            s.template,
            s.profile,
            s.async_threads,
            s.set.0,
            s.set.1,
            s.set.2,
            s.set.3,
            s.run_type,
            s.base_image_id,
            s.present,
            format!("/usr/local/app/tars/tarsnode/data/{}.{}/bin/", s.app, s.server),
            format!("/usr/local/app/tars/tarsnode/data/{}.{}/bin/{}", s.app, s.server, s.server),
            "42",
            "admin",
        ],
    );
}

fn insert_adapter(db: &TestDb, app: &str, server: &str, node: &str, obj: &str, port: i64) {
    db.exec(
        "INSERT INTO t_adapter_conf (application, server_name, node_name, adapter_name, thread_num, endpoint, \
         max_connections, allow_ip, servant, queuecap, queuetimeout, protocol, handlegroup) \
         VALUES (?, ?, ?, ?, 4, ?, 1024, '10.0.0.0', ?, 10000, 60000, 'tars', '')",
        params![
            app,
            server,
            node,
            format!("{app}.{server}.{obj}Adapter"),
            format!("tcp -h {node} -p {port} -t 60000"),
            format!("{app}.{server}.{obj}"),
        ],
    );
}

/// `(present_state, process_id, tars_version, patch_version, patch_user, patch_time)`.
fn server_state(db: &TestDb, node: &str, server: &str) -> (String, i64, String, String, String, String) {
    let rows = db.query(
        "SELECT present_state, process_id, tars_version, patch_version, patch_user, patch_time FROM t_server_conf \
         WHERE node_name = ? AND server_name = ?",
        params![node, server],
    );
    let r = rows.first().unwrap_or_else(|| panic!("no server {server} on {node}"));
    (
        col(r, "present_state"),
        r.get_by::<i64>("process_id").unwrap(),
        col(r, "tars_version"),
        col(r, "patch_version"),
        col(r, "patch_user"),
        col(r, "patch_time"),
    )
}

fn server_reports(db: TestDb) {
    let reg = Registry::on(&db);
    for server in ["A", "B", "C", "D"] {
        insert_server(&db, &Srv { server, ..Srv::default() });
    }
    insert_server(&db, &Srv { server: "A", node: "10.0.0.2", ..Srv::default() });

    // updateServer: lowercase states and the pid, only on the named node.
    assert_eq!(reg.update_server("10.0.0.1", "Test", "A", ServerState::Active, 1234), 0);
    assert_eq!(server_state(&db, "10.0.0.1", "A").0, "active");
    assert_eq!(server_state(&db, "10.0.0.1", "A").1, 1234);
    assert_eq!(server_state(&db, "10.0.0.2", "A").0, "inactive");
    assert_eq!(reg.update_server("10.0.0.1", "Test", "A", ServerState::Destroying, 1234), 0);
    assert_eq!(server_state(&db, "10.0.0.1", "A").0, "deactivating");
    // An enum value from the future is refused, not written.
    assert_eq!(reg.update_server("10.0.0.1", "Test", "A", ServerState(77), 1), -1);
    assert_eq!(server_state(&db, "10.0.0.1", "A").0, "deactivating");

    // updateServerBatch, as the keep-alive thread sends it (names in the entries).
    let entry = |server: &str, state, pid| ServerStateInfo {
        server_state: state,
        process_id: pid,
        node_name: "10.0.0.1".into(),
        application: "Test".into(),
        server_name: server.into(),
        ..ServerStateInfo::default()
    };
    let batch = vec![
        entry("A", ServerState::Inactive, 0),
        entry("B", ServerState::Activating, 200),
        entry("C", ServerState::Destroyed, 0),
        entry("D", ServerState::Active, 400),
        entry("D", ServerState(99), 999),
    ];
    assert_eq!(reg.call(move |p| async move { p.update_server_batch(&batch).await.unwrap() }), 0);
    let got: Vec<(String, i64)> = ["A", "B", "C", "D"]
        .iter()
        .map(|s| {
            let st = server_state(&db, "10.0.0.1", s);
            (st.0, st.1)
        })
        .collect();
    let want = [("inactive", 0), ("activating", 200), ("destroyed", 0), ("active", 400)];
    assert_eq!(got, want.map(|(s, p)| (s.to_owned(), p)));
    // The same report again succeeds without touching the row, so registry_timestamp (what the
    // route change poll watches) does not move; a real change moves it.
    let stamp = || {
        col(
            &db.query(
                "SELECT registry_timestamp FROM t_server_conf WHERE node_name = ? AND server_name = ?",
                params!["10.0.0.1", "D"],
            )[0],
            "registry_timestamp",
        )
    };
    db.exec("UPDATE t_server_conf SET registry_timestamp = ? WHERE server_name = ?", params![OLD, "D"]);
    assert_eq!(stamp(), OLD);
    let again = vec![entry("D", ServerState::Active, 400)];
    assert_eq!(reg.call(move |p| async move { p.update_server_batch(&again).await.unwrap() }), 0);
    assert_eq!(reg.update_server("10.0.0.1", "Test", "D", ServerState::Active, 400), 0);
    assert_eq!(stamp(), OLD, "an unchanged state must not touch the row");
    assert_eq!(reg.update_server("10.0.0.1", "Test", "D", ServerState::Active, 401), 0);
    assert_ne!(stamp(), OLD, "a new pid is a change");
    assert_eq!(reg.call(|p| async move { p.update_server_batch(&Vec::new()).await.unwrap() }), 0);
    // Beyond the cap: refused with its own code, nothing written, and the registry goes on.
    let huge: Vec<ServerStateInfo> = (0..=tars_registry::registry_obj::MAX_BATCH_ENTRIES)
        .map(|i| entry(if i == 0 { "A" } else { "nobody" }, ServerState::Activating, 7))
        .collect();
    assert_eq!(
        reg.call(move |p| async move { p.update_server_batch(&huge).await.unwrap() }),
        tars_registry::registry_obj::BATCH_TOO_LARGE
    );
    assert_eq!(server_state(&db, "10.0.0.1", "A").0, "inactive", "a refused batch writes nothing");
    let at_cap: Vec<ServerStateInfo> = (0..tars_registry::registry_obj::MAX_BATCH_ENTRIES)
        .map(|i| if i == 0 { entry("A", ServerState::Activating, 7) } else { entry("D", ServerState(99), 1) })
        .collect();
    assert_eq!(reg.call(move |p| async move { p.update_server_batch(&at_cap).await.unwrap() }), 0);
    let a = server_state(&db, "10.0.0.1", "A");
    assert_eq!((a.0.as_str(), a.1), ("activating", 7), "at the cap the valid entries are written");

    // reportVersion and updatePatchResult.
    assert_eq!(reg.call(|p| async move { p.report_version("Test", "B", "10.0.0.1", "3.0.19").await.unwrap() }), 0);
    assert_eq!(server_state(&db, "10.0.0.1", "B").2, "3.0.19");
    assert_eq!(server_state(&db, "10.0.0.1", "C").2, "");
    let result = PatchResult {
        s_application: "Test".into(),
        s_server_name: "C".into(),
        s_node_name: "10.0.0.1".into(),
        s_version: "77".into(),
        s_user_name: "alice".into(),
    };
    assert!(server_state(&db, "10.0.0.1", "C").5.is_empty());
    assert_eq!(reg.call(move |p| async move { p.update_patch_result(&result).await.unwrap() }), 0);
    let c = server_state(&db, "10.0.0.1", "C");
    assert_eq!((c.3.as_str(), c.4.as_str()), ("77", "alice"));
    assert!(c.5.starts_with('2'), "patch_time set: {:?}", c.5);
}

// ---------------------------------------------------------------------------------------------
// getServers and templates

const DEFAULT_TEMPLATE: &str = "<tars>\n  <application>\n    <client>\n      locator=${locator}\n      \
     sync-invoke-timeout=3000\n    </client>\n    <server>\n      logLevel=DEBUG\n      logsize=10M\n      \
     deactivating-timeout=3000\n    </server>\n  </application>\n</tars>\n";
const MID_TEMPLATE: &str =
    "<tars>\n<application>\n<server>\nlogsize=20M\nlognum=7\n</server>\n</application>\n<mid>\nmidkey=1\n</mid>\n</tars>\n";
const CHILD_TEMPLATE: &str = "<tars>\n<application>\n<server>\nlogLevel=INFO\n</server>\n</application>\n</tars>\n";
const SERVER_PROFILE: &str = "<tars>\n<application>\n<client>\nasyncthread=5\n</client>\n<server>\nlogLevel=ERROR\n\
     custom=yes\n</server>\n</application>\n</tars>\n";

fn insert_template(db: &TestDb, name: &str, parent: &str, profile: &str) {
    db.exec(
        "INSERT INTO t_profile_template (template_name, parents_name, profile) VALUES (?, ?, ?)",
        params![name, parent, profile],
    );
}

/// tars.default (its own parent, as installed) ← tars.mid ← tars.child.
fn insert_templates(db: &TestDb) {
    insert_template(db, "tars.default", "tars.default", DEFAULT_TEMPLATE);
    insert_template(db, "tars.mid", "tars.default", MID_TEMPLATE);
    insert_template(db, "tars.child", "tars.mid", CHILD_TEMPLATE);
}

fn get_servers(db: TestDb) {
    insert_templates(&db);
    db.exec(
        "INSERT INTO t_base_image (image, registryId, sha) VALUES (?, 1, ?)",
        params!["docker.io/tarscloud/base:3", "sha256:feed"],
    );
    let image_id: i64 = db.query("SELECT id FROM t_base_image", params![])[0].get(0).unwrap();
    insert_server(
        &db,
        &Srv {
            template: "tars.child",
            profile: Some(SERVER_PROFILE),
            async_threads: 1,
            set: ("Y", "s", "sz", "1"),
            run_type: "container",
            base_image_id: image_id,
            present: "active",
            ..Srv::default()
        },
    );
    insert_adapter(&db, "Test", "HelloServer", "10.0.0.1", "HelloObj", 20000);
    insert_adapter(&db, "Test", "HelloServer", "10.0.0.1", "FooObj", 20001);
    insert_server(&db, &Srv { server: "Child", template: "tars.child", async_threads: 8, ..Srv::default() });
    insert_server(
        &db,
        &Srv { server: "Js", server_type: "tars_nodejs", template: "tars.mid", async_threads: 0, ..Srv::default() },
    );
    insert_server(&db, &Srv { server: "Bare", template: "no.such.template", async_threads: 1, ..Srv::default() });
    insert_server(&db, &Srv { app: "Other", server: "Broken", profile: Some("<tars>\n</nope>\n"), ..Srv::default() });
    insert_server(&db, &Srv { server: "Elsewhere", node: "10.0.0.2", ..Srv::default() });
    insert_adapter(&db, "Test", "Elsewhere", "10.0.0.2", "ElseObj", 20002);

    let reg = Registry::on(&db);
    let all = reg.get_servers("", "", "10.0.0.1");
    let names: Vec<&str> = all.iter().map(|d| d.server_name.as_str()).collect();
    assert_eq!(names, ["Bare", "Child", "HelloServer", "Js"], "the unparseable profile's server is left out");

    let hello = reg.get_servers("Test", "HelloServer", "10.0.0.1");
    assert_eq!(hello.len(), 1);
    let d = &hello[0];
    assert_eq!((d.application.as_str(), d.node_name.as_str()), ("Test", "10.0.0.1"));
    assert_eq!((d.setting_state.as_str(), d.present_state.as_str()), ("active", "active"));
    assert_eq!(d.exe_path, "/usr/local/app/tars/tarsnode/data/Test.HelloServer/bin/HelloServer");
    assert_eq!((d.patch_version.as_str(), d.patch_user.as_str(), d.patch_time.as_str()), ("42", "admin", ""));
    assert_eq!(d.server_type, "tars_cpp");
    assert_eq!(d.set_id, "s.sz.1");
    assert_eq!(d.async_thread_num, 5, "the server profile's asyncthread wins");
    assert_eq!(
        (d.run_type.as_str(), d.base_image.as_str(), d.sha.as_str()),
        ("container", "docker.io/tarscloud/base:3", "sha256:feed")
    );
    assert_eq!(d.base_image_id, image_id.to_string());

    // Adapters, keyed by name.
    let keys: Vec<&str> = d.adapters.keys().map(String::as_str).collect();
    assert_eq!(keys, ["Test.HelloServer.FooObjAdapter", "Test.HelloServer.HelloObjAdapter"]);
    let a = &d.adapters["Test.HelloServer.HelloObjAdapter"];
    assert_eq!(a.adapter_name, "Test.HelloServer.HelloObjAdapter");
    assert_eq!(a.endpoint, "tcp -h 10.0.0.1 -p 20000 -t 60000");
    assert_eq!(a.servant, "Test.HelloServer.HelloObj");
    assert_eq!((a.thread_num.as_str(), a.max_connections, a.queuecap, a.queuetimeout), ("4", 1024, 10000, 60000));
    assert_eq!((a.allow_ip.as_str(), a.protocol.as_str()), ("10.0.0.0", "tars"));

    // The profile: three template levels merged child-first, then the server's own profile.
    let p = Config::parse(&d.profile).unwrap();
    assert_eq!(p.get("/tars/application/server<logLevel>"), Some("ERROR"), "server profile over every template");
    assert_eq!(p.get("/tars/application/server<custom>"), Some("yes"));
    assert_eq!(p.get("/tars/application/server<logsize>"), Some("20M"), "tars.mid over tars.default");
    assert_eq!(p.get("/tars/application/server<lognum>"), Some("7"));
    assert_eq!(p.get("/tars/mid<midkey>"), Some("1"));
    assert_eq!(p.get("/tars/application/server<deactivating-timeout>"), Some("3000"), "tars.default's keys stay");
    assert_eq!(p.get("/tars/application/client<locator>"), Some("${locator}"));
    assert!(d.profile.contains("logLevel=ERROR") && d.profile.contains("sync-invoke-timeout=3000"), "{}", d.profile);

    let child = &all[1];
    assert_eq!(child.server_name, "Child");
    let p = Config::parse(&child.profile).unwrap();
    assert_eq!(p.get("/tars/application/server<logLevel>"), Some("INFO"), "tars.child over its parents");
    assert_eq!(p.get("/tars/application/server<logsize>"), Some("20M"));
    assert_eq!(p.get("/tars/application/server<deactivating-timeout>"), Some("3000"));
    assert_eq!(child.async_thread_num, 8);
    assert!(child.adapters.is_empty());
    assert_eq!(child.set_id, "");
    assert_eq!((child.base_image.as_str(), child.base_image_id.as_str()), ("", "0"));

    let js = &all[3];
    assert_eq!((js.server_type.as_str(), js.async_thread_num), ("tars_nodejs", 0));
    assert_eq!(Config::parse(&js.profile).unwrap().get("/tars/application/server<logLevel>"), Some("DEBUG"));
    let bare = &all[0];
    assert_eq!((bare.profile.as_str(), bare.async_thread_num), ("", 3), "a missing template gives an empty profile");

    // Filters.
    let test_app: Vec<String> = reg.get_servers("Test", "", "10.0.0.1").into_iter().map(|d| d.server_name).collect();
    assert_eq!(test_app, ["Bare", "Child", "HelloServer", "Js"]);
    let elsewhere = reg.get_servers("", "", "10.0.0.2");
    assert_eq!(elsewhere.len(), 1);
    assert_eq!(elsewhere[0].adapters.keys().collect::<Vec<_>>(), ["Test.Elsewhere.ElseObjAdapter"]);
    assert!(reg.get_servers("Test", "Nope", "10.0.0.1").is_empty());
    assert!(reg.get_servers("", "", "10.0.0.99").is_empty());
}

fn node_template(db: TestDb) {
    insert_templates(&db);
    insert_template(
        &db,
        "tars.tarsnode",
        "tars.default",
        "<tars>\n<application>\n<server>\napp=tars\nserver=tarsnode\n</server>\n</application>\n</tars>\n",
    );
    let reg = Registry::on(&db);
    // No row for the node: the configured default (tars.tarsnode), resolved through tars.default.
    let (ret, text) = reg.node_template("10.5.5.5");
    assert_eq!(ret, 0);
    let c = Config::parse(&text).unwrap();
    assert_eq!(c.get("/tars/application/server<server>"), Some("tarsnode"));
    assert_eq!(c.get("/tars/application/server<logLevel>"), Some("DEBUG"), "inherited from tars.default");
    // A registered node without a template name: the default too.
    assert_eq!(reg.register("10.5.5.5", ""), 0);
    assert_eq!(reg.node_template("10.5.5.5").1, text);
    // A node naming its own template gets that one, with its parents.
    db.exec("UPDATE t_node_info SET template_name = ? WHERE node_name = ?", params!["tars.child", "10.5.5.5"]);
    let (ret, text) = reg.node_template("10.5.5.5");
    assert_eq!(ret, 0);
    let c = Config::parse(&text).unwrap();
    assert_eq!(c.get("/tars/application/server<logLevel>"), Some("INFO"));
    assert_eq!(c.get("/tars/application/server<lognum>"), Some("7"));
    assert_eq!(c.get("/tars/application/server<server>"), None);
    // A default naming no template: empty, which tarsnode reports as an error.
    let other = Registry::start(
        db.store.clone(),
        IoMode::EpollEt,
        RegistryConfig { default_node_template: "no.such".into(), ..RegistryConfig::default() },
    );
    assert_eq!(other.node_template("10.6.6.6"), (0, String::new()));
}

// ---------------------------------------------------------------------------------------------
// Lookups

fn lookups(db: TestDb) {
    let reg = Registry::on(&db);
    let ip = reg.call(|p| async move {
        let mut ip = String::new();
        (p.get_client_ip(&mut ip).await.unwrap(), ip)
    });
    assert_eq!(ip, (0, "127.0.0.1".to_owned()));

    let key = || {
        reg.call(|p| async move {
            let mut k = FrameworkKey::default();
            (p.get_framework_key(&mut k).await.unwrap(), k)
        })
    };
    assert_eq!(key(), (0, FrameworkKey::default()), "no key yet: empty");
    db.exec("INSERT INTO t_framework_key (cuid, pri_key) VALUES (?, ?)", params!["cuid-1", "-----BEGIN KEY-----"]);
    db.exec("INSERT INTO t_framework_key (cuid, pri_key) VALUES (?, ?)", params!["cuid-2", "second"]);
    assert_eq!(key(), (0, FrameworkKey { cuid: "cuid-1".into(), pri_key: "-----BEGIN KEY-----".into() }));

    let registries = || {
        reg.call(|p| async move {
            let mut v = Vec::new();
            (p.get_docker_registry(&mut v).await.unwrap(), v)
        })
    };
    assert_eq!(registries(), (0, Vec::new()));
    db.exec(
        "INSERT INTO t_docker_registry (registry, username, password) VALUES (?, ?, ?)",
        params!["hub.example", "u1", "p1"],
    );
    db.exec(
        "INSERT INTO t_docker_registry (registry, username, password) VALUES (?, ?, ?)",
        params!["reg.example", "", ""],
    );
    let ids: Vec<i64> =
        db.query("SELECT id FROM t_docker_registry ORDER BY id", params![]).iter().map(|r| r.get(0).unwrap()).collect();
    db.exec(
        "INSERT INTO t_base_image (image, registryId, sha) VALUES (?, ?, ?)",
        params!["hub.example/a:1", ids[0], "sha-a"],
    );
    db.exec(
        "INSERT INTO t_base_image (image, registryId, sha) VALUES (?, ?, ?)",
        params!["hub.example/b:2", ids[0], ""],
    );
    db.exec("INSERT INTO t_base_image (image, registryId, sha) VALUES (?, ?, ?)", params!["orphan:1", 9999, "x"]);
    let (ret, got) = registries();
    assert_eq!(ret, 0);
    assert_eq!(got.len(), 2);
    let hub: &DockerRegistry = &got[0];
    assert_eq!(hub.s_id, ids[0].to_string());
    assert_eq!(
        (hub.s_registry.as_str(), hub.s_user_name.as_str(), hub.s_password.as_str()),
        ("hub.example", "u1", "p1")
    );
    assert!(!hub.b_succ);
    let images: Vec<(&str, &str, &str)> =
        hub.base_images.iter().map(|i| (i.image.as_str(), i.registry_id.as_str(), i.sha.as_str())).collect();
    let rid = ids[0].to_string();
    assert_eq!(images, [("hub.example/a:1", rid.as_str(), "sha-a"), ("hub.example/b:2", rid.as_str(), "")]);
    assert!(hub.base_images.iter().all(|i| !i.id.is_empty()));
    assert_eq!(got[1].s_registry, "reg.example");
    assert!(got[1].base_images.is_empty());

    assert_eq!(reg.call(|p| async move { p.docker_pull("1").await.unwrap() }), -1, "we do not pull images");
    let rn = ReportNode { node_name: "10.1.1.1".into(), sid: "abc".into() };
    assert_eq!(reg.call(move |p| async move { p.report_node(&rn).await.unwrap() }), 0);
}

on_both_backends! {
    node_lifecycle => super::node_lifecycle;
    node_name_conflict => super::node_name_conflict;
    registration_keeps_node_settings => super::registration_keeps_node_settings;
    destroy_node => super::destroy_node;
    server_reports => super::server_reports;
    get_servers => super::get_servers;
    node_template => super::node_template;
    lookups => super::lookups;
}

// ---------------------------------------------------------------------------------------------
// Database away; every IO driver

/// With the database unreachable every call answers at once with its error code; keepAlive
/// does not claim the node is unknown, and getServers fails rather than saying "no servers".
#[test]
fn database_away() {
    let store = Store::open("mysql://tars:nope@127.0.0.1:1/db_tars").unwrap();
    let reg = Registry::start(store, IoMode::EpollEt, RegistryConfig::default());
    let started = std::time::Instant::now();
    assert_eq!(reg.register("n", ""), 2);
    assert_eq!(reg.keep_alive("n", 0.1), -1);
    assert_eq!(reg.update_server("n", "A", "B", ServerState::Active, 1), -1);
    assert_eq!(reg.node_template("n").0, -1);
    let servers = reg.call(|p| async move { p.get_servers("", "", "n").await });
    assert!(matches!(servers, Err(CallError::Server { code: -99, .. })), "{servers:?}");
    assert!(started.elapsed() < Duration::from_secs(10), "answers without waiting for timeouts");
}

/// A node's start-up conversation on one IO driver: client IP, registration, heartbeat, its
/// servers, a state report.
fn node_conversation(io: IoMode) {
    let db = common::sqlite(&format!("conversation_{io}"));
    insert_templates(&db);
    insert_server(&db, &Srv { template: "tars.child", ..Srv::default() });
    insert_adapter(&db, "Test", "HelloServer", "10.0.0.1", "HelloObj", 20000);
    let reg = Registry::start(db.store.clone(), io, RegistryConfig::default());
    let ip = reg.call(|p| async move {
        let mut ip = String::new();
        p.get_client_ip(&mut ip).await.unwrap();
        ip
    });
    assert_eq!(ip, "127.0.0.1", "on {io}");
    assert_eq!(reg.register("10.0.0.1", ""), 0, "on {io}");
    assert_eq!(reg.keep_alive("10.0.0.1", 0.3), 0, "on {io}");
    let servers = reg.get_servers("", "", "10.0.0.1");
    assert_eq!(servers.len(), 1, "on {io}");
    assert_eq!(servers[0].adapters.len(), 1, "on {io}");
    assert!(servers[0].profile.contains("logLevel=INFO"), "on {io}: {}", servers[0].profile);
    assert_eq!(reg.update_server("10.0.0.1", "Test", "HelloServer", ServerState::Active, 77), 0, "on {io}");
    assert_eq!(server_state(&db, "10.0.0.1", "HelloServer").0, "active", "on {io}");
}

tars_core_net::on_every_driver! {
    conversation => node_conversation;
}
