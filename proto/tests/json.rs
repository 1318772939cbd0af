//! The JSON value model, parser, writer and the IDL type mapping (`tars_proto::json`).

use bytes::Bytes;
use proptest::prelude::*;
use std::collections::BTreeMap;
use tars_proto::codec::DecodeErrorKind;
use tars_proto::json::{
    self, expect_object, get_member, parse, to_string, JsonError, JsonField, JsonKey, Number, Value, MAX_DEPTH,
};

fn int(i: i64) -> Value {
    Value::Number(Number::Int(i))
}

fn float(f: f64) -> Value {
    Value::Number(Number::Float(f))
}

fn string(s: &str) -> Value {
    Value::String(s.to_owned())
}

fn object(members: &[(&str, Value)]) -> Value {
    Value::Object(members.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect())
}

fn p(text: &str) -> Value {
    parse(text.as_bytes()).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

fn err(text: &[u8]) -> JsonError {
    match parse(text) {
        Ok(v) => panic!("{text:?} parsed as {v:?}"),
        Err(e) => e,
    }
}

// ---- parsing ----

#[test]
fn parses_every_kind() {
    assert_eq!(p("null"), Value::Null);
    assert_eq!(p("true"), Value::Bool(true));
    assert_eq!(p("false"), Value::Bool(false));
    assert_eq!(p("42"), int(42));
    assert_eq!(p("-1.5"), float(-1.5));
    assert_eq!(p(r#""hi""#), string("hi"));
    assert_eq!(p("[]"), Value::Array(vec![]));
    assert_eq!(p("{}"), Value::Object(BTreeMap::new()));
    assert_eq!(
        p(r#"{"id":1000,"name":"tars","tags":[true,null,{"x":[]}]}"#),
        object(&[
            ("id", int(1000)),
            ("name", string("tars")),
            ("tags", Value::Array(vec![Value::Bool(true), Value::Null, object(&[("x", Value::Array(vec![]))])])),
        ])
    );
}

#[test]
fn whitespace_is_allowed_around_every_token() {
    let v = p(" \t\r\n{ \"a\" : [ 1 , 2 ] , \"b\" :\n\"c\" } \n");
    assert_eq!(v, object(&[("a", Value::Array(vec![int(1), int(2)])), ("b", string("c"))]));
}

#[test]
fn duplicate_keys_keep_the_last_value() {
    assert_eq!(p(r#"{"a":1,"a":2}"#), object(&[("a", int(2))]));
}

#[test]
fn every_escape_is_decoded() {
    assert_eq!(p(r#""\"\\\/\b\f\n\r\t""#), string("\"\\/\u{8}\u{c}\n\r\t"));
    assert_eq!(p(r#""\u0041\u00e9\u4e2D\u0000""#), string("Aé中\0"));
    assert_eq!(p(r#""a\u0020b""#), string("a b"));
}

#[test]
fn surrogate_pairs_are_joined() {
    assert_eq!(p(r#""\ud83d\ude00""#), string("😀"));
    assert_eq!(p(r#""\uD834\uDD1E!""#), string("𝄞!"));
    assert_eq!(p(r#""\udbff\udfff""#), string("\u{10FFFF}"));
}

#[test]
fn raw_utf8_is_kept() {
    assert_eq!(p("\"héllo 中文 😀\""), string("héllo 中文 😀"));
    assert_eq!(p("\"\u{7f}\""), string("\u{7f}"));
}

#[test]
fn integers_at_the_i64_and_u64_boundaries() {
    assert_eq!(p("9223372036854775807"), int(i64::MAX));
    assert_eq!(p("-9223372036854775808"), int(i64::MIN));
    assert_eq!(p("9223372036854775808"), Value::Number(Number::UInt(1 << 63)));
    assert_eq!(p("18446744073709551615"), Value::Number(Number::UInt(u64::MAX)));
    assert_eq!(p("18446744073709551616"), float(18446744073709551616.0));
    assert_eq!(p("-9223372036854775809"), float(-9223372036854775809.0));
    assert_eq!(p("0"), int(0));
}

#[test]
fn numbers_with_fraction_or_exponent_are_floats() {
    assert_eq!(p("1.0"), float(1.0));
    assert_eq!(p("1e2"), float(100.0));
    assert_eq!(p("1E+2"), float(100.0));
    assert_eq!(p("-2.5e-3"), float(-0.0025));
    assert_eq!(p("0.1"), float(0.1));
    assert_eq!(p("1e-400"), float(0.0));
    assert_eq!(p("1.7976931348623157e308"), float(f64::MAX));
}

#[test]
fn negative_zero_keeps_its_sign() {
    let Value::Number(Number::Float(f)) = p("-0") else { panic!("-0 is not a float") };
    assert!(f == 0.0 && f.is_sign_negative());
    assert_eq!(to_string(&p("-0")), "-0.0");
}

// ---- errors ----

#[test]
fn unexpected_char() {
    assert_eq!(err(b"[1 2]"), JsonError::UnexpectedChar { offset: 3, byte: b'2' });
    assert_eq!(err(b"{1:2}"), JsonError::UnexpectedChar { offset: 1, byte: b'1' });
    assert_eq!(err(br#"{"a" 1}"#), JsonError::UnexpectedChar { offset: 5, byte: b'1' });
    assert_eq!(err(b"[1,]"), JsonError::UnexpectedChar { offset: 3, byte: b']' });
    assert_eq!(err(br#"{"a":1,}"#), JsonError::UnexpectedChar { offset: 7, byte: b'}' });
    assert_eq!(err(b"tru3"), JsonError::UnexpectedChar { offset: 3, byte: b'3' });
    assert_eq!(err(b"nul"), JsonError::UnexpectedEnd { offset: 3 });
    assert_eq!(err(b"+1"), JsonError::UnexpectedChar { offset: 0, byte: b'+' });
    assert_eq!(err(b"'a'"), JsonError::UnexpectedChar { offset: 0, byte: b'\'' });
    assert_eq!(err(b"NaN"), JsonError::UnexpectedChar { offset: 0, byte: b'N' });
    // A raw control character inside a string.
    assert_eq!(err(b"\"a\nb\""), JsonError::UnexpectedChar { offset: 2, byte: b'\n' });
    assert_eq!(err(b"\"\x00\""), JsonError::UnexpectedChar { offset: 1, byte: 0 });
    // A byte-order mark is not whitespace.
    assert_eq!(err(b"\xEF\xBB\xBF1"), JsonError::UnexpectedChar { offset: 0, byte: 0xEF });
}

#[test]
fn error_messages_name_the_byte_and_offset() {
    assert_eq!(err(b"[1 2]").to_string(), "unexpected character '2' at byte 3");
    assert_eq!(err(b"\"\x01\"").to_string(), "unexpected byte 0x01 at byte 1");
    assert_eq!(err(b"[").to_string(), "unexpected end of input at byte 1");
}

#[test]
fn unexpected_end() {
    for (text, offset) in [
        ("", 0),
        ("   ", 3),
        ("[", 1),
        ("[1,", 3),
        ("{", 1),
        (r#"{"a""#, 4),
        (r#"{"a":"#, 5),
        (r#""abc"#, 4),
        (r#""\"#, 2),
        (r#""\u12"#, 5),
        ("-", 1),
        ("1.", 2),
        ("1e", 2),
        ("1e+", 3),
        ("fals", 4),
    ] {
        assert_eq!(err(text.as_bytes()), JsonError::UnexpectedEnd { offset }, "{text:?}");
    }
}

#[test]
fn bad_escape() {
    assert_eq!(err(br#""a\x""#), JsonError::BadEscape { offset: 2 });
    assert_eq!(err(br#""\U0041""#), JsonError::BadEscape { offset: 1 });
    assert_eq!(err(br#""\u00g1""#), JsonError::BadEscape { offset: 1 });
    assert_eq!(err(br#""\'""#), JsonError::BadEscape { offset: 1 });
    assert_eq!(err(br#""\ud800\u00zz""#), JsonError::BadEscape { offset: 7 });
}

#[test]
fn bad_number() {
    for text in ["01", "-01", "00", "1.e5", "1.x", "-a", "1e+x", "-.5", "2.]"] {
        assert_eq!(err(text.as_bytes()), JsonError::BadNumber { offset: 0 }, "{text:?}");
    }
    assert_eq!(err(b"[1, 012]"), JsonError::BadNumber { offset: 4 });
}

#[test]
fn number_out_of_range() {
    assert_eq!(err(b"1e400"), JsonError::NumberOutOfRange { offset: 0 });
    assert_eq!(err(b"[-1.8e308]"), JsonError::NumberOutOfRange { offset: 1 });
}

#[test]
fn too_deep() {
    let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
    assert!(parse(ok.as_bytes()).is_ok());
    let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
    assert_eq!(err(deep.as_bytes()), JsonError::TooDeep { offset: MAX_DEPTH });
    let objects = format!("{}1{}", r#"{"a":"#.repeat(MAX_DEPTH + 1), "}".repeat(MAX_DEPTH + 1));
    assert_eq!(err(objects.as_bytes()), JsonError::TooDeep { offset: 5 * MAX_DEPTH });
}

#[test]
fn a_hundred_thousand_brackets_are_an_error_not_a_stack_overflow() {
    let deep = "[".repeat(100_000);
    assert_eq!(err(deep.as_bytes()), JsonError::TooDeep { offset: MAX_DEPTH });
    let deep = r#"{"a":"#.repeat(100_000);
    assert!(matches!(err(deep.as_bytes()), JsonError::TooDeep { .. }));
}

#[test]
fn trailing_characters() {
    assert_eq!(err(b"1 2"), JsonError::TrailingCharacters { offset: 2 });
    assert_eq!(err(b"{} x"), JsonError::TrailingCharacters { offset: 3 });
    assert_eq!(err(b"[]]"), JsonError::TrailingCharacters { offset: 2 });
    assert_eq!(err(b"null\0"), JsonError::TrailingCharacters { offset: 4 });
}

#[test]
fn invalid_utf8() {
    assert_eq!(err(b"\"ab\xFFcd\""), JsonError::InvalidUtf8 { offset: 3 });
    // A truncated sequence right before an escape and before the closing quote.
    assert_eq!(err(b"\"\xE4\xB8\\n\""), JsonError::InvalidUtf8 { offset: 1 });
    assert_eq!(err(b"\"x\xC3\""), JsonError::InvalidUtf8 { offset: 2 });
    // An encoded surrogate (CESU-8) and an overlong encoding.
    assert_eq!(err(b"\"\xED\xA0\x80\""), JsonError::InvalidUtf8 { offset: 1 });
    assert_eq!(err(b"\"\xC0\xAF\""), JsonError::InvalidUtf8 { offset: 1 });
}

#[test]
fn lone_surrogate() {
    assert_eq!(err(br#""\ud800""#), JsonError::LoneSurrogate { offset: 1 });
    assert_eq!(err(br#""ab\ud800x""#), JsonError::LoneSurrogate { offset: 3 });
    assert_eq!(err(br#""\udc00""#), JsonError::LoneSurrogate { offset: 1 });
    assert_eq!(err(br#""\ud800\u0041""#), JsonError::LoneSurrogate { offset: 1 });
    assert_eq!(err(br#""\ud800\ud800""#), JsonError::LoneSurrogate { offset: 1 });
    assert_eq!(err(br#""\ud800\n""#), JsonError::LoneSurrogate { offset: 1 });
}

// ---- writing ----

#[test]
fn writes_compactly() {
    let v = p(r#" { "b" : [ 1 , 2.5 , null ] , "a" : { } , "c" : true } "#);
    assert_eq!(to_string(&v), r#"{"a":{},"b":[1,2.5,null],"c":true}"#);
    let mut out = String::from("x=");
    json::write(&v, &mut out);
    assert_eq!(out, r#"x={"a":{},"b":[1,2.5,null],"c":true}"#);
}

#[test]
fn writes_every_escape() {
    let v = string("\"\\/\u{8}\u{c}\n\r\t\u{0}\u{1f}\u{7f}é😀");
    assert_eq!(to_string(&v), r#""\"\\/\b\f\n\r\t\u0000\u001f"#.to_owned() + "\u{7f}é😀\"");
    assert_eq!(parse(to_string(&v).as_bytes()), Ok(v));
}

#[test]
fn writes_numbers() {
    assert_eq!(to_string(&int(i64::MIN)), "-9223372036854775808");
    assert_eq!(to_string(&Value::Number(Number::UInt(u64::MAX))), "18446744073709551615");
    assert_eq!(to_string(&float(1.0)), "1.0");
    assert_eq!(to_string(&float(-2.5)), "-2.5");
    assert_eq!(to_string(&float(0.1)), "0.1");
    assert_eq!(to_string(&float(1e20)), "100000000000000000000.0");
    assert_eq!(to_string(&float(-1.5e21)), "-1.5e21");
    assert_eq!(to_string(&float(1e-7)), "0.0000001");
    assert_eq!(to_string(&float(2.5e-8)), "2.5e-8");
    assert_eq!(to_string(&float(f64::MAX)), "1.7976931348623157e308");
    assert_eq!(to_string(&float(5e-324)), "5e-324");
    assert_eq!(to_string(&float(-0.0)), "-0.0");
    assert_eq!(to_string(&float(f64::NAN)), "null");
    assert_eq!(to_string(&float(f64::INFINITY)), "null");
    assert_eq!(to_string(&float(f64::NEG_INFINITY)), "null");
}

#[test]
fn floats_read_back_exactly_and_as_floats() {
    for f in [0.0, 1.0, -1.0, 0.1, 1.0 / 3.0, 1e300, 1e-300, f64::MAX, f64::MIN_POSITIVE, 5e-324] {
        let v = float(f);
        let text = to_string(&v);
        assert_eq!(parse(text.as_bytes()), Ok(v), "{text}");
    }
}

#[test]
fn kind_and_as_object() {
    let kinds: Vec<&str> = [Value::Null, Value::Bool(true), int(1), string(""), Value::Array(vec![]), object(&[])]
        .iter()
        .map(Value::kind)
        .collect();
    assert_eq!(kinds, ["null", "bool", "number", "string", "array", "object"]);
    assert_eq!(object(&[("a", int(1))]).as_object().map(BTreeMap::len), Some(1));
    assert_eq!(Value::Array(vec![]).as_object(), None);
}

// ---- agreement with serde_json ----

const TRICKY: &[&str] = &[
    "null",
    "[]",
    "{}",
    "  [ ]  ",
    r#"{"a":{"b":{"c":[1,[2,[3,{}]]]}}}"#,
    r#"{"a":1,"a":2}"#,
    r#"{"":""}"#,
    r#""\u0000\u001F\u007f\u0080\uFFFF""#,
    r#""\ud83d\ude00 \uD834\uDD1E""#,
    r#""\"\\\/\b\f\n\r\t""#,
    "\"héllo 中文 😀\"",
    "[0,-0,0.0,-0.0,1,-1]",
    "[9223372036854775807,-9223372036854775808,9223372036854775808,18446744073709551615]",
    "[18446744073709551616,-9223372036854775809,1e19]",
    "[1e2,1E-2,1.5e+3,0.000001,123.456,-0.5]",
    "[1e-400,2.2250738585072014e-308,1.7976931348623157e308]",
    "[true,false,null,\"x\",{\"k\":[{}]}]",
    r#"{"id":1000,"name":"tars","tars_ret":0,"reply":"hi tars"}"#,
    "\t\r\n 42 \n",
];

#[test]
fn agrees_with_serde_json() {
    for doc in TRICKY {
        let ours = to_string(&p(doc));
        let reread: serde_json::Value =
            serde_json::from_str(&ours).unwrap_or_else(|e| panic!("{doc}: ours wrote {ours}: {e}"));
        let theirs: serde_json::Value = serde_json::from_str(doc).expect("serde_json parses it");
        assert_eq!(reread, theirs, "{doc}");
    }
}

#[test]
fn rejects_what_serde_json_rejects() {
    for doc in [
        "",
        "[1,]",
        "{\"a\":1,}",
        "01",
        "1.",
        ".5",
        "+1",
        "\"\\x\"",
        "\"\\ud800\"",
        "[1 2]",
        "\"a\nb\"",
        "1e400",
        "NaN",
        "Infinity",
        "[",
        "{\"a\"}",
        "'a'",
        "1 2",
    ] {
        assert!(parse(doc.as_bytes()).is_err(), "{doc:?}");
        assert!(serde_json::from_str::<serde_json::Value>(doc).is_err(), "{doc:?}");
    }
}

// ---- JsonField ----

fn kind_of(e: &tars_proto::DecodeError) -> &DecodeErrorKind {
    e.kind()
}

fn assert_mismatch<T: JsonField + std::fmt::Debug>(v: Value, expected: &'static str) {
    let e = T::from_json(&v).expect_err("a wrong kind must fail");
    assert_eq!(kind_of(&e), &DecodeErrorKind::TypeMismatch { expected, got: v.kind() });
}

fn assert_invalid<T: JsonField + std::fmt::Debug>(v: Value) {
    let e = T::from_json(&v).expect_err("an out-of-range value must fail");
    assert!(matches!(kind_of(&e), DecodeErrorKind::Invalid(_)), "{v:?}: {e}");
}

fn round_trip<T: JsonField + PartialEq + std::fmt::Debug>(x: T, json: &str) {
    let v = x.to_json();
    assert_eq!(to_string(&v), json);
    assert_eq!(T::from_json(&p(json)).expect("reads back"), x);
}

#[test]
fn bool_field() {
    round_trip(true, "true");
    round_trip(false, "false");
    assert_eq!(bool::from_json(&int(1)), Ok(true));
    assert_eq!(bool::from_json(&int(0)), Ok(false));
    assert_eq!(bool::from_json(&float(1.0)), Ok(true));
    assert_invalid::<bool>(int(2));
    assert_invalid::<bool>(int(-1));
    assert_invalid::<bool>(float(0.5));
    assert_mismatch::<bool>(string("true"), "bool");
    assert_mismatch::<bool>(Value::Null, "bool");
}

#[test]
fn signed_integer_fields() {
    round_trip(i8::MIN, "-128");
    round_trip(i8::MAX, "127");
    round_trip(i16::MIN, "-32768");
    round_trip(i32::MAX, "2147483647");
    round_trip(i64::MIN, "-9223372036854775808");
    round_trip(i64::MAX, "9223372036854775807");
    assert_invalid::<i8>(int(128));
    assert_invalid::<i8>(int(-129));
    assert_invalid::<i16>(int(32768));
    assert_invalid::<i32>(int(-2147483649));
    assert_invalid::<i64>(Value::Number(Number::UInt(1 << 63)));
    assert_invalid::<i64>(float(1e19));
    assert_mismatch::<i32>(string("1"), "int");
    assert_mismatch::<i64>(Value::Array(vec![]), "long");
    assert_mismatch::<i8>(Value::Bool(true), "byte");
    assert_mismatch::<i16>(Value::Null, "short");
}

#[test]
fn unsigned_integer_fields() {
    round_trip(u8::MAX, "255");
    round_trip(u16::MAX, "65535");
    round_trip(u32::MAX, "4294967295");
    round_trip(0u32, "0");
    assert_invalid::<u8>(int(256));
    assert_invalid::<u8>(int(-1));
    assert_invalid::<u16>(int(65536));
    assert_invalid::<u32>(int(4294967296));
    assert_invalid::<u32>(int(-1));
    assert_mismatch::<u32>(object(&[]), "unsigned int");
}

#[test]
fn integers_accept_integral_floats_only() {
    assert_eq!(i32::from_json(&float(7.0)), Ok(7));
    assert_eq!(i32::from_json(&float(-0.0)), Ok(0));
    assert_eq!(i32::from_json(&p("1e3")), Ok(1000));
    assert_eq!(i64::from_json(&float(-9223372036854775808.0)), Ok(i64::MIN));
    assert_invalid::<i32>(float(7.5));
    assert_invalid::<i32>(float(f64::NAN));
    assert_invalid::<i32>(float(f64::INFINITY));
    assert_invalid::<i64>(float(1e300));
    assert_invalid::<u8>(float(256.0));
}

#[test]
fn float_fields() {
    round_trip(1.5f64, "1.5");
    round_trip(-0.1f64, "-0.1");
    round_trip(3.0f64, "3.0");
    round_trip(0.1f32, "0.1");
    round_trip(f32::MAX, "3.4028235e38");
    round_trip(1e-10f32, "1e-10");
    assert_eq!(f64::from_json(&int(3)), Ok(3.0));
    assert_eq!(f64::from_json(&Value::Number(Number::UInt(u64::MAX))), Ok(1.8446744073709552e19));
    assert_eq!(f32::from_json(&float(0.1)), Ok(0.1f32));
    assert!(f64::from_json(&Value::Null).expect("null is NaN").is_nan());
    assert!(f32::from_json(&Value::Null).expect("null is NaN").is_nan());
    assert_eq!(to_string(&f64::NAN.to_json()), "null");
    assert_eq!(to_string(&f32::INFINITY.to_json()), "null");
    assert_mismatch::<f64>(string("1.5"), "double");
    assert_mismatch::<f32>(Value::Bool(false), "float");
}

#[test]
fn string_field() {
    round_trip("hi \"tars\"\n".to_owned(), r#""hi \"tars\"\n""#);
    round_trip(String::new(), r#""""#);
    assert_mismatch::<String>(int(1), "string");
    assert_mismatch::<String>(Value::Null, "string");
}

#[test]
fn bytes_field_is_an_array_of_signed_bytes() {
    round_trip(Bytes::from_static(&[0, 1, 127, 128, 255]), "[0,1,127,-128,-1]");
    round_trip(Bytes::new(), "[]");
    assert_eq!(Bytes::from_json(&p("[200,255,-128,-1,0]")), Ok(Bytes::from_static(&[200, 255, 128, 255, 0])));
    assert_invalid::<Bytes>(p("[256]"));
    assert_invalid::<Bytes>(p("[-129]"));
    assert_invalid::<Bytes>(p("[1.5]"));
    assert_mismatch::<Bytes>(string("AAEC"), "byte array");
}

#[test]
fn bytes_element_errors_name_the_element_kind() {
    let e = Bytes::from_json(&p(r#"[1,"a"]"#)).expect_err("a string element");
    assert_eq!(kind_of(&e), &DecodeErrorKind::TypeMismatch { expected: "byte", got: "string" });
}

#[test]
fn vec_field() {
    round_trip(vec![1i32, -2, 3], "[1,-2,3]");
    round_trip(vec![vec!["a".to_owned()], vec![]], r#"[["a"],[]]"#);
    round_trip(Vec::<i32>::new(), "[]");
    assert_mismatch::<Vec<i32>>(object(&[]), "array");
    let e = Vec::<i32>::from_json(&p(r#"[1,"2"]"#)).expect_err("a string element");
    assert_eq!(kind_of(&e), &DecodeErrorKind::TypeMismatch { expected: "int", got: "string" });
    assert_invalid::<Vec<u8>>(p("[1,300]"));
}

#[test]
fn map_fields() {
    let m: BTreeMap<String, i32> = [("a".to_owned(), 1), ("b".to_owned(), 2)].into();
    round_trip(m, r#"{"a":1,"b":2}"#);
    let m: BTreeMap<i32, String> = [(-5, "x".to_owned()), (10, "y".to_owned())].into();
    round_trip(m, r#"{"-5":"x","10":"y"}"#);
    let m: BTreeMap<u8, Vec<bool>> = [(255, vec![true])].into();
    round_trip(m, r#"{"255":[true]}"#);
    let m: BTreeMap<i64, i64> = [(i64::MIN, 0)].into();
    round_trip(m, r#"{"-9223372036854775808":0}"#);
    assert_mismatch::<BTreeMap<String, i32>>(Value::Array(vec![]), "object");
    assert_invalid::<BTreeMap<i32, i32>>(p(r#"{"x":1}"#));
    assert_invalid::<BTreeMap<u8, i32>>(p(r#"{"256":1}"#));
    assert_invalid::<BTreeMap<String, u8>>(p(r#"{"a":-1}"#));
}

#[test]
fn json_keys() {
    assert_eq!("k".to_owned().to_key(), "k");
    assert_eq!(String::from_key("a b"), Ok("a b".to_owned()));
    assert_eq!((-7i8).to_key(), "-7");
    assert_eq!(i16::from_key("-32768"), Ok(i16::MIN));
    assert_eq!(i32::from_key("42"), Ok(42));
    assert_eq!(i64::from_key("9223372036854775807"), Ok(i64::MAX));
    assert_eq!(u8::from_key("255"), Ok(255));
    assert_eq!(u16::from_key("65535"), Ok(u16::MAX));
    assert_eq!(u32::from_key("4294967295"), Ok(u32::MAX));
    assert_eq!(1.5f64.to_key(), "1.5");
    assert_eq!(0.1f32.to_key(), "0.1");
    assert_eq!(f64::from_key("-2.25"), Ok(-2.25));
    assert_eq!(f32::from_key("0.1"), Ok(0.1));
    for bad in ["", "x", "1.5", "99999999999"] {
        let e = i32::from_key(bad).expect_err("not an int");
        assert!(matches!(e.kind(), DecodeErrorKind::Invalid(_)), "{bad:?}");
    }
    assert!(u32::from_key("-1").is_err());
    assert!(f64::from_key("one").is_err());
}

// ---- struct helpers ----

#[test]
fn get_member_reads_present_members() {
    let obj = p(r#"{"id":1000,"name":"tars","tags":[1,2]}"#);
    let obj = expect_object(&obj, "Req").expect("an object");
    assert_eq!(get_member::<i32>(obj, "Req", "id"), Ok(Some(1000)));
    assert_eq!(get_member::<String>(obj, "Req", "name"), Ok(Some("tars".to_owned())));
    assert_eq!(get_member::<Vec<u8>>(obj, "Req", "tags"), Ok(Some(vec![1, 2])));
}

#[test]
fn get_member_treats_absent_and_null_as_none() {
    let obj = p(r#"{"n":null}"#);
    let obj = expect_object(&obj, "Req").expect("an object");
    assert_eq!(get_member::<i32>(obj, "Req", "missing"), Ok(None));
    assert_eq!(get_member::<i32>(obj, "Req", "n"), Ok(None));
    assert_eq!(get_member::<String>(obj, "Req", "n"), Ok(None));
    // Floats read null as NaN, as TarsCpp does.
    let f = get_member::<f64>(obj, "Req", "n").expect("null float").expect("present");
    assert!(f.is_nan());
}

#[test]
fn get_member_errors_name_the_member() {
    let obj = p(r#"{"id":"x","small":300}"#);
    let obj = expect_object(&obj, "Req").expect("an object");
    let e = get_member::<i32>(obj, "Req", "id").expect_err("wrong kind");
    assert_eq!(e.path(), &[("Req", "id")]);
    assert_eq!(e.kind(), &DecodeErrorKind::TypeMismatch { expected: "int", got: "string" });
    assert_eq!(e.to_string(), "Req.id: expected int, got string");
    let e = get_member::<u8>(obj, "Req", "small").expect_err("out of range");
    assert_eq!(e.path(), &[("Req", "small")]);
    assert!(matches!(e.kind(), DecodeErrorKind::Invalid(_)));
}

#[test]
fn expect_object_names_the_owner() {
    let v = object(&[("a", int(1))]);
    assert_eq!(expect_object(&v, "Req").map(BTreeMap::len), Ok(1));
    let e = expect_object(&int(1), "Req").expect_err("not an object");
    assert_eq!(e.kind(), &DecodeErrorKind::TypeMismatch { expected: "Req", got: "number" });
    assert_eq!(e.to_string(), "expected Req, got number");
}

// ---- properties ----

fn arb_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(int),
        ((1u64 << 63)..=u64::MAX).prop_map(|u| Value::Number(Number::UInt(u))),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(float),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(any::<String>(), inner, 0..8).prop_map(Value::Object),
        ]
    })
}

proptest! {
    #[test]
    fn write_then_parse_is_identity(v in arb_value()) {
        let text = to_string(&v);
        let back = parse(text.as_bytes());
        prop_assert!(back.as_ref().is_ok_and(|b| b == &v), "{text}: {back:?}");
    }

    #[test]
    fn serde_json_reads_what_we_write(v in arb_value()) {
        let text = to_string(&v);
        prop_assert!(serde_json::from_str::<serde_json::Value>(&text).is_ok(), "{}", text);
    }

    #[test]
    fn parse_never_panics_and_output_is_stable(data in prop::collection::vec(any::<u8>(), 0..64)) {
        if let Ok(v) = parse(&data) {
            let text = to_string(&v);
            let again = parse(text.as_bytes());
            prop_assert!(again.as_ref().is_ok_and(|a| to_string(a) == text), "{text}");
        }
    }

    #[test]
    fn json_like_noise_never_panics(s in r#"[\[\]{}",:0-9eE.+\-tfnrul\\ ]{0,40}"#) {
        if let Ok(v) = parse(s.as_bytes()) {
            let text = to_string(&v);
            prop_assert_eq!(parse(text.as_bytes()), Ok(v));
        }
    }
}
