//! `tars`: run the framework on one machine, or manage its databases.
//!
//! ```text
//! tars up [--data-dir=DIR] [--host=ADDR] [--admin-port=PORT] [--io=MODE] [--shards=N]
//!         [--query-port=PORT] [--registry-port=PORT] [--container-port=PORT] [--prometheus-sd=ADDR]
//!         [--log-port=PORT] [--notify-port=PORT] [--querystat-port=PORT] [--queryproperty-port=PORT]
//!         [--querystat-json-port=PORT] [--queryproperty-json-port=PORT] [--gateway-port=PORT]
//!         [--no-gateway] [--mysql=URL]
//! tars serve --config=FILE
//! tars migrate --db-tars=URL [--stat=URL] [--property=URL]
//! tars schema [--dialect=mysql|sqlite]
//! ```

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context};
use tars::{UpOptions, DEFAULT_NODE_PORTS};
use tars_core_net::rt::IoMode;
use tars_sql::schema::{db_tars, monitor};
use tars_sql::{Dialect, Store};

const USAGE: &str = "usage:
  tars up [--data-dir=DIR] [--host=ADDR] [--admin-port=PORT] [--io=uring|epoll-et|epoll-lt] [--shards=N]
          [--query-port=PORT] [--registry-port=PORT] [--container-port=PORT] [--prometheus-sd=HOST:PORT]
          [--stat-port=PORT] [--property-port=PORT] [--stat-metrics=HOST:PORT] [--property-metrics=HOST:PORT]
          [--config-port=PORT] [--adminreg-port=PORT] [--node-port=PORT] [--node-server-port=PORT] [--no-node]
          [--log-port=PORT] [--notify-port=PORT] [--querystat-port=PORT] [--queryproperty-port=PORT]
          [--querystat-json-port=PORT] [--queryproperty-json-port=PORT] [--gateway-port=PORT] [--no-gateway]
          [--mysql=mysql://USER:PASS@HOST:PORT]
      run the framework in one process on the embedded databases in DIR (default ./tars-data),
      or with --mysql on that server's db_tars, tars_stat and tars_property (created when
      missing; TarsWeb shares db_tars):
      the registry (QueryObj 17890, RegistryObj 17891, container servant 17892), tarsstat
      (StatObj 18293), tarsproperty (PropertyObj 18493), tarsconfig (ConfigObj 18193),
      tarsAdminRegistry (AdminRegObj 12000), tarslog (LogObj 18993, files in DIR/remote_app_log),
      tarsnotify (NotifyObj 18593), tarsquerystat (QueryObj 18393), tarsqueryproperty (QueryObj
      18693), this host's tarsnode (NodeObj 19385, ServerObj 19386), AdminObj 17897, and the HTTP
      JSON gateway (POST /json/App.Server.Obj/func on 8200); either --query*-json-port serves both query
      services' legacy JSON protocol (NoTarsObj, for TarsWeb 1.x; 0 picks a port)
  tars serve --config=FILE
      the same services as an upstream-style server: <tars><application><server> plus the <db>,
      <statdb><db1> and <propertydb><db1> sections of upstream's tars.framework-db template;
      each service runs when an adapter names its servant
  tars migrate --db-tars=URL [--stat=URL] [--property=URL]
      bring MySQL (mysql://user:pass@host:port/db) or embedded (sqlite:PATH) databases up to date
  tars schema [--dialect=mysql|sqlite]
      print the DDL of every framework database";

fn flags(args: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let Some(flag) = a.strip_prefix("--") else { bail!("unexpected argument {a:?}\n{USAGE}") };
        match flag.split_once('=') {
            Some((k, v)) => out.push((k.to_owned(), v.to_owned())),
            // The one flag without a value.
            None if flag == "no-node" || flag == "no-gateway" => out.push((flag.to_owned(), "yes".to_owned())),
            None => {
                let v = it.next().with_context(|| format!("--{flag} needs a value"))?;
                out.push((flag.to_owned(), v.clone()));
            }
        }
    }
    Ok(out)
}

