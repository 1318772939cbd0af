//! Resolver tests: includes, module merging, name lookup, enum values, keys, defaults,
//! constants, and every semantic error with its `file:line:col`.

use std::fs;
use std::path::{Path, PathBuf};

use tars_idl::resolve::{
    load, load_str, resolve, ConstDef, EnumDef, FieldDef, InterfaceDef, ModuleDef, OperationDef, ParamDef, Program,
    RType, StructDef, Value,
};
use tars_idl::IdlError;

fn ok(src: &str) -> Program {
    match load_str(&[("x.tars", src)]) {
        Ok(p) => p,
        Err(e) => panic!("expected success, got: {e}"),
    }
}

fn err(src: &str) -> String {
    load_str(&[("x.tars", src)]).expect_err("expected an error").to_string()
}

fn module<'p>(p: &'p Program, name: &str) -> &'p ModuleDef {
    p.module(name).unwrap_or_else(|| panic!("module {name} missing"))
}

fn strukt<'p>(p: &'p Program, m: &str, name: &str) -> &'p StructDef {
    module(p, m).find_struct(name).unwrap_or_else(|| panic!("struct {m}::{name} missing"))
}

fn field<'s>(s: &'s StructDef, name: &str) -> &'s FieldDef {
    s.fields.iter().find(|f| f.name == name).unwrap_or_else(|| panic!("field {name} missing"))
}

fn st(m: &str, n: &str) -> RType {
    RType::Struct { module: m.into(), name: n.into() }
}

fn en(m: &str, n: &str) -> RType {
    RType::Enum { module: m.into(), name: n.into() }
}

/// A fresh directory under Cargo's per-test temp dir.
fn temp_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("idl-resolve").join(name);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

fn write(path: &Path, text: &str) {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).expect("create parent dir");
    }
    fs::write(path, text).expect("write test file");
}

#[test]
fn full_program_shape() {
    let p = ok(r#"module app {
    enum Color { RED, GREEN = 5, BLUE };
    struct Point { 1 require int y; 0 require int x = 3; };
    const string GREETING = "hi";
    interface Svc {
        void ping();
        Point move(Point p, out int steps, routekey string uid);
    };
    key[Point, x, y];
};"#);
    let expected = Program {
        modules: vec![ModuleDef {
            name: "app".into(),
            structs: vec![StructDef {
                name: "Point".into(),
                fields: vec![
                    FieldDef { tag: 0, required: true, name: "x".into(), ty: RType::Int, default: Some(Value::Int(3)) },
                    FieldDef { tag: 1, required: true, name: "y".into(), ty: RType::Int, default: None },
                ],
                key: Some(vec!["x".into(), "y".into()]),
            }],
            enums: vec![EnumDef {
                name: "Color".into(),
                variants: vec![("RED".into(), 0), ("GREEN".into(), 5), ("BLUE".into(), 6)],
            }],
            consts: vec![ConstDef { name: "GREETING".into(), ty: RType::String, value: Value::Str("hi".into()) }],
            interfaces: vec![InterfaceDef {
                name: "Svc".into(),
                operations: vec![
                    OperationDef { name: "ping".into(), ret: None, params: vec![] },
                    OperationDef {
                        name: "move".into(),
                        ret: Some(st("app", "Point")),
                        params: vec![
                            ParamDef { name: "p".into(), ty: st("app", "Point"), out: false, routekey: false, tag: 1 },
                            ParamDef { name: "steps".into(), ty: RType::Int, out: true, routekey: false, tag: 2 },
                            ParamDef { name: "uid".into(), ty: RType::String, out: false, routekey: true, tag: 3 },
                        ],
                    },
                ],
            }],
        }],
    };
    assert_eq!(p, expected);
}

