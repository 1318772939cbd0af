//! One `MonitorQuery.query`: the plan, every (database, hour) statement and each database's
//! `lastTime` at once on the databases' store workers, the merge, the answer.
//!
//! Nothing here blocks: each statement is a [`Store::run`] job (the `tars-store-*` threads run
//! the SQL), and the servant awaits them all together. The answer is upstream's, with one
//! difference that matters (upstream's querystat fails the whole answer instead): a missing hour table, a failing
//! statement or an unreachable database does not fail the query. The rest is answered, `ret`
//! stays 0 and `msg` names the gap (`retThreads[i]` is -1 for a database with a failed
//! statement). Only when no database answered at all is `ret` -1.
//!
//! `lastTime` is upstream's: per database the earliest `t_ecstatus.lasttime` later than the
//! label of now − 2 × interval, then the earliest over the databases that have one (`""` when
//! none does).

use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tars_monitor::clock::{Clock, Label};
use tars_protocol::tars::{MonitorQueryReq, MonitorQueryRsp};
use tars_sql::{Session, Store, StoreError, Value};

use crate::kind::Kind;
use crate::merge::{Merge, Rows};
use crate::plan::Plan;

/// One database to read: a section of `/tars/statdb` (or `/tars/propertydb`).
#[derive(Debug, Clone)]
pub struct Db {
    /// The section's name (`db1`), used in `msg`.
    pub name: String,
    /// The hourly tables' prefix (`tbname`).
    pub prefix: String,
    /// The database.
    pub store: Store,
}

/// How the engine answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Minutes between flushes (`/tars<interval>`), for `lastTime`.
    pub interval_minutes: i64,
    /// The answer's budget in bytes (keys, values); keys beyond it are left out.
    pub max_answer_bytes: usize,
    /// Rows one hour table may give.
    pub max_rows: usize,
    /// How long one statement may take, queueing included.
    pub timeout: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { interval_minutes: 5, max_answer_bytes: 4 << 20, max_rows: 100_000, timeout: Duration::from_secs(30) }
    }
}

/// What the admin command shows.
#[derive(Debug, Default)]
pub struct Counters {
    /// Queries received.
    pub queries: AtomicU64,
    /// Refused before any SQL (bad names or values).
    pub refused: AtomicU64,
    /// Answered with `ret` -1 after trying (no database answered).
    pub failed: AtomicU64,
    /// Answered with a gap named in `msg`.
    pub partial: AtomicU64,
    /// Answers cut by the size bound.
    pub cut: AtomicU64,
    /// Statements run.
    pub statements: AtomicU64,
    /// Statements that failed (or timed out).
    pub statement_errors: AtomicU64,
    /// Hour tables that did not exist.
    pub missing_tables: AtomicU64,
    /// Sum of query times, in microseconds.
    pub total_us: AtomicU64,
    /// The slowest query, in microseconds.
    pub max_us: AtomicU64,
}

impl Counters {
    /// The admin command's text.
    pub fn describe(&self) -> String {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let queries = get(&self.queries);
        let avg_ms = get(&self.total_us).checked_div(queries).unwrap_or(0) as f64 / 1000.0;
        format!(
            "queries: {queries} (refused {}, failed {}, partial {}, cut {})\nstatements: {} ({} failed, {} hour tables \
             missing)\nquery time: avg {avg_ms:.1} ms, max {:.1} ms\n",
            get(&self.refused),
            get(&self.failed),
            get(&self.partial),
            get(&self.cut),
            get(&self.statements),
            get(&self.statement_errors),
            get(&self.missing_tables),
            get(&self.max_us) as f64 / 1000.0,
        )
    }
}

/// An answer with its gaps kept apart, for the legacy protocol's per-database status lines.
#[derive(Debug, Clone, Default)]
pub struct Answer {
    /// The answer as `MonitorQuery.query` gives it (`msg` joins every gap).
    pub rsp: MonitorQueryRsp,
    /// Each database's gaps (missing tables, failed statements), in `dbs` order.
    pub per_db: Vec<Vec<String>>,
    /// Gaps of no one database (a cut answer).
    pub general: Vec<String>,
}

/// The query engine of one service, shared by its shards.
#[derive(Debug)]
pub struct Engine {
    kind: Kind,
    dbs: Vec<Db>,
    limits: Limits,
    clock: Clock,
    /// Counters.
    pub counters: Counters,
}

/// What one hour's statement gave.
enum Hour {
    Rows(Rows, bool),
    Missing,
    Failed(String),
}

enum Job {
    Hour { db: usize, hour: u8, out: Hour },
    LastTime { db: usize, out: Option<String> },
}

