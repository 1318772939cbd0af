//! Smoke test of `tars-bench-store` against the test MariaDB (`TARS_TEST_MYSQL_URL`): every
//! method reports a positive rate, every table held exactly the rows written, and the
//! benchmark's own database is gone afterwards.

#![allow(clippy::unwrap_used)]

use std::process::Command;

use tars_bench::store::Method;
use tars_sql::Store;

const BIN: &str = env!("CARGO_BIN_EXE_tars-bench-store");

#[test]
fn quick_run_on_the_test_server() {
    let url = tars_testkit::mysql::mysql_url();
    let child = Command::new(BIN)
        .args(["--quick", "--json", "--url", &url])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}\nstdout:\n{stdout}\nstderr:\n{stderr}", out.status);
    assert!(stderr.contains("machine: nproc") && stderr.contains("command: "), "{stderr}");
    assert!(!stderr.contains("tars2015"), "the password leaked: {stderr}");

    let lines: Vec<serde_json::Value> =
        stdout.lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).unwrap()).collect();
    let names: Vec<&str> = lines.iter().map(|v| v["method"].as_str().unwrap()).collect();
    let expected: Vec<String> = Method::all().iter().map(ToString::to_string).collect();
    assert_eq!(names, expected, "{stdout}");
    for v in &lines {
        assert!(v["rows_per_s"].as_f64().unwrap() > 0.0, "{v}");
        assert!(v["ratio_to_best_mysql"].as_f64().unwrap() > 0.0, "{v}");
        let runs = v["runs"].as_array().unwrap();
        assert_eq!(runs.len(), 1, "{v}");
        for r in runs {
            let written = r["written"].as_u64().unwrap();
            assert!(written > 0, "{v}");
            assert_eq!(r["counted"].as_u64(), Some(written), "{v}");
            assert_eq!(r["affected"].as_u64(), Some(written), "{v}");
            assert!(r["rows_per_s"].as_f64().unwrap() > 0.0, "{v}");
        }
    }

    // The benchmark dropped its database.
    let admin = Store::open(&url).unwrap();
    let db = format!("bench_store_{pid}");
    let left = admin
        .run_blocking(move |s| s.query("SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", &[db.into()]))
        .unwrap();
    assert!(left.is_empty(), "bench_store_{pid} was not dropped");
}
