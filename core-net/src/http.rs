//! A deliberately small, hardened HTTP/1.1 server on plain std threads, for the few HTTP
//! endpoints the services expose next to TARS: Prometheus service discovery
//! (`/prometheus/sd` in the registry), Prometheus text metrics (`/metrics` in stat and
//! property) and the JSON gateway (`POST /json/App.Server.Obj/func` in tarsgateway).
//!
//! Those answers may need a database query or a TARS call, which must never run on an IO
//! shard; so this is not part of the runtime. One thread accepts; each connection gets its own
//! short-lived thread (at most [`Limits::max_connections`]; more are answered 503 at once), and
//! the handlers run on that connection thread, where blocking is fine.
//!
//! Requests are bounded: the head must fit in [`Limits::max_head`] bytes, a body (only
//! `Content-Length` framing) in [`Limits::max_body`] (larger: 413, before any of it is read),
//! and head and body must arrive within [`Limits::request_deadline`] of their first byte;
//! every read and write times out after [`Limits::io_timeout`] (which is also how long an idle
//! keep-alive connection lasts), and a connection serves at most
//! [`Limits::max_requests_per_connection`] requests. `Transfer-Encoding` (chunked bodies) is
//! refused with 411 Length Required: every client we serve (curl, browsers, SDKs) sends a
//! length for a buffered body, and one framing keeps request smuggling out. After a body is
//! read the connection stays usable (keep-alive, pipelining).
//!
//! Routes ([`Router`]) are `GET` on an exact path ([`Handler`], no request needed), or `POST` on
//! an exact path or a prefix ([`BodyHandler`], given the [`HttpRequest`] with its body). A path
//! without a route is 404, a method the path has no route for 405 (with `Allow`), anything
//! unparsable 400, a head too large 431, a handler that panics 500.
//!
//! The request side is sans-IO at its core: [`take_request`] cuts one request (head and body)
//! out of the bytes received ([`take_head`] just a head) and [`parse_request`] reads a head;
//! the connection threads are a shell around them.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The largest request head (request line and headers) accepted by default.
pub const MAX_REQUEST_HEAD: usize = 8 * 1024;
/// The largest request body accepted by default.
pub const MAX_REQUEST_BODY: usize = 64 * 1024;
/// Connections served at once by default; the next ones are answered 503.
pub const MAX_CONNECTIONS: usize = 32;
/// How long one read or write may wait by default, and how long an idle keep-alive connection
/// lasts.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a request (head and body) may take to arrive in full by default (against
/// byte-by-byte senders), counted from its first byte.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(10);
/// Requests served on one connection by default before it is closed.
pub const MAX_REQUESTS_PER_CONNECTION: usize = 1000;

/// `Content-Type` of plain-text answers (errors among them).
pub const TEXT_PLAIN: &str = "text/plain; charset=utf-8";
/// `Content-Type` of JSON answers.
pub const APPLICATION_JSON: &str = "application/json";
/// `Content-Type` of the Prometheus text exposition format.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4";

/// The bounds a server enforces; [`Limits::default`] is the constants above.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest request head accepted (larger: 431 and close).
    pub max_head: usize,
    /// The largest request body accepted (larger: 413 and close).
    pub max_body: usize,
    /// Connections served at once; the next ones are answered 503.
    pub max_connections: usize,
    /// How long one read or write may wait; how long an idle connection lasts.
    pub io_timeout: Duration,
    /// How long a request (head and body) may take to arrive in full, from its first byte.
    pub request_deadline: Duration,
    /// Requests served on one connection before it is closed.
    pub max_requests_per_connection: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_head: MAX_REQUEST_HEAD,
            max_body: MAX_REQUEST_BODY,
            max_connections: MAX_CONNECTIONS,
            io_timeout: IO_TIMEOUT,
            request_deadline: REQUEST_DEADLINE,
            max_requests_per_connection: MAX_REQUESTS_PER_CONNECTION,
        }
    }
}

/// A response to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The `Content-Type` header.
    pub content_type: &'static str,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// A response with any status and content type.
    pub fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Response {
        Response { status, content_type, body: body.into() }
    }

    /// A plain-text response ([`TEXT_PLAIN`]), errors included.
    pub fn text(status: u16, body: impl Into<Vec<u8>>) -> Response {
        Response::new(status, TEXT_PLAIN, body)
    }

    /// 200 with a JSON body ([`APPLICATION_JSON`]).
    pub fn json(body: impl Into<Vec<u8>>) -> Response {
        Response::new(200, APPLICATION_JSON, body)
    }

    /// 200 with a Prometheus text-format body ([`PROMETHEUS_TEXT`]).
    pub fn prometheus(body: impl Into<Vec<u8>>) -> Response {
        Response::new(200, PROMETHEUS_TEXT, body)
    }
}

