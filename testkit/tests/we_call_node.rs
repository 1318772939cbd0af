//! Our client calls the official Node.js server (`@tars/rpc`, `interop/rpc_server.js`) on
//! every IO driver, over protocol versions 1 and 3: every method of the interop servant, a
//! failing call, oneway, a 70 KB reply and 50 concurrent calls. The same exercise runs against
//! our own server, so both peers are held to one contract.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use tars_core_net::client::config::ClientConfig;
use tars_core_net::client::{BlockingClient, ObjectProxy};
use tars_core_net::rt::{self, IoMode};
use tars_proto::rpc::{CallError, CallOptions};
use tars_testkit::TarsTest::{InteropProxy, Payload};
use tars_testkit::{node, start_interop, INTEROP_ADAPTER, INTEROP_OBJ};

/// Calls every method once (and slowEcho 50 times at once); panics naming the first failure.
async fn exercise(proxy: InteropProxy<ObjectProxy>, peer: &str) {
    let ctx = |what: &str| format!("{peer}: {what}");
    for s in ["hello", "ünïcødé ✓ 你好", "", &"x".repeat(300)] {
        assert_eq!(proxy.echo_string(s).await.unwrap_or_else(|e| panic!("{}: {e}", ctx("echoString"))), s);
    }
    for (a, b) in [(1, 2i64), (-2147483648, -5_000_000_000), (7, 9_007_199_254_740_000)] {
        assert_eq!(proxy.add_ints(a, b).await.unwrap(), i64::from(a) + b, "{}", ctx("addInts"));
    }
    let p = Payload {
        id: 41,
        name: "payload ✓".into(),
        values: vec![1, -2, 300, -70000, i32::MAX, i32::MIN],
        tags: BTreeMap::from([("alpha".into(), "1".into()), ("ключ".into(), "значение".into())]),
        words: vec!["x".into(), "y z".into(), String::new()],
        counts: BTreeMap::from([("big".into(), 5_000_000_000), ("neg".into(), -7_000_000_000)]),
        ratio: 0.3125,
        flag: true,
    };
    let mut echoed = Payload::default();
    let n = proxy.round_trip(&p, &mut echoed).await.unwrap();
    assert_eq!(n, 6, "{}", ctx("roundTrip return"));
    let mut want = p.clone();
    want.id = 42;
    want.words.push("seen".into());
    assert_eq!(echoed, want, "{}", ctx("roundTrip echoed"));
    let (mut first, mut last) = (String::new(), String::new());
    assert_eq!(proxy.split_name("Grace Brewster Hopper", &mut first, &mut last).await.unwrap(), 21);
    assert_eq!((first.as_str(), last.as_str()), ("Grace", "Brewster Hopper"), "{}", ctx("splitName"));
    match proxy.fail(-13).await {
        Err(CallError::Server { code: -13, .. }) => {}
        other => panic!("{}: {other:?}", ctx("fail(-13) must give code -13")),
    }
    let mut note = String::new();
    let before = proxy.last_fired(&mut note).await.unwrap();
    proxy.fire_oneway("hello").await.unwrap();
    let mut fired = false;
    for _ in 0..300 {
        let count = proxy.last_fired(&mut note).await.unwrap();
        if count > before && note == "hello" {
            fired = true;
            break;
        }
        rt::sleep(Duration::from_millis(10)).await;
    }
    assert!(fired, "{}", ctx("oneway fire never arrived"));
    let blob = proxy.big_blob(70_000).await.unwrap();
    assert_eq!(blob.len(), 70_000, "{}", ctx("bigBlob length"));
    assert!(blob.iter().enumerate().all(|(i, b)| *b == (i % 251) as u8), "{}", ctx("bigBlob content"));
    let proxy = std::rc::Rc::new(proxy);
    let calls: Vec<_> = (0..50)
        .map(|i| {
            let proxy = proxy.clone();
            rt::spawn(async move {
                let mut echoed = 0;
                let v = proxy.slow_echo(i, 20, &mut echoed).await.unwrap();
                (i, v, echoed)
            })
        })
        .collect();
    for c in calls {
        let (i, v, echoed) = c.await;
        assert_eq!((v, echoed), (i, i * 2), "{}", ctx("slowEcho"));
    }
}

fn run_against(addr: SocketAddr, io: IoMode, peer: &str) {
    let client = BlockingClient::start(ClientConfig::default(), io).unwrap();
    for version in [1i16, 3] {
        let object = format!("{INTEROP_OBJ}@tcp -h {} -p {} -t 60000", addr.ip(), addr.port());
        let peer = format!("{peer} v{version} on {io}");
        client.run(move |comm| async move {
            let transport = comm.proxy(&object).unwrap();
            let options = CallOptions { version, timeout_ms: 10_000, ..CallOptions::default() };
            exercise(InteropProxy::new(transport, INTEROP_OBJ).with_options(options), &peer).await;
        });
    }
}

fn node_server(io: IoMode) {
    let server = node::NodeServer::start();
    run_against(server.addr, io, "Node server");
}

fn our_server(io: IoMode) {
    let server = start_interop(io, 2, "").unwrap();
    run_against(server.addr(INTEROP_ADAPTER).unwrap(), io, "our server");
    server.shutdown();
    server.wait().unwrap();
}

tars_testkit::on_every_driver! {
    node_peer => node_server;
    ours => our_server;
}
