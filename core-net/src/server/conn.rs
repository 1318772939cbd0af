//! One accepted connection, driven as a hand-written state machine on its shard.
//!
//! Each turn: collect replies finished by spawned calls, flush output, then read and handle
//! every complete frame. Requests are pipelined: a call that completes on its first poll
//! (the common case) is answered inline, in order, with no task spawned; a call that waits
//! becomes a task whose reply is appended when it finishes, so replies may overtake each
//! other, as TARS request ids allow. All replies produced in one turn leave in one write.
//!
//! Memory per connection is bounded: a frame over the decoder's limit closes the
//! connection, and once `HIGH_WATER` bytes of replies wait for a peer that does not read,
//! we stop reading its requests until it does. A peer that takes its replies slower than
//! [`MIN_DRAIN`] bytes per idle period is closed, so a trickle of reads cannot hold the
//! output forever. A call that waits keeps its request's bytes alive, and a frame shares its
//! allocation with whatever else arrived in the same read; so while a connection has a call
//! waiting, the next requests' bodies are copied out: calls that wait pin at most one read's
//! buffer per connection, plus their own bodies.
//!
//! `queuecap` is shared: while other connections are open on the adapter, one connection
//! may hold at most half of it, so one pipelining peer cannot take every slot.
//!
//! Every call carries the connection's [`PushHandle`], so a servant can push to that client
//! later, from any thread: pushes wait in a bounded queue (refused as full beyond it) and leave
//! with the next turn's replies; once the connection ends every handle reports it closed.
//!
//! On an adapter whose endpoint has `-e 1`, the connection first runs the handshake
//! ([`crate::auth`]): one frame of at most [`MAX_HANDSHAKE_FRAME`] bytes, within the idle
//! timeout, checked against the adapter's keys, answered with the state's name; only then does
//! the poll loop above start, so nothing is dispatched before it passes, and adapters without
//! `-e 1` pay one branch per connection.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use futures_lite::{FutureExt, StreamExt};

use super::shard::{AdapterRt, Handler, ShardServer};
use crate::auth::{self, MAX_HANDSHAKE_FRAME};
use crate::rt::{self, net::TcpStream, sync::Notify};
use tars_proto::codec::Struct;
use tars_proto::frame::FrameDecoder;
use tars_proto::packet::{packet_type, ret, RequestPacket, PING_FUNC};
use tars_proto::push::{PushError, PushHandle, PushSink};
use tars_proto::rpc::{reply_frame, reply_into, Current, ServantError};

/// Replies queued beyond this stop us reading more requests from the connection.
const HIGH_WATER: usize = 4 * 1024 * 1024;
/// Bytes read per turn before handling what arrived.
const READ_MAX: usize = 256 * 1024;
/// Turns a busy connection takes before yielding to its shard's other tasks.
const TURN_BUDGET: usize = 16;
/// A connection's input buffer is given back when it empties above this capacity.
const KEEP_CAPACITY: usize = 64 * 1024;
/// While output waits, the peer must take at least this much of it (or all of it) per idle
/// period; a peer slower than that is closed.
pub(super) const MIN_DRAIN: usize = 64 * 1024;
/// Pushes that may wait for a connection before more are refused as [`PushError::Full`].
const PUSH_QUEUE: usize = 1024;

