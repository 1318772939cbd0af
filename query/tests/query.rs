//! tarsquerystat and tarsqueryproperty end to end: rows written into the hourly tables of real
//! databases (two per service, with different `tbname` prefixes; SQLite on every IO driver,
//! MariaDB once), `QueryObj` served on real sockets, called through the generated
//! `MonitorQueryProxy` with the requests TarsWeb sends.
//!
//! - Every answer equals what direct SQL on the same tables gives (rows read back raw and
//!   summed here): the time series by `f_tflag`, by a dimension with `f_date` first, the
//!   comparison day, a minute window, for stat and property (its policy reductions included).
//! - A dropped hour table and an unreachable database: the rest is answered, `msg` names both.
//! - Injection attempts in every field are refused or bound harmlessly; the tables stay intact.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use tars_core_net::app::{Application, Running};
use tars_core_net::client::config::ClientConfig;
use tars_core_net::client::BlockingClient;
use tars_core_net::on_every_driver;
use tars_core_net::rt::IoMode;
use tars_proto::config::Config;
use tars_proto::rpc::CallOptions;
use tars_protocol::tars::{Condition, MonitorQueryProxy, MonitorQueryReq, MonitorQueryRsp, OP};
use tars_query::{Kind, QueryService};
use tars_sql::schema::monitor::{
    hourly_table_name, property_schema, property_table, stat_schema, stat_table, PROPERTY_COLUMNS, STAT_COLUMNS,
};
use tars_sql::{InsertMode, Value};
use tars_testkit::db::TestDb;

const THE: &str = "20261206";
const PRE: &str = "20261205";

/// Hours with data, and the minutes of their labels.
const FILLED: &[(u8, &[u8])] = &[(0, &[5, 30]), (10, &[5, 10, 30, 60]), (23, &[55, 60])];

pub(crate) fn dashed(date: &str) -> String {
    format!("{}-{}-{}", &date[0..4], &date[4..6], &date[6..8])
}

/// One database of a fixture: its section name, table prefix and the database.
pub(crate) struct FixtureDb {
    pub(crate) name: &'static str,
    pub(crate) prefix: &'static str,
    pub(crate) db: TestDb,
}

pub(crate) struct Fixture {
    pub(crate) kind: Kind,
    pub(crate) dbs: Vec<FixtureDb>,
    /// Rows written per table, to check nothing was changed.
    pub(crate) counts: BTreeMap<(usize, String), usize>,
}

fn table_for(kind: Kind, name: String) -> tars_sql::schema::Table {
    match kind {
        Kind::Stat => stat_table(name),
        Kind::Property => property_table(name),
    }
}

fn stat_rows(date: &str, start: usize) -> Vec<(u8, Vec<Value>)> {
    let mut out = Vec::new();
    let mut i = start;
    for (hour, minutes) in FILLED {
        for m in *minutes {
            let tflag = format!("{hour:02}{m:02}");
            for slave in ["Probe.EchoServer", "Probe.HelloServer"] {
                for iface in ["echo", "ping"] {
                    for (master, ip) in [("Probe.Client", "10.0.0.1"), ("Web.Client", "10.0.0.2")] {
                        i += 1;
                        let n = (i * 7919 + 13) % 1000;
                        let succ = (n % 100) as i64;
                        let total = succ * 10 + (n % 3) as i64;
                        out.push((
                            *hour,
                            vec![
                                Value::from(dashed(date)),
                                Value::from(tflag.as_str()),
                                Value::from("127.0.0.1"),
                                Value::from(master),
                                Value::from(slave),
                                Value::from(iface),
                                Value::from("3.0.0"),
                                Value::from(ip),
                                Value::from("10.0.1.1"),
                                Value::Int(10_000),
                                Value::Int(if n % 4 == 0 { -1 } else { 0 }),
                                Value::Int(succ),
                                Value::Int((n % 7) as i64),
                                Value::Int((n % 5) as i64),
                                Value::from("5|1,100|2"),
                                Value::Int(total),
                                Value::Int(10),
                                Value::Int(20),
                                Value::Int(1),
                            ],
                        ));
                    }
                }
            }
        }
    }
    out
}

