//! A `MonitorQueryReq` checked and turned into statements, sans-IO.
//!
//! Every name a request carries (condition fields, `indexs`, `groupby`) must be a column of the
//! hourly table ([`Kind`]'s allow lists); `dataid` must be this service's; `date` a real
//! `YYYYMMDD`; the tflags `HHMM`. Every value is a bound parameter. Anything else is refused
//! with a [`Refused`] that names what was wrong, and nothing is run.
//!
//! The statement for one hour table:
//!
//! ```text
//! SELECT SUM(`succ_count`) AS s0, …, `f_tflag` AS g0, … FROM `tars_stat_2026120710`
//! WHERE `f_tflag` >= ? AND `f_tflag` <= ? [AND `slave_name` LIKE ?]… GROUP BY `f_tflag`, … LIMIT ?
//! ```
//!
//! `f_date` is answered as `YYYYMMDD` (MySQL `DATE_FORMAT`, SQLite `REPLACE` of the dashes),
//! as upstream selects it. Unlike upstream, which reads whole hour tables, the tflags filter
//! to the minute.

use std::ops::RangeInclusive;

use tars_monitor::clock::parse_date;
use tars_protocol::tars::{MonitorQueryReq, OP};
use tars_sql::schema::monitor::hourly_table_name;
use tars_sql::{Dialect, StoreError, Value};

use crate::kind::Kind;

/// At most this many conditions, indexes and group-by columns in one request.
pub const MAX_CONDITIONS: usize = 32;
/// At most this many `indexs`.
pub const MAX_INDEXES: usize = 16;
/// At most this many `groupby` columns.
pub const MAX_GROUPBY: usize = 8;
/// The longest condition value (bytes): longer than any column.
pub const MAX_VALUE_LEN: usize = 512;

/// Why a request was refused, for the answer's `msg`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// `dataid` is not this service's.
    #[error("dataid {got:?} refused: this service answers {want:?}")]
    DataId {
        /// What the request said.
        got: String,
        /// What this service serves.
        want: &'static str,
    },
    /// `date` is not `YYYYMMDD`.
    #[error("date {0:?} refused: expected YYYYMMDD")]
    Date(String),
    /// A tflag is not `HHMM`.
    #[error("{which} {value:?} refused: expected HHMM (0000 to 2360)")]
    Tflag {
        /// `tflag1` or `tflag2`.
        which: &'static str,
        /// What the request said.
        value: String,
    },
    /// `tflag1` comes after `tflag2`.
    #[error("tflag1 {0:?} is after tflag2 {1:?}")]
    TflagOrder(String, String),
    /// A name that is not one of the table's columns (or not one allowed there).
    #[error("{place} {name:?} refused: not one of {allowed}")]
    Column {
        /// `conditions[2].field`, `indexs[0]`, `groupby[1]`.
        place: String,
        /// The name as sent.
        name: String,
        /// The allowed names.
        allowed: String,
    },
    /// An operator the interface does not define.
    #[error("conditions[{index}].op {op} refused: not one of EQ GT GTE LT LTE LIKE")]
    Op {
        /// The condition's position.
        index: usize,
        /// The value sent.
        op: i32,
    },
    /// A condition value that is too long.
    #[error("conditions[{index}].val refused: {len} bytes, at most {MAX_VALUE_LEN}")]
    ValueLength {
        /// The condition's position.
        index: usize,
        /// Its length.
        len: usize,
    },
    /// A condition value holding NUL, which SQLite's LIKE would end the text at.
    #[error("conditions[{0}].val refused: contains NUL")]
    Nul(usize),
    /// Too many items in a list.
    #[error("{what} refused: {count} given, at most {max}")]
    TooMany {
        /// `conditions`, `indexs`, `groupby`.
        what: &'static str,
        /// How many.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A column named twice in `groupby` or `indexs`.
    #[error("{place} {name:?} refused: named twice")]
    Duplicate {
        /// `indexs[2]`, `groupby[1]`.
        place: String,
        /// The column.
        name: String,
    },
    /// Nothing to sum.
    #[error("indexs refused: empty (name the columns to sum)")]
    NoIndexes,
}

