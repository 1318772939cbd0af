//! Asking the registry (`tars.tarsregistry.QueryObj`, interface `QueryF`, wire.md §3.1) where
//! an indirect object lives.
//!
//! This crate cannot depend on the generated protocol types, so the one struct the query needs,
//! [`EndpointF`], is written here by hand (fields and tags as `protocol/tars/EndpointF.tars`),
//! together with the request and reply codecs of the two functions the communicator calls:
//!
//! - `int findObjectById4Any(string id, out vector<EndpointF> activeEp, out vector<EndpointF> inactiveEp)`
//!   (tags: id 1, activeEp 2, inactiveEp 3, return 0), normally;
//! - `int findObjectByIdInSameSet(string id, string setId, out vector<EndpointF> activeEp, out vector<EndpointF> inactiveEp)`
//!   (tags 1, 2, 3, 4), when the client config enables a set (`enableset=Y`, `setdivision`).
//!
//! Refreshing and keeping the last good list live in the communicator.

use bytes::Bytes;

use super::config::SetDivision;
use crate::codec::{read_struct, write_struct, DecodeError, Field, Reader, Struct, WireType, Writer};
use crate::endpoint::{Endpoint, Transport, DEFAULT_TIMEOUT_MS};
use crate::packet::{packet_type, ret, version, RequestPacket};
use crate::rpc::Reply;

/// `QueryF.findObjectById4Any`: every active and inactive endpoint of an object.
pub const FIND_ANY: &str = "findObjectById4Any";
/// `QueryF.findObjectByIdInSameSet`: the endpoints of an object in the caller's set.
pub const FIND_IN_SAME_SET: &str = "findObjectByIdInSameSet";

/// `tars::EndpointF`: one endpoint as the registry hands it out.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EndpointF {
    /// 0 (require): host name or IP.
    pub host: String,
    /// 1 (require): port.
    pub port: i32,
    /// 2 (require): timeout in ms (`-t`).
    pub timeout: i32,
    /// 3 (require): transport, 0 UDP, 1 TCP, 2 SSL.
    pub istcp: i32,
    /// 4 (require): grid.
    pub grid: i32,
    /// 5 (optional): group work id.
    pub groupworkid: i32,
    /// 6 (optional): group real id.
    pub grouprealid: i32,
    /// 7 (optional): the set the server is in, `name.area.group`.
    pub set_id: String,
    /// 8 (optional): QoS.
    pub qos: i32,
    /// 9 (optional): backup flag.
    pub bak_flag: i32,
    /// 11 (optional): static weight.
    pub weight: i32,
    /// 12 (optional): weight type, 0 round robin, 1 static weight.
    pub weight_type: i32,
    /// 13 (optional): auth type (`-e`).
    pub auth_type: i32,
    /// 14 (optional): the node the server runs on.
    pub node_name: String,
}

fn write_opt_int(w: &mut Writer, tag: u8, v: i32) {
    if v != 0 {
        w.write_int(tag, i64::from(v));
    }
}

fn write_opt_str(w: &mut Writer, tag: u8, v: &str) {
    if !v.is_empty() {
        w.write_str(tag, v);
    }
}

impl Struct for EndpointF {
    const NAME: &'static str = "EndpointF";

    fn write_fields(&self, w: &mut Writer) {
        w.write_str(0, &self.host);
        w.write_int(1, i64::from(self.port));
        w.write_int(2, i64::from(self.timeout));
        w.write_int(3, i64::from(self.istcp));
        w.write_int(4, i64::from(self.grid));
        write_opt_int(w, 5, self.groupworkid);
        write_opt_int(w, 6, self.grouprealid);
        write_opt_str(w, 7, &self.set_id);
        write_opt_int(w, 8, self.qos);
        write_opt_int(w, 9, self.bak_flag);
        write_opt_int(w, 11, self.weight);
        write_opt_int(w, 12, self.weight_type);
        write_opt_int(w, 13, self.auth_type);
        write_opt_str(w, 14, &self.node_name);
    }

