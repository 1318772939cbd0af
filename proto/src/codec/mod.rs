//! The TARS tag/type binary encoding, as TarsCpp's `tup/Tars.h` writes and reads it.
//!
//! Every value is a head (4-bit type, tag 0–255) and a payload. Integers are written in the
//! narrowest form that holds the value (ZeroTag for 0); readers widen and sign-extend per
//! the acceptance matrix. Struct members go in ascending tag order; readers skip lower
//! unknown tags and stop at a higher one.

mod error;
mod field;
mod ord;
mod reader;
mod writer;

pub use error::{DecodeError, DecodeErrorKind};
pub use field::{read_struct, write_struct, BinString, Field, Struct};
pub use ord::KeyOrd;
pub use reader::{Limits, Reader};
pub use writer::Writer;

/// The 4-bit type code of a head byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum WireType {
    /// 1-byte signed integer ("int1", C++ Char).
    Int1 = 0,
    /// 2-byte big-endian signed integer.
    Int2 = 1,
    /// 4-byte big-endian signed integer.
    Int4 = 2,
    /// 8-byte big-endian signed integer.
    Int8 = 3,
    /// IEEE-754 binary32, big-endian.
    Float = 4,
    /// IEEE-754 binary64, big-endian.
    Double = 5,
    /// String with a 1-byte length.
    String1 = 6,
    /// String with a 4-byte big-endian length.
    String4 = 7,
    /// Map: count at tag 0, then key (tag 0) / value (tag 1) pairs.
    Map = 8,
    /// List: count at tag 0, then elements at tag 0.
    List = 9,
    /// Start of a nested struct.
    StructBegin = 10,
    /// End of a nested struct (always tag 0).
    StructEnd = 11,
    /// The number zero, no payload.
    ZeroTag = 12,
    /// Byte vector: an int1 head at tag 0, the length at tag 0, then raw bytes.
    SimpleList = 13,
}

impl WireType {
    /// Maps a type nibble to a type; 14 and 15 are undefined on the wire.
    pub fn from_nibble(n: u8) -> Option<WireType> {
        Some(match n {
            0 => WireType::Int1,
            1 => WireType::Int2,
            2 => WireType::Int4,
            3 => WireType::Int8,
            4 => WireType::Float,
            5 => WireType::Double,
            6 => WireType::String1,
            7 => WireType::String4,
            8 => WireType::Map,
            9 => WireType::List,
            10 => WireType::StructBegin,
            11 => WireType::StructEnd,
            12 => WireType::ZeroTag,
            13 => WireType::SimpleList,
            _ => return None,
        })
    }

    /// A short human name, used in error messages ("expected int, got string").
    pub fn name(self) -> &'static str {
        match self {
            WireType::Int1 => "int1",
            WireType::Int2 => "int2",
            WireType::Int4 => "int4",
            WireType::Int8 => "int8",
            WireType::Float => "float",
            WireType::Double => "double",
            WireType::String1 | WireType::String4 => "string",
            WireType::Map => "map",
            WireType::List => "list",
            WireType::StructBegin => "struct",
            WireType::StructEnd => "struct end",
            WireType::ZeroTag => "zero",
            WireType::SimpleList => "byte list",
        }
    }
}

/// A decoded head: which field, and how its payload is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// The field tag.
    pub tag: u8,
    /// The payload encoding.
    pub ty: WireType,
}
