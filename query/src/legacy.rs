//! The legacy JSON protocol: `tars.tarsquerystat.NoTarsObj` / `tars.tarsqueryproperty.NoTarsObj`
//! on an adapter with `protocol=not_tars`, as upstream served it before v2.1 (TarsFramework
//! `QueryStatServer/{QueryServer,QueryImp,RequestDecoder,DbProxy}.cpp`) for TarsWeb up to 1.5.1
//! (`app/service/monitor/TCPClient.js`).
//!
//! A client connects, writes one JSON object (no length prefix, no newline), reads the text
//! answer up to `endline` and closes:
//!
//! ```text
//! {"method":"query","dataid":"tars_stat","filter":["f_date='20190101'","f_tflag>='0000'",
//!  "f_tflag<='2360'","slave_name like 'App.Server'"],"groupby":["f_tflag"],
//!  "indexs":["succ_count","timeout_count","exce_count","total_time"]}
//! ```
//!
//! ```text
//! Ret:0
//! lasttime:20200304 1035
//! ActiveDb:1
//! TotalDb:1
//! ret:0 iDb:0                one line per database: ret:-1|iDb:<i>|exception:<why> on failure
//! linecount:2
//! 0005,10,0,1,250,          the groupby values, then the indexs, each followed by a comma
//! 0010,12,1,0,300,
//! endline
//! ```
//!
//! Errors are `Ret:-1\n<why>\nendline\n`; `timecheck` is answered `lasttime:<…>\nendline\n`.
//!
//! What differs from upstream, on purpose:
//!
//! - **Framing.** Upstream took the bytes so far as the request once a `}` appeared anywhere
//!   and dropped what followed the last one. [`JsonFramer`] waits for one complete, balanced
//!   object (strings and escapes respected, resumable across reads), refuses anything but an
//!   object, bytes after it, and more than [`MAX_REQUEST`] bytes, each with an error answer.
//! - **Filters are parsed, not pasted.** Upstream joined the filter strings into the SQL text.
//!   Here each one must be exactly one comparison, `column op value` ([`parse_predicate`]):
//!   the column one of the hourly table's (the allow list `MonitorQuery` uses), the operator
//!   `= != <> < <= > >= like`, the value one single-quoted literal (as node's `mysql.escape`
//!   writes it, unescaped here) or a number. `OR`, `AND`, subqueries, comments, a second
//!   statement, an unterminated quote: refused, naming the filter. The request then becomes
//!   the same [`Plan`] the RPC path runs, every value bound.
//! - **One day.** `f_date` gives the day (`=`, or `>=` and `<=` of one day); upstream also
//!   walked a range of days, which no TarsWeb asks for: a range is refused. `f_tflag`
//!   predicates give the minute range as upstream's `tflag1`/`tflag2`; without them the whole
//!   day.
//! - **Gaps.** A database with a failed statement is `ret:-1|iDb:i|exception:…` but the others
//!   are answered (`Ret:0`); a missing hour table is named on its database's line after `|`
//!   (`ret:0 iDb:1|db2: no table …`), which a client reading `ret:0` still takes as success;
//!   a cut answer is named on the first status line the same way. `Ret:-1` only when no
//!   database answered.
//! - **`istars`** (`istars=1`, `istars!=0`, …) is taken out of the filters as upstream does:
//!   when `groupby` names `slave_name`, rows whose slave is listed in `/tars<notarsslavename>`
//!   (its keys) are left out (`istars=1`) or only those are kept (`istars=0`).
//! - **Property values** are written as upstream's `TC_Common::tostr(double)` of that time
//!   (`%.5f`, trailing zeros and point dropped: `2.5`, `10`); stat's as 64-bit integers.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;

use tars_core_net::server::raw::{FrameError, Framer, RawFuture, RawReply, RawServant};
use tars_proto::json::{self, JsonError, Value as Json};
use tars_proto::Bytes;

use crate::engine::{Answer, Engine};
use crate::kind::Kind;
use crate::plan::{Op, Plan, Refused, Spec, MAX_CONDITIONS, MAX_GROUPBY, MAX_INDEXES, MAX_VALUE_LEN};

/// The largest request, in bytes (TarsWeb's are a few hundred).
pub const MAX_REQUEST: usize = 64 * 1024;
/// At most this many filters (`f_date`, `f_tflag` and `istars` included).
pub const MAX_FILTERS: usize = MAX_CONDITIONS + 8;
/// The longest filter string, in bytes.
pub const MAX_FILTER_LEN: usize = 1024;
/// Brackets may nest this deep in a request (TarsWeb's nest 2).
pub const MAX_NESTING: usize = 8;

