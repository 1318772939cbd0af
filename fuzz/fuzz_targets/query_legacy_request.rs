//! The legacy JSON query protocol (`tars_query::legacy`, `NoTarsObj`), on any bytes:
//!
//! - the framer never panics, and fed the bytes in pieces (cut where the input's first byte
//!   says) it gives exactly what it gives fed them at once: the same packet end or the same
//!   refusal;
//! - the request parser, the filter parser and the planner never panic, for both services;
//! - every accepted filter names one identifier, one operator and one value, and every plan
//!   built from a request names only allow-listed columns (its statement is the RPC path's).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tars_query::legacy::{self, JsonFramer};
use tars_query::Kind;
use tars_sql::Dialect;

fuzz_target!(|data: &[u8]| {
    let Some((&step, input)) = data.split_first() else { return };
    let whole = JsonFramer::default().feed(input);
    let step = usize::from(step).max(1);
    let mut framer = JsonFramer::default();
    let mut pieces = None;
    let mut end = 0;
    while end < input.len() {
        end = (end + step).min(input.len());
        match framer.feed(&input[..end]) {
            Ok(None) => {}
            other => {
                pieces = Some(other);
                break;
            }
        }
    }
    let pieces = pieces.unwrap_or(Ok(None));
    match (&whole, &pieces) {
        // Fed in pieces, an object may be found before bytes after it arrive; whole, those
        // bytes are refused. Otherwise the two agree.
        (Err(legacy::FramingError::Trailing(_)), Ok(Some(n))) => assert!(*n < input.len()),
        _ => assert_eq!(whole, pieces),
    }
    if let Ok(Some(n)) = whole {
        assert!(n > 0 && n <= input.len());
    }

    let packet = match whole {
        Ok(Some(n)) => &input[..n],
        _ => input,
    };
    let Ok(req) = legacy::parse_request(packet) else { return };
    for f in &req.filter {
        if let Ok(p) = legacy::parse_predicate(f) {
            assert!(!p.column.is_empty());
            assert!(p.column.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'), "{f:?}");
        }
    }
    for kind in [Kind::Stat, Kind::Property] {
        let Ok(q) = legacy::plan(kind, &req, 10) else { continue };
        let allowed = kind.filterable();
        for c in q.plan.conditions.iter().map(|c| c.column).chain(q.plan.indexes.iter().copied()) {
            assert!(allowed.contains(c), "{c}");
        }
        for g in &q.plan.groupby {
            assert!(kind.dimensions().contains(g), "{g}");
        }
        for dialect in [Dialect::Mysql, Dialect::Sqlite] {
            let table = q.plan.table(kind.default_prefix(), *q.plan.hours.start());
            let (sql, params) = q.plan.statement(dialect, &table).expect("statement");
            assert_eq!(sql.matches('?').count(), params.len(), "{sql}");
        }
    }
});
