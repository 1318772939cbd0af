//! The Prometheus HTTP service-discovery endpoint (`http_sd_configs`): `GET /prometheus/sd`
//! answers the same groups as the container interface's `getMetricsAdapters`, as
//!
//! ```json
//! [{"targets":["10.0.0.7:9325"],"labels":{"application":"App","server":"Server","set":""}}]
//! ```
//!
//! It is a deliberately small HTTP/1.1 server on plain std threads: Prometheus asks once a
//! minute, and the answer needs a database query, which must never run on an IO shard. One
//! thread accepts; each connection gets its own short-lived thread (at most
//! [`MAX_CONNECTIONS`]; more are answered 503 at once). Requests are bounded: the head must
//! fit in 8 KiB and arrive within [`REQUEST_DEADLINE`], every read and write times out, bodies
//! are never read (a request announcing one gets its answer and the connection is closed).
//! Other paths are 404, other methods 405, anything unparsable 400.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tars_protocol::tars::MetricsAdapterInfo;

use crate::container::query_metrics_adapters;
use crate::Context;

/// The discovery path.
pub const SD_PATH: &str = "/prometheus/sd";
/// The largest request head (request line and headers) accepted.
pub const MAX_REQUEST_HEAD: usize = 8 * 1024;
/// Connections served at once; the next ones are answered 503.
pub const MAX_CONNECTIONS: usize = 32;
/// How long one read or write may wait, and how long an idle keep-alive connection lasts.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a request head may take to arrive in full (against byte-by-byte senders).
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(10);
/// Requests served on one connection before it is closed.
const MAX_REQUESTS_PER_CONNECTION: usize = 1000;

/// The running endpoint; stops (and joins its accept thread) on [`HttpSd::stop`] or drop.
#[derive(Debug)]
pub struct HttpSd {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Binds `addr` (`host:port`; port 0 picks one) and serves discovery requests from `ctx`'s
/// database on a thread of its own.
pub fn start(addr: &str, ctx: Arc<Context>) -> io::Result<HttpSd> {
    let listener = TcpListener::bind(addr)?;
    let local = listener.local_addr()?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let thread = std::thread::Builder::new()
        .name("tars-registry-sd".into())
        .spawn(move || accept_loop(&listener, &ctx, &flag))?;
    tracing::info!(addr = %local, path = SD_PATH, "Prometheus service discovery listening");
    Ok(HttpSd { addr: local, stop, thread: Some(thread) })
}

impl HttpSd {
    /// The address bound (with the real port when 0 was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting and waits for the accept thread. Connections being served finish their
    /// current request (bounded by the timeouts) on their own threads.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let Some(thread) = self.thread.take() else { return };
        self.stop.store(true, Ordering::SeqCst);
        // The accept thread sleeps in accept(); a connection of our own wakes it to see the flag.
        match TcpStream::connect_timeout(&wake_addr(self.addr), Duration::from_secs(1)) {
            Ok(_) => {
                let _ = thread.join();
            }
            // Not joined: the thread exits at the next connection it accepts.
            Err(e) => tracing::warn!(addr = %self.addr, error = %e, "cannot wake the service-discovery thread"),
        }
    }
}