/// A comparison: the interface's `OP`, and `!=` (the legacy JSON protocol's filters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `!=` (legacy protocol only: `OP` has no such value)
    Ne,
    /// `=`
    Eq,
    /// `>`
    Gt,
    /// `>=`
    Gte,
    /// `<`
    Lt,
    /// `<=`
    Lte,
    /// `LIKE`
    Like,
}

impl Op {
    fn from_wire(op: OP) -> Option<Op> {
        Some(match op {
            OP::EQ => Op::Eq,
            OP::GT => Op::Gt,
            OP::GTE => Op::Gte,
            OP::LT => Op::Lt,
            OP::LTE => Op::Lte,
            OP::LIKE => Op::Like,
            _ => return None,
        })
    }

    fn sql(self) -> &'static str {
        match self {
            Op::Ne => "<>",
            Op::Eq => "=",
            Op::Gt => ">",
            Op::Gte => ">=",
            Op::Lt => "<",
            Op::Lte => "<=",
            Op::Like => "LIKE",
        }
    }
}

/// One checked condition: a schema column, an operator, a value to bind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cond {
    /// The column (the schema's own `&'static str`).
    pub column: &'static str,
    /// The comparison.
    pub op: Op,
    /// The value, bound.
    pub value: String,
}

/// A request before it is checked, whichever protocol it came in: the names and values as
/// sent.
#[derive(Debug, Clone, Copy)]
pub struct Spec<'a> {
    /// `dataid`.
    pub dataid: &'a str,
    /// `YYYYMMDD`.
    pub date: &'a str,
    /// `HHMM`.
    pub tflag1: &'a str,
    /// `HHMM`.
    pub tflag2: &'a str,
    /// Field, operator (`Err`: the wire value of an operator not defined), value.
    pub conditions: &'a [(&'a str, Result<Op, i32>, &'a str)],
    /// Columns to sum.
    pub indexs: &'a [String],
    /// Columns to group by.
    pub groupby: &'a [String],
}

/// How property values of one key are reduced (upstream's rules in `QueryPropertyServer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reduce {
    /// Add them up.
    Sum,
    /// Their mean.
    Avg,
    /// The largest.
    Max,
    /// The smallest.
    Min,
}

/// A checked request.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Which service.
    pub kind: Kind,
    /// `YYYYMMDD`.
    pub date: String,
    /// The hour tables to read.
    pub hours: RangeInclusive<u8>,
    /// The first label to include, `HHMM`.
    pub tflag1: String,
    /// The last label to include, `HHMM`.
    pub tflag2: String,
    /// The conditions, all ANDed.
    pub conditions: Vec<Cond>,
    /// The columns summed, in answer order.
    pub indexes: Vec<&'static str>,
    /// The group-by columns, in key order.
    pub groupby: Vec<&'static str>,
    /// Property: the reduction a `policy` condition asks for (`None`: decided per key).
    pub policy: Option<Reduce>,
    /// Rows one hour table may give; more means the answer is cut.
    pub row_limit: usize,
}

fn tflag(which: &'static str, value: &str) -> Result<(u8, u8), Refused> {
    let bad = || Refused::Tflag { which, value: value.to_owned() };
    let b = value.as_bytes();
    if b.len() != 4 || !b.iter().all(u8::is_ascii_digit) {
        return Err(bad());
    }
    let hour = (b[0] - b'0') * 10 + (b[1] - b'0');
    let minute = (b[2] - b'0') * 10 + (b[3] - b'0');
    // Labels run 0005 … 2360 (minute 59 is written 60); 2400 is accepted as the day's end.
    if hour > 24 || minute > 60 || (hour == 24 && minute != 0) {
        return Err(bad());
    }
    Ok((hour, minute))
}

fn list_names(
    what: &'static str,
    names: &[String],
    allowed: &crate::kind::Columns,
    max: usize,
) -> Result<Vec<&'static str>, Refused> {
    if names.len() > max {
        return Err(Refused::TooMany { what, count: names.len(), max });
    }
    let mut out: Vec<&'static str> = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let place = format!("{what}[{i}]");
        let column = allowed.find(name).ok_or_else(|| Refused::Column {
            place: place.clone(),
            name: shown(name),
            allowed: allowed.0.join(" "),
        })?;
        if out.contains(&column) {
            return Err(Refused::Duplicate { place, name: name.clone() });
        }
        out.push(column);
    }
    Ok(out)
}

