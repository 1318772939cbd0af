//! The `.tars` IDL compiler.
//!
//! Stages, each testable on its own (pilota-build and prost-build are the model):
//! [`parse`] (text → [`ast::File`]), [`resolve`] (files + includes → a [`resolve::Program`]
//! whose type references are checked), and [`codegen`] (program → Rust source that uses
//! `tars-core-net`). [`Config`] drives all three from a `build.rs`.
//!
//! What it does not do: it never runs at service run time, and it does not emit C++, Go or JS.

pub mod ast;
pub mod codegen;
mod error;
pub mod lexer;
pub mod parse;
pub mod resolve;

pub use codegen::Config;
pub use error::IdlError;
