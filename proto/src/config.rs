//! The TARS config file format (`TC_Config`): parse, query, edit, serialise and merge.
//!
//! ```text
//! <tars>
//!   <application>
//!     <server>
//!       app=tars
//!       local=tcp -h 127.0.0.1 -p 17897 -t 3000
//!     </server>
//!   </application>
//! </tars>
//! ```
//!
//! # Grammar
//!
//! - Line based; every line is trimmed of space, `\r`, `\n` and `\t`. Empty lines are skipped
//!   and a line whose first character is `#` is a comment. There are no inline comments:
//!   `a=1 # x` has the value `1 # x`.
//! - `<name>` opens the sub-domain `name` (the trimmed text up to the first `>`; the rest of the
//!   line is ignored) of the innermost open domain, or re-opens it if it exists.
//! - `</name>` closes the innermost open domain, whose name must be exactly `name`. At the end
//!   of the input every domain must be closed.
//! - Any other line is a parameter, split at the first unescaped `=` into a key and a value,
//!   each trimmed and then unescaped. A line without `=` is a key with an empty value. The
//!   escapes are `\\`, `\r`, `\n`, `\t` and `\=`; any other backslash is an error.
//! - A key repeated in one domain keeps its last value and moves to the end of the key order.
//!
//! # Paths
//!
//! `/a/b<key>` names the parameter `key` of domain `b` inside top-level domain `a`; `/a/b`
//! names the domain. Empty segments are dropped, so `/a/b/<key>` is `/a/b<key>` and `/<key>`
//! is a parameter of the root.
//!
//! # Serialisation and merging
//!
//! [`Config::to_text`] writes each top-level domain, in alphabetical order, as `<name>`, its
//! parameters in key order (`key=value`, or `key` when the value is empty), its sub-domains in
//! creation order and `</name>`, indenting two spaces per level and re-escaping keys and values.
//! Parameters of the root itself are not written. [`Config::join`] merges textually, exactly as
//! `TC_Config::joinConfig`: both configs are written out, concatenated and parsed again.
//!
//! # Where this differs from the C++ `TC_Config`
//!
//! Only where the C++ code cannot read back its own output:
//! - The split at `=` is escape-aware (`a\\=b` is key `a\`, value `b`), and a key-only line is
//!   unescaped like any other key.
//! - A parameter whose key and value are both empty is written as `=` (C++ writes a blank line,
//!   which loses it).
//! - Domain names are written literally, and a name that could not be read back (one containing
//!   `<`, `>`, `\`, `=`, a tab or a line break, starting with `/`, or with surrounding spaces) makes
//!   [`Config::to_text`] fail; C++ would escape it into a different name.
//! - Inputs are bounded: [`MAX_DEPTH`] nested domains and [`MAX_LINE_LEN`] bytes per line.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

/// Most domains that may be open at once (the root does not count).
pub const MAX_DEPTH: usize = 64;

/// Longest line [`Config::parse`] accepts, in bytes, before trimming.
pub const MAX_LINE_LEN: usize = 64 * 1024;

/// The characters a line, key and value are trimmed of.
const TRIM: [char; 4] = [' ', '\r', '\n', '\t'];

/// What is wrong with a line of config text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseErrorKind {
    /// A line starting with `<` that has no `>`.
    #[error("tag has no closing `>`")]
    UnterminatedTag,
    /// `</close>` while the innermost open domain is `open`.
    #[error("`</{close}>` does not match the open domain `<{open}>`")]
    MismatchedClose {
        /// The innermost open domain.
        open: String,
        /// The name in the closing tag.
        close: String,
    },
    /// `</close>` with no domain open.
    #[error("`</{close}>` closes no open domain")]
    CloseWithoutOpen {
        /// The name in the closing tag.
        close: String,
    },
    /// A domain still open at the end of the input; the error's line is where it was opened.
    #[error("domain `<{0}>` is never closed")]
    Unclosed(String),
    /// A backslash followed by a character other than `\`, `r`, `n`, `t` or `=`.
    #[error("invalid escape `\\{0}`")]
    InvalidEscape(char),
    /// A key or value ending in a lone backslash.
    #[error("key or value ends in a lone `\\`")]
    TrailingBackslash,
    /// More than [`MAX_DEPTH`] domains open at once.
    #[error("domains nested deeper than {0}")]
    TooDeep(usize),
    /// A line longer than the limit.
    #[error("line of {len} bytes exceeds the limit of {limit}")]
    LineTooLong {
        /// The line's length in bytes.
        len: usize,
        /// The limit.
        limit: usize,
    },
}

