//! The legacy JSON protocol end to end: `NoTarsObj` on a `protocol=not_tars` adapter, over
//! rows written into the hourly tables of two databases per service (different `tbname`
//! prefixes; SQLite on every IO driver, MariaDB once), asked with plain sockets exactly as
//! TarsWeb 1.5.1's `TCPClient.js` asks (one JSON write, read until the server closes).
//!
//! - Answers equal direct SQL on the same tables (rows read back raw and summed here): the
//!   time series by `f_tflag`, by a dimension, the comparison day, a minute window; property
//!   with its policy reductions; `timecheck`.
//! - A dropped hour table and an unreachable database: the rest is answered, the status lines
//!   say what is missing.
//! - Injection attempts in every field, malformed, oversized and trailing input are refused
//!   with `Ret:-1` and a reason naming them; the tables are intact afterwards.
//! - Framing on the socket: a request split byte by byte is answered; one without its `}`
//!   beyond the limit is refused and closed.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use tars_core_net::app::{Application, Running};
use tars_core_net::on_every_driver;
use tars_core_net::rt::IoMode;
use tars_proto::config::Config;
use tars_query::legacy::MAX_REQUEST;
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

fn dashed(date: &str) -> String {
    format!("{}-{}-{}", &date[0..4], &date[4..6], &date[6..8])
}

struct Fixture {
    kind: Kind,
    /// Section name, table prefix, database.
    dbs: Vec<(&'static str, &'static str, TestDb)>,
    counts: BTreeMap<(usize, String), usize>,
}

fn stat_row(date: &str, tflag: &str, slave: &str, iface: &str, master: &str, n: usize) -> Vec<Value> {
    let succ = (n % 100) as i64;
    vec![
        Value::from(dashed(date)),
        Value::from(tflag),
        Value::from("127.0.0.1"),
        Value::from(master),
        Value::from(slave),
        Value::from(iface),
        Value::from("3.0.0"),
        Value::from("10.0.0.1"),
        Value::from("10.0.1.1"),
        Value::Int(10_000),
        Value::Int(0),
        Value::Int(succ),
        Value::Int((n % 7) as i64),
        Value::Int((n % 5) as i64),
        Value::from("5|1,100|2"),
        Value::Int(succ * 10 + (n % 3) as i64),
        Value::Int(10),
        Value::Int(20),
        Value::Int(1),
    ]
}

fn property_row(date: &str, tflag: &str, master: &str, prop: &str, policy: &str, n: usize) -> Vec<Value> {
    let v = ((n * 37) % 200) as f64 * 0.25;
    vec![
        Value::from(dashed(date)),
        Value::from(tflag),
        Value::from(master),
        Value::from("10.0.0.1"),
        Value::from(prop),
        Value::from(""),
        Value::from(""),
        Value::from(""),
        Value::from(policy),
        Value::from(format!("{v}")),
    ]
}

