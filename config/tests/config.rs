//! tarsconfig end to end: rows written as TarsWeb writes them into a real `db_tars` (MariaDB
//! and SQLite), `ConfigObj` served on real sockets on every IO driver, called through the
//! generated `ConfigProxy`.
//!
//! - The concatenation order of upstream (level-2 references, level 2, level-3 references,
//!   level 3), set variants of referenced app files, app files, the lists, the invalid set
//!   division, checkConfig's parse error: asserted against hand-written expectations, both
//!   from the cache and with the cache off (every call reading the database).
//! - A changed file is answered within a second, also a second edit in the same second.
//! - The limiter answers the twelfth load in a minute with 429.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use tars_config::ConfigService;
use tars_core_net::app::{Application, Running};
use tars_core_net::client::config::ClientConfig;
use tars_core_net::client::BlockingClient;
use tars_core_net::rt::IoMode;
use tars_proto::config::Config;
use tars_proto::rpc::CallOptions;
use tars_protocol::tars::{ConfigInfo, ConfigProxy, GetConfigListInfo};
use tars_sql::Value;
use tars_testkit::db::TestDb;

const OBJ: &str = "tars.tarsconfig.ConfigObj";

fn start(db: &TestDb, io: IoMode, cache: &str) -> Running {
    let text = format!(
        "<tars>\n<application>\n<server>\napp=tars\nserver=tarsconfig\nlocal=tcp -h 127.0.0.1 -p 0 -t 10000\n\
         <{OBJ}Adapter>\nendpoint=tcp -h 127.0.0.1 -p 0 -t 60000\nservant={OBJ}\n</{OBJ}Adapter>\n\
         </server>\n</application>\n<cache>\n{cache}\n</cache>\n</tars>\n"
    );
    Application::new(Config::parse(&text).unwrap())
        .unwrap()
        .io(io)
        .shards(2)
        .service(ConfigService::new(Some(db.store.clone())))
        .start()
        .unwrap()
}

/// A client of one server's ConfigObj, calling as node `node` (the `node_name` context TarsCpp
/// servers send).
struct Client {
    client: BlockingClient,
    object: String,
    node: String,
}

impl Client {
    fn new(running: &Running, io: IoMode, node: &str) -> Client {
        let port = running.server().addr(&format!("{OBJ}Adapter")).unwrap().port();
        Client {
            client: BlockingClient::start(ClientConfig::default(), io).unwrap(),
            object: format!("{OBJ}@tcp -h 127.0.0.1 -p {port} -t 10000"),
            node: node.to_owned(),
        }
    }

