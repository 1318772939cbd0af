//! The loader's change detection against real databases (MariaDB and SQLite): an update whose
//! transaction commits after the change poll's look-back, or whose stamp was set to the past,
//! still reaches QueryObj's answers; deleted servers disappear, also when another takes the
//! freed row count; recover protection holds back a delta that would take most active
//! endpoints away, and only while protection is on.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::{add_server, start_registry, TestDb};
use tars_core_net::client::config::ClientConfig;
use tars_core_net::client::BlockingClient;
use tars_core_net::rt::IoMode;
use tars_proto::rpc::CallOptions;
use tars_protocol::tars::{EndpointF, QueryFProxy};
use tars_sql::{params, transaction, Store};

const QUERY: &str = "tars.tarsregistry.QueryObj";
const IO: IoMode = IoMode::EpollEt;
const OLD: &str = "2020-01-01 00:00:00";

/// `findObjectById4Any` answers as `host:port` lists.
struct Querier {
    client: BlockingClient,
    object: String,
}

type Answer = (Vec<String>, Vec<String>);

impl Querier {
    fn new(addr: SocketAddr) -> Querier {
        let client = BlockingClient::start(ClientConfig::default(), IO).unwrap();
        Querier { client, object: format!("{QUERY}@tcp -h {} -p {} -t 10000", addr.ip(), addr.port()) }
    }

    fn any(&self, id: &str) -> Answer {
        let (object, id) = (self.object.clone(), id.to_owned());
        self.client.run(move |comm| async move {
            let options = CallOptions { timeout_ms: 10_000, ..CallOptions::default() };
            let p = QueryFProxy::new(comm.proxy(&object).unwrap(), QUERY).with_options(options);
            let (mut a, mut i) = (Vec::new(), Vec::new());
            assert_eq!(p.find_object_by_id4_any(&id, &mut a, &mut i).await.unwrap(), 0);
            let names = |v: &[EndpointF]| v.iter().map(|e| format!("{}:{}", e.host, e.port)).collect::<Vec<_>>();
            (names(&a), names(&i))
        })
    }
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| (*x).to_owned()).collect()
}

