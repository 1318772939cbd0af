//! The nodes' push connections and the commands in flight on them (upstream
//! `NodeManager::createNodeCurrent`, `requestNode`, `reportResult`).
//!
//! A node calls `AdminReg.reportNode` every few seconds on a long connection; the connection's
//! [`PushHandle`] is kept under the node's name, most recent first. A command gets a request id,
//! goes out as a `NodePush` push on the newest open connection, and waits for the node's
//! `AdminReg.reportResult` with that id, which may arrive on any connection and so on any
//! shard.
//!
//! [`Links`] is shared by every shard (and the task runner): both tables sit behind a
//! `Mutex`. That is acceptable here: commands are operator actions, a few per second at most,
//! and no lock is held across an await.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tars_core_net::rt;
use tars_proto::codec::BinString;
use tars_proto::push::PushHandle;
use tars_protocol::tars::NodePushMessage;

/// Connections kept per node: a node has one per AdminReg instance, reconnects replace them.
const MAX_HANDLES: usize = 4;

/// A node's answer to one push: `reportResult`'s `ret` and `result`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeAnswer {
    /// `ret`.
    pub ret: i32,
    /// `result`: text, or the TARS-encoded output of a query.
    pub result: BinString,
}

/// Why a pushed command got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PushFailure {
    /// No open connection from the node to this instance.
    #[error("no connection from the node to this AdminReg")]
    NoConnection,
    /// The node did not answer in time.
    #[error("the node did not answer in time")]
    Timeout,
}

/// Node name → push connections, and request id → waiting command. Shared by all shards.
#[derive(Debug, Default)]
pub struct Links {
    nodes: Mutex<HashMap<String, Vec<PushHandle>>>,
    /// Node → local time of its last `reportNode` (`getNodeList`'s heartbeats).
    last_report: Mutex<HashMap<String, String>>,
    pending: Mutex<HashMap<i32, async_channel::Sender<NodeAnswer>>>,
    next_id: AtomicI32,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Links {
    /// Records that `node` reported on `handle`'s connection: it goes first; closed ones go.
    pub fn report(&self, node: &str, handle: PushHandle) {
        let mut nodes = lock(&self.nodes);
        let list = nodes.entry(node.to_owned()).or_default();
        list.retain(|h| h.id() != handle.id() && !h.is_closed());
        list.insert(0, handle);
        list.truncate(MAX_HANDLES);
        drop(nodes);
        let now = chrono::Local::now().format("%Y-%m-%d %H:%M:%S").to_string();
        lock(&self.last_report).insert(node.to_owned(), now);
    }

    /// When `node` last reported on any connection to this instance.
    pub fn last_report(&self, node: &str) -> Option<String> {
        lock(&self.last_report).get(node).cloned()
    }

    /// Forgets `node` (`deleteNode`).
    pub fn forget(&self, node: &str) {
        lock(&self.nodes).remove(node);
        lock(&self.last_report).remove(node);
    }

    /// The newest open connection of `node`; closed ones are dropped on the way.
    pub fn handle(&self, node: &str) -> Option<PushHandle> {
        let mut nodes = lock(&self.nodes);
        let list = nodes.get_mut(node)?;
        list.retain(|h| !h.is_closed());
        let first = list.first().cloned();
        if list.is_empty() {
            nodes.remove(node);
        }
        first
    }

    /// Open connections of `node`.
    pub fn connections(&self, node: &str) -> usize {
        lock(&self.nodes).get(node).map_or(0, |l| l.iter().filter(|h| !h.is_closed()).count())
    }

    /// Nodes with an open connection, sorted.
    pub fn connected_nodes(&self) -> Vec<String> {
        let nodes = lock(&self.nodes);
        let mut v: Vec<String> =
            nodes.iter().filter(|(_, l)| l.iter().any(|h| !h.is_closed())).map(|(n, _)| n.clone()).collect();
        v.sort();
        v
    }

    /// Drops closed connections and nodes left without any (the reap thread).
    pub fn prune(&self) {
        lock(&self.nodes).retain(|_, l| {
            l.retain(|h| !h.is_closed());
            !l.is_empty()
        });
    }

    /// Commands waiting for an answer.
    pub fn in_flight(&self) -> usize {
        lock(&self.pending).len()
    }

    fn allocate(&self) -> (i32, async_channel::Receiver<NodeAnswer>) {
        let (tx, rx) = async_channel::bounded(1);
        let mut pending = lock(&self.pending);
        loop {
            // Positive and never 0 (0 is the push packets' own request id).
            let id = self.next_id.fetch_add(1, Ordering::Relaxed).wrapping_add(1) & i32::MAX;
            if id != 0 && !pending.contains_key(&id) {
                pending.insert(id, tx);
                return (id, rx);
            }
        }
    }

    fn cancel(&self, id: i32) {
        lock(&self.pending).remove(&id);
    }

    /// Pushes the command `make(request_id)` to `node` and waits up to `timeout` for its
    /// `reportResult`. Runs on any executor (a shard, the task runner).
    pub async fn call(
        &self,
        node: &str,
        make: impl FnOnce(i32) -> NodePushMessage,
        timeout: Duration,
    ) -> Result<NodeAnswer, PushFailure> {
        let handle = self.handle(node).ok_or(PushFailure::NoConnection)?;
        let (id, rx) = self.allocate();
        // Removes the entry however this ends, also when the caller's future is dropped.
        let _pending = Pending { links: self, id };
        let msg = make(id);
        if let Err(e) = handle.push(msg.func(), 1, msg.encode(1)) {
            tracing::debug!(node, func = msg.func(), error = %e, "adminreg: push failed");
            return Err(PushFailure::NoConnection);
        }
        match rt::timeout(timeout, rx.recv()).await {
            Ok(Ok(answer)) => Ok(answer),
            _ => Err(PushFailure::Timeout),
        }
    }

    /// A node's `reportResult`: wakes the command waiting on `request_id`. False when none
    /// waits (it timed out, or the id is unknown).
    pub fn complete(&self, request_id: i32, ret: i32, result: BinString) -> bool {
        let Some(tx) = lock(&self.pending).remove(&request_id) else { return false };
        tx.try_send(NodeAnswer { ret, result }).is_ok()
    }
}

/// A request id in the table for as long as its command waits.
struct Pending<'a> {
    links: &'a Links,
    id: i32,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        self.links.cancel(self.id);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;
    use tars_proto::push::{PushError, PushSink};
    use tars_proto::Bytes;

