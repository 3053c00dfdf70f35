//! The device grant's user code as typed at the verification page: anything parses without a
//! panic, and only a canonical code (eight letters of the alphabet) comes out, which displays
//! and parses back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sesame::oauth::device::user_code::{display, normalise, ALPHABET, LENGTH};

fuzz_target!(|data: &[u8]| {
    let Ok(typed) = std::str::from_utf8(data) else { return };
    if let Some(code) = normalise(typed) {
        assert_eq!(code.len(), LENGTH);
        assert!(code.bytes().all(|b| ALPHABET.contains(&b)));
        assert_eq!(normalise(&display(&code)).as_deref(), Some(code.as_str()));
    }
});
