//! Parser: `.tars` text → [`ast::File`].
//!
//! A hand-written recursive-descent parser over the tokens of [`crate::lexer`], following
//! upstream `tars.y`: every definition ends with `;` (`struct S { ... };`), struct members are
//! `TAG require|optional TYPE NAME [= default];`, and modules are top level only. The only
//! recursion is into nested types, capped at [`MAX_TYPE_DEPTH`], so no input can overflow the
//! stack.
//!
//! Checks that need only the token at hand (tag range, array size, `unsigned` usage, keywords
//! used as names) happen here; checks that need the whole program (duplicate names, unknown
//! types, defaults) happen in [`crate::resolve`].

use std::path::Path;

use crate::ast::{
    Const, Enum, Enumerator, File, Include, Interface, Item, Key, Literal, Member, Module, Operation, Param, Pos,
    Struct, Type,
};
use crate::lexer::{tokenize, Keyword, Token, TokenKind};
use crate::IdlError;

/// How deeply `vector<...>` / `map<...>` may nest. Real IDL never comes close; the cap keeps
/// hostile input from exhausting the stack here and in later stages.
pub const MAX_TYPE_DEPTH: usize = 64;

/// Largest fixed array length (`byte m[N]`), as upstream `checkSize`.
pub const MAX_ARRAY_LEN: i64 = 1024 * 1024;

/// Largest struct member tag.
pub const MAX_TAG: i64 = 255;

/// Parses one `.tars` file. `path` is recorded in the AST and used in error messages.
pub fn parse(path: &Path, src: &str) -> Result<File, IdlError> {
    let tokens = tokenize(path, src)?;
    let mut parser = Parser { path, src, tokens, next: 0 };
    parser.file()
}

/// Token cursor. The token list always ends with `Eof`, which `bump` never moves past.
struct Parser<'a> {
    path: &'a Path,
    src: &'a str,
    tokens: Vec<Token>,
    next: usize,
}

/// `true` / `false` literal helper.
fn bool_literal(kind: &TokenKind) -> Option<bool> {
    match kind {
        TokenKind::Keyword(Keyword::True) => Some(true),
        TokenKind::Keyword(Keyword::False) => Some(false),
        _ => None,
    }
}

