//! `tarsAdminRegistry --config=FILE [--io=MODE] [--shards=N]`: the admin registry as upstream
//! deploys it (`<db>` for db_tars, `<reap>`, `<nodeinfo>`). Prints the served objects and
//! `READY`, then serves until SIGTERM/SIGINT or `AdminObj.shutdown`.

#![allow(non_snake_case)] // the binary keeps upstream's name

use tars_adminreg::AdminRegService;

const USAGE: &str = "usage: tarsAdminRegistry --config=FILE [--io=uring|epoll-et|epoll-lt] [--shards=N]";

fn main() -> anyhow::Result<()> {
    tars_core_net::app::run_binary("tarsAdminRegistry", USAGE, std::env::args().skip(1), |app| {
        Ok(app.service(AdminRegService::new(None)))
    })?;
    Ok(())
}
