//! Serves the interop servant as a separate process, started exactly like a TARS server:
//! `tars-test-server --config=FILE [--io=MODE] [--shards=N]`. Prints one line
//! `READY adapter=addr ...` when listening; stops on SIGTERM/SIGINT, on `AdminObj.shutdown`,
//! or when its stdin closes (so a test that dies does not leave it running).

use std::io::{Read, Write};

use anyhow::{bail, Context};
use tars_core_net::app::logging;
use tars_core_net::rt::IoMode;
use tars_core_net::server::ServerBuilder;
use tars_testkit::servants::{FaultServant, InteropImpl, FAULT_OBJ};
use tars_testkit::{TarsTest::InteropServant, INTEROP_OBJ};

fn main() -> anyhow::Result<()> {
    // As a deployed server logs: warnings and up unless RUST_LOG says otherwise, through the
    // runtime's queued standard error.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(logging::QueuedStderr).init();
    let (mut config, mut io, mut shards) = (None, None, None);
    for arg in std::env::args().skip(1) {
        match arg.split_once('=') {
            Some(("--config", v)) => config = Some(v.to_owned()),
            Some(("--io", v)) => io = Some(v.parse::<IoMode>()?),
            Some(("--shards", v)) => shards = Some(v.parse::<usize>().context("--shards")?),
            _ => bail!("usage: tars-test-server --config=FILE [--io=uring|epoll-et|epoll-lt] [--shards=N]"),
        }
    }
    let config = config.context("--config=FILE is required")?;
    let mut builder =
        ServerBuilder::from_config_file(&config)?.servant(INTEROP_OBJ, |_| InteropServant(InteropImpl::default()));
    if builder.shard_count(FAULT_OBJ).is_some() {
        builder = builder.servant(FAULT_OBJ, |_| FaultServant);
    }
    if let Some(io) = io {
        builder = builder.io(io);
    }
    if let Some(n) = shards {
        builder = builder.shards(n);
    }
    let server = builder.start()?;
    server.stop_on_signals()?;
    let addrs: Vec<String> = server.addrs().iter().map(|(a, addr)| format!("{a}={addr}")).collect();
    println!("READY {}", addrs.join(" "));
    std::io::stdout().flush()?;
    let stopper = server.stopper();
    std::thread::spawn(move || {
        let mut sink = [0u8; 64];
        while matches!(std::io::stdin().read(&mut sink), Ok(n) if n > 0) {}
        stopper.stop();
    });
    let done = server.wait();
    logging::flush();
    Ok(done?)
}
