//! Log lines caused by network events, rate-limited per call site.
//!
//! A peer can cause a log line at will (a refused connection, a request that panics a
//! servant): logged every time, a flood of them would fill the disk and, through a slow
//! terminal or pipe, slow the process. [`limited!`](crate::limited) logs such an event at most
//! once per [`PERIOD`] per call site and says how many it left out since the last line.
//! The check is two relaxed atomics, taken only when the event happens.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

#[doc(hidden)]
pub use tracing as __tracing;

/// At most one line per call site this often.
pub const PERIOD: Duration = Duration::from_secs(10);

/// Milliseconds since the first call, from a monotonic clock. Starts at 1 so that 0 can mean
/// "never logged".
fn now_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    let start = *START.get_or_init(Instant::now);
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX).saturating_add(1)
}

/// One call site's state: when it may log next, and what it left out. Shared by every thread
/// (a `static` per call site).
#[derive(Debug)]
pub struct Every {
    next_ms: AtomicU64,
    suppressed: AtomicU64,
}

impl Default for Every {
    fn default() -> Self {
        Every::new()
    }
}

impl Every {
    /// A site that may log at once.
    pub const fn new() -> Every {
        Every { next_ms: AtomicU64::new(0), suppressed: AtomicU64::new(0) }
    }

    /// `Some(left out since the last line)` when a line may be logged now; otherwise counts
    /// this event as left out.
    pub fn ready(&self, period: Duration) -> Option<u64> {
        let now = now_ms();
        let next = self.next_ms.load(Ordering::Relaxed);
        let period_ms = u64::try_from(period.as_millis()).unwrap_or(u64::MAX);
        if now < next
            || self
                .next_ms
                .compare_exchange(next, now.saturating_add(period_ms), Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Some(self.suppressed.swap(0, Ordering::Relaxed))
    }
}

/// `tracing::<level>!(…)` at most once per [`PERIOD`] for this call site, with a `suppressed`
/// field counting the events left out since the previous line:
///
/// ```
/// let peer = "10.0.0.1:5000";
/// tars_core_net::limited!(warn, %peer, "maxconns reached; refusing");
/// ```
#[macro_export]
macro_rules! limited {
    ($level:ident, $($arg:tt)+) => {{
        static EVERY: $crate::ratelog::Every = $crate::ratelog::Every::new();
        if let Some(suppressed) = EVERY.ready($crate::ratelog::PERIOD) {
            $crate::ratelog::__tracing::$level!(suppressed, $($arg)+);
        }
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_period_with_the_count_left_out() {
        let site = Every::new();
        assert_eq!(site.ready(Duration::from_millis(200)), Some(0));
        for _ in 0..5 {
            assert_eq!(site.ready(Duration::from_millis(200)), None);
        }
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(site.ready(Duration::from_millis(200)), Some(5));
        assert_eq!(site.ready(Duration::from_millis(200)), None);
    }

    #[test]
    fn threads_racing_get_one_line() {
        let site = Every::new();
        let lines = AtomicU64::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..1000 {
                        if site.ready(Duration::from_secs(60)).is_some() {
                            lines.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        assert_eq!(lines.load(Ordering::Relaxed), 1);
        assert_eq!(site.suppressed.load(Ordering::Relaxed), 3999);
    }
}