/// A connection's push queue, fed from any thread ([`PushHandle`]) and drained by the
/// connection on its shard. Unbounded underneath, because a bounded channel allocates all its
/// slots up front (tens of KiB per connection, for a feature most connections never use);
/// `queued` bounds it instead.
struct ChannelSink {
    tx: async_channel::Sender<Bytes>,
    queued: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl PushSink for ChannelSink {
    fn send(&self, frame: Bytes) -> Result<(), PushError> {
        use std::sync::atomic::Ordering;
        if self.queued.fetch_add(1, Ordering::AcqRel) >= PUSH_QUEUE {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            return Err(PushError::Full);
        }
        self.tx.try_send(frame).map_err(|_| {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            PushError::Closed
        })
    }

    fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

/// State shared between a connection and the calls it spawned. Lives on one shard.
#[derive(Debug, Default)]
pub(super) struct ConnShared {
    replies: RefCell<Vec<Bytes>>,
    inflight: Cell<usize>,
    /// Wakes the connection for a finished call or for shutdown.
    pub(super) notify: Notify,
}

/// One connection of one adapter. Lives on the shard that accepted it.
pub(super) struct Conn {
    stream: TcpStream,
    peer: SocketAddr,
    adapter: Rc<AdapterRt>,
    shard: Rc<ShardServer>,
    shared: Rc<ConnShared>,
    decoder: FrameDecoder,
    input: BytesMut,
    out: BytesMut,
    write_armed: bool,
    read_closed: bool,
    last_read: Instant,
    last_write: Instant,
    /// When the frame now partly in `input` began to arrive: a peer trickling bytes
    /// (slowloris) resets `last_read` forever, but not this.
    partial_since: Option<Instant>,
    /// Complete frames may wait in `input`, held back by [`HIGH_WATER`].
    input_held: bool,
    /// When the last bytes were read.
    read_at: Instant,
    /// Since when output has been waiting without a break.
    out_since: Option<Instant>,
    /// Bytes written since the idle timer last fired.
    drained: usize,
    timer: Option<Pin<Box<dyn Future<Output = ()>>>>,
    /// Handed to every call, so a servant can push to this client later.
    push: PushHandle,
    /// Pushes waiting to be written; dropping it tells every handle the connection is gone.
    pushed: Pin<Box<async_channel::Receiver<Bytes>>>,
    /// How many of them: the bound [`ChannelSink`] checks.
    push_queued: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

enum Close {
    Done,
}

impl Conn {
    pub(super) fn new(
        id: u64,
        stream: TcpStream,
        peer: SocketAddr,
        adapter: Rc<AdapterRt>,
        shard: Rc<ShardServer>,
        shared: Rc<ConnShared>,
    ) -> Conn {
        let now = Instant::now();
        let (tx, rx) = async_channel::unbounded();
        let queued = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        Conn {
            push: PushHandle::new(id, std::sync::Arc::new(ChannelSink { tx, queued: queued.clone() })),
            pushed: Box::pin(rx),
            push_queued: queued,
            stream,
            peer,
            decoder: adapter.decoder.clone(),
            adapter,
            shard,
            shared,
            input: BytesMut::new(),
            out: BytesMut::new(),
            write_armed: false,
            read_closed: false,
            last_read: now,
            last_write: now,
            partial_since: None,
            input_held: false,
            read_at: now,
            out_since: None,
            drained: 0,
            timer: None,
        }
    }

    /// Serves the connection until it closes.
    pub(super) async fn run(mut self) {
        if self.adapter.config.requires_auth() && !self.authenticate().await {
            return;
        }
        std::future::poll_fn(|cx| self.poll(cx)).await;
    }

    /// The `-e 1` handshake; `true` when the connection may be served. A refusal is answered
    /// (when the frame was a request at all) before the connection closes.
    async fn authenticate(&mut self) -> bool {
        let limit = self.adapter.config.idle_timeout;
        let mut decoder = FrameDecoder::with_max_frame(MAX_HANDSHAKE_FRAME).unwrap_or_default();
        let frame = match rt::timeout(limit, std::future::poll_fn(|cx| self.poll_first_frame(cx, &mut decoder))).await {
            Ok(Some(frame)) => frame,
            Ok(None) => return false,
            Err(_) => {
                tracing::debug!(peer = %self.peer, adapter = %self.adapter.config.name, "no handshake in time; closing");
                return false;
            }
        };
        let config = &self.adapter.config;
        let verdict = auth::check_request(&frame, &config.servant, config.auth.as_ref(), unix_now());
        if let Some(reply) = &verdict.reply {
            self.out.extend_from_slice(reply);
        }
        if verdict.is_success() {
            tracing::debug!(peer = %self.peer, adapter = %config.name, "authenticated");
            self.last_read = Instant::now();
            self.read_at = self.last_read;
            // Requests sent right behind the handshake arrived with it: no read will announce them.
            self.input_held = !self.input.is_empty();
            return true;
        }
        crate::limited!(warn, peer = %self.peer, adapter = %config.name, state = ?verdict.state, "authentication failed; closing");
        let _ = rt::timeout(limit, std::future::poll_fn(|cx| self.poll_flushed(cx))).await;
        false
    }

    /// Reads until the first frame is complete; `None` when the peer closes or errs first,
    /// the frame is too large, or the server stops.
    fn poll_first_frame(&mut self, cx: &mut Context<'_>, decoder: &mut FrameDecoder) -> Poll<Option<Bytes>> {
        loop {
            while self.shared.notify.poll_notified(cx).is_ready() {}
            if self.shard.stopping.get() {
                return Poll::Ready(None);
            }
            match decoder.decode(&mut self.input) {
                Ok(Some(frame)) => return Poll::Ready(Some(frame)),
                Ok(None) => {}
                Err(e) => {
                    crate::limited!(warn, peer = %self.peer, adapter = %self.adapter.config.name, error = %e, "bad handshake frame; closing");
                    return Poll::Ready(None);
                }
            }
            match self.stream.poll_read_buf(cx, &mut self.input, READ_MAX) {
                Poll::Ready(Ok(0)) => return Poll::Ready(None),
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(e)) => {
                    tracing::debug!(peer = %self.peer, error = %e, "read failed; closing");
                    return Poll::Ready(None);
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// Ready once every queued byte is written or writing failed.
    fn poll_flushed(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.flush(cx).is_err() || self.out.is_empty() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut turns = 0;
        loop {
            turns += 1;
            if turns > TURN_BUDGET {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            // Consume any notification and leave our waker registered before looking at
            // replies, so a reply pushed after this point wakes us again.
            while self.shared.notify.poll_notified(cx).is_ready() {}
            for r in self.shared.replies.borrow_mut().drain(..) {
                self.out.extend_from_slice(&r);
            }
            while let Poll::Ready(Some(frame)) = self.pushed.as_mut().poll_next(cx) {
                self.push_queued.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
                self.out.extend_from_slice(&frame);
            }
            if self.flush(cx).is_err() {
                return Poll::Ready(());
            }
            let stopping = self.shard.stopping.get();
            if (self.read_closed || stopping) && self.shared.inflight.get() == 0 && self.out.is_empty() {
                return Poll::Ready(());
            }
            if self.out.len() >= HIGH_WATER {
                break;
            }
            if self.input_held {
                // Frames held back while output was over the high-water mark.
                if self.handle_input(cx).is_err() {
                    let _ = self.flush(cx);
                    return Poll::Ready(());
                }
                continue;
            }
            if self.read_closed || stopping {
                break;
            }
            match self.stream.poll_read_buf(cx, &mut self.input, READ_MAX) {
                Poll::Ready(Ok(0)) => self.read_closed = true,
                Poll::Ready(Ok(_)) => {
                    self.last_read = Instant::now();
                    self.read_at = self.last_read;
                    if self.handle_input(cx).is_err() {
                        // A protocol error: answer what was answered, then close.
                        let _ = self.flush(cx);
                        return Poll::Ready(());
                    }
                }
                Poll::Ready(Err(e)) => {
                    tracing::debug!(peer = %self.peer, error = %e, "read failed; closing");
                    return Poll::Ready(());
                }
                Poll::Pending => break,
            }
        }
        self.poll_timer(cx)
    }

    /// Writes queued output until done or the socket is full.
    fn flush(&mut self, cx: &mut Context<'_>) -> Result<(), Close> {
        while !self.out.is_empty() {
            match self.stream.poll_write_some(cx, &self.out) {
                Poll::Ready(Ok(0)) => return Err(Close::Done),
                Poll::Ready(Ok(n)) => {
                    self.out.advance(n);
                    self.drained = self.drained.saturating_add(n);
                    self.last_write = Instant::now();
                }
                Poll::Ready(Err(e)) => {
                    tracing::debug!(peer = %self.peer, error = %e, "write failed; closing");
                    return Err(Close::Done);
                }
                Poll::Pending => {
                    self.write_armed = true;
                    self.out_since.get_or_insert_with(Instant::now);
                    return Ok(());
                }
            }
        }
        self.out_since = None;
        if self.write_armed {
            self.write_armed = false;
            if self.stream.write_idle().is_err() {
                return Err(Close::Done);
            }
        }
        Ok(())
    }

    /// Closes a connection idle for the adapter's timeout (`-t`), whose peer has taken less
    /// than [`MIN_DRAIN`] of waiting output in that long, or whose current frame has taken
    /// that long to arrive.
    fn poll_timer(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let idle = self.adapter.config.idle_timeout;
        loop {
            let timer = self.timer.get_or_insert_with(|| {
                let deadline = Instant::now() + idle.max(Duration::from_millis(10));
                Box::pin(rt::sleep_until(deadline))
            });
            if timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.timer = None;
            let now = Instant::now();
            let drained = std::mem::take(&mut self.drained);
            let stalled_write = !self.out.is_empty()
                && self.out_since.is_some_and(|t| now.duration_since(t) >= idle)
                && drained < MIN_DRAIN;
            let idle_read =
                self.shared.inflight.get() == 0 && self.out.is_empty() && now.duration_since(self.last_read) >= idle;
            let slow_frame = self.partial_since.is_some_and(|t| now.duration_since(t) >= idle);
            if stalled_write || idle_read || slow_frame {
                tracing::debug!(peer = %self.peer, adapter = %self.adapter.config.name, "idle timeout; closing");
                if stalled_write {
                    // Else the kernel would go on feeding it the megabytes still in the socket.
                    let _ = self.stream.set_abortive_close();
                }
                return Poll::Ready(());
            }
        }
    }

    /// Handles every complete frame in the input buffer.
    fn handle_input(&mut self, cx: &mut Context<'_>) -> Result<(), Close> {
        // Queue time counts from when the bytes arrived, including any time the frames were
        // held back by a peer not reading its replies.
        let received = self.read_at;
        self.input_held = false;
        loop {
            if self.out.len() >= HIGH_WATER {
                // The peer is not taking its replies: answer no more until it does.
                self.input_held = true;
                return Ok(());
            }
            match self.decoder.decode(&mut self.input) {
                Ok(Some(frame)) => self.handle_frame(cx, frame, received)?,
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!(peer = %self.peer, error = %e, "bad frame; closing");
                    return Err(Close::Done);
                }
            }
        }
        if self.input.is_empty() {
            self.partial_since = None;
            if self.input.capacity() > KEEP_CAPACITY {
                self.input = BytesMut::new();
            }
        } else if self.partial_since.is_none() {
            self.partial_since = Some(received);
        }
        Ok(())
    }

    fn handle_frame(&mut self, cx: &mut Context<'_>, frame: Bytes, received: Instant) -> Result<(), Close> {
        let req = match RequestPacket::decode_bytes(&frame) {
            Ok(r) => r,
            Err(e) => {
                // As TarsCpp: a request that does not decode closes the connection.
                tracing::debug!(peer = %self.peer, error = %e, "undecodable request; closing");
                return Err(Close::Done);
            }
        };
        self.shard.count_request(&self.adapter);
        let (mut current, body) = Current::from_packet(req, Some(self.peer));
        if current.func == PING_FUNC {
            // An empty result in the request's own encoding: TUP clients decode even this one.
            // Not counted in the call statistics: it is the framework's probe, not a call.
            let empty = tars_proto::rpc::ParamWriter::new(current.version).finish();
            reply_into(&mut self.out, &current, Ok(empty));
            return Ok(());
        }
        if current.servant != self.adapter.config.servant {
            let e = ServantError::new(ret::NO_SERVANT, format!("no servant '{}' on this adapter", current.servant));
            self.reply(&current, Err(e), received);
            return Ok(());
        }
        let waited = Instant::now().duration_since(received);
        let client_limit = u64::try_from(current.timeout_ms).ok().filter(|&t| t > 0).map(Duration::from_millis);
        if waited > self.adapter.config.queue_timeout || client_limit.is_some_and(|l| waited > l) {
            let e =
                ServantError::new(ret::QUEUE_TIMEOUT, format!("request waited {} ms in the queue", waited.as_millis()));
            self.reply(&current, Err(e), received);
            return Ok(());
        }
        let cap = self.adapter.config.queue_cap;
        if cap > 0 {
            let full = self.adapter.inflight.get() >= cap;
            let over_share = self.adapter.conns.get() > 1 && self.shared.inflight.get() >= (cap / 2).max(1);
            if full || over_share {
                let why = if full { "server queue is full" } else { "this connection holds half the server queue" };
                self.reply(&current, Err(ServantError::new(ret::OVERLOAD, why)), received);
                return Ok(());
            }
        }
        // The frame's allocation is shared with everything else read with it: a call that
        // waits would keep all of it alive, so once one does, the next bodies are copied.
        let body = if self.shared.inflight.get() > 0 { Bytes::copy_from_slice(&body) } else { body };
        current.push = Some(self.push.clone());
        let oneway = current.packet_type == packet_type::ONEWAY;
        let envelope = Envelope::of(&current, self.shard.stats.is_some() && !oneway);
        // A hand-written servant may do its work before returning the future (the fast
        // paths): a panic there is caught too, and answered like one inside the future.
        let Handler::Tars(servant) = &self.adapter.handler else { return Err(Close::Done) };
        let servant = servant.clone();
        let mut fut = match std::panic::catch_unwind(AssertUnwindSafe(move || servant.dispatch(current, body))) {
            Ok(f) => AssertUnwindSafe(f).catch_unwind(),
            Err(panic) => {
                let (current, result, _) = settle(Err(panic), envelope);
                if !oneway {
                    self.reply(&current, result, received);
                }
                return Ok(());
            }
        };
        match Pin::new(&mut fut).poll(cx) {
            Poll::Ready(done) => {
                let (current, result, _) = settle(done, envelope);
                if !oneway {
                    self.reply(&current, result, received);
                }
            }
            Poll::Pending => {
                let shared = self.shared.clone();
                let adapter = self.adapter.clone();
                let shard = self.shard.clone();
                let caller = self.peer.ip();
                shared.inflight.set(shared.inflight.get() + 1);
                adapter.inflight.set(adapter.inflight.get() + 1);
                rt::spawn(async move {
                    let (current, result, func) = settle(fut.await, envelope);
                    shared.inflight.set(shared.inflight.get() - 1);
                    adapter.inflight.set(adapter.inflight.get() - 1);
                    if let (Some(stats), Some(func)) = (&shard.stats, func) {
                        stats.served(caller, &func, result_code(&result), received.elapsed());
                    }
                    if let Some(frame) = reply_frame(&current, result) {
                        shared.replies.borrow_mut().push(frame);
                    }
                    shared.notify.notify();
                })
                .detach();
            }
        }
        Ok(())
    }

    /// Answers a twoway call that arrived at `received`, counting it in the shard's call
    /// statistics.
    fn reply(&mut self, current: &Current, result: Result<Bytes, ServantError>, received: Instant) {
        if let Some(stats) = &self.shard.stats {
            stats.served(self.peer.ip(), &current.func, result_code(&result), received.elapsed());
        }
        reply_into(&mut self.out, current, result);
    }
}

/// The wall clock in seconds since the epoch, what handshake times are compared with.
fn unix_now() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since.as_secs()).unwrap_or(i64::MAX)
}

/// The `iRet` a reply carries.
fn result_code(result: &Result<Bytes, ServantError>) -> i32 {
    result.as_ref().map_or_else(|e| e.code, |_| ret::SUCCESS)
}

type Settled = (Current, Result<Bytes, ServantError>);

/// What a reply needs from its call, kept aside in case the servant panics and takes the
/// call's [`Current`] with it.
struct Envelope {
    version: i16,
    packet_type: i8,
    message_type: i32,
    request_id: i32,
    /// TUP replies repeat servant and function; other versions do not need them.
    names: Option<(String, String)>,
    /// The function, for the call statistics of a call answered later.
    stat_func: Option<String>,
}

impl Envelope {
    fn of(c: &Current, counted: bool) -> Envelope {
        Envelope {
            version: c.version,
            packet_type: c.packet_type,
            message_type: c.message_type,
            request_id: c.request_id,
            names: (c.version == tars_proto::packet::version::TUP).then(|| (c.servant.clone(), c.func.clone())),
            stat_func: counted.then(|| c.func.clone()),
        }
    }
}

/// The call's outcome and the function it counts under. A servant that panicked answers
/// −99 instead of taking the shard down.
fn settle(
    done: Result<Settled, Box<dyn std::any::Any + Send>>,
    envelope: Envelope,
) -> (Current, Result<Bytes, ServantError>, Option<String>) {
    let func = envelope.stat_func.clone();
    let (current, result) = settle_panic(done, envelope);
    (current, result, func)
}

fn settle_panic(done: Result<Settled, Box<dyn std::any::Any + Send>>, envelope: Envelope) -> Settled {
    match done {
        Ok(d) => d,
        Err(panic) => {
            let what = rt::panic_message(&*panic);
            crate::limited!(error, panic = %what, "servant panicked");
            let (servant, func) = envelope.names.unwrap_or_default();
            let current = Current {
                version: envelope.version,
                packet_type: envelope.packet_type,
                message_type: envelope.message_type,
                request_id: envelope.request_id,
                servant,
                func,
                ..Current::default()
            };
            (current, Err(ServantError::unknown(format!("servant panicked: {what}"))))
        }
    }
}
