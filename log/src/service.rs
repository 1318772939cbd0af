//! tarslog as a hosted [`Service`]: the writers from `configure` on, `LogObj` on the adapter
//! that names it, the `reloadLogFormat` and `tars.logstats` admin commands.
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `/tars/log<logpath>` | required | the log root: files go to `<logpath>/<app>/[<set>/]<server>/` |
//! | `/tars/log<ipfix>` | `true` | prefix each line with `<client ip><separator>` (`true` in any case; anything else is off) |
//! | `/tars/log<logthread>` | `1` (upstream's template: 10) | writer threads, 1 to 64 |
//! | `/tars/log/format<hour>` | empty | `app.server` names (split on `\|;,`) whose files roll hourly (`%Y%m%d%H`) |
//! | `/tars/log/logtype<TYPE>` | none | `app.server.file` names whose `loggerbyInfo` files roll by `TYPE` (`[N]day\|hour\|minute`), canonical format |
//! | `/tars/log<queueMB>` (ours) | `64` | bytes of lines waiting for the writers, in MiB; beyond, lines are dropped and counted |
//! | `/tars/log<fsync>` (ours) | `never` | `never` (upstream), `interval`, `always` (after each round of batches) |
//! | `/tars/log<fsyncMs>` (ours) | `1000` | the `interval` period |
//! | `/tars/log<flushMs>` (ours) | `100` | buffers are flushed this often (upstream: 100 ms) |
//! | `/tars/log<maxOpenFiles>` (ours) | `256` | open handles per writer; the least recently used is closed beyond |
//! | `/tars/log<reopenSecs>` (ours) | `10` | a handle is closed this long after it was opened (a deleted file is created again) |
//!
//! `reloadLogFormat` reads the config file again for the two override keys (upstream's
//! answer: `loadLogFormat succ:<hour>`); `tars.logstats` shows the counters.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tars_core_net::app::{BoxError, Service, ServiceContext};
use tars_core_net::server::ServerBuilder;
use tars_proto::config::{Config, SettingError};
use tars_protocol::tars::LogServant;

use crate::clock::{Clock, SystemClock};
use crate::servant::{LogImp, Overrides, SharedOverrides};
use crate::writer::{Counters, Fsync, Queue, WriterSettings, Writers};

/// The servant's name.
pub const LOG_OBJ: &str = "tars.tarslog.LogObj";
/// Admin command: re-read `/tars/log/format` and `/tars/log/logtype` (upstream's).
pub const RELOAD_COMMAND: &str = "reloadLogFormat";
/// Admin command: the counters.
pub const STATS_COMMAND: &str = "tars.logstats";

/// A setting that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// A number that is not one.
    #[error(transparent)]
    Setting(#[from] SettingError),
    /// `logpath` is missing.
    #[error("no /tars/log<logpath>: where should the log files go?")]
    NoLogPath,
    /// `fsync` is not one of the three.
    #[error("/tars/log<fsync> is {0:?}: expected never, interval or always")]
    Fsync(String),
    /// The root or a writer could not be set up.
    #[error("log root {0}: {1}")]
    Io(PathBuf, std::io::Error),
}

/// The service's settings.
#[derive(Debug, Clone)]
pub struct LogSettings {
    /// The log root.
    pub root: PathBuf,
    /// `ipfix`.
    pub ipfix: bool,
    /// The writers.
    pub writer: WriterSettings,
}

impl LogSettings {
    /// Reads the keys in the [module table](self).
    pub fn from_config(config: &Config) -> Result<LogSettings, LogError> {
        let root =
            config.get("/tars/log<logpath>").map(str::trim).filter(|p| !p.is_empty()).ok_or(LogError::NoLogPath)?;
        let ipfix = config.get("/tars/log<ipfix>").is_none_or(|v| v.trim().eq_ignore_ascii_case("true"));
        let mut w = WriterSettings::default();
        if let Some(n) = config.number("/tars/log<logthread>", "a number of writer threads")? {
            w.threads = usize::try_from(n.clamp(1, 64)).unwrap_or(1);
        }
        if let Some(mb) = config.number("/tars/log<queueMB>", "a number of MiB")? {
            w.queue_bytes = usize::try_from(mb.clamp(1, 1 << 20).saturating_mul(1 << 20)).unwrap_or(usize::MAX);
        }
        if let Some(f) = config.get("/tars/log<fsync>") {
            w.fsync = f.parse::<Fsync>().map_err(|()| LogError::Fsync(f.to_owned()))?;
        }
        if let Some(ms) = config.number("/tars/log<fsyncMs>", "a number of milliseconds")? {
            w.fsync_every = Duration::from_millis(ms.clamp(1, 3_600_000));
        }
        if let Some(ms) = config.number("/tars/log<flushMs>", "a number of milliseconds")? {
            w.flush = Duration::from_millis(ms.clamp(1, 60_000));
        }
        if let Some(n) = config.number("/tars/log<maxOpenFiles>", "a number of files")? {
            w.max_open = usize::try_from(n.clamp(1, 65_536)).unwrap_or(256);
        }
        if let Some(s) = config.number("/tars/log<reopenSecs>", "a number of seconds")? {
            w.reopen = Duration::from_secs(s.clamp(1, 86_400));
        }
        Ok(LogSettings { root: PathBuf::from(root), ipfix, writer: w })
    }
}

