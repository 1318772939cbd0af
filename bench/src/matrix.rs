//! The matrix runner behind `tars-bench-matrix`: for each server shard count and each
//! closed-loop cell (connections × depth), runs every server kind side by side (a fresh
//! `tars-echo-server` child per run, kinds interleaved within the cell so slow drifts of the
//! shared machine hit them alike), drives it with [`load::run`] in this process, and samples
//! the server's CPU time (`/proc/<pid>/stat`) exactly at the edges of the measured window.

use std::fmt::{self, Write as _};
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use serde_json::json;
use tars_core_net::rt::IoMode;

use crate::cpu;
use crate::hist::round1;
use crate::load::{self, Edge, LoadConfig, Stop};
use crate::proto::Proto;

/// A server to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kind {
    /// The raw echo server instead of the TARS one.
    pub raw: bool,
    /// The TARS server with call statistics on (`tars-echo-server --stats`); never with `raw`.
    pub stats: bool,
    /// Its IO driver.
    pub io: IoMode,
}

impl Kind {
    /// The raw echo server on `io`.
    pub fn raw(io: IoMode) -> Kind {
        Kind { raw: true, stats: false, io }
    }

    /// The TARS echo server on `io`.
    pub fn tars(io: IoMode) -> Kind {
        Kind { raw: false, stats: false, io }
    }

    /// The TARS echo server on `io`, counting every call in its stat tables.
    pub fn stats(io: IoMode) -> Kind {
        Kind { raw: false, stats: true, io }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let server = match (self.raw, self.stats) {
            (true, _) => "raw",
            (false, true) => "stats",
            (false, false) => "tars",
        };
        write!(f, "{server}-{}", self.io)
    }
}

impl FromStr for Kind {
    type Err = anyhow::Error;
    /// `raw` (raw on uring), `raw-<io>`, `tars-<io>`, `stats-<io>` (TARS with call
    /// statistics) or just `<io>` (TARS).
    fn from_str(s: &str) -> Result<Kind> {
        let s = s.trim();
        if s == "raw" {
            return Ok(Kind::raw(IoMode::Uring));
        }
        if let Some(io) = s.strip_prefix("raw-") {
            return Ok(Kind::raw(io.parse()?));
        }
        if let Some(io) = s.strip_prefix("stats-") {
            return Ok(Kind::stats(io.parse()?));
        }
        let io = s.strip_prefix("tars-").unwrap_or(s);
        Ok(Kind::tars(io.parse()?))
    }
}

/// What the matrix covers.
#[derive(Debug, Clone)]
pub struct MatrixConfig {
    /// The `tars-echo-server` binary.
    pub server_bin: PathBuf,
    /// Server shard counts.
    pub shards: Vec<usize>,
    /// Closed-loop cells: (connections, depth).
    pub cells: Vec<(usize, usize)>,
    /// Servers, in the order they run within a cell.
    pub kinds: Vec<Kind>,
    /// Payload bytes.
    pub size: usize,
    /// Measured window per run.
    pub duration: Duration,
    /// Warm-up per run.
    pub warmup: Duration,
    /// Runs per (cell, kind); the table shows the median by QPS.
    pub reps: usize,
    /// Client IO driver.
    pub client_io: IoMode,
    /// Client shards.
    pub client_threads: usize,
    /// TARS iVersion.
    pub version: i16,
    /// Pin each server to these CPUs (`taskset -c LIST`); `None` = unpinned. Pin the runner
    /// (and so the client) with `taskset` around it.
    pub server_cpus: Option<String>,
}

impl MatrixConfig {
    /// The full matrix: shards {1, 2}; 1, 16 and 256 connections with one request each, plus
    /// 1×16 and 16×4 (pipelined); raw echo and TARS on each driver (so each TARS row has a raw
    /// reference on its own driver); 3 s after 1 s warm-up; the client on epoll-lt.
    pub fn full(server_bin: PathBuf) -> MatrixConfig {
        MatrixConfig {
            server_bin,
            shards: vec![1, 2],
            cells: vec![(1, 1), (16, 1), (256, 1), (1, 16), (16, 4)],
            kinds: IoMode::ALL.iter().flat_map(|&io| [Kind::raw(io), Kind::tars(io)]).collect(),
            size: 100,
            duration: Duration::from_secs(3),
            warmup: Duration::from_secs(1),
            reps: 1,
            client_io: IoMode::EpollLt,
            client_threads: 1,
            version: 1,
            server_cpus: None,
        }
    }

