//! Parser tests: every grammar element, comments, and every syntax error with its position.

use std::path::Path;

use tars_idl::ast::{Enumerator, File, Include, Item, Key, Literal, Member, Module, Operation, Param, Pos, Type};
use tars_idl::parse::parse;

fn ok(src: &str) -> File {
    match parse(Path::new("x.tars"), src) {
        Ok(file) => file,
        Err(e) => panic!("expected success, got: {e}"),
    }
}

fn err(src: &str) -> String {
    parse(Path::new("x.tars"), src).expect_err("expected a parse error").to_string()
}

fn pos(line: u32, col: u32) -> Pos {
    Pos { line, col }
}

/// The only module of a file.
fn only_module(file: &File) -> &Module {
    assert_eq!(file.modules.len(), 1, "expected exactly one module");
    &file.modules[0]
}

fn named(module: Option<&str>, name: &str, at: Pos) -> Type {
    Type::Named { module: module.map(str::to_owned), name: name.to_owned(), pos: at }
}

#[test]
fn empty_file_and_comment_only_file() {
    assert_eq!(ok("").modules, vec![]);
    let file = ok("// nothing\n/* at\n all */\n");
    assert!(file.modules.is_empty() && file.includes.is_empty());
    assert_eq!(file.path, Path::new("x.tars"));
}

#[test]
fn includes_and_repeated_modules() {
    let file = ok("#include \"a.tars\"\n#include   \"dir/b.tars\"\nmodule m {};\nmodule n {};\nmodule m {};\n");
    assert_eq!(
        file.includes,
        vec![Include { path: "a.tars".into(), pos: pos(1, 1) }, Include { path: "dir/b.tars".into(), pos: pos(2, 1) },]
    );
    let names: Vec<&str> = file.modules.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["m", "n", "m"]);
    assert_eq!(file.modules[1].pos, pos(4, 8));
}

#[test]
fn struct_members_all_builtin_types() {
    let src = "module m {
    struct S {
        0 require bool a;
        1 optional byte b;
        2 require unsigned byte c;
        3 require short d;
        4 require unsigned short e;
        5 require int f;
        6 require unsigned int g;
        7 require long h;
        8 require float i;
        9 require double j;
        10 require string k;
    };
};";
    let file = ok(src);
    let Item::Struct(s) = &only_module(&file).items[0] else { panic!("expected a struct") };
    assert_eq!(s.name, "S");
    assert_eq!(s.pos, pos(2, 12));
    let types: Vec<&Type> = s.members.iter().map(|m| &m.ty).collect();
    assert_eq!(
        types,
        [
            &Type::Bool,
            &Type::Byte { unsigned: false },
            &Type::Byte { unsigned: true },
            &Type::Short { unsigned: false },
            &Type::Short { unsigned: true },
            &Type::Int { unsigned: false },
            &Type::Int { unsigned: true },
            &Type::Long,
            &Type::Float,
            &Type::Double,
            &Type::String,
        ]
    );
    let tags: Vec<u32> = s.members.iter().map(|m| m.tag).collect();
    assert_eq!(tags, (0..=10).collect::<Vec<u32>>());
    assert!(!s.members[1].required && s.members[0].required);
    assert_eq!(s.members[10].name, "k");
    assert_eq!(s.members[10].pos, pos(13, 27));
}

#[test]
fn member_defaults_arrays_and_named_types() {
    let src = r#"module m {
    struct S {
        0 require int a = -5;
        1 optional long b = 0x10;
        2 optional float c = 1.5f;
        3 optional double d = -2.0;
        4 optional double e = 1e3;
        5 optional string s = "q\"uo\\te\n";
        6 optional bool t = true;
        7 optional bool u = false;
        8 optional Color v = RED;
        9 optional other::Color w = Color::RED;
        10 optional byte arr[5];
        11 optional Foo x;
        12 optional other::Bar y;
    };
};"#;
    let file = ok(src);
    let Item::Struct(s) = &only_module(&file).items[0] else { panic!("expected a struct") };
    let defaults: Vec<Option<Literal>> = s.members.iter().map(|m| m.default.clone()).collect();
    assert_eq!(
        defaults,
        vec![
            Some(Literal::Int(-5)),
            Some(Literal::Int(16)),
            Some(Literal::Float(1.5)),
            Some(Literal::Float(-2.0)),
            Some(Literal::Float(1000.0)),
            Some(Literal::Str("q\"uo\\te\n".into())),
            Some(Literal::Bool(true)),
            Some(Literal::Bool(false)),
            Some(Literal::Ident { scope: None, name: "RED".into() }),
            Some(Literal::Ident { scope: Some("Color".into()), name: "RED".into() }),
            None,
            None,
            None,
        ]
    );
    assert_eq!(
        s.members[10],
        Member {
            tag: 10,
            required: false,
            ty: Type::Byte { unsigned: false },
            name: "arr".into(),
            default: None,
            array: Some(5),
            pos: pos(13, 26),
        }
    );
    assert_eq!(s.members[8].ty, named(None, "Color", pos(11, 20)));
    assert_eq!(s.members[9].ty, named(Some("other"), "Color", pos(12, 20)));
    assert_eq!(s.members[11].ty, named(None, "Foo", pos(14, 21)));
    assert_eq!(s.members[12].ty, named(Some("other"), "Bar", pos(15, 21)));
}

