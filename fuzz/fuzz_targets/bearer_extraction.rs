//! The bearer token of a resource request (RFC 6750 §2): from the header or a form body,
//! never both, and never a panic on odd headers or bodies.
#![no_main]

use http::{HeaderMap, HeaderValue, Method};
use libfuzzer_sys::fuzz_target;
use sesame::oauth::bearer::bearer;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let mut parts = rest.splitn(3, |b| *b == b'\n');
    let (authorization, content_type, body) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    let mut headers = HeaderMap::new();
    if selector & 1 == 1 {
        if let Ok(v) = HeaderValue::from_bytes(authorization) {
            headers.insert(http::header::AUTHORIZATION, v);
        }
    }
    if selector & 2 == 2 {
        if let Ok(v) = HeaderValue::from_bytes(content_type) {
            headers.insert(http::header::CONTENT_TYPE, v);
        }
    }
    let method = if selector & 4 == 4 { Method::POST } else { Method::GET };
    if let Ok(token) = bearer(&method, &headers, body) {
        assert!(!token.is_empty(), "an empty token was accepted");
        let in_header = headers.get(http::header::AUTHORIZATION).is_some_and(|v| v.as_bytes().windows(token.len().max(1)).any(|w| w == token.as_bytes()));
        assert!(in_header || method == Method::POST, "a token came from nowhere");
    }
});
