//! Request heads for the small HTTP server (`tars_core_net::http`, behind the registry's
//! Prometheus service discovery and the `/metrics` endpoints): any bytes split into heads as a
//! connection reading them would, and each parses without panicking; no head exceeds the size
//! limit the server enforces, and what parses has a method and an origin-form path.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tars_core_net::http::{parse_request, take_head, MAX_REQUEST_HEAD};

fuzz_target!(|data: &[u8]| {
    let mut buf = data.to_vec();
    let mut consumed = 0;
    while let Ok(Some(head)) = take_head(&mut buf, MAX_REQUEST_HEAD) {
        assert!(!head.is_empty() && head.len() <= MAX_REQUEST_HEAD);
        consumed += head.len();
        assert_eq!(consumed + buf.len(), data.len(), "bytes are only taken, never lost or added");
        if let Some(req) = parse_request(&head) {
            assert!(!req.method.is_empty() && req.path.starts_with('/'));
            assert!(!req.path.contains('?'));
            assert!(req.path.len() < head.len());
        }
    }
});
