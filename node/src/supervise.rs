//! Starting a server from its [`Launch`], seeing its exit through a pidfd, and stopping it.
//!
//! Upstream (`NodeServer/Activator.cpp`, `ServerObject.cpp`) forks, runs
//! `<exePath>/tars_start.sh`, waits up to 20 s for `tars_start.sh.pid`, adopts that pid and then
//! learns of a crash by polling `kill(pid, 0)` every few seconds. Here the adopted pid is
//! opened as a pidfd (`pidfd_open(2)`, Linux >= 5.3, works for any pid, not only children),
//! and the pidfd becomes readable the moment the process exits: the node sees a crash within
//! milliseconds, and signals sent through the pidfd cannot hit a process that reused the pid.
//!
//! # Parts and the threads they run on
//!
//! - [`spawn`] writes the script, runs it and waits (bounded, [`SpawnOptions::pid_wait`]) for
//!   the pid file. It **blocks**: run it on a worker thread, never on an IO shard.
//! - [`Watcher`] owns one background thread, `tars-node-watch`, blocked in `epoll_wait` on a
//!   set of pidfds plus an eventfd used to wake it for shutdown. [`Watcher::watch`] and
//!   [`Watcher::unwatch`] may be called from any thread: they change the epoll interest list
//!   directly (`epoll_ctl` is thread-safe, and an fd added while another thread sits in
//!   `epoll_wait` is reported by that wait), so they need no wake-up. Each exit is sent once as
//!   an [`Exited`] on a crossbeam channel.
//! - [`stop`] sends SIGTERM, waits for the exit, then SIGKILL. It **blocks** for up to the
//!   grace period plus [`KILL_WAIT`]: worker thread only.
//! - [`is_alive`], [`rss_kb`], [`proc_state`] read `/proc` or use `kill(pid, 0)`; cheap, but
//!   file IO all the same.
//!
//! # Zombies
//!
//! The script is our child and exits right after writing the pid file (the launch line runs in
//! the background, see [`crate::launch`]); [`spawn`] reaps it. The server it started is then
//! reparented to init (or the nearest subreaper), which reaps it. When an adopted or watched
//! process *is* our child (container mode, where the script is the server, or anything the
//! caller spawned itself), the watcher and [`stop`] reap it with `waitid(P_PIDFD, WNOHANG)`
//! once it has exited.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use rustix::event::{epoll, eventfd, poll, EventfdFlags, PollFd, PollFlags, Timespec};
use rustix::io::Errno;
use rustix::process::{pidfd_open, pidfd_send_signal, waitid, Pid, PidfdFlags, Signal, WaitId, WaitIdOptions};

use crate::launch::Launch;

/// Upstream's wait for `tars_start.sh.pid` (`Activator.cpp`).
pub const DEFAULT_PID_WAIT: Duration = Duration::from_secs(20);

/// How long [`stop`] waits after SIGKILL (`CommandStop.cpp` waits 2 s more after `kill -9`).
pub const KILL_WAIT: Duration = Duration::from_secs(2);

/// How often [`spawn`] looks at the pid file: every millisecond at first (the script writes it
/// within a few; this is most of a restart's latency), backing off to every 10 ms.
const PID_POLL_FIRST: Duration = Duration::from_millis(1);
const PID_POLL: Duration = Duration::from_millis(10);

/// How long [`spawn`] retries an exec that fails with ETXTBSY.
const TXTBSY_RETRY: Duration = Duration::from_secs(1);

/// The epoll token of the wake-up eventfd; watch ids start at 1.
const WAKE_TOKEN: u64 = 0;

