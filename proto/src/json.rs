//! The JSON protocol (iVersion 5): parameters as a JSON object keyed by name.
//!
//! A small, self-contained JSON implementation: a [`Value`] tree, an RFC 8259 [`parse`]r and
//! a compact writer ([`to_string`], [`write`]). It exists because the codec modules depend
//! on `bytes` and `thiserror` only; pulling serde into every generated type just for the
//! rarely used iVersion 5 would be out of proportion.
//!
//! [`JsonField`] and [`JsonKey`] map IDL types to JSON the way TarsCpp's `TarsJson.h`
//! does; [`get_member`] and [`expect_object`] are what generated structs use to read
//! themselves back.
//!
//! The parser never panics and never recurses deeper than [`MAX_DEPTH`], whatever the input.

use crate::codec::{DecodeError, DecodeErrorKind};
use bytes::Bytes;
use std::collections::BTreeMap;
use std::fmt::{Display, Write as _};

/// Arrays and objects may nest this deep; one level deeper is [`JsonError::TooDeep`].
pub const MAX_DEPTH: usize = 64;

/// A JSON number, kept exact where it is an integer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number {
    /// An integer that fits `i64`.
    Int(i64),
    /// A positive integer above `i64::MAX` that fits `u64` (the parser uses it only there).
    UInt(u64),
    /// Anything else: a fraction, an exponent, `-0`, or an integer beyond 64 bits.
    Float(f64),
}

/// A JSON value. Objects are sorted by key, so writing is deterministic.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number.
    Number(Number),
    /// A string.
    String(String),
    /// An array.
    Array(Vec<Value>),
    /// An object; a key given twice keeps its last value (as serde_json and browsers do).
    Object(BTreeMap<String, Value>),
}

impl Value {
    /// The members, if this is an object.
    pub fn as_object(&self) -> Option<&BTreeMap<String, Value>> {
        match self {
            Value::Object(m) => Some(m),
            _ => None,
        }
    }

    /// The JSON kind: `"null"`, `"bool"`, `"number"`, `"string"`, `"array"` or `"object"`.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        }
    }
}

/// Why a document is not valid JSON; every variant carries the byte offset it was found at.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonError {
    /// A byte that cannot start or continue what was expected here (including a raw
    /// control character inside a string).
    #[error("unexpected {} at byte {offset}", describe(.byte))]
    UnexpectedChar {
        /// Where.
        offset: usize,
        /// The byte found.
        byte: u8,
    },
    /// The input ended inside a value, or held no value at all.
    #[error("unexpected end of input at byte {offset}")]
    UnexpectedEnd {
        /// Where (the input length).
        offset: usize,
    },
    /// A backslash escape that is not one of the nine JSON escapes, or `\u` without four hex digits.
    #[error("invalid escape at byte {offset}")]
    BadEscape {
        /// Where the backslash is.
        offset: usize,
    },
    /// A number that breaks the grammar (leading zero, missing digits, ...).
    #[error("invalid number at byte {offset}")]
    BadNumber {
        /// Where the number starts.
        offset: usize,
    },
    /// A number too large for an `f64` (such as `1e400`).
    #[error("number out of range at byte {offset}")]
    NumberOutOfRange {
        /// Where the number starts.
        offset: usize,
    },
    /// Arrays and objects nested deeper than [`MAX_DEPTH`].
    #[error("nesting deeper than {MAX_DEPTH} at byte {offset}")]
    TooDeep {
        /// Where the first too-deep bracket is.
        offset: usize,
    },
    /// Something other than whitespace after the value.
    #[error("trailing characters at byte {offset}")]
    TrailingCharacters {
        /// Where they start.
        offset: usize,
    },
    /// A string that is not UTF-8.
    #[error("invalid UTF-8 at byte {offset}")]
    InvalidUtf8 {
        /// Where the invalid sequence starts.
        offset: usize,
    },
    /// A `\u` escape of a UTF-16 surrogate that is not part of a high/low pair.
    #[error("unpaired surrogate escape at byte {offset}")]
    LoneSurrogate {
        /// Where its backslash is.
        offset: usize,
    },
}

/// `'x'` for printable ASCII, `byte 0x1f` otherwise.
fn describe(byte: &u8) -> String {
    let byte = *byte;
    if byte.is_ascii_graphic() || byte == b' ' {
        format!("character {:?}", char::from(byte))
    } else {
        format!("byte 0x{byte:02x}")
    }
}

