//! tarsnotify: alarms and notifications (`tars.tarsnotify.NotifyObj`, 18593).
//!
//! Not built yet: its interface (`tars::Notify`) is generated in `tars-protocol`.
