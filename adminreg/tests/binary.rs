//! The `tarsAdminRegistry` binary: starts on an upstream-style config with `<db>` (SQLite,
//! migrated by the binary), prints `READY`, answers `getVersion` and `getAllApplicationNames`,
//! and stops on SIGTERM.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use tars_core_net::client::config::ClientConfig;
use tars_core_net::client::BlockingClient;
use tars_core_net::rt::IoMode;
use tars_proto::rpc::CallOptions;
use tars_protocol::tars::AdminRegProxy;
use tars_testkit::process::{BinaryProcess, TempDir};

const OBJ: &str = "tars.tarsAdminRegistry.AdminRegObj";

#[test]
fn binary_starts_and_answers() {
    let dir = TempDir::new("adminreg-bin").unwrap();
    let db = dir.0.join("db_tars.sqlite3");
    let config = format!(
        "<tars>\n<application>\n<server>\napp=tars\nserver=tarsAdminRegistry\nlocal=tcp -h 127.0.0.1 -p 0 -t 3000\n\
         <{OBJ}Adapter>\nendpoint=tcp -h 127.0.0.1 -p 0 -t 60000\nservant={OBJ}\n</{OBJ}Adapter>\n</server>\n\
         </application>\n<db>\nurl=sqlite:{}\n</db>\n</tars>\n",
        db.display()
    );
    let process = BinaryProcess::start(env!("CARGO_BIN_EXE_tarsAdminRegistry"), &config, &["--shards=1"]).unwrap();
    let port = process.addr(&format!("{OBJ}Adapter")).expect("the adapter's address in the banner").port();
    let client = BlockingClient::start(ClientConfig::default(), IoMode::EpollEt).unwrap();
    let (version, apps) = client.run(move |comm| async move {
        let p = AdminRegProxy::new(comm.proxy(&format!("{OBJ}@tcp -h 127.0.0.1 -p {port}")).unwrap(), OBJ)
            .with_options(CallOptions { timeout_ms: 5000, ..CallOptions::default() });
        let mut v = String::new();
        assert_eq!(p.get_version(&mut v).await.unwrap(), 0);
        (v, p.get_all_application_names(&mut String::new()).await.unwrap())
    });
    assert!(version.starts_with("tars-rs-"), "{version}");
    assert!(apps.is_empty());
    let exited = process.terminate(Duration::from_secs(10));
    assert!(exited.is_some_and(|s| s.success()), "tarsAdminRegistry did not stop on SIGTERM: {exited:?}");
}
