//! The `main` of every server binary: arguments, logging, config file, signals, the banner
//! and its `READY` line, then serve until stopped.

use std::io::Write as _;

use super::log::{AppLog, LogSettings};
use super::{AppError, Application, Running};
use crate::server::args::ServerArgs;

/// What a binary prints before `READY`, besides the adapters and the services' own lines.
#[derive(Debug, Clone, Default)]
pub struct Banner {
    /// Extra `(name, where)` lines, e.g. the databases a host opened.
    pub lines: Vec<(String, String)>,
}

/// Runs a server binary: parses `--config=FILE [--io=MODE] [--shards=N]` from `args`
/// (without the program name), sets up logging from the config (with `logpath` or `log`,
/// TarsCpp's files under `logpath` and the remote log; else standard error; at
/// `logLevel`), builds the application from the file and lets `build` add its services, starts
/// it, stops it gracefully on SIGTERM/SIGINT, prints `name: config FILE`, one line per
/// adapter and service endpoint, and `READY`, then serves until stopped.
pub fn run_binary(
    name: &str,
    usage: &str,
    args: impl IntoIterator<Item = String>,
    build: impl FnOnce(Application) -> Result<Application, AppError>,
) -> Result<(), AppError> {
    let args = ServerArgs::parse(args, usage).map_err(AppError::Usage)?;
    let mut app = Application::from_file(&args.config)?;
    let server = app.server_config();
    if server.log_path.is_some() || server.log.is_some() {
        // A deployed server: TarsCpp's log files (and the remote log when `log` is set).
        let log = AppLog::start(LogSettings::from_config(app.config(), server))?;
        let _ = tracing::dispatcher::set_global_default(log.dispatch());
        app = app.log(log);
    } else {
        crate::app::logging::init(server);
    }
    if let Some(io) = args.io {
        app = app.io(io);
    }
    if let Some(n) = args.shards {
        app = app.shards(n);
    }
    let running = build(app)?.start()?;
    running.server().stop_on_signals()?;
    print_banner(&running, &format!("{name}: config {}", args.config.display()), &Banner::default())?;
    let result = running.wait();
    crate::app::logging::flush();
    result
}

/// Prints `title`, every adapter's address, `banner`'s and the services' lines, and `READY`.
pub(crate) fn print_banner(running: &Running, title: &str, banner: &Banner) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{title}")?;
    for (name, at) in &banner.lines {
        writeln!(out, "  {name:<32} {at}")?;
    }
    for (adapter, addr) in running.server().addrs() {
        writeln!(out, "  {adapter:<32} {addr}")?;
    }
    for (name, at) in running.banner() {
        writeln!(out, "  {name:<32} {at}")?;
    }
    writeln!(out, "READY")?;
    out.flush()
}
