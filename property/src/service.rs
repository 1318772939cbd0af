//! tarsproperty as a server: `PropertyObj` on every shard over the shared monitor service
//! (`tars_monitor::service`: collector, one writer per property database, status command,
//! metrics endpoint).
//!
//! Config keys: those of `tars_monitor::service` under `/tars/propertydb` and
//! `/tars/db_reserve<property_reserve_time>`.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tars_core_net::app::AppError;
use tars_monitor::clock::{Clock, Label};
use tars_monitor::collect::{Aggregate, Counter, ShardAgg};
use tars_monitor::service::{self as monitor, Keys, MakeServant, MonitorHost, Running, ServiceDef, TableSpec};
pub use tars_monitor::service::{RunError, StartOptions};
use tars_monitor::targets::Target;
use tars_proto::config::Config;
use tars_proto::rpc::{Current, ServantError};
use tars_protocol::tars::{PropertyF, PropertyFServant, StatPropMsgBody, StatPropMsgHead};
use tars_sql::schema::monitor::{property_schema, property_table, PROPERTY_COLUMNS, PROPERTY_PREFIX};
use tars_sql::{Dialect, Value};

use crate::ingest::{normalize_owned, property_row, PropEntry, PropKey};
use crate::policy::PolicyError;

/// The servant name upstream deploys.
pub const PROPERTY_OBJ: &str = "tars.tarsproperty.PropertyObj";
/// The admin command that prints the counters.
pub const STATUS_COMMAND: &str = "tars.property.status";

/// Where tarsproperty's config lives.
pub const KEYS: Keys =
    Keys { db_root: "/tars/propertydb", default_prefix: PROPERTY_PREFIX, reserve_key: "property_reserve_time" };

/// tarsproperty's hourly tables. They have no unique key (as upstream), so a row is only
/// ever inserted; replays are kept out by the batch ledger.
pub const TABLES: TableSpec = TableSpec {
    name: "property",
    columns: PROPERTY_COLUMNS,
    make_table: property_table,
    schema: property_schema,
    upsert_tail: no_upsert,
};

fn no_upsert(_: Dialect) -> String {
    String::new()
}

/// Values the service could not keep, shared by all shards and the collector. Touched only
/// when a value is bad, so the shared cache line costs nothing on the normal path.
#[derive(Debug, Default)]
pub struct Rejections {
    /// Values rejected when a report arrived (unparsable, unknown shape, too many policies).
    pub values: AtomicU64,
    /// Values that could not be merged into the key's earlier value (a Distr whose buckets
    /// differ); the earlier value is kept.
    pub merges: AtomicU64,
}

impl Rejections {
    fn count(&self, counter: &AtomicU64, what: &str, key: &PropKey, errors: &[PolicyError]) {
        if errors.is_empty() {
            return;
        }
        let before = counter.fetch_add(errors.len() as u64, Ordering::Relaxed);
        // One line per rejection would let a broken client flood the log: the first ten,
        // then every power of two.
        let n = before + 1;
        if n <= 10 || n.is_power_of_two() {
            tracing::warn!(module = %key.module_name, ip = %key.ip, property = %key.property_name,
                error = %errors[0], count = errors.len(), total = n + errors.len() as u64 - 1, "{what}");
        }
    }
}

/// How merged properties become rows of `tars_property_YYYYMMDDHH`.
#[derive(Debug, Default)]
pub struct PropAgg {
    /// What was rejected.
    pub rejections: Arc<Rejections>,
}

impl Aggregate for PropAgg {
    type Key = PropKey;
    type Value = PropEntry;

    fn merge(&self, key: &PropKey, into: &mut PropEntry, other: PropEntry) -> usize {
        let before = into.heap_bytes();
        let errors = into.merge(other);
        self.rejections.count(&self.rejections.merges, "property value not merged; earlier value kept", key, &errors);
        into.heap_bytes().saturating_sub(before)
    }

    fn heap_bytes(&self, key: &PropKey, value: &PropEntry) -> usize {
        key.heap_bytes() + value.heap_bytes()
    }

