//! `tarsnotify --config=FILE [--io=MODE] [--shards=N]`: the notify service as upstream
//! deploys it (`<db>` for db_tars, `<filter>`, `retainHistory`, `cron`; our `<ratelimit>`,
//! `<retention>`, `<queue>`, `<writer>`). Prints the served objects and `READY`, then serves
//! until SIGTERM/SIGINT or `AdminObj.shutdown`.

use tars_notify::NotifyService;

const USAGE: &str = "usage: tarsnotify --config=FILE [--io=uring|epoll-et|epoll-lt] [--shards=N]";

fn main() -> anyhow::Result<()> {
    tars_core_net::app::run_binary("tarsnotify", USAGE, std::env::args().skip(1), |app| {
        Ok(app.service(NotifyService::new(None)))
    })?;
    Ok(())
}
