//! Smoke test of `tars-bench-registry --quick` on the embedded SQLite backend: both servers
//! answered under load, the ratio and the half-load latencies were measured, and every
//! database change reached QueryObj's answers.

#![allow(clippy::unwrap_used)]

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_tars-bench-registry");

#[test]
fn quick_run_on_sqlite() {
    let out = Command::new(BIN)
        .args(["--quick", "--json", "--shards", "1,2", "--duration", "0.4", "--warmup", "0.1"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}\nstdout:\n{stdout}\nstderr:\n{stderr}", out.status);
    for what in ["registry", "echo", "propagation", "SQLite", "command: ", "1 client thread(s)"] {
        assert!(stderr.contains(what), "{what:?} missing from the report:\n{stderr}");
    }

    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(v["objects"], 200, "{v}");
    assert_eq!(v["populate"]["server_rows"], 2000, "{v}");
    assert_eq!(v["populate"]["adapter_rows"], 2000, "{v}");
    assert_eq!(v["client"]["threads"], 1, "{v}");
    let rounds = v["rounds"].as_array().unwrap();
    assert_eq!(rounds.iter().map(|r| r["shards"].as_u64().unwrap()).collect::<Vec<_>>(), [1, 2], "{v}");
    for r in rounds {
        assert!(r["servants_routed"].as_u64().unwrap() >= 200, "{r}");
        for target in ["registry", "echo"] {
            let m = &r["closed"][target];
            assert_eq!(m["target"], target, "{r}");
            assert!(m["qps"].as_f64().unwrap() > 0.0, "{r}");
            assert_eq!(m["errors"], 0, "{r}");
            assert!(m["latency_us"]["p99"].as_f64().unwrap() > 0.0, "{r}");
            assert!(m["server_cpu_us_per_req"].as_f64().unwrap() > 0.0, "{r}");
        }
        let ratio = r["closed"]["qps_ratio"].as_f64().unwrap();
        assert!(ratio > 0.0 && ratio.is_finite(), "{r}");
        let open = r["open"].as_array().unwrap();
        assert_eq!(open.len(), 3, "{r}");
        for m in open {
            assert_eq!(m["mode"], "open", "{r}");
            assert!(m["qps"].as_f64().unwrap() > 0.0 && m["latency_us"]["p99"].as_f64().unwrap() > 0.0, "{r}");
            assert_eq!(m["errors"], 0, "{r}");
        }
        assert_eq!(open[0]["target"], "registry", "{r}");
        assert_eq!(open[0]["target_rate"], open[1]["target_rate"], "{r}");
        let p = &r["propagation"]["all_seen"];
        assert_eq!(p["n"], 4, "{r}");
        // The default 200 ms change poll: a change shows within a few polls.
        assert!(p["min_ms"].as_f64().unwrap() > 0.0 && p["max_ms"].as_f64().unwrap() < 5000.0, "{r}");
        assert_eq!(r["goals"].as_array().unwrap().len(), 3, "{r}");
    }
}
