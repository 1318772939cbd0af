//! The `tarsnotify` binary: starts on an upstream-style config with `<db>` (SQLite, migrated
//! by the binary), prints `READY`, takes a report, and on SIGTERM writes what it still holds
//! (the batch waits 10 s here, so only the stop writes it) before it exits.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use tars_core_net::client::config::ClientConfig;
use tars_core_net::client::BlockingClient;
use tars_core_net::rt::IoMode;
use tars_proto::rpc::CallOptions;
use tars_protocol::tars::{NotifyProxy, ReportInfo, ReportType};
use tars_sql::Store;
use tars_testkit::process::{BinaryProcess, TempDir};

const OBJ: &str = "tars.tarsnotify.NotifyObj";

#[test]
fn binary_starts_takes_a_report_and_writes_it_at_stop() {
    let dir = TempDir::new("tarsnotify-bin").unwrap();
    let db = dir.0.join("db_tars.sqlite3");
    let config = format!(
        "<tars>\n<application>\n<server>\napp=tars\nserver=tarsnotify\nlocal=tcp -h 127.0.0.1 -p 0 -t 3000\n\
         <{OBJ}Adapter>\nendpoint=tcp -h 127.0.0.1 -p 0 -t 60000\nservant={OBJ}\n</{OBJ}Adapter>\n</server>\n\
         </application>\n<db>\nurl=sqlite:{}\n</db>\n<writer>\nflushMs=10000\n</writer>\n</tars>\n",
        db.display()
    );
    let process = BinaryProcess::start(env!("CARGO_BIN_EXE_tarsnotify"), &config, &["--shards=1"]).unwrap();
    let port = process.addr(&format!("{OBJ}Adapter")).expect("the adapter's address in the banner").port();
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
    let exited = process.terminate(Duration::from_secs(10));
    assert!(exited.is_some_and(|s| s.success()), "tarsnotify did not stop cleanly on SIGTERM: {exited:?}");
    assert_eq!(count(&store), vec![("[warn]".to_owned(), "App.Bin_n9".to_owned())]);
}
