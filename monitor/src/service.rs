//! What a monitor service (tarsstat, tarsproperty) is around its servant: the config keys
//! both read, one writer per database, the collector, the status command and the
//! Prometheus counters, and starting it all as a server.
//!
//! A service supplies its [`TableSpec`] (hourly table shape), its [`Keys`] (where its config
//! lives), its [`Aggregate`] and a function that makes its servant on each shard from that
//! shard's [`ShardAgg`]. Everything else is here, so the two services differ only in what
//! they ingest.
//!
//! Config keys read (upstream's): `<db_root>/<dbN>` (`dbhost`, `dbport`, `dbuser`, `dbpass`,
//! `dbname`, `tbname`, `weighted`), `/tars<enWeighted>` (property spells it
//! `/tars/<enWeighted>`; both are read), `/tars/db_reserve<reserve_key>` (days, default 31,
//! at least 2). Ours: `/tars/spool<dir>` (default `<datapath>/spool`; each service keeps its
//! files in a subdirectory named after it), `/tars/spool<maxMB>`
//! (default 1024 per database; also the bound of each database's dead-letter file),
//! `/tars/spool<deadLetterAfter>` (default 5: how often the database may refuse the same
//! batch before it goes to the dead-letter file; 0 never moves it), `/tars/metrics<listen>`
//! (`host:port` of the Prometheus text endpoint `GET /metrics`; unset, no endpoint) and
//! `/tars/aggregate<maxMB>` (default 256: the memory budget of the aggregation, all shards
//! and unflushed windows together; a new key that does not fit is dropped and counted, as
//! upstream's full hash map refuses them, while keys already held keep merging).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::rc::{Rc, Weak};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tars_core_net::app::{AppError, Application, BoxError, Service, ServiceContext};
use tars_core_net::rt;
use tars_core_net::server::{ServerBuilder, ServerError, ServerHandle};
use tars_proto::config::Config;
use tars_sql::schema::Table;
use tars_sql::Dialect;

use crate::clock::Clock;
use crate::collect::{Aggregate, CollectConfig, CollectStats, Collector, Counter, ShardAgg, ShardFactory};
use crate::targets::{self, Target};
use crate::writer::{Writer, WriterConfig, WriterError};

/// Where a service's config lives.
#[derive(Debug, Clone, Copy)]
pub struct Keys {
    /// `/tars/statdb` or `/tars/propertydb`.
    pub db_root: &'static str,
    /// The table prefix when a database section has no `tbname`.
    pub default_prefix: &'static str,
    /// The key under `/tars/db_reserve` (`stat_reserve_time`, `property_reserve_time`).
    pub reserve_key: &'static str,
}

/// The hourly tables a service writes.
#[derive(Debug, Clone, Copy)]
pub struct TableSpec {
    /// The service's short name: metric prefix `tars_<name>_`, log fields.
    pub name: &'static str,
    /// Columns in row order.
    pub columns: &'static [&'static str],
    /// The table definition for a name.
    pub make_table: fn(String) -> Table,
    /// The database's fixed tables (see [`WriterConfig::schema`]).
    pub schema: fn() -> tars_sql::migrate::SchemaSet,
    /// What follows each INSERT's values (see [`WriterConfig::upsert_tail`]).
    pub upsert_tail: fn(Dialect) -> String,
}

/// The aggregation's default memory budget, MiB: about 350,000 stat keys (an entry is
/// charged about 740 bytes), several times what a large deployment reports in one window.
pub const DEFAULT_AGGREGATE_MB: u64 = 256;