impl Engine {
    /// An engine over `dbs`.
    pub fn new(kind: Kind, dbs: Vec<Db>, limits: Limits, clock: Clock) -> Engine {
        Engine { kind, dbs, limits, clock, counters: Counters::default() }
    }

    /// Which service.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The databases.
    pub fn dbs(&self) -> &[Db] {
        &self.dbs
    }

    /// Answers one request. Never fails: a refusal or a failure is the answer's `ret` and `msg`.
    pub async fn query(&self, req: &MonitorQueryReq) -> MonitorQueryRsp {
        self.query_plan(Plan::new(self.kind, req, self.limits.max_rows), &req.uid).await.rsp
    }

    /// Rows one hour table may give (`/tars/query<maxRows>`), for plans built elsewhere.
    pub fn max_rows(&self) -> usize {
        self.limits.max_rows
    }

    /// Counts a request refused before it became a plan (the legacy protocol's own checks).
    pub fn count_refused(&self) {
        self.counters.queries.fetch_add(1, Ordering::Relaxed);
        self.counters.refused.fetch_add(1, Ordering::Relaxed);
    }

    /// Answers a checked (or refused) request, as [`Engine::query`] does; `uid` is for logs.
    pub async fn query_plan(&self, plan: Result<Plan, crate::plan::Refused>, uid: &str) -> Answer {
        let started = Instant::now();
        let c = &self.counters;
        c.queries.fetch_add(1, Ordering::Relaxed);
        let total_db = i32::try_from(self.dbs.len()).unwrap_or(i32::MAX);
        let rsp = match plan {
            Err(refused) => {
                c.refused.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%uid, %refused, "query refused");
                let rsp = MonitorQueryRsp { ret: -1, msg: refused.to_string(), total_db, ..MonitorQueryRsp::default() };
                Answer { rsp, ..Answer::default() }
            }
            Ok(_) if self.dbs.is_empty() => {
                c.failed.fetch_add(1, Ordering::Relaxed);
                let rsp = MonitorQueryRsp {
                    ret: -1,
                    msg: format!("no database configured under {}", self.kind.db_root()),
                    ..MonitorQueryRsp::default()
                };
                Answer { rsp, ..Answer::default() }
            }
            Ok(plan) => self.run(Arc::new(plan)).await,
        };
        let us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        c.total_us.fetch_add(us, Ordering::Relaxed);
        c.max_us.fetch_max(us, Ordering::Relaxed);
        rsp
    }

    fn last_time_floor(&self) -> String {
        let step = self.limits.interval_minutes.clamp(1, 24 * 60) * 60;
        let t = self.clock.now_unix().saturating_sub(2 * step).div_euclid(step) * step;
        Label::for_end(t, &self.clock).lasttime()
    }

    /// `lastTime` alone (the legacy protocol's `timecheck`): the earliest over the databases.
    pub async fn last_time(&self) -> String {
        let floor = self.last_time_floor();
        let jobs: Vec<Pin<Box<dyn Future<Output = Option<String>>>>> = self
            .dbs
            .iter()
            .map(|db| Box::pin(last_time_of(db.store.clone(), floor.clone(), self.limits.timeout)) as Pin<Box<_>>)
            .collect();
        JoinAll::new(jobs).await.into_iter().flatten().min().unwrap_or_default()
    }

    async fn run(&self, plan: Arc<Plan>) -> Answer {
        let c = &self.counters;
        let floor = self.last_time_floor();
        let timeout = self.limits.timeout;
        let mut jobs: Vec<Pin<Box<dyn Future<Output = Job>>>> = Vec::new();
        for (i, db) in self.dbs.iter().enumerate() {
            let last = last_time_of(db.store.clone(), floor.clone(), timeout);
            jobs.push(Box::pin(async move { Job::LastTime { db: i, out: last.await } }));
            for hour in plan.hours.clone() {
                let (store, plan) = (db.store.clone(), plan.clone());
                let table = plan.table(&db.prefix, hour);
                c.statements.fetch_add(1, Ordering::Relaxed);
                jobs.push(Box::pin(async move {
                    let run = store.run(move |s| hour_job(s, &plan, &table));
                    let out = match tars_core_net::rt::timeout(timeout, run).await {
                        Ok(Ok(out)) => out,
                        Ok(Err(e)) => Hour::Failed(e.to_string()),
                        Err(_) => Hour::Failed(format!("no answer within {} ms", timeout.as_millis())),
                    };
                    Job::Hour { db: i, hour, out }
                }));
            }
        }
        let done = JoinAll::new(jobs).await;

        let n = self.dbs.len();
        let mut per_db: Vec<Vec<(u8, Hour)>> = (0..n).map(|_| Vec::new()).collect();
        let mut last_times: Vec<Option<String>> = vec![None; n];
        for job in done {
            match job {
                Job::Hour { db, hour, out } => per_db[db].push((hour, out)),
                Job::LastTime { db, out } => last_times[db] = out,
            }
        }
        let mut merge = Merge::new(self.kind, plan.policy, plan.indexes.len(), self.limits.max_answer_bytes);
        let mut gaps = Vec::new();
        let mut per_db_gaps: Vec<Vec<String>> = vec![Vec::new(); n];
        let mut ret_threads = Vec::with_capacity(n);
        let mut active = 0;
        let mut rows_cut = false;
        for (i, hours) in per_db.iter_mut().enumerate() {
            hours.sort_by_key(|(h, _)| *h);
            let (mut missing, mut failed) = (Vec::new(), Vec::new());
            let mut answered = false;
            for (hour, out) in std::mem::take(hours) {
                match out {
                    Hour::Rows(rows, cut) => {
                        answered = true;
                        rows_cut |= cut;
                        merge.add(rows);
                    }
                    Hour::Missing => {
                        answered = true;
                        missing.push(hour);
                    }
                    Hour::Failed(e) => failed.push((hour, e)),
                }
            }
            c.missing_tables.fetch_add(missing.len() as u64, Ordering::Relaxed);
            c.statement_errors.fetch_add(failed.len() as u64, Ordering::Relaxed);
            let db = &self.dbs[i];
            if !missing.is_empty() {
                let gap = format!("{}: no table {}{}HH for hours {}", db.name, db.prefix, plan.date, ranges(&missing));
                per_db_gaps[i].push(gap.clone());
                gaps.push(gap);
            }
            if let Some((_, first)) = failed.first() {
                let hours: Vec<u8> = failed.iter().map(|(h, _)| *h).collect();
                tracing::warn!(db = %db.name, error = %first, "query: statements failed");
                let gap = format!(
                    "{}: {} of {} hours failed ({}): {first}",
                    db.name,
                    failed.len(),
                    plan.hours.len(),
                    ranges(&hours)
                );
                per_db_gaps[i].push(gap.clone());
                gaps.push(gap);
            }
            ret_threads.push(if failed.is_empty() { 0 } else { -1 });
            active += i32::from(answered);
        }
        let cut = merge.cut || rows_cut;
        let mut general = Vec::new();
        if cut {
            c.cut.fetch_add(1, Ordering::Relaxed);
            let gap = format!(
                "answer cut: more than {} rows in one hour table or {} KiB of answer",
                self.limits.max_rows,
                self.limits.max_answer_bytes >> 10
            );
            general.push(gap.clone());
            gaps.push(gap);
        }
        let last_time = last_times.into_iter().flatten().min().unwrap_or_default();
        let ret = if active == 0 { -1 } else { 0 };
        if ret != 0 {
            c.failed.fetch_add(1, Ordering::Relaxed);
        } else if !gaps.is_empty() {
            c.partial.fetch_add(1, Ordering::Relaxed);
        }
        let rsp = MonitorQueryRsp {
            ret,
            msg: gaps.join("; "),
            last_time,
            active_db: active,
            total_db: i32::try_from(n).unwrap_or(i32::MAX),
            ret_threads,
            result: if ret == 0 { merge.finish() } else { Default::default() },
        };
        Answer { rsp, per_db: per_db_gaps, general }
    }
}

