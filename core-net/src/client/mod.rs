//! Client side (being built).

pub mod balance;
pub mod config;
