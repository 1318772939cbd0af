//! Packet bodies and framework structs from arbitrary bytes: decode errors, never panics;
//! whatever decodes re-encodes to bytes that decode to the same value.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use tars_proto::codec::Struct;
use tars_proto::packet::{RequestPacket, ResponsePacket};
use tars_proto::rpc::{ParamReader, Reply};
use tars_protocol::tars;

fn round_trip<T: Struct + PartialEq + std::fmt::Debug>(data: &Bytes) {
    if let Ok(v) = T::decode_bytes(data) {
        let again = T::decode_bytes(&v.encode()).expect("re-encoded value decodes");
        // NaN floats are never equal to themselves; compare the encodings instead.
        assert_eq!(again.encode(), v.encode());
    }
}

fuzz_target!(|data: &[u8]| {
    let data = Bytes::copy_from_slice(data);
    round_trip::<RequestPacket>(&data);
    round_trip::<ResponsePacket>(&data);
    round_trip::<tars::EndpointF>(&data);
    round_trip::<tars::ServerDescriptor>(&data);
    round_trip::<tars::StatMicMsgHead>(&data);
    round_trip::<tars::MonitorQueryRsp>(&data);
    let _ = Reply::decode(&data);
    for version in [1, 3, 5] {
        if let Ok(mut p) = ParamReader::new(version, &data) {
            let _ = p.read::<Vec<tars::EndpointF>>(1, "v");
            let _ = p.read::<std::collections::BTreeMap<tars::StatMicMsgHead, tars::StatMicMsgBody>>(2, "m");
        }
    }
});
