//! tarsnotify (`tars.tarsnotify.NotifyObj`, 18593): the notices servers and the framework
//! report (`reportNotifyInfo`), written to `db_tars.t_server_notifys`, where TarsWeb lists
//! them by `server_id` (`App.Server_node`).
//!
//! Upstream's rules for the row are kept column by column ([`notice`]), and so is its
//! `/tars/filter` ([`filter`]). What differs from upstream's `NotifyServer/NotifyImp.cpp`, on purpose:
//!
//! - No INSERT per call on the request path: the servant only queues, in a queue bounded in
//!   bytes that drops and counts when full ([`queue`]); the `tars-notify-writer` thread writes
//!   batches, one transaction each ([`writer`], [`db`]).
//! - A per-server rate limit, with the suppressed count written as a row ([`limit`]).
//! - Retention that deletes: the newest `retainHistory` rows per `server_id`, and/or rows
//!   older than a number of days, in bounded steps ([`retention`]).
//!
//! Threads: the IO shards run [`servant::NotifyImp`] (filter, build, queue);
//! `tars-notify-writer` (limit, batch, write); `tars-notify-retention` (the schedule and its
//! deletes); statements run on the store's `tars-store-*` workers. Start reading at
//! [`service`] (the keys), then [`servant`] and [`writer`].

pub mod db;
pub mod error;
pub mod filter;
pub mod limit;
pub mod notice;
pub mod queue;
pub mod retention;
pub mod servant;
pub mod service;
pub mod writer;

pub use error::NotifyError;
pub use service::{NotifyService, NotifySettings, NOTIFY_OBJ};