/// Parses one JSON document (RFC 8259), with optional whitespace around it.
///
/// Integers that fit `i64` become [`Number::Int`], larger ones that fit `u64`
/// [`Number::UInt`], everything else [`Number::Float`]; `-0` is `Float(-0.0)` so the sign
/// survives. Never panics; nesting is limited to [`MAX_DEPTH`].
pub fn parse(input: &[u8]) -> Result<Value, JsonError> {
    let mut p = Parser { input, pos: 0 };
    p.skip_ws();
    let v = p.value(0)?;
    p.skip_ws();
    if p.pos < input.len() {
        return Err(JsonError::TrailingCharacters { offset: p.pos });
    }
    Ok(v)
}

/// A cursor over the input.
struct Parser<'a> {
    input: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    /// The error for the byte at the cursor: unexpected, or the end.
    fn unexpected(&self) -> JsonError {
        match self.peek() {
            Some(byte) => JsonError::UnexpectedChar { offset: self.pos, byte },
            None => JsonError::UnexpectedEnd { offset: self.pos },
        }
    }

    /// Consumes `byte` or fails.
    fn expect(&mut self, byte: u8) -> Result<(), JsonError> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    /// A value starting at the cursor (whitespace already skipped); `depth` counts the
    /// arrays and objects around it.
    fn value(&mut self, depth: usize) -> Result<Value, JsonError> {
        match self.peek() {
            Some(b'{') => self.object(depth + 1),
            Some(b'[') => self.array(depth + 1),
            Some(b'"') => self.string().map(Value::String),
            Some(b't') => self.literal(b"true", Value::Bool(true)),
            Some(b'f') => self.literal(b"false", Value::Bool(false)),
            Some(b'n') => self.literal(b"null", Value::Null),
            Some(b'-' | b'0'..=b'9') => self.number().map(Value::Number),
            _ => Err(self.unexpected()),
        }
    }

    fn literal(&mut self, word: &[u8], v: Value) -> Result<Value, JsonError> {
        for &b in word {
            self.expect(b)?;
        }
        Ok(v)
    }

    /// Fails if `depth` (counting the container at the cursor) is over the limit.
    fn check_depth(&self, depth: usize) -> Result<(), JsonError> {
        if depth > MAX_DEPTH {
            Err(JsonError::TooDeep { offset: self.pos })
        } else {
            Ok(())
        }
    }

    fn array(&mut self, depth: usize) -> Result<Value, JsonError> {
        self.check_depth(depth)?;
        self.pos += 1; // '['
        let mut items = Vec::new();
        self.sequence(b']', |p| {
            items.push(p.value(depth)?);
            Ok(())
        })?;
        Ok(Value::Array(items))
    }

    fn object(&mut self, depth: usize) -> Result<Value, JsonError> {
        self.check_depth(depth)?;
        self.pos += 1; // '{'
        let mut members = BTreeMap::new();
        self.sequence(b'}', |p| {
            if p.peek() != Some(b'"') {
                return Err(p.unexpected());
            }
            let key = p.string()?;
            p.skip_ws();
            p.expect(b':')?;
            p.skip_ws();
            let v = p.value(depth)?;
            members.insert(key, v);
            Ok(())
        })?;
        Ok(Value::Object(members))
    }

    /// Parses `item`s separated by commas up to and including `close` (the opening bracket is
    /// already consumed). Shared by arrays and objects.
    fn sequence(
        &mut self,
        close: u8,
        mut item: impl FnMut(&mut Self) -> Result<(), JsonError>,
    ) -> Result<(), JsonError> {
        self.skip_ws();
        if self.peek() == Some(close) {
            self.pos += 1;
            return Ok(());
        }
        loop {
            item(self)?;
            self.skip_ws();
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    self.skip_ws();
                }
                Some(c) if c == close => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(self.unexpected()),
            }
        }
    }

    /// A string at the cursor (on its opening quote).
    fn string(&mut self) -> Result<String, JsonError> {
        self.pos += 1; // '"'
        let mut out = String::new();
        loop {
            self.plain_run(&mut out)?;
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => out.push(self.escape()?),
                _ => return Err(self.unexpected()),
            }
        }
    }

    /// Copies bytes up to the next quote, backslash, control character or the end,
    /// checking they are UTF-8. Those stop bytes are ASCII, so no character is split.
    fn plain_run(&mut self, out: &mut String) -> Result<(), JsonError> {
        let start = self.pos;
        let rest = self.input.get(start..).unwrap_or_default();
        let len = rest.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20).unwrap_or(rest.len());
        let run = rest.get(..len).unwrap_or_default();
        let s = std::str::from_utf8(run).map_err(|e| JsonError::InvalidUtf8 { offset: start + e.valid_up_to() })?;
        out.push_str(s);
        self.pos += len;
        Ok(())
    }

    /// A backslash escape at the cursor.
    fn escape(&mut self) -> Result<char, JsonError> {
        let at = self.pos;
        self.pos += 1; // '\\'
        let Some(b) = self.peek() else {
            return Err(self.unexpected());
        };
        self.pos += 1;
        Ok(match b {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => return self.unicode_escape(at),
            _ => return Err(JsonError::BadEscape { offset: at }),
        })
    }

    /// The rest of a `\u` escape whose backslash is at `at`, joining a surrogate pair.
    fn unicode_escape(&mut self, at: usize) -> Result<char, JsonError> {
        let first = self.hex4(at)?;
        let code = match first {
            0xD800..=0xDBFF => {
                let low_at = self.pos;
                if self.input.get(low_at..low_at + 2) != Some(b"\\u") {
                    return Err(JsonError::LoneSurrogate { offset: at });
                }
                self.pos += 2;
                let low = self.hex4(low_at)?;
                if !(0xDC00..=0xDFFF).contains(&low) {
                    return Err(JsonError::LoneSurrogate { offset: at });
                }
                0x10000 + ((first - 0xD800) << 10) + (low - 0xDC00)
            }
            0xDC00..=0xDFFF => return Err(JsonError::LoneSurrogate { offset: at }),
            _ => first,
        };
        char::from_u32(code).ok_or(JsonError::LoneSurrogate { offset: at })
    }

    /// Four hex digits at the cursor, for the escape whose backslash is at `at`.
    fn hex4(&mut self, at: usize) -> Result<u32, JsonError> {
        let mut code = 0;
        for _ in 0..4 {
            let Some(b) = self.peek() else {
                return Err(self.unexpected());
            };
            let digit = char::from(b).to_digit(16).ok_or(JsonError::BadEscape { offset: at })?;
            code = code * 16 + digit;
            self.pos += 1;
        }
        Ok(code)
    }

    /// Consumes one or more digits; fails if there is none.
    fn digits(&mut self, start: usize) -> Result<(), JsonError> {
        match self.peek() {
            Some(b'0'..=b'9') => {}
            Some(_) => return Err(JsonError::BadNumber { offset: start }),
            None => return Err(self.unexpected()),
        }
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
        Ok(())
    }

    /// A number at the cursor (on `-` or a digit).
    fn number(&mut self) -> Result<Number, JsonError> {
        let start = self.pos;
        let negative = self.peek() == Some(b'-');
        if negative {
            self.pos += 1;
        }
        let int_start = self.pos;
        self.digits(start)?;
        if self.input.get(int_start) == Some(&b'0') && self.pos - int_start > 1 {
            return Err(JsonError::BadNumber { offset: start });
        }
        let int_end = self.pos;
        let mut integral = true;
        if self.peek() == Some(b'.') {
            self.pos += 1;
            self.digits(start)?;
            integral = false;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            self.digits(start)?;
            integral = false;
        }
        let digits = self.input.get(int_start..int_end).unwrap_or_default();
        match integral.then(|| integer(negative, digits)).flatten() {
            Some(n) => Ok(n),
            None => self.float(start),
        }
    }

    /// The text from `start` to the cursor as an `f64`.
    fn float(&self, start: usize) -> Result<Number, JsonError> {
        let text = self.input.get(start..self.pos).unwrap_or_default();
        // The grammar was checked above, and Rust's float syntax is a superset of it.
        let f: f64 = std::str::from_utf8(text)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or(JsonError::BadNumber { offset: start })?;
        if f.is_finite() {
            Ok(Number::Float(f))
        } else {
            Err(JsonError::NumberOutOfRange { offset: start })
        }
    }
}

