//! The TARS registry (`tarsregistry`): where every client asks "where is App.Server.Obj?"
//! and where every node registers and reports its servers.
//!
//! - [`query_obj`]: `tars.tarsregistry.QueryObj` (`QueryF`), answered from each shard's own
//!   read-only route table ([`routes`]), never from the database.
//! - [`registry_obj`]: `tars.tarsregistry.RegistryObj` (`Registry.tars`), the node-facing
//!   interface; [`servers`] builds `getServers` answers (templates resolved).
//! - [`container`]: the K8STARS container interface (`tars.tarsregistry.Registry`), its
//!   clean-up of dead container nodes, and [`http_sd`], the same data as a Prometheus HTTP
//!   service-discovery endpoint.
//! - [`peers`]: who may call RegistryObj and the container interface
//!   (`/tars/registry<nodeallow>`).
//! - [`jobs`]: the registry's periodic database work (its own `t_registry_info` rows, node and
//!   registry liveness, container clean-up).
//! - [`service`]: puts it together for the `tarsregistry` binary and the framework host.
//!
//! Every database statement runs on the [`tars_sql::Store`]'s threads; servants only await.

pub mod config;
pub mod container;
pub mod http_sd;
pub mod jobs;
pub mod peers;
pub mod query_obj;
pub mod registry_obj;
pub mod routes;
pub mod servers;
pub mod service;

/// Code generated from `tars/RouteSnapshot.tars` (the snapshot file format).
#[allow(missing_docs, unreachable_pub, clippy::all)]
mod wire {
    include!(concat!(env!("OUT_DIR"), "/_include.rs"));
}

use std::sync::Arc;

use tars_sql::Store;

pub use config::RegistryConfig;

/// What the servants and background jobs of one registry process share. Immutable after
/// start except the refusal tally; each shard's servants hold an `Arc` of it.
#[derive(Debug)]
pub struct Context {
    /// `db_tars`.
    pub store: Store,
    /// The settings.
    pub config: RegistryConfig,
    /// Calls refused by `config.node_allow`, for the rate-limited log.
    pub refusals: peers::Refusals,
}

impl Context {
    /// A context over `store` with `config`.
    pub fn new(store: Store, config: RegistryConfig) -> Arc<Context> {
        Arc::new(Context { store, config, refusals: peers::Refusals::default() })
    }
}
