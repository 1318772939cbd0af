//! One pipelined connection to one endpoint (TarsCpp's `AdapterProxy`), driven as a
//! hand-written poll state machine on its shard, like the server's connection.
//!
//! Callers append encoded requests to the connection's output buffer and register a one-shot
//! slot under the request id; the driver task connects on first use, writes everything queued
//! in one write per turn, reads replies, and completes each slot by id. Replies may come in
//! any order. A reply whose id is no longer registered (its caller timed out) is dropped;
//! id 0 is a server push and is logged and ignored.
//!
//! # Failures
//!
//! When a connect fails or an established connection breaks, every registered call is
//! completed at once: a request none of whose bytes reached the socket comes back as
//! [`Outcome::Unsent`] (the caller may send it elsewhere, it cannot have run), the rest as
//! [`CallError::Connect`]. The connection is then *down* until `now + backoff`: new calls fail
//! fast with `CallError::Connect` and the communicator marks the endpoint failed in every
//! object's endpoint set, so traffic goes to the other endpoints. The first call after the
//! backoff reconnects. The backoff starts at 50 ms, doubles on each failure up to 5 s, and goes
//! back to 50 ms once a connect succeeds. A peer that closes an idle connection (nothing
//! queued, nothing awaited) is not a failure: the next call just reconnects.
//!
//! # Authentication
//!
//! To an endpoint with `-e 1` the driver sends the handshake of [`crate::auth`] right after
//! connecting, as the object the connection was made for, and waits (within the connect
//! timeout) for `AUTH_SUCC` before it writes any queued request. A refusal, or an object
//! without keys in the config, ends the attempt like a failed connect: the queued calls come
//! back unsent (another endpoint may take them, else they fail with `CallError::Connect`
//! naming the reason) and the connection is down for the backoff, which only a handshake that
//! passes resets.
//!
//! # Memory
//!
//! At most [`MAX_UNSENT`] bytes wait to be written; a call that would queue more gets
//! `CallError::Send`. Replies are read in frames of at most 100 MiB (TarsCpp's limit).

use std::cell::RefCell;
use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::future::poll_fn;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};

use crate::auth::{self, Keys, AUTH_TYPE_LOCAL, MAX_HANDSHAKE_FRAME};
use crate::rt::sync::{oneshot, Notify, Receiver, Sender};
use crate::rt::{self, net::TcpStream};
use tars_proto::codec::{Struct, Writer};
use tars_proto::endpoint::Endpoint;
use tars_proto::frame::{FrameDecoder, MAX_FRAME_LIMIT};
use tars_proto::packet::RequestPacket;
use tars_proto::rpc::{CallError, Reply};

/// Most bytes of requests one connection queues before refusing calls with `CallError::Send`.
pub const MAX_UNSENT: usize = 16 * 1024 * 1024;
/// The first reconnect delay after a failure.
pub const INITIAL_BACKOFF: Duration = Duration::from_millis(50);
/// The longest reconnect delay.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How long a connect may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Bytes read per turn before handling what arrived.
const READ_MAX: usize = 256 * 1024;
/// Turns a busy connection takes before yielding to its shard's other tasks.
const TURN_BUDGET: usize = 16;
/// The input buffer is given back when it empties above this capacity.
const KEEP_CAPACITY: usize = 64 * 1024;

thread_local! {
    /// The shard's request id counter: ids are unique per shard, so per connection.
    static NEXT_ID: std::cell::Cell<u32> = const { std::cell::Cell::new(1) };
}

/// The id after `id`: wraps from `u32::MAX` to 1, never giving 0 (reserved for pushes).
pub(crate) fn following_id(id: u32) -> u32 {
    id.checked_add(1).unwrap_or(1).max(1)
}

/// The next request id of this shard, never 0.
fn next_request_id() -> i32 {
    NEXT_ID.with(|c| {
        let id = c.get().max(1);
        c.set(following_id(id));
        // The wire field is a signed int; ids above i32::MAX travel as negatives, as in TarsCpp.
        i32::from_ne_bytes(id.to_ne_bytes())
    })
}

