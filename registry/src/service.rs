//! Putting the registry together: routes loaded, servants on the server builder, then (once
//! the server has bound its ports) self-registration, jobs and the Prometheus endpoint.
//!
//! Two entry points: [`start`] runs a registry from an upstream-style config (the
//! `tarsregistry` binary), and [`Prepared`] lets a host that serves several services on one
//! server (the `tars up` framework host) add the registry's servants to its own builder.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use tars_core_net::app::{AppError, Application, BoxError, Running, Service, ServiceContext};
use tars_core_net::rt::IoMode;
use tars_core_net::server::adapter::ServerConfig;
use tars_core_net::server::{ServerBuilder, ServerError, ServerHandle};
use tars_proto::config::Config;
use tars_proto::endpoint::Endpoint;
use tars_protocol::tars::{tarsregistryServant, RegistryServant};
use tars_sql::schema::db_tars;
use tars_sql::{Store, StoreError, StoreUrl};

use crate::config::ConfigError;
use crate::container::ContainerImp;
use crate::jobs::{JobsHandle, OwnObject};
use crate::query_obj::{QueryImp, QueryServant};
use crate::registry_obj::RegistryImp;
use crate::routes::{LoaderHandle, LoaderStatus, RouteHub};
use crate::{Context, RegistryConfig};

/// Admin command: the route cache's state.
pub const ROUTES_COMMAND: &str = "tars.routes";
/// Admin command (K8STARS): `clean [dryRun] [datetime]`.
pub const CLEAN_COMMAND: &str = "clean";

/// Why the registry did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A registry key is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The config file could not be read or parsed.
    #[error("{0}")]
    ConfigFile(String),
    /// The database could not be opened or migrated.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The server could not start.
    #[error(transparent)]
    Server(#[from] ServerError),
    /// A background thread or the HTTP endpoint could not start.
    #[error("registry: {0}")]
    Io(#[from] std::io::Error),
}

/// The registry's state before the server starts: routes loaded, loader running.
#[derive(Debug)]
pub struct Prepared {
    ctx: Arc<Context>,
    hub: Arc<RouteHub>,
    loader: LoaderHandle,
}

/// The registry's background parts once serving. Dropping it stops them.
#[derive(Debug)]
pub struct Runtime {
    /// The shared context.
    pub ctx: Arc<Context>,
    /// The route hub (its version counts published changes).
    pub hub: Arc<RouteHub>,
    /// The objects this registry published, servant → endpoint.
    pub objects: BTreeMap<String, String>,
    /// The Prometheus HTTP service-discovery endpoint, when configured.
    pub prometheus_sd: Option<SocketAddr>,
    _http: Option<crate::http_sd::HttpSd>,
    _jobs: JobsHandle,
    loader: LoaderHandle,
}

impl Runtime {
    /// The loader's status.
    pub fn loader_status(&self) -> &LoaderStatus {
        &self.loader.status
    }
}

impl Prepared {
    /// Loads the routes (database, else the snapshot) and starts the loader.
    pub fn new(store: Store, config: RegistryConfig) -> Result<Prepared, StartError> {
        let ctx = Context::new(store, config);
        let hub = RouteHub::new();
        let loader = crate::routes::loader::start(ctx.store.clone(), hub.clone(), &ctx.config)?;
        Ok(Prepared { ctx, hub, loader })
    }

    /// Adds QueryObj, RegistryObj and the container servant (under the configured names) and
    /// the `tars.routes` / `clean` admin commands to `builder`. Servants without an adapter
    /// in the config are simply never served.
    pub fn add_to(&self, builder: ServerBuilder) -> ServerBuilder {
        let c = &self.ctx.config;
        let hub = self.hub.clone();
        let (ctx1, ctx2, ctx3, ctx4) = (self.ctx.clone(), self.ctx.clone(), self.ctx.clone(), self.hub.clone());
        let status = self.loader.status.clone();
        builder
            .servant(c.query_obj.clone(), move |_| QueryServant::new(QueryImp::new(hub.subscribe())))
            .servant(c.registry_obj.clone(), move |_| RegistryServant(RegistryImp::new(ctx1.clone())))
            .servant(c.container_obj.clone(), move |_| tarsregistryServant(ContainerImp::new(ctx2.clone())))
            .admin_command(ROUTES_COMMAND, move |_| describe(&ctx4, &status, &ctx3))
            .admin_command_async(CLEAN_COMMAND, {
                let ctx = self.ctx.clone();
                move |params| crate::container::clean_command(ctx.clone(), params)
            })
    }

    /// Publishes this registry in `t_registry_info` (from the addresses `server` bound) and
    /// starts the jobs and the Prometheus endpoint.
    pub fn run(self, server: &ServerHandle, config: &ServerConfig) -> Result<Runtime, StartError> {
        let c = &self.ctx.config;
        let mut objects = BTreeMap::new();
        let mut locator_id = String::new();
        for a in
            config.adapters.iter().filter(|a| [&c.query_obj, &c.registry_obj, &c.container_obj].contains(&&a.servant))
        {
            let Some(addr) = server.addr(&a.name) else { continue };
            let mut ep = a.endpoint.clone();
            ep.port = addr.port();
            if ep.host == "0.0.0.0" || ep.host == "::" {
                ep.host = config.local_ip.clone().unwrap_or_else(|| addr.ip().to_string());
            }
            if a.servant == c.query_obj {
                locator_id = format!("{}:{}", ep.host, ep.port);
            }
            objects.insert(a.servant.clone(), ep.to_string());
        }
        if locator_id.is_empty() {
            locator_id = objects
                .values()
                .next()
                .and_then(|e| Endpoint::parse(e).ok())
                .map(|e| format!("{}:{}", e.host, e.port))
                .unwrap_or_default();
        }
        let own: Vec<OwnObject> =
            objects.iter().map(|(s, e)| OwnObject { servant: s.clone(), endpoint: e.clone() }).collect();
        let jobs = crate::jobs::start(self.ctx.clone(), locator_id, own)?;
        // The first heartbeat has written t_registry_info; route it before serving on.
        self.loader.poll_now(Duration::from_secs(2));
        let http = match &c.prometheus_sd {
            Some(addr) => Some(crate::http_sd::start(addr, self.ctx.clone())?),
            None => None,
        };
        Ok(Runtime {
            prometheus_sd: http.as_ref().map(crate::http_sd::HttpSd::addr),
            ctx: self.ctx,
            hub: self.hub,
            objects,
            _http: http,
            _jobs: jobs,
            loader: self.loader,
        })
    }
}

fn describe(hub: &RouteHub, status: &LoaderStatus, ctx: &Context) -> String {
    let last_error = status.last_error.lock().unwrap_or_else(PoisonError::into_inner).clone();
    format!(
        "servants routed: {}\nroute version: {}\ndatabase: {}\nfrom snapshot: {}\npolls: {}\nfull loads: {}\nstamp reads: {}\nrecover protection: {}\nlast error: {}\npoll every: {} ms\ndeletes checked every: {} ms\nsnapshot file: {}\n",
        hub.servant_count(),
        hub.version(),
        if status.db_ok.load(Ordering::Acquire) { "up" } else { "down" },
        status.from_snapshot.load(Ordering::Acquire),
        status.polls.load(Ordering::Relaxed),
        status.full_loads.load(Ordering::Relaxed),
        status.stamp_scans.load(Ordering::Relaxed),
        if ctx.config.recover_protect {
            format!(
                "on ({}%), {} servers held, {} deltas refused",
                ctx.config.recover_protect_rate,
                status.held_servers.load(Ordering::Relaxed),
                status.deltas_refused.load(Ordering::Relaxed)
            )
        } else {
            "off".to_owned()
        },
        last_error.as_deref().unwrap_or("-"),
        ctx.config.change_poll.as_millis(),
        ctx.config.delete_poll.as_millis(),
        ctx.config.snapshot_path.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "-".into()),
    )
}

