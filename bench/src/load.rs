//! The load generator.
//!
//! Client shards run on our runtime ([`Shards`], [`TcpStream`]); connection `i` lives on
//! shard `i % threads`. Each connection is one hand-written state machine (no task per
//! request): it appends pre-encoded requests to one output buffer, writes them with as few
//! syscalls as the socket allows, reads whatever has arrived, and handles every complete
//! reply in that read before writing again.
//!
//! - **Closed loop:** each connection keeps `depth` requests outstanding; every reply (good
//!   or bad) is replaced by a new request. Latency is measured from when the request was
//!   queued for sending.
//! - **Open loop:** requests are due at fixed intended times ([`Schedule`]), `rate` per second
//!   in total, whatever the replies do. Latency is measured from the intended time, so a stall
//!   anywhere (server, network, this client) shows in the latency of every request it held
//!   up: coordinated omission is not hidden. Sends wait on the runtime's timers: on the epoll
//!   drivers these have millisecond granularity today (the reactor's `epoll_pwait` takes a
//!   timeout in ms), so up to about 1 ms of a measured latency can be the client's own timer;
//!   the uring driver's timers are precise but cost more client CPU (`--io uring`).
//!
//! What is sent: the echo call (or a raw frame) by default; with [`LoadConfig::call`], any
//! TARS call with pre-encoded parameter variants, one picked at random (xorshift, per
//! connection) for each request, and a custom check of every reply's results.
//!
//! Timeline: all connections are opened first; then `t0`; requests flow from `t0`; replies
//! completing in `[t0 + warmup, end)` are measured (count, latency); at `end` every
//! connection stops (outstanding requests are abandoned and reported as `unfinished`). With
//! a request count instead of a duration, each connection stops after its share of measured
//! replies and the window ends with the last one.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use bytes::BytesMut;
use serde_json::json;
use tars_core_net::rt::net::TcpStream;
use tars_core_net::rt::sync::channel;
use tars_core_net::rt::{self, IoMode, ShardInfo, Shards};
use tars_proto::frame::FrameDecoder;

use crate::cpu;
use crate::hist::{round1, Latency, LatencySummary};
use crate::proto::{Checker, Proto, Request, ResultCheck};
use crate::schedule::Schedule;

/// How long a run lasts after warm-up.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stop {
    /// A measured window of this length.
    Duration(Duration),
    /// This many measured replies, in total over all connections.
    Requests(u64),
}

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// Server address.
    pub addr: SocketAddr,
    /// Servant name (TARS).
    pub servant: String,
    /// Function name (TARS).
    pub func: String,
    /// TARS version or raw frames.
    pub proto: Proto,
    /// Connections.
    pub conns: usize,
    /// Requests outstanding per connection (closed loop).
    pub depth: usize,
    /// Payload bytes.
    pub size: usize,
    /// Window length or request count.
    pub stop: Stop,
    /// Unmeasured time before the window.
    pub warmup: Duration,
    /// Open loop at this many requests per second (in total); `None` = closed loop.
    pub rate: Option<f64>,
    /// Client IO driver (default epoll-lt: one read per readiness report is the cheapest for
    /// a client whose replies arrive in small pieces).
    pub io: IoMode,
    /// Client shards (threads).
    pub threads: usize,
    /// Print a progress line to stderr every second.
    pub progress: bool,
    /// A custom TARS call instead of the echo (`size` is then unused).
    pub call: Option<Call>,
}

/// A TARS call other than the echo: `servant.func` (from [`LoadConfig`]) with one of
/// `bodies` as its parameters, picked at random per request, and `check` applied to the
/// results of every reply.
#[derive(Clone)]
pub struct Call {
    /// Encoded parameter bodies (`sBuffer`) for the config's TARS version.
    pub bodies: Arc<Vec<bytes::Bytes>>,
    /// Accepts or rejects a reply's results.
    pub check: ResultCheck,
}

impl std::fmt::Debug for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Call").field("variants", &self.bodies.len()).finish_non_exhaustive()
    }
}

impl Default for LoadConfig {
    fn default() -> Self {
        LoadConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            servant: crate::echo::DEFAULT_SERVANT.into(),
            func: crate::echo::DEFAULT_FUNC.into(),
            proto: Proto::Tars(1),
            conns: 1,
            depth: 1,
            size: 100,
            stop: Stop::Duration(Duration::from_secs(5)),
            warmup: Duration::from_secs(1),
            rate: None,
            io: IoMode::EpollLt,
            threads: 1,
            progress: false,
            call: None,
        }
    }
}