/// Everything a monitor service needs besides the server config and its own rules.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// Where rows go.
    pub targets: Vec<Target>,
    /// `/tars<enWeighted>`.
    pub weighted: bool,
    /// The spool directory.
    pub spool_dir: PathBuf,
    /// The spool's limit for unwritten batches, per database.
    pub spool_max_bytes: u64,
    /// Refusals of one batch before it goes to the dead-letter file
    /// ([`WriterConfig::dead_letter_after`]).
    pub dead_letter_after: u32,
    /// Days of hourly tables kept.
    pub reserve_days: u32,
    /// This host's IP (`source_id`, `t_ecstatus.appname`).
    pub source_ip: String,
    /// `host:port` of the metrics endpoint.
    pub metrics_listen: Option<String>,
    /// The aggregation's memory budget in bytes ([`crate::collect::CollectStats::budget_bytes`]).
    pub aggregate_budget_bytes: u64,
    /// Time.
    pub clock: Clock,
}

/// A config value we cannot use.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A database section.
    #[error(transparent)]
    Target(#[from] targets::TargetError),
    /// Another key.
    #[error("{key} = {value:?}: {reason}")]
    Bad {
        /// The key.
        key: String,
        /// Its value.
        value: String,
        /// Why.
        reason: &'static str,
    },
    /// No database to write to.
    #[error("no database configured ({0}/<db1>)")]
    NoDatabase(&'static str),
}

impl ServiceConfig {
    /// Reads the keys; `data_path` is the server's `datapath`, `source_ip` its `localip`.
    /// `targets` replaces the database sections when given.
    pub fn from_config(
        config: &Config,
        keys: &Keys,
        data_path: &str,
        source_ip: &str,
        targets: Option<Vec<Target>>,
    ) -> Result<ServiceConfig, ConfigError> {
        let targets = match targets {
            Some(t) => t,
            None => targets::from_config(config, keys.db_root, keys.default_prefix)?,
        };
        if targets.is_empty() {
            return Err(ConfigError::NoDatabase(keys.db_root));
        }
        let value = |key: &str| config.get(key).map(str::trim).filter(|v| !v.is_empty());
        let weighted = value("/tars<enWeighted>")
            .or_else(|| value("/tars/<enWeighted>"))
            .is_some_and(|v| matches!(v, "1" | "Y" | "y" | "true"));
        let number = |key: &str, default: u64| -> Result<u64, ConfigError> {
            match value(key) {
                None => Ok(default),
                Some(v) => v.parse().map_err(|_| ConfigError::Bad {
                    key: key.into(),
                    value: v.into(),
                    reason: "not a whole number",
                }),
            }
        };
        let spool_dir = value("/tars/spool<dir>").map_or_else(|| PathBuf::from(data_path).join("spool"), PathBuf::from);
        let reserve_key = format!("/tars/db_reserve<{}>", keys.reserve_key);
        let reserve_days = u32::try_from(number(&reserve_key, 31)?).unwrap_or(u32::MAX);
        Ok(ServiceConfig {
            targets,
            weighted,
            spool_dir,
            spool_max_bytes: number("/tars/spool<maxMB>", 1024)?.saturating_mul(1 << 20),
            dead_letter_after: u32::try_from(number(
                "/tars/spool<deadLetterAfter>",
                u64::from(crate::writer::DEFAULT_DEAD_LETTER_AFTER),
            )?)
            .unwrap_or(u32::MAX),
            reserve_days: reserve_days.max(crate::tables::MIN_KEEP_DAYS),
            source_ip: source_ip.to_owned(),
            metrics_listen: value("/tars/metrics<listen>").map(str::to_owned),
            aggregate_budget_bytes: number("/tars/aggregate<maxMB>", DEFAULT_AGGREGATE_MB)?
                .max(1)
                .saturating_mul(1 << 20),
            clock: Clock::system(),
        })
    }
}

/// The service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A writer (spool or database handle).
    #[error(transparent)]
    Writer(#[from] WriterError),
    /// A thread or the metrics endpoint.
    #[error("{what}: {source}")]
    Io {
        /// What was being started.
        what: &'static str,
        /// Why it failed.
        source: std::io::Error,
    },
}

/// A service's background parts: writers, collector, metrics endpoint. Dropping it flushes
/// what the shards handed over and stops (what cannot be written stays in the spool).
pub struct MonitorService<A: Aggregate> {
    spec: TableSpec,
    // Dropped first: the collector hands its last batches to the writers.
    collector: Collector<A>,
    writers: Arc<Vec<Writer>>,
    metrics: Option<tars_core_net::http::HttpServer>,
}

impl<A: Aggregate> std::fmt::Debug for MonitorService<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MonitorService")
            .field("service", &self.spec.name)
            .field("writers", &self.writers.len())
            .finish()
    }
}