/// One database's `lastTime` (`None`: none later than `floor`, or no answer in time).
async fn last_time_of(store: Store, floor: String, timeout: Duration) -> Option<String> {
    let sql = "SELECT MIN(lasttime) AS lasttime FROM t_ecstatus WHERE lasttime > ?";
    let run = store.run(move |s| s.query(sql, &[Value::from(floor)]));
    let out = match tars_core_net::rt::timeout(timeout, run).await {
        Ok(Ok(rows)) => rows.first().and_then(|r| r.get::<Option<String>>(0).ok().flatten()),
        _ => None,
    };
    out.filter(|s| !s.is_empty())
}

/// One hour table's statement, on a store worker.
fn hour_job(s: &mut dyn Session, plan: &Plan, table: &str) -> Result<Hour, StoreError> {
    let (sql, params) = plan.statement(s.dialect(), table)?;
    let rows = match s.query(&sql, &params) {
        Ok(rows) => rows,
        Err(e) => {
            // A missing table is a gap, not a failure; anything else is reported as it is.
            if !s.is_broken() && matches!(s.table_exists(table), Ok(false)) {
                return Ok(Hour::Missing);
            }
            return Err(e);
        }
    };
    let width = plan.indexes.len();
    let cut = rows.len() > plan.row_limit;
    let mut out = Vec::with_capacity(rows.len().min(plan.row_limit));
    for row in rows.iter().take(plan.row_limit) {
        let values = row.values();
        let nums = (0..width).map(|i| number(values.get(i))).collect();
        let mut key = String::new();
        for (j, v) in values.iter().skip(width).enumerate() {
            if j > 0 {
                key.push(',');
            }
            text(v, &mut key);
        }
        out.push((key, nums));
    }
    Ok(Hour::Rows(out, cut))
}

