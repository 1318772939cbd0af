//! Resolver: parsed files (plus their `#include`s) → a checked [`Program`].
//!
//! This is where everything that needs the whole program is decided: modules are merged by
//! name across files, named types are bound to a struct or enum, enum values are computed,
//! defaults are type-checked and converted, `key[...]` is attached to its struct, and
//! duplicate definitions, tags, members and parameters are rejected. The code generator only
//! ever sees the output types defined here, never the AST.
//!
//! Name lookup follows upstream with one relaxation: an unqualified type is looked up in the
//! current module (across all loaded files); if it is not there but exactly one other module
//! defines it, that one is used. Upstream insists on `mod::Type` in that case; accepting it
//! is harmless because the match is unambiguous, and an ambiguous name is still an error.
//! Types may be used before they are defined (upstream requires definition order).

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use crate::ast::{self, Literal, Pos, Type};
use crate::parse::parse;
use crate::IdlError;

/// A whole compiled program: every module of every loaded file.
#[derive(Debug, Clone, PartialEq)]
pub struct Program {
    /// Modules merged by name across files, in first-seen order.
    pub modules: Vec<ModuleDef>,
}

/// One module, merged from every `module name { ... };` block with this name.
#[derive(Debug, Clone, PartialEq)]
pub struct ModuleDef {
    /// Module name.
    pub name: String,
    /// Structs in source order.
    pub structs: Vec<StructDef>,
    /// Enums in source order.
    pub enums: Vec<EnumDef>,
    /// Constants in source order.
    pub consts: Vec<ConstDef>,
    /// Interfaces in source order.
    pub interfaces: Vec<InterfaceDef>,
}

/// A struct.
#[derive(Debug, Clone, PartialEq)]
pub struct StructDef {
    /// Struct name.
    pub name: String,
    /// Fields sorted by tag (the wire order).
    pub fields: Vec<FieldDef>,
    /// `key[...]` member names in comparison order, each checked to be a field.
    pub key: Option<Vec<String>>,
}

/// A struct field.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldDef {
    /// Wire tag.
    pub tag: u8,
    /// `require` (true) or `optional` (false).
    pub required: bool,
    /// Field name.
    pub name: String,
    /// Resolved type; a fixed array `byte m[5]` is a `Vector(Byte)`.
    pub ty: RType,
    /// Explicit default, type-checked against `ty` and converted.
    pub default: Option<Value>,
}

/// A resolved type: every named type points at a known struct or enum.
#[derive(Debug, Clone, PartialEq)]
pub enum RType {
    /// `bool`
    Bool,
    /// `byte` (i8)
    Byte,
    /// `unsigned byte` (u8)
    UByte,
    /// `short` (i16)
    Short,
    /// `unsigned short` (u16)
    UShort,
    /// `int` (i32)
    Int,
    /// `unsigned int` (u32)
    UInt,
    /// `long` (i64)
    Long,
    /// `float` (f32)
    Float,
    /// `double` (f64)
    Double,
    /// `string`
    String,
    /// `vector<T>`
    Vector(Box<RType>),
    /// `map<K, V>`
    Map(Box<RType>, Box<RType>),
    /// A struct defined in `module`.
    Struct {
        /// Defining module.
        module: String,
        /// Struct name.
        name: String,
    },
    /// An enum defined in `module`.
    Enum {
        /// Defining module.
        module: String,
        /// Enum name.
        name: String,
    },
}

impl fmt::Display for RType {
    /// Formats the type as `.tars` source would write it, for error messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RType::Bool => f.write_str("bool"),
            RType::Byte => f.write_str("byte"),
            RType::UByte => f.write_str("unsigned byte"),
            RType::Short => f.write_str("short"),
            RType::UShort => f.write_str("unsigned short"),
            RType::Int => f.write_str("int"),
            RType::UInt => f.write_str("unsigned int"),
            RType::Long => f.write_str("long"),
            RType::Float => f.write_str("float"),
            RType::Double => f.write_str("double"),
            RType::String => f.write_str("string"),
            RType::Vector(t) => write!(f, "vector<{t}>"),
            RType::Map(k, v) => write!(f, "map<{k}, {v}>"),
            RType::Struct { module, name } | RType::Enum { module, name } => {
                write!(f, "{module}::{name}")
            }
        }
    }
}

