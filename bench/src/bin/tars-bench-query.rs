//! `tars-bench-query`: `MonitorQuery.query` latency through tarsquerystat for a day of stat
//! data of 1000 servers, next to the same SQL run directly on the same store, in one run, as a
//! ratio. See `tars_bench::query`.

use anyhow::{anyhow, Result};
use tars_bench::cli::{command_line, Args};
use tars_bench::query::{run, QueryBenchConfig};

const USAGE: &str = "\
usage: tars-bench-query [--url mysql://USER:PASS@HOST:PORT/DB] [--servers N] [--interfaces I]
                        [--reps R] [--shards S] [--io MODE] [--pool P] [--quick] [--json]
  --url         MySQL/MariaDB server: a database bench_query_<pid> is created there, filled and
                dropped at the end (default: embedded SQLite in a temp dir)
  --servers     servers in the day's data (default 1000)
  --interfaces  interfaces per server, one caller each, 12 five-minute labels an hour (default 3)
  --reps        repetitions, each running both queries through the service and directly
                (default 30)
  --shards      tarsquerystat's shards (default 1)
  --io          the service's and the client's IO driver (default epoll-lt)
  --pool        the service's connections to MySQL (default 4, upstream's count_db_tpoolsize)
  --quick       smoke run: 20 servers, 2 repetitions
  --json        one JSON object on stdout (progress and the text report go to stderr)";

fn main() {
    tars_bench::cli::main("tars-bench-query", main_inner);
}

fn main_inner() -> Result<()> {
    let mut args = Args::parse(std::env::args().skip(1), &["quick", "json", "help"])?;
    if args.flag("help") {
        println!("{USAGE}");
        return Ok(());
    }
    let mut cfg = if args.flag("quick") { QueryBenchConfig::quick() } else { QueryBenchConfig::full() };
    cfg.url = args.get("url")?;
    cfg.servers = args.get_or("servers", cfg.servers)?;
    cfg.interfaces = args.get_or("interfaces", cfg.interfaces)?;
    cfg.reps = args.get_or("reps", cfg.reps)?;
    cfg.shards = args.get_or("shards", cfg.shards)?;
    cfg.io = args.get_or("io", cfg.io)?;
    cfg.pool = args.get_or("pool", cfg.pool)?;
    let json = args.flag("json");
    args.finish()?;
    if cfg.shards == 0 || cfg.pool == 0 {
        return Err(anyhow!("--shards and --pool must be at least 1"));
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