    /// A smoke run: one shard, two small cells, 0.3 s after 0.1 s warm-up.
    pub fn quick(server_bin: PathBuf) -> MatrixConfig {
        MatrixConfig {
            shards: vec![1],
            cells: vec![(1, 1), (16, 1)],
            duration: Duration::from_millis(300),
            warmup: Duration::from_millis(100),
            ..MatrixConfig::full(server_bin)
        }
    }
}

/// One run.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// The server.
    pub kind: Kind,
    /// The driver the server actually ran (after any uring fallback).
    pub actual_io: String,
    /// Server shards.
    pub shards: usize,
    /// Connections.
    pub conns: usize,
    /// Outstanding per connection.
    pub depth: usize,
    /// The load report.
    pub report: load::Report,
    /// Server CPU time over the measured window.
    pub server_cpu: Duration,
}

impl RunResult {
    /// Server CPU microseconds per measured reply.
    pub fn server_us_per_req(&self) -> f64 {
        if self.report.completed == 0 {
            0.0
        } else {
            self.server_cpu.as_secs_f64() * 1e6 / self.report.completed as f64
        }
    }

    /// Server CPU in cores (CPU seconds per second of window).
    pub fn server_cores(&self) -> f64 {
        self.server_cpu.as_secs_f64() / self.report.window.as_secs_f64().max(1e-9)
    }

    /// As JSON.
    pub fn to_json(&self) -> serde_json::Value {
        let l = &self.report.latency;
        json!({
            "kind": self.kind.to_string(),
            "actual_io": self.actual_io,
            "shards": self.shards,
            "conns": self.conns,
            "depth": self.depth,
            "qps": round1(self.report.qps),
            "completed": self.report.completed,
            "errors": self.report.errors,
            "p50_us": round1(l.p50_us),
            "p99_us": round1(l.p99_us),
            "p999_us": round1(l.p999_us),
            "max_us": round1(l.max_us),
            "server_cpu_s": self.server_cpu.as_secs_f64(),
            "server_cores": (self.server_cores() * 100.0).round() / 100.0,
            "server_cpu_us_per_req": (self.server_us_per_req() * 100.0).round() / 100.0,
            "client_cpu_us_per_req": (self.report.client_cpu_us_per_req() * 100.0).round() / 100.0,
        })
    }
}

/// A running `tars-echo-server`.
struct ServerChild {
    child: Child,
    stdin: Option<ChildStdin>,
    addr: SocketAddr,
    io: String,
    stderr: std::thread::JoinHandle<String>,
}

