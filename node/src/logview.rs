//! `getLogFileList` and `getLogData`: the log viewer of TarsWeb, answered without a shell.
//!
//! AdminReg forwards two calls from TarsWeb's log page to tarsnode:
//! - `getLogFileList(app, server)`: the log files in `<logpath>/<App>/<Server>/`;
//! - `getLogData(app, server, logFile, cmd)`: the text a command line gives on one of them.
//!
//! Upstream tarsnode (TarsFramework `NodeServer/ServerManager.cpp`) puts the file's path in
//! place of `__log_file_name__` in `cmd` and hands the string to `/bin/sh`. `cmd` and
//! `logFile` come from the browser, so that is a remote shell for anyone who reaches
//! AdminReg. Here nothing is ever executed: [`Pipeline::parse`] reads the command lines
//! TarsWeb builds as a tiny shell grammar, refuses everything else, and [`Pipeline::run`]
//! does the same work in-process on one file.
//!
//! # Accepted grammar
//!
//! The command is split into words the way `sh` would for this subset: blanks separate words,
//! `|` separates stages, `'...'` quotes anything but `'`, `"..."` quotes anything but `"`, `$`,
//! `` ` `` and `\`. Outside quotes a word may hold only ASCII letters and digits,
//! `_ . - , : / @ % + = ^` and non-ASCII characters; any other character (`;` `&` `<` `>` `(`
//! `)` `$` `` ` `` `\` `*` `?` `[` `]` `{` `}` `~` `#` `!`, also `||`) and any control character
//! refuses the whole command.
//!
//! ```text
//! pipeline := first ( "|" filter )*          at most 16 stages, cmd at most 4096 bytes
//! first    := tail COUNT FILE | head COUNT FILE | grep FLAGS PATTERN FILE
//! filter   := tail COUNT | head COUNT | grep FLAGS PATTERN
//!           | iconv -c -f UTF-8 -t UTF-8     (options in any order; UTF-8/UTF8 any case)
//!           | sed 's/[\cA-\cZ]//g'
//! COUNT    := -N | -n N | -nN                 N decimal; at most 50000 in `first`
//! FLAGS    := ( -a | -i | -v | a cluster of them, e.g. -ai )*
//! FILE     := __log_file_name__               the only operand naming a file
//! ```
//!
//! # What each stage does (GNU coreutils/grep/sed/glibc iconv in a UTF-8 locale)
//! - `tail`/`head`: the last/first N lines, bytes unchanged; a last line without `\n` counts.
//!   `tail -N FILE` reads the file backwards from its end in 64 KiB chunks, `head -N FILE`
//!   reads from the start; both stop at the file's length when it was opened.
//! - `grep`: a line matches a PATTERN of literal characters plus `.` (any valid character, not
//!   an invalid UTF-8 byte), a leading `^` and a trailing `$`, and the escapes `\. \* \[ \^ \$
//!   \\`. Other regex syntax (`*`, `[`, other `\` escapes) is refused, not guessed. `-i`
//!   folds case per character with Unicode's simple mappings, which is glibc's for ASCII and
//!   most letters; glibc's tables differ by locale for a few (the Kelvin sign, `ẞ`: `grep -i k`
//!   in `C.UTF-8` does not match the Kelvin sign, this does). `-v` inverts. Output lines always
//!   end in `\n`, as GNU grep's do. Without `-a` input is still treated as text (GNU grep
//!   would print "Binary file matches" for a file holding NUL bytes).
//! - `iconv -c -f UTF-8 -t UTF-8`: drops every byte that is not part of a sequence glibc
//!   accepts (glibc keeps the old 5- and 6-byte forms and code points above U+10FFFF; it drops
//!   overlong forms and surrogates).
//! - `sed 's/[\cA-\cZ]//g'`: removes the bytes 0x01..=0x1A (tab and CR included), keeps `\n`.
//!
//! # Keywords from the browser
//! TarsWeb splices the keyword into the command unquoted, so a keyword the shell would split
//! or expand is refused here: `grep -a foo bar` (a second operand), `;`, `$(...)`, backticks,
//! `&&`, `>`, `|rm`, globs, and `$` even where `sh` would keep it (`error$` must be written
//! `'error$'`). A keyword the user quoted (`'foo bar'`, `"a;b"`) is a literal
//! pattern, as it is to `sh`. A pattern is never a path, so `..` in it is just two `.`.
//!
//! # Bounds
//! A line is cut to its first 64 KiB ([`MAX_LINE`]; the rest of it is skipped, not kept). The
//! answer is at most 4 MiB ([`MAX_OUTPUT`]); a larger one, or a `tail` stage whose N lines
//! hold more than that, is refused with [`LogViewError::TooLarge`]. Memory is thus bounded
//! in bytes whatever the file's size. The answer is a tars `string`, so bytes that are not
//! UTF-8 (possible only without the `iconv` stage) become U+FFFD in [`LogDir::data`].

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Take};
use std::path::{Path, PathBuf};

/// The longest line kept, in bytes; the rest of a longer line is skipped.
pub const MAX_LINE: usize = 64 * 1024;
/// The largest answer of `getLogData`, in bytes.
pub const MAX_OUTPUT: usize = 4 * 1024 * 1024;
/// The largest line count of a stage reading the file (TarsWeb caps it at 50000 too).
pub const MAX_FILE_LINES: usize = 50_000;
/// The longest command accepted, in bytes.
pub const MAX_CMD: usize = 4096;
/// The most stages in a pipeline.
pub const MAX_STAGES: usize = 16;
/// The longest grep pattern, in bytes.
pub const MAX_PATTERN: usize = 1024;
/// The word standing for the log file; upstream replaces it textually with the path.
pub const FILE_PLACEHOLDER: &str = "__log_file_name__";

