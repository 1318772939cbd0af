//! `tars-echo-server`: the TARS echo servant on our server (`--stats`: counting every call in
//! per-shard stat tables), or (`--raw`) the raw length-prefixed echo server on the same runtime. Prints `LISTENING <port>` on stdout when
//! ready, then `IO <driver actually used>`; runs until stdin reaches end of file (or SIGTERM), unless `--forever`.

use std::io::{Read, Write};

use anyhow::Result;
use tars_bench::cli::Args;
use tars_bench::echo::{start_tars, EchoOptions, RawServer};
use tars_core_net::rt::IoMode;

const USAGE: &str = "\
usage: tars-echo-server [--io uring|epoll-et|epoll-lt] [--shards N] [--host H] [--port P]
                        [--servant NAME] [--func NAME] [--stats] [--raw] [--forever]
  --io       IO driver (default uring; falls back to epoll-et where io_uring is unavailable)
  --shards   shard threads (default 1; 0 = one per core)
  --host     listen address (default 127.0.0.1)
  --port     listen port (default 0 = a free port, printed as `LISTENING <port>`)
  --servant  servant name (default TarsBench.EchoServer.EchoObj)
  --func     echo function `int f(string sIn, out string sOut)` (default echo)
  --stats    count every served call in per-shard stat tables, handed each second to a
             thread that merges them as an application's duty thread does (not sent anywhere;
             the totals go to stderr at exit)
  --raw      raw echo of length-prefixed frames (4-byte big-endian length counting itself)
  --forever  ignore stdin (by default the server stops when stdin closes)";

fn main() {
    tars_bench::cli::main("tars-echo-server", run);
}

fn run() -> Result<()> {
    let mut args = Args::parse(std::env::args().skip(1), &["raw", "stats", "forever", "help"])?;
    if args.flag("help") {
        println!("{USAGE}");
        return Ok(());
    }
    let d = EchoOptions::default();
    let opts = EchoOptions {
        io: args.get_or("io", IoMode::Uring)?,
        shards: args.get_or("shards", 1)?,
        host: args.get_or("host", d.host)?,
        port: args.get_or("port", 0)?,
        servant: args.get_or("servant", d.servant)?,
        func: args.get_or("func", d.func)?,
        stats: args.flag("stats"),
    };
    let raw = args.flag("raw");
    let forever = args.flag("forever");
    args.finish()?;

    if raw && opts.stats {
        anyhow::bail!("--stats is for the TARS server, not --raw");
    }
    if raw {
        let server = RawServer::start(&opts)?;
        announce(server.addr().port(), server.io(), &format!("raw echo, io {}, {} shard(s)", server.io(), opts.shards));
        if forever {
            loop {
                std::thread::park();
            }
        }
        wait_stdin_eof();
        server.stop()?;
    } else {
        let (handle, addr, io) = start_tars(&opts)?;
        announce(
            addr.port(),
            io,
            &format!(
                "TARS echo {}.{}, io {io}, {} shard(s){}",
                opts.servant,
                opts.func,
                opts.shards,
                if opts.stats { ", call statistics on" } else { "" }
            ),
        );
        if !forever {
            let stopper = handle.stopper();
            std::thread::spawn(move || {
                wait_stdin_eof();
                stopper.stop();
            });
        }
        if let Some((calls, dropped)) = handle.wait()? {
            eprintln!("tars-echo-server: call statistics counted {calls} call(s), {dropped} row(s) dropped");
        }
    }
    Ok(())
}

fn announce(port: u16, io: IoMode, what: &str) {
    println!("LISTENING {port}");
    println!("IO {io}");
    let _ = std::io::stdout().flush();
    eprintln!("tars-echo-server: {what} on port {port}, pid {}", std::process::id());
}

fn wait_stdin_eof() {
    let mut buf = [0u8; 256];
    let mut stdin = std::io::stdin();
    while let Ok(n) = stdin.read(&mut buf) {
        if n == 0 {
            break;
        }
    }
}
