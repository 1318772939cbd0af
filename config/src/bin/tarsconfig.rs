//! `tarsconfig --config=FILE [--io=MODE] [--shards=N]`: the config service as upstream
//! deploys it (`<db>` for db_tars, `<limit>`; our `<cache>`). Prints the served objects and
//! `READY`, then serves until SIGTERM/SIGINT or `AdminObj.shutdown`.

use tars_config::ConfigService;

const USAGE: &str = "usage: tarsconfig --config=FILE [--io=uring|epoll-et|epoll-lt] [--shards=N]";

fn main() -> anyhow::Result<()> {
    tars_core_net::app::run_binary("tarsconfig", USAGE, std::env::args().skip(1), |app| {
        Ok(app.service(ConfigService::new(None)))
    })?;
    Ok(())
}
