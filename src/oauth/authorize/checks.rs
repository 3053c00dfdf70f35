//! The authorization request's checks, as small pure functions.

use crate::error::OAuthError;
use crate::oauth::grant_type::GrantType;
use crate::oauth::scope::Scopes;
use crate::store::Client;

/// The largest authorization request read at all (query string or form body): a request is
/// stored while the user signs in, so its size is bounded before anything else.
pub const MAX_REQUEST_BYTES: usize = 8 * 1024;

/// Each parameter's longest accepted value, in bytes; the rest may not exceed `DEFAULT_MAX`.
/// `code_challenge` is exact: S256 is 43 base64url characters (RFC 7636 §4.2).
pub const LIMITS: [(&str, usize); 7] = [
    ("client_id", 128),
    ("redirect_uri", 2048),
    ("state", 1024),
    ("nonce", 512),
    ("login_hint", 256),
    ("scope", 1024),
    ("code_challenge", 43),
];
const DEFAULT_MAX: usize = 256;

/// The first parameter longer than its limit, if any.
pub fn oversized<'a>(params: impl IntoIterator<Item = (&'a String, &'a String)>) -> Option<&'a str> {
    params
        .into_iter()
        .find(|(k, v)| v.len() > LIMITS.iter().find(|(name, _)| name == k).map_or(DEFAULT_MAX, |(_, max)| *max))
        .map(|(k, _)| k.as_str())
}

/// Exact string comparison against the registered URIs (RFC 9700 §4.1.3). When the request
/// omits it, the client's only registered URI is used; with several registered, it is required.
pub fn redirect_uri<'a>(client: &'a Client, requested: Option<&'a str>) -> Result<&'a str, &'static str> {
    match requested {
        Some(uri) if client.redirect_uris.iter().any(|r| r == uri) => Ok(uri),
        Some(_) => Err("the redirect_uri is not registered for this client"),
        None if client.redirect_uris.len() == 1 => Ok(&client.redirect_uris[0]),
        None => Err("redirect_uri is required: the client has several registered"),
    }
}

/// The requested scopes, all of which the client must be allowed.
pub fn scopes(client: &Client, requested: Option<&str>) -> Result<Vec<String>, OAuthError> {
    let requested = Scopes::parse(requested.ok_or_else(|| OAuthError::invalid_scope("scope is required"))?)?;
    if requested.is_empty() {
        return Err(OAuthError::invalid_scope("scope is required"));
    }
    let allowed = |s: &str| client.scopes.iter().any(|a| a == s) || (s == "offline_access" && client.allows_grant(GrantType::RefreshToken));
    if let Some(s) = requested.iter().find(|s| !allowed(s)) {
        return Err(OAuthError::invalid_scope(format!("scope `{s}` is not allowed for this client")));
    }
    Ok(requested.into_vec())
}

/// PKCE (RFC 7636) with S256 only; required for public clients.
pub fn pkce(client: &Client, challenge: Option<&str>, method: Option<&str>) -> Result<Option<String>, OAuthError> {
    match (challenge, method) {
        (None, Some(_)) => Err(OAuthError::invalid_request("code_challenge_method without code_challenge")),
        (None, None) if client.is_public() => Err(OAuthError::invalid_request("PKCE is required: send code_challenge with S256")),
        (None, None) => Ok(None),
        (Some(_), Some(m)) if m != "S256" => {
            Err(OAuthError::invalid_request("code_challenge_method must be S256 (plain is not accepted)"))
        }
        // RFC 7636 §4.3 defaults a missing method to plain, which we refuse.
        (Some(_), None) => Err(OAuthError::invalid_request("code_challenge_method=S256 is required")),
        (Some(c), Some(_)) => {
            let valid = c.len() == 43 && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if valid { Ok(Some(c.to_string())) } else { Err(OAuthError::invalid_request("code_challenge must be a base64url SHA-256 (43 characters)")) }
        }
    }
}

