//! tarsconfig as a hosted [`Service`]: the cache loader from `configure` on, `ConfigObj` on
//! the adapter that names it, and the `tars.configcache` admin command.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tars_core_net::app::{BoxError, Service, ServiceContext};
use tars_core_net::server::ServerBuilder;
use tars_proto::config::Config;
use tars_protocol::tars::ConfigServant;
use tars_sql::schema::db_tars;
use tars_sql::{Store, StoreUrl};

use crate::cache::{self, CacheConfig, Loader, ShardView, Shared};
use crate::limit::{LimitConfig, Limiter};
use crate::servant::ConfigImp;

/// The servant's name.
pub const CONFIG_OBJ: &str = "tars.tarsconfig.ConfigObj";
/// Admin command: the cache's and the limiter's state.
pub const CACHE_COMMAND: &str = "tars.configcache";

/// The service's settings, from upstream's `/tars/limit` keys and our `/tars/cache` keys.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConfigSettings {
    /// The load limiter.
    pub limit: LimitConfig,
    /// The cache.
    pub cache: CacheConfig,
}

pub use tars_proto::config::SettingError;

impl ConfigSettings {
    /// Reads `/tars/limit<limitinterval>`, `/tars/limit<interval>` (upstream's, lax as
    /// upstream reads them) and `/tars/cache<pollMs>`, `<reloadSecs>`, `<maxMB>` (ours, strict).
    pub fn from_config(config: &Config) -> Result<ConfigSettings, SettingError> {
        let limit =
            LimitConfig::from_keys(config.get("/tars/limit<limitinterval>"), config.get("/tars/limit<interval>"));
        let mut cache = CacheConfig::default();
        if let Some(ms) = config.number("/tars/cache<pollMs>", "a number of milliseconds")? {
            cache.poll = Duration::from_millis(ms.clamp(50, 60_000));
        }
        if let Some(s) = config.number("/tars/cache<reloadSecs>", "a number of seconds")? {
            cache.reload = Duration::from_secs(s.max(1));
        }
        if let Some(mb) = config.number("/tars/cache<maxMB>", "a number of MiB (0: no cache)")? {
            cache.max_bytes = usize::try_from(mb.saturating_mul(1 << 20)).unwrap_or(usize::MAX);
        }
        Ok(ConfigSettings { limit, cache })
    }
}

/// tarsconfig: `ConfigObj` over `db_tars`.
#[derive(Debug, Default)]
pub struct ConfigService {
    store: Option<Store>,
    shared: Option<Arc<Shared>>,
    loader: Option<Loader>,
}

impl ConfigService {
    /// tarsconfig on the config's `<db>` database, or on `store` when given (already open
    /// and migrated; `tars up` shares it).
    pub fn new(store: Option<Store>) -> ConfigService {
        ConfigService { store, ..ConfigService::default() }
    }

    /// The cache's shared state, once configured.
    pub fn cache(&self) -> Option<&Arc<Shared>> {
        self.shared.as_ref()
    }
}

impl Service for ConfigService {
    fn name(&self) -> &'static str {
        "config"
    }

    fn configure(&mut self, ctx: &ServiceContext<'_>, builder: ServerBuilder) -> Result<ServerBuilder, BoxError> {
        let settings = ConfigSettings::from_config(ctx.config)?;
        let store = match self.store.take() {
            Some(s) => s,
            None => {
                let url = StoreUrl::from_config(ctx.config, "/tars/db")?
                    .ok_or("no <db> section under <tars> (dbhost, dbport, dbuser, dbpass, dbname, or url)")?;
                let store = Store::open_url(url, Default::default())?;
                // Upstream's tarsconfig reads tables the deployment created; ours makes sure
                // they exist, and a database that is down at start is not fatal.
                if let Err(e) = store.migrate(db_tars::schema()) {
                    if !e.is_unavailable() {
                        return Err(e.into());
                    }
                    tracing::warn!(error = %e, "config: database unavailable at start; schema not checked");
                }
                store
            }
        };
        let shared = Arc::new(Shared::default());
        self.loader = Some(cache::start(store.clone(), shared.clone(), settings.cache)?);
        let limiter = Arc::new(Limiter::new(settings.limit));
        let (s1, l1) = (shared.clone(), limiter.clone());
        self.shared = Some(shared.clone());
        Ok(builder
            .servant(CONFIG_OBJ, move |_| {
                ConfigServant(ConfigImp::new(store.clone(), limiter.clone(), ShardView::new(shared.clone())))
            })
            .admin_command(CACHE_COMMAND, move |_| {
                format!(
                    "{}limiter: {} keys, {} calls answered 429, {} untracked\n",
                    s1.describe(),
                    l1.tracked(),
                    l1.refused.load(Ordering::Relaxed),
                    l1.untracked.load(Ordering::Relaxed)
                )
            }))
    }

    fn stop(&mut self) {
        self.loader = None;
    }
}