/// What answers `GET` on one path. It runs on the connection's own thread, so it may block (a
/// database query); a panic is answered 500.
pub type Handler = Arc<dyn Fn() -> Response + Send + Sync>;

/// What answers a request that carries a body (`POST`), given the request. Like [`Handler`],
/// it runs on the connection's thread and may block; a panic is answered 500.
pub type BodyHandler = Arc<dyn Fn(&HttpRequest<'_>) -> Response + Send + Sync>;

/// A path (exact, without the query string, e.g. `"/metrics"`) and its `GET` handler.
pub type Route = (&'static str, Handler);

/// A request as a [`BodyHandler`] sees it.
#[derive(Debug, Clone, Copy)]
pub struct HttpRequest<'a> {
    /// The method, as sent.
    pub method: &'a str,
    /// The path, without the query string.
    pub path: &'a str,
    /// For a prefix route, the path after the prefix (e.g. `App.S.Obj/func` under `/json/`);
    /// for an exact route, empty.
    pub rest: &'a str,
    /// The query string (after `?`), empty when there is none.
    pub query: &'a str,
    /// The header lines of the head, as sent (use [`HttpRequest::header`]).
    pub head: &'a str,
    /// The body (at most [`Limits::max_body`] bytes).
    pub body: &'a [u8],
    /// The peer's address.
    pub peer: SocketAddr,
}

impl HttpRequest<'_> {
    /// The first header named `name` (case-insensitive), its value trimmed.
    pub fn header(&self, name: &str) -> Option<&str> {
        header_lines(self.head).find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v)
    }
}

/// The `name: value` lines of a head (after the request line), names and values trimmed.
fn header_lines(head: &str) -> impl Iterator<Item = (&str, &str)> {
    head.lines().skip(1).take_while(|l| !l.is_empty()).filter_map(|l| {
        let (n, v) = l.split_once(':')?;
        Some((n.trim(), v.trim()))
    })
}

/// Which paths a route answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PathMatch {
    Exact(&'static str),
    Prefix(&'static str),
}

enum Target {
    Get(Handler),
    Post(BodyHandler),
}

/// The routes of a server: `GET` on exact paths, `POST` on exact paths or prefixes. An exact
/// route wins over a prefix, a longer prefix over a shorter one.
#[derive(Default)]
pub struct Router {
    routes: Vec<(PathMatch, Target)>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.routes.iter().map(|(p, t)| (p, matches!(t, Target::Get(_))))).finish()
    }
}

impl Router {
    /// No routes (everything 404).
    pub fn new() -> Router {
        Router::default()
    }

    /// `GET path` answered by `handler`.
    pub fn get(mut self, path: &'static str, handler: Handler) -> Router {
        self.routes.push((PathMatch::Exact(path), Target::Get(handler)));
        self
    }

    /// `POST path` (exact) answered by `handler`.
    pub fn post(mut self, path: &'static str, handler: BodyHandler) -> Router {
        self.routes.push((PathMatch::Exact(path), Target::Post(handler)));
        self
    }

    /// `POST` on every path that starts with `prefix` (e.g. `/json/`); the handler gets the
    /// rest of the path as [`HttpRequest::rest`].
    pub fn post_prefix(mut self, prefix: &'static str, handler: BodyHandler) -> Router {
        self.routes.push((PathMatch::Prefix(prefix), Target::Post(handler)));
        self
    }

    /// The routes matching `path`, best first (exact, then by prefix length), with the rest.
    fn matching<'r, 'p>(&'r self, path: &'p str) -> Vec<(&'r Target, &'p str, usize)> {
        let mut found: Vec<(&Target, &str, usize)> = self
            .routes
            .iter()
            .filter_map(|(m, t)| match *m {
                PathMatch::Exact(p) if p == path => Some((t, "", usize::MAX)),
                PathMatch::Prefix(p) => path.strip_prefix(p).map(|rest| (t, rest, p.len())),
                PathMatch::Exact(_) => None,
            })
            .collect();
        found.sort_by_key(|f| std::cmp::Reverse(f.2));
        found
    }

