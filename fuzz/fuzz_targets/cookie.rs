//! The session cookie out of `Cookie` headers: any header set parses without a panic, and only a
//! plausible session secret comes out.
#![no_main]

use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use sesame::session::cookie_value;

fuzz_target!(|data: &[u8]| {
    let mut headers = HeaderMap::new();
    for line in data.split(|b| *b == b'\n').take(8) {
        if let Ok(v) = HeaderValue::from_bytes(line) {
            headers.append(http::header::COOKIE, v);
        }
    }
    if let Some(value) = cookie_value(&headers, "sesame_session") {
        assert!(!value.is_empty() && value.len() <= 64);
        assert!(!value.contains(';'));
    }
});
