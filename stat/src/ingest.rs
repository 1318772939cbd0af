//! What tarsstat does with one entry of `reportMicMsg`, sans-IO: upstream's ingest rules
//! (`StatServer/StatImp.cpp`), the merge of one key's counters (`StatServer/StatHashMap.h`) and
//! the rendering of one row of the hourly table (`StatServer/StatDbManager.cpp`).
//!
//! These run once per received entry on the IO shards, so they allocate nothing for an entry
//! whose key the window already holds: [`key_fields`] borrows from the request, a key is
//! encoded ([`KeyFields::encode`]) into a reused buffer and looked up as bytes, [`StatKey`] is
//! one allocation made only for a new key, and [`StatValue`] keeps its histogram inline.
//!
//! Where we differ from upstream, on purpose:
//! - Counters are `u64` with saturating sums instead of `int` (which overflows). A negative
//!   counter or time from a client is clamped to 0 instead of being subtracted, so a hostile
//!   client cannot wrap a sum into a huge unsigned number; an entry whose three counters are all
//!   `<= 0` is therefore dropped like an all-zero one.
//! - Text is cut to the column widths (on a char boundary) and characters outside the BMP are
//!   replaced when the key is built, not when the row is written: the upstream tables are
//!   `utf8` (3-byte), where one emoji fails the whole multi-row `INSERT`, and keys that the
//!   database would store identically are merged in memory instead of colliding on the
//!   primary key (where `INSERT IGNORE` would silently keep only one of them). It also bounds
//!   the memory one hostile key can take.
//! - The histogram keeps at most [`MAX_INTERVAL_BUCKETS`] buckets, and the rendered
//!   `interv_count` drops whole trailing `k|v` items that would not fit its 128 characters
//!   instead of cutting one in half.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::fmt::Write as _;
pub use tars_monitor::text::column_text;

use tars_protocol::tars::{StatMicMsgBody, StatMicMsgHead};
use tars_sql::Value;

use crate::mic::MicHead;

/// Widths (in characters) of the text columns of `stat_table` (`tars_sql::schema::monitor`);
/// a test checks them against the schema.
mod width {
    pub(super) const F_TFLAG: usize = 8;
    pub(super) const SOURCE_ID: usize = 15;
    pub(super) const MASTER_NAME: usize = 128;
    pub(super) const SLAVE_NAME: usize = 128;
    pub(super) const INTERFACE_NAME: usize = 128;
    pub(super) const TARS_VERSION: usize = 16;
    pub(super) const MASTER_IP: usize = 15;
    pub(super) const SLAVE_IP: usize = 21;
    pub(super) const INTERV_COUNT: usize = 128;
    /// The set fields are part of the key but not written to any column; they are bounded only
    /// so one hostile key cannot hold megabytes.
    pub(super) const SET_FIELD: usize = 64;
}

/// The most histogram buckets one [`StatValue`] keeps. TarsCpp clients send 9
/// (5, 10, 50, 100, 200, 500, 1000, 2000, 3000 ms) and `interv_count` holds 128 characters, so
/// more than 16 buckets can never be written; the cap bounds what a hostile map can cost.
pub const MAX_INTERVAL_BUCKETS: usize = 16;

/// The fields of a [`StatKey`], borrowed: a head after [`key_fields`] applied the ingest
/// rules (same fields as the request's head, so the same borrowed type).
///
/// The three set fields are part of the key (upstream keys on the whole head) but are not
/// columns of the table: two keys that differ only there become two rows with the same primary
/// key when flushed.
pub type KeyFields<'a> = MicHead<'a>;

/// The text fields in their encoded order, with the width each is fitted to.
const TEXT_FIELDS: usize = 9;
/// `slave_port` and `return_value`, little-endian, at the start of an encoded key.
const INTS: usize = 8;
/// The ints and one `u16` end offset per text field; the texts follow.
const HEADER: usize = INTS + 2 * TEXT_FIELDS;

