//! Property values from clients: parse, merge and render never panic; every rendered value fits
//! the `varchar(255)` column; a failed merge leaves the existing value unchanged; and every
//! policy but `Avg` (which renders the average, not the stored sum) renders back to itself.
//!
//! Input: `policy \0 value \0 value2`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tars_property::policy::{Policy, PropValue, MAX_VALUE_CHARS};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let mut parts = s.splitn(3, '\0');
    let (policy, a, b) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let Ok(policy) = Policy::parse(policy) else { return };
    let first = PropValue::parse(&policy, a);
    let second = PropValue::parse(&policy, b);
    for v in [&first, &second].into_iter().flatten() {
        let text = v.render();
        assert!(text.chars().count() <= MAX_VALUE_CHARS, "{text:?}");
        if policy != Policy::Avg {
            let again = PropValue::parse(&policy, &text).expect("a rendered value parses");
            assert_eq!(&again, v);
        }
    }
    if let (Ok(mut x), Ok(y)) = (first, second) {
        let before = x.clone();
        if x.merge(y).is_err() {
            assert_eq!(x, before);
        }
        let text = x.render();
        assert!(text.chars().count() <= MAX_VALUE_CHARS, "{text:?}");
    }
});
