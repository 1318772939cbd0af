//! Byte-for-byte interop with the official Node encoder (`@tars/stream` 2.0.3, `@tars/rpc`
//! 2.0.15, pinned in `interop/package.json`).
//!
//! `interop/vectors.js` encodes a set of named values with the Node packages and prints
//! `{"<case>": "<hex>"}`. For every case this test builds the same value with our codec and
//!
//! 1. asserts that our bytes equal Node's (or, for a documented divergence, that our bytes are
//!    the TarsCpp form and Node's still differ),
//! 2. decodes Node's bytes (and ours) with our decoder and asserts the original value comes back.
//!
//! A case present on one side only is a failure. Cases whose name starts with `fw_` are the
//! framework structs, checked by `protocol/tests/node_interop.rs`.
//!
//! Needs `node` on the PATH and `npm ci --prefix interop` run once from the workspace root; the
//! test fails (it never skips) when either is missing.
//!
//! The second half checks that the decoder accepts the non-minimal forms the SDKs accept and
//! rejects, with a clear error, the forms they reject (TarsCpp `servant/tup/Tars.h`, `@tars/stream`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::sync::OnceLock;

use tars_proto::codec::{
    read_struct, write_struct, DecodeError, DecodeErrorKind, Field, Reader, Struct, WireType, Writer,
};
use tars_proto::frame::{encode_frame, FrameDecoder};
use tars_proto::packet::{RequestPacket, ResponsePacket, StringMap};
use tars_proto::rpc::{reply_frame, Current, ParamWriter, Reply, ServantError};
use tars_proto::tup::UniAttribute;
use tars_proto::{Bytes, BytesMut};

#[path = "../../interop/node.rs"]
mod node;

/// Node cases with this prefix belong to `protocol/tests/node_interop.rs`.
const FRAMEWORK_PREFIX: &str = "fw_";

// =============================================================================================
// Running vectors.js

/// The Node vectors, `name -> bytes`, produced once per test binary.
fn node_vectors() -> &'static BTreeMap<String, Vec<u8>> {
    static VECTORS: OnceLock<BTreeMap<String, Vec<u8>>> = OnceLock::new();
    VECTORS.get_or_init(load_node_vectors)
}

fn load_node_vectors() -> BTreeMap<String, Vec<u8>> {
    let stdout = node::run_vectors();
    let json: serde_json::Value = serde_json::from_slice(&stdout).expect("vectors.js printed invalid JSON");
    let obj = json.as_object().expect("vectors.js must print a JSON object");
    obj.iter().map(|(name, hex)| node::case_bytes(name, hex.as_str())).collect()
}

// =============================================================================================
// Cases

type EncodeFn = Box<dyn Fn() -> Vec<u8>>;
type CheckFn = Box<dyn Fn(&[u8]) -> Result<(), String>>;

/// One named value: how we encode it, how to check a decoding of it.
struct Case {
    name: String,
    encode: EncodeFn,
    /// Decodes `bytes` (Node's, then ours) and compares with the original value.
    decode: CheckFn,
    /// More checks on Node's bytes.
    extra: Vec<CheckFn>,
    divergence: Option<Divergence>,
}

/// Node encodes this case differently from TarsCpp; we follow TarsCpp.
struct Divergence {
    /// Our (TarsCpp) encoding.
    ours_hex: &'static str,
    why: &'static str,
}

impl Case {
    fn new(
        name: impl Into<String>,
        encode: impl Fn() -> Vec<u8> + 'static,
        decode: impl Fn(&[u8]) -> Result<(), String> + 'static,
    ) -> Case {
        Case {
            name: name.into(),
            encode: Box::new(encode),
            decode: Box::new(decode),
            extra: Vec::new(),
            divergence: None,
        }
    }

    /// Adds a check on Node's bytes.
    fn check(mut self, f: impl Fn(&[u8]) -> Result<(), String> + 'static) -> Case {
        self.extra.push(Box::new(f));
        self
    }

    /// Node's bytes must equal `hex` (a value checked against TarsCpp's encoder).
    fn spec(self, hex: &'static str) -> Case {
        self.check(move |node| {
            let want = hex::decode(hex.replace(' ', "")).map_err(|e| e.to_string())?;
            if node == want.as_slice() {
                Ok(())
            } else {
                Err(format!("Node's bytes differ from the TarsCpp example\n{}", diff("TarsCpp", &want, node)))
            }
        })
    }

    fn diverges(mut self, ours_hex: &'static str, why: &'static str) -> Case {
        self.divergence = Some(Divergence { ours_hex, why });
        self
    }
}

fn eq<T: PartialEq + Debug>(got: &T, want: &T) -> Result<(), String> {
    if got == want {
        return Ok(());
    }
    Err(format!("decoded {}\n      expected {}", short(&format!("{got:?}")), short(&format!("{want:?}"))))
}

fn short(s: &str) -> String {
    if s.len() <= 400 {
        return s.to_owned();
    }
    let mut end = 400;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} chars)", &s[..end], s.len())
}

fn ctx<T>(what: &str, r: Result<T, DecodeError>) -> Result<T, String> {
    r.map_err(|e| format!("{what}: {e}"))
}

/// A value written as one field at `tag`.
fn field<T: Field + PartialEq + Debug + Clone + 'static>(name: impl Into<String>, tag: u8, v: T) -> Case {
    let want = v.clone();
    Case::new(
        name,
        move || {
            let mut w = Writer::new();
            v.write_to(tag, &mut w);
            w.freeze().to_vec()
        },
        move |b| {
            let mut r = Reader::new(b);
            let got: T = ctx("decode", r.read_required(tag))?;
            if !r.is_empty() {
                return Err(format!("{} bytes left after the field", r.remaining()));
            }
            eq(&got, &want)
        },
    )
}

/// A struct encoded as a top-level body (no struct markers).
fn body<S: Struct + PartialEq + Debug + Clone + 'static>(name: impl Into<String>, v: S) -> Case {
    let want = v.clone();
    Case::new(
        name,
        move || v.encode().to_vec(),
        move |b| {
            eq(&ctx("decode", S::decode(b))?, &want)?;
            eq(&ctx("decode_bytes", S::decode_bytes(&Bytes::copy_from_slice(b)))?, &want)
        },
    )
}

