//! Tokens of the `.tars` language, each with its 1-based position.
//!
//! The lexer is a single forward pass over the characters; it never panics and never
//! recurses. It follows upstream `tars.l` where that matters for existing `.tars` files:
//! integers may be decimal, hex (`0x1F`) or octal (`017`) with an optional sign, floats accept
//! `1.5`, `.5`, `1.`, `1e3` and an `f` suffix, and `>>` is always two `>` tokens (the grammar
//! has no shift operator, so `vector<map<string,string>>` needs no special case).

use std::fmt;
use std::ops::Range;
use std::path::Path;

use crate::ast::Pos;
use crate::IdlError;

/// A reserved word. These cannot be used as names (upstream `checkKeyword`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keyword {
    /// `module`
    Module,
    /// `struct`
    Struct,
    /// `enum`
    Enum,
    /// `const`
    Const,
    /// `interface`
    Interface,
    /// `key`
    Key,
    /// `require`
    Require,
    /// `optional`
    Optional,
    /// `out`
    Out,
    /// `routekey`
    RouteKey,
    /// `void`
    Void,
    /// `bool`
    Bool,
    /// `byte`
    Byte,
    /// `short`
    Short,
    /// `int`
    Int,
    /// `long`
    Long,
    /// `float`
    Float,
    /// `double`
    Double,
    /// `string`
    String,
    /// `vector`
    Vector,
    /// `map`
    Map,
    /// `unsigned`
    Unsigned,
    /// `true`
    True,
    /// `false`
    False,
}

impl Keyword {
    /// Every keyword, for lookup.
    const ALL: [Keyword; 24] = [
        Keyword::Module,
        Keyword::Struct,
        Keyword::Enum,
        Keyword::Const,
        Keyword::Interface,
        Keyword::Key,
        Keyword::Require,
        Keyword::Optional,
        Keyword::Out,
        Keyword::RouteKey,
        Keyword::Void,
        Keyword::Bool,
        Keyword::Byte,
        Keyword::Short,
        Keyword::Int,
        Keyword::Long,
        Keyword::Float,
        Keyword::Double,
        Keyword::String,
        Keyword::Vector,
        Keyword::Map,
        Keyword::Unsigned,
        Keyword::True,
        Keyword::False,
    ];

    /// The keyword as written.
    pub fn as_str(self) -> &'static str {
        match self {
            Keyword::Module => "module",
            Keyword::Struct => "struct",
            Keyword::Enum => "enum",
            Keyword::Const => "const",
            Keyword::Interface => "interface",
            Keyword::Key => "key",
            Keyword::Require => "require",
            Keyword::Optional => "optional",
            Keyword::Out => "out",
            Keyword::RouteKey => "routekey",
            Keyword::Void => "void",
            Keyword::Bool => "bool",
            Keyword::Byte => "byte",
            Keyword::Short => "short",
            Keyword::Int => "int",
            Keyword::Long => "long",
            Keyword::Float => "float",
            Keyword::Double => "double",
            Keyword::String => "string",
            Keyword::Vector => "vector",
            Keyword::Map => "map",
            Keyword::Unsigned => "unsigned",
            Keyword::True => "true",
            Keyword::False => "false",
        }
    }

    /// The keyword spelled `word`, if it is one. Keywords are case-sensitive.
    pub fn from_word(word: &str) -> Option<Keyword> {
        Keyword::ALL.into_iter().find(|k| k.as_str() == word)
    }
}

impl fmt::Display for Keyword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a token is.
#[derive(Debug, Clone, PartialEq)]
pub enum TokenKind {
    /// A name that is not a keyword.
    Ident(String),
    /// A reserved word.
    Keyword(Keyword),
    /// An integer literal, sign included.
    Int(i64),
    /// A floating-point literal, sign included.
    Float(f64),
    /// A double-quoted string, escapes processed.
    Str(String),
    /// `#include`
    Include,
    /// `::`
    Scope,
    /// `{`
    LBrace,
    /// `}`
    RBrace,
    /// `(`
    LParen,
    /// `)`
    RParen,
    /// `<`
    Lt,
    /// `>`
    Gt,
    /// `[`
    LBracket,
    /// `]`
    RBracket,
    /// `,`
    Comma,
    /// `;`
    Semi,
    /// `=`
    Eq,
    /// `:`
    Colon,
    /// End of input; always the last token.
    Eof,
}

