//! The shard-local communicator, its object proxies, endpoint selection and the locator
//! refresh.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::rc::{Rc, Weak};
use std::time::{Duration, Instant};

use super::config::ClientConfig;
use super::conn::{Conn, Credentials, Outcome, Push, PushSlot};
use super::locator;
use crate::app::stat::{self, ShardStats, StatSink};
use crate::auth::AUTH_TYPE_LOCAL;
use crate::rt::{self, sync::Notify};
use tars_proto::balance::EndpointSet;
use tars_proto::endpoint::{Endpoint, EndpointError, ObjectRef, Transport as Proto};
use tars_proto::packet::RequestPacket;
use tars_proto::rpc::{CallError, Reply, Transport};

/// A proxy could not be made for an object string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The object string does not parse.
    #[error("invalid object string `{object}`: {source}")]
    InvalidObject {
        /// The string as given.
        object: String,
        /// What is wrong with it.
        source: EndpointError,
    },
    /// An indirect object (no `@endpoints`) while the client config names no locator.
    #[error("`{0}` lists no endpoint and the client config has no locator to ask")]
    NoLocator(String),
    /// A direct object whose endpoints are all UDP or SSL, which this client does not speak yet.
    #[error("`{0}` lists no tcp endpoint (udp and ssl are not supported)")]
    NoTcpEndpoint(String),
    /// The blocking client's thread could not be started.
    #[error("cannot start the client thread: {0}")]
    Start(String),
}

/// The client side of one shard: object proxies and the connections they share.
///
/// A communicator lives on the shard (thread) that created it and is used through an
/// `Rc`: nothing on the call path takes a lock or crosses a thread. Each shard that makes
/// calls creates its own (from the same [`ClientConfig`]); to call from plain threads, use
/// [`BlockingClient`](super::BlockingClient). Drop it on its shard: that closes its
/// connections and fails the calls still waiting on them.
pub struct Communicator {
    config: ClientConfig,
    this: Weak<Communicator>,
    /// Object state by canonical object string.
    objects: RefCell<HashMap<String, Rc<ObjectState>>>,
    /// Connections by [`PoolKey`].
    pools: RefCell<HashMap<PoolKey, Rc<Pool>>>,
    /// This thread's client-side call statistics, when the application reports them.
    stats: Option<ShardStats>,
    /// The hand-off tick of `stats` has been spawned.
    stats_tick: Cell<bool>,
    /// What server pushes on any of its connections are handed to.
    push: PushSlot,
}

impl fmt::Debug for Communicator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Communicator")
            .field("objects", &self.objects.borrow().keys().collect::<Vec<_>>())
            .field("connections", &self.connection_count())
            .finish()
    }
}

/// Which connections an object uses: those of its `#` suffix (`None` for plain object strings)
/// and, for `-e 1` endpoints, of its name too, since such a connection authenticates as one
/// object.
type PoolKey = (Option<String>, Option<String>);

/// Connections to endpoints, by host then port. One per endpoint per pool.
#[derive(Default)]
struct Pool {
    conns: RefCell<HashMap<String, HashMap<u16, Rc<Conn>>>>,
    /// The communicator's push handler, given to each connection.
    push: PushSlot,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool").field("conns", &self.conns).finish()
    }
}

impl Pool {
    fn get(&self, ep: &Endpoint, auth: Option<&Rc<Credentials>>) -> Rc<Conn> {
        if let Some(c) = self.conns.borrow().get(ep.host.as_str()).and_then(|m| m.get(&ep.port)) {
            return c.clone();
        }
        let c = Rc::new(Conn::new(ep.clone(), auth.cloned(), self.push.clone()));
        self.conns.borrow_mut().entry(ep.host.clone()).or_default().insert(ep.port, c.clone());
        c
    }
}

