//! Adapter limits and AdminObj on every IO driver: queue timeout, overload, the fair share
//! of the queue, maxconns and maxconnsperip, the allow list, admin commands, and a graceful
//! stop that finishes in-flight calls.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use tars_core_net::rt::IoMode;
use tars_proto::packet::{ret, version};
use tars_proto::rpc::ParamWriter;
use tars_testkit::raw::{admin_notify, frame_bytes, RawConn};
use tars_testkit::{start_interop, INTEROP_ADAPTER, INTEROP_OBJ};

fn slow_echo(c: &mut RawConn, v: i32, delay: i32, timeout_ms: i32) -> tars_proto::packet::RequestPacket {
    let mut w = ParamWriter::new(version::TARS);
    w.write(1, "v", &v);
    w.write(2, "delayMs", &delay);
    let mut req = c.request(INTEROP_OBJ, "slowEcho", version::TARS, w.finish());
    req.i_timeout = timeout_ms;
    req
}

/// queuecap=4: with four slow calls running, the fifth is refused with -9 at once.
fn overload(io: IoMode) {
    let server = start_interop(io, 1, "queuecap=4").unwrap();
    let mut c = RawConn::connect(server.addr(INTEROP_ADAPTER).unwrap()).unwrap();
    let mut bytes = Vec::new();
    for i in 0..5 {
        let r = slow_echo(&mut c, i, 300, 3000);
        bytes.extend(frame_bytes(&r));
    }
    c.send_bytes(&bytes).unwrap();
    let first = c.read_reply().unwrap().unwrap();
    assert_eq!((first.request_id, first.ret), (5, ret::OVERLOAD), "the fifth call must be refused first");
    let mut ok = 0;
    for _ in 0..4 {
        let r = c.read_reply().unwrap().unwrap();
        assert_eq!(r.ret, ret::SUCCESS);
        ok += 1;
    }
    assert_eq!(ok, 4);
    server.shutdown();
    server.wait().unwrap();
}

/// A request that waited in the server longer than its caller's iTimeout gets -6. Here three
/// 8 MiB replies come first: past the 4 MiB output high-water mark the server holds the next
/// request until the client has read its replies, so it waits far longer than the 1 ms its
/// caller allows.
fn queue_timeout(io: IoMode) {
    let server = start_interop(io, 1, "").unwrap();
    let mut c = RawConn::connect(server.addr(INTEROP_ADAPTER).unwrap()).unwrap();
    let mut bytes = Vec::new();
    for _ in 0..3 {
        let mut w = ParamWriter::new(version::TARS);
        w.write(1, "size", &(8 * 1024 * 1024i32));
        let req = c.request(INTEROP_OBJ, "bigBlob", version::TARS, w.finish());
        bytes.extend(frame_bytes(&req));
    }
    let mut w = ParamWriter::new(version::TARS);
    w.write_str(1, "s", "late");
    let mut late = c.request(INTEROP_OBJ, "echoString", version::TARS, w.finish());
    late.i_timeout = 1;
    bytes.extend(frame_bytes(&late));
    c.send_bytes(&bytes).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let mut codes = Vec::new();
    for _ in 0..4 {
        let r = c.read_reply().unwrap().unwrap();
        codes.push((r.request_id, r.ret));
    }
    assert_eq!(codes[..3], [(1, 0), (2, 0), (3, 0)]);
    assert_eq!(codes[3], (late.i_request_id, ret::QUEUE_TIMEOUT), "{codes:?}");
    server.shutdown();
    server.wait().unwrap();
}

/// maxconns=2 on one shard: the third connection is closed at once, the first two work.
fn max_conns(io: IoMode) {
    let server = start_interop(io, 1, "maxconns=2").unwrap();
    let addr = server.addr(INTEROP_ADAPTER).unwrap();
    let mut a = RawConn::connect(addr).unwrap();
    let mut b = RawConn::connect(addr).unwrap();
    assert_eq!(a.echo_string(INTEROP_OBJ, "a").unwrap().ret, 0);
    assert_eq!(b.echo_string(INTEROP_OBJ, "b").unwrap().ret, 0);
    let mut c = RawConn::connect(addr).unwrap();
    assert!(c.closed_within(Duration::from_secs(3)), "a third connection must be refused");
    drop(a);
    let again = tars_testkit::wait_for(Duration::from_secs(3), || {
        let mut d = RawConn::connect(addr).ok()?;
        d.echo_string(INTEROP_OBJ, "d").ok().filter(|r| r.ret == 0)
    });
    assert!(again.is_some(), "a slot freed by a closed connection must be reusable");
    server.shutdown();
    server.wait().unwrap();
}

/// allow lists 10.*.*.* only: 127.0.0.1 is refused; deny of another address lets it in.
fn allow_list(io: IoMode) {
    let refused = start_interop(io, 1, "allow=10.*.*.*").unwrap();
    let mut c = RawConn::connect(refused.addr(INTEROP_ADAPTER).unwrap()).unwrap();
    assert!(c.closed_within(Duration::from_secs(3)), "127.0.0.1 is not in the allow list");
    refused.shutdown();
    refused.wait().unwrap();
    let allowed = start_interop(io, 1, "allow=127.0.0.0/8\ndeny=10.0.0.1").unwrap();
    let mut c = RawConn::connect(allowed.addr(INTEROP_ADAPTER).unwrap()).unwrap();
    assert_eq!(c.echo_string(INTEROP_OBJ, "in").unwrap().ret, 0);
    allowed.shutdown();
    allowed.wait().unwrap();
}

