//! `tars-bench-store`: rows/s into an hourly stat table by write method (multi-row INSERT at
//! several rows per statement, LOAD DATA LOCAL INFILE, the embedded SQLite backend), methods
//! interleaved per repetition. See `tars_bench::store`.

use anyhow::{anyhow, Context as _, Result};
use tars_bench::cli::{secs, Args};
use tars_bench::store::{
    machine_info, method_note, mysql_info, run_all, set_innodb, sqlite_info, summarize, table, BenchDb, Method,
    StoreConfig, Targets,
};
use tars_sql::{Dialect, Store};
use tars_testkit::mysql::PrivateMariaDb;
use tars_testkit::process::TempDir;

const USAGE: &str = "\
usage: tars-bench-store [--url mysql://USER:PASS@HOST:PORT/DB] [--rows N] [--reps R]
                        [--methods mysql-insert-1,...,mysql-load,sqlite-insert-1000]
                        [--innodb-pool-mb M] [--innodb-log-mb M] [--settle S] [--quick] [--json]
  --url      use this MySQL/MariaDB server (a database bench_store_<pid> is created on it for
             the tables and dropped at the end); default: start a private MariaDB
             (scripts/mariadb.sh) for the run
  --rows     rows per measurement (default 50000; a tenth of it at 1 row per statement)
  --reps     repetitions, methods interleaved within each (default 3)
  --methods  default: mysql-insert-1,10,100,1000,5000, mysql-load, sqlite-insert-100,1000
  --innodb-pool-mb, --innodb-log-mb
             resize InnoDB's buffer pool and redo log first (SET GLOBAL; 0 = leave alone).
             Default for the private MariaDB: 128 and 96, MariaDB's stock defaults (the test
             instance starts with 64 and 48, too small for a 50k-row hourly table); default
             with --url: leave the server alone
  --settle   after each MySQL measurement wait at most S seconds for InnoDB's dirty pages
             to be flushed (default 5)
  --quick    smoke run: 300 rows (30 at 1 row per statement), 1 repetition, no settling
  --json     one JSON object per method on stdout (the header goes to stderr)";

fn main() {
    tars_bench::cli::main("tars-bench-store", main_inner);
}

fn main_inner() -> Result<()> {
    let mut args = Args::parse(std::env::args().skip(1), &["quick", "json", "help"])?;
    if args.flag("help") {
        println!("{USAGE}");
        return Ok(());
    }
    let mut cfg = if args.flag("quick") { StoreConfig::quick() } else { StoreConfig::full() };
    cfg.rows = args.get_or("rows", cfg.rows)?;
    cfg.reps = args.get_or("reps", cfg.reps)?;
    if let Some(m) = args.list::<Method>("methods")? {
        cfg.methods = m;
    }
    if let Some(s) = args.get::<f64>("settle")? {
        cfg.settle = secs(s)?;
    }
    let url: Option<String> = args.get("url")?;
    let (default_pool, default_log) = if url.is_some() { (0, 0) } else { (128, 96) };
    let pool_mib: u64 = args.get_or("innodb-pool-mb", default_pool)?;
    let log_mib: u64 = args.get_or("innodb-log-mb", default_log)?;
    let json = args.flag("json");
    args.finish()?;
    if cfg.rows == 0 || cfg.reps == 0 || cfg.methods.is_empty() {
        return Err(anyhow!("--rows, --reps and --methods must not be zero or empty"));
    }

    let needs_mysql = cfg.methods.iter().any(|m| m.dialect() == Dialect::Mysql);
    let needs_sqlite = cfg.methods.iter().any(|m| m.dialect() == Dialect::Sqlite);

    // Dropped in reverse order: the benchmark database before the private server.
    let mut private = None;
    let server_url = match url {
        Some(u) => Some(u),
        None if needs_mysql => {
            eprintln!("starting a private MariaDB (scripts/mariadb.sh)…");
            let db = PrivateMariaDb::start().context("starting a private MariaDB")?;
            let u = db.url().to_owned();
            private = Some(db);
            Some(u)
        }
        None => None,
    };
    let bench_db = match (&server_url, needs_mysql) {
        (Some(u), true) => Some(BenchDb::create(u)?),
        _ => None,
    };
    let mysql = match &bench_db {
        Some(db) => Some(Store::open(db.url()).context("opening the benchmark database")?),
        None => None,
    };
    let sqlite_dir =
        if needs_sqlite { Some(TempDir::new("bench-store").context("creating a temp dir")?) } else { None };

    if let Some(store) = &mysql {
        set_innodb(store, pool_mib, log_mib)?;
    }

    let mut info = vec![format!("machine: {}", machine_info())];
    if let Some(store) = &mysql {
        let server = if private.is_some() { "private instance (scripts/mariadb.sh)" } else { "server of --url" };
        info.push(format!("mysql: {}, {server}", mysql_info(store)?));
    }
    if let Some(dir) = &sqlite_dir {
        info.push(format!("sqlite: {}", sqlite_info(&dir.0)?));
    }
    info.push(format!("method: {}", method_note(&cfg)));
    info.push(format!("command: {}", tars_bench::cli::command_line()));
    for line in &info {
        eprintln!("{line}");
    }

    let mysql_pid = match &private {
        Some(db) => Some(db.pid().context("the private MariaDB's pid")?),
        None => None,
    };
    let targets = Targets { mysql, mysql_pid, sqlite_dir: sqlite_dir.as_ref().map(|d| d.0.clone()) };
    let reps = cfg.reps;
    let runs = run_all(&cfg, &targets, &mut |r| eprintln!("{}", r.line(reps)))?;
    let summaries = summarize(&cfg, &runs);
    if json {
        for s in &summaries {
            println!("{}", s.to_json());
        }
    } else {
        for line in &info {
            println!("{line}");
        }
        println!();
        print!("{}", table(&summaries));
    }
    drop(targets);
    drop(bench_db);
    drop(private);
    Ok(())
}