/// A setting's value is not what it should be (see [`Config::number`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {value:?} is not {expected}")]
pub struct SettingError {
    /// The key's path.
    pub key: &'static str,
    /// Its value.
    pub value: String,
    /// What it should be.
    pub expected: &'static str,
}

/// An error from parsing, querying, editing or serialising a [`Config`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The text is not a valid config; `line` counts from 1.
    #[error("config line {line}: {kind}")]
    Parse {
        /// The line number, from 1.
        line: usize,
        /// What is wrong with it.
        kind: ParseErrorKind,
    },
    /// A path that is well formed but names nothing.
    #[error("config path `{0}` not found")]
    NotFound(String),
    /// A path that is not of the form `/a/b<key>` (or `/a/b` for a domain).
    #[error("invalid config path `{path}`: {reason}")]
    InvalidPath {
        /// The path as given.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A name, key or value that cannot be written as config text.
    #[error("cannot write {what} `{text}`: {reason}")]
    Unwritable {
        /// `"domain name"`, `"key"` or `"value"`.
        what: &'static str,
        /// The offending text.
        text: String,
        /// Why it cannot be written.
        reason: &'static str,
    },
    /// An edit that would nest domains deeper than [`MAX_DEPTH`].
    #[error("domains nested deeper than {0}")]
    TooDeep(usize),
}

impl ConfigError {
    /// The line a parse error is on, counting from 1.
    pub fn line(&self) -> Option<usize> {
        match self {
            ConfigError::Parse { line, .. } => Some(*line),
            _ => None,
        }
    }
}

/// Parameters of one domain: a map that remembers the order keys were last set in.
#[derive(Clone, Default)]
struct Params {
    next: u64,
    values: HashMap<String, (u64, String)>,
    order: BTreeMap<u64, String>,
}

impl Params {
    /// Sets `key`; an existing key gets the new value and moves to the end.
    fn set(&mut self, key: String, value: String) {
        let seq = self.next;
        self.next += 1;
        if let Some((old, _)) = self.values.insert(key.clone(), (seq, value)) {
            self.order.remove(&old);
        }
        self.order.insert(seq, key);
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(|(_, v)| v.as_str())
    }

    fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.order.values().filter_map(|k| self.values.get(k).map(|(_, v)| (k.as_str(), v.as_str())))
    }
}

/// A domain: its name, parameters and sub-domains in creation order.
#[derive(Clone, Default)]
struct Domain {
    name: String,
    params: Params,
    children: Vec<Domain>,
    index: HashMap<String, usize>,
}

impl Domain {
    fn named(name: &str) -> Self {
        Domain { name: name.to_owned(), ..Domain::default() }
    }

    /// The index of sub-domain `name`, created if missing.
    fn open(&mut self, name: &str) -> usize {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        let i = self.children.len();
        self.children.push(Domain::named(name));
        self.index.insert(name.to_owned(), i);
        i
    }

    fn child(&self, name: &str) -> Option<&Domain> {
        self.index.get(name).and_then(|&i| self.children.get(i))
    }

    fn find(&self, segments: &[&str]) -> Option<&Domain> {
        segments.iter().try_fold(self, |d, s| d.child(s))
    }

    /// The domain at `segments`, creating what is missing.
    fn find_or_create(&mut self, segments: &[&str]) -> &mut Domain {
        let mut d = self;
        for s in segments {
            let i = d.open(s);
            d = &mut d.children[i];
        }
        d
    }

