//! TUP (iVersion 3): parameters wrapped by name (TarsCpp `tup/tup.h`).
//!
//! The body is a `map<string, vector<byte>>` at tag 0; each value holds one parameter
//! encoded on its own at tag 0. Replies are `RequestPacket`-shaped and carry the return value
//! under both `""` and `"tars_ret"`, and a non-zero `iRet` in `status["STATUS_RESULT_CODE"]`.

use crate::codec::{DecodeError, DecodeErrorKind, Field, Reader, Writer};
use bytes::Bytes;
use std::collections::BTreeMap;

/// The name the return value is stored under (besides `""`).
pub const RET_NAME: &str = "tars_ret";

/// A TUP v3 attribute set: parameter name → encoded value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UniAttribute {
    values: BTreeMap<String, Bytes>,
}

impl UniAttribute {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores `value` under `name`, encoded at tag 0.
    pub fn put<T: Field>(&mut self, name: &str, value: &T) {
        let mut w = Writer::new();
        value.write_to(0, &mut w);
        self.values.insert(name.to_owned(), w.freeze());
    }

    /// Stores a value under `name` that `encode` writes at tag 0 (for borrowed values such as
    /// `&str` that have no `Field` impl).
    pub fn put_encoded(&mut self, name: &str, encode: impl FnOnce(&mut Writer)) {
        let mut w = Writer::new();
        encode(&mut w);
        self.values.insert(name.to_owned(), w.freeze());
    }

    /// Decodes the value stored under `name`; `None` if absent.
    pub fn get<T: Field>(&self, name: &str) -> Result<Option<T>, DecodeError> {
        let Some(b) = self.values.get(name) else { return Ok(None) };
        Reader::from_bytes(b).read_optional(0)?.map_or_else(
            || Err(DecodeErrorKind::Invalid(format!("TUP value '{name}' has no field at tag 0")).into()),
            |v| Ok(Some(v)),
        )
    }

    /// Whether `name` is present.
    pub fn contains(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }

    /// Names present, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.values.keys().map(String::as_str)
    }

    /// Encodes the set as a TUP body.
    pub fn encode(&self) -> Bytes {
        let mut w = Writer::new();
        self.values.write_to(0, &mut w);
        w.freeze()
    }

    /// Decodes a TUP body. Values are zero-copy slices of `body`.
    pub fn decode(body: &Bytes) -> Result<Self, DecodeError> {
        let values = Reader::from_bytes(body).read_required(0).map_err(|e| e.at("UniAttribute", "data"))?;
        Ok(UniAttribute { values })
    }
}
