//! `-e 1` authentication on every IO driver: our client against our server with the right
//! keys (direct and through the locator), refusals for a wrong secret, access key, object or
//! time (answered with the state, connection closed, nothing dispatched), and raw clients that
//! skip the handshake or send a bad one.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tars_core_net::auth::{request_frame, Keys, MAX_HANDSHAKE_FRAME};
use tars_core_net::client::config::ClientConfig;
use tars_core_net::client::locator::{from_endpoint, EndpointF, FIND_ANY};
use tars_core_net::client::{Communicator, ObjectProxy};
use tars_core_net::rt::{self, IoMode};
use tars_core_net::server::{Dispatch, DispatchFuture, ServerBuilder, ServerHandle};
use tars_proto::config::Config;
use tars_proto::endpoint::{Endpoint, ObjectRef};
use tars_proto::packet::{ret, version, PING_FUNC};
use tars_proto::rpc::{CallError, Current, ParamWriter, ServantError};
use tars_proto::{Bytes, Reader};
use tars_testkit::raw::{frame_bytes, RawConn};
use tars_testkit::TarsTest::InteropProxy;
use tars_testkit::{on_every_driver, start_interop, INTEROP_ADAPTER, INTEROP_OBJ};

const AK: &str = "tars-test-user";
const SK: &str = "123456";

/// The interop adapter with `-e 1`, its keys, and a 2 s idle timeout.
fn auth_keys() -> String {
    format!("endpoint=tcp -h 127.0.0.1 -p 0 -t 2000 -e 1\naccesskey={AK}\nsecretkey={SK}")
}

fn start(io: IoMode) -> ServerHandle {
    start_interop(io, 1, &auth_keys()).unwrap()
}

fn now() -> i64 {
    i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()).unwrap()
}

fn client_config(keys: Option<Keys>) -> ClientConfig {
    ClientConfig {
        auth_keys: keys.map(|k| BTreeMap::from([(INTEROP_OBJ.to_owned(), k)])).unwrap_or_default(),
        ..ClientConfig::default()
    }
}

fn object(server: &ServerHandle) -> String {
    format!("{INTEROP_OBJ}@tcp -h 127.0.0.1 -p {} -e 1", server.addr(INTEROP_ADAPTER).unwrap().port())
}

fn interop(p: ObjectProxy) -> InteropProxy<ObjectProxy> {
    InteropProxy::new(p.with_timeout(Duration::from_secs(5)), INTEROP_OBJ)
}

/// How many `fire` calls the servant has run, asked over an authenticated raw connection.
fn fired(server: &ServerHandle) -> (i32, String) {
    let mut c = authenticated(server);
    let req = c.request(INTEROP_OBJ, "lastFired", version::TARS, Bytes::new());
    let reply = c.call(&req).unwrap();
    assert_eq!(reply.ret, ret::SUCCESS);
    let mut p = reply.params().unwrap();
    (p.read_ret().unwrap(), p.read(1, "note").unwrap())
}

fn connect(server: &ServerHandle) -> RawConn {
    RawConn::connect(server.addr(INTEROP_ADAPTER).unwrap()).unwrap()
}

/// A raw connection past a good handshake.
fn authenticated(server: &ServerHandle) -> RawConn {
    let mut c = connect(server);
    assert_eq!(handshake(&mut c, &Keys::new(AK, SK), INTEROP_OBJ, now()).as_deref(), Some("AUTH_SUCC"));
    c
}

/// Sends a handshake; the state the server answered, `None` if it closed without one.
fn handshake(c: &mut RawConn, keys: &Keys, obj: &str, time: i64) -> Option<String> {
    c.send_bytes(&request_frame(obj, keys, time)).unwrap();
    let reply = c.read_reply().unwrap()?;
    assert_eq!((reply.request_id, reply.ret), (1, 0));
    Some(String::from_utf8(reply.body.to_vec()).unwrap())
}

fn fire_request(c: &mut RawConn, note: &str) -> tars_proto::packet::RequestPacket {
    let mut w = ParamWriter::new(version::TARS);
    w.write_str(1, "note", note);
    c.request(INTEROP_OBJ, "fire", version::TARS, w.finish())
}

fn stop(server: ServerHandle) {
    server.shutdown();
    server.wait().unwrap();
}

// ---------------------------------------------------------------- our client

/// Right keys: calls queued while the handshake runs go out after `AUTH_SUCC`, all on one
/// connection, and later calls reuse it.
fn right_keys(io: IoMode) {
    let server = start(io);
    let obj = object(&server);
    let (first, conns) = rt::block_on(io.resolve(), async move {
        let comm = Communicator::new(client_config(Some(Keys::new(AK, SK))));
        let p = interop(comm.proxy(&obj).unwrap());
        let (a, b) = futures_lite::future::zip(p.echo_string("one"), p.echo_string("two")).await;
        let first = (a.unwrap(), b.unwrap());
        for i in 0..20 {
            assert_eq!(p.echo_string(&format!("call {i}")).await.unwrap(), format!("call {i}"));
        }
        p.fire("authorised").await.unwrap();
        (first, comm.connection_count())
    })
    .unwrap();
    assert_eq!(first, ("one".to_owned(), "two".to_owned()));
    assert_eq!(conns, 1);
    assert_eq!(fired(&server), (1, "authorised".to_owned()));
    stop(server);
}

