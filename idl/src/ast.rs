//! The syntax tree of one `.tars` file, as written: names are not resolved yet.
//!
//! [`crate::resolve`] turns a set of files into a [`crate::resolve::Program`] whose type
//! references all point at known definitions.

use std::path::PathBuf;

/// A position in a source file, 1-based, for error messages (`file:line:column`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    /// 1-based line.
    pub line: u32,
    /// 1-based column, counted in characters.
    pub col: u32,
}

/// One parsed `.tars` file.
#[derive(Debug, Clone, PartialEq)]
pub struct File {
    /// The path it was read from (as given to the parser).
    pub path: PathBuf,
    /// `#include "x.tars"` lines, in order, as written.
    pub includes: Vec<Include>,
    /// Top-level `module` blocks, in order. A module may appear more than once.
    pub modules: Vec<Module>,
}

/// `#include "path"`.
#[derive(Debug, Clone, PartialEq)]
pub struct Include {
    /// The quoted path.
    pub path: String,
    /// Where it was written.
    pub pos: Pos,
}

/// `module name { ... };`
#[derive(Debug, Clone, PartialEq)]
pub struct Module {
    /// Module name.
    pub name: String,
    /// Definitions in source order.
    pub items: Vec<Item>,
    /// Where the name was written.
    pub pos: Pos,
}

/// A definition inside a module.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// `struct`.
    Struct(Struct),
    /// `enum`.
    Enum(Enum),
    /// `const`.
    Const(Const),
    /// `interface`.
    Interface(Interface),
    /// `key[Struct, a, b];`
    Key(Key),
}

/// A type as written.
#[derive(Debug, Clone, PartialEq)]
pub enum Type {
    /// `bool`
    Bool,
    /// `byte` (signed) or `unsigned byte`.
    Byte {
        /// Declared `unsigned`.
        unsigned: bool,
    },
    /// `short` / `unsigned short`.
    Short {
        /// Declared `unsigned`.
        unsigned: bool,
    },
    /// `int` / `unsigned int`.
    Int {
        /// Declared `unsigned`.
        unsigned: bool,
    },
    /// `long`.
    Long,
    /// `float`.
    Float,
    /// `double`.
    Double,
    /// `string`.
    String,
    /// `vector<T>`.
    Vector(Box<Type>),
    /// `map<K, V>`.
    Map(Box<Type>, Box<Type>),
    /// A struct or enum, possibly qualified: `Foo` or `mod::Foo`.
    Named {
        /// The module qualifier, if written (`mod::Foo`).
        module: Option<String>,
        /// The type name.
        name: String,
        /// Where it was written, for "unknown type" errors.
        pos: Pos,
    },
}

/// A literal default or constant value.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// An integer literal (decimal, or hex with `0x`), possibly negative.
    Int(i64),
    /// A floating-point literal.
    Float(f64),
    /// `true` / `false`.
    Bool(bool),
    /// A double-quoted string, escapes already processed.
    Str(String),
    /// A bare identifier, e.g. an enumerator name used as a default (`Foo::BAR` or `BAR`).
    Ident {
        /// Optional qualifier before `::`.
        scope: Option<String>,
        /// The identifier.
        name: String,
    },
}

/// `struct Name { members };`
#[derive(Debug, Clone, PartialEq)]
pub struct Struct {
    /// Struct name.
    pub name: String,
    /// Members in source order (the resolver sorts them by tag).
    pub members: Vec<Member>,
    /// Where the name was written.
    pub pos: Pos,
}

/// `tag require|optional type name [= default];`
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    /// Tag, 0–255.
    pub tag: u32,
    /// `require` (true) or `optional` (false).
    pub required: bool,
    /// Declared type.
    pub ty: Type,
    /// Member name.
    pub name: String,
    /// Explicit default, if any.
    pub default: Option<Literal>,
    /// Fixed-size array length (`byte m[5]`), a C++-only convenience; carried as a vector.
    pub array: Option<u32>,
    /// Where the name was written.
    pub pos: Pos,
}

/// `enum Name { A, B = 5, C };`
#[derive(Debug, Clone, PartialEq)]
pub struct Enum {
    /// Enum name.
    pub name: String,
    /// Enumerators in order, with explicit values if written.
    pub variants: Vec<Enumerator>,
    /// Where the name was written.
    pub pos: Pos,
}

/// One enumerator.
#[derive(Debug, Clone, PartialEq)]
pub struct Enumerator {
    /// Name.
    pub name: String,
    /// Explicit value, if written: an integer, or a reference to an earlier enumerator.
    pub value: Option<Literal>,
    /// Where the name was written.
    pub pos: Pos,
}

/// `const type NAME = value;`
#[derive(Debug, Clone, PartialEq)]
pub struct Const {
    /// Declared type (a builtin).
    pub ty: Type,
    /// Name.
    pub name: String,
    /// Value.
    pub value: Literal,
    /// Where the name was written.
    pub pos: Pos,
}

/// `key[Struct, member, member...];`: the members that order the struct as a map key.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    /// The struct it applies to.
    pub struct_name: String,
    /// Member names, in comparison order.
    pub members: Vec<String>,
    /// Where it was written.
    pub pos: Pos,
}

/// `interface Name { operations };`
#[derive(Debug, Clone, PartialEq)]
pub struct Interface {
    /// Interface name.
    pub name: String,
    /// Operations in source order.
    pub operations: Vec<Operation>,
    /// Where the name was written.
    pub pos: Pos,
}

/// `ret name(params);`
#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    /// Return type; `None` for `void`.
    pub ret: Option<Type>,
    /// Operation name.
    pub name: String,
    /// Parameters in order; wire tags are 1.. by position.
    pub params: Vec<Param>,
    /// Where the name was written.
    pub pos: Pos,
}

/// `[out] [routekey] type name`.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    /// `out` parameter.
    pub out: bool,
    /// Marked `routekey` (its value goes into `STATUS_GRID_KEY`).
    pub routekey: bool,
    /// Declared type.
    pub ty: Type,
    /// Parameter name.
    pub name: String,
    /// Where the name was written.
    pub pos: Pos,
}