    fn read_fields(&mut self, r: &mut Reader<'_>) -> Result<(), DecodeError> {
        const N: &str = "EndpointF";
        self.host = r.read_required(0).map_err(|e| e.at(N, "host"))?;
        self.port = r.read_required(1).map_err(|e| e.at(N, "port"))?;
        self.timeout = r.read_required(2).map_err(|e| e.at(N, "timeout"))?;
        self.istcp = r.read_required(3).map_err(|e| e.at(N, "istcp"))?;
        self.grid = r.read_required(4).map_err(|e| e.at(N, "grid"))?;
        let int = |r: &mut Reader<'_>, tag: u8, name: &'static str| -> Result<Option<i32>, DecodeError> {
            r.read_optional(tag).map_err(|e| e.at(N, name))
        };
        if let Some(v) = int(r, 5, "groupworkid")? {
            self.groupworkid = v;
        }
        if let Some(v) = int(r, 6, "grouprealid")? {
            self.grouprealid = v;
        }
        if let Some(v) = r.read_optional(7).map_err(|e| e.at(N, "setId"))? {
            self.set_id = v;
        }
        if let Some(v) = int(r, 8, "qos")? {
            self.qos = v;
        }
        if let Some(v) = int(r, 9, "bakFlag")? {
            self.bak_flag = v;
        }
        if let Some(v) = int(r, 11, "weight")? {
            self.weight = v;
        }
        if let Some(v) = int(r, 12, "weightType")? {
            self.weight_type = v;
        }
        if let Some(v) = int(r, 13, "authType")? {
            self.auth_type = v;
        }
        if let Some(v) = r.read_optional(14).map_err(|e| e.at(N, "nodeName"))? {
            self.node_name = v;
        }
        Ok(())
    }
}

impl Field for EndpointF {
    fn write_to(&self, tag: u8, w: &mut Writer) {
        write_struct(self, tag, w);
    }

    fn read_from(r: &mut Reader<'_>, ty: WireType) -> Result<Self, DecodeError> {
        read_struct(r, ty)
    }
}

impl EndpointF {
    /// The endpoint this describes, or `None` when it cannot be one: an `istcp` other than
    /// 0, 1, 2, a port outside 0..=65535 or an empty host. A negative timeout becomes the
    /// default; the weight counts only with a non-zero weight type.
    pub fn to_endpoint(&self) -> Option<Endpoint> {
        let transport = Transport::from_istcp(self.istcp)?;
        let port = u16::try_from(self.port).ok()?;
        if self.host.trim().is_empty() {
            return None;
        }
        let mut e = Endpoint::new(transport, self.host.trim(), port);
        e.timeout_ms = u32::try_from(self.timeout).unwrap_or(DEFAULT_TIMEOUT_MS);
        e.grid = self.grid;
        e.qos = self.qos;
        e.weight_type = self.weight_type.max(0);
        e.weight = if e.weight_type != 0 { self.weight } else { -1 };
        e.auth_type = self.auth_type;
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
}

/// The locator request asking for `id`'s endpoints: [`FIND_IN_SAME_SET`] when `set` is given,
/// else [`FIND_ANY`]. iVersion 1; the request id and timeout are filled in by the caller.
pub fn query_request(locator: &str, id: &str, set: Option<&SetDivision>) -> RequestPacket {
    let mut w = Writer::new();
    w.write_str(1, id);
    let func = match set {
        Some(set) => {
            w.write_str(2, &set.to_string());
            FIND_IN_SAME_SET
        }
        None => FIND_ANY,
    };
    RequestPacket {
        i_version: version::TARS,
        c_packet_type: packet_type::NORMAL,
        s_servant_name: locator.to_owned(),
        s_func_name: func.to_owned(),
        s_buffer: w.freeze(),
        ..RequestPacket::default()
    }
}

/// A locator answer: the function's return value and its two lists.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueryAnswer {
    /// The return value (0 is success).
    pub ret: i32,
    /// `activeEp`.
    pub active: Vec<EndpointF>,
    /// `inactiveEp`.
    pub inactive: Vec<EndpointF>,
}

