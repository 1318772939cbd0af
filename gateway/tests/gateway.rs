//! tarsgateway end to end on every IO driver: a registry on a migrated SQLite `db_tars`, the
//! hello server (built with our SDK) registered in it by its `t_server_conf` /
//! `t_adapter_conf` rows, the gateway hosted as a `Service`, and real `curl` calls:
//! `add` through the locator, and every refusal (unknown function, bad JSON, too large,
//! unknown object, framework object, GET). Once more with the `tarsgateway` binary.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tars_core_net::app::{Application, Running};
use tars_core_net::rt::IoMode;
use tars_example_hello::{HelloImp, TestApp::HelloServant, HELLO_OBJ};
use tars_gateway::GatewayService;
use tars_proto::config::Config;
use tars_proto::json::{self, Number, Value};
use tars_testkit::db::TestDb;
use tars_testkit::raw::admin_notify;

const QUERY_OBJ: &str = "tars.tarsregistry.QueryObj";

fn adapter(obj: &str) -> String {
    format!("<{obj}Adapter>\nendpoint=tcp -h 127.0.0.1 -p 0 -t 60000\nservant={obj}\n</{obj}Adapter>\n")
}

fn start_registry(db: &TestDb, io: IoMode) -> tars_registry::service::Registry {
    let text = format!(
        "<tars>\n<application>\n<server>\napp=tars\nserver=tarsregistry\nlocal=tcp -h 127.0.0.1 -p 0 -t 10000\n{}{}</server>\n\
         </application>\n<reap>\nchangePollMs=100\n</reap>\n</tars>\n",
        adapter(QUERY_OBJ),
        adapter("tars.tarsregistry.RegistryObj"),
    );
    let opts = tars_registry::service::StartOptions { io: Some(io), shards: Some(1), store: Some(db.store.clone()) };
    tars_registry::service::start(&Config::parse(&text).unwrap(), opts).unwrap()
}

fn start_hello(io: IoMode) -> Running {
    let text = format!(
        "<tars>\n<application>\n<server>\napp=TestApp\nserver=HelloServer\nlocal=tcp -h 127.0.0.1 -p 0 -t 10000\n{}</server>\n\
         </application>\n</tars>\n",
        adapter(HELLO_OBJ)
    );
    Application::new(Config::parse(&text).unwrap())
        .unwrap()
        .io(io)
        .shards(1)
        .servant(HELLO_OBJ, |shard| HelloServant(HelloImp::new(shard.id)))
        .start()
        .unwrap()
}

/// The hello server's rows, as tarsnode's deployment leaves them, at `port`.
fn register_hello(db: &TestDb, port: u16) {
    db.exec(
        "INSERT INTO t_server_conf (application, server_name, node_name, setting_state, present_state) VALUES (?, ?, ?, ?, ?)",
        tars_sql::params!["TestApp", "HelloServer", "127.0.0.1", "active", "active"],
    );
    db.exec(
        "INSERT INTO t_adapter_conf (application, server_name, node_name, adapter_name, servant, endpoint) VALUES (?, ?, ?, ?, ?, ?)",
        tars_sql::params![
            "TestApp",
            "HelloServer",
            "127.0.0.1",
            format!("{HELLO_OBJ}Adapter"),
            HELLO_OBJ,
            format!("tcp -h 127.0.0.1 -p {port} -t 60000")
        ],
    );
}

/// The gateway's config: `<client>` names the registry, `gateway` lines go to `<gateway>`.
fn gateway_config(locator: &str, gateway: &str) -> String {
    format!(
        "<tars>\n<application>\n<client>\nlocator={locator}\n</client>\n<server>\napp=tars\nserver=tarsgateway\n\
         local=tcp -h 127.0.0.1 -p 0 -t 10000\n</server>\n</application>\n<gateway>\n{gateway}\n</gateway>\n</tars>\n"
    )
}

