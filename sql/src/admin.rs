//! The `tars.storage` admin command: one line per store with its state and counters.

use crate::store::Store;

/// Name of the admin command services register.
pub const COMMAND: &str = "tars.storage";

/// The command's answer for `stores` (name, store) pairs.
pub fn describe(stores: &[(&str, Store)]) -> String {
    let mut out = String::new();
    for (name, store) in stores {
        out.push_str(&format!("{name}: {}\n", store.health()));
    }
    if out.is_empty() {
        out.push_str("no storage configured\n");
    }
    out
}