#[test]
fn builtin_and_container_types_resolve() {
    let p = ok("module m {
    enum E { A };
    struct Inner { 0 require int v; };
    struct S {
        0 require bool a; 1 require byte b; 2 require unsigned byte c; 3 require short d;
        4 require unsigned short e; 5 require int f; 6 require unsigned int g; 7 require long h;
        8 require float i; 9 require double j; 10 require string k;
        11 require vector<map<string, Inner>> l;
        12 require map<E, vector<byte>> n;
        13 optional byte fixed[16];
        14 optional map<Inner, E> o;
    };
};");
    let s = strukt(&p, "m", "S");
    let types: Vec<RType> = s.fields.iter().map(|f| f.ty.clone()).collect();
    assert_eq!(
        types,
        vec![
            RType::Bool,
            RType::Byte,
            RType::UByte,
            RType::Short,
            RType::UShort,
            RType::Int,
            RType::UInt,
            RType::Long,
            RType::Float,
            RType::Double,
            RType::String,
            RType::Vector(Box::new(RType::Map(Box::new(RType::String), Box::new(st("m", "Inner"))))),
            RType::Map(Box::new(en("m", "E")), Box::new(RType::Vector(Box::new(RType::Byte)))),
            RType::Vector(Box::new(RType::Byte)),
            RType::Map(Box::new(st("m", "Inner")), Box::new(en("m", "E"))),
        ]
    );
    assert_eq!(types[11].to_string(), "vector<map<string, m::Inner>>");
    assert_eq!(types[2].to_string(), "unsigned byte");
}

#[test]
fn fields_are_sorted_by_tag_and_optional_flag_kept() {
    let p = ok("module m { struct S {
        5 optional int e; 0 require int a; 3 optional int c; 1 require int b;
    }; };");
    let s = strukt(&p, "m", "S");
    let order: Vec<(u8, &str, bool)> = s.fields.iter().map(|f| (f.tag, f.name.as_str(), f.required)).collect();
    assert_eq!(order, [(0, "a", true), (1, "b", true), (3, "c", false), (5, "e", false)]);
    assert_eq!(s.key, None);
}

#[test]
fn modules_merge_across_blocks_and_files_in_first_seen_order() {
    let p = load_str(&[
        ("a.tars", "module a { struct A1 { 0 require int v; }; };\nmodule b { enum B1 { X }; };\nmodule a { struct A2 { 0 require b::B1 v; }; };"),
        ("c.tars", "module c { struct C { 0 require int v; }; };\nmodule a { const int K = 1; };"),
    ])
    .expect("resolves");
    let names: Vec<&str> = p.modules.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "c"]);
    let a = module(&p, "a");
    let structs: Vec<&str> = a.structs.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(structs, ["A1", "A2"]);
    assert_eq!(a.consts[0].name, "K");
    assert_eq!(strukt(&p, "a", "A2").fields[0].ty, en("b", "B1"));
}

#[test]
fn include_across_two_files_with_cross_module_reference() {
    let common = "module base {\n    struct Id { 0 require long v; };\n    enum Kind { K1, K2 };\n};";
    let app = "#include \"common.tars\"\nmodule app {\n    struct User {\n        0 require base::Id id;\n        1 optional base::Kind kind = base::K2;\n    };\n};";
    // The includer is listed first; the included file still comes first in the program.
    let p = load_str(&[("src/app.tars", app), ("idl/common.tars", common)]).expect("resolves");
    let names: Vec<&str> = p.modules.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["base", "app"]);
    let user = strukt(&p, "app", "User");
    assert_eq!(field(user, "id").ty, st("base", "Id"));
    assert_eq!(
        field(user, "kind").default,
        Some(Value::Enum { module: "base".into(), enum_name: "Kind".into(), variant: "K2".into(), value: 1 })
    );
}

#[test]
fn include_cycles_are_tolerated_in_memory() {
    let p = load_str(&[
        ("a.tars", "#include \"b.tars\"\nmodule a { struct A { 0 optional vector<b::B> v; }; };"),
        ("b.tars", "#include \"a.tars\"\nmodule b { struct B { 0 optional vector<a::A> v; }; };"),
    ])
    .expect("resolves");
    let names: Vec<&str> = p.modules.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["b", "a"]);
}

#[test]
fn missing_include_in_memory() {
    assert_eq!(err("module m {};\n  #include \"nope.tars\""), "x.tars:2:3: cannot find included file \"nope.tars\"");
}