/// What the status command and the metrics endpoint read; shared with their threads.
struct Counters<A: Aggregate> {
    spec: TableSpec,
    stats: Arc<CollectStats>,
    agg: Arc<A>,
    writers: Arc<Vec<Writer>>,
}

impl<A: Aggregate> Clone for Counters<A> {
    fn clone(&self) -> Self {
        Counters { spec: self.spec, stats: self.stats.clone(), agg: self.agg.clone(), writers: self.writers.clone() }
    }
}

impl<A: Aggregate> MonitorService<A> {
    /// Starts one writer per database (each replays its spool first), the collector for
    /// `shards` IO shards, and the metrics endpoint when configured.
    pub fn start(config: &ServiceConfig, spec: TableSpec, agg: A, shards: usize) -> Result<Self, StartError> {
        let mut writers = Vec::new();
        for t in &config.targets {
            writers.push(Writer::start(WriterConfig {
                target: t.clone(),
                columns: spec.columns,
                make_table: spec.make_table,
                schema: spec.schema,
                upsert_tail: spec.upsert_tail,
                // A directory per service: stat and property in one process (`tars up`) may
                // name their databases alike.
                spool_dir: config.spool_dir.join(spec.name),
                spool_max_bytes: config.spool_max_bytes,
                rows_per_insert: 1000,
                checkint_minutes: 5,
                clock: config.clock.clone(),
                retry_max: Duration::from_secs(10),
                reserve_days: Some(config.reserve_days),
                dead_letter_after: config.dead_letter_after,
            })?);
        }
        let writers = Arc::new(writers);
        // Tells this run's batches from an earlier run's in the ledger.
        let generation = u64::try_from(
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis()),
        )
        .unwrap_or(0);
        let collector = Collector::start(
            agg,
            config.clock.clone(),
            shards,
            writers.clone(),
            config.targets.iter().map(|t| t.prefix.clone()).collect(),
            config.targets.iter().map(|t| t.weight).collect(),
            CollectConfig {
                source_ip: config.source_ip.clone(),
                generation,
                grace: Duration::from_secs(15),
                weighted: config.weighted,
                budget_bytes: config.aggregate_budget_bytes,
            },
        )
        .map_err(|source| StartError::Io { what: "starting the collector", source })?;
        let mut service = MonitorService { spec, collector, writers, metrics: None };
        if let Some(addr) = &config.metrics_listen {
            let counters = service.counters();
            let route: tars_core_net::http::Handler =
                Arc::new(move || tars_core_net::http::Response::prometheus(counters.prometheus()));
            let server =
                tars_core_net::http::serve(addr, &format!("tars-{}-metrics", spec.name), vec![(METRICS_PATH, route)])
                    .map_err(|source| StartError::Io { what: "starting the metrics endpoint", source })?;
            tracing::info!(addr = %server.addr(), path = METRICS_PATH, "metrics endpoint listening");
            service.metrics = Some(server);
        }
        Ok(service)
    }

    /// Makes each shard's aggregation; `None` once stopping.
    pub fn shard_agg(&self, shard: usize) -> Option<ShardAgg<A>> {
        self.collector.factory().map(|f| f.make(shard))
    }

    /// The service's aggregation.
    pub fn aggregate(&self) -> &Arc<A> {
        self.collector.aggregate()
    }

    fn counters(&self) -> Counters<A> {
        Counters {
            spec: self.spec,
            stats: self.collector.stats().clone(),
            agg: self.collector.aggregate().clone(),
            writers: self.writers.clone(),
        }
    }

    /// The counters as text (the status command).
    pub fn status(&self) -> String {
        self.counters().status()
    }

    /// The counters in the Prometheus text format.
    pub fn prometheus(&self) -> String {
        self.counters().prometheus()
    }

    /// Where the metrics endpoint listens.
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.metrics.as_ref().map(tars_core_net::http::HttpServer::addr)
    }

    /// Waits until every batch handed to the writers so far had a write attempt.
    pub fn flush_writers(&self, timeout: Duration) -> bool {
        self.writers.iter().all(|w| w.flush(timeout))
    }
}

