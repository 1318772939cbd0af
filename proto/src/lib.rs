//! The TARS protocol, sans-IO.
//!
//! - [`codec`]: the tag/type binary encoding ([`codec::Writer`], [`codec::Reader`], the
//!   [`codec::Field`] and [`codec::Struct`] traits every generated type implements).
//! - [`packet`]: `RequestPacket` / `ResponsePacket` (generated from `RequestF.tars`) and the
//!   standard codes of `BaseF.tars`.
//! - [`frame`]: the 4-byte big-endian length prefix (it counts itself) and a streaming
//!   frame decoder with a size limit.
//! - [`tup`]: TUP (iVersion 3) parameters by name; [`json`]: the JSON protocol (iVersion 5).
//! - [`config`]: the TARS config-file grammar (`<domain>`, `key=value`, paths, merge).
//! - [`endpoint`]: `tcp -h H -p P -t T` endpoints and `Obj#hash@ep:ep` object strings.
//! - [`balance`]: choosing an endpoint (round robin, hash, weights, failure marks).
//! - [`rpc`]: what generated servants and proxies share: parameter codecs for all three
//!   versions, [`rpc::Current`], and the [`rpc::Transport`] seam a client plugs into;
//!   [`dispatch`]: the servant seam a server plugs into; [`push`]: server push (request id 0)
//!   on a connection the client opened.
//!
//! Nothing here does IO, spawns, sleeps or reads a clock (balancing takes `now` as an
//! argument): the runtime in `tars-core-net` is a shell around these types. The crate
//! depends on `bytes` and `thiserror` only, a rule `tars-core-net`'s dependency test checks.

// Generated code names its runtime crate by path; inside this crate that path is `crate`.
extern crate self as tars_proto;

pub mod balance;
pub mod codec;
pub mod config;
pub mod dispatch;
pub mod endpoint;
pub mod frame;
pub mod json;
pub mod packet;
pub mod push;
pub mod rpc;
pub mod tup;

pub use bytes::{Bytes, BytesMut};
pub use codec::{DecodeError, Field, Reader, Struct, Writer};
pub use dispatch::{Dispatch, DispatchFuture};
