//! The official Node.js SDK resolving names through our registry, on every IO driver, with
//! the fixtures in MariaDB.
//!
//! Eight real TARS servers serve `TarsTest.InteropServer.InteropObj`; each answers
//! `echoString` with its own label and counts the calls it got. The database registers them in
//! different groups and sets (one of them registered inactive, though it runs).
//! - `@tars/registry` (`interop/registry_client.js`) asks QueryObj every `find*` lookup it has
//!   and must get exactly the expected `host:port` lists (and set ids).
//! - `@tars/rpc` (`interop/rpc_resolve.js`) calls the object by name with our QueryObj as its
//!   locator: by group, by set (communicator properties, a `TARS_CONFIG` file, or
//!   `stringToProxy`'s set name), and again after the database takes its group's server out.
//!   The lookup it made, the labels it got back and the servers' own call counts must all show
//!   that only the expected servers were called.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{add_server, start_registry, TestDb};
use serde_json::{json, Value};
use tars_core_net::client::config::ClientConfig;
use tars_core_net::client::BlockingClient;
use tars_core_net::rt::IoMode;
use tars_core_net::server::{ServerBuilder, ServerHandle};
use tars_proto::config::Config;
use tars_proto::rpc::{Current, ServantError};
use tars_proto::Bytes;
use tars_protocol::tars::QueryFProxy;
use tars_sql::params;
use tars_testkit::node::interop_dir;
use tars_testkit::process::TempDir;
use tars_testkit::servants::InteropImpl;
use tars_testkit::TarsTest::{Interop, InteropServant, Payload};
use tars_testkit::{interop_config, INTEROP_ADAPTER, INTEROP_OBJ};

const QUERY: &str = "tars.tarsregistry.QueryObj";
/// echoString calls per `rpc_resolve.js` run.
const CALLS: u64 = 12;

// ------------------------------------------------------------------------------ test servers

/// The interop servant, except that `echoString` answers with the server's label and counts.
#[derive(Debug, Clone)]
struct Labeled {
    label: &'static str,
    calls: Arc<AtomicUsize>,
    inner: InteropImpl,
}

impl Interop for Labeled {
    async fn echo_string(&self, _: &mut Current, _s: String) -> Result<String, ServantError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(self.label.to_owned())
    }
    async fn add_ints(&self, c: &mut Current, a: i32, b: i64) -> Result<i64, ServantError> {
        self.inner.add_ints(c, a, b).await
    }
    async fn round_trip(&self, c: &mut Current, p: Payload, echoed: &mut Payload) -> Result<i32, ServantError> {
        self.inner.round_trip(c, p, echoed).await
    }
    async fn split_name(
        &self,
        c: &mut Current,
        full: String,
        first: &mut String,
        last: &mut String,
    ) -> Result<i32, ServantError> {
        self.inner.split_name(c, full, first, last).await
    }
    async fn fail(&self, c: &mut Current, code: i32) -> Result<i32, ServantError> {
        self.inner.fail(c, code).await
    }
    async fn fire(&self, c: &mut Current, note: String) -> Result<(), ServantError> {
        self.inner.fire(c, note).await
    }
    async fn last_fired(&self, c: &mut Current, note: &mut String) -> Result<i32, ServantError> {
        self.inner.last_fired(c, note).await
    }
    async fn big_blob(&self, c: &mut Current, size: i32) -> Result<Bytes, ServantError> {
        self.inner.big_blob(c, size).await
    }
    async fn slow_echo(&self, c: &mut Current, v: i32, delay_ms: i32, echoed: &mut i32) -> Result<i32, ServantError> {
        self.inner.slow_echo(c, v, delay_ms, echoed).await
    }
}

/// One running server and how the database registers it.
struct Backend {
    label: &'static str,
    /// `name.area.group` when it is in a set.
    set_id: Option<&'static str>,
    server: ServerHandle,
    calls: Arc<AtomicUsize>,
    addr: SocketAddr,
}