/// A checked constant or default value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Any integer type; already range-checked against it.
    Int(i64),
    /// `float` or `double` (an integer literal given for a float type is converted).
    Float(f64),
    /// `bool`
    Bool(bool),
    /// `string`
    Str(String),
    /// An enumerator of an enum type.
    Enum {
        /// The enum's module.
        module: String,
        /// The enum.
        enum_name: String,
        /// The enumerator.
        variant: String,
        /// Its numeric value.
        value: i32,
    },
}

/// An enum with every enumerator's value computed.
#[derive(Debug, Clone, PartialEq)]
pub struct EnumDef {
    /// Enum name.
    pub name: String,
    /// Enumerators in source order with values: the first is 0 and each next is the previous
    /// plus one, unless given explicitly. Values may repeat, as in upstream.
    pub variants: Vec<(String, i32)>,
}

/// `const TYPE NAME = value;`
#[derive(Debug, Clone, PartialEq)]
pub struct ConstDef {
    /// Name.
    pub name: String,
    /// Declared type: a builtin scalar, `string`, or an enum.
    pub ty: RType,
    /// Value, checked against `ty`.
    pub value: Value,
}

/// An interface (a servant's set of operations).
#[derive(Debug, Clone, PartialEq)]
pub struct InterfaceDef {
    /// Interface name.
    pub name: String,
    /// Operations in source order.
    pub operations: Vec<OperationDef>,
}

/// One remote operation.
#[derive(Debug, Clone, PartialEq)]
pub struct OperationDef {
    /// Operation name (the wire function name).
    pub name: String,
    /// Return type; `None` for `void`.
    pub ret: Option<RType>,
    /// Parameters in order.
    pub params: Vec<ParamDef>,
}

/// One operation parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamDef {
    /// Name.
    pub name: String,
    /// Resolved type.
    pub ty: RType,
    /// An `out` parameter (returned with the response).
    pub out: bool,
    /// Marked `routekey`.
    pub routekey: bool,
    /// Wire tag: 1 for the first parameter, 2 for the second, ... (0 is the return value).
    pub tag: u8,
}

impl Program {
    /// The module named `name`, if any.
    pub fn module(&self, name: &str) -> Option<&ModuleDef> {
        self.modules.iter().find(|m| m.name == name)
    }
}

impl ModuleDef {
    /// The struct named `name` in this module, if any.
    pub fn find_struct(&self, name: &str) -> Option<&StructDef> {
        self.structs.iter().find(|s| s.name == name)
    }

    /// The enum named `name` in this module, if any.
    pub fn find_enum(&self, name: &str) -> Option<&EnumDef> {
        self.enums.iter().find(|e| e.name == name)
    }
}

// ----- loading ------------------------------------------------------------------------------

/// Reads and parses `files` and everything they `#include`, then [`resolve`]s them.
///
/// An include is looked up relative to the including file's directory first, then in each
/// of `include_dirs` in order. Each file is parsed once (identified by its canonical path),
/// so include cycles are harmless. Included files come before the files that include them.
pub fn load(files: &[PathBuf], include_dirs: &[PathBuf]) -> Result<Program, IdlError> {
    let mut loader = FsLoader { include_dirs, seen: HashSet::new(), files: Vec::new() };
    for path in files {
        loader.visit(path.clone())?;
    }
    resolve(loader.files)
}

/// Depth-first, includes-first traversal of files on disk.
struct FsLoader<'a> {
    include_dirs: &'a [PathBuf],
    seen: HashSet<PathBuf>,
    files: Vec<ast::File>,
}

impl FsLoader<'_> {
    fn visit(&mut self, path: PathBuf) -> Result<(), IdlError> {
        let identity = fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        if !self.seen.insert(identity) {
            return Ok(());
        }
        let src = fs::read_to_string(&path).map_err(|source| IdlError::Io { file: path.clone(), source })?;
        let file = parse(&path, &src)?;
        for include in &file.includes {
            let found = self.find_include(&path, include)?;
            self.visit(found)?;
        }
        self.files.push(file);
        Ok(())
    }

    fn find_include(&self, from: &Path, include: &ast::Include) -> Result<PathBuf, IdlError> {
        let own_dir = from.parent().unwrap_or_else(|| Path::new(""));
        std::iter::once(own_dir)
            .chain(self.include_dirs.iter().map(PathBuf::as_path))
            .map(|dir| dir.join(&include.path))
            .find(|candidate| candidate.is_file())
            .ok_or_else(|| IdlError::at(from, include.pos, format!("cannot find included file \"{}\"", include.path)))
    }
}