/// What the communicator knows about one object string.
struct ObjectState {
    /// The servant name (`App.Server.Obj`).
    name: String,
    /// The callee in call statistics (`App.Server`).
    slave: Rc<str>,
    /// The canonical object string.
    key: String,
    /// The `#` suffix as a hash code.
    default_hash: Option<u64>,
    set: RefCell<EndpointSet>,
    pool: Rc<Pool>,
    /// The connections to its `-e 1` endpoints, and who they authenticate as.
    auth_pool: Rc<Pool>,
    credentials: Rc<Credentials>,
    /// Present for indirect objects.
    resolver: Option<Resolver>,
}

impl fmt::Debug for ObjectState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Object").field("key", &self.key).field("endpoints", &self.set.borrow().len()).finish()
    }
}

/// The locator side of an indirect object.
#[derive(Default)]
struct Resolver {
    /// The refresh task has been spawned.
    started: Cell<bool>,
    /// A locator query is under way (or about to be).
    resolving: Cell<bool>,
    /// Calls waiting for the end of the current query.
    waiters: RefCell<Vec<rt::sync::Sender<()>>>,
    /// Asks the refresh task to query now.
    kick: Rc<Notify>,
}

impl Communicator {
    /// A communicator for `config`, on this shard.
    pub fn new(config: ClientConfig) -> Rc<Communicator> {
        Communicator::build(config, None)
    }

    /// A communicator whose twoway calls are counted for the application's call-statistics
    /// duty (`StatF.reportMicMsg` with `bFromClient` true): one row per callee, function,
    /// endpoint and return code, handed to `sink` every second.
    pub fn with_stats(config: ClientConfig, sink: StatSink) -> Rc<Communicator> {
        Communicator::build(config, Some(ShardStats::new(sink)))
    }

    fn build(config: ClientConfig, stats: Option<ShardStats>) -> Rc<Communicator> {
        Rc::new_cyclic(|this| Communicator {
            config,
            this: this.clone(),
            objects: RefCell::new(HashMap::new()),
            pools: RefCell::new(HashMap::new()),
            stats,
            stats_tick: Cell::new(false),
            push: PushSlot::default(),
        })
    }

    /// Hands every server push (a reply with request id 0, e.g. tarsAdminRegistry's
    /// `NodePush` commands) that arrives on this communicator's connections to `handler`,
    /// instead of dropping it. The handler runs inside the connection's turn on this shard: it
    /// should queue work, not do it.
    pub fn on_push(&self, handler: impl Fn(Push) + 'static) {
        *self.push.borrow_mut() = Some(Rc::new(handler));
    }

    /// The settings it was made with.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// A proxy for `object`: `App.S.Obj@tcp -h … -p …[:tcp …]` (direct) or `App.S.Obj`
    /// (indirect, resolved through the config's locator on first use), optionally with a
    /// `#suffix` (see the module docs). Proxies of the same object string share their state and
    /// connections; making one does no IO.
    pub fn proxy(self: &Rc<Self>, object: &str) -> Result<ObjectProxy, ClientError> {
        let r = ObjectRef::parse(object)
            .map_err(|source| ClientError::InvalidObject { object: object.to_owned(), source })?;
        let obj = self.object_state(&r)?;
        Ok(ObjectProxy { comm: self.clone(), obj, hash: None, timeout: None })
    }

    /// Open connections across all objects.
    pub fn connection_count(&self) -> usize {
        self.pools
            .borrow()
            .values()
            .map(|p| p.conns.borrow().values().flat_map(|m| m.values()).filter(|c| c.is_up()).count())
            .sum()
    }

    /// Waits until every queued request has been written (oneway ones included), at most
    /// `limit`; `false` if some are still waiting. For a graceful stop: dropping the
    /// communicator drops what its connections have not written. A connection still
    /// connecting counts: a report queued at stop is usually the first request on its
    /// connection.
    pub async fn flush(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            let unsent: usize = self
                .pools
                .borrow()
                .values()
                .map(|p| {
                    p.conns
                        .borrow()
                        .values()
                        .flat_map(|m| m.values())
                        .filter(|c| c.is_active())
                        .map(|c| c.unsent())
                        .sum::<usize>()
                })
                .sum();
            if unsent == 0 {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            rt::sleep(Duration::from_millis(1)).await;
        }
    }

