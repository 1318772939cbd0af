//! Choosing an endpoint of one object for each call, sans-IO.
//!
//! An [`EndpointSet`] holds the endpoints the locator (or the `Obj@…` string) gave for one
//! object and answers "which one now?". It never reads a clock: every call that depends on
//! time takes `now`, and failure marks carry their own expiry, so the driver decides what
//! time it is and tests are deterministic.
//!
//! # Policies
//!
//! - [`EndpointSet::next_round_robin`]: each endpoint in turn.
//! - [`EndpointSet::next_weighted`]: static weights, when every endpoint has weight type 1
//!   (`-v 1`, weight `-w`, 100 when unset, at most 100). Smooth weighted round robin (as
//!   nginx): over any run of `sum(weights)` calls each endpoint is picked exactly its weight
//!   times, and picks are spread out instead of bunched. An endpoint of weight 0 is drained:
//!   it is never picked, by any policy, unless every weight is 0 (then the set behaves as
//!   round robin).
//! - [`EndpointSet::by_hash`]: the same code goes to the same endpoint, whatever order the
//!   locator listed them in. Like TarsCpp's `getHashProxyForNormal`, the code indexes the list
//!   sorted by endpoint string (`code % n`); if that endpoint is failed the code is hashed
//!   again over the healthy ones only, so only the calls of a failed endpoint move.
//! - [`EndpointSet::select`]: weighted when the set is weighted, else round robin.
//!
//! # Failures
//!
//! [`EndpointSet::mark_failed`] takes an endpoint out of selection until a given instant
//! (at `now >= until` it is picked again). When every eligible endpoint is marked, selection
//! falls back to the marked ones rather than failing the call outright: a stale mark must not
//! take a whole object down. Endpoints are identified by transport, host and port, so a mark
//! survives a refresh that only changes an endpoint's timeout or weight.
//!
//! # Refresh
//!
//! [`EndpointSet::replace`] installs a new list from the locator, keeping the round-robin
//! position and the failure marks of endpoints still present. It refuses an empty active list:
//! callers keep the last good list when the locator fails or returns nothing, as TarsCpp does,
//! because a registry hiccup must not make every call fail.
//!
//! The locator's `EndpointF` is converted to [`Endpoint`] by the caller (this crate cannot
//! depend on the generated protocol types).

use std::collections::HashSet;
use std::time::Instant;

use crate::endpoint::Endpoint;

/// The weight of an endpoint with a static weight type but no `-w`.
pub const DEFAULT_WEIGHT: u32 = 100;
/// Weights above this count as this (TarsCpp caps them too).
pub const MAX_WEIGHT: u32 = 100;

/// Per-endpoint selection state, parallel to the endpoint list.
#[derive(Debug, Clone, Copy)]
struct Slot {
    /// Skipped while `now < failed_until`.
    failed_until: Option<Instant>,
    /// Smooth weighted round robin's running weight.
    current: i64,
    /// The static weight, normalised to 0..=100.
    weight: u32,
}

/// The endpoints of one object and the state needed to choose among them.
#[derive(Debug, Clone, Default)]
pub struct EndpointSet {
    endpoints: Vec<Endpoint>,
    slots: Vec<Slot>,
    inactive: Vec<Endpoint>,
    /// Indices of eligible endpoints, sorted by their string form (for hashing).
    sorted: Vec<usize>,
    /// Every endpoint has a static weight type.
    weighted: bool,
    /// Weighted, and every weight is 0.
    all_zero: bool,
    /// Where the next round-robin scan starts.
    cursor: usize,
}

impl EndpointSet {
    /// A set of `active` endpoints; duplicates (same transport, host and port) keep the first.
    pub fn new(active: Vec<Endpoint>) -> EndpointSet {
        EndpointSet::with_inactive(active, Vec::new())
    }

    /// A set of `active` endpoints, remembering the `inactive` ones the locator reported
    /// (never selected; kept for status displays and diagnostics).
    pub fn with_inactive(active: Vec<Endpoint>, inactive: Vec<Endpoint>) -> EndpointSet {
        let endpoints = dedup(active);
        let slots = endpoints.iter().map(|e| Slot { failed_until: None, current: 0, weight: weight_of(e) }).collect();
        let mut set = EndpointSet { endpoints, slots, inactive, ..EndpointSet::default() };
        set.reindex();
        set
    }

