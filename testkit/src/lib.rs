//! What the network tests share: the test servants (`Interop`, `Echo`, compiled from
//! `testkit/tars/*.tars` by our generator), a way to start them on any IO driver, a blocking
//! raw-socket TARS client for poking servers with exact (and hostile) bytes, and a runner for
//! the Node.js `@tars/rpc` peer scripts in `interop/`.

pub mod db;
pub mod http;
pub mod mysql;
pub mod netns;
pub mod node;
pub mod process;
pub mod raw;
pub mod servants;

include!(concat!(env!("OUT_DIR"), "/_include.rs"));

use std::time::Duration;

use tars_core_net::rt::IoMode;
use tars_core_net::server::{ServerBuilder, ServerError, ServerHandle};
use tars_proto::config::Config;

/// Servant name of the interop servant.
pub const INTEROP_OBJ: &str = "TarsTest.InteropServer.InteropObj";
/// Adapter name of the interop servant.
pub const INTEROP_ADAPTER: &str = "TarsTest.InteropServer.InteropObjAdapter";

/// The config text of a test server: the interop adapter on a free port with `extra` keys,
/// plus an admin adapter.
pub fn interop_config(extra: &str) -> String {
    format!(
        "<tars>\n<application>\n<server>\napp=TarsTest\nserver=InteropServer\nlocal=tcp -h 127.0.0.1 -p 0 -t 10000\n\
         <{INTEROP_ADAPTER}>\nendpoint=tcp -h 127.0.0.1 -p 0 -t 60000\nservant={INTEROP_OBJ}\n{extra}\n</{INTEROP_ADAPTER}>\n\
         </server>\n</application>\n</tars>\n"
    )
}

/// Starts the interop servant on `io` with `shards` shards and the adapter keys in `extra`.
pub fn start_interop(io: IoMode, shards: usize, extra: &str) -> Result<ServerHandle, ServerError> {
    let config = Config::parse(&interop_config(extra))?;
    ServerBuilder::from_config(&config)?
        .servant(INTEROP_OBJ, |_| TarsTest::InteropServant(servants::InteropImpl::default()))
        .io(io)
        .shards(shards)
        .start()
}

pub use tars_core_net::on_every_driver;

/// This host's address on its default route (no packet is sent), the source of a connection
/// made to it: a peer that is not loopback. Panics when the host has none: the tests that
/// need one must not pass without it.
pub fn own_address() -> std::net::IpAddr {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").expect("a UDP socket");
    s.connect("192.0.2.1:9")
        .or_else(|_| s.connect("8.8.8.8:53"))
        .expect("this test needs a non-loopback IPv4 address with a route (none found)");
    let ip = s.local_addr().expect("its local address").ip();
    assert!(!ip.is_loopback() && !ip.is_unspecified(), "no non-loopback address: {ip}");
    ip
}

/// Polls `f` until it returns `Some`, for at most `limit`.
pub fn wait_for<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if std::time::Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
