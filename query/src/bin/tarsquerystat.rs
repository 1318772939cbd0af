//! `tarsquerystat --config=FILE [--io=MODE] [--shards=N]`: `tars.tarsquerystat.QueryObj` as
//! upstream deploys it (`<statdb>` sections as the writer's). Prints the served objects and
//! `READY`, then serves until SIGTERM/SIGINT or `AdminObj.shutdown`.

use tars_query::{Kind, QueryService};

const USAGE: &str = "usage: tarsquerystat --config=FILE [--io=uring|epoll-et|epoll-lt] [--shards=N]";

fn main() -> anyhow::Result<()> {
    tars_core_net::app::run_binary("tarsquerystat", USAGE, std::env::args().skip(1), |app| {
        Ok(app.service(QueryService::new(Kind::Stat)))
    })?;
    Ok(())
}
