//! Connection authentication: TarsCpp's local AK/SK scheme, for endpoints with `-e 1`.
//! Sans-IO: the connections (server and client) do the reading, writing and clock.
//!
//! # The handshake
//!
//! The first frame a client sends on a connection to an `-e 1` endpoint is a `RequestPacket`
//! with iVersion 1, cPacketType 0, iMessageType `0x40`, iRequestId 1, function
//! [`AUTH_FUNC`] and the object as servant; its `sBuffer` is a `BasicAuthPackage`
//! ([`AuthPackage`]). Nothing else is sent until the server answers with a `ResponsePacket`
//! (iVersion 1, the request's id, packet and message type, iRet 0) whose `sBuffer` is the name
//! of the resulting `AUTH_STATE`: `AUTH_SUCC`, or the reason it refused, after which the
//! server closes the connection. TarsCpp's server closes without that answer; its client
//! treats anything but `AUTH_SUCC` as a refusal, so both forms end the same way for it, and
//! ours can say why.
//!
//! TarsCpp 3.x servers decode the handshake from their raw receive buffer, length prefix
//! included, which the TARS decoder skips as two tag-0 fields only while the frame is under
//! 256 bytes: while twice the object name's length plus the access key's stays under about
//! 155. Our client's frame is byte for byte TarsCpp's client's, so it fits wherever theirs
//! does; our server has no such limit.
//!
//! # The signature
//!
//! With `hex` the lower-case hex digits of a digest (TarsCpp's `sha1str`, `md5str`):
//!
//! - `secret1 = hex(sha1(SK))`, `secret2 = hex(sha1(secret1))`, 40 ASCII bytes each;
//! - the first 8 bytes of `secret2` are OR-ed with the bytes of `iTime` as an int64 in memory,
//!   little-endian (TarsCpp ORs the raw bytes of the integer; every platform it ships for is
//!   little-endian), and `tmpKey = hex(md5(that))`, 32 ASCII bytes;
//! - `sSignature` = three-key 3DES (EDE, ECB) of `secret1` under the first 24 bytes of
//!   `tmpKey`, padded PKCS#5-style (a whole block of 8s when aligned): 48 bytes.
//!
//! The server knows SK, so it derives `secret2` and `tmpKey` itself, decrypts the signature
//! and checks that the sha1 hex of the result is `secret2`. It accepts `iTime` strictly within
//! [`TIME_WINDOW`] seconds of its own clock, and only `sHashMethod` `sha1`. This is TarsCpp's
//! scheme unchanged, since peers must interoperate: a handshake recorded on the wire can be
//! replayed for as long as its time is in the window, so `-e 1` keeps out callers that do not
//! know the key, not eavesdroppers.

use std::fmt;

use bytes::Bytes;
use des::cipher::generic_array::GenericArray;
use des::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use des::TdesEde3;
use md5::Md5;
use sha1::{Digest, Sha1};
use tars_proto::codec::{DecodeError, Field, Reader, Struct, WireType, Writer};
use tars_proto::frame::encode_frame;
use tars_proto::packet::{message_type, packet_type, version, RequestPacket, ResponsePacket};
pub use tars_protocol::tars::AUTH_STATE as AuthState;

/// The function name of the handshake request.
pub const AUTH_FUNC: &str = "InnerAuthServer";
/// The handshake's `iMessageType`.
pub const AUTH_MESSAGE_TYPE: i32 = message_type::AUTH;
/// The handshake's `iRequestId`.
pub const AUTH_REQUEST_ID: i32 = 1;
/// The only `sHashMethod` there is.
pub const HASH_METHOD: &str = "sha1";
/// How far, in seconds, `iTime` may be from the server's clock (exclusive).
pub const TIME_WINDOW: i64 = 3600;
/// The endpoint `-e` value that asks for this handshake.
pub const AUTH_TYPE_LOCAL: i32 = tars_protocol::tars::AUTH_TYPE::AUTH_TYPELOCAL.0;
/// Largest handshake frame (request or reply) either side reads. A real one is a few hundred
/// bytes; this bounds what a peer can make us buffer before it has authenticated.
pub const MAX_HANDSHAKE_FRAME: usize = 64 * 1024;
/// Longest state name a refusal's error message repeats.
const MAX_STATE_ECHO: usize = 64;

/// An access key and its secret key: the `accesskey` and `secretkey` config keys. `Debug`
/// never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Keys {
    access_key: String,
    secret_key: String,
}