    fn rows(&self, key: &PropKey, value: &PropEntry, label: &Label, out: &mut Vec<Vec<Value>>) {
        for (policy, v) in value.iter() {
            out.push(property_row(key, policy, v, &label.f_date, &label.tflag));
        }
    }

    fn counters(&self) -> Vec<Counter> {
        vec![
            Counter {
                name: "rejected_values",
                help: "Reported values that were not kept (unparsable, wrong shape, too many policies).",
                value: self.rejections.values.load(Ordering::Relaxed),
            },
            Counter {
                name: "unmerged_values",
                help: "Values that could not be merged into the key's earlier value (Distr buckets differ).",
                value: self.rejections.merges.load(Ordering::Relaxed),
            },
        ]
    }
}

/// `PropertyObj` on one shard. Lives on that shard only.
#[derive(Debug)]
pub struct PropertyImp {
    agg: Rc<ShardAgg<PropAgg>>,
    rejections: Arc<Rejections>,
}

impl PropertyImp {
    /// Serves into `agg` and starts the shard's window timer. Call on the shard.
    pub fn new(agg: ShardAgg<PropAgg>, rejections: Arc<Rejections>) -> PropertyImp {
        let agg = Rc::new(agg);
        monitor::spawn_roll_timer(&agg);
        PropertyImp { agg, rejections }
    }
}

impl Drop for PropertyImp {
    fn drop(&mut self) {
        self.agg.stop();
    }
}

impl PropertyF for PropertyImp {
    async fn report_prop_msg(
        &self,
        current: &mut Current,
        msg: BTreeMap<StatPropMsgHead, StatPropMsgBody>,
    ) -> Result<i32, ServantError> {
        let peer = current.peer_ip().unwrap_or_default();
        let mut batch = self.agg.batch();
        for (head, body) in msg {
            let n = normalize_owned(head, &body, &peer);
            if !n.rejected.is_empty() {
                let errors: Vec<PolicyError> = n.rejected.into_iter().map(|r| r.error).collect();
                self.rejections.count(&self.rejections.values, "property value rejected", &n.key, &errors);
            }
            if !n.entry.is_empty() {
                batch.add(n.key, n.entry);
            }
        }
        Ok(0)
    }
}

/// A running tarsproperty.
pub type RunningProperty = Running<PropAgg>;

/// Starts tarsproperty from a parsed config: the server's adapters, `PropertyObj` on the
/// adapter whose servant is [[`PROPERTY_OBJ`]], and the status command.
pub fn start(config: &Config, opts: StartOptions) -> Result<RunningProperty, AppError> {
    let h = host(opts.targets.clone(), opts.clock.clone());
    monitor::start(config, opts, h)
}

/// tarsproperty as a hosted service, writing to `targets` instead of the config's
/// databases and reading `clock` instead of the system clock when given.
pub fn host(targets: Option<Vec<Target>>, clock: Option<Clock>) -> MonitorHost<PropAgg> {
    let rejections = Arc::new(Rejections::default());
    let shared = rejections.clone();
    let def = ServiceDef {
        servant: PROPERTY_OBJ,
        status_command: STATUS_COMMAND,
        keys: KEYS,
        spec: TABLES,
        aggregate: Box::new(move |_: &monitor::ServiceConfig| PropAgg { rejections: shared }),
    };
    let make: MakeServant<PropAgg> = Box::new(move |_config, builder, factory| {
        builder.servant(PROPERTY_OBJ, move |info| {
            PropertyFServant(PropertyImp::new(factory.make(info.id), rejections.clone()))
        })
    });
    MonitorHost::new("property", def, make, targets, clock)
}

/// The servant type the server registers.
pub type PropertyServant = PropertyFServant<PropertyImp>;

/// [`start`] from a config file.
pub fn start_file(path: &std::path::Path, opts: StartOptions) -> Result<RunningProperty, AppError> {
    let config = monitor::read_config(path).map_err(|e| AppError::Usage(e.to_string()))?;
    start(&config, opts)
}
