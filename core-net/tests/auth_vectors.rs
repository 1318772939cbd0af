//! Known answers for the `-e 1` handshake, produced by TarsCpp itself: a throwaway program
//! linked against TarsCpp's `util/src/tc_sha.cpp`, `tc_md5.cpp`, `tc_des.cpp` and
//! `tc_common.cpp` ran the steps of `defaultCreateAuthReq` (`AuthLogic.cpp`) with
//! `TC_SHA::sha1str`, `TC_MD5::md5str` and `TC_Des::encrypt3`, checked the result with
//! `TC_Des::decrypt3`, and encoded the `BasicAuthPackage` fields with TarsCpp's
//! `TarsOutputStream::write` in the order `tars2cpp` generates (tag 4 left out at its default).
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use tars_core_net::auth::{
    check_reply, check_request, package, request_frame, signature, verify, AuthPackage, AuthState, HandshakeError,
    Keys, AUTH_FUNC, AUTH_MESSAGE_TYPE, TIME_WINDOW,
};
use tars_proto::codec::Struct;
use tars_proto::frame::{encode_frame, FrameDecoder};
use tars_proto::packet::{RequestPacket, ResponsePacket};

struct Vector {
    secret_key: &'static str,
    time: i64,
    object: &'static str,
    access_key: &'static str,
    signature: &'static str,
    package: &'static str,
}

const VECTORS: [Vector; 4] = [
    // The keys of TarsCpp's AuthDemo.
    Vector {
        secret_key: "123456",
        time: 1_700_000_000,
        object: "TestApp.AuthServer.AuthObj",
        access_key: "tars-test-user",
        signature: "19c4e6bcb94f29a9cef2f7f97f2912844d6886b427ca7bb8a8b3b7c6cf5807e7df4f43fafcb00599adef5384f91b8819",
        package: "161a546573744170702e417574685365727665722e417574684f626a260e746172732d746573742d75736572326553f100563019c4e6bcb94f29a9cef2f7f97f2912844d6886b427ca7bb8a8b3b7c6cf5807e7df4f43fafcb00599adef5384f91b8819",
    },
    Vector {
        secret_key: "s3cr3t-K3y",
        time: 1_234_567_890,
        object: "A.S.EchoObj",
        access_key: "ak1",
        signature: "a4e4cf823acd9741b6fc2cffe8d8a8e4ad67d5c447b5e25adb417bc74619b5d1b814ec84175a9c6595dd8ca3f83f8ac0",
        package: "160b412e532e4563686f4f626a2603616b3132499602d25630a4e4cf823acd9741b6fc2cffe8d8a8e4ad67d5c447b5e25adb417bc74619b5d1b814ec84175a9c6595dd8ca3f83f8ac0",
    },
    // An empty secret, time 0: iTime written as ZeroTag.
    Vector {
        secret_key: "",
        time: 0,
        object: "A.S.EchoObj",
        access_key: "ak1",
        signature: "9854b6b7273d969a45bc6938176cc20c1f721c65d2ba800657a04f8c10dcaea247882d8ce42c59d1bdf1cf9c018a63ba",
        package: "160b412e532e4563686f4f626a2603616b313c56309854b6b7273d969a45bc6938176cc20c1f721c65d2ba800657a04f8c10dcaea247882d8ce42c59d1bdf1cf9c018a63ba",
    },
    // Time -1: all eight OR-ed bytes are 0xff.
    Vector {
        secret_key: "123456",
        time: -1,
        object: "A.S.EchoObj",
        access_key: "ak1",
        signature: "0a56e560ffeb15beaefd2d0131e58757642eb3e507665d5194e08b2a24fbca1d9bdae1cfa549a4ccafe36b940b0f12b0",
        package: "160b412e532e4563686f4f626a2603616b3130ff56300a56e560ffeb15beaefd2d0131e58757642eb3e507665d5194e08b2a24fbca1d9bdae1cfa549a4ccafe36b940b0f12b0",
    },
];

#[test]
fn signatures_and_packages_match_tarscpp() {
    for v in &VECTORS {
        assert_eq!(hex::encode(signature(v.secret_key, v.time)), v.signature, "signature for {:?}", v.secret_key);
        let keys = Keys::new(v.access_key, v.secret_key);
        let pkg = package(v.object, &keys, v.time);
        assert_eq!(hex::encode(pkg.encode()), v.package, "package for {:?}", v.secret_key);
        let back = AuthPackage::decode(&hex::decode(v.package).unwrap()).unwrap();
        assert_eq!(back, pkg);
        assert_eq!(back.hash_method, "sha1", "absent tag 4 reads as its default");
    }
}

