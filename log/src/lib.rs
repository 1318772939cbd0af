//! tarslog (`tars.tarslog.LogObj`, 18993): the remote log. Servers send their lines with
//! `logger` / `loggerbyInfo`; they land in upstream's files under `/tars/log<logpath>`,
//! named and rolled as TarsCpp's `TC_DayLogger` names and rolls them.
//!
//! Start reading at [`naming`] (which file a request goes to; every path component a
//! request supplies is checked, and a refused request writes nothing), then [`servant`]
//! (per shard: name, prefix, queue), [`writer`] (the byte-bounded queue and the writer
//! threads that own the files) and [`service`] (the lifecycle and the config keys).
//!
//! Threads: the servant runs on the IO shards and only pushes onto the queue (an atomic
//! add and a lock-free send; a full queue drops and counts); `tars-log-writer-<n>` threads
//! open, append, flush and fsync.

pub mod clock;
pub mod naming;
pub mod servant;
pub mod service;
pub mod writer;

pub use service::{LogService, LogSettings, LOG_OBJ};