#[test]
fn load_from_disk_follows_includes_and_include_dirs() {
    let dir = temp_dir("disk");
    write(
        &dir.join("src/main.tars"),
        "#include \"local.tars\"\n#include \"shared/common.tars\"\n#include \"main.tars\"\nmodule app { struct Req { 0 require base::Id id; 1 require loc::L l; }; };",
    );
    write(&dir.join("src/local.tars"), "module loc { struct L { 0 require int v; }; };");
    write(
        &dir.join("inc/shared/common.tars"),
        "#include \"../../src/local.tars\"\nmodule base { struct Id { 0 require long v; }; };",
    );
    let p = load(&[dir.join("src/main.tars")], &[dir.join("inc")]).expect("loads");
    let names: Vec<&str> = p.modules.iter().map(|m| m.name.as_str()).collect();
    // local.tars is reached twice (directly and via common.tars) but loaded once.
    assert_eq!(names, ["loc", "base", "app"]);
    let req = strukt(&p, "app", "Req");
    assert_eq!(field(req, "id").ty, st("base", "Id"));
    assert_eq!(field(req, "l").ty, st("loc", "L"));
}

#[test]
fn load_from_disk_prefers_the_including_files_directory() {
    let dir = temp_dir("priority");
    write(&dir.join("a/main.tars"), "#include \"t.tars\"\nmodule m { struct S { 0 require t::Near x; }; };");
    write(&dir.join("a/t.tars"), "module t { struct Near { 0 require int v; }; };");
    write(&dir.join("inc/t.tars"), "module t { struct Far { 0 require int v; }; };");
    let p = load(&[dir.join("a/main.tars")], &[dir.join("inc")]).expect("loads");
    assert!(module(&p, "t").find_struct("Near").is_some());
    assert!(module(&p, "t").find_struct("Far").is_none());
}

#[test]
fn load_from_disk_cycles_and_duplicated_roots() {
    let dir = temp_dir("cycle");
    write(&dir.join("a.tars"), "#include \"b.tars\"\nmodule a { struct A { 0 require int v; }; };");
    write(&dir.join("b.tars"), "#include \"a.tars\"\nmodule b { struct B { 0 require int v; }; };");
    let p = load(&[dir.join("a.tars"), dir.join("b.tars"), dir.join("a.tars")], &[]).expect("loads");
    let names: Vec<&str> = p.modules.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["b", "a"]);
}

#[test]
fn load_from_disk_errors() {
    let dir = temp_dir("errors");
    let missing = dir.join("missing.tars");
    match load(std::slice::from_ref(&missing), &[]) {
        Err(IdlError::Io { file, .. }) => assert_eq!(file, missing),
        other => panic!("expected an IO error, got {other:?}"),
    }
    let root = dir.join("root.tars");
    write(&root, "module m {};\n#include \"gone.tars\"\n");
    let msg = load(std::slice::from_ref(&root), &[dir.join("inc")]).expect_err("must fail").to_string();
    assert_eq!(msg, format!("{}:2:1: cannot find included file \"gone.tars\"", root.display()));
    // Errors inside an included file name that file.
    let bad = dir.join("bad.tars");
    write(&bad, "module m {\n  struct S { 0 require Nope n; };\n};");
    write(&root, "#include \"bad.tars\"\n");
    let msg = load(&[root], &[]).expect_err("must fail").to_string();
    assert_eq!(msg, format!("{}:2:24: unknown type 'Nope'", bad.display()));
}

#[test]
fn resolve_takes_parsed_files_directly() {
    let f = tars_idl::parse::parse(Path::new("d.tars"), "module m { enum E { A = 2 }; };").expect("parses");
    let p = resolve(vec![f]).expect("resolves");
    assert_eq!(module(&p, "m").find_enum("E").map(|e| e.variants.clone()), Some(vec![("A".into(), 2)]));
}

