//! The framework host: what `tars up` runs in one process.
//!
//! It opens the three framework databases (`db_tars`, `tars_stat`, `tars_property`), brings
//! their schemas up to date, and serves every framework service built so far on one set of
//! shards, with one `AdminObj` on the `local` endpoint. Storage health is visible there through
//! the `tars.storage` admin command.
//!
//! Services join by adding their servants to [`up`]'s builder. Served so far: the registry
//! (`tars.tarsregistry.QueryObj`, `RegistryObj`, and the K8STARS container servant
//! `tars.tarsregistry.Registry`), tarsstat (`tars.tarsstat.StatObj`), tarsproperty
//! (`tars.tarsproperty.PropertyObj`), tarsconfig (`tars.tarsconfig.ConfigObj`),
//! tarsAdminRegistry (`tars.tarsAdminRegistry.AdminRegObj`), tarslog (`tars.tarslog.LogObj`),
//! tarsnotify (`tars.tarsnotify.NotifyObj`), tarsquerystat and tarsqueryproperty (their
//! `QueryObj`s, over the databases tarsstat and tarsproperty write), storage health and
//! administration.
//!
//! [`serve`] (what `tars up` runs) seeds `db_tars` ([`seed`]): the profile templates, and the
//! `t_server_conf` / `t_adapter_conf` rows of the framework services it serves at the
//! addresses they bound, so a client with only the locator finds them.

pub mod seed;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use tars_core_net::app::{AppError, Application};
use tars_core_net::rt::IoMode;
use tars_core_net::server::adapter::{AdapterConfig, ServerConfig, FRAMEWORK_MAX_CONNS};
use tars_core_net::server::{ServerError, ServerHandle};
use tars_monitor::service::{MonitorHost, MonitorService};
use tars_monitor::targets::Target;
use tars_proto::config::Config;
use tars_proto::endpoint::Endpoint;
use tars_registry::service::RegistryService;
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
    /// A service or the server could not start.
    #[error(transparent)]
    App(#[from] AppError),
}

/// Upstream's names of the framework's databases: configuration, call statistics, properties.
pub const DATABASE_NAMES: [&str; 3] = ["db_tars", "tars_stat", "tars_property"];

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

    /// The three databases on one MySQL/MariaDB server (`mysql://user:pass@host:port[/db]`)
    /// under upstream's names, `db_tars`, `tars_stat` and `tars_property`, each created when
    /// missing (TarsWeb reads `db_tars` by that name).
    pub fn on_server(url: &str) -> Result<Stores, StoreError> {
        let server = Store::open(url)?;
        server.run_blocking(|s| {
            s.exec_script(
                &DATABASE_NAMES.map(|n| format!("CREATE DATABASE IF NOT EXISTS `{n}` DEFAULT CHARSET utf8")).join(";"),
            )
        })?;
        let [db_tars, stat, property] = DATABASE_NAMES.map(|n| tars_sql::url_with_database(url, n));
        Stores::open(&db_tars, &stat, &property)
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
    /// Port of tarsconfig's ConfigObj (upstream: 18193); 0 picks a free one.
    pub config_port: u16,
    /// Port of tarsAdminRegistry's AdminRegObj (upstream: 12000); 0 picks a free one.
    pub adminreg_port: u16,
    /// Ports of this host's tarsnode: NodeObj and ServerObj (upstream: 19385, 19386); 0 picks
    /// free ones. `None`: no node (the framework only).
    pub node_ports: Option<[u16; 2]>,
    /// Port of tarslog's LogObj (upstream: 18993); 0 picks a free one. Files go under
    /// `<data_dir>/remote_app_log`.
    pub log_port: u16,
    /// Port of tarsnotify's NotifyObj (upstream: 18593); 0 picks a free one.
    pub notify_port: u16,
    /// Ports of tarsquerystat's and tarsqueryproperty's QueryObj (upstream: 18393, 18693);
    /// 0 picks free ones.
    pub query_ports: [u16; 2],
    /// Port of the HTTP JSON gateway on `host` (upstream TarsGateway's: 8200); 0 picks a
    /// free one. `None`: no gateway.
    pub gateway_port: Option<u16>,
    /// Ports of the query services' legacy JSON protocol objects (`NoTarsObj`, for TarsWeb
    /// 1.x; `protocol=not_tars`); 0 picks free ones. `None` (the default): not served, as in
    /// upstream since v2.1.
    pub legacy_query_ports: Option<[u16; 2]>,
}