/// Splits one complete frame into its body; nothing may remain.
fn unframe(b: &[u8]) -> Result<Bytes, String> {
    let mut buf = BytesMut::from(b);
    let body = FrameDecoder::new().decode(&mut buf).map_err(|e| format!("frame: {e}"))?.ok_or("frame: incomplete")?;
    if !buf.is_empty() {
        return Err(format!("frame: {} bytes after the frame", buf.len()));
    }
    let (slice_body, used) =
        FrameDecoder::new().decode_slice(b).map_err(|e| format!("frame: {e}"))?.ok_or("frame: incomplete (slice)")?;
    if used != b.len() || slice_body != &body[..] {
        return Err("decode_slice disagrees with decode".into());
    }
    Ok(body)
}

/// A packet with its 4-byte length prefix.
fn frame<S: Struct + PartialEq + Debug + Clone + 'static>(name: impl Into<String>, v: S) -> Case {
    let want = v.clone();
    Case::new(
        name,
        move || encode_frame(&v).to_vec(),
        move |b| eq(&ctx("decode", S::decode_bytes(&unframe(b)?))?, &want),
    )
}

fn s(x: &str) -> String {
    x.to_owned()
}

fn smap(entries: &[(&str, &str)]) -> StringMap {
    entries.iter().map(|(k, v)| (s(k), s(v))).collect()
}

fn pattern(n: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..n).map(|i| char::from(ALPHABET[i % ALPHABET.len()])).collect()
}

// ---------------------------------------------------------------------------------------------
// Test structs (same IDL as vectors.js)

/// `struct Small { 0 require int a; 1 require string b; };`
#[derive(Debug, Clone, PartialEq, Default)]
struct Small {
    a: i32,
    b: String,
}

fn small(a: i32, b: &str) -> Small {
    Small { a, b: s(b) }
}

impl Struct for Small {
    const NAME: &'static str = "Small";
    fn write_fields(&self, w: &mut Writer) {
        self.a.write_to(0, w);
        self.b.write_to(1, w);
    }
    fn read_fields(&mut self, r: &mut Reader<'_>) -> Result<(), DecodeError> {
        self.a = r.read_required(0).map_err(|e| e.at("Small", "a"))?;
        self.b = r.read_required(1).map_err(|e| e.at("Small", "b"))?;
        Ok(())
    }
}

/// `struct Empty { };`
#[derive(Debug, Clone, PartialEq, Default)]
struct Empty;

impl Struct for Empty {
    const NAME: &'static str = "Empty";
    fn write_fields(&self, _: &mut Writer) {}
    fn read_fields(&mut self, _: &mut Reader<'_>) -> Result<(), DecodeError> {
        Ok(())
    }
}

/// See `Opts` in vectors.js: optional members follow TarsCpp's skipping rules.
#[derive(Debug, Clone, PartialEq)]
struct Opts {
    id: i32,
    count: i32,
    name: String,
    flag: bool,
    items: Vec<i32>,
    attrs: BTreeMap<String, String>,
    big: i64,
    ratio: f64,
    inner: Small,
    color: i32,
    b: i8,
    blob: Bytes,
    f: f32,
    u: u32,
    tail: String,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            id: 0,
            count: 0,
            name: s("dflt"),
            flag: false,
            items: Vec::new(),
            attrs: BTreeMap::new(),
            big: 7,
            ratio: 0.0,
            inner: Small::default(),
            color: 0,
            b: 0,
            blob: Bytes::new(),
            f: 1.5,
            u: 0,
            tail: String::new(),
        }
    }
}

fn opt<T: Field>(r: &mut Reader<'_>, tag: u8, slot: &mut T) -> Result<(), DecodeError> {
    if let Some(v) = r.read_optional(tag)? {
        *slot = v;
    }
    Ok(())
}

impl Struct for Opts {
    const NAME: &'static str = "Opts";
    fn write_fields(&self, w: &mut Writer) {
        self.id.write_to(0, w);
        if self.count != 0 {
            self.count.write_to(1, w);
        }
        if self.name != "dflt" {
            self.name.write_to(2, w);
        }
        self.flag.write_to(3, w);
        if !self.items.is_empty() {
            self.items.write_to(4, w);
        }
        if !self.attrs.is_empty() {
            self.attrs.write_to(5, w);
        }
        if self.big != 7 {
            self.big.write_to(6, w);
        }
        if self.ratio != 0.0 {
            self.ratio.write_to(7, w);
        }
        self.inner.write_to(8, w);
        self.color.write_to(9, w);
        if self.b != 0 {
            self.b.write_to(10, w);
        }
        if !self.blob.is_empty() {
            self.blob.write_to(11, w);
        }
        if self.f != 1.5 {
            self.f.write_to(12, w);
        }
        if self.u != 0 {
            self.u.write_to(13, w);
        }
        if !self.tail.is_empty() {
            self.tail.write_to(200, w);
        }
    }
    fn read_fields(&mut self, r: &mut Reader<'_>) -> Result<(), DecodeError> {
        self.id = r.read_required(0)?;
        opt(r, 1, &mut self.count)?;
        opt(r, 2, &mut self.name)?;
        opt(r, 3, &mut self.flag)?;
        opt(r, 4, &mut self.items)?;
        opt(r, 5, &mut self.attrs)?;
        opt(r, 6, &mut self.big)?;
        opt(r, 7, &mut self.ratio)?;
        opt(r, 8, &mut self.inner)?;
        opt(r, 9, &mut self.color)?;
        opt(r, 10, &mut self.b)?;
        opt(r, 11, &mut self.blob)?;
        opt(r, 12, &mut self.f)?;
        opt(r, 13, &mut self.u)?;
        opt(r, 200, &mut self.tail)?;
        Ok(())
    }
}