/// A name as shown in a refusal: at most 64 characters.
fn shown(s: &str) -> String {
    s.chars().take(64).collect()
}

impl Plan {
    /// Checks `req` for `kind`.
    pub fn new(kind: Kind, req: &MonitorQueryReq, row_limit: usize) -> Result<Plan, Refused> {
        let conditions: Vec<(&str, Result<Op, i32>, &str)> = req
            .conditions
            .iter()
            .map(|c| (c.field.as_str(), Op::from_wire(c.op).ok_or(c.op.0), c.val.as_str()))
            .collect();
        Plan::check(
            kind,
            Spec {
                dataid: &req.dataid,
                date: &req.date,
                tflag1: &req.tflag1,
                tflag2: &req.tflag2,
                conditions: &conditions,
                indexs: &req.indexs,
                groupby: &req.groupby,
            },
            row_limit,
        )
    }

    /// Checks `req` for `kind`: what [`Plan::new`] and the legacy protocol share.
    pub fn check(kind: Kind, req: Spec<'_>, row_limit: usize) -> Result<Plan, Refused> {
        if req.dataid != kind.dataid() {
            return Err(Refused::DataId { got: shown(req.dataid), want: kind.dataid() });
        }
        if parse_date(req.date).is_none() {
            return Err(Refused::Date(shown(req.date)));
        }
        let (h1, _) = tflag("tflag1", req.tflag1)?;
        let (h2, _) = tflag("tflag2", req.tflag2)?;
        if req.tflag1 > req.tflag2 {
            return Err(Refused::TflagOrder(req.tflag1.to_owned(), req.tflag2.to_owned()));
        }
        if req.conditions.len() > MAX_CONDITIONS {
            return Err(Refused::TooMany { what: "conditions", count: req.conditions.len(), max: MAX_CONDITIONS });
        }
        let filterable = kind.filterable();
        let mut conditions = Vec::with_capacity(req.conditions.len());
        for (index, &(field, op, val)) in req.conditions.iter().enumerate() {
            let column = filterable.find(field).ok_or_else(|| Refused::Column {
                place: format!("conditions[{index}].field"),
                name: shown(field),
                allowed: filterable.0.join(" "),
            })?;
            let op = op.map_err(|op| Refused::Op { index, op })?;
            if val.len() > MAX_VALUE_LEN {
                return Err(Refused::ValueLength { index, len: val.len() });
            }
            if val.contains('\0') {
                return Err(Refused::Nul(index));
            }
            conditions.push(Cond { column, op, value: val.to_owned() });
        }
        let indexes = list_names("indexs", req.indexs, &kind.indexes(), MAX_INDEXES)?;
        if indexes.is_empty() {
            return Err(Refused::NoIndexes);
        }
        let groupby = list_names("groupby", req.groupby, &kind.dimensions(), MAX_GROUPBY)?;
        let policy = match kind {
            Kind::Property => policy_of(&conditions),
            Kind::Stat => None,
        };
        Ok(Plan {
            kind,
            date: req.date.to_owned(),
            hours: h1.min(23)..=h2.min(23),
            tflag1: req.tflag1.to_owned(),
            tflag2: req.tflag2.to_owned(),
            conditions,
            indexes,
            groupby,
            policy,
            row_limit: row_limit.max(1),
        })
    }

    /// The hour table `hour` of this plan's date under `prefix`.
    pub fn table(&self, prefix: &str, hour: u8) -> String {
        hourly_table_name(prefix, &self.date, hour)
    }

