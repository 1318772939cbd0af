//! Errors of every compiler stage, each with `file:line:column`.

use std::path::PathBuf;

/// A compile error. Displays as `file:line:column: message`.
#[derive(Debug, thiserror::Error)]
pub enum IdlError {
    /// A syntax or semantic error at a known position.
    #[error("{}:{line}:{col}: {message}", file.display())]
    At {
        /// Source file.
        file: PathBuf,
        /// 1-based line.
        line: u32,
        /// 1-based column.
        col: u32,
        /// What is wrong.
        message: String,
    },
    /// A [`crate::Config::binary_string`] path names no `string` parameter or member.
    #[error(
        "binary_string({0:?}): no string or vector<string> parameter Interface.operation.parameter or member \
         Struct.member of that name"
    )]
    UnknownBinaryString(String),
    /// A file could not be read.
    #[error("{}: {source}", file.display())]
    Io {
        /// The file.
        file: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
}

impl IdlError {
    /// An error at `pos` in `file`.
    pub fn at(file: impl Into<PathBuf>, pos: crate::ast::Pos, message: impl Into<String>) -> Self {
        IdlError::At { file: file.into(), line: pos.line, col: pos.col, message: message.into() }
    }
}
