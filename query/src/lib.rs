//! tarsquerystat / tarsqueryproperty: `MonitorQuery` over the hourly tables (18393 / 18693).
//!
//! Not built yet: its interface (`tars::MonitorQuery`) is generated in `tars-protocol`.
