//! The TARS runtime: thread-per-core shards, the server and the client, around the sans-IO
//! protocol in `tars-proto`.
//!
//! - [`auth`]: the `-e 1` connection handshake (TarsCpp's AK/SK scheme), sans-IO.
//! - [`rt`]: the runtime seam (shards on glommio io_uring or our own epoll reactor).
//! - [`server`]: adapters from config, served by every shard, and `AdminObj`.
//! - [`client`]: communicators, object proxies, pipelined connections and the locator.
//! - [`http`]: a small, hardened HTTP/1.1 GET server for metrics and discovery endpoints.
//! - [`ratelog`]: log lines caused by network events, rate-limited per call site.
//!
//! Framework interfaces (the locator's `QueryF`, `AdminF`) are the generated code of
//! `tars-protocol`; this crate writes no codec of its own.

pub mod app;
pub mod auth;
pub mod client;
pub mod http;
pub mod ratelog;
pub mod rt;
pub mod server;

pub use tars_proto::{Bytes, BytesMut};