impl<'a> MicHead<'a> {
    fn texts(&self) -> [(&'a str, usize); TEXT_FIELDS] {
        [
            (self.master_name, width::MASTER_NAME),
            (self.slave_name, width::SLAVE_NAME),
            (self.interface_name, width::INTERFACE_NAME),
            (self.master_ip, width::MASTER_IP),
            (self.slave_ip, width::SLAVE_IP),
            (self.slave_set_name, width::SET_FIELD),
            (self.slave_set_area, width::SET_FIELD),
            (self.slave_set_id, width::SET_FIELD),
            (self.tars_version, width::TARS_VERSION),
        ]
    }

    /// Writes the key's encoding into `out` (replacing what it held), each text fitted to its
    /// column with [`column_text`]. Two field sets encode alike exactly when their fitted
    /// fields are equal, so the encoding is what a shard map is keyed and looked up by.
    ///
    /// Layout: `slave_port`, `return_value` (i32 LE), nine `u16` LE end offsets, the texts.
    /// Fitted texts take at most 1,884 bytes together, so the offsets cannot overflow.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(&self.slave_port.to_le_bytes());
        out.extend_from_slice(&self.return_value.to_le_bytes());
        out.resize(HEADER, 0);
        for (i, (text, width)) in self.texts().into_iter().enumerate() {
            out.extend_from_slice(column_text(text, width).as_bytes());
            let end = u16::try_from(out.len() - HEADER).unwrap_or(u16::MAX).to_le_bytes();
            if let Some(slot) = out.get_mut(INTS + 2 * i..INTS + 2 * i + 2) {
                slot.copy_from_slice(&end);
            }
        }
    }
}

/// The aggregation key of one stat entry: [`KeyFields`] encoded in one allocation
/// ([`KeyFields::encode`]). A shard map is looked up by the encoded bytes (`Borrow<[u8]>`),
/// so merging into a known key builds no key at all; comparing two keys is one `memcmp`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct StatKey(Box<[u8]>);

impl StatKey {
    /// The key of `fields`.
    pub fn new(fields: &KeyFields<'_>) -> StatKey {
        let mut buf = Vec::new();
        fields.encode(&mut buf);
        StatKey::from_encoded(&buf)
    }

    /// A key from bytes written by [`KeyFields::encode`]. (Other bytes make a key whose
    /// fields read as empty or cut, never a panic.)
    pub fn from_encoded(encoded: &[u8]) -> StatKey {
        StatKey(encoded.into())
    }

    /// Bytes the key owns on the heap (memory budget accounting).
    pub fn heap_bytes(&self) -> usize {
        self.0.len()
    }

    /// The fields, borrowed from the key.
    pub fn fields(&self) -> KeyFields<'_> {
        let b = &self.0[..];
        let int = |at: usize| b.get(at..at + 4).and_then(|s| s.try_into().ok()).map_or(0, i32::from_le_bytes);
        let end = |i: usize| {
            b.get(INTS + 2 * i..INTS + 2 * i + 2)
                .and_then(|s| s.try_into().ok())
                .map_or(0, |e| usize::from(u16::from_le_bytes(e)))
        };
        let text = |i: usize| {
            let start = if i == 0 { 0 } else { end(i - 1) };
            b.get(HEADER + start..HEADER + end(i)).and_then(|s| std::str::from_utf8(s).ok()).unwrap_or("")
        };
        KeyFields {
            master_name: text(0),
            slave_name: text(1),
            interface_name: text(2),
            master_ip: text(3),
            slave_ip: text(4),
            slave_port: int(0),
            return_value: int(4),
            slave_set_name: text(5),
            slave_set_area: text(6),
            slave_set_id: text(7),
            tars_version: text(8),
        }
    }
}

impl Borrow<[u8]> for StatKey {
    fn borrow(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for StatKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.fields().fmt(f)
    }
}

/// The response-time histogram of one key: bucket (ms) → count, sorted by bucket, at most
/// [`MAX_INTERVAL_BUCKETS`] buckets. Inline arrays rather than a map or a vector: it holds
/// about nine buckets, is built for every received entry and merged on every report, and so
/// allocates nothing.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct Intervals {
    len: usize,
    /// `buckets[..len]` ascending; the rest stay 0, so the derived `Eq` compares contents.
    buckets: [i32; MAX_INTERVAL_BUCKETS],
    counts: [u64; MAX_INTERVAL_BUCKETS],
}

impl Intervals {
    fn held(&self) -> &[i32] {
        self.buckets.get(..self.len).unwrap_or(&[])
    }

    /// Adds `count` to `bucket` (saturating). Returns false, and changes nothing, when the
    /// bucket is new and [`MAX_INTERVAL_BUCKETS`] are already held.
    pub fn add(&mut self, bucket: i32, count: u64) -> bool {
        match self.held().binary_search(&bucket) {
            Ok(i) => {
                if let Some(n) = self.counts.get_mut(i) {
                    *n = n.saturating_add(count);
                }
                true
            }
            Err(_) if self.len >= MAX_INTERVAL_BUCKETS => false,
            Err(i) => {
                self.buckets.copy_within(i..self.len, i + 1);
                self.counts.copy_within(i..self.len, i + 1);
                if let (Some(b), Some(n)) = (self.buckets.get_mut(i), self.counts.get_mut(i)) {
                    *b = bucket;
                    *n = count;
                }
                self.len += 1;
                true
            }
        }
    }

