//! Smoke test of `tars-bench-config --quick` on the embedded SQLite backend: every server
//! answered under load without an error and the ratios were measured.

#![allow(clippy::unwrap_used)]

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_tars-bench-config");

#[test]
fn quick_run_on_sqlite() {
    let out = Command::new(BIN).args(["--quick", "--json", "--duration", "0.3", "--warmup", "0.1"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}\nstdout:\n{stdout}\nstderr:\n{stderr}", out.status);
    assert!(stderr.contains("config / echo QPS"), "{stderr}");
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    let rounds = v["rounds"].as_array().unwrap();
    assert_eq!(rounds.len(), 1, "{v}");
    let r = &rounds[0];
    assert!(r["load_config_reply_bytes"].as_u64().unwrap() > 1000, "{r}");
    for t in ["config", "config-nocache", "echo", "echo-sized"] {
        let m = &r["median"][t];
        assert!(m["qps"].as_f64().unwrap() > 0.0, "{t}: {r}");
        assert_eq!(m["errors"], 0, "{t}: {r}");
    }
    let ratio = r["median"]["config"]["qps_ratio_to_echo"].as_f64().unwrap();
    assert!(ratio > 0.0 && ratio.is_finite(), "{r}");
}