/// Why the bytes received can never be a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    /// Something other than an object (or whitespace before it).
    #[error("request refused: expected a JSON object, found {found} at byte {offset}")]
    NotObject {
        /// What was found.
        found: String,
        /// Where.
        offset: usize,
    },
    /// Bytes other than whitespace after the object.
    #[error("request refused: bytes after the JSON object, at byte {0}")]
    Trailing(usize),
    /// Brackets nested deeper than [`MAX_NESTING`].
    #[error("request refused: nested deeper than {MAX_NESTING}, at byte {0}")]
    TooDeep(usize),
}

/// Finds the end of one JSON object, resuming where the last call stopped (sans-IO).
///
/// Only the structure is scanned (brackets, strings, escapes); [`parse_request`] checks the
/// rest. Each call must be given the previous call's bytes and more, until a request is found.
#[derive(Debug, Clone, Default)]
pub struct JsonFramer {
    scanned: usize,
    depth: usize,
    in_string: bool,
    escaped: bool,
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

fn describe(b: u8) -> String {
    if b.is_ascii_graphic() {
        format!("{:?}", char::from(b))
    } else {
        format!("byte 0x{b:02x}")
    }
}

impl JsonFramer {
    /// `Ok(Some(n))`: the first `n` bytes are one object; `Ok(None)`: more are needed.
    pub fn feed(&mut self, buf: &[u8]) -> Result<Option<usize>, FramingError> {
        let start = self.scanned.min(buf.len());
        for (i, &b) in buf.iter().enumerate().skip(start) {
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if b == b'\\' {
                    self.escaped = true;
                } else if b == b'"' {
                    self.in_string = false;
                }
                continue;
            }
            let outside = self.depth == 0;
            let not_object = || FramingError::NotObject { found: describe(b), offset: i };
            match b {
                _ if is_ws(b) => {}
                b'{' | b'[' => {
                    if outside && b != b'{' {
                        return Err(not_object());
                    }
                    self.depth += 1;
                    if self.depth > MAX_NESTING {
                        return Err(FramingError::TooDeep(i));
                    }
                }
                b'}' | b']' => {
                    if outside {
                        return Err(not_object());
                    }
                    self.depth -= 1;
                    if self.depth == 0 {
                        let end = i + 1;
                        if let Some(extra) = buf[end..].iter().position(|b| !is_ws(*b)) {
                            return Err(FramingError::Trailing(end + extra));
                        }
                        *self = JsonFramer::default();
                        return Ok(Some(end));
                    }
                }
                _ if outside => return Err(not_object()),
                b'"' => self.in_string = true,
                _ => {}
            }
        }
        self.scanned = buf.len();
        Ok(None)
    }
}

impl Framer for JsonFramer {
    fn frame(&mut self, buf: &[u8]) -> Result<Option<usize>, FrameError> {
        self.feed(buf).map_err(|e| FrameError::Malformed(e.to_string()))
    }
}

/// What a request asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `query`: the data.
    Query,
    /// `timecheck`: only `lasttime`.
    TimeCheck,
}

/// A request as sent, before its filters are parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `method`.
    pub method: Method,
    /// `dataid` (empty when absent).
    pub dataid: String,
    /// `filter`: one comparison each.
    pub filter: Vec<String>,
    /// `groupby`.
    pub groupby: Vec<String>,
    /// `indexs` (empty: the service's default).
    pub indexs: Vec<String>,
}

