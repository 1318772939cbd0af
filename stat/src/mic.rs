//! `reportMicMsg` decoded without building the generated types: the entries of one request as
//! borrowed views of the request body, sans-IO.
//!
//! The generated servant decodes `map<StatMicMsgHead, StatMicMsgBody>` into a `BTreeMap` of
//! owned structs: eight `String`s and one `BTreeMap<i32, i32>` per entry, and a tree insert
//! that compares heads string by string. [`MicReport::decode`] reads the same bytes with the
//! same codec ([`Reader`]: the same heads, widening, skipping, depth limit and length checks)
//! into [`MicHead`]s whose strings are slices of the body, and bodies whose histogram
//! buckets are slices of one vector per request: one or two allocations per request instead
//! of about eleven per entry.
//!
//! It gives exactly what the generated decoder gives (the tests and the `stat_mic` fuzz
//! target compare the two):
//! - the same accept/reject decision, and the same [`DecodeError`] (kind and field path),
//!   because the fields are read in the same order with the same reader calls; the only
//!   extra errors are the [`MicLimits`];
//! - the same entries in the same order: the map's key order (`key[]` of `StatMicMsgHead`:
//!   every field in tag order, strings by bytes), a duplicate head keeping its first body, and
//!   within a body the buckets in ascending order, a duplicate bucket keeping its first count.
//!   TarsCpp writes maps in key order, so the common case is one pass that checks the order;
//!   anything else is sorted (stably) and deduplicated;
//! - nothing when anything is wrong: a request is decoded whole before any entry is handed
//!   out, as the generated servant sees either the whole map or a decode error.
//!
//! `bFromClient` (tag 2) comes after the map on the wire, and every entry needs it, which is
//! one more reason the entries are collected before they are handed out.
//!
//! Only iVersion 1 (fields by tag) is read here; TUP (3) and JSON (5) requests go through the
//! generated servant.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use tars_proto::codec::{DecodeError, DecodeErrorKind, Reader, WireType};
use tars_protocol::tars::{StatMicMsgBody, StatMicMsgHead};

use crate::ingest::{key_fields, IngestRules, StatKey, StatValue};

/// The function name this decoder is for.
pub const FUNC: &str = "reportMicMsg";

/// The `(struct, field)` the generated servant names for the map parameter.
const MSG: (&str, &str) = ("StatF.reportMicMsg", "msg");
/// ... and for the flag.
const FROM_CLIENT: (&str, &str) = ("StatF.reportMicMsg", "bFromClient");
const HEAD: &str = "StatMicMsgHead";
const BODY: &str = "StatMicMsgBody";

/// Entries are preallocated up to this count at most (as the codec's lists): a larger map
/// grows as it is read, so memory follows the bytes actually received.
const PREALLOC_MAX: usize = 1024;

/// Limits on one request, on top of the codec's (every count checked against the bytes that
/// remain, nesting depth 64). Exceeding one is a decode error naming the field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MicLimits {
    /// Entries in the map. Upstream clients send up to a few hundred per request.
    pub max_entries: usize,
    /// Histogram buckets in one body. TarsCpp clients send 9; tarsstat keeps at most
    /// [`crate::ingest::MAX_INTERVAL_BUCKETS`] of them.
    pub max_buckets: usize,
}

impl MicLimits {
    /// No limits beyond the codec's: exactly the generated decoder's accept/reject decision.
    pub const UNLIMITED: MicLimits = MicLimits { max_entries: usize::MAX, max_buckets: usize::MAX };

    /// The same limits on a request the generated decoder read (TUP and JSON), with the same
    /// errors as [`MicReport::decode`]: the frame size bounded what decoding it cost, and this
    /// keeps one encoding from feeding the aggregation more than another.
    pub fn check(&self, msg: &BTreeMap<StatMicMsgHead, StatMicMsgBody>) -> Result<(), DecodeError> {
        let over = |n: usize, what: &str, max: usize| {
            DecodeError::from(DecodeErrorKind::Invalid(format!("{n} {what}, more than the limit of {max}")))
        };
        if msg.len() > self.max_entries {
            return Err(over(msg.len(), "entries", self.max_entries).at(MSG.0, MSG.1));
        }
        match msg.values().find(|b| b.interval_count.len() > self.max_buckets) {
            Some(b) => Err(over(b.interval_count.len(), "buckets", self.max_buckets)
                .at(BODY, "intervalCount")
                .at(MSG.0, MSG.1)),
            None => Ok(()),
        }
    }
}

impl Default for MicLimits {
    /// 100,000 entries and 64 buckets per body.
    fn default() -> Self {
        MicLimits { max_entries: 100_000, max_buckets: 64 }
    }
}

/// `StatMicMsgHead` with its strings borrowed from the request body.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MicHead<'a> {
    /// Tag 0.
    pub master_name: &'a str,
    /// Tag 1.
    pub slave_name: &'a str,
    /// Tag 2.
    pub interface_name: &'a str,
    /// Tag 3.
    pub master_ip: &'a str,
    /// Tag 4.
    pub slave_ip: &'a str,
    /// Tag 5.
    pub slave_port: i32,
    /// Tag 6.
    pub return_value: i32,
    /// Tag 7 (optional; empty when absent).
    pub slave_set_name: &'a str,
    /// Tag 8 (optional).
    pub slave_set_area: &'a str,
    /// Tag 9 (optional).
    pub slave_set_id: &'a str,
    /// Tag 10 (optional).
    pub tars_version: &'a str,
}