/// An integer from its ASCII digits, or `None` if it needs a float (beyond 64 bits, or -0).
fn integer(negative: bool, digits: &[u8]) -> Option<Number> {
    let magnitude = digits.iter().try_fold(0u64, |acc, &d| acc.checked_mul(10)?.checked_add(u64::from(d - b'0')))?;
    if negative {
        if magnitude == 0 {
            return None;
        }
        i64::try_from(-i128::from(magnitude)).ok().map(Number::Int)
    } else {
        Some(i64::try_from(magnitude).map_or(Number::UInt(magnitude), Number::Int))
    }
}

/// Writes `v` as compact JSON.
pub fn to_string(v: &Value) -> String {
    let mut out = String::new();
    write(v, &mut out);
    out
}

/// Appends `v` to `out` as compact JSON (no whitespace).
///
/// Non-finite floats are written as `null`; finite ones always have a `.` or an exponent so
/// they read back as floats.
pub fn write(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => write_number(*n, out),
        Value::String(s) => write_str(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(item, out);
            }
            out.push(']');
        }
        Value::Object(members) => {
            out.push('{');
            for (i, (k, item)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(k, out);
                out.push(':');
                write(item, out);
            }
            out.push('}');
        }
    }
}

/// Appends `v` formatted with `Display`.
fn push_display(out: &mut String, v: impl Display) {
    // `fmt::Write` for `String` never fails.
    let _ = write!(out, "{v}");
}

