//! Fuzzes the `.tars` front end: the parser and resolver must return an error, never panic,
//! on any input (type nesting is capped, so deep input cannot overflow the stack either).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = tars_idl::parse::parse(std::path::Path::new("fuzz.tars"), s);
        let _ = tars_idl::resolve::load_str(&[("fuzz.tars", s)]);
    }
});
