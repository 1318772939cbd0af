//! Compiles the pinned generated code of `fixtures/sample` and checks what it does: defaults,
//! optional-member skipping, key ordering, enums, errors, property round trips, and calls
//! through dispatch and proxy in all three protocol versions.

include!("fixtures/sample/common.expected.rs");
include!("fixtures/sample/sample.expected.rs");

use bytes::{Bytes, BytesMut};
use common::{Color, Point};
use proptest::prelude::*;
use sample::{Everything, Inner, Key};
use std::collections::BTreeMap;
use tars_proto::codec::Struct;
use tars_proto::frame::{encode_frame, FrameDecoder};
use tars_proto::packet::{ret, version, RequestPacket};
use tars_proto::rpc::{self, CallError, CallOptions, Current, Reply, ServantError, Transport};

#[test]
fn defaults_come_from_the_idl() {
    let e = Everything::default();
    assert_eq!((e.ub, e.ui, e.label.as_str(), e.on), (200, 4_000_000_000, "none", true));
    assert_eq!(Inner::default().color, Color::BLUE);
    assert_eq!(Point::default().weight, 1.5);
    assert_eq!(common::MAX_ITEMS, 1000);
    assert_eq!(common::GREETING, "hello \"tars\"");
    assert_eq!((sample::BIG, sample::ENABLED, sample::RATIO), (0x7fff_ffff_ffff, true, 0.25));
}

#[test]
fn optional_members_follow_tarscpp_skipping() {
    // weight equals its default 1.5: omitted.
    assert_eq!(hex::encode(Point { x: 1, y: 2, weight: 1.5 }.encode()), "00011002");
    assert_eq!(hex::encode(Point { x: 1, y: 2, weight: 2.0 }.encode()), "0001100224 40000000".replace(' ', ""));
    // An optional enum is always written, even at its default; empty vectors are not.
    assert_eq!(hex::encode(Inner { name: "a".into(), ..Default::default() }.encode()), "0601612006");
    // Optional bools are always written (TarsCpp); strings only when not their default.
    let e = Everything::default();
    let bytes = e.encode();
    let mut r = tars_proto::codec::Reader::new(&bytes);
    assert_eq!(r.read_optional::<bool>(16).expect("on"), Some(true), "bool written at default");
    let mut r = tars_proto::codec::Reader::new(&bytes);
    assert_eq!(r.read_optional::<String>(15).expect("label"), None, "label at its default is skipped");
    assert_eq!(Everything::decode(&bytes).expect("decodes"), e);
}

#[test]
fn enums_keep_unknown_values() {
    assert_eq!((Color::RED.0, Color::GREEN.0, Color::BLUE.0, Color::ALIAS), (0, 5, 6, Color::GREEN));
    assert_eq!(format!("{:?} {:?}", Color::BLUE, Color(42)), "BLUE Color(42)");
    assert_eq!(Color::from_name("BLUE"), Some(Color::BLUE));
    let p = Inner { name: "n".into(), color: Color(42), ..Default::default() };
    assert_eq!(Inner::decode(&p.encode()).expect("decodes").color, Color(42));
}

#[test]
fn struct_keys_order_by_their_key_members() {
    // key[Key, shard, zone]: shard first, `note` ignored.
    let mut m = BTreeMap::new();
    m.insert(Key { zone: "b".into(), shard: 1, note: String::new() }, Point::default());
    m.insert(Key { zone: "a".into(), shard: 2, note: String::new() }, Point::default());
    m.insert(Key { zone: "a".into(), shard: 1, note: "x".into() }, Point::default());
    let order: Vec<_> = m.keys().map(|k| (k.shard, k.zone.as_str())).collect();
    assert_eq!(order, [(1, "a"), (1, "b"), (2, "a")]);
}

