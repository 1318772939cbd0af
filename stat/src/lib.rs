//! tarsstat: call statistics (`tars.tarsstat.StatObj`, 18293).
//!
//! [`ingest`] holds upstream's ingest rules and the merge of one key's counters, sans-IO;
//! [`service`] wires them to the shards, the collector and the database writers of
//! `tars-monitor`, and `tarsstat` is the binary.

pub mod ingest;
pub mod mic;
pub mod service;
