//! Connection health of a store, shared by its workers and read by the admin command.
//! Touched once per job (two relaxed atomics) and under a mutex only on state changes.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::ddl::Dialect;
use crate::error::StoreError;

/// Whether the database is reachable, as last observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreState {
    /// No connection attempted yet.
    Unknown,
    /// The last attempt or statement reached the database.
    Up,
    /// The last connection attempt failed, or a connection broke.
    Down,
}

#[derive(Debug)]
struct Transition {
    state: StoreState,
    since: SystemTime,
    last_error: Option<String>,
}

/// Shared health of one store.
#[derive(Debug)]
pub struct Health {
    label: Arc<str>,
    dialect: Dialect,
    transition: Mutex<Transition>,
    pub(crate) connects: AtomicU64,
    pub(crate) failures: AtomicU64,
    pub(crate) completed: AtomicU64,
    /// Bumped whenever any worker loses its connection: the other workers' connections to the
    /// same server are then suspect and get pinged before their next job.
    pub(crate) losses: AtomicU64,
}

/// A snapshot for the admin command and tests.
#[derive(Debug, Clone)]
pub struct HealthReport {
    /// Redacted URL.
    pub store: String,
    /// Backend name.
    pub backend: &'static str,
    /// Current state.
    pub state: StoreState,
    /// When the state last changed (seconds since the epoch).
    pub since_unix: u64,
    /// The last error seen, if any.
    pub last_error: Option<String>,
    /// Successful connections made.
    pub connects: u64,
    /// Failed jobs and connection attempts.
    pub failures: u64,
    /// Jobs that completed successfully.
    pub completed: u64,
    /// Jobs waiting for a worker.
    pub queued: usize,
}

impl fmt::Display for HealthReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            StoreState::Unknown => "unknown",
            StoreState::Up => "up",
            StoreState::Down => "down",
        };
        write!(
            f,
            "{} backend={} state={} since={} connects={} completed={} failures={} queued={}",
            self.store, self.backend, state, self.since_unix, self.connects, self.completed, self.failures, self.queued
        )?;
        if let Some(e) = &self.last_error {
            write!(f, " last_error={e:?}")?;
        }
        Ok(())
    }
}

impl Health {
    pub(crate) fn new(label: Arc<str>, dialect: Dialect) -> Self {
        Health {
            label,
            dialect,
            transition: Mutex::new(Transition {
                state: StoreState::Unknown,
                since: SystemTime::now(),
                last_error: None,
            }),
            connects: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            completed: AtomicU64::new(0),
            losses: AtomicU64::new(0),
        }
    }

    fn set(&self, state: StoreState, error: Option<String>) {
        let Ok(mut t) = self.transition.lock() else { return };
        if error.is_some() {
            t.last_error = error.clone();
        }
        if t.state == state {
            return;
        }
        match (t.state, state) {
            (StoreState::Down, StoreState::Up) => tracing::info!(store = %self.label, "storage is reachable again"),
            (_, StoreState::Down) => {
                tracing::warn!(store = %self.label, error = error.as_deref().unwrap_or(""), "storage is unreachable")
            }
            _ => tracing::info!(store = %self.label, "storage connected"),
        }
        t.state = state;
        t.since = SystemTime::now();
    }

    pub(crate) fn connected(&self) {
        self.connects.fetch_add(1, Ordering::Relaxed);
        self.set(StoreState::Up, None);
    }

    pub(crate) fn connect_failed(&self, e: &StoreError) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        self.set(StoreState::Down, Some(e.to_string()));
    }

    pub(crate) fn lost(&self) {
        self.losses.fetch_add(1, Ordering::Relaxed);
        self.set(StoreState::Down, None);
    }

    pub(crate) fn finished<T>(&self, r: &Result<T, StoreError>) {
        match r {
            Ok(_) => {
                self.completed.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                if let StoreError::ConnectionLost { .. } = e {
                    self.set(StoreState::Down, Some(e.to_string()));
                } else if let Ok(mut t) = self.transition.lock() {
                    t.last_error = Some(e.to_string());
                }
            }
        }
    }

    /// The last error message, if any.
    pub fn last_error(&self) -> Option<String> {
        self.transition.lock().ok().and_then(|t| t.last_error.clone())
    }

    pub(crate) fn report(&self, queued: usize) -> HealthReport {
        let (state, since, last_error) = match self.transition.lock() {
            Ok(t) => (t.state, t.since, t.last_error.clone()),
            Err(_) => (StoreState::Unknown, SystemTime::now(), None),
        };
        HealthReport {
            store: self.label.to_string(),
            backend: self.dialect.name(),
            state,
            since_unix: since.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
            last_error,
            connects: self.connects.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            completed: self.completed.load(Ordering::Relaxed),
            queued,
        }
    }
}
