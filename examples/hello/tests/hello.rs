//! The hello server as the README shows it: `hello.conf` parses into the expected adapters,
//! the servant answers through the generated proxy in-process, and the binary serves the
//! shipped config (on free ports), answers `hello-client` and stops on `AdminObj.shutdown`.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tars_core_net::app::Application;
use tars_core_net::client::config::ClientConfig;
use tars_core_net::client::BlockingClient;
use tars_core_net::rt::IoMode;
use tars_core_net::server::adapter::ServerConfig;
use tars_example_hello::TestApp::HelloProxy;
use tars_example_hello::{HelloImp, TestApp::HelloServant, HELLO_OBJ};
use tars_proto::config::Config;
use tars_protocol::tars::AdminFProxy;

const CONF: &str = include_str!("../hello.conf");
const ADAPTER: &str = "TestApp.HelloServer.HelloObjAdapter";

/// The shipped config with both ports replaced by 0, so the test binds free ones.
fn conf_on_free_ports() -> String {
    let text = CONF.replace("-p 18601 ", "-p 0 ").replace("-p 18602 ", "-p 0 ");
    assert_eq!(text.matches("-p 0 ").count(), 2, "hello.conf's ports moved");
    text
}

/// Says hello `names` and reads the count, through `HelloProxy` at `addr`.
fn call(addr: SocketAddr, names: &[&'static str]) -> (Vec<(i32, String)>, i32, i64) {
    let object = format!("{HELLO_OBJ}@tcp -h 127.0.0.1 -p {}", addr.port());
    let names = names.to_vec();
    let client = BlockingClient::start(ClientConfig::default(), IoMode::EpollEt).unwrap();
    client.run(move |comm| async move {
        let hello = HelloProxy::new(comm.proxy(&object).unwrap(), HELLO_OBJ);
        let mut greetings = Vec::new();
        for name in names {
            let mut greeting = String::new();
            let ret = hello.say_hello(name, &mut greeting).await.unwrap();
            greetings.push((ret, greeting));
        }
        let mut n = 0;
        let shard = hello.count(&mut n).await.unwrap();
        (greetings, shard, n)
    })
}

#[test]
fn the_shipped_config_has_the_hello_adapter() {
    let server = ServerConfig::from_config(&Config::parse(CONF).unwrap()).unwrap();
    assert_eq!((server.app.as_str(), server.server.as_str()), ("TestApp", "HelloServer"));
    assert_eq!(server.adapters.len(), 1);
    let a = &server.adapters[0];
    assert_eq!((a.name.as_str(), a.servant.as_str()), (ADAPTER, HELLO_OBJ));
    assert_eq!((a.endpoint.host.as_str(), a.endpoint.port, a.endpoint.timeout_ms), ("127.0.0.1", 18601, 60000));
    assert_eq!(server.admin.as_ref().map(|a| a.endpoint.port), Some(18602));
    let client = ClientConfig::from_config(&Config::parse(CONF).unwrap()).unwrap();
    assert!(client.locator.is_none(), "hello.conf must run without a registry");
}

#[test]
fn the_servant_answers_through_the_generated_proxy() {
    let running = Application::new(Config::parse(&conf_on_free_ports()).unwrap())
        .unwrap()
        .shards(1)
        .servant(HELLO_OBJ, |shard| HelloServant(HelloImp::new(shard.id)))
        .start()
        .unwrap();
    let addr = running.server().addr(ADAPTER).unwrap();
    let (greetings, shard, n) = call(addr, &["world", "TARS"]);
    assert_eq!(greetings, [(0, "Hello, world!".to_owned()), (0, "Hello, TARS!".to_owned())]);
    assert_eq!((shard, n), (0, 2));
    running.shutdown();
    running.wait().unwrap();
}

#[test]
fn add_sums_and_reports_overflow_as_its_return_value() {
    let running = Application::new(Config::parse(&conf_on_free_ports()).unwrap())
        .unwrap()
        .shards(1)
        .servant(HELLO_OBJ, |shard| HelloServant(HelloImp::new(shard.id)))
        .start()
        .unwrap();
    let object = format!("{HELLO_OBJ}@tcp -h 127.0.0.1 -p {}", running.server().addr(ADAPTER).unwrap().port());
    let client = BlockingClient::start(ClientConfig::default(), IoMode::EpollEt).unwrap();
    let got = client.run(move |comm| async move {
        let hello = HelloProxy::new(comm.proxy(&object).unwrap(), HELLO_OBJ);
        let mut out = Vec::new();
        for (a, b) in [(1, 2), (-7, 3), (i32::MAX, 1), (i32::MIN, -1)] {
            let mut c = 99;
            let ret = hello.add(a, b, &mut c).await.unwrap();
            out.push((ret, c));
        }
        out
    });
    assert_eq!(got, [(0, 3), (0, -4), (-1, 0), (-1, 0)]);
    running.shutdown();
    running.wait().unwrap();
}

/// The binary, killed on drop if the test fails before it exits.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_binary_serves_the_shipped_config() {
    let path = std::env::temp_dir().join(format!("tars-example-hello-{}.conf", std::process::id()));
    std::fs::write(&path, conf_on_free_ports()).unwrap();
    let mut server = Server(
        Command::new(env!("CARGO_BIN_EXE_tars-example-hello"))
            .arg(format!("--config={}", path.display()))
            .arg("--shards=1")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // The banner: a title line, `  <adapter> <address>` per adapter, then READY.
    let mut addrs = BTreeMap::new();
    let mut lines = BufReader::new(server.0.stdout.take().unwrap()).lines();
    let title = lines.next().unwrap().unwrap();
    assert!(title.starts_with("hello: config "), "{title}");
    for line in lines.by_ref() {
        let line = line.unwrap();
        if line == "READY" {
            break;
        }
        let (name, addr) = line.trim().split_once(' ').unwrap();
        addrs.insert(name.to_owned(), addr.trim().parse::<SocketAddr>().unwrap());
    }
    std::fs::remove_file(&path).unwrap();

    let object = format!("{HELLO_OBJ}@tcp -h 127.0.0.1 -p {}", addrs[ADAPTER].port());
    let out = Command::new(env!("CARGO_BIN_EXE_hello-client")).args(["world", &object]).output().unwrap();
    assert!(out.status.success(), "hello-client: {}", String::from_utf8_lossy(&out.stderr));
    let out = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out, "Hello, world!\nshard 0 has answered sayHello 1 times\n");

    let admin = format!("AdminObj@tcp -h 127.0.0.1 -p {}", addrs["AdminAdapter"].port());
    let client = BlockingClient::start(ClientConfig::default(), IoMode::EpollEt).unwrap();
    client
        .run(move |comm| async move { AdminFProxy::new(comm.proxy(&admin).unwrap(), "AdminObj").shutdown().await })
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(status) = server.0.try_wait().unwrap() {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "still running 5 s after AdminObj.shutdown");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(status.success(), "{status}");
}

/// The README's "Hello, world" section shows these files as they are.
#[test]
fn the_readme_shows_this_crate() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(dir.join("../../README.md")).unwrap();
    let file = |p: &str| std::fs::read_to_string(dir.join(p)).unwrap();
    let from = |text: String, marker: &str| text[text.find(marker).unwrap()..].to_owned();
    for (name, shown) in [
        ("tars/Hello.tars", file("tars/Hello.tars")),
        ("build.rs", file("build.rs")),
        ("src/lib.rs", from(file("src/lib.rs"), "use std::cell::Cell;")),
        ("src/main.rs", from(file("src/main.rs"), "use tars_example_hello")),
        ("hello.conf", file("hello.conf")),
    ] {
        assert!(readme.contains(&format!("\n{shown}```\n")), "README.md's copy of {name} is out of date");
    }
}
