//! `/tars/registry<nodeallow>` against a registry serving on 0.0.0.0, on every IO driver: a
//! peer connecting through this host's own non-loopback address is refused `registerNode`,
//! `getFrameworkKey` and the container interface, and nothing reaches the database, while a
//! loopback peer is served; the list can name that address; `*` serves everyone; QueryObj
//! answers every peer whatever the list says.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use common::{add_server, TestDb};
use tars_core_net::client::config::ClientConfig;
use tars_core_net::client::BlockingClient;
use tars_core_net::rt::IoMode;
use tars_proto::config::Config;
use tars_proto::rpc::{CallError, CallOptions};
use tars_protocol::tars::{
    onStartupReq, tarsregistryProxy, ContainerAdapterConf, FrameworkKey, LoadInfo, NodeInfo, QueryFProxy, RegistryProxy,
};
use tars_registry::service::{Registry, StartOptions};
use tars_sql::params;
use tars_testkit::own_address;

const QUERY: &str = "tars.tarsregistry.QueryObj";
const REGISTRY: &str = "tars.tarsregistry.RegistryObj";
const CONTAINER: &str = "tars.tarsregistry.Registry";

fn start(db: &TestDb, io: IoMode, nodeallow: Option<&str>) -> Registry {
    let extra = nodeallow.map(|v| format!("<registry>\nnodeallow={v}\n</registry>")).unwrap_or_default();
    let text = common::registry_config("", &extra).replace("-h 127.0.0.1", "-h 0.0.0.0");
    let opts = StartOptions { io: Some(io), shards: Some(2), store: Some(db.store.clone()) };
    tars_registry::service::start(&Config::parse(&text).unwrap(), opts).unwrap()
}

/// What one peer address gets from the registry's three servants.
struct Peer {
    client: BlockingClient,
    ip: IpAddr,
    ports: [u16; 3],
}

type Answer<T> = Result<T, CallError>;

impl Peer {
    fn new(reg: &Registry, ip: IpAddr, io: IoMode) -> Peer {
        let port = |obj: &str| reg.addr_of(obj).unwrap().port();
        let client = BlockingClient::start(ClientConfig::default(), io).unwrap();
        Peer { client, ip, ports: [port(QUERY), port(REGISTRY), port(CONTAINER)] }
    }

    fn object(&self, obj: &str, port: u16) -> String {
        format!("{obj}@tcp -h {} -p {port} -t 10000", self.ip)
    }

    fn register(&self, node: &str) -> Answer<i32> {
        let (object, node) = (self.object(REGISTRY, self.ports[1]), node.to_owned());
        self.client.run(move |comm| async move {
            let p = RegistryProxy::new(comm.proxy(&object).unwrap(), REGISTRY).with_options(options());
            let ni = NodeInfo {
                node_name: node.clone(),
                node_obj: format!("tars.tarsnode.NodeObj@tcp -h {node} -p 19385"),
                ..NodeInfo::default()
            };
            p.register_node(&node, &ni, &LoadInfo::default()).await
        })
    }

    fn framework_key(&self) -> Answer<(i32, FrameworkKey)> {
        let object = self.object(REGISTRY, self.ports[1]);
        self.client.run(move |comm| async move {
            let p = RegistryProxy::new(comm.proxy(&object).unwrap(), REGISTRY).with_options(options());
            let mut key = FrameworkKey::default();
            p.get_framework_key(&mut key).await.map(|ret| (ret, key))
        })
    }

    fn container_startup(&self, node: &str) -> Answer<()> {
        let (object, node) = (self.object(CONTAINER, self.ports[2]), node.to_owned());
        self.client.run(move |comm| async move {
            let p = tarsregistryProxy::new(comm.proxy(&object).unwrap(), CONTAINER).with_options(options());
            let req = onStartupReq {
                node_name: node.clone(),
                application: "App".into(),
                server: "Pod".into(),
                adapters: vec![ContainerAdapterConf {
                    servant: "App.Pod.Obj".into(),
                    endpoint: format!("tcp -h {node} -p 10001"),
                    ..ContainerAdapterConf::default()
                }],
                state: "active".into(),
                ..onStartupReq::default()
            };
            p.on_startup(&req).await
        })
    }

    fn find(&self, id: &str) -> Answer<Vec<String>> {
        let (object, id) = (self.object(QUERY, self.ports[0]), id.to_owned());
        self.client.run(move |comm| async move {
            let p = QueryFProxy::new(comm.proxy(&object).unwrap(), QUERY).with_options(options());
            let found = p.find_object_by_id(&id).await?;
            Ok(found.iter().map(|e| format!("{}:{}", e.host, e.port)).collect())
        })
    }
}

