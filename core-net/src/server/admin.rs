//! `AdminObj`: the admin servant every TARS server serves on its `local` endpoint
//! (`AdminF.tars`: `shutdown()`, `string notify(string command)`, `long getPid()`).
//!
//! tarsnode stops servers through `shutdown` and relays the web console's commands through
//! `notify`. A command is `name params`, split at the first space. Built in:
//!
//! | command | answer |
//! |---|---|
//! | `tars.help` | the commands this server knows |
//! | `tars.viewstatus` | identity, uptime, driver and shards, and each adapter's endpoint, limits, connections and request count |
//! | `tars.viewversion` | the server's version |
//! | `tars.setloglevel LEVEL` | `NONE`, `ERROR`, `WARN`, `INFO`, `DEBUG` or `TARS`; passed to the binary's logger hook |
//! | `tars.connection` | every open connection: adapter, peer, shard, age |
//! | `tars.loadconfig FILE` | runs the command a service registered under that name; the config service client is not built yet, so without one it says so |
//!
//! Services add their own with `ServerBuilder::admin_command`. An unknown command gets an
//! empty answer, as TarsCpp's.
//!
//! The servant implements the `AdminF` trait generated from `AdminF.tars` by `tars-protocol`.

use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::SystemTime;

use tars_proto::rpc::{Current, ServantError};
use tars_protocol::tars::AdminF;
pub(crate) use tars_protocol::tars::AdminFServant;

use super::ServerShared;

/// A registered admin command: gets the text after the command name, returns the answer.
pub type CommandFn = Arc<dyn Fn(&str) -> String + Send + Sync>;
/// An admin command whose answer needs waiting (a database, another service): builds, on the
/// shard that received the call, a future resolving to the answer. It must not block.
pub type AsyncCommandFn = Arc<dyn Fn(String) -> Pin<Box<dyn Future<Output = String>>> + Send + Sync>;

/// A command as registered with the server.
#[derive(Clone)]
pub(crate) enum Command {
    Sync(CommandFn),
    Async(AsyncCommandFn),
}
/// Applies a new log level, or says why it cannot.
pub type LogLevelHook = Arc<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

/// The log levels TarsCpp's `tars.setloglevel` accepts.
pub const LOG_LEVELS: [&str; 6] = ["NONE", "ERROR", "WARN", "INFO", "DEBUG", "TARS"];

/// `AdminObj` on one shard.
pub(crate) struct AdminServant {
    shared: Arc<ServerShared>,
}

impl AdminServant {
    pub(crate) fn new(shared: Arc<ServerShared>) -> AdminServant {
        AdminServant { shared }
    }
}

impl AdminF for AdminServant {
    async fn shutdown(&self, _current: &mut Current) -> Result<(), ServantError> {
        tracing::info!("shutdown requested through AdminObj");
        self.shared.stop();
        Ok(())
    }

    async fn notify(&self, _current: &mut Current, command: String) -> Result<String, ServantError> {
        let (name, params) = split_command(&command);
        let asynchronous = self.shared.commands.iter().find_map(|(n, c)| match c {
            Command::Async(f) if n == name => Some(f.clone()),
            _ => None,
        });
        Ok(match asynchronous {
            Some(f) => {
                tracing::info!(command = %name, "admin command");
                f(params.to_owned()).await
            }
            None => run_command(&self.shared, &command),
        })
    }

    async fn get_pid(&self, _current: &mut Current) -> Result<i64, ServantError> {
        Ok(i64::from(std::process::id()))
    }
}

