//! What generated servants and proxies share, sans-IO: parameter codecs for iVersion 1
//! (by tag), 3 (TUP, by name) and 5 (JSON, by name), the per-call [`Current`], reply
//! construction, and the client-side [`Transport`] seam a communicator implements.

use crate::codec::{DecodeError, DecodeErrorKind, Field, Reader, Struct, Writer};
use crate::frame::encode_frame_into;
use crate::json::{self, JsonField};
use crate::packet::{packet_type, ret, status_key, version, RequestPacket, ResponsePacket, StringMap};
use crate::tup::{UniAttribute, RET_NAME};
use bytes::{Bytes, BytesMut};
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// Reads the parameters of a call (server side) or the results of a reply (client side).
#[derive(Debug)]
pub enum ParamReader<'a> {
    /// iVersion 1: fields by tag.
    Tars(Reader<'a>),
    /// iVersion 3: values by name.
    Tup(UniAttribute),
    /// iVersion 5: JSON object members by name.
    Json(BTreeMap<String, json::Value>),
}

impl<'a> ParamReader<'a> {
    /// A reader over `body` for protocol `version`. Unknown versions are an error.
    pub fn new(version: i16, body: &'a Bytes) -> Result<Self, DecodeError> {
        match version {
            version::TARS => Ok(ParamReader::Tars(Reader::from_bytes(body))),
            version::TUP => UniAttribute::decode(body).map(ParamReader::Tup),
            version::JSON => {
                if body.iter().all(u8::is_ascii_whitespace) {
                    return Ok(ParamReader::Json(BTreeMap::new()));
                }
                let value = json::parse(body).map_err(|e| DecodeErrorKind::Invalid(format!("JSON body: {e}")))?;
                match value {
                    json::Value::Object(map) => Ok(ParamReader::Json(map)),
                    other => Err(DecodeErrorKind::TypeMismatch { expected: "JSON object", got: other.kind() }.into()),
                }
            }
            other => Err(DecodeErrorKind::Invalid(format!("unsupported protocol version {other}")).into()),
        }
    }

    fn read_opt<T: Field + JsonField>(&mut self, tag: u8, name: &str) -> Result<Option<T>, DecodeError> {
        match self {
            ParamReader::Tars(r) => r.read_optional(tag),
            ParamReader::Tup(a) => a.get(name),
            ParamReader::Json(m) => match m.get(name) {
                None | Some(json::Value::Null) => Ok(None),
                Some(v) => T::from_json(v).map(Some),
            },
        }
    }

    /// Reads a required parameter (in parameters on the server, results on the client).
    pub fn read<T: Field + JsonField>(&mut self, tag: u8, name: &str) -> Result<T, DecodeError> {
        self.read_opt(tag, name)?.ok_or_else(|| match self {
            ParamReader::Tars(_) => DecodeErrorKind::RequiredMissing { tag }.into(),
            _ => DecodeErrorKind::Invalid(format!("parameter '{name}' is missing")).into(),
        })
    }

    /// Reads an `out` parameter in a request: optional (the C++ async proxies omit them) and
    /// ignored by the servant, but it must still be well-formed.
    pub fn read_out<T: Field + JsonField + Default>(&mut self, tag: u8, name: &str) -> Result<T, DecodeError> {
        Ok(self.read_opt(tag, name)?.unwrap_or_default())
    }

    /// Reads the return value of a reply: tag 0, or `tars_ret` / `""` by name.
    pub fn read_ret<T: Field + JsonField>(&mut self) -> Result<T, DecodeError> {
        if let ParamReader::Tup(a) = self {
            if let Some(v) = a.get(RET_NAME)? {
                return Ok(v);
            }
            return self.read(0, "");
        }
        self.read(0, RET_NAME)
    }
}

/// Writes the parameters of a call (client side) or the results of a reply (server side).
#[derive(Debug)]
pub enum ParamWriter {
    /// iVersion 1.
    Tars(Writer),
    /// iVersion 3.
    Tup(UniAttribute),
    /// iVersion 5.
    Json(BTreeMap<String, json::Value>),
}

impl ParamWriter {
    /// A writer for protocol `version`; versions other than 3 and 5 write by tag.
    pub fn new(version: i16) -> Self {
        match version {
            version::TUP => ParamWriter::Tup(UniAttribute::new()),
            version::JSON => ParamWriter::Json(BTreeMap::new()),
            _ => ParamWriter::Tars(Writer::new()),
        }
    }