fn options() -> CallOptions {
    CallOptions { timeout_ms: 10_000, ..CallOptions::default() }
}

fn refused<T: std::fmt::Debug>(answer: Answer<T>, call: &str) {
    match answer {
        Err(CallError::Server { code: -99, desc }) => {
            assert!(desc.contains(call) && desc.contains("nodeallow"), "{desc}");
        }
        other => panic!("{call} from outside the list must be refused: {other:?}"),
    }
}

fn rows(db: &TestDb, table: &str) -> i64 {
    db.query(&format!("SELECT COUNT(*) FROM {table}"), params![])[0].get(0).unwrap()
}

fn nodeallow(io: IoMode) {
    let me = own_address();
    let loopback = IpAddr::from([127, 0, 0, 1]);
    let db = common::sqlite(&format!("nodeallow_{io}"));
    db.exec("INSERT INTO t_framework_key (cuid, pri_key) VALUES (?, ?)", params!["cuid-1", "secret"]);
    add_server(&db, "App", "Route", "10.8.0.1", &[], &[("App.Route.Obj", "tcp -h 10.8.0.1 -p 1")]);
    let secret = (0, FrameworkKey { cuid: "cuid-1".into(), pri_key: "secret".into() });

    // No key: loopback only.
    let reg = start(&db, io, None);
    let (outside, inside) = (Peer::new(&reg, me, io), Peer::new(&reg, loopback, io));
    refused(outside.register("10.8.1.1"), "registerNode");
    refused(outside.framework_key(), "getFrameworkKey");
    refused(outside.container_startup("10.8.1.2"), "onStartup");
    assert_eq!((rows(&db, "t_node_info"), rows(&db, "t_server_conf")), (0, 1), "nothing written for {me}");
    // QueryObj answers the same peer.
    let start_wait = Instant::now();
    while outside.find("App.Route.Obj").unwrap() != ["10.8.0.1:1"] {
        assert!(start_wait.elapsed() < Duration::from_secs(3), "QueryObj must answer {me}");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(inside.register("10.8.1.1").unwrap(), 0);
    assert_eq!(inside.framework_key().unwrap(), secret);
    inside.container_startup("10.8.1.2").unwrap();
    assert_eq!((rows(&db, "t_node_info"), rows(&db, "t_server_conf")), (2, 2));
    drop((outside, inside));
    reg.shutdown().unwrap();

    // The list names this host's address; loopback is then outside it.
    let reg = start(&db, io, Some(&format!("{me}/32")));
    let (outside, inside) = (Peer::new(&reg, me, io), Peer::new(&reg, loopback, io));
    assert_eq!(outside.register("10.8.1.3").unwrap(), 0);
    assert_eq!(outside.framework_key().unwrap(), secret);
    refused(inside.register("10.8.1.4"), "registerNode");
    assert_eq!(inside.find("App.Route.Obj").unwrap(), ["10.8.0.1:1"]);
    drop((outside, inside));
    reg.shutdown().unwrap();

    // `*`: upstream's open registry.
    let reg = start(&db, io, Some("*"));
    let (outside, inside) = (Peer::new(&reg, me, io), Peer::new(&reg, loopback, io));
    assert_eq!(outside.register("10.8.1.5").unwrap(), 0);
    assert_eq!(outside.framework_key().unwrap(), secret);
    outside.container_startup("10.8.1.6").unwrap();
    assert_eq!(inside.register("10.8.1.7").unwrap(), 0);
    let nodes = db.query("SELECT node_name FROM t_node_info ORDER BY node_name", params![]);
    let nodes: Vec<String> = nodes.iter().map(|r| r.get(0).unwrap()).collect();
    assert_eq!(nodes, ["10.8.1.1", "10.8.1.2", "10.8.1.3", "10.8.1.5", "10.8.1.6", "10.8.1.7"]);
    drop((outside, inside));
    reg.shutdown().unwrap();
}

tars_core_net::on_every_driver! {
    nodeallow => nodeallow;
}

/// A bad list stops the registry at start, naming the key.
#[test]
fn a_bad_list_is_refused_at_start() {
    let db = common::sqlite("nodeallow_bad");
    let text = common::registry_config("", "<registry>\nnodeallow=10.0.0.0/40\n</registry>");
    let opts = StartOptions { io: Some(IoMode::EpollEt), shards: Some(1), store: Some(db.store.clone()) };
    let e = tars_registry::service::start(&Config::parse(&text).unwrap(), opts).expect_err("refused");
    assert!(e.to_string().contains("nodeallow"), "{e}");
}
