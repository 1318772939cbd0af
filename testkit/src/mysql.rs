//! A real MariaDB for the database tests.
//!
//! `scripts/test.sh` starts one private MariaDB (with `scripts/mariadb.sh`) and exports its URL
//! in [`URL_ENV`]; [`mysql_url`] reads it. Tests that need a server of their own (to kill it,
//! restart it, check crash recovery) start one with [`PrivateMariaDb::start`].
//!
//! Tests that need a database never skip: without a server they fail and say how to get one.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};

use crate::process::TempDir;

/// The environment variable holding the URL of the shared test MariaDB,
/// `mysql://tars:tars2015@127.0.0.1:PORT/test`.
pub const URL_ENV: &str = "TARS_TEST_MYSQL_URL";

/// The environment variable holding the path of `scripts/mariadb.sh` (set by `scripts/test.sh`).
pub const SCRIPT_ENV: &str = "TARS_TEST_MARIADB_SCRIPT";

/// The URL of the shared test MariaDB, from [`URL_ENV`].
///
/// # Panics
///
/// When [`URL_ENV`] is unset or empty, with a message saying how to start a server: a test that
/// needs a database fails rather than skips.
pub fn mysql_url() -> String {
    match url_from(std::env::var(URL_ENV).ok()) {
        Ok(url) => url,
        Err(message) => panic!("{message}"),
    }
}

/// What [`mysql_url`] makes of the value of [`URL_ENV`]: the URL, or the message it panics with
/// when the value is missing or blank.
pub fn url_from(value: Option<String>) -> Result<String, String> {
    match value {
        Some(v) if !v.trim().is_empty() => Ok(v.trim().to_owned()),
        _ => Err(format!(
            "this test needs a real MariaDB/MySQL server, but {URL_ENV} is not set. \
             `scripts/test.sh` starts a private one and exports it; to run tests by hand, run \
             `scripts/mariadb.sh start /tmp/x` and `export {URL_ENV}=$(scripts/mariadb.sh url /tmp/x)` \
             (the URL looks like mysql://tars:tars2015@127.0.0.1:PORT/test)"
        )),
    }
}

/// The path of `scripts/mariadb.sh`: [`SCRIPT_ENV`] when set, else the one in this workspace.
pub fn script_path() -> PathBuf {
    match std::env::var_os(SCRIPT_ENV) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/mariadb.sh"),
    }
}

/// Runs `scripts/mariadb.sh ARGS…` and returns its stdout, trimmed; on failure the error carries
/// its stderr.
fn run_script(script: &Path, args: &[&std::ffi::OsStr]) -> anyhow::Result<String> {
    let out = Command::new("bash")
        .arg(script)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("running bash {}", script.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if !out.status.success() {
        bail!(
            "{} {:?} failed ({}):\n{}{}",
            script.display(),
            args,
            out.status,
            String::from_utf8_lossy(&out.stderr),
            stdout
        );
    }
    Ok(stdout)
}

/// Whether process `pid` is gone: no `/proc/PID`, or only a zombie left (the server is not our
/// child, so reaping it is not up to us).
fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/status")) {
        Err(_) => true,
        Ok(status) => status
            .lines()
            .find_map(|l| l.strip_prefix("State:"))
            .map(|s| matches!(s.trim().chars().next(), Some('Z' | 'X')))
            .unwrap_or(true),
    }
}

/// A MariaDB server of one test's own, started by `scripts/mariadb.sh` with all its state (data,
/// socket, logs, TLS certificates) in a fresh temp dir. Stopped, and the dir removed, on drop.
#[derive(Debug)]
pub struct PrivateMariaDb {
    script: PathBuf,
    url: String,
    // Removed (by its own drop) after `Drop::drop` has stopped the server.
    dir: TempDir,
}

impl PrivateMariaDb {
    /// Starts a server in a fresh temp dir and waits until it accepts connections.
    pub fn start() -> anyhow::Result<PrivateMariaDb> {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        let dir = TempDir::new(&format!("mariadb-{nanos:x}")).context("creating the temp dir")?;
        let script = script_path();
        let started = run_script(&script, &["start".as_ref(), dir.0.as_os_str()]).and_then(|url| {
            if url.starts_with("mysql://") {
                Ok(url)
            } else {
                bail!("{} start printed {url:?}, not a mysql:// URL", script.display())
            }
        });
        match started {
            Ok(url) => Ok(PrivateMariaDb { script, url, dir }),
            Err(e) => {
                // A server that came up half-way must not outlive its (removed) dir.
                let _ = run_script(&script, &["stop".as_ref(), dir.0.as_os_str()]);
                Err(e)
            }
        }
    }

    /// Its URL, `mysql://tars:tars2015@127.0.0.1:PORT/test`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Its TCP port on 127.0.0.1.
    pub fn port(&self) -> anyhow::Result<u16> {
        let port = self.url.rsplit_once(':').and_then(|(_, rest)| rest.split('/').next());
        port.and_then(|p| p.parse().ok()).with_context(|| format!("no port in {}", self.url))
    }

    /// The directory holding all its state.
    pub fn dir(&self) -> &Path {
        &self.dir.0
    }

    /// Its unix socket (`root` with an empty password may log in there).
    pub fn socket(&self) -> PathBuf {
        self.dir.0.join("mysqld.sock")
    }

    /// The CA certificate that signed its TLS certificate (for clients that verify the server).
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.0.join("ca.pem")
    }

    /// The pid of the running server.
    pub fn pid(&self) -> anyhow::Result<u32> {
        let out = run_script(&self.script, &["pid".as_ref(), self.dir.0.as_os_str()])?;
        out.parse().with_context(|| format!("mariadb.sh pid printed {out:?}"))
    }

    /// Whether the server is running.
    pub fn running(&self) -> bool {
        run_script(&self.script, &["status".as_ref(), self.dir.0.as_os_str()]).is_ok()
    }

    /// Kills the server with SIGKILL (a crash: no shutdown, no flush) and waits until it is gone.
    pub fn kill9(&self) -> anyhow::Result<()> {
        let pid = self.pid()?;
        let status = Command::new("kill")
            .args(["-9", &pid.to_string()])
            .stdin(Stdio::null())
            .status()
            .context("running kill -9")?;
        if !status.success() && !gone(pid) {
            bail!("kill -9 {pid} failed: {status}");
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while !gone(pid) {
            if Instant::now() >= deadline {
                bail!("mariadbd {pid} still alive 30 s after SIGKILL");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }

    /// Starts the server again on the same dir: same port (so [`url`](Self::url) stays valid),
    /// same data, after crash recovery when it was killed.
    pub fn restart(&self) -> anyhow::Result<()> {
        let url = run_script(&self.script, &["start".as_ref(), self.dir.0.as_os_str()])?;
        if url != self.url {
            bail!("restarted at {url}, not at {}", self.url);
        }
        Ok(())
    }

    /// Shuts the server down cleanly (the data stays; [`restart`](Self::restart) brings it back).
    pub fn stop(&self) -> anyhow::Result<()> {
        run_script(&self.script, &["stop".as_ref(), self.dir.0.as_os_str()]).map(drop)
    }
}

impl Drop for PrivateMariaDb {
    fn drop(&mut self) {
        if self.stop().is_err() {
            if let Ok(pid) = self.pid() {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            }
        }
    }
}
