//! The log of a deployed server: TarsCpp's rolling log file, and the lines for the remote
//! log service (`LogF`).
//!
//! TarsCpp servers write `<logpath>/<app>/<server>/<app>.<server>.log` and roll it by size
//! into `<app>.<server>1.log` … `<app>.<server>{lognum-1}.log` (LocalRollLogger); with `log`
//! set they also send every line to the log service (RemoteTimeLogger). Node tooling and
//! operators look for exactly these names, so [`AppLog`] keeps them.
//!
//! Any thread logs, IO shards included, so logging never blocks on IO: the calling thread
//! formats the line and pushes it onto a queue bounded in bytes (lines beyond it are dropped
//! and counted), and one thread, `tars-log`, writes the queue to the file. The remote copy
//! goes to [`RemoteLines`], another bounded buffer the remote-log duty drains.
//!
//! Lines look like
//! `2024-05-01 12:00:00.123|4242|INFO|tars_core_net::server: message key=value ...`, with
//! the TARS level names (`TARS` for trace) and the time in UTC (the standard library has no
//! time zones). String fields are written bare, other fields with `Debug`; a message with
//! newlines stays multi-line, as in TarsCpp.

use std::collections::VecDeque;
use std::fmt::{self, Write as _};
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tars_proto::config::Config;
use tracing::field::{Field, Visit};
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};

use crate::app::logging::level_filter;
use crate::server::adapter::{ServerConfig, SERVER_PATH};

/// `logsize` when unset or unreadable: TarsCpp's 50 MiB.
pub const DEFAULT_MAX_SIZE: u64 = 50 * 1024 * 1024;
/// `lognum` when unset or unreadable.
pub const DEFAULT_MAX_FILES: usize = 10;
/// Bytes of lines waiting for the `tars-log` thread beyond which new lines are dropped.
pub const PENDING_BUDGET: usize = 8 * 1024 * 1024;
/// Bytes of lines waiting for the remote log beyond which new lines are dropped.
pub const REMOTE_BUDGET: usize = 5 * 1024 * 1024;
/// Lines per [`RemoteLines::take_batch`]: TarsCpp's RemoteTimeLogger sends at most 200 lines
/// per `loggerbyInfo`.
pub const REMOTE_BATCH_LINES: usize = 200;
/// Bytes per [`RemoteLines::take_batch`].
pub const REMOTE_BATCH_BYTES: usize = 5 * 1024 * 1024;
/// Lines whose target starts with this never go to the remote log: the remote-log duty
/// reports its own failures there, and sending those would feed the failing call.
pub const REMOTE_EXCLUDED_TARGET: &str = "tars_core_net::app::duties";

/// How long [`AppLog::flush`] waits for the `tars-log` thread.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// Where and how an [`AppLog`] writes, from `<tars><application><server>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    /// `<logpath>/<app>/<server>`.
    pub dir: PathBuf,
    /// `<app>.<server>`: the file is `<file_stem>.log`.
    pub file_stem: String,
    /// `logsize`: a file is rolled before it would grow past this.
    pub max_size: u64,
    /// `lognum`: files kept, the current one included.
    pub max_files: usize,
    /// `logLevel` at start.
    pub level: LevelFilter,
    /// `log` is set: lines also go to [`RemoteLines`].
    pub remote: bool,
}

impl LogSettings {
    /// The settings of `server`, with `logsize` and `lognum` read from `config`'s
    /// `/tars/application/server` (a missing, malformed or zero value takes the default, as
    /// TarsCpp does, rather than refusing to start over a log setting).
    pub fn from_config(config: &Config, server: &ServerConfig) -> LogSettings {
        let key = |k: &str| config.get(&format!("{SERVER_PATH}<{k}>"));
        let log_path = server.log_path.as_deref().unwrap_or(".");
        LogSettings {
            dir: Path::new(log_path).join(&server.app).join(&server.server),
            file_stem: format!("{}.{}", server.app, server.server),
            max_size: key("logsize").and_then(parse_size).unwrap_or(DEFAULT_MAX_SIZE),
            max_files: key("lognum")
                .and_then(|v| v.trim().parse::<usize>().ok())
                .filter(|&n| n > 0)
                .unwrap_or(DEFAULT_MAX_FILES),
            level: server.log_level.as_deref().and_then(level_filter).unwrap_or(LevelFilter::DEBUG),
            remote: server.log.is_some(),
        }
    }

