//! `reportMicMsg` parameters with arbitrary bytes: the streaming decoder
//! (`tars_stat::mic::MicReport`) never panics and agrees with the generated servant's decoder:
//! both accept or both reject (with the same error message), and when they accept, the same
//! `bFromClient` and the same entries in the same order (the `BTreeMap`'s: key order, first
//! body of a duplicate head, buckets ascending with the first count of a duplicate). With the
//! default limits the answer is the same or a limit error (possibly instead of a later error);
//! `normalize_mic` gives what `normalize` gives on the generated types.

#![no_main]

use std::collections::BTreeMap;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use tars_proto::codec::{DecodeError, DecodeErrorKind};
use tars_proto::rpc::ParamReader;
use tars_protocol::tars::{StatMicMsgBody, StatMicMsgHead};
use tars_stat::ingest::{normalize, IngestRules};
use tars_stat::mic::{normalize_mic, MicLimits, MicReport};

fuzz_target!(|data: &[u8]| {
    let bytes = Bytes::copy_from_slice(data);
    // What `dispatch_stat_f` does for iVersion 1.
    let generated = ParamReader::new(1, &bytes).and_then(|mut p| {
        let msg: BTreeMap<StatMicMsgHead, StatMicMsgBody> =
            p.read(1, "msg").map_err(|e| e.at("StatF.reportMicMsg", "msg"))?;
        let from_client: bool = p.read(2, "bFromClient").map_err(|e| e.at("StatF.reportMicMsg", "bFromClient"))?;
        Ok((msg, from_client))
    });
    let ours = MicReport::decode(data, MicLimits::UNLIMITED);
    match (&generated, &ours) {
        (Ok((msg, from_client)), Ok(report)) => {
            assert_eq!(report.from_client(), *from_client);
            assert_eq!(report.len(), msg.len());
            let rules = IngestRules::parse_master_ip_group("App.S;9.9.9.9").0;
            for ((h, b), (gh, gb)) in report.iter().zip(msg) {
                assert_eq!(&h.to_owned_head(), gh);
                assert_eq!(&b.to_owned_body(), gb);
                assert_eq!(
                    normalize_mic(&h, &b, *from_client, "10.0.0.1", &rules),
                    normalize(gh, gb, *from_client, "10.0.0.1", &rules)
                );
            }
        }
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
        (a, b) => panic!("generated {a:?}, ours {b:?}"),
    }
    // A limit may reject a request earlier than the error found without limits.
    let is_limit = |e: &DecodeError| matches!(e.kind(), DecodeErrorKind::Invalid(m) if m.contains("the limit"));
    match (MicReport::decode(data, MicLimits::default()), &ours) {
        (Ok(a), Ok(b)) => assert_eq!(a.to_owned_map(), b.to_owned_map()),
        (Err(a), Err(b)) => assert!(a.to_string() == b.to_string() || is_limit(&a), "{a} / {b}"),
        (Err(e), Ok(_)) => assert!(is_limit(&e), "{e}"),
        (Ok(_), Err(e)) => panic!("accepted with limits, rejected without: {e}"),
    }
});