    fn paths(&self) -> Vec<&'static str> {
        self.routes
            .iter()
            .map(|(m, _)| match *m {
                PathMatch::Exact(p) | PathMatch::Prefix(p) => p,
            })
            .collect()
    }
}

impl From<Vec<Route>> for Router {
    fn from(routes: Vec<Route>) -> Router {
        routes.into_iter().fold(Router::new(), |r, (path, h)| r.get(path, h))
    }
}

/// A running server; stops (and joins its accept thread) on [`HttpServer::stop`] or drop.
pub struct HttpServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for HttpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpServer")
            .field("addr", &self.addr)
            .field("name", &self.shared.name)
            .field("paths", &self.shared.router.paths())
            .field("limits", &self.shared.limits)
            .finish_non_exhaustive()
    }
}

/// What the accept thread, the connection threads and the handle share.
struct Shared {
    name: String,
    router: Router,
    limits: Limits,
    stop: AtomicBool,
    active: AtomicUsize,
}

/// Binds `addr` (`host:port`; port 0 picks one) and serves `routes` with the default
/// [`Limits`]. The accept thread is called `thread_name`, connection threads
/// `{thread_name}-conn`.
pub fn serve(addr: &str, thread_name: &str, routes: Vec<Route>) -> io::Result<HttpServer> {
    serve_with(addr, thread_name, routes, Limits::default())
}

/// [`serve`] with other limits.
pub fn serve_with(addr: &str, thread_name: &str, routes: Vec<Route>, limits: Limits) -> io::Result<HttpServer> {
    serve_router(addr, thread_name, Router::from(routes), limits)
}

/// [`serve_with`] for any [`Router`] (`POST` routes included).
pub fn serve_router(addr: &str, thread_name: &str, router: Router, limits: Limits) -> io::Result<HttpServer> {
    let listener = TcpListener::bind(addr)?;
    let local = listener.local_addr()?;
    let shared = Arc::new(Shared {
        name: thread_name.to_owned(),
        router,
        limits,
        stop: AtomicBool::new(false),
        active: AtomicUsize::new(0),
    });
    let thread = {
        let shared = shared.clone();
        std::thread::Builder::new().name(thread_name.to_owned()).spawn(move || accept_loop(&listener, &shared))?
    };
    Ok(HttpServer { addr: local, shared, thread: Some(thread) })
}

impl HttpServer {
    /// The address bound (with the real port when 0 was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connections being served now.
    pub fn active_connections(&self) -> usize {
        self.shared.active.load(Ordering::SeqCst)
    }

