//! Panics are contained, against the server running as its own process, on every IO driver:
//! a servant that panics inside its call, or in `dispatch` itself before it returns a future
//! (where a hand-written fast path does its work), answers that request with the standard
//! error (−99) and the shard serves on, on the same connection; a shard thread that dies
//! (a task panicking outside any call) is logged and stops the whole process with an error,
//! instead of leaving a server that answers on some shards only.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use tars_core_net::rt::IoMode;
use tars_proto::packet::{ret, version};
use tars_proto::Bytes;
use tars_testkit::process::ServerProcess;
use tars_testkit::raw::RawConn;
use tars_testkit::servants::{FAULT_ADAPTER, FAULT_OBJ};
use tars_testkit::{interop_config, INTEROP_ADAPTER, INTEROP_OBJ};

const BIN: &str = env!("CARGO_BIN_EXE_tars-test-server");

fn config() -> String {
    interop_config("").replace(
        "</server>",
        &format!(
            "<{FAULT_ADAPTER}>\nendpoint=tcp -h 127.0.0.1 -p 0 -t 60000\nservant={FAULT_OBJ}\n</{FAULT_ADAPTER}>\n</server>"
        ),
    )
}

fn call(c: &mut RawConn, func: &str) -> i32 {
    let req = c.request(FAULT_OBJ, func, version::TARS, Bytes::new());
    c.call(&req).unwrap_or_else(|e| panic!("{func}: no answer: {e}")).ret
}

fn panics_are_contained(io: IoMode) {
    // One shard: what answers after the panic is the shard that panicked.
    let mut server = ServerProcess::start(BIN, &config(), io, 1).unwrap();
    let mut c = RawConn::connect(server.addr(FAULT_ADAPTER).unwrap()).unwrap();
    assert_eq!(call(&mut c, "fine"), ret::SUCCESS);
    for func in ["panicInFuture", "panicInDispatch", "panicInFuture"] {
        assert_eq!(call(&mut c, func), ret::UNKNOWN, "{func} answers the standard error");
        assert_eq!(call(&mut c, "fine"), ret::SUCCESS, "after {func}, on the same connection");
    }
    assert!(server.alive());
    let mut other = RawConn::connect(server.addr(INTEROP_ADAPTER).unwrap()).unwrap();
    assert_eq!(other.echo_string(INTEROP_OBJ, "still here").unwrap().ret, ret::SUCCESS);

    // A dead shard stops the process, with an error status.
    let req = c.request(FAULT_OBJ, "killShard", version::TARS, Bytes::new());
    c.send(&req).unwrap();
    let status = server.exited_within(Duration::from_secs(10)).expect("the server stops when a shard dies");
    assert!(!status.success(), "{status}");
}

tars_testkit::on_every_driver! {
    servant_panics => panics_are_contained;
}
