//! What one shard of a server owns: its listeners, its servant instances, its connections.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::adapter::AdapterConfig;
use super::conn::{Conn, ConnShared};
use super::raw::{self, RawServant};
use super::{AdapterStats, ConnInfo, ServerShared};
use crate::app::stat::{ShardStats, HAND_OFF_EVERY};
use crate::rt::{self, net::TcpListener, ShardInfo};
use tars_proto::dispatch::Dispatch;
use tars_proto::frame::FrameDecoder;

/// What answers an adapter's requests on one shard.
pub(super) enum Handler {
    /// A TARS servant (`protocol=tars`).
    Tars(Rc<dyn Dispatch>),
    /// A servant of its own byte protocol (`protocol=not_tars`).
    Raw(Rc<dyn RawServant>),
}

/// One adapter as served by one shard: its config, this shard's servant instance and the
/// counters of this shard's share of it. Lives on one shard.
pub(super) struct AdapterRt {
    pub(super) config: AdapterConfig,
    pub(super) handler: Handler,
    pub(super) decoder: FrameDecoder,
    /// Calls of this adapter on this shard still running (spawned, not answered inline).
    pub(super) inflight: Cell<usize>,
    /// Open connections of this adapter on this shard.
    pub(super) conns: Cell<usize>,
    /// This shard's share of `maxconns`.
    max_conns: usize,
    stats: Arc<AdapterStats>,
    /// This shard's request count for the adapter.
    requests: Arc<std::sync::atomic::AtomicU64>,
}

/// A server's state on one shard. Lives on that shard.
pub(super) struct ShardServer {
    pub(super) info: ShardInfo,
    pub(super) stopping: Cell<bool>,
    shared: Arc<ServerShared>,
    conns: RefCell<HashMap<u64, Rc<ConnShared>>>,
    /// This shard's server-side call statistics, when the application reports them.
    pub(super) stats: Option<ShardStats>,
}

impl ShardServer {
    pub(super) fn count_request(&self, adapter: &AdapterRt) {
        // This shard's own counter: uncontended, read only by the admin view.
        adapter.requests.fetch_add(1, Ordering::Relaxed);
    }
}

/// Runs one shard of the server: binds every adapter in `adapters`, reports the bound
/// addresses through `ready`, serves until the server stops, then drains.
pub(super) async fn run_shard(
    info: ShardInfo,
    shared: Arc<ServerShared>,
    adapters: Vec<(AdapterConfig, SocketAddr, Arc<AdapterStats>)>,
    ready: std::sync::mpsc::Sender<Result<Vec<(String, SocketAddr)>, String>>,
) {
    let shard = Rc::new(ShardServer {
        info,
        stopping: Cell::new(false),
        shared: shared.clone(),
        conns: RefCell::new(HashMap::new()),
        stats: shared.stat_sink.clone().map(ShardStats::new),
    });
    let _tick = shard.stats.is_some().then(|| rt::spawn(hand_off_loop(Rc::downgrade(&shard))));
    let mut listeners = Vec::new();
    let mut bound = Vec::new();
    for (config, addr, stats) in adapters {
        let handler = match shared.make_handler(&config, info) {
            Some(s) => s,
            None => {
                let _ = ready.send(Err(format!("no servant registered for {}", config.servant)));
                return;
            }
        };
        let listener = match TcpListener::bind(addr) {
            Ok(l) => l,
            Err(e) => {
                let _ = ready.send(Err(format!("adapter {} cannot bind {addr}: {e}", config.name)));
                return;
            }
        };
        let local = listener.local_addr().unwrap_or(addr);
        bound.push((config.name.clone(), local));
        let max_conns = config.max_conns.div_ceil(info.count).max(1);
        let decoder = FrameDecoder::with_max_frame(shared.max_frame).unwrap_or_default();
        let adapter = Rc::new(AdapterRt {
            config,
            handler,
            decoder,
            inflight: Cell::new(0),
            conns: Cell::new(0),
            max_conns,
            requests: stats.shard_counter(),
            stats,
        });
        listeners.push(rt::spawn(accept_loop(shard.clone(), adapter, listener)));
    }
    if ready.send(Ok(bound)).is_err() {
        return;
    }
    // Closed (never sent to) when the server stops.
    let _ = shared.stop_rx.recv().await;
    shard.stopping.set(true);
    drop(listeners);
    let conns: Vec<_> = shard.conns.borrow().values().cloned().collect();
    for c in conns {
        c.notify.notify();
    }
    let deadline = Instant::now() + shared.drain_timeout;
    while !shard.conns.borrow().is_empty() && Instant::now() < deadline {
        rt::sleep(Duration::from_millis(5)).await;
    }
    let left = shard.conns.borrow().len();
    if left > 0 {
        tracing::warn!(shard = info.id, connections = left, "drain timeout; closing remaining connections");
    }
    if let Some(s) = &shard.stats {
        s.hand_off();
    }
}

