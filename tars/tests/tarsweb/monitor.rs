//! TarsWeb's monitor data routes, `stat_monitor_data` and `property_monitor_data`, over our
//! tarsquerystat and tarsqueryproperty: TarsWeb finds their `QueryObj` through the registry,
//! calls `MonitorQuery.query` for the day and the comparison day, and shows figures that must
//! equal the same sums taken by direct SQL over the hourly tables (with TarsWeb's own
//! arithmetic from `index/service/monitor/MonitorStatService.js` / `MonitorPropertyService.js`
//! applied to them).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use tars::Stores;
use tars_sql::schema::monitor::{hourly_table_name, property_table, stat_table, PROPERTY_PREFIX, STAT_PREFIX};
use tars_sql::{params, Store};

use super::TarsWeb;

/// The day shown and the comparison day.
const THE: &str = "20200102";
const PRE: &str = "20200101";
/// Hours with data: the day has two, the comparison day one.
const HOURS: [(&str, u8); 3] = [(THE, 10), (THE, 11), (PRE, 10)];
const SLAVES: [&str; 2] = ["Web.EchoServer", "Web.Other"];
const INTERFACES: [&str; 2] = ["echo", "ping"];
const IPS: [&str; 2] = ["10.0.0.1", "10.0.0.2"];

fn dashed(date: &str) -> String {
    format!("{}-{}-{}", &date[..4], &date[4..6], &date[6..])
}

