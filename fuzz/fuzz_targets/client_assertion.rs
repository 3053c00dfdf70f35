//! A `private_key_jwt` client assertion before its signature is checked: the unverified `sub`
//! that chooses whose keys to try, and the header that names the algorithm and key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sesame::oauth::client_assertion::unverified_sub;

fuzz_target!(|data: &[u8]| {
    let token = String::from_utf8_lossy(data);
    let _ = unverified_sub(&token);
    let _ = jsonwebtoken::decode_header(token.as_ref());
});
