//! tarsnotify's `reportNotifyInfo` from arbitrary bytes: the parameter decoded as the
//! generated servant decodes it (TARS and TUP), and the `ReportInfo` struct alone; each one
//! that decodes becomes its `t_server_notifys` row (`Notice::from_report`) and goes through
//! the filter. Nothing panics, and every text of the row fits its column: characters for the
//! `utf8` columns (none outside the BMP), bytes for `result`.
#![no_main]

use std::time::Instant;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use tars_notify::filter::Filter;
use tars_notify::notice::{Notice, ALARM, ERROR, NORMAL, WARN};
use tars_proto::codec::Struct;
use tars_proto::rpc::ParamReader;
use tars_protocol::tars::ReportInfo;

fn fits(s: &str, chars: usize) -> bool {
    s.chars().count() <= chars && s.chars().all(|c| c.len_utf8() < 4)
}

fn row(info: &ReportInfo, filter: &Filter) {
    for peer in [Some("10.0.0.1"), None] {
        let n = Notice::from_report(info, peer, Instant::now());
        for (s, w) in [
            (&n.application, 128),
            (&n.server_name, 128),
            (&n.container_name, 128),
            (&n.node_name, 128),
            (&n.server_id, 100),
            (&n.thread_id, 20),
        ] {
            assert!(fits(s, w), "{s:?} does not fit {w}");
        }
        if let Some(set) = &n.set {
            assert!(set.iter().all(|p| fits(p, 16)), "{set:?}");
        }
        assert!(n.result.len() <= 65_535 && n.result.chars().all(|c| c.len_utf8() < 4));
        assert!([ALARM, ERROR, WARN, NORMAL].contains(&n.command), "{}", n.command);
        assert!(n.cost() >= n.result.len());
        let _ = filter.drops(&info.s_app, &info.s_server, &n.result);
        let summary = n.with_message(WARN, n.result.clone(), Instant::now());
        assert_eq!(summary.server_id, n.server_id);
    }
}

fuzz_target!(|data: &[u8]| {
    let bytes = Bytes::copy_from_slice(data);
    // A filter keyed by the input's own first bytes, so some notices match it.
    let head = String::from_utf8_lossy(&data[..data.len().min(8)]).into_owned();
    let filter = Filter::from_pairs([("default", head.as_str()), ("AppServer", "[debug];noise|")]);
    for version in [1, 3] {
        if let Ok(mut p) = ParamReader::new(version, &bytes) {
            if let Ok(info) = p.read::<ReportInfo>(1, "info") {
                row(&info, &filter);
            }
        }
    }
    if let Ok(info) = ReportInfo::decode(data) {
        row(&info, &filter);
    }
});