    /// The current log file.
    pub fn path(&self) -> PathBuf {
        self.dir.join(format!("{}.log", self.file_stem))
    }

    /// The `n`th rolled file (`n` ≥ 1): TarsCpp's `App.Server1.log`.
    fn rolled(&self, n: usize) -> PathBuf {
        self.dir.join(format!("{}{n}.log", self.file_stem))
    }
}

/// A `logsize` value: bytes, or a number with a `K`, `M` or `G` suffix (powers of 1024,
/// either case). `None` for anything else and for zero.
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let (digits, unit) = match text.char_indices().last()? {
        (i, 'k' | 'K') => (&text[..i], 1u64 << 10),
        (i, 'm' | 'M') => (&text[..i], 1 << 20),
        (i, 'g' | 'G') => (&text[..i], 1 << 30),
        _ => (text, 1),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u64>().ok()?.checked_mul(unit).filter(|&n| n > 0)
}

/// The level an [`AppLog`] filters by; changing it takes effect at once for every thread.
#[derive(Clone)]
pub struct LevelHandle {
    level: Arc<AtomicU8>,
}

impl fmt::Debug for LevelHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("LevelHandle").field(&self.get()).finish()
    }
}

impl LevelHandle {
    fn new(level: LevelFilter) -> LevelHandle {
        LevelHandle { level: Arc::new(AtomicU8::new(level_to_u8(level))) }
    }

    /// `tars.setloglevel`: sets the level by TARS name (`NONE`, `ERROR`, `WARN`, `INFO`,
    /// `DEBUG`, `TARS`, any case).
    pub fn set_level(&self, tars_level: &str) -> Result<(), String> {
        let level = level_filter(tars_level).ok_or_else(|| format!("unknown log level {tars_level}"))?;
        self.set(level);
        Ok(())
    }

    /// Sets the level.
    pub fn set(&self, level: LevelFilter) {
        self.level.store(level_to_u8(level), Ordering::Relaxed);
        // The global maximum level `tracing` checks before asking any subscriber was computed
        // from the old level; without this, raising the level would not show the new lines.
        tracing::callsite::rebuild_interest_cache();
    }

    /// The current level.
    pub fn get(&self) -> LevelFilter {
        level_from_u8(self.level.load(Ordering::Relaxed))
    }
}

fn level_to_u8(level: LevelFilter) -> u8 {
    match level {
        LevelFilter::OFF => 0,
        LevelFilter::ERROR => 1,
        LevelFilter::WARN => 2,
        LevelFilter::INFO => 3,
        LevelFilter::DEBUG => 4,
        _ => 5,
    }
}

fn level_from_u8(n: u8) -> LevelFilter {
    match n {
        0 => LevelFilter::OFF,
        1 => LevelFilter::ERROR,
        2 => LevelFilter::WARN,
        3 => LevelFilter::INFO,
        4 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    }
}

/// The lines waiting for the remote log, oldest first; clones share the buffer.
///
/// Each line is the file's line, trailing newline included: TarsCpp sends its formatted
/// lines as they are, and the log service writes them verbatim. Lines from
/// [`REMOTE_EXCLUDED_TARGET`] are left out.
#[derive(Clone)]
pub struct RemoteLines {
    inner: Arc<Mutex<RemoteState>>,
}

#[derive(Default)]
struct RemoteState {
    lines: VecDeque<String>,
    bytes: usize,
    dropped: u64,
}

