//! The `tarslog` binary: starts on an upstream-style `<log>` config, prints `READY`, writes
//! what `logger` sends under `logpath`, re-reads `<format>` from its file on
//! `reloadLogFormat`, and on SIGTERM flushes what it holds (the flush period is 10 s here, so
//! only the stop can have written the last line) before it exits 0.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use tars_core_net::client::config::ClientConfig;
use tars_core_net::client::BlockingClient;
use tars_core_net::rt::IoMode;
use tars_proto::rpc::CallOptions;
use tars_protocol::tars::LogProxy;
use tars_testkit::process::{BinaryProcess, TempDir};
use tars_testkit::raw::admin_notify;

const OBJ: &str = "tars.tarslog.LogObj";

fn config(root: &std::path::Path, hourly: &str) -> String {
    format!(
        "<tars>\n<application>\n<server>\napp=tars\nserver=tarslog\nlocal=tcp -h 127.0.0.1 -p 0 -t 3000\n\
         <{OBJ}Adapter>\nendpoint=tcp -h 127.0.0.1 -p 0 -t 60000\nservant={OBJ}\n</{OBJ}Adapter>\n</server>\n\
         </application>\n<log>\nlogpath={}\nipfix=false\nflushMs=10000\n<format>\nhour={hourly}\n</format>\n</log>\n</tars>\n",
        root.display()
    )
}

fn send(client: &BlockingClient, port: u16, app: &'static str, line: &'static str) {
    client.run(move |comm| async move {
        let p = LogProxy::new(comm.proxy(&format!("{OBJ}@tcp -h 127.0.0.1 -p {port}")).unwrap(), OBJ)
            .with_options(CallOptions { timeout_ms: 5000, ..CallOptions::default() });
        p.logger(app, "Srv", "", "%Y%m%d", &vec![line.into()]).await.unwrap();
    });
}

/// The one file under `<root>/<app>/Srv`: its name and text.
fn only_file(root: &std::path::Path, app: &str) -> (String, String) {
    let dir = root.join(app).join("Srv");
    let files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0].file_name().unwrap().to_string_lossy().into_owned();
    (name, std::fs::read_to_string(&files[0]).unwrap())
}

#[test]
fn binary_writes_reloads_its_formats_and_flushes_at_stop() {
    let root = TempDir::new("tarslog-bin-root").unwrap();
    let process =
        BinaryProcess::start(env!("CARGO_BIN_EXE_tarslog"), &config(&root.0, "None.Srv"), &["--shards=1"]).unwrap();
    let port = process.addr(&format!("{OBJ}Adapter")).expect("the adapter's address in the banner").port();
    let admin = process.addr("AdminAdapter").expect("the admin address in the banner");
    let client = BlockingClient::start(ClientConfig::default(), IoMode::EpollEt).unwrap();

    // Hourly naming is read again from the file the binary was started with.
    std::fs::write(process.dir().join("server.conf"), config(&root.0, "Hourly.Srv")).unwrap();
    assert_eq!(admin_notify(admin, "reloadLogFormat").unwrap(), "loadLogFormat succ:Hourly.Srv");
    send(&client, port, "Daily", "by day\n");
    send(&client, port, "Hourly", "by hour\n");

    std::thread::sleep(Duration::from_millis(300));
    let early = std::fs::read_dir(root.0.join("Daily/Srv"))
        .map(|d| d.map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap()).collect::<String>())
        .unwrap_or_default();
    assert_eq!(early, "", "written before the flush was due");
    let exited = process.terminate(Duration::from_secs(10));
    assert!(exited.is_some_and(|s| s.success()), "tarslog did not stop cleanly on SIGTERM: {exited:?}");
    let (daily, text) = only_file(&root.0, "Daily");
    assert_eq!(text, "by day\n");
    // `Daily.Srv_YYYYMMDD.log` and `Hourly.Srv_YYYYMMDDHH.log`.
    let stamp = |name: &str, prefix: &str| name.strip_prefix(prefix).and_then(|n| n.strip_suffix(".log")).map(str::len);
    assert_eq!(stamp(&daily, "Daily.Srv_"), Some(8), "{daily}");
    let (hourly, text) = only_file(&root.0, "Hourly");
    assert_eq!(text, "by hour\n");
    assert_eq!(stamp(&hourly, "Hourly.Srv_"), Some(10), "{hourly}");
}