/// Parses `(path, source)` pairs and [`resolve`]s them, for tests and tools that hold the
/// sources in memory. An `#include` names one of the given paths, either exactly or by its
/// file name; the order of the result is as for [`load`].
pub fn load_str(sources: &[(&str, &str)]) -> Result<Program, IdlError> {
    let parsed = sources.iter().map(|(path, src)| parse(Path::new(path), src)).collect::<Result<Vec<_>, _>>()?;
    let mut order = Vec::with_capacity(parsed.len());
    let mut seen = vec![false; parsed.len()];
    for index in 0..parsed.len() {
        visit_in_memory(&parsed, index, &mut seen, &mut order)?;
    }
    let mut slots: Vec<Option<ast::File>> = parsed.into_iter().map(Some).collect();
    let files = order.into_iter().filter_map(|i| slots.get_mut(i).and_then(Option::take)).collect();
    resolve(files)
}

/// Includes-first traversal of in-memory files; pushes indexes into `order`.
fn visit_in_memory(
    files: &[ast::File],
    index: usize,
    seen: &mut [bool],
    order: &mut Vec<usize>,
) -> Result<(), IdlError> {
    match seen.get_mut(index) {
        Some(flag) if !*flag => *flag = true,
        _ => return Ok(()),
    }
    let Some(file) = files.get(index) else { return Ok(()) };
    for include in &file.includes {
        let wanted = Path::new(&include.path);
        let target = files
            .iter()
            .position(|f| f.path == wanted)
            .or_else(|| {
                let name = wanted.file_name()?;
                files.iter().position(|f| f.path.file_name() == Some(name))
            })
            .ok_or_else(|| {
                IdlError::at(&file.path, include.pos, format!("cannot find included file \"{}\"", include.path))
            })?;
        visit_in_memory(files, target, seen, order)?;
    }
    order.push(index);
    Ok(())
}

// ----- resolving ----------------------------------------------------------------------------

/// Checks and converts parsed files into a [`Program`]. Files are taken in the given order
/// (it decides module order); includes are not followed here.
pub fn resolve(files: Vec<ast::File>) -> Result<Program, IdlError> {
    let symbols = Symbols::collect(&files)?;
    let enums = compute_enums(&files)?;
    let mut modules: Vec<ModuleDef> = symbols
        .order
        .iter()
        .map(|name| ModuleDef {
            name: name.clone(),
            structs: Vec::new(),
            enums: Vec::new(),
            consts: Vec::new(),
            interfaces: Vec::new(),
        })
        .collect();

    let mut keys = Vec::new();
    for file in &files {
        for module in &file.modules {
            let cx = Cx { symbols: &symbols, enums: &enums, file: &file.path, module: &module.name };
            let Some(def) = modules.iter_mut().find(|m| m.name == module.name) else {
                continue;
            };
            for item in &module.items {
                match item {
                    ast::Item::Struct(s) => def.structs.push(cx.structure(s)?),
                    ast::Item::Enum(e) => def.enums.push(EnumDef {
                        name: e.name.clone(),
                        variants: enums.get(&(module.name.clone(), e.name.clone())).cloned().unwrap_or_default(),
                    }),
                    ast::Item::Const(c) => def.consts.push(cx.constant(c)?),
                    ast::Item::Interface(i) => def.interfaces.push(cx.interface(i)?),
                    ast::Item::Key(k) => keys.push((&file.path, module.name.as_str(), k)),
                }
            }
        }
    }
    for (file, module, key) in keys {
        apply_key(&mut modules, file, module, key)?;
    }
    Ok(Program { modules })
}

/// What a module-level name denotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DefKind {
    Struct,
    Enum,
    Const,
    Interface,
}