impl UpOptions {
    /// Upstream's ports on 127.0.0.1, this host's node included, data in `data_dir`: what
    /// `tars up` runs without flags.
    pub fn standard(data_dir: PathBuf) -> UpOptions {
        UpOptions {
            data_dir,
            host: "127.0.0.1".into(),
            admin_port: DEFAULT_ADMIN_PORT,
            io: None,
            shards: None,
            registry_ports: DEFAULT_REGISTRY_PORTS,
            prometheus_sd: None,
            monitor_ports: DEFAULT_MONITOR_PORTS,
            metrics: [None, None],
            config_port: DEFAULT_CONFIG_PORT,
            adminreg_port: DEFAULT_ADMINREG_PORT,
            node_ports: Some(DEFAULT_NODE_PORTS),
            log_port: DEFAULT_LOG_PORT,
            notify_port: DEFAULT_NOTIFY_PORT,
            query_ports: DEFAULT_QUERY_PORTS,
            gateway_port: Some(tars_gateway::DEFAULT_PORT),
            legacy_query_ports: None,
        }
    }

    /// The same with every port picked free when binding (tests, or several frameworks on
    /// one host).
    pub fn free_ports(data_dir: PathBuf) -> UpOptions {
        UpOptions {
            admin_port: 0,
            registry_ports: [0; 3],
            monitor_ports: [0; 2],
            config_port: 0,
            adminreg_port: 0,
            node_ports: Some([0, 0]),
            log_port: 0,
            notify_port: 0,
            query_ports: [0; 2],
            gateway_port: Some(0),
            ..UpOptions::standard(data_dir)
        }
    }
}

/// Default port of LogObj.
pub const DEFAULT_LOG_PORT: u16 = 18993;

/// Default port of NotifyObj.
pub const DEFAULT_NOTIFY_PORT: u16 = 18593;

/// Default ports of tarsquerystat's and tarsqueryproperty's QueryObj.
pub const DEFAULT_QUERY_PORTS: [u16; 2] = [18393, 18693];

/// Default ports of tarsnode's NodeObj and ServerObj.
pub const DEFAULT_NODE_PORTS: [u16; 2] = [19385, 19386];

/// Default port of AdminRegObj.
pub const DEFAULT_ADMINREG_PORT: u16 = 12000;

/// Default port of ConfigObj.
pub const DEFAULT_CONFIG_PORT: u16 = 18193;

/// Default ports of StatObj and PropertyObj.
pub const DEFAULT_MONITOR_PORTS: [u16; 2] = [18293, 18493];

/// Default registry ports: QueryObj, RegistryObj, container servant.
pub const DEFAULT_REGISTRY_PORTS: [u16; 3] = [17890, 17891, 17892];

/// The running framework.
#[derive(Debug)]
pub struct Running {
    /// The server and the services it hosts.
    pub app: tars_core_net::app::Running,
    /// The databases.
    pub stores: Stores,
    /// What each migration run did.
    pub migrations: Vec<MigrationReport>,
    /// `(object, endpoint)` for every endpoint served.
    pub endpoints: Vec<(String, String)>,
    /// What seeding `db_tars` changed (nothing for `tars serve`).
    pub seeded: seed::Seeded,
}

impl Running {
    /// The server (all services and the AdminObj).
    pub fn server(&self) -> &ServerHandle {
        self.app.server()
    }

    /// The registry's background parts (route loader, jobs), when the registry is served.
    pub fn registry(&self) -> Option<&tars_registry::service::Runtime> {
        self.app.service::<RegistryService>().and_then(RegistryService::runtime)
    }

    /// tarsstat's collector and writers, when StatObj is served.
    pub fn stat(&self) -> Option<&MonitorService<tars_stat::service::StatAgg>> {
        self.app.service::<MonitorHost<tars_stat::service::StatAgg>>().and_then(MonitorHost::service)
    }

    /// tarsproperty's, when PropertyObj is served.
    pub fn property(&self) -> Option<&MonitorService<tars_property::service::PropAgg>> {
        self.app.service::<MonitorHost<tars_property::service::PropAgg>>().and_then(MonitorHost::service)
    }