impl fmt::Debug for RemoteLines {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = lock(&self.inner);
        f.debug_struct("RemoteLines").field("lines", &s.lines.len()).field("dropped", &s.dropped).finish()
    }
}

impl RemoteLines {
    fn new() -> RemoteLines {
        RemoteLines { inner: Arc::new(Mutex::new(RemoteState::default())) }
    }

    fn push(&self, line: String) {
        let mut s = lock(&self.inner);
        if s.bytes + line.len() > REMOTE_BUDGET {
            s.dropped += 1;
            return;
        }
        s.bytes += line.len();
        s.lines.push_back(line);
    }

    /// Takes the oldest lines: at most [`REMOTE_BATCH_LINES`] and [`REMOTE_BATCH_BYTES`], in
    /// order; empty when nothing waits.
    pub fn take_batch(&self) -> Vec<String> {
        let mut s = lock(&self.inner);
        let mut batch = Vec::new();
        let mut bytes = 0;
        while batch.len() < REMOTE_BATCH_LINES {
            match s.lines.front() {
                Some(line) if batch.is_empty() || bytes + line.len() <= REMOTE_BATCH_BYTES => {
                    bytes += line.len();
                }
                _ => break,
            }
            if let Some(line) = s.lines.pop_front() {
                batch.push(line);
            }
        }
        s.bytes -= bytes;
        batch
    }

    /// Lines waiting.
    pub fn len(&self) -> usize {
        lock(&self.inner).lines.len()
    }

    /// Whether no line waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Lines dropped because the buffer was full (the remote log is slow or down).
    pub fn dropped(&self) -> u64 {
        lock(&self.inner).dropped
    }
}

/// A logging thread must never panic over a lock another thread poisoned: the queue is
/// still consistent (every critical section is a push or a swap).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The queue between the logging threads and `tars-log`.
struct Queue {
    state: Mutex<QueueState>,
    /// `tars-log` waits here for lines.
    ready: Condvar,
    /// [`AppLog::flush`] waits here for `written`.
    done: Condvar,
}

#[derive(Default)]
struct QueueState {
    lines: VecDeque<String>,
    bytes: usize,
    /// Lines accepted so far.
    pushed: u64,
    /// Lines `tars-log` has handled (written, or lost to an IO error) so far.
    written: u64,
    dropped: u64,
    io_errors: u64,
    /// `tars-log` sleeps on `ready`: only then does a push pay for a wake-up.
    writer_waiting: bool,
    stopping: bool,
    stopped: bool,
}

impl Queue {
    fn push(&self, line: String) {
        let mut s = lock(&self.state);
        if s.stopping || s.bytes + line.len() > PENDING_BUDGET {
            s.dropped += 1;
            return;
        }
        s.bytes += line.len();
        s.pushed += 1;
        s.lines.push_back(line);
        if s.writer_waiting {
            s.writer_waiting = false;
            self.ready.notify_one();
        }
    }
}

/// What the [`Layer`] shares with [`AppLog`].
struct Shared {
    queue: Queue,
    remote: Option<RemoteLines>,
    level: LevelHandle,
    pid: u32,
}

/// Formats events into lines for the queue (and the remote buffer).
#[derive(Clone)]
struct LogLayer {
    shared: Arc<Shared>,
}

impl<S: Subscriber> Layer<S> for LogLayer {
    fn register_callsite(&self, _metadata: &'static Metadata<'static>) -> Interest {
        // The level changes at run time, so no callsite may be cached as always or never.
        Interest::sometimes()
    }

    fn enabled(&self, metadata: &Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        *metadata.level() <= self.shared.level.get()
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(self.shared.level.get())
    }

    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        let line = format_line(SystemTime::now(), self.shared.pid, meta, event);
        if let Some(remote) = &self.shared.remote {
            if !meta.target().starts_with(REMOTE_EXCLUDED_TARGET) {
                remote.push(line.clone());
            }
        }
        self.shared.queue.push(line);
    }
}