impl Fixture {
    /// 24 tables per day in every database, rows dealt round robin (property: every fifth
    /// row twice, as it has no unique key).
    fn new(kind: Kind, dbs: Vec<(&'static str, &'static str, TestDb)>) -> Fixture {
        let mut per_table: BTreeMap<(usize, String), Vec<Vec<Value>>> = BTreeMap::new();
        let mut n = 0;
        for date in [THE, PRE] {
            for (i, (_, prefix, db)) in dbs.iter().enumerate() {
                for hour in 0..24 {
                    let table = hourly_table_name(prefix, date, hour);
                    let def = match kind {
                        Kind::Stat => stat_table(table.clone()),
                        Kind::Property => property_table(table.clone()),
                    };
                    db.store.run_blocking(move |s| tars_sql::create_table(s, &def)).unwrap();
                    per_table.entry((i, table)).or_default();
                }
            }
            for (hour, minutes) in FILLED {
                for m in *minutes {
                    let tflag = format!("{hour:02}{m:02}");
                    let mut rows = Vec::new();
                    match kind {
                        Kind::Stat => {
                            for slave in ["Probe.EchoServer", "Probe.HelloServer", "Legacy.CgiServer"] {
                                for iface in ["echo", "ping"] {
                                    for master in ["Probe.Client", "Web.Client"] {
                                        n += 1;
                                        rows.push(stat_row(date, &tflag, slave, iface, master, n * 7919 + 13));
                                    }
                                }
                            }
                        }
                        Kind::Property => {
                            for master in ["Probe.EchoServer", "Probe.HelloServer"] {
                                for (prop, policy) in
                                    [("qps", "Sum"), ("qps", "Max"), ("latency", "Avg"), ("latency", "Min")]
                                {
                                    n += 1;
                                    let row = property_row(date, &tflag, master, prop, policy, n);
                                    if n % 5 == 0 {
                                        rows.push(row.clone());
                                    }
                                    rows.push(row);
                                }
                            }
                        }
                    }
                    for (r, row) in rows.into_iter().enumerate() {
                        let i = (r + n) % dbs.len();
                        per_table.get_mut(&(i, hourly_table_name(dbs[i].1, date, *hour))).unwrap().push(row);
                    }
                }
            }
        }
        let columns = match kind {
            Kind::Stat => STAT_COLUMNS,
            Kind::Property => PROPERTY_COLUMNS,
        };
        let mut counts = BTreeMap::new();
        for ((i, table), rows) in per_table {
            counts.insert((i, table.clone()), rows.len());
            let t = table.clone();
            dbs[i]
                .2
                .store
                .run_blocking(move |s| tars_sql::insert_rows(s, &t, columns, &rows, InsertMode::Plain, 200))
                .unwrap();
        }
        Fixture { kind, dbs, counts }
    }

    fn config(&self, extra: &str) -> String {
        let (server, root) = match self.kind {
            Kind::Stat => ("tarsquerystat", "statdb"),
            Kind::Property => ("tarsqueryproperty", "propertydb"),
        };
        let obj = self.kind.legacy_servant();
        let mut sections = String::new();
        for (name, prefix, db) in &self.dbs {
            sections.push_str(&format!("<{name}>\nurl={}\ntbname={prefix}\n</{name}>\n", db.url));
        }
        sections.push_str(extra);
        format!(
            "<tars>\n<application>\n<server>\napp=tars\nserver={server}\n\
             <{obj}Adapter>\nendpoint=tcp -h 127.0.0.1 -p 0 -t 60000\nservant={obj}\nprotocol=not_tars\n</{obj}Adapter>\n\
             </server>\n</application>\n<notarsslavename>\nLegacy.CgiServer\n</notarsslavename>\n\
             <{root}>\n{sections}</{root}>\n</tars>\n"
        )
    }

