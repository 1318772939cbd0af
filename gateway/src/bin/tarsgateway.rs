//! `tarsgateway --config=FILE [--io=MODE] [--shards=N]`: the HTTP JSON gateway
//! (`POST /json/App.Server.Obj/func`, upstream's port 8200), calling objects through the
//! `<client>` locator. Prints its endpoints and `READY`, then serves until SIGTERM/SIGINT or
//! `AdminObj.shutdown`.

use tars_gateway::GatewayService;

const USAGE: &str = "usage: tarsgateway --config=FILE [--io=uring|epoll-et|epoll-lt] [--shards=N]";

fn main() -> anyhow::Result<()> {
    tars_core_net::app::run_binary("tarsgateway", USAGE, std::env::args().skip(1), |app| {
        Ok(app.service(GatewayService::new()))
    })?;
    Ok(())
}
