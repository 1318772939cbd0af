//! `tarsregistry --config=FILE [--io=MODE] [--shards=N]`: the registry as upstream deploys it,
//! reading upstream's config keys (see `tars_registry::config`). Prints each served object
//! and `READY`, then serves until SIGTERM/SIGINT or `AdminObj.shutdown`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context};
use tars_core_net::rt::IoMode;
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
    let mut config = None;
    let mut opts = StartOptions::default();
    for a in std::env::args().skip(1) {
        let Some((k, v)) = a.strip_prefix("--").and_then(|f| f.split_once('=')) else {
            bail!("unexpected argument {a:?}\n{USAGE}");
        };
        match k {
            "config" => config = Some(PathBuf::from(v)),
            "io" => opts.io = Some(v.parse::<IoMode>()?),
            "shards" => opts.shards = Some(v.parse().context("--shards")?),
            _ => bail!("unknown flag --{k}\n{USAGE}"),
        }
    }
    let config = config.with_context(|| format!("--config=FILE is required\n{USAGE}"))?;
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
