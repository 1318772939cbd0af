#![allow(clippy::unwrap_used)]
//! The node end to end: a real registry over SQLite (and MariaDB), a `NodeService` in-process,
//! real server processes (`tarsnode-test-server`, heart-beating through the framework duties),
//! crashes by SIGKILL, a server that stops heart-beating (SIGSTOP), a crash loop, and the
//! registry going away.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustix::process::{kill_process, Pid, Signal};
use tars_core_net::app::{Application, Running};
use tars_core_net::rt::IoMode;
use tars_node::{NodeHandle, NodeOptions, NodeService};
use tars_proto::config::Config;
use tars_protocol::tars::ServerState;
use tars_registry::service::Registry;
use tars_testkit::db::TestDb;
use tars_testkit::process::TempDir;
use tars_testkit::wait_for;

mod common;

const NODE: &str = "127.0.0.1";
const APP: &str = "Test";

fn start_registry(db: &TestDb) -> Registry {
    start_registry_on(db, 0, 0)
}

/// A registry on fixed ports (0: any), so that one can come back where it was.
fn start_registry_on(db: &TestDb, query_port: u16, registry_port: u16) -> Registry {
    common::start_registry(db, "tarsregistry", "127.0.0.1", (query_port, registry_port), "", "")
}

/// A server row whose executable is `<data>/Test.<server>/bin/<server>` (a symlink to the
/// test server, or a script), with `hearttimeout` in ms.
fn add_server(db: &TestDb, data: &Path, server: &str, exe: Option<&str>, heart_ms: u64) {
    let bin = data.join(format!("{APP}.{server}/bin"));
    fs::create_dir_all(&bin).unwrap();
    let target = bin.join(server);
    let _ = fs::remove_file(&target);
    match exe {
        None => std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_tarsnode-test-server"), &target).unwrap(),
        Some(script) => {
            fs::write(&target, script).unwrap();
            fs::set_permissions(&target, fs::Permissions::from_mode(0o755)).unwrap();
        }
    }
    let profile = format!(
        "<tars>\n<application>\n<server>\napp=${{app}}\nserver=${{server}}\nlocal=${{local}}\nlogpath=${{logpath}}\n\
         hearttimeout={heart_ms}\ndeactivating-timeout=2000\npriKey=${{priKey}}\n</server>\n</application>\n</tars>\n"
    );
    db.exec(
        "INSERT INTO t_server_conf (application, server_name, node_name, setting_state, present_state, server_type, profile) \
         VALUES (?, ?, ?, 'active', 'inactive', 'tars_cpp', ?)",
        vec![APP.into(), server.into(), NODE.into(), profile.into()],
    );
}

struct Node {
    running: Running,
    handle: NodeHandle,
}

type Notices = Arc<Mutex<Vec<(String, String)>>>;

fn node_config(dir: &Path, registry_port: u16, locator: &str) -> String {
    format!(
        "<tars>\n<application>\n<client>\nlocator={locator}\nsync-invoke-timeout=3000\n</client>\n<server>\napp=tars\nserver=tarsnode\n\
         localip={NODE}\nlocal=tcp -h 127.0.0.1 -p 0 -t 10000\ndatapath={d}/data\nlogpath={d}/log\n\
         <NodeAdapter>\nendpoint=tcp -h 127.0.0.1 -p 0 -t 60000\nservant=tars.tarsnode.NodeObj\n</NodeAdapter>\n\
         <ServerAdapter>\nendpoint=tcp -h 127.0.0.1 -p 0 -t 60000\nservant=tars.tarsnode.ServerObj\n</ServerAdapter>\n\
         </server>\n</application>\n<node>\nregistryObj=tars.tarsregistry.RegistryObj@tcp -h 127.0.0.1 -p {registry_port} -t 3000\n\
         <keepalive>\nmonitorIntervalMs=200\nreportAliveInterval=1\nconfigInterval=2\nsynStatInterval=5\n</keepalive>\n</node>\n</tars>\n",
        d = dir.display()
    )
}

