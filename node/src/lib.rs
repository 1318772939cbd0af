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

pub mod confgen;
pub mod launch;
pub mod logview;
pub mod supervise;
