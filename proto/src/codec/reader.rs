//! Decoding: heads, payloads, skipping, and the limits that keep hostile input cheap.

use super::error::{mismatch, DecodeError, DecodeErrorKind};
use super::{Head, WireType};
use bytes::Bytes;

/// Limits applied while decoding. Lengths are always checked against the bytes that remain
/// before anything is allocated; these limits add what that check cannot see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Maximum nesting of structs, lists and maps (skipped ones included).
    pub max_depth: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_depth: 64 }
    }
}

/// Reads TARS-encoded fields from a byte slice.
///
/// Built with [`Reader::from_bytes`], byte-vector fields are returned as slices of the
/// source [`Bytes`] without copying; built with [`Reader::new`], they are copied.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    src: Option<&'a Bytes>,
    pos: usize,
    depth: u32,
    limits: Limits,
}

impl<'a> Reader<'a> {
    /// Reads from a plain slice (byte vectors are copied out).
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, src: None, pos: 0, depth: 0, limits: Limits::default() }
    }

    /// Reads from shared bytes; byte vectors come out as zero-copy slices of `src`.
    pub fn from_bytes(src: &'a Bytes) -> Self {
        Reader { buf: src, src: Some(src), pos: 0, depth: 0, limits: Limits::default() }
    }

    /// Replaces the limits.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Bytes not yet consumed.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Everything has been consumed.
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// Current offset from the start.
    pub fn position(&self) -> usize {
        self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let available = self.remaining();
        if n > available {
            return Err(DecodeErrorKind::Truncated { needed: n, available }.into());
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn take_array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    /// Decodes the head at the current position without consuming it.
    /// `None` at the end of the buffer. Returns the head and its encoded size.
    pub fn peek_head(&self) -> Result<Option<(Head, usize)>, DecodeError> {
        let Some(&b) = self.buf.get(self.pos) else { return Ok(None) };
        let ty = WireType::from_nibble(b & 0x0F).ok_or(DecodeErrorKind::InvalidType(b & 0x0F))?;
        let nibble = b >> 4;
        if nibble < 15 {
            return Ok(Some((Head { tag: nibble, ty }, 1)));
        }
        match self.buf.get(self.pos + 1) {
            Some(&tag) => Ok(Some((Head { tag, ty }, 2))),
            None => Err(DecodeErrorKind::Truncated { needed: 2, available: 1 }.into()),
        }
    }

    /// Decodes and consumes one head.
    pub fn read_head(&mut self) -> Result<Head, DecodeError> {
        match self.peek_head()? {
            Some((head, n)) => {
                self.pos += n;
                Ok(head)
            }
            None => Err(DecodeErrorKind::Truncated { needed: 1, available: 0 }.into()),
        }
    }

    /// Moves to the field with `tag` in the current struct or top-level body and consumes its
    /// head. Lower tags are skipped; `None` (nothing consumed) at a higher tag, a StructEnd,
    /// or the end of the buffer.
    pub fn skip_to_tag(&mut self, tag: u8) -> Result<Option<Head>, DecodeError> {
        loop {
            let Some((head, n)) = self.peek_head()? else { return Ok(None) };
            if head.ty == WireType::StructEnd || head.tag > tag {
                return Ok(None);
            }
            self.pos += n;
            if head.tag == tag {
                return Ok(Some(head));
            }
            self.skip_payload(head.ty)?;
        }
    }

    /// Reads field `tag` if present.
    pub fn read_optional<T: super::Field>(&mut self, tag: u8) -> Result<Option<T>, DecodeError> {
        match self.skip_to_tag(tag)? {
            Some(head) => T::read_from(self, head.ty).map(Some),
            None => Ok(None),
        }
    }

    /// Reads field `tag`, which must be present.
    pub fn read_required<T: super::Field>(&mut self, tag: u8) -> Result<T, DecodeError> {
        self.read_optional(tag)?.ok_or_else(|| DecodeErrorKind::RequiredMissing { tag }.into())
    }

    /// Enters a nested container, enforcing the depth limit. Pair with [`Reader::leave`].
    pub fn enter(&mut self) -> Result<(), DecodeError> {
        if self.depth >= self.limits.max_depth {
            return Err(DecodeErrorKind::TooDeep(self.limits.max_depth).into());
        }
        self.depth += 1;
        Ok(())
    }

    /// Leaves a nested container.
    pub fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    /// Skips the payload of a field whose head was consumed.
    pub fn skip_payload(&mut self, ty: WireType) -> Result<(), DecodeError> {
        match ty {
            WireType::Int1 => self.take(1).map(drop),
            WireType::Int2 => self.take(2).map(drop),
            WireType::Int4 | WireType::Float => self.take(4).map(drop),
            WireType::Int8 | WireType::Double => self.take(8).map(drop),
            WireType::String1 | WireType::String4 => self.read_str_payload(ty).map(drop),
            WireType::SimpleList => self.read_simple_list_slice().map(drop),
            WireType::Map | WireType::List => {
                let fields = if ty == WireType::Map { 2 } else { 1 };
                let n = self.read_len(fields)?;
                self.enter()?;
                for _ in 0..n * fields {
                    let head = self.read_head()?;
                    self.skip_payload(head.ty)?;
                }
                self.leave();
                Ok(())
            }
            WireType::StructBegin => {
                self.enter()?;
                self.skip_to_struct_end()?;
                self.leave();
                Ok(())
            }
            WireType::StructEnd | WireType::ZeroTag => Ok(()),
        }
    }

    /// Skips the remaining fields of the current struct and consumes its StructEnd.
    pub fn skip_to_struct_end(&mut self) -> Result<(), DecodeError> {
        loop {
            let head = self.read_head()?;
            if head.ty == WireType::StructEnd {
                return Ok(());
            }
            self.skip_payload(head.ty)?;
        }
    }

    /// Reads an integer payload whose wire type is at most `widest`, sign-extending.
    /// `expected` names the declared type for the error message.
    pub fn read_int_payload(
        &mut self,
        ty: WireType,
        widest: WireType,
        expected: &'static str,
    ) -> Result<i64, DecodeError> {
        let v = match ty {
            WireType::ZeroTag => 0,
            WireType::Int1 if widest as u8 >= WireType::Int1 as u8 => i64::from(i8::from_be_bytes(self.take_array()?)),
            WireType::Int2 if widest as u8 >= WireType::Int2 as u8 => i64::from(i16::from_be_bytes(self.take_array()?)),
            WireType::Int4 if widest as u8 >= WireType::Int4 as u8 => i64::from(i32::from_be_bytes(self.take_array()?)),
            WireType::Int8 if widest == WireType::Int8 => i64::from_be_bytes(self.take_array()?),
            other => return Err(mismatch(expected, other)),
        };
        Ok(v)
    }

    /// Reads a float payload (ZeroTag or float).
    pub fn read_f32_payload(&mut self, ty: WireType) -> Result<f32, DecodeError> {
        match ty {
            WireType::ZeroTag => Ok(0.0),
            WireType::Float => Ok(f32::from_be_bytes(self.take_array()?)),
            other => Err(mismatch("float", other)),
        }
    }

    /// Reads a double payload (ZeroTag, float widened exactly, or double).
    pub fn read_f64_payload(&mut self, ty: WireType) -> Result<f64, DecodeError> {
        match ty {
            WireType::ZeroTag => Ok(0.0),
            WireType::Float => Ok(f64::from(f32::from_be_bytes(self.take_array()?))),
            WireType::Double => Ok(f64::from_be_bytes(self.take_array()?)),
            other => Err(mismatch("double", other)),
        }
    }

    /// Reads a String1/String4 payload as borrowed bytes (no copy, no UTF-8 check).
    pub fn read_str_payload(&mut self, ty: WireType) -> Result<&'a [u8], DecodeError> {
        let len = match ty {
            WireType::String1 => usize::from(self.take(1)?[0]),
            WireType::String4 => {
                let n = u32::from_be_bytes(self.take_array()?);
                usize::try_from(n).unwrap_or(usize::MAX)
            }
            other => return Err(mismatch("string", other)),
        };
        if len > self.remaining() {
            return Err(DecodeErrorKind::LengthTooLarge { len: len as u64, remaining: self.remaining() }.into());
        }
        self.take(len)
    }

    /// Reads a string payload as a borrowed `&str`.
    pub fn read_str_ref(&mut self, ty: WireType) -> Result<&'a str, DecodeError> {
        std::str::from_utf8(self.read_str_payload(ty)?).map_err(|_| DecodeErrorKind::InvalidUtf8.into())
    }

    /// Reads a SimpleList payload (after its head) as a borrowed slice.
    fn read_simple_list_slice(&mut self) -> Result<&'a [u8], DecodeError> {
        let inner = self.read_head()?;
        if inner.ty != WireType::Int1 {
            return Err(DecodeErrorKind::BadSimpleList(inner.ty.name()).into());
        }
        let n = self.read_len(1)?;
        self.take(n)
    }

    /// Reads a SimpleList payload as [`Bytes`]: a zero-copy slice when the reader was built
    /// from `Bytes`.
    pub fn read_simple_list_payload(&mut self) -> Result<Bytes, DecodeError> {
        let s = self.read_simple_list_slice()?;
        Ok(match self.src {
            Some(src) => src.slice_ref(s),
            None => Bytes::copy_from_slice(s),
        })
    }

    /// Reads a container count (an int field at tag 0) and checks it against the bytes that
    /// remain, assuming each element needs at least `min_bytes_each` bytes. Nothing is
    /// allocated from an unchecked count.
    pub fn read_len(&mut self, min_bytes_each: usize) -> Result<usize, DecodeError> {
        let head = self.read_head()?;
        if head.tag != 0 {
            return Err(DecodeErrorKind::ElementTag { expected: 0, got: head.tag }.into());
        }
        let n = self.read_int_payload(head.ty, WireType::Int8, "length")?;
        if n < 0 {
            return Err(DecodeErrorKind::NegativeLength(n).into());
        }
        let remaining = self.remaining();
        let fits = usize::try_from(n).ok().filter(|&n| n.saturating_mul(min_bytes_each) <= remaining);
        fits.ok_or_else(|| DecodeErrorKind::LengthTooLarge { len: n as u64, remaining }.into())
    }

    /// Reads the head of a container element and checks its tag.
    pub fn read_element_head(&mut self, tag: u8) -> Result<Head, DecodeError> {
        let head = self.read_head()?;
        if head.tag != tag {
            return Err(DecodeErrorKind::ElementTag { expected: tag, got: head.tag }.into());
        }
        Ok(head)
    }
}
