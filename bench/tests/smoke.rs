//! Smoke test of the load generator against `tars-echo-server`: raw and TARS mode on every
//! IO driver, closed and open loop, errors counted, and a quick matrix run.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tars_bench::load::{run, LoadConfig, Report, Stop};
use tars_bench::proto::Proto;
use tars_core_net::rt::IoMode;

const SERVER: &str = env!("CARGO_BIN_EXE_tars-echo-server");

/// A server child; killed when dropped (its stdin closes with it, too).
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn start(args: &[&str]) -> Server {
        let mut child = Command::new(SERVER)
            .args(args)
            .args(["--port", "0"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
        let port: u16 =
            line.strip_prefix("LISTENING ").unwrap_or_else(|| panic!("got {line:?}")).trim().parse().unwrap();
        Server { child, addr: SocketAddr::from(([127, 0, 0, 1], port)) }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn closed(addr: SocketAddr, proto: Proto, conns: usize, depth: usize) -> LoadConfig {
    LoadConfig {
        addr,
        proto,
        conns,
        depth,
        stop: Stop::Duration(Duration::from_millis(400)),
        warmup: Duration::from_millis(100),
        ..LoadConfig::default()
    }
}

fn assert_clean(what: &str, r: &Report) {
    assert!(r.qps > 0.0, "{what}: {r:?}");
    assert_eq!(r.errors, 0, "{what}: {r:?}");
    assert!(r.latency.p99_us > 0.0 && r.latency.count == r.completed, "{what}: {r:?}");
    assert!(r.latency.p50_us <= r.latency.p99_us && r.latency.p99_us <= r.latency.max_us, "{what}: {r:?}");
}

#[test]
fn raw_and_tars_on_every_io_mode() {
    for io in IoMode::ALL {
        let raw = Server::start(&["--raw", "--io", io.as_str()]);
        let r = run(&closed(raw.addr, Proto::Raw, 4, 2), None).unwrap();
        assert_clean(&format!("raw {io}"), &r);

        let tars = Server::start(&["--io", io.as_str(), "--shards", "2"]);
        let r = run(&closed(tars.addr, Proto::Tars(1), 4, 2), None).unwrap();
        assert_clean(&format!("tars {io}"), &r);
    }
}

#[test]
fn tup_custom_names_and_errors() {
    let server =
        Server::start(&["--servant", "TestApp.StressServer.StressObj", "--func", "testStr", "--io", "epoll-et"]);
    let mut cfg = closed(server.addr, Proto::Tars(3), 2, 4);
    cfg.servant = "TestApp.StressServer.StressObj".into();
    cfg.func = "testStr".into();
    cfg.threads = 2;
    assert_clean("tup", &run(&cfg, None).unwrap());

    // A request count instead of a duration.
    cfg.stop = Stop::Requests(500);
    let r = run(&cfg, None).unwrap();
    assert_eq!(r.completed, 500);
    assert_eq!(r.errors, 0);

    // An unknown function: every reply is an error (-3), and the loop keeps going.
    cfg.func = "nope".into();
    cfg.stop = Stop::Duration(Duration::from_millis(200));
    let r = run(&cfg, None).unwrap();
    assert_eq!(r.completed, 0);
    assert!(r.errors > 0, "{r:?}");
    assert!(r.first_error.as_deref().unwrap_or("").contains("iRet -3"), "{r:?}");
}

#[test]
fn open_loop_hits_the_target_rate() {
    let server = Server::start(&["--io", "epoll-lt"]);
    let cfg = LoadConfig {
        addr: server.addr,
        conns: 4,
        rate: Some(4000.0),
        stop: Stop::Duration(Duration::from_secs(1)),
        warmup: Duration::from_millis(200),
        ..LoadConfig::default()
    };
    let r = run(&cfg, None).unwrap();
    assert_eq!(r.errors, 0, "{r:?}");
    assert!((r.qps - 4000.0).abs() < 400.0, "achieved {} of 4000/s: {r:?}", r.qps);
    assert!(r.latency.p99_us > 0.0, "{r:?}");
}

#[test]
fn quick_matrix_prints_a_table() {
    let out = Command::new(env!("CARGO_BIN_EXE_tars-bench-matrix"))
        .args(["--quick", "--cells", "4x1", "--server-bin", SERVER])
        .stderr(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let table = String::from_utf8(out.stdout).unwrap();
    for kind in ["raw-uring", "tars-uring", "raw-epoll-et", "tars-epoll-et", "raw-epoll-lt", "tars-epoll-lt"] {
        assert!(table.contains(&format!("| {kind}")), "{kind} missing:\n{table}");
    }
    assert!(table.contains("4×1 (4)"), "{table}");
}
