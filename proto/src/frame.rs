//! Packet framing: a 4-byte big-endian length that **counts itself**, then the packet body.
//! The decoder follows the tokio-util `Decoder` contract: `Ok(None)` means
//! "incomplete, read more", `Err` means "corrupt, close the connection".

use crate::codec::{Struct, Writer};
use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Default maximum frame size, as TarsGo: 10 MiB.
pub const DEFAULT_MAX_FRAME: usize = 10 * 1024 * 1024;
/// The largest maximum that may be configured, as TarsCpp: 100 MiB.
pub const MAX_FRAME_LIMIT: usize = 100 * 1024 * 1024;
/// The smallest valid length: the prefix and at least one byte of body.
pub const MIN_FRAME: usize = 5;
const PREFIX: usize = 4;

/// A corrupt frame; the connection cannot continue after it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The length prefix is below [`MIN_FRAME`].
    #[error("frame length {0} is below the minimum of {MIN_FRAME}")]
    TooShort(u32),
    /// The length prefix is above the configured maximum. Nothing was allocated for it.
    #[error("frame length {len} exceeds the maximum of {max}")]
    TooLarge {
        /// The claimed length.
        len: u32,
        /// The configured maximum.
        max: usize,
    },
    /// A maximum outside `MIN_FRAME..=MAX_FRAME_LIMIT` was configured.
    #[error("maximum frame size {0} is outside {MIN_FRAME}..={MAX_FRAME_LIMIT}")]
    BadLimit(usize),
}

/// Splits a byte stream into packet bodies.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    max_frame: usize,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        FrameDecoder { max_frame: DEFAULT_MAX_FRAME }
    }
}

/// At most this much is reserved ahead for a frame still arriving, so a peer that claims a
/// large frame and then sends slowly costs memory only as its bytes arrive.
const RESERVE_AHEAD: usize = 64 * 1024;

impl FrameDecoder {
    /// A decoder with the default 10 MiB limit.
    pub fn new() -> Self {
        Self::default()
    }

    /// A decoder with a custom limit, at most 100 MiB.
    pub fn with_max_frame(max_frame: usize) -> Result<Self, FrameError> {
        if !(MIN_FRAME..=MAX_FRAME_LIMIT).contains(&max_frame) {
            return Err(FrameError::BadLimit(max_frame));
        }
        Ok(FrameDecoder { max_frame })
    }

    /// The configured limit.
    pub fn max_frame(&self) -> usize {
        self.max_frame
    }

    /// Checks a length prefix.
    fn check(&self, len: u32) -> Result<usize, FrameError> {
        let n = len as usize;
        if n < MIN_FRAME {
            return Err(FrameError::TooShort(len));
        }
        if n > self.max_frame {
            return Err(FrameError::TooLarge { len, max: self.max_frame });
        }
        Ok(n)
    }

    /// Takes the next complete packet body (without its prefix) off the front of `buf`.
    /// `Ok(None)`: more bytes are needed (some capacity is reserved for them).
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        if buf.len() < PREFIX {
            return Ok(None);
        }
        let len = self.check(u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]))?;
        if buf.len() < len {
            buf.reserve((len - buf.len()).min(RESERVE_AHEAD));
            return Ok(None);
        }
        let mut frame = buf.split_to(len);
        frame.advance(PREFIX);
        Ok(Some(frame.freeze()))
    }

    /// Like [`FrameDecoder::decode`] over a plain slice, for datagrams and tests: returns the
    /// body and the number of bytes it used.
    pub fn decode_slice<'a>(&self, buf: &'a [u8]) -> Result<Option<(&'a [u8], usize)>, FrameError> {
        if buf.len() < PREFIX {
            return Ok(None);
        }
        let len = self.check(u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]))?;
        if buf.len() < len {
            return Ok(None);
        }
        Ok(Some((&buf[PREFIX..len], len)))
    }
}

/// Encodes a packet with its length prefix.
pub fn encode_frame<T: Struct>(packet: &T) -> Bytes {
    let mut buf = BytesMut::new();
    encode_frame_into(&mut buf, packet);
    buf.freeze()
}

/// Appends a packet with its length prefix to `out` (a connection's output buffer, say, so
/// that a reply is written once instead of encoded aside and copied).
pub fn encode_frame_into<T: Struct>(out: &mut BytesMut, packet: &T) {
    let start = out.len();
    out.reserve(PREFIX + packet.size_hint());
    let mut w = Writer::from_buf(std::mem::take(out));
    w.put_raw(&[0; PREFIX]);
    packet.write_fields(&mut w);
    *out = w.into_inner();
    let len = u32::try_from(out.len() - start).unwrap_or(u32::MAX);
    (&mut out[start..start + PREFIX]).put_u32(len);
}
