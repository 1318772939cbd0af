//! A deliberately small, hardened HTTP/1.1 `GET` server on plain std threads, for the few
//! HTTP endpoints the services expose next to TARS: Prometheus service discovery
//! (`/prometheus/sd` in the registry) and Prometheus text metrics (`/metrics` in stat and
//! property).
//!
//! Those are asked about once a minute and their answers may need a database query, which must
//! never run on an IO shard; so this is not part of the runtime. One thread accepts; each
//! connection gets its own short-lived thread (at most [`Limits::max_connections`]; more are
//! answered 503 at once), and the handlers run on that connection thread, where blocking is
//! fine.
//!
//! Requests are bounded: the head must fit in [`Limits::max_head`] bytes and arrive within
//! [`Limits::request_deadline`] of its first byte, every read and write times out after
//! [`Limits::io_timeout`] (which is also how long an idle keep-alive connection lasts), a
//! connection serves at most [`Limits::max_requests_per_connection`] requests, and bodies are
//! never read (a request announcing one gets its answer and the connection is closed). A path
//! without a route is 404, another method than `GET` on a routed path 405, anything unparsable
//! 400, a head too large 431, a handler that panics 500.
//!
//! The request side is sans-IO at its core: [`take_head`] cuts one head out of the bytes
//! received and [`parse_request`] reads it; the connection threads are a shell around them.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The largest request head (request line and headers) accepted by default.
pub const MAX_REQUEST_HEAD: usize = 8 * 1024;
/// Connections served at once by default; the next ones are answered 503.
pub const MAX_CONNECTIONS: usize = 32;
/// How long one read or write may wait by default, and how long an idle keep-alive connection
/// lasts.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a request head may take to arrive in full by default (against byte-by-byte
/// senders), counted from its first byte.
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
    /// Connections served at once; the next ones are answered 503.
    pub max_connections: usize,
    /// How long one read or write may wait; how long an idle connection lasts.
    pub io_timeout: Duration,
    /// How long a request head may take to arrive in full, from its first byte.
    pub request_deadline: Duration,
    /// Requests served on one connection before it is closed.
    pub max_requests_per_connection: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_head: MAX_REQUEST_HEAD,
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

/// A path (exact, without the query string, e.g. `"/metrics"`) and its handler.
pub type Route = (&'static str, Handler);

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
            .field("paths", &self.shared.routes.iter().map(|(p, _)| *p).collect::<Vec<_>>())
            .field("limits", &self.shared.limits)
            .finish_non_exhaustive()
    }
}

/// What the accept thread, the connection threads and the handle share.
struct Shared {
    name: String,
    routes: Vec<Route>,
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
    let listener = TcpListener::bind(addr)?;
    let local = listener.local_addr()?;
    let shared = Arc::new(Shared {
        name: thread_name.to_owned(),
        routes,
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
        let _ = write_response(&mut stream, &Response::text(503, "too many connections\n"), false);
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
    let _ = stream.set_nodelay(true);
    let mut buf = Vec::with_capacity(1024);
    for served in 1..=limits.max_requests_per_connection {
        let head = match read_head(&mut stream, &mut buf, limits) {
            Ok(Some(head)) => head,
            Ok(None) | Err(ReadError::Io) => return,
            Err(ReadError::TooLarge) => {
                if write_response(&mut stream, &Response::text(431, "request head too large\n"), false).is_ok() {
                    close_gracefully(&mut stream);
                }
                return;
            }
        };
        let (response, keep_alive) = match parse_request(&head) {
            Some(req) => (route(&req, shared), req.keep_alive && !req.has_body),
            None => (Response::text(400, "bad request\n"), false),
        };
        let keep_alive =
            keep_alive && served < limits.max_requests_per_connection && !shared.stop.load(Ordering::SeqCst);
        if write_response(&mut stream, &response, keep_alive).is_err() {
            return;
        }
        if !keep_alive {
            close_gracefully(&mut stream);
            return;
        }
    }
}

fn route(req: &Request<'_>, shared: &Shared) -> Response {
    let Some((_, handler)) = shared.routes.iter().find(|(path, _)| *path == req.path) else {
        return Response::text(404, "not found\n");
    };
    if req.method != "GET" {
        return Response::text(405, "only GET\n");
    }
    match catch_unwind(AssertUnwindSafe(|| handler())) {
        Ok(response) => response,
        Err(_) => {
            crate::limited!(error, server = %shared.name, path = req.path, "HTTP handler panicked");
            Response::text(500, "internal error\n")
        }
    }
}

/// Closes after a final response without losing it: closing a socket with unread input (a
/// body we never read, the rest of an over-long head) sends a reset, which can destroy the
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

/// Why no request head could be read.
#[derive(Debug, PartialEq, Eq)]
enum ReadError {
    /// The head exceeds [`Limits::max_head`].
    TooLarge,
    /// The peer broke off, a read timed out, or the head took longer than
    /// [`Limits::request_deadline`].
    Io,
}

/// Reads until a complete head is in `buf`, then takes it out, leaving any pipelined bytes
/// behind. `Ok(None)`: the peer closed between requests.
fn read_head(stream: &mut TcpStream, buf: &mut Vec<u8>, limits: &Limits) -> Result<Option<Vec<u8>>, ReadError> {
    // The deadline runs from the head's first byte (pipelined bytes: from now).
    let mut started = (!buf.is_empty()).then(Instant::now);
    let mut chunk = [0u8; 1024];
    loop {
        match take_head(buf, limits.max_head) {
            Ok(Some(head)) => return Ok(Some(head)),
            Ok(None) => {}
            Err(HeadTooLarge) => return Err(ReadError::TooLarge),
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
/// a bare `\n\n`) out of `buf`, leaving what follows (pipelined requests) in place.
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

/// The length of the head in `buf`, empty line included.
fn head_end(buf: &[u8]) -> Option<usize> {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
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
    /// `0`), which the server never reads: the connection cannot be reused.
    pub has_body: bool,
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
    let mut has_body = false;
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
        } else if name.eq_ignore_ascii_case("transfer-encoding")
            || (name.eq_ignore_ascii_case("content-length") && value != "0")
        {
            has_body = true;
        }
    }
    let path = target.split_once('?').map_or(target, |(p, _)| p);
    Some(Request { method, path, keep_alive, has_body })
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

fn write_response(stream: &mut impl Write, r: &Response, keep_alive: bool) -> io::Result<()> {
    let allow = if r.status == 405 { "Allow: GET\r\n" } else { "" };
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
        write_response(&mut out, &Response::prometheus("a 1\n"), true).expect("vec");
        assert_eq!(
            out,
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: 4\r\n\
              Cache-Control: no-store\r\nConnection: keep-alive\r\n\r\na 1\n"
        );
        let mut out = Vec::new();
        write_response(&mut out, &Response::text(405, "only GET\n"), false).expect("vec");
        let text = String::from_utf8(out).expect("utf-8");
        assert!(text.starts_with("HTTP/1.1 405 Method Not Allowed\r\n") && text.contains("\r\nAllow: GET\r\n"));
        assert!(text.contains("\r\nConnection: close\r\n"));
    }
}
