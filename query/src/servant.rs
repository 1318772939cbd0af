//! `tars.tarsquerystat.QueryObj` / `tars.tarsqueryproperty.QueryObj`: the generated
//! `MonitorQuery` servant over the shared [`Engine`].

use std::sync::Arc;

use tars_proto::rpc::{Current, ServantError};
use tars_protocol::tars::{MonitorQuery, MonitorQueryReq, MonitorQueryRsp};

use crate::engine::Engine;

/// The servant, one per IO shard; the engine is the service's.
#[derive(Debug, Clone)]
pub struct QueryImp {
    engine: Arc<Engine>,
}

impl QueryImp {
    /// A servant; serve it as `tars_protocol::tars::MonitorQueryServant(QueryImp::new(..))`.
    pub fn new(engine: Arc<Engine>) -> QueryImp {
        QueryImp { engine }
    }
}

impl MonitorQuery for QueryImp {
    /// Upstream returns 0 once it has an answer and puts the outcome in `rsp.ret`; so do we.
    async fn query(
        &self,
        _current: &mut Current,
        req: MonitorQueryReq,
        rsp: &mut MonitorQueryRsp,
    ) -> Result<i32, ServantError> {
        *rsp = self.engine.query(&req).await;
        if rsp.ret != 0 {
            tracing::debug!(uid = %req.uid, msg = %rsp.msg, "query answered -1");
        }
        Ok(0)
    }
}
