//! Backend-neutral values and rows.
//!
//! Dates and times travel as text (`YYYY-MM-DD HH:MM:SS`), which both MySQL and SQLite accept
//! in parameters and which both backends produce when reading.

use std::sync::Arc;

use crate::error::StoreError;

/// One SQL value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `NULL`.
    Null,
    /// A signed integer.
    Int(i64),
    /// An unsigned integer too large for `i64`, or read from an unsigned MySQL column.
    UInt(u64),
    /// A floating-point number.
    Float(f64),
    /// Text (also dates, times and decimals).
    Text(String),
    /// Binary data.
    Bytes(Vec<u8>),
}

macro_rules! from_int {
    ($($t:ty => $v:ident),*) => {$(
        impl From<$t> for Value {
            fn from(v: $t) -> Self {
                Value::$v(v.into())
            }
        }
    )*};
}
from_int!(i8 => Int, i16 => Int, i32 => Int, i64 => Int, u8 => Int, u16 => Int, u32 => Int, u64 => UInt, f32 => Float, f64 => Float);

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Int(v.into())
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_owned())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}
impl From<&String> for Value {
    fn from(v: &String) -> Self {
        Value::Text(v.clone())
    }
}
impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Self {
        Value::Bytes(v)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// Builds a `Vec<Value>` from a list of expressions: `params![a, "b", 3]`.
#[macro_export]
macro_rules! params {
    () => { ::std::vec::Vec::<$crate::Value>::new() };
    ($($v:expr),+ $(,)?) => { ::std::vec![$($crate::Value::from($v)),+] };
}

/// Conversion from a [`Value`] read from a row.
pub trait FromValue: Sized {
    /// Converts, or says why not.
    fn from_value(v: &Value) -> Result<Self, String>;
}

impl FromValue for Value {
    fn from_value(v: &Value) -> Result<Self, String> {
        Ok(v.clone())
    }
}

impl FromValue for i64 {
    fn from_value(v: &Value) -> Result<Self, String> {
        match v {
            Value::Int(i) => Ok(*i),
            Value::UInt(u) => i64::try_from(*u).map_err(|_| format!("{u} does not fit in i64")),
            Value::Text(s) => s.trim().parse().map_err(|_| format!("{s:?} is not an integer")),
            Value::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(*f as i64),
            other => Err(format!("expected an integer, found {other:?}")),
        }
    }
}

impl FromValue for u64 {
    fn from_value(v: &Value) -> Result<Self, String> {
        match v {
            Value::UInt(u) => Ok(*u),
            Value::Int(i) => u64::try_from(*i).map_err(|_| format!("{i} is negative")),
            Value::Text(s) => s.trim().parse().map_err(|_| format!("{s:?} is not an unsigned integer")),
            Value::Float(f) if f.fract() == 0.0 && *f >= 0.0 && *f < 9.0e15 => Ok(*f as u64),
            other => Err(format!("expected an unsigned integer, found {other:?}")),
        }
    }
}

macro_rules! from_value_via {
    ($via:ty => $($t:ty),*) => {$(
        impl FromValue for $t {
            fn from_value(v: &Value) -> Result<Self, String> {
                let wide = <$via>::from_value(v)?;
                <$t>::try_from(wide).map_err(|_| format!("{wide} does not fit in {}", stringify!($t)))
            }
        }
    )*};
}
from_value_via!(i64 => i32, i16, i8);
from_value_via!(u64 => u32, u16, u8);

impl FromValue for f64 {
    fn from_value(v: &Value) -> Result<Self, String> {
        match v {
            Value::Float(f) => Ok(*f),
            Value::Int(i) => Ok(*i as f64),
            Value::UInt(u) => Ok(*u as f64),
            Value::Text(s) => s.trim().parse().map_err(|_| format!("{s:?} is not a number")),
            other => Err(format!("expected a number, found {other:?}")),
        }
    }
}

impl FromValue for String {
    fn from_value(v: &Value) -> Result<Self, String> {
        match v {
            Value::Text(s) => Ok(s.clone()),
            Value::Bytes(b) => String::from_utf8(b.clone()).map_err(|_| "not valid UTF-8".to_owned()),
            Value::Int(i) => Ok(i.to_string()),
            Value::UInt(u) => Ok(u.to_string()),
            Value::Float(f) => Ok(f.to_string()),
            Value::Null => Err("NULL where text was expected".to_owned()),
        }
    }
}

impl FromValue for Vec<u8> {
    fn from_value(v: &Value) -> Result<Self, String> {
        match v {
            Value::Bytes(b) => Ok(b.clone()),
            Value::Text(s) => Ok(s.clone().into_bytes()),
            other => Err(format!("expected bytes, found {other:?}")),
        }
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(v: &Value) -> Result<Self, String> {
        match v {
            Value::Null => Ok(None),
            other => T::from_value(other).map(Some),
        }
    }
}

/// One result row; columns are shared by every row of a result.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    columns: Arc<[String]>,
    values: Vec<Value>,
}

impl Row {
    /// A row of `values` under `columns`.
    pub fn new(columns: Arc<[String]>, values: Vec<Value>) -> Self {
        Row { columns, values }
    }

    /// Column names.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// Raw values, in column order.
    pub fn values(&self) -> &[Value] {
        &self.values
    }

    /// The value in column `idx`, converted; the error names the column.
    pub fn get<T: FromValue>(&self, idx: usize) -> Result<T, StoreError> {
        let name = || self.columns.get(idx).cloned().unwrap_or_else(|| format!("#{idx}"));
        let v = self
            .values
            .get(idx)
            .ok_or_else(|| StoreError::Column { column: name(), reason: "no such column".into() })?;
        T::from_value(v).map_err(|reason| StoreError::Column { column: name(), reason })
    }

    /// The value in the column called `name`, converted.
    pub fn get_by<T: FromValue>(&self, name: &str) -> Result<T, StoreError> {
        match self.columns.iter().position(|c| c.eq_ignore_ascii_case(name)) {
            Some(i) => self.get(i),
            None => Err(StoreError::Column { column: name.to_owned(), reason: "no such column".into() }),
        }
    }
}