/// Reads the reply to a [`query_request`] (`set` as passed to it). A non-zero `iRet`, or a
/// body that does not decode, is an error.
pub fn parse_reply(reply: &Reply, set: bool) -> Result<QueryAnswer, String> {
    if reply.ret != ret::SUCCESS {
        return Err(format!("locator returned iRet {}: {}", reply.ret, reply.desc));
    }
    decode_answer(&reply.body, set).map_err(|e| format!("undecodable locator reply: {e}"))
}

fn decode_answer(body: &Bytes, set: bool) -> Result<QueryAnswer, DecodeError> {
    let first = if set { 3 } else { 2 };
    let mut r = Reader::from_bytes(body);
    Ok(QueryAnswer {
        ret: r.read_required(0)?,
        active: r.read_optional(first)?.unwrap_or_default(),
        inactive: r.read_optional(first + 1)?.unwrap_or_default(),
    })
}

/// Encodes a locator answer, as a registry (or a test double of one) sends it.
pub fn encode_answer(answer: &QueryAnswer, set: bool) -> Bytes {
    let first = if set { 3 } else { 2 };
    let mut w = Writer::new();
    w.write_int(0, i64::from(answer.ret));
    answer.active.write_to(first, &mut w);
    answer.inactive.write_to(first + 1, &mut w);
    w.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpointf_round_trips_and_converts() {
        let e = Endpoint::parse("tcp -h 10.0.0.1 -p 9000 -t 60000 -w 30 -v 1").expect("valid");
        let f = EndpointF::from_endpoint(&e);
        assert_eq!((f.istcp, f.port, f.timeout, f.weight, f.weight_type), (1, 9000, 60000, 30, 1));
        let back = EndpointF::decode(&f.encode()).expect("decodes");
        assert_eq!(back, f);
        assert_eq!(back.to_endpoint().expect("valid"), e);
        let plain = Endpoint::parse("tcp -h h -p 1").expect("valid");
        assert_eq!(EndpointF::from_endpoint(&plain).to_endpoint().expect("valid"), plain);
    }

    #[test]
    fn bad_endpointf_values_are_rejected() {
        let ok = EndpointF { host: "h".into(), port: 1, istcp: 1, ..EndpointF::default() };
        assert!(ok.to_endpoint().is_some());
        assert!(EndpointF { istcp: 7, ..ok.clone() }.to_endpoint().is_none());
        assert!(EndpointF { port: 70000, ..ok.clone() }.to_endpoint().is_none());
        assert!(EndpointF { host: " ".into(), ..ok.clone() }.to_endpoint().is_none());
        assert_eq!(EndpointF { timeout: -5, ..ok }.to_endpoint().expect("valid").timeout_ms, DEFAULT_TIMEOUT_MS);
    }

    #[test]
    fn answers_round_trip_with_and_without_set() {
        let f = EndpointF { host: "a".into(), port: 2, istcp: 1, node_name: "n".into(), ..EndpointF::default() };
        for set in [false, true] {
            let a = QueryAnswer { ret: 0, active: vec![f.clone()], inactive: vec![f.clone(), f.clone()] };
            let reply = Reply { version: 1, request_id: 3, body: encode_answer(&a, set), ..Reply::default() };
            assert_eq!(parse_reply(&reply, set).expect("decodes"), a);
        }
        let failed = Reply { ret: -1, desc: "x".into(), ..Reply::default() };
        assert!(parse_reply(&failed, false).is_err());
    }

    #[test]
    fn requests_name_the_right_function() {
        let r = query_request("tars.tarsregistry.QueryObj", "A.B.C", None);
        assert_eq!((r.s_func_name.as_str(), r.i_version), (FIND_ANY, 1));
        let mut rd = Reader::from_bytes(&r.s_buffer);
        assert_eq!(rd.read_required::<String>(1).expect("id"), "A.B.C");
        let set = SetDivision::parse("gz.sz.1").expect("valid");
        let r = query_request("Q", "A.B.C", Some(&set));
        assert_eq!(r.s_func_name, FIND_IN_SAME_SET);
        let mut rd = Reader::from_bytes(&r.s_buffer);
        assert_eq!(rd.read_required::<String>(1).expect("id"), "A.B.C");
        assert_eq!(rd.read_required::<String>(2).expect("set"), "gz.sz.1");
    }
}