/// Where the metrics endpoint answers.
pub const METRICS_PATH: &str = "/metrics";

impl<A: Aggregate> Counters<A> {
    fn status(&self) -> String {
        let c = &self.stats;
        let mut out = format!(
            "entries: {}\nwindows flushed: {}\nrows: {}\nlate entries: {}\ndropped entries: {}\naggregate bytes: {} of {}\n",
            c.entries.load(Ordering::Relaxed),
            c.windows.load(Ordering::Relaxed),
            c.rows.load(Ordering::Relaxed),
            c.late_entries.load(Ordering::Relaxed),
            c.dropped_entries.load(Ordering::Relaxed),
            c.held_bytes.load(Ordering::Relaxed),
            c.budget_bytes.load(Ordering::Relaxed)
        );
        for Counter { name, value, .. } in self.agg.counters() {
            let _ = writeln!(out, "{}: {value}", name.replace('_', " "));
        }
        for w in self.writers.iter() {
            let s = w.stats();
            let _ = writeln!(
                out,
                "{}: written {} batches / {} rows, duplicates {}, pending {}, spooled {}, dropped {} batches / {} rows, errors {}, tables dropped {}, loads {}, merged with upsert {}, dead-lettered {} batches / {} rows",
                w.name(),
                s.batches_written.load(Ordering::Relaxed),
                s.rows_written.load(Ordering::Relaxed),
                s.batches_duplicate.load(Ordering::Relaxed),
                s.batches_pending.load(Ordering::Relaxed),
                s.batches_spooled.load(Ordering::Relaxed),
                s.batches_dropped.load(Ordering::Relaxed),
                s.rows_dropped.load(Ordering::Relaxed),
                s.write_errors.load(Ordering::Relaxed),
                s.tables_dropped.load(Ordering::Relaxed),
                s.batches_loaded.load(Ordering::Relaxed),
                s.batches_upserted.load(Ordering::Relaxed),
                s.batches_dead_lettered.load(Ordering::Relaxed),
                s.rows_dead_lettered.load(Ordering::Relaxed),
            );
            let _ = writeln!(
                out,
                "{}: dead-letter file {} ({} bytes)",
                w.name(),
                w.dead_letter_path().display(),
                s.dead_letter_bytes.load(Ordering::Relaxed)
            );
            if s.batches_pending.load(Ordering::Relaxed) > 0 {
                let last = s.last_error.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
                if let Some(e) = last {
                    let _ = writeln!(out, "{}: last error: {e}", w.name());
                }
            }
        }
        out
    }