    /// The statement for one hour table and its parameters. Fails only on a name that is not
    /// an identifier, which the allow lists and the config check rule out.
    pub fn statement(&self, dialect: Dialect, table: &str) -> Result<(String, Vec<Value>), StoreError> {
        let q = |c: &str| dialect.quote(c);
        let mut select = Vec::with_capacity(self.indexes.len() + self.groupby.len());
        for (i, c) in self.indexes.iter().enumerate() {
            select.push(format!("SUM({}) AS s{i}", q(c)?));
        }
        let mut groups = Vec::with_capacity(self.groupby.len());
        for c in &self.groupby {
            let col = q(c)?;
            groups.push(if *c == "f_date" {
                match dialect {
                    Dialect::Mysql => format!("DATE_FORMAT({col}, '%Y%m%d')"),
                    Dialect::Sqlite => format!("REPLACE({col}, '-', '')"),
                }
            } else {
                col
            });
        }
        for (i, g) in groups.iter().enumerate() {
            select.push(format!("{g} AS g{i}"));
        }
        let tflag = q("f_tflag")?;
        let mut sql = format!("SELECT {} FROM {} WHERE {tflag} >= ? AND {tflag} <= ?", select.join(", "), q(table)?);
        let mut params = Vec::with_capacity(self.conditions.len() + 3);
        params.push(Value::from(self.tflag1.as_str()));
        params.push(Value::from(self.tflag2.as_str()));
        for c in &self.conditions {
            sql.push_str(&format!(" AND {} {} ?", q(c.column)?, c.op.sql()));
            params.push(Value::from(c.value.as_str()));
        }
        if !groups.is_empty() {
            sql.push_str(" GROUP BY ");
            sql.push_str(&groups.join(", "));
        }
        // One more row than allowed tells a cut answer from a full one.
        sql.push_str(" LIMIT ?");
        params.push(Value::Int(i64::try_from(self.row_limit.saturating_add(1)).unwrap_or(i64::MAX)));
        Ok((sql, params))
    }
}

