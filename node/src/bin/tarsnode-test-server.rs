//! `tarsnode-test-server --config=FILE`: a minimal TARS server for the node's tests. It performs
//! the framework duties of every server built on `tars_core_net::app` (keepActiving, keepAlive
//! every 10 s, reportVersion to the node named by `node` in its config), so the node sees it
//! exactly as a deployed business server. Every adapter in its config gets a servant that
//! answers `tars_ping` (as every TARS servant does) and refuses anything else, so a deployed
//! server's routes can be probed.

use std::rc::Rc;

use tars_core_net::server::adapter::ServerConfig;
use tars_proto::dispatch::{Dispatch, DispatchFuture};
use tars_proto::rpc::{Current, ServantError};
use tars_proto::Bytes;

/// Answers nothing but the framework's ping (which the connection answers before dispatch).
struct PingOnly;

impl Dispatch for PingOnly {
    fn dispatch(self: Rc<Self>, current: Current, _body: Bytes) -> DispatchFuture {
        Box::pin(async move {
            let e = ServantError::no_func(&current.func);
            (current, Err(e))
        })
    }
}

fn main() -> anyhow::Result<()> {
    tars_core_net::app::run_binary(
        "tarsnode-test-server",
        "usage: tarsnode-test-server --config=FILE",
        std::env::args().skip(1),
        |mut app| {
            let servants: Vec<String> = ServerConfig::from_config(app.config())
                .map(|c| c.adapters.into_iter().map(|a| a.servant).collect())
                .unwrap_or_default();
            for s in servants {
                app = app.servant(s, |_| PingOnly);
            }
            Ok(app)
        },
    )?;
    Ok(())
}