/// `curl -s` with `args`; the status and the body.
fn curl(args: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-s", "-S", "--max-time", "10", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

fn post(addr: SocketAddr, path: &str, body: &str) -> (u16, String) {
    curl(&["-H", "Content-Type: application/json", "--data-binary", body, &format!("http://{addr}{path}")])
}

/// The member `name` of a JSON object text.
fn member(text: &str, name: &str) -> Option<Value> {
    json::parse(text.as_bytes()).ok()?.as_object()?.get(name).cloned()
}

fn int(v: i64) -> Option<Value> {
    Some(Value::Number(Number::Int(v)))
}

/// The `error` object's member `name` of a failure body.
fn error_member(text: &str, name: &str) -> Option<Value> {
    member(text, "error")?.as_object()?.get(name).cloned()
}

/// The counter `name` of `tars.gateway` on the admin endpoint `admin`.
fn counter(admin: SocketAddr, name: &str) -> u64 {
    let text = admin_notify(admin, "tars.gateway").unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

/// Calls `add` until the registry's loader has seen the hello server's rows (a 404 before).
fn wait_for_add(addr: SocketAddr) -> (u16, String) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let got = post(addr, &format!("/json/{HELLO_OBJ}/add"), r#"{"a":1,"b":2}"#);
        if got.0 != 404 || Instant::now() > deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every behaviour the gateway at `addr` shows against the registered hello server.
fn check_gateway(addr: SocketAddr) {
    let (status, body) = wait_for_add(addr);
    assert_eq!(status, 200, "{body}");
    assert_eq!(member(&body, "c"), int(3), "{body}");
    assert_eq!(member(&body, "tars_ret"), int(0), "{body}");

    // The servant's own error code is an answer, not a failure.
    let (status, body) = post(addr, &format!("/json/{HELLO_OBJ}/add"), &format!(r#"{{"a":{},"b":1}}"#, i32::MAX));
    assert_eq!((status, member(&body, "tars_ret")), (200, int(-1)), "{body}");
    // The other functions work the same way.
    let (status, body) = post(addr, &format!("/json/{HELLO_OBJ}/sayHello"), r#"{"name":"gateway"}"#);
    assert_eq!((status, member(&body, "greeting")), (200, Some(Value::String("Hello, gateway!".into()))), "{body}");

    // Unknown function: the server's -3, 404.
    let (status, body) = post(addr, &format!("/json/{HELLO_OBJ}/nosuch"), "{}");
    assert_eq!((status, error_member(&body, "tars_ret")), (404, int(-3)), "{body}");
    // A parameter missing: the servant cannot decode the call, -1, 400.
    let (status, body) = post(addr, &format!("/json/{HELLO_OBJ}/add"), r#"{"a":1}"#);
    assert_eq!((status, error_member(&body, "tars_ret")), (400, int(-1)), "{body}");
    // Not JSON, not an object: 400 before any call.
    for bad in [r#"{"a":1,"b":"#, "[1,2]", "hello"] {
        let (status, body) = post(addr, &format!("/json/{HELLO_OBJ}/add"), bad);
        assert_eq!((status, error_member(&body, "tars_ret")), (400, None), "{bad}: {body}");
    }
    // Too large (maxBodyKB=1 here).
    let big = format!(r#"{{"a":1,"b":2,"pad":"{}"}}"#, "x".repeat(2048));
    assert_eq!(post(addr, &format!("/json/{HELLO_OBJ}/add"), &big).0, 413);
    // Unknown to the registry: 404; a bad object name: 400; endpoints in the name: 400.
    let (status, body) = post(addr, "/json/TestApp.NoServer.NoObj/add", "{}");
    assert_eq!(status, 404, "{body}");
    assert!(error_member(&body, "message").is_some(), "{body}");
    assert_eq!(post(addr, "/json/NoDots/add", "{}").0, 400);
    assert_eq!(post(addr, "/json/A.B.C@tcp%20-h%20127.0.0.1/add", "{}").0, 400);
    // The framework's objects and AdminObj are refused.
    assert_eq!(post(addr, &format!("/json/{QUERY_OBJ}/findObjectById"), r#"{"id":"x"}"#).0, 403);
    assert_eq!(post(addr, "/json/TestApp.HelloServer.AdminObj/shutdown", "{}").0, 403);
    // Only POST; only /json/.
    let (status, _) = curl(&[&format!("http://{addr}/json/{HELLO_OBJ}/add")]);
    assert_eq!(status, 405);
    assert_eq!(curl(&["-d", "{}", &format!("http://{addr}/other")]).0, 404);
}

fn end_to_end(io: IoMode) {
    let db = TestDb::sqlite(&format!("gateway_{}", io.as_str().replace('-', "_")));
    let registry = start_registry(&db, io);
    let hello = start_hello(io);
    register_hello(&db, hello.server().addr(&format!("{HELLO_OBJ}Adapter")).unwrap().port());
    let text = gateway_config(&registry.locator(), "listen=127.0.0.1:0\nmaxBodyKB=1\n");
    let gateway = Application::new(Config::parse(&text).unwrap())
        .unwrap()
        .io(io)
        .shards(1)
        .service(GatewayService::new().io(io))
        .start()
        .unwrap();
    let addr = gateway.service::<GatewayService>().unwrap().addr().unwrap();
    check_gateway(addr);

    let admin = gateway.server().addr("AdminAdapter").unwrap();
    assert!(counter(admin, "ok") >= 3, "{}", admin_notify(admin, "tars.gateway").unwrap());
    assert_eq!(counter(admin, "refused"), 2);
    assert!(counter(admin, "not_found") >= 2);
    assert_eq!(counter(admin, "in_flight"), 0);
    assert_eq!(counter(admin, "objects"), 1, "only the object the registry knows is kept");

    gateway.shutdown();
    gateway.wait().unwrap();
    assert!(
        std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err(),
        "HTTP stopped with the server"
    );
    hello.shutdown();
    hello.wait().unwrap();
    registry.shutdown().unwrap();
}

tars_testkit::on_every_driver! { in_process => end_to_end; }

/// The binary, killed on drop if the test fails before it exits.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_binary_serves_json_calls() {
    let io = IoMode::EpollEt;
    let db = TestDb::sqlite("gateway_binary");
    let registry = start_registry(&db, io);
    let hello = start_hello(io);
    register_hello(&db, hello.server().addr(&format!("{HELLO_OBJ}Adapter")).unwrap().port());
    let dir = tars_testkit::process::TempDir::new("tarsgateway-bin").unwrap();
    let conf = dir.0.join("tarsgateway.conf");
    std::fs::write(&conf, gateway_config(&registry.locator(), "listen=127.0.0.1:0\nmaxBodyKB=1\n")).unwrap();
    let mut server = Server(
        Command::new(env!("CARGO_BIN_EXE_tarsgateway"))
            .arg(format!("--config={}", conf.display()))
            .arg("--shards=1")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut addr = None;
    for line in BufReader::new(server.0.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if line.trim() == "READY" {
            break;
        }
        if let Some(at) = line.trim().strip_prefix("gateway http") {
            addr = at.trim().parse::<SocketAddr>().ok();
        }
    }
    let addr = addr.expect("the gateway's HTTP address in the banner");
    check_gateway(addr);
    let _ = Command::new("kill").arg("-TERM").arg(server.0.id().to_string()).status();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = server.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "still running 10 s after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
    hello.shutdown();
    hello.wait().unwrap();
    registry.shutdown().unwrap();
}