fn write_number(n: Number, out: &mut String) {
    match n {
        Number::Int(i) => push_display(out, i),
        Number::UInt(u) => push_display(out, u),
        Number::Float(f) if !f.is_finite() => out.push_str("null"),
        Number::Float(f) => write_float(f, out),
    }
}

/// A finite float in the shortest text that reads back to the same value, always with a
/// `.` or an exponent so it reads back as a float.
///
/// Magnitudes from 1e-7 up to 1e21 are written positionally (as JavaScript does), others
/// with an exponent: hundreds of digits are legal JSON, but some readers (serde_json among
/// them) reject `1797…0.0` as out of range.
fn write_float(f: f64, out: &mut String) {
    let magnitude = f.abs();
    if magnitude != 0.0 && !(1e-7..1e21).contains(&magnitude) {
        let _ = write!(out, "{f:e}"); // `fmt::Write` for `String` never fails.
        return;
    }
    let start = out.len();
    push_display(out, f);
    if !out.get(start..).unwrap_or_default().contains('.') {
        out.push_str(".0");
    }
}

fn write_str(s: &str, out: &mut String) {
    out.push('"');
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let escaped = match c {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\n' => "\\n",
            '\r' => "\\r",
            '\t' => "\\t",
            '\u{8}' => "\\b",
            '\u{c}' => "\\f",
            c if c < ' ' => "",
            _ => continue,
        };
        out.push_str(s.get(start..i).unwrap_or_default());
        if escaped.is_empty() {
            push_display(out, format_args!("\\u{:04x}", u32::from(c)));
        } else {
            out.push_str(escaped);
        }
        start = i + c.len_utf8();
    }
    out.push_str(s.get(start..).unwrap_or_default());
    out.push('"');
}

/// A type that maps to and from a JSON value the way TarsCpp's TarsJson.h does.
pub trait JsonField: Sized {
    /// The JSON form of `self`.
    fn to_json(&self) -> Value;
    /// Reads a value back; a wrong JSON kind is a `TypeMismatch`, a value out of range
    /// `Invalid`.
    fn from_json(v: &Value) -> Result<Self, DecodeError>;
}

/// Types usable as JSON object keys for map<K,V>: strings as-is, integers/floats stringified.
pub trait JsonKey: Sized {
    /// The key text.
    fn to_key(&self) -> String;
    /// Reads a key back; text that does not parse as `Self` is `Invalid`.
    fn from_key(k: &str) -> Result<Self, DecodeError>;
}

/// `expected …, got <kind of v>`.
#[cold]
fn mismatch(expected: &'static str, v: &Value) -> DecodeError {
    DecodeError::new(DecodeErrorKind::TypeMismatch { expected, got: v.kind() })
}

#[cold]
/// Parses a stringified number used as a JSON object key.
fn parse_key<T: std::str::FromStr>(k: &str, name: &str) -> Result<T, DecodeError> {
    k.parse().map_err(|_| invalid(format!("map key {k:?} is not a valid {name}")))
}

fn invalid(msg: String) -> DecodeError {
    DecodeError::new(DecodeErrorKind::Invalid(msg))
}

/// Any JSON number with an integral value, widened; `expected` names the IDL type.
fn integer_of(v: &Value, expected: &'static str) -> Result<i128, DecodeError> {
    match v {
        Value::Number(Number::Int(i)) => Ok(i128::from(*i)),
        Value::Number(Number::UInt(u)) => Ok(i128::from(*u)),
        Value::Number(Number::Float(f)) => float_to_integer(*f, expected),
        _ => Err(mismatch(expected, v)),
    }
}

