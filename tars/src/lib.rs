//! The framework host: what `tars up` runs in one process.
//!
//! It opens the three framework databases (`db_tars`, `tars_stat`, `tars_property`), brings
//! their schemas up to date, and serves every framework service built so far on one set of
//! shards, with one `AdminObj` on the `local` endpoint. Storage health is visible there through
//! the `tars.storage` admin command.
//!
//! Services join by adding their servants to [`up`]'s builder. Served so far: the registry
//! (`tars.tarsregistry.QueryObj`, `RegistryObj`, and the K8STARS container servant
//! `tars.tarsregistry.Registry`), tarsstat (`tars.tarsstat.StatObj`) and tarsproperty
//! (`tars.tarsproperty.PropertyObj`), storage health and administration.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use tars_core_net::config::Config;
use tars_core_net::rt::IoMode;
use tars_core_net::server::{ServerBuilder, ServerError, ServerHandle};
use tars_monitor::targets::Target;
use tars_registry::service::Prepared;
use tars_registry::RegistryConfig;
use tars_sql::migrate::MigrationReport;
use tars_sql::schema::{db_tars, monitor};
use tars_sql::{Store, StoreError, StoreUrl};

/// Why the framework did not start.
#[derive(Debug, thiserror::Error)]
pub enum UpError {
    /// A database could not be opened or migrated.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The server could not be configured or started.
    #[error(transparent)]
    Server(#[from] ServerError),
    /// The generated config did not parse (a bug).
    #[error("framework config: {0}")]
    Config(String),
    /// The registry could not start.
    #[error(transparent)]
    Registry(#[from] tars_registry::service::StartError),
    /// tarsstat or tarsproperty could not start.
    #[error(transparent)]
    Monitor(#[from] tars_monitor::service::RunError),
}

/// The framework's databases. Clones of the handles are shared by every service.
#[derive(Debug, Clone)]
pub struct Stores {
    /// `db_tars`: configuration and state.
    pub db_tars: Store,
    /// `tars_stat`: hourly call statistics.
    pub stat: Store,
    /// `tars_property`: hourly custom metrics.
    pub property: Store,
}

impl Stores {
    /// The embedded databases in `dir` (created if missing): one SQLite file each.
    pub fn embedded(dir: &Path) -> Result<Stores, StoreError> {
        let open = |name| Store::open_url(StoreUrl::embedded(dir, name), Default::default());
        Ok(Stores { db_tars: open("db_tars")?, stat: open("tars_stat")?, property: open("tars_property")? })
    }

    /// Databases at three URLs (`mysql://...` or `sqlite:...`).
    pub fn open(db_tars: &str, stat: &str, property: &str) -> Result<Stores, StoreError> {
        Ok(Stores { db_tars: Store::open(db_tars)?, stat: Store::open(stat)?, property: Store::open(property)? })
    }

    /// Applies every pending migration. Blocks; call before serving.
    pub fn migrate(&self) -> Result<Vec<MigrationReport>, StoreError> {
        Ok(vec![
            self.db_tars.migrate(db_tars::schema())?,
            self.stat.migrate(monitor::stat_schema())?,
            self.property.migrate(monitor::property_schema())?,
        ])
    }

    /// The databases an upstream-style config names: `/tars/db` (db_tars), `/tars/statdb/db1`
    /// and `/tars/propertydb/db1` (each section: `dbhost`, `dbport`, `dbuser`, `dbpass`,
    /// `dbname`, or our `url=` key). A missing stat or property section means the `db_tars`
    /// server with database `tars_stat` / `tars_property`.
    pub fn from_config(config: &Config) -> Result<Stores, StoreError> {
        let db = StoreUrl::from_config(config, "/tars/db")?.ok_or_else(|| StoreError::BadUrl {
            url: "config".into(),
            reason: "no <db> section under <tars> (dbhost, dbport, dbuser, dbpass, dbname, or url)".into(),
        })?;
        let sibling = |name: &str| -> Result<StoreUrl, StoreError> {
            match &db {
                StoreUrl::Mysql { driver_url, .. } => StoreUrl::parse(&tars_sql::url_with_database(driver_url, name)),
                StoreUrl::Sqlite { path, .. } => {
                    Ok(StoreUrl::embedded(path.parent().unwrap_or_else(|| Path::new(".")), name))
                }
            }
        };
        let stat = match StoreUrl::from_config(config, "/tars/statdb/db1")? {
            Some(u) => u,
            None => sibling("tars_stat")?,
        };
        let property = match StoreUrl::from_config(config, "/tars/propertydb/db1")? {
            Some(u) => u,
            None => sibling("tars_property")?,
        };
        let open = |u: StoreUrl| Store::open_url(u, Default::default());
        Ok(Stores { db_tars: open(db)?, stat: open(stat)?, property: open(property)? })
    }

    /// `(name, store)` pairs, for the admin command.
    pub fn named(&self) -> Vec<(&'static str, Store)> {
        vec![
            ("db_tars", self.db_tars.clone()),
            ("tars_stat", self.stat.clone()),
            ("tars_property", self.property.clone()),
        ]
    }
}

/// What `tars up` needs to know.
#[derive(Debug, Clone)]
pub struct UpOptions {
    /// Where the embedded databases live.
    pub data_dir: PathBuf,
    /// Address the endpoints bind.
    pub host: String,
    /// Port of the `local` (AdminObj) endpoint; 0 picks a free one.
    pub admin_port: u16,
    /// IO driver (default: the config default, io_uring with fallback).
    pub io: Option<IoMode>,
    /// Shards (default: one per core).
    pub shards: Option<usize>,
    /// Ports of the registry's QueryObj, RegistryObj and container servant (upstream: 17890,
    /// 17891; the container servant has no upstream port, ours is 17892); 0 picks free ones.
    pub registry_ports: [u16; 3],
    /// `host:port` of the registry's Prometheus HTTP service-discovery endpoint, if wanted.
    pub prometheus_sd: Option<String>,
    /// Ports of tarsstat's StatObj and tarsproperty's PropertyObj (upstream: 18293, 18493);
    /// 0 picks free ones.
    pub monitor_ports: [u16; 2],
    /// `host:port` of the stat and property Prometheus metrics endpoints, if wanted.
    pub metrics: [Option<String>; 2],
}

/// Default ports of StatObj and PropertyObj.
pub const DEFAULT_MONITOR_PORTS: [u16; 2] = [18293, 18493];

/// Default registry ports: QueryObj, RegistryObj, container servant.
pub const DEFAULT_REGISTRY_PORTS: [u16; 3] = [17890, 17891, 17892];

/// The running framework.
#[derive(Debug)]
pub struct Running {
    /// The server (all services and the AdminObj).
    pub server: ServerHandle,
    /// The databases.
    pub stores: Stores,
    /// What each migration run did.
    pub migrations: Vec<MigrationReport>,
    /// `(object, endpoint)` for every endpoint served.
    pub endpoints: Vec<(String, String)>,
    /// The registry's background parts (route loader, jobs), when the registry is served.
    pub registry: Option<tars_registry::service::Runtime>,
    /// tarsstat's collector and writers, when StatObj is served. Dropped after the server
    /// has stopped (it is a later field), so the shards' last windows are written.
    pub stat: Option<tars_monitor::service::MonitorService<tars_stat::service::StatAgg>>,
    /// tarsproperty's, when PropertyObj is served.
    pub property: Option<tars_monitor::service::MonitorService<tars_property::service::PropAgg>>,
}

/// Default `local` (admin) port of the framework host: the registry's admin port, since the
/// registry is the first service this process will host.
pub const DEFAULT_ADMIN_PORT: u16 = 17897;

fn endpoint_string(addr: SocketAddr) -> String {
    format!("tcp -h {} -p {}", addr.ip(), addr.port())
}

/// Opens and migrates the embedded databases, then serves.
pub fn up(opts: &UpOptions) -> Result<Running, UpError> {
    let stores = Stores::embedded(&opts.data_dir)?;
    let migrations = stores.migrate()?;
    serve(opts, stores, migrations)
}

/// Serves the framework over already-open, migrated `stores`.
pub fn serve(opts: &UpOptions, stores: Stores, migrations: Vec<MigrationReport>) -> Result<Running, UpError> {
    let adapter = |obj: &str, port: u16| {
        format!("<{obj}Adapter>\nendpoint=tcp -h {} -p {port} -t 60000\nservant={obj}\n</{obj}Adapter>\n", opts.host)
    };
    let [query, registry, container] = opts.registry_ports;
    let [stat, property] = opts.monitor_ports;
    let sd = opts
        .prometheus_sd
        .as_deref()
        .map(|a| format!("<container>\nprometheusSd={a}\n</container>\n"))
        .unwrap_or_default();
    // tarsstat and tarsproperty read `/tars/metrics<listen>` from the same config, so each
    // gets its own copy with its own endpoint.
    let metrics = |i: usize| {
        opts.metrics[i].as_deref().map(|a| format!("<metrics>\nlisten={a}\n</metrics>\n")).unwrap_or_default()
    };
    let text = |metrics: String| {
        format!(
            "<tars>\n<application>\n<server>\napp=tars\nserver=tarsframework\nlocal=tcp -h {} -p {} -t 60000\n\
             datapath={}\n{}{}{}{}{}</server>\n</application>\n<objcache>\nFilePath={}\n</objcache>\n{sd}{metrics}</tars>\n",
            opts.host,
            opts.admin_port,
            opts.data_dir.display(),
            adapter("tars.tarsregistry.QueryObj", query),
            adapter("tars.tarsregistry.RegistryObj", registry),
            adapter("tars.tarsregistry.Registry", container),
            adapter(tars_stat::service::STAT_OBJ, stat),
            adapter(tars_property::service::PROPERTY_OBJ, property),
            opts.data_dir.join("registry-routes.snapshot").display(),
        )
    };
    let parse = |t: String| Config::parse(&t).map_err(|e| UpError::Config(e.to_string()));
    let (config, stat_config, property_config) =
        (parse(text(String::new()))?, parse(text(metrics(0)))?, parse(text(metrics(1)))?);
    let mut builder = ServerBuilder::from_config(&config)?;
    if let Some(io) = opts.io {
        builder = builder.io(io);
    }
    if let Some(n) = opts.shards {
        builder = builder.shards(n);
    }
    start(builder, [&config, &stat_config, &property_config], stores, migrations)
}

/// Runs the framework as an upstream-style server: `tars serve --config=FILE`. The file has
/// the usual `<tars><application><server>` part (app, server, `local`, adapters, `io`,
/// `shards`) and the `<db>` / `<statdb>` / `<propertydb>` sections of upstream's
/// `tars.framework-db` template; the databases are migrated before serving. The registry is
/// served when an adapter names its QueryObj; its settings are upstream's `<reap>` etc.
pub fn serve_config(path: &Path) -> Result<Running, UpError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| UpError::Config(format!("reading {}: {e}", path.display())))?;
    let config = Config::parse(&text).map_err(|e| UpError::Config(format!("{}: {e}", path.display())))?;
    let stores = Stores::from_config(&config)?;
    let migrations = stores.migrate()?;
    start(ServerBuilder::from_config(&config)?, [&config; 3], stores, migrations)
}

/// `configs`: the framework's, and the ones tarsstat and tarsproperty read (the same file
/// for `tars serve`).
fn start(
    builder: ServerBuilder,
    configs: [&Config; 3],
    stores: Stores,
    migrations: Vec<MigrationReport>,
) -> Result<Running, UpError> {
    let [config, stat_config, property_config] = configs;
    let named = stores.named();
    let mut builder = builder.admin_command(tars_sql::admin::COMMAND, move |_| tars_sql::admin::describe(&named));
    let server_config = builder.config().clone();
    let reg_config = RegistryConfig::from_config(config, server_config.data_path.as_deref())
        .map_err(tars_registry::service::StartError::from)?;
    let registry = if server_config.adapter_for_servant(&reg_config.query_obj).is_some() {
        let prepared = Prepared::new(stores.db_tars.clone(), reg_config)?;
        builder = prepared.add_to(builder);
        Some(prepared)
    } else {
        None
    };
    let mut stat = None;
    if server_config.adapter_for_servant(tars_stat::service::STAT_OBJ).is_some() {
        let targets = monitor_targets(stat_config, tars_stat::service::KEYS, &stores.stat)?;
        let (b, service) = tars_stat::service::prepare(builder, stat_config, targets, None)?;
        builder = b;
        stat = Some(service);
    }
    let mut property = None;
    if server_config.adapter_for_servant(tars_property::service::PROPERTY_OBJ).is_some() {
        let targets = monitor_targets(property_config, tars_property::service::KEYS, &stores.property)?;
        let (b, service) = tars_property::service::prepare(builder, property_config, targets, None)?;
        builder = b;
        property = Some(service);
    }
    let server = builder.start()?;
    let registry = match registry {
        Some(p) => Some(p.run(&server, &server_config)?),
        None => None,
    };
    let endpoints =
        server.addrs().into_iter().map(|(adapter, addr)| (adapter_object(&adapter), endpoint_string(addr))).collect();
    Ok(Running { server, stores, migrations, endpoints, registry, stat, property })
}

/// The config's database sections for a monitor service when it has any, else the
/// framework's own database for it (already open and migrated).
fn monitor_targets(
    config: &Config,
    keys: tars_monitor::service::Keys,
    store: &Store,
) -> Result<Option<Vec<Target>>, UpError> {
    let configured = tars_monitor::targets::from_config(config, keys.db_root, keys.default_prefix)
        .map_err(|e| tars_monitor::service::RunError::Config(e.into()))?;
    if !configured.is_empty() {
        return Ok(None);
    }
    Ok(Some(vec![Target {
        name: "db1".into(),
        url: store.url().clone(),
        prefix: keys.default_prefix.into(),
        weight: 1,
    }]))
}

fn adapter_object(adapter: &str) -> String {
    match adapter {
        "AdminAdapter" => "tars.tarsframework.AdminObj".to_owned(),
        other => other.strip_suffix("Adapter").unwrap_or(other).to_owned(),
    }
}
