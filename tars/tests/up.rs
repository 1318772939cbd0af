//! `tars up`: the framework starts on the embedded databases and answers, in process on every
//! driver and as the release binary built by `cargo run --release`, exactly as the README says.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tars::UpOptions;
use tars_core_net::rt::IoMode;
use tars_proto::rpc::ParamReader;
use tars_proto::rpc::ParamWriter;
use tars_protocol::tars::{MonitorQueryReq, MonitorQueryRsp, ReportInfo, ReportType, StatMicMsgBody, StatMicMsgHead};
use tars_testkit::process::TempDir;
use tars_testkit::raw::{admin_notify, RawConn};

fn opts(dir: &TempDir, io: IoMode) -> UpOptions {
    UpOptions {
        io: Some(io),
        shards: Some(2),
        metrics: [Some("127.0.0.1:0".into()), None],
        legacy_query_ports: Some([0, 0]),
        ..UpOptions::free_ports(dir.0.join("data"))
    }
}

fn admin_addr(running: &tars::Running) -> SocketAddr {
    running.server().addr("AdminAdapter").unwrap()
}

/// Starts, migrates, reports healthy storage through the admin command; a restart on the same
/// data directory finds the schema current and keeps what was written.
fn up_in_process(io: IoMode) {
    let dir = TempDir::new("tars-up").unwrap();
    let running = tars::up(&opts(&dir, io)).unwrap();
    assert_eq!(running.migrations.iter().map(|r| r.version).collect::<Vec<_>>(), [3, 2, 2]);
    assert!(running
        .endpoints
        .iter()
        .any(|(o, e)| o == "tars.tarsframework.AdminObj" && e.starts_with("tcp -h 127.0.0.1 -p ")));
    let text = admin_notify(admin_addr(&running), "tars.storage").unwrap();
    for name in ["db_tars", "tars_stat", "tars_property"] {
        let line = text.lines().find(|l| l.starts_with(&format!("{name}: "))).unwrap_or_else(|| panic!("{text}"));
        assert!(line.contains("state=up") && line.contains("backend=sqlite"), "{line}");
    }
    let help = admin_notify(admin_addr(&running), "tars.help").unwrap();
    assert!(help.contains("tars.storage") && help.contains("tars.routes"), "{help}");
    assert!(help.contains(tars_adminreg::service::STATUS_COMMAND), "{help}");
    // tarsconfig is served, its cache loaded from db_tars.
    assert!(running.server().addr(&format!("{}Adapter", tars_config::CONFIG_OBJ)).is_some());
    let cache = admin_notify(admin_addr(&running), tars_config::service::CACHE_COMMAND).unwrap();
    assert!(cache.starts_with("cache: 0 files"), "{cache}");
    // The registry publishes its three objects in t_registry_info and routes them, and the
    // seeded rows of tarsstat, tarsproperty, tarsconfig, tarsAdminRegistry, tarsnode (NodeObj,
    // ServerObj), tarslog, tarsnotify and the two query services (QueryObj and NoTarsObj).
    assert!(running.endpoints.iter().any(|(o, _)| o == "tars.tarsregistry.QueryObj"), "{:?}", running.endpoints);
    let t = Instant::now();
    loop {
        let routes = admin_notify(admin_addr(&running), "tars.routes").unwrap();
        if routes.contains("servants routed: 15") {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(5), "registry objects not routed: {routes}");
        std::thread::sleep(Duration::from_millis(50));
    }
    running
        .stores
        .db_tars
        .run_blocking(|s| {
            s.exec(
                "INSERT INTO t_node_info (node_name, endpoint_ip) VALUES (?, ?)",
                &tars_sql::params!["node-1", "10.0.0.9"],
            )
        })
        .unwrap();
    // tarsstat and tarsproperty are served: a report is merged into the current window and
    // counted on the status command and the metrics endpoint.
    let stat = running.server().addr(&format!("{}Adapter", tars_stat::service::STAT_OBJ)).unwrap();
    assert!(running.server().addr(&format!("{}Adapter", tars_property::service::PROPERTY_OBJ)).is_some());
    let head = StatMicMsgHead {
        master_name: "A.Client".into(),
        slave_name: "B.Server".into(),
        interface_name: "call".into(),
        ..StatMicMsgHead::default()
    };
    let body = StatMicMsgBody { count: 3, total_rsp_time: 30, ..StatMicMsgBody::default() };
    let mut w = ParamWriter::new(1);
    w.write(1, "msg", &BTreeMap::from([(head, body)]));
    w.write(2, "bFromClient", &true);
    let mut conn = RawConn::connect(stat).unwrap();
    let req = conn.request(tars_stat::service::STAT_OBJ, "reportMicMsg", 1, w.finish());
    assert_eq!(conn.call(&req).unwrap().ret, 0);
    let status = admin_notify(admin_addr(&running), tars_stat::service::STATUS_COMMAND).unwrap();
    assert!(status.contains("entries: 1\n"), "{status}");
    let metrics = running.stat().and_then(|s| s.metrics_addr()).expect("stat metrics endpoint");
    let mut http = std::net::TcpStream::connect(metrics).unwrap();
    http.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").unwrap();
    let mut text = String::new();
    http.read_to_string(&mut text).unwrap();
    assert!(text.starts_with("HTTP/1.1 200") && text.contains("\ntars_stat_ingested_entries_total 1\n"), "{text}");
    assert!(running.property().is_some_and(|p| p.metrics_addr().is_none()));
    log_notify_and_query_are_served(&running, &dir.0.join("data"));
    // The JSON gateway resolves through the registry beside it: an object it does not know
    // is 404; the framework's own objects are refused to HTTP callers.
    let gateway = running.gateway().expect("tars up serves the gateway");
    let call = |path: &str| {
        let body = serde_json::json!({"id": "x"});
        tars_testkit::http::post_json(gateway, path, &body, Duration::from_secs(10)).unwrap()
    };
    let unknown = call("/json/Nope.NoServer.NoObj/f");
    assert_eq!(unknown.status, 404, "{}", String::from_utf8_lossy(&unknown.body));
    assert_eq!(call("/json/tars.tarsregistry.QueryObj/findObjectById").status, 403);

    // This host's node registered with the registry beside it, and manages none of the
    // framework servers this process serves (their seeded rows name this node).
    let node = running.node().expect("tars up runs a node");
    assert_eq!(node.node_name(), "127.0.0.1");
    let t = Instant::now();
    loop {
        let rows = running
            .stores
            .db_tars
            .run_blocking(|s| {
                s.query("SELECT present_state FROM t_node_info WHERE node_name = ?", &tars_sql::params!["127.0.0.1"])
            })
            .unwrap();
        if rows.first().and_then(|r| r.get::<String>(0).ok()).as_deref() == Some("active") {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "the node did not register");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (code, info, result) = node.get_state_info("tars", "tarsregistry").wait(Duration::from_secs(5)).unwrap();
    assert!(code != 0 && info.process_id <= 0, "hosted servers are not the node's: {code} {info:?} {result}");

    running.shutdown();
    // The services stop after the server: writers and spools are released before the same
    // data directory is opened again.
    running.wait().unwrap();

    let again = tars::up(&opts(&dir, io)).unwrap();
    assert!(again.migrations.iter().all(|r| r.applied.is_empty()), "{:?}", again.migrations);
    let rows = again
        .stores
        .db_tars
        .run_blocking(|s| {
            s.query("SELECT endpoint_ip FROM t_node_info WHERE node_name = ?", &tars_sql::params!["node-1"])
        })
        .unwrap();
    assert_eq!(rows[0].get::<String>(0).unwrap(), "10.0.0.9");
    again.shutdown();
    again.wait().unwrap();
}

/// tarslog writes under the data directory, tarsnotify into `db_tars`, and the query
/// services read the databases tarsstat and tarsproperty write.
fn log_notify_and_query_are_served(running: &tars::Running, data: &std::path::Path) {
    let addr = |servant: &str| running.server().addr(&format!("{servant}Adapter")).unwrap();
    let mut w = ParamWriter::new(1);
    w.write(1, "app", &"Up".to_owned());
    w.write(2, "server", &"Probe".to_owned());
    w.write(3, "file", &"biz".to_owned());
    w.write(4, "format", &"%Y%m%d".to_owned());
    w.write(5, "buffer", &vec!["one line\n".to_owned()]);
    let mut conn = RawConn::connect(addr(tars_log::LOG_OBJ)).unwrap();
    let req = conn.request(tars_log::LOG_OBJ, "logger", 1, w.finish());
    assert_eq!(conn.call(&req).unwrap().ret, 0);
    let dir = data.join("remote_app_log/Up/Probe");
    let t = Instant::now();
    let text = loop {
        let file = std::fs::read_dir(&dir).ok().and_then(|mut d| d.next()).and_then(Result::ok);
        if let Some(text) = file.and_then(|f| std::fs::read_to_string(f.path()).ok()).filter(|t| !t.is_empty()) {
            break text;
        }
        assert!(t.elapsed() < Duration::from_secs(5), "no log file under {}", dir.display());
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(text.ends_with("|one line\n"), "{text:?}");

    let info = ReportInfo {
        e_type: ReportType::NOTIFY,
        s_app: "Up".into(),
        s_server: "Probe".into(),
        s_message: "disk almost full".into(),
        s_node_name: "127.0.0.1".into(),
        ..ReportInfo::default()
    };
    let mut w = ParamWriter::new(1);
    w.write(1, "info", &info);
    let mut conn = RawConn::connect(addr(tars_notify::NOTIFY_OBJ)).unwrap();
    let req = conn.request(tars_notify::NOTIFY_OBJ, "reportNotifyInfo", 1, w.finish());
    assert_eq!(conn.call(&req).unwrap().ret, 0);
    let t = Instant::now();
    loop {
        let rows = running
            .stores
            .db_tars
            .run_blocking(|s| {
                s.query(
                    "SELECT result FROM t_server_notifys WHERE server_id = ?",
                    &tars_sql::params!["Up.Probe_127.0.0.1"],
                )
            })
            .unwrap();
        if let Some(row) = rows.first() {
            assert!(row.get::<String>(0).unwrap().contains("disk almost full"));
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(5), "no notify row");
        std::thread::sleep(Duration::from_millis(20));
    }

    // One row in an hour of a past day, in the store each writer uses: the query services
    // read exactly those stores, and the hours without a table are gaps, not failures.
    let stat_table = tars_sql::schema::monitor::stat_table("tars_stat_2020010110");
    running
        .stores
        .stat
        .run_blocking(move |s| {
            tars_sql::create_table(s, &stat_table)?;
            s.exec(
                "INSERT INTO tars_stat_2020010110 (f_date, f_tflag, slave_name, succ_count) VALUES (?, ?, ?, ?)",
                &tars_sql::params!["2020-01-01", "1005", "Up.Probe", 7],
            )
        })
        .unwrap();
    let property_table = tars_sql::schema::monitor::property_table("tars_property_2020010110");
    running
        .stores
        .property
        .run_blocking(move |s| {
            tars_sql::create_table(s, &property_table)?;
            s.exec(
                "INSERT INTO tars_property_2020010110 (f_date, f_tflag, master_name, property_name, policy, value) \
                 VALUES (?, ?, ?, ?, ?, ?)",
                &tars_sql::params!["2020-01-01", "1005", "Up.Probe", "queue", "Sum", "5"],
            )
        })
        .unwrap();
    for (kind, dataid, index, want) in [
        (tars_query::Kind::Stat, "tars_stat", "succ_count", 7.0),
        (tars_query::Kind::Property, "tars_property", "value", 5.0),
    ] {
        let req = MonitorQueryReq {
            uid: "up".into(),
            method: "query".into(),
            dataid: dataid.into(),
            date: "20200101".into(),
            tflag1: "0000".into(),
            tflag2: "2360".into(),
            indexs: vec![index.into()],
            groupby: vec!["f_tflag".into()],
            ..MonitorQueryReq::default()
        };
        let mut w = ParamWriter::new(1);
        w.write(1, "req", &req);
        let mut conn = RawConn::connect(addr(kind.servant())).unwrap();
        let request = conn.request(kind.servant(), "query", 1, w.finish());
        let reply = conn.call(&request).unwrap();
        assert_eq!(reply.ret, 0, "{}", reply.desc);
        let mut r = ParamReader::new(1, &reply.body).unwrap();
        let rsp: MonitorQueryRsp = r.read_out(2, "rsp").unwrap();
        assert_eq!((rsp.ret, rsp.total_db), (0, 1), "{rsp:?}");
        assert_eq!(rsp.result, BTreeMap::from([("1005".to_owned(), vec![want])]), "{rsp:?}");
        assert!(rsp.msg.contains(&format!("no table {dataid}_20200101HH for hours 00-09, 11-23")), "{rsp:?}");
    }
    // The same over the legacy JSON protocol (TarsWeb 1.x), on the NoTarsObj adapters.
    for (kind, dataid, index, want) in [
        (tars_query::Kind::Stat, "tars_stat", "succ_count", "1005,7,"),
        (tars_query::Kind::Property, "tars_property", "value", "1005,5,"),
    ] {
        let mut conn = std::net::TcpStream::connect(addr(kind.legacy_servant())).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let request = format!(
            "{{\"method\":\"query\",\"dataid\":\"{dataid}\",\"filter\":[\"f_date='20200101'\",\"f_tflag>='0000'\",\
             \"f_tflag<='2360'\"],\"groupby\":[\"f_tflag\"],\"indexs\":[\"{index}\"]}}"
        );
        conn.write_all(request.as_bytes()).unwrap();
        let mut answer = String::new();
        conn.read_to_string(&mut answer).unwrap();
        let lines: Vec<&str> = answer.lines().collect();
        assert_eq!(lines.first(), Some(&"Ret:0"), "{answer}");
        assert!(lines.contains(&"linecount:1") && lines.contains(&want), "{answer}");
        assert_eq!(lines.last(), Some(&"endline"), "{answer}");
    }
}

tars_core_net::on_every_driver! { up_in_process => up_in_process; }

/// The README's first command, run as written (with a private data dir and a free port):
/// `cargo run --release --bin tars -- up`. It must print its endpoints, answer, and stop
/// cleanly on SIGTERM.
#[test]
fn cargo_run_release_tars_up_answers() {
    let dir = TempDir::new("tars-up-release").unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut child = Command::new(cargo)
        .current_dir(root)
        .args(["run", "--release", "-q", "--bin", "tars", "--", "up", "--admin-port", "0", "--query-port", "0"])
        .args(["--registry-port", "0", "--container-port", "0", "--stat-port", "0", "--property-port", "0"])
        .args(["--config-port", "0", "--log-port", "0", "--notify-port", "0", "--querystat-port", "0"])
        .args(["--queryproperty-port", "0", "--gateway-port", "0"])
        .arg("--data-dir")
        .arg(dir.0.join("data"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // Generous: on a fresh clone this includes the release build.
    let deadline = Instant::now() + Duration::from_secs(1500);
    let mut admin = None;
    let mut lines = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx.recv_timeout(left).unwrap_or_else(|_| panic!("no READY from `tars up`; got {lines:?}"));
        if line.contains("AdminObj") {
            let port = line.rsplit(' ').next().unwrap().parse::<u16>().unwrap();
            admin = Some(SocketAddr::from(([127, 0, 0, 1], port)));
        }
        let done = line == "READY";
        lines.push(line);
        if done {
            break;
        }
    }
    assert!(lines.iter().any(|l| l.contains("db_tars") && l.contains("schema version 3")), "{lines:?}");
    assert!(lines.iter().any(|l| l.contains("tars.tarsregistry.QueryObj")), "{lines:?}");
    let admin = admin.unwrap_or_else(|| panic!("no AdminObj endpoint printed: {lines:?}"));
    let text = admin_notify(admin, "tars.storage").unwrap();
    assert_eq!(text.lines().filter(|l| l.contains("state=up")).count(), 3, "{text}");
    let pid = child.id();
    Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap();
    let t = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "tars up exited with {status}");
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(20), "tars up did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `tars serve --config=FILE` with upstream's `<db>` keys (and our `url=` key) on the test
/// MariaDB: the databases are migrated, served, and reported healthy.
#[test]
fn serve_with_upstream_db_sections_on_mysql() {
    let base = tars_testkit::mysql::mysql_url();
    let rest = base.strip_prefix("mysql://").unwrap();
    let (auth, rest) = rest.split_once('@').unwrap();
    let (user, pass) = auth.split_once(':').unwrap();
    let (hostport, _) = rest.split_once('/').unwrap();
    let (host, port) = hostport.rsplit_once(':').unwrap();
    let tag = format!("tarsrs_serve_{}", std::process::id());
    let admin = tars_sql::Store::open(&base).unwrap();
    let dbs = [format!("{tag}_db"), format!("{tag}_stat"), format!("{tag}_prop")];
    for db in dbs.clone() {
        admin
            .run_blocking(move |s| s.exec_script(&format!("DROP DATABASE IF EXISTS `{db}`; CREATE DATABASE `{db}`")))
            .unwrap();
    }
    let dir = TempDir::new("tars-serve").unwrap();
    let path = dir.0.join("tars.framework.conf");
    std::fs::write(
        &path,
        format!(
            "<tars>\n<application>\n<server>\napp=tars\nserver=tarsframework\nlocal=tcp -h 127.0.0.1 -p 0 -t 10000\nshards=1\n\
             </server>\n</application>\n\
             <db>\ndbhost={host}\ndbport={port}\ndbuser={user}\ndbpass={pass}\ndbname={}\ncharset=utf8\n</db>\n\
             <statdb>\n<db1>\ndbhost={host}\ndbport={port}\ndbuser={user}\ndbpass={pass}\ndbname={}\ntbname=tars_stat_\n</db1>\n</statdb>\n\
             <propertydb>\n<db1>\nurl=mysql://{user}:{pass}@{host}:{port}/{}\n</db1>\n</propertydb>\n</tars>\n",
            dbs[0], dbs[1], dbs[2]
        ),
    )
    .unwrap();
    let running = tars::serve_config(&path).unwrap();
    assert_eq!(running.migrations.iter().map(|r| r.version).collect::<Vec<_>>(), [3, 2, 2]);
    let text = admin_notify(admin_addr(&running), "tars.storage").unwrap();
    assert_eq!(text.lines().filter(|l| l.contains("backend=mysql") && l.contains("state=up")).count(), 3, "{text}");
    assert!(!text.contains(pass), "password shown by tars.storage: {text}");
    let db = dbs[0].clone();
    let n = admin
        .run_blocking(move |s| {
            s.query("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?", &[db.into()])
        })
        .unwrap()[0]
        .get::<i64>(0)
        .unwrap();
    assert_eq!(n, 21, "db_tars tables (20 and the version table)");
    running.shutdown();
    running.wait().unwrap();
    for db in dbs {
        admin.run_blocking(move |s| s.exec_script(&format!("DROP DATABASE `{db}`"))).unwrap();
    }
}
