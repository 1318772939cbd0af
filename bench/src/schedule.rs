//! Open-loop send times. With a target of `rate` requests per second spread over `n`
//! connections, connection `i` sends its `k`-th request at `start + (i + k·n) / rate`: each
//! connection runs at `rate / n`, and together they interleave into one evenly spaced stream.
//! Latency is measured from these intended times, not from when the request actually left,
//! so a server (or client) stall shows up in the latency of every request it delayed.

use std::time::{Duration, Instant};

/// The intended send times of one connection.
#[derive(Debug, Clone)]
pub struct Schedule {
    start: Instant,
    offset_ns: f64,
    period_ns: f64,
    k: u64,
}

impl Schedule {
    /// Connection `index` of `of`, sharing a total of `rate` requests per second from `start`.
    pub fn new(start: Instant, rate: f64, index: usize, of: usize) -> Schedule {
        let rate = rate.max(1e-9);
        Schedule { start, offset_ns: index as f64 * 1e9 / rate, period_ns: of.max(1) as f64 * 1e9 / rate, k: 0 }
    }

    /// When the next request is due.
    pub fn next(&self) -> Instant {
        // Computed from `start` each time, so rounding never accumulates.
        self.start + Duration::from_nanos((self.offset_ns + self.k as f64 * self.period_ns) as u64)
    }

    /// Moves to the request after [`Schedule::next`].
    pub fn advance(&mut self) {
        self.k += 1;
    }

    /// Requests scheduled so far (the index of the next one).
    pub fn scheduled(&self) -> u64 {
        self.k
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_interleave_into_an_even_stream() {
        let start = Instant::now();
        let n = 4;
        let mut s: Vec<Schedule> = (0..n).map(|i| Schedule::new(start, 1000.0, i, n)).collect();
        let mut times = Vec::new();
        for sched in &mut s {
            for _ in 0..250 {
                times.push(sched.next().duration_since(start));
                sched.advance();
            }
        }
        times.sort();
        // 1000 requests, one every millisecond from 0 to 999 ms.
        assert_eq!(times.len(), 1000);
        for (k, t) in times.iter().enumerate() {
            let want = Duration::from_millis(k as u64);
            assert!(t.abs_diff(want) < Duration::from_micros(1), "request {k} at {t:?}");
        }
        assert_eq!(s[0].scheduled(), 250);
    }

    #[test]
    fn no_drift_over_many_periods() {
        let start = Instant::now();
        let mut s = Schedule::new(start, 3.0, 0, 1); // 333.33.. ms apart
        for _ in 0..3_000_000 {
            s.advance();
        }
        let t = s.next().duration_since(start);
        assert!(t.abs_diff(Duration::from_secs(1_000_000)) < Duration::from_micros(1), "{t:?}");
    }
}