fn up(args: &[String]) -> anyhow::Result<()> {
    let mut opts = UpOptions::standard(PathBuf::from("tars-data"));
    let mut mysql = None;
    for (k, v) in flags(args)? {
        match k.as_str() {
            "data-dir" => opts.data_dir = PathBuf::from(v),
            "host" => opts.host = v,
            "admin-port" => opts.admin_port = v.parse().context("--admin-port")?,
            "io" => opts.io = Some(v.parse::<IoMode>()?),
            "shards" => opts.shards = Some(v.parse().context("--shards")?),
            "query-port" => opts.registry_ports[0] = v.parse().context("--query-port")?,
            "registry-port" => opts.registry_ports[1] = v.parse().context("--registry-port")?,
            "container-port" => opts.registry_ports[2] = v.parse().context("--container-port")?,
            "prometheus-sd" => opts.prometheus_sd = Some(v),
            "stat-port" => opts.monitor_ports[0] = v.parse().context("--stat-port")?,
            "property-port" => opts.monitor_ports[1] = v.parse().context("--property-port")?,
            "stat-metrics" => opts.metrics[0] = Some(v),
            "property-metrics" => opts.metrics[1] = Some(v),
            "config-port" => opts.config_port = v.parse().context("--config-port")?,
            "adminreg-port" => opts.adminreg_port = v.parse().context("--adminreg-port")?,
            "node-port" => opts.node_ports.get_or_insert(DEFAULT_NODE_PORTS)[0] = v.parse().context("--node-port")?,
            "node-server-port" => {
                opts.node_ports.get_or_insert(DEFAULT_NODE_PORTS)[1] = v.parse().context("--node-server-port")?;
            }
            "no-node" => opts.node_ports = None,
            "log-port" => opts.log_port = v.parse().context("--log-port")?,
            "notify-port" => opts.notify_port = v.parse().context("--notify-port")?,
            "querystat-port" => opts.query_ports[0] = v.parse().context("--querystat-port")?,
            "queryproperty-port" => opts.query_ports[1] = v.parse().context("--queryproperty-port")?,
            "querystat-json-port" => {
                opts.legacy_query_ports.get_or_insert([0, 0])[0] = v.parse().context("--querystat-json-port")?;
            }
            "queryproperty-json-port" => {
                opts.legacy_query_ports.get_or_insert([0, 0])[1] = v.parse().context("--queryproperty-json-port")?;
            }
            "gateway-port" => opts.gateway_port = Some(v.parse().context("--gateway-port")?),
            "no-gateway" => opts.gateway_port = None,
            "mysql" => mysql = Some(v),
            _ => bail!("unknown flag --{k}\n{USAGE}"),
        }
    }
    let running = match mysql {
        None => tars::up(&opts)?,
        Some(url) => {
            let stores = tars::Stores::on_server(&url)?;
            let migrations = stores.migrate()?;
            tars::serve(&opts, stores, migrations)?
        }
    };
    report(running, &format!("tars up: data in {}", opts.data_dir.display()))
}

fn serve(args: &[String]) -> anyhow::Result<()> {
    let mut config = None;
    for (k, v) in flags(args)? {
        match k.as_str() {
            "config" => config = Some(PathBuf::from(v)),
            _ => bail!("unknown flag --{k}\n{USAGE}"),
        }
    }
    let config = config.with_context(|| format!("--config=FILE is required\n{USAGE}"))?;
    let running = tars::serve_config(&config)?;
    report(running, &format!("tars serve: config {}", config.display()))
}

/// Prints where everything is, then serves until a signal or AdminObj.shutdown.
fn report(running: tars::Running, title: &str) -> anyhow::Result<()> {
    running.server().stop_on_signals()?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{title}")?;
    for ((name, store), report) in running.stores.named().iter().zip(&running.migrations) {
        writeln!(out, "  {name:<14} {} (schema version {})", store.url(), report.version)?;
    }
    for (object, endpoint) in &running.endpoints {
        writeln!(out, "  {object:<30} {endpoint}")?;
    }
    if let Some(addr) = running.registry().and_then(|r| r.prometheus_sd) {
        writeln!(out, "  {:<30} http://{addr}/prometheus/sd", "prometheus http_sd")?;
    }
    let metrics = [
        ("stat metrics", running.stat().and_then(|s| s.metrics_addr())),
        ("property metrics", running.property().and_then(|s| s.metrics_addr())),
    ];
    if let Some(addr) = running.gateway() {
        writeln!(out, "  {:<30} http://{addr}{}App.Server.Obj/func", "json gateway", tars_gateway::JSON_PREFIX)?;
    }
    for (name, addr) in metrics {
        if let Some(addr) = addr {
            writeln!(out, "  {name:<30} http://{addr}/metrics")?;
        }
    }
    writeln!(out, "READY")?;
    out.flush()?;
    drop(out);
    running.wait()?;
    Ok(())
}

fn migrate(args: &[String]) -> anyhow::Result<()> {
    let (mut db, mut stat, mut property) = (None, None, None);
    for (k, v) in flags(args)? {
        match k.as_str() {
            "db-tars" => db = Some(v),
            "stat" => stat = Some(v),
            "property" => property = Some(v),
            _ => bail!("unknown flag --{k}\n{USAGE}"),
        }
    }
    if db.is_none() && stat.is_none() && property.is_none() {
        bail!("nothing to migrate\n{USAGE}");
    }
    let jobs = [(db, db_tars::schema()), (stat, monitor::stat_schema()), (property, monitor::property_schema())];
    for (url, set) in jobs {
        let Some(url) = url else { continue };
        let store = Store::open(&url)?;
        let r = store.migrate(set)?;
        println!("{} at {}: version {} (applied {:?})", r.database, store.url(), r.version, r.applied);
    }
    Ok(())
}

fn schema(args: &[String]) -> anyhow::Result<()> {
    let mut dialect = Dialect::Mysql;
    for (k, v) in flags(args)? {
        match (k.as_str(), v.as_str()) {
            ("dialect", "mysql") => dialect = Dialect::Mysql,
            ("dialect", "sqlite") => dialect = Dialect::Sqlite,
            _ => bail!("unknown flag --{k}={v}\n{USAGE}"),
        }
    }
    for set in [db_tars::schema(), monitor::stat_schema(), monitor::property_schema()] {
        println!("{}", set.render(dialect)?);
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    // The framework host logs like every server: INFO unless RUST_LOG says otherwise, and
    // `tars.setloglevel` on its AdminObj changes the level.
    tars_core_net::app::logging::init(&tars_core_net::server::adapter::ServerConfig::new("tars", "tarsframework"));
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("up") => up(&args[1..]),
        Some("serve") => serve(&args[1..]),
        Some("migrate") => migrate(&args[1..]),
        Some("schema") => schema(&args[1..]),
        Some("help" | "--help" | "-h") | None => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => bail!("unknown command {other:?}\n{USAGE}"),
    }
}
