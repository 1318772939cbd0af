//! `tars up` seeds `db_tars`: a client that knows only the locator finds tarsstat,
//! tarsproperty, tarsconfig and tarsAdminRegistry and calls them (AdminReg reaching this
//! host's node over its push connection); seeding again adds no rows, keeps what an
//! operator edited, and moves endpoints to the ports bound now. On the embedded SQLite and on
//! the test MariaDB.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tars::{Stores, UpOptions};
use tars_core_net::client::config::ClientConfig;
use tars_core_net::client::BlockingClient;
use tars_core_net::rt::IoMode;
use tars_proto::endpoint::ObjectRef;
use tars_proto::rpc::{CallError, CallOptions};
use tars_protocol::tars::{AdminRegProxy, ConfigProxy, PropertyFProxy, StatFProxy, StatMicMsgBody, StatMicMsgHead};
use tars_sql::{params, Store};
use tars_testkit::db::TestDb;
use tars_testkit::process::TempDir;

const TEMPLATES: i64 = 19;
/// tarsregistry, tarsstat, tarsproperty, tarsconfig, tarsAdminRegistry, tarsnode, tarslog,
/// tarsnotify, tarsquerystat, tarsqueryproperty.
const SERVERS: i64 = 10;
/// QueryObj, RegistryObj, StatObj, PropertyObj, ConfigObj, AdminRegObj, NodeObj, ServerObj,
/// LogObj, NotifyObj, and the two query services' QueryObj.
const ADAPTERS: i64 = 12;

fn opts(data_dir: std::path::PathBuf) -> UpOptions {
    UpOptions { io: Some(IoMode::EpollEt), shards: Some(1), ..UpOptions::free_ports(data_dir) }
}

fn count(store: &Store, table: &'static str) -> i64 {
    store.run_blocking(move |s| s.query(&format!("SELECT COUNT(*) FROM {table}"), &[])).unwrap()[0].get(0).unwrap()
}

fn counts(store: &Store) -> [i64; 3] {
    [count(store, "t_profile_template"), count(store, "t_server_conf"), count(store, "t_adapter_conf")]
}

