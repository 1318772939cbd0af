//! Placeholder while being written (see helper).
use crate::codec::DecodeError;
use std::collections::BTreeMap;
/// tmp
#[derive(Debug, Clone, PartialEq)]
pub enum Value { Null, String(String), Object(BTreeMap<String, Value>) }
impl Value { pub fn kind(&self) -> &'static str { "x" } }
/// tmp
pub fn parse(_i: &[u8]) -> Result<Value, String> { Err(String::new()) }
/// tmp
pub fn to_string(_v: &Value) -> String { String::new() }
/// tmp
pub trait JsonField: Sized { fn to_json(&self) -> Value; fn from_json(v: &Value) -> Result<Self, DecodeError>; }