    /// Writes a parameter at its positional tag / under its name.
    pub fn write<T: Field + JsonField>(&mut self, tag: u8, name: &str, value: &T) {
        match self {
            ParamWriter::Tars(w) => value.write_to(tag, w),
            ParamWriter::Tup(a) => a.put(name, value),
            ParamWriter::Json(m) => {
                m.insert(name.to_owned(), value.to_json());
            }
        }
    }

    /// Writes a string parameter without needing an owned `String`.
    pub fn write_str(&mut self, tag: u8, name: &str, value: &str) {
        match self {
            ParamWriter::Tars(w) => w.write_str(tag, value),
            ParamWriter::Tup(a) => a.put_encoded(name, |w| w.write_str(0, value)),
            ParamWriter::Json(m) => {
                m.insert(name.to_owned(), json::Value::String(value.to_owned()));
            }
        }
    }

    /// Writes a return value: tag 0; TUP under both `""` and `tars_ret`; JSON as `tars_ret`.
    pub fn write_ret<T: Field + JsonField>(&mut self, value: &T) {
        match self {
            ParamWriter::Tup(a) => {
                a.put("", value);
                a.put(RET_NAME, value);
            }
            _ => self.write(0, RET_NAME, value),
        }
    }

    /// The encoded body.
    pub fn finish(self) -> Bytes {
        match self {
            ParamWriter::Tars(w) => w.freeze(),
            ParamWriter::Tup(a) => a.encode(),
            ParamWriter::Json(m) => Bytes::from(json::to_string(&json::Value::Object(m))),
        }
    }
}

/// A servant's failure: becomes the reply's `iRet` and `sResultDesc`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("servant error {code}: {message}")]
pub struct ServantError {
    /// A framework return code ([`ret`]); keep it within −99..=−1.
    pub code: i32,
    /// Text for `sResultDesc`.
    pub message: String,
}

impl ServantError {
    /// An error with `code` and text.
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        ServantError { code, message: message.into() }
    }

    /// The parameters could not be decoded (−1).
    pub fn decode(e: &DecodeError) -> Self {
        Self::new(ret::DECODE_ERR, e.to_string())
    }

    /// No such function (−3).
    pub fn no_func(func: &str) -> Self {
        Self::new(ret::NO_FUNC, format!("no function '{func}'"))
    }

    /// Any other failure (−99).
    pub fn unknown(message: impl Into<String>) -> Self {
        Self::new(ret::UNKNOWN, message)
    }
}

/// One call as a servant sees it: the request envelope and what the reply will carry.
#[derive(Debug, Clone, Default)]
pub struct Current {
    /// Protocol version of the request.
    pub version: i16,
    /// `cPacketType`.
    pub packet_type: i8,
    /// `iMessageType`.
    pub message_type: i32,
    /// `iRequestId`.
    pub request_id: i32,
    /// `sServantName`.
    pub servant: String,
    /// `sFuncName`.
    pub func: String,
    /// `iTimeout` in ms.
    pub timeout_ms: i32,
    /// Request context.
    pub context: StringMap,
    /// Request status.
    pub status: StringMap,
    /// The peer's address, when the transport knows it.
    pub peer: Option<SocketAddr>,
    /// Context to send back.
    pub response_context: StringMap,
    /// Status to send back.
    pub response_status: StringMap,
    /// The connection the call came on, for pushes to its client later; `None` when the
    /// transport cannot push.
    pub push: Option<crate::push::PushHandle>,
}

impl Current {
    /// The peer's IP as TARS services record it (an IPv4 client on a dual-stack socket,
    /// `::ffff:a.b.c.d`, as `a.b.c.d`), or `None` when the transport did not give it.
    pub fn peer_ip(&self) -> Option<String> {
        self.peer.map(|p| p.ip().to_canonical().to_string())
    }

    /// The call described by `req`; the parameters stay in `req.s_buffer`.
    pub fn from_request(req: &RequestPacket, peer: Option<SocketAddr>) -> Self {
        Current {
            version: req.i_version,
            packet_type: req.c_packet_type,
            message_type: req.i_message_type,
            request_id: req.i_request_id,
            servant: req.s_servant_name.clone(),
            func: req.s_func_name.clone(),
            timeout_ms: req.i_timeout,
            context: req.context.clone(),
            status: req.status.clone(),
            peer,
            response_context: StringMap::new(),
            response_status: StringMap::new(),
            push: None,
        }
    }