/// Wrong secret, wrong access key, no keys at all: every call fails with a connect error that
/// says why, and none reaches the servant.
fn refused_clients(io: IoMode) {
    let server = start(io);
    let cases = [
        (Some(Keys::new(AK, "654321")), "AUTH_ERROR"),
        (Some(Keys::new("intruder", SK)), "AUTH_WRONG_AK"),
        (None, "no accesskey/secretkey"),
    ];
    for (keys, why) in cases {
        let obj = object(&server);
        let errors = rt::block_on(io.resolve(), async move {
            let comm = Communicator::new(client_config(keys));
            let p = interop(comm.proxy(&obj).unwrap());
            let (a, b) = futures_lite::future::zip(p.fire("one"), p.fire("two")).await;
            // At once again: the endpoint is down for the backoff, as after a failed connect.
            let again = p.fire("three").await;
            (a.unwrap_err(), b.unwrap_err(), again.unwrap_err(), comm.connection_count())
        })
        .unwrap();
        for e in [&errors.0, &errors.1, &errors.2] {
            assert!(matches!(e, CallError::Connect(m) if m.contains(why)), "{why}: {e:?}");
        }
        assert_eq!(errors.3, 0, "{why}: no connection counts as up");
    }
    assert_eq!(fired(&server), (0, String::new()), "nothing was dispatched");
    stop(server);
}

/// The locator's endpoint carries `-e 1` (EndpointF.authType): the client authenticates too.
fn through_the_locator(io: IoMode) {
    let server = start(io);
    let mut ep =
        Endpoint::parse(&format!("tcp -h 127.0.0.1 -p {}", server.addr(INTEROP_ADAPTER).unwrap().port())).unwrap();
    ep.auth_type = 1;
    let locator = locator(io, ep);
    let loc = format!("{QUERY}@tcp -h 127.0.0.1 -p {}", locator.addr(&format!("{QUERY}Adapter")).unwrap().port());
    let config =
        ClientConfig { locator: Some(ObjectRef::parse(&loc).unwrap()), ..client_config(Some(Keys::new(AK, SK))) };
    let echoed = rt::block_on(io.resolve(), async move {
        let comm = Communicator::new(config);
        let raw = comm.proxy(INTEROP_OBJ).unwrap();
        let p = interop(raw.clone());
        assert_eq!(p.echo_string("found").await.unwrap(), "found");
        assert_eq!(raw.endpoints()[0].auth_type, 1);
        p.fire("via locator").await.unwrap();
    });
    echoed.unwrap();
    assert_eq!(fired(&server).1, "via locator");
    stop(locator);
    stop(server);
}

// ---------------------------------------------------------------- raw clients

/// Each refusal is answered with its state's name, then the connection is closed.
fn refused_handshakes(io: IoMode) {
    let server = start(io);
    let good = Keys::new(AK, SK);
    let cases = [
        (Keys::new(AK, "654321"), INTEROP_OBJ, now(), "AUTH_ERROR"),
        (Keys::new("intruder", SK), INTEROP_OBJ, now(), "AUTH_WRONG_AK"),
        (good.clone(), "TarsTest.InteropServer.OtherObj", now(), "AUTH_WRONG_OBJ"),
        (good.clone(), INTEROP_OBJ, now() - 2 * 3600, "AUTH_WRONG_TIME"),
        (good.clone(), INTEROP_OBJ, now() + 2 * 3600, "AUTH_WRONG_TIME"),
    ];
    for (keys, obj, time, state) in cases {
        let mut c = connect(&server);
        assert_eq!(handshake(&mut c, &keys, obj, time).as_deref(), Some(state));
        assert!(c.closed_within(Duration::from_secs(3)), "{state}: closed after the answer");
    }
    // Within the window either way is fine.
    for skew in [-3500, 3500] {
        let mut c = connect(&server);
        assert_eq!(handshake(&mut c, &good, INTEROP_OBJ, now() + skew).as_deref(), Some("AUTH_SUCC"), "{skew}");
        assert_eq!(c.echo_string(INTEROP_OBJ, "in").unwrap().ret, ret::SUCCESS);
    }
    assert_eq!(fired(&server).0, 0);
    stop(server);
}

