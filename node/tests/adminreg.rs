#![allow(clippy::unwrap_used)]
//! Operating a deployed server through tarsAdminRegistry's push channel, end to end: a real
//! registry and AdminReg over one SQLite db_tars, the node in-process with its admin link, a
//! real server process. start, getServerState, notify, restart, a kill -9, getLogData with shell
//! metacharacters (nothing runs), stop: each through `AdminRegObj`, as TarsWeb calls it.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use rustix::process::{kill_process, Pid, Signal};
use tars_adminreg::service::AdminRegService;
use tars_core_net::app::{Application, Running};
use tars_core_net::client::config::ClientConfig;
use tars_core_net::client::BlockingClient;
use tars_core_net::rt::IoMode;
use tars_node::{NodeOptions, NodeService};
use tars_proto::config::Config;
use tars_proto::rpc::CallOptions;
use tars_protocol::tars::{AdminRegProxy, ServerStateDesc};
use tars_testkit::db::TestDb;
use tars_testkit::process::TempDir;
use tars_testkit::wait_for;

const NODE: &str = "127.0.0.1";
const APP: &str = "Test";
const SERVER: &str = "PushServer";
const ADMIN_OBJ: &str = "tars.tarsAdminRegistry.AdminRegObj";

mod common;

fn adapter(obj: &str) -> String {
    common::adapter(obj, "127.0.0.1", 0)
}

fn start_admin(db: &TestDb) -> Running {
    let text = format!(
        "<tars>\n<application>\n<server>\napp=tars\nserver=tarsAdminRegistry\nlocal=tcp -h 127.0.0.1 -p 0 -t 10000\n{}\
         </server>\n</application>\n<nodeinfo>\ncommand_timeout=30000\nsync_node_timeout=5000\n</nodeinfo>\n</tars>\n",
        adapter(ADMIN_OBJ)
    );
    Application::new(Config::parse(&text).unwrap())
        .unwrap()
        .io(IoMode::EpollEt)
        .shards(2)
        .service(AdminRegService::new(Some(db.store.clone())))
        .start()
        .unwrap()
}

/// A server deployed but not enabled: AdminReg's startServer is what starts it.
fn deploy(db: &TestDb, data: &Path) {
    let bin = data.join(format!("{APP}.{SERVER}/bin"));
    fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_tarsnode-test-server"), bin.join(SERVER)).unwrap();
    let profile = "<tars>\n<application>\n<server>\napp=${app}\nserver=${server}\nlocal=${local}\nlogpath=${logpath}\n\
                   deactivating-timeout=2000\n</server>\n</application>\n</tars>\n";
    db.exec(
        "INSERT INTO t_server_conf (application, server_name, node_name, setting_state, present_state, server_type, profile) \
         VALUES (?, ?, ?, 'inactive', 'inactive', 'tars_cpp', ?)",
        vec![APP.into(), SERVER.into(), NODE.into(), profile.into()],
    );
}

fn start_node(dir: &Path, registry: &str, locator: &str, admin: &str) -> Running {
    let text = format!(
        "<tars>\n<application>\n<client>\nlocator={locator}\nsync-invoke-timeout=3000\n</client>\n<server>\napp=tars\nserver=tarsnode\n\
         localip={NODE}\nlocal=tcp -h 127.0.0.1 -p 0 -t 10000\ndatapath={d}/data\nlogpath={d}/log\n{}{}\
         </server>\n</application>\n<node>\nregistryObj={registry}\nadminObj={admin}\n\
         <keepalive>\nmonitorIntervalMs=200\nreportAliveInterval=1\nconfigInterval=2\nsynStatInterval=5\nreportNodeInterval=1\n</keepalive>\n\
         </node>\n</tars>\n",
        adapter("tars.tarsnode.NodeObj").replace("NodeObjAdapter", "NodeAdapter"),
        adapter("tars.tarsnode.ServerObj").replace("ServerObjAdapter", "ServerAdapter"),
        d = dir.display()
    );
    Application::new(Config::parse(&text).unwrap())
        .unwrap()
        .io(IoMode::EpollEt)
        .service(NodeService::new(NodeOptions::default()))
        .start()
        .unwrap()
}

type Proxy = AdminRegProxy<tars_core_net::client::ObjectProxy>;

/// Runs `f` on an AdminReg proxy from the client thread.
fn call<T: Send + 'static, Fut: std::future::Future<Output = T> + 'static>(
    client: &BlockingClient,
    obj: &str,
    f: impl FnOnce(Proxy) -> Fut + Send + 'static,
) -> T {
    let obj = obj.to_owned();
    client.run(move |comm| {
        let p = AdminRegProxy::new(comm.proxy(&obj).unwrap(), ADMIN_OBJ)
            .with_options(CallOptions { timeout_ms: 40_000, ..CallOptions::default() });
        f(p)
    })
}

fn state(client: &BlockingClient, obj: &str) -> (i32, ServerStateDesc, String) {
    call(client, obj, |p| async move {
        let (mut desc, mut result) = (ServerStateDesc::default(), String::new());
        let ret = p.get_server_state(APP, SERVER, NODE, &mut desc, &mut result).await.unwrap();
        (ret, desc, result)
    })
}

fn command(client: &BlockingClient, obj: &str, op: &'static str) -> (i32, String) {
    call(client, obj, move |p| async move {
        let mut result = String::new();
        let ret = match op {
            "start" => p.start_server(APP, SERVER, NODE, &mut result).await,
            "stop" => p.stop_server(APP, SERVER, NODE, &mut result).await,
            "restart" => p.restart_server(APP, SERVER, NODE, &mut result).await,
            _ => p.notify_server(APP, SERVER, NODE, op, &mut result).await,
        };
        (ret.unwrap(), result)
    })
}