impl DefKind {
    fn noun(self) -> &'static str {
        match self {
            DefKind::Struct => "a struct",
            DefKind::Enum => "an enum",
            DefKind::Const => "a constant",
            DefKind::Interface => "an interface",
        }
    }
}

/// Every module-level name, for duplicate checks and type lookup.
struct Symbols {
    /// Module names in first-seen order.
    order: Vec<String>,
    /// module → name → kind.
    defs: HashMap<String, HashMap<String, DefKind>>,
}

impl Symbols {
    fn collect(files: &[ast::File]) -> Result<Self, IdlError> {
        let mut order = Vec::new();
        let mut defs: HashMap<String, HashMap<String, DefKind>> = HashMap::new();
        // Where each name was first defined, to point at it in the duplicate error.
        let mut first: HashMap<(String, String), (PathBuf, Pos)> = HashMap::new();
        for file in files {
            for module in &file.modules {
                if !defs.contains_key(&module.name) {
                    order.push(module.name.clone());
                }
                let names = defs.entry(module.name.clone()).or_default();
                for item in &module.items {
                    let (name, pos, kind) = match item {
                        ast::Item::Struct(s) => (&s.name, s.pos, DefKind::Struct),
                        ast::Item::Enum(e) => (&e.name, e.pos, DefKind::Enum),
                        ast::Item::Const(c) => (&c.name, c.pos, DefKind::Const),
                        ast::Item::Interface(i) => (&i.name, i.pos, DefKind::Interface),
                        ast::Item::Key(_) => continue,
                    };
                    let slot = (module.name.clone(), name.clone());
                    if let Some((prev_file, prev)) = first.get(&slot) {
                        return Err(IdlError::at(
                            &file.path,
                            pos,
                            format!(
                                "'{name}' is already defined in module '{}' (at {}:{}:{})",
                                module.name,
                                prev_file.display(),
                                prev.line,
                                prev.col
                            ),
                        ));
                    }
                    first.insert(slot, (file.path.clone(), pos));
                    names.insert(name.clone(), kind);
                }
            }
        }
        Ok(Symbols { order, defs })
    }

    fn kind(&self, module: &str, name: &str) -> Option<DefKind> {
        self.defs.get(module)?.get(name).copied()
    }
}

/// Enum values keyed by (module, enum).
type EnumValues = HashMap<(String, String), Vec<(String, i32)>>;

/// Computes every enum's values up front, because defaults of enum type anywhere in the
/// program need them.
fn compute_enums(files: &[ast::File]) -> Result<EnumValues, IdlError> {
    let mut out = EnumValues::new();
    for file in files {
        for module in &file.modules {
            for item in &module.items {
                if let ast::Item::Enum(e) = item {
                    let values = enum_values(&file.path, &module.name, e)?;
                    out.insert((module.name.clone(), e.name.clone()), values);
                }
            }
        }
    }
    Ok(out)
}

/// True if `scope` (the part before the last `::`) may qualify an enumerator of
/// `module::enum_name`: `X`, `E::X`, `m::X` (C++ style) and `m::E::X` all work.
fn enum_scope_matches(scope: Option<&str>, module: &str, enum_name: &str) -> bool {
    match scope {
        None => true,
        Some(s) => s == enum_name || s == module || s == format!("{module}::{enum_name}"),
    }
}

fn enum_values(file: &Path, module: &str, e: &ast::Enum) -> Result<Vec<(String, i32)>, IdlError> {
    let mut values: Vec<(String, i32)> = Vec::with_capacity(e.variants.len());
    // Name → value of the enumerators so far, so long enums stay linear.
    let mut earlier: HashMap<&str, i32> = HashMap::with_capacity(e.variants.len());
    let mut next: i64 = 0;
    for v in &e.variants {
        if earlier.contains_key(v.name.as_str()) {
            return Err(IdlError::at(file, v.pos, format!("duplicate enumerator '{}' in enum '{}'", v.name, e.name)));
        }
        let value = match &v.value {
            None => next,
            Some(Literal::Int(n)) => *n,
            Some(Literal::Ident { scope, name }) => match earlier.get(name.as_str()) {
                Some(val) if enum_scope_matches(scope.as_deref(), module, &e.name) => i64::from(*val),
                _ => {
                    return Err(IdlError::at(
                        file,
                        v.pos,
                        format!(
                            "'{}' is not an earlier enumerator of enum '{}'",
                            qualified(scope.as_deref(), name),
                            e.name
                        ),
                    ))
                }
            },
            Some(other) => {
                return Err(IdlError::at(
                    file,
                    v.pos,
                    format!(
                        "enumerator value must be an integer or an earlier enumerator, found {}",
                        describe_literal(other)
                    ),
                ))
            }
        };
        let value = i32::try_from(value).map_err(|_| {
            IdlError::at(file, v.pos, format!("value {value} of enumerator '{}' does not fit in an int", v.name))
        })?;
        earlier.insert(&v.name, value);
        values.push((v.name.clone(), value));
        next = i64::from(value) + 1;
    }
    Ok(values)
}