impl MicHead<'_> {
    /// The order of `StatMicMsgHead` as a map key (its `key[]`: every field in tag order;
    /// strings compare by bytes, as `String` does).
    pub fn key_cmp(&self, other: &Self) -> Ordering {
        self.master_name
            .cmp(other.master_name)
            .then_with(|| self.slave_name.cmp(other.slave_name))
            .then_with(|| self.interface_name.cmp(other.interface_name))
            .then_with(|| self.master_ip.cmp(other.master_ip))
            .then_with(|| self.slave_ip.cmp(other.slave_ip))
            .then_with(|| self.slave_port.cmp(&other.slave_port))
            .then_with(|| self.return_value.cmp(&other.return_value))
            .then_with(|| self.slave_set_name.cmp(other.slave_set_name))
            .then_with(|| self.slave_set_area.cmp(other.slave_set_area))
            .then_with(|| self.slave_set_id.cmp(other.slave_set_id))
            .then_with(|| self.tars_version.cmp(other.tars_version))
    }

    /// The generated struct (eight allocations).
    pub fn to_owned_head(&self) -> StatMicMsgHead {
        StatMicMsgHead {
            master_name: self.master_name.to_owned(),
            slave_name: self.slave_name.to_owned(),
            interface_name: self.interface_name.to_owned(),
            master_ip: self.master_ip.to_owned(),
            slave_ip: self.slave_ip.to_owned(),
            slave_port: self.slave_port,
            return_value: self.return_value,
            slave_set_name: self.slave_set_name.to_owned(),
            slave_set_area: self.slave_set_area.to_owned(),
            slave_set_id: self.slave_set_id.to_owned(),
            tars_version: self.tars_version.to_owned(),
        }
    }
}

impl<'a> From<&'a StatMicMsgHead> for MicHead<'a> {
    fn from(h: &'a StatMicMsgHead) -> Self {
        MicHead {
            master_name: &h.master_name,
            slave_name: &h.slave_name,
            interface_name: &h.interface_name,
            master_ip: &h.master_ip,
            slave_ip: &h.slave_ip,
            slave_port: h.slave_port,
            return_value: h.return_value,
            slave_set_name: &h.slave_set_name,
            slave_set_area: &h.slave_set_area,
            slave_set_id: &h.slave_set_id,
            tars_version: &h.tars_version,
        }
    }
}

/// `StatMicMsgBody` with its histogram borrowed from the decoded request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MicBody<'b> {
    /// Tag 0: successful calls.
    pub count: i32,
    /// Tag 1.
    pub timeout_count: i32,
    /// Tag 2.
    pub exec_count: i32,
    /// Tag 3: `(bucket, count)`, ascending by bucket, each bucket once (its first count).
    pub interval_count: &'b [(i32, i32)],
    /// Tag 4.
    pub total_rsp_time: i64,
    /// Tag 5.
    pub max_rsp_time: i32,
    /// Tag 6.
    pub min_rsp_time: i32,
}

impl MicBody<'_> {
    /// The generated struct.
    pub fn to_owned_body(&self) -> StatMicMsgBody {
        StatMicMsgBody {
            count: self.count,
            timeout_count: self.timeout_count,
            exec_count: self.exec_count,
            interval_count: self.interval_count.iter().copied().collect(),
            total_rsp_time: self.total_rsp_time,
            max_rsp_time: self.max_rsp_time,
            min_rsp_time: self.min_rsp_time,
        }
    }

    /// What [`StatValue::from_body`] makes of [`MicBody::to_owned_body`], without the
    /// `BTreeMap`: negative counters, times and bucket counts clamped at 0, at most
    /// [`crate::ingest::MAX_INTERVAL_BUCKETS`] buckets (the lowest).
    pub fn stat_value(&self) -> StatValue {
        let clamp = |v: i32| u64::try_from(v).unwrap_or(0);
        let mut value = StatValue {
            count: clamp(self.count),
            timeout_count: clamp(self.timeout_count),
            exec_count: clamp(self.exec_count),
            interval: Default::default(),
            total_rsp_time: u64::try_from(self.total_rsp_time).unwrap_or(0),
            max_rsp: self.max_rsp_time.max(0),
            min_rsp: self.min_rsp_time.max(0),
        };
        for &(bucket, count) in self.interval_count {
            value.interval.add(bucket, clamp(count));
        }
        value
    }
}

/// A body as stored while decoding: the histogram as a range of [`MicReport`]'s buckets.
#[derive(Debug, Clone, Copy)]
struct RawBody {
    count: i32,
    timeout_count: i32,
    exec_count: i32,
    buckets: (usize, usize),
    total_rsp_time: i64,
    max_rsp_time: i32,
    min_rsp_time: i32,
}

/// One decoded `reportMicMsg` request: `bFromClient` and the map's entries, borrowed from the
/// body.
#[derive(Debug, Clone)]
pub struct MicReport<'a> {
    from_client: bool,
    entries: Vec<(MicHead<'a>, RawBody)>,
    buckets: Vec<(i32, i32)>,
}