    fn object_state(&self, r: &ObjectRef) -> Result<Rc<ObjectState>, ClientError> {
        let key = r.to_string();
        if let Some(o) = self.objects.borrow().get(&key) {
            return Ok(o.clone());
        }
        let (set, resolver) = if r.is_direct() {
            let tcp = tcp_only(r.endpoints.clone(), &key);
            if tcp.is_empty() {
                return Err(ClientError::NoTcpEndpoint(key));
            }
            (EndpointSet::new(tcp), None)
        } else {
            if self.config.locator.is_none() {
                return Err(ClientError::NoLocator(key));
            }
            (EndpointSet::default(), Some(Resolver::default()))
        };
        let new_pool = || Rc::new(Pool { conns: RefCell::default(), push: self.push.clone() });
        let pool = self.pools.borrow_mut().entry((r.hash.clone(), None)).or_insert_with(new_pool).clone();
        let auth_pool =
            self.pools.borrow_mut().entry((r.hash.clone(), Some(r.name.clone()))).or_insert_with(new_pool).clone();
        let credentials =
            Rc::new(Credentials { object: r.name.clone(), keys: self.config.auth_keys.get(&r.name).cloned() });
        let obj = Rc::new(ObjectState {
            slave: stat::slave_key(&r.name, None),
            name: r.name.clone(),
            key: key.clone(),
            default_hash: r.hash.as_deref().map(hash_code),
            set: RefCell::new(set),
            pool,
            auth_pool,
            credentials,
            resolver,
        });
        self.objects.borrow_mut().insert(key, obj.clone());
        Ok(obj)
    }

    /// One call on `obj`. See the module docs for the timeout rule.
    async fn invoke(
        &self,
        obj: &Rc<ObjectState>,
        hash: Option<u64>,
        timeout: Option<Duration>,
        mut req: RequestPacket,
    ) -> Result<Reply, CallError> {
        let limit = match timeout {
            Some(t) => t,
            None => u64::try_from(req.i_timeout)
                .ok()
                .filter(|&ms| ms > 0)
                .map_or(self.config.sync_invoke_timeout, Duration::from_millis),
        };
        req.i_timeout = i32::try_from(limit.as_millis()).unwrap_or(i32::MAX);
        if req.s_servant_name.is_empty() {
            req.s_servant_name = obj.name.clone();
        }
        let Some(stats) = self.stats.as_ref().filter(|_| req.c_packet_type != tars_proto::packet::packet_type::ONEWAY)
        else {
            return rt::timeout(limit, self.invoke_within(obj, hash, req, &Cell::new(None)))
                .await
                .unwrap_or(Err(CallError::Timeout));
        };
        let started = Instant::now();
        let func = req.s_func_name.clone();
        let picked = Cell::new(None);
        let result =
            rt::timeout(limit, self.invoke_within(obj, hash, req, &picked)).await.unwrap_or(Err(CallError::Timeout));
        // A call that reached no endpoint has no row, as in TarsCpp (no AdapterProxy saw it).
        if let Some(conn) = picked.take() {
            let (outcome, ret) = match &result {
                Ok(reply) => (stat::Outcome::of_ret(reply.ret), reply.ret),
                Err(CallError::Timeout) => (stat::Outcome::Timeout, tars_proto::packet::ret::INVOKE_TIMEOUT),
                Err(CallError::Send(_)) => (stat::Outcome::Exception, tars_proto::packet::ret::SEND_REQUEST_ERR),
                Err(_) => (stat::Outcome::Exception, tars_proto::packet::ret::PROXY_CONNECT_ERR),
            };
            let ep = conn.endpoint();
            stats.called(&obj.slave, &func, conn.host(), ep.port, outcome, ret, started.elapsed());
            self.start_stats_tick();
        }
        result
    }