fn property_rows(date: &str, start: usize) -> Vec<(u8, Vec<Value>)> {
    let mut out = Vec::new();
    let mut i = start;
    for (hour, minutes) in FILLED {
        for m in *minutes {
            let tflag = format!("{hour:02}{m:02}");
            for master in ["Probe.EchoServer", "Probe.HelloServer"] {
                for ip in ["10.0.0.1", "10.0.0.2"] {
                    for (prop, policy) in [("qps", "Sum"), ("qps", "Max"), ("latency", "Avg"), ("latency", "Min")] {
                        i += 1;
                        let v = ((i * 37) % 200) as f64 * 0.25;
                        out.push((
                            *hour,
                            vec![
                                Value::from(dashed(date)),
                                Value::from(tflag.as_str()),
                                Value::from(master),
                                Value::from(ip),
                                Value::from(prop),
                                Value::from(""),
                                Value::from(""),
                                Value::from(""),
                                Value::from(policy),
                                Value::from(format!("{v}")),
                            ],
                        ));
                    }
                }
            }
        }
    }
    out
}

impl Fixture {
    /// Both days' 24 tables in every database (as the writers create them), the rows dealt
    /// round robin, every seventh row written twice (property has no unique key; stat's
    /// duplicate goes to the other database).
    pub(crate) fn new(kind: Kind, dbs: Vec<FixtureDb>) -> Fixture {
        let mut counts = BTreeMap::new();
        let n = dbs.len();
        let mut per_table: BTreeMap<(usize, String), Vec<Vec<Value>>> = BTreeMap::new();
        for (d, date) in [THE, PRE].into_iter().enumerate() {
            for (i, fdb) in dbs.iter().enumerate() {
                for hour in 0..24 {
                    let table = hourly_table_name(fdb.prefix, date, hour);
                    let def = table_for(kind, table.clone());
                    fdb.db.store.run_blocking(move |s| tars_sql::create_table(s, &def)).unwrap();
                    per_table.entry((i, table)).or_default();
                }
            }
            let rows = match kind {
                Kind::Stat => stat_rows(date, d * 1000),
                Kind::Property => property_rows(date, d * 1000),
            };
            for (r, (hour, row)) in rows.into_iter().enumerate() {
                let i = r % n;
                let table = hourly_table_name(dbs[i].prefix, date, hour);
                per_table.get_mut(&(i, table.clone())).unwrap().push(row.clone());
                if r % 7 == 0 {
                    let (j, mut dup) = match kind {
                        Kind::Stat => ((i + 1) % n, row),
                        Kind::Property => (i, row),
                    };
                    if kind == Kind::Stat && j == i {
                        // One database: make the duplicate a distinct primary key.
                        dup[2] = Value::from("127.0.0.2");
                    }
                    let t = hourly_table_name(dbs[j].prefix, date, hour);
                    per_table.get_mut(&(j, t)).unwrap().push(dup);
                }
            }
        }
        let columns = match kind {
            Kind::Stat => STAT_COLUMNS,
            Kind::Property => PROPERTY_COLUMNS,
        };
        for ((i, table), rows) in per_table {
            counts.insert((i, table.clone()), rows.len());
            let t = table.clone();
            dbs[i]
                .db
                .store
                .run_blocking(move |s| tars_sql::insert_rows(s, &t, columns, &rows, InsertMode::Plain, 200))
                .unwrap_or_else(|e| panic!("{table}: {e}"));
        }
        Fixture { kind, dbs, counts }
    }

    pub(crate) fn config(&self, extra_dbs: &str) -> String {
        let (server, root) = match self.kind {
            Kind::Stat => ("tarsquerystat", "statdb"),
            Kind::Property => ("tarsqueryproperty", "propertydb"),
        };
        let obj = self.kind.servant();
        let mut sections = String::new();
        for d in &self.dbs {
            sections.push_str(&format!("<{0}>\nurl={1}\ntbname={2}\n</{0}>\n", d.name, d.db.url, d.prefix));
        }
        sections.push_str(extra_dbs);
        format!(
            "<tars>\n<application>\n<server>\napp=tars\nserver={server}\nlocal=tcp -h 127.0.0.1 -p 0 -t 10000\n\
             <{obj}Adapter>\nendpoint=tcp -h 127.0.0.1 -p 0 -t 60000\nservant={obj}\n</{obj}Adapter>\n\
             </server>\n</application>\n<{root}>\n{sections}</{root}>\n</tars>\n"
        )
    }

