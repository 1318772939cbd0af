//! What goes on the wire: the echo request, encoded once per connection with only its
//! request id patched per call, and the checks applied to each reply.
//!
//! TARS: a `RequestPacket` calling `int func(string sIn, out string sOut)` on `servant` with
//! `sIn` = `size` bytes of `'a'` (the request TarsCpp's `StressServer.testStr` expects), in
//! iVersion 1 (by tag) or 3 (TUP, by name). Request ids are `ID_BASE + slot`, always at least
//! 2^30, so they always take the 4-byte integer form and can be patched in place. A reply is
//! good when `iRet == 0`, the return value is 0 and `sOut` has `size` bytes.
//!
//! Raw: a frame of a 4-byte big-endian length that counts itself, then `size` bytes (at least
//! 4) whose first 4 hold the request id; the reply must be the same frame.
//!
//! Custom TARS calls ([`Request::calls`], [`Checker::custom`]): any `servant.func` with
//! pre-encoded parameter bodies, one variant each (a request picks one, e.g. at random), and
//! a caller-supplied check of each reply's results (the registry benchmark sends
//! `findObjectById` for random objects this way).

use std::sync::Arc;

use anyhow::{bail, ensure, Result};
use bytes::Bytes;
use tars_proto::codec::{Reader, WireType};
use tars_proto::frame::encode_frame;
use tars_proto::packet::{packet_type, version, RequestPacket, StringMap};
use tars_proto::rpc::{ParamWriter, Reply};

/// Added to a connection's slot number to form a request id.
pub const ID_BASE: u32 = 0x4000_0000;
/// Placeholder id used to find where the id sits in the encoded request.
const SENTINEL: i32 = 0x5A5A_5A5A;
/// `iTimeout` sent with every request: long, so a loaded server never answers "queue
/// timeout" because of it, and within the 2-byte integer form, so a 100 B request is the
/// 167 bytes of TarsCpp's async proxy with a 4-byte request id.
pub const REQUEST_TIMEOUT_MS: i32 = 30_000;

/// Which protocol a run speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// TARS with this iVersion (1 or 3).
    Tars(i16),
    /// Length-prefixed raw frames, for the raw echo server.
    Raw,
}

/// A pre-encoded request: one or more variants (the same call with different parameters),
/// each sent with only its request id patched. The variants sit back to back in one buffer,
/// so picking one at random costs the client as few cache misses as possible.
#[derive(Debug, Clone)]
pub struct Request {
    frames: Vec<u8>,
    /// Per variant: where its frame starts in `frames` and where its id sits in the frame.
    variants: Vec<(usize, usize)>,
}

#[derive(Debug, Clone)]
struct Encoded {
    frame: Vec<u8>,
    id_at: usize,
}

impl Request {
    /// The TARS echo call.
    pub fn tars(ver: i16, servant: &str, func: &str, size: usize) -> Result<Request> {
        ensure!(ver == version::TARS || ver == version::TUP, "--version must be 1 or 3, not {ver}");
        let payload = "a".repeat(size);
        let mut w = ParamWriter::new(ver);
        w.write_str(1, "sIn", &payload);
        Request::calls(ver, servant, func, &[w.finish()])
    }

    /// Any TARS call `servant.func`: one variant per parameter body (`sBuffer`, already encoded
    /// for `ver`); [`Request::append_variant`] picks one per request.
    pub fn calls(ver: i16, servant: &str, func: &str, bodies: &[Bytes]) -> Result<Request> {
        ensure!(ver == version::TARS || ver == version::TUP, "--version must be 1 or 3, not {ver}");
        ensure!(!bodies.is_empty(), "a request needs at least one parameter body");
        Request::from_encoded(bodies.iter().map(|b| encode_call(ver, servant, func, b.clone())))
    }

    /// The raw echo frame (payloads under 4 bytes are raised to 4, to hold the id).
    pub fn raw(size: usize) -> Request {
        let size = size.max(4);
        let len = u32::try_from(4 + size).unwrap_or(u32::MAX);
        let mut frame = Vec::with_capacity(4 + size);
        frame.extend_from_slice(&len.to_be_bytes());
        frame.resize(4 + size, b'a');
        Request { frames: frame, variants: vec![(0, 4)] }
    }

