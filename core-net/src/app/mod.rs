//! The application runtime: what every TARS server built on this crate is, framework
//! services and business servers alike.
//!
//! An [`Application`] is a server config, the [`Service`]s it hosts (the registry, tarsstat,
//! a business servant...) and the framework duties a TarsCpp server performs by itself,
//! driven by the standard keys of `<tars><application><server>` and `<client>`: heartbeats
//! to the node, call statistics and properties, remote log, config files and notify. The
//! lifecycle is one sequence for everyone:
//!
//! 1. each service adds its servants and admin commands to the server builder
//!    ([`Service::configure`]), in order;
//! 2. the server binds every adapter; the duties start;
//! 3. each service starts what needs the bound server ([`Service::start`]);
//! 4. on stop (signal, `AdminObj.shutdown`, [`Running::shutdown`]) the server drains, the
//!    services stop in reverse order ([`Service::stop`]), then the duties flush what is left.
//!
//! [`run_binary`] is the whole `main` of a server binary around that sequence.

mod binary;
pub mod duties;
pub mod log;
pub mod logging;
pub mod property;
pub mod stat;

use std::any::Any;
use std::fmt;
use std::path::Path;

use tars_proto::config::Config;

use crate::rt::{IoMode, ShardInfo};
use crate::server::adapter::ServerConfig;
use crate::server::{Dispatch, ServerBuilder, ServerError, ServerHandle};

pub use binary::{run_binary, Banner};
pub use duties::{AppClient, ConfigFetchError, NotifyLevel};

use crate::client::config::{ClientConfig, ClientConfigError};
use duties::{Duties, StartedInfo};
use log::AppLog;

/// What a service reports when it cannot configure or start.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// An application could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The config file could not be read.
    #[error("cannot read config {path}: {source}")]
    ReadConfig {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The config file is malformed.
    #[error("config {path}: {source}")]
    ParseConfig {
        /// The file.
        path: String,
        /// Why.
        source: tars_proto::config::ConfigError,
    },
    /// The server could not be configured, start or stop.
    #[error(transparent)]
    Server(#[from] ServerError),
    /// The `<client>` section is malformed.
    #[error(transparent)]
    Client(#[from] ClientConfigError),
    /// The duty thread could not start.
    #[error("framework duties: {0}")]
    Duties(#[from] crate::client::ClientError),
    /// A config file named by [`Application::add_config`] could not be fetched, and there is
    /// no local copy to start with.
    #[error("config file {file}: {source}")]
    Config {
        /// The file.
        file: String,
        /// Why.
        source: ConfigFetchError,
    },
    /// A service could not configure or start.
    #[error("{service}: {source}")]
    Service {
        /// The service's name.
        service: &'static str,
        /// Why.
        source: BoxError,
    },
    /// The command line.
    #[error("{0}")]
    Usage(String),
    /// Signal handlers or standard output.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// What a service sees of the application while it configures.
#[derive(Debug)]
pub struct ServiceContext<'a> {
    /// The whole config file: services read their own sections (`/tars/db`, `/tars/reap`).
    pub config: &'a Config,
    /// `<tars><application><server>`, parsed.
    pub server: &'a ServerConfig,
    /// The application's client side: communicators whose calls are counted, properties,
    /// notices, config files.
    pub app: &'a AppClient,
}

/// One service hosted by an [`Application`]: a framework service (registry, tarsstat,
/// tarsproperty, and node, log, notify, query, config, patch as they land) or a business
/// servant.
///
/// A service is built and configured on the thread that starts the application; its
/// servants live on the shards of the adapters that name them.
pub trait Service: Any {
    /// Short name, for logs and errors (`registry`, `stat`).
    fn name(&self) -> &'static str;

    /// Adds this service's servants and admin commands to `builder`; called once, before
    /// the server binds. Background threads that servants need from the first request on
    /// start here.
    fn configure(&mut self, ctx: &ServiceContext<'_>, builder: ServerBuilder) -> Result<ServerBuilder, BoxError>;

    /// Starts what needs the bound server (self-registration with real ports, jobs, HTTP
    /// endpoints).
    fn start(&mut self, _server: &ServerHandle) -> Result<(), BoxError> {
        Ok(())
    }

    /// What it serves beyond the adapters, one `(name, where)` pair each, for the banner.
    fn banner(&self) -> Vec<(String, String)> {
        Vec::new()
    }

    /// Stops the background parts; called after the server has stopped (so every request
    /// is answered), services in reverse order of start. Dropping a service must do the same.
    fn stop(&mut self) {}
}

/// A business servant as a [`Service`]: `name` served by `make` on each shard.
pub struct Servant<F> {
    name: String,
    make: Option<F>,
}

impl<F> fmt::Debug for Servant<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Servant").field("name", &self.name).finish()
    }
}

impl<D, F> Servant<F>
where
    D: Dispatch,
    F: Fn(ShardInfo) -> D + Send + Sync + 'static,
{
    /// The servant `name` (e.g. `Test.HelloServer.HelloObj`), one instance per shard.
    pub fn new(name: impl Into<String>, make: F) -> Servant<F> {
        Servant { name: name.into(), make: Some(make) }
    }
}

impl<D, F> Service for Servant<F>
where
    D: Dispatch,
    F: Fn(ShardInfo) -> D + Send + Sync + 'static,
{
    fn name(&self) -> &'static str {
        "servant"
    }

    fn configure(&mut self, _ctx: &ServiceContext<'_>, builder: ServerBuilder) -> Result<ServerBuilder, BoxError> {
        let make = self.make.take().ok_or("servant configured twice")?;
        Ok(builder.servant(self.name.clone(), make))
    }
}

/// A server config and the services it hosts, not started yet.
pub struct Application {
    config: Config,
    builder: ServerBuilder,
    services: Vec<Box<dyn Service>>,
    config_files: Vec<String>,
    log: Option<AppLog>,
    io: Option<IoMode>,
}

impl fmt::Debug for Application {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Application")
            .field("server", &self.builder)
            .field("services", &self.services.iter().map(|s| s.name()).collect::<Vec<_>>())
            .finish()
    }
}

