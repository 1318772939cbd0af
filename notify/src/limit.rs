//! The per-server rate limit: a token bucket per `server_id`, so a crash-looping server
//! cannot write a row per restart. Sans-IO (every call takes `now`); lives on the
//! `tars-notify-writer` thread only, so it needs no lock and its limit is exact across shards.
//!
//! A bucket holds up to `burst` tokens and refills `per_minute` a minute; a notice takes one
//! or is suppressed. Suppressed notices are counted per server, and the count becomes one
//! row of that server's (`[warn]`, "N notices suppressed by the rate limit in the last T s")
//! once the flood ends (no suppressed notice for `quiet`), or every `report_every` while it
//! lasts. Summary rows bypass the bucket: there is at most one per server per `quiet`.
//!
//! Memory is bounded: at most `max_servers` buckets; a bucket that is full again and owes no
//! summary is the same as a new one and is pruned; servers that find the map full share one
//! overflow bucket (limited together, never unlimited).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::notice::{Notice, WARN};

/// The limiter's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LimitConfig {
    /// Tokens a minute; 0 turns the limit off.
    pub per_minute: f64,
    /// Bucket size: notices a server may send at once.
    pub burst: f64,
    /// Buckets kept at most.
    pub max_servers: usize,
    /// A flood has ended after this long without a suppressed notice.
    pub quiet: Duration,
    /// While a flood lasts, a summary at most this often.
    pub report_every: Duration,
}

impl Default for LimitConfig {
    fn default() -> Self {
        LimitConfig {
            per_minute: 30.0,
            burst: 60.0,
            max_servers: 10_000,
            quiet: Duration::from_secs(5),
            report_every: Duration::from_secs(60),
        }
    }
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
    suppressed: u64,
    first: Instant,
    last: Instant,
    /// The identity columns of the last suppressed notice (its message dropped), for the
    /// summary row.
    template: Option<Notice>,
}

impl Bucket {
    fn new(burst: f64, now: Instant) -> Bucket {
        Bucket { tokens: burst, at: now, suppressed: 0, first: now, last: now, template: None }
    }

    fn refill(&mut self, cfg: &LimitConfig, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * cfg.per_minute / 60.0).min(cfg.burst);
        if now > self.at {
            self.at = now;
        }
    }

    /// Takes a token, or counts `n` as suppressed.
    fn take(&mut self, cfg: &LimitConfig, n: Notice) -> Option<Notice> {
        self.refill(cfg, n.received);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Some(n);
        }
        if self.suppressed == 0 {
            self.first = n.received;
        }
        self.suppressed += 1;
        self.last = n.received.max(self.last);
        let mut template = n;
        template.result = String::new();
        self.template = Some(template);
        None
    }

    fn summary(&mut self, cfg: &LimitConfig, now: Instant, overflow: bool, all: bool) -> Option<Notice> {
        if self.suppressed == 0 {
            return None;
        }
        if all {
            return self.summarise(cfg, now, overflow);
        }
        let ended = now.saturating_duration_since(self.last) >= cfg.quiet;
        let long = now.saturating_duration_since(self.first) >= cfg.report_every;
        if !ended && !long {
            return None;
        }
        self.summarise(cfg, now, overflow)
    }

    fn summarise(&mut self, cfg: &LimitConfig, now: Instant, overflow: bool) -> Option<Notice> {
        let template = self.template.take()?;
        let secs = now.saturating_duration_since(self.first).as_secs().max(1);
        let who = if overflow { "servers beyond the limiter's table" } else { "this server" };
        let message = format!(
            "tarsnotify: {} notices from {who} suppressed by the rate limit in the last {secs} s \
             (limit {} a minute, burst {})",
            self.suppressed, cfg.per_minute, cfg.burst
        );
        self.suppressed = 0;
        Some(template.with_message(WARN, message, now))
    }
}

/// The buckets, by `server_id`. Lives on the writer thread.
#[derive(Debug)]
pub struct Limiter {
    cfg: LimitConfig,
    buckets: HashMap<String, Bucket>,
    overflow: Option<Bucket>,
}

impl Limiter {
    /// A limiter with no buckets yet.
    pub fn new(cfg: LimitConfig) -> Limiter {
        Limiter { cfg, buckets: HashMap::new(), overflow: None }
    }

    /// Whether it limits anything.
    pub fn enabled(&self) -> bool {
        self.cfg.per_minute > 0.0
    }

    /// `n` back when it may be written; `None` when it was suppressed (and counted).
    pub fn admit(&mut self, n: Notice) -> Option<Notice> {
        if !self.enabled() {
            return Some(n);
        }
        let cfg = self.cfg;
        if let Some(b) = self.buckets.get_mut(&n.server_id) {
            return b.take(&cfg, n);
        }
        if self.buckets.len() >= cfg.max_servers {
            self.prune(n.received);
        }
        if self.buckets.len() >= cfg.max_servers {
            let received = n.received;
            return self.overflow.get_or_insert_with(|| Bucket::new(cfg.burst, received)).take(&cfg, n);
        }
        let mut b = Bucket::new(cfg.burst, n.received);
        let key = n.server_id.clone();
        let out = b.take(&cfg, n);
        self.buckets.insert(key, b);
        out
    }

