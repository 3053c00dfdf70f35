//! The body of every OAuth endpoint: urlencoded pairs, duplicates refused, `resource` repeatable;
//! and the token request parsed from it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sesame::oauth::form::{parse_unique, OAuthForm};
use sesame::oauth::token::request::TokenRequest;

fuzz_target!(|body: &[u8]| {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
    let has_duplicate = |skip_resource: bool| {
        let mut names: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).filter(|k| !(skip_resource && *k == "resource")).collect();
        names.sort_unstable();
        names.windows(2).any(|w| w[0] == w[1])
    };
    match OAuthForm::parse(body) {
        Ok(form) => {
            assert!(!has_duplicate(true), "a repeated parameter was accepted");
            if let Ok(request) = TokenRequest::parse(&form) {
                assert_eq!(form.get("grant_type"), Some(request.grant_type().as_str()));
            }
            assert_eq!(form.resources().len(), pairs.iter().filter(|(k, _)| k == "resource").count());
            for (k, v) in pairs.iter().filter(|(k, _)| k != "resource") {
                assert_eq!(form.get(k), Some(v.as_str()).filter(|v| !v.is_empty()));
            }
        }
        Err(e) => {
            assert_eq!(e.code, "invalid_request");
            assert!(has_duplicate(true));
        }
    }
    assert_eq!(parse_unique(body).is_err(), has_duplicate(false));
});