/// The edges of the measured window, reported to an observer (the matrix runner samples
/// the server's CPU time there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edge {
    /// The window opens (`t0 + warmup`).
    Start,
    /// The window closes.
    End,
}

/// The outcome of a run.
#[derive(Debug, Clone)]
pub struct Report {
    /// Replies measured in the window (good ones).
    pub completed: u64,
    /// Bad replies and broken connections over the whole run (warm-up included).
    pub errors: u64,
    /// The first error seen, if any.
    pub first_error: Option<String>,
    /// Requests sent over the whole run.
    pub sent: u64,
    /// Requests still outstanding when the run stopped.
    pub unfinished: u64,
    /// Length of the measured window.
    pub window: Duration,
    /// Measured replies per second.
    pub qps: f64,
    /// Latency of the measured replies.
    pub latency: LatencySummary,
    /// This process's CPU time over the window.
    pub client_cpu: Duration,
    /// The client IO driver actually used.
    pub io: IoMode,
    /// The open-loop target, if any.
    pub target_rate: Option<f64>,
}

impl Report {
    /// Client CPU microseconds per measured reply.
    pub fn client_cpu_us_per_req(&self) -> f64 {
        if self.completed == 0 {
            0.0
        } else {
            self.client_cpu.as_secs_f64() * 1e6 / self.completed as f64
        }
    }

    /// The report as one JSON object, with the run's configuration.
    pub fn to_json(&self, cfg: &LoadConfig) -> serde_json::Value {
        let (proto, version) = match cfg.proto {
            Proto::Tars(v) => ("tars", Some(v)),
            Proto::Raw => ("raw", None),
        };
        json!({
            "addr": cfg.addr.to_string(),
            "proto": proto,
            "version": version,
            "servant": cfg.servant,
            "func": cfg.func,
            "mode": if cfg.rate.is_some() { "open" } else { "closed" },
            "target_rate": cfg.rate,
            "conns": cfg.conns,
            "depth": cfg.depth,
            "size": cfg.size,
            "call_variants": cfg.call.as_ref().map(|c| c.bodies.len()),
            "threads": cfg.threads,
            "io": self.io.as_str(),
            "warmup_s": cfg.warmup.as_secs_f64(),
            "window_s": self.window.as_secs_f64(),
            "completed": self.completed,
            "qps": round1(self.qps),
            "errors": self.errors,
            "first_error": self.first_error,
            "sent": self.sent,
            "unfinished": self.unfinished,
            "latency_us": self.latency.to_json(),
            "client_cpu_s": self.client_cpu.as_secs_f64(),
            "client_cpu_us_per_req": round1(self.client_cpu_us_per_req()),
        })
    }

    /// A human-readable summary.
    pub fn text(&self, cfg: &LoadConfig) -> String {
        let l = &self.latency;
        let mode = match cfg.rate {
            Some(r) => format!("open loop at {r:.0}/s over {} conns", cfg.conns),
            None => format!("closed loop, {} conns x {} in flight", cfg.conns, cfg.depth),
        };
        let what = match &cfg.call {
            Some(c) => format!("{}.{} ({} variants)", cfg.servant, cfg.func, c.bodies.len()),
            None => format!("{} B", cfg.size),
        };
        let mut s = format!(
            "{mode}, {what}, {} client shard(s) on {}\n\
             window {:.2} s: {} replies, {:.0} req/s, {} errors, {} sent, {} unfinished\n\
             latency us: p50 {:.1}  p90 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}  (mean {:.1})\n\
             client CPU {:.2} us/req\n",
            cfg.threads,
            self.io,
            self.window.as_secs_f64(),
            self.completed,
            self.qps,
            self.errors,
            self.sent,
            self.unfinished,
            l.p50_us,
            l.p90_us,
            l.p99_us,
            l.p999_us,
            l.max_us,
            l.mean_us,
            self.client_cpu_us_per_req(),
        );
        if let Some(e) = &self.first_error {
            s.push_str(&format!("first error: {e}\n"));
        }
        s
    }
}

/// Counters every shard bumps (per batch, relaxed) for the progress line.
#[derive(Debug, Default)]
struct Progress {
    replies: AtomicU64,
    errors: AtomicU64,
}

