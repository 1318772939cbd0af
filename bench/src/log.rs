//! The log benchmark behind `tars-bench-log`: lines per second written to disk through
//! tarslog's `LogObj`, next to a plain buffered file write of the same lines, in the same run
//! on the same file system, as a ratio.
//!
//! 1. **plain**: one `BufWriter<File>` (64 KiB, as each of tarslog's open files) writes every
//!    line as tarslog would (`127.0.0.1|` and the line), then flushes and closes the file.
//! 2. **logobj**: tarslog ([`tars_log::LogService`] in an [`Application`], system clock,
//!    `fsync` as asked) on `shards` shards; `conns` std-socket connections each send
//!    pre-encoded oneway `logger` requests of `batch` lines (TarsCpp's remote logger sends
//!    at most 200 per call), each connection to its own file, as fast as the socket takes
//!    them. The clock runs from the first byte sent until every line was written or dropped
//!    and the service stopped (its writers flushed and closed every file); the files are then
//!    checked byte for byte against what was written. Dropped lines (queue full) are
//!    reported and not counted as written.
//!
//! Runs alternate (plain, logobj, plain, …); the median of `reps` by lines/s is reported.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use serde_json::{json, Value as Json};
use tars_core_net::app::Application;
use tars_core_net::rt::IoMode;
use tars_log::LogService;
use tars_proto::config::Config;
use tars_proto::frame::encode_frame;
use tars_proto::packet::{packet_type, version, RequestPacket, StringMap};
use tars_proto::rpc::ParamWriter;

use crate::cpu;

/// What a run covers.
#[derive(Debug, Clone)]
pub struct LogBenchConfig {
    /// Lines per run.
    pub lines: usize,
    /// Bytes per line, newline included.
    pub line_bytes: usize,
    /// Lines per `logger` call.
    pub batch: usize,
    /// Client connections (one file each).
    pub conns: usize,
    /// Server shards.
    pub shards: usize,
    /// Writer threads (`logthread`).
    pub writers: usize,
    /// `fsync`: never, interval, always.
    pub fsync: String,
    /// `queueMB`.
    pub queue_mb: usize,
    /// The server's IO driver.
    pub io: IoMode,
    /// Runs of each.
    pub reps: usize,
    /// Where the files go (a temp dir under it; default the system's temp dir).
    pub dir: Option<PathBuf>,
}

impl LogBenchConfig {
    /// The full run.
    pub fn full() -> LogBenchConfig {
        LogBenchConfig {
            lines: 2_000_000,
            line_bytes: 100,
            batch: 200,
            conns: 4,
            shards: 1,
            writers: 1,
            fsync: "never".into(),
            queue_mb: 64,
            io: IoMode::EpollLt,
            reps: 3,
            dir: None,
        }
    }

    /// A smoke run.
    pub fn quick() -> LogBenchConfig {
        LogBenchConfig { lines: 100_000, reps: 1, ..LogBenchConfig::full() }
    }
}

/// One measured run.
#[derive(Debug, Clone)]
pub struct Run {
    /// Lines written.
    pub written: u64,
    /// Lines dropped (queue full).
    pub dropped: u64,
    /// Wall time.
    pub elapsed: Duration,
    /// CPU of the server's shards and writers (zero for plain).
    pub shard_cpu: Duration,
    /// CPU of the writer threads.
    pub writer_cpu: Duration,
}