    fn call<T, F>(&self, f: impl FnOnce(ConfigProxy<tars_core_net::client::ObjectProxy>) -> F + Send + 'static) -> T
    where
        T: Send + 'static,
        F: std::future::Future<Output = T> + 'static,
    {
        let (object, node) = (self.object.clone(), self.node.clone());
        self.client.run(move |comm| async move {
            let mut options = CallOptions { timeout_ms: 5000, ..CallOptions::default() };
            if !node.is_empty() {
                options.context.insert("node_name".into(), node);
            }
            f(ConfigProxy::new(comm.proxy(&object).unwrap(), OBJ).with_options(options)).await
        })
    }

    fn load(&self, app: &str, server: &str, file: &str) -> (i32, String) {
        let (app, server, file) = (app.to_owned(), server.to_owned(), file.to_owned());
        self.call(move |p| async move {
            let mut out = String::new();
            let ret = p.load_config(&app, &server, &file, &mut out).await.unwrap();
            (ret, out)
        })
    }

    fn load_by_host(&self, app_server: &str, file: &str, host: &str) -> (i32, String) {
        let (a, f, h) = (app_server.to_owned(), file.to_owned(), host.to_owned());
        self.call(move |p| async move {
            let mut out = String::new();
            let ret = p.load_config_by_host(&a, &f, &h, &mut out).await.unwrap();
            (ret, out)
        })
    }

    fn load_by_info(&self, info: ConfigInfo) -> (i32, String) {
        self.call(move |p| async move {
            let mut out = String::new();
            let ret = p.load_config_by_info(&info, &mut out).await.unwrap();
            (ret, out)
        })
    }

    fn check(&self, app_server: &str, file: &str, host: &str) -> (i32, String) {
        let (a, f, h) = (app_server.to_owned(), file.to_owned(), host.to_owned());
        self.call(move |p| async move {
            let mut out = String::new();
            let ret = p.check_config(&a, &f, &h, &mut out).await.unwrap();
            (ret, out)
        })
    }

    fn list(&self, app: &str, server: &str) -> (i32, Vec<String>) {
        let (app, server) = (app.to_owned(), server.to_owned());
        self.call(move |p| async move {
            let mut out = Vec::new();
            let ret = p.list_config(&app, &server, &mut out).await.unwrap();
            (ret, out)
        })
    }

    fn list_by_info(&self, info: ConfigInfo) -> (i32, Vec<String>) {
        self.call(move |p| async move {
            let mut out = Vec::new();
            let ret = p.list_config_by_info(&info, &mut out).await.unwrap();
            (ret, out)
        })
    }

    fn list_all(&self, info: GetConfigListInfo) -> (i32, Vec<String>) {
        self.call(move |p| async move {
            let mut out = Vec::new();
            let ret = p.list_all_config_by_info(&info, &mut out).await.unwrap();
            (ret, out)
        })
    }
}

/// Inserts a `t_config_files` row as TarsWeb does and returns its id.
fn file(db: &TestDb, server_name: &str, filename: &str, level: i32, host: &str, set: [&str; 3], config: &str) -> i64 {
    db.exec(
        "INSERT INTO t_config_files (server_name, set_name, set_area, set_group, host, filename, config, posttime, \
         lastuser, level, config_flag) VALUES (?, ?, ?, ?, ?, ?, ?, '2026-12-07 10:00:00', 'admin', ?, 0)",
        vec![
            server_name.into(),
            set[0].into(),
            set[1].into(),
            set[2].into(),
            host.into(),
            filename.into(),
            config.into(),
            Value::Int(i64::from(level)),
        ],
    );
    let rows = db.query(
        "SELECT id FROM t_config_files WHERE server_name = ? AND filename = ? AND level = ? AND host = ? AND set_name = ?",
        vec![server_name.into(), filename.into(), Value::Int(i64::from(level)), host.into(), set[0].into()],
    );
    rows[0].get_by::<i64>("id").unwrap()
}

fn reference(db: &TestDb, config_id: i64, reference_id: i64) {
    db.exec(
        "INSERT INTO t_config_references (config_id, reference_id) VALUES (?, ?)",
        vec![Value::Int(config_id), Value::Int(reference_id)],
    );
}

const NONE: [&str; 3] = ["", "", ""];
const SET: [&str; 3] = ["sz", "a", "1"];

/// The fixture: app `Test` with two app files (one with a variant for set sz.a.1), server
/// `Test.Hello` with `hello.conf` at level 2 (referencing both app files) and at level 3 on
/// node 10.0.0.1 (referencing the second one), a set-level variant of the server file, and a
/// file on another node.
fn fixture(db: &TestDb) {
    let app1 = file(db, "Test", "common.conf", 1, "", NONE, "<common>\nk=app1\n</common>");
    let app2 = file(db, "Test", "db.conf", 1, "", NONE, "<db>\nhost=app2\n</db>");
    file(db, "Test", "db.conf", 1, "", SET, "<db>\nhost=app2-set\n</db>");
    let server = file(db, "Test.Hello", "hello.conf", 2, "", NONE, "<hello>\nlevel=server\n</hello>");
    reference(db, server, app2);
    reference(db, server, app1);
    let node = file(db, "Test.Hello", "hello.conf", 3, "10.0.0.1", NONE, "<hello>\nlevel=node\n</hello>");
    reference(db, node, app2);
    file(db, "Test.Hello", "hello.conf", 3, "10.0.0.2", NONE, "");
    file(db, "Test.Hello", "extra.conf", 3, "10.0.0.1", NONE, "");
    let set_server = file(db, "Test.Hello", "hello.conf", 2, "", SET, "<hello>\nlevel=set-server\n</hello>");
    reference(db, set_server, app2);
    file(db, "Test.Hello", "broken.conf", 2, "", NONE, "<a>\nx=1\n</b>");
}

const SEP: &str = "\r\n\r\n";

fn join(parts: &[&str]) -> String {
    parts.join(SEP)
}

fn info(server: &str, file: &str, host: &str, set: &str) -> ConfigInfo {
    ConfigInfo {
        appname: "Test".into(),
        servername: server.into(),
        filename: file.into(),
        b_app_only: false,
        host: host.into(),
        setdivision: set.into(),
    }
}

/// Every method over the fixture, as upstream answers it.
fn answers_as_upstream(db: TestDb, io: IoMode, cache: &str) {
    fixture(&db);
    let running = start(&db, io, cache);
    let c = Client::new(&running, io, "10.0.0.1");
    let (app1, app2, app2_set) =
        ("<common>\nk=app1\n</common>", "<db>\nhost=app2\n</db>", "<db>\nhost=app2-set\n</db>");
    let (server, node) = ("<hello>\nlevel=server\n</hello>", "<hello>\nlevel=node\n</hello>");

    // References in reference_id order, then the server file, then the node's references and file.
    assert_eq!(c.load("Test", "Hello", "hello.conf"), (0, join(&[app1, app2, server, app2, node])));
    // Another node: no level-3 text of its own (its row is empty).
    assert_eq!(c.load_by_host("Test.Hello", "hello.conf", "10.0.0.2"), (0, join(&[app1, app2, server])));
    // The app's file, without and with a set variant.
    assert_eq!(c.load("Test", "", "db.conf"), (0, app2.to_owned()));
    let mut app_info = info("", "db.conf", "", "sz.a.1");
    app_info.b_app_only = true;
    assert_eq!(c.load_by_info(app_info), (0, join(&[app2, app2_set])));
    // By info in a set: the set's server row, its reference joined with the set variant.
    assert_eq!(
        c.load_by_info(info("Hello", "hello.conf", "", "sz.a.1")),
        (0, join(&[app2, app2_set, "<hello>\nlevel=set-server\n</hello>"]))
    );
    // By info without a set: as by host, with the caller's node.
    assert_eq!(c.load_by_info(info("Hello", "hello.conf", "", "")), (0, join(&[app1, app2, server, app2, node])));
    assert_eq!(c.load_by_info(info("Hello", "hello.conf", "", "sz.a")).0, -1);
    // A file nobody wrote: 0 and empty, as upstream.
    assert_eq!(c.load("Test", "Hello", "missing.conf"), (0, String::new()));

    // Lists: level 3 on the caller's node, outside sets.
    assert_eq!(c.list("Test", "Hello"), (0, vec!["hello.conf".to_owned(), "extra.conf".to_owned()]));
    assert_eq!(c.list_by_info(info("Hello", "", "10.0.0.2", "")), (0, vec!["hello.conf".to_owned()]));
    assert_eq!(c.list_by_info(info("Hello", "", "", "sz")).0, -1);
    let all = |app_only: bool, host: &str, set: &str| GetConfigListInfo {
        appname: "Test".into(),
        servername: "Hello".into(),
        b_app_only: app_only,
        host: host.into(),
        setdivision: set.into(),
        containername: String::new(),
    };
    assert_eq!(c.list_all(all(true, "", "")), (0, vec!["common.conf".to_owned(), "db.conf".to_owned()]));
    assert_eq!(
        c.list_all(all(false, "", "")),
        (0, vec!["broken.conf".to_owned(), "extra.conf".to_owned(), "hello.conf".to_owned()])
    );
    assert_eq!(c.list_all(all(false, "10.0.0.2", "")), (0, vec!["hello.conf".to_owned()]));
    assert_eq!(c.list_all(all(false, "", "sz.a.1")), (0, vec!["hello.conf".to_owned()]));

    // checkConfig: a good file passes, a bad one answers -1 with the parser's message.
    assert_eq!(c.check("Test.Hello", "hello.conf", "10.0.0.1").0, 0);
    let (ret, msg) = c.check("Test.Hello", "broken.conf", "10.0.0.1");
    assert_eq!(ret, -1);
    assert!(!msg.is_empty() && msg != "<a>\nx=1\n</b>", "the parse error replaces the text: {msg}");

    // Without a node_name context the caller is its IP: 127.0.0.1 has no node files.
    let anonymous = Client::new(&running, io, "");
    assert_eq!(anonymous.list("Test", "Hello"), (0, vec![]));
    running.shutdown();
    running.wait().unwrap();
}

/// Edits as TarsWeb makes them: the file changes, posttime is set to the current second.
fn edit(db: &TestDb, id: i64, config: &str) {
    db.exec(
        "UPDATE t_config_files SET config = ?, posttime = '2026-12-07 10:00:01' WHERE id = ?",
        vec![config.into(), Value::Int(id)],
    );
}

fn changes_are_seen_within_a_second(db: TestDb, io: IoMode) {
    let id = file(&db, "Test.Hello", "live.conf", 2, "", NONE, "<v>\nn=1\n</v>");
    let running = start(&db, io, "pollMs=200");
    let c = Client::new(&running, io, "10.0.0.1");
    assert_eq!(c.load_by_host("Test.Hello", "live.conf", "x").1, "<v>\nn=1\n</v>");
    let wait_for = |want: &str| {
        let t0 = Instant::now();
        while c.load_by_host("Test.Hello", "live.conf", "x").1 != want {
            assert!(t0.elapsed() < Duration::from_secs(5), "{want:?} not served after 5 s");
            std::thread::sleep(Duration::from_millis(20));
        }
        t0.elapsed()
    };
    edit(&db, id, "<v>\nn=2\n</v>");
    let first = wait_for("<v>\nn=2\n</v>");
    // The same second and the same length: the signature cannot tell, the re-read does.
    edit(&db, id, "<v>\nn=3\n</v>");
    let second = wait_for("<v>\nn=3\n</v>");
    assert!(first < Duration::from_secs(1) && second < Duration::from_secs(1), "{first:?} {second:?}");
    // A new file and a deleted one.
    file(&db, "Test.Hello", "new.conf", 2, "", NONE, "<new/>");
    let t0 = Instant::now();
    while c.load_by_host("Test.Hello", "new.conf", "x").1.is_empty() {
        assert!(t0.elapsed() < Duration::from_secs(1), "a new file not served within 1 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    db.exec("DELETE FROM t_config_files WHERE id = ?", vec![Value::Int(id)]);
    wait_for("");
    running.shutdown();
    running.wait().unwrap();
}

fn the_twelfth_load_in_a_minute_is_refused(db: TestDb, io: IoMode) {
    file(&db, "Test.Hello", "a.conf", 2, "", NONE, "<a/>");
    let running = start(&db, io, "");
    let c = Client::new(&running, io, "10.0.0.1");
    let rets: Vec<i32> = (0..12).map(|_| c.load("Test", "Hello", "a.conf").0).collect();
    assert_eq!(rets[..11], [0; 11]);
    assert_eq!(rets[11], 429);
    // Another node, and loadConfigByHost (never limited upstream), are still answered.
    assert_eq!(Client::new(&running, io, "10.0.0.9").load("Test", "Hello", "a.conf").0, 0);
    assert_eq!(c.load_by_host("Test.Hello", "a.conf", "10.0.0.1").0, 0);
    running.shutdown();
    running.wait().unwrap();
}

macro_rules! on_both {
    ($($name:ident => $body:expr;)*) => {
        $(mod $name {
            use super::*;
            fn mysql(io: IoMode) { $body(TestDb::mysql("tarscfg", stringify!($name)), io) }
            fn sqlite(io: IoMode) { $body(TestDb::sqlite(stringify!($name)), io) }
            mod on_mysql { use super::*; tars_testkit::on_every_driver! { run => mysql; } }
            mod on_sqlite { use super::*; tars_testkit::on_every_driver! { run => sqlite; } }
        })*
    };
}

on_both! {
    cached => |db, io| answers_as_upstream(db, io, "");
    uncached => |db, io| answers_as_upstream(db, io, "maxMB=0");
    live => changes_are_seen_within_a_second;
    limit => the_twelfth_load_in_a_minute_is_refused;
}

/// A table over the budget is not held; every call reads the database and answers the same.
#[test]
fn a_table_over_the_budget_is_read_directly() {
    let db = TestDb::sqlite("budget");
    fixture(&db);
    let big = "x".repeat(1 << 20);
    file(&db, "Test.Big", "big.conf", 2, "", NONE, &big);
    let running = start(&db, IoMode::EpollEt, "maxMB=1");
    let shared = running.service::<ConfigService>().unwrap().cache().unwrap().clone();
    assert!(shared.describe().contains("over the budget"), "{}", shared.describe());
    let c = Client::new(&running, IoMode::EpollEt, "10.0.0.1");
    assert_eq!(c.load_by_host("Test.Big", "big.conf", "h"), (0, big));
    assert_eq!(c.list("Test", "Hello").1.len(), 2);
    running.shutdown();
    running.wait().unwrap();
}

/// The official Node client (`@tars/config`, as a Node.js TARS server uses it) loads its
/// files from our ConfigObj: the list, every file, its server file (by info, with its
/// `localip` as the host) and an app file, exactly as upstream would concatenate them.
fn the_official_node_client_loads_its_files(io: IoMode) {
    let db = TestDb::sqlite("node");
    let common = file(&db, "NodeApp", "common.conf", 1, "", NONE, "<c>\nx=1\n</c>");
    let server = file(&db, "NodeApp.NodeServer", "NodeServer.conf", 2, "", NONE, "<a>\nk=server\n</a>");
    reference(&db, server, common);
    file(&db, "NodeApp.NodeServer", "NodeServer.conf", 3, "10.0.0.7", NONE, "<a>\nk=node\nnodeonly=y\n</a>");
    file(&db, "NodeApp.NodeServer", "other.json", 2, "", NONE, "{\"j\": 1}");
    let running = start(&db, io, "");
    let port = running.server().addr(&format!("{OBJ}Adapter")).unwrap().port();
    let dir = tars_testkit::process::TempDir::new("node-config").unwrap();
    let conf = dir.0.join("NodeServer.config.conf");
    std::fs::write(
        &conf,
        format!(
            "<tars>\n<application>\n<server>\napp=NodeApp\nserver=NodeServer\nlocalip=10.0.0.7\n\
             config={OBJ}@tcp -h 127.0.0.1 -p {port} -t 10000\n</server>\n<client>\nsync-invoke-timeout=5000\n\
             </client>\n</application>\n</tars>\n"
        ),
    )
    .unwrap();
    let out =
        tars_testkit::node::run_script("config_client.js", &[conf.to_str().unwrap(), "common.conf"], &["@tars/config"]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["list"], serde_json::json!(["NodeServer.conf", "other.json"]), "{v}");
    let server_text = join(&["<c>\nx=1\n</c>", "<a>\nk=server\n</a>", "<a>\nk=node\nnodeonly=y\n</a>"]);
    assert_eq!(v["server"], serde_json::json!(server_text), "{v}");
    assert_eq!(v["all"][0]["filename"], "NodeServer.conf");
    assert_eq!(v["all"][0]["content"], serde_json::json!(server_text));
    assert_eq!(v["all"][1]["content"], "{\"j\": 1}");
    assert_eq!(v["app"], "<c>\nx=1\n</c>");
    // The package's own parser reads the concatenation with the node's values last.
    assert_eq!(v["serverParsed"]["a"]["nodeonly"], "y", "{v}");
    assert_eq!(v["serverParsed"]["c"]["x"], "1", "{v}");
    running.shutdown();
    running.wait().unwrap();
}

tars_testkit::on_every_driver! { node_client => the_official_node_client_loads_its_files; }

/// A server built with our SDK fetches its file at start (`Application::add_config`): the
/// node's level-3 text is included because the call carries its `nodename` in the
/// `node_name` context, as TarsCpp's do, although it connects from 127.0.0.1.
fn our_sdk_fetches_its_node_file(io: IoMode) {
    let db = TestDb::sqlite("sdk");
    fixture(&db);
    let running = start(&db, io, "");
    let port = running.server().addr(&format!("{OBJ}Adapter")).unwrap().port();
    let dir = tars_testkit::process::TempDir::new("sdk-config").unwrap();
    let text = format!(
        "<tars>\n<application>\n<server>\napp=Test\nserver=Hello\nnodename=10.0.0.1\nbasepath={}\n\
         local=tcp -h 127.0.0.1 -p 0 -t 10000\nconfig={OBJ}@tcp -h 127.0.0.1 -p {port} -t 10000\n</server>\n\
         </application>\n</tars>\n",
        dir.0.display()
    );
    let app = Application::new(Config::parse(&text).unwrap()).unwrap().io(io).add_config("hello.conf").start().unwrap();
    let got = std::fs::read_to_string(dir.0.join("hello.conf")).unwrap();
    let (app1, app2) = ("<common>\nk=app1\n</common>", "<db>\nhost=app2\n</db>");
    let (server, node) = ("<hello>\nlevel=server\n</hello>", "<hello>\nlevel=node\n</hello>");
    assert_eq!(got, join(&[app1, app2, server, app2, node]));
    app.shutdown();
    app.wait().unwrap();
    running.shutdown();
    running.wait().unwrap();
}

tars_testkit::on_every_driver! { sdk_client => our_sdk_fetches_its_node_file; }
