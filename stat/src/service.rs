//! tarsstat as a server: `StatObj` on every shard, the collector and one writer per stat
//! database.
//!
//! Upstream config keys read: `/tars/statdb/<dbN>` (`dbhost`, `dbport`, `dbuser`, `dbpass`,
//! `dbname`, `tbname`, `weighted`), `/tars<enWeighted>`, `/tars/masteripgroup` (lines
//! `slaveName;fakeIp`), `/tars/db_reserve<stat_reserve_time>` (days, default 31). Ours:
//! `/tars/spool<dir>` (default `<datapath>/spool`) and `/tars/spool<maxMB>` (default 1024).

use std::path::PathBuf;
use std::rc::{Rc, Weak};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tars_core_net::config::Config;
use tars_core_net::rpc::{Current, ServantError};
use tars_core_net::rt;
use tars_core_net::server::ServerBuilder;
use tars_monitor::clock::{Clock, Label};
use tars_monitor::collect::{Aggregate, CollectConfig, Collector, ShardAgg};
use tars_monitor::targets::{self, Target};
use tars_monitor::writer::{Writer, WriterConfig};
use tars_protocol::tars::{StatF, StatFServant, StatMicMsgBody, StatMicMsgHead, StatSampleMsg};
use tars_sql::schema::monitor::{stat_table, STAT_COLUMNS, STAT_PREFIX, STAT_PRIMARY_KEY};
use tars_sql::{Dialect, SetTo, Value};

use crate::ingest::{normalize_owned, stat_row, IngestRules, StatKey, StatValue};

/// The servant name upstream deploys.
pub const STAT_OBJ: &str = "tars.tarsstat.StatObj";
/// The admin command that prints the counters.
pub const STATUS_COMMAND: &str = "tars.stat.status";

/// Everything the stat service needs besides the server config.
#[derive(Debug, Clone)]
pub struct StatConfig {
    /// Where rows go.
    pub targets: Vec<Target>,
    /// `/tars<enWeighted>`.
    pub weighted: bool,
    /// Ingest rules (`/tars/masteripgroup`).
    pub rules: IngestRules,
    /// The spool directory.
    pub spool_dir: PathBuf,
    /// The spool's limit for unwritten batches, per database.
    pub spool_max_bytes: u64,
    /// Days of hourly tables kept.
    pub reserve_days: u32,
    /// This host's IP (`source_id`, `t_ecstatus.appname`).
    pub source_ip: String,
    /// Time.
    pub clock: Clock,
}

/// A config value we cannot use.
#[derive(Debug, thiserror::Error)]
pub enum StatConfigError {
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
        reason: String,
    },
    /// No database to write to.
    #[error("no stat database configured (/tars/statdb/<db1>)")]
    NoDatabase,
}

impl StatConfig {
    /// Reads the upstream keys; `data_path` is the server's `datapath`.
    pub fn from_config(config: &Config, data_path: &str, source_ip: &str) -> Result<StatConfig, StatConfigError> {
        let targets = targets::from_config(config, "/tars/statdb", STAT_PREFIX)?;
        StatConfig::with_targets(config, data_path, source_ip, targets)
    }

    /// Like [`StatConfig::from_config`], writing to `targets` instead of `/tars/statdb`.
    pub fn with_targets(
        config: &Config,
        data_path: &str,
        source_ip: &str,
        targets: Vec<Target>,
    ) -> Result<StatConfig, StatConfigError> {
        if targets.is_empty() {
            return Err(StatConfigError::NoDatabase);
        }
        let weighted = config.get("/tars<enWeighted>").is_some_and(|v| matches!(v.trim(), "1" | "Y" | "y" | "true"));
        let lines: Vec<&str> = config.params("/tars/masteripgroup").into_iter().map(|(k, _)| k).collect();
        let (rules, bad) = IngestRules::parse_master_ip_group(&lines.join("\n"));
        for e in bad {
            tracing::warn!("/tars/masteripgroup: {e}; line ignored");
        }
        let number = |key: &str, default: u64| -> Result<u64, StatConfigError> {
            match config.get(key).map(str::trim).filter(|v| !v.is_empty()) {
                None => Ok(default),
                Some(v) => v.parse().map_err(|_| StatConfigError::Bad {
                    key: key.into(),
                    value: v.into(),
                    reason: "not a whole number".into(),
                }),
            }
        };
        let spool_dir = config
            .get("/tars/spool<dir>")
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map_or_else(|| PathBuf::from(data_path).join("spool"), PathBuf::from);
        Ok(StatConfig {
            targets,
            weighted,
            rules,
            spool_dir,
            spool_max_bytes: number("/tars/spool<maxMB>", 1024)?.saturating_mul(1 << 20),
            reserve_days: u32::try_from(number("/tars/db_reserve<stat_reserve_time>", 31)?.max(2)).unwrap_or(31),
            source_ip: source_ip.to_owned(),
            clock: Clock::system(),
        })
    }
}

/// How merged entries become rows of `tars_stat_YYYYMMDDHH`.
#[derive(Debug)]
pub struct StatAgg {
    source_ip: String,
}

