//! Upstream's merge, sans-IO: the rows of every (database, hour) table, in a fixed order, into
//! one `map<key, values>`.
//!
//! - stat: the values of one key are summed element-wise, across hours and databases;
//! - property: every table's value for a key is kept, then reduced per key: by the policy a
//!   `policy` condition names (Avg, Max, Min), else by the policy the key itself names (a key
//!   containing `Avg`, `Min`, `Max`, as when grouped by `policy`), else summed. Upstream reduces
//!   all of a key's values to one number; we reduce each index on its own, which is the same
//!   for the one index (`value`) TarsWeb asks for.
//!
//! The answer is bounded: a new key that would take the encoded answer past the budget is left
//! out and the answer marked cut.

use std::collections::BTreeMap;

use crate::kind::Kind;
use crate::plan::Reduce;

/// One table's answer: a key and one number per index, per row.
pub type Rows = Vec<(String, Vec<f64>)>;

/// Bytes a key costs in the encoded answer besides its text and values (heads, lengths).
const KEY_OVERHEAD: usize = 16;

/// The running merge of one request.
#[derive(Debug)]
pub struct Merge {
    kind: Kind,
    policy: Option<Reduce>,
    width: usize,
    sums: BTreeMap<String, Vec<f64>>,
    parts: BTreeMap<String, Vec<Vec<f64>>>,
    budget: usize,
    used: usize,
    /// True once a key was left out for the budget.
    pub cut: bool,
}

impl Merge {
    /// A merge of `width` values per key, within `budget` bytes of answer.
    pub fn new(kind: Kind, policy: Option<Reduce>, width: usize, budget: usize) -> Merge {
        Merge { kind, policy, width, sums: BTreeMap::new(), parts: BTreeMap::new(), budget, used: 0, cut: false }
    }

    fn admit(&mut self, key: &str) -> bool {
        let cost = key.len() + self.width * 10 + KEY_OVERHEAD;
        if self.used + cost > self.budget {
            self.cut = true;
            return false;
        }
        self.used += cost;
        true
    }

    /// Adds one table's rows.
    pub fn add(&mut self, rows: Rows) {
        for (key, values) in rows {
            let values = fit(values, self.width);
            match self.kind {
                Kind::Stat => {
                    if let Some(sum) = self.sums.get_mut(&key) {
                        for (s, v) in sum.iter_mut().zip(values) {
                            *s += v;
                        }
                    } else if self.admit(&key) {
                        self.sums.insert(key, values);
                    }
                }
                Kind::Property => {
                    if let Some(p) = self.parts.get_mut(&key) {
                        // Property's per-key lists grow by one per table; their memory is
                        // bounded by keys × tables (24 × databases).
                        p.push(values);
                    } else if self.admit(&key) {
                        self.parts.insert(key, vec![values]);
                    }
                }
            }
        }
    }

    /// The answer.
    pub fn finish(self) -> BTreeMap<String, Vec<f64>> {
        match self.kind {
            Kind::Stat => self.sums,
            Kind::Property => {
                let (policy, width) = (self.policy, self.width);
                self.parts
                    .into_iter()
                    .map(|(key, parts)| {
                        let how = policy.unwrap_or_else(|| by_key(&key));
                        let values = (0..width).map(|i| reduce(how, parts.iter().map(|p| p[i]))).collect();
                        (key, values)
                    })
                    .collect()
            }
        }
    }
}

/// `values` with exactly `width` entries (rows always have them; this keeps indexing safe).
fn fit(mut values: Vec<f64>, width: usize) -> Vec<f64> {
    values.resize(width, 0.0);
    values
}

/// Upstream's per-key rule when no policy condition decides.
fn by_key(key: &str) -> Reduce {
    if key.contains("Avg") {
        Reduce::Avg
    } else if key.contains("Min") {
        Reduce::Min
    } else if key.contains("Max") {
        Reduce::Max
    } else {
        Reduce::Sum
    }
}

fn reduce(how: Reduce, values: impl Iterator<Item = f64>) -> f64 {
    let mut n = 0usize;
    let mut acc: Option<f64> = None;
    for v in values {
        n += 1;
        acc = Some(match (how, acc) {
            (_, None) => v,
            (Reduce::Sum | Reduce::Avg, Some(a)) => a + v,
            (Reduce::Max, Some(a)) => a.max(v),
            (Reduce::Min, Some(a)) => a.min(v),
        });
    }
    match (how, acc) {
        (_, None) => 0.0,
        (Reduce::Avg, Some(a)) => a / n as f64,
        (_, Some(a)) => a,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(r: &[(&str, &[f64])]) -> Rows {
        r.iter().map(|(k, v)| ((*k).to_owned(), v.to_vec())).collect()
    }

    #[test]
    fn stat_sums_across_tables_per_key() {
        let mut m = Merge::new(Kind::Stat, None, 2, 1 << 20);
        m.add(rows(&[("0005", &[1.0, 2.0]), ("0010", &[3.0, 4.0])]));
        m.add(rows(&[("0005", &[10.0, 20.0])]));
        let out = m.finish();
        assert_eq!(out["0005"], [11.0, 22.0]);
        assert_eq!(out["0010"], [3.0, 4.0]);
    }

    #[test]
    fn property_reduces_by_the_condition_then_by_the_key() {
        let mut m = Merge::new(Kind::Property, Some(Reduce::Max), 1, 1 << 20);
        m.add(rows(&[("a", &[1.0])]));
        m.add(rows(&[("a", &[5.0])]));
        assert_eq!(m.finish()["a"], [5.0]);
        let mut m = Merge::new(Kind::Property, None, 1, 1 << 20);
        for v in [2.0, 4.0] {
            m.add(rows(&[
                ("20261206,Avg", &[v]),
                ("20261206,Min", &[v]),
                ("20261206,Max", &[v]),
                ("20261206,Sum", &[v]),
            ]));
        }
        let out = m.finish();
        assert_eq!(out["20261206,Avg"], [3.0]);
        assert_eq!(out["20261206,Min"], [2.0]);
        assert_eq!(out["20261206,Max"], [4.0]);
        assert_eq!(out["20261206,Sum"], [6.0]);
    }

    #[test]
    fn keys_beyond_the_budget_are_left_out_and_the_answer_is_cut() {
        let mut m = Merge::new(Kind::Stat, None, 1, 100);
        m.add((0..10).map(|i| (format!("key{i:04}"), vec![1.0])).collect());
        assert!(m.cut);
        let out = m.finish();
        assert!(!out.is_empty() && out.len() < 10, "{}", out.len());
    }
}
