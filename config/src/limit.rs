//! Upstream's load limiter (`ConfigImp::IsLimited`): per (app, server, caller host, file),
//! the first load opens a window of `60 × /tars/limit<interval>` seconds in which
//! `/tars/limit<limitinterval> + 1` loads are answered (11 with the defaults); the rest get
//! 429. The call that finds its window over is answered and closes it; the next one opens a
//! new window.
//!
//! Upstream never forgets a key. Here expired windows are swept once a minute and the map
//! holds at most [`MAX_KEYS`]; a key that finds it full is answered without a window and
//! counted, so a flood of made-up names cannot grow memory.
//!
//! One map per service behind a mutex, taken once per load call: loads are rare (a server
//! fetches its files when it starts), so this is not a hot path, and a limit per shard would
//! multiply it by the number of connections a client opens.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The answer to a limited call.
pub const LIMITED: i32 = 429;
/// Most keys tracked at once.
pub const MAX_KEYS: usize = 100_000;
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// `/tars/limit<limitinterval>` and `/tars/limit<interval>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitConfig {
    /// Loads beyond the first one allowed in a window (upstream's `limitinterval`, 10).
    pub extra: u32,
    /// The window (upstream's `interval` minutes, 1).
    pub window: Duration,
}

impl Default for LimitConfig {
    fn default() -> LimitConfig {
        LimitConfig { extra: 10, window: Duration::from_secs(60) }
    }
}

impl LimitConfig {
    /// From the two keys' text as upstream reads them: a missing, unparsable or non-positive
    /// value is the default.
    pub fn from_keys(limit_interval: Option<&str>, interval: Option<&str>) -> LimitConfig {
        let positive = |v: Option<&str>, d: u32| {
            v.and_then(|s| s.trim().parse::<i64>().ok())
                .filter(|n| *n > 0)
                .map_or(d, |n| u32::try_from(n).unwrap_or(u32::MAX))
        };
        LimitConfig {
            extra: positive(limit_interval, 10),
            window: Duration::from_secs(60 * u64::from(positive(interval, 1))),
        }
    }
}

type Key = (String, String, String, String);

#[derive(Debug)]
struct Windows {
    map: HashMap<Key, (Instant, u32)>,
    swept: Instant,
}

/// The limiter. One per service, shared by every shard.
#[derive(Debug)]
pub struct Limiter {
    config: LimitConfig,
    windows: Mutex<Windows>,
    /// Calls answered 429.
    pub refused: AtomicU64,
    /// Calls answered without a window because the map was full.
    pub untracked: AtomicU64,
}

impl Limiter {
    /// A limiter with `config`.
    pub fn new(config: LimitConfig) -> Limiter {
        Limiter {
            config,
            windows: Mutex::new(Windows { map: HashMap::new(), swept: Instant::now() }),
            refused: AtomicU64::new(0),
            untracked: AtomicU64::new(0),
        }
    }

    /// Whether this call is over the limit (and is to be answered [`LIMITED`]).
    pub fn limited(&self, app: &str, server: &str, host: &str, file: &str) -> bool {
        self.limited_at(Instant::now(), app, server, host, file)
    }

    fn limited_at(&self, now: Instant, app: &str, server: &str, host: &str, file: &str) -> bool {
        let mut w = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        if now.saturating_duration_since(w.swept) >= SWEEP_EVERY {
            let window = self.config.window;
            w.map.retain(|_, (start, _)| now.saturating_duration_since(*start) <= window);
            w.swept = now;
        }
        let key = (app.to_owned(), server.to_owned(), host.to_owned(), file.to_owned());
        let len = w.map.len();
        match w.map.get_mut(&key) {
            Some((start, count)) => {
                if now.saturating_duration_since(*start) > self.config.window {
                    w.map.remove(&key);
                    false
                } else if *count <= self.config.extra {
                    *count += 1;
                    false
                } else {
                    drop(w);
                    self.refused.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(app, server, host, file, "config: load limit reached; answering 429");
                    true
                }
            }
            None if len >= MAX_KEYS => {
                self.untracked.fetch_add(1, Ordering::Relaxed);
                false
            }
            None => {
                w.map.insert(key, (now, 1));
                false
            }
        }
    }

    /// Keys tracked now.
    pub fn tracked(&self) -> usize {
        self.windows.lock().unwrap_or_else(PoisonError::into_inner).map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eleven_loads_a_minute_then_429_as_upstream() {
        let l = Limiter::new(LimitConfig::default());
        let t0 = Instant::now();
        let answered = (0..20).filter(|i| !l.limited_at(t0 + Duration::from_millis(*i), "A", "S", "h", "f")).count();
        assert_eq!(answered, 11);
        // Another file, host or server has its own window.
        assert!(!l.limited_at(t0, "A", "S", "h", "g"));
        assert!(!l.limited_at(t0, "A", "S", "h2", "f"));
        // The window over: the first call closes it, the next opens a new one.
        let later = t0 + Duration::from_secs(61);
        assert!(!l.limited_at(later, "A", "S", "h", "f"));
        assert!(!l.limited_at(later, "A", "S", "h", "f"));
        assert_eq!(l.refused.load(Ordering::Relaxed), 9);
    }

    #[test]
    fn expired_windows_are_swept() {
        let l = Limiter::new(LimitConfig::default());
        let t0 = Instant::now();
        for i in 0..1000 {
            l.limited_at(t0, "A", "S", "h", &format!("f{i}"));
        }
        assert_eq!(l.tracked(), 1000);
        l.limited_at(t0 + Duration::from_secs(120), "A", "S", "h", "new");
        assert_eq!(l.tracked(), 1);
    }

    #[test]
    fn keys_read_as_upstream_reads_them() {
        assert_eq!(LimitConfig::from_keys(None, None), LimitConfig::default());
        assert_eq!(LimitConfig::from_keys(Some("0"), Some("-3")), LimitConfig::default());
        let c = LimitConfig::from_keys(Some("2"), Some("5"));
        assert_eq!((c.extra, c.window), (2, Duration::from_secs(300)));
    }
}