/// Runs one admin command line and returns its answer.
pub(crate) fn run_command(shared: &ServerShared, line: &str) -> String {
    let (name, params) = split_command(line);
    tracing::info!(command = %name, "admin command");
    if let Some((_, c)) = shared.commands.iter().find(|(n, _)| n == name) {
        return match c {
            Command::Sync(f) => f(params),
            // Reached only by in-process callers that cannot wait; AdminObj awaits these.
            Command::Async(_) => format!("{name}: answered only through AdminObj.notify"),
        };
    }
    match name {
        "tars.help" => help(shared),
        "tars.viewstatus" => view_status(shared),
        "tars.viewversion" => format!("version: {}", shared.version),
        "tars.setloglevel" => set_log_level(shared, params),
        "tars.connection" => connections(shared),
        "tars.loadconfig" => format!("tars.loadconfig {params}: no config service client is available in this server"),
        _ => String::new(),
    }
}

/// `name params`, split at the first space.
fn split_command(line: &str) -> (&str, &str) {
    let line = line.trim();
    match line.split_once(' ') {
        Some((n, p)) => (n, p.trim()),
        None => (line, ""),
    }
}

fn help(shared: &ServerShared) -> String {
    let mut out = String::from(
        "tars.help\ntars.viewstatus\ntars.viewversion\ntars.setloglevel\ntars.connection\ntars.loadconfig\n",
    );
    for (n, _) in &shared.commands {
        out.push_str(n);
        out.push('\n');
    }
    out
}

fn line(out: &mut String, key: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, "{key:<24}{value}");
}

fn view_status(shared: &ServerShared) -> String {
    let c = &shared.config;
    let mut out = String::new();
    line(&mut out, "[proxy config]:", "");
    line(&mut out, "app", &c.app);
    line(&mut out, "server", &c.server);
    line(&mut out, "version", &shared.version);
    line(&mut out, "pid", std::process::id());
    let up = SystemTime::now().duration_since(shared.started).unwrap_or_default();
    line(&mut out, "uptime(s)", up.as_secs());
    line(&mut out, "loglevel", shared.log_level.lock().map(|l| l.clone()).unwrap_or_default());
    let io = shared.io.lock().map(|v| v.clone()).unwrap_or_default();
    let bound = shared.bound.lock().map(|b| b.clone()).unwrap_or_default();
    for a in c.all_adapters() {
        out.push_str("--------------------------------------------------\n");
        line(&mut out, "name", &a.name);
        line(&mut out, "servant", &a.servant);
        line(&mut out, "endpoint", &a.endpoint);
        if let Some(addr) = bound.get(&a.name) {
            line(&mut out, "bound", addr);
        }
        if let Some((_, mode, shards)) = io.iter().find(|(n, _, _)| n == &a.name) {
            line(&mut out, "io", mode);
            line(&mut out, "shards", shards);
        }
        line(&mut out, "maxconns", a.max_conns);
        line(&mut out, "queuecap", a.queue_cap);
        line(&mut out, "queuetimeout(ms)", a.queue_timeout.as_millis());
        line(&mut out, "idletimeout(ms)", a.idle_timeout.as_millis());
        if let Some(s) = shared.stats.get(&a.name) {
            line(&mut out, "connections", s.conns.load(Ordering::Relaxed));
            line(&mut out, "requests", s.requests());
        }
    }
    out
}

fn set_log_level(shared: &ServerShared, params: &str) -> String {
    let level = params.trim().to_ascii_uppercase();
    if !LOG_LEVELS.contains(&level.as_str()) {
        return format!("set log level [{params}] failed: expected one of {}", LOG_LEVELS.join("|"));
    }
    if let Some(hook) = &shared.log_level_hook {
        if let Err(e) = hook(&level) {
            return format!("set log level [{level}] failed: {e}");
        }
    }
    if let Ok(mut l) = shared.log_level.lock() {
        *l = level.clone();
    }
    format!("set log level [{level}] ok")
}

fn connections(shared: &ServerShared) -> String {
    let conns = shared.connections();
    let now = SystemTime::now();
    let mut out = format!("connections: {}\n", conns.len());
    for c in conns {
        let age = now.duration_since(c.since).unwrap_or_default().as_secs();
        let _ = writeln!(out, "{}\t{}\tshard {}\t{} s", c.adapter, c.peer, c.shard, age);
    }
    out
}
