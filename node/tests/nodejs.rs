#![allow(clippy::unwrap_used)]
//! A Node.js business server deployed through our tarsnode, end to end: the rows TarsWeb writes
//! for a `tars_nodejs` server (`t_profile_template`, `t_server_conf`, `t_adapter_conf`, a
//! `t_config_files` row) in a SQLite `db_tars`; a real registry, our tarsconfig and a
//! `NodeService` in-process. The node generates the config, starts the server through
//! `tars_nodejs/node-agent` (`interop/node-agent`, the stand-in for `@tars/node-agent`), whose
//! worker `interop/node_business` serves a servant with the official `@tars/rpc` and loads its
//! config file with the official `@tars/config`. The official `@tars/registry` resolves the
//! object through our registry, `@tars/rpc` calls it by name; a SIGKILL of the worker makes
//! node-agent exit and the node restart the server; a SIGKILL of node-agent takes its worker
//! with it and is restarted too; a stop through the node reaches the worker as SIGTERM.
//!
//! Needs `npm ci --prefix interop` (the pinned official packages) and `node` on `PATH`.

use std::fs;
use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

use rustix::process::{kill_process, Pid, Signal};
use tars_config::ConfigService;
use tars_core_net::app::{Application, Running};
use tars_core_net::client::config::ClientConfig;
use tars_core_net::client::BlockingClient;
use tars_core_net::rt::IoMode;
use tars_node::{NodeHandle, NodeOptions, NodeService};
use tars_proto::config::Config;
use tars_proto::rpc::CallOptions;
use tars_protocol::tars::{EndpointF, QueryFProxy, ServerState};
use tars_registry::service::Registry;
use tars_sql::Value;
use tars_testkit::db::TestDb;
use tars_testkit::process::TempDir;
use tars_testkit::wait_for;

mod common;

const NODE: &str = "127.0.0.1";
const APP: &str = "Test";
const SERVER: &str = "NodeHello";
const OBJ: &str = "Test.NodeHello.EchoObj";
const CONFIG_OBJ: &str = "tars.tarsconfig.ConfigObj";
const TEMPLATE: &str = "tars.nodejs.default";
const FILE: &str = "hello.conf";
/// The config file's content: what `@tars/config` must hand the server byte for byte.
const CONTENT: &str =
    "<hello>\n\tgreeting=grüß dich, 世界\n\tspaced = a  b\t c \n\t<inner>\n\t\tk=v;w|x\n\t</inner>\n</hello>\n";

/// The template TarsWeb's `tars.default` is for a Node.js server, trimmed to what the test
/// reads (no stat/property/log/notify: those services are not running here).
const TEMPLATE_PROFILE: &str = "<tars>\n\t<application>\n\t\tenableset=${enableset}\n\t\tsetdivision=${setdivision}\n\
\t\t<client>\n\t\t\tlocator=${locator}\n\t\t\tsync-invoke-timeout=3000\n\t\t\tasync-invoke-timeout=5000\n\
\t\t\trefresh-endpoint-interval=60000\n\t\t\tmodulename=${modulename}\n\t\t</client>\n\
\t\t<server>\n\t\t\tapp=${app}\n\t\t\tserver=${server}\n\t\t\tlocalip=${localip}\n\t\t\tlocal=${local}\n\
\t\t\tbasepath=${basepath}\n\t\t\tdatapath=${datapath}\n\t\t\tlogpath=${logpath}\n\t\t\tloglevel=DEBUG\n\
\t\t\tconfig=tars.tarsconfig.ConfigObj\n\t\t\tdeactivating-timeout=3000\n\t\t</server>\n\t</application>\n</tars>\n";