/// tarslog: `LogObj` writing under `/tars/log<logpath>`.
#[derive(Debug)]
pub struct LogService {
    clock: Arc<dyn Clock>,
    config_file: Option<PathBuf>,
    writers: Option<Writers>,
    counters: Arc<Counters>,
    overrides: Arc<SharedOverrides>,
}

impl Default for LogService {
    fn default() -> LogService {
        LogService::new()
    }
}

impl LogService {
    /// tarslog on the system clock.
    pub fn new() -> LogService {
        LogService {
            clock: Arc::new(SystemClock),
            config_file: None,
            writers: None,
            counters: Arc::default(),
            overrides: Arc::default(),
        }
    }

    /// Names files by `clock` instead (tests).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> LogService {
        self.clock = clock;
        self
    }

    /// The file `reloadLogFormat` reads (the binary's `--config`); without one the command
    /// answers that there is nothing to reload.
    pub fn config_file(mut self, path: Option<PathBuf>) -> LogService {
        self.config_file = path;
        self
    }

    /// The counters.
    pub fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    /// The shards' end of the queue, once configured.
    pub fn queue(&self) -> Option<&Queue> {
        self.writers.as_ref().map(Writers::queue)
    }

    /// Replaces the overrides as `reloadLogFormat` does, from `config`.
    pub fn reload(&self, config: &Config) {
        self.overrides.replace(Overrides::from_config(config));
    }
}

fn reload_from(file: Option<&PathBuf>, overrides: &SharedOverrides) -> String {
    let Some(path) = file else {
        return "loadLogFormat fail: no config file to read".to_owned();
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => return format!("loadLogFormat fail: {}: {e}", path.display()),
    };
    match Config::parse(&text) {
        Ok(c) => {
            let o = Overrides::from_config(&c);
            let answer = format!("loadLogFormat succ:{}", o.hour_text);
            tracing::info!(hour = %o.hour_text, types = o.log_types.len(), "log: formats reloaded");
            overrides.replace(o);
            answer
        }
        Err(e) => format!("loadLogFormat fail: {}: {e}", path.display()),
    }
}

impl Service for LogService {
    fn name(&self) -> &'static str {
        "log"
    }

    fn configure(&mut self, ctx: &ServiceContext<'_>, builder: ServerBuilder) -> Result<ServerBuilder, BoxError> {
        let settings = LogSettings::from_config(ctx.config)?;
        self.overrides.replace(Overrides::from_config(ctx.config));
        let writers = Writers::start(settings.root.clone(), &settings.writer, self.counters.clone())
            .map_err(|e| LogError::Io(settings.root.clone(), e))?;
        let queue = writers.queue().clone();
        self.writers = Some(writers);
        let (overrides, clock, ipfix) = (self.overrides.clone(), self.clock.clone(), settings.ipfix);
        let (reload_overrides, file) = (self.overrides.clone(), self.config_file.clone());
        let (counters, bound) = (self.counters.clone(), settings.writer.queue_bytes);
        tracing::info!(root = %settings.root.display(), threads = settings.writer.threads, fsync = ?settings.writer.fsync, "log: writing");
        Ok(builder
            .servant(LOG_OBJ, move |_| LogServant(LogImp::new(queue.clone(), overrides.clone(), clock.clone(), ipfix)))
            .admin_command(RELOAD_COMMAND, move |_| reload_from(file.as_ref(), &reload_overrides))
            .admin_command(STATS_COMMAND, move |_| counters.describe(bound)))
    }

    fn stop(&mut self) {
        self.writers = None;
    }
}
