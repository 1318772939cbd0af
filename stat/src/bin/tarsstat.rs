//! `tarsstat --config=FILE [--io=MODE] [--shards=N]`: call statistics as upstream deploys
//! them, reading upstream's config keys (see `tars_stat::service`). Prints `READY`, then
//! serves until SIGTERM/SIGINT or `AdminObj.shutdown`; on the way out the current window is
//! written (or spooled, if the database is down).

use tars_stat::service;

const USAGE: &str = "usage: tarsstat --config=FILE [--io=uring|epoll-et|epoll-lt] [--shards=N]";

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    tars_monitor::service::run_binary("tarsstat", USAGE, std::env::args().skip(1), service::start_file)?;
    Ok(())
}
