//! `tarsregistry --config=FILE [--io=MODE] [--shards=N]`: the registry as upstream deploys it,
//! reading upstream's config keys (see `tars_registry::config`). Prints each served object
//! and `READY`, then serves until SIGTERM/SIGINT or `AdminObj.shutdown`.

use tars_registry::service::RegistryService;

const USAGE: &str = "usage: tarsregistry --config=FILE [--io=uring|epoll-et|epoll-lt] [--shards=N]";

fn main() -> anyhow::Result<()> {
    tars_core_net::app::run_binary("tarsregistry", USAGE, std::env::args().skip(1), |app| {
        Ok(app.service(RegistryService::new(None)))
    })?;
    Ok(())
}
