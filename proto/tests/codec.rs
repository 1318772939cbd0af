//! The codec against byte examples checked against TarsCpp's `servant/tup/Tars.h`, its limits,
//! and its error messages.

use bytes::{Bytes, BytesMut};
use std::collections::BTreeMap;
use tars_proto::codec::{DecodeErrorKind, Field, Limits, Reader, Struct, WireType, Writer};
use tars_proto::frame::{encode_frame, FrameDecoder, FrameError};
use tars_proto::packet::{RequestPacket, ResponsePacket};

fn enc<T: Field>(v: &T, tag: u8) -> String {
    let mut w = Writer::new();
    v.write_to(tag, &mut w);
    hex::encode(w.as_slice())
}

fn dec<T: Field>(hexstr: &str, tag: u8) -> Result<T, tars_proto::DecodeError> {
    let b = hex::decode(hexstr.replace(' ', "")).expect("test hex");
    Reader::new(&b).read_required(tag)
}

#[test]
fn integers_narrow_by_value() {
    let cases: &[(i64, &str)] = &[
        (0, "0c"),
        (1, "0001"),
        (-1, "00ff"),
        (127, "007f"),
        (-128, "0080"),
        (128, "010080"),
        (-129, "01ff7f"),
        (32767, "017fff"),
        (32768, "0200008000"),
        (-32769, "02ffff7fff"),
        (2147483647, "027fffffff"),
        (2147483648, "030000000080000000"),
        (4294967295, "0300000000ffffffff"),
        (i64::MIN, "038000000000000000"),
    ];
    for &(v, want) in cases {
        assert_eq!(enc(&v, 0), want, "encoding {v}");
        assert_eq!(dec::<i64>(want, 0).expect("decodes"), v, "decoding {want}");
    }
    assert_eq!(enc(&true, 0), "0001");
    assert_eq!(enc(&false, 0), "0c");
    // Unsigned types ride on the next wider signed type.
    assert_eq!(enc(&200u8, 0), "0100c8");
    assert_eq!(enc(&u32::MAX, 0), "0300000000ffffffff");
    assert_eq!(dec::<u32>("0300000000ffffffff", 0).expect("decodes"), u32::MAX);
    assert_eq!(dec::<u8>("0100c8", 0).expect("decodes"), 200);
}

#[test]
fn heads_use_a_second_byte_from_tag_15() {
    assert_eq!(enc(&5i32, 15), "f00f05");
    assert_eq!(enc(&"a".to_string(), 200), "f6c80161");
    assert_eq!(enc(&5i32, 14), "e005");
    assert_eq!(dec::<String>("f6c80161", 200).expect("decodes"), "a");
}

#[test]
fn floats_are_never_narrowed() {
    assert_eq!(enc(&0.0f32, 0), "0400000000");
    assert_eq!(enc(&1.5f32, 0), "043fc00000");
    assert_eq!(enc(&1.5f64, 0), "053ff8000000000000");
    assert_eq!(dec::<f32>("0c", 0).expect("zero tag"), 0.0);
    assert_eq!(dec::<f64>("043fc00000", 0).expect("float widens"), 1.5);
    let e = dec::<f32>("053ff8000000000000", 0).expect_err("double into float");
    assert_eq!(e.to_string(), "expected float, got double");
}

#[test]
fn strings_and_containers() {
    assert_eq!(enc(&String::new(), 0), "0600");
    let long = "x".repeat(300);
    assert!(enc(&long, 1).starts_with("170000012c"));
    assert_eq!(dec::<String>(&enc(&long, 1), 1).expect("decodes"), long);
    assert_eq!(enc(&vec![1i32, 300], 0), "090002000101012c");
    assert_eq!(enc(&Vec::<i32>::new(), 0), "090c");
    let m: BTreeMap<String, i32> = [("a".to_string(), 1)].into();
    assert_eq!(enc(&m, 0), "08000106016110 01".replace(' ', ""));
    assert_eq!(enc(&BTreeMap::<String, i32>::new(), 0), "080c");
    assert_eq!(enc(&Bytes::new(), 0), "0d000c");
    assert_eq!(enc(&Bytes::from_static(&[1, 3, 0xe8]), 1), "1d00000301 03e8".replace(' ', ""));
}

#[test]
fn byte_vectors_decode_zero_copy_from_bytes() {
    let src = Bytes::from(hex::decode("1d0000030103e8").expect("hex"));
    let b: Bytes = Reader::from_bytes(&src).read_required(1).expect("decodes");
    assert_eq!(&b[..], &[1, 3, 0xe8]);
    // The slice points into the source buffer: no copy was made.
    assert_eq!(b.as_ptr(), src[4..].as_ptr());
}

/// `struct{0 require int a; 1 require string b; 2 optional int c = 7;}`
#[derive(Debug, Clone, PartialEq)]
struct Small {
    a: i32,
    b: String,
    c: i32,
}

impl Default for Small {
    fn default() -> Self {
        Small { a: 0, b: String::new(), c: 7 }
    }
}

