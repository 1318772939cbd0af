//! Server push: a `ResponsePacket` that no call asked for, sent on a connection the client
//! opened. TarsCpp's `Current::sendPushResponse` gives it request id 0 (which clients never use
//! for calls), `iVersion` 1 and the function name in `status["TARS_FUNC"]`; tarsAdminRegistry
//! reaches its nodes this way (`NodePush.tars`), on the connection each node keeps open.
//!
//! A server hands its servants a [`PushHandle`] for the connection a call arrived on
//! ([`crate::rpc::Current::push`]); the handle may be kept after the call and moved to another
//! thread, and says when the connection is gone. What carries the frame is the runtime's
//! business ([`PushSink`]).

use std::fmt;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use crate::frame::encode_frame_into;
use crate::packet::{packet_type, ret, status_key, ResponsePacket, StringMap};

/// The request id of every push.
pub const PUSH_REQUEST_ID: i32 = 0;

/// A push could not be queued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    /// The connection has closed.
    #[error("the connection is closed")]
    Closed,
    /// The connection's push queue is full (its peer does not read).
    #[error("the connection's push queue is full")]
    Full,
}

/// Where a connection's pushes go: implemented by the runtime, for one connection.
pub trait PushSink: Send + Sync {
    /// Queues one framed packet for the connection.
    fn send(&self, frame: Bytes) -> Result<(), PushError>;
    /// The connection has closed: nothing sent now would arrive.
    fn is_closed(&self) -> bool;
}

/// One connection's push side; cheap to clone, usable from any thread.
#[derive(Clone)]
pub struct PushHandle {
    id: u64,
    sink: Arc<dyn PushSink>,
}

impl fmt::Debug for PushHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PushHandle").field("id", &self.id).field("closed", &self.is_closed()).finish()
    }
}

impl PushHandle {
    /// The handle of connection `id` (unique within the process), pushing through `sink`.
    pub fn new(id: u64, sink: Arc<dyn PushSink>) -> PushHandle {
        PushHandle { id, sink }
    }

    /// The connection's id: two handles with one id are the same connection.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The connection has closed.
    pub fn is_closed(&self) -> bool {
        self.sink.is_closed()
    }

    /// Pushes `func` with `body` (its parameters, encoded for `version`).
    pub fn push(&self, func: &str, version: i16, body: Bytes) -> Result<(), PushError> {
        if self.sink.is_closed() {
            return Err(PushError::Closed);
        }
        self.sink.send(push_frame(func, version, body))
    }
}

/// The framed push of `func` with `body`, as TarsCpp's `sendPushResponse` builds it.
pub fn push_frame(func: &str, version: i16, body: Bytes) -> Bytes {
    let mut status = StringMap::new();
    status.insert(status_key::TARS_FUNC.to_owned(), func.to_owned());
    let mut out = BytesMut::new();
    encode_frame_into(
        &mut out,
        &ResponsePacket {
            i_version: version,
            c_packet_type: packet_type::NORMAL,
            i_request_id: PUSH_REQUEST_ID,
            i_message_type: 0,
            i_ret: ret::SUCCESS,
            s_buffer: body,
            status,
            s_result_desc: String::new(),
            context: StringMap::new(),
        },
    );
    out.freeze()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::rpc::Reply;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Collect(Mutex<Vec<Bytes>>, std::sync::atomic::AtomicBool);

    impl PushSink for Collect {
        fn send(&self, frame: Bytes) -> Result<(), PushError> {
            self.0.lock().unwrap().push(frame);
            Ok(())
        }
        fn is_closed(&self) -> bool {
            self.1.load(std::sync::atomic::Ordering::Relaxed)
        }
    }

    #[test]
    fn a_push_decodes_as_a_reply_with_id_zero_and_its_function_name() {
        let sink = Arc::new(Collect::default());
        let handle = PushHandle::new(7, sink.clone());
        handle.push("startServer", 1, Bytes::from_static(b"\x0c")).unwrap();
        let frame = sink.0.lock().unwrap().pop().unwrap();
        let reply = Reply::decode(&frame.slice(4..)).unwrap();
        assert_eq!(reply.request_id, 0);
        assert_eq!(reply.version, 1);
        assert_eq!(reply.status.get(status_key::TARS_FUNC).map(String::as_str), Some("startServer"));
        assert_eq!(&reply.body[..], b"\x0c");
        sink.1.store(true, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(handle.push("ping", 1, Bytes::new()), Err(PushError::Closed));
        assert!(sink.0.lock().unwrap().is_empty());
    }
}
