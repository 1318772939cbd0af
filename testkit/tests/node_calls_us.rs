//! The official Node.js client (`@tars/rpc`) calls our server, on every IO driver, over
//! protocol versions 1 and 3: every method of the interop servant, a failing call, oneway,
//! a 70 KB reply and 50 concurrent calls (see `interop/rpc_client.js`).

#![allow(clippy::unwrap_used)]

use tars_core_net::rt::IoMode;
use tars_testkit::{node, start_interop, INTEROP_ADAPTER};

fn node_client_passes(io: IoMode) {
    let server = start_interop(io, 2, "").unwrap();
    let addr = server.addr(INTEROP_ADAPTER).unwrap();
    for version in [1, 3] {
        let run = node::run_client(addr, version);
        assert!(
            run.success && run.failed == 0 && run.passed >= 10,
            "Node client v{version} on {io}: {} passed, {} failed\n{}\n{}",
            run.passed,
            run.failed,
            run.lines.join("\n"),
            run.stderr
        );
    }
    server.shutdown();
    server.wait().unwrap();
}

tars_testkit::on_every_driver! {
    node_client => node_client_passes;
}