#[test]
fn enum_value_computation() {
    let p = ok("module m {
    enum E { A, B = 5, C, D = -1, F, G = 0x10, H = B, I, J = E::A, K = m::E::C, L = m::G, M = 2147483647 };
};");
    let e = module(&p, "m").find_enum("E").expect("enum E");
    let values: Vec<(&str, i32)> = e.variants.iter().map(|(n, v)| (n.as_str(), *v)).collect();
    assert_eq!(
        values,
        [
            ("A", 0),
            ("B", 5),
            ("C", 6),
            ("D", -1),
            ("F", 0),
            ("G", 16),
            ("H", 5),
            ("I", 6),
            ("J", 0),
            ("K", 6),
            ("L", 16),
            ("M", i32::MAX),
        ]
    );
}

#[test]
fn enum_errors() {
    let cases: &[(&str, &str)] = &[
        (
            "module m { enum E { A = 2147483648 }; };",
            "x.tars:1:21: value 2147483648 of enumerator 'A' does not fit in an int",
        ),
        (
            "module m { enum E { A = -2147483649 }; };",
            "x.tars:1:21: value -2147483649 of enumerator 'A' does not fit in an int",
        ),
        (
            "module m { enum E { A = 2147483647, B }; };",
            "x.tars:1:37: value 2147483648 of enumerator 'B' does not fit in an int",
        ),
        ("module m { enum E { A = B, B }; };", "x.tars:1:21: 'B' is not an earlier enumerator of enum 'E'"),
        ("module m { enum E { A, B = F::A }; };", "x.tars:1:24: 'F::A' is not an earlier enumerator of enum 'E'"),
        ("module m { enum E { A, A }; };", "x.tars:1:24: duplicate enumerator 'A' in enum 'E'"),
        (
            "module m { enum E { A = \"x\" }; };",
            "x.tars:1:21: enumerator value must be an integer or an earlier enumerator, found string \"x\"",
        ),
        (
            "module m { enum E { A = 1.5 }; };",
            "x.tars:1:21: enumerator value must be an integer or an earlier enumerator, found float 1.5",
        ),
    ];
    for (src, expected) in cases {
        assert_eq!(&err(src), expected, "source: {src}");
    }
}

#[test]
fn keys() {
    let p = ok("module m {
    struct S { 0 require int a; 1 require string b; 2 optional long c; };
    key[S, c, a];
    struct T { 0 require int z; };
};
module m { key[m::T, z]; };");
    assert_eq!(strukt(&p, "m", "S").key, Some(vec!["c".to_owned(), "a".to_owned()]));
    assert_eq!(strukt(&p, "m", "T").key, Some(vec!["z".to_owned()]));

    let cases: &[(&str, &str)] = &[
        ("module m {\n  key[Nope, a];\n};", "x.tars:2:3: key[] names unknown struct 'Nope'"),
        ("module m { enum E { A }; key[E, a]; };", "x.tars:1:26: key[] names unknown struct 'E'"),
        ("module m { struct S { 0 require int a; }; key[S, b]; };", "x.tars:1:43: 'b' is not a member of struct 'S'"),
        (
            "module m { struct S { 0 require int a; }; key[S, a, a]; };",
            "x.tars:1:43: member 'a' appears twice in key[]",
        ),
        (
            "module m { struct S { 0 require int a; }; key[S, a]; key[S, a]; };",
            "x.tars:1:54: struct 'S' already has a key[]",
        ),
        (
            "module o { struct S { 0 require int a; }; };\nmodule m { key[o::S, a]; };",
            "x.tars:2:12: key[] in module 'm' must name a struct of that module, found 'o::S'",
        ),
    ];
    for (src, expected) in cases {
        assert_eq!(&err(src), expected, "source: {src}");
    }
}