/// One token.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    /// What it is.
    pub kind: TokenKind,
    /// Where it starts.
    pub pos: Pos,
    /// Its byte range in the source, so error messages can quote it as written.
    pub span: Range<usize>,
}

impl Token {
    /// How to name this token in an error message ("found ..."), quoting the source text.
    pub fn describe(&self, src: &str) -> String {
        const MAX: usize = 40;
        let text = src.get(self.span.clone()).unwrap_or("");
        match &self.kind {
            TokenKind::Eof => "end of file".to_owned(),
            TokenKind::Str(_) => {
                if text.chars().count() > MAX {
                    let head: String = text.chars().take(MAX).collect();
                    format!("string literal {head}...")
                } else {
                    format!("string literal {text}")
                }
            }
            _ => {
                if text.chars().count() > MAX {
                    let head: String = text.chars().take(MAX).collect();
                    format!("'{head}...'")
                } else {
                    format!("'{text}'")
                }
            }
        }
    }
}

/// Splits `src` into tokens, ending with [`TokenKind::Eof`]. `path` is only used in errors.
pub fn tokenize(path: &Path, src: &str) -> Result<Vec<Token>, IdlError> {
    Lexer::new(path, src).run()
}

/// Cursor over the source that tracks line and column.
struct Lexer<'a> {
    path: &'a Path,
    src: &'a str,
    /// Byte offset of the next character.
    off: usize,
    line: u32,
    col: u32,
}

impl<'a> Lexer<'a> {
    fn new(path: &'a Path, src: &'a str) -> Self {
        // A UTF-8 byte order mark is invisible in editors; skip it rather than report it.
        let off = if src.starts_with('\u{feff}') { '\u{feff}'.len_utf8() } else { 0 };
        Lexer { path, src, off, line: 1, col: 1 }
    }

    fn pos(&self) -> Pos {
        Pos { line: self.line, col: self.col }
    }

    fn peek(&self) -> Option<char> {
        self.src[self.off..].chars().next()
    }

    fn peek2(&self) -> Option<char> {
        let mut it = self.src[self.off..].chars();
        it.next();
        it.next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.off += c.len_utf8();
        if c == '\n' {
            self.line = self.line.saturating_add(1);
            self.col = 1;
        } else {
            self.col = self.col.saturating_add(1);
        }
        Some(c)
    }

    fn error(&self, pos: Pos, msg: impl Into<String>) -> IdlError {
        IdlError::at(self.path, pos, msg)
    }

    fn run(mut self) -> Result<Vec<Token>, IdlError> {
        let mut tokens = Vec::new();
        loop {
            self.skip_trivia()?;
            let pos = self.pos();
            let start = self.off;
            let Some(c) = self.peek() else {
                tokens.push(Token { kind: TokenKind::Eof, pos, span: start..start });
                return Ok(tokens);
            };
            let kind = match c {
                c if c.is_ascii_alphabetic() || c == '_' => self.word(),
                c if c.is_ascii_digit() => self.number(pos)?,
                '+' | '-' | '.' if self.starts_number_after_sign() => self.number(pos)?,
                '"' => self.string(pos)?,
                '#' => self.directive(pos)?,
                ':' if self.peek2() == Some(':') => {
                    self.bump();
                    self.bump();
                    TokenKind::Scope
                }
                _ => {
                    let kind = match c {
                        '{' => TokenKind::LBrace,
                        '}' => TokenKind::RBrace,
                        '(' => TokenKind::LParen,
                        ')' => TokenKind::RParen,
                        '<' => TokenKind::Lt,
                        '>' => TokenKind::Gt,
                        '[' => TokenKind::LBracket,
                        ']' => TokenKind::RBracket,
                        ',' => TokenKind::Comma,
                        ';' => TokenKind::Semi,
                        '=' => TokenKind::Eq,
                        ':' => TokenKind::Colon,
                        other => return Err(self.error(pos, format!("unexpected character {other:?}"))),
                    };
                    self.bump();
                    kind
                }
            };
            tokens.push(Token { kind, pos, span: start..self.off });
        }
    }