fn opts_set() -> Opts {
    Opts {
        id: 42,
        count: -7,
        name: s("custom"),
        flag: true,
        items: vec![1, 2, 3],
        attrs: smap(&[("a", "1"), ("b", "2")]),
        big: 1 << 40,
        ratio: 0.125,
        inner: small(9, "in"),
        color: 6,
        b: -5,
        blob: Bytes::from_static(&[9, 8, 7]),
        f: 2.5,
        u: 4_000_000_000,
        tail: s("end"),
    }
}

/// `struct Middle { 0 optional vector<Small> items; 1 optional string note; };`
#[derive(Debug, Clone, PartialEq, Default)]
struct Middle {
    items: Vec<Small>,
    note: String,
}

impl Struct for Middle {
    const NAME: &'static str = "Middle";
    fn write_fields(&self, w: &mut Writer) {
        if !self.items.is_empty() {
            self.items.write_to(0, w);
        }
        if !self.note.is_empty() {
            self.note.write_to(1, w);
        }
    }
    fn read_fields(&mut self, r: &mut Reader<'_>) -> Result<(), DecodeError> {
        opt(r, 0, &mut self.items)?;
        opt(r, 1, &mut self.note)
    }
}

/// `struct Outer { 0 require int id; 1 optional Middle mid; 2 optional map<string, Middle> byName; };`
#[derive(Debug, Clone, PartialEq, Default)]
struct Outer {
    id: i32,
    mid: Middle,
    by_name: BTreeMap<String, Middle>,
}

impl Struct for Outer {
    const NAME: &'static str = "Outer";
    fn write_fields(&self, w: &mut Writer) {
        self.id.write_to(0, w);
        self.mid.write_to(1, w);
        if !self.by_name.is_empty() {
            self.by_name.write_to(2, w);
        }
    }
    fn read_fields(&mut self, r: &mut Reader<'_>) -> Result<(), DecodeError> {
        self.id = r.read_required(0)?;
        opt(r, 1, &mut self.mid)?;
        opt(r, 2, &mut self.by_name)
    }
}

macro_rules! struct_field {
    ($($t:ty),*) => {$(
        impl Field for $t {
            fn write_to(&self, tag: u8, w: &mut Writer) {
                write_struct(self, tag, w);
            }
            fn read_from(r: &mut Reader<'_>, ty: WireType) -> Result<Self, DecodeError> {
                read_struct(r, ty)
            }
        }
    )*};
}

struct_field!(Small, Empty, Opts, Middle, Outer);

// ---------------------------------------------------------------------------------------------
// The case list: every Node case (except `fw_*`) must appear here, and only those.

/// `[label, value]`; as in vectors.js, each value is a case of the narrowest declared type
/// (`byte_`/`short_`/`int_`) and a `long_` case.
const INTS: &[(&str, i64)] = &[
    ("0", 0),
    ("1", 1),
    ("m1", -1),
    ("127", 127),
    ("m128", -128),
    ("128", 128),
    ("m129", -129),
    ("32767", 32767),
    ("m32768", -32768),
    ("32768", 32768),
    ("m32769", -32769),
    ("2p31m1", 2_147_483_647),
    ("m2p31", -2_147_483_648),
    ("2p31", 2_147_483_648),
    ("m2p31m1", -2_147_483_649),
    ("2p32", 1 << 32),
    ("m2p32", -(1 << 32)),
    ("2p53m1", (1 << 53) - 1),
    ("m2p53p1", -(1 << 53) + 1),
    ("2p53p1", (1 << 53) + 1),
    ("m2p53m1", -(1 << 53) - 1),
    ("0x0123456789abcdef", 0x0123_4567_89ab_cdef),
    ("m0x0123456789abcdef", -0x0123_4567_89ab_cdef),
    ("max", i64::MAX),
    ("min", i64::MIN),
];

const FLOATS: &[(&str, f64)] = &[
    ("1_5", 1.5),
    ("m0_25", -0.25),
    ("3_4e38", 3.4e38),
    ("1em30", 1e-30),
    ("subnormal_1em40", 1e-40),
    ("third", 1.0 / 3.0),
    ("inf", f64::INFINITY),
    ("m_inf", f64::NEG_INFINITY),
];

const DOUBLES: &[(&str, f64)] = &[
    ("1_5", 1.5),
    ("m0_25", -0.25),
    ("3_4e38", 3.4e38),
    ("1em300", 1e-300),
    ("min_subnormal", 5e-324),
    ("max", f64::MAX),
    ("pi", std::f64::consts::PI),
    ("inf", f64::INFINITY),
    ("m_inf", f64::NEG_INFINITY),
];

const ZERO_FLOAT_WHY: &str = "Node writes a zero float/double (and -0) as ZeroTag; TarsCpp and TarsGo \
    never narrow floats (`Tars.h` writes a float as 4 bytes, a double as 8) and we follow them. We decode Node's ZeroTag as +0.0.";

/// A zero float case: our bytes are the full float; Node's ZeroTag decodes to +0.0.
fn zero_float<T: Field + PartialEq + Debug + Clone + Copy + 'static>(
    name: &str,
    v: T,
    ours_hex: &'static str,
    positive_zero_bits: impl Fn(T) -> bool + 'static,
) -> Case {
    field(name, 0, v).diverges(ours_hex, ZERO_FLOAT_WHY).check(move |node| {
        let got: T = ctx("decode", Reader::new(node).read_required(0))?;
        if positive_zero_bits(got) {
            Ok(())
        } else {
            Err(format!("ZeroTag decoded as {got:?}, expected +0.0"))
        }
    })
}

fn request_params() -> Vec<u8> {
    let mut w = Writer::new();
    1000i32.write_to(1, &mut w);
    w.write_str(2, "tars");
    w.write_str(3, "");
    small(7, "seven").write_to(4, &mut w);
    vec![1i32, 2, 3].write_to(5, &mut w);
    w.freeze().to_vec()
}

fn spec_2_13_request_params() -> Bytes {
    let mut w = Writer::new();
    1000i32.write_to(1, &mut w);
    w.write_str(2, "tars");
    w.write_str(3, "");
    w.freeze()
}

fn spec_2_13_response_params() -> Bytes {
    let mut w = Writer::new();
    0i32.write_to(0, &mut w);
    w.write_str(3, "hi tars");
    w.freeze()
}

