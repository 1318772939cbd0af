//! `tarslog --config=FILE [--io=MODE] [--shards=N]`: the log service as upstream deploys it
//! (`<log>` with `logpath`, `ipfix`, `logthread`, `<format>`, `<logtype>`). Prints the served
//! objects and `READY`, then serves until SIGTERM/SIGINT or `AdminObj.shutdown`.

use tars_core_net::server::args::ServerArgs;
use tars_log::LogService;

const USAGE: &str = "usage: tarslog --config=FILE [--io=uring|epoll-et|epoll-lt] [--shards=N]";

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `reloadLogFormat` reads the file again.
    let file = ServerArgs::parse(args.clone(), USAGE).ok().map(|a| a.config);
    tars_core_net::app::run_binary("tarslog", USAGE, args, |app| Ok(app.service(LogService::new().config_file(file))))?;
    Ok(())
}
