//! One `t_server_notifys` row from one `ReportInfo`, as upstream's `NotifyImp` writes it;
//! sans-IO.
//!
//! | column | value |
//! |---|---|
//! | `application`, `server_name`, `container_name` | `sApp`, `sServer`, `sContainer` |
//! | `node_name` | `sNodeName`, or the caller's IP when it is empty |
//! | `server_id` | `sApp.sServer_<node_name>` |
//! | `set_name`, `set_area`, `set_group` | `sSet` split at `.`: empty without a set; NULL when it is not three parts or its name or area is `*` (upstream leaves them out) |
//! | `thread_id` | `sThreadId` |
//! | `command` | REPORT: the first of `[alarm]`, `[error]`, `[warn]`, `[fail]` (written `[error]`) found in the message, else `[normal]`; NOTIFY (and any other type): from `eLevel` |
//! | `result` | `sMessage` |
//! | `notifytime` | when it was received (the database's clock) |
//!
//! Every text is cut to its column (`utf8`, so characters outside the BMP become U+FFFD):
//! the rows go in as multi-row INSERTs, and in strict mode one over-long value would fail
//! the whole batch.

use std::time::Instant;

use tars_protocol::tars::{ReportInfo, ReportType, NOTIFYLEVEL};

/// `[alarm]`.
pub const ALARM: &str = "[alarm]";
/// `[error]`.
pub const ERROR: &str = "[error]";
/// `[warn]`.
pub const WARN: &str = "[warn]";
/// `[fail]`: recognised in REPORT messages, written as `[error]`.
pub const FAIL: &str = "[fail]";
/// `[normal]`.
pub const NORMAL: &str = "[normal]";

/// Column widths of `t_server_notifys` (characters; `result` is a TEXT: bytes).
mod width {
    pub(super) const NAME: usize = 128;
    pub(super) const SET: usize = 16;
    pub(super) const SERVER_ID: usize = 100;
    pub(super) const THREAD_ID: usize = 20;
    pub(super) const RESULT_BYTES: usize = 65_535;
}

/// Bytes a queued notice is charged beyond its texts.
const OVERHEAD: usize = 192;

/// The `command` of a REPORT: the first tag found, in upstream's order.
pub fn report_command(message: &str) -> &'static str {
    if message.contains(ALARM) {
        ALARM
    } else if message.contains(ERROR) {
        ERROR
    } else if message.contains(WARN) {
        WARN
    } else if message.contains(FAIL) {
        ERROR
    } else {
        NORMAL
    }
}

/// The `command` of a NOTIFY: from its level; an unknown level is `[normal]`.
pub fn level_command(level: NOTIFYLEVEL) -> &'static str {
    match level {
        NOTIFYLEVEL::NOTIFYERROR => ERROR,
        NOTIFYLEVEL::NOTIFYWARN => WARN,
        _ => NORMAL,
    }
}

/// The set columns of `sSet`: `Some` of three empty strings without a set, `Some` of its
/// parts, or `None` when it is invalid (not three non-empty parts, or `*` as name or area).
/// Empty parts are skipped first, as upstream's `sepstr` does, so `a..b.c` has three parts.
pub fn split_set(set: &str) -> Option<[String; 3]> {
    if set.is_empty() {
        return Some(Default::default());
    }
    let parts: Vec<&str> = set.split('.').filter(|p| !p.is_empty()).collect();
    match parts.as_slice() {
        [name, area, group] if *name != "*" && *area != "*" => {
            Some([fit(name, width::SET), fit(area, width::SET), fit(group, width::SET)])
        }
        _ => None,
    }
}

/// `s` as a MySQL `utf8` column of `max_chars` characters stores it: cut after that many
/// characters, characters outside the BMP replaced with U+FFFD.
pub fn fit(s: &str, max_chars: usize) -> String {
    s.chars().take(max_chars).map(|c| if c.len_utf8() == 4 { char::REPLACEMENT_CHARACTER } else { c }).collect()
}