/// `scope::name` or `name`.
fn qualified(scope: Option<&str>, name: &str) -> String {
    match scope {
        Some(s) => format!("{s}::{name}"),
        None => name.to_owned(),
    }
}

/// A literal as named in error messages.
fn describe_literal(lit: &Literal) -> String {
    match lit {
        Literal::Int(v) => format!("integer {v}"),
        Literal::Float(v) => format!("float {v}"),
        Literal::Bool(b) => format!("'{b}'"),
        Literal::Str(s) => format!("string {s:?}"),
        Literal::Ident { scope, name } => format!("'{}'", qualified(scope.as_deref(), name)),
    }
}

/// Attaches `key[...]` to its struct, which must be in the same module.
fn apply_key(modules: &mut [ModuleDef], file: &Path, module: &str, key: &ast::Key) -> Result<(), IdlError> {
    let err = |msg: String| IdlError::at(file, key.pos, msg);
    let (scope, name) = match key.struct_name.rsplit_once("::") {
        Some((scope, name)) => (Some(scope), name),
        None => (None, key.struct_name.as_str()),
    };
    if scope.is_some_and(|s| s != module) {
        return Err(err(format!(
            "key[] in module '{module}' must name a struct of that module, found '{}'",
            key.struct_name
        )));
    }
    let Some(def) = modules.iter_mut().find(|m| m.name == module) else {
        return Err(err(format!("unknown module '{module}'")));
    };
    let Some(st) = def.structs.iter_mut().find(|s| s.name == name) else {
        return Err(err(format!("key[] names unknown struct '{}'", key.struct_name)));
    };
    if st.key.is_some() {
        return Err(err(format!("struct '{name}' already has a key[]")));
    }
    for (i, member) in key.members.iter().enumerate() {
        if !st.fields.iter().any(|f| f.name == *member) {
            return Err(err(format!("'{member}' is not a member of struct '{name}'")));
        }
        if key.members[..i].contains(member) {
            return Err(err(format!("member '{member}' appears twice in key[]")));
        }
    }
    st.key = Some(key.members.clone());
    Ok(())
}

/// The context of one module block in one file.
struct Cx<'a> {
    symbols: &'a Symbols,
    enums: &'a EnumValues,
    file: &'a Path,
    module: &'a str,
}

