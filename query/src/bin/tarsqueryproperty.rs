//! `tarsqueryproperty --config=FILE [--io=MODE] [--shards=N]`: `tars.tarsqueryproperty.QueryObj` as
//! upstream deploys it (`<propertydb>` sections as the writer's). Prints the served objects and
//! `READY`, then serves until SIGTERM/SIGINT or `AdminObj.shutdown`.

use tars_query::{Kind, QueryService};

const USAGE: &str = "usage: tarsqueryproperty --config=FILE [--io=uring|epoll-et|epoll-lt] [--shards=N]";

fn main() -> anyhow::Result<()> {
    tars_core_net::app::run_binary("tarsqueryproperty", USAGE, std::env::args().skip(1), |app| {
        Ok(app.service(QueryService::new(Kind::Property)))
    })?;
    Ok(())
}