/// The TARS name of a level.
fn level_name(level: &tracing::Level) -> &'static str {
    match *level {
        tracing::Level::ERROR => "ERROR",
        tracing::Level::WARN => "WARN",
        tracing::Level::INFO => "INFO",
        tracing::Level::DEBUG => "DEBUG",
        tracing::Level::TRACE => "TARS",
    }
}

fn format_line(now: SystemTime, pid: u32, meta: &Metadata<'_>, event: &Event<'_>) -> String {
    let mut line = String::with_capacity(128);
    write_time(&mut line, now);
    let _ = write!(line, "|{pid}|{}|{}:", level_name(meta.level()), meta.target());
    let mut fields = Fields { line: &mut line };
    event.record(&mut fields);
    line.push('\n');
    line
}

/// Appends the message and the other fields, each after a space, the message first (it is
/// always the first field `tracing`'s macros record).
struct Fields<'a> {
    line: &'a mut String,
}

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            let _ = write!(self.line, " {value}");
        } else {
            let _ = write!(self.line, " {}={value}", field.name());
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let _ = write!(self.line, " {}={value}", field.name());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.line, " {value:?}");
        } else {
            let _ = write!(self.line, " {}={value:?}", field.name());
        }
    }
}

/// `YYYY-MM-DD HH:MM:SS.mmm` in UTC.
fn write_time(out: &mut String, now: SystemTime) {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    let _ = write!(
        out,
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{:03}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_millis()
    );
}

/// The proleptic Gregorian `(year, month, day)` of `days` since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`: eras of 400 years starting on March 1st, so the leap day
/// is the last day of the shifted year).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// The log of a server: see the [module docs](self).
///
/// Not `Clone`: it owns the `tars-log` thread, and dropping it flushes what is queued and
/// stops that thread (lines logged afterwards are counted as dropped). The handles it gives
/// out ([`AppLog::dispatch`], [`AppLog::level`], [`AppLog::remote`]) are cheap clones and
/// may outlive it.
pub struct AppLog {
    shared: Arc<Shared>,
    settings: LogSettings,
    thread: Option<JoinHandle<()>>,
}

impl fmt::Debug for AppLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppLog")
            .field("path", &self.path())
            .field("level", &self.shared.level.get())
            .field("remote", &self.shared.remote.is_some())
            .finish()
    }
}

impl AppLog {
    /// Creates the log directory and starts the `tars-log` thread.
    pub fn start(settings: LogSettings) -> std::io::Result<AppLog> {
        std::fs::create_dir_all(&settings.dir)?;
        let shared = Arc::new(Shared {
            queue: Queue { state: Mutex::new(QueueState::default()), ready: Condvar::new(), done: Condvar::new() },
            remote: settings.remote.then(RemoteLines::new),
            level: LevelHandle::new(settings.level),
            pid: std::process::id(),
        });
        let writer = Writer::new(settings.clone());
        let thread = {
            let shared = shared.clone();
            std::thread::Builder::new().name("tars-log".into()).spawn(move || writer.run(&shared.queue))?
        };
        Ok(AppLog { shared, settings, thread: Some(thread) })
    }

    /// A subscriber that logs here, for `set_global_default`, `with_default` or the server
    /// builder's shards; call it as often as needed, every one feeds the same file.
    pub fn dispatch(&self) -> tracing::Dispatch {
        let layer = LogLayer { shared: self.shared.clone() };
        tracing::Dispatch::new(tracing_subscriber::registry().with(layer))
    }

    /// The level, for `tars.setloglevel`.
    pub fn level(&self) -> LevelHandle {
        self.shared.level.clone()
    }

    /// The lines for the remote log, when `log` is set.
    pub fn remote(&self) -> Option<RemoteLines> {
        self.shared.remote.clone()
    }

    /// Lines dropped because the `tars-log` thread fell too far behind.
    pub fn dropped(&self) -> u64 {
        lock(&self.shared.queue.state).dropped
    }

