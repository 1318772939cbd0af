//! The gateway's rules, sans-IO: what a request path names, whether an object may be called,
//! the request packet a call sends, and the HTTP status every outcome maps to.
//!
//! Status codes follow upstream TarsGateway (`TupBase.cpp`, `TupCallback.cpp`,
//! `ProxyUtils.h`): a malformed request is 400, a refused object 403, an object with no
//! route 404, a failed backend call 502 and a timed-out one 504. Ours are finer where the
//! server's return code says whose fault it is: no such function 404, a body the servant could
//! not decode 400, an overloaded server 503.

use std::collections::BTreeMap;

use tars_proto::json::{self, Number, Value};
use tars_proto::packet::{packet_type, ret, version, RequestPacket};
use tars_proto::rpc::{CallError, Reply};

/// The HTTP side of a failure: a status and a message for the JSON error body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The HTTP status.
    pub status: u16,
    /// The TARS return code behind it, when a call was made.
    pub tars_ret: Option<i32>,
    /// What went wrong (no request data in it beyond the object and function names).
    pub message: String,
}

impl Failure {
    /// A failure before any call.
    pub fn new(status: u16, message: impl Into<String>) -> Failure {
        Failure { status, tars_ret: None, message: message.into() }
    }

    /// The JSON error body: `{"error":{"status":…,"tars_ret":…,"message":…}}`.
    pub fn body(&self) -> String {
        let mut inner = BTreeMap::new();
        inner.insert("status".to_owned(), Value::Number(Number::Int(i64::from(self.status))));
        if let Some(code) = self.tars_ret {
            inner.insert("tars_ret".to_owned(), Value::Number(Number::Int(i64::from(code))));
        }
        inner.insert("message".to_owned(), Value::String(self.message.clone()));
        let mut outer = BTreeMap::new();
        outer.insert("error".to_owned(), Value::Object(inner));
        json::to_string(&Value::Object(outer))
    }
}

/// What `/json/<rest>` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target<'a> {
    /// `App.Server.Obj`.
    pub object: &'a str,
    /// The function.
    pub func: &'a str,
}

/// The longest object or function name accepted (TARS names are far shorter; a bound keeps
/// the logs and the locator's work small).
pub const MAX_NAME: usize = 128;

/// Reads `App.Server.Obj/func` (the path after `/json/`). An object is three non-empty
/// dot-separated parts of `[A-Za-z0-9_-]`, so no `@endpoint` (a caller must never choose
/// where the gateway connects); a function is an identifier.
pub fn parse_target(rest: &str) -> Result<Target<'_>, Failure> {
    let bad = |why: &str| Failure::new(400, format!("the path must be /json/App.Server.Obj/func: {why}"));
    let (object, func) = rest.split_once('/').ok_or_else(|| bad("no function"))?;
    if func.contains('/') {
        return Err(bad("too many segments"));
    }
    if object.is_empty() || object.len() > MAX_NAME || func.is_empty() || func.len() > MAX_NAME {
        return Err(bad("empty or too long name"));
    }
    let parts: Vec<&str> = object.split('.').collect();
    let part_ok = |p: &&str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if parts.len() != 3 || !parts.iter().all(part_ok) {
        return Err(bad("the object is not App.Server.Obj"));
    }
    let mut bytes = func.bytes();
    let ident = bytes.next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !ident {
        return Err(bad("the function is not an identifier"));
    }
    Ok(Target { object, func })
}

/// Which objects may be called: `allow` and `deny` lists of patterns (`*` matches any run of
/// characters). The framework's own objects (`tars.*`) and any `*.AdminObj` are denied unless
/// an `allow` pattern names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    allow: Vec<String>,
    deny: Vec<String>,
}

/// Denied unless allowed: the framework's objects (registry, node, config, AdminReg: calling
/// them from the internet would hand out the cluster) and administration.
pub const DEFAULT_DENY: [&str; 2] = ["tars.*", "*.AdminObj"];

impl Default for Policy {
    fn default() -> Policy {
        Policy::new("", "")
    }
}

impl Policy {
    /// From the config values: patterns separated by `,`, `;`, `|` or white space.
    pub fn new(allow: &str, deny: &str) -> Policy {
        let split = |s: &str| -> Vec<String> {
            s.split(|c: char| c == ',' || c == ';' || c == '|' || c.is_whitespace())
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect()
        };
        let mut deny_list: Vec<String> = DEFAULT_DENY.iter().map(|s| (*s).to_owned()).collect();
        deny_list.extend(split(deny));
        Policy { allow: split(allow), deny: deny_list }
    }