impl Keys {
    /// The pair `access_key` / `secret_key`.
    pub fn new(access_key: impl Into<String>, secret_key: impl Into<String>) -> Keys {
        Keys { access_key: access_key.into(), secret_key: secret_key.into() }
    }

    /// The access key (sent on the wire as `sAccessKey`).
    pub fn access_key(&self) -> &str {
        &self.access_key
    }

    /// The secret key, for writing a config back; never log it.
    pub fn secret_key(&self) -> &str {
        &self.secret_key
    }
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keys").field("access_key", &self.access_key).field("secret_key", &"<hidden>").finish()
    }
}

/// The handshake body, `BasicAuthPackage` of `AuthF.tars` (tags 1–5), with the same wire
/// form as the generated `tars_protocol::tars::BasicAuthPackage`. Written out here because
/// `sSignature` is a TARS `string` that carries ciphertext, and the generated type's Rust
/// `String` must be UTF-8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthPackage {
    /// 1 `sObjName`: the object the client wants.
    pub obj_name: String,
    /// 2 `sAccessKey`.
    pub access_key: String,
    /// 3 `iTime`: the client's clock, in seconds since the epoch.
    pub time: i64,
    /// 4 `sHashMethod`, default `sha1` (not written when it is the default, as TarsCpp).
    pub hash_method: String,
    /// 5 `sSignature`: raw bytes.
    pub signature: Vec<u8>,
}

impl Default for AuthPackage {
    fn default() -> Self {
        AuthPackage {
            obj_name: String::new(),
            access_key: String::new(),
            time: 0,
            hash_method: HASH_METHOD.to_owned(),
            signature: Vec::new(),
        }
    }
}

/// A TARS `string` whose bytes need not be UTF-8.
struct RawString(Vec<u8>);

impl Field for RawString {
    fn write_to(&self, tag: u8, w: &mut Writer) {
        w.write_str_bytes(tag, &self.0);
    }
    fn read_from(r: &mut Reader<'_>, ty: WireType) -> Result<Self, DecodeError> {
        r.read_str_payload(ty).map(|b| RawString(b.to_vec()))
    }
}

impl Struct for AuthPackage {
    const NAME: &'static str = "BasicAuthPackage";

    fn write_fields(&self, w: &mut Writer) {
        w.write_str(1, &self.obj_name);
        w.write_str(2, &self.access_key);
        w.write_int(3, self.time);
        if self.hash_method != HASH_METHOD {
            w.write_str(4, &self.hash_method);
        }
        // TarsCpp writes an optional field without a default always.
        w.write_str_bytes(5, &self.signature);
    }

    fn read_fields(&mut self, r: &mut Reader<'_>) -> Result<(), DecodeError> {
        let at = |field| move |e: DecodeError| e.at(Self::NAME, field);
        self.obj_name = r.read_required(1).map_err(at("sObjName"))?;
        self.access_key = r.read_required(2).map_err(at("sAccessKey"))?;
        self.time = r.read_required(3).map_err(at("iTime"))?;
        if let Some(v) = r.read_optional(4).map_err(at("sHashMethod"))? {
            self.hash_method = v;
        }
        if let Some(RawString(v)) = r.read_optional(5).map_err(at("sSignature"))? {
            self.signature = v;
        }
        Ok(())
    }

    fn size_hint(&self) -> usize {
        self.obj_name.len() + self.access_key.len() + self.signature.len() + 32
    }
}

/// Lower-case hex of `digest` into `out` (twice its length).
fn hex_into(digest: &[u8], out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (pair, b) in out.chunks_exact_mut(2).zip(digest) {
        pair[0] = DIGITS[usize::from(b >> 4)];
        pair[1] = DIGITS[usize::from(b & 0x0f)];
    }
}

/// TarsCpp's `TC_SHA::sha1str`: the digest as 40 lower-case hex digits.
fn sha1_hex(data: &[u8]) -> [u8; 40] {
    let mut out = [0; 40];
    hex_into(&Sha1::digest(data), &mut out);
    out
}

/// TarsCpp's `TC_MD5::md5str`: the digest as 32 lower-case hex digits.
fn md5_hex(data: &[u8]) -> [u8; 32] {
    let mut out = [0; 32];
    hex_into(&Md5::digest(data), &mut out);
    out
}

