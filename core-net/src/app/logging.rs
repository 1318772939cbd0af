//! Logging for server binaries: `tracing` with the TARS level names, changed at run time by
//! `tars.setloglevel`.
//!
//! `logLevel` (`NONE`, `ERROR`, `WARN`, `INFO`, `DEBUG`, `TARS`) sets the level unless
//! `RUST_LOG` is set, which wins (for debugging one module). `tars.setloglevel LEVEL` on
//! `AdminObj` replaces the level of every target.
//!
//! Lines go to standard error through [`Stderr`]: the thread that logs (an IO shard, say)
//! only appends the formatted line to a queue bounded in bytes, and the `tars-stderr` thread
//! writes it, so a stalled terminal or a full pipe never stops a shard. Lines beyond the
//! bound are dropped and counted ([`dropped`]).

use std::collections::VecDeque;
use std::io::Write as _;
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use tracing_subscriber::filter::{EnvFilter, LevelFilter};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::reload;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::Registry;

use crate::server::adapter::ServerConfig;

static LEVEL: OnceLock<reload::Handle<EnvFilter, Registry>> = OnceLock::new();

/// The `tracing` level for a TARS level name (case-insensitive).
pub fn level_filter(tars_level: &str) -> Option<LevelFilter> {
    Some(match tars_level.to_ascii_uppercase().as_str() {
        "NONE" => LevelFilter::OFF,
        "ERROR" => LevelFilter::ERROR,
        "WARN" => LevelFilter::WARN,
        "INFO" => LevelFilter::INFO,
        "DEBUG" => LevelFilter::DEBUG,
        "TARS" => LevelFilter::TRACE,
        _ => return None,
    })
}

/// Installs the process's logger for `server` (once; later calls do nothing): standard
/// error, at `logLevel` (INFO when unset) unless `RUST_LOG` says otherwise.
pub fn init(server: &ServerConfig) {
    let level = server.log_level.as_deref().and_then(level_filter).unwrap_or(LevelFilter::INFO);
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level.to_string()));
    let (filter, handle) = reload::Layer::new(filter);
    let fmt = tracing_subscriber::fmt::layer().with_writer(QueuedStderr);
    if tracing_subscriber::registry().with(filter).with(fmt).try_init().is_ok() {
        let _ = LEVEL.set(handle);
    }
}

/// `tars.setloglevel`: applies `tars_level` to every target of the logger [`init`] installed.
pub fn set_level(tars_level: &str) -> Result<(), String> {
    let level = level_filter(tars_level).ok_or_else(|| format!("unknown log level {tars_level}"))?;
    let Some(handle) = LEVEL.get() else { return Ok(()) };
    handle.reload(EnvFilter::new(level.to_string())).map_err(|e| e.to_string())
}

/// Bytes of lines waiting for `tars-stderr` beyond which new lines are dropped.
pub const STDERR_BUDGET: usize = 4 * 1024 * 1024;

/// Standard error behind a bounded queue and its own thread (see the [module docs](self)).
/// One per process ([`Stderr::global`]).
#[derive(Debug)]
pub struct Stderr {
    state: Mutex<StderrState>,
    ready: Condvar,
    done: Condvar,
}

#[derive(Debug, Default)]
struct StderrState {
    lines: VecDeque<Vec<u8>>,
    bytes: usize,
    pushed: u64,
    written: u64,
    dropped: u64,
    /// `tars-stderr` could not start: the logging thread writes the line itself.
    direct: bool,
}

fn lock(m: &Mutex<StderrState>) -> MutexGuard<'_, StderrState> {
    // Every critical section is a push or a swap: a panic elsewhere leaves it consistent.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Stderr {
    /// The process's queue; the first call starts `tars-stderr`.
    pub fn global() -> &'static Stderr {
        static STDERR: OnceLock<&'static Stderr> = OnceLock::new();
        STDERR.get_or_init(|| {
            let q: &'static Stderr = Box::leak(Box::new(Stderr {
                state: Mutex::new(StderrState::default()),
                ready: Condvar::new(),
                done: Condvar::new(),
            }));
            if std::thread::Builder::new().name("tars-stderr".into()).spawn(move || q.run()).is_err() {
                lock(&q.state).direct = true;
            }
            q
        })
    }

    fn push(&self, line: Vec<u8>) {
        let mut s = lock(&self.state);
        if s.direct {
            drop(s);
            let _ = std::io::stderr().write_all(&line);
            return;
        }
        if s.bytes + line.len() > STDERR_BUDGET {
            s.dropped += 1;
            return;
        }
        s.bytes += line.len();
        s.pushed += 1;
        s.lines.push_back(line);
        self.ready.notify_one();
    }

    fn run(&self) {
        let mut out = std::io::stderr();
        loop {
            let batch = {
                let mut s = lock(&self.state);
                while s.lines.is_empty() {
                    s = self.ready.wait(s).unwrap_or_else(PoisonError::into_inner);
                }
                s.bytes = 0;
                std::mem::take(&mut s.lines)
            };
            let n = batch.len() as u64;
            for line in batch {
                let _ = out.write_all(&line);
            }
            let _ = out.flush();
            lock(&self.state).written += n;
            self.done.notify_all();
        }
    }

    /// Waits until the lines queued before the call are written, at most `timeout`.
    pub fn flush(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut s = lock(&self.state);
        let target = s.pushed;
        while s.written < target {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else { return false };
            s = self.done.wait_timeout(s, left).unwrap_or_else(PoisonError::into_inner).0;
        }
        true
    }

    /// Lines dropped because `tars-stderr` fell more than [`STDERR_BUDGET`] behind.
    pub fn dropped(&self) -> u64 {
        lock(&self.state).dropped
    }
}

/// Lines the standard-error log dropped so far.
pub fn dropped() -> u64 {
    Stderr::global().dropped()
}

/// Writes what the standard-error log has queued (a binary calls it before it exits).
pub fn flush() {
    Stderr::global().flush(Duration::from_secs(2));
}

/// One event's bytes, queued when the formatter is done with it.
#[derive(Debug)]
pub struct StderrLine {
    buf: Vec<u8>,
    sink: &'static Stderr,
}

impl std::io::Write for StderrLine {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for StderrLine {
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            self.sink.push(std::mem::take(&mut self.buf));
        }
    }
}

/// The [`MakeWriter`](tracing_subscriber::fmt::MakeWriter) for [`Stderr::global`].
#[derive(Debug, Clone, Copy, Default)]
pub struct QueuedStderr;

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for QueuedStderr {
    type Writer = StderrLine;

    fn make_writer(&'a self) -> StderrLine {
        StderrLine { buf: Vec::with_capacity(256), sink: Stderr::global() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::fmt::MakeWriter as _;

    #[test]
    fn lines_are_queued_within_the_budget_and_written() {
        let q = Stderr::global();
        let before = q.dropped();
        for i in 0..100 {
            let mut w = QueuedStderr.make_writer();
            let _ = writeln!(w, "logging test line {i}");
        }
        assert!(q.flush(Duration::from_secs(5)), "the lines are written");
        let mut w = QueuedStderr.make_writer();
        let _ = w.write_all(&vec![b'x'; STDERR_BUDGET + 1]);
        drop(w);
        assert_eq!(q.dropped(), before + 1, "a line over the budget is dropped and counted");
    }
}