/// The size of a backwards read of `tail -N FILE`.
const CHUNK: usize = 64 * 1024;

/// What went wrong; `Display` is the text upstream would put in `fileData`.
#[derive(Debug, thiserror::Error)]
pub enum LogViewError {
    /// A name from the network is not a plain file name.
    #[error("bad {field} {value:?}: {why}")]
    BadName { field: &'static str, value: String, why: &'static str },
    /// The command is outside the accepted grammar; nothing was run.
    #[error("getLogData: refused {stage:?}: {why}")]
    Refused { stage: String, why: &'static str },
    /// The log file does not exist or is not a regular file in the server's log directory.
    #[error("getLogData: {file:?} is not a regular file in {dir}")]
    NotALogFile { file: String, dir: PathBuf },
    /// The answer (or a `tail` stage's lines) would exceed [`MAX_OUTPUT`].
    #[error("getLogData: the answer would be larger than {limit} bytes; ask for fewer lines")]
    TooLarge { limit: usize },
    /// Reading the directory or the file failed.
    #[error("{call}: {path}: {source}")]
    Io { call: &'static str, path: PathBuf, source: io::Error },
}

fn refused(stage: impl Into<String>, why: &'static str) -> LogViewError {
    LogViewError::Refused { stage: stage.into(), why }
}

/// The node's log root (`logpath` in its config); servers log to `<root>/<App>/<Server>/`.
#[derive(Debug, Clone)]
pub struct LogDir {
    root: PathBuf,
}

impl LogDir {
    pub fn new(root: impl Into<PathBuf>) -> LogDir {
        LogDir { root: root.into() }
    }

    /// `<root>/<app>/<server>`, after checking both names are plain names.
    pub fn server_dir(&self, app: &str, server: &str) -> Result<PathBuf, LogViewError> {
        check_name("application", app)?;
        check_name("server", server)?;
        Ok(self.root.join(app).join(server))
    }

    /// `getLogFileList`: the log files of `app.server`, as upstream selects them: names of at
    /// least 5 bytes containing `.log`, in descending byte order (upstream lists with
    /// `scandir(..., alphasort)` and walks the result backwards). Unlike upstream, only
    /// regular files are listed (or symlinks to regular files inside the directory), and only
    /// names [`LogDir::data`] would accept. A missing directory is an empty list, as upstream.
    pub fn list(&self, app: &str, server: &str) -> Result<Vec<String>, LogViewError> {
        let dir = self.server_dir(app, server)?;
        let io_err = |source| LogViewError::Io { call: "getLogFileList", path: dir.clone(), source };
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                tracing::debug!(dir = %dir.display(), "getLogFileList: no log directory");
                return Ok(Vec::new());
            }
            Err(e) => return Err(io_err(e)),
        };
        let canon_dir = dir.canonicalize().map_err(io_err)?;
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_err)?;
            let Ok(name) = entry.file_name().into_string() else { continue };
            if name.len() < 5 || !name.contains(".log") || check_name("log file", &name).is_err() {
                continue;
            }
            if resolve_in(&canon_dir, &name).is_ok() {
                names.push(name);
            }
        }
        names.sort_unstable_by(|a, b| b.as_bytes().cmp(a.as_bytes()));
        Ok(names)
    }

    /// `getLogData`: runs `cmd` (see the module doc) on `file` of `app.server`. The command
    /// is parsed before the file is looked at, so a refused command touches nothing.
    pub fn data(&self, app: &str, server: &str, file: &str, cmd: &str) -> Result<String, LogViewError> {
        // A refused command is worth a warning: TarsWeb never builds one.
        let pipeline = Pipeline::parse(cmd).inspect_err(|e| tracing::warn!(app, server, cmd, "{e}"))?;
        let dir = self.server_dir(app, server)?;
        check_name("log file", file)?;
        let not_found = || LogViewError::NotALogFile { file: file.to_owned(), dir: dir.clone() };
        let canon_dir = dir.canonicalize().map_err(|_| not_found())?;
        let path = resolve_in(&canon_dir, file).map_err(|_| not_found())?;
        tracing::debug!(path = %path.display(), cmd, "getLogData");
        let out = pipeline.run(&path)?;
        Ok(match String::from_utf8(out) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        })
    }
}

/// A name from the network must name one entry of one directory.
fn check_name(field: &'static str, value: &str) -> Result<(), LogViewError> {
    let why = if value.is_empty() {
        "is empty"
    } else if value.contains('\0') {
        "holds a NUL byte"
    } else if value.contains('/') || value.contains('\\') {
        "holds a path separator"
    } else if value == "." || value.contains("..") {
        "holds \".\" or \"..\""
    } else {
        return Ok(());
    };
    Err(LogViewError::BadName { field, value: value.to_owned(), why })
}

/// `canon_dir/name` with symlinks resolved, if it is a regular file still under `canon_dir`.
fn resolve_in(canon_dir: &Path, name: &str) -> io::Result<PathBuf> {
    let path = canon_dir.join(name).canonicalize()?;
    if !path.starts_with(canon_dir) {
        return Err(io::Error::new(io::ErrorKind::PermissionDenied, "leaves the log directory"));
    }
    if !std::fs::metadata(&path)?.is_file() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"));
    }
    Ok(path)
}

// ---------------------------------------------------------------------------------------
// Words
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Pipe,
}

/// Characters a word may hold outside quotes: none of them means anything to `sh`.
fn plain_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_.-,:/@%+=^".contains(c) || (!c.is_ascii() && !c.is_control())
}