    /// Stops accepting and waits for the accept thread. Connections being served finish their
    /// current request (bounded by the timeouts) on their own threads, without keep-alive.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let Some(thread) = self.thread.take() else { return };
        self.shared.stop.store(true, Ordering::SeqCst);
        // The accept thread sleeps in accept(); a connection of our own wakes it to see the flag.
        match TcpStream::connect_timeout(&wake_addr(self.addr), Duration::from_secs(1)) {
            Ok(_) => {
                let _ = thread.join();
            }
            // Not joined: the thread exits at the next connection it accepts.
            Err(e) => tracing::warn!(server = %self.shared.name, addr = %self.addr, error = %e,
                "cannot wake the HTTP accept thread"),
        }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Where to connect to reach a listener bound to `addr` (an unspecified address is reached
/// through loopback).
fn wake_addr(addr: SocketAddr) -> SocketAddr {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, addr.port())
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    for conn in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        match conn {
            Ok(stream) => dispatch(stream, shared),
            Err(e) => {
                // Out of descriptors and the like: do not spin.
                crate::limited!(warn, server = %shared.name, error = %e, "HTTP accept failed");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// Hands `stream` to a connection thread, or answers 503 when too many are running.
fn dispatch(mut stream: TcpStream, shared: &Arc<Shared>) {
    if shared.active.fetch_add(1, Ordering::SeqCst) >= shared.limits.max_connections {
        shared.active.fetch_sub(1, Ordering::SeqCst);
        let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
        let _ = write_response(&mut stream, &Response::text(503, "too many connections\n"), false, "");
        return;
    }
    let guard = ActiveGuard(shared.clone());
    let spawned = std::thread::Builder::new()
        .name(format!("{}-conn", shared.name))
        .spawn(move || serve_connection(stream, &guard.0));
    if let Err(e) = spawned {
        crate::limited!(warn, server = %shared.name, error = %e, "cannot start an HTTP connection thread");
    }
}

/// Counts a running connection thread until dropped (also when its handler panicked).
struct ActiveGuard(Arc<Shared>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::SeqCst);
    }
}

fn serve_connection(mut stream: TcpStream, shared: &Shared) {
    let limits = &shared.limits;
    if stream.set_read_timeout(Some(limits.io_timeout)).is_err()
        || stream.set_write_timeout(Some(limits.io_timeout)).is_err()
    {
        return;
    }
    let Ok(peer) = stream.peer_addr() else { return };
    let _ = stream.set_nodelay(true);
    let mut buf = Vec::with_capacity(1024);
    for served in 1..=limits.max_requests_per_connection {
        let message = match read_request(&mut stream, &mut buf, limits) {
            Ok(Some(message)) => message,
            Ok(None) | Err(ReadError::Io) => return,
            Err(ReadError::Refused(e)) => {
                let response = Response::text(e.status(), format!("{e}\n"));
                if write_response(&mut stream, &response, false, "").is_ok() {
                    close_gracefully(&mut stream);
                }
                return;
            }
        };
        let (response, allow, keep_alive) = match parse_request(&message.head) {
            Some(req) => {
                let (response, allow) = route(&req, &message, peer, shared);
                (response, allow, req.keep_alive)
            }
            None => (Response::text(400, "bad request\n"), "", false),
        };
        let keep_alive =
            keep_alive && served < limits.max_requests_per_connection && !shared.stop.load(Ordering::SeqCst);
        if write_response(&mut stream, &response, keep_alive, allow).is_err() {
            return;
        }
        if !keep_alive {
            close_gracefully(&mut stream);
            return;
        }
    }
}

/// The answer to one request, and the methods its path allows (for a 405's `Allow`).
fn route(req: &Request<'_>, message: &Message, peer: SocketAddr, shared: &Shared) -> (Response, &'static str) {
    let found = shared.router.matching(req.path);
    if found.is_empty() {
        return (Response::text(404, "not found\n"), "");
    }
    let allow = match (
        found.iter().any(|f| matches!(f.0, Target::Get(_))),
        found.iter().any(|f| matches!(f.0, Target::Post(_))),
    ) {
        (true, true) => "GET, POST",
        (false, true) => "POST",
        _ => "GET",
    };
    let picked = found.iter().find(|(t, _, _)| match t {
        Target::Get(_) => req.method == "GET",
        Target::Post(_) => req.method == "POST",
    });
    let Some(&(target, rest, _)) = picked else {
        return (Response::text(405, format!("only {allow}\n")), allow);
    };
    let text = std::str::from_utf8(&message.head).unwrap_or("");
    let query = text.split(' ').nth(1).and_then(|t| t.split_once('?')).map_or("", |(_, q)| q);
    let request =
        HttpRequest { method: req.method, path: req.path, rest, query, head: text, body: &message.body, peer };
    let answered = catch_unwind(AssertUnwindSafe(|| match target {
        Target::Get(h) => h(),
        Target::Post(h) => h(&request),
    }));
    match answered {
        Ok(response) => (response, allow),
        Err(_) => {
            crate::limited!(error, server = %shared.name, path = req.path, "HTTP handler panicked");
            (Response::text(500, "internal error\n"), "")
        }
    }
}

/// Closes after a final response without losing it: closing a socket with unread input (a
/// body we refused, the rest of an over-long head) sends a reset, which can destroy the
/// response before the peer reads it. So: half-close, then discard input for a little while.
fn close_gracefully(stream: &mut TcpStream) {
    const DRAIN_LIMIT: usize = 256 * 1024;
    const DRAIN_TIME: Duration = Duration::from_secs(1);
    let _ = stream.shutdown(Shutdown::Write);
    if stream.set_read_timeout(Some(DRAIN_TIME)).is_err() {
        return;
    }
    let started = Instant::now();
    let (mut sink, mut drained) = ([0u8; 4096], 0);
    while drained < DRAIN_LIMIT && started.elapsed() < DRAIN_TIME {
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
        }
    }
}

/// Why no request could be read.
#[derive(Debug, PartialEq, Eq)]
enum ReadError {
    /// Answered with an error status, then closed.
    Refused(RequestError),
    /// The peer broke off, a read timed out, or the request took longer than
    /// [`Limits::request_deadline`].
    Io,
}

/// Reads until a complete request is in `buf`, then takes it out, leaving any pipelined bytes
/// behind. `Ok(None)`: the peer closed between requests.
fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>, limits: &Limits) -> Result<Option<Message>, ReadError> {
    // The deadline runs from the request's first byte (pipelined bytes: from now).
    let mut started = (!buf.is_empty()).then(Instant::now);
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match take_request(buf, limits) {
            Ok(Some(message)) => return Ok(Some(message)),
            Ok(None) => {}
            Err(e) => return Err(ReadError::Refused(e)),
        }
        let wait = match started {
            None => limits.io_timeout,
            Some(t) => match limits.request_deadline.checked_sub(t.elapsed()) {
                Some(left) if !left.is_zero() => left.min(limits.io_timeout),
                _ => return Err(ReadError::Io),
            },
        };
        stream.set_read_timeout(Some(wait)).map_err(|_| ReadError::Io)?;
        match stream.read(&mut chunk) {
            Ok(0) if buf.is_empty() => return Ok(None),
            Ok(0) => return Err(ReadError::Io),
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                started.get_or_insert_with(Instant::now);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Err(ReadError::Io),
        }
    }
}

