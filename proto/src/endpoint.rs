//! Endpoint strings (`tcp -h 10.0.0.1 -p 10000 -t 60000`) and object/locator strings
//! (`App.Server.Obj#hash@tcp -h a -p 1:tcp -h b -p 2`), as TarsCpp's `TC_Endpoint` and
//! `ObjectProxy` read them.
//!
//! [`Endpoint::parse`] follows TarsCpp's `TC_Endpoint::parse`: options are exactly `-`
//! plus one letter, an argument is the next token unless it starts with `-`, unknown
//! letters are ignored (with their argument), the last occurrence of an option wins.
//! TarsGo's `-b` (local bind address) is kept too. `Display` gives TarsCpp's `toString`
//! form, so `Endpoint::parse(&e.to_string()) == Ok(e)` for every parsed `e`.
//!
//! [`ObjectRef::parse`] splits the endpoint list on a `:` only where the next token (after
//! optional whitespace) is a transport word: `tcp`, `udp` or `ssl` followed by whitespace,
//! `:` or the end. Unlike TarsCpp (substring search) a host containing `tcp` does not
//! split, and unlike TarsGo (split on every `:`) IPv6 literals survive.
//!
//! Every input is bounded ([`MAX_OBJECT_LEN`], [`MAX_ENDPOINT_LEN`], [`MAX_ENDPOINTS`],
//! [`MAX_HOST_LEN`], [`MAX_NAME_LEN`]) and errors are returned, never panics. The limits
//! are chosen so that the `Display` form of any parsed value parses again.

use std::fmt;
use std::str::FromStr;

/// Longest object string [`ObjectRef::parse`] accepts, in bytes.
pub const MAX_OBJECT_LEN: usize = 1 << 20;
/// Longest single endpoint string [`Endpoint::parse`] accepts, in bytes.
pub const MAX_ENDPOINT_LEN: usize = 4096;
/// Most endpoints one object string may list.
pub const MAX_ENDPOINTS: usize = 1024;
/// Longest host (`-h`) or bind address (`-b`), in bytes.
pub const MAX_HOST_LEN: usize = 255;
/// Longest object name or hash suffix, in bytes.
pub const MAX_NAME_LEN: usize = 1024;
/// The timeout an endpoint has without `-t`, in milliseconds.
pub const DEFAULT_TIMEOUT_MS: u32 = 3000;

/// The token separators of TarsCpp's endpoint parser.
const DELIMS: &[char] = &[' ', '\t', '\n', '\r'];

fn is_delim(c: char) -> bool {
    DELIMS.contains(&c)
}

/// Why an endpoint or object string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    /// The endpoint string holds nothing but whitespace.
    #[error("empty endpoint string")]
    Empty,
    /// The first word is not `tcp`, `udp` or `ssl`.
    #[error("unknown transport `{0}`, expected tcp, udp or ssl")]
    UnknownTransport(String),
    /// A token where an option was expected that is not `-` plus one character.
    #[error("`{0}` is not an option (expected `-` and one letter)")]
    BadToken(String),
    /// No `-h`.
    #[error("missing host (-h)")]
    MissingHost,
    /// An option that needs an argument has none (the next token starts with `-` or there is none).
    #[error("-{option} needs a value")]
    MissingValue {
        /// The option letter.
        option: char,
    },
    /// An option's argument is not a valid value for it.
    #[error("-{option}: invalid value `{value}`")]
    BadValue {
        /// The option letter.
        option: char,
        /// The argument as written.
        value: String,
    },
    /// A string or component longer than its limit.
    #[error("{what} is {len} bytes, more than the limit of {max}")]
    TooLong {
        /// What was too long: "object string", "endpoint string", "host", ...
        what: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// An object string listing more than [`MAX_ENDPOINTS`] endpoints.
    #[error("more than {max} endpoints")]
    TooManyEndpoints {
        /// The limit.
        max: usize,
    },
    /// An object string without a name before `#` / `@`.
    #[error("object name is empty")]
    EmptyName,
    /// An object string with `@` but no endpoint after it.
    #[error("`@` is not followed by any endpoint")]
    NoEndpoints,
    /// An endpoint of an object string's list failed to parse.
    #[error("endpoint {index}: {source}")]
    InList {
        /// Its position in the list, from 0.
        index: usize,
        /// What was wrong with it.
        source: Box<EndpointError>,
    },
}