const SERVANT: &str = "Test.HelloServer.HelloObj";

fn tup_request_attrs() -> UniAttribute {
    let mut a = UniAttribute::new();
    a.put("attrs", &smap(&[("k1", "v1"), ("k2", "v2")]));
    a.put("big", &i64::MIN);
    a.put("blob", &Bytes::from_static(&[0xde, 0xad, 0xbe, 0xef]));
    a.put("flag", &true);
    a.put("id", &1000i32);
    a.put("name", &s("tars"));
    a.put("nums", &vec![1i32, 300]);
    a.put("ratio", &0.5f64);
    a.put("small", &small(5, "x"));
    a
}

fn tup_response_attrs() -> UniAttribute {
    let mut a = UniAttribute::new();
    a.put("", &0i32);
    a.put("reply", &s("hi tars"));
    a.put("tars_ret", &0i32);
    a
}

/// Decodes a framed reply with [`Reply::decode`] and checks code, text and return value.
fn check_reply(node: &[u8], ret: i32, desc: &str, ret_value: Option<i32>) -> Result<(), String> {
    let reply = ctx("Reply::decode", Reply::decode(&unframe(node)?))?;
    eq(&reply.ret, &ret)?;
    eq(&reply.desc.as_str(), &desc)?;
    if let Some(want) = ret_value {
        let mut p = ctx("Reply::params", reply.params())?;
        eq(&ctx("read_ret", p.read_ret::<i32>())?, &want)?;
        eq(&ctx("read reply", p.read::<String>(3, "reply"))?, &s("hi tars"))?;
    }
    Ok(())
}

