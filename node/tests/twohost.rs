#![allow(clippy::unwrap_used)]
//! The seeds' "add a node host", on a second host made of a network namespace: the `tarsnode`
//! binary runs inside it with a locator listing two registries on this host, registers, runs
//! its server, and is operated from tarsAdminRegistry on this host (stop and start through the
//! push channel); cutting the link marks the node inactive and its server leaves the active
//! routes; restoring the link brings both back.

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use tars_adminreg::service::AdminRegService;
use tars_core_net::app::{Application, Running};
use tars_core_net::client::config::ClientConfig;
use tars_core_net::client::BlockingClient;
use tars_core_net::rt::IoMode;
use tars_proto::config::Config;
use tars_proto::rpc::CallOptions;
use tars_protocol::tars::{AdminRegProxy, QueryFProxy, ServerStateDesc};
use tars_registry::service::Registry;
use tars_testkit::db::TestDb;
use tars_testkit::netns::NetNs;
use tars_testkit::process::TempDir;
use tars_testkit::wait_for;

const APP: &str = "Test";
const SERVER: &str = "Remote";
const OBJ: &str = "Test.Remote.PingObj";
mod common;

use common::{QUERY, REGISTRY};
const ADMIN: &str = "tars.tarsAdminRegistry.AdminRegObj";

/// AdminReg on this host, reachable from the namespace.
fn start_admin(db: &TestDb) -> Running {
    let text = format!(
        "<tars>\n<application>\n<server>\napp=tars\nserver=tarsAdminRegistry\nlocal=tcp -h 127.0.0.1 -p 0 -t 10000\n\
         <{ADMIN}Adapter>\nendpoint=tcp -h 0.0.0.0 -p 0 -t 60000\nservant={ADMIN}\n</{ADMIN}Adapter>\n\
         </server>\n</application>\n<nodeinfo>\ncommand_timeout=20000\n</nodeinfo>\n</tars>\n"
    );
    Application::new(Config::parse(&text).unwrap())
        .unwrap()
        .io(IoMode::EpollEt)
        .service(AdminRegService::new(Some(db.store.clone())))
        .start()
        .unwrap()
}

/// AdminReg's `op` on the namespace's server: `(ret, pid after it)`.
fn operate(client: &BlockingClient, admin_port: u16, node: &str, op: &'static str) -> (i32, i32) {
    let node = node.to_owned();
    client.run(move |comm| async move {
        let p = AdminRegProxy::new(comm.proxy(&format!("{ADMIN}@tcp -h 127.0.0.1 -p {admin_port}")).unwrap(), ADMIN)
            .with_options(CallOptions { timeout_ms: 30_000, ..Default::default() });
        let mut result = String::new();
        let ret = match op {
            "start" => p.start_server(APP, SERVER, &node, &mut result).await.unwrap(),
            "stop" => p.stop_server(APP, SERVER, &node, &mut result).await.unwrap(),
            _ => 0,
        };
        let mut desc = ServerStateDesc::default();
        p.get_server_state(APP, SERVER, &node, &mut desc, &mut result).await.unwrap();
        (ret, desc.process_id)
    })
}

/// A registry that serves node calls from loopback and from `allow` (the second host).
fn start_registry(db: &TestDb, name: &str, allow: &str) -> Registry {
    common::start_registry(
        db,
        name,
        "0.0.0.0",
        (0, 0),
        "nodeTimeout=3\nnodeTimeoutInterval=1\nrecoverProtect=N\n",
        &format!("<registry>\nnodeallow=127.0.0.0/8;{allow}/32\n</registry>\n"),
    )
}

/// The server row and its adapter, on the namespace's node.
fn deploy(db: &TestDb, data: &Path, node: &str, port: u16) {
    let bin = data.join(format!("{APP}.{SERVER}/bin"));
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_tarsnode-test-server"), bin.join(SERVER)).unwrap();
    let profile = "<tars>\n<application>\n<server>\napp=${app}\nserver=${server}\nlocal=${local}\nlogpath=${logpath}\n\
                   deactivating-timeout=2000\n</server>\n</application>\n</tars>\n";
    db.exec(
        "INSERT INTO t_server_conf (application, server_name, node_name, setting_state, present_state, server_type, profile) \
         VALUES (?, ?, ?, 'active', 'inactive', 'tars_cpp', ?)",
        vec![APP.into(), SERVER.into(), node.into(), profile.into()],
    );
    db.exec(
        "INSERT INTO t_adapter_conf (application, server_name, node_name, adapter_name, thread_num, endpoint, \
         max_connections, allow_ip, servant, queuecap, queuetimeout, protocol) \
         VALUES (?, ?, ?, ?, 1, ?, 1000, '', ?, 1000, 60000, 'tars')",
        vec![
            APP.into(),
            SERVER.into(),
            node.into(),
            format!("{OBJ}Adapter").into(),
            format!("tcp -h {node} -p {port} -t 60000").into(),
            OBJ.into(),
        ],
    );
}

