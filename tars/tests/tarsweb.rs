//! TarsWeb v3.0.14, the operators' console (a third-party peer, installed by
//! `scripts/tarsweb.sh`), drives our framework through its own HTTP API, as an operator's
//! browser would: the framework (`tars::serve`: registry, AdminReg, tarsconfig, this host's
//! tarsnode) and TarsWeb share one MariaDB `db_tars`, and TarsWeb runs with its default
//! `alter: true`, so it also rewrites that schema to its models and adds its foreign key from
//! `t_task` to `t_task_item` while the framework runs.
//!
//! Flows, each asserted on what TarsWeb answers and on what really happened (processes, rows,
//! files): deploy a server built with our SDK; start, restart and stop tasks (and one that
//! fails, for a node that does not exist); live server state; a config file's merged view and
//! its push to the running server; the log file list and a log view; the notify list; a custom
//! command; the monitor pages' data over our query services ([`monitor`]). One run on MariaDB
//! (TarsWeb speaks only MySQL), not one per driver.
#![allow(clippy::unwrap_used)]

#[path = "tarsweb/monitor.rs"]
mod monitor;

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use rustix::process::{kill_process, Pid, Signal};
use serde_json::{json, Value};
use tars::{Stores, UpOptions};
use tars_proto::rpc::ParamWriter;
use tars_sql::{params, Store};
use tars_testkit::http::{self, encode};
use tars_testkit::process::TempDir;
use tars_testkit::raw::RawConn;
use tars_testkit::wait_for;

const APP: &str = "Web";
const SERVER: &str = "EchoServer";
const NODE: &str = "127.0.0.1";
/// A node that never registers: commands to it fail, and leave a notice.
const GHOST: &str = "10.255.0.9";
/// TarsWeb's own databases (it has these names built in, and `db_tars`).
const TARSWEB_DATABASES: [&str; 2] = ["db_tars_web", "db_user_system"];
const HTTP_TIMEOUT: Duration = Duration::from_secs(90);

/// The TarsWeb installed by `scripts/tarsweb.sh` (the test script passes its directory).
fn install_dir() -> PathBuf {
    let dir = std::env::var_os("TARS_TARSWEB_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/tarsweb"));
    assert!(
        dir.join("node_modules").is_dir() && dir.join("config/webConf.peer.js").is_file(),
        "TarsWeb is not installed in {}: run scripts/tarsweb.sh {0} (scripts/test.sh does)",
        dir.display()
    );
    dir
}

/// A binary of this workspace built beside the test (cargo builds every binary of the
/// workspace before `cargo test --workspace` runs a test).
fn workspace_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe.parent().and_then(Path::parent).unwrap().join(name);
    assert!(path.is_file(), "{} is not built: cargo build -p tars-node --bin {name}", path.display());
    path
}

/// The test MariaDB as TarsWeb's `dbConf` names it.
struct MysqlAt {
    host: String,
    port: u16,
    user: String,
    password: String,
}

impl MysqlAt {
    /// From `mysql://user[:password]@host:port/db`.
    fn parse(url: &str) -> MysqlAt {
        let rest = url.strip_prefix("mysql://").unwrap_or_else(|| panic!("TarsWeb needs MySQL, not {url:?}"));
        let (auth, at) = rest.split_once('@').unwrap();
        let (user, password) = auth.split_once(':').unwrap_or((auth, ""));
        let hostport = at.split(['/', '?']).next().unwrap();
        let (host, port) = hostport.rsplit_once(':').unwrap_or((hostport, "3306"));
        MysqlAt { host: host.into(), port: port.parse().unwrap(), user: user.into(), password: password.into() }
    }
}

/// TarsWeb running from `dir` on `port`; killed when dropped.
struct TarsWeb {
    child: Child,
    addr: SocketAddr,
    logs: PathBuf,
}