/// What failed.
#[derive(Debug, thiserror::Error)]
pub enum SuperviseError {
    /// The launch has no command.
    #[error("launch has an empty argv")]
    EmptyArgv,
    /// Writing the start script.
    #[error("writing script {path}: {source}")]
    WriteScript {
        /// The script path.
        path: String,
        /// The IO error.
        source: io::Error,
    },
    /// Removing a stale pid file.
    #[error("removing stale pid file {path}: {source}")]
    RemovePidFile {
        /// The pid file.
        path: String,
        /// The IO error.
        source: io::Error,
    },
    /// Opening the stdout log.
    #[error("opening stdout log {path}: {source}")]
    StdoutLog {
        /// The log path.
        path: String,
        /// The IO error.
        source: io::Error,
    },
    /// Spawning the script.
    #[error("spawning {path}: {source}")]
    Spawn {
        /// The executable.
        path: String,
        /// The IO error.
        source: io::Error,
    },
    /// Waiting for the script.
    #[error("waiting for script pid {pid}: {source}")]
    WaitScript {
        /// The script's pid.
        pid: u32,
        /// The IO error.
        source: io::Error,
    },
    /// The script did not leave a live pid in its pid file.
    #[error("no live pid in {pid_file} after {waited:?}")]
    NoPid {
        /// The pid file.
        pid_file: String,
        /// How long [`spawn`] waited.
        waited: Duration,
    },
    /// A pid that is not a valid process id (0 or above `i32::MAX`).
    #[error("invalid pid {0}")]
    BadPid(u32),
    /// `pidfd_open` failed for a reason other than the process being gone.
    #[error("pidfd_open({pid}): {source}")]
    Pidfd {
        /// The pid.
        pid: u32,
        /// The errno.
        source: Errno,
    },
    /// `pidfd_send_signal` failed.
    #[error("signalling pid {pid}: {source}")]
    Signal {
        /// The pid.
        pid: u32,
        /// The errno.
        source: Errno,
    },
    /// `poll` on a pidfd failed.
    #[error("waiting on pid {pid}: {source}")]
    Poll {
        /// The pid.
        pid: u32,
        /// The errno.
        source: Errno,
    },
    /// The process survived SIGKILL for [`KILL_WAIT`] (uninterruptible sleep, usually).
    #[error("pid {pid} still alive {waited:?} after SIGKILL")]
    Unkillable {
        /// The pid.
        pid: u32,
        /// How long [`stop`] waited after SIGKILL.
        waited: Duration,
    },
    /// Creating or changing the watcher's epoll set, eventfd or thread.
    #[error("watcher {what}: {source}")]
    Watcher {
        /// Which operation.
        what: &'static str,
        /// The IO error.
        source: io::Error,
    },
}

/// How [`spawn`] behaves.
#[derive(Debug, Clone)]
pub struct SpawnOptions {
    /// How long to wait for the pid file ([`DEFAULT_PID_WAIT`], upstream's 20 s).
    pub pid_wait: Duration,
}

impl Default for SpawnOptions {
    fn default() -> Self {
        Self { pid_wait: DEFAULT_PID_WAIT }
    }
}

/// A started server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Started {
    /// The adopted pid: the server's.
    pub pid: u32,
    /// The pid of the script (also the process group id of everything it started).
    pub script_pid: u32,
    /// `pid` came from the pid file (else it is the script, still running at the deadline, as
    /// in container mode where the script runs the server in the foreground; then `pid` is
    /// our child and whoever watches or stops it reaps it).
    pub from_pid_file: bool,
}