#[test]
fn tarscpp_signatures_verify_within_the_window_only() {
    for v in &VECTORS {
        let keys = Keys::new(v.access_key, v.secret_key);
        let pkg = AuthPackage::decode(&hex::decode(v.package).unwrap()).unwrap();
        let t = v.time;
        assert_eq!(verify(&pkg, v.object, &keys, t), AuthState::AUTH_SUCC);
        assert_eq!(verify(&pkg, v.object, &keys, t + TIME_WINDOW - 1), AuthState::AUTH_SUCC);
        assert_eq!(verify(&pkg, v.object, &keys, t - TIME_WINDOW + 1), AuthState::AUTH_SUCC);
        // TarsCpp's bounds are strict on both sides.
        assert_eq!(verify(&pkg, v.object, &keys, t + TIME_WINDOW), AuthState::AUTH_WRONG_TIME);
        assert_eq!(verify(&pkg, v.object, &keys, t - TIME_WINDOW), AuthState::AUTH_WRONG_TIME);
    }
}

#[test]
fn each_check_names_its_state_in_tarscpp_order() {
    let v = &VECTORS[0];
    let keys = Keys::new(v.access_key, v.secret_key);
    let good = package(v.object, &keys, v.time);
    let now = v.time;
    let check = |pkg: &AuthPackage, keys: &Keys| verify(pkg, v.object, keys, now);

    assert_eq!(check(&good, &Keys::new(v.access_key, "654321")), AuthState::AUTH_ERROR, "wrong secret");
    assert_eq!(check(&good, &Keys::new("someone-else", v.secret_key)), AuthState::AUTH_WRONG_AK);
    assert_eq!(verify(&good, "TestApp.AuthServer.OtherObj", &keys, now), AuthState::AUTH_WRONG_OBJ);
    let wrong_ak_and_obj = AuthPackage { access_key: "x".into(), obj_name: "y".into(), ..good.clone() };
    assert_eq!(check(&wrong_ak_and_obj, &keys), AuthState::AUTH_WRONG_AK, "the access key is looked at first");
    let md5 = AuthPackage { hash_method: "md5".into(), ..good.clone() };
    assert_eq!(check(&md5, &keys), AuthState::AUTH_NOT_SUPPORT_ENC);
    let stale_md5 = AuthPackage { time: now - 2 * TIME_WINDOW, ..md5 };
    assert_eq!(check(&stale_md5, &keys), AuthState::AUTH_WRONG_TIME, "time before hash method");
    for bad in [Vec::new(), vec![0; 47], good.signature[..41].to_vec()] {
        let pkg = AuthPackage { signature: bad, ..good.clone() };
        assert_eq!(check(&pkg, &keys), AuthState::AUTH_DEC_FAIL);
    }
    let mut flipped = good.clone();
    flipped.signature[3] ^= 1;
    assert_eq!(check(&flipped, &keys), AuthState::AUTH_ERROR);
    // The signature is bound to its time: the same bytes under another time fail.
    let moved = AuthPackage { time: now + 1, ..good };
    assert_eq!(check(&moved, &keys), AuthState::AUTH_ERROR);
}

#[test]
fn handshake_request_and_answers() {
    let v = &VECTORS[1];
    let keys = Keys::new(v.access_key, v.secret_key);
    let mut framed = bytes::BytesMut::from(&request_frame(v.object, &keys, v.time)[..]);
    // TarsCpp 3.x servers read the handshake with its length prefix, which parses only below
    // 256 bytes (see the module docs): TarsCpp's own AuthDemo names fit easily.
    let demo = request_frame(VECTORS[0].object, &Keys::new(VECTORS[0].access_key, "x"), VECTORS[0].time);
    assert_eq!(demo.len(), 164);
    let frame = FrameDecoder::new().decode(&mut framed).unwrap().unwrap();
    assert!(framed.is_empty());
    let req = RequestPacket::decode_bytes(&frame).unwrap();
    assert_eq!((req.i_version, req.c_packet_type, req.i_message_type, req.i_request_id), (1, 0, AUTH_MESSAGE_TYPE, 1));
    assert_eq!((req.s_servant_name.as_str(), req.s_func_name.as_str()), (v.object, AUTH_FUNC));
    assert_eq!(hex::encode(&req.s_buffer), v.package);

    let verdict = check_request(&frame, v.object, Some(&keys), v.time);
    assert!(verdict.is_success());
    let reply = verdict.reply.unwrap();
    let rsp = ResponsePacket::decode_bytes(&reply.slice(4..)).unwrap();
    assert_eq!((rsp.i_version, rsp.c_packet_type, rsp.i_message_type, rsp.i_request_id), (1, 0, AUTH_MESSAGE_TYPE, 1));
    assert_eq!((rsp.i_ret, &rsp.s_buffer[..]), (0, &b"AUTH_SUCC"[..]));
    check_reply(&reply.slice(4..)).unwrap();

    let refused = check_request(&frame, v.object, Some(&Keys::new(v.access_key, "nope")), v.time);
    assert_eq!(refused.state, AuthState::AUTH_ERROR);
    let err = check_reply(&refused.reply.unwrap().slice(4..)).unwrap_err();
    assert_eq!(err, HandshakeError::Refused("AUTH_ERROR".into()));
    assert_eq!(check_request(&frame, v.object, None, v.time).state, AuthState::AUTH_WRONG_AK, "no keys: nobody");

    // A plain call first: its parameters are no BasicAuthPackage.
    let call = RequestPacket {
        i_version: 1,
        i_request_id: 7,
        s_servant_name: v.object.into(),
        s_func_name: "echo".into(),
        s_buffer: Bytes::from_static(b"\x16\x02hi"),
        ..RequestPacket::default()
    };
    let verdict = check_request(&encode_frame(&call).slice(4..), v.object, Some(&keys), v.time);
    assert_eq!(verdict.state, AuthState::AUTH_PROTO_ERR);
    let rsp = ResponsePacket::decode_bytes(&verdict.reply.unwrap().slice(4..)).unwrap();
    assert_eq!((rsp.i_request_id, &rsp.s_buffer[..]), (7, &b"AUTH_PROTO_ERR"[..]));
    // Not a packet at all: nothing to answer.
    let garbage = check_request(&Bytes::from_static(b"\xff\xff"), v.object, Some(&keys), v.time);
    assert_eq!((garbage.state, garbage.reply), (AuthState::AUTH_PROTO_ERR, None));
}

