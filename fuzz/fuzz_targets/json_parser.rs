//! Any bytes: `json::parse` must not panic, and whatever it accepts must write out as JSON
//! that parses again to a value that writes out identically.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tars_proto::json;

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = json::parse(data) {
        let s = json::to_string(&v);
        let again = json::parse(s.as_bytes()).expect("reparse");
        assert_eq!(json::to_string(&again), s);
        assert_eq!(again, v);
    }
});
