//! Reply construction for each protocol version, read back as a client would.

use bytes::{Bytes, BytesMut};
use tars_proto::frame::FrameDecoder;
use tars_proto::packet::{packet_type, ret, status_key, version};
use tars_proto::rpc::{reply_frame, Current, Reply, ServantError};

fn decode(frame: &Bytes) -> Reply {
    let mut buf = BytesMut::from(&frame[..]);
    let body = FrameDecoder::new().decode(&mut buf).expect("valid frame").expect("complete");
    Reply::decode(&body).expect("reply decodes")
}

fn current(v: i16) -> Current {
    Current { version: v, request_id: 77, message_type: 0x04, timeout_ms: 3000, func: "f".into(), ..Default::default() }
}

#[test]
fn tup_error_replies_carry_the_code_in_status_and_a_readable_body() {
    let frame = reply_frame(&current(version::TUP), Err(ServantError::new(ret::UNKNOWN, "boom"))).expect("not oneway");
    let reply = decode(&frame);
    assert_eq!((reply.ret, reply.desc.as_str(), reply.request_id), (ret::UNKNOWN, "boom", 77));
    assert_eq!(reply.status.get(status_key::RESULT_CODE).map(String::as_str), Some("-99"));
    // The body is an empty attribute set, not empty bytes, so TUP clients can decode it.
    assert_eq!(&reply.body[..], &[0x08, 0x0c]);
    assert!(reply.params().is_ok());
}

#[test]
fn tars_and_json_replies_are_response_packets() {
    for v in [version::TARS, version::JSON] {
        let mut cur = current(v);
        cur.response_context.insert("k".into(), "v".into());
        let reply = decode(&reply_frame(&cur, Ok(Bytes::from_static(b"\x0c"))).expect("not oneway"));
        assert_eq!((reply.version, reply.ret, reply.request_id), (v, ret::SUCCESS, 77));
        assert_eq!(&reply.body[..], b"\x0c");
        assert_eq!(reply.context.get("k").map(String::as_str), Some("v"));
        let err = decode(&reply_frame(&cur, Err(ServantError::no_func("g"))).expect("not oneway"));
        assert_eq!((err.ret, err.desc.as_str()), (ret::NO_FUNC, "no function 'g'"));
    }
}

#[test]
fn oneway_calls_get_no_reply() {
    let mut cur = current(version::TARS);
    cur.packet_type = packet_type::ONEWAY;
    assert_eq!(reply_frame(&cur, Ok(Bytes::new())), None);
    assert_eq!(reply_frame(&cur, Err(ServantError::unknown("x"))), None);
}