/// Splits `cmd` into words and pipes, refusing anything `sh` would treat as more than that.
fn lex(cmd: &str) -> Result<Vec<Token>, LogViewError> {
    let mut tokens = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = cmd.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => {
                if let Some(w) = word.take() {
                    tokens.push(Token::Word(w));
                }
            }
            '|' => {
                if let Some(w) = word.take() {
                    tokens.push(Token::Word(w));
                }
                if chars.peek() == Some(&'|') {
                    return Err(refused("||", "only plain pipes are accepted"));
                }
                tokens.push(Token::Pipe);
            }
            '\'' | '"' => {
                let w = word.get_or_insert_with(String::new);
                let mut closed = false;
                for q in chars.by_ref() {
                    if q == c {
                        closed = true;
                        break;
                    }
                    if q.is_control() && q != '\t' {
                        return Err(refused(format!("{q:?}"), "control characters are not accepted"));
                    }
                    if c == '"' && matches!(q, '$' | '`' | '\\') {
                        return Err(refused(q.to_string(), "$, ` and \\ inside \"...\" are expanded by sh"));
                    }
                    w.push(q);
                }
                if !closed {
                    return Err(refused(c.to_string(), "unterminated quote"));
                }
            }
            c if c.is_control() => {
                return Err(refused(format!("{c:?}"), "control characters are not accepted"));
            }
            c if plain_char(c) => word.get_or_insert_with(String::new).push(c),
            c => {
                return Err(refused(
                    c.to_string(),
                    "shell syntax (; & < > ( ) $ ` \\ * ? [ ] { } ~ # ! and unquoted quotes) is not accepted",
                ))
            }
        }
    }
    if let Some(w) = word {
        tokens.push(Token::Word(w));
    }
    Ok(tokens)
}

// ---------------------------------------------------------------------------------------
// Stages
// ---------------------------------------------------------------------------------------

/// A grep pattern: a BRE restricted to literals, `.`, a leading `^` and a trailing `$`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Matcher {
    atoms: Vec<Atom>,
    at_start: bool,
    at_end: bool,
    ignore_case: bool,
    invert: bool,
    /// The pattern's bytes when it is all literals and case matters: a byte search is then
    /// exact, because a valid UTF-8 pattern can only match on character boundaries.
    literal: Option<Vec<u8>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Atom {
    Lit(char),
    Any,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Stage {
    Head(usize),
    Tail(usize),
    Grep(Matcher),
    Iconv,
    Sed,
}

/// A parsed `getLogData` command. Parsing is pure (no IO), so a fuzz target can call
/// [`Pipeline::parse`] directly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pipeline {
    /// The first stage, which reads the file.
    first: Stage,
    /// The stages after it, each reading the previous one's lines.
    filters: Vec<Stage>,
}

const PROGRAMS: &str = "is not one of tail, head, grep, iconv, sed";
const SED_SCRIPT: &str = r"s/[\cA-\cZ]//g";

impl Pipeline {
    /// Parses `cmd`; see the module doc for the grammar. Never runs anything.
    pub fn parse(cmd: &str) -> Result<Pipeline, LogViewError> {
        if cmd.len() > MAX_CMD {
            return Err(refused(format!("{} bytes", cmd.len()), "the command is longer than 4096 bytes"));
        }
        let tokens = lex(cmd)?;
        let mut stages = Vec::new();
        for part in tokens.split(|t| *t == Token::Pipe) {
            let words: Vec<&str> = part
                .iter()
                .filter_map(|t| match t {
                    Token::Word(w) => Some(w.as_str()),
                    Token::Pipe => None,
                })
                .collect();
            stages.push(words);
        }
        if stages.len() > MAX_STAGES {
            return Err(refused(cmd, "more than 16 stages"));
        }
        let mut parsed = Vec::with_capacity(stages.len());
        for (i, words) in stages.iter().enumerate() {
            parsed.push(parse_stage(words, i == 0)?);
        }
        let mut parsed = parsed.into_iter();
        let first = parsed.next().ok_or_else(|| refused(cmd, "empty command"))?;
        Ok(Pipeline { first, filters: parsed.collect() })
    }

    /// Runs the pipeline on the file at `path`: the bytes the shell pipeline would print
    /// (within the bounds of the module doc).
    pub fn run(&self, path: &Path) -> Result<Vec<u8>, LogViewError> {
        let io_err = |source| LogViewError::Io { call: "getLogData", path: path.to_owned(), source };
        let mut file = File::open(path).map_err(io_err)?;
        let meta = file.metadata().map_err(io_err)?;
        if !meta.is_file() {
            let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
            return Err(LogViewError::NotALogFile { file: path.display().to_string(), dir });
        }
        let len = meta.len();
        let (start, limit, grep) = match &self.first {
            Stage::Head(n) => (0, Some(*n), None),
            Stage::Tail(n) => (tail_start(&mut file, len, *n).map_err(io_err)?, None, None),
            Stage::Grep(m) => (0, None, Some(m.clone())),
            // `parse` only puts head, tail and grep first.
            Stage::Iconv | Stage::Sed => return Err(refused("iconv/sed", "cannot read the file")),
        };
        file.seek(SeekFrom::Start(start)).map_err(io_err)?;
        let reader = BufReader::with_capacity(CHUNK, file.take(len - start));
        let mut src: Box<dyn Lines> = Box::new(FileLines { reader, left: limit, path: path.to_owned() });
        if let Some(m) = grep {
            src = Box::new(Grep { inner: src, m });
        }
        for stage in &self.filters {
            src = match stage {
                Stage::Head(n) => Box::new(Head { inner: src, left: *n }),
                Stage::Tail(n) => Box::new(Tail::new(src, *n)),
                Stage::Grep(m) => Box::new(Grep { inner: src, m: m.clone() }),
                Stage::Iconv => Box::new(MapLines { inner: src, f: drop_invalid_utf8 }),
                Stage::Sed => Box::new(MapLines { inner: src, f: drop_ctrl_a_to_z }),
            };
        }
        collect(src.as_mut())
    }
}

