//! The authorization request's parameter checks: redirect URI (exact match only), scopes, PKCE,
//! prompt, max_age and response_mode, on arbitrary values.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sesame::oauth::authorize::checks;
use sesame::store::{AuthMethod, Client};

fn client(public: bool) -> Client {
    Client {
        id: "app".into(),
        name: "App".into(),
        secret_hash: None,
        auth_method: if public { AuthMethod::None } else { AuthMethod::ClientSecretBasic },
        redirect_uris: vec!["https://app.example.com/cb".into(), "http://127.0.0.1:9/cb".into()],
        post_logout_redirect_uris: vec![],
        grant_types: vec!["authorization_code".into(), "refresh_token".into()],
        scopes: vec!["openid".into(), "profile".into(), "email".into()],
        first_party: false,
        jwks_uri: None,
        jwks: None,
        access_token_alg: None,
        access_token_ttl: None,
        created_at: 0,
        require_mfa: false,
        backchannel_logout_uri: None,
        backchannel_logout_session_required: false,
        tls_client_auth_subject_dn: None,
        tls_client_auth_san_dns: None,
        require_dpop: false,
        require_par: false,
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut fields = text.split('\n');
    let mut next = || fields.next();
    let (uri, scope, challenge, method, prompt, max_age, mode, verifier) = (next(), next(), next(), next(), next(), next(), next(), next());
    for c in [client(false), client(true)] {
        if let Ok(chosen) = checks::redirect_uri(&c, uri) {
            assert!(c.redirect_uris.iter().any(|r| r == chosen), "an unregistered redirect URI passed");
            assert!(uri.is_none_or(|u| u == chosen));
        }
        if let Ok(scopes) = checks::scopes(&c, scope) {
            assert!(!scopes.is_empty());
            assert!(scopes.iter().all(|s| c.scopes.contains(s) || s == "offline_access"));
        }
        if let Ok(Some(stored)) = checks::pkce(&c, challenge, method) {
            assert_eq!(Some(stored.as_str()), challenge);
            assert_eq!(method, Some("S256"));
        }
        if c.is_public() {
            assert!(checks::pkce(&c, None, None).is_err());
        }
    }
    if let Ok(p) = checks::prompt(prompt) {
        assert!(!(p.none && (p.login || p.consent)));
    }
    if let Ok(Some(age)) = checks::max_age(max_age) {
        assert!(age >= 0);
    }
    let _ = checks::response_mode(mode);
    if let (Some(c), Some(v)) = (challenge, verifier) {
        let _ = checks::verifier_matches(c, v);
    }
});