    /// The HTTP JSON gateway's address, when served.
    pub fn gateway(&self) -> Option<SocketAddr> {
        self.app.service::<tars_gateway::GatewayService>().and_then(tars_gateway::GatewayService::addr)
    }

    /// This host's node, when served.
    pub fn node(&self) -> Option<tars_node::NodeHandle> {
        self.app.service::<tars_node::NodeService>().and_then(tars_node::NodeService::handle)
    }

    /// Starts a graceful stop.
    pub fn shutdown(&self) {
        self.app.shutdown();
    }

    /// Serves until stopped, then stops the services in reverse order (stat and property
    /// write the shards' last windows).
    pub fn wait(self) -> Result<(), AppError> {
        self.app.wait()
    }
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

/// The framework host's config, built from typed parts: the server, every framework
/// object's adapter, and the services' own keys.
fn up_config(opts: &UpOptions) -> Result<Config, UpError> {
    let endpoint = |port: u16| {
        Endpoint::parse(&format!("tcp -h {} -p {port} -t 60000", opts.host))
            .map_err(|e| UpError::Config(format!("--host {}: {e}", opts.host)))
    };
    let [mut query, mut registry, container] = opts.registry_ports;
    let [stat, property] = opts.monitor_ports;
    let locator = opts.node_ports.is_some() || opts.gateway_port.is_some();
    if locator {
        // The node and the gateway find the registry by its endpoints, which they read before
        // anything binds.
        query = fixed_port(&opts.host, query)?;
        registry = fixed_port(&opts.host, registry)?;
    }
    let mut server = ServerConfig::new("tars", "tarsframework").with_local(endpoint(opts.admin_port)?);
    server.data_path = Some(opts.data_dir.display().to_string());
    // The framework's own notices and remote log lines go to the tarsnotify and tarslog it
    // hosts, as stat and property reports do below, when their ports are known before binding.
    if opts.notify_port != 0 {
        server.notify = Some(format!("{}@{}", tars_notify::NOTIFY_OBJ, endpoint(opts.notify_port)?));
    }
    if opts.log_port != 0 {
        server.log = Some(format!("{}@{}", tars_log::LOG_OBJ, endpoint(opts.log_port)?));
    }
    for (servant, port) in [
        ("tars.tarsregistry.QueryObj", query),
        ("tars.tarsregistry.RegistryObj", registry),
        ("tars.tarsregistry.Registry", container),
        (tars_stat::service::STAT_OBJ, stat),
        (tars_property::service::PROPERTY_OBJ, property),
        (tars_config::CONFIG_OBJ, opts.config_port),
        (tars_adminreg::ADMIN_REG_OBJ, opts.adminreg_port),
        (tars_log::LOG_OBJ, opts.log_port),
        (tars_notify::NOTIFY_OBJ, opts.notify_port),
        (tars_query::Kind::Stat.servant(), opts.query_ports[0]),
        (tars_query::Kind::Property.servant(), opts.query_ports[1]),
    ] {
        let mut adapter = AdapterConfig::for_servant(servant, endpoint(port)?);
        adapter.max_conns = FRAMEWORK_MAX_CONNS;
        server = server.with_adapter(adapter);
    }
    if let Some([stat_json, property_json]) = opts.legacy_query_ports {
        for (servant, port) in [
            (tars_query::Kind::Stat.legacy_servant(), stat_json),
            (tars_query::Kind::Property.legacy_servant(), property_json),
        ] {
            let mut adapter = AdapterConfig::for_servant(servant, endpoint(port)?);
            adapter.max_conns = FRAMEWORK_MAX_CONNS;
            adapter.protocol = "not_tars".to_owned();
            server = server.with_adapter(adapter);
        }
    }
    if let Some([node, server_obj]) = opts.node_ports {
        for (servant, port) in [(tars_node::service::NODE_OBJ, node), (tars_node::confgen::NODE_SERVER_OBJ, server_obj)]
        {
            let mut adapter = AdapterConfig::for_servant(servant, endpoint(port)?);
            adapter.max_conns = FRAMEWORK_MAX_CONNS;
            server = server.with_adapter(adapter);
        }
    }
    let bad = |e: tars_proto::config::ConfigError| UpError::Config(e.to_string());
    let mut config = server.to_config().map_err(bad)?;
    // The framework reports its own calls like any TARS server (upstream's framework templates
    // give every service `stat` and `property`): to the tarsstat and tarsproperty it hosts,
    // when their ports are fixed. Their reports are oneway, so they count no calls of their own.
    config.set("/tars/application/client<modulename>", "tars.tarsframework").map_err(bad)?;
    for (key, servant, port) in
        [("stat", tars_stat::service::STAT_OBJ, stat), ("property", tars_property::service::PROPERTY_OBJ, property)]
    {
        if port != 0 {
            config
                .set(&format!("/tars/application/client<{key}>"), &format!("{servant}@{}", endpoint(port)?))
                .map_err(bad)?;
        }
    }
    // Nodes registering, their state reports and the secrets handed to them: this machine
    // only. Opening it to other hosts is an explicit `/tars/registry<nodeallow>` setting.
    let node_ip = seed::node_ip(&opts.host);
    let allow = if node_ip.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback()) {
        tars_registry::peers::LOOPBACK.to_owned()
    } else {
        format!("{},{node_ip}", tars_registry::peers::LOOPBACK)
    };
    config.set(tars_registry::peers::NODE_ALLOW_KEY, &allow).map_err(bad)?;
    if opts.node_ports.is_some() {
        // This host's node: named as the seeded framework rows are, reaching the registry
        // this process serves, its servers' directories and logs under the data directory.
        let at = |port: u16| format!("tcp -h {node_ip} -p {port}");
        config.set("/tars/application/server<localip>", &node_ip).map_err(bad)?;
        config
            .set("/tars/application/server<logpath>", &opts.data_dir.join("app_log").display().to_string())
            .map_err(bad)?;
        config
            .set("/tars/node<registryObj>", &format!("tars.tarsregistry.RegistryObj@{}", at(registry)))
            .map_err(bad)?;
    }
    if locator {
        config
            .set(
                "/tars/application/client<locator>",
                &format!("tars.tarsregistry.QueryObj@tcp -h {node_ip} -p {query}"),
            )
            .map_err(bad)?;
    }
    if let Some(port) = opts.gateway_port {
        let listen =
            if opts.host.contains(':') { format!("[{}]:{port}", opts.host) } else { format!("{}:{port}", opts.host) };
        config.set("/tars/gateway<listen>", &listen).map_err(bad)?;
    }
    // tarslog's root, where upstream's template puts it.
    config.set("/tars/log<logpath>", &opts.data_dir.join("remote_app_log").display().to_string()).map_err(bad)?;
    let snapshot = opts.data_dir.join("registry-routes.snapshot");
    config.set("/tars/objcache<FilePath>", &snapshot.display().to_string()).map_err(bad)?;
    if let Some(sd) = &opts.prometheus_sd {
        config.set("/tars/container<prometheusSd>", sd).map_err(bad)?;
    }
    Ok(config)
}

