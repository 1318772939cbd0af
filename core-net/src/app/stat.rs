//! Call statistics, as a TarsCpp server and client report them to tarsstat
//! (`StatF.reportMicMsg`), kept per shard without locks.
//!
//! Each shard (a server shard, a communicator's thread) owns a [`ShardStats`] table of the
//! calls it made or served since its last hand-off. At most once a second, and when it is
//! dropped, the shard hands its rows to the duty thread through a bounded channel (never
//! waiting: a full channel drops the rows and counts them). The duty thread merges the
//! rows of every shard and sends them every `report-interval` (TarsCpp's `StatReport::run`).
//!
//! What TarsCpp puts in a row (`StatReport.cpp`, `ServantHandle.cpp`, `AdapterProxy.cpp`):
//! - client side (`bFromClient` true): masterName `modulename[.set]@<tars version>`,
//!   slaveName the callee's `App.Server` (plus `.NameAreaGroup` when the callee is in a
//!   set), masterIp empty (tarsstat fills in the peer), slaveIp/slavePort the endpoint
//!   called, returnValue the reply's `iRet`;
//! - server side (`bFromClient` false): masterName `stat_from_server`, masterIp the
//!   caller's IP, slaveName `App.Server[.set]`, slaveIp empty, slavePort 0;
//! - body: a success (`iRet == 0`) adds 1 to `count` and its time (whole ms) to the total,
//!   max and min (min ignores zeros); a timeout adds 1 to `timeoutCount`, anything else to
//!   `execCount`. The histogram has the 9 buckets 5, 10, 50, 100, 200, 500, 1000, 2000,
//!   3000 ms, all present from a row's first call; a call goes in the first bucket whose
//!   bound is greater than its time (failed calls count as 0 ms, so bucket 5), and a call
//!   of 3000 ms or more in none.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hashbrown::{Equivalent, HashMap};

use tars_protocol::tars::{StatMicMsgBody, StatMicMsgHead};

/// The response-time bucket bounds (ms) of TarsCpp's `StatReport::resetStatInterv`.
pub const BUCKETS: [i32; 9] = [5, 10, 50, 100, 200, 500, 1000, 2000, 3000];
/// The masterName of every server-side row.
pub const FROM_SERVER: &str = "stat_from_server";
/// How often a shard hands its rows to the duty thread.
pub const HAND_OFF_EVERY: Duration = Duration::from_secs(1);
/// A packet's size budget (`MAX_REPORT_SIZE`): rows are split into calls of at most this
/// many estimated bytes, each row counted as [`ROW_OVERHEAD`] plus its strings.
pub const MAX_REPORT_SIZE: usize = 1400;
/// `STAT_PROTOCOL_LEN`: the fixed part of a row in the size estimate.
pub const ROW_OVERHEAD: usize = 100;

/// How one call ended, for its row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Answered with `iRet == 0`.
    Success,
    /// No answer within the deadline.
    Timeout,
    /// Answered with another code, or the connection failed.
    Exception,
}

impl Outcome {
    /// The outcome of a call answered with `ret`.
    pub fn of_ret(ret: i32) -> Outcome {
        if ret == 0 {
            Outcome::Success
        } else if ret == tars_proto::packet::ret::QUEUE_TIMEOUT || ret == tars_proto::packet::ret::INVOKE_TIMEOUT {
            Outcome::Timeout
        } else {
            Outcome::Exception
        }
    }
}

/// Adds one call to `body` as `StatReport::submit` does.
pub fn add_call(body: &mut StatMicMsgBody, outcome: Outcome, ms: i32) {
    let time = if outcome == Outcome::Success { ms.max(0) } else { 0 };
    match outcome {
        Outcome::Success => {
            body.count += 1;
            body.total_rsp_time += i64::from(time);
            body.max_rsp_time = body.max_rsp_time.max(time);
            if body.min_rsp_time == 0 || (time != 0 && time < body.min_rsp_time) {
                body.min_rsp_time = time;
            }
        }
        Outcome::Timeout => body.timeout_count += 1,
        Outcome::Exception => body.exec_count += 1,
    }
    if body.interval_count.is_empty() {
        for b in BUCKETS {
            body.interval_count.insert(b, 0);
        }
    }
    if let Some(b) = BUCKETS.iter().find(|&&b| time < b) {
        *body.interval_count.entry(*b).or_insert(0) += 1;
    }
}

