//! The official Node remote logger (`@tars/logs` 2.1.1 over `@tars/winston-tars` 2.1.3,
//! `interop/log_client.js`) writes through our LogObj, in this process on a fake clock, on
//! every IO driver; the files are exactly those upstream's tarslog makes: names,
//! directories (the set level), the client-address prefix with the logger's separator, the
//! lines. The second run is past the hour: the hourly and 5-minute files roll, the daily
//! one does not.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{files, local, Server};
use tars_core_net::rt::IoMode;
use tars_testkit::process::TempDir;

/// The Node server's own config: app, server, its local logpath (not the log root).
fn node_config(path: &Path, local_logs: &Path, set: bool) {
    let set = if set { "enableset=y\nsetdivision=mtt.sz.1\n" } else { "" };
    let text = format!(
        "<tars>\n<application>\n{set}<server>\napp=NodeApp\nserver=NodeSrv\nlogpath={}\n</server>\n</application>\n</tars>\n",
        local_logs.display()
    );
    std::fs::write(path, text).unwrap();
}

/// Runs `log_client.js` once; returns its pid.
fn run(dir: &Path, endpoint: &str, tag: &str) -> u32 {
    let (plain, set) = (dir.join("node.conf"), dir.join("node-set.conf"));
    let out = tars_testkit::node::run_script(
        "log_client.js",
        &[plain.to_str().unwrap(), set.to_str().unwrap(), endpoint, tag],
        &["@tars/logs", "@tars/winston-tars", "@tars/utils"],
    );
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    u32::try_from(v["pid"].as_u64().unwrap()).unwrap()
}

/// `127.0.0.1<sep>YYYY-MM-DD HH:MM:SS<sep><rest>\n` for each line of `text`: the time
/// replaced by `T`, so the rest can be compared exactly.
fn untimed(text: &str, sep: &str) -> String {
    let mut out = String::new();
    for line in text.split_inclusive('\n') {
        let prefix = format!("127.0.0.1{sep}");
        let rest = line.strip_prefix(&prefix).unwrap_or_else(|| panic!("no address prefix: {line:?}"));
        let (time, rest) = rest.split_at(19);
        let b = time.as_bytes();
        assert!(
            b[4] == b'-' && b[7] == b'-' && b[10] == b' ' && b[13] == b':' && b[16] == b':',
            "not a time: {time:?} in {line:?}"
        );
        out.push_str(&format!("{prefix}T{rest}"));
    }
    out
}

fn the_official_node_logger_writes_upstream_files(io: IoMode) {
    let dir = TempDir::new("log-node").unwrap();
    let root = dir.0.join("remote_app_log");
    let local_logs = dir.0.join("node-local");
    node_config(&dir.0.join("node.conf"), &local_logs, false);
    node_config(&dir.0.join("node-set.conf"), &local_logs, true);
    let server = Server::start(io, &common::config_text(&root, ""), &dir.0.join("tarslog.conf"), local(13, 59, 40));
    let endpoint = format!("tars.tarslog.LogObj@tcp -h 127.0.0.1 -p {} -t 10000", server.addr().port());

    let pid1 = run(&dir.0, &endpoint, "before");
    server.settle();
    server.clock.set(local(14, 0, 5));
    let pid2 = run(&dir.0, &endpoint, "after");
    server.settle();

    let got = files(&root);
    let names: Vec<&str> = got.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "NodeApp/NodeSrv/NodeApp.NodeSrv_access_20240501.log",
            "NodeApp/NodeSrv/NodeApp.NodeSrv_remote_2024050113.log",
            "NodeApp/NodeSrv/NodeApp.NodeSrv_remote_2024050114.log",
            "NodeApp/mttsz1/NodeSrv/NodeApp.NodeSrv-setlog-202405011355.log",
            "NodeApp/mttsz1/NodeSrv/NodeApp.NodeSrv-setlog-202405011400.log",
        ]
    );
    let detail = |pid: u32, level: &str, sep: &str, tag: &str| -> String {
        (0..3).map(|n| format!("127.0.0.1{sep}T{sep}{pid}{sep}{level}{sep}{tag} {n}\n")).collect()
    };
    let simple = |tag: &str| -> String { (0..3).map(|n| format!("127.0.0.1|T|{tag} {n}\n")).collect() };
    let expected: BTreeMap<&str, String> = [
        ("NodeApp/NodeSrv/NodeApp.NodeSrv_access_20240501.log", simple("before") + &simple("after")),
        ("NodeApp/NodeSrv/NodeApp.NodeSrv_remote_2024050113.log", detail(pid1, "INFO", "|", "before")),
        ("NodeApp/NodeSrv/NodeApp.NodeSrv_remote_2024050114.log", detail(pid2, "INFO", "|", "after")),
        ("NodeApp/mttsz1/NodeSrv/NodeApp.NodeSrv-setlog-202405011355.log", detail(pid1, "ERROR", "#", "before")),
        ("NodeApp/mttsz1/NodeSrv/NodeApp.NodeSrv-setlog-202405011400.log", detail(pid2, "ERROR", "#", "after")),
    ]
    .into_iter()
    .collect();
    for (name, want) in expected {
        let sep = if name.contains("setlog") { "#" } else { "|" };
        assert_eq!(untimed(&got[name], sep), want, "{name}");
    }
}

tars_testkit::on_every_driver! { node => the_official_node_logger_writes_upstream_files; }
