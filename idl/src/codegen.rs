//! Rust code generation from a resolved [`Program`], and the `build.rs` entry point.
//!
//! Each IDL module becomes one file `<module>.rs` holding `pub mod <module> { ... }`, and
//! `_include.rs` includes them all, so a crate writes
//! `include!(concat!(env!("OUT_DIR"), "/_include.rs"));` and refers to `tars::EndpointF`.
//!
//! What is generated, per IDL item (see `tars-core-net` for the traits):
//! - struct → a Rust struct with snake_case fields, `Default` from the IDL defaults, `Debug`,
//!   `Clone`, `PartialEq`, and `Struct` + `Field` + `JsonField` + `KeyOrd` impls. Optional
//!   members are skipped on write exactly when TarsCpp skips them. Structs used as map keys
//!   also get `Ord` (by `key[...]` members, else all members) and `JsonKey`.
//! - enum → a newtype over `i32` with one associated const per enumerator, so values from a
//!   newer peer survive a decode/encode round trip.
//! - const → a Rust const.
//! - interface → a servant trait (async methods, `out` parameters as `&mut`), a
//!   `dispatch_<iface>` function that decodes by version (1 by tag, 3 TUP, 5 JSON), calls the
//!   servant and encodes the results, a `<Iface>Servant<S>` wrapper that a server adapter
//!   serves, and a `<Iface>Proxy` client over any `Transport`.

use crate::error::IdlError;
use crate::resolve::{
    self, ConstDef, EnumDef, InterfaceDef, ModuleDef, OperationDef, Program, RType, StructDef, Value,
};
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Compiles `.tars` files to Rust, for use from `build.rs`:
///
/// ```no_run
/// tars_idl::Config::new().compile(&["tars/QueryF.tars"]).expect("IDL compiles");
/// ```
#[derive(Debug, Clone)]
pub struct Config {
    out_dir: Option<PathBuf>,
    include_dirs: Vec<PathBuf>,
    runtime: String,
    binary: BTreeSet<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config { out_dir: None, include_dirs: Vec::new(), runtime: "::tars_proto".to_owned(), binary: BTreeSet::new() }
    }
}

impl Config {
    /// Defaults: output to `$OUT_DIR`, no extra include directories, runtime crate
    /// `tars_proto`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Where to write the generated files (default: `$OUT_DIR`).
    pub fn out_dir(&mut self, dir: impl Into<PathBuf>) -> &mut Self {
        self.out_dir = Some(dir.into());
        self
    }

    /// A directory searched for `#include`d files after the including file's own directory.
    pub fn include_dir(&mut self, dir: impl Into<PathBuf>) -> &mut Self {
        self.include_dirs.push(dir.into());
        self
    }

    /// The path generated code uses for the runtime crate (default `::tars_proto`).
    pub fn runtime_crate(&mut self, path: impl Into<String>) -> &mut Self {
        self.runtime = path.into();
        self
    }

    /// Makes the `string` (or `vector<string>`) parameter `Interface.operation.parameter`, or
    /// the struct member `Struct.member`, a `BinString` (`Vec<BinString>`): wire-identical, but
    /// it holds any bytes, as C++'s `std::string` does, where a framework call carries encoded
    /// data in a string (`AdminReg.reportResult.result`) or text in whatever encoding a C++
    /// server logs in (`Log.logger.buffer`, `ReportInfo.sMessage`).
    pub fn binary_string(&mut self, path: impl Into<String>) -> &mut Self {
        self.binary.insert(path.into());
        self
    }

    /// Parses and resolves `files` (and what they include) and returns `(module, source)`
    /// pairs without writing anything.
    pub fn generate(&self, files: &[impl AsRef<Path>]) -> Result<Vec<(String, String)>, IdlError> {
        let paths: Vec<PathBuf> = files.iter().map(|f| f.as_ref().to_path_buf()).collect();
        let program = resolve::load(&paths, &self.include_dirs)?;
        for path in &self.binary {
            let param = program.modules.iter().flat_map(|m| &m.interfaces).any(|i| {
                i.operations.iter().any(|op| {
                    op.params
                        .iter()
                        .any(|p| binary_capable(&p.ty) && format!("{}.{}.{}", i.name, op.name, p.name) == *path)
                })
            });
            let member = program.modules.iter().flat_map(|m| &m.structs).any(|st| {
                st.fields.iter().any(|f| binary_capable(&f.ty) && format!("{}.{}", st.name, f.name) == *path)
            });
            let found = param || member;
            if !found {
                return Err(IdlError::UnknownBinaryString(path.clone()));
            }
        }
        Ok(generate_modules(&program, &self.runtime, &self.binary))
    }

    /// Generates and writes `<module>.rs` for each module plus `_include.rs`, and tells cargo
    /// to rerun when an input changes.
    pub fn compile(&self, files: &[impl AsRef<Path>]) -> Result<(), IdlError> {
        let out_dir = match &self.out_dir {
            Some(d) => d.clone(),
            None => PathBuf::from(std::env::var_os("OUT_DIR").ok_or_else(|| IdlError::Io {
                file: PathBuf::from("$OUT_DIR"),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "OUT_DIR is not set; call out_dir()"),
            })?),
        };
        for f in files {
            println!("cargo:rerun-if-changed={}", f.as_ref().display());
        }
        for d in &self.include_dirs {
            println!("cargo:rerun-if-changed={}", d.display());
        }
        let modules = self.generate(files)?;
        let mut include = String::from("// Generated by tars-idl. Do not edit.\n");
        for (name, code) in &modules {
            let file = out_dir.join(format!("{name}.rs"));
            write_if_changed(&file, code)?;
            let _ = writeln!(include, "include!(concat!(env!(\"OUT_DIR\"), \"/{name}.rs\"));");
        }
        if self.out_dir.is_some() {
            // Outside OUT_DIR, include by plain relative path instead.
            include = String::from("// Generated by tars-idl. Do not edit.\n");
            for (name, _) in &modules {
                let _ = writeln!(include, "include!(\"{name}.rs\");");
            }
        }
        write_if_changed(&out_dir.join("_include.rs"), &include)
    }
}

