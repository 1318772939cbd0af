//! tarsnotify as a hosted [`Service`]: `NotifyObj` on the adapter that names it, the writer
//! and retention threads from `configure` on, and two admin commands.
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `/tars/db` | — | `db_tars` (upstream's keys, as tarsconfig reads them) |
//! | `/tars/filter<AppServer>`, `/tars/filter<default>` | — | substrings (`;` or `\|` separated) whose notices are dropped, for one server (app and server joined without a dot) or all (upstream) |
//! | `/tars<retainHistory>` | 100 | rows kept per `server_id`; 0 keeps all (upstream's key; ours deletes) |
//! | `/tars<cron>` | `0 0 3 * * *` | when retention runs: `sec min hour * * *`, daily, local time (upstream's key; other forms: a warning and the default) |
//! | `/tars/retention<maxAgeDays>` | 0 | rows older than this are deleted too; 0: no age limit |
//! | `/tars/retention<intervalSecs>` | — | run every N seconds instead of daily (at least 1) |
//! | `/tars/retention<batch>` | 1000 | rows per DELETE step |
//! | `/tars/retention<enabled>` | Y | N: this instance never runs it on its schedule (the admin command still does) |
//! | `/tars/ratelimit<perMinute>` | 30 | notices per minute per `server_id` once the burst is spent; 0: no limit |
//! | `/tars/ratelimit<burst>` | 60 | notices one server may send at once |
//! | `/tars/ratelimit<maxServers>` | 10000 | servers tracked at most; more share one bucket |
//! | `/tars/ratelimit<quietSecs>` | 5 | a flood has ended after this long without a suppressed notice; its summary row is written then |
//! | `/tars/ratelimit<reportSecs>` | 60 | while a flood lasts, a summary row at most this often |
//! | `/tars/queue<maxMB>` | 16 | bytes of notices waiting for the database (beyond: dropped, counted) |
//! | `/tars/writer<batchRows>` | 500 | rows per batch (one transaction) |
//! | `/tars/writer<flushMs>` | 200 | how long a row waits for its batch to fill |
//! | `/tars/writer<giveUpSecs>` | 600 | rows waiting longer for a database that is away are dropped (counted as lost) |
//!
//! Admin commands: `tars.notify` (the counters: received, filtered, rate-limited, dropped,
//! written, summaries, lost, retention deletes, queue bytes) and `tars.notifyretention`
//! (runs retention now and answers what it deleted).

use std::sync::Arc;
use std::time::Duration;

use tars_core_net::app::{BoxError, Service, ServiceContext};
use tars_core_net::server::ServerBuilder;
use tars_proto::config::Config;
use tars_protocol::tars::NotifyServant;
use tars_sql::schema::db_tars;
use tars_sql::{Store, StoreUrl};

use crate::error::NotifyError;
use crate::filter::Filter;
use crate::limit::LimitConfig;
use crate::queue::{Queue, Stats};
use crate::retention::{self, Cmd, RetentionConfig, RetentionHandle, Schedule};
use crate::servant::NotifyImp;
use crate::writer::{self, WriterConfig, WriterHandle};

/// The servant's name.
pub const NOTIFY_OBJ: &str = "tars.tarsnotify.NotifyObj";
/// Admin command: the counters.
pub const STATUS_COMMAND: &str = "tars.notify";
/// Admin command: run retention now.
pub const RETENTION_COMMAND: &str = "tars.notifyretention";

/// The service's settings (the keys in the module's table).
#[derive(Debug, Clone, Default)]
pub struct NotifySettings {
    /// The substring filter.
    pub filter: Filter,
    /// The writer and its rate limit.
    pub writer: WriterConfig,
    /// Retention.
    pub retention: RetentionConfig,
    /// The queue's budget in bytes.
    pub queue_bytes: usize,
}

fn secs(v: u64) -> Duration {
    Duration::from_secs(v)
}

impl NotifySettings {
    /// Reads the keys in the module's table.
    pub fn from_config(config: &Config) -> Result<NotifySettings, NotifyError> {
        let mut s = NotifySettings { queue_bytes: 16 << 20, filter: Filter::from_config(config), ..Default::default() };
        let r = &mut s.retention;
        if let Some(v) = config.number("/tars<retainHistory>", "a number of rows")? {
            r.keep = v;
        }
        if let Some(cron) = config.get("/tars<cron>").map(str::trim).filter(|c| !c.is_empty()) {
            match retention::parse_cron(cron) {
                Some(at) => r.schedule = Schedule::Daily(at),
                None => tracing::warn!(
                    cron,
                    "notify: /tars<cron> is not `sec min hour * * *`; retention runs daily at 03:00"
                ),
            }
        }
        if let Some(v) = config.number("/tars/retention<maxAgeDays>", "a number of days")? {
            r.max_age_days = v;
        }
        if let Some(v) = config.number("/tars/retention<intervalSecs>", "a number of seconds")? {
            r.schedule = Schedule::Every(secs(v.max(1)));
        }
        if let Some(v) = config.number("/tars/retention<batch>", "a number of rows")? {
            r.batch = usize::try_from(v.clamp(1, 10_000)).unwrap_or(1000);
        }
        r.enabled = !config.get("/tars/retention<enabled>").is_some_and(|v| v.trim().eq_ignore_ascii_case("N"));
        let l: &mut LimitConfig = &mut s.writer.limit;
        if let Some(v) = config.number("/tars/ratelimit<perMinute>", "a number of notices a minute")? {
            l.per_minute = v as f64;
        }
        if let Some(v) = config.number("/tars/ratelimit<burst>", "a number of notices")? {
            l.burst = v.max(1) as f64;
        }
        if let Some(v) = config.number("/tars/ratelimit<maxServers>", "a number of servers")? {
            l.max_servers = usize::try_from(v.max(1)).unwrap_or(usize::MAX);
        }
        if let Some(v) = config.number("/tars/ratelimit<quietSecs>", "a number of seconds")? {
            l.quiet = secs(v.max(1));
        }
        if let Some(v) = config.number("/tars/ratelimit<reportSecs>", "a number of seconds")? {
            l.report_every = secs(v.max(1));
        }
        if let Some(v) = config.number("/tars/queue<maxMB>", "a number of MiB")? {
            s.queue_bytes = usize::try_from(v.clamp(1, 4096) << 20).unwrap_or(usize::MAX);
        }
        let w = &mut s.writer;
        if let Some(v) = config.number("/tars/writer<batchRows>", "a number of rows")? {
            w.batch_rows = usize::try_from(v.clamp(1, 10_000)).unwrap_or(500);
        }
        if let Some(v) = config.number("/tars/writer<flushMs>", "a number of milliseconds")? {
            w.flush = Duration::from_millis(v.clamp(1, 60_000));
        }
        if let Some(v) = config.number("/tars/writer<giveUpSecs>", "a number of seconds")? {
            w.give_up = secs(v.max(1));
        }
        Ok(s)
    }
}

/// tarsnotify: `NotifyObj` over `db_tars`.
#[derive(Debug, Default)]
pub struct NotifyService {
    store: Option<Store>,
    url: Option<String>,
    stats: Arc<Stats>,
    writer: Option<WriterHandle>,
    retention: Option<RetentionHandle>,
}

fn open_store(config: &Config) -> Result<Store, NotifyError> {
    let url = StoreUrl::from_config(config, "/tars/db")?.ok_or(NotifyError::NoDatabase)?;
    let store = Store::open_url(url, Default::default())?;
    // Upstream writes into the table the deployment created; ours makes sure it exists, and
    // a database that is down at start is not fatal (notices wait, then drop, counted).
    if let Err(e) = store.migrate(db_tars::schema()) {
        if !e.is_unavailable() {
            return Err(e.into());
        }
        tracing::warn!(error = %e, "notify: database unavailable at start; schema not checked");
    }
    Ok(store)
}

impl NotifyService {
    /// tarsnotify on the config's `<db>` database, or on `store` when given (already open and
    /// migrated; `tars up` shares it).
    pub fn new(store: Option<Store>) -> NotifyService {
        NotifyService { store, ..NotifyService::default() }
    }

    /// The counters.
    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    fn build(&mut self, config: &Config, builder: ServerBuilder) -> Result<ServerBuilder, NotifyError> {
        let settings = NotifySettings::from_config(config)?;
        let store = match self.store.take() {
            Some(s) => s,
            None => open_store(config)?,
        };
        self.url = Some(store.url().to_string());
        let (queue, rx) = Queue::new(settings.queue_bytes, self.stats.clone());
        self.writer = Some(
            writer::spawn(store.clone(), queue.clone(), rx, settings.writer)
                .map_err(|source| NotifyError::Thread { what: "tars-notify-writer", source })?,
        );
        let retention = retention::spawn(store, settings.retention, self.stats.clone())
            .map_err(|source| NotifyError::Thread { what: "tars-notify-retention", source })?;
        let run_now = retention.sender();
        self.retention = Some(retention);
        let filter = Arc::new(settings.filter);
        let (stats, budget) = (self.stats.clone(), queue.budget());
        Ok(builder
            .servant(NOTIFY_OBJ, move |_| NotifyServant(NotifyImp::new(queue.clone(), filter.clone())))
            .admin_command(STATUS_COMMAND, move |_| stats.describe(budget))
            .admin_command_async(RETENTION_COMMAND, move |_| {
                let run_now = run_now.clone();
                async move {
                    let (tx, rx) = async_channel::bounded(1);
                    if run_now.send(Cmd::Run(tx)).is_err() {
                        return "retention is not running".to_owned();
                    }
                    rx.recv().await.unwrap_or_else(|_| "retention stopped before it answered".to_owned())
                }
            }))
    }
}

impl Service for NotifyService {
    fn name(&self) -> &'static str {
        "notify"
    }

    fn configure(&mut self, ctx: &ServiceContext<'_>, builder: ServerBuilder) -> Result<ServerBuilder, BoxError> {
        Ok(self.build(ctx.config, builder)?)
    }

    fn banner(&self) -> Vec<(String, String)> {
        self.url.iter().map(|u| ("db_tars".to_owned(), u.clone())).collect()
    }

    fn stop(&mut self) {
        // Retention first (it stops between steps), then the writer writes what is queued.
        self.retention = None;
        self.writer = None;
    }
}