fn interop() -> std::path::PathBuf {
    tars_testkit::node::interop_dir().canonicalize().unwrap()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn start_registry(db: &TestDb) -> Registry {
    common::start_registry(db, "tarsregistry", "127.0.0.1", (0, 0), "", "")
}

fn start_config(db: &TestDb) -> Running {
    let text = format!(
        "<tars>\n<application>\n<server>\napp=tars\nserver=tarsconfig\nlocal=tcp -h 127.0.0.1 -p 0 -t 10000\n\
         <{CONFIG_OBJ}Adapter>\nendpoint=tcp -h 127.0.0.1 -p 0 -t 60000\nservant={CONFIG_OBJ}\n</{CONFIG_OBJ}Adapter>\n\
         </server>\n</application>\n</tars>\n"
    );
    Application::new(Config::parse(&text).unwrap())
        .unwrap()
        .io(IoMode::EpollEt)
        .shards(1)
        .service(ConfigService::new(Some(db.store.clone())))
        .start()
        .unwrap()
}

fn start_node(dir: &Path, registry_port: u16, locator: &str) -> Running {
    let text = format!(
        "<tars>\n<application>\n<client>\nlocator={locator}\nsync-invoke-timeout=3000\n</client>\n<server>\napp=tars\nserver=tarsnode\n\
         localip={NODE}\nlocal=tcp -h 127.0.0.1 -p 0 -t 10000\ndatapath={d}/data\nlogpath={d}/log\n\
         <NodeAdapter>\nendpoint=tcp -h 127.0.0.1 -p 0 -t 60000\nservant=tars.tarsnode.NodeObj\n</NodeAdapter>\n\
         <ServerAdapter>\nendpoint=tcp -h 127.0.0.1 -p 0 -t 60000\nservant=tars.tarsnode.ServerObj\n</ServerAdapter>\n\
         </server>\n</application>\n<node>\nregistryObj=tars.tarsregistry.RegistryObj@tcp -h 127.0.0.1 -p {registry_port} -t 3000\n\
         <keepalive>\nmonitorIntervalMs=200\nreportAliveInterval=1\nconfigInterval=2\nsynStatInterval=5\n</keepalive>\n</node>\n</tars>\n",
        d = dir.display()
    );
    // tarsconfig runs in this process, registered on this node: the node leaves it alone.
    let opts =
        NodeOptions { node_id: None, config_file: None, notice_hook: None, hosted: vec!["tars.tarsconfig".to_owned()] };
    Application::new(Config::parse(&text).unwrap())
        .unwrap()
        .io(IoMode::EpollEt)
        .service(NodeService::new(opts))
        .start()
        .unwrap()
}

/// The server's config file, as TarsWeb adds it (server level). Written before tarsconfig
/// starts: `@tars/config` does not look at loadConfigByInfo's return code, so a file
/// tarsconfig has not read yet would arrive as an empty text.
fn config_file_row(db: &TestDb) {
    db.exec(
        "INSERT INTO t_config_files (server_name, set_name, set_area, set_group, host, filename, config, posttime, \
         lastuser, level, config_flag) VALUES (?, '', '', '', '', ?, ?, '2026-12-07 10:00:00', 'admin', ?, 0)",
        vec![format!("{APP}.{SERVER}").into(), FILE.into(), CONTENT.into(), Value::Int(2)],
    );
}

/// The rows TarsWeb writes: the template, the server (`tars_nodejs`, setting active, present
/// inactive) and its adapter; and tarsconfig's own server and adapter rows, so that
/// `tars.tarsconfig.ConfigObj` resolves through the locator.
fn deploy_rows(db: &TestDb, echo_port: u16, config_port: u16) {
    db.exec(
        "INSERT INTO t_profile_template (template_name, parents_name, profile, posttime, lastuser) VALUES (?, '', ?, '2026-12-07 10:00:00', 'admin')",
        vec![TEMPLATE.into(), TEMPLATE_PROFILE.into()],
    );
    let server = |app: &str, name: &str, ty: &str, present: &str| {
        db.exec(
            "INSERT INTO t_server_conf (application, server_name, node_name, exe_path, template_name, setting_state, present_state, \
             server_type, profile, posttime, lastuser, enable_set, async_thread_num) \
             VALUES (?, ?, ?, '', ?, 'active', ?, ?, '', '2026-12-07 10:00:00', 'admin', 'N', 3)",
            vec![app.into(), name.into(), NODE.into(), TEMPLATE.into(), present.into(), ty.into()],
        );
    };
    let adapter = |app: &str, name: &str, servant: &str, port: u16| {
        db.exec(
            "INSERT INTO t_adapter_conf (application, server_name, node_name, adapter_name, thread_num, endpoint, max_connections, \
             allow_ip, servant, queuecap, queuetimeout, posttime, lastuser, protocol, handlegroup) \
             VALUES (?, ?, ?, ?, 1, ?, 100000, '', ?, 10000, 60000, '2026-12-07 10:00:00', 'admin', 'tars', '')",
            vec![
                app.into(),
                name.into(),
                NODE.into(),
                format!("{servant}Adapter").into(),
                format!("tcp -h 127.0.0.1 -p {port} -t 60000").into(),
                servant.into(),
            ],
        );
    };
    server("tars", "tarsconfig", "tars_cpp", "active");
    adapter("tars", "tarsconfig", CONFIG_OBJ, config_port);
    server(APP, SERVER, "tars_nodejs", "inactive");
    adapter(APP, SERVER, OBJ, echo_port);
}

/// What `tars patch` leaves in the server's bin/ directory for a Node.js package: the package
/// (package.json and its main) and `tars_nodejs/node-agent`. The package's node_modules and
/// the Interop servant JS are symlinks into `interop/` (Node resolves symlinked modules to
/// their real path, so their own requires find `interop/node_modules`).
fn install_package(bin: &Path) {
    let interop = interop();
    fs::create_dir_all(bin.join("tars_nodejs")).unwrap();
    for f in ["package.json", "index.js"] {
        fs::copy(interop.join("node_business").join(f), bin.join(f)).unwrap();
    }
    std::os::unix::fs::symlink(interop.join("node_modules"), bin.join("node_modules")).unwrap();
    std::os::unix::fs::symlink(interop.join("tars"), bin.join("tars")).unwrap();
    std::os::unix::fs::symlink(interop.join("node-agent"), bin.join("tars_nodejs/node-agent")).unwrap();
}

fn state(h: &NodeHandle) -> (ServerState, i32) {
    let (_, info, _) = h.get_state_info(APP, SERVER).wait(Duration::from_secs(5)).unwrap();
    (info.server_state, info.process_id)
}

/// The server's stdout/stderr (node-agent's and the worker's lines), for failure messages.
fn server_log(d: &Path) -> String {
    fs::read_to_string(d.join(format!("log/{APP}/{SERVER}/{APP}.{SERVER}.log"))).unwrap_or_default()
}

fn wait_active(h: &NodeHandle, d: &Path, not_pid: i32, limit: Duration) -> i32 {
    wait_for(limit, || {
        let (s, pid) = state(h);
        (s == ServerState::Active && pid > 0 && pid != not_pid).then_some(pid)
    })
    .unwrap_or_else(|| {
        panic!("{SERVER} not Active (with a new pid) within {limit:?}: {:?}; log:\n{}", state(h), server_log(d))
    })
}

/// SIGKILLs the node-agent processes it was given when the test ends, also by a panic (the node
/// leaves its servers running when it stops); a worker exits when its agent goes.
#[derive(Default)]
struct Reaper(Vec<i32>);

impl Drop for Reaper {
    fn drop(&mut self) {
        for &pid in &self.0 {
            if let Some(p) = Pid::from_raw(pid) {
                let _ = kill_process(p, Signal::KILL);
            }
        }
    }
}

/// `(present_state, process_id, tars_version)` of the server's row.
fn row(db: &TestDb) -> (String, i64, String) {
    let rows = db.query(
        "SELECT present_state, process_id, tars_version FROM t_server_conf WHERE application = ? AND server_name = ?",
        vec![APP.into(), SERVER.into()],
    );
    let r = &rows[0];
    (
        r.get_by::<String>("present_state").unwrap_or_default(),
        r.get_by::<i64>("process_id").unwrap_or_default(),
        r.get_by::<String>("tars_version").unwrap_or_default(),
    )
}

fn read_pid(path: &Path) -> Option<i32> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The file the node must generate, for the template above.
fn expected_config(d: &Path, locator: &str, node_port: u16, local_port: u16, echo_port: u16) -> String {
    let data = d.join("data");
    let base = format!("{}/{APP}.{SERVER}", data.display());
    format!(
        "<tars>\n  <application>\n    enableset=n\n    setdivision=NULL\n    <server>\n      \
         node=tars.tarsnode.ServerObj@tcp -h 127.0.0.1 -p {node_port} -t 60000\n      app={APP}\n      server={SERVER}\n      \
         localip=127.0.0.1\n      local=tcp -h 127.0.0.1 -p {local_port} -t 10000\n      basepath={base}/bin/\n      \
         datapath={base}/data/\n      logpath={log}\n      loglevel=DEBUG\n      config=tars.tarsconfig.ConfigObj\n      \
         deactivating-timeout=3000\n      <{OBJ}Adapter>\n        allow\n        endpoint=tcp -h 127.0.0.1 -p {echo_port} -t 60000\n        \
         maxconns=100000\n        protocol=tars\n        queuecap=10000\n        queuetimeout=60000\n        servant={OBJ}\n        \
         threads=1\n      </{OBJ}Adapter>\n    </server>\n    <client>\n      locator={locator}\n      sync-invoke-timeout=3000\n      \
         async-invoke-timeout=5000\n      refresh-endpoint-interval=60000\n      modulename={APP}.{SERVER}\n    </client>\n  \
         </application>\n</tars>\n",
        log = d.join("log").display(),
    )
}

/// Waits until our registry routes the object to `endpoint` alone (its route cache follows the
/// database within its poll interval), asking QueryObj with our own client.
fn wait_routed(client: &BlockingClient, locator: &str, endpoint: &str) {
    let lookup = || {
        let locator = locator.to_owned();
        client.run(move |comm| async move {
            let options = CallOptions { timeout_ms: 5000, ..CallOptions::default() };
            let p = QueryFProxy::new(comm.proxy(&locator).unwrap(), "tars.tarsregistry.QueryObj").with_options(options);
            let (mut a, mut i) = (Vec::new(), Vec::new());
            let ret = p.find_object_by_id4_any(OBJ, &mut a, &mut i).await.unwrap();
            let names = |v: &[EndpointF]| v.iter().map(|e| format!("{}:{}", e.host, e.port)).collect::<Vec<_>>();
            (ret, names(&a), names(&i))
        })
    };
    wait_for(Duration::from_secs(10), || {
        let (ret, active, inactive) = lookup();
        (ret == 0 && active == [endpoint] && inactive.is_empty()).then_some(())
    })
    .unwrap_or_else(|| panic!("{OBJ} not routed to {endpoint} alone: {:?}", lookup()));
}

/// `(active endpoints, inactive endpoints, echo answer)` from `node_business/client.js`.
fn resolve_and_call(locator: &str, text: &str) -> (Vec<String>, Vec<String>, String) {
    let out = tars_testkit::node::run_script("node_business/client.js", &[locator, OBJ, text], &["@tars/registry"]);
    let (mut active, mut inactive, mut echo) = (Vec::new(), Vec::new(), String::new());
    for line in out.lines() {
        if let Some(e) = line.strip_prefix("active ") {
            active.push(e.to_owned());
        } else if let Some(e) = line.strip_prefix("inactive ") {
            inactive.push(e.to_owned());
        } else if let Some(e) = line.strip_prefix("echo ") {
            echo = e.to_owned();
        }
    }
    (active, inactive, echo)
}

#[test]
fn nodejs_server_deployed_started_resolved_and_restarted() {
    let t0 = Instant::now();
    // node-agent's ServerF proxy encodes what protocol/tars/NodeF.tars says.
    let check = tars_testkit::node::run_script("node-agent/check_proxy.js", &[], &[]);
    assert_eq!(check.trim(), "OK 12", "check_proxy.js");
    let db = TestDb::sqlite("node_nodejs");
    let dir = TempDir::new("node-nodejs").unwrap();
    let d = dir.0.clone();
    let server_dir = d.join(format!("data/{APP}.{SERVER}"));
    install_package(&server_dir.join("bin"));

    config_file_row(&db);
    let reg = start_registry(&db);
    let config = start_config(&db);
    let config_port = config.server().addr(&format!("{CONFIG_OBJ}Adapter")).unwrap().port();
    let echo_port = free_port();
    deploy_rows(&db, echo_port, config_port);
    let locator = reg.locator();
    let node = start_node(&d, reg.addr_of("tars.tarsregistry.RegistryObj").unwrap().port(), &locator);
    let node_port = node.server().addr("ServerAdapter").unwrap().port();
    let h = node.service::<NodeService>().unwrap().handle().unwrap();

    // Started, heart-beating (the agent's own pid, which the node started and watches), Active
    // in the database with the version node-agent reported.
    let mut reaper = Reaper::default();
    let pid = wait_active(&h, &d, 0, Duration::from_secs(20));
    reaper.0.push(pid);
    let pid_file = server_dir.join("bin/tars_start.sh.pid");
    assert_eq!(read_pid(&pid_file), Some(pid), "the pid the node watches is node-agent's");
    let (present, db_pid, version) = wait_for(Duration::from_secs(10), || {
        let r = row(&db);
        (r.0 == "active" && r.1 == i64::from(pid) && !r.2.is_empty()).then_some(r)
    })
    .unwrap_or_else(|| panic!("t_server_conf row: {:?}", row(&db)));
    assert_eq!((present.as_str(), db_pid), ("active", i64::from(pid)));
    assert!(version.starts_with("node-agent-standin 0.1.0 (node v"), "tars_version {version:?}");

    // The generated config, whole.
    let conf_path = server_dir.join(format!("conf/{APP}.{SERVER}.config.conf"));
    let conf = fs::read_to_string(&conf_path).unwrap();
    let local_port = Config::parse(&conf)
        .unwrap()
        .get("/tars/application/server<local>")
        .and_then(|l| tars_proto::endpoint::Endpoint::parse(l).ok())
        .map(|e| e.port)
        .unwrap();
    // `${locator}` is the registry's active QueryObj endpoints as the node last fetched them.
    let query_port = reg.addr_of("tars.tarsregistry.QueryObj").unwrap().port();
    let node_locator = format!("tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p {query_port}");
    assert_eq!(
        conf,
        expected_config(&d, &node_locator, node_port, local_port, echo_port),
        "generated {}",
        conf_path.display()
    );
    let script = fs::read_to_string(server_dir.join("bin/tars_start.sh")).unwrap();
    let bin = server_dir.join("bin");
    let launch = format!(
        "node {b}/tars_nodejs/node-agent/bin/node-agent {b} -c {c}  & pid=$!",
        b = bin.display(),
        c = conf_path.display()
    );
    assert!(script.contains(&launch), "launch line {launch:?} in\n{script}");

    // @tars/config got the file byte for byte (the worker wrote it before it listened).
    let data = server_dir.join("data");
    assert_eq!(
        fs::read(data.join(FILE)).unwrap(),
        CONTENT.as_bytes(),
        "{FILE} as @tars/config loaded it; log:\n{}",
        server_log(&d)
    );
    let worker = read_pid(&data.join("worker.pid")).unwrap();
    assert_ne!(worker, pid);

    // @tars/registry resolves the object through our registry; @tars/rpc calls it by name.
    let query = BlockingClient::start(ClientConfig::default(), IoMode::EpollEt).unwrap();
    let endpoint = format!("127.0.0.1:{echo_port}");
    wait_routed(&query, &locator, &endpoint);
    let (active, inactive, echo) = resolve_and_call(&locator, "hello from rust");
    assert_eq!(active, vec![endpoint.clone()]);
    assert!(inactive.is_empty(), "inactive {inactive:?}");
    assert_eq!(echo, "\"hello from rust\"");
    eprintln!("deployed, Active, resolved and called in {:?}", t0.elapsed());

    // kill -9 of the worker: node-agent exits, the node restarts the server.
    let _ = fs::remove_file(data.join(FILE));
    let killed = Instant::now();
    kill_process(Pid::from_raw(worker).unwrap(), Signal::KILL).unwrap();
    let new_pid = wait_active(&h, &d, pid, Duration::from_secs(15));
    reaper.0.push(new_pid);
    eprintln!("worker killed → Active again with a new pid in {:?}", killed.elapsed());
    assert!(!tars_node::supervise::is_alive(u32::try_from(pid).unwrap()), "the old node-agent exited");
    reaper.0.retain(|&p| p != pid);
    let new_worker = wait_for(Duration::from_secs(10), || read_pid(&data.join("worker.pid")).filter(|&w| w != worker))
        .expect("a new worker");
    assert!(tars_node::supervise::is_alive(u32::try_from(new_worker).unwrap()));
    // The node writes the new pid with `activating` first, then `active` after the first beat.
    wait_for(Duration::from_secs(10), || {
        let r = row(&db);
        (r.0 == "active" && r.1 == i64::from(new_pid)).then_some(())
    })
    .unwrap_or_else(|| panic!("new pid {new_pid}, active in t_server_conf: {:?}", row(&db)));
    assert_eq!(fs::read(data.join(FILE)).unwrap(), CONTENT.as_bytes(), "loaded again after the restart");
    wait_routed(&query, &locator, &endpoint);
    let (_, _, echo) = resolve_and_call(&locator, "again");
    assert_eq!(echo, "\"again\"");

    // kill -9 of node-agent itself: its worker leaves with it (the IPC channel closes), the
    // node restarts the server, the new worker can bind the port.
    let killed = Instant::now();
    kill_process(Pid::from_raw(new_pid).unwrap(), Signal::KILL).unwrap();
    let third_pid = wait_active(&h, &d, new_pid, Duration::from_secs(15));
    reaper.0.push(third_pid);
    eprintln!("node-agent killed → Active again with a new pid in {:?}", killed.elapsed());
    reaper.0.retain(|&p| p != new_pid);
    let gone = |pid: i32| !tars_node::supervise::is_alive(u32::try_from(pid).unwrap());
    assert!(
        wait_for(Duration::from_secs(5), || gone(new_worker).then_some(())).is_some(),
        "the orphaned worker exited"
    );
    let third_worker = read_pid(&data.join("worker.pid")).unwrap();
    assert_ne!(third_worker, new_worker);
    wait_for(Duration::from_secs(10), || {
        let r = row(&db);
        (r.0 == "active" && r.1 == i64::from(third_pid)).then_some(())
    })
    .unwrap_or_else(|| panic!("pid {third_pid}, active in t_server_conf: {:?}", row(&db)));
    wait_routed(&query, &locator, &endpoint);
    let (_, _, echo) = resolve_and_call(&locator, "third");
    assert_eq!(echo, "\"third\"");

    // Stopped through the node: SIGTERM reaches the worker through node-agent.
    let (code, _) = h.stop(APP, SERVER).wait(Duration::from_secs(20)).unwrap();
    assert_eq!(code, 0);
    assert!(gone(third_pid));
    reaper.0.clear();
    assert!(
        wait_for(Duration::from_secs(5), || gone(third_worker).then_some(())).is_some(),
        "the worker stopped with node-agent"
    );
    wait_for(Duration::from_secs(10), || (row(&db).0 == "inactive").then_some(()))
        .unwrap_or_else(|| panic!("inactive in t_server_conf after the stop: {:?}", row(&db)));
    node.shutdown();
    node.wait().unwrap();
    config.shutdown();
    config.wait().unwrap();
    reg.shutdown().unwrap();
    eprintln!("total {:?}", t0.elapsed());
}