/// Requests sent right behind a good handshake, in the same write, are served after it.
fn pipelined_behind_the_handshake(io: IoMode) {
    let server = start(io);
    let mut c = connect(&server);
    let mut bytes = request_frame(INTEROP_OBJ, &Keys::new(AK, SK), now()).to_vec();
    c.request(INTEROP_OBJ, "unused", version::TARS, Bytes::new()); // id 1 is the handshake's
    let fire = fire_request(&mut c, "pipelined");
    bytes.extend(frame_bytes(&fire));
    c.send_bytes(&bytes).unwrap();
    let answer = c.read_reply().unwrap().unwrap();
    assert_eq!(&answer.body[..], b"AUTH_SUCC");
    let reply = c.read_reply().unwrap().unwrap();
    assert_eq!((reply.request_id, reply.ret), (fire.i_request_id, ret::SUCCESS));
    assert_eq!(fired(&server), (1, "pipelined".to_owned()));
    stop(server);
}

/// A client that skips the handshake: its first request is taken for one, refused
/// (`AUTH_PROTO_ERR`) and not run; a ping is not answered as one; silence is cut at `-t`.
fn skipping_the_handshake(io: IoMode) {
    let server = start(io);
    let mut c = connect(&server);
    let fire = fire_request(&mut c, "sneaky");
    let reply = c.call(&fire).unwrap();
    assert_eq!((reply.request_id, reply.ret, &reply.body[..]), (fire.i_request_id, 0, &b"AUTH_PROTO_ERR"[..]));
    assert!(c.closed_within(Duration::from_secs(3)));

    let mut c = connect(&server);
    let ping = c.request(INTEROP_OBJ, PING_FUNC, version::TARS, Bytes::new());
    assert_eq!(&c.call(&ping).unwrap().body[..], b"AUTH_PROTO_ERR");
    assert!(c.closed_within(Duration::from_secs(3)));

    let mut c = connect(&server);
    assert_eq!(c.echo_string(INTEROP_OBJ, "hello").unwrap().body.as_ref(), b"AUTH_PROTO_ERR");

    let mut silent = connect(&server);
    assert!(silent.closed_within(Duration::from_secs(6)), "no handshake within -t: closed");

    assert_eq!(fired(&server), (0, String::new()), "nothing was dispatched");
    stop(server);
}

/// Bytes that are no frame, and a frame above the handshake limit, close without an answer.
fn bad_handshake_frames(io: IoMode) {
    let server = start(io);
    let mut c = connect(&server);
    c.send_bytes(&[0, 0, 0, 7, 0xff, 0xff, 0xff]).unwrap();
    assert!(c.read_reply().unwrap().is_none(), "not a packet: no request id to answer");

    let mut c = connect(&server);
    let too_big = u32::try_from(MAX_HANDSHAKE_FRAME + 1).unwrap();
    c.send_bytes(&too_big.to_be_bytes()).unwrap();
    assert!(c.closed_within(Duration::from_secs(3)), "refused before the body arrives");
    stop(server);
}

// ---------------------------------------------------------------- locator

const QUERY: &str = "tars.tarsregistry.QueryObj";

/// `findObjectById4Any`, always answering `ep`.
struct Locator(Endpoint);

impl Dispatch for Locator {
    fn dispatch(self: Rc<Self>, current: Current, body: Bytes) -> DispatchFuture {
        let result = self.call(&current, &body);
        Box::pin(async move { (current, result) })
    }
}

impl Locator {
    fn call(&self, current: &Current, body: &Bytes) -> Result<Bytes, ServantError> {
        if current.func != FIND_ANY {
            return Err(ServantError::no_func(&current.func));
        }
        let _id: String = Reader::from_bytes(body).read_required(1).map_err(|e| ServantError::decode(&e))?;
        let mut w = ParamWriter::new(current.version);
        w.write_ret(&0i32);
        w.write(2, "activeEp", &vec![from_endpoint(&self.0)]);
        w.write(3, "inactiveEp", &Vec::<EndpointF>::new());
        Ok(w.finish())
    }
}

fn locator(io: IoMode, ep: Endpoint) -> ServerHandle {
    let text = format!(
        "<tars>\n<application>\n<server>\napp=tars\nserver=tarsregistry\n<{QUERY}Adapter>\n\
         endpoint=tcp -h 127.0.0.1 -p 0 -t 60000\nservant={QUERY}\n</{QUERY}Adapter>\n</server>\n</application>\n</tars>\n"
    );
    ServerBuilder::from_config(&Config::parse(&text).unwrap())
        .unwrap()
        .servant(QUERY, move |_| Locator(ep.clone()))
        .io(io)
        .shards(1)
        .start()
        .unwrap()
}

on_every_driver! {
    right_keys_serve => right_keys;
    refused_clients_fail_their_calls => refused_clients;
    locator_endpoints_authenticate => through_the_locator;
    refusals_answer_the_state_and_close => refused_handshakes;
    requests_behind_the_handshake_are_served => pipelined_behind_the_handshake;
    unauthenticated_requests_are_not_served => skipping_the_handshake;
    bad_handshake_frames_close => bad_handshake_frames;
}
