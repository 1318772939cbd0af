//! Benchmarks for tars-rs: the codec micro-benchmarks in `benches/`, and the TARS load
//! generator with its reference servers. Results: `RESULTS.md`.
//!
//! - [`load`]: the load generator behind `tars-bench`: closed loop (C connections × D in
//!   flight) or open loop (a target rate, latency measured from each request's intended send
//!   time so coordinated omission is not hidden), over our runtime with a lean pipelined
//!   connection driver of its own.
//! - [`proto`]: the echo call `int f(string in, out string out)` pre-encoded once per
//!   connection (only the request id is patched per call), the raw length-prefixed frame of
//!   the reference server, and the reply checks.
//! - [`echo`]: the servers `tars-echo-server` runs: a TARS echo servant on our server, and a
//!   minimal raw echo server on the same runtime as the reference ceiling.
//! - [`schedule`]: open-loop intended send times; [`hist`]: latency histograms.
//! - [`cpu`]: process CPU time from `/proc/<pid>/stat`; [`matrix`]: the matrix runner.
//! - [`registry`]: `tars-bench-registry`, the registry's QueryObj against the TARS echo
//!   server side by side, and how fast a database change reaches QueryObj's answers.
//! - [`stat`]: `tars-bench-stat`, tarsstat's ingest rate over TCP on 1 and 2 shards, and its
//!   writer's flush rate into MariaDB next to the raw INSERT loop and LOAD DATA.
//! - [`node`]: `tars-bench-node`, the real `tarsnode` binary managing real servers: kill -9
//!   to restart latency, idle CPU and RSS with 50 managed servers.
//! - [`configload`]: `tars-bench-config`, tarsconfig's `loadConfig` next to the TARS echo.
//! - [`log`]: `tars-bench-log`, lines/s written to disk through tarslog's `LogObj` next to a
//!   plain buffered write of the same lines.
//! - [`query`]: `tars-bench-query`, `MonitorQuery.query` through tarsquerystat for a day of
//!   1000 servers' stat data next to the same SQL run directly.
//! - [`cli`]: the small argument parser the binaries share; [`conf`]: the server config the
//!   in-process benchmarks start their services with.

pub mod cli;
pub mod conf;
pub mod configload;
pub mod cpu;
pub mod echo;
pub mod hist;
pub mod load;
pub mod log;
pub mod matrix;
pub mod node;
pub mod proto;
pub mod query;
pub mod registry;
pub mod schedule;
pub mod stat;
pub mod store;
