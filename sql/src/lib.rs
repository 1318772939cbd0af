//! Schemas and storage for `db_tars`, `tars_stat` and `tars_property`.
//!
//! Not built yet: tracked by the storage issue.