fn start_node(dir: &Path, registry_port: u16, locator: &str, notices: &Notices) -> Node {
    let config = Config::parse(&node_config(dir, registry_port, locator)).unwrap();
    let n = notices.clone();
    let hook = Arc::new(move |id: &str, msg: &str| n.lock().unwrap().push((id.to_owned(), msg.to_owned())));
    let opts = NodeOptions { node_id: None, config_file: None, notice_hook: Some(hook), hosted: Vec::new() };
    let running =
        Application::new(config).unwrap().io(IoMode::EpollEt).service(NodeService::new(opts)).start().unwrap();
    let handle = running.service::<NodeService>().unwrap().handle().unwrap();
    Node { running, handle }
}

fn stop_node(node: Node) {
    node.running.shutdown();
    node.running.wait().unwrap();
}

/// `(state, pid, exState)` of a server.
fn state(h: &NodeHandle, server: &str) -> (ServerState, i32, std::collections::BTreeMap<String, String>) {
    let (_, info, _) = h.get_state_info(APP, server).wait(Duration::from_secs(5)).unwrap();
    (info.server_state, info.process_id, info.ex_state.into_iter().collect())
}

fn wait_active(h: &NodeHandle, server: &str, not_pid: i32, limit: Duration) -> i32 {
    wait_for(limit, || {
        let (s, pid, _) = state(h, server);
        (s == ServerState::Active && pid > 0 && pid != not_pid).then_some(pid)
    })
    .unwrap_or_else(|| panic!("{server} not Active (with a new pid) within {limit:?}: {:?}", state(h, server)))
}

fn present_state(db: &TestDb, server: &str) -> String {
    let rows = db.query(
        "SELECT present_state FROM t_server_conf WHERE application = ? AND server_name = ?",
        vec![APP.into(), server.into()],
    );
    rows.first().and_then(|r| r.get_by::<String>("present_state").ok()).unwrap_or_default()
}

fn kill(pid: i32, sig: Signal) {
    kill_process(Pid::from_raw(pid).unwrap(), sig).unwrap();
}

fn alive(pid: i32) -> bool {
    tars_node::supervise::is_alive(u32::try_from(pid).unwrap())
}

fn dir_path(d: &TempDir) -> PathBuf {
    d.0.clone()
}

/// Registered, started from `t_server_conf`, Active in the database; a SIGKILL is restarted
/// within a second.
fn starts_and_restarts(db: TestDb) {
    let dir = TempDir::new("node-basic").unwrap();
    let d = dir_path(&dir);
    add_server(&db, &d.join("data"), "HeartServer", None, 45_000);
    // The framework key TarsWeb keeps in t_framework_key becomes the config's `${priKey}`.
    db.exec("INSERT INTO t_framework_key (cuid, pri_key) VALUES (?, ?)", vec!["c-1".into(), "secret-key=1".into()]);
    let reg = start_registry(&db);
    let port = reg.addr_of("tars.tarsregistry.RegistryObj").unwrap().port();
    let notices = Notices::default();
    let node = start_node(&d, port, &reg.locator(), &notices);
    let h = node.handle.clone();
    let pid = wait_active(&h, "HeartServer", 0, Duration::from_secs(20));
    wait_for(Duration::from_secs(10), || present_state(&db, "HeartServer").contains("active").then_some(()))
        .unwrap_or_else(|| panic!("present_state {}", present_state(&db, "HeartServer")));
    let nodes = db.query("SELECT present_state FROM t_node_info WHERE node_name = ?", vec![NODE.into()]);
    assert_eq!(nodes.len(), 1, "node registered");
    let conf =
        fs::read_to_string(d.join(format!("data/{APP}.HeartServer/conf/{APP}.HeartServer.config.conf"))).unwrap();
    assert!(conf.contains("priKey=secret-key\\=1\n"), "{conf}");

    let t0 = Instant::now();
    kill(pid, Signal::KILL);
    let new_pid = wait_for(Duration::from_secs(5), || {
        let (_, p, _) = state(&h, "HeartServer");
        (p > 0 && p != pid).then_some(p)
    })
    .expect("restarted");
    let seen = t0.elapsed();
    let (_, _, ex) = state(&h, "HeartServer");
    eprintln!(
        "kill -9 → new pid in {seen:?}; exit→start {} ms",
        ex.get("LAST_EXIT_TO_START_MS").cloned().unwrap_or_default()
    );
    assert!(seen < Duration::from_secs(1), "restart took {seen:?}");
    wait_active(&h, "HeartServer", pid, Duration::from_secs(10));
    assert!(alive(new_pid));

    let (code, _) = h.stop(APP, "HeartServer").wait(Duration::from_secs(20)).unwrap();
    assert_eq!(code, 0);
    assert!(!alive(new_pid));
    stop_node(node);
    reg.shutdown().unwrap();
}