    /// Adds every bucket of `other` (see [`Intervals::add`] for the cap).
    pub fn merge(&mut self, other: &Intervals) {
        for (bucket, count) in other.iter() {
            self.add(bucket, count);
        }
    }

    /// The count of `bucket`, if it is held.
    pub fn get(&self, bucket: i32) -> Option<u64> {
        self.held().binary_search(&bucket).ok().and_then(|i| self.counts.get(i)).copied()
    }

    /// `(bucket, count)` in ascending bucket order.
    pub fn iter(&self) -> impl Iterator<Item = (i32, u64)> + '_ {
        self.held().iter().copied().zip(self.counts.iter().copied())
    }

    /// Number of buckets held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no bucket is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// `k|v,k|v…` in ascending bucket order, as `interv_count` holds it: whole items only,
    /// as many as fit in `max_chars`.
    fn render(&self, max_chars: usize) -> String {
        let mut out = String::with_capacity(max_chars.min(64));
        for (bucket, count) in self.iter() {
            let mark = out.len();
            if mark != 0 {
                out.push(',');
            }
            // Writing to a String cannot fail.
            let _ = write!(out, "{bucket}|{count}");
            // ASCII only, so bytes are characters.
            if out.len() > max_chars {
                out.truncate(mark);
                break;
            }
        }
        out
    }
}

impl std::fmt::Debug for Intervals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// The counters of one key, merged over a window (`StatMicMsgBody`, widened).
///
/// Counts and the total time are never negative: [`StatValue::from_body`] clamps what a client
/// sends at 0. `min_rsp == 0` means "no minimum yet", as upstream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatValue {
    /// Successful calls.
    pub count: u64,
    /// Timed-out calls.
    pub timeout_count: u64,
    /// Calls that failed with an exception.
    pub exec_count: u64,
    /// Response-time histogram.
    pub interval: Intervals,
    /// Sum of response times (ms).
    pub total_rsp_time: u64,
    /// Largest response time (ms).
    pub max_rsp: i32,
    /// Smallest non-zero response time (ms); 0 when none was seen.
    pub min_rsp: i32,
}

/// A client's `int` counter as an unsigned count: negative values are hostile or broken and
/// count as nothing.
fn non_negative(v: i32) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl StatValue {
    /// The body of one report entry, with every negative counter, time and bucket count
    /// clamped at 0 and at most [`MAX_INTERVAL_BUCKETS`] buckets (the lowest ones) kept.
    pub fn from_body(body: &StatMicMsgBody) -> StatValue {
        let mut interval = Intervals::default();
        for (&bucket, &count) in &body.interval_count {
            interval.add(bucket, non_negative(count));
        }
        StatValue {
            count: non_negative(body.count),
            timeout_count: non_negative(body.timeout_count),
            exec_count: non_negative(body.exec_count),
            interval,
            total_rsp_time: u64::try_from(body.total_rsp_time).unwrap_or(0),
            max_rsp: body.max_rsp_time.max(0),
            min_rsp: body.min_rsp_time.max(0),
        }
    }

    /// True when count, timeout count and exception count are all 0: upstream does not store
    /// such an entry.
    pub fn is_empty(&self) -> bool {
        self.count == 0 && self.timeout_count == 0 && self.exec_count == 0
    }

    /// Adds `other` into `self` as upstream's `StatHashMap::add` does: sums (saturating) of the
    /// counts, the total time and each bucket; the larger maximum; the smaller minimum, where 0
    /// on either side means "none" and loses to any other value.
    pub fn merge(&mut self, other: &StatValue) {
        self.count = self.count.saturating_add(other.count);
        self.timeout_count = self.timeout_count.saturating_add(other.timeout_count);
        self.exec_count = self.exec_count.saturating_add(other.exec_count);
        self.interval.merge(&other.interval);
        self.total_rsp_time = self.total_rsp_time.saturating_add(other.total_rsp_time);
        self.max_rsp = self.max_rsp.max(other.max_rsp);
        if self.min_rsp == 0 || (other.min_rsp != 0 && other.min_rsp < self.min_rsp) {
            self.min_rsp = other.min_rsp;
        }
    }

    /// `ave_time` as upstream computes it: total / count, at least 1 when there were successful
    /// calls, 0 when there were none; clamped to the `int unsigned` column.
    pub fn ave_time(&self) -> u32 {
        match self.total_rsp_time.checked_div(self.count) {
            None => 0,
            Some(0) => 1,
            Some(ave) => u32::try_from(ave).unwrap_or(u32::MAX),
        }
    }
}