/// The 3DES cipher keyed by `tmpKey` for `secret2` at `time`.
fn cipher(secret2: &[u8; 40], time: i64) -> TdesEde3 {
    let mut tmp = *secret2;
    for (t, b) in tmp.iter_mut().zip(time.to_le_bytes()) {
        *t |= b;
    }
    let tmp_key = md5_hex(&tmp);
    // The hex key has no NUL, so TarsCpp's strlen-bounded copy takes 24 of its 32 bytes.
    TdesEde3::new(GenericArray::from_slice(&tmp_key[..24]))
}

/// `sSignature` for secret key `secret_key` at `time`: 48 bytes.
pub fn signature(secret_key: &str, time: i64) -> Vec<u8> {
    let secret1 = sha1_hex(secret_key.as_bytes());
    let secret2 = sha1_hex(&secret1);
    let tdes = cipher(&secret2, time);
    let pad = 8 - secret1.len() % 8;
    let mut data = secret1.to_vec();
    data.resize(secret1.len() + pad, u8::try_from(pad).unwrap_or(8));
    for block in data.chunks_exact_mut(8) {
        tdes.encrypt_block(GenericArray::from_mut_slice(block));
    }
    data
}

/// The handshake body `object` sends with `keys` at `time`.
pub fn package(object: &str, keys: &Keys, time: i64) -> AuthPackage {
    AuthPackage {
        obj_name: object.to_owned(),
        access_key: keys.access_key.clone(),
        time,
        hash_method: HASH_METHOD.to_owned(),
        signature: signature(&keys.secret_key, time),
    }
}

/// The handshake request, framed, as a client for `object` sends it first on a connection.
pub fn request_frame(object: &str, keys: &Keys, time: i64) -> Bytes {
    let req = RequestPacket {
        i_version: version::TARS,
        c_packet_type: packet_type::NORMAL,
        i_message_type: AUTH_MESSAGE_TYPE,
        i_request_id: AUTH_REQUEST_ID,
        s_servant_name: object.to_owned(),
        s_func_name: AUTH_FUNC.to_owned(),
        s_buffer: package(object, keys, time).encode(),
        ..RequestPacket::default()
    };
    encode_frame(&req)
}

/// What a server with `keys` serving `expect_object` makes of `pkg` at `now` (seconds since
/// the epoch). The checks and their order are TarsCpp's, so a refusal names the same state.
pub fn verify(pkg: &AuthPackage, expect_object: &str, keys: &Keys, now: i64) -> AuthState {
    if pkg.access_key != keys.access_key {
        return AuthState::AUTH_WRONG_AK;
    }
    if pkg.obj_name != expect_object {
        return AuthState::AUTH_WRONG_OBJ;
    }
    if i128::from(pkg.time).abs_diff(i128::from(now)) >= TIME_WINDOW.unsigned_abs().into() {
        return AuthState::AUTH_WRONG_TIME;
    }
    if pkg.hash_method != HASH_METHOD {
        return AuthState::AUTH_NOT_SUPPORT_ENC;
    }
    let secret2 = sha1_hex(&sha1_hex(keys.secret_key.as_bytes()));
    let Some(secret1) = decrypt(&cipher(&secret2, pkg.time), &pkg.signature) else {
        return AuthState::AUTH_DEC_FAIL;
    };
    if sha1_hex(&secret1) != secret2 {
        return AuthState::AUTH_ERROR;
    }
    AuthState::AUTH_SUCC
}

/// Decrypts whole blocks and drops the padding the way TarsCpp's `decrypt3` does (the last
/// byte, read as a signed char, says how many bytes to drop; out of range leaves nothing).
/// `None` for input that is not whole blocks, which TarsCpp would decrypt into garbage.
fn decrypt(tdes: &TdesEde3, data: &[u8]) -> Option<Vec<u8>> {
    if data.is_empty() || data.len() % 8 != 0 {
        return None;
    }
    let mut out = data.to_vec();
    for block in out.chunks_exact_mut(8) {
        tdes.decrypt_block(GenericArray::from_mut_slice(block));
    }
    let pad = out.last().map_or(0, |&b| i8::from_ne_bytes([b]));
    match usize::try_from(pad) {
        Ok(n) if n <= out.len() => out.truncate(out.len() - n),
        _ => out.clear(),
    }
    Some(out)
}

/// A server's answer to a connection's first frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The resulting state; the connection is served only on `AUTH_SUCC`.
    pub state: AuthState,
    /// The framed reply naming the state; `None` when the frame was not even a request, so
    /// there is no request id to answer.
    pub reply: Option<Bytes>,
}

impl Verdict {
    /// The handshake succeeded.
    pub fn is_success(&self) -> bool {
        self.state == AuthState::AUTH_SUCC
    }
}

