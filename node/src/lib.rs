//! tarsnode: the per-host agent (`tars.tarsnode.ServerObj`, 19386).
//!
//! Not built yet: its interfaces (`tars::ServerF`, `tars::Node`) are generated in `tars-protocol`.
