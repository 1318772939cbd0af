//! The TARS wire format and RPC envelope, sans-IO.
//!
//! - [`codec`]: the tag/type binary encoding ([`codec::Writer`], [`codec::Reader`], the
//!   [`codec::Field`] and [`codec::Struct`] traits every generated type implements).
//! - [`packet`]: `RequestPacket` / `ResponsePacket` and the standard codes of `BaseF.tars`.
//! - [`frame`]: the 4-byte big-endian length prefix (it counts itself) and a streaming
//!   frame decoder with a size limit.
//! - [`tup`]: TUP (iVersion 3) parameters by name; [`json`]: the JSON protocol (iVersion 5).
//! - [`config`]: the TARS config-file grammar (`<domain>`, `key=value`, paths, merge).
//! - [`endpoint`]: `tcp -h H -p P -t T` endpoints and `Obj#hash@ep:ep` object strings.
//! - [`rpc`]: what generated servants and proxies share: parameter codecs for all three
//!   versions, [`rpc::Current`], and the [`rpc::Transport`] seam a client plugs into.
//!
//! Nothing here does IO, spawns, sleeps or reads a clock: the IO drivers are thin shells
//! around these types (see ARCHITECTURE.md). The codec modules depend on `bytes` and
//! `thiserror` only.

pub mod codec;
pub mod config;
pub mod endpoint;
pub mod frame;
pub mod json;
pub mod packet;
pub mod rpc;
pub mod tup;

pub mod client;
pub mod http;
pub mod rt;
pub mod server;

pub use bytes::{Bytes, BytesMut};
pub use codec::{DecodeError, Field, Reader, Struct, Writer};
