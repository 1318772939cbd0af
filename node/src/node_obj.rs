//! `tars.tarsnode.NodeObj` (`Node.tars`, port 19385): AdminReg's direct calls, answered by the
//! same [`NodeHandle`] the push channel uses. One [`NodeObj`] per IO shard; every call only
//! submits to the handle and awaits the answer, so nothing blocks the shard.

use tars_proto::rpc::{Current, ServantError};
use tars_protocol::tars::{Node, PatchInfo, PatchRequest, ServerStateInfo};

use crate::handle::{NodeHandle, Pending, UNKNOWN_ERR};

/// The `Node` servant. Lives on an IO shard; holds a [`NodeHandle`].
#[derive(Debug, Clone)]
pub struct NodeObj {
    pub(crate) handle: NodeHandle,
}

async fn code(p: Pending<(i32, String)>, result: &mut String) -> i32 {
    match p.recv().await {
        Some((c, r)) => {
            *result = r;
            c
        }
        None => {
            *result = "node is stopping".into();
            UNKNOWN_ERR
        }
    }
}

impl Node for NodeObj {
    async fn destroy_server(
        &self,
        _c: &mut Current,
        app: String,
        server: String,
        result: &mut String,
    ) -> Result<i32, ServantError> {
        Ok(code(self.handle.destroy(&app, &server), result).await)
    }

    async fn patch_pro(&self, _c: &mut Current, _req: PatchRequest, result: &mut String) -> Result<i32, ServantError> {
        *result = "patch is not supported by this node".into();
        Ok(UNKNOWN_ERR)
    }

    async fn shutdown(&self, _c: &mut Current, result: &mut String) -> Result<i32, ServantError> {
        Ok(code(self.handle.shutdown(), result).await)
    }

    async fn stop_all_servers(&self, _c: &mut Current, result: &mut String) -> Result<i32, ServantError> {
        Ok(code(self.handle.stop_all(), result).await)
    }

    async fn load_server(
        &self,
        _c: &mut Current,
        app: String,
        server: String,
        result: &mut String,
    ) -> Result<i32, ServantError> {
        Ok(code(self.handle.load(&app, &server), result).await)
    }

    async fn start_server(
        &self,
        _c: &mut Current,
        app: String,
        server: String,
        result: &mut String,
    ) -> Result<i32, ServantError> {
        Ok(code(self.handle.start(&app, &server), result).await)
    }

    async fn stop_server(
        &self,
        _c: &mut Current,
        app: String,
        server: String,
        result: &mut String,
    ) -> Result<i32, ServantError> {
        Ok(code(self.handle.stop(&app, &server), result).await)
    }

    async fn notify_server(
        &self,
        _c: &mut Current,
        app: String,
        server: String,
        command: String,
        result: &mut String,
    ) -> Result<i32, ServantError> {
        Ok(code(self.handle.notify(&app, &server, &command), result).await)
    }

    async fn get_state_info(
        &self,
        _c: &mut Current,
        app: String,
        server: String,
        info: &mut ServerStateInfo,
        result: &mut String,
    ) -> Result<i32, ServantError> {
        match self.handle.get_state_info(&app, &server).recv().await {
            Some((c, i, r)) => {
                *info = i;
                *result = r;
                Ok(c)
            }
            None => Ok(UNKNOWN_ERR),
        }
    }

    async fn get_patch_percent(
        &self,
        _c: &mut Current,
        _app: String,
        _server: String,
        _p: &mut PatchInfo,
    ) -> Result<i32, ServantError> {
        // As upstream's `ServerManager::getPatchPercent`.
        Ok(UNKNOWN_ERR)
    }

    async fn del_cache(
        &self,
        _c: &mut Current,
        _n: String,
        _b: String,
        _k: String,
        result: &mut String,
    ) -> Result<i32, ServantError> {
        *result = "delCache is not supported by this node".into();
        Ok(UNKNOWN_ERR)
    }

    async fn get_log_file_list(
        &self,
        _c: &mut Current,
        app: String,
        server: String,
        list: &mut Vec<String>,
    ) -> Result<i32, ServantError> {
        *list = self.handle.get_log_file_list(&app, &server).recv().await.unwrap_or_default();
        Ok(0)
    }

    async fn get_log_data(
        &self,
        _c: &mut Current,
        app: String,
        server: String,
        file: String,
        cmd: String,
        data: &mut String,
    ) -> Result<i32, ServantError> {
        // As upstream's `ServerManager::getLogData`: the text either way, -1 when it is an error.
        match self.handle.get_log_data_result(&app, &server, &file, &cmd).recv().await {
            Some(Ok(text)) => {
                *data = text;
                Ok(0)
            }
            Some(Err(e)) => {
                *data = e;
                Ok(UNKNOWN_ERR)
            }
            None => Ok(UNKNOWN_ERR),
        }
    }

    async fn get_node_load(
        &self,
        _c: &mut Current,
        _app: String,
        _server: String,
        pid: i32,
        data: &mut String,
    ) -> Result<i32, ServantError> {
        *data = self.handle.get_node_load(pid).recv().await.unwrap_or_default();
        Ok(0)
    }

    async fn force_docker_login(&self, _c: &mut Current, result: &mut Vec<String>) -> Result<i32, ServantError> {
        result.clear();
        Ok(0)
    }
}