    fn prometheus(&self) -> String {
        let service = self.spec.name;
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, samples: &[(Option<&str>, u64)]| {
            let _ = writeln!(out, "# HELP tars_{service}_{name} {help}\n# TYPE tars_{service}_{name} {kind}");
            for (db, v) in samples {
                match db {
                    Some(db) => {
                        let _ = writeln!(out, "tars_{service}_{name}{{db=\"{}\"}} {v}", label_value(db));
                    }
                    None => {
                        let _ = writeln!(out, "tars_{service}_{name} {v}");
                    }
                }
            }
        };
        let c = &self.stats;
        let one = |v: &std::sync::atomic::AtomicU64| [(None, v.load(Ordering::Relaxed))];
        metric("ingested_entries_total", "counter", "Entries merged into a shard's window.", &one(&c.entries));
        metric("flushed_windows_total", "counter", "Windows handed to the writers.", &one(&c.windows));
        metric("flushed_rows_total", "counter", "Rows handed to the writers.", &one(&c.rows));
        metric(
            "late_entries_total",
            "counter",
            "Entries that reached the collector after their window was flushed.",
            &one(&c.late_entries),
        );
        metric(
            "dropped_entries_total",
            "counter",
            "New keys dropped because the aggregation's memory budget was used up.",
            &one(&c.dropped_entries),
        );
        metric("aggregate_bytes", "gauge", "Bytes the aggregation holds now.", &one(&c.held_bytes));
        metric("aggregate_budget_bytes", "gauge", "The aggregation's memory budget.", &one(&c.budget_bytes));
        for Counter { name, help, value } in self.agg.counters() {
            metric(&format!("{name}_total"), "counter", help, &[(None, value)]);
        }
        type Field = fn(&crate::writer::WriterStats) -> &std::sync::atomic::AtomicU64;
        let per_db: [(&str, &str, &str, Field); 14] = [
            ("written_batches_total", "counter", "Batches written to the database.", |s| &s.batches_written),
            ("written_rows_total", "counter", "Rows written to the database.", |s| &s.rows_written),
            ("duplicate_batches_total", "counter", "Replayed batches the ledger already had.", |s| {
                &s.batches_duplicate
            }),
            ("spooled_batches_total", "counter", "Batches appended to the spool.", |s| &s.batches_spooled),
            ("pending_batches", "gauge", "Batches in the spool waiting for the database.", |s| &s.batches_pending),
            (
                "dropped_batches_total",
                "counter",
                "Batches dropped: the spool was full or unwritable, a spooled batch did not read back, or the dead-letter file could not take one.",
                |s| &s.batches_dropped,
            ),
            ("dropped_rows_total", "counter", "Rows in dropped batches.", |s| &s.rows_dropped),
            ("write_errors_total", "counter", "Failed write attempts.", |s| &s.write_errors),
            ("retention_dropped_tables_total", "counter", "Hourly tables dropped by retention.", |s| &s.tables_dropped),
            ("loaded_batches_total", "counter", "Batches written with LOAD DATA LOCAL (MySQL).", |s| &s.batches_loaded),
            (
                "upserted_batches_total",
                "counter",
                "Loads rolled back and merged with INSERT ... ON DUPLICATE KEY UPDATE (a window split by a restart).",
                |s| &s.batches_upserted,
            ),
            (
                "dead_lettered_batches_total",
                "counter",
                "Batches the database refused again and again, moved to the dead-letter file.",
                |s| &s.batches_dead_lettered,
            ),
            ("dead_lettered_rows_total", "counter", "Rows in dead-lettered batches.", |s| &s.rows_dead_lettered),
            ("dead_letter_file_bytes", "gauge", "Size of the dead-letter file.", |s| &s.dead_letter_bytes),
        ];
        for (name, kind, help, field) in per_db {
            let samples: Vec<(Option<&str>, u64)> =
                self.writers.iter().map(|w| (Some(w.name()), field(w.stats()).load(Ordering::Relaxed))).collect();
            metric(name, kind, help, &samples);
        }
        let _ = writeln!(
            out,
            "# HELP tars_{service}_dead_letter_file_info Where each database's dead-lettered batches go.\n# TYPE tars_{service}_dead_letter_file_info gauge"
        );
        for w in self.writers.iter() {
            let _ = writeln!(
                out,
                "tars_{service}_dead_letter_file_info{{db=\"{}\",path=\"{}\"}} 1",
                label_value(w.name()),
                label_value(&w.dead_letter_path().display().to_string())
            );
        }
        out
    }
}