/// Checks `frame` (one frame body, the length prefix removed), the first a client sent, for a
/// server serving `expect_object` with `keys` (`None`: no keys configured, every handshake
/// is refused) at `now`. As TarsCpp, the packet's function and message type are not looked at:
/// whatever comes first must carry a valid `BasicAuthPackage`.
pub fn check_request(frame: &Bytes, expect_object: &str, keys: Option<&Keys>, now: i64) -> Verdict {
    let Ok(req) = RequestPacket::decode_bytes(frame) else {
        return Verdict { state: AuthState::AUTH_PROTO_ERR, reply: None };
    };
    let state = match (AuthPackage::decode(&req.s_buffer), keys) {
        (Err(_), _) => AuthState::AUTH_PROTO_ERR,
        (Ok(_), None) => AuthState::AUTH_WRONG_AK,
        (Ok(pkg), Some(keys)) => verify(&pkg, expect_object, keys, now),
    };
    Verdict { state, reply: Some(reply_frame(&req, state)) }
}

/// The framed answer to handshake `req`.
fn reply_frame(req: &RequestPacket, state: AuthState) -> Bytes {
    let name = state.name().unwrap_or("AUTH_ERROR");
    let rsp = ResponsePacket {
        i_version: version::TARS,
        c_packet_type: req.c_packet_type,
        i_request_id: req.i_request_id,
        i_message_type: req.i_message_type,
        i_ret: 0,
        s_buffer: Bytes::from_static(name.as_bytes()),
        ..ResponsePacket::default()
    };
    encode_frame(&rsp)
}

/// Why a client's handshake failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// The server answered with a state other than `AUTH_SUCC`.
    #[error("authentication refused by the server: {0}")]
    Refused(String),
    /// The server's answer is not a `ResponsePacket`.
    #[error("undecodable authentication reply: {0}")]
    Decode(DecodeError),
}

/// Checks the server's answer `frame` (one frame body) to a client's handshake. Unlike
/// TarsCpp (which compares only as many bytes as the answer has, so an empty answer passes),
/// the state must be `AUTH_SUCC` exactly, in any case.
pub fn check_reply(frame: &Bytes) -> Result<(), HandshakeError> {
    let rsp = ResponsePacket::decode_bytes(frame).map_err(HandshakeError::Decode)?;
    if rsp.s_buffer.eq_ignore_ascii_case(b"AUTH_SUCC") {
        return Ok(());
    }
    if rsp.s_buffer.is_empty() {
        return Err(HandshakeError::Refused(format!(
            "no state in the answer (iRet {}{}): is the endpoint's `-e 1` also set on the server?",
            rsp.i_ret,
            if rsp.s_result_desc.is_empty() { String::new() } else { format!(", {}", rsp.s_result_desc) }
        )));
    }
    let shown: String = String::from_utf8_lossy(&rsp.s_buffer[..rsp.s_buffer.len().min(MAX_STATE_ECHO)])
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    Err(HandshakeError::Refused(shown))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_lower_case() {
        let mut out = [0; 6];
        hex_into(&[0x0a, 0xbc, 0xf0], &mut out);
        assert_eq!(&out, b"0abcf0");
    }

    #[test]
    fn padding_is_read_back_like_tarscpp() {
        let tdes = TdesEde3::new(GenericArray::from_slice(&[7u8; 24]));
        let enc = |plain: &[u8]| {
            let mut d = plain.to_vec();
            for b in d.chunks_exact_mut(8) {
                tdes.encrypt_block(GenericArray::from_mut_slice(b));
            }
            d
        };
        assert_eq!(decrypt(&tdes, &enc(b"abcdefg\x01")).unwrap(), b"abcdefg");
        assert_eq!(decrypt(&tdes, &enc(b"abcdefgh")).unwrap(), b"", "pad 104 > 8: nothing left");
        assert_eq!(decrypt(&tdes, &enc(b"abcdefg\x00")).unwrap(), b"abcdefg\x00", "pad 0 drops nothing");
        assert_eq!(decrypt(&tdes, &enc(b"abcdefg\xff")).unwrap(), b"", "a negative pad drops everything");
        assert_eq!(decrypt(&tdes, &[0; 7]), None);
        assert_eq!(decrypt(&tdes, &[]), None);
    }

    #[test]
    fn keys_never_show_the_secret() {
        let k = Keys::new("ak", "very-secret");
        let shown = format!("{k:?}");
        assert!(shown.contains("ak") && !shown.contains("very-secret"), "{shown}");
    }
}