    fn write(&self, level: usize, out: &mut String) -> Result<(), ConfigError> {
        check_name(&self.name)?;
        let indent = "  ".repeat(level);
        out.push_str(&indent);
        out.push('<');
        out.push_str(&self.name);
        out.push_str(">\n");
        for (k, v) in self.params.iter() {
            out.push_str(&indent);
            out.push_str("  ");
            escape_into("key", k, out)?;
            if !v.is_empty() || k.is_empty() {
                out.push('=');
                escape_into("value", v, out)?;
            }
            out.push('\n');
        }
        for c in &self.children {
            c.write(level + 1, out)?;
        }
        out.push_str(&indent);
        out.push_str("</");
        out.push_str(&self.name);
        out.push_str(">\n");
        Ok(())
    }
}

impl PartialEq for Domain {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.params.iter().eq(other.params.iter()) && self.children == other.children
    }
}

impl Eq for Domain {}

impl fmt::Debug for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Domain")
            .field("name", &self.name)
            .field("params", &self.params.iter().collect::<Vec<_>>())
            .field("domains", &self.children)
            .finish()
    }
}

/// A parsed config: the root domain, its parameters and its tree of sub-domains.
///
/// Equality compares names, parameters in key order and sub-domains in creation order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    root: Domain,
}

impl Config {
    /// An empty config.
    pub fn new() -> Self {
        Config::default()
    }

    /// Parses config text (see the [module docs](self) for the grammar).
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        parse_text(text, MAX_LINE_LEN)
    }

    /// Writes the config as text that [`Config::parse`] reads back.
    ///
    /// Top-level domains come out in alphabetical order, deeper ones in creation order, and
    /// parameters of the root are not written. Fails if a key or value contains `<` or `>`, or a
    /// domain name could not be read back (see the [module docs](self)).
    pub fn to_text(&self) -> Result<String, ConfigError> {
        let mut top: Vec<&Domain> = self.root.children.iter().collect();
        top.sort_by(|a, b| a.name.cmp(&b.name));
        let mut out = String::new();
        for d in top {
            d.write(0, &mut out)?;
        }
        Ok(out)
    }

    /// The value at the parameter path `/a/b<key>`, or `None` if it or its domain is missing or
    /// the path is malformed.
    pub fn get(&self, path: &str) -> Option<&str> {
        self.require(path).ok()
    }

    /// The value at `path`, or `default` if there is none.
    pub fn get_or<'a>(&'a self, path: &str, default: &'a str) -> &'a str {
        self.get(path).unwrap_or(default)
    }

    /// The whole number at `path`: `None` when the key is missing or blank, an error naming the
    /// key and `expected` (say, "a number of seconds") when it is not a number.
    pub fn number(&self, path: &'static str, expected: &'static str) -> Result<Option<u64>, SettingError> {
        match self.get(path).map(str::trim).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => {
                v.parse::<u64>().map(Some).map_err(|_| SettingError { key: path, value: v.to_owned(), expected })
            }
        }
    }

    /// The value at `path`; a missing one is an error naming the path (C++ `operator[]`).
    pub fn require(&self, path: &str) -> Result<&str, ConfigError> {
        let (segments, key) = param_path(path)?;
        self.root.find(&segments).and_then(|d| d.params.get(key)).ok_or_else(|| ConfigError::NotFound(path.to_owned()))
    }

    /// Whether the domain at `/a/b` exists (`/` is the root, which always does).
    pub fn has_domain(&self, path: &str) -> bool {
        domain_path(path).is_ok_and(|s| self.root.find(&s).is_some())
    }

    /// Names of the sub-domains of the domain at `/a/b`, in creation order; empty if it is
    /// missing or the path is malformed.
    pub fn domains(&self, path: &str) -> Vec<&str> {
        self.domain(path).map(|d| d.children.iter().map(|c| c.name.as_str()).collect()).unwrap_or_default()
    }

    /// The `(key, value)` pairs of the domain at `/a/b`, in key order; empty if it is missing or
    /// the path is malformed.
    pub fn params(&self, path: &str) -> Vec<(&str, &str)> {
        self.domain(path).map(|d| d.params.iter().collect()).unwrap_or_default()
    }

    /// Sets the parameter at `/a/b<key>`, creating missing domains. An existing key takes the
    /// new value and moves to the end of its domain's key order.
    pub fn set(&mut self, path: &str, value: &str) -> Result<(), ConfigError> {
        let (segments, key) = param_path(path)?;
        check_new_domains(path, &segments)?;
        self.root.find_or_create(&segments).params.set(key.to_owned(), value.to_owned());
        Ok(())
    }

    /// Creates the domain at `/a/b` and any missing parents; existing ones are left as they are.
    pub fn insert_domain(&mut self, path: &str) -> Result<(), ConfigError> {
        let segments = domain_path(path)?;
        check_new_domains(path, &segments)?;
        self.root.find_or_create(&segments);
        Ok(())
    }

    /// Merges `other` into `self`, as `TC_Config::joinConfig`: the result is what parsing the
    /// two configs' texts, concatenated, gives. With `update` the text is `self` then `other`, so
    /// `other`'s values win; without it the text is `other` then `self`, so `self`'s values win.
    ///
    /// Domains merge by name, keys are overridden one by one, nothing is ever deleted, and the
    /// root parameters of both configs are lost. On error `self` is unchanged.
    pub fn join(&mut self, other: &Config, update: bool) -> Result<(), ConfigError> {
        let (first, second) = if update { (&*self, other) } else { (other, &*self) };
        let mut text = first.to_text()?;
        text.push_str(&second.to_text()?);
        // Serialised lines may be longer than the input ones (indentation, escapes).
        *self = parse_text(&text, usize::MAX)?;
        Ok(())
    }

    fn domain(&self, path: &str) -> Option<&Domain> {
        domain_path(path).ok().and_then(|s| self.root.find(&s))
    }
}