#[test]
fn nested_containers_and_double_gt() {
    let file = ok("module m { struct S {
        0 require vector<map<string,string>> a;
        1 require map<int, vector<vector<byte>>> b;
        2 require map<vector<int>, m::S> c;
    }; };");
    let Item::Struct(s) = &only_module(&file).items[0] else { panic!("expected a struct") };
    assert_eq!(s.members[0].ty, Type::Vector(Box::new(Type::Map(Box::new(Type::String), Box::new(Type::String)))));
    assert_eq!(
        s.members[1].ty,
        Type::Map(
            Box::new(Type::Int { unsigned: false }),
            Box::new(Type::Vector(Box::new(Type::Vector(Box::new(Type::Byte { unsigned: false })))))
        )
    );
    assert_eq!(
        s.members[2].ty,
        Type::Map(
            Box::new(Type::Vector(Box::new(Type::Int { unsigned: false }))),
            Box::new(named(Some("m"), "S", pos(4, 36)))
        )
    );
}

#[test]
fn enums_with_and_without_values() {
    let file = ok("module m {
    enum E { A, B = 5, C = -1, D = 0x10, F = B, G = E::A, };
    enum One { ONLY };
};");
    let module = only_module(&file);
    let Item::Enum(e) = &module.items[0] else { panic!("expected an enum") };
    assert_eq!(e.name, "E");
    assert_eq!(e.pos, pos(2, 10));
    let values: Vec<(&str, Option<Literal>)> = e.variants.iter().map(|v| (v.name.as_str(), v.value.clone())).collect();
    assert_eq!(
        values,
        vec![
            ("A", None),
            ("B", Some(Literal::Int(5))),
            ("C", Some(Literal::Int(-1))),
            ("D", Some(Literal::Int(16))),
            ("F", Some(Literal::Ident { scope: None, name: "B".into() })),
            ("G", Some(Literal::Ident { scope: Some("E".into()), name: "A".into() })),
        ]
    );
    let Item::Enum(one) = &module.items[1] else { panic!("expected an enum") };
    assert_eq!(one.variants, vec![Enumerator { name: "ONLY".into(), value: None, pos: pos(3, 16) }]);
}

#[test]
fn consts_and_keys() {
    let file = ok(r#"module m {
    const int MAX = 100;
    const string NAME = "n";
    const double HALF = 0.25;
    const bool ON = true;
    const unsigned short PORT = 0xFFFF;
    key[S, a, b];
    key[m::S, c];
};"#);
    let items = &only_module(&file).items;
    let consts: Vec<(&Type, &str, &Literal)> = items
        .iter()
        .filter_map(|i| match i {
            Item::Const(c) => Some((&c.ty, c.name.as_str(), &c.value)),
            _ => None,
        })
        .collect();
    assert_eq!(
        consts,
        vec![
            (&Type::Int { unsigned: false }, "MAX", &Literal::Int(100)),
            (&Type::String, "NAME", &Literal::Str("n".into())),
            (&Type::Double, "HALF", &Literal::Float(0.25)),
            (&Type::Bool, "ON", &Literal::Bool(true)),
            (&Type::Short { unsigned: true }, "PORT", &Literal::Int(65535)),
        ]
    );
    assert_eq!(
        items[5],
        Item::Key(Key { struct_name: "S".into(), members: vec!["a".into(), "b".into()], pos: pos(7, 5) })
    );
    assert_eq!(items[6], Item::Key(Key { struct_name: "m::S".into(), members: vec!["c".into()], pos: pos(8, 5) }));
}

