//! Smoke test of `tars-bench-node --quick`: the real tarsnode (from the same target
//! directory; built by a workspace `cargo test`, which builds tars-node's binaries for its own
//! tests) starts three servers, they stay Active while idle, and four kills are restarted.
//! Skipped, with a note, when tarsnode has not been built into that directory.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_tars-bench-node");

#[test]
fn quick_run() {
    let dir = Path::new(BIN).parent().unwrap();
    // A workspace `cargo test` builds them (tars-node's own tests need them); never skipped.
    assert!(
        dir.join("tarsnode").is_file() && dir.join("tarsnode-test-server").is_file(),
        "no tarsnode / tarsnode-test-server in {}: run `cargo build -p tars-node --bins` or test the whole workspace",
        dir.display()
    );
    let out = Command::new(BIN).args(["--quick", "--json"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}\nstdout:\n{stdout}\nstderr:\n{stderr}", out.status);
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(v["servers"], 3, "{v}");
    assert_eq!(v["idle"]["still_active"], 3, "{v}");
    assert!(v["idle"]["node_rss_kib"].as_u64().unwrap() > 0, "{v}");
    let r = &v["restart"];
    assert_eq!(r["kills"], 4, "{v}");
    assert_eq!(r["node_exit_to_start"]["n"], 4, "{v}");
    assert_eq!(r["kill_to_active"]["n"], 4, "{v}");
    // A kill -9 is restarted well within a second (the node's own test asserts that too).
    assert!(r["kill_to_new_pid_via_node_obj"]["max_ms"].as_f64().unwrap() < 5000.0, "{v}");
}
