//! tarsgateway as a hosted [`Service`]: the HTTP listener from `start` on, calls through a
//! [`BlockingClient`] of the application (so they resolve through its `locator` and count in
//! its call statistics), and the `tars.gateway` admin command.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tars_core_net::app::{BoxError, Service, ServiceContext};
use tars_core_net::client::locator;
use tars_core_net::client::BlockingClient;
use tars_core_net::http::{self, BodyHandler, HttpRequest, HttpServer, Limits, Response, Router};
use tars_core_net::rt::IoMode;
use tars_core_net::server::{ServerBuilder, ServerHandle};
use tars_proto::config::Config;
use tars_proto::rpc::CallError;

use crate::call::{self, Failure, Policy};
use crate::error::GatewayError;

/// The port upstream's TarsGateway serves HTTP on.
pub const DEFAULT_PORT: u16 = 8200;
/// Admin command: the counters and settings.
pub const STATUS_COMMAND: &str = "tars.gateway";
/// The path prefix of JSON calls (upstream's `json_path`).
pub const JSON_PREFIX: &str = "/json/";

/// The service's settings (the keys in the crate's table).
#[derive(Debug, Clone)]
pub struct GatewaySettings {
    /// `host:port` to listen on; `None`: the default (see the crate docs).
    pub listen: Option<String>,
    /// Bounds of the HTTP server.
    pub limits: Limits,
    /// Calls waiting for their answer at once; more are answered 503.
    pub max_in_flight: usize,
    /// Distinct objects the gateway calls at most (each holds client state).
    pub max_objects: usize,
    /// How long a call may take.
    pub timeout: Duration,
    /// Which objects may be called.
    pub policy: Policy,
}

impl Default for GatewaySettings {
    fn default() -> GatewaySettings {
        GatewaySettings {
            listen: None,
            limits: Limits { max_connections: 256, ..Limits::default() },
            max_in_flight: 128,
            max_objects: 1024,
            timeout: Duration::from_secs(3),
            policy: Policy::default(),
        }
    }
}

impl GatewaySettings {
    /// Reads `/tars/gateway`.
    pub fn from_config(config: &Config) -> Result<GatewaySettings, GatewayError> {
        let mut s = GatewaySettings::default();
        let num = |key: &'static str, what: &'static str| config.number(key, what);
        s.listen = config.get("/tars/gateway<listen>").map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned);
        if let Some(v) = num("/tars/gateway<maxBodyKB>", "a number of KiB")? {
            s.limits.max_body = usize::try_from(v.clamp(1, 16 * 1024) * 1024).unwrap_or(http::MAX_REQUEST_BODY);
        }
        if let Some(v) = num("/tars/gateway<maxConnections>", "a number of connections")? {
            s.limits.max_connections = usize::try_from(v.clamp(1, 100_000)).unwrap_or(256);
        }
        if let Some(v) = num("/tars/gateway<maxInFlight>", "a number of calls")? {
            s.max_in_flight = usize::try_from(v.clamp(1, 1_000_000)).unwrap_or(128);
        }
        if let Some(v) = num("/tars/gateway<maxObjects>", "a number of objects")? {
            s.max_objects = usize::try_from(v.clamp(1, 1_000_000)).unwrap_or(1024);
        }
        if let Some(v) = num("/tars/gateway<timeoutMs>", "a number of milliseconds")? {
            s.timeout = Duration::from_millis(v.clamp(1, 600_000));
        }
        if let Some(v) = num("/tars/gateway<ioTimeoutMs>", "a number of milliseconds")? {
            s.limits.io_timeout = Duration::from_millis(v.clamp(1, 600_000));
            s.limits.request_deadline = s.limits.request_deadline.max(s.limits.io_timeout);
        }
        s.policy = Policy::new(
            config.get("/tars/gateway<allow>").unwrap_or(""),
            config.get("/tars/gateway<deny>").unwrap_or(""),
        );
        Ok(s)
    }
}

/// The counters of `tars.gateway`.
#[derive(Debug, Default)]
pub struct Stats {
    /// Requests routed to the gateway (after HTTP framing).
    pub requests: AtomicU64,
    /// Answered 200.
    pub ok: AtomicU64,
    /// Refused before a call: bad path or body (400).
    pub bad_request: AtomicU64,
    /// Refused by the allow/deny policy (403).
    pub refused: AtomicU64,
    /// Unknown to the registry, or no such function or servant (404).
    pub not_found: AtomicU64,
    /// Refused for the in-flight or object cap, or an overloaded server (503).
    pub busy: AtomicU64,
    /// Failed calls (502).
    pub failed: AtomicU64,
    /// Timed-out calls (504).
    pub timeouts: AtomicU64,
    /// Calls waiting for their answer now.
    pub in_flight: AtomicUsize,
}

