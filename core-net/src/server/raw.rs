//! Adapters with `protocol=not_tars`: a byte protocol of the service's own, served by the same
//! shards, accept loop, allow list and connection limits as TARS adapters.
//!
//! A [`RawServant`] says, sans-IO, where a packet ends (its [`Framer`], one per connection,
//! resumable so a packet trickling in is scanned once, not once per read) and answers one
//! packet with bytes ([`RawServant::handle`]), choosing whether the connection closes after the
//! answer. The connection here is deliberately simpler than the TARS one: one request at a time
//! (the protocols this is for, upstream's `NoTarsObj` JSON, are one request per connection), so
//! its memory is the input buffer and one answer. A read asks for at most
//! [`RawServant::max_frame`] + 1 bytes in all, though one read may bring up to twice that; the
//! framer sees no more than the limit + 1, so no packet is longer than the limit.
//!
//! Limits, from the adapter's `-t` (idle timeout): a packet must be complete within it (idle or
//! trickling peers are cut), an answer must be taken within it. A packet over the limit or one
//! the framer refuses gets [`RawServant::refused`]'s answer, then the connection closes. A
//! handler that panics closes its connection; the shard serves on.
//!
//! Register with [`super::ServerBuilder::raw_servant`]. An adapter declaring `not_tars` with no
//! raw servant, or a raw servant named by a `tars` adapter, is a start error.

use std::future::Future;
use std::net::{Shutdown, SocketAddr};
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_lite::FutureExt;

use super::conn::ConnShared;
use super::shard::{AdapterRt, ShardServer};
use crate::rt::{self, net::TcpStream, ShardInfo};

/// The default largest packet of a raw adapter.
pub const DEFAULT_RAW_MAX_FRAME: usize = 64 * 1024;

/// Bytes read (and dropped) after a closing answer, so the peer's unread tail does not turn
/// the close into a reset that could destroy the answer in flight.
const LINGER_BYTES: usize = 64 * 1024;
/// How long that tail may take.
const LINGER: Duration = Duration::from_secs(2);

/// Why the bytes so far can never become a packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// No packet ended within the limit.
    #[error("request larger than {limit} bytes")]
    TooLarge {
        /// The limit ([`RawServant::max_frame`]).
        limit: usize,
    },
    /// The protocol's own reason (bad bytes, bytes after the packet, …).
    #[error("malformed request: {0}")]
    Malformed(String),
}

/// One answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawReply {
    /// What is written back.
    pub bytes: Bytes,
    /// Close the connection once written.
    pub close: bool,
}

/// The future of one answer.
pub type RawFuture = Pin<Box<dyn Future<Output = RawReply>>>;

/// Where packets end, for one connection. Sans-IO.
pub trait Framer {
    /// `Ok(Some(n))` when the first `n` bytes of `buf` (`0 < n <= buf.len()`) are one packet,
    /// `Ok(None)` when more bytes are needed, `Err` when they never will be. `buf` is
    /// everything received since the last packet, up to `max_frame() + 1` bytes: each call
    /// until a packet is found sees the previous call's bytes and more, so a framer may resume
    /// where it stopped; after `Some` it starts over on the bytes that follow.
    fn frame(&mut self, buf: &[u8]) -> Result<Option<usize>, FrameError>;
}

/// A servant speaking its own byte protocol; one instance per shard.
pub trait RawServant: 'static {
    /// The largest packet accepted; more bytes without a complete packet is
    /// [`FrameError::TooLarge`].
    fn max_frame(&self) -> usize {
        DEFAULT_RAW_MAX_FRAME
    }

    /// A framer for a new connection.
    fn framer(&self) -> Box<dyn Framer>;

    /// What is written before closing a connection whose input was refused (`None`: nothing).
    fn refused(&self, error: &FrameError) -> Option<Bytes> {
        let _ = error;
        None
    }

    /// Answers one packet from `peer`.
    fn handle(self: Rc<Self>, packet: Bytes, peer: SocketAddr) -> RawFuture;
}

/// Builds a raw servant instance on a shard.
pub type RawFactory = std::sync::Arc<dyn Fn(ShardInfo) -> Rc<dyn RawServant> + Send + Sync>;