/// How a call registered on a connection ended.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// The server answered.
    Reply(Reply),
    /// The call failed after its request may have reached the server.
    Failed(CallError),
    /// The connection failed before any byte of the request was written: it may be retried.
    Unsent(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    /// No socket and none wanted.
    Idle,
    /// A call is waiting for a socket; the driver is connecting.
    Connecting,
    /// Connected.
    Up,
}

#[derive(Debug)]
struct Down {
    retry_at: Instant,
    reason: String,
}

struct Inner {
    link: Link,
    down: Option<Down>,
    backoff: Duration,
    /// Encoded requests not yet written.
    out: BytesMut,
    /// The requests in `out`, in order: id (0 for oneway) and encoded length.
    queued: VecDeque<(i32, usize)>,
    /// Bytes of the first queued request already written.
    front_written: usize,
    /// Calls waiting for a reply, by request id.
    pending: HashMap<i32, Sender<Outcome>>,
}

impl Inner {
    /// Accounts for `n` bytes of `out` having been written.
    fn written(&mut self, mut n: usize) {
        while n > 0 {
            let Some(&(_, len)) = self.queued.front() else { break };
            let left = len - self.front_written;
            if n >= left {
                self.queued.pop_front();
                self.front_written = 0;
                n -= left;
            } else {
                self.front_written += n;
                n = 0;
            }
        }
    }
}

/// Who a connection to an `-e 1` endpoint authenticates as.
#[derive(Debug)]
pub(crate) struct Credentials {
    /// The object (`App.Server.Obj`), sent as `sObjName` and servant.
    pub(crate) object: String,
    /// Its keys from the client config, if any.
    pub(crate) keys: Option<Keys>,
}

/// A server push (a reply with request id 0) that arrived on one of a communicator's
/// connections.
#[derive(Debug, Clone)]
pub struct Push {
    /// The endpoint of the connection it came on.
    pub endpoint: Endpoint,
    /// The pushed function (`status["TARS_FUNC"]`).
    pub func: String,
    /// The protocol version its body is encoded in.
    pub version: i16,
    /// Its encoded parameters.
    pub body: Bytes,
}

/// The communicator's push handler, shared by all its connections (set once they exist).
pub(crate) type PushSlot = Rc<RefCell<Option<Rc<dyn Fn(Push)>>>>;

/// What a connection's callers and its driver share. Lives on one shard.
pub(crate) struct Shared {
    endpoint: Endpoint,
    push: PushSlot,
    /// Present when the endpoint has `-e 1`.
    auth: Option<Rc<Credentials>>,
    inner: RefCell<Inner>,
    /// Wakes the driver: output queued, or a connection wanted.
    notify: Notify,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = self.inner.borrow();
        f.debug_struct("Conn")
            .field("endpoint", &self.endpoint.to_string())
            .field("link", &i.link)
            .field("down", &i.down)
            .field("unsent", &i.out.len())
            .field("pending", &i.pending.len())
            .finish()
    }
}

impl Shared {
    fn connected(&self) {
        let mut i = self.inner.borrow_mut();
        i.link = Link::Up;
        i.down = None;
        i.backoff = INITIAL_BACKOFF;
    }

    /// The socket failed (or closed): completes every registered call and, unless this was a
    /// clean close of an idle connection, puts the connection down for the backoff period.
    fn failed(&self, reason: String, eof: bool) {
        let (senders, unsent) = {
            let mut i = self.inner.borrow_mut();
            i.link = Link::Idle;
            let idle = i.pending.is_empty() && i.out.is_empty();
            if eof && idle {
                tracing::debug!(endpoint = %self.endpoint, "connection closed by peer while idle");
                return;
            }
            let backoff = i.backoff;
            tracing::warn!(endpoint = %self.endpoint, %reason, retry_in_ms = backoff.as_millis() as u64, "connection failed");
            i.down = Some(Down { retry_at: Instant::now() + backoff, reason: reason.clone() });
            i.backoff = (backoff * 2).min(MAX_BACKOFF);
            let front_started = i.front_written > 0;
            let unsent: HashSet<i32> = i
                .queued
                .iter()
                .enumerate()
                .filter(|&(k, &(id, _))| id != 0 && !(k == 0 && front_started))
                .map(|(_, &(id, _))| id)
                .collect();
            i.out = BytesMut::new();
            i.queued.clear();
            i.front_written = 0;
            let senders: Vec<_> = i.pending.drain().collect();
            (senders, unsent)
        };
        for (id, tx) in senders {
            tx.send(if unsent.contains(&id) {
                Outcome::Unsent(reason.clone())
            } else {
                Outcome::Failed(CallError::Connect(reason.clone()))
            });
        }
    }
}