    /// Lines dropped because the remote log fell too far behind (0 without `log`).
    pub fn remote_dropped(&self) -> u64 {
        self.shared.remote.as_ref().map_or(0, RemoteLines::dropped)
    }

    /// Failed opens, writes and renames of the log files; the lines involved are lost, the
    /// server goes on.
    pub fn io_errors(&self) -> u64 {
        lock(&self.shared.queue.state).io_errors
    }

    /// Waits until every line queued before the call is in the file (or lost to an IO
    /// error), for at most a few seconds; `false` if that took too long.
    pub fn flush(&self) -> bool {
        let queue = &self.shared.queue;
        let deadline = Instant::now() + FLUSH_TIMEOUT;
        let mut s = lock(&queue.state);
        let target = s.pushed;
        while s.written < target && !s.stopped {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else { return false };
            if s.writer_waiting {
                s.writer_waiting = false;
                queue.ready.notify_one();
            }
            s = queue.done.wait_timeout(s, left).unwrap_or_else(PoisonError::into_inner).0;
        }
        s.written >= target
    }

    /// The current log file, `<dir>/<file_stem>.log`.
    pub fn path(&self) -> PathBuf {
        self.settings.path()
    }

    /// The settings it was started with.
    pub fn settings(&self) -> &LogSettings {
        &self.settings
    }
}