impl Application {
    /// An application for a parsed config.
    pub fn new(config: Config) -> Result<Application, AppError> {
        let builder = ServerBuilder::from_config(&config)?.on_set_log_level(logging::set_level);
        Ok(Application { config, builder, services: Vec::new(), config_files: Vec::new(), log: None, io: None })
    }

    /// An application for the config file at `path`, as `--config=FILE` names it.
    pub fn from_file(path: &Path) -> Result<Application, AppError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| AppError::ReadConfig { path: path.display().to_string(), source })?;
        let config = Config::parse(&text)
            .map_err(|source| AppError::ParseConfig { path: path.display().to_string(), source })?;
        Application::new(config)
    }

    /// The whole config.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// `<tars><application><server>`, parsed.
    pub fn server_config(&self) -> &ServerConfig {
        self.builder.config()
    }

    /// Overrides `io` for every adapter.
    pub fn io(mut self, io: IoMode) -> Self {
        self.builder = self.builder.io(io);
        self.io = Some(io);
        self
    }

    /// Fetches `file` through the config service (`config`) into `basepath` before the
    /// services configure, as TarsCpp's `addConfig`; the result is told to notify. When the
    /// fetch fails and a copy from an earlier start is there, the server starts with it (a
    /// warning); with no copy, [`Application::start`] fails.
    pub fn add_config(mut self, file: impl Into<String>) -> Self {
        self.config_files.push(file.into());
        self
    }

    /// Logs through `log` (TarsCpp's file layout and the remote log): the shards log to
    /// it, `tars.setloglevel` changes its level, and with `log` set its lines go to `LogF`.
    pub fn log(mut self, log: AppLog) -> Self {
        let level = log.level();
        self.builder = self.builder.tracing(log.dispatch()).on_set_log_level(move |l| {
            level.set_level(l)?;
            logging::set_level(l)
        });
        self.log = Some(log);
        self
    }

    /// Overrides `shards` for every adapter.
    pub fn shards(mut self, n: usize) -> Self {
        self.builder = self.builder.shards(n);
        self
    }

    /// The version `tars.viewversion` shows and the node is told.
    pub fn version(mut self, v: impl Into<String>) -> Self {
        self.builder = self.builder.version(v);
        self
    }

    /// Changes the server builder directly (admin commands, the frame limit).
    pub fn with_builder(mut self, f: impl FnOnce(ServerBuilder) -> ServerBuilder) -> Self {
        self.builder = f(self.builder);
        self
    }

    /// Hosts `service`; services are configured and started in the order they are added.
    pub fn service(mut self, service: impl Service) -> Self {
        self.services.push(Box::new(service));
        self
    }

    /// Hosts a business servant: `name` served by `make` on each shard.
    pub fn servant<D: Dispatch>(
        self,
        name: impl Into<String>,
        make: impl Fn(ShardInfo) -> D + Send + Sync + 'static,
    ) -> Self {
        self.service(Servant::new(name, make))
    }

    /// Starts the framework duties, fetches the config files, configures every service,
    /// binds the server, and starts the services.
    pub fn start(self) -> Result<Running, AppError> {
        let Application { config, mut builder, mut services, config_files, log, io } = self;
        let server_config = builder.config().clone();
        let client_config = ClientConfig::from_config(&config)?;
        let io = io.or_else(|| server_config.io.parse().ok()).unwrap_or(IoMode::EpollEt);
        let mut duties = Duties::new(&server_config, client_config, io)?;
        duties.start(log.as_ref().and_then(AppLog::remote));
        let app = duties.client().clone();
        for file in &config_files {
            fetch_at_start(&app, &server_config, file)?;
        }
        if let Some(sink) = app.stat_sink() {
            builder = builder.stats(sink.clone());
        }
        let loader = app.clone();
        builder = builder.admin_command_async("tars.loadconfig", move |params| {
            let loader = loader.clone();
            async move { loader.load_config_command(params).await }
        });
        let ctx = ServiceContext { config: &config, server: &server_config, app: &app };
        for s in &mut services {
            builder = s.configure(&ctx, builder).map_err(|source| AppError::Service { service: s.name(), source })?;
        }
        let server = builder.start()?;
        duties.started(StartedInfo {
            version: server.version().to_owned(),
            adapters: server_config.all_adapters().map(|a| a.name.clone()).collect(),
        });
        app.report("restart");
        let mut running =
            Running { server, services: Vec::with_capacity(services.len()), config: server_config, duties, log };
        for mut s in services {
            let started = s.start(&running.server);
            running.services.push(s);
            if let Err(source) = started {
                let service = running.services.last().map(|s| s.name()).unwrap_or("service");
                running.server.shutdown();
                return Err(AppError::Service { service, source });
            }
        }
        Ok(running)
    }
}