impl Stats {
    fn count(&self, status: u16) {
        let c = match status {
            200 => &self.ok,
            403 => &self.refused,
            404 => &self.not_found,
            503 => &self.busy,
            504 => &self.timeouts,
            400..=499 => &self.bad_request,
            _ => &self.failed,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// `name: value` lines.
    pub fn describe(&self) -> String {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        format!(
            "requests: {}\nok: {}\nbad_request: {}\nrefused: {}\nnot_found: {}\nbusy: {}\nfailed: {}\ntimeouts: {}\nin_flight: {}",
            g(&self.requests),
            g(&self.ok),
            g(&self.bad_request),
            g(&self.refused),
            g(&self.not_found),
            g(&self.busy),
            g(&self.failed),
            g(&self.timeouts),
            self.in_flight.load(Ordering::Relaxed),
        )
    }
}

/// What the HTTP handler needs.
struct Gateway {
    client: BlockingClient,
    locator: Option<String>,
    settings: GatewaySettings,
    stats: Arc<Stats>,
    /// Objects the locator has named; only these reach the client (whose state per object
    /// lives as long as it does), so made-up names cost one locator query each, nothing kept.
    known: Mutex<HashSet<String>>,
}

/// Releases an in-flight slot.
struct Slot<'a>(&'a AtomicUsize);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Gateway {
    fn handle(&self, req: &HttpRequest<'_>) -> Response {
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let (response, status, target) = match self.call(req) {
            Ok(body) => (Response::json(body), 200, req.rest),
            Err(f) => (Response::new(f.status, http::APPLICATION_JSON, f.body()), f.status, req.rest),
        };
        self.stats.count(status);
        // The path only: bodies may carry anything a caller sends.
        tracing::debug!(peer = %req.peer, target, status, took_ms = started.elapsed().as_millis() as u64, "gateway call");
        response
    }

    fn call(&self, req: &HttpRequest<'_>) -> Result<Vec<u8>, Failure> {
        let target = call::parse_target(req.rest)?;
        if !self.settings.policy.permits(target.object) {
            return Err(Failure::new(403, format!("{} may not be called through the gateway", target.object)));
        }
        call::check_body(req.body)?;
        if self.stats.in_flight.fetch_add(1, Ordering::SeqCst) >= self.settings.max_in_flight {
            self.stats.in_flight.fetch_sub(1, Ordering::SeqCst);
            return Err(Failure::new(503, "too many calls in flight"));
        }
        let _slot = Slot(&self.stats.in_flight);
        self.admit(target.object)?;
        let timeout_ms = i32::try_from(self.settings.timeout.as_millis()).unwrap_or(i32::MAX);
        let context = BTreeMap::from([("REMOTE_IP".to_owned(), req.peer.ip().to_string())]);
        let packet = call::request(&target, req.body, timeout_ms, context);
        call::outcome(target.object, target.func, self.client.invoke(target.object, packet))
    }

    /// Makes sure the locator knows `object` before the client keeps state for it.
    fn admit(&self, object: &str) -> Result<(), Failure> {
        if self.known.lock().is_ok_and(|k| k.contains(object)) {
            return Ok(());
        }
        let Some(loc) = self.locator.clone() else {
            return Err(Failure::new(502, "the gateway has no locator configured"));
        };
        let id = object.to_owned();
        let limit = self.settings.timeout;
        let answer = self
            .client
            .try_run(move |comm| async move {
                let proxy = comm.proxy(&loc).map_err(|e| CallError::Send(e.to_string()))?;
                let name = loc.split('@').next().unwrap_or(&loc).trim().to_owned();
                tars_core_net::rt::timeout(limit, locator::query(proxy, &name, &id, None))
                    .await
                    .unwrap_or(Err(CallError::Timeout))
            })
            .unwrap_or_else(|| Err(CallError::Send("the client thread has stopped".into())));
        match answer {
            Ok(a) if a.ret == 0 && (!a.active.is_empty() || !a.inactive.is_empty()) => {
                let mut known = self.known.lock().map_err(|_| Failure::new(500, "internal error"))?;
                if known.len() >= self.settings.max_objects && !known.contains(object) {
                    return Err(Failure::new(503, "the gateway calls too many distinct objects"));
                }
                known.insert(object.to_owned());
                Ok(())
            }
            Ok(_) => Err(Failure::new(404, format!("{object} is not known to the registry"))),
            Err(CallError::Timeout) => Err(Failure::new(504, "the locator did not answer in time")),
            Err(e) => {
                tars_core_net::limited!(warn, error = %e, "gateway: locator query failed");
                Err(Failure::new(502, "the locator query failed"))
            }
        }
    }
}

/// tarsgateway: `POST /json/App.Server.Obj/func` as a JSON-protocol call.
#[derive(Debug, Default)]
pub struct GatewayService {
    io: Option<IoMode>,
    settings: Option<GatewaySettings>,
    stats: Arc<Stats>,
    gateway: Option<Arc<GatewayHandle>>,
    http: Option<HttpServer>,
}

/// The handler's state, kept between `configure` and `start`.
struct GatewayHandle(Gateway);

impl std::fmt::Debug for GatewayHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway").field("locator", &self.0.locator).field("settings", &self.0.settings).finish()
    }
}

