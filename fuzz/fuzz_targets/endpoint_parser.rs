//! Object/endpoint strings: never panic, and whatever parses prints back to itself.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(o) = tars_proto::endpoint::ObjectRef::parse(s) {
            let again = tars_proto::endpoint::ObjectRef::parse(&o.to_string()).expect("round trip");
            assert_eq!(again, o);
        }
        if let Ok(e) = tars_proto::endpoint::Endpoint::parse(s) {
            let again = tars_proto::endpoint::Endpoint::parse(&e.to_string()).expect("round trip");
            assert_eq!(again, e);
        }
    }
});