/// Writes the script, runs it and adopts the server's pid. Blocks for up to
/// [`SpawnOptions::pid_wait`]: call it on a worker thread, never on an IO shard.
///
/// The script gets its own process group (`process_group(0)`), stdin from `/dev/null`, and
/// stdout and stderr appended to [`Launch::stdout_log`] (parent directories created) or
/// `/dev/null`. The pid file is removed first so that a stale pid is never adopted.
///
/// Adoption: as soon as the pid file holds a whole line with a pid that is alive, that pid.
/// If the script exits without leaving one, or the pid in it is dead, [`SuperviseError::NoPid`]
/// at once, after SIGKILL to the script's process group (so nothing the script started stays
/// running). If the deadline passes with the script still running and no pid file, the script
/// itself is adopted (container mode: the script is the server).
pub fn spawn(launch: &Launch, opts: &SpawnOptions) -> Result<Started, SuperviseError> {
    let (exe, args) = launch.argv.split_first().ok_or(SuperviseError::EmptyArgv)?;
    write_script(&launch.script_path, &launch.script)
        .map_err(|source| SuperviseError::WriteScript { path: launch.script_path.clone(), source })?;
    match fs::remove_file(&launch.pid_file) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(source) => return Err(SuperviseError::RemovePidFile { path: launch.pid_file.clone(), source }),
    }
    let (out, err) = match &launch.stdout_log {
        Some(path) => {
            let file = open_log(path).map_err(|source| SuperviseError::StdoutLog { path: path.clone(), source })?;
            let dup = file.try_clone().map_err(|source| SuperviseError::StdoutLog { path: path.clone(), source })?;
            (Stdio::from(file), Stdio::from(dup))
        }
        None => (Stdio::null(), Stdio::null()),
    };
    let mut cmd = Command::new(exe);
    cmd.args(args)
        .current_dir(&launch.cwd)
        .envs(launch.env.iter().map(|(k, v)| (k, v)))
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    let mut child = spawn_retrying(&mut cmd).map_err(|source| SuperviseError::Spawn { path: exe.clone(), source })?;
    let script_pid = child.id();
    let started = Instant::now();
    let deadline = started + opts.pid_wait;
    let mut poll = PID_POLL_FIRST;
    loop {
        let exited =
            child.try_wait().map_err(|source| SuperviseError::WaitScript { pid: script_pid, source })?.is_some();
        // Read after `try_wait`: a script that has exited has written all it will write.
        if let Some(pid) = read_pid_file(&launch.pid_file, exited) {
            if pid != script_pid && is_alive(pid) {
                if !exited {
                    // The script exits right after `echo $pid > file`; reap it.
                    reap_script(&mut child, Instant::now() + Duration::from_secs(1));
                }
                return Ok(Started { pid, script_pid, from_pid_file: true });
            }
            if exited {
                return Err(no_pid(launch, script_pid, started));
            }
        } else if exited {
            return Err(no_pid(launch, script_pid, started));
        }
        let now = Instant::now();
        if now >= deadline {
            // Still running, no pid file: the script is the server.
            return Ok(Started { pid: script_pid, script_pid, from_pid_file: false });
        }
        std::thread::sleep(poll.min(deadline - now));
        poll = (poll * 2).min(PID_POLL);
    }
}

/// `Command::spawn`, retried on ETXTBSY for up to [`TXTBSY_RETRY`]: a process another thread
/// forks while [`write_script`] holds the script open for writing keeps that fd until it
/// execs, and the kernel refuses to exec a file open for writing.
fn spawn_retrying(cmd: &mut Command) -> io::Result<Child> {
    let deadline = Instant::now() + TXTBSY_RETRY;
    loop {
        match cmd.spawn() {
            Err(e) if e.raw_os_error() == Some(Errno::TXTBSY.raw_os_error()) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            other => return other,
        }
    }
}

/// Kills what the script left in its process group and builds the error.
fn no_pid(launch: &Launch, script_pid: u32, started: Instant) -> SuperviseError {
    if let Some(pgid) = to_pid(script_pid) {
        // The group outlives its leader while any member lives, so its id cannot have been
        // reused; ESRCH means the group is empty.
        let _ = rustix::process::kill_process_group(pgid, Signal::KILL);
    }
    SuperviseError::NoPid { pid_file: launch.pid_file.clone(), waited: started.elapsed() }
}

/// Waits (bounded) for the script to exit and reaps it; a script still running at the
/// deadline is left to init once we exit (it is in its own group and holds nothing of ours).
fn reap_script(child: &mut Child, deadline: Instant) {
    while Instant::now() < deadline {
        match child.try_wait() {
            Ok(Some(_)) | Err(_) => return,
            Ok(None) => std::thread::sleep(Duration::from_millis(2)),
        }
    }
}