    /// Direct SQL: every hour table's rows between the tflags with `conds` (column, SQL
    /// operator, value) read back raw, summed per key and table here, then across tables
    /// (stat), or reduced by upstream's policy rules (property). `skip`: (database, hour)
    /// tables left out.
    #[allow(clippy::too_many_arguments)]
    fn expected(
        &self,
        date: &str,
        tflags: (&str, &str),
        conds: &[(&str, &str, &str)],
        groupby: &[&str],
        indexs: &[&str],
        skip: &[(usize, u8)],
    ) -> BTreeMap<String, Vec<f64>> {
        let h1: u8 = tflags.0[0..2].parse().unwrap();
        let h2: u8 = tflags.1[0..2].parse::<u8>().unwrap().min(23);
        let mut parts: BTreeMap<String, Vec<Vec<f64>>> = BTreeMap::new();
        for (i, (_, prefix, db)) in self.dbs.iter().enumerate() {
            for hour in (h1..=h2).filter(|h| !skip.contains(&(i, *h))) {
                let table = hourly_table_name(prefix, date, hour);
                let cols: Vec<&str> = groupby.iter().chain(indexs).copied().collect();
                let mut sql = format!("SELECT {} FROM {table} WHERE f_tflag >= ? AND f_tflag <= ?", cols.join(", "));
                let mut params = vec![Value::from(tflags.0), Value::from(tflags.1)];
                for (c, op, v) in conds {
                    sql.push_str(&format!(" AND {c} {op} ?"));
                    params.push(Value::from(*v));
                }
                let mut sums: BTreeMap<String, Vec<f64>> = BTreeMap::new();
                for row in db.query(&sql, params) {
                    let vals = row.values();
                    let key: Vec<String> = (0..groupby.len())
                        .map(|g| match &vals[g] {
                            Value::Text(s) => s.replace('-', ""),
                            other => panic!("{other:?}"),
                        })
                        .collect();
                    let nums: Vec<f64> = (0..indexs.len())
                        .map(|j| match &vals[groupby.len() + j] {
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
        let policy = conds
            .iter()
            .any(|c| c.0 == "policy")
            .then(|| ["Avg", "Max", "Min"].into_iter().find(|w| conds.iter().any(|c| c.2.contains(w))))
            .flatten();
        parts
            .into_iter()
            .map(|(key, parts)| {
                let how = match self.kind {
                    Kind::Stat => "Sum",
                    Kind::Property => policy.unwrap_or_else(|| {
                        ["Avg", "Min", "Max"].into_iter().find(|w| key.contains(w)).unwrap_or("Sum")
                    }),
                };
                let values = (0..indexs.len())
                    .map(|j| {
                        let col = parts.iter().map(|p| p[j]);
                        match how {
                            "Avg" => col.sum::<f64>() / parts.len() as f64,
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

    fn assert_intact(&self) {
        for ((i, table), n) in &self.counts {
            let db = &self.dbs[*i].2;
            assert!(db.table_exists(table), "{table} exists");
            assert_eq!(db.count(table), *n, "{table} keeps its rows");
        }
        for (_, _, db) in &self.dbs {
            assert!(db.table_exists("t_ecstatus"));
        }
    }
}

fn sqlite_fixture(kind: Kind, tag: &str) -> Fixture {
    let (schema, prefixes): (fn() -> tars_sql::migrate::SchemaSet, [&'static str; 2]) = match kind {
        Kind::Stat => (stat_schema, ["tars_stat_", "t_stat_b_"]),
        Kind::Property => (property_schema, ["tars_property_", "t_prop_b_"]),
    };
    let dbs = ["db1", "db2"]
        .into_iter()
        .zip(prefixes)
        .map(|(name, prefix)| (name, prefix, TestDb::sqlite_migrated(&format!("{tag}-{name}"), schema())))
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
        .map(|(name, prefix)| (name, prefix, TestDb::mysql_migrated("tarslegacy", &format!("{tag}_{name}"), schema())))
        .collect();
    Fixture::new(kind, dbs)
}

fn start(config: &str, io: IoMode, kind: Kind) -> Running {
    Application::new(Config::parse(config).unwrap())
        .unwrap()
        .io(io)
        .shards(2)
        .service(QueryService::new(kind))
        .start()
        .unwrap()
}

fn stop(running: Running) {
    running.shutdown();
    running.wait().unwrap();
}

fn addr(running: &Running, kind: Kind) -> std::net::SocketAddr {
    running.server().addr(&format!("{}Adapter", kind.legacy_servant())).unwrap()
}

/// What TarsWeb 1.5.1's `TCPClient.js` does: one write, then everything until the server
/// closes.
fn ask(running: &Running, kind: Kind, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr(running, kind)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    // A refused request may be answered and closed before all of it is written.
    let _ = s.write_all(request);
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    String::from_utf8(out).unwrap()
}

/// An answer taken apart as TarsWeb 1.5.1 takes it apart.
#[derive(Debug)]
struct Parsed {
    last_time: String,
    active: usize,
    total: usize,
    status: Vec<String>,
    rows: BTreeMap<String, Vec<f64>>,
}

fn parse(text: &str, groupby: usize) -> Parsed {
    let lines: Vec<&str> = text.split('\n').collect();
    assert_eq!(lines.last(), Some(&""), "ends with a newline: {text:?}");
    let lines = &lines[..lines.len() - 1];
    assert_eq!(lines[0], "Ret:0", "{text}");
    assert_eq!(lines.last(), Some(&"endline"), "{text}");
    let value = |line: &str, key: &str| line.strip_prefix(key).unwrap_or_else(|| panic!("{key} in {text}")).to_owned();
    let total: usize = value(lines[3], "TotalDb:").parse().unwrap();
    let status: Vec<String> = lines[4..4 + total].iter().map(|s| (*s).to_owned()).collect();
    let count: usize = value(lines[4 + total], "linecount:").parse().unwrap();
    assert_eq!(lines.len(), 4 + total + 1 + count + 1, "{text}");
    let mut rows = BTreeMap::new();
    for line in &lines[5 + total..5 + total + count] {
        let body = line.strip_suffix(',').unwrap_or_else(|| panic!("trailing comma: {line}"));
        let parts: Vec<&str> = body.split(',').collect();
        let key = parts[..groupby].join(",");
        let values = parts[groupby..].iter().map(|v| v.parse().unwrap()).collect();
        assert!(rows.insert(key, values).is_none(), "one line per key: {line}");
    }
    Parsed {
        last_time: value(lines[1], "lasttime:"),
        active: value(lines[2], "ActiveDb:").parse().unwrap(),
        total,
        status,
        rows,
    }
}

/// A request as TarsWeb 1.5.1 writes it (`mysql.escape`d values).
fn request(dataid: &str, filter: &[&str], groupby: &[&str], indexs: &[&str]) -> String {
    let list = |v: &[&str]| v.iter().map(|s| format!("{:?}", s)).collect::<Vec<_>>().join(",");
    format!(
        "{{\"groupby\":[{}],\"method\":\"query\",\"dataid\":\"{dataid}\",\"filter\":[{}],\"indexs\":[{}]}}",
        list(groupby),
        list(filter),
        list(indexs)
    )
}

const STAT_INDEXS: &[&str] = &["succ_count", "timeout_count", "exce_count", "total_time"];

fn assert_close(got: &BTreeMap<String, Vec<f64>>, want: &BTreeMap<String, Vec<f64>>, exact: bool, what: &str) {
    assert!(!want.is_empty(), "{what}: the fixture has rows for this query");
    assert_eq!(got.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>(), "{what}: keys");
    for (k, w) in want {
        let g = &got[k];
        assert_eq!(g.len(), w.len(), "{what}: {k}");
        for (a, b) in g.iter().zip(w) {
            let tolerance = if exact { 0.0 } else { 1e-5 };
            assert!((a - b).abs() <= tolerance, "{what}: {k}: got {g:?}, want {w:?}");
        }
    }
}

/// The queries TarsWeb 1.5.1's monitor page makes for stat: the time series of a server
/// today and on the comparison day, by interface, a minute window; then `timecheck`.
fn stat_answers(fx: &Fixture, io: IoMode) {
    let sql = "INSERT INTO t_ecstatus (appname, action, checkint, lasttime) VALUES (?, 0, 5, ?)";
    fx.dbs[0].2.exec(sql, vec!["tars_stat_10.0.0.1".into(), "99991231 1005".into()]);
    fx.dbs[1].2.exec(sql, vec!["tars_stat_10.0.0.2".into(), "99991231 0960".into()]);
    let running = start(&fx.config(""), io, Kind::Stat);
    for date in [THE, PRE] {
        let day = format!("f_date='{date}'");
        let filter = [day.as_str(), "f_tflag>='0000'", "f_tflag<='2360'", "slave_name like 'Probe.EchoServer'"];
        let text = ask(&running, Kind::Stat, request("tars_stat", &filter, &["f_tflag"], STAT_INDEXS).as_bytes());
        let got = parse(&text, 1);
        assert_eq!((got.active, got.total), (2, 2));
        assert_eq!(got.status, ["ret:0 iDb:0", "ret:0 iDb:1"]);
        assert_eq!(got.last_time, "99991231 0960", "the earliest recent flush over the databases");
        let want = fx.expected(
            date,
            ("0000", "2360"),
            &[("slave_name", "LIKE", "Probe.EchoServer")],
            &["f_tflag"],
            STAT_INDEXS,
            &[],
        );
        assert_close(&got.rows, &want, true, &format!("{date} time series"));
        assert_eq!(got.rows.len(), 8, "one line per label");

        let by = [day.as_str(), "f_tflag>='0000'", "f_tflag<='2360'", "slave_name like 'Probe.%'"];
        let text =
            ask(&running, Kind::Stat, request("tars_stat", &by, &["f_date", "interface_name"], STAT_INDEXS).as_bytes());
        let want = fx.expected(
            date,
            ("0000", "2360"),
            &[("slave_name", "LIKE", "Probe.%")],
            &["f_date", "interface_name"],
            STAT_INDEXS,
            &[],
        );
        assert_close(&parse(&text, 2).rows, &want, true, &format!("{date} by interface"));
    }
    // A minute window, the strict bound kept as a condition; `indexs` left to its default.
    let window = [&format!("f_date='{THE}'")[..], "f_tflag>'1005'", "f_tflag<='1030'"];
    let text = ask(&running, Kind::Stat, request("tars_stat", &window, &["f_tflag"], &[]).as_bytes());
    let want = fx.expected(THE, ("1010", "1030"), &[], &["f_tflag"], &["succ_count"], &[]);
    assert_close(&parse(&text, 1).rows, &want, true, "minute window");
    // `istars=1` leaves out the slaves listed in /tars<notarsslavename>, `istars=0` keeps only them.
    let all = [&format!("f_date='{THE}'")[..], "master_name like '%'"];
    let by_slave = |extra: &str| {
        let mut f = all.to_vec();
        f.push(extra);
        parse(&ask(&running, Kind::Stat, request("tars_stat", &f, &["slave_name"], &[]).as_bytes()), 1).rows
    };
    let want =
        fx.expected(THE, ("0000", "2360"), &[("master_name", "LIKE", "%")], &["slave_name"], &["succ_count"], &[]);
    let (tars, not_tars) = (by_slave("istars=1"), by_slave("istars = '0'"));
    assert_eq!(tars.keys().collect::<Vec<_>>(), ["Probe.EchoServer", "Probe.HelloServer"]);
    assert_eq!(not_tars.keys().collect::<Vec<_>>(), ["Legacy.CgiServer"]);
    assert_eq!(tars["Probe.EchoServer"], want["Probe.EchoServer"]);
    assert_eq!(not_tars["Legacy.CgiServer"], want["Legacy.CgiServer"]);
    // timecheck.
    let text = ask(&running, Kind::Stat, br#"{"method":"timecheck","dataid":"tars_stat"}"#);
    assert_eq!(text, "lasttime:99991231 0960\nendline\n");
    stop(running);
}

/// Property: each policy's series (the condition decides), and by policy (the key decides).
fn property_answers(fx: &Fixture, io: IoMode) {
    let running = start(&fx.config(""), io, Kind::Property);
    for date in [THE, PRE] {
        let day = format!("f_date='{date}'");
        for policy in ["Sum", "Max", "Avg", "Min"] {
            let prop = if matches!(policy, "Sum" | "Max") { "qps" } else { "latency" };
            let (p, q) = (format!("property_name like '{prop}'"), format!("policy like '{policy}'"));
            let filter =
                [day.as_str(), "f_tflag>='0000'", "f_tflag<='2360'", "master_name like 'Probe.EchoServer'", &p, &q];
            let text =
                ask(&running, Kind::Property, request("tars_property", &filter, &["f_tflag"], &["value"]).as_bytes());
            let conds = [
                ("master_name", "LIKE", "Probe.EchoServer"),
                ("property_name", "LIKE", prop),
                ("policy", "LIKE", policy),
            ];
            let want = fx.expected(date, ("0000", "2360"), &conds, &["f_tflag"], &["value"], &[]);
            assert_close(&parse(&text, 1).rows, &want, false, &format!("{date} {policy}"));
        }
        let filter = [day.as_str(), "master_name like 'Probe.%'"];
        let text = ask(
            &running,
            Kind::Property,
            request("tars_property", &filter, &["f_date", "policy"], &["value"]).as_bytes(),
        );
        let want = fx.expected(
            date,
            ("0000", "2360"),
            &[("master_name", "LIKE", "Probe.%")],
            &["f_date", "policy"],
            &["value"],
            &[],
        );
        let got = parse(&text, 2);
        assert_close(&got.rows, &want, false, "by policy");
        assert_eq!(got.rows.len(), 4);
        // Upstream's number text: no trailing zeros, at most five decimals.
        for line in text.lines().filter(|l| l.starts_with(date)) {
            let v = line.trim_end_matches(',').rsplit(',').next().unwrap();
            assert!(!v.ends_with('0') || !v.contains('.'), "{line}");
            assert!(v.split('.').nth(1).is_none_or(|d| d.len() <= 5), "{line}");
        }
    }
    stop(running);
}

fn stat_on_sqlite(io: IoMode) {
    let fx = sqlite_fixture(Kind::Stat, "lstat");
    stat_answers(&fx, io);
    fx.assert_intact();
}

fn property_on_sqlite(io: IoMode) {
    let fx = sqlite_fixture(Kind::Property, "lprop");
    property_answers(&fx, io);
    fx.assert_intact();
}

/// One hour table dropped in the second database and a third that cannot be reached: the
/// rest is answered, each status line says what its database is missing.
fn gaps(io: IoMode) {
    let fx = sqlite_fixture(Kind::Stat, "lgap");
    fx.dbs[1].2.exec(&format!("DROP TABLE {}", hourly_table_name("t_stat_b_", THE, 10)), vec![]);
    let unreachable = "<db3>\nurl=mysql://tars:tars@127.0.0.1:1/tars_stat\n</db3>\n";
    let running = start(&fx.config(unreachable), io, Kind::Stat);
    let filter = [&format!("f_date='{THE}'")[..], "slave_name like 'Probe.%'"];
    let text = ask(&running, Kind::Stat, request("tars_stat", &filter, &["f_tflag"], STAT_INDEXS).as_bytes());
    let got = parse(&text, 1);
    assert_eq!((got.active, got.total), (2, 3));
    assert_eq!(got.status[0], "ret:0 iDb:0");
    assert_eq!(got.status[1], "ret:0 iDb:1|db2: no table t_stat_b_20261206HH for hours 10");
    assert!(
        got.status[2].starts_with("ret:-1|iDb:2|exception:db3: 24 of 24 hours failed (00-23)"),
        "{}",
        got.status[2]
    );
    let want =
        fx.expected(THE, ("0000", "2360"), &[("slave_name", "LIKE", "Probe.%")], &["f_tflag"], STAT_INDEXS, &[(1, 10)]);
    assert_close(&got.rows, &want, true, "the rest");
    stop(running);
    // Nothing answers at all: an error answer.
    let only = fx
        .config("")
        .replace(&fx.dbs[0].2.url, "mysql://tars:tars@127.0.0.1:1/a")
        .replace(&fx.dbs[1].2.url, "mysql://tars:tars@127.0.0.1:1/b");
    let running = start(&only, io, Kind::Stat);
    let text = ask(&running, Kind::Stat, request("tars_stat", &filter, &["f_tflag"], STAT_INDEXS).as_bytes());
    assert!(text.starts_with("Ret:-1\n") && text.ends_with("\nendline\n") && text.lines().count() == 3, "{text}");
    assert!(text.contains("db1") && text.contains("db2"), "{text}");
    stop(running);
}

/// Injection in every field and hostile framing: each refused with `Ret:-1` and a reason
/// naming it; the tables intact.
fn injection(io: IoMode) {
    let fx = sqlite_fixture(Kind::Stat, "linj");
    let running = start(&fx.config(""), io, Kind::Stat);
    let day = format!("f_date='{THE}'");
    let q =
        |filter: &[&str], groupby: &[&str], indexs: &[&str]| request("tars_stat", filter, groupby, indexs).into_bytes();
    let mut cases: Vec<(Vec<u8>, &str)> = vec![
        (q(&[&day, "slave_name like 'a' or 1=1"], &[], &[]), "filter[1] \"slave_name like 'a' or 1=1\" refused"),
        (q(&["f_date='x'; drop table t_ecstatus"], &[], &[]), "filter[0]"),
        (q(&[&day, "slave_name like 'a' -- '"], &[], &[]), "filter[1]"),
        (q(&[&day, "slave_name like 'a' union select 1"], &[], &[]), "filter[1]"),
        (q(&[&day, "slave_name = (select lasttime from t_ecstatus)"], &[], &[]), "filter[1]"),
        (q(&[&day, "slave_name like 'unterminated"], &[], &[]), "unterminated"),
        (q(&[&day, "password like 'x'"], &[], &[]), "column \"password\" is not one of"),
        (q(&[&day, "stattime > '0'"], &[], &[]), "column \"stattime\""),
        (q(&[&day, "1=1"], &[], &[]), "expected a column name"),
        (q(&[&day], &["f_tflag, (select 1)"], &[]), "groupby[0]"),
        (q(&[&day], &["slave_name; drop table t_ecstatus"], &[]), "groupby[0]"),
        (q(&[&day], &[], &["succ_count) from t_ecstatus; --"]), "indexs[0]"),
        (q(&[&day], &[], &["master_name"]), "indexs[0]"),
        (q(&[&day, "f_tflag>='0000'' or ''1''=''1'"], &[], &[]), "tflag1"),
        (q(&["f_date='20261206'' or 1=1 --'"], &[], &[]), "date"),
        (q(&["slave_name like 'x'"], &[], &[]), "no f_date"),
        (request("tars_stat; drop table t_ecstatus", &[&day], &[], &[]).into_bytes(), "dataid"),
        (br#"{"method":"drop","dataid":"tars_stat"}"#.to_vec(), "method \"drop\" refused"),
        (br#"{"method":"query","dataid":"tars_stat","filter":[1]}"#.to_vec(), "filter[0] refused: expected a string"),
        (br#"{"method":"query","filter":["f_date='20261206'"]} trailing"#.to_vec(), "bytes after the JSON object"),
        (b"{\"method\":\"query\",\"dataid\":\"tars_\xff\xfestat\"}".to_vec(), "invalid UTF-8"),
        (b"[\"method\"]".to_vec(), "expected a JSON object"),
        (b"GET / HTTP/1.1\r\n\r\n".to_vec(), "expected a JSON object"),
    ];
    let huge = format!("{{\"method\":\"query\",\"filter\":[\"{}\"]}}", "x".repeat(MAX_REQUEST));
    cases.push((huge.into_bytes(), "larger than 65536 bytes"));
    for (req, what) in &cases {
        let text = ask(&running, Kind::Stat, req);
        assert!(text.starts_with("Ret:-1\n") && text.ends_with("\nendline\n"), "{what}: {text:?}");
        assert_eq!(text.lines().count(), 3, "{what}: one line of reason: {text:?}");
        assert!(text.contains(what), "{what}: {text:?}");
    }
    // Values are bound: they match nothing and break nothing.
    for evil in [r"\' OR \'1\'=\'1", r"Probe.EchoServer\' OR slave_name LIKE \'%", r"%\'; DROP TABLE t_ecstatus; --"] {
        let f = format!("slave_name like '{evil}'");
        let text = ask(&running, Kind::Stat, &q(&[&day, &f], &["f_tflag"], &[]));
        assert!(parse(&text, 1).rows.is_empty(), "{evil}: {text}");
    }
    fx.assert_intact();

    // Framing on the socket: a request split byte by byte is answered like one write.
    let good = q(&[&day, "slave_name like 'Probe.EchoServer'"], &["f_tflag"], STAT_INDEXS);
    let whole = ask(&running, Kind::Stat, &good);
    assert!(!parse(&whole, 1).rows.is_empty());
    let mut s = TcpStream::connect(addr(&running, Kind::Stat)).unwrap();
    s.set_nodelay(true).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    for b in &good {
        s.write_all(&[*b]).unwrap();
    }
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert_eq!(out, whole);
    // No `}` ever: refused once past the limit, and closed.
    let mut s = TcpStream::connect(addr(&running, Kind::Stat)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut sent = 0;
    s.write_all(br#"{"method":"query","filter":[""#).unwrap();
    let chunk = vec![b'x'; 8192];
    while sent <= 2 * MAX_REQUEST {
        if s.write_all(&chunk).is_err() {
            break;
        }
        sent += chunk.len();
    }
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let out = String::from_utf8(out).unwrap();
    assert_eq!(out, "Ret:-1\nrequest refused: larger than 65536 bytes\nendline\n");
    stop(running);
}

on_every_driver! {
    stat_sqlite => stat_on_sqlite;
    property_sqlite => property_on_sqlite;
    gaps_sqlite => gaps;
    injection_sqlite => injection;
}

/// Once on MariaDB (fails, never skips, without `TARS_TEST_MYSQL_URL`).
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