/// One row's counters on a shard: [`add_call`]'s rules with the histogram in an array, so a
/// call costs no map operation; made into a [`StatMicMsgBody`] at the hand-off.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counter {
    count: i32,
    timeout_count: i32,
    exec_count: i32,
    total_rsp_time: i64,
    max_rsp_time: i32,
    min_rsp_time: i32,
    buckets: [i32; BUCKETS.len()],
}

impl Counter {
    fn add(&mut self, outcome: Outcome, ms: i32) {
        let time = if outcome == Outcome::Success { ms.max(0) } else { 0 };
        match outcome {
            Outcome::Success => {
                self.count = self.count.saturating_add(1);
                self.total_rsp_time = self.total_rsp_time.saturating_add(i64::from(time));
                self.max_rsp_time = self.max_rsp_time.max(time);
                if self.min_rsp_time == 0 || (time != 0 && time < self.min_rsp_time) {
                    self.min_rsp_time = time;
                }
            }
            Outcome::Timeout => self.timeout_count = self.timeout_count.saturating_add(1),
            Outcome::Exception => self.exec_count = self.exec_count.saturating_add(1),
        }
        if let Some(i) = BUCKETS.iter().position(|&b| time < b) {
            self.buckets[i] = self.buckets[i].saturating_add(1);
        }
    }

    fn body(&self) -> StatMicMsgBody {
        StatMicMsgBody {
            count: self.count,
            timeout_count: self.timeout_count,
            exec_count: self.exec_count,
            interval_count: BUCKETS.iter().copied().zip(self.buckets).collect(),
            total_rsp_time: self.total_rsp_time,
            max_rsp_time: self.max_rsp_time,
            min_rsp_time: self.min_rsp_time,
        }
    }
}

/// Merges `add` into `into` (TarsCpp's `addMicMsg`, with min ignoring zeros as `submit`
/// does).
pub fn merge(into: &mut StatMicMsgBody, add: &StatMicMsgBody) {
    into.count = into.count.saturating_add(add.count);
    into.timeout_count = into.timeout_count.saturating_add(add.timeout_count);
    into.exec_count = into.exec_count.saturating_add(add.exec_count);
    into.total_rsp_time = into.total_rsp_time.saturating_add(add.total_rsp_time);
    into.max_rsp_time = into.max_rsp_time.max(add.max_rsp_time);
    if into.min_rsp_time == 0 || (add.min_rsp_time != 0 && add.min_rsp_time < into.min_rsp_time) {
        into.min_rsp_time = add.min_rsp_time;
    }
    for (k, v) in &add.interval_count {
        let e = into.interval_count.entry(*k).or_insert(0);
        *e = e.saturating_add(*v);
    }
}

/// Splits `rows` into packets as `StatReport::reportMicMsg` does.
pub fn packets(rows: BTreeMap<StatMicMsgHead, StatMicMsgBody>) -> Vec<BTreeMap<StatMicMsgHead, StatMicMsgBody>> {
    let mut out = Vec::new();
    let mut cur = BTreeMap::new();
    let mut len = 0;
    for (head, body) in rows {
        let row = ROW_OVERHEAD
            + head.master_name.len()
            + head.slave_name.len()
            + head.interface_name.len()
            + head.slave_set_name.len()
            + head.slave_set_area.len()
            + head.slave_set_id.len();
        len += row;
        if len > MAX_REPORT_SIZE && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
            len = row;
        }
        cur.insert(head, body);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// This process's identity in its rows: `modulename`, its set, the framework version.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Module {
    /// `modulename` (`App.Server`).
    pub name: String,
    /// `setdivision` split in three, when the set is on and the division is complete.
    pub set: Option<(String, String, String)>,
    /// The `tarsVersion` in client rows' masterName.
    pub tars_version: String,
}

impl Module {
    /// `name[.NameAreaGroup]`.
    pub fn with_set(&self) -> String {
        match &self.set {
            Some((n, a, g)) => format!("{}.{n}{a}{g}", self.name),
            None => self.name.clone(),
        }
    }
}

/// Rows one shard hands over.
#[derive(Debug, Default)]
pub struct StatRows {
    /// `bFromClient`.
    pub from_client: bool,
    /// The rows.
    pub rows: Vec<(StatMicMsgHead, StatMicMsgBody)>,
}

/// Where shards send their rows: a handle to the duty thread's stat queue. Cheap to clone,
/// `Send + Sync`.
#[derive(Debug, Clone)]
pub struct StatSink {
    tx: async_channel::Sender<StatRows>,
    module: Arc<Module>,
    dropped: Arc<AtomicU64>,
}