impl Struct for Small {
    const NAME: &'static str = "Small";
    fn write_fields(&self, w: &mut Writer) {
        self.a.write_to(0, w);
        self.b.write_to(1, w);
        if self.c != 7 {
            self.c.write_to(2, w);
        }
    }
    fn read_fields(&mut self, r: &mut Reader<'_>) -> Result<(), tars_proto::DecodeError> {
        self.a = r.read_required(0).map_err(|e| e.at("Small", "a"))?;
        self.b = r.read_required(1).map_err(|e| e.at("Small", "b"))?;
        if let Some(v) = r.read_optional(2).map_err(|e| e.at("Small", "c"))? {
            self.c = v;
        }
        Ok(())
    }
}

impl Field for Small {
    fn write_to(&self, tag: u8, w: &mut Writer) {
        tars_proto::codec::write_struct(self, tag, w)
    }
    fn read_from(r: &mut Reader<'_>, ty: WireType) -> Result<Self, tars_proto::DecodeError> {
        tars_proto::codec::read_struct(r, ty)
    }
}

#[test]
fn nested_struct_example_and_unknown_members() {
    let s = Small { a: 5, b: "x".into(), c: 7 };
    assert_eq!(enc(&s, 2), "2a00051601780b");
    // A newer peer added members at tags 3 and 20 (a struct and a list): they are skipped,
    // and the struct end is found after them.
    let newer = "2a0005160178 3a0c0b f914000200010002 0b 3005";
    let b = hex::decode(newer.replace(' ', "")).expect("hex");
    let mut r = Reader::new(&b);
    let got: Small = r.read_required(2).expect("decodes");
    assert_eq!(got, s);
    assert_eq!(r.read_required::<i32>(3).expect("field after the struct"), 5);
}

#[test]
fn errors_name_struct_and_field() {
    // Small.a carries a string.
    let e = dec::<Small>("0a 0601 78 0b", 0).expect_err("type mismatch");
    assert_eq!(e.to_string(), "Small.a: expected int, got string");
    // Small.b missing: the struct ends first.
    let e = dec::<Small>("0a 0005 0b", 0).expect_err("missing");
    assert_eq!(e.to_string(), "Small.b: required field (tag 1) is missing");
    // Nested: inside a list inside RequestPacket.
    let e = RequestPacket::decode(&[0x10, 0x01]).expect_err("missing cPacketType");
    assert_eq!(e.to_string(), "RequestPacket.cPacketType: required field (tag 2) is missing");
    let e = dec::<Vec<Small>>("09 0001 0a 0005 1c 0b", 0).expect_err("b is a zero int");
    assert_eq!(e.to_string(), "Small.b: expected string, got zero");
}

#[test]
fn widening_reads_and_rejections() {
    assert_eq!(dec::<i32>("0200000005", 0).expect("int4 into int"), 5);
    assert_eq!(dec::<i64>("030000000000000005", 0).expect("int8 into long"), 5);
    assert_eq!(dec::<i16>("0005", 0).expect("int1 into short"), 5);
    let e = dec::<i32>("030000000000000005", 0).expect_err("int8 into int");
    assert_eq!(e.to_string(), "expected int, got int8");
    let e = dec::<bool>("010001", 0).expect_err("int2 into bool");
    assert_eq!(e.to_string(), "expected bool, got int2");
    assert_eq!(dec::<String>("070000000161", 0).expect("short string as String4"), "a");
    // vector<byte> as a List of int1 and zero.
    assert_eq!(&dec::<Bytes>("09 0003 0001 0c 00ff", 0).expect("list form")[..], &[1, 0, 0xff]);
    let e = dec::<Bytes>("09 0001 010100", 0).expect_err("int2 element");
    assert_eq!(e.to_string(), "expected byte, got int2");
    // A list count sent as int2.
    assert_eq!(dec::<Vec<i32>>("09 010002 0001 0002", 0).expect("int2 count"), vec![1, 2]);
}

#[test]
fn hostile_lengths_fail_before_allocating() {
    // A list claiming 2^31-1 elements with 2 bytes left.
    let e = dec::<Vec<i32>>("09 027fffffff 0001", 0).expect_err("count too large");
    assert!(matches!(e.kind(), DecodeErrorKind::LengthTooLarge { .. }), "{e}");
    let e = dec::<Vec<i32>>("09 00ff", 0).expect_err("negative count");
    assert_eq!(e.kind(), &DecodeErrorKind::NegativeLength(-1));
    let e = dec::<String>("07 ffffffff 61", 0).expect_err("string too long");
    assert!(matches!(e.kind(), DecodeErrorKind::LengthTooLarge { .. }), "{e}");
    let e = dec::<BTreeMap<i32, i32>>("08 0003 0001 1002", 0).expect_err("map entries missing");
    assert!(matches!(e.kind(), DecodeErrorKind::LengthTooLarge { .. }), "{e}");
    let e = dec::<i32>("0e", 0).expect_err("type 14");
    assert_eq!(e.kind(), &DecodeErrorKind::InvalidType(14));
    let e = dec::<i32>("02 0000", 0).expect_err("truncated int4");
    assert!(matches!(e.kind(), DecodeErrorKind::Truncated { needed: 4, available: 2 }), "{e}");
}