impl Parser<'_> {
    // ----- cursor -------------------------------------------------------------------------

    fn peek(&self) -> &Token {
        let last = self.tokens.len().saturating_sub(1);
        &self.tokens[self.next.min(last)]
    }

    fn peek_kind(&self) -> &TokenKind {
        &self.peek().kind
    }

    /// Returns the current token and advances (but never past `Eof`).
    fn bump(&mut self) -> Token {
        let tok = self.peek().clone();
        if tok.kind != TokenKind::Eof {
            self.next += 1;
        }
        tok
    }

    fn at(&self, kind: &TokenKind) -> bool {
        self.peek_kind() == kind
    }

    fn at_keyword(&self, kw: Keyword) -> bool {
        self.at(&TokenKind::Keyword(kw))
    }

    fn error(&self, pos: Pos, msg: impl Into<String>) -> IdlError {
        IdlError::at(self.path, pos, msg)
    }

    /// "expected X, found Y" at the current token.
    fn unexpected(&self, expected: &str) -> IdlError {
        let tok = self.peek();
        self.error(tok.pos, format!("expected {expected}, found {}", tok.describe(self.src)))
    }

    /// Consumes `kind` or fails with "expected `what`, found ...".
    fn expect(&mut self, kind: &TokenKind, what: &str) -> Result<Token, IdlError> {
        if self.at(kind) {
            Ok(self.bump())
        } else {
            Err(self.unexpected(what))
        }
    }

    /// Consumes a name. A keyword in its place gets a dedicated message, as upstream does.
    fn ident(&mut self, what: &str) -> Result<(String, Pos), IdlError> {
        let tok = self.peek().clone();
        match tok.kind {
            TokenKind::Ident(name) => {
                self.bump();
                Ok((name, tok.pos))
            }
            TokenKind::Keyword(kw) => Err(self.error(tok.pos, format!("keyword '{kw}' cannot be used as {what}"))),
            _ => Err(self.unexpected(what)),
        }
    }

    // ----- file and module ----------------------------------------------------------------

    fn file(&mut self) -> Result<File, IdlError> {
        let mut file = File { path: self.path.to_path_buf(), includes: Vec::new(), modules: Vec::new() };
        loop {
            match self.peek_kind() {
                TokenKind::Eof => return Ok(file),
                TokenKind::Include => file.includes.push(self.include()?),
                TokenKind::Keyword(Keyword::Module) => file.modules.push(self.module()?),
                TokenKind::Keyword(
                    Keyword::Struct | Keyword::Enum | Keyword::Const | Keyword::Interface | Keyword::Key,
                ) => {
                    let tok = self.peek();
                    return Err(
                        self.error(tok.pos, format!("{} must be defined inside a module", tok.describe(self.src)))
                    );
                }
                _ => return Err(self.unexpected("'module' or '#include'")),
            }
        }
    }

    fn include(&mut self) -> Result<Include, IdlError> {
        let hash = self.bump();
        let tok = self.peek().clone();
        match tok.kind {
            TokenKind::Str(path) => {
                self.bump();
                if path.is_empty() {
                    return Err(self.error(tok.pos, "empty #include path"));
                }
                Ok(Include { path, pos: hash.pos })
            }
            _ => Err(self.unexpected("a quoted file name after '#include'")),
        }
    }

    fn module(&mut self) -> Result<Module, IdlError> {
        self.bump(); // module
        let (name, pos) = self.ident("a module name")?;
        self.expect(&TokenKind::LBrace, "'{' after module name")?;
        let mut items = Vec::new();
        loop {
            let tok = self.peek().clone();
            let (item, what) = match tok.kind {
                TokenKind::RBrace => break,
                TokenKind::Keyword(Keyword::Struct) => (Item::Struct(self.structure()?), "struct"),
                TokenKind::Keyword(Keyword::Enum) => (Item::Enum(self.enumeration()?), "enum"),
                TokenKind::Keyword(Keyword::Const) => (Item::Const(self.constant()?), "const"),
                TokenKind::Keyword(Keyword::Interface) => (Item::Interface(self.interface()?), "interface"),
                TokenKind::Keyword(Keyword::Key) => (Item::Key(self.key()?), "key"),
                TokenKind::Keyword(Keyword::Module) => return Err(self.error(tok.pos, "modules cannot be nested")),
                TokenKind::Include => return Err(self.error(tok.pos, "#include must be outside modules")),
                _ => return Err(self.unexpected("'struct', 'enum', 'const', 'interface', 'key' or '}' in module")),
            };
            self.expect(&TokenKind::Semi, &format!("';' after {what} definition"))?;
            items.push(item);
        }
        self.bump(); // }
        self.expect(&TokenKind::Semi, "';' after module")?;
        Ok(Module { name, items, pos })
    }

    // ----- definitions --------------------------------------------------------------------

    fn structure(&mut self) -> Result<Struct, IdlError> {
        self.bump(); // struct
        let (name, pos) = self.ident("a struct name")?;
        self.expect(&TokenKind::LBrace, "'{' after struct name")?;
        let mut members = Vec::new();
        while !self.at(&TokenKind::RBrace) {
            members.push(self.member()?);
            self.expect(&TokenKind::Semi, "';' after member")?;
        }
        self.bump(); // }
        if members.is_empty() {
            return Err(self.error(pos, format!("struct '{name}' must have at least one member")));
        }
        Ok(Struct { name, members, pos })
    }

    /// `TAG require|optional TYPE NAME [\[N\]] [= default]`
    fn member(&mut self) -> Result<Member, IdlError> {
        let tok = self.peek().clone();
        let tag = match tok.kind {
            TokenKind::Int(tag) => {
                self.bump();
                if !(0..=MAX_TAG).contains(&tag) {
                    return Err(self.error(tok.pos, format!("tag {tag} is out of range (0..={MAX_TAG})")));
                }
                u32::try_from(tag).map_err(|_| self.error(tok.pos, "invalid tag"))?
            }
            TokenKind::Keyword(Keyword::Require | Keyword::Optional) => {
                return Err(self.error(tok.pos, format!("struct member needs a tag before {}", tok.describe(self.src))))
            }
            _ => return Err(self.unexpected("a member tag (integer) or '}'")),
        };
        let required = match self.peek_kind() {
            TokenKind::Keyword(Keyword::Require) => true,
            TokenKind::Keyword(Keyword::Optional) => false,
            _ => return Err(self.unexpected("'require' or 'optional' after tag")),
        };
        self.bump();
        let ty = self.ty()?;
        let (name, pos) = self.ident("a member name")?;
        let array = if self.at(&TokenKind::LBracket) {
            self.bump();
            let tok = self.peek().clone();
            let len = match tok.kind {
                TokenKind::Int(n) if (1..=MAX_ARRAY_LEN).contains(&n) => {
                    u32::try_from(n).map_err(|_| self.error(tok.pos, "invalid array size"))?
                }
                TokenKind::Int(n) => {
                    return Err(self.error(tok.pos, format!("array size {n} is out of range (1..={MAX_ARRAY_LEN})")))
                }
                _ => return Err(self.unexpected("an array size")),
            };
            self.bump();
            self.expect(&TokenKind::RBracket, "']' after array size")?;
            Some(len)
        } else {
            None
        };
        let default = if self.at(&TokenKind::Eq) {
            self.bump();
            Some(self.literal()?)
        } else {
            None
        };
        Ok(Member { tag, required, ty, name, default, array, pos })
    }

    /// `enum Name { A, B = 5, C, };` (a trailing comma is allowed, as in upstream).
    fn enumeration(&mut self) -> Result<Enum, IdlError> {
        self.bump(); // enum
        let (name, pos) = self.ident("an enum name")?;
        self.expect(&TokenKind::LBrace, "'{' after enum name")?;
        let mut variants = Vec::new();
        while !self.at(&TokenKind::RBrace) {
            let (vname, vpos) = self.ident("an enumerator name")?;
            let value = if self.at(&TokenKind::Eq) {
                self.bump();
                Some(self.literal()?)
            } else {
                None
            };
            variants.push(Enumerator { name: vname, value, pos: vpos });
            if self.at(&TokenKind::Comma) {
                self.bump();
            } else if !self.at(&TokenKind::RBrace) {
                return Err(self.unexpected("',' or '}' after enumerator"));
            }
        }
        self.bump(); // }
        if variants.is_empty() {
            return Err(self.error(pos, format!("enum '{name}' must have at least one enumerator")));
        }
        Ok(Enum { name, variants, pos })
    }

    /// `const TYPE NAME = literal`
    fn constant(&mut self) -> Result<Const, IdlError> {
        self.bump(); // const
        let ty = self.ty()?;
        let (name, pos) = self.ident("a constant name")?;
        self.expect(&TokenKind::Eq, "'=' after constant name")?;
        let value = self.literal()?;
        Ok(Const { ty, name, value, pos })
    }

    /// `key[Struct, m1, m2]`
    fn key(&mut self) -> Result<Key, IdlError> {
        let kw = self.bump(); // key
        self.expect(&TokenKind::LBracket, "'[' after 'key'")?;
        let (scope, name, _) = self.scoped_name("a struct name")?;
        let struct_name = match scope {
            Some(scope) => format!("{scope}::{name}"),
            None => name,
        };
        self.expect(&TokenKind::Comma, "',' after the struct name in key[...]")?;
        let mut members = vec![self.ident("a member name")?.0];
        while self.at(&TokenKind::Comma) {
            self.bump();
            members.push(self.ident("a member name")?.0);
        }
        self.expect(&TokenKind::RBracket, "',' or ']' in key[...]")?;
        Ok(Key { struct_name, members, pos: kw.pos })
    }

    fn interface(&mut self) -> Result<Interface, IdlError> {
        self.bump(); // interface
        let (name, pos) = self.ident("an interface name")?;
        self.expect(&TokenKind::LBrace, "'{' after interface name")?;
        let mut operations = Vec::new();
        while !self.at(&TokenKind::RBrace) {
            operations.push(self.operation()?);
            self.expect(&TokenKind::Semi, "';' after operation")?;
        }
        self.bump(); // }
        Ok(Interface { name, operations, pos })
    }

    /// `RET name(params)`
    fn operation(&mut self) -> Result<Operation, IdlError> {
        let ret = if self.at_keyword(Keyword::Void) {
            self.bump();
            None
        } else {
            Some(self.ty_described("a return type, 'void' or '}'")?)
        };
        let (name, pos) = self.ident("an operation name")?;
        self.expect(&TokenKind::LParen, "'(' after operation name")?;
        let mut params = Vec::new();
        if !self.at(&TokenKind::RParen) {
            loop {
                params.push(self.param()?);
                if self.at(&TokenKind::Comma) {
                    self.bump();
                } else {
                    break;
                }
            }
        }
        self.expect(&TokenKind::RParen, "',' or ')' in parameter list")?;
        Ok(Operation { ret, name, params, pos })
    }

    /// `[out | routekey] TYPE NAME`
    fn param(&mut self) -> Result<Param, IdlError> {
        let mut out = false;
        let mut routekey = false;
        loop {
            let tok = self.peek().clone();
            match tok.kind {
                TokenKind::Keyword(Keyword::Out) if !out => out = true,
                TokenKind::Keyword(Keyword::RouteKey) if !routekey => routekey = true,
                TokenKind::Keyword(Keyword::Out | Keyword::RouteKey) => {
                    return Err(self.error(tok.pos, format!("{} written twice", tok.describe(self.src))))
                }
                _ => break,
            }
            self.bump();
            if out && routekey {
                return Err(self.error(tok.pos, "a parameter cannot be both 'out' and 'routekey'"));
            }
        }
        let ty = self.ty_described("a parameter type")?;
        let (name, pos) = self.ident("a parameter name")?;
        Ok(Param { out, routekey, ty, name, pos })
    }

    // ----- types and literals -------------------------------------------------------------

    fn ty(&mut self) -> Result<Type, IdlError> {
        self.ty_described("a type")
    }

    fn ty_described(&mut self, what: &str) -> Result<Type, IdlError> {
        self.ty_at_depth(what, 0)
    }

    fn ty_at_depth(&mut self, what: &str, depth: usize) -> Result<Type, IdlError> {
        let tok = self.peek().clone();
        if depth >= MAX_TYPE_DEPTH {
            return Err(self.error(tok.pos, format!("types are nested too deeply (more than {MAX_TYPE_DEPTH} levels)")));
        }
        let simple = match &tok.kind {
            TokenKind::Keyword(Keyword::Bool) => Some(Type::Bool),
            TokenKind::Keyword(Keyword::Byte) => Some(Type::Byte { unsigned: false }),
            TokenKind::Keyword(Keyword::Short) => Some(Type::Short { unsigned: false }),
            TokenKind::Keyword(Keyword::Int) => Some(Type::Int { unsigned: false }),
            TokenKind::Keyword(Keyword::Long) => Some(Type::Long),
            TokenKind::Keyword(Keyword::Float) => Some(Type::Float),
            TokenKind::Keyword(Keyword::Double) => Some(Type::Double),
            TokenKind::Keyword(Keyword::String) => Some(Type::String),
            _ => None,
        };
        if let Some(ty) = simple {
            self.bump();
            return Ok(ty);
        }
        match tok.kind {
            TokenKind::Keyword(Keyword::Unsigned) => {
                self.bump();
                let next = self.peek().clone();
                let ty = match next.kind {
                    TokenKind::Keyword(Keyword::Byte) => Type::Byte { unsigned: true },
                    TokenKind::Keyword(Keyword::Short) => Type::Short { unsigned: true },
                    TokenKind::Keyword(Keyword::Int) => Type::Int { unsigned: true },
                    _ => {
                        return Err(self.error(
                            next.pos,
                            format!("'unsigned' applies only to byte, short or int, found {}", next.describe(self.src)),
                        ))
                    }
                };
                self.bump();
                Ok(ty)
            }
            TokenKind::Keyword(Keyword::Vector) => {
                self.bump();
                self.expect(&TokenKind::Lt, "'<' after 'vector'")?;
                let elem = self.ty_at_depth("an element type", depth + 1)?;
                self.expect(&TokenKind::Gt, "'>' to close 'vector<'")?;
                Ok(Type::Vector(Box::new(elem)))
            }
            TokenKind::Keyword(Keyword::Map) => {
                self.bump();
                self.expect(&TokenKind::Lt, "'<' after 'map'")?;
                let key = self.ty_at_depth("a key type", depth + 1)?;
                self.expect(&TokenKind::Comma, "',' after map key type")?;
                let value = self.ty_at_depth("a value type", depth + 1)?;
                self.expect(&TokenKind::Gt, "'>' to close 'map<'")?;
                Ok(Type::Map(Box::new(key), Box::new(value)))
            }
            TokenKind::Ident(_) => {
                let (module, name, pos) = self.scoped_name("a type")?;
                if module.as_deref().is_some_and(|m| m.contains("::")) {
                    return Err(self.error(pos, "a type name has at most one qualifier ('module::Type')"));
                }
                Ok(Type::Named { module, name, pos })
            }
            _ => Err(self.unexpected(what)),
        }
    }

    /// `a`, `a::b`, `a::b::c`: returns (everything before the last `::`, last part, start).
    fn scoped_name(&mut self, what: &str) -> Result<(Option<String>, String, Pos), IdlError> {
        let (first, pos) = self.ident(what)?;
        let mut parts = vec![first];
        while self.at(&TokenKind::Scope) {
            self.bump();
            parts.push(self.ident("a name after '::'")?.0);
        }
        let last = parts.pop().unwrap_or_default();
        let scope = if parts.is_empty() { None } else { Some(parts.join("::")) };
        Ok((scope, last, pos))
    }

    /// A default or constant value.
    fn literal(&mut self) -> Result<Literal, IdlError> {
        let tok = self.peek().clone();
        if let Some(b) = bool_literal(&tok.kind) {
            self.bump();
            return Ok(Literal::Bool(b));
        }
        let lit = match tok.kind {
            TokenKind::Int(v) => Literal::Int(v),
            TokenKind::Float(v) => Literal::Float(v),
            TokenKind::Str(s) => Literal::Str(s),
            TokenKind::Ident(_) => {
                let (scope, name, _) = self.scoped_name("a value")?;
                return Ok(Literal::Ident { scope, name });
            }
            _ => return Err(self.unexpected("a value (number, string, true, false or enumerator)")),
        };
        self.bump();
        Ok(lit)
    }
}