impl StatSink {
    /// A sink for `module`, and the receiving end (the duty thread's); `capacity` hand-offs
    /// may wait.
    pub fn new(module: Module, capacity: usize) -> (StatSink, async_channel::Receiver<StatRows>) {
        let (tx, rx) = async_channel::bounded(capacity.max(1));
        (StatSink { tx, module: Arc::new(module), dropped: Arc::new(AtomicU64::new(0)) }, rx)
    }

    /// Rows dropped because the duty thread's queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Who reports.
    pub fn module(&self) -> &Module {
        &self.module
    }

    fn hand_off(&self, rows: StatRows) {
        let n = rows.rows.len() as u64;
        if n > 0 && self.tx.try_send(rows).is_err() {
            self.dropped.fetch_add(n, Ordering::Relaxed);
        }
    }
}

/// A server-side row key: what varies between the calls one server shard serves. Hashes as
/// [`ServerKeyRef`] does (same fields, same order; `String` hashes as `str`), so a call looks
/// its row up without allocating.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ServerKey {
    caller: IpAddr,
    func: String,
    ret: i32,
}

#[derive(Hash)]
struct ServerKeyRef<'a> {
    caller: IpAddr,
    func: &'a str,
    ret: i32,
}

impl Equivalent<ServerKey> for ServerKeyRef<'_> {
    fn equivalent(&self, k: &ServerKey) -> bool {
        self.caller == k.caller && self.ret == k.ret && self.func == k.func
    }
}

/// A client-side row key; looked up as [`ClientKeyRef`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ClientKey {
    /// The callee's `App.Server` (and set).
    slave: Rc<str>,
    func: String,
    host: Rc<str>,
    port: u16,
    ret: i32,
}

#[derive(Hash)]
struct ClientKeyRef<'a> {
    slave: &'a str,
    func: &'a str,
    host: &'a str,
    port: u16,
    ret: i32,
}

impl Equivalent<ClientKey> for ClientKeyRef<'_> {
    fn equivalent(&self, k: &ClientKey) -> bool {
        self.port == k.port
            && self.ret == k.ret
            && self.func == k.func
            && *self.slave == *k.slave
            && *self.host == *k.host
    }
}

/// One shard's call statistics since its last hand-off. Lives on one shard (a server shard
/// or a communicator's thread); nothing in it is shared. The shard's own 1 s tick calls
/// [`ShardStats::hand_off`] (every [`HAND_OFF_EVERY`]), so a call reads no clock for it.
#[derive(Debug)]
pub struct ShardStats {
    sink: StatSink,
    server: RefCell<HashMap<ServerKey, Counter>>,
    client: RefCell<HashMap<ClientKey, Counter>>,
}

impl ShardStats {
    /// An empty table sending to `sink`.
    pub fn new(sink: StatSink) -> ShardStats {
        ShardStats { sink, server: RefCell::new(HashMap::new()), client: RefCell::new(HashMap::new()) }
    }

    /// One call served from `caller`, answered with `ret` after `elapsed`.
    pub fn served(&self, caller: IpAddr, func: &str, ret: i32, elapsed: Duration) {
        let mut map = self.server.borrow_mut();
        let outcome = Outcome::of_ret(ret);
        match map.get_mut(&ServerKeyRef { caller, func, ret }) {
            Some(c) => c.add(outcome, millis(elapsed)),
            None => {
                map.entry(ServerKey { caller, func: func.to_owned(), ret }).or_default().add(outcome, millis(elapsed))
            }
        }
    }

    /// One call made to `slave` (`App.Server[.set]`) at `host:port`.
    #[allow(clippy::too_many_arguments)]
    pub fn called(
        &self,
        slave: &Rc<str>,
        func: &str,
        host: &Rc<str>,
        port: u16,
        outcome: Outcome,
        ret: i32,
        elapsed: Duration,
    ) {
        let mut map = self.client.borrow_mut();
        match map.get_mut(&ClientKeyRef { slave, func, host, port, ret }) {
            Some(c) => c.add(outcome, millis(elapsed)),
            None => {
                let key = ClientKey { slave: slave.clone(), func: func.to_owned(), host: host.clone(), port, ret };
                map.entry(key).or_default().add(outcome, millis(elapsed));
            }
        }
    }