impl ServerChild {
    fn start(bin: &PathBuf, kind: Kind, shards: usize, cpus: Option<&str>) -> Result<ServerChild> {
        let mut cmd = match cpus {
            Some(list) => {
                let mut c = Command::new("taskset");
                c.args(["-c", list]).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        cmd.args(["--io", kind.io.as_str(), "--shards", &shards.to_string(), "--port", "0"]);
        if kind.raw {
            cmd.arg("--raw");
        }
        if kind.stats {
            cmd.arg("--stats");
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let stdin = child.stdin.take();
        let mut err = child.stderr.take().ok_or_else(|| anyhow!("no stderr pipe"))?;
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        let out = child.stdout.take().ok_or_else(|| anyhow!("no stdout pipe"))?;
        let mut lines = BufReader::new(out).lines();
        let mut port = None;
        let mut io = String::new();
        for line in lines.by_ref() {
            let line = line?;
            if let Some(p) = line.strip_prefix("LISTENING ") {
                port = Some(p.trim().parse::<u16>()?);
            } else if let Some(m) = line.strip_prefix("IO ") {
                io = m.trim().to_owned();
                break;
            }
        }
        let Some(port) = port else {
            let _ = child.kill();
            let _ = child.wait();
            let text = stderr.join().unwrap_or_default();
            bail!("{kind} server did not start: {}", text.trim());
        };
        Ok(ServerChild { child, stdin, addr: SocketAddr::from(([127, 0, 0, 1], port)), io, stderr })
    }

    fn pid(&self) -> String {
        self.child.id().to_string()
    }

    /// Closes stdin and waits for the exit (killing it after 10 s).
    fn stop(mut self) -> Result<()> {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait()? {
                let text = self.stderr.join().unwrap_or_default();
                if !status.success() {
                    bail!("server exited with {status}: {}", text.trim());
                }
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                bail!("server did not stop within 10 s of stdin closing; killed");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Runs one server kind at one cell.
pub fn run_one(cfg: &MatrixConfig, kind: Kind, shards: usize, (conns, depth): (usize, usize)) -> Result<RunResult> {
    let server = ServerChild::start(&cfg.server_bin, kind, shards, cfg.server_cpus.as_deref())?;
    let load = LoadConfig {
        addr: server.addr,
        proto: if kind.raw { Proto::Raw } else { Proto::Tars(cfg.version) },
        conns,
        depth,
        size: cfg.size,
        stop: Stop::Duration(cfg.duration),
        warmup: cfg.warmup,
        rate: None,
        io: cfg.client_io,
        threads: cfg.client_threads,
        progress: false,
        ..LoadConfig::default()
    };
    let pid = server.pid();
    let actual_io = server.io.clone();
    let mut start = None;
    let mut end = None;
    let mut cpu_error = None;
    let mut observe = |edge: Edge| match cpu::cpu_time(&pid) {
        Ok(t) if edge == Edge::Start => start = Some(t),
        Ok(t) => end = Some(t),
        Err(e) => cpu_error = Some(e),
    };
    let report = load::run(&load, Some(&mut observe));
    let stopped = server.stop();
    let report = report?;
    stopped?;
    if let Some(e) = cpu_error {
        return Err(e);
    }
    let server_cpu = match (start, end) {
        (Some(a), Some(b)) => b.saturating_sub(a),
        _ => bail!("server CPU not sampled"),
    };
    Ok(RunResult { kind, actual_io, shards, conns, depth, report, server_cpu })
}

/// Runs the whole matrix, logging one line per run to `log`.
pub fn run_matrix(cfg: &MatrixConfig, log: &mut dyn FnMut(&RunResult)) -> Result<Vec<RunResult>> {
    let mut all = Vec::new();
    for &shards in &cfg.shards {
        for &cell in &cfg.cells {
            for _rep in 0..cfg.reps.max(1) {
                for &kind in &cfg.kinds {
                    let r = run_one(cfg, kind, shards, cell)
                        .with_context(|| format!("{kind}, {shards} shard(s), {}x{}", cell.0, cell.1))?;
                    log(&r);
                    all.push(r);
                }
            }
        }
    }
    Ok(all)
}

/// One line per run, for progress logs.
pub fn run_line(r: &RunResult) -> String {
    format!(
        "{:<14} shards {} {:>3}x{:<2} qps {:>9.0} p50 {:>7.1} p99 {:>8.1} us  server {:.2} cores {:>6.2} us/req  client {:>5.2} us/req  errors {}",
        r.kind.to_string(),
        r.shards,
        r.conns,
        r.depth,
        r.report.qps,
        r.report.latency.p50_us,
        r.report.latency.p99_us,
        r.server_cores(),
        r.server_us_per_req(),
        r.report.client_cpu_us_per_req(),
        r.report.errors
    )
}

/// The median run by QPS of each (shards, cell, kind), and the QPS range of its runs.
fn medians(cfg: &MatrixConfig, results: &[RunResult]) -> Vec<(RunResult, f64, f64)> {
    let mut out = Vec::new();
    for &shards in &cfg.shards {
        for &(conns, depth) in &cfg.cells {
            for &kind in &cfg.kinds {
                let mut runs: Vec<&RunResult> = results
                    .iter()
                    .filter(|r| r.shards == shards && r.conns == conns && r.depth == depth && r.kind == kind)
                    .collect();
                if runs.is_empty() {
                    continue;
                }
                runs.sort_by(|a, b| a.report.qps.total_cmp(&b.report.qps));
                let lo = runs[0].report.qps;
                let hi = runs[runs.len() - 1].report.qps;
                out.push((runs[runs.len() / 2].clone(), lo, hi));
            }
        }
    }
    out
}

/// The results as a markdown table (medians when there were repetitions), with a ratio to
/// the raw echo server of the same cell: the raw one on the same driver if measured, else
/// the first raw kind. When `stats-<io>` kinds ran, two more columns compare each of them
/// with `tars-<io>` of the same cell (median QPS over median QPS, and server CPU per request).
pub fn table(cfg: &MatrixConfig, results: &[RunResult]) -> String {
    let rows = medians(cfg, results);
    let with_stats = cfg.kinds.iter().any(|k| k.stats);
    let mut s = String::new();
    let reps = cfg.reps.max(1);
    let _ = writeln!(
        s,
        "| server | shards | conns×depth (in flight) | QPS{} | p50 µs | p99 µs | server CPU (cores) | server CPU µs/req | client CPU µs/req | QPS vs raw | µs/req vs raw |{} errors |",
        if reps > 1 { " median [min..max]" } else { "" },
        if with_stats { " QPS vs tars | µs/req vs tars |" } else { "" }
    );
    let _ =
        writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|{}---|", if with_stats { "---|---|" } else { "" });
    for (r, lo, hi) in &rows {
        let same = |k: &Kind| {
            rows.iter()
                .find(|(o, _, _)| o.kind == *k && o.shards == r.shards && o.conns == r.conns && o.depth == r.depth)
        };
        let ratios = |base: Option<&RunResult>, applies: bool| match base {
            Some(b) if applies && b.report.qps > 0.0 && b.server_us_per_req() > 0.0 => (
                format!("{:.0}%", 100.0 * r.report.qps / b.report.qps),
                format!("{:.2}×", r.server_us_per_req() / b.server_us_per_req()),
            ),
            _ => ("–".to_owned(), "–".to_owned()),
        };
        let raw =
            same(&Kind::raw(r.kind.io)).or_else(|| cfg.kinds.iter().find(|k| k.raw).and_then(same)).map(|(o, _, _)| o);
        let (qps_ratio, cpu_ratio) = ratios(raw, !r.kind.raw);
        let vs_tars = if with_stats {
            let (q, c) = ratios(same(&Kind::tars(r.kind.io)).map(|(o, _, _)| o), r.kind.stats);
            format!(" {q} | {c} |")
        } else {
            String::new()
        };
        let qps = if reps > 1 {
            format!("{:.0} [{:.0}..{:.0}]", r.report.qps, lo, hi)
        } else {
            format!("{:.0}", r.report.qps)
        };
        let label = if r.actual_io.is_empty() || r.actual_io == r.kind.io.as_str() {
            r.kind.to_string()
        } else {
            format!("{} (ran {})", r.kind, r.actual_io)
        };
        let _ = writeln!(
            s,
            "| {label} | {} | {}×{} ({}) | {qps} | {:.0} | {:.0} | {:.2} | {:.2} | {:.2} | {qps_ratio} | {cpu_ratio} |{vs_tars} {} |",
            r.shards,
            r.conns,
            r.depth,
            r.conns * r.depth,
            r.report.latency.p50_us,
            r.report.latency.p99_us,
            r.server_cores(),
            r.server_us_per_req(),
            r.report.client_cpu_us_per_req(),
            r.report.errors
        );
    }
    s
}

/// How the machine's cores were shared, for the report header.
pub fn core_note(cfg: &MatrixConfig) -> String {
    // Our own affinity: the runner (and so the client) may have been started under taskset.
    let cores = std::thread::available_parallelism().map(usize::from).unwrap_or(1);
    let online = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap_or_default();
    let placement = match &cfg.server_cpus {
        Some(list) => format!(
            "pinned: the server to CPU(s) {list} (taskset), this runner and its client to the {cores} CPU(s) it may use"
        ),
        None => format!("nothing pinned: client and server share the same {cores} CPU(s) through the scheduler"),
    };
    format!(
        "CPUs online {}; {placement}. The client runs {} shard thread(s) on {} (plus a mostly sleeping \
         coordinator thread); each server gets {} shard thread(s). {} B payload, closed loop, {:.1} s \
         measured after {:.1} s warm-up, {} run(s) per cell{}; server CPU is utime+stime from \
         /proc/<pid>/stat ({} ticks/s) sampled at the window edges.",
        online.trim(),
        cfg.client_threads,
        cfg.client_io,
        cfg.shards.iter().map(ToString::to_string).collect::<Vec<_>>().join(" or "),
        cfg.size,
        cfg.duration.as_secs_f64(),
        cfg.warmup.as_secs_f64(),
        cfg.reps.max(1),
        if cfg.reps > 1 { " (median by QPS shown)" } else { "" },
        cpu::clock_ticks()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse_and_print() {
        for (text, kind, shown) in [
            ("raw", Kind::raw(IoMode::Uring), "raw-uring"),
            ("raw-epoll-et", Kind::raw(IoMode::EpollEt), "raw-epoll-et"),
            ("tars-uring", Kind::tars(IoMode::Uring), "tars-uring"),
            ("epoll-lt", Kind::tars(IoMode::EpollLt), "tars-epoll-lt"),
            ("stats-epoll-et", Kind::stats(IoMode::EpollEt), "stats-epoll-et"),
            (" stats-uring ", Kind::stats(IoMode::Uring), "stats-uring"),
        ] {
            let parsed: Kind = text.parse().unwrap_or_else(|e| panic!("{text:?}: {e}"));
            assert_eq!(parsed, kind, "{text:?}");
            assert_eq!(parsed.to_string(), shown);
            assert_eq!(shown.parse::<Kind>().ok(), Some(kind));
        }
        assert!("stats-".parse::<Kind>().is_err());
        assert!("stats".parse::<Kind>().is_err());
        assert!("stats-raw".parse::<Kind>().is_err());
    }
}
