//! The test server as a child process, so tests see it as an operator would: its own
//! memory, file descriptors and exit status.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, Command, Stdio};

use tars_core_net::rt::IoMode;

/// A running `tars-test-server`; killed on drop.
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    addrs: BTreeMap<String, SocketAddr>,
    _dir: TempDir,
}

/// A directory removed on drop.
#[derive(Debug)]
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    /// A fresh directory under the system temp dir.
    pub fn new(tag: &str) -> std::io::Result<TempDir> {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("tars-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&p)?;
        Ok(TempDir(p))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl ServerProcess {
    /// Starts `bin` (the path of `tars-test-server`) with `config_text` on `io`.
    pub fn start(bin: &str, config_text: &str, io: IoMode, shards: usize) -> std::io::Result<ServerProcess> {
        Self::start_with_stderr(bin, config_text, io, shards, Stdio::inherit())
    }

    /// [`ServerProcess::start`] with the server's standard error (its log) going to `stderr`,
    /// e.g. a file a test reads.
    pub fn start_with_stderr(
        bin: &str,
        config_text: &str,
        io: IoMode,
        shards: usize,
        stderr: Stdio,
    ) -> std::io::Result<ServerProcess> {
        let dir = TempDir::new("server")?;
        let conf = dir.0.join("server.conf");
        std::fs::write(&conf, config_text)?;
        let mut child = Command::new(bin)
            .arg(format!("--config={}", conf.display()))
            .arg(format!("--io={io}"))
            .arg(format!("--shards={shards}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().ok_or_else(|| std::io::Error::other("no stdout"))?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let Some(rest) = line.trim().strip_prefix("READY") else {
            let _ = child.kill();
            return Err(std::io::Error::other(format!("server did not start: {line:?}")));
        };
        let addrs = rest
            .split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .filter_map(|(k, v)| Some((k.to_owned(), v.parse().ok()?)))
            .collect();
        Ok(ServerProcess { child, stdin, addrs, _dir: dir })
    }

    /// Where adapter `name` listens.
    pub fn addr(&self, name: &str) -> Option<SocketAddr> {
        self.addrs.get(name).copied()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Resident memory in KiB (`VmRSS`).
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// Open file descriptors.
    pub fn fd_count(&self) -> Option<usize> {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid())).ok().map(|d| d.count())
    }

    /// Waits at most `limit` for it to exit by itself; its status, or `None` if still running.
    pub fn exited_within(&mut self, limit: std::time::Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + limit;
        loop {
            match self.child.try_wait() {
                Ok(Some(st)) => return Some(st),
                Ok(None) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(20))
                }
                _ => return None,
            }
        }
    }

    /// Closes its stdin (a graceful stop) and waits; returns whether it exited 0.
    pub fn stop(mut self) -> bool {
        if let Some(mut s) = self.stdin.take() {
            let _ = s.flush();
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        loop {
            match self.child.try_wait() {
                Ok(Some(st)) => return st.success(),
                Ok(None) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(20))
                }
                _ => return false,
            }
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A framework binary (`tarsnotify`, `tarslog`, ...) started as an operator starts it:
/// `--config=FILE` and the given arguments, its banner read up to `READY`. Killed on drop;
/// [`BinaryProcess::terminate`] is the graceful stop (SIGTERM).
#[derive(Debug)]
pub struct BinaryProcess {
    child: Child,
    banner: BTreeMap<String, String>,
    dir: TempDir,
}

impl BinaryProcess {
    /// Writes `config_text` to a fresh directory and starts `bin` on it with `args`.
    pub fn start(bin: &str, config_text: &str, args: &[&str]) -> std::io::Result<BinaryProcess> {
        let dir = TempDir::new("binary")?;
        let conf = dir.0.join("server.conf");
        std::fs::write(&conf, config_text)?;
        let mut child = Command::new(bin)
            .arg(format!("--config={}", conf.display()))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child.stdout.take().ok_or_else(|| std::io::Error::other("no stdout"))?;
        let mut banner = BTreeMap::new();
        let mut ready = false;
        for line in BufReader::new(stdout).lines() {
            let line = line?;
            if line.trim() == "READY" {
                ready = true;
                break;
            }
            // `  <name> <where>` lines; the first line is the title.
            if let Some((name, at)) = line.strip_prefix("  ").and_then(|l| l.trim().split_once(char::is_whitespace)) {
                banner.insert(name.to_owned(), at.trim().to_owned());
            }
        }
        if !ready {
            let _ = child.kill();
            let status = child.wait()?;
            return Err(std::io::Error::other(format!("{bin} exited before READY ({status})")));
        }
        Ok(BinaryProcess { child, banner, dir })
    }

    /// Where adapter `name` (`<servant>Adapter`, `AdminAdapter`) listens, from the banner.
    pub fn addr(&self, adapter: &str) -> Option<SocketAddr> {
        self.banner.get(adapter).and_then(|a| a.parse().ok())
    }

    /// The banner's `(name, where)` lines.
    pub fn banner(&self) -> &BTreeMap<String, String> {
        &self.banner
    }

    /// The directory holding its config file, removed on drop.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir.0
    }

    /// SIGTERM, then waits at most `limit`; its exit status, or `None` if it had to be killed.
    pub fn terminate(mut self, limit: std::time::Duration) -> Option<std::process::ExitStatus> {
        let pid = rustix::process::Pid::from_raw(i32::try_from(self.child.id()).ok()?)?;
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        let deadline = std::time::Instant::now() + limit;
        loop {
            match self.child.try_wait() {
                Ok(Some(st)) => return Some(st),
                Ok(None) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(20))
                }
                _ => return None,
            }
        }
    }
}

impl Drop for BinaryProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