/// Why a `masteripGroup` line was ignored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// The line is not `slaveName;fakeIp` with both parts non-empty.
    #[error("masteripGroup line {line}: {text:?} is not `slaveName;fakeIp`")]
    Malformed {
        /// 1-based line number in the text given to the parser.
        line: usize,
        /// The line, trimmed.
        text: String,
    },
}

/// Configuration that changes how entries are keyed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngestRules {
    /// slaveName → the fake masterIp written for every caller of it, from the
    /// `/tars/masteripGroup` lines `slaveName;fakeIp`: for callees with very many callers
    /// (the template maps `tars.tarsstat`), one row per caller IP would swamp the table.
    pub master_ip_group: HashMap<String, String>,
}

impl IngestRules {
    /// Parses the body of `/tars/masteripGroup`, one `slaveName;fakeIp` per line.
    ///
    /// Blank lines are skipped silently; a line without a `;`, or with an empty part, is
    /// skipped and reported (upstream logs it and skips it). Parts are trimmed. Upstream
    /// ignores anything after a second `;`, and so do we. A later line for the same slaveName
    /// replaces an earlier one, as upstream's `map[key] = value`.
    pub fn parse_master_ip_group(lines: &str) -> (IngestRules, Vec<RuleError>) {
        let mut rules = IngestRules::default();
        let mut errors = Vec::new();
        for (n, line) in lines.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let mut parts = line.split(';').map(str::trim);
            match (parts.next(), parts.next()) {
                (Some(slave), Some(ip)) if !slave.is_empty() && !ip.is_empty() => {
                    rules.master_ip_group.insert(slave.to_owned(), ip.to_owned());
                }
                _ => errors.push(RuleError::Malformed { line: n + 1, text: line.to_owned() }),
            }
        }
        (rules, errors)
    }
}

/// Applies upstream's ingest rules (`StatImp::reportMicMsg`) to one entry: its key
/// ([`key_fields`]) and its value, or `None` (drop) when count, exception count and timeout
/// count are all 0 after clamping negatives (module docs).
pub fn normalize(
    head: &StatMicMsgHead,
    body: &StatMicMsgBody,
    from_client: bool,
    peer_ip: &str,
    rules: &IngestRules,
) -> Option<(StatKey, StatValue)> {
    let value = StatValue::from_body(body);
    if value.is_empty() {
        return None;
    }
    Some((StatKey::new(&key_fields(&MicHead::from(head), from_client, peer_ip, rules)), value))
}

/// Upstream's key rules (`StatImp::reportMicMsg`), in its order:
///
/// 1. client-side report (`from_client`): masterIp := `peer_ip`; server-side: slaveIp :=
///    `peer_ip`;
/// 2. `masterName` is split at its first `@`: the part after it replaces `tarsVersion` (even
///    when empty), the part before stays `masterName`; without an `@` the head's own
///    `tarsVersion` is kept;
/// 3. a slaveName listed in `rules.master_ip_group` gets the fake masterIp.
///
/// Set fields are kept as sent, as upstream does. Text is fitted to the columns when the key
/// is encoded ([`KeyFields::encode`]).
pub fn key_fields<'a>(
    head: &MicHead<'a>,
    from_client: bool,
    peer_ip: &'a str,
    rules: &'a IngestRules,
) -> KeyFields<'a> {
    let (mut master_ip, mut slave_ip) = (head.master_ip, head.slave_ip);
    if from_client {
        master_ip = peer_ip;
    } else {
        slave_ip = peer_ip;
    }
    let (master_name, tars_version) = match head.master_name.split_once('@') {
        Some((name, version)) => (name, version),
        None => (head.master_name, head.tars_version),
    };
    if let Some(fake) = rules.master_ip_group.get(head.slave_name) {
        master_ip = fake;
    }
    KeyFields {
        master_name,
        slave_name: head.slave_name,
        interface_name: head.interface_name,
        master_ip,
        slave_ip,
        slave_port: head.slave_port,
        return_value: head.return_value,
        slave_set_name: head.slave_set_name,
        slave_set_area: head.slave_set_area,
        slave_set_id: head.slave_set_id,
        tars_version,
    }
}