impl Drop for HttpSd {
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

fn accept_loop(listener: &TcpListener, ctx: &Arc<Context>, stop: &Arc<AtomicBool>) {
    let active = Arc::new(AtomicUsize::new(0));
    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        match conn {
            Ok(stream) => dispatch(stream, ctx, stop, &active),
            Err(e) => {
                // Out of descriptors and the like: do not spin.
                tracing::warn!(error = %e, "service discovery: accept failed");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// Hands `stream` to a connection thread, or answers 503 when too many are running.
fn dispatch(mut stream: TcpStream, ctx: &Arc<Context>, stop: &Arc<AtomicBool>, active: &Arc<AtomicUsize>) {
    if active.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
        active.fetch_sub(1, Ordering::SeqCst);
        let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
        let _ = write_response(&mut stream, &Response::text(503, "too many connections\n"), false);
        return;
    }
    let guard = ActiveGuard(active.clone());
    let (ctx, stop) = (ctx.clone(), stop.clone());
    let spawned = std::thread::Builder::new().name("tars-registry-sd-conn".into()).spawn(move || {
        let _guard = guard;
        serve_connection(stream, &ctx, &stop);
    });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "service discovery: cannot start a connection thread");
    }
}

/// Counts a running connection thread until dropped.
struct ActiveGuard(Arc<AtomicUsize>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn serve_connection(mut stream: TcpStream, ctx: &Context, stop: &AtomicBool) {
    if stream.set_read_timeout(Some(IO_TIMEOUT)).is_err() || stream.set_write_timeout(Some(IO_TIMEOUT)).is_err() {
        return;
    }
    let _ = stream.set_nodelay(true);
    let mut buf = Vec::with_capacity(1024);
    for _ in 0..MAX_REQUESTS_PER_CONNECTION {
        let head = match read_head(&mut stream, &mut buf) {
            Ok(Some(head)) => head,
            Ok(None) | Err(HeadError::Io) => return,
            Err(HeadError::TooLarge) => {
                if write_response(&mut stream, &Response::text(431, "request head too large\n"), false).is_ok() {
                    close_gracefully(&mut stream);
                }
                return;
            }
        };
        let (response, keep_alive) = match parse_request(&head) {
            Some(req) => (route(&req, ctx), req.keep_alive && !req.has_body),
            None => (Response::text(400, "bad request\n"), false),
        };
        let keep_alive = keep_alive && !stop.load(Ordering::SeqCst);
        if write_response(&mut stream, &response, keep_alive).is_err() {
            return;
        }
        if !keep_alive {
            close_gracefully(&mut stream);
            return;
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
enum HeadError {
    /// The head exceeds [`MAX_REQUEST_HEAD`].
    TooLarge,
    /// The peer broke off, a read timed out, or the head took longer than [`REQUEST_DEADLINE`].
    Io,
}

/// Reads until a complete head (ending in an empty line) is in `buf`, then takes it out,
/// leaving any pipelined bytes behind. `Ok(None)`: the peer closed between requests.
fn read_head(stream: &mut impl Read, buf: &mut Vec<u8>) -> Result<Option<Vec<u8>>, HeadError> {
    let started = Instant::now();
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(end) = head_end(buf) {
            if end > MAX_REQUEST_HEAD {
                return Err(HeadError::TooLarge);
            }
            let head: Vec<u8> = buf.drain(..end).collect();
            return Ok(Some(head));
        }
        if buf.len() > MAX_REQUEST_HEAD {
            return Err(HeadError::TooLarge);
        }
        if !buf.is_empty() && started.elapsed() > REQUEST_DEADLINE {
            return Err(HeadError::Io);
        }
        match stream.read(&mut chunk) {
            Ok(0) if buf.is_empty() => return Ok(None),
            Ok(0) => return Err(HeadError::Io),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Err(HeadError::Io),
        }
    }
}

/// The length of the head in `buf`, empty line included (`\r\n\r\n`, or a bare `\n\n`).
fn head_end(buf: &[u8]) -> Option<usize> {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Splits `input` into request heads as a connection reading it would, and parses each:
/// `(method, path)` per head, `None` for a head that is not HTTP/1.x. The fuzz target's entry
/// point; the server itself reads from its sockets.
pub fn parse_requests(input: &[u8]) -> Vec<Option<(String, String)>> {
    let mut buf = input.to_vec();
    let mut out = Vec::new();
    while let Ok(Some(head)) = read_head(&mut io::empty(), &mut buf) {
        out.push(parse_request(&head).map(|r| (r.method, r.path)));
    }
    out
}

/// What the server needs from a request.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Request {
    method: String,
    path: String,
    keep_alive: bool,
    /// The request announces a body, which we never read: the connection cannot be reused.
    has_body: bool,
}

/// Parses a request head; `None` when it is not HTTP/1.x.
fn parse_request(head: &[u8]) -> Option<Request> {
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
    Some(Request { method: method.to_owned(), path: path.to_owned(), keep_alive, has_body })
}

/// A response to write.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Response {
    status: u16,
    content_type: &'static str,
    body: String,
}

impl Response {
    fn text(status: u16, body: &str) -> Response {
        Response { status, content_type: "text/plain; charset=utf-8", body: body.to_owned() }
    }
}

fn route(req: &Request, ctx: &Context) -> Response {
    if req.path != SD_PATH {
        return Response::text(404, "not found\n");
    }
    if req.method != "GET" {
        return Response::text(405, "only GET\n");
    }
    // This thread may block: the store's blocking entry point is the right one here.
    match ctx.store.run_blocking(query_metrics_adapters) {
        Ok(groups) => Response { status: 200, content_type: "application/json", body: render(&groups) },
        Err(e) => {
            tracing::warn!(error = %e, "service discovery: database query failed");
            Response::text(503, &format!("database unavailable: {e}\n"))
        }
    }
}

/// The Prometheus HTTP SD document for `groups`.
pub fn render(groups: &[MetricsAdapterInfo]) -> String {
    let doc: Vec<serde_json::Value> =
        groups.iter().map(|g| serde_json::json!({ "targets": g.targets, "labels": g.labels })).collect();
    serde_json::Value::Array(doc).to_string()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Error",
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
    stream.write_all(head.as_bytes())?;
    stream.write_all(r.body.as_bytes())?;
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn heads_are_split_and_bounded() {
        let mut buf = b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\n\r\n".to_vec();
        let first = read_head(&mut io::empty(), &mut buf).expect("complete").expect("a head");
        assert_eq!(first, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(buf, b"GET /b HTTP/1.1\r\n\r\n");
        let mut big = vec![b'a'; MAX_REQUEST_HEAD + 10];
        assert_eq!(read_head(&mut io::empty(), &mut big), Err(HeadError::TooLarge));
        let mut part = b"GET / HTTP/1.1\r\n".to_vec();
        assert_eq!(read_head(&mut io::empty(), &mut part), Err(HeadError::Io));
        assert_eq!(read_head(&mut io::empty(), &mut Vec::new()), Ok(None));
    }

    #[test]
    fn requests_parse() {
        let r = parse_request(b"GET /prometheus/sd?x=1 HTTP/1.1\r\nConnection: Close\r\n\r\n").expect("valid");
        assert_eq!((r.method.as_str(), r.path.as_str(), r.keep_alive, r.has_body), ("GET", SD_PATH, false, false));
        let r = parse_request(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").expect("valid");
        assert!(r.keep_alive);
        let r = parse_request(b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n").expect("valid");
        assert!(r.has_body && r.keep_alive);
        for bad in [
            &b"GET /\r\n\r\n"[..],
            b"GET / HTTP/2\r\n\r\n",
            b"GET x HTTP/1.1\r\n\r\n",
            b"\xff\xfe\r\n\r\n",
            b"GET / HTTP/1.1\r\nnocolon\r\n\r\n",
        ] {
            assert_eq!(parse_request(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_document_is_prometheus_shaped() {
        let g = MetricsAdapterInfo {
            targets: vec!["n1:9325".into()],
            labels: BTreeMap::from([("application".into(), "A".into()), ("set".into(), String::new())]),
        };
        let v: serde_json::Value = serde_json::from_str(&render(&[g])).expect("JSON");
        assert_eq!(v, serde_json::json!([{"targets": ["n1:9325"], "labels": {"application": "A", "set": ""}}]));
        assert_eq!(render(&[]), "[]");
    }
}
