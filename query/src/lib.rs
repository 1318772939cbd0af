//! tarsquerystat (`tars.tarsquerystat.QueryObj`, 18393) and tarsqueryproperty
//! (`tars.tarsqueryproperty.QueryObj`, 18693): `MonitorQuery.query` over the hourly tables
//! tarsstat and tarsproperty write, as TarsWeb's monitor pages call it.
//!
//! One service type for both ([`Kind`]): the request is checked against the hourly table's
//! columns ([`kind`], [`plan`]: names from an allow list, every value bound, anything else
//! refused with `ret -1` and a `msg` naming it); every (database, hour) statement runs at once
//! on the databases' store workers ([`engine`]); the rows are merged as upstream merges them
//! ([`merge`]: stat sums, property reduces by policy). A missing hour table or an unreachable
//! database leaves a gap named in `msg`, not a failed answer; `f_tflag` is filtered to the
//! minute. The databases are the writer's own sections, with their `tbname` prefix, not names
//! derived from `dataid`.
//!
//! Config keys (besides `<tars><application><server>`):
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `/tars/statdb/<dbN>` (querystat), `/tars/propertydb/<dbN>` (queryproperty) | none | the databases, as the writer reads them: `dbhost`, `dbport`, `dbuser`, `dbpass`, `dbname`, or our `url` (`mysql://…`, `sqlite:PATH`) |
//! | `…/<dbN><tbname>` | `tars_stat_`, `tars_property_` | the hourly tables' prefix: tables are `<tbname>YYYYMMDDHH` |
//! | `/tars<interval>` | 5 | minutes between the writers' flushes, for `lastTime` (upstream) |
//! | `/tars/threadpool<count_db_tpoolsize>` | 4 | connections per database given by `dbhost` (upstream's pool size; a `url` sets `pool=`) |
//! | `/tars/query<maxAnswerKB>` | 4096 | the answer's budget; keys beyond it are left out and `msg` says so (at most 8192) |
//! | `/tars/query<maxRows>` | 100000 | rows one hour table may give before the answer is cut |
//! | `/tars/query<timeoutMs>` | 30000 | how long one statement may take, queueing included; a later one is a gap |
//! | adapter `<tars.tarsquerystat.NoTarsObjAdapter>` (`…tarsqueryproperty.NoTarsObj…`) with `protocol=not_tars` | none | serves the legacy JSON protocol of TarsWeb ≤ 1.5.1 ([`legacy`]) beside `QueryObj`; without the adapter it is not served |
//! | `/tars/notarsslavename` (its key lines) | empty | the legacy protocol's `istars` filter: slaves that are not TARS servers (upstream's) |
//!
//! Admin command `tars.query`: queries, refusals, failures, partial and cut answers, statements,
//! missing tables, query times, and each database's state.
//!
//! The legacy protocol ([`legacy`]: one JSON object over raw TCP, a text answer) parses each
//! `filter` string into one comparison, refuses anything else, and runs the same [`plan`].
//!
//! Start reading at [`plan`] (what a request may say and the SQL it becomes), then [`engine`].

pub mod engine;
pub mod kind;
pub mod legacy;
pub mod merge;
pub mod plan;
pub mod servant;
pub mod service;

pub use kind::Kind;
pub use service::{QueryService, QUERY_COMMAND};
