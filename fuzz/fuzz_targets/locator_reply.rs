//! Locator answers (QueryF replies carrying EndpointF lists) from arbitrary bytes, as the
//! client's locator decodes them: errors, never panics; endpoints it accepts are well formed.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use tars_core_net::client::locator::{parse_reply, EndpointF};
use tars_core_net::codec::Struct;
use tars_core_net::rpc::Reply;

fuzz_target!(|data: &[u8]| {
    let body = Bytes::copy_from_slice(data);
    for set in [false, true] {
        let reply = Reply { version: 1, body: body.clone(), ..Reply::default() };
        if let Ok(answer) = parse_reply(&reply, set) {
            for ep in answer.active.iter().chain(&answer.inactive) {
                if let Some(e) = ep.to_endpoint() {
                    assert!(!e.host.is_empty());
                }
            }
        }
    }
    if let Ok(ep) = EndpointF::decode_bytes(&body) {
        assert_eq!(EndpointF::decode_bytes(&ep.encode()).ok(), Some(ep));
    }
});