#[test]
fn nesting_depth_is_limited() {
    // 100 nested lists of lists; the default limit is 64.
    let mut b = Vec::new();
    for _ in 0..100 {
        b.extend_from_slice(&[0x09, 0x00, 0x01]);
    }
    b.extend_from_slice(&[0x09, 0x0c]);
    let mut r = Reader::new(&b);
    let head = r.read_head().expect("head");
    let e = r.skip_payload(head.ty).expect_err("too deep");
    assert_eq!(e.kind(), &DecodeErrorKind::TooDeep(64));
    let mut r = Reader::new(&b).with_limits(Limits { max_depth: 200 });
    let head = r.read_head().expect("head");
    r.skip_payload(head.ty).expect("within a raised limit");
    assert!(r.is_empty());
}

/// The request and response of `greet(1000, "tars")`, as TarsCpp encodes them.
#[test]
fn worked_example_frames() {
    let req = RequestPacket {
        i_version: 1,
        i_request_id: 1,
        s_servant_name: "Test.HelloServer.HelloObj".into(),
        s_func_name: "greet".into(),
        s_buffer: Bytes::from(hex::decode("1103e8260474617273 3600".replace(' ', "")).expect("hex")),
        i_timeout: 3000,
        ..Default::default()
    };
    let want = "00000042 1001 2c 3c 4001 5619546573742e48656c6c6f5365727665722e48656c6c6f4f626a \
                66056772656574 7d00000b1103e82604746172733600 810bb8 980c a80c";
    assert_eq!(hex::encode(encode_frame(&req)), want.replace(' ', ""));
    let resp = ResponsePacket {
        i_version: 1,
        i_request_id: 1,
        s_buffer: Bytes::from(hex::decode("0c360768692074617273").expect("hex")),
        ..Default::default()
    };
    let want = "0000001b 1001 2c 3001 4c 5c 6d00000a0c360768692074617273 780c";
    assert_eq!(hex::encode(encode_frame(&resp)), want.replace(' ', ""));

    let mut buf = BytesMut::from(&encode_frame(&req)[..]);
    let body = FrameDecoder::new().decode(&mut buf).expect("valid").expect("complete");
    assert_eq!(RequestPacket::decode_bytes(&body).expect("decodes"), req);
}

#[test]
fn frame_decoder_contract() {
    let frame = encode_frame(&RequestPacket { i_version: 1, i_request_id: 9, ..Default::default() });
    let mut dec = FrameDecoder::new();
    // Byte by byte: incomplete until the last byte, then exactly one body.
    let mut buf = BytesMut::new();
    for (i, b) in frame.iter().enumerate() {
        buf.extend_from_slice(&[*b]);
        let got = dec.decode(&mut buf).expect("valid so far");
        assert_eq!(got.is_some(), i == frame.len() - 1, "byte {i}");
    }
    // A length claiming 4 GiB is an error, and nothing is reserved for it.
    let mut buf = BytesMut::from(&[0xff, 0xff, 0xff, 0xff, 0x10][..]);
    let cap = buf.capacity();
    assert_eq!(dec.decode(&mut buf), Err(FrameError::TooLarge { len: u32::MAX, max: 10 * 1024 * 1024 }));
    assert_eq!(buf.capacity(), cap);
    // Too short, and limits outside the allowed range.
    assert_eq!(dec.decode(&mut BytesMut::from(&[0, 0, 0, 4][..])), Err(FrameError::TooShort(4)));
    assert!(FrameDecoder::with_max_frame(200 * 1024 * 1024).is_err());
    let mut small = FrameDecoder::with_max_frame(100 * 1024 * 1024).expect("100 MiB is allowed");
    assert_eq!(small.max_frame(), 100 * 1024 * 1024);
    // A partial large frame reserves at most 64 KiB ahead.
    let mut buf = BytesMut::from(&[0x01, 0x00, 0x00, 0x00, 0x10][..]);
    assert_eq!(small.decode(&mut buf), Ok(None));
    assert!(buf.capacity() <= 64 * 1024 + 5, "capacity {}", buf.capacity());
}

#[test]
fn binary_strings_carry_any_bytes_as_a_string() {
    use tars_proto::codec::BinString;
    // An encoded int4 pid (0x0001E240) is not UTF-8: String refuses it, BinString keeps it.
    let raw = BinString(Bytes::from_static(&[0x02, 0x00, 0x01, 0xe2, 0x40]));
    let wire = enc(&raw, 4);
    assert_eq!(wire, "4605020001e240", "a String1 head, then the bytes");
    assert_eq!(dec::<BinString>(&wire, 4).expect("decodes"), raw);
    assert!(dec::<String>(&wire, 4).is_err(), "String still checks UTF-8");
    assert_eq!(dec::<BinString>(&enc(&"ok".to_owned(), 4), 4).expect("decodes").as_str(), Some("ok"));
}
