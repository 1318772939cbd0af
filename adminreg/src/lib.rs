//! tarsAdminRegistry (`tars.tarsAdminRegistry.AdminRegObj`, 12000): what TarsWeb calls to run
//! the framework — start, stop, restart, notify and inspect servers on their nodes, batch
//! tasks, the deploy helpers over `db_tars`.
//!
//! Nodes keep a long connection to every AdminReg instance (`reportNode`); commands go back
//! on it as `NodePush` pushes and the node answers with `reportResult` ([`links`], [`node`]).
//! Legacy nodes with a `NodeObj` in `t_node_info` are called directly.
//!
//! Start reading at [`ops`] (what each server operation does to the database and the node),
//! then [`node`] (how a command reaches a node), [`servant`] (every `AdminReg` method),
//! [`tasks`] (batch tasks), [`db`] (every statement) and [`service`] (settings, lifecycle,
//! self-registration in `t_registry_info`).

pub mod codes;
pub mod db;
pub mod links;
pub mod node;
pub mod ops;
pub mod servant;
pub mod service;
pub mod tasks;

pub use service::{AdminRegService, AdminSettings, ADMIN_REG_OBJ};

/// What `getVersion` answers.
pub const VERSION: &str = concat!("tars-rs-", env!("CARGO_PKG_VERSION"));