impl TarsWeb {
    fn start(dir: &Path, scratch: &Path, mysql: &MysqlAt, locator: &str) -> TarsWeb {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let logs = scratch.join("tarsweb-log");
        let upload = scratch.join("tars.upload");
        fs::create_dir_all(&upload).unwrap();
        let MysqlAt { host, port: db_port, user, password } = mysql;
        // TarsWeb's own file, loaded and pointed at this test: its permission checks call
        // back to `webConf.port`, so the port is set here, not through $PORT.
        let conf = format!(
            "// Written by tars-rs tars/tests/tarsweb.rs: TarsWeb's settings, pointed at the test.\n\
             const conf = require('./webConf.peer.js');\n\
             conf.webConf.host = '127.0.0.1';\nconf.webConf.port = {port};\n\
             conf.webConf.loggerPath = {logs};\nconf.webConf.alter = true;\n\
             conf.pkgUploadPath.path = {upload};\n\
             conf.dbConf = Object.assign(conf.dbConf, {{ host: {host}, port: '{db_port}', user: {user}, password: {password} }});\n\
             module.exports = conf;\n",
            logs = json!(logs.display().to_string()),
            upload = json!(upload.display().to_string()),
            host = json!(host),
            user = json!(user),
            password = json!(password),
        );
        fs::write(dir.join("config/webConf.js"), conf).unwrap();
        let client = format!(
            "<tars>\n<application>\n<client>\nlocator = {locator}\nsync-invoke-timeout = 60000\n\
             max-invoke-timeout = 60000\nrefresh-endpoint-interval = 60000\nasyncthread = 3\n\
             modulename = tars.system\n</client>\n</application>\n</tars>\n"
        );
        fs::write(dir.join("config/tars.conf"), &client).unwrap();
        fs::write(dir.join("config/k8s.conf"), &client).unwrap();
        let mut web = TarsWeb {
            child: spawn(dir, &scratch.join("tarsweb.out")),
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            logs,
        };
        web.until_synced(dir);
        web
    }

    /// Waits until TarsWeb has synced every model (it logs each one). On a fresh database its
    /// first start can die: some modules query tables at load, before the sync that creates
    /// them, and its concurrent ALTERs can time out on each other's locks. It is started
    /// again then, as its process manager would (at most three starts).
    fn until_synced(&mut self, dir: &Path) {
        let models = ["app/dao/db/db_tars_models", "app/dao/db/db_tars_web_models"]
            .iter()
            .map(|d| fs::read_dir(dir.join(d)).unwrap().count())
            .sum::<usize>();
        let mut earlier = String::new();
        for attempt in 1..=3 {
            let ended = wait_for(Duration::from_secs(90), || {
                if self.printed().matches(" sync succ").count() >= models {
                    return Some(None);
                }
                self.child.try_wait().unwrap().map(Some)
            });
            match ended {
                Some(None) => return,
                Some(Some(status)) if attempt < 3 => {
                    earlier.push_str(&format!("--- start {attempt} ended with {status}\n{}\n", self.output()));
                    self.child = spawn(dir, &self.logs.with_file_name("tarsweb.out"));
                }
                _ => break,
            }
        }
        panic!("TarsWeb did not sync its {models} models\n{earlier}{}", self.output());
    }

    /// What TarsWeb printed (its SQL echo left out).
    fn printed(&self) -> String {
        let out = fs::read_to_string(self.logs.with_file_name("tarsweb.out")).unwrap_or_default();
        out.lines().filter(|l| !l.starts_with("Executing (")).collect::<Vec<_>>().join("\n")
    }