/// Waits until the node reports the server Active with a pid other than `not_pid`.
fn active(client: &BlockingClient, obj: &str, not_pid: i32) -> ServerStateDesc {
    wait_for(Duration::from_secs(15), || {
        let (_, desc, _) = state(client, obj);
        (desc.present_state_in_node.eq_ignore_ascii_case("active") && desc.process_id > 0 && desc.process_id != not_pid)
            .then_some(desc)
    })
    .unwrap_or_else(|| panic!("not Active with a new pid: {:?}", state(client, obj)))
}

fn setting_state(db: &TestDb) -> String {
    db.query("SELECT setting_state FROM t_server_conf WHERE server_name = ?", vec![SERVER.into()])
        .first()
        .and_then(|r| r.get_by::<String>("setting_state").ok())
        .unwrap_or_default()
}

fn alive(pid: i32) -> bool {
    tars_node::supervise::is_alive(u32::try_from(pid).unwrap())
}

#[test]
fn a_server_is_operated_through_adminreg_push() {
    let db = TestDb::sqlite("node_adminreg");
    let dir = TempDir::new("node-adminreg").unwrap();
    let d = dir.0.clone();
    deploy(&db, &d.join("data"));
    let reg = common::start_registry(&db, "tarsregistry", "127.0.0.1", (0, 0), "", "");
    let registry = format!(
        "tars.tarsregistry.RegistryObj@tcp -h 127.0.0.1 -p {}",
        reg.addr_of("tars.tarsregistry.RegistryObj").unwrap().port()
    );
    let admin_app = start_admin(&db);
    let obj = format!(
        "{ADMIN_OBJ}@tcp -h 127.0.0.1 -p {}",
        admin_app.server().addr(&format!("{ADMIN_OBJ}Adapter")).unwrap().port()
    );
    let node = start_node(&d, &registry, &reg.locator(), &obj);
    let client = BlockingClient::start(ClientConfig::default(), IoMode::EpollEt).unwrap();

    // The node's link is up once AdminReg answers a ping through it.
    let o = obj.clone();
    let pinged = wait_for(Duration::from_secs(10), || {
        let o = o.clone();
        call(&client, &o, |p| async move {
            let mut result = String::new();
            p.ping_node(NODE, &mut result).await.ok().filter(|ok| *ok)
        })
    });
    assert!(pinged.is_some(), "pingNode through the push link");
    let (_, desc, _) = state(&client, &obj);
    assert!(desc.process_id <= 0 && desc.setting_state_in_reg == "inactive", "deployed, not started: {desc:?}");

    let t0 = Instant::now();
    let (ret, result) = command(&client, &obj, "start");
    assert_eq!(ret, 0, "startServer: {result}");
    eprintln!("startServer through AdminReg and the node: {:?}", t0.elapsed());
    assert_eq!(setting_state(&db), "active");
    let desc = active(&client, &obj, 0);
    let pid = desc.process_id;
    assert!(alive(pid), "{desc:?}");
    assert_eq!(desc.setting_state_in_reg, "active");

    // notify reaches the server's AdminObj and its answer comes back.
    let (ret, result) = command(&client, &obj, "tars.viewversion");
    assert_eq!(ret, 0, "{result}");
    assert!(result.contains("version"), "notify answer: {result}");

    let (ret, result) = command(&client, &obj, "restart");
    assert_eq!(ret, 0, "restartServer: {result}");
    let desc = active(&client, &obj, pid);
    assert!(!alive(pid), "the old process is gone: {desc:?}");
    let pid = desc.process_id;

    // A crash: the node restarts the server at once; AdminReg sees the new pid.
    kill_process(Pid::from_raw(pid).unwrap(), Signal::KILL).unwrap();
    let killed = Instant::now();
    let new_pid = wait_for(Duration::from_secs(5), || {
        let (_, desc, _) = state(&client, &obj);
        (desc.process_id > 0 && desc.process_id != pid).then_some(desc.process_id)
    })
    .expect("restarted after kill -9");
    let seen = killed.elapsed();
    assert!(seen < Duration::from_secs(1), "kill -9 → new pid seen through AdminReg in {seen:?}");
    active(&client, &obj, pid);

    // getLogData: shell metacharacters run nothing.
    let marker = d.join("pwned");
    let files: Vec<String> = call(&client, &obj, |p| async move {
        let mut list = Vec::new();
        p.get_log_file_list(APP, SERVER, NODE, &mut list).await.unwrap();
        list
    });
    let file = files.first().cloned().unwrap_or_else(|| format!("{APP}.{SERVER}.log"));
    for cmd in [
        format!("tail -n 5 __log_file_name__; touch {}", marker.display()),
        format!("tail -n 5 __log_file_name__ | sh -c 'touch {}'", marker.display()),
        format!("tail -n $(touch {}) __log_file_name__", marker.display()),
    ] {
        let f = file.clone();
        let data: String = call(&client, &obj, move |p| async move {
            let mut data = String::new();
            p.get_log_data(APP, SERVER, NODE, &f, &cmd, &mut data).await.unwrap();
            data
        });
        assert!(!data.is_empty(), "an answer (the refusal)");
    }
    std::thread::sleep(Duration::from_millis(200));
    assert!(!marker.exists(), "no command ran");

    let (ret, result) = command(&client, &obj, "stop");
    assert_eq!(ret, 0, "stopServer: {result}");
    assert_eq!(setting_state(&db), "inactive");
    assert!(!alive(new_pid));
    let (_, desc, _) = state(&client, &obj);
    assert!(desc.process_id <= 0, "{desc:?}");

    node.shutdown();
    node.wait().unwrap();
    admin_app.shutdown();
    admin_app.wait().unwrap();
    reg.shutdown().unwrap();
}