impl GatewayService {
    /// The gateway with settings from the config's `/tars/gateway`; its client on the server's
    /// `io` driver.
    pub fn new() -> GatewayService {
        GatewayService::default()
    }

    /// Its client thread on driver `io` instead.
    pub fn io(mut self, io: IoMode) -> GatewayService {
        self.io = Some(io);
        self
    }

    /// These settings instead of the config's.
    pub fn with_settings(mut self, settings: GatewaySettings) -> GatewayService {
        self.settings = Some(settings);
        self
    }

    /// The counters.
    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    /// The HTTP address, once started.
    pub fn addr(&self) -> Option<std::net::SocketAddr> {
        self.http.as_ref().map(HttpServer::addr)
    }
}

/// Where to listen when `listen` is not set: upstream's port on `localip` (what tarsnode sets
/// to the node's address), else the first adapter's host, else loopback.
fn default_listen(ctx: &ServiceContext<'_>) -> String {
    let host = ctx
        .server
        .local_ip
        .clone()
        .filter(|h| !h.is_empty())
        .or_else(|| ctx.server.adapters.first().map(|a| a.endpoint.host.clone()))
        .unwrap_or_else(|| "127.0.0.1".to_owned());
    if host.contains(':') {
        format!("[{host}]:{DEFAULT_PORT}")
    } else {
        format!("{host}:{DEFAULT_PORT}")
    }
}

impl Service for GatewayService {
    fn name(&self) -> &'static str {
        "gateway"
    }

    fn configure(&mut self, ctx: &ServiceContext<'_>, builder: ServerBuilder) -> Result<ServerBuilder, BoxError> {
        let mut settings = match self.settings.take() {
            Some(s) => s,
            None => GatewaySettings::from_config(ctx.config)?,
        };
        if settings.listen.is_none() {
            settings.listen = Some(default_listen(ctx));
        }
        let io = self.io.unwrap_or_else(|| ctx.server.io.parse().unwrap_or(IoMode::EpollEt));
        let client = ctx.app.blocking(io).map_err(|e| GatewayError::Client(e.to_string()))?;
        let locator = ctx.app.config().locator.as_ref().map(ToString::to_string);
        if locator.is_none() {
            tracing::warn!("gateway: no <client> locator; every call will be answered 502");
        }
        tracing::info!(policy = %settings.policy.describe().replace('\n', "; "), "gateway: object policy");
        let gateway = Gateway { client, locator, settings, stats: self.stats.clone(), known: Mutex::default() };
        self.gateway = Some(Arc::new(GatewayHandle(gateway)));
        let stats = self.stats.clone();
        let handle = self.gateway.clone();
        Ok(builder.admin_command(STATUS_COMMAND, move |_| {
            let mut text = stats.describe();
            if let Some(h) = &handle {
                let known = h.0.known.lock().map_or(0, |k| k.len());
                text.push_str(&format!("\nobjects: {known}\n{}", h.0.settings.policy.describe()));
            }
            text
        }))
    }

    fn start(&mut self, _server: &ServerHandle) -> Result<(), BoxError> {
        let gateway = self.gateway.clone().ok_or("gateway started before it was configured")?;
        let listen = gateway.0.settings.listen.clone().unwrap_or_else(|| format!("127.0.0.1:{DEFAULT_PORT}"));
        let limits = gateway.0.settings.limits;
        let handler: BodyHandler = Arc::new(move |req: &HttpRequest<'_>| gateway.0.handle(req));
        let router = Router::new().post_prefix(JSON_PREFIX, handler);
        let server = http::serve_router(&listen, "tars-gateway-http", router, limits)
            .map_err(|source| GatewayError::Listen { addr: listen.clone(), source })?;
        tracing::info!(addr = %server.addr(), "gateway: serving POST /json/App.Server.Obj/func");
        self.http = Some(server);
        Ok(())
    }

    fn banner(&self) -> Vec<(String, String)> {
        self.addr().map(|a| vec![("gateway http".to_owned(), a.to_string())]).unwrap_or_default()
    }

    fn stop(&mut self) {
        if let Some(server) = self.http.take() {
            server.stop();
        }
        self.gateway = None;
    }
}