    /// The end of what TarsWeb printed and of its error log, for a failure message.
    fn output(&self) -> String {
        let tail =
            |t: &str| t.lines().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
        // Its log files are `<yyyyMMdd>.error.log` and so on.
        let errors = fs::read_dir(&self.logs)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with("error.log"))
            .map(|e| fs::read_to_string(e.path()).unwrap_or_default())
            .collect::<String>();
        format!("--- TarsWeb printed\n{}\n--- its error log\n{}", tail(&self.printed()), tail(&errors))
    }

    /// Its answer's `data`, asserting the envelope's `ret_code` 200.
    fn data(&self, what: &str, r: std::io::Result<http::Response>) -> Value {
        let r = r.unwrap_or_else(|e| panic!("{what}: {e}\n{}", self.output()));
        let v = r.json().unwrap_or_else(|e| panic!("{what}: {e}\n{}", self.output()));
        assert_eq!(v["ret_code"], 200, "{what}: {v}\n{}", self.output());
        v["data"].clone()
    }

    fn get(&self, path: &str) -> Value {
        self.data(path, http::get(self.addr, &format!("/api/{path}"), HTTP_TIMEOUT))
    }

    fn post(&self, path: &str, body: &Value) -> Value {
        self.data(path, http::post_json(self.addr, &format!("/api/{path}"), body, HTTP_TIMEOUT))
    }

    /// Adds a task of one item and waits for its end; returns the task as TarsWeb shows it.
    fn task(&self, server_id: i64, command: &str) -> Value {
        let body = json!({"serial": true, "elegant": false, "eachnum": 1,
                          "items": [{"server_id": server_id.to_string(), "command": command, "parameters": {}}]});
        let task_no = self.post("add_task", &body);
        let task_no = task_no.as_str().unwrap_or_else(|| panic!("add_task answered {task_no}"));
        assert_eq!(task_no.len(), 32, "{task_no}");
        // AdminReg's TaskStatus: NOT_START 0, PREPARE 1, RUNNING 2, SUCCESS 3, FAILED 4, CANCEL 5, PARIAL 6.
        wait_for(Duration::from_secs(60), || {
            let t = self.get(&format!("task?task_no={task_no}"));
            (t["status"].as_i64().unwrap_or(0) >= 3).then_some(t)
        })
        .unwrap_or_else(|| panic!("task {command} did not end\n{}", self.output()))
    }

    fn server_state(&self, node: &str) -> Value {
        let q = json!({"queryState": [{"application": APP, "server_name": SERVER, "node_name": node}]});
        self.post("server_state", &q)[0].clone()
    }
}

impl Drop for TarsWeb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `node bin/www` in `dir`, printing to `out`.
fn spawn(dir: &Path, out: &Path) -> Child {
    let out = fs::File::create(out).unwrap();
    Command::new("node")
        .arg("bin/www")
        .current_dir(dir)
        .env_remove("NODE_ENV")
        .env_remove("ENABLE_K8S")
        .env_remove("PORT")
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .expect("node runs (TarsWeb needs Node.js)")
}

/// Fresh databases: TarsWeb's two own, loaded from its SQL, and the framework's three as
/// `tars up --mysql` opens them (created, then migrated by the caller).
fn databases(base: &str, tarsweb: &Path) -> Stores {
    let admin = Store::open(base).unwrap();
    let drop = tars::DATABASE_NAMES.iter().chain(&TARSWEB_DATABASES).map(|n| format!("DROP DATABASE IF EXISTS `{n}`"));
    let create = TARSWEB_DATABASES.map(|n| format!("CREATE DATABASE `{n}` DEFAULT CHARSET utf8"));
    let script = drop.chain(create).collect::<Vec<_>>().join(";");
    admin.run_blocking(move |s| s.exec_script(&script)).unwrap();
    for name in TARSWEB_DATABASES {
        let sql = fs::read_to_string(tarsweb.join(format!("sql/{name}.sql"))).unwrap();
        let store = Store::open(&tars_sql::url_with_database(base, name)).unwrap();
        store.run_blocking(move |s| s.exec_script(&sql)).unwrap_or_else(|e| panic!("{name}.sql: {e}"));
    }
    Stores::on_server(base).unwrap()
}

fn one_i64(store: &Store, sql: &'static str, args: Vec<tars_sql::Value>) -> Option<i64> {
    let rows = store.run_blocking(move |s| s.query(sql, &args)).unwrap();
    rows.first().and_then(|r| r.get::<i64>(0).ok())
}

fn pid_in_db(store: &Store, node: &str) -> i64 {
    one_i64(
        store,
        "SELECT process_id FROM t_server_conf WHERE application = ? AND server_name = ? AND node_name = ?",
        params![APP, SERVER, node],
    )
    .unwrap_or(0)
}

fn alive(pid: i64) -> bool {
    u32::try_from(pid).is_ok_and(|p| p > 0 && tars_node::supervise::is_alive(p))
}

/// Kills the deployed server when the test ends, however it ends: the node leaves its
/// servers running when it stops, as upstream's does.
struct Reap(Store);