    /// Skips whitespace and both comment styles.
    fn skip_trivia(&mut self) -> Result<(), IdlError> {
        loop {
            match (self.peek(), self.peek2()) {
                (Some(c), _) if c.is_whitespace() => {
                    self.bump();
                }
                (Some('/'), Some('/')) => {
                    while let Some(c) = self.bump() {
                        if c == '\n' {
                            break;
                        }
                    }
                }
                (Some('/'), Some('*')) => {
                    let pos = self.pos();
                    self.bump();
                    self.bump();
                    loop {
                        match self.bump() {
                            Some('*') if self.peek() == Some('/') => {
                                self.bump();
                                break;
                            }
                            Some(_) => {}
                            None => return Err(self.error(pos, "unterminated comment")),
                        }
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    /// True at `+`, `-` or `.` that begins a number (`-1`, `+.5`, `.5`).
    fn starts_number_after_sign(&self) -> bool {
        let mut it = self.src[self.off..].chars();
        let first = it.next();
        let mut next = it.next();
        if matches!(first, Some('+' | '-')) && next == Some('.') {
            next = it.next();
        }
        match first {
            Some('.') => next.is_some_and(|c| c.is_ascii_digit()),
            Some('+' | '-') => next.is_some_and(|c| c.is_ascii_digit()),
            _ => false,
        }
    }

    fn word(&mut self) -> TokenKind {
        let start = self.off;
        while self.peek().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            self.bump();
        }
        let word = &self.src[start..self.off];
        match Keyword::from_word(word) {
            Some(k) => TokenKind::Keyword(k),
            None => TokenKind::Ident(word.to_owned()),
        }
    }

    /// Lexes an integer or float literal, with optional sign.
    fn number(&mut self, pos: Pos) -> Result<TokenKind, IdlError> {
        let start = self.off;
        let negative = match self.peek() {
            Some('-') => {
                self.bump();
                true
            }
            Some('+') => {
                self.bump();
                false
            }
            _ => false,
        };
        let digits_start = self.off;

        // Hex: 0x...
        if self.peek() == Some('0') && matches!(self.peek2(), Some('x' | 'X')) {
            self.bump();
            self.bump();
            let hex_start = self.off;
            while self.peek().is_some_and(|c| c.is_ascii_hexdigit()) {
                self.bump();
            }
            let hex = &self.src[hex_start..self.off];
            self.reject_trailing_word(pos, start)?;
            if hex.is_empty() {
                return Err(self.error(pos, "hex literal needs at least one digit after '0x'"));
            }
            let magnitude = u64::from_str_radix(hex, 16).ok();
            return self.signed_int(pos, start, negative, magnitude);
        }

        let mut is_float = false;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.bump();
        }
        if self.peek() == Some('.') {
            is_float = true;
            self.bump();
            while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                self.bump();
            }
        }
        if matches!(self.peek(), Some('e' | 'E')) {
            let after = self.src[self.off..].chars().nth(1);
            let after2 = self.src[self.off..].chars().nth(2);
            let has_exp = after.is_some_and(|c| c.is_ascii_digit())
                || (matches!(after, Some('+' | '-')) && after2.is_some_and(|c| c.is_ascii_digit()));
            if has_exp {
                is_float = true;
                self.bump();
                if matches!(self.peek(), Some('+' | '-')) {
                    self.bump();
                }
                while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    self.bump();
                }
            }
        }
        let body_end = self.off;
        if is_float && matches!(self.peek(), Some('f' | 'F')) {
            self.bump();
        }
        self.reject_trailing_word(pos, start)?;

        if is_float {
            let text = &self.src[start..body_end];
            let value: f64 = text.parse().map_err(|_| self.error(pos, format!("invalid float literal '{text}'")))?;
            if !value.is_finite() {
                return Err(self.error(pos, format!("float literal '{text}' is too large")));
            }
            return Ok(TokenKind::Float(value));
        }

        let digits = &self.src[digits_start..body_end];
        // Upstream parses with strtoll(base 0): a leading 0 means octal.
        let magnitude = if digits.len() > 1 && digits.starts_with('0') {
            if !digits.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
                return Err(self.error(pos, format!("invalid octal literal '{digits}'")));
            }
            u64::from_str_radix(&digits[1..], 8).ok()
        } else {
            digits.parse::<u64>().ok()
        };
        self.signed_int(pos, start, negative, magnitude)
    }

