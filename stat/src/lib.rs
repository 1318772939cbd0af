//! tarsstat: call statistics (`tars.tarsstat.StatObj`, 18293).
//!
//! [`ingest`] holds upstream's ingest rules and the merge of one key's counters, sans-IO.

pub mod ingest;