/// The transport of an endpoint; `EndpointF.istcp` holds it as 0 UDP, 1 TCP, 2 SSL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Transport {
    /// `tcp`, istcp 1.
    Tcp,
    /// `udp`, istcp 0.
    Udp,
    /// `ssl` (TLS over TCP), istcp 2.
    Ssl,
}

impl Transport {
    /// The `EndpointF.istcp` value: 0 UDP, 1 TCP, 2 SSL.
    pub fn istcp(self) -> i32 {
        match self {
            Transport::Udp => 0,
            Transport::Tcp => 1,
            Transport::Ssl => 2,
        }
    }

    /// The transport of an `EndpointF.istcp` value, `None` for values other than 0, 1, 2.
    pub fn from_istcp(istcp: i32) -> Option<Transport> {
        match istcp {
            0 => Some(Transport::Udp),
            1 => Some(Transport::Tcp),
            2 => Some(Transport::Ssl),
            _ => None,
        }
    }

    /// The word of the endpoint string: `tcp`, `udp` or `ssl`.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
            Transport::Ssl => "ssl",
        }
    }

    /// The transport of a word, exactly `tcp`, `udp` or `ssl` (lower case, as TarsCpp).
    pub fn from_word(word: &str) -> Option<Transport> {
        match word {
            "tcp" => Some(Transport::Tcp),
            "udp" => Some(Transport::Udp),
            "ssl" => Some(Transport::Ssl),
            _ => None,
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One endpoint: `proto -h host -p port [-t ms] [-g grid] [-q qos] [-w weight] [-v type]
/// [-e auth] [-b bind]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// `tcp`, `udp` or `ssl`.
    pub transport: Transport,
    /// `-h`: host name or IP literal (IPv6 without brackets, as TarsCpp); `*` parses as `0.0.0.0`.
    pub host: String,
    /// `-p`: port, 0 when absent.
    pub port: u16,
    /// `-t`: timeout in milliseconds (idle-connection timeout on a server adapter),
    /// [`DEFAULT_TIMEOUT_MS`] when absent; at most `i32::MAX` when parsed.
    pub timeout_ms: u32,
    /// `-g`: grid (legacy routing state), 0 when absent.
    pub grid: i32,
    /// `-q`: QoS (DSCP) value, 0 when absent.
    pub qos: i32,
    /// `-w`: static weight, -1 when unset. With a non-zero `weight_type`, parsing turns
    /// -1 into 100 and caps the weight at 100.
    pub weight: i32,
    /// `-v`: weight type, 0 round-robin, 1 static weight.
    pub weight_type: i32,
    /// `-e`: auth type, 0 none, 1 local AK/SK auth; parsing accepts only these two.
    pub auth_type: i32,
    /// `-b`: local bind address (TarsGo only).
    pub bind: Option<String>,
}

impl Endpoint {
    /// An endpoint with the defaults of an endpoint string that gives only `-h` and `-p`.
    pub fn new(transport: Transport, host: impl Into<String>, port: u16) -> Endpoint {
        Endpoint {
            transport,
            host: host.into(),
            port,
            timeout_ms: DEFAULT_TIMEOUT_MS,
            grid: 0,
            qos: 0,
            weight: -1,
            weight_type: 0,
            auth_type: 0,
            bind: None,
        }
    }

    /// Parses an endpoint string such as `tcp -h 1.2.3.4 -p 10000 -t 60000`.
    pub fn parse(s: &str) -> Result<Endpoint, EndpointError> {
        if s.len() > MAX_ENDPOINT_LEN {
            return Err(EndpointError::TooLong { what: "endpoint string", len: s.len(), max: MAX_ENDPOINT_LEN });
        }
        let mut tokens = s.split(is_delim).filter(|t| !t.is_empty()).peekable();
        let word = tokens.next().ok_or(EndpointError::Empty)?;
        let transport = Transport::from_word(word).ok_or_else(|| EndpointError::UnknownTransport(word.to_owned()))?;

        let mut ep = Endpoint::new(transport, String::new(), 0);
        let mut host: Option<&str> = None;
        while let Some(token) = tokens.next() {
            let mut chars = token.chars();
            let letter = match (chars.next(), chars.next(), chars.next()) {
                (Some('-'), Some(letter), None) => letter,
                _ => return Err(EndpointError::BadToken(token.to_owned())),
            };
            let arg = match tokens.peek() {
                Some(next) if !next.starts_with('-') => tokens.next(),
                _ => None,
            };
            match letter {
                'h' => {
                    let h = arg.ok_or(EndpointError::MissingValue { option: 'h' })?;
                    check_len("host", h, MAX_HOST_LEN)?;
                    host = Some(h);
                }
                'p' => ep.port = number(letter, arg)?,
                't' => {
                    let t: i32 = number(letter, arg)?;
                    ep.timeout_ms = u32::try_from(t).map_err(|_| bad_value(letter, arg))?;
                }
                'g' => ep.grid = number(letter, arg)?,
                'q' => ep.qos = number(letter, arg)?,
                'w' => ep.weight = number(letter, arg)?,
                'v' => ep.weight_type = non_negative(letter, arg)?,
                'e' => {
                    let e: i32 = number(letter, arg)?;
                    if e != 0 && e != 1 {
                        return Err(bad_value(letter, arg));
                    }
                    ep.auth_type = e;
                }
                'b' => {
                    let b = arg.ok_or(EndpointError::MissingValue { option: 'b' })?;
                    check_len("bind address", b, MAX_HOST_LEN)?;
                    ep.bind = Some(b.to_owned());
                }
                // TarsCpp ignores unknown option letters (and their argument).
                _ => {}
            }
        }

        if ep.weight_type != 0 {
            if ep.weight == -1 {
                ep.weight = 100;
            }
            ep.weight = ep.weight.min(100);
        }
        ep.host = match host {
            None => return Err(EndpointError::MissingHost),
            Some("*") => "0.0.0.0".to_owned(),
            Some(h) => h.to_owned(),
        };
        Ok(ep)
    }

    /// The `EndpointF.istcp` value of the transport: 0 UDP, 1 TCP, 2 SSL.
    pub fn istcp(&self) -> i32 {
        self.transport.istcp()
    }
}

fn check_len(what: &'static str, s: &str, max: usize) -> Result<(), EndpointError> {
    if s.len() > max {
        return Err(EndpointError::TooLong { what, len: s.len(), max });
    }
    Ok(())
}

fn bad_value(option: char, arg: Option<&str>) -> EndpointError {
    EndpointError::BadValue { option, value: arg.unwrap_or_default().to_owned() }
}

fn number<T: FromStr>(option: char, arg: Option<&str>) -> Result<T, EndpointError> {
    let a = arg.ok_or(EndpointError::MissingValue { option })?;
    a.parse().map_err(|_| bad_value(option, arg))
}

fn non_negative(option: char, arg: Option<&str>) -> Result<i32, EndpointError> {
    let v: i32 = number(option, arg)?;
    if v < 0 {
        return Err(bad_value(option, arg));
    }
    Ok(v)
}

/// TarsCpp's `toString` form: `proto -h H -p P -t T [-g G] [-q Q] [-w W] [-v V] [-e E]`,
/// then TarsGo's `[-b B]`. Zero grid, qos, weight type and auth type and an unset (-1)
/// weight are omitted. `-t` is always written (TarsCpp omits `-t 0`, which would parse
/// back as 3000).
impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} -h {} -p {} -t {}", self.transport, self.host, self.port, self.timeout_ms)?;
        if self.grid != 0 {
            write!(f, " -g {}", self.grid)?;
        }
        if self.qos != 0 {
            write!(f, " -q {}", self.qos)?;
        }
        if self.weight != -1 {
            write!(f, " -w {}", self.weight)?;
        }
        if self.weight_type != 0 {
            write!(f, " -v {}", self.weight_type)?;
        }
        if self.auth_type != 0 {
            write!(f, " -e {}", self.auth_type)?;
        }
        if let Some(bind) = &self.bind {
            write!(f, " -b {bind}")?;
        }
        Ok(())
    }
}

impl FromStr for Endpoint {
    type Err = EndpointError;

    fn from_str(s: &str) -> Result<Endpoint, EndpointError> {
        Endpoint::parse(s)
    }
}

/// An object string: `name[#hash][@endpoint(:endpoint)*]`.
///
/// Without `@` the object is indirect (its endpoints come from the locator, QueryF); with
/// it, direct. The locator itself is an object string, e.g.
/// `tars.tarsregistry.QueryObj@tcp -h 10.0.0.1 -p 17890:tcp -h 10.0.0.2 -p 17890`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectRef {
    /// The object name, `App.Server.Obj`, without `<scheme>://`, `#…` and `@…`.
    pub name: String,
    /// The `#` suffix (TarsCpp's hash key for extra connection sets), `None` if absent or empty.
    pub hash: Option<String>,
    /// The endpoints after `@`, empty for an indirect object.
    pub endpoints: Vec<Endpoint>,
}

impl ObjectRef {
    /// Parses `App.Server.Obj`, `App.Server.Obj#hash` or
    /// `App.Server.Obj#hash@tcp -h a -p 1:tcp -h b -p 2`. A leading `<scheme>://` (TarsGo)
    /// is stripped; whitespace around the name and hash is trimmed.
    pub fn parse(s: &str) -> Result<ObjectRef, EndpointError> {
        if s.len() > MAX_OBJECT_LEN {
            return Err(EndpointError::TooLong { what: "object string", len: s.len(), max: MAX_OBJECT_LEN });
        }
        let mut rest = s;
        // Strip schemes (and the whitespace around them) until none is left, so that the
        // name that remains does not lose another one when parsed again.
        loop {
            rest = rest.trim_start();
            match strip_scheme(rest) {
                Some(r) => rest = r,
                None => break,
            }
        }
        let (head, list) = match rest.split_once('@') {
            Some((head, list)) => (head, Some(list)),
            None => (rest, None),
        };
        let (name, hash) = match head.split_once('#') {
            Some((name, hash)) => (name.trim_end(), Some(hash.trim())),
            None => (head.trim_end(), None),
        };
        if name.is_empty() {
            return Err(EndpointError::EmptyName);
        }
        check_len("object name", name, MAX_NAME_LEN)?;
        let hash = match hash {
            Some(h) if !h.is_empty() => {
                check_len("hash suffix", h, MAX_NAME_LEN)?;
                Some(h.to_owned())
            }
            _ => None,
        };
        let endpoints = match list {
            None => Vec::new(),
            Some(list) => parse_list(list)?,
        };
        Ok(ObjectRef { name: name.to_owned(), hash, endpoints })
    }

    /// The name that goes into `RequestPacket.sServantName`: no `#…` and no `@…`.
    pub fn servant_name(&self) -> &str {
        &self.name
    }

    /// Whether the endpoints are given (`name@…`) rather than asked from the locator.
    pub fn is_direct(&self) -> bool {
        !self.endpoints.is_empty()
    }
}

/// `rest` without a leading `<scheme>://` (RFC 3986 scheme characters), if it has one.
fn strip_scheme(s: &str) -> Option<&str> {
    let (scheme, rest) = s.split_once("://")?;
    let mut chars = scheme.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    if first_ok && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')) {
        Some(rest)
    } else {
        None
    }
}

/// Splits an endpoint list at each `:` that is followed (after optional whitespace) by a
/// transport word and whitespace, `:` or the end, and parses the pieces.
fn parse_list(list: &str) -> Result<Vec<Endpoint>, EndpointError> {
    if list.trim_matches(is_delim).is_empty() {
        return Err(EndpointError::NoEndpoints);
    }
    let bytes = list.as_bytes();
    let mut pieces: Vec<&str> = Vec::new();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if b == b':' && starts_endpoint(&list[i + 1..]) {
            if pieces.len() >= MAX_ENDPOINTS - 1 {
                return Err(EndpointError::TooManyEndpoints { max: MAX_ENDPOINTS });
            }
            pieces.push(&list[start..i]);
            start = i + 1;
        }
    }
    pieces.push(&list[start..]);
    pieces
        .into_iter()
        .enumerate()
        .map(|(index, piece)| Endpoint::parse(piece).map_err(|e| EndpointError::InList { index, source: Box::new(e) }))
        .collect()
}

/// Whether `s` is optional whitespace, then `tcp`/`udp`/`ssl`, then whitespace, `:` or the end.
fn starts_endpoint(s: &str) -> bool {
    let s = s.trim_start_matches(is_delim);
    let Some(word) = s.get(..3) else { return false };
    if Transport::from_word(word).is_none() {
        return false;
    }
    match s[3..].chars().next() {
        None | Some(':') => true,
        Some(c) => is_delim(c),
    }
}

/// `name[#hash][@ep:ep…]`, each endpoint in [`Endpoint`]'s `Display` form.
impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if let Some(hash) = &self.hash {
            write!(f, "#{hash}")?;
        }
        for (i, ep) in self.endpoints.iter().enumerate() {
            f.write_str(if i == 0 { "@" } else { ":" })?;
            write!(f, "{ep}")?;
        }
        Ok(())
    }
}

impl FromStr for ObjectRef {
    type Err = EndpointError;

    fn from_str(s: &str) -> Result<ObjectRef, EndpointError> {
        ObjectRef::parse(s)
    }
}