/// A label value with `\`, `"` and newlines escaped, as the text format requires.
fn label_value(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Starts a shard's window timer: once a second the shard hands over a window that ended,
/// so an idle shard still reports. Call on the shard; the timer ends when `agg` is dropped.
pub fn spawn_roll_timer<A: Aggregate>(agg: &Rc<ShardAgg<A>>) {
    let weak: Weak<ShardAgg<A>> = Rc::downgrade(agg);
    rt::spawn(async move {
        loop {
            rt::sleep(Duration::from_secs(1)).await;
            let Some(agg) = weak.upgrade() else { return };
            agg.roll();
        }
    })
    .detach();
}

/// Options that override the config file.
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    /// IO driver.
    pub io: Option<rt::IoMode>,
    /// Shard count.
    pub shards: Option<usize>,
    /// Databases (instead of the config's sections).
    pub targets: Option<Vec<Target>>,
    /// Time (tests).
    pub clock: Option<Clock>,
}

/// Why a service could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The config file.
    #[error("{0}")]
    ConfigFile(String),
    /// The service's keys.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The server.
    #[error(transparent)]
    Server(#[from] ServerError),
    /// The service.
    #[error(transparent)]
    Start(#[from] StartError),
    /// The command line.
    #[error("{0}")]
    Usage(String),
    /// Signal handlers or standard output.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// A running service: the server and what is behind it.
#[derive(Debug)]
pub struct Running<A: Aggregate> {
    running: tars_core_net::app::Running,
    _aggregate: std::marker::PhantomData<A>,
}

impl<A: Aggregate> Running<A> {
    /// The server.
    pub fn server(&self) -> &ServerHandle {
        self.running.server()
    }

    /// Writers and collector.
    pub fn service(&self) -> &MonitorService<A> {
        match self.running.service::<MonitorHost<A>>().and_then(|h| h.service.as_ref()) {
            Some(s) => s,
            None => unreachable!("a started monitor service has its writers"),
        }
    }

    /// Serves until the server stops, then hands the shards' windows to the writers and
    /// stops them (what they cannot write stays in the spool).
    pub fn wait(self) -> Result<(), AppError> {
        self.running.wait()
    }
}

/// What [`start`] needs to know about one service.
pub struct ServiceDef<A: Aggregate> {
    /// The servant name (`tars.tarsstat.StatObj`).
    pub servant: &'static str,
    /// The admin command printing the counters.
    pub status_command: &'static str,
    /// Config keys.
    pub keys: Keys,
    /// Hourly tables.
    pub spec: TableSpec,
    /// Makes the aggregation from the parsed service config.
    pub aggregate: Box<dyn FnOnce(&ServiceConfig) -> A>,
}

impl<A: Aggregate> std::fmt::Debug for ServiceDef<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceDef").field("servant", &self.servant).finish_non_exhaustive()
    }
}

/// Adds a service's servant to the builder: gets the whole config (for the service's own
/// ingest keys) and the factory of each shard's aggregation.
pub type MakeServant<A> = Box<dyn FnOnce(&Config, ServerBuilder, ShardFactory<A>) -> ServerBuilder>;

/// A monitor service (tarsstat, tarsproperty) as a hosted [`Service`]: the writers and the
/// collector start when it is configured (the servant needs them from the first request),
/// and stop after the server, so the shards' last windows are written or spooled.
pub struct MonitorHost<A: Aggregate> {
    name: &'static str,
    def: Option<(ServiceDef<A>, MakeServant<A>)>,
    targets: Option<Vec<Target>>,
    clock: Option<Clock>,
    config: Option<Config>,
    service: Option<MonitorService<A>>,
}

impl<A: Aggregate> std::fmt::Debug for MonitorHost<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MonitorHost").field("name", &self.name).field("service", &self.service).finish()
    }
}