/// [`fit`] for a TEXT column: at most `max_bytes` bytes, never cut inside a character.
fn fit_bytes(s: &str, max_bytes: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max_bytes));
    for c in s.chars() {
        let c = if c.len_utf8() == 4 { char::REPLACEMENT_CHARACTER } else { c };
        if out.len() + c.len_utf8() > max_bytes {
            break;
        }
        out.push(c);
    }
    out
}

/// One row for `t_server_notifys`, its texts already cut to their columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// `application`.
    pub application: String,
    /// `server_name`.
    pub server_name: String,
    /// `container_name`.
    pub container_name: String,
    /// `node_name`.
    pub node_name: String,
    /// `set_name`, `set_area`, `set_group`; `None`: NULL (an invalid set).
    pub set: Option<[String; 3]>,
    /// `server_id` (`App.Server_node`): also the rate limiter's key.
    pub server_id: String,
    /// `thread_id`.
    pub thread_id: String,
    /// `command`.
    pub command: &'static str,
    /// `result`.
    pub result: String,
    /// When it was received: `notifytime` is the database's clock minus its age at the write.
    pub received: Instant,
}

/// `sMessage` as text. C++ servers send it in whatever encoding they log in (GBK is common)
/// and the `result` column holds text: bytes that are not UTF-8 become U+FFFD, so the notice
/// is kept rather than the call refused.
pub fn message_text(info: &ReportInfo) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(&info.s_message.0)
}

impl Notice {
    /// The row upstream writes for `info` from a caller at `peer_ip`.
    pub fn from_report(info: &ReportInfo, peer_ip: Option<&str>, received: Instant) -> Notice {
        let message = message_text(info);
        let node = if info.s_node_name.is_empty() { peer_ip.unwrap_or("") } else { info.s_node_name.as_str() };
        let command =
            if info.e_type == ReportType::REPORT { report_command(&message) } else { level_command(info.e_level) };
        Notice {
            application: fit(&info.s_app, width::NAME),
            server_name: fit(&info.s_server, width::NAME),
            container_name: fit(&info.s_container, width::NAME),
            node_name: fit(node, width::NAME),
            set: split_set(&info.s_set),
            server_id: fit(&format!("{}.{}_{node}", info.s_app, info.s_server), width::SERVER_ID),
            thread_id: fit(&info.s_thread_id, width::THREAD_ID),
            command,
            result: fit_bytes(&message, width::RESULT_BYTES),
            received,
        }
    }

    /// The bytes it is charged in the queue: its texts and a fixed overhead.
    pub fn cost(&self) -> usize {
        let set = self.set.as_ref().map_or(0, |s| s.iter().map(String::len).sum());
        OVERHEAD
            + self.application.len()
            + self.server_name.len()
            + self.container_name.len()
            + self.node_name.len()
            + set
            + self.server_id.len()
            + self.thread_id.len()
            + self.result.len()
    }