impl Drop for AppLog {
    fn drop(&mut self) {
        let queue = &self.shared.queue;
        {
            let mut s = lock(&queue.state);
            s.stopping = true;
            queue.ready.notify_one();
        }
        // The thread drains the queue before it returns.
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The `tars-log` thread's side: the open file and its size.
struct Writer {
    settings: LogSettings,
    file: Option<BufWriter<File>>,
    size: u64,
}

impl Writer {
    fn new(settings: LogSettings) -> Writer {
        Writer { settings, file: None, size: 0 }
    }

    fn run(mut self, queue: &Queue) {
        let mut batch = VecDeque::new();
        loop {
            let stopping = {
                let mut s = lock(&queue.state);
                while s.lines.is_empty() && !s.stopping {
                    s.writer_waiting = true;
                    s = queue.ready.wait(s).unwrap_or_else(PoisonError::into_inner);
                }
                std::mem::swap(&mut s.lines, &mut batch);
                s.bytes = 0;
                s.stopping
            };
            let count = batch.len() as u64;
            let errors = self.write_batch(batch.drain(..));
            let mut s = lock(&queue.state);
            s.written += count;
            s.io_errors += errors;
            if stopping && s.lines.is_empty() {
                s.stopped = true;
                queue.done.notify_all();
                return;
            }
            queue.done.notify_all();
        }
    }

    /// Writes `lines`, rolling as needed, and flushes; returns the IO errors met.
    fn write_batch(&mut self, lines: impl Iterator<Item = String>) -> u64 {
        let mut errors = 0;
        for line in lines {
            let len = line.len() as u64;
            if self.size > 0 && self.size + len > self.settings.max_size {
                errors += self.roll();
            }
            if self.file.is_none() {
                match self.open() {
                    Ok(()) => {}
                    Err(_) => {
                        errors += 1;
                        continue;
                    }
                }
            }
            if let Some(file) = &mut self.file {
                match file.write_all(line.as_bytes()) {
                    Ok(()) => self.size += len,
                    Err(_) => {
                        errors += 1;
                        // Reopen next time: the file may have been removed or the disk freed.
                        self.file = None;
                    }
                }
            }
        }
        if let Some(file) = &mut self.file {
            if file.flush().is_err() {
                errors += 1;
                self.file = None;
            }
        }
        errors
    }

    fn open(&mut self) -> std::io::Result<()> {
        // The directory may have been removed under a running server (log cleaners do).
        std::fs::create_dir_all(&self.settings.dir)?;
        let file = OpenOptions::new().create(true).append(true).open(self.settings.path())?;
        // Appending, as TarsCpp does across restarts: the size counts what is already there.
        self.size = file.metadata()?.len();
        self.file = Some(BufWriter::with_capacity(64 * 1024, file));
        Ok(())
    }

    /// `stem.log` → `stem1.log` → … → `stem{max_files-1}.log`, the oldest deleted; the next
    /// write opens a fresh `stem.log`. Returns the IO errors met.
    fn roll(&mut self) -> u64 {
        let mut errors = 0;
        if let Some(mut file) = self.file.take() {
            if file.flush().is_err() {
                errors += 1;
            }
        }
        self.size = 0;
        let keep = self.settings.max_files.max(1);
        let current = self.settings.path();
        if keep == 1 {
            return errors + u64::from(remove(&current).is_err());
        }
        errors += u64::from(remove(&self.settings.rolled(keep - 1)).is_err());
        for n in (1..keep - 1).rev() {
            errors += u64::from(rename(&self.settings.rolled(n), &self.settings.rolled(n + 1)).is_err());
        }
        errors + u64::from(rename(&current, &self.settings.rolled(1)).is_err())
    }
}

/// Removes `path`; a missing file is not an error.
fn remove(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Renames `from`; a missing file is not an error (fewer files than `lognum` so far).
fn rename(from: &Path, to: &Path) -> std::io::Result<()> {
    match std::fs::rename(from, to) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
            let dir = std::env::temp_dir().join(format!(
                "tars-log-{name}-{}-{nanos}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn settings(dir: &TempDir) -> LogSettings {
        LogSettings {
            dir: dir.0.join("Test").join("HelloServer"),
            file_stem: "Test.HelloServer".into(),
            max_size: DEFAULT_MAX_SIZE,
            max_files: DEFAULT_MAX_FILES,
            level: LevelFilter::DEBUG,
            remote: false,
        }
    }

    fn read(path: &Path) -> String {
        std::fs::read_to_string(path).unwrap_or_default()
    }

    /// Splits a line into `(time, pid, level, rest)` and checks the time's shape.
    fn parse(line: &str) -> (String, u32, String, String) {
        let mut parts = line.splitn(4, '|');
        let time = parts.next().unwrap().to_owned();
        let pid = parts.next().unwrap().parse().unwrap();
        let level = parts.next().unwrap().to_owned();
        let rest = parts.next().unwrap().to_owned();
        let b = time.as_bytes();
        assert_eq!(b.len(), 23, "{time}");
        for (i, c) in b.iter().enumerate() {
            match i {
                4 | 7 => assert_eq!(*c, b'-', "{time}"),
                10 => assert_eq!(*c, b' ', "{time}"),
                13 | 16 => assert_eq!(*c, b':', "{time}"),
                19 => assert_eq!(*c, b'.', "{time}"),
                _ => assert!(c.is_ascii_digit(), "{time}"),
            }
        }
        (time, pid, level, rest)
    }

    #[test]
    fn lines_in_format_and_order() {
        let dir = TempDir::new("format");
        let log = AppLog::start(settings(&dir)).unwrap();
        assert_eq!(log.path(), dir.0.join("Test/HelloServer/Test.HelloServer.log"));
        tracing::dispatcher::with_default(&log.dispatch(), || {
            tracing::info!(target: "app::x", "first");
            tracing::warn!(target: "app::y", shard = 3, peer = "10.0.0.1", "second {}", 2);
            tracing::error!(target: "app::z", ok = true);
            tracing::debug!(target: "app::x", value = ?Some(1), "third");
        });
        assert!(log.flush());
        let text = read(&log.path());
        assert!(text.ends_with('\n'));
        let lines: Vec<_> = text.lines().map(parse).collect();
        let pid = std::process::id();
        let got: Vec<_> = lines.iter().map(|(_, p, l, r)| (*p, l.as_str(), r.as_str())).collect();
        assert_eq!(
            got,
            [
                (pid, "INFO", "app::x: first"),
                (pid, "WARN", "app::y: second 2 shard=3 peer=10.0.0.1"),
                (pid, "ERROR", "app::z: ok=true"),
                (pid, "DEBUG", "app::x: third value=Some(1)"),
            ]
        );
        assert!(lines.windows(2).all(|w| w[0].0 <= w[1].0));
        assert_eq!(log.dropped(), 0);
        assert_eq!(log.io_errors(), 0);
        assert!(log.remote().is_none());
    }

    #[test]
    fn level_changes_at_run_time() {
        let dir = TempDir::new("level");
        let log = AppLog::start(settings(&dir)).unwrap();
        let level = log.level();
        assert_eq!(level.get(), LevelFilter::DEBUG);
        tracing::dispatcher::with_default(&log.dispatch(), || {
            tracing::debug!(target: "lv", "debug 1");
            tracing::trace!(target: "lv", "trace 1");
            level.set_level("info").unwrap();
            assert_eq!(level.get(), LevelFilter::INFO);
            tracing::debug!(target: "lv", "debug 2");
            tracing::info!(target: "lv", "info 2");
            assert_eq!(level.set_level("LOUD"), Err("unknown log level LOUD".to_owned()));
            assert_eq!(level.get(), LevelFilter::INFO);
            level.set_level("TARS").unwrap();
            tracing::trace!(target: "lv", "trace 3");
            level.set_level("NONE").unwrap();
            tracing::error!(target: "lv", "error 4");
        });
        assert!(log.flush());
        let got: Vec<_> = read(&log.path()).lines().map(|l| parse(l).3).collect();
        assert_eq!(got, ["lv: debug 1", "lv: info 2", "lv: trace 3"]);
    }

    #[test]
    fn rolls_by_size() {
        let dir = TempDir::new("roll");
        let s = LogSettings { max_size: 200, max_files: 3, ..settings(&dir) };
        let log = AppLog::start(s.clone()).unwrap();
        tracing::dispatcher::with_default(&log.dispatch(), || {
            for i in 0..40 {
                tracing::info!(target: "roll", "line {i:03}");
            }
        });
        assert!(log.flush());
        let files = [s.rolled(2), s.rolled(1), s.path()];
        for f in &files {
            assert!(f.is_file(), "{}", f.display());
            let len = std::fs::metadata(f).unwrap().len();
            assert!(len > 0 && len <= 200, "{} is {len} bytes", f.display());
        }
        assert!(!s.rolled(3).exists());
        let kept: Vec<String> =
            files.iter().flat_map(|f| read(f).lines().map(|l| parse(l).3).collect::<Vec<_>>()).collect();
        let all: Vec<String> = (0..40).map(|i| format!("roll: line {i:03}")).collect();
        assert!(kept.len() >= 3 && kept.len() < all.len(), "{kept:?}");
        assert_eq!(kept[..], all[all.len() - kept.len()..]);
        assert_eq!(log.io_errors(), 0);
    }

    #[test]
    fn remote_batches() {
        let dir = TempDir::new("remote");
        let log = AppLog::start(LogSettings { remote: true, ..settings(&dir) }).unwrap();
        let remote = log.remote().unwrap();
        tracing::dispatcher::with_default(&log.dispatch(), || {
            for i in 0..450 {
                tracing::info!(target: "biz", "line {i}");
                if i % 100 == 0 {
                    tracing::warn!(target: "tars_core_net::app::duties", "remote log lines lost");
                }
            }
        });
        let mut got = Vec::new();
        loop {
            let batch = remote.take_batch();
            if batch.is_empty() {
                break;
            }
            assert!(batch.len() <= REMOTE_BATCH_LINES);
            got.push(batch);
        }
        assert_eq!(got.iter().map(Vec::len).collect::<Vec<_>>(), [200, 200, 50]);
        let lines: Vec<String> = got.into_iter().flatten().collect();
        for (i, line) in lines.iter().enumerate() {
            assert!(line.ends_with('\n'));
            assert_eq!(parse(line.trim_end()).3, format!("biz: line {i}"));
        }
        assert!(remote.is_empty());
        assert_eq!(log.remote_dropped(), 0);
        // The file has everything, the duty's own lines included.
        assert!(log.flush());
        assert_eq!(read(&log.path()).lines().count(), 455);
    }

    #[test]
    fn settings_from_config() {
        let text = "<tars>\n<application>\n<server>\napp=Test\nserver=HelloServer\nlogpath=/var/log/tars\n\
                    logLevel=INFO\nlog=tars.tarslog.LogObj\nlogsize=15M\nlognum=4\n</server>\n</application>\n</tars>\n";
        let config = Config::parse(text).unwrap();
        let server = ServerConfig::from_config(&config).unwrap();
        let s = LogSettings::from_config(&config, &server);
        assert_eq!(s.dir, PathBuf::from("/var/log/tars/Test/HelloServer"));
        assert_eq!(s.file_stem, "Test.HelloServer");
        assert_eq!(s.path(), PathBuf::from("/var/log/tars/Test/HelloServer/Test.HelloServer.log"));
        assert_eq!(s.rolled(1), PathBuf::from("/var/log/tars/Test/HelloServer/Test.HelloServer1.log"));
        assert_eq!((s.max_size, s.max_files, s.level, s.remote), (15 << 20, 4, LevelFilter::INFO, true));

        let text = "<tars>\n<application>\n<server>\napp=A\nserver=B\nlogsize=lots\nlognum=0\n\
                    logLevel=LOUD\n</server>\n</application>\n</tars>\n";
        let config = Config::parse(text).unwrap();
        let server = ServerConfig::from_config(&config).unwrap();
        let s = LogSettings::from_config(&config, &server);
        assert_eq!(s.dir, PathBuf::from("./A/B"));
        assert_eq!(
            (s.max_size, s.max_files, s.level, s.remote),
            (DEFAULT_MAX_SIZE, DEFAULT_MAX_FILES, LevelFilter::DEBUG, false)
        );
    }

    #[test]
    fn log_sizes() {
        assert_eq!(parse_size("15M"), Some(15 << 20));
        assert_eq!(parse_size("15m"), Some(15 << 20));
        assert_eq!(parse_size("1g"), Some(1 << 30));
        assert_eq!(parse_size("2K"), Some(2048));
        assert_eq!(parse_size("100000"), Some(100_000));
        assert_eq!(parse_size(" 100000 "), Some(100_000));
        for bad in
            ["", "M", "0", "0M", "garbage", "15MB", "-1", "1.5M", "99999999999999999999G", "18446744073709551615G"]
        {
            assert_eq!(parse_size(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn civil_dates() {
        let date = |secs: i64| civil_from_days(secs.div_euclid(86_400));
        assert_eq!(date(0), (1970, 1, 1));
        assert_eq!(date(951_782_400), (2000, 2, 29));
        assert_eq!(date(951_868_800), (2000, 3, 1));
        assert_eq!(date(1_798_761_600), (2027, 1, 1));
        assert_eq!(date(-86_400), (1969, 12, 31));
        let mut s = String::new();
        write_time(&mut s, UNIX_EPOCH + Duration::from_millis(951_782_400_000 + 3_723_045));
        assert_eq!(s, "2000-02-29 01:02:03.045");
    }

    #[test]
    fn drop_flushes() {
        let dir = TempDir::new("drop");
        let log = AppLog::start(settings(&dir)).unwrap();
        let path = log.path();
        let dispatch = log.dispatch();
        tracing::dispatcher::with_default(&dispatch, || tracing::info!(target: "d", "kept"));
        drop(log);
        tracing::dispatcher::with_default(&dispatch, || tracing::info!(target: "d", "after"));
        assert_eq!(read(&path).lines().map(|l| parse(l).3).collect::<Vec<_>>(), ["d: kept"]);
    }
}