/// Waits until `f` holds, or panics after `limit`.
fn within(limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Asserts that `f` holds on every check for `span` (the polls run every 100 ms).
fn throughout(span: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < span {
        assert!(f(), "{what}: no longer so after {:?}", start.elapsed());
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn late_and_hand_stamped_changes(db: TestDb) {
    let reg = start_registry(&db, IO, "");
    let q = Querier::new(reg.addr_of(QUERY).unwrap());
    let obj = "App.Late.Obj";
    add_server(&db, "App", "Late", "10.5.0.1", &[], &[(obj, "tcp -h 10.5.0.1 -p 1")]);
    add_server(&db, "App", "Late", "10.5.0.2", &[], &[(obj, "tcp -h 10.5.0.2 -p 1")]);
    // Stamped long ago, so that no recent stamp of this server brings it into a poll's look-back.
    for table in ["t_server_conf", "t_adapter_conf"] {
        db.exec(&format!("UPDATE {table} SET registry_timestamp = ? WHERE server_name = ?"), params![OLD, "Late"]);
    }
    let limit = Duration::from_secs(2);
    within(limit, "routed", || q.any(obj) == (s(&["10.5.0.1:1", "10.5.0.2:1"]), vec![]));

    // A stamp set to the past (a script, a restore): older than any look-back.
    db.exec(
        "UPDATE t_server_conf SET present_state = 'inactive', registry_timestamp = ? WHERE node_name = ?",
        params!["2020-01-02 03:04:05", "10.5.0.1"],
    );
    within(limit, "hand-stamped change", || q.any(obj) == (s(&["10.5.0.2:1"]), s(&["10.5.0.1:1"])));

    // A transaction stamps its rows when its statements run, then commits 6 s later: its
    // stamps are older than the 3 s overlap of every poll after the commit. Both the stamp and
    // a poll's look-back start are whole seconds, so a 4 s hold could still land inside the
    // look-back (update at 6.05 s stamps 6, the poll at 9.95 s looks back from 9 - 3 = 6); 6 s
    // leaves room for a slow poll.
    let writer = Store::open(&db.url).unwrap();
    let held = std::thread::spawn(move || {
        writer
            .run_blocking(|s| {
                transaction(s, |s| {
                    s.exec(
                        "UPDATE t_server_conf SET present_state = 'active' WHERE node_name = ?",
                        &params!["10.5.0.1"],
                    )?;
                    s.exec(
                        "UPDATE t_adapter_conf SET endpoint = ? WHERE node_name = ?",
                        &params!["tcp -h 10.5.0.2 -p 2", "10.5.0.2"],
                    )?;
                    std::thread::sleep(Duration::from_secs(6));
                    Ok(())
                })
            })
            .unwrap();
    });
    throughout(Duration::from_secs(3), "uncommitted: unchanged", || {
        q.any(obj) == (s(&["10.5.0.2:1"]), s(&["10.5.0.1:1"]))
    });
    held.join().unwrap();
    let scans = reg.runtime().loader_status().stamp_scans.load(Ordering::Relaxed);
    within(limit, "late commit", || q.any(obj) == (s(&["10.5.0.1:1", "10.5.0.2:2"]), vec![]));
    assert!(
        reg.runtime().loader_status().stamp_scans.load(Ordering::Relaxed) > scans,
        "found by the stamp sums, not by the look-back"
    );
    reg.shutdown().unwrap();
}

fn deletions(db: TestDb) {
    let reg = start_registry(&db, IO, "");
    let q = Querier::new(reg.addr_of(QUERY).unwrap());
    let obj = "App.Del.Obj";
    for node in ["10.5.1.1", "10.5.1.2", "10.5.1.3"] {
        add_server(&db, "App", "Del", node, &[], &[(obj, &format!("tcp -h {node} -p 1"))]);
    }
    let limit = Duration::from_secs(2);
    within(limit, "routed", || q.any(obj).0.len() == 3);
    // The server row goes, its adapter row stays behind.
    db.exec("DELETE FROM t_server_conf WHERE node_name = ?", params!["10.5.1.1"]);
    within(limit, "deleted server", || q.any(obj) == (s(&["10.5.1.2:1", "10.5.1.3:1"]), vec![]));
    // One server replaced by another in one transaction: the row counts do not move.
    let ep = "tcp -h 10.5.1.4 -p 1";
    db.store
        .run_blocking(move |s| {
            transaction(s, |s| {
                s.exec("DELETE FROM t_adapter_conf WHERE node_name = ?", &params!["10.5.1.2"])?;
                s.exec("DELETE FROM t_server_conf WHERE node_name = ?", &params!["10.5.1.2"])?;
                s.exec(
                    "INSERT INTO t_server_conf (application, server_name, node_name, setting_state, present_state) \
                     VALUES ('App', 'Del', '10.5.1.4', 'active', 'active')",
                    &[],
                )?;
                s.exec(
                    "INSERT INTO t_adapter_conf (application, server_name, node_name, adapter_name, servant, endpoint) \
                     VALUES ('App', 'Del', '10.5.1.4', 'A', 'App.Del.Obj', ?)",
                    &params![ep],
                )?;
                Ok(())
            })
        })
        .unwrap();
    within(limit, "replaced server", || q.any(obj) == (s(&["10.5.1.3:1", "10.5.1.4:1"]), vec![]));
    db.exec("DELETE FROM t_server_conf WHERE server_name = ?", params!["Del"]);
    within(limit, "every server deleted", || q.any(obj) == (vec![], vec![]));
    reg.shutdown().unwrap();
}

/// Four nodes of one server; a delta that deactivates three of them at once.
fn mass_deactivation(db: &TestDb, protect: bool) -> (tars_registry::service::Registry, Querier) {
    let reap = if protect { "recoverProtect=Y\nrecoverProtectRate=50" } else { "recoverProtect=N" };
    let reg = start_registry(db, IO, reap);
    let q = Querier::new(reg.addr_of(QUERY).unwrap());
    for i in 1..=4 {
        let node = format!("10.6.0.{i}");
        add_server(db, "App", "Prot", &node, &[], &[("App.Prot.Obj", &format!("tcp -h {node} -p 1"))]);
    }
    within(Duration::from_secs(2), "routed", || q.any("App.Prot.Obj").0.len() == 4);
    db.exec(
        "UPDATE t_server_conf SET present_state = 'inactive' WHERE node_name IN (?, ?, ?)",
        params!["10.6.0.1", "10.6.0.2", "10.6.0.3"],
    );
    (reg, q)
}

fn recover_protection_holds_a_mass_deactivation(db: TestDb) {
    let (reg, q) = mass_deactivation(&db, true);
    let status = || reg.runtime().loader_status();
    let all = (s(&["10.6.0.1:1", "10.6.0.2:1", "10.6.0.3:1", "10.6.0.4:1"]), vec![]);
    within(Duration::from_secs(2), "refused", || status().deltas_refused.load(Ordering::Relaxed) > 0);
    assert_eq!(status().held_servers.load(Ordering::Relaxed), 1);
    // A change that takes nothing away is applied meanwhile.
    add_server(&db, "App", "Other", "10.6.1.1", &[], &[("App.Other.Obj", "tcp -h 10.6.1.1 -p 1")]);
    within(Duration::from_secs(2), "unrelated change", || q.any("App.Other.Obj").0 == ["10.6.1.1:1"]);
    throughout(Duration::from_secs(1), "routes kept", || q.any("App.Prot.Obj") == all);
    assert_eq!(status().held_servers.load(Ordering::Relaxed), 1);
    // Two nodes come back: one endpoint lost of the five active (20%) is within the rate.
    db.exec(
        "UPDATE t_server_conf SET present_state = 'active' WHERE node_name IN (?, ?)",
        params!["10.6.0.1", "10.6.0.2"],
    );
    let after = (s(&["10.6.0.1:1", "10.6.0.2:1", "10.6.0.4:1"]), s(&["10.6.0.3:1"]));
    within(Duration::from_secs(2), "applied once within the rate", || q.any("App.Prot.Obj") == after);
    assert_eq!(status().held_servers.load(Ordering::Relaxed), 0);
    reg.shutdown().unwrap();
}

fn without_protection_a_mass_deactivation_is_applied(db: TestDb) {
    let (reg, q) = mass_deactivation(&db, false);
    let after = (s(&["10.6.0.4:1"]), s(&["10.6.0.1:1", "10.6.0.2:1", "10.6.0.3:1"]));
    within(Duration::from_secs(2), "applied", || q.any("App.Prot.Obj") == after);
    assert_eq!(reg.runtime().loader_status().deltas_refused.load(Ordering::Relaxed), 0);
    reg.shutdown().unwrap();
}

on_both_backends! {
    late_commits => super::late_and_hand_stamped_changes;
    deletions => super::deletions;
    protection_holds => super::recover_protection_holds_a_mass_deactivation;
    protection_off => super::without_protection_a_mass_deactivation_is_applied;
}