/// Upstream: when the conditions name `policy`, the text `Avg`, `Max` or `Min` in them (in that
/// order) decides the reduction for every key.
fn policy_of(conditions: &[Cond]) -> Option<Reduce> {
    if !conditions.iter().any(|c| c.column == "policy") {
        return None;
    }
    let has = |word: &str| conditions.iter().any(|c| c.value.contains(word));
    if has("Avg") {
        Some(Reduce::Avg)
    } else if has("Max") {
        Some(Reduce::Max)
    } else if has("Min") {
        Some(Reduce::Min)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tars_protocol::tars::Condition;

    pub(crate) fn stat_req() -> MonitorQueryReq {
        MonitorQueryReq {
            uid: "u".into(),
            method: "query".into(),
            dataid: "tars_stat".into(),
            date: "20261206".into(),
            tflag1: "0000".into(),
            tflag2: "2360".into(),
            conditions: vec![Condition { field: "slave_name".into(), op: OP::LIKE, val: "Probe.%".into() }],
            indexs: ["succ_count", "timeout_count", "exce_count", "total_time"].map(String::from).to_vec(),
            groupby: vec!["f_tflag".into()],
        }
    }

    #[test]
    fn tarsweb_time_series_becomes_one_bound_statement_per_hour() {
        let plan = Plan::new(Kind::Stat, &stat_req(), 100).expect("valid");
        assert_eq!(plan.hours, 0..=23);
        let (sql, params) = plan.statement(Dialect::Mysql, &plan.table("tars_stat_", 7)).expect("sql");
        assert_eq!(
            sql,
            "SELECT SUM(`succ_count`) AS s0, SUM(`timeout_count`) AS s1, SUM(`exce_count`) AS s2, \
             SUM(`total_time`) AS s3, `f_tflag` AS g0 FROM `tars_stat_2026120607` WHERE `f_tflag` >= ? \
             AND `f_tflag` <= ? AND `slave_name` LIKE ? GROUP BY `f_tflag` LIMIT ?"
        );
        assert_eq!(params, vec![Value::from("0000"), Value::from("2360"), Value::from("Probe.%"), Value::Int(101)]);
    }

    #[test]
    fn f_date_is_answered_as_yyyymmdd_on_both_backends() {
        let mut req = stat_req();
        req.groupby = vec!["f_date".into(), "interface_name".into()];
        let plan = Plan::new(Kind::Stat, &req, 10).expect("valid");
        let (my, _) = plan.statement(Dialect::Mysql, "t").expect("sql");
        assert!(my.contains("DATE_FORMAT(`f_date`, '%Y%m%d') AS g0, `interface_name` AS g1"), "{my}");
        assert!(my.contains("GROUP BY DATE_FORMAT(`f_date`, '%Y%m%d'), `interface_name`"), "{my}");
        let (lite, _) = plan.statement(Dialect::Sqlite, "t").expect("sql");
        assert!(lite.contains("REPLACE(\"f_date\", '-', '') AS g0"), "{lite}");
    }

    #[test]
    fn hours_follow_the_tflags() {
        let mut req = stat_req();
        req.tflag1 = "1030".into();
        req.tflag2 = "1105".into();
        assert_eq!(Plan::new(Kind::Stat, &req, 1).expect("valid").hours, 10..=11);
        req.tflag1 = "2300".into();
        req.tflag2 = "2400".into();
        assert_eq!(Plan::new(Kind::Stat, &req, 1).expect("valid").hours, 23..=23);
    }

    #[test]
    fn anything_but_known_columns_and_well_formed_values_is_refused() {
        type Edit = Box<dyn Fn(&mut MonitorQueryReq)>;
        let cases: Vec<(&str, Edit)> = vec![
            ("dataid", Box::new(|r| r.dataid = "tars_stat; DROP TABLE x".into())),
            ("dataid", Box::new(|r| r.dataid = "tars_property".into())),
            ("date", Box::new(|r| r.date = "2026120'".into())),
            ("date", Box::new(|r| r.date = "20261332".into())),
            ("tflag1", Box::new(|r| r.tflag1 = "00' OR '1'='1".into())),
            ("tflag2", Box::new(|r| r.tflag2 = "2561".into())),
            (
                "after tflag2",
                Box::new(|r| {
                    r.tflag1 = "1200".into();
                    r.tflag2 = "1100".into();
                }),
            ),
            ("conditions[0].field", Box::new(|r| r.conditions[0].field = "1=1 OR slave_name".into())),
            ("conditions[0].field", Box::new(|r| r.conditions[0].field = "stattime".into())),
            ("conditions[0].op", Box::new(|r| r.conditions[0].op = OP(9))),
            ("conditions[0].val", Box::new(|r| r.conditions[0].val = "x".repeat(600))),
            ("indexs[1]", Box::new(|r| r.indexs[1] = "succ_count) FROM t_ecstatus; --".into())),
            ("indexs[0]", Box::new(|r| r.indexs[0] = "master_name".into())),
            ("named twice", Box::new(|r| r.indexs[1] = "succ_count".into())),
            ("indexs", Box::new(|r| r.indexs.clear())),
            ("groupby[0]", Box::new(|r| r.groupby[0] = "f_tflag, (SELECT 1)".into())),
            ("groupby[0]", Box::new(|r| r.groupby[0] = "succ_count".into())),
            ("groupby", Box::new(|r| r.groupby = vec!["f_date".into(); 9])),
        ];
        for (what, edit) in cases {
            let mut req = stat_req();
            edit(&mut req);
            let e = Plan::new(Kind::Stat, &req, 1).expect_err(what);
            assert!(e.to_string().contains(what), "{what}: {e}");
        }
    }

    #[test]
    fn property_policy_comes_from_a_policy_condition() {
        let mut req = stat_req();
        req.dataid = "tars_property".into();
        req.indexs = vec!["value".into()];
        req.conditions = vec![Condition { field: "policy".into(), op: OP::LIKE, val: "Max".into() }];
        assert_eq!(Plan::new(Kind::Property, &req, 1).expect("valid").policy, Some(Reduce::Max));
        req.conditions[0].val = "Sum".into();
        assert_eq!(Plan::new(Kind::Property, &req, 1).expect("valid").policy, None);
        req.conditions[0].field = "property_name".into();
        req.conditions[0].val = "Avg".into();
        assert_eq!(Plan::new(Kind::Property, &req, 1).expect("valid").policy, None);
    }
}