fn parse_stage(words: &[&str], first: bool) -> Result<Stage, LogViewError> {
    let text = words.join(" ");
    let Some((&prog, args)) = words.split_first() else {
        return Err(refused(text, "empty stage"));
    };
    if words.iter().any(|w| w.contains(FILE_PLACEHOLDER) && *w != FILE_PLACEHOLDER) {
        return Err(refused(text, "__log_file_name__ must be a word of its own"));
    }
    // The file operand: required on the first stage, refused on the others (stdin).
    let args = match (first, args.split_last()) {
        (true, Some((&FILE_PLACEHOLDER, rest))) => rest,
        (true, _) => return Err(refused(text, "the first stage must end with __log_file_name__")),
        (false, _) if args.contains(&FILE_PLACEHOLDER) => {
            return Err(refused(text, "only the first stage may read __log_file_name__"))
        }
        (false, _) => args,
    };
    let max = if first { MAX_FILE_LINES } else { usize::MAX };
    match prog {
        "tail" => Ok(Stage::Tail(parse_count(&text, args, max)?)),
        "head" => Ok(Stage::Head(parse_count(&text, args, max)?)),
        "grep" => Ok(Stage::Grep(parse_grep(&text, args)?)),
        "iconv" | "sed" if first => Err(refused(text, "the first stage must be tail, head or grep")),
        "iconv" => parse_iconv(&text, args).map(|()| Stage::Iconv),
        "sed" if args == [SED_SCRIPT] => Ok(Stage::Sed),
        "sed" => Err(refused(text, "the only sed accepted is sed 's/[\\cA-\\cZ]//g'")),
        other => Err(refused(other, PROGRAMS)),
    }
}

/// `-N`, `-n N` or `-nN`.
fn parse_count(text: &str, args: &[&str], max: usize) -> Result<usize, LogViewError> {
    let digits = match args {
        [n] if n.starts_with("-n") && n.len() > 2 => &n[2..],
        [n] if n.starts_with('-') && n != &"-n" => &n[1..],
        ["-n", n] => n,
        _ => return Err(refused(text, "expected a line count: -N, -n N or -nN")),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(refused(text, "the line count is not a number (TarsWeb sends NaN for an empty field)"));
    }
    match digits.parse::<usize>() {
        Ok(n) if n <= max => Ok(n),
        _ => Err(refused(text, "the line count is too large (at most 50000 on the stage reading the file)")),
    }
}

fn parse_grep(text: &str, args: &[&str]) -> Result<Matcher, LogViewError> {
    let (mut ignore_case, mut invert) = (false, false);
    let mut rest = args;
    while let Some((&opt, tail)) = rest.split_first() {
        if !opt.starts_with('-') || opt == "-" {
            break;
        }
        for flag in opt[1..].chars() {
            match flag {
                'a' => {}
                'i' => ignore_case = true,
                'v' => invert = true,
                _ => return Err(refused(text, "grep accepts only the options -a, -i and -v")),
            }
        }
        rest = tail;
    }
    match rest {
        [pattern] => parse_pattern(text, pattern, ignore_case, invert),
        [] => Err(refused(text, "grep needs a pattern")),
        _ => Err(refused(text, "grep with more than one operand (quote a keyword holding spaces)")),
    }
}

fn parse_pattern(text: &str, pattern: &str, ignore_case: bool, invert: bool) -> Result<Matcher, LogViewError> {
    if pattern.len() > MAX_PATTERN {
        return Err(refused(text, "the grep pattern is longer than 1024 bytes"));
    }
    let (at_start, body) = match pattern.strip_prefix('^') {
        Some(rest) => (true, rest),
        None => (false, pattern),
    };
    let mut atoms = Vec::new();
    let mut at_end = false;
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e @ ('.' | '*' | '[' | '^' | '$' | '\\')) => atoms.push(Atom::Lit(e)),
                _ => return Err(refused(text, "grep: only the escapes \\. \\* \\[ \\^ \\$ \\\\ are supported")),
            },
            '.' => atoms.push(Atom::Any),
            '$' if chars.peek().is_none() => at_end = true,
            '*' => return Err(refused(text, "grep: the regex repetition * is not supported")),
            '[' => return Err(refused(text, "grep: bracket expressions [...] are not supported")),
            c => atoms.push(Atom::Lit(if ignore_case { fold(c) } else { c })),
        }
    }
    let literal = if ignore_case {
        None
    } else {
        atoms
            .iter()
            .map(|a| match a {
                Atom::Lit(c) => Some(*c),
                Atom::Any => None,
            })
            .collect::<Option<String>>()
            .map(String::into_bytes)
    };
    Ok(Matcher { atoms, at_start, at_end, ignore_case, invert, literal })
}

/// `-c`, `-f UTF-8`, `-t UTF-8` in any order, each once.
fn parse_iconv(text: &str, args: &[&str]) -> Result<(), LogViewError> {
    let utf8 = |s: &str| s.eq_ignore_ascii_case("UTF-8") || s.eq_ignore_ascii_case("UTF8");
    let (mut c, mut f, mut t) = (false, false, false);
    let mut rest = args;
    loop {
        match rest {
            [] => break,
            ["-c", tail @ ..] if !c => (c, rest) = (true, tail),
            ["-f", cs, tail @ ..] if !f && utf8(cs) => (f, rest) = (true, tail),
            ["-t", cs, tail @ ..] if !t && utf8(cs) => (t, rest) = (true, tail),
            _ => return Err(refused(text, "the only iconv accepted is iconv -c -f UTF-8 -t UTF-8")),
        }
    }
    if c && f && t {
        Ok(())
    } else {
        Err(refused(text, "the only iconv accepted is iconv -c -f UTF-8 -t UTF-8"))
    }
}

