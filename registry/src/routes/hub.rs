//! How route changes reach the shards.
//!
//! The loader publishes a [`Delta`] to the [`RouteHub`]; each shard has a mailbox that
//! coalesces pending changes by servant, so a shard that gets no queries for an hour holds
//! at most one pending entry per servant, not an hour of deltas. A shard's [`ShardRoutes`]
//! checks one atomic flag per query and only then takes its mailbox (a lock shared with the
//! loader alone, held for a swap). Queries themselves read the shard's own map: no lock, no
//! shared cache line.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use super::fast::{Answers, FastTable};
use super::master::Delta;
use super::table::{Groups, ServantRoutes};

#[derive(Debug, Default)]
struct Pending {
    servants: HashMap<String, Option<Arc<ServantRoutes>>>,
    groups: Option<Arc<Groups>>,
    version: u64,
}

#[derive(Debug, Default)]
struct Mailbox {
    dirty: AtomicBool,
    pending: Mutex<Pending>,
}

#[derive(Debug, Default)]
struct HubState {
    servants: HashMap<String, Arc<ServantRoutes>>,
    groups: Arc<Groups>,
    version: u64,
    mailboxes: Vec<std::sync::Weak<Mailbox>>,
}

/// The loader's side: the current routes and every shard's mailbox. Shared by the loader
/// thread and the shards' servant factories; touched on publish and subscribe only.
#[derive(Debug, Default)]
pub struct RouteHub {
    state: Mutex<HubState>,
    version: AtomicU64,
}

impl RouteHub {
    /// An empty hub.
    pub fn new() -> Arc<RouteHub> {
        Arc::new(RouteHub::default())
    }

    /// Applies `delta` and forwards it to every live shard.
    pub fn publish(&self, delta: Delta) {
        if delta.is_empty() {
            return;
        }
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        st.version += 1;
        let version = st.version;
        if let Some(g) = &delta.groups {
            st.groups = g.clone();
        }
        for (name, routes) in &delta.servants {
            match routes {
                Some(r) => st.servants.insert(name.clone(), r.clone()),
                None => st.servants.remove(name),
            };
        }
        st.mailboxes.retain(|w| w.strong_count() > 0);
        for mb in st.mailboxes.iter().filter_map(std::sync::Weak::upgrade) {
            let mut p = mb.pending.lock().unwrap_or_else(PoisonError::into_inner);
            for (name, routes) in &delta.servants {
                p.servants.insert(name.clone(), routes.clone());
            }
            if let Some(g) = &delta.groups {
                p.groups = Some(g.clone());
            }
            p.version = version;
            mb.dirty.store(true, Ordering::Release);
        }
        self.version.store(version, Ordering::Release);
    }

    /// A shard's own copy of the routes, kept current through its mailbox.
    pub fn subscribe(&self) -> ShardRoutes {
        let mailbox = Arc::new(Mailbox::default());
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        st.mailboxes.push(Arc::downgrade(&mailbox));
        let mut fast = FastTable::default();
        for (name, routes) in &st.servants {
            fast.insert(name, &routes.encoded);
        }
        ShardRoutes {
            mailbox,
            servants: RefCell::new(st.servants.clone()),
            fast: RefCell::new(fast),
            groups: RefCell::new(st.groups.clone()),
            version: Cell::new(st.version),
        }
    }

    /// How many deltas have been published.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// How many servants are routed.
    pub fn servant_count(&self) -> usize {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).servants.len()
    }
}

/// One shard's read-only route table. Lives on one shard (inside that shard's QueryObj
/// servant); never crosses threads.
#[derive(Debug)]
pub struct ShardRoutes {
    mailbox: Arc<Mailbox>,
    servants: RefCell<HashMap<String, Arc<ServantRoutes>>>,
    /// The same servants' pre-encoded answers, laid out for the hot calls.
    fast: RefCell<FastTable>,
    groups: RefCell<Arc<Groups>>,
    version: Cell<u64>,
}

impl ShardRoutes {
    /// Applies pending changes, if any. One relaxed-cost atomic load when there are none.
    pub fn refresh(&self) {
        // A load first: the swap writes the line, and queries far outnumber changes.
        if !self.mailbox.dirty.load(Ordering::Acquire) || !self.mailbox.dirty.swap(false, Ordering::AcqRel) {
            return;
        }
        let pending = std::mem::take(&mut *self.mailbox.pending.lock().unwrap_or_else(PoisonError::into_inner));
        let mut servants = self.servants.borrow_mut();
        let mut fast = self.fast.borrow_mut();
        for (name, routes) in pending.servants {
            match routes {
                Some(r) => {
                    fast.insert(&name, &r.encoded);
                    servants.insert(name, r);
                }
                None => {
                    fast.remove(&name);
                    servants.remove(&name);
                }
            };
        }
        if let Some(g) = pending.groups {
            *self.groups.borrow_mut() = g;
        }
        self.version.set(self.version.get().max(pending.version));
    }

    /// Runs `f` with the servant's routes (`None`: unknown) and the group tables.
    pub fn with<T>(&self, servant: &str, f: impl FnOnce(Option<&ServantRoutes>, &Groups) -> T) -> T {
        self.refresh();
        let servants = self.servants.borrow();
        let groups = self.groups.borrow();
        f(servants.get(servant).map(Arc::as_ref), &groups)
    }

    /// Runs `f` with the servant's pre-encoded answers (`None`: unknown).
    pub fn with_answers<T>(&self, servant: &[u8], f: impl FnOnce(Option<Answers<'_>>) -> T) -> T {
        self.refresh();
        f(self.fast.borrow().get(servant))
    }

    /// The last version applied.
    pub fn version(&self) -> u64 {
        self.version.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_see_publishes_coalesced_and_removals() {
        let hub = RouteHub::new();
        let routes = Arc::new(ServantRoutes::default());
        hub.publish(Delta { servants: vec![("A.S.Obj".into(), Some(routes.clone()))], groups: None });
        let shard = hub.subscribe();
        assert!(shard.with("A.S.Obj", |r, _| r.is_some()));
        assert!(shard.with_answers(b"A.S.Obj", |a| a.is_some()));
        for _ in 0..100 {
            hub.publish(Delta { servants: vec![("B.S.Obj".into(), Some(routes.clone()))], groups: None });
        }
        assert_eq!(shard.mailbox.pending.lock().map(|p| p.servants.len()).unwrap_or(0), 1);
        hub.publish(Delta { servants: vec![("A.S.Obj".into(), None)], groups: None });
        assert!(!shard.with("A.S.Obj", |r, _| r.is_some()));
        assert!(!shard.with_answers(b"A.S.Obj", |a| a.is_some()));
        assert!(shard.with("B.S.Obj", |r, _| r.is_some()));
        assert!(shard.with_answers(b"B.S.Obj", |a| a.is_some()));
        assert_eq!(shard.version(), 102);
        drop(shard);
        hub.publish(Delta { servants: vec![("C.S.Obj".into(), Some(routes))], groups: None });
        assert_eq!(hub.state.lock().map(|s| s.mailboxes.len()).unwrap_or(9), 0);
    }
}