    /// What direct SQL gives for `req`: every existing hour table's rows read back raw with
    /// the conditions, grouped and summed here; property's per-table sums reduced by
    /// upstream's rules.
    pub(crate) fn expected(&self, req: &MonitorQueryReq, skip: &[(usize, u8)]) -> BTreeMap<String, Vec<f64>> {
        let h1: u8 = req.tflag1[0..2].parse().unwrap();
        let h2: u8 = req.tflag2[0..2].parse::<u8>().unwrap().min(23);
        let mut parts: BTreeMap<String, Vec<Vec<f64>>> = BTreeMap::new();
        for (i, fdb) in self.dbs.iter().enumerate() {
            for hour in h1..=h2 {
                if skip.contains(&(i, hour)) {
                    continue;
                }
                let table = hourly_table_name(fdb.prefix, &req.date, hour);
                let cols: Vec<&str> = req.groupby.iter().chain(req.indexs.iter()).map(String::as_str).collect();
                let mut sql = format!("SELECT {} FROM {table} WHERE f_tflag >= ? AND f_tflag <= ?", cols.join(", "));
                let mut params = vec![Value::from(req.tflag1.as_str()), Value::from(req.tflag2.as_str())];
                for c in &req.conditions {
                    let op = ["=", ">", ">=", "<", "<=", "LIKE"][c.op.0 as usize];
                    sql.push_str(&format!(" AND {} {op} ?", c.field));
                    params.push(Value::from(c.val.as_str()));
                }
                let mut sums: BTreeMap<String, Vec<f64>> = BTreeMap::new();
                for row in fdb.db.query(&sql, params) {
                    let vals = row.values();
                    let key: Vec<String> = (0..req.groupby.len())
                        .map(|g| match &vals[g] {
                            Value::Text(s) => s.replace('-', ""),
                            Value::Int(i) => i.to_string(),
                            other => panic!("{other:?}"),
                        })
                        .collect();
                    let nums: Vec<f64> = (0..req.indexs.len())
                        .map(|j| match &vals[req.groupby.len() + j] {
                            Value::Text(s) => s.parse().unwrap(),
                            Value::Int(i) => *i as f64,
                            Value::UInt(u) => *u as f64,
                            Value::Float(f) => *f,
                            other => panic!("{other:?}"),
                        })
                        .collect();
                    let e = sums.entry(key.join(",")).or_insert_with(|| vec![0.0; nums.len()]);
                    for (a, b) in e.iter_mut().zip(nums) {
                        *a += b;
                    }
                }
                for (k, v) in sums {
                    parts.entry(k).or_default().push(v);
                }
            }
        }
        let policy = req
            .conditions
            .iter()
            .any(|c| c.field == "policy")
            .then(|| ["Avg", "Max", "Min"].into_iter().find(|w| req.conditions.iter().any(|c| c.val.contains(w))));
        parts
            .into_iter()
            .map(|(key, parts)| {
                let width = req.indexs.len();
                let values = (0..width)
                    .map(|j| {
                        let col = parts.iter().map(|p| p[j]);
                        let how = match self.kind {
                            Kind::Stat => "Sum",
                            Kind::Property => policy.flatten().unwrap_or_else(|| {
                                ["Avg", "Min", "Max"].into_iter().find(|w| key.contains(w)).unwrap_or("Sum")
                            }),
                        };
                        match how {
                            "Avg" => col.clone().sum::<f64>() / parts.len() as f64,
                            "Max" => col.fold(f64::MIN, f64::max),
                            "Min" => col.fold(f64::MAX, f64::min),
                            _ => col.sum(),
                        }
                    })
                    .collect();
                (key, values)
            })
            .collect()
    }

    /// Every table still holds what was written, and `t_ecstatus` is there.
    pub(crate) fn assert_intact(&self) {
        for ((i, table), n) in &self.counts {
            let db = &self.dbs[*i].db;
            assert!(db.table_exists(table), "{table} exists");
            assert_eq!(db.count(table), *n, "{table} keeps its rows");
        }
        for d in &self.dbs {
            assert!(d.db.table_exists("t_ecstatus"));
        }
    }
}

pub(crate) fn start(config: &str, io: IoMode, kind: Kind) -> Running {
    Application::new(Config::parse(config).unwrap())
        .unwrap()
        .io(io)
        .shards(2)
        .service(QueryService::new(kind))
        .start()
        .unwrap()
}

