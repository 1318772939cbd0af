//! `tars-bench-log`: log lines per second written to disk through tarslog's `LogObj` next to a
//! plain buffered file write of the same lines, in one run, as a ratio. See `tars_bench::log`.

use anyhow::{anyhow, Result};
use tars_bench::cli::{command_line, Args};
use tars_bench::log::{run, LogBenchConfig};

const USAGE: &str = "\
usage: tars-bench-log [--lines N] [--line-bytes B] [--batch L] [--conns C] [--shards S]
                      [--writers W] [--fsync never|interval|always] [--queue-mb M]
                      [--io MODE] [--reps R] [--dir DIR] [--quick] [--json]
  --lines        lines per run (default 2000000)
  --line-bytes   bytes per line, newline included (default 100)
  --batch        lines per logger call (default 200, TarsCpp's remote batch)
  --conns        client connections, one file each (default 4)
  --shards       server shards (default 1)
  --writers      writer threads, /tars/log<logthread> (default 1)
  --fsync        /tars/log<fsync> (default never, as upstream)
  --queue-mb     /tars/log<queueMB> (default 64)
  --io           the server's IO driver (default epoll-lt)
  --reps         runs of each, alternating (default 3)
  --dir          where the files go (default the system temp dir)
  --quick        smoke run: 100000 lines, 1 repetition
  --json         one JSON object on stdout (progress and the text report go to stderr)";

fn main() {
    tars_bench::cli::main("tars-bench-log", main_inner);
}

fn main_inner() -> Result<()> {
    let mut args = Args::parse(std::env::args().skip(1), &["quick", "json", "help"])?;
    if args.flag("help") {
        println!("{USAGE}");
        return Ok(());
    }
    let mut cfg = if args.flag("quick") { LogBenchConfig::quick() } else { LogBenchConfig::full() };
    cfg.lines = args.get_or("lines", cfg.lines)?;
    cfg.line_bytes = args.get_or("line-bytes", cfg.line_bytes)?;
    cfg.batch = args.get_or("batch", cfg.batch)?;
    cfg.conns = args.get_or("conns", cfg.conns)?;
    cfg.shards = args.get_or("shards", cfg.shards)?;
    cfg.writers = args.get_or("writers", cfg.writers)?;
    cfg.fsync = args.get_or("fsync", cfg.fsync)?;
    cfg.queue_mb = args.get_or("queue-mb", cfg.queue_mb)?;
    cfg.io = args.get_or("io", cfg.io)?;
    cfg.reps = args.get_or("reps", cfg.reps)?;
    cfg.dir = args.get("dir")?;
    let json = args.flag("json");
    args.finish()?;
    if cfg.reps == 0 || cfg.shards == 0 || cfg.writers == 0 {
        return Err(anyhow!("--reps, --shards and --writers must be at least 1"));
    }

    eprintln!("command: {}", command_line());
    let outcome = run(&cfg, &mut |line| eprintln!("{line}"))?;
    if json {
        eprint!("\n{}", outcome.text(&cfg));
        println!("{}", outcome.to_json(&cfg));
    } else {
        print!("{}", outcome.text(&cfg));
    }
    Ok(())
}
