//! The traits every wire value implements, and their impls for the IDL builtins.
//!
//! | IDL | Rust | wire |
//! |---|---|---|
//! | bool | `bool` | int (1 or ZeroTag) |
//! | byte / short / int / long | `i8` / `i16` / `i32` / `i64` | narrowed int |
//! | unsigned byte / short / int | `u8` / `u16` / `u32` | the next wider signed int |
//! | float / double | `f32` / `f64` | type 4 / 5 |
//! | string | `String` | String1 / String4 |
//! | string holding bytes (named in `tars-idl`'s `Config::binary_string`) | [`BinString`] | String1 / String4 |
//! | `vector<byte>` | [`Bytes`] | SimpleList (List of int1 also read) |
//! | `vector<T>` | `Vec<T>` | List |
//! | `map<K,V>` | `BTreeMap<K,V>` (sorted, as TarsCpp's `std::map`) | Map |
//! | struct | generated, implements [`Struct`] | StructBegin … StructEnd |

use super::error::{mismatch, DecodeError, DecodeErrorKind};
use super::{Reader, WireType, Writer};
use bytes::Bytes;
use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

/// A value that can be written as one field and read back.
pub trait Field: Sized {
    /// Writes `self` as a field at `tag`.
    fn write_to(&self, tag: u8, w: &mut Writer);
    /// Reads the payload of a field whose head (of wire type `ty`) was just consumed.
    fn read_from(r: &mut Reader<'_>, ty: WireType) -> Result<Self, DecodeError>;
}

/// A struct: a sequence of tagged members. At top level (a packet body, a parameter buffer)
/// it has no begin/end markers; as a field it is wrapped in StructBegin/StructEnd.
pub trait Struct: Default {
    /// The IDL name, used in error messages.
    const NAME: &'static str;

    /// Writes the members in ascending tag order.
    fn write_fields(&self, w: &mut Writer);

    /// Reads the members. Absent optional members keep their current value, so call this on
    /// a default-initialised value.
    fn read_fields(&mut self, r: &mut Reader<'_>) -> Result<(), DecodeError>;

    /// A guess at the encoded size, used to size the output buffer once. Envelope types with
    /// large payloads override it; being wrong only costs a reallocation.
    fn size_hint(&self) -> usize {
        64
    }

    /// Encodes as a top-level body (no struct markers).
    fn encode(&self) -> Bytes {
        let mut w = Writer::with_capacity(self.size_hint());
        self.write_fields(&mut w);
        w.freeze()
    }

    /// Decodes a top-level body; fields after the last known tag are ignored.
    fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        let mut v = Self::default();
        v.read_fields(&mut Reader::new(buf))?;
        Ok(v)
    }

    /// Like [`Struct::decode`], with byte vectors sliced out of `buf` without copying.
    fn decode_bytes(buf: &Bytes) -> Result<Self, DecodeError> {
        let mut v = Self::default();
        v.read_fields(&mut Reader::from_bytes(buf))?;
        Ok(v)
    }
}

/// Writes a struct as a field at `tag`. Generated `Field` impls call this.
pub fn write_struct<T: Struct>(v: &T, tag: u8, w: &mut Writer) {
    w.begin_struct(tag);
    v.write_fields(w);
    w.end_struct();
}

/// Reads a struct field's payload. Generated `Field` impls call this.
pub fn read_struct<T: Struct>(r: &mut Reader<'_>, ty: WireType) -> Result<T, DecodeError> {
    if ty != WireType::StructBegin {
        return Err(mismatch("struct", ty));
    }
    r.enter()?;
    let mut v = T::default();
    v.read_fields(r)?;
    // Members this side does not know are consumed here (forward compatibility).
    r.skip_to_struct_end()?;
    r.leave();
    Ok(v)
}

macro_rules! signed {
    ($t:ty, $widest:expr, $name:literal) => {
        impl Field for $t {
            fn write_to(&self, tag: u8, w: &mut Writer) {
                w.write_int(tag, i64::from(*self));
            }
            fn read_from(r: &mut Reader<'_>, ty: WireType) -> Result<Self, DecodeError> {
                // The accepted wire widths are at most the declared width, so this cannot fail.
                let v = r.read_int_payload(ty, $widest, $name)?;
                Self::try_from(v).map_err(|_| DecodeErrorKind::Invalid(format!("{v} out of range")).into())
            }
        }
    };
}

signed!(i8, WireType::Int1, "byte");
signed!(i16, WireType::Int2, "short");
signed!(i32, WireType::Int4, "int");
signed!(i64, WireType::Int8, "long");

// Unsigned IDL types ride on the next wider signed type (Java has no unsigned); reads
// truncate exactly as TarsCpp's `read(UInt8&)` and friends do.
macro_rules! unsigned {
    ($t:ty, $wire:ty, $widest:expr, $name:literal) => {
        impl Field for $t {
            fn write_to(&self, tag: u8, w: &mut Writer) {
                w.write_int(tag, i64::from(*self));
            }
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            fn read_from(r: &mut Reader<'_>, ty: WireType) -> Result<Self, DecodeError> {
                Ok(r.read_int_payload(ty, $widest, $name)? as $wire as $t)
            }
        }
    };
}

unsigned!(u8, i16, WireType::Int2, "unsigned byte");
unsigned!(u16, i32, WireType::Int4, "unsigned short");
unsigned!(u32, i64, WireType::Int8, "unsigned int");

impl Field for bool {
    fn write_to(&self, tag: u8, w: &mut Writer) {
        w.write_bool(tag, *self);
    }
    fn read_from(r: &mut Reader<'_>, ty: WireType) -> Result<Self, DecodeError> {
        Ok(r.read_int_payload(ty, WireType::Int1, "bool")? != 0)
    }
}

impl Field for f32 {
    fn write_to(&self, tag: u8, w: &mut Writer) {
        w.write_f32(tag, *self);
    }
    fn read_from(r: &mut Reader<'_>, ty: WireType) -> Result<Self, DecodeError> {
        r.read_f32_payload(ty)
    }
}

impl Field for f64 {
    fn write_to(&self, tag: u8, w: &mut Writer) {
        w.write_f64(tag, *self);
    }
    fn read_from(r: &mut Reader<'_>, ty: WireType) -> Result<Self, DecodeError> {
        r.read_f64_payload(ty)
    }
}

impl Field for String {
    fn write_to(&self, tag: u8, w: &mut Writer) {
        w.write_str(tag, self);
    }
    fn read_from(r: &mut Reader<'_>, ty: WireType) -> Result<Self, DecodeError> {
        r.read_str_ref(ty).map(str::to_owned)
    }
}

/// An IDL `string` whose content is bytes, not text: C++ `std::string` carries any bytes, and
/// some framework calls put an encoded struct in one (tarsnode's `AdminReg.reportResult`
/// answer of `getStateInfo`). On the wire it is a string; no UTF-8 check applies.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BinString(pub Bytes);

impl From<String> for BinString {
    fn from(s: String) -> Self {
        BinString(Bytes::from(s))
    }
}

impl From<&str> for BinString {
    fn from(s: &str) -> Self {
        BinString(Bytes::copy_from_slice(s.as_bytes()))
    }
}

impl BinString {
    /// The content as text, when it is UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }
}

impl Field for BinString {
    fn write_to(&self, tag: u8, w: &mut Writer) {
        w.write_str_bytes(tag, &self.0);
    }
    fn read_from(r: &mut Reader<'_>, ty: WireType) -> Result<Self, DecodeError> {
        r.read_str_payload(ty).map(|b| BinString(Bytes::copy_from_slice(b)))
    }
}

impl Field for Bytes {
    fn write_to(&self, tag: u8, w: &mut Writer) {
        w.write_simple_list(tag, self);
    }
    fn read_from(r: &mut Reader<'_>, ty: WireType) -> Result<Self, DecodeError> {
        match ty {
            WireType::SimpleList => r.read_simple_list_payload(),
            // Both SDKs also accept a plain List of int1 for `vector<byte>`.
            WireType::List => {
                let n = r.read_len(1)?;
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    let head = r.read_element_head(0)?;
                    v.push(r.read_int_payload(head.ty, WireType::Int1, "byte")? as u8);
                }
                Ok(Bytes::from(v))
            }
            other => Err(mismatch("byte list", other)),
        }
    }
}

