//! Smoke test of `tars-bench-query --quick` on the embedded SQLite backend: both queries were
//! answered through tarsquerystat equal to direct SQL and both latencies were measured.

#![allow(clippy::unwrap_used)]

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_tars-bench-query");

#[test]
fn quick_run_on_sqlite() {
    let out = Command::new(BIN).args(["--quick", "--json"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}\nstdout:\n{stdout}\nstderr:\n{stderr}", out.status);
    assert!(stderr.contains("rpc/direct"), "{stderr}");
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(v["rows"], 20 * 3 * 12 * 24, "{v}");
    let queries = v["queries"].as_array().unwrap();
    assert_eq!(queries.len(), 2, "{v}");
    // One server's day: 24 hours x 12 labels; every server by day: 20 keys.
    assert_eq!(queries[0]["keys"], 288, "{v}");
    assert_eq!(queries[1]["keys"], 20, "{v}");
    for q in queries {
        assert_eq!(q["rpc_us"]["count"], 2, "{q}");
        assert!(q["ratio_p50"].as_f64().unwrap() > 0.0, "{q}");
    }
}