/// Checks a `code_verifier` against the stored S256 challenge.
pub fn verifier_matches(challenge: &str, verifier: &str) -> bool {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use sha2::{Digest, Sha256};
    use subtle::ConstantTimeEq;
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    well_formed && bool::from(computed.as_bytes().ct_eq(challenge.as_bytes()))
}

/// `dpop_jkt` (RFC 9449 §10): a JWK thumbprint, base64url SHA-256 (43 characters).
pub fn dpop_jkt(value: Option<&str>) -> Result<Option<String>, OAuthError> {
    match value {
        None => Ok(None),
        Some(v) if v.len() == 43 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') => Ok(Some(v.to_string())),
        Some(_) => Err(OAuthError::invalid_request("dpop_jkt must be a base64url SHA-256 JWK thumbprint")),
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Prompt {
    pub none: bool,
    pub login: bool,
    pub consent: bool,
}

/// `prompt` per OIDC Core §3.1.2.1; `select_account` is treated as `login` (one account per browser).
pub fn prompt(value: Option<&str>) -> Result<Prompt, OAuthError> {
    let mut p = Prompt::default();
    for v in value.unwrap_or("").split(' ').filter(|v| !v.is_empty()) {
        match v {
            "none" => p.none = true,
            "login" | "select_account" => p.login = true,
            "consent" => p.consent = true,
            other => return Err(OAuthError::invalid_request(format!("unknown prompt value `{other}`"))),
        }
    }
    if p.none && (p.login || p.consent) {
        return Err(OAuthError::invalid_request("prompt=none cannot be combined with other values"));
    }
    Ok(p)
}

pub fn max_age(value: Option<&str>) -> Result<Option<i64>, OAuthError> {
    value
        .map(|v| v.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| OAuthError::invalid_request("max_age must be a non-negative integer")))
        .transpose()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseMode {
    Query,
    FormPost,
}

pub fn response_mode(value: Option<&str>) -> Result<ResponseMode, OAuthError> {
    match value {
        None | Some("query") => Ok(ResponseMode::Query),
        Some("form_post") => Ok(ResponseMode::FormPost),
        Some(other) => Err(OAuthError::invalid_request(format!("response_mode `{other}` is not supported"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::AuthMethod;

    fn client(public: bool) -> Client {
        Client {
            id: "c".into(),
            name: "C".into(),
            secret_hash: None,
            auth_method: if public { AuthMethod::None } else { AuthMethod::ClientSecretBasic },
            redirect_uris: vec!["https://app.example.com/cb".into()],
            post_logout_redirect_uris: vec![],
            grant_types: vec!["authorization_code".into(), "refresh_token".into()],
            scopes: vec!["openid".into(), "email".into()],
            jwks_uri: None,
            jwks: None,
            first_party: false,
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

    #[test]
    fn redirect_uris_match_exactly() {
        let c = client(false);
        assert_eq!(redirect_uri(&c, Some("https://app.example.com/cb")), Ok("https://app.example.com/cb"));
        assert_eq!(redirect_uri(&c, None), Ok("https://app.example.com/cb"));
        for near_miss in [
            "https://app.example.com/cb/",
            "https://app.example.com/cb/x",
            "https://app.example.com/cb?x=1",
            "https://app.example.com:8443/cb",
            "http://app.example.com/cb",
            "https://APP.example.com/cb",
            "https://app.example.com.evil.com/cb",
        ] {
            assert!(redirect_uri(&c, Some(near_miss)).is_err(), "{near_miss}");
        }
        let mut two = client(false);
        two.redirect_uris.push("https://app.example.com/other".into());
        assert!(redirect_uri(&two, None).is_err());
    }

    #[test]
    fn scopes_within_the_clients() {
        let c = client(false);
        assert_eq!(scopes(&c, Some("openid email openid")).unwrap(), vec!["openid", "email"]);
        assert_eq!(scopes(&c, Some("openid offline_access")).unwrap(), vec!["openid", "offline_access"]);
        assert_eq!(scopes(&c, Some("openid admin")).unwrap_err().code, "invalid_scope");
        assert_eq!(scopes(&c, None).unwrap_err().code, "invalid_scope");
    }

    #[test]
    fn pkce_rules() {
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert_eq!(pkce(&client(true), Some(challenge), Some("S256")).unwrap().as_deref(), Some(challenge));
        assert!(pkce(&client(true), None, None).is_err(), "required for public clients");
        assert_eq!(pkce(&client(false), None, None).unwrap(), None, "optional for confidential ones");
        assert!(pkce(&client(false), Some(challenge), Some("plain")).is_err());
        assert!(pkce(&client(false), Some(challenge), None).is_err());
        assert!(pkce(&client(false), Some("short"), Some("S256")).is_err());
        // RFC 7636 appendix B.
        assert!(verifier_matches(challenge, "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"));
        assert!(!verifier_matches(challenge, "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXx"));
    }

    #[test]
    fn prompt_values() {
        assert_eq!(prompt(Some("login consent")).unwrap(), Prompt { none: false, login: true, consent: true });
        assert!(prompt(Some("select_account")).unwrap().login);
        assert!(prompt(Some("none login")).is_err());
        assert!(prompt(Some("bogus")).is_err());
        assert_eq!(max_age(Some("0")).unwrap(), Some(0));
        assert!(max_age(Some("-1")).is_err());
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        proptest! {
            /// Only a byte-for-byte registered URI passes (RFC 9700 §4.1.3): no prefix, case or
            /// trailing-character tolerance.
            #[test]
            fn redirect_uri_matches_exactly(suffix in "[ -~]{0,12}", upper in any::<bool>()) {
                let c = client(false);
                let registered = c.redirect_uris[0].clone();
                let mut asked = format!("{registered}{suffix}");
                if upper {
                    asked = asked.to_uppercase();
                }
                prop_assert_eq!(redirect_uri(&c, Some(&asked)).is_ok(), asked == registered);
            }

            /// The granted scopes are the asked ones, deduplicated, in order, all within the client's.
            #[test]
            fn scopes_are_a_deduplicated_subset(asked in prop::collection::vec(prop::sample::select(vec!["openid", "email", "offline_access", "admin", ""]), 0..8)) {
                let text = asked.join(" ");
                match scopes(&client(false), Some(&text)) {
                    Ok(granted) => {
                        prop_assert!(!asked.contains(&"admin"));
                        let mut expected: Vec<String> = Vec::new();
                        for s in asked.iter().filter(|s| !s.is_empty()) {
                            if !expected.iter().any(|e| e == s) {
                                expected.push(s.to_string());
                            }
                        }
                        prop_assert_eq!(granted, expected);
                    }
                    Err(_) => prop_assert!(asked.contains(&"admin") || asked.iter().all(|s| s.is_empty())),
                }
            }

            /// A verifier matches exactly the challenge computed from it.
            #[test]
            fn pkce_verifier_matches_only_its_challenge(verifier in "[A-Za-z0-9._~-]{43,128}", other in "[A-Za-z0-9._~-]{43,128}") {
                use base64::engine::general_purpose::URL_SAFE_NO_PAD;
                use base64::Engine;
                use sha2::{Digest, Sha256};
                let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
                prop_assert!(verifier_matches(&challenge, &verifier));
                prop_assert_eq!(verifier_matches(&challenge, &other), other == verifier);
            }

            #[test]
            fn prompt_none_never_combines(values in prop::collection::vec(prop::sample::select(vec!["none", "login", "consent", "select_account"]), 0..4)) {
                let p = prompt(Some(&values.join(" "))).unwrap_or_default();
                prop_assert!(!(p.none && (p.login || p.consent)));
            }
        }
    }
}
