//! `tarsnode-test-server --config=FILE`: a minimal TARS server for the node's tests. It serves
//! only its `AdminObj` and performs the framework duties of every server built on
//! `tars_core_net::app` (keepActiving, keepAlive every 10 s, reportVersion to the node named
//! by `node` in its config), so the node sees it exactly as a deployed business server.

fn main() -> anyhow::Result<()> {
    tars_core_net::app::run_binary(
        "tarsnode-test-server",
        "usage: tarsnode-test-server --config=FILE",
        std::env::args().skip(1),
        Ok,
    )?;
    Ok(())
}
