//! The `-e 1` handshake from arbitrary bytes, on both sides: the server's check of a
//! connection's first frame and the client's check of the answer never panic; a
//! `BasicAuthPackage` that decodes encodes back to a value that decodes to itself; an answer
//! the server writes always decodes and names the state it decided.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use tars_core_net::auth::{check_reply, check_request, AuthPackage, AuthState, Keys};
use tars_proto::codec::Struct;
use tars_proto::packet::ResponsePacket;

const OBJ: &str = "A.S.EchoObj";

fuzz_target!(|data: &[u8]| {
    let frame = Bytes::copy_from_slice(data);
    let keys = Keys::new("ak", "sk");
    // The first bytes pick the server's clock, so the time window is crossed both ways.
    let now = data.get(..8).map_or(0, |b| i64::from_le_bytes(b.try_into().unwrap_or([0; 8])));
    for keys in [Some(&keys), None] {
        let verdict = check_request(&frame, OBJ, keys, now);
        if let Some(reply) = &verdict.reply {
            let rsp = ResponsePacket::decode_bytes(&reply.slice(4..)).expect("our answer decodes");
            assert_eq!(AuthState::from_name(std::str::from_utf8(&rsp.s_buffer).expect("ASCII")), Some(verdict.state));
            assert_eq!(check_reply(&reply.slice(4..)).is_ok(), verdict.is_success());
        }
    }
    let _ = check_reply(&frame);
    if let Ok(pkg) = AuthPackage::decode(data) {
        let again = AuthPackage::decode(&pkg.encode()).expect("round trip");
        assert_eq!(again, pkg);
    }
});
