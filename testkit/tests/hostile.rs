//! Hostile peers against the server running as its own process, on every IO driver: garbage,
//! truncated frames, an oversized length, a slowloris, a reset mid-frame, a peer that never
//! reads its replies, one that reads them a trickle at a time, calls that wait while big
//! requests pass, and 10k idle connections. After each, the server must still answer a
//! well-behaved client; at the end it must be alive, within its memory bound, and stop cleanly.

#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use tars_core_net::rt::IoMode;
use tars_proto::packet::{ret, version};
use tars_proto::rpc::ParamWriter;
use tars_testkit::process::ServerProcess;
use tars_testkit::raw::{frame_bytes, RawConn};
use tars_testkit::{interop_config, INTEROP_ADAPTER, INTEROP_OBJ};

const BIN: &str = env!("CARGO_BIN_EXE_tars-test-server");

fn assert_serving(addr: SocketAddr, after: &str) {
    let t0 = Instant::now();
    let mut c = RawConn::connect(addr).unwrap_or_else(|e| panic!("after {after}: cannot connect: {e}"));
    let r = c.echo_string(INTEROP_OBJ, "still here").unwrap_or_else(|e| panic!("after {after}: no answer: {e}"));
    assert_eq!(r.ret, ret::SUCCESS, "after {after}");
    let s: String = r.params().unwrap().read_ret().unwrap();
    assert_eq!(s, "still here", "after {after}");
    assert!(t0.elapsed() < Duration::from_secs(2), "after {after}: answer took {:?}", t0.elapsed());
}

fn echo_frame(c: &mut RawConn, s: &str) -> Vec<u8> {
    let mut w = ParamWriter::new(version::TARS);
    w.write_str(1, "s", s);
    let req = c.request(INTEROP_OBJ, "echoString", version::TARS, w.finish());
    frame_bytes(&req)
}