    fn from_encoded(encoded: impl Iterator<Item = Result<Encoded>>) -> Result<Request> {
        let mut r = Request { frames: Vec::new(), variants: Vec::new() };
        for e in encoded {
            let e = e?;
            r.variants.push((r.frames.len(), e.id_at));
            r.frames.extend_from_slice(&e.frame);
        }
        Ok(r)
    }

    /// The frame of variant `i` and where its id sits.
    fn variant(&self, i: usize) -> (&[u8], usize) {
        let (start, id_at) = self.variants[i];
        let end = self.variants.get(i + 1).map_or(self.frames.len(), |v| v.0);
        (&self.frames[start..end], id_at)
    }

    /// Appends the (first) request with id slot `slot` to `out`.
    pub fn append(&self, out: &mut Vec<u8>, slot: u32) {
        self.append_variant(out, slot, 0);
    }

    /// Appends variant `pick` (modulo the number of variants) with id slot `slot` to `out`.
    pub fn append_variant(&self, out: &mut Vec<u8>, slot: u32, pick: usize) {
        let (frame, id_at) = self.variant(pick % self.variants.len());
        let at = out.len() + id_at;
        out.extend_from_slice(frame);
        out[at..at + 4].copy_from_slice(&(ID_BASE + slot).to_be_bytes());
    }

    /// How many variants there are (1 for the echo and raw requests).
    pub fn variants(&self) -> usize {
        self.variants.len()
    }

    /// Encoded size in bytes of the first variant, prefix included.
    pub fn len(&self) -> usize {
        self.variant(0).0.len()
    }

    /// Never true: a request has at least its prefix.
    pub fn is_empty(&self) -> bool {
        self.variant(0).0.is_empty()
    }
}

/// Encodes one request with the sentinel id and finds where the id sits.
fn encode_call(ver: i16, servant: &str, func: &str, body: Bytes) -> Result<Encoded> {
    let frame = encode_frame(&RequestPacket {
        i_version: ver,
        c_packet_type: packet_type::NORMAL,
        i_message_type: 0,
        i_request_id: SENTINEL,
        s_servant_name: servant.to_owned(),
        s_func_name: func.to_owned(),
        s_buffer: body,
        i_timeout: REQUEST_TIMEOUT_MS,
        context: StringMap::new(),
        status: StringMap::new(),
    })
    .to_vec();
    // Tag 4, type Int4 (head 0x42), then the sentinel: within the fixed-size header.
    let mut needle = vec![0x42];
    needle.extend_from_slice(&SENTINEL.to_be_bytes());
    let head = &frame[..frame.len().min(32)];
    let Some(at) = head.windows(needle.len()).position(|w| w == needle.as_slice()) else {
        bail!("request id not found in the encoded request");
    };
    Ok(Encoded { frame, id_at: at + 1 })
}

/// Checks the results of a reply to a custom call: called with the reply's iVersion and its
/// encoded results (`sBuffer`) once the framework return code is known to be 0.
pub type ResultCheck = Arc<dyn Fn(i16, &Bytes) -> Result<(), String> + Send + Sync>;

/// A reply that is wrong; `slot` is set when its request could still be identified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadReply {
    /// The request it answers, when known.
    pub slot: Option<u32>,
    /// What is wrong.
    pub why: String,
}

/// Checks replies (frame bodies, without the length prefix).
#[derive(Clone)]
pub struct Checker {
    proto: Proto,
    size: usize,
    results: Option<ResultCheck>,
}

impl std::fmt::Debug for Checker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checker")
            .field("proto", &self.proto)
            .field("size", &self.size)
            .field("custom", &self.results.is_some())
            .finish()
    }
}

impl Checker {
    /// Checks replies to [`Request::tars`] / [`Request::raw`] with this `size`.
    pub fn new(proto: Proto, size: usize) -> Checker {
        let size = if proto == Proto::Raw { size.max(4) } else { size };
        Checker { proto, size, results: None }
    }

    /// Checks replies to a custom call ([`Request::calls`]) in iVersion `ver`: the framework
    /// return code must be 0 and `results` must accept the encoded results.
    pub fn custom(ver: i16, results: ResultCheck) -> Checker {
        Checker { proto: Proto::Tars(ver), size: 0, results: Some(results) }
    }

