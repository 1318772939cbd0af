//! Any text: `Config::parse` must not panic, and whatever it accepts and can write out must
//! write out as text that parses again and writes out identically. Root parameters are lost by
//! serialisation, so the texts are compared, not the configs. Merging a config with its own
//! re-parse must not change its text either.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tars_proto::config::{Config, MAX_LINE_LEN};

fuzz_target!(|data: &[u8]| {
    // Serialising can double a line (escapes) and indent it; stay clear of the line limit.
    if data.len() > MAX_LINE_LEN / 4 {
        return;
    }
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(c) = Config::parse(s) {
            if let Ok(t) = c.to_text() {
                let again = Config::parse(&t).expect("serialised config re-parses");
                assert_eq!(again.to_text().expect("re-parsed config serialises"), t);
                let mut merged = again.clone();
                merged.join(&again, true).expect("self-merge");
                assert_eq!(merged, again);
            }
        }
    }
});
