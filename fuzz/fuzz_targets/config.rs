//! Configuration text: any `sesame.toml` is either accepted as a valid configuration or refused
//! with at least one message, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sesame::config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match Config::from_toml(text) {
        Ok(config) => assert!(config.validate().is_ok()),
        Err(e) => assert!(!e.0.is_empty()),
    }
});
