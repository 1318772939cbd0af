//! `tars-bench-registry`: the registry's QueryObj (`findObjectById` for random objects out of
//! 10,000 × 10 endpoints) against the TARS echo server, side by side in one process with the
//! same shards and the same client, and the delay from a database change to QueryObj's
//! answers. See `tars_bench::registry`.

use anyhow::{anyhow, Result};
use tars_bench::cli::{secs, Args};
use tars_bench::registry::{run, RegistryBenchConfig};

const USAGE: &str = "\
usage: tars-bench-registry [--url mysql://USER:PASS@HOST:PORT/DB] [--db-pid PID] [--objects N]
                           [--nodes N] [--shards 1,2] [--io MODE] [--client-io MODE]
                           [--open-io MODE] [--threads T] [--conns C] [--depth D]
                           [--open-conns C] [--size BYTES] [--duration SECS] [--warmup SECS]
                           [--reps R] [--open-fractions F,...] [--phases closed,open,propagation]
                           [--changes N] [--poll-conns N] [--settle SECS] [--change-poll-ms MS]
                           [--quick] [--json]
  --url         MySQL/MariaDB server: a database bench_registry_<pid> is created there, filled
                and dropped at the end (default: embedded SQLite in a temp dir)
  --db-pid      the database server's pid, to report its CPU use
  --objects     servers = objects AppK.ServerK.Obj (default 10000)
  --nodes       nodes per server = endpoints per object (default 10)
  --shards      server shard counts, one round each (default 1,2)
  --io          IO driver of both servers (default epoll-lt)
  --client-io   client driver, closed loop (default epoll-lt)
  --open-io     client driver, open loop (default uring: epoll timers have 1 ms granularity)
  --threads     client shard threads (default 1; the machine's cores are shared with the servers)
  --conns, --depth
                closed loop: connections x requests in flight each (default 16 x 4)
  --open-conns  open loop: connections (default 16)
  --size        echo payload bytes (default 100)
  --duration    measured seconds per load run (default 5)
  --warmup      unmeasured seconds first (default 1)
  --reps        closed-loop runs per server, interleaved (default 3)
  --open-fractions
                open-loop rates as fractions of the registry's closed-loop QPS, each run on
                both servers (default 0.5,0.25,0.1); the echo also runs at half its own QPS
  --phases      what to run after the closed loop (which always runs): open, propagation
                (default closed,open,propagation)
  --changes     database changes measured per round (default 20)
  --poll-conns  connections polling each change (default 8)
  --settle      seconds to wait after filling the database, before the first registry starts
                (default 5; the database server's CPU is sampled meanwhile)
  --change-poll-ms
                the registry's /tars/reap<changePollMs> (default: its own default, 200 ms);
                for diagnosis only: the results are meant for the default
  --quick       smoke run: 200 objects, 0.5 s runs, 1 repetition, open loop at 0.5 only,
                4 changes, no settling
  --json        one JSON object on stdout (progress and the text report go to stderr)";

fn main() {
    tars_bench::cli::main("tars-bench-registry", main_inner);
}

fn main_inner() -> Result<()> {
    let mut args = Args::parse(std::env::args().skip(1), &["quick", "json", "help"])?;
    if args.flag("help") {
        println!("{USAGE}");
        return Ok(());
    }
    let mut cfg = if args.flag("quick") { RegistryBenchConfig::quick() } else { RegistryBenchConfig::full() };
    cfg.url = args.get("url")?;
    cfg.db_pid = args.get("db-pid")?;
    cfg.objects = args.get_or("objects", cfg.objects)?;
    cfg.nodes = args.get_or("nodes", cfg.nodes)?;
    if let Some(s) = args.list::<usize>("shards")? {
        cfg.shards = s;
    }
    cfg.io = args.get_or("io", cfg.io)?;
    cfg.client_io = args.get_or("client-io", cfg.client_io)?;
    cfg.open_io = args.get_or("open-io", cfg.open_io)?;
    cfg.threads = args.get_or("threads", cfg.threads)?;
    cfg.conns = args.get_or("conns", cfg.conns)?;
    cfg.depth = args.get_or("depth", cfg.depth)?;
    cfg.open_conns = args.get_or("open-conns", cfg.open_conns)?;
    cfg.size = args.get_or("size", cfg.size)?;
    if let Some(d) = args.get::<f64>("duration")? {
        cfg.duration = secs(d)?;
    }
    if let Some(w) = args.get::<f64>("warmup")? {
        cfg.warmup = secs(w)?;
    }
    cfg.reps = args.get_or("reps", cfg.reps)?;
    cfg.changes = args.get_or("changes", cfg.changes)?;
    cfg.poll_conns = args.get_or("poll-conns", cfg.poll_conns)?;
    if let Some(f) = args.list::<f64>("open-fractions")? {
        if f.iter().any(|f| !(*f > 0.0 && f.is_finite())) {
            return Err(anyhow!("--open-fractions must be positive"));
        }
        cfg.open_fractions = f;
    }
    if let Some(p) = args.list::<String>("phases")? {
        if let Some(bad) = p.iter().find(|p| !["closed", "open", "propagation"].contains(&p.as_str())) {
            return Err(anyhow!("--phases: unknown phase {bad:?}"));
        }
        cfg.open = p.iter().any(|p| p == "open");
        cfg.propagation = p.iter().any(|p| p == "propagation");
    }
    if let Some(s) = args.get::<f64>("settle")? {
        cfg.settle = secs(s)?;
    }
    if let Some(ms) = args.get::<u64>("change-poll-ms")? {
        cfg.change_poll = Some(std::time::Duration::from_millis(ms));
    }
    let json = args.flag("json");
    args.finish()?;
    if cfg.threads == 0 || cfg.conns == 0 || cfg.depth == 0 || cfg.open_conns == 0 {
        return Err(anyhow!("--threads, --conns, --depth and --open-conns must be at least 1"));
    }

    eprintln!("command: {}", tars_bench::cli::command_line());
    let outcome = run(&cfg, &mut |line| eprintln!("{line}"))?;
    if json {
        eprint!("\n{}", outcome.text(&cfg));
        println!("{}", outcome.to_json(&cfg));
    } else {
        print!("{}", outcome.text(&cfg));
    }
    Ok(())
}
