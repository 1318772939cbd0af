//! What the log tests share: a tarslog in-process on a fake clock, a client of its LogObj,
//! the tree of files under a directory.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{Local, TimeZone};
use tars_core_net::app::{Application, Running};
use tars_core_net::client::config::ClientConfig;
use tars_core_net::client::BlockingClient;
use tars_core_net::rt::IoMode;
use tars_log::clock::ManualClock;
use tars_log::LogService;
use tars_proto::codec::BinString;
use tars_proto::config::Config;
use tars_proto::rpc::CallOptions;
use tars_protocol::tars::{LogInfo, LogProxy};

pub(crate) const OBJ: &str = "tars.tarslog.LogObj";

/// Seconds since the epoch of a local time on 2024-05-01.
pub(crate) fn local(h: u32, m: u32, s: u32) -> i64 {
    Local.with_ymd_and_hms(2024, 5, 1, h, m, s).unwrap().timestamp()
}

/// The config text of a tarslog writing under `root`, with `extra` inside `<log>`.
pub(crate) fn config_text(root: &Path, extra: &str) -> String {
    format!(
        "<tars>\n<application>\n<server>\napp=tars\nserver=tarslog\nlocal=tcp -h 127.0.0.1 -p 0 -t 10000\n\
         <{OBJ}Adapter>\nendpoint=tcp -h 127.0.0.1 -p 0 -t 60000\nservant={OBJ}\n</{OBJ}Adapter>\n\
         </server>\n</application>\n<log>\nlogpath={}\n{extra}\n</log>\n</tars>\n",
        root.display()
    )
}

/// A tarslog in this process.
pub(crate) struct Server {
    pub(crate) running: Running,
    pub(crate) clock: ManualClock,
    pub(crate) config_file: PathBuf,
}

impl Server {
    /// Starts tarslog from `text` (also written to `config_file`, which `reloadLogFormat`
    /// reads) at the clock's time `t`.
    pub(crate) fn start(io: IoMode, text: &str, config_file: &Path, t: i64) -> Server {
        std::fs::write(config_file, text).unwrap();
        let clock = ManualClock::new(t);
        let service = LogService::new().clock(Arc::new(clock.clone())).config_file(Some(config_file.to_owned()));
        let running =
            Application::new(Config::parse(text).unwrap()).unwrap().io(io).shards(2).service(service).start().unwrap();
        Server { running, clock, config_file: config_file.to_owned() }
    }

    /// Stops the server gracefully (the writers flush and close their files).
    pub(crate) fn stop(self) {
        self.running.shutdown();
        self.running.wait().unwrap();
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.running.server().addr(&format!("{OBJ}Adapter")).unwrap()
    }

    pub(crate) fn admin(&self, command: &str) -> String {
        tars_testkit::raw::admin_notify(self.running.server().addr("AdminAdapter").unwrap(), command).unwrap()
    }

    pub(crate) fn counters(&self) -> &tars_log::writer::Counters {
        self.running.service::<LogService>().unwrap().counters()
    }

    /// Waits until every received line was written, dropped, refused or failed.
    pub(crate) fn settle(&self) {
        use std::sync::atomic::Ordering::Relaxed;
        let c = self.counters();
        let ok = tars_testkit::wait_for(Duration::from_secs(10), || {
            let r = c.received.load(Relaxed);
            let done = c.written.load(Relaxed)
                + c.dropped.load(Relaxed)
                + c.refused_lines.load(Relaxed)
                + c.failed.load(Relaxed)
                + c.too_long.load(Relaxed);
            (done >= r && c.bytes_queued.load(Relaxed) == 0).then_some(())
        });
        assert!(ok.is_some(), "lines not settled: {}", c.describe(0));
        // Past one flush period.
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// A client of one tarslog's LogObj.
pub(crate) struct Client {
    client: BlockingClient,
    object: String,
}

impl Client {
    pub(crate) fn new(addr: SocketAddr, io: IoMode) -> Client {
        Client {
            client: BlockingClient::start(ClientConfig::default(), io).unwrap(),
            object: format!("{OBJ}@tcp -h 127.0.0.1 -p {} -t 10000", addr.port()),
        }
    }

    pub(crate) fn logger(&self, app: &str, server: &str, file: &str, format: &str, lines: &[&str]) {
        let (object, app, server, file, format) =
            (self.object.clone(), app.to_owned(), server.to_owned(), file.to_owned(), format.to_owned());
        let lines: Vec<BinString> = lines.iter().map(|s| BinString::from(*s)).collect();
        self.client.run(move |comm| async move {
            let p = LogProxy::new(comm.proxy(&object).unwrap(), OBJ)
                .with_options(CallOptions { timeout_ms: 10_000, ..CallOptions::default() });
            p.logger(&app, &server, &file, &format, &lines).await.unwrap();
        });
    }

    pub(crate) fn logger_owned(&self, app: &str, server: &str, file: &str, lines: Vec<BinString>) {
        let (object, app, server, file) = (self.object.clone(), app.to_owned(), server.to_owned(), file.to_owned());
        self.client.run(move |comm| async move {
            let p = LogProxy::new(comm.proxy(&object).unwrap(), OBJ)
                .with_options(CallOptions { timeout_ms: 10_000, ..CallOptions::default() });
            p.logger(&app, &server, &file, "%Y%m%d", &lines).await.unwrap();
        });
    }

    pub(crate) fn by_info(&self, info: LogInfo, lines: Vec<BinString>) {
        let object = self.object.clone();
        self.client.run(move |comm| async move {
            let p = LogProxy::new(comm.proxy(&object).unwrap(), OBJ)
                .with_options(CallOptions { timeout_ms: 10_000, ..CallOptions::default() });
            p.loggerby_info(&info, &lines).await.unwrap();
        });
    }
}

/// A `LogInfo` with the IDL's defaults.
pub(crate) fn info(app: &str, server: &str, file: &str, format: &str) -> LogInfo {
    LogInfo {
        appname: app.into(),
        servername: server.into(),
        s_filename: file.into(),
        s_format: format.into(),
        ..LogInfo::default()
    }
}

/// Every file under `dir` (relative path → content) and every directory (→ `None`).
pub(crate) fn tree(dir: &Path) -> BTreeMap<String, Option<String>> {
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Option<String>>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries {
        let e = e.unwrap();
        let p = e.path();
        let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
        if e.file_type().unwrap().is_dir() {
            out.insert(rel, None);
            walk(root, &p, out);
        } else {
            out.insert(rel, Some(String::from_utf8_lossy(&std::fs::read(&p).unwrap_or_default()).into_owned()));
        }
    }
}

/// Only the files of [`tree`].
pub(crate) fn files(dir: &Path) -> BTreeMap<String, String> {
    tree(dir).into_iter().filter_map(|(k, v)| v.map(|v| (k, v))).collect()
}