/// The head in a buffer is longer than the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadTooLarge;

/// Takes the first complete request head (up to and including the empty line: `\r\n\r\n`, or
/// a bare `\n\n`) out of `buf`, leaving what follows (a body, pipelined requests) in place.
/// `Ok(None)`: no complete head yet, and what is there may still become one within
/// `max_head` bytes. Sans-IO: the server feeds it what it reads; the fuzz target calls it.
pub fn take_head(buf: &mut Vec<u8>, max_head: usize) -> Result<Option<Vec<u8>>, HeadTooLarge> {
    match head_end(buf) {
        Some(end) if end > max_head => Err(HeadTooLarge),
        Some(end) => Ok(Some(buf.drain(..end).collect())),
        None if buf.len() > max_head => Err(HeadTooLarge),
        None => Ok(None),
    }
}

/// One request cut out of the input: its head (as [`take_head`] cuts it) and its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The head, empty line included; read it with [`parse_request`].
    pub head: Vec<u8>,
    /// The body: `Content-Length` bytes (empty without one).
    pub body: Vec<u8>,
}

/// Why a request is refused before it is routed; the connection is closed after the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The head exceeds [`Limits::max_head`] (431).
    #[error("request head too large")]
    HeadTooLarge,
    /// The head is not an HTTP/1.x request we read: bad request line or header line, a
    /// `Content-Length` that is not a number, or two that differ (400).
    #[error("bad request")]
    Malformed,
    /// The body is framed by `Transfer-Encoding`, which is not supported (411).
    #[error("a Content-Length is required (Transfer-Encoding is not supported)")]
    LengthRequired,
    /// `Content-Length` exceeds [`Limits::max_body`] (413).
    #[error("request body too large")]
    BodyTooLarge,
}

impl RequestError {
    /// The status it is answered with.
    pub fn status(self) -> u16 {
        match self {
            RequestError::HeadTooLarge => 431,
            RequestError::Malformed => 400,
            RequestError::LengthRequired => 411,
            RequestError::BodyTooLarge => 413,
        }
    }
}

/// Takes the first complete request (head and its `Content-Length` body) out of `buf`,
/// leaving what follows (pipelined requests) in place. `Ok(None)`: not complete yet, and
/// still within the limits; nothing is taken until the whole request is there. A body larger
/// than [`Limits::max_body`] is refused as soon as the head announces it. Sans-IO: the
/// server feeds it what it reads; the fuzz target calls it.
pub fn take_request(buf: &mut Vec<u8>, limits: &Limits) -> Result<Option<Message>, RequestError> {
    let end = match head_end(buf) {
        Some(end) if end > limits.max_head => return Err(RequestError::HeadTooLarge),
        Some(end) => end,
        None if buf.len() > limits.max_head => return Err(RequestError::HeadTooLarge),
        None => return Ok(None),
    };
    let req = parse_request(&buf[..end]).ok_or(RequestError::Malformed)?;
    let len = match req.body {
        Body::None => 0,
        Body::Chunked => return Err(RequestError::LengthRequired),
        Body::Invalid => return Err(RequestError::Malformed),
        Body::Length(n) if n > limits.max_body => return Err(RequestError::BodyTooLarge),
        Body::Length(n) => n,
    };
    let Some(total) = end.checked_add(len).filter(|&t| t <= buf.len()) else { return Ok(None) };
    let mut head: Vec<u8> = buf.drain(..total).collect();
    let body = head.split_off(end);
    Ok(Some(Message { head, body }))
}

