//! Logging for server binaries: `tracing` with the TARS level names, changed at run time by
//! `tars.setloglevel`.
//!
//! `logLevel` (`NONE`, `ERROR`, `WARN`, `INFO`, `DEBUG`, `TARS`) sets the level unless
//! `RUST_LOG` is set, which wins (for debugging one module). `tars.setloglevel LEVEL` on
//! `AdminObj` replaces the level of every target.

use std::sync::OnceLock;

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
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
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