fn cases() -> Vec<Case> {
    let mut c = Vec::new();

    // integers
    for &(label, v) in INTS {
        if let Ok(x) = i8::try_from(v) {
            c.push(field(format!("byte_{label}"), 0, x));
        } else if let Ok(x) = i16::try_from(v) {
            c.push(field(format!("short_{label}"), 0, x));
        } else if let Ok(x) = i32::try_from(v) {
            c.push(field(format!("int_{label}"), 0, x));
        }
        c.push(field(format!("long_{label}"), 0, v));
    }
    c.push(field("ubyte_200", 0, 200u8));
    c.push(field("ubyte_255", 0, 255u8));
    c.push(field("ushort_40000", 0, 40000u16));
    c.push(field("ushort_65535", 0, 65535u16));
    c.push(field("uint_3000000000", 0, 3_000_000_000u32));
    c.push(field("uint_4294967295", 0, u32::MAX).spec("03 00 00 00 00 FF FF FF FF"));
    c.push(field("bool_true", 0, true).spec("00 01"));
    c.push(field("bool_false", 0, false).spec("0C"));

    // floats: Node rounds the JS double to binary32, so we do the same with `as f32`
    for &(label, v) in FLOATS {
        #[allow(clippy::cast_possible_truncation)]
        let case = field(format!("float_{label}"), 0, v as f32);
        c.push(if label == "1_5" { case.spec("04 3F C0 00 00") } else { case });
    }
    for &(label, v) in DOUBLES {
        let case = field(format!("double_{label}"), 0, v);
        c.push(if label == "1_5" { case.spec("05 3F F8 00 00 00 00 00 00") } else { case });
    }
    c.push(zero_float("float_zero", 0.0f32, "04 00 00 00 00", |x| x.to_bits() == 0));
    c.push(zero_float("float_m_zero", -0.0f32, "04 80 00 00 00", |x| x.to_bits() == 0));
    c.push(zero_float("double_zero", 0.0f64, "05 00 00 00 00 00 00 00 00", |x| x.to_bits() == 0));
    c.push(zero_float("double_m_zero", -0.0f64, "05 80 00 00 00 00 00 00 00", |x| x.to_bits() == 0));

    // strings
    c.push(field("string_empty", 0, String::new()).spec("06 00"));
    c.push(field("string_ascii", 0, s("hello tars")));
    c.push(field("string_utf8", 0, s("h\u{e9}llo \u{4e16}\u{754c} \u{1F680}")));
    c.push(field("string_255", 0, pattern(255)));
    c.push(field("string_256", 0, pattern(256)));
    c.push(field("string_70000", 0, pattern(70000)));
    c.push(field("string_utf8_256_bytes", 0, "\u{e9}".repeat(128)));

    // tags
    for tag in [0u8, 14, 15, 16, 200, 255] {
        c.push(field(format!("tag{tag}_int"), tag, 300i32));
        c.push(field(format!("tag{tag}_zero"), tag, 0i32));
        c.push(field(format!("tag{tag}_long"), tag, 1i64 << 40));
        c.push(field(format!("tag{tag}_bool"), tag, true));
        c.push(field(format!("tag{tag}_float"), tag, -1.5f32));
        c.push(field(format!("tag{tag}_double"), tag, 2.5f64));
        c.push(field(format!("tag{tag}_string"), tag, s("t")));
        c.push(field(format!("tag{tag}_bytes"), tag, Bytes::from_static(&[1, 2])));
        c.push(field(format!("tag{tag}_list"), tag, vec![1i32]));
        c.push(field(format!("tag{tag}_map"), tag, smap(&[("k", "v")])));
        c.push(field(format!("tag{tag}_struct"), tag, small(5, "x")));
    }

    // vector<byte>, lists, maps
    c.push(field("bytes_empty", 0, Bytes::new()).spec("0D 00 0C"));
    c.push(field("bytes_3_tag1", 1, Bytes::from_static(&[0x01, 0x03, 0xe8])).spec("1D 00 00 03 01 03 E8"));
    c.push(field("bytes_high", 0, Bytes::from_static(&[0x80, 0xff, 0x00, 0x7f])));
    c.push(field("bytes_256", 0, Bytes::from((0..=255u8).collect::<Vec<u8>>())));
    c.push(field("list_int_empty", 0, Vec::<i32>::new()).spec("09 0C"));
    c.push(field("list_int", 0, vec![1i32, 300, -1, 0, 70000, i32::MIN]));
    c.push(field("list_long", 0, vec![0i64, 1 << 40, -1, i64::MAX, i64::MIN]));
    c.push(field("list_string", 0, vec![s("a"), String::new(), s("h\u{e9}llo"), pattern(300)]));
    c.push(field("list_nested", 0, vec![vec![1i32, 2], vec![], vec![3]]));
    c.push(field("list_bool", 0, vec![true, false, true]));
    c.push(field("list_float", 0, vec![0.5f32, -8.0]));
    c.push(field("list_double", 0, vec![1.5f64, -2.25, 1e100]));
    c.push(field("list_ubyte", 0, vec![0u8, 1, 200, 255]));
    c.push(field("list_bytes", 0, vec![Bytes::from_static(&[1, 2]), Bytes::new()]));
    c.push(field("list_struct", 0, vec![small(1, "a"), small(2, "bb")]));
    c.push(field("map_empty", 0, StringMap::new()).spec("08 0C"));
    c.push(field("map_string_string", 0, smap(&[("alpha", "1"), ("beta", "two"), ("gamma", "")])));
    c.push(field(
        "map_int_string",
        0,
        BTreeMap::from([(0i32, s("zero")), (1, s("one")), (300, s("three hundred")), (70000, s("big"))]),
    ));
    c.push(
        field(
            "map_int_string_negative_keys",
            0,
            BTreeMap::from([(-5i32, s("minus five")), (1, s("one")), (10, s("ten"))]),
        )
        .diverges(
            "08 00 03  00 FB 16 0A 6D 69 6E 75 73 20 66 69 76 65  00 01 16 03 6F 6E 65  00 0A 16 03 74 65 6E",
            "Node keeps map entries in a JS object, which lists integer-like keys first (ascending) and \
                 negative keys after them, so Node writes 1, 10, -5; TarsCpp's std::map (and our BTreeMap) \
                 writes -5, 1, 10. Readers must not depend on entry order (maps are written in the writer's iteration order).",
        ),
    );
    c.push(field("map_string_list", 0, BTreeMap::from([(s("a"), vec![1i32, 2]), (s("b"), vec![])])));
    c.push(field("map_string_struct", 0, BTreeMap::from([(s("x"), small(1, "one")), (s("y"), small(-1, ""))])));
    c.push(field(
        "map_string_map",
        0,
        BTreeMap::from([(s("inner"), smap(&[("k", "v")])), (s("none"), StringMap::new())]),
    ));
    c.push(field(
        "map_string_bytes",
        0,
        BTreeMap::from([(s("a"), Bytes::from_static(&[1, 2, 3])), (s("b"), Bytes::new())]),
    ));

    // structs
    c.push(field("struct_empty", 0, Empty).spec("0A 0B"));
    c.push(body("struct_empty_body", Empty));
    c.push(field("struct_small_tag2", 2, small(5, "x")).spec("2A 00 05 16 01 78 0B"));
    c.push(field("struct_opts_defaults", 0, Opts::default()));
    c.push(field("struct_opts_set", 0, opts_set()));
    c.push(body("struct_opts_set_body", opts_set()));
    c.push(field(
        "struct_nested_full",
        0,
        Outer {
            id: 1,
            mid: Middle { items: vec![small(1, "a"), small(0, "")], note: s("n") },
            by_name: BTreeMap::from([
                (s("empty"), Middle::default()),
                (s("one"), Middle { items: vec![small(3, "c")], note: String::new() }),
            ]),
        },
    ));
    c.push(field("struct_nested_empty", 0, Outer { id: 2, ..Outer::default() }));

    // frames
    c.push(
        frame(
            "frame_v1_request",
            RequestPacket {
                i_version: 1,
                c_packet_type: 0,
                i_message_type: 0x04,
                i_request_id: 1,
                s_servant_name: s(SERVANT),
                s_func_name: s("greet"),
                s_buffer: Bytes::from(request_params()),
                i_timeout: 3000,
                context: smap(&[("client", "node"), ("node_name", "node-1")]),
                status: smap(&[("STATUS_DYED_KEY", "user42")]),
            },
        )
        .check(|node| {
            // the parameters, read back by tag
            let p = ctx("RequestPacket", RequestPacket::decode_body(&unframe(node)?))?;
            let mut r = Reader::from_bytes(&p.s_buffer);
            eq(&ctx("param 1", r.read_required::<i32>(1))?, &1000)?;
            eq(&ctx("param 2", r.read_required::<String>(2))?, &s("tars"))?;
            eq(&ctx("param 3", r.read_required::<String>(3))?, &String::new())?;
            eq(&ctx("param 4", r.read_required::<Small>(4))?, &small(7, "seven"))?;
            eq(&ctx("param 5", r.read_required::<Vec<i32>>(5))?, &vec![1, 2, 3])
        }),
    );
    c.push(
        frame(
            "frame_v1_request_spec_2_13",
            RequestPacket {
                i_version: 1,
                i_request_id: 1,
                s_servant_name: s(SERVANT),
                s_func_name: s("greet"),
                s_buffer: spec_2_13_request_params(),
                i_timeout: 3000,
                ..RequestPacket::default()
            },
        )
        .spec(
            "00 00 00 42 10 01 2C 3C 40 01 56 19 54 65 73 74 2E 48 65 6C 6C 6F 53 65 72 76 65 72 2E 48 65 6C \
             6C 6F 4F 62 6A 66 05 67 72 65 65 74 7D 00 00 0B 11 03 E8 26 04 74 61 72 73 36 00 81 0B B8 98 0C A8 0C",
        ),
    );
    c.push(
        frame(
            "frame_v1_oneway",
            RequestPacket {
                i_version: 1,
                c_packet_type: 1,
                i_request_id: 2,
                s_servant_name: s(SERVANT),
                s_func_name: s("notify"),
                s_buffer: {
                    let mut w = Writer::new();
                    w.write_str(1, "fire and forget");
                    w.freeze()
                },
                ..RequestPacket::default()
            },
        )
        .check(|node| {
            let p = ctx("RequestPacket", RequestPacket::decode_body(&unframe(node)?))?;
            if p.is_oneway() {
                Ok(())
            } else {
                Err("not decoded as oneway".into())
            }
        }),
    );
    c.push(frame(
        "frame_v1_request_status",
        RequestPacket {
            i_version: 1,
            c_packet_type: 0,
            i_message_type: 0x80 | 0x100,
            i_request_id: i32::MAX,
            s_servant_name: s("tars.tarsregistry.QueryObj"),
            s_func_name: s("findObjectById"),
            s_buffer: {
                let mut w = Writer::new();
                w.write_str(1, SERVANT);
                w.freeze()
            },
            i_timeout: 60000,
            context: smap(&[("node_name", "10.0.0.1")]),
            status: smap(&[
                ("STATUS_GRID_KEY", "g1"),
                ("STATUS_SETNAME_VALUE", "app.sz.1"),
                ("STATUS_TRACE_KEY", "f-abc|1|0"),
            ]),
        },
    ));
    c.push(
        frame(
            "frame_tup_request",
            RequestPacket {
                i_version: 3,
                i_request_id: 7,
                s_servant_name: s(SERVANT),
                s_func_name: s("greet"),
                s_buffer: tup_request_attrs().encode(),
                ..RequestPacket::default()
            },
        )
        .check(|node| {
            let p = ctx("RequestPacket", RequestPacket::decode_body(&unframe(node)?))?;
            let a = ctx("UniAttribute", UniAttribute::decode(&p.s_buffer))?;
            eq(&a, &tup_request_attrs())?;
            eq(&ctx("attrs", a.get::<StringMap>("attrs"))?, &Some(smap(&[("k1", "v1"), ("k2", "v2")])))?;
            eq(&ctx("big", a.get::<i64>("big"))?, &Some(i64::MIN))?;
            eq(&ctx("blob", a.get::<Bytes>("blob"))?, &Some(Bytes::from_static(&[0xde, 0xad, 0xbe, 0xef])))?;
            eq(&ctx("flag", a.get::<bool>("flag"))?, &Some(true))?;
            eq(&ctx("id", a.get::<i32>("id"))?, &Some(1000))?;
            eq(&ctx("name", a.get::<String>("name"))?, &Some(s("tars")))?;
            eq(&ctx("nums", a.get::<Vec<i32>>("nums"))?, &Some(vec![1, 300]))?;
            eq(&ctx("ratio", a.get::<f64>("ratio"))?, &Some(0.5))?;
            eq(&ctx("small", a.get::<Small>("small"))?, &Some(small(5, "x")))
        }),
    );
    c.push(
        Case::new(
            "tup_body_spec_2_10",
            || {
                let mut a = UniAttribute::new();
                a.put("id", &1000i32);
                a.put("name", &s("tars"));
                a.encode().to_vec()
            },
            |b| {
                let a = ctx("UniAttribute", UniAttribute::decode(&Bytes::copy_from_slice(b)))?;
                eq(&a.names().collect::<Vec<_>>(), &vec!["id", "name"])?;
                eq(&ctx("id", a.get::<i32>("id"))?, &Some(1000))?;
                eq(&ctx("name", a.get::<String>("name"))?, &Some(s("tars")))
            },
        )
        .spec("08 00 02 06 02 69 64 1D 00 00 03 01 03 E8 06 04 6E 61 6D 65 1D 00 00 06 06 04 74 61 72 73"),
    );
    c.push(
        frame(
            "frame_v1_response_error",
            ResponsePacket {
                i_version: 1,
                c_packet_type: 0,
                i_request_id: 9,
                i_message_type: 4,
                i_ret: -3,
                s_buffer: Bytes::new(),
                status: StringMap::new(),
                s_result_desc: s("no function 'foo'"),
                context: smap(&[("trace", "t1")]),
            },
        )
        .check(|node| check_reply(node, -3, "no function 'foo'", None))
        .check(|node| {
            // our server-side reply builder produces the same frame
            let current = Current {
                version: 1,
                message_type: 4,
                request_id: 9,
                response_context: smap(&[("trace", "t1")]),
                ..Current::default()
            };
            let ours = reply_frame(&current, Err(ServantError::new(-3, "no function 'foo'"))).ok_or("no reply")?;
            if ours == node {
                Ok(())
            } else {
                Err(format!("reply_frame differs\n{}", diff("reply_frame", &ours, node)))
            }
        }),
    );
    c.push(
        frame(
            "frame_v1_response_ok_spec_2_13",
            ResponsePacket {
                i_version: 1,
                i_request_id: 1,
                s_buffer: spec_2_13_response_params(),
                ..ResponsePacket::default()
            },
        )
        .diverges(
            "00 00 00 1B 10 01 2C 30 01 4C 5C 6D 00 00 0A 0C 36 07 68 69 20 74 61 72 73 78 0C",
            "RequestF.js writes the optional ResponsePacket fields sResultDesc (8) and context (9) even when \
             empty (86 00 98 0C); TarsCpp and TarsGo omit them and so do we. Both forms \
             decode to the same packet.",
        )
        .check(|node| check_reply(node, 0, "", Some(0)))
        .check(|_| {
            let current = Current { version: 1, request_id: 1, ..Current::default() };
            let ours = reply_frame(&current, Ok(spec_2_13_response_params())).ok_or("no reply")?;
            let want =
                hex::decode("0000001B10012C30014C5C6D00000A0C360768692074617273780C").map_err(|e| e.to_string())?;
            if ours == want {
                Ok(())
            } else {
                Err(format!("reply_frame differs\n{}", diff("reply_frame", &ours, &want)))
            }
        }),
    );
    c.push(
        frame(
            "frame_tup_response",
            RequestPacket {
                i_version: 3,
                i_request_id: 7,
                s_servant_name: s(SERVANT),
                s_func_name: s("greet"),
                s_buffer: tup_response_attrs().encode(),
                status: smap(&[("STATUS_RESULT_CODE", "0"), ("STATUS_RESULT_DESC", "")]),
                ..RequestPacket::default()
            },
        )
        .check(|node| check_reply(node, 0, "", Some(0)))
        .check(|node| {
            // Our reply_frame writes the same packet except that, like TarsCpp, it leaves
            // STATUS_RESULT_CODE / STATUS_RESULT_DESC out when the code is 0 and the text empty
            // (Node's composeTUP always inserts them).
            let current =
                Current { version: 3, request_id: 7, servant: s(SERVANT), func: s("greet"), ..Current::default() };
            let mut w = ParamWriter::new(3);
            w.write_ret(&0i32);
            w.write_str(3, "reply", "hi tars");
            let ours = reply_frame(&current, Ok(w.finish())).ok_or("no reply")?;
            let ours = ctx("ours", RequestPacket::decode_body(&unframe(&ours)?))?;
            let mut theirs = ctx("Node's", RequestPacket::decode_body(&unframe(node)?))?;
            theirs.status.clear();
            eq(&ours, &theirs)
        }),
    );
    c.push(
        frame(
            "frame_tup_response_error",
            RequestPacket {
                i_version: 3,
                i_request_id: 8,
                s_servant_name: s(SERVANT),
                s_func_name: s("nosuch"),
                s_buffer: UniAttribute::new().encode(),
                status: smap(&[("STATUS_RESULT_CODE", "-3"), ("STATUS_RESULT_DESC", "no function")]),
                ..RequestPacket::default()
            },
        )
        .check(|node| check_reply(node, -3, "no function", None))
        .check(|node| {
            // Our reply_frame builds the same envelope. Its sBuffer is not compared: Node's
            // composeTUP sends an encoded empty UniAttribute (08 0C) where ours (like TarsCpp)
            // is empty, which a Node TUP client fails to decode.
            let current =
                Current { version: 3, request_id: 8, servant: s(SERVANT), func: s("nosuch"), ..Current::default() };
            let ours = reply_frame(&current, Err(ServantError::new(-3, "no function"))).ok_or("no reply")?;
            let mut ours = ctx("ours", RequestPacket::decode_body(&unframe(&ours)?))?;
            let theirs = ctx("Node's", RequestPacket::decode_body(&unframe(node)?))?;
            ours.s_buffer = theirs.s_buffer.clone();
            eq(&ours, &theirs)
        }),
    );

    c
}