pub(crate) fn stop(running: Running) {
    running.shutdown();
    running.wait().unwrap();
}

pub(crate) struct Client {
    client: BlockingClient,
    object: String,
    servant: &'static str,
}

impl Client {
    pub(crate) fn new(running: &Running, io: IoMode, kind: Kind) -> Client {
        let port = running.server().addr(&format!("{}Adapter", kind.servant())).unwrap().port();
        Client {
            client: BlockingClient::start(ClientConfig::default(), io).unwrap(),
            object: format!("{}@tcp -h 127.0.0.1 -p {port} -t 20000", kind.servant()),
            servant: kind.servant(),
        }
    }

    pub(crate) fn query(&self, req: &MonitorQueryReq) -> MonitorQueryRsp {
        let (object, servant, req) = (self.object.clone(), self.servant, req.clone());
        self.client.run(move |comm| async move {
            let options = CallOptions { timeout_ms: 20_000, ..CallOptions::default() };
            let p = MonitorQueryProxy::new(comm.proxy(&object).unwrap(), servant).with_options(options);
            let mut rsp = MonitorQueryRsp::default();
            let ret = p.query(&req, &mut rsp).await.unwrap();
            assert_eq!(ret, 0, "the call returns 0; the outcome is rsp.ret");
            rsp
        })
    }
}

fn cond(field: &str, op: OP, val: &str) -> Condition {
    Condition { field: field.into(), op, val: val.into() }
}

/// The request TarsWeb's `MonitorStatService.callRpc` builds.
pub(crate) fn stat_req(date: &str, conditions: Vec<Condition>, groupby: &[&str]) -> MonitorQueryReq {
    MonitorQueryReq {
        uid: "3f1c2a00-b3c1-11ef-8000-000000000000".into(),
        method: "query".into(),
        dataid: "tars_stat".into(),
        date: date.into(),
        tflag1: "0000".into(),
        tflag2: "2360".into(),
        conditions,
        indexs: ["succ_count", "timeout_count", "exce_count", "total_time"].map(String::from).to_vec(),
        groupby: groupby.iter().map(|s| (*s).to_owned()).collect(),
    }
}

/// `MonitorPropertyService.callRpc`'s request.
pub(crate) fn property_req(date: &str, conditions: Vec<Condition>, groupby: &[&str]) -> MonitorQueryReq {
    MonitorQueryReq {
        dataid: "tars_property".into(),
        indexs: vec!["value".into()],
        ..stat_req(date, conditions, groupby)
    }
}

fn assert_close(got: &BTreeMap<String, Vec<f64>>, want: &BTreeMap<String, Vec<f64>>, what: &str) {
    assert!(!want.is_empty(), "{what}: the fixture has rows for this query");
    assert_eq!(got.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>(), "{what}: keys");
    for (k, w) in want {
        let g = &got[k];
        assert_eq!(g.len(), w.len(), "{what}: {k}");
        for (a, b) in g.iter().zip(w) {
            assert!((a - b).abs() < 1e-9, "{what}: {k}: got {g:?}, want {w:?}");
        }
    }
}

fn check(client: &Client, fx: &Fixture, req: &MonitorQueryReq, what: &str) -> MonitorQueryRsp {
    let rsp = client.query(req);
    assert_eq!(rsp.ret, 0, "{what}: {}", rsp.msg);
    assert_eq!(rsp.msg, "", "{what}");
    let n = fx.dbs.len() as i32;
    assert_eq!((rsp.active_db, rsp.total_db, rsp.ret_threads.clone()), (n, n, vec![0; fx.dbs.len()]), "{what}");
    assert_close(&rsp.result, &fx.expected(req, &[]), what);
    rsp
}

/// `t_ecstatus` as the writers leave it: db1 flushed up to 1005, db2 up to 0960 (far in the
/// future, so later than any floor), and an old marker every floor excludes.
fn flush_markers(fx: &Fixture) {
    let sql = "INSERT INTO t_ecstatus (appname, action, checkint, lasttime) VALUES (?, 0, 5, ?)";
    fx.dbs[0].db.exec(sql, vec!["tars_stat_10.0.0.1".into(), "99991231 1005".into()]);
    fx.dbs[0].db.exec(sql, vec!["tars_stat_10.0.0.9".into(), "20000101 0005".into()]);
    fx.dbs[1].db.exec(sql, vec!["tars_stat_10.0.0.2".into(), "99991231 0960".into()]);
}