#[test]
fn decode_errors_name_the_member() {
    // `i` (tag 3) carries a string.
    let mut w = tars_proto::codec::Writer::new();
    w.write_bool(0, true);
    w.write_int(1, 1);
    w.write_int(2, 1);
    w.write_str(3, "x");
    let e = Everything::decode(w.as_slice()).expect_err("type mismatch");
    assert_eq!(e.to_string(), "Everything.i: expected int, got string");
    // Deeper: Inner.points[0].y missing inside Everything.inner.
    let bad = Everything {
        inner: Inner { name: "n".into(), points: vec![Point::default()], color: Color::RED },
        ..Default::default()
    };
    let good = bad.encode();
    let cut = hex::encode(&good).replacen("0a0c1c0b", "0a0c0b", 1);
    let e = Everything::decode(&hex::decode(cut).expect("hex")).expect_err("y missing");
    assert_eq!(e.to_string(), "Point.y (in Inner.points in Everything.inner): required field (tag 1) is missing");
}

fn point() -> impl Strategy<Value = Point> {
    (any::<i32>(), any::<i32>(), -1e6f32..1e6).prop_map(|(x, y, weight)| Point { x, y, weight })
}

fn inner() -> impl Strategy<Value = Inner> {
    (".{0,8}", prop::collection::vec(point(), 0..4), any::<i32>()).prop_map(|(name, points, c)| Inner {
        name,
        points,
        color: Color(c),
    })
}

fn key() -> impl Strategy<Value = Key> {
    (".{0,6}", any::<i32>(), ".{0,4}").prop_map(|(zone, shard, note)| Key { zone, shard, note })
}

