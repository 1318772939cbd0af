//! `tarsproperty --config=FILE [--io=MODE] [--shards=N]`: custom metrics as upstream deploys
//! them, reading upstream's config keys (see `tars_property::service`). Prints `READY`, then
//! serves until SIGTERM/SIGINT or `AdminObj.shutdown`; on the way out the current window is
//! written (or spooled, if the database is down).

const USAGE: &str = "usage: tarsproperty --config=FILE [--io=uring|epoll-et|epoll-lt] [--shards=N]";

fn main() -> anyhow::Result<()> {
    tars_monitor::service::run_binary("tarsproperty", USAGE, std::env::args().skip(1), || {
        tars_property::service::host(None, None)
    })?;
    Ok(())
}