/// Overrides for [`start`].
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    /// IO driver for every adapter.
    pub io: Option<IoMode>,
    /// Shards for every adapter.
    pub shards: Option<usize>,
    /// Use this store instead of the config's `<db>` section.
    pub store: Option<Store>,
}

/// The registry as a hosted [`Service`]: QueryObj, RegistryObj and the container servant
/// on the adapters that name them, the route loader from `configure` on, and
/// self-registration, jobs and the Prometheus endpoint once the server has bound.
#[derive(Debug, Default)]
pub struct RegistryService {
    store: Option<Store>,
    prepared: Option<Prepared>,
    runtime: Option<Runtime>,
    server_config: Option<ServerConfig>,
}

impl RegistryService {
    /// A registry on the config's `<db>` database, or on `store` when given (already open;
    /// `tars up` shares it with the other services).
    pub fn new(store: Option<Store>) -> RegistryService {
        RegistryService { store, ..RegistryService::default() }
    }

    /// The background parts, once started.
    pub fn runtime(&self) -> Option<&Runtime> {
        self.runtime.as_ref()
    }

    fn prepare(&mut self, ctx: &ServiceContext<'_>) -> Result<Prepared, StartError> {
        let reg_config = RegistryConfig::from_config(ctx.config, ctx.server.data_path.as_deref())?;
        reg_config.node_allow.log_start();
        let store = match self.store.take() {
            Some(s) => s,
            None => {
                let url = StoreUrl::from_config(ctx.config, "/tars/db")?.ok_or_else(|| {
                    StartError::ConfigFile(
                        "no <db> section under <tars> (dbhost, dbport, dbuser, dbpass, dbname, or url)".into(),
                    )
                })?;
                Store::open_url(url, Default::default())?
            }
        };
        if let Err(e) = store.migrate(db_tars::schema()) {
            // A database that is down must not stop the registry: it answers from its snapshot.
            if e.is_unavailable() {
                tracing::warn!(error = %e, "registry: database unavailable at start; schema not checked");
            } else {
                return Err(e.into());
            }
        }
        Prepared::new(store, reg_config)
    }
}