/// One endpoint's connection on one shard. Dropping it stops its driver and fails the calls
/// still waiting on it.
pub(crate) struct Conn {
    shared: Rc<Shared>,
    task: RefCell<Option<rt::Task<()>>>,
    /// The endpoint's host, shared by the call-statistics rows of this connection.
    host: Rc<str>,
}

impl fmt::Debug for Conn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.shared.fmt(f)
    }
}

impl Conn {
    /// A connection to `endpoint`, not yet connected; `auth` is used when the endpoint has
    /// `-e 1`.
    pub(crate) fn new(endpoint: Endpoint, auth: Option<Rc<Credentials>>, push: PushSlot) -> Conn {
        let auth = auth.filter(|_| endpoint.auth_type == AUTH_TYPE_LOCAL);
        let inner = Inner {
            link: Link::Idle,
            down: None,
            backoff: INITIAL_BACKOFF,
            out: BytesMut::new(),
            queued: VecDeque::new(),
            front_written: 0,
            pending: HashMap::new(),
        };
        Conn {
            host: endpoint.host.as_str().into(),
            shared: Rc::new(Shared { endpoint, push, auth, inner: RefCell::new(inner), notify: Notify::new() }),
            task: RefCell::new(None),
        }
    }

    /// The endpoint this connects to.
    pub(crate) fn endpoint(&self) -> &Endpoint {
        &self.shared.endpoint
    }

    /// The endpoint's host.
    pub(crate) fn host(&self) -> &Rc<str> {
        &self.host
    }

    /// When the connection is down (a recent failure, waiting out its backoff), the instant it
    /// may be tried again.
    pub(crate) fn down_until(&self, now: Instant) -> Option<Instant> {
        self.shared.inner.borrow().down.as_ref().map(|d| d.retry_at).filter(|&t| t > now)
    }

    /// Bytes of requests not yet written.
    pub(crate) fn unsent(&self) -> usize {
        self.shared.inner.borrow().out.len()
    }

    /// Whether a socket is open.
    pub(crate) fn is_up(&self) -> bool {
        self.shared.inner.borrow().link == Link::Up
    }

    /// Whether a socket is open or being opened: queued requests will still be written.
    pub(crate) fn is_active(&self) -> bool {
        self.shared.inner.borrow().link != Link::Idle
    }

    /// Queues `req` under a fresh request id (written into it) and returns the slot its reply
    /// will arrive in, or `None` for a oneway request (done once queued).
    pub(crate) fn enqueue(&self, req: &mut RequestPacket, now: Instant) -> Result<Option<Waiter>, CallError> {
        let oneway = req.is_oneway();
        let (waiter, wake, spawn) = {
            let mut i = self.shared.inner.borrow_mut();
            if let Some(d) = i.down.as_ref().filter(|d| now < d.retry_at) {
                return Err(CallError::Connect(d.reason.clone()));
            }
            let id = loop {
                let id = next_request_id();
                if !i.pending.contains_key(&id) {
                    break id;
                }
            };
            req.i_request_id = id;
            let before = i.out.len();
            encode_into(&mut i.out, req);
            let len = i.out.len() - before;
            if before > 0 && i.out.len() > MAX_UNSENT {
                i.out.truncate(before);
                return Err(CallError::Send(format!(
                    "{} bytes already wait to be written to {}",
                    before, self.shared.endpoint
                )));
            }
            i.queued.push_back((if oneway { 0 } else { id }, len));
            let waiter = if oneway {
                None
            } else {
                let (tx, rx) = oneshot();
                i.pending.insert(id, tx);
                Some(Waiter { rx, shared: self.shared.clone(), id, done: false })
            };
            let spawn = i.link == Link::Idle;
            if spawn {
                i.link = Link::Connecting;
            }
            // Requests queued behind others ride on the wake-up the first one gave.
            (waiter, before == 0 || spawn, spawn)
        };
        if spawn {
            let mut task = self.task.borrow_mut();
            if task.is_none() {
                *task = Some(rt::spawn(drive(self.shared.clone())));
            }
        }
        if wake {
            self.shared.notify.notify();
        }
        Ok(waiter)
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        drop(self.task.get_mut().take());
        let senders: Vec<_> = self.shared.inner.borrow_mut().pending.drain().collect();
        for (_, tx) in senders {
            tx.send(Outcome::Failed(CallError::Connect("the communicator was dropped".into())));
        }
    }
}