    /// The summary rows that are due at `now`; with `all`, every one owed (at stop).
    pub fn due(&mut self, now: Instant, all: bool) -> Vec<Notice> {
        let cfg = self.cfg;
        let mut out: Vec<Notice> = self.buckets.values_mut().filter_map(|b| b.summary(&cfg, now, false, all)).collect();
        if let Some(b) = self.overflow.as_mut() {
            out.extend(b.summary(&cfg, now, true, all));
        }
        out
    }

    /// Drops the buckets that are full again and owe no summary.
    pub fn prune(&mut self, now: Instant) {
        let cfg = self.cfg;
        self.buckets.retain(|_, b| {
            b.refill(&cfg, now);
            b.suppressed > 0 || b.tokens < cfg.burst
        });
        if self.overflow.as_mut().is_some_and(|b| {
            b.refill(&cfg, now);
            b.suppressed == 0 && b.tokens >= cfg.burst
        }) {
            self.overflow = None;
        }
    }

    /// Buckets held.
    pub fn tracked(&self) -> usize {
        self.buckets.len()
    }

    /// Notices suppressed and not yet summarised.
    pub fn owed(&self) -> u64 {
        self.buckets.values().chain(self.overflow.iter()).map(|b| b.suppressed).sum()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use tars_protocol::tars::ReportInfo;

    fn notice(server: &str, at: Instant) -> Notice {
        let info =
            ReportInfo { s_app: "A".into(), s_server: server.into(), s_message: "boom".into(), ..Default::default() };
        Notice::from_report(&info, Some("n1"), at)
    }

    fn cfg() -> LimitConfig {
        LimitConfig {
            per_minute: 60.0,
            burst: 3.0,
            max_servers: 2,
            quiet: Duration::from_secs(2),
            report_every: Duration::from_secs(30),
        }
    }

    #[test]
    fn a_burst_then_one_a_second_then_a_summary() {
        let t0 = Instant::now();
        let mut l = Limiter::new(cfg());
        let passed = (0..100).filter(|i| l.admit(notice("S", t0 + Duration::from_millis(*i))).is_some()).count();
        assert_eq!(passed, 3);
        assert_eq!(l.owed(), 97);
        // Another server is not limited by this one.
        assert!(l.admit(notice("T", t0)).is_some());
        // A second later one token is back.
        assert!(l.admit(notice("S", t0 + Duration::from_millis(1100))).is_some());
        assert!(l.admit(notice("S", t0 + Duration::from_millis(1150))).is_none());
        // Still in the flood: nothing due; two quiet seconds later, one summary.
        assert!(l.due(t0 + Duration::from_millis(1500), false).is_empty());
        let due = l.due(t0 + Duration::from_secs(4), false);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].server_id, "A.S_n1");
        assert_eq!(due[0].command, WARN);
        assert!(due[0].result.contains("98 notices"), "{}", due[0].result);
        assert!(l.due(t0 + Duration::from_secs(5), false).is_empty());
        assert_eq!(l.owed(), 0);
    }

    #[test]
    fn a_long_flood_is_reported_while_it_lasts() {
        let t0 = Instant::now();
        let mut l = Limiter::new(cfg());
        for i in 0..40u64 {
            l.admit(notice("S", t0 + Duration::from_millis(i * 100)));
        }
        // Never quiet for 2 s: the summary comes once 30 s have passed since the first.
        let mut n = 0;
        for i in 0..400u64 {
            let at = t0 + Duration::from_millis(4000 + i * 100);
            l.admit(notice("S", at));
            n += l.due(at, false).len();
        }
        assert_eq!(n, 1, "one summary during a 44 s flood");
        assert!(l.owed() > 0);
    }

    #[test]
    fn the_map_is_capped_and_pruned() {
        let t0 = Instant::now();
        let mut l = Limiter::new(cfg());
        for s in ["a", "b"] {
            for _ in 0..4 {
                l.admit(notice(s, t0));
            }
        }
        assert_eq!(l.tracked(), 2);
        // Full map: the third server shares the overflow bucket (3 tokens), never unlimited.
        let passed = (0..10).filter(|_| l.admit(notice("c", t0)).is_some()).count();
        assert_eq!(passed, 3);
        assert_eq!(l.tracked(), 2);
        let due = l.due(t0 + Duration::from_secs(3), false);
        assert_eq!(due.len(), 3, "a, b and the overflow");
        // Refilled and summarised: pruned.
        l.prune(t0 + Duration::from_secs(10));
        assert_eq!(l.tracked(), 0);
        assert!(l.admit(notice("c", t0 + Duration::from_secs(10))).is_some());
        assert_eq!(l.tracked(), 1);
    }

    #[test]
    fn off_at_zero() {
        let mut l = Limiter::new(LimitConfig { per_minute: 0.0, ..cfg() });
        let t0 = Instant::now();
        assert!((0..100).all(|_| l.admit(notice("S", t0)).is_some()));
        assert_eq!(l.tracked(), 0);
    }
}