impl Drop for Reap {
    fn drop(&mut self) {
        let pid = pid_in_db(&self.0, NODE);
        if alive(pid) {
            if let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) {
                let _ = kill_process(pid, Signal::KILL);
            }
        }
    }
}

#[test]
fn tarsweb_drives_the_framework() {
    let tarsweb = install_dir();
    let base = tars_testkit::mysql::mysql_url();
    let scratch = TempDir::new("tarsweb").unwrap();
    let stores = databases(&base, &tarsweb);
    let migrations = stores.migrate().unwrap();
    let data = scratch.0.join("data");
    let opts = UpOptions { host: NODE.into(), shards: Some(2), ..UpOptions::free_ports(data.clone()) };
    let running = tars::serve(&opts, stores.clone(), migrations).unwrap();
    let db = stores.db_tars.clone();
    let _reap = Reap(db.clone());
    let locator = running.endpoints.iter().find(|(o, _)| o == "tars.tarsregistry.QueryObj").unwrap().1.clone();
    let mysql = MysqlAt::parse(&base);
    let web = TarsWeb::start(&tarsweb, &scratch.0, &mysql, &format!("tars.tarsregistry.QueryObj@{locator}"));

    let up = wait_for(Duration::from_secs(30), || http::get(web.addr, "/api/tree?type=1", HTTP_TIMEOUT).ok());
    assert!(up.is_some(), "TarsWeb does not answer\n{}", web.output());
    // Its foreign key is in place: the framework's tasks must write their items first.
    let fk = one_i64(
        &db,
        "SELECT COUNT(*) FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = 'db_tars' \
         AND TABLE_NAME = 't_task' AND REFERENCED_TABLE_NAME = 't_task_item'",
        Vec::new(),
    );
    assert_eq!(fk, Some(1), "TarsWeb's schema sync adds t_task -> t_task_item");
    // The framework as TarsWeb lists it, through AdminReg.getServers.
    let framework = web.get("get_framework_list");
    assert!(framework.to_string().contains("tarsregistry"), "{framework}");

    // Deploy: TarsWeb writes the rows; the server's binary is where the node runs it from
    // (a patch would put it there: tarspatch is not part of this framework yet).
    let server_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let adapter = |node: &str| {
        json!({"node_name": node, "obj_name": "EchoObj", "bind_ip": "127.0.0.1", "port": server_port.to_string(),
               "port_type": "tcp", "protocol": "tars", "thread_num": 2, "max_connections": 1000,
               "queuecap": 10000, "queuetimeout": 20000})
    };
    for node in [NODE, GHOST] {
        let deploy = json!({"application": APP, "server_name": SERVER, "server_type": "tars_cpp",
                            "template_name": "tars.default", "node_name": node, "enable_set": false,
                            "set_name": "", "set_area": "", "set_group": "", "operator": "admin",
                            "developer": "", "adapters": [adapter(node)]});
        web.post("deploy_server", &deploy);
    }
    let bin = data.join(format!("{APP}.{SERVER}/bin"));
    fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(workspace_bin("tarsnode-test-server"), bin.join(SERVER)).unwrap();
    let servers = web.get(&format!("server_list?tree_node_id=1{APP}.5{SERVER}"));
    let id_of = |node: &str| {
        servers.as_array().unwrap().iter().find(|s| s["node_name"] == node).unwrap_or_else(|| panic!("{servers}"))["id"]
            .as_i64()
            .unwrap()
    };
    let (id, ghost_id) = (id_of(NODE), id_of(GHOST));
    let endpoint: Option<String> = db
        .run_blocking(|s| {
            s.query(
                "SELECT endpoint FROM t_adapter_conf WHERE servant = ?",
                &params![format!("{APP}.{SERVER}.EchoObj")],
            )
        })
        .unwrap()
        .first()
        .and_then(|r| r.get(0).ok());
    assert_eq!(endpoint, Some(format!("tcp -h 127.0.0.1 -t 60000 -p {server_port} -e 0")));

    // Start: a task through AdminReg and the node's push link; the server runs and is Active.
    let t = web.task(id, "start");
    assert_eq!(t["status"], 3, "start task: {t}\n{}", web.output());
    assert_eq!(t["items"][0]["status"], 3, "{t}");
    let pid = wait_for(Duration::from_secs(20), || Some(pid_in_db(&db, NODE)).filter(|&p| alive(p)))
        .unwrap_or_else(|| panic!("no live pid in t_server_conf\n{}", web.output()));
    let state = wait_for(Duration::from_secs(20), || {
        let s = web.server_state(NODE);
        (s["present_state_in_node"] == "Active" && s["present_state_in_reg"] == "Active").then_some(s)
    });
    let state = state.unwrap_or_else(|| panic!("not Active: {}", web.server_state(NODE)));
    assert_eq!((state["is_node_ok"].clone(), state["setting_state_in_reg"].clone()), (json!(true), json!("Active")));
    // Routable and answering on the port TarsWeb gave it.
    let mut conn = RawConn::connect(SocketAddr::from(([127, 0, 0, 1], server_port))).unwrap();
    let ping = conn.request(&format!("{APP}.{SERVER}.EchoObj"), "tars_ping", 1, ParamWriter::new(1).finish());
    assert_eq!(conn.call(&ping).unwrap().ret, 0);
    let listed = web.get(&format!("server_list?tree_node_id=1{APP}.5{SERVER}"));
    assert!(listed.to_string().contains("\"present_state\":\"active\""), "{listed}");

    // Restart: a new process; stop: none, and the task says so.
    let t = web.task(id, "restart");
    assert_eq!(t["status"], 3, "restart task: {t}");
    let restarted = wait_for(Duration::from_secs(20), || Some(pid_in_db(&db, NODE)).filter(|&p| p != pid && alive(p)));
    let pid2 = restarted.unwrap_or_else(|| panic!("restart left pid {pid}\n{}", web.output()));
    assert!(!alive(pid), "the old process {pid} is gone");
    let t = web.task(id, "stop");
    assert_eq!(t["status"], 3, "stop task: {t}");
    assert!(wait_for(Duration::from_secs(10), || (!alive(pid2)).then_some(())).is_some(), "{pid2} still runs");
    let s = web.server_state(NODE);
    assert_eq!(
        (s["present_state_in_node"].clone(), s["setting_state_in_reg"].clone()),
        (json!("Inactive"), json!("Inactive"))
    );

    // The task history TarsWeb reads from t_task / t_task_item, which AdminReg writes.
    let history = web.get(&format!("task_list?application={APP}&server_name={SERVER}"));
    let commands = history.to_string();
    for c in ["\"start\"", "\"restart\"", "\"stop\""] {
        assert!(commands.contains(c), "{c} missing from the task list: {history}");
    }

    // A task for a node that never registered fails, and leaves a notice TarsWeb lists.
    let t = web.task(ghost_id, "start");
    assert_eq!(t["status"], 4, "a start on an unknown node fails: {t}");
    let s = web.server_state(GHOST);
    assert_eq!(s["is_node_ok"], false, "{s}");
    let notices = web.get(&format!("server_notify_list?tree_node_id=1{APP}.5{SERVER}&curr_page=1&page_size=10"));
    let rows = notices["rows"].as_array().unwrap_or_else(|| panic!("{notices}"));
    assert!(notices["count"].as_i64().unwrap() >= 1, "{notices}");
    assert!(
        rows.iter().any(|r| r["server_id"] == format!("{APP}.{SERVER}_{GHOST}")
            && r["result"].as_str().unwrap_or_default().contains("start server")),
        "{notices}"
    );

    // Running again for the rest.
    let t = web.task(id, "start");
    assert_eq!(t["status"], 3, "start task: {t}");
    let pid3 = wait_for(Duration::from_secs(20), || Some(pid_in_db(&db, NODE)).filter(|&p| p != pid2 && alive(p)))
        .unwrap_or_else(|| panic!("not started again\n{}", web.output()));

    // Config: a server-level file, the node-level copy TarsWeb creates, its merged view
    // through tarsconfig's loadConfigByHost, then the push (`tars.loadconfig` through
    // AdminReg): the running server fetches it into its base path.
    let text = "<db>\nhost=10.0.0.1\nport=3306\n</db>\n";
    web.post(
        "add_config_file",
        &json!({"level": 5, "application": APP, "server_name": SERVER, "filename": "web.conf", "config": text}),
    );
    let files = web.get(&format!("config_file_list?level=5&application={APP}&server_name={SERVER}"));
    let config_id = files[0]["id"].as_i64().unwrap_or_else(|| panic!("{files}"));
    let node_files =
        web.get(&format!("node_config_file_list?application={APP}&server_name={SERVER}&config_id={config_id}"));
    let node_id = node_files
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["node_name"] == NODE)
        .unwrap_or_else(|| panic!("{node_files}"))["id"]
        .as_i64()
        .unwrap();
    web.post(
        "update_config_file",
        &json!({"id": node_id, "config": "<db>\nport=3307\n</db>\n", "reason": "this host's port"}),
    );
    // tarsconfig's cache sees a changed row within a second.
    let merged = wait_for(Duration::from_secs(5), || {
        let m = web.get(&format!("merged_node_config?id={node_id}"));
        m.as_str().filter(|m| m.contains("port=3307")).map(str::to_owned)
    });
    let merged = merged.unwrap_or_else(|| panic!("{}", web.get(&format!("merged_node_config?id={node_id}"))));
    assert!(merged.contains("host=10.0.0.1") && merged.contains("port=3307"), "{merged}");
    assert!(merged.find("port=3306") < merged.find("port=3307"), "server level first, then the node's: {merged}");
    let pushed = web.get(&format!("push_config_file?ids={node_id}"));
    assert_eq!(pushed[0]["ret_code"], 0, "{pushed}");
    assert!(pushed[0]["err_msg"].as_str().unwrap().contains("[succ] get remote config: web.conf"), "{pushed}");
    assert_eq!(fs::read_to_string(bin.join("web.conf")).unwrap(), merged);

    // Logs: the server's own log file, listed and viewed through the node (no shell).
    let list = web.get(&format!("logview_list?application={APP}&server_name={SERVER}&node_name={NODE}"));
    let list: Value = serde_json::from_str(list.as_str().unwrap_or_else(|| panic!("{list}"))).unwrap();
    let log_file = format!("{APP}.{SERVER}.log");
    assert!(list["data"].as_array().unwrap().iter().any(|f| f == &json!(log_file)), "{list}");
    let params = json!({"search_lines": "1000", "search_sign": "from_end", "keyword": "", "ignoreCase": "N",
                        "lines": "100", "view_direction": "from_end"});
    let view = web.get(&format!(
        "logview_data?application={APP}&server_name={SERVER}&node_name={NODE}&log_file={log_file}&interface_params={}",
        encode(&params.to_string())
    ));
    // TarsWeb answers the node's text inside a JSON string: the file's last (at most) 100 lines.
    let view: Value = serde_json::from_str(view.as_str().unwrap_or_else(|| panic!("{view}"))).unwrap();
    assert_eq!(view["iRet"], 0, "{view}");
    let shown: Vec<&str> = view["data"].as_str().unwrap().lines().collect();
    let logged = fs::read_to_string(data.join(format!("app_log/{APP}/{SERVER}/{log_file}"))).unwrap();
    let lines: Vec<&str> = logged.lines().collect();
    // The server may log more after the view (the file only grows): a run of its lines.
    assert!(!shown.is_empty() && shown.len() <= 100, "{view}");
    assert!(lines.windows(shown.len()).any(|w| w == shown.as_slice()), "{view}\nvs\n{logged}");

    // A custom command, answered by the server's AdminObj.
    let answer = web.get(&format!("send_command?server_ids={id}&command={}", encode("tars.viewversion")));
    assert_eq!(answer[0]["ret_code"], 0, "{answer}");
    assert!(!answer[0]["err_msg"].as_str().unwrap_or_default().is_empty(), "{answer}");
    assert!(alive(pid3), "the server still runs");

    monitor::monitor_routes_equal_direct_sql(&web, &stores);

    drop(web);
    running.shutdown();
    running.wait().unwrap();
}