/// `f` if it is integral and fits `i128` (every target type fits far inside that).
#[allow(clippy::cast_possible_truncation)]
fn float_to_integer(f: f64, expected: &'static str) -> Result<i128, DecodeError> {
    // 2^127: every integral f64 below it in magnitude converts exactly.
    const LIMIT: f64 = 1.7014118346046923e38;
    // The fraction of inf or NaN is NaN, so this rejects them too.
    if f.fract() != 0.0 {
        return Err(invalid(format!("{f} is not an integer ({expected})")));
    }
    if f.abs() >= LIMIT {
        return Err(invalid(format!("{f} out of range for {expected}")));
    }
    Ok(f as i128)
}

macro_rules! json_integer {
    ($($t:ty => $name:literal),* $(,)?) => {$(
        impl JsonField for $t {
            fn to_json(&self) -> Value {
                Value::Number(Number::Int(i64::from(*self)))
            }
            fn from_json(v: &Value) -> Result<Self, DecodeError> {
                let n = integer_of(v, $name)?;
                <$t>::try_from(n).map_err(|_| invalid(format!("{n} out of range for {}", $name)))
            }
        }

        impl JsonKey for $t {
            fn to_key(&self) -> String {
                self.to_string()
            }
            fn from_key(k: &str) -> Result<Self, DecodeError> {
                parse_key(k, $name)
            }
        }
    )*};
}

json_integer! {
    i8 => "byte",
    i16 => "short",
    i32 => "int",
    i64 => "long",
    u8 => "unsigned byte",
    u16 => "unsigned short",
    u32 => "unsigned int",
}

impl JsonField for bool {
    fn to_json(&self) -> Value {
        Value::Bool(*self)
    }
    /// A JSON boolean, or the number 0 or 1.
    fn from_json(v: &Value) -> Result<Self, DecodeError> {
        match v {
            Value::Bool(b) => Ok(*b),
            Value::Number(_) => match integer_of(v, "bool")? {
                0 => Ok(false),
                1 => Ok(true),
                n => Err(invalid(format!("{n} is not a bool (0 or 1)"))),
            },
            _ => Err(mismatch("bool", v)),
        }
    }
}

/// Any JSON number as an `f64`; `null` is NaN (TarsCpp reads a null float that way).
#[allow(clippy::cast_precision_loss)]
fn float_of(v: &Value, expected: &'static str) -> Result<f64, DecodeError> {
    match v {
        Value::Number(Number::Int(i)) => Ok(*i as f64),
        Value::Number(Number::UInt(u)) => Ok(*u as f64),
        Value::Number(Number::Float(f)) => Ok(*f),
        Value::Null => Ok(f64::NAN),
        _ => Err(mismatch(expected, v)),
    }
}

impl JsonField for f64 {
    /// A number; NaN and infinities are written as `null`.
    fn to_json(&self) -> Value {
        Value::Number(Number::Float(*self))
    }
    fn from_json(v: &Value) -> Result<Self, DecodeError> {
        float_of(v, "double")
    }
}

/// The `f64` whose shortest text is that of `x`, so `0.1f32` is written `0.1`, not
/// `0.10000000149011612`; it still reads back to the same `f32`.
fn shortest_f32(x: f32) -> f64 {
    x.to_string().parse().unwrap_or(f64::from(x))
}

impl JsonField for f32 {
    /// A number written with the shortest `f32` digits; NaN and infinities as `null`.
    fn to_json(&self) -> Value {
        Value::Number(Number::Float(shortest_f32(*self)))
    }
    #[allow(clippy::cast_possible_truncation)]
    fn from_json(v: &Value) -> Result<Self, DecodeError> {
        float_of(v, "float").map(|f| f as f32)
    }
}

impl JsonField for String {
    fn to_json(&self) -> Value {
        Value::String(self.clone())
    }
    fn from_json(v: &Value) -> Result<Self, DecodeError> {
        match v {
            Value::String(s) => Ok(s.clone()),
            _ => Err(mismatch("string", v)),
        }
    }
}

/// JSON strings are text: bytes that are not UTF-8 are replaced (U+FFFD), as any JSON peer
/// would see them.
impl JsonField for crate::codec::BinString {
    fn to_json(&self) -> Value {
        Value::String(String::from_utf8_lossy(&self.0).into_owned())
    }
    fn from_json(v: &Value) -> Result<Self, DecodeError> {
        String::from_json(v).map(crate::codec::BinString::from)
    }
}