/// The registry away for `TARS_TEST_REGISTRY_DOWN_SECS` (default 60): the server keeps
/// running, a crash meanwhile is restarted, and once the registry is back (same ports) the
/// database holds the new pid and the Active state.
fn registry_outage(db: TestDb) {
    let down_for = Duration::from_secs(
        std::env::var("TARS_TEST_REGISTRY_DOWN_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(60),
    );
    let dir = TempDir::new("node-outage").unwrap();
    let d = dir_path(&dir);
    add_server(&db, &d.join("data"), "OutageServer", None, 45_000);
    let reg = start_registry(&db);
    let (qport, rport) = (
        reg.addr_of("tars.tarsregistry.QueryObj").unwrap().port(),
        reg.addr_of("tars.tarsregistry.RegistryObj").unwrap().port(),
    );
    let notices = Notices::default();
    let node = start_node(&d, rport, &reg.locator(), &notices);
    let h = node.handle.clone();
    let pid = wait_active(&h, "OutageServer", 0, Duration::from_secs(20));
    let pid_in_db = || {
        db.query("SELECT process_id FROM t_server_conf WHERE server_name = ?", vec!["OutageServer".into()])
            .first()
            .and_then(|r| r.get_by::<i64>("process_id").ok())
            .unwrap_or_default()
    };
    wait_for(Duration::from_secs(10), || (pid_in_db() == i64::from(pid)).then_some(()))
        .unwrap_or_else(|| panic!("pid {pid} recorded: {}", pid_in_db()));

    reg.shutdown().unwrap();
    let down_at = Instant::now();
    std::thread::sleep(down_for / 3);
    assert!(alive(pid), "the server keeps running without the registry");
    kill(pid, Signal::KILL);
    let new_pid = wait_active(&h, "OutageServer", pid, Duration::from_secs(10));
    std::thread::sleep(down_for.saturating_sub(down_at.elapsed()));
    assert!(alive(new_pid), "still running at the end of the outage");
    assert_eq!(pid_in_db(), i64::from(pid), "nothing reached the database meanwhile");

    let reg = start_registry_on(&db, qport, rport);
    wait_for(Duration::from_secs(15), || (pid_in_db() == i64::from(new_pid)).then_some(()))
        .unwrap_or_else(|| panic!("new pid {new_pid} recorded once the registry is back: {}", pid_in_db()));
    assert!(present_state(&db, "OutageServer").contains("active"));
    let (code, _) = h.stop(APP, "OutageServer").wait(Duration::from_secs(20)).unwrap();
    assert_eq!(code, 0);
    stop_node(node);
    reg.shutdown().unwrap();
}

#[test]
fn registry_down_for_a_minute() {
    registry_outage(TestDb::sqlite("node_outage"));
}

mod on_sqlite {
    #[test]
    fn starts_and_restarts() {
        super::starts_and_restarts(tars_testkit::db::TestDb::sqlite("node_basic"));
    }
}

mod on_mysql {
    #[test]
    fn starts_and_restarts() {
        super::starts_and_restarts(tars_testkit::db::TestDb::mysql("tarsnode", "basic"));
    }
}

/// A server alive but silent (SIGSTOP) is stopped and restarted after its `hearttimeout`.
#[test]
fn silent_server_is_restarted() {
    let db = TestDb::sqlite("node_silent");
    let dir = TempDir::new("node-silent").unwrap();
    let d = dir_path(&dir);
    add_server(&db, &d.join("data"), "SilentServer", None, 12_000);
    let reg = start_registry(&db);
    let port = reg.addr_of("tars.tarsregistry.RegistryObj").unwrap().port();
    let notices = Notices::default();
    let node = start_node(&d, port, &reg.locator(), &notices);
    let h = node.handle.clone();
    let pid = wait_active(&h, "SilentServer", 0, Duration::from_secs(20));
    kill(pid, Signal::STOP);
    let t0 = Instant::now();
    let new_pid = wait_active(&h, "SilentServer", pid, Duration::from_secs(35));
    eprintln!("silent server replaced after {:?}", t0.elapsed());
    assert!(!alive(pid), "the silent process was killed");
    assert!(notices.lock().unwrap().iter().any(|(_, m)| m.contains("zombie")));
    let _ = h.stop(APP, "SilentServer").wait(Duration::from_secs(20));
    assert!(!alive(new_pid));
    stop_node(node);
    reg.shutdown().unwrap();
}

/// A crash loop: 11 quick restarts, then no more automatic starts; one down alarm.
#[test]
fn crash_loop_is_throttled() {
    let db = TestDb::sqlite("node_crash");
    let dir = TempDir::new("node-crash").unwrap();
    let d = dir_path(&dir);
    add_server(&db, &d.join("data"), "CrashServer", Some("#!/bin/sh\nsleep 0.2\nexit 1\n"), 45_000);
    let reg = start_registry(&db);
    let port = reg.addr_of("tars.tarsregistry.RegistryObj").unwrap().port();
    let notices = Notices::default();
    let node = start_node(&d, port, &reg.locator(), &notices);
    let h = node.handle.clone();
    let limited = wait_for(Duration::from_secs(30), || {
        let (_, _, ex) = state(&h, "CrashServer");
        ex.contains_key("LIMITED").then(|| ex.get("STARTS").cloned().unwrap_or_default())
    })
    .expect("throttled");
    assert_eq!(limited, "12", "the first start and 11 quick restarts");
    std::thread::sleep(Duration::from_secs(2));
    let (s, _, ex) = state(&h, "CrashServer");
    assert_eq!(s, ServerState::Inactive);
    assert_eq!(ex.get("STARTS").map(String::as_str), Some("12"), "no start while limited");
    let downs = notices.lock().unwrap().iter().filter(|(id, m)| id == "Test.CrashServer" && m.contains("down")).count();
    assert_eq!(downs, 1, "one down alarm per incident: {:?}", notices.lock().unwrap());
    stop_node(node);
    reg.shutdown().unwrap();
}

/// The registry goes away: servers keep running; a node started then loads the descriptor
/// cache, adopts the running server and restarts it after a crash.
#[test]
fn registry_down_uses_the_cache() {
    let db = TestDb::sqlite("node_cache");
    let dir = TempDir::new("node-cache").unwrap();
    let d = dir_path(&dir);
    add_server(&db, &d.join("data"), "CacheServer", None, 45_000);
    let reg = start_registry(&db);
    let port = reg.addr_of("tars.tarsregistry.RegistryObj").unwrap().port();
    let locator = reg.locator();
    let notices = Notices::default();
    let node = start_node(&d, port, &locator, &notices);
    let pid = wait_active(&node.handle, "CacheServer", 0, Duration::from_secs(20));
    assert!(d.join("data/serversCache.dat").is_file());
    stop_node(node);
    reg.shutdown().unwrap();
    assert!(alive(pid), "stopping the node leaves its servers running");

    let node = start_node(&d, port, &locator, &notices);
    let h = node.handle.clone();
    let (s, p, _) = state(&h, "CacheServer");
    assert_eq!((s, p), (ServerState::Active, pid), "adopted from the cache and the pid file");
    kill(pid, Signal::KILL);
    let new_pid = wait_active(&h, "CacheServer", pid, Duration::from_secs(10));
    assert!(alive(new_pid));
    let (code, _) = h.stop(APP, "CacheServer").wait(Duration::from_secs(20)).unwrap();
    assert_eq!(code, 0);
    stop_node(node);
}
