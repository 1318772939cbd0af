//! Locator answers (QueryF replies carrying EndpointF lists) from arbitrary bytes, decoded by
//! the generated `QueryF` proxy exactly as the client's locator does: errors, never panics;
//! endpoints it accepts are well formed.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use tars_core_net::client::locator::{query, to_endpoint, EndpointF};
use tars_core_net::client::config::SetDivision;
use tars_proto::codec::Struct;
use tars_proto::packet::RequestPacket;
use tars_proto::rpc::{CallError, Reply, Transport};

/// Answers every call with the fuzzer's bytes as the reply body.
struct Canned(Bytes);

impl Transport for Canned {
    async fn invoke(&self, request: RequestPacket) -> Result<Reply, CallError> {
        Ok(Reply { version: request.i_version, body: self.0.clone(), ..Reply::default() })
    }
}

fuzz_target!(|data: &[u8]| {
    let body = Bytes::copy_from_slice(data);
    let set = SetDivision::parse("gz.sz.1");
    for set in [None, set.as_ref()] {
        let answer = futures_lite::future::block_on(query(Canned(body.clone()), "Q", "A.B.C", set));
        if let Ok(answer) = answer {
            for ep in answer.active.iter().chain(&answer.inactive) {
                if let Some(e) = to_endpoint(ep) {
                    assert!(!e.host.is_empty());
                }
            }
        }
    }
    if let Ok(ep) = EndpointF::decode_bytes(&body) {
        assert_eq!(EndpointF::decode_bytes(&ep.encode()).ok(), Some(ep));
    }
});