// ---------------------------------------------------------------------------------------
// Running
// ---------------------------------------------------------------------------------------

/// One line: its bytes without `\n`, and whether a `\n` ended it (only the last line of a
/// stream may lack one).
#[derive(Debug)]
struct Line {
    bytes: Vec<u8>,
    eol: bool,
}

impl Line {
    fn cost(&self) -> usize {
        self.bytes.len() + 1
    }
}

/// A stage's output, pulled a line at a time so `head` can stop the stages before it.
trait Lines {
    fn next_line(&mut self) -> Result<Option<Line>, LogViewError>;
}

struct FileLines {
    reader: BufReader<Take<File>>,
    /// Lines still to give (`head -N FILE`); `None` reads to the end.
    left: Option<usize>,
    path: PathBuf,
}

impl Lines for FileLines {
    fn next_line(&mut self) -> Result<Option<Line>, LogViewError> {
        if self.left == Some(0) {
            return Ok(None);
        }
        let line = read_line_capped(&mut self.reader).map_err(|source| LogViewError::Io {
            call: "getLogData",
            path: self.path.clone(),
            source,
        })?;
        if line.is_some() {
            self.left = self.left.map(|n| n - 1);
        }
        Ok(line)
    }
}

/// Reads one line, keeping at most [`MAX_LINE`] bytes of it and skipping the rest.
fn read_line_capped(r: &mut impl BufRead) -> io::Result<Option<Line>> {
    let mut bytes = Vec::new();
    let mut any = false;
    let mut cut = false;
    loop {
        let buf = match r.fill_buf() {
            Ok(buf) => buf,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            return Ok(any.then(|| Line { bytes: trim_cut(bytes, cut), eol: false }));
        }
        any = true;
        let (part, found) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (&buf[..i], Some(i + 1)),
            None => (buf, None),
        };
        let room = MAX_LINE - bytes.len();
        cut |= part.len() > room;
        bytes.extend_from_slice(&part[..part.len().min(room)]);
        let used = found.unwrap_or(buf.len());
        r.consume(used);
        if found.is_some() {
            return Ok(Some(Line { bytes: trim_cut(bytes, cut), eol: true }));
        }
    }
}

/// Drops a character split by the [`MAX_LINE`] cut, so a cut line stays valid UTF-8.
fn trim_cut(mut bytes: Vec<u8>, cut: bool) -> Vec<u8> {
    if cut {
        let tail_start = bytes.len().saturating_sub(3);
        if let Some(lead) = (tail_start..bytes.len()).rev().find(|&i| bytes[i] & 0xC0 != 0x80) {
            let need = match bytes[lead] {
                0xC0..=0xDF => 2,
                0xE0..=0xEF => 3,
                0xF0..=0xF7 => 4,
                _ => 1,
            };
            if lead + need > bytes.len() {
                bytes.truncate(lead);
            }
        }
    }
    bytes
}