impl Backend {
    fn start(io: IoMode, label: &'static str, set_id: Option<&'static str>) -> Backend {
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let config = Config::parse(&interop_config("")).expect("interop config parses");
        let server = ServerBuilder::from_config(&config)
            .expect("server config")
            .servant(INTEROP_OBJ, move |_| {
                InteropServant(Labeled { label, calls: counter.clone(), inner: InteropImpl::default() })
            })
            .io(io)
            .shards(1)
            .start()
            .unwrap_or_else(|e| panic!("server {label} starts: {e}"));
        let addr = server.addr(INTEROP_ADAPTER).expect("interop adapter bound");
        Backend { label, set_id, server, calls, addr }
    }

    /// How `registry_client.js` shows this server's endpoint.
    fn shown(&self) -> String {
        match self.set_id {
            Some(set) => format!("{} set={set}", self.addr),
            None => self.addr.to_string(),
        }
    }
}

/// The servers, the database that registers them, and our registry serving it.
struct Fixture {
    db: TestDb,
    backends: Vec<Backend>,
    registry: tars_registry::service::Registry,
    client: BlockingClient,
    io: IoMode,
}

/// The caller (127.0.0.1) is in group 1 (`g1`); groups 2 and 3 have no member IPs here but
/// name groups servers are put in with `ip_group_name`. Priority: {1, 2} at station "north",
/// {3} at "south". Every server runs on 127.0.0.1, so its real group is 1 unless named.
fn fixture(io: IoMode, tag: &str) -> Fixture {
    let db = common::mysql(tag);
    db.exec(
        "INSERT INTO t_server_group_rule (group_id, allow_ip_rule, group_name) \
         VALUES (1, '127.0.0.1', 'g1'), (2, '10.2.0.*', 'g2'), (3, '10.3.0.*', 'g3')",
        params![],
    );
    db.exec(
        "INSERT INTO t_group_priority (name, group_list, list_order, station) \
         VALUES ('p', '1|2', 1, 'north'), ('q', '3', 2, 'south')",
        params![],
    );
    type Row = (&'static str, Option<&'static str>, &'static [(&'static str, &'static str)]);
    let rows: [Row; 8] = [
        ("grp1", None, &[("enable_group", "Y"), ("ip_group_name", "g1")]),
        ("grp2", None, &[("enable_group", "Y"), ("ip_group_name", "g2")]),
        ("grp3", None, &[("enable_group", "Y"), ("ip_group_name", "g3")]),
        ("off", None, &[("enable_group", "Y"), ("ip_group_name", "g1"), ("present_state", "inactive")]),
        ("plain", None, &[]),
        ("set_a1", Some("sz.a.1"), &[("enable_set", "Y"), ("set_name", "sz"), ("set_area", "a"), ("set_group", "1")]),
        (
            "set_astar",
            Some("sz.a.*"),
            &[("enable_set", "Y"), ("set_name", "sz"), ("set_area", "a"), ("set_group", "*")],
        ),
        ("set_b1", Some("sz.b.1"), &[("enable_set", "Y"), ("set_name", "sz"), ("set_area", "b"), ("set_group", "1")]),
    ];
    let mut backends = Vec::new();
    for (label, set_id, columns) in rows {
        let b = Backend::start(io, label, set_id);
        let endpoint = format!("tcp -h 127.0.0.1 -p {} -t 60000", b.addr.port());
        add_server(&db, "TarsTest", "InteropServer", label, columns, &[(INTEROP_OBJ, &endpoint)]);
        backends.push(b);
    }
    let registry = start_registry(&db, io, "");
    let client = BlockingClient::start(ClientConfig::default(), io).expect("client starts");
    let f = Fixture { db, backends, registry, client, io };
    let grp1 = vec![f.ep("grp1")];
    f.wait_for_group_answer(&grp1);
    f
}

impl Fixture {
    fn backend(&self, label: &str) -> &Backend {
        self.backends.iter().find(|b| b.label == label).unwrap_or_else(|| panic!("no backend {label}"))
    }

    fn ep(&self, label: &str) -> String {
        self.backend(label).shown()
    }

    fn locator(&self) -> String {
        let l = self.registry.locator();
        assert!(l.starts_with(QUERY) && l.contains("-p "), "registry locator {l:?}");
        l
    }

    /// Polls our QueryObj (with our own client) until `findObjectByIdInSameGroup` from
    /// 127.0.0.1 answers `want` as active endpoints.
    fn wait_for_group_answer(&self, want: &[String]) {
        let addr = self.registry.addr_of(QUERY).expect("QueryObj bound");
        let object = format!("{QUERY}@tcp -h {} -p {} -t 10000", addr.ip(), addr.port());
        let start = Instant::now();
        loop {
            let object = object.clone();
            let active: Vec<String> = self.client.run(move |comm| async move {
                let p = QueryFProxy::new(comm.proxy(&object).expect("proxy"), QUERY);
                let (mut a, mut i) = (Vec::new(), Vec::new());
                p.find_object_by_id_in_same_group(INTEROP_OBJ, &mut a, &mut i).await.expect("InSameGroup");
                a.iter().map(|e| format!("{}:{}", e.host, e.port)).collect()
            });
            if active == want {
                return;
            }
            assert!(start.elapsed() < Duration::from_secs(5), "QueryObj still answers {active:?}, want {want:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn counts(&self) -> BTreeMap<&'static str, u64> {
        self.backends.iter().map(|b| (b.label, b.calls.load(Ordering::SeqCst) as u64)).collect()
    }

    fn stop(self) {
        let Fixture { db, backends, registry, client, io: _ } = self;
        drop(client);
        registry.shutdown().expect("registry stops cleanly");
        for b in backends {
            b.server.shutdown();
            b.server.wait().unwrap_or_else(|e| panic!("server {} stops: {e}", b.label));
        }
        drop(db);
    }
}

// --------------------------------------------------------------------------------- Node runs

/// Runs `node <script> <args>` in `interop/`; panics with its output unless it exits 0.
/// Returns the JSON lines it printed.
fn node(script: &str, args: &[String], tars_config: Option<&std::path::Path>) -> Vec<Value> {
    for pkg in ["@tars/registry", "@tars/rpc", "@tars/stream"] {
        let manifest = interop_dir().join("node_modules").join(pkg).join("package.json");
        assert!(
            manifest.exists(),
            "Node interop: {} is missing: run `npm ci --prefix interop` from the workspace root (needs Node.js and npm)",
            manifest.display()
        );
    }
    let mut cmd = Command::new("node");
    cmd.arg(script).args(args).current_dir(interop_dir()).env_remove("TARS_CONFIG").env_remove("TARS_MONITOR");
    if let Some(path) = tars_config {
        cmd.env("TARS_CONFIG", path);
    }
    let out = cmd.output().unwrap_or_else(|e| panic!("Node interop: cannot run `node` ({e})"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "node {script} {args:?} failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("node {script}: bad JSON line {l:?}: {e}")))
        .collect()
}

// ------------------------------------------------------------------ @tars/registry lookups

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap_or_else(|| panic!("not a string: {s}")).to_owned())
        .collect()
}

fn registry_client_answers(io: IoMode) {
    let f = fixture(io, "node_reg");
    let eps = |labels: &[&str]| sorted(labels.iter().map(|l| f.ep(l)).collect());
    let all_active = eps(&["grp1", "grp2", "grp3", "plain", "set_a1", "set_astar", "set_b1"]);
    let obj = INTEROP_OBJ;
    // (method, id, arg, expected (ret, active, inactive)); ret None for findObjectById.
    type Want = (Option<i64>, Vec<String>, Vec<String>);
    let cases: Vec<(&str, &str, &str, Want)> = vec![
        ("findObjectById", obj, "", (None, all_active.clone(), vec![])),
        ("findObjectById4Any", obj, "", (Some(0), all_active.clone(), eps(&["off"]))),
        // The caller's group 1 has grp1 (and the inactive "off").
        ("findObjectById4All", obj, "", (Some(0), eps(&["grp1"]), eps(&["off"]))),
        ("findObjectByIdInSameGroup", obj, "", (Some(0), eps(&["grp1"]), eps(&["off"]))),
        // Station by real group: north is {1, 2}, which is everything on 127.0.0.1 but grp3.
        (
            "findObjectByIdInSameStation",
            obj,
            "north",
            (Some(0), eps(&["grp1", "grp2", "plain", "set_a1", "set_astar", "set_b1"]), eps(&["off"])),
        ),
        ("findObjectByIdInSameStation", obj, "south", (Some(0), eps(&["grp3"]), vec![])),
        ("findObjectByIdInSameStation", obj, "west", (Some(-1), vec![], vec![])),
        ("findObjectByIdInSameSet", obj, "sz.a.1", (Some(0), eps(&["set_a1"]), vec![])),
        // No sz.a.2 server: the area's `*` group.
        ("findObjectByIdInSameSet", obj, "sz.a.2", (Some(0), eps(&["set_astar"]), vec![])),
        ("findObjectByIdInSameSet", obj, "sz.a.*", (Some(0), eps(&["set_a1", "set_astar"]), vec![])),
        ("findObjectByIdInSameSet", obj, "sz.b.1", (Some(0), eps(&["set_b1"]), vec![])),
        ("findObjectByIdInSameSet", obj, "sz.c.1", (Some(-1), vec![], vec![])),
        ("findObjectByIdInSameSet", obj, "*.a.1", (Some(-1), vec![], vec![])),
        // A set name the servant does not use: group routing.
        ("findObjectByIdInSameSet", obj, "gz.x.1", (Some(0), eps(&["grp1"]), eps(&["off"]))),
        ("findObjectByIdInSameGroup", "No.Such.Obj", "", (Some(0), vec![], vec![])),
        ("findObjectById4Any", "No.Such.Obj", "", (Some(0), vec![], vec![])),
        ("findObjectById", QUERY, "", (None, vec![f.registry.addr_of(QUERY).expect("bound").to_string()], vec![])),
    ];
    let queries: Vec<Value> = cases.iter().map(|(m, id, arg, _)| json!({"method": m, "id": id, "arg": arg})).collect();
    let lines = node("registry_client.js", &[f.locator(), Value::Array(queries).to_string()], None);
    assert_eq!(lines.len(), cases.len(), "one answer per query: {lines:#?}");
    for ((method, id, arg, want), got) in cases.iter().zip(&lines) {
        assert_eq!(got["method"], *method, "answers out of order: {got}");
        let got_answer = (got["ret"].as_i64(), sorted(strings(&got["active"])), sorted(strings(&got["inactive"])));
        assert_eq!(&got_answer, want, "{io:?}: @tars/registry {method}({id}, {arg:?}) got {got}");
    }
    f.stop();
}

// ------------------------------------------------------------------- @tars/rpc resolution

/// How one `rpc_resolve.js` run is configured.
enum ClientSetup<'a> {
    /// Communicator properties: `locator`, and `setdivision` + `enableset=y` when given.
    Props { set_division: Option<&'a str> },
    /// `stringToProxy(..., setName)`, no set properties.
    SetName(&'a str),
    /// Everything from a `TARS_CONFIG` file with `enableset=Y` and this division.
    ConfigFile(&'a str),
}

/// Runs `rpc_resolve.js`; checks the one registry lookup it made, that every call was answered,
/// that the servers' own counts match the labels Node got back, and that only `expected`
/// servers answered (each at least once). Returns the answers by label.
fn resolve(f: &Fixture, setup: ClientSetup<'_>, lookup: Value, expected: &[&str]) -> BTreeMap<String, u64> {
    let before = f.counts();
    let dir = TempDir::new("node-resolve").expect("temp dir");
    let mut opts = json!({"calls": CALLS});
    let mut config = None;
    match setup {
        ClientSetup::Props { set_division } => {
            opts["locator"] = json!(f.locator());
            if let Some(d) = set_division {
                opts["setdivision"] = json!(d);
                opts["enableset"] = json!("y");
            }
        }
        ClientSetup::SetName(set) => {
            opts["locator"] = json!(f.locator());
            opts["setName"] = json!(set);
        }
        ClientSetup::ConfigFile(d) => {
            let path = dir.0.join("client.conf");
            let text = format!(
                "<tars>\n  <application>\n    enableset=Y\n    setdivision={d}\n    <client>\n      locator={}\n    \
                 </client>\n  </application>\n</tars>\n",
                f.locator()
            );
            std::fs::write(&path, text).expect("write client config");
            config = Some(path);
        }
    }
    let lines = node("rpc_resolve.js", &[opts.to_string()], config.as_deref());
    let [out] = &lines[..] else { panic!("rpc_resolve.js: expected one JSON line, got {lines:#?}") };
    let ctx = format!("{:?}: {opts} -> {out}", f.io);
    assert_eq!(out["errors"], json!([]), "{ctx}");
    assert_eq!(out["registryCalls"], json!([lookup]), "{ctx}: the locator lookups @tars/rpc made");
    let answers: BTreeMap<String, u64> = out["answers"]
        .as_object()
        .unwrap_or_else(|| panic!("{ctx}: no answers"))
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or_else(|| panic!("{ctx}: count {v}"))))
        .collect();
    assert_eq!(answers.values().sum::<u64>(), CALLS, "{ctx}");
    let after = f.counts();
    for b in &f.backends {
        let served = after[b.label] - before[b.label];
        assert_eq!(served, answers.get(b.label).copied().unwrap_or(0), "{ctx}: server {} counted {served}", b.label);
        if expected.contains(&b.label) {
            assert!(served > 0, "{ctx}: expected server {} got no call", b.label);
        } else {
            assert_eq!(served, 0, "{ctx}: server {} must not be called", b.label);
        }
    }
    answers
}

fn rpc_resolves_through_registry(io: IoMode) {
    let f = fixture(io, "node_rpc");
    let obj = INTEROP_OBJ;
    let group = json!(["findObjectByIdInSameGroup", obj]);
    let set = |s: &str| json!(["findObjectByIdInSameSet", obj, s]);
    // Default: findObjectByIdInSameGroup; the caller's group holds grp1 only ("off" runs but is
    // registered inactive).
    resolve(&f, ClientSetup::Props { set_division: None }, group.clone(), &["grp1"]);
    // Set division enabled: findObjectByIdInSameSet with the communicator's division.
    resolve(&f, ClientSetup::Props { set_division: Some("sz.a.1") }, set("sz.a.1"), &["set_a1"]);
    resolve(&f, ClientSetup::ConfigFile("sz.a.2"), set("sz.a.2"), &["set_astar"]);
    // The whole area: both sz.a servers share the calls.
    resolve(&f, ClientSetup::Props { set_division: Some("sz.a.*") }, set("sz.a.*"), &["set_a1", "set_astar"]);
    // A proxy's own set name wins without set division enabled.
    resolve(&f, ClientSetup::SetName("sz.b.1"), set("sz.b.1"), &["set_b1"]);
    // A set the servant does not have: the registry routes by group.
    resolve(&f, ClientSetup::Props { set_division: Some("gz.x.1") }, set("gz.x.1"), &["grp1"]);
    // grp1 goes inactive: group 1 has no active server, its priority entry {1, 2} gives grp2.
    f.db.exec("UPDATE t_server_conf SET present_state = 'inactive' WHERE node_name = 'grp1'", params![]);
    f.wait_for_group_answer(&[f.ep("grp2")]);
    resolve(&f, ClientSetup::Props { set_division: None }, group, &["grp2"]);
    f.stop();
}

tars_core_net::on_every_driver! {
    registry_client => registry_client_answers;
    rpc_locator => rpc_resolves_through_registry;
}