prop_compose! {
    fn everything()(
        flag in any::<bool>(), b in any::<i8>(), s in any::<i16>(), i in any::<i32>(), l in any::<i64>(),
        f in -1e30f32..1e30, d in -1e300f64..1e300, str in ".{0,300}", ub in any::<u8>(), us in any::<u16>(),
        ui in any::<u32>(), raw in prop::collection::vec(any::<u8>(), 0..64),
        ubytes in prop::collection::vec(any::<u8>(), 0..8),
        index in prop::collection::btree_map(".{0,5}", prop::collection::vec(any::<i32>(), 0..4), 0..4),
        inner in inner(), label in ".{0,6}", on in any::<bool>(), ty in any::<i32>(),
        by_key in prop::collection::vec((key(), point()), 0..4),
    ) -> Everything {
        // Equal keys collapse in a map, keeping the first: build it the same way decode does.
        let mut m = BTreeMap::new();
        for (k, v) in by_key { m.entry(k).or_insert(v); }
        Everything { flag, b, s, i, l, f, d, str, ub, us, ui, raw: Bytes::from(raw), ubytes, index, inner,
            label, on, r#type: ty, by_key: m }
    }
}

proptest! {
    #[test]
    fn everything_round_trips_in_binary(e in everything()) {
        let bytes = e.encode();
        prop_assert_eq!(Everything::decode(&bytes).expect("decodes"), e.clone());
        // Zero-copy decode gives the same value.
        prop_assert_eq!(Everything::decode_bytes(&bytes).expect("decodes"), e);
    }

    #[test]
    fn everything_round_trips_in_json(e in everything()) {
        use tars_proto::json::{self, JsonField};
        let text = json::to_string(&e.to_json());
        let back = Everything::from_json(&json::parse(text.as_bytes()).expect("valid JSON")).expect("decodes");
        prop_assert_eq!(back, e);
    }

    #[test]
    fn any_bytes_decode_or_fail_cleanly(data in prop::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(v) = Everything::decode(&data) {
            prop_assert_eq!(Everything::decode(&v.encode()).expect("re-decodes").encode(), v.encode());
        }
    }
}

/// The servant under test.
struct DemoImpl;

impl sample::Demo for DemoImpl {
    async fn echo(&self, current: &mut Current, input: String, output: &mut String) -> Result<i32, ServantError> {
        if input == "fail" {
            return Err(ServantError::new(-42, "asked to fail"));
        }
        *output = format!("{input} via {}", current.func);
        current.response_context.insert("seen".into(), input.clone());
        Ok(i32::try_from(input.len()).unwrap_or(-1))
    }

    async fn round_trip(
        &self,
        _: &mut Current,
        e: Everything,
        parts: &mut Vec<Inner>,
    ) -> Result<Everything, ServantError> {
        parts.push(e.inner.clone());
        parts.push(Inner { name: "second".into(), ..Default::default() });
        Ok(e)
    }

    async fn notify_all(&self, current: &mut Current, who: String, c: Color) -> Result<(), ServantError> {
        // The proxy put the routekey parameter into status.
        if current.status.get("STATUS_GRID_KEY") != Some(&who) {
            return Err(ServantError::unknown(format!("routekey missing from status: {:?}", current.status)));
        }
        current.response_status.insert("who".into(), format!("{who}:{c:?}"));
        Ok(())
    }

    async fn lookup(
        &self,
        _: &mut Current,
        keys: Vec<Key>,
        found: &mut i32,
    ) -> Result<BTreeMap<Key, Point>, ServantError> {
        *found = i32::try_from(keys.len()).unwrap_or(-1);
        Ok(keys
            .into_iter()
            .map(|k| {
                let p = Point { x: k.shard, y: 0, weight: 1.5 };
                (k, p)
            })
            .collect())
    }

    async fn paint(&self, _: &mut Current, c: Color) -> Result<Color, ServantError> {
        Ok(Color(c.0 + 1))
    }
}

/// A transport that runs the server side in-process, through the real framing on both legs:
/// request frame → decoder → dispatch → reply frame → decoder.
struct Loopback {
    next_id: std::cell::Cell<i32>,
}

impl Transport for Loopback {
    async fn invoke(&self, mut request: RequestPacket) -> Result<Reply, CallError> {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        request.i_request_id = id;
        let mut dec = FrameDecoder::new();
        let mut wire = BytesMut::from(&encode_frame(&request)[..]);
        let body = dec.decode(&mut wire).map_err(|e| CallError::Send(e.to_string()))?.ok_or(CallError::Timeout)?;
        let req = RequestPacket::decode_bytes(&body)?;
        let mut current = Current::from_request(&req, None);
        let result = sample::dispatch_demo(&DemoImpl, &mut current, &req.s_buffer).await;
        let Some(frame) = rpc::reply_frame(&current, result) else { return Ok(Reply::default()) };
        let mut wire = BytesMut::from(&frame[..]);
        let body = dec.decode(&mut wire).map_err(|e| CallError::Connect(e.to_string()))?.ok_or(CallError::Timeout)?;
        let reply = Reply::decode(&body)?;
        assert_eq!(reply.request_id, id, "reply echoes the request id");
        Ok(reply)
    }
}

fn proxy(v: i16) -> sample::DemoProxy<Loopback> {
    sample::DemoProxy::new(Loopback { next_id: std::cell::Cell::new(1) }, "Test.DemoServer.DemoObj")
        .with_options(CallOptions { version: v, ..Default::default() })
}

#[test]
fn calls_round_trip_in_every_protocol_version() {
    for v in [version::TARS, version::TUP, version::JSON] {
        futures_lite::future::block_on(async {
            let p = proxy(v);
            let mut out = String::new();
            assert_eq!(p.echo("hi", &mut out).await.expect("echo"), 2, "v{v}");
            assert_eq!(out, "hi via echo", "v{v}");

            let e = Everything {
                str: "x".repeat(300),
                raw: Bytes::from_static(&[0, 1, 0xff]),
                inner: Inner {
                    name: "in".into(),
                    points: vec![Point { x: 1, y: -2, weight: 0.5 }],
                    color: Color::GREEN,
                },
                ..Default::default()
            };
            let mut parts = Vec::new();
            assert_eq!(p.round_trip(&e, &mut parts).await.expect("roundTrip"), e, "v{v}");
            assert_eq!(parts.len(), 2);
            assert_eq!(parts[0], e.inner);

            p.notify_all("me", Color::BLUE).await.expect("notifyAll");
            p.notify_all_oneway("me", Color::BLUE).await.expect("oneway");

            let keys = vec![Key { zone: "z".into(), shard: 7, note: String::new() }];
            let mut found = 0;
            let m = p.lookup(&keys, &mut found).await.expect("lookup");
            assert_eq!(found, 1);
            assert_eq!(m.get(&keys[0]).map(|p| p.x), Some(7), "v{v}");

            assert_eq!(p.paint(Color::GREEN).await.expect("paint"), Color::BLUE, "v{v}");

            let err = p.echo("fail", &mut out).await.expect_err("servant error");
            assert_eq!(err, CallError::Server { code: -42, desc: "asked to fail".into() }, "v{v}");
        });
    }
}

#[test]
fn unknown_function_and_bad_parameters_get_standard_codes() {
    futures_lite::future::block_on(async {
        let t = Loopback { next_id: std::cell::Cell::new(1) };
        let opts = CallOptions::default();
        let e =
            rpc::call(&t, "Test.DemoServer.DemoObj", "nope", Bytes::new(), &opts, false).await.expect_err("no func");
        assert_eq!(e.code(), ret::NO_FUNC);
        // echo's `input` (tag 1) sent as an int.
        let mut w = tars_proto::codec::Writer::new();
        w.write_int(1, 5);
        let e = rpc::call(&t, "Test.DemoServer.DemoObj", "echo", w.freeze(), &opts, false).await.expect_err("decode");
        assert_eq!(e.code(), ret::DECODE_ERR);
        assert_eq!(e.to_string(), "server returned -1: Demo.echo.input: expected string, got int1");
        // An unsupported protocol version.
        let opts = CallOptions { version: 4, ..Default::default() };
        let e = rpc::call(&t, "Test.DemoServer.DemoObj", "paint", Bytes::new(), &opts, false).await.expect_err("xml");
        assert_eq!(e.code(), ret::DECODE_ERR);
    });
}

#[test]
fn out_parameters_sent_by_sync_proxies_are_accepted() {
    // TarsCpp's sync proxy also sends the current value of out parameters; servants ignore them.
    futures_lite::future::block_on(async {
        let t = Loopback { next_id: std::cell::Cell::new(1) };
        let mut w = tars_proto::codec::Writer::new();
        w.write_str(1, "abc");
        w.write_str(2, "stale");
        let reply = rpc::call(&t, "Test.DemoServer.DemoObj", "echo", w.freeze(), &CallOptions::default(), false)
            .await
            .expect("call");
        let mut r = reply.params().expect("params");
        assert_eq!(r.read_ret::<i32>().expect("ret"), 3);
        assert_eq!(r.read::<String>(2, "output").expect("out"), "abc via echo");
    });
}

#[test]
fn push_messages_round_trip_in_every_protocol_version() {
    use sample::PushedMessage;
    let messages = [
        PushedMessage::Hello { id: 7, who: "node-1".into() },
        PushedMessage::Moved { id: -1, to: Point { x: 3, y: 4, ..Point::default() }, trail: vec![Inner::default()] },
        PushedMessage::Nothing {},
    ];
    for v in [version::TARS, version::TUP, version::JSON] {
        for m in &messages {
            let body = m.encode(v);
            assert_eq!(PushedMessage::decode(m.func(), v, &body).expect("decodes"), *m, "version {v}");
        }
    }
    // Tags as the push carries them: out parameters from tag 1, no return value.
    let body = PushedMessage::Hello { id: 7, who: "a".into() }.encode(version::TARS);
    assert_eq!(&body[..], b"\x10\x07\x26\x01a");
    let err = PushedMessage::decode("gone", version::TARS, &body).expect_err("unknown function");
    assert!(err.to_string().contains("no push function 'gone' in Pushed"), "{err}");
    let err = PushedMessage::decode("moved", version::TARS, &Bytes::from_static(b"\x10\x07\x2c"))
        .expect_err("missing parameters");
    assert!(err.to_string().contains("Pushed.moved"), "{err}");
}