impl Aggregate for StatAgg {
    type Key = StatKey;
    type Value = StatValue;

    fn merge(&self, into: &mut StatValue, other: StatValue) {
        into.merge(&other);
    }

    fn rows(&self, key: &StatKey, value: &StatValue, label: &Label, out: &mut Vec<Vec<Value>>) {
        out.push(stat_row(key, value, &self.source_ip, &label.f_date, &label.tflag));
    }
}

/// On a primary-key clash (a restart inside a window writes the window's second part as a
/// new batch) the counters add up; the latency histogram text keeps the first part's
/// buckets, which SQL cannot merge.
fn stat_upsert(d: Dialect) -> String {
    let (max, min) = match d {
        Dialect::Mysql => ("GREATEST", "LEAST"),
        Dialect::Sqlite => ("MAX", "MIN"),
    };
    let new = |c: &str| match d {
        Dialect::Mysql => format!("VALUES({c})"),
        Dialect::Sqlite => format!("excluded.{c}"),
    };
    let sum = |c: &str| format!("{c} + {}", new(c));
    let exprs = [
        ("succ_count", sum("succ_count")),
        ("timeout_count", sum("timeout_count")),
        ("exce_count", sum("exce_count")),
        ("total_time", sum("total_time")),
        ("maxrsp_time", format!("{max}(maxrsp_time, {})", new("maxrsp_time"))),
        ("minrsp_time", format!("{min}(minrsp_time, {})", new("minrsp_time"))),
    ];
    let set: Vec<(&str, SetTo<'_>)> = exprs.iter().map(|(c, e)| (*c, SetTo::Expr(e.as_str()))).collect();
    d.on_conflict_update(STAT_PRIMARY_KEY, &set).unwrap_or_default()
}

/// The stat service's background parts: writers and collector. Dropping it flushes what the
/// shards handed over and stops.
#[derive(Debug)]
pub struct StatService {
    config: StatConfig,
    collector: Collector<StatAgg>,
    writers: Arc<Vec<Writer>>,
}

/// The service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A writer (spool or database handle).
    #[error(transparent)]
    Writer(#[from] tars_monitor::writer::WriterError),
    /// A thread.
    #[error("starting the collector: {0}")]
    Thread(#[from] std::io::Error),
}

impl StatService {
    /// Starts one writer per database (each replays its spool first) and the collector for
    /// `shards` IO shards.
    pub fn start(config: StatConfig, shards: usize) -> Result<StatService, StartError> {
        let mut writers = Vec::new();
        for t in &config.targets {
            writers.push(Writer::start(WriterConfig {
                target: t.clone(),
                columns: STAT_COLUMNS,
                make_table: stat_table,
                upsert_tail: stat_upsert,
                spool_dir: config.spool_dir.clone(),
                spool_max_bytes: config.spool_max_bytes,
                rows_per_insert: 1000,
                checkint_minutes: 5,
                clock: config.clock.clone(),
                retry_max: Duration::from_secs(10),
            })?);
        }
        let writers = Arc::new(writers);
        let generation = u64::try_from(
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis()),
        )
        .unwrap_or(0);
        let collector = Collector::start(
            StatAgg { source_ip: config.source_ip.clone() },
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
            },
        )?;
        Ok(StatService { config, collector, writers })
    }

    /// Adds `StatObj` as `servant` (one per shard, with its window timer).
    pub fn add_to(&self, builder: ServerBuilder, servant: &str) -> ServerBuilder {
        let rules = Arc::new(self.config.rules.clone());
        let Some(factory) = self.collector.factory() else { return builder };
        builder
            .servant(servant.to_owned(), move |info| StatFServant(StatImp::new(factory.make(info.id), rules.clone())))
    }

    /// The counters as text (the status command).
    pub fn status(&self) -> String {
        status_text(self.collector.stats(), &self.writers)
    }

    /// Waits until every batch handed to the writers so far had a write attempt.
    pub fn flush_writers(&self, timeout: Duration) -> bool {
        self.writers.iter().all(|w| w.flush(timeout))
    }
}

fn status_text(c: &tars_monitor::collect::CollectStats, writers: &[Writer]) -> String {
    let mut out = format!(
        "entries: {}\nwindows flushed: {}\nrows: {}\nlate entries: {}\n",
        c.entries.load(Ordering::Relaxed),
        c.windows.load(Ordering::Relaxed),
        c.rows.load(Ordering::Relaxed),
        c.late_entries.load(Ordering::Relaxed)
    );
    for w in writers {
        let s = w.stats();
        out.push_str(&format!(
            "{}: written {} batches / {} rows, duplicates {}, pending {}, spooled {}, dropped {} batches / {} rows, errors {}\n",
            w.name(),
            s.batches_written.load(Ordering::Relaxed),
            s.rows_written.load(Ordering::Relaxed),
            s.batches_duplicate.load(Ordering::Relaxed),
            s.batches_pending.load(Ordering::Relaxed),
            s.batches_spooled.load(Ordering::Relaxed),
            s.batches_dropped.load(Ordering::Relaxed),
            s.rows_dropped.load(Ordering::Relaxed),
            s.write_errors.load(Ordering::Relaxed),
        ));
    }
    out
}

