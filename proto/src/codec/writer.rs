//! Encoding. Writes never fail: the only limits are the reader's.

use super::WireType;
use bytes::{BufMut, Bytes, BytesMut};

/// Appends TARS-encoded fields to a buffer.
///
/// Integers are narrowed by value exactly as TarsCpp does (`TarsOutputStream::write`):
/// ZeroTag for 0, then int1, int2, int4, int8. Floats and doubles are never narrowed.
#[derive(Debug, Default)]
pub struct Writer {
    buf: BytesMut,
}

impl Writer {
    /// An empty writer.
    pub fn new() -> Self {
        Writer { buf: BytesMut::new() }
    }

    /// An empty writer with room for `n` bytes.
    pub fn with_capacity(n: usize) -> Self {
        Writer { buf: BytesMut::with_capacity(n) }
    }

    /// Continues writing at the end of `buf`.
    pub fn from_buf(buf: BytesMut) -> Self {
        Writer { buf }
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Nothing written yet.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The written bytes, still mutable (e.g. to patch a length prefix).
    pub fn into_inner(self) -> BytesMut {
        self.buf
    }

    /// The written bytes, frozen.
    pub fn freeze(self) -> Bytes {
        self.buf.freeze()
    }

    /// The written bytes so far.
    pub fn as_slice(&self) -> &[u8] {
        &self.buf
    }

    /// Writes a head. Tags ≥ 15 (including 15) take a second byte.
    pub fn write_head(&mut self, tag: u8, ty: WireType) {
        if tag < 15 {
            self.buf.put_u8((tag << 4) | ty as u8);
        } else {
            self.buf.put_u8(0xF0 | ty as u8);
            self.buf.put_u8(tag);
        }
    }

    /// An integer at `tag`, in the narrowest form that holds it.
    pub fn write_int(&mut self, tag: u8, v: i64) {
        if v == 0 {
            self.write_head(tag, WireType::ZeroTag);
        } else if let Ok(v) = i8::try_from(v) {
            self.write_head(tag, WireType::Int1);
            self.buf.put_i8(v);
        } else if let Ok(v) = i16::try_from(v) {
            self.write_head(tag, WireType::Int2);
            self.buf.put_i16(v);
        } else if let Ok(v) = i32::try_from(v) {
            self.write_head(tag, WireType::Int4);
            self.buf.put_i32(v);
        } else {
            self.write_head(tag, WireType::Int8);
            self.buf.put_i64(v);
        }
    }

    /// A bool: 1 as int1, 0 as ZeroTag.
    pub fn write_bool(&mut self, tag: u8, v: bool) {
        self.write_int(tag, i64::from(v));
    }

    /// A float, always the full 4 bytes (0.0 is not ZeroTag, as in TarsCpp).
    pub fn write_f32(&mut self, tag: u8, v: f32) {
        self.write_head(tag, WireType::Float);
        self.buf.put_f32(v);
    }

    /// A double, always the full 8 bytes.
    pub fn write_f64(&mut self, tag: u8, v: f64) {
        self.write_head(tag, WireType::Double);
        self.buf.put_f64(v);
    }

    /// A string of raw bytes: String1 up to 255 bytes, String4 beyond.
    pub fn write_str_bytes(&mut self, tag: u8, s: &[u8]) {
        if let Ok(n) = u8::try_from(s.len()) {
            self.write_head(tag, WireType::String1);
            self.buf.put_u8(n);
        } else {
            self.write_head(tag, WireType::String4);
            // Frames are capped far below 4 GiB, so a longer string cannot be sent anyway.
            self.buf.put_u32(u32::try_from(s.len()).unwrap_or(u32::MAX));
        }
        self.buf.put_slice(s);
    }

    /// A UTF-8 string.
    pub fn write_str(&mut self, tag: u8, s: &str) {
        self.write_str_bytes(tag, s.as_bytes());
    }

    /// A `vector<byte>` as SimpleList.
    pub fn write_simple_list(&mut self, tag: u8, b: &[u8]) {
        self.write_head(tag, WireType::SimpleList);
        self.write_head(0, WireType::Int1);
        self.write_len(b.len());
        self.buf.put_slice(b);
    }

    /// A container element count (an int field at tag 0).
    pub fn write_len(&mut self, n: usize) {
        self.write_int(0, i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Starts a nested struct at `tag`; pair with [`Writer::end_struct`].
    pub fn begin_struct(&mut self, tag: u8) {
        self.write_head(tag, WireType::StructBegin);
    }

    /// Ends a nested struct.
    pub fn end_struct(&mut self) {
        self.write_head(0, WireType::StructEnd);
    }

    /// Appends bytes that are already encoded.
    pub fn put_raw(&mut self, b: &[u8]) {
        self.buf.put_slice(b);
    }
}