impl<'a> MicReport<'a> {
    /// Decodes the parameters (`sBuffer`) of an iVersion 1 `reportMicMsg` request. Accepts and
    /// rejects exactly what the generated servant does, plus the `limits`.
    pub fn decode(body: &'a [u8], limits: MicLimits) -> Result<MicReport<'a>, DecodeError> {
        let mut r = Reader::new(body);
        let mut report = MicReport { from_client: false, entries: Vec::new(), buckets: Vec::new() };
        // `ParamReader::read(1, "msg")`: the map is required.
        let head = r
            .skip_to_tag(1)
            .and_then(|h| h.ok_or_else(|| DecodeErrorKind::RequiredMissing { tag: 1 }.into()))
            .map_err(|e| e.at(MSG.0, MSG.1))?;
        report.read_map(&mut r, head.ty, limits).map_err(|e| e.at(MSG.0, MSG.1))?;
        report.from_client = r
            .skip_to_tag(2)
            .and_then(|h| h.ok_or_else(|| DecodeErrorKind::RequiredMissing { tag: 2 }.into()))
            .and_then(|h| r.read_int_payload(h.ty, WireType::Int1, "bool"))
            .map(|v| v != 0)
            .map_err(|e| e.at(FROM_CLIENT.0, FROM_CLIENT.1))?;
        report.sort_into_map_order();
        Ok(report)
    }

    /// `bFromClient`: true when the callers measured these calls.
    pub fn from_client(&self) -> bool {
        self.from_client
    }

    /// Entries (after duplicate heads were dropped).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// No entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries in map order.
    pub fn iter(&self) -> impl Iterator<Item = (MicHead<'a>, MicBody<'_>)> + '_ {
        self.entries.iter().map(|(h, b)| (*h, self.body(b)))
    }

    fn body(&self, b: &RawBody) -> MicBody<'_> {
        MicBody {
            count: b.count,
            timeout_count: b.timeout_count,
            exec_count: b.exec_count,
            interval_count: self.buckets.get(b.buckets.0..b.buckets.1).unwrap_or(&[]),
            total_rsp_time: b.total_rsp_time,
            max_rsp_time: b.max_rsp_time,
            min_rsp_time: b.min_rsp_time,
        }
    }

    /// The generated decoder's value: `(msg, bFromClient)`.
    pub fn to_owned_map(&self) -> (BTreeMap<StatMicMsgHead, StatMicMsgBody>, bool) {
        (self.iter().map(|(h, b)| (h.to_owned_head(), b.to_owned_body())).collect(), self.from_client)
    }

    /// `BTreeMap::read_from` with `K = StatMicMsgHead`, `V = StatMicMsgBody`.
    fn read_map(&mut self, r: &mut Reader<'a>, ty: WireType, limits: MicLimits) -> Result<(), DecodeError> {
        let n = map_len(r, ty, limits.max_entries, "entries")?;
        r.enter()?;
        self.entries.reserve(n.min(PREALLOC_MAX));
        for _ in 0..n {
            let kh = r.read_element_head(0)?;
            let head = read_head(r, kh.ty)?;
            let vh = r.read_element_head(1)?;
            let body = self.read_body(r, vh.ty, limits)?;
            self.entries.push((head, body));
        }
        r.leave();
        Ok(())
    }

    /// `read_struct::<StatMicMsgBody>`.
    fn read_body(&mut self, r: &mut Reader<'a>, ty: WireType, limits: MicLimits) -> Result<RawBody, DecodeError> {
        if ty != WireType::StructBegin {
            return Err(DecodeErrorKind::TypeMismatch { expected: "struct", got: ty.name() }.into());
        }
        r.enter()?;
        let field = |name: &'static str| move |e: DecodeError| e.at(BODY, name);
        let count = required_int(r, 0, WireType::Int4, "int").map_err(field("count"))?;
        let timeout_count = required_int(r, 1, WireType::Int4, "int").map_err(field("timeoutCount"))?;
        let exec_count = required_int(r, 2, WireType::Int4, "int").map_err(field("execCount"))?;
        let buckets = self.read_buckets(r, limits).map_err(field("intervalCount"))?;
        let total_rsp_time = required_int(r, 4, WireType::Int8, "long").map_err(field("totalRspTime"))?;
        let max_rsp_time = required_int(r, 5, WireType::Int4, "int").map_err(field("maxRspTime"))?;
        let min_rsp_time = required_int(r, 6, WireType::Int4, "int").map_err(field("minRspTime"))?;
        r.skip_to_struct_end()?;
        r.leave();
        Ok(RawBody {
            count: narrow(count)?,
            timeout_count: narrow(timeout_count)?,
            exec_count: narrow(exec_count)?,
            buckets,
            total_rsp_time,
            max_rsp_time: narrow(max_rsp_time)?,
            min_rsp_time: narrow(min_rsp_time)?,
        })
    }

    /// Tag 3, `map<int, int>` (required), appended to `self.buckets` in ascending bucket
    /// order, a duplicate bucket keeping its first count. Returns its range.
    fn read_buckets(&mut self, r: &mut Reader<'a>, limits: MicLimits) -> Result<(usize, usize), DecodeError> {
        let head = r.skip_to_tag(3)?.ok_or(DecodeErrorKind::RequiredMissing { tag: 3 })?;
        let n = map_len(r, head.ty, limits.max_buckets, "buckets")?;
        r.enter()?;
        let start = self.buckets.len();
        let mut sorted = true;
        for _ in 0..n {
            let kh = r.read_element_head(0)?;
            let bucket = narrow(r.read_int_payload(kh.ty, WireType::Int4, "int")?)?;
            let vh = r.read_element_head(1)?;
            let count = narrow(r.read_int_payload(vh.ty, WireType::Int4, "int")?)?;
            if let Some(&(last, _)) = self.buckets.get(start..).and_then(<[_]>::last) {
                sorted &= last < bucket;
            }
            self.buckets.push((bucket, count));
        }
        r.leave();
        if !sorted {
            let tail = &mut self.buckets[start..];
            tail.sort_by_key(|&(b, _)| b); // stable: the first of equal buckets stays first
            let mut kept = start;
            for i in start..self.buckets.len() {
                if kept == start || self.buckets[kept - 1].0 != self.buckets[i].0 {
                    self.buckets[kept] = self.buckets[i];
                    kept += 1;
                }
            }
            self.buckets.truncate(kept);
        }
        Ok((start, self.buckets.len()))
    }

    /// Puts the entries in map order and drops duplicate heads (the first stays), unless they
    /// already are (one comparison per entry).
    fn sort_into_map_order(&mut self) {
        let ordered = self.entries.windows(2).all(|w| w[0].0.key_cmp(&w[1].0) == Ordering::Less);
        if !ordered {
            self.entries.sort_by(|a, b| a.0.key_cmp(&b.0)); // stable
            self.entries.dedup_by(|later, first| later.0.key_cmp(&first.0) == Ordering::Equal);
        }
    }
}