    /// Hands every row to the duty thread now.
    pub fn hand_off(&self) {
        let m = &self.sink.module;
        let set = m.set.clone().unwrap_or_default();
        let server: Vec<_> = self
            .server
            .borrow_mut()
            .drain()
            .map(|(k, body)| {
                let head = StatMicMsgHead {
                    master_name: FROM_SERVER.to_owned(),
                    master_ip: k.caller.to_string(),
                    slave_name: m.with_set(),
                    interface_name: k.func,
                    return_value: k.ret,
                    slave_set_name: set.0.clone(),
                    slave_set_area: set.1.clone(),
                    slave_set_id: set.2.clone(),
                    ..StatMicMsgHead::default()
                };
                (head, body.body())
            })
            .collect();
        self.sink.hand_off(StatRows { from_client: false, rows: server });
        let master = format!("{}@{}", m.with_set(), m.tars_version);
        let client: Vec<_> = self
            .client
            .borrow_mut()
            .drain()
            .map(|(k, body)| {
                let (slave_name, slave_set) = split_slave(&k.slave);
                let head = StatMicMsgHead {
                    master_name: master.clone(),
                    slave_name,
                    interface_name: k.func,
                    slave_ip: k.host.to_string(),
                    slave_port: i32::from(k.port),
                    return_value: k.ret,
                    slave_set_name: slave_set.0,
                    slave_set_area: slave_set.1,
                    slave_set_id: slave_set.2,
                    ..StatMicMsgHead::default()
                };
                (head, body.body())
            })
            .collect();
        self.sink.hand_off(StatRows { from_client: true, rows: client });
    }
}

impl Drop for ShardStats {
    fn drop(&mut self) {
        self.hand_off();
    }
}

/// The callee key is `App.Server` or `App.Server\u{0}name\u{0}area\u{0}group` (see
/// [`slave_key`]); gives the row's slaveName and set fields.
fn split_slave(key: &str) -> (String, (String, String, String)) {
    let mut parts = key.split('\u{0}');
    let name = parts.next().unwrap_or_default();
    match (parts.next(), parts.next(), parts.next()) {
        (Some(n), Some(a), Some(g)) => (format!("{name}.{n}{a}{g}"), (n.to_owned(), a.to_owned(), g.to_owned())),
        _ => (name.to_owned(), Default::default()),
    }
}

/// The client-side key of a callee: its object name without the servant (`App.Server`),
/// with the callee's set division when it has a complete one.
pub fn slave_key(object_name: &str, set_division: Option<&str>) -> Rc<str> {
    let module = object_name.rsplit_once('.').map_or(object_name, |(m, _)| m);
    match set_division.and_then(split_division) {
        Some((n, a, g)) => format!("{module}\u{0}{n}\u{0}{a}\u{0}{g}").into(),
        None => module.into(),
    }
}

/// `name.area.group` in three, unless incomplete or with a `*` name or area (TarsCpp's
/// `divison2SetInfo`).
pub fn split_division(d: &str) -> Option<(String, String, String)> {
    let v: Vec<&str> = d.split('.').collect();
    match v.as_slice() {
        [n, a, g] if *n != "*" && *a != "*" && !n.is_empty() => Some(((*n).into(), (*a).into(), (*g).into())),
        _ => None,
    }
}

fn millis(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}

/// The duty thread's merge of every shard's rows, by `bFromClient`.
#[derive(Debug, Default)]
pub struct Collected {
    client: BTreeMap<StatMicMsgHead, StatMicMsgBody>,
    server: BTreeMap<StatMicMsgHead, StatMicMsgBody>,
}

impl Collected {
    /// Merges one hand-off.
    pub fn add(&mut self, rows: StatRows) {
        let map = if rows.from_client { &mut self.client } else { &mut self.server };
        for (head, body) in rows.rows {
            match map.get_mut(&head) {
                Some(b) => merge(b, &body),
                None => {
                    map.insert(head, body);
                }
            }
        }
    }