/// Fetches one [`Application::add_config`] file at start.
fn fetch_at_start(app: &AppClient, server: &ServerConfig, file: &str) -> Result<(), AppError> {
    match app.fetch_config_blocking(file) {
        Ok(_) => {
            app.report(format!("[succ] get remote config: {file}"));
            Ok(())
        }
        Err(source) => {
            app.report(format!("[fail] get remote config: {file}: {source}"));
            let local = Path::new(server.base_path.as_deref().unwrap_or(".")).join(file);
            if matches!(source, ConfigFetchError::BadName(_)) || !local.is_file() {
                return Err(AppError::Config { file: file.to_owned(), source });
            }
            tracing::warn!(file, error = %source, "config file not fetched; starting with the local copy");
            Ok(())
        }
    }
}

/// A started application.
pub struct Running {
    server: ServerHandle,
    services: Vec<Box<dyn Service>>,
    config: ServerConfig,
    duties: Duties,
    log: Option<AppLog>,
}

impl fmt::Debug for Running {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Running")
            .field("server", &self.server)
            .field("services", &self.services.iter().map(|s| s.name()).collect::<Vec<_>>())
            .finish()
    }
}

impl Running {
    /// The server.
    pub fn server(&self) -> &ServerHandle {
        &self.server
    }

    /// `<tars><application><server>` as the server runs it.
    pub fn server_config(&self) -> &ServerConfig {
        &self.config
    }

    /// The application's client side (communicators, properties, notices, config files).
    pub fn client(&self) -> &AppClient {
        self.duties.client()
    }

    /// The application's log, when it has one.
    pub fn log(&self) -> Option<&AppLog> {
        self.log.as_ref()
    }

    /// The first hosted service of type `T`.
    pub fn service<T: Service>(&self) -> Option<&T> {
        self.services.iter().find_map(|s| (s.as_ref() as &dyn Any).downcast_ref::<T>())
    }

    /// Every service's banner lines, in start order.
    pub fn banner(&self) -> Vec<(String, String)> {
        self.services.iter().flat_map(|s| s.banner()).collect()
    }

    /// Starts a graceful stop; [`Running::wait`] returns once it is complete.
    pub fn shutdown(&self) {
        self.server.shutdown();
    }

    /// Serves until the server stops (signal, `AdminObj.shutdown`, [`Running::shutdown`]),
    /// then stops the services in reverse order, then the duties (which send what is left:
    /// call statistics, properties, log lines, the "stop" notice).
    pub fn wait(self) -> Result<(), AppError> {
        let Running { server, mut services, mut duties, log, .. } = self;
        let result = server.wait();
        while let Some(mut s) = services.pop() {
            s.stop();
        }
        duties.client().report("stop");
        if let Some(log) = &log {
            log.flush();
        }
        duties.stop();
        result.map_err(AppError::from)
    }
}
