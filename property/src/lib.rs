//! tarsproperty: custom metrics (`tars.tarsproperty.PropertyObj`, 18493).
//!
//! [`policy`] merges values per policy (Sum, Count, Max, Min, Avg, Distr); [`ingest`] holds
//! upstream's ingest rules. Both sans-IO. [`service`] is the server (and the `tarsproperty`
//! binary's body).

pub mod ingest;
pub mod policy;
pub mod service;
