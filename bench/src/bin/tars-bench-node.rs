//! `tars-bench-node`: the real `tarsnode` binary managing real business servers
//! (`tarsnode-test-server`) against a real registry: kill -9 to restart latency, and the
//! node's idle CPU and memory with 50 managed servers. See `tars_bench::node`.

use anyhow::{anyhow, Result};
use tars_bench::cli::{secs, Args};
use tars_bench::node::{run, NodeBenchConfig};

const USAGE: &str = "\
usage: tars-bench-node [--tarsnode PATH] [--test-server PATH] [--servers N] [--kills N]
                       [--gap SECS] [--poll-ms MS] [--settle SECS] [--idle SECS]
                       [--node-io MODE] [--phases idle,restart] [--quick] [--json]
  --tarsnode     the tarsnode binary (default: next to this one, i.e. target/release/tarsnode)
  --test-server  the managed server binary (default: tarsnode-test-server next to this one)
  --servers      servers the node manages (default 50)
  --kills        kill -9s measured, round robin over the servers (default 100); when a server
                 would be killed 10 times or more, the node's config raises
                 /tars/app_conf/default<ActivatorMaxCount> so the throttle never refuses
  --gap          seconds to wait after a replacement is Active before the next kill (default 0.3)
  --poll-ms      polling interval of the pid file and NodeObj.getStateInfo (default 1)
  --settle       seconds after all servers are Active before the idle window (default 10)
  --idle         the idle window in seconds (default 30)
  --node-io      tarsnode's --io (default: its own)
  --phases       idle, restart (default both)
  --quick        smoke run: 3 servers, 4 kills, 1 s idle window, no settling
  --json         one JSON object on stdout (progress and the text report go to stderr)";

fn main() {
    tars_bench::cli::main("tars-bench-node", main_inner);
}

fn main_inner() -> Result<()> {
    let mut args = Args::parse(std::env::args().skip(1), &["quick", "json", "help"])?;
    if args.flag("help") {
        println!("{USAGE}");
        return Ok(());
    }
    let mut cfg = if args.flag("quick") { NodeBenchConfig::quick() } else { NodeBenchConfig::full() };
    if let Some(p) = args.get::<String>("tarsnode")? {
        cfg.tarsnode = p.into();
    }
    if let Some(p) = args.get::<String>("test-server")? {
        cfg.test_server = p.into();
    }
    cfg.servers = args.get_or("servers", cfg.servers)?;
    cfg.kills = args.get_or("kills", cfg.kills)?;
    if let Some(g) = args.get::<f64>("gap")? {
        cfg.gap = secs(g)?;
    }
    if let Some(ms) = args.get::<f64>("poll-ms")? {
        cfg.poll = secs(ms / 1000.0)?;
    }
    if let Some(s) = args.get::<f64>("settle")? {
        cfg.settle = secs(s)?;
    }
    if let Some(s) = args.get::<f64>("idle")? {
        cfg.idle = secs(s)?;
    }
    cfg.node_io = args.get("node-io")?;
    if let Some(p) = args.list::<String>("phases")? {
        if let Some(bad) = p.iter().find(|p| !["idle", "restart"].contains(&p.as_str())) {
            return Err(anyhow!("--phases: unknown phase {bad:?}"));
        }
        cfg.idle_phase = p.iter().any(|p| p == "idle");
        cfg.restart_phase = p.iter().any(|p| p == "restart");
    }
    let json = args.flag("json");
    args.finish()?;
    if cfg.servers == 0 {
        return Err(anyhow!("--servers must be at least 1"));
    }

    eprintln!("command: {}", std::env::args().collect::<Vec<_>>().join(" "));
    let outcome = run(&cfg, &mut |line| eprintln!("{line}"))?;
    if json {
        eprint!("\n{}", outcome.text(&cfg));
        println!("{}", outcome.to_json(&cfg));
    } else {
        print!("{}", outcome.text(&cfg));
    }
    Ok(())
}