impl Service for RegistryService {
    fn name(&self) -> &'static str {
        "registry"
    }

    fn configure(&mut self, ctx: &ServiceContext<'_>, builder: ServerBuilder) -> Result<ServerBuilder, BoxError> {
        let prepared = self.prepare(ctx)?;
        let builder = prepared.add_to(builder);
        self.prepared = Some(prepared);
        self.server_config = Some(ctx.server.clone());
        Ok(builder)
    }

    fn start(&mut self, server: &ServerHandle) -> Result<(), BoxError> {
        let (Some(prepared), Some(config)) = (self.prepared.take(), self.server_config.as_ref()) else {
            return Err("registry started before it was configured".into());
        };
        self.runtime = Some(prepared.run(server, config)?);
        Ok(())
    }

    fn banner(&self) -> Vec<(String, String)> {
        let Some(r) = &self.runtime else { return Vec::new() };
        let mut lines = vec![("db_tars".to_owned(), r.ctx.store.url().to_string())];
        lines.extend(r.objects.iter().map(|(o, e)| (o.clone(), e.clone())));
        if let Some(addr) = r.prometheus_sd {
            lines.push(("prometheus http_sd".to_owned(), format!("http://{addr}/prometheus/sd")));
        }
        lines
    }

    fn stop(&mut self) {
        // The loader writes its last snapshot as it goes.
        self.runtime = None;
    }
}

/// A running registry: its server and background parts.
#[derive(Debug)]
pub struct Registry {
    running: Running,
}

impl Registry {
    /// The server (QueryObj, RegistryObj, the container servant, AdminObj).
    pub fn server(&self) -> &ServerHandle {
        self.running.server()
    }

    /// The background parts.
    pub fn runtime(&self) -> &Runtime {
        match self.running.service::<RegistryService>().and_then(RegistryService::runtime) {
            Some(r) => r,
            // `start` returns a Registry only once the service has started.
            None => unreachable!("a started registry has its runtime"),
        }
    }

    /// The bound address of the adapter serving `servant`.
    pub fn addr_of(&self, servant: &str) -> Option<SocketAddr> {
        self.runtime()
            .objects
            .get(servant)
            .and_then(|e| Endpoint::parse(e).ok())
            .and_then(|e| self.server().addrs().into_values().find(|a| a.port() == e.port))
    }

    /// `tars.tarsregistry.QueryObj@tcp -h ... -p ...`: what clients put in `locator`.
    pub fn locator(&self) -> String {
        let runtime = self.runtime();
        let q = &runtime.ctx.config.query_obj;
        match runtime.objects.get(q) {
            Some(e) => format!("{q}@{e}"),
            None => String::new(),
        }
    }

    /// Stops serving and waits for the server to finish; background parts stop after it.
    pub fn shutdown(self) -> Result<(), AppError> {
        self.running.shutdown();
        self.wait()
    }

    /// Serves until the server is stopped (signal, `AdminObj.shutdown`), then stops the
    /// background parts (the loader writes its last snapshot).
    pub fn wait(self) -> Result<(), AppError> {
        self.running.wait()
    }
}

/// Starts a registry from an upstream-style config: `<tars><application><server>` with
/// adapters for the registry objects, `<db>` (unless `opts.store`), `<reap>`, `<nodeinfo>`,
/// `<objname>`, `<objcache>`, `<container>`. The database is migrated first (upstream's
/// registry alters `t_server_conf` at start too; ours only ever adds).
pub fn start(config: &Config, opts: StartOptions) -> Result<Registry, AppError> {
    let mut app = Application::new(config.clone())?;
    if let Some(io) = opts.io {
        app = app.io(io);
    }
    if let Some(n) = opts.shards {
        app = app.shards(n);
    }
    let running = app.service(RegistryService::new(opts.store)).start()?;
    Ok(Registry { running })
}

/// [`start`] with the config file at `path`.
pub fn start_file(path: &std::path::Path, opts: StartOptions) -> Result<Registry, AppError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| AppError::ReadConfig { path: path.display().to_string(), source })?;
    let config =
        Config::parse(&text).map_err(|source| AppError::ParseConfig { path: path.display().to_string(), source })?;
    start(&config, opts)
}
