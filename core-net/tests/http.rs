//! The small HTTP/1.1 server (`tars_core_net::http`) over real sockets: routing, keep-alive
//! and its limit, bad and oversized requests, slow senders, idle connections, the connection
//! limit (503), panicking handlers, stop.

#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tars_core_net::http::{self, Handler, HttpServer, Limits, Response, Route};

const NAME: &str = "test-http";

fn routes() -> Vec<Route> {
    let hello: Handler = Arc::new(|| Response::text(200, "hello\n"));
    let metrics: Handler = Arc::new(|| Response::prometheus("# TYPE up gauge\nup 1\n"));
    // Answers the name of the thread it runs on.
    let thread: Handler = Arc::new(|| Response::text(200, std::thread::current().name().unwrap_or("?").to_owned()));
    let panics: Handler = Arc::new(|| panic!("handler failure (expected by the test)"));
    vec![("/hello", hello), ("/metrics", metrics), ("/thread", thread), ("/panic", panics)]
}

fn server(limits: Limits) -> HttpServer {
    http::serve_with("127.0.0.1:0", NAME, routes(), limits).unwrap()
}

/// A parsed response: status, head (status line and headers), body.
#[derive(Debug)]
struct Reply {
    status: u16,
    head: String,
    body: String,
}

/// Splits everything a connection received into responses (by `Content-Length`).
fn replies(mut bytes: &[u8]) -> Vec<Reply> {
    let mut out = Vec::new();
    while let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
        let head = String::from_utf8_lossy(&bytes[..end]).into_owned();
        let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let rest = &bytes[end + 4..];
        let len = len.min(rest.len());
        out.push(Reply { status, head, body: String::from_utf8_lossy(&rest[..len]).into_owned() });
        bytes = &rest[len..];
    }
    out
}

/// Sends `request` and reads until the server closes.
fn exchange(addr: SocketAddr, request: &[u8]) -> Vec<Reply> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(request); // the server may close before reading it all
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    replies(&out)
}

/// One request on its own connection; the single response.
fn one(addr: SocketAddr, request: &[u8]) -> Reply {
    let mut all = exchange(addr, request);
    assert_eq!(all.len(), 1, "{all:?}");
    all.remove(0)
}