/// Parses the pid file: a decimal pid followed by a newline (`echo` writes both in one
/// `write`, but `>` truncates first, so an empty or newline-less read means "not yet"). Once
/// the script has exited (`complete`), the newline is not required.
fn read_pid_file(path: &str, complete: bool) -> Option<u32> {
    let text = fs::read_to_string(path).ok()?;
    if !complete && !text.ends_with('\n') {
        return None;
    }
    text.trim().parse::<u32>().ok().filter(|&p| p > 0)
}

/// Writes `text` to `path` with mode 0755 through a temporary file and a rename.
fn write_script(path: &str, text: &str) -> io::Result<()> {
    let target = Path::new(path);
    if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir)?;
    }
    let tmp = format!("{path}.tmp.{}", std::process::id());
    let result = (|| {
        let mut f = fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o755).open(&tmp)?;
        f.write_all(text.as_bytes())?;
        // `mode` is filtered by the umask; the script must be executable regardless.
        f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
        f.sync_all()?;
        fs::rename(&tmp, target)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn open_log(path: &str) -> io::Result<fs::File> {
    if let Some(dir) = Path::new(path).parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir)?;
    }
    fs::OpenOptions::new().append(true).create(true).open(path)
}

fn to_pid(pid: u32) -> Option<Pid> {
    i32::try_from(pid).ok().and_then(Pid::from_raw)
}

/// Opens a pidfd; `Ok(None)` when the process is gone (ESRCH).
fn open_pidfd(pid: u32) -> Result<Option<OwnedFd>, SuperviseError> {
    let p = to_pid(pid).ok_or(SuperviseError::BadPid(pid))?;
    match pidfd_open(p, PidfdFlags::empty()) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::SRCH) => Ok(None),
        Err(source) => Err(SuperviseError::Pidfd { pid, source }),
    }
}

/// Reaps the process behind `pidfd` if it is our child and has exited; a no-op (ECHILD)
/// otherwise.
fn reap(pidfd: BorrowedFd<'_>) {
    let _ = waitid(WaitId::PidFd(pidfd), WaitIdOptions::EXITED | WaitIdOptions::NOHANG);
}

/// `true` when `pid` exists and is not a zombie (`kill(pid, 0)` succeeds on zombies, and
/// EPERM means it exists but belongs to someone else).
pub fn is_alive(pid: u32) -> bool {
    let Some(p) = to_pid(pid) else { return false };
    match rustix::process::test_kill_process(p) {
        Ok(()) | Err(Errno::PERM) => !matches!(proc_state(pid), Some('Z' | 'X')),
        Err(_) => false,
    }
}

/// Resident set size in KiB: `/proc/<pid>/statm` field 2 (pages) × page size / 1024
/// (upstream's `ServerObject.cpp` multiplies by 4, assuming 4 KiB pages).
pub fn rss_kb(pid: u32) -> Option<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages: u64 = text.split_ascii_whitespace().nth(1)?.parse().ok()?;
    let page = u64::try_from(rustix::param::page_size()).ok()?;
    Some(pages.saturating_mul(page) / 1024)
}

