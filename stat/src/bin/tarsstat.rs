//! `tarsstat --config=FILE [--io=MODE] [--shards=N]`: call statistics as upstream deploys
//! them, reading upstream's config keys (see `tars_stat::service`). Prints `READY`, then
//! serves until SIGTERM/SIGINT or `AdminObj.shutdown`; on the way out the current window is
//! written (or spooled, if the database is down).

use std::io::Write;

use tars_core_net::server::args::ServerArgs;
use tars_stat::service::{self, StartOptions};

const USAGE: &str = "usage: tarsstat --config=FILE [--io=uring|epoll-et|epoll-lt] [--shards=N]";

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = ServerArgs::parse(std::env::args().skip(1), USAGE).map_err(anyhow::Error::msg)?;
    let opts = StartOptions { io: args.io, shards: args.shards, ..StartOptions::default() };
    let config = args.config;
    let stat = service::start_file(&config, opts)?;
    stat.server.stop_on_signals()?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "tarsstat: config {}", config.display())?;
    for (adapter, addr) in stat.server.addrs() {
        writeln!(out, "  {adapter:<32} {addr}")?;
    }
    writeln!(out, "READY")?;
    out.flush()?;
    drop(out);
    stat.wait()?;
    Ok(())
}
