//! The workspace's dependency rules, read from `cargo metadata` so they are enforced, not
//! remembered (ARCHITECTURE.md, "Invariants"):
//!
//! - `tars-proto` (the sans-IO protocol) depends on `bytes` and `thiserror` only;
//! - `tars-protocol` (generated interfaces) depends on the protocol, never on the runtime;
//! - the runtime (`tars-core-net`) uses the generated interfaces of `tars-protocol`;
//! - `tars-sql` does not link the runtime;
//! - only the runtime names glommio.

use std::collections::BTreeMap;
use std::process::Command;

/// Each workspace package's normal (non-dev, non-build) dependencies, by name.
fn normal_deps() -> BTreeMap<String, Vec<String>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(out.status.success(), "cargo metadata failed: {}", String::from_utf8_lossy(&out.stderr));
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON");
    let mut deps = BTreeMap::new();
    for p in meta["packages"].as_array().expect("packages") {
        let name = p["name"].as_str().expect("name").to_owned();
        let list = p["dependencies"]
            .as_array()
            .expect("dependencies")
            .iter()
            .filter(|d| d["kind"].is_null())
            .map(|d| d["name"].as_str().expect("dependency name").to_owned())
            .collect();
        deps.insert(name, list);
    }
    deps
}

#[test]
fn the_protocol_depends_on_bytes_and_thiserror_only() {
    let deps = normal_deps();
    let mut proto = deps["tars-proto"].clone();
    proto.sort();
    assert_eq!(proto, ["bytes", "thiserror"]);
}

#[test]
fn generated_interfaces_sit_between_the_protocol_and_the_runtime() {
    let deps = normal_deps();
    assert!(deps["tars-protocol"].contains(&"tars-proto".to_owned()));
    assert!(!deps["tars-protocol"].contains(&"tars-core-net".to_owned()), "{:?}", deps["tars-protocol"]);
    assert!(deps["tars-core-net"].contains(&"tars-protocol".to_owned()), "the runtime uses generated QueryF/AdminF");
}

#[test]
fn storage_does_not_link_the_runtime() {
    let deps = normal_deps();
    assert!(!deps["tars-sql"].contains(&"tars-core-net".to_owned()), "{:?}", deps["tars-sql"]);
}

#[test]
fn only_the_runtime_names_glommio() {
    let users: Vec<_> =
        normal_deps().into_iter().filter(|(_, d)| d.iter().any(|n| n == "glommio")).map(|(p, _)| p).collect();
    assert_eq!(users, ["tars-core-net"]);
}
