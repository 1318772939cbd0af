//! The type-erased servant a server adapter calls.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use bytes::Bytes;

use crate::rpc::{Current, ServantError};

/// What a servant's call resolves to: the call (with any response context it set) and the
/// encoded results or the error for the reply.
pub type DispatchFuture = Pin<Box<dyn Future<Output = (Current, Result<Bytes, ServantError>)>>>;

/// A servant as the server sees it. Generated code implements it for `<Iface>Servant<S>`
/// (a wrapper around any implementation of the IDL trait); servants with a fast path
/// (the registry's QueryObj, tarsstat's StatObj) implement it by hand.
///
/// One instance lives on each shard (built there by the factory given to the server), so it
/// may hold `Rc`/`RefCell` state without locks. The future must not block the thread: send
/// blocking work to a dedicated thread through a channel.
pub trait Dispatch: 'static {
    /// Runs the call named by `current.func` with parameters `body`.
    fn dispatch(self: Rc<Self>, current: Current, body: Bytes) -> DispatchFuture;
}