/// Serves the framework over already-open, migrated `stores`.
pub fn serve(opts: &UpOptions, stores: Stores, migrations: Vec<MigrationReport>) -> Result<Running, UpError> {
    let config = up_config(opts)?;
    // tarsstat and tarsproperty read `/tars/metrics<listen>`, so each gets its own copy of
    // the config with its own endpoint.
    let with_metrics = |i: usize| -> Result<Config, UpError> {
        let mut c = config.clone();
        if let Some(listen) = &opts.metrics[i] {
            c.set("/tars/metrics<listen>", listen).map_err(|e| UpError::Config(e.to_string()))?;
        }
        Ok(c)
    };
    let configs = [config.clone(), with_metrics(0)?, with_metrics(1)?];
    let mut app = Application::new(config)?;
    if let Some(io) = opts.io {
        app = app.io(io);
    }
    if let Some(n) = opts.shards {
        app = app.shards(n);
    }
    let templates = seed::seed_templates(&stores.db_tars, seed::templates(&stores)?)?;
    // The framework services run in this process: the node must not start them again.
    let hosted = seed::FRAMEWORK.iter().map(|s| format!("tars.{}", s.server)).collect();
    let mut running = start(app, configs, stores, migrations, hosted)?;
    match seed_running(opts, &running) {
        Ok(mut seeded) => {
            seeded.templates = templates;
            running.seeded = seeded;
            Ok(running)
        }
        Err(e) => {
            running.shutdown();
            let _ = running.wait();
            Err(e.into())
        }
    }
}

