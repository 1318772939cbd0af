#![allow(clippy::unwrap_used)]
//! The client against our own server, on every IO driver: pipelining, timeouts, oneway,
//! balancing, hash routing, failover, reconnect, the locator, and the blocking client.

use std::future::Future;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tars_core_net::client::config::{ClientConfig, SetDivision};
use tars_core_net::client::locator::{from_endpoint, EndpointF, FIND_ANY, FIND_IN_SAME_SET};
use tars_core_net::client::{BlockingClient, Communicator, ObjectProxy};
use tars_core_net::rt::net::TcpListener;
use tars_core_net::rt::{self, IoMode};
use tars_core_net::server::adapter::ServerConfig;
use tars_core_net::server::{Dispatch, DispatchFuture, ServerBuilder, ServerHandle};
use tars_proto::config::Config;
use tars_proto::endpoint::{Endpoint, ObjectRef};
use tars_proto::frame::FrameDecoder;
use tars_proto::packet::status_key;
use tars_proto::packet::{packet_type, ret, RequestPacket};
use tars_proto::rpc::{self, CallError, CallOptions, Current, ParamReader, ParamWriter, Reply, ServantError};
use tars_proto::{Bytes, BytesMut, Reader, Writer};

const ECHO: &str = "T.S.EchoObj";
const QUERY: &str = "tars.tarsregistry.QueryObj";

// ---------------------------------------------------------------- servants

/// `echo(string s) -> string`, `sleep(int ms) -> int`, `whoami() -> string`, oneway
/// `bump()`, `bumps() -> long`, and `fail()`, which always fails.
struct Echo {
    name: String,
    bumps: Arc<AtomicU64>,
}

impl Dispatch for Echo {
    fn dispatch(self: Rc<Self>, current: Current, body: Bytes) -> DispatchFuture {
        Box::pin(async move {
            let result = self.call(&current, &body).await;
            (current, result)
        })
    }
}

impl Echo {
    async fn call(&self, current: &Current, body: &Bytes) -> Result<Bytes, ServantError> {
        let mut p = ParamReader::new(current.version, body).map_err(|e| ServantError::decode(&e))?;
        let mut w = ParamWriter::new(current.version);
        match current.func.as_str() {
            "echo" => {
                let s: String = p.read(1, "s").map_err(|e| ServantError::decode(&e))?;
                w.write_ret(&s);
            }
            "sleep" => {
                let ms: i32 = p.read(1, "ms").map_err(|e| ServantError::decode(&e))?;
                rt::sleep(Duration::from_millis(u64::try_from(ms).unwrap_or(0))).await;
                w.write_ret(&ms);
            }
            "whoami" => w.write_ret(&self.name),
            "bump" => {
                self.bumps.fetch_add(1, Ordering::SeqCst);
            }
            "bumps" => w.write_ret(&i64::try_from(self.bumps.load(Ordering::SeqCst)).unwrap()),
            "fail" => return Err(ServantError::unknown("asked to fail")),
            other => return Err(ServantError::no_func(other)),
        }
        Ok(w.finish())
    }
}

/// What the test locator answers.
#[derive(Debug, Clone)]
enum Answer {
    Endpoints(Vec<Endpoint>),
    Empty,
    Fail,
}

#[derive(Debug)]
struct LocatorState {
    answer: Answer,
    queries: usize,
    last: Option<(String, String, Option<String>)>,
}

type SharedLocator = Arc<Mutex<LocatorState>>;

/// `QueryF.findObjectById4Any` / `findObjectByIdInSameSet`, answering from `state`.
struct Locator(SharedLocator);

impl Dispatch for Locator {
    fn dispatch(self: Rc<Self>, current: Current, body: Bytes) -> DispatchFuture {
        let result = self.call(&current, &body);
        Box::pin(async move { (current, result) })
    }
}

