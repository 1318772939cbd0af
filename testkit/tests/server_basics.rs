//! Our server, poked with exact bytes from a plain blocking socket, on every IO driver.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use tars_core_net::rt::IoMode;
use tars_proto::packet::{packet_type, ret, version};
use tars_proto::rpc::ParamWriter;
use tars_testkit::raw::RawConn;
use tars_testkit::{start_interop, INTEROP_ADAPTER, INTEROP_OBJ};

fn slow_echo_body(v: i32, delay: i32) -> tars_proto::Bytes {
    let mut w = ParamWriter::new(version::TARS);
    w.write(1, "v", &v);
    w.write(2, "delayMs", &delay);
    w.finish()
}

/// 50 calls that each wait 20 ms, sent in one write: all answered, matched by id.
fn pipelined_slow_calls(io: IoMode) {
    let server = start_interop(io, 2, "").unwrap();
    let mut c = RawConn::connect(server.addr(INTEROP_ADAPTER).unwrap()).unwrap();
    let mut bytes = Vec::new();
    let mut ids = Vec::new();
    for i in 0..50 {
        let req = c.request(INTEROP_OBJ, "slowEcho", version::TARS, slow_echo_body(i, 20));
        ids.push(req.i_request_id);
        bytes.extend(tars_testkit::raw::frame_bytes(&req));
    }
    c.send_bytes(&bytes).unwrap();
    let mut seen = Vec::new();
    for _ in 0..50 {
        let r = match c.read_reply() {
            Ok(Some(r)) => r,
            other => panic!("after {} replies ({seen:?}): {other:?}", seen.len()),
        };
        assert_eq!(r.ret, ret::SUCCESS);
        let mut p = r.params().unwrap();
        let v: i32 = p.read_ret().unwrap();
        let echoed: i32 = p.read(3, "echoed").unwrap();
        assert_eq!(echoed, v * 2);
        seen.push(r.request_id);
    }
    seen.sort();
    assert_eq!(seen, ids);
    server.shutdown();
    server.wait().unwrap();
}

/// Ping, unknown function, unknown servant, oneway: the standard answers.
fn standard_codes(io: IoMode) {
    let server = start_interop(io, 1, "").unwrap();
    let mut c = RawConn::connect(server.addr(INTEROP_ADAPTER).unwrap()).unwrap();
    let ping = c.request(INTEROP_OBJ, "tars_ping", version::TARS, Default::default());
    assert_eq!(c.call(&ping).unwrap().ret, ret::SUCCESS);
    let nofunc = c.request(INTEROP_OBJ, "noSuchMethod", version::TARS, Default::default());
    assert_eq!(c.call(&nofunc).unwrap().ret, ret::NO_FUNC);
    let noservant = c.request("Other.Server.Obj", "echoString", version::TARS, Default::default());
    assert_eq!(c.call(&noservant).unwrap().ret, ret::NO_SERVANT);
    let mut oneway = c.request(INTEROP_OBJ, "fire", version::TARS, {
        let mut w = ParamWriter::new(version::TARS);
        w.write_str(1, "note", "x");
        w.finish()
    });
    oneway.c_packet_type = packet_type::ONEWAY;
    c.send(&oneway).unwrap();
    // The next reply must be the echo's: the oneway call produced none.
    let r = c.echo_string(INTEROP_OBJ, "after").unwrap();
    assert_eq!(r.ret, ret::SUCCESS);
    let got: String = r.params().unwrap().read_ret().unwrap();
    assert_eq!(got, "after");
    server.shutdown();
    server.wait().unwrap();
}

tars_testkit::on_every_driver! {
    pipelined => pipelined_slow_calls;
    codes => standard_codes;
}

#[test]
fn idle_connection_is_closed_after_t() {
    // -t 2000 ms (the least TarsCpp allows is 2 s).
    let config = tars_testkit::interop_config("").replace("-p 0 -t 60000", "-p 0 -t 2000");
    let cfg = tars_proto::config::Config::parse(&config).unwrap();
    let server = tars_core_net::server::ServerBuilder::from_config(&cfg)
        .unwrap()
        .servant(
            INTEROP_OBJ,
            |_| tars_testkit::TarsTest::InteropServant(tars_testkit::servants::InteropImpl::default()),
        )
        .io(IoMode::EpollEt)
        .shards(1)
        .start()
        .unwrap();
    let mut c = RawConn::connect(server.addr(INTEROP_ADAPTER).unwrap()).unwrap();
    let t0 = std::time::Instant::now();
    assert!(c.closed_within(Duration::from_secs(8)), "idle connection not closed");
    let waited = t0.elapsed();
    assert!(waited >= Duration::from_millis(1900), "closed too early: {waited:?}");
    server.shutdown();
    server.wait().unwrap();
}