fn node_config(dir: &Path, ns: &NetNs, regs: &[&Registry], admin_port: u16) -> String {
    let eps = |servant: &str| {
        regs.iter()
            .map(|r| format!("tcp -h {} -p {}", ns.host_ip, r.addr_of(servant).unwrap().port()))
            .collect::<Vec<_>>()
            .join(":")
    };
    format!(
        "<tars>\n<application>\n<client>\nlocator={QUERY}@{q}\nsync-invoke-timeout=1500\n</client>\n<server>\napp=tars\nserver=tarsnode\nlogLevel=DEBUG\n\
         localip={ip}\nlocal=tcp -h 127.0.0.1 -p 0 -t 10000\ndatapath={d}/data\nlogpath={d}/log\n\
         <NodeAdapter>\nendpoint=tcp -h {ip} -p 0 -t 60000\nservant=tars.tarsnode.NodeObj\n</NodeAdapter>\n\
         <ServerAdapter>\nendpoint=tcp -h 127.0.0.1 -p 0 -t 60000\nservant=tars.tarsnode.ServerObj\n</ServerAdapter>\n\
         </server>\n</application>\n<node>\nregistryObj={REGISTRY}@{r}\nadminObj={ADMIN}@tcp -h {host} -p {admin_port}\n\
         <keepalive>\nmonitorIntervalMs=200\nreportAliveInterval=1\nconfigInterval=2\nsynStatInterval=1\nreportNodeInterval=1\n</keepalive>\n</node>\n</tars>\n",
        host = ns.host_ip,
        q = eps(QUERY),
        r = eps(REGISTRY),
        ip = ns.ns_ip,
        d = dir.display(),
    )
}

/// `(active, inactive)` endpoints of [`OBJ`] as `host:port`, from one registry.
fn routes(client: &BlockingClient, reg: &Registry) -> (Vec<String>, Vec<String>) {
    let addr = reg.addr_of(QUERY).unwrap();
    client.run(move |comm| async move {
        let proxy = comm.proxy(&format!("{QUERY}@tcp -h 127.0.0.1 -p {}", addr.port())).unwrap();
        let q = QueryFProxy::new(proxy, QUERY).with_options(CallOptions { timeout_ms: 2000, ..Default::default() });
        let (mut active, mut inactive) = (Vec::new(), Vec::new());
        q.find_object_by_id4_all(OBJ, &mut active, &mut inactive).await.unwrap();
        let show =
            |v: Vec<tars_protocol::tars::EndpointF>| v.into_iter().map(|e| format!("{}:{}", e.host, e.port)).collect();
        (show(active), show(inactive))
    })
}

/// Whether `here` is [`OBJ`]'s only endpoint, in the active list or the inactive one.
fn routed(client: &BlockingClient, reg: &Registry, here: &str, active: bool) -> bool {
    let (a, i) = routes(client, reg);
    let only = |v: &[String]| v.len() == 1 && v[0] == here;
    if active {
        only(&a) && i.is_empty()
    } else {
        a.is_empty() && only(&i)
    }
}