    /// The same server's row with another message (a rate-limit summary): no thread id.
    pub fn with_message(&self, command: &'static str, message: String, received: Instant) -> Notice {
        Notice {
            application: self.application.clone(),
            server_name: self.server_name.clone(),
            container_name: self.container_name.clone(),
            node_name: self.node_name.clone(),
            set: self.set.clone(),
            server_id: self.server_id.clone(),
            thread_id: String::new(),
            command,
            result: fit_bytes(&message, width::RESULT_BYTES),
            received,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn info(e_type: ReportType, message: &str) -> ReportInfo {
        ReportInfo {
            e_type,
            s_app: "App".into(),
            s_server: "Server".into(),
            s_message: message.into(),
            ..ReportInfo::default()
        }
    }

    #[test]
    fn a_message_that_is_not_utf8_is_kept() {
        let mut report = info(ReportType::REPORT, "");
        report.s_message = tars_proto::codec::BinString(tars_proto::Bytes::from_static(b"[fail] \xc4\xe3\xba\xc3"));
        let n = Notice::from_report(&report, Some("10.0.0.1"), Instant::now());
        assert_eq!(n.command, ERROR, "tags are still read");
        // Each maximal invalid run is one U+FFFD, as `String::from_utf8_lossy` does.
        assert_eq!(n.result, "[fail] \u{fffd}\u{fffd}\u{fffd}");
    }

    #[test]
    fn report_tags_in_upstream_order() {
        assert_eq!(report_command("x [warn] y [alarm]"), ALARM);
        assert_eq!(report_command("[warn] then [error]"), ERROR);
        assert_eq!(report_command("[fail] and [warn]"), WARN);
        assert_eq!(report_command("restart [fail]"), ERROR);
        assert_eq!(report_command("[ALARM] is case-sensitive"), NORMAL);
        assert_eq!(report_command(""), NORMAL);
    }

    #[test]
    fn notify_levels() {
        assert_eq!(level_command(NOTIFYLEVEL::NOTIFYERROR), ERROR);
        assert_eq!(level_command(NOTIFYLEVEL::NOTIFYWARN), WARN);
        assert_eq!(level_command(NOTIFYLEVEL::NOTIFYNORMAL), NORMAL);
        assert_eq!(level_command(NOTIFYLEVEL(77)), NORMAL);
        // A NOTIFY ignores tags in its text; an unknown type is treated as NOTIFY.
        let mut i = info(ReportType::NOTIFY, "[alarm]");
        assert_eq!(Notice::from_report(&i, None, Instant::now()).command, NORMAL);
        i.e_type = ReportType(9);
        i.e_level = NOTIFYLEVEL::NOTIFYWARN;
        assert_eq!(Notice::from_report(&i, None, Instant::now()).command, WARN);
    }

    #[test]
    fn sets_as_upstream() {
        assert_eq!(split_set(""), Some([String::new(), String::new(), String::new()]));
        assert_eq!(split_set("sz.a.1"), Some(["sz".into(), "a".into(), "1".into()]));
        assert_eq!(split_set("sz.a.*"), Some(["sz".into(), "a".into(), "*".into()]));
        assert_eq!(split_set("sz..a.1."), Some(["sz".into(), "a".into(), "1".into()]));
        assert_eq!(split_set("sz.*.1"), None);
        assert_eq!(split_set("*.a.1"), None);
        assert_eq!(split_set("sz.a"), None);
        assert_eq!(split_set("a.b.c.d"), None);
        assert_eq!(split_set(".."), None);
    }

    #[test]
    fn node_and_server_id() {
        let mut i = info(ReportType::REPORT, "m");
        let n = Notice::from_report(&i, Some("10.1.2.3"), Instant::now());
        assert_eq!((n.node_name.as_str(), n.server_id.as_str()), ("10.1.2.3", "App.Server_10.1.2.3"));
        i.s_node_name = "node-7".into();
        let n = Notice::from_report(&i, Some("10.1.2.3"), Instant::now());
        assert_eq!((n.node_name.as_str(), n.server_id.as_str()), ("node-7", "App.Server_node-7"));
        let n = Notice::from_report(&info(ReportType::REPORT, "m"), None, Instant::now());
        assert_eq!((n.node_name.as_str(), n.server_id.as_str()), ("", "App.Server_"));
    }

    #[test]
    fn texts_fit_their_columns() {
        let mut i = info(ReportType::REPORT, &"é".repeat(40_000));
        i.s_app = "a".repeat(300);
        i.s_thread_id = "t".repeat(50);
        i.s_set = format!("{}.b.c", "s".repeat(40));
        let n = Notice::from_report(&i, Some("h"), Instant::now());
        assert_eq!(n.application.chars().count(), 128);
        assert_eq!(n.server_id.chars().count(), 100);
        assert_eq!(n.thread_id.len(), 20);
        assert_eq!(n.set.as_ref().unwrap()[0].len(), 16);
        assert!(n.result.len() <= 65_535 && n.result.len() > 65_530, "{}", n.result.len());
        assert_eq!(fit("a😀b", 10), "a\u{FFFD}b");
        assert_eq!(fit_bytes("ab😀", 5), "ab\u{FFFD}");
        assert!(n.cost() > n.result.len());
    }
}