/// The offset where the last `n` lines of the first `len` bytes of `file` begin, found by
/// reading backwards in [`CHUNK`]s: memory stays bounded however large the file is.
fn tail_start(file: &mut File, len: u64, n: usize) -> io::Result<u64> {
    if n == 0 || len == 0 {
        return Ok(len);
    }
    let mut last = [0u8; 1];
    file.seek(SeekFrom::Start(len - 1))?;
    file.read_exact(&mut last)?;
    // A final `\n` ends the last line; it does not start another one.
    let mut pos = if last[0] == b'\n' { len - 1 } else { len };
    let mut seen = 0usize;
    let mut buf = vec![0u8; CHUNK];
    while pos > 0 {
        let start = pos.saturating_sub(CHUNK as u64);
        let chunk = &mut buf[..(pos - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(chunk)?;
        for (i, &b) in chunk.iter().enumerate().rev() {
            if b == b'\n' {
                seen += 1;
                if seen == n {
                    return Ok(start + i as u64 + 1);
                }
            }
        }
        pos = start;
    }
    Ok(0)
}

struct Head {
    inner: Box<dyn Lines>,
    left: usize,
}

impl Lines for Head {
    fn next_line(&mut self) -> Result<Option<Line>, LogViewError> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        self.inner.next_line()
    }
}

/// The last `n` lines of its input, holding at most [`MAX_OUTPUT`] bytes of them.
struct Tail {
    inner: Option<Box<dyn Lines>>,
    n: usize,
    ring: VecDeque<Line>,
}

impl Tail {
    fn new(inner: Box<dyn Lines>, n: usize) -> Tail {
        Tail { inner: Some(inner), n, ring: VecDeque::new() }
    }

    /// Reads all the input. Lines are dropped from the front when more than `n` are held or
    /// when they hold more than [`MAX_OUTPUT`] bytes; the latter is an error only if a line so
    /// dropped is among the last `n` at the end.
    fn fill(&mut self, mut inner: Box<dyn Lines>) -> Result<(), LogViewError> {
        let (mut seen, mut bytes) = (0usize, 0usize);
        let mut lost: Option<usize> = None;
        while let Some(line) = inner.next_line()? {
            seen += 1;
            bytes += line.cost();
            self.ring.push_back(line);
            while self.ring.len() > self.n || bytes > MAX_OUTPUT {
                let first_index = seen - self.ring.len();
                if self.ring.len() <= self.n {
                    lost = Some(first_index);
                }
                match self.ring.pop_front() {
                    Some(old) => bytes -= old.cost(),
                    None => break,
                }
            }
        }
        match lost {
            Some(i) if i >= seen.saturating_sub(self.n) => Err(LogViewError::TooLarge { limit: MAX_OUTPUT }),
            _ => Ok(()),
        }
    }
}

impl Lines for Tail {
    fn next_line(&mut self) -> Result<Option<Line>, LogViewError> {
        if let Some(inner) = self.inner.take() {
            if self.n == 0 {
                return Ok(None);
            }
            self.fill(inner)?;
        }
        Ok(self.ring.pop_front())
    }
}

struct Grep {
    inner: Box<dyn Lines>,
    m: Matcher,
}

impl Lines for Grep {
    fn next_line(&mut self) -> Result<Option<Line>, LogViewError> {
        while let Some(mut line) = self.inner.next_line()? {
            if self.m.matches(&line.bytes) != self.m.invert {
                // GNU grep ends every line it prints with `\n`.
                line.eol = true;
                return Ok(Some(line));
            }
        }
        Ok(None)
    }
}

impl Matcher {
    fn matches(&self, line: &[u8]) -> bool {
        if let Some(lit) = &self.literal {
            return match (self.at_start, self.at_end) {
                (true, true) => line == lit.as_slice(),
                (true, false) => line.starts_with(lit),
                (false, true) => line.ends_with(lit),
                (false, false) => lit.is_empty() || line.windows(lit.len()).any(|w| w == lit.as_slice()),
            };
        }
        let units = decode_units(line, self.ignore_case);
        let m = self.atoms.len();
        if m > units.len() {
            return false;
        }
        let fits = |at: usize| {
            self.atoms.iter().zip(&units[at..at + m]).all(|(a, u)| match (a, u) {
                (_, None) => false,
                (Atom::Any, Some(_)) => true,
                (Atom::Lit(c), Some(u)) => c == u,
            })
        };
        let last = units.len() - m;
        match (self.at_start, self.at_end) {
            (true, true) => last == 0 && fits(0),
            (true, false) => fits(0),
            (false, true) => fits(last),
            (false, false) => (0..=last).any(fits),
        }
    }
}

/// A line as grep sees it in a UTF-8 locale: one unit per valid character, `None` per byte
/// of an invalid sequence (which neither `.` nor any literal matches).
fn decode_units(line: &[u8], ignore_case: bool) -> Vec<Option<char>> {
    let mut units = Vec::with_capacity(line.len());
    for chunk in line.utf8_chunks() {
        units.extend(chunk.valid().chars().map(|c| Some(if ignore_case { fold(c) } else { c })));
        units.extend(chunk.invalid().iter().map(|_| None));
    }
    units
}

/// The case-folded form two characters share when `grep -i` matches them: lowercase of the
/// uppercase, so that e.g. `ſ` and `s`, or the Kelvin sign and `k`, fold together.
fn fold(c: char) -> char {
    fn single(mut it: impl Iterator<Item = char>) -> Option<char> {
        match (it.next(), it.next()) {
            (Some(c), None) => Some(c),
            _ => None,
        }
    }
    let upper = single(c.to_uppercase()).unwrap_or(c);
    single(upper.to_lowercase()).unwrap_or(upper)
}

struct MapLines {
    inner: Box<dyn Lines>,
    f: fn(&mut Vec<u8>),
}

impl Lines for MapLines {
    fn next_line(&mut self) -> Result<Option<Line>, LogViewError> {
        let mut line = self.inner.next_line()?;
        if let Some(line) = &mut line {
            (self.f)(&mut line.bytes);
        }
        Ok(line)
    }
}

/// `sed 's/[\cA-\cZ]//g'`: GNU sed reads `\cA`..`\cZ` as the bytes 0x01..=0x1A.
fn drop_ctrl_a_to_z(bytes: &mut Vec<u8>) {
    bytes.retain(|&b| !(0x01..=0x1A).contains(&b));
}

/// `iconv -c -f UTF-8 -t UTF-8` with glibc's decoder: keeps each sequence glibc accepts and
/// drops the lead byte of any other, then goes on from the next byte. An invalid sequence
/// cannot hold `\n`, so doing this per line equals doing it on the stream.
fn drop_invalid_utf8(bytes: &mut Vec<u8>) {
    if std::str::from_utf8(bytes).is_ok() {
        return;
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match glibc_utf8_len(&bytes[i..]) {
            Some(n) => {
                out.extend_from_slice(&bytes[i..i + n]);
                i += n;
            }
            None => i += 1,
        }
    }
    *bytes = out;
}

/// The length of the sequence glibc's UTF-8 decoder accepts at the start of `s`: the forms
/// of up to 6 bytes (code points up to 0x7FFFFFFF), not overlong, not a surrogate.
fn glibc_utf8_len(s: &[u8]) -> Option<usize> {
    let lead = *s.first()?;
    let (n, init, min) = match lead {
        0x00..=0x7F => return Some(1),
        0xC2..=0xDF => (2, u32::from(lead & 0x1F), 0x80),
        0xE0..=0xEF => (3, u32::from(lead & 0x0F), 0x800),
        0xF0..=0xF7 => (4, u32::from(lead & 0x07), 0x1_0000),
        0xF8..=0xFB => (5, u32::from(lead & 0x03), 0x20_0000),
        0xFC..=0xFD => (6, u32::from(lead & 0x01), 0x400_0000),
        _ => return None,
    };
    let tail = s.get(1..n)?;
    if !tail.iter().all(|&b| b & 0xC0 == 0x80) {
        return None;
    }
    let cp = tail.iter().fold(init, |acc, &b| (acc << 6) | u32::from(b & 0x3F));
    (cp >= min && !(0xD800..=0xDFFF).contains(&cp)).then_some(n)
}

/// The pipeline's bytes, refusing more than [`MAX_OUTPUT`].
fn collect(src: &mut dyn Lines) -> Result<Vec<u8>, LogViewError> {
    let mut out = Vec::new();
    while let Some(line) = src.next_line()? {
        if out.len() + line.bytes.len() + usize::from(line.eol) > MAX_OUTPUT {
            return Err(LogViewError::TooLarge { limit: MAX_OUTPUT });
        }
        out.extend_from_slice(&line.bytes);
        if line.eol {
            out.push(b'\n');
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn why(cmd: &str) -> &'static str {
        match Pipeline::parse(cmd) {
            Err(LogViewError::Refused { why, .. }) => why,
            other => panic!("{cmd}: {other:?}"),
        }
    }

    #[test]
    fn tarsweb_command_parses_to_its_stages() {
        let cmd = r"tail -1000 __log_file_name__ | grep  -a  -i  error|tail -100 | iconv -c -f UTF-8 -t UTF-8|sed 's/[\cA-\cZ]//g'";
        let p = Pipeline::parse(cmd).unwrap();
        assert_eq!(p.first, Stage::Tail(1000));
        assert_eq!(p.filters.len(), 4);
        let Stage::Grep(m) = &p.filters[0] else { panic!("{:?}", p.filters[0]) };
        assert!(m.ignore_case && !m.invert && m.literal.is_none());
        assert_eq!(m.atoms, "error".chars().map(Atom::Lit).collect::<Vec<_>>());
        assert_eq!(p.filters[1..], [Stage::Tail(100), Stage::Iconv, Stage::Sed]);
    }

    #[test]
    fn count_forms() {
        for (cmd, n) in
            [("head -5 __log_file_name__", 5), ("tail -n 7 __log_file_name__", 7), ("tail -n08 __log_file_name__", 8)]
        {
            assert_eq!(
                Pipeline::parse(cmd).unwrap().first,
                if cmd.starts_with("head") { Stage::Head(n) } else { Stage::Tail(n) }
            );
        }
        assert_eq!(
            Pipeline::parse("tail -50000 __log_file_name__ | tail -900000").unwrap().filters,
            [Stage::Tail(900_000)]
        );
        assert!(why("tail -NaN __log_file_name__").contains("not a number"));
        assert!(why("tail -1 __log_file_name__|tail -NaN").contains("not a number"));
        assert!(why("tail --5 __log_file_name__").contains("not a number"));
        assert!(why("tail -n __log_file_name__").contains("expected a line count"));
        assert!(why("tail __log_file_name__").contains("expected a line count"));
        assert!(why("tail -50001 __log_file_name__").contains("too large"));
        assert!(why("tail -1 __log_file_name__|head -99999999999999999999999").contains("too large"));
    }

    #[test]
    fn display_names_what_was_wrong() {
        let err = Pipeline::parse("rm -rf __log_file_name__").unwrap_err();
        assert_eq!(err.to_string(), r#"getLogData: refused "rm": is not one of tail, head, grep, iconv, sed"#);
        let err = Pipeline::parse("tail -5 __log_file_name__; id").unwrap_err();
        assert!(err.to_string().starts_with(r#"getLogData: refused ";": shell syntax"#), "{err}");
        let err = check_name("log file", "../x").unwrap_err();
        assert_eq!(err.to_string(), r#"bad log file "../x": holds a path separator"#);
        let err = check_name("server", "..").unwrap_err();
        assert_eq!(err.to_string(), r#"bad server "..": holds "." or "..""#);
    }

    #[test]
    fn lexer_quotes_like_sh() {
        let words = |cmd| lex(cmd).unwrap();
        let w = |s: &str| Token::Word(s.to_owned());
        assert_eq!(words("grep -a 'a b'|x"), [w("grep"), w("-a"), w("a b"), Token::Pipe, w("x")]);
        assert_eq!(words("a'b c'\"d;e\"f"), [w("ab cd;ef")]);
        assert_eq!(words("'' x"), [w(""), w("x")]);
        for bad in [
            "a;b", "a&b", "a>b", "a<b", "$(x)", "`x`", "a\\b", "a*", "a?", "[a]", "{a,b}", "~", "#", "!", "a\nb", "'a",
            "\"a", "\"$x\"", "\"`x`\"", "\"\\\"", "a||b", "(x)",
        ] {
            assert!(lex(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn grep_pattern_subset() {
        let m = |p: &str, i: bool| parse_pattern("t", p, i, false).unwrap();
        assert!(m("a.b", false).matches(b"xa-by"));
        assert!(!m("a.b", false).matches(b"a\xffb"), "an invalid byte is not a character");
        assert!(m("a.b", false).matches("a中b".as_bytes()));
        assert!(m("a.b", false).matches(b"a\0b"));
        assert!(m("^ab$", false).matches(b"ab") && !m("^ab$", false).matches(b"abc"));
        assert!(m("a^b", false).matches(b"a^b"), "^ not first is literal");
        assert!(m("a$b", false).matches(b"a$b"), "$ not last is literal");
        assert!(m("a\\.b", false).matches(b"a.b") && !m("a\\.b", false).matches(b"axb"));
        assert!(m("a\\$", false).matches(b"a$x"));
        assert!(m("ERROR", true).matches(b"an error \xff here"));
        assert!(m("s", true).matches("\u{17f}".as_bytes()));
        assert!(m("ä", true).matches("Ärger".as_bytes()));
        assert!(m("", false).matches(b"") && m("^", false).matches(b"x") && m("$", false).matches(b""));
        assert!(!m("abc", false).matches(b"ab"));
        for bad in ["a*", "[ab]", "a\\|b", "\\(a\\)", "a\\+", "\\<w"] {
            assert!(parse_pattern("t", bad, false, false).is_err(), "{bad}");
        }
    }

    #[test]
    fn iconv_keeps_what_glibc_keeps() {
        // Observed with glibc 2.36 `iconv -c -f UTF-8 -t UTF-8`.
        let cases: [(&[u8], &[u8]); 10] = [
            (b"A\xe4\xb8B", b"AB"),
            (b"\xed\xa0\x80x", b"x"),
            (b"\xf4\x90\x80\x80", b"\xf4\x90\x80\x80"),
            (b"\xf8\x88\x80\x80\x80", b"\xf8\x88\x80\x80\x80"),
            (b"\xfc\x84\x80\x80\x80\x80", b"\xfc\x84\x80\x80\x80\x80"),
            (b"\xe0\x80\xaf\xc0\xaf\xc1\xbf", b""),
            (b"\xf0\x80\x80\x80\xfe\xff", b""),
            (b"\xe4\xb8\xe4\xb8\xad", "中".as_bytes()),
            (b"\xef\xbf\xbf\xc2\x80", b"\xef\xbf\xbf\xc2\x80"),
            (b"end\xf0\x9f\x98", b"end"),
        ];
        for (input, want) in cases {
            let mut v = input.to_vec();
            drop_invalid_utf8(&mut v);
            assert_eq!(v, want, "{input:x?}");
        }
    }

    #[test]
    fn sed_drops_ctrl_a_to_ctrl_z() {
        let mut v = b"a\tb\x01c\x1ad\x1be\r\x7f\x00".to_vec();
        drop_ctrl_a_to_z(&mut v);
        assert_eq!(v, b"abcd\x1be\x7f\x00");
    }

    fn temp_file(tag: &str, bytes: &[u8]) -> (tars_testkit::process::TempDir, PathBuf) {
        let dir = tars_testkit::process::TempDir::new(tag).unwrap();
        let path = dir.0.join("f.log");
        std::fs::write(&path, bytes).unwrap();
        (dir, path)
    }

    #[test]
    fn tail_start_counts_from_the_end() {
        for (text, n, want) in [
            (&b""[..], 3, 0),
            (b"a\nb\nc\n", 1, 4),
            (b"a\nb\nc\n", 2, 2),
            (b"a\nb\nc\n", 9, 0),
            (b"a\nb\nc", 1, 4),
            (b"a\n\n\n", 1, 3),
            (b"a\n\n\n", 2, 2),
            (b"abc", 1, 0),
            (b"a\nb\n", 0, 4),
        ] {
            let (_d, path) = temp_file("lv-ts", text);
            let mut f = File::open(&path).unwrap();
            assert_eq!(tail_start(&mut f, text.len() as u64, n).unwrap(), want, "{text:?} {n}");
        }
        // Across chunk boundaries.
        let text: Vec<u8> = (0..3 * CHUNK).map(|i| if i % 1000 == 999 { b'\n' } else { b'x' }).collect();
        let (_d, path) = temp_file("lv-ts2", &text);
        let mut f = File::open(&path).unwrap();
        // The last line has no `\n`: one line more than newlines; all but the first start at 1000.
        let lines = text.iter().filter(|&&b| b == b'\n').count() + 1;
        let start = tail_start(&mut f, text.len() as u64, lines - 1).unwrap();
        assert_eq!(start, 1000);
    }

    #[test]
    fn a_cut_line_does_not_end_in_half_a_character() {
        let mut line = vec![b'a'; MAX_LINE - 2];
        line.extend_from_slice("中x".as_bytes());
        let got = read_line_capped(&mut &line[..]).unwrap().unwrap();
        assert_eq!(got.bytes, vec![b'a'; MAX_LINE - 2]);
        assert!(!got.eol);
        let mut exact = vec![b'a'; MAX_LINE - 3];
        exact.extend_from_slice("中\n".as_bytes());
        let got = read_line_capped(&mut &exact[..]).unwrap().unwrap();
        assert_eq!(got.bytes.len(), MAX_LINE);
        assert!(got.eol);
    }

    #[test]
    fn parse_never_panics() {
        // A deterministic walk over mutations of a real command: every result is Ok or Refused.
        let base = r"tail -1000 __log_file_name__ | grep  -a  -i  'e.r' |tail -100 | iconv -c -f UTF-8 -t UTF-8|sed 's/[\cA-\cZ]//g'";
        let alphabet: Vec<char> = "|'\"$`\\;&<> -n0123456789aiv.^*[]()_{}~#!\t\n中\u{0}".chars().collect();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut ok = 0;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let mut chars: Vec<char> = base.chars().collect();
            let at = (seed % chars.len() as u64) as usize;
            let c = alphabet[((seed >> 32) % alphabet.len() as u64) as usize];
            match (seed >> 20) % 3 {
                0 => chars[at] = c,
                1 => chars.insert(at, c),
                _ => {
                    chars.remove(at);
                }
            }
            let cmd: String = chars.into_iter().collect();
            match Pipeline::parse(&cmd) {
                Ok(_) => ok += 1,
                Err(LogViewError::Refused { .. }) => {}
                Err(e) => panic!("{cmd:?}: {e}"),
            }
        }
        assert!(ok > 1000 && ok < 20_000, "{ok}");
    }
}
