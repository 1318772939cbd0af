//! `tars.tarsnode.ServerObj` (`ServerF`, port 19386): what every server calls to report that
//! it lives. One [`ServerObj`] per IO shard; each call is forwarded to the manager thread
//! through its channel (an unbounded crossbeam send, which never blocks) and answered at once.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use crossbeam_channel::Sender;
use tars_proto::rpc::{Current, ServantError};
use tars_protocol::tars::{ServerF, ServerInfo};

use crate::manager::Msg;

/// The `ServerF` servant. Lives on an IO shard (one per shard, built by the server builder);
/// holds only a channel to the manager thread and the node's last tick time.
#[derive(Debug, Clone)]
pub struct ServerObj {
    pub(crate) tx: Sender<Msg>,
    pub(crate) latest: Arc<AtomicU32>,
}

impl ServerF for ServerObj {
    async fn keep_alive(&self, _current: &mut Current, si: ServerInfo) -> Result<i32, ServantError> {
        let _ = self.tx.send(Msg::Beat {
            app: si.application,
            server: si.server_name,
            pid: si.pid,
            adapter: si.adapter,
            activing: false,
        });
        Ok(0)
    }

    async fn keep_activing(&self, _current: &mut Current, si: ServerInfo) -> Result<i32, ServantError> {
        let _ = self.tx.send(Msg::Beat {
            app: si.application,
            server: si.server_name,
            pid: si.pid,
            adapter: si.adapter,
            activing: true,
        });
        Ok(0)
    }

    async fn report_version(
        &self,
        _current: &mut Current,
        app: String,
        server_name: String,
        version: String,
    ) -> Result<i32, ServantError> {
        let _ = self.tx.send(Msg::Version { app, server: server_name, version });
        Ok(0)
    }

    /// The unix time of the manager's last check tick: a node whose manager is stuck looks
    /// dead to `tarsnode --monitor`.
    async fn get_latest_keep_alive_time(&self, _current: &mut Current) -> Result<u32, ServantError> {
        Ok(self.latest.load(Ordering::Relaxed))
    }
}
