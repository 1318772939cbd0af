//! The two servers `tars-echo-server` runs.
//!
//! - [`start_tars`]: our TARS server ([`ServerBuilder`]) with [`EchoServant`], a hand-written
//!   servant shaped exactly like generated code for `int func(string sIn, out string sOut)`:
//!   parameters through [`ParamReader`] and results through [`ParamWriter`], so iVersion 1,
//!   3 and 5 all work. With [`EchoOptions::stats`] every shard also counts the calls it serves
//!   ([`ServerBuilder::stats`]) and a `bench-stat-drain` thread merges the hand-offs as an
//!   application's duty thread would ([`Collected`]), without sending them anywhere.
//! - [`RawServer`]: the reference ceiling, a minimal echo server on the same runtime and IO
//!   driver: each shard binds the port with `SO_REUSEPORT`, and each connection reads what is
//!   available, takes the complete length-prefixed frames from the front and writes them back
//!   in one write. No TARS decoding, no dispatch, no reply encoding.

use std::net::{SocketAddr, ToSocketAddrs};
use std::rc::Rc;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _, Result};
use bytes::{Bytes, BytesMut};
use tars_core_net::app::stat::{Collected, Module, StatRows, StatSink};
use tars_core_net::rt::net::{TcpListener, TcpStream};
use tars_core_net::rt::sync::channel;
use tars_core_net::rt::{self, IoMode, Shards};
use tars_core_net::server::{Dispatch, DispatchFuture, ServerBuilder, ServerHandle, Stopper};
use tars_proto::config::Config;
use tars_proto::rpc::{Current, ParamReader, ParamWriter, ServantError};

/// The default servant name.
pub const DEFAULT_SERVANT: &str = "TarsBench.EchoServer.EchoObj";
/// The default function name.
pub const DEFAULT_FUNC: &str = "echo";
/// The adapter the echo servant is served on.
pub const ADAPTER: &str = "TarsBench.EchoServer.EchoObjAdapter";

/// Where and how an echo server runs.
#[derive(Debug, Clone)]
pub struct EchoOptions {
    /// IO driver.
    pub io: IoMode,
    /// Shards (0 = one per core).
    pub shards: usize,
    /// Listen host.
    pub host: String,
    /// Listen port; 0 picks a free one.
    pub port: u16,
    /// Servant name (TARS mode).
    pub servant: String,
    /// Function name (TARS mode).
    pub func: String,
    /// Count every served call in per-shard stat tables (TARS mode), as an application
    /// reporting to tarsstat does.
    pub stats: bool,
}

impl Default for EchoOptions {
    fn default() -> Self {
        EchoOptions {
            io: IoMode::Uring,
            shards: 1,
            host: "127.0.0.1".into(),
            port: 0,
            servant: DEFAULT_SERVANT.into(),
            func: DEFAULT_FUNC.into(),
            stats: false,
        }
    }
}

/// Echoes `sIn` into `sOut` and returns 0 for the one function it knows; anything else is
/// "no such function" (-3).
#[derive(Debug, Clone)]
pub struct EchoServant {
    func: String,
}

impl EchoServant {
    /// A servant answering `func`.
    pub fn new(func: impl Into<String>) -> EchoServant {
        EchoServant { func: func.into() }
    }

    /// The body of generated `dispatch_<iface>` for this one operation.
    fn call(&self, current: &Current, body: &Bytes) -> Result<Bytes, ServantError> {
        if current.func != self.func {
            return Err(ServantError::no_func(&current.func));
        }
        let mut p = ParamReader::new(current.version, body).map_err(|e| ServantError::decode(&e))?;
        let s_in: String = p.read(1, "sIn").map_err(|e| ServantError::decode(&e.at("Echo.echo", "sIn")))?;
        let mut s_out: String = p.read_out(2, "sOut").map_err(|e| ServantError::decode(&e.at("Echo.echo", "sOut")))?;
        s_out.clone_from(&s_in);
        let mut w = ParamWriter::new(current.version);
        w.write_ret(&0i32);
        w.write(2, "sOut", &s_out);
        Ok(w.finish())
    }
}

