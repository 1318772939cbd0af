//! `MonitorQuery.query` requests into the query planner (`tars_query::plan`), for both
//! services: a `MonitorQueryReq` decoded from the bytes as the generated servant reads it, and
//! one built from the bytes with names drawn mostly from the real columns (so plans are
//! accepted often). The planner never panics, and every accepted plan's statement, for every
//! hour and both dialects, names only allow-listed columns and the hour's table: every quoted
//! identifier is one of them, everything else in the text is the planner's own keywords,
//! aliases and literals, and there is one bound parameter per `?`.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use tars_proto::codec::Struct;
use tars_proto::rpc::ParamReader;
use tars_protocol::tars::{Condition, MonitorQueryReq, OP};
use tars_query::plan::Plan;
use tars_query::Kind;
use tars_sql::schema::monitor::{PROPERTY_COLUMNS, STAT_COLUMNS};
use tars_sql::Dialect;

/// What a request may be built of besides arbitrary text and the tables' columns
/// ([`STAT_COLUMNS`], [`PROPERTY_COLUMNS`]): other names and values.
const OTHER_WORDS: &[&str] = &[
    "stattime",
    "tars_stat",
    "tars_property",
    "20261206",
    "0000",
    "2360",
    "1205",
    "Avg",
    "Max",
    "x` FROM t; --",
    "a\" OR 1",
    "f_tflag, (SELECT 1)",
    "",
];

fn word(i: usize) -> &'static str {
    let n = STAT_COLUMNS.len() + PROPERTY_COLUMNS.len() + OTHER_WORDS.len();
    let i = i % n;
    STAT_COLUMNS.iter().chain(PROPERTY_COLUMNS).chain(OTHER_WORDS).nth(i).copied().unwrap_or("")
}

/// The planner's own words: keywords, functions, aliases.
const KEYWORDS: &[&str] =
    &["SELECT", "SUM", "AS", "FROM", "WHERE", "AND", "GROUP", "BY", "LIMIT", "LIKE", "DATE_FORMAT", "REPLACE"];

struct Bits<'a>(&'a [u8]);

impl Bits<'_> {
    fn byte(&mut self) -> u8 {
        let (b, rest) = self.0.split_first().map_or((0, &[][..]), |(b, r)| (*b, r));
        self.0 = rest;
        b
    }

    fn text(&mut self) -> String {
        let b = self.byte();
        if b < 200 {
            return word(usize::from(b)).to_owned();
        }
        let len = usize::from(self.byte() % 24).min(self.0.len());
        let (s, rest) = self.0.split_at(len);
        self.0 = rest;
        String::from_utf8_lossy(s).into_owned()
    }

    fn list(&mut self, max: u8) -> Vec<String> {
        (0..self.byte() % max).map(|_| self.text()).collect()
    }
}

fn built(data: &[u8]) -> MonitorQueryReq {
    let mut b = Bits(data);
    let dataid = if b.byte() % 2 == 0 { "tars_stat".to_owned() } else { "tars_property".to_owned() };
    let (date, tflag1, tflag2) = (b.text(), b.text(), b.text());
    let conditions = (0..b.byte() % 6)
        .map(|_| Condition { field: b.text(), op: OP(i32::from(b.byte() % 8) - 1), val: b.text() })
        .collect();
    MonitorQueryReq {
        uid: String::new(),
        method: "query".into(),
        dataid,
        date,
        tflag1,
        tflag2,
        conditions,
        indexs: b.list(6),
        groupby: b.list(5),
    }
}

/// Checks one statement: its identifiers, its words and its placeholders.
fn check_sql(sql: &str, params: usize, allowed: &[&'static str], table: &str, quote: char) {
    let mut rest = sql;
    let mut outside = String::new();
    while let Some(start) = rest.find(quote) {
        outside.push_str(&rest[..start]);
        outside.push(' ');
        let after = &rest[start + 1..];
        let end = after.find(quote).unwrap_or_else(|| panic!("unterminated identifier in {sql}"));
        let ident = &after[..end];
        assert!(ident == table || allowed.contains(&ident), "identifier {ident:?} is not allow-listed: {sql}");
        rest = &after[end + 1..];
    }
    outside.push_str(rest);
    // The only literals the planner writes: f_date's format.
    let outside = outside.replace("'%Y%m%d'", " ").replace("'-'", " ").replace("''", " ");
    let mut placeholders = 0;
    for word in outside.split(|c: char| " ,()".contains(c)).filter(|w| !w.is_empty()) {
        let alias =
            |p: char| word.strip_prefix(p).is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if word == "?" {
            placeholders += 1;
        } else {
            assert!(
                KEYWORDS.contains(&word)
                    || ["=", "<>", ">", ">=", "<", "<="].contains(&word)
                    || alias('s')
                    || alias('g'),
                "{word:?} is not the planner's: {sql}"
            );
        }
    }
    assert_eq!(placeholders, params, "one bound value per placeholder: {sql}");
}

fn plan_all(req: &MonitorQueryReq) {
    for kind in [Kind::Stat, Kind::Property] {
        let Ok(plan) = Plan::new(kind, req, 100) else { continue };
        let filterable = kind.filterable();
        for c in &plan.conditions {
            assert!(filterable.contains(c.column), "{}", c.column);
        }
        assert!(!plan.indexes.is_empty());
        assert!(plan.indexes.iter().all(|c| kind.indexes().contains(c)));
        assert!(plan.groupby.iter().all(|c| kind.dimensions().contains(c)));
        assert!(plan.hours.end() <= &23 && plan.hours.start() <= plan.hours.end());
        let mut allowed = filterable.0.clone();
        allowed.push("f_tflag");
        for hour in plan.hours.clone() {
            let table = plan.table(kind.default_prefix(), hour);
            for (dialect, quote) in [(Dialect::Mysql, '`'), (Dialect::Sqlite, '"')] {
                let (sql, params) = plan.statement(dialect, &table).expect("allow-listed names always quote");
                check_sql(&sql, params.len(), &allowed, &table, quote);
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // As the generated servant reads `query(MonitorQueryReq req, …)`, and the struct alone.
    let bytes = Bytes::copy_from_slice(data);
    if let Ok(mut p) = ParamReader::new(1, &bytes) {
        if let Ok(req) = p.read::<MonitorQueryReq>(1, "req") {
            plan_all(&req);
        }
    }
    if let Ok(req) = MonitorQueryReq::decode(data) {
        plan_all(&req);
    }
    plan_all(&built(data));
});