/// The framework rows of every object `running` serves, at the address it bound.
fn seed_running(opts: &UpOptions, running: &Running) -> Result<seed::Seeded, StoreError> {
    let bound: Vec<(&str, SocketAddr)> = seed::FRAMEWORK
        .iter()
        .flat_map(|s| s.objects)
        .filter_map(|o| Some((o.servant, running.server().addr(&format!("{}Adapter", o.servant))?)))
        .collect();
    seed::seed_servers(&running.stores.db_tars, &seed::node_ip(&opts.host), &bound)
}

/// Runs the framework as an upstream-style server: `tars serve --config=FILE`. The file has
/// the usual `<tars><application><server>` part (app, server, `local`, adapters, `io`,
/// `shards`) and the `<db>` / `<statdb>` / `<propertydb>` sections of upstream's
/// `tars.framework-db` template; the databases are migrated before serving. The registry is
/// served when an adapter names its QueryObj; its settings are upstream's `<reap>` etc.
pub fn serve_config(path: &Path) -> Result<Running, UpError> {
    let app = Application::from_file(path)?;
    let config = app.config().clone();
    let stores = Stores::from_config(&config)?;
    let migrations = stores.migrate()?;
    start(app, [config.clone(), config.clone(), config], stores, migrations, Vec::new())
}

/// `port`, or when 0 a port free on `host` now (bound and released: another process could
/// take it before the framework binds, which the bind then reports).
fn fixed_port(host: &str, port: u16) -> Result<u16, UpError> {
    if port != 0 {
        return Ok(port);
    }
    let l = std::net::TcpListener::bind((host, 0)).map_err(|e| UpError::Config(format!("--host {host}: {e}")))?;
    l.local_addr().map(|a| a.port()).map_err(|e| UpError::Config(e.to_string()))
}