#[test]
fn defaults_of_each_kind() {
    let p = ok(r#"module m {
    enum Color { RED, GREEN = 7 };
    struct S {
        0 optional bool t = true;
        1 optional bool f = false;
        2 optional byte b = -128;
        3 optional unsigned byte ub = 255;
        4 optional short s = -32768;
        5 optional unsigned short us = 65535;
        6 optional int i = 0x7FFFFFFF;
        7 optional unsigned int ui = 4294967295;
        8 optional long l = -9223372036854775808;
        9 optional float fl = 2;
        10 optional double d = -2.5e3;
        11 optional string str = "a\tb";
        12 optional Color c1 = GREEN;
        13 optional Color c2 = Color::RED;
        14 optional m::Color c3 = m::GREEN;
        15 optional Color c4 = m::Color::GREEN;
        16 optional Color c5 = 7;
        17 optional int none;
    };
};"#);
    let s = strukt(&p, "m", "S");
    let green = Value::Enum { module: "m".into(), enum_name: "Color".into(), variant: "GREEN".into(), value: 7 };
    let red = Value::Enum { module: "m".into(), enum_name: "Color".into(), variant: "RED".into(), value: 0 };
    let defaults: Vec<Option<Value>> = s.fields.iter().map(|f| f.default.clone()).collect();
    assert_eq!(
        defaults,
        vec![
            Some(Value::Bool(true)),
            Some(Value::Bool(false)),
            Some(Value::Int(-128)),
            Some(Value::Int(255)),
            Some(Value::Int(-32768)),
            Some(Value::Int(65535)),
            Some(Value::Int(i64::from(i32::MAX))),
            Some(Value::Int(i64::from(u32::MAX))),
            Some(Value::Int(i64::MIN)),
            Some(Value::Float(2.0)),
            Some(Value::Float(-2500.0)),
            Some(Value::Str("a\tb".into())),
            Some(green.clone()),
            Some(red),
            Some(green.clone()),
            Some(green.clone()),
            Some(green),
            None,
        ]
    );
}

#[test]
fn default_errors() {
    let member = |decl: &str| format!("module m {{ enum E {{ A, B }}; struct S {{ {decl}; }}; }};");
    // Every member below starts at column 40, so its name is at 40 + len("0 optional TYPE ").
    let cases: &[(&str, &str)] = &[
        ("0 optional byte v = 128", "x.tars:1:56: value 128 for 'v' is out of range for byte (-128..=127)"),
        ("0 optional byte v = -129", "x.tars:1:56: value -129 for 'v' is out of range for byte (-128..=127)"),
        (
            "0 optional unsigned byte v = -1",
            "x.tars:1:65: value -1 for 'v' is out of range for unsigned byte (0..=255)",
        ),
        (
            "0 optional unsigned byte v = 256",
            "x.tars:1:65: value 256 for 'v' is out of range for unsigned byte (0..=255)",
        ),
        ("0 optional short v = 32768", "x.tars:1:57: value 32768 for 'v' is out of range for short (-32768..=32767)"),
        (
            "0 optional unsigned short v = 65536",
            "x.tars:1:66: value 65536 for 'v' is out of range for unsigned short (0..=65535)",
        ),
        (
            "0 optional int v = 2147483648",
            "x.tars:1:55: value 2147483648 for 'v' is out of range for int (-2147483648..=2147483647)",
        ),
        (
            "0 optional unsigned int v = -1",
            "x.tars:1:64: value -1 for 'v' is out of range for unsigned int (0..=4294967295)",
        ),
        (
            "0 optional int v = 1.5",
            "x.tars:1:55: invalid value for 'v' of type int: expected an integer, found float 1.5",
        ),
        (
            "0 optional long v = \"7\"",
            "x.tars:1:56: invalid value for 'v' of type long: expected an integer, found string \"7\"",
        ),
        (
            "0 optional bool v = 1",
            "x.tars:1:56: invalid value for 'v' of type bool: expected true or false, found integer 1",
        ),
        (
            "0 optional string v = 1",
            "x.tars:1:58: invalid value for 'v' of type string: expected a string, found integer 1",
        ),
        (
            "0 optional string v = true",
            "x.tars:1:58: invalid value for 'v' of type string: expected a string, found 'true'",
        ),
        (
            "0 optional double v = \"x\"",
            "x.tars:1:58: invalid value for 'v' of type double: expected a number, found string \"x\"",
        ),
        (
            "0 optional float v = 1e39",
            "x.tars:1:57: value 1000000000000000000000000000000000000000 for 'v' is out of range for float",
        ),
        ("0 optional E v = C", "x.tars:1:53: 'C' is not an enumerator of enum m::E"),
        ("0 optional E v = F::A", "x.tars:1:53: 'F::A' is not an enumerator of enum m::E"),
        ("0 optional E v = 5", "x.tars:1:53: no enumerator of enum m::E has value 5"),
        (
            "0 optional E v = \"A\"",
            "x.tars:1:53: invalid value for 'v' of type m::E: expected an enumerator, found string \"A\"",
        ),
        ("0 optional int v = A", "x.tars:1:55: invalid value for 'v' of type int: expected an integer, found 'A'"),
        (
            "0 optional vector<int> v = 1",
            "x.tars:1:63: 'v' of type vector<int> cannot have a default value (only builtin and enum types can)",
        ),
        (
            "0 optional map<int, int> v = 1",
            "x.tars:1:65: 'v' of type map<int, int> cannot have a default value (only builtin and enum types can)",
        ),
        (
            "0 optional S v = 1",
            "x.tars:1:53: 'v' of type m::S cannot have a default value (only builtin and enum types can)",
        ),
        (
            "0 optional byte v[4] = 1",
            "x.tars:1:56: 'v' of type vector<byte> cannot have a default value (only builtin and enum types can)",
        ),
    ];
    for (decl, expected) in cases {
        assert_eq!(&err(&member(decl)), expected, "member: {decl}");
    }
}

