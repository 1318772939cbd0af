//! Latency histograms: nanosecond values in an HdrHistogram (3 significant digits, 1 ns to
//! 60 s; longer values are clamped to 60 s), merged across shards, reported in microseconds.

use std::time::Duration;

use hdrhistogram::Histogram;

const LOW_NS: u64 = 1;
const HIGH_NS: u64 = 60_000_000_000;

/// One shard's (or the merged) latency record.
#[derive(Debug, Clone)]
pub struct Latency(Histogram<u64>);

impl Default for Latency {
    fn default() -> Self {
        Latency::new()
    }
}

impl Latency {
    /// An empty histogram.
    pub fn new() -> Latency {
        // The bounds are constants that hdrhistogram accepts; a failure here is a bug.
        Latency(Histogram::new_with_bounds(LOW_NS, HIGH_NS, 3).expect("valid histogram bounds"))
    }

    /// Records one latency.
    pub fn record(&mut self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1);
        self.0.saturating_record(ns);
    }

    /// Adds every value of `other`.
    pub fn merge(&mut self, other: &Latency) {
        // Same bounds on both sides, so this cannot fail.
        let _ = self.0.add(&other.0);
    }

    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.0.len()
    }

    /// The percentiles, in microseconds.
    pub fn summary(&self) -> LatencySummary {
        let us = |ns: u64| ns as f64 / 1000.0;
        let q = |q: f64| if self.0.is_empty() { 0.0 } else { us(self.0.value_at_quantile(q)) };
        LatencySummary {
            count: self.0.len(),
            min_us: if self.0.is_empty() { 0.0 } else { us(self.0.min()) },
            mean_us: if self.0.is_empty() { 0.0 } else { self.0.mean() / 1000.0 },
            p50_us: q(0.50),
            p90_us: q(0.90),
            p99_us: q(0.99),
            p999_us: q(0.999),
            max_us: if self.0.is_empty() { 0.0 } else { us(self.0.max()) },
        }
    }
}

/// Latency percentiles in microseconds (0 when nothing was recorded).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LatencySummary {
    /// Values recorded.
    pub count: u64,
    /// Smallest.
    pub min_us: f64,
    /// Mean.
    pub mean_us: f64,
    /// Median.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// Largest.
    pub max_us: f64,
}

impl LatencySummary {
    /// As a JSON object.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "count": self.count,
            "min": round1(self.min_us),
            "mean": round1(self.mean_us),
            "p50": round1(self.p50_us),
            "p90": round1(self.p90_us),
            "p99": round1(self.p99_us),
            "p999": round1(self.p999_us),
            "max": round1(self.max_us),
        })
    }
}

/// Rounds to one decimal for reports.
pub fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_adds_counts_and_keeps_extremes() {
        let mut a = Latency::new();
        let mut b = Latency::new();
        for i in 1..=900 {
            a.record(Duration::from_micros(i));
        }
        for i in 901..=1000 {
            b.record(Duration::from_micros(i));
        }
        b.record(Duration::from_secs(120)); // clamped to the 60 s bound
        a.merge(&b);
        let s = a.summary();
        assert_eq!(s.count, 1001);
        assert!((s.min_us - 1.0).abs() < 0.01, "{s:?}");
        assert!((s.p50_us - 501.0).abs() < 2.0, "{s:?}");
        assert!((s.p90_us - 901.0).abs() < 2.0, "{s:?}");
        assert!((s.max_us - 60e6).abs() / 60e6 < 0.001, "{s:?}");
        assert_eq!(Latency::new().summary(), LatencySummary::default());
    }
}
