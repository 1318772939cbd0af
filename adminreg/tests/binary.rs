//! The `tarsAdminRegistry` binary: starts on an upstream-style config with `<db>` (SQLite,
//! migrated by the binary), prints `READY`, answers `getVersion` and `getAllApplicationNames`,
//! and stops on SIGTERM.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use tars_core_net::client::config::ClientConfig;
use tars_core_net::client::BlockingClient;
use tars_core_net::rt::IoMode;
use tars_proto::rpc::CallOptions;
use tars_protocol::tars::AdminRegProxy;

const OBJ: &str = "tars.tarsAdminRegistry.AdminRegObj";

#[test]
fn binary_starts_and_answers() {
    let dir = std::env::temp_dir().join(format!("tars-adminreg-bin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("adminreg.conf");
    let db = dir.join("db_tars.sqlite3");
    std::fs::write(
        &conf,
        format!(
            "<tars>\n<application>\n<server>\napp=tars\nserver=tarsAdminRegistry\nlocal=tcp -h 127.0.0.1 -p 0 -t 3000\n\
             <{OBJ}Adapter>\nendpoint=tcp -h 127.0.0.1 -p 0 -t 60000\nservant={OBJ}\n</{OBJ}Adapter>\n</server>\n\
             </application>\n<db>\nurl=sqlite:{}\n</db>\n</tars>\n",
            db.display()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tarsAdminRegistry"))
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
    let (version, apps) = client.run(move |comm| async move {
        let p = AdminRegProxy::new(comm.proxy(&format!("{OBJ}@tcp -h 127.0.0.1 -p {port}")).unwrap(), OBJ)
            .with_options(CallOptions { timeout_ms: 5000, ..CallOptions::default() });
        let mut v = String::new();
        assert_eq!(p.get_version(&mut v).await.unwrap(), 0);
        (v, p.get_all_application_names(&mut String::new()).await.unwrap())
    });
    assert!(version.starts_with("tars-rs-"), "{version}");
    assert!(apps.is_empty());
    sigterm(child.id());
    let status = wait(&mut child, Duration::from_secs(10));
    assert!(status, "tarsAdminRegistry did not stop on SIGTERM");
    let _ = std::fs::remove_dir_all(&dir);
}

fn sigterm(pid: u32) {
    let _ = Command::new("kill").arg("-TERM").arg(pid.to_string()).status();
}

fn wait(child: &mut std::process::Child, limit: Duration) -> bool {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    false
}
