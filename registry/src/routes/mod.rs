//! The route cache: what QueryObj answers from.
//!
//! Data flows one way: the database → [`loader`] (one thread; keeps the [`master`] copy and
//! the [`stamps`] of every row it has read, and computes deltas) → [`hub`] (per-shard coalescing mailboxes) → each shard's
//! [`hub::ShardRoutes`] → [`find`] (upstream's lookup rules), and [`fast`] (the
//! pre-encoded answers of the hot calls). [`table`] turns rows into
//! endpoint lists; [`snapshot`] keeps the rows on disk for a restart while the database is
//! down.

pub mod fast;
pub mod find;
pub mod hub;
pub mod loader;
pub mod master;
pub mod snapshot;
pub mod stamps;
pub mod table;

pub use hub::{RouteHub, ShardRoutes};
pub use loader::{LoaderHandle, LoaderStatus};