// =============================================================================================
// Running the cases

fn spaced(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect::<Vec<_>>().join(" ")
}

/// A readable comparison of two byte strings: lengths, the first differing offset, and the
/// bytes around it (everything when short).
fn diff(label: &str, ours: &[u8], node: &[u8]) -> String {
    let first = ours.iter().zip(node).position(|(a, b)| a != b).unwrap_or(ours.len().min(node.len()));
    let mut out = format!(
        "      {label}: {} bytes, node: {} bytes, first difference at offset {first}\n",
        ours.len(),
        node.len()
    );
    if ours.len().max(node.len()) <= 256 {
        out += &format!("      {label:>5}: {}\n       node: {}\n", spaced(ours), spaced(node));
    } else {
        let from = first.saturating_sub(16);
        let window = |b: &[u8]| spaced(&b[from.min(b.len())..(first + 32).min(b.len())]);
        out += &format!("      {label:>5} [{from}..]: {}\n       node [{from}..]: {}\n", window(ours), window(node));
    }
    out
}

fn run_case(case: &Case, node: &[u8]) -> Vec<String> {
    let mut errors = Vec::new();
    let ours = (case.encode)();
    match &case.divergence {
        None => {
            if ours != node {
                errors.push(format!("our encoding differs from Node's\n{}", diff("ours", &ours, node)));
            }
        }
        Some(d) => {
            let want = hex::decode(d.ours_hex.replace(' ', "")).expect("bad ours_hex");
            if ours != want {
                errors.push(format!(
                    "documented divergence: our encoding is no longer the TarsCpp form\n{}",
                    diff("ours", &ours, &want)
                ));
            }
            if ours == node {
                errors.push(format!(
                    "documented divergence no longer holds: Node now encodes like us; make it a plain case ({})",
                    d.why
                ));
            }
        }
    }
    if let Err(e) = (case.decode)(node) {
        errors.push(format!("decoding Node's bytes: {e}"));
    }
    if let Err(e) = (case.decode)(&ours) {
        errors.push(format!("decoding our own bytes: {e}"));
    }
    for check in &case.extra {
        if let Err(e) = check(node) {
            errors.push(e);
        }
    }
    errors
}

