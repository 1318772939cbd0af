//! tarsstat as a server: `StatObj` on every shard over the shared monitor service
//! (`tars_monitor::service`: collector, one writer per stat database, status command,
//! metrics endpoint).
//!
//! Config keys: those of `tars_monitor::service` under `/tars/statdb` and
//! `/tars/db_reserve<stat_reserve_time>`, and `/tars/masteripgroup` (lines
//! `slaveName;fakeIp`).

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use bytes::Bytes;
use tars_core_net::app::AppError;
use tars_core_net::server::{Dispatch, DispatchFuture};
use tars_monitor::clock::{Clock, Label};
use tars_monitor::collect::{Aggregate, ShardAgg};
use tars_monitor::service::{self as monitor, Keys, MakeServant, MonitorHost, Running, ServiceDef, TableSpec};
pub use tars_monitor::service::{RunError, StartOptions};
use tars_monitor::targets::Target;
use tars_proto::config::Config;
use tars_proto::packet::version;
use tars_proto::rpc::{Current, ParamWriter, ServantError};
use tars_protocol::tars::{dispatch_stat_f, StatF, StatMicMsgBody, StatMicMsgHead, StatSampleMsg};
use tars_sql::schema::monitor::{stat_schema, stat_table, STAT_COLUMNS, STAT_PREFIX, STAT_PRIMARY_KEY};
use tars_sql::{Dialect, SetTo, Value};

use crate::ingest::{normalize, stat_row, IngestRules, StatKey, StatValue};
use crate::mic::{self, MicLimits};

/// The servant name upstream deploys.
pub const STAT_OBJ: &str = "tars.tarsstat.StatObj";
/// The admin command that prints the counters.
pub const STATUS_COMMAND: &str = "tars.stat.status";

/// Where tarsstat's config lives.
pub const KEYS: Keys = Keys { db_root: "/tars/statdb", default_prefix: STAT_PREFIX, reserve_key: "stat_reserve_time" };

/// tarsstat's hourly tables.
pub const TABLES: TableSpec = TableSpec {
    name: "stat",
    columns: STAT_COLUMNS,
    make_table: stat_table,
    schema: stat_schema,
    upsert_tail: stat_upsert,
};

/// Reads `/tars/masteripgroup`; bad lines are logged and ignored.
pub fn ingest_rules(config: &Config) -> IngestRules {
    let lines: Vec<&str> = config.params("/tars/masteripgroup").into_iter().map(|(k, _)| k).collect();
    let (rules, bad) = IngestRules::parse_master_ip_group(&lines.join("\n"));
    for e in bad {
        tracing::warn!("/tars/masteripgroup: {e}; line ignored");
    }
    rules
}

/// How merged entries become rows of `tars_stat_YYYYMMDDHH`.
#[derive(Debug)]
pub struct StatAgg {
    /// This host's IP, written as `source_id`.
    pub source_ip: String,
}

impl Aggregate for StatAgg {
    type Key = StatKey;
    type Value = StatValue;

    fn merge(&self, _key: &StatKey, into: &mut StatValue, other: StatValue) -> usize {
        into.merge(&other);
        // A value is inline (counters and a fixed-size histogram): it never grows.
        0
    }

    fn heap_bytes(&self, key: &StatKey, _value: &StatValue) -> usize {
        key.heap_bytes()
    }

    fn rows(&self, key: &StatKey, value: &StatValue, label: &Label, out: &mut Vec<Vec<Value>>) {
        out.push(stat_row(key, value, &self.source_ip, &label.f_date, &label.tflag));
    }
}

