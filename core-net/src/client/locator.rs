//! Asking the registry (`tars.tarsregistry.QueryObj`, interface `QueryF`) where
//! an indirect object lives, through the generated `QueryF` proxy of `tars-protocol`:
//!
//! - `findObjectById4Any(id, out activeEp, out inactiveEp)` normally;
//! - `findObjectByIdInSameSet(id, setId, out activeEp, out inactiveEp)` when the client config
//!   enables a set (`enableset=Y`, `setdivision`).
//!
//! This module converts between the registry's `EndpointF` and our [`Endpoint`]; refreshing
//! and keeping the last good list live in the communicator.

use super::config::SetDivision;
use tars_proto::endpoint::{Endpoint, Transport, DEFAULT_TIMEOUT_MS};
use tars_proto::rpc::{CallError, Transport as RpcTransport};
pub use tars_protocol::tars::EndpointF;
use tars_protocol::tars::QueryFProxy;

/// `QueryF.findObjectById4Any`: every active and inactive endpoint of an object.
pub const FIND_ANY: &str = "findObjectById4Any";
/// `QueryF.findObjectByIdInSameSet`: the endpoints of an object in the caller's set.
pub const FIND_IN_SAME_SET: &str = "findObjectByIdInSameSet";

/// A locator answer: the function's return value and its two lists.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct QueryAnswer {
    /// The return value (0 is success).
    pub ret: i32,
    /// `activeEp`.
    pub active: Vec<EndpointF>,
    /// `inactiveEp`.
    pub inactive: Vec<EndpointF>,
}

/// Asks `locator` (through `transport`) for `id`'s endpoints, in the caller's `set` when one
/// is given.
pub async fn query<T: RpcTransport>(
    transport: T,
    locator: &str,
    id: &str,
    set: Option<&SetDivision>,
) -> Result<QueryAnswer, CallError> {
    let proxy = QueryFProxy::new(transport, locator);
    let mut answer = QueryAnswer::default();
    answer.ret = match set {
        Some(set) => {
            proxy.find_object_by_id_in_same_set(id, &set.to_string(), &mut answer.active, &mut answer.inactive).await?
        }
        None => proxy.find_object_by_id4_any(id, &mut answer.active, &mut answer.inactive).await?,
    };
    Ok(answer)
}

/// The endpoint this describes, or `None` when it cannot be one: an `istcp` other than
/// 0, 1, 2, a port outside 0..=65535 or an empty host. A negative timeout becomes the
/// default; the weight counts only with a non-zero weight type.
pub fn to_endpoint(f: &EndpointF) -> Option<Endpoint> {
    let transport = Transport::from_istcp(f.istcp)?;
    let port = u16::try_from(f.port).ok()?;
    if f.host.trim().is_empty() {
        return None;
    }
    let mut e = Endpoint::new(transport, f.host.trim(), port);
    e.timeout_ms = u32::try_from(f.timeout).unwrap_or(DEFAULT_TIMEOUT_MS);
    e.grid = f.grid;
    e.qos = f.qos;
    e.weight_type = f.weight_type.max(0);
    e.weight = if e.weight_type != 0 { f.weight } else { -1 };
    e.auth_type = f.auth_type;
    Some(e)
}

/// The `EndpointF` a registry would send for `e`.
pub fn from_endpoint(e: &Endpoint) -> EndpointF {
    EndpointF {
        host: e.host.clone(),
        port: i32::from(e.port),
        timeout: i32::try_from(e.timeout_ms).unwrap_or(i32::MAX),
        istcp: e.istcp(),
        grid: e.grid,
        qos: e.qos,
        weight: if e.weight_type != 0 { e.weight.max(0) } else { 0 },
        weight_type: e.weight_type,
        auth_type: e.auth_type,
        ..EndpointF::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tars_proto::codec::Struct;

    #[test]
    fn endpointf_round_trips_and_converts() {
        let e = Endpoint::parse("tcp -h 10.0.0.1 -p 9000 -t 60000 -w 30 -v 1").expect("valid");
        let f = from_endpoint(&e);
        assert_eq!((f.istcp, f.port, f.timeout, f.weight, f.weight_type), (1, 9000, 60000, 30, 1));
        let back = EndpointF::decode(&f.encode()).expect("decodes");
        assert_eq!(back, f);
        assert_eq!(to_endpoint(&back).expect("valid"), e);
        let plain = Endpoint::parse("tcp -h h -p 1").expect("valid");
        assert_eq!(to_endpoint(&from_endpoint(&plain)).expect("valid"), plain);
    }

    #[test]
    fn bad_endpointf_values_are_rejected() {
        let ok = EndpointF { host: "h".into(), port: 1, istcp: 1, ..EndpointF::default() };
        assert!(to_endpoint(&ok).is_some());
        assert!(to_endpoint(&EndpointF { istcp: 7, ..ok.clone() }).is_none());
        assert!(to_endpoint(&EndpointF { port: 70000, ..ok.clone() }).is_none());
        assert!(to_endpoint(&EndpointF { host: " ".into(), ..ok.clone() }).is_none());
        assert_eq!(to_endpoint(&EndpointF { timeout: -5, ..ok }).expect("valid").timeout_ms, DEFAULT_TIMEOUT_MS);
    }
}
