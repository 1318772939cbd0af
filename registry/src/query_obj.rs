//! `tars.tarsregistry.QueryObj` (`QueryF`): every lookup is a read of the shard's own route
//! table; nothing here touches the database or another thread.

use std::net::IpAddr;

use tars_core_net::rpc::{Current, ServantError};
use tars_protocol::tars::{EndpointF, GetMasterSlaveLock, QueryF};

use crate::routes::find::{self, Found};
use crate::routes::ShardRoutes;

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

/// The caller's IP as upstream's group rules spell it (IPv4-mapped IPv6 as plain IPv4).
fn caller_ip(current: &Current) -> String {
    match current.peer.map(|p| p.ip()) {
        Some(IpAddr::V6(v6)) => v6.to_ipv4_mapped().map(|v4| v4.to_string()).unwrap_or_else(|| v6.to_string()),
        Some(ip) => ip.to_string(),
        None => String::new(),
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
        let ip = caller_ip(current);
        Ok(answer(self.routes.with(&id, |r, g| find::in_group_priority(r, g, &ip)), active_ep, inactive_ep))
    }

    async fn find_object_by_id_in_same_group(
        &self,
        current: &mut Current,
        id: String,
        active_ep: &mut Vec<EndpointF>,
        inactive_ep: &mut Vec<EndpointF>,
    ) -> Result<i32, ServantError> {
        let ip = caller_ip(current);
        Ok(answer(self.routes.with(&id, |r, g| find::in_group_priority(r, g, &ip)), active_ep, inactive_ep))
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
        let ip = caller_ip(current);
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