#[test]
fn interfaces_operations_and_params() {
    let file = ok("module m {
    interface Hello {
        void ping();
        int add(int a, int b);
        vector<string> list(out map<string, int> counts, routekey string uid);
        other::Foo get(out Foo f);
    };
    interface Empty {};
};");
    let items = &only_module(&file).items;
    let Item::Interface(hello) = &items[0] else { panic!("expected an interface") };
    assert_eq!(hello.name, "Hello");
    assert_eq!(hello.pos, pos(2, 15));
    assert_eq!(hello.operations[0], Operation { ret: None, name: "ping".into(), params: vec![], pos: pos(3, 14) });
    assert_eq!(hello.operations[1].ret, Some(Type::Int { unsigned: false }));
    assert_eq!(hello.operations[1].params.len(), 2);
    assert_eq!(
        hello.operations[2].params,
        vec![
            Param {
                out: true,
                routekey: false,
                ty: Type::Map(Box::new(Type::String), Box::new(Type::Int { unsigned: false })),
                name: "counts".into(),
                pos: pos(5, 50),
            },
            Param { out: false, routekey: true, ty: Type::String, name: "uid".into(), pos: pos(5, 74) },
        ]
    );
    assert_eq!(hello.operations[3].ret, Some(named(Some("other"), "Foo", pos(6, 9))));
    let Item::Interface(empty) = &items[1] else { panic!("expected an interface") };
    assert!(empty.operations.is_empty());
}

#[test]
fn comments_everywhere() {
    let src = "/* head */ #include /* c */ \"a.tars\" // tail
module /* c */ m // c
{ // c
    struct /* c */ S /* c */ { /* c */ 0 /* c */ require /* c */ vector /* c */ < /* c */ int /* c */ > /* c */ v /* c */ = /* c */ 1 /* c */ ; // c
    } /* c */ ; // c
    enum E { A /* c */ , /* c */ B /* c */ = /* c */ 2 };
    interface I { void /* c */ f /* c */ ( /* c */ out /* c */ int /* c */ x /* c */ ) /* c */ ; };
} /* c */ ; // end";
    let file = ok(src);
    assert_eq!(file.includes[0].path, "a.tars");
    let module = only_module(&file);
    assert_eq!(module.items.len(), 3);
    let Item::Struct(s) = &module.items[0] else { panic!("expected a struct") };
    assert_eq!(s.members[0].ty, Type::Vector(Box::new(Type::Int { unsigned: false })));
    assert_eq!(s.members[0].default, Some(Literal::Int(1)));
    let Item::Interface(i) = &module.items[2] else { panic!("expected an interface") };
    assert!(i.operations[0].params[0].out);
}

#[test]
fn type_nesting_limit() {
    let nest = |n: usize| format!("module m {{ const {}int X = 1; }};", "vector<".repeat(n));
    // 63 vectors around an int is 64 levels: allowed (the closing '>'s are missing, so it
    // fails later, at the right place).
    let deep_ok = format!("module m {{ struct S {{ 0 require {}int v; }}; }};", "vector<".repeat(63))
        .replace("int v", &format!("int{} v", ">".repeat(63)));
    assert!(parse(Path::new("x.tars"), &deep_ok).is_ok());
    assert_eq!(err(&nest(64)), format!("x.tars:1:{}: types are nested too deeply (more than 64 levels)", 18 + 7 * 64));
    // Far beyond the limit must fail cleanly, not overflow the stack.
    assert!(err(&nest(100_000)).contains("types are nested too deeply"));
}