fn wait_for(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

#[test]
fn routes_answer_on_connection_threads() {
    let srv = server(Limits::default());
    let addr = srv.addr();

    let r = one(addr, b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_eq!((r.status, r.body.as_str()), (200, "hello\n"));
    assert!(r.head.starts_with("HTTP/1.1 200 OK\r\n"), "{}", r.head);
    assert!(r.head.contains("\r\nContent-Type: text/plain; charset=utf-8\r\n"), "{}", r.head);
    assert!(r.head.contains("\r\nConnection: close"), "{}", r.head);

    let r = one(addr, b"GET /metrics?name[]=up HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert_eq!((r.status, r.body.as_str()), (200, "# TYPE up gauge\nup 1\n"));
    assert!(r.head.contains("\r\nContent-Type: text/plain; version=0.0.4\r\n"), "{}", r.head);

    // Handlers never run on the accept thread (nor on an IO shard): on the connection's own.
    let r = one(addr, b"GET /thread HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert_eq!(r.body, format!("{NAME}-conn"));

    // Bare LF line ends are accepted; HTTP/1.0 closes unless asked to keep alive.
    assert_eq!(one(addr, b"GET /hello HTTP/1.0\n\n").status, 200);
    srv.stop();
}

#[test]
fn keep_alive_and_its_limit() {
    let srv = server(Limits { max_requests_per_connection: 3, ..Limits::default() });
    let addr = srv.addr();

    // Pipelined: both answered on one connection, in order; the last asks to close.
    let all = exchange(addr, b"GET /hello?x=1 HTTP/1.1\r\n\r\nGET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert_eq!(all.iter().map(|r| r.status).collect::<Vec<_>>(), [200, 200], "{all:?}");
    assert!(all[0].head.contains("Connection: keep-alive") && all[1].head.contains("Connection: close"));
    assert_eq!(all[1].body, "# TYPE up gauge\nup 1\n");

    // One request after another on a kept-alive connection (not pipelined).
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    for _ in 0..2 {
        s.write_all(b"GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").unwrap();
        let mut got = Vec::new();
        let mut chunk = [0u8; 512];
        while !got.ends_with(b"hello\n") {
            let n = s.read(&mut chunk).unwrap();
            assert!(n > 0, "closed early: {:?}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&chunk[..n]);
        }
        assert!(String::from_utf8_lossy(&got).contains("Connection: keep-alive"));
    }
    drop(s);

    // At most 3 requests per connection: the third says close, the rest are not answered.
    let five = b"GET /hello HTTP/1.1\r\n\r\n".repeat(5);
    let all = exchange(addr, &five);
    assert_eq!(all.len(), 3, "{all:?}");
    assert!(all[..2].iter().all(|r| r.head.contains("Connection: keep-alive")), "{all:?}");
    assert!(all[2].head.contains("Connection: close"), "{all:?}");

    // A body is read (and ignored by a GET route); the connection goes on after it.
    let all = exchange(
        addr,
        b"GET /hello HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET /hello HTTP/1.1\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(all.iter().map(|r| r.status).collect::<Vec<_>>(), [200, 200], "{all:?}");
    assert!(all[0].head.contains("Connection: keep-alive"));
}

/// A router with a `POST` prefix route that echoes what it was given.
fn post_server(limits: Limits) -> HttpServer {
    let echo: http::BodyHandler = Arc::new(|req: &http::HttpRequest<'_>| {
        let mut out =
            format!("{} rest={} query={} ct={:?} body=", req.method, req.rest, req.query, req.header("content-type"))
                .into_bytes();
        out.extend_from_slice(req.body);
        Response::text(200, out)
    });
    let router =
        http::Router::new().post_prefix("/json/", echo).get("/hello", Arc::new(|| Response::text(200, "hello\n")));
    http::serve_router("127.0.0.1:0", NAME, router, limits).unwrap()
}

#[test]
fn post_bodies_reach_prefix_routes_and_keep_the_connection() {
    let srv = post_server(Limits { max_body: 16, ..Limits::default() });
    let addr = srv.addr();
    // Pipelined: a body, another body, a GET; all answered in order on one connection.
    let all = exchange(
        addr,
        b"POST /json/A.B.C/add?x=1 HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n{\"a\":1}\
          POST /json/D.E.F/g HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}GET /hello HTTP/1.1\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(all.iter().map(|r| r.status).collect::<Vec<_>>(), [200, 200, 200], "{all:?}");
    assert_eq!(all[0].body, "POST rest=A.B.C/add query=x=1 ct=Some(\"application/json\") body={\"a\":1}");
    assert_eq!(all[1].body, "POST rest=D.E.F/g query= ct=None body={}");
    assert!(all[0].head.contains("Connection: keep-alive") && all[1].head.contains("Connection: keep-alive"));
    assert_eq!(all[2].body, "hello\n");

    // A body split over several writes, with pauses.
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    for part in [&b"POST /json/X.Y.Z/f HTTP/1.1\r\nConnection: close\r\nContent-Le"[..], b"ngth: 4\r\n\r\n{\"", b"\"}"]
    {
        s.write_all(part).unwrap();
        std::thread::sleep(Duration::from_millis(30));
    }
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let got = replies(&out);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].body.ends_with("body={\"\"}"), "{got:?}");

    // Too large (413, before the body is sent in full), no length for chunked (411), GET on
    // a POST route (405 naming POST), POST on a GET route (405 naming GET).
    let mut big = b"POST /json/A.B.C/f HTTP/1.1\r\nContent-Length: 17\r\n\r\n".to_vec();
    big.extend_from_slice(&[b'x'; 17]);
    assert_eq!(one(addr, &big).status, 413);
    let r = one(addr, b"POST /json/A.B.C/f HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n");
    assert_eq!(r.status, 411);
    let r = one(addr, b"GET /json/A.B.C/f HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert_eq!(r.status, 405);
    assert!(r.head.contains("\r\nAllow: POST\r\n"), "{}", r.head);
    let r = one(addr, b"POST /hello HTTP/1.1\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}");
    assert_eq!(r.status, 405);
    assert!(r.head.contains("\r\nAllow: GET\r\n"), "{}", r.head);
    assert_eq!(one(addr, b"POST /jsonx HTTP/1.1\r\nConnection: close\r\n\r\n").status, 404);
    // A body that never arrives in full is cut at the deadline, not waited for forever.
    srv.stop();
    let srv = post_server(Limits {
        io_timeout: Duration::from_millis(300),
        request_deadline: Duration::from_millis(500),
        ..Limits::default()
    });
    let started = Instant::now();
    let got = exchange(srv.addr(), b"POST /json/A.B.C/f HTTP/1.1\r\nContent-Length: 10\r\n\r\n{}");
    assert!(got.is_empty(), "{got:?}");
    assert!(started.elapsed() < Duration::from_secs(4), "{:?}", started.elapsed());
}

#[test]
fn bad_requests() {
    let srv = server(Limits::default());
    let addr = srv.addr();

    let r = one(addr, b"GET /nowhere HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert_eq!(r.status, 404);
    let r = one(addr, b"POST /hello HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}");
    assert_eq!(r.status, 405);
    assert!(r.head.contains("\r\nAllow: GET"), "{}", r.head);
    assert_eq!(one(addr, b"HEAD /hello HTTP/1.0\r\n\r\n").status, 405);
    assert_eq!(one(addr, b"\x16\x03\x01\x02\x00garbage\r\n\r\n").status, 400);
    assert_eq!(one(addr, b"GET /hello SPDY/3\r\n\r\n").status, 400);
    assert_eq!(one(addr, b"GET http://x/hello HTTP/1.1\r\n\r\n").status, 400);
    assert_eq!(one(addr, b"GET /hello HTTP/1.1\r\nno colon here\r\n\r\n").status, 400);

    // A head over the limit: 431, whether it ends or not, and the answer is not lost to a
    // reset even though the server never reads the rest.
    for ends in [true, false] {
        let mut long = b"GET /hello HTTP/1.1\r\nX-Pad: ".to_vec();
        long.extend(std::iter::repeat_n(b'a', 64 * 1024));
        if ends {
            long.extend_from_slice(b"\r\n\r\n");
        }
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let _ = s.write_all(&long);
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        let all = replies(&out);
        assert_eq!(all.iter().map(|r| r.status).collect::<Vec<_>>(), [431], "{all:?}");
    }
    // Exactly at the limit is fine.
    let mut head = b"GET /hello HTTP/1.1\r\nConnection: close\r\nX-Pad: ".to_vec();
    head.resize(http::MAX_REQUEST_HEAD - 4, b'a');
    head.extend_from_slice(b"\r\n\r\n");
    assert_eq!(one(addr, &head).status, 200);

    // A handler that panics is a 500; the server goes on.
    assert_eq!(one(addr, b"GET /panic HTTP/1.0\r\n\r\n").status, 500);

    // A peer that connects and closes, and one that sends half a head and closes.
    drop(TcpStream::connect(addr).unwrap());
    let mut half = TcpStream::connect(addr).unwrap();
    half.write_all(b"GET /hello HT").unwrap();
    drop(half);
    assert_eq!(one(addr, b"GET /hello HTTP/1.0\r\n\r\n").status, 200);
}

#[test]
fn slow_senders_and_idle_connections_are_cut() {
    let limits = Limits {
        io_timeout: Duration::from_millis(400),
        request_deadline: Duration::from_millis(600),
        ..Limits::default()
    };
    let srv = server(limits);
    let addr = srv.addr();

    // One byte every 50 ms never completes a head within the deadline, though no single read
    // times out: the connection is closed without an answer.
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    let started = Instant::now();
    let mut closed = false;
    for &b in b"GET /hello HTTP/1.1\r\nX-Slow: ".iter().chain([b'a'; 200].iter()) {
        if s.write_all(&[b]).is_err() {
            closed = true;
            break;
        }
        let mut buf = [0u8; 64];
        match s.read(&mut buf) {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(n) => panic!("unexpected answer: {:?}", String::from_utf8_lossy(&buf[..n])),
            Err(_) => {}
        }
        std::thread::sleep(Duration::from_millis(30));
    }
    let took = started.elapsed();
    assert!(closed, "a slow sender must be cut");
    assert!(took >= Duration::from_millis(550), "cut before the deadline: {took:?}");
    assert!(took < Duration::from_secs(4), "cut too late: {took:?}");

    // An idle connection (no byte at all, or idle after a kept-alive request) is closed after
    // the IO timeout.
    for first in [&b""[..], b"GET /hello HTTP/1.1\r\n\r\n"] {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(first).unwrap();
        let started = Instant::now();
        let mut out = Vec::new();
        s.read_to_end(&mut out).unwrap();
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(350) && took < Duration::from_secs(4), "{took:?}");
        assert_eq!(replies(&out).len(), usize::from(!first.is_empty()));
    }
}

#[test]
fn connections_beyond_the_limit_get_503() {
    let srv = server(Limits { max_connections: 4, ..Limits::default() });
    let addr = srv.addr();
    let request = b"GET /hello HTTP/1.1\r\nConnection: close\r\n\r\n";

    let idle: Vec<TcpStream> = (0..4).map(|_| TcpStream::connect(addr).unwrap()).collect();
    let turned_away =
        wait_for(Duration::from_secs(5), || exchange(addr, request).first().map(|r| r.status) == Some(503));
    assert!(turned_away, "connection 5 must get 503");
    drop(idle);
    let served = wait_for(Duration::from_secs(5), || exchange(addr, request).first().map(|r| r.status) == Some(200));
    assert!(served, "served again after the idle connections closed");

    // The default limit is the documented constant.
    assert_eq!(Limits::default().max_connections, http::MAX_CONNECTIONS);
}

#[test]
fn stop_and_drop_close_the_listener() {
    let srv = http::serve("127.0.0.1:0", NAME, routes()).unwrap();
    let addr = srv.addr();
    assert_eq!(one(addr, b"GET /hello HTTP/1.0\r\n\r\n").status, 200);
    srv.stop();
    assert!(TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err(), "stopped");

    // Dropped: the same. A kept-alive connection in flight gets its answer, then is closed.
    let calls = Arc::new(AtomicUsize::new(0));
    let counted: Handler = {
        let calls = calls.clone();
        Arc::new(move || {
            calls.fetch_add(1, Ordering::SeqCst);
            Response::json("{}")
        })
    };
    let srv = http::serve("127.0.0.1:0", NAME, vec![("/c", counted)]).unwrap();
    let addr = srv.addr();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /c HTTP/1.1\r\n\r\n").unwrap();
    assert!(wait_for(Duration::from_secs(5), || calls.load(Ordering::SeqCst) == 1));
    drop(srv);
    assert!(TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err(), "dropped");
    s.write_all(b"GET /c HTTP/1.1\r\n\r\n").unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let all = replies(&out);
    assert_eq!(all.len(), 2, "{all:?}");
    assert!(all[0].head.contains("Content-Type: application/json") && all[0].body == "{}");
    assert!(all[1].head.contains("Connection: close"), "{all:?}");
}