    /// Hands this thread's rows over every second even when no call comes to do it.
    fn start_stats_tick(&self) {
        if self.stats_tick.replace(true) {
            return;
        }
        let this = self.this.clone();
        rt::spawn(async move {
            loop {
                rt::sleep(stat::HAND_OFF_EVERY).await;
                let Some(comm) = this.upgrade() else { return };
                if let Some(s) = &comm.stats {
                    s.hand_off();
                }
            }
        })
        .detach();
    }

    async fn invoke_within(
        &self,
        obj: &Rc<ObjectState>,
        hash: Option<u64>,
        mut req: RequestPacket,
        picked: &Cell<Option<Rc<Conn>>>,
    ) -> Result<Reply, CallError> {
        self.wait_resolved(obj).await?;
        let attempts = obj.set.borrow().len().max(1);
        let mut last = CallError::NoEndpoint;
        for _ in 0..attempts {
            let now = Instant::now();
            let conn = pick(obj, hash, now)?;
            picked.set(Some(conn.clone()));
            let Some(waiter) = conn.enqueue(&mut req, now)? else {
                return Ok(Reply { version: req.i_version, request_id: req.i_request_id, ..Reply::default() });
            };
            match waiter.wait().await {
                Outcome::Reply(r) => return Ok(r),
                Outcome::Failed(e) => return Err(e),
                // Never written: safe to send to another endpoint (pick now skips this one).
                Outcome::Unsent(reason) => last = CallError::Connect(reason),
            }
        }
        Err(last)
    }

    /// For an indirect object with no endpoint yet: starts (or nudges) the locator query and
    /// waits for it to end.
    async fn wait_resolved(&self, obj: &Rc<ObjectState>) -> Result<(), CallError> {
        let Some(r) = &obj.resolver else { return Ok(()) };
        if !obj.set.borrow().is_empty() {
            return Ok(());
        }
        if !r.started.get() {
            r.started.set(true);
            r.resolving.set(true);
            rt::spawn(refresh_loop(self.this.clone(), Rc::downgrade(obj), r.kick.clone())).detach();
        } else if !r.resolving.get() {
            r.resolving.set(true);
            r.kick.notify();
        }
        let (tx, rx) = rt::sync::oneshot();
        r.waiters.borrow_mut().push(tx);
        let _ = rx.await;
        if obj.set.borrow().is_empty() {
            Err(CallError::NoEndpoint)
        } else {
            Ok(())
        }
    }

    /// Asks the locator for `obj`'s endpoints and installs them; keeps the last good list
    /// when the query fails or returns no usable endpoint. Wakes the calls waiting for it.
    async fn refresh(&self, obj: &ObjectState) {
        let Some(r) = &obj.resolver else { return };
        r.resolving.set(true);
        match self.query_locator(&obj.name).await {
            Ok((active, inactive)) => {
                let active = tcp_only(active, &obj.key);
                if active.is_empty() {
                    tracing::warn!(object = %obj.key, "locator returned no active tcp endpoint; keeping the last good list");
                } else if obj.set.borrow_mut().replace(active, inactive) {
                    tracing::debug!(object = %obj.key, endpoints = obj.set.borrow().len(), "endpoints refreshed");
                }
            }
            Err(e) => {
                tracing::warn!(object = %obj.key, error = %e, "locator query failed; keeping the last good list");
            }
        }
        r.resolving.set(false);
        for w in r.waiters.take() {
            w.send(());
        }
    }