impl<A: Aggregate> MonitorHost<A> {
    /// The service `def`, writing to `targets` instead of the config's databases and
    /// reading `clock` instead of the system clock when given.
    pub fn new(
        name: &'static str,
        def: ServiceDef<A>,
        make: MakeServant<A>,
        targets: Option<Vec<Target>>,
        clock: Option<Clock>,
    ) -> MonitorHost<A> {
        MonitorHost { name, def: Some((def, make)), targets, clock, config: None, service: None }
    }

    /// Reads the service's own keys from `config` instead of the application's (a host
    /// running several services gives each its own `/tars/metrics<listen>`).
    pub fn with_config(mut self, config: Config) -> Self {
        self.config = Some(config);
        self
    }

    /// Writers and collector, once configured.
    pub fn service(&self) -> Option<&MonitorService<A>> {
        self.service.as_ref()
    }
}

impl<A: Aggregate> Service for MonitorHost<A> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn configure(&mut self, ctx: &ServiceContext<'_>, builder: ServerBuilder) -> Result<ServerBuilder, BoxError> {
        let (def, make) = self.def.take().ok_or("configured twice")?;
        let own = self.config.take();
        let config = own.as_ref().unwrap_or(ctx.config);
        let data_path = ctx.server.data_path.clone().unwrap_or_else(|| ".".into());
        let source_ip = ctx.server.local_ip.clone().unwrap_or_else(|| "127.0.0.1".into());
        let mut service_config =
            ServiceConfig::from_config(config, &def.keys, &data_path, &source_ip, self.targets.take())?;
        if let Some(clock) = self.clock.take() {
            service_config.clock = clock;
        }
        let shards = builder.shard_count(def.servant).unwrap_or(1);
        let agg = (def.aggregate)(&service_config);
        let service = MonitorService::start(&service_config, def.spec, agg, shards)?;
        let mut builder = builder;
        if let Some(factory) = service.collector.factory() {
            builder = make(config, builder, factory);
        }
        let counters = service.counters();
        builder = builder.admin_command(def.status_command, move |_: &str| counters.status());
        self.service = Some(service);
        Ok(builder)
    }

    fn banner(&self) -> Vec<(String, String)> {
        let addr = self.service.as_ref().and_then(MonitorService::metrics_addr);
        addr.map(|a| (format!("{} metrics", self.name), format!("http://{a}{METRICS_PATH}"))).into_iter().collect()
    }

    fn stop(&mut self) {
        self.service = None;
    }
}

/// The body of a service binary (`tarsstat`, `tarsproperty`): the shared server `main`
/// ([`tars_core_net::app::run_binary`]) hosting `host`.
pub fn run_binary<A: Aggregate>(
    name: &str,
    usage: &str,
    args: impl IntoIterator<Item = String>,
    host: impl FnOnce() -> MonitorHost<A>,
) -> Result<(), AppError> {
    tars_core_net::app::run_binary(name, usage, args, |app| Ok(app.service(host())))
}

/// Reads a config file's text and parses it.
pub fn read_config(path: &std::path::Path) -> Result<Config, RunError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| RunError::ConfigFile(format!("reading {}: {e}", path.display())))?;
    Config::parse(&text).map_err(|e| RunError::ConfigFile(format!("{}: {e}", path.display())))
}

/// Starts a service from a parsed config: the server's adapters and `host` on the shared
/// lifecycle.
pub fn start<A: Aggregate>(config: &Config, opts: StartOptions, host: MonitorHost<A>) -> Result<Running<A>, AppError> {
    let mut app = Application::new(config.clone())?;
    if let Some(io) = opts.io {
        app = app.io(io);
    }
    if let Some(n) = opts.shards {
        app = app.shards(n);
    }
    let running = app.service(host).start()?;
    Ok(Running { running, _aggregate: std::marker::PhantomData })
}