/// Appends `req` with its length prefix to `out`, encoding in place.
fn encode_into(out: &mut BytesMut, req: &RequestPacket) {
    let start = out.len();
    let mut w = Writer::from_buf(std::mem::take(out));
    w.put_raw(&[0; 4]);
    req.write_fields(&mut w);
    *out = w.into_inner();
    let len = u32::try_from(out.len() - start).unwrap_or(u32::MAX);
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
}

/// A registered call's slot. Dropping it before the reply (timeout, cancellation) unregisters
/// the id, so a late reply is dropped.
#[derive(Debug)]
pub(crate) struct Waiter {
    rx: Receiver<Outcome>,
    shared: Rc<Shared>,
    id: i32,
    done: bool,
}

impl Waiter {
    /// Waits for the call to end.
    pub(crate) async fn wait(mut self) -> Outcome {
        let outcome = (&mut self.rx).await;
        self.done = true;
        outcome.unwrap_or_else(|| Outcome::Failed(CallError::Connect("connection dropped".into())))
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        if !self.done {
            self.shared.inner.borrow_mut().pending.remove(&self.id);
        }
    }
}

/// The driver task: waits until a call wants a socket, connects, serves it until it breaks,
/// fails what was waiting on it, and waits again.
async fn drive(shared: Rc<Shared>) {
    loop {
        poll_fn(|cx| loop {
            if shared.inner.borrow().link == Link::Connecting {
                return Poll::Ready(());
            }
            if shared.notify.poll_notified(cx).is_pending() {
                return Poll::Pending;
            }
        })
        .await;
        let mut stream = match connect(&shared.endpoint).await {
            Ok(s) => s,
            Err(reason) => {
                shared.failed(reason, false);
                continue;
            }
        };
        let mut input = BytesMut::new();
        if let Some(auth) = &shared.auth {
            if let Err(reason) = authenticate(&mut stream, auth, &mut input).await {
                shared.failed(reason, false);
                continue;
            }
        }
        tracing::debug!(endpoint = %shared.endpoint, "connected");
        shared.connected();
        let mut active = Active {
            stream,
            shared: shared.clone(),
            decoder: FrameDecoder::with_max_frame(MAX_FRAME_LIMIT).unwrap_or_default(),
            input,
            write_armed: false,
        };
        let end = poll_fn(|cx| active.poll(cx)).await;
        drop(active);
        match end {
            End::Eof => shared.failed("connection closed by peer".into(), true),
            End::Error(reason) => shared.failed(reason, false),
        }
    }
}

async fn connect(endpoint: &Endpoint) -> Result<TcpStream, String> {
    let addr = resolve(endpoint).await?;
    match rt::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => {
            let _ = s.set_nodelay(true);
            Ok(s)
        }
        Ok(Err(e)) => Err(format!("connect to {addr} failed: {e}")),
        Err(_) => Err(format!("connect to {addr} timed out after {} ms", CONNECT_TIMEOUT.as_millis())),
    }
}

