//! `tars-example-hello --config=FILE [--io=MODE] [--shards=N]`: serves `TestApp.Hello`.
//! Prints each adapter's address and `READY`, then serves until SIGTERM/SIGINT or
//! `AdminObj.shutdown`.

use tars_example_hello::{HelloImp, TestApp::HelloServant, HELLO_OBJ};

const USAGE: &str = "usage: tars-example-hello --config=FILE [--io=uring|epoll-et|epoll-lt] [--shards=N]";

fn main() -> anyhow::Result<()> {
    tars_core_net::app::run_binary("hello", USAGE, std::env::args().skip(1), |app| {
        Ok(app.servant(HELLO_OBJ, |shard| HelloServant(HelloImp::new(shard.id))))
    })?;
    Ok(())
}
