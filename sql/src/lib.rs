//! Schemas and storage for `db_tars`, `tars_stat` and `tars_property`.
//!
//! - [`schema`]: every table as data, compatible with upstream's DDL so TarsWeb reads ours.
//! - [`ddl`]: renders tables for MySQL and for the embedded SQLite backend.
//! - [`migrate`]: numbered, idempotent, never-destructive migrations recorded per database.
//! - [`Store`]: one interface over both backends; statements run on dedicated blocking
//!   threads fed by channels, never on an IO shard.
//! - [`admin`]: the `tars.storage` admin command's text.

pub mod admin;
pub mod ddl;
mod error;
pub mod migrate;
pub mod schema;
mod store;
mod url;
mod value;

pub use ddl::{Dialect, InsertMode, SetTo};
pub use error::StoreError;
pub use store::{
    create_table, encode_tsv, insert_rows, insert_rows_in, load_rows, transaction, transaction_from, Health,
    HealthReport, Session, Store, StoreOptions, StoreState,
};
pub use url::{redact, url_with_database, PoolParams, StoreUrl};
pub use value::{FromValue, Row, Value};