fn stat_answers(fx: &Fixture, io: IoMode) {
    flush_markers(fx);
    let running = start(&fx.config(""), io, Kind::Stat);
    let client = Client::new(&running, io, Kind::Stat);
    let echo = || vec![cond("slave_name", OP::LIKE, "Probe.EchoServer")];
    // The time series, today and the comparison day.
    let rsp = check(&client, fx, &stat_req(THE, echo(), &["f_tflag"]), "time series");
    assert_eq!(rsp.result.len(), 8, "one key per label: {:?}", rsp.result.keys());
    assert!(rsp.result.contains_key("1060") && rsp.result.contains_key("0005"));
    assert_eq!(rsp.last_time, "99991231 0960", "the earliest recent flush over the databases");
    check(&client, fx, &stat_req(PRE, echo(), &["f_tflag"]), "comparison day");
    // By a dimension, f_date first: keys "20261206,echo".
    let rsp = check(&client, fx, &stat_req(THE, echo(), &["f_date", "interface_name"]), "by interface");
    assert_eq!(rsp.result.keys().collect::<Vec<_>>(), ["20261206,echo", "20261206,ping"]);
    check(&client, fx, &stat_req(PRE, echo(), &["f_date", "interface_name"]), "by interface, comparison day");
    // Several conditions, LIKE patterns, other dimensions.
    let conds = vec![cond("master_name", OP::LIKE, "Probe.%"), cond("interface_name", OP::LIKE, "ping")];
    check(&client, fx, &stat_req(THE, conds, &["f_date", "master_ip"]), "by master_ip");
    check(&client, fx, &stat_req(THE, vec![], &["f_date", "slave_name"]), "no conditions");
    check(&client, fx, &stat_req(THE, vec![cond("return_value", OP::LT, "0")], &["slave_name"]), "failed calls");
    // A minute window inside hour 10: only its labels.
    let mut req = stat_req(THE, echo(), &["f_tflag"]);
    req.tflag1 = "1010".into();
    req.tflag2 = "1030".into();
    let rsp = check(&client, fx, &req, "minute window");
    assert_eq!(rsp.result.keys().collect::<Vec<_>>(), ["1010", "1030"]);
    // No group-by: one key, the day's totals; equal to the time series' sum.
    let all = client.query(&stat_req(THE, echo(), &[]));
    let series = client.query(&stat_req(THE, echo(), &["f_tflag"]));
    let total: f64 = series.result.values().map(|v| v[0]).sum();
    assert_eq!(all.result[""][0], total);
    // The admin command counts what happened.
    let admin = running.server().addr("AdminAdapter").unwrap();
    let text = tars_testkit::raw::admin_notify(admin, tars_query::QUERY_COMMAND).unwrap();
    assert!(text.starts_with("tarsquerystat (tars_stat)"), "{text}");
    assert!(text.contains("queries: 10 (refused 0, failed 0, partial 0, cut 0)"), "{text}");
    stop(running);
}

fn property_answers(fx: &Fixture, io: IoMode) {
    let running = start(&fx.config(""), io, Kind::Property);
    let client = Client::new(&running, io, Kind::Property);
    for date in [THE, PRE] {
        // The time series of one property per policy: the policy condition decides.
        for policy in ["Sum", "Max", "Avg", "Min"] {
            let prop = if matches!(policy, "Sum" | "Max") { "qps" } else { "latency" };
            let conds = vec![
                cond("master_name", OP::LIKE, "Probe.EchoServer"),
                cond("property_name", OP::LIKE, prop),
                cond("policy", OP::LIKE, policy),
            ];
            check(&client, fx, &property_req(date, conds, &["f_tflag"]), &format!("{date} {policy} series"));
        }
        // Grouped by policy: the key decides.
        let rsp = check(
            &client,
            fx,
            &property_req(date, vec![cond("master_name", OP::LIKE, "Probe.%")], &["f_date", "policy"]),
            "by policy",
        );
        assert_eq!(rsp.result.len(), 4, "{:?}", rsp.result.keys());
        check(&client, fx, &property_req(date, vec![], &["f_date", "master_ip"]), "by master_ip");
        check(&client, fx, &property_req(date, vec![], &["f_tflag", "property_name"]), "f_tflag first");
    }
    stop(running);
}

