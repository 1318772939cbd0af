//! tarslog end to end, on real sockets on every IO driver, through the generated `LogProxy`,
//! with the service in this process on a fake clock:
//!
//! - upstream's file names, directories (set levels), line prefixes, the hourly and log-type
//!   overrides and their reload, dyeing, the trace route; a roll across an hour boundary;
//! - hostile path components are refused and nothing is written anywhere;
//! - a writer blocked in the file system: the queue fills, lines are dropped and counted, the
//!   bytes queued stay within the bound and calls keep being answered.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use common::{files, info, local, tree, Client, Server};
use tars_core_net::rt::IoMode;
use tars_proto::codec::BinString;
use tars_proto::Bytes;
use tars_testkit::process::TempDir;

fn names_and_lines_as_upstream(io: IoMode) {
    let dir = TempDir::new("log-names").unwrap();
    let root = dir.0.join("remote_app_log");
    let extra = "<format>\nhour=Hourly.Srv|Other.Srv\n</format>\n<logtype>\nhour=App.Srv.typed\n</logtype>";
    let text = common::config_text(&root, extra);
    let server = Server::start(io, &text, &dir.0.join("tarslog.conf"), local(13, 59, 30));
    let c = Client::new(server.addr(), io);

    c.logger("App", "Srv", "biz", "%Y%m%d", &["a\n", "b\n"]);
    c.logger("App", "Srv", "", "%Y%m%d", &["c\n"]);
    c.logger("Hourly", "Srv", "", "%Y%m%d", &["h1\n"]);
    c.logger("tars_dyeing", "dyeing", "roll", "%Y%m%d", &["App.Srv|dyed\n"]);
    let mut i = info("App", "Srv", "x", "%Y%m%d");
    i.setdivision = "mtt.sz.1".into();
    i.s_concat_str = "-".into();
    i.s_separ = "#".into();
    i.b_has_sufix = false;
    c.by_info(i, vec!["s1\n".into()]);
    let mut i = info("App", "Srv", "g", "%Y%m%d");
    i.setdivision = "mtt.sz.*".into();
    i.b_has_app_name_prefix = false;
    c.by_info(i, vec!["s2\n".into()]);
    // The server's logtype override wins over the client's type, with the canonical format.
    let mut i = info("App", "Srv", "typed", "%Y-%m-%d");
    i.s_log_type = "day".into();
    c.by_info(i, vec!["t\n".into()]);
    // The client's type: 10-minute periods named by their start.
    let mut i = info("App", "Srv", "ten", "%Y%m%d%H%M");
    i.s_log_type = "10minute".into();
    c.by_info(i, vec!["m\n".into()]);
    // Trace: `_tars_/_trace_`, app and server in the line, lines over 1 MB dropped.
    let i = info("Biz", "Svc", "_t_trace_", "%Y%m%d");
    c.by_info(i, vec!["tr1\n".into(), "x".repeat(1_000_001).into(), "tr2\n".into()]);
    server.settle();

    // Over the hour.
    server.clock.set(local(14, 0, 30));
    c.logger("Hourly", "Srv", "", "%Y%m%d", &["h2\n"]);
    c.logger("App", "Srv", "biz", "%Y%m%d", &["d\n"]);
    let mut i = info("App", "Srv", "ten", "%Y%m%d%H%M");
    i.s_log_type = "10minute".into();
    c.by_info(i, vec!["m2\n".into()]);
    server.settle();

    // Reload without the hourly list: Hourly.Srv rolls by the client's format again.
    std::fs::write(&server.config_file, common::config_text(&root, "<format>\nhour=Other.Srv\n</format>")).unwrap();
    assert_eq!(server.admin("reloadLogFormat"), "loadLogFormat succ:Other.Srv");
    c.logger("Hourly", "Srv", "", "%Y%m%d", &["h3\n"]);
    // And the logtype override is gone: the client's `day` with its own format.
    let mut i = info("App", "Srv", "typed", "%Y-%m-%d");
    i.s_log_type = "day".into();
    c.by_info(i, vec!["t2\n".into()]);
    server.settle();

    let ip = "127.0.0.1";
    let expected: BTreeMap<String, String> = [
        ("App/Srv/App.Srv_biz_20240501.log", format!("{ip}|a\n{ip}|b\n{ip}|d\n")),
        ("App/Srv/App.Srv_20240501.log", format!("{ip}|c\n")),
        ("Hourly/Srv/Hourly.Srv_2024050113.log", format!("{ip}|h1\n")),
        ("Hourly/Srv/Hourly.Srv_2024050114.log", format!("{ip}|h2\n")),
        ("Hourly/Srv/Hourly.Srv_20240501.log", format!("{ip}|h3\n")),
        ("tars_dyeing/dyeing/tars_dyeing.dyeing_roll_20240501.log", format!("{ip}|App.Srv|dyed\n")),
        ("App/mttsz1/Srv/App.Srv-x-20240501", format!("{ip}#s1\n")),
        ("App/mttsz/Srv/g_20240501.log", format!("{ip}|s2\n")),
        ("App/Srv/App.Srv_typed_2024050113.log", format!("{ip}|t\n")),
        ("App/Srv/App.Srv_typed_2024-05-01.log", format!("{ip}|t2\n")),
        ("App/Srv/App.Srv_ten_202405011350.log", format!("{ip}|m\n")),
        ("App/Srv/App.Srv_ten_202405011400.log", format!("{ip}|m2\n")),
        ("_tars_/_trace_/_tars_._trace___t_trace__20240501.log", format!("{ip}|Biz|Svc|tr1\n{ip}|Biz|Svc|tr2\n")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(files(&root), expected);

    let stats = server.admin("tars.logstats");
    assert!(stats.contains("lines received: 17\n"), "{stats}");
    assert!(stats.contains("lines written: 16\n"), "{stats}");
    assert!(stats.contains("trace lines too long: 1\n"), "{stats}");
    assert!(stats.contains("lines dropped (queue full): 0\n"), "{stats}");
    assert!(stats.contains("requests refused (bad path): 0 "), "{stats}");
}

/// `ipfix=false`: the lines as sent.
fn without_ip_prefix(io: IoMode) {
    let dir = TempDir::new("log-noip").unwrap();
    let root = dir.0.join("logs");
    let server = Server::start(io, &common::config_text(&root, "ipfix=false"), &dir.0.join("c.conf"), local(9, 0, 0));
    let c = Client::new(server.addr(), io);
    c.logger("A", "B", "", "%Y%m%d%H", &["one\n", "two"]);
    let i = info("Biz", "Svc", "_t_trace_", "%Y%m%d");
    c.by_info(i, vec!["tr\n".into()]);
    server.settle();
    let expected: BTreeMap<String, String> = [
        ("A/B/A.B_2024050109.log".to_owned(), "one\ntwo".to_owned()),
        ("_tars_/_trace_/_tars_._trace___t_trace__20240501.log".to_owned(), "Biz|Svc|tr\n".to_owned()),
    ]
    .into_iter()
    .collect();
    assert_eq!(files(&root), expected);
}

/// Lines are bytes, as C++ servers send them: text that is not UTF-8 (GBK here, which Chinese
/// C++ servers commonly log in) is written byte for byte, not refused with the whole call.
fn lines_are_bytes(io: IoMode) {
    let dir = TempDir::new("log-bytes").unwrap();
    let root = dir.0.join("logs");
    let server = Server::start(io, &common::config_text(&root, "ipfix=false"), &dir.0.join("c.conf"), local(9, 0, 0));
    let c = Client::new(server.addr(), io);
    let gbk: &[u8] = b"\xc4\xe3\xba\xc3 \xff\n";
    c.logger_owned("A", "B", "", vec![BinString(Bytes::from_static(gbk)), "utf8 \u{4f60}\n".into()]);
    server.settle();
    let written = std::fs::read(root.join("A/B/A.B_20240501.log")).unwrap();
    assert_eq!(written, [gbk, "utf8 \u{4f60}\n".as_bytes()].concat());
}

fn hostile_paths_are_refused(io: IoMode) {
    let dir = TempDir::new("log-hostile").unwrap();
    let root = dir.0.join("root");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(dir.0.join("outside.txt"), "keep").unwrap();
    let server = Server::start(io, &common::config_text(&root, ""), &dir.0.join("c.conf"), local(12, 0, 0));
    let before = tree(&dir.0);
    let c = Client::new(server.addr(), io);

    let bad = ["..", "../x", "../../etc", "a/b", "/abs", "a\\b", "a\0b", "a\nb", ".", "x..", &"n".repeat(300)];
    let mut requests = 0;
    for b in bad {
        c.logger(b, "S", "", "%Y%m%d", &["l\n"]);
        c.logger("A", b, "", "%Y%m%d", &["l\n"]);
        c.logger("A", "S", b, "%Y%m%d", &["l\n"]);
        c.by_info(info(b, "S", "f", "%Y%m%d"), vec!["l\n".into()]);
        c.by_info(info("A", b, "f", "%Y%m%d"), vec!["l\n".into()]);
        c.by_info(info("A", "S", b, "%Y%m%d"), vec!["l\n".into()]);
        requests += 6;
        // Dots separate the set's parts (upstream), so only the others make a bad set.
        if !b.contains('.') {
            let mut i = info("A", "S", "f", "%Y%m%d");
            i.setdivision = format!("{b}.sz.1");
            c.by_info(i, vec!["l\n".into()]);
            requests += 1;
        }
    }
    // A separator in the set's group, empty names, a format that makes a path, a bad format,
    // a concatenation string with a slash.
    let mut i = info("A", "S", "f", "%Y%m%d");
    i.setdivision = "x.y./".into();
    c.by_info(i, vec!["l\n".into()]);
    c.logger("", "S", "", "%Y%m%d", &["l\n"]);
    c.logger("A", "", "", "%Y%m%d", &["l\n"]);
    c.by_info(info("", "", "", "%Y%m%d"), vec!["l\n".into()]);
    c.logger("A", "S", "", "%Y/../../%m", &["l\n"]);
    c.logger("A", "S", "", "%Q%", &["l\n"]);
    let mut i = info("A", "S", "f", "%Y%m%d");
    i.s_concat_str = "/../".into();
    c.by_info(i, vec!["l\n".into()]);
    let mut i = info("A", "S", "", "%Y%m%d");
    i.b_has_app_name_prefix = false;
    i.s_concat_str = "..".into();
    i.b_has_sufix = false;
    i.s_format = String::new();
    c.by_info(i, vec!["l\n".into()]);
    requests += 8;
    server.settle();

    assert_eq!(tree(&dir.0), before, "a refused request wrote something");
    let counters = server.counters();
    assert_eq!(counters.refused.load(Relaxed), requests);
    assert_eq!(counters.refused_lines.load(Relaxed), requests);
    assert_eq!(counters.written.load(Relaxed), 0);

    // The service still writes good requests, inside the root only.
    c.logger("A", "S", "", "%Y%m%d", &["ok\n"]);
    server.settle();
    let mut after = tree(&dir.0);
    for k in ["root/A", "root/A/S"] {
        assert_eq!(after.remove(k), Some(None));
    }
    assert_eq!(after.remove("root/A/S/A.S_20240501.log"), Some(Some("127.0.0.1|ok\n".into())));
    assert_eq!(after, before);
}

/// The writer thread blocks opening a FIFO nobody reads (a disk that does not answer):
/// the queue fills to its bound, then lines are dropped and counted; every call is still
/// answered at once; once the writer moves again what was queued is written.
fn full_queue_drops_and_counts(io: IoMode) {
    let dir = TempDir::new("log-full").unwrap();
    let root = dir.0.join("root");
    std::fs::create_dir_all(root.join("Blk/Srv")).unwrap();
    let fifo = root.join("Blk/Srv/Blk.Srv_20240501.log");
    let st = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(st.success());
    let server = Server::start(
        io,
        &common::config_text(&root, "logthread=1\nqueueMB=1"),
        &dir.0.join("c.conf"),
        local(12, 0, 0),
    );
    let c = Client::new(server.addr(), io);
    c.logger("Blk", "Srv", "", "%Y%m%d", &["blocked\n"]);
    std::thread::sleep(Duration::from_millis(300));

    let counters = server.counters();
    let line = format!("{}\n", "z".repeat(1023));
    let batch: Vec<BinString> = (0..64).map(|_| line.as_str().into()).collect(); // 64 KiB a call
    let mut max_queued = 0;
    let mut slowest = Duration::ZERO;
    for _ in 0..100 {
        let t = Instant::now();
        c.logger_owned("Flood", "Srv", "", batch.clone());
        slowest = slowest.max(t.elapsed());
        max_queued = max_queued.max(counters.bytes_queued.load(Relaxed));
    }
    let dropped = counters.dropped.load(Relaxed);
    assert!(max_queued <= 1 << 20, "queued {max_queued} bytes, over the 1 MiB bound");
    assert!(max_queued > 512 << 10, "the queue never filled ({max_queued} bytes)");
    // 6.4 MiB sent, at most 1 MiB held: at least 5.4 MiB of lines dropped.
    assert!(dropped >= 64 * 84, "only {dropped} lines dropped");
    assert_eq!(counters.written.load(Relaxed), 0, "the writer was not blocked");
    assert!(slowest < Duration::from_secs(2), "a call waited {slowest:?}: the shard blocked");
    let stats = server.admin("tars.logstats");
    assert!(stats.contains(&format!("lines dropped (queue full): {dropped}\n")), "{stats}");

    // Unblock: read the FIFO to its end.
    let reader = std::thread::spawn(move || std::fs::read(&fifo).unwrap());
    server.settle();
    let received = counters.received.load(Relaxed);
    let written = counters.written.load(Relaxed);
    assert_eq!(written + dropped, received);
    let flood = std::fs::read_to_string(root.join("Flood/Srv/Flood.Srv_20240501.log")).unwrap();
    assert_eq!(flood.lines().count() as u64, written - 1);
    server.stop();
    assert_eq!(reader.join().unwrap(), b"127.0.0.1|blocked\n");
}

/// fsync=always: every round is synced (counted), the lines are there.
fn fsync_always(io: IoMode) {
    let dir = TempDir::new("log-fsync").unwrap();
    let root = dir.0.join("root");
    let server = Server::start(io, &common::config_text(&root, "fsync=always"), &dir.0.join("c.conf"), local(12, 0, 0));
    let c = Client::new(server.addr(), io);
    for n in 0..3 {
        c.logger("A", "S", "", "%Y%m%d", &[&format!("{n}\n")]);
    }
    server.settle();
    assert!(server.counters().fsyncs.load(Relaxed) >= 1);
    assert_eq!(files(&root)["A/S/A.S_20240501.log"], "127.0.0.1|0\n127.0.0.1|1\n127.0.0.1|2\n");
}

tars_testkit::on_every_driver! {
    names => names_and_lines_as_upstream;
    no_ip => without_ip_prefix;
    bytes => lines_are_bytes;
    hostile => hostile_paths_are_refused;
    full_queue => full_queue_drops_and_counts;
    fsync => fsync_always;
}