    /// The active endpoints, in the order given (duplicates removed).
    pub fn active(&self) -> &[Endpoint] {
        &self.endpoints
    }

    /// The inactive endpoints, as given.
    pub fn inactive(&self) -> &[Endpoint] {
        &self.inactive
    }

    /// The number of active endpoints.
    pub fn len(&self) -> usize {
        self.endpoints.len()
    }

    /// Whether there is no active endpoint (every selection returns `None`).
    pub fn is_empty(&self) -> bool {
        self.endpoints.is_empty()
    }

    /// Whether every active endpoint has a static weight type, so [`select`](Self::select)
    /// uses weights.
    pub fn is_weighted(&self) -> bool {
        self.weighted
    }

    /// The policy the endpoints ask for: weighted if [`is_weighted`](Self::is_weighted), else
    /// round robin.
    pub fn select(&mut self, now: Instant) -> Option<&Endpoint> {
        if self.weighted {
            self.next_weighted(now)
        } else {
            self.next_round_robin(now)
        }
    }

    /// The next endpoint in turn, skipping failed ones (and drained ones in a weighted set).
    pub fn next_round_robin(&mut self, now: Instant) -> Option<&Endpoint> {
        let n = self.endpoints.len();
        let start = self.cursor % n.max(1);
        let mut fallback = None;
        for k in 0..n {
            let i = (start + k) % n;
            if !self.eligible(i) {
                continue;
            }
            if self.healthy(i, now) {
                return Some(self.advance(i));
            }
            fallback = fallback.or(Some(i));
        }
        fallback.map(|i| self.advance(i))
    }

    /// The next endpoint by smooth weighted round robin over the healthy endpoints (or, when
    /// none is healthy, over the failed ones). On a set that is not weighted this is
    /// [`next_round_robin`](Self::next_round_robin).
    pub fn next_weighted(&mut self, now: Instant) -> Option<&Endpoint> {
        if !self.weighted {
            return self.next_round_robin(now);
        }
        let n = self.endpoints.len();
        let any_healthy = (0..n).any(|i| self.eligible(i) && self.healthy(i, now));
        let candidates: Vec<usize> =
            (0..n).filter(|&i| self.eligible(i) && (!any_healthy || self.healthy(i, now))).collect();
        let weight = |s: &Slot| if self.all_zero { 1 } else { i64::from(s.weight) };
        let total: i64 = candidates.iter().map(|&i| weight(&self.slots[i])).sum();
        let mut best: Option<(usize, i64)> = None;
        for &i in &candidates {
            let slot = &mut self.slots[i];
            slot.current += weight(slot);
            if best.is_none_or(|(_, c)| slot.current > c) {
                best = Some((i, slot.current));
            }
        }
        let (b, _) = best?;
        self.slots[b].current -= total;
        self.endpoints.get(b)
    }

    /// The endpoint for hash `code`: stable for a given list, whatever its order. A failed
    /// endpoint's codes are spread over the healthy ones; with none healthy, the failed
    /// endpoint is returned anyway.
    pub fn by_hash(&self, code: u64, now: Instant) -> Option<&Endpoint> {
        let n = self.sorted.len() as u64;
        if n == 0 {
            return None;
        }
        let primary = *self.sorted.get(usize::try_from(code % n).ok()?)?;
        if self.healthy(primary, now) {
            return self.endpoints.get(primary);
        }
        let healthy = self.sorted.iter().filter(|&&i| self.healthy(i, now)).count() as u64;
        if healthy == 0 {
            return self.endpoints.get(primary);
        }
        let k = usize::try_from(code % healthy).ok()?;
        let i = self.sorted.iter().copied().filter(|&i| self.healthy(i, now)).nth(k)?;
        self.endpoints.get(i)
    }

    /// Takes `endpoint` (matched by transport, host and port) out of selection until `until`.
    /// Returns whether it is in the set. A later mark replaces an earlier one.
    pub fn mark_failed(&mut self, endpoint: &Endpoint, until: Instant) -> bool {
        match self.position(endpoint) {
            Some(i) => {
                self.slots[i].failed_until = Some(until);
                true
            }
            None => false,
        }
    }

    /// Clears the failure mark of `endpoint` (say, after a call to it succeeded). Returns
    /// whether it is in the set.
    pub fn mark_alive(&mut self, endpoint: &Endpoint) -> bool {
        match self.position(endpoint) {
            Some(i) => {
                self.slots[i].failed_until = None;
                true
            }
            None => false,
        }
    }