/// A required int field of a struct.
fn required_int(r: &mut Reader<'_>, tag: u8, widest: WireType, name: &'static str) -> Result<i64, DecodeError> {
    let head = r.skip_to_tag(tag)?.ok_or(DecodeErrorKind::RequiredMissing { tag })?;
    r.read_int_payload(head.ty, widest, name)
}

/// An `int` read with `widest` Int4 always fits; kept as an error rather than a panic.
fn narrow(v: i64) -> Result<i32, DecodeError> {
    i32::try_from(v).map_err(|_| DecodeErrorKind::Invalid(format!("{v} out of range")).into())
}

/// `read_struct::<StatMicMsgHead>`.
fn read_head<'a>(r: &mut Reader<'a>, ty: WireType) -> Result<MicHead<'a>, DecodeError> {
    if ty != WireType::StructBegin {
        return Err(DecodeErrorKind::TypeMismatch { expected: "struct", got: ty.name() }.into());
    }
    r.enter()?;
    let field = |name: &'static str| move |e: DecodeError| e.at(HEAD, name);
    let mut h = MicHead {
        master_name: required_str(r, 0).map_err(field("masterName"))?,
        slave_name: required_str(r, 1).map_err(field("slaveName"))?,
        interface_name: required_str(r, 2).map_err(field("interfaceName"))?,
        master_ip: required_str(r, 3).map_err(field("masterIp"))?,
        slave_ip: required_str(r, 4).map_err(field("slaveIp"))?,
        slave_port: narrow(required_int(r, 5, WireType::Int4, "int").map_err(field("slavePort"))?)?,
        return_value: narrow(required_int(r, 6, WireType::Int4, "int").map_err(field("returnValue"))?)?,
        ..MicHead::default()
    };
    if let Some(s) = optional_str(r, 7).map_err(field("slaveSetName"))? {
        h.slave_set_name = s;
    }
    if let Some(s) = optional_str(r, 8).map_err(field("slaveSetArea"))? {
        h.slave_set_area = s;
    }
    if let Some(s) = optional_str(r, 9).map_err(field("slaveSetID"))? {
        h.slave_set_id = s;
    }
    if let Some(s) = optional_str(r, 10).map_err(field("tarsVersion"))? {
        h.tars_version = s;
    }
    r.skip_to_struct_end()?;
    r.leave();
    Ok(h)
}

/// A map's element count, as the codec reads it (the type checked, the count against the
/// bytes left), and at most `max` (`what` names the elements in the error).
fn map_len(r: &mut Reader<'_>, ty: WireType, max: usize, what: &str) -> Result<usize, DecodeError> {
    if ty != WireType::Map {
        return Err(DecodeErrorKind::TypeMismatch { expected: "map", got: ty.name() }.into());
    }
    let n = r.read_len(2)?;
    if n > max {
        return Err(DecodeErrorKind::Invalid(format!("{n} {what}, more than the limit of {max}")).into());
    }
    Ok(n)
}

fn optional_str<'a>(r: &mut Reader<'a>, tag: u8) -> Result<Option<&'a str>, DecodeError> {
    match r.skip_to_tag(tag)? {
        Some(head) => r.read_str_ref(head.ty).map(Some),
        None => Ok(None),
    }
}

fn required_str<'a>(r: &mut Reader<'a>, tag: u8) -> Result<&'a str, DecodeError> {
    optional_str(r, tag)?.ok_or_else(|| DecodeErrorKind::RequiredMissing { tag }.into())
}

/// Decodes `body` (see [`MicReport::decode`]) and calls `each(from_client, head, body)` for
/// every entry in map order; nothing is called when the request does not decode. Returns the
/// number of entries.
pub fn for_each_entry<'a>(
    body: &'a [u8],
    limits: MicLimits,
    mut each: impl FnMut(bool, &MicHead<'a>, &MicBody<'_>),
) -> Result<usize, DecodeError> {
    let report = MicReport::decode(body, limits)?;
    for (h, b) in report.iter() {
        each(report.from_client, &h, &b);
    }
    Ok(report.len())
}

