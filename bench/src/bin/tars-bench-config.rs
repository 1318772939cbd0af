//! `tars-bench-config`: tarsconfig's `ConfigF.loadConfig` (cached, and with the cache off)
//! next to the TARS echo server, side by side in one process with the same shards and the
//! same client. See `tars_bench::configload`.

use anyhow::{anyhow, Result};
use tars_bench::cli::{secs, Args};
use tars_bench::configload::{run, ConfigBenchConfig};

const USAGE: &str = "\
usage: tars-bench-config [--url mysql://USER:PASS@HOST:PORT/DB] [--servers N] [--file-bytes B]
                         [--shards 1,2] [--io MODE] [--client-io MODE] [--threads T]
                         [--conns C] [--depth D] [--size BYTES] [--duration SECS]
                         [--warmup SECS] [--reps R] [--no-uncached] [--no-echo-sized]
                         [--quick] [--json]
  --url          MySQL/MariaDB server: a database is created there and dropped at the end
                 (default: embedded SQLite in a temp dir)
  --servers      servers with a file each; loadConfig picks one at random (default 4)
  --file-bytes   bytes of each server file (app file 1/2, node file 1/8 of it; default 1024)
  --shards       server shard counts, one round each (default 1,2)
  --io           IO driver of the servers (default epoll-lt)
  --client-io    client driver (default epoll-lt)
  --threads      client shard threads (default 1)
  --conns, --depth
                 closed loop: connections x requests in flight each (default 16 x 4)
  --size         echo payload bytes (default 100)
  --duration     measured seconds per run (default 5)
  --warmup       unmeasured seconds first (default 1)
  --reps         runs per server, interleaved (default 3)
  --no-uncached  skip tarsconfig with its cache off
  --no-echo-sized
                 skip the echo of a payload as long as a loadConfig answer
  --quick        smoke run: 1 shard, 0.4 s runs, 1 repetition
  --json         one JSON object on stdout (progress and the text report go to stderr)";

fn main() {
    tars_bench::cli::main("tars-bench-config", main_inner);
}

fn main_inner() -> Result<()> {
    let mut args = Args::parse(std::env::args().skip(1), &["quick", "json", "help", "no-uncached", "no-echo-sized"])?;
    if args.flag("help") {
        println!("{USAGE}");
        return Ok(());
    }
    let mut cfg = if args.flag("quick") { ConfigBenchConfig::quick() } else { ConfigBenchConfig::full() };
    cfg.url = args.get("url")?;
    cfg.servers = args.get_or("servers", cfg.servers)?;
    cfg.file_bytes = args.get_or("file-bytes", cfg.file_bytes)?;
    if let Some(s) = args.list::<usize>("shards")? {
        cfg.shards = s;
    }
    cfg.io = args.get_or("io", cfg.io)?;
    cfg.client_io = args.get_or("client-io", cfg.client_io)?;
    cfg.threads = args.get_or("threads", cfg.threads)?;
    cfg.conns = args.get_or("conns", cfg.conns)?;
    cfg.depth = args.get_or("depth", cfg.depth)?;
    cfg.size = args.get_or("size", cfg.size)?;
    if let Some(d) = args.get::<f64>("duration")? {
        cfg.duration = secs(d)?;
    }
    if let Some(w) = args.get::<f64>("warmup")? {
        cfg.warmup = secs(w)?;
    }
    cfg.reps = args.get_or("reps", cfg.reps)?;
    if args.flag("no-uncached") {
        cfg.uncached = false;
    }
    if args.flag("no-echo-sized") {
        cfg.echo_sized = false;
    }
    let json = args.flag("json");
    args.finish()?;
    if cfg.threads == 0 || cfg.conns == 0 || cfg.depth == 0 {
        return Err(anyhow!("--threads, --conns and --depth must be at least 1"));
    }

    eprintln!("command: {}", std::env::args().map(|a| tars_sql::redact(&a)).collect::<Vec<_>>().join(" "));
    let outcome = run(&cfg, &mut |line| eprintln!("{line}"))?;
    if json {
        eprint!("\n{}", outcome.text(&cfg));
        println!("{}", outcome.to_json(&cfg));
    } else {
        print!("{}", outcome.text(&cfg));
    }
    Ok(())
}