    /// Whether `object` may be called: an `allow` list, when given, must match it; a `deny`
    /// pattern (the defaults included) refuses it unless an `allow` pattern matches it too.
    pub fn permits(&self, object: &str) -> bool {
        let allowed = self.allow.iter().any(|p| glob(p, object));
        if !self.allow.is_empty() && !allowed {
            return false;
        }
        allowed || !self.deny.iter().any(|p| glob(p, object))
    }

    /// The allow and deny lists, for the status command.
    pub fn describe(&self) -> String {
        let allow = if self.allow.is_empty() { "(any not denied)".to_owned() } else { self.allow.join(",") };
        format!("allow: {allow}\ndeny: {}", self.deny.join(","))
    }
}

/// `*` matches any run of characters (none included); everything else itself, case-sensitive
/// as TARS names are.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&b| b == b'*')
}

/// Checks that `body` is one JSON object (what iVersion 5 parameters are), before any call.
pub fn check_body(body: &[u8]) -> Result<(), Failure> {
    match json::parse(body) {
        Ok(Value::Object(_)) => Ok(()),
        Ok(other) => Err(Failure::new(400, format!("the body must be a JSON object, not {}", other.kind()))),
        Err(e) => Err(Failure::new(400, format!("the body is not JSON: {e}"))),
    }
}

/// The JSON-protocol (iVersion 5) request for `target` with `body` as its parameters.
/// `context` goes along as the call's context (upstream passes the client's address as
/// `REMOTE_IP`).
pub fn request(target: &Target<'_>, body: &[u8], timeout_ms: i32, context: BTreeMap<String, String>) -> RequestPacket {
    RequestPacket {
        i_version: version::JSON,
        c_packet_type: packet_type::NORMAL,
        s_servant_name: target.object.to_owned(),
        s_func_name: target.func.to_owned(),
        s_buffer: bytes::Bytes::copy_from_slice(body),
        i_timeout: timeout_ms,
        context,
        ..RequestPacket::default()
    }
}

/// The HTTP status for a server's non-zero `iRet`.
pub fn status_of_ret(code: i32) -> u16 {
    match code {
        ret::NO_FUNC | ret::NO_SERVANT => 404,
        ret::DECODE_ERR => 400,
        ret::QUEUE_TIMEOUT | ret::INVOKE_TIMEOUT => 504,
        ret::OVERLOAD => 503,
        _ => 502,
    }
}