/// The state letter of `/proc/<pid>/stat` (`R`, `S`, `D`, `Z`, `T`...). Upstream
/// (`ServerObject.cpp`) gives a process in `R` or `D` 60 s more before declaring it dead, as it
/// may be dumping core.
pub fn proc_state(pid: u32) -> Option<char> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) S ...`; comm may hold spaces and parentheses, so take the last `)`.
    let rest = &text[text.rfind(')')? + 1..];
    rest.trim_start().chars().next()
}

/// How [`stop`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopOutcome {
    /// The process was already gone.
    NotRunning,
    /// It exited within the grace period after SIGTERM.
    Exited,
    /// It was still alive after the grace period and died of SIGKILL.
    Killed,
}

/// Stops `pid`: SIGTERM, up to `grace` for it to exit, then SIGKILL and up to [`KILL_WAIT`].
/// Blocks: call it on a worker thread, never on an IO shard.
///
/// `grace` is upstream's `deactivating-timeout`, which `CommandStop.cpp` clamps to 2–60 s;
/// the clamp is the caller's job.
///
/// Only `pid` is signalled, as upstream does, not its process group: the group leader is the
/// start script, not the adopted server, so the server has no group of its own to signal
/// (see [`stop_started`] for a server that is the script itself).
/// Signals go through a pidfd, so a pid reused after the exit is never hit.
pub fn stop(pid: u32, grace: Duration) -> Result<StopOutcome, SuperviseError> {
    match open_pidfd(pid)? {
        None => Ok(StopOutcome::NotRunning),
        Some(fd) => stop_pidfd(fd.as_fd(), pid, grace),
    }
}

/// Stops what [`spawn`] started: the adopted pid alone ([`stop`]) when it came from the pid
/// file, else the whole process group of the script ([`stop_group`]). In container mode the
/// script runs the server in the foreground, so signalling only the script (whose `trap`
/// exits at once) would leave the server running. Blocks like [`stop`].
pub fn stop_started(started: &Started, grace: Duration) -> Result<StopOutcome, SuperviseError> {
    if started.from_pid_file {
        stop(started.pid, grace)
    } else {
        stop_group(started.script_pid, grace)
    }
}

/// Stops the process group `pgid` (its leader is our spawned script): SIGTERM to the group,
/// up to `grace` for every member to exit, then SIGKILL to the group and up to [`KILL_WAIT`].
/// The leader is reaped when it is our child. Blocks: worker thread only.
pub fn stop_group(pgid: u32, grace: Duration) -> Result<StopOutcome, SuperviseError> {
    let group = to_pid(pgid).ok_or(SuperviseError::BadPid(pgid))?;
    let leader = open_pidfd(pgid)?;
    let alive = |leader: &Option<OwnedFd>| {
        if let Some(fd) = leader {
            reap(fd.as_fd());
        }
        rustix::process::test_kill_process_group(group).is_ok() && group_has_live_member(pgid)
    };
    if !alive(&leader) {
        return Ok(StopOutcome::NotRunning);
    }
    let signal = |sig: Signal| match rustix::process::kill_process_group(group, sig) {
        Ok(()) | Err(Errno::SRCH) => Ok(()),
        Err(source) => Err(SuperviseError::Signal { pid: pgid, source }),
    };
    signal(Signal::TERM)?;
    let wait = |limit: Duration| {
        let deadline = Instant::now() + limit;
        loop {
            if !alive(&leader) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    if wait(grace) {
        return Ok(StopOutcome::Exited);
    }
    signal(Signal::KILL)?;
    if wait(KILL_WAIT) {
        Ok(StopOutcome::Killed)
    } else {
        Err(SuperviseError::Unkillable { pid: pgid, waited: KILL_WAIT })
    }
}

/// Whether a process of group `pgid` is alive and not a zombie (`kill(-pgid, 0)` also
/// succeeds for zombies, which an init that does not reap would leave forever). Reads
/// `/proc/<pid>/stat` of every process: only for [`stop_group`].
fn group_has_live_member(pgid: u32) -> bool {
    let Ok(dir) = fs::read_dir("/proc") else { return true };
    dir.filter_map(Result::ok).any(|e| {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else { return false };
        let Ok(text) = fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
        let Some(close) = text.rfind(')') else { return false };
        // After `comm`: state, ppid, pgrp.
        let mut fields = text[close + 1..].split_ascii_whitespace();
        let state = fields.next().unwrap_or("Z");
        let pgrp = fields.nth(1).and_then(|p| p.parse::<u32>().ok());
        pgrp == Some(pgid) && !matches!(state, "Z" | "X")
    })
}

/// [`stop`] on an open pidfd (`pid` is for errors only).
pub fn stop_pidfd(pidfd: BorrowedFd<'_>, pid: u32, grace: Duration) -> Result<StopOutcome, SuperviseError> {
    let outcome = stop_inner(pidfd, pid, grace);
    reap(pidfd);
    outcome
}

fn stop_inner(pidfd: BorrowedFd<'_>, pid: u32, grace: Duration) -> Result<StopOutcome, SuperviseError> {
    if wait_exit(pidfd, pid, Duration::ZERO)? {
        return Ok(StopOutcome::NotRunning);
    }
    match pidfd_send_signal(pidfd, Signal::TERM) {
        Ok(()) => {}
        Err(Errno::SRCH) => return Ok(StopOutcome::Exited),
        Err(source) => return Err(SuperviseError::Signal { pid, source }),
    }
    if wait_exit(pidfd, pid, grace)? {
        return Ok(StopOutcome::Exited);
    }
    match pidfd_send_signal(pidfd, Signal::KILL) {
        Ok(()) => {}
        Err(Errno::SRCH) => return Ok(StopOutcome::Killed),
        Err(source) => return Err(SuperviseError::Signal { pid, source }),
    }
    if wait_exit(pidfd, pid, KILL_WAIT)? {
        Ok(StopOutcome::Killed)
    } else {
        Err(SuperviseError::Unkillable { pid, waited: KILL_WAIT })
    }
}

/// Polls the pidfd for up to `timeout`; `true` once the process has exited.
fn wait_exit(pidfd: BorrowedFd<'_>, pid: u32, timeout: Duration) -> Result<bool, SuperviseError> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ts = Timespec {
            tv_sec: i64::try_from(left.as_secs()).unwrap_or(i64::MAX),
            tv_nsec: i64::from(left.subsec_nanos()),
        };
        let mut fds = [PollFd::new(&pidfd, PollFlags::IN)];
        match poll(&mut fds, Some(&ts)) {
            Ok(0) if left.is_zero() => return Ok(false),
            Ok(0) => continue,
            Ok(_) => return Ok(true),
            Err(Errno::INTR) => continue,
            Err(source) => return Err(SuperviseError::Poll { pid, source }),
        }
    }
}

/// Identifies one [`Watcher::watch`]; never reused within a watcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WatchId(u64);

/// A watched process exited.
#[derive(Debug, Clone)]
pub struct Exited<T> {
    /// The watch that saw it.
    pub id: WatchId,
    /// The caller's tag.
    pub tag: T,
    /// The process.
    pub pid: u32,
    /// When the watcher saw the exit (or when `watch` found the pid already gone).
    pub at: Instant,
}

struct Entry<T> {
    pid: u32,
    fd: OwnedFd,
    tag: T,
}

struct State<T> {
    next_id: u64,
    entries: HashMap<u64, Entry<T>>,
}

struct Shared<T> {
    epoll: OwnedFd,
    wake: OwnedFd,
    stop: AtomicBool,
    state: Mutex<State<T>>,
    tx: Sender<Exited<T>>,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Watches processes through pidfds on one thread (`tars-node-watch`) and reports each exit
/// once. Memory is O(watched): one entry and one fd per live watch, dropped when the exit is
/// reported or the watch removed. Dropping the watcher stops and joins its thread.
pub struct Watcher<T: Send + 'static> {
    shared: Arc<Shared<T>>,
    thread: Option<JoinHandle<()>>,
}

impl<T: Send + 'static> Watcher<T> {
    /// Starts the watcher thread; exits arrive on the returned receiver.
    pub fn new() -> Result<(Self, Receiver<Exited<T>>), SuperviseError> {
        let io_err = |what| move |e: Errno| SuperviseError::Watcher { what, source: e.into() };
        let epoll = epoll::create(epoll::CreateFlags::CLOEXEC).map_err(io_err("epoll_create"))?;
        let wake = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK).map_err(io_err("eventfd"))?;
        epoll::add(&epoll, &wake, epoll::EventData::new_u64(WAKE_TOKEN), epoll::EventFlags::IN)
            .map_err(io_err("epoll_ctl(eventfd)"))?;
        let (tx, rx) = crossbeam_channel::unbounded();
        let shared = Arc::new(Shared {
            epoll,
            wake,
            stop: AtomicBool::new(false),
            state: Mutex::new(State { next_id: WAKE_TOKEN + 1, entries: HashMap::new() }),
            tx,
        });
        let run = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("tars-node-watch".to_owned())
            .spawn(move || watch_loop(&run))
            .map_err(|source| SuperviseError::Watcher { what: "thread spawn", source })?;
        Ok((Self { shared, thread: Some(thread) }, rx))
    }

    /// Watches `pid`; its exit is sent with `tag`. A pid already gone is reported at once,
    /// from this thread. Works for any pid the caller may open a pidfd for, child or not.
    pub fn watch(&self, pid: u32, tag: T) -> Result<WatchId, SuperviseError> {
        let fd = open_pidfd(pid)?;
        let mut st = self.shared.lock();
        let id = st.next_id;
        st.next_id += 1;
        let Some(fd) = fd else {
            drop(st);
            let _ = self.shared.tx.send(Exited { id: WatchId(id), tag, pid, at: Instant::now() });
            return Ok(WatchId(id));
        };
        // Added under the lock so the watcher thread, which looks entries up under the same
        // lock, always finds the entry for an event it gets.
        epoll::add(&self.shared.epoll, &fd, epoll::EventData::new_u64(id), epoll::EventFlags::IN)
            .map_err(|e| SuperviseError::Watcher { what: "epoll_ctl(add)", source: e.into() })?;
        st.entries.insert(id, Entry { pid, fd, tag });
        Ok(WatchId(id))
    }

    /// Stops watching; returns the tag if the watch was still live (no exit reported yet).
    pub fn unwatch(&self, id: WatchId) -> Option<T> {
        let entry = self.shared.lock().entries.remove(&id.0)?;
        let _ = epoll::delete(&self.shared.epoll, &entry.fd);
        Some(entry.tag)
    }

    /// How many watches are live.
    pub fn len(&self) -> usize {
        self.shared.lock().entries.len()
    }

    /// No watch is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T: Send + 'static> std::fmt::Debug for Watcher<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher").field("watched", &self.len()).finish_non_exhaustive()
    }
}

impl<T: Send + 'static> Drop for Watcher<T> {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        let _ = rustix::io::write(&self.shared.wake, &1u64.to_ne_bytes());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn watch_loop<T>(shared: &Shared<T>) {
    let mut events: Vec<epoll::Event> = Vec::with_capacity(64);
    loop {
        events.clear();
        match epoll::wait(&shared.epoll, rustix::buffer::spare_capacity(&mut events), None) {
            Ok(_) => {}
            Err(Errno::INTR) => continue,
            Err(e) => {
                tracing::error!(error = %e, "tars-node-watch: epoll_wait failed, watcher stops");
                return;
            }
        }
        let at = Instant::now();
        for ev in &events {
            let token = ev.data.u64();
            if token == WAKE_TOKEN {
                let mut buf = [0u8; size_of::<u64>()];
                let _ = rustix::io::read(&shared.wake, &mut buf);
                continue;
            }
            // An unwatched id finds nothing here and is ignored.
            let Some(entry) = shared.lock().entries.remove(&token) else { continue };
            let _ = epoll::delete(&shared.epoll, &entry.fd);
            reap(entry.fd.as_fd());
            let _ = shared.tx.send(Exited { id: WatchId(token), tag: entry.tag, pid: entry.pid, at });
        }
        if shared.stop.load(Ordering::Acquire) {
            return;
        }
    }
}