    /// The slot the reply answers, if it is a good reply.
    pub fn check(&self, body: &Bytes) -> Result<u32, BadReply> {
        match self.proto {
            Proto::Raw => {
                let slot = body.get(..4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]).wrapping_sub(ID_BASE));
                if body.len() != self.size {
                    return Err(BadReply {
                        slot,
                        why: format!("raw reply of {} bytes, sent {}", body.len(), self.size),
                    });
                }
                slot.ok_or_else(|| BadReply { slot: None, why: "short raw reply".into() })
            }
            Proto::Tars(version::TARS) => self.check_v1(body),
            Proto::Tars(_) => self.check_generic(body),
        }
    }

    /// iVersion 1, read in place: id, iRet, then `sBuffer`'s tag 0 and tag 2 length.
    fn check_v1(&self, body: &Bytes) -> Result<u32, BadReply> {
        let bad = |slot, why: String| BadReply { slot, why };
        let mut r = Reader::from_bytes(body);
        let id: i32 = r.read_required(3).map_err(|e| bad(None, format!("reply iRequestId: {e}")))?;
        let slot = Some((id as u32).wrapping_sub(ID_BASE));
        let ret: i32 = r.read_required(5).map_err(|e| bad(slot, format!("reply iRet: {e}")))?;
        if ret != 0 {
            let desc: Option<String> = r.read_optional(8).ok().flatten();
            return Err(bad(slot, format!("iRet {ret}: {}", desc.unwrap_or_default())));
        }
        let buf: Bytes = r.read_required(6).map_err(|e| bad(slot, format!("reply sBuffer: {e}")))?;
        if let Some(check) = &self.results {
            check(version::TARS, &buf).map_err(|why| bad(slot, why))?;
            return slot.ok_or_else(|| bad(None, "no request id".into()));
        }
        let mut p = Reader::from_bytes(&buf);
        let rv: i32 = p.read_required(0).map_err(|e| bad(slot, format!("return value: {e}")))?;
        let out_len = match p.skip_to_tag(2) {
            Ok(Some(h)) if matches!(h.ty, WireType::String1 | WireType::String4) => {
                p.read_str_payload(h.ty).map(<[u8]>::len).map_err(|e| bad(slot, format!("sOut: {e}")))?
            }
            Ok(_) => return Err(bad(slot, "sOut (tag 2) missing or not a string".into())),
            Err(e) => return Err(bad(slot, format!("sOut: {e}"))),
        };
        self.verdict(slot, rv, out_len)
    }

    /// Any version, through the general reply decoder (allocates; used for TUP).
    fn check_generic(&self, body: &Bytes) -> Result<u32, BadReply> {
        let reply = Reply::decode(body).map_err(|e| BadReply { slot: None, why: format!("reply: {e}") })?;
        let slot = Some((reply.request_id as u32).wrapping_sub(ID_BASE));
        if reply.ret != 0 {
            return Err(BadReply { slot, why: format!("iRet {}: {}", reply.ret, reply.desc) });
        }
        if let Some(check) = &self.results {
            check(reply.version, &reply.body).map_err(|why| BadReply { slot, why })?;
            return slot.ok_or_else(|| BadReply { slot: None, why: "no request id".into() });
        }
        let decoded = reply.params().and_then(|mut p| {
            let rv: i32 = p.read_ret()?;
            let out: String = p.read(2, "sOut")?;
            Ok((rv, out.len()))
        });
        match decoded {
            Ok((rv, len)) => self.verdict(slot, rv, len),
            Err(e) => Err(BadReply { slot, why: format!("reply parameters: {e}") }),
        }
    }

    fn verdict(&self, slot: Option<u32>, rv: i32, out_len: usize) -> Result<u32, BadReply> {
        if rv != 0 {
            return Err(BadReply { slot, why: format!("return value {rv}") });
        }
        if out_len != self.size {
            return Err(BadReply { slot, why: format!("sOut has {out_len} bytes, sent {}", self.size) });
        }
        slot.ok_or_else(|| BadReply { slot: None, why: "no request id".into() })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use tars_proto::frame::FrameDecoder;
    use tars_proto::rpc::{reply_frame, Current, ParamReader};

    fn echo_reply(frame: &[u8], size_override: Option<usize>) -> Bytes {
        let body = Bytes::copy_from_slice(&frame[4..]);
        let req = RequestPacket::decode_body(&body).unwrap();
        let (current, params) = Current::from_packet(req, None);
        let mut p = ParamReader::new(current.version, &params).unwrap();
        let mut s: String = p.read(1, "sIn").unwrap();
        if let Some(n) = size_override {
            s.truncate(n);
        }
        let mut w = ParamWriter::new(current.version);
        w.write_ret(&0i32);
        w.write_str(2, "sOut", &s);
        let mut reply = bytes::BytesMut::from(&reply_frame(&current, Ok(w.finish())).unwrap()[..]);
        FrameDecoder::new().decode(&mut reply).unwrap().unwrap()
    }

    #[test]
    fn tars_requests_patch_the_id_and_replies_check() {
        for ver in [1, 3] {
            let req = Request::tars(ver, "TestApp.StressServer.StressObj", "testStr", 100).unwrap();
            let mut out = Vec::new();
            req.append(&mut out, 7);
            req.append(&mut out, 70_000);
            assert_eq!(out.len(), 2 * req.len());
            let decoded = RequestPacket::decode_body(&Bytes::copy_from_slice(&out[4..req.len()])).unwrap();
            assert_eq!(decoded.i_request_id as u32, ID_BASE + 7);
            assert_eq!(decoded.s_func_name, "testStr");
            let checker = Checker::new(Proto::Tars(ver), 100);
            assert_eq!(checker.check(&echo_reply(&out[req.len()..], None)), Ok(70_000));
            let short = checker.check(&echo_reply(&out[..req.len()], Some(99))).unwrap_err();
            assert_eq!(short.slot, Some(7), "{short:?}");
        }
        // TarsCpp's async proxy sends 164-167 bytes for 100 B (167 with a 4-byte id).
        assert_eq!(Request::tars(1, "TestApp.StressServer.StressObj", "testStr", 100).unwrap().len(), 167);
    }

    #[test]
    fn custom_calls_pick_variants_and_check_results() {
        let bodies: Vec<Bytes> = ["A.B.Obj", "C.D.Obj"]
            .iter()
            .map(|id| {
                let mut w = ParamWriter::new(1);
                w.write_str(1, "id", id);
                w.finish()
            })
            .collect();
        let req = Request::calls(1, "tars.tarsregistry.QueryObj", "findObjectById", &bodies).unwrap();
        assert_eq!(req.variants(), 2);
        let mut out = Vec::new();
        req.append_variant(&mut out, 5, 3);
        let decoded = RequestPacket::decode_body(&Bytes::copy_from_slice(&out[4..])).unwrap();
        assert_eq!(decoded.i_request_id as u32, ID_BASE + 5);
        let (current, params) = Current::from_packet(decoded, None);
        let id: String = ParamReader::new(1, &params).unwrap().read(1, "id").unwrap();
        assert_eq!(id, "C.D.Obj");
        let mut w = ParamWriter::new(1);
        w.write_ret(&7i32);
        let mut reply = bytes::BytesMut::from(&reply_frame(&current, Ok(w.finish())).unwrap()[..]);
        let body = FrameDecoder::new().decode(&mut reply).unwrap().unwrap();
        let seven: ResultCheck = Arc::new(|ver, results| {
            let rv: i32 = ParamReader::new(ver, results).and_then(|mut p| p.read_ret()).map_err(|e| e.to_string())?;
            if rv == 7 {
                Ok(())
            } else {
                Err(format!("got {rv}"))
            }
        });
        assert_eq!(Checker::custom(1, seven).check(&body), Ok(5));
        let never: ResultCheck = Arc::new(|_, _| Err("no".into()));
        assert_eq!(Checker::custom(1, never).check(&body), Err(BadReply { slot: Some(5), why: "no".into() }));
    }

    #[test]
    fn raw_frames_carry_the_id() {
        let req = Request::raw(100);
        let mut out = Vec::new();
        req.append(&mut out, 3);
        assert_eq!(out.len(), 104);
        assert_eq!(&out[..4], &104u32.to_be_bytes());
        let checker = Checker::new(Proto::Raw, 100);
        assert_eq!(checker.check(&Bytes::copy_from_slice(&out[4..])), Ok(3));
        assert!(checker.check(&Bytes::copy_from_slice(&out[4..50])).is_err());
    }
}
