//! Decode errors that name the struct and field they happened in.

use super::WireType;
use std::fmt;

/// What went wrong, without the location.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeErrorKind {
    /// The buffer ended inside a value.
    #[error("truncated: needed {needed} more bytes, {available} left")]
    Truncated {
        /// Bytes the value needed.
        needed: usize,
        /// Bytes that remained.
        available: usize,
    },
    /// A type nibble of 14 or 15.
    #[error("invalid wire type {0}")]
    InvalidType(u8),
    /// A field whose wire type the declared type does not accept.
    #[error("expected {expected}, got {got}")]
    TypeMismatch {
        /// What the declared type accepts.
        expected: &'static str,
        /// What was on the wire.
        got: &'static str,
    },
    /// A `require` field that is absent.
    #[error("required field (tag {tag}) is missing")]
    RequiredMissing {
        /// Its tag.
        tag: u8,
    },
    /// A container element at the wrong tag.
    #[error("container element at tag {got}, expected tag {expected}")]
    ElementTag {
        /// The tag elements must have.
        expected: u8,
        /// The tag found.
        got: u8,
    },
    /// A negative length or count.
    #[error("negative length {0}")]
    NegativeLength(i64),
    /// A length or count larger than the bytes that remain: rejected before allocating.
    #[error("length {len} exceeds the {remaining} bytes that remain")]
    LengthTooLarge {
        /// The claimed length.
        len: u64,
        /// Bytes left in the buffer.
        remaining: usize,
    },
    /// Structs, lists and maps nested deeper than the limit.
    #[error("nesting deeper than {0}")]
    TooDeep(u32),
    /// A string that is not UTF-8.
    #[error("string is not valid UTF-8")]
    InvalidUtf8,
    /// A SimpleList whose inner head is not an int1 at tag 0.
    #[error("byte list has an inner head of {0}, expected int1")]
    BadSimpleList(&'static str),
    /// A value that does not fit the declared type or protocol.
    #[error("{0}")]
    Invalid(String),
}

/// A decode error: the kind, and the path of struct fields it happened in, innermost first.
///
/// Displays as `EndpointF.port: expected int, got string`, and with nesting
/// `EndpointF.port (in ObjectItem.vActiveEndpoints): ...`. Boxed so that `Result`s stay
/// small on the hot path.
#[derive(Clone, PartialEq, Eq)]
pub struct DecodeError(Box<Inner>);

#[derive(Clone, PartialEq, Eq)]
struct Inner {
    kind: DecodeErrorKind,
    path: Vec<(&'static str, &'static str)>,
}

impl DecodeError {
    /// An error with no location yet.
    #[cold]
    pub fn new(kind: DecodeErrorKind) -> Self {
        DecodeError(Box::new(Inner { kind, path: Vec::new() }))
    }

    /// Records that the error happened while reading `owner.field`.
    /// Generated code calls this on the way out, so the innermost field comes first.
    #[cold]
    pub fn at(mut self, owner: &'static str, field: &'static str) -> Self {
        self.0.path.push((owner, field));
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> &DecodeErrorKind {
        &self.0.kind
    }

    /// `(struct, field)` pairs, innermost first.
    pub fn path(&self) -> &[(&'static str, &'static str)] {
        &self.0.path
    }
}

impl From<DecodeErrorKind> for DecodeError {
    fn from(kind: DecodeErrorKind) -> Self {
        DecodeError::new(kind)
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut path = self.0.path.iter();
        if let Some((owner, field)) = path.next() {
            write!(f, "{owner}.{field}")?;
            let outer: Vec<String> = path.map(|(o, fl)| format!("{o}.{fl}")).collect();
            if !outer.is_empty() {
                write!(f, " (in {})", outer.join(" in "))?;
            }
            write!(f, ": ")?;
        }
        write!(f, "{}", self.0.kind)
    }
}

impl fmt::Debug for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DecodeError({self})")
    }
}

impl std::error::Error for DecodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0.kind)
    }
}

/// Shorthand for a type mismatch.
#[cold]
pub(crate) fn mismatch(expected: &'static str, got: WireType) -> DecodeError {
    DecodeError::new(DecodeErrorKind::TypeMismatch { expected, got: got.name() })
}