fn parse_text(text: &str, max_line_len: usize) -> Result<Config, ConfigError> {
    // Open domains, outermost first: the domain (taken out of its parent), its index in the
    // parent, and the line that opened it.
    let mut root = Domain::default();
    let mut open: Vec<(Domain, usize, usize)> = Vec::new();
    let mut lineno = 0;
    for raw in text.split('\n') {
        lineno += 1;
        let err = |kind| ConfigError::Parse { line: lineno, kind };
        if raw.len() > max_line_len {
            return Err(err(ParseErrorKind::LineTooLong { len: raw.len(), limit: max_line_len }));
        }
        let line = raw.trim_matches(TRIM);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let depth = open.len();
        let top = match open.last_mut() {
            Some((d, _, _)) => d,
            None => &mut root,
        };
        if let Some(tag) = line.strip_prefix('<') {
            let end = tag.find('>').ok_or_else(|| err(ParseErrorKind::UnterminatedTag))?;
            let tag = &tag[..end];
            if let Some(close) = tag.strip_prefix('/') {
                let Some((d, i, _)) = open.pop() else {
                    return Err(err(ParseErrorKind::CloseWithoutOpen { close: close.to_owned() }));
                };
                if d.name != close {
                    return Err(err(ParseErrorKind::MismatchedClose { open: d.name, close: close.to_owned() }));
                }
                let parent = match open.last_mut() {
                    Some((p, _, _)) => p,
                    None => &mut root,
                };
                if let Some(slot) = parent.children.get_mut(i) {
                    *slot = d;
                }
            } else {
                if depth >= MAX_DEPTH {
                    return Err(err(ParseErrorKind::TooDeep(MAX_DEPTH)));
                }
                let i = top.open(tag.trim_matches(TRIM));
                let d = std::mem::take(&mut top.children[i]);
                open.push((d, i, lineno));
            }
        } else {
            let (key, value) = match split_param(line) {
                Some(pos) => (&line[..pos], &line[pos + 1..]),
                None => (line, ""),
            };
            let key = unescape(key.trim_matches(TRIM)).map_err(err)?;
            let value = unescape(value.trim_matches(TRIM)).map_err(err)?;
            top.params.set(key, value);
        }
    }
    match open.pop() {
        // Report the innermost unclosed domain, where it was opened.
        Some((d, _, line)) => Err(ConfigError::Parse { line, kind: ParseErrorKind::Unclosed(d.name) }),
        None => Ok(Config { root }),
    }
}

