//! `AdminObj` answers loopback peers only unless `localallow` says otherwise, against the
//! server running as its own process, on every IO driver: with `local` on 0.0.0.0, a peer
//! connecting through the host's own non-loopback address is refused, a loopback peer is
//! answered, and `localallow` opens it to that address. The business adapter is untouched.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::Duration;

use tars_core_net::rt::IoMode;
use tars_proto::packet::ret;
use tars_testkit::own_address;
use tars_testkit::process::ServerProcess;
use tars_testkit::raw::{admin_notify, RawConn};
use tars_testkit::{interop_config, INTEROP_ADAPTER, INTEROP_OBJ};

const BIN: &str = env!("CARGO_BIN_EXE_tars-test-server");

fn start(io: IoMode, localallow: &str) -> ServerProcess {
    let config = interop_config("")
        .replace("local=tcp -h 127.0.0.1 -p 0", "local=tcp -h 0.0.0.0 -p 0")
        .replace("</server>", &format!("{localallow}\n</server>"))
        .replace("endpoint=tcp -h 127.0.0.1", "endpoint=tcp -h 0.0.0.0");
    ServerProcess::start(BIN, &config, io, 1).unwrap()
}

fn refused(addr: SocketAddr) -> bool {
    match RawConn::connect(addr) {
        Err(_) => true,
        Ok(mut c) => c.closed_within(Duration::from_secs(3)),
    }
}

fn admin_is_loopback_only(io: IoMode) {
    let me = own_address();
    let server = start(io, "");
    let port = server.addr("AdminAdapter").unwrap().port();
    let (outside, inside) = (SocketAddr::new(me, port), SocketAddr::from(([127, 0, 0, 1], port)));
    assert!(refused(outside), "AdminObj from {me} must be refused");
    assert!(admin_notify(outside, "tars.viewversion").is_err());
    assert!(admin_notify(inside, "tars.viewversion").unwrap().starts_with("version:"));
    // The business adapter still admits everyone, as its (empty) allow list says.
    let business = SocketAddr::new(me, server.addr(INTEROP_ADAPTER).unwrap().port());
    assert_eq!(RawConn::connect(business).unwrap().echo_string(INTEROP_OBJ, "hi").unwrap().ret, ret::SUCCESS);
    assert!(server.stop());

    let server = start(io, &format!("localallow=127.0.0.1,{me}"));
    let outside = SocketAddr::new(me, server.addr("AdminAdapter").unwrap().port());
    assert!(admin_notify(outside, "tars.viewversion").unwrap().starts_with("version:"), "localallow admits {me}");
    assert!(server.stop());
}

tars_testkit::on_every_driver! {
    admin_allow => admin_is_loopback_only;
}