fn sqlite_fixture(kind: Kind, tag: &str) -> Fixture {
    let (schema, prefixes): (fn() -> tars_sql::migrate::SchemaSet, [&'static str; 2]) = match kind {
        Kind::Stat => (stat_schema, ["tars_stat_", "t_stat_b_"]),
        Kind::Property => (property_schema, ["tars_property_", "t_prop_b_"]),
    };
    let dbs = ["db1", "db2"]
        .into_iter()
        .zip(prefixes)
        .map(|(name, prefix)| FixtureDb {
            name,
            prefix,
            db: TestDb::sqlite_migrated(&format!("{tag}-{name}"), schema()),
        })
        .collect();
    Fixture::new(kind, dbs)
}

fn mysql_fixture(kind: Kind, tag: &str) -> Fixture {
    let (schema, prefixes): (fn() -> tars_sql::migrate::SchemaSet, [&'static str; 2]) = match kind {
        Kind::Stat => (stat_schema, ["tars_stat_", "t_stat_b_"]),
        Kind::Property => (property_schema, ["tars_property_", "t_prop_b_"]),
    };
    let dbs = ["db1", "db2"]
        .into_iter()
        .zip(prefixes)
        .map(|(name, prefix)| FixtureDb {
            name,
            prefix,
            db: TestDb::mysql_migrated("tarsquery", &format!("{tag}_{name}"), schema()),
        })
        .collect();
    Fixture::new(kind, dbs)
}

fn stat_on_sqlite(io: IoMode) {
    stat_answers(&sqlite_fixture(Kind::Stat, "qstat"), io);
}

fn property_on_sqlite(io: IoMode) {
    property_answers(&sqlite_fixture(Kind::Property, "qprop"), io);
}

/// Two databases, one hour table dropped in the second, and a third that cannot be reached:
/// the rest is answered and `msg` names both gaps.
fn gaps(io: IoMode) {
    let fx = sqlite_fixture(Kind::Stat, "qgap");
    let req = stat_req(THE, vec![cond("slave_name", OP::LIKE, "Probe.%")], &["f_tflag"]);
    let full = fx.expected(&req, &[]);
    let dropped = hourly_table_name("t_stat_b_", THE, 10);
    fx.dbs[1].db.exec(&format!("DROP TABLE {dropped}"), vec![]);
    // Nothing listens on port 1: every statement fails at once.
    let unreachable = "<db3>\nurl=mysql://tars:tars@127.0.0.1:1/tars_stat\n</db3>\n";
    let running = start(&fx.config(unreachable), io, Kind::Stat);
    let client = Client::new(&running, io, Kind::Stat);
    let rsp = client.query(&req);
    assert_eq!(rsp.ret, 0, "{}", rsp.msg);
    assert_eq!((rsp.active_db, rsp.total_db, rsp.ret_threads.clone()), (2, 3, vec![0, 0, -1]));
    assert!(rsp.msg.contains(&"db2: no table t_stat_b_20261206HH for hours 10".to_string()), "{}", rsp.msg);
    assert!(rsp.msg.contains("db3: 24 of 24 hours failed (00-23)"), "{}", rsp.msg);
    assert!(!rsp.msg.contains("db1"), "{}", rsp.msg);
    assert_close(&rsp.result, &fx.expected(&req, &[(1, 10)]), "the rest");
    // Hour 10 still has db1's rows, without db2's.
    assert!(rsp.result["1005"][0] < full["1005"][0], "db2's hour 10 is missing from the answer");
    // A day without tables: no rows, every hour named, not a failure.
    let rsp = client.query(&stat_req("20200101", vec![], &["f_tflag"]));
    assert_eq!(rsp.ret, 0, "{}", rsp.msg);
    assert!(rsp.result.is_empty());
    assert!(rsp.msg.contains("db1: no table tars_stat_20200101HH for hours 00-23"), "{}", rsp.msg);
    // Only the unreachable database: -1.
    stop(running);
    let only = format!(
        "<tars>\n<application>\n<server>\napp=tars\nserver=tarsquerystat\n<{0}Adapter>\nendpoint=tcp -h 127.0.0.1 -p 0 \
         -t 60000\nservant={0}\n</{0}Adapter>\n</server>\n</application>\n<statdb>\n{unreachable}</statdb>\n</tars>\n",
        Kind::Stat.servant()
    );
    let running = start(&only, io, Kind::Stat);
    let client = Client::new(&running, io, Kind::Stat);
    let rsp = client.query(&req);
    assert_eq!((rsp.ret, rsp.active_db, rsp.ret_threads.clone()), (-1, 0, vec![-1]), "{}", rsp.msg);
    assert!(rsp.msg.contains("db3"), "{}", rsp.msg);
    stop(running);
}

/// Injection attempts in every field: names are refused (-1, `msg` naming them), values are
/// bound (they match nothing); the tables are intact afterwards.
fn injection(io: IoMode) {
    let fx = sqlite_fixture(Kind::Stat, "qinj");
    let running = start(&fx.config(""), io, Kind::Stat);
    let client = Client::new(&running, io, Kind::Stat);
    let base = || stat_req(THE, vec![cond("slave_name", OP::LIKE, "Probe.EchoServer")], &["f_tflag"]);
    let evil_names = [
        "slave_name = '' OR 1=1 --",
        "slave_name; DROP TABLE t_ecstatus",
        "(SELECT 1)",
        "`slave_name`",
        "slave_name\u{0}",
        "SLAVE_NAME",
        "stattime",
    ];
    let mut refused = Vec::<(MonitorQueryReq, &str)>::new();
    for evil in evil_names {
        let mut r = base();
        r.conditions[0].field = evil.into();
        refused.push((r, "conditions[0].field"));
        let mut r = base();
        r.indexs[2] = evil.into();
        refused.push((r, "indexs[2]"));
        let mut r = base();
        r.groupby = vec!["f_date".into(), evil.into()];
        refused.push((r, "groupby[1]"));
    }
    let mut r = base();
    r.dataid = "tars_stat.t_ecstatus; DROP TABLE t_ecstatus; --".into();
    refused.push((r, "dataid"));
    let mut r = base();
    r.date = "20261206'; DROP TABLE t_ecstatus; --".into();
    refused.push((r, "date"));
    let mut r = base();
    r.tflag1 = "0000' OR '1'='1".into();
    refused.push((r, "tflag1"));
    let mut r = base();
    r.tflag2 = "23;--".into();
    refused.push((r, "tflag2"));
    let mut r = base();
    r.conditions[0].val = "Probe.EchoServer\u{0}' OR '1'='1".into();
    refused.push((r, "conditions[0].val"));
    let mut r = base();
    r.conditions[0].op = OP(77);
    refused.push((r, "conditions[0].op"));
    for (req, what) in &refused {
        let rsp = client.query(req);
        assert_eq!(rsp.ret, -1, "{what} refused: {req:?}");
        assert!(rsp.msg.contains(what), "{what}: {}", rsp.msg);
        assert!(rsp.result.is_empty());
    }
    // Values are bound: they match nothing and break nothing.
    for evil in
        ["' OR '1'='1", "Probe.EchoServer' OR slave_name LIKE '%", "%'; DROP TABLE t_ecstatus; --", "\\' OR 1=1 #"]
    {
        let mut r = base();
        r.conditions[0].val = evil.into();
        let rsp = client.query(&r);
        assert_eq!(rsp.ret, 0, "{evil}: {}", rsp.msg);
        assert!(rsp.result.is_empty(), "{evil} matched rows: {:?}", rsp.result);
    }
    // uid and method are opaque.
    let mut r = base();
    r.uid = "'; DROP TABLE t_ecstatus; --".into();
    r.method = "drop".into();
    assert_eq!(client.query(&r).result, client.query(&base()).result);
    assert!(!client.query(&base()).result.is_empty());
    fx.assert_intact();
    stop(running);
}

on_every_driver! {
    stat_sqlite => stat_on_sqlite;
    property_sqlite => property_on_sqlite;
    gaps_sqlite => gaps;
    injection_sqlite => injection;
}

#[test]
fn stat_and_property_on_mariadb() {
    let io = IoMode::EpollEt;
    let fx = mysql_fixture(Kind::Stat, "stat");
    stat_answers(&fx, io);
    fx.assert_intact();
    let fx = mysql_fixture(Kind::Property, "prop");
    property_answers(&fx, io);
    fx.assert_intact();
}
