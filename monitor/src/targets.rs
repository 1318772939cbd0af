//! The databases a service writes to, and which one gets each row.
//!
//! Upstream config: one section per database under `/tars/statdb` (or `/tars/propertydb`),
//! named `db1`, `db2`, …, with `dbhost`, `dbport`, `dbuser`, `dbpass`, `dbname`, `tbname`
//! (the table prefix) and `weighted`; `/tars<enWeighted>` switches from round robin to
//! weighted. Every row goes to exactly one database: this is sharding, not replication.

use tars_proto::config::Config;
use tars_sql::{StoreError, StoreUrl};

use crate::batch::is_identifier;

/// One database to write to.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// Its section name (`db1`), for logs and metrics.
    pub name: String,
    /// Where it is.
    pub url: StoreUrl,
    /// The hourly tables' prefix (`tbname`).
    pub prefix: String,
    /// Its share under weighted distribution (≥ 1).
    pub weight: u32,
}

/// A bad database section.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// A key has a value we cannot use.
    #[error("{key} = {value:?}: {reason}")]
    Bad {
        /// The full config path.
        key: String,
        /// The value as written.
        value: String,
        /// Why it is refused.
        reason: String,
    },
    /// The database location is unusable.
    #[error(transparent)]
    Url(#[from] StoreError),
}

/// Reads every database section under `root` (`/tars/statdb`), in name order.
pub fn from_config(config: &Config, root: &str, default_prefix: &str) -> Result<Vec<Target>, TargetError> {
    let mut names: Vec<&str> = config.domains(root);
    names.sort_by_key(|n| (n.len(), n.to_string()));
    let mut out = Vec::new();
    for name in names {
        let section = format!("{root}/{name}");
        let Some(url) = StoreUrl::from_config(config, &section)? else { continue };
        let key = |k: &str| config.get(&format!("{section}<{k}>")).map(str::trim).filter(|v| !v.is_empty());
        let prefix = key("tbname").unwrap_or(default_prefix).to_owned();
        if !is_identifier(&prefix) || prefix.len() > 48 {
            return Err(TargetError::Bad {
                key: format!("{section}<tbname>"),
                value: prefix,
                reason: "a table prefix is letters, digits and _ (at most 48)".into(),
            });
        }
        let weight = match key("weighted") {
            None => 1,
            Some(w) => w.parse::<u32>().ok().filter(|w| *w >= 1).ok_or_else(|| TargetError::Bad {
                key: format!("{section}<weighted>"),
                value: w.to_owned(),
                reason: "a whole number ≥ 1".into(),
            })?,
        };
        out.push(Target { name: name.to_owned(), url, prefix, weight });
    }
    Ok(out)
}

/// Picks the database for each row: round robin, or smooth weighted round robin (nginx's:
/// every pick adds each weight to its counter, takes the largest, and subtracts the total
/// from it), which spreads a database's share evenly instead of in runs. Lives on the
/// collector thread.
#[derive(Debug, Clone)]
pub struct Distributor {
    weights: Vec<i64>,
    current: Vec<i64>,
    next: usize,
    weighted: bool,
}

impl Distributor {
    /// Over `weights` (one per database); `weighted` as `/tars<enWeighted>`.
    pub fn new(weights: &[u32], weighted: bool) -> Distributor {
        let weights: Vec<i64> = weights.iter().map(|w| i64::from((*w).max(1))).collect();
        Distributor { current: vec![0; weights.len()], weights, next: 0, weighted }
    }

    /// The database for the next row.
    pub fn pick(&mut self) -> usize {
        let n = self.weights.len();
        if n <= 1 {
            return 0;
        }
        if !self.weighted {
            let i = self.next % n;
            self.next = (i + 1) % n;
            return i;
        }
        let total: i64 = self.weights.iter().sum();
        let mut best = 0;
        for i in 0..n {
            self.current[i] += self.weights[i];
            if self.current[i] > self.current[best] {
                best = i;
            }
        }
        self.current[best] -= total;
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_are_read_in_order_with_their_prefix_and_weight() {
        let text = "<tars>\nenWeighted=1\n<statdb>\n<db10>\ndbhost=h10\ndbname=s\n</db10>\n<db2>\ndbhost=h2\ndbname=s\n\
                    tbname=t_stat_02_\nweighted=3\n</db2>\n<db1>\ndbhost=h1\ndbport=3307\ndbname=s\n</db1>\n</statdb>\n</tars>\n";
        let c = Config::parse(text).expect("parses");
        let t = from_config(&c, "/tars/statdb", "tars_stat_").expect("valid");
        let names: Vec<_> = t.iter().map(|t| (t.name.as_str(), t.prefix.as_str(), t.weight)).collect();
        assert_eq!(names, [("db1", "tars_stat_", 1), ("db2", "t_stat_02_", 3), ("db10", "tars_stat_", 1)]);
        assert!(t[0].url.to_string().contains("h1:3307"), "{}", t[0].url);
    }

    #[test]
    fn unsafe_prefixes_and_bad_weights_are_refused() {
        for bad in ["tbname=x`; drop", "weighted=0", "weighted=lots"] {
            let text = format!("<tars>\n<statdb>\n<db1>\ndbhost=h\ndbname=s\n{bad}\n</db1>\n</statdb>\n</tars>\n");
            let c = Config::parse(&text).expect("parses");
            assert!(from_config(&c, "/tars/statdb", "tars_stat_").is_err(), "{bad}");
        }
    }

    #[test]
    fn round_robin_alternates_and_weighted_spreads_by_share() {
        let mut rr = Distributor::new(&[5, 1, 1], false);
        let picks: Vec<usize> = (0..6).map(|_| rr.pick()).collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2]);
        let mut w = Distributor::new(&[5, 1, 1], true);
        let picks: Vec<usize> = (0..7).map(|_| w.pick()).collect();
        assert_eq!(picks, [0, 0, 1, 0, 2, 0, 0]);
        let mut counts = [0; 3];
        for _ in 0..7000 {
            counts[w.pick()] += 1;
        }
        assert_eq!(counts, [5000, 1000, 1000]);
        assert_eq!(Distributor::new(&[], true).pick(), 0);
    }
}
