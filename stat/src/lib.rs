//! tarsstat: call statistics (`tars.tarsstat.StatObj`, 18293).
//!
//! Not built yet: its interface (`tars::StatF`) is generated in `tars-protocol`.