impl Locator {
    fn call(&self, current: &Current, body: &Bytes) -> Result<Bytes, ServantError> {
        let set = match current.func.as_str() {
            FIND_ANY => false,
            FIND_IN_SAME_SET => true,
            other => return Err(ServantError::no_func(other)),
        };
        let mut r = Reader::from_bytes(body);
        let id: String = r.read_required(1).map_err(|e| ServantError::decode(&e))?;
        let set_id: Option<String> =
            if set { Some(r.read_required(2).map_err(|e| ServantError::decode(&e))?) } else { None };
        let mut s = self.0.lock().unwrap();
        s.queries += 1;
        s.last = Some((current.func.clone(), id, set_id));
        let active = match &s.answer {
            Answer::Fail => return Err(ServantError::unknown("registry unavailable")),
            Answer::Empty => Vec::new(),
            Answer::Endpoints(list) => list.iter().map(from_endpoint).collect(),
        };
        // The out parameters follow the inputs: tags 2 and 3, or 3 and 4 after the set id.
        let first = if set { 3 } else { 2 };
        let mut w = ParamWriter::new(current.version);
        w.write_ret(&0i32);
        w.write(first, "activeEp", &active);
        w.write(first + 1, "inactiveEp", &Vec::<EndpointF>::new());
        Ok(w.finish())
    }
}

// ---------------------------------------------------------------- helpers

fn config_text(app: &str, server: &str, servant: &str, port: u16) -> String {
    format!(
        "<tars>\n<application>\n<server>\napp={app}\nserver={server}\n<{servant}Adapter>\n\
         endpoint=tcp -h 127.0.0.1 -p {port} -t 60000\nservant={servant}\n</{servant}Adapter>\n\
         </server>\n</application>\n</tars>\n"
    )
}

fn builder(app: &str, server: &str, servant: &str, port: u16) -> ServerBuilder {
    let config = Config::parse(&config_text(app, server, servant, port)).unwrap();
    ServerBuilder::new(ServerConfig::from_config(&config).unwrap())
}

/// An echo server named `name` on `port` (0: any free port); returns it and its port.
fn echo_server(mode: IoMode, name: &str, port: u16) -> (ServerHandle, u16) {
    echo_server_counting(mode, name, port, Arc::default())
}

fn echo_server_counting(mode: IoMode, name: &str, port: u16, bumps: Arc<AtomicU64>) -> (ServerHandle, u16) {
    let name = name.to_owned();
    let handle = builder("T", "S", ECHO, port)
        .servant(ECHO, move |_| Echo { name: name.clone(), bumps: bumps.clone() })
        .shards(1)
        .io(mode)
        .start()
        .unwrap();
    let port = handle.addr(&format!("{ECHO}Adapter")).unwrap().port();
    (handle, port)
}

fn locator_server(mode: IoMode, state: SharedLocator) -> (ServerHandle, u16) {
    let handle = builder("tars", "tarsregistry", QUERY, 0)
        .servant(QUERY, move |_| Locator(state.clone()))
        .shards(1)
        .io(mode)
        .start()
        .unwrap();
    let port = handle.addr(&format!("{QUERY}Adapter")).unwrap().port();
    (handle, port)
}

fn stop(handle: ServerHandle) {
    handle.shutdown();
    handle.wait().unwrap();
}

fn ep(port: u16) -> Endpoint {
    Endpoint::parse(&format!("tcp -h 127.0.0.1 -p {port}")).unwrap()
}

fn direct(ports: &[u16]) -> String {
    let eps: Vec<String> = ports.iter().map(|p| ep(*p).to_string()).collect();
    format!("{ECHO}@{}", eps.join(":"))
}

/// Runs `f` with a fresh communicator on a client executor of driver `mode`.
fn with_client<F, Fut, T>(mode: IoMode, config: ClientConfig, f: F) -> T
where
    F: FnOnce(Rc<Communicator>) -> Fut + 'static,
    Fut: Future<Output = T> + 'static,
    T: 'static,
{
    rt::block_on(mode.resolve(), async move { f(Communicator::new(config)).await }).unwrap()
}

async fn call(p: &ObjectProxy, func: &str, body: Bytes) -> Result<Reply, CallError> {
    rpc::call(p, ECHO, func, body, &CallOptions::default(), false).await
}

fn string_arg(s: &str) -> Bytes {
    let mut w = Writer::new();
    w.write_str(1, s);
    w.freeze()
}

fn int_arg(v: i32) -> Bytes {
    let mut w = Writer::new();
    w.write_int(1, i64::from(v));
    w.freeze()
}

fn ret_string(r: &Reply) -> String {
    r.params().unwrap().read_ret().unwrap()
}

async fn echo(p: &ObjectProxy, s: &str) -> Result<String, CallError> {
    call(p, "echo", string_arg(s)).await.map(|r| ret_string(&r))
}

async fn whoami(p: &ObjectProxy) -> Result<String, CallError> {
    call(p, "whoami", Bytes::new()).await.map(|r| ret_string(&r))
}