    /// Whether `endpoint` is in the set and marked failed at `now`.
    pub fn is_failed(&self, endpoint: &Endpoint, now: Instant) -> bool {
        self.position(endpoint).is_some_and(|i| !self.healthy(i, now))
    }

    /// Installs the locator's new lists. Endpoints still present (same transport, host and
    /// port) keep their failure mark and weighted-round-robin state, and round robin resumes at
    /// the endpoint that was due next if it is still there.
    ///
    /// Returns whether anything changed. An empty `active` list is refused (returns `false`,
    /// the set is untouched): callers keep the last good list when the locator fails or
    /// returns nothing.
    pub fn replace(&mut self, active: Vec<Endpoint>, inactive: Vec<Endpoint>) -> bool {
        let active = dedup(active);
        if active.is_empty() {
            return false;
        }
        if same_members(&active, &self.endpoints) && same_members(&inactive, &self.inactive) {
            return false;
        }
        let due = self.endpoints.get(self.cursor % self.endpoints.len().max(1)).cloned();
        let slots = active
            .iter()
            .map(|e| {
                let old = self.position(e).map(|i| self.slots[i]);
                Slot {
                    failed_until: old.and_then(|s| s.failed_until),
                    current: old.map_or(0, |s| s.current),
                    weight: weight_of(e),
                }
            })
            .collect();
        self.cursor = due.and_then(|d| active.iter().position(|e| same_address(e, &d))).unwrap_or(self.cursor);
        self.endpoints = active;
        self.slots = slots;
        self.inactive = inactive;
        self.reindex();
        true
    }

    fn position(&self, endpoint: &Endpoint) -> Option<usize> {
        self.endpoints.iter().position(|e| same_address(e, endpoint))
    }

    fn healthy(&self, i: usize, now: Instant) -> bool {
        self.slots.get(i).is_some_and(|s| s.failed_until.is_none_or(|until| now >= until))
    }

    /// Drained (weight 0) endpoints are not eligible unless every endpoint is drained.
    fn eligible(&self, i: usize) -> bool {
        !self.weighted || self.all_zero || self.slots.get(i).is_some_and(|s| s.weight > 0)
    }

    fn advance(&mut self, i: usize) -> &Endpoint {
        self.cursor = i + 1;
        &self.endpoints[i]
    }

    fn reindex(&mut self) {
        self.weighted = !self.endpoints.is_empty() && self.endpoints.iter().all(|e| e.weight_type != 0);
        self.all_zero = self.weighted && self.slots.iter().all(|s| s.weight == 0);
        let mut keyed: Vec<(String, usize)> = (0..self.endpoints.len())
            .filter(|&i| self.eligible(i))
            .map(|i| (self.endpoints[i].to_string(), i))
            .collect();
        keyed.sort();
        self.sorted = keyed.into_iter().map(|(_, i)| i).collect();
    }
}

/// The static weight an endpoint asks for, normalised: unset (negative) is 100, and the
/// weight is capped at 100. Endpoint strings are already normalised by `Endpoint::parse`;
/// endpoints converted from `EndpointF` may not be.
fn weight_of(e: &Endpoint) -> u32 {
    u32::try_from(e.weight).map_or(DEFAULT_WEIGHT, |w| w.min(MAX_WEIGHT))
}

fn same_address(a: &Endpoint, b: &Endpoint) -> bool {
    a.transport == b.transport && a.port == b.port && a.host == b.host
}

fn dedup(list: Vec<Endpoint>) -> Vec<Endpoint> {
    let mut out: Vec<Endpoint> = Vec::with_capacity(list.len());
    for e in list {
        if !out.iter().any(|o| same_address(o, &e)) {
            out.push(e);
        }
    }
    out
}