/// `StatObj` on one shard. Lives on that shard only.
#[derive(Debug)]
pub struct StatImp {
    agg: Rc<ShardAgg<StatAgg>>,
    rules: Arc<IngestRules>,
}

impl StatImp {
    /// Serves into `agg`, and starts the shard's window timer (so an idle shard still hands
    /// its window over). Call on the shard.
    pub fn new(agg: ShardAgg<StatAgg>, rules: Arc<IngestRules>) -> StatImp {
        let agg = Rc::new(agg);
        let weak: Weak<ShardAgg<StatAgg>> = Rc::downgrade(&agg);
        rt::spawn(async move {
            loop {
                rt::sleep(Duration::from_secs(1)).await;
                let Some(agg) = weak.upgrade() else { return };
                agg.roll();
            }
        })
        .detach();
        StatImp { agg, rules }
    }
}

impl Drop for StatImp {
    fn drop(&mut self) {
        self.agg.stop();
    }
}

impl StatF for StatImp {
    async fn report_mic_msg(
        &self,
        current: &mut Current,
        msg: std::collections::BTreeMap<StatMicMsgHead, StatMicMsgBody>,
        b_from_client: bool,
    ) -> Result<i32, ServantError> {
        let peer = current.peer_ip().unwrap_or_default();
        for (head, body) in msg {
            if let Some((k, v)) = normalize_owned(head, &body, b_from_client, &peer, &self.rules) {
                self.agg.add(k, v);
            }
        }
        Ok(0)
    }

    async fn report_sample_msg(&self, _current: &mut Current, msg: Vec<StatSampleMsg>) -> Result<i32, ServantError> {
        tracing::debug!(samples = msg.len(), "reportSampleMsg (only logged, as upstream)");
        Ok(0)
    }
}

/// The servant type the server registers.
pub type StatServant = StatFServant<StatImp>;

/// A running tarsstat: the server and the service behind it.
#[derive(Debug)]
pub struct RunningStat {
    /// The server.
    pub server: tars_core_net::server::ServerHandle,
    /// Writers and collector.
    pub service: StatService,
}

impl RunningStat {
    /// Serves until the server stops, then hands the shards' windows to the writers and
    /// stops them (what they cannot write stays in the spool).
    pub fn wait(self) -> Result<(), tars_core_net::server::ServerError> {
        let RunningStat { server, service } = self;
        let r = server.wait();
        drop(service);
        r
    }
}

/// Options that override the config file.
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    /// IO driver.
    pub io: Option<rt::IoMode>,
    /// Shard count.
    pub shards: Option<usize>,
    /// Databases (instead of `/tars/statdb`).
    pub targets: Option<Vec<Target>>,
    /// Time (tests).
    pub clock: Option<Clock>,
}

/// Why tarsstat could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The config file.
    #[error("{0}")]
    ConfigFile(String),
    /// The stat keys.
    #[error(transparent)]
    Config(#[from] StatConfigError),
    /// The server.
    #[error(transparent)]
    Server(#[from] tars_core_net::server::ServerError),
    /// The service.
    #[error(transparent)]
    Start(#[from] StartError),
}

/// Starts tarsstat from a parsed config: the server's adapters, `StatObj` on the adapter
/// whose servant is [`STAT_OBJ`], and the status command.
pub fn start(config: &Config, opts: StartOptions) -> Result<RunningStat, RunError> {
    let mut builder = ServerBuilder::from_config(config)?;
    if let Some(io) = opts.io {
        builder = builder.io(io);
    }
    if let Some(n) = opts.shards {
        builder = builder.shards(n);
    }
    let sc = builder.config().clone();
    let data_path = sc.data_path.clone().unwrap_or_else(|| ".".into());
    let source_ip = sc.local_ip.clone().unwrap_or_else(|| "127.0.0.1".into());
    let mut stat_config = match opts.targets {
        Some(t) => StatConfig::with_targets(config, &data_path, &source_ip, t)?,
        None => StatConfig::from_config(config, &data_path, &source_ip)?,
    };
    if let Some(clock) = opts.clock {
        stat_config.clock = clock;
    }
    let shards = builder.shard_count(STAT_OBJ).unwrap_or(1);
    let service = StatService::start(stat_config, shards)?;
    builder = service.add_to(builder, STAT_OBJ);
    let status = {
        let writers = service.writers.clone();
        let stats = service.collector.stats().clone();
        move |_: &str| status_text(&stats, &writers)
    };
    builder = builder.admin_command(STATUS_COMMAND, status);
    let server = builder.start()?;
    Ok(RunningStat { server, service })
}

/// [`start`] from a config file.
pub fn start_file(path: &std::path::Path, opts: StartOptions) -> Result<RunningStat, RunError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| RunError::ConfigFile(format!("reading {}: {e}", path.display())))?;
    let config = Config::parse(&text).map_err(|e| RunError::ConfigFile(format!("{}: {e}", path.display())))?;
    start(&config, opts)
}