#[test]
fn constants() {
    let p = ok(r#"module m {
    enum E { A, B };
    const bool YES = true;
    const unsigned byte UB = 200;
    const long BIG = 0x7FFFFFFFFFFFFFFF;
    const float F = 1.5f;
    const double D = 10;
    const string S = "s";
    const E DEF = B;
};"#);
    let consts: Vec<(&str, &RType, &Value)> =
        module(&p, "m").consts.iter().map(|c| (c.name.as_str(), &c.ty, &c.value)).collect();
    let b = Value::Enum { module: "m".into(), enum_name: "E".into(), variant: "B".into(), value: 1 };
    assert_eq!(
        consts,
        vec![
            ("YES", &RType::Bool, &Value::Bool(true)),
            ("UB", &RType::UByte, &Value::Int(200)),
            ("BIG", &RType::Long, &Value::Int(i64::MAX)),
            ("F", &RType::Float, &Value::Float(1.5)),
            ("D", &RType::Double, &Value::Float(10.0)),
            ("S", &RType::String, &Value::Str("s".into())),
            ("DEF", &en("m", "E"), &b),
        ]
    );
    assert_eq!(
        err("module m {\n  const vector<int> V = 1;\n};"),
        "x.tars:2:21: constant 'V' must have a builtin or enum type, not vector<int>"
    );
    assert_eq!(
        err("module m {\n  const short V = 40000;\n};"),
        "x.tars:2:15: value 40000 for 'V' is out of range for short (-32768..=32767)"
    );
}

#[test]
fn name_lookup() {
    // Unqualified: current module first, even when another module has the same name.
    let p = load_str(&[(
        "x.tars",
        "module a { struct T { 0 require int v; }; struct U { 0 require int v; }; };
module b { struct T { 0 require string v; }; struct User { 0 require T t; 1 require U u; 2 require a::T at; }; };",
    )])
    .expect("resolves");
    let user = strukt(&p, "b", "User");
    assert_eq!(field(user, "t").ty, st("b", "T"));
    // Not in the current module but defined in exactly one other module: accepted.
    assert_eq!(field(user, "u").ty, st("a", "U"));
    assert_eq!(field(user, "at").ty, st("a", "T"));
    // Types can be used before their definition.
    let p = ok("module m { struct A { 0 optional vector<B> b; }; struct B { 0 require A a; }; };");
    assert_eq!(field(strukt(&p, "m", "A"), "b").ty, RType::Vector(Box::new(st("m", "B"))));
}

