//! The TARS client: a shard-local communicator, object proxies, pipelined connections and
//! the locator.
//!
//! # Map
//!
//! - [`Communicator`] (`communicator.rs`): one per shard, made from a [`config::ClientConfig`].
//!   [`Communicator::proxy`] turns an object string into an [`ObjectProxy`], caching the
//!   object's state by its canonical string, so proxies of one object share endpoints and
//!   connections.
//! - [`ObjectProxy`]: cheap to clone; implements [`rpc::Transport`](tars_proto::rpc::Transport), so a
//!   generated `XxxProxy::new(object_proxy, "App.S.Obj")` calls through it. Per-handle options:
//!   [`ObjectProxy::with_hash`], [`ObjectProxy::with_timeout`].
//! - [`balance::EndpointSet`] (sans-IO): which endpoint takes the next call (round robin,
//!   static weights, hash), failure marks, and the refresh that keeps the last good list.
//! - `conn.rs`: one pipelined TCP connection per endpoint per shard (TarsCpp's
//!   `AdapterProxy`), a hand-written poll state machine like the server's connection.
//! - [`locator`]: the `QueryF` calls through `tars-protocol`'s generated proxy
//!   (`findObjectById4Any`, or `findObjectByIdInSameSet` with a set division).
//! - [`BlockingClient`] (`blocking.rs`): a communicator on a dedicated thread, for callers
//!   outside any shard.
//!
//! # Invariants
//!
//! - **Shard-local.** A communicator, its proxies and connections live on the shard that made
//!   them (`Rc`, `RefCell`, no locks, nothing `Send`). Each shard that calls makes its own.
//! - **Request ids** come from a per-shard `u32` counter, start at 1, wrap from `u32::MAX` to 1
//!   and never take 0, which server pushes use; an id still waiting on the same connection is
//!   skipped. A reply with id 0 is a push: handed to the handler set with
//!   [`Communicator::on_push`] (it runs on the shard, inside the connection's turn, so it only
//!   queues work), or logged and ignored when there is none. A reply
//!   for an id no longer registered (its call timed out) is dropped.
//! - **Pipelining.** Any number of calls wait on one connection; every request queued in one
//!   turn of the shard leaves in one write. At most 16 MiB of requests wait to be written per
//!   connection; beyond that calls fail with `CallError::Send` instead of buffering without
//!   bound.
//! - **Timeouts.** A call's deadline is [`ObjectProxy::with_timeout`]'s if set, else the
//!   request's `iTimeout` (ms) when positive, else the config's `sync-invoke-timeout`; that
//!   deadline is also sent as `iTimeout`. It covers everything: waiting for the locator's first
//!   answer, connecting, and the reply. On expiry the call gets `CallError::Timeout` and its id
//!   is unregistered; the connection carries on.
//! - **Oneway** requests (`cPacketType` 1) resolve, with an empty [`Reply`](tars_proto::rpc::Reply),
//!   as soon as they are queued (so one queued on a connection that then fails is lost, as in
//!   TarsCpp).
//! - **Reconnect.** Connections open lazily on first use. When a connect fails or a
//!   connection breaks, the calls waiting on it fail with `CallError::Connect`, except requests
//!   not a byte of which was written: those are sent to another endpoint of the object (at
//!   most once per endpoint). The connection is then down for a backoff of 50 ms, doubling up to
//!   5 s and reset by a successful connect; meanwhile selection marks the endpoint failed in
//!   every object's set (so the other endpoints take the traffic) and calls that still land on
//!   it (all endpoints down) fail fast with `CallError::Connect`. The first call after the
//!   backoff reconnects. A peer closing an idle connection is not a failure.
//! - **Locator.** An indirect object (`App.S.Obj`) is resolved through the config's locator on
//!   its first call; calls made before the first answer wait for it (within their deadline) and
//!   get `CallError::NoEndpoint` if it fails. A background task then asks again every
//!   `refresh-endpoint-interval` (and at once when a call finds no endpoint). An answer that
//!   fails or holds no active TCP endpoint is logged and ignored: the last good list stays.
//! - **`#` suffixes.** As in TarsCpp, `App.S.Obj#k@…` gets connections of its own, separate
//!   from those of `App.S.Obj@…`, and `k` is its default hash key (its value if numeric, else
//!   its FNV-1a hash), so its calls stick to one endpoint.
//! - Only TCP endpoints are used; UDP and SSL endpoints are ignored with a warning.

pub use tars_proto::balance;
mod blocking;
mod communicator;
pub mod config;
mod conn;
pub mod locator;

pub use blocking::BlockingClient;
pub use communicator::{ClientError, Communicator, ObjectProxy};
pub use conn::{Push, INITIAL_BACKOFF, MAX_BACKOFF, MAX_UNSENT};