/// On a primary-key clash (a restart inside a window writes the window's second part as a
/// new batch) the counters add up (capped at their columns' range, so a clash can never make
/// the batch fail), `ave_time` is recomputed from the sums, the minimum ignores a side's 0
/// ("none"), and the latency histogram text
/// keeps the first part's buckets, which SQL cannot merge.
///
/// `ave_time` comes first: MySQL evaluates the assignments left to right and later ones see
/// the columns already updated, while SQLite's all see the old row; first, both see the old
/// row.
fn stat_upsert(d: Dialect) -> String {
    let (max, min, div) = match d {
        Dialect::Mysql => ("GREATEST", "LEAST", "DIV"),
        Dialect::Sqlite => ("MAX", "MIN", "/"),
    };
    let new = |c: &str| match d {
        Dialect::Mysql => format!("VALUES({c})"),
        Dialect::Sqlite => format!("excluded.{c}"),
    };
    let sum = |c: &str| format!("({c} + {})", new(c));
    let capped = |c: &str| format!("{min}({}, {})", u32::MAX, sum(c));
    let ave = format!(
        "CASE WHEN {count} = 0 THEN 0 ELSE {min}({}, {max}(1, {total} {div} {count})) END",
        u32::MAX,
        count = sum("succ_count"),
        total = sum("total_time"),
    );
    let exprs = [
        ("ave_time", ave),
        ("succ_count", capped("succ_count")),
        ("timeout_count", capped("timeout_count")),
        ("exce_count", capped("exce_count")),
        ("total_time", format!("{min}({}, {})", i64::MAX, sum("total_time"))),
        ("maxrsp_time", format!("{max}(maxrsp_time, {})", new("maxrsp_time"))),
        // 0 is "no minimum" and loses to any other value, as in `StatValue::merge`.
        (
            "minrsp_time",
            format!(
                "CASE WHEN minrsp_time = 0 THEN {n} WHEN {n} = 0 THEN minrsp_time ELSE {min}(minrsp_time, {n}) END",
                n = new("minrsp_time")
            ),
        ),
    ];
    let set: Vec<(&str, SetTo<'_>)> = exprs.iter().map(|(c, e)| (*c, SetTo::Expr(e.as_str()))).collect();
    d.on_conflict_update(STAT_PRIMARY_KEY, &set).unwrap_or_default()
}

/// `StatObj` on one shard. Lives on that shard only.
#[derive(Debug)]
pub struct StatImp {
    agg: Rc<ShardAgg<StatAgg>>,
    rules: Arc<IngestRules>,
    /// The encoded key of the entry being merged, reused for every entry.
    scratch: RefCell<Vec<u8>>,
}

impl StatImp {
    /// Serves into `agg`, and starts the shard's window timer (so an idle shard still hands
    /// its window over). Call on the shard.
    pub fn new(agg: ShardAgg<StatAgg>, rules: Arc<IngestRules>) -> StatImp {
        let agg = Rc::new(agg);
        monitor::spawn_roll_timer(&agg);
        StatImp { agg, rules, scratch: RefCell::new(Vec::new()) }
    }

    /// `reportMicMsg` (iVersion 1) without the generated types: the request's entries are read
    /// as borrowed views ([`crate::mic`]) and merged by their encoded keys, so an entry for a
    /// key the window already holds allocates nothing. Accepts and rejects what the generated
    /// decoder does, plus [`MicLimits::default`]; the reply is the same.
    fn report_mic_v1(&self, current: &Current, body: &[u8]) -> Result<Bytes, ServantError> {
        let peer = current.peer_ip().unwrap_or_default();
        let mut scratch = self.scratch.borrow_mut();
        let mut batch = self.agg.batch();
        mic::ingest(body, MicLimits::default(), &peer, &self.rules, &mut scratch, |key, value| {
            batch.add_ref(key, value, StatKey::from_encoded);
        })
        .map_err(|e| ServantError::decode(&e))?;
        let mut w = ParamWriter::new(current.version);
        w.write_ret(&0i32);
        Ok(w.finish())
    }
}

impl Drop for StatImp {
    fn drop(&mut self) {
        self.agg.stop();
    }
}

/// Every other call and encoding (TUP, JSON, `reportSampleMsg`) goes through the generated
/// servant.
impl StatF for StatImp {
    async fn report_mic_msg(
        &self,
        current: &mut Current,
        msg: std::collections::BTreeMap<StatMicMsgHead, StatMicMsgBody>,
        b_from_client: bool,
    ) -> Result<i32, ServantError> {
        MicLimits::default().check(&msg).map_err(|e| ServantError::decode(&e))?;
        let peer = current.peer_ip().unwrap_or_default();
        let mut batch = self.agg.batch();
        for (head, body) in &msg {
            if let Some((k, v)) = normalize(head, body, b_from_client, &peer, &self.rules) {
                batch.add(k, v);
            }
        }
        Ok(0)
    }

    async fn report_sample_msg(&self, _current: &mut Current, msg: Vec<StatSampleMsg>) -> Result<i32, ServantError> {
        tracing::debug!(samples = msg.len(), "reportSampleMsg (only logged, as upstream)");
        Ok(0)
    }
}

/// The servant the server registers for [`STAT_OBJ`]: [`StatImp`]'s fast `reportMicMsg` for
/// iVersion 1 (what every SDK sends), the generated dispatch for everything else. One per
/// shard.
#[derive(Debug)]
pub struct StatServant(pub StatImp);

impl Dispatch for StatServant {
    fn dispatch(self: Rc<Self>, mut current: Current, body: Bytes) -> DispatchFuture {
        if current.version == version::TARS && current.func == mic::FUNC {
            let result = self.0.report_mic_v1(&current, &body);
            return Box::pin(async move { (current, result) });
        }
        Box::pin(async move {
            let result = dispatch_stat_f(&self.0, &mut current, &body).await;
            (current, result)
        })
    }
}

/// A running tarsstat.
pub type RunningStat = Running<StatAgg>;

/// Starts tarsstat from a parsed config: the server's adapters, `StatObj` on the adapter
/// whose servant is [[`STAT_OBJ`]], and the status command.
pub fn start(config: &Config, opts: StartOptions) -> Result<RunningStat, AppError> {
    let h = host(opts.targets.clone(), opts.clock.clone());
    monitor::start(config, opts, h)
}

/// tarsstat as a hosted service, writing to `targets` instead of the config's databases
/// and reading `clock` instead of the system clock when given.
pub fn host(targets: Option<Vec<Target>>, clock: Option<Clock>) -> MonitorHost<StatAgg> {
    let def = ServiceDef {
        servant: STAT_OBJ,
        status_command: STATUS_COMMAND,
        keys: KEYS,
        spec: TABLES,
        aggregate: Box::new(|c: &monitor::ServiceConfig| StatAgg { source_ip: c.source_ip.clone() }),
    };
    let make: MakeServant<StatAgg> = Box::new(|config, builder, factory| {
        let rules = Arc::new(ingest_rules(config));
        builder.servant(STAT_OBJ, move |info| StatServant(StatImp::new(factory.make(info.id), rules.clone())))
    });
    MonitorHost::new("stat", def, make, targets, clock)
}

/// [`start`] from a config file.
pub fn start_file(path: &std::path::Path, opts: StartOptions) -> Result<RunningStat, AppError> {
    let config = monitor::read_config(path).map_err(|e| AppError::Usage(e.to_string()))?;
    start(&config, opts)
}