fn node_state(db: &TestDb, node: &str) -> String {
    let rows = db.query("SELECT present_state FROM t_node_info WHERE node_name = ?", vec![node.into()]);
    rows.first().and_then(|r| r.get_by::<String>("present_state").ok()).unwrap_or_default()
}

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_node_on_a_second_host_registers_and_leaves_the_routes_when_cut_off() {
    let ns = NetNs::create("node", 0).expect("a network namespace for the second host");
    let db = TestDb::sqlite("twohost");
    let dir = TempDir::new("node-twohost").unwrap();
    let d = dir.0.clone();
    let port = 20_000 + u16::try_from(std::process::id() % 20_000).unwrap();
    deploy(&db, &d.join("data"), &ns.ns_ip, port);
    let (r1, r2) = (start_registry(&db, "tarsregistry", &ns.ns_ip), start_registry(&db, "tarsregistry2", &ns.ns_ip));
    let admin = start_admin(&db);
    let admin_port = admin.server().addr(&format!("{ADMIN}Adapter")).unwrap().port();
    let conf = d.join("tarsnode.conf");
    std::fs::write(&conf, node_config(&d, &ns, &[&r1, &r2], admin_port)).unwrap();
    let log = std::fs::File::create(d.join("tarsnode.out")).unwrap();
    let node = ns
        .command(env!("CARGO_BIN_EXE_tarsnode"))
        .arg(format!("--config={}", conf.display()))
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();
    let _node = Kill(node);
    let client = BlockingClient::start(ClientConfig::default(), IoMode::EpollEt).unwrap();
    let here = format!("{}:{port}", ns.ns_ip);
    let logs = d.clone();
    let out = move || {
        let mut s = std::fs::read_to_string(logs.join("tarsnode.out")).unwrap_or_default();
        for dir in [format!("log/{APP}/{SERVER}"), "log/tars/tarsnode".to_owned()] {
            for f in std::fs::read_dir(logs.join(dir)).into_iter().flatten().flatten() {
                let text = std::fs::read_to_string(f.path()).unwrap_or_default();
                s += &format!("--- {}\n{}", f.path().display(), &text[text.len().saturating_sub(4000)..]);
            }
        }
        s
    };

    let limit = Duration::from_secs(30);
    wait_for(limit, || (routed(&client, &r1, &here, true) && routed(&client, &r2, &here, true)).then_some(()))
        .unwrap_or_else(|| panic!("routed on both registries: {:?}\n{}", routes(&client, &r1), out()));
    assert_eq!(node_state(&db, &ns.ns_ip), "active");
    let pid: i64 = db
        .query("SELECT process_id FROM t_server_conf WHERE node_name = ?", vec![ns.ns_ip.clone().into()])
        .first()
        .and_then(|r| r.get_by::<i64>("process_id").ok())
        .unwrap_or_default();
    assert!(pid > 0, "the server runs on the second host");

    // Operated from this host: AdminReg pushes over the connection the node keeps to it.
    let node_ip = ns.ns_ip.clone();
    wait_for(Duration::from_secs(10), || (operate(&client, admin_port, &node_ip, "state").1 > 0).then_some(()))
        .unwrap_or_else(|| panic!("AdminReg reaches the node: {}", out()));
    let (ret, after) = operate(&client, admin_port, &node_ip, "stop");
    assert_eq!(ret, 0, "stopServer on the second host");
    assert!(after <= 0, "stopped: pid {after}");
    let (ret, after) = operate(&client, admin_port, &node_ip, "start");
    assert_eq!(ret, 0, "startServer on the second host");
    assert!(after > 0 && i64::from(after) != pid, "started again: pid {after}");
    let row = || {
        db.query(
            "SELECT present_state, process_id FROM t_server_conf WHERE node_name = ?",
            vec![node_ip.clone().into()],
        )
        .first()
        .map(|r| (r.get_by::<String>("present_state").unwrap_or_default(), r.get_by::<i64>("process_id").unwrap_or(0)))
        .unwrap_or_default()
    };
    wait_for(limit, || (row() == ("active".to_owned(), i64::from(after))).then_some(()))
        .unwrap_or_else(|| panic!("Active again with pid {after}: {:?}", row()));
    wait_for(limit, || (routed(&client, &r1, &here, true) && routed(&client, &r2, &here, true)).then_some(()))
        .unwrap_or_else(|| panic!("routed again after the start: {:?}", routes(&client, &r1)));

    // A dead link: the node stops heart-beating as far as the registries can tell.
    ns.cut().unwrap();
    wait_for(Duration::from_secs(20), || {
        (node_state(&db, &ns.ns_ip) == "inactive"
            && routed(&client, &r1, &here, false)
            && routed(&client, &r2, &here, false))
        .then_some(())
    })
    .unwrap_or_else(|| panic!("inactive once cut off: {:?}", routes(&client, &r1)));
    assert_eq!(node_state(&db, &ns.ns_ip), "inactive");

    ns.restore().unwrap();
    wait_for(limit, || (routed(&client, &r1, &here, true) && routed(&client, &r2, &here, true)).then_some(()))
        .unwrap_or_else(|| panic!("back once restored: {:?}\n{}", routes(&client, &r1), out()));
    // The server rows and the node row come back through different calls (updateServerBatch,
    // keepAlive), in either order.
    wait_for(Duration::from_secs(5), || (node_state(&db, &ns.ns_ip) == "active").then_some(()))
        .unwrap_or_else(|| panic!("node row back: {}", node_state(&db, &ns.ns_ip)));
    drop(_node);
    ns.kill_all();
    admin.shutdown();
    admin.wait().unwrap();
    r1.shutdown().unwrap();
    r2.shutdown().unwrap();
}
