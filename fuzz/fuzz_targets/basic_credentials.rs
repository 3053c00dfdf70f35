//! HTTP Basic client credentials (RFC 6749 §2.3.1): any header value decodes or is refused
//! without a panic, and every id/secret pair survives the encoding a client applies.
#![no_main]

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use libfuzzer_sys::fuzz_target;
use sesame::oauth::client_auth::decode_basic;

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = decode_basic(&text);
    if let Some((id, secret)) = text.split_once('\u{0}') {
        let header = STANDARD.encode(format!("{}:{}", urlencode(id), urlencode(secret)));
        let decoded = decode_basic(&header);
        if id.is_empty() {
            assert_eq!(decoded, None);
        } else {
            assert_eq!(decoded, Some((id.to_string(), secret.to_string())));
        }
    }
});