/// Hands the shard's call statistics over every second, calls or not.
async fn hand_off_loop(shard: std::rc::Weak<ShardServer>) {
    loop {
        rt::sleep(HAND_OFF_EVERY).await;
        let Some(shard) = shard.upgrade() else { return };
        if let Some(s) = &shard.stats {
            s.hand_off();
        }
    }
}

async fn accept_loop(shard: Rc<ShardServer>, adapter: Rc<AdapterRt>, listener: TcpListener) {
    loop {
        let stream = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning; the listener stays.
                crate::limited!(warn, adapter = %adapter.config.name, error = %e, "accept failed");
                rt::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(peer) = stream.peer_addr() else { continue };
        if !adapter.config.allow.is_allowed(peer.ip()) {
            crate::limited!(info, adapter = %adapter.config.name, %peer, "connection refused by allow/deny list");
            continue;
        }
        if adapter.conns.get() >= adapter.max_conns {
            crate::limited!(warn, adapter = %adapter.config.name, %peer, max = adapter.config.max_conns, "maxconns reached; refusing");
            continue;
        }
        let per_ip = adapter.config.max_conns_per_ip;
        if per_ip > 0 && !adapter.stats.admit_ip(peer.ip(), per_ip) {
            crate::limited!(warn, adapter = %adapter.config.name, %peer, max = per_ip, "maxconnsperip reached; refusing");
            continue;
        }
        let _ = stream.set_nodelay(true);
        let id = shard.shared.next_conn_id();
        let conn_shared = Rc::new(ConnShared::default());
        shard.conns.borrow_mut().insert(id, conn_shared.clone());
        adapter.conns.set(adapter.conns.get() + 1);
        adapter.stats.conns.fetch_add(1, Ordering::Relaxed);
        shard.shared.conn_opened(
            id,
            ConnInfo {
                adapter: adapter.config.name.clone(),
                peer,
                shard: shard.info.id,
                since: std::time::SystemTime::now(),
            },
        );
        let (shard, adapter) = (shard.clone(), adapter.clone());
        rt::spawn(async move {
            match &adapter.handler {
                Handler::Tars(_) => {
                    Conn::new(id, stream, peer, adapter.clone(), shard.clone(), conn_shared).run().await;
                }
                Handler::Raw(servant) => {
                    let servant = servant.clone();
                    raw::serve(stream, peer, adapter.clone(), servant, shard.clone(), conn_shared).await;
                }
            }
            shard.conns.borrow_mut().remove(&id);
            adapter.conns.set(adapter.conns.get() - 1);
            adapter.stats.conns.fetch_sub(1, Ordering::Relaxed);
            if adapter.config.max_conns_per_ip > 0 {
                adapter.stats.release_ip(peer.ip());
            }
            shard.shared.conn_closed(id);
        })
        .detach();
    }
}