/// The byte offset of the first `=` not preceded by an escaping backslash.
fn split_param(line: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, b) in line.bytes().enumerate() {
        match b {
            _ if escaped => escaped = false,
            b'\\' => escaped = true,
            b'=' => return Some(i),
            _ => {}
        }
    }
    None
}

fn unescape(s: &str) -> Result<String, ParseErrorKind> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        out.push(match chars.next() {
            Some('\\') => '\\',
            Some('r') => '\r',
            Some('n') => '\n',
            Some('t') => '\t',
            Some('=') => '=',
            Some(other) => return Err(ParseErrorKind::InvalidEscape(other)),
            None => return Err(ParseErrorKind::TrailingBackslash),
        });
    }
    Ok(out)
}

/// `s` escaped as a value in config text (TC_Config's `reverse_parse`): `\`, CR, LF, tab and
/// `=` become `\\`, `\r`, `\n`, `\t`, `\=`; a text with `<` or `>` cannot be written.
pub fn escape_value(s: &str) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(s.len());
    escape_into("value", s, &mut out)?;
    Ok(out)
}

fn escape_into(what: &'static str, s: &str, out: &mut String) -> Result<(), ConfigError> {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '=' => out.push_str("\\="),
            '<' | '>' => {
                return Err(ConfigError::Unwritable { what, text: s.to_owned(), reason: "contains `<` or `>`" })
            }
            c => out.push(c),
        }
    }
    Ok(())
}

/// Why a domain name cannot be written so that it reads back as itself, if it cannot.
fn name_problem(name: &str) -> Option<&'static str> {
    if name.contains(['<', '>']) {
        Some("contains `<` or `>`")
    } else if name.contains(['\\', '=', '\t', '\r', '\n']) {
        Some("contains `\\`, `=`, a tab or a line break")
    } else if name.starts_with('/') {
        Some("starts with `/`")
    } else if name.trim_matches(TRIM) != name {
        Some("has leading or trailing spaces")
    } else {
        None
    }
}

fn check_name(name: &str) -> Result<(), ConfigError> {
    match name_problem(name) {
        Some(reason) => Err(ConfigError::Unwritable { what: "domain name", text: name.to_owned(), reason }),
        None => Ok(()),
    }
}

/// Rejects edits that would create domains deeper than [`MAX_DEPTH`] or with unwritable names.
fn check_new_domains(path: &str, segments: &[&str]) -> Result<(), ConfigError> {
    if segments.len() > MAX_DEPTH {
        return Err(ConfigError::TooDeep(MAX_DEPTH));
    }
    match segments.iter().find_map(|s| name_problem(s)) {
        Some(reason) => Err(ConfigError::InvalidPath { path: path.to_owned(), reason }),
        None => Ok(()),
    }
}

/// Splits `/a/b<key>` into its non-empty domain segments and the key.
fn param_path(path: &str) -> Result<(Vec<&str>, &str), ConfigError> {
    let invalid = |reason| ConfigError::InvalidPath { path: path.to_owned(), reason };
    let rest = path.strip_prefix('/').ok_or_else(|| invalid("must start with `/`"))?;
    let open = rest.find('<').ok_or_else(|| invalid("has no `<key>`"))?;
    let close = rest.find('>').ok_or_else(|| invalid("has no `>` after the key"))?;
    if close < open {
        return Err(invalid("has `>` before `<`"));
    }
    Ok((segments(&rest[..open]), &rest[open + 1..close]))
}

/// Splits `/a/b` into its non-empty segments.
fn domain_path(path: &str) -> Result<Vec<&str>, ConfigError> {
    let rest = path
        .strip_prefix('/')
        .ok_or_else(|| ConfigError::InvalidPath { path: path.to_owned(), reason: "must start with `/`" })?;
    Ok(segments(rest))
}

fn segments(s: &str) -> Vec<&str> {
    s.split('/').filter(|s| !s.is_empty()).collect()
}
