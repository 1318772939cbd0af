//! The `tarsnotify` binary: starts on an upstream-style config with `<db>` (SQLite, migrated
//! by the binary), prints `READY`, takes a report, and on SIGTERM writes what it still holds
//! (the batch waits 10 s here, so only the stop writes it) before it exits.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tars_core_net::client::config::ClientConfig;
use tars_core_net::client::BlockingClient;
use tars_core_net::rt::IoMode;
use tars_proto::rpc::CallOptions;
use tars_protocol::tars::{NotifyProxy, ReportInfo, ReportType};
use tars_sql::Store;

const OBJ: &str = "tars.tarsnotify.NotifyObj";

#[test]
#[allow(clippy::zombie_processes)] // a failed assertion before the SIGTERM leaves it to the harness
fn binary_starts_takes_a_report_and_writes_it_at_stop() {
    let dir = tars_testkit::process::TempDir::new("tarsnotify-bin").unwrap();
    let conf = dir.0.join("tarsnotify.conf");
    let db = dir.0.join("db_tars.sqlite3");
    std::fs::write(
        &conf,
        format!(
            "<tars>\n<application>\n<server>\napp=tars\nserver=tarsnotify\nlocal=tcp -h 127.0.0.1 -p 0 -t 3000\n\
             <{OBJ}Adapter>\nendpoint=tcp -h 127.0.0.1 -p 0 -t 60000\nservant={OBJ}\n</{OBJ}Adapter>\n</server>\n\
             </application>\n<db>\nurl=sqlite:{}\n</db>\n<writer>\nflushMs=10000\n</writer>\n</tars>\n",
            db.display()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tarsnotify"))
        .arg(format!("--config={}", conf.display()))
        .arg("--shards=1")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut port = None;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if line.trim() == "READY" {
            break;
        }
        if let Some(addr) = line.trim().strip_prefix(&format!("{OBJ}Adapter")) {
            port = addr.trim().rsplit(':').next().and_then(|p| p.parse::<u16>().ok());
        }
    }
    let port = port.expect("the adapter's address in the banner");
    let client = BlockingClient::start(ClientConfig::default(), IoMode::EpollEt).unwrap();
    client.run(move |comm| async move {
        let p = NotifyProxy::new(comm.proxy(&format!("{OBJ}@tcp -h 127.0.0.1 -p {port}")).unwrap(), OBJ)
            .with_options(CallOptions { timeout_ms: 5000, ..CallOptions::default() });
        let info = ReportInfo {
            e_type: ReportType::REPORT,
            s_app: "App".into(),
            s_server: "Bin".into(),
            s_message: "[warn] from the binary test".into(),
            s_node_name: "n9".into(),
            ..ReportInfo::default()
        };
        p.report_notify_info(&info).await.unwrap();
    });
    let store = Store::open(&format!("sqlite:{}", db.display())).unwrap();
    let count = |store: &Store| {
        store
            .run_blocking(|s| s.query("SELECT command, server_id FROM t_server_notifys", &[]))
            .unwrap()
            .iter()
            .map(|r| (r.get_by::<String>("command").unwrap(), r.get_by::<String>("server_id").unwrap()))
            .collect::<Vec<_>>()
    };
    assert!(count(&store).is_empty(), "written before its batch was due");
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut exited = None;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            exited = Some(status);
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    if exited.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    assert!(exited.is_some_and(|s| s.success()), "tarsnotify did not stop cleanly on SIGTERM: {exited:?}");
    assert_eq!(count(&store), vec![("[warn]".to_owned(), "App.Bin_n9".to_owned())]);
}