#[test]
fn syntax_errors_have_positions() {
    let cases: &[(&str, &str)] = &[
        (
            "module m {\n  struct S {\n    0 require int a\n    1 require int b;\n  };\n};",
            "x.tars:4:5: expected ';' after member, found '1'",
        ),
        (
            "module m {\n  struct S {\n    0 require string s int;\n  };\n};",
            "x.tars:3:24: expected ';' after member, found 'int'",
        ),
        (
            "module m {\n  struct S { 0 require int a; }\n};",
            "x.tars:3:1: expected ';' after struct definition, found '}'",
        ),
        ("module m {\n}", "x.tars:2:2: expected ';' after module, found end of file"),
        (
            "module m {\n  struct S { 0 require int a; };\n",
            "x.tars:3:1: expected 'struct', 'enum', 'const', 'interface', 'key' or '}' in module, found end of file",
        ),
        (
            "module m { struct S { 0 require unsigned long a; }; };",
            "x.tars:1:42: 'unsigned' applies only to byte, short or int, found 'long'",
        ),
        (
            "module m { struct S { 0 require unsigned float a; }; };",
            "x.tars:1:42: 'unsigned' applies only to byte, short or int, found 'float'",
        ),
        (
            "module m { const unsigned string X = 1; };",
            "x.tars:1:27: 'unsigned' applies only to byte, short or int, found 'string'",
        ),
        ("module m { struct S { 256 require int a; }; };", "x.tars:1:23: tag 256 is out of range (0..=255)"),
        ("module m { struct S { -1 require int a; }; };", "x.tars:1:23: tag -1 is out of range (0..=255)"),
        ("module m { struct S { require int a; }; };", "x.tars:1:23: struct member needs a tag before 'require'"),
        (
            "module m { struct S { 0 int a; }; };",
            "x.tars:1:25: expected 'require' or 'optional' after tag, found 'int'",
        ),
        ("module m { struct S { 0 require int; }; };", "x.tars:1:36: expected a member name, found ';'"),
        (
            "module m { struct S { 0 require int int; }; };",
            "x.tars:1:37: keyword 'int' cannot be used as a member name",
        ),
        (
            "module m { struct struct { 0 require int a; }; };",
            "x.tars:1:19: keyword 'struct' cannot be used as a struct name",
        ),
        (
            "module m { struct S { 0 require Foo a = ; }; };",
            "x.tars:1:41: expected a value (number, string, true, false or enumerator), found ';'",
        ),
        ("module m { struct S { 0 require byte a[0]; }; };", "x.tars:1:40: array size 0 is out of range (1..=1048576)"),
        ("module m { struct S { 0 require byte a[x]; }; };", "x.tars:1:40: expected an array size, found 'x'"),
        ("module m { struct S {}; };", "x.tars:1:19: struct 'S' must have at least one member"),
        ("module m { enum E {}; };", "x.tars:1:17: enum 'E' must have at least one enumerator"),
        ("module m { enum E { A B }; };", "x.tars:1:23: expected ',' or '}' after enumerator, found 'B'"),
        ("module m { enum E { A,, B }; };", "x.tars:1:23: expected an enumerator name, found ','"),
        ("module m { const int X; };", "x.tars:1:23: expected '=' after constant name, found ';'"),
        ("module m { key[S]; };", "x.tars:1:17: expected ',' after the struct name in key[...], found ']'"),
        ("module m { key[S, a; };", "x.tars:1:20: expected ',' or ']' in key[...], found ';'"),
        ("module m { key S, a]; };", "x.tars:1:16: expected '[' after 'key', found 'S'"),
        ("module m { interface I { void f() }; };", "x.tars:1:35: expected ';' after operation, found '}'"),
        (
            "module m { interface I { void f(int a int b); }; };",
            "x.tars:1:39: expected ',' or ')' in parameter list, found 'int'",
        ),
        ("module m { interface I { void f(out); }; };", "x.tars:1:36: expected a parameter type, found ')'"),
        (
            "module m { interface I { void f(out routekey int a); }; };",
            "x.tars:1:37: a parameter cannot be both 'out' and 'routekey'",
        ),
        ("module m { interface I { void f(out out int a); }; };", "x.tars:1:37: 'out' written twice"),
        ("module m { interface I { f(); }; };", "x.tars:1:27: expected an operation name, found '('"),
        ("module m { interface I { 5 f(); }; };", "x.tars:1:26: expected a return type, 'void' or '}', found '5'"),
        ("module m { interface I { void f(int); }; };", "x.tars:1:36: expected a parameter name, found ')'"),
        (
            "module m { struct S { 0 require vector<int a; }; };",
            "x.tars:1:44: expected '>' to close 'vector<', found 'a'",
        ),
        (
            "module m { struct S { 0 require map<int> a; }; };",
            "x.tars:1:40: expected ',' after map key type, found '>'",
        ),
        (
            "module m { struct S { 0 require a::b::C x; }; };",
            "x.tars:1:33: a type name has at most one qualifier ('module::Type')",
        ),
        ("module m { struct S { 0 require ::C x; }; };", "x.tars:1:33: expected a type, found '::'"),
        ("struct S { 0 require int a; };", "x.tars:1:1: 'struct' must be defined inside a module"),
        ("module m { module n {}; };", "x.tars:1:12: modules cannot be nested"),
        ("module m { #include \"a.tars\" };", "x.tars:1:12: #include must be outside modules"),
        ("#include a;", "x.tars:1:10: expected a quoted file name after '#include', found 'a'"),
        ("#include \"\"", "x.tars:1:10: empty #include path"),
        ("module {};", "x.tars:1:8: expected a module name, found '{'"),
        ("module m;", "x.tars:1:9: expected '{' after module name, found ';'"),
        ("module m {};;", "x.tars:1:13: expected 'module' or '#include', found ';'"),
        ("foo", "x.tars:1:1: expected 'module' or '#include', found 'foo'"),
        ("module m { /* never closed\n };", "x.tars:1:12: unterminated comment"),
        ("module m { const string S = \"abc; };", "x.tars:1:29: unterminated string literal"),
    ];
    for (src, expected) in cases {
        assert_eq!(&err(src), expected, "source: {src}");
    }
}