#[test]
fn client_side_reply_checks() {
    let answer = |body: &'static [u8], ret: i32| ResponsePacket {
        i_version: 1,
        i_request_id: 1,
        i_ret: ret,
        s_buffer: Bytes::from_static(body),
        ..ResponsePacket::default()
    };
    check_reply(&answer(b"auth_succ", 0).encode()).unwrap();
    // TarsCpp's client would take an empty answer for success; ours does not.
    let err = check_reply(&answer(b"", -3).encode()).unwrap_err();
    assert!(matches!(&err, HandshakeError::Refused(m) if m.contains("iRet -3")), "{err}");
    assert!(matches!(check_reply(&answer(b"AUTH_SUCC_NOT", 0).encode()), Err(HandshakeError::Refused(_))));
    let err = check_reply(&answer(b"\x1b[31mAUTH\n", 0).encode()).unwrap_err();
    assert_eq!(err, HandshakeError::Refused("?[31mAUTH?".into()), "control characters are not echoed");
    assert!(matches!(check_reply(&Bytes::from_static(b"\x01")), Err(HandshakeError::Decode(_))));
}

#[test]
fn the_generated_type_has_the_same_wire_form_for_text_fields() {
    // With a UTF-8 signature the generated `BasicAuthPackage` can carry it: both encodings agree.
    let ours = AuthPackage {
        obj_name: "A.S.O".into(),
        access_key: "ak".into(),
        time: 5,
        hash_method: "md5".into(),
        signature: b"text".to_vec(),
    };
    let generated = tars_protocol::tars::BasicAuthPackage {
        s_obj_name: "A.S.O".into(),
        s_access_key: "ak".into(),
        i_time: 5,
        s_hash_method: "md5".into(),
        s_signature: "text".into(),
    };
    assert_eq!(ours.encode(), generated.encode());
    assert_eq!(AuthPackage::decode(&generated.encode()).unwrap(), ours);
}

proptest::proptest! {
    /// A valid handshake with bytes flipped, cut or appended: the server's check never panics,
    /// always answers a request it could decode, and accepts only what verifies.
    #[test]
    fn damaged_handshakes_never_panic(flips in proptest::collection::vec((0usize..400, 1u8..=255), 0..6), cut in 0usize..400, tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..16)) {
        let v = &VECTORS[0];
        let keys = Keys::new(v.access_key, v.secret_key);
        let mut frame = request_frame(v.object, &keys, v.time).slice(4..).to_vec();
        for (at, x) in &flips {
            let n = frame.len();
            frame[at % n] ^= x;
        }
        frame.truncate(cut.max(1));
        frame.extend(tail);
        let frame = Bytes::from(frame);
        let verdict = check_request(&frame, v.object, Some(&keys), v.time);
        if RequestPacket::decode_bytes(&frame).is_ok() {
            let reply = verdict.reply.clone().unwrap();
            let rsp = ResponsePacket::decode_bytes(&reply.slice(4..)).unwrap();
            proptest::prop_assert_eq!(AuthState::from_name(std::str::from_utf8(&rsp.s_buffer).unwrap()), Some(verdict.state));
        } else {
            proptest::prop_assert!(verdict.reply.is_none());
        }
        if verdict.is_success() {
            let req = RequestPacket::decode_bytes(&frame).unwrap();
            let pkg = AuthPackage::decode(&req.s_buffer).unwrap();
            proptest::prop_assert_eq!(verify(&pkg, v.object, &keys, v.time), AuthState::AUTH_SUCC);
        }
        let _ = check_reply(&frame);
    }
}