/// queuecap=8 shared fairly: a connection that pipelines slow calls gets half the queue while
/// another connection is open, and the other connection is still served.
fn fair_queue(io: IoMode) {
    let server = start_interop(io, 1, "queuecap=8").unwrap();
    let addr = server.addr(INTEROP_ADAPTER).unwrap();
    let mut quiet = RawConn::connect(addr).unwrap();
    assert_eq!(quiet.echo_string(INTEROP_OBJ, "here").unwrap().ret, 0);
    let mut greedy = RawConn::connect(addr).unwrap();
    let mut bytes = Vec::new();
    for i in 0..8 {
        bytes.extend(frame_bytes(&slow_echo(&mut greedy, i, 500, 5000)));
    }
    greedy.send_bytes(&bytes).unwrap();
    let mut refused = 0;
    for _ in 0..4 {
        let r = greedy.read_reply().unwrap().unwrap();
        assert_eq!(r.ret, ret::OVERLOAD, "only half the queue for one connection: {}", r.desc);
        refused += 1;
    }
    // The other connection gets a slot while the greedy one holds its half.
    let req = slow_echo(&mut quiet, 99, 10, 5000);
    let r = quiet.call(&req).unwrap();
    assert_eq!((r.ret, r.request_id), (ret::SUCCESS, req.i_request_id), "{}", r.desc);
    for _ in 0..4 {
        assert_eq!(greedy.read_reply().unwrap().unwrap().ret, ret::SUCCESS);
    }
    assert_eq!(refused, 4);
    server.shutdown();
    server.wait().unwrap();
}

/// maxconnsperip=2: a third connection from the same address is closed on accept, across
/// both shards, and a closed one frees its slot.
fn max_conns_per_ip(io: IoMode) {
    let server = start_interop(io, 2, "maxconnsperip=2").unwrap();
    let addr = server.addr(INTEROP_ADAPTER).unwrap();
    let mut a = RawConn::connect(addr).unwrap();
    let mut b = RawConn::connect(addr).unwrap();
    assert_eq!(a.echo_string(INTEROP_OBJ, "a").unwrap().ret, 0);
    assert_eq!(b.echo_string(INTEROP_OBJ, "b").unwrap().ret, 0);
    for _ in 0..4 {
        let mut c = RawConn::connect(addr).unwrap();
        assert!(c.closed_within(Duration::from_secs(3)), "a third connection from 127.0.0.1 must be refused");
    }
    drop(a);
    let again = tars_testkit::wait_for(Duration::from_secs(3), || {
        let mut d = RawConn::connect(addr).ok()?;
        d.echo_string(INTEROP_OBJ, "d").ok().filter(|r| r.ret == 0)
    });
    assert!(again.is_some(), "a slot freed by a closed connection must be reusable");
    assert_eq!(b.echo_string(INTEROP_OBJ, "b").unwrap().ret, 0);
    server.shutdown();
    server.wait().unwrap();
}

/// AdminObj: status, version, log level, connections; then shutdown through AdminObj while a
/// slow call is in flight: the call is answered, new connections are refused, the server exits.
fn admin_and_graceful_stop(io: IoMode) {
    let server = start_interop(io, 2, "").unwrap();
    let addr = server.addr(INTEROP_ADAPTER).unwrap();
    let admin = server.addr("AdminAdapter").unwrap();
    let status = admin_notify(admin, "tars.viewstatus").unwrap();
    assert!(status.contains(INTEROP_ADAPTER) && status.contains(io.as_str()), "{status}");
    assert!(admin_notify(admin, "tars.viewversion").unwrap().starts_with("version: "));
    assert_eq!(admin_notify(admin, "tars.setloglevel WARN").unwrap(), "set log level [WARN] ok");
    assert!(admin_notify(admin, "tars.setloglevel LOUD").unwrap().contains("failed"));
    assert!(admin_notify(admin, "tars.viewstatus").unwrap().contains("WARN"));
    let mut c = RawConn::connect(addr).unwrap();
    assert_eq!(c.echo_string(INTEROP_OBJ, "x").unwrap().ret, 0);
    let listing = admin_notify(admin, "tars.connection").unwrap();
    assert!(listing.lines().any(|l| l.starts_with(INTEROP_ADAPTER)), "{listing}");
    assert_eq!(admin_notify(admin, "no.such.command").unwrap(), "");

    let slow = slow_echo(&mut c, 7, 400, 5000);
    c.send(&slow).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let mut a = RawConn::connect(admin).unwrap();
    let req = a.request("AdminObj", "shutdown", version::TARS, Default::default());
    assert_eq!(a.call(&req).unwrap().ret, 0);
    let r = c.read_reply().unwrap().expect("the in-flight call must be answered during the stop");
    assert_eq!((r.request_id, r.ret), (slow.i_request_id, ret::SUCCESS));
    server.wait().unwrap();
    assert!(std::net::TcpStream::connect(addr).is_err(), "a stopped server must not accept");
}

tars_testkit::on_every_driver! {
    overload_refused => overload;
    queue_timeout_refused => queue_timeout;
    maxconns => max_conns;
    allow => allow_list;
    admin => admin_and_graceful_stop;
    fair_queue => fair_queue;
    maxconnsperip => max_conns_per_ip;
}