/// What one shard hands back.
#[derive(Debug)]
struct ShardResult {
    latency: Latency,
    completed: u64,
    errors: u64,
    first_error: Option<String>,
    sent: u64,
    unfinished: u64,
    last_reply: Option<Instant>,
}

/// Timing shared by every connection.
#[derive(Debug, Clone, Copy)]
struct Window {
    t0: Instant,
    measure_from: Instant,
    end: Instant,
}

/// One shard's state, shared by its connections.
#[derive(Debug)]
struct ShardState {
    latency: RefCell<Latency>,
    completed: Cell<u64>,
    errors: Cell<u64>,
    sent: Cell<u64>,
    unfinished: Cell<u64>,
    first_error: RefCell<Option<String>>,
    last_reply: Cell<Option<Instant>>,
    progress: Arc<Progress>,
}

impl ShardState {
    fn error(&self, why: String) {
        self.errors.set(self.errors.get() + 1);
        self.progress.errors.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first_error.borrow_mut();
        if first.is_none() {
            *first = Some(why);
        }
    }
}

/// Runs `cfg`; `observer` is called (on this thread) as the measured window opens and
/// closes.
pub fn run(cfg: &LoadConfig, observer: Option<&mut dyn FnMut(Edge)>) -> Result<Report> {
    if cfg.conns == 0 || cfg.threads == 0 {
        bail!("--conns and --threads must be at least 1");
    }
    if cfg.rate.is_none() && cfg.depth == 0 {
        bail!("--depth must be at least 1");
    }
    if let Some(r) = cfg.rate {
        if r.is_nan() || r <= 0.0 {
            bail!("--rate must be positive");
        }
    }
    let (request, checker) = match (&cfg.call, cfg.proto) {
        (Some(call), Proto::Tars(v)) => {
            (Request::calls(v, &cfg.servant, &cfg.func, &call.bodies)?, Checker::custom(v, call.check.clone()))
        }
        (Some(_), Proto::Raw) => bail!("a custom call needs the TARS protocol"),
        (None, Proto::Tars(v)) => {
            (Request::tars(v, &cfg.servant, &cfg.func, cfg.size)?, Checker::new(cfg.proto, cfg.size))
        }
        (None, Proto::Raw) => (Request::raw(cfg.size), Checker::new(cfg.proto, cfg.size)),
    };
    let threads = cfg.threads.min(cfg.conns);
    let progress = Arc::new(Progress::default());
    let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
    let (result_tx, result_rx) = mpsc::channel::<ShardResult>();
    let (go_tx, go_rx) = channel::unbounded::<Window>();
    let plan = Arc::new((cfg.clone(), request, checker));
    let shard_progress = progress.clone();
    let shards = Shards::start("tars-bench", threads, cfg.io, move |info| {
        shard_main(info, plan.clone(), shard_progress.clone(), ready_tx.clone(), go_rx.clone(), result_tx.clone())
    })?;
    let io = shards.io();
    for _ in 0..threads {
        match ready_rx.recv_timeout(Duration::from_secs(30)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                go_tx.close();
                let _ = shards.join();
                bail!("{e}");
            }
            Err(_) => {
                go_tx.close();
                bail!("client shards did not connect within 30 s");
            }
        }
    }
    let t0 = Instant::now() + Duration::from_millis(2);
    let measure_from = t0 + cfg.warmup;
    let end = match cfg.stop {
        Stop::Duration(d) => measure_from + d,
        // Generous: each connection stops on its own after its share of replies.
        Stop::Requests(_) => measure_from + Duration::from_secs(24 * 3600),
    };
    let window = Window { t0, measure_from, end };
    for _ in 0..threads {
        let _ = go_tx.try_send(window);
    }

    let mut observer = observer;
    let mut results = Vec::with_capacity(threads);
    let mut cpu_start = None;
    let mut cpu_end = None;
    let mut last = (t0, 0u64);
    let mut tick = t0 + Duration::from_secs(1);
    let mut started = false;
    let mut closed_at = None;
    while results.len() < threads {
        let now = Instant::now();
        if !started && now >= measure_from {
            started = true;
            cpu_start = cpu::self_cpu_time().ok();
            if let Some(o) = observer.as_mut() {
                o(Edge::Start);
            }
        }
        if started && closed_at.is_none() && matches!(cfg.stop, Stop::Duration(_)) && now >= end {
            closed_at = Some(now);
            cpu_end = cpu::self_cpu_time().ok();
            if let Some(o) = observer.as_mut() {
                o(Edge::End);
            }
        }
        if cfg.progress && now >= tick {
            let replies = progress.replies.load(Ordering::Relaxed);
            let rate = (replies - last.1) as f64 / now.duration_since(last.0).as_secs_f64().max(1e-9);
            let phase = if now < measure_from { "warmup" } else { "measure" };
            eprintln!(
                "[{:>5.1}s] {phase:<7} {:>10.0} req/s  replies {:>10}  errors {}",
                now.duration_since(t0).as_secs_f64(),
                rate,
                replies,
                progress.errors.load(Ordering::Relaxed)
            );
            last = (now, replies);
            tick += Duration::from_secs(1);
        }
        let mut next = tick;
        if !started {
            next = next.min(measure_from);
        } else if closed_at.is_none() && matches!(cfg.stop, Stop::Duration(_)) {
            next = next.min(end);
        }
        let wait = next.saturating_duration_since(Instant::now()).max(Duration::from_micros(100));
        match result_rx.recv_timeout(wait) {
            Ok(r) => results.push(r),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    if !started {
        cpu_start = cpu::self_cpu_time().ok();
        if let Some(o) = observer.as_mut() {
            o(Edge::Start);
        }
    }
    if closed_at.is_none() {
        cpu_end = cpu::self_cpu_time().ok();
        if let Some(o) = observer.as_mut() {
            o(Edge::End);
        }
    }
    shards.join()?;
    if results.len() < threads {
        bail!("a client shard exited without a result");
    }

    let mut latency = Latency::new();
    let mut report = Report {
        completed: 0,
        errors: 0,
        first_error: None,
        sent: 0,
        unfinished: 0,
        window: Duration::ZERO,
        qps: 0.0,
        latency: LatencySummary::default(),
        client_cpu: Duration::ZERO,
        io,
        target_rate: cfg.rate,
    };
    let mut last_reply = measure_from;
    for r in results {
        latency.merge(&r.latency);
        report.completed += r.completed;
        report.errors += r.errors;
        report.sent += r.sent;
        report.unfinished += r.unfinished;
        if report.first_error.is_none() {
            report.first_error = r.first_error;
        }
        if let Some(t) = r.last_reply {
            last_reply = last_reply.max(t);
        }
    }
    report.window = match cfg.stop {
        Stop::Duration(d) => d,
        Stop::Requests(_) => last_reply.saturating_duration_since(measure_from),
    };
    report.qps = report.completed as f64 / report.window.as_secs_f64().max(1e-9);
    report.latency = latency.summary();
    if let (Some(a), Some(b)) = (cpu_start, cpu_end) {
        report.client_cpu = b.saturating_sub(a);
    }
    Ok(report)
}

async fn shard_main(
    info: ShardInfo,
    plan: Arc<(LoadConfig, Request, Checker)>,
    progress: Arc<Progress>,
    ready: mpsc::Sender<Result<(), String>>,
    go: channel::Receiver<Window>,
    results: mpsc::Sender<ShardResult>,
) {
    let (cfg, request, checker) = &*plan;
    let mine: Vec<usize> = (0..cfg.conns).filter(|i| i % info.count == info.id).collect();
    let mut streams = Vec::with_capacity(mine.len());
    for &i in &mine {
        match TcpStream::connect(cfg.addr).await {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                streams.push((i, s));
            }
            Err(e) => {
                let _ = ready.send(Err(format!("connection {i} to {}: {e}", cfg.addr)));
                return;
            }
        }
    }
    if ready.send(Ok(())).is_err() {
        return;
    }
    let Ok(window) = go.recv().await else { return };
    let state = Rc::new(ShardState {
        latency: RefCell::new(Latency::new()),
        completed: Cell::new(0),
        errors: Cell::new(0),
        sent: Cell::new(0),
        unfinished: Cell::new(0),
        first_error: RefCell::new(None),
        last_reply: Cell::new(None),
        progress,
    });
    let request = Rc::new(request.clone());
    let mut tasks = Vec::with_capacity(streams.len());
    for (i, stream) in streams {
        let quota = match cfg.stop {
            Stop::Requests(n) => {
                let n_conns = cfg.conns as u64;
                Some(n / n_conns + u64::from((i as u64) < n % n_conns))
            }
            Stop::Duration(_) => None,
        };
        let mode = match cfg.rate {
            Some(rate) => Mode::Open(Schedule::new(window.t0, rate, i, cfg.conns)),
            None => Mode::Closed(cfg.depth),
        };
        let conn = Conn {
            stream,
            state: state.clone(),
            request: request.clone(),
            checker: checker.clone(),
            decoder: FrameDecoder::new(),
            input: BytesMut::with_capacity(64 * 1024),
            out: Vec::with_capacity(64 * 1024),
            out_pos: 0,
            write_armed: false,
            slots: Slots::default(),
            mode,
            quota,
            window,
            // Any odd seed works for xorshift; distinct per connection.
            pick: (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            end_timer: None,
            send_timer: None,
            done: quota == Some(0),
        };
        tasks.push(rt::spawn(conn.run()));
    }
    for t in tasks {
        t.await;
    }
    let latency = state.latency.replace(Latency::new());
    let _ = results.send(ShardResult {
        latency,
        completed: state.completed.get(),
        errors: state.errors.get(),
        first_error: state.first_error.take(),
        sent: state.sent.get(),
        unfinished: state.unfinished.get(),
        last_reply: state.last_reply.get(),
    });
}

/// Request send times by slot; a slot is reused once its reply has come back.
#[derive(Debug, Default)]
struct Slots {
    at: Vec<Option<Instant>>,
    free: Vec<u32>,
    busy: usize,
}

impl Slots {
    fn alloc(&mut self, t: Instant) -> u32 {
        self.busy += 1;
        match self.free.pop() {
            Some(i) => {
                self.at[i as usize] = Some(t);
                i
            }
            None => {
                self.at.push(Some(t));
                u32::try_from(self.at.len() - 1).unwrap_or(u32::MAX)
            }
        }
    }

    fn take(&mut self, slot: u32) -> Option<Instant> {
        let t = self.at.get_mut(slot as usize)?.take()?;
        self.free.push(slot);
        self.busy -= 1;
        Some(t)
    }
}

#[derive(Debug)]
enum Mode {
    Closed(usize),
    Open(Schedule),
}

/// Bytes read per turn before handling the replies.
const READ_MAX: usize = 256 * 1024;
/// Turns before yielding to the shard's other connections.
const TURN_BUDGET: usize = 16;
/// An open-loop connection with this many requests outstanding gives up: the server is not
/// keeping up at all, and memory would grow without bound.
const MAX_OUTSTANDING: usize = 1 << 20;

type Timer = Pin<Box<dyn Future<Output = ()>>>;

struct Conn {
    stream: TcpStream,
    state: Rc<ShardState>,
    request: Rc<Request>,
    checker: Checker,
    decoder: FrameDecoder,
    input: BytesMut,
    out: Vec<u8>,
    out_pos: usize,
    write_armed: bool,
    slots: Slots,
    mode: Mode,
    quota: Option<u64>,
    window: Window,
    /// xorshift state choosing the request variant.
    pick: u64,
    end_timer: Option<Timer>,
    send_timer: Option<(Instant, Timer)>,
    done: bool,
}

impl Conn {
    async fn run(mut self) {
        if self.done {
            return;
        }
        if let Mode::Closed(depth) = self.mode {
            let now = Instant::now();
            for _ in 0..depth {
                self.send(now);
            }
        }
        if let Err(e) = std::future::poll_fn(|cx| self.poll(cx)).await {
            if Instant::now() < self.window.end && !self.done {
                self.state.error(e);
            }
        }
        self.state.unfinished.set(self.state.unfinished.get() + self.slots.busy as u64);
    }

    fn send(&mut self, at: Instant) {
        let slot = self.slots.alloc(at);
        if self.request.variants() > 1 {
            self.pick ^= self.pick << 13;
            self.pick ^= self.pick >> 7;
            self.pick ^= self.pick << 17;
            self.request.append_variant(&mut self.out, slot, (self.pick >> 16) as usize);
        } else {
            self.request.append(&mut self.out, slot);
        }
        self.state.sent.set(self.state.sent.get() + 1);
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), String>> {
        loop {
            let mut turns = 0;
            loop {
                let now = Instant::now();
                if self.done || now >= self.window.end {
                    return Poll::Ready(Ok(()));
                }
                while let Mode::Open(s) = &mut self.mode {
                    let due = s.next();
                    if due > now {
                        break;
                    }
                    s.advance();
                    self.send(due);
                }
                if self.slots.busy > MAX_OUTSTANDING {
                    return Poll::Ready(Err(format!("{MAX_OUTSTANDING} requests outstanding; giving up")));
                }
                if let Err(e) = self.flush(cx) {
                    return Poll::Ready(Err(e));
                }
                match self.stream.poll_read_buf(cx, &mut self.input, READ_MAX) {
                    Poll::Ready(Ok(0)) => return Poll::Ready(Err("server closed the connection".into())),
                    Poll::Ready(Ok(_)) => {
                        if let Err(e) = self.handle_input() {
                            return Poll::Ready(Err(e));
                        }
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(format!("read: {e}"))),
                    Poll::Pending => break,
                }
                turns += 1;
                if turns >= TURN_BUDGET {
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
            }
            let end = self.window.end;
            let timer = self.end_timer.get_or_insert_with(|| Box::pin(rt::sleep_until(end)));
            if timer.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Ok(()));
            }
            if let Mode::Open(s) = &self.mode {
                let due = s.next();
                if self.send_timer.as_ref().is_none_or(|(at, _)| *at != due) {
                    self.send_timer = Some((due, Box::pin(rt::sleep_until(due))));
                }
                if let Some((_, t)) = &mut self.send_timer {
                    if t.as_mut().poll(cx).is_ready() {
                        self.send_timer = None;
                        continue;
                    }
                }
            }
            return Poll::Pending;
        }
    }

    /// Writes queued requests until done or the socket is full.
    fn flush(&mut self, cx: &mut Context<'_>) -> Result<(), String> {
        while self.out_pos < self.out.len() {
            match self.stream.poll_write_some(cx, &self.out[self.out_pos..]) {
                Poll::Ready(Ok(0)) => return Err("write returned 0".into()),
                Poll::Ready(Ok(n)) => self.out_pos += n,
                Poll::Ready(Err(e)) => return Err(format!("write: {e}")),
                Poll::Pending => {
                    self.write_armed = true;
                    return Ok(());
                }
            }
        }
        self.out.clear();
        self.out_pos = 0;
        if self.write_armed {
            self.write_armed = false;
            self.stream.write_idle().map_err(|e| format!("write_idle: {e}"))?;
        }
        Ok(())
    }

    /// Handles every complete reply in the input.
    fn handle_input(&mut self) -> Result<(), String> {
        let now = Instant::now();
        let measuring = now >= self.window.measure_from;
        let mut replies = 0u64;
        let mut measured = 0u64;
        while !self.done {
            let body = match self.decoder.decode(&mut self.input) {
                Ok(Some(body)) => body,
                Ok(None) => break,
                Err(e) => return Err(format!("bad reply frame: {e}")),
            };
            replies += 1;
            match self.checker.check(&body) {
                Ok(slot) => match self.slots.take(slot) {
                    Some(sent) => {
                        if measuring {
                            self.state.latency.borrow_mut().record(now.saturating_duration_since(sent));
                            measured += 1;
                            if let Some(q) = &mut self.quota {
                                *q -= 1;
                                self.done = *q == 0;
                            }
                        }
                    }
                    None => self.state.error(format!("reply to unknown request slot {slot}")),
                },
                Err(bad) => {
                    if let Some(slot) = bad.slot {
                        self.slots.take(slot);
                    }
                    self.state.error(bad.why);
                }
            }
            if let Mode::Closed(_) = self.mode {
                self.send(now);
            }
        }
        self.state.progress.replies.fetch_add(replies, Ordering::Relaxed);
        if measured > 0 {
            self.state.completed.set(self.state.completed.get() + measured);
            self.state.last_reply.set(Some(now));
        }
        Ok(())
    }
}

/// Parses `"1,16,256"`-style lists of `C` or `CxD` cells.
pub fn parse_cell(s: &str) -> Result<(usize, usize)> {
    let (c, d) = s.split_once(['x', 'X']).unwrap_or((s, "1"));
    let c: usize = c.trim().parse().map_err(|e| anyhow!("bad cell {s:?}: {e}"))?;
    let d: usize = d.trim().parse().map_err(|e| anyhow!("bad cell {s:?}: {e}"))?;
    if c == 0 || d == 0 {
        bail!("bad cell {s:?}: connections and depth must be at least 1");
    }
    Ok((c, d))
}