    /// Takes everything: `(bFromClient, packet)` pairs, client rows first.
    pub fn take_packets(&mut self) -> Vec<(bool, BTreeMap<StatMicMsgHead, StatMicMsgBody>)> {
        let client = packets(std::mem::take(&mut self.client)).into_iter().map(|p| (true, p));
        let server = packets(std::mem::take(&mut self.server)).into_iter().map(|p| (false, p));
        client.chain(server).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_as_tarscpp() {
        let mut b = StatMicMsgBody::default();
        add_call(&mut b, Outcome::Success, 0);
        add_call(&mut b, Outcome::Success, 5);
        add_call(&mut b, Outcome::Success, 2999);
        add_call(&mut b, Outcome::Success, 3000);
        add_call(&mut b, Outcome::Timeout, 4000);
        add_call(&mut b, Outcome::Exception, 7);
        assert_eq!((b.count, b.timeout_count, b.exec_count), (4, 1, 1));
        assert_eq!((b.total_rsp_time, b.max_rsp_time, b.min_rsp_time), (6004, 3000, 5));
        let want: BTreeMap<i32, i32> =
            [(5, 3), (10, 1), (50, 0), (100, 0), (200, 0), (500, 0), (1000, 0), (2000, 0), (3000, 1)].into();
        assert_eq!(b.interval_count, want);
    }

    #[test]
    fn the_shard_counter_counts_as_add_call() {
        let calls = [
            (Outcome::Success, 0),
            (Outcome::Success, 5),
            (Outcome::Success, 2999),
            (Outcome::Success, 3000),
            (Outcome::Timeout, 4000),
            (Outcome::Exception, 7),
            (Outcome::Success, 42),
        ];
        let (mut body, mut counter) = (StatMicMsgBody::default(), Counter::default());
        for (outcome, ms) in calls {
            add_call(&mut body, outcome, ms);
            counter.add(outcome, ms);
        }
        assert_eq!(counter.body(), body);
    }

    #[test]
    fn merge_keeps_the_non_zero_minimum() {
        let mut a = StatMicMsgBody::default();
        add_call(&mut a, Outcome::Timeout, 0);
        let mut b = StatMicMsgBody::default();
        add_call(&mut b, Outcome::Success, 42);
        merge(&mut a, &b);
        assert_eq!((a.min_rsp_time, a.max_rsp_time, a.count, a.timeout_count), (42, 42, 1, 1));
        assert_eq!(a.interval_count[&5], 1);
        assert_eq!(a.interval_count[&50], 1);
    }

    #[test]
    fn packets_stay_under_the_size_budget() {
        let mut rows = BTreeMap::new();
        for i in 0..40 {
            let head = StatMicMsgHead {
                interface_name: format!("f{i:02}"),
                master_name: "A.B@1".into(),
                ..Default::default()
            };
            rows.insert(head, StatMicMsgBody::default());
        }
        let p = packets(rows);
        assert_eq!(p.iter().map(BTreeMap::len).sum::<usize>(), 40);
        // 108 estimated bytes a row: 12 rows fit in 1400.
        assert!(
            p.iter().all(|m| m.len() == 12 || m.len() == 4),
            "{:?}",
            p.iter().map(BTreeMap::len).collect::<Vec<_>>()
        );
    }

    #[test]
    fn shard_rows_are_headed_as_tarscpp() {
        let module = Module {
            name: "App.Srv".into(),
            set: Some(("sz".into(), "a".into(), "1".into())),
            tars_version: "9.9".into(),
        };
        let (sink, rx) = StatSink::new(module, 8);
        let shard = ShardStats::new(sink);
        shard.served("10.0.0.9".parse().expect("ip"), "echo", 0, Duration::from_millis(3));
        let slave = slave_key("Other.Srv.Obj", Some("gz.b.2"));
        shard.called(&slave, "ping", &Rc::from("10.0.0.7"), 9000, Outcome::Success, 0, Duration::from_millis(12));
        drop(shard);
        let server = rx.try_recv().expect("server rows");
        let client = rx.try_recv().expect("client rows");
        assert!(!server.from_client && client.from_client);
        let (h, b) = &server.rows[0];
        assert_eq!(
            (
                h.master_name.as_str(),
                h.master_ip.as_str(),
                h.slave_name.as_str(),
                h.slave_port,
                h.slave_set_id.as_str()
            ),
            ("stat_from_server", "10.0.0.9", "App.Srv.sza1", 0, "1")
        );
        assert_eq!((b.count, b.min_rsp_time), (1, 3));
        let (h, _) = &client.rows[0];
        assert_eq!(
            (
                h.master_name.as_str(),
                h.slave_name.as_str(),
                h.slave_ip.as_str(),
                h.slave_port,
                h.slave_set_name.as_str()
            ),
            ("App.Srv.sza1@9.9", "Other.Srv.gzb2", "10.0.0.7", 9000, "gz")
        );
        assert_eq!(slave_key("A.B.C", Some("*.a.1")).as_ref(), "A.B");
    }
}
