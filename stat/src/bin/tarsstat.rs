//! `tarsstat --config=FILE [--io=MODE] [--shards=N]`: call statistics as upstream deploys
//! them, reading upstream's config keys (see `tars_stat::service`). Prints `READY`, then
//! serves until SIGTERM/SIGINT or `AdminObj.shutdown`; on the way out the current window is
//! written (or spooled, if the database is down).

const USAGE: &str = "usage: tarsstat --config=FILE [--io=uring|epoll-et|epoll-lt] [--shards=N]";

fn main() -> anyhow::Result<()> {
    tars_monitor::service::run_binary("tarsstat", USAGE, std::env::args().skip(1), || {
        tars_stat::service::host(None, None)
    })?;
    Ok(())
}
