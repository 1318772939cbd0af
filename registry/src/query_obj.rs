//! `tars.tarsregistry.QueryObj` (`QueryF`): every lookup is a read of the shard's own route
//! table; nothing here touches the database or another thread.

use std::rc::Rc;

use bytes::Bytes;
use tars_core_net::server::{Dispatch, DispatchFuture};
use tars_proto::codec::{DecodeError, DecodeErrorKind, Reader};
use tars_proto::rpc::{Current, ServantError};
use tars_protocol::tars::{dispatch_query_f, EndpointF, GetMasterSlaveLock, QueryF};

use crate::routes::fast::Answers;
use crate::routes::find::{self, Found};
use crate::routes::table::{EncodedAnswers, TARS_VERSION};
use crate::routes::ShardRoutes;

/// QueryObj as the server sees it. Every client refreshes its endpoint lists every few
/// seconds, mostly with `findObjectById` / `findObjectById4Any` over TARS v1, and the answer
/// only changes when the routes do: those calls get the bytes the loader encoded with the
/// routes (also `findObjectById4All` / `InSameGroup` when the caller has no group, where they
/// equal `4Any`). Everything else goes through the generated dispatcher. One per shard.
#[derive(Debug)]
pub struct QueryServant {
    imp: QueryImp,
    unknown: EncodedAnswers,
}

impl QueryServant {
    /// Serves `imp`.
    pub fn new(imp: QueryImp) -> QueryServant {
        QueryServant { imp, unknown: EncodedAnswers::new(&Vec::new(), &Vec::new()) }
    }

    /// The pre-encoded answer to this call, if it has one.
    fn fast(&self, current: &Current, body: &Bytes) -> Option<Result<Bytes, ServantError>> {
        if current.version != TARS_VERSION {
            return None;
        }
        let any_like = match current.func.as_str() {
            "findObjectById" => false,
            "findObjectById4Any" => true,
            "findObjectById4All" | "findObjectByIdInSameGroup" => {
                let ip = current.peer_ip().unwrap_or_default();
                if self.imp.routes.with("", |_, g| g.group_of_ip(&ip)) != -1 {
                    return None;
                }
                true
            }
            _ => return None,
        };
        let id = match id_param(body) {
            Ok(id) => id,
            Err(e) => return Some(Err(ServantError::decode(&e.at("QueryF", "id")))),
        };
        let unknown = Answers { by_id: &self.unknown.by_id, any: &self.unknown.any };
        // A copy, not a refcount: bumping a shared count would write a cold line per call.
        let reply = |a: Option<Answers<'_>>| {
            let a = a.unwrap_or(unknown);
            Bytes::copy_from_slice(if any_like { a.any } else { a.by_id })
        };
        Some(Ok(self.imp.routes.with_answers(id.as_bytes(), reply)))
    }
}

/// The `id` parameter (tag 1) of a TARS v1 call, borrowed from the body.
fn id_param(body: &Bytes) -> Result<&str, DecodeError> {
    let mut r = Reader::from_bytes(body);
    match r.skip_to_tag(1)? {
        Some(head) => r.read_str_ref(head.ty),
        None => Err(DecodeErrorKind::RequiredMissing { tag: 1 }.into()),
    }
}

impl Dispatch for QueryServant {
    fn dispatch(self: Rc<Self>, mut current: Current, body: Bytes) -> DispatchFuture {
        if let Some(result) = self.fast(&current, &body) {
            return Box::pin(async move { (current, result) });
        }
        Box::pin(async move {
            let result = dispatch_query_f(&self.imp, &mut current, &body).await;
            (current, result)
        })
    }
}

/// The QueryObj servant. One per shard, built by the server's servant factory on that shard
/// from [`crate::routes::RouteHub::subscribe`].
#[derive(Debug)]
pub struct QueryImp {
    routes: ShardRoutes,
}

impl QueryImp {
    /// A servant answering from `routes`.
    pub fn new(routes: ShardRoutes) -> QueryImp {
        QueryImp { routes }
    }
}

fn answer(found: Found, active: &mut Vec<EndpointF>, inactive: &mut Vec<EndpointF>) -> i32 {
    let (ret, a, i) = found;
    *active = a;
    *inactive = i;
    ret
}

impl QueryF for QueryImp {
    async fn find_object_by_id(&self, _current: &mut Current, id: String) -> Result<Vec<EndpointF>, ServantError> {
        Ok(self.routes.with(&id, |r, _| find::by_id(r)))
    }

    async fn find_object_by_id4_any(
        &self,
        _current: &mut Current,
        id: String,
        active_ep: &mut Vec<EndpointF>,
        inactive_ep: &mut Vec<EndpointF>,
    ) -> Result<i32, ServantError> {
        Ok(answer(self.routes.with(&id, |r, _| find::any(r)), active_ep, inactive_ep))
    }

    async fn find_object_by_id4_all(
        &self,
        current: &mut Current,
        id: String,
        active_ep: &mut Vec<EndpointF>,
        inactive_ep: &mut Vec<EndpointF>,
    ) -> Result<i32, ServantError> {
        let ip = current.peer_ip().unwrap_or_default();
        Ok(answer(self.routes.with(&id, |r, g| find::in_group_priority(r, g, &ip)), active_ep, inactive_ep))
    }

    /// Upstream answers it exactly as `findObjectById4All`.
    async fn find_object_by_id_in_same_group(
        &self,
        current: &mut Current,
        id: String,
        active_ep: &mut Vec<EndpointF>,
        inactive_ep: &mut Vec<EndpointF>,
    ) -> Result<i32, ServantError> {
        self.find_object_by_id4_all(current, id, active_ep, inactive_ep).await
    }

    async fn find_object_by_id_in_same_station(
        &self,
        _current: &mut Current,
        id: String,
        s_station: String,
        active_ep: &mut Vec<EndpointF>,
        inactive_ep: &mut Vec<EndpointF>,
    ) -> Result<i32, ServantError> {
        Ok(answer(self.routes.with(&id, |r, g| find::in_station(r, g, &s_station)), active_ep, inactive_ep))
    }

    async fn find_object_by_id_in_same_set(
        &self,
        current: &mut Current,
        id: String,
        set_id: String,
        active_ep: &mut Vec<EndpointF>,
        inactive_ep: &mut Vec<EndpointF>,
    ) -> Result<i32, ServantError> {
        let ip = current.peer_ip().unwrap_or_default();
        let found = self.routes.with(&id, |r, g| find::in_set(r, g, &ip, &set_id));
        if found.0 != 0 {
            tracing::debug!(%id, %set_id, "no endpoint in the requested set");
        }
        Ok(answer(found, active_ep, inactive_ep))
    }

    // Upstream answers the next four with −1 ("enterprise edition only"); clients know that.
    async fn find_object_node_name(
        &self,
        _current: &mut Current,
        _id: String,
        _node_name: &mut Vec<String>,
    ) -> Result<i32, ServantError> {
        Ok(-1)
    }

    async fn register_change(
        &self,
        _current: &mut Current,
        _timestamp: std::collections::BTreeMap<String, String>,
        _name: String,
    ) -> Result<i32, ServantError> {
        Ok(-1)
    }

    async fn register_query(&self, _current: &mut Current, _id: String, _name: String) -> Result<i32, ServantError> {
        Ok(-1)
    }

    async fn get_locker(&self, _current: &mut Current, _req: GetMasterSlaveLock) -> Result<i32, ServantError> {
        Ok(-1)
    }
}