    /// The call described by `req`, taking its strings and maps instead of copying them;
    /// returns the parameters beside it.
    pub fn from_packet(req: RequestPacket, peer: Option<SocketAddr>) -> (Self, Bytes) {
        let current = Current {
            version: req.i_version,
            packet_type: req.c_packet_type,
            message_type: req.i_message_type,
            request_id: req.i_request_id,
            servant: req.s_servant_name,
            func: req.s_func_name,
            timeout_ms: req.i_timeout,
            context: req.context,
            status: req.status,
            peer,
            response_context: StringMap::new(),
            response_status: StringMap::new(),
            push: None,
        };
        (current, req.s_buffer)
    }

    /// The caller expects no reply.
    pub fn is_oneway(&self) -> bool {
        self.packet_type == packet_type::ONEWAY
    }
}

/// Builds the framed reply to a call, or `None` for a oneway call.
///
/// Versions 1 and 5 get a `ResponsePacket` echoing id, version and message type. TUP (3) gets
/// a `RequestPacket`-shaped reply, with a non-zero code and its text in `status` as TarsCpp
/// clients read them (`STATUS_RESULT_CODE` / `STATUS_RESULT_DESC`).
pub fn reply_frame(current: &Current, result: Result<Bytes, ServantError>) -> Option<Bytes> {
    let mut out = BytesMut::new();
    reply_into(&mut out, current, result).then(|| out.freeze())
}

/// [`reply_frame`] appended to `out`; `false` (nothing written) for a oneway call.
pub fn reply_into(out: &mut BytesMut, current: &Current, result: Result<Bytes, ServantError>) -> bool {
    if current.is_oneway() {
        return false;
    }
    let (code, desc, body) = match result {
        Ok(body) => (ret::SUCCESS, String::new(), body),
        Err(e) => (e.code, e.message, Bytes::new()),
    };
    if current.version == version::TUP {
        let mut status = current.response_status.clone();
        if code != ret::SUCCESS {
            status.insert(status_key::RESULT_CODE.to_owned(), code.to_string());
        }
        if !desc.is_empty() {
            status.insert(status_key::RESULT_DESC.to_owned(), desc);
        }
        // An error reply still carries a well-formed (empty) attribute set: TarsCpp sends an
        // empty sBuffer here by mistake, and TUP clients such as @tars/rpc fail to decode that.
        let body = if code == ret::SUCCESS { body } else { UniAttribute::new().encode() };
        encode_frame_into(
            out,
            &RequestPacket {
                i_version: version::TUP,
                c_packet_type: packet_type::NORMAL,
                i_message_type: current.message_type,
                i_request_id: current.request_id,
                s_servant_name: current.servant.clone(),
                s_func_name: current.func.clone(),
                s_buffer: body,
                i_timeout: 0,
                context: current.response_context.clone(),
                status,
            },
        );
        return true;
    }
    encode_frame_into(
        out,
        &ResponsePacket {
            i_version: current.version,
            c_packet_type: packet_type::NORMAL,
            i_request_id: current.request_id,
            i_message_type: current.message_type,
            i_ret: code,
            s_buffer: body,
            status: current.response_status.clone(),
            s_result_desc: desc,
            context: current.response_context.clone(),
        },
    );
    true
}

/// A decoded reply, whichever envelope it came in.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Reply {
    /// Protocol version.
    pub version: i16,
    /// The request id it answers (0 for a server push).
    pub request_id: i32,
    /// Framework return code.
    pub ret: i32,
    /// Error text.
    pub desc: String,
    /// Encoded results.
    pub body: Bytes,
    /// Reply status.
    pub status: StringMap,
    /// Reply context.
    pub context: StringMap,
}