/// [`crate::ingest::normalize`] on a borrowed entry: the same key and value, without the
/// generated types (a dropped entry, all three counters `<= 0`, allocates nothing).
pub fn normalize_mic(
    head: &MicHead<'_>,
    body: &MicBody<'_>,
    from_client: bool,
    peer_ip: &str,
    rules: &IngestRules,
) -> Option<(StatKey, StatValue)> {
    let value = body.stat_value();
    if value.is_empty() {
        return None;
    }
    Some((StatKey::new(&key_fields(head, from_client, peer_ip, rules)), value))
}

/// What `StatObj` does with one iVersion 1 `reportMicMsg` request, sans-IO: decodes `body`
/// and calls `add(encoded key, value)` for every entry the ingest rules keep, the key encoded
/// ([`crate::ingest::KeyFields::encode`]) into `scratch` so the caller can look it up without
/// allocating ([`StatKey::from_encoded`] makes the owned key). Nothing is added when the
/// request does not decode. Returns the number of entries kept.
pub fn ingest(
    body: &[u8],
    limits: MicLimits,
    peer_ip: &str,
    rules: &IngestRules,
    scratch: &mut Vec<u8>,
    mut add: impl FnMut(&[u8], StatValue),
) -> Result<usize, DecodeError> {
    let report = MicReport::decode(body, limits)?;
    let mut kept = 0;
    for (h, b) in report.iter() {
        let value = b.stat_value();
        if value.is_empty() {
            continue;
        }
        key_fields(&h, report.from_client, peer_ip, rules).encode(scratch);
        add(scratch, value);
        kept += 1;
    }
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::MAX_INTERVAL_BUCKETS;
    use bytes::Bytes;
    use tars_proto::codec::Writer;
    use tars_proto::rpc::ParamReader;

    /// What the generated servant does with a request body (`dispatch_stat_f`, iVersion 1).
    fn generated(body: &[u8]) -> Result<(BTreeMap<StatMicMsgHead, StatMicMsgBody>, bool), DecodeError> {
        let bytes = Bytes::copy_from_slice(body);
        let mut p = ParamReader::new(1, &bytes)?;
        let msg: BTreeMap<StatMicMsgHead, StatMicMsgBody> = p.read(1, "msg").map_err(|e| e.at(MSG.0, MSG.1))?;
        let from_client: bool = p.read(2, "bFromClient").map_err(|e| e.at(FROM_CLIENT.0, FROM_CLIENT.1))?;
        Ok((msg, from_client))
    }

    fn ours(body: &[u8]) -> Result<(BTreeMap<StatMicMsgHead, StatMicMsgBody>, bool), DecodeError> {
        let report = MicReport::decode(body, MicLimits::UNLIMITED)?;
        // The entries come out in map order: the same sequence as the BTreeMap's.
        let seq: Vec<(StatMicMsgHead, StatMicMsgBody)> =
            report.iter().map(|(h, b)| (h.to_owned_head(), b.to_owned_body())).collect();
        let (map, from_client) = report.to_owned_map();
        assert_eq!(seq, map.clone().into_iter().collect::<Vec<_>>());
        for (_, b) in report.iter() {
            assert!(b.interval_count.windows(2).all(|w| w[0].0 < w[1].0), "{:?}", b.interval_count);
        }
        Ok((map, from_client))
    }

    /// Same result, and for errors the same message (kind and field path).
    fn same(body: &[u8]) {
        match (generated(body), ours(body)) {
            (Ok(a), Ok(b)) => assert_eq!(a, b),
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{body:02x?}"),
            (a, b) => panic!("generated {a:?}\nours {b:?}\nbody {body:02x?}"),
        }
    }

    fn head(i: u64) -> StatMicMsgHead {
        StatMicMsgHead {
            master_name: format!("App{}.Server{}@3.0.{}", i % 3, i % 5, i % 2),
            slave_name: format!("App.Callee{}", i % 4),
            interface_name: format!("method{}", i % 7),
            master_ip: format!("10.0.0.{}", i % 11),
            slave_ip: if i % 13 == 0 { String::new() } else { "10.0.1.2".into() },
            slave_port: (i % 3) as i32 * 10_000,
            return_value: (i % 5) as i32 - 2,
            slave_set_name: if i % 2 == 0 { "sz".into() } else { String::new() },
            slave_set_area: "a".repeat((i % 3) as usize),
            slave_set_id: String::new(),
            tars_version: if i % 4 == 0 { "3.0.20".into() } else { String::new() },
        }
    }

    fn body(i: u64) -> StatMicMsgBody {
        let mut interval_count = BTreeMap::new();
        for (k, b) in [5, 10, 50, 100, 200, 500, 1000, 2000, 3000].into_iter().enumerate() {
            if (i + k as u64) % 3 != 0 {
                interval_count.insert(b, ((i * 7 + k as u64) % 1000) as i32 - 3);
            }
        }
        StatMicMsgBody {
            count: (i % 1000) as i32 - 1,
            timeout_count: (i % 3) as i32,
            exec_count: (i % 2) as i32,
            interval_count,
            total_rsp_time: (i as i64) * 1_000_003 - 5,
            max_rsp_time: (i % 4000) as i32,
            min_rsp_time: (i % 9) as i32,
        }
    }

    /// The request body as a client writes it (map in key order).
    fn encode(msg: &BTreeMap<StatMicMsgHead, StatMicMsgBody>, from_client: bool) -> Vec<u8> {
        let mut w = tars_proto::rpc::ParamWriter::new(1);
        w.write(1, "msg", msg);
        w.write(2, "bFromClient", &from_client);
        w.finish().to_vec()
    }

    fn msg(n: u64, seed: u64) -> BTreeMap<StatMicMsgHead, StatMicMsgBody> {
        (0..n).map(|i| (head(i * 31 + seed), body(i + seed))).collect()
    }

    // Hand-encoding, for what `Field` impls never write.
    fn str_field(w: &mut Writer, tag: u8, s: &str) {
        w.write_str(tag, s);
    }

    fn head_fields(w: &mut Writer, h: &StatMicMsgHead) {
        for (tag, s) in [(0, &h.master_name), (1, &h.slave_name), (2, &h.interface_name), (3, &h.master_ip)] {
            str_field(w, tag, s);
        }
        str_field(w, 4, &h.slave_ip);
        w.write_int(5, h.slave_port.into());
        w.write_int(6, h.return_value.into());
        for (tag, s) in [(7, &h.slave_set_name), (8, &h.slave_set_area), (9, &h.slave_set_id), (10, &h.tars_version)] {
            str_field(w, tag, s);
        }
    }

    fn body_fields(w: &mut Writer, b: &StatMicMsgBody, buckets: &[(i32, i32)]) {
        w.write_int(0, b.count.into());
        w.write_int(1, b.timeout_count.into());
        w.write_int(2, b.exec_count.into());
        w.write_head(3, WireType::Map);
        w.write_len(buckets.len());
        for &(k, v) in buckets {
            w.write_int(0, k.into());
            w.write_int(1, v.into());
        }
        w.write_int(4, b.total_rsp_time);
        w.write_int(5, b.max_rsp_time.into());
        w.write_int(6, b.min_rsp_time.into());
    }

    /// An entry as written by [`encode_raw`]: the histogram in the given order.
    type RawEntry = (StatMicMsgHead, StatMicMsgBody, Vec<(i32, i32)>);

    /// A body with the entries in the given (any) order, and each histogram as given.
    fn encode_raw(entries: &[RawEntry], from_client: bool) -> Vec<u8> {
        let mut w = Writer::new();
        w.write_head(1, WireType::Map);
        w.write_len(entries.len());
        for (h, b, buckets) in entries {
            w.begin_struct(0);
            head_fields(&mut w, h);
            w.end_struct();
            w.begin_struct(1);
            body_fields(&mut w, b, buckets);
            w.end_struct();
        }
        w.write_bool(2, from_client);
        w.freeze().to_vec()
    }

    #[test]
    fn ordinary_requests_decode_as_generated() {
        for (n, seed) in [(0, 0), (1, 0), (2, 5), (10, 1), (100, 7), (300, 3)] {
            for from_client in [true, false] {
                let body = encode(&msg(n, seed), from_client);
                same(&body);
                let (map, fc) = ours(&body).expect("decodes");
                assert_eq!((map.len(), fc), (msg(n, seed).len(), from_client));
            }
        }
    }

    #[test]
    fn unordered_maps_and_duplicates_follow_the_btreemap() {
        let mut entries: Vec<RawEntry> = (0..40)
            .map(|i| {
                let b = body(i);
                let buckets: Vec<(i32, i32)> = b.interval_count.iter().map(|(k, v)| (*k, *v)).collect();
                (head(i * 17), b, buckets)
            })
            .collect();
        entries.reverse();
        // Duplicate heads with other bodies, after and before the first occurrence.
        entries.push((head(0), body(99), vec![(5, 1)]));
        entries.insert(3, (head(17 * 4), body(98), vec![]));
        // Buckets out of order and repeated: the first count of a bucket wins.
        entries.push((head(1000), body(3), vec![(100, 1), (5, 2), (100, 3), (5, 4), (-1, 0)]));
        let raw = encode_raw(&entries, true);
        same(&raw);
        let report = MicReport::decode(&raw, MicLimits::UNLIMITED).expect("decodes");
        let (_, b) = report.iter().find(|(h, _)| h.to_owned_head() == head(1000)).expect("there");
        assert_eq!(b.interval_count, &[(-1, 0), (5, 2), (100, 1)]);
    }

    #[test]
    fn errors_name_the_field_as_generated() {
        let good = msg(3, 0);
        let (h, b) = good.iter().next().map(|(h, b)| (h.clone(), b.clone())).expect("one");
        let buckets: Vec<(i32, i32)> = b.interval_count.iter().map(|(k, v)| (*k, *v)).collect();
        let mut cases: Vec<Vec<u8>> = Vec::new();

        // No map, no flag, the flag as a string, the map as a list.
        cases.push(Vec::new());
        let mut w = Writer::new();
        w.write_bool(2, true);
        cases.push(w.freeze().to_vec());
        let mut only_map = encode(&good, false);
        only_map.truncate(only_map.len() - 1); // drop the flag (false: one ZeroTag head)
        cases.push(only_map.clone());
        let mut w = Writer::new();
        w.write_head(1, WireType::List);
        w.write_len(0);
        w.write_bool(2, true);
        cases.push(w.freeze().to_vec());
        let mut bad_flag = only_map.clone();
        let mut w = Writer::new();
        w.write_str(2, "yes");
        bad_flag.extend_from_slice(&w.freeze());
        cases.push(bad_flag);
        let mut wide_flag = only_map;
        let mut w = Writer::new();
        w.write_int(2, 300);
        wide_flag.extend_from_slice(&w.freeze());
        cases.push(wide_flag);

        // A head field of the wrong type, missing, or not UTF-8; a body field missing.
        let entry = |head_fields_fn: &dyn Fn(&mut Writer), body_fields_fn: &dyn Fn(&mut Writer)| {
            let mut w = Writer::new();
            w.write_head(1, WireType::Map);
            w.write_len(1);
            w.begin_struct(0);
            head_fields_fn(&mut w);
            w.end_struct();
            w.begin_struct(1);
            body_fields_fn(&mut w);
            w.end_struct();
            w.write_bool(2, false);
            w.freeze().to_vec()
        };
        let good_body = |w: &mut Writer| body_fields(w, &b, &buckets);
        let good_head = |w: &mut Writer| head_fields(w, &h);
        cases.push(entry(&good_head, &good_body));
        cases.push(entry(
            &|w: &mut Writer| {
                str_field(w, 0, "a");
                w.write_int(1, 5);
            },
            &good_body,
        ));
        cases.push(entry(
            &|w: &mut Writer| {
                str_field(w, 0, "a");
                str_field(w, 1, "b");
                str_field(w, 2, "c");
                str_field(w, 3, "d");
                str_field(w, 4, "e");
                w.write_int(6, 1); // slavePort (5) missing
            },
            &good_body,
        ));
        cases.push(entry(
            &|w: &mut Writer| {
                w.write_str_bytes(0, &[0xff, 0xfe]);
            },
            &good_body,
        ));
        cases.push(entry(
            &|w: &mut Writer| {
                head_fields(w, &h);
                w.write_str(7, "a repeated tag after the last known one is skipped");
            },
            &good_body,
        ));
        cases.push(entry(
            &|w: &mut Writer| {
                head_fields(w, &h);
                w.write_str(200, "an unknown later field is skipped");
            },
            &good_body,
        ));
        cases.push(entry(&good_head, &|w: &mut Writer| {
            w.write_int(0, 1);
            w.write_int(1, 1);
            w.write_int(2, 1);
            w.write_int(4, 1); // intervalCount missing
        }));
        cases.push(entry(&good_head, &|w: &mut Writer| {
            body_fields(w, &b, &buckets);
            w.write_int(5, 1 << 40); // a second maxRspTime, too wide, after the known tags
        }));
        cases.push(entry(&good_head, &|w: &mut Writer| {
            w.write_int(0, 1 << 40); // count as a long
        }));
        cases.push(entry(&good_head, &|w: &mut Writer| {
            w.write_int(0, 1);
            w.write_int(1, 1);
            w.write_int(2, 1);
            w.write_head(3, WireType::Map);
            w.write_len(1);
            w.write_str(0, "5"); // a string bucket
            w.write_int(1, 1);
        }));
        cases.push(entry(&good_head, &|w: &mut Writer| {
            w.write_int(0, 1);
            w.write_int(1, 1);
            w.write_int(2, 1);
            w.write_head(3, WireType::Map);
            w.write_len(1);
            w.write_int(1, 5); // a bucket at the value's tag
            w.write_int(1, 1);
        }));
        // Skipped unknown fields nested beyond the depth limit.
        cases.push(entry(
            &|w: &mut Writer| {
                head_fields(w, &h);
                for _ in 0..70 {
                    w.begin_struct(20);
                }
                for _ in 0..70 {
                    w.end_struct();
                }
            },
            &good_body,
        ));
        // Unknown tags before the map and between the map and the flag are skipped.
        let mut w = Writer::new();
        w.write_str(0, "ignored");
        let mut skipped = w.freeze().to_vec();
        skipped.extend_from_slice(&encode(&good, true));
        cases.push(skipped);
        // A count larger than what remains; a negative count.
        cases.push(vec![0x18, 0x00, 0x7f, 0x2c]);
        cases.push(vec![0x18, 0x00, 0xff, 0x2c]);

        for (i, c) in cases.iter().enumerate() {
            let g = generated(c);
            let o = ours(c);
            match (&g, &o) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "case {i}"),
                (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "case {i}"),
                _ => panic!("case {i}: generated {g:?}, ours {o:?}"),
            }
        }
        // The errors name the field.
        let e = ours(&cases[7]).expect_err("slaveName is an int");
        assert_eq!(e.to_string(), "StatMicMsgHead.slaveName (in StatF.reportMicMsg.msg): expected string, got int1");
        let e = ours(&cases[2]).expect_err("no flag");
        assert_eq!(e.to_string(), "StatF.reportMicMsg.bFromClient: required field (tag 2) is missing");
    }

    #[test]
    fn limits_are_errors_that_name_the_field() {
        let body = encode(&msg(10, 0), true);
        assert!(MicReport::decode(&body, MicLimits { max_entries: 10, max_buckets: 9 }).is_ok());
        let e = MicReport::decode(&body, MicLimits { max_entries: 9, max_buckets: 9 }).expect_err("too many");
        assert_eq!(e.to_string(), "StatF.reportMicMsg.msg: 10 entries, more than the limit of 9");
        let e = MicReport::decode(&body, MicLimits { max_entries: 10, max_buckets: 5 }).expect_err("buckets");
        assert!(
            e.to_string().starts_with("StatMicMsgBody.intervalCount (in StatF.reportMicMsg.msg): 6 buckets"),
            "{e}"
        );
    }

    /// splitmix64.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n.max(1)
        }
    }

    /// Random valid requests, then the same with bytes flipped, cut, or inserted: both decoders
    /// always agree (result, or the error's message).
    #[test]
    fn random_and_corrupted_requests_agree() {
        let mut rng = Rng(0x5EED);
        for round in 0..400 {
            let n = rng.below(12);
            let mut entries = Vec::new();
            for _ in 0..n {
                // Few distinct values, so duplicates and shared prefixes are common.
                let h = head(rng.below(40));
                let b = body(rng.below(1000));
                let mut buckets: Vec<(i32, i32)> = b.interval_count.iter().map(|(k, v)| (*k, *v)).collect();
                if rng.below(4) == 0 {
                    buckets.reverse();
                    buckets.push((rng.below(3) as i32 * 5, rng.below(9) as i32 - 4));
                }
                entries.push((h, b, buckets));
            }
            let raw = encode_raw(&entries, rng.below(2) == 0);
            same(&raw);
            for _ in 0..20 {
                let mut bad = raw.clone();
                match rng.below(4) {
                    0 if !bad.is_empty() => {
                        let i = rng.below(bad.len() as u64) as usize;
                        bad[i] ^= 1 << rng.below(8);
                    }
                    1 if !bad.is_empty() => {
                        let i = rng.below(bad.len() as u64) as usize;
                        bad[i] = rng.next() as u8;
                    }
                    2 => bad.truncate(rng.below(bad.len() as u64 + 1) as usize),
                    _ => {
                        let i = rng.below(bad.len() as u64 + 1) as usize;
                        bad.insert(i, rng.next() as u8);
                    }
                }
                same(&bad);
            }
            let _ = round;
        }
    }

    #[test]
    fn key_order_is_the_generated_ord() {
        let mut rng = Rng(7);
        let heads: Vec<StatMicMsgHead> = (0..200)
            .map(|_| {
                let mut h = head(rng.below(60));
                if rng.below(3) == 0 {
                    h.master_name.push('é');
                }
                if rng.below(5) == 0 {
                    h.slave_port = -h.slave_port - 1;
                }
                h
            })
            .collect();
        for a in &heads {
            for b in heads.iter().take(50) {
                let mut w = Writer::new();
                tars_proto::codec::Field::write_to(a, 0, &mut w);
                tars_proto::codec::Field::write_to(b, 1, &mut w);
                let bytes = w.freeze();
                let mut r = Reader::new(&bytes);
                let ha = r.read_head().and_then(|h| read_head(&mut r, h.ty)).expect("a");
                let hb = r.read_head().and_then(|h| read_head(&mut r, h.ty)).expect("b");
                assert_eq!(ha.key_cmp(&hb), a.cmp(b), "{a:?} vs {b:?}");
                assert_eq!(ha.to_owned_head(), *a);
            }
        }
    }

    #[test]
    fn values_and_keys_match_the_owned_path() {
        let rules = IngestRules::parse_master_ip_group("App.Callee1;1.1.1.1\n").0;
        let mut b = body(5);
        b.interval_count = (0..40).map(|k| (40 - k * 3, k - 2)).collect();
        let mut m = msg(200, 11);
        m.insert(head(3), b);
        m.insert(head(4), StatMicMsgBody { count: 0, timeout_count: -1, ..body(4) });
        let raw = encode(&m, false);
        let report = MicReport::decode(&raw, MicLimits::UNLIMITED).expect("decodes");
        let mut kept = 0;
        for (h, bd) in report.iter() {
            let v = bd.stat_value();
            assert_eq!(v, StatValue::from_body(&bd.to_owned_body()));
            assert!(v.interval.len() <= MAX_INTERVAL_BUCKETS);
            for from_client in [true, false] {
                let ours = normalize_mic(&h, &bd, from_client, "192.168.0.9", &rules);
                let theirs = crate::ingest::normalize(
                    &h.to_owned_head(),
                    &bd.to_owned_body(),
                    from_client,
                    "192.168.0.9",
                    &rules,
                );
                assert_eq!(ours, theirs);
                kept += usize::from(ours.is_some());
            }
        }
        assert!(kept > 0 && kept < 2 * report.len(), "{kept}");
        // `ingest` keeps the same entries, keyed by the same encoded keys.
        let mut scratch = Vec::new();
        let mut got = Vec::new();
        let n = ingest(&raw, MicLimits::default(), "192.168.0.9", &rules, &mut scratch, |k, v| {
            got.push((StatKey::from_encoded(k), v));
        })
        .expect("decodes");
        let want: Vec<_> =
            report.iter().filter_map(|(h, bd)| normalize_mic(&h, &bd, false, "192.168.0.9", &rules)).collect();
        assert_eq!((n, got), (want.len(), want));
        let mut seen = 0;
        let n = for_each_entry(&raw, MicLimits::default(), |fc, _, _| {
            assert!(!fc);
            seen += 1;
        })
        .expect("decodes");
        assert_eq!((n, seen), (report.len(), report.len()));
        assert_eq!(
            for_each_entry(&raw[..raw.len() - 3], MicLimits::default(), |_, _, _| panic!("no entry")).ok(),
            None
        );
    }
}