#[test]
fn name_errors() {
    let cases: &[(&str, &str)] = &[
        ("module m {\n  struct S { 0 require Foo f; };\n};", "x.tars:2:24: unknown type 'Foo'"),
        ("module m {\n  struct S { 0 require vector<map<int, Foo>> f; };\n};", "x.tars:2:40: unknown type 'Foo'"),
        ("module m { struct S { 0 require q::Foo f; }; };", "x.tars:1:33: unknown module 'q' in type 'q::Foo'"),
        ("module m { struct S { 0 require m::Foo f; }; };", "x.tars:1:33: unknown type 'm::Foo'"),
        ("module a { struct T { 0 require int v; }; };\nmodule b { struct T { 0 require int v; }; };\nmodule c { struct S { 0 require T t; }; };", "x.tars:3:33: ambiguous type 'T': defined in modules 'a', 'b'; write 'module::T'"),
        ("module m { const int K = 1; struct S { 0 require K k; }; };", "x.tars:1:50: 'm::K' is a constant, not a type"),
        ("module m { interface I {}; struct S { 0 require I i; }; };", "x.tars:1:49: 'm::I' is an interface, not a type"),
        ("module m { interface I { Nope f(); }; };", "x.tars:1:26: unknown type 'Nope'"),
        ("module m { interface I { void f(out Nope n); }; };", "x.tars:1:37: unknown type 'Nope'"),
    ];
    for (src, expected) in cases {
        assert_eq!(&err(src), expected, "source: {src}");
    }
}

#[test]
fn duplicates() {
    let cases: &[(&str, &str)] = &[
        (
            "module m { struct S { 0 require int a; 0 require int b; }; };",
            "x.tars:1:54: duplicate tag 0 in struct 'S' (already used by 'a')",
        ),
        (
            "module m { struct S { 0 require int a; 1 require long a; }; };",
            "x.tars:1:55: duplicate member 'a' in struct 'S'",
        ),
        (
            "module m { struct S { 0 require int a; };\n  enum S { X }; };",
            "x.tars:2:8: 'S' is already defined in module 'm' (at x.tars:1:19)",
        ),
        (
            "module m { const int S = 1; };\nmodule m { interface S {}; };",
            "x.tars:2:22: 'S' is already defined in module 'm' (at x.tars:1:22)",
        ),
        (
            "module m { interface I { void f(); int f(int a); }; };",
            "x.tars:1:40: duplicate operation 'f' in interface 'I'",
        ),
        (
            "module m { interface I { void f(int a, out string a); }; };",
            "x.tars:1:51: duplicate parameter 'a' in operation 'f'",
        ),
    ];
    for (src, expected) in cases {
        assert_eq!(&err(src), expected, "source: {src}");
    }
    // Across files.
    let msg = load_str(&[
        ("one.tars", "module m { struct S { 0 require int a; }; };"),
        ("two.tars", "module m {\n  struct S { 0 require int a; };\n};"),
    ])
    .expect_err("must fail")
    .to_string();
    assert_eq!(msg, "two.tars:2:10: 'S' is already defined in module 'm' (at one.tars:1:19)");
}

#[test]
fn parameter_count_limit() {
    let params = |n: usize| (0..n).map(|i| format!("int p{i}")).collect::<Vec<_>>().join(", ");
    let p = ok(&format!("module m {{ interface I {{ void f({}); }}; }};", params(255)));
    let op = &module(&p, "m").interfaces[0].operations[0];
    assert_eq!(op.params.len(), 255);
    assert_eq!(op.params[254].tag, 255);
    assert_eq!(op.params[0].tag, 1);
    let msg = err(&format!("module m {{ interface I {{ void f({}); }}; }};", params(256)));
    assert!(msg.ends_with(": operation 'f' has more than 255 parameters"), "unexpected message: {msg}");
    // The error points at the 256th parameter's name.
    let col = "module m { interface I { void f(".len() + params(255).len() + ", int ".len() + 1;
    assert!(msg.starts_with(&format!("x.tars:1:{col}:")), "unexpected position: {msg}");
}

#[test]
fn parse_errors_surface_through_load_str() {
    assert_eq!(
        load_str(&[("ok.tars", "module m {};"), ("bad.tars", "module m {\n  struct")])
            .expect_err("must fail")
            .to_string(),
        "bad.tars:2:9: expected a struct name, found end of file"
    );
}