    async fn query_locator(&self, id: &str) -> Result<(Vec<Endpoint>, Vec<Endpoint>), String> {
        let loc = self.config.locator.as_ref().ok_or("no locator configured")?;
        let loc = self.object_state(loc).map_err(|e| e.to_string())?;
        let set = self.config.set_division.as_ref().filter(|_| self.config.enable_set);
        let via = LocatorTransport { comm: self, obj: &loc };
        let answer = locator::query(via, &loc.name, id, set).await.map_err(|e| format!("{}: {e}", loc.key))?;
        if answer.ret != 0 {
            return Err(format!("locator answered {} for {id}", answer.ret));
        }
        let convert = |list: Vec<locator::EndpointF>| {
            list.iter()
                .filter_map(|f| {
                    let e = locator::to_endpoint(f);
                    if e.is_none() {
                        tracing::warn!(object = %id, endpoint = ?f, "locator endpoint ignored");
                    }
                    e
                })
                .collect::<Vec<_>>()
        };
        Ok((convert(answer.active), convert(answer.inactive)))
    }
}

/// The locator object as a transport for the generated `QueryF` proxy; borrowed for one
/// query, so it needs no handle to the communicator of its own.
struct LocatorTransport<'a> {
    comm: &'a Communicator,
    obj: &'a Rc<ObjectState>,
}

impl Transport for LocatorTransport<'_> {
    async fn invoke(&self, request: RequestPacket) -> Result<Reply, CallError> {
        self.comm.invoke(self.obj, None, None, request).await
    }
}

/// The refresh task of one indirect object: queries the locator now, then every
/// `refresh-endpoint-interval`, or sooner when a call finds no endpoint. Ends once the
/// communicator or the object is gone.
async fn refresh_loop(comm: Weak<Communicator>, obj: Weak<ObjectState>, kick: Rc<Notify>) {
    loop {
        let interval = {
            let (Some(comm), Some(obj)) = (comm.upgrade(), obj.upgrade()) else { return };
            comm.refresh(&obj).await;
            comm.config.refresh_endpoint_interval
        };
        futures_lite::future::or(rt::sleep(interval), kick.notified()).await;
    }
}

/// The connection for the next call on `obj`: by `hash` if given, else by the set's policy.
/// Endpoints whose connection is down are marked failed in the set until it may be retried,
/// and another is chosen; when all are down, one of them is returned anyway (the call then
/// fails fast with `CallError::Connect`).
fn pick(obj: &ObjectState, hash: Option<u64>, now: Instant) -> Result<Rc<Conn>, CallError> {
    let mut set = obj.set.borrow_mut();
    let mut conn = None;
    for _ in 0..=set.len() {
        let ep = match hash {
            Some(h) => set.by_hash(h, now),
            None => set.select(now),
        }
        .ok_or(CallError::NoEndpoint)?;
        let c = if ep.auth_type == AUTH_TYPE_LOCAL {
            obj.auth_pool.get(ep, Some(&obj.credentials))
        } else {
            obj.pool.get(ep, None)
        };
        match c.down_until(now) {
            Some(until) if !set.is_failed(c.endpoint(), now) => {
                set.mark_failed(c.endpoint(), until);
                conn = Some(c);
            }
            _ => return Ok(c),
        }
    }
    conn.ok_or(CallError::NoEndpoint)
}

/// Keeps the TCP endpoints of `list`, logging the others.
fn tcp_only(list: Vec<Endpoint>, object: &str) -> Vec<Endpoint> {
    list.into_iter()
        .filter(|e| {
            let ok = e.transport == Proto::Tcp;
            if !ok {
                tracing::warn!(%object, endpoint = %e, "only tcp endpoints are supported; endpoint ignored");
            }
            ok
        })
        .collect()
}

/// The hash code of a `#` suffix: its value if it is a number, else its FNV-1a hash.
fn hash_code(suffix: &str) -> u64 {
    suffix.parse().unwrap_or_else(|_| {
        suffix.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
    })
}

