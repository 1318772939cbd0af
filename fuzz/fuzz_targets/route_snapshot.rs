//! The registry's route snapshot file: any bytes decode to a snapshot or an error, never a
//! panic; whatever decodes re-encodes to the same snapshot, and building routes from its rows
//! (endpoint strings, group rules, set divisions taken from the file) never panics either.

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;
use tars_registry::routes::snapshot;
use tars_registry::routes::table::{build_servant, Groups};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = snapshot::decode(data, Path::new("fuzz")) else { return };
    let servers: Vec<_> = s.servers.iter().collect();
    let again = snapshot::encode(&servers, &s.registry, &s.rules, &s.priorities, &s.saved_at);
    let back = snapshot::decode(&again, Path::new("fuzz")).expect("a re-encoded snapshot decodes");
    assert_eq!(back, s);
    let groups = Groups::new(&s.rules, &s.priorities);
    let (routes, _bad) = build_servant(s.servers.iter().chain(&s.registry), &groups);
    for p in groups.priorities() {
        let _ = tars_registry::routes::find::in_station(Some(&routes), &groups, &p.station);
    }
    for r in &s.servers {
        let set = format!("{}.{}.{}", r.set_name, r.set_area, r.set_group);
        let _ = tars_registry::routes::find::in_set(Some(&routes), &groups, &r.node_name, &set);
        let _ = tars_registry::routes::find::in_group_priority(Some(&routes), &groups, &r.node_name);
    }
});
