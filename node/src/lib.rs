//! tarsnode: the per-host agent (`tars.tarsnode.ServerObj`, 19386). It registers the host
//! with the registry, fetches the servers deployed on it, generates their configs, starts,
//! watches and stops them, and runs the commands AdminReg pushes to it.
//!
//! Modules, sans-IO where they can be:
//! - [`confgen`]: a server's config file from its descriptor, template and macros, and the
//!   atomic write with `.bak`.
//! - [`launch`]: `tars_start.sh` and the launch line per server type.
//! - [`logview`]: `getLogFileList` / `getLogData` without a shell.
//! - [`supervise`]: spawning a server, seeing its exit through a pidfd, stopping it.
//! - [`settings`]: the node's own config keys.
//! - [`state`]: the server states and the restart throttle.
//! - [`cache`]: the descriptor cache on disk.
//! - [`load`]: load averages and the `getNodeLoad` text.
//! - `manager` (the `tars-node-manager` thread: every server's state machine and checks) and
//!   `sync` (the `tars-node-sync` thread: every registry call), internal.
//! - [`adminlink`]: the `tars-node-adminlink` thread: `reportNode` to every AdminReg, its
//!   `NodePush` commands run and answered with `reportResult`.
//! - [`handle`]: [`NodeHandle`], the control API; [`servant`] (`ServerObj`), [`node_obj`]
//!   (`NodeObj`); [`service`]: [`NodeService`], the hosted service.

pub mod adminlink;
pub mod cache;
pub mod confgen;
pub mod handle;
pub mod launch;
pub mod load;
pub mod logview;
mod manager;
pub mod node_obj;
pub mod servant;
pub mod service;
pub mod settings;
pub mod state;
pub mod supervise;
mod sync;

pub use handle::{NodeHandle, Pending};
pub use service::{NodeOptions, NodeService};