/// What a call's outcome becomes: the reply's JSON body (200), or a failure.
pub fn outcome(object: &str, func: &str, result: Result<Reply, CallError>) -> Result<Vec<u8>, Failure> {
    let fail = |status: u16, code: i32, what: String| Failure { status, tars_ret: Some(code), message: what };
    match result {
        Ok(reply) if reply.ret == ret::SUCCESS => Ok(reply.body.to_vec()),
        Ok(reply) => Err(fail(
            status_of_ret(reply.ret),
            reply.ret,
            format!("{object}.{func} failed with {}: {}", reply.ret, reply.desc),
        )),
        Err(CallError::Server { code, desc }) => {
            Err(fail(status_of_ret(code), code, format!("{object}.{func} failed with {code}: {desc}")))
        }
        Err(e @ CallError::Timeout) => Err(fail(504, e.code(), format!("{object}.{func} timed out"))),
        Err(e @ CallError::NoEndpoint) => Err(fail(502, e.code(), format!("{object} has no active endpoint"))),
        Err(e) => Err(fail(502, e.code(), format!("{object}.{func}: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn targets_are_three_part_objects_and_identifiers() {
        assert_eq!(parse_target("A.B.C/add"), Ok(Target { object: "A.B.C", func: "add" }));
        assert_eq!(parse_target("Test_1.Hello-Server.HelloObj/_f2").map(|t| t.func), Ok("_f2"));
        for bad in [
            "A.B.C",
            "A.B/add",
            "A.B.C.D/add",
            "A..C/add",
            "A.B.C/add/more",
            "A.B.C@tcp -h 10.0.0.1 -p 1/add",
            "A.B.C/1add",
            "A.B.C/",
            "/add",
            "A.B.C/a-b",
            "A.B. C/add",
        ] {
            assert_eq!(parse_target(bad).map_err(|f| f.status), Err(400), "{bad}");
        }
        let long = format!("A.B.{}/f", "c".repeat(MAX_NAME));
        assert!(parse_target(&long).is_err());
    }

    #[test]
    fn framework_objects_are_refused_unless_allowed() {
        let p = Policy::default();
        assert!(p.permits("Test.HelloServer.HelloObj"));
        assert!(!p.permits("tars.tarsregistry.QueryObj"));
        assert!(!p.permits("Test.HelloServer.AdminObj"));
        let p = Policy::new("tars.tarsregistry.QueryObj", "Test.Secret*");
        assert!(p.permits("tars.tarsregistry.QueryObj"), "allowed by name");
        assert!(!p.permits("tars.tarsnode.NodeObj"), "not in the allow list");
        assert!(!p.permits("Test.HelloServer.HelloObj"), "an allow list admits only what it names");
        let p = Policy::new("", "Test.Secret*, *.PayObj");
        assert!(!p.permits("Test.SecretServer.Obj") && !p.permits("A.B.PayObj"));
        assert!(p.permits("Test.HelloServer.HelloObj"));
        let p = Policy::new("Test.*|tars.tarsstat.*", "");
        assert!(p.permits("Test.X.Y") && p.permits("tars.tarsstat.StatObj") && !p.permits("tars.tarsnode.NodeObj"));
    }

    #[test]
    fn globs_match_runs() {
        assert!(glob("*", ""));
        assert!(glob("a*c", "abbbc") && glob("a*c", "ac") && !glob("a*c", "acb"));
        assert!(glob("*.AdminObj", "x.y.AdminObj") && !glob("*.AdminObj", "x.y.AdminObjX"));
        assert!(glob("tars.*", "tars.x") && !glob("tars.*", "tarsx"));
        assert!(glob("*a*a*", "banana") && !glob("*a*a*b", "banana"));
    }

    #[test]
    fn bodies_must_be_json_objects() {
        assert!(check_body(br#"{"a":1,"b":2}"#).is_ok());
        for bad in [&b""[..], b"[1]", b"1", b"{", b"{\"a\":}", b"\xff", b"null"] {
            assert_eq!(check_body(bad).map_err(|f| f.status), Err(400), "{bad:?}");
        }
    }

    #[test]
    fn outcomes_map_to_statuses() {
        let reply = |code: i32, body: &str| Reply { ret: code, body: Bytes::from(body.to_owned()), ..Reply::default() };
        assert_eq!(outcome("A.B.C", "f", Ok(reply(0, "{\"c\":3}"))), Ok(b"{\"c\":3}".to_vec()));
        let status = |r: Result<Reply, CallError>| outcome("A.B.C", "f", r).map_err(|f| (f.status, f.tars_ret));
        assert_eq!(status(Ok(reply(ret::NO_FUNC, ""))), Err((404, Some(ret::NO_FUNC))));
        assert_eq!(status(Ok(reply(ret::DECODE_ERR, ""))), Err((400, Some(ret::DECODE_ERR))));
        assert_eq!(status(Ok(reply(ret::UNKNOWN, ""))), Err((502, Some(ret::UNKNOWN))));
        assert_eq!(status(Ok(reply(ret::OVERLOAD, ""))), Err((503, Some(ret::OVERLOAD))));
        assert_eq!(status(Err(CallError::Timeout)), Err((504, Some(ret::INVOKE_TIMEOUT))));
        assert_eq!(status(Err(CallError::Connect("refused".into()))), Err((502, Some(ret::PROXY_CONNECT_ERR))));
        assert_eq!(status(Err(CallError::NoEndpoint)).map_err(|e| e.0), Err(502));
        assert_eq!(
            status(Err(CallError::Server { code: ret::NO_SERVANT, desc: String::new() })),
            Err((404, Some(ret::NO_SERVANT)))
        );
        let f = Failure { status: 404, tars_ret: Some(-3), message: "no \"f\"".into() };
        let v = json::parse(f.body().as_bytes()).unwrap_or(Value::Null);
        let inner = v.as_object().and_then(|o| o.get("error")).and_then(Value::as_object).cloned().unwrap_or_default();
        assert_eq!(inner.get("tars_ret"), Some(&Value::Number(Number::Int(-3))));
        assert_eq!(inner.get("message"), Some(&Value::String("no \"f\"".into())));
    }

    #[test]
    fn requests_are_json_protocol_calls() {
        let t = Target { object: "A.B.C", func: "add" };
        let ctx = BTreeMap::from([("REMOTE_IP".to_owned(), "10.0.0.9".to_owned())]);
        let r = request(&t, b"{\"a\":1}", 3000, ctx);
        assert_eq!((r.i_version, r.c_packet_type, r.i_timeout), (version::JSON, packet_type::NORMAL, 3000));
        assert_eq!((r.s_servant_name.as_str(), r.s_func_name.as_str()), ("A.B.C", "add"));
        assert_eq!(&r.s_buffer[..], b"{\"a\":1}");
        assert_eq!(r.context.get("REMOTE_IP").map(String::as_str), Some("10.0.0.9"));
    }
}
