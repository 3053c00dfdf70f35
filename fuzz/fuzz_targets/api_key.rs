//! The API key format: only well-formed keys with a correct checksum parse, and the part shown
//! in listings never reaches into the secret.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sesame::api_keys::format::{display_prefix, parse, ENVS};

fuzz_target!(|data: &[u8]| {
    let key = String::from_utf8_lossy(data);
    let shown = display_prefix(&key);
    assert!(key.starts_with(&shown));
    if let Some(env) = parse(&key) {
        assert!(ENVS.contains(&env));
        assert!(key.is_ascii());
        let head = format!("ses_{env}_");
        assert!(key.starts_with(&head));
        assert_eq!(shown.len(), head.len() + 4, "a listing shows four characters of the secret, no more");
    }
});