fn text(s: &str, max_chars: usize) -> Value {
    Value::Text(column_text(s, max_chars).into_owned())
}

/// One row of the hourly stat table, in exactly `tars_sql::schema::monitor::STAT_COLUMNS`
/// order. `source_id` is this stat server's IP, `f_date` and `tflag` the window's label.
///
/// Text is fitted to the columns again (a no-op for keys built by [`KeyFields::encode`]); unsigned
/// columns get `Value::UInt` clamped to their range (`int unsigned`, and `i64::MAX` for
/// `total_time`, which is what SQLite can hold); `interv_count` is `k|v,k|v` in ascending
/// bucket order; `ave_time` follows [`StatValue::ave_time`].
pub fn stat_row(key: &StatKey, value: &StatValue, source_id: &str, f_date: &str, tflag: &str) -> Vec<Value> {
    let key = key.fields();
    let u32_col = |v: u64| Value::UInt(v.min(u64::from(u32::MAX)));
    let rsp_col = |v: i32| Value::UInt(u64::try_from(v).unwrap_or(0));
    vec![
        Value::Text(f_date.to_owned()),
        text(tflag, width::F_TFLAG),
        text(source_id, width::SOURCE_ID),
        text(key.master_name, width::MASTER_NAME),
        text(key.slave_name, width::SLAVE_NAME),
        text(key.interface_name, width::INTERFACE_NAME),
        text(key.tars_version, width::TARS_VERSION),
        text(key.master_ip, width::MASTER_IP),
        text(key.slave_ip, width::SLAVE_IP),
        Value::Int(key.slave_port.into()),
        Value::Int(key.return_value.into()),
        u32_col(value.count),
        u32_col(value.timeout_count),
        u32_col(value.exec_count),
        Value::Text(value.interval.render(width::INTERV_COUNT)),
        Value::UInt(value.total_rsp_time.min(i64::MAX.unsigned_abs())),
        Value::UInt(value.ave_time().into()),
        rsp_col(value.max_rsp),
        rsp_col(value.min_rsp),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;
    use std::collections::BTreeMap;
    use tars_sql::schema::monitor::{stat_table, STAT_COLUMNS};
    use tars_sql::schema::ColType;

    fn head() -> StatMicMsgHead {
        StatMicMsgHead {
            master_name: "App.Caller@1.8.0".into(),
            slave_name: "App.Callee".into(),
            interface_name: "ping".into(),
            master_ip: "10.0.0.1".into(),
            slave_ip: "10.0.0.2".into(),
            slave_port: 10001,
            return_value: 0,
            slave_set_name: "s".into(),
            slave_set_area: "a".into(),
            slave_set_id: "1".into(),
            tars_version: "old".into(),
        }
    }

    fn body(count: i32, timeout: i32, exec: i32) -> StatMicMsgBody {
        StatMicMsgBody {
            count,
            timeout_count: timeout,
            exec_count: exec,
            interval_count: BTreeMap::from([(5, 3), (10, 1)]),
            total_rsp_time: 40,
            max_rsp_time: 20,
            min_rsp_time: 2,
        }
    }

    fn rules() -> IngestRules {
        IngestRules::parse_master_ip_group("tars.tarsstat;1.1.1.1\n").0
    }

    #[test]
    fn client_report_takes_peer_as_master_ip_and_splits_version() {
        let (key, value) =
            normalize(&head(), &body(4, 0, 0), true, "192.168.1.9", &IngestRules::default()).expect("kept");
        let key = key.fields();
        assert_eq!(key.master_ip, "192.168.1.9");
        assert_eq!(key.slave_ip, "10.0.0.2");
        assert_eq!(key.master_name, "App.Caller");
        assert_eq!(key.tars_version, "1.8.0");
        assert_eq!((key.slave_set_name, key.slave_set_area, key.slave_set_id), ("s", "a", "1"));
        assert_eq!(value.count, 4);
    }

    #[test]
    fn server_report_takes_peer_as_slave_ip() {
        let (key, _) = normalize(&head(), &body(1, 0, 0), false, "192.168.1.9", &IngestRules::default()).expect("kept");
        let key = key.fields();
        assert_eq!(key.master_ip, "10.0.0.1");
        assert_eq!(key.slave_ip, "192.168.1.9");
    }

    #[test]
    fn version_field_kept_without_at_and_replaced_by_empty_suffix() {
        let mut h = head();
        h.master_name = "App.Caller".into();
        let (key, _) = normalize(&h, &body(1, 0, 0), true, "p", &IngestRules::default()).expect("kept");
        let key = key.fields();
        assert_eq!((key.master_name, key.tars_version), ("App.Caller", "old"));

        h.master_name = "App.Caller@".into();
        let (key, _) = normalize(&h, &body(1, 0, 0), true, "p", &IngestRules::default()).expect("kept");
        let key = key.fields();
        assert_eq!((key.master_name, key.tars_version), ("App.Caller", ""));

        // Split at the first '@'.
        h.master_name = "a@b@c".into();
        let (key, _) = normalize(&h, &body(1, 0, 0), true, "p", &IngestRules::default()).expect("kept");
        let key = key.fields();
        assert_eq!((key.master_name, key.tars_version), ("a", "b@c"));
    }

    #[test]
    fn master_ip_group_overrides_peer_ip_for_both_sides() {
        let mut h = head();
        h.slave_name = "tars.tarsstat".into();
        let (key, _) = normalize(&h, &body(1, 0, 0), true, "9.9.9.9", &rules()).expect("kept");
        let key = key.fields();
        assert_eq!(key.master_ip, "1.1.1.1");
        let (key, _) = normalize(&h, &body(1, 0, 0), false, "9.9.9.9", &rules()).expect("kept");
        let key = key.fields();
        assert_eq!((key.master_ip, key.slave_ip), ("1.1.1.1", "9.9.9.9"));
        // Other callees are untouched.
        let (key, _) = normalize(&head(), &body(1, 0, 0), true, "9.9.9.9", &rules()).expect("kept");
        let key = key.fields();
        assert_eq!(key.master_ip, "9.9.9.9");
    }

    #[test]
    fn all_zero_or_negative_counters_are_dropped() {
        assert!(normalize(&head(), &body(0, 0, 0), true, "p", &rules()).is_none());
        assert!(normalize(&head(), &body(-5, 0, -1), true, "p", &rules()).is_none());
        assert!(normalize(&head(), &body(0, 1, 0), true, "p", &rules()).is_some());
        assert!(normalize(&head(), &body(0, 0, 1), true, "p", &rules()).is_some());
    }

    #[test]
    fn key_encoding_round_trips_and_tells_fields_apart() {
        let fields = KeyFields {
            master_name: "a",
            slave_name: "bc",
            interface_name: "",
            master_ip: "1.2.3.4",
            slave_ip: "é中",
            slave_port: -7,
            return_value: i32::MIN,
            slave_set_name: "x",
            slave_set_area: "",
            slave_set_id: "z",
            tars_version: "3.0",
        };
        let key = StatKey::new(&fields);
        assert_eq!(key.fields(), fields);
        // The same text split differently between two fields is a different key.
        let shifted = StatKey::new(&KeyFields { master_name: "ab", slave_name: "c", ..fields });
        assert_ne!(shifted, key);
        assert_eq!(shifted.fields().master_name, "ab");
        // Borrowed lookup finds the owned key.
        let mut buf = Vec::new();
        fields.encode(&mut buf);
        let map = HashMap::from([(key.clone(), 1)]);
        assert_eq!(map.get(buf.as_slice()), Some(&1));
        // Fitted when encoded: what the database would store alike is one key.
        let long = KeyFields { master_name: &"m".repeat(200), ..fields };
        assert_eq!(StatKey::new(&long), StatKey::new(&KeyFields { master_name: &"m".repeat(128), ..fields }));
        // Bytes not written by `encode` read as empty fields, without a panic.
        for junk in [&[][..], &[1, 2, 3][..], &[0xff; 40][..]] {
            let _ = StatKey::from_encoded(junk).fields();
        }
        assert_eq!(StatKey::from_encoded(&[]).fields(), KeyFields::default());
    }

    #[test]
    fn from_body_clamps_negatives() {
        let mut b = body(3, -1, 2);
        b.total_rsp_time = -100;
        b.max_rsp_time = -4;
        b.min_rsp_time = -4;
        b.interval_count = BTreeMap::from([(5, -7), (-10, 2)]);
        let v = StatValue::from_body(&b);
        assert_eq!((v.count, v.timeout_count, v.exec_count, v.total_rsp_time), (3, 0, 2, 0));
        assert_eq!((v.max_rsp, v.min_rsp), (0, 0));
        assert_eq!(v.interval.iter().collect::<Vec<_>>(), vec![(-10, 2), (5, 0)]);
    }

    #[test]
    fn merge_sums_maxes_and_mins_ignoring_zero() {
        let mut a = StatValue::from_body(&body(1, 2, 3));
        let mut b = StatValue::from_body(&body(10, 20, 30));
        b.max_rsp = 50;
        b.min_rsp = 0; // "none": must not win
        b.interval.add(100, 4);
        a.merge(&b);
        assert_eq!((a.count, a.timeout_count, a.exec_count, a.total_rsp_time), (11, 22, 33, 80));
        assert_eq!((a.max_rsp, a.min_rsp), (50, 2));
        assert_eq!(a.interval.iter().collect::<Vec<_>>(), vec![(5, 6), (10, 2), (100, 4)]);

        // A zero minimum on the left is replaced by any value; a smaller non-zero wins.
        let mut c = StatValue { min_rsp: 0, ..StatValue::default() };
        c.merge(&StatValue { min_rsp: 7, ..StatValue::default() });
        assert_eq!(c.min_rsp, 7);
        c.merge(&StatValue { min_rsp: 3, ..StatValue::default() });
        assert_eq!(c.min_rsp, 3);
        c.merge(&StatValue { min_rsp: 9, ..StatValue::default() });
        assert_eq!(c.min_rsp, 3);
    }

    #[test]
    fn merge_saturates() {
        let mut a = StatValue { count: u64::MAX - 1, total_rsp_time: u64::MAX, ..StatValue::default() };
        a.interval.add(5, u64::MAX);
        let b = a.clone();
        a.merge(&b);
        assert_eq!((a.count, a.total_rsp_time, a.interval.get(5)), (u64::MAX, u64::MAX, Some(u64::MAX)));
    }

    #[test]
    fn interval_buckets_are_capped() {
        let mut i = Intervals::default();
        for b in 0..MAX_INTERVAL_BUCKETS as i32 {
            assert!(i.add(b, 1));
        }
        assert!(!i.add(1000, 1));
        assert!(i.add(0, 1), "existing buckets still add");
        assert_eq!((i.len(), i.get(0), i.get(1000)), (MAX_INTERVAL_BUCKETS, Some(2), None));
    }

    #[test]
    fn ave_time_rules() {
        let v = |count, total| StatValue { count, total_rsp_time: total, ..StatValue::default() };
        assert_eq!(v(0, 100).ave_time(), 0);
        assert_eq!(v(10, 5).ave_time(), 1);
        assert_eq!(v(10, 0).ave_time(), 1);
        assert_eq!(v(4, 10).ave_time(), 2);
        assert_eq!(v(1, u64::MAX).ave_time(), u32::MAX);
    }

    #[test]
    fn row_has_exact_values_in_column_order() {
        let (key, value) = normalize(&head(), &body(4, 1, 2), true, "192.168.1.9", &rules()).expect("kept");
        let row = stat_row(&key, &value, "10.1.1.1", "2025-05-26", "1405");
        let t = |s: &str| Value::Text(s.to_owned());
        let expected = [
            ("f_date", t("2025-05-26")),
            ("f_tflag", t("1405")),
            ("source_id", t("10.1.1.1")),
            ("master_name", t("App.Caller")),
            ("slave_name", t("App.Callee")),
            ("interface_name", t("ping")),
            ("tars_version", t("1.8.0")),
            ("master_ip", t("192.168.1.9")),
            ("slave_ip", t("10.0.0.2")),
            ("slave_port", Value::Int(10001)),
            ("return_value", Value::Int(0)),
            ("succ_count", Value::UInt(4)),
            ("timeout_count", Value::UInt(1)),
            ("exce_count", Value::UInt(2)),
            ("interv_count", t("5|3,10|1")),
            ("total_time", Value::UInt(40)),
            ("ave_time", Value::UInt(10)),
            ("maxrsp_time", Value::UInt(20)),
            ("minrsp_time", Value::UInt(2)),
        ];
        assert_eq!(row.len(), STAT_COLUMNS.len());
        assert_eq!(expected.len(), STAT_COLUMNS.len());
        for ((col, value), (name, want)) in STAT_COLUMNS.iter().zip(&row).zip(&expected) {
            assert_eq!(col, name);
            assert_eq!(value, want, "{col}");
        }
    }

    #[test]
    fn row_clamps_to_column_ranges() {
        let key = StatKey::new(&KeyFields { return_value: -3, ..KeyFields::default() });
        let value = StatValue {
            count: u64::MAX,
            total_rsp_time: u64::MAX,
            max_rsp: -1,
            min_rsp: i32::MAX,
            ..StatValue::default()
        };
        let row = stat_row(&key, &value, "", "2025-05-26", "1405");
        assert_eq!(row[10], Value::Int(-3));
        assert_eq!(row[11], Value::UInt(u64::from(u32::MAX)));
        assert_eq!(row[14], Value::Text(String::new()));
        assert_eq!(row[15], Value::UInt(i64::MAX as u64));
        assert_eq!(row[16], Value::UInt(1));
        assert_eq!(row[17], Value::UInt(0));
        assert_eq!(row[18], Value::UInt(i32::MAX as u64));
    }

    #[test]
    fn interv_count_keeps_whole_items_within_128_chars() {
        let mut i = Intervals::default();
        for b in 0..MAX_INTERVAL_BUCKETS as i32 {
            i.add(1_000_000 + b, u64::MAX);
        }
        let s = i.render(width::INTERV_COUNT);
        assert!(s.len() <= 128, "{}", s.len());
        // Each item is "100000b|18446744073709551615" (28 chars): 4 items and 3 commas fit.
        assert_eq!(s.split(',').count(), 4);
        assert!(s.split(',').all(|item| item.ends_with("|18446744073709551615")));
    }

    #[test]
    fn long_and_astral_text_is_fitted_when_keyed() {
        let mut h = head();
        h.master_name = format!("{}@{}", "m".repeat(300), "v".repeat(40));
        h.interface_name = "ping😀".into();
        let (key, _) = normalize(&h, &body(1, 0, 0), true, "p", &rules()).expect("kept");
        let key = key.fields();
        assert_eq!(key.master_name, "m".repeat(128));
        assert_eq!(key.tars_version, "v".repeat(16));
        assert_eq!(key.interface_name, "ping\u{FFFD}");
    }

    #[test]
    fn column_text_cuts_on_chars_and_replaces_non_bmp() {
        assert!(matches!(column_text("abc", 3), Cow::Borrowed("abc")));
        assert!(matches!(column_text("abcd", 3), Cow::Borrowed("abc")));
        // 'é' is 2 bytes and '中' 3: both fit a utf8 column and are counted as one char each.
        assert!(matches!(column_text("é中x", 2), Cow::Borrowed("é中")));
        assert_eq!(column_text("a😀b", 10), "a\u{FFFD}b");
        assert!(matches!(column_text("a😀b", 10), Cow::Owned(_)));
        // The cut happens before the replacement, counting the emoji as one char.
        assert_eq!(column_text("😀😀😀", 2), "\u{FFFD}\u{FFFD}");
        assert_eq!(column_text("abc😀", 3), "abc");
        assert_eq!(column_text("", 0), "");
        assert_eq!(column_text("abc", 0), "");
    }

    #[test]
    fn master_ip_group_parsing_reports_bad_lines() {
        let (rules, errors) = IngestRules::parse_master_ip_group(
            "tars.tarsstat;1.1.1.1\n\n  App.X ; 2.2.2.2 \nnosemicolon\n;3.3.3.3\nApp.Y;\nApp.Z;4.4.4.4;extra\ntars.tarsstat;5.5.5.5\n",
        );
        assert_eq!(rules.master_ip_group.len(), 3);
        assert_eq!(rules.master_ip_group["tars.tarsstat"], "5.5.5.5");
        assert_eq!(rules.master_ip_group["App.X"], "2.2.2.2");
        assert_eq!(rules.master_ip_group["App.Z"], "4.4.4.4");
        let lines: Vec<usize> = errors.iter().map(|RuleError::Malformed { line, .. }| *line).collect();
        assert_eq!(lines, vec![4, 5, 6]);
    }

    #[test]
    fn widths_match_the_schema() {
        let table = stat_table("t");
        for (name, w) in [
            ("f_tflag", width::F_TFLAG),
            ("source_id", width::SOURCE_ID),
            ("master_name", width::MASTER_NAME),
            ("slave_name", width::SLAVE_NAME),
            ("interface_name", width::INTERFACE_NAME),
            ("tars_version", width::TARS_VERSION),
            ("master_ip", width::MASTER_IP),
            ("slave_ip", width::SLAVE_IP),
            ("interv_count", width::INTERV_COUNT),
        ] {
            let col = table.column(name).expect(name);
            assert_eq!(col.ty, ColType::Varchar(w as u16), "{name}");
        }
    }
}