#[test]
fn node_case_names_match() {
    let node: BTreeSet<&str> =
        node_vectors().keys().map(String::as_str).filter(|n| !n.starts_with(FRAMEWORK_PREFIX)).collect();
    let cases = cases();
    let mut ours = BTreeSet::new();
    for c in &cases {
        assert!(ours.insert(c.name.as_str()), "duplicate Rust case name {}", c.name);
        assert!(!c.name.starts_with(FRAMEWORK_PREFIX), "{} uses the framework prefix", c.name);
    }
    let only_node: Vec<_> = node.difference(&ours).collect();
    let only_ours: Vec<_> = ours.difference(&node).collect();
    assert!(
        only_node.is_empty() && only_ours.is_empty(),
        "case lists out of sync\n  in vectors.js only (add them to cases()): {only_node:?}\n  \
         in cases() only (add them to vectors.js): {only_ours:?}"
    );
    assert!(ours.len() > 150, "suspiciously few cases: {}", ours.len());
}

#[test]
fn node_vectors_match_our_codec() {
    let vectors = node_vectors();
    let mut failures = Vec::new();
    let mut checked = 0;
    let mut divergent = Vec::new();
    for case in cases() {
        let Some(node) = vectors.get(&case.name) else { continue }; // reported by node_case_names_match
        checked += 1;
        if case.divergence.is_some() {
            divergent.push(case.name.clone());
        }
        for e in run_case(&case, node) {
            failures.push(format!("[{}] {e}", case.name));
        }
    }
    assert!(failures.is_empty(), "{} failure(s) in {checked} cases:\n{}", failures.len(), failures.join("\n"));
    assert!(checked > 150, "only {checked} cases were checked");
    println!("{checked} Node cases match; documented divergences: {}", divergent.join(", "));
}

// =============================================================================================
// Non-minimal forms the SDKs accept, and forms they reject (TarsCpp `Tars.h`, `@tars/stream`)