async fn bumps(p: &ObjectProxy) -> i64 {
    call(p, "bumps", Bytes::new()).await.unwrap().params().unwrap().read_ret().unwrap()
}

fn request(func: &str, body: Bytes) -> RequestPacket {
    RequestPacket {
        i_version: 1,
        s_servant_name: ECHO.into(),
        s_func_name: func.into(),
        s_buffer: body,
        ..RequestPacket::default()
    }
}

// ---------------------------------------------------------------- tests

/// 1000 calls in flight on one connection, a tenth of them slow and finishing in reverse
/// order, all answered correctly.
fn pipelined(mode: IoMode) {
    let (server, port) = echo_server(mode, "A", 0);
    let server = with_client(mode, ClientConfig::default(), move |comm| async move {
        let p = comm.proxy(&direct(&[port])).unwrap();
        let tasks: Vec<_> = (0..1000)
            .map(|i| {
                let p = p.clone();
                rt::spawn(async move {
                    if i % 10 == 0 {
                        let ms = 100 - i / 10;
                        let r = call(&p, "sleep", int_arg(ms)).await.unwrap();
                        assert_eq!(r.params().unwrap().read_ret::<i32>().unwrap(), ms);
                    } else {
                        let msg = format!("message {i}");
                        assert_eq!(echo(&p, &msg).await.unwrap(), msg);
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await;
        }
        assert_eq!(comm.connection_count(), 1, "all calls share one connection");
        assert_eq!(server.connection_count(), 1);
        server
    });
    stop(server);
}

/// A call past its deadline fails with Timeout; the connection carries on, and the late
/// reply is dropped.
fn timeouts(mode: IoMode) {
    let (server, port) = echo_server(mode, "A", 0);
    with_client(mode, ClientConfig::default(), move |comm| async move {
        let p = comm.proxy(&direct(&[port])).unwrap();
        assert_eq!(echo(&p, "warm").await.unwrap(), "warm");

        let t0 = Instant::now();
        let slow = call(&p.with_timeout(Duration::from_millis(100)), "sleep", int_arg(500)).await;
        let took = t0.elapsed();
        assert_eq!(slow.unwrap_err(), CallError::Timeout);
        assert!(took >= Duration::from_millis(100) && took < Duration::from_millis(400), "{took:?}");

        // The request's own iTimeout counts when the proxy sets none.
        let mut req = request("sleep", int_arg(500));
        req.i_timeout = 100;
        let t0 = Instant::now();
        assert_eq!(rpc::Transport::invoke(&p, req).await.unwrap_err(), CallError::Timeout);
        assert!(t0.elapsed() < Duration::from_millis(400));

        assert_eq!(echo(&p, "still works").await.unwrap(), "still works");
        // Let the two late replies arrive: they must not disturb the next calls.
        rt::sleep(Duration::from_millis(450)).await;
        for i in 0..5 {
            assert_eq!(echo(&p, &i.to_string()).await.unwrap(), i.to_string());
        }
        assert_eq!(comm.connection_count(), 1);
    });
    stop(server);
}

/// Oneway calls resolve at once with an empty reply, and reach the server in order.
fn oneway(mode: IoMode) {
    let counter = Arc::new(AtomicU64::new(0));
    let (server, port) = echo_server_counting(mode, "A", 0, counter.clone());
    with_client(mode, ClientConfig::default(), move |comm| async move {
        let p = comm.proxy(&direct(&[port])).unwrap();
        for _ in 0..10 {
            let r = rpc::call(&p, ECHO, "bump", Bytes::new(), &CallOptions::default(), true).await.unwrap();
            assert_eq!((r.ret, r.body.len()), (0, 0));
        }
        assert_eq!(bumps(&p).await, 10);
    });
    assert_eq!(counter.load(Ordering::SeqCst), 10);
    stop(server);
}

/// Server errors come back as `CallError::Server` with the servant's code.
fn server_errors(mode: IoMode) {
    let (server, port) = echo_server(mode, "A", 0);
    with_client(mode, ClientConfig::default(), move |comm| async move {
        let p = comm.proxy(&direct(&[port])).unwrap();
        match call(&p, "fail", Bytes::new()).await.unwrap_err() {
            CallError::Server { code, desc } => assert_eq!((code, desc.as_str()), (ret::UNKNOWN, "asked to fail")),
            other => panic!("unexpected {other:?}"),
        }
        let e = call(&p, "nope", Bytes::new()).await.unwrap_err();
        assert_eq!(e.code(), ret::NO_FUNC);
        assert_eq!(echo(&p, "ok").await.unwrap(), "ok");
    });
    stop(server);
}

/// Requests beyond the unsent-bytes bound fail with `CallError::Send` instead of queueing.
fn unsent_bound(mode: IoMode) {
    let counter = Arc::new(AtomicU64::new(0));
    let (server, port) = echo_server_counting(mode, "A", 0, counter.clone());
    let sent = with_client(mode, ClientConfig::default(), move |comm| async move {
        let p = comm.proxy(&direct(&[port])).unwrap();
        let big = Bytes::from(vec![7u8; 1 << 20]);
        let mut ok = 0;
        let mut refused = 0;
        // All in one turn: nothing is written meanwhile.
        for _ in 0..20 {
            let mut req = request("bump", big.clone());
            req.c_packet_type = packet_type::ONEWAY;
            match rpc::Transport::invoke(&p, req).await {
                Ok(_) => ok += 1,
                Err(CallError::Send(_)) => refused += 1,
                Err(e) => panic!("unexpected {e:?}"),
            }
        }
        assert!((15..=16).contains(&ok), "{ok} requests of 1 MiB fit in 16 MiB");
        assert_eq!(ok + refused, 20);
        // The queue drains and the connection works.
        assert_eq!(bumps(&p.with_timeout(Duration::from_secs(5))).await, ok);
        ok
    });
    assert_eq!(counter.load(Ordering::SeqCst), u64::try_from(sent).unwrap());
    stop(server);
}

/// Plain calls alternate between the endpoints.
fn round_robin(mode: IoMode) {
    let (a, pa) = echo_server(mode, "A", 0);
    let (b, pb) = echo_server(mode, "B", 0);
    with_client(mode, ClientConfig::default(), move |comm| async move {
        let p = comm.proxy(&direct(&[pa, pb])).unwrap();
        let mut seen = Vec::new();
        for _ in 0..10 {
            seen.push(whoami(&p).await.unwrap());
        }
        assert_eq!(seen.iter().filter(|s| *s == "A").count(), 5, "{seen:?}");
        assert!(seen.windows(2).all(|w| w[0] != w[1]), "alternates: {seen:?}");
        assert_eq!(comm.connection_count(), 2);
    });
    stop(a);
    stop(b);
}

/// A hash code always reaches the same endpoint, codes spread over both, and `Obj#N` routes
/// as hash N.
fn hash_routing(mode: IoMode) {
    let (a, pa) = echo_server(mode, "A", 0);
    let (b, pb) = echo_server(mode, "B", 0);
    with_client(mode, ClientConfig::default(), move |comm| async move {
        let p = comm.proxy(&direct(&[pa, pb])).unwrap();
        let mut owners = Vec::new();
        for code in 0..8u64 {
            let h = p.with_hash(code);
            let first = whoami(&h).await.unwrap();
            for _ in 0..4 {
                assert_eq!(whoami(&h).await.unwrap(), first, "code {code}");
            }
            owners.push(first);
        }
        assert!(owners.contains(&"A".to_owned()) && owners.contains(&"B".to_owned()), "{owners:?}");
        let suffixed = comm.proxy(&direct(&[pa, pb]).replacen('@', "#3@", 1)).unwrap();
        assert_eq!(suffixed.hash(), Some(3));
        for _ in 0..4 {
            assert_eq!(whoami(&suffixed).await.unwrap(), owners[3]);
        }
    });
    stop(a);
    stop(b);
}

/// With one server stopped, every call goes to the other.
fn failover(mode: IoMode) {
    let (a, pa) = echo_server(mode, "A", 0);
    let (b, pb) = echo_server(mode, "B", 0);
    let b = with_client(mode, ClientConfig::default(), move |comm| async move {
        let p = comm.proxy(&direct(&[pa, pb])).unwrap();
        for _ in 0..4 {
            whoami(&p).await.unwrap();
        }
        assert_eq!(comm.connection_count(), 2);
        stop(a);
        // Let the client see the close.
        rt::sleep(Duration::from_millis(50)).await;
        for i in 0..20 {
            assert_eq!(whoami(&p).await.unwrap(), "B", "call {i}");
        }
        // Hash codes owned by A move to B too.
        for code in 0..4 {
            assert_eq!(whoami(&p.with_hash(code)).await.unwrap(), "B");
        }
        b
    });
    stop(b);
}

/// A single endpoint that goes away fails calls fast with Connect; once a server listens on
/// the port again, calls succeed again.
fn reconnect(mode: IoMode) {
    let (a, port) = echo_server(mode, "A", 0);
    let again = with_client(mode, ClientConfig::default(), move |comm| async move {
        let p = comm.proxy(&direct(&[port])).unwrap();
        assert_eq!(whoami(&p).await.unwrap(), "A");
        stop(a);
        rt::sleep(Duration::from_millis(50)).await;
        let t0 = Instant::now();
        assert!(matches!(whoami(&p).await, Err(CallError::Connect(_))));
        assert!(matches!(whoami(&p).await, Err(CallError::Connect(_))), "down: fails fast");
        assert!(t0.elapsed() < Duration::from_millis(500));

        let (again, _) = echo_server(mode, "A2", port);
        let t0 = Instant::now();
        loop {
            match whoami(&p).await {
                Ok(name) => {
                    assert_eq!(name, "A2");
                    break;
                }
                Err(CallError::Connect(_)) if t0.elapsed() < Duration::from_secs(3) => {
                    rt::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("no reconnect: {e:?}"),
            }
        }
        for _ in 0..5 {
            assert_eq!(whoami(&p).await.unwrap(), "A2");
        }
        again
    });
    stop(again);
}

fn locator_config(port: u16) -> ClientConfig {
    ClientConfig {
        locator: Some(ObjectRef::parse(&format!("{QUERY}@tcp -h 127.0.0.1 -p {port}")).unwrap()),
        refresh_endpoint_interval: Duration::from_millis(100),
        ..ClientConfig::default()
    }
}

/// Indirect objects: resolved on first use, refreshed, and the last good list kept when the
/// locator fails or answers nothing.
fn locator(mode: IoMode) {
    let (a, pa) = echo_server(mode, "A", 0);
    let (b, pb) = echo_server(mode, "B", 0);
    let state = Arc::new(Mutex::new(LocatorState { answer: Answer::Endpoints(vec![ep(pa)]), queries: 0, last: None }));
    let (loc, pl) = locator_server(mode, state.clone());
    let st = state.clone();
    with_client(mode, locator_config(pl), move |comm| async move {
        let set = |answer: Answer| st.lock().unwrap().answer = answer;
        let queries = || st.lock().unwrap().queries;
        let p = comm.proxy(ECHO).unwrap();
        assert!(p.endpoints().is_empty(), "resolved on first use only");
        assert_eq!(whoami(&p).await.unwrap(), "A");
        assert_eq!(p.endpoints(), vec![ep(pa)]);
        assert_eq!(st.lock().unwrap().last, Some((FIND_ANY.to_owned(), ECHO.to_owned(), None)));

        set(Answer::Fail);
        let q = queries();
        rt::sleep(Duration::from_millis(350)).await;
        assert!(queries() >= q + 2, "refreshed every 100 ms");
        assert_eq!(whoami(&p).await.unwrap(), "A", "last good list kept");
        assert_eq!(p.endpoints(), vec![ep(pa)]);

        set(Answer::Empty);
        rt::sleep(Duration::from_millis(250)).await;
        assert_eq!(whoami(&p).await.unwrap(), "A", "empty answer ignored");

        set(Answer::Endpoints(vec![ep(pb)]));
        rt::sleep(Duration::from_millis(250)).await;
        assert_eq!(p.endpoints(), vec![ep(pb)]);
        assert_eq!(whoami(&p).await.unwrap(), "B");

        // An object whose first query fails: calls fail (no endpoint) instead of hanging, and
        // the next call asks again.
        set(Answer::Fail);
        let other = comm.proxy("T.S.EchoObj#other").unwrap();
        let t0 = Instant::now();
        assert_eq!(whoami(&other).await.unwrap_err(), CallError::NoEndpoint);
        assert!(t0.elapsed() < Duration::from_secs(1));
        set(Answer::Endpoints(vec![ep(pa)]));
        assert_eq!(whoami(&other).await.unwrap(), "A");
    });
    stop(loc);
    stop(a);
    stop(b);
}

/// With a set division, the locator is asked `findObjectByIdInSameSet` with the set id.
fn locator_in_set(mode: IoMode) {
    let (a, pa) = echo_server(mode, "A", 0);
    let state = Arc::new(Mutex::new(LocatorState { answer: Answer::Endpoints(vec![ep(pa)]), queries: 0, last: None }));
    let (loc, pl) = locator_server(mode, state.clone());
    let config = ClientConfig {
        enable_set: true,
        set_division: Some(SetDivision::parse("gz.sz.1").unwrap()),
        ..locator_config(pl)
    };
    with_client(mode, config, move |comm| async move {
        let p = comm.proxy(ECHO).unwrap();
        assert_eq!(whoami(&p).await.unwrap(), "A");
    });
    let last = state.lock().unwrap().last.clone();
    assert_eq!(last, Some((FIND_IN_SAME_SET.to_owned(), ECHO.to_owned(), Some("gz.sz.1".to_owned()))));
    stop(loc);
    stop(a);
}

/// The blocking client, called from several plain threads at once.
fn blocking(mode: IoMode) {
    let (server, port) = echo_server(mode, "A", 0);
    let client = BlockingClient::start(ClientConfig::default(), mode).unwrap();
    let obj = direct(&[port]);
    std::thread::scope(|s| {
        for t in 0..4 {
            let (client, obj) = (&client, &obj);
            s.spawn(move || {
                for i in 0..50 {
                    let msg = format!("{t}/{i}");
                    let reply = client.invoke(obj, request("echo", string_arg(&msg))).unwrap();
                    assert_eq!(ret_string(&reply), msg);
                }
            });
        }
    });
    let obj2 = obj.clone();
    let (name, conns) = client.run(move |comm| async move {
        let p = comm.proxy(&obj2).unwrap();
        (whoami(&p).await.unwrap(), comm.connection_count())
    });
    assert_eq!((name.as_str(), conns), ("A", 1));
    assert!(matches!(client.invoke("not an object@", request("echo", string_arg("x"))), Err(CallError::Send(_))));
    drop(client);
    stop(server);
}

/// Against a hand-driven server: requests queued in one turn arrive in one write, request ids
/// are never 0, and a push (id 0) and a reply for an id nobody waits for are skipped.
fn raw_peer(mode: IoMode) {
    with_client(mode, ClientConfig::default(), |comm| async move {
        let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = rt::spawn(async move {
            let mut s = listener.accept().await.unwrap();
            let mut buf = BytesMut::new();
            let mut frames = Vec::new();
            s.read_buf(&mut buf, 1 << 20).await.unwrap();
            let mut decoder = FrameDecoder::new();
            while let Some(body) = decoder.decode(&mut buf).unwrap() {
                frames.push(RequestPacket::decode_body(&body).unwrap());
            }
            assert_eq!(frames.len(), 101, "one turn's requests arrive in one write");
            assert!(frames.iter().all(|f| f.i_request_id != 0));
            let req = frames.pop().unwrap();
            assert_eq!(req.s_func_name, "anything");
            let reply = |id: i32, text: &str| {
                let mut c = Current { version: 1, request_id: id, ..Current::default() };
                c.response_status.insert(status_key::TARS_FUNC.to_owned(), "pushed".to_owned());
                let mut w = ParamWriter::new(1);
                w.write_ret(&text.to_owned());
                rpc::reply_frame(&c, Ok(w.finish())).unwrap()
            };
            let mut out = Vec::new();
            out.extend_from_slice(&reply(0, "push"));
            out.extend_from_slice(&reply(req.i_request_id.wrapping_add(7), "stray"));
            out.extend_from_slice(&reply(req.i_request_id, "real"));
            s.write_all(&out).await.unwrap();
            // Hold the connection until the client is done.
            let _ = s.read_buf(&mut buf, 1024).await;
        });
        let p = comm.proxy(&direct(&[port])).unwrap();
        for _ in 0..100 {
            rpc::call(&p, ECHO, "bump", Bytes::new(), &CallOptions::default(), true).await.unwrap();
        }
        let r = call(&p, "anything", Bytes::new()).await.unwrap();
        assert_eq!(ret_string(&r), "real");
        drop(server);
    });
}

/// A peer that accepts one connection (within 5 s), never writes, and sends the function
/// name of every request it reads to the channel; the thread ends when the client closes.
fn recording_peer() -> (u16, std::sync::mpsc::Receiver<String>, std::thread::JoinHandle<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        use std::io::Read as _;
        // Accept with a deadline: a client that never connects fails the test, not hangs it.
        listener.set_nonblocking(true).unwrap();
        let start = Instant::now();
        let mut s = loop {
            match listener.accept() {
                Ok((s, _)) => break s,
                Err(_) if start.elapsed() < Duration::from_secs(5) => std::thread::sleep(Duration::from_millis(5)),
                Err(_) => return,
            }
        };
        s.set_nonblocking(false).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let (mut buf, mut decoder) = (BytesMut::new(), FrameDecoder::new());
        let mut chunk = [0u8; 4096];
        while let Ok(n) = s.read(&mut chunk) {
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
            while let Some(body) = decoder.decode(&mut buf).unwrap() {
                let _ = tx.send(RequestPacket::decode_body(&body).unwrap().s_func_name);
            }
        }
    });
    (port, rx, reader)
}

/// Requests queued one at a time on a connection the peer never writes to (oneway calls to
/// a server that only reads) each leave at once: nothing waits for an IO event.
fn quiet_peer(mode: IoMode) {
    let (port, rx, reader) = recording_peer();
    let sent = with_client(mode, ClientConfig::default(), move |comm| async move {
        let p = comm.proxy(&direct(&[port])).unwrap();
        let mut sent = 0;
        for f in ["first", "second", "third"] {
            rpc::call(&p, ECHO, f, Bytes::new(), &CallOptions::default(), true).await.unwrap();
            sent += 1;
            rt::sleep(Duration::from_millis(100)).await;
        }
        sent
    });
    // Before the fix the second request waited for an IO event that never came, and the
    // third queued behind it: neither ever left.
    assert_eq!(sent, 3);
    for f in ["first", "second", "third"] {
        let got = rx.recv_timeout(Duration::from_secs(2)).unwrap_or_else(|_| panic!("{f} never arrived"));
        assert_eq!(got, f);
    }
    reader.join().unwrap();
}

/// `flush` right after a oneway call, on a connection that is still being opened, waits for
/// the request to be written: what a graceful stop does with its last reports.
fn flush_connecting(mode: IoMode) {
    let (port, rx, reader) = recording_peer();
    let flushed = with_client(mode, ClientConfig::default(), move |comm| async move {
        let p = comm.proxy(&direct(&[port])).unwrap();
        rpc::call(&p, ECHO, "last", Bytes::new(), &CallOptions::default(), true).await.unwrap();
        comm.flush(Duration::from_secs(3)).await
    });
    // Before the fix, flush saw no open connection, returned at once, and the communicator
    // was dropped with the request unwritten.
    assert!(flushed);
    reader.join().unwrap();
    assert_eq!(rx.try_recv().ok().as_deref(), Some("last"));
}

/// Host names in endpoints are looked up off the shard: `localhost` reaches the server, and a
/// name that does not resolve fails the call with the lookup's error instead of hanging it.
fn host_names(mode: IoMode) {
    let (server, port) = echo_server(mode, "A", 0);
    with_client(mode, ClientConfig::default(), move |comm| async move {
        let named = comm.proxy(&format!("{ECHO}@tcp -h localhost -p {port} -t 60000")).unwrap();
        assert_eq!(whoami(&named).await.unwrap(), "A");
        let nowhere = comm.proxy(&format!("{ECHO}@tcp -h no-such-host.invalid -p {port} -t 60000")).unwrap();
        let started = Instant::now();
        let e = whoami(&nowhere).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(10), "{e:?} after {:?}", started.elapsed());
        // The shard is still serving the named endpoint.
        assert_eq!(whoami(&named).await.unwrap(), "A");
    });
    stop(server);
}

tars_core_net::on_every_driver! {
    quiet_peer_gets_each_request_at_once => quiet_peer;
    host_names_are_resolved_off_the_shard => host_names;
    flush_waits_for_a_connecting_link => flush_connecting;
    raw_peer_pushes_and_coalescing => raw_peer;
    pipelined_1000 => pipelined;
    timeout => timeouts;
    oneway_calls => oneway;
    servant_errors => server_errors;
    unsent_limit => unsent_bound;
    round_robin_two_servers => round_robin;
    hash_routing_is_stable => hash_routing;
    failover_to_the_other_server => failover;
    reconnect_after_restart => reconnect;
    locator_keeps_last_good_list => locator;
    locator_with_set => locator_in_set;
    blocking_client => blocking;
}