impl Reply {
    /// Decodes a reply body (after the length prefix). TUP replies are `RequestPacket`s whose
    /// code is in `status`; the rest are `ResponsePacket`s.
    pub fn decode(body: &Bytes) -> Result<Self, DecodeError> {
        let v: i16 = Reader::from_bytes(body).read_required(1).map_err(|e| e.at("Reply", "iVersion"))?;
        if v == version::TUP {
            let p = RequestPacket::decode_bytes(body)?;
            let ret = match p.status.get(status_key::RESULT_CODE) {
                Some(s) => s.trim().parse().map_err(|_| {
                    DecodeError::from(DecodeErrorKind::Invalid(format!("bad {}: {s:?}", status_key::RESULT_CODE)))
                })?,
                None => ret::SUCCESS,
            };
            let desc = p.status.get(status_key::RESULT_DESC).cloned().unwrap_or_default();
            return Ok(Reply {
                version: v,
                request_id: p.i_request_id,
                ret,
                desc,
                body: p.s_buffer,
                status: p.status,
                context: p.context,
            });
        }
        let p = ResponsePacket::decode_bytes(body)?;
        Ok(Reply {
            version: p.i_version,
            request_id: p.i_request_id,
            ret: p.i_ret,
            desc: p.s_result_desc,
            body: p.s_buffer,
            status: p.status,
            context: p.context,
        })
    }

    /// A reader over the results.
    pub fn params(&self) -> Result<ParamReader<'_>, DecodeError> {
        ParamReader::new(self.version, &self.body)
    }
}

/// Why a client call failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CallError {
    /// No reply within the timeout.
    #[error("call timed out")]
    Timeout,
    /// The connection could not be made or broke.
    #[error("connection failed: {0}")]
    Connect(String),
    /// The request could not be sent.
    #[error("send failed: {0}")]
    Send(String),
    /// No endpoint is available for the object.
    #[error("no endpoint available")]
    NoEndpoint,
    /// The reply could not be decoded.
    #[error("bad reply: {0}")]
    Decode(#[from] DecodeError),
    /// The server answered with a non-zero `iRet`.
    #[error("server returned {code}: {desc}")]
    Server {
        /// `iRet`.
        code: i32,
        /// `sResultDesc`.
        desc: String,
    },
}

impl CallError {
    /// The TARS return code for this failure, as a C++ client would report it.
    pub fn code(&self) -> i32 {
        match self {
            CallError::Timeout => ret::INVOKE_TIMEOUT,
            CallError::Connect(_) => ret::PROXY_CONNECT_ERR,
            CallError::Send(_) => ret::SEND_REQUEST_ERR,
            CallError::NoEndpoint => ret::ADAPTER_NULL,
            CallError::Decode(_) => ret::CLIENT_DECODE_ERR,
            CallError::Server { code, .. } => *code,
        }
    }
}

/// How a proxy calls: protocol version, timeout and context for every call it makes.
#[derive(Debug, Clone, PartialEq)]
pub struct CallOptions {
    /// iVersion: 1, 3 or 5.
    pub version: i16,
    /// iTimeout in ms.
    pub timeout_ms: i32,
    /// Context sent with every call.
    pub context: StringMap,
    /// Status sent with every call.
    pub status: StringMap,
}

impl Default for CallOptions {
    fn default() -> Self {
        CallOptions { version: version::TARS, timeout_ms: 3000, context: StringMap::new(), status: StringMap::new() }
    }
}

/// Carries a request to a servant and brings back its reply. A communicator implements this
/// over connections; the request id is the transport's to assign.
#[allow(async_fn_in_trait)]
pub trait Transport {
    /// Sends `request` and waits for the reply. For oneway requests, resolves once sent with
    /// an empty reply.
    async fn invoke(&self, request: RequestPacket) -> Result<Reply, CallError>;
}

impl<T: Transport + ?Sized> Transport for &T {
    async fn invoke(&self, request: RequestPacket) -> Result<Reply, CallError> {
        (**self).invoke(request).await
    }
}

/// Makes one call through `transport` and returns the reply when `iRet` is 0.
/// Generated proxies call this.
pub async fn call<T: Transport + ?Sized>(
    transport: &T,
    servant: &str,
    func: &str,
    body: Bytes,
    options: &CallOptions,
    oneway: bool,
) -> Result<Reply, CallError> {
    let request = RequestPacket {
        i_version: options.version,
        c_packet_type: if oneway { packet_type::ONEWAY } else { packet_type::NORMAL },
        i_message_type: 0,
        i_request_id: 0,
        s_servant_name: servant.to_owned(),
        s_func_name: func.to_owned(),
        s_buffer: body,
        i_timeout: options.timeout_ms,
        context: options.context.clone(),
        status: options.status.clone(),
    };
    let reply = transport.invoke(request).await?;
    if reply.ret != ret::SUCCESS {
        return Err(CallError::Server { code: reply.ret, desc: reply.desc });
    }
    Ok(reply)
}