#[test]
fn long_tokens_are_truncated_in_messages() {
    let long = "a".repeat(100);
    let msg = err(&format!("module m {{ struct S {{ 0 require int x {long}; }}; }};"));
    assert_eq!(msg, format!("x.tars:1:39: expected ';' after member, found '{}...'", "a".repeat(40)));
}

/// A small xorshift generator, so the "fuzz" tests below are deterministic.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        usize::try_from(self.0 % n as u64).expect("fits")
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// Asserts `result` is Ok or an error with a `f.tars:line:col: ` prefix; counts errors.
fn check_error_shape<T>(result: Result<T, tars_idl::IdlError>, errors: &mut usize) {
    if let Err(e) = result {
        *errors += 1;
        let text = e.to_string();
        let mut parts = text.splitn(4, ':');
        assert_eq!(parts.next(), Some("f.tars"), "{text}");
        let line: u32 = parts.next().and_then(|l| l.parse().ok()).expect("line number");
        let col: u32 = parts.next().and_then(|c| c.parse().ok()).expect("column number");
        assert!(line >= 1 && col >= 1, "{text}");
    }
}

/// Token soup from the language's own vocabulary: the parser and resolver must return
/// (never panic), and every error must carry a `file:line:col` prefix.
#[test]
fn token_soup_never_panics() {
    let words: Vec<&str> = "module|struct|enum|const|interface|key|require|optional|out|routekey|\
void|int|unsigned|long|vector|map|string|true|m|S|::|{|}|(|)|<|>|>>|[|]|,|;|=|:|0|-1|0x1F|1.5|\
\"s\"|#include|/* c */|// c\n|\n|256|a|b"
        .split('|')
        .collect();
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let mut errors = 0;
    for _ in 0..3000 {
        let mut src = String::from("module m { ");
        for _ in 0..rng.below(40) {
            src.push_str(rng.pick(&words));
            src.push(' ');
        }
        check_error_shape(parse(Path::new("f.tars"), &src), &mut errors);
        check_error_shape(tars_idl::resolve::load_str(&[("f.tars", &src)]), &mut errors);
    }
    assert!(errors > 0, "soup should mostly be invalid");
}

/// Well-formed structs with random types and defaults, to drive the resolver's checks.
#[test]
fn random_members_never_panic() {
    const TYPES: &[&str] = &[
        "bool",
        "byte",
        "unsigned byte",
        "short",
        "unsigned short",
        "int",
        "unsigned int",
        "long",
        "float",
        "double",
        "string",
        "E",
        "m::E",
        "S",
        "T",
        "Nope",
        "vector<int>",
        "map<E, vector<S>>",
    ];
    const DEFAULTS: &[&str] = &[
        "",
        "= 0",
        "= -1",
        "= 300",
        "= 70000",
        "= 1.5",
        "= true",
        "= \"x\"",
        "= A",
        "= E::B",
        "= m::E::A",
        "= C",
        "= 1e300",
        "= -9223372036854775808",
    ];
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (mut errors, mut successes) = (0, 0);
    for _ in 0..2000 {
        let mut src = String::from("module m { enum E { A, B = 7 }; struct T { 0 require int x; };\n");
        src.push_str("struct S {\n");
        for i in 0..=rng.below(4) {
            let tag = rng.below(6);
            let ty = rng.pick(TYPES);
            let default = rng.pick(DEFAULTS);
            src.push_str(&format!("{tag} optional {ty} f{i} {default};\n"));
        }
        src.push_str("}; key[S, f0]; };");
        let before = errors;
        check_error_shape(tars_idl::resolve::load_str(&[("f.tars", &src)]), &mut errors);
        if errors == before {
            successes += 1;
        }
    }
    assert!(errors > 0 && successes > 0, "errors {errors}, successes {successes}");
}
