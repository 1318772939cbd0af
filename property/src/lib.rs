//! tarsproperty: custom metrics (`tars.tarsproperty.PropertyObj`, 18493).
//!
//! [`policy`] merges values per policy (Sum, Count, Max, Min, Avg, Distr; [`decimal`] keeps
//! the fractions of Sum/Max/Min exactly); [`ingest`] holds
//! upstream's ingest rules. Both sans-IO. [`service`] is the server (and the `tarsproperty`
//! binary's body).

pub mod decimal;
pub mod ingest;
pub mod policy;
pub mod service;
