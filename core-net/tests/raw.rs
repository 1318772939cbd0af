#![allow(clippy::unwrap_used)]
//! Raw (`protocol=not_tars`) adapters on every IO driver, with a line protocol: a packet is a
//! line, answered `echo:<line>`; `bye` closes after its answer; `wait` answers after a sleep
//! (the handler's future pending); `boom` panics. Checked: packets split byte by byte and two
//! in one write, keep-alive and close after reply, a packet over the limit and one the framer
//! refuses answered then closed, a panicking handler closing only its connection, the idle
//! timeout; and the start errors of a mismatched adapter and servant.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::rc::Rc;
use std::time::{Duration, Instant};

use tars_core_net::rt::IoMode;
use tars_core_net::server::adapter::ServerConfig;
use tars_core_net::server::raw::{FrameError, Framer, RawFuture, RawReply, RawServant};
use tars_core_net::server::{ServerBuilder, ServerError, ServerHandle};
use tars_proto::config::Config;
use tars_proto::Bytes;

const OBJ: &str = "T.S.LineObj";
const ADAPTER: &str = "T.S.LineObjAdapter";
const LIMIT: usize = 1024;

struct Lines;

/// Resumes where the last call stopped: what was scanned is never scanned again.
#[derive(Default)]
struct LineFramer {
    scanned: usize,
}

impl Framer for LineFramer {
    fn frame(&mut self, buf: &[u8]) -> Result<Option<usize>, FrameError> {
        assert!(buf.len() >= self.scanned, "the framer is given what it saw, and more");
        for (i, b) in buf.iter().enumerate().skip(self.scanned) {
            match b {
                0xff => return Err(FrameError::Malformed(format!("byte 0xff at {i}"))),
                b'\n' => {
                    self.scanned = 0;
                    return Ok(Some(i + 1));
                }
                _ => {}
            }
        }
        self.scanned = buf.len();
        Ok(None)
    }
}

impl RawServant for Lines {
    fn max_frame(&self) -> usize {
        LIMIT
    }

    fn framer(&self) -> Box<dyn Framer> {
        Box::<LineFramer>::default()
    }

    fn refused(&self, error: &FrameError) -> Option<Bytes> {
        Some(Bytes::from(format!("refused: {error}\n")))
    }

    fn handle(self: Rc<Self>, packet: Bytes, _peer: SocketAddr) -> RawFuture {
        Box::pin(async move {
            let line = String::from_utf8_lossy(&packet[..packet.len() - 1]).into_owned();
            match line.as_str() {
                "boom" => panic!("asked to"),
                "wait" => tars_core_net::rt::sleep(Duration::from_millis(30)).await,
                _ => {}
            }
            RawReply { bytes: Bytes::from(format!("echo:{line}\n")), close: line == "bye" }
        })
    }
}

fn config(protocol: &str) -> ServerConfig {
    let conf = format!(
        "<tars>\n<application>\n<server>\napp=T\nserver=S\n<{ADAPTER}>\n\
         endpoint=tcp -h 127.0.0.1 -p 0 -t 2000\nservant={OBJ}\nprotocol={protocol}\n</{ADAPTER}>\n\
         </server>\n</application>\n</tars>\n"
    );
    ServerConfig::from_config(&Config::parse(&conf).unwrap()).unwrap()
}

fn start(io: IoMode) -> ServerHandle {
    ServerBuilder::new(config("not_tars")).raw_servant(OBJ, |_| Lines).shards(2).io(io).start().unwrap()
}

fn connect(server: &ServerHandle) -> TcpStream {
    let s = TcpStream::connect(server.addr(ADAPTER).unwrap()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Reads one `\n`-ended line.
fn line(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut b = [0u8; 1];
    loop {
        assert_eq!(s.read(&mut b).unwrap(), 1, "closed after {:?}", String::from_utf8_lossy(&out));
        if b[0] == b'\n' {
            return String::from_utf8(out).unwrap();
        }
        out.push(b[0]);
    }
}

/// Reads to the end; the server must close.
fn rest(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

fn split_packets_keep_alive_and_close(io: IoMode) {
    let server = start(io);
    let mut s = connect(&server);
    for b in b"hello\n" {
        s.write_all(&[*b]).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(line(&mut s), "echo:hello");
    s.write_all(b"one\nwait\n").unwrap();
    assert_eq!(line(&mut s), "echo:one");
    assert_eq!(line(&mut s), "echo:wait");
    s.write_all(b"bye\n").unwrap();
    assert_eq!(rest(&mut s), "echo:bye\n");
    server.shutdown();
    server.wait().unwrap();
}

fn oversized_and_malformed_are_answered_then_closed(io: IoMode) {
    let server = start(io);
    let mut s = connect(&server);
    // The whole of it may not be read before the answer: writing may fail once we close.
    let _ = s.write_all(&vec![b'x'; 4 * LIMIT]);
    assert_eq!(rest(&mut s), format!("refused: request larger than {LIMIT} bytes\n"));
    // One byte too long, though complete: a read may bring it whole, it is still refused.
    let mut s = connect(&server);
    let mut long = vec![b'y'; LIMIT];
    long.push(b'\n');
    let _ = s.write_all(&long);
    assert_eq!(rest(&mut s), format!("refused: request larger than {LIMIT} bytes\n"));
    let mut s = connect(&server);
    s.write_all(b"ok\nab\xffc\n").unwrap();
    assert_eq!(rest(&mut s), "echo:ok\nrefused: malformed request: byte 0xff at 2\n");
    server.shutdown();
    server.wait().unwrap();
}

fn panic_closes_only_its_connection(io: IoMode) {
    let server = start(io);
    let mut other = connect(&server);
    let mut s = connect(&server);
    s.write_all(b"boom\n").unwrap();
    assert_eq!(rest(&mut s), "");
    other.write_all(b"still\n").unwrap();
    assert_eq!(line(&mut other), "echo:still");
    server.shutdown();
    server.wait().unwrap();
}

fn incomplete_packet_is_cut_at_the_idle_timeout(io: IoMode) {
    let server = start(io);
    let mut s = connect(&server);
    s.write_all(b"no end").unwrap();
    let started = Instant::now();
    assert_eq!(rest(&mut s), "");
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(1500) && took < Duration::from_secs(8), "{took:?}");
    server.shutdown();
    server.wait().unwrap();
}

tars_core_net::on_every_driver! {
    split => split_packets_keep_alive_and_close;
    refused => oversized_and_malformed_are_answered_then_closed;
    panics => panic_closes_only_its_connection;
    idle => incomplete_packet_is_cut_at_the_idle_timeout;
}

#[test]
fn mismatched_adapter_and_servant_do_not_start() {
    let e = ServerBuilder::new(config("not_tars")).io(IoMode::EpollEt).start().unwrap_err();
    assert!(matches!(e, ServerError::MissingRawServant { .. }), "{e}");
    assert!(e.to_string().contains(ADAPTER), "{e}");
    let e = ServerBuilder::new(config("tars")).raw_servant(OBJ, |_| Lines).io(IoMode::EpollEt).start().unwrap_err();
    assert!(matches!(e, ServerError::RawOnTarsAdapter { .. }), "{e}");
    assert!(e.to_string().contains("protocol=not_tars"), "{e}");
}