/// The `-e 1` handshake on a fresh socket, within [`CONNECT_TIMEOUT`]: `Ok` once the server
/// answered `AUTH_SUCC`; bytes that came after the answer are left in `input`.
async fn authenticate(stream: &mut TcpStream, auth: &Credentials, input: &mut BytesMut) -> Result<(), String> {
    let Some(keys) = &auth.keys else {
        return Err(format!(
            "the endpoint requires authentication (-e 1) but the client config has no accesskey/secretkey for {}",
            auth.object
        ));
    };
    let frame = auth::request_frame(&auth.object, keys, unix_now());
    let exchange = async {
        stream.write_all(&frame).await.map_err(|e| format!("sending the authentication failed: {e}"))?;
        let mut decoder = FrameDecoder::with_max_frame(MAX_HANDSHAKE_FRAME).unwrap_or_default();
        loop {
            match decoder.decode(input) {
                Ok(Some(answer)) => {
                    return auth::check_reply(&answer).map_err(|e| format!("{e} (as {})", auth.object));
                }
                Ok(None) => {}
                Err(e) => return Err(format!("bad authentication reply: {e}")),
            }
            match stream.read_buf(input, READ_MAX).await {
                Ok(0) => {
                    return Err(format!("the server closed the connection during authentication as {}", auth.object))
                }
                Ok(_) => {}
                Err(e) => return Err(format!("reading the authentication reply failed: {e}")),
            }
        }
    };
    match rt::timeout(CONNECT_TIMEOUT, exchange).await {
        Ok(done) => done,
        Err(_) => Err(format!("no authentication reply within {} ms", CONNECT_TIMEOUT.as_millis())),
    }
}

/// The wall clock in seconds since the epoch: a handshake's `iTime`.
fn unix_now() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since.as_secs()).unwrap_or(i64::MAX)
}

/// The address of `endpoint`. IP literals are parsed; a host name is looked up with the
/// system resolver on a short-lived `tars-resolve` thread, since the lookup blocks: the shard
/// only awaits the answer, at most [`CONNECT_TIMEOUT`]. Lookups happen on connects only, which
/// the reconnect backoff spaces out, so the threads stay few.
async fn resolve(endpoint: &Endpoint) -> Result<SocketAddr, String> {
    let host = endpoint.host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, endpoint.port));
    }
    let (tx, rx) = rt::sync::channel::bounded(1);
    let (name, port) = (host.to_owned(), endpoint.port);
    std::thread::Builder::new()
        .name("tars-resolve".into())
        .spawn(move || {
            let found = (name.as_str(), port)
                .to_socket_addrs()
                .map_err(|e| format!("cannot resolve {name}: {e}"))
                .and_then(|mut a| a.next().ok_or_else(|| format!("{name} resolves to no address")));
            let _ = tx.try_send(found);
        })
        .map_err(|e| format!("cannot start a resolver thread for {host}: {e}"))?;
    match rt::timeout(CONNECT_TIMEOUT, rx.recv()).await {
        Ok(Ok(found)) => found,
        Ok(Err(_)) => Err(format!("the resolver thread for {host} ended without an answer")),
        Err(_) => Err(format!("resolving {host} timed out after {} ms", CONNECT_TIMEOUT.as_millis())),
    }
}

/// Why a connected socket stopped.
enum End {
    Eof,
    Error(String),
}

/// A connected socket and what reading it needs.
struct Active {
    stream: TcpStream,
    shared: Rc<Shared>,
    decoder: FrameDecoder,
    input: BytesMut,
    write_armed: bool,
}