/// The length of the head in `buf`, empty line included.
fn head_end(buf: &[u8]) -> Option<usize> {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// How a request head frames its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// No body (no `Content-Length`, or `0`).
    None,
    /// `Content-Length` bytes.
    Length(usize),
    /// `Transfer-Encoding` (chunked or other): not supported.
    Chunked,
    /// A `Content-Length` that is not a decimal number, or several that differ.
    Invalid,
}

/// What the server needs from a request head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    /// The method, as sent (never empty).
    pub method: &'a str,
    /// The target without its query string (always starts with `/`).
    pub path: &'a str,
    /// The connection may serve another request (HTTP/1.1 unless `Connection: close`;
    /// HTTP/1.0 with `Connection: keep-alive`).
    pub keep_alive: bool,
    /// The request announces a body (`Transfer-Encoding`, or a `Content-Length` other than
    /// `0`).
    pub has_body: bool,
    /// How the body is framed.
    pub body: Body,
}

/// Parses a request head (as [`take_head`] cuts it); `None` when it is not HTTP/1.x in
/// origin form: not UTF-8, not `METHOD /target HTTP/1.x`, or a header line without `:`.
pub fn parse_request(head: &[u8]) -> Option<Request<'_>> {
    let text = std::str::from_utf8(head).ok()?;
    let mut lines = text.lines();
    let mut parts = lines.next()?.split(' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || method.is_empty() || !target.starts_with('/') {
        return None;
    }
    let http11 = match version {
        "HTTP/1.1" => true,
        "HTTP/1.0" => false,
        _ => return None,
    };
    let mut keep_alive = http11;
    let mut length: Option<usize> = None;
    let (mut chunked, mut invalid) = (false, false);
    for line in lines.take_while(|l| !l.is_empty()) {
        let (name, value) = line.split_once(':')?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("connection") {
            let tokens = || value.split(',').map(str::trim);
            if tokens().any(|t| t.eq_ignore_ascii_case("close")) {
                keep_alive = false;
            } else if tokens().any(|t| t.eq_ignore_ascii_case("keep-alive")) {
                keep_alive = true;
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = true;
        } else if name.eq_ignore_ascii_case("content-length") {
            // Digits only (no sign, no spaces inside), as RFC 9110 says; repeated only when equal.
            let n = (!value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()))
                .then(|| value.parse::<usize>().ok())
                .flatten();
            match (n, length) {
                (Some(n), None) => length = Some(n),
                (Some(n), Some(m)) if n == m => {}
                _ => invalid = true,
            }
        }
    }
    let body = if chunked {
        Body::Chunked
    } else if invalid {
        Body::Invalid
    } else {
        match length {
            None | Some(0) => Body::None,
            Some(n) => Body::Length(n),
        }
    };
    let path = target.split_once('?').map_or(target, |(p, _)| p);
    Some(Request { method, path, keep_alive, has_body: body != Body::None, body })
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        411 => "Length Required",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// Writes `r`; `allow` is the `Allow` header of a 405 (`GET` when empty).
fn write_response(stream: &mut impl Write, r: &Response, keep_alive: bool, allow: &str) -> io::Result<()> {
    let allow = match (r.status, allow) {
        (405, "") => "Allow: GET\r\n".to_owned(),
        (405, methods) => format!("Allow: {methods}\r\n"),
        _ => String::new(),
    };
    let head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n\
         {allow}Connection: {}\r\n\r\n",
        r.status,
        reason(r.status),
        r.content_type,
        r.body.len(),
        if keep_alive { "keep-alive" } else { "close" },
    );
    // One write for head and body (small answers; one segment with TCP_NODELAY).
    let mut out = head.into_bytes();
    out.extend_from_slice(&r.body);
    stream.write_all(&out)?;
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_are_split_and_bounded() {
        let mut buf = b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\n\n".to_vec();
        let first = take_head(&mut buf, MAX_REQUEST_HEAD).expect("bounded").expect("a head");
        assert_eq!(first, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(buf, b"GET /b HTTP/1.1\n\n");
        assert_eq!(take_head(&mut buf, MAX_REQUEST_HEAD), Ok(Some(b"GET /b HTTP/1.1\n\n".to_vec())));
        assert_eq!(take_head(&mut buf, MAX_REQUEST_HEAD), Ok(None));
        let mut big = vec![b'a'; MAX_REQUEST_HEAD + 1];
        assert_eq!(take_head(&mut big, MAX_REQUEST_HEAD), Err(HeadTooLarge));
        let mut exact = vec![b'a'; MAX_REQUEST_HEAD - 4];
        exact.extend_from_slice(b"\r\n\r\nGET");
        assert_eq!(take_head(&mut exact, MAX_REQUEST_HEAD).map(|h| h.map(|h| h.len())), Ok(Some(MAX_REQUEST_HEAD)));
        let mut over = vec![b'a'; MAX_REQUEST_HEAD - 3];
        over.extend_from_slice(b"\r\n\r\n");
        assert_eq!(take_head(&mut over, MAX_REQUEST_HEAD), Err(HeadTooLarge));
        let mut part = b"GET / HTTP/1.1\r\n".to_vec();
        assert_eq!(take_head(&mut part, MAX_REQUEST_HEAD), Ok(None));
        assert_eq!(part, b"GET / HTTP/1.1\r\n");
    }

    #[test]
    fn requests_parse() {
        let r = parse_request(b"GET /metrics?x=1 HTTP/1.1\r\nConnection: Close\r\n\r\n").expect("valid");
        assert_eq!((r.method, r.path, r.keep_alive, r.has_body), ("GET", "/metrics", false, false));
        let r = parse_request(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").expect("valid");
        assert!(r.keep_alive);
        assert!(!parse_request(b"GET / HTTP/1.0\r\n\r\n").expect("valid").keep_alive);
        let r = parse_request(b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n").expect("valid");
        assert!(r.has_body && r.keep_alive);
        assert!(parse_request(b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n").expect("valid").has_body);
        assert!(!parse_request(b"GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n").expect("valid").has_body);
        for bad in [
            &b"GET /\r\n\r\n"[..],
            b"GET / HTTP/2\r\n\r\n",
            b"GET x HTTP/1.1\r\n\r\n",
            b" / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1 extra\r\n\r\n",
            b"\xff\xfe\r\n\r\n",
            b"GET / HTTP/1.1\r\nnocolon\r\n\r\n",
        ] {
            assert_eq!(parse_request(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn responses_are_framed() {
        let mut out = Vec::new();
        write_response(&mut out, &Response::prometheus("a 1\n"), true, "").expect("vec");
        assert_eq!(
            out,
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: 4\r\n\
              Cache-Control: no-store\r\nConnection: keep-alive\r\n\r\na 1\n"
        );
        let mut out = Vec::new();
        write_response(&mut out, &Response::text(405, "only GET\n"), false, "").expect("vec");
        let text = String::from_utf8(out).expect("utf-8");
        assert!(text.starts_with("HTTP/1.1 405 Method Not Allowed\r\n") && text.contains("\r\nAllow: GET\r\n"));
        assert!(text.contains("\r\nConnection: close\r\n"));
    }

    fn limits(max_body: usize) -> Limits {
        Limits { max_body, ..Limits::default() }
    }

    #[test]
    fn bodies_are_taken_whole_and_bounded() {
        let post = b"POST /json/A.B.C/f HTTP/1.1\r\nContent-Length: 7\r\n\r\n{\"a\":1}";
        // Split anywhere, nothing is taken until the whole body is there.
        for cut in 0..post.len() {
            let mut buf = post[..cut].to_vec();
            assert_eq!(take_request(&mut buf, &limits(64)), Ok(None), "cut at {cut}");
            assert_eq!(buf.len(), cut, "nothing taken from a partial request");
            buf.extend_from_slice(&post[cut..]);
            let m = take_request(&mut buf, &limits(64)).expect("bounded").expect("complete");
            assert_eq!(m.body, b"{\"a\":1}");
            assert!(m.head.ends_with(b"\r\n\r\n") && buf.is_empty());
        }
        // Exactly the limit is fine; one byte more is refused from the head alone.
        let mut buf = b"POST / HTTP/1.1\r\nContent-Length: 7\r\n\r\n".to_vec();
        assert_eq!(take_request(&mut buf, &limits(6)), Err(RequestError::BodyTooLarge));
        assert_eq!(RequestError::BodyTooLarge.status(), 413);
        assert_eq!(take_request(&mut buf, &limits(7)), Ok(None));
        let mut huge = b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n".to_vec();
        assert_eq!(take_request(&mut huge, &limits(7)), Err(RequestError::Malformed));
    }

    #[test]
    fn body_framing_is_strict() {
        let take = |text: &[u8]| take_request(&mut text.to_vec(), &Limits::default());
        assert_eq!(
            take(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"),
            Err(RequestError::LengthRequired)
        );
        // Both framings at once is the smuggling case: refused, never guessed.
        assert_eq!(
            take(b"POST / HTTP/1.1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n{}"),
            Err(RequestError::LengthRequired)
        );
        for bad in [&b"-1"[..], b"+2", b"2 2", b"0x10", b""] {
            let mut head = b"POST / HTTP/1.1\r\nContent-Length: ".to_vec();
            head.extend_from_slice(bad);
            head.extend_from_slice(b"\r\n\r\n");
            assert_eq!(take(&head), Err(RequestError::Malformed), "{bad:?}");
        }
        assert_eq!(
            take(b"POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}x"),
            Err(RequestError::Malformed)
        );
        let same =
            take(b"POST / HTTP/1.1\r\nContent-Length: 2\r\ncontent-length:2\r\n\r\n{}").expect("ok").expect("whole");
        assert_eq!(same.body, b"{}");
        // No length: no body, whatever follows is the next request.
        let mut buf = b"POST / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n".to_vec();
        let m = take_request(&mut buf, &Limits::default()).expect("ok").expect("whole");
        assert!(m.body.is_empty());
        assert_eq!(buf, b"GET / HTTP/1.1\r\n\r\n");
        assert_eq!(take(b"\xff / HTTP/1.1\r\n\r\n"), Err(RequestError::Malformed));
        let mut long = vec![b'a'; MAX_REQUEST_HEAD + 1];
        assert_eq!(take_request(&mut long, &Limits::default()), Err(RequestError::HeadTooLarge));
    }

    #[test]
    fn pipelined_requests_with_bodies_come_apart_in_order() {
        let mut buf = b"POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nonePOST /b HTTP/1.1\r\nContent-Length: 5\r\n\r\nthreeGET /c HTTP/1.1\r\n\r\nPOST /d HTTP/1.1\r\nContent-Length: 4\r\n\r\nha".to_vec();
        let mut got = Vec::new();
        while let Some(m) = take_request(&mut buf, &Limits::default()).expect("bounded") {
            let req = parse_request(&m.head).expect("parses");
            got.push((req.path.to_owned(), String::from_utf8(m.body.clone()).expect("utf-8"), req.keep_alive));
        }
        let want = [("/a", "one"), ("/b", "three"), ("/c", "")];
        assert_eq!(got.iter().map(|(p, b, _)| (p.as_str(), b.as_str())).collect::<Vec<_>>(), want);
        assert!(got.iter().all(|g| g.2), "HTTP/1.1 keeps alive after a body");
        assert_eq!(buf, b"POST /d HTTP/1.1\r\nContent-Length: 4\r\n\r\nha", "the incomplete one waits");
    }

    #[test]
    fn routes_pick_exact_then_longest_prefix() {
        let h = |s: &'static str| -> BodyHandler { Arc::new(move |_: &HttpRequest<'_>| Response::text(200, s)) };
        let router = Router::new()
            .post_prefix("/json/", h("json"))
            .post_prefix("/json/x/", h("longer"))
            .post("/json/exact", h("exact"))
            .get("/json/exact", Arc::new(|| Response::text(200, "get")));
        let names = |path: &str| {
            router
                .matching(path)
                .iter()
                .map(|(t, rest, _)| (matches!(t, Target::Get(_)), (*rest).to_owned()))
                .collect::<Vec<_>>()
        };
        assert_eq!(names("/json/x/y"), [(false, "y".to_owned()), (false, "x/y".to_owned())]);
        assert_eq!(names("/json/exact").len(), 3);
        assert!(names("/jsonx").is_empty());
        assert_eq!(names("/json/A.B.C/add"), [(false, "A.B.C/add".to_owned())]);
    }

    #[test]
    fn headers_are_found_case_insensitively() {
        let head = "POST / HTTP/1.1\r\nX-Tars-Thing:  v \r\nHost: h\r\n\r\n";
        let req = HttpRequest {
            method: "POST",
            path: "/",
            rest: "",
            query: "",
            head,
            body: b"",
            peer: SocketAddr::from(([127, 0, 0, 1], 1)),
        };
        assert_eq!(req.header("x-tars-thing"), Some("v"));
        assert_eq!(req.header("host"), Some("h"));
        assert_eq!(req.header("missing"), None);
    }
}