fn write_if_changed(path: &Path, content: &str) -> Result<(), IdlError> {
    if std::fs::read_to_string(path).is_ok_and(|old| old == content) {
        return Ok(());
    }
    std::fs::write(path, content).map_err(|source| IdlError::Io { file: path.to_path_buf(), source })
}

/// Generates one source file per module, in program order.
pub fn generate_program(program: &Program, runtime: &str) -> Vec<(String, String)> {
    generate_modules(program, runtime, &BTreeSet::new())
}

fn generate_modules(program: &Program, runtime: &str, binary: &BTreeSet<String>) -> Vec<(String, String)> {
    let keys = map_key_structs(program);
    program
        .modules
        .iter()
        .map(|m| {
            let gen = Gen { rt: RT_ALIAS, module: m, program, keys: &keys, binary, out: String::new() };
            (m.name.clone(), gen.module(runtime))
        })
        .collect()
}

/// `(module, struct)` pairs that appear as a map key anywhere: they need `Ord` and `JsonKey`.
fn map_key_structs(program: &Program) -> BTreeSet<(String, String)> {
    fn visit(t: &RType, acc: &mut BTreeSet<(String, String)>) {
        match t {
            RType::Vector(e) => visit(e, acc),
            RType::Map(k, v) => {
                if let RType::Struct { module, name } = &**k {
                    acc.insert((module.clone(), name.clone()));
                }
                visit(k, acc);
                visit(v, acc);
            }
            _ => {}
        }
    }
    let mut acc = BTreeSet::new();
    for m in &program.modules {
        for s in &m.structs {
            s.fields.iter().for_each(|f| visit(&f.ty, &mut acc));
        }
        for c in &m.consts {
            visit(&c.ty, &mut acc);
        }
        for i in &m.interfaces {
            for op in &i.operations {
                op.ret.iter().for_each(|t| visit(t, &mut acc));
                op.params.iter().for_each(|p| visit(&p.ty, &mut acc));
            }
        }
    }
    acc
}

/// Whether values of `t` print as a plain string (what a routekey can carry).
fn is_displayable(t: &RType) -> bool {
    matches!(
        t,
        RType::String
            | RType::Bool
            | RType::Byte
            | RType::UByte
            | RType::Short
            | RType::UShort
            | RType::Int
            | RType::UInt
            | RType::Long
    )
}

/// The name generated modules give the runtime crate, to keep paths short.
const RT_ALIAS: &str = "__tars";

const KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "dyn", "else", "enum", "extern", "false", "fn", "for", "if",
    "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return", "static", "struct", "trait",
    "true", "type", "unsafe", "use", "where", "while", "abstract", "become", "box", "do", "final", "gen", "macro",
    "override", "priv", "try", "typeof", "unsized", "virtual", "yield",
];

/// A push interface: at least one operation, each `void` with only `out` parameters.
fn is_push_interface(i: &InterfaceDef) -> bool {
    !i.operations.is_empty() && i.operations.iter().all(|op| op.ret.is_none() && op.params.iter().all(|p| p.out))
}

/// `getStateInfo` → `GetStateInfo`.
fn variant_name(op: &str) -> String {
    let mut c = op.chars();
    c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
}

/// `findObjectById4Any` → `find_object_by_id4_any`, `sServantName` → `s_servant_name`,
/// `IPAddr` → `ip_addr`; Rust keywords become raw identifiers.
pub fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() {
            let prev = i.checked_sub(1).map(|p| chars[p]);
            let next = chars.get(i + 1);
            let boundary = match prev {
                Some(p) if p.is_ascii_lowercase() || p.is_ascii_digit() => true,
                Some(p) if p.is_ascii_uppercase() => next.is_some_and(|n| n.is_ascii_lowercase()),
                _ => false,
            };
            if boundary && !out.ends_with('_') {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    ident(out)
}

/// Makes `name` a usable identifier: keywords become raw identifiers.
fn ident(name: String) -> String {
    match name.as_str() {
        "self" | "Self" | "super" | "crate" => format!("{name}_"),
        n if KEYWORDS.contains(&n) => format!("r#{name}"),
        _ => name,
    }
}

struct Gen<'a> {
    rt: &'a str,
    module: &'a ModuleDef,
    program: &'a Program,
    keys: &'a BTreeSet<(String, String)>,
    /// `Interface.operation.parameter` strings generated as `BinString`.
    binary: &'a BTreeSet<String>,
    out: String,
}

/// Appends a formatted line; writing to a `String` cannot fail.
macro_rules! line {
    ($g:expr, $($arg:tt)*) => {{ let _ = writeln!($g.out, $($arg)*); }};
}