impl Cx<'_> {
    fn error(&self, pos: Pos, msg: impl Into<String>) -> IdlError {
        IdlError::at(self.file, pos, msg)
    }

    fn structure(&self, s: &ast::Struct) -> Result<StructDef, IdlError> {
        let mut fields: Vec<FieldDef> = Vec::with_capacity(s.members.len());
        for m in &s.members {
            let tag = u8::try_from(m.tag)
                .map_err(|_| self.error(m.pos, format!("tag {} of '{}' is out of range (0..=255)", m.tag, m.name)))?;
            if let Some(prev) = fields.iter().find(|f| f.tag == tag) {
                return Err(self.error(
                    m.pos,
                    format!("duplicate tag {tag} in struct '{}' (already used by '{}')", s.name, prev.name),
                ));
            }
            if fields.iter().any(|f| f.name == m.name) {
                return Err(self.error(m.pos, format!("duplicate member '{}' in struct '{}'", m.name, s.name)));
            }
            let mut ty = self.ty(&m.ty)?;
            if m.array.is_some() {
                ty = RType::Vector(Box::new(ty));
            }
            let default = match &m.default {
                Some(lit) => Some(self.value(lit, &ty, m.pos, &m.name)?),
                None => None,
            };
            fields.push(FieldDef { tag, required: m.required, name: m.name.clone(), ty, default });
        }
        fields.sort_by_key(|f| f.tag);
        Ok(StructDef { name: s.name.clone(), fields, key: None })
    }

    fn constant(&self, c: &ast::Const) -> Result<ConstDef, IdlError> {
        let ty = self.ty(&c.ty)?;
        if matches!(ty, RType::Vector(_) | RType::Map(..) | RType::Struct { .. }) {
            return Err(self.error(c.pos, format!("constant '{}' must have a builtin or enum type, not {ty}", c.name)));
        }
        let value = self.value(&c.value, &ty, c.pos, &c.name)?;
        Ok(ConstDef { name: c.name.clone(), ty, value })
    }

    fn interface(&self, i: &ast::Interface) -> Result<InterfaceDef, IdlError> {
        let mut operations: Vec<OperationDef> = Vec::with_capacity(i.operations.len());
        let mut seen: HashSet<&str> = HashSet::with_capacity(i.operations.len());
        for op in &i.operations {
            if !seen.insert(&op.name) {
                return Err(self.error(op.pos, format!("duplicate operation '{}' in interface '{}'", op.name, i.name)));
            }
            let ret = op.ret.as_ref().map(|t| self.ty(t)).transpose()?;
            let mut params: Vec<ParamDef> = Vec::with_capacity(op.params.len());
            for (index, p) in op.params.iter().enumerate() {
                let tag = u8::try_from(index + 1)
                    .map_err(|_| self.error(p.pos, format!("operation '{}' has more than 255 parameters", op.name)))?;
                if params.iter().any(|q| q.name == p.name) {
                    return Err(
                        self.error(p.pos, format!("duplicate parameter '{}' in operation '{}'", p.name, op.name))
                    );
                }
                params.push(ParamDef {
                    name: p.name.clone(),
                    ty: self.ty(&p.ty)?,
                    out: p.out,
                    routekey: p.routekey,
                    tag,
                });
            }
            operations.push(OperationDef { name: op.name.clone(), ret, params });
        }
        Ok(InterfaceDef { name: i.name.clone(), operations })
    }

    /// Resolves a written type. Recursion follows the type's nesting, which the parser caps.
    fn ty(&self, ty: &Type) -> Result<RType, IdlError> {
        Ok(match ty {
            Type::Bool => RType::Bool,
            Type::Byte { unsigned: false } => RType::Byte,
            Type::Byte { unsigned: true } => RType::UByte,
            Type::Short { unsigned: false } => RType::Short,
            Type::Short { unsigned: true } => RType::UShort,
            Type::Int { unsigned: false } => RType::Int,
            Type::Int { unsigned: true } => RType::UInt,
            Type::Long => RType::Long,
            Type::Float => RType::Float,
            Type::Double => RType::Double,
            Type::String => RType::String,
            Type::Vector(t) => RType::Vector(Box::new(self.ty(t)?)),
            Type::Map(k, v) => RType::Map(Box::new(self.ty(k)?), Box::new(self.ty(v)?)),
            Type::Named { module, name, pos } => self.named(module.as_deref(), name, *pos)?,
        })
    }

    fn named(&self, module: Option<&str>, name: &str, pos: Pos) -> Result<RType, IdlError> {
        let make = |module: &str, kind: DefKind| match kind {
            DefKind::Struct => Ok(RType::Struct { module: module.to_owned(), name: name.to_owned() }),
            DefKind::Enum => Ok(RType::Enum { module: module.to_owned(), name: name.to_owned() }),
            other => {
                Err(self.error(pos, format!("'{}' is {}, not a type", qualified(Some(module), name), other.noun())))
            }
        };
        if let Some(m) = module {
            if !self.symbols.defs.contains_key(m) {
                return Err(self.error(pos, format!("unknown module '{m}' in type '{m}::{name}'")));
            }
            return match self.symbols.kind(m, name) {
                Some(kind) => make(m, kind),
                None => Err(self.error(pos, format!("unknown type '{m}::{name}'"))),
            };
        }
        if let Some(kind) = self.symbols.kind(self.module, name) {
            return make(self.module, kind);
        }
        let candidates: Vec<&String> = self
            .symbols
            .order
            .iter()
            .filter(|m| matches!(self.symbols.kind(m, name), Some(DefKind::Struct | DefKind::Enum)))
            .collect();
        match candidates.as_slice() {
            [] => Err(self.error(pos, format!("unknown type '{name}'"))),
            [m] => make(m, self.symbols.kind(m, name).unwrap_or(DefKind::Struct)),
            many => Err(self.error(
                pos,
                format!(
                    "ambiguous type '{name}': defined in modules {}; write 'module::{name}'",
                    many.iter().map(|m| format!("'{m}'")).collect::<Vec<_>>().join(", ")
                ),
            )),
        }
    }

    /// Checks `lit` against `ty` and converts it; `name` is the field or constant it is for.
    fn value(&self, lit: &Literal, ty: &RType, pos: Pos, name: &str) -> Result<Value, IdlError> {
        let mismatch = |expected: &str| {
            self.error(
                pos,
                format!(
                    "invalid value for '{name}' of type {ty}: expected {expected}, found {}",
                    describe_literal(lit)
                ),
            )
        };
        let int_range = |min: i64, max: i64| -> Result<Value, IdlError> {
            match lit {
                Literal::Int(v) if (min..=max).contains(v) => Ok(Value::Int(*v)),
                Literal::Int(v) => {
                    Err(self.error(pos, format!("value {v} for '{name}' is out of range for {ty} ({min}..={max})")))
                }
                _ => Err(mismatch("an integer")),
            }
        };
        match ty {
            RType::Bool => match lit {
                Literal::Bool(b) => Ok(Value::Bool(*b)),
                _ => Err(mismatch("true or false")),
            },
            RType::Byte => int_range(i8::MIN.into(), i8::MAX.into()),
            RType::UByte => int_range(0, u8::MAX.into()),
            RType::Short => int_range(i16::MIN.into(), i16::MAX.into()),
            RType::UShort => int_range(0, u16::MAX.into()),
            RType::Int => int_range(i32::MIN.into(), i32::MAX.into()),
            RType::UInt => int_range(0, u32::MAX.into()),
            RType::Long => int_range(i64::MIN, i64::MAX),
            RType::Float | RType::Double => {
                // Integer literals are fine for float types; precision loss is accepted.
                let v = match lit {
                    Literal::Int(v) => *v as f64,
                    Literal::Float(v) => *v,
                    _ => return Err(mismatch("a number")),
                };
                if *ty == RType::Float && v.abs() > f64::from(f32::MAX) {
                    return Err(self.error(pos, format!("value {v} for '{name}' is out of range for float")));
                }
                Ok(Value::Float(v))
            }
            RType::String => match lit {
                Literal::Str(s) => Ok(Value::Str(s.clone())),
                _ => Err(mismatch("a string")),
            },
            RType::Enum { module, name: enum_name } => {
                let variants =
                    self.enums.get(&(module.clone(), enum_name.clone())).map(Vec::as_slice).unwrap_or_default();
                let found = match lit {
                    Literal::Ident { scope, name: variant } => {
                        if !enum_scope_matches(scope.as_deref(), module, enum_name) {
                            return Err(self.error(
                                pos,
                                format!("'{}' is not an enumerator of enum {ty}", qualified(scope.as_deref(), variant)),
                            ));
                        }
                        variants
                            .iter()
                            .find(|(n, _)| n == variant)
                            .ok_or_else(|| self.error(pos, format!("'{variant}' is not an enumerator of enum {ty}")))?
                    }
                    Literal::Int(v) => variants
                        .iter()
                        .find(|(_, val)| i64::from(*val) == *v)
                        .ok_or_else(|| self.error(pos, format!("no enumerator of enum {ty} has value {v}")))?,
                    _ => return Err(mismatch("an enumerator")),
                };
                Ok(Value::Enum {
                    module: module.clone(),
                    enum_name: enum_name.clone(),
                    variant: found.0.clone(),
                    value: found.1,
                })
            }
            RType::Vector(_) | RType::Map(..) | RType::Struct { .. } => Err(self.error(
                pos,
                format!("'{name}' of type {ty} cannot have a default value (only builtin and enum types can)"),
            )),
        }
    }
}