/// What one read towards a packet ended with.
enum Next {
    Packet(Bytes),
    Refused(FrameError),
    /// The peer closed, the read failed, or the server stops.
    Gone,
}

/// Serves one connection of a raw adapter until it closes.
pub(super) async fn serve(
    mut stream: TcpStream,
    peer: SocketAddr,
    adapter: Rc<AdapterRt>,
    servant: Rc<dyn RawServant>,
    shard: Rc<ShardServer>,
    shared: Rc<ConnShared>,
) {
    let limit = servant.max_frame().max(1);
    let idle = adapter.config.idle_timeout.max(Duration::from_millis(10));
    let mut input = BytesMut::new();
    let mut framer = servant.framer();
    loop {
        let next = std::future::poll_fn(|cx| {
            loop {
                while shared.notify.poll_notified(cx).is_ready() {}
                if shard.stopping.get() {
                    return Poll::Ready(Next::Gone);
                }
                if !input.is_empty() {
                    // A read may bring more than asked for (edge-triggered epoll drains):
                    // the framer never sees past the limit, so a packet cannot end beyond it.
                    let seen = input.len().min(limit + 1);
                    match framer.frame(&input[..seen]) {
                        Ok(Some(n)) if n > limit => {
                            return Poll::Ready(Next::Refused(FrameError::TooLarge { limit }));
                        }
                        Ok(Some(n)) if n > 0 && n <= seen => {
                            return Poll::Ready(Next::Packet(input.split_to(n).freeze()));
                        }
                        Ok(Some(n)) => {
                            let e = format!("the framer gave {n} bytes of {seen}");
                            return Poll::Ready(Next::Refused(FrameError::Malformed(e)));
                        }
                        Ok(None) if seen > limit => {
                            return Poll::Ready(Next::Refused(FrameError::TooLarge { limit }));
                        }
                        Ok(None) => {}
                        Err(e) => return Poll::Ready(Next::Refused(e)),
                    }
                }
                // One byte past the limit is enough to know it is exceeded.
                let room = (limit + 1).saturating_sub(input.len()).max(1);
                match stream.poll_read_buf(cx, &mut input, room) {
                    Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => return Poll::Ready(Next::Gone),
                    Poll::Ready(Ok(_)) => {}
                    Poll::Pending => return Poll::Pending,
                }
            }
        });
        // A packet must arrive whole within `-t`: idle and trickling peers alike.
        let next = match rt::timeout(idle, next).await {
            Ok(n) => n,
            Err(_) => {
                tracing::debug!(%peer, adapter = %adapter.config.name, "no complete request in time; closing");
                return;
            }
        };
        let reply = match next {
            Next::Gone => return,
            Next::Refused(e) => {
                crate::limited!(debug, %peer, adapter = %adapter.config.name, error = %e, "raw request refused; closing");
                match servant.refused(&e) {
                    Some(bytes) => RawReply { bytes, close: true },
                    None => return,
                }
            }
            Next::Packet(packet) => {
                shard.count_request(&adapter);
                if input.is_empty() {
                    input = BytesMut::new();
                }
                match AssertUnwindSafe(servant.clone().handle(packet, peer)).catch_unwind().await {
                    Ok(r) => r,
                    Err(panic) => {
                        crate::limited!(error, panic = %rt::panic_message(&*panic), adapter = %adapter.config.name, "raw servant panicked; closing");
                        return;
                    }
                }
            }
        };
        match rt::timeout(idle, stream.write_all(&reply.bytes)).await {
            Ok(Ok(())) => {}
            _ => {
                let _ = stream.set_abortive_close();
                return;
            }
        }
        if reply.close || shard.stopping.get() {
            linger(&mut stream).await;
            return;
        }
    }
}

/// Ends our side, then reads what the peer still sends (bounded in bytes and time) so the
/// close is a FIN after the answer, not a reset.
async fn linger(stream: &mut TcpStream) {
    if stream.shutdown(Shutdown::Write).is_err() {
        return;
    }
    let drain = async {
        let mut seen = 0;
        let mut buf = BytesMut::new();
        while seen < LINGER_BYTES {
            buf.clear();
            match stream.read_buf(&mut buf, 16 * 1024).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen += n,
            }
        }
    };
    let _ = rt::timeout(LINGER, drain).await;
}