    /// Applies the sign and checks the value fits `i64`.
    fn signed_int(
        &self,
        pos: Pos,
        start: usize,
        negative: bool,
        magnitude: Option<u64>,
    ) -> Result<TokenKind, IdlError> {
        let value = magnitude.and_then(|m| if negative { 0i64.checked_sub_unsigned(m) } else { i64::try_from(m).ok() });
        match value {
            Some(v) => Ok(TokenKind::Int(v)),
            None => Err(self.error(pos, format!("integer literal '{}' is out of range", &self.src[start..self.off]))),
        }
    }

    /// `12abc` is one malformed token, not a number followed by a name.
    fn reject_trailing_word(&mut self, pos: Pos, start: usize) -> Result<(), IdlError> {
        if self.peek().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.') {
            while self.peek().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.') {
                self.bump();
            }
            return Err(self.error(pos, format!("invalid number literal '{}'", &self.src[start..self.off])));
        }
        Ok(())
    }

    /// Lexes a double-quoted string; escapes `\" \\ \' \n \t \r` are processed.
    fn string(&mut self, pos: Pos) -> Result<TokenKind, IdlError> {
        self.bump(); // opening quote
        let mut value = String::new();
        loop {
            let here = self.pos();
            match self.bump() {
                None => return Err(self.error(pos, "unterminated string literal")),
                Some('\n') => return Err(self.error(here, "newline in string literal (missing closing '\"'?)")),
                Some('"') => return Ok(TokenKind::Str(value)),
                Some('\\') => {
                    let escaped = match self.bump() {
                        Some('"') => '"',
                        Some('\\') => '\\',
                        Some('\'') => '\'',
                        Some('n') => '\n',
                        Some('t') => '\t',
                        Some('r') => '\r',
                        None => return Err(self.error(pos, "unterminated string literal")),
                        Some(other) => return Err(self.error(here, format!("unknown escape sequence '\\{other}'"))),
                    };
                    value.push(escaped);
                }
                Some(c) => value.push(c),
            }
        }
    }

    /// `#include`, the only directive.
    fn directive(&mut self, pos: Pos) -> Result<TokenKind, IdlError> {
        self.bump(); // '#'
        let start = self.off;
        while self.peek().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            self.bump();
        }
        match &self.src[start..self.off] {
            "include" => Ok(TokenKind::Include),
            "" => Err(self.error(pos, "unexpected character '#'")),
            other => Err(self.error(pos, format!("unknown directive '#{other}'"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<TokenKind> {
        tokenize(Path::new("t.tars"), src).expect("lexes").into_iter().map(|t| t.kind).collect()
    }

    fn err(src: &str) -> String {
        tokenize(Path::new("t.tars"), src).expect_err("must fail").to_string()
    }

    #[test]
    fn numbers() {
        assert_eq!(
            kinds("0 17 -3 +4 0x1F -0x10 010 1.5 -2.0 1e3 1.5f .5 2. 1E-2 -9223372036854775808"),
            vec![
                TokenKind::Int(0),
                TokenKind::Int(17),
                TokenKind::Int(-3),
                TokenKind::Int(4),
                TokenKind::Int(31),
                TokenKind::Int(-16),
                TokenKind::Int(8),
                TokenKind::Float(1.5),
                TokenKind::Float(-2.0),
                TokenKind::Float(1000.0),
                TokenKind::Float(1.5),
                TokenKind::Float(0.5),
                TokenKind::Float(2.0),
                TokenKind::Float(0.01),
                TokenKind::Int(i64::MIN),
                TokenKind::Eof,
            ]
        );
    }

    #[test]
    fn bad_numbers() {
        assert_eq!(err("9223372036854775808"), "t.tars:1:1: integer literal '9223372036854775808' is out of range");
        assert_eq!(err("  12abc"), "t.tars:1:3: invalid number literal '12abc'");
        assert_eq!(err("0x"), "t.tars:1:1: hex literal needs at least one digit after '0x'");
        assert_eq!(err("09"), "t.tars:1:1: invalid octal literal '09'");
        assert_eq!(err("1e999"), "t.tars:1:1: float literal '1e999' is too large");
        assert_eq!(err("1.2.3"), "t.tars:1:1: invalid number literal '1.2.3'");
    }

    #[test]
    fn shift_is_two_gt() {
        assert_eq!(kinds(">>"), vec![TokenKind::Gt, TokenKind::Gt, TokenKind::Eof]);
    }

    #[test]
    fn positions_count_lines_and_chars() {
        let toks = tokenize(Path::new("t.tars"), "a\n  /* é\n */ b // c\n\t\"é\" ::").expect("lexes");
        let pos: Vec<(u32, u32)> = toks.iter().map(|t| (t.pos.line, t.pos.col)).collect();
        assert_eq!(pos, vec![(1, 1), (3, 5), (4, 2), (4, 6), (4, 8)]);
    }

    #[test]
    fn strings_and_escapes() {
        assert_eq!(kinds(r#""a\"b\\c\nd\te""#), vec![TokenKind::Str("a\"b\\c\nd\te".into()), TokenKind::Eof]);
        assert_eq!(err("x \"abc"), "t.tars:1:3: unterminated string literal");
        assert_eq!(err("\"a\\qb\""), "t.tars:1:3: unknown escape sequence '\\q'");
        assert_eq!(err("\"ab\ncd\""), "t.tars:1:4: newline in string literal (missing closing '\"'?)");
    }

    #[test]
    fn comments() {
        assert_eq!(kinds("// x\n/* y\n z */ a /**/"), vec![TokenKind::Ident("a".into()), TokenKind::Eof]);
        assert_eq!(err("a\n  /* never closed"), "t.tars:2:3: unterminated comment");
    }

    #[test]
    fn directives_and_chars() {
        assert_eq!(
            kinds("#include \"a.tars\""),
            vec![TokenKind::Include, TokenKind::Str("a.tars".into()), TokenKind::Eof]
        );
        assert_eq!(err("#define X"), "t.tars:1:1: unknown directive '#define'");
        assert_eq!(err("a @"), "t.tars:1:3: unexpected character '@'");
        assert_eq!(err("a - b"), "t.tars:1:3: unexpected character '-'");
    }

    #[test]
    fn keywords_and_punct() {
        assert_eq!(
            kinds("module Foo{}()<>[],;=: ::unsigned"),
            vec![
                TokenKind::Keyword(Keyword::Module),
                TokenKind::Ident("Foo".into()),
                TokenKind::LBrace,
                TokenKind::RBrace,
                TokenKind::LParen,
                TokenKind::RParen,
                TokenKind::Lt,
                TokenKind::Gt,
                TokenKind::LBracket,
                TokenKind::RBracket,
                TokenKind::Comma,
                TokenKind::Semi,
                TokenKind::Eq,
                TokenKind::Colon,
                TokenKind::Scope,
                TokenKind::Keyword(Keyword::Unsigned),
                TokenKind::Eof,
            ]
        );
    }
}