/// A summed value: NULL (no rows, or all NULL) is 0, text as MySQL's DECIMAL comes is parsed.
fn number(v: Option<&Value>) -> f64 {
    match v {
        Some(Value::Int(i)) => *i as f64,
        Some(Value::UInt(u)) => *u as f64,
        Some(Value::Float(f)) => *f,
        Some(Value::Text(s)) => s.trim().parse().unwrap_or(0.0),
        Some(Value::Bytes(b)) => std::str::from_utf8(b).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0.0),
        Some(Value::Null) | None => 0.0,
    }
}

/// A group value as upstream's key holds it (NULL is empty).
fn text(v: &Value, out: &mut String) {
    match v {
        Value::Null => {}
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::UInt(u) => {
            let _ = write!(out, "{u}");
        }
        Value::Float(f) => {
            let _ = write!(out, "{f}");
        }
        Value::Text(s) => out.push_str(s),
        Value::Bytes(b) => out.push_str(&String::from_utf8_lossy(b)),
    }
}

/// `03, 10-12`: hours as ranges.
fn ranges(hours: &[u8]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < hours.len() {
        let start = hours[i];
        let mut end = start;
        while i + 1 < hours.len() && hours[i + 1] == end + 1 {
            end += 1;
            i += 1;
        }
        if !out.is_empty() {
            out.push_str(", ");
        }
        if start == end {
            let _ = write!(out, "{start:02}");
        } else {
            let _ = write!(out, "{start:02}-{end:02}");
        }
        i += 1;
    }
    out
}

/// Awaits every future together; the outputs in no particular order.
struct JoinAll<T> {
    futures: Vec<Option<Pin<Box<dyn Future<Output = T>>>>>,
    done: Vec<T>,
}

impl<T> JoinAll<T> {
    fn new(futures: Vec<Pin<Box<dyn Future<Output = T>>>>) -> JoinAll<T> {
        let done = Vec::with_capacity(futures.len());
        JoinAll { futures: futures.into_iter().map(Some).collect(), done }
    }
}

// The outputs are moved, never pinned; the futures are pinned in their boxes.
impl<T> Unpin for JoinAll<T> {}

impl<T> Future for JoinAll<T> {
    type Output = Vec<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Vec<T>> {
        let this = self.get_mut();
        let mut pending = false;
        for slot in &mut this.futures {
            if let Some(f) = slot {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => {
                        this.done.push(v);
                        *slot = None;
                    }
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(std::mem::take(&mut this.done))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours_are_shown_as_ranges() {
        assert_eq!(ranges(&[3, 10, 11, 12, 23]), "03, 10-12, 23");
        assert_eq!(ranges(&[]), "");
        assert_eq!(ranges(&[0, 1]), "00-01");
    }

    #[test]
    fn last_time_floor_is_the_label_two_intervals_back() {
        // 2026-03-15 10:12:30 UTC: 10:02:30 floored to 10:00, on the hour: 0960.
        let clock = Clock::manual(1_773_569_550, 0);
        let e = Engine::new(Kind::Stat, Vec::new(), Limits::default(), clock.clone());
        assert_eq!(e.last_time_floor(), "20260315 0960");
        clock.advance(300);
        assert_eq!(e.last_time_floor(), "20260315 1005");
    }

    #[test]
    fn sums_read_from_either_backend_become_numbers() {
        assert_eq!(number(Some(&Value::Text("12.50".into()))), 12.5);
        assert_eq!(number(Some(&Value::Bytes(b"7".to_vec()))), 7.0);
        assert_eq!(number(Some(&Value::Null)), 0.0);
        assert_eq!(number(Some(&Value::UInt(3))), 3.0);
        let mut s = String::new();
        text(&Value::Int(-1), &mut s);
        text(&Value::Null, &mut s);
        assert_eq!(s, "-1");
    }
}
