//! `tars-bench`: the TARS load generator (closed or open loop). See `tars_bench::load`.

use std::net::ToSocketAddrs;

use anyhow::{anyhow, bail, Result};
use tars_bench::cli::{secs, Args};
use tars_bench::load::{run, LoadConfig, Stop};
use tars_bench::proto::Proto;

const USAGE: &str = "\
usage: tars-bench --addr HOST:PORT [--servant NAME] [--func NAME] [--conns C] [--depth D]
                  [--size BYTES] [--duration SECS | --requests N] [--warmup SECS]
                  [--rate QPS] [--raw] [--version 1|3] [--io MODE] [--threads T] [--json]
                  [--quiet]
  --addr      server address
  --servant   servant (default TarsBench.EchoServer.EchoObj; TarsCpp StressServer:
              TestApp.StressServer.StressObj)
  --func      function `int f(string sIn, out string sOut)` (default echo; StressServer: testStr)
  --conns     connections (default 1)
  --depth     requests outstanding per connection, closed loop (default 1)
  --size      payload bytes (default 100)
  --duration  measured seconds after warm-up (default 5)
  --requests  measure this many replies instead of a duration
  --warmup    unmeasured seconds first (default 1)
  --rate      open loop: requests per second in total, spread evenly over the connections;
              latency counts from each request's intended send time
  --raw       raw length-prefixed frames, for `tars-echo-server --raw`
  --version   TARS iVersion, 1 (by tag) or 3 (TUP, by name) (default 1)
  --io        client IO driver, uring|epoll-et|epoll-lt (default epoll-lt; epoll timers have 1 ms
              granularity, so use uring for open-loop latencies below a millisecond)
  --threads   client shards (default 1)
  --json      print one JSON object on stdout instead of the text summary
  --quiet     no progress line on stderr";

fn main() {
    tars_bench::cli::main("tars-bench", main_inner);
}

fn main_inner() -> Result<()> {
    let mut args = Args::parse(std::env::args().skip(1), &["raw", "json", "quiet", "help"])?;
    if args.flag("help") {
        println!("{USAGE}");
        return Ok(());
    }
    let d = LoadConfig::default();
    let addr: String = args.get("addr")?.ok_or_else(|| anyhow!("--addr is required\n{USAGE}"))?;
    let addr = addr.to_socket_addrs()?.next().ok_or_else(|| anyhow!("{addr} has no address"))?;
    let raw = args.flag("raw");
    let version: i16 = args.get_or("version", 1)?;
    let duration: Option<f64> = args.get("duration")?;
    let requests: Option<u64> = args.get("requests")?;
    let stop = match (duration, requests) {
        (Some(_), Some(_)) => bail!("give --duration or --requests, not both"),
        (_, Some(n)) => Stop::Requests(n),
        (Some(s), None) => Stop::Duration(secs(s)?),
        (None, None) => d.stop,
    };
    let cfg = LoadConfig {
        addr,
        servant: args.get_or("servant", d.servant)?,
        func: args.get_or("func", d.func)?,
        proto: if raw { Proto::Raw } else { Proto::Tars(version) },
        conns: args.get_or("conns", d.conns)?,
        depth: args.get_or("depth", d.depth)?,
        size: args.get_or("size", d.size)?,
        stop,
        warmup: secs(args.get_or("warmup", d.warmup.as_secs_f64())?)?,
        rate: args.get("rate")?,
        io: args.get_or("io", d.io)?,
        threads: args.get_or("threads", d.threads)?,
        progress: !args.flag("quiet"),
        call: None,
    };
    let json = args.flag("json");
    args.finish()?;
    let report = run(&cfg, None)?;
    if json {
        println!("{}", report.to_json(&cfg));
    } else {
        print!("{}", report.text(&cfg));
    }
    Ok(())
}