/// Elements are preallocated up to this count at most; a larger list grows as it is read,
/// so memory follows the bytes actually received.
const PREALLOC_MAX: usize = 1024;

impl<T: Field> Field for Vec<T> {
    fn write_to(&self, tag: u8, w: &mut Writer) {
        w.write_head(tag, WireType::List);
        w.write_len(self.len());
        for v in self {
            v.write_to(0, w);
        }
    }
    fn read_from(r: &mut Reader<'_>, ty: WireType) -> Result<Self, DecodeError> {
        if ty != WireType::List {
            return Err(mismatch("list", ty));
        }
        let n = r.read_len(1)?;
        r.enter()?;
        let mut v = Vec::with_capacity(n.min(PREALLOC_MAX));
        for _ in 0..n {
            let head = r.read_element_head(0)?;
            v.push(T::read_from(r, head.ty)?);
        }
        r.leave();
        Ok(v)
    }
}

fn write_map<'a, K: Field + 'a, V: Field + 'a>(
    tag: u8,
    len: usize,
    entries: impl Iterator<Item = (&'a K, &'a V)>,
    w: &mut Writer,
) {
    w.write_head(tag, WireType::Map);
    w.write_len(len);
    for (k, v) in entries {
        k.write_to(0, w);
        v.write_to(1, w);
    }
}

/// Reads map entries, calling `insert` for each; the caller decides duplicate handling.
fn read_map<K: Field, V: Field>(
    r: &mut Reader<'_>,
    ty: WireType,
    mut insert: impl FnMut(K, V),
) -> Result<(), DecodeError> {
    if ty != WireType::Map {
        return Err(mismatch("map", ty));
    }
    let n = r.read_len(2)?;
    r.enter()?;
    for _ in 0..n {
        let kh = r.read_element_head(0)?;
        let k = K::read_from(r, kh.ty)?;
        let vh = r.read_element_head(1)?;
        let v = V::read_from(r, vh.ty)?;
        insert(k, v);
    }
    r.leave();
    Ok(())
}

impl<K: Field + Ord, V: Field> Field for BTreeMap<K, V> {
    fn write_to(&self, tag: u8, w: &mut Writer) {
        write_map(tag, self.len(), self.iter(), w);
    }
    fn read_from(r: &mut Reader<'_>, ty: WireType) -> Result<Self, DecodeError> {
        let mut m = BTreeMap::new();
        // A duplicate key keeps the first value, as TarsCpp's `std::map::insert` does.
        read_map(r, ty, |k, v| {
            m.entry(k).or_insert(v);
        })?;
        Ok(m)
    }
}

impl<K: Field + Eq + Hash, V: Field> Field for HashMap<K, V> {
    fn write_to(&self, tag: u8, w: &mut Writer) {
        write_map(tag, self.len(), self.iter(), w);
    }
    fn read_from(r: &mut Reader<'_>, ty: WireType) -> Result<Self, DecodeError> {
        let mut m = HashMap::new();
        read_map(r, ty, |k, v| {
            m.entry(k).or_insert(v);
        })?;
        Ok(m)
    }
}
