//! A server's internal state (`ServerObject::InternalServerState`), how it is reported, and the
//! restart throttle (`Activator::addActivatingRecord` / `isActivatingLimited`). Sans-IO.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use tars_protocol::tars::ServerState;

use crate::settings::Throttle;

/// The states of a server on this node, as upstream's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Not running.
    Inactive,
    /// Started, not heart-beating yet.
    Activating,
    /// Running and heart-beating.
    Active,
    /// Being stopped.
    Deactivating,
    /// Being destroyed.
    Destroying,
    /// Destroyed.
    Destroyed,
    /// Its config is being regenerated.
    Loading,
    /// Being patched.
    Patching,
    /// Being patched in a batch.
    BatchPatching,
    /// Files being added.
    AddFilesing,
}

impl State {
    /// Upstream's name (`toStringState`).
    pub fn name(self) -> &'static str {
        match self {
            State::Inactive => "Inactive",
            State::Activating => "Activating",
            State::Active => "Active",
            State::Deactivating => "Deactivating",
            State::Destroying => "Destroying",
            State::Destroyed => "Destroyed",
            State::Loading => "Loading",
            State::Patching => "Patching",
            State::BatchPatching => "BatchPatching",
            State::AddFilesing => "AddFilesing",
        }
    }

    /// The wire state (`toServerState`): the node-only states read as Inactive.
    pub fn wire(self) -> ServerState {
        match self {
            State::Activating => ServerState::Activating,
            State::Active => ServerState::Active,
            State::Deactivating => ServerState::Deactivating,
            State::Destroying => ServerState::Destroying,
            State::Destroyed => ServerState::Destroyed,
            State::Inactive | State::Loading | State::Patching | State::BatchPatching | State::AddFilesing => {
                ServerState::Inactive
            }
        }
    }

    /// Upstream's "the name contains `ing`": a transition is under way.
    pub fn is_transitional(self) -> bool {
        self.name().contains("ing")
    }

    /// A state that only stands for a while before the previous one comes back (config reload,
    /// patch). While in one, the registry is told the state from before it (upstream reports
    /// Inactive, taking a healthy server out of routing).
    pub fn is_overlay(self) -> bool {
        matches!(self, State::Loading | State::Patching | State::BatchPatching | State::AddFilesing)
    }
}

/// The restart throttle of one server. Upstream counts starts each within the interval of the
/// previous one and never resets the count before a punishment; here a gap of at least the
/// interval starts the count again, so only a run of quick starts is punished.
#[derive(Debug, Clone, Default)]
pub struct Activator {
    /// Start times of the current run, oldest first (at most `max_count + 2` kept).
    starts: VecDeque<Instant>,
    /// While set (and the last start is within the punish time), auto start is refused.
    limited_since: Option<Instant>,
}

impl Activator {
    /// Records a start at `now`; `true` when this start makes the server limited.
    pub fn record(&mut self, now: Instant, t: &Throttle) -> bool {
        if let Some(last) = self.starts.back() {
            if now.duration_since(*last) >= t.interval {
                self.starts.clear();
            }
        }
        if self.limited_since.is_some() && !self.is_limited(now, t) {
            self.limited_since = None;
            self.starts.clear();
        }
        self.starts.push_back(now);
        let keep = usize::try_from(t.max_count).unwrap_or(usize::MAX).saturating_add(2);
        while self.starts.len() > keep {
            self.starts.pop_front();
        }
        // Starts after the first of the run, each within the interval of the previous.
        let quick = self.starts.len().saturating_sub(1);
        if self.limited_since.is_none() && quick > usize::try_from(t.max_count).unwrap_or(usize::MAX) {
            self.limited_since = Some(now);
            return true;
        }
        false
    }

    /// Auto start refused: limited and the last start is within the punish time.
    pub fn is_limited(&self, now: Instant, t: &Throttle) -> bool {
        match (self.limited_since, self.starts.back()) {
            (Some(_), Some(last)) => now.duration_since(*last) < t.punish,
            _ => false,
        }
    }

    /// How many starts the current run holds.
    pub fn run_len(&self) -> usize {
        self.starts.len()
    }

    /// Forgets the record (an operator's start).
    pub fn reset(&mut self) {
        self.starts.clear();
        self.limited_since = None;
    }
}

/// Time left until `deadline`, zero when past.
pub fn left(now: Instant, since: Instant, limit: Duration) -> Duration {
    limit.saturating_sub(now.duration_since(since))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loading_reports_inactive_but_is_an_overlay() {
        assert_eq!(State::Loading.wire(), ServerState::Inactive);
        assert!(State::Loading.is_overlay() && State::Loading.is_transitional());
        assert!(State::Activating.is_transitional() && !State::Activating.is_overlay());
        assert!(!State::Active.is_transitional());
    }

    #[test]
    fn eleven_quick_restarts_limit() {
        let t = Throttle::default();
        let mut a = Activator::default();
        let t0 = Instant::now();
        // The first start and 10 quick restarts: not limited yet.
        for i in 0..11 {
            assert!(!a.record(t0 + Duration::from_secs(i), &t), "start {i}");
        }
        assert!(!a.is_limited(t0 + Duration::from_secs(11), &t));
        // The 11th quick restart (12th start) limits.
        assert!(a.record(t0 + Duration::from_secs(11), &t));
        assert!(a.is_limited(t0 + Duration::from_secs(12), &t));
        assert!(!a.is_limited(t0 + Duration::from_secs(11 + 600), &t));
    }

    #[test]
    fn slow_restarts_never_limit() {
        let t = Throttle::default();
        let mut a = Activator::default();
        let t0 = Instant::now();
        for i in 0..50 {
            assert!(!a.record(t0 + Duration::from_secs(61 * i), &t));
        }
    }
}