fn bytes_of(hex: &str) -> Vec<u8> {
    hex::decode(hex.replace(' ', "")).expect("bad hex in test")
}

/// Reads a field at tag 0 from `hex`, which must succeed.
fn read0<T: Field>(hex: &str) -> T {
    try_read0(hex).unwrap_or_else(|e| panic!("{hex} as {}: {e}", std::any::type_name::<T>()))
}

/// Reads a field at tag 0 from `hex`; the whole input must be consumed on success.
fn try_read0<T: Field>(hex: &str) -> Result<T, DecodeError> {
    let b = bytes_of(hex);
    let mut r = Reader::new(&b);
    let v = r.read_required(0)?;
    assert!(r.is_empty(), "{hex}: {} bytes left", r.remaining());
    Ok(v)
}

fn assert_mismatch<T: Field + Debug>(hex: &str, expected: &str, got: &str) {
    let ty = std::any::type_name::<T>();
    let err = try_read0::<T>(hex).expect_err(&format!("{hex} must be rejected as {ty}"));
    assert!(
        matches!(err.kind(), DecodeErrorKind::TypeMismatch { expected: e, got: g } if *e == expected && *g == got),
        "{hex} into {ty}: wrong error {err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains(&format!("expected {expected}, got {got}")), "unclear error message: {msg}");
}

#[test]
fn accepts_integers_wider_than_needed() {
    // 5 as int2, int4 and int8
    assert_eq!(read0::<i16>("01 0005"), 5);
    assert_eq!(read0::<i32>("01 0005"), 5);
    assert_eq!(read0::<i32>("02 00000005"), 5);
    assert_eq!(read0::<i64>("02 00000005"), 5);
    assert_eq!(read0::<i64>("03 0000000000000005"), 5);
    assert_eq!(read0::<i64>("03 ffffffffffffffff"), -1);
    // sign extension of wide negative forms
    assert_eq!(read0::<i32>("02 ffffffff"), -1);
    assert_eq!(read0::<i16>("01 ff80"), -128);
    // ZeroTag into every integer type, and int1 into wider ones
    assert_eq!(read0::<i8>("0c"), 0);
    assert_eq!(read0::<i64>("0c"), 0);
    assert_eq!(read0::<i64>("00 80"), -128);
    // unsigned types ride on the next wider signed type
    assert_eq!(read0::<u8>("01 00c8"), 200);
    assert_eq!(read0::<u16>("02 0000ffff"), 65535);
    assert_eq!(read0::<u32>("03 00000000ffffffff"), u32::MAX);
    assert_eq!(read0::<u32>("00 05"), 5);
    // bool: any non-zero int1
    assert!(read0::<bool>("00 02"));
    assert!(!read0::<bool>("0c"));
    // inside a struct: a required int member written as int4
    let v = Small::decode(&bytes_of("02 00000005 16 01 62")).expect("int4 member");
    assert_eq!(v, small(5, "b"));
}

#[test]
fn rejects_integers_wider_than_declared() {
    assert_mismatch::<i32>("03 0000000000000005", "int", "int8");
    assert_mismatch::<i16>("02 00000005", "short", "int4");
    assert_mismatch::<i8>("01 0005", "byte", "int2");
    assert_mismatch::<bool>("01 0001", "bool", "int2");
    // the struct error names the member
    let err = Small::decode(&bytes_of("03 0000000000000005 16 01 62")).expect_err("int8 member");
    assert_eq!(err.to_string(), "Small.a: expected int, got int8");
}

#[test]
fn accepts_short_string_as_string4() {
    assert_eq!(read0::<String>("07 00000002 6869"), "hi");
    assert_eq!(read0::<String>("07 00000000"), "");
}

#[test]
fn accepts_byte_vector_as_list_of_int1() {
    assert_eq!(read0::<Bytes>("09 0004 0001 0c 00ff 0080"), Bytes::from_static(&[1, 0, 0xff, 0x80]));
    assert_eq!(read0::<Bytes>("09 0c"), Bytes::new());
    // SimpleList with its length as int2 instead of int1
    assert_eq!(read0::<Bytes>("0d 00 01 0002 aabb"), Bytes::from_static(&[0xaa, 0xbb]));
}

#[test]
fn rejects_byte_vector_as_list_of_int2() {
    let err = try_read0::<Bytes>("09 0001 01 0005").expect_err("must be rejected");
    assert_eq!(err.kind(), &DecodeErrorKind::TypeMismatch { expected: "byte", got: "int2" });
    assert!(err.to_string().contains("expected byte, got int2"), "{err}");
    // a SimpleList whose inner head is not int1
    let err = try_read0::<Bytes>("0d 01 00 01 aa").expect_err("must be rejected");
    assert_eq!(err.kind(), &DecodeErrorKind::BadSimpleList("int2"));
    assert!(err.to_string().contains("expected int1"), "{err}");
}

#[test]
fn accepts_zero_tag_and_float_for_floating_fields() {
    assert_eq!(read0::<f32>("0c").to_bits(), 0);
    assert_eq!(read0::<f64>("0c").to_bits(), 0);
    // a float-encoded value into a double field is widened exactly
    assert_eq!(read0::<f64>("04 3fc00000"), 1.5);
    assert_eq!(read0::<f64>("04 3f80807f"), f64::from(f32::from_bits(0x3f80_807f)));
}

#[test]
fn rejects_double_into_float() {
    assert_mismatch::<f32>("05 3ff8000000000000", "float", "double");
}

#[test]
fn accepts_wide_container_counts() {
    // list count as int2, int4 and int8
    assert_eq!(read0::<Vec<i32>>("09 01 0002 0001 0002"), vec![1, 2]);
    assert_eq!(read0::<Vec<i32>>("09 02 00000001 0005"), vec![5]);
    assert_eq!(read0::<Vec<i32>>("09 03 0000000000000001 0005"), vec![5]);
    // map count as int2
    assert_eq!(read0::<StringMap>("08 01 0001 06 01 6b 16 01 76"), smap(&[("k", "v")]));
    // a zero count as int1 instead of ZeroTag
    assert_eq!(read0::<Vec<i32>>("09 00 00"), Vec::<i32>::new());
}
