//! The registry's periodic database work, on one thread of its own (never an IO shard):
//!
//! | job | every | effect |
//! |---|---|---|
//! | heartbeat | `loadObjectsInterval1` | upserts this registry's `t_registry_info` rows (skipped with `heartbeatoff=Y`) |
//! | registry timeout | `registryTimeout` | registries and AdminRegs silent that long → `inactive` |
//! | node timeout | `nodeTimeoutInterval` | nodes silent for `nodeTimeout` → `inactive`, with their servers (pid 0) |
//! | container clean-up | `cleanInterval` | container nodes inactive for `cleanInactiveAfter` are removed ([`crate::container::clean`]) |
//!
//! Times are compared with the database's clock, so registry and database clocks need not
//! agree, and several registries running the same jobs on one database is harmless: every
//! statement is idempotent.

use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tars_sql::{params, SetTo, Store, StoreError};

use crate::Context;

/// One of this registry's own objects, as published in `t_registry_info`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnObject {
    /// e.g. `tars.tarsregistry.QueryObj`.
    pub servant: String,
    /// e.g. `tcp -h 10.0.0.1 -p 17890 -t 10000`.
    pub endpoint: String,
}

/// The running jobs thread; dropping it stops the thread.
#[derive(Debug)]
pub struct JobsHandle {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for JobsHandle {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Upserts this registry's `t_registry_info` rows: `locator_id` is the QueryObj `host:port`,
/// one row per object.
pub fn heartbeat(store: &Store, locator_id: &str, objects: &[OwnObject]) -> Result<(), StoreError> {
    let dialect = store.dialect();
    let locator_id = locator_id.to_owned();
    let objects = objects.to_vec();
    let version = env!("CARGO_PKG_VERSION").to_owned();
    store.run_blocking(move |s| {
        let tail = dialect.on_conflict_update(
            &["locator_id", "servant"],
            &[
                ("endpoint", SetTo::New),
                ("last_heartbeat", SetTo::Expr(dialect.now())),
                ("present_state", SetTo::Expr("'active'")),
                ("tars_version", SetTo::New),
            ],
        )?;
        let sql = format!(
            "INSERT INTO t_registry_info (locator_id, servant, endpoint, last_heartbeat, present_state, tars_version) \
             VALUES (?, ?, ?, {now}, 'active', ?){tail}",
            now = dialect.now()
        );
        tars_sql::transaction(s, |s| {
            for o in &objects {
                s.exec(&sql, &params![locator_id.as_str(), o.servant.as_str(), o.endpoint.as_str(), version.as_str()])?;
            }
            Ok(())
        })
    })
}

/// Marks registries (and AdminRegs) silent for `timeout` inactive.
pub fn expire_registries(store: &Store, timeout: Duration) -> Result<u64, StoreError> {
    let sql = format!(
        "UPDATE t_registry_info SET present_state = 'inactive' WHERE present_state <> 'inactive' AND last_heartbeat < {}",
        store.dialect().seconds_before(store.dialect().now())
    );
    let secs = timeout.as_secs();
    store.run_blocking(move |s| s.exec(&sql, &params![secs]))
}

/// Marks nodes silent for `timeout` inactive, and their servers with them (process id 0).
/// Returns `(servers, nodes)` changed. Rows already inactive are left alone so their
/// `registry_timestamp` does not move on every run.
pub fn expire_nodes(store: &Store, timeout: Duration) -> Result<(u64, u64), StoreError> {
    let stale = format!("last_heartbeat < {}", store.dialect().seconds_before(store.dialect().now()));
    let servers = format!(
        "UPDATE t_server_conf SET present_state = 'inactive', process_id = 0 \
         WHERE (present_state <> 'inactive' OR process_id <> 0) \
         AND node_name IN (SELECT node_name FROM t_node_info WHERE {stale})"
    );
    let nodes =
        format!("UPDATE t_node_info SET present_state = 'inactive' WHERE present_state <> 'inactive' AND {stale}");
    let secs = timeout.as_secs();
    store.run_blocking(move |s| {
        tars_sql::transaction(s, |s| Ok((s.exec(&servers, &params![secs])?, s.exec(&nodes, &params![secs])?)))
    })
}

struct Timer {
    every: Duration,
    next: Instant,
}

impl Timer {
    fn new(every: Duration, now: Instant) -> Timer {
        Timer { every, next: now + every }
    }

    fn due(&mut self, now: Instant) -> bool {
        if now < self.next {
            return false;
        }
        self.next = now + self.every;
        true
    }
}

/// Starts the jobs thread. The heartbeat runs once right away (before this returns), so the
/// registry's own objects resolve as soon as it serves.
pub fn start(ctx: Arc<Context>, locator_id: String, objects: Vec<OwnObject>) -> std::io::Result<JobsHandle> {
    let c = &ctx.config;
    let beat = move |ctx: &Context| {
        if ctx.config.heartbeat_off {
            return;
        }
        if let Err(e) = heartbeat(&ctx.store, &locator_id, &objects) {
            tracing::warn!(error = %e, "registry: cannot publish this registry in t_registry_info");
        }
    };
    beat(&ctx);
    let now = Instant::now();
    let mut timers = [
        Timer::new(c.heartbeat_interval, now),
        Timer::new(c.registry_timeout, now),
        Timer::new(c.node_timeout_interval, now),
        Timer::new(c.clean_interval, now),
    ];
    let (tx, rx) = mpsc::channel::<()>();
    let thread = std::thread::Builder::new().name("tars-registry-jobs".into()).spawn(move || loop {
        let next = timers.iter().map(|t| t.next).min().unwrap_or_else(Instant::now);
        match rx.recv_timeout(next.saturating_duration_since(Instant::now())) {
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            _ => break,
        }
        let now = Instant::now();
        let c = &ctx.config;
        if timers[0].due(now) {
            beat(&ctx);
        }
        if timers[1].due(now) {
            if let Err(e) = expire_registries(&ctx.store, c.registry_timeout) {
                tracing::warn!(error = %e, "registry: registry timeout check failed");
            }
        }
        if timers[2].due(now) {
            match expire_nodes(&ctx.store, c.node_timeout) {
                Ok((0, 0)) => {}
                Ok((servers, nodes)) => tracing::info!(nodes, servers, "registry: silent nodes marked inactive"),
                Err(e) => tracing::warn!(error = %e, "registry: node timeout check failed"),
            }
        }
        if timers[3].due(now) && !c.clean_inactive_after.is_zero() {
            match crate::container::clean_blocking(&ctx, None, false) {
                Ok(report) => tracing::debug!(?report, "registry: container clean-up"),
                Err(e) => tracing::warn!(error = %e, "registry: container clean-up failed"),
            }
        }
    })?;
    Ok(JobsHandle { stop: Some(tx), thread: Some(thread) })
}