    #[derive(Default)]
    struct Sink(Mutex<Vec<Bytes>>, AtomicBool);
    impl PushSink for Sink {
        fn send(&self, frame: Bytes) -> Result<(), PushError> {
            self.0.lock().unwrap().push(frame);
            Ok(())
        }
        fn is_closed(&self) -> bool {
            self.1.load(Ordering::Relaxed)
        }
    }

    #[test]
    fn newest_open_connection_first_closed_ones_dropped() {
        let links = Links::default();
        let (a, b) = (Arc::new(Sink::default()), Arc::new(Sink::default()));
        links.report("n1", PushHandle::new(1, a.clone()));
        links.report("n1", PushHandle::new(2, b.clone()));
        links.report("n1", PushHandle::new(2, b.clone()));
        assert_eq!(links.connections("n1"), 2);
        assert_eq!(links.handle("n1").unwrap().id(), 2);
        b.1.store(true, Ordering::Relaxed);
        assert_eq!(links.handle("n1").unwrap().id(), 1);
        a.1.store(true, Ordering::Relaxed);
        assert!(links.handle("n1").is_none());
        assert!(links.connected_nodes().is_empty());
    }

    #[test]
    fn unknown_or_late_results_are_ignored() {
        let links = Links::default();
        assert!(!links.complete(7, 0, BinString::default()));
        let (id, rx) = links.allocate();
        assert!(links.complete(id, 3, "x".into()));
        assert_eq!(rx.try_recv().unwrap().ret, 3);
        assert!(!links.complete(id, 3, "x".into()));
    }
}