/// A handle to one object through a [`Communicator`]: cheap to clone, and a
/// [`Transport`](tars_proto::rpc::Transport), so generated proxies run over it:
///
/// ```text
/// let echo = EchoProxy::new(comm.proxy("App.S.EchoObj")?, "App.S.EchoObj");
/// ```
#[derive(Clone)]
pub struct ObjectProxy {
    comm: Rc<Communicator>,
    obj: Rc<ObjectState>,
    hash: Option<u64>,
    timeout: Option<Duration>,
}

impl fmt::Debug for ObjectProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectProxy")
            .field("object", &self.obj.key)
            .field("hash", &self.hash)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl ObjectProxy {
    /// The same object, with every call routed by hash `code`: the same code reaches the same
    /// endpoint while the endpoint list is unchanged and that endpoint healthy
    /// ([`EndpointSet::by_hash`]).
    pub fn with_hash(&self, code: u64) -> ObjectProxy {
        ObjectProxy { hash: Some(code), ..self.clone() }
    }

    /// The same object, with every call given `timeout` (overriding the request's `iTimeout`
    /// and the config's `sync-invoke-timeout`; it is also what `iTimeout` tells the server).
    pub fn with_timeout(&self, timeout: Duration) -> ObjectProxy {
        ObjectProxy { timeout: Some(timeout), ..self.clone() }
    }

    /// The servant name calls carry (`App.Server.Obj`, no `#…` or `@…`).
    pub fn servant_name(&self) -> &str {
        &self.obj.name
    }

    /// The object string, in canonical form.
    pub fn object(&self) -> &str {
        &self.obj.key
    }

    /// The hash code calls are routed by: [`ObjectProxy::with_hash`]'s, else the `#` suffix's.
    pub fn hash(&self) -> Option<u64> {
        self.hash.or(self.obj.default_hash)
    }

    /// The endpoints calls currently choose from (empty for an indirect object not yet
    /// resolved).
    pub fn endpoints(&self) -> Vec<Endpoint> {
        self.obj.set.borrow().active().to_vec()
    }

    /// The communicator it calls through.
    pub fn communicator(&self) -> &Rc<Communicator> {
        &self.comm
    }
}

impl Transport for ObjectProxy {
    /// Sends `request` (its request id is assigned here; an empty servant name becomes this
    /// object's) and waits for the reply.
    async fn invoke(&self, request: RequestPacket) -> Result<Reply, CallError> {
        self.comm.invoke(&self.obj, self.hash(), self.timeout, request).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_suffixes() {
        assert_eq!(hash_code("7"), 7);
        assert_eq!(hash_code("abc"), hash_code("abc"));
        assert_ne!(hash_code("abc"), hash_code("abd"));
    }

    #[test]
    fn proxies_are_cached_by_canonical_string() {
        rt::block_on(rt::IoMode::EpollEt, async {
            let comm = Communicator::new(ClientConfig::default());
            let a = comm.proxy("A.B.C@tcp -h 127.0.0.1 -p 1").expect("valid");
            let b = comm.proxy("  A.B.C@tcp  -h 127.0.0.1 -p 1 -t 3000").expect("valid");
            assert!(Rc::ptr_eq(&a.obj, &b.obj));
            assert_eq!(a.servant_name(), "A.B.C");
            let h = comm.proxy("A.B.C#5@tcp -h 127.0.0.1 -p 1").expect("valid");
            assert!(!Rc::ptr_eq(&a.obj.pool, &h.obj.pool), "a # suffix has its own connections");
            assert_eq!((a.hash(), h.hash(), h.with_hash(9).hash()), (None, Some(5), Some(9)));
            assert_eq!(comm.proxy("A.B.C").expect_err("no locator"), ClientError::NoLocator("A.B.C".into()));
            assert!(matches!(comm.proxy("A.B.C@udp -h h -p 1"), Err(ClientError::NoTcpEndpoint(_))));
            assert!(matches!(comm.proxy("@tcp -h h -p 1"), Err(ClientError::InvalidObject { .. })));
        })
        .expect("runtime starts");
    }
}
