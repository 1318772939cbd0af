//! Requests with bodies for the small HTTP server (`tars_core_net::http`, behind tarsgateway's
//! `POST /json/…`): any bytes, fed in two parts as a connection reading them would, split into
//! requests by `take_request` without panicking. Bytes are only taken, never lost or added;
//! nothing is taken from an incomplete request; every request taken is within the limits, its
//! head parses, and its body has exactly the announced `Content-Length`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tars_core_net::http::{parse_request, take_request, Body, Limits};

fuzz_target!(|data: &[u8]| {
    let Some((&cut, data)) = data.split_first() else { return };
    let limits = Limits { max_head: 512, max_body: 1024, ..Limits::default() };
    let cut = usize::from(cut).min(data.len());
    let mut buf = data[..cut].to_vec();
    let mut consumed = 0;
    for fed_all in [false, true] {
        if fed_all {
            buf.extend_from_slice(&data[cut..]);
        }
        let fed = if fed_all { data.len() } else { cut };
        loop {
            let before = buf.len();
            match take_request(&mut buf, &limits) {
                Ok(Some(m)) => {
                    assert!(!m.head.is_empty() && m.head.len() <= limits.max_head);
                    assert!(m.body.len() <= limits.max_body);
                    consumed += m.head.len() + m.body.len();
                    assert_eq!(consumed + buf.len(), fed, "bytes are only taken, never lost or added");
                    let req = parse_request(&m.head).expect("a taken head parses");
                    match req.body {
                        Body::Length(n) => assert_eq!(m.body.len(), n),
                        Body::None => assert!(m.body.is_empty()),
                        Body::Chunked | Body::Invalid => panic!("refused framings are never taken"),
                    }
                    assert!(req.path.starts_with('/') && !req.path.contains('?'));
                }
                Ok(None) => {
                    assert_eq!(buf.len(), before, "nothing is taken from an incomplete request");
                    break;
                }
                // The server answers and closes: nothing more is read from this input.
                Err(_) => return,
            }
        }
    }
});
