//! `tarsregistry --config=FILE [--io=MODE] [--shards=N]`: the registry as upstream deploys it,
//! reading upstream's config keys (see `tars_registry::config`). Prints each served object
//! and `READY`, then serves until SIGTERM/SIGINT or `AdminObj.shutdown`.

use std::io::Write;

use tars_core_net::server::args::ServerArgs;
use tars_registry::service::{self, StartOptions};

const USAGE: &str = "usage: tarsregistry --config=FILE [--io=uring|epoll-et|epoll-lt] [--shards=N]";

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
    let registry = service::start_file(&config, opts)?;
    registry.server.stop_on_signals()?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "tarsregistry: config {}", config.display())?;
    writeln!(out, "  db_tars {}", registry.runtime.ctx.store.url())?;
    for (object, endpoint) in &registry.runtime.objects {
        writeln!(out, "  {object:<32} {endpoint}")?;
    }
    if let Some(addr) = registry.runtime.prometheus_sd {
        writeln!(out, "  prometheus http_sd               http://{addr}/prometheus/sd")?;
    }
    writeln!(out, "READY")?;
    out.flush()?;
    drop(out);
    registry.wait()?;
    Ok(())
}