/// Rows the writers would have written: every slave, interface and caller IP in three
/// windows of each hour, the counts varying by row.
fn write_fixture(stores: &Stores) {
    let mut i = 0u64;
    for (date, hour) in HOURS {
        let stat = hourly_table_name(STAT_PREFIX, date, hour);
        let property = hourly_table_name(PROPERTY_PREFIX, date, hour);
        let (mut stat_rows, mut property_rows) = (Vec::new(), Vec::new());
        for minute in [0, 5, 30] {
            let tflag = format!("{hour:02}{minute:02}");
            for slave in SLAVES {
                for interface in INTERFACES {
                    for ip in IPS {
                        i += 1;
                        let (succ, timeout, exce) = (10 + i * 7 % 13, i % 3, i % 4);
                        stat_rows.push(params![
                            dashed(date),
                            tflag.clone(),
                            "Web.Caller",
                            slave,
                            interface,
                            ip,
                            succ as i64,
                            timeout as i64,
                            exce as i64,
                            ((succ + timeout + exce) * (3 + i % 5)) as i64
                        ]);
                    }
                }
            }
            for (name, policy) in [("queue", "Max"), ("queue", "Sum"), ("conns", "Max")] {
                for ip in IPS {
                    i += 1;
                    let value = format!("{}", 1 + i * 11 % 17);
                    property_rows.push(params![dashed(date), tflag.clone(), SLAVES[0], ip, name, policy, value]);
                }
            }
        }
        let stat_def = stat_table(stat.clone());
        stores
            .stat
            .run_blocking(move |s| {
                tars_sql::create_table(s, &stat_def)?;
                let sql = format!(
                    "INSERT INTO {stat} (f_date, f_tflag, master_name, slave_name, interface_name, master_ip, \
                     succ_count, timeout_count, exce_count, total_time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                );
                tars_sql::transaction(s, |s| {
                    for row in &stat_rows {
                        s.exec(&sql, row)?;
                    }
                    Ok(())
                })
            })
            .unwrap();
        let property_def = property_table(property.clone());
        stores
            .property
            .run_blocking(move |s| {
                tars_sql::create_table(s, &property_def)?;
                let sql = format!(
                    "INSERT INTO {property} (f_date, f_tflag, master_name, master_ip, property_name, policy, value) \
                     VALUES (?, ?, ?, ?, ?, ?, ?)"
                );
                tars_sql::transaction(s, |s| {
                    for row in &property_rows {
                        s.exec(&sql, row)?;
                    }
                    Ok(())
                })
            })
            .unwrap();
    }
}

/// `SELECT <keys>, <sums> ... WHERE <filter> GROUP BY <keys>` on every hour table of `date`
/// that exists, one map per table: key (the group values joined by `,`) to the sums.
fn per_table(
    store: &Store,
    prefix: &str,
    date: &str,
    keys: (&str, usize),
    sums: &str,
    filter: &str,
    args: &[&str],
) -> Vec<BTreeMap<String, Vec<f64>>> {
    let mut out = Vec::new();
    for (d, hour) in HOURS.iter().filter(|(d, _)| *d == date) {
        let table = hourly_table_name(prefix, d, *hour);
        let (keys, nkeys) = keys;
        let sql = format!("SELECT {keys}, {sums} FROM {table} WHERE {filter} GROUP BY {keys}");
        let args: Vec<tars_sql::Value> = args.iter().map(|a| (*a).into()).collect();
        let rows = store.run_blocking(move |s| s.query(&sql, &args)).unwrap();
        let nsums = sums.split(',').count();
        let mut map = BTreeMap::new();
        for row in rows {
            let key: Vec<String> = (0..nkeys).map(|k| row.get::<String>(k).unwrap()).collect();
            let values = (nkeys..nkeys + nsums).map(|k| row.get::<f64>(k).unwrap()).collect();
            map.insert(key.join(","), values);
        }
        out.push(map);
    }
    out
}

/// The stat sums of a day: element-wise over the hours.
fn summed(tables: Vec<BTreeMap<String, Vec<f64>>>) -> BTreeMap<String, Vec<f64>> {
    let mut total: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for t in tables {
        for (k, v) in t {
            let e = total.entry(k).or_insert_with(|| vec![0.0; v.len()]);
            e.iter_mut().zip(&v).for_each(|(a, b)| *a += b);
        }
    }
    total
}

/// TarsWeb's comparison keys: a grouped key of the comparison day is shown on the day's date.
fn on_the_day(map: BTreeMap<String, Vec<f64>>) -> BTreeMap<String, Vec<f64>> {
    map.into_iter().map(|(k, v)| (k.replacen(PRE, THE, 1), v)).collect()
}

fn number(v: &Value, field: &str) -> f64 {
    let text = v[field].as_str().unwrap_or_else(|| panic!("{field} in {v}"));
    text.trim_end_matches('%').parse().unwrap_or_else(|_| panic!("{field} = {text:?} in {v}"))
}

fn assert_near(got: f64, want: f64, what: &str, row: &Value) {
    assert!((got - want).abs() < 0.006, "{what}: TarsWeb shows {got}, SQL gives {want}: {row}");
}

/// TarsWeb's row key for the groups it asked for.
fn row_key(row: &Value, groups: &[&str]) -> String {
    groups
        .iter()
        .map(|g| match *g {
            "f_tflag" => row["show_time"].as_str().unwrap().to_owned(),
            "f_date" => row["show_date"].as_str().unwrap().to_owned(),
            other => row[other].as_str().unwrap().to_owned(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn check_stat(web: &TarsWeb, stores: &Stores, group_by: Option<&str>) {
    let (keys, groups): (String, Vec<&str>) = match group_by {
        None => ("f_tflag".into(), vec!["f_tflag"]),
        // MySQL's DATE_FORMAT is what upstream selects f_date as.
        Some(g) => (format!("DATE_FORMAT(f_date, '%Y%m%d'), {g}"), vec!["f_date", g]),
    };
    let sums = "SUM(succ_count), SUM(timeout_count), SUM(exce_count), SUM(total_time)";
    let sql = |date| {
        summed(per_table(
            &stores.stat,
            STAT_PREFIX,
            date,
            (&keys, groups.len()),
            sums,
            "slave_name LIKE ?",
            &[SLAVES[0]],
        ))
    };
    let (the, pre_raw) = (sql(THE), sql(PRE));
    let pre = on_the_day(pre_raw.clone());
    let mut path = format!(
        "stat_monitor_data?thedate={THE}&predate={PRE}&startshowtime=0000&endshowtime=2360&slave_name={}",
        SLAVES[0]
    );
    if let Some(g) = group_by {
        path.push_str(&format!("&group_by={g}"));
    }
    let rows = web.get(&path);
    let rows = rows.as_array().unwrap_or_else(|| panic!("{path}: {rows}"));
    let want: BTreeSet<&String> = the.keys().chain(pre.keys()).collect();
    let got: BTreeSet<String> = rows.iter().map(|r| row_key(r, &groups)).collect();
    assert_eq!(got, want.into_iter().cloned().collect::<BTreeSet<_>>(), "{path}");
    assert!(got.len() >= 2, "the fixture gives several keys: {got:?}");
    let zero = vec![0.0; 4];
    for row in rows {
        let key = row_key(row, &groups);
        // TarsWeb's stat merge moves a grouped comparison key to the day's date for the list of
        // keys but looks its values up under that new key in the comparison day's answer,
        // which has it under its own date: grouped rows show the comparison day as 0. The
        // series (keyed by f_tflag alone) shows it.
        let pre_values = pre_raw.get(&key).unwrap_or(&zero);
        for (prefix, values) in [("the", the.get(&key).unwrap_or(&zero)), ("pre", pre_values)] {
            let total = values[0] + values[1] + values[2];
            assert_near(number(row, &format!("{prefix}_total_count")), total, "total", row);
            if prefix == "the" {
                assert_near(number(row, "the_avg_time"), values[3] / total, "avg time", row);
                assert_near(number(row, "the_fail_rate"), values[2] / total * 100.0, "fail rate", row);
                assert_near(number(row, "the_timeout_rate"), values[1] / total * 100.0, "timeout rate", row);
            }
        }
    }
}

/// Property: per table `SUM(value)`, then across tables the policy the filter names (upstream's
/// merge): `Max` here.
fn check_property(web: &TarsWeb, stores: &Stores, group_by: Option<&str>) {
    let (keys, groups): (String, Vec<&str>) = match group_by {
        None => ("f_tflag".into(), vec!["f_tflag"]),
        Some(g) => (format!("DATE_FORMAT(f_date, '%Y%m%d'), {g}"), vec!["f_date", g]),
    };
    let filter = "master_name LIKE ? AND policy LIKE ?";
    let sql = |date| {
        let mut best: BTreeMap<String, f64> = BTreeMap::new();
        for table in per_table(
            &stores.property,
            PROPERTY_PREFIX,
            date,
            (&keys, groups.len()),
            "SUM(value)",
            filter,
            &[SLAVES[0], "Max"],
        ) {
            for (k, v) in table {
                let e = best.entry(k).or_insert(f64::MIN);
                *e = e.max(v[0]);
            }
        }
        best
    };
    let the = sql(THE);
    let pre: BTreeMap<String, f64> = sql(PRE).into_iter().map(|(k, v)| (k.replacen(PRE, THE, 1), v)).collect();
    let mut path = format!(
        "property_monitor_data?thedate={THE}&predate={PRE}&startshowtime=0000&endshowtime=2360&master_name={}&policy=Max",
        SLAVES[0]
    );
    if let Some(g) = group_by {
        path.push_str(&format!("&group_by={g}"));
    }
    let rows = web.get(&path);
    let rows = rows.as_array().unwrap_or_else(|| panic!("{path}: {rows}"));
    let want: BTreeSet<String> = the.keys().chain(pre.keys()).cloned().collect();
    let got: BTreeSet<String> = rows.iter().map(|r| row_key(r, &groups)).collect();
    assert_eq!(got, want, "{path}");
    assert!(got.len() >= 2, "the fixture gives several keys: {got:?}");
    for row in rows {
        let key = row_key(row, &groups);
        for (field, want) in [("the_value", the.get(&key)), ("pre_value", pre.get(&key))] {
            match want {
                Some(w) => assert_near(number(row, field), *w, field, row),
                None => assert_eq!(row[field], "--", "{field}: no value that day: {row}"),
            }
        }
    }
}

/// Writes the fixture, then asks TarsWeb for the time series and a dimension of both kinds.
pub(crate) fn monitor_routes_equal_direct_sql(web: &TarsWeb, stores: &Stores) {
    write_fixture(stores);
    check_stat(web, stores, None);
    check_stat(web, stores, Some("interface_name"));
    check_property(web, stores, None);
    check_property(web, stores, Some("property_name"));
}