impl Dispatch for EchoServant {
    fn dispatch(self: Rc<Self>, current: Current, body: Bytes) -> DispatchFuture {
        Box::pin(async move {
            let result = self.call(&current, &body);
            (current, result)
        })
    }
}

/// The TARS config of the echo server: one adapter, generous limits.
pub fn tars_config(opts: &EchoOptions) -> String {
    format!(
        "<tars>\n<application>\n<server>\n  app=TarsBench\n  server=EchoServer\n  <{ADAPTER}>\n    \
         endpoint=tcp -h {} -p {} -t 60000\n    servant={}\n    maxconns=100000\n    queuecap=0\n    \
         queuetimeout=60000\n  </{ADAPTER}>\n</server>\n</application>\n</tars>\n",
        opts.host, opts.port, opts.servant
    )
}

/// The module name in the call-statistics rows.
pub const STAT_MODULE: &str = "TarsBench.EchoServer";
/// Hand-offs that may wait in the stat channel.
pub const STAT_QUEUE: usize = 4096;
/// How often the drain thread takes the merged rows (an application's `report-interval`).
pub const STAT_REPORT_EVERY: Duration = Duration::from_secs(10);

/// A running TARS echo server, and its stat drain thread when [`EchoOptions::stats`] is set.
#[derive(Debug)]
pub struct TarsEcho {
    handle: ServerHandle,
    stats: Option<(StatSink, JoinHandle<u64>)>,
}

impl TarsEcho {
    /// The server.
    pub fn handle(&self) -> &ServerHandle {
        &self.handle
    }

    /// A trigger for a graceful stop.
    pub fn stopper(&self) -> Stopper {
        self.handle.stopper()
    }

    /// Starts a graceful stop; [`TarsEcho::wait`] returns when it is complete.
    pub fn shutdown(&self) {
        self.handle.shutdown();
    }

    /// Waits until every shard has stopped, then (with stats) for the drain thread, which ends
    /// when the last sink is gone: the server's, once every [`Stopper`] is dropped too.
    /// Returns the calls the stat rows counted and the rows dropped for a full queue.
    pub fn wait(self) -> Result<Option<(u64, u64)>> {
        self.handle.wait()?;
        let Some((sink, drain)) = self.stats else { return Ok(None) };
        let dropped = sink.dropped();
        drop(sink);
        let calls = drain.join().map_err(|_| anyhow!("the stat drain thread panicked"))?;
        Ok(Some((calls, dropped)))
    }
}

/// Starts the TARS echo server. Returns it, the bound address and the IO driver in use
/// (uring falls back to epoll-et where io_uring is unavailable).
pub fn start_tars(opts: &EchoOptions) -> Result<(TarsEcho, SocketAddr, IoMode)> {
    let config = Config::parse(&tars_config(opts)).context("echo server config")?;
    let func = opts.func.clone();
    let mut builder = ServerBuilder::from_config(&config)?
        .servant(opts.servant.clone(), move |_| EchoServant::new(func.clone()))
        .io(opts.io)
        .shards(opts.shards);
    let mut stats = None;
    if opts.stats {
        let module = Module { name: STAT_MODULE.into(), set: None, tars_version: env!("CARGO_PKG_VERSION").into() };
        let (sink, rx) = StatSink::new(module, STAT_QUEUE);
        let drain = std::thread::Builder::new()
            .name("bench-stat-drain".into())
            .spawn(move || stat_drain(&rx))
            .context("starting the stat drain thread")?;
        builder = builder.stats(sink.clone());
        stats = Some((sink, drain));
    }
    // On error the builder and `stats` drop with their sinks, so the drain thread ends.
    let handle = builder.start()?;
    let addr = handle.addr(ADAPTER).ok_or_else(|| anyhow!("echo adapter not bound"))?;
    let io = handle.io_of(ADAPTER).unwrap_or(opts.io);
    Ok((TarsEcho { handle, stats }, addr, io))
}

