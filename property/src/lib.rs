//! tarsproperty: custom metrics (`tars.tarsproperty.PropertyObj`, 18493).
//!
//! [`policy`] merges values per policy (Sum, Count, Max, Min, Avg, Distr); [`ingest`] holds
//! upstream's ingest rules. Both sans-IO.

pub mod ingest;
pub mod policy;