impl JsonField for Bytes {
    /// `vector<byte>`: an array of numbers, each the signed byte (-128..=127), as C++
    /// writes `vector<Char>`.
    fn to_json(&self) -> Value {
        let items = self.iter().map(|&b| Value::Number(Number::Int(i64::from(i8::from_ne_bytes([b]))))).collect();
        Value::Array(items)
    }
    /// An array of numbers in -128..=255 (signed or unsigned bytes).
    fn from_json(v: &Value) -> Result<Self, DecodeError> {
        let Value::Array(items) = v else {
            return Err(mismatch("byte array", v));
        };
        items.iter().map(byte_of).collect::<Result<Vec<u8>, _>>().map(Bytes::from)
    }
}

/// One element of a `vector<byte>`.
fn byte_of(v: &Value) -> Result<u8, DecodeError> {
    let n = integer_of(v, "byte")?;
    u8::try_from(n)
        .or_else(|_| i8::try_from(n).map(|s| s.to_ne_bytes()[0]))
        .map_err(|_| invalid(format!("{n} out of range for byte")))
}

impl<T: JsonField> JsonField for Vec<T> {
    fn to_json(&self) -> Value {
        Value::Array(self.iter().map(JsonField::to_json).collect())
    }
    fn from_json(v: &Value) -> Result<Self, DecodeError> {
        match v {
            Value::Array(items) => items.iter().map(T::from_json).collect(),
            _ => Err(mismatch("array", v)),
        }
    }
}

impl<K: JsonKey + Ord, V: JsonField> JsonField for BTreeMap<K, V> {
    /// An object whose keys are [`JsonKey::to_key`].
    fn to_json(&self) -> Value {
        Value::Object(self.iter().map(|(k, v)| (k.to_key(), v.to_json())).collect())
    }
    fn from_json(v: &Value) -> Result<Self, DecodeError> {
        let Value::Object(members) = v else {
            return Err(mismatch("object", v));
        };
        members.iter().map(|(k, v)| Ok((K::from_key(k)?, V::from_json(v)?))).collect()
    }
}

impl JsonKey for String {
    fn to_key(&self) -> String {
        self.clone()
    }
    fn from_key(k: &str) -> Result<Self, DecodeError> {
        Ok(k.to_owned())
    }
}

macro_rules! json_float_key {
    ($($t:ty => $name:literal),*) => {$(
        impl JsonKey for $t {
            /// The shortest text that reads back to the same value.
            fn to_key(&self) -> String {
                self.to_string()
            }
            fn from_key(k: &str) -> Result<Self, DecodeError> {
                parse_key(k, $name)
            }
        }
    )*};
}

json_float_key!(f32 => "float", f64 => "double");

/// Reads member `name` of a JSON object: `Ok(None)` if absent, an error naming
/// `owner.name` if present with the wrong type.
///
/// A `null` counts as absent for every type that does not itself accept `null`; floats
/// do, and read it as NaN like TarsCpp.
pub fn get_member<T: JsonField>(
    obj: &BTreeMap<String, Value>,
    owner: &'static str,
    name: &'static str,
) -> Result<Option<T>, DecodeError> {
    match obj.get(name) {
        None => Ok(None),
        Some(Value::Null) => Ok(T::from_json(&Value::Null).ok()),
        Some(v) => T::from_json(v).map(Some).map_err(|e| e.at(owner, name)),
    }
}

/// Reads member `name` of a generated struct into `slot`. An absent member leaves the default
/// in place, unless it is `require`d: then it is an error naming `owner.name`.
pub fn read_member<T: JsonField>(
    obj: &BTreeMap<String, Value>,
    owner: &'static str,
    name: &'static str,
    required: Option<u8>,
    slot: &mut T,
) -> Result<(), DecodeError> {
    match (get_member(obj, owner, name)?, required) {
        (Some(v), _) => *slot = v,
        (None, Some(tag)) => return Err(DecodeError::new(DecodeErrorKind::RequiredMissing { tag }).at(owner, name)),
        (None, None) => {}
    }
    Ok(())
}

/// The object inside `v`, or a TypeMismatch error naming `owner`.
///
/// The error reads `expected <owner>, got <kind>`.
pub fn expect_object<'v>(v: &'v Value, owner: &'static str) -> Result<&'v BTreeMap<String, Value>, DecodeError> {
    v.as_object().ok_or_else(|| mismatch(owner, v))
}