impl Gen<'_> {
    fn module(mut self, runtime: &str) -> String {
        let m = self.module;
        line!(self, "// Generated by tars-idl from module `{}`. Do not edit.", m.name);
        line!(self, "#[allow(");
        line!(self, "    non_camel_case_types,");
        line!(self, "    non_snake_case,");
        line!(self, "    non_upper_case_globals,");
        line!(self, "    unused_imports,");
        line!(self, "    unused_mut,");
        line!(self, "    unreachable_pub,");
        line!(self, "    missing_docs,");
        line!(self, "    clippy::all");
        line!(self, ")]");
        line!(self, "pub mod {} {{", ident(m.name.clone()));
        line!(self, "    use {runtime} as {RT_ALIAS};");
        for c in &m.consts {
            self.constant(c);
        }
        for e in &m.enums {
            self.enumeration(e);
        }
        for s in &m.structs {
            self.structure(s);
        }
        for i in &m.interfaces {
            self.servant(i);
            self.dispatch(i);
            self.proxy(i);
            if is_push_interface(i) {
                self.push_message(i);
            }
        }
        line!(self, "}}");
        self.out
    }

    /// The Rust type for an IDL type, relative to the current module.
    fn ty(&self, t: &RType) -> String {
        match t {
            RType::Bool => "bool".into(),
            RType::Byte => "i8".into(),
            RType::UByte => "u8".into(),
            RType::Short => "i16".into(),
            RType::UShort => "u16".into(),
            RType::Int => "i32".into(),
            RType::UInt => "u32".into(),
            RType::Long => "i64".into(),
            RType::Float => "f32".into(),
            RType::Double => "f64".into(),
            RType::String => "::std::string::String".into(),
            RType::Vector(e) if **e == RType::Byte => format!("{}::Bytes", self.rt),
            RType::Vector(e) => format!("::std::vec::Vec<{}>", self.ty(e)),
            RType::Map(k, v) => format!("::std::collections::BTreeMap<{}, {}>", self.ty(k), self.ty(v)),
            RType::Struct { module, name } | RType::Enum { module, name } => self.named(module, name),
        }
    }

    fn named(&self, module: &str, name: &str) -> String {
        if module == self.module.name {
            name.to_owned()
        } else {
            format!("super::{}::{}", ident(module.to_owned()), name)
        }
    }

    /// A Rust expression for a literal of type `t`.
    fn literal(&self, t: &RType, v: &Value) -> String {
        match (t, v) {
            (RType::String, Value::Str(s)) => format!("::std::string::String::from({s:?})"),
            (RType::Float, Value::Float(f)) => format!("{f:?}_f32"),
            (RType::Double, Value::Float(f)) => format!("{f:?}_f64"),
            (RType::Float, Value::Int(i)) => format!("{i}_f32"),
            (RType::Double, Value::Int(i)) => format!("{i}_f64"),
            (_, Value::Int(i)) => format!("{i}"),
            (_, Value::Bool(b)) => format!("{b}"),
            (_, Value::Enum { module, enum_name, variant, .. }) => {
                format!("{}::{}", self.named(module, enum_name), variant)
            }
            (_, Value::Float(f)) => format!("{f:?}"),
            (_, Value::Str(s)) => format!("{s:?}"),
        }
    }

    fn enum_def(&self, module: &str, name: &str) -> Option<&EnumDef> {
        let m = self.program.modules.iter().find(|m| m.name == module)?;
        m.enums.iter().find(|e| e.name == name)
    }

    /// The value a member starts with: its explicit default, else zero/empty.
    fn default_expr(&self, t: &RType, default: Option<&Value>) -> String {
        if let Some(v) = default {
            return self.literal(t, v);
        }
        match t {
            RType::Bool => "false".into(),
            RType::Float => "0.0_f32".into(),
            RType::Double => "0.0_f64".into(),
            RType::Byte | RType::UByte | RType::Short | RType::UShort | RType::Int | RType::UInt | RType::Long => {
                "0".into()
            }
            RType::Enum { module, name } => {
                // The first enumerator, as TarsCpp initialises enum members.
                let first = self.enum_def(module, name).and_then(|e| e.variants.first());
                match first {
                    Some((v, _)) => format!("{}::{}", self.named(module, name), v),
                    None => format!("{}(0)", self.named(module, name)),
                }
            }
            _ => "::core::default::Default::default()".into(),
        }
    }

    fn constant(&mut self, c: &ConstDef) {
        let (ty, val) = match (&c.ty, &c.value) {
            (RType::String, Value::Str(s)) => ("&str".to_owned(), format!("{s:?}")),
            (t, v) => (self.ty(t), self.literal(t, v)),
        };
        line!(self, "    pub const {}: {} = {};", c.name, ty, val);
    }

    fn enumeration(&mut self, e: &EnumDef) {
        let rt = self.rt;
        let n = &e.name;
        line!(self, "");
        line!(self, "    /// IDL enum `{n}`: an `i32` on the wire. Unknown values are kept as they are.");
        line!(self, "    #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]");
        line!(self, "    pub struct {n}(pub i32);");
        line!(self, "    impl {n} {{");
        for (v, val) in &e.variants {
            line!(self, "        pub const {v}: {n} = {n}({val});");
        }
        line!(self, "        /// The enumerator's IDL name, if the value has one.");
        line!(self, "        pub fn name(self) -> ::core::option::Option<&'static str> {{");
        line!(self, "            match self.0 {{");
        let mut seen = BTreeSet::new();
        for (v, val) in &e.variants {
            // Aliases (two names, one value) report the first name.
            if seen.insert(*val) {
                line!(self, "                {val} => ::core::option::Option::Some({v:?}),");
            }
        }
        line!(self, "                _ => ::core::option::Option::None,");
        line!(self, "            }}");
        line!(self, "        }}");
        line!(self, "        /// The enumerator called `name`.");
        line!(self, "        pub fn from_name(name: &str) -> ::core::option::Option<{n}> {{");
        line!(self, "            match name {{");
        for (v, _) in &e.variants {
            line!(self, "                {v:?} => ::core::option::Option::Some({n}::{v}),");
        }
        line!(self, "                _ => ::core::option::Option::None,");
        line!(self, "            }}");
        line!(self, "        }}");
        line!(self, "    }}");
        let first = e.variants.first().map_or(0, |(_, v)| *v);
        line!(self, "    impl ::core::default::Default for {n} {{");
        line!(self, "        fn default() -> Self {{ {n}({first}) }}");
        line!(self, "    }}");
        line!(self, "    impl ::core::fmt::Debug for {n} {{");
        line!(self, "        fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {{");
        line!(self, "            match self.name() {{");
        line!(self, "                ::core::option::Option::Some(s) => f.write_str(s),");
        line!(self, "                ::core::option::Option::None => write!(f, \"{n}({{}})\", self.0),");
        line!(self, "            }}");
        line!(self, "        }}");
        line!(self, "    }}");
        line!(self, "    impl {rt}::codec::Field for {n} {{");
        line!(self, "        fn write_to(&self, tag: u8, w: &mut {rt}::codec::Writer) {{ w.write_int(tag, i64::from(self.0)) }}");
        line!(self, "        fn read_from(r: &mut {rt}::codec::Reader<'_>, ty: {rt}::codec::WireType) -> ::core::result::Result<Self, {rt}::codec::DecodeError> {{");
        line!(self, "            <i32 as {rt}::codec::Field>::read_from(r, ty).map({n})");
        line!(self, "        }}");
        line!(self, "    }}");
        line!(self, "    impl {rt}::json::JsonField for {n} {{");
        line!(self, "        fn to_json(&self) -> {rt}::json::Value {{ {rt}::json::JsonField::to_json(&self.0) }}");
        line!(
            self,
            "        fn from_json(v: &{rt}::json::Value) -> ::core::result::Result<Self, {rt}::codec::DecodeError> {{"
        );
        line!(self, "            <i32 as {rt}::json::JsonField>::from_json(v).map({n})");
        line!(self, "        }}");
        line!(self, "    }}");
        line!(self, "    impl {rt}::json::JsonKey for {n} {{");
        line!(self, "        fn to_key(&self) -> ::std::string::String {{ self.0.to_string() }}");
        line!(self, "        fn from_key(k: &str) -> ::core::result::Result<Self, {rt}::codec::DecodeError> {{");
        line!(self, "            <i32 as {rt}::json::JsonKey>::from_key(k).map({n})");
        line!(self, "        }}");
        line!(self, "    }}");
        line!(self, "    impl {rt}::codec::KeyOrd for {n} {{");
        line!(self, "        fn key_cmp(&self, other: &Self) -> ::core::cmp::Ordering {{ self.0.cmp(&other.0) }}");
        line!(self, "    }}");
    }

    /// The condition under which an optional member is written (TarsCpp `--check-default`).
    fn write_condition(&self, f: &resolve::FieldDef) -> Option<String> {
        if f.required {
            return None;
        }
        let field = format!("self.{}", snake_case(&f.name));
        match &f.ty {
            // TarsCpp always writes optional bools, enums and structs.
            RType::Bool | RType::Enum { .. } | RType::Struct { .. } => None,
            RType::Vector(_) | RType::Map(..) => Some(format!("!{field}.is_empty()")),
            RType::String => Some(match &f.default {
                Some(Value::Str(s)) if !s.is_empty() => format!("{field} != {s:?}"),
                _ => format!("!{field}.is_empty()"),
            }),
            t => Some(format!("{field} != {}", self.default_expr(t, f.default.as_ref()))),
        }
    }

    fn structure(&mut self, s: &StructDef) {
        let rt = self.rt;
        let n = &s.name;
        let is_key = self.keys.contains(&(self.module.name.clone(), n.clone()));
        line!(self, "");
        line!(self, "    /// IDL struct `{n}`.");
        line!(self, "    #[derive(Debug, Clone, PartialEq)]");
        line!(self, "    pub struct {n} {{");
        let binary: Vec<bool> = s
            .fields
            .iter()
            .map(|f| binary_capable(&f.ty) && self.binary.contains(&format!("{n}.{}", f.name)))
            .collect();
        for (f, &bin) in s.fields.iter().zip(&binary) {
            let req = if f.required { "require" } else { "optional" };
            line!(self, "        /// {} {req} `{}`", f.tag, f.name);
            let ty = if bin { self.binary_ty(&f.ty) } else { self.ty(&f.ty) };
            line!(self, "        pub {}: {ty},", snake_case(&f.name));
        }
        line!(self, "    }}");

        line!(self, "    impl ::core::default::Default for {n} {{");
        line!(self, "        fn default() -> Self {{");
        line!(self, "            {n} {{");
        for (f, &bin) in s.fields.iter().zip(&binary) {
            let d = match (bin, &f.default) {
                (true, Some(_)) => {
                    format!("{rt}::codec::BinString::from({})", self.default_expr(&f.ty, f.default.as_ref()))
                }
                (true, None) => "::core::default::Default::default()".to_owned(),
                (false, _) => self.default_expr(&f.ty, f.default.as_ref()),
            };
            line!(self, "                {}: {d},", snake_case(&f.name));
        }
        line!(self, "            }}");
        line!(self, "        }}");
        line!(self, "    }}");

        line!(self, "    impl {rt}::codec::Struct for {n} {{");
        line!(self, "        const NAME: &'static str = {n:?};");
        line!(self, "        fn write_fields(&self, w: &mut {rt}::codec::Writer) {{");
        for f in &s.fields {
            let write = format!("{rt}::codec::Field::write_to(&self.{}, {}, w);", snake_case(&f.name), f.tag);
            match self.write_condition(f) {
                Some(cond) => line!(self, "            if {cond} {{ {write} }}"),
                None => line!(self, "            {write}"),
            }
        }
        line!(self, "        }}");
        line!(self, "        fn read_fields(&mut self, r: &mut {rt}::codec::Reader<'_>) -> ::core::result::Result<(), {rt}::codec::DecodeError> {{");
        for f in &s.fields {
            let field = snake_case(&f.name);
            let at = format!(".map_err(|e| e.at({n:?}, {:?}))?", f.name);
            if f.required {
                line!(self, "            self.{field} = r.read_required({}){at};", f.tag);
            } else {
                line!(self, "            if let ::core::option::Option::Some(v) = r.read_optional({}){at} {{ self.{field} = v; }}", f.tag);
            }
        }
        line!(self, "            ::core::result::Result::Ok(())");
        line!(self, "        }}");
        line!(self, "    }}");

        line!(self, "    impl {rt}::codec::Field for {n} {{");
        line!(self, "        fn write_to(&self, tag: u8, w: &mut {rt}::codec::Writer) {{ {rt}::codec::write_struct(self, tag, w) }}");
        line!(self, "        fn read_from(r: &mut {rt}::codec::Reader<'_>, ty: {rt}::codec::WireType) -> ::core::result::Result<Self, {rt}::codec::DecodeError> {{");
        line!(self, "            {rt}::codec::read_struct(r, ty)");
        line!(self, "        }}");
        line!(self, "    }}");

        line!(self, "    impl {rt}::json::JsonField for {n} {{");
        line!(self, "        fn to_json(&self) -> {rt}::json::Value {{");
        line!(self, "            let mut m = ::std::collections::BTreeMap::new();");
        for f in &s.fields {
            line!(
                self,
                "            m.insert({:?}.to_owned(), {rt}::json::JsonField::to_json(&self.{}));",
                f.name,
                snake_case(&f.name)
            );
        }
        line!(self, "            {rt}::json::Value::Object(m)");
        line!(self, "        }}");
        line!(
            self,
            "        fn from_json(v: &{rt}::json::Value) -> ::core::result::Result<Self, {rt}::codec::DecodeError> {{"
        );
        line!(self, "            let m = {rt}::json::expect_object(v, {n:?})?;");
        line!(self, "            let mut s = Self::default();");
        for f in &s.fields {
            let required = if f.required {
                format!("::core::option::Option::Some({})", f.tag)
            } else {
                "::core::option::Option::None".to_owned()
            };
            line!(
                self,
                "            {rt}::json::read_member(m, {n:?}, {:?}, {required}, &mut s.{})?;",
                f.name,
                snake_case(&f.name)
            );
        }
        line!(self, "            ::core::result::Result::Ok(s)");
        line!(self, "        }}");
        line!(self, "    }}");

        // Members compared: key[...] if given, else all in tag order (TarsCpp operator<).
        let order: Vec<String> = match &s.key {
            Some(k) => k.iter().map(|m| snake_case(m)).collect(),
            None => s.fields.iter().map(|f| snake_case(&f.name)).collect(),
        };
        line!(self, "    impl {rt}::codec::KeyOrd for {n} {{");
        line!(self, "        fn key_cmp(&self, other: &Self) -> ::core::cmp::Ordering {{");
        line!(self, "            ::core::cmp::Ordering::Equal");
        for f in &order {
            line!(self, "                .then_with(|| {rt}::codec::KeyOrd::key_cmp(&self.{f}, &other.{f}))");
        }
        line!(self, "        }}");
        line!(self, "    }}");
        if is_key {
            line!(self, "    impl ::core::cmp::Eq for {n} {{}}");
            line!(self, "    impl ::core::cmp::PartialOrd for {n} {{");
            line!(self, "        fn partial_cmp(&self, other: &Self) -> ::core::option::Option<::core::cmp::Ordering> {{ ::core::option::Option::Some(::core::cmp::Ord::cmp(self, other)) }}");
            line!(self, "    }}");
            line!(self, "    impl ::core::cmp::Ord for {n} {{");
            line!(self, "        fn cmp(&self, other: &Self) -> ::core::cmp::Ordering {{ {rt}::codec::KeyOrd::key_cmp(self, other) }}");
            line!(self, "    }}");
            line!(self, "    impl {rt}::json::JsonKey for {n} {{");
            line!(self, "        fn to_key(&self) -> ::std::string::String {{ {rt}::json::to_string(&{rt}::json::JsonField::to_json(self)) }}");
            line!(self, "        fn from_key(k: &str) -> ::core::result::Result<Self, {rt}::codec::DecodeError> {{");
            line!(self, "            let v = {rt}::json::parse(k.as_bytes()).map_err(|e| {rt}::codec::DecodeError::new({rt}::codec::DecodeErrorKind::Invalid(e.to_string())))?;");
            line!(self, "            {rt}::json::JsonField::from_json(&v)");
            line!(self, "        }}");
            line!(self, "    }}");
        }
    }

    /// How a proxy takes an `in` parameter: small values by value, strings as `&str`,
    /// everything else by reference.
    /// `<Iface>Message` for a push interface: one variant per operation holding its `out`
    /// parameters, encoded and decoded at their tags as the server's push carries them.
    fn push_message(&mut self, i: &InterfaceDef) {
        let rt = self.rt;
        let n = format!("{}Message", i.name);
        line!(self, "");
        line!(self, "    /// One push of IDL interface `{}`: every operation is `void` with only `out`", i.name);
        line!(self, "    /// parameters, which a server sends unasked as a reply with request id 0 and the");
        line!(self, "    /// function name in `status[\"TARS_FUNC\"]` (TarsCpp's `async_response_push_<op>`).");
        line!(self, "    #[derive(Debug, Clone, PartialEq)]");
        line!(self, "    pub enum {n} {{");
        for op in &i.operations {
            line!(self, "        /// `{}`", op.name);
            let fields: Vec<String> =
                op.params.iter().map(|p| format!("{}: {}", snake_case(&p.name), self.param_ty(i, op, p))).collect();
            line!(self, "        {} {{ {} }},", variant_name(&op.name), fields.join(", "));
        }
        line!(self, "    }}");
        line!(self, "    impl {n} {{");
        line!(self, "        /// The operation's wire name.");
        line!(self, "        pub fn func(&self) -> &'static str {{");
        line!(self, "            match self {{");
        for op in &i.operations {
            line!(self, "                {n}::{} {{ .. }} => {:?},", variant_name(&op.name), op.name);
        }
        line!(self, "            }}");
        line!(self, "        }}");
        line!(self, "        /// The parameters, encoded for protocol `version`.");
        line!(self, "        pub fn encode(&self, version: i16) -> {rt}::Bytes {{");
        line!(self, "            let mut __w = {rt}::rpc::ParamWriter::new(version);");
        line!(self, "            match self {{");
        for op in &i.operations {
            let names: Vec<String> = op.params.iter().map(|p| snake_case(&p.name)).collect();
            line!(self, "                {n}::{} {{ {} }} => {{", variant_name(&op.name), names.join(", "));
            for p in &op.params {
                line!(self, "                    __w.write({}, {:?}, {});", p.tag, p.name, snake_case(&p.name));
            }
            line!(self, "                }}");
        }
        line!(self, "            }}");
        line!(self, "            __w.finish()");
        line!(self, "        }}");
        line!(self, "        /// Decodes the push of `func` from `body`, encoded for protocol `version`.");
        line!(self, "        pub fn decode(func: &str, version: i16, body: &{rt}::Bytes) -> ::core::result::Result<Self, {rt}::codec::DecodeError> {{");
        line!(self, "            let mut __r = {rt}::rpc::ParamReader::new(version, body)?;");
        line!(self, "            let _ = &mut __r;");
        line!(self, "            match func {{");
        for op in &i.operations {
            let owner = format!("{}.{}", i.name, op.name);
            line!(
                self,
                "                {:?} => ::core::result::Result::Ok({n}::{} {{",
                op.name,
                variant_name(&op.name)
            );
            for p in &op.params {
                line!(
                    self,
                    "                    {}: __r.read({}, {:?}).map_err(|e| e.at({owner:?}, {:?}))?,",
                    snake_case(&p.name),
                    p.tag,
                    p.name,
                    p.name
                );
            }
            line!(self, "                }}),");
        }
        line!(self, "                _ => ::core::result::Result::Err({rt}::codec::DecodeError::new({rt}::codec::DecodeErrorKind::Invalid(::std::format!(\"no push function '{{func}}' in {}\")))),", i.name);
        line!(self, "            }}");
        line!(self, "        }}");
        line!(self, "    }}");
    }

    /// A `string` parameter named in [`Config::binary_string`].
    fn is_binary(&self, i: &InterfaceDef, op: &OperationDef, p: &resolve::ParamDef) -> bool {
        binary_capable(&p.ty) && self.binary.contains(&format!("{}.{}.{}", i.name, op.name, p.name))
    }

    /// `BinString` for `string`, `Vec<BinString>` for `vector<string>`.
    fn binary_ty(&self, t: &RType) -> String {
        match t {
            RType::Vector(_) => format!("::std::vec::Vec<{}::codec::BinString>", self.rt),
            _ => format!("{}::codec::BinString", self.rt),
        }
    }

    /// The Rust type of parameter `p` of `i.op`.
    fn param_ty(&self, i: &InterfaceDef, op: &OperationDef, p: &resolve::ParamDef) -> String {
        if self.is_binary(i, op, p) {
            self.binary_ty(&p.ty)
        } else {
            self.ty(&p.ty)
        }
    }

    fn proxy_param_ty(&self, t: &RType) -> String {
        match t {
            RType::String => "&str".into(),
            RType::Vector(_) | RType::Map(..) | RType::Struct { .. } => format!("&{}", self.ty(t)),
            _ => self.ty(t),
        }
    }

    fn servant(&mut self, i: &InterfaceDef) {
        let rt = self.rt;
        line!(self, "");
        line!(
            self,
            "    /// Servant side of IDL interface `{}`: implement it and serve it with `dispatch_{}`.",
            i.name,
            snake_case(&i.name).trim_start_matches("r#")
        );
        line!(self, "    /// `out` parameters arrive as `&mut`, holding their defaults.");
        line!(self, "    #[allow(async_fn_in_trait)]");
        line!(self, "    pub trait {} {{", i.name);
        for op in &i.operations {
            let mut args = format!("&self, current: &mut {rt}::rpc::Current");
            for p in &op.params {
                let ty = self.param_ty(i, op, p);
                let _ = if p.out {
                    write!(args, ", {}: &mut {ty}", snake_case(&p.name))
                } else {
                    write!(args, ", {}: {ty}", snake_case(&p.name))
                };
            }
            let ret = op.ret.as_ref().map_or("()".to_owned(), |t| self.ty(t));
            line!(self, "        /// `{}`", op.name);
            line!(
                self,
                "        async fn {}({args}) -> ::core::result::Result<{ret}, {rt}::rpc::ServantError>;",
                snake_case(&op.name)
            );
        }
        line!(self, "    }}");
    }

    fn dispatch(&mut self, i: &InterfaceDef) {
        let rt = self.rt;
        let fname = format!("dispatch_{}", snake_case(&i.name).trim_start_matches("r#"));
        line!(self, "");
        line!(self, "    /// Function names of `{}`, in IDL order.", i.name);
        let names: Vec<String> = i.operations.iter().map(|o| format!("{:?}", o.name)).collect();
        line!(self, "    pub const {}_METHODS: &[&str] = &[{}];", i.name.to_uppercase(), names.join(", "));
        line!(self, "");
        line!(self, "    /// Decodes the call in `current` / `body` (any protocol version), runs it on `servant`");
        line!(self, "    /// and returns the encoded results for the reply.");
        line!(self, "    pub async fn {fname}<S: {} + ?Sized>(__servant: &S, __current: &mut {rt}::rpc::Current, __body: &{rt}::Bytes) -> ::core::result::Result<{rt}::Bytes, {rt}::rpc::ServantError> {{", i.name);
        line!(self, "        match __current.func.as_str() {{");
        for op in &i.operations {
            self.dispatch_arm(i, op);
        }
        line!(self, "            _ => ::core::result::Result::Err({rt}::rpc::ServantError::no_func(&__current.func)),");
        line!(self, "        }}");
        line!(self, "    }}");
        let wrapper = format!("{}Servant", i.name);
        line!(self, "");
        line!(self, "    /// Serves an implementation of `{}` from a TARS server adapter (one per shard).", i.name);
        line!(self, "    #[derive(Debug, Clone, Default)]");
        line!(self, "    pub struct {wrapper}<S>(pub S);");
        line!(self, "    impl<S: {} + 'static> {rt}::dispatch::Dispatch for {wrapper}<S> {{", i.name);
        line!(self, "        fn dispatch(self: ::std::rc::Rc<Self>, mut current: {rt}::rpc::Current, body: {rt}::Bytes) -> {rt}::dispatch::DispatchFuture {{");
        line!(self, "            ::std::boxed::Box::pin(async move {{");
        line!(self, "                let result = {fname}(&self.0, &mut current, &body).await;");
        line!(self, "                (current, result)");
        line!(self, "            }})");
        line!(self, "        }}");
        line!(self, "    }}");
    }

    fn dispatch_arm(&mut self, i: &InterfaceDef, op: &OperationDef) {
        let rt = self.rt;
        let owner = format!("{}.{}", i.name, op.name);
        line!(self, "            {:?} => {{", op.name);
        // Even a call without parameters must use a protocol version we speak.
        let bind = if op.params.is_empty() { "_" } else { "mut __p" };
        line!(self, "                let {bind} = {rt}::rpc::ParamReader::new(__current.version, __body).map_err(|e| {rt}::rpc::ServantError::decode(&e))?;");
        let mut call_args = Vec::new();
        for p in &op.params {
            let v = snake_case(&p.name);
            let ty = self.param_ty(i, op, p);
            let read = if p.out { "read_out" } else { "read" };
            line!(self, "                let mut {v}: {ty} = __p.{read}({}, {:?}).map_err(|e| {rt}::rpc::ServantError::decode(&e.at({owner:?}, {:?})))?;", p.tag, p.name, p.name);
            call_args.push(if p.out { format!("&mut {v}") } else { v });
        }
        let args = if call_args.is_empty() { String::new() } else { format!(", {}", call_args.join(", ")) };
        line!(self, "                let __ret = __servant.{}(__current{args}).await?;", snake_case(&op.name));
        line!(self, "                let mut __w = {rt}::rpc::ParamWriter::new(__current.version);");
        if op.ret.is_some() {
            line!(self, "                __w.write_ret(&__ret);");
        } else {
            line!(self, "                let () = __ret;");
        }
        for p in op.params.iter().filter(|p| p.out) {
            line!(self, "                __w.write({}, {:?}, &{});", p.tag, p.name, snake_case(&p.name));
        }
        line!(self, "                ::core::result::Result::Ok(__w.finish())");
        line!(self, "            }}");
    }

    fn proxy(&mut self, i: &InterfaceDef) {
        let rt = self.rt;
        let n = format!("{}Proxy", i.name);
        line!(self, "");
        line!(self, "    /// Client side of IDL interface `{}` over any transport.", i.name);
        line!(self, "    #[derive(Debug, Clone)]");
        line!(self, "    pub struct {n}<T> {{");
        line!(self, "        transport: T,");
        line!(self, "        servant: ::std::string::String,");
        line!(self, "        options: {rt}::rpc::CallOptions,");
        line!(self, "    }}");
        line!(self, "    impl<T: {rt}::rpc::Transport> {n}<T> {{");
        line!(self, "        /// A proxy calling `servant` (e.g. `App.Server.Obj`) through `transport`.");
        line!(
            self,
            "        pub fn new(transport: T, servant: impl ::core::convert::Into<::std::string::String>) -> Self {{"
        );
        line!(
            self,
            "            {n} {{ transport, servant: servant.into(), options: ::core::default::Default::default() }}"
        );
        line!(self, "        }}");
        line!(self, "        /// Replaces the per-call options (protocol version, timeout, context).");
        line!(self, "        pub fn with_options(mut self, options: {rt}::rpc::CallOptions) -> Self {{ self.options = options; self }}");
        line!(self, "        /// The per-call options.");
        line!(self, "        pub fn options_mut(&mut self) -> &mut {rt}::rpc::CallOptions {{ &mut self.options }}");
        line!(self, "        /// The servant name calls go to.");
        line!(self, "        pub fn servant(&self) -> &str {{ &self.servant }}");
        for op in &i.operations {
            self.proxy_method(i, op, false);
            // As TarsCpp's `async_xxx(NULL, ...)`: sent oneway, the return value never read.
            if op.params.iter().all(|p| !p.out) {
                self.proxy_method(i, op, true);
            }
        }
        line!(self, "    }}");
    }

    fn proxy_method(&mut self, i: &InterfaceDef, op: &OperationDef, oneway: bool) {
        let rt = self.rt;
        let owner = format!("{}.{}", i.name, op.name);
        let mut args = String::from("&self");
        for p in &op.params {
            let v = snake_case(&p.name);
            let _ = if p.out {
                write!(args, ", {v}: &mut {}", self.param_ty(i, op, p))
            } else if self.is_binary(i, op, p) {
                write!(args, ", {v}: &{}", self.param_ty(i, op, p))
            } else {
                write!(args, ", {v}: {}", self.proxy_param_ty(&p.ty))
            };
        }
        let ret = op.ret.as_ref().map_or("()".to_owned(), |t| self.ty(t));
        let (name, ret) = if oneway {
            (format!("{}_oneway", snake_case(&op.name).trim_start_matches("r#")), "()".to_owned())
        } else {
            (snake_case(&op.name), ret)
        };
        line!(self, "        /// Calls `{}`{}.", op.name, if oneway { " without waiting for a reply" } else { "" });
        line!(self, "        pub async fn {name}({args}) -> ::core::result::Result<{ret}, {rt}::rpc::CallError> {{");
        line!(self, "            let mut __w = {rt}::rpc::ParamWriter::new(self.options.version);");
        for p in op.params.iter().filter(|p| !p.out) {
            let v = snake_case(&p.name);
            match p.ty {
                RType::String if self.is_binary(i, op, p) => {
                    line!(self, "            __w.write({}, {:?}, {v});", p.tag, p.name)
                }
                RType::String => line!(self, "            __w.write_str({}, {:?}, {v});", p.tag, p.name),
                RType::Vector(_) | RType::Map(..) | RType::Struct { .. } => {
                    line!(self, "            __w.write({}, {:?}, {v});", p.tag, p.name)
                }
                _ => line!(self, "            __w.write({}, {:?}, &{v});", p.tag, p.name),
            }
        }
        // A `routekey` parameter travels in status as STATUS_GRID_KEY, as TarsCpp proxies send it.
        let routekey = op.params.iter().find(|p| p.routekey && !p.out && is_displayable(&p.ty));
        let options = match routekey {
            Some(p) => {
                line!(self, "            let mut __options = self.options.clone();");
                line!(
                    self,
                    "            __options.status.insert({rt}::packet::status_key::GRID_KEY.to_owned(), {}.to_string());",
                    snake_case(&p.name)
                );
                "&__options"
            }
            None => "&self.options",
        };
        line!(self, "            let __reply = {rt}::rpc::call(&self.transport, &self.servant, {:?}, __w.finish(), {options}, {oneway}).await?;", op.name);
        if oneway {
            line!(self, "            let _ = __reply;");
            line!(self, "            ::core::result::Result::Ok(())");
            line!(self, "        }}");
            return;
        }
        let outs: Vec<_> = op.params.iter().filter(|p| p.out).collect();
        if op.ret.is_none() && outs.is_empty() {
            line!(self, "            let _ = __reply;");
            line!(self, "            ::core::result::Result::Ok(())");
            line!(self, "        }}");
            return;
        }
        line!(self, "            let mut __r = __reply.params()?;");
        // Tag order: the return value (tag 0) before the out parameters.
        if op.ret.is_some() {
            line!(self, "            let __ret = __r.read_ret().map_err(|e| e.at({owner:?}, \"return\"))?;");
        }
        for p in outs {
            line!(
                self,
                "            *{} = __r.read({}, {:?}).map_err(|e| e.at({owner:?}, {:?}))?;",
                snake_case(&p.name),
                p.tag,
                p.name,
                p.name
            );
        }
        if op.ret.is_some() {
            line!(self, "            ::core::result::Result::Ok(__ret)");
        } else {
            line!(self, "            ::core::result::Result::Ok(())");
        }
        line!(self, "        }}");
    }
}

/// Types [`Config::binary_string`] can name: `string` and `vector<string>`.
fn binary_capable(t: &RType) -> bool {
    match t {
        RType::String => true,
        RType::Vector(e) => **e == RType::String,
        _ => false,
    }
}