/// Deterministic junk (xorshift), so a failure can be replayed.
fn junk(n: usize, mut seed: u64) -> Vec<u8> {
    (0..n)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

fn hostile_peers(io: IoMode) {
    // -t 2000: idle, stalled and slow-frame connections are cut after 2 s (TarsCpp's least).
    let config = interop_config("maxconns=20000").replace("-p 0 -t 60000", "-p 0 -t 2000");
    let mut server = ServerProcess::start(BIN, &config, io, 2).unwrap();
    let addr = server.addr(INTEROP_ADAPTER).unwrap();
    assert_serving(addr, "start");
    let baseline = server.rss_kib().unwrap();

    // Garbage: a length far over the limit, then junk behind a plausible length.
    for (i, seed) in [1u64, 2, 3].into_iter().enumerate() {
        let mut c = RawConn::connect(addr).unwrap();
        let mut bytes = junk(4096, seed);
        if i == 0 {
            bytes[0] = 0xff;
        } else {
            bytes[..4].copy_from_slice(&64u32.to_be_bytes());
        }
        let _ = c.send_bytes(&bytes);
        assert!(c.closed_within(Duration::from_secs(5)), "garbage (seed {seed}) did not close the connection");
    }
    assert_serving(addr, "garbage");

    // A length over the maximum (10 MiB): closed at once, nothing buffered.
    let mut c = RawConn::connect(addr).unwrap();
    c.send_bytes(&0x7fff_ffffu32.to_be_bytes()).unwrap();
    let t0 = Instant::now();
    assert!(c.closed_within(Duration::from_secs(5)), "oversized length not refused");
    assert!(t0.elapsed() < Duration::from_secs(1), "oversized length took {:?} to refuse", t0.elapsed());
    assert_serving(addr, "oversized length");

    // Truncated frame, then end of stream.
    let mut c = RawConn::connect(addr).unwrap();
    let f = echo_frame(&mut c, "truncated");
    c.send_bytes(&f[..f.len() / 2]).unwrap();
    c.stream().shutdown(std::net::Shutdown::Write).unwrap();
    assert!(c.closed_within(Duration::from_secs(5)), "truncated frame + EOF not closed");
    assert_serving(addr, "truncated frame");

    // Reset in the middle of a frame.
    let mut c = RawConn::connect(addr).unwrap();
    let f = echo_frame(&mut c, "reset");
    c.send_bytes(&f[..f.len() / 2]).unwrap();
    socket_reset(c.stream());
    drop(c);
    assert_serving(addr, "reset mid-frame");

    // Slowloris: one byte every 200 ms keeps the connection busy but the frame never completes
    // in time; the server drops it after -t although bytes keep coming.
    let mut slow = TcpStream::connect(addr).unwrap();
    let mut c2 = RawConn::connect(addr).unwrap();
    let f = echo_frame(&mut c2, &"s".repeat(200));
    let t0 = Instant::now();
    let mut cut = false;
    for b in &f {
        if slow.write_all(&[*b]).is_err() {
            cut = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
        if t0.elapsed() > Duration::from_secs(8) {
            break;
        }
    }
    let waited = t0.elapsed();
    assert!(cut || waited < Duration::from_secs(8), "slowloris kept its connection for {waited:?}");
    assert!(waited >= Duration::from_millis(1800), "slowloris cut too early ({waited:?})");
    assert_serving(addr, "slowloris");

    // A peer that never reads: 200 replies of 1 MB each are asked for and never taken.
    let mut greedy = RawConn::connect(addr).unwrap();
    let mut burst = Vec::new();
    for _ in 0..200 {
        let mut w = ParamWriter::new(version::TARS);
        w.write(1, "size", &1_000_000i32);
        let req = greedy.request(INTEROP_OBJ, "bigBlob", version::TARS, w.finish());
        burst.extend(frame_bytes(&req));
    }
    greedy.send_bytes(&burst).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert_serving(addr, "a peer that does not read (while it is connected)");
    let peak = server.rss_kib().unwrap();
    assert!(
        peak < baseline + 64 * 1024,
        "memory grew from {baseline} KiB to {peak} KiB for a peer that does not read its 200 MB of replies"
    );
    // It is cut once its output has stalled for -t (2 s); the admin view shows it gone.
    let admin = server.addr("AdminAdapter").unwrap();
    let gone = tars_testkit::wait_for(Duration::from_secs(10), || {
        let listing = tars_testkit::raw::admin_notify(admin, "tars.connection").unwrap();
        (!listing.lines().any(|l| l.starts_with(INTEROP_ADAPTER))).then_some(())
    });
    assert!(gone.is_some(), "the non-reading peer's connection was never cut");
    drop(greedy);
    assert_serving(addr, "a peer that does not read");

    assert!(server.alive(), "server died");
    let end = server.rss_kib().unwrap();
    assert!(end < baseline + 64 * 1024, "memory grew from {baseline} KiB to {end} KiB");
    assert!(server.stop(), "server did not stop cleanly");
}

fn socket_reset(s: &mut TcpStream) {
    // SO_LINGER 0 turns close into an RST.
    let sock = socket2::SockRef::from(&*s);
    sock.set_linger(Some(Duration::ZERO)).unwrap();
}

/// The 10k-connection tests hold 10k descriptors each in this process; run them one at a time.
static FD_HEAVY: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn ten_thousand_idle(io: IoMode) {
    let _one_at_a_time = FD_HEAVY.lock().unwrap_or_else(|e| e.into_inner());
    let config = interop_config("maxconns=20000");
    let mut server = ServerProcess::start(BIN, &config, io, 2).unwrap();
    let addr = server.addr(INTEROP_ADAPTER).unwrap();
    let baseline = server.rss_kib().unwrap();
    let mut idle = Vec::with_capacity(10_000);
    for i in 0..10_000 {
        match TcpStream::connect(addr) {
            Ok(s) => idle.push(s),
            Err(e) => panic!("connection {i} refused: {e}"),
        }
    }
    // Every one accepted: the server holds them as file descriptors.
    let accepted = tars_testkit::wait_for(Duration::from_secs(20), || server.fd_count().filter(|&n| n >= 10_000));
    assert!(accepted.is_some(), "server holds {:?} fds, expected 10k connections", server.fd_count());
    assert_serving(addr, "10k idle connections");
    let rss = server.rss_kib().unwrap();
    let per_conn = (rss.saturating_sub(baseline)) * 1024 / 10_000;
    eprintln!("{io}: 10k idle connections: RSS {baseline} KiB -> {rss} KiB ({per_conn} B per connection)");
    assert!(rss < baseline + 256 * 1024, "10k idle connections took {} KiB", rss - baseline);
    drop(idle);
    assert!(server.alive());
    assert!(server.stop(), "server did not stop cleanly");
}

/// A peer that takes its reply a little at a time, a few KiB per second, forever: it is cut
/// once it has taken less than 64 KiB of waiting output in an idle period (-t 2 s), not kept
/// for the ten minutes its 8 MB would take.
fn trickle_reader(io: IoMode) {
    let config = interop_config("").replace("-p 0 -t 60000", "-p 0 -t 2000");
    let server = ServerProcess::start(BIN, &config, io, 1).unwrap();
    let addr = server.addr(INTEROP_ADAPTER).unwrap();
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    sock.connect(&addr.into()).unwrap();
    let mut s: TcpStream = sock.into();
    let mut c = RawConn::connect(addr).unwrap();
    let mut w = ParamWriter::new(version::TARS);
    w.write(1, "size", &8_000_000i32);
    let req = c.request(INTEROP_OBJ, "bigBlob", version::TARS, w.finish());
    s.write_all(&frame_bytes(&req)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let t0 = Instant::now();
    let (mut got, mut cut) = (0usize, false);
    let mut chunk = [0u8; 4096];
    while t0.elapsed() < Duration::from_secs(20) {
        match std::io::Read::read(&mut s, &mut chunk) {
            Ok(0) => {
                cut = true;
                break;
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                cut = true;
                break;
            }
            Err(_) => {}
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let waited = t0.elapsed();
    assert!(cut, "a peer reading {got} bytes in {waited:?} kept its connection");
    assert!(waited >= Duration::from_secs(2) && waited < Duration::from_secs(12), "cut after {waited:?}");
    assert!(got < 8_000_000, "the whole reply was read ({got} bytes): the test did not trickle");
    assert_serving(addr, "a trickle reader");
    assert!(server.stop(), "server did not stop cleanly");
}

/// Calls that wait keep their request alive; 300 of them, each read together with a 250 KB
/// request that is answered at once, must not keep 300 read buffers alive (75 MB and more),
/// only their own few bytes.
fn waiting_calls_do_not_pin_reads(io: IoMode) {
    let server = ServerProcess::start(BIN, &interop_config(""), io, 1).unwrap();
    let addr = server.addr(INTEROP_ADAPTER).unwrap();
    assert_serving(addr, "start");
    let baseline = server.rss_kib().unwrap();
    let mut c = RawConn::connect(addr).unwrap();
    let big = "x".repeat(250_000);
    let mut slow_ids = Vec::new();
    for round in 0..300 {
        let mut w = ParamWriter::new(version::TARS);
        w.write(1, "v", &round);
        w.write(2, "delayMs", &4000i32);
        let mut slow = c.request(INTEROP_OBJ, "slowEcho", version::TARS, w.finish());
        slow.i_timeout = 30_000;
        slow_ids.push(slow.i_request_id);
        let mut bytes = frame_bytes(&slow);
        bytes.extend(echo_frame(&mut c, &big));
        c.send_bytes(&bytes).unwrap();
        let r = c.read_reply().unwrap().unwrap();
        assert_eq!(r.ret, ret::SUCCESS, "the big echo of round {round}");
    }
    let peak = server.rss_kib().unwrap();
    eprintln!("{io}: 300 waiting calls: RSS {baseline} KiB -> {peak} KiB");
    assert!(peak < baseline + 40 * 1024, "300 waiting calls grew RSS from {baseline} KiB to {peak} KiB");
    let mut answered = Vec::new();
    for _ in 0..300 {
        let r = c.read_reply().unwrap().unwrap();
        assert_eq!(r.ret, ret::SUCCESS);
        answered.push(r.request_id);
    }
    answered.sort_unstable();
    assert_eq!(answered, slow_ids, "every waiting call is answered");
    assert!(server.stop(), "server did not stop cleanly");
}

/// A peer that makes the server log at will (300 connections refused by `maxconnsperip`) gets
/// one line in the period, not one per event; the server serves on.
fn network_events_are_logged_once_per_period(io: IoMode) {
    let dir = tars_testkit::process::TempDir::new("hostile-log").unwrap();
    let log = dir.0.join("stderr.log");
    let config = interop_config("maxconnsperip=1");
    let server =
        ServerProcess::start_with_stderr(BIN, &config, io, 1, std::fs::File::create(&log).unwrap().into()).unwrap();
    let addr = server.addr(INTEROP_ADAPTER).unwrap();
    let mut held = RawConn::connect(addr).unwrap();
    assert_eq!(held.echo_string(INTEROP_OBJ, "first").unwrap().ret, 0);
    for _ in 0..300 {
        let mut c = RawConn::connect(addr).unwrap();
        assert!(c.closed_within(Duration::from_secs(3)), "a second connection must be refused");
    }
    assert_eq!(held.echo_string(INTEROP_OBJ, "still").unwrap().ret, 0, "the held connection serves on");
    assert!(server.stop(), "server did not stop cleanly");
    let text = std::fs::read_to_string(&log).unwrap();
    let refusals = text.lines().filter(|l| l.contains("maxconnsperip reached")).count();
    assert_eq!(refusals, 1, "300 refusals logged {refusals} times:\n{text}");
}

tars_testkit::on_every_driver! {
    logged_once => network_events_are_logged_once_per_period;
    trickle => trickle_reader;
    pinned => waiting_calls_do_not_pin_reads;
    peers => hostile_peers;
    idle_10k => ten_thousand_idle;
}
