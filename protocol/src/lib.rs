//! Every TARS framework interface, compiled at build time from our own `.tars` files in
//! `protocol/tars/` by `tars-idl` (module `tars`, and `internal` for trace data).
//!
//! Each interface gives a servant trait (e.g. [`tars::QueryF`]), a dispatcher
//! ([`tars::dispatch_query_f`]) and a client proxy ([`tars::QueryFProxy`]).

include!(concat!(env!("OUT_DIR"), "/_include.rs"));
