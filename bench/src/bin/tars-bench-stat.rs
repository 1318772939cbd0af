//! `tars-bench-stat`: tarsstat's ingest rate (entries/s merged, 1 and 2 shards, over TCP) and
//! its writer's flush rate (rows/s into a MariaDB hourly table) next to the raw INSERT loop and
//! LOAD DATA on the same server. See `tars_bench::stat`.

use anyhow::{anyhow, Context as _, Result};
use tars_bench::cli::{secs, Args};
use tars_bench::stat::{
    decode_all, decode_table, flush_all, flush_table, ingest_all, ingest_table, paired_ratios, spool_cost, thousands,
    workload_note, writer_ratio, FlushConfig, FlushMethod, FlushTarget, IngestConfig, SendMode,
};
use tars_bench::store::{machine_info, mysql_info, set_innodb, BenchDb};
use tars_core_net::rt::IoMode;
use tars_sql::schema::monitor::stat_schema;
use tars_sql::Store;
use tars_testkit::mysql::PrivateMariaDb;
use tars_testkit::process::TempDir;

const USAGE: &str = "\
usage: tars-bench-stat [--part decode|ingest|flush|all] [--quick] [--json]
         decode: [--keys N] [--per-request N] [--decode-rounds R]
         ingest: [--io uring,epoll-et,epoll-lt] [--shards 1,2] [--modes oneway,twoway]
                 [--keys N] [--per-request N] [--conns N] [--depth N]
                 [--warmup S] [--window S] [--reps R]
         flush:  [--url mysql://USER:PASS@HOST:PORT/DB] [--rows N] [--flush-reps R]
                 [--methods writer,mysql-insert-1000,mysql-upsert-1000,mysql-insert-100,mysql-load]
                 [--innodb-pool-mb M] [--innodb-log-mb M] [--settle S]
  decode: the generated decoder against tars_stat::mic, alone and with normalize + merge
          into a shard map holding every key, on this thread without the network; CPU time
          of the thread per round (all requests), median of 30 rounds
  ingest: tarsstat in this process (SQLite target, system clock), clients over TCP to
          127.0.0.1 sending pre-encoded reportMicMsg; entries/s from the server's own counter.
          Defaults: all three drivers, 1 and 2 shards, oneway and twoway, 10000 keys, 100
          entries per request, 8 connections, depth 8, 1 s warm-up, 5 s window, 3 reps
  flush:  100000 rows per measurement into a fresh hourly table, 5 reps, the stat writer and
          the raw methods interleaved (mysql-upsert-N: the INSERT loop with the writer's upsert
          tail, to split the writer's cost; not a ceiling); default: a private MariaDB (scripts/mariadb.sh)
          started for the run with a 512 MiB buffer pool and 512 MiB redo log (SET GLOBAL);
          with --url, a database bench_store_<pid> on that server, settings left alone
  --quick  smoke run of both parts (seconds)";

fn main() {
    tars_bench::cli::main("tars-bench-stat", main_inner);
}

fn main_inner() -> Result<()> {
    let mut args = Args::parse(std::env::args().skip(1), &["quick", "json", "help"])?;
    if args.flag("help") {
        println!("{USAGE}");
        return Ok(());
    }
    let quick = args.flag("quick");
    let json = args.flag("json");
    let part: String = args.get_or("part", "all".to_owned())?;
    let (do_decode, do_ingest, do_flush) = match part.as_str() {
        "decode" => (true, false, false),
        "ingest" => (false, true, false),
        "flush" => (false, false, true),
        "all" => (true, true, true),
        other => return Err(anyhow!("--part {other:?}: decode, ingest, flush or all")),
    };
    let decode_rounds: usize = args.get_or("decode-rounds", if quick { 3 } else { 30 })?;

    let mut ing = if quick { IngestConfig::quick() } else { IngestConfig::full() };
    if let Some(v) = args.list::<IoMode>("io")? {
        ing.ios = v;
    }
    if let Some(v) = args.list::<usize>("shards")? {
        ing.shards = v;
    }
    if let Some(v) = args.list::<SendMode>("modes")? {
        ing.modes = v;
    }
    ing.keys = args.get_or("keys", ing.keys)?;
    ing.per_request = args.get_or("per-request", ing.per_request)?;
    ing.conns = args.get_or("conns", ing.conns)?;
    ing.depth = args.get_or("depth", ing.depth)?;
    if let Some(s) = args.get::<f64>("warmup")? {
        ing.warmup = secs(s)?;
    }
    if let Some(s) = args.get::<f64>("window")? {
        ing.window = secs(s)?;
    }
    ing.reps = args.get_or("reps", ing.reps)?;

    let mut fl = if quick { FlushConfig::quick() } else { FlushConfig::full() };
    fl.rows = args.get_or("rows", fl.rows)?;
    fl.reps = args.get_or("flush-reps", fl.reps)?;
    if let Some(m) = args.list::<FlushMethod>("methods")? {
        fl.methods = m;
    }
    if let Some(s) = args.get::<f64>("settle")? {
        fl.settle = secs(s)?;
    }
    let url: Option<String> = args.get("url")?;
    let (default_pool, default_log) = if url.is_some() { (0, 0) } else { (512, 512) };
    let pool_mib: u64 = args.get_or("innodb-pool-mb", default_pool)?;
    let log_mib: u64 = args.get_or("innodb-log-mb", default_log)?;
    args.finish()?;
    if ing.keys == 0 || ing.per_request == 0 || ing.conns == 0 || ing.depth == 0 || fl.rows == 0 {
        return Err(anyhow!("--keys, --per-request, --conns, --depth and --rows must be at least 1"));
    }

    let mut info = vec![
        format!("machine: {}", machine_info()),
        format!("date: {}", tars_monitor::clock::Clock::system().today()),
        format!("load average at start: {}", std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim()),
        format!("command: {}", tars_bench::cli::command_line()),
    ];
    if do_ingest {
        info.push(format!("ingest workload: {}", workload_note(&ing)));
    }
    for line in &info {
        eprintln!("{line}");
    }

    let mut out = Vec::new();
    if do_decode {
        eprintln!("decode: {decode_rounds} rounds of {} keys in requests of {}…", ing.keys, ing.per_request);
        let runs = decode_all(ing.keys, ing.per_request, decode_rounds)?;
        if json {
            for r in &runs {
                println!("{}", r.to_json());
            }
        }
        out.push(format!(
            "## Decode and merge on one thread, no network (CPU time, {decode_rounds} rounds of {} entries)\n\n{}",
            ing.keys,
            decode_table(&runs)
        ));
    }
    if do_ingest {
        let runs = ingest_all(&ing, &mut |r| eprintln!("{}", r.line()))?;
        if json {
            for r in &runs {
                println!("{}", r.to_json());
            }
        }
        out.push(format!(
            "## Ingest: entries/s merged by tarsstat (median of {}; client on the same 2 vCPUs)\n\n{}",
            ing.reps,
            ingest_table(&runs)
        ));
    }

    if do_flush {
        // Dropped in reverse order: the benchmark database before the private server.
        let mut private = None;
        let server_url = match url {
            Some(u) => u,
            None => {
                eprintln!("starting a private MariaDB (scripts/mariadb.sh)…");
                let db = PrivateMariaDb::start().context("starting a private MariaDB")?;
                let u = db.url().to_owned();
                private = Some(db);
                u
            }
        };
        let bench_db = BenchDb::create(&server_url)?;
        let store = Store::open(bench_db.url()).context("opening the benchmark database")?;
        store.migrate(stat_schema()).context("migrating tars_stat tables into the benchmark database")?;
        set_innodb(&store, pool_mib, log_mib)?;
        let mysql = format!("mysql: {}", mysql_info(&store)?);
        eprintln!("{mysql}");
        info.push(mysql);
        let db_pid = match &private {
            Some(db) => Some(db.pid().context("the private MariaDB's pid")?),
            None => None,
        };
        let spools = TempDir::new("bench-stat-spool").context("temp dir")?;
        let target = FlushTarget { url: bench_db.url().to_owned(), store, db_pid, spool_root: spools.0.clone() };
        let runs = flush_all(&fl, &target, &mut |r| eprintln!("{}", r.line()))?;
        let rows = tars_bench::store::stat_rows(fl.rows, 0x7A25_2026);
        let (encode, append) = spool_cost(&rows, &spools.0)?;
        if json {
            for r in &runs {
                println!("{}", r.to_json());
            }
        }
        let mut text = format!("## Flush: rows/s into a MariaDB hourly stat table\n\n{}", flush_table(&fl, &runs));
        if let Some(r) = writer_ratio(&fl, &runs) {
            text.push_str(&format!("\nwriter / best raw (medians): {r:.2}\n"));
        }
        let paired = paired_ratios(&runs);
        if let (Some(lo), Some(hi)) = (paired.first(), paired.last()) {
            text.push_str(&format!(
                "writer / best raw of the same repetition: median {:.2} ({lo:.2}–{hi:.2}; {})\n",
                paired[paired.len() / 2],
                paired.iter().map(|r| format!("{r:.2}")).collect::<Vec<_>>().join(", ")
            ));
        }
        text.push_str(&format!(
            "spool share, measured on its own for the same {} rows: encode {:.0} ms, append + fsync {:.0} ms \
             ({} rows/s if that were all)\n",
            fl.rows,
            encode.as_secs_f64() * 1e3,
            append.as_secs_f64() * 1e3,
            thousands(fl.rows as f64 / (encode + append).as_secs_f64().max(1e-9))
        ));
        out.push(text);
        drop(target);
        drop(bench_db);
        drop(private);
    }
    if !json {
        for line in &info {
            println!("{line}");
        }
        for o in &out {
            println!("\n{o}");
        }
    }
    Ok(())
}