/// Hosts every framework service whose servant has an adapter. `configs`: the framework's,
/// and the ones tarsstat and tarsproperty read (the same file for `tars serve`).
fn start(
    app: Application,
    configs: [Config; 3],
    stores: Stores,
    migrations: Vec<MigrationReport>,
    hosted: Vec<String>,
) -> Result<Running, UpError> {
    let [_, stat_config, property_config] = configs;
    let named = stores.named();
    let mut app =
        app.with_builder(|b| b.admin_command(tars_sql::admin::COMMAND, move |_| tars_sql::admin::describe(&named)));
    let server_config = app.server_config().clone();
    let reg_config = RegistryConfig::from_config(app.config(), server_config.data_path.as_deref())
        .map_err(tars_registry::service::StartError::from)?;
    if server_config.adapter_for_servant(&reg_config.query_obj).is_some() {
        app = app.service(RegistryService::new(Some(stores.db_tars.clone())));
    }
    let stat_targets = monitor_targets(&stat_config, tars_stat::service::KEYS, &stores.stat)?;
    let property_targets = monitor_targets(&property_config, tars_property::service::KEYS, &stores.property)?;
    if server_config.adapter_for_servant(tars_stat::service::STAT_OBJ).is_some() {
        app = app.service(tars_stat::service::host(stat_targets.clone(), None).with_config(stat_config));
    }
    if server_config.adapter_for_servant(tars_property::service::PROPERTY_OBJ).is_some() {
        app = app.service(tars_property::service::host(property_targets.clone(), None).with_config(property_config));
    }
    // The query services read what the writers write: the same stores when the framework
    // chose them, else the config's `<statdb>` / `<propertydb>` sections as upstream's do.
    for (kind, targets, store) in [
        (tars_query::Kind::Stat, stat_targets, &stores.stat),
        (tars_query::Kind::Property, property_targets, &stores.property),
    ] {
        if server_config.adapter_for_servant(kind.servant()).is_some() {
            let mut query = tars_query::QueryService::new(kind);
            if let Some(targets) = targets {
                let dbs = targets
                    .into_iter()
                    .map(|t| tars_query::engine::Db { name: t.name, prefix: t.prefix, store: store.clone() })
                    .collect();
                query = query.with_dbs(dbs);
            }
            app = app.service(query);
        }
    }
    if server_config.adapter_for_servant(tars_log::LOG_OBJ).is_some() {
        app = app.service(tars_log::LogService::new());
    }
    if server_config.adapter_for_servant(tars_notify::NOTIFY_OBJ).is_some() {
        app = app.service(tars_notify::NotifyService::new(Some(stores.db_tars.clone())));
    }
    // No servant of its own: `tars up` asks for it with `/tars/gateway<listen>`.
    if app.config().get("/tars/gateway<listen>").is_some() {
        app = app.service(tars_gateway::GatewayService::new());
    }
    if server_config.adapter_for_servant(tars_config::CONFIG_OBJ).is_some() {
        app = app.service(tars_config::ConfigService::new(Some(stores.db_tars.clone())));
    }
    if server_config.adapter_for_servant(tars_adminreg::ADMIN_REG_OBJ).is_some() {
        app = app.service(tars_adminreg::AdminRegService::new(Some(stores.db_tars.clone())));
    }
    // Last: it registers with the registry above, which is bound by the time it starts.
    if server_config.adapter_for_servant(tars_node::confgen::NODE_SERVER_OBJ).is_some() {
        let opts = tars_node::NodeOptions { hosted, ..tars_node::NodeOptions::default() };
        app = app.service(tars_node::NodeService::new(opts));
    }
    let app = app.start()?;
    let endpoints = app
        .server()
        .addrs()
        .into_iter()
        .map(|(adapter, addr)| (adapter_object(&adapter), endpoint_string(addr)))
        .collect();
    Ok(Running { app, stores, migrations, endpoints, seeded: seed::Seeded::default() })
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn opts(monitor_ports: [u16; 2]) -> UpOptions {
        UpOptions { monitor_ports, node_ports: None, ..UpOptions::free_ports(PathBuf::from("/var/lib/tars")) }
    }

    #[test]
    fn the_framework_reports_to_its_own_stat_and_property() {
        let config = up_config(&opts(DEFAULT_MONITOR_PORTS)).unwrap();
        let client = tars_core_net::client::config::ClientConfig::from_config(&config).unwrap();
        assert_eq!(client.module_name.as_deref(), Some("tars.tarsframework"));
        assert_eq!(
            config.get("/tars/application/client<stat>"),
            Some("tars.tarsstat.StatObj@tcp -h 127.0.0.1 -p 18293 -t 60000")
        );
        assert_eq!(
            config.get("/tars/application/client<property>"),
            Some("tars.tarsproperty.PropertyObj@tcp -h 127.0.0.1 -p 18493 -t 60000")
        );
        assert_eq!(config.get("/tars/application/server<notify>"), None, "free port: not known yet");
        let standard = up_config(&UpOptions::standard(PathBuf::from("/var/lib/tars"))).unwrap();
        assert_eq!(
            standard.get("/tars/application/server<notify>"),
            Some("tars.tarsnotify.NotifyObj@tcp -h 127.0.0.1 -p 18593 -t 60000")
        );
        assert_eq!(
            standard.get("/tars/application/server<log>"),
            Some("tars.tarslog.LogObj@tcp -h 127.0.0.1 -p 18993 -t 60000")
        );
        assert_eq!(standard.get("/tars/log<logpath>"), Some("/var/lib/tars/remote_app_log"));
        // A free port is not known before the bind: then nothing is reported, as with the key absent.
        let config = up_config(&opts([0, 18493])).unwrap();
        assert_eq!(config.get("/tars/application/client<stat>"), None);
        assert!(config.get("/tars/application/client<property>").is_some());
    }

    #[test]
    fn framework_objects_take_as_many_connections_as_upstream_gives_them() {
        let config = up_config(&opts(DEFAULT_MONITOR_PORTS)).unwrap();
        let server = ServerConfig::from_config(&config).unwrap();
        let framework: Vec<_> = server.adapters.iter().filter(|a| a.name != "AdminAdapter").collect();
        assert_eq!(framework.len(), 11);
        for a in framework {
            assert_eq!(a.max_conns, 10240, "{}", a.name);
        }
    }

    #[test]
    fn nodes_are_answered_from_this_machine_only() {
        let config = up_config(&opts(DEFAULT_MONITOR_PORTS)).unwrap();
        assert_eq!(config.get(tars_registry::peers::NODE_ALLOW_KEY), Some(tars_registry::peers::LOOPBACK));
    }
}