impl Run {
    /// Lines written per second.
    pub fn rate(&self) -> f64 {
        self.written as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Both kinds' runs.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Plain buffered writes.
    pub plain: Vec<Run>,
    /// Through LogObj.
    pub logobj: Vec<Run>,
}

fn median(runs: &[Run]) -> Option<&Run> {
    let mut v: Vec<&Run> = runs.iter().collect();
    v.sort_by(|a, b| a.rate().total_cmp(&b.rate()));
    v.get(v.len() / 2).copied()
}

const PREFIX: &str = "127.0.0.1|";

fn line(cfg: &LogBenchConfig, n: usize) -> String {
    let body = cfg.line_bytes.saturating_sub(1).max(8);
    let mut s = format!("line {n:08} ");
    while s.len() < body {
        s.push('x');
    }
    s.truncate(body);
    s.push('\n');
    s
}

fn plain(cfg: &LogBenchConfig, dir: &Path, lines: &[String]) -> Result<Run> {
    let path = dir.join("plain.log");
    let t = Instant::now();
    let f = std::fs::OpenOptions::new().append(true).create(true).open(&path)?;
    let mut out = std::io::BufWriter::with_capacity(64 << 10, f);
    let per_batch = lines.len();
    let mut written = 0u64;
    let total_batches = cfg.lines / cfg.batch;
    for _ in 0..total_batches {
        for l in lines {
            out.write_all(PREFIX.as_bytes())?;
            out.write_all(l.as_bytes())?;
        }
        written += per_batch as u64;
    }
    out.flush()?;
    drop(out);
    let elapsed = t.elapsed();
    let len = std::fs::metadata(&path)?.len();
    let expect: u64 = lines.iter().map(|l| (l.len() + PREFIX.len()) as u64).sum::<u64>() * total_batches as u64;
    if len != expect {
        bail!("plain file has {len} bytes, expected {expect}");
    }
    std::fs::remove_file(&path)?;
    Ok(Run { written, dropped: 0, elapsed, shard_cpu: Duration::ZERO, writer_cpu: Duration::ZERO })
}

fn server_config(cfg: &LogBenchConfig, root: &Path) -> String {
    let log = format!(
        "<log>\nlogpath={}\nlogthread={}\nfsync={}\nqueueMB={}\n</log>\n",
        root.display(),
        cfg.writers,
        cfg.fsync,
        cfg.queue_mb
    );
    crate::conf::server_config("Bench", "Log", &[tars_log::LOG_OBJ], "", &log)
}

fn frame(file: &str, lines: &[String], id: i32) -> Vec<u8> {
    let mut w = ParamWriter::new(version::TARS);
    w.write_str(1, "app", "Bench");
    w.write_str(2, "server", "Load");
    w.write_str(3, "file", file);
    w.write_str(4, "format", "%Y%m%d");
    w.write(5, "buffer", &lines.to_vec());
    let req = RequestPacket {
        i_version: version::TARS,
        c_packet_type: packet_type::ONEWAY,
        i_message_type: 0,
        i_request_id: id,
        s_servant_name: tars_log::LOG_OBJ.to_owned(),
        s_func_name: "logger".to_owned(),
        s_buffer: w.finish(),
        i_timeout: 60_000,
        context: StringMap::new(),
        status: StringMap::new(),
    };
    encode_frame(&req).to_vec()
}

fn thread_cpu(prefix: &str) -> Duration {
    cpu::thread_times().into_iter().filter(|(_, name, _)| name.starts_with(prefix)).map(|(_, _, t)| t).sum()
}

fn logobj(cfg: &LogBenchConfig, dir: &Path, lines: &[String]) -> Result<Run> {
    let root = dir.join("remote_app_log");
    let text = server_config(cfg, &root);
    let running =
        Application::new(Config::parse(&text)?)?.io(cfg.io).shards(cfg.shards).service(LogService::new()).start()?;
    let addr: SocketAddr =
        running.server().addr(&format!("{}Adapter", tars_log::LOG_OBJ)).ok_or_else(|| anyhow!("no LogObj adapter"))?;
    let counters = running.service::<LogService>().ok_or_else(|| anyhow!("no log service"))?.counters().clone();
    let total_batches = cfg.lines / cfg.batch;
    let per_conn = total_batches / cfg.conns;
    let frames: Vec<Vec<u8>> = (0..cfg.conns).map(|k| frame(&format!("c{k}"), lines, k as i32 + 1)).collect();
    let (cpu0_shards, cpu0_writers) = (thread_cpu("Bench.Log-"), thread_cpu("tars-log-writ"));
    let t = Instant::now();
    let senders: Vec<_> = frames
        .into_iter()
        .map(|f| {
            std::thread::spawn(move || -> Result<()> {
                let mut s = std::net::TcpStream::connect(addr)?;
                s.set_nodelay(true)?;
                for _ in 0..per_conn {
                    s.write_all(&f)?;
                }
                s.flush()?;
                // Keep the connection until the server has read everything.
                Ok(())
            })
        })
        .collect();
    let mut sockets_ok = true;
    for s in senders {
        sockets_ok &= matches!(s.join(), Ok(Ok(())));
    }
    if !sockets_ok {
        bail!("a sender failed");
    }
    let expect_lines = (per_conn * cfg.conns * cfg.batch) as u64;
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let done = counters.written.load(Relaxed) + counters.dropped.load(Relaxed) + counters.failed.load(Relaxed);
        if done >= expect_lines {
            break;
        }
        if Instant::now() > deadline {
            bail!("only {done} of {expect_lines} lines handled after 300 s: {}", counters.describe(0));
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    let (cpu_shards, cpu_writers) =
        (thread_cpu("Bench.Log-") - cpu0_shards, thread_cpu("tars-log-writ") - cpu0_writers);
    running.shutdown();
    running.wait()?;
    let elapsed = t.elapsed();
    let written = counters.written.load(Relaxed);
    let dropped = counters.dropped.load(Relaxed);
    if counters.failed.load(Relaxed) > 0 || counters.refused.load(Relaxed) > 0 {
        bail!("lines failed or refused: {}", counters.describe(0));
    }
    // The files hold exactly what was written, whole batches in order.
    let mut on_disk = 0u64;
    let day = chrono_day();
    for k in 0..cfg.conns {
        let path = root.join(format!("Bench/Load/Bench.Load_c{k}_{day}.log"));
        on_disk += std::fs::metadata(&path).with_context(|| format!("{}", path.display()))?.len();
    }
    let batch_bytes: u64 = lines.iter().map(|l| (l.len() + PREFIX.len()) as u64).sum();
    if on_disk != written / cfg.batch as u64 * batch_bytes {
        bail!("{on_disk} bytes on disk for {written} lines written");
    }
    std::fs::remove_dir_all(&root)?;
    Ok(Run { written, dropped, elapsed, shard_cpu: cpu_shards, writer_cpu: cpu_writers })
}

/// Today as tarslog names its files (`%Y%m%d`, local time).
fn chrono_day() -> String {
    let now = tars_log::clock::Clock::now(&tars_log::clock::SystemClock);
    tars_log::naming::TimeFormat::parse("%Y%m%d").and_then(|f| f.format(now)).unwrap_or_default()
}

/// Runs the benchmark; `progress` gets a line per run.
pub fn run(cfg: &LogBenchConfig, progress: &mut dyn FnMut(String)) -> Result<Outcome> {
    if cfg.batch == 0 || cfg.conns == 0 || cfg.lines < cfg.batch * cfg.conns {
        bail!("--lines must be at least --batch x --conns, all positive");
    }
    let base = cfg.dir.clone().unwrap_or_else(std::env::temp_dir);
    let dir = base.join(format!("tars-bench-log-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let lines: Vec<String> = (0..cfg.batch).map(|n| line(cfg, n)).collect();
    let mut out = Outcome::default();
    let result = (|| -> Result<()> {
        for rep in 0..cfg.reps {
            let p = plain(cfg, &dir, &lines)?;
            progress(format!("rep {rep}: plain  {:>12.0} lines/s in {:?}", p.rate(), p.elapsed));
            out.plain.push(p);
            let l = logobj(cfg, &dir, &lines)?;
            progress(format!(
                "rep {rep}: logobj {:>12.0} lines/s in {:?} ({} dropped)",
                l.rate(),
                l.elapsed,
                l.dropped
            ));
            out.logobj.push(l);
        }
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result.map(|()| out)
}

impl Outcome {
    /// The text report.
    pub fn text(&self, cfg: &LogBenchConfig) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{} lines of {} B in calls of {}, {} connections, {} shard(s), {} writer(s), fsync={}, queueMB={}, {:?}",
            cfg.lines, cfg.line_bytes, cfg.batch, cfg.conns, cfg.shards, cfg.writers, cfg.fsync, cfg.queue_mb, cfg.io
        );
        let (Some(p), Some(l)) = (median(&self.plain), median(&self.logobj)) else { return s };
        let range = |runs: &[Run]| {
            let r: Vec<f64> = runs.iter().map(Run::rate).collect();
            let lo = r.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = r.iter().copied().fold(0.0, f64::max);
            format!("[{lo:.0}..{hi:.0}]")
        };
        let mb = |r: &Run| r.rate() * (cfg.line_bytes + PREFIX.len()) as f64 / 1e6;
        let _ = writeln!(s, "plain   {:>12.0} lines/s {} ({:.0} MB/s)", p.rate(), range(&self.plain), mb(p));
        let _ = writeln!(
            s,
            "logobj  {:>12.0} lines/s {} ({:.0} MB/s), {} dropped; shards {:.3} µs/line, writers {:.3} µs/line",
            l.rate(),
            range(&self.logobj),
            mb(l),
            l.dropped,
            l.shard_cpu.as_secs_f64() * 1e6 / l.written.max(1) as f64,
            l.writer_cpu.as_secs_f64() * 1e6 / l.written.max(1) as f64,
        );
        let _ = writeln!(s, "logobj / plain: {:.3}", l.rate() / p.rate().max(1e-9));
        s
    }

    /// One JSON object.
    pub fn to_json(&self, cfg: &LogBenchConfig) -> Json {
        let runs = |v: &[Run]| -> Vec<Json> {
            v.iter()
                .map(|r| {
                    json!({"written": r.written, "dropped": r.dropped, "secs": r.elapsed.as_secs_f64(),
                           "lines_per_sec": r.rate(), "shard_cpu_secs": r.shard_cpu.as_secs_f64(),
                           "writer_cpu_secs": r.writer_cpu.as_secs_f64()})
                })
                .collect()
        };
        let ratio = match (median(&self.plain), median(&self.logobj)) {
            (Some(p), Some(l)) => l.rate() / p.rate().max(1e-9),
            _ => 0.0,
        };
        json!({
            "lines": cfg.lines, "line_bytes": cfg.line_bytes, "batch": cfg.batch, "conns": cfg.conns,
            "shards": cfg.shards, "writers": cfg.writers, "fsync": cfg.fsync, "queue_mb": cfg.queue_mb,
            "io": format!("{:?}", cfg.io), "plain": runs(&self.plain), "logobj": runs(&self.logobj), "ratio": ratio,
        })
    }
}