/// Why a request was refused; the text is the error answer's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// Not JSON (this includes bytes that are not UTF-8).
    #[error("request refused: not JSON: {0}")]
    Json(#[from] JsonError),
    /// JSON, but not an object.
    #[error("request refused: expected a JSON object, got {0}")]
    NotObject(&'static str),
    /// A required member is absent.
    #[error("{0} refused: missing")]
    Missing(&'static str),
    /// A member of the wrong type.
    #[error("{field} refused: expected {expected}, got {got}")]
    Type {
        /// `method`, `filter[2]`, …
        field: String,
        /// What it must be.
        expected: &'static str,
        /// What it was.
        got: &'static str,
    },
    /// A method other than `query` and `timecheck`.
    #[error("method {0:?} refused: expected \"query\" or \"timecheck\"")]
    Method(String),
    /// Too many items in a list.
    #[error("{what} refused: {count} given, at most {max}")]
    TooMany {
        /// `filter`, `groupby`, `indexs`.
        what: &'static str,
        /// How many.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A filter that is not one allowed comparison.
    #[error("filter[{index}] {text:?} refused: {why}")]
    Predicate {
        /// Its position.
        index: usize,
        /// The filter as sent (at most 64 characters).
        text: String,
        /// What is wrong with it.
        why: String,
    },
    /// The filters as a whole do not say what to read.
    #[error("filter refused: {0}")]
    Filter(String),
    /// The plan's checks (dataid, date, tflags, indexs, groupby).
    #[error(transparent)]
    Plan(#[from] Refused),
}

/// At most 64 characters of `s`, for a refusal.
fn shown(s: &str) -> String {
    s.chars().take(64).collect()
}

fn strings(
    obj: &std::collections::BTreeMap<String, Json>,
    field: &'static str,
    max: usize,
) -> Result<Vec<String>, RequestError> {
    let item = |i: usize, v: &Json| match v {
        Json::String(s) if s.len() <= MAX_FILTER_LEN => Ok(s.clone()),
        Json::String(_) => Err(RequestError::Type {
            field: format!("{field}[{i}]"),
            expected: "a string of at most 1024 bytes",
            got: "a longer one",
        }),
        other => Err(RequestError::Type { field: format!("{field}[{i}]"), expected: "a string", got: other.kind() }),
    };
    match obj.get(field) {
        None | Some(Json::Null) => Ok(Vec::new()),
        // Upstream also took a single string for a one-item list.
        Some(v @ Json::String(_)) => Ok(vec![item(0, v)?]),
        Some(Json::Array(items)) => {
            if items.len() > max {
                return Err(RequestError::TooMany { what: field, count: items.len(), max });
            }
            items.iter().enumerate().map(|(i, v)| item(i, v)).collect()
        }
        Some(other) => {
            Err(RequestError::Type { field: field.to_owned(), expected: "an array of strings", got: other.kind() })
        }
    }
}

/// Parses one request (one object, as [`JsonFramer`] delimits it). Sans-IO.
pub fn parse_request(packet: &[u8]) -> Result<Request, RequestError> {
    let doc = json::parse(packet)?;
    let obj = doc.as_object().ok_or(RequestError::NotObject(doc.kind()))?;
    let text = |field: &'static str| match obj.get(field) {
        None => Ok(None),
        Some(Json::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(RequestError::Type { field: field.to_owned(), expected: "a string", got: other.kind() }),
    };
    let method = match text("method")?.ok_or(RequestError::Missing("method"))?.as_str() {
        "query" => Method::Query,
        "timecheck" => Method::TimeCheck,
        other => return Err(RequestError::Method(shown(other))),
    };
    Ok(Request {
        method,
        dataid: text("dataid")?.unwrap_or_default(),
        filter: strings(obj, "filter", MAX_FILTERS)?,
        groupby: strings(obj, "groupby", MAX_GROUPBY)?,
        indexs: strings(obj, "indexs", MAX_INDEXES)?,
    })
}

/// One filter: `column op value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Predicate {
    /// The column as written (not yet checked against the allow list).
    pub column: String,
    /// The comparison.
    pub op: Op,
    /// The value, unescaped.
    pub value: String,
}

/// Parses one filter: exactly one comparison of a column with a single-quoted literal (SQL
/// and `mysql.escape` escapes: `''`, `\'`, `\\`, `\0`, `\n`, …) or a number, and nothing
/// else. The error says what is wrong. Sans-IO.
pub fn parse_predicate(text: &str) -> Result<Predicate, String> {
    let s = text.as_bytes();
    let mut i = 0;
    let skip_ws = |i: &mut usize| {
        while *i < s.len() && s[*i].is_ascii_whitespace() {
            *i += 1;
        }
    };
    skip_ws(&mut i);
    let start = i;
    if i < s.len() && (s[i].is_ascii_alphabetic() || s[i] == b'_') {
        while i < s.len() && (s[i].is_ascii_alphanumeric() || s[i] == b'_') {
            i += 1;
        }
    }
    if i == start {
        return Err("expected a column name".to_owned());
    }
    let column = text[start..i].to_owned();
    skip_ws(&mut i);
    let rest = &s[i..];
    let (op, len) = if rest.starts_with(b">=") {
        (Op::Gte, 2)
    } else if rest.starts_with(b"<=") {
        (Op::Lte, 2)
    } else if rest.starts_with(b"!=") || rest.starts_with(b"<>") {
        (Op::Ne, 2)
    } else if rest.starts_with(b"<") {
        (Op::Lt, 1)
    } else if rest.starts_with(b">") {
        (Op::Gt, 1)
    } else if rest.starts_with(b"=") {
        (Op::Eq, 1)
    } else if rest.len() >= 4
        && rest[..4].eq_ignore_ascii_case(b"like")
        && rest.get(4).is_none_or(|b| !(b.is_ascii_alphanumeric() || *b == b'_'))
    {
        (Op::Like, 4)
    } else {
        return Err(format!("expected an operator (= != <> < <= > >= like) after {column}"));
    };
    i += len;
    skip_ws(&mut i);
    let value = match s.get(i) {
        Some(b'\'') => {
            let (value, end) = quoted(text, i + 1)?;
            i = end;
            value
        }
        Some(b) if b.is_ascii_digit() || *b == b'-' => {
            let start = i;
            i += usize::from(*b == b'-');
            let digits = |i: &mut usize| {
                let from = *i;
                while *i < s.len() && s[*i].is_ascii_digit() {
                    *i += 1;
                }
                *i > from
            };
            if !digits(&mut i)
                || (s.get(i) == Some(&b'.')
                    && !{
                        i += 1;
                        digits(&mut i)
                    })
            {
                return Err("malformed number".to_owned());
            }
            text[start..i].to_owned()
        }
        _ => return Err("expected a single-quoted value or a number".to_owned()),
    };
    skip_ws(&mut i);
    if i < s.len() {
        let tail: String = String::from_utf8_lossy(&s[i..]).chars().take(32).collect();
        return Err(format!(
            "unexpected {tail:?} after the value (one comparison per filter: no OR, AND, comments or statements)"
        ));
    }
    Ok(Predicate { column, op, value })
}

/// The literal that starts after the quote at `from - 1`: its value and the index after the
/// closing quote.
fn quoted(text: &str, from: usize) -> Result<(String, usize), String> {
    let mut out = String::new();
    let mut chars = text[from..].char_indices().map(|(k, c)| (from + k, c)).peekable();
    while let Some((k, c)) = chars.next() {
        match c {
            '\'' => {
                if chars.peek().is_some_and(|(_, c)| *c == '\'') {
                    chars.next();
                    out.push('\'');
                } else {
                    return Ok((out, k + 1));
                }
            }
            '\\' => match chars.next().map(|(_, c)| c) {
                Some('0') => out.push('\0'),
                Some('b') => out.push('\u{8}'),
                Some('t') => out.push('\t'),
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some('Z') => out.push('\u{1a}'),
                Some(c @ ('\'' | '"' | '\\')) => out.push(c),
                // MySQL keeps these two escaped, for LIKE.
                Some(c @ ('%' | '_')) => {
                    out.push('\\');
                    out.push(c);
                }
                Some(other) => return Err(format!("unknown escape \\{other} in the value")),
                None => return Err("unterminated quoted value".to_owned()),
            },
            _ => out.push(c),
        }
    }
    Err("unterminated quoted value".to_owned())
}

/// A checked query: the plan, and what `istars` asks.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// What runs, as `MonitorQuery.query` would run it.
    pub plan: Plan,
    /// `istars`: `Some(true)` leaves out the slaves listed in `/tars<notarsslavename>`,
    /// `Some(false)` keeps only those.
    pub tars_only: Option<bool>,
}

/// `YYYYMMDD` from `YYYYMMDD` or `YYYY-MM-DD` (MySQL compares a DATE with either).
fn day(value: &str) -> String {
    let b = value.as_bytes();
    if b.len() == 10 && b[4] == b'-' && b[7] == b'-' {
        value.replace('-', "")
    } else {
        value.to_owned()
    }
}

/// Turns a request's filters, `groupby` and `indexs` into the plan the RPC path runs.
pub fn plan(kind: Kind, req: &Request, row_limit: usize) -> Result<Query, RequestError> {
    let filterable = kind.filterable();
    let mut dates: Vec<String> = Vec::new();
    let (mut lo, mut hi): (Option<String>, Option<String>) = (None, None);
    let mut tars_only = None;
    let mut conditions: Vec<(&'static str, Op, String)> = Vec::new();
    for (index, text) in req.filter.iter().enumerate() {
        let refuse = |why: String| RequestError::Predicate { index, text: shown(text), why };
        let p = parse_predicate(text).map_err(refuse)?;
        if p.value.len() > MAX_VALUE_LEN {
            return Err(refuse(format!("the value has {} bytes, at most {MAX_VALUE_LEN}", p.value.len())));
        }
        match p.column.as_str() {
            "f_date" => match p.op {
                Op::Eq | Op::Gte | Op::Lte => dates.push(day(&p.value)),
                _ => return Err(refuse("f_date takes =, or >= and <= of one day".to_owned())),
            },
            "istars" => {
                let is_one = match p.value.as_str() {
                    "1" => true,
                    "0" => false,
                    _ => return Err(refuse("istars takes 0 or 1".to_owned())),
                };
                tars_only = Some(match p.op {
                    Op::Eq => is_one,
                    Op::Ne => !is_one,
                    _ => return Err(refuse("istars takes = or !=".to_owned())),
                });
            }
            "f_tflag" => {
                if matches!(p.op, Op::Eq | Op::Gte | Op::Gt) {
                    lo = Some(lo.map_or(p.value.clone(), |l| l.max(p.value.clone())));
                }
                if matches!(p.op, Op::Eq | Op::Lte | Op::Lt) {
                    hi = Some(hi.map_or(p.value.clone(), |h| h.min(p.value.clone())));
                }
                // What a range cannot say is kept as a condition (bound, as any other).
                if matches!(p.op, Op::Gt | Op::Lt | Op::Ne | Op::Like) {
                    conditions.push(("f_tflag", p.op, p.value));
                }
            }
            name => {
                let column = filterable.find(name).ok_or_else(|| {
                    refuse(format!("column {:?} is not one of {}", shown(name), filterable.0.join(" ")))
                })?;
                conditions.push((column, p.op, p.value));
            }
        }
    }
    let date = match dates.first() {
        None => return Err(RequestError::Filter("no f_date predicate (which day?)".to_owned())),
        Some(d) => d.clone(),
    };
    if let Some(other) = dates.iter().find(|d| **d != date) {
        return Err(RequestError::Filter(format!(
            "f_date names {} and {}: one day per request",
            shown(&date),
            shown(other)
        )));
    }
    let indexs = if req.indexs.is_empty() { vec![kind.default_index().to_owned()] } else { req.indexs.clone() };
    let conds: Vec<(&str, Result<Op, i32>, &str)> =
        conditions.iter().map(|(c, op, v)| (*c, Ok(*op), v.as_str())).collect();
    let plan = Plan::check(
        kind,
        Spec {
            dataid: &req.dataid,
            date: &date,
            tflag1: lo.as_deref().unwrap_or("0000"),
            tflag2: hi.as_deref().unwrap_or("2360"),
            conditions: &conds,
            indexs: &indexs,
            groupby: &req.groupby,
        },
        row_limit,
    )?;
    Ok(Query { plan, tars_only })
}

/// One line of text: a message cannot break the answer's lines.
fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

/// `Ret:-1\n<why>\nendline\n`.
pub fn error_answer(why: &str) -> String {
    format!("Ret:-1\n{}\nendline\n", one_line(why))
}

/// `timecheck`'s answer.
pub fn time_answer(last_time: &str) -> String {
    format!("lasttime:{}\nendline\n", one_line(last_time))
}

/// A property value as upstream wrote it: `%.5f` with trailing zeros (and the point) dropped.
pub fn decimal(v: f64) -> String {
    let mut s = format!("{v:.5}");
    if s.contains('.') {
        let keep = s.trim_end_matches('0').trim_end_matches('.').len();
        s.truncate(keep);
    }
    s
}

/// The answer to a query. `keep` decides per key (the `istars` filter).
pub fn write_answer(kind: Kind, answer: &Answer, keep: impl Fn(&str) -> bool) -> String {
    let rsp = &answer.rsp;
    if rsp.ret != 0 {
        let why = if rsp.msg.is_empty() { "no database answered" } else { rsp.msg.as_str() };
        return error_answer(why);
    }
    let mut out = String::new();
    let _ = write!(
        out,
        "Ret:0\nlasttime:{}\nActiveDb:{}\nTotalDb:{}\n",
        one_line(&rsp.last_time),
        rsp.active_db,
        rsp.total_db
    );
    let dbs = usize::try_from(rsp.total_db).unwrap_or(0);
    for i in 0..dbs {
        let mut notes: Vec<&str> =
            answer.per_db.get(i).map(|v| v.iter().map(String::as_str).collect()).unwrap_or_default();
        if i == 0 {
            notes.extend(answer.general.iter().map(String::as_str));
        }
        let notes = one_line(&notes.join("; "));
        if rsp.ret_threads.get(i).copied().unwrap_or(0) != 0 {
            let _ = writeln!(out, "ret:-1|iDb:{i}|exception:{notes}");
        } else if notes.is_empty() {
            let _ = writeln!(out, "ret:0 iDb:{i}");
        } else {
            let _ = writeln!(out, "ret:0 iDb:{i}|{notes}");
        }
    }
    let rows: Vec<_> = rsp.result.iter().filter(|(k, _)| keep(k)).collect();
    let _ = writeln!(out, "linecount:{}", rows.len());
    for (key, values) in rows {
        out.push_str(&one_line(key));
        out.push(',');
        for v in values {
            match kind {
                // Sums of integer columns: exact in f64 far beyond any real count.
                #[allow(clippy::cast_possible_truncation)]
                Kind::Stat => {
                    let _ = write!(out, "{}", v.round() as i64);
                }
                Kind::Property => out.push_str(&decimal(*v)),
            }
            out.push(',');
        }
        out.push('\n');
    }
    out.push_str("endline\n");
    out
}

/// `NoTarsObj`, one per IO shard, over the service's [`Engine`].
#[derive(Debug, Clone)]
pub struct LegacyImp {
    engine: Arc<Engine>,
    not_tars: Arc<BTreeSet<String>>,
}

impl LegacyImp {
    /// A servant; `not_tars` are the keys of `/tars<notarsslavename>`.
    pub fn new(engine: Arc<Engine>, not_tars: Arc<BTreeSet<String>>) -> LegacyImp {
        LegacyImp { engine, not_tars }
    }

    /// The answer to one request.
    pub async fn answer(&self, packet: &[u8]) -> String {
        let engine = &self.engine;
        let kind = engine.kind();
        let req = match parse_request(packet) {
            Ok(r) => r,
            Err(e) => {
                engine.count_refused();
                return error_answer(&e.to_string());
            }
        };
        if req.method == Method::TimeCheck {
            return time_answer(&engine.last_time().await);
        }
        let query = match plan(kind, &req, engine.max_rows()) {
            Ok(q) => q,
            Err(e) => {
                engine.count_refused();
                tracing::debug!(error = %e, "legacy query refused");
                return error_answer(&e.to_string());
            }
        };
        let slave = query.plan.groupby.iter().position(|c| *c == "slave_name");
        let width = query.plan.groupby.len();
        let answer = engine.query_plan(Ok(query.plan), "legacy").await;
        let not_tars = &self.not_tars;
        write_answer(kind, &answer, |key| match (query.tars_only, slave) {
            (Some(tars_only), Some(at)) => {
                let parts: Vec<&str> = key.split(',').collect();
                let listed = parts.len() == width && parts.get(at).is_some_and(|s| not_tars.contains(*s));
                listed != tars_only
            }
            _ => true,
        })
    }
}

impl RawServant for LegacyImp {
    fn max_frame(&self) -> usize {
        MAX_REQUEST
    }

    fn framer(&self) -> Box<dyn Framer> {
        Box::<JsonFramer>::default()
    }

    fn refused(&self, error: &FrameError) -> Option<Bytes> {
        self.engine.count_refused();
        let why = match error {
            FrameError::TooLarge { limit } => format!("request refused: larger than {limit} bytes"),
            FrameError::Malformed(why) => why.clone(),
        };
        Some(Bytes::from(error_answer(&why)))
    }

    fn handle(self: Rc<Self>, packet: Bytes, _peer: SocketAddr) -> RawFuture {
        // One request per connection, as upstream's clients use it.
        Box::pin(async move { RawReply { bytes: Bytes::from(self.answer(&packet).await), close: true } })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TARSWEB: &str = r#"{"groupby":["f_tflag"],"method":"query","dataid":"tars_stat","filter":["f_date='20190101'","f_tflag>='0000'","f_tflag<='2360'","slave_name like 'App.Server'"],"indexs":["succ_count","timeout_count","exce_count","total_time"]}"#;

    #[test]
    fn framer_waits_for_a_balanced_object_and_resumes() {
        let req = br#" {"a":"}{\"]","b":[{"c":1}]}"#;
        let mut whole = JsonFramer::default();
        assert_eq!(whole.feed(req), Ok(Some(req.len())));
        let mut f = JsonFramer::default();
        for n in 1..req.len() {
            assert_eq!(f.feed(&req[..n]), Ok(None), "{n}");
        }
        assert_eq!(f.feed(req), Ok(Some(req.len())));
        assert_eq!(JsonFramer::default().feed(b"{\"a\":1}  \n"), Ok(Some(7)));
        assert_eq!(JsonFramer::default().feed(b"{\"a\":1} x"), Err(FramingError::Trailing(8)));
        assert!(matches!(JsonFramer::default().feed(b"[1]"), Err(FramingError::NotObject { offset: 0, .. })));
        assert!(matches!(JsonFramer::default().feed(b"}"), Err(FramingError::NotObject { .. })));
        assert!(matches!(JsonFramer::default().feed(b" x{}"), Err(FramingError::NotObject { offset: 1, .. })));
        let deep = format!("{{\"a\":{}", "[".repeat(MAX_NESTING));
        assert!(matches!(JsonFramer::default().feed(deep.as_bytes()), Err(FramingError::TooDeep(_))));
        // An unterminated string never ends the object.
        assert_eq!(JsonFramer::default().feed(br#"{"a":"}}}}"#), Ok(None));
    }

    /// What the fuzz target checks, over mutations of TarsWeb's request: the framer agrees with
    /// itself fed whole or in pieces, and nothing panics.
    #[test]
    fn mutated_requests_frame_alike_in_pieces_and_never_panic() {
        let base = TARSWEB.as_bytes();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let alphabet = b"{}[]\"' ,:x0\xff";
        for _ in 0..3000 {
            let mut input = base.to_vec();
            for _ in 0..(next() % 4) {
                let at = (next() as usize) % input.len();
                match next() % 3 {
                    0 => input[at] = alphabet[(next() as usize) % alphabet.len()],
                    1 => input.insert(at, alphabet[(next() as usize) % alphabet.len()]),
                    _ => {
                        input.remove(at);
                    }
                }
            }
            if next() % 4 == 0 {
                input.extend_from_slice(b" x");
            }
            let whole = JsonFramer::default().feed(&input);
            let step = 1 + (next() as usize) % 40;
            let mut f = JsonFramer::default();
            let mut pieces = Ok(None);
            let mut end = 0;
            while end < input.len() {
                end = (end + step).min(input.len());
                pieces = f.feed(&input[..end]);
                if !matches!(pieces, Ok(None)) {
                    break;
                }
            }
            match (&whole, &pieces) {
                (Err(FramingError::Trailing(_)), Ok(Some(n))) => assert!(*n < input.len()),
                _ => assert_eq!(whole, pieces, "{:?}", String::from_utf8_lossy(&input)),
            }
            if let Ok(req) = parse_request(&input) {
                for kind in [Kind::Stat, Kind::Property] {
                    let _ = plan(kind, &req, 1);
                }
            }
        }
    }

    #[test]
    fn tarsweb_request_becomes_the_rpc_plan() {
        let req = parse_request(TARSWEB.as_bytes()).expect("valid");
        assert_eq!(req.method, Method::Query);
        let q = plan(Kind::Stat, &req, 10).expect("valid");
        assert_eq!(q.tars_only, None);
        let rpc = tars_protocol::tars::MonitorQueryReq {
            dataid: "tars_stat".into(),
            date: "20190101".into(),
            tflag1: "0000".into(),
            tflag2: "2360".into(),
            conditions: vec![tars_protocol::tars::Condition {
                field: "slave_name".into(),
                op: tars_protocol::tars::OP::LIKE,
                val: "App.Server".into(),
            }],
            indexs: req.indexs.clone(),
            groupby: req.groupby.clone(),
            ..Default::default()
        };
        assert_eq!(q.plan, Plan::new(Kind::Stat, &rpc, 10).expect("valid"));
    }

    #[test]
    fn predicates_are_one_comparison_with_an_unescaped_literal() {
        let p = parse_predicate(r"  slave_name LIKE 'O\'Brien''s \\ \n %' ").expect("valid");
        assert_eq!((p.column.as_str(), p.op, p.value.as_str()), ("slave_name", Op::Like, "O'Brien's \\ \n %"));
        assert_eq!(parse_predicate("succ_count>=-12.5").expect("valid").value, "-12.5");
        assert_eq!(parse_predicate("f_tflag<>'1000'").expect("valid").op, Op::Ne);
        assert_eq!(parse_predicate(r"a like '50\%'").expect("valid").value, r"50\%");
        for (bad, why) in [
            ("slave_name like 'a' or 1=1", "after the value"),
            ("f_date='x'; drop table t", "after the value"),
            ("slave_name like 'a' -- x", "after the value"),
            ("slave_name like 'a' and master_name like 'b'", "after the value"),
            ("slave_name = (select 1)", "single-quoted value"),
            ("slave_name = \"x\"", "single-quoted value"),
            ("slave_name like 'abc", "unterminated"),
            ("slave_name like 'abc\\", "unterminated"),
            (r"slave_name like 'a\q'", "unknown escape"),
            ("1=1", "column name"),
            ("`slave_name` = 'a'", "column name"),
            ("slave_name/**/like 'a'", "operator"),
            ("slave_name likely 'a'", "operator"),
            ("slave_name == 'a'", "single-quoted"),
            ("succ_count = 1.", "malformed number"),
            ("succ_count = -", "malformed number"),
            ("", "column name"),
        ] {
            let e = parse_predicate(bad).expect_err(bad);
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn requests_that_are_not_well_formed_are_refused_naming_the_field() {
        for (bad, what) in [
            (&b"[1]"[..], "expected a JSON object"),
            (b"{\"method\":\"query\"", "not JSON"),
            (b"{\"method\":\"q\xffy\"}", "not JSON"),
            (b"{}", "method refused: missing"),
            (b"{\"method\":1}", "method refused: expected a string"),
            (b"{\"method\":\"drop\"}", "method \"drop\" refused"),
            (b"{\"method\":\"query\",\"filter\":[1]}", "filter[0] refused"),
            (b"{\"method\":\"query\",\"filter\":{}}", "filter refused: expected an array"),
            (
                b"{\"method\":\"query\",\"groupby\":[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\"]}",
                "groupby refused: 9 given",
            ),
        ] {
            let e = parse_request(bad).expect_err(what);
            assert!(e.to_string().contains(what), "{what}: {e}");
        }
        let long = format!("{{\"method\":\"query\",\"filter\":[\"{}\"]}}", "x".repeat(MAX_FILTER_LEN + 1));
        assert!(parse_request(long.as_bytes()).expect_err("long").to_string().contains("filter[0]"));
    }

    #[test]
    fn filters_outside_the_allow_list_or_one_day_are_refused() {
        let with = |filter: &[&str], groupby: &[&str], indexs: &[&str]| Request {
            method: Method::Query,
            dataid: "tars_stat".into(),
            filter: filter.iter().map(|s| (*s).to_owned()).collect(),
            groupby: groupby.iter().map(|s| (*s).to_owned()).collect(),
            indexs: indexs.iter().map(|s| (*s).to_owned()).collect(),
        };
        let day = "f_date='20190101'";
        for (req, what) in [
            (with(&[day, "stattime > '0'"], &[], &[]), "filter[1] \"stattime > '0'\" refused: column"),
            (with(&[day, "password = 'x'"], &[], &[]), "filter[1]"),
            (with(&["f_tflag>='0000'"], &[], &[]), "no f_date"),
            (with(&[day, "f_date='20190102'"], &[], &[]), "one day per request"),
            (with(&["f_date like '2019%'"], &[], &[]), "f_date takes"),
            (with(&[day, "istars=2"], &[], &[]), "istars takes 0 or 1"),
            (with(&[day, "f_tflag>='00' or '1'='1'"], &[], &[]), "after the value"),
            (with(&[day, "f_tflag>='9999'"], &[], &[]), "tflag1"),
            (with(&[day], &["f_tflag, (select 1)"], &[]), "groupby[0]"),
            (with(&[day], &[], &["succ_count) from t_ecstatus --"]), "indexs[0]"),
            (with(&["f_date='2019-13-01'"], &[], &[]), "date"),
        ] {
            let e = plan(Kind::Stat, &req, 1).expect_err(what);
            assert!(e.to_string().contains(what), "{what}: {e}");
        }
        let q = plan(Kind::Stat, &with(&["f_date='2019-01-01'", "f_tflag>'1000'", "istars!=0"], &[], &[]), 1)
            .expect("valid");
        assert_eq!(
            (q.plan.date.as_str(), q.plan.tflag1.as_str(), q.plan.tflag2.as_str()),
            ("20190101", "1000", "2360")
        );
        assert_eq!(q.plan.indexes, ["succ_count"]);
        assert_eq!(q.plan.conditions.len(), 1, "the strict bound stays a condition");
        assert_eq!(q.tars_only, Some(true));
        let p = Request { dataid: "tars_property".into(), ..with(&[day], &[], &[]) };
        assert_eq!(plan(Kind::Property, &p, 1).expect("valid").plan.indexes, ["value"]);
    }

    #[test]
    fn answers_are_upstreams_text() {
        let mut answer = Answer::default();
        answer.rsp.last_time = "20190101 1035".into();
        answer.rsp.active_db = 2;
        answer.rsp.total_db = 2;
        answer.rsp.ret_threads = vec![0, -1];
        answer.rsp.result.insert("0005".into(), vec![10.0, 2.0]);
        answer.rsp.result.insert("0010".into(), vec![3.0, 0.0]);
        answer.per_db =
            vec![vec!["db1: no table t_20190101HH for hours 03".into()], vec!["db2: 24 of 24\nhours failed".into()]];
        let text = write_answer(Kind::Stat, &answer, |k| k != "0010");
        assert_eq!(
            text,
            "Ret:0\nlasttime:20190101 1035\nActiveDb:2\nTotalDb:2\nret:0 iDb:0|db1: no table t_20190101HH for hours 03\n\
             ret:-1|iDb:1|exception:db2: 24 of 24 hours failed\nlinecount:1\n0005,10,2,\nendline\n"
        );
        answer.rsp.ret = -1;
        answer.rsp.msg = "nothing\nanswered".into();
        assert_eq!(write_answer(Kind::Stat, &answer, |_| true), "Ret:-1\nnothing answered\nendline\n");
        assert_eq!(
            [decimal(2.5), decimal(10.0), decimal(0.0), decimal(1.0 / 3.0), decimal(-4.25)],
            ["2.5", "10", "0", "0.33333", "-4.25"]
        );
        assert_eq!(time_answer("x"), "lasttime:x\nendline\n");
    }
}