impl Active {
    /// One turn: read and complete what arrived, then write what is queued. Reading first
    /// notices a peer's close before more requests are written into it.
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<End> {
        let mut turns = 0;
        loop {
            // Consume the notification and leave our waker registered before looking at the
            // output, so a request queued after this point wakes us again. (A single poll that
            // returns Ready registers nothing: a request queued on a quiet connection after a
            // oneway call would then wait for the next IO event.)
            while self.shared.notify.poll_notified(cx).is_ready() {}
            let read = match self.stream.poll_read_buf(cx, &mut self.input, READ_MAX) {
                Poll::Ready(Ok(0)) => return Poll::Ready(End::Eof),
                Poll::Ready(Ok(_)) => {
                    if let Err(e) = self.handle_input() {
                        return Poll::Ready(e);
                    }
                    true
                }
                Poll::Ready(Err(e)) => return Poll::Ready(End::Error(format!("read failed: {e}"))),
                Poll::Pending => false,
            };
            if let Err(e) = self.flush(cx) {
                return Poll::Ready(e);
            }
            if !read {
                return Poll::Pending;
            }
            turns += 1;
            if turns >= TURN_BUDGET {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        }
    }

    /// Writes queued requests until done or the socket is full.
    fn flush(&mut self, cx: &mut Context<'_>) -> Result<(), End> {
        let mut i = self.shared.inner.borrow_mut();
        while !i.out.is_empty() {
            match self.stream.poll_write_some(cx, &i.out) {
                Poll::Ready(Ok(0)) => return Err(End::Error("write returned 0".into())),
                Poll::Ready(Ok(n)) => {
                    i.out.advance(n);
                    i.written(n);
                }
                Poll::Ready(Err(e)) => return Err(End::Error(format!("write failed: {e}"))),
                Poll::Pending => {
                    self.write_armed = true;
                    return Ok(());
                }
            }
        }
        if self.write_armed {
            self.write_armed = false;
            self.stream.write_idle().map_err(|e| End::Error(format!("write failed: {e}")))?;
        }
        Ok(())
    }

    /// Completes the call of every complete reply in the input buffer.
    fn handle_input(&mut self) -> Result<(), End> {
        loop {
            match self.decoder.decode(&mut self.input) {
                Ok(Some(frame)) => self.handle_frame(&frame)?,
                Ok(None) => break,
                Err(e) => return Err(End::Error(format!("bad reply frame: {e}"))),
            }
        }
        if self.input.is_empty() && self.input.capacity() > KEEP_CAPACITY {
            self.input = BytesMut::new();
        }
        Ok(())
    }

    fn handle_frame(&self, frame: &Bytes) -> Result<(), End> {
        let reply = Reply::decode(frame).map_err(|e| End::Error(format!("undecodable reply: {e}")))?;
        if reply.request_id == 0 {
            let handler = self.shared.push.borrow().clone();
            if let Some(handler) = handler {
                let func = reply.status.get(tars_proto::packet::status_key::TARS_FUNC).cloned().unwrap_or_default();
                handler(Push {
                    endpoint: self.shared.endpoint.clone(),
                    func,
                    version: reply.version,
                    body: reply.body,
                });
                return Ok(());
            }
            tracing::debug!(
                endpoint = %self.shared.endpoint,
                func = reply.status.get(tars_proto::packet::status_key::TARS_FUNC).map(String::as_str).unwrap_or(""),
                desc = %reply.desc,
                "server push (request id 0) ignored"
            );
            return Ok(());
        }
        let tx = self.shared.inner.borrow_mut().pending.remove(&reply.request_id);
        match tx {
            Some(tx) => tx.send(Outcome::Reply(reply)),
            None => tracing::debug!(
                endpoint = %self.shared.endpoint,
                id = reply.request_id,
                "reply for a request no longer waited for (timed out?); dropped"
            ),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_skip_zero_on_wrap() {
        assert_eq!(following_id(1), 2);
        assert_eq!(following_id(u32::MAX - 1), u32::MAX);
        assert_eq!(following_id(u32::MAX), 1);
        assert_eq!(following_id(0), 1);
        NEXT_ID.with(|c| c.set(u32::MAX));
        let a = next_request_id();
        let b = next_request_id();
        assert_eq!((a, b), (-1, 1));
    }

    #[test]
    fn written_bytes_are_accounted_per_request() {
        let c = Conn::new(Endpoint::parse("tcp -h 127.0.0.1 -p 1").expect("valid"), None, PushSlot::default());
        let mut i = c.shared.inner.borrow_mut();
        i.queued.extend([(1, 10), (2, 5), (0, 3), (4, 7)]);
        i.written(12);
        assert_eq!((i.queued.front().copied(), i.front_written), (Some((2, 5)), 2));
        i.written(6);
        assert_eq!((i.queued.front().copied(), i.front_written), (Some((4, 7)), 0));
        i.written(7);
        assert!(i.queued.is_empty());
    }

    #[test]
    fn frames_are_encoded_in_place() {
        let req = RequestPacket { i_version: 1, i_request_id: 9, s_func_name: "f".into(), ..Default::default() };
        let mut out = BytesMut::from(&b"xy"[..]);
        encode_into(&mut out, &req);
        assert_eq!(&out[2..], &tars_proto::frame::encode_frame(&req)[..]);
    }
}
