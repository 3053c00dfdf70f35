//! Logout tokens (OpenID Connect Back-Channel Logout 1.0 §2.4): a JWT signed like ID tokens,
//! typed `logout+jwt` so that no one can pass it off as an ID token, with the logout event, the
//! session (`sid`) and the user (`sub`), and no `nonce`.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::clock::UnixTime;
use crate::crypto::jwt;
use crate::crypto::secrets::random_token;
use crate::error::AppError;
use crate::tokens::access::Issuer;

pub const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
pub const TYP: &str = "logout+jwt";
/// A logout token is for immediate delivery; a retry signs a new one.
pub const TTL_SECONDS: i64 = 120;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogoutTokenClaims {
    pub iss: String,
    pub aud: String,
    pub iat: UnixTime,
    pub exp: UnixTime,
    pub jti: String,
    pub sub: String,
    pub sid: String,
    pub events: Value,
}

impl LogoutTokenClaims {
    pub fn new(issuer: &str, client_id: &str, sub: &str, sid: &str, now: UnixTime) -> Self {
        Self {
            iss: issuer.to_string(),
            aud: client_id.to_string(),
            iat: now,
            exp: now + TTL_SECONDS,
            jti: random_token(16),
            sub: sub.to_string(),
            sid: sid.to_string(),
            events: json!({ EVENT: {} }),
        }
    }
}

/// The signed logout token telling `client_id` that session `sid` of `sub` ended.
pub fn sign(issuer: Issuer<'_>, client_id: &str, sub: &str, sid: &str, now: UnixTime) -> Result<String, AppError> {
    let key = issuer.keys.signer(issuer.config.tokens.id_token_alg).map_err(|e| AppError::Internal(e.to_string()))?;
    let claims = LogoutTokenClaims::new(issuer.config.issuer(), client_id, sub, sid, now);
    jwt::sign(&key, TYP, &claims).map_err(|e| AppError::Internal(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_claims_carry_the_event_and_no_nonce() {
        let c = LogoutTokenClaims::new("https://sso.example.com", "app", "user-1", "sid-1", 1000);
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["events"], json!({ EVENT: {} }));
        assert_eq!(v["exp"], 1000 + TTL_SECONDS);
        assert!(v.get("nonce").is_none());
        assert_ne!(c.jti, LogoutTokenClaims::new("https://sso.example.com", "app", "user-1", "sid-1", 1000).jti, "a fresh jti each time");
    }
}