/// Retries `call` (which resolves its object through the locator) until it succeeds: the
/// registry routes rows seeded after it started within a change poll.
fn eventually<T: std::fmt::Debug>(what: &str, mut call: impl FnMut() -> Result<T, CallError>) -> T {
    let t = Instant::now();
    loop {
        match call() {
            Ok(v) => return v,
            Err(e) => {
                assert!(t.elapsed() < Duration::from_secs(10), "{what} not resolved through the locator: {e:?}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// A client configured with only the locator calls the three framework objects by name.
fn call_by_name(running: &tars::Running) {
    let query = running.server().addr("tars.tarsregistry.QueryObjAdapter").unwrap();
    let locator =
        ObjectRef::parse(&format!("tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p {}", query.port())).unwrap();
    let client = BlockingClient::start(
        ClientConfig {
            locator: Some(locator),
            // The registry may still route an endpoint of the last run when the first call asks.
            refresh_endpoint_interval: Duration::from_millis(200),
            ..ClientConfig::default()
        },
        IoMode::EpollEt,
    )
    .unwrap();
    let files = eventually("ConfigObj", || {
        client.run(|comm| async move {
            let p = ConfigProxy::new(comm.proxy(tars_config::CONFIG_OBJ).unwrap(), tars_config::CONFIG_OBJ);
            let mut files = Vec::new();
            p.list_config("Test", "Server", &mut files).await.map(|ret| (ret, files))
        })
    });
    assert_eq!(files, (0, Vec::new()));
    let ret = eventually("StatObj", || {
        client.run(|comm| async move {
            let obj = tars_stat::service::STAT_OBJ;
            let p = StatFProxy::new(comm.proxy(obj).unwrap(), obj);
            let head = StatMicMsgHead {
                master_name: "A.Client".into(),
                slave_name: "B.Server".into(),
                interface_name: "call".into(),
                ..StatMicMsgHead::default()
            };
            let body = StatMicMsgBody { count: 1, total_rsp_time: 5, ..StatMicMsgBody::default() };
            p.report_mic_msg(&BTreeMap::from([(head, body)]), true).await
        })
    });
    assert_eq!(ret, 0);
    let ret = eventually("PropertyObj", || {
        client.run(|comm| async move {
            let obj = tars_property::service::PROPERTY_OBJ;
            PropertyFProxy::new(comm.proxy(obj).unwrap(), obj).report_prop_msg(&BTreeMap::new()).await
        })
    });
    assert_eq!(ret, 0);
    // AdminReg by name; this host's node finds it through the locator and connects (its
    // reportNode round runs every 10 s), then answers pushes end to end.
    let obj = tars_adminreg::ADMIN_REG_OBJ;
    let version = eventually("AdminRegObj", || {
        client.run(move |comm| async move {
            let mut v = String::new();
            AdminRegProxy::new(comm.proxy(obj).unwrap(), obj).get_version(&mut v).await.map(|_| v)
        })
    });
    assert!(version.starts_with("tars-rs-"), "{version}");
    let t = Instant::now();
    let (ret, files) = loop {
        let (pong, ret, files) = client.run(move |comm| async move {
            let p = AdminRegProxy::new(comm.proxy(obj).unwrap(), obj)
                .with_options(CallOptions { timeout_ms: 10_000, ..CallOptions::default() });
            let pong = p.ping_node("127.0.0.1", &mut String::new()).await.unwrap_or(false);
            let mut files = Vec::new();
            let ret = p.get_log_file_list("tars", "tarsconfig", "127.0.0.1", &mut files).await.unwrap_or(-1);
            (pong, ret, files)
        });
        if pong {
            break (ret, files);
        }
        assert!(t.elapsed() < Duration::from_secs(30), "the node did not connect to AdminReg");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(ret, 0, "{files:?}");
}

fn stop(running: tars::Running) {
    running.shutdown();
    running.wait().unwrap();
}

/// The embedded default: seeded on the first start; the second start on the same data adds no
/// rows, restores a deleted template, keeps an edited one and an edited adapter setting, and
/// routes the objects at their new ports.
#[test]
fn tars_up_seeds_the_embedded_db_tars() {
    let dir = TempDir::new("tars-seed").unwrap();
    let running = tars::up(&opts(dir.0.join("data"))).unwrap();
    assert_eq!(running.seeded.templates, TEMPLATES as u64);
    assert_eq!((running.seeded.servers, running.seeded.adapters), (SERVERS as u64, ADAPTERS as u64));
    call_by_name(&running);
    let db = running.stores.db_tars.clone();
    assert_eq!(counts(&db), [TEMPLATES, SERVERS, ADAPTERS]);
    let rows = db
        .run_blocking(|s| {
            s.query(
                "SELECT s.server_name, s.node_name, s.setting_state, s.present_state, s.server_type, s.template_name, \
                 a.endpoint FROM t_server_conf s JOIN t_adapter_conf a USING (application, server_name, node_name) \
                 WHERE a.servant = ?",
                &params![tars_stat::service::STAT_OBJ],
            )
        })
        .unwrap();
    let row: Vec<String> = (0..7).map(|i| rows[0].get(i).unwrap()).collect();
    let port = running.server().addr(&format!("{}Adapter", tars_stat::service::STAT_OBJ)).unwrap().port();
    assert_eq!(
        row,
        [
            "tarsstat",
            "127.0.0.1",
            "active",
            "active",
            "tars_cpp",
            "tars.tarsstat",
            &format!("tcp -h 127.0.0.1 -p {port} -t 60000")
        ]
    );
    let old_config_port = running.server().addr(&format!("{}Adapter", tars_config::CONFIG_OBJ)).unwrap().port();
    stop(running);

    // An operator edits a template and an adapter, deletes another template.
    let edited = "<tars>\n<application>\n<server>\nlogLevel=INFO\n</server>\n</application>\n</tars>\n";
    db.run_blocking(move |s| {
        s.exec(
            "UPDATE t_profile_template SET profile = ? WHERE template_name = ?",
            &params![edited, "tars.tarsconfig"],
        )?;
        s.exec("DELETE FROM t_profile_template WHERE template_name = ?", &params!["tars.tarspatch"])?;
        s.exec("UPDATE t_adapter_conf SET thread_num = 7 WHERE servant = ?", &params![tars_config::CONFIG_OBJ])
    })
    .unwrap();
    drop(db);

    let mut second = opts(dir.0.join("data"));
    // A port bound last time may be free again; a fixed new one makes the move certain.
    let fresh = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    second.config_port = fresh.local_addr().unwrap().port();
    drop(fresh);
    assert_ne!(second.config_port, old_config_port);
    let again = tars::up(&second).unwrap();
    assert_eq!(again.seeded.templates, 1, "{:?}", again.seeded);
    assert_eq!((again.seeded.servers, again.seeded.adapters), (0, 0));
    assert!(again.seeded.adapters_updated >= 1, "{:?}", again.seeded);
    let db = again.stores.db_tars.clone();
    assert_eq!(counts(&db), [TEMPLATES, SERVERS, ADAPTERS]);
    let kept = db
        .run_blocking(|s| {
            s.query("SELECT profile FROM t_profile_template WHERE template_name = ?", &params!["tars.tarsconfig"])
        })
        .unwrap();
    assert_eq!(kept[0].get::<String>(0).unwrap(), edited);
    let adapter = db
        .run_blocking(|s| {
            s.query(
                "SELECT thread_num, endpoint FROM t_adapter_conf WHERE servant = ?",
                &params![tars_config::CONFIG_OBJ],
            )
        })
        .unwrap();
    assert_eq!(adapter[0].get::<i64>(0).unwrap(), 7);
    assert_eq!(adapter[0].get::<String>(1).unwrap(), format!("tcp -h 127.0.0.1 -p {} -t 60000", second.config_port));
    call_by_name(&again);
    stop(again);
}

/// On MySQL (`tars::serve` over three databases of the test MariaDB): seeded, resolvable, and a
/// second seeding changes nothing.
#[test]
fn tars_up_seeds_db_tars_on_mysql() {
    let dbs = [
        TestDb::mysql("tarsrs_seed", "db"),
        TestDb::mysql("tarsrs_seed", "stat"),
        TestDb::mysql("tarsrs_seed", "prop"),
    ];
    let stores = Stores::open(&dbs[0].url, &dbs[1].url, &dbs[2].url).unwrap();
    let migrations = stores.migrate().unwrap();
    let dir = TempDir::new("tars-seed-mysql").unwrap();
    let opts = opts(dir.0.join("data"));
    std::fs::create_dir_all(&opts.data_dir).unwrap();
    let running = tars::serve(&opts, stores.clone(), migrations).unwrap();
    assert_eq!(running.seeded.templates, TEMPLATES as u64);
    call_by_name(&running);
    let db = &stores.db_tars;
    assert_eq!(counts(db), [TEMPLATES, SERVERS, ADAPTERS]);
    let fdb = db
        .run_blocking(|s| {
            s.query("SELECT profile FROM t_profile_template WHERE template_name = ?", &params!["tars.framework-db"])
        })
        .unwrap();
    let text: String = fdb[0].get(0).unwrap();
    let config = tars_proto::config::Config::parse(&text).unwrap();
    let url = tars_sql::StoreUrl::from_config(&config, "/tars/db").unwrap().unwrap();
    assert_eq!(url.to_string(), db.url().to_string(), "{text}");

    // Seeding again, as the next start does with the same ports: nothing to do.
    assert_eq!(tars::seed::seed_templates(db, tars::seed::templates(&stores).unwrap()).unwrap(), 0);
    let bound: Vec<(&str, std::net::SocketAddr)> = tars::seed::FRAMEWORK
        .iter()
        .flat_map(|s| s.objects)
        .filter_map(|o| Some((o.servant, running.server().addr(&format!("{}Adapter", o.servant))?)))
        .collect();
    assert_eq!(bound.len() as i64, ADAPTERS);
    assert_eq!(tars::seed::seed_servers(db, "127.0.0.1", &bound).unwrap(), tars::seed::Seeded::default());
    assert_eq!(counts(db), [TEMPLATES, SERVERS, ADAPTERS]);
    stop(running);
}
