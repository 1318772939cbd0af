//! `tars-bench-matrix`: raw echo vs the TARS echo server (optionally with call statistics) on
//! each IO driver, side by side, with server CPU per request. See `tars_bench::matrix`.

use std::path::PathBuf;

use anyhow::{anyhow, Result};
use tars_bench::cli::{secs, Args};
use tars_bench::load::parse_cell;
use tars_bench::matrix::{core_note, run_line, run_matrix, table, Kind, MatrixConfig};
use tars_core_net::rt::IoMode;

const USAGE: &str = "\
usage: tars-bench-matrix [--quick] [--server-bin PATH] [--shards 1,2] [--cells 1x1,16x1,256x1,1x16,16x4]
                         [--kinds raw-uring,tars-uring,stats-uring,...] [--size B]
                         [--duration S] [--warmup S] [--reps N] [--client-io MODE]
                         [--client-threads T] [--version 1|3] [--server-cpus LIST] [--json]
  --quick       smoke run: 1 shard, cells 1x1 and 16x1, 0.3 s after 0.1 s warm-up
  --server-bin  tars-echo-server to start (default: next to this binary)
  --kinds       servers: raw-<io>, tars-<io> or stats-<io> (TARS counting every call in its
                stat tables; the table then compares it with tars-<io>), io one of uring,
                epoll-et, epoll-lt (default: raw and tars on each io, interleaved within each cell)
  --client-io   client IO driver (default epoll-lt)
  --server-cpus pin each server with `taskset -c LIST` (pin the runner itself with taskset too)
  --json        print the runs as a JSON array instead of the markdown table";

fn main() {
    tars_bench::cli::main("tars-bench-matrix", main_inner);
}

fn main_inner() -> Result<()> {
    let mut args = Args::parse(std::env::args().skip(1), &["quick", "json", "help"])?;
    if args.flag("help") {
        println!("{USAGE}");
        return Ok(());
    }
    let server_bin = match args.get::<PathBuf>("server-bin")? {
        Some(p) => p,
        None => std::env::current_exe()?
            .parent()
            .ok_or_else(|| anyhow!("no directory for the current executable"))?
            .join("tars-echo-server"),
    };
    let mut cfg = if args.flag("quick") { MatrixConfig::quick(server_bin) } else { MatrixConfig::full(server_bin) };
    if let Some(v) = args.list("shards")? {
        cfg.shards = v;
    }
    if let Some(v) = args.list::<String>("cells")? {
        cfg.cells = v.iter().map(|c| parse_cell(c)).collect::<Result<_>>()?;
    }
    if let Some(v) = args.list::<Kind>("kinds")? {
        cfg.kinds = v;
    }
    cfg.size = args.get_or("size", cfg.size)?;
    if let Some(s) = args.get::<f64>("duration")? {
        cfg.duration = secs(s)?;
    }
    if let Some(s) = args.get::<f64>("warmup")? {
        cfg.warmup = secs(s)?;
    }
    cfg.reps = args.get_or("reps", cfg.reps)?;
    cfg.client_io = args.get_or::<IoMode>("client-io", cfg.client_io)?;
    cfg.client_threads = args.get_or("client-threads", cfg.client_threads)?;
    cfg.version = args.get_or("version", cfg.version)?;
    cfg.server_cpus = args.get("server-cpus")?;
    let json = args.flag("json");
    args.finish()?;

    eprintln!("{}", core_note(&cfg));
    let results = run_matrix(&cfg, &mut |r| eprintln!("{}", run_line(r)))?;
    if json {
        let v: Vec<_> = results.iter().map(|r| r.to_json()).collect();
        println!("{}", serde_json::Value::Array(v));
    } else {
        println!("{}\n", core_note(&cfg));
        print!("{}", table(&cfg, &results));
    }
    Ok(())
}
