//! `tarsnode --config=FILE [--nodeid=IP] [--monitor] [--io=MODE] [--shards=N]`: the node agent
//! as upstream deploys it. Prints the served objects and `READY`, then serves until
//! SIGTERM/SIGINT, `AdminObj.shutdown` or `NodeObj.shutdown`; the servers it manages keep
//! running. It does not daemonise (run it under a supervisor).
//!
//! `--monitor`: asks the local `ServerObj.getLatestKeepAliveTime` and exits 0 when the node's
//! last check is newer than `/tars/node/keepalive<synTimeout>` (300 s), else 255 (upstream's
//! `monitor.sh` restarts the node then).

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use tars_core_net::client::config::ClientConfig;
use tars_core_net::client::BlockingClient;
use tars_core_net::rt::IoMode;
use tars_core_net::server::adapter::ServerConfig;
use tars_node::confgen::NODE_SERVER_OBJ;
use tars_node::settings::NodeSettings;
use tars_node::{NodeOptions, NodeService};
use tars_proto::config::Config;
use tars_proto::rpc::CallOptions;
use tars_protocol::tars::ServerFProxy;

const USAGE: &str =
    "usage: tarsnode --config=FILE [--nodeid=IP] [--monitor] [--io=uring|epoll-et|epoll-lt] [--shards=N]";

fn main() -> anyhow::Result<()> {
    let mut rest = Vec::new();
    let (mut node_id, mut monitor, mut config) = (None, false, None);
    for arg in std::env::args().skip(1) {
        if let Some(v) = arg.strip_prefix("--nodeid=") {
            node_id = Some(v.to_owned());
        } else if arg == "--monitor" {
            monitor = true;
        } else {
            if let Some(v) = arg.strip_prefix("--config=") {
                config = Some(PathBuf::from(v));
            }
            rest.push(arg);
        }
    }
    if monitor {
        let file = config.context(USAGE)?;
        std::process::exit(if node_is_fresh(&file)? { 0 } else { 255 });
    }
    let opts = NodeOptions { node_id, config_file: config, notice_hook: None, hosted: Vec::new() };
    tars_core_net::app::run_binary("tarsnode", USAGE, rest, |app| Ok(app.service(NodeService::new(opts))))?;
    Ok(())
}

/// `--monitor`: the node's last check tick against `synTimeout`.
fn node_is_fresh(file: &PathBuf) -> anyhow::Result<bool> {
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let conf = Config::parse(&text)?;
    let settings = NodeSettings::from_config(&conf);
    let server = ServerConfig::from_config(&conf)?;
    let adapter = server.adapter_for_servant(NODE_SERVER_OBJ).context("no ServerObj adapter in the config")?;
    let mut ep = adapter.endpoint.clone();
    if ep.host == "0.0.0.0" || ep.host == tars_node::settings::PLACEHOLDER_IP {
        ep.host = "127.0.0.1".into();
    }
    let obj = format!("{NODE_SERVER_OBJ}@{ep}");
    let client = BlockingClient::start(ClientConfig::default(), IoMode::EpollEt)?;
    let latest = client.try_run(move |comm| async move {
        let proxy = comm.proxy(&obj).ok()?;
        let p = ServerFProxy::new(proxy, NODE_SERVER_OBJ)
            .with_options(CallOptions { timeout_ms: 3000, ..Default::default() });
        p.get_latest_keep_alive_time().await.ok()
    });
    let Some(Some(latest)) = latest else { return Ok(false) };
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs();
    Ok(now.saturating_sub(u64::from(latest)) < settings.syn_timeout.as_secs())
}
