//! `tars_stat` and `tars_property`: one table per hour (`<prefix>YYYYMMDDHH`) that TarsWeb's
//! monitor pages and the query services read, plus the `t_ecstatus` flush marker.
//!
//! The hourly tables are created by the stat and property services a day ahead, not by
//! migrations; migrations only create `t_ecstatus`. Upstream keeps `t_ecstatus` in a HEAP table,
//! which a MySQL restart empties; ours is InnoDB, with the same columns and keys.

use super::ColType::*;
use super::{col, Index, Table};
use crate::migrate::{Migration, Op, SchemaSet};

/// Default table prefix of the stat service (`tbname` in its config).
pub const STAT_PREFIX: &str = "tars_stat_";
/// Default table prefix of the property service.
pub const PROPERTY_PREFIX: &str = "tars_property_";

/// The name of the hourly table for `date` (`YYYYMMDD`) and `hour` (0–23).
pub fn hourly_table_name(prefix: &str, date: &str, hour: u8) -> String {
    format!("{prefix}{date}{hour:02}")
}

/// Columns written by the stat service, in table order, without `stattime` (which defaults to
/// the insert time).
pub const STAT_COLUMNS: &[&str] = &[
    "f_date",
    "f_tflag",
    "source_id",
    "master_name",
    "slave_name",
    "interface_name",
    "tars_version",
    "master_ip",
    "slave_ip",
    "slave_port",
    "return_value",
    "succ_count",
    "timeout_count",
    "exce_count",
    "interv_count",
    "total_time",
    "ave_time",
    "maxrsp_time",
    "minrsp_time",
];

/// The stat table's primary key: one row per writer, window and call key.
pub const STAT_PRIMARY_KEY: &[&str] = &[
    "source_id",
    "f_date",
    "f_tflag",
    "master_name",
    "slave_name",
    "interface_name",
    "master_ip",
    "slave_ip",
    "slave_port",
    "return_value",
    "tars_version",
];

/// One hour of call statistics.
pub fn stat_table(name: impl Into<String>) -> Table {
    Table::new(
        name,
        &[
            col("stattime", Timestamp).not_null().default_now(),
            col("f_date", Date).not_null().default_str("1970-01-01"),
            col("f_tflag", Varchar(8)).not_null().default_str(""),
            col("source_id", Varchar(15)).not_null().default_str(""),
            col("master_name", Varchar(128)).not_null().default_str(""),
            col("slave_name", Varchar(128)).not_null().default_str(""),
            col("interface_name", Varchar(128)).not_null().default_str(""),
            col("tars_version", Varchar(16)).not_null().default_str(""),
            col("master_ip", Varchar(15)).not_null().default_str(""),
            col("slave_ip", Varchar(21)).not_null().default_str(""),
            col("slave_port", Int(10)).not_null().default_int(0),
            col("return_value", Int(11)).not_null().default_int(0),
            col("succ_count", UInt(10)).default_null(),
            col("timeout_count", UInt(10)).default_null(),
            col("exce_count", UInt(10)).default_null(),
            col("interv_count", Varchar(128)).default_null(),
            col("total_time", UBigInt(20)).default_null(),
            col("ave_time", UInt(10)).default_null(),
            col("maxrsp_time", UInt(10)).default_null(),
            col("minrsp_time", UInt(10)).default_null(),
        ],
        &[
            Index::primary(STAT_PRIMARY_KEY),
            Index::key("IDX_TIME", &["stattime"]),
            Index::key("IDC_MASTER", &["master_name"]),
            Index::key("IDX_INTERFACENAME", &["interface_name"]),
            Index::key("IDX_FLAGSLAVE", &["f_tflag", "slave_name"]),
            Index::key("IDX_SLAVEIP", &["slave_ip"]),
            Index::key("IDX_SLAVE", &["slave_name"]),
            Index::key("IDX_RETVALUE", &["return_value"]),
            Index::key("IDX_MASTER_IP", &["master_ip"]),
            Index::key("IDX_F_DATE", &["f_date"]),
        ],
    )
}

/// Columns written by the property service, in table order, without `stattime`.
pub const PROPERTY_COLUMNS: &[&str] = &[
    "f_date",
    "f_tflag",
    "master_name",
    "master_ip",
    "property_name",
    "set_name",
    "set_area",
    "set_id",
    "policy",
    "value",
];

/// One hour of custom metrics. Upstream gives it no unique key; neither do we, so TarsWeb's
/// queries see the same table, and de-duplication is the writer's job.
pub fn property_table(name: impl Into<String>) -> Table {
    Table::new(
        name,
        &[
            col("stattime", Timestamp).not_null().default_now(),
            col("f_date", Date).not_null().default_str("1970-01-01"),
            col("f_tflag", Varchar(8)).not_null().default_str(""),
            col("master_name", Varchar(128)).not_null().default_str(""),
            col("master_ip", Varchar(16)).default_null(),
            col("property_name", Varchar(100)).default_null(),
            col("set_name", Varchar(15)).not_null().default_str(""),
            col("set_area", Varchar(15)).not_null().default_str(""),
            col("set_id", Varchar(15)).not_null().default_str(""),
            col("policy", Varchar(20)).default_null(),
            col("value", Varchar(255)).default_null(),
        ],
        &[
            Index::key("f_date", &["f_date", "f_tflag", "master_name", "master_ip", "property_name", "policy"]),
            Index::key("IDX_MASTER_NAME", &["master_name"]),
            Index::key("IDX_MASTER_IP", &["master_ip"]),
            Index::key("IDX_TIME", &["stattime"]),
        ],
    )
}

fn ecstatus() -> Table {
    Table::new(
        "t_ecstatus",
        &[
            col("id", Int(11)).auto_increment(),
            col("appname", Varchar(64)).not_null().default_str(""),
            col("action", TinyInt(4)).not_null().default_str("0"),
            col("checkint", SmallInt(6)).not_null().default_str("10"),
            col("lasttime", Varchar(16)).not_null().default_str(""),
        ],
        &[Index::primary(&["appname", "action"]), Index::unique("id", &["id"])],
    )
}

/// Name of the ledger of written batches (ours; upstream has none).
pub const BATCH_LEDGER: &str = "t_tarsrs_batch";

/// The batches a tars-rs stat/property writer has written, one row each, inserted in the
/// same transaction as the batch's rows: a batch replayed from the spool after a crash or
/// an outage finds its id here and is not written twice. `t_ecstatus` cannot do this: it
/// holds one time per writer, and upstream keeps it in a HEAP table that a restart empties.
fn batch_ledger() -> Table {
    Table::new(
        BATCH_LEDGER,
        &[
            col("batch_id", Varchar(190)).not_null().default_str(""),
            col("rows_written", UInt(10)).not_null().default_int(0),
            col("written_at", Timestamp).not_null().default_now(),
        ],
        &[Index::primary(&["batch_id"]), Index::key("IDX_WRITTEN_AT", &["written_at"])],
    )
}

/// Every migration of `tars_stat`.
pub fn stat_schema() -> SchemaSet {
    flush_marker_schema("tars_stat")
}

/// Every migration of `tars_property`.
pub fn property_schema() -> SchemaSet {
    flush_marker_schema("tars_property")
}

/// Both monitor databases hold the same fixed tables; only their hourly tables differ.
fn flush_marker_schema(database: &'static str) -> SchemaSet {
    SchemaSet {
        database,
        migrations: vec![
            Migration { version: 1, name: "flush marker", ops: vec![Op::CreateTable(ecstatus())] },
            Migration { version: 2, name: "batch ledger", ops: vec![Op::CreateTable(batch_ledger())] },
        ],
    }
}
