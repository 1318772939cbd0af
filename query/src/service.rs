//! The query services as hosted [`Service`]s: the databases from the writer's own config
//! sections, `QueryObj` on the adapter that names it, `NoTarsObj` (the legacy JSON protocol,
//! [`crate::legacy`]) when an adapter names it, the `tars.query` admin command.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use tars_core_net::app::{BoxError, Service, ServiceContext};
use tars_core_net::server::ServerBuilder;
use tars_monitor::clock::Clock;
use tars_monitor::targets::{self, TargetError};
use tars_proto::config::{Config, SettingError};
use tars_protocol::tars::MonitorQueryServant;
use tars_sql::{Store, StoreError, StoreOptions, StoreUrl};

use crate::engine::{Db, Engine, Limits};
use crate::kind::Kind;
use crate::legacy::LegacyImp;
use crate::servant::QueryImp;

/// Admin command: the counters and the databases.
pub const QUERY_COMMAND: &str = "tars.query";

/// What stops the service from starting.
#[derive(Debug, thiserror::Error)]
pub enum QueryServiceError {
    /// A key has a value we cannot use.
    #[error(transparent)]
    Setting(#[from] SettingError),
    /// A database section is wrong.
    #[error(transparent)]
    Target(#[from] TargetError),
    /// A store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The settings of [`crate`]'s module doc, read from a config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// The answer's limits.
    pub limits: Limits,
    /// Connections per database for sections given by `dbhost` (a `url` says its own `pool=`).
    pub pool: usize,
}

impl Settings {
    /// Reads `/tars<interval>`, `/tars/threadpool<count_db_tpoolsize>` (upstream's) and
    /// `/tars/query<maxAnswerKB>`, `<maxRows>`, `<timeoutMs>` (ours).
    pub fn from_config(config: &Config) -> Result<Settings, SettingError> {
        let mut limits = Limits::default();
        let mut pool = 4;
        if let Some(m) = config.number("/tars<interval>", "a number of minutes")? {
            limits.interval_minutes = i64::try_from(m.clamp(1, 1440)).unwrap_or(5);
        }
        if let Some(n) = config.number("/tars/threadpool<count_db_tpoolsize>", "a number of connections")? {
            pool = usize::try_from(n.clamp(1, 64)).unwrap_or(4);
        }
        if let Some(kb) = config.number("/tars/query<maxAnswerKB>", "a number of KiB")? {
            // Below the default 10 MiB frame limit of the callers.
            limits.max_answer_bytes = usize::try_from(kb.clamp(1, 8192) << 10).unwrap_or(4 << 20);
        }
        if let Some(n) = config.number("/tars/query<maxRows>", "a number of rows")? {
            limits.max_rows = usize::try_from(n.clamp(1, 10_000_000)).unwrap_or(100_000);
        }
        if let Some(ms) = config.number("/tars/query<timeoutMs>", "a number of milliseconds")? {
            limits.timeout = Duration::from_millis(ms.clamp(100, 600_000));
        }
        Ok(Settings { limits, pool })
    }
}

/// Opens the databases configured for `kind` (the writer's sections, with their `tbname`).
pub fn open_dbs(config: &Config, kind: Kind, pool: usize) -> Result<Vec<Db>, QueryServiceError> {
    let root = kind.db_root();
    let mut dbs = Vec::new();
    for target in targets::from_config(config, root, kind.default_prefix())? {
        let mut url = target.url;
        let has_url = config.get(&format!("{root}/{}<url>", target.name)).is_some_and(|u| !u.trim().is_empty());
        if !has_url {
            if let StoreUrl::Mysql { params, .. } = &mut url {
                params.pool = pool;
            }
        }
        // Stores connect lazily: a database that is down now is a gap in answers, not a
        // failed start.
        let store = Store::open_url(url, StoreOptions::default())?;
        dbs.push(Db { name: target.name, prefix: target.prefix, store });
    }
    Ok(dbs)
}

/// tarsquerystat or tarsqueryproperty.
#[derive(Debug)]
pub struct QueryService {
    kind: Kind,
    clock: Clock,
    dbs: Option<Vec<Db>>,
    engine: Option<Arc<Engine>>,
}

impl QueryService {
    /// The service of `kind` on the system clock.
    pub fn new(kind: Kind) -> QueryService {
        QueryService { kind, clock: Clock::system(), dbs: None, engine: None }
    }

    /// The same on `clock` (tests: `lastTime` depends on the time).
    pub fn with_clock(mut self, clock: Clock) -> QueryService {
        self.clock = clock;
        self
    }

    /// Queries `dbs` instead of the config's sections (`tars up` hands over the stores its
    /// writers already have open, so an embedded database has one handle).
    pub fn with_dbs(mut self, dbs: Vec<Db>) -> QueryService {
        self.dbs = Some(dbs);
        self
    }

    /// The engine, once configured.
    pub fn engine(&self) -> Option<&Arc<Engine>> {
        self.engine.as_ref()
    }
}

impl Service for QueryService {
    fn name(&self) -> &'static str {
        match self.kind {
            Kind::Stat => "querystat",
            Kind::Property => "queryproperty",
        }
    }

    fn configure(&mut self, ctx: &ServiceContext<'_>, builder: ServerBuilder) -> Result<ServerBuilder, BoxError> {
        let settings = Settings::from_config(ctx.config)?;
        let dbs = match self.dbs.take() {
            Some(dbs) => dbs,
            None => open_dbs(ctx.config, self.kind, settings.pool)?,
        };
        if dbs.is_empty() {
            tracing::warn!(root = self.kind.db_root(), "query: no database configured; every query answers -1");
        }
        for db in &dbs {
            tracing::info!(db = %db.name, url = %db.store.url(), prefix = %db.prefix, "query: database");
        }
        let engine = Arc::new(Engine::new(self.kind, dbs, settings.limits, self.clock.clone()));
        self.engine = Some(engine.clone());
        let shown = engine.clone();
        let legacy = self.kind.legacy_servant();
        let builder = if builder.config().adapters.iter().any(|a| a.servant == legacy) {
            // Upstream's `getDomainKey`: the section's key lines are the slave names.
            let not_tars: BTreeSet<String> =
                ctx.config.params("/tars/notarsslavename").into_iter().map(|(k, _)| k.trim().to_owned()).collect();
            let (engine, not_tars) = (engine.clone(), Arc::new(not_tars));
            builder.raw_servant(legacy, move |_| LegacyImp::new(engine.clone(), not_tars.clone()))
        } else {
            builder
        };
        Ok(builder
            .servant(self.kind.servant(), move |_| MonitorQueryServant(QueryImp::new(engine.clone())))
            .admin_command(QUERY_COMMAND, move |_| {
                let mut text = format!("{} ({})\n", shown.kind().server(), shown.kind().dataid());
                text.push_str(&shown.counters.describe());
                for db in shown.dbs() {
                    let h = db.store.health();
                    text.push_str(&format!("{}: {} tables {}HH, {:?}\n", db.name, db.store.url(), db.prefix, h.state));
                }
                text
            }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_read_and_bad_ones_named() {
        let c = Config::parse(
            "<tars>\ninterval=10\n<threadpool>\ncount_db_tpoolsize=2\n</threadpool>\n<query>\nmaxAnswerKB=64\n\
             maxRows=5\ntimeoutMs=2000\n</query>\n</tars>\n",
        )
        .expect("parses");
        let s = Settings::from_config(&c).expect("valid");
        assert_eq!(s.limits.interval_minutes, 10);
        assert_eq!((s.pool, s.limits.max_answer_bytes, s.limits.max_rows), (2, 64 << 10, 5));
        assert_eq!(s.limits.timeout, Duration::from_secs(2));
        let c = Config::parse("<tars>\n<query>\nmaxRows=many\n</query>\n</tars>\n").expect("parses");
        let e = Settings::from_config(&c).expect_err("refused");
        assert!(e.to_string().contains("maxRows"), "{e}");
    }

    #[test]
    fn databases_come_from_the_writers_sections_with_their_prefix() {
        let c = Config::parse(
            "<tars>\n<propertydb>\n<db1>\nurl=sqlite:/tmp/x1.sqlite3\ntbname=p_one_\n</db1>\n<db2>\ndbhost=h\n\
             dbname=tars_property\n</db2>\n</propertydb>\n</tars>\n",
        )
        .expect("parses");
        let dbs = open_dbs(&c, Kind::Property, 3).expect("valid");
        let got: Vec<_> = dbs.iter().map(|d| (d.name.as_str(), d.prefix.as_str())).collect();
        assert_eq!(got, [("db1", "p_one_"), ("db2", "tars_property_")]);
        assert_eq!(dbs[1].store.url().params().pool, 3);
        assert!(open_dbs(&c, Kind::Stat, 3).expect("valid").is_empty());
    }
}
