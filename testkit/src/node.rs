//! Runs the official Node.js SDK (`@tars/rpc`, pinned in `interop/package.json`) as a peer:
//! `interop/rpc_server.js` as a server our client calls, `interop/rpc_client.js` as a client
//! calling our server. Missing Node or packages fail loudly, never skip.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

/// The workspace's `interop/` folder.
pub fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("interop")
}

fn check_installed() {
    const SETUP: &str = "run `npm ci --prefix interop` from the workspace root (needs Node.js and npm)";
    for pkg in ["@tars/stream", "@tars/rpc"] {
        let manifest = interop_dir().join("node_modules").join(pkg).join("package.json");
        assert!(manifest.exists(), "Node interop: {} is missing: {SETUP}", manifest.display());
    }
}

/// A running `rpc_server.js`; killed on drop (it also exits when its stdin closes).
#[derive(Debug)]
pub struct NodeServer {
    child: Child,
    _stdin: Option<ChildStdin>,
    /// Where it listens.
    pub addr: SocketAddr,
}

/// Runs `node interop/<script> <arg>` with piped stdin/stdout and waits for its first line,
/// which must be `READY <rest>`; gives the child, its stdin (closing it stops the script), the
/// rest of stdout and `<rest>`. Panics (killing the child) when the script does not start.
fn start_ready(script: &str, arg: &str) -> (Child, Option<ChildStdin>, BufReader<ChildStdout>, String) {
    check_installed();
    let mut child = Command::new("node")
        .arg(script)
        .arg(arg)
        .current_dir(interop_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("Node interop: cannot run `node` ({e})"));
    let stdin = child.stdin.take();
    let stdout = child.stdout.take().unwrap_or_else(|| panic!("Node interop: no stdout pipe"));
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() || !line.starts_with("READY ") {
        let _ = child.kill();
        panic!("Node interop: {script} did not start (printed {line:?})");
    }
    let rest = line["READY ".len()..].to_owned();
    (child, stdin, reader, rest)
}

impl NodeServer {
    /// Starts the Node interop server on a free port and waits for its `READY` line.
    pub fn start() -> NodeServer {
        let (child, stdin, _, ready) = start_ready("rpc_server.js", "0");
        let port: u16 = ready.trim().parse().unwrap_or_else(|_| panic!("bad READY line {ready:?}"));
        NodeServer { child, _stdin: stdin, addr: SocketAddr::from(([127, 0, 0, 1], port)) }
    }
}

impl Drop for NodeServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What one run of `rpc_client.js` reported.
#[derive(Debug)]
pub struct NodeClientRun {
    /// Checks that passed.
    pub passed: usize,
    /// Checks that failed.
    pub failed: usize,
    /// Every line it printed (one JSON object per check, then `DONE p f`).
    pub lines: Vec<String>,
    /// Its stderr.
    pub stderr: String,
    /// Whether it exited 0.
    pub success: bool,
}

/// Runs the Node interop client against `addr` with protocol `version` (1 or 3).
pub fn run_client(addr: SocketAddr, version: i16) -> NodeClientRun {
    check_installed();
    let out = Command::new("node")
        .arg("rpc_client.js")
        .arg(addr.ip().to_string())
        .arg(addr.port().to_string())
        .arg(version.to_string())
        .current_dir(interop_dir())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("Node interop: cannot run `node` ({e})"));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let (passed, failed) = lines
        .iter()
        .find_map(|l| {
            let mut it = l.strip_prefix("DONE ")?.split_whitespace();
            Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
        })
        .unwrap_or((0, usize::MAX));
    NodeClientRun {
        passed,
        failed,
        lines,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        success: out.status.success(),
    }
}

/// Runs `interop/<script>` with `args` (no `TARS_CONFIG`/`TARS_MONITOR` from the test's
/// environment) and returns its stdout; panics with both outputs when it fails, and when
/// one of `packages` (besides `@tars/stream` and `@tars/rpc`) is not installed.
pub fn run_script(script: &str, args: &[&str], packages: &[&str]) -> String {
    check_installed();
    for pkg in packages {
        let manifest = interop_dir().join("node_modules").join(pkg).join("package.json");
        assert!(
            manifest.exists(),
            "Node interop: {} is missing: run `npm ci --prefix interop` from the workspace root",
            manifest.display()
        );
    }
    let out = Command::new("node")
        .arg(script)
        .args(args)
        .current_dir(interop_dir())
        .env_remove("TARS_CONFIG")
        .env_remove("TARS_MONITOR")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("Node interop: cannot run `node` ({e})"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "node {script} failed ({}):\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// A running `interop/app_peer.js`: every TARS framework servant a business server talks to
/// (node, stat, property, log, notify, config, the locator), written with `@tars/rpc`,
/// recording each request it receives. Killed on drop (or by [`AppPeer::stop`]).
#[derive(Debug)]
pub struct AppPeer {
    child: Child,
    _stdin: Option<ChildStdin>,
    /// Port by servant (`tars.tarsnode.ServerObj`...).
    pub ports: std::collections::BTreeMap<String, u16>,
    calls: std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl AppPeer {
    /// Starts the peer with `plan` (see the script's header) and waits for its `READY` line.
    pub fn start(plan: &serde_json::Value) -> AppPeer {
        let (child, stdin, reader, ready) = start_ready("app_peer.js", &plan.to_string());
        let ports: std::collections::BTreeMap<String, u16> =
            serde_json::from_str(&ready).unwrap_or_else(|e| panic!("bad READY line {ready:?}: {e}"));
        let calls = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = calls.clone();
        let reader = std::thread::spawn(move || {
            for line in reader.lines() {
                let Ok(line) = line else { break };
                match serde_json::from_str::<serde_json::Value>(&line) {
                    Ok(v) => sink.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(v),
                    Err(e) => panic!("app_peer.js printed a line that is not JSON ({e}): {line}"),
                }
            }
        });
        AppPeer { child, _stdin: stdin, ports, calls, reader: Some(reader) }
    }

    /// The port of `servant`.
    pub fn port(&self, servant: &str) -> u16 {
        *self.ports.get(servant).unwrap_or_else(|| panic!("app_peer.js has no {servant}"))
    }

    /// Every request recorded so far, in arrival order.
    pub fn calls(&self) -> Vec<serde_json::Value> {
        self.calls.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// The recorded requests for `servant`'s function `func`.
    pub fn calls_to(&self, servant: &str, func: &str) -> Vec<serde_json::Value> {
        self.calls().into_iter().filter(|c| c["obj"] == servant && c["func"] == func).collect()
    }

    /// Stops the peer and returns everything it recorded.
    pub fn stop(mut self) -> Vec<serde_json::Value> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        self.calls()
    }
}

impl Drop for AppPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