/// What an application's duty thread does with the shards' hand-offs, without the network:
/// merges them, and takes the packets every [`STAT_REPORT_EVERY`]. Returns the calls counted
/// (`count + timeoutCount + execCount` over the packets taken) when the channel closes.
fn stat_drain(rx: &channel::Receiver<StatRows>) -> u64 {
    let mut collected = Collected::default();
    let mut last = Instant::now();
    let mut calls = 0;
    let mut take = |collected: &mut Collected| {
        for (_, packet) in collected.take_packets() {
            for body in packet.values() {
                calls +=
                    [body.count, body.timeout_count, body.exec_count].iter().map(|&n| n.max(0) as u64).sum::<u64>();
            }
        }
    };
    while let Ok(rows) = rx.recv_blocking() {
        collected.add(rows);
        if last.elapsed() >= STAT_REPORT_EVERY {
            last = Instant::now();
            take(&mut collected);
        }
    }
    take(&mut collected);
    calls
}

/// The raw echo server.
#[derive(Debug)]
pub struct RawServer {
    shards: Shards,
    addr: SocketAddr,
    stop: channel::Sender<()>,
}

/// Bytes read per turn before echoing.
const READ_MAX: usize = 256 * 1024;

impl RawServer {
    /// Starts `opts.shards` shards on `opts.io`, all listening on one port.
    pub fn start(opts: &EchoOptions) -> Result<RawServer> {
        let mut addr = (opts.host.as_str(), opts.port)
            .to_socket_addrs()
            .with_context(|| format!("resolving {}", opts.host))?
            .next()
            .ok_or_else(|| anyhow!("{} has no address", opts.host))?;
        // Port 0: take a free port with a bound, non-listening SO_REUSEPORT socket, held until
        // every shard has bound the same port.
        let reservation = if addr.port() == 0 {
            let sock = socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::STREAM, None)?;
            sock.set_reuse_port(true)?;
            sock.bind(&addr.into())?;
            let local = sock.local_addr()?.as_socket().ok_or_else(|| anyhow!("no local address"))?;
            addr.set_port(local.port());
            Some(sock)
        } else {
            None
        };
        let (stop, stop_rx) = channel::bounded::<()>(1);
        let (ready_tx, ready_rx) = mpsc::channel();
        let shards = Shards::start("raw-echo", opts.shards, opts.io, move |_info| {
            raw_shard(addr, ready_tx.clone(), stop_rx.clone())
        })?;
        let count = if opts.shards == 0 { rt::default_shards() } else { opts.shards };
        for _ in 0..count {
            match ready_rx.recv_timeout(Duration::from_secs(10)) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    stop.close();
                    return Err(anyhow!(e));
                }
                Err(_) => {
                    stop.close();
                    return Err(anyhow!("a raw echo shard did not start"));
                }
            }
        }
        drop(reservation);
        Ok(RawServer { shards, addr, stop })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The IO driver in use (after any uring fallback).
    pub fn io(&self) -> IoMode {
        self.shards.io()
    }

    /// Stops accepting and waits for the shards to exit; open connections are dropped.
    pub fn stop(self) -> Result<()> {
        self.stop.close();
        self.shards.join()?;
        Ok(())
    }
}

async fn raw_shard(addr: SocketAddr, ready: mpsc::Sender<Result<(), String>>, stop: channel::Receiver<()>) {
    let listener = match TcpListener::bind(addr) {
        Ok(l) => l,
        Err(e) => {
            let _ = ready.send(Err(format!("cannot bind {addr}: {e}")));
            return;
        }
    };
    let _ = ready.send(Ok(()));
    loop {
        let next = futures_lite::future::or(async { Some(listener.accept().await) }, async {
            let _ = stop.recv().await;
            None
        })
        .await;
        match next {
            None => return,
            Some(Ok(stream)) => rt::spawn(raw_conn(stream)).detach(),
            Some(Err(_)) => rt::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// Echoes whole frames: everything complete in the input goes back in one write.
async fn raw_conn(mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut input = BytesMut::with_capacity(64 * 1024);
    loop {
        match stream.read_buf(&mut input, READ_MAX).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let mut end = 0;
        while input.len() - end >= 4 {
            let len = u32::from_be_bytes([input[end], input[end + 1], input[end + 2], input[end + 3]]) as usize;
            if len < 4 {
                return;
            }
            if input.len() - end < len {
                break;
            }
            end += len;
        }
        if end > 0 {
            let frames = input.split_to(end);
            if stream.write_all(&frames).await.is_err() {
                return;
            }
        }
    }
}