/// Whether two lists hold the same endpoints (all fields), ignoring order.
fn same_members(a: &[Endpoint], b: &[Endpoint]) -> bool {
    a.len() == b.len() && {
        let set: HashSet<&Endpoint> = a.iter().collect();
        b.iter().all(|e| set.contains(e)) && b.iter().collect::<HashSet<_>>().len() == set.len()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use proptest::prelude::*;

    use super::*;

    fn ep(port: u16) -> Endpoint {
        Endpoint::parse(&format!("tcp -h 10.0.0.1 -p {port}")).expect("must be present and valid")
    }

    fn wep(port: u16, weight: i32) -> Endpoint {
        Endpoint::parse(&format!("tcp -h 10.0.0.1 -p {port} -w {weight} -v 1")).expect("must be present and valid")
    }

    fn rr(set: &mut EndpointSet, now: Instant, n: usize) -> Vec<u16> {
        (0..n).map(|_| set.next_round_robin(now).expect("must be present and valid").port).collect()
    }

    fn counts(picks: impl IntoIterator<Item = u16>) -> HashMap<u16, usize> {
        let mut m = HashMap::new();
        for p in picks {
            *m.entry(p).or_default() += 1;
        }
        m
    }

    #[test]
    fn empty_set_selects_nothing() {
        let mut s = EndpointSet::new(vec![]);
        let now = Instant::now();
        assert!(s.is_empty() && !s.is_weighted());
        assert!(s.next_round_robin(now).is_none());
        assert!(s.next_weighted(now).is_none());
        assert!(s.select(now).is_none());
        assert!(s.by_hash(7, now).is_none());
        assert!(!s.mark_failed(&ep(1), now));
    }

    #[test]
    fn round_robin_cycles_and_dedups() {
        let now = Instant::now();
        let mut s = EndpointSet::new(vec![
            ep(1),
            ep(2),
            ep(3),
            Endpoint::parse("tcp -h 10.0.0.1 -p 2 -t 9").expect("must be present and valid"),
        ]);
        assert_eq!(s.len(), 3);
        assert_eq!(rr(&mut s, now, 7), [1, 2, 3, 1, 2, 3, 1]);
        assert_eq!(s.select(now).expect("must be present and valid").port, 2, "select is round robin when unweighted");
    }

    #[test]
    fn failed_endpoints_are_skipped_until_expiry() {
        let t0 = Instant::now();
        let mut s = EndpointSet::new(vec![ep(1), ep(2), ep(3)]);
        assert!(s.mark_failed(&ep(2), t0 + Duration::from_secs(5)));
        assert!(s.is_failed(&ep(2), t0));
        assert_eq!(rr(&mut s, t0, 4), [1, 3, 1, 3]);
        let t5 = t0 + Duration::from_secs(5);
        assert!(!s.is_failed(&ep(2), t5), "usable again at the instant itself");
        assert_eq!(rr(&mut s, t5, 3), [1, 2, 3]);
        // Clearing a mark early.
        s.mark_failed(&ep(3), t0 + Duration::from_secs(60));
        assert!(s.mark_alive(&ep(3)));
        assert!(!s.is_failed(&ep(3), t0));
        assert!(!s.mark_alive(&ep(9)));
        assert!(!s.is_failed(&ep(9), t0));
    }

    #[test]
    fn all_failed_falls_back_to_failed_ones() {
        let t0 = Instant::now();
        let until = t0 + Duration::from_secs(1);
        let mut s = EndpointSet::new(vec![ep(1), ep(2)]);
        s.mark_failed(&ep(1), until);
        s.mark_failed(&ep(2), until);
        assert_eq!(rr(&mut s, t0, 4), [1, 2, 1, 2]);
        assert!(s.by_hash(3, t0).is_some());
        let mut w = EndpointSet::new(vec![wep(1, 10), wep(2, 30)]);
        w.mark_failed(&wep(1, 10), until);
        w.mark_failed(&wep(2, 30), until);
        let c = counts((0..40).map(|_| w.next_weighted(t0).expect("must be present and valid").port));
        assert_eq!((c[&1], c[&2]), (10, 30), "weights still apply among failed ones");
    }

    #[test]
    fn weighted_counts_are_exact() {
        let now = Instant::now();
        let mut s = EndpointSet::new(vec![wep(1, 10), wep(2, 30), wep(3, 60)]);
        assert!(s.is_weighted());
        let c = counts((0..100).map(|_| s.select(now).expect("must be present and valid").port));
        assert_eq!((c[&1], c[&2], c[&3]), (10, 30, 60));
        // Smooth: the heavy endpoint is never picked more than twice in a row here.
        let seq: Vec<u16> = (0..100).map(|_| s.next_weighted(now).expect("must be present and valid").port).collect();
        assert!(seq.windows(3).all(|w| !(w[0] == 3 && w[1] == 3 && w[2] == 3)), "{seq:?}");
    }

    #[test]
    fn weighted_skips_failed_and_drained() {
        let t0 = Instant::now();
        let mut s = EndpointSet::new(vec![wep(1, 0), wep(2, 50), wep(3, 50)]);
        let c = counts((0..100).map(|_| s.select(t0).expect("must be present and valid").port));
        assert_eq!((c.get(&1), c[&2], c[&3]), (None, 50, 50), "weight 0 is drained");
        assert_eq!(rr(&mut s, t0, 4), [2, 3, 2, 3], "round robin also skips drained endpoints");
        for code in 0..20 {
            assert_ne!(
                s.by_hash(code, t0).expect("must be present and valid").port,
                1,
                "hash also skips drained endpoints"
            );
        }
        s.mark_failed(&wep(2, 50), t0 + Duration::from_secs(1));
        let c = counts((0..10).map(|_| s.select(t0).expect("must be present and valid").port));
        assert_eq!(c[&3], 10);
        // Both positive ones failed: failed ones are preferred over a drained one.
        s.mark_failed(&wep(3, 50), t0 + Duration::from_secs(1));
        let c = counts((0..10).map(|_| s.select(t0).expect("must be present and valid").port));
        assert_eq!(c.get(&1), None);
    }

    #[test]
    fn all_zero_weights_are_round_robin() {
        let now = Instant::now();
        let mut s = EndpointSet::new(vec![wep(1, 0), wep(2, 0), wep(3, 0)]);
        let c = counts((0..9).map(|_| s.select(now).expect("must be present and valid").port));
        assert_eq!((c[&1], c[&2], c[&3]), (3, 3, 3));
        assert!(s.by_hash(1, now).is_some());
    }

    #[test]
    fn weight_normalisation_and_mixed_types() {
        let now = Instant::now();
        // From EndpointF a weight may arrive unset (-1) or above 100.
        let mut a = wep(1, 0);
        a.weight = -1;
        let mut b = wep(2, 0);
        b.weight = 400;
        let mut s = EndpointSet::new(vec![a, b, wep(3, 50)]);
        let c = counts((0..250).map(|_| s.select(now).expect("must be present and valid").port));
        assert_eq!((c[&1], c[&2], c[&3]), (100, 100, 50));
        // One endpoint without a weight type makes the whole set round robin.
        let mut m = EndpointSet::new(vec![wep(1, 0), ep(2)]);
        assert!(!m.is_weighted());
        let first = m.select(now).expect("must be present and valid").port;
        let second = m.select(now).expect("must be present and valid").port;
        assert_eq!((first, second), (1, 2));
    }

    #[test]
    fn hash_is_stable_and_moves_only_failed_codes() {
        let t0 = Instant::now();
        let s = EndpointSet::new(vec![ep(1), ep(2), ep(3), ep(4)]);
        let before: Vec<u16> = (0..64).map(|c| s.by_hash(c, t0).expect("must be present and valid").port).collect();
        let again: Vec<u16> = (0..64).map(|c| s.by_hash(c, t0).expect("must be present and valid").port).collect();
        assert_eq!(before, again);
        let mut f = s.clone();
        f.mark_failed(&ep(2), t0 + Duration::from_secs(1));
        for code in 0..64 {
            let p = f.by_hash(code, t0).expect("must be present and valid").port;
            assert_ne!(p, 2);
            if before[code as usize] != 2 {
                assert_eq!(p, before[code as usize], "code {code} moved though its endpoint is healthy");
            }
        }
    }

    #[test]
    fn replace_keeps_marks_and_position() {
        let t0 = Instant::now();
        let until = t0 + Duration::from_secs(30);
        let mut s = EndpointSet::with_inactive(vec![ep(1), ep(2), ep(3)], vec![ep(9)]);
        assert_eq!(s.inactive(), [ep(9)]);
        s.mark_failed(&ep(3), until);
        assert_eq!(rr(&mut s, t0, 1), [1]);
        // Same members in another order: nothing changes.
        assert!(!s.replace(vec![ep(3), ep(2), ep(1)], vec![ep(9)]));
        assert_eq!(s.active(), [ep(1), ep(2), ep(3)]);
        // Empty: refused.
        assert!(!s.replace(vec![], vec![]));
        assert_eq!(s.len(), 3);
        // A new list: 1 leaves, 4 arrives, 3 keeps its mark (its timeout changed), 2 was due.
        let three = Endpoint::parse("tcp -h 10.0.0.1 -p 3 -t 60000").expect("must be present and valid");
        assert!(s.replace(vec![ep(4), three.clone(), ep(2)], vec![]));
        assert!(s.inactive().is_empty());
        assert!(s.is_failed(&three, t0));
        assert_eq!(rr(&mut s, t0, 3), [2, 4, 2]);
        assert_eq!(rr(&mut s, until, 3), [4, 3, 2]);
        // Only the inactive list changing still counts as a change.
        assert!(s.replace(vec![ep(4), three, ep(2)], vec![ep(1)]));
    }

    #[test]
    fn replace_keeps_weighted_state() {
        let now = Instant::now();
        let mut s = EndpointSet::new(vec![wep(1, 10), wep(2, 30), wep(3, 60)]);
        let mut picks: Vec<u16> = (0..37).map(|_| s.select(now).expect("must be present and valid").port).collect();
        // Reordered and one timeout changed: counts over the full cycle stay exact.
        let three = Endpoint::parse("tcp -h 10.0.0.1 -p 3 -t 100 -w 60 -v 1").expect("must be present and valid");
        assert!(s.replace(vec![three, wep(1, 10), wep(2, 30)], vec![]));
        picks.extend((0..63).map(|_| s.select(now).expect("must be present and valid").port));
        let c = counts(picks);
        assert_eq!((c[&1], c[&2], c[&3]), (10, 30, 60));
    }

    fn distinct_endpoints(n: usize) -> Vec<Endpoint> {
        (0..n)
            .map(|i| {
                Endpoint::parse(&format!("tcp -h 10.0.{}.{} -p {}", i % 3, i, 1000 + i))
                    .expect("must be present and valid")
            })
            .collect()
    }

    proptest! {
        #[test]
        fn hash_ignores_list_order(
            (list, shuffled) in (1usize..12).prop_flat_map(|n| {
                let list = distinct_endpoints(n);
                (Just(list.clone()), Just(list).prop_shuffle())
            }),
            codes in proptest::collection::vec(any::<u64>(), 1..16),
            failed in proptest::collection::vec(any::<bool>(), 12),
        ) {
            let t0 = Instant::now();
            let mut a = EndpointSet::new(list.clone());
            let mut b = EndpointSet::new(shuffled);
            for (e, &f) in list.iter().zip(&failed) {
                if f {
                    a.mark_failed(e, t0 + Duration::from_secs(1));
                    b.mark_failed(e, t0 + Duration::from_secs(1));
                }
            }
            for code in codes {
                prop_assert_eq!(a.by_hash(code, t0), b.by_hash(code, t0));
                let healthy = !a.is_failed(a.by_hash(code, t0).expect("must be present and valid"), t0);
                prop_assert!(healthy || failed.iter().take(list.len()).all(|&f| f));
            }
        }

        #[test]
        fn round_robin_visits_each_once_per_cycle(n in 1usize..16, warmup in 0usize..40) {
            let now = Instant::now();
            let list = distinct_endpoints(n);
            let mut s = EndpointSet::new(list.clone());
            for _ in 0..warmup {
                s.next_round_robin(now);
            }
            for _ in 0..3 {
                let mut seen: Vec<Endpoint> = (0..n).map(|_| s.next_round_robin(now).expect("must be present and valid").clone()).collect();
                seen.sort_by_key(|e| e.port);
                prop_assert_eq!(&seen, &list);
            }
        }

        #[test]
        fn weighted_counts_match_weights(weights in proptest::collection::vec(0i32..=100, 1..8), warmup in 0usize..50) {
            let now = Instant::now();
            let list: Vec<Endpoint> = weights.iter().enumerate().map(|(i, &w)| wep(1000 + i as u16, w)).collect();
            let mut s = EndpointSet::new(list);
            let total: usize = weights.iter().map(|&w| w as usize).sum();
            prop_assume!(total > 0);
            for _ in 0..warmup {
                s.select(now);
            }
            let c = counts((0..total).map(|_| s.select(now).expect("must be present and valid").port));
            for (i, &w) in weights.iter().enumerate() {
                prop_assert_eq!(c.get(&(1000 + i as u16)).copied().unwrap_or(0), w as usize);
            }
        }
    }
}
