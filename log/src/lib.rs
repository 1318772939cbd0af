//! tarslog: remote logging (`tars.tarslog.LogObj`, 18993).
//!
//! Not built yet: its interface (`tars::Log`) is generated in `tars-protocol`.
